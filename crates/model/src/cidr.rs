//! CIDRs and IPs parsed the way Kubernetes parses them.
//!
//! Kubernetes components parse flag and field values with `netutils.ParseCIDRSloppy` and
//! `netutils.ParseIPSloppy` (`k8s.io/utils/net/parse.go`): Go's pre-1.17 `net.ParseCIDR`, which
//! still accepts IPv4 octets with leading zeros (`010.001.0.0/16` is 10.1.0.0/16, read as
//! decimal, not octal). The result is the *network*: `10.128.0.1/12` parses to 10.128.0.0/12,
//! silently, which is why the reader warns about it. An IPv4-mapped IPv6 CIDR
//! (`::ffff:10.0.0.0/104`) parses too, but Go then treats the address as IPv4 while keeping the
//! 128-bit mask, so Kubernetes mis-sizes the range; the reader rejects it with an explanation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A parsed CIDR: the network Kubernetes will use, and whether the text had host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedCidr {
    /// The masked network (what `net.ParseCIDR` returns as its `*IPNet`).
    pub net: IpNet,
    /// The address as written, which differs from `net.addr()` when host bits are set.
    pub addr: IpAddr,
}

impl ParsedCidr {
    /// True when the address has bits set below the prefix (`10.128.0.1/12`).
    pub fn host_bits_set(&self) -> bool {
        self.addr != self.net.network()
    }
}

