//! Property tests of the allocators against simple reference models: a `BTreeSet` of taken
//! offsets and a linear scan stand in for the interval set and the allocators' wrap-around
//! searches. Each property runs random sequences of allocations, occupations and releases and
//! checks, after every operation, that the allocator agrees with its model: the same address
//! handed out, no address or block handed out twice, nothing outside the range, counts equal,
//! and a release of everything taken leaves the allocator as it started.
//!
//! Ranges are kept small (at most a few hundred addresses or 64 blocks) so that exhaustion is
//! reached within a sequence, and case counts are tuned so the whole module runs in about a
//! second.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;

use crate::calico::{CalicoIpam, IpPool};
use crate::cidrset::{CidrSet, overlaps};
use crate::family::{Family, ip_to_u128, u128_to_ip};
use crate::host_local::HostLocal;
use crate::intervals::IntervalSet;
use crate::range_allocator::RangeAllocator;
use crate::rng::named;
use crate::service_ip::{AllocatorKind, ServiceIpAllocator, ServiceIpError};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // A failing case is reported with its seed; no regression files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The reference linear scan: the first offset of `[start, hi)`, then of `[lo, start)`, that is
/// not in `taken`.
fn scan_wrapping(taken: &BTreeSet<u128>, lo: u128, hi: u128, start: u128) -> Option<u128> {
    (start.max(lo)..hi)
        .chain(lo..start.min(hi))
        .find(|o| !taken.contains(o))
}

/// A network of `family` with `prefix` at a random place, masked.
fn net(family: Family, bits: u128, prefix: u8) -> IpNet {
    let ip = u128_to_ip(family, bits);
    IpNet::new(ip, prefix)
        .expect("prefix within the family")
        .trunc()
}

fn family_bits() -> impl Strategy<Value = (Family, u128)> {
    prop_oneof![
        any::<u32>().prop_map(|b| (Family::IPv4, u128::from(b))),
        any::<u128>().prop_map(|b| (Family::IPv6, b)),
    ]
}

fn width(f: Family) -> u8 {
    match f {
        Family::IPv4 => 32,
        Family::IPv6 => 128,
    }
}

#[derive(Clone, Debug)]
enum SetOp {
    Insert(u128),
    Remove(u128),
    InsertRange(u128, u128),
    RemoveRange(u128, u128),
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        (0u128..64).prop_map(SetOp::Insert),
        (0u128..64).prop_map(SetOp::Remove),
        (0u128..64, 0u128..16).prop_map(|(a, n)| SetOp::InsertRange(a, a + n)),
        (0u128..64, 0u128..16).prop_map(|(a, n)| SetOp::RemoveRange(a, a + n)),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// The interval set every allocator stores its taken offsets in behaves like a set of
    /// integers: membership, counts, range operations' return values, and both searches.
    #[test]
    fn interval_set_is_a_set(ops in prop::collection::vec(set_op(), 1..48),
                             lo in 0u128..40, len in 0u128..40, start in 0u128..90) {
        let mut s = IntervalSet::new();
        let mut m: BTreeSet<u128> = BTreeSet::new();
        for op in &ops {
            match *op {
                SetOp::Insert(i) => prop_assert_eq!(s.insert(i), m.insert(i)),
                SetOp::Remove(i) => prop_assert_eq!(s.remove(i), m.remove(&i)),
                SetOp::InsertRange(a, b) => {
                    let added = (a..b).filter(|i| m.insert(*i)).count() as u128;
                    prop_assert_eq!(s.insert_range(a, b), added);
                }
                SetOp::RemoveRange(a, b) => {
                    let removed = (a..b).filter(|i| m.remove(i)).count() as u128;
                    prop_assert_eq!(s.remove_range(a, b), removed);
                }
            }
            prop_assert_eq!(s.count(), m.len() as u128);
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), m.iter().copied().collect::<Vec<_>>());
            // Intervals are sorted, non-empty, and neither overlap nor touch.
            let ranges: Vec<(u128, u128)> = s.ranges().collect();
            for w in ranges.windows(2) {
                prop_assert!(w[0].1 < w[1].0, "{:?}", ranges);
            }
            prop_assert!(ranges.iter().all(|(a, b)| a < b));
        }
        let hi = lo + len;
        prop_assert_eq!(s.first_free_in(lo, hi), (lo..hi).find(|i| !m.contains(i)));
        // Callers start the wrapping scan inside its range (a candidate kept modulo the size).
        if hi > lo {
            let start = lo + start % (hi - lo);
            prop_assert_eq!(s.first_free_wrapping(lo, hi, start), scan_wrapping(&m, lo, hi, start));
        }
        prop_assert_eq!(s.contains_range(lo, hi), (lo..hi).all(|i| m.contains(&i)));
    }
}

