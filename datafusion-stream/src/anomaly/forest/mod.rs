//! Our own Random Cut Forest core (AWS RCF semantics, as `krcflib` 4.0.2 implements them),
//! written for speed: one streaming forest fed in order by one task.
//!
//! ```text
//!  input point (base dims, f32) ──► finite? right length? ──► shingle buffer (last s points,
//!                                                              zero-padded at the start)
//!                                                                   │ shingled point (d = base·s)
//!        score / attribution ◄─────────────────────────────────────┤
//!        (average over trees of the per-tree                        │ update (once s points came)
//!         leaf-to-root score; 0 while empty)                        ▼
//!                                         for each tree: u = rng.next()
//!                                           full and u <= cached threshold ─► rejected (no logs)
//!                                           else w = ln(-ln u) - t·λ; w < heap max?
//!                                              ├─ evict max ─► tree.delete ─► store.dec
//!                                              └─ store slot (shared, once) ─► tree.insert
//!                                                 (duplicates merge into a leaf) ─► heap.push
//!
//!  state: Forest { params, shingle: Vec<f32>, inputs_seen, entries_seen (= t),
//!                  store: PointStore { slot points, refcounts, free list },
//!                  trees: [ Member { rng: SplitMix64, sampler: Sampler { max-heap (w, slot),
//!                                    cached rejection threshold },
//!                                    tree: Tree { flat arena: nodes, cached boxes, leaves } } ] }
//!         all serde; f32/f64 stored as bit patterns, so a restored forest is bit-identical;
//!         reading one back validates every index and invariant first (an error, not a panic)
//! ```
//!
//! **Batches.** [`Forest::score_then_update`] takes many input points and gives exactly the
//! scores and state of `score` then `update` per point, but walks the forest tree by tree:
//!
//! ```text
//!  for each tree:   i = 0
//!     while i < n:  group = points i.. up to LANES, ending at the first one the tree may
//!                   keep (a copy of its random stream tells: every other one is a certain
//!                   rejection, so the tree is the same for all scores in the group)
//!                   score the group in lockstep (Tree::score_lanes); add each to its sum
//!                   offer the group's last point to the tree if it may keep it
//!                   (score-then-update order)
//!  score_i = sum_i / trees      (summed in tree order, as `score` does: bit-identical)
//! ```
//!
//! [`Forest::attribution_then_update`] walks the same groups (`each_tree_then_update`): the
//! same lockstep descent (`Tree::leaves_lanes`), then each point's attribution walk.
//!
//! Files: `rng.rs` (SplitMix64), `sampler.rs` (time-decayed reservoir with cheap rejection),
//! `store.rs` (shared point store), `tree.rs` (random cut tree, score and attribution).
//! `scratch/` holds the stand-alone crate that tests this module, compares it with `krcflib`
//! and measures its speed (not compiled by the workspace; see `scratch/README.md`).
//!
//! **Semantics kept from AWS RCF / krcflib** (builder options `initial_accept_fraction(1.0)`,
//! `internal_shingling(true)`, bounding box cache fraction 1.0, standard score functions):
//! reservoir weight `ln(-ln u) - t·λ` (t = entries seen by the tree before this point), every
//! point accepted while the reservoir is not full; random cuts with dimension chosen in
//! proportion to the box's width and a uniform value; duplicates increase a leaf's mass;
//! score = average over trees of the leaf-to-root `ScalarScoreVisitor` value with
//! `score_seen(d, m) = 1/(d + log2(1+m))`, `score_unseen(d) = 1/(d+1)`,
//! `damp(m, M) = 1 - m/(2M)` and normaliser `log2(1+M)`; attribution as `AttributionVisitor`
//! (shadow box for a duplicate leaf), normalised per tree to the tree's score. Internal
//! shingling as krcflib: the shingle starts as zeros and trees only receive points once
//! `shingle_size` inputs have arrived; `entries_seen` counts those points.
//!
//! **Deliberate differences** (same distribution, different random streams, so scores are
//! statistically but not bitwise equal to krcflib's): one SplitMix64 per tree instead of
//! reseeding ChaCha20 for every tree on every update; insertion walks top-down and stops at
//! the first separating cut (krcflib walks bottom-up drawing a cut at every level and keeps
//! the highest separating one — the same distribution); a rejected point costs one draw and a
//! compare; reservoir weights are f64 (krcflib: f32); cut probabilities are summed in f64.

mod rng;
mod sampler;
mod store;
mod tree;

use serde::{Deserialize, Serialize};

use rng::SplitMix64;
use sampler::Sampler;
use store::PointStore;
use tree::{is_leaf, AttributionScratch, Tree, NIL};

/// Points one tree scores at once in [`Forest::score_then_update`].
const LANES: usize = 8;

/// Largest `dimensions × shingle_size` (30 columns × shingle 30).
pub const MAX_SHINGLED_DIMENSIONS: usize = 900;

