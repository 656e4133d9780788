//! IP families and the address arithmetic the allocators share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An IP family, spelled as Kubernetes spells it (`IPv4`, `IPv6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Family {
    IPv4,
    IPv6,
}

impl Family {
    pub fn of_ip(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::IPv4,
            IpAddr::V6(_) => Family::IPv6,
        }
    }

    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::IPv4,
            IpNet::V6(_) => Family::IPv6,
        }
    }

    pub fn other(self) -> Family {
        match self {
            Family::IPv4 => Family::IPv6,
            Family::IPv6 => Family::IPv4,
        }
    }

    /// Address width in bits (32 or 128).
    pub fn bits(self) -> u8 {
        match self {
            Family::IPv4 => 32,
            Family::IPv6 => 128,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }

    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address as a 128-bit integer (IPv4 in the low 32 bits).
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inverse of [`ip_to_u128`] for the given family. IPv4 values are truncated to 32 bits.
pub fn u128_to_ip(family: Family, v: u128) -> IpAddr {
    match family {
        Family::IPv4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::IPv6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// `net`'s network address plus `offset` (no range check).
pub fn nth_addr(net: &IpNet, offset: u128) -> IpAddr {
    u128_to_ip(
        Family::of_net(net),
        ip_to_u128(net.network()).wrapping_add(offset),
    )
}

/// Number of addresses in `net`, saturating at `u128::MAX` for a /0 IPv6 network.
pub fn net_size(net: &IpNet) -> u128 {
    let host_bits = (net.max_prefix_len() - net.prefix_len()) as u32;
    if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let n: IpNet = "10.96.0.0/12".parse().unwrap();
        assert_eq!(net_size(&n), 1 << 20);
        assert_eq!(nth_addr(&n, 1).to_string(), "10.96.0.1");
        let n6: IpNet = "fd00::/108".parse().unwrap();
        assert_eq!(nth_addr(&n6, 10).to_string(), "fd00::a");
        assert_eq!(Family::of_net(&n6), Family::IPv6);
        assert_eq!(Family::IPv4.other(), Family::IPv6);
    }
}
