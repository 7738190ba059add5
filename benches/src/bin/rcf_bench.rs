//! Anomaly detection throughput: records/s on one core for RANDOM_CUT_FOREST with 100 trees ×
//! 256 samples on 1, 4 and 30 dimensions, and for HOTSPOTS (Example J's 1000, 0.2, 17) on 2
//! dimensions — each the model alone and through the streaming operator (the table function
//! over a replay stream), next to a DataFusion batch reference on the same data and, for RCF,
//! `krcflib` (the Rust port of AWS's library) with the same options, with the allocator peak.
//!
//! ```text
//! cargo run --release -p datafusion-stream-benches --bin rcf_bench -- [--records N] [--dims 1,4,30]
//!     [--trees T] [--samples S] [--hotspots-dims 2]
//! ```
//!
//! ```text
//!  generated points (before the baseline) ─┬─► reference: DataFusion batch, SELECT * over a MemTable
//!                                          ├─► krcflib:   RCFMedium score + update, per record (RCF only)
//!                                          ├─► model:     RcfModel::score_and_update / HotspotsModel::update, per record
//!                                          ├─► batched:   RcfModel::score_and_update_all, 1024 records per call (RCF only)
//!                                          ├─► operator:  SELECT * FROM random_cut_forest('s', T, S) | hotspots('s', ..)
//!                                          │              on a current-thread runtime, drained
//!                                          └─► explain:   the same three for RANDOM_CUT_FOREST_WITH_EXPLANATION
//!                                                         (explain_and_update, explain_and_update_all,
//!                                                         random_cut_forest_with_explanation('s', T, S))
//! ```
//!
//! RCF input: N records of `dims` DOUBLE columns, uniform noise in [0, 100) with a planted
//! outlier every 1,000 records. The first S records are RCF's learning phase (cheaper: they are
//! only added). HOTSPOTS input: uniform in [0, 10) per column with every 10th record in the
//! hot cube [4, 4.3). The reference moves the same batches through DataFusion's batch engine
//! (no model), the floor any per-row model adds to.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion_stream::anomaly::hotspots::{HotspotsModel, HotspotsParams};
use datafusion_stream::anomaly::rcf::{RcfModel, RcfParams};
use datafusion_stream::errors::FailOnError;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplaySource, RowtimeMode, StreamContext, StreamRuntime,
    StreamTable,
};
use datafusion_stream_benches::alloc::{self, CountingAlloc};
use datafusion_stream_benches::gen::SplitMix64;
use futures::StreamExt;
use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFOptionsBuilder};

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

