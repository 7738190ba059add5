//! The file replay source: CSV and JSON lines read back exactly, ROWTIME from a column, bad
//! rows named by line, and windows over a small file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;
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
            "dfstream-file-test-{}-{}",
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

fn context() -> StreamContext {
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: ManualClock::new(1_000),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
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

async fn run(ddl: &str, query: &str) -> Result<Vec<String>> {
    let ctx = context();
    ctx.run_script(ddl).await?;
    let batches = ctx.query(query).await?.collect().await?;
    Ok(lines(&batches))
}

const COLUMNS: &str = "ts TIMESTAMP(3), symbol VARCHAR, price DOUBLE, qty BIGINT";

const CSV: &str = "\
ts,symbol,price,qty
2024-01-02 09:30:00.120,AMZN,180.1,10
2024-01-02 09:30:01.500,AAPL,190,5

2024-01-02 09:30:02.250,\"AM,ZN\",180.35,
";

const EXPECTED: [&str; 3] = [
    "2024-01-02T09:30:00.120,AMZN,180.1,10",
    "2024-01-02T09:30:01.500,AAPL,190.0,5",
    "2024-01-02T09:30:02.250,AM,ZN,180.35,NULL",
];

#[tokio::test]
async fn csv_reads_back_exactly() {
    let f = TempFile::new("t.csv", CSV);
    for batch_size in ["1024", "1", "2"] {
        let rows = run(
            &format!(
                "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'batch_size' = '{batch_size}')",
                f.path()
            ),
            "SELECT * FROM s",
        )
        .await
        .unwrap();
        assert_eq!(rows, EXPECTED, "batch_size {batch_size}");
    }
}

#[tokio::test]
async fn csv_header_maps_columns_by_name() {
    // Columns in another order, an extra column, a header in upper case, ';' as delimiter.
    let f = TempFile::new(
        "t.csv",
        "QTY;Extra;Symbol;TS;Price\n10;x;AMZN;2024-01-02 09:30:00.120;180.1\n",
    );
    let rows = run(
        &format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'delimiter' = ';')",
            f.path()
        ),
        "SELECT * FROM s",
    )
    .await
    .unwrap();
    assert_eq!(rows, ["2024-01-02T09:30:00.120,AMZN,180.1,10"]);
}

#[tokio::test]
async fn csv_without_header_is_positional() {
    let body: String = CSV.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let f = TempFile::new("t.csv", &body);
    let rows = run(
        &format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'header' = 'false')",
            f.path()
        ),
        "SELECT * FROM s",
    )
    .await
    .unwrap();
    assert_eq!(rows, EXPECTED);
}

const JSON: &str = r#"{"ts": "2024-01-02 09:30:00.120", "symbol": "AMZN", "price": 180.1, "qty": 10}
{"symbol": "AAPL", "ts": "2024-01-02T09:30:01.500", "price": 190, "qty": 5, "ignored": true}

{"ts": "2024-01-02 09:30:02.250", "symbol": "AM,ZN", "price": 180.35}
"#;

#[tokio::test]
async fn json_lines_read_back_exactly() {
    let f = TempFile::new("t.jsonl", JSON);
    for batch_size in ["1024", "1"] {
        let rows = run(
            &format!(
                "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'batch_size' = '{batch_size}')",
                f.path()
            ),
            "SELECT * FROM s",
        )
        .await
        .unwrap();
        assert_eq!(rows, EXPECTED, "batch_size {batch_size}");
    }
}

#[tokio::test]
async fn rowtime_column_supplies_rowtime() {
    let csv = "rt,symbol,qty\n2024-01-01 00:00:01,a,1\n2024-01-01 00:00:01,b,2\n2024-01-01 00:00:03.5,c,3\n";
    let f = TempFile::new("t.csv", csv);
    let ddl = format!(
        "CREATE STREAM s (symbol VARCHAR, qty INT) WITH ('connector' = 'file', 'path' = '{}', 'rowtime_column' = 'rt', 'batch_size' = '2')",
        f.path()
    );
    let expected = [
        "2024-01-01T00:00:01,a,1",
        "2024-01-01T00:00:01,b,2",
        "2024-01-01T00:00:03.500,c,3",
    ];
    let rows = run(&ddl, "SELECT rowtime, symbol, qty FROM s")
        .await
        .unwrap();
    assert_eq!(rows, expected);
    // The ROWTIME column is not one of the stream's columns.
    let rows = run(&ddl, "SELECT * FROM s").await.unwrap();
    assert_eq!(rows, ["a,1", "b,2", "c,3"]);

    let json = r#"{"rt": "2024-01-01 00:00:01", "symbol": "a", "qty": 1}
{"rt": "2024-01-01 00:00:01", "symbol": "b", "qty": 2}
{"rt": "2024-01-01 00:00:03.5", "symbol": "c", "qty": 3}
"#;
    let f = TempFile::new("t.jsonl", json);
    let rows = run(
        &format!(
            "CREATE STREAM s (symbol VARCHAR, qty INT) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json', 'rowtime_column' = 'rt')",
            f.path()
        ),
        "SELECT rowtime, symbol, qty FROM s",
    )
    .await
    .unwrap();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn rowtime_windows() {
    let csv = "rt,k\n2024-01-01 00:00:01,a\n2024-01-01 00:00:04,a\n2024-01-01 00:00:06,b\n2024-01-01 00:00:12,a\n";
    let f = TempFile::new("t.csv", csv);
    let ddl = format!(
        "CREATE STREAM s (k VARCHAR) WITH ('connector' = 'file', 'path' = '{}', 'rowtime_column' = 'rt')",
        f.path()
    );
    let mut rows = run(
        &ddl,
        "SELECT window_start, k, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(rowtime), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, k",
    )
    .await
    .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:00,a,2",
            "2024-01-01T00:00:05,b,1",
            "2024-01-01T00:00:10,a,1"
        ]
    );
}

