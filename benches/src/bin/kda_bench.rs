//! A KDA application (a tumbling pump into an in-application stream) vs the same windowed
//! query run directly on the engine, side by side: the cost of the KDA layer (pumps, the
//! input broadcast, casting into the target stream, the output scan).
//!
//! ```text
//! cargo run --release -p datafusion-stream-benches --bin kda_bench -- [--events N] [--keys K] [--runs R]
//! ```
//!
//! Input: N in-order events (ROWTIME = event time, 20,000 per second of ROWTIME), K keys.
//! KDA: `INSERT INTO OUT SELECT STREAM K, COUNT(*), SUM(V) ... GROUP BY K, STEP(ROWTIME BY
//! INTERVAL '1' MINUTE)`, driven by `RunningApplication::next_event`. Engine: the same window
//! with `tumble_end(rowtime, ...)` over a replay stream. One thread each (current-thread
//! runtime); the median of R interleaved runs; peak = allocator peak above the baseline
//! (the input batches, held by both, are allocated before the baseline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion_stream::errors::FailOnError;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplaySource, RowtimeMode, StreamContext, StreamRuntime,
    StreamTable,
};
use datafusion_stream_benches::alloc::{self, CountingAlloc};
use datafusion_stream_benches::gen::{generate, GenConfig};
use datafusion_stream_kda::KdaApplication;
use futures::StreamExt;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn runtime() -> StreamRuntime {
    StreamRuntime {
        clock: ManualClock::new(0),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Fail,
        errors: Arc::new(FailOnError),
    }
}

/// (k, v) columns of the generated events and their ROWTIME (the `ts` column).
fn split(batches: &[RecordBatch]) -> Vec<(RecordBatch, Arc<dyn Array>)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("K", DataType::Int64, true),
        Field::new("V", DataType::Float64, true),
    ]));
    batches
        .iter()
        .map(|b| {
            let data = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::clone(b.column(1)), Arc::clone(b.column(2))],
            )
            .expect("columns match");
            (data, Arc::clone(b.column(0)))
        })
        .collect()
}

fn source(input: &[(RecordBatch, Arc<dyn Array>)]) -> Result<ReplaySource> {
    let src = ReplaySource::new(input[0].0.schema(), 1, RowtimeMode::Supplied);
    let h = src.handle();
    for (b, t) in input {
        h.push(0, b.clone(), Some(Arc::clone(t)))?;
    }
    h.finish()?;
    Ok(src)
}

/// (output rows, total COUNT over all rows)
async fn run_kda(input: &[(RecordBatch, Arc<dyn Array>)]) -> Result<(usize, i64)> {
    let mut app = KdaApplication::new(runtime())?;
    app.add_input("SOURCE_SQL_STREAM_001", Arc::new(source(input)?))?;
    app.load_code(
        "CREATE STREAM OUT (K BIGINT, N BIGINT, S DOUBLE);
         CREATE PUMP P AS INSERT INTO OUT SELECT STREAM K, COUNT(*), SUM(V)
           FROM SOURCE_SQL_STREAM_001
           GROUP BY K, STEP(SOURCE_SQL_STREAM_001.ROWTIME BY INTERVAL '1' MINUTE);",
    )
    .map_err(|d| datafusion_stream_kda::program::diagnostics_error(&d))?;
    app.add_output("OUT")?;
    let mut running = app.start().await?;
    let (mut rows, mut total) = (0, 0);
    loop {
        let more = running.next_event().await?;
        for b in running.take_output("OUT") {
            rows += b.num_rows();
            total += b
                .column(2)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .sum::<i64>();
        }
        if !more {
            break;
        }
    }
    Ok((rows, total))
}

async fn run_engine(input: &[(RecordBatch, Arc<dyn Array>)]) -> Result<(usize, i64)> {
    let ctx = StreamContext::with_runtime(runtime());
    ctx.register_stream(StreamTable::try_new(
        "s",
        Arc::new(source(input)?),
        "rowtime",
        None,
    )?)?;
    let mut q = ctx
        .query(
            "SELECT tumble_end(rowtime, INTERVAL '1' MINUTE) AS w, \"K\", COUNT(*) AS n, SUM(\"V\") AS s \
             FROM s GROUP BY \"K\", tumble_end(rowtime, INTERVAL '1' MINUTE)",
        )
        .await?;
    let (mut rows, mut total) = (0, 0);
    while let Some(b) = q.stream().next().await {
        let b = b?;
        rows += b.num_rows();
        total += b
            .column(2)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .sum::<i64>();
    }
    Ok((rows, total))
}

/// (name, (time, peak bytes) per run, (output rows, total count))
type Entry = (&'static str, Vec<(Duration, usize)>, (usize, i64));

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let events = arg("--events", 2_000_000);
    let keys = arg("--keys", 1_000) as u64;
    let runs = arg("--runs", 3).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cfg = GenConfig {
        out_of_order: 0.0,
        ..GenConfig::new(events, keys)
    };
    let input = split(&generate(&cfg));
    let mut results: Vec<Entry> = vec![("kda pump", vec![], (0, 0)), ("engine", vec![], (0, 0))];
    for _ in 0..runs {
        for (i, entry) in results.iter_mut().enumerate() {
            let base = alloc::reset_peak();
            let start = Instant::now();
            let out = if i == 0 {
                rt.block_on(run_kda(&input))?
            } else {
                rt.block_on(run_engine(&input))?
            };
            entry
                .1
                .push((start.elapsed(), alloc::peak().saturating_sub(base)));
            entry.2 = out;
        }
    }
    println!("events={events} keys={keys} runs={runs} (median; one thread)");
    println!(
        "{:<10} {:>12} {:>14} {:>12} {:>10} {:>12}",
        "engine", "time_ms", "events/s", "peak_MB", "out_rows", "sum(count)"
    );
    for (name, mut m, (rows, total)) in results.clone() {
        m.sort();
        let (t, peak) = m[m.len() / 2];
        println!(
            "{:<10} {:>12.1} {:>14.0} {:>12.1} {:>10} {:>12}",
            name,
            t.as_secs_f64() * 1e3,
            events as f64 / t.as_secs_f64(),
            peak as f64 / 1e6,
            rows,
            total
        );
    }
    if results[0].2 != results[1].2 || results[0].2 .1 != events as i64 {
        eprintln!("MISMATCH: the two engines disagree or lost rows");
        std::process::exit(1);
    }
    Ok(())
}
