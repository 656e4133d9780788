//! kube-proxy, per node and per IP family.
//!
//! As on a dual-stack node, there is one proxier per family (the metaproxier split): each sees
//! only Services with a cluster IP of its family, only EndpointSlices of its address type, and
//! only external IPs, load-balancer IPs and source ranges of its family.
//!
//! - [`model`]: Services and endpoints as the change trackers hand them to the proxier.
//! - [`iptables`]: iptables mode (rules, `iptables-restore` text, the unit-test tracer).
//! - [`nftables`]: nftables mode (the `kube-proxy` table, `nft` text, the unit-test tracer).
//! - [`text`]: writing addresses and numbers into rule text without `core::fmt`.
//!
//! `ipvs` mode is not modelled: [`build_rules`] reports it instead of guessing.
// kube-proxy: cmd/kube-proxy/app/server.go, server_linux.go; pkg/proxy/metaproxier

pub mod iptables;
pub mod model;
pub mod nftables;
pub mod text;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use knetsim_control::state::{ClusterState, ProxyConfig};
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;

pub use model::{FamilyModel, Proto};

/// How kube-proxy tells pod traffic from other traffic (`--detect-local-mode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalDetector {
    /// No detector: no "not from a pod" masquerade rule, no short-circuit for pods.
    NoOp,
    /// `ClusterCIDR` or `NodeCIDR`: `-s CIDR`.
    Cidr(IpNet),
    /// `BridgeInterface` (`-i cbr0`) or `InterfaceNamePrefix` (`-i veth+`).
    Interface(Arc<str>),
}

/// `--nodeport-addresses` after `NewNodePortAddresses` for one family.
#[derive(Clone, Debug)]
pub struct NodePortAddresses {
    /// No CIDR of this family: NodePorts on every local address.
    pub match_all: bool,
    pub cidrs: Vec<IpNet>,
}

/// Everything a proxier needs to know about the node it runs on.
#[derive(Clone, Debug)]
pub struct NodeCtx {
    pub node: String,
    pub family: Family,
    pub version: KubeVersion,
    /// The node's addresses of this family (InternalIPs, primary first).
    pub node_ips: Vec<IpAddr>,
    /// kube-proxy's `nodeIP` for this family.
    pub node_ip: Option<IpAddr>,
    pub local_detector: LocalDetector,
    pub masquerade_all: bool,
    /// `1 << masqueradeBit` in hex (`0x4000`). kube-proxy formats it `%#08x` (`0x00004000`);
    /// knetsim writes the value as `iptables-save` and `nft list` print it back.
    pub masq_mark: Arc<str>,
    pub nodeport: NodePortAddresses,
    /// Effective `--iptables-localhost-nodeports` (IPv4 only, and only when the NodePort
    /// addresses include 127.0.0.1).
    pub localhost_nodeports: bool,
    /// `nf_conntrack_tcp_be_liberal`: knetsim's nodes leave it at the kernel default (0).
    pub conntrack_tcp_liberal: bool,
    /// The service CIDRs of this family (for nftables' "unallocated ClusterIP" rule).
    pub service_cidrs: Vec<IpNet>,
}