fn hot_points(records: usize, dims: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(23);
    let mut p = Vec::with_capacity(records * dims);
    for i in 0..records {
        for _ in 0..dims {
            let v = if i % 10 == 0 {
                4.0 + rng.next_f64() * 0.3
            } else {
                rng.next_f64() * 10.0
            };
            p.push(v);
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

/// Runs `sql` (over the stream `s` holding `input`) to the end; returns the rows.
async fn operator(input: &[RecordBatch], sql: &str) -> Result<usize> {
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
    let mut q = ctx.query(sql).await?;
    let mut rows = 0;
    while let Some(b) = q.stream().next().await {
        rows += b?.num_rows();
    }
    Ok(rows)
}

/// The reference: the same batches through DataFusion's batch engine (`SELECT *`, collected).
async fn reference(input: &[RecordBatch]) -> Result<usize> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(input[0].schema(), vec![input.to_vec()])?;
    ctx.register_table("t", Arc::new(table))?;
    let out = ctx.sql("SELECT * FROM t").await?.collect().await?;
    Ok(out.iter().map(|b| b.num_rows()).sum())
}

/// `krcflib` with the options `RcfModel` used when it wrapped it: score (0 while learning),
/// then update, per record.
fn krcflib(p: &[f64], dims: usize, params: &RcfParams) -> Result<usize> {
    fn err(e: impl std::fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("krcflib: {e}"))
    }
    let mut builder = RCFBuilder::new(dims, params.shingle_size);
    builder
        .tree_capacity(params.sub_sample_size)
        .number_of_trees(params.number_of_trees)
        .time_decay(1.0 / params.time_decay as f64)
        .random_seed(params.seed)
        .internal_shingling(true)
        .parallel_enabled(false)
        .output_after(0)
        .initial_accept_fraction(1.0);
    let mut forest = builder.build_medium_simple::<u64>().map_err(err)?;
    let mut point = vec![0f32; dims];
    let mut sum = 0.0;
    let records = p.len() / dims;
    for r in 0..records {
        for (x, v) in point.iter_mut().zip(&p[r * dims..(r + 1) * dims]) {
            *x = *v as f32;
        }
        if r >= params.sub_sample_size {
            sum += forest.score(&point).map_err(err)?;
        }
        forest.update(&point, 0).map_err(err)?;
    }
    std::hint::black_box(sum);
    Ok(records)
}

/// Times `f` and prints one line; fails if it returned another number of rows.
fn measure(
    path: &str,
    dims: usize,
    records: usize,
    f: impl FnOnce() -> Result<usize>,
) -> Result<()> {
    let base = alloc::reset_peak();
    let start = Instant::now();
    let rows = f()?;
    let t = start.elapsed();
    let peak = alloc::peak().saturating_sub(base);
    println!(
        "{:<18} {:>5} {:>12.1} {:>14.0} {:>12.1}",
        path,
        dims,
        t.as_secs_f64() * 1e3,
        records as f64 / t.as_secs_f64(),
        peak as f64 / 1e6
    );
    if rows != records {
        eprintln!("MISMATCH: {path} produced {rows} rows for {records} records");
        std::process::exit(1);
    }
    Ok(())
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
    let hot_dims: Vec<usize> = arg("--hotspots-dims")
        .unwrap_or_else(|| "2".into())
        .split(',')
        .filter_map(|d| d.parse().ok())
        .collect();
    let hot = HotspotsParams {
        window_size: 1000,
        scan_radius: 0.2,
        min_points: 17,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "records={records}; RCF trees={} samples={}; HOTSPOTS window={} radius={} min_points={} (one thread)",
        params.number_of_trees, params.sub_sample_size, hot.window_size, hot.scan_radius, hot.min_points
    );
    println!(
        "{:<18} {:>5} {:>12} {:>14} {:>12}",
        "path", "dims", "time_ms", "records/s", "peak_MB"
    );
    for &d in &dims {
        let p = points(records, d);
        let input = batches(&p, d)?;
        measure("batch reference", d, records, || {
            rt.block_on(reference(&input))
        })?;
        measure("krcflib model", d, records, || krcflib(&p, d, &params))?;
        measure("rcf model", d, records, || {
            let mut m = RcfModel::try_new(params, d)?;
            let mut sum = 0.0;
            for r in 0..records {
                sum += m.score_and_update(&p[r * d..(r + 1) * d])?;
            }
            std::hint::black_box(sum);
            Ok(records)
        })?;
        measure("rcf model batched", d, records, || {
            let mut m = RcfModel::try_new(params, d)?;
            let mut sum = 0.0;
            for chunk in p.chunks(1024 * d) {
                sum += m.score_and_update_all(chunk)?.iter().sum::<f64>();
            }
            std::hint::black_box(sum);
            Ok(records)
        })?;
        let sql = format!(
            "SELECT * FROM random_cut_forest('s', {}, {})",
            params.number_of_trees, params.sub_sample_size
        );
        measure("rcf operator", d, records, || {
            rt.block_on(operator(&input, &sql))
        })?;
        measure("explain model", d, records, || {
            let mut m = RcfModel::try_new(params, d)?;
            let mut sum = 0.0;
            for r in 0..records {
                sum += m.explain_and_update(&p[r * d..(r + 1) * d])?.0;
            }
            std::hint::black_box(sum);
            Ok(records)
        })?;
        measure("explain batched", d, records, || {
            let mut m = RcfModel::try_new(params, d)?;
            let mut sum = 0.0;
            for chunk in p.chunks(1024 * d) {
                sum += m
                    .explain_and_update_all(chunk)?
                    .iter()
                    .map(|e| e.0)
                    .sum::<f64>();
            }
            std::hint::black_box(sum);
            Ok(records)
        })?;
        let sql = format!(
            "SELECT * FROM random_cut_forest_with_explanation('s', {}, {})",
            params.number_of_trees, params.sub_sample_size
        );
        measure("explain operator", d, records, || {
            rt.block_on(operator(&input, &sql))
        })?;
    }
    for &d in &hot_dims {
        let p = hot_points(records, d);
        let input = batches(&p, d)?;
        measure("batch reference", d, records, || {
            rt.block_on(reference(&input))
        })?;
        measure("hotspots model", d, records, || {
            let mut m = HotspotsModel::try_new(hot, d)?;
            let mut len = 0;
            for r in 0..records {
                len += m.update(&p[r * d..(r + 1) * d])?.len();
            }
            std::hint::black_box(len);
            Ok(records)
        })?;
        let sql = format!(
            "SELECT * FROM hotspots('s', {}, {:?}, {})",
            hot.window_size, hot.scan_radius, hot.min_points
        );
        measure("hotspots operator", d, records, || {
            rt.block_on(operator(&input, &sql))
        })?;
    }
    Ok(())
}
