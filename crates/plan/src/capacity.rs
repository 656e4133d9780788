//! What one configuration holds, per family, and which limit binds first.
//!
//! Every figure is the allocators' own answer, computed without filling them: a fresh
//! `RangeAllocator`'s `maxCIDRs` and the blocks the Service ranges occupy (built once in
//! [`PlanConfig::derive`]), `host_local_capacity` of a node block, `service_range_size` and
//! `calculate_range_offset` of a Service range, and the block counts of Calico pools. The
//! integration tests fill the real allocators (and `knetsim run`) to the same figures.
//!
//! A *limit* is one thing that can run out, with its capacity in the units a target is given
//! in (nodes, pods per node, pods, Services) and the demand a target puts on it. The limit with
//! the highest demand-to-capacity ratio binds first.

use ipnet::IpNet;
use knetsim_ipam::family::{net_size, nth_addr};
use knetsim_ipam::host_local::host_local_capacity;
use knetsim_ipam::service_ip::{AllocatorKind, calculate_range_offset, service_range_size};
use knetsim_ipam::{Family, IpPool};
use serde::Serialize;

use crate::config::{Cni, PlanConfig};
use crate::versions::allocator_name;

/// The legacy bitmap allocator's cap on IPv6 ranges (`bitmap.go`: `min(size, 65536)`).
const BITMAP_IPV6_CAP: u128 = 1 << 16;

/// Node podCIDR blocks of one cluster CIDR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBlocks {
    pub cluster_cidr: IpNet,
    pub node_mask: u8,
    /// Blocks in the cluster CIDR (`maxCIDRs`).
    pub total: u128,
    /// Blocks kube-controller-manager occupies because a Service range overlaps them.
    pub reserved: u128,
    /// Blocks in use: the reserved ones, plus one per node that has joined.
    pub used: u128,
    pub free: u128,
    /// Nodes the family can give a podCIDR to: `total - reserved`.
    pub max_nodes: u128,
}

/// Pod addresses one node's podCIDR gives (host-local, kubenet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIps {
    /// "host-local" or "kubenet".
    pub plugin: &'static str,
    /// Addresses host-local hands out in one node block (network, gateway and, for IPv4,
    /// broadcast excluded).
    pub per_node: u128,
    /// The IPv4 node mask GKE would pick for this max-pods: the smallest block with at least
    /// twice as many addresses as pods, so that addresses are not reused at once when pods
    /// churn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gke_node_mask: Option<u8>,
}

/// Calico IPAM over the enabled pools of one family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoFigures {
    pub pools: Vec<IpNet>,
    /// Block prefix length of the first pool (the one IPAM tries first).
    pub block_size: u8,
    pub addresses_per_block: u128,
    pub blocks: u128,
    pub addresses: u128,
    /// The per-host block limit in effect (`maxBlocksPerHost`, 20 when unset).
    pub max_blocks_per_host: u32,
    /// Blocks a node running `pods_per_node` pods claims.
    pub blocks_per_node: u128,
    /// Addresses one node can hold in its own blocks: beyond them Calico refuses a new block
    /// ("cannot allocate new block due to per host block limit") and does not borrow.
    pub per_node: u128,
    pub strict_affinity: bool,
}

/// ClusterIPs of one Service range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceIps {
    pub cidr: IpNet,
    pub allocator: &'static str,
    /// Allocatable addresses.
    pub total: u128,
    /// KEP-3070's lower band, preferred for user-chosen ClusterIPs (0 when not in effect).
    pub static_band: u128,
    /// The upper band, where dynamic allocation starts.
    pub dynamic_band: u128,
    /// Addresses left for Services: the `kubernetes` Service takes the first address of the
    /// primary range.
    pub available: u128,
    /// Addresses of the range that are never handed out, or already taken.
    pub reserved: Vec<String>,
}

/// Everything one family holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyFigures {
    pub family: Family,
    pub primary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_blocks: Option<NodeBlocks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_ips: Option<PodIps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calico: Option<CalicoFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ips: Option<ServiceIps>,
}

/// The GKE rule: the smallest IPv4 block with at least `2 × max_pods` addresses (GKE's table:
/// 8 → /28, 9–16 → /27, 17–32 → /26, 33–64 → /25, 65–110 → /24).
pub fn gke_node_mask(max_pods: u32) -> u8 {
    let want = 2 * u64::from(max_pods);
    let mut host_bits = 0u8;
    while (1u64 << host_bits) < want && host_bits < 32 {
        host_bits += 1;
    }
    32 - host_bits
}

