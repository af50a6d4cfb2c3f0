-- Decisions and their audit trail, block/allow lists, merchant counters, and the views that the
-- README's queries read. transactions.is_fraud means "the pipeline flagged it": status REVIEW or
-- BLOCKED. It is the decision service's verdict, never the generator's ground truth
-- (transaction_labels), which no detector reads.

-- The current decision per transaction. A row may exist before its transaction does: an alert can
-- reach the decision service before the transaction it is about.
CREATE TABLE decisions (
    transaction_id    text PRIMARY KEY,
    account_id        text        NOT NULL,
    action            text        NOT NULL CHECK (action IN ('APPROVE', 'REVIEW', 'BLOCK')),
    score             integer     NOT NULL CHECK (score BETWEEN 0 AND 100),
    reasons           jsonb       NOT NULL DEFAULT '[]'::jsonb,
    rule_ids          text[]      NOT NULL DEFAULT '{}',
    list_hits         text[]      NOT NULL DEFAULT '{}',
    version           integer     NOT NULL CHECK (version >= 1),
    first_decided_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX decisions_account ON decisions (account_id, decided_at DESC);

-- Every version of every decision, never updated except to note its publication on Kafka.
-- trigger_append_at is when Kafka stored the message (alert or transaction) that caused this
-- version; decided_at - trigger_append_at is the decision latency.
CREATE TABLE decision_history (
    id                bigserial PRIMARY KEY,
    transaction_id    text        NOT NULL,
    account_id        text        NOT NULL,
    version           integer     NOT NULL,
    action            text        NOT NULL,
    score             integer     NOT NULL,
    reasons           jsonb       NOT NULL,
    rule_ids          text[]      NOT NULL,
    list_hits         text[]      NOT NULL,
    trigger           text        NOT NULL CHECK (trigger IN ('transaction', 'alert')),
    trigger_append_at timestamptz,
    decided_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_ms        bigint      NOT NULL,
    published_at      timestamptz,
    UNIQUE (transaction_id, version)
);
CREATE INDEX decision_history_unpublished ON decision_history (id) WHERE published_at IS NULL;

-- Defence in depth: whatever the service does, a decision never moves to a milder action and its
-- version only grows.
CREATE FUNCTION decisions_never_downgrade() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rank_old integer := array_position(ARRAY['APPROVE', 'REVIEW', 'BLOCK'], OLD.action);
    rank_new integer := array_position(ARRAY['APPROVE', 'REVIEW', 'BLOCK'], NEW.action);
BEGIN
    IF rank_new < rank_old THEN
        RAISE EXCEPTION 'decision for % would downgrade from % to %',
            OLD.transaction_id, OLD.action, NEW.action;
    END IF;
    IF NEW.version <= OLD.version THEN
        RAISE EXCEPTION 'decision for % must get a newer version than %',
            OLD.transaction_id, OLD.version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER decisions_never_downgrade BEFORE UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_never_downgrade();

-- Block and allow lists for accounts, merchants and devices, managed by `streamguard lists`.
CREATE TABLE list_entries (
    list_type     text NOT NULL CHECK (list_type IN ('BLOCK', 'ALLOW')),
    entity_type   text NOT NULL CHECK (entity_type IN ('ACCOUNT', 'MERCHANT', 'DEVICE')),
    entity_value  text NOT NULL CHECK (length(entity_value) BETWEEN 1 AND 64),
    reason        text NOT NULL DEFAULT '',
    added_by      text NOT NULL DEFAULT current_user,
    added_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (list_type, entity_type, entity_value)
);

-- Every change to the lists; the decision service reloads them when the newest id moves.
CREATE TABLE list_changes (
    id            bigserial PRIMARY KEY,
    change        text NOT NULL CHECK (change IN ('ADD', 'REMOVE')),
    list_type     text NOT NULL,
    entity_type   text NOT NULL,
    entity_value  text NOT NULL,
    reason        text NOT NULL,
    changed_by    text NOT NULL DEFAULT current_user,
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION list_entries_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO list_changes (change, list_type, entity_type, entity_value, reason)
        VALUES ('REMOVE', OLD.list_type, OLD.entity_type, OLD.entity_value, OLD.reason);
        RETURN OLD;
    END IF;
    INSERT INTO list_changes (change, list_type, entity_type, entity_value, reason)
    VALUES ('ADD', NEW.list_type, NEW.entity_type, NEW.entity_value, NEW.reason);
    RETURN NEW;
END $$;
CREATE TRIGGER list_entries_audit AFTER INSERT OR UPDATE OR DELETE ON list_entries
    FOR EACH ROW EXECUTE FUNCTION list_entries_audit();

-- Per-merchant counters kept by the ledger in the same transactions as the rows they count:
-- how many transactions a merchant had, and how many of them the pipeline flagged.
CREATE TABLE merchant_stats (
    merchant_id    text PRIMARY KEY,
    tx_count       bigint NOT NULL DEFAULT 0,
    flagged_count  bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per account: volume, how much of it the pipeline flagged, and its alerts.
-- fraud_rate is a percentage (0-100) of the account's transactions with status REVIEW or BLOCKED.
CREATE VIEW account_risk_profile AS
SELECT t.account_id,
       COUNT(*)                                          AS total_transactions,
       COUNT(*) FILTER (WHERE t.is_fraud)                AS flagged_transactions,
       COUNT(*) FILTER (WHERE t.status = 'REVIEW')       AS review_transactions,
       COUNT(*) FILTER (WHERE t.status = 'BLOCKED')      AS blocked_transactions,
       ROUND(100.0 * COUNT(*) FILTER (WHERE t.is_fraud) / COUNT(*), 2) AS fraud_rate,
       SUM(t.amount)                                     AS total_amount,
       ROUND(AVG(t.amount), 2)                           AS avg_amount,
       MAX(t.amount)                                     AS max_amount,
       COUNT(DISTINCT t.city)                            AS distinct_cities,
       COUNT(DISTINCT t.device_id)                       AS distinct_devices,
       (SELECT COUNT(*) FROM fraud_alerts a WHERE a.account_id = t.account_id) AS alert_count,
       MIN(t.event_time)                                 AS first_seen,
       MAX(t.event_time)                                 AS last_seen
FROM transactions t
GROUP BY t.account_id;

-- Per hour of event time: volume, flagged share, money involved and accounts touched.
CREATE VIEW fraud_statistics AS
SELECT date_trunc('hour', t.event_time)                  AS hour,
       COUNT(*)                                          AS total_transactions,
       COUNT(*) FILTER (WHERE t.is_fraud)                AS flagged_transactions,
       COUNT(*) FILTER (WHERE t.status = 'REVIEW')       AS review_transactions,
       COUNT(*) FILTER (WHERE t.status = 'BLOCKED')      AS blocked_transactions,
       ROUND(100.0 * COUNT(*) FILTER (WHERE t.is_fraud) / COUNT(*), 2) AS fraud_rate,
       SUM(t.amount)                                     AS total_amount,
       COALESCE(SUM(t.amount) FILTER (WHERE t.is_fraud), 0) AS flagged_amount,
       COUNT(DISTINCT t.account_id)                      AS accounts,
       COUNT(DISTINCT t.account_id) FILTER (WHERE t.is_fraud) AS flagged_accounts
FROM transactions t
GROUP BY 1;
