-- Tumbling 10-second windows over a CSV file of trades, per symbol.
--
--   dfstream run examples/file_windows.sql --format csv      (from the repository root)
--
-- Rows arrive up to 3 s out of order; the watermark trails the largest `ts` seen by 5 s, so
-- none is late. The file ends, the watermark jumps to the end, every window is emitted and
-- dfstream exits 0. Use your own file: change 'path' and the columns (found by header name).
CREATE STREAM trades (
    ts     TIMESTAMP(3),
    symbol VARCHAR,
    price  DOUBLE,
    qty    BIGINT,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'file',
    'path'      = 'examples/trades.csv',
    'format'    = 'csv'
);

SELECT window_start, window_end, symbol,
       COUNT(*)   AS trades,
       SUM(qty)   AS volume,
       MIN(price) AS low,
       MAX(price) AS high
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, symbol;
