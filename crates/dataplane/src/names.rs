//! Names kube-proxy and CNI plugins derive from hashes: iptables chain suffixes, nftables chain
//! bases, endpoint probabilities, veth names.
//!
//! Written here rather than taken from a crate because the encodings are tiny and must match
//! Go's `encoding/base32` (RFC 4648 standard alphabet) byte for byte.

use sha2::{Digest, Sha256};

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 (standard alphabet, with `=` padding) of `data`, as Go's
/// `base32.StdEncoding.EncodeToString` writes it.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from(buf[0]) << 32
            | u64::from(buf[1]) << 24
            | u64::from(buf[2]) << 16
            | u64::from(buf[3]) << 8
            | u64::from(buf[4]);
        // Number of output characters that carry data for a partial chunk (RFC 4648 §6).
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                let idx = ((bits >> (35 - 5 * i)) & 0x1f) as usize;
                out.push(BASE32_ALPHABET[idx] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Appends the first `N` (at most 25) characters of base32(sha256(the concatenated `parts`))
/// to `out`.
fn push_hash_prefix<const N: usize>(out: &mut String, parts: &[&[u8]]) {
    let h = hash_chars::<N>(parts);
    out.push_str(std::str::from_utf8(&h).expect("base32 is ASCII"));
}

/// The first `N` (at most 25) characters of base32(sha256(the concatenated `parts`)), as
/// bytes, without allocating.
fn hash_chars<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    // The first 16 bytes (128 bits) of the digest hold the first 25 characters.
    let bits = sha256_prefix(parts);
    let mut out = [0u8; N];
    for (i, c) in out.iter_mut().enumerate() {
        *c = BASE32_ALPHABET[((bits >> (123 - 5 * i)) & 0x1f) as usize];
    }
    out
}

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The longest message [`sha256_prefix`] pads itself: two blocks, less the `0x80` byte and
/// the 8-byte length.
const SHORT_MESSAGE_MAX: usize = 128 - 9;

