//! What each node's CNI plugin does with pods: which IPAM gives addresses, in what order the
//! kubelet reports them, and when a node's network is ready.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::calico::{self, CalicoIpam, IpPool};
use knetsim_ipam::host_local::{self, HostLocal};
use knetsim_ipam::{Family, rng};
use knetsim_model::scenario::{CalicoConfig, CniConfig};
use rand::RngExt;

use super::Sim;
use crate::state::{
    BlockAffinity, CalicoPool, CalicoState, ClusterState, Condition, Event, InvolvedObject, Node,
};

pub(crate) enum PodNetwork {
    /// Not set up yet.
    None,
    /// host-local over each node's podCIDRs (bridge/ptp/kindnet), or kubenet.
    HostLocal {
        kubenet: bool,
        nodes: BTreeMap<String, Vec<HostLocal>>,
    },
    Calico {
        ipam: Box<CalicoIpam>,
        assign: Vec<Family>,
        pools: Vec<IpPool>,
        error: Option<String>,
    },
}

fn truthy(v: Option<&str>, default: bool) -> bool {
    match v {
        Some(s) => s.eq_ignore_ascii_case("true"),
        None => default,
    }
}

impl PodNetwork {
    pub fn new(cni: &CniConfig, seed: u64, state: &mut ClusterState) -> PodNetwork {
        match cni {
            CniConfig::HostLocal => PodNetwork::HostLocal {
                kubenet: false,
                nodes: BTreeMap::new(),
            },
            CniConfig::Kubenet => PodNetwork::HostLocal {
                kubenet: true,
                nodes: BTreeMap::new(),
            },
            CniConfig::Calico(c) => Self::calico(c, seed, state),
        }
    }

    /// Calico as calico-node's startup and the CNI plugin configure it
    /// (`node/pkg/lifecycle/startup/startup.go`, `cni-plugin/pkg/ipamplugin`).
    fn calico(c: &CalicoConfig, seed: u64, _state: &mut ClusterState) -> PodNetwork {
        let env = |k: &str| c.env.get(k).map(|v| v.value.as_str());
        // "Default to assigning an IPv4 address"; "Default to NOT assigning an IPv6 address".
        let mut assign = Vec::new();
        if truthy(c.assign_ipv4.as_ref().map(|s| s.value.as_str()), true) {
            assign.push(Family::IPv4);
        }
        if truthy(c.assign_ipv6.as_ref().map(|s| s.value.as_str()), false) {
            assign.push(Family::IPv6);
        }
        let mut pools: Vec<IpPool> =
            c.ip_pools
                .iter()
                .map(|p| IpPool {
                    name: p.name.clone(),
                    cidr: p.cidr.value,
                    block_size: p.block_size.as_ref().map(|b| b.value).unwrap_or(
                        match p.cidr.value {
                            IpNet::V4(_) => calico::DEFAULT_IPV4_POOL_BLOCK_SIZE,
                            IpNet::V6(_) => calico::DEFAULT_IPV6_POOL_BLOCK_SIZE,
                        },
                    ),
                    nat_outgoing: p.nat_outgoing,
                    disabled: p.disabled,
                })
                .collect();
        // Default pools are created for a family only if no pool of that family exists, and
        // not at all with NO_DEFAULT_POOLS=true.
        if !truthy(env("NO_DEFAULT_POOLS"), false) {
            let has =
                |pools: &[IpPool], f: Family| pools.iter().any(|p| Family::of_net(&p.cidr) == f);
            if !has(&pools, Family::IPv4) {
                let cidr = env("CALICO_IPV4POOL_CIDR")
                    .and_then(|s| s.parse::<IpNet>().ok())
                    .unwrap_or_else(|| {
                        calico::DEFAULT_IPV4_POOL_CIDR
                            .parse()
                            .expect("constant CIDR")
                    });
                pools.push(IpPool {
                    name: "default-ipv4-ippool".into(),
                    cidr: cidr.trunc(),
                    block_size: env("CALICO_IPV4POOL_BLOCK_SIZE")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(calico::DEFAULT_IPV4_POOL_BLOCK_SIZE),
                    nat_outgoing: truthy(env("CALICO_IPV4POOL_NAT_OUTGOING"), true),
                    disabled: false,
                });
            }
            // The IPv6 pool exists only where Felix runs with IPv6 support (default true).
            if !has(&pools, Family::IPv6) && truthy(env("FELIX_IPV6SUPPORT"), true) {
                let cidr = env("CALICO_IPV6POOL_CIDR")
                    .and_then(|s| s.parse::<IpNet>().ok())
                    .unwrap_or_else(|| {
                        // calico-node picks a random ULA /48 when none is configured.
                        let mut r = rng::named(seed, "calico-node/ipv6-pool");
                        let g: u64 = r.random::<u64>() & 0xff_ffff_ffff;
                        let hi: u128 = (0xfdu128 << 120) | ((g as u128) << 80);
                        IpNet::new(IpAddr::V6(hi.into()), 48).expect("valid prefix")
                    });
                pools.push(IpPool {
                    name: "default-ipv6-ippool".into(),
                    cidr: cidr.trunc(),
                    block_size: env("CALICO_IPV6POOL_BLOCK_SIZE")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(calico::DEFAULT_IPV6_POOL_BLOCK_SIZE),
                    nat_outgoing: truthy(env("CALICO_IPV6POOL_NAT_OUTGOING"), false),
                    disabled: false,
                });
            }
        }
        // Without Felix's IPv6 support the CNI plugin cannot wire an IPv6 address.
        if !truthy(env("FELIX_IPV6SUPPORT"), true) {
            assign.retain(|f| *f == Family::IPv4);
        }
        // IPAMConfig maxBlocksPerHost: unset or 0 both mean Calico's default of 20.
        match CalicoIpam::new(
            pools.clone(),
            c.strict_affinity,
            c.max_blocks_per_host.unwrap_or(0),
        ) {
            Ok(ipam) => PodNetwork::Calico {
                ipam: Box::new(ipam.with_seed(seed)),
                assign,
                pools,
                error: None,
            },
            Err(e) => PodNetwork::Calico {
                ipam: Box::new(CalicoIpam::new(vec![], c.strict_affinity, 0).expect("empty IPAM")),
                assign,
                pools,
                error: Some(e),
            },
        }
    }

