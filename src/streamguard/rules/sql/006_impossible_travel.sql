-- id: IMPOSSIBLE_TRAVEL
-- severity: HIGH
-- weight: 40
-- description: Two consecutive transactions of one account imply travel above 900 km/h.
-- param max_speed_kmh: 900
--
-- Why: a card used in São Paulo and, an hour later, in Recife (2,100 km) means a cloned card or
-- a stolen credential. A pattern of two consecutive transactions (A B) in event-time order, with
-- the great-circle (haversine) distance between them; the comparison is multiplied out
-- (distance * 1 h > speed * elapsed), so two places at the same instant count as infinitely
-- fast instead of dividing by zero. Pairs more than 24 h apart are not compared: no two points
-- on Earth are more than 20,016 km apart, which takes 22.3 h at 900 km/h, and the bound lets
-- the engine forget an account's last position after a day of event time.
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
        SELECT account_id, transaction_id, amount, ts_ms, ts, lat, lon
        FROM transactions_on_time
        WHERE lat IS NOT NULL AND lon IS NOT NULL
    )
    MATCH_RECOGNIZE (
        PARTITION BY account_id
        ORDER BY ts
        MEASURES
            B.transaction_id AS transaction_id, B.amount AS amount, B.ts_ms AS ts_ms,
            B.lat AS lat, B.lon AS lon,
            A.transaction_id AS prev_transaction_id, A.ts_ms AS prev_ts_ms,
            A.lat AS prev_lat, A.lon AS prev_lon
        ONE ROW PER MATCH
        AFTER MATCH SKIP TO NEXT ROW
        PATTERN (A B) WITHIN INTERVAL '24' HOUR
        DEFINE
            B AS 2 * 6371.0088 * ASIN(SQRT(
                    POWER(SIN(RADIANS(B.lat - A.lat) / 2), 2)
                    + COS(RADIANS(A.lat)) * COS(RADIANS(B.lat))
                      * POWER(SIN(RADIANS(B.lon - A.lon) / 2), 2))) * 3600000.0
                > ${max_speed_kmh} * (B.ts_ms - A.ts_ms)
    )
)
