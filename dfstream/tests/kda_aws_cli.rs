//! `dfstream kda` against local AWS-compatible servers started by the tests on 127.0.0.1:
//! kinesalite (Kinesis) and moto (S3). The real binary runs a described application:
//! Kinesis input (2 shards, InputParallelism 2) → join with an S3 reference table → 2-second
//! tumbling window → Kinesis output stream and Parquet on S3; error_stream → JSON on S3.

#[path = "../../connectors/tests/kinesis_support/mod.rs"]
mod kinesis_support;
#[path = "../../connectors/tests/objstore_support/mod.rs"]
mod objstore_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime;
use datafusion_stream_connectors::kinesis::{KinesisClient, PutEntry, StartPosition};
use kinesis_support::{create_stream, Kinesalite};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objstore_support::{list_paths, read_parquet, read_text, MotoServer, TempDir};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The binary with fake credentials and no endpoint from the environment of the test run.
fn dfstream_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dfstream"));
    c.args(args)
        .current_dir(repo_root())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_KINESIS")
        .env_remove("AWS_PROFILE");
    c
}

fn dfstream(args: &[&str]) -> Output {
    dfstream_command(args).output().expect("dfstream runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

const APP_SQL: &str = "examples/kda/kinesis/app.sql";
const APP_JSON: &str = "examples/kda/kinesis/app.json";

/// The records put on the input stream: (ticker, price); XYZ has no reference row, so the
/// inner join drops it.
const TRADES: &[(&str, f64)] = &[
    ("AMZN", 10.0),
    ("IBM", 20.0),
    ("AMZN", 11.0),
    ("MSFT", 30.0),
    ("IBM", 21.0),
    ("AMZN", 12.0),
    ("XYZ", 1.0),
    ("IBM", 22.0),
    ("AMZN", 13.0),
    ("MSFT", 31.0),
];
const MALFORMED: &str = r#"{"ticker": "AMZN", "price": "#;

/// One output row: ticker, company, window start (epoch ms), trades, total.
type Row = (String, String, i64, i64, f64);

/// Reads every record of a one-shard stream so far.
async fn read_stream(client: &KinesisClient, stream: &str) -> Vec<Vec<u8>> {
    let shards = client.list_shards(stream).await.expect("list shards");
    let mut out = Vec::new();
    for s in shards {
        let mut it = client
            .get_shard_iterator(stream, &s.shard_id, &StartPosition::TrimHorizon)
            .await
            .expect("iterator");
        loop {
            let page = client.get_records(&it, 10_000).await.expect("get records");
            let empty = page.records.is_empty();
            out.extend(page.records.into_iter().map(|r| r.data));
            match page.next_iterator {
                Some(next) if !empty => it = next,
                _ => break,
            }
        }
    }
    out
}

/// A JSON output record as a row (WINDOW_START is `yyyy-MM-dd HH:mm:ss.SSS`).
fn json_row(data: &[u8]) -> Row {
    let v: serde_json::Value = serde_json::from_slice(data).expect("a JSON record");
    let start = v["WINDOW_START"].as_str().expect("WINDOW_START");
    (
        v["TICKER"].as_str().expect("TICKER").to_string(),
        v["COMPANY"].as_str().expect("COMPANY").to_string(),
        parse_millis(start),
        v["TRADES"].as_i64().expect("TRADES"),
        v["TOTAL"].as_f64().expect("TOTAL"),
    )
}

/// `yyyy-MM-dd HH:mm:ss.SSS` (UTC) as epoch milliseconds.
fn parse_millis(s: &str) -> i64 {
    let t = datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(s)
        .unwrap_or_else(|e| panic!("'{s}' is not a timestamp: {e}"));
    t / 1_000_000
}

fn format_millis(ms: i64) -> String {
    timestamp_ms_to_datetime(ms)
        .expect("a valid time")
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// Per (ticker, company): (trades, total) summed over windows.
fn per_key(rows: &[Row]) -> BTreeMap<(String, String), (i64, f64)> {
    let mut m: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
    for (t, c, _, n, total) in rows {
        let e = m.entry((t.clone(), c.clone())).or_default();
        e.0 += n;
        e.1 += total;
    }
    m
}

fn expected_per_key() -> BTreeMap<(String, String), (i64, f64)> {
    let company = |t: &str| match t {
        "AMZN" => Some("Amazon"),
        "IBM" => Some("IBM Corp."),
        "MSFT" => Some("Microsoft"),
        _ => None,
    };
    let mut m: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
    for (t, p) in TRADES {
        if let Some(c) = company(t) {
            let e = m.entry((t.to_string(), c.to_string())).or_default();
            e.0 += 1;
            e.1 += p;
        }
    }
    m
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Kills the child if the test fails before it exits.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_to_windows_joined_with_s3_reference_data_to_kinesis_and_parquet() {
    let kinesalite = Kinesalite::start();
    let moto = MotoServer::start();
    let kinesis = kinesis_support::client(&kinesalite.endpoint());
    create_stream(&kinesis, "trades", 2).await;
    create_stream(&kinesis, "trade-windows", 1).await;
    moto.create_bucket("refdata");
    moto.create_bucket("lake");
    let store: Arc<dyn ObjectStore> = Arc::clone(moto.location("s3://refdata").store());
    let reference = std::fs::read(repo_root().join("examples/kda/kinesis/dims/companies.csv"))
        .expect("the example's reference data");
    store
        .put(
            &Path::from("dims/companies.csv"),
            PutPayload::from(reference),
        )
        .await
        .expect("put the reference object");

    // The records, spread over both shards by their keys; one cannot be decoded.
    let mut entries: Vec<PutEntry> = TRADES
        .iter()
        .enumerate()
        .map(|(i, (t, p))| PutEntry {
            partition_key: format!("key-{i}"),
            data: format!(r#"{{"ticker": "{t}", "price": {p:.1}}}"#).into_bytes(),
            explicit_hash_key: None,
        })
        .collect();
    entries.insert(
        4,
        PutEntry {
            partition_key: "bad".into(),
            data: MALFORMED.as_bytes().to_vec(),
            explicit_hash_key: None,
        },
    );
    let results = kinesis.put_records("trades", &entries).await.expect("put");
    assert_eq!(results.len(), TRADES.len() + 1);

    let logs = TempDir::new("kda-aws");
    let stdout = std::fs::File::create(logs.0.join("stdout")).expect("stdout file");
    let stderr = std::fs::File::create(logs.0.join("stderr")).expect("stderr file");
    let s3 = moto.endpoint();
    let child = dfstream_command(&[
        "kda",
        APP_SQL,
        "--description",
        APP_JSON,
        "--s3-endpoint",
        &s3,
        "--sink",
        "DESTINATION_SQL_STREAM=s3://lake/windows/?format=parquet",
        "--sink",
        "error_stream=s3://lake/errors/?format=json",
    ])
    // Kinesis through the standard environment variable, S3 through the flag.
    .env("AWS_ENDPOINT_URL_KINESIS", kinesalite.endpoint())
    .stdout(Stdio::from(stdout))
    .stderr(Stdio::from(stderr))
    .spawn()
    .expect("dfstream starts");
    let pid = child.id();
    let mut guard = ChildGuard(Some(child));
    let logs_text = |name: &str| std::fs::read_to_string(logs.0.join(name)).unwrap_or_default();

    // Wait until every good record is counted in the output stream.
    let expected = expected_per_key();
    let total: i64 = expected.values().map(|v| v.0).sum();
    assert_eq!(total, 9);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last_seen: Vec<Row>;
    let records = loop {
        let records = read_stream(&kinesis, "trade-windows").await;
        let rows: Vec<Row> = records.iter().map(|r| json_row(r)).collect();
        if rows.iter().map(|r| r.3).sum::<i64>() >= total {
            break records;
        }
        last_seen = rows;
        if let Some(c) = guard.0.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("dfstream exited early ({status}): {}", logs_text("stderr"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete output within 90 s (rows so far: {last_seen:?}); stderr: {}",
            logs_text("stderr")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Ctrl-C: files are completed and the process exits 0.
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        let c = guard.0.as_mut().expect("child");
        if let Some(s) = c.try_wait().expect("wait") {
            guard.0 = None;
            break s;
        }
        assert!(Instant::now() < deadline, "dfstream did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = logs_text("stderr");
    assert!(exit.success(), "exit {exit}; stderr: {err}");
    assert_eq!(logs_text("stdout"), "", "every output has a destination");

    // Kinesis: the rows, per key summed over the windows, are the expected ones; each
    // window starts on a 2-second boundary.
    let kinesis_rows: Vec<Row> = records.iter().map(|r| json_row(r)).collect();
    assert_eq!(per_key(&kinesis_rows), expected);
    for r in &kinesis_rows {
        assert_eq!(r.2 % 2_000, 0, "window start {}", format_millis(r.2));
    }
    // Records are JSON objects with the stream's columns, in order, without ROWTIME.
    let first = text(&records[0]);
    assert!(
        first.starts_with("{\"TICKER\":\"") && first.contains("\",\"COMPANY\":\""),
        "{first}"
    );
    assert!(!first.contains("ROWTIME"), "{first}");

    // Parquet on S3: the same rows, ROWTIME first (= the window end).
    let lake = Arc::clone(moto.location("s3://lake").store());
    let files = list_paths(&lake, "windows").await;
    assert!(!files.is_empty(), "no Parquet file; stderr: {err}");
    let mut parquet_rows: Vec<Row> = Vec::new();
    for f in &files {
        assert!(
            f.starts_with("windows/DESTINATION_SQL_STREAM-0-") && f.ends_with(".parquet"),
            "{f}"
        );
        for b in read_parquet(&lake, f).await {
            let names: Vec<&str> = b
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            assert_eq!(
                names,
                [
                    "ROWTIME",
                    "TICKER",
                    "COMPANY",
                    "WINDOW_START",
                    "TRADES",
                    "TOTAL"
                ]
            );
            let rowtime = b.column(0).as_primitive::<TimestampMillisecondType>();
            let ticker = b.column(1).as_string::<i32>();
            let company = b.column(2).as_string::<i32>();
            let start = b.column(3).as_primitive::<TimestampMillisecondType>();
            let trades = b.column(4).as_primitive::<Int64Type>();
            let sum = b.column(5).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                assert!(!rowtime.is_null(i));
                assert_eq!(
                    rowtime.value(i),
                    start.value(i) + 2_000,
                    "ROWTIME = window end"
                );
                parquet_rows.push((
                    ticker.value(i).to_string(),
                    company.value(i).to_string(),
                    start.value(i),
                    trades.value(i),
                    sum.value(i),
                ));
            }
        }
    }
    let key = |r: &Row| (r.0.clone(), r.2);
    let mut a = kinesis_rows.clone();
    a.sort_by_key(key);
    parquet_rows.sort_by_key(key);
    assert_eq!(parquet_rows, a, "Parquet rows = Kinesis records");

    // error_stream as JSON lines on S3: the malformed record, hex-encoded.
    let errors = list_paths(&lake, "errors").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("errors/error_stream-0-"),
        "{errors:?}"
    );
    let body = read_text(&lake, &errors[0]).await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1, "{body}");
    let e: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(e["DATA_ROW"], serde_json::json!(hex(MALFORMED)), "{body}");
    assert_eq!(e["ERROR_LEVEL"], serde_json::json!("ERROR"), "{body}");
    let message = e["MESSAGE"].as_str().unwrap_or_default();
    assert!(message.contains("stream 'trades'"), "{body}");
    // The stop summary names each destination.
    assert!(
        err.contains("DESTINATION_SQL_STREAM → s3://lake/windows/?format=parquet:"),
        "{err}"
    );
    assert!(
        err.contains(
            "DESTINATION_SQL_STREAM → arn:aws:kinesis:us-east-1:123456789012:stream/trade-windows:"
        ),
        "{err}"
    );
}

/// Writes a description derived from the example with `edit` applied.
fn description_with(dir: &TempDir, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(repo_root().join(APP_JSON)).expect("example");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    edit(&mut v["ApplicationDetail"]);
    let path = dir.0.join("app.json");
    std::fs::write(&path, v.to_string()).expect("write");
    path.display().to_string()
}

#[test]
fn a_firehose_output_without_a_sink_is_an_error_naming_it() {
    let dir = TempDir::new("kda-firehose");
    let app = description_with(&dir, |d| {
        d["OutputDescriptions"][0] = serde_json::json!({
            "OutputId": "3.1",
            "Name": "DESTINATION_SQL_STREAM",
            "KinesisFirehoseOutputDescription": {
                "ResourceARN": "arn:aws:firehose:us-east-1:123456789012:deliverystream/to-s3"
            },
            "DestinationSchema": { "RecordFormatType": "CSV" }
        });
    });
    // Nothing is contacted: the outputs are checked first.
    let o = dfstream(&["kda", APP_SQL, "--description", &app]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "output 'DESTINATION_SQL_STREAM' (OutputId 3.1) goes to the Kinesis Data Firehose delivery stream arn:aws:firehose:us-east-1:123456789012:deliverystream/to-s3, which dfstream cannot write; give --sink DESTINATION_SQL_STREAM=s3://bucket/prefix/"
        ),
        "{err}"
    );
}

#[test]
fn bad_sinks_are_errors_naming_them() {
    let cases: &[(&str, &str)] = &[
        (
            "DESTINATION_SQL_STREAM",
            "--sink DESTINATION_SQL_STREAM: expected STREAM=URL",
        ),
        (
            "DESTINATION_SQL_STREAM=ftp://host/out/",
            "'ftp://host/out/' is not a sink URL",
        ),
        (
            "DESTINATION_SQL_STREAM=s3://lake/out/?format=parquet&rol_rows=5",
            "unknown option(s) 'rol_rows'",
        ),
        (
            "DESTINATION_SQL_STREAM=s3://lake/out/?format=avro",
            "format 'avro' is not supported",
        ),
        (
            "DESTINATION_SQL_STREAM=kinesis://out?roll_rows=5",
            "unknown option 'roll_rows' for a Kinesis sink",
        ),
        (
            "DESTINATION_SQL_STREAM=arn:aws:firehose:us-east-1:1:deliverystream/x",
            "is not a Kinesis data stream ARN",
        ),
    ];
    for (sink, want) in cases {
        let o = dfstream(&["kda", APP_SQL, "--description", APP_JSON, "--sink", sink]);
        assert_eq!(o.status.code(), Some(1), "{sink}");
        let err = text(&o.stderr);
        assert!(err.contains(want), "--sink {sink}: {err}");
        if sink.contains('=') {
            assert!(err.contains(&format!("--sink {sink}")), "{err}");
        }
    }
    // LAST_STOPPED_POINT needs a checkpoint we do not keep (reference data from a local
    // directory, so nothing is contacted before the input).
    let o = dfstream(&[
        "kda",
        APP_SQL,
        "--description",
        APP_JSON,
        "--reference-dir",
        "examples/kda/kinesis",
        "--starting-position",
        "LAST_STOPPED_POINT",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("input 'SOURCE_SQL_STREAM': InputStartingPosition LAST_STOPPED_POINT"),
        "{err}"
    );
    assert!(
        err.contains("use --starting-position NOW or TRIM_HORIZON"),
        "{err}"
    );
    // A sink for a stream the application does not have (demo input instead of Kinesis).
    let dir = TempDir::new("kda-nostream");
    let o = dfstream(&[
        "kda",
        APP_SQL,
        "--description",
        APP_JSON,
        "--reference-dir",
        "examples/kda/kinesis",
        "--input",
        "ticker",
        "--sink",
        &format!("NO_SUCH_STREAM={}/", dir.url()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("--sink NO_SUCH_STREAM: the application has no in-application stream named NO_SUCH_STREAM"),
        "{err}"
    );
}

#[test]
fn a_missing_reference_bucket_is_an_error_naming_it() {
    let moto = MotoServer::start();
    let dir = TempDir::new("kda-nobucket");
    let app = description_with(&dir, |d| {
        d["ReferenceDataSourceDescriptions"][0]["S3ReferenceDataSourceDescription"]["BucketARN"] =
            serde_json::json!("arn:aws:s3:::no-such-bucket");
    });
    let o = dfstream(&[
        "kda",
        APP_SQL,
        "--description",
        &app,
        "--s3-endpoint",
        &moto.endpoint(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("reference table 'COMPANIES' (BucketARN arn:aws:s3:::no-such-bucket, FileKey dims/companies.csv)"),
        "{err}"
    );
    assert!(
        err.contains("bucket 'no-such-bucket' does not exist"),
        "{err}"
    );
}

#[test]
fn check_plans_a_kinesis_application_without_contacting_anything() {
    // No server runs: inputs and reference tables are stand-ins with their columns.
    let o = dfstream(&["check", APP_SQL, "--description", APP_JSON]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("ok (2 stream(s)"),
        "{}",
        text(&o.stdout)
    );
}
