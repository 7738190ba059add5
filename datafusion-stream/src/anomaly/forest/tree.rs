//! A random cut tree in a flat arena, with every internal node's bounding box cached.
//!
//! ```text
//!  nodes: Vec<u32>, one record of 8 + 2d words per internal node i, at i·(8 + 2d):
//!    [ left | right | parent | cut_dim | cut_value | mass | range (f64, 2 words) |
//!      min_0 .. min_d-1 | max_0 .. max_d-1 ]            (f32/f64 kept as bit patterns)
//!  leaves: Vec<u32>, one record of 3 words per leaf j: [ point store slot | mass | parent ]
//!  a child reference is `i` (internal) or `j | LEAF`; NIL = no node; free lists reuse slots
//! ```
//!
//! One record holds everything the score needs at a node, so walking back up from the leaf
//! touches the cache lines the descent just loaded (the score is memory-bound: separate
//! arrays for parents, boxes and ranges cost about three cache misses per step up).
//!
//! A point goes left at a node iff `p[cut_dim] <= cut_value` (as in AWS RCF).
//!
//! **Insert** (top-down, equivalent in distribution to AWS's bottom-up walk, where the highest
//! separating cut wins): at each node with box `B` on the way down, if `p` lies outside `B`,
//! draw a cut of `B ∪ {p}` (dimension with probability proportional to its width, value
//! uniform within it); if the cut separates `p` from `B`, a new internal node with that cut
//! replaces the subtree, with the new leaf and the subtree as children. Otherwise the node's
//! mass and box grow and the walk descends. At a leaf, an equal point increases the leaf's
//! mass; a different one is always separated.
//!
//! **Delete** follows the cuts to the point's leaf, decreases its mass or removes it (its
//! sibling takes the parent's place) and shrinks the ancestors' boxes until one is unchanged.
//!
//! **Score** (AWS's `ScalarScoreVisitor` with the standard score functions): from the leaf
//! where the point falls, at depth `d`: a duplicate scores `damp(m, M)·seen(d, m)` and stops;
//! otherwise `unseen(d) = 1/(d+1)`, and at each ancestor at depth `k` with box `B`, with `q`
//! the probability that a random cut of `B ∪ {p}` separates `p` (Σ distance of `p` outside
//! `B` / (Σ widths of `B` + that distance)), `score = (1-q)·score + q/(k+1)`; the walk stops
//! where `q = 0`. The tree's score is `score · log2(1 + M)`, `M` the tree's mass.

use std::hint::select_unpredictable;

use serde::{Deserialize, Serialize};

use super::bits;
use super::rng::SplitMix64;
use super::store::PointStore;

pub(crate) const NIL: u32 = u32::MAX;
const LEAF: u32 = 1 << 31;

// Words of an internal node's record.
const LEFT: usize = 0;
const RIGHT: usize = 1;
const PARENT: usize = 2;
const DIM: usize = 3;
const CUT: usize = 4;
const MASS: usize = 5;
const RANGE_LO: usize = 6;
const RANGE_HI: usize = 7;
const HEADER: usize = 8;

// Words of a leaf's record.
const SLOT: usize = 0;
const LMASS: usize = 1;
const LPARENT: usize = 2;
const LEAF_WORDS: usize = 3;

#[inline]
pub(crate) fn is_leaf(r: u32) -> bool {
    r != NIL && r & LEAF != 0
}

#[inline]
fn leaf_index(r: u32) -> usize {
    (r & !LEAF) as usize
}

#[inline]
fn range_of_record(rec: &[u32]) -> f64 {
    f64::from_bits(((rec[RANGE_HI] as u64) << 32) | rec[RANGE_LO] as u64)
}

#[inline]
fn set_range(rec: &mut [u32], v: f64) {
    let b = v.to_bits();
    rec[RANGE_LO] = b as u32;
    rec[RANGE_HI] = (b >> 32) as u32;
}

#[inline]
fn f(w: u32) -> f32 {
    f32::from_bits(w)
}

/// The child of internal node record `rec` that is not `child`.
#[inline]
fn other_child(rec: &[u32], child: u32) -> u32 {
    if rec[LEFT] == child {
        rec[RIGHT]
    } else {
        rec[LEFT]
    }
}

/// The larger of two finite numbers (one `maxss`; `f32::max` also handles NaN, which costs
/// two more instructions in the hottest loop).
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// `damp(m, M)·seen(d, m)`: the score of a point equal to a leaf of mass `m` at depth `d`.
#[inline]
fn seen_score(depth: u32, leaf_mass: u32, tree_mass: u32) -> f64 {
    let damp = 1.0 - leaf_mass as f64 / (2.0 * tree_mass as f64);
    damp / (depth as f64 + (1.0 + leaf_mass as f64).log2())
}

