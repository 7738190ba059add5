//! `parquet_sink_bench`: throughput of the Parquet file sink (`FileSink`) writing pre-generated
//! batches to `memory://` or `file://`, on one thread.
//!
//! ```text
//!  gen::generate(N) ──► Vec<RecordBatch> (8192 rows: ts, k, v; not timed)
//!        │ timed: FileSink::try_new ─► write(0, batch) for every batch ─► close()
//!        ▼
//!  memory://bench/out  or  file:///tmp/...   (objects read back and counted after each run)
//! ```
//!
//! Reports rows/s, input MB/s (Arrow bytes of the batches) and output MB/s (Parquet bytes),
//! per wall second and per CPU second (process CPU time from `/proc/self/task/*/schedstat`).
//! See `benches/README.md` for the command and results.

use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion_stream_benches::gen::{generate, GenConfig};
use datafusion_stream_benches::process_cpu_time;
use datafusion_stream_connectors::object_store::{StoreLocation, StoreOptions};
use datafusion_stream_connectors::sink::{
    FileSink, PartitionBy, SequenceStart, SinkFormat, SinkOptions, TimeGranularity,
};

struct Args {
    rows: usize,
    runs: usize,
    target: String,
    compression: Compression,
    partition: bool,
    roll_rows: Option<u64>,
    rate: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: parquet_sink_bench [--rows N] [--runs R] [--target memory|file] \
         [--compression snappy|zstd|none] [--partition-hour] [--roll-rows N] \
         [--rate EVENTS_PER_S_OF_EVENT_TIME]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 5_000_000,
        runs: 3,
        target: "memory".into(),
        compression: Compression::SNAPPY,
        partition: false,
        roll_rows: None,
        rate: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--rows" => args.rows = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => args.runs = value().parse().unwrap_or_else(|_| usage()),
            "--target" => args.target = value(),
            "--roll-rows" => args.roll_rows = Some(value().parse().unwrap_or_else(|_| usage())),
            "--partition-hour" => args.partition = true,
            "--rate" => args.rate = value().parse().unwrap_or_else(|_| usage()),
            "--compression" => {
                args.compression = match value().as_str() {
                    "snappy" => Compression::SNAPPY,
                    "zstd" => Compression::ZSTD(ZstdLevel::default()),
                    "none" => Compression::UNCOMPRESSED,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if args.target != "memory" && args.target != "file" {
        usage()
    }
    args
}

struct Run {
    wall: Duration,
    cpu: Option<Duration>,
    files: usize,
    out_bytes: u64,
}

async fn one_run(args: &Args, batches: &[RecordBatch], run: usize) -> Run {
    let dir = std::env::temp_dir().join(format!("parquet-sink-bench-{}-{run}", std::process::id()));
    let url = match args.target.as_str() {
        "file" => format!("file://{}", dir.display()),
        _ => format!("memory://bench{run}/out"),
    };
    let location = StoreLocation::parse(&url, &StoreOptions::default()).expect("location");
    let mut options = SinkOptions::new("bench")
        .with_format(SinkFormat::Parquet {
            compression: args.compression,
            row_group_rows: 128 * 1024,
        })
        .with_sequence_start(SequenceStart::Zero);
    if args.partition {
        options = options.with_partition_by(PartitionBy::Time {
            column: "ts".into(),
            granularity: TimeGranularity::Hour,
        });
    }
    if let Some(r) = args.roll_rows {
        options = options.with_roll_rows(r);
    }
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    let mut sink = FileSink::try_new(location.clone(), options).expect("sink");
    for b in batches {
        sink.write(0, b).await.expect("write");
    }
    let stats = sink.close().await.expect("close");
    let wall = t0.elapsed();
    let cpu = match (cpu0, process_cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // Check (not timed): every object reads back, row counts add up.
    let mut rows = 0;
    for f in &stats.files {
        let path = object_store::path::Path::from(f.path.as_str());
        let bytes = location
            .store()
            .get_opts(&path, Default::default())
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader");
        for b in reader {
            rows += b.expect("batch").num_rows();
        }
    }
    assert_eq!(rows, args.rows, "rows read back");
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        wall,
        cpu,
        files: stats.files.len(),
        out_bytes: stats.bytes,
    }
}

fn main() {
    let args = parse_args();
    let mut cfg = GenConfig::new(args.rows, 1000);
    cfg.rate = args.rate;
    let batches = generate(&cfg);
    let in_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "parquet sink: {} rows (ts TIMESTAMP(3), k BIGINT, v DOUBLE; {} batches of 8192; {} events/s of event time), {:.1} MB Arrow input, target {}, compression {:?}, partition {}, roll_rows {:?}",
        args.rows,
        batches.len(),
        args.rate,
        in_bytes as f64 / 1e6,
        args.target,
        args.compression,
        if args.partition { "dt_hour(ts)" } else { "none" },
        args.roll_rows
    );
    let mut runs: Vec<Run> = (0..args.runs)
        .map(|r| rt.block_on(one_run(&args, &batches, r)))
        .collect();
    runs.sort_by_key(|r| r.wall);
    let median = &runs[runs.len() / 2];
    let secs = median.wall.as_secs_f64();
    let cpu = median.cpu.map(|c| c.as_secs_f64()).unwrap_or(secs);
    println!(
        "median of {} runs: wall {:.3} s [min {:.3}, max {:.3}], cpu {:.3} s, {} files, {:.1} MB Parquet",
        runs.len(),
        secs,
        runs[0].wall.as_secs_f64(),
        runs[runs.len() - 1].wall.as_secs_f64(),
        cpu,
        median.files,
        median.out_bytes as f64 / 1e6
    );
    println!(
        "rows/s {:.2} M (per CPU second {:.2} M); input MB/s {:.1} (per CPU second {:.1}); output MB/s {:.1} (per CPU second {:.1})",
        args.rows as f64 / secs / 1e6,
        args.rows as f64 / cpu / 1e6,
        in_bytes as f64 / secs / 1e6,
        in_bytes as f64 / cpu / 1e6,
        median.out_bytes as f64 / secs / 1e6,
        median.out_bytes as f64 / cpu / 1e6
    );
}
