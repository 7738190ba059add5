//! The Random Cut Forest model behind `RANDOM_CUT_FOREST` and
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION` (KDA, `SPEC.md` §1.10).
//!
//! ```text
//!  point (f64 per numeric column) ──► finite? ──► f32 ──► records_seen < sub_sample_size ?
//!                                                          │ yes: score 0 (learning)
//!                                                          │ no : forest.score / attribution
//!                                                          ▼
//!                                                   forest.update(point)   (always)
//!  a batch of rows: score_and_update_all ──► forest.score_then_update (same scores, tree
//!                   by tree) ──► the rows still in the learning phase get 0
//!                   explain_and_update_all ──► forest.attribution_then_update (likewise)
//!  state: RcfModel { params, dimensions, records_seen,
//!                    forest: forest::Forest (trees = reservoir samples + cut trees,
//!                            shared point store, internal shingle buffer) }   ── serde
//! ```
//!
//! **Why our own forest.** The model is [`super::forest`], our implementation of AWS's Random
//! Cut Forest (the algorithm of `random-cut-forest-by-aws`, which KDA's functions were built
//! on). We first used `krcflib` 4.0.2, the Rust port of that library, but measured (release, one
//! core, 100 trees × 256 samples, `benches/README.md`) only 8–13K records/s for 1–4 columns
//! against the 100K records/s a stream must be scored at: krcflib reseeds a ChaCha20 generator
//! for every tree on every update and takes two logarithms per tree although nearly every
//! point is rejected once the samples are full, and its traversal goes through generic
//! point-store and visitor indirections. Our forest keeps the same semantics (reservoir
//! weights, cut distribution, score and attribution functions, internal shingling; see its
//! module docs for the deliberate differences, all of which keep the distribution) with a flat
//! arena per tree, cached bounding boxes, one SplitMix64 per tree and a precomputed rejection
//! threshold. `krcflib` stays a dev-dependency: a test checks that both give statistically
//! equivalent scores on the same data. `rcf3` 0.5.2 was not an option either: a separate
//! algorithm line with more dependencies.
//!
//! **KDA rules kept here.** The score is 0 for the first `sub_sample_size` records (the model
//! still learns from them); then each record is scored against the model *before* it is added
//! (score-then-update, so a point does not explain itself). Points are converted to `f32`
//! (the forest's storage type). A NaN or infinite value is an error (the operator decides what to
//! do with the row).
//!
//! **Explanation.** Per numeric column `j`, with `high_j`/`low_j` the attribution summed over
//! the shingle positions of column `j`: `ATTRIBUTION_SCORE = high_j + low_j` (these sum to the
//! score), `DIRECTION = HIGH` if `high_j > low_j` else `LOW`, `STRENGTH = |high_j - low_j|`
//! (how much of the column's attribution points one way; KDA does not define STRENGTH, so this
//! is our definition, ≥ 0 and ≤ the attribution). During learning all are 0 and DIRECTION is
//! LOW, as KDA documents.
//!
//! **Determinism.** `seed` (default 0) seeds every tree; the same seed and the same input give
//! the same scores, and a model serialised and restored continues with identical scores.

use super::forest::{DiVector, Forest, ForestParams};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use serde::{Deserialize, Serialize};

/// The largest number of numeric columns a model takes (KDA's limit).
pub const MAX_DIMENSIONS: usize = 30;

/// Parameters of a Random Cut Forest, with KDA's names, defaults and ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct RcfParams {
    /// `numberOfTrees`: 1..=1000, default 100.
    pub number_of_trees: usize,
    /// `subSampleSize`: points kept per tree, 10..=1000 and < `time_decay`, default 256. The
    /// first `sub_sample_size` records score 0.
    pub sub_sample_size: usize,
    /// `timeDecay`: 1..=2^31-1, default 100000; the forest's decay rate is `1 / time_decay`
    /// (how many recent records the sample mostly reflects).
    pub time_decay: u64,
    /// `shingleSize`: 1..=30, default 1: the model sees the last `shingle_size` records of
    /// each column as one point.
    pub shingle_size: usize,
    /// `withDirectionality` (`_WITH_EXPLANATION` only): add DIRECTION and STRENGTH.
    pub with_directionality: bool,
    /// Seed of the trees' random cuts (not a KDA parameter; default 0).
    pub seed: u64,
}

