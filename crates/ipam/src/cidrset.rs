//! kube-controller-manager's `CidrSet`: the node blocks of one cluster CIDR.
//!
//! Source: `kubernetes/kubernetes: pkg/controller/nodeipam/ipam/cidrset/cidr_set.go` (and its
//! tests `cidr_set_test.go`). Behaviour reproduced here:
//!
//! - The cluster CIDR is used as its masked network (`192.168.5.219/28` is `192.168.5.208/28`),
//!   and block `i` is that network with `i` shifted into the node-mask bits (`indexToCIDRBlock`).
//! - `maxCIDRs = 1 << (nodeMask - clusterMask)`. For IPv6 only, a difference above 16 is refused
//!   (`clusterSubnetMaxDiff`), because upstream keeps an uncompressed bitmap; IPv4 has no limit.
//! - `AllocateNext` is round-robin: it scans from `nextCandidate`, wrapping, takes the first free
//!   block and moves `nextCandidate` just past it. A released block is therefore not handed out
//!   again until the scan wraps round to it.
//! - `Occupy`/`Release` mark every block a CIDR overlaps (it may be larger or smaller than a node
//!   block), count only the bits they actually flip, and never move `nextCandidate`.
//!
//! Storage is an interval set rather than upstream's bitmap (see the private `intervals`
//! module); the observable behaviour is the same.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::family::{Family, ip_to_u128, u128_to_ip};
use crate::intervals::IntervalSet;

/// Upstream's `clusterSubnetMaxDiff`: "the subnet mask for IPv6 cluster cidr needs to be >= 48
/// as default mask size for IPv6 is 64".
pub const CLUSTER_SUBNET_MAX_DIFF: u8 = 16;

/// Errors of a [`CidrSet`]. `Display` is the exact upstream text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// `ErrCIDRSetSubNetTooBig`.
    #[error("New CIDR set failed; the node CIDR size is too big")]
    SubNetTooBig,
    /// `ErrCIDRRangeNoCIDRsRemaining`.
    #[error(
        "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
    )]
    NoCIDRsRemaining,
    /// The CIDR does not overlap the cluster CIDR (or is of the other family).
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange { cidr: IpNet, cluster: IpNet },
    /// A block index computed for `ip` is beyond `maxCIDRs` (`getIndexForIP`).
    #[error("CIDR: {ip}/{node_mask} is out of the range of CIDR allocator")]
    OutOfAllocatorRange { ip: IpAddr, node_mask: u8 },
    /// Not an upstream error: a node mask longer than the address itself cannot be expressed in
    /// Go (`net.CIDRMask` returns nil) and kube-controller-manager never builds such a set; we
    /// refuse it instead of computing nonsense.
    #[error("node CIDR mask size {node_mask} is longer than the {bits}-bit address")]
    NodeMaskTooLong { node_mask: u8, bits: u8 },
}

/// One cluster CIDR cut into node blocks, with upstream's allocation order.
#[derive(Clone, Debug)]
pub struct CidrSet {
    cluster: IpNet,
    node_mask: u8,
    max_cidrs: u64,
    next_candidate: u64,
    used: IntervalSet,
}

impl CidrSet {
    /// `NewCIDRSet`. The cluster CIDR is masked to its network first, as `net.ParseCIDR` does
    /// before kube-controller-manager ever sees it.
    pub fn new(cluster_cidr: IpNet, node_mask: u8) -> Result<CidrSet, CidrSetError> {
        let cluster = cluster_cidr.trunc();
        let bits = cluster.max_prefix_len();
        if node_mask > bits {
            return Err(CidrSetError::NodeMaskTooLong { node_mask, bits });
        }
        let cluster_mask = cluster.prefix_len();
        if Family::of_net(&cluster) == Family::IPv6
            && node_mask > cluster_mask
            && node_mask - cluster_mask > CLUSTER_SUBNET_MAX_DIFF
        {
            return Err(CidrSetError::SubNetTooBig);
        }
        // Go computes `1 << uint32(nodeMask - clusterMask)`; with a node mask shorter than the
        // cluster mask the shift count wraps to a huge value and the result is 0, i.e. a set that
        // can hold nothing. kube-controller-manager rejects that configuration before building a
        // set, but the set itself behaves like this.
        let max_cidrs = if node_mask >= cluster_mask {
            1u64.checked_shl(u32::from(node_mask - cluster_mask))
                .unwrap_or(0)
        } else {
            0
        };
        Ok(CidrSet {
            cluster,
            node_mask,
            max_cidrs,
            next_candidate: 0,
            used: IntervalSet::new(),
        })
    }

