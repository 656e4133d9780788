//! kube-apiserver's Service ClusterIP allocators.
//!
//! Two implementations existed, and knetsim models both:
//!
//! - [`AllocatorKind::Bitmap`], the legacy allocator (`pkg/registry/core/service/ipallocator/
//!   bitmap.go` over `…/allocator/bitmap.go`), default up to 1.32 (before
//!   `MultiCIDRServiceAllocator` went GA). Offsets count from the network address + 1. IPv4
//!   excludes the broadcast address: `max = RangeSize - 2`. IPv6 caps the bitmap at 2^16:
//!   `max = min(RangeSize, 65536) - 1`, so only the first 65535 addresses after the network
//!   address are ever used, and the all-ones address of a /112 *is* usable.
//! - [`AllocatorKind::IpAddress`], the KEP-1880 allocator (`…/ipallocator/ipallocator.go`) that
//!   records each IP as an `IPAddress` object. It refuses IPv6 prefixes shorter than /64 and uses
//!   the whole range: `hostsPerNetwork` is `2^h - 2` (IPv4) or `2^h - 1` (IPv6), capped at
//!   `MaxUint64`.
//!
//! Both apply KEP-3070 (`ServiceIPStaticSubrange`): `calculateRangeOffset` splits the range into a
//! lower *static* band (offsets `[0, rangeOffset)`, preferred for user-chosen IPs) and an upper
//! *dynamic* band. `AllocateNext` picks a random start in the upper band and scans linearly with
//! wrap-around inside it; only when the upper band is full does it do the same in the lower band.
//! A user-chosen IP (`Allocate`) may be in either band.
//!
//! Randomness comes from a [`NamedRng`] the caller passes in; Go's `math/rand` stream is not
//! reproduced, only the distribution (uniform start, linear scan) and hence the band behaviour.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rand::RngExt;

use crate::family::{Family, ip_to_u128, nth_addr, u128_to_ip};
use crate::intervals::IntervalSet;
use crate::rng::NamedRng;

/// Which kube-apiserver allocator backs a Service CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum AllocatorKind {
    /// The legacy bitmap allocator (`RangeAllocation` object in etcd).
    Bitmap,
    /// The KEP-1880 allocator (`ServiceCIDR` + `IPAddress` objects).
    IpAddress,
}

impl fmt::Display for AllocatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocatorKind::Bitmap => "bitmap",
            AllocatorKind::IpAddress => "ipaddress",
        })
    }
}

/// Errors of the Service IP allocators (`…/ipallocator/interfaces.go`, `ipallocator.go`).
/// `Display` is the exact upstream text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceIpError {
    /// `ErrFull`.
    #[error("range is full")]
    Full,
    /// `ErrAllocated`.
    #[error("provided IP is already allocated")]
    Allocated,
    /// `ErrNotInRange`, as rendered by the revisions knetsim models (roughly 1.20 to 1.36).
    /// [`ServiceIpError::legacy_text`] gives the older rendering.
    #[error(
        "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {valid_range}"
    )]
    NotInRange { ip: IpAddr, valid_range: String },
    /// `ErrMismatchedNetwork`.
    #[error("the provided network does not match the current range")]
    MismatchedNetwork,
    /// `ErrNotReady`.
    #[error("allocator not ready")]
    NotReady,
    /// `NewIPAllocator` refuses IPv6 Service CIDRs shorter than /64.
    #[error("shortest allowed prefix length for service CIDR is 64, got {prefix}")]
    PrefixTooShort { prefix: u8 },
}

impl ServiceIpError {
    /// The text of this error in the revisions before the IP was included in `ErrNotInRange`
    /// (1.8 until the dual-stack rewrite of the allocators): `provided IP is not in the valid
    /// range. The range of valid IPs is <cidr>`. Other errors render as usual.
    pub fn legacy_text(&self) -> String {
        match self {
            ServiceIpError::NotInRange { valid_range, .. } => format!(
                "provided IP is not in the valid range. The range of valid IPs is {valid_range}"
            ),
            other => other.to_string(),
        }
    }
}

