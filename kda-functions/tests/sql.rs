//! SQL-level tests: the functions registered with `register_all` in a `SessionContext`,
//! including SPEC Examples A and B (integer AVG) and the DataFusion built-ins KDA relies on.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::assert_batches_eq;
use datafusion::common::Result;
use datafusion::prelude::SessionContext;
use datafusion_stream_kda_functions::register_all;

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

async fn run_ok(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    match run(ctx, sql).await {
        Ok(b) => b,
        Err(e) => panic!("{sql}\nfailed: {e}"),
    }
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match run(ctx, sql).await {
        Ok(_) => panic!("{sql}\nunexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

fn ctx() -> SessionContext {
    let ctx = SessionContext::new();
    register_all(&ctx);
    ctx
}

/// SPEC Example A/B input: WEATHERSTREAM(ROWTIME TIMESTAMP, CITY VARCHAR, TEMP INTEGER)
/// (lower-case column names: DataFusion folds unquoted identifiers to lower case).
fn weather(ctx: &SessionContext) {
    let rows = [
        ("2018-11-01 01:00:00", "Denver", 29),
        ("2018-11-01 01:00:00", "Anchorage", 2),
        ("2018-11-01 06:00:00", "Miami", 65),
        ("2018-11-01 07:00:00", "Denver", 32),
        ("2018-11-01 09:00:00", "Anchorage", 9),
        ("2018-11-01 13:00:00", "Denver", 50),
        ("2018-11-01 17:00:00", "Anchorage", 10),
        ("2018-11-01 18:00:00", "Miami", 71),
        ("2018-11-01 19:00:00", "Denver", 43),
        ("2018-11-02 01:00:00", "Anchorage", 4),
        ("2018-11-02 01:00:00", "Denver", 39),
        ("2018-11-02 07:00:00", "Denver", 46),
        ("2018-11-02 09:00:00", "Anchorage", 3),
        ("2018-11-02 13:00:00", "Denver", 56),
        ("2018-11-02 17:00:00", "Anchorage", 2),
        ("2018-11-02 19:00:00", "Denver", 50),
        ("2018-11-03 01:00:00", "Denver", 36),
        ("2018-11-03 01:00:00", "Anchorage", 1),
    ];
    let fmt = datafusion_stream_kda_functions::simple_date_format::SimpleDateFormat::compile(
        "yyyy-MM-dd HH:mm:ss",
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "rowtime",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("city", DataType::Utf8, false),
        Field::new("temp", DataType::Int32, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMillisecondArray::from(
                rows.iter()
                    .map(|r| fmt.parse_millis(r.0).unwrap())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    ctx.register_batch("weatherstream", batch).unwrap();
}

#[tokio::test]
async fn example_a_daily_aggregates_with_truncating_avg() {
    let ctx = ctx();
    weather(&ctx);
    let batches = run_ok(
        &ctx,
        "SELECT FLOOR_TO(ROWTIME, 'DAY') AS floor_day, city, MIN(temp) AS min_temp, \
                MAX(temp) AS max_temp, KDA_AVG(temp) AS avg_temp, arrow_typeof(KDA_AVG(temp)) AS t \
         FROM weatherstream GROUP BY FLOOR_TO(ROWTIME, 'DAY'), city ORDER BY 1, 2",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------------+-----------+----------+----------+----------+-------+",
            "| floor_day           | city      | min_temp | max_temp | avg_temp | t     |",
            "+---------------------+-----------+----------+----------+----------+-------+",
            "| 2018-11-01T00:00:00 | Anchorage | 2        | 10       | 7        | Int32 |",
            "| 2018-11-01T00:00:00 | Denver    | 29       | 50       | 38       | Int32 |",
            "| 2018-11-01T00:00:00 | Miami     | 65       | 71       | 68       | Int32 |",
            "| 2018-11-02T00:00:00 | Anchorage | 2        | 4        | 3        | Int32 |",
            "| 2018-11-02T00:00:00 | Denver    | 39       | 56       | 47       | Int32 |",
            "| 2018-11-03T00:00:00 | Anchorage | 1        | 1        | 1        | Int32 |",
            "| 2018-11-03T00:00:00 | Denver    | 36       | 36       | 36       | Int32 |",
            "+---------------------+-----------+----------+----------+----------+-------+",
        ],
        &batches
    );
}

#[tokio::test]
async fn example_b2_sliding_kda_avg_retracts() {
    // Per-city windows have no peers with equal ROWTIME, so DataFusion's RANGE frame gives
    // KDA's documented numbers (the frame start moves, which exercises retract_batch).
    let ctx = ctx();
    weather(&ctx);
    let batches = run_ok(
        &ctx,
        "SELECT ROWTIME, city, \
                KDA_AVG(temp) OVER (PARTITION BY city ORDER BY ROWTIME \
                    RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND CURRENT ROW) AS wavg \
         FROM weatherstream WHERE city = 'Denver' ORDER BY ROWTIME",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------------+--------+------+",
            "| rowtime             | city   | wavg |",
            "+---------------------+--------+------+",
            "| 2018-11-01T01:00:00 | Denver | 29   |",
            "| 2018-11-01T07:00:00 | Denver | 30   |",
            "| 2018-11-01T13:00:00 | Denver | 37   |",
            "| 2018-11-01T19:00:00 | Denver | 38   |",
            "| 2018-11-02T01:00:00 | Denver | 38   |",
            "| 2018-11-02T07:00:00 | Denver | 42   |",
            "| 2018-11-02T13:00:00 | Denver | 46   |",
            "| 2018-11-02T19:00:00 | Denver | 46   |",
            "| 2018-11-03T01:00:00 | Denver | 45   |",
            "+---------------------+--------+------+",
        ],
        &batches
    );
}

#[tokio::test]
async fn step_floor_ceil_tsdiff_unix_timestamp() {
    let ctx = ctx();
    weather(&ctx);
    let batches = run_ok(
        &ctx,
        "SELECT STEP(ROWTIME, INTERVAL '5' HOUR) AS s, \"STEP\"(temp, 20) AS st, \
                CEIL_TO(ROWTIME, 'HOUR') AS c, \
                TSDIFF(ROWTIME, TIMESTAMP '2018-11-01 00:00:00') AS d, \
                UNIX_TIMESTAMP(ROWTIME) AS u \
         FROM weatherstream WHERE city = 'Miami' ORDER BY ROWTIME",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------------+----+---------------------+----------+---------------+",
            "| s                   | st | c                   | d        | u             |",
            "+---------------------+----+---------------------+----------+---------------+",
            "| 2018-11-01T06:00:00 | 60 | 2018-11-01T06:00:00 | 21600000 | 1541052000000 |",
            "| 2018-11-01T16:00:00 | 60 | 2018-11-01T18:00:00 | 64800000 | 1541095200000 |",
            "+---------------------+----+---------------------+----------+---------------+",
        ],
        &batches
    );
    // integer STEP floors negative values; TSDIFF accepts BIGINT milliseconds
    let batches = run_ok(
        &ctx,
        "SELECT step(-7, 5) AS a, step(CAST(7 AS INT), 5) AS b, tsdiff(5000, 2000) AS c, \
                tsdiff(NULL, 1) AS d",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----+---+------+---+",
            "| a   | b | c    | d |",
            "+-----+---+------+---+",
            "| -10 | 5 | 3000 |   |",
            "+-----+---+------+---+",
        ],
        &batches
    );
}

#[tokio::test]
async fn tsdiff_of_aggregates_like_real_apps() {
    let ctx = ctx();
    weather(&ctx);
    let batches = run_ok(
        &ctx,
        "SELECT city, TSDIFF(MAX(ROWTIME), MIN(ROWTIME)) / 1000 AS secs \
         FROM weatherstream GROUP BY city ORDER BY city",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----------+--------+",
            "| city      | secs   |",
            "+-----------+--------+",
            "| Anchorage | 172800 |",
            "| Denver    | 172800 |",
            "| Miami     | 43200  |",
            "+-----------+--------+",
        ],
        &batches
    );
}

#[tokio::test]
async fn datetime_conversions() {
    let ctx = ctx();
    let batches = run_ok(
        &ctx,
        "SELECT CHAR_TO_TIMESTAMP('yyyy-MM-dd hh:mm:ss a', '2018-06-13 02:11:05 PM') AS ts, \
                TIMESTAMP_TO_CHAR('yyyy-MM-dd hh:mm:ss', \
                    CHAR_TO_TIMESTAMP('yyyy-MM-dd HH:mm:ss', '2018-06-13 14:11:05')) AS twelve, \
                TIMESTAMP_TO_CHAR('yyyy', CAST(NULL AS TIMESTAMP)) AS null_text, \
                CHAR_TO_TIMESTAMP('yyyy-MM-dd', 'garbage') AS no_match, \
                CHAR_TO_DATE('dd/MM/yyyy', '02/11/2018') AS d, \
                CHAR_TO_TIME('HH:mm', '13:45') AS t, \
                DATE_TO_CHAR('EEE d MMM', CHAR_TO_DATE('dd/MM/yyyy', '02/11/2018')) AS dc, \
                TIME_TO_CHAR('h:mm a', CHAR_TO_TIME('HH:mm', '13:45')) AS tc",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------------+---------------------+-----------+----------+------------+----------+-----------+---------+",
            "| ts                  | twelve              | null_text | no_match | d          | t        | dc        | tc      |",
            "+---------------------+---------------------+-----------+----------+------------+----------+-----------+---------+",
            "| 2018-06-13T14:11:05 | 2018-06-13 02:11:05 | null      |          | 2018-11-02 | 13:45:00 | Fri 2 Nov | 1:45 PM |",
            "+---------------------+---------------------+-----------+----------+------------+----------+-----------+---------+",
        ],
        &batches
    );
    let types = run_ok(
        &ctx,
        "SELECT arrow_typeof(CHAR_TO_TIMESTAMP('yyyy', '2018')) AS a, \
                arrow_typeof(CHAR_TO_DATE('yyyy', '2018')) AS b, \
                arrow_typeof(CHAR_TO_TIME('HH', '10')) AS c",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------+--------+------------+",
            "| a             | b      | c          |",
            "+---------------+--------+------------+",
            "| Timestamp(ms) | Date32 | Time32(ms) |",
            "+---------------+--------+------------+",
        ],
        &types
    );
}

