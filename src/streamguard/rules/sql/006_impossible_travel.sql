-- id: IMPOSSIBLE_TRAVEL
-- severity: HIGH
-- weight: 40
-- description: Two consecutive transactions of one account imply travel above 900 km/h.
-- param max_speed_kmh: 900
--
-- Why: a card used in São Paulo and, an hour later, in Recife (2,100 km) means a cloned card or
-- a stolen credential. Each located transaction is compared with the account's previous located
-- one in event-time order (account_history.previous_location), by great-circle (haversine)
-- distance. The comparison is multiplied out (distance * 1 h > speed * elapsed), so two places
-- at the same instant count as infinitely fast instead of dividing by zero. Pairs a day or more
-- apart are not compared: no two points on Earth are more than 20,016 km apart, which takes
-- 22.3 h at 900 km/h.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['distance_km', CAST(CAST(distance_km AS DECIMAL(10, 1)) AS STRING),
           'elapsed_s', CAST(CAST((ts_ms - prev_ts_ms) / 1000.0 AS DECIMAL(12, 3)) AS STRING),
           'speed_kmh', CASE WHEN ts_ms = prev_ts_ms THEN 'inf' ELSE CAST(CAST(
               distance_km * 3600000.0 / (ts_ms - prev_ts_ms) AS DECIMAL(14, 1)) AS STRING) END,
           'max_speed_kmh', '${max_speed_kmh}',
           'previous_transaction_id', prev_transaction_id] AS evidence
FROM (
    SELECT transaction_id, account_id, amount, ts_ms,
           previous_location.ts_ms AS prev_ts_ms,
           previous_location.transaction_id AS prev_transaction_id,
           2 * 6371.0088 * ASIN(SQRT(
               POWER(SIN(RADIANS(lat - previous_location.lat) / 2), 2)
               + COS(RADIANS(previous_location.lat)) * COS(RADIANS(lat))
                 * POWER(SIN(RADIANS(lon - previous_location.lon) / 2), 2))) AS distance_km
    FROM account_history
    WHERE lat IS NOT NULL AND lon IS NOT NULL AND previous_location IS NOT NULL
)
WHERE ts_ms - prev_ts_ms < 86400000
  AND distance_km * 3600000.0 > ${max_speed_kmh} * (ts_ms - prev_ts_ms)
