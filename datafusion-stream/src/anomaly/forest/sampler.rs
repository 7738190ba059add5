//! Time-decayed weighted reservoir sampler (one per tree).
//!
//! The point arriving as the `t`-th entry (t = 0, 1, ...) gets the weight
//! `w = ln(-ln u) - t·λ` with `u` uniform in `[0, 1)`; the sampler keeps the `capacity` points
//! of smallest weight in a max-heap. While it is not full, every point is accepted (AWS RCF
//! with `initial_accept_fraction = 1.0`). Once full, a point is accepted iff `w < W`, the
//! heap's largest weight, and then that largest entry is evicted.
//!
//! **Cheap rejection.** `w` decreases in `u`, so `w >= W` ⇔ `u <= U(t) = exp(-exp(W + t·λ))`,
//! and `U` decreases in `t`. The sampler caches `U(t_h)` for a horizon `t_h` a little ahead
//! (`t_h·λ - t·λ <= 0.01`); for every `t <= t_h`, `u <= U(t_h)` (shaved by a relative 1e-9 to
//! stay clear of rounding) is a certain rejection. So a rejected point costs one draw and one
//! compare; only the rare `u` above the threshold computes the logarithms and the exact
//! comparison. The cache is refreshed when `t` passes the horizon or the heap's top changes.

use serde::{Deserialize, Serialize};

use super::bits;

/// One sampled point: its weight and the point store slot the tree refers to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "bits::f64_bits")]
    pub weight: f64,
    pub point: u32,
}

/// The reservoir of one tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampler {
    capacity: usize,
    /// Max-heap on `weight`.
    heap: Vec<Entry>,
    /// Certain-rejection threshold on `u`, valid while `t <= valid_until` (and the cache is
    /// valid).
    #[serde(with = "bits::f64_bits")]
    reject_u: f64,
    valid_until: u64,
    cache_valid: bool,
}