    pub fn add_node(&mut self, name: &str, pod_cidrs: &[IpNet]) {
        if let PodNetwork::HostLocal { nodes, .. } = self
            && !pod_cidrs.is_empty()
        {
            nodes.insert(
                name.to_owned(),
                pod_cidrs.iter().map(|c| HostLocal::new(*c)).collect(),
            );
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        match self {
            PodNetwork::HostLocal { nodes, .. } => {
                nodes.remove(name);
            }
            PodNetwork::Calico { ipam, .. } => ipam.release_host(name),
            PodNetwork::None => {}
        }
    }

    pub fn node_ready(&self, name: &str, node: &Node) -> bool {
        match self {
            PodNetwork::HostLocal { .. } => !node.spec.pod_cidrs.is_empty() && !name.is_empty(),
            PodNetwork::Calico { error, .. } => error.is_none(),
            PodNetwork::None => false,
        }
    }

    pub fn release(&mut self, node: Option<&str>, ips: &[IpAddr]) {
        match self {
            PodNetwork::HostLocal { nodes, .. } => {
                if let Some(ranges) = node.and_then(|n| nodes.get_mut(n)) {
                    for ip in ips {
                        for r in ranges.iter_mut() {
                            r.release(*ip);
                        }
                    }
                }
            }
            PodNetwork::Calico { ipam, .. } => {
                for ip in ips {
                    let _ = ipam.release(*ip);
                }
            }
            PodNetwork::None => {}
        }
    }

    /// Addresses one node can give pods in `family`.
    pub fn per_node_capacity(&self, family: Family, state: &ClusterState) -> Option<u128> {
        match self {
            PodNetwork::HostLocal { .. } => {
                let idx = state
                    .network
                    .cluster_cidrs
                    .iter()
                    .position(|c| Family::of_net(c) == family)?;
                let mask = *state.network.node_cidr_mask_sizes.get(idx)?;
                let block = IpNet::new(state.network.cluster_cidrs[idx].network(), mask).ok()?;
                Some(host_local::host_local_capacity(&block))
            }
            PodNetwork::Calico { pools, assign, .. } => {
                if !assign.contains(&family) {
                    return None;
                }
                let p = pools
                    .iter()
                    .find(|p| Family::of_net(&p.cidr) == family && !p.disabled)?;
                Some(1u128 << (family.bits() - p.block_size))
            }
            PodNetwork::None => None,
        }
    }

    pub fn calico_state(&self) -> Option<CalicoState> {
        let PodNetwork::Calico { ipam, pools, .. } = self else {
            return None;
        };
        let affinities: Vec<BlockAffinity> = ipam
            .block_affinities()
            .into_iter()
            .map(|(cidr, node)| BlockAffinity {
                cidr,
                node: node.to_owned(),
            })
            .collect();
        Some(CalicoState {
            ip_pools: pools
                .iter()
                .map(|p| CalicoPool {
                    name: p.name.clone(),
                    cidr: p.cidr,
                    block_size: p.block_size,
                    nat_outgoing: p.nat_outgoing,
                    disabled: p.disabled,
                })
                .collect(),
            block_affinities: affinities,
        })
    }
}

/// The order the kubelet reports pod IPs in (`kubelet_pods.go sortPodIPs`): the node's primary
/// family first (the family of its first node IP; IPv4 if it has none). kubenet instead
/// always reports IPv4 first.
fn order_ips(mut ips: Vec<IpAddr>, node: &Node, kubenet: bool) -> Vec<IpAddr> {
    let primary = if kubenet {
        Family::IPv4
    } else {
        node.internal_ips()
            .next()
            .map(|ip| Family::of_ip(&ip))
            .unwrap_or(Family::IPv4)
    };
    ips.sort_by_key(|ip| Family::of_ip(ip) != primary);
    ips.truncate(2);
    ips
}

/// The kubelets start the pods bound to their nodes: hostNetwork pods take the node's
/// addresses, the others get one address per family from the CNI plugin's IPAM.
///
/// Each node's kubelet handles its pods oldest first. With host-local IPAM every node
/// allocates from its own ranges, so nodes are wired in parallel; Calico's IPAM is shared
/// (blocks are borrowed across nodes) and is wired in global creation order. Events are
/// reported in the pods' creation order either way.
pub(crate) fn wire_pods(sim: &mut Sim<'_>) {
    use rayon::prelude::*;
    let step = sim.step;
    let pod_host_ips = sim.version.at_least(29);
    let waiting = |p: &crate::state::Pod| {
        p.sim.admitted && p.status.pod_ips.is_empty() && p.status.phase == "Pending"
    };
    let node_objs = &sim.state.nodes;
    let mut events: Vec<(u64, Event)> = match &mut sim.network {
        PodNetwork::HostLocal { kubenet, nodes } => {
            let kubenet = *kubenet;
            // Pods per node, oldest first, next to that node's ranges (nodes in name order,
            // as the ranges are). What the grouping needs is read in one pass in the pods'
            // memory order and kept next to each reference, so the sort touches no pod.
            let index_of: crate::fxhash::FxHashMap<&str, u32> = node_objs
                .keys()
                .zip(0..)
                .map(|(name, i)| (name.as_str(), i))
                .collect();
            let mut todo: Vec<(u32, u64, &mut crate::state::Pod)> = sim
                .state
                .pods
                .values_mut()
                .map(|p| &mut **p)
                .filter(|p| waiting(p))
                .filter_map(|p| {
                    let name = p
                        .spec
                        .node_name
                        .as_deref()
                        .expect("admitted pods are bound");
                    // A pod bound to a node that does not exist stays Pending: no kubelet
                    // runs it.
                    let node = *index_of.get(name)?;
                    Some((node, p.sim.creation_index, p))
                })
                .collect();
            if todo.is_empty() {
                return;
            }
            todo.sort_unstable_by_key(|(node, seq, _)| (*node, *seq));
            let node_list: Vec<(&String, &Node)> = node_objs.iter().collect();
            let mut work: Vec<NodeWork<'_>> = Vec::new();
            let mut ranges = nodes.iter_mut().peekable();
            let mut current = u32::MAX;
            for (node, _, pod) in todo {
                if node != current {
                    current = node;
                    let (name, obj) = node_list[node as usize];
                    while ranges.next_if(|(n, _)| n.as_str() < name).is_some() {}
                    let r = ranges.next_if(|(n, _)| n.as_str() == name).map(|(_, r)| r);
                    work.push((obj, r, Vec::new()));
                }
                work.last_mut().expect("a group was opened").2.push(pod);
            }
            work.into_par_iter()
                .flat_map_iter(|(node, mut ranges, pods)| {
                    let mut events = Vec::new();
                    let host_ips: Vec<IpAddr> = node.internal_ips().take(2).collect();
                    for pod in pods {
                        let result = if pod.spec.host_network {
                            None
                        } else if !node.is_ready() {
                            continue;
                        } else {
                            Some(match ranges.as_deref_mut() {
                                Some(r) => allocate_host_local(r, kubenet, node),
                                None => Err("cni plugin not initialized".to_owned()),
                            })
                        };
                        if let Some(e) = start_pod(pod, &host_ips, result, step, pod_host_ips) {
                            events.push(e);
                        }
                    }
                    events
                })
                .collect()
        }
        network => {
            // Sorted by a copy of the creation index kept next to the reference: comparing
            // through the references would fetch two pods from memory per comparison.
            let mut todo: Vec<(u64, &mut crate::state::Pod)> = sim
                .state
                .pods
                .values_mut()
                .map(|p| &mut **p)
                .filter(|p| waiting(p))
                .map(|p| (p.sim.creation_index, p))
                .collect();
            todo.sort_unstable_by_key(|(seq, _)| *seq);
            let mut events = Vec::new();
            for (_, pod) in todo {
                let node_name = pod
                    .spec
                    .node_name
                    .as_deref()
                    .expect("admitted pods are bound");
                let Some(node) = node_objs.get(node_name) else {
                    continue;
                };
                let result = if pod.spec.host_network {
                    None
                } else if !node.is_ready() {
                    continue;
                } else {
                    Some(allocate(network, node_name, node))
                };
                let host_ips: Vec<IpAddr> = node.internal_ips().take(2).collect();
                if let Some(e) = start_pod(pod, &host_ips, result, step, pod_host_ips) {
                    events.push(e);
                }
            }
            events
        }
    };
    events.sort_by_key(|(seq, _)| *seq);
    sim.state.events.extend(events.into_iter().map(|(_, e)| e));
}

/// One node's share of [`wire_pods`]: the node, its host-local ranges (none when the plugin
/// has not set the node up) and its pods to start, oldest first.
type NodeWork<'a> = (
    &'a Node,
    Option<&'a mut Vec<HostLocal>>,
    Vec<&'a mut crate::state::Pod>,
);