#[tokio::test]
async fn bad_formats_and_types_fail_at_planning_with_the_function_name() {
    let ctx = ctx();
    let err = error_of(
        &ctx,
        "SELECT TIMESTAMP_TO_CHAR('YYYY-MM-dd', TIMESTAMP '2018-01-01 00:00:00')",
    )
    .await;
    assert!(
        err.contains("TIMESTAMP_TO_CHAR") && err.contains("'Y'"),
        "{err}"
    );
    let err = error_of(&ctx, "SELECT CHAR_TO_TIMESTAMP('yyyy-ww', '2018')").await;
    assert!(
        err.contains("CHAR_TO_TIMESTAMP") && err.contains("'w'"),
        "{err}"
    );
    let err = error_of(&ctx, "SELECT STEP('abc', 5)").await;
    assert!(err.contains("STEP: unsupported argument types"), "{err}");
    let err = error_of(
        &ctx,
        "SELECT FLOOR_TO(TIMESTAMP '2018-01-01 00:00:00', 'FORTNIGHT')",
    )
    .await;
    assert!(
        err.contains("FLOOR_TO: unsupported time unit 'FORTNIGHT'"),
        "{err}"
    );
    let err = error_of(&ctx, "SELECT TSDIFF('a', 'b')").await;
    assert!(err.contains("TSDIFF: argument 1 (startTime)"), "{err}");
    let err = error_of(&ctx, "SELECT REGEX_REPLACE('a', 'a', 'b', 0, 0)").await;
    assert!(
        err.contains("REGEX_REPLACE: startPosition must be at least 1"),
        "{err}"
    );
}

