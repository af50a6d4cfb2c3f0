-- id: HIGH_VELOCITY
-- severity: HIGH
-- weight: 35
-- description: More than 3 transactions from one account within 60 seconds.
-- param min_count: 4
-- param window_s: 60
--
-- Why: bots and mule accounts move money in bursts that no person types.
-- "More than 3 within 60 s" is "4 consecutive transactions whose first and last are less than
-- 60 s apart", a MATCH_RECOGNIZE pattern on event time. It fires on the 4th transaction itself
-- (and on each one after it while the burst lasts), and a burst that straddles a minute
-- boundary is still one burst (the original's tumbling window split it). A pattern keeps at
-- most min_count events per account and forgets them after window_s of event time, so its
-- state is smaller and cheaper than a sliding OVER window's. The window is exclusive: four
-- transactions exactly 60 s apart from first to last are not a burst.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['count', '${min_count}',
           'first_transaction_id', first_transaction_id,
           'span_ms', CAST(ts_ms - first_ts_ms AS STRING),
           'window_s', '${window_s}'] AS evidence
-- Only the columns the pattern reads: a pattern buffers whole rows, and the planner does not
-- prune them for MATCH_RECOGNIZE.
FROM (SELECT account_id, transaction_id, amount, ts_ms, ts FROM transactions_on_time)
MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY ts
    MEASURES
        LAST(T.transaction_id) AS transaction_id,
        LAST(T.amount) AS amount,
        LAST(T.ts_ms) AS ts_ms,
        FIRST(T.transaction_id) AS first_transaction_id,
        FIRST(T.ts_ms) AS first_ts_ms
    ONE ROW PER MATCH
    AFTER MATCH SKIP TO NEXT ROW
    PATTERN (T{${min_count}}) WITHIN INTERVAL '${window_s}' SECOND(3)
    DEFINE T AS TRUE
)
