//! A planning configuration: what the components of one cluster would run with, on one
//! Kubernetes version, reduced to what capacity depends on.
//!
//! It is derived from a scenario's `cluster:` section by `knetsim_control::components::configure`
//! — the same call `knetsim run` makes when the control plane starts — so that flag parsing,
//! defaults (node masks 24/64, the deprecated Service range 10.0.0.0/24, max-pods 110) and the
//! version rules are exactly `run`'s. The node IPAM is then built the way `run` builds it
//! (`RangeAllocator::new` over the cluster CIDRs, masks and Service ranges), so its start-up error
//! ("the node CIDR size is too big") is found here too. A scenario that has nothing but a
//! `cluster:` section plans like any other.
//!
//! [`edit_cluster`] rewrites the flags of a `cluster:` section with other choices (cluster
//! prefix, node mask, Service prefix, max-pods) for sweeps; the result goes through the same
//! derivation.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_control::components;
use knetsim_ipam::calico::{self, IpPool};
use knetsim_ipam::range_allocator::RangeAllocator;
use knetsim_ipam::service_ip::AllocatorKind;
use knetsim_ipam::{Family, rng};
use knetsim_model::flags::{Component, ComponentFlags, Flag, FlagValue};
use knetsim_model::scenario::{CalicoConfig, ClusterConfig, CniConfig};
use knetsim_model::{KubeVersion, Scenario};
use rand::RngExt;
use serde::Serialize;

/// Node addresses `run` gives nodes that name no `node-ip`: kind's docker network, one address
/// per cluster family (`knetsim_control::sim`).
pub const DEFAULT_NODE_NET_V4: &str = "172.18.0.0/16";
pub const DEFAULT_NODE_NET_V6: &str = "fc00:f853:ccd:e793::/64";

/// What one cluster runs with, on one version.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub version: KubeVersion,
    pub seed: u64,
    /// The `cluster:` section this was derived from (sweeps edit it).
    pub cluster: ClusterConfig,
    /// The cluster's families, primary first: the family of the first Service range, then the
    /// other families the cluster CIDRs or the CNI use.
    pub families: Vec<Family>,
    /// kube-apiserver's Service ranges, when it starts.
    pub services: Option<ServiceSide>,
    /// kube-controller-manager's node IPAM, when it starts and allocates node CIDRs.
    pub node_ipam: Option<NodeIpamSide>,
    /// Whether kube-controller-manager starts but `--allocate-node-cidrs` is off.
    pub node_ipam_disabled: bool,
    /// The kubelet's `--max-pods`.
    pub max_pods: u32,
    pub cni: Cni,
    /// Components that do not start on this version, and warnings they log, in start order.
    pub outcomes: Vec<ComponentOutcome>,
}

/// kube-apiserver's Service IP allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSide {
    /// Masked, primary first.
    pub cidrs: Vec<IpNet>,
    pub allocator: AllocatorKind,
    /// KEP-3070's static band in effect.
    pub static_subrange: bool,
}

/// kube-controller-manager's node IPAM, as `RangeAllocator::new` receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIpamSide {
    pub cluster_cidrs: Vec<IpNet>,
    /// Index-aligned with `cluster_cidrs`.
    pub node_masks: Vec<u8>,
    /// kube-controller-manager's own `--service-cluster-ip-range`, occupied in the sets.
    pub service_cidrs: Vec<IpNet>,
    /// What the fresh allocator holds, per cluster CIDR: its blocks, and how many of them the
    /// Service ranges took before any node joined.
    pub sets: Vec<SetFigures>,
}

/// One `CidrSet` of a fresh allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetFigures {
    pub cidr: IpNet,
    pub node_mask: u8,
    /// `maxCIDRs`.
    pub total: u128,
    /// Blocks occupied by Service ranges (`filterOutServiceRange`).
    pub reserved: u128,
}

impl NodeIpamSide {
    /// A fresh allocator, as kube-controller-manager builds it with no nodes.
    pub fn allocator(&self) -> Result<RangeAllocator, String> {
        RangeAllocator::new(
            &self.cluster_cidrs,
            &self.node_masks,
            &self.service_cidrs,
            &[],
        )
    }
}

/// The CNI plugin's IPAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cni {
    /// host-local over each node's podCIDRs (bridge, ptp, kindnet), or kubenet.
    HostLocal {
        kubenet: bool,
    },
    Calico(CalicoSide),
}