impl Sampler {
    /// An empty sampler of `capacity` points.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            heap: Vec::with_capacity(capacity),
            reject_u: 0.0,
            valid_until: 0,
            cache_valid: false,
        }
    }

    /// Whether the reservoir holds `capacity` points.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.capacity
    }

    /// The sampled entries (heap order).
    pub fn entries(&self) -> &[Entry] {
        &self.heap
    }

    /// The weight of `u` for the `t`-th entry.
    #[inline]
    pub fn weight(u: f64, t: u64, lambda: f64) -> f64 {
        (-u.ln()).ln() - t as f64 * lambda
    }

    /// Decides whether the point drawn `u` for entry `t` enters a full reservoir; returns its
    /// weight if so. Call only when [`Self::is_full`].
    #[inline]
    pub fn accepts_when_full(&mut self, u: f64, t: u64, lambda: f64) -> Option<f64> {
        if self.certainly_rejects(u, t, lambda) {
            return None;
        }
        let w = Self::weight(u, t, lambda);
        let top = self.heap.first().map_or(f64::INFINITY, |e| e.weight);
        (w < top).then_some(w)
    }

    /// Whether a full reservoir surely rejects the draw `u` for entry `t` (the cheap test of
    /// [`Self::accepts_when_full`]; `false` means "maybe": the exact rule decides). Changes
    /// only the cached threshold, never the sample.
    #[inline]
    pub fn certainly_rejects(&mut self, u: f64, t: u64, lambda: f64) -> bool {
        if !self.cache_valid || t > self.valid_until {
            self.refresh(t, lambda);
        }
        u <= self.reject_u
    }

    fn refresh(&mut self, t: u64, lambda: f64) {
        // Horizon: how far ahead the threshold stays a certain rejection (λ·steps <= 0.01).
        let steps = if lambda > 0.0 {
            (0.01 / lambda).clamp(0.0, 65_536.0) as u64
        } else {
            65_536
        };
        let horizon = t.saturating_add(steps);
        let top = self.heap.first().map_or(f64::INFINITY, |e| e.weight);
        let u = (-(top + horizon as f64 * lambda).exp()).exp();
        self.reject_u = if u.is_finite() { u * (1.0 - 1e-9) } else { 0.0 };
        self.valid_until = horizon;
        self.cache_valid = true;
    }

    /// Removes and returns the entry of largest weight.
    pub fn evict_max(&mut self) -> Option<Entry> {
        let last = self.heap.pop()?;
        self.cache_valid = false;
        if self.heap.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.heap[0], last);
        self.sift_down(0);
        Some(top)
    }

    /// Adds an entry (the caller evicted first if the reservoir was full).
    pub fn push(&mut self, weight: f64, point: u32) {
        self.cache_valid = false;
        self.heap.push(Entry { weight, point });
        let mut i = self.heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].weight < self.heap[i].weight {
                self.heap.swap(parent, i);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.heap[r].weight > self.heap[l].weight {
                r
            } else {
                l
            };
            if self.heap[c].weight > self.heap[i].weight {
                self.heap.swap(c, i);
                i = c;
            } else {
                break;
            }
        }
    }

    /// Approximate bytes.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.heap.capacity() * std::mem::size_of::<Entry>()
    }

    /// Checks the capacity and that every entry refers to a slot of `contains` (a sampler
    /// read from a checkpoint; [`Self::check`] checks the heap order).
    pub fn validate(&self, capacity: usize, contains: impl Fn(u32) -> bool) -> Result<(), String> {
        if self.capacity != capacity || self.heap.len() > capacity {
            return Err("sampler: wrong capacity".into());
        }
        if self.heap.iter().any(|e| !contains(e.point)) {
            return Err("sampler: an entry refers to a missing point slot".into());
        }
        Ok(())
    }

    /// Checks the heap property (tests and state validation).
    pub fn check(&self) -> Result<(), String> {
        if self.heap.len() > self.capacity {
            return Err("sampler holds more than its capacity".into());
        }
        for i in 1..self.heap.len() {
            if self.heap[(i - 1) / 2].weight < self.heap[i].weight {
                return Err(format!("sampler heap property broken at {i}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::SplitMix64;
    use super::*;

    /// The fast path decides exactly like the plain rule `w < max weight`.
    #[test]
    fn fast_rejection_matches_exact_rule() {
        for &lambda in &[0.0, 1e-5, 1e-3, 0.1] {
            let mut s = Sampler::new(32);
            let mut rng = SplitMix64::new(5);
            let mut accepted = 0;
            for t in 0..20_000u64 {
                let u = rng.next_f64();
                if !s.is_full() {
                    s.push(Sampler::weight(u, t, lambda), t as u32);
                    continue;
                }
                let exact = Sampler::weight(u, t, lambda) < s.entries()[0].weight;
                let fast = s.accepts_when_full(u, t, lambda);
                assert_eq!(exact, fast.is_some(), "lambda {lambda} t {t} u {u}");
                if let Some(w) = fast {
                    accepted += 1;
                    s.evict_max();
                    s.push(w, t as u32);
                }
                s.check().unwrap();
            }
            assert!(accepted > 0);
        }
    }

    /// With a large λ the reservoir holds recent points; with λ = 0 it is a uniform sample.
    #[test]
    fn decay_prefers_recent_points() {
        let mean_age = |lambda: f64| {
            let mut s = Sampler::new(64);
            let mut rng = SplitMix64::new(11);
            let n = 50_000u64;
            for t in 0..n {
                let u = rng.next_f64();
                if !s.is_full() {
                    s.push(Sampler::weight(u, t, lambda), t as u32);
                } else if let Some(w) = s.accepts_when_full(u, t, lambda) {
                    s.evict_max();
                    s.push(w, t as u32);
                }
            }
            s.entries()
                .iter()
                .map(|e| (n - e.point as u64) as f64)
                .sum::<f64>()
                / 64.0
        };
        let uniform = mean_age(0.0);
        let decayed = mean_age(1e-3);
        assert!(
            (uniform - 25_000.0).abs() < 5_000.0,
            "uniform mean age {uniform}"
        );
        // λ = 1e-3: the sample reflects roughly the last 1/λ = 1000 points.
        assert!(decayed < 2_000.0, "decayed mean age {decayed}");
    }
}
