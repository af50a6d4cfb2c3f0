-- id: HIGH_VELOCITY_AMOUNT
-- severity: HIGH
-- weight: 35
-- description: More than R$ 10,000.00 spent by one account within 5 minutes.
-- param max_sum_brl: 10000.00
-- param window_s: 300
--
-- Why: a drained account rarely goes in one transfer; it goes in several medium ones that each
-- stay under HIGH_AMOUNT. A per-event sliding sum (account_history.spend_window: the
-- transactions less than window_s older than this one, this one included), so the alert fires
-- on the transaction that crosses the line, whatever the clock minute.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['sum_brl', CAST(spend_window.amount_sum AS STRING),
           'count', CAST(spend_window.tx_count AS STRING),
           'window_s', '${window_s}',
           'threshold_brl', '${max_sum_brl}'] AS evidence
FROM account_history
WHERE spend_window.amount_sum > ${max_sum_brl}