impl Default for RcfParams {
    fn default() -> Self {
        Self {
            number_of_trees: 100,
            sub_sample_size: 256,
            time_decay: 100_000,
            shingle_size: 1,
            with_directionality: false,
            seed: 0,
        }
    }
}

impl RcfParams {
    /// Checks every parameter against KDA's documented range; `function` names the SQL
    /// function in the error.
    pub fn validate(&self, function: &str) -> Result<()> {
        let check = |name: &str, value: u64, lo: u64, hi: u64| -> Result<()> {
            if value < lo || value > hi {
                return plan_err!("{function}: {name} must be in [{lo}, {hi}], got {value}");
            }
            Ok(())
        };
        check("numberOfTrees", self.number_of_trees as u64, 1, 1000)?;
        check("subSampleSize", self.sub_sample_size as u64, 10, 1000)?;
        check("timeDecay", self.time_decay, 1, i32::MAX as u64)?;
        check("shingleSize", self.shingle_size as u64, 1, 30)?;
        if self.sub_sample_size as u64 >= self.time_decay {
            return plan_err!(
                "{function}: subSampleSize must be less than timeDecay, got subSampleSize {} and timeDecay {}",
                self.sub_sample_size,
                self.time_decay
            );
        }
        Ok(())
    }
}

/// Which way a column's value is unusual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Lower than the model expects (also the default during learning).
    Low,
    /// Higher than the model expects.
    High,
}

impl Direction {
    /// `"LOW"` or `"HIGH"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Low => "LOW",
            Direction::High => "HIGH",
        }
    }
}

/// One column's part of an anomaly score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribution {
    /// Whether the value is unusually high or low.
    pub direction: Direction,
    /// `|high - low|`: how much of the attribution points in `direction`.
    pub strength: f64,
    /// `high + low`: the column's share of the score (the shares sum to the score).
    pub attribution: f64,
}

impl Attribution {
    /// The attribution of a column while the model is learning.
    pub const LEARNING: Attribution = Attribution {
        direction: Direction::Low,
        strength: 0.0,
        attribution: 0.0,
    };
}

/// A streaming Random Cut Forest over points of `dimensions` numeric values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RcfModel {
    params: RcfParams,
    dimensions: usize,
    records_seen: u64,
    forest: Forest,
    #[serde(skip)]
    scratch: Vec<f32>,
}

fn model_err(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("random cut forest: {what}: {e}"))
}

/// Converts points of `dims` values (row-major) to the forest's `f32` into `out` (cleared
/// first); a length that is not a whole number of points, or a value that is not finite as a
/// 32-bit float (NaN, ±inf, or beyond ±3.4e38), is an error naming it.
fn to_f32(points: &[f64], dims: usize, out: &mut Vec<f32>) -> Result<()> {
    if !points.len().is_multiple_of(dims) {
        return exec_err!(
            "random cut forest: expected points of {dims} values, got {} values in all",
            points.len()
        );
    }
    out.clear();
    for (i, v) in points.iter().enumerate() {
        let x = *v as f32;
        if !x.is_finite() {
            return exec_err!(
                "random cut forest: value {} of point {} is {v:?}; only finite numbers within \
                 the range of a 32-bit float can be scored",
                i % dims + 1,
                i / dims + 1
            );
        }
        out.push(x);
    }
    Ok(())
}

