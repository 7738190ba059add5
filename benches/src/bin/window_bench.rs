//! TUMBLE window aggregate: datafusion-stream vs DataFusion batch, side by side.
//!
//! ```text
//! cargo run --release -p datafusion-stream-benches --bin window_bench -- \
//!     [--events N] [--keys K[,K...]] [--runs R] [--rate EVENTS_PER_S] [--quick]
//!     [--engine both|stream|batch] [--explain]
//! ```
//!
//! Defaults: 10,000,000 events at 20,000 events per second of event time (9 one-minute
//! windows), K = 1,000 and 100,000, 5 runs per engine (interleaved; the median is reported).
//! `--quick`: 1,000,000 events at 2,000 events/s (the same 9 windows), 1 run. `--engine` runs
//! one engine only (for profiling); `--explain` prints both physical plans first.
//!
//! Both engines run on one thread (a current-thread tokio runtime; one input partition;
//! `target_partitions = 1`). See `benches/README.md` for the figures and how to read them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion_stream_benches::alloc::{self, CountingAlloc};
use datafusion_stream_benches::gen::{generate, GenConfig};
use datafusion_stream_benches::{
    explain, run_batch, run_streaming, window_profile, RunStats, Summary, WATERMARK_DELAY_MS,
    WINDOW_MS,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Args {
    events: usize,
    keys: Vec<u64>,
    runs: usize,
    rate: u64,
    stream: bool,
    batch: bool,
    explain: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: window_bench [--events N] [--keys K[,K...]] [--runs R] [--rate EVENTS_PER_S] [--quick]\n\
         \x20                   [--engine both|stream|batch] [--explain]\n\
         defaults: --events 10000000 --keys 1000,100000 --runs 5 --rate 20000\n\
         --quick = --events 1000000 --runs 1 --rate 2000 (same 9 windows, 10x fewer events each)"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 10_000_000,
        keys: vec![1_000, 100_000],
        runs: 5,
        rate: 20_000,
        stream: true,
        batch: true,
        explain: false,
    };
    let mut events = None;
    let mut runs = None;
    let mut rate = None;
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>| -> u64 {
        v.and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or_else(|| usage())
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => events = Some(num(it.next()) as usize),
            "--runs" => runs = Some(num(it.next()) as usize),
            "--rate" => rate = Some(num(it.next())),
            "--engine" => match it.next().as_deref() {
                Some("both") => (args.stream, args.batch) = (true, true),
                Some("stream") => (args.stream, args.batch) = (true, false),
                Some("batch") => (args.stream, args.batch) = (false, true),
                _ => usage(),
            },
            "--keys" => {
                let v = it.next().unwrap_or_else(|| usage());
                args.keys = v
                    .split(',')
                    .map(|k| num(Some(k.trim().to_string())))
                    .collect();
            }
            "--explain" => args.explain = true,
            "--quick" => {
                args.events = 1_000_000;
                args.runs = 1;
                args.rate = 2_000;
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument '{other}'");
                usage()
            }
        }
    }
    if let Some(e) = events {
        args.events = e;
    }
    if let Some(r) = runs {
        args.runs = r;
    }
    if let Some(r) = rate {
        args.rate = r;
    }
    if args.events == 0 || args.runs == 0 || args.rate == 0 || args.keys.contains(&0) {
        usage()
    }
    args
}

/// The run with the median wall time (with the largest peak of all runs), and the
/// fastest and slowest wall times.
fn representative(mut runs: Vec<RunStats>) -> (RunStats, Duration, Duration) {
    runs.sort_by_key(|r| r.wall);
    let peak = runs.iter().map(|r| r.peak_bytes).max().unwrap_or(0);
    let (lo, hi) = (runs[0].wall, runs[runs.len() - 1].wall);
    let mut m = runs.swap_remove(runs.len() / 2);
    m.peak_bytes = peak;
    (m, lo, hi)
}

struct Row {
    engine: &'static str,
    keys: u64,
    stats: RunStats,
    range: (Duration, Duration),
    slots: usize,
    slots_note: String,
}

const STREAM: &str = "datafusion-stream";
const BATCH: &str = "DataFusion batch";

