//! A random cut tree in a flat arena, with every internal node's bounding box cached.
//!
//! ```text
//!  nodes[i]   = { left, right, cut_dim, cut_value }   internal node i (16 bytes, the descent)
//!  parent[i], mass[i], range[i] (Σ box widths), boxes[i*2d .. i*2d+2d] = [min_0..d | max_0..d]
//!  leaf_point[j] (point store slot), leaf_mass[j] (duplicates), leaf_parent[j]
//!  a child reference is `i` (internal) or `j | LEAF`; NIL = no node; free lists reuse slots
//! ```
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

use serde::{Deserialize, Serialize};

use super::bits;
use super::rng::SplitMix64;
use super::store::PointStore;

pub(crate) const NIL: u32 = u32::MAX;
const LEAF: u32 = 1 << 31;

#[inline]
fn is_leaf(r: u32) -> bool {
    r != NIL && r & LEAF != 0
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    left: u32,
    right: u32,
    dim: u32,
    #[serde(with = "bits::f32_bits")]
    cut: f32,
}

/// `damp(m, M)·seen(d, m)`: the score of a point equal to a leaf of mass `m` at depth `d`.
#[inline]
fn seen_score(depth: u32, leaf_mass: u32, tree_mass: u32) -> f64 {
    let damp = 1.0 - leaf_mass as f64 / (2.0 * tree_mass as f64);
    damp / (depth as f64 + (1.0 + leaf_mass as f64).log2())
}

/// `unseen(d) = 1 / (d + 1)`.
#[inline]
fn unseen_score(depth: u32) -> f64 {
    1.0 / (depth as f64 + 1.0)
}

/// Working buffers of one attribution.
pub(crate) struct AttributionScratch {
    attr_high: Vec<f64>,
    attr_low: Vec<f64>,
    prob_high: Vec<f64>,
    prob_low: Vec<f64>,
    shadow: Vec<f32>,
}

impl AttributionScratch {
    pub fn new(dim: usize) -> Self {
        Self {
            attr_high: vec![0.0; dim],
            attr_low: vec![0.0; dim],
            prob_high: vec![0.0; dim],
            prob_low: vec![0.0; dim],
            shadow: vec![0.0; 2 * dim],
        }
    }
}

