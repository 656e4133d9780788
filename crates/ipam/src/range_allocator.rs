//! kube-controller-manager's node IPAM `RangeAllocator`: one [`CidrSet`] per cluster CIDR.
//!
//! Source: `kubernetes/kubernetes: pkg/controller/nodeipam/ipam/range_allocator.go` and
//! `range_allocator_test.go`. Behaviour reproduced here:
//!
//! - Construction (`NewCIDRRangeAllocator`) builds one set per `--cluster-cidr` entry with the
//!   node mask of the same index, then occupies the primary and secondary Service CIDR in every
//!   set it overlaps (`filterOutServiceRange`; errors there are only logged upstream, so they are
//!   ignored here), then occupies the podCIDRs of the nodes that already have them
//!   (`occupyCIDRs`). Any error there makes the controller fail to start.
//! - A new node gets one block from each set, in cluster-CIDR order (`AllocateOrOccupyCIDR`).
//! - **Partial failure leaks.** When set `i` is exhausted, upstream returns
//!   `failed to allocate cidr from cluster cidr at idx:i: …` *without* releasing the blocks it
//!   already took from sets `0..i`. They stay marked used until kube-controller-manager restarts
//!   (and newer revisions requeue the node with backoff, leaking one more block per retry). We
//!   reproduce that and remember the leaked blocks, so callers can report them
//!   ([`RangeAllocator::leaked`]) or model a restart ([`RangeAllocator::reclaim_leaked`]).
//! - Node deletion releases each podCIDR in the set of the same index (`ReleaseCIDR`).

use ipnet::IpNet;

use crate::cidrset::{CidrSet, overlaps};

/// The node IPAM range allocator. Errors are the exact kube-controller-manager texts.
#[derive(Clone, Debug)]
pub struct RangeAllocator {
    sets: Vec<CidrSet>,
    leaked: Vec<(usize, IpNet)>,
}

impl RangeAllocator {
    /// `NewCIDRRangeAllocator`.
    ///
    /// - `cluster_cidrs` / `node_masks`: `--cluster-cidr` entries and the per-family node mask
    ///   sizes, index-aligned (kube-controller-manager's `setNodeCIDRMaskSizes` orders the masks
    ///   like the cluster CIDRs).
    /// - `service_cidrs`: the primary and, if any, secondary Service CIDR as given to
    ///   kube-controller-manager (`--service-cluster-ip-range`).
    /// - `existing`: nodes that already have `spec.podCIDRs`, in list order; nodes with none are
    ///   skipped like upstream.
    pub fn new(
        cluster_cidrs: &[IpNet],
        node_masks: &[u8],
        service_cidrs: &[IpNet],
        existing: &[(String, Vec<IpNet>)],
    ) -> Result<RangeAllocator, String> {
        if cluster_cidrs.len() != node_masks.len() {
            // kube-controller-manager always derives one mask per cluster CIDR; a mismatch is a
            // bug in the caller, reported as a value rather than Go's index panic.
            return Err(format!(
                "knetsim: {} node CIDR mask sizes given for {} cluster CIDRs",
                node_masks.len(),
                cluster_cidrs.len()
            ));
        }
        let mut sets = Vec::with_capacity(cluster_cidrs.len());
        for (cidr, mask) in cluster_cidrs.iter().zip(node_masks) {
            sets.push(CidrSet::new(*cidr, *mask).map_err(|e| e.to_string())?);
        }
        let mut ra = RangeAllocator {
            sets,
            leaked: Vec::new(),
        };
        for service in service_cidrs {
            ra.filter_out_service_range(service);
        }
        for (name, pod_cidrs) in existing {
            if pod_cidrs.is_empty() {
                continue;
            }
            ra.occupy(name, pod_cidrs)?;
        }
        Ok(ra)
    }

