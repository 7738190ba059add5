-- A KDA application on the demo ticker stream (SOURCE_SQL_STREAM_001: TICKER_SYMBOL,
-- SECTOR, CHANGE, PRICE, EVENT_TIME). Run it with:
--   cargo run --release -p dfstream -- kda examples/kda/ticker_app.sql --duration 30s
-- Three pumps read the input: a 10-second tumbling window, a stagger window and a sliding
-- window; a fourth pump filters the sliding output. Each stream is printed as it fills.

-- Tumbling: per ticker, every 10 seconds of ROWTIME (one row per ticker when the window closes).
CREATE OR REPLACE STREAM "TUMBLING_STREAM" (
    TICKER_SYMBOL VARCHAR(4),
    WINDOW_START  TIMESTAMP,
    TRADES        BIGINT,
    AVG_PRICE     DOUBLE,
    MAX_CHANGE    DOUBLE);
CREATE OR REPLACE PUMP "TUMBLING_PUMP" AS INSERT INTO "TUMBLING_STREAM"
    SELECT STREAM TICKER_SYMBOL,
           STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '10' SECOND),
           COUNT(*), AVG(PRICE), MAX(CHANGE)
    FROM "SOURCE_SQL_STREAM_001"
    GROUP BY TICKER_SYMBOL, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '10' SECOND);

-- Stagger: a window opens per (ticker, event minute) with its first trade and closes 5 s later.
CREATE OR REPLACE STREAM "STAGGER_STREAM" (
    TICKER_SYMBOL VARCHAR(4),
    EVENT_MINUTE  TIMESTAMP,
    TRADES        BIGINT);
CREATE OR REPLACE PUMP "STAGGER_PUMP" AS INSERT INTO "STAGGER_STREAM"
    SELECT STREAM TICKER_SYMBOL, FLOOR(EVENT_TIME TO MINUTE), COUNT(*)
    FROM "SOURCE_SQL_STREAM_001"
    WINDOWED BY STAGGER (
        PARTITION BY TICKER_SYMBOL, FLOOR(EVENT_TIME TO MINUTE) RANGE INTERVAL '5' SECOND);

-- Sliding: for every trade, the average price of its ticker over the last 30 seconds.
CREATE OR REPLACE STREAM "SLIDING_STREAM" (
    TICKER_SYMBOL VARCHAR(4),
    PRICE         DOUBLE,
    AVG_30S       DOUBLE,
    TRADES_30S    BIGINT);
CREATE OR REPLACE PUMP "SLIDING_PUMP" AS INSERT INTO "SLIDING_STREAM"
    SELECT STREAM TICKER_SYMBOL, PRICE,
           AVG(PRICE) OVER W30,
           COUNT(*) OVER W30
    FROM "SOURCE_SQL_STREAM_001"
    WINDOW W30 AS (PARTITION BY TICKER_SYMBOL RANGE INTERVAL '30' SECOND PRECEDING);

-- Alerts: trades more than 1% away from their 30-second average (a pump over a pump).
CREATE OR REPLACE STREAM "ALERTS" (TICKER_SYMBOL VARCHAR(4), PRICE DOUBLE, AVG_30S DOUBLE);
CREATE OR REPLACE PUMP "ALERT_PUMP" AS INSERT INTO "ALERTS"
    SELECT STREAM TICKER_SYMBOL, PRICE, AVG_30S
    FROM "SLIDING_STREAM"
    WHERE ABS(PRICE - AVG_30S) / AVG_30S > 0.01;