/// Per-family figures of `cfg` for nodes running `pods_per_node` pods.
pub fn family_figures(cfg: &PlanConfig, pods_per_node: u32) -> Vec<FamilyFigures> {
    cfg.families
        .iter()
        .map(|&family| FamilyFigures {
            family,
            primary: family == cfg.primary(),
            node_blocks: cfg.node_set(family).map(|(_, s)| NodeBlocks {
                cluster_cidr: s.cidr,
                node_mask: s.node_mask,
                total: s.total,
                reserved: s.reserved,
                used: s.reserved,
                free: s.total - s.reserved,
                max_nodes: s.total - s.reserved,
            }),
            pod_ips: pod_ips(cfg, family),
            calico: calico_figures(cfg, family, pods_per_node),
            service_ips: cfg
                .service_cidr(family)
                .zip(cfg.services.as_ref())
                .map(|(cidr, s)| {
                    service_ips(
                        cidr,
                        s.allocator,
                        s.static_subrange,
                        family == cfg.primary(),
                    )
                }),
        })
        .collect()
}

fn pod_ips(cfg: &PlanConfig, family: Family) -> Option<PodIps> {
    let Cni::HostLocal { kubenet } = cfg.cni else {
        return None;
    };
    let (_, set) = cfg.node_set(family)?;
    let block = IpNet::new(set.cidr.network(), set.node_mask).ok()?.trunc();
    Some(PodIps {
        plugin: if kubenet { "kubenet" } else { "host-local" },
        per_node: host_local_capacity(&block),
        gke_node_mask: (family == Family::IPv4).then(|| gke_node_mask(cfg.max_pods)),
    })
}

fn calico_figures(cfg: &PlanConfig, family: Family, pods_per_node: u32) -> Option<CalicoFigures> {
    let Cni::Calico(c) = &cfg.cni else {
        return None;
    };
    if !c.assign.contains(&family) {
        return None;
    }
    let first = c.pool(family)?;
    let pools: Vec<&IpPool> = c.pools_of(family).collect();
    let per_block = first.block_addresses();
    let blocks_per_node = u128::from(pods_per_node).div_ceil(per_block);
    let max_blocks = c.effective_max_blocks();
    Some(CalicoFigures {
        pools: pools.iter().map(|p| p.cidr).collect(),
        block_size: first.effective_block_size(),
        addresses_per_block: per_block,
        blocks: pools.iter().map(|p| p.block_count()).sum(),
        addresses: pools.iter().map(|p| net_size(&p.cidr.trunc())).sum(),
        max_blocks_per_host: max_blocks,
        blocks_per_node,
        per_node: u128::from(max_blocks) * per_block,
        strict_affinity: c.strict_affinity,
    })
}

/// The figures of one Service range.
pub fn service_ips(
    cidr: IpNet,
    kind: AllocatorKind,
    static_subrange: bool,
    primary: bool,
) -> ServiceIps {
    let total = service_range_size(&cidr, kind);
    let static_band = if static_subrange {
        calculate_range_offset(&cidr).min(total)
    } else {
        0
    };
    let family = Family::of_net(&cidr);
    let mut reserved = vec![format!("{} (network address)", cidr.network())];
    let size = net_size(&cidr);
    if family == Family::IPv4 && size > 1 {
        reserved.push(format!("{} (broadcast address)", cidr.broadcast()));
    }
    if kind == AllocatorKind::Bitmap && family == Family::IPv6 && size > BITMAP_IPV6_CAP {
        reserved.push(format!(
            "{} and above ({} addresses: the bitmap allocator uses only the first 65536)",
            nth_addr(&cidr, BITMAP_IPV6_CAP),
            size - BITMAP_IPV6_CAP
        ));
    }
    if kind == AllocatorKind::IpAddress && family == Family::IPv6 && cidr.prefix_len() < 64 {
        reserved.push(
            "every address: the IPAddress allocator refuses ranges shorter than /64".to_string(),
        );
    }
    let kubernetes = u128::from(primary && total > 0);
    if kubernetes == 1 {
        reserved.push(format!("{} (the `kubernetes` Service)", nth_addr(&cidr, 1)));
    }
    ServiceIps {
        cidr,
        allocator: allocator_name(kind),
        total,
        static_band,
        dynamic_band: total - static_band,
        available: total - kubernetes,
        reserved,
    }
}

/// What a plan asks of the cluster, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub nodes: u64,
    pub pods_per_node: u32,
    /// Single-stack Services, in the primary family.
    pub services: u64,
    /// Services with a ClusterIP in every family.
    pub dual_stack_services: u64,
}