async fn error(ddl: &str, query: &str) -> String {
    match run(ddl, query).await {
        Ok(rows) => panic!("expected an error, got {rows:?}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn malformed_rows_name_the_file_and_line() {
    // Line 5 has a bad price; with batch_size 2 it is in the second batch.
    let csv = "ts,symbol,price,qty\n2024-01-02 09:30:00,a,1.5,1\n2024-01-02 09:30:01,b,2.5,2\n2024-01-02 09:30:02,c,3.5,3\n2024-01-02 09:30:03,d,oops,4\n";
    let f = TempFile::new("bad.csv", csv);
    for batch_size in ["1024", "2"] {
        let e = error(
            &format!(
                "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'batch_size' = '{batch_size}')",
                f.path()
            ),
            "SELECT * FROM s",
        )
        .await;
        assert!(e.contains(&f.path()) && e.contains("line 5"), "{e}");
        assert!(e.contains("oops"), "{e}");
    }
    // Too few fields.
    let f = TempFile::new(
        "short.csv",
        "ts,symbol,price,qty\n2024-01-02 09:30:00,a,1.5,1\n2024-01-02 09:30:01,b\n",
    );
    let e = error(
        &format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}')",
            f.path()
        ),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains(&f.path()) && e.contains("line 3"), "{e}");
    // A bad timestamp.
    let f = TempFile::new("ts.csv", "ts,symbol,price,qty\nyesterday,a,1.5,1\n");
    let e = error(
        &format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}')",
            f.path()
        ),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains("line 2") && e.contains("yesterday"), "{e}");
    // JSON: bad syntax and a bad value.
    let f = TempFile::new(
        "bad.jsonl",
        "{\"symbol\": \"a\", \"qty\": 1}\n{\"symbol\": \"b\", \"qty\": 2\n",
    );
    let e = error(
        &format!("CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json')", f.path()),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains(&f.path()) && e.contains("line 2"), "{e}");
    let f = TempFile::new(
        "bad2.jsonl",
        "{\"symbol\": \"a\", \"qty\": 1}\n\n{\"symbol\": \"b\", \"qty\": \"two\"}\n",
    );
    let e = error(
        &format!("CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}', 'format' = 'json')", f.path()),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains(&f.path()) && e.contains("line 3"), "{e}");
}

#[tokio::test]
async fn bad_rowtime_values_name_the_line() {
    let f = TempFile::new(
        "rt.csv",
        "rt,k\n2024-01-01 00:00:05,a\n2024-01-01 00:00:04,b\n",
    );
    let e = error(
        &format!("CREATE STREAM s (k VARCHAR) WITH ('connector' = 'file', 'path' = '{}', 'rowtime_column' = 'rt')", f.path()),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains("line 3") && e.contains("backwards"), "{e}");
    let f = TempFile::new("rt.csv", "rt,k\n2024-01-01 00:00:05,a\n,b\n");
    let e = error(
        &format!("CREATE STREAM s (k VARCHAR) WITH ('connector' = 'file', 'path' = '{}', 'rowtime_column' = 'rt')", f.path()),
        "SELECT * FROM s",
    )
    .await;
    assert!(e.contains("line 3") && e.contains("'rt'"), "{e}");
}

