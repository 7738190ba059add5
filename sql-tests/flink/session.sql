-- Session windows per key with a 10 s gap.
-- Input: events.csv from gen_events.py (no header; every row within 4 s of the max ts seen, so none is late).
CREATE TABLE events (
  ts TIMESTAMP(3), k STRING, v DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'events.csv', 'format' = 'csv');

SELECT window_start, window_end, k, COUNT(*) AS cnt, SUM(v) AS total, MIN(v) AS lo, MAX(v) AS hi, AVG(v) AS mean
FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
