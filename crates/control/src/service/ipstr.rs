//! IP strings as Go's `net` package and `k8s.io/utils/net` read them.
//!
//! Service fields hold IPs as strings, and Kubernetes parses them with
//! `netutils.ParseIPSloppy`, which (unlike Rust's parser) accepts leading zeros in IPv4 octets
//! (read as decimal), and which returns IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as IPv4
//! addresses, so that `IsIPv6String` is false for them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use knetsim_ipam::Family;

/// `netutils.ParseIPSloppy`.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4_sloppy(s) {
        return Some(IpAddr::V4(v4));
    }
    if !s.contains(':') {
        return None;
    }
    // Go accepts an embedded dotted quad with leading zeros too; rewrite it before parsing.
    // (Only then: every Service's addresses are parsed several times on create.)
    let v6 = match s.rfind(':') {
        Some(idx) if s[idx + 1..].contains('.') => {
            let v4 = parse_ipv4_sloppy(&s[idx + 1..])?;
            format!("{}{}", &s[..=idx], v4).parse::<Ipv6Addr>().ok()?
        }
        _ => s.parse::<Ipv6Addr>().ok()?,
    };
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Four decimal octets, each 0..=255, leading zeros allowed (at most 3 digits, as in Go).
fn parse_ipv4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = p.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// `netutils.IsIPv6String`.
pub fn is_ipv6_string(s: &str) -> bool {
    matches!(parse_ip_sloppy(s), Some(IpAddr::V6(_)))
}

/// The family of an IP string, as `familyOf` in `alloc.go` gives it (`None` for garbage).
pub fn family_of(s: &str) -> Option<Family> {
    parse_ip_sloppy(s).map(|ip| Family::of_ip(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sloppy_parsing() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.1", Some("10.0.0.1")),
            ("010.000.000.001", Some("10.0.0.1")),
            ("10.0.0.256", None),
            ("10.0.0", None),
            ("2000::1", Some("2000::1")),
            ("::ffff:10.0.0.1", Some("10.0.0.1")),
            ("fe80::1%eth0", None),
            ("garbage", None),
            ("", None),
            ("None", None),
        ];
        for (input, want) in cases {
            let got = parse_ip_sloppy(input).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *want, "parsing {input:?}");
        }
        assert!(is_ipv6_string("2000::1"));
        assert!(!is_ipv6_string("::ffff:1.2.3.4"));
    }
}
