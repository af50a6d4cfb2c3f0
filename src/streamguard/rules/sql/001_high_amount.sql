-- id: HIGH_AMOUNT
-- severity: HIGH
-- weight: 40
-- description: One transaction above the threshold (R$ 3,000.00 by default).
-- param threshold_brl: 3000.00
--
-- Why: most account-takeover and social-engineering losses are single large transfers.
-- A plain filter: it needs no state and fires as soon as the transaction is read, late or not.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['amount_brl', CAST(amount AS STRING),
           'threshold_brl', '${threshold_brl}'] AS evidence
FROM transactions
WHERE amount > ${threshold_brl}
