//! KDA input schemas through the file connector: records decoded with KDA's rules inside a
//! StreamContext, rejected records in the error sink with their raw bytes, nothing lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;
use datafusion_stream::errors::{CollectingErrorSink, ErrorRecord, ErrorSink, FailOnError};
use datafusion_stream::{LateRowPolicy, ManualClock, StreamContext, StreamRuntime};
use datafusion_stream_connectors::register_all;

/// A file in a fresh temporary directory, removed on drop.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dfstream-kda-input-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        Self { dir, path }
    }

    fn path(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn context(errors: Arc<dyn ErrorSink>) -> StreamContext {
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: ManualClock::new(1_000),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors,
    });
    register_all(&ctx);
    ctx
}

/// Rows as comma-separated text.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    out
}

/// Runs the DDL and the query with a collecting error sink: (rows, rejected records).
async fn run(ddl: &str, query: &str) -> Result<(Vec<String>, Vec<ErrorRecord>)> {
    let sink = Arc::new(CollectingErrorSink::default());
    let ctx = context(Arc::clone(&sink) as Arc<dyn ErrorSink>);
    ctx.run_script(ddl).await?;
    let batches = ctx.query(query).await?.collect().await?;
    Ok((lines(&batches), sink.take()))
}

/// The documented example schema (sch-mapping), as one line of JSON.
const TICKER_SCHEMA: &str = r#"{"RecordColumns": [
    {"SqlType": "VARCHAR(4)",   "Name": "TICKER_SYMBOL", "Mapping": "$.TICKER_SYMBOL"},
    {"SqlType": "VARCHAR(16)",  "Name": "SECTOR",        "Mapping": "$.SECTOR"},
    {"SqlType": "TINYINT",      "Name": "CHANGE",        "Mapping": "$.CHANGE"},
    {"SqlType": "DECIMAL(5,2)", "Name": "PRICE",         "Mapping": "$.PRICE"}],
  "RecordFormat": {"MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}, "RecordFormatType": "JSON"},
  "RecordEncoding": "UTF-8"}"#;

const TICKER_LINES: [&str; 8] = [
    r#"{"TICKER_SYMBOL":"AMZN","SECTOR":"TECHNOLOGY","CHANGE":5,"PRICE":84.51}"#,
    r#"{"TICKER_SYMBOL":"XYZ","SECTOR":"INFORMATION TECHNOLOGY","CHANGE":-3,"PRICE":"12.5"}"#,
    r#"{"TICKER_SYMBOL":"BAD","SECTOR":"X","CHANGE":180,"PRICE":1}"#,
    r#"{"TICKER_SYMBOL":"BRK"#,
    r#"{"TICKER_SYMBOL":"NUL"}"#,
    r#"{"TICKER_SYMBOL":"ABC","CHANGE":"12","PRICE":"123.456"}"#,
    r#"{"TICKER_SYMBOL":"DEFGH","CHANGE":true,"PRICE":99.9,"EXTRA":[1]}"#,
    r#""just a string""#,
];

fn ticker_ddl(path: &str, schema_option: &str, batch_size: &str) -> String {
    format!(
        "CREATE STREAM \"SOURCE_SQL_STREAM_001\" (\"TICKER_SYMBOL\" VARCHAR(4), \"SECTOR\" VARCHAR(16), \
         \"CHANGE\" TINYINT, \"PRICE\" DECIMAL(5,2)) \
         WITH ('connector' = 'file', 'path' = '{path}', {schema_option}, 'batch_size' = '{batch_size}')"
    )
}