/// One pod's start on its node: `allocated` is the IPAM's answer (`None` for hostNetwork
/// pods, which take the node's addresses). Returns the failure event, with the pod's
/// creation index, when the sandbox could not be created.
fn start_pod(
    pod: &mut crate::state::Pod,
    host_ips: &[IpAddr],
    allocated: Option<Result<Vec<IpAddr>, String>>,
    step: usize,
    pod_host_ips: bool,
) -> Option<(u64, Event)> {
    let ips = match allocated {
        Some(r) => r,
        None => Ok(host_ips.to_vec()),
    };
    match ips {
        Ok(ips) => {
            pod.status.phase = "Running";
            pod.status.conditions.clear();
            pod.status.host_ip = host_ips.first().copied();
            if pod_host_ips {
                pod.status.host_ips = host_ips.iter().copied().collect();
            }
            pod.status.pod_ip = ips.first().copied();
            pod.status.pod_ips = ips.into_iter().collect();
            None
        }
        Err(msg) => {
            // The kubelet retries the sandbox and reports each failure; repeats of the same
            // event are folded into one, so report a message once per pod.
            let already = pod
                .status
                .conditions
                .iter()
                .any(|c| c.message.as_deref() == Some(msg.as_str()));
            let event = (!already).then(|| {
                (
                    pod.sim.creation_index,
                    Event {
                        step,
                        type_: "Warning",
                        reason: "FailedCreatePodSandBox".into(),
                        involved_object: InvolvedObject {
                            kind: "Pod".into(),
                            namespace: pod.metadata.namespace.clone(),
                            name: pod.metadata.name.clone(),
                        },
                        source: "kubelet".into(),
                        message: msg.clone(),
                    },
                )
            });
            pod.status.conditions = vec![Condition {
                type_: "ContainersReady".into(),
                status: "False".into(),
                reason: Some("ContainerCreating".into()),
                message: Some(msg),
            }];
            event
        }
    }
}

