"""Topic names, in one place."""

TRANSACTIONS = "transactions"
FRAUD_ALERTS = "fraud_alerts"
FRAUD_DECISIONS = "fraud_decisions"
DEAD_LETTERS = "dead_letters"
#: Ground truth from the generator. Only decide's label writer and the benchmark read it.
LABELS = "transaction_labels"

ALL = (TRANSACTIONS, FRAUD_ALERTS, FRAUD_DECISIONS, DEAD_LETTERS, LABELS)