/// `k8s.io/utils/net.RangeSize`: the number of addresses in `cidr`, except that IPv4 prefixes
/// /0 and /1 and IPv6 prefixes /0 and /1 give 0, and anything with 63 or more host bits gives
/// `MaxInt64`. Both allocators and kube-apiserver's flag checks use this.
pub fn utils_range_size(cidr: &IpNet) -> u128 {
    let bits = cidr.max_prefix_len();
    let host = u32::from(bits - cidr.prefix_len());
    if (bits == 32 && host >= 31) || (bits == 128 && host >= 127) {
        return 0;
    }
    if host >= 63 {
        return i64::MAX as u128;
    }
    1u128 << host
}

/// KEP-3070 `calculateRangeOffset`: `min(max(16, size/16), 256)` of the full CIDR size, or 0 when
/// the CIDR holds 16 addresses or fewer.
pub fn calculate_range_offset(cidr: &IpNet) -> u128 {
    const MIN: u128 = 16;
    const MAX: u128 = 256;
    const STEP: u128 = 16;
    let size = utils_range_size(cidr);
    if size <= MIN {
        return 0;
    }
    (size / STEP).clamp(MIN, MAX)
}

/// How many ClusterIPs `cidr` offers under `kind`, without building an allocator. IPv6 CIDRs
/// shorter than /64 give 0 for [`AllocatorKind::IpAddress`], which refuses them.
pub fn service_range_size(cidr: &IpNet, kind: AllocatorKind) -> u128 {
    let cidr = cidr.trunc();
    match kind {
        AllocatorKind::Bitmap => bitmap_max(&cidr),
        AllocatorKind::IpAddress => {
            if Family::of_net(&cidr) == Family::IPv6 && cidr.prefix_len() < 64 {
                0
            } else {
                hosts_per_network(&cidr)
            }
        }
    }
}

/// kube-apiserver's check behind "the service cluster IP range must be at least 8 IP
/// addresses": `min(RangeSize, 2^16) >= 8` (`pkg/controlplane/apiserver/options ServiceIPRange`).
pub fn service_range_has_min_addresses(cidr: &IpNet) -> bool {
    utils_range_size(cidr).min(1 << 16) >= 8
}

/// `bitmap.go New`: the number of bitmap offsets.
fn bitmap_max(cidr: &IpNet) -> u128 {
    let mut max = utils_range_size(cidr);
    if Family::of_net(cidr) == Family::IPv6 {
        max = max.min(65536);
    } else {
        max = max.saturating_sub(1);
    }
    max.saturating_sub(1)
}

/// `ipallocator.go hostsPerNetwork`.
fn hosts_per_network(cidr: &IpNet) -> u128 {
    let host = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    if host >= 64 {
        return u128::from(u64::MAX);
    }
    let mut max = 1u128 << host;
    max -= 1;
    if Family::of_net(cidr) == Family::IPv4 {
        max = max.saturating_sub(1);
    }
    max
}

/// A Service CIDR's ClusterIP allocator.
#[derive(Clone, Debug)]
pub struct ServiceIpAllocator {
    cidr: IpNet,
    kind: AllocatorKind,
    /// Address value of offset 0 (network + 1).
    base: u128,
    /// Allocatable offsets are `[0, size)`.
    size: u128,
    /// Offsets `[0, range_offset)` are the static band; 0 when KEP-3070 is off.
    range_offset: u128,
    used: IntervalSet,
    rng: NamedRng,
}