/// `unseen(d) = 1 / (d + 1)` for every depth a tree of at most 1000 leaves can have.
const UNSEEN: [f64; 1024] = {
    let mut t = [0.0; 1024];
    let mut d = 0;
    while d < 1024 {
        t[d] = 1.0 / (d as f64 + 1.0);
        d += 1;
    }
    t
};

/// `unseen(d) = 1 / (d + 1)`.
#[inline]
fn unseen_score(depth: u32) -> f64 {
    match UNSEEN.get(depth as usize) {
        Some(u) => *u,
        None => 1.0 / (depth as f64 + 1.0),
    }
}

/// Working buffers of one attribution.
pub(crate) struct AttributionScratch {
    attr_high: Vec<f64>,
    attr_low: Vec<f64>,
    prob_high: Vec<f64>,
    prob_low: Vec<f64>,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl AttributionScratch {
    pub fn new(dim: usize) -> Self {
        Self {
            attr_high: vec![0.0; dim],
            attr_low: vec![0.0; dim],
            prob_high: vec![0.0; dim],
            prob_low: vec![0.0; dim],
            min: vec![0.0; dim],
            max: vec![0.0; dim],
        }
    }
}

/// Sets `prob_*` to the per-dimension probability that a random cut of `box ∪ {p}` separates
/// `p` on that side; returns their sum.
fn assign_probability(
    min: impl Fn(usize) -> f32,
    max: impl Fn(usize) -> f32,
    range: f64,
    p: &[f32],
    high: &mut [f64],
    low: &mut [f64],
) -> f64 {
    let mut sum = 0.0;
    for i in 0..p.len() {
        let (a, b) = (min(i), max(i));
        let lo = if a > p[i] { (a - p[i]) as f64 } else { 0.0 };
        let hi = if p[i] > b { (p[i] - b) as f64 } else { 0.0 };
        low[i] = lo;
        high[i] = hi;
        sum += lo + hi;
    }
    if sum == 0.0 {
        return 0.0;
    }
    let scale = 1.0 / (range + sum);
    let mut total = 0.0;
    for i in 0..p.len() {
        low[i] *= scale;
        high[i] *= scale;
        total += low[i] + high[i];
    }
    total
}

/// Draws a random cut of `[min, max] ∪ {p}` with `r` uniform in [0, 1): the dimension with
/// probability proportional to its width, the value uniform in `[lo, hi)`.
fn draw_cut(
    min: impl Fn(usize) -> f32,
    max: impl Fn(usize) -> f32,
    p: &[f32],
    r: f64,
) -> Option<(usize, f32)> {
    let mut total = 0.0f64;
    for (i, &v) in p.iter().enumerate() {
        total += (max(i).max(v) - min(i).min(v)) as f64;
    }
    let mut x = r * total;
    let mut last = None;
    for (i, &v) in p.iter().enumerate() {
        let lo = min(i).min(v);
        let hi = max(i).max(v);
        let gap = (hi - lo) as f64;
        if gap > 0.0 {
            last = Some((i, lo));
            if x < gap {
                let c = lo + x as f32;
                let c = if c > lo && c < hi { c } else { lo };
                return Some((i, c));
            }
            x -= gap;
        }
    }
    // Rounding ran past the last dimension: cut at the low end of the last one with width.
    last
}

/// Whether cut `(k, c)` puts `p` on one side and the whole box on the other.
#[inline]
fn separates(min_k: f32, max_k: f32, p_k: f32, c: f32) -> bool {
    (p_k <= c && c < min_k) || (max_k <= c && c < p_k)
}

/// One random cut tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    dim: usize,
    /// Words per internal node record: `HEADER + 2·dim`.
    stride: usize,
    root: u32,
    /// Number of points (with duplicates).
    mass: u32,
    /// `log2(1 + mass)`, the score normaliser.
    #[serde(with = "bits::f64_bits")]
    norm: f64,
    nodes: Vec<u32>,
    free_nodes: Vec<u32>,
    leaves: Vec<u32>,
    free_leaves: Vec<u32>,
}

impl Tree {
    pub fn new(dim: usize, capacity: usize) -> Self {
        let stride = HEADER + 2 * dim;
        let nodes = Vec::with_capacity(capacity.saturating_sub(1) * stride);
        Self {
            dim,
            stride,
            root: NIL,
            mass: 0,
            norm: 0.0,
            nodes,
            free_nodes: Vec::new(),
            leaves: Vec::with_capacity(capacity * LEAF_WORDS),
            free_leaves: Vec::new(),
        }
    }

