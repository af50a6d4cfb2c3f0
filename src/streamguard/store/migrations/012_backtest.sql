-- Backtests started from the console: the request, its state and its result. Not a table of the
-- pipeline: nothing the rules or the decision service do reads it.
--
-- Who writes what (store/roles.py): the console's role inserts a request and reads; the worker
-- that runs it (`python -m streamguard.backtest.worker`, role streamguard_backtest) moves it to
-- running and records the result or the error. The console may also end a run as failed whose
-- worker died without saying so (UPDATE of status, error and finished_at only: it can never
-- write or change a result). A finished run never changes again (trigger below).
CREATE TABLE backtest_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    period_from   timestamptz NOT NULL,
    period_to     timestamptz NOT NULL,
    -- The candidate: {"overrides": {"RULE.param": "value", ...}}.
    candidate     jsonb NOT NULL CHECK (jsonb_typeof(candidate -> 'overrides') = 'object'),
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'failed')),
    started_at    timestamptz,
    finished_at   timestamptz,
    error         text CHECK (length(error) <= 8000),
    result        jsonb,
    CHECK (period_to > period_from),
    CHECK (status <> 'done' OR (result IS NOT NULL AND finished_at IS NOT NULL)),
    CHECK (status <> 'failed' OR (error IS NOT NULL AND finished_at IS NOT NULL))
);

-- At most one run waits or runs at a time (each is a Flink job on the console's machine): a
-- second request fails on this index, whoever races.
CREATE UNIQUE INDEX backtest_runs_one_active ON backtest_runs ((true))
    WHERE status IN ('queued', 'running');

CREATE OR REPLACE FUNCTION backtest_runs_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('done', 'failed') THEN
        RAISE EXCEPTION 'backtest run % is % and cannot change', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'queued' AND OLD.status <> 'queued' THEN
        RAISE EXCEPTION 'backtest run % cannot go back to queued', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER backtest_runs_final BEFORE UPDATE ON backtest_runs
    FOR EACH ROW EXECUTE FUNCTION backtest_runs_final();