#[tokio::test]
async fn upper_and_lower_case_names_resolve() {
    let ctx = ctx();
    let batches = run_ok(
        &ctx,
        "SELECT \"UNIX_TIMESTAMP\"(TIMESTAMP '1970-01-01 00:00:01') AS a, \
                unix_timestamp(TIMESTAMP '1970-01-01 00:00:02') AS b, \
                \"MONOTONIC\"(3) AS c, monotonic('x') AS d",
    )
    .await;
    assert_batches_eq!(
        [
            "+------+------+---+---+",
            "| a    | b    | c | d |",
            "+------+------+---+---+",
            "| 1000 | 2000 | 3 | x |",
            "+------+------+---+---+",
        ],
        &batches
    );
}

#[tokio::test]
async fn monotonic_marks_a_group_by_key_and_current_row_timestamp_is_volatile() {
    let ctx = ctx();
    weather(&ctx);
    let batches = run_ok(
        &ctx,
        "SELECT MONOTONIC(FLOOR_TO(ROWTIME, 'DAY')) AS day, COUNT(*) AS n \
         FROM weatherstream GROUP BY MONOTONIC(FLOOR_TO(ROWTIME, 'DAY')) ORDER BY 1",
    )
    .await;
    assert_batches_eq!(
        [
            "+---------------------+---+",
            "| day                 | n |",
            "+---------------------+---+",
            "| 2018-11-01T00:00:00 | 9 |",
            "| 2018-11-02T00:00:00 | 7 |",
            "| 2018-11-03T00:00:00 | 2 |",
            "+---------------------+---+",
        ],
        &batches
    );
    // not constant-folded: the plan still calls the function
    let plan = run_ok(
        &ctx,
        "EXPLAIN SELECT CURRENT_ROW_TIMESTAMP() FROM weatherstream",
    )
    .await;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(text.contains("CURRENT_ROW_TIMESTAMP()"), "{text}");
    let rows = run_ok(
        &ctx,
        "SELECT COUNT(*) AS n FROM weatherstream WHERE CURRENT_ROW_TIMESTAMP() > TIMESTAMP '2020-01-01 00:00:00'",
    )
    .await;
    assert_batches_eq!(["+----+", "| n  |", "+----+", "| 18 |", "+----+"], &rows);
}