    fn set_mass(&mut self, m: u32) {
        self.mass = m;
        self.norm = (1.0 + m as f64).log2();
    }

    #[inline]
    fn rec(&self, n: u32) -> &[u32] {
        let s = n as usize * self.stride;
        &self.nodes[s..s + self.stride]
    }

    #[inline]
    fn rec_mut(&mut self, n: u32) -> &mut [u32] {
        let s = n as usize * self.stride;
        &mut self.nodes[s..s + self.stride]
    }

    #[inline]
    fn leaf(&self, j: usize) -> &[u32] {
        &self.leaves[j * LEAF_WORDS..(j + 1) * LEAF_WORDS]
    }

    #[inline]
    fn leaf_mut(&mut self, j: usize) -> &mut [u32] {
        &mut self.leaves[j * LEAF_WORDS..(j + 1) * LEAF_WORDS]
    }

    fn parent_of(&self, r: u32) -> u32 {
        if is_leaf(r) {
            self.leaf(leaf_index(r))[LPARENT]
        } else {
            self.rec(r)[PARENT]
        }
    }

    fn set_parent(&mut self, r: u32, p: u32) {
        if is_leaf(r) {
            self.leaf_mut(leaf_index(r))[LPARENT] = p;
        } else {
            self.rec_mut(r)[PARENT] = p;
        }
    }

    fn mass_of(&self, r: u32) -> u32 {
        if is_leaf(r) {
            self.leaf(leaf_index(r))[LMASS]
        } else {
            self.rec(r)[MASS]
        }
    }

    /// Lower and upper bound of child reference `r`'s box in dimension `i`.
    #[inline]
    fn bounds(&self, r: u32, store: &PointStore, i: usize) -> (f32, f32) {
        if is_leaf(r) {
            let v = store.point(self.leaf(leaf_index(r))[SLOT])[i];
            (v, v)
        } else {
            let rec = self.rec(r);
            (f(rec[HEADER + i]), f(rec[HEADER + self.dim + i]))
        }
    }

    /// Replaces the child `old` of internal node `up` (or the root when `up` is NIL) by `new`.
    fn replace_child(&mut self, up: u32, old: u32, new: u32) {
        if up == NIL {
            self.root = new;
            return;
        }
        let rec = self.rec_mut(up);
        if rec[LEFT] == old {
            rec[LEFT] = new;
        } else {
            rec[RIGHT] = new;
        }
    }

    fn alloc_leaf(&mut self, slot: u32, parent: u32) -> u32 {
        let j = match self.free_leaves.pop() {
            Some(j) => j as usize,
            None => {
                self.leaves.extend_from_slice(&[0; LEAF_WORDS]);
                self.leaves.len() / LEAF_WORDS - 1
            }
        };
        self.leaf_mut(j).copy_from_slice(&[slot, 1, parent]);
        j as u32 | LEAF
    }

    fn alloc_node(&mut self) -> u32 {
        match self.free_nodes.pop() {
            Some(n) => n,
            None => {
                self.nodes.resize(self.nodes.len() + self.stride, 0);
                (self.nodes.len() / self.stride - 1) as u32
            }
        }
    }

    /// Adds the point `p` stored in slot `slot`; returns the slot the tree now refers to (an
    /// existing slot when `p` equals a leaf's point, whose mass then grows).
    pub fn insert(
        &mut self,
        p: &[f32],
        slot: u32,
        store: &PointStore,
        rng: &mut SplitMix64,
    ) -> u32 {
        if self.root == NIL {
            self.root = self.alloc_leaf(slot, NIL);
            self.set_mass(1);
            return slot;
        }
        let d = self.dim;
        let mut r = self.root;
        loop {
            if is_leaf(r) {
                let j = leaf_index(r);
                let kept = self.leaf(j)[SLOT];
                let q = store.point(kept);
                if q == p {
                    self.leaf_mut(j)[LMASS] += 1;
                    self.set_mass(self.mass + 1);
                    return kept;
                }
                let u = rng.next_f64();
                let cut = draw_cut(|i| q[i], |i| q[i], p, u)
                    .filter(|&(k, c)| separates(q[k], q[k], p[k], c))
                    .or_else(|| {
                        // Cannot happen with exact arithmetic; any differing dimension, cut at
                        // the lower value, separates.
                        (0..d).find(|&k| q[k] != p[k]).map(|k| (k, q[k].min(p[k])))
                    });
                if let Some((k, c)) = cut {
                    self.insert_above(r, k, c, p, slot, store);
                    self.set_mass(self.mass + 1);
                    return slot;
                }
                // Unreachable (q != p); keep the tree consistent anyway.
                self.leaf_mut(j)[LMASS] += 1;
                self.set_mass(self.mass + 1);
                return kept;
            }
            let rec = self.rec(r);
            let outside =
                (0..d).any(|i| p[i] < f(rec[HEADER + i]) || p[i] > f(rec[HEADER + d + i]));
            if outside {
                let u = rng.next_f64();
                let min = |i: usize| f(rec[HEADER + i]);
                let max = |i: usize| f(rec[HEADER + d + i]);
                if let Some((k, c)) = draw_cut(min, max, p, u) {
                    if separates(min(k), max(k), p[k], c) {
                        self.insert_above(r, k, c, p, slot, store);
                        self.set_mass(self.mass + 1);
                        return slot;
                    }
                }
                let rec = self.rec_mut(r);
                let mut range = 0.0f64;
                for i in 0..d {
                    let lo = f(rec[HEADER + i]).min(p[i]);
                    let hi = f(rec[HEADER + d + i]).max(p[i]);
                    rec[HEADER + i] = lo.to_bits();
                    rec[HEADER + d + i] = hi.to_bits();
                    range += (hi - lo) as f64;
                }
                set_range(rec, range);
            }
            self.rec_mut(r)[MASS] += 1;
            r = self.step(r, p);
        }
    }