impl RcfModel {
    /// A new, empty model (validates `params` and `dimensions`, 1..=30).
    pub fn try_new(params: RcfParams, dimensions: usize) -> Result<Self> {
        params.validate("RANDOM_CUT_FOREST")?;
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return plan_err!(
                "RANDOM_CUT_FOREST: the input must have 1 to {MAX_DIMENSIONS} numeric columns, got {dimensions}"
            );
        }
        let forest = Forest::try_new(ForestParams {
            dimensions,
            shingle_size: params.shingle_size,
            number_of_trees: params.number_of_trees,
            sample_size: params.sub_sample_size,
            time_decay: 1.0 / params.time_decay as f64,
            seed: params.seed,
        })
        .map_err(|e| model_err("creating the forest", e))?;
        Ok(Self {
            params,
            dimensions,
            records_seen: 0,
            forest,
            scratch: Vec::with_capacity(dimensions),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &RcfParams {
        &self.params
    }

    /// Number of values per point.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Records seen so far.
    pub fn records_seen(&self) -> u64 {
        self.records_seen
    }

    /// Approximate bytes of model state.
    pub fn size(&self) -> usize {
        self.forest.size()
    }

    fn load(&mut self, point: &[f64]) -> Result<()> {
        if point.len() != self.dimensions {
            return exec_err!(
                "random cut forest: expected a point of {} values, got {}",
                self.dimensions,
                point.len()
            );
        }
        to_f32(point, self.dimensions, &mut self.scratch)
    }

    /// Counts `n` more records seen; returns how many of them (the first ones) fall in the
    /// learning phase, where KDA scores 0: the first `sub_sample_size` records.
    fn count_records(&mut self, n: usize) -> usize {
        let learning = (self.params.sub_sample_size as u64).saturating_sub(self.records_seen);
        self.records_seen += n as u64;
        learning.min(n as u64) as usize
    }

    fn learning(&self) -> bool {
        self.records_seen < self.params.sub_sample_size as u64 || self.forest.entries_seen() == 0
    }

    fn update(&mut self) -> Result<()> {
        self.forest
            .update(&self.scratch)
            .map_err(|e| model_err("update", e))?;
        self.records_seen += 1;
        Ok(())
    }

    /// Scores `point` against the model, then adds it. 0 while learning.
    pub fn score_and_update(&mut self, point: &[f64]) -> Result<f64> {
        self.load(point)?;
        let score = if self.learning() {
            0.0
        } else {
            self.forest
                .score(&self.scratch)
                .map_err(|e| model_err("score", e))?
        };
        self.update()?;
        Ok(score)
    }

    /// Scores each point of `points` (`dimensions` values per point, in arrival order)
    /// against the model as it stands just before that point, then adds it: the same scores
    /// and state as [`Self::score_and_update`] per point (bit for bit), computed tree by tree
    /// by [`Forest::score_then_update`], which is faster. A point with a non-finite value
    /// rejects the whole call and changes nothing.
    pub fn score_and_update_all(&mut self, points: &[f64]) -> Result<Vec<f64>> {
        let mut values = Vec::with_capacity(points.len());
        to_f32(points, self.dimensions, &mut values)?;
        let mut scores = self
            .forest
            .score_then_update(&values)
            .map_err(|e| model_err("score", e))?;
        let learning = self.count_records(scores.len());
        scores[..learning].iter_mut().for_each(|s| *s = 0.0);
        Ok(scores)
    }

    /// Scores `point` with one [`Attribution`] per value, then adds it. The score is the sum
    /// of the attributions.
    pub fn explain_and_update(&mut self, point: &[f64]) -> Result<(f64, Vec<Attribution>)> {
        self.load(point)?;
        let out = if self.learning() {
            (0.0, vec![Attribution::LEARNING; self.dimensions])
        } else {
            let dv = self
                .forest
                .attribution(&self.scratch)
                .map_err(|e| model_err("attribution", e))?;
            per_column(&dv, self.dimensions)
        };
        self.update()?;
        Ok(out)
    }

    /// [`Self::explain_and_update`] for each point of `points` (`dimensions` values per
    /// point, in arrival order), computed tree by tree by [`Forest::attribution_then_update`]:
    /// the same results and state, bit for bit. A point with a non-finite value rejects the
    /// whole call and changes nothing.
    pub fn explain_and_update_all(
        &mut self,
        points: &[f64],
    ) -> Result<Vec<(f64, Vec<Attribution>)>> {
        let mut values = Vec::with_capacity(points.len());
        to_f32(points, self.dimensions, &mut values)?;
        let parts = self
            .forest
            .attribution_then_update(&values)
            .map_err(|e| model_err("attribution", e))?;
        let learning = self.count_records(parts.len());
        Ok(parts
            .iter()
            .enumerate()
            .map(|(i, dv)| {
                if i < learning {
                    (0.0, vec![Attribution::LEARNING; self.dimensions])
                } else {
                    per_column(dv, self.dimensions)
                }
            })
            .collect())
    }
}

/// The score and one [`Attribution`] per input column from a shingled point's attribution
/// (column `j` sums shingle positions `j`, `j + base`, …).
fn per_column(dv: &DiVector, base: usize) -> (f64, Vec<Attribution>) {
    let mut attributions = Vec::with_capacity(base);
    let mut score = 0.0;
    for j in 0..base {
        let (mut high, mut low) = (0.0, 0.0);
        let mut k = j;
        while k < dv.high.len() {
            high += dv.high[k];
            low += dv.low[k];
            k += base;
        }
        let attribution = high + low;
        score += attribution;
        attributions.push(Attribution {
            direction: if high > low {
                Direction::High
            } else {
                Direction::Low
            },
            strength: (high - low).abs(),
            attribution,
        });
    }
    (score, attributions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (the tests must not depend on a rand version).
    pub(crate) struct Lcg(u64);
    impl Lcg {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1))
        }
        /// Uniform in [0, 1).
        pub(crate) fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Roughly normal (sum of 12 uniforms), mean 0, sd 1.
        pub(crate) fn normal(&mut self) -> f64 {
            (0..12).map(|_| self.next()).sum::<f64>() - 6.0
        }
    }

