-- id: HIGH_VELOCITY_AMOUNT
-- severity: HIGH
-- weight: 35
-- description: More than R$ 10,000.00 spent by one account within 5 minutes.
-- param max_sum_brl: 10000.00
-- param window_s: 300
--
-- Why: a drained account rarely goes in one transfer; it goes in several medium ones that each
-- stay under HIGH_AMOUNT. A per-event sliding sum (OVER window on event time), so the alert
-- fires on the transaction that crosses the line, whatever the clock minute.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['sum_brl', CAST(sum_brl AS STRING),
           'count', CAST(tx_count AS STRING),
           'window_s', '${window_s}',
           'threshold_brl', '${max_sum_brl}'] AS evidence
FROM (
    SELECT transaction_id, account_id, amount, ts_ms,
           SUM(amount) OVER w AS sum_brl,
           COUNT(*) OVER w AS tx_count
    FROM transactions_on_time
    WINDOW w AS (
        PARTITION BY account_id ORDER BY ts
        RANGE BETWEEN INTERVAL '${window_s}' SECOND(3) PRECEDING AND CURRENT ROW
    )
)
WHERE sum_brl > ${max_sum_brl}
