-- Kinesis → 1-minute windows per sector (joined with a reference table on S3) → Parquet on S3.
--
--   dfstream run examples/kinesis_to_s3_parquet.sql --no-demo
--
-- Needs a Kinesis stream `trades` (JSON records {"symbol", "price", "qty", "ts"}), a bucket
-- with `reference/companies.csv` (symbol,sector) and a bucket for the output. Credentials
-- and region come from the AWS environment (AWS_ACCESS_KEY_ID, AWS_REGION, ...); for local
-- servers add 'endpoint' = 'http://127.0.0.1:PORT' (and 'allow_http' = 'true' for S3) to
-- each WITH clause. Nothing is printed on stdout; stderr logs every Parquet object written
-- and a status line. Ctrl-C (or --duration) closes the sink: every object is complete.

CREATE STREAM trades (
    symbol VARCHAR, price DOUBLE, qty BIGINT, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kinesis', 'stream' = 'trades', 'starting_position' = 'TRIM_HORIZON',
        'format' = 'json');

CREATE TABLE companies (symbol VARCHAR, sector VARCHAR)
WITH ('connector' = 'object_store', 'path' = 's3://my-reference-bucket/reference/companies.csv',
      'reload_interval' = '10m');

CREATE SINK trade_summary (
    window_start TIMESTAMP, window_end TIMESTAMP, symbol VARCHAR, sector VARCHAR,
    trades BIGINT, volume BIGINT, avg_price DOUBLE
) WITH ('connector' = 'object_store', 'path' = 's3://my-output-bucket/trade_summary/',
        'format' = 'parquet', 'partition_by' = 'dt_hour(window_start)',
        'roll_rows' = '1000000', 'roll_interval' = '15m');

INSERT INTO trade_summary
SELECT w.window_start, w.window_end, w.symbol, c.sector, w.trades, w.volume, w.avg_price
FROM (SELECT window_start, window_end, symbol, COUNT(*) AS trades, SUM(qty) AS volume,
             AVG(price) AS avg_price
      FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
      GROUP BY window_start, window_end, symbol) AS w
JOIN companies AS c ON w.symbol = c.symbol;
