//! File sinks through object_store: Parquet / JSON lines / CSV objects read back row by row,
//! rolling by rows, bytes, processing time and progress, Hive partitions, deterministic names,
//! failure injection (no partial object, multipart aborted), a query run into a sink, S3
//! against a local moto server, and bad options.

mod objstore_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::basic::Compression;
use datafusion_stream::scan::Progress;
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::time::WATERMARK_MIN;
use datafusion_stream::{LateRowPolicy, ManualClock, StreamContext, StreamRuntime};
use datafusion_stream_connectors::object_store::{StoreLocation, StoreOptions};
use datafusion_stream_connectors::sink::{
    run_query_into_sink, FileSink, PartitionBy, ProgressTime, SequenceStart, SinkFormat,
    SinkOptions, TimeGranularity,
};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objstore_support::*;

/// 2024-05-01 13:00:00 UTC.
const H13: i64 = 1_714_568_400_000;
const HOUR: i64 = 3_600_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("sym", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, false),
        Field::new("price", DataType::Float64, false),
    ]))
}

/// Rows `(ts, sym, qty, price)`.
fn batch(rows: &[(i64, Option<&str>, i64, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// `n` rows starting at `ts`, one second apart, sym `s<i % 3>`, qty i.
fn rows(ts: i64, first: i64, n: i64) -> RecordBatch {
    let syms = ["a", "b", "c"];
    let v: Vec<(i64, Option<&str>, i64, f64)> = (first..first + n)
        .map(|i| {
            (
                ts + (i - first) * 1000,
                Some(syms[(i % 3) as usize]),
                i,
                i as f64 / 2.0,
            )
        })
        .collect();
    batch(&v)
}

fn memory() -> (StoreLocation, Arc<dyn ObjectStore>) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    (
        StoreLocation::from_store(Arc::clone(&store), "out/q", "memory://test/out/q"),
        store,
    )
}

fn progress(event_time: i64, rowtime: i64) -> Progress {
    Progress {
        event_time,
        rowtime,
        idle: false,
    }
}

#[tokio::test]
async fn parquet_rolls_by_rows_with_deterministic_names_per_input_partition() {
    let (location, store) = memory();
    let options = SinkOptions::new("q1")
        .with_roll_rows(3)
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    // Input 0: 5 rows in two batches, input 1: 2 rows.
    sink.write(0, &rows(H13, 0, 2)).await.unwrap();
    sink.write(1, &rows(H13, 100, 2)).await.unwrap();
    sink.write(0, &rows(H13 + 2000, 2, 3)).await.unwrap();
    // The first file of input 0 is complete (3 rows: the batch was split at the limit).
    assert_eq!(
        list_paths(&store, "out").await,
        vec!["out/q/q1-0-000000.parquet"]
    );
    let stats = sink.close().await.unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec![
            "out/q/q1-0-000000.parquet",
            "out/q/q1-0-000001.parquet",
            "out/q/q1-1-000000.parquet"
        ]
    );
    assert_eq!(stats.rows, 7);
    assert_eq!(
        stats
            .files
            .iter()
            .map(|f| (f.url.as_str(), f.input, f.sequence, f.rows))
            .collect::<Vec<_>>(),
        vec![
            ("memory://test/out/q/q1-0-000000.parquet", 0, 0, 3),
            ("memory://test/out/q/q1-0-000001.parquet", 0, 1, 2),
            ("memory://test/out/q/q1-1-000000.parquet", 1, 0, 2),
        ]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/q1-0-000000.parquet").await),
        vec![
            "2024-05-01T13:00:00,a,0,0.0",
            "2024-05-01T13:00:01,b,1,0.5",
            "2024-05-01T13:00:02,c,2,1.0"
        ]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/q1-0-000001.parquet").await),
        vec!["2024-05-01T13:00:03,a,3,1.5", "2024-05-01T13:00:04,b,4,2.0"]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/q1-1-000000.parquet").await),
        vec![
            "2024-05-01T13:00:00,b,100,50.0",
            "2024-05-01T13:00:01,c,101,50.5"
        ]
    );
    // Each object is a complete file with the stream's schema.
    let batches = read_parquet(&store, "out/q/q1-1-000000.parquet").await;
    assert_eq!(batches[0].schema().fields(), schema().fields());
}

#[tokio::test]
async fn parquet_rolls_by_bytes() {
    let (location, store) = memory();
    let options = SinkOptions::new("big")
        .with_format(SinkFormat::Parquet {
            compression: Compression::UNCOMPRESSED,
            row_group_rows: 100,
        })
        .with_roll_bytes(4_000)
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    for i in 0..10 {
        sink.write(0, &rows(H13 + i * 100_000, i * 100, 100))
            .await
            .unwrap();
    }
    let stats = sink.close().await.unwrap();
    // Every file but the last reached the limit after its last batch, none holds more than
    // the batch that crossed it.
    assert!(stats.files.len() >= 2, "{:?}", stats.files);
    for f in &stats.files[..stats.files.len() - 1] {
        assert!(f.bytes >= 4_000, "{f:?}");
        assert_eq!(f.rows % 100, 0, "{f:?}");
    }
    let mut all = Vec::new();
    for f in &stats.files {
        all.extend(lines(&read_parquet(&store, &f.path).await));
    }
    assert_eq!(all.len(), 1000);
    assert_eq!(all[0], "2024-05-01T13:00:00,a,0,0.0");
    assert_eq!(all[999], "2024-05-01T13:16:39,a,999,499.5");
    let expected: Vec<String> = (0..10)
        .flat_map(|i| lines(&[rows(H13 + i * 100_000, i * 100, 100)]))
        .collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn rolls_by_processing_time_on_the_clock() {
    let (location, store) = memory();
    let clock = ManualClock::new(10_000);
    let options = SinkOptions::new("t")
        .with_format(SinkFormat::csv())
        .with_roll_interval(Duration::from_secs(10))
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options)
        .unwrap()
        .with_clock(clock.clone());
    sink.write(0, &rows(H13, 0, 2)).await.unwrap();
    clock.advance_by(Duration::from_secs(9));
    sink.tick().await.unwrap();
    assert_eq!(list_paths(&store, "out").await, Vec::<String>::new());
    sink.write(0, &rows(H13 + 2000, 2, 1)).await.unwrap();
    clock.advance_by(Duration::from_secs(1));
    sink.tick().await.unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec!["out/q/t-0-000000.csv"]
    );
    assert_eq!(
        read_text(&store, "out/q/t-0-000000.csv").await,
        "ts,sym,qty,price\n2024-05-01T13:00:00,a,0,0.0\n2024-05-01T13:00:01,b,1,0.5\n2024-05-01T13:00:02,c,2,1.0\n"
    );
    // The next row opens a new file; a write to a file that aged in between closes it first.
    sink.write(0, &rows(H13 + 3000, 3, 1)).await.unwrap();
    clock.advance_by(Duration::from_secs(15));
    sink.write(0, &rows(H13 + 4000, 4, 1)).await.unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec!["out/q/t-0-000000.csv", "out/q/t-0-000001.csv"]
    );
    sink.close().await.unwrap();
    assert_eq!(
        read_text(&store, "out/q/t-0-000001.csv").await,
        "ts,sym,qty,price\n2024-05-01T13:00:03,a,3,1.5\n"
    );
    assert_eq!(
        read_text(&store, "out/q/t-0-000002.csv").await,
        "ts,sym,qty,price\n2024-05-01T13:00:04,b,4,2.0\n"
    );
}

