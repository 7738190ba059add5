//! Scratch crate: the forest module (included by relative path: `scratch/src` → `forest/`)
//! plus the krcflib comparison harness used by `src/main.rs` (speed and equivalence tables)
//! and `tests/equivalence.rs` (assertions).

#[path = "../../mod.rs"]
pub mod forest;

use forest::{Forest, ForestParams};
use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFMedium, RCFOptionsBuilder};

/// Configuration shared by both implementations (KDA's names).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub dimensions: usize,
    pub shingle_size: usize,
    pub trees: usize,
    pub sample_size: usize,
    pub time_decay: u64,
    pub seed: u64,
}

impl Config {
    pub fn kda(dimensions: usize, seed: u64) -> Self {
        Self {
            dimensions,
            shingle_size: 1,
            trees: 100,
            sample_size: 256,
            time_decay: 100_000,
            seed,
        }
    }
}

/// What the comparison needs from a forest.
pub trait Model {
    fn score(&self, p: &[f32]) -> f64;
    fn update(&mut self, p: &[f32]);
    /// (high, low) per shingled dimension.
    fn attribution(&self, p: &[f32]) -> (Vec<f64>, Vec<f64>);
}

pub struct Ours(pub Forest);
pub struct Krcf(pub RCFMedium<u64, u64>);

pub fn ours(c: Config) -> Ours {
    Ours(
        Forest::try_new(ForestParams {
            dimensions: c.dimensions,
            shingle_size: c.shingle_size,
            number_of_trees: c.trees,
            sample_size: c.sample_size,
            time_decay: 1.0 / c.time_decay as f64,
            seed: c.seed,
        })
        .expect("valid parameters"),
    )
}

/// krcflib built exactly as `RcfModel::try_new` in `datafusion-stream/src/anomaly/rcf.rs`.
pub fn krcf(c: Config) -> Krcf {
    let mut b = RCFBuilder::new(c.dimensions, c.shingle_size);
    b.tree_capacity(c.sample_size)
        .number_of_trees(c.trees)
        .time_decay(1.0 / c.time_decay as f64)
        .random_seed(c.seed)
        .internal_shingling(true)
        .parallel_enabled(false)
        .output_after(0)
        .initial_accept_fraction(1.0);
    Krcf(b.build_medium_simple::<u64>().expect("valid parameters"))
}

impl Model for Ours {
    fn score(&self, p: &[f32]) -> f64 {
        self.0.score(p).expect("score")
    }
    fn update(&mut self, p: &[f32]) {
        self.0.update(p).expect("update")
    }
    fn attribution(&self, p: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let a = self.0.attribution(p).expect("attribution");
        (a.high, a.low)
    }
}

impl Model for Krcf {
    fn score(&self, p: &[f32]) -> f64 {
        self.0.score(p).expect("score")
    }
    fn update(&mut self, p: &[f32]) {
        self.0.update(p, 0).expect("update")
    }
    fn attribution(&self, p: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let a = self.0.attribution(p).expect("attribution");
        (a.high, a.low)
    }
}

/// Deterministic data generator (no rand crate).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1))
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Uniform noise in [0, 1)^dims; every `every`-th record (from `every - 1`) is an outlier:
/// one dimension set 1.5..2.5 above or 1.5..2.5 below the data. Returns (points, is_outlier).
pub fn noise_with_outliers(
    n: usize,
    dims: usize,
    every: usize,
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<bool>) {
    let mut rng = Lcg::new(seed);
    let mut pts = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut p: Vec<f32> = (0..dims).map(|_| rng.next_f64() as f32).collect();
        let o = i % every == every - 1;
        if o {
            let k = (i / every) % dims;
            let off = 1.5 + rng.next_f64();
            p[k] = if (i / every).is_multiple_of(2) {
                1.0 + off as f32
            } else {
                -(off as f32)
            };
        }
        pts.push(p);
        out.push(o);
    }
    (pts, out)
}

/// Score-then-update over `pts`; returns the scores.
pub fn run<M: Model>(m: &mut M, pts: &[Vec<f32>]) -> Vec<f64> {
    pts.iter()
        .map(|p| {
            let s = m.score(p);
            m.update(p);
            s
        })
        .collect()
}

/// Summary of a scored run: mean normal score, mean outlier score, top-k precision.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub mean_normal: f64,
    pub mean_outlier: f64,
    pub precision: f64,
    pub outliers: usize,
}

/// Scores from index `from` on (after warm-up); k = number of outliers there.
pub fn summarize(scores: &[f64], outlier: &[bool], from: usize) -> Summary {
    let (mut sn, mut nn, mut so, mut no) = (0.0, 0usize, 0.0, 0usize);
    let mut ranked: Vec<(f64, bool)> = Vec::new();
    for i in from..scores.len() {
        if outlier[i] {
            so += scores[i];
            no += 1;
        } else {
            sn += scores[i];
            nn += 1;
        }
        ranked.push((scores[i], outlier[i]));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hits = ranked[..no].iter().filter(|r| r.1).count();
    Summary {
        mean_normal: sn / nn as f64,
        mean_outlier: so / no.max(1) as f64,
        precision: hits as f64 / no.max(1) as f64,
        outliers: no,
    }
}

/// A sine wave of period 20 with one period (from `brk`) run backwards; returns the index of
/// the highest score after warm-up (`warm`).
pub fn pattern_break<M: Model>(m: &mut M, n: usize, brk: usize, warm: usize) -> (usize, f64) {
    let period = 20usize;
    let mut best = (0usize, f64::MIN);
    for i in 0..n {
        let phase = (i % period) as f64 / period as f64 * std::f64::consts::TAU;
        let v = if (brk..brk + period).contains(&i) {
            -phase.sin()
        } else {
            phase.sin()
        } as f32;
        let s = m.score(&[v]);
        if i >= warm && s > best.1 {
            best = (i, s);
        }
        m.update(&[v]);
    }
    best
}

/// Largest relative |Σ attribution − score| over the probes (after feeding `pts`).
pub fn attribution_error<M: Model>(m: &M, probes: &[Vec<f32>]) -> f64 {
    probes
        .iter()
        .map(|p| {
            let s = m.score(p);
            let (h, l) = m.attribution(p);
            let t: f64 = h.iter().sum::<f64>() + l.iter().sum::<f64>();
            (t - s).abs() / s.abs().max(1e-300)
        })
        .fold(0.0, f64::max)
}