    /// `filterOutServiceRange`: occupy `service` in every set whose cluster CIDR it overlaps.
    fn filter_out_service_range(&mut self, service: &IpNet) {
        for set in &mut self.sets {
            if !overlaps(&set.cluster_cidr(), service) {
                continue;
            }
            // Upstream only logs "Error filtering out service cidr out cluster cidr" here.
            let _ = set.occupy(*service);
        }
    }

    /// A new node: one block from each set, in cluster-CIDR order. On failure the blocks taken
    /// from earlier sets stay reserved, as upstream leaks them (see the module docs).
    pub fn allocate(&mut self) -> Result<Vec<IpNet>, String> {
        let mut allocated = Vec::with_capacity(self.sets.len());
        for (idx, set) in self.sets.iter_mut().enumerate() {
            match set.allocate_next() {
                Ok(cidr) => allocated.push(cidr),
                Err(err) => {
                    self.leaked.extend(allocated.into_iter().enumerate());
                    return Err(format!(
                        "failed to allocate cidr from cluster cidr at idx:{idx}: {err}"
                    ));
                }
            }
        }
        Ok(allocated)
    }

    /// Whether [`allocate`](Self::allocate) would fail at once, before taking a block of any
    /// cluster CIDR: the first cluster CIDR has no free block. Until something is released,
    /// every further allocation fails the same way, with nothing leaked.
    pub fn fails_at_first(&self) -> bool {
        self.sets.first().is_none_or(|s| s.free() == 0)
    }

    /// `occupyCIDRs`: a node that already has podCIDRs. Pass them as written in the node spec;
    /// unmasked CIDRs are masked as `net.ParseCIDR` would.
    pub fn occupy(&mut self, node: &str, pod_cidrs: &[IpNet]) -> Result<(), String> {
        for (idx, cidr) in pod_cidrs.iter().enumerate() {
            let Some(set) = self.sets.get_mut(idx) else {
                return Err(format!(
                    "node:{node} has an allocated cidr: {cidr} at index:{idx} that does not exist in cluster cidrs configuration"
                ));
            };
            let pod_cidr = cidr.trunc();
            set.occupy(pod_cidr).map_err(|err| {
                format!(
                    "failed to mark cidr[{pod_cidr}] at idx [{idx}] as occupied for node: {node}: {err}"
                )
            })?;
        }
        Ok(())
    }

    /// `ReleaseCIDR`: a deleted node gives its podCIDRs back.
    pub fn release(&mut self, node: &str, pod_cidrs: &[IpNet]) -> Result<(), String> {
        for (idx, cidr) in pod_cidrs.iter().enumerate() {
            let Some(set) = self.sets.get_mut(idx) else {
                return Err(format!(
                    "node:{node} has an allocated cidr: {cidr} at index:{idx} that does not exist in cluster cidrs configuration"
                ));
            };
            set.release(cidr.trunc())
                .map_err(|err| format!("error when releasing CIDR {cidr}: {err}"))?;
        }
        Ok(())
    }

    pub fn sets(&self) -> &[CidrSet] {
        &self.sets
    }

    /// Blocks reserved by failed allocations and never handed to a node: `(set index, block)`.
    pub fn leaked(&self) -> &[(usize, IpNet)] {
        &self.leaked
    }

    /// Gives the leaked blocks back, as a kube-controller-manager restart does (it rebuilds the
    /// sets from the nodes' podCIDRs). Returns how many blocks were reclaimed.
    pub fn reclaim_leaked(&mut self) -> usize {
        let leaked = std::mem::take(&mut self.leaked);
        for (idx, cidr) in &leaked {
            // The block came out of this very set, so releasing it cannot fail.
            let _ = self.sets[*idx].release(*cidr);
        }
        leaked.len()
    }
}

/// The text `occupyCIDRs` returns when a node's podCIDR does not parse. Note that upstream
/// prints the node's singular `spec.podCIDR` field here, not the entry that failed.
pub fn occupy_parse_error(node: &str, spec_pod_cidr: &str) -> String {
    format!("failed to parse node {node}, CIDR {spec_pod_cidr}")
}