    fn small(dims: usize) -> RcfModel {
        let p = RcfParams {
            number_of_trees: 50,
            sub_sample_size: 64,
            ..RcfParams::default()
        };
        RcfModel::try_new(p, dims).unwrap()
    }

    /// Top-k precision of the planted outliers over `n` points of `dims` dimensions.
    fn precision(dims: usize) -> f64 {
        let mut rng = Lcg::new(7 + dims as u64);
        let mut m = small(dims);
        let n = 2000;
        let outliers: Vec<usize> = (0..20).map(|i| 300 + i * 85).collect();
        let mut scores = Vec::new();
        for i in 0..n {
            let mut p: Vec<f64> = (0..dims).map(|_| 10.0 + rng.normal()).collect();
            if outliers.contains(&i) {
                let d = i % dims;
                p[d] += if i % 2 == 0 { 12.0 } else { -12.0 };
            }
            scores.push((m.score_and_update(&p).unwrap(), i));
        }
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        let top: Vec<usize> = scores[..outliers.len()].iter().map(|s| s.1).collect();
        let hits = top.iter().filter(|i| outliers.contains(i)).count();
        hits as f64 / outliers.len() as f64
    }

    /// Our forest against krcflib (the Rust port of AWS's library) with the same options, on
    /// the same stream (normal noise, an outlier every 250 rows): the mean score of the normal
    /// rows and of the outliers agree within 10 % (the random streams differ, so not bitwise).
    #[test]
    fn scores_agree_with_krcflib() {
        use rcflib::rcf::{AugmentedRCF, RCFBuilder, RCFOptionsBuilder};
        for dims in [1usize, 4] {
            let params = RcfParams {
                number_of_trees: 50,
                sub_sample_size: 128,
                ..RcfParams::default()
            };
            let mut ours = RcfModel::try_new(params, dims).unwrap();
            let mut builder = RCFBuilder::new(dims, 1);
            builder
                .tree_capacity(128)
                .number_of_trees(50)
                .time_decay(1.0 / params.time_decay as f64)
                .random_seed(3)
                .internal_shingling(true)
                .parallel_enabled(false)
                .output_after(0)
                .initial_accept_fraction(1.0);
            let mut theirs = builder.build_medium_simple::<u64>().unwrap();
            let mut rng = Lcg::new(11);
            let (mut normal, mut outlier) = ([0.0f64; 2], [0.0f64; 2]);
            let (mut n_normal, mut n_outlier) = (0usize, 0usize);
            for i in 0..6000 {
                let mut p: Vec<f64> = (0..dims).map(|_| 10.0 + rng.normal()).collect();
                let is_outlier = i % 250 == 249;
                if is_outlier {
                    p[i % dims] += 15.0;
                }
                let ours_score = ours.score_and_update(&p).unwrap();
                let f: Vec<f32> = p.iter().map(|v| *v as f32).collect();
                let theirs_score = theirs.score(&f).unwrap();
                theirs.update(&f, 0).unwrap();
                if i < 1000 {
                    continue;
                }
                let (acc, n) = if is_outlier {
                    (&mut outlier, &mut n_outlier)
                } else {
                    (&mut normal, &mut n_normal)
                };
                acc[0] += ours_score;
                acc[1] += theirs_score;
                *n += 1;
            }
            for (what, acc, n) in [
                ("normal", normal, n_normal),
                ("outlier", outlier, n_outlier),
            ] {
                let (a, b) = (acc[0] / n as f64, acc[1] / n as f64);
                assert!(
                    (a / b - 1.0).abs() <= 0.10,
                    "{dims}-D {what} rows: mean score ours {a:.4}, krcflib {b:.4}"
                );
            }
            assert!(outlier[0] / n_outlier as f64 > 2.0 * normal[0] / n_normal as f64);
        }
    }

    #[test]
    fn outliers_have_the_top_scores_1d() {
        let p = precision(1);
        assert!(p >= 0.9, "precision {p}");
    }