#[tokio::test]
async fn json_lines_with_an_input_schema_route_bad_records_to_the_error_sink() {
    let f = TempFile::new("ticker.jsonl", &(TICKER_LINES.join("\n") + "\n"));
    let schema_file = TempFile::new("schema.json", TICKER_SCHEMA);
    for (option, batch_size) in [
        (format!("'input_schema' = '{TICKER_SCHEMA}'"), "1024"),
        (
            format!("'input_schema_file' = '{}'", schema_file.path()),
            "2",
        ),
        (
            format!("'input_schema_file' = '{}'", schema_file.path()),
            "1",
        ),
    ] {
        let (rows, rejected) = run(
            &ticker_ddl(&f.path(), &option, batch_size),
            "SELECT * FROM \"SOURCE_SQL_STREAM_001\"",
        )
        .await
        .unwrap();
        // Good rows reach the query, coerced (truncated, parsed, true → 1).
        assert_eq!(
            rows,
            [
                "AMZN,TECHNOLOGY,5,84.51",
                "XYZ,INFORMATION TECH,-3,12.50",
                "NUL,NULL,NULL,NULL",
                "DEFG,NULL,1,99.90",
            ],
            "{option} batch_size {batch_size}"
        );
        // Malformed and overflowing records land in the sink with their raw bytes.
        let summary: Vec<(&str, &[u8])> = rejected
            .iter()
            .map(|r| (r.name.as_str(), r.data_row.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                ("Coercion_Error", TICKER_LINES[2].as_bytes()),
                ("Parse_Error", TICKER_LINES[3].as_bytes()),
                ("Coercion_Error", TICKER_LINES[5].as_bytes()),
                ("Parse_Error", TICKER_LINES[7].as_bytes()),
            ]
        );
        let origin = format!("stream 'SOURCE_SQL_STREAM_001': file '{}'", f.path());
        assert_eq!(
            rejected[0].message,
            format!(
                "{origin} line 3: column 'CHANGE' (mapping '$.CHANGE', TINYINT), value 180: out of range for TINYINT (-128..127)"
            )
        );
        assert!(
            rejected[1]
                .message
                .starts_with(&format!("{origin} line 4: the record is not valid JSON")),
            "{}",
            rejected[1].message
        );
        assert_eq!(
            rejected[2].message,
            format!(
                "{origin} line 6: column 'PRICE' (mapping '$.PRICE', DECIMAL(5,2)), value \"123.456\": has more than 2 decimal places, which DECIMAL(5,2) cannot hold"
            )
        );
        assert_eq!(
            rejected[3].message,
            format!("{origin} line 8: a row must be a JSON object, but the record has a string (\"just a string\")")
        );
        for r in &rejected {
            assert_eq!(r.level, "ERROR");
            assert_eq!(r.error_time, 1_000);
            assert_eq!(r.data_rowtime, Some(1_000));
        }
        // DATA_ROW is hex in error_stream rows.
        assert_eq!(rejected[3].data_row_hex(), "226a757374206120737472696e6722");
        // Nothing is lost.
        assert_eq!(rows.len() + rejected.len(), TICKER_LINES.len());
    }
}

#[tokio::test]
async fn the_default_policy_fails_the_query_on_the_first_bad_record() {
    let f = TempFile::new("ticker.jsonl", &TICKER_LINES.join("\n"));
    let ctx = context(Arc::new(FailOnError));
    ctx.run_script(&ticker_ddl(
        &f.path(),
        &format!("'input_schema' = '{TICKER_SCHEMA}'"),
        "1024",
    ))
    .await
    .unwrap();
    let e = match ctx.query("SELECT * FROM \"SOURCE_SQL_STREAM_001\"").await {
        Ok(q) => q.collect().await.unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("Coercion_Error"), "{e}");
    assert!(e.contains("line 3: column 'CHANGE'"), "{e}");
    assert!(e.contains(TICKER_LINES[2]), "{e}");
}

#[tokio::test]
async fn columns_are_matched_by_name_widened_and_flattened() {
    // Example N's record: one row per order; unquoted (folded) names find the schema's columns;
    // a TINYINT schema column can be declared BIGINT; a schema column may be left out.
    let schema = r#"{"RecordColumns": [
        {"Name": "customerName", "SqlType": "VARCHAR(16)", "Mapping": "$.customerName"},
        {"Name": "city", "SqlType": "VARCHAR(16)", "Mapping": "$.address.city"},
        {"Name": "orderId", "SqlType": "INTEGER", "Mapping": "$.orders[0:].orderId"},
        {"Name": "qty", "SqlType": "TINYINT", "Mapping": "$.orders[0:].qty"}],
      "RecordFormat": {"RecordFormatType": "JSON"}}"#;
    let record = r#"{"customerName":"John Doe","address":{"city":"Anytown"},"orders":[{"orderId":"23284","qty":1},{"orderId":"63122","qty":2},{"orderId":"77284"}]}"#;
    let f = TempFile::new(
        "orders.jsonl",
        &format!("{record}\n\n{{\"customerName\":\"Jane\",\"orders\":[]}}\n"),
    );
    let (rows, rejected) = run(
        &format!(
            "CREATE STREAM orders (customername VARCHAR, orderid INT, qty BIGINT) \
             WITH ('connector' = 'file', 'path' = '{}', 'input_schema' = '{schema}')",
            f.path()
        ),
        "SELECT * FROM orders",
    )
    .await
    .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(
        rows,
        [
            "John Doe,23284,1",
            "John Doe,63122,2",
            "John Doe,77284,NULL",
            "Jane,NULL,NULL"
        ]
    );
}