#[tokio::test]
async fn exp_avg_in_a_sliding_window() {
    let ctx = ctx();
    run_ok(
        &ctx,
        "CREATE TABLE t AS SELECT * FROM (VALUES \
            (CAST('2018-01-01 00:00:00' AS TIMESTAMP), 4.0), \
            (CAST('2018-01-01 00:00:10' AS TIMESTAMP), 2.0), \
            (CAST('2018-01-01 00:00:20' AS TIMESTAMP), 1.0), \
            (CAST('2018-01-01 00:01:00' AS TIMESTAMP), 8.0)) AS v(ts, price)",
    )
    .await;
    let batches = run_ok(
        &ctx,
        "SELECT ts, ROUND(EXP_AVG(price, ts, INTERVAL '10' SECOND) OVER (ORDER BY ts \
             RANGE BETWEEN INTERVAL '30' SECOND PRECEDING AND CURRENT ROW), 6) AS e \
         FROM t ORDER BY ts",
    )
    .await;
    // row 3: weights 1/4, 1/2, 1 -> 3 / 1.75; row 4: the others left the 30 s window
    assert_batches_eq!(
        [
            "+---------------------+----------+",
            "| ts                  | e        |",
            "+---------------------+----------+",
            "| 2018-01-01T00:00:00 | 4.0      |",
            "| 2018-01-01T00:00:10 | 2.666667 |",
            "| 2018-01-01T00:00:20 | 1.714286 |",
            "| 2018-01-01T00:01:00 | 8.0      |",
            "+---------------------+----------+",
        ],
        &batches
    );
    let err = error_of(&ctx, "SELECT EXP_AVG(price, INTERVAL '10' SECOND) FROM t").await;
    assert!(err.contains("EXP_AVG: needs the row time"), "{err}");
}

#[tokio::test]
async fn statistical_aggregates_are_datafusions() {
    let ctx = ctx();
    let batches = run_ok(
        &ctx,
        "SELECT STDDEV_POP(x) AS sp, VAR_POP(x) AS vp, ROUND(VAR_SAMP(x), 6) AS vs, \
                ROUND(STDDEV_SAMP(x), 6) AS ss, KDA_AVG(x) AS a, KDA_AVG(y) AS ad \
         FROM (VALUES (2, 2.0), (4, 4.0), (4, 4.0), (4, 4.0), (5, 5.0), (5, 5.0), (7, 7.0), \
                      (9, 9.0), (NULL, NULL)) AS v(x, y)",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----+-----+----------+---------+---+-----+",
            "| sp  | vp  | vs       | ss      | a | ad  |",
            "+-----+-----+----------+---------+---+-----+",
            "| 2.0 | 4.0 | 4.571429 | 2.13809 | 5 | 5.0 |",
            "+-----+-----+----------+---------+---+-----+",
        ],
        &batches
    );
}

