-- id: HIGH_VELOCITY
-- severity: HIGH
-- weight: 35
-- description: More than 3 transactions from one account within 60 seconds.
-- param max_count: 3
-- param window_s: 60
--
-- Why: bots and mule accounts move money in bursts that no person types.
-- A per-event OVER window on event time: it fires on the 4th transaction itself, and a burst
-- that straddles a minute boundary is still one burst (the original's tumbling window split it).
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['count', CAST(tx_count AS STRING),
           'window_s', '${window_s}'] AS evidence
FROM (
    SELECT transaction_id, account_id, amount, ts_ms,
           COUNT(*) OVER (
               PARTITION BY account_id ORDER BY ts
               RANGE BETWEEN INTERVAL '${window_s}' SECOND(3) PRECEDING AND CURRENT ROW
           ) AS tx_count
    FROM transactions_on_time
)
WHERE tx_count > ${max_count}