fn mb(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn rate(events: usize, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64()
}

fn fmt_rate(r: f64) -> String {
    format!("{:.2} M", r / 1e6)
}

fn check(keys: u64, s: &Summary, b: &Summary, events: usize) -> bool {
    let ok = s.matches(b) && s.total_count == events as i64;
    println!(
        "K={keys}: groups stream={} batch={}; total COUNT stream={} batch={} (events {events}); \
         total SUM stream={:.6} batch={:.6}; per-group checksum stream={:016x} batch={:016x} => {}",
        s.groups,
        b.groups,
        s.total_count,
        b.total_count,
        s.total_sum,
        b.total_sum,
        s.checksum,
        b.checksum,
        if ok { "MATCH" } else { "MISMATCH" }
    );
    ok
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "window_bench: {} events at {} events/s of event time, keys {:?}, {} run(s) per engine; \
         one thread (current-thread tokio runtime)",
        args.events, args.rate, args.keys, args.runs
    );
    let mut rows = Vec::new();
    let mut all_ok = true;
    for &keys in &args.keys {
        let cfg = GenConfig {
            rate: args.rate,
            ..GenConfig::new(args.events, keys)
        };
        let t = Instant::now();
        let batches = Arc::new(generate(&cfg));
        let profile = window_profile(&batches, WINDOW_MS, WATERMARK_DELAY_MS);
        println!(
            "K={keys}: generated {} batches in {:.2?} ({:.0} MB live); {} windows, at most {} open; \
             {} rows out of order ({:.1}%), {} late",
            batches.len(),
            t.elapsed(),
            mb(alloc::current()),
            profile.windows,
            profile.max_open,
            profile.out_of_order_rows,
            100.0 * profile.out_of_order_rows as f64 / args.events as f64,
            profile.late_rows
        );
        if args.explain {
            let (s, b) = rt
                .block_on(explain(&batches))
                .unwrap_or_else(|e| panic!("explain failed: {e}"));
            println!("streaming plan:\n{s}batch plan:\n{b}");
        }
        let (mut s_runs, mut b_runs) = (Vec::new(), Vec::new());
        for r in 0..args.runs {
            // Alternate which engine goes first, so drift on a shared machine hits both.
            let order = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for streaming in order {
                if !(if streaming { args.stream } else { args.batch }) {
                    continue;
                }
                let stats = if streaming {
                    rt.block_on(run_streaming(&batches))
                } else {
                    rt.block_on(run_batch(&batches))
                }
                .unwrap_or_else(|e| panic!("run failed: {e}"));
                println!(
                    "  run {} {:<17} wall {:>8.3?}  cpu {:>8.3?}  agg operator {:>8.3?}  peak {:>6.1} MB  groups {}",
                    r + 1,
                    if streaming { STREAM } else { BATCH },
                    stats.wall,
                    stats.cpu.unwrap_or_default(),
                    stats.agg_compute.unwrap_or_default(),
                    mb(stats.peak_bytes),
                    stats.summary.groups
                );
                if streaming {
                    s_runs.push(stats)
                } else {
                    b_runs.push(stats)
                }
            }
        }
        let s = (!s_runs.is_empty()).then(|| representative(s_runs));
        let b = (!b_runs.is_empty()).then(|| representative(b_runs));
        if let (Some((s, ..)), Some((b, ..))) = (&s, &b) {
            all_ok &= check(keys, &s.summary, &b.summary, args.events);
        }
        if let Some((s, lo, hi)) = s {
            if s.late_rows != 0 {
                println!("K={keys}: streaming dropped {} late rows", s.late_rows);
                all_ok = false;
            }
            rows.push(Row {
                engine: STREAM,
                keys,
                slots: profile.max_open * keys as usize,
                slots_note: format!("{} open win × {keys}", profile.max_open),
                stats: s,
                range: (lo, hi),
            });
        }
        if let Some((b, lo, hi)) = b {
            let groups = b.summary.groups;
            rows.push(Row {
                engine: BATCH,
                keys,
                slots: groups,
                slots_note: format!("{groups} groups"),
                stats: b,
                range: (lo, hi),
            });
        }
        drop(batches);
    }

    println!();
    println!(
        "| engine | K | events | groups (output rows) | wall s, median [min–max] | events/s | events/s per core (CPU time) | stream / batch | peak MB above baseline | state slots | peak bytes / slot |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for r in &rows {
        let s = &r.stats;
        let per_core = s
            .cpu
            .filter(|c| !c.is_zero())
            .map(|c| fmt_rate(rate(args.events, c)))
            .unwrap_or_else(|| "n/a".into());
        let batch_wall = rows
            .iter()
            .find(|b| b.engine == BATCH && b.keys == r.keys)
            .map(|b| b.stats.wall);
        let ratio = match batch_wall {
            Some(w) => format!("{:.2}×", w.as_secs_f64() / s.wall.as_secs_f64()),
            None => "n/a".into(),
        };
        println!(
            "| {} | {} | {} | {} | {:.3} [{:.3}–{:.3}] | {} | {} | {} | {:.1} | {} | {:.0} |",
            r.engine,
            r.keys,
            args.events,
            s.summary.groups,
            s.wall.as_secs_f64(),
            r.range.0.as_secs_f64(),
            r.range.1.as_secs_f64(),
            fmt_rate(rate(args.events, s.wall)),
            per_core,
            ratio,
            mb(s.peak_bytes),
            r.slots_note,
            s.peak_bytes as f64 / r.slots.max(1) as f64
        );
    }
    println!();
    println!(
        "Medians over {} run(s) per engine; events/s from the median wall time, per core from its \
         CPU time; peak = largest over the runs. \
         stream / batch = batch wall time ÷ streaming wall time (throughput ratio; target ≥ 0.5×). \
         State slots: streaming = most windows open at once × K (what its state is bounded by); \
         batch = all groups (its hash table holds every window).",
        args.runs
    );
    if !all_ok {
        eprintln!("results differ between the engines");
        std::process::exit(1);
    }
}
