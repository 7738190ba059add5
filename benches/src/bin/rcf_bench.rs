//! RANDOM_CUT_FOREST throughput: records/s on one core for 100 trees × 256 samples on 1, 4 and
//! 30 dimensions, the model alone and through the streaming operator (`random_cut_forest`
//! over a replay stream), with the allocator peak.
//!
//! ```text
//! cargo run --release -p datafusion-stream-benches --bin rcf_bench -- [--records N] [--dims 1,4,30] [--trees T] [--samples S]
//! ```
//!
//! Input: N records of `dims` DOUBLE columns, uniform noise in [0, 100) with a planted outlier
//! every 1,000 records (generated before the baseline). Model: `RcfModel::score_and_update` per
//! record. Operator: `SELECT * FROM random_cut_forest('s', T, S)` on a current-thread runtime,
//! drained. The first S records are the learning phase (cheaper: they are only added).

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion_stream::anomaly::rcf::{RcfModel, RcfParams};
use datafusion_stream::errors::FailOnError;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplaySource, RowtimeMode, StreamContext, StreamRuntime,
    StreamTable,
};
use datafusion_stream_benches::alloc::{self, CountingAlloc};
use datafusion_stream_benches::gen::SplitMix64;
use futures::StreamExt;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn points(records: usize, dims: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(17);
    let mut p = Vec::with_capacity(records * dims);
    for i in 0..records {
        for _ in 0..dims {
            let v = rng.next_f64() * 100.0;
            p.push(if i % 1000 == 999 { v + 1000.0 } else { v });
        }
    }
    p
}

fn batches(p: &[f64], dims: usize) -> Result<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(
        (0..dims)
            .map(|d| Field::new(format!("c{d}"), DataType::Float64, false))
            .collect::<Vec<_>>(),
    ));
    let rows = p.len() / dims;
    let mut out = Vec::new();
    for start in (0..rows).step_by(1024) {
        let end = (start + 1024).min(rows);
        let cols: Vec<ArrayRef> = (0..dims)
            .map(|d| {
                Arc::new(Float64Array::from_iter_values(
                    (start..end).map(|r| p[r * dims + d]),
                )) as ArrayRef
            })
            .collect();
        out.push(RecordBatch::try_new(Arc::clone(&schema), cols)?);
    }
    Ok(out)
}

async fn operator(input: &[RecordBatch], params: &RcfParams) -> Result<usize> {
    let runtime = StreamRuntime {
        clock: ManualClock::new(0),
        tick_interval: std::time::Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Fail,
        errors: Arc::new(FailOnError),
    };
    let ctx = StreamContext::with_runtime(runtime);
    let src = ReplaySource::new(input[0].schema(), 1, RowtimeMode::Ingest);
    let h = src.handle();
    for b in input {
        h.push(0, b.clone(), None)?;
    }
    h.finish()?;
    ctx.register_stream(StreamTable::try_new("s", Arc::new(src), "rowtime", None)?)?;
    let mut q = ctx
        .query(&format!(
            "SELECT * FROM random_cut_forest('s', {}, {})",
            params.number_of_trees, params.sub_sample_size
        ))
        .await?;
    let mut rows = 0;
    while let Some(b) = q.stream().next().await {
        rows += b?.num_rows();
    }
    Ok(rows)
}

fn main() -> Result<()> {
    let records: usize = arg("--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dims: Vec<usize> = arg("--dims")
        .unwrap_or_else(|| "1,4,30".into())
        .split(',')
        .filter_map(|d| d.parse().ok())
        .collect();
    let params = RcfParams {
        number_of_trees: arg("--trees").and_then(|v| v.parse().ok()).unwrap_or(100),
        sub_sample_size: arg("--samples").and_then(|v| v.parse().ok()).unwrap_or(256),
        ..RcfParams::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "records={records} trees={} samples={} (one thread)",
        params.number_of_trees, params.sub_sample_size
    );
    println!(
        "{:<10} {:>5} {:>12} {:>14} {:>12}",
        "path", "dims", "time_ms", "records/s", "peak_MB"
    );
    for &d in &dims {
        let p = points(records, d);
        let input = batches(&p, d)?;
        // the model alone
        let base = alloc::reset_peak();
        let start = Instant::now();
        let mut m = RcfModel::try_new(params, d)?;
        let mut sum = 0.0;
        for r in 0..records {
            sum += m.score_and_update(&p[r * d..(r + 1) * d])?;
        }
        let t = start.elapsed();
        let peak = alloc::peak().saturating_sub(base);
        println!(
            "{:<10} {:>5} {:>12.1} {:>14.0} {:>12.1}",
            "model",
            d,
            t.as_secs_f64() * 1e3,
            records as f64 / t.as_secs_f64(),
            peak as f64 / 1e6
        );
        std::hint::black_box(sum);
        drop(m);
        // through the streaming operator
        let base = alloc::reset_peak();
        let start = Instant::now();
        let rows = rt.block_on(operator(&input, &params))?;
        let t = start.elapsed();
        let peak = alloc::peak().saturating_sub(base);
        println!(
            "{:<10} {:>5} {:>12.1} {:>14.0} {:>12.1}",
            "operator",
            d,
            t.as_secs_f64() * 1e3,
            records as f64 / t.as_secs_f64(),
            peak as f64 / 1e6
        );
        if rows != records {
            eprintln!("MISMATCH: the operator emitted {rows} rows for {records} records");
            std::process::exit(1);
        }
    }
    Ok(())
}
