//! The `host-local` CNI IPAM plugin over one range (a node's podCIDR).
//!
//! Source: `containernetworking/plugins: plugins/ipam/host-local/backend/allocator/{range.go,
//! range_set.go,allocator.go,allocator_test.go}`. Behaviour reproduced here, for a range written
//! as just `subnet` (what kubenet and most bridge configurations do):
//!
//! - `Canonicalize`: a subnet with fewer than two host bits (IPv4 /31 and /32, IPv6 /127 and
//!   /128) is refused (`Network %s too small to allocate from`). The gateway defaults to the
//!   first address (`.1`), `rangeStart` to the first address too (the iterator skips the
//!   gateway), `rangeEnd` to the last address, minus the broadcast address for IPv4.
//! - `GetIter`/`Next`: allocation is round-robin from the *last reserved IP* + 1 (the store keeps
//!   it per range), wrapping from `rangeEnd` to `rangeStart`, skipping the gateway, and giving
//!   up after a full cycle. Releasing an IP does not move the last reserved IP, so a released
//!   address is reused only after the cursor wraps round to it.
//! - A last reserved IP outside the range is ignored and the scan starts at `rangeStart`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::family::{Family, ip_to_u128, net_size, u128_to_ip};
use crate::intervals::IntervalSet;

/// Pod IPs `host-local` can hand out in `subnet` with default settings: from `.1` to the last
/// address (IPv4: minus broadcast), minus the gateway. 0 when the subnet is too small.
pub fn host_local_capacity(subnet: &IpNet) -> u128 {
    match bounds(&subnet.trunc()) {
        Some((start, end)) => end - start, // (end - start + 1) addresses minus the gateway
        None => 0,
    }
}

/// `(rangeStart, rangeEnd)` as offsets from the network address, or `None` if too small.
fn bounds(subnet: &IpNet) -> Option<(u128, u128)> {
    if subnet.prefix_len() > subnet.max_prefix_len() - 2 {
        return None;
    }
    let size = net_size(subnet);
    let last = match Family::of_net(subnet) {
        // The broadcast address is excluded for IPv4 only.
        Family::IPv4 => size - 2,
        Family::IPv6 => size - 1,
    };
    Some((1, last))
}

/// host-local IPAM state for one range.
#[derive(Clone, Debug)]
pub struct HostLocal {
    subnet: IpNet,
    /// Offsets from the network address; `start > end` means an empty range.
    start: u128,
    end: u128,
    gateway: u128,
    reserved: IntervalSet,
    last_reserved: Option<u128>,
}

impl HostLocal {
    /// A range over `subnet` with host-local's defaults. A subnet that is too small gives a
    /// range with no capacity; use [`HostLocal::try_new`] to get upstream's error instead.
    pub fn new(subnet: IpNet) -> HostLocal {
        HostLocal::try_new(subnet).unwrap_or_else(|_| HostLocal {
            subnet: subnet.trunc(),
            start: 1,
            end: 0,
            gateway: 1,
            reserved: IntervalSet::new(),
            last_reserved: None,
        })
    }

    /// `Range.Canonicalize` with only `subnet` set.
    pub fn try_new(subnet: IpNet) -> Result<HostLocal, String> {
        let subnet = subnet.trunc();
        let (start, end) = bounds(&subnet)
            .ok_or_else(|| format!("Network {subnet} too small to allocate from"))?;
        Ok(HostLocal {
            subnet,
            start,
            end,
            gateway: 1,
            reserved: IntervalSet::new(),
            last_reserved: None,
        })
    }

    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// The gateway (the bridge's address): the first address of the subnet.
    pub fn gateway(&self) -> IpAddr {
        self.addr(self.gateway)
    }

    /// Addresses this range can hand out (excluding the gateway).
    pub fn capacity(&self) -> u128 {
        // (end - start + 1) addresses minus the gateway; an empty range has start > end.
        self.end.saturating_sub(self.start)
    }

    pub fn used(&self) -> u128 {
        self.reserved.count()
    }

    pub fn free(&self) -> u128 {
        self.capacity() - self.used()
    }

    /// The last reserved IP the store remembers for this range.
    pub fn last_reserved(&self) -> Option<IpAddr> {
        self.last_reserved.map(|o| self.addr(o))
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.offset_in_range(ip)
            .is_some_and(|o| self.reserved.contains(o))
    }