/// The first 16 bytes of sha256(the concatenated `parts`), big-endian.
///
/// Chain names hash short messages (a service port name, a protocol, an endpoint), almost
/// always one block. For those the message is padded here (FIPS 180-4 §5.1.1) and handed
/// straight to the compression function: going through `Sha256`'s buffering and
/// finalization costs as much again as the compression itself, and a node's rules hash a few
/// hundred thousand such names. Longer messages take the ordinary path.
fn sha256_prefix(parts: &[&[u8]]) -> u128 {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let words: [u32; 4] = if len <= SHORT_MESSAGE_MAX {
        let mut blocks = [[0u8; 64]; 2];
        let n_blocks = if len + 9 <= 64 { 1 } else { 2 };
        {
            let flat = blocks.as_flattened_mut();
            let mut at = 0;
            for p in parts {
                flat[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            flat[at] = 0x80;
            let end = n_blocks * 64;
            flat[end - 8..end].copy_from_slice(&((len as u64) * 8).to_be_bytes());
        }
        let mut state = SHA256_H0;
        sha2::block_api::compress256(&mut state, &blocks[..n_blocks]);
        [state[0], state[1], state[2], state[3]]
    } else {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        let digest = h.finalize();
        let word = |k: usize| {
            u32::from_be_bytes([
                digest[4 * k],
                digest[4 * k + 1],
                digest[4 * k + 2],
                digest[4 * k + 3],
            ])
        };
        [word(0), word(1), word(2), word(3)]
    };
    words
        .iter()
        .fold(0u128, |acc, &w| (acc << 32) | u128::from(w))
}

fn hash16(parts: &[&[u8]]) -> [u8; 16] {
    hash_chars::<16>(parts)
}

/// [`port_proto_hash`] as bytes.
pub fn port_proto_hash16(service_port_name: &str, protocol: &str) -> [u8; 16] {
    hash16(&[service_port_name.as_bytes(), protocol.as_bytes()])
}

/// The 16-character hash of [`endpoint_chain`] (without `KUBE-SEP-`), as bytes.
pub fn endpoint_hash(service_port_name: &str, protocol: &str, endpoint: &str) -> [u8; 16] {
    hash16(&[
        service_port_name.as_bytes(),
        protocol.as_bytes(),
        endpoint.as_bytes(),
    ])
}

/// kube-proxy (iptables) `portProtoHash`: the 16-character suffix shared by `KUBE-SVC-`,
/// `KUBE-SVL-`, `KUBE-EXT-` and `KUBE-FW-` chains of one service port.
// kube-proxy: pkg/proxy/iptables/proxier.go portProtoHash
pub fn port_proto_hash(service_port_name: &str, protocol: &str) -> String {
    let mut s = String::with_capacity(16);
    push_hash_prefix::<16>(&mut s, &[service_port_name.as_bytes(), protocol.as_bytes()]);
    s
}

/// kube-proxy (iptables) `servicePortEndpointChainName`: `KUBE-SEP-` + 16 characters of the
/// hash of the service port name, protocol and endpoint `ip:port`.
// kube-proxy: pkg/proxy/iptables/proxier.go servicePortEndpointChainName
pub fn endpoint_chain(service_port_name: &str, protocol: &str, endpoint: &str) -> String {
    let mut s = String::with_capacity(25);
    s.push_str("KUBE-SEP-");
    push_hash_prefix::<16>(
        &mut s,
        &[
            service_port_name.as_bytes(),
            protocol.as_bytes(),
            endpoint.as_bytes(),
        ],
    );
    s
}

/// nftables chains are at most 256 characters; kube-proxy reserves 16 for its prefixes.
// knftables: NameLengthMax = 256; kube-proxy: pkg/proxy/nftables/proxier.go chainNameBaseLengthMax
const NFT_CHAIN_BASE_MAX: usize = 256 - 16;

/// kube-proxy (nftables) `hashAndTruncate`: 8 hash characters, a dash and the readable name.
// kube-proxy: pkg/proxy/nftables/proxier.go hashAndTruncate
fn hash_and_truncate(name: &str) -> String {
    let mut out = String::with_capacity(9 + name.len());
    push_hash_and_truncate(&mut out, name);
    out
}

/// Appends `hash_and_truncate` of `name` to `out`.
pub fn push_hash_and_truncate(out: &mut String, name: &str) {
    let start = out.len();
    push_hash_prefix::<8>(out, &[name.as_bytes()]);
    out.push('-');
    out.push_str(name);
    if out.len() - start > NFT_CHAIN_BASE_MAX {
        out.truncate(start + NFT_CHAIN_BASE_MAX - 3);
        out.push_str("...");
    }
}

/// Appends the name [`nft_service_base`] hashes: `ns/name/proto/port`.
pub fn push_nft_port_name(
    out: &mut String,
    namespace: &str,
    name: &str,
    protocol: &str,
    port_name: &str,
) {
    for part in [namespace, "/", name, "/", protocol, "/", port_name] {
        out.push_str(part);
    }
}

/// Appends what an endpoint's name adds to its port's ([`push_nft_port_name`]):
/// `__ip/port`, with IPv6 colons as dots.
pub fn push_nft_endpoint_part(out: &mut String, ip: std::net::IpAddr, port: u16) {
    out.push_str("__");
    crate::proxy::text::push_ip_dotted(out, ip);
    out.push('/');
    crate::proxy::text::push_u32(out, port.into());
}

/// kube-proxy (nftables) `servicePortChainNameBase`, e.g. `ULMVA6XW-ns1/svc1/tcp/p80`.
pub fn nft_service_base(namespace: &str, name: &str, protocol: &str, port_name: &str) -> String {
    hash_and_truncate(&format!("{namespace}/{name}/{protocol}/{port_name}"))
}

/// kube-proxy (nftables) `servicePortEndpointChainNameBase`, e.g.
/// `5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80`. IPv6 colons become dots, since nftables chain
/// names cannot contain colons.
pub fn nft_endpoint_base(
    namespace: &str,
    name: &str,
    protocol: &str,
    port_name: &str,
    ip: &str,
    port: u16,
) -> String {
    // Written out on its own (the model writes these names with the `push_` functions), so
    // that the tests that compare the two compare independent texts.
    let ip = ip.replace(':', ".");
    hash_and_truncate(&format!(
        "{namespace}/{name}/{protocol}/{port_name}__{ip}/{port}"
    ))
}

/// kube-proxy `computeProbability`: `fmt.Sprintf("%0.10f", 1.0/float64(n))`.
///
/// Rust's `{:.10}` rounds half to even on the exact binary value, like Go's `%f`, so the two
/// agree (checked against proxier_test.go's table below).
pub fn probability(n: usize) -> String {
    format!("{:.10}", 1.0f64 / n as f64)
}

/// SHA-1, for Calico's interface names (`cali` + 11 hex characters of sha1(`ns.pod`)).
/// A small private implementation because no SHA-1 crate is among the workspace dependencies.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Calico's host-side veth name for a pod: `cali` + the first 11 hex characters of
/// sha1(`namespace.name`).
// calico: libcalico-go/lib/names/workloadendpoint.go VethNameForWorkload
pub fn calico_veth(namespace: &str, name: &str) -> String {
    let h = hex(&sha1(format!("{namespace}.{name}").as_bytes()));
    format!("cali{}", &h[..11])
}

/// The host-side veth of a pod wired by the `ptp`/`bridge` plugins. The real plugins pick
/// random names (`veth` + 8 hex characters); knetsim derives them from the pod's name so that
/// output is stable.
pub fn cni_veth(namespace: &str, name: &str) -> String {
    let h = hex(&sha1(format!("{namespace}/{name}").as_bytes()));
    format!("veth{}", &h[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10 test vectors.
        for (input, want) in [
            ("", ""),
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ] {
            assert_eq!(base32(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn short_message_hashes_equal_sha256() {
        // Every length around the one- and two-block boundaries (55/56, 119/120 bytes), split
        // into parts in different ways, against the `Sha256` digest of the whole message.
        let msg: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..msg.len() {
            let m = &msg[..len];
            let digest = Sha256::digest(m);
            let want = digest[..16]
                .iter()
                .fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
            let third = len / 3;
            for parts in [
                vec![m],
                vec![&m[..third], &m[third..]],
                vec![&m[..third], &[][..], &m[third..2 * third], &m[2 * third..]],
            ] {
                assert_eq!(sha256_prefix(&parts), want, "length {len}");
            }
        }
    }

    #[test]
    fn iptables_chain_names_match_kube_proxy() {
        // From the fact sheet (recomputed) and proxier_test.go's expected rules.
        let cases = [
            ("ns1/svc1:p80", "tcp", None, "KUBE-SVC-XPGD46QRK7WJZT7O"),
            (
                "ns1/svc1:p80",
                "tcp",
                Some("10.180.0.1:80"),
                "KUBE-SEP-SXIVWICOYRO3J4NJ",
            ),
            ("ns2/svc2:p80", "tcp", None, "KUBE-SVC-GNZBNJ2PO5MGZ6GT"),
            (
                "ns2/svc2:p80",
                "tcp",
                Some("10.180.0.2:80"),
                "KUBE-SEP-RS4RBKLTHTF2IUXJ",
            ),
            ("ns3/svc3:p80", "tcp", None, "KUBE-SVC-X27LE4BHSL4DOUIK"),
            ("ns4/svc4:p80", "tcp", None, "KUBE-SVC-4SW47YFZTEDKD3PK"),
            (
                "ns4/svc4:p80",
                "tcp",
                Some("10.180.0.4:80"),
                "KUBE-SEP-UKSFD7AGPMPPLUHC",
            ),
            (
                "ns4/svc4:p80",
                "tcp",
                Some("10.180.0.5:80"),
                "KUBE-SEP-C6EBXVWJJZMIWKLZ",
            ),
            ("ns5/svc5:p80", "tcp", None, "KUBE-SVC-NUKIZ6OKUXPJNT4C"),
            (
                "ns5/svc5:p80",
                "tcp",
                Some("10.180.0.3:80"),
                "KUBE-SEP-I77PXRDZVX7PMWMN",
            ),
        ];
        for (name, proto, ep, want) in cases {
            let got = match ep {
                None => format!("KUBE-SVC-{}", port_proto_hash(name, proto)),
                Some(ep) => endpoint_chain(name, proto, ep),
            };
            assert_eq!(got, want, "{name} {ep:?}");
        }
    }

    #[test]
    fn nftables_chain_names_match_kube_proxy() {
        // From pkg/proxy/nftables/proxier_test.go TestOverallNFTablesRules.
        assert_eq!(
            nft_service_base("ns1", "svc1", "tcp", "p80"),
            "ULMVA6XW-ns1/svc1/tcp/p80"
        );
        assert_eq!(
            nft_service_base("ns2", "svc2", "tcp", "p80"),
            "42NFTM6N-ns2/svc2/tcp/p80"
        );
        assert_eq!(
            nft_endpoint_base("ns1", "svc1", "tcp", "p80", "10.180.0.1", 80),
            "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
        );
        assert_eq!(
            nft_endpoint_base("ns5", "svc5", "tcp", "p80", "10.180.0.3", 80),
            "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"
        );
    }

    #[test]
    fn byte_hashes_equal_the_string_ones() {
        for (name, proto, ep) in [
            ("ns1/svc1:p80", "tcp", "10.180.0.1:80"),
            ("ns-3/svc-123", "udp", "[fd00:10:244::7]:8080"),
        ] {
            assert_eq!(
                std::str::from_utf8(&port_proto_hash16(name, proto)).unwrap(),
                port_proto_hash(name, proto)
            );
            assert_eq!(
                format!(
                    "KUBE-SEP-{}",
                    std::str::from_utf8(&endpoint_hash(name, proto, ep)).unwrap()
                ),
                endpoint_chain(name, proto, ep)
            );
        }
    }

    #[test]
    fn nftables_names_longer_than_the_limit_are_truncated() {
        // hashAndTruncate hashes the whole name, then cuts the chain base to 240 characters,
        // ending in "...".
        let long = "n".repeat(250);
        let base = nft_service_base("ns", &long, "tcp", "http");
        assert_eq!(base.len(), NFT_CHAIN_BASE_MAX);
        assert!(base.ends_with("..."));
        let mut full = String::new();
        push_hash_prefix::<8>(&mut full, &[format!("ns/{long}/tcp/http").as_bytes()]);
        assert!(base.starts_with(&format!("{full}-ns/nnn")));
        // IPv6 endpoint names carry the address with dots for colons.
        let mut s = String::new();
        push_nft_port_name(&mut s, "ns", "svc", "tcp", "http");
        push_nft_endpoint_part(&mut s, "fd00:10::1".parse().unwrap(), 80);
        assert_eq!(s, "ns/svc/tcp/http__fd00.10..1/80");
        assert_eq!(
            nft_endpoint_base("ns", "svc", "tcp", "http", "fd00:10::1", 80),
            hash_and_truncate(&s)
        );
    }

    #[test]
    fn probabilities_match_compute_probability() {
        // proxier_test.go TestComputeProbability.
        for (n, want) in [
            (1, "1.0000000000"),
            (2, "0.5000000000"),
            (3, "0.3333333333"),
            (10, "0.1000000000"),
            (100, "0.0100000000"),
            (1000, "0.0010000000"),
            (10000, "0.0001000000"),
            (100000, "0.0000100000"),
            (100001, "0.0000099999"),
        ] {
            assert_eq!(probability(n), want, "n={n}");
        }
    }

    #[test]
    fn sha1_matches_known_digests() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // Two blocks.
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}