#[tokio::test]
async fn rolls_when_progress_crosses_a_boundary() {
    let (location, store) = memory();
    let options = SinkOptions::new("b")
        .with_format(SinkFormat::JsonLines)
        .with_roll_boundary(Duration::from_secs(60), ProgressTime::EventTime)
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    sink.progress(progress(H13 - 1, WATERMARK_MIN))
        .await
        .unwrap();
    sink.write(0, &rows(H13, 0, 2)).await.unwrap();
    // Still inside the first minute: nothing closes.
    sink.progress(progress(H13 + 59_998, WATERMARK_MIN))
        .await
        .unwrap();
    assert_eq!(list_paths(&store, "out").await, Vec::<String>::new());
    sink.write(0, &rows(H13 + 60_000, 2, 1)).await.unwrap();
    // W = end of the minute - 1 ms: the boundary is crossed, every open file closes.
    sink.progress(progress(H13 + 59_999, WATERMARK_MIN))
        .await
        .unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec!["out/q/b-0-000000.json"]
    );
    assert_eq!(
        read_text(&store, "out/q/b-0-000000.json").await,
        concat!(
            "{\"ts\":\"2024-05-01T13:00:00\",\"sym\":\"a\",\"qty\":0,\"price\":0.0}\n",
            "{\"ts\":\"2024-05-01T13:00:01\",\"sym\":\"b\",\"qty\":1,\"price\":0.5}\n",
            "{\"ts\":\"2024-05-01T13:01:00\",\"sym\":\"c\",\"qty\":2,\"price\":1.0}\n"
        )
    );
    sink.write(0, &rows(H13 + 61_000, 3, 1)).await.unwrap();
    let stats = sink.close().await.unwrap();
    assert_eq!(stats.files.len(), 2);
    assert_eq!(stats.files[1].path, "out/q/b-0-000001.json");
}