    /// The cluster CIDR (masked).
    pub fn cluster_cidr(&self) -> IpNet {
        self.cluster
    }

    pub fn node_mask(&self) -> u8 {
        self.node_mask
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.cluster)
    }

    /// `maxCIDRs`: how many node blocks the cluster CIDR holds.
    pub fn max_cidrs(&self) -> u64 {
        self.max_cidrs
    }

    /// `allocatedCIDRs`: blocks currently marked used (allocated or occupied).
    pub fn allocated(&self) -> u64 {
        // The count never exceeds max_cidrs, which is a u64.
        self.used.count() as u64
    }

    pub fn free(&self) -> u64 {
        self.max_cidrs - self.allocated()
    }

    /// Where the next `allocate_next` scan starts.
    pub fn next_candidate(&self) -> u64 {
        self.next_candidate
    }

    /// `AllocateNext`.
    pub fn allocate_next(&mut self) -> Result<IpNet, CidrSetError> {
        if self.allocated() == self.max_cidrs {
            return Err(CidrSetError::NoCIDRsRemaining);
        }
        let max = u128::from(self.max_cidrs);
        let candidate = self
            .used
            .first_free_wrapping(0, max, u128::from(self.next_candidate))
            .expect("a set with fewer allocated blocks than maxCIDRs has a free block");
        self.used.insert(candidate);
        let candidate = candidate as u64;
        self.next_candidate = (candidate + 1) % self.max_cidrs;
        Ok(self.block_at(candidate))
    }

    /// `Occupy`: marks every block `cidr` overlaps as used. Succeeds even if already used.
    pub fn occupy(&mut self, cidr: IpNet) -> Result<(), CidrSetError> {
        let (begin, end) = self.indices(cidr)?;
        self.used.insert_range(begin, end + 1);
        Ok(())
    }

    /// `Release`: clears every block `cidr` overlaps; releasing a free block is a no-op.
    pub fn release(&mut self, cidr: IpNet) -> Result<(), CidrSetError> {
        let (begin, end) = self.indices(cidr)?;
        self.used.remove_range(begin, end + 1);
        Ok(())
    }

    /// Whether every block `cidr` covers is marked used (false if `cidr` is out of range).
    pub fn is_allocated(&self, cidr: IpNet) -> bool {
        match self.indices(cidr) {
            Ok((begin, end)) => self.used.contains_range(begin, end + 1),
            Err(_) => false,
        }
    }

    /// Block number `index` (`indexToCIDRBlock`), or `None` past `max_cidrs`.
    pub fn cidr_at(&self, index: u64) -> Option<IpNet> {
        (index < self.max_cidrs).then(|| self.block_at(index))
    }

    /// The block index of `cidr` if it is exactly one node block of this set.
    pub fn index_of(&self, cidr: IpNet) -> Option<u64> {
        let cidr = cidr.trunc();
        if cidr.prefix_len() != self.node_mask || !self.overlaps(&cidr) {
            return None;
        }
        self.index_for_ip(cidr.network()).ok()
    }

    /// All used blocks as index intervals `[start, end)`, ascending.
    pub fn used_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.used.ranges().map(|(a, b)| (a as u64, b as u64))
    }

    fn host_bits(&self) -> u32 {
        u32::from(self.cluster.max_prefix_len() - self.node_mask)
    }

    fn block_at(&self, index: u64) -> IpNet {
        let base = ip_to_u128(self.cluster.network());
        let offset = u128::from(index).checked_shl(self.host_bits()).unwrap_or(0);
        let ip = u128_to_ip(self.family(), base | offset);
        IpNet::new(ip, self.node_mask).expect("node mask was checked against the family width")
    }

    /// The overlap test of `getBeginningAndEndIndices` / `filterOutServiceRange`: either CIDR
    /// contains the other's network. Different families never overlap.
    fn overlaps(&self, cidr: &IpNet) -> bool {
        overlaps(&self.cluster, cidr)
    }

    /// `getIndexForIP`: the block holding `ip`, counted from the cluster network.
    fn index_for_ip(&self, ip: IpAddr) -> Result<u64, CidrSetError> {
        let x = ip_to_u128(self.cluster.network()) ^ ip_to_u128(ip);
        let index = x.checked_shr(self.host_bits()).unwrap_or(0);
        if index >= u128::from(self.max_cidrs) {
            return Err(CidrSetError::OutOfAllocatorRange {
                ip,
                node_mask: self.node_mask,
            });
        }
        Ok(index as u64)
    }

    /// `getBeginningAndEndIndices`: the inclusive block range `cidr` covers.
    fn indices(&self, cidr: IpNet) -> Result<(u128, u128), CidrSetError> {
        let cidr = cidr.trunc();
        if !self.overlaps(&cidr) {
            return Err(CidrSetError::OutOfRange {
                cidr,
                cluster: self.cluster,
            });
        }
        if self.cluster.prefix_len() < cidr.prefix_len() {
            let family = self.family();
            let node_net = |ip: IpAddr| {
                let v = ip_to_u128(ip);
                let mask = u128::MAX.checked_shl(self.host_bits()).unwrap_or(0);
                u128_to_ip(family, v & mask)
            };
            let begin = self.index_for_ip(node_net(cidr.network()))?;
            let end = self.index_for_ip(node_net(cidr.broadcast()))?;
            Ok((u128::from(begin), u128::from(end)))
        } else if self.max_cidrs == 0 {
            // Go's loop `for i := 0; i <= maxCIDRs-1` runs zero times here.
            Ok((1, 0))
        } else {
            Ok((0, u128::from(self.max_cidrs) - 1))
        }
    }
}

