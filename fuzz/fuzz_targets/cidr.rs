//! CIDR and IP parsing (`knetsim_model::cidr`, Kubernetes' `ParseCIDRSloppy` /
//! `ParseIPSloppy`), one candidate a line, checked against the standard library's parser and
//! against itself: a parsed CIDR contains its address, prints as a CIDR that parses back to
//! itself, and every CIDR whose address the standard library accepts is accepted with the
//! same network.

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
    // Every CIDR whose address the standard library parses (strict: no leading zeros in IPv4,
    // at most four hex digits a group, `::` standing for at least one group; `ipnet`'s own
    // parser is laxer than both std and Go) and whose prefix is decimal and in range is one
    // Kubernetes accepts, to the same network, except the IPv4-mapped IPv6 ones knetsim
    // refuses.
    let Some((addr, prefix)) = s.split_once('/') else {
        return;
    };
    let (Ok(addr), true) = (
        addr.parse::<IpAddr>(),
        !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()),
    ) else {
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

fn check_ip(s: &str) {
    let parsed = parse_ip_sloppy(s);
    if let Ok(std) = s.parse::<IpAddr>() {
        assert_eq!(parsed, Some(std), "{s}");
    }
    if let Some(ip) = parsed {
        assert_eq!(
            parse_ip_sloppy(&ip.to_string()),
            Some(ip),
            "{s}: {ip} does not parse back"
        );
    }
}
