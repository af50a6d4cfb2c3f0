-- id: HIGH_AMOUNT
-- severity: HIGH
-- weight: 40
-- description: One transaction above the threshold (R$ 3,000.00 by default).
-- param threshold_brl: 3000.00
--
-- Why: most account-takeover and social-engineering losses are single large transfers.
-- A plain filter: it needs no state and fires as soon as the transaction is read, late or not.
-- A PIX payment's evidence names the payee's key type: a large transfer to a random key (which
-- says nothing about who holds it) reads differently from one to a CPF the customer typed.
SELECT transaction_id, account_id, amount, ts_ms,
       CASE WHEN payee_key_type IS NULL
            THEN MAP['amount_brl', CAST(amount AS STRING),
                     'threshold_brl', '${threshold_brl}']
            ELSE MAP['amount_brl', CAST(amount AS STRING),
                     'threshold_brl', '${threshold_brl}',
                     'payee_key_type', payee_key_type]
       END AS evidence
FROM transactions
WHERE amount > ${threshold_brl}
