//! A small, fast, non-cryptographic hasher for the dataplane's lookup tables (node names,
//! addresses, `(address, protocol, port)` keys). The standard library's SipHash resists
//! flooding attacks this crate has no use for, and costs more than the lookups themselves on
//! the hot paths.
//!
//! The mixing step is the one of rustc's `FxHasher` (a multiply and a rotate per word),
//! finished with MurmurHash3's 64-bit finalizer: a multiply leaves the low bits of a hash
//! depending only on the low bits of the last word, and hashbrown picks buckets by the low
//! bits, so without the finalizer keys such as `/24` networks (whose low byte is zero)
//! collide. Tables built with it are only ever looked up, never iterated into output, so
//! their order does not matter.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// `FxHasher`: one multiply and rotate per word written.
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::FastHasher;

    #[test]
    fn keys_differing_in_high_bits_spread_over_low_bits() {
        // /24 networks: the low byte is always zero. The bucket index of a table of 4,096
        // buckets is the low 12 bits: they must take many values.
        let b = BuildHasherDefault::<FastHasher>::default();
        let mut buckets = std::collections::BTreeSet::new();
        for n in 0u128..4096 {
            buckets.insert(b.hash_one((24u8, 0x0a80_0000u128 + (n << 8))) & 0xfff);
        }
        assert!(
            buckets.len() > 2000,
            "only {} distinct buckets",
            buckets.len()
        );
    }
}