    /// Puts a new internal node with cut `(k, c)` in the place of subtree `r`, with children
    /// `r` and a new leaf for `p`.
    fn insert_above(&mut self, r: u32, k: usize, c: f32, p: &[f32], slot: u32, store: &PointStore) {
        let d = self.dim;
        let up = self.parent_of(r);
        let n = self.alloc_node();
        let leaf = self.alloc_leaf(slot, n);
        let (left, right) = if p[k] <= c { (leaf, r) } else { (r, leaf) };
        let mass = self.mass_of(r) + 1;
        let mut range = 0.0f64;
        for (i, &v) in p.iter().enumerate() {
            let (a, b) = self.bounds(r, store, i);
            let (lo, hi) = (a.min(v), b.max(v));
            let rec = self.rec_mut(n);
            rec[HEADER + i] = lo.to_bits();
            rec[HEADER + d + i] = hi.to_bits();
            range += (hi - lo) as f64;
        }
        let rec = self.rec_mut(n);
        rec[LEFT] = left;
        rec[RIGHT] = right;
        rec[PARENT] = up;
        rec[DIM] = k as u32;
        rec[CUT] = c.to_bits();
        rec[MASS] = mass;
        set_range(rec, range);
        self.set_parent(r, n);
        self.replace_child(up, r, n);
    }

    /// Follows the cuts to the leaf where `p` falls; returns (leaf index, depth).
    #[inline]
    fn descend(&self, p: &[f32]) -> (usize, u32) {
        let mut r = self.root;
        let mut depth = 0u32;
        while !is_leaf(r) {
            r = self.step(r, p);
            depth += 1;
        }
        (leaf_index(r), depth)
    }

    /// Removes one copy of point `p` (stored in some leaf); returns that leaf's slot.
    pub fn delete(&mut self, p: &[f32], store: &PointStore) -> Result<u32, String> {
        if self.root == NIL {
            return Err("random cut tree: deleting from an empty tree".into());
        }
        let (j, _) = self.descend(p);
        let [slot, lmass, par] = [
            self.leaf(j)[SLOT],
            self.leaf(j)[LMASS],
            self.leaf(j)[LPARENT],
        ];
        if store.point(slot) != p {
            return Err("random cut tree: the point to delete is not in the tree".into());
        }
        self.set_mass(self.mass - 1);
        if lmass > 1 {
            self.leaf_mut(j)[LMASS] -= 1;
            let mut a = par;
            while a != NIL {
                let rec = self.rec_mut(a);
                rec[MASS] -= 1;
                a = rec[PARENT];
            }
            return Ok(slot);
        }
        self.free_leaves.push(j as u32);
        if par == NIL {
            self.root = NIL;
            return Ok(slot);
        }
        let me = j as u32 | LEAF;
        let prec = self.rec(par);
        let sibling = other_child(prec, me);
        let grand = prec[PARENT];
        self.set_parent(sibling, grand);
        self.replace_child(grand, par, sibling);
        self.free_nodes.push(par);
        // Ancestors: one point less; boxes shrink until one is unchanged.
        let d = self.dim;
        let mut fix = true;
        let mut a = grand;
        while a != NIL {
            if fix {
                let (left, right) = (self.rec(a)[LEFT], self.rec(a)[RIGHT]);
                let mut changed = false;
                let mut range = 0.0f64;
                for i in 0..d {
                    let (l0, l1) = self.bounds(left, store, i);
                    let (r0, r1) = self.bounds(right, store, i);
                    let (lo, hi) = (l0.min(r0), l1.max(r1));
                    let rec = self.rec_mut(a);
                    if rec[HEADER + i] != lo.to_bits() || rec[HEADER + d + i] != hi.to_bits() {
                        changed = true;
                        rec[HEADER + i] = lo.to_bits();
                        rec[HEADER + d + i] = hi.to_bits();
                    }
                    range += (hi - lo) as f64;
                }
                if changed {
                    set_range(self.rec_mut(a), range);
                } else {
                    fix = false;
                }
            }
            let rec = self.rec_mut(a);
            rec[MASS] -= 1;
            a = rec[PARENT];
        }
        Ok(slot)
    }

