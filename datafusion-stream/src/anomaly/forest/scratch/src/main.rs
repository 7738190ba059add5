//! `cargo run --release -- [speed [RECORDS]] [equiv]`: the speed table (ours vs krcflib, one
//! thread, score-then-update per record) and the equivalence table (several seeds);
//! `cargo run --release -- batch [RECORDS [CHUNK]]`: per-record path vs `score_then_update`.

use rcf_core_scratch::*;
use std::time::{Duration, Instant};

/// (score time, update time, total) for one score-then-update pass.
fn timed<M: Model>(m: &mut M, pts: &[Vec<f32>]) -> (Duration, Duration, Duration, f64) {
    let (mut ts, mut tu) = (Duration::ZERO, Duration::ZERO);
    let mut checksum = 0.0;
    let start = Instant::now();
    for p in pts {
        let a = Instant::now();
        checksum += m.score(p);
        let b = Instant::now();
        m.update(p);
        tu += b.elapsed();
        ts += b - a;
    }
    (ts, tu, start.elapsed(), checksum)
}

fn speed(records: usize) {
    println!("Speed: {records} records, uniform noise in [0,1)^d, outlier every 1000, 100 trees x 256 samples, timeDecay 100000, seed 1, one thread");
    println!(
        "| dims | impl    | score µs/rec | update µs/rec | total µs/rec | records/s | speed-up |"
    );
    println!(
        "|------|---------|--------------|---------------|--------------|-----------|----------|"
    );
    // RCF_DIMS=1,4 restricts the table to those dimensions.
    let dims_list: Vec<usize> = match std::env::var("RCF_DIMS") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1, 4, 30],
    };
    for dims in dims_list {
        let (pts, _) = noise_with_outliers(records, dims, 1000, 1);
        let c = Config::kda(dims, 1);
        let mut o = ours(c);
        let ro = timed(&mut o, &pts);
        let mut k = krcf(c);
        let rk = if std::env::var_os("RCF_ONLY_OURS").is_some() {
            (
                Duration::from_secs(1),
                Duration::ZERO,
                Duration::from_secs(1),
                0.0,
            )
        } else {
            timed(&mut k, &pts)
        };
        let us = |d: Duration| d.as_secs_f64() * 1e6 / records as f64;
        let rate = |d: Duration| records as f64 / d.as_secs_f64();
        for (name, r) in [("ours", ro), ("krcflib", rk)] {
            println!(
                "| {dims:>4} | {name:<7} | {:>12.2} | {:>13.2} | {:>12.2} | {:>9.0} | {:>8} |",
                us(r.0),
                us(r.1),
                us(r.2),
                rate(r.2),
                if name == "ours" {
                    format!("{:.1}x", rk.2.as_secs_f64() / ro.2.as_secs_f64())
                } else {
                    String::new()
                }
            );
        }
        eprintln!(
            "  (checksums {:.3} [bits {:016x}] / {:.3}; ours state {} bytes, krcflib {} bytes)",
            ro.3,
            ro.3.to_bits(),
            rk.3,
            o.0.size(),
            {
                use rcflib::rcf::AugmentedRCF;
                k.0.size()
            }
        );
    }
}

fn equiv() {
    let n = 30_000;
    let seeds = [1u64, 2, 3, 4, 5];
    println!("\nEquivalence: {n} records per run, 100 trees x 256, timeDecay 100000, outlier every 500; statistics over records >= 1000");
    println!("| dims | seed | mean normal ours / krcf (ratio) | mean outlier ours / krcf (ratio) | top-k precision ours / krcf (k) |");
    println!("|------|------|---------------------------------|----------------------------------|---------------------------------|");
    for dims in [1usize, 4] {
        let (mut rn, mut ro) = (Vec::new(), Vec::new());
        for &seed in &seeds {
            let (pts, out) = noise_with_outliers(n, dims, 500, 100 + seed);
            let c = Config::kda(dims, seed);
            let so = summarize(&run(&mut ours(c), &pts), &out, 1000);
            let sk = summarize(&run(&mut krcf(c), &pts), &out, 1000);
            rn.push(so.mean_normal / sk.mean_normal);
            ro.push(so.mean_outlier / sk.mean_outlier);
            println!(
                "| {dims:>4} | {seed:>4} | {:.4} / {:.4} ({:.3}) | {:.4} / {:.4} ({:.3}) | {:.2} / {:.2} ({}) |",
                so.mean_normal, sk.mean_normal, so.mean_normal / sk.mean_normal,
                so.mean_outlier, sk.mean_outlier, so.mean_outlier / sk.mean_outlier,
                so.precision, sk.precision, so.outliers
            );
        }
        let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "| {dims:>4} | mean ratio | normal {:.3} | outlier {:.3} | |",
            mean(&rn),
            mean(&ro)
        );
    }

    println!(
        "\nShingle 4, sine period 20, one period reversed at 3000 (4000 records, 100 trees x 256):"
    );
    for seed in [1u64, 2, 3] {
        let c = Config {
            shingle_size: 4,
            ..Config::kda(1, seed)
        };
        let bo = pattern_break(&mut ours(c), 4000, 3000, 1000);
        let bk = pattern_break(&mut krcf(c), 4000, 3000, 1000);
        println!(
            "  seed {seed}: highest score ours at {} ({:.3}), krcflib at {} ({:.3})",
            bo.0, bo.1, bk.0, bk.1
        );
    }

    println!(
        "\nAttribution Σ vs score (max relative error over 200 probes after 5000 records, 4 dims):"
    );
    let (pts, _) = noise_with_outliers(5000, 4, 500, 9);
    let (probes, _) = noise_with_outliers(200, 4, 7, 10);
    let c = Config::kda(4, 9);
    let mut o = ours(c);
    run(&mut o, &pts);
    let mut k = krcf(c);
    run(&mut k, &pts);
    // Include exact duplicates of stored points (shadow-box path).
    let mut probes = probes;
    probes.extend(pts[4990..].iter().cloned());
    println!(
        "  ours {:.2e}, krcflib {:.2e}",
        attribution_error(&o, &probes),
        attribution_error(&k, &probes)
    );
    let e = ours(c);
    let ek = krcf(c);
    println!(
        "  empty forest: score ours {} krcflib {}",
        e.score(&[0.5; 4]),
        ek.score(&[0.5; 4])
    );
}