    /// `IPAllocator.Get` without a requested IP: the next free address, round-robin.
    pub fn allocate(&mut self) -> Option<IpAddr> {
        if self.start > self.end {
            return None;
        }
        let hi = self.end + 1;
        let found = match self
            .last_reserved
            .filter(|o| (self.start..=self.end).contains(o))
        {
            // The cycle starts just after the last reserved IP and ends on it.
            Some(last) => {
                let from = if last == self.end {
                    self.start
                } else {
                    last + 1
                };
                self.first_free(from, hi)
                    .or_else(|| self.first_free(self.start, from))
            }
            None => self.first_free(self.start, hi),
        }?;
        self.reserved.insert(found);
        self.last_reserved = Some(found);
        Some(self.addr(found))
    }

    /// [`HostLocal::allocate`] with upstream's error when the range is exhausted.
    pub fn try_allocate(&mut self) -> Result<IpAddr, String> {
        self.allocate().ok_or_else(|| {
            format!(
                "no IP addresses available in range set: {}",
                self.range_set()
            )
        })
    }

    /// `IPAllocator.Get` with a requested IP (the `ips` capability / `IP=` CNI arg).
    pub fn reserve(&mut self, ip: IpAddr) -> Result<(), String> {
        let Some(offset) = self.offset_in_range(ip) else {
            return Err(format!("{ip} not in range set {}", self.range_set()));
        };
        if offset == self.gateway {
            return Err(format!("requested ip {ip} is subnet's gateway"));
        }
        if !self.reserved.insert(offset) {
            return Err(format!(
                "requested IP address {ip} is not available in range set {}",
                self.range_set()
            ));
        }
        self.last_reserved = Some(offset);
        Ok(())
    }

