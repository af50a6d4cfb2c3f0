-- id: IMPOSSIBLE_TRAVEL
-- severity: HIGH
-- weight: 40
-- description: Two consecutive transactions of one account imply travel above 900 km/h.
-- param max_speed_kmh: 900
--
-- Why: a card used in São Paulo and, an hour later, in Recife (2,100 km) means a cloned card or
-- a stolen credential. Great-circle (haversine) distance between consecutive transactions in
-- event-time order; the comparison is multiplied out (distance * 1 h > speed * elapsed) so two
-- places at the same instant count as infinitely fast instead of dividing by zero.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['distance_km', CAST(CAST(distance_km AS DECIMAL(10, 1)) AS STRING),
           'elapsed_s', CAST(CAST((ts_ms - prev_ts_ms) / 1000.0 AS DECIMAL(12, 3)) AS STRING),
           'speed_kmh', CASE WHEN ts_ms = prev_ts_ms THEN 'inf' ELSE CAST(CAST(
               distance_km * 3600000.0 / (ts_ms - prev_ts_ms) AS DECIMAL(14, 1)) AS STRING) END,
           'max_speed_kmh', '${max_speed_kmh}',
           'previous_transaction_id', prev_transaction_id] AS evidence
FROM (
    SELECT transaction_id, account_id, amount, ts_ms, prev_ts_ms, prev_transaction_id,
           2 * 6371.0088 * ASIN(SQRT(
               POWER(SIN(RADIANS(lat - prev_lat) / 2), 2)
               + COS(RADIANS(prev_lat)) * COS(RADIANS(lat))
                 * POWER(SIN(RADIANS(lon - prev_lon) / 2), 2))) AS distance_km
    FROM (
        SELECT transaction_id, account_id, amount, ts_ms, lat, lon,
               LAG(lat) OVER w AS prev_lat,
               LAG(lon) OVER w AS prev_lon,
               LAG(ts_ms) OVER w AS prev_ts_ms,
               LAG(transaction_id) OVER w AS prev_transaction_id
        FROM transactions_on_time
        WHERE lat IS NOT NULL AND lon IS NOT NULL
        WINDOW w AS (PARTITION BY account_id ORDER BY ts)
    )
    WHERE prev_ts_ms IS NOT NULL
)
WHERE distance_km * 3600000.0 > ${max_speed_kmh} * (ts_ms - prev_ts_ms)
