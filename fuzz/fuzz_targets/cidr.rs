//! CIDR and IP parsing (`knetsim_model::cidr`, Kubernetes' `ParseCIDRSloppy` /
//! `ParseIPSloppy`), one candidate a line, checked against a reference and against itself.
//!
//! The reference: Go 1.16's parser (which Kubernetes forked) differs from Rust's strict one
//! only in allowing leading zeros, in IPv4 octets (read as decimal) and in IPv6 groups; so an
//! address is what the standard library makes of it once the leading zeros of every octet and
//! group are dropped (`drop_leading_zeros`). A parsed CIDR must also contain its address and
//! print as a CIDR that parses back to itself.

#![no_main]

use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_model::cidr::{CidrError, parse_cidr_sloppy, parse_ip_sloppy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        check_cidr(line);
        check_ip(line);
    }
});

fn check_cidr(s: &str) {
    let parsed = parse_cidr_sloppy(s);
    match &parsed {
        Ok(p) => {
            assert!(
                p.net.contains(&p.addr),
                "{s}: {} does not hold {}",
                p.net,
                p.addr
            );
            assert_eq!(p.net, p.net.trunc(), "{s}: network has host bits");
            let again = parse_cidr_sloppy(&p.net.to_string());
            assert_eq!(
                again.map(|q| q.net),
                Ok(p.net),
                "{s}: {} does not parse back",
                p.net
            );
            assert!(!p.net.to_string().is_empty());
        }
        Err(e) => {
            let _ = e.reason();
            if let CidrError::PrefixTooLong { prefix, max } = e {
                assert!(
                    *prefix > u32::from(*max),
                    "{s}: /{prefix} refused under /{max}"
                );
            }
        }
    }
    // The reference: a decimal prefix within the family's width over the reference address is
    // the masked network, except the IPv4-mapped IPv6 ones knetsim refuses.
    let Some((addr, prefix)) = s.split_once('/') else {
        return;
    };
    let (Some(addr), true) = (
        reference_ip(addr),
        !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()),
    ) else {
        assert!(
            parsed.is_err(),
            "{s}: {parsed:?} where the reference refuses it"
        );
        return;
    };
    let Some(net) = prefix
        .parse::<u8>()
        .ok()
        .and_then(|p| IpNet::new(addr, p).ok())
    else {
        assert!(
            matches!(parsed, Err(CidrError::PrefixTooLong { .. })),
            "{s}: {parsed:?}"
        );
        return;
    };
    let mapped = matches!(addr, IpAddr::V6(a) if a.to_ipv4_mapped().is_some());
    if mapped {
        assert!(
            matches!(parsed, Err(CidrError::Ipv4Mapped { .. })),
            "{s}: {parsed:?}"
        );
    } else {
        assert_eq!(parsed.map(|p| p.net), Ok(net.trunc()), "{s}");
    }
}

/// `s` with the leading zeros of each IPv4 octet and IPv6 group dropped (one zero is kept), or
/// `None` when it holds anything but hex digits, `.` and `:` (Go's parser refuses those too:
/// no zones, no spaces).
fn drop_leading_zeros(s: &str) -> Option<String> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    {
        return None;
    }
    let strip = |p: &str| -> String {
        let t = p.trim_start_matches('0');
        if t.is_empty() && !p.is_empty() {
            "0".to_string()
        } else {
            t.to_string()
        }
    };
    Some(
        s.split(':')
            .map(|g| g.split('.').map(strip).collect::<Vec<_>>().join("."))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// What Kubernetes' ParseIPSloppy makes of `s`, by way of the standard library.
fn reference_ip(s: &str) -> Option<IpAddr> {
    drop_leading_zeros(s)?.parse::<IpAddr>().ok()
}

fn check_ip(s: &str) {
    let parsed = parse_ip_sloppy(s);
    assert_eq!(parsed, reference_ip(s), "{s}");
    if let Some(ip) = parsed {
        assert_eq!(
            parse_ip_sloppy(&ip.to_string()),
            Some(ip),
            "{s}: {ip} does not parse back"
        );
    }
}
