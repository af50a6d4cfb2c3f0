-- The ledger: every transaction once, every alert once, and the consumers' offsets stored in the
-- same database transaction as the rows they produced (exactly-once into PostgreSQL).

CREATE TABLE transactions (
    transaction_id   text PRIMARY KEY,
    account_id       text        NOT NULL,
    card_token       text        NOT NULL,
    card_last4       char(4)     NOT NULL,
    amount           numeric(14, 2) NOT NULL CHECK (amount >= 0),
    currency         char(3)     NOT NULL DEFAULT 'BRL',
    channel          text        NOT NULL,
    merchant_id      text        NOT NULL,
    merchant_name    text        NOT NULL,
    merchant_mcc     char(4)     NOT NULL,
    city             text        NOT NULL,
    state            char(2)     NOT NULL,
    lat              double precision NOT NULL,
    lon              double precision NOT NULL,
    device_id        text        NOT NULL,
    ip_address       text        NOT NULL,
    event_time       timestamptz NOT NULL,
    kafka_append_at  timestamptz,
    stored_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The pipeline's verdict, kept up to date by the decision service.
    status           text        NOT NULL DEFAULT 'APPROVED'
                     CHECK (status IN ('APPROVED', 'REVIEW', 'BLOCKED')),
    is_fraud         boolean     NOT NULL DEFAULT false
);
CREATE INDEX transactions_account_time ON transactions (account_id, event_time DESC);
CREATE INDEX transactions_event_time ON transactions (event_time);

CREATE TABLE fraud_alerts (
    alert_id         text PRIMARY KEY,
    rule_id          text        NOT NULL,
    severity         text        NOT NULL,
    score_weight     integer     NOT NULL,
    transaction_id   text        NOT NULL,
    account_id       text        NOT NULL,
    amount           numeric(14, 2) NOT NULL,
    event_time       timestamptz NOT NULL,
    evidence         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    kafka_append_at  timestamptz,
    stored_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX fraud_alerts_transaction ON fraud_alerts (transaction_id);
CREATE INDEX fraud_alerts_account ON fraud_alerts (account_id, event_time DESC);
CREATE INDEX fraud_alerts_rule ON fraud_alerts (rule_id);

-- Ground truth from the generator, for measuring detection; the detectors never read it.
CREATE TABLE transaction_labels (
    transaction_id   text PRIMARY KEY,
    account_id       text    NOT NULL,
    scenario         text    NOT NULL,
    is_fraud         boolean NOT NULL
);

CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    message_key      bytea,
    payload          bytea,
    reason           text        NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (source_topic, source_partition, source_offset)
);

CREATE TABLE consumer_offsets (
    group_id         text    NOT NULL,
    topic            text    NOT NULL,
    partition        integer NOT NULL,
    next_offset      bigint  NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (group_id, topic, partition)
);