/// Calico IPAM as calico-node and the CNI plugin set it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoSide {
    pub pools: Vec<IpPool>,
    /// Families the CNI plugin assigns (`assign_ipv4`, `assign_ipv6`).
    pub assign: Vec<Family>,
    pub strict_affinity: bool,
    /// IPAMConfig `maxBlocksPerHost` as written (0: Calico's default).
    pub max_blocks_per_host: u32,
}

impl CalicoSide {
    /// The enabled pool of `family` that IPAM uses first (pools are listed by name).
    pub fn pool(&self, family: Family) -> Option<&IpPool> {
        let mut pools: Vec<&IpPool> = self
            .pools
            .iter()
            .filter(|p| p.family() == family && !p.disabled)
            .collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools.first().copied()
    }

    /// Every enabled pool of `family`.
    pub fn pools_of(&self, family: Family) -> impl Iterator<Item = &IpPool> {
        self.pools
            .iter()
            .filter(move |p| p.family() == family && !p.disabled)
    }

    /// The per-host block limit in effect (0 means Calico's default of 20).
    pub fn effective_max_blocks(&self) -> u32 {
        if self.max_blocks_per_host == 0 {
            calico::DEFAULT_MAX_BLOCKS_PER_HOST
        } else {
            self.max_blocks_per_host
        }
    }
}

/// One component's start-up on one version: an error that stops it, or a warning it logs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ComponentOutcome {
    pub component: String,
    pub severity: Severity,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl PlanConfig {
    /// The scenario's own configuration, on its own version.
    pub fn from_scenario(scenario: &Scenario) -> PlanConfig {
        PlanConfig::derive(scenario.version, scenario.seed, &scenario.cluster)
    }

    /// `cluster` on `version`, as `run` would start it.
    pub fn derive(version: KubeVersion, seed: u64, cluster: &ClusterConfig) -> PlanConfig {
        let cp = components::configure(version, cluster);
        let mut outcomes = Vec::new();
        // The order components start in, so that messages read in the order a user would see
        // them in the logs.
        for c in Component::ALL {
            let Some(status) = cp.statuses.get(c.name()) else {
                continue;
            };
            if let (false, Some(msg)) = (status.started, &status.message) {
                outcomes.push(ComponentOutcome {
                    component: c.name().to_string(),
                    severity: Severity::Error,
                    message: msg.clone(),
                });
            }
            for w in &status.warnings {
                outcomes.push(ComponentOutcome {
                    component: c.name().to_string(),
                    severity: Severity::Warning,
                    message: w.clone(),
                });
            }
        }

        let services = cp.apiserver.as_ref().map(|api| ServiceSide {
            cidrs: api.service_cidrs.iter().map(IpNet::trunc).collect(),
            allocator: api.allocator_kind,
            static_subrange: api.static_subrange,
        });

        let mut node_ipam = None;
        let mut node_ipam_disabled = false;
        if let Some(kcm) = &cp.kcm {
            if kcm.node_ipam {
                let mut side = NodeIpamSide {
                    cluster_cidrs: kcm.cluster_cidrs.iter().map(IpNet::trunc).collect(),
                    node_masks: kcm.node_mask_sizes.clone(),
                    service_cidrs: kcm.service_cidrs.iter().map(IpNet::trunc).collect(),
                    sets: Vec::new(),
                };
                // `run` builds the allocator when the controller starts; its error stops the
                // node-ipam-controller and with it kube-controller-manager.
                match side.allocator() {
                    Ok(a) => {
                        side.sets = a
                            .sets()
                            .iter()
                            .map(|set| SetFigures {
                                cidr: set.cluster_cidr(),
                                node_mask: set.node_mask(),
                                total: u128::from(set.max_cidrs()),
                                reserved: u128::from(set.allocated()),
                            })
                            .collect();
                        node_ipam = Some(side);
                    }
                    Err(msg) => outcomes.push(ComponentOutcome {
                        component: Component::KubeControllerManager.name().to_string(),
                        severity: Severity::Error,
                        message: msg,
                    }),
                }
            } else {
                node_ipam_disabled = true;
            }
        }

        let max_pods = components::kubelet_max_pods(&cp.kubelet, &ComponentFlags::default());
        let cni = match &cluster.cni {
            CniConfig::HostLocal => Cni::HostLocal { kubenet: false },
            CniConfig::Kubenet => Cni::HostLocal { kubenet: true },
            CniConfig::Calico(c) => Cni::Calico(calico_side(c, seed)),
        };

        let mut families: Vec<Family> = Vec::new();
        let mut add = |f: Family| {
            if !families.contains(&f) {
                families.push(f);
            }
        };
        for f in cp.network.ip_families.iter().copied() {
            add(f);
        }
        if let Some(s) = &services {
            s.cidrs.iter().for_each(|c| add(Family::of_net(c)));
        }
        if let Some(n) = &node_ipam {
            n.cluster_cidrs.iter().for_each(|c| add(Family::of_net(c)));
        }
        if let Cni::Calico(c) = &cni {
            c.assign.iter().for_each(|f| add(*f));
        }

        PlanConfig {
            version,
            seed,
            cluster: cluster.clone(),
            families,
            services,
            node_ipam,
            node_ipam_disabled,
            max_pods,
            cni,
            outcomes,
        }
    }

    /// The primary family (of the first Service range), IPv4 when nothing says otherwise.
    pub fn primary(&self) -> Family {
        self.families.first().copied().unwrap_or(Family::IPv4)
    }

    /// The Service range of `family`.
    pub fn service_cidr(&self, family: Family) -> Option<IpNet> {
        let s = self.services.as_ref()?;
        s.cidrs
            .iter()
            .copied()
            .find(|c| Family::of_net(c) == family)
    }

    /// The node blocks of `family`'s cluster CIDR (the first of that family, which is the
    /// one kube-controller-manager allows), with its index in `--cluster-cidr`.
    pub fn node_set(&self, family: Family) -> Option<(usize, SetFigures)> {
        let n = self.node_ipam.as_ref()?;
        let i = n
            .sets
            .iter()
            .position(|s| Family::of_net(&s.cidr) == family)?;
        Some((i, n.sets[i]))
    }

    /// Whether any component fails to start.
    pub fn starts(&self) -> bool {
        !self.outcomes.iter().any(|o| o.severity == Severity::Error)
    }
}

