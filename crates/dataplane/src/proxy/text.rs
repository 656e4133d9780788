//! Writing rule text fast: addresses and numbers appended to a `String` without going through
//! `core::fmt`, which costs more than the copying itself when a rule set has hundreds of
//! thousands of lines.
//!
//! Every writer produces exactly the text of the corresponding `Display` implementation
//! (`Ipv4Addr`, `Ipv6Addr`, `ipnet::IpNet`, integers); the tests below check that over many
//! values, so that switching a renderer to these writers cannot change its output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

// Each writer reserves the longest text it can produce, then pushes ASCII characters one by
// one: for tokens this short that is cheaper than formatting into a buffer and validating and
// copying it.

/// Appends a decimal `u32`.
pub fn push_u32(out: &mut String, v: u32) {
    if v < 10 {
        out.push(char::from(b'0' + v as u8));
        return;
    }
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    let mut v = v;
    while v > 0 {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.reserve(tmp.len() - i);
    for &b in &tmp[i..] {
        out.push(char::from(b));
    }
}

#[inline]
fn push_octet(out: &mut String, v: u8) {
    if v >= 100 {
        out.push(char::from(b'0' + v / 100));
        out.push(char::from(b'0' + (v / 10) % 10));
    } else if v >= 10 {
        out.push(char::from(b'0' + v / 10));
    }
    out.push(char::from(b'0' + v % 10));
}

#[inline]
fn push_hex16(out: &mut String, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = if v >= 0x1000 {
        4
    } else if v >= 0x100 {
        3
    } else if v >= 0x10 {
        2
    } else {
        1
    };
    for k in (0..digits).rev() {
        out.push(char::from(HEX[((v >> (4 * k)) & 0xf) as usize]));
    }
}

/// Appends an IPv4 address as `Ipv4Addr`'s `Display` writes it.
pub fn push_ipv4(out: &mut String, ip: Ipv4Addr) {
    let [a, b, c, d] = ip.octets();
    out.reserve(15);
    push_octet(out, a);
    out.push('.');
    push_octet(out, b);
    out.push('.');
    push_octet(out, c);
    out.push('.');
    push_octet(out, d);
}

/// Appends an IPv6 address as `Ipv6Addr`'s `Display` writes it (RFC 5952: the first longest
/// run of two or more zero groups becomes `::`; IPv4-mapped addresses end in dotted decimal),
/// with `sep` between groups (`:`, or `.` for nftables chain names).
fn push_ipv6_sep(out: &mut String, ip: Ipv6Addr, sep: char) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        for _ in 0..2 {
            out.push(sep);
        }
        out.push_str("ffff");
        out.push(sep);
        push_ipv4(out, v4);
        return;
    }
    out.reserve(39);
    let seg = ip.segments();
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let (mut cur_start, mut cur_len) = (0usize, 0usize);
    for (i, &s) in seg.iter().enumerate() {
        if s == 0 {
            if cur_len == 0 {
                cur_start = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best_start = cur_start;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let groups = |out: &mut String, part: &[u16]| {
        for (i, &s) in part.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            push_hex16(out, s);
        }
    };
    if best_len > 1 {
        groups(out, &seg[..best_start]);
        out.push(sep);
        out.push(sep);
        groups(out, &seg[best_start + best_len..]);
    } else {
        groups(out, &seg);
    }
}

/// Appends an IPv6 address as `Ipv6Addr`'s `Display` writes it.
pub fn push_ipv6(out: &mut String, ip: Ipv6Addr) {
    push_ipv6_sep(out, ip, ':');
}

/// Appends an address as `IpAddr`'s `Display` writes it.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => push_ipv6(out, v6),
    }
}

/// Appends a CIDR as `IpNet`'s `Display` writes it (`addr/len`).
pub fn push_net(out: &mut String, net: IpNet) {
    push_ip(out, net.addr());
    out.push('/');
    push_u32(out, net.prefix_len().into());
}

/// Appends `ip:port`, or `[ip]:port` for IPv6, as Go's `net.JoinHostPort` writes it.
pub fn push_host_port(out: &mut String, ip: IpAddr, port: u16) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => {
            out.push('[');
            push_ipv6(out, v6);
            out.push(']');
        }
    }
    out.push(':');
    push_u32(out, port.into());
}

/// Appends an address with every `:` written as `.` (how nftables chain names carry IPv6
/// addresses, which may not contain colons).
pub fn push_ip_dotted(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => push_ipv6_sep(out, v6, '.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6_cases() -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "fd00:10:96::a",
            "2001:db8::1:0:0:1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1::1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "fe80::1:2:3:4",
            "1:2:3:4:5:6:7:8",
            "1:0:2:0:3:0:4:0",
            "0:0:1:0:0:0:1:0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // Every pattern of zero and non-zero groups, with varied digit counts.
        for mask in 0u32..256 {
            let mut seg = [0u16; 8];
            for (i, s) in seg.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *s = [0x1, 0x2a, 0x3bc, 0xdef0][(i + mask as usize) % 4];
                }
            }
            v.push(Ipv6Addr::from(seg));
        }
        v
    }

    #[test]
    fn addresses_render_like_display() {
        for ip in v6_cases() {
            let mut s = String::new();
            push_ipv6(&mut s, ip);
            assert_eq!(s, ip.to_string(), "{ip:?}");
        }
        for n in [
            0u32,
            1,
            9,
            10,
            99,
            100,
            255,
            256,
            0x7f00_0001,
            0xc0a8_0001,
            u32::MAX,
        ] {
            let ip = Ipv4Addr::from(n);
            let mut s = String::new();
            push_ipv4(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    #[test]
    fn dotted_addresses_replace_every_colon() {
        for ip in v6_cases() {
            let mut s = String::new();
            push_ip_dotted(&mut s, IpAddr::V6(ip));
            assert_eq!(s, ip.to_string().replace(':', "."), "{ip:?}");
        }
    }

    #[test]
    fn numbers_nets_and_host_ports_render_like_display() {
        for n in [0u32, 7, 10, 65535, 100_000, u32::MAX] {
            let mut s = String::new();
            push_u32(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for net in ["10.0.0.0/8", "0.0.0.0/0", "fd00:10:96::/108", "::1/128"] {
            let net: IpNet = net.parse().unwrap();
            let mut s = String::new();
            push_net(&mut s, net);
            assert_eq!(s, net.to_string());
        }
        for (ip, port, want) in [
            ("10.1.2.3", 80, "10.1.2.3:80"),
            ("fd00::5", 8080, "[fd00::5]:8080"),
        ] {
            let mut s = String::new();
            push_host_port(&mut s, ip.parse().unwrap(), port);
            assert_eq!(s, want);
        }
    }
}