    #[test]
    fn outliers_have_the_top_scores_4d() {
        let p = precision(4);
        assert!(p >= 0.9, "precision {p}");
    }

    #[test]
    fn scoring_a_batch_is_scoring_point_by_point() {
        let mut rng = Lcg::new(3);
        let points: Vec<f64> = (0..3 * 700).map(|_| rng.normal()).collect();
        let mut one = small(3);
        let expected: Vec<f64> = points
            .chunks(3)
            .map(|p| one.score_and_update(p).unwrap())
            .collect();
        // Batches of 50: the first two cover the learning phase (64 rows) and cut it at 50.
        let mut many = small(3);
        let mut got = Vec::new();
        for c in points.chunks(3 * 50) {
            got.extend(many.score_and_update_all(c).unwrap());
        }
        assert_eq!(got.len(), 700);
        assert!(got[..64].iter().all(|s| *s == 0.0));
        assert!(got[64..].iter().all(|s| *s > 0.0));
        let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&expected));
        assert_eq!(many.records_seen(), 700);
        // A value that is not finite as a 32-bit float rejects the call, naming it.
        let e = many
            .score_and_update_all(&[1.0, 2.0, 3.0, 4.0, 1e39, 6.0])
            .unwrap_err();
        assert!(e.to_string().contains("value 2 of point 2 is 1e39"), "{e}");
        let e = many.score_and_update_all(&[1.0, 2.0]).unwrap_err();
        assert!(e.to_string().contains("points of 3 values, got 2"), "{e}");
        assert_eq!(many.records_seen(), 700);
    }

    #[test]
    fn explaining_a_batch_is_explaining_point_by_point() {
        let mut rng = Lcg::new(4);
        let points: Vec<f64> = (0..3 * 400).map(|_| rng.normal()).collect();
        let mut one = small(3);
        let expected: Vec<(f64, Vec<Attribution>)> = points
            .chunks(3)
            .map(|p| one.explain_and_update(p).unwrap())
            .collect();
        // Batches of 50: the learning phase (64 rows) ends inside the second one.
        let mut many = small(3);
        let mut got = Vec::new();
        for c in points.chunks(3 * 50) {
            got.extend(many.explain_and_update_all(c).unwrap());
        }
        assert_eq!(got.len(), 400);
        assert!(got[..64].iter().all(|(s, _)| *s == 0.0));
        assert!(got[64..].iter().all(|(s, _)| *s > 0.0));
        // Every number as bits, and each direction as 0 or 1.
        let flat = |v: &[(f64, Vec<Attribution>)]| -> Vec<u64> {
            v.iter()
                .flat_map(|(s, a)| {
                    std::iter::once(s.to_bits()).chain(a.iter().flat_map(|x| {
                        let high = matches!(x.direction, Direction::High) as u64;
                        [high, x.strength.to_bits(), x.attribution.to_bits()]
                    }))
                })
                .collect()
        };
        assert_eq!(flat(&got), flat(&expected));
        assert_eq!(many.records_seen(), 400);
        let e = many
            .explain_and_update_all(&[1.0, 2.0, 3.0, f64::NAN, 5.0, 6.0])
            .unwrap_err();
        assert!(e.to_string().contains("value 1 of point 2"), "{e}");
        assert_eq!(many.records_seen(), 400);
    }

    #[test]
    fn learning_phase_scores_zero() {
        let mut rng = Lcg::new(1);
        let mut m = small(2);
        for i in 0..200 {
            let s = m
                .score_and_update(&[rng.normal(), 100.0 * rng.normal()])
                .unwrap();
            if i < 64 {
                assert_eq!(s, 0.0, "row {i}");
            } else {
                assert!(s > 0.0, "row {i} scored {s}");
            }
        }
        let mut e = small(2);
        for i in 0..64 {
            let (s, a) = e.explain_and_update(&[i as f64, 1.0]).unwrap();
            assert_eq!(s, 0.0);
            assert_eq!(a, vec![Attribution::LEARNING; 2]);
        }
    }

    #[test]
    fn attributions_sum_to_the_score_and_match_score() {
        let mut rng = Lcg::new(3);
        let mut a = small(3);
        let mut b = small(3);
        for i in 0..500 {
            let p = [rng.normal(), rng.normal(), if i == 400 { 9.0 } else { 0.0 }];
            let s = a.score_and_update(&p).unwrap();
            let (e, attr) = b.explain_and_update(&p).unwrap();
            let sum: f64 = attr.iter().map(|x| x.attribution).sum();
            // Equal up to floating-point summation order (the attribution is a sum over the
            // trees of per-dimension terms; the score a sum of per-tree totals).
            assert!(
                (sum - e).abs() <= 1e-6 * e.abs().max(1e-12),
                "row {i}: {sum} vs {e}"
            );
            // the plain score and the explained score agree
            assert!(
                (s - e).abs() <= 1e-6 * s.abs().max(1e-12),
                "row {i}: {s} vs {e}"
            );
            for x in &attr {
                assert!(x.strength <= x.attribution + 1e-12);
            }
        }
    }

    #[test]
    fn directionality() {
        let mut rng = Lcg::new(5);
        let mut m = small(2);
        for _ in 0..300 {
            m.explain_and_update(&[50.0 + rng.normal(), 50.0 + rng.normal()])
                .unwrap();
        }
        let (_, high) = m.explain_and_update(&[50.0, 80.0]).unwrap();
        assert_eq!(high[1].direction, Direction::High);
        assert!(high[1].attribution > high[0].attribution);
        let (_, low) = m.explain_and_update(&[20.0, 50.0]).unwrap();
        assert_eq!(low[0].direction, Direction::Low);
        assert!(low[0].attribution > low[1].attribution);
        assert!(low[0].strength > 0.5 * low[0].attribution);
    }

    #[test]
    fn shingling_finds_a_pattern_break() {
        // A periodic signal 0,1,2,3,0,1,2,3,...: every single value is common, but the
        // sequence ..., 1, 2, 1, 2, ... at the break is new. With shingles of 4 the break
        // scores highest; without shingling it is invisible.
        let p = RcfParams {
            number_of_trees: 50,
            sub_sample_size: 64,
            shingle_size: 4,
            ..RcfParams::default()
        };
        let mut m = RcfModel::try_new(p, 1).unwrap();
        let mut scores = Vec::new();
        for i in 0..1000usize {
            let v = if i == 700 { 1.0 } else { (i % 4) as f64 };
            scores.push(m.score_and_update(&[v]).unwrap());
        }
        let best = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        assert!((700..704).contains(&best), "highest score at {best}");
    }

    #[test]
    fn serialised_state_continues_identically() {
        let mut rng = Lcg::new(9);
        let mut m = small(2);
        for _ in 0..150 {
            m.score_and_update(&[rng.normal(), rng.normal()]).unwrap();
        }
        let json = serde_json::to_string(&m).unwrap();
        let mut restored: RcfModel = serde_json::from_str(&json).unwrap();
        for _ in 0..100 {
            let p = [rng.normal() * 3.0, rng.normal()];
            assert_eq!(
                m.score_and_update(&p).unwrap(),
                restored.score_and_update(&p).unwrap()
            );
        }
    }

    #[test]
    fn same_seed_same_scores_other_seed_other_scores() {
        let run = |seed: u64| {
            let p = RcfParams {
                number_of_trees: 20,
                sub_sample_size: 32,
                seed,
                ..RcfParams::default()
            };
            let mut m = RcfModel::try_new(p, 1).unwrap();
            let mut rng = Lcg::new(11);
            (0..100)
                .map(|_| m.score_and_update(&[rng.normal()]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn parameter_errors_name_parameter_range_and_value() {
        let bad = |p: RcfParams| p.validate("RANDOM_CUT_FOREST").unwrap_err().to_string();
        let d = RcfParams::default();
        assert!(bad(RcfParams {
            number_of_trees: 0,
            ..d
        })
        .contains("numberOfTrees must be in [1, 1000], got 0"));
        assert!(bad(RcfParams {
            sub_sample_size: 5,
            ..d
        })
        .contains("subSampleSize must be in [10, 1000], got 5"));
        assert!(bad(RcfParams {
            shingle_size: 31,
            ..d
        })
        .contains("shingleSize must be in [1, 30], got 31"));
        assert!(bad(RcfParams {
            time_decay: 100,
            ..d
        })
        .contains("subSampleSize must be less than timeDecay"));
        assert!(RcfModel::try_new(d, 31).is_err());
        let mut m = RcfModel::try_new(d, 1).unwrap();
        assert!(m.score_and_update(&[f64::NAN]).is_err());
        assert!(m.score_and_update(&[1.0, 2.0]).is_err());
    }
}
