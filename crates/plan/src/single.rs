//! The report for one configuration: per family what it holds, which limit binds first, what
//! stops a component from starting on which releases, and which ranges overlap.
//!
//! "Used" node blocks are what `run` has allocated once the scenario's `nodes:` (and Node
//! objects in `manifests:`) registered, before any step: the planner runs the engine on the
//! scenario without its other objects and steps and reads its capacity section.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_ipam::cidrset::overlaps;
use knetsim_model::objects::Object;
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
    let used = blocks_in_use(scenario);
    for f in &mut families {
        if let (Some(b), Some(u)) = (f.node_blocks.as_mut(), used.get(&f.family)) {
            b.used = *u;
            b.free = b.total.saturating_sub(*u);
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

/// Node blocks in use per family once the scenario's nodes registered: `run` itself, on the
/// scenario without its Services, Pods, workloads and steps, so that the figure is whatever the
/// engine's node IPAM did (including retries that leak blocks when a dual-stack allocation
/// fails half-way).
fn blocks_in_use(scenario: &Scenario) -> BTreeMap<Family, u128> {
    let mut nodes_only = scenario.clone();
    nodes_only.steps.clear();
    nodes_only.expect.clear();
    nodes_only
        .manifests
        .retain(|o| matches!(o, Object::Node(_)));
    let state = knetsim_control::simulate(&nodes_only);
    state
        .capacity
        .iter()
        .filter_map(|(f, c)| c.node_cidrs.as_ref().map(|n| (*f, n.used)))
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
