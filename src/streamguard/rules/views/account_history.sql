-- view: account_history
--
-- Each on-time transaction with what its account did just before it, in event-time order.
-- Every per-account rule reads this view, and the planner computes it once for all of them:
-- one keyed operator, one event-time sort and one timer per row, instead of one per rule. That
-- took the catalog on two cores from about 16,000 to 58,000 tx/s (benchmarks/bench_rules_bounded.py).
--
-- The window is unbounded, but the aggregates are not: each keeps only what its own window needs
-- (a queue of the last window_s of rows, or the last two rows), and an account idle for a day
-- is dropped by the job's state TTL. So state grows with the number of active accounts, never
-- with the length of the run.
--
-- Windows are the rules' parameters, written ${RULE_ID.param}: `HIGH_VELOCITY.window_s` set by
-- configuration changes both the rule's evidence and the window computed here.
--
--   velocity_window    WINDOW_STATS over the last HIGH_VELOCITY.window_s (current row included):
--                      ROW(tx_count, amount_sum, first_ts_ms, first_transaction_id)
--   spend_window       the same over the last HIGH_VELOCITY_AMOUNT.window_s
--   previous_location  the account's last located transaction before this one:
--                      ROW(lat, lon, ts_ms, transaction_id), NULL for the first
--   previous_amount    the amount of the account's transaction just before this one
--
-- A window's bound is exclusive: a row belongs when it is less than window_s older than the
-- current one. Late events never reach this view (transactions_on_time): see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms, ts, lat, lon,
       WINDOW_STATS(ts_ms, amount, transaction_id,
                    CAST(${HIGH_VELOCITY.window_s} * 1000 AS BIGINT)) OVER w AS velocity_window,
       WINDOW_STATS(ts_ms, amount, transaction_id,
                    CAST(${HIGH_VELOCITY_AMOUNT.window_s} * 1000 AS BIGINT)) OVER w AS spend_window,
       PREVIOUS_LOCATION(lat, lon, ts_ms, transaction_id) OVER w AS previous_location,
       PREVIOUS_AMOUNT(amount) OVER w AS previous_amount
FROM transactions_on_time
WINDOW w AS (
    PARTITION BY account_id ORDER BY ts
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
)
