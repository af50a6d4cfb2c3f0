-- The transaction's amount on its decision, for the review queue's "least amount" filter.
-- The queue walks an action's decisions in first_decided_at order; with the amount only in
-- `transactions`, a least amount that few or no cases reach looked up the transaction of nearly
-- every decision of the action (a random heap read each). On `decisions` the filter is checked
-- on the row the walk already reads, so no index is added: each one would slow every decision
-- the service writes.
--
-- The decision service fills it with the amount it decided on: the stored transaction's, or,
-- for a decision made from alerts before its transaction arrived, the first alert's (which the
-- rules copy from the transaction). Nullable: a decision written by hand may have none.
-- Adding a nullable column without a default is a catalog change only.
ALTER TABLE decisions ADD COLUMN amount numeric(14, 2) CHECK (amount >= 0);

-- The backfill changes no verdict, so the escalate-only trigger (which wants a newer version
-- on every update) is off for it alone, inside this migration's transaction.
ALTER TABLE decisions DISABLE TRIGGER decisions_never_downgrade;
UPDATE decisions d SET amount = t.amount
FROM transactions t
WHERE t.transaction_id = d.transaction_id;
UPDATE decisions d SET amount = (
    SELECT a.amount FROM fraud_alerts a
    WHERE a.transaction_id = d.transaction_id ORDER BY a.alert_id LIMIT 1
)
WHERE d.amount IS NULL;
ALTER TABLE decisions ENABLE TRIGGER decisions_never_downgrade;