/// Whether two CIDRs share an address, as upstream tests it: one contains the other's network
/// (masked to its own prefix). CIDRs of different families never overlap.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    if Family::of_net(a) != Family::of_net(b) {
        return false;
    }
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// `cidr_set_test.go` TestIndexToCIDRBlock: (cluster, node mask, index, block).
    #[test]
    fn index_to_cidr_block() {
        let table = [
            ("127.123.3.0/16", 24, 0, "127.123.0.0/24"),
            ("127.123.0.0/16", 24, 15, "127.123.15.0/24"),
            ("192.168.5.219/28", 32, 5, "192.168.5.213/32"),
            ("2001:0db8:1234:3::/48", 64, 0, "2001:db8:1234::/64"),
            ("2001:0db8:1234::/48", 64, 15, "2001:db8:1234:f::/64"),
            (
                "2001:0db8:85a3::8a2e:0370:7334/50",
                63,
                6425,
                "2001:db8:85a3:3232::/63",
            ),
            ("2001:0db8::/32", 48, 0, "2001:db8::/48"),
            ("2001:0db8::/32", 48, 15, "2001:db8:f::/48"),
            (
                "2001:0db8:85a3::8a2e:0370:7334/32",
                48,
                6425,
                "2001:db8:1919::/48",
            ),
            ("2001:0db8:1234:ff00::/56", 72, 0, "2001:db8:1234:ff00::/72"),
            (
                "2001:0db8:1234:ff00::/56",
                72,
                15,
                "2001:db8:1234:ff00:f00::/72",
            ),
            (
                "2001:0db8:1234:ff00::0370:7334/56",
                72,
                6425,
                "2001:db8:1234:ff19:1900::/72",
            ),
            (
                "2001:0db8:1234:0:1234::/80",
                96,
                0,
                "2001:db8:1234:0:1234::/96",
            ),
            (
                "2001:0db8:1234:0:1234::/80",
                96,
                15,
                "2001:db8:1234:0:1234:f::/96",
            ),
            (
                "2001:0db8:1234:ff00::0370:7334/80",
                96,
                6425,
                "2001:db8:1234:ff00:0:1919::/96",
            ),
        ];
        for (cluster, mask, index, want) in table {
            let set = CidrSet::new(net(cluster), mask).unwrap();
            assert_eq!(set.cidr_at(index).unwrap(), net(want), "{cluster} #{index}");
        }
    }

    /// `cidr_set_test.go` TestCIDRSetFullyAllocated: a set of one block hands it out, is then
    /// full, and hands the same block out again after a release.
    #[test]
    fn fully_allocated_set_recycles_its_only_block() {
        for cidr in ["127.123.234.0/30", "beef:1234::/30"] {
            let mut set = CidrSet::new(net(cidr), 30).unwrap();
            assert_eq!(set.allocate_next().unwrap(), net(cidr));
            assert_eq!(
                set.allocate_next().unwrap_err().to_string(),
                "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
            );
            set.release(net(cidr)).unwrap();
            assert_eq!(set.allocate_next().unwrap(), net(cidr));
            assert_eq!(set.allocate_next(), Err(CidrSetError::NoCIDRsRemaining));
        }
    }

    /// `cidr_set_test.go` TestCIDRSet_RandomishAllocation and TestCIDRSet_AllocationOccupied:
    /// allocation walks the blocks in order; after releasing everything the pointer has wrapped,
    /// so the same blocks come back in the same order; occupied blocks are skipped.
    #[test]
    fn allocation_order_wraps_and_skips_occupied() {
        for cluster in ["127.123.234.0/16", "beef:1234::/16"] {
            let mut set = CidrSet::new(net(cluster), 24).unwrap();
            let first: Vec<IpNet> = (0..256).map(|_| set.allocate_next().unwrap()).collect();
            assert_eq!(first[0], set.cidr_at(0).unwrap());
            assert_eq!(first[255], set.cidr_at(255).unwrap());
            assert!(set.allocate_next().is_err());
            for c in &first {
                set.release(*c).unwrap();
            }
            let again: Vec<IpNet> = (0..256).map(|_| set.allocate_next().unwrap()).collect();
            assert_eq!(first, again);

            // AllocationOccupied: occupy the upper half (one block twice), then only the lower
            // half is allocatable, in order.
            for c in &first {
                set.release(*c).unwrap();
            }
            for c in &first[128..] {
                set.occupy(*c).unwrap();
            }
            set.occupy(first[128]).unwrap();
            assert_eq!(set.allocated(), 128);
            let lower: Vec<IpNet> = (0..128).map(|_| set.allocate_next().unwrap()).collect();
            assert_eq!(lower, first[..128].to_vec());
            assert!(set.allocate_next().is_err());
        }
    }

    /// `cidr_set_test.go` TestDoubleOccupyRelease: only flipped bits are counted.
    #[test]
    fn double_occupy_and_release_count_flipped_bits() {
        let mut set = CidrSet::new(net("10.42.0.0/16"), 24).unwrap();
        // (cidr, occupy?, allocated afterwards)
        let ops = [
            ("10.42.5.0/24", true, 1),
            ("10.42.9.0/24", true, 2),
            ("10.42.8.0/22", true, 5),
            ("10.42.9.0/24", true, 5),
            ("10.42.9.0/24", false, 4),
            ("10.42.9.0/24", false, 4),
            ("10.42.4.0/22", false, 3),
        ];
        for (cidr, occupy, want) in ops {
            if occupy {
                set.occupy(net(cidr)).unwrap();
            } else {
                set.release(net(cidr)).unwrap();
            }
            assert_eq!(set.allocated(), want, "after {cidr}");
        }
        let allocatable = (1 << 8) - 3;
        for _ in 0..allocatable {
            set.allocate_next().unwrap();
        }
        assert!(set.allocate_next().is_err());
    }

    /// `cidr_set_test.go` TestGetBitforCIDR: (cluster, node mask, cidr, index or error).
    #[test]
    fn index_of_subnet() {
        let table = [
            ("127.0.0.0/8", 16, "127.0.0.0/16", Some(0)),
            ("be00::/8", 16, "be00::/16", Some(0)),
            ("127.0.0.0/8", 16, "127.123.0.0/16", Some(123)),
            ("be00::/8", 16, "beef::/16", Some(0xef)),
            ("127.0.0.0/8", 16, "127.168.0.0/16", Some(168)),
            ("be00::/8", 16, "be68::/16", Some(0x68)),
            ("127.0.0.0/8", 16, "127.224.0.0/16", Some(224)),
            ("be00::/8", 16, "be24::/16", Some(0x24)),
            ("192.168.0.0/16", 24, "192.168.12.0/24", Some(12)),
            ("beef::/16", 24, "beef:1200::/24", Some(0x12)),
            ("192.168.0.0/16", 24, "192.168.151.0/24", Some(151)),
            ("beef::/16", 24, "beef:9700::/24", Some(0x97)),
            ("192.168.0.0/16", 24, "127.168.224.0/24", None),
            ("beef::/16", 24, "2001:db00::/24", None),
        ];
        for (cluster, mask, cidr, want) in table {
            let set = CidrSet::new(net(cluster), mask).unwrap();
            assert_eq!(set.index_of(net(cidr)), want, "{cluster} {cidr}");
        }
    }

    /// `cidr_set_test.go` TestOccupy: (cluster, node mask, cidr, used index range).
    #[test]
    fn occupy_marks_every_overlapped_block() {
        let table = [
            ("127.0.0.0/8", 16, "127.0.0.0/8", 0, 255),
            ("2001:beef:1200::/40", 48, "2001:beef:1200::/40", 0, 255),
            ("127.0.0.0/8", 16, "127.0.0.0/2", 0, 255),
            ("2001:beef:1200::/40", 48, "2001:beef:1234::/34", 0, 255),
            ("127.0.0.0/8", 16, "127.0.0.0/16", 0, 0),
            ("2001:beef:1200::/40", 48, "2001:beef:1200::/48", 0, 0),
            ("127.0.0.0/8", 32, "127.0.0.0/16", 0, 65535),
            ("2001:beef:1200::/48", 64, "2001:beef:1200::/48", 0, 65535),
            ("127.0.0.0/7", 16, "127.0.0.0/15", 256, 257),
            ("2001:beef:7f00::/39", 48, "2001:beef:7f00::/47", 256, 257),
            ("127.0.0.0/7", 15, "127.0.0.0/15", 128, 128),
            ("2001:beef:7f00::/39", 47, "2001:beef:7f00::/47", 128, 128),
            ("127.0.0.0/7", 18, "127.0.0.0/15", 1024, 1031),
            ("2001:beef:7f00::/39", 50, "2001:beef:7f00::/47", 1024, 1031),
        ];
        for (cluster, mask, cidr, begin, end) in table {
            let mut set = CidrSet::new(net(cluster), mask).unwrap();
            set.occupy(net(cidr)).unwrap();
            assert_eq!(
                set.used_ranges().collect::<Vec<_>>(),
                vec![(begin, end + 1)],
                "{cluster} /{mask} {cidr}"
            );
            assert_eq!(
                set.next_candidate(),
                0,
                "occupy must not move nextCandidate"
            );
        }
    }

    /// `cidr_set_test.go` TestCIDRSetv6 plus the fact sheet's capacity examples:
    /// (cluster, node mask, expected first two blocks or the construction error).
    #[test]
    fn construction_limits_and_first_blocks() {
        type Row = (
            &'static str,
            u8,
            Result<(&'static str, &'static str), CidrSetError>,
        );
        let table: [Row; 5] = [
            // IPv4 has no diff limit: /8 with /32 nodes is 2^24 blocks.
            ("127.0.0.0/8", 32, Ok(("127.0.0.0/32", "127.0.0.1/32"))),
            ("beef:1234::/32", 49, Err(CidrSetError::SubNetTooBig)),
            (
                "2001:beef:1234:369b::/60",
                64,
                Ok(("2001:beef:1234:3690::/64", "2001:beef:1234:3691::/64")),
            ),
            ("fd00::/47", 64, Err(CidrSetError::SubNetTooBig)),
            ("fd00::/48", 64, Ok(("fd00::/64", "fd00:0:0:1::/64"))),
        ];
        for (cluster, mask, want) in table {
            match (CidrSet::new(net(cluster), mask), want) {
                (Ok(mut set), Ok((a, b))) => {
                    assert_eq!(set.allocate_next().unwrap(), net(a));
                    assert_eq!(set.allocate_next().unwrap(), net(b));
                }
                (Err(e), Err(w)) => {
                    assert_eq!(e, w);
                    assert_eq!(
                        e.to_string(),
                        "New CIDR set failed; the node CIDR size is too big"
                    );
                }
                (got, want) => panic!("{cluster}/{mask}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn capacities() {
        // (cluster, node mask, max_cidrs)
        let table = [
            ("10.244.0.0/16", 24, 256u64),
            ("10.96.0.0/12", 24, 4096),
            ("fd00::/48", 64, 65536),
            ("127.0.0.0/8", 32, 1 << 24),
            ("10.0.0.0/24", 24, 1),
            ("10.0.0.0/24", 16, 0),
        ];
        for (cluster, mask, want) in table {
            assert_eq!(CidrSet::new(net(cluster), mask).unwrap().max_cidrs(), want);
        }
    }

    #[test]
    fn misaligned_cluster_is_masked_and_errors_render_upstream_text() {
        let mut set = CidrSet::new(net("10.1.2.3/16"), 24).unwrap();
        assert_eq!(set.cluster_cidr(), net("10.1.0.0/16"));
        assert_eq!(set.allocate_next().unwrap(), net("10.1.0.0/24"));
        // (cidr, error text)
        let table = [
            (
                "10.2.0.0/24",
                "cidr 10.2.0.0/24 is out the range of cluster cidr 10.1.0.0/16",
            ),
            (
                "fd00::/64",
                "cidr fd00::/64 is out the range of cluster cidr 10.1.0.0/16",
            ),
        ];
        for (cidr, text) in table {
            assert_eq!(set.occupy(net(cidr)).unwrap_err().to_string(), text);
            assert_eq!(set.release(net(cidr)).unwrap_err().to_string(), text);
        }
        // An unmasked CIDR given to occupy is masked first, as ParseCIDR would.
        set.occupy(net("10.1.5.7/24")).unwrap();
        assert!(set.is_allocated(net("10.1.5.0/24")));
        // A node mask shorter than the cluster mask gives an empty set.
        let mut empty = CidrSet::new(net("10.0.0.0/16"), 8).unwrap();
        assert_eq!(empty.allocate_next(), Err(CidrSetError::NoCIDRsRemaining));
        assert_eq!(
            empty.occupy(net("10.0.1.0/24")).unwrap_err().to_string(),
            "CIDR: 10.0.0.0/8 is out of the range of CIDR allocator"
        );
    }

    /// The recycle case of `range_allocator_test.go` seen from the set: a released block is
    /// reused only when the round-robin pointer wraps back to it.
    #[test]
    fn released_block_waits_for_wraparound() {
        let mut set = CidrSet::new(net("10.0.0.0/22"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        set.release(a).unwrap();
        assert_eq!(set.allocate_next().unwrap(), net("10.0.2.0/24"));
        assert_eq!(set.allocate_next().unwrap(), net("10.0.3.0/24"));
        assert_eq!(set.allocate_next().unwrap(), a);
        assert_ne!(a, b);
        assert!(set.allocate_next().is_err());
    }

    #[test]
    fn whole_ipv6_48_of_64s_allocates_in_order() {
        let mut set = CidrSet::new(net("2001:db8::/48"), 64).unwrap();
        let mut last = None;
        for _ in 0..65536 {
            last = Some(set.allocate_next().unwrap());
        }
        assert_eq!(last.unwrap(), net("2001:db8:0:ffff::/64"));
        assert_eq!(set.allocated(), 65536);
        assert!(set.allocate_next().is_err());
        set.release(net("2001:db8::/48")).unwrap();
        assert_eq!(set.allocated(), 0);
    }

    #[test]
    fn ipv4_slash8_with_slash32_nodes_stays_small() {
        let mut set = CidrSet::new(net("10.0.0.0/8"), 32).unwrap();
        for _ in 0..5000 {
            set.allocate_next().unwrap();
        }
        assert_eq!(set.allocated(), 5000);
        assert_eq!(set.allocate_next().unwrap(), net("10.0.19.136/32"));
        set.occupy(net("10.0.0.0/8")).unwrap();
        assert_eq!(set.free(), 0);
    }
}