#[tokio::test]
async fn string_functions_builtin_and_kda() {
    let ctx = ctx();
    let batches = run_ok(
        &ctx,
        "SELECT CHAR_LENGTH('héllo') AS cl, CHARACTER_LENGTH('ab') AS cl2, \
                POSITION('b' IN 'abc') AS p1, POSITION('' IN 'abc') AS p2, POSITION('z' IN 'abc') AS p3, \
                SUBSTRING('123456789' FROM 3 FOR 4) AS s1, SUBSTRING('123456789' FROM 17 FOR 4) AS s2, \
                SUBSTRING('123456789' FROM -1 FOR 4) AS s3, SUBSTRING('123456789', 8, 4) AS s4, \
                SUBSTRING('TECHNOLOGY' FROM 'L[A-Z]*') AS s5",
    )
    .await;
    assert_batches_eq!(
        [
            "+----+-----+----+----+----+------+----+----+----+------+",
            "| cl | cl2 | p1 | p2 | p3 | s1   | s2 | s3 | s4 | s5   |",
            "+----+-----+----+----+----+------+----+----+----+------+",
            "| 5  | 2   | 2  | 1  | 0  | 3456 |    | 12 | 89 | LOGY |",
            "+----+-----+----+----+----+------+----+----+----+------+",
        ],
        &batches
    );
    let batches = run_ok(
        &ctx,
        "SELECT OVERLAY('12345' PLACING 'foo' FROM 0) AS o1, \
                OVERLAY('12345' PLACING 'foo' FROM 2 FOR 2) AS o2, \
                overlay('12345', 'foo', -2) AS o3, \
                INITCAP('each FIRST lEtTeR o''NEIL-smith') AS i, \
                REGEX_REPLACE('2018-06-13', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1', 1, 0) AS r1, \
                REGEX_REPLACE('aaaa', 'a', 'b', 2, 2) AS r2, \
                REGEX_REPLACE('abc', 'a', 'b', 9, 0) AS r3, \
                REGEX_REPLACE(NULL, 'a', 'b', 1, 0) AS r4",
    )
    .await;
    assert_batches_eq!(
        [
            "+--------+--------+----------+--------------------------------+------------+------+-----+----+",
            "| o1     | o2     | o3       | i                              | r1         | r2   | r3  | r4 |",
            "+--------+--------+----------+--------------------------------+------------+------+-----+----+",
            "| foo345 | 1foo45 | foo12345 | Each First Letter O'neil-smith | 13/06/2018 | aaba | abc |    |",
            "+--------+--------+----------+--------------------------------+------------+------+-----+----+",
        ],
        &batches
    );
    let err = error_of(&ctx, "SELECT OVERLAY('abc' PLACING 'x' FROM 1 FOR -1)").await;
    assert!(
        err.contains("OVERLAY: the string length must not be negative"),
        "{err}"
    );
}

#[tokio::test]
async fn log_parser_struct_fields_are_addressable() {
    let ctx = ctx();
    run_ok(
        &ctx,
        "CREATE TABLE logs AS SELECT * FROM (VALUES \
            ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326'), \
            ('not a log line')) AS v(line)",
    )
    .await;
    // get_field(struct, 'NAME') always works
    let batches = run_ok(
        &ctx,
        "SELECT get_field(W3C_LOG_PARSE(line, 'COMMON'), 'COLUMN1') AS host, \
                get_field(W3C_LOG_PARSE(line, 'COMMON'), 'COLUMN6') AS status \
         FROM logs ORDER BY host",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----------+--------+",
            "| host      | status |",
            "+-----------+--------+",
            "| 127.0.0.1 | 200    |",
            "|           |        |",
            "+-----------+--------+",
        ],
        &batches
    );
    // KDA's t.REC.COLUMN1 works as t.rec."COLUMN1" (unquoted names are folded to lower case
    // by DataFusion's default ident normalization, and the fields are upper case)
    let batches = run_ok(
        &ctx,
        "SELECT t.rec.\"COLUMN5\" AS request, t.rec.\"COLUMN7\" AS bytes FROM \
            (SELECT W3C_LOG_PARSE(line, 'COMMON') AS rec FROM logs) AS t WHERE t.rec IS NOT NULL",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----------------------------+-------+",
            "| request                     | bytes |",
            "+-----------------------------+-------+",
            "| GET /apache_pb.gif HTTP/1.0 | 2326  |",
            "+-----------------------------+-------+",
        ],
        &batches
    );
    // rec['COLUMN1'] is planned by KdaExprPlanner (DataFusion's own subscript planner needs
    // the nested_expressions feature, which this workspace disables)
    let batches = run_ok(
        &ctx,
        "SELECT rec['COLUMN1'] AS host, rec['COLUMN4'] AS time FROM \
            (SELECT W3C_LOG_PARSE(line, 'COMMON') AS rec FROM logs) AS t WHERE rec IS NOT NULL",
    )
    .await;
    assert_batches_eq!(
        [
            "+-----------+----------------------------+",
            "| host      | time                       |",
            "+-----------+----------------------------+",
            "| 127.0.0.1 | 10/Oct/2000:13:55:36 -0700 |",
            "+-----------+----------------------------+",
        ],
        &batches
    );
    // unquoted t.REC.COLUMN1 is folded to t.rec.column1, which does not exist
    let err = error_of(
        &ctx,
        "SELECT t.REC.COLUMN1 FROM (SELECT W3C_LOG_PARSE(line, 'COMMON') AS rec FROM logs) AS t",
    )
    .await;
    assert!(err.contains("column1"), "{err}");
}

