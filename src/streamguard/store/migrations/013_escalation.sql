-- A decision version may be caused by another transaction's alert: a velocity alert escalates
-- the burst's earlier transactions to REVIEW (domain/bursts.py). Its trigger says so, so that
-- latency figures measure a transaction's own verdict apart from a later escalation, and
-- trigger_append_at is then the alert's append time. No new privilege: the service already
-- inserts decisions and their history.
ALTER TABLE decision_history DROP CONSTRAINT decision_history_trigger_check;
ALTER TABLE decision_history ADD CONSTRAINT decision_history_trigger_check
    CHECK (trigger IN ('transaction', 'alert', 'escalation'));