#[derive(Clone, Debug)]
enum BlockOp {
    Allocate,
    /// Release the n-th block handed out so far (modulo their number).
    Release(usize),
    /// Occupy block number n (modulo the set's size), as a node that already has it.
    Occupy(u64),
}

fn block_op() -> impl Strategy<Value = BlockOp> {
    prop_oneof![
        4 => Just(BlockOp::Allocate),
        2 => any::<usize>().prop_map(BlockOp::Release),
        1 => any::<u64>().prop_map(BlockOp::Occupy),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// kube-controller-manager's CidrSet: blocks come round-robin from the candidate after the
    /// last one handed out, never twice, always inside the cluster CIDR with the node mask,
    /// and the set is exhausted exactly when every block is taken.
    #[test]
    fn cidr_set_matches_a_round_robin_model(
        (family, bits) in family_bits(),
        cluster_prefix in 8u8..=24,
        extra in 0u8..=6,
        ops in prop::collection::vec(block_op(), 1..160),
    ) {
        let cluster_prefix = match family {
            Family::IPv4 => cluster_prefix,
            Family::IPv6 => cluster_prefix + 96,
        };
        let node_mask = cluster_prefix + extra;
        let cluster = net(family, bits, cluster_prefix);
        let mut set = CidrSet::new(cluster, node_mask).expect("a valid set");
        let max = 1u64 << extra;
        prop_assert_eq!(set.max_cidrs(), max);
        let mut used: BTreeSet<u128> = BTreeSet::new();
        let mut next: u128 = 0;
        let mut handed: Vec<IpNet> = Vec::new();
        for op in &ops {
            match op {
                BlockOp::Allocate => {
                    let want = scan_wrapping(&used, 0, u128::from(max), next);
                    match (set.allocate_next(), want) {
                        (Ok(block), Some(index)) => {
                            prop_assert_eq!(Some(block), set.cidr_at(index as u64));
                            prop_assert_eq!(block.prefix_len(), node_mask);
                            prop_assert!(cluster.contains(&block));
                            prop_assert_eq!(set.index_of(block), Some(index as u64));
                            prop_assert!(!handed.iter().any(|h| overlaps(h, &block)),
                                "{block} handed out twice");
                            used.insert(index);
                            next = (index + 1) % u128::from(max);
                            handed.push(block);
                        }
                        (Err(_), None) => {}
                        (got, want) => prop_assert!(false, "got {got:?}, model {want:?}"),
                    }
                }
                BlockOp::Release(n) if !handed.is_empty() => {
                    let block = handed.remove(n % handed.len());
                    set.release(block).expect("a block of the set");
                    prop_assert!(!set.is_allocated(block));
                    used.remove(&u128::from(set.index_of(block).expect("a block of the set")));
                }
                BlockOp::Release(_) => {}
                BlockOp::Occupy(n) => {
                    let index = n % max;
                    let block = set.cidr_at(index).expect("index below max");
                    set.occupy(block).expect("a block of the set");
                    prop_assert!(set.is_allocated(block));
                    if used.insert(u128::from(index)) {
                        handed.push(block);
                    }
                }
            }
            prop_assert_eq!(set.allocated(), used.len() as u64);
            prop_assert_eq!(set.free(), max - used.len() as u64);
        }
        for block in handed.drain(..) {
            set.release(block).expect("a block of the set");
        }
        prop_assert_eq!(set.allocated(), 0);
    }

    /// The node IPAM range allocator over a dual-stack pair: every node gets one block per
    /// family, no block twice, none overlapping the Service ranges; an exhausted family leaks
    /// the other family's block until `reclaim_leaked`; releasing every node restores the
    /// counts the allocator started with.
    #[test]
    fn range_allocator_round_trips(
        v4 in any::<u32>(), v6 in any::<u128>(),
        v4_extra in 0u8..=6, v6_extra in 0u8..=6,
        service_in_v4 in any::<bool>(),
        nodes in 1usize..80,
    ) {
        let c4 = net(Family::IPv4, u128::from(v4), 20);
        let c6 = net(Family::IPv6, v6, 104);
        // A Service range inside the IPv4 cluster CIDR, the size of one node block, or none.
        let services: Vec<IpNet> = if service_in_v4 {
            vec![IpNet::new(c4.network(), 20 + v4_extra).expect("valid")]
        } else {
            Vec::new()
        };
        let mut ra = RangeAllocator::new(&[c4, c6], &[20 + v4_extra, 104 + v6_extra], &services, &[])
            .expect("valid configuration");
        let start: Vec<u64> = ra.sets().iter().map(CidrSet::allocated).collect();
        let mut given: Vec<Vec<IpNet>> = Vec::new();
        let mut failures = 0;
        for _ in 0..nodes {
            match ra.allocate() {
                Ok(cidrs) => {
                    prop_assert_eq!(cidrs.len(), 2);
                    prop_assert!(c4.contains(&cidrs[0]) && c6.contains(&cidrs[1]));
                    for s in &services {
                        prop_assert!(!overlaps(s, &cidrs[0]), "{} overlaps {s}", cidrs[0]);
                    }
                    for g in &given {
                        prop_assert!(!overlaps(&g[0], &cidrs[0]) && !overlaps(&g[1], &cidrs[1]));
                    }
                    given.push(cidrs);
                }
                Err(_) => failures += 1,
            }
        }
        let free4 = (1u64 << v4_extra) - start[0];
        let free6 = 1u64 << v6_extra;
        prop_assert_eq!(given.len() as u64, (nodes as u64).min(free4).min(free6));
        // Failures after IPv4 ran out take nothing; failures on IPv6 leak an IPv4 block each.
        let leaked_expected = if free6 < free4 {
            (failures as u64).min(free4 - free6) as usize
        } else {
            0
        };
        prop_assert_eq!(ra.leaked().len(), leaked_expected);
        prop_assert_eq!(ra.reclaim_leaked(), leaked_expected);
        for (i, cidrs) in given.iter().enumerate() {
            ra.release(&format!("node-{i}"), cidrs).expect("blocks of the sets");
        }
        let end: Vec<u64> = ra.sets().iter().map(CidrSet::allocated).collect();
        prop_assert_eq!(end, start);
    }
}

#[derive(Clone, Debug)]
enum IpOp {
    Next,
    /// A user-chosen address: offset n from the network address (modulo the range's size).
    Pick(u128),
    Release(usize),
}

fn ip_op() -> impl Strategy<Value = IpOp> {
    prop_oneof![
        4 => Just(IpOp::Next),
        1 => any::<u128>().prop_map(IpOp::Pick),
        2 => any::<usize>().prop_map(IpOp::Release),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// kube-apiserver's ClusterIP allocators (bitmap and IPAddress, with and without the
    /// static band): a dynamic IP is never one already taken, never the network address (nor
    /// the IPv4 broadcast), `Full` exactly when every allocatable address is taken, a chosen
    /// IP is refused when taken or out of range, and releases round-trip.
    #[test]
    fn service_ip_allocator_matches_a_set(
        (family, bits) in family_bits(),
        host_bits in 2u8..=8,
        kind in prop_oneof![Just(AllocatorKind::Bitmap), Just(AllocatorKind::IpAddress)],
        static_subrange in any::<bool>(),
        seed in any::<u64>(),
        ops in prop::collection::vec(ip_op(), 1..300),
    ) {
        let cidr = net(family, bits, width(family) - host_bits);
        let mut a = ServiceIpAllocator::new(cidr, kind, static_subrange, named(seed, "svc"))
            .expect("a small range");
        let size = a.size();
        let network = ip_to_u128(cidr.network());
        let broadcast = ip_to_u128(cidr.broadcast());
        // Allocatable: network+1 ..= broadcast-1 (IPv4) or broadcast (IPv6).
        let last = if family == Family::IPv4 { broadcast - 1 } else { broadcast };
        prop_assert_eq!(size, last - network);
        let mut taken: Vec<IpAddr> = Vec::new();
        for op in &ops {
            match op {
                IpOp::Next => match a.allocate_next() {
                    Ok(ip) => {
                        let v = ip_to_u128(ip);
                        prop_assert!(v > network && v <= last, "{ip} outside {cidr}");
                        prop_assert!(!taken.contains(&ip), "{ip} handed out twice");
                        taken.push(ip);
                    }
                    Err(ServiceIpError::Full) => {
                        prop_assert_eq!(taken.len() as u128, size);
                    }
                    Err(e) => prop_assert!(false, "{e:?}"),
                },
                IpOp::Pick(n) => {
                    let v = network + n % (broadcast - network + 1);
                    let ip = u128_to_ip(family, v);
                    let r = a.allocate(ip);
                    if v <= network || v > last {
                        prop_assert!(r.is_err(), "{ip} accepted outside the range");
                    } else if taken.contains(&ip) {
                        prop_assert_eq!(r, Err(ServiceIpError::Allocated));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        taken.push(ip);
                    }
                }
                IpOp::Release(n) if !taken.is_empty() => {
                    let ip = taken.remove(n % taken.len());
                    a.release(ip);
                    prop_assert!(!a.is_allocated(ip));
                }
                IpOp::Release(_) => {}
            }
            prop_assert_eq!(a.used(), taken.len() as u128);
            prop_assert_eq!(a.free(), size - taken.len() as u128);
        }
        let mut listed: Vec<IpAddr> = a.allocated_ips().collect();
        let mut model = taken.clone();
        listed.sort();
        model.sort();
        prop_assert_eq!(listed, model);
        for ip in taken {
            a.release(ip);
        }
        prop_assert_eq!(a.used(), 0);
    }

    /// host-local: round-robin from just after the last reserved address, skipping the
    /// gateway, exactly as a linear scan over the range would; releases keep the position.
    #[test]
    fn host_local_matches_a_round_robin_model(
        (family, bits) in family_bits(),
        host_bits in 2u8..=8,
        ops in prop::collection::vec(ip_op(), 1..300),
    ) {
        let subnet = net(family, bits, width(family) - host_bits);
        let mut h = HostLocal::try_new(subnet).expect("a /30 or larger");
        let network = ip_to_u128(subnet.network());
        let broadcast = ip_to_u128(subnet.broadcast());
        // host-local's range: network+1 (the gateway, never handed out) to broadcast-1
        // (IPv4) or broadcast (IPv6).
        let (start, end) = (1u128, if family == Family::IPv4 {
            broadcast - network - 1
        } else {
            broadcast - network
        });
        let mut taken: BTreeSet<u128> = BTreeSet::from([1]);
        let mut last: Option<u128> = None;
        let mut held: Vec<u128> = Vec::new();
        for op in &ops {
            match op {
                IpOp::Next => {
                    let from = match last {
                        Some(l) if l == end => start,
                        Some(l) => l + 1,
                        None => start,
                    };
                    let want = scan_wrapping(&taken, start, end + 1, from);
                    let got = h.allocate().map(|ip| ip_to_u128(ip) - network);
                    prop_assert_eq!(got, want);
                    if let Some(o) = want {
                        taken.insert(o);
                        held.push(o);
                        last = Some(o);
                    }
                }
                IpOp::Pick(n) => {
                    let o = n % (broadcast - network + 1);
                    let r = h.reserve(u128_to_ip(family, network + o));
                    if o < start || o > end || taken.contains(&o) {
                        prop_assert!(r.is_err());
                    } else {
                        prop_assert!(r.is_ok(), "{r:?}");
                        taken.insert(o);
                        held.push(o);
                        last = Some(o);
                    }
                }
                IpOp::Release(n) if !held.is_empty() => {
                    let o = held.remove(n % held.len());
                    taken.remove(&o);
                    h.release(u128_to_ip(family, network + o));
                }
                IpOp::Release(_) => {}
            }
            prop_assert_eq!(h.used(), held.len() as u128);
            prop_assert_eq!(h.free(), h.capacity() - held.len() as u128);
        }
        prop_assert_eq!(h.capacity(), end - start);
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Calico IPAM over one pool of each family: every address is inside its pool and unique,
    /// is held by the host it was assigned to, lies in a block affine to that host (when the
    /// host could claim one) and blocks of different hosts are disjoint; releasing a host's
    /// addresses and then the host leaves nothing allocated.
    #[test]
    fn calico_assigns_unique_addresses_in_affine_blocks(
        v4 in any::<u32>(), v6 in any::<u128>(),
        v4_block in 26u8..=30, v6_block in 122u8..=126,
        strict in any::<bool>(),
        seed in any::<u64>(),
        pods in prop::collection::vec((0usize..4, any::<bool>(), any::<bool>()), 1..80),
    ) {
        let p4 = net(Family::IPv4, u128::from(v4), 24);
        let p6 = net(Family::IPv6, v6, 120);
        let pool = |name: &str, cidr: IpNet, block_size: u8| IpPool {
            name: name.to_string(),
            cidr,
            block_size,
            nat_outgoing: false,
            disabled: false,
        };
        let mut ipam = CalicoIpam::new(
            vec![pool("v4", p4, v4_block), pool("v6", p6, v6_block)],
            strict,
            0,
        )
        .expect("valid pools")
        .with_seed(seed);
        let mut by_host: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        let mut all: BTreeSet<IpAddr> = BTreeSet::new();
        for (host, want4, want6) in &pods {
            let host = format!("node-{host}");
            if let Ok(ips) = ipam.assign_pod(&host, *want4, *want6) {
                prop_assert_eq!(ips.len(), usize::from(*want4) + usize::from(*want6));
                for ip in ips {
                    prop_assert!(p4.contains(&ip) || p6.contains(&ip), "{ip} outside the pools");
                    prop_assert!(all.insert(ip), "{ip} assigned twice");
                    prop_assert_eq!(ipam.holder_of(ip), Some(host.as_str()));
                    by_host.entry(host.clone()).or_default().push(ip);
                }
            }
        }
        let blocks: Vec<(String, Vec<IpNet>)> = (0..4)
            .map(|h| format!("node-{h}"))
            .map(|h| { let b = ipam.blocks_of(&h); (h, b) })
            .collect();
        for (i, (h1, b1)) in blocks.iter().enumerate() {
            for (h2, b2) in &blocks[i + 1..] {
                for x in b1 {
                    prop_assert!(!b2.iter().any(|y| overlaps(x, y)), "{h1} and {h2} share {x}");
                }
            }
        }
        if strict {
            // With strictAffinity no host borrows: every address is in one of its own blocks.
            for (host, ips) in &by_host {
                let own = ipam.blocks_of(host);
                for ip in ips {
                    prop_assert!(own.iter().any(|b| b.contains(ip)), "{ip} outside {host}'s blocks");
                }
            }
        }
        for (host, ips) in &by_host {
            for ip in ips {
                ipam.release(*ip).expect("release never fails");
                prop_assert!(!ipam.is_allocated(*ip));
            }
            ipam.release_host(host);
            prop_assert!(ipam.blocks_of(host).is_empty());
        }
        for f in [Family::IPv4, Family::IPv6] {
            let u = ipam.usage(f);
            prop_assert_eq!(u.ips_used, 0);
        }
    }
}