#[tokio::test]
async fn log_parsers_in_sql() {
    let ctx = ctx();
    let batches = run_ok(
        &ctx,
        "SELECT get_field(REGEX_LOG_PARSE('id=42 user=bob', 'id=(\\d+) user=(\\w+)', 'ID INTEGER, USERNAME VARCHAR(8)'), 'ID') + 1 AS id_plus_one, \
                get_field(FAST_REGEX_LOG_PARSE('Mary_had_a_little_lamb', '(.*)_(._.*)_.*'), 'COLUMN2') AS frlp, \
                get_field(VARIABLE_COLUMN_LOG_PARSE('a,b,c', 2, ','), 'COLUMN2') AS vclp, \
                get_field(FIXED_COLUMN_LOG_PARSE('0042abc', 'N TYPE INTEGER START 0 FOR 4, S TYPE VARCHAR(3) START 4'), 'N') AS fclp, \
                get_field(SYS_LOG_PARSE('Feb  5 17:32:18 host1 sshd: ok'), 'COLUMN2') AS sys, \
                REGEX_LOG_PARSE('no match', '(\\d+)') IS NULL AS rlp_null",
    )
    .await;
    assert_batches_eq!(
        [
            "+-------------+----------+------+------+----------------+----------+",
            "| id_plus_one | frlp     | vclp | fclp | sys            | rlp_null |",
            "+-------------+----------+------+------+----------------+----------+",
            "| 43          | a_little | b    | 42   | host1 sshd: ok | true     |",
            "+-------------+----------+------+------+----------------+----------+",
        ],
        &batches
    );
    let err = error_of(
        &ctx,
        "SELECT REGEX_LOG_PARSE(x, x) FROM (VALUES ('a')) AS v(x)",
    )
    .await;
    assert!(
        err.contains("REGEX_LOG_PARSE: argument 2 must be a constant"),
        "{err}"
    );
    let err = error_of(&ctx, "SELECT W3C_LOG_PARSE('x', '%{abc')").await;
    assert!(err.contains("W3C_LOG_PARSE: unterminated"), "{err}");
}

#[tokio::test]
async fn kda_style_upper_case_identifiers_without_normalization() {
    // With identifier normalization off (a front end keeping KDA's upper-case names),
    // KDA's own spelling t.REC.COLUMN1 works; function names still resolve (lower-case alias).
    let ctx = SessionContext::new();
    ctx.sql("SET datafusion.sql_parser.enable_ident_normalization = false")
        .await
        .unwrap();
    register_all(&ctx);
    run_ok(
        &ctx,
        "CREATE TABLE LOGS AS SELECT * FROM (VALUES ('Feb  5 17:32:18 host1 sshd: ok')) AS v(LINE)",
    )
    .await;
    let batches = run_ok(
        &ctx,
        "SELECT t.REC.COLUMN2 AS MSG, UNIX_TIMESTAMP(t.REC.COLUMN1) AS MS \
         FROM (SELECT SYS_LOG_PARSE(LINE) AS REC FROM LOGS) AS t",
    )
    .await;
    assert_batches_eq!(
        [
            "+----------------+------------+",
            "| MSG            | MS         |",
            "+----------------+------------+",
            "| host1 sshd: ok | 3087138000 |",
            "+----------------+------------+",
        ],
        &batches
    );
}
