-- Transactions decided from an alert before they themselves arrived. Small by nature (alerts
-- usually follow their transaction), so the ledger reads it whole per batch instead of probing
-- the decisions table with every transaction id.
CREATE TABLE awaiting_transactions (
    transaction_id  text PRIMARY KEY,
    since           timestamptz NOT NULL DEFAULT clock_timestamp()
);