/// Parameters of a [`Forest`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Values per input point, >= 1.
    pub dimensions: usize,
    /// Input points per shingled point, >= 1; `dimensions · shingle_size` <= 900.
    pub shingle_size: usize,
    /// 1..=1000.
    pub number_of_trees: usize,
    /// Points kept per tree, 1..=1000 (KDA: 10..=1000).
    pub sample_size: usize,
    /// Decay rate λ (KDA: `1 / timeDecay`), finite, in [0, 1].
    #[serde(with = "bits::f64_bits")]
    pub time_decay: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl ForestParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        let shingled = self.dimensions.checked_mul(self.shingle_size);
        if self.dimensions == 0 {
            return Err("random cut forest: dimensions must be at least 1".into());
        }
        if self.shingle_size == 0 {
            return Err("random cut forest: shingle size must be at least 1".into());
        }
        match shingled {
            Some(d) if d <= MAX_SHINGLED_DIMENSIONS => {}
            _ => {
                return Err(format!(
                    "random cut forest: dimensions × shingle size must be at most \
                     {MAX_SHINGLED_DIMENSIONS}, got {} × {}",
                    self.dimensions, self.shingle_size
                ))
            }
        }
        if !(1..=1000).contains(&self.number_of_trees) {
            return Err(format!(
                "random cut forest: number of trees must be in [1, 1000], got {}",
                self.number_of_trees
            ));
        }
        if !(1..=1000).contains(&self.sample_size) {
            return Err(format!(
                "random cut forest: sample size must be in [1, 1000], got {}",
                self.sample_size
            ));
        }
        if !(self.time_decay.is_finite() && (0.0..=1.0).contains(&self.time_decay)) {
            return Err(format!(
                "random cut forest: time decay must be a finite number in [0, 1], got {}",
                self.time_decay
            ));
        }
        Ok(())
    }
}

/// Per shingled dimension, the part of the score due to the point being above (`high`) or
/// below (`low`) the model's data in that dimension. All parts sum to the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiVector {
    /// Per shingled dimension: the part due to the point lying above the data.
    pub high: Vec<f64>,
    /// Per shingled dimension: the part due to the point lying below the data.
    pub low: Vec<f64>,
}

impl DiVector {
    /// All zeros.
    pub fn empty(dim: usize) -> Self {
        Self {
            high: vec![0.0; dim],
            low: vec![0.0; dim],
        }
    }

    /// Sum of all parts (the score).
    pub fn total(&self) -> f64 {
        self.high.iter().sum::<f64>() + self.low.iter().sum::<f64>()
    }
}

/// A tree with its reservoir and random stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    rng: SplitMix64,
    sampler: Sampler,
    tree: Tree,
}

impl Member {
    /// Offers the shingled point `p`, the forest's `t`-th entry, to this tree's reservoir;
    /// returns whether the tree changed. `slot` is the store slot holding `p`, or NIL: the
    /// first tree that keeps `p` stores it there with one extra reference (a pin the caller
    /// drops with `store.dec` once every tree has been offered the point).
    #[inline]
    fn offer(
        &mut self,
        p: &[f32],
        t: u64,
        lambda: f64,
        store: &mut PointStore,
        slot: &mut u32,
    ) -> Result<bool, String> {
        let u = self.rng.next_f64();
        self.offer_drawn(u, p, t, lambda, store, slot)
    }

    /// [`Self::offer`] with the draw `u` already taken from this tree's random stream (the
    /// stream must not have moved since).
    #[inline]
    fn offer_drawn(
        &mut self,
        u: f64,
        p: &[f32],
        t: u64,
        lambda: f64,
        store: &mut PointStore,
        slot: &mut u32,
    ) -> Result<bool, String> {
        let weight = if self.sampler.is_full() {
            match self.sampler.accepts_when_full(u, t, lambda) {
                None => return Ok(false),
                Some(w) => {
                    if let Some(old) = self.sampler.evict_max() {
                        self.tree.delete(store.point(old.point), store)?;
                        store.dec(old.point);
                    }
                    w
                }
            }
        } else {
            Sampler::weight(u, t, lambda)
        };
        if *slot == NIL {
            *slot = store.alloc(p);
            store.inc(*slot);
        }
        let kept = self.tree.insert(p, *slot, store, &mut self.rng);
        store.inc(kept);
        self.sampler.push(weight, kept);
        Ok(true)
    }
}

/// A streaming Random Cut Forest. Deserialising validates the whole state (see
/// [`Forest::check`]), so a corrupted checkpoint is an error, never a panic later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ForestState")]
pub struct Forest {
    params: ForestParams,
    /// `dimensions · shingle_size`.
    dim: usize,
    /// The last `shingle_size` inputs, oldest first (zeros before they arrive).
    #[serde(with = "bits::f32s_bits")]
    shingle: Vec<f32>,
    inputs_seen: u64,
    entries_seen: u64,
    store: PointStore,
    members: Vec<Member>,
}

/// The shingled points of one batch: input `i`'s is `seq[i·base .. i·base + dim]`.
struct Batch<'a> {
    seq: &'a [f32],
    base: usize,
    dim: usize,
}

impl<'a> Batch<'a> {
    #[inline]
    fn point(&self, i: usize) -> &'a [f32] {
        &self.seq[i * self.base..i * self.base + self.dim]
    }

    /// Points `i..i + g` (1 <= g <= L) as `L` lanes; spare lanes repeat the last point.
    #[inline]
    fn lanes<const L: usize>(&self, i: usize, g: usize) -> [&'a [f32]; L] {
        std::array::from_fn(|l| self.point(i + l.min(g - 1)))
    }
}

/// Scores points `i..i + scores.len()` of `batch` (1..=L of them) with
/// `tree.score_lanes::<L>`; the spare lanes' scores are dropped.
fn score_group<const L: usize>(
    tree: &Tree,
    store: &PointStore,
    batch: &Batch<'_>,
    i: usize,
    scores: &mut [f64],
) {
    let mut out = [0.0; L];
    tree.score_lanes(&batch.lanes::<L>(i, scores.len()), store, &mut out);
    scores.copy_from_slice(&out[..scores.len()]);
}