fn allocate(net: &mut PodNetwork, node_name: &str, node: &Node) -> Result<Vec<IpAddr>, String> {
    match net {
        PodNetwork::HostLocal { kubenet, nodes } => {
            let ranges = nodes
                .get_mut(node_name)
                .ok_or_else(|| "cni plugin not initialized".to_owned())?;
            allocate_host_local(ranges, *kubenet, node)
        }
        PodNetwork::Calico {
            ipam,
            assign,
            error,
            ..
        } => {
            if let Some(e) = error {
                return Err(e.clone());
            }
            let got = ipam
                .assign_pod(
                    node_name,
                    assign.contains(&Family::IPv4),
                    assign.contains(&Family::IPv6),
                )
                .map_err(|e| {
                    format!(
                        "Failed to create pod sandbox: plugin type=\"calico\" failed (add): {e}"
                    )
                })?;
            Ok(order_ips(got, node, false))
        }
        PodNetwork::None => Err("cni plugin not initialized".into()),
    }
}

/// The host-local plugin (or kubenet's use of it): one address from each of the node's
/// ranges, all or nothing.
fn allocate_host_local(
    ranges: &mut [HostLocal],
    kubenet: bool,
    node: &Node,
) -> Result<Vec<IpAddr>, String> {
    let plugin = if kubenet { "kubenet" } else { "host-local" };
    let mut got = Vec::new();
    for (i, r) in ranges.iter_mut().enumerate() {
        match r.allocate() {
            Some(ip) => got.push(ip),
            None => {
                let msg = format!(
                    "Failed to create pod sandbox: plugin type=\"{plugin}\" failed (add): failed to allocate for range {i}: no IP addresses available in range set: {}",
                    r.range_set()
                );
                for ip in got {
                    for r in ranges.iter_mut() {
                        r.release(ip);
                    }
                }
                return Err(msg);
            }
        }
    }
    Ok(order_ips(got, node, kubenet))
}
