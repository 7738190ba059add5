-- Tumbling 5-second windows over the built-in demo stream `ticker` (registered by dfstream
-- unless --no-demo; 10 rows/s, change it with --rate):
--
--   dfstream run examples/ticker_windows.sql
--
-- ticker (ticker_symbol VARCHAR, sector VARCHAR, change DOUBLE, price DOUBLE,
--         event_time TIMESTAMP(3), WATERMARK FOR event_time AS event_time - INTERVAL '2' SECOND)
--
-- A window is printed once, when the watermark passes its end (about 2 s after it closes).
SELECT window_start, window_end, ticker_symbol,
       COUNT(*)              AS trades,
       ROUND(AVG(price), 2)  AS avg_price,
       ROUND(SUM(change), 2) AS net_change
FROM TABLE(TUMBLE(TABLE ticker, DESCRIPTOR(event_time), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, ticker_symbol;