/// Sets `prob_*` to the per-dimension probability that a random cut of `box ∪ {p}` separates
/// `p` on that side; returns their sum.
fn assign_probability(
    min: &[f32],
    max: &[f32],
    range: f64,
    p: &[f32],
    high: &mut [f64],
    low: &mut [f64],
) -> f64 {
    let mut sum = 0.0;
    for i in 0..p.len() {
        let lo = if min[i] > p[i] {
            (min[i] - p[i]) as f64
        } else {
            0.0
        };
        let hi = if p[i] > max[i] {
            (p[i] - max[i]) as f64
        } else {
            0.0
        };
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

fn range_of(min: &[f32], max: &[f32]) -> f64 {
    min.iter().zip(max).map(|(a, b)| (b - a) as f64).sum()
}

/// One random cut tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    dim: usize,
    root: u32,
    /// Number of points (with duplicates).
    mass: u32,
    /// `log2(1 + mass)`, the score normaliser.
    #[serde(with = "bits::f64_bits")]
    norm: f64,
    nodes: Vec<Node>,
    parent: Vec<u32>,
    node_mass: Vec<u32>,
    #[serde(with = "bits::f64s_bits")]
    range: Vec<f64>,
    #[serde(with = "bits::f32s_bits")]
    boxes: Vec<f32>,
    free_nodes: Vec<u32>,
    leaf_point: Vec<u32>,
    leaf_mass: Vec<u32>,
    leaf_parent: Vec<u32>,
    free_leaves: Vec<u32>,
}

impl Tree {
    pub fn new(dim: usize, capacity: usize) -> Self {
        Self {
            dim,
            root: NIL,
            mass: 0,
            norm: 0.0,
            nodes: Vec::with_capacity(capacity.saturating_sub(1)),
            parent: Vec::with_capacity(capacity.saturating_sub(1)),
            node_mass: Vec::with_capacity(capacity.saturating_sub(1)),
            range: Vec::with_capacity(capacity.saturating_sub(1)),
            boxes: Vec::with_capacity(capacity.saturating_sub(1) * 2 * dim),
            free_nodes: Vec::new(),
            leaf_point: Vec::with_capacity(capacity),
            leaf_mass: Vec::with_capacity(capacity),
            leaf_parent: Vec::with_capacity(capacity),
            free_leaves: Vec::new(),
        }
    }

    fn set_mass(&mut self, m: u32) {
        self.mass = m;
        self.norm = (1.0 + m as f64).log2();
    }

    #[inline]
    fn box_of(&self, n: usize) -> (&[f32], &[f32]) {
        let s = n * 2 * self.dim;
        self.boxes[s..s + 2 * self.dim].split_at(self.dim)
    }

    #[inline]
    fn box_mut(&mut self, n: usize) -> (&mut [f32], &mut [f32]) {
        let s = n * 2 * self.dim;
        self.boxes[s..s + 2 * self.dim].split_at_mut(self.dim)
    }

    fn parent_of(&self, r: u32) -> u32 {
        if is_leaf(r) {
            self.leaf_parent[(r & !LEAF) as usize]
        } else {
            self.parent[r as usize]
        }
    }

    fn set_parent(&mut self, r: u32, p: u32) {
        if is_leaf(r) {
            self.leaf_parent[(r & !LEAF) as usize] = p;
        } else {
            self.parent[r as usize] = p;
        }
    }

    fn mass_of(&self, r: u32) -> u32 {
        if is_leaf(r) {
            self.leaf_mass[(r & !LEAF) as usize]
        } else {
            self.node_mass[r as usize]
        }
    }

    /// Copies the box of child reference `r` into `min`/`max`.
    fn copy_box(&self, r: u32, store: &PointStore, min: &mut [f32], max: &mut [f32]) {
        if is_leaf(r) {
            let q = store.point(self.leaf_point[(r & !LEAF) as usize]);
            min.copy_from_slice(q);
            max.copy_from_slice(q);
        } else {
            let (a, b) = self.box_of(r as usize);
            min.copy_from_slice(a);
            max.copy_from_slice(b);
        }
    }

    /// Widens `min`/`max` to include the box of child reference `r`.
    fn merge_box(&self, r: u32, store: &PointStore, min: &mut [f32], max: &mut [f32]) {
        let (a, b) = if is_leaf(r) {
            let q = store.point(self.leaf_point[(r & !LEAF) as usize]);
            (q, q)
        } else {
            self.box_of(r as usize)
        };
        for i in 0..self.dim {
            if a[i] < min[i] {
                min[i] = a[i];
            }
            if b[i] > max[i] {
                max[i] = b[i];
            }
        }
    }

    fn alloc_leaf(&mut self, point: u32, parent: u32) -> u32 {
        if let Some(j) = self.free_leaves.pop() {
            let j = j as usize;
            self.leaf_point[j] = point;
            self.leaf_mass[j] = 1;
            self.leaf_parent[j] = parent;
            j as u32 | LEAF
        } else {
            self.leaf_point.push(point);
            self.leaf_mass.push(1);
            self.leaf_parent.push(parent);
            (self.leaf_point.len() - 1) as u32 | LEAF
        }
    }

    fn alloc_node(&mut self) -> u32 {
        if let Some(i) = self.free_nodes.pop() {
            i
        } else {
            self.nodes.push(Node {
                left: NIL,
                right: NIL,
                dim: 0,
                cut: 0.0,
            });
            self.parent.push(NIL);
            self.node_mass.push(0);
            self.range.push(0.0);
            self.boxes.resize(self.boxes.len() + 2 * self.dim, 0.0);
            (self.nodes.len() - 1) as u32
        }
    }

    /// Draws a random cut of `[min, max] ∪ {p}` with `r` uniform in [0, 1): the dimension
    /// with probability proportional to its width, the value uniform in `[lo, hi)`.
    fn draw_cut(min: &[f32], max: &[f32], p: &[f32], r: f64) -> Option<(usize, f32)> {
        let mut total = 0.0f64;
        for i in 0..p.len() {
            total += (max[i].max(p[i]) - min[i].min(p[i])) as f64;
        }
        let mut x = r * total;
        let mut last = None;
        for i in 0..p.len() {
            let lo = min[i].min(p[i]);
            let hi = max[i].max(p[i]);
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

    #[inline]
    fn separates(min: &[f32], max: &[f32], p: &[f32], d: usize, c: f32) -> bool {
        (p[d] <= c && c < min[d]) || (max[d] <= c && c < p[d])
    }

    /// Adds the point `p` stored in slot `slot`; returns the slot the tree now refers to (an
    /// existing slot when `p` equals a leaf's point, whose mass then grows).
    pub fn insert(&mut self, p: &[f32], slot: u32, store: &PointStore, rng: &mut SplitMix64) -> u32 {
        if self.root == NIL {
            self.root = self.alloc_leaf(slot, NIL);
            self.set_mass(1);
            return slot;
        }
        let d = self.dim;
        let mut r = self.root;
        loop {
            if is_leaf(r) {
                let j = (r & !LEAF) as usize;
                let q = store.point(self.leaf_point[j]);
                if q == p {
                    self.leaf_mass[j] += 1;
                    self.set_mass(self.mass + 1);
                    return self.leaf_point[j];
                }
                let u = rng.next_f64();
                let cut = Self::draw_cut(q, q, p, u)
                    .filter(|&(k, c)| Self::separates(q, q, p, k, c))
                    .or_else(|| {
                        // Cannot happen with exact arithmetic; any differing dimension, cut at
                        // the lower value, separates.
                        (0..d).find(|&k| q[k] != p[k]).map(|k| (k, q[k].min(p[k])))
                    });
                match cut {
                    Some((k, c)) => {
                        self.insert_above(r, k, c, p, slot, store);
                        self.set_mass(self.mass + 1);
                        return slot;
                    }
                    None => {
                        // Unreachable (q != p); keep the tree consistent anyway.
                        self.leaf_mass[j] += 1;
                        self.set_mass(self.mass + 1);
                        return self.leaf_point[j];
                    }
                }
            }
            let n = r as usize;
            let (min, max) = self.box_of(n);
            let outside = (0..d).any(|i| p[i] < min[i] || p[i] > max[i]);
            if outside {
                let u = rng.next_f64();
                if let Some((k, c)) = Self::draw_cut(min, max, p, u) {
                    if Self::separates(min, max, p, k, c) {
                        self.insert_above(r, k, c, p, slot, store);
                        self.set_mass(self.mass + 1);
                        return slot;
                    }
                }
                let (min, max) = self.box_mut(n);
                for i in 0..d {
                    if p[i] < min[i] {
                        min[i] = p[i];
                    }
                    if p[i] > max[i] {
                        max[i] = p[i];
                    }
                }
                let (min, max) = self.box_of(n);
                self.range[n] = range_of(min, max);
            }
            self.node_mass[n] += 1;
            let node = self.nodes[n];
            r = if p[node.dim as usize] <= node.cut {
                node.left
            } else {
                node.right
            };
        }
    }

    /// Puts a new internal node with cut `(k, c)` in the place of subtree `r`, with children
    /// `r` and a new leaf for `p`.
    fn insert_above(&mut self, r: u32, k: usize, c: f32, p: &[f32], slot: u32, store: &PointStore) {
        let up = self.parent_of(r);
        let n = self.alloc_node();
        let leaf = self.alloc_leaf(slot, n);
        let (left, right) = if p[k] <= c { (leaf, r) } else { (r, leaf) };
        self.nodes[n as usize] = Node {
            left,
            right,
            dim: k as u32,
            cut: c,
        };
        self.parent[n as usize] = up;
        self.node_mass[n as usize] = self.mass_of(r) + 1;
        let mut min = vec![0.0f32; self.dim];
        let mut max = vec![0.0f32; self.dim];
        self.copy_box(r, store, &mut min, &mut max);
        for i in 0..self.dim {
            min[i] = min[i].min(p[i]);
            max[i] = max[i].max(p[i]);
        }
        self.range[n as usize] = range_of(&min, &max);
        let (bmin, bmax) = self.box_mut(n as usize);
        bmin.copy_from_slice(&min);
        bmax.copy_from_slice(&max);
        self.set_parent(r, n);
        if up == NIL {
            self.root = n;
        } else {
            let u = &mut self.nodes[up as usize];
            if u.left == r {
                u.left = n;
            } else {
                u.right = n;
            }
        }
    }

    /// Removes one copy of point `p` (stored in some leaf); returns that leaf's slot.
    pub fn delete(&mut self, p: &[f32], store: &PointStore) -> Result<u32, String> {
        if self.root == NIL {
            return Err("random cut tree: deleting from an empty tree".into());
        }
        let mut r = self.root;
        while !is_leaf(r) {
            let node = self.nodes[r as usize];
            r = if p[node.dim as usize] <= node.cut {
                node.left
            } else {
                node.right
            };
        }
        let j = (r & !LEAF) as usize;
        let slot = self.leaf_point[j];
        if store.point(slot) != p {
            return Err("random cut tree: the point to delete is not in the tree".into());
        }
        self.set_mass(self.mass - 1);
        if self.leaf_mass[j] > 1 {
            self.leaf_mass[j] -= 1;
            let mut a = self.leaf_parent[j];
            while a != NIL {
                self.node_mass[a as usize] -= 1;
                a = self.parent[a as usize];
            }
            return Ok(slot);
        }
        let par = self.leaf_parent[j];
        self.free_leaves.push(j as u32);
        if par == NIL {
            self.root = NIL;
            return Ok(slot);
        }
        let pn = self.nodes[par as usize];
        let sibling = if pn.left == r { pn.right } else { pn.left };
        let grand = self.parent[par as usize];
        self.set_parent(sibling, grand);
        self.free_nodes.push(par);
        if grand == NIL {
            self.root = sibling;
            return Ok(slot);
        }
        {
            let g = &mut self.nodes[grand as usize];
            if g.left == par {
                g.left = sibling;
            } else {
                g.right = sibling;
            }
        }
        let d = self.dim;
        let mut min = vec![0.0f32; d];
        let mut max = vec![0.0f32; d];
        let mut fix = true;
        let mut a = grand;
        while a != NIL {
            let n = a as usize;
            self.node_mass[n] -= 1;
            if fix {
                let node = self.nodes[n];
                self.copy_box(node.left, store, &mut min, &mut max);
                self.merge_box(node.right, store, &mut min, &mut max);
                let (bmin, bmax) = self.box_of(n);
                if bmin == &min[..] && bmax == &max[..] {
                    fix = false;
                } else {
                    self.range[n] = range_of(&min, &max);
                    let (bmin, bmax) = self.box_mut(n);
                    bmin.copy_from_slice(&min);
                    bmax.copy_from_slice(&max);
                }
            }
            a = self.parent[n];
        }
        Ok(slot)
    }

    /// Follows the cuts to the leaf where `p` falls; returns (leaf index, depth).
    #[inline]
    fn descend(&self, p: &[f32]) -> (usize, u32) {
        let mut r = self.root;
        let mut depth = 0u32;
        while !is_leaf(r) {
            let node = &self.nodes[r as usize];
            r = if p[node.dim as usize] <= node.cut {
                node.left
            } else {
                node.right
            };
            depth += 1;
        }
        ((r & !LEAF) as usize, depth)
    }

    /// The tree's anomaly score of `p` (0 for an empty tree).
    pub fn score(&self, p: &[f32], store: &PointStore) -> f64 {
        if self.root == NIL {
            return 0.0;
        }
        let (j, mut depth) = self.descend(p);
        let m = self.leaf_mass[j];
        if store.point(self.leaf_point[j]) == p {
            return seen_score(depth, m, self.mass) * self.norm;
        }
        let mut score = unseen_score(depth);
        let mut a = self.leaf_parent[j];
        let d = self.dim;
        while a != NIL {
            depth -= 1;
            let n = a as usize;
            let s = n * 2 * d;
            let (min, max) = self.boxes[s..s + 2 * d].split_at(d);
            let mut out = 0.0f64;
            for i in 0..d {
                let v = p[i];
                if v < min[i] {
                    out += (min[i] - v) as f64;
                } else if v > max[i] {
                    out += (v - max[i]) as f64;
                }
            }
            if out == 0.0 {
                break;
            }
            let q = out / (self.range[n] + out);
            score = (1.0 - q) * score + q * unseen_score(depth);
            a = self.parent[n];
        }
        score * self.norm
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
        let d = self.dim;
        let (j, mut depth) = self.descend(p);
        let m = self.leaf_mass[j];
        let q = store.point(self.leaf_point[j]);
        w.attr_high.iter_mut().for_each(|x| *x = 0.0);
        w.attr_low.iter_mut().for_each(|x| *x = 0.0);
        let duplicate = q == p;
        let mut score;
        let mut shadow_set = false;
        if duplicate {
            score = seen_score(depth, m, self.mass);
        } else {
            score = unseen_score(depth);
            assign_probability(q, q, 0.0, p, &mut w.prob_high, &mut w.prob_low);
            for i in 0..d {
                w.attr_high[i] += w.prob_high[i] * score;
                w.attr_low[i] += w.prob_low[i] * score;
            }
        }
        let mut child = j as u32 | LEAF;
        let mut a = self.leaf_parent[j];
        while a != NIL {
            depth -= 1;
            let n = a as usize;
            let prob = if duplicate {
                // The shadow box: the ancestors' boxes without the duplicate's leaf.
                let node = self.nodes[n];
                let sibling = if node.left == child {
                    node.right
                } else {
                    node.left
                };
                let (smin, smax) = w.shadow.split_at_mut(d);
                if shadow_set {
                    self.merge_box(sibling, store, smin, smax);
                } else {
                    self.copy_box(sibling, store, smin, smax);
                    shadow_set = true;
                }
                let range = range_of(smin, smax);
                assign_probability(smin, smax, range, p, &mut w.prob_high, &mut w.prob_low)
            } else {
                let (min, max) = self.box_of(n);
                assign_probability(
                    min,
                    max,
                    self.range[n],
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
            a = self.parent[n];
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
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + (self.parent.capacity() + self.node_mass.capacity() + self.free_nodes.capacity()) * 4
            + self.range.capacity() * 8
            + self.boxes.capacity() * 4
            + (self.leaf_point.capacity()
                + self.leaf_mass.capacity()
                + self.leaf_parent.capacity()
                + self.free_leaves.capacity())
                * 4
    }

    /// Checks every structural invariant (boxes are the exact hull of their points, masses
    /// add up, parent links, cuts separate the children); returns the multiset of leaf
    /// slots with their masses.
    pub fn check(&self, store: &PointStore) -> Result<Vec<(u32, u32)>, String> {
        let mut leaves = Vec::new();
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
        let d = self.dim;
        // (node, min, max, mass)
        fn walk(
            t: &Tree,
            r: u32,
            store: &PointStore,
            leaves: &mut Vec<(u32, u32)>,
        ) -> Result<(Vec<f32>, Vec<f32>, u32), String> {
            if is_leaf(r) {
                let j = (r & !LEAF) as usize;
                if !store.contains(t.leaf_point[j]) {
                    return Err("leaf refers to a missing slot".into());
                }
                let q = store.point(t.leaf_point[j]).to_vec();
                leaves.push((t.leaf_point[j], t.leaf_mass[j]));
                return Ok((q.clone(), q, t.leaf_mass[j]));
            }
            let n = r as usize;
            let node = t.nodes[n];
            for c in [node.left, node.right] {
                if t.parent_of(c) != r {
                    return Err(format!("bad parent link under {n}"));
                }
            }
            let (lmin, lmax, lm) = walk(t, node.left, store, leaves)?;
            let (rmin, rmax, rm) = walk(t, node.right, store, leaves)?;
            let k = node.dim as usize;
            if !(lmax[k] <= node.cut && rmin[k] > node.cut) {
                return Err(format!("cut of node {n} does not separate its children"));
            }
            let min: Vec<f32> = lmin.iter().zip(&rmin).map(|(a, b)| a.min(*b)).collect();
            let max: Vec<f32> = lmax.iter().zip(&rmax).map(|(a, b)| a.max(*b)).collect();
            let (bmin, bmax) = t.box_of(n);
            if bmin != &min[..] || bmax != &max[..] {
                return Err(format!("stale box at node {n}"));
            }
            if t.range[n] != range_of(&min, &max) {
                return Err(format!("stale range at node {n}"));
            }
            if t.node_mass[n] != lm + rm {
                return Err(format!("wrong mass at node {n}"));
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
        let _ = d;
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
                let leaves = tree.check(&store).unwrap_or_else(|e| panic!("step {step}: {e}"));
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