#[tokio::test]
async fn rowtime_column_reads_a_json_field_and_rejects_going_back() {
    let schema = r#"{"RecordColumns": [
        {"Name": "k", "SqlType": "VARCHAR(4)", "Mapping": "$.k"},
        {"Name": "v", "SqlType": "INTEGER", "Mapping": "$.v"}],
      "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}}}"#;
    let data = [
        r#"{"k":"a","v":1,"rt":"2024-01-01 00:00:01.000"}"#,
        r#"{"k":"b","v":2,"rt":"2024-01-01 00:00:03.500"}"#,
        r#"{"k":"c","v":3,"rt":"2024-01-01 00:00:02.000"}"#,
        r#"{"k":"a","v":4}"#,
        r#"{"k":"a","v":5,"rt":"2024-01-01 00:00:06.000"}"#,
    ];
    let f = TempFile::new("rt.jsonl", &data.join("\n"));
    let ddl = format!(
        "CREATE STREAM s (k VARCHAR, v INT) WITH ('connector' = 'file', 'path' = '{}', \
         'input_schema' = '{schema}', 'rowtime_column' = 'rt', 'batch_size' = '2')",
        f.path()
    );
    let (rows, rejected) = run(&ddl, "SELECT rowtime, k, v FROM s").await.unwrap();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:01,a,1",
            "2024-01-01T00:00:03.500,b,2",
            "2024-01-01T00:00:06,a,5"
        ]
    );
    let names: Vec<&str> = rejected.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Rowtime_Order_Error", "Parse_Error"]);
    assert_eq!(rejected[0].data_row, data[2].as_bytes());
    assert_eq!(rejected[0].data_rowtime, Some(1_704_067_202_000));
    assert!(rejected[1]
        .message
        .ends_with("line 4: the rowtime field 'rt' is missing"));
    // Windows over the supplied ROWTIME.
    let (rows, _) = run(
        &ddl,
        "SELECT window_start, k, SUM(v) AS total FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(rowtime), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end, k",
    )
    .await
    .unwrap();
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:00,a,1",
            "2024-01-01T00:00:00,b,2",
            "2024-01-01T00:00:05,a,5"
        ]
    );
}

#[tokio::test]
async fn csv_with_the_schema_delimiters_a_header_and_a_leading_rowtime() {
    let schema = r#"{"RecordColumns": [
        {"Name": "LastName", "SqlType": "VARCHAR(16)"},
        {"Name": "FirstName", "SqlType": "VARCHAR(16)"},
        {"Name": "CustomerId", "SqlType": "INTEGER"}],
      "RecordFormat": {"RecordFormatType": "CSV", "MappingParameters":
        {"CSVMappingParameters": {"RecordColumnDelimiter": "|", "RecordRowDelimiter": "$$"}}},
      "RecordEncoding": "UTF-8"}"#;
    let schema_file = TempFile::new("customers.json", schema);
    // Line 3 holds two rows (the row delimiter is "$$"); the line breaks are \r\n.
    let data = "rt|LastName|FirstName|CustomerId\r\n\
        2024-01-01 00:00:01|Doe|John|7\r\n\
        2024-01-01 00:00:02|Roe|Jane|8$$2024-01-01 00:00:02|Poe|Ed|x\r\n\
        2024-01-01 00:00:03|Lee|Ann\r\n";
    let f = TempFile::new("customers.csv", data);
    let (rows, rejected) = run(
        &format!(
            "CREATE STREAM customers (\"LastName\" VARCHAR, \"CustomerId\" BIGINT) WITH ('connector' = 'file', \
             'path' = '{}', 'input_schema_file' = '{}', 'header' = 'true', 'rowtime_column' = 'rt')",
            f.path(),
            schema_file.path()
        ),
        "SELECT rowtime, \"LastName\", \"CustomerId\" FROM customers",
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:01,Doe,7",
            "2024-01-01T00:00:02,Roe,8",
            "2024-01-01T00:00:03,Lee,NULL"
        ]
    );
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].data_row, b"2024-01-01 00:00:02|Poe|Ed|x");
    assert!(
        rejected[0].message.ends_with(
            "line 3: column 'CustomerId' (field 4, INTEGER), value \"x\": not a valid INTEGER"
        ),
        "{}",
        rejected[0].message
    );
}