#[tokio::test]
async fn hive_hour_partitions_close_when_the_watermark_passes_the_hour() {
    let (location, store) = memory();
    let options = SinkOptions::new("etl")
        .with_partition_by(PartitionBy::Time {
            column: "ts".into(),
            granularity: TimeGranularity::Hour,
        })
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    // Rows of hours 13 and 14 interleaved, and a NULL-free batch for hour 14.
    sink.write(
        0,
        &batch(&[
            (H13 + 10, Some("a"), 1, 1.0),
            (H13 + HOUR + 5, Some("b"), 2, 2.0),
            (H13 + 20, Some("c"), 3, 3.0),
        ]),
    )
    .await
    .unwrap();
    sink.progress(progress(H13 + HOUR - 2, WATERMARK_MIN))
        .await
        .unwrap();
    assert_eq!(list_paths(&store, "out").await, Vec::<String>::new());
    // The watermark passes 13:59:59.999: hour 13 is complete and its file closes.
    sink.progress(progress(H13 + HOUR - 1, WATERMARK_MIN))
        .await
        .unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec!["out/q/dt=2024-05-01/hour=13/etl-0-000000.parquet"]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/dt=2024-05-01/hour=13/etl-0-000000.parquet").await),
        vec![
            "2024-05-01T13:00:00.010,a,1,1.0",
            "2024-05-01T13:00:00.020,c,3,3.0"
        ]
    );
    // A late row for hour 13 opens the next file there: never lost.
    sink.write(0, &batch(&[(H13 + 30, Some("late"), 4, 4.0)]))
        .await
        .unwrap();
    let stats = sink.close().await.unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec![
            "out/q/dt=2024-05-01/hour=13/etl-0-000000.parquet",
            "out/q/dt=2024-05-01/hour=13/etl-0-000001.parquet",
            "out/q/dt=2024-05-01/hour=14/etl-0-000000.parquet"
        ]
    );
    assert_eq!(
        stats
            .files
            .iter()
            .map(|f| f.partition.as_str())
            .collect::<Vec<_>>(),
        vec![
            "dt=2024-05-01/hour=13",
            "dt=2024-05-01/hour=13",
            "dt=2024-05-01/hour=14"
        ]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/dt=2024-05-01/hour=14/etl-0-000000.parquet").await),
        vec!["2024-05-01T14:00:00.005,b,2,2.0"]
    );
}

#[tokio::test]
async fn column_partitions_are_escaped_and_left_out_of_the_files() {
    let (location, store) = memory();
    let options = SinkOptions::new("bycol")
        .with_format(SinkFormat::csv())
        .with_partition_by(PartitionBy::parse("sym").unwrap())
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    sink.write(
        0,
        &batch(&[
            (H13, Some("eu/west"), 1, 1.0),
            (H13 + 1, None, 2, 2.0),
            (H13 + 2, Some("eu/west"), 3, 3.0),
            (H13 + 3, Some("us"), 4, 4.0),
        ]),
    )
    .await
    .unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        list_paths(&store, "out").await,
        vec![
            "out/q/sym=__HIVE_DEFAULT_PARTITION__/bycol-0-000000.csv",
            "out/q/sym=eu%2Fwest/bycol-0-000000.csv",
            "out/q/sym=us/bycol-0-000000.csv"
        ]
    );
    assert_eq!(
        read_text(&store, "out/q/sym=eu%2Fwest/bycol-0-000000.csv").await,
        "ts,qty,price\n2024-05-01T13:00:00,1,1.0\n2024-05-01T13:00:00.002,3,3.0\n"
    );
    assert_eq!(
        read_text(
            &store,
            "out/q/sym=__HIVE_DEFAULT_PARTITION__/bycol-0-000000.csv"
        )
        .await,
        "ts,qty,price\n2024-05-01T13:00:00.001,2,2.0\n"
    );
}

