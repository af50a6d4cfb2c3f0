-- id: HIGH_VELOCITY
-- severity: HIGH
-- weight: 35
-- description: More than 3 transactions from one account within 60 seconds.
-- param min_count: 4
-- param window_s: 60
--
-- Why: bots and mule accounts move money in bursts that no person types.
-- Evaluated per event on the account's sliding window (account_history.velocity_window: the
-- transactions less than window_s older than this one, this one included), so it fires on the
-- 4th transaction itself and on each one after it while the burst lasts, and a burst that
-- straddles a minute boundary is still one burst (the original's tumbling window split it).
-- The window is exclusive: four transactions exactly 60 s apart from first to last are not a
-- burst. The evidence is the whole window: its count, its first transaction and the span.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['count', CAST(velocity_window.tx_count AS STRING),
           'first_transaction_id', velocity_window.first_transaction_id,
           'span_ms', CAST(ts_ms - velocity_window.first_ts_ms AS STRING),
           'window_s', '${window_s}'] AS evidence
FROM account_history
WHERE velocity_window.tx_count >= ${min_count}