    /// The root's reference (NIL when empty): where a descent starts.
    #[inline]
    pub fn root(&self) -> u32 {
        self.root
    }

    /// One step of the descent from internal node `r` (not a leaf, not NIL).
    #[inline]
    pub fn step(&self, r: u32, p: &[f32]) -> u32 {
        let rec = self.rec(r);
        if p[rec[DIM] as usize] <= f(rec[CUT]) {
            rec[LEFT]
        } else {
            rec[RIGHT]
        }
    }

    /// The tree's anomaly score of `p` (0 for an empty tree). The forest uses
    /// [`Self::step`] and [`Self::score_from_leaf`] to descend several trees in lockstep.
    #[inline]
    pub fn score(&self, p: &[f32], store: &PointStore) -> f64 {
        if self.root == NIL {
            return 0.0;
        }
        let (j, depth) = self.descend(p);
        self.score_from_leaf(j as u32 | LEAF, depth, p, store)
    }

    /// The score of `p` given the leaf reference where it falls and that leaf's depth (the
    /// walk back up to the root; see [`Self::score`]).
    #[inline]
    pub fn score_from_leaf(&self, r: u32, leaf_depth: u32, p: &[f32], store: &PointStore) -> f64 {
        // Specialised for 1–4 dimensions, so the box loop is unrolled.
        match self.dim {
            1 => self.score_from_leaf_in::<1>(r, leaf_depth, p, store),
            2 => self.score_from_leaf_in::<2>(r, leaf_depth, p, store),
            3 => self.score_from_leaf_in::<3>(r, leaf_depth, p, store),
            4 => self.score_from_leaf_in::<4>(r, leaf_depth, p, store),
            _ => self.score_from_leaf_in::<0>(r, leaf_depth, p, store),
        }
    }

    /// [`Self::score_from_leaf`] with `D` dimensions (0: `self.dim`, not known in advance).
    #[inline(always)]
    fn score_from_leaf_in<const D: usize>(
        &self,
        r: u32,
        leaf_depth: u32,
        p: &[f32],
        store: &PointStore,
    ) -> f64 {
        let leaf = self.leaf(leaf_index(r));
        let d = if D == 0 { self.dim } else { D };
        let mut score = unseen_score(leaf_depth);
        let mut depth = leaf_depth;
        let mut a = leaf[LPARENT];
        // Whether `p` may still equal the leaf's point: only if it lies inside the parent's
        // box (which contains the leaf). Checking the box first usually spares the load of
        // the stored point, a cache miss.
        let mut may_be_duplicate = true;
        while a != NIL {
            depth -= 1;
            let rec = self.rec(a);
            let (min, max) = rec[HEADER..].split_at(d);
            let mut out = 0.0f64;
            for i in 0..d {
                // How far p lies outside [min, max] in dimension i: at most one of the two
                // differences is positive (min <= max), so this is the sum of their positive
                // parts, in 3 instructions (every value is finite).
                let gap = larger(larger(f(min[i]) - p[i], p[i] - f(max[i])), 0.0);
                out += gap as f64;
            }
            if out == 0.0 {
                break;
            }
            may_be_duplicate = false;
            let q = out / (range_of_record(rec) + out);
            score = (1.0 - q) * score + q * unseen_score(depth);
            a = rec[PARENT];
        }
        if may_be_duplicate && store.point(leaf[SLOT]) == p {
            return seen_score(leaf_depth, leaf[LMASS], self.mass) * self.norm;
        }
        score * self.norm
    }

    /// The scores of `L` points at once (`out[l]` = [`Self::score`] of `ps[l]`, bit for bit):
    /// the descents in lockstep ([`Self::leaves_lanes`]), then the walks back up. Those are
    /// short (1–4 steps for 1–4 dimensions) and run one lane after the other: in lockstep,
    /// every lane would wait for the longest walk, which measured slower.
    pub fn score_lanes<const L: usize>(
        &self,
        ps: &[&[f32]; L],
        store: &PointStore,
        out: &mut [f64; L],
    ) {
        let Some((at, depth)) = self.leaves_lanes(ps) else {
            *out = [0.0; L];
            return;
        };
        for l in 0..L {
            out[l] = self.score_from_leaf(at[l], depth[l], ps[l], store);
        }
    }