async fn ddl_error(options: &str) -> String {
    let ctx = context();
    match ctx
        .run_script(&format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file'{options})"
        ))
        .await
    {
        Ok(_) => panic!("expected an error for {options}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn bad_options_name_the_option() {
    let f = TempFile::new("t.csv", CSV);
    let p = f.path();
    let e = ddl_error("").await;
    assert!(e.contains("'path'"), "{e}");
    let e = ddl_error(&format!(", 'path' = '{p}', 'colour' = 'red'")).await;
    assert!(
        e.contains("unknown option") && e.contains("'colour'"),
        "{e}"
    );
    let e = ddl_error(&format!(", 'path' = '{p}', 'format' = 'xml'")).await;
    assert!(e.contains("'format'") && e.contains("xml"), "{e}");
    let e = ddl_error(&format!(", 'path' = '{p}', 'header' = 'maybe'")).await;
    assert!(e.contains("'header'"), "{e}");
    let e = ddl_error(&format!(", 'path' = '{p}', 'delimiter' = ';;'")).await;
    assert!(e.contains("'delimiter'"), "{e}");
    let e = ddl_error(&format!(", 'path' = '{p}', 'batch_size' = '0'")).await;
    assert!(e.contains("'batch_size'"), "{e}");
    let e = ddl_error(&format!(
        ", 'path' = '{p}', 'format' = 'json', 'header' = 'true'"
    ))
    .await;
    assert!(e.contains("'header'"), "{e}");
    let e = ddl_error(&format!(", 'path' = '{p}', 'rowtime_column' = 'ts'")).await;
    assert!(e.contains("'rowtime_column'"), "{e}");
    let e = ddl_error(&format!(
        ", 'path' = '{p}', 'header' = 'false', 'rowtime_column' = 'rt'"
    ))
    .await;
    assert!(e.contains("'rowtime_column'"), "{e}");
    let e = ddl_error(", 'path' = '/nonexistent/dfstream/file.csv'").await;
    assert!(
        e.contains("'path'") && e.contains("/nonexistent/dfstream/file.csv"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_header_column_is_named() {
    let f = TempFile::new("t.csv", "ts,symbol,qty\n2024-01-02 09:30:00,a,1\n");
    let e = error(
        &format!(
            "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}')",
            f.path()
        ),
        "SELECT * FROM s",
    )
    .await;
    assert!(
        e.contains("'price'") && e.contains("ts, symbol, qty") && e.contains("line 1"),
        "{e}"
    );
}

#[tokio::test]
async fn event_time_windows_over_a_csv_file() {
    let csv = "\
ts,k,v
2024-01-01 00:00:00.500,a,1
2024-01-01 00:00:03,b,2
2024-01-01 00:00:01,a,3
2024-01-01 00:00:07,a,4
2024-01-01 00:00:11,b,5
2024-01-01 00:00:09.999,b,6
2024-01-01 00:00:24,a,7
";
    let f = TempFile::new("w.csv", csv);
    let ddl = format!(
        "CREATE STREAM e (ts TIMESTAMP(3), k VARCHAR, v BIGINT, WATERMARK FOR ts AS ts - INTERVAL '3' SECOND) \
         WITH ('connector' = 'file', 'path' = '{}', 'batch_size' = '2')",
        f.path()
    );
    let mut rows = run(
        &ddl,
        "SELECT window_start, window_end, k, COUNT(*) AS n, SUM(v) AS total \
         FROM TABLE(TUMBLE(TABLE e, DESCRIPTOR(ts), INTERVAL '5' SECOND)) \
         GROUP BY window_start, window_end, k",
    )
    .await
    .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            "2024-01-01T00:00:00,2024-01-01T00:00:05,a,2,4",
            "2024-01-01T00:00:00,2024-01-01T00:00:05,b,1,2",
            "2024-01-01T00:00:05,2024-01-01T00:00:10,a,1,4",
            "2024-01-01T00:00:05,2024-01-01T00:00:10,b,1,6",
            "2024-01-01T00:00:10,2024-01-01T00:00:15,b,1,5",
            "2024-01-01T00:00:20,2024-01-01T00:00:25,a,1,7",
        ]
    );
    // HOP windows of 10 s every 5 s.
    let mut rows = run(
        &ddl,
        "SELECT window_start, COUNT(*) AS n \
         FROM TABLE(HOP(TABLE e, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY window_start, window_end",
    )
    .await
    .unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            "2023-12-31T23:59:55,3",
            "2024-01-01T00:00:00,5",
            "2024-01-01T00:00:05,3",
            "2024-01-01T00:00:10,1",
            "2024-01-01T00:00:15,1",
            "2024-01-01T00:00:20,1",
        ]
    );
}

#[tokio::test]
async fn two_queries_read_the_file_independently() {
    let f = TempFile::new("t.csv", CSV);
    let ctx = context();
    ctx.run_script(&format!(
        "CREATE STREAM s ({COLUMNS}) WITH ('connector' = 'file', 'path' = '{}')",
        f.path()
    ))
    .await
    .unwrap();
    let queries = ctx
        .run_script("SELECT symbol FROM s; SELECT qty FROM s WHERE qty > 5")
        .await
        .unwrap();
    let mut out = Vec::new();
    for q in queries {
        out.push(lines(&q.collect().await.unwrap()));
    }
    assert_eq!(out, vec![vec!["AMZN", "AAPL", "AM,ZN"], vec!["10"]]);
}