/// Per-record path (`score` then `update`) vs `score_then_update` in chunks of `batch`
/// records: µs/record of each and whether the scores are identical bit for bit (RCF_DIMS,
/// default 1,4,30; RCF_SHINGLE, default 1; BATCH_ONLY=1 skips the per-record path; EXPLAIN=1
/// compares `attribution` + `update` with `attribution_then_update` instead, every part's bits).
fn batch(records: usize, batch: usize) {
    let dims_list: Vec<usize> = match std::env::var("RCF_DIMS") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1, 4, 30],
    };
    let shingle: usize = std::env::var("RCF_SHINGLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let batch_only = std::env::var_os("BATCH_ONLY").is_some();
    let explain = std::env::var_os("EXPLAIN").is_some();
    if explain {
        println!("Attributions (EXPLAIN=1): attribution + update per record vs attribution_then_update");
    }
    println!("Batch: {records} records, chunks of {batch}, shingle {shingle}, 100 trees x 256, one thread");
    println!("| dims | per-record µs/rec | batch µs/rec | speed-up | identical |");
    println!("|------|-------------------|--------------|----------|-----------|");
    for dims in dims_list {
        let (pts, _) = noise_with_outliers(records, dims, 1000, 1);
        let c = Config {
            shingle_size: shingle,
            ..Config::kda(dims, 1)
        };
        let mut one = ours(c);
        let start = Instant::now();
        let expected: Vec<f64> = if batch_only {
            Vec::new()
        } else if explain {
            pts.iter()
                .flat_map(|p| {
                    let a = one.0.attribution(p).expect("attribution");
                    one.0.update(p).expect("update");
                    a.high.into_iter().chain(a.low)
                })
                .collect()
        } else {
            run(&mut one, &pts)
        };
        let t1 = start.elapsed();
        let mut many = ours(c);
        let flat: Vec<f32> = pts.iter().flatten().copied().collect();
        let start = Instant::now();
        let mut got = Vec::with_capacity(records);
        for chunk in flat.chunks(batch * dims) {
            if explain {
                let parts = many.0.attribution_then_update(chunk).expect("batch");
                got.extend(parts.into_iter().flat_map(|a| a.high.into_iter().chain(a.low)));
            } else {
                got.extend(many.0.score_then_update(chunk).expect("batch"));
            }
        }
        let t2 = start.elapsed();
        many.0.check().expect("consistent state");
        let identical = if batch_only {
            "-".to_string()
        } else {
            let probe = vec![0.25f32; dims];
            let same = expected.len() == got.len()
                && expected
                    .iter()
                    .zip(&got)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
                && one.score(&probe).to_bits() == many.score(&probe).to_bits();
            same.to_string()
        };
        let us = |d: Duration| d.as_secs_f64() * 1e6 / records as f64;
        println!(
            "| {dims:>4} | {:>17.2} | {:>12.2} | {:>7.2}x | {identical:>9} |",
            us(t1),
            us(t2),
            t1.as_secs_f64() / t2.as_secs_f64()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.is_empty();
    if all || args.iter().any(|a| a == "speed") {
        let records = args
            .iter()
            .skip_while(|a| *a != "speed")
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(200_000);
        speed(records);
    }
    if let Some(i) = args.iter().position(|a| a == "batch") {
        let records = args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(100_000);
        let size = args.get(i + 2).and_then(|a| a.parse().ok()).unwrap_or(1024);
        batch(records, size);
        return;
    }
    if all || args.iter().any(|a| a == "equiv") {
        equiv();
    }
}
