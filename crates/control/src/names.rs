//! Generated object names, as Kubernetes' controllers make them.
//!
//! `generateName` suffixes and the ReplicaSet `pod-template-hash` use the alphabet of
//! `k8s.io/apimachinery/pkg/util/rand` ("bcdfghjklmnpqrstvwxz2456789": no vowels, so no
//! words, and no look-alike characters). The random draws come from a named, seeded RNG.

use rand::RngExt;

use knetsim_ipam::NamedRng;

/// `k8s.io/apimachinery/pkg/util/rand` alphanums.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// apiserver `names.SimpleNameGenerator`: a `generateName` prefix is cut to 58 characters
/// (63 minus the 5-character suffix).
const MAX_GENERATED_BASE: usize = 58;

/// `rand.String(n)`: n characters drawn uniformly from the alphabet, appended to `out`.
fn push_random(rng: &mut NamedRng, out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char);
    }
}

/// `generateName: <base>` → `<base><5 random characters>`.
pub fn generate_name(rng: &mut NamedRng, base: &str) -> String {
    let base = if base.len() > MAX_GENERATED_BASE {
        &base[..MAX_GENERATED_BASE]
    } else {
        base
    };
    // One allocation of the final size: the controllers name 150,000 pods at limits scale.
    let mut name = String::with_capacity(base.len() + 5);
    name.push_str(base);
    push_random(rng, &mut name, 5);
    name
}

/// `rand.SafeEncodeString`: each byte of `s` mapped onto the alphabet. The Deployment
/// controller applies it to the decimal text of the template hash.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a pod template. Kubernetes hashes the Go object with FNV-32a
/// (`controller.ComputeHash`); knetsim hashes a canonical text of the fields it models with the
/// same function, so the value has the real shape and changes exactly when the template does,
/// but is not byte-equal to a real cluster's.
pub fn pod_template_hash(canonical_template: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in canonical_template.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    safe_encode(&h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encode_matches_apimachinery() {
        // '0' is byte 48 → 48 % 27 = 21 → '4'; '1' → 22 → '5'; '9' → 57 % 27 = 3 → 'f'.
        assert_eq!(safe_encode("019"), "45f");
    }

    #[test]
    fn generated_names_have_the_real_shape() {
        let mut rng = knetsim_ipam::rng::named(1, "test");
        let n = generate_name(&mut rng, "web-");
        assert_eq!(n.len(), 9);
        assert!(n[4..].bytes().all(|b| ALPHANUMS.contains(&b)));
        let long = "x".repeat(70);
        assert_eq!(generate_name(&mut rng, &long).len(), 63);
        let h = pod_template_hash("app=web");
        assert!(!h.is_empty() && h.len() <= 10);
        assert_eq!(h, pod_template_hash("app=web"));
        assert_ne!(h, pod_template_hash("app=api"));
    }
}
