//! The forest's shared point store: each sampled (shingled) point is stored once, in a slot
//! with a reference count (the number of reservoir entries, over all trees, that refer to it).
//! Trees keep slot numbers in their leaves. A slot is reused once its count drops to 0.

use serde::{Deserialize, Serialize};

use super::bits;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointStore {
    dim: usize,
    /// Slot `i` is `data[i * dim .. (i + 1) * dim]`.
    #[serde(with = "bits::f32s_bits")]
    data: Vec<f32>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl PointStore {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
            refs: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The point in slot `i`.
    #[inline]
    pub fn point(&self, i: u32) -> &[f32] {
        let s = i as usize * self.dim;
        &self.data[s..s + self.dim]
    }

    /// Stores `p` in a free slot, with reference count 0.
    pub fn alloc(&mut self, p: &[f32]) -> u32 {
        if let Some(i) = self.free.pop() {
            let s = i as usize * self.dim;
            self.data[s..s + self.dim].copy_from_slice(p);
            i
        } else {
            let i = self.refs.len() as u32;
            self.data.extend_from_slice(p);
            self.refs.push(0);
            i
        }
    }

    #[inline]
    pub fn inc(&mut self, i: u32) {
        self.refs[i as usize] += 1;
    }

    /// Drops one reference; frees the slot when none is left.
    #[inline]
    pub fn dec(&mut self, i: u32) {
        let r = &mut self.refs[i as usize];
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.free.push(i);
        }
    }

    /// Reference count of slot `i` (tests).
    pub fn refs(&self, i: u32) -> u32 {
        self.refs[i as usize]
    }

    /// Number of slots in use.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    /// Whether `i` is a slot of this store.
    pub fn contains(&self, i: u32) -> bool {
        (i as usize) < self.refs.len()
    }

    /// Checks the sizes and the free list (a store read from a checkpoint).
    pub fn validate(&self, dim: usize) -> Result<(), String> {
        if self.dim != dim || self.data.len() != self.refs.len() * dim {
            return Err("point store: inconsistent sizes".into());
        }
        let mut free = vec![false; self.refs.len()];
        for &i in &self.free {
            match free.get_mut(i as usize) {
                Some(f) if !*f && self.refs[i as usize] == 0 => *f = true,
                _ => return Err("point store: free list out of range, repeated or in use".into()),
            }
        }
        Ok(())
    }

    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.data.capacity() * 4
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
    }
}
