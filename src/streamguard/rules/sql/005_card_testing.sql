-- id: CARD_TESTING
-- severity: CRITICAL
-- weight: 50
-- description: 3+ transactions under R$ 10 then one over R$ 1,000 on one account within 10 min.
-- param small_max_brl: 10.00
-- param min_small: 3
-- param large_min_brl: 1000.00
-- param window_s: 600
--
-- Why: fraudsters check that a stolen card works with tiny charges, then cash out. The tiny
-- charges must be consecutive: a normal purchase in between breaks the pattern (strict
-- contiguity of MATCH_RECOGNIZE). The alert is on the large transaction.
-- The pattern reads only the rows that can change a match: small ones, large ones, and the
-- row right after a small one (which breaks a run of them). Any other row meets no partial
-- match, so leaving it out changes no alert and spares the pattern most of the stream.
-- Late events (behind the watermark) are skipped: see rules/README.md.
SELECT transaction_id, account_id, amount, ts_ms,
       MAP['small_count', CAST(small_count AS STRING),
           'small_sum_brl', CAST(small_sum AS STRING),
           'first_small_ts_ms', CAST(first_small_ts_ms AS STRING),
           'window_s', '${window_s}'] AS evidence
-- Only the columns the pattern reads: a pattern buffers whole rows, and the planner does not
-- prune them for MATCH_RECOGNIZE.
FROM (
    SELECT account_id, transaction_id, amount, ts_ms, ts
    FROM account_history
    WHERE amount < ${small_max_brl} OR amount > ${large_min_brl}
       OR previous_amount < ${small_max_brl}
)
MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY ts
    MEASURES
        L.transaction_id AS transaction_id,
        L.amount AS amount,
        L.ts_ms AS ts_ms,
        COUNT(S.transaction_id) AS small_count,
        SUM(S.amount) AS small_sum,
        FIRST(S.ts_ms) AS first_small_ts_ms
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (S{${min_small},} L) WITHIN INTERVAL '${window_s}' SECOND(3)
    DEFINE
        S AS S.amount < ${small_max_brl},
        L AS L.amount > ${large_min_brl}
)