async fn ddl_error(ddl: &str) -> String {
    let ctx = context(Arc::new(FailOnError));
    match ctx.run_script(ddl).await {
        Ok(_) => panic!("expected an error for {ddl}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn bad_options_and_mismatched_columns_are_named() {
    let f = TempFile::new("t.jsonl", "{}\n");
    let p = f.path();
    let schema_file = TempFile::new("schema.json", TICKER_SCHEMA);
    let sf = schema_file.path();
    let s = |options: &str| {
        format!(
            "CREATE STREAM s (ticker_symbol VARCHAR, change TINYINT) WITH ('connector' = 'file', 'path' = '{p}'{options})"
        )
    };
    let e = ddl_error(&s(&format!(
        ", 'input_schema_file' = '{sf}', 'colour' = 'red'"
    )))
    .await;
    assert!(
        e.contains("unknown option") && e.contains("'colour'"),
        "{e}"
    );
    let e = ddl_error(&s(&format!(
        ", 'input_schema_file' = '{sf}', 'input_schema' = '{TICKER_SCHEMA}'"
    )))
    .await;
    assert!(e.contains("not both"), "{e}");
    let e = ddl_error(&s(
        ", 'input_schema_file' = '/nonexistent/dfstream/schema.json'",
    ))
    .await;
    assert!(
        e.contains("'input_schema_file'") && e.contains("/nonexistent/dfstream/schema.json"),
        "{e}"
    );
    let e = ddl_error(&s(&format!(
        ", 'input_schema_file' = '{sf}', 'format' = 'csv'"
    )))
    .await;
    assert!(
        e.contains("'format'") && e.contains("RecordFormatType is JSON"),
        "{e}"
    );
    let e = ddl_error(&s(&format!(
        ", 'input_schema_file' = '{sf}', 'delimiter' = '|'"
    )))
    .await;
    assert!(
        e.contains("'delimiter'") && e.contains("CSVMappingParameters"),
        "{e}"
    );
    let e = ddl_error(&s(&format!(
        ", 'input_schema_file' = '{sf}', 'header' = 'true'"
    )))
    .await;
    assert!(e.contains("'header'"), "{e}");
    let e = ddl_error(&s(", 'input_schema' = '{\"RecordColumns\": []}'")).await;
    assert!(
        e.contains("'input_schema'") && e.contains("RecordFormat"),
        "{e}"
    );
    let bad_type = TICKER_SCHEMA.replace("TINYINT", "TINY");
    let e = ddl_error(&s(&format!(", 'input_schema' = '{bad_type}'"))).await;
    assert!(
        e.contains("column #3 'CHANGE'") && e.contains("unknown SQL type 'TINY'"),
        "{e}"
    );
    // A declared column the schema does not have, and one too narrow for the schema's type.
    let e = ddl_error(&format!(
        "CREATE STREAM s (ticker VARCHAR) WITH ('connector' = 'file', 'path' = '{p}', 'input_schema_file' = '{sf}')"
    ))
    .await;
    assert!(
        e.contains("column 'ticker' is not in the input schema")
            && e.contains("TICKER_SYMBOL, SECTOR, CHANGE, PRICE"),
        "{e}"
    );
    let e = ddl_error(&format!(
        "CREATE STREAM s (price DECIMAL(4,2)) WITH ('connector' = 'file', 'path' = '{p}', 'input_schema_file' = '{sf}')"
    ))
    .await;
    assert!(
        e.contains("column 'price' is declared Decimal128(4, 2)") && e.contains("DECIMAL(5,2)"),
        "{e}"
    );
}

#[tokio::test]
async fn the_rowtime_field_may_also_be_a_mapped_column() {
    let schema = r#"{"RecordColumns": [
        {"Name": "k", "SqlType": "VARCHAR(4)", "Mapping": "$.k"},
        {"Name": "rt", "SqlType": "TIMESTAMP", "Mapping": "$.rt"}],
      "RecordFormat": {"RecordFormatType": "JSON"}}"#;
    let f = TempFile::new(
        "rt.jsonl",
        "{\"k\":\"a\",\"rt\":\"2024-01-01T00:00:01.250\"}\n{\"k\":\"b\",\"rt\":1704067202000}\n",
    );
    let (rows, rejected) = run(
        &format!(
            "CREATE STREAM s (k VARCHAR, rt TIMESTAMP) WITH ('connector' = 'file', 'path' = '{}', \
             'input_schema' = '{schema}', 'rowtime_column' = 'rt')",
            f.path()
        ),
        "SELECT rowtime, k, rt FROM s",
    )
    .await
    .unwrap();
    // As a column, a JSON number is not a TIMESTAMP (SPEC §1.8); as ROWTIME it is epoch ms.
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0]
        .message
        .contains("a JSON number cannot be converted to TIMESTAMP"));
    assert_eq!(rows, ["2024-01-01T00:00:01.250,a,2024-01-01T00:00:01.250"]);
}
