//! The report for one configuration: per family what it holds, which limit binds first, what
//! stops a component from starting on which releases, and which ranges overlap.
//!
//! "Used" node blocks are what `run` would have allocated once the scenario's `nodes:` joined:
//! blocks a node already names in `podCIDRs` are occupied, every other node gets the next
//! block in each cluster CIDR, and a failed allocation leaks like kube-controller-manager's
//! does. Nodes added by `steps:` and Node objects in `manifests:` are not counted.

use std::collections::BTreeSet;

use ipnet::IpNet;
use knetsim_ipam::cidrset::overlaps;
use knetsim_model::{KubeVersion, Scenario};
use serde::Serialize;

use crate::capacity::{self, Bound, FamilyFigures, Limit, Target};
use crate::config::{Cni, PlanConfig, Severity};
use crate::versions::{self, AcrossVersions};

/// A problem with the ranges that no component reports: overlaps, and settings that leave
/// pods without addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleReport {
    pub kubernetes_version: KubeVersion,
    /// The CNI plugin's IPAM: "host-local", "kubenet" or "calico".
    pub cni: &'static str,
    pub max_pods: u32,
    pub families: Vec<FamilyFigures>,
    /// How many pods a node can run.
    pub pods_per_node: Bound,
    /// How many nodes running the target's pods per node the cluster holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<Bound>,
    /// Nodes in the scenario (counted in the node blocks' `used`).
    pub scenario_nodes: usize,
    pub target: Target,
    /// Whether `plan.target` (or the options) gave the target; otherwise it is the scenario's
    /// own size at max-pods.
    pub target_given: bool,
    pub meets_target: bool,
    /// The limit that binds first under the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    pub limits: Vec<Limit>,
    /// Start-up errors and warnings on every release, and Service IP figures per allocator.
    pub versions: AcrossVersions,
    pub findings: Vec<Finding>,
}

/// The report for `cfg`, the scenario's own configuration.
/// `pods_per_node_given`: whether the target's pods per node was given (rather than taken from
/// max-pods).
pub fn report(
    scenario: &Scenario,
    cfg: &PlanConfig,
    target: Target,
    target_given: bool,
    pods_per_node_given: bool,
    node_networks: &[(IpNet, String)],
) -> SingleReport {
    let mut families = capacity::family_figures(cfg, target.pods_per_node);
    let used = replay_nodes(cfg, scenario);
    for f in &mut families {
        if let (Some(b), Some((i, _))) = (f.node_blocks.as_mut(), cfg.node_set(f.family)) {
            b.used = used.get(i).copied().unwrap_or(b.reserved);
            b.free = b.total - b.used;
        }
    }
    let limits = capacity::limits(cfg, &families, &target);
    let binding = capacity::binding(&limits, pods_per_node_given).map(|l| l.key.clone());
    let meets_target = cfg.starts() && limits.iter().all(|l| l.meets || !l.hard);
    SingleReport {
        kubernetes_version: cfg.version,
        cni: match cfg.cni {
            Cni::HostLocal { kubenet: false } => "host-local",
            Cni::HostLocal { kubenet: true } => "kubenet",
            Cni::Calico(_) => "calico",
        },
        max_pods: cfg.max_pods,
        pods_per_node: capacity::pods_per_node(cfg, &families),
        max_nodes: capacity::max_nodes(cfg, &families, target.pods_per_node),
        scenario_nodes: scenario.nodes.len(),
        target,
        target_given,
        meets_target,
        binding,
        limits,
        versions: versions::across_versions(&cfg.cluster, cfg.seed, cfg.version),
        findings: findings(cfg, node_networks),
        families,
    }
}

/// Blocks in use per cluster CIDR once the scenario's nodes joined, as `run` allocates them.
fn replay_nodes(cfg: &PlanConfig, scenario: &Scenario) -> Vec<u128> {
    let Some(ipam) = &cfg.node_ipam else {
        return Vec::new();
    };
    let Ok(mut alloc) = ipam.allocator() else {
        return Vec::new();
    };
    // Registration: a second node of the same name is refused (AlreadyExists); nodes that
    // already have podCIDRs occupy them.
    let mut seen = BTreeSet::new();
    let mut waiting = 0usize;
    for node in &scenario.nodes {
        if !seen.insert(node.name.value.as_str()) {
            continue;
        }
        let cidrs: Vec<IpNet> = node
            .pod_cidrs
            .iter()
            .filter_map(|c| c.value.parse::<IpNet>().ok().map(|n| n.trunc()))
            .collect();
        if cidrs.is_empty() {
            waiting += 1;
        } else {
            // An occupy error is an event in `run`; the node keeps its podCIDRs.
            let _ = alloc.occupy(&node.name.value, &cidrs);
        }
    }
    // Node IPAM: every node without podCIDRs, in registration order.
    for _ in 0..waiting {
        let _ = alloc.allocate();
    }
    alloc
        .sets()
        .iter()
        .map(|s| u128::from(s.allocated()))
        .collect()
}