/// Why a string is not a CIDR, in enough detail to say what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    /// Nothing at all, typically between two commas.
    Empty,
    /// No `/` and prefix length.
    NoPrefix,
    /// The part before the `/` is not an IP address.
    BadAddress(String),
    /// The part after the `/` is not a decimal number.
    BadPrefix(String),
    /// The prefix is longer than the address family allows (`/33`, `/129`).
    PrefixTooLong { prefix: u32, max: u8 },
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d/n`). `ipv4` is the IPv4 CIDR it stands for,
    /// when the prefix covers the mapping prefix (n ≥ 96).
    Ipv4Mapped { ipv4: Option<Ipv4Net>, prefix: u8 },
}

impl CidrError {
    /// What is wrong, in words, for a diagnostic label.
    pub fn reason(&self) -> String {
        match self {
            CidrError::Empty => "empty CIDR".to_string(),
            CidrError::NoPrefix => {
                "a CIDR needs a prefix length after a `/`, like 10.244.0.0/16".to_string()
            }
            CidrError::BadAddress(a) => format!("`{a}` is not an IP address"),
            CidrError::BadPrefix(p) => format!("prefix length `{p}` is not a number"),
            CidrError::PrefixTooLong { prefix, max } => {
                let family = if *max == 32 { "IPv4" } else { "IPv6" };
                format!("prefix length {prefix} is larger than {max} for an {family} address")
            }
            CidrError::Ipv4Mapped { .. } => "an IPv4-mapped IPv6 CIDR".to_string(),
        }
    }
}

/// Parses one CIDR like `netutils.ParseCIDRSloppy`.
pub fn parse_cidr_sloppy(s: &str) -> Result<ParsedCidr, CidrError> {
    if s.is_empty() {
        return Err(CidrError::Empty);
    }
    let Some((addr_text, prefix_text)) = s.split_once('/') else {
        return Err(CidrError::NoPrefix);
    };
    let addr = parse_ip_sloppy(addr_text).ok_or_else(|| CidrError::BadAddress(addr_text.into()))?;
    // Go's dtoi: decimal digits only, at least one.
    if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CidrError::BadPrefix(prefix_text.into()));
    }
    let prefix: u32 = prefix_text.parse().unwrap_or(u32::MAX);
    match addr {
        IpAddr::V4(a) => {
            if prefix > 32 {
                return Err(CidrError::PrefixTooLong { prefix, max: 32 });
            }
            let net = Ipv4Net::new(a, prefix as u8)
                .map_err(|_| CidrError::PrefixTooLong { prefix, max: 32 })?;
            Ok(ParsedCidr {
                net: IpNet::V4(net.trunc()),
                addr,
            })
        }
        IpAddr::V6(a) => {
            if prefix > 128 {
                return Err(CidrError::PrefixTooLong { prefix, max: 128 });
            }
            let prefix = prefix as u8;
            if let Some(v4) = a.to_ipv4_mapped() {
                let ipv4 = prefix
                    .checked_sub(96)
                    .and_then(|p| Ipv4Net::new(v4, p).ok())
                    .map(|n| n.trunc());
                return Err(CidrError::Ipv4Mapped { ipv4, prefix });
            }
            let net = Ipv6Net::new(a, prefix).map_err(|_| CidrError::PrefixTooLong {
                prefix: u32::from(prefix),
                max: 128,
            })?;
            Ok(ParsedCidr {
                net: IpNet::V6(net.trunc()),
                addr,
            })
        }
    }
}

/// Parses an IP like `netutils.ParseIPSloppy`: IPv4 octets may have leading zeros (decimal);
/// IPv6 as usual (zones are not allowed).
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse::<u32>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test CIDR")
    }

    #[test]
    fn parses_like_parse_cidr_sloppy() {
        // (input, network, host bits set)
        let ok = [
            ("10.244.0.0/16", "10.244.0.0/16", false),
            ("10.128.0.1/12", "10.128.0.0/12", true),
            ("192.168.5.219/28", "192.168.5.208/28", true),
            ("010.001.0.0/16", "10.1.0.0/16", false),
            ("0.0.0.0/0", "0.0.0.0/0", false),
            ("fd00::/48", "fd00::/48", false),
            ("fc00::8:0:0/94", "fc00::8:0:0/94", false),
            ("fc00::8:0:1/94", "fc00::8:0:0/94", true),
            ("2001:db8::/128", "2001:db8::/128", false),
            ("10.0.0.0/08", "10.0.0.0/8", false),
        ];
        for (input, want, host_bits) in ok {
            let got = parse_cidr_sloppy(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(got.net, net(want), "{input}");
            assert_eq!(got.host_bits_set(), host_bits, "{input}");
        }
        let bad = [
            ("", CidrError::Empty),
            ("10.0.0.0", CidrError::NoPrefix),
            (
                "10.0.0.0/33",
                CidrError::PrefixTooLong {
                    prefix: 33,
                    max: 32,
                },
            ),
            (
                "fd00::/129",
                CidrError::PrefixTooLong {
                    prefix: 129,
                    max: 128,
                },
            ),
            ("10.0.0.256/8", CidrError::BadAddress("10.0.0.256".into())),
            (" 10.0.0.0/8", CidrError::BadAddress(" 10.0.0.0".into())),
            ("10.0.0/8", CidrError::BadAddress("10.0.0".into())),
            ("10.0.0.0/x", CidrError::BadPrefix("x".into())),
            ("10.0.0.0/", CidrError::BadPrefix("".into())),
            ("10.0.0.0/-1", CidrError::BadPrefix("-1".into())),
            (
                "fe80::1%eth0/64",
                CidrError::BadAddress("fe80::1%eth0".into()),
            ),
            (
                "::ffff:10.0.0.0/104",
                CidrError::Ipv4Mapped {
                    ipv4: Some("10.0.0.0/8".parse().expect("v4")),
                    prefix: 104,
                },
            ),
            (
                "::ffff:a00:0/104",
                CidrError::Ipv4Mapped {
                    ipv4: Some("10.0.0.0/8".parse().expect("v4")),
                    prefix: 104,
                },
            ),
            (
                "::ffff:10.0.0.0/64",
                CidrError::Ipv4Mapped {
                    ipv4: None,
                    prefix: 64,
                },
            ),
        ];
        for (input, want) in bad {
            assert_eq!(parse_cidr_sloppy(input), Err(want), "{input}");
        }
    }

    #[test]
    fn reasons_name_the_family_limit() {
        assert_eq!(
            CidrError::PrefixTooLong {
                prefix: 33,
                max: 32
            }
            .reason(),
            "prefix length 33 is larger than 32 for an IPv4 address"
        );
        assert_eq!(
            CidrError::PrefixTooLong {
                prefix: 129,
                max: 128
            }
            .reason(),
            "prefix length 129 is larger than 128 for an IPv6 address"
        );
    }
}