/// The text `ReleaseCIDR` returns when a node's podCIDR does not parse.
pub fn release_parse_error(node: &str, cidr: &str, parse_error: &str) -> String {
    format!("failed to parse CIDR {cidr} on Node {node}: {parse_error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| net(s)).collect()
    }

    struct Case {
        name: &'static str,
        cluster: &'static [&'static str],
        masks: &'static [u8],
        service: &'static [&'static str],
        existing: &'static [(&'static str, &'static [&'static str])],
        /// Occupied directly in set 0 after construction (the white-box pre-allocation).
        preallocated: &'static [&'static str],
        want: &'static [&'static str],
    }

    /// `range_allocator_test.go` TestAllocateOrOccupyCIDRSuccess.
    #[test]
    fn allocate_success_table() {
        let table = [
            Case {
                name: "When there's no ServiceCIDR return first CIDR in range",
                cluster: &["127.123.234.0/24"],
                masks: &[30],
                service: &[],
                existing: &[],
                preallocated: &[],
                want: &["127.123.234.0/30"],
            },
            Case {
                name: "Correctly filter out ServiceCIDR",
                cluster: &["127.123.234.0/24"],
                masks: &[30],
                service: &["127.123.234.0/26"],
                existing: &[],
                preallocated: &[],
                want: &["127.123.234.64/30"],
            },
            Case {
                name: "Correctly ignore already allocated CIDRs",
                cluster: &["127.123.234.0/24"],
                masks: &[30],
                service: &["127.123.234.0/26"],
                existing: &[],
                preallocated: &[
                    "127.123.234.64/30",
                    "127.123.234.68/30",
                    "127.123.234.72/30",
                    "127.123.234.80/30",
                ],
                want: &["127.123.234.76/30"],
            },
            Case {
                name: "Dualstack CIDRs v4,v6",
                cluster: &["127.123.234.0/8", "ace:cab:deca::/84"],
                masks: &[24, 98],
                service: &["127.123.234.0/26"],
                existing: &[],
                preallocated: &[],
                want: &["127.0.0.0/24", "ace:cab:deca::/98"],
            },
            Case {
                name: "Dualstack CIDRs v6,v4",
                cluster: &["ace:cab:deca::/84", "127.123.234.0/8"],
                masks: &[98, 24],
                service: &["127.123.234.0/26"],
                existing: &[],
                preallocated: &[],
                want: &["ace:cab:deca::/98", "127.0.0.0/24"],
            },
            Case {
                name: "Dualstack CIDRs, more than two",
                cluster: &["127.123.234.0/8", "ace:cab:deca::/84", "10.0.0.0/8"],
                masks: &[24, 98, 24],
                service: &["127.123.234.0/26"],
                existing: &[],
                preallocated: &[],
                want: &["127.0.0.0/24", "ace:cab:deca::/98", "10.0.0.0/24"],
            },
            Case {
                name: "no double counting",
                cluster: &["10.10.0.0/22"],
                masks: &[24],
                service: &[],
                existing: &[("node0", &["10.10.0.0/24"]), ("node1", &["10.10.2.0/24"])],
                preallocated: &[],
                want: &["10.10.1.0/24"],
            },
        ];
        for case in table {
            let existing: Vec<(String, Vec<IpNet>)> = case
                .existing
                .iter()
                .map(|(n, c)| (n.to_string(), nets(c)))
                .collect();
            let mut ra = RangeAllocator::new(
                &nets(case.cluster),
                case.masks,
                &nets(case.service),
                &existing,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            for c in case.preallocated {
                ra.sets[0].occupy(net(c)).unwrap();
            }
            assert_eq!(ra.allocate().unwrap(), nets(case.want), "{}", case.name);
        }
    }

    /// `range_allocator_test.go` TestOccupyPreExistingCIDR: (name, cluster, masks, node's
    /// podCIDRs, expected construction error).
    #[test]
    fn occupy_pre_existing_table() {
        let v4 = &["10.10.0.0/16"][..];
        let dual = &["10.10.0.0/16", "ace:cab:deca::/8"][..];
        type Row = (
            &'static str,
            &'static [&'static str],
            &'static [u8],
            &'static [&'static str],
            Option<&'static str>,
        );
        let table: [Row; 8] = [
            (
                "success, single stack no node allocation",
                v4,
                &[24],
                &[],
                None,
            ),
            (
                "success, dual stack no node allocation",
                dual,
                &[24, 24],
                &[],
                None,
            ),
            (
                "success, single stack correct node allocation",
                v4,
                &[24],
                &["10.10.0.1/24"],
                None,
            ),
            (
                "success, dual stack both allocated correctly",
                dual,
                &[24, 24],
                &["10.10.0.1/24", "a00::/86"],
                None,
            ),
            (
                "fail, single stack incorrect node allocation",
                v4,
                &[24],
                &["172.10.0.1/24"],
                Some(
                    "failed to mark cidr[172.10.0.0/24] at idx [0] as occupied for node: node0: cidr 172.10.0.0/24 is out the range of cluster cidr 10.10.0.0/16",
                ),
            ),
            (
                "fail, dualstack node allocating from non existing cidr",
                v4,
                &[24],
                &["10.10.0.1/24", "a00::/86"],
                Some(
                    "node:node0 has an allocated cidr: a00::/86 at index:1 that does not exist in cluster cidrs configuration",
                ),
            ),
            (
                "fail, dualstack node allocating bad v4",
                dual,
                &[24, 24],
                &["172.10.0.1/24", "a00::/86"],
                Some(
                    "failed to mark cidr[172.10.0.0/24] at idx [0] as occupied for node: node0: cidr 172.10.0.0/24 is out the range of cluster cidr 10.10.0.0/16",
                ),
            ),
            (
                "fail, dualstack node allocating bad v6",
                dual,
                &[24, 24],
                &["10.10.0.1/24", "cdd::/86"],
                Some(
                    "failed to mark cidr[cdd::/86] at idx [1] as occupied for node: node0: cidr cdd::/86 is out the range of cluster cidr a00::/8",
                ),
            ),
        ];
        for (name, cluster, masks, pod_cidrs, want) in table {
            let existing = vec![("node0".to_string(), nets(pod_cidrs))];
            let got = RangeAllocator::new(&nets(cluster), masks, &[], &existing);
            assert_eq!(got.err().as_deref(), want, "{name}");
        }
    }

    /// `range_allocator_test.go` TestAllocateOrOccupyCIDRFailure, plus the partial-failure leak.
    #[test]
    fn allocation_failure_and_partial_leak() {
        let mut ra = RangeAllocator::new(&nets(&["127.123.234.0/28"]), &[30], &[], &[]).unwrap();
        for c in [
            "127.123.234.0/30",
            "127.123.234.4/30",
            "127.123.234.8/30",
            "127.123.234.12/30",
        ] {
            ra.sets[0].occupy(net(c)).unwrap();
        }
        assert_eq!(
            ra.allocate().unwrap_err(),
            "failed to allocate cidr from cluster cidr at idx:0: CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
        );

        // Dual-stack with the IPv6 set full: the IPv4 block taken first stays reserved.
        let mut ra =
            RangeAllocator::new(&nets(&["10.0.0.0/16", "fd00::/64"]), &[24, 64], &[], &[]).unwrap();
        assert_eq!(ra.allocate().unwrap(), nets(&["10.0.0.0/24", "fd00::/64"]));
        let err = ra.allocate().unwrap_err();
        assert!(err.starts_with("failed to allocate cidr from cluster cidr at idx:1: "));
        assert_eq!(ra.sets()[0].allocated(), 2);
        assert_eq!(ra.leaked(), &[(0, net("10.0.1.0/24"))]);
        assert_eq!(ra.reclaim_leaked(), 1);
        assert_eq!(ra.sets()[0].allocated(), 1);
        assert!(ra.leaked().is_empty());
    }

    /// `range_allocator_test.go` TestReleaseCIDRSuccess: (pre-allocated, first allocation or
    /// failure, released, second allocation).
    #[test]
    fn release_table() {
        let table: [(&[&str], Option<&str>, &str, &str); 2] = [
            (
                &[
                    "127.123.234.0/30",
                    "127.123.234.4/30",
                    "127.123.234.8/30",
                    "127.123.234.12/30",
                ],
                None,
                "127.123.234.4/30",
                "127.123.234.4/30",
            ),
            (
                &["127.123.234.4/30", "127.123.234.8/30", "127.123.234.12/30"],
                Some("127.123.234.0/30"),
                "127.123.234.0/30",
                "127.123.234.0/30",
            ),
        ];
        for (pre, first, released, second) in table {
            let mut ra =
                RangeAllocator::new(&nets(&["127.123.234.0/28"]), &[30], &[], &[]).unwrap();
            for c in pre {
                ra.sets[0].occupy(net(c)).unwrap();
            }
            match first {
                Some(want) => assert_eq!(ra.allocate().unwrap(), vec![net(want)]),
                None => assert!(ra.allocate().is_err()),
            }
            ra.release("node0", &[net(released)]).unwrap();
            assert_eq!(ra.allocate().unwrap(), vec![net(second)]);
        }
    }

    #[test]
    fn release_errors_render_upstream_text() {
        let mut ra = RangeAllocator::new(&nets(&["10.0.0.0/16"]), &[24], &[], &[]).unwrap();
        assert_eq!(
            ra.release("n1", &nets(&["10.0.0.0/24", "fd00::/64"]))
                .unwrap_err(),
            "node:n1 has an allocated cidr: fd00::/64 at index:1 that does not exist in cluster cidrs configuration"
        );
        assert_eq!(
            ra.release("n1", &nets(&["10.9.0.0/24"])).unwrap_err(),
            "error when releasing CIDR 10.9.0.0/24: cidr 10.9.0.0/24 is out the range of cluster cidr 10.0.0.0/16"
        );
        assert_eq!(
            occupy_parse_error("n1", "10.0.0.0/33"),
            "failed to parse node n1, CIDR 10.0.0.0/33"
        );
    }

    /// The service CIDR is occupied only in the set of its family, and a service range that
    /// contains the whole cluster CIDR leaves nothing to allocate.
    #[test]
    fn service_ranges_filter_only_overlapping_sets() {
        let mut ra = RangeAllocator::new(
            &nets(&["10.0.0.0/16", "fd00::/56"]),
            &[24, 64],
            &nets(&["10.0.0.0/23", "fd00::/63"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            ra.allocate().unwrap(),
            nets(&["10.0.2.0/24", "fd00:0:0:2::/64"])
        );
        let mut ra = RangeAllocator::new(
            &nets(&["10.96.0.0/16"]),
            &[24],
            &nets(&["10.96.0.0/12"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            ra.allocate().unwrap_err(),
            "failed to allocate cidr from cluster cidr at idx:0: CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
        );
    }

    #[test]
    fn five_thousand_nodes() {
        let mut ra = RangeAllocator::new(
            &nets(&["10.0.0.0/8", "fc00::8:0:0/94"]),
            &[24, 108],
            &[],
            &[],
        )
        .unwrap();
        let mut last = Vec::new();
        for _ in 0..5000 {
            last = ra.allocate().unwrap();
        }
        assert_eq!(last, nets(&["10.19.135.0/24", "fc00::9:3870:0/108"]));
    }
}
