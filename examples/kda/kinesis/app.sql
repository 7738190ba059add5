-- A KDA application on a Kinesis data stream (see app.json and the README):
--   dfstream kda examples/kda/kinesis/app.sql --description examples/kda/kinesis/app.json \
--     --sink DESTINATION_SQL_STREAM=s3://lake/windows/?format=parquet \
--     --sink error_stream=s3://lake/errors/?format=json
-- Each in-application input stream (InputParallelism 2: SOURCE_SQL_STREAM_001 and _002, each
-- with its share of the shards) is joined with the reference table COMPANIES (loaded from
-- S3), and the enriched trades are counted per ticker in 2-second tumbling windows.
CREATE OR REPLACE STREAM "ENRICHED" (
    TICKER  VARCHAR(4),
    COMPANY VARCHAR(32),
    PRICE   DOUBLE);

CREATE OR REPLACE PUMP "ENRICH_001" AS INSERT INTO "ENRICHED"
    SELECT STREAM s.TICKER, c.COMPANY, s.PRICE
    FROM "SOURCE_SQL_STREAM_001" AS s JOIN "COMPANIES" AS c ON s.TICKER = c.TICKER;

CREATE OR REPLACE PUMP "ENRICH_002" AS INSERT INTO "ENRICHED"
    SELECT STREAM s.TICKER, c.COMPANY, s.PRICE
    FROM "SOURCE_SQL_STREAM_002" AS s JOIN "COMPANIES" AS c ON s.TICKER = c.TICKER;

CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    TICKER       VARCHAR(4),
    COMPANY      VARCHAR(32),
    WINDOW_START TIMESTAMP,
    TRADES       BIGINT,
    TOTAL        DOUBLE);

CREATE OR REPLACE PUMP "WINDOW_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM TICKER, COMPANY, STEP("ENRICHED".ROWTIME BY INTERVAL '2' SECOND),
           COUNT(*), SUM(PRICE)
    FROM "ENRICHED"
    GROUP BY TICKER, COMPANY, STEP("ENRICHED".ROWTIME BY INTERVAL '2' SECOND);