/// One thing that can run out.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    /// A stable name: `nodeBlocks/IPv4`, `maxPods`, `podCidr/IPv6`, `calicoBlocks/IPv4`,
    /// `calicoAddresses/IPv4`, `calicoHostBlocks/IPv4`, `serviceIps/IPv6`.
    pub key: String,
    pub description: String,
    /// What capacity and demand count: "nodes", "pods per node", "pods", "blocks", "Services".
    pub unit: &'static str,
    pub capacity: u128,
    pub demand: u128,
    pub meets: bool,
    /// Demand over capacity, in percent.
    pub utilization: f64,
    /// False for a limit whose excess shows only as events: with Calico, a node without a
    /// podCIDR (`CIDRNotAvailable`) still runs pods.
    pub hard: bool,
}

fn limit(
    key: String,
    description: String,
    unit: &'static str,
    capacity: u128,
    demand: u128,
    hard: bool,
) -> Limit {
    let utilization = if capacity == 0 {
        if demand == 0 { 0.0 } else { f64::INFINITY }
    } else {
        // Rounded to a tenth of a percent, so that reports do not depend on float printing.
        ((demand as f64 / capacity as f64) * 1000.0).round() / 10.0
    };
    Limit {
        key,
        description,
        unit,
        capacity,
        demand,
        meets: demand <= capacity,
        utilization,
        hard,
    }
}

/// Every limit of `cfg` under `target`, in a fixed order: per family node blocks, pod
/// addresses per node, Calico pools, Service IPs; then max-pods.
pub fn limits(cfg: &PlanConfig, figures: &[FamilyFigures], target: &Target) -> Vec<Limit> {
    let mut out = Vec::new();
    let nodes = u128::from(target.nodes);
    let ppn = u128::from(target.pods_per_node);
    let calico = matches!(cfg.cni, Cni::Calico(_));
    for f in figures {
        let fam = f.family;
        if let Some(b) = &f.node_blocks {
            out.push(limit(
                format!("nodeBlocks/{fam}"),
                format!("{fam} node blocks: {} in /{}s", b.cluster_cidr, b.node_mask),
                "nodes",
                b.max_nodes,
                nodes,
                !calico,
            ));
        }
        if let Some(p) = &f.pod_ips {
            out.push(limit(
                format!("podCidr/{fam}"),
                format!("{fam} addresses in one node's podCIDR ({})", p.plugin),
                "pods per node",
                p.per_node,
                ppn,
                true,
            ));
        }
        if let Some(c) = &f.calico {
            out.push(limit(
                format!("calicoHostBlocks/{fam}"),
                format!(
                    "{fam} addresses in one node's blocks ({} /{} blocks)",
                    c.max_blocks_per_host, c.block_size
                ),
                "pods per node",
                c.per_node,
                ppn,
                true,
            ));
            if c.strict_affinity {
                out.push(limit(
                    format!("calicoBlocks/{fam}"),
                    format!("{fam} Calico blocks (strictAffinity: no borrowing)"),
                    "blocks",
                    c.blocks,
                    nodes * c.blocks_per_node,
                    true,
                ));
            }
            out.push(limit(
                format!("calicoAddresses/{fam}"),
                format!("{fam} Calico pool addresses"),
                "pods",
                c.addresses,
                nodes * ppn,
                true,
            ));
        }
        if let Some(s) = &f.service_ips {
            let demand = u128::from(target.dual_stack_services)
                + if f.primary {
                    u128::from(target.services)
                } else {
                    0
                };
            out.push(limit(
                format!("serviceIps/{fam}"),
                format!("{fam} ClusterIPs: {} ({})", s.cidr, s.allocator),
                "Services",
                s.available,
                demand,
                true,
            ));
        }
    }
    out.push(limit(
        "maxPods".to_string(),
        format!("kubelet --max-pods={}", cfg.max_pods),
        "pods per node",
        u128::from(cfg.max_pods),
        ppn,
        true,
    ));
    out
}

/// The limit that binds first: the hard limit with the highest utilization (the first of
/// equals, in [`limits`] order). With `max_pods_given` false the target's pods per node *is*
/// max-pods, so max-pods is full by definition and is not a candidate.
pub fn binding(limits: &[Limit], max_pods_given: bool) -> Option<&Limit> {
    let mut best: Option<&Limit> = None;
    for l in limits
        .iter()
        .filter(|l| l.hard && l.demand > 0 && (max_pods_given || l.key != "maxPods"))
    {
        if best.is_none_or(|b| l.utilization > b.utilization) {
            best = Some(l);
        }
    }
    best
}

