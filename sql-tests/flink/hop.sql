-- Hopping windows per key: slide 5 s, size 15 s (every row is in exactly 3 windows).
-- Input: events.csv from gen_events.py (no header; every row within 4 s of the max ts seen, so none is late).
CREATE TABLE events (
  ts TIMESTAMP(3), k STRING, v DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'events.csv', 'format' = 'csv');

SELECT window_start, window_end, k, COUNT(*) AS cnt, SUM(v) AS total, MIN(v) AS lo, MAX(v) AS hi, AVG(v) AS mean
FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
GROUP BY window_start, window_end, k;