/// [`Forest`]'s fields as read from a checkpoint, before validation.
#[derive(Deserialize)]
struct ForestState {
    params: ForestParams,
    dim: usize,
    #[serde(with = "bits::f32s_bits")]
    shingle: Vec<f32>,
    inputs_seen: u64,
    entries_seen: u64,
    store: PointStore,
    members: Vec<Member>,
}

impl TryFrom<ForestState> for Forest {
    type Error = String;

    fn try_from(s: ForestState) -> Result<Forest, String> {
        let f = Forest {
            params: s.params,
            dim: s.dim,
            shingle: s.shingle,
            inputs_seen: s.inputs_seen,
            entries_seen: s.entries_seen,
            store: s.store,
            members: s.members,
        };
        f.validate()
            .map_err(|e| format!("random cut forest: invalid saved state: {e}"))?;
        Ok(f)
    }
}

impl Forest {
    /// A new, empty forest.
    pub fn try_new(params: ForestParams) -> Result<Forest, String> {
        params.validate()?;
        let dim = params.dimensions * params.shingle_size;
        let mut seeder = SplitMix64::new(params.seed);
        let members = (0..params.number_of_trees)
            .map(|_| Member {
                rng: SplitMix64::new(seeder.next_u64()),
                sampler: Sampler::new(params.sample_size),
                tree: Tree::new(dim, params.sample_size),
            })
            .collect();
        Ok(Forest {
            params,
            dim,
            shingle: vec![0.0; dim],
            inputs_seen: 0,
            entries_seen: 0,
            store: PointStore::new(dim),
            members,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    /// Points given to the trees (inputs once the shingle is full), as krcflib counts them.
    pub fn entries_seen(&self) -> u64 {
        self.entries_seen
    }

    /// Inputs given to [`Self::update`].
    pub fn inputs_seen(&self) -> u64 {
        self.inputs_seen
    }

    /// Approximate bytes of state.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.shingle.capacity() * 4
            + self.store.size()
            + self
                .members
                .iter()
                .map(|m| m.tree.size() + m.sampler.size())
                .sum::<usize>()
    }

    fn check_input(&self, point: &[f32]) -> Result<(), String> {
        if point.len() != self.params.dimensions {
            return Err(format!(
                "random cut forest: expected a point of {} values, got {}",
                self.params.dimensions,
                point.len()
            ));
        }
        if let Some((i, v)) = point.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(format!(
                "random cut forest: value {} of the point is {v}; only finite numbers are accepted",
                i + 1
            ));
        }
        Ok(())
    }

    /// The shingled point `point` would make (the shingle shifted by one input). With
    /// `shingle_size` 1 this is `point` itself.
    fn shingled<'a>(&self, point: &'a [f32], buf: &'a mut Vec<f32>) -> &'a [f32] {
        if self.params.shingle_size == 1 {
            return point;
        }
        let base = self.params.dimensions;
        buf.clear();
        buf.extend_from_slice(&self.shingle[base..]);
        buf.extend_from_slice(point);
        buf
    }

    /// The anomaly score of `point` (one input of `dimensions` values, shingled with the
    /// previous inputs); 0 while no point has reached the trees. Does not change the forest.
    pub fn score(&self, point: &[f32]) -> Result<f64, String> {
        self.check_input(point)?;
        if self.entries_seen == 0 {
            return Ok(0.0);
        }
        let mut buf = Vec::new();
        let p = self.shingled(point, &mut buf);
        // The descent is a chain of dependent loads (one cache miss per level once the
        // forest outgrows L2); descending LANES trees in lockstep overlaps their misses.
        const LANES: usize = 8;
        let mut sum = 0.0;
        for group in self.members.chunks(LANES) {
            let mut at = [NIL; LANES];
            let mut depth = [0u32; LANES];
            for (k, m) in group.iter().enumerate() {
                at[k] = m.tree.root();
            }
            loop {
                let mut moved = false;
                for (k, m) in group.iter().enumerate() {
                    if at[k] != NIL && !is_leaf(at[k]) {
                        at[k] = m.tree.step(at[k], p);
                        depth[k] += 1;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            for (k, m) in group.iter().enumerate() {
                if at[k] != NIL {
                    sum += m.tree.score_from_leaf(at[k], depth[k], p, &self.store);
                }
            }
        }
        Ok(sum / self.members.len() as f64)
    }

    /// The score of `point` split per shingled dimension and direction; the parts sum to
    /// [`Self::score`] (up to rounding). All zeros while no point has reached the trees.
    pub fn attribution(&self, point: &[f32]) -> Result<DiVector, String> {
        self.check_input(point)?;
        let mut out = DiVector::empty(self.dim);
        if self.entries_seen == 0 {
            return Ok(out);
        }
        let mut buf = Vec::new();
        let p = self.shingled(point, &mut buf);
        let mut scratch = AttributionScratch::new(self.dim);
        for m in &self.members {
            m.tree
                .attribution(p, &self.store, &mut scratch, &mut out.high, &mut out.low);
        }
        let n = self.members.len() as f64;
        out.high.iter_mut().for_each(|x| *x /= n);
        out.low.iter_mut().for_each(|x| *x /= n);
        Ok(out)
    }

    /// Adds `point` to the forest (to the shingle, and once it is full, offers the shingled
    /// point to every tree's reservoir).
    pub fn update(&mut self, point: &[f32]) -> Result<(), String> {
        self.check_input(point)?;
        let base = self.params.dimensions;
        self.shingle.copy_within(base.., 0);
        let d = self.dim;
        self.shingle[d - base..].copy_from_slice(point);
        self.inputs_seen += 1;
        if self.inputs_seen < self.params.shingle_size as u64 {
            return Ok(());
        }
        let t = self.entries_seen;
        let lambda = self.params.time_decay;
        let mut slot = NIL;
        let Forest {
            shingle,
            store,
            members,
            ..
        } = self;
        for m in members.iter_mut() {
            m.offer(shingle, t, lambda, store, &mut slot)?;
        }
        if slot != NIL {
            store.dec(slot);
        }
        self.entries_seen += 1;
        Ok(())
    }

    /// Scores each input point of `points` (`dimensions` values per point, in arrival order)
    /// against the forest as it stands just before that point, then adds the point: exactly
    /// the scores and the state of calling [`Self::score`] then [`Self::update`] per point
    /// (bit for bit; a test checks it), but computed tree by tree.
    ///
    /// ```text
    ///  for each tree (its ~10–40 KB stay in L1/L2 for the whole batch):
    ///      for each point i in order:  score_i += tree.score(p_i);  tree.offer(p_i, t_i)
    ///  score_i /= trees            (each score_i sums the trees in the same order as `score`)
    /// ```
    ///
    /// Trees are independent: each has its own sampler and random stream, and the only
    /// shared state is the point store, where a batch point's slot is pinned (one extra
    /// reference) until every tree has seen it. Scoring one point against all trees walks
    /// the whole forest (megabytes, mostly cache misses); this order walks each tree once
    /// per batch. Points are checked first: a non-finite value or a wrong length rejects the
    /// whole batch and changes nothing.
    pub fn score_then_update(&mut self, points: &[f32]) -> Result<Vec<f64>, String> {
        let mut sums = vec![0.0f64; points.len() / self.params.dimensions];
        let mut lane_scores = [0.0f64; LANES];
        self.each_tree_then_update(points, |tree, store, batch, i, g| {
            let scores = &mut lane_scores[..g];
            match g {
                1 => scores[0] = tree.score(batch.point(i), store),
                2..=4 => score_group::<4>(tree, store, batch, i, scores),
                _ => score_group::<LANES>(tree, store, batch, i, scores),
            }
            for (sum, s) in sums[i..i + g].iter_mut().zip(scores.iter()) {
                *sum += s;
            }
        })?;
        let trees = self.members.len() as f64;
        sums.iter_mut().for_each(|s| *s /= trees);
        Ok(sums)
    }

    /// [`Self::attribution`] then [`Self::update`] for each input point of `points`, tree by
    /// tree like [`Self::score_then_update`]: the same attributions (bit for bit; a test
    /// checks it) and the same state.
    pub fn attribution_then_update(&mut self, points: &[f32]) -> Result<Vec<DiVector>, String> {
        let d = self.dim;
        let n = points.len() / self.params.dimensions;
        let mut high = vec![0.0f64; n * d];
        let mut low = vec![0.0f64; n * d];
        let mut scratch = AttributionScratch::new(d);
        self.each_tree_then_update(points, |tree, store, batch, i, g| {
            if g == 1 {
                let (h, l) = (&mut high[i * d..(i + 1) * d], &mut low[i * d..(i + 1) * d]);
                tree.attribution(batch.point(i), store, &mut scratch, h, l);
                return;
            }
            // The group's descents in lockstep (spare lanes repeat the last point), then one
            // attribution walk after the other.
            let lanes = batch.lanes::<LANES>(i, g);
            let Some((at, depth)) = tree.leaves_lanes(&lanes) else {
                return;
            };
            for l in 0..g {
                let j = i + l;
                let (h, lo) = (&mut high[j * d..(j + 1) * d], &mut low[j * d..(j + 1) * d]);
                tree.attribution_from_leaf(at[l], depth[l], lanes[l], store, &mut scratch, h, lo);
            }
        })?;
        let trees = self.members.len() as f64;
        Ok(high
            .chunks_exact(d)
            .zip(low.chunks_exact(d))
            .map(|(h, l)| DiVector {
                high: h.iter().map(|x| x / trees).collect(),
                low: l.iter().map(|x| x / trees).collect(),
            })
            .collect())
    }

    /// The batch walk shared by [`Self::score_then_update`] and
    /// [`Self::attribution_then_update`]: checks every point first (a bad one rejects the
    /// whole batch and changes nothing), then for each tree hands `visit(tree, store, batch,
    /// i, g)` the points `i..i + g` to look at while the tree is as it was just before point
    /// `i`, then offers them to the tree.
    fn each_tree_then_update(
        &mut self,
        points: &[f32],
        mut visit: impl FnMut(&Tree, &PointStore, &Batch<'_>, usize, usize),
    ) -> Result<(), String> {
        let base = self.params.dimensions;
        if !points.len().is_multiple_of(base) {
            return Err(format!(
                "random cut forest: expected points of {base} values, got {} values in all",
                points.len()
            ));
        }
        for (k, p) in points.chunks(base).enumerate() {
            self.check_input(p)
                .map_err(|e| format!("{e} (point {} of {})", k + 1, points.len() / base))?;
        }
        let n = points.len() / base;
        if n == 0 {
            return Ok(());
        }
        let d = self.dim;
        // Input i's shingled point is seq[i·base .. i·base + d].
        let mut seq = Vec::with_capacity(d - base + points.len());
        seq.extend_from_slice(&self.shingle[base..]);
        seq.extend_from_slice(points);
        let batch = Batch {
            seq: &seq,
            base,
            dim: d,
        };
        // Inputs before `first` only fill the shingle; input i >= first is entry t0 + i - first.
        let first = (self.params.shingle_size as u64 - 1)
            .saturating_sub(self.inputs_seen)
            .min(n as u64) as usize;
        let t0 = self.entries_seen;
        let lambda = self.params.time_decay;
        let mut slots = vec![NIL; n];
        let Forest { store, members, .. } = self;
        for m in members.iter_mut() {
            let mut i = 0;
            while i < n {
                // A group of points this tree looks at as it is: up to LANES points of which
                // only the last may change the tree. The tree's random stream draws each
                // point's `u` ahead of its visit (the same draws, in the same order, as
                // `offer`); a point that is a certain rejection needs nothing more, so the
                // group goes on until the first point the tree may keep, which is offered
                // after its visit.
                let mut g = 0;
                let mut keep: Option<(usize, f64, u64)> = None;
                while g < LANES && i + g < n {
                    let j = i + g;
                    g += 1;
                    if j >= first {
                        let t = t0 + (j - first) as u64;
                        let u = m.rng.next_f64();
                        if !m.sampler.is_full() || !m.sampler.certainly_rejects(u, t, lambda) {
                            keep = Some((j, u, t));
                            break;
                        }
                    }
                }
                visit(&m.tree, store, &batch, i, g);
                if let Some((j, u, t)) = keep {
                    m.offer_drawn(u, batch.point(j), t, lambda, store, &mut slots[j])?;
                }
                i += g;
            }
        }
        for s in slots.into_iter().filter(|&s| s != NIL) {
            self.store.dec(s);
        }
        self.shingle.copy_from_slice(&seq[seq.len() - d..]);
        self.inputs_seen += n as u64;
        self.entries_seen += (n - first) as u64;
        Ok(())
    }

    /// Checks a state read from a checkpoint: parameters, sizes and every index first (so
    /// nothing indexes out of range), then [`Self::check`].
    fn validate(&self) -> Result<(), String> {
        let p = &self.params;
        p.validate()?;
        if self.dim != p.dimensions * p.shingle_size || self.shingle.len() != self.dim {
            return Err("dimensions do not match the parameters".into());
        }
        if self.members.len() != p.number_of_trees {
            return Err(format!(
                "{} trees, the parameters say {}",
                self.members.len(),
                p.number_of_trees
            ));
        }
        if self.entries_seen > self.inputs_seen {
            return Err("more entries than inputs".into());
        }
        self.store.validate(self.dim)?;
        for (k, m) in self.members.iter().enumerate() {
            m.sampler
                .validate(p.sample_size, |s| self.store.contains(s))
                .and_then(|_| m.tree.validate(self.dim, p.sample_size, &self.store))
                .map_err(|e| format!("tree {k}: {e}"))?;
        }
        self.check()
    }

    /// Checks the whole state: every tree's invariants, reservoirs matching trees, and
    /// reference counts matching reservoirs (tests; deserialising runs it after checking
    /// every index).
    pub fn check(&self) -> Result<(), String> {
        let mut counts = std::collections::HashMap::<u32, u32>::new();
        for (k, m) in self.members.iter().enumerate() {
            m.sampler.check()?;
            let mut leaves = m.tree.check(&self.store)?;
            let mut entries: Vec<u32> = m.sampler.entries().iter().map(|e| e.point).collect();
            for e in &entries {
                *counts.entry(*e).or_default() += 1;
            }
            entries.sort_unstable();
            let mut from_leaves: Vec<u32> = Vec::new();
            leaves.sort_unstable();
            for (slot, mass) in leaves {
                from_leaves.extend(std::iter::repeat_n(slot, mass as usize));
            }
            if entries != from_leaves {
                return Err(format!("tree {k}: reservoir and tree disagree"));
            }
        }
        for (slot, c) in counts {
            if self.store.refs(slot) != c {
                return Err(format!(
                    "slot {slot}: {} references, expected {c}",
                    self.store.refs(slot)
                ));
            }
        }
        Ok(())
    }
}

/// Serde helpers storing floats as their bit patterns (text formats may round).
pub(crate) mod bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub mod f64_bits {
        use super::*;
        pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(v.to_bits())
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
            u64::deserialize(d).map(f64::from_bits)
        }
    }

    pub mod f32s_bits {
        use super::*;
        pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| x.to_bits()))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
            Vec::<u32>::deserialize(d).map(|v| v.into_iter().map(f32::from_bits).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test data (no rand crate).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            (0..12).map(|_| self.next()).sum::<f64>() - 6.0
        }
    }

    fn params(dimensions: usize, shingle_size: usize) -> ForestParams {
        ForestParams {
            dimensions,
            shingle_size,
            number_of_trees: 50,
            sample_size: 64,
            time_decay: 1e-3,
            seed: 17,
        }
    }

    /// Per point: score then update. Returns the scores.
    fn one_by_one(f: &mut Forest, points: &[Vec<f32>]) -> Vec<f64> {
        points
            .iter()
            .map(|p| {
                let s = f.score(p).unwrap();
                f.update(p).unwrap();
                s
            })
            .collect()
    }

    /// Feeds `points` to `f` in chunks of `chunk`: every fifth chunk point by point
    /// (`one`), the others as one batch (`many`); returns the results in order.
    fn mixed<T>(
        f: &mut Forest,
        points: &[Vec<f32>],
        chunk: usize,
        one: fn(&mut Forest, &[Vec<f32>]) -> Vec<T>,
        many: fn(&mut Forest, &[f32]) -> Vec<T>,
    ) -> Vec<T> {
        let mut got = Vec::new();
        for (k, c) in points.chunks(chunk).enumerate() {
            if k % 5 == 4 {
                got.extend(one(f, c));
            } else {
                let flat: Vec<f32> = c.iter().flatten().copied().collect();
                got.extend(many(f, &flat));
            }
        }
        got
    }

    /// Noise with outliers and exact repeats (duplicate leaves), `n` points of `dims` values.
    fn data(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut r = Lcg(seed);
        let mut out: Vec<Vec<f32>> = Vec::with_capacity(n);
        for i in 0..n {
            let p = if i % 13 == 5 && i > 0 {
                out[i / 2].clone()
            } else {
                let scale = if i % 97 == 96 { 8.0 } else { 1.0 };
                (0..dims).map(|_| (r.normal() * scale) as f32).collect()
            };
            out.push(p);
        }
        out
    }

    #[test]
    fn score_then_update_is_score_then_update_per_point_bit_for_bit() {
        for (dims, shingle) in [(1, 1), (3, 1), (2, 4)] {
            let points = data(1500, dims, 5 + dims as u64);
            let mut reference = Forest::try_new(params(dims, shingle)).unwrap();
            let expected = one_by_one(&mut reference, &points);
            assert!(expected[300..].iter().any(|s| *s > 0.0));
            // Batch sizes 1, 7 and 1000 (cutting the learning phase and the shingle fill-up
            // at different places), and one point at a time in between.
            for chunk in [1usize, 7, 1000] {
                let mut batched = Forest::try_new(params(dims, shingle)).unwrap();
                let got = mixed(&mut batched, &points, chunk, one_by_one, |f, flat| {
                    f.score_then_update(flat).unwrap()
                });
                assert_eq!(got.len(), expected.len());
                for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "dims {dims} shingle {shingle} chunk {chunk}: point {i} scores {a} vs {b}"
                    );
                }
                batched.check().unwrap();
                assert_eq!(batched.entries_seen(), reference.entries_seen());
                assert_eq!(batched.inputs_seen(), reference.inputs_seen());
                // The two continue identically (slot numbers may differ, scores may not).
                let probe = data(50, dims, 99);
                assert_eq!(
                    one_by_one(&mut batched, &probe),
                    one_by_one(&mut reference.clone(), &probe)
                );
            }
        }
    }

    #[test]
    fn attribution_then_update_is_attribution_then_update_per_point_bit_for_bit() {
        fn explain_one_by_one(f: &mut Forest, points: &[Vec<f32>]) -> Vec<DiVector> {
            points
                .iter()
                .map(|p| {
                    let a = f.attribution(p).unwrap();
                    f.update(p).unwrap();
                    a
                })
                .collect()
        }
        let bits = |v: &[DiVector]| -> Vec<u64> {
            v.iter()
                .flat_map(|a| a.high.iter().chain(&a.low).map(|x| x.to_bits()))
                .collect()
        };
        for (dims, shingle) in [(1, 1), (3, 1), (2, 4)] {
            let points = data(900, dims, 11 + dims as u64);
            let mut reference = Forest::try_new(params(dims, shingle)).unwrap();
            let expected = explain_one_by_one(&mut reference, &points);
            assert!(expected[300..].iter().any(|a| a.total() > 0.0));
            for chunk in [1usize, 7, 1000] {
                let mut batched = Forest::try_new(params(dims, shingle)).unwrap();
                let got = mixed(
                    &mut batched,
                    &points,
                    chunk,
                    explain_one_by_one,
                    |f, flat| f.attribution_then_update(flat).unwrap(),
                );
                assert_eq!(got.len(), expected.len());
                assert!(got.iter().all(|a| a.high.len() == dims * shingle));
                assert_eq!(
                    bits(&got),
                    bits(&expected),
                    "dims {dims} shingle {shingle} chunk {chunk}"
                );
                batched.check().unwrap();
                assert_eq!(batched.entries_seen(), reference.entries_seen());
                // The two continue identically.
                let probe = data(50, dims, 99);
                assert_eq!(
                    one_by_one(&mut batched, &probe),
                    one_by_one(&mut reference.clone(), &probe)
                );
            }
        }
        // A bad point rejects the whole batch and changes nothing.
        let mut f = Forest::try_new(params(2, 1)).unwrap();
        f.attribution_then_update(&[0.5, 0.5, 1.0, 1.0]).unwrap();
        let before = f.clone();
        let e = f
            .attribution_then_update(&[0.1, 0.2, f32::INFINITY, 0.3])
            .unwrap_err();
        assert!(
            e.contains("value 1 of the point is inf") && e.contains("(point 2 of 2)"),
            "{e}"
        );
        assert_eq!(f, before);
        assert!(f.attribution_then_update(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_corrupted_saved_state_is_an_error_not_a_panic() {
        let mut f = Forest::try_new(params(2, 2)).unwrap();
        for p in data(400, 2, 3) {
            f.update(&p).unwrap();
        }
        let good = serde_json::to_value(&f).unwrap();
        let restored: Forest = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(restored, f);
        // Each edit breaks one thing; each must be refused with a message saying what. Edits
        // of node words go to the root's record (stride 8 + 2·4 words), which is in use.
        fn root_word(v: &mut serde_json::Value, k: usize, word: u64) -> &mut serde_json::Value {
            let t = &mut v["members"][k]["tree"];
            let at = t["root"].as_u64().unwrap() * 16 + word;
            &mut t["nodes"][at as usize]
        }
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit, &str); 8] = [
            (
                "child out of range",
                |v| *root_word(v, 0, 0) = 1_000_000.into(),
                "tree 0: random cut tree: a node reference is out of range",
            ),
            (
                "shared child",
                |v| *root_word(v, 3, 1) = root_word(v, 3, 0).clone(),
                "tree 3: random cut tree:",
            ),
            (
                "cut dimension",
                |v| *root_word(v, 1, 3) = 9.into(),
                "cut dimension is out of range",
            ),
            (
                "truncated arena",
                |v| {
                    v["members"][2]["tree"]["nodes"]
                        .as_array_mut()
                        .unwrap()
                        .pop();
                },
                "arena sizes",
            ),
            (
                "leaf masses",
                |v| {
                    for m in v["members"][0]["tree"]["leaves"]
                        .as_array_mut()
                        .unwrap()
                        .iter_mut()
                        .skip(1)
                        .step_by(3)
                    {
                        *m = 4_000_000_000u32.into();
                    }
                },
                "leaf masses do not fit",
            ),
            (
                "missing tree",
                |v| {
                    v["members"].as_array_mut().unwrap().pop();
                },
                "49 trees, the parameters say 50",
            ),
            (
                "slot out of range",
                |v| v["members"][4]["sampler"]["heap"][0]["point"] = 77_777.into(),
                "missing point slot",
            ),
            (
                "stale box",
                |v| *root_word(v, 5, 8) = 0x7f00_0000u32.into(),
                "stale box",
            ),
        ];
        for (what, edit, expected) in edits {
            let mut v = good.clone();
            edit(&mut v);
            let e = serde_json::from_value::<Forest>(v).unwrap_err().to_string();
            assert!(
                e.contains("invalid saved state") && e.contains(expected),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn score_then_update_rejects_a_bad_batch_whole() {
        let mut f = Forest::try_new(params(2, 1)).unwrap();
        f.score_then_update(&[0.5, 0.5, 1.0, 1.0]).unwrap();
        let before = f.clone();
        let e = f.score_then_update(&[0.1, 0.2, f32::NAN, 0.3]).unwrap_err();
        assert!(e.contains("value 1 of the point is NaN"), "{e}");
        let e = f.score_then_update(&[0.1, 0.2, 0.3]).unwrap_err();
        assert!(e.contains("points of 2 values, got 3 values"), "{e}");
        assert_eq!(f, before);
        assert_eq!(f.score_then_update(&[]).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn validation_errors() {
        let ok = params(2, 1);
        assert!(Forest::try_new(ok).is_ok());
        for bad in [
            ForestParams {
                dimensions: 0,
                ..ok
            },
            ForestParams {
                shingle_size: 0,
                ..ok
            },
            ForestParams {
                dimensions: 31,
                shingle_size: 30,
                ..ok
            },
            ForestParams {
                number_of_trees: 0,
                ..ok
            },
            ForestParams {
                number_of_trees: 1001,
                ..ok
            },
            ForestParams {
                sample_size: 0,
                ..ok
            },
            ForestParams {
                time_decay: f64::NAN,
                ..ok
            },
            ForestParams {
                time_decay: -1.0,
                ..ok
            },
        ] {
            assert!(Forest::try_new(bad).is_err(), "{bad:?}");
        }
        let mut f = Forest::try_new(ok).unwrap();
        assert!(f.update(&[1.0]).is_err());
        assert!(f.update(&[1.0, f32::NAN]).is_err());
        assert!(f.score(&[f32::INFINITY, 0.0]).is_err());
        assert!(f.attribution(&[1.0, 2.0, 3.0]).is_err());
        assert_eq!(f.inputs_seen(), 0);
    }

    #[test]
    fn zero_while_empty_then_positive() {
        let mut f = Forest::try_new(params(2, 3)).unwrap();
        for i in 0..3 {
            assert_eq!(f.score(&[1.0, 2.0]).unwrap(), 0.0);
            assert_eq!(f.attribution(&[1.0, 2.0]).unwrap().total(), 0.0);
            f.update(&[i as f32, 1.0]).unwrap();
        }
        // Shingle 3: the third input is the first point the trees see.
        assert_eq!(f.entries_seen(), 1);
        assert_eq!(f.inputs_seen(), 3);
        assert!(f.score(&[7.0, 7.0]).unwrap() > 0.0);
    }

    /// Every tree, reservoir and reference count stays consistent through fill-up, steady
    /// state with evictions, and duplicates.
    #[test]
    fn state_stays_consistent() {
        let mut rng = Lcg(3);
        let mut f = Forest::try_new(ForestParams {
            sample_size: 32,
            number_of_trees: 10,
            time_decay: 0.01,
            ..params(2, 2)
        })
        .unwrap();
        for i in 0..3000 {
            let p = [(rng.next() * 5.0).floor() as f32, rng.normal() as f32];
            f.update(&p).unwrap();
            if i % 97 == 0 {
                f.check().unwrap();
            }
        }
        f.check().unwrap();
        // The store holds only referenced points.
        assert!(f.store.live() <= 10 * 32);
    }

    #[test]
    fn attributions_sum_to_the_score_and_point_the_right_way() {
        let mut rng = Lcg(5);
        let mut f = Forest::try_new(params(3, 1)).unwrap();
        for _ in 0..500 {
            let p = [
                rng.normal() as f32,
                rng.normal() as f32,
                rng.normal() as f32,
            ];
            f.update(&p).unwrap();
        }
        let mut probes = vec![[0.0f32, 9.0, 0.0], [0.0, 0.0, -9.0], [0.1, 0.2, 0.3]];
        // A duplicate of a sampled point takes the shadow-box path.
        probes.push({
            let s = f.store.point(f.members[0].sampler.entries()[0].point);
            [s[0], s[1], s[2]]
        });
        for p in &probes {
            let s = f.score(p).unwrap();
            let a = f.attribution(p).unwrap();
            assert!(
                (a.total() - s).abs() <= 1e-9 * s.max(1e-12),
                "{p:?}: {} vs {s}",
                a.total()
            );
        }
        let a = f.attribution(&[0.0, 9.0, 0.0]).unwrap();
        assert!(a.high[1] > 0.8 * a.total(), "{a:?}");
        let a = f.attribution(&[0.0, 0.0, -9.0]).unwrap();
        assert!(a.low[2] > 0.8 * a.total(), "{a:?}");
    }

    #[test]
    fn outliers_score_highest() {
        for dims in [1usize, 4] {
            let mut rng = Lcg(7 + dims as u64);
            let mut f = Forest::try_new(params(dims, 1)).unwrap();
            let outliers: Vec<usize> = (0..20).map(|i| 300 + i * 85).collect();
            let mut scores = Vec::new();
            for i in 0..2000 {
                let mut p: Vec<f32> = (0..dims).map(|_| 10.0 + rng.normal() as f32).collect();
                if outliers.contains(&i) {
                    p[i % dims] += if i % 2 == 0 { 12.0 } else { -12.0 };
                }
                scores.push((f.score(&p).unwrap(), i));
                f.update(&p).unwrap();
            }
            scores.sort_by(|a, b| b.0.total_cmp(&a.0));
            let hits = scores[..20]
                .iter()
                .filter(|s| outliers.contains(&s.1))
                .count();
            assert!(hits >= 18, "dims {dims}: {hits}/20");
        }
    }

    #[test]
    fn shingled_pattern_break_scores_highest() {
        let mut f = Forest::try_new(ForestParams {
            number_of_trees: 50,
            sample_size: 128,
            ..params(1, 4)
        })
        .unwrap();
        let period = 20usize;
        let broken = 1500..1500 + period;
        let mut best = (0.0, 0usize);
        for i in 0..2500usize {
            let phase = (i % period) as f64 / period as f64 * std::f64::consts::TAU;
            // One broken period: the wave runs backwards (same values, wrong order).
            let v = if broken.contains(&i) {
                -phase.sin()
            } else {
                phase.sin()
            } as f32;
            let s = f.score(&[v]).unwrap();
            if i > 500 && s > best.0 {
                best = (s, i);
            }
            f.update(&[v]).unwrap();
        }
        assert!(
            broken.contains(&best.1) || best.1 < broken.end + 4,
            "highest score at {} ({})",
            best.1,
            best.0
        );
    }

    #[test]
    fn same_seed_same_scores_and_serde_round_trip() {
        let mut rng = Lcg(9);
        let data: Vec<[f32; 2]> = (0..1500)
            .map(|_| [rng.normal() as f32, (rng.next() * 3.0) as f32])
            .collect();
        let mut a = Forest::try_new(params(2, 2)).unwrap();
        let mut b = Forest::try_new(params(2, 2)).unwrap();
        let mut restored: Option<Forest> = None;
        for (i, p) in data.iter().enumerate() {
            let sa = a.score(p).unwrap();
            assert_eq!(sa.to_bits(), b.score(p).unwrap().to_bits(), "row {i}");
            if let Some(r) = restored.as_mut() {
                assert_eq!(
                    sa.to_bits(),
                    r.score(p).unwrap().to_bits(),
                    "restored, row {i}"
                );
                r.update(p).unwrap();
            }
            a.update(p).unwrap();
            b.update(p).unwrap();
            if i == 700 {
                let json = serde_json::to_string(&a).unwrap();
                let r: Forest = serde_json::from_str(&json).unwrap();
                assert_eq!(r, a);
                r.check().unwrap();
                restored = Some(r);
            }
        }
        assert_eq!(restored.unwrap(), a);
        let other = Forest::try_new(ForestParams {
            seed: 18,
            ..params(2, 2)
        })
        .unwrap();
        assert_ne!(other.members[0].rng, a.members[0].rng);
    }

    #[test]
    fn size_grows_with_the_sample() {
        let mut f = Forest::try_new(params(4, 1)).unwrap();
        let empty = f.size();
        let mut rng = Lcg(1);
        for _ in 0..200 {
            let p: Vec<f32> = (0..4).map(|_| rng.normal() as f32).collect();
            f.update(&p).unwrap();
        }
        // Trees preallocate their arenas; the store grows with the sampled points.
        assert!(f.size() > empty + 64 * 4 * 4, "{} vs {empty}", f.size());
        // At least the 50 trees' boxes (63 nodes × 2 × 4 f32) and leaves.
        assert!(f.size() > 50 * 63 * 2 * 4 * 4, "{}", f.size());
    }
}
