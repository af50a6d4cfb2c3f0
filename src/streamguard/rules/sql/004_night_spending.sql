-- id: NIGHT_SPENDING
-- severity: MEDIUM
-- weight: 20
-- description: Above R$ 1,000.00 between 22:00 and 06:00 America/Sao_Paulo time.
-- param min_amount_brl: 1000.00
-- param start_hour: 22
-- param end_hour: 6
--
-- Why: express kidnappings and stolen phones drain accounts at night. The default amount is
-- the Central Bank's default night-time PIX limit for individuals (R$ 1,000 from 20:00 to
-- 06:00, Resolution BCB 142/2021): above it a customer must have raised the limit on purpose,
-- days ahead, so a legitimate night payment over R$ 1,000 is rare and the alert stays precise.
-- Without an amount (the original) every late pizza order would be flagged.
-- The hour is read in the session time zone, which the engine pins to
-- STREAMGUARD_LOCAL_TIME_ZONE (America/Sao_Paulo), never the machine's zone. Stateless: a late
-- event is judged like any other.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['amount_brl', CAST(amount AS STRING),
           'threshold_brl', '${min_amount_brl}',
           'local_time', DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm:ss'),
           'time_zone', 'America/Sao_Paulo'] AS evidence
FROM transactions
WHERE amount > ${min_amount_brl}
  AND (HOUR(ts) >= ${start_hour} OR HOUR(ts) < ${end_hour})