fn truthy(v: Option<&str>, default: bool) -> bool {
    match v {
        Some(s) => s.eq_ignore_ascii_case("true"),
        None => default,
    }
}

/// Calico's pools and CNI settings, as `run` sets them up (`knetsim_control::sim::network`,
/// after calico-node's `startup.go` and the CNI plugin's `ipam_plugin.go`): explicit IPPools,
/// then a default pool per family that has none (unless `NO_DEFAULT_POOLS`), the IPv6 one only
/// with Felix's IPv6 support, at a random ULA /48 drawn from the same named stream when
/// `CALICO_IPV6POOL_CIDR` is unset.
fn calico_side(c: &CalicoConfig, seed: u64) -> CalicoSide {
    let env = |k: &str| c.env.get(k).map(|v| v.value.as_str());
    let mut assign = Vec::new();
    if truthy(
        c.assign_ipv4.as_ref().map(|s| s.value.as_str()),
        calico::CNI_ASSIGN_IPV4_DEFAULT,
    ) {
        assign.push(Family::IPv4);
    }
    if truthy(
        c.assign_ipv6.as_ref().map(|s| s.value.as_str()),
        calico::CNI_ASSIGN_IPV6_DEFAULT,
    ) {
        assign.push(Family::IPv6);
    }
    let mut pools: Vec<IpPool> = c
        .ip_pools
        .iter()
        .map(|p| IpPool {
            name: p.name.clone(),
            cidr: p.cidr.value.trunc(),
            block_size: p.block_size.as_ref().map_or(0, |b| b.value),
            nat_outgoing: p.nat_outgoing,
            disabled: p.disabled,
        })
        .collect();
    let ipv6_support = truthy(env("FELIX_IPV6SUPPORT"), true);
    if !truthy(env("NO_DEFAULT_POOLS"), false) {
        let has = |pools: &[IpPool], f: Family| pools.iter().any(|p| p.family() == f);
        if !has(&pools, Family::IPv4) {
            let cidr = env("CALICO_IPV4POOL_CIDR")
                .and_then(|s| s.parse::<IpNet>().ok())
                .unwrap_or_else(|| {
                    calico::DEFAULT_IPV4_POOL_CIDR
                        .parse()
                        .expect("constant CIDR")
                });
            pools.push(IpPool {
                name: calico::DEFAULT_IPV4_POOL_NAME.into(),
                cidr: cidr.trunc(),
                block_size: env("CALICO_IPV4POOL_BLOCK_SIZE")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(calico::DEFAULT_IPV4_POOL_BLOCK_SIZE),
                nat_outgoing: truthy(
                    env("CALICO_IPV4POOL_NAT_OUTGOING"),
                    calico::DEFAULT_IPV4_POOL_NAT_OUTGOING,
                ),
                disabled: false,
            });
        }
        if !has(&pools, Family::IPv6) && ipv6_support {
            let cidr = env("CALICO_IPV6POOL_CIDR")
                .and_then(|s| s.parse::<IpNet>().ok())
                .unwrap_or_else(|| {
                    let mut r = rng::named(seed, "calico-node/ipv6-pool");
                    let g: u64 = r.random::<u64>() & 0xff_ffff_ffff;
                    let hi: u128 = (0xfdu128 << 120) | ((g as u128) << 80);
                    IpNet::new(IpAddr::V6(hi.into()), 48).expect("valid prefix")
                });
            pools.push(IpPool {
                name: calico::DEFAULT_IPV6_POOL_NAME.into(),
                cidr: cidr.trunc(),
                block_size: env("CALICO_IPV6POOL_BLOCK_SIZE")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(calico::DEFAULT_IPV6_POOL_BLOCK_SIZE),
                nat_outgoing: truthy(
                    env("CALICO_IPV6POOL_NAT_OUTGOING"),
                    calico::DEFAULT_IPV6_POOL_NAT_OUTGOING,
                ),
                disabled: false,
            });
        }
    }
    if !ipv6_support {
        assign.retain(|f| *f == Family::IPv4);
    }
    CalicoSide {
        pools,
        assign,
        strict_affinity: c.strict_affinity,
        max_blocks_per_host: c.max_blocks_per_host.unwrap_or(0),
    }
}

