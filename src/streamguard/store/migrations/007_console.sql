-- The console: analysts, their cases and resolutions, and the indexes behind its search.
-- A case is the analysts' side of a REVIEW (or BLOCK) decision. Every such decision is a case
-- from the moment it exists: the queue reads `decisions` and a `cases` row appears only when an
-- analyst first acts on it, so the decision service writes nothing more. Resolutions live in
-- their own table and never touch `decisions` or `decision_history` (whose escalate-only
-- trigger stays the only writer's business).

CREATE TABLE console_users (
    username       text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    -- scrypt$N$r$p$salt$hash (base64); see streamguard.domain.passwords.
    password_hash  text NOT NULL,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- API tokens: only their SHA-256 is stored; the token itself is shown once when made.
CREATE TABLE console_tokens (
    token_sha256   text PRIMARY KEY CHECK (length(token_sha256) = 64),
    username       text NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    label          text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE cases (
    transaction_id text PRIMARY KEY,
    account_id     text NOT NULL,
    status         text NOT NULL CHECK (status IN ('CLAIMED', 'RESOLVED')),
    claimed_by     text NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at    timestamptz
);

-- One resolution per case, with who, when, which decision version the analyst saw, and the
-- list entries made in the same action.
CREATE TABLE case_resolutions (
    transaction_id   text PRIMARY KEY REFERENCES cases (transaction_id),
    resolution       text NOT NULL
                     CHECK (resolution IN ('CONFIRMED_FRAUD', 'FALSE_POSITIVE', 'LEGITIMATE')),
    note             text NOT NULL DEFAULT '' CHECK (length(note) <= 4000),
    resolved_by      text NOT NULL,
    resolved_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    decision_version integer NOT NULL,
    decision_action  text NOT NULL,
    listed           text[] NOT NULL DEFAULT '{}'
);

-- Keyset pagination of the decision search and of the queue: newest first by the time of the
-- first decision, which never changes (decided_at moves with every new version). Decisions
-- exist only for transactions with evidence, so these cost the ledger little.
CREATE INDEX decisions_first_decided ON decisions (first_decided_at DESC, transaction_id DESC);
CREATE INDEX decisions_action_first_decided
    ON decisions (action, first_decided_at DESC, transaction_id DESC);
CREATE INDEX decisions_account_first_decided
    ON decisions (account_id, first_decided_at DESC, transaction_id DESC);
CREATE INDEX decisions_rule_ids ON decisions USING gin (rule_ids);
-- The overview's alerts per rule over the last minute; BRIN costs a COPY almost nothing.
CREATE INDEX fraud_alerts_stored_at_brin ON fraud_alerts USING brin (stored_at)
    WITH (pages_per_range = 32);

-- List changes record the analyst, not only the database role: the console sets
-- streamguard.actor for its transaction; the CLI leaves it unset (the role's name is kept).
CREATE OR REPLACE FUNCTION list_entries_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor text := COALESCE(NULLIF(current_setting('streamguard.actor', true), ''), current_user);
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO list_changes (change, list_type, entity_type, entity_value, reason, changed_by)
        VALUES ('REMOVE', OLD.list_type, OLD.entity_type, OLD.entity_value, OLD.reason, actor);
        RETURN OLD;
    END IF;
    INSERT INTO list_changes (change, list_type, entity_type, entity_value, reason, changed_by)
    VALUES ('ADD', NEW.list_type, NEW.entity_type, NEW.entity_value, NEW.reason, actor);
    RETURN NEW;
END $$;
