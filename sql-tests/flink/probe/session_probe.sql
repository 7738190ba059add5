-- Session-gap boundary probe (no row is late): does a row exactly `gap` after the previous one join its session?
CREATE TABLE events (
  ts TIMESTAMP(3), k STRING, v DOUBLE,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'session_probe.csv', 'format' = 'csv');

SELECT window_start, window_end, k, COUNT(*) AS cnt, SUM(v) AS total, MIN(v) AS lo, MAX(v) AS hi, AVG(v) AS mean
FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