impl ServiceIpAllocator {
    /// `ipallocator.New`/`NewInMemory` (bitmap) or `NewIPAllocator` (IPAddress).
    /// `static_subrange`: whether KEP-3070 `ServiceIPStaticSubrange` is in effect (the caller
    /// decides by version and feature gates); without it the whole range is one band.
    pub fn new(
        cidr: IpNet,
        kind: AllocatorKind,
        static_subrange: bool,
        rng: NamedRng,
    ) -> Result<ServiceIpAllocator, ServiceIpError> {
        let cidr = cidr.trunc();
        if kind == AllocatorKind::IpAddress
            && Family::of_net(&cidr) == Family::IPv6
            && cidr.prefix_len() < 64
        {
            return Err(ServiceIpError::PrefixTooShort {
                prefix: cidr.prefix_len(),
            });
        }
        let size = service_range_size(&cidr, kind);
        let range_offset = if static_subrange {
            calculate_range_offset(&cidr)
        } else {
            0
        };
        Ok(ServiceIpAllocator {
            cidr,
            kind,
            // Wrapping: only an all-ones /128 overflows, and it has no allocatable address.
            base: ip_to_u128(cidr.network()).wrapping_add(1),
            size,
            range_offset,
            used: IntervalSet::new(),
            rng,
        })
    }

    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }

    pub fn kind(&self) -> AllocatorKind {
        self.kind
    }

    /// Allocatable addresses.
    pub fn size(&self) -> u128 {
        self.size
    }

    pub fn used(&self) -> u128 {
        self.used.count()
    }

    pub fn free(&self) -> u128 {
        self.size - self.used.count()
    }

    /// Size of the static (lower) band in effect: `calculate_range_offset` when KEP-3070 is on,
    /// else 0.
    pub fn static_band_size(&self) -> u128 {
        self.range_offset
    }

    /// Network address + 1: the `kubernetes` Service's ClusterIP (`GetIndexedIP(range, 1)`).
    pub fn first_usable(&self) -> IpAddr {
        nth_addr(&self.cidr, 1)
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some_and(|o| self.used.contains(o))
    }

    /// Allocated IPs, ascending (for reporting).
    pub fn allocated_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let family = self.family();
        let base = self.base;
        self.used
            .ranges()
            .flat_map(move |(a, b)| (a..b).map(move |o| u128_to_ip(family, base + o)))
    }

    /// `Allocate(ip)`: a user-chosen ClusterIP, in either band.
    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), ServiceIpError> {
        let Some(offset) = self.offset_of(ip) else {
            return Err(ServiceIpError::NotInRange {
                ip,
                valid_range: self.cidr.to_string(),
            });
        };
        if !self.used.insert(offset) {
            return Err(ServiceIpError::Allocated);
        }
        Ok(())
    }

    /// `AllocateNext`: a dynamic ClusterIP, upper band first.
    pub fn allocate_next(&mut self) -> Result<IpAddr, ServiceIpError> {
        let offset = match self.kind {
            AllocatorKind::Bitmap => self.next_bitmap(),
            AllocatorKind::IpAddress => self.next_ipaddress(),
        }
        .ok_or(ServiceIpError::Full)?;
        self.used.insert(offset);
        Ok(u128_to_ip(self.family(), self.base + offset))
    }

    /// `Release(ip)`: a no-op for IPs that are not allocated or not in range.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(offset) = self.offset_of(ip) {
            self.used.remove(offset);
        }
    }

    /// The offset of `ip` if it is one of this range's allocatable addresses (`contains`).
    fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        if Family::of_ip(&ip) != self.family() || !self.cidr.contains(&ip) {
            return None;
        }
        let v = ip_to_u128(ip);
        let offset = v.checked_sub(self.base)?;
        (offset < self.size).then_some(offset)
    }

    /// `randomScanStrategyWithOffset.AllocateBit`.
    fn next_bitmap(&mut self) -> Option<u128> {
        if self.used.count() >= self.size {
            return None;
        }
        let upper = self.size.saturating_sub(self.range_offset);
        if upper > 0 {
            let start = self.range_offset + self.rng.random_range(0..upper);
            if let Some(o) = self
                .used
                .first_free_wrapping(self.range_offset, self.size, start)
            {
                return Some(o);
            }
        }
        if self.range_offset > 0 {
            let start = self.rng.random_range(0..self.range_offset);
            return self.used.first_free_wrapping(0, self.range_offset, start);
        }
        None
    }

    /// `Allocator.allocateNextService`.
    fn next_ipaddress(&mut self) -> Option<u128> {
        let range_size = self.size.saturating_sub(self.range_offset);
        let start = if range_size >= i64::MAX as u128 {
            // Upstream draws a full uint64 here and only keeps the sum from overflowing; a start
            // past the last address wraps to the first address of the upper band.
            let mut o = u128::from(self.rng.random::<u64>());
            if u128::from(u64::MAX) - o < self.range_offset {
                o -= self.range_offset;
            }
            if o >= range_size { 0 } else { o }
        } else if range_size == 0 {
            return None;
        } else {
            self.rng.random_range(0..range_size)
        };
        if let Some(o) =
            self.used
                .first_free_wrapping(self.range_offset, self.size, self.range_offset + start)
        {
            return Some(o);
        }
        if self.range_offset > 0 {
            let start = self.rng.random_range(0..self.range_offset);
            return self.used.first_free_wrapping(0, self.range_offset, start);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::named;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn alloc(cidr: &str, kind: AllocatorKind) -> ServiceIpAllocator {
        ServiceIpAllocator::new(net(cidr), kind, true, named(7, "service-ip")).unwrap()
    }

    /// Sizes from the fact sheet §2.2/§2.3 (bitmap.go `New`, ipallocator.go `hostsPerNetwork`):
    /// (cidr, bitmap size, IPAddress size).
    #[test]
    fn range_sizes() {
        let table: [(&str, u128, u128); 10] = [
            ("10.0.0.0/24", 254, 254),
            ("10.0.0.0/15", 131070, 131070),
            ("2001:db8::/48", 65535, 0),
            ("10.0.0.0/32", 0, 0),
            ("10.0.0.0/31", 0, 0),
            ("10.0.0.0/30", 2, 2),
            ("fd00::/112", 65535, 65535),
            ("fd00::/108", 65535, (1 << 20) - 1),
            ("fd00::/64", 65535, u64::MAX as u128),
            ("fd00::/127", 1, 1),
        ];
        for (cidr, bitmap, ipaddress) in table {
            assert_eq!(
                service_range_size(&net(cidr), AllocatorKind::Bitmap),
                bitmap,
                "{cidr} bitmap"
            );
            assert_eq!(
                service_range_size(&net(cidr), AllocatorKind::IpAddress),
                ipaddress,
                "{cidr} ipaddress"
            );
        }
    }

    /// KEP-3070 offsets (bitmap_test.go TestCalculateRangeOffset and the fact sheet).
    #[test]
    fn range_offsets() {
        let table = [
            ("192.168.1.0/28", 0u128),
            ("192.168.1.0/27", 16),
            ("192.168.1.0/24", 16),
            ("192.168.1.0/22", 64),
            ("10.0.0.0/8", 256),
            ("10.0.0.0/12", 256),
            ("fd00::/122", 16),
            ("fd00::/118", 64),
            ("fd00::/12", 256),
            ("fd00::/64", 256),
            ("192.168.1.0/29", 0),
        ];
        for (cidr, want) in table {
            assert_eq!(calculate_range_offset(&net(cidr)), want, "{cidr}");
        }
    }

    #[test]
    fn construction_errors_and_min_size_check() {
        let err = ServiceIpAllocator::new(
            net("fd00::/48"),
            AllocatorKind::IpAddress,
            true,
            named(1, "x"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "shortest allowed prefix length for service CIDR is 64, got 48"
        );
        // The legacy bitmap accepts any prefix (it just caps at 2^16).
        assert!(
            ServiceIpAllocator::new(net("fd00::/48"), AllocatorKind::Bitmap, true, named(1, "x"))
                .is_ok()
        );
        // (cidr, passes kube-apiserver's "at least 8 IP addresses")
        let table = [
            ("10.0.0.0/29", true),
            ("10.0.0.0/30", false),
            ("fd00::/125", true),
            ("fd00::/126", false),
            ("0.0.0.0/1", false),
            ("fd00::/8", true),
        ];
        for (cidr, ok) in table {
            assert_eq!(service_range_has_min_addresses(&net(cidr)), ok, "{cidr}");
        }
    }

    /// Dynamic allocations land in the upper band until it is full, then in the lower band, then
    /// `range is full` (bitmap_test.go TestAllocateNextWithOffset / ipallocator_test.go).
    #[test]
    fn dynamic_allocation_fills_upper_band_first() {
        // (kind, cidr): /27 has 30 addresses, a static band of 16 and a dynamic band of 14.
        for (kind, cidr) in [
            (AllocatorKind::Bitmap, "192.168.1.0/27"),
            (AllocatorKind::IpAddress, "192.168.1.0/27"),
            (AllocatorKind::Bitmap, "fd00::/123"),
            (AllocatorKind::IpAddress, "fd00::/123"),
        ] {
            let mut a = alloc(cidr, kind);
            let base = ip_to_u128(net(cidr).network());
            let offset = a.static_band_size();
            assert_eq!(offset, 16);
            let upper = a.size() - offset;
            for _ in 0..upper {
                let got = ip_to_u128(a.allocate_next().unwrap()) - base;
                assert!(
                    got > offset,
                    "{kind} {cidr}: {got} should be in the upper band"
                );
            }
            for _ in 0..offset {
                let got = ip_to_u128(a.allocate_next().unwrap()) - base;
                assert!(
                    (1..=offset).contains(&got),
                    "{kind} {cidr}: {got} should be in the lower band"
                );
            }
            assert_eq!(a.free(), 0);
            assert_eq!(a.allocate_next().unwrap_err().to_string(), "range is full");
        }
    }

    /// Without KEP-3070 the whole range is one band.
    #[test]
    fn without_static_subrange_the_whole_range_is_dynamic() {
        let mut a = ServiceIpAllocator::new(
            net("10.0.0.0/24"),
            AllocatorKind::Bitmap,
            false,
            named(3, "svc"),
        )
        .unwrap();
        assert_eq!(a.static_band_size(), 0);
        let mut low = 0;
        for _ in 0..254 {
            let o = ip_to_u128(a.allocate_next().unwrap()) - ip_to_u128(ip("10.0.0.0"));
            assert!((1..=254).contains(&o));
            if o <= 16 {
                low += 1;
            }
        }
        assert_eq!(low, 16);
        assert_eq!(a.allocate_next(), Err(ServiceIpError::Full));
    }

    /// User-chosen IPs: either band; errors with upstream texts.
    #[test]
    fn user_chosen_ips() {
        for kind in [AllocatorKind::Bitmap, AllocatorKind::IpAddress] {
            let mut a = alloc("10.96.0.0/24", kind);
            // (ip, result)
            let table: [(&str, Result<(), String>); 8] = [
                ("10.96.0.1", Ok(())),
                ("10.96.0.10", Ok(())),
                ("10.96.0.200", Ok(())),
                ("10.96.0.10", Err("provided IP is already allocated".into())),
                (
                    "10.96.0.0",
                    Err("the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/24".into()),
                ),
                (
                    "10.96.0.255",
                    Err("the provided IP (10.96.0.255) is not in the valid range. The range of valid IPs is 10.96.0.0/24".into()),
                ),
                (
                    "10.97.0.1",
                    Err("the provided IP (10.97.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/24".into()),
                ),
                (
                    "fd00::1",
                    Err("the provided IP (fd00::1) is not in the valid range. The range of valid IPs is 10.96.0.0/24".into()),
                ),
            ];
            for (addr, want) in table {
                assert_eq!(
                    a.allocate(ip(addr)).map_err(|e| e.to_string()),
                    want,
                    "{kind} {addr}"
                );
            }
            assert_eq!(a.used(), 3);
            assert_eq!(a.first_usable(), ip("10.96.0.1"));
            a.release(ip("10.96.0.10"));
            a.release(ip("10.96.0.10"));
            a.release(ip("192.0.2.1"));
            assert_eq!(a.used(), 2);
            assert!(!a.is_allocated(ip("10.96.0.10")));
            assert!(a.is_allocated(ip("10.96.0.200")));
        }
        let err = ServiceIpError::NotInRange {
            ip: ip("1.1.1.1"),
            valid_range: "10.96.0.0/12".into(),
        };
        assert_eq!(
            err.legacy_text(),
            "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
    }

    /// The bitmap only reaches the first 65535 addresses of a large IPv6 range; the IPAddress
    /// allocator reaches all of a /64, including the all-ones address.
    #[test]
    fn ipv6_reach_by_kind() {
        let mut b = alloc("fd00::/108", AllocatorKind::Bitmap);
        assert!(b.allocate(ip("fd00::ffff")).is_ok());
        assert!(matches!(
            b.allocate(ip("fd00::1:0")),
            Err(ServiceIpError::NotInRange { .. })
        ));
        let mut i = alloc("fd00::/64", AllocatorKind::IpAddress);
        assert!(i.allocate(ip("fd00::ffff:ffff:ffff:ffff")).is_ok());
        assert!(i.allocate(ip("fd00::1:0")).is_ok());
        assert!(i.allocate(ip("fd00::")).is_err());
    }

    /// Extreme CIDRs are values, not panics: (cidr, kind, size or construction error).
    #[test]
    fn degenerate_ranges() {
        let table: [(&str, AllocatorKind, Result<u128, &str>); 6] = [
            ("255.255.255.255/32", AllocatorKind::Bitmap, Ok(0)),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
                AllocatorKind::IpAddress,
                Ok(0),
            ),
            ("0.0.0.0/0", AllocatorKind::Bitmap, Ok(0)),
            ("0.0.0.0/0", AllocatorKind::IpAddress, Ok((1 << 32) - 2)),
            ("::/0", AllocatorKind::Bitmap, Ok(0)),
            (
                "::/0",
                AllocatorKind::IpAddress,
                Err("shortest allowed prefix length for service CIDR is 64, got 0"),
            ),
        ];
        for (cidr, kind, want) in table {
            match ServiceIpAllocator::new(net(cidr), kind, true, named(0, "x")) {
                Ok(mut a) => {
                    assert_eq!(Ok(a.size()), want, "{cidr} {kind}");
                    if a.size() == 0 {
                        assert_eq!(a.allocate_next(), Err(ServiceIpError::Full));
                        assert!(a.allocate(net(cidr).network()).is_err());
                    } else {
                        assert!(a.allocate_next().is_ok());
                    }
                }
                Err(e) => assert_eq!(Err(e.to_string().as_str()), want, "{cidr} {kind}"),
            }
        }
    }

    #[test]
    fn fixed_seed_gives_fixed_sequence() {
        for kind in [AllocatorKind::Bitmap, AllocatorKind::IpAddress] {
            let run = |seed| {
                let mut a = ServiceIpAllocator::new(
                    net("10.96.0.0/12"),
                    kind,
                    true,
                    named(seed, "service-ip/IPv4"),
                )
                .unwrap();
                (0..50)
                    .map(|_| a.allocate_next().unwrap())
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(42), run(42));
            assert_ne!(run(42), run(43));
            assert!(
                run(42)
                    .iter()
                    .all(|x| ip_to_u128(*x) > ip_to_u128(ip("10.96.1.0")))
            );
        }
    }

    #[test]
    fn ten_thousand_dynamic_allocations_in_a_huge_range() {
        for (cidr, kind) in [
            ("fd00::/64", AllocatorKind::IpAddress),
            ("10.96.0.0/16", AllocatorKind::Bitmap),
            ("10.0.0.0/8", AllocatorKind::IpAddress),
        ] {
            let mut a = alloc(cidr, kind);
            for _ in 0..10_000 {
                a.allocate_next().unwrap();
            }
            assert_eq!(a.used(), 10_000, "{cidr}");
            assert_eq!(a.allocated_ips().count(), 10_000);
        }
    }
}
