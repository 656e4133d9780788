//! Property tests of CIDR and IP parsing (`knetsim_model::cidr`) against a reference built from
//! the standard library and `ipnet`: Kubernetes' sloppy parsers must give the network an
//! address and prefix stand for, accept IPv4 octets with leading zeros as decimal, refuse a
//! prefix longer than the family with its number, and refuse IPv4-mapped IPv6 CIDRs with the
//! IPv4 CIDR they stand for.
//!
//! A directory module so that cargo does not build it as a test binary of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use knetsim_model::cidr::{CidrError, parse_cidr_sloppy, parse_ip_sloppy};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// IPv4 text with each octet padded with up to `pad[i]` leading zeros (Go's sloppy parser
/// reads `010` as ten, never as octal).
fn padded_v4(a: Ipv4Addr, pad: [usize; 4]) -> String {
    a.octets()
        .iter()
        .zip(pad)
        .map(|(o, p)| format!("{}{o}", "0".repeat(p)))
        .collect::<Vec<_>>()
        .join(".")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ipv4_cidr_is_the_masked_network(bits in any::<u32>(), prefix in 0u8..=32,
                                       pad in [0usize..3, 0usize..3, 0usize..3, 0usize..3]) {
        let addr = Ipv4Addr::from(bits);
        let text = format!("{}/{prefix}", padded_v4(addr, pad));
        let p = parse_cidr_sloppy(&text).expect("a valid CIDR");
        let want = IpNet::V4(Ipv4Net::new(addr, prefix).expect("valid").trunc());
        prop_assert_eq!(p.net, want);
        prop_assert_eq!(p.addr, IpAddr::V4(addr));
        prop_assert_eq!(p.host_bits_set(), want.network() != IpAddr::V4(addr));
        // What it prints parses back to itself, with no host bits.
        let again = parse_cidr_sloppy(&p.net.to_string()).expect("prints as a CIDR");
        prop_assert_eq!(again.net, want);
        prop_assert!(!again.host_bits_set());
        prop_assert_eq!(parse_ip_sloppy(&padded_v4(addr, pad)), Some(IpAddr::V4(addr)));
    }

    #[test]
    fn ipv6_cidr_is_the_masked_network(bits in any::<u128>(), prefix in 0u8..=128) {
        let addr = Ipv6Addr::from(bits);
        let text = format!("{addr}/{prefix}");
        let p = parse_cidr_sloppy(&text);
        match addr.to_ipv4_mapped() {
            // `::ffff:a.b.c.d/n`: refused, naming the IPv4 CIDR it stands for when n >= 96.
            Some(v4) => {
                let ipv4 = prefix
                    .checked_sub(96)
                    .map(|p| Ipv4Net::new(v4, p).expect("valid").trunc());
                prop_assert_eq!(p, Err(CidrError::Ipv4Mapped { ipv4, prefix }));
            }
            None => {
                let p = p.expect("a valid CIDR");
                let want = IpNet::V6(Ipv6Net::new(addr, prefix).expect("valid").trunc());
                prop_assert_eq!(p.net, want);
                prop_assert_eq!(p.host_bits_set(), want.network() != IpAddr::V6(addr));
                prop_assert_eq!(parse_cidr_sloppy(&p.net.to_string()).map(|q| q.net), Ok(want));
            }
        }
        prop_assert_eq!(parse_ip_sloppy(&addr.to_string()), Some(IpAddr::V6(addr)));
    }

    #[test]
    fn prefix_longer_than_the_family_is_refused(v6 in any::<bool>(), bits in any::<u128>(),
                                                 prefix in 0u32..100_000) {
        let (text, max) = if v6 {
            // Not IPv4-mapped: the first group is never zero.
            (Ipv6Addr::from(bits | (1 << 127)).to_string(), 128u8)
        } else {
            (Ipv4Addr::from(bits as u32).to_string(), 32u8)
        };
        let r = parse_cidr_sloppy(&format!("{text}/{prefix}"));
        if prefix > u32::from(max) {
            prop_assert_eq!(r, Err(CidrError::PrefixTooLong { prefix, max }));
        } else {
            prop_assert!(r.is_ok());
        }
    }

    /// Whatever the text, the parsers never panic, and an accepted CIDR holds its address.
    #[test]
    fn any_text_parses_or_is_refused(s in "[0-9a-fA-F:./ ]{0,48}") {
        if let Ok(p) = parse_cidr_sloppy(&s) {
            prop_assert!(p.net.contains(&p.addr));
        }
        let _ = parse_ip_sloppy(&s);
    }
}