    /// The leaf where each of `L` points falls and its depth (`None` for an empty tree). The
    /// descents run in lockstep, so the dependent loads of one overlap with the others', and
    /// every step is branch-free: a lane that has reached its leaf re-reads the root's record
    /// and keeps its place (`select_unpredictable`, so the compiler does not turn the choice
    /// into a branch that mispredicts whenever a lane arrives), leaving one loop-exit branch
    /// per step for all lanes.
    #[inline(always)]
    pub(crate) fn leaves_lanes<const L: usize>(
        &self,
        ps: &[&[f32]; L],
    ) -> Option<([u32; L], [u32; L])> {
        let root = self.root;
        if root == NIL {
            return None;
        }
        let mut at = [root; L];
        let mut depth = [0u32; L];
        if !is_leaf(root) {
            loop {
                let mut moving = false;
                for l in 0..L {
                    let internal = !is_leaf(at[l]);
                    // Only the header: its fixed length lets the constant indexes go unchecked.
                    let n = select_unpredictable(internal, at[l], root) as usize * self.stride;
                    let rec = &self.nodes[n..n + HEADER];
                    // Left iff p[dim] <= cut (LEFT = 0, RIGHT = 1).
                    let left = ps[l][rec[DIM] as usize] <= f(rec[CUT]);
                    let next = rec[RIGHT - left as usize];
                    at[l] = select_unpredictable(internal, next, at[l]);
                    depth[l] += internal as u32;
                    moving |= internal;
                }
                if !moving {
                    break;
                }
            }
        }
        Some((at, depth))
    }

    /// Adds this tree's attribution of `p` (a DiVector summing to the tree's score) to
    /// `high`/`low` (AWS's `AttributionVisitor`).
    pub(crate) fn attribution(
        &self,
        p: &[f32],
        store: &PointStore,
        w: &mut AttributionScratch,
        high: &mut [f64],
        low: &mut [f64],
    ) {
        if self.root == NIL {
            return;
        }
        let (j, depth) = self.descend(p);
        self.attribution_from_leaf(j as u32 | LEAF, depth, p, store, w, high, low);
    }

