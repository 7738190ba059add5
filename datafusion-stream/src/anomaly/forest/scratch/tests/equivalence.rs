//! Equivalence of our forest with krcflib 4.0.2 on the same data (different random streams,
//! so statistical, not bitwise): mean scores within ~10%, both find the outliers, attributions
//! sum to the score, 0 while empty, a shingled pattern break scores highest.
//! Smaller than `src/main.rs`'s tables so it runs in seconds: `cargo test --release`.

use rcf_core_scratch::*;

const N: usize = 12_000;

fn compare(dims: usize) {
    let (mut normal, mut outlier) = (Vec::new(), Vec::new());
    for seed in [1u64, 2, 3] {
        let (pts, out) = noise_with_outliers(N, dims, 500, 100 + seed);
        let c = Config::kda(dims, seed);
        let so = summarize(&run(&mut ours(c), &pts), &out, 1000);
        let sk = summarize(&run(&mut krcf(c), &pts), &out, 1000);
        assert!(so.precision >= 0.9, "ours dims {dims} seed {seed}: {so:?}");
        assert!(
            sk.precision >= 0.9,
            "krcflib dims {dims} seed {seed}: {sk:?}"
        );
        normal.push(so.mean_normal / sk.mean_normal);
        outlier.push(so.mean_outlier / sk.mean_outlier);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (n, o) = (mean(&normal), mean(&outlier));
    assert!(
        (n - 1.0).abs() <= 0.10,
        "dims {dims}: normal ratio {n} ({normal:?})"
    );
    assert!(
        (o - 1.0).abs() <= 0.10,
        "dims {dims}: outlier ratio {o} ({outlier:?})"
    );
}

#[test]
fn scores_match_krcflib_1d() {
    compare(1);
}

#[test]
fn scores_match_krcflib_4d() {
    compare(4);
}

#[test]
fn pattern_break_scores_highest_in_both() {
    let c = Config {
        shingle_size: 4,
        ..Config::kda(1, 7)
    };
    let (bo, _) = pattern_break(&mut ours(c), 3000, 2200, 600);
    let (bk, _) = pattern_break(&mut krcf(c), 3000, 2200, 600);
    // The reversed period is 2200..2220; the shingle sees it until 2223.
    assert!((2200..2224).contains(&bo), "ours peaks at {bo}");
    assert!((2200..2224).contains(&bk), "krcflib peaks at {bk}");
}

#[test]
fn attributions_sum_to_score_and_empty_scores_zero() {
    let c = Config::kda(4, 9);
    let e = ours(c);
    assert_eq!(e.score(&[0.5; 4]), 0.0);
    assert_eq!(krcf(c).score(&[0.5; 4]), 0.0);
    let (pts, _) = noise_with_outliers(3000, 4, 500, 9);
    let mut o = ours(c);
    run(&mut o, &pts);
    let (mut probes, _) = noise_with_outliers(100, 4, 7, 10);
    probes.extend(pts[2990..].iter().cloned()); // duplicates: the shadow-box path
    assert!(attribution_error(&o, &probes) <= 1e-9);
}