/// Overlaps between the cluster CIDRs, the Service ranges, Calico's pools and the underlay, and
/// settings that leave pods without addresses.
pub fn findings(cfg: &PlanConfig, node_networks: &[(IpNet, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    let warn = |m: String| Finding {
        severity: Severity::Warning,
        message: m,
    };
    let apiserver_services: Vec<IpNet> = cfg
        .services
        .as_ref()
        .map(|s| s.cidrs.clone())
        .unwrap_or_default();

    if cfg.node_ipam_disabled && matches!(cfg.cni, Cni::HostLocal { .. }) {
        out.push(warn(
            "kube-controller-manager runs without --allocate-node-cidrs: nodes get no podCIDRs, so host-local cannot give pods addresses".to_string(),
        ));
    }

    if let Some(ipam) = &cfg.node_ipam {
        for set in &ipam.sets {
            for svc in apiserver_services.iter().filter(|s| overlaps(&set.cidr, s)) {
                if ipam.service_cidrs.iter().any(|k| k == svc) {
                    out.push(warn(format!(
                        "cluster CIDR {} overlaps Service range {svc}: kube-controller-manager keeps the {} node blocks it covers out of use",
                        set.cidr, set.reserved
                    )));
                } else {
                    out.push(warn(format!(
                        "cluster CIDR {} overlaps Service range {svc}, which kube-controller-manager's --service-cluster-ip-range does not name: nodes can get podCIDRs that hold ClusterIPs",
                        set.cidr
                    )));
                }
            }
        }
        let kcm: BTreeSet<IpNet> = ipam.service_cidrs.iter().copied().collect();
        let api: BTreeSet<IpNet> = apiserver_services.iter().copied().collect();
        if !kcm.is_empty() && !api.is_empty() && kcm != api {
            out.push(warn(format!(
                "kube-controller-manager's --service-cluster-ip-range ({}) differs from kube-apiserver's ({})",
                join(&ipam.service_cidrs),
                join(&apiserver_services)
            )));
        }
    }

    if let Cni::Calico(c) = &cfg.cni {
        for pool in c.pools.iter().filter(|p| !p.disabled) {
            for svc in apiserver_services
                .iter()
                .filter(|s| overlaps(&pool.cidr, s))
            {
                out.push(warn(format!(
                    "Calico pool {} ({}) overlaps Service range {svc}: pods can get addresses that are ClusterIPs",
                    pool.name, pool.cidr
                )));
            }
        }
    }

    // The underlay: every range a pod or Service address comes from must stay clear of it.
    let mut ranges: Vec<(IpNet, String)> = Vec::new();
    if let Some(ipam) = &cfg.node_ipam
        && matches!(cfg.cni, Cni::HostLocal { .. })
    {
        ranges.extend(
            ipam.cluster_cidrs
                .iter()
                .map(|c| (*c, format!("cluster CIDR {c}"))),
        );
    }
    if let Cni::Calico(c) = &cfg.cni {
        ranges.extend(
            c.pools
                .iter()
                .filter(|p| !p.disabled && c.assign.contains(&p.family()))
                .map(|p| (p.cidr, format!("Calico pool {} ({})", p.name, p.cidr))),
        );
    }
    ranges.extend(
        apiserver_services
            .iter()
            .map(|s| (*s, format!("Service range {s}"))),
    );
    for (range, what) in &ranges {
        let hits: Vec<&(IpNet, String)> = node_networks
            .iter()
            .filter(|(n, _)| overlaps(range, n))
            .collect();
        let Some((first, source)) = hits.first() else {
            continue;
        };
        let one = |n: &IpNet| {
            if n.prefix_len() == n.max_prefix_len() {
                n.addr().to_string()
            } else {
                n.to_string()
            }
        };
        let message = if hits.len() == 1 {
            format!(
                "{what} overlaps the node network: {} ({source})",
                one(first)
            )
        } else {
            format!(
                "{what} overlaps the node network: {} entries, the first {} ({source})",
                hits.len(),
                one(first)
            )
        };
        out.push(warn(message));
    }
    out
}

fn join(v: &[IpNet]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