    /// [`Self::attribution`] given the leaf reference where `p` falls and that leaf's depth
    /// (the walk back up to the root).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attribution_from_leaf(
        &self,
        r: u32,
        mut depth: u32,
        p: &[f32],
        store: &PointStore,
        w: &mut AttributionScratch,
        high: &mut [f64],
        low: &mut [f64],
    ) {
        let d = self.dim;
        let j = leaf_index(r);
        let leaf = self.leaf(j);
        let q = store.point(leaf[SLOT]);
        w.attr_high.iter_mut().for_each(|x| *x = 0.0);
        w.attr_low.iter_mut().for_each(|x| *x = 0.0);
        let duplicate = q == p;
        let mut score;
        let mut shadow_set = false;
        if duplicate {
            score = seen_score(depth, leaf[LMASS], self.mass);
        } else {
            score = unseen_score(depth);
            assign_probability(
                |i| q[i],
                |i| q[i],
                0.0,
                p,
                &mut w.prob_high,
                &mut w.prob_low,
            );
            for i in 0..d {
                w.attr_high[i] += w.prob_high[i] * score;
                w.attr_low[i] += w.prob_low[i] * score;
            }
        }
        let mut child = j as u32 | LEAF;
        let mut a = leaf[LPARENT];
        while a != NIL {
            depth -= 1;
            let rec = self.rec(a);
            let prob = if duplicate {
                // The shadow box: the ancestors' boxes without the duplicate's leaf.
                let sibling = other_child(rec, child);
                for i in 0..d {
                    let (lo, hi) = self.bounds(sibling, store, i);
                    if !shadow_set || lo < w.min[i] {
                        w.min[i] = lo;
                    }
                    if !shadow_set || hi > w.max[i] {
                        w.max[i] = hi;
                    }
                }
                shadow_set = true;
                let range: f64 = (0..d).map(|i| (w.max[i] - w.min[i]) as f64).sum();
                let (smin, smax) = (&w.min, &w.max);
                assign_probability(
                    |i| smin[i],
                    |i| smax[i],
                    range,
                    p,
                    &mut w.prob_high,
                    &mut w.prob_low,
                )
            } else {
                assign_probability(
                    |i| f(rec[HEADER + i]),
                    |i| f(rec[HEADER + d + i]),
                    range_of_record(rec),
                    p,
                    &mut w.prob_high,
                    &mut w.prob_low,
                )
            };
            if prob == 0.0 {
                break;
            }
            let new = unseen_score(depth);
            if !duplicate {
                score = (1.0 - prob) * score + prob * new;
            }
            for i in 0..d {
                w.attr_high[i] = w.attr_high[i] * (1.0 - prob) + w.prob_high[i] * new;
                w.attr_low[i] = w.attr_low[i] * (1.0 - prob) + w.prob_low[i] * new;
            }
            child = a;
            a = rec[PARENT];
        }
        let t = score * self.norm;
        let total: f64 = w.attr_high.iter().sum::<f64>() + w.attr_low.iter().sum::<f64>();
        if total <= 0.0 {
            let v = t / (2.0 * d as f64);
            for i in 0..d {
                high[i] += v;
                low[i] += v;
            }
        } else {
            let s = t / total;
            for i in 0..d {
                high[i] += w.attr_high[i] * s;
                low[i] += w.attr_low[i] * s;
            }
        }
    }

    /// Approximate bytes.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.nodes.capacity()
                + self.free_nodes.capacity()
                + self.leaves.capacity()
                + self.free_leaves.capacity())
                * 4
    }

    /// Checks that every index in the tree is in range and the nodes reachable from the root
    /// form a tree whose records are not on a free list, without indexing out of range:
    /// what [`Self::check`] and every other method rely on. For a tree read from a
    /// checkpoint, before anything else touches it.
    pub fn validate(&self, dim: usize, capacity: usize, store: &PointStore) -> Result<(), String> {
        let bad = |what: &str| Err(format!("random cut tree: {what}"));
        if self.dim != dim || self.stride != HEADER + 2 * dim {
            return bad("wrong dimensions");
        }
        if !self.nodes.len().is_multiple_of(self.stride)
            || !self.leaves.len().is_multiple_of(LEAF_WORDS)
        {
            return bad("inconsistent arena sizes");
        }
        let nodes = self.nodes.len() / self.stride;
        let leaves = self.leaves.len() / LEAF_WORDS;
        let mut seen_node = vec![false; nodes];
        let mut seen_leaf = vec![false; leaves];
        for &n in &self.free_nodes {
            match seen_node.get_mut(n as usize) {
                Some(s) if !*s => *s = true,
                _ => return bad("free node list out of range or repeated"),
            }
        }
        for &j in &self.free_leaves {
            match seen_leaf.get_mut(j as usize) {
                Some(s) if !*s => *s = true,
                _ => return bad("free leaf list out of range or repeated"),
            }
        }
        let mut stack = Vec::new();
        if self.root != NIL {
            stack.push(self.root);
        }
        let mut mass = 0usize;
        while let Some(r) = stack.pop() {
            if is_leaf(r) {
                let j = leaf_index(r);
                match seen_leaf.get_mut(j) {
                    Some(s) if !*s => *s = true,
                    _ => return bad("a leaf reference is out of range, free or shared"),
                }
                let leaf = self.leaf(j);
                if !store.contains(leaf[SLOT]) {
                    return bad("a leaf refers to a missing point slot");
                }
                mass += leaf[LMASS] as usize;
                if leaf[LMASS] == 0 || mass > capacity {
                    return bad("leaf masses do not fit the sample size");
                }
            } else {
                match seen_node.get_mut(r as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return bad("a node reference is out of range, free or shared"),
                }
                let rec = self.rec(r);
                if rec[DIM] as usize >= dim {
                    return bad("a cut dimension is out of range");
                }
                stack.extend([rec[LEFT], rec[RIGHT]]);
            }
        }
        if seen_node.contains(&false) || seen_leaf.contains(&false) {
            return bad("a record is neither in the tree nor free");
        }
        Ok(())
    }

    /// Checks every structural invariant (boxes are the exact hull of their points, masses
    /// add up, parent links, cuts separate the children); returns the leaf slots with their
    /// masses.
    pub fn check(&self, store: &PointStore) -> Result<Vec<(u32, u32)>, String> {
        let mut leaves = Vec::new();
        if self.stride != HEADER + 2 * self.dim
            || !self.nodes.len().is_multiple_of(self.stride)
            || !self.leaves.len().is_multiple_of(LEAF_WORDS)
        {
            return Err("random cut tree: inconsistent arena sizes".into());
        }
        if self.root == NIL {
            return if self.mass == 0 {
                Ok(leaves)
            } else {
                Err("empty tree with mass".into())
            };
        }
        if self.parent_of(self.root) != NIL {
            return Err("root has a parent".into());
        }
        type Hull = (Vec<f32>, Vec<f32>, u32);
        fn walk(
            t: &Tree,
            r: u32,
            store: &PointStore,
            leaves: &mut Vec<(u32, u32)>,
        ) -> Result<Hull, String> {
            if is_leaf(r) {
                let leaf = t.leaf(leaf_index(r));
                if !store.contains(leaf[SLOT]) {
                    return Err("leaf refers to a missing slot".into());
                }
                let q = store.point(leaf[SLOT]).to_vec();
                leaves.push((leaf[SLOT], leaf[LMASS]));
                return Ok((q.clone(), q, leaf[LMASS]));
            }
            let rec = t.rec(r);
            for c in [rec[LEFT], rec[RIGHT]] {
                if t.parent_of(c) != r {
                    return Err(format!("bad parent link under {r}"));
                }
            }
            let (lmin, lmax, lm) = walk(t, rec[LEFT], store, leaves)?;
            let (rmin, rmax, rm) = walk(t, rec[RIGHT], store, leaves)?;
            let k = rec[DIM] as usize;
            if !(lmax[k] <= f(rec[CUT]) && rmin[k] > f(rec[CUT])) {
                return Err(format!("cut of node {r} does not separate its children"));
            }
            let min: Vec<f32> = lmin.iter().zip(&rmin).map(|(a, b)| a.min(*b)).collect();
            let max: Vec<f32> = lmax.iter().zip(&rmax).map(|(a, b)| a.max(*b)).collect();
            let d = t.dim;
            let bmin: Vec<f32> = (0..d).map(|i| f(rec[HEADER + i])).collect();
            let bmax: Vec<f32> = (0..d).map(|i| f(rec[HEADER + d + i])).collect();
            if bmin != min || bmax != max {
                return Err(format!("stale box at node {r}"));
            }
            let range: f64 = min.iter().zip(&max).map(|(a, b)| (b - a) as f64).sum();
            if range_of_record(rec) != range {
                return Err(format!("stale range at node {r}"));
            }
            if rec[MASS] != lm + rm {
                return Err(format!("wrong mass at node {r}"));
            }
            Ok((min, max, lm + rm))
        }
        let (_, _, m) = walk(self, self.root, store, &mut leaves)?;
        if m != self.mass {
            return Err("tree mass differs from the leaves' total".into());
        }
        if self.norm != (1.0 + self.mass as f64).log2() {
            return Err("stale normaliser".into());
        }
        Ok(leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(store: &mut PointStore, p: &[f32]) -> u32 {
        store.alloc(p)
    }

    /// Random inserts and deletes (with duplicates) keep every invariant.
    #[test]
    fn inserts_and_deletes_keep_invariants() {
        for dim in [1usize, 3] {
            let mut store = PointStore::new(dim);
            let mut tree = Tree::new(dim, 64);
            let mut rng = SplitMix64::new(42);
            let mut data = SplitMix64::new(7);
            let mut live: Vec<Vec<f32>> = Vec::new();
            for step in 0..5_000 {
                if live.len() < 64 && (live.len() < 32 || data.next_f64() < 0.5) {
                    // Coarse values so duplicates happen.
                    let p: Vec<f32> = (0..dim)
                        .map(|_| (data.next_f64() * 8.0).floor() as f32)
                        .collect();
                    let s = pt(&mut store, &p);
                    tree.insert(&p, s, &store, &mut rng);
                    live.push(p);
                } else {
                    let k = (data.next_f64() * live.len() as f64) as usize;
                    let p = live.swap_remove(k);
                    tree.delete(&p, &store).unwrap();
                }
                let leaves = tree
                    .check(&store)
                    .unwrap_or_else(|e| panic!("step {step}: {e}"));
                let total: u32 = leaves.iter().map(|l| l.1).sum();
                assert_eq!(total as usize, live.len());
            }
            assert!(tree.delete(&vec![100.0; dim], &store).is_err());
        }
    }

    #[test]
    fn single_point_and_duplicate_scores() {
        let mut store = PointStore::new(2);
        let mut tree = Tree::new(2, 8);
        let mut rng = SplitMix64::new(1);
        assert_eq!(tree.score(&[0.0, 0.0], &store), 0.0);
        let a = [1.0f32, 2.0];
        let s = store.alloc(&a);
        tree.insert(&a, s, &store, &mut rng);
        // A duplicate of the only point: damp(1,1)·seen(0,1)·log2(2) = 0.5 · 1 · 1.
        assert_eq!(tree.score(&a, &store), 0.5);
        // Any other point: unseen(0)·log2(2) = 1.
        assert_eq!(tree.score(&[5.0, 2.0], &store), 1.0);
    }
}
