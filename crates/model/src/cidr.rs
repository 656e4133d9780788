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

/// Parses an IP like `netutils.ParseIPSloppy`, the Go 1.16 `net.ParseIP` that Kubernetes forked
/// (`k8s.io/utils/internal/third_party/forked/golang/net/ip.go`): IPv4 octets may have leading
/// zeros (read as decimal), in an IPv4 address and in the IPv4 tail of an IPv6 one
/// (`::ffff:127.001.002.003`); an IPv6 group may have leading zeros beyond four digits
/// (`0:0:0:0:000000:ffff:127.1.2.3`) as long as its value fits 16 bits. Zones are not allowed.
/// Rust's own parsers refuse both, so this is a port of Go's.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    // Go's ParseIP decides the family by the first `.` or `:`.
    match s.bytes().find(|&b| b == b'.' || b == b':')? {
        b'.' => parse_ipv4(s.as_bytes()).map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        _ => parse_ipv6(s.as_bytes()).map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    }
}

/// Go's `big`: `dtoi` and `xtoi` give up once a number reaches it.
const GO_BIG: u32 = 0xFF_FFFF;

/// Go's `dtoi`: a decimal number at the start of `s`, and how many bytes it took.
fn dtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n * 10 + u32::from(s[i] - b'0');
        if n >= GO_BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

/// Go's `xtoi`: a hexadecimal number at the start of `s`, and how many bytes it took.
fn xtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while i < s.len() {
        let Some(d) = char::from(s[i]).to_digit(16) else {
            break;
        };
        n = n * 16 + d;
        if n >= GO_BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

/// The forked `parseIPv4`: four decimal octets, leading zeros allowed.
fn parse_ipv4(mut s: &[u8]) -> Option<[u8; 4]> {
    let mut p = [0u8; 4];
    for (i, octet) in p.iter_mut().enumerate() {
        if i > 0 {
            s = s.strip_prefix(b".")?;
        }
        let (n, c) = dtoi(s)?;
        *octet = u8::try_from(n).ok()?;
        s = &s[c..];
    }
    s.is_empty().then_some(p)
}

/// The forked `parseIPv6`: groups of hex digits, one `::` standing for at least one zero
/// group, and an optional IPv4 tail in the last 32 bits.
fn parse_ipv6(mut s: &[u8]) -> Option<[u8; 16]> {
    let mut ip = [0u8; 16];
    let mut ellipsis: Option<usize> = None;
    if let Some(rest) = s.strip_prefix(b"::") {
        ellipsis = Some(0);
        s = rest;
        if s.is_empty() {
            return Some(ip);
        }
    }
    let mut i = 0;
    while i < 16 {
        let (n, c) = xtoi(s)?;
        if n > 0xFFFF {
            return None;
        }
        if s.get(c) == Some(&b'.') {
            // An IPv4 tail: only as the last 32 bits, or anywhere an ellipsis can make room.
            if (ellipsis.is_none() && i != 12) || i + 4 > 16 {
                return None;
            }
            ip[i..i + 4].copy_from_slice(&parse_ipv4(s)?);
            s = &[];
            i += 4;
            break;
        }
        ip[i] = (n >> 8) as u8;
        ip[i + 1] = n as u8;
        i += 2;
        s = &s[c..];
        if s.is_empty() {
            break;
        }
        if s[0] != b':' || s.len() == 1 {
            return None;
        }
        s = &s[1..];
        if s[0] == b':' {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            s = &s[1..];
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return None;
    }
    match ellipsis {
        Some(e) if i < 16 => {
            let n = 16 - i;
            ip.copy_within(e..i, e + n);
            ip[e..e + n].fill(0);
        }
        None if i < 16 => return None,
        // The ellipsis must stand for at least one zero group.
        Some(_) => return None,
        None => {}
    }
    Some(ip)
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
            // The forked Go 1.16 parser: leading zeros in an IPv6 address's IPv4 tail and in
            // its groups (found by the `cidr` fuzz target; cases from upstream's ip_test.go).
            (
                "fc00::8:0:092.168.80.0/120",
                "fc00::8:0:5ca8:5000/120",
                false,
            ),
            ("fd00:1:60::9.96.0.00/112", "fd00:1:60::960:0/112", false),
            ("0:0:0:0:00000a:0:0:1/80", "0:0:0:0:a::/80", true),
            ("000000010.0.0.0/8", "10.0.0.0/8", false),
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
            // `::` must stand for at least one zero group; a group must fit 16 bits.
            (
                "1:2:3:4:5:6:7::8/64",
                CidrError::BadAddress("1:2:3:4:5:6:7::8".into()),
            ),
            ("1::10000/64", CidrError::BadAddress("1::10000".into())),
            ("1::2::3/64", CidrError::BadAddress("1::2::3".into())),
            (
                "1:2:3:4:5:6:7:8:9/64",
                CidrError::BadAddress("1:2:3:4:5:6:7:8:9".into()),
            ),
            (
                "1:2:3:4:5:6:1.2.3.4:5/64",
                CidrError::BadAddress("1:2:3:4:5:6:1.2.3.4:5".into()),
            ),
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

    /// Upstream's `parseIPTests` (forked `ip_test.go`), the IPv4-mapped ones as the mapped
    /// IPv6 address Go keeps in 16 bytes.
    #[test]
    fn parses_ips_like_the_forked_go_parser() {
        let mapped = |a: [u8; 4]| Some(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()));
        let cases: [(&str, Option<IpAddr>); 21] = [
            ("127.0.1.2", Some(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 2)))),
            (
                "127.001.002.003",
                Some(IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3))),
            ),
            (
                "127.010.020.030",
                Some(IpAddr::V4(Ipv4Addr::new(127, 10, 20, 30))),
            ),
            ("::ffff:127.1.2.3", mapped([127, 1, 2, 3])),
            ("::ffff:127.001.002.003", mapped([127, 1, 2, 3])),
            ("::ffff:127.007.008.009", mapped([127, 7, 8, 9])),
            ("::ffff:7f01:0203", mapped([127, 1, 2, 3])),
            ("0:0:0:0:0000:ffff:127.1.2.3", mapped([127, 1, 2, 3])),
            ("0:0:0:0:000000:ffff:127.1.2.3", mapped([127, 1, 2, 3])),
            ("0:0:0:0::ffff:127.1.2.3", mapped([127, 1, 2, 3])),
            (
                "2001:4860:0000:2001:0000:0000:0000:0068",
                Some(IpAddr::V6(Ipv6Addr::new(
                    0x2001, 0x4860, 0, 0x2001, 0, 0, 0, 0x68,
                ))),
            ),
            ("::", Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))),
            ("-0.0.0.0", None),
            ("0.-1.0.0", None),
            ("127.0.0.256", None),
            ("abc", None),
            ("123:", None),
            ("fe80::1%lo0", None),
            ("fe80::1%911", None),
            ("", None),
            ("a1:a2:a3:a4::b1:b2:b3:b4", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_ip_sloppy(input), want, "{input}");
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