/// A maximum and the limit that sets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bound {
    pub value: u128,
    pub limited_by: String,
}

/// How many pods a node can run: max-pods, or fewer if its addresses run out first.
pub fn pods_per_node(cfg: &PlanConfig, figures: &[FamilyFigures]) -> Bound {
    let mut best = Bound {
        value: u128::from(cfg.max_pods),
        limited_by: "maxPods".to_string(),
    };
    for f in figures {
        let cands = [
            f.pod_ips
                .as_ref()
                .map(|p| (p.per_node, format!("podCidr/{}", f.family))),
            f.calico
                .as_ref()
                .map(|c| (c.per_node, format!("calicoHostBlocks/{}", f.family))),
        ];
        for (value, key) in cands.into_iter().flatten() {
            if value < best.value {
                best = Bound {
                    value,
                    limited_by: key,
                };
            }
        }
    }
    best
}

/// How many nodes running `pods_per_node` pods the cluster holds, and the limit that says so.
/// `None` when no pool limits the node count.
pub fn max_nodes(cfg: &PlanConfig, figures: &[FamilyFigures], pods_per_node: u32) -> Option<Bound> {
    let calico = matches!(cfg.cni, Cni::Calico(_));
    let ppn = u128::from(pods_per_node.max(1));
    let mut best: Option<Bound> = None;
    let mut consider = |value: u128, key: String| {
        if best.as_ref().is_none_or(|b| value < b.value) {
            best = Some(Bound {
                value,
                limited_by: key,
            });
        }
    };
    for f in figures {
        if let (Some(b), false) = (&f.node_blocks, calico) {
            consider(b.max_nodes, format!("nodeBlocks/{}", f.family));
        }
        if let Some(c) = &f.calico {
            if c.strict_affinity && c.blocks_per_node > 0 {
                consider(
                    c.blocks / c.blocks_per_node,
                    format!("calicoBlocks/{}", f.family),
                );
            }
            consider(c.addresses / ppn, format!("calicoAddresses/{}", f.family));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GKE's "maximum pods per node" table (cloud.google.com/kubernetes-engine/docs/how-to/
    /// flexible-pod-cidr): the node's range is the smallest with twice as many addresses.
    #[test]
    fn gke_node_masks() {
        let table: &[(u32, u8)] = &[
            (8, 28),
            (9, 27),
            (16, 27),
            (17, 26),
            (32, 26),
            (33, 25),
            (64, 25),
            (65, 24),
            (110, 24),
            (128, 24),
            (129, 23),
            (256, 23),
        ];
        for &(pods, mask) in table {
            assert_eq!(gke_node_mask(pods), mask, "max-pods {pods}");
        }
    }

    #[test]
    fn service_ranges_say_what_they_reserve() {
        struct Case {
            cidr: &'static str,
            kind: AllocatorKind,
            primary: bool,
            /// total, static band, available
            figures: (u128, u128, u128),
            reserved: &'static [&'static str],
        }
        let cases = [
            Case {
                cidr: "10.96.0.0/12",
                kind: AllocatorKind::Bitmap,
                primary: true,
                figures: ((1 << 20) - 2, 256, (1 << 20) - 3),
                reserved: &[
                    "10.96.0.0 (network address)",
                    "10.111.255.255 (broadcast address)",
                    "10.96.0.1 (the `kubernetes` Service)",
                ],
            },
            Case {
                cidr: "fd00:10:96::/108",
                kind: AllocatorKind::Bitmap,
                primary: false,
                figures: (65535, 256, 65535),
                reserved: &[
                    "fd00:10:96:: (network address)",
                    "fd00:10:96::1:0 and above (983040 addresses: the bitmap allocator uses only the first 65536)",
                ],
            },
            Case {
                cidr: "fd00:10:96::/108",
                kind: AllocatorKind::IpAddress,
                primary: false,
                figures: ((1 << 20) - 1, 256, (1 << 20) - 1),
                reserved: &["fd00:10:96:: (network address)"],
            },
        ];
        for c in cases {
            let s = service_ips(c.cidr.parse().unwrap(), c.kind, true, c.primary);
            assert_eq!(
                (s.total, s.static_band, s.available),
                c.figures,
                "{} {:?}",
                c.cidr,
                c.kind
            );
            assert_eq!(s.dynamic_band, s.total - s.static_band);
            assert_eq!(s.reserved, c.reserved, "{} {:?}", c.cidr, c.kind);
        }
    }
}