#[tokio::test]
async fn kda_csv_and_json_formats() {
    let (location, store) = memory();
    let mut sink = FileSink::try_new(
        location.clone(),
        SinkOptions::new("kda")
            .with_format(SinkFormat::KdaCsv {
                delimiter: ",".into(),
            })
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    sink.write(
        0,
        &batch(&[(H13, Some("x,y"), 1, 2.5), (H13 + 1, None, 2, 3.0)]),
    )
    .await
    .unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        read_text(&store, "out/q/kda-0-000000.csv").await,
        "2024-05-01 13:00:00.000,\"x,y\",1,2.5\n2024-05-01 13:00:00.001,,2,3.0\n"
    );
    let mut sink = FileSink::try_new(
        location,
        SinkOptions::new("kdaj")
            .with_format(SinkFormat::KdaJson)
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    sink.write(0, &batch(&[(H13, Some("x"), 1, 2.5)]))
        .await
        .unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        read_text(&store, "out/q/kdaj-0-000000.json").await,
        "{\"ts\":\"2024-05-01 13:00:00.000\",\"sym\":\"x\",\"qty\":1,\"price\":2.5}\n"
    );
}

#[tokio::test]
async fn a_restarted_sink_resumes_after_the_highest_sequence_number() {
    let (location, store) = memory();
    for round in 0..2 {
        let mut sink =
            FileSink::try_new(location.clone(), SinkOptions::new("r").with_roll_rows(1)).unwrap();
        sink.write(0, &rows(H13, round * 10, 2)).await.unwrap();
        sink.write(3, &rows(H13, round * 10 + 5, 1)).await.unwrap();
        sink.close().await.unwrap();
    }
    assert_eq!(
        list_paths(&store, "out").await,
        vec![
            "out/q/r-0-000000.parquet",
            "out/q/r-0-000001.parquet",
            "out/q/r-0-000002.parquet",
            "out/q/r-0-000003.parquet",
            "out/q/r-3-000000.parquet",
            "out/q/r-3-000001.parquet"
        ]
    );
    assert_eq!(
        lines(&read_parquet(&store, "out/q/r-0-000002.parquet").await),
        vec!["2024-05-01T13:00:00,b,10,5.0"]
    );
}