impl NodeCtx {
    /// The node's addresses, plus loopback, that fall in `--nodeport-addresses`
    /// (`GetNodeIPs`).
    pub fn nodeport_ips(&self) -> Vec<IpAddr> {
        let loopback: IpAddr = match self.family {
            Family::IPv4 => "127.0.0.1".parse().expect("static"),
            Family::IPv6 => "::1".parse().expect("static"),
        };
        let mut out = Vec::new();
        for ip in std::iter::once(loopback).chain(self.node_ips.iter().copied()) {
            if self.nodeport.cidrs.iter().any(|c| c.contains(&ip)) && !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }

    /// Builds the context of `node` for `family` from the cluster state and kube-proxy's
    /// effective configuration.
    pub fn new(state: &ClusterState, cfg: &ProxyConfig, node: &str, family: Family) -> NodeCtx {
        let n = state.nodes.get(node);
        let node_ips: Vec<IpAddr> = n
            .map(|n| {
                n.internal_ips()
                    .filter(|ip| Family::of_ip(ip) == family)
                    .collect()
            })
            .unwrap_or_default();
        let node_ip = node_ips.first().copied();
        let local_detector = match cfg.detect_local_mode.as_str() {
            "NodeCIDR" => n
                .and_then(|n| n.pod_cidr(family))
                .map(LocalDetector::Cidr)
                .unwrap_or(LocalDetector::NoOp),
            "BridgeInterface" => cfg
                .pod_bridge_interface
                .as_deref()
                .map(|i| LocalDetector::Interface(Arc::from(i)))
                .unwrap_or(LocalDetector::NoOp),
            "InterfaceNamePrefix" => cfg
                .pod_interface_name_prefix
                .as_deref()
                .map(|p| LocalDetector::Interface(Arc::from(format!("{p}+"))))
                .unwrap_or(LocalDetector::NoOp),
            // ClusterCIDR (the default): the first --cluster-cidr of this family.
            _ => cfg
                .cluster_cidrs
                .iter()
                .find(|c| Family::of_net(c) == family)
                .map(|c| LocalDetector::Cidr(c.trunc()))
                .unwrap_or(LocalDetector::NoOp),
        };
        // nftables mode treats an unset --nodeport-addresses as "primary".
        // kube-proxy: cmd/kube-proxy/app/server.go
        let mut addrs: Vec<String> = cfg.nodeport_addresses.clone();
        if addrs.is_empty() && cfg.mode == "nftables" {
            addrs.push("primary".to_string());
        }
        let mut cidrs = Vec::new();
        for a in &addrs {
            if a == "primary" {
                if let Some(ip) = node_ip {
                    cidrs.push(IpNet::from(ip));
                }
            } else if let Ok(c) = a.parse::<IpNet>()
                && Family::of_net(&c) == family
            {
                cidrs.push(c);
            }
        }
        let match_all = cidrs.is_empty();
        if match_all {
            cidrs.push(match family {
                Family::IPv4 => "0.0.0.0/0".parse().expect("static"),
                Family::IPv6 => "::/0".parse().expect("static"),
            });
        }
        let contains_v4_loopback = family == Family::IPv4
            && cidrs
                .iter()
                .any(|c| c.contains(&"127.0.0.1".parse::<IpAddr>().expect("static")));
        let localhost_nodeports =
            family == Family::IPv4 && cfg.localhost_nodeports && contains_v4_loopback;
        NodeCtx {
            node: node.to_string(),
            family,
            version: state.kubernetes_version,
            node_ips,
            node_ip,
            local_detector,
            masquerade_all: cfg.masquerade_all,
            masq_mark: Arc::from(format!("{:#x}", 1u64 << cfg.masquerade_bit.min(31))),
            nodeport: NodePortAddresses { match_all, cidrs },
            localhost_nodeports,
            conntrack_tcp_liberal: false,
            service_cidrs: state
                .network
                .service_cidrs
                .iter()
                .copied()
                .filter(|c| Family::of_net(c) == family)
                .collect(),
        }
    }
}

/// The packet the tracers follow.
#[derive(Clone, Debug)]
pub struct PacketCtx {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub dport: u16,
    /// The node's own addresses of this family (for `LOCAL` address-type matches).
    pub node_ips: Vec<IpAddr>,
    /// Whether the source is one of the node's addresses or loopback (`--src-type LOCAL`).
    pub src_is_local: bool,
    /// Whether the packet came in on one of the node's pod interfaces.
    pub from_local_pod: bool,
}

impl PacketCtx {
    /// `--dst-type LOCAL`: loopback or one of the node's addresses.
    pub fn is_local_addr(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(&ip)
    }
}

/// `ip:port` or `[ip]:port` back into its parts.
pub fn split_host_port(s: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.parse().ok()?, port.parse().ok()?))
}

/// The rules kube-proxy programs on one node for one family.
#[derive(Clone, Debug)]
pub enum ProxyRules {
    Iptables(iptables::IptablesRules),
    Nftables(nftables::NftablesRules),
}

impl ProxyRules {
    pub fn family(&self) -> Family {
        match self {
            ProxyRules::Iptables(r) => r.family,
            ProxyRules::Nftables(r) => r.family,
        }
    }
    pub fn mode(&self) -> &'static str {
        match self {
            ProxyRules::Iptables(_) => "iptables",
            ProxyRules::Nftables(_) => "nftables",
        }
    }
    pub fn counts(&self) -> RuleCounts {
        match self {
            ProxyRules::Iptables(r) => RuleCounts {
                filter_rules: r.filter.rule_count(),
                nat_rules: r.nat.rule_count(),
                nft_rules: 0,
                nft_elements: 0,
                chains: r.filter.chains.len() + r.nat.chains.len(),
            },
            ProxyRules::Nftables(r) => RuleCounts {
                filter_rules: 0,
                nat_rules: 0,
                nft_rules: r.rule_count(),
                nft_elements: r.element_count(),
                chains: r.chains.len(),
            },
        }
    }
    /// Runs the unit-test tracer of the mode.
    pub fn trace(&self, p: &PacketCtx) -> iptables::TraceResult {
        match self {
            ProxyRules::Iptables(r) => iptables::trace(r, p),
            ProxyRules::Nftables(r) => nftables::trace(r, p),
        }
    }
}

/// How big a rule set is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCounts {
    /// iptables mode: `-A` lines in the filter table (including kube-proxy's hook jumps).
    pub filter_rules: usize,
    /// iptables mode: `-A` lines in the nat table.
    pub nat_rules: usize,
    /// nftables mode: rules in the `kube-proxy` table.
    pub nft_rules: usize,
    /// nftables mode: set and map elements.
    pub nft_elements: usize,
    /// Chains declared.
    pub chains: usize,
}

/// Why no rules could be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesError {
    /// `ipvs` (or anything else) is not modelled.
    ModeNotModelled(String),
}

impl std::fmt::Display for RulesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RulesError::ModeNotModelled(m) => write!(
                f,
                "kube-proxy mode {m:?} is not modelled by knetsim (only iptables and nftables are)"
            ),
        }
    }
}

/// Generates the rules of one node and family from a prepared family model. This is the
/// whole per-node cost: no hashing, no Service lookups, no strings.
pub fn build_rules(
    model: &Arc<FamilyModel>,
    ctx: &NodeCtx,
    mode: &str,
) -> Result<ProxyRules, RulesError> {
    match mode {
        "iptables" | "" => Ok(ProxyRules::Iptables(iptables::build(model, ctx))),
        "nftables" => Ok(ProxyRules::Nftables(nftables::build(model, ctx))),
        other => Err(RulesError::ModeNotModelled(other.to_string())),
    }
}