/// Other choices for one configuration; `None` keeps the scenario's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Choices {
    pub ipv4_cluster_prefix: Option<u8>,
    pub ipv4_node_mask: Option<u8>,
    pub ipv6_cluster_prefix: Option<u8>,
    pub ipv6_node_mask: Option<u8>,
    pub ipv4_service_prefix: Option<u8>,
    pub ipv6_service_prefix: Option<u8>,
    pub max_pods: Option<u32>,
}

impl Choices {
    pub fn cluster_prefix(&self, f: Family) -> Option<u8> {
        match f {
            Family::IPv4 => self.ipv4_cluster_prefix,
            Family::IPv6 => self.ipv6_cluster_prefix,
        }
    }
    pub fn node_mask(&self, f: Family) -> Option<u8> {
        match f {
            Family::IPv4 => self.ipv4_node_mask,
            Family::IPv6 => self.ipv6_node_mask,
        }
    }
    pub fn service_prefix(&self, f: Family) -> Option<u8> {
        match f {
            Family::IPv4 => self.ipv4_service_prefix,
            Family::IPv6 => self.ipv6_service_prefix,
        }
    }
}

/// Where a swept family's base addresses come from: the first entry of that family in
/// kube-controller-manager's `--cluster-cidr`, and in kube-apiserver's
/// `--service-cluster-ip-range` (or its default). `None` when the cluster has no such range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bases {
    pub cluster: BTreeMap<Family, IpNet>,
    pub service: BTreeMap<Family, IpNet>,
}

impl Bases {
    pub fn of(cluster: &ClusterConfig, derived: &PlanConfig) -> Bases {
        let mut out = Bases::default();
        if let Some(cidrs) = cluster
            .flags(Component::KubeControllerManager)
            .and_then(|f| f.cidrs("cluster-cidr"))
        {
            for c in cidrs {
                out.cluster.entry(Family::of_net(c)).or_insert(c.trunc());
            }
        }
        // The flag as written (a range the API server refuses can still be swept to one it
        // accepts), else the API server's own default.
        let written = cluster
            .flags(Component::KubeApiserver)
            .and_then(|f| f.cidrs("service-cluster-ip-range"))
            .filter(|c| !c.is_empty());
        let ranges: Vec<IpNet> = match (written, &derived.services) {
            (Some(c), _) => c.iter().map(IpNet::trunc).collect(),
            (None, Some(s)) => s.cidrs.clone(),
            (None, None) => Vec::new(),
        };
        for c in ranges {
            out.service.entry(Family::of_net(&c)).or_insert(c);
        }
        out
    }
}

