//! Named, seeded random number generators.
//!
//! Kubernetes makes random choices (the first probe of a Service IP allocation, generated name
//! suffixes, the scheduler's tie-breaks). knetsim makes the same kinds of choices from a
//! ChaCha8 stream per *name*, seeded from the scenario seed and the name, so that adding a
//! consumer of randomness in one place does not shift the numbers drawn in another, and so that
//! work split across threads draws the same numbers whatever the thread count.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A ChaCha8 generator seeded from `(seed, name)`.
pub type NamedRng = ChaCha8Rng;

/// The generator for `name` under scenario seed `seed`. The name is hashed with FNV-1a (a
/// fixed, portable function) and mixed with the seed by SplitMix64.
pub fn named(seed: u64, name: &str) -> NamedRng {
    ChaCha8Rng::seed_from_u64(mix(seed, fnv1a(name.as_bytes())))
}

/// The generator for task `index` of a parallel job called `name`: the per-task seed depends
/// only on (seed, name, index), never on which thread runs the task.
pub fn for_task(seed: u64, name: &str, index: u64) -> NamedRng {
    ChaCha8Rng::seed_from_u64(mix(mix(seed, fnv1a(name.as_bytes())), index))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_stable_and_distinct() {
        let a: u64 = named(1, "service-ip/IPv4").random();
        let b: u64 = named(1, "service-ip/IPv4").random();
        let c: u64 = named(1, "service-ip/IPv6").random();
        let d: u64 = named(2, "service-ip/IPv4").random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_ne!(
            for_task(1, "sweep", 0).random::<u64>(),
            for_task(1, "sweep", 1).random::<u64>()
        );
    }
}