#[tokio::test]
async fn a_failed_part_upload_leaves_no_object_and_aborts_the_upload() {
    // Multipart from the first flush: a 1 KiB buffer; the 2nd part fails.
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let failing = Arc::new(FailingStore::new(Arc::clone(&inner), Some(2), false));
    let location = StoreLocation::from_store(
        Arc::clone(&failing) as Arc<dyn ObjectStore>,
        "out",
        "memory://fail/out",
    );
    let options = SinkOptions::new("f")
        .with_format(SinkFormat::JsonLines)
        .with_upload_buffer(1024)
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    let mut error = None;
    for i in 0..50 {
        if let Err(e) = sink.write(0, &rows(H13, i * 20, 20)).await {
            error = Some(e.to_string());
            break;
        }
    }
    let error = match error {
        Some(e) => e,
        None => sink.close().await.unwrap_err().to_string(),
    };
    assert!(error.contains("injected failure: part 2"), "{error}");
    assert!(
        error.contains("memory://fail/out/f-0-000000.json"),
        "{error}"
    );
    assert_eq!(list_paths(&inner, "").await, Vec::<String>::new());
    let calls = failing.calls();
    assert_eq!(
        (calls.multipart_started, calls.completed, calls.aborted),
        (1, 0, 1),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_part_failing_while_completing_is_aborted_too() {
    // The failing part is the last one, uploaded during completion (close).
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let failing = Arc::new(FailingStore::new(Arc::clone(&inner), Some(2), false));
    let location = StoreLocation::from_store(
        Arc::clone(&failing) as Arc<dyn ObjectStore>,
        "out",
        "memory://fail/out",
    );
    let options = SinkOptions::new("f")
        .with_format(SinkFormat::JsonLines)
        .with_upload_buffer(1500)
        .with_sequence_start(SequenceStart::Zero);
    let mut sink = FileSink::try_new(location, options).unwrap();
    // ~70 bytes per row: 30 rows = 1 full part + a remainder sent at close.
    sink.write(0, &rows(H13, 0, 30)).await.unwrap();
    let error = sink.close().await.unwrap_err().to_string();
    assert!(error.contains("injected failure: part 2"), "{error}");
    assert_eq!(list_paths(&inner, "").await, Vec::<String>::new());
    let calls = failing.calls();
    assert_eq!(
        (
            calls.multipart_started,
            calls.parts,
            calls.completed,
            calls.aborted
        ),
        (1, 2, 0, 1),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_failed_put_surfaces_and_keeps_earlier_files() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (location, _) = memory();
    let location = location.with_store(Arc::clone(&inner));
    let mut sink = FileSink::try_new(
        location.clone(),
        SinkOptions::new("p")
            .with_roll_rows(2)
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    sink.write(0, &rows(H13, 0, 2)).await.unwrap();
    sink.close().await.unwrap();
    let failing: Arc<dyn ObjectStore> = Arc::new(FailingStore::new(Arc::clone(&inner), None, true));
    let mut sink = FileSink::try_new(
        location.with_store(failing),
        SinkOptions::new("p").with_roll_rows(2),
    )
    .unwrap();
    let error = sink
        .write(0, &rows(H13, 2, 2))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("injected failure: put"), "{error}");
    assert!(error.contains("p-0-000001.parquet"), "{error}");
    // The sink refuses further use, and only the earlier, complete file exists.
    let again = sink
        .write(0, &rows(H13, 4, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("failed earlier"), "{again}");
    assert_eq!(
        list_paths(&inner, "").await,
        vec!["out/q/p-0-000000.parquet"]
    );
}

#[tokio::test]
async fn sink_options_are_checked_by_name() {
    let env = RuntimeEnv::default();
    let opts = |pairs: &[(&str, &str)]| {
        ConnectorOptions::new(
            "parquet",
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    };
    let err = |pairs: &[(&str, &str)]| {
        FileSink::from_options(&env, opts(pairs))
            .unwrap_err()
            .to_string()
    };
    let e = err(&[
        ("path", "memory://m/x"),
        ("roll_rowz", "5"),
        ("colour", "red"),
    ]);
    assert!(e.contains("unknown option(s) 'colour', 'roll_rowz'"), "{e}");
    assert!(e.contains("roll_rows"), "{e}");
    let e = err(&[("roll_rows", "5")]);
    assert!(e.contains("option 'path' is required"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("roll_rows", "many")]);
    assert!(e.contains("option 'roll_rows' = 'many' is invalid"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("roll_interval", "5 fortnights")]);
    assert!(e.contains("option 'roll_interval'"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("compression", "rar")]);
    assert!(e.contains("option 'compression' = 'rar'"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("header", "true")]);
    assert!(
        e.contains("option 'header' does not apply to format 'parquet'"),
        "{e}"
    );
    let e = err(&[("path", "memory://m/x"), ("endpoint", "http://127.0.0.1:1")]);
    assert!(e.contains("only apply to s3:// locations"), "{e}");
    let e = err(&[("path", "ftp://host/x")]);
    assert!(e.contains("unsupported object store scheme 'ftp'"), "{e}");
    let e = err(&[("path", "s3://AKIA:secret@bucket/x")]);
    assert!(!e.contains("secret"), "{e}");
    assert!(e.contains("must not carry credentials"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("query_name", "a/b")]);
    assert!(e.contains("query name 'a/b'"), "{e}");
    let e = err(&[("path", "memory://m/x"), ("partition_by", "hour(ts)")]);
    assert!(e.contains("'partition_by' = 'hour(ts)'"), "{e}");
    // Good options, and a partition column the rows do not have.
    let mut sink = FileSink::from_options(
        &env,
        opts(&[
            ("path", "memory://m/x"),
            ("roll_rows", "10"),
            ("roll_bytes", "64MiB"),
            ("roll_interval", "10s"),
            ("partition_by", "dt_hour(event_ts)"),
            ("compression", "zstd(3)"),
        ]),
    )
    .unwrap();
    assert_eq!(sink.options().roll_bytes, Some(64 << 20));
    let e = sink.bind_schema(schema()).unwrap_err().to_string();
    assert!(
        e.contains(
            "partition column 'event_ts' is not in the query's output (ts, sym, qty, price)"
        ),
        "{e}"
    );
    // Secrets never appear in Debug output.
    let options = StoreOptions::default().with_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG");
    let shown = format!("{options:?}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    let location = StoreLocation::parse("s3://bucket/p", &options).unwrap();
    let shown = format!("{location:?}");
    assert!(
        !shown.contains("wJalrXUtnFEMI") && !shown.contains("AKIDEXAMPLE"),
        "{shown}"
    );
}

fn replay_context() -> StreamContext {
    StreamContext::with_runtime(StreamRuntime {
        clock: ManualClock::new(0),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors: Arc::new(datafusion_stream::errors::FailOnError),
    })
}

#[tokio::test]
async fn a_windowed_query_runs_into_a_partitioned_sink() {
    let ctx = replay_context();
    ctx.sql(
        "CREATE STREAM trades (ts TIMESTAMP, sym VARCHAR, qty BIGINT, price DOUBLE, \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'replay', 'partitions' = '2')",
    )
    .await
    .unwrap();
    let handle = ctx.replay_handle("trades").await.unwrap();
    handle.push(0, rows(H13, 0, 4), None).unwrap();
    handle
        .push(1, rows(H13 + HOUR - 2000, 10, 4), None)
        .unwrap();
    handle.finish().unwrap();
    let sink = FileSink::from_options(
        &ctx.session().runtime_env(),
        ConnectorOptions::new(
            "parquet",
            [
                ("path", "memory://sinks/windows"),
                ("query_name", "w"),
                ("partition_by", "dt_hour(window_start)"),
                ("sequence", "zero"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
    )
    .unwrap();
    let stats = run_query_into_sink(
        &ctx,
        "SELECT window_start, window_end, sym, COUNT(*) AS n, SUM(qty) AS total \
         FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) \
         GROUP BY window_start, window_end, sym",
        sink,
    )
    .await
    .unwrap();
    assert_eq!(stats.rows, 7);
    let store = StoreLocation::resolve(
        &ctx.session().runtime_env(),
        "memory://sinks",
        &StoreOptions::default(),
    )
    .unwrap()
    .store()
    .clone();
    let paths = list_paths(&store, "windows").await;
    assert_eq!(
        paths,
        vec![
            "windows/dt=2024-05-01/hour=13/w-0-000000.parquet",
            "windows/dt=2024-05-01/hour=14/w-0-000000.parquet"
        ]
    );
    let mut got = lines(&read_parquet(&store, &paths[0]).await);
    got.sort();
    assert_eq!(
        got,
        vec![
            "2024-05-01T13:00:00,2024-05-01T13:01:00,a,2,3",
            "2024-05-01T13:00:00,2024-05-01T13:01:00,b,1,1",
            "2024-05-01T13:00:00,2024-05-01T13:01:00,c,1,2",
            "2024-05-01T13:59:00,2024-05-01T14:00:00,b,1,10",
            "2024-05-01T13:59:00,2024-05-01T14:00:00,c,1,11"
        ]
    );
    let mut got = lines(&read_parquet(&store, &paths[1]).await);
    got.sort();
    assert_eq!(
        got,
        vec![
            "2024-05-01T14:00:00,2024-05-01T14:01:00,a,1,12",
            "2024-05-01T14:00:00,2024-05-01T14:01:00,b,1,13"
        ]
    );
    // DataFusion reads the sink's output back through the same registered store.
    ctx.session()
        .register_parquet(
            "w13",
            "memory://sinks/windows/dt=2024-05-01/hour=13/w-0-000000.parquet",
            Default::default(),
        )
        .await
        .unwrap();
    let df = ctx
        .session()
        .sql("SELECT sym, SUM(total) FROM w13 GROUP BY sym ORDER BY sym")
        .await
        .unwrap();
    assert_eq!(
        lines(&df.collect().await.unwrap()),
        vec!["a,3", "b,11", "c,13"]
    );
}

#[tokio::test]
async fn a_stream_query_runs_into_a_file_url_sink() {
    let dir = TempDir::new("sink");
    let ctx = replay_context();
    ctx.sql("CREATE STREAM s (ts TIMESTAMP, sym VARCHAR, qty BIGINT, price DOUBLE) WITH ('connector' = 'replay')")
        .await
        .unwrap();
    let handle = ctx.replay_handle("s").await.unwrap();
    handle.push(0, rows(H13, 0, 5), None).unwrap();
    handle.finish().unwrap();
    let location = StoreLocation::resolve(
        &ctx.session().runtime_env(),
        &format!("{}/out", dir.url()),
        &StoreOptions::default(),
    )
    .unwrap();
    location.check().await.unwrap();
    let sink = FileSink::try_new(
        location,
        SinkOptions::new("f")
            .with_roll_rows(2)
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    let stats = run_query_into_sink(
        &ctx,
        "SELECT sym, qty * 10 AS q10 FROM s WHERE qty <> 2",
        sink,
    )
    .await
    .unwrap();
    assert_eq!(stats.rows, 4);
    let mut names: Vec<String> = std::fs::read_dir(dir.0.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    // Only complete objects: no staging files left next to them.
    assert_eq!(names, vec!["f-0-000000.parquet", "f-0-000001.parquet"]);
    let mut all = Vec::new();
    for n in &names {
        let bytes = bytes::Bytes::from(std::fs::read(dir.0.join("out").join(n)).unwrap());
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes,
            )
            .unwrap()
            .build()
            .unwrap();
        all.extend(lines(&reader.collect::<Result<Vec<_>, _>>().unwrap()));
    }
    assert_eq!(all, vec!["a,0", "b,10", "a,30", "b,40"]);
}

#[test]
fn partition_by_parses() {
    assert_eq!(PartitionBy::parse("").unwrap(), PartitionBy::None);
    assert_eq!(
        PartitionBy::parse("DT_HOUR( Event_Ts )").unwrap(),
        PartitionBy::Time {
            column: "Event_Ts".into(),
            granularity: TimeGranularity::Hour
        }
    );
    assert_eq!(
        PartitionBy::parse("dt(ts)").unwrap(),
        PartitionBy::Time {
            column: "ts".into(),
            granularity: TimeGranularity::Day
        }
    );
    assert_eq!(
        PartitionBy::parse("region, kind").unwrap(),
        PartitionBy::Columns(vec!["region".into(), "kind".into()])
    );
    assert!(PartitionBy::parse("a,,b").is_err());
}

// ---------------------------------------------------------------------------------------------
// S3 (moto)

fn big_rows(first: i64, n: i64) -> RecordBatch {
    // Incompressible-ish strings so the Parquet file is several MiB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ first as u64;
    let v: Vec<(i64, String, i64, f64)> = (first..first + n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (
                H13 + i,
                format!("{x:016x}{:016x}", x.rotate_left(29)),
                i,
                (x % 10_000) as f64,
            )
        })
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(
                v.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                v.iter().map(|r| Some(r.1.as_str())).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(v.iter().map(|r| r.2).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(
                v.iter().map(|r| r.3).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_parquet_sink_against_a_local_server() {
    let moto = MotoServer::start();
    moto.create_bucket("lake");
    let location = moto.location("s3://lake/trades");
    location.check().await.unwrap();

    // Partitioned by hour, rolled at 3 rows, two input partitions.
    let options = SinkOptions::new("q")
        .with_partition_by(PartitionBy::Time {
            column: "ts".into(),
            granularity: TimeGranularity::Hour,
        })
        .with_roll_rows(3);
    let mut sink = FileSink::try_new(location.clone(), options.clone()).unwrap();
    sink.write(0, &rows(H13, 0, 4)).await.unwrap();
    sink.write(1, &rows(H13 + HOUR, 10, 2)).await.unwrap();
    let stats = sink.close().await.unwrap();
    let store = Arc::clone(location.store());
    assert_eq!(
        list_paths(&store, "trades").await,
        vec![
            "trades/dt=2024-05-01/hour=13/q-0-000000.parquet",
            "trades/dt=2024-05-01/hour=13/q-0-000001.parquet",
            "trades/dt=2024-05-01/hour=14/q-1-000000.parquet"
        ]
    );
    assert_eq!(
        stats
            .files
            .iter()
            .map(|f| f.url.as_str())
            .collect::<Vec<_>>(),
        vec![
            "s3://lake/trades/dt=2024-05-01/hour=13/q-0-000000.parquet",
            "s3://lake/trades/dt=2024-05-01/hour=13/q-0-000001.parquet",
            "s3://lake/trades/dt=2024-05-01/hour=14/q-1-000000.parquet"
        ]
    );
    assert_eq!(
        lines(&read_parquet_async(&store, "trades/dt=2024-05-01/hour=13/q-0-000000.parquet").await),
        vec![
            "2024-05-01T13:00:00,a,0,0.0",
            "2024-05-01T13:00:01,b,1,0.5",
            "2024-05-01T13:00:02,c,2,1.0"
        ]
    );
    assert_eq!(
        lines(&read_parquet_async(&store, "trades/dt=2024-05-01/hour=13/q-0-000001.parquet").await),
        vec!["2024-05-01T13:00:03,a,3,1.5"]
    );
    assert_eq!(
        lines(&read_parquet_async(&store, "trades/dt=2024-05-01/hour=14/q-1-000000.parquet").await),
        vec![
            "2024-05-01T14:00:00,b,10,5.0",
            "2024-05-01T14:00:01,c,11,5.5"
        ]
    );
    // A restart continues the numbering in each directory.
    let mut sink = FileSink::try_new(location.clone(), options).unwrap();
    sink.write(0, &rows(H13 + 10_000, 20, 1)).await.unwrap();
    let stats = sink.close().await.unwrap();
    assert_eq!(
        stats.files[0].path,
        "trades/dt=2024-05-01/hour=13/q-0-000002.parquet"
    );

    // A large file goes up as a multipart upload (5 MiB parts) and reads back whole.
    let big = moto.location("s3://lake/big");
    let mut sink = FileSink::try_new(
        big.clone(),
        SinkOptions::new("m")
            .with_format(SinkFormat::Parquet {
                compression: Compression::UNCOMPRESSED,
                row_group_rows: 50_000,
            })
            .with_upload_buffer(5 * 1024 * 1024)
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    let mut expected = Vec::new();
    for k in 0..6 {
        let b = big_rows(k * 50_000, 50_000);
        expected.extend(lines(std::slice::from_ref(&b)));
        sink.write(0, &b).await.unwrap();
    }
    let stats = sink.close().await.unwrap();
    assert_eq!(stats.files.len(), 1);
    assert!(stats.bytes > 10 * 1024 * 1024, "{} bytes", stats.bytes);
    let meta = big
        .store()
        .head(&Path::from("big/m-0-000000.parquet"))
        .await
        .unwrap();
    assert_eq!(meta.size, stats.bytes);
    // S3 multipart ETags end in -<number of parts>.
    let etag = meta.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').contains('-'),
        "not a multipart object: {etag}"
    );
    let got = lines(&read_parquet_async(big.store(), "big/m-0-000000.parquet").await);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "rows differ");
    assert_eq!(moto.multipart_uploads("lake"), 0);

    // A part failing mid-upload: no object, the upload aborted on the server too.
    let failing = Arc::new(FailingStore::new(Arc::clone(big.store()), Some(2), false));
    let mut sink = FileSink::try_new(
        big.with_store(Arc::clone(&failing) as Arc<dyn ObjectStore>),
        SinkOptions::new("fail")
            .with_format(SinkFormat::Parquet {
                compression: Compression::UNCOMPRESSED,
                row_group_rows: 50_000,
            })
            .with_upload_buffer(5 * 1024 * 1024)
            .with_sequence_start(SequenceStart::Zero),
    )
    .unwrap();
    let mut error = None;
    for k in 0..6 {
        if let Err(e) = sink.write(0, &big_rows(k * 50_000, 50_000)).await {
            error = Some(e.to_string());
            break;
        }
    }
    let error = match error {
        Some(e) => e,
        None => sink.close().await.unwrap_err().to_string(),
    };
    assert!(error.contains("injected failure: part 2"), "{error}");
    assert!(
        error.contains("s3://lake/big/fail-0-000000.parquet"),
        "{error}"
    );
    let calls = failing.calls();
    assert_eq!((calls.completed, calls.aborted), (0, 1), "{calls:?}");
    assert!(matches!(
        big.store()
            .head(&Path::from("big/fail-0-000000.parquet"))
            .await,
        Err(object_store::Error::NotFound { .. })
    ));
    assert_eq!(
        moto.multipart_uploads("lake"),
        0,
        "the multipart upload was left on the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_name_the_bucket_and_the_endpoint() {
    let moto = MotoServer::start();
    // A missing bucket: check() and a sink's first file say so.
    let missing = moto.location("s3://no-such-bucket/x");
    let e = missing.check().await.unwrap_err().to_string();
    assert!(e.contains("bucket 'no-such-bucket' does not exist"), "{e}");
    assert!(e.contains(&moto.endpoint()), "{e}");
    let mut sink = FileSink::try_new(missing, SinkOptions::new("q").with_roll_rows(1)).unwrap();
    let e = sink
        .write(0, &rows(H13, 0, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-bucket"), "{e}");
    // An unreachable endpoint (nothing listens there).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = StoreOptions::local_endpoint(format!("http://127.0.0.1:{port}"))
        .with_credentials("test", "secret-do-not-print")
        .with_region("us-east-1")
        .with_max_retries(1);
    let location = StoreLocation::parse("s3://lake/x", &options).unwrap();
    let e = location.check().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("cannot reach endpoint 'http://127.0.0.1:{port}'")),
        "{e}"
    );
    assert!(e.contains("s3://lake/x"), "{e}");
    assert!(!e.contains("secret-do-not-print"), "{e}");
    // A bad endpoint option.
    let e = StoreLocation::parse("s3://lake/x", &StoreOptions::local_endpoint("not a url"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("option 'endpoint' = 'not a url' is not a URL"),
        "{e}"
    );
}