/// The `cluster:` section with `choices` written into the flags that carry them, as a user
/// would edit the manifests: the cluster CIDR in kube-controller-manager's and kube-proxy's
/// `--cluster-cidr`, the node masks in `--node-cidr-mask-size-ipv4/-ipv6` (or in
/// `--node-cidr-mask-size` if the scenario used it on a single-stack cluster), the Service range
/// in kube-apiserver's and kube-controller-manager's `--service-cluster-ip-range`, and
/// `--max-pods` in the kubelet's flags. A new prefix keeps the base range's address, masked.
pub fn edit_cluster(cluster: &ClusterConfig, bases: &Bases, choices: &Choices) -> ClusterConfig {
    let mut out = cluster.clone();
    for f in [Family::IPv4, Family::IPv6] {
        if let (Some(p), Some(base)) = (choices.cluster_prefix(f), bases.cluster.get(&f)) {
            let net = reprefix(base, p);
            for c in [Component::KubeControllerManager, Component::KubeProxy] {
                if let Some(flags) = out.components.get_mut(&c) {
                    replace_cidr(flags, "cluster-cidr", net, false);
                }
            }
        }
        if let (Some(p), Some(base)) = (choices.service_prefix(f), bases.service.get(&f)) {
            let net = reprefix(base, p);
            let api = out.components.entry(Component::KubeApiserver).or_default();
            replace_cidr(api, "service-cluster-ip-range", net, true);
            if let Some(kcm) = out.components.get_mut(&Component::KubeControllerManager) {
                replace_cidr(kcm, "service-cluster-ip-range", net, false);
            }
        }
        if let Some(mask) = choices.node_mask(f) {
            let kcm = out
                .components
                .entry(Component::KubeControllerManager)
                .or_default();
            let single_stack = kcm.cidrs("cluster-cidr").is_some_and(|c| c.len() == 1);
            let name = if single_stack && kcm.get("node-cidr-mask-size").is_some() {
                "node-cidr-mask-size"
            } else {
                match f {
                    Family::IPv4 => "node-cidr-mask-size-ipv4",
                    Family::IPv6 => "node-cidr-mask-size-ipv6",
                }
            };
            set_flag(kcm, name, FlagValue::Int(i64::from(mask)), mask.to_string());
        }
    }
    if let Some(m) = choices.max_pods {
        let kubelet = out.components.entry(Component::Kubelet).or_default();
        set_flag(
            kubelet,
            "max-pods",
            FlagValue::Int(i64::from(m)),
            m.to_string(),
        );
    }
    out
}

/// `base`'s address under a new prefix length, masked to its network.
pub fn reprefix(base: &IpNet, prefix: u8) -> IpNet {
    IpNet::new(base.network(), prefix)
        .expect("prefix lengths are checked against the family when the sweep is read")
        .trunc()
}

/// Replaces the first entry of `net`'s family in a CIDR-list flag. With `create`, a flag that is
/// not set is set to `net` alone; otherwise it is left unset.
fn replace_cidr(flags: &mut ComponentFlags, name: &str, net: IpNet, create: bool) {
    let family = Family::of_net(&net);
    let mut list: Vec<IpNet> = match flags.cidrs(name) {
        Some(l) => l.to_vec(),
        None if create => Vec::new(),
        None => return,
    };
    match list.iter().position(|c| Family::of_net(c) == family) {
        Some(i) => list[i] = net,
        None if list.is_empty() => list.push(net),
        // The flag has no range of this family: there is nothing to resize.
        None => return,
    }
    let raw = list
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    set_flag(flags, name, FlagValue::Cidrs(list), raw);
}

fn set_flag(flags: &mut ComponentFlags, name: &str, value: FlagValue, raw: String) {
    // A rewritten flag keeps pointing at where the user wrote it; a new one points at the
    // component's map, or nowhere.
    let span = flags
        .get(name)
        .map(|f| f.span)
        .or(flags.span)
        .unwrap_or_default();
    flags
        .flags
        .insert(name.to_string(), Flag { value, raw, span });
}

/// The underlay: subnets node addresses come from, each with where it was found.
pub fn node_networks(
    scenario: &Scenario,
    explicit: &[IpNet],
    families: &[Family],
) -> Vec<(IpNet, String)> {
    if !explicit.is_empty() {
        return explicit
            .iter()
            .map(|n| (*n, "plan.nodeNetworks".to_string()))
            .collect();
    }
    let mut out = Vec::new();
    let mut defaulted = false;
    for node in &scenario.nodes {
        let ips: Vec<IpAddr> = node
            .node_ip
            .as_ref()
            .map(|s| {
                s.value
                    .split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() {
            defaulted = true;
        }
        for ip in ips {
            out.push((IpNet::from(ip), format!("node {}", node.name.value)));
        }
    }
    if defaulted {
        for f in families {
            let net = match f {
                Family::IPv4 => DEFAULT_NODE_NET_V4,
                Family::IPv6 => DEFAULT_NODE_NET_V6,
            };
            out.push((
                net.parse().expect("constant CIDR"),
                "default node addresses".to_string(),
            ));
        }
    }
    out
}