    /// `ReleaseByID`: frees the address; the last reserved IP stays where it was.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(offset) = self.offset_in_range(ip) {
            self.reserved.remove(offset);
        }
    }

    /// Restores the store's `last_reserved_ip` file (e.g. an upgraded node). An address outside
    /// the range is kept and, like upstream, ignored by the next allocation.
    pub fn set_last_reserved(&mut self, ip: Option<IpAddr>) {
        self.last_reserved = ip.and_then(|ip| {
            if Family::of_ip(&ip) != Family::of_net(&self.subnet) {
                return None;
            }
            ip_to_u128(ip).checked_sub(ip_to_u128(self.subnet.network()))
        });
    }

    /// `RangeSet.String()` for a single range: `rangeStart-rangeEnd`.
    pub fn range_set(&self) -> String {
        format!("{}-{}", self.addr(self.start), self.addr(self.end))
    }

    /// The first address in `[a, b)` that is neither reserved nor the gateway.
    fn first_free(&self, a: u128, b: u128) -> Option<u128> {
        let mut from = a;
        loop {
            let o = self.reserved.first_free_in(from, b)?;
            if o != self.gateway {
                return Some(o);
            }
            from = o + 1;
        }
    }

    fn addr(&self, offset: u128) -> IpAddr {
        u128_to_ip(
            Family::of_net(&self.subnet),
            ip_to_u128(self.subnet.network()).wrapping_add(offset),
        )
    }

    fn offset_in_range(&self, ip: IpAddr) -> Option<u128> {
        if Family::of_ip(&ip) != Family::of_net(&self.subnet) || !self.subnet.contains(&ip) {
            return None;
        }
        let o = ip_to_u128(ip) - ip_to_u128(self.subnet.network());
        (self.start..=self.end).contains(&o).then_some(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn capacity_and_gateway() {
        // (subnet, capacity, gateway, first pod IP)
        let table = [
            ("10.244.1.0/24", 253u128, "10.244.1.1", Some("10.244.1.2")),
            ("10.0.0.0/29", 5, "10.0.0.1", Some("10.0.0.2")),
            ("10.0.0.0/30", 1, "10.0.0.1", Some("10.0.0.2")),
            ("10.0.0.0/31", 0, "10.0.0.1", None),
            ("10.0.0.0/32", 0, "10.0.0.1", None),
            (
                "2001:db8:1::/64",
                (1u128 << 64) - 2,
                "2001:db8:1::1",
                Some("2001:db8:1::2"),
            ),
            ("fd00::/126", 2, "fd00::1", Some("fd00::2")),
            ("fd00::/127", 0, "fd00::1", None),
        ];
        for (subnet, cap, gw, first) in table {
            assert_eq!(host_local_capacity(&net(subnet)), cap, "{subnet}");
            let mut h = HostLocal::new(net(subnet));
            assert_eq!(h.capacity(), cap, "{subnet}");
            assert_eq!(h.gateway(), ip(gw));
            assert_eq!(h.allocate(), first.map(ip), "{subnet}");
        }
        assert_eq!(
            HostLocal::try_new(net("10.0.0.0/31")).unwrap_err(),
            "Network 10.0.0.0/31 too small to allocate from"
        );
    }

    /// allocator_test.go "should allocate ips in round robin": (subnet, reserved IPs, last
    /// reserved IP, expected allocation).
    #[test]
    fn round_robin_table() {
        let table: [(&str, &[&str], Option<&str>, &str); 9] = [
            ("10.0.0.0/29", &[], None, "10.0.0.2"),
            ("2001:db8:1::0/64", &[], None, "2001:db8:1::2"),
            ("10.0.0.0/30", &[], None, "10.0.0.2"),
            ("10.0.0.0/29", &["10.0.0.2"], None, "10.0.0.3"),
            ("10.0.0.0/29", &[], Some("10.0.0.5"), "10.0.0.6"),
            (
                "10.0.0.0/29",
                &["10.0.0.4", "10.0.0.5"],
                Some("10.0.0.3"),
                "10.0.0.6",
            ),
            ("10.0.0.0/29", &["10.0.0.6"], Some("10.0.0.5"), "10.0.0.2"),
            ("10.0.0.0/29", &["10.0.0.2"], Some("10.0.0.128"), "10.0.0.3"),
            (
                "10.0.0.0/29",
                &["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
                Some("10.0.0.3"),
                "10.0.0.3",
            ),
        ];
        for (subnet, reserved, last, want) in table {
            let mut h = HostLocal::new(net(subnet));
            for r in reserved {
                h.reserve(ip(r)).unwrap();
            }
            h.set_last_reserved(last.map(ip));
            assert_eq!(
                h.allocate(),
                Some(ip(want)),
                "{subnet} {reserved:?} {last:?}"
            );
        }
    }

    /// allocator_test.go "should not allocate the broadcast address", "should allocate in a
    /// round-robin fashion", "returns a meaningful error", and the RangeIter loops.
    #[test]
    fn exhaustion_release_and_errors() {
        let mut h = HostLocal::new(net("192.168.1.0/29"));
        let got: Vec<IpAddr> = (0..5).map(|_| h.allocate().unwrap()).collect();
        assert_eq!(
            got,
            [
                "192.168.1.2",
                "192.168.1.3",
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6"
            ]
            .map(ip)
            .to_vec()
        );
        assert_eq!(
            h.try_allocate().unwrap_err(),
            "no IP addresses available in range set: 192.168.1.1-192.168.1.6"
        );

        // Round robin after release: the freed .2 is not reused, .3 comes next.
        let mut h = HostLocal::new(net("192.168.1.0/29"));
        assert_eq!(h.allocate(), Some(ip("192.168.1.2")));
        h.release(ip("192.168.1.2"));
        assert_eq!(h.allocate(), Some(ip("192.168.1.3")));

        // Released addresses come back once the cursor wraps.
        let mut h = HostLocal::new(net("10.0.0.0/29"));
        for _ in 0..5 {
            h.allocate();
        }
        h.release(ip("10.0.0.3"));
        h.release(ip("10.0.0.5"));
        assert_eq!(h.allocate(), Some(ip("10.0.0.3")));
        assert_eq!(h.allocate(), Some(ip("10.0.0.5")));
        assert_eq!(h.allocate(), None);
        assert_eq!(h.used(), 5);
        assert_eq!(h.free(), 0);

        // Requested-IP errors (allocator_test.go "must fail when the requested IP is allocated").
        let mut h = HostLocal::new(net("192.168.1.0/29"));
        h.reserve(ip("192.168.1.5")).unwrap();
        let table = [
            (
                "192.168.1.5",
                "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6",
            ),
            (
                "192.168.1.1",
                "requested ip 192.168.1.1 is subnet's gateway",
            ),
            (
                "192.168.1.7",
                "192.168.1.7 not in range set 192.168.1.1-192.168.1.6",
            ),
        ];
        for (addr, text) in table {
            assert_eq!(h.reserve(ip(addr)).unwrap_err(), text);
        }
        // The requested IP became the last reserved one.
        assert_eq!(h.allocate(), Some(ip("192.168.1.6")));
    }
}
