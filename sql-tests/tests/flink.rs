//! Differential check against Apache Flink 2.3: the same window queries (the last statement
//! of `sql-tests/flink/{tumble,hop,session}.sql`, run unchanged) over the same 12,000
//! out-of-order rows (`flink/events.csv`, replayed in file order in small batches) must give
//! exactly the rows Flink printed (`flink/*.expected.csv`, produced by
//! `../shared/tools/flink-oracle/run`; see `flink/README.md`).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_stream::{ManualClock, StreamContext, StreamRuntime};
use futures::{FutureExt, StreamExt};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("flink")
}

/// The query of a Flink script: its last statement.
fn flink_query(name: &str) -> String {
    let text = std::fs::read_to_string(dir().join(format!("{name}.sql"))).expect("read script");
    let statements: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        })
        .collect();
    statements.last().expect("a query").to_string()
}

/// Flink prints timestamps like Python's `str(datetime)`: no fraction when it is zero,
/// otherwise six digits.
fn flink_timestamp(s: &str) -> String {
    let s = s.replace('T', " ");
    match s.split_once('.') {
        None => s,
        Some((base, frac)) => {
            let ms: u32 = frac.parse().expect("fraction");
            if ms == 0 {
                base.to_string()
            } else {
                format!("{base}.{:06}", ms * 1000)
            }
        }
    }
}

fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default();
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    DataType::Float64 => {
                        let a = c.as_any().downcast_ref::<Float64Array>().expect("f64");
                        format!("{:?}", a.value(r))
                    }
                    DataType::Timestamp(_, _) => {
                        let f = ArrayFormatter::try_new(c.as_ref(), &opts).expect("fmt");
                        flink_timestamp(&f.value(r).to_string())
                    }
                    _ => {
                        let f = ArrayFormatter::try_new(c.as_ref(), &opts).expect("fmt");
                        f.value(r).to_string()
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    rows
}

fn input_batches(chunk: usize) -> Vec<RecordBatch> {
    let text = std::fs::read_to_string(dir().join("events.csv")).expect("events.csv");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines.len() >= 10_000,
        "the differential input must have at least 10,000 rows"
    );
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        datafusion::arrow::datatypes::Field::new("k", DataType::Utf8, true),
        datafusion::arrow::datatypes::Field::new("v", DataType::Float64, true),
    ]));
    lines
        .chunks(chunk)
        .map(|c| {
            let mut ts = Vec::new();
            let mut k = Vec::new();
            let mut v = Vec::new();
            for l in c {
                let f: Vec<&str> = l.split(',').collect();
                ts.push(f[0].to_string());
                k.push(f[1].to_string());
                v.push(f[2].parse::<f64>().expect("v"));
            }
            let ts: ArrayRef = Arc::new(StringArray::from(ts));
            let ts = cast(&ts, &DataType::Timestamp(TimeUnit::Millisecond, None)).expect("ts");
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    ts,
                    Arc::new(StringArray::from(k)),
                    Arc::new(Float64Array::from(v)),
                ],
            )
            .expect("batch")
        })
        .collect()
}

async fn differential(name: &str, chunk: usize) {
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: ManualClock::new(0),
        idle_timeout: None,
        ..StreamRuntime::default()
    });
    ctx.sql("CREATE STREAM events (ts TIMESTAMP(3), k STRING, v DOUBLE, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'replay')")
        .await
        .expect("create stream");
    let mut q = ctx
        .query(&flink_query(name))
        .await
        .expect("plan the Flink query");
    let handle = ctx.replay_handle("events").await.expect("handle");
    let mut out = Vec::new();
    let mut emitted_before_end = 0;
    for b in input_batches(chunk) {
        handle.push(0, b, None).expect("push");
        while let Some(Some(b)) = q.stream().next().now_or_never() {
            out.push(b.expect("batch"));
        }
    }
    emitted_before_end += out.iter().map(|b| b.num_rows()).sum::<usize>();
    handle.finish().expect("finish");
    while let Some(b) = q.stream().next().await {
        out.push(b.expect("batch"));
    }
    let mut ours = rows_of(&out);
    ours.sort();
    let expected_text =
        std::fs::read_to_string(dir().join(format!("{name}.expected.csv"))).expect("expected");
    let mut expected: Vec<Vec<String>> = expected_text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    expected.sort();
    assert_eq!(
        q.counter("late_rows"),
        0,
        "{name}: no row of the input is late"
    );
    assert!(
        emitted_before_end > expected.len() / 2,
        "{name}: windows must be emitted as the watermark passes, not at the end ({emitted_before_end} of {} before the end)",
        expected.len()
    );
    if ours != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|r| !ours.contains(r))
            .take(5)
            .collect();
        let extra: Vec<_> = ours
            .iter()
            .filter(|r| !expected.contains(r))
            .take(5)
            .collect();
        panic!(
            "{name}: {} rows from us, {} from Flink\nmissing (first 5): {missing:?}\nextra (first 5): {extra:?}",
            ours.len(),
            expected.len()
        );
    }
}

#[tokio::test]
async fn tumble_equals_flink() {
    differential("tumble", 100).await;
}

#[tokio::test]
async fn hop_equals_flink() {
    differential("hop", 37).await;
}

#[tokio::test]
async fn session_equals_flink() {
    differential("session", 256).await;
}

#[tokio::test]
async fn tumble_equals_flink_row_by_row() {
    differential("tumble", 1).await;
}
