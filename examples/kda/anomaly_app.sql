-- Anomaly detection on the demo ticker stream (SOURCE_SQL_STREAM_001: TICKER_SYMBOL, SECTOR,
-- CHANGE, PRICE, EVENT_TIME), as the KDA SQL Reference writes it. Run it with:
--   dfstream kda examples/kda/anomaly_app.sql --duration 30s --output ANOMALIES --output HOTSPOTS_STREAM
-- The model reads every numeric column of its cursor (here CHANGE and PRICE).

-- RANDOM_CUT_FOREST_WITH_EXPLANATION: scores are 0 while the forest learns (the first 256
-- trades); after that, each trade's score and the share of it each column explains.
CREATE OR REPLACE STREAM "ANOMALIES" (
    TICKER_SYMBOL       VARCHAR(4),
    PRICE               DOUBLE,
    ANOMALY_SCORE       DOUBLE,
    ANOMALY_EXPLANATION VARCHAR(1024));
CREATE OR REPLACE PUMP "RCF_PUMP" AS INSERT INTO "ANOMALIES"
    SELECT STREAM TICKER_SYMBOL, PRICE, ANOMALY_SCORE, ANOMALY_EXPLANATION
    FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
        CURSOR(SELECT STREAM TICKER_SYMBOL, CHANGE, PRICE FROM "SOURCE_SQL_STREAM_001"),
        100, 256, 100000, 1, true))
    WHERE ANOMALY_SCORE > 0;

-- HOTSPOTS (the SQL Reference's ticker variant): dense regions of (CHANGE, PRICE) among the
-- last 100 trades; every trade carries the JSON of the current hotspots.
CREATE OR REPLACE STREAM "HOTSPOTS_STREAM" (
    CHANGE          DOUBLE,
    PRICE           DOUBLE,
    HOTSPOTS_RESULT VARCHAR(10000));
CREATE OR REPLACE PUMP "HOTSPOTS_PUMP" AS INSERT INTO "HOTSPOTS_STREAM"
    SELECT STREAM "CHANGE", "PRICE", "HOTSPOTS_RESULT"
    FROM TABLE(HOTSPOTS(
        CURSOR(SELECT STREAM "CHANGE", "PRICE" FROM "SOURCE_SQL_STREAM_001"), 100, 0.013, 20));
