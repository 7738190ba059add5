//! A small seeded pseudo-random number generator (SplitMix64), so the demo stream is
//! reproducible from its `'seed'` without a `rand` dependency.
//!
//! ```text
//!  state += 0x9E3779B97F4A7C15 ──► mix(state) ──► u64 ──► f64 in [0, 1) / integer in [0, n)
//! ```

/// SplitMix64: one 64-bit state word, full period 2^64, good statistical quality for a demo.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one of several independent streams derived from `seed` (one per
    /// partition): the stream index is mixed in so that neighbouring seeds do not correlate.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        let mut base = Self::new(seed ^ mix(stream.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)));
        // Discard one value so that stream 0 of seed s differs from `new(s)`.
        let first = base.next_u64();
        Self::new(first)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill a double's mantissa exactly.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`; `0` when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias for the small `n` used here is negligible.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // Reference output of SplitMix64 seeded with 1234567 (from the algorithm's paper/C code).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn ranges() {
        let mut r = SplitMix64::new(42);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(7) < 7);
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn streams_differ() {
        let a = SplitMix64::for_stream(42, 0).next_u64();
        let b = SplitMix64::for_stream(42, 1).next_u64();
        let c = SplitMix64::new(42).next_u64();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
