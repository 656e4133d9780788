//! The fast path of `knetsim trace`: a packet's verdict (delivered, dropped or rejected; the
//! destinations reached; whether the destination sees another source) without the
//! hop-by-hop record, for reachability matrices and other questions asked millions of times.
//!
//! [`Dataplane::compile`] resolves a [`TraceQuery`] once (names, family, port, and where the
//! packet enters the cluster); [`Dataplane::verdict`] then answers it from lookup tables
//! built once per dataplane ([`FastIndex`]), allocating nothing:
//!
//! - kube-proxy: `(destination, protocol, port)` → the service ports whose cluster IP,
//!   external IP or load-balancer IP it is, in rule order; `(protocol, NodePort)` → service
//!   ports. The rules a node would have are evaluated on the family model directly (the
//!   same categorization of endpoints, the same chain-by-chain semantics as the unit-test
//!   tracers of [`crate::proxy::iptables::trace`] and [`crate::proxy::nftables::trace`]),
//!   so no node's rule set is ever built.
//! - routing: a node's table is never built either; its longest-prefix match is answered
//!   from the address of every pod (`/32`, `/128` routes), the podCIDRs or Calico blocks of
//!   all nodes by prefix length, and the underlay, with the kernel's tie-break.
//! - egress masquerade: the agent's rules of each family, built once.
//!
//! The detailed [`crate::trace::trace`] stays the reference: the tests check that both give
//! the same verdict over tables of queries (both families, both modes, every outcome).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use knetsim_control::state::ClusterState;
use knetsim_ipam::Family;

use crate::Dataplane;
use crate::fabric::Cni;
use crate::fasthash::{FastMap, FastSet};
use crate::masq::globally_routable;
use crate::proxy::iptables::IptRule;
use crate::proxy::model::{Categorized, EndpointInfo, FamilyModel, ServicePortInfo, categorize};
use crate::proxy::{LocalDetector, NodeCtx, Proto};
use crate::trace::{Origin, Outcome, Trace, TraceQuery, Walk, resolve, sysctl_forwarding};

/// A [`TraceQuery`] resolved against one [`Dataplane`] (use it only with that one).
#[derive(Clone, Debug)]
pub struct CompiledQuery {
    pub family: Family,
    pub proto: Proto,
    pub port: u16,
    /// The sender's address.
    pub src: IpAddr,
    /// The destination address (a Service's cluster IP for `svc:` destinations).
    pub dst: IpAddr,
    to_service: bool,
    start: Start,
}

/// Where the packet meets netfilter first.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// On a node (`None` when the node is unknown: nothing there has rules or routes).
    At(Option<u32>, Origin),
    /// Nowhere: an unscheduled pod, or an external host the router cannot route from.
    Nowhere,
}

/// A trace's conclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Destinations the packet could be sent to after kube-proxy's choice (0 when it was
    /// blocked before that).
    pub paths: u32,
    /// Of those, how many it reached.
    pub delivered: u32,
    /// Whether a destination reached sees a source other than the sender's address.
    pub masqueraded: bool,
}

impl Verdict {
    /// The verdict of a detailed trace.
    pub fn of_trace(t: &Trace) -> Verdict {
        Verdict {
            outcome: t.verdict,
            paths: t.paths.len() as u32,
            delivered: t.endpoints.len() as u32,
            masqueraded: t.masqueraded,
        }
    }

    fn blocked(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            paths: 0,
            delivered: 0,
            masqueraded: false,
        }
    }
}

impl Dataplane {
    /// Resolves a query once, for [`Dataplane::verdict`]. The errors are those of
    /// [`crate::trace::trace`].
    pub fn compile(&self, q: &TraceQuery) -> Result<CompiledQuery, String> {
        let state = self.state();
        let r = resolve(self, state, q)?;
        let ix = self.fast_index();
        let w = Walk {
            dp: self,
            state,
            family: r.family,
            proto: r.proto,
            port: r.port,
        };
        let node = |name: &str| ix.node_index.get(name).copied();
        let start = match r.from.place.kind {
            "pod" if !r.from.host_network => match &r.from.place.node {
                Some(n) => Start::At(node(n), Origin::LocalPod),
                None => Start::Nowhere,
            },
            "pod" | "node" => Start::At(
                node(r.from.place.node.as_deref().unwrap_or_default()),
                Origin::Host,
            ),
            _ => match w.external_ingress(&r.to, &mut Vec::new()) {
                Ok(n) => Start::At(node(&n), Origin::Wire),
                Err(_) => Start::Nowhere,
            },
        };
        Ok(CompiledQuery {
            family: r.family,
            proto: r.proto,
            port: r.port,
            src: r.from.place.ip,
            dst: r.to.ip,
            to_service: r.to.kind == "service",
            start,
        })
    }

    /// What [`crate::trace::trace`] concludes for the query, computed from lookup tables
    /// without building the hop-by-hop record (or any node's rules and routes).
    pub fn verdict(&self, q: &CompiledQuery) -> Verdict {
        self.verdict_with(q, |_, _| {})
    }

    /// [`Dataplane::verdict`], also calling `reached` with each destination the packet
    /// reaches, in the order of the detailed trace's `endpoints`.
    pub fn verdict_with(&self, q: &CompiledQuery, mut reached: impl FnMut(IpAddr, u16)) -> Verdict {
        let ix = self.fast_index();
        Eval {
            dp: self,
            ix,
            f: &ix.families[fam_index(q.family)],
            q,
        }
        .run(&mut reached)
    }

    /// The lookup tables of the fast path, built on first use.
    pub(crate) fn fast_index(&self) -> &FastIndex {
        self.fast.get_or_init(|| FastIndex::build(self))
    }
}

fn fam_index(f: Family) -> usize {
    match f {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

// ------------------------------------------------------------------------------------------
// The index

/// What a `(destination, protocol, port)` key is to a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Cluster,
    External,
    LoadBalancer,
}

/// One node, as the fast path needs it.
#[derive(Debug)]
struct FastNode {
    /// The primary InternalIP per family (the only one, unless `more_ips`), kept inline so
    /// that route lookups do not chase a pointer.
    ip: [Option<IpAddr>; 2],
    more_ips: [bool; 2],
    /// InternalIPs per family, primary first.
    ips: [Vec<IpAddr>; 2],
    /// `net.ipv4.conf.all.forwarding` / `net.ipv6.conf.all.forwarding`.
    forwarding: [bool; 2],
    /// The first podCIDR of each family.
    pod_cidr: [Option<IpNet>; 2],
    /// kube-proxy's view of the node per family, when kube-proxy programs rules. Boxed: it
    /// is large and read once per packet, while the fields above are read on every route
    /// lookup of every endpoint, so a node should fit in few cache lines.
    proxy: Box<[Option<ProxyNode>; 2]>,
}

/// The parts of [`NodeCtx`] the rules' matches depend on.
#[derive(Debug)]
struct ProxyNode {
    ctx: NodeCtx,
    /// The local detector's CIDR, with its mask.
    detector: Option<Net>,
    /// `NodeCtx::nodeport_ips()`.
    nodeport_ips: Vec<IpAddr>,
}

/// A longest-prefix-match table: entries by exact prefix, probed from the longest length.
#[derive(Debug, Default)]
struct Lpm<T> {
    /// Distinct prefix lengths, longest first.
    lens: Vec<u8>,
    map: FastMap<(u8, u128), Vec<T>>,
}

fn masked(ip: IpAddr, len: u8) -> u128 {
    let (v, bits) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let len = u32::from(len);
    if len == 0 {
        0
    } else {
        v & (u128::MAX << (bits - len)) & (u128::MAX >> (128 - bits))
    }
}

impl<T> Lpm<T> {
    fn insert(&mut self, net: IpNet, v: T) {
        let len = net.prefix_len();
        if !self.lens.contains(&len) {
            self.lens.push(len);
            self.lens.sort_by(|a, b| b.cmp(a));
        }
        self.map
            .entry((len, masked(net.network(), len)))
            .or_default()
            .push(v);
    }
    /// The entries of every prefix containing `ip`, longest prefix first.
    fn matches(&self, ip: IpAddr) -> impl Iterator<Item = (u8, &[T])> {
        self.lens.iter().filter_map(move |&len| {
            self.map
                .get(&(len, masked(ip, len)))
                .map(|v| (len, v.as_slice()))
        })
    }
}

/// A route of a node's main table the fast path may pick: where it sends packets, and the
/// kernel's order among routes of equal prefix length (its `ip route` type, then insertion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Local,
    /// A pod's `/32` or `/128` route, or a kubenet bridge: delivered if the pod is here.
    Pod,
    Node(u32),
    Gateway,
    Connected,
    Blackhole,
}

/// Sequence numbers of the main table's routes in the order [`crate::fabric::Fabric::routes`]
/// inserts them: underlay, default, `fe80::/64`, then per-pod routes, then routes to other
/// nodes (or Calico blocks).
const SEQ_UNDERLAY: u64 = 0;
const SEQ_DEFAULT: u64 = 1;
const SEQ_LINK_LOCAL: u64 = 2;
const SEQ_BRIDGE: u64 = 3;
const SEQ_PODS: u64 = 4;
const SEQ_NODES: u64 = 1 << 40;

/// What the routing tables of any node hold about one destination address, looked up once
/// (and, for every endpoint of the family model, once per dataplane): the answer to a
/// node's longest-prefix match needs nothing else unless `complex`.
#[derive(Clone, Copy, Debug, Default)]
struct DstInfo {
    /// The fabric's pod with this address: `Some(node)` (`u32::MAX`: unscheduled or on an
    /// unknown node).
    pod: Option<u32>,
    /// The node with this address.
    node: Option<u32>,
    /// The one pod route to this address: (sequence, node).
    pod_route: Option<(u64, u32)>,
    /// The one route to another node's podCIDR or Calico block containing the address:
    /// (prefix length, sequence, owner).
    node_route: Option<(u8, u64, u32)>,
    /// More than one pod route, or node routes of several prefixes or owners: look them up.
    complex: bool,
}

/// An egress agent's POSTROUTING rules of one family ([`crate::masq::EgressMasq::iptables`]),
/// compiled for [`crate::masq::EgressMasq::walk`]'s walk: chains numbered, CIDRs with their
/// masks, ipsets resolved.
#[derive(Debug, Default)]
struct MasqRules {
    rules: Vec<MasqRule>,
}

#[derive(Debug)]
struct MasqRule {
    chain: u16,
    args: Vec<MasqArg>,
    target: MasqTarget,
}

#[derive(Debug)]
enum MasqArg {
    Dst(Net, bool),
    Src(Net, bool),
    /// `! --dst-type LOCAL` matches (the destination of a leaving packet is not local).
    DstTypeLocal(bool),
    /// `-m set --match-set`: the set's CIDRs, whether it tests the source, negated.
    Set(Vec<Net>, bool, bool),
}

#[derive(Debug)]
enum MasqTarget {
    Jump(u16),
    Return,
    Masquerade,
    Other,
}

impl MasqRules {
    fn compile(masq: &crate::masq::EgressMasq, rules: &[IptRule]) -> MasqRules {
        use crate::proxy::iptables::{Addr, Arg, Target};
        let mut chains: Vec<crate::proxy::iptables::Chain> =
            vec![crate::proxy::iptables::Chain::Fixed("POSTROUTING")];
        let mut id = |c: &crate::proxy::iptables::Chain| -> u16 {
            match chains.iter().position(|x| x == c) {
                Some(i) => i as u16,
                None => {
                    chains.push(c.clone());
                    (chains.len() - 1) as u16
                }
            }
        };
        let net = |a: &Addr| match a {
            Addr::Ip(ip) => Net::new(IpNet::from(*ip)),
            Addr::Net(n) => Net::new(*n),
        };
        let (masq_pools, all_pools) = match masq {
            crate::masq::EgressMasq::Calico {
                masq_pools,
                all_pools,
                ..
            } => (
                masq_pools.iter().copied().map(Net::new).collect(),
                all_pools.iter().copied().map(Net::new).collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let rules = rules
            .iter()
            .map(|r| MasqRule {
                chain: id(&r.chain),
                args: r
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        Arg::Dst(addr, neg) => Some(MasqArg::Dst(net(addr), *neg)),
                        Arg::Src(addr, neg) => Some(MasqArg::Src(net(addr), *neg)),
                        Arg::DstTypeLocal(neg) => Some(MasqArg::DstTypeLocal(*neg)),
                        Arg::MatchSet(name, dir, neg) => {
                            // Only Calico has sets; any other agent's set is empty.
                            let set = match masq {
                                crate::masq::EgressMasq::Calico { .. } if name.contains("masq") => {
                                    masq_pools.clone()
                                }
                                crate::masq::EgressMasq::Calico { .. } => all_pools.clone(),
                                _ => Vec::new(),
                            };
                            Some(MasqArg::Set(set, *dir == "src", *neg))
                        }
                        _ => None,
                    })
                    .collect(),
                target: match &r.target {
                    Target::Jump(c) => MasqTarget::Jump(id(c)),
                    Target::Return => MasqTarget::Return,
                    Target::Masquerade { .. } => MasqTarget::Masquerade,
                    _ => MasqTarget::Other,
                },
            })
            .collect();
        MasqRules { rules }
    }

    /// Whether the agent masquerades `src` → `dst` (the walk of `EgressMasq::walk`).
    fn masquerades(&self, src: IpAddr, dst: IpAddr) -> bool {
        let matches = |r: &MasqRule| {
            r.args.iter().all(|a| match a {
                MasqArg::Dst(n, neg) => n.contains(dst) != *neg,
                MasqArg::Src(n, neg) => n.contains(src) != *neg,
                MasqArg::DstTypeLocal(neg) => *neg,
                MasqArg::Set(nets, is_src, neg) => {
                    let ip = if *is_src { src } else { dst };
                    nets.iter().any(|n| n.contains(ip)) != *neg
                }
            })
        };
        let mut chain = 0u16;
        let mut depth = 0;
        'walk: while depth < 8 {
            depth += 1;
            for r in self.rules.iter().filter(|r| r.chain == chain) {
                if !matches(r) {
                    continue;
                }
                match r.target {
                    MasqTarget::Jump(next) => {
                        chain = next;
                        continue 'walk;
                    }
                    MasqTarget::Return => return false,
                    MasqTarget::Masquerade => return true,
                    MasqTarget::Other => {}
                }
            }
            break;
        }
        false
    }
}

/// One family's tables.
#[derive(Debug)]
struct FamIndex {
    model: Option<Arc<FamilyModel>>,
    services: FastMap<(IpAddr, Proto, u16), Vec<(u32, Role)>>,
    nodeports: FastMap<(Proto, u16), Vec<u32>>,
    health_check_ports: FastSet<u16>,
    cluster_ips: FastSet<IpAddr>,
    masq: MasqRules,
    underlay: Option<Net>,
    /// Pods' routes: the pod's first address of the family → (sequence, node).
    pod_routes: FastMap<IpAddr, Vec<(u64, u32)>>,
    /// Routes to other nodes' podCIDRs (host-local) or Calico blocks: (sequence, owner).
    node_routes: Lpm<(u64, u32)>,
    /// kubenet's cloud routes: podCIDR → the first node (in name order) owning it.
    router_routes: Lpm<u32>,
    programs_pods: bool,
    /// `fe80::/64` for IPv6.
    link_local: Option<Net>,
    /// [`DstInfo`] of every endpoint of the model, by model-wide endpoint number.
    endpoints: Vec<DstInfo>,
}

/// The fast path's lookup tables for one dataplane.
#[derive(Debug)]
pub(crate) struct FastIndex {
    nodes: Vec<FastNode>,
    node_index: FastMap<String, u32>,
    families: [FamIndex; 2],
    /// The fabric's pod-by-address table, as the node each pod runs on (`None`: unscheduled
    /// or on an unknown node).
    pod_node_by_ip: FastMap<IpAddr, Option<u32>>,
    node_by_ip: FastMap<IpAddr, u32>,
    cluster_cidrs: Vec<Net>,
    service_cidrs: Vec<Net>,
    /// kube-proxy runs in nftables mode (else iptables, when it runs).
    nftables: bool,
}

impl FastNode {
    fn has_ip(&self, fi: usize, ip: IpAddr) -> bool {
        if self.more_ips[fi] {
            self.ips[fi].contains(&ip)
        } else {
            self.ip[fi] == Some(ip)
        }
    }
}

/// A CIDR with its mask precomputed, for the containment tests on hot paths.
#[derive(Clone, Copy, Debug)]
struct Net {
    v6: bool,
    base: u128,
    mask: u128,
    len: u8,
}

impl Net {
    fn new(n: IpNet) -> Net {
        let len = n.prefix_len();
        let (v6, bits) = match n {
            IpNet::V4(_) => (false, 32u32),
            IpNet::V6(_) => (true, 128u32),
        };
        let mask = if len == 0 {
            0
        } else {
            (u128::MAX << (bits - u32::from(len))) & (u128::MAX >> (128 - bits))
        };
        Net {
            v6,
            base: ip_bits(n.network()) & mask,
            mask,
            len,
        }
    }
    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.v6 && ip_bits(ip) & self.mask == self.base
    }
}

#[inline]
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FastIndex {
    fn build(dp: &Dataplane) -> FastIndex {
        let state: &ClusterState = dp.state();
        let node_index: FastMap<String, u32> = state
            .nodes
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let proxy_runs = dp.proxy_mode().is_some();
        let nodes: Vec<FastNode> = state
            .nodes
            .iter()
            .map(|(name, n)| {
                let fams = [Family::IPv4, Family::IPv6];
                let ips: [Vec<IpAddr>; 2] = fams.map(|f| {
                    n.internal_ips()
                        .filter(|ip| Family::of_ip(ip) == f)
                        .collect()
                });
                FastNode {
                    ip: [ips[0].first().copied(), ips[1].first().copied()],
                    more_ips: [ips[0].len() > 1, ips[1].len() > 1],
                    ips,
                    forwarding: fams.map(|f| sysctl_forwarding(state, name, f)),
                    pod_cidr: fams.map(|f| n.pod_cidr(f)),
                    proxy: Box::new(fams.map(|f| {
                        let cfg = dp.proxy.as_ref().filter(|_| proxy_runs)?;
                        let ctx = NodeCtx::new(state, cfg, name, f);
                        let nodeport_ips = ctx.nodeport_ips();
                        let detector = match &ctx.local_detector {
                            LocalDetector::Cidr(c) => Some(Net::new(*c)),
                            _ => None,
                        };
                        Some(ProxyNode {
                            ctx,
                            detector,
                            nodeport_ips,
                        })
                    })),
                }
            })
            .collect();
        let node_of = |name: &str| node_index.get(name).copied();
        let pod_node_by_ip = dp
            .fabric
            .pod_by_ip
            .iter()
            .map(|(ip, nn)| {
                let node = state
                    .pods
                    .get(nn)
                    .and_then(|p| p.spec.node_name.as_deref())
                    .and_then(node_of);
                (*ip, node)
            })
            .collect();
        let node_by_ip = dp
            .fabric
            .node_by_ip
            .iter()
            .filter_map(|(ip, n)| Some((*ip, node_of(n)?)))
            .collect();
        let families = [Family::IPv4, Family::IPv6].map(|f| FamIndex::build(dp, f, &node_index));
        let mut ix = FastIndex {
            nodes,
            node_index,
            families,
            pod_node_by_ip,
            node_by_ip,
            cluster_cidrs: state
                .network
                .cluster_cidrs
                .iter()
                .copied()
                .map(Net::new)
                .collect(),
            service_cidrs: state
                .network
                .service_cidrs
                .iter()
                .copied()
                .map(Net::new)
                .collect(),
            nftables: dp.proxy_mode() == Some("nftables"),
        };
        for fi in 0..2 {
            let infos: Vec<DstInfo> = match &ix.families[fi].model {
                Some(m) => m
                    .ports
                    .iter()
                    .flat_map(|sp| sp.endpoints.iter().map(|e| ix.dst_info(fi, e.ip)))
                    .collect(),
                None => Vec::new(),
            };
            ix.families[fi].endpoints = infos;
        }
        ix
    }

    /// Looks up what the routing tables hold about `ip`.
    fn dst_info(&self, fi: usize, ip: IpAddr) -> DstInfo {
        let f = &self.families[fi];
        let mut info = DstInfo {
            pod: self.pod_node_by_ip.get(&ip).map(|n| n.unwrap_or(u32::MAX)),
            node: self.node_by_ip.get(&ip).copied(),
            ..DstInfo::default()
        };
        if f.programs_pods
            && let Some(routes) = f.pod_routes.get(&ip)
        {
            match routes.as_slice() {
                [one] => info.pod_route = Some(*one),
                [] => {}
                _ => info.complex = true,
            }
        }
        let mut lens = f.node_routes.matches(ip);
        if let Some((len, entries)) = lens.next() {
            match entries {
                [(seq, owner)] => info.node_route = Some((len, *seq, *owner)),
                _ => info.complex = true,
            }
            if lens.next().is_some() {
                info.complex = true;
            }
        }
        info
    }
}

impl FamIndex {
    fn build(dp: &Dataplane, family: Family, node_index: &FastMap<String, u32>) -> FamIndex {
        let state = dp.state();
        let node_of = |name: &str| node_index.get(name).copied();
        let model = dp.model(family).cloned();
        let mut services: FastMap<(IpAddr, Proto, u16), Vec<(u32, Role)>> = FastMap::default();
        let mut nodeports: FastMap<(Proto, u16), Vec<u32>> = FastMap::default();
        let mut health_check_ports = FastSet::default();
        let mut cluster_ips = FastSet::default();
        if let Some(m) = &model {
            for (i, sp) in m.ports.iter().enumerate() {
                let i = i as u32;
                // In rule order: the cluster IP, each external IP, each load-balancer IP.
                services
                    .entry((sp.cluster_ip, sp.proto, sp.port))
                    .or_default()
                    .push((i, Role::Cluster));
                for &ip in &sp.external_ips {
                    services
                        .entry((ip, sp.proto, sp.port))
                        .or_default()
                        .push((i, Role::External));
                }
                for &ip in &sp.lb_vips {
                    services
                        .entry((ip, sp.proto, sp.port))
                        .or_default()
                        .push((i, Role::LoadBalancer));
                }
                if sp.node_port != 0 {
                    nodeports
                        .entry((sp.proto, sp.node_port))
                        .or_default()
                        .push(i);
                }
                if sp.health_check_node_port != 0 {
                    health_check_ports.insert(sp.health_check_node_port);
                }
                cluster_ips.insert(sp.cluster_ip);
            }
        }
        let masq = MasqRules::compile(&dp.masq, &dp.masq.iptables(family).1);
        let programs_pods = match &dp.fabric.cni {
            Cni::HostLocal => true,
            Cni::Kubenet => false,
            Cni::Calico(c) => c.programs(family),
        };
        // Pod routes: every pod with a node gets a route to its first address of the family
        // on that node (host-local and Calico).
        let mut pod_routes: FastMap<IpAddr, Vec<(u64, u32)>> = FastMap::default();
        if programs_pods {
            for (k, p) in state.pods.values().enumerate() {
                if p.spec.host_network {
                    continue;
                }
                let (Some(node), Some(ip)) = (
                    p.spec.node_name.as_deref().and_then(node_of),
                    p.ip_of(family),
                ) else {
                    continue;
                };
                pod_routes
                    .entry(ip)
                    .or_default()
                    .push((SEQ_PODS + k as u64, node));
            }
        }
        let mut node_routes = Lpm::default();
        let mut router_routes = Lpm::default();
        match &dp.fabric.cni {
            Cni::HostLocal => {
                for (k, n) in state.nodes.values().enumerate() {
                    if let (Some(cidr), Some(_)) = (n.pod_cidr(family), n.internal_ip(family)) {
                        node_routes.insert(cidr, (SEQ_NODES + k as u64, k as u32));
                    }
                }
            }
            Cni::Kubenet => {
                // The router's cloud routes, found in node order (the first node wins).
                for (k, n) in state.nodes.values().enumerate() {
                    if let Some(cidr) = n.pod_cidr(family) {
                        router_routes.insert(cidr, k as u32);
                    }
                }
            }
            Cni::Calico(c) => {
                if c.programs(family) {
                    for (k, (block, owner)) in c.blocks.iter().enumerate() {
                        if Family::of_net(block) != family {
                            continue;
                        }
                        // An owner that is not a node gets neither a blackhole nor a route.
                        if let Some(o) = node_of(owner) {
                            node_routes.insert(*block, (SEQ_NODES + k as u64, o));
                        }
                    }
                }
            }
        }
        FamIndex {
            link_local: (family == Family::IPv6)
                .then(|| Net::new("fe80::/64".parse().expect("static"))),
            endpoints: Vec::new(),
            model,
            services,
            nodeports,
            health_check_ports,
            cluster_ips,
            masq,
            underlay: dp.fabric.underlay.get(&family).map(|(n, _)| Net::new(*n)),
            pod_routes,
            node_routes,
            router_routes,
            programs_pods,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Evaluation

struct Eval<'a> {
    dp: &'a Dataplane,
    ix: &'a FastIndex,
    f: &'a FamIndex,
    q: &'a CompiledQuery,
}

/// Which endpoint list of a service port a chain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Cluster,
    Local,
}

/// What kube-proxy's rules did to the packet.
#[derive(Clone, Copy, Debug, Default)]
struct ProxyOut {
    /// The service port and endpoint list the packet was DNATed to (every endpoint of the
    /// list is a possible destination).
    dnat: Option<(u32, List)>,
    /// The first DROP (false) or REJECT (true).
    block: Option<bool>,
    accept: bool,
    masq: bool,
}

/// A packet at kube-proxy's rules.
struct Pkt<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: Proto,
    dport: u16,
    node_ips: &'a [IpAddr],
    src_is_local: bool,
    from_local_pod: bool,
}

impl Pkt<'_> {
    fn is_local_addr(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(&ip)
    }
}

/// The per-node facts of one service port (`writeServiceToEndpointRules`' local variables).
#[derive(Clone, Copy)]
struct PortFacts<'a> {
    sp: &'a ServicePortInfo,
    cat: Categorized<'a>,
    has_endpoints: bool,
    has_internal: bool,
    internal: List,
    has_external: bool,
    external: List,
    uses_cluster_chain: bool,
    uses_local_chain: bool,
    uses_ext_chain: bool,
    /// iptables: `KUBE-FW-` exists (needs endpoints); nftables: `firewall-` exists.
    uses_fw_chain_ipt: bool,
    uses_fw_chain_nft: bool,
}

impl<'a> PortFacts<'a> {
    fn new(sp: &'a ServicePortInfo, node: &'a str) -> Self {
        let cat = categorize(sp, node);
        let has_endpoints = cat.has_any;
        let local_empty = cat.local_is_empty();
        let uses_cluster_chain = !cat.cluster_is_empty() && sp.uses_cluster_endpoints();
        let uses_local_chain = !local_empty && sp.uses_local_endpoints();
        let (internal, has_internal) = if sp.internal_policy_local {
            (List::Local, has_endpoints && !local_empty)
        } else {
            (List::Cluster, has_endpoints)
        };
        let (external, has_external) = if sp.external_policy_local {
            (List::Local, has_endpoints && !local_empty)
        } else {
            (List::Cluster, has_endpoints)
        };
        let fw = !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty();
        PortFacts {
            sp,
            cat,
            has_endpoints,
            has_internal,
            internal,
            has_external,
            external,
            uses_cluster_chain,
            uses_local_chain,
            uses_ext_chain: has_endpoints && sp.externally_accessible(),
            uses_fw_chain_ipt: has_endpoints && fw,
            uses_fw_chain_nft: fw,
        }
    }
    fn uses(&self, list: List) -> bool {
        match list {
            List::Cluster => self.uses_cluster_chain,
            List::Local => self.uses_local_chain,
        }
    }
    fn endpoints(&self, list: List) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + use<'a> {
        self.cat.list(list == List::Local)
    }
}

impl Eval<'_> {
    fn run(&self, reached: &mut dyn FnMut(IpAddr, u16)) -> Verdict {
        let q = self.q;
        let (ingress, origin) = match q.start {
            Start::Nowhere => return Verdict::blocked(Outcome::Dropped),
            Start::At(n, o) => (n, o),
        };
        let fi = fam_index(q.family);
        let mut single = Some((q.dst, q.port));
        let mut dnat: Option<(u32, List)> = None;
        let mut dnat_facts: Option<PortFacts<'_>> = None;
        let mut kube_masq = false;
        let proxy = ingress.and_then(|n| {
            let node = &self.ix.nodes[n as usize];
            Some((node, node.proxy[fi].as_ref()?, self.f.model.as_deref()?))
        });
        if let Some((node, pn, model)) = proxy {
            let node_ips = &node.ips[fi];
            let p = Pkt {
                src: q.src,
                dst: q.dst,
                proto: q.proto,
                dport: q.port,
                node_ips,
                src_is_local: q.src.is_loopback() || node_ips.contains(&q.src),
                from_local_pod: origin == Origin::LocalPod,
            };
            let proxy = Proxy::new(model, self.f, pn, &p);
            let (out, facts) = if self.ix.nftables {
                proxy.nftables()
            } else {
                proxy.iptables()
            };
            dnat_facts = facts;
            kube_masq = out.masq;
            if let Some(reject) = out.block {
                return Verdict::blocked(if reject {
                    Outcome::Rejected
                } else {
                    Outcome::Dropped
                });
            }
            if out.accept {
                reached(q.dst, q.port);
                return Verdict {
                    outcome: Outcome::Delivered,
                    paths: 0,
                    delivered: 1,
                    masqueraded: false,
                };
            }
            if out.dnat.is_some() {
                dnat = out.dnat;
                single = None;
            } else if q.to_service {
                return Verdict::blocked(Outcome::Dropped);
            }
        } else if q.to_service {
            return Verdict::blocked(Outcome::Dropped);
        }
        let mut v = Verdict {
            outcome: Outcome::Dropped,
            paths: 0,
            delivered: 0,
            masqueraded: false,
        };
        let mut path = |ip: IpAddr, port: u16, info: &DstInfo| {
            v.paths += 1;
            if let Some(seen) = self.forward(ingress, origin, ip, info, kube_masq) {
                v.delivered += 1;
                v.masqueraded |= seen != q.src;
                reached(ip, port);
            }
        };
        match (single, dnat) {
            (Some((ip, port)), _) => path(ip, port, &self.ix.dst_info(fi, ip)),
            (None, Some((_, list))) => {
                let facts = dnat_facts.expect("a DNAT has its port's facts");
                let sp = facts.sp;
                for (j, e) in facts.endpoints(list) {
                    let info = &self.f.endpoints[(sp.first_endpoint + j) as usize];
                    path(e.ip, e.port, info);
                }
            }
            (None, None) => {}
        }
        if v.delivered > 0 {
            v.outcome = Outcome::Delivered;
        }
        v
    }

    /// The walk of one possible destination (the detailed trace's `forward`): the source the
    /// destination sees when it is delivered, `None` when it is not.
    fn forward(
        &self,
        ingress: Option<u32>,
        origin: Origin,
        dst: IpAddr,
        info: &DstInfo,
        kube_masq: bool,
    ) -> Option<IpAddr> {
        let fi = fam_index(self.q.family);
        let mut node = ingress?;
        let mut src = self.q.src;
        let mut origin = origin;
        let mut snat = false;
        let mut masq_pending = kube_masq;
        for _ in 0..8 {
            let hop = self.route(node, dst, info)?;
            let leaves_host = hop != Hop::Local;
            if leaves_host && origin != Origin::Host && !self.ix.nodes[node as usize].forwarding[fi]
            {
                return None;
            }
            match hop {
                Hop::Local => return Some(src),
                Hop::Blackhole => return None,
                Hop::Pod => {
                    if info.pod != Some(node) {
                        return None;
                    }
                    if masq_pending {
                        src = self.node_ip(node).unwrap_or(src);
                    }
                    return Some(src);
                }
                Hop::Node(next) => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    node = next;
                    origin = Origin::Wire;
                }
                Hop::Connected if info.node.is_some() => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    node = info.node.expect("checked");
                    origin = Origin::Wire;
                }
                Hop::Gateway | Hop::Connected => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    // At the router.
                    if let Some(n) = info.node {
                        node = n;
                        origin = Origin::Wire;
                        continue;
                    }
                    if let Some(n) = self.router_route(dst) {
                        node = n;
                        origin = Origin::Wire;
                        continue;
                    }
                    if self.is_cluster_address(dst, info) {
                        return None;
                    }
                    let in_underlay = self.f.underlay.is_some_and(|net| net.contains(src));
                    if !in_underlay {
                        let back = self.router_route(src).is_some();
                        if globally_routable(src).is_err() || !back {
                            return None;
                        }
                    }
                    return Some(src);
                }
            }
        }
        None
    }

    fn node_ip(&self, node: u32) -> Option<IpAddr> {
        self.ix.nodes[node as usize].ip[fam_index(self.q.family)]
    }

    /// nat POSTROUTING on `node` (the detailed trace's `postrouting`).
    fn postrouting(
        &self,
        node: u32,
        src: IpAddr,
        dst: IpAddr,
        masq_pending: &mut bool,
        snat: &mut bool,
        origin: Origin,
    ) -> IpAddr {
        let node_ip = self.node_ip(node).unwrap_or(src);
        if *masq_pending {
            *masq_pending = false;
            *snat = true;
            return node_ip;
        }
        let here = &self.ix.nodes[node as usize];
        if *snat || origin == Origin::Host || here.has_ip(fam_index(self.q.family), src) {
            return src;
        }
        if self.f.masq.masquerades(src, dst) {
            *snat = true;
            node_ip
        } else {
            src
        }
    }

    fn router_route(&self, ip: IpAddr) -> Option<u32> {
        // kubenet's cloud routes are searched in node order, not by prefix length.
        self.f
            .router_routes
            .matches(ip)
            .filter_map(|(_, nodes)| nodes.first().copied())
            .min()
    }

    fn is_cluster_address(&self, ip: IpAddr, info: &DstInfo) -> bool {
        self.ix.cluster_cidrs.iter().any(|c| c.contains(ip))
            || self.ix.service_cidrs.iter().any(|c| c.contains(ip))
            || info.pod.is_some()
    }

    /// The route `node`'s tables pick for `dst` ([`crate::routes::RouteTable::lookup`]):
    /// the local table first, then the longest prefix of the main table, the last of equal
    /// ones in dump order.
    fn route(&self, node: u32, dst: IpAddr, info: &DstInfo) -> Option<Hop> {
        let fi = fam_index(self.q.family);
        let n = &self.ix.nodes[node as usize];
        let f = self.f;
        let cni = &self.dp.fabric.cni;
        // The local table: loopback, the node's addresses, kubenet's bridge address.
        let loopback = match dst {
            IpAddr::V4(v4) => v4.octets()[0] == 127,
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if loopback
            || n.has_ip(fi, dst)
            || (matches!(cni, Cni::Kubenet)
                && n.pod_cidr[fi].is_some_and(|c| knetsim_ipam::family::nth_addr(&c, 1) == dst))
        {
            return Some(Hop::Local);
        }
        // The main table: (prefix length, type rank, insertion sequence) → the largest wins.
        let mut best: Option<((u8, u8, u64), Hop)> = None;
        let mut offer = |key: (u8, u8, u64), hop: Hop| {
            if best.is_none_or(|(b, _)| key > b) {
                best = Some((key, hop));
            }
        };
        let bits = match self.q.family {
            Family::IPv4 => 32u8,
            Family::IPv6 => 128u8,
        };
        if let (Some(net), Some(_)) = (f.underlay, n.ip[fi]) {
            if net.contains(dst) {
                offer((net.len, 0, SEQ_UNDERLAY), Hop::Connected);
            }
            offer((0, 0, SEQ_DEFAULT), Hop::Gateway);
            if let Some(ll) = f.link_local
                && ll.contains(dst)
            {
                offer((64, 0, SEQ_LINK_LOCAL), Hop::Connected);
            }
        }
        if info.complex {
            self.offer_routes_slow(node, dst, bits, &mut offer);
        } else {
            if let Some((seq, on)) = info.pod_route
                && on == node
            {
                offer((bits, 0, seq), Hop::Pod);
            }
            if let Some((len, seq, owner)) = info.node_route {
                match cni {
                    Cni::HostLocal if owner != node => offer((len, 0, seq), Hop::Node(owner)),
                    Cni::Calico(_) if owner == node => offer((len, 1, seq), Hop::Blackhole),
                    Cni::Calico(_) if self.ix.nodes[owner as usize].ip[fi].is_some() => {
                        offer((len, 0, seq), Hop::Node(owner))
                    }
                    _ => {}
                }
            }
        }
        if let Cni::Kubenet = cni
            && let Some(c) = n.pod_cidr[fi]
            && c.contains(&dst)
        {
            offer((c.prefix_len(), 0, SEQ_BRIDGE), Hop::Pod);
        }
        best.map(|(_, h)| h)
    }

    /// The pod and node routes for `dst` when there are several: every pod route on this
    /// node, and the longest prefix of the routes to other nodes (host-local) or of Calico's
    /// blocks.
    fn offer_routes_slow(
        &self,
        node: u32,
        dst: IpAddr,
        bits: u8,
        offer: &mut dyn FnMut((u8, u8, u64), Hop),
    ) {
        let fi = fam_index(self.q.family);
        let f = self.f;
        if f.programs_pods
            && let Some(routes) = f.pod_routes.get(&dst)
        {
            for &(seq, on) in routes {
                if on == node {
                    offer((bits, 0, seq), Hop::Pod);
                }
            }
        }
        let calico = matches!(self.dp.fabric.cni, Cni::Calico(_));
        for (len, entries) in f.node_routes.matches(dst) {
            let mut any = false;
            for &(seq, owner) in entries {
                if calico && owner == node {
                    // This node's blocks are blackholed.
                    offer((len, 1, seq), Hop::Blackhole);
                    any = true;
                } else if owner != node
                    && (!calico || self.ix.nodes[owner as usize].ip[fi].is_some())
                {
                    // Other nodes' podCIDRs, or blocks of nodes with an address of the
                    // family.
                    offer((len, 0, seq), Hop::Node(owner));
                    any = true;
                }
            }
            if any {
                break;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// kube-proxy, evaluated on the family model

/// The service ports a `(destination, protocol, port)` key is to, with its role for each.
type ServiceEntries<'a> = &'a [(u32, Role)];

struct Proxy<'a, 'p> {
    m: &'a FamilyModel,
    f: &'a FamIndex,
    n: &'a ProxyNode,
    p: &'p Pkt<'p>,
    out: ProxyOut,
    /// The facts of the service port asked for last (most packets concern one port).
    last: std::cell::Cell<Option<(u32, PortFacts<'a>)>>,
    /// The service entries of the address asked for last (the chains ask about the same
    /// destination several times).
    last_entries: std::cell::Cell<Option<(IpAddr, ServiceEntries<'a>)>>,
}

impl<'a, 'p> Proxy<'a, 'p> {
    fn new(m: &'a FamilyModel, f: &'a FamIndex, n: &'a ProxyNode, p: &'p Pkt<'p>) -> Self {
        Proxy {
            m,
            f,
            n,
            p,
            out: ProxyOut::default(),
            last: std::cell::Cell::new(None),
            last_entries: std::cell::Cell::new(None),
        }
    }

    fn facts(&self, i: u32) -> PortFacts<'a> {
        if let Some((j, pf)) = self.last.get()
            && j == i
        {
            return pf;
        }
        let pf = PortFacts::new(&self.m.ports[i as usize], &self.n.ctx.node);
        self.last.set(Some((i, pf)));
        pf
    }

    fn entries(&self, dst: IpAddr) -> &'a [(u32, Role)] {
        if let Some((ip, e)) = self.last_entries.get()
            && ip == dst
        {
            return e;
        }
        let f: &'a FamIndex = self.f;
        let e = f
            .services
            .get(&(dst, self.p.proto, self.p.dport))
            .map_or(&[][..], Vec::as_slice);
        self.last_entries.set(Some((dst, e)));
        e
    }

    /// The local detector's "from a pod" match (`if_local`), or `None` without a detector.
    fn sent_by_pod(&self) -> Option<bool> {
        match &self.n.ctx.local_detector {
            LocalDetector::NoOp => None,
            LocalDetector::Cidr(_) => self.n.detector.map(|c| c.contains(self.p.src)),
            LocalDetector::Interface(_) => Some(self.p.from_local_pod),
        }
    }

    /// The masquerade rule of the internal chain (cluster-IP traffic not from a pod, or
    /// all of it with `--masquerade-all`).
    fn internal_masq(&mut self, pf: &PortFacts<'_>, list: List, dst: IpAddr) {
        let sp = pf.sp;
        if pf.internal != list || !pf.has_internal {
            return;
        }
        if dst != sp.cluster_ip || self.p.proto != sp.proto || self.p.dport != sp.port {
            return;
        }
        if self.n.ctx.masquerade_all || self.sent_by_pod() == Some(false) {
            self.out.masq = true;
        }
    }

    /// The endpoint part of a service chain: every endpoint is a possible choice, and the
    /// hairpin rule of each marks the packet when it comes from that endpoint.
    fn endpoints(&mut self, i: u32, pf: &PortFacts<'_>, list: List) -> bool {
        if !pf.uses(list) {
            return false;
        }
        for (_, e) in pf.endpoints(list) {
            if e.ip == self.p.src {
                self.out.masq = true;
            }
        }
        self.out.dnat = Some((i, list));
        true
    }

    fn first_dnat_ip(&self) -> Option<IpAddr> {
        let (i, list) = self.out.dnat?;
        let pf = self.facts(i);
        pf.endpoints(list).next().map(|(_, e)| e.ip)
    }

    fn nodeport_rule_matches(&self, dst: IpAddr, nft: bool) -> bool {
        let v6 = Family::of_ip(&dst) == Family::IPv6;
        let ctx = &self.n.ctx;
        let in_v4_loopback = matches!(dst, IpAddr::V4(v4) if v4.octets()[0] == 127);
        let is_v6_loopback = matches!(dst, IpAddr::V6(v6) if v6.is_loopback());
        if ctx.nodeport.match_all {
            if nft {
                // fib daddr type local (the node's addresses) and not loopback.
                self.p.node_ips.contains(&dst) && !in_v4_loopback && !is_v6_loopback
            } else {
                self.p.is_local_addr(dst)
                    && !(v6 && is_v6_loopback)
                    && !(!v6 && !ctx.localhost_nodeports && in_v4_loopback)
            }
        } else if nft {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !ip.is_loopback() && *ip == dst)
        } else {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !(ip.is_loopback() && (v6 || !ctx.localhost_nodeports)) && *ip == dst)
        }
    }

    // --- iptables -------------------------------------------------------------------------

    /// The facts of the port the packet was DNATed to.
    fn finish(self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let facts = self.out.dnat.map(|(i, _)| self.facts(i));
        (self.out, facts)
    }

    fn iptables(mut self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let dst = self.p.dst;
        // nat PREROUTING → KUBE-SERVICES.
        let mut done = false;
        for &(i, role) in self.entries(dst) {
            let pf = self.facts(i);
            let terminated = match role {
                Role::Cluster => pf.has_internal && self.ipt_svc(i, &pf, pf.internal, dst),
                Role::External => pf.has_endpoints && self.ipt_ext(i, &pf, dst),
                Role::LoadBalancer => {
                    pf.has_endpoints
                        && if pf.uses_fw_chain_ipt {
                            self.ipt_fw(i, &pf, dst)
                        } else {
                            self.ipt_ext(i, &pf, dst)
                        }
                }
            };
            if terminated {
                done = true;
                break;
            }
        }
        if !done && self.nodeport_rule_matches(dst, false) {
            // KUBE-NODEPORTS (nat).
            if let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport)) {
                for &i in ports {
                    let pf = self.facts(i);
                    if pf.has_endpoints && self.ipt_ext(i, &pf, dst) {
                        break;
                    }
                }
            }
        }
        // The filter chains, with the destination rewritten to the first DNAT output.
        let dst = self.first_dnat_ip().unwrap_or(dst);
        let mut blocks: [Option<bool>; 3] = [None; 3];
        // KUBE-SERVICES (filter): cluster IPs whose traffic has nowhere to go.
        for &(i, role) in self.entries(dst) {
            if role != Role::Cluster {
                continue;
            }
            let pf = self.facts(i);
            if !pf.has_internal {
                blocks[0] = Some(!pf.has_endpoints);
                break;
            }
        }
        // KUBE-EXTERNAL-SERVICES: external and load-balancer IPs, NodePorts, in rule order.
        let mut first: Option<((u32, u8), bool)> = None;
        for &(i, role) in self.entries(dst) {
            let rank = match role {
                Role::Cluster => continue,
                Role::External => 0,
                Role::LoadBalancer => 1,
            };
            let pf = self.facts(i);
            if !pf.has_external {
                first = Some(((i, rank), !pf.has_endpoints));
                break;
            }
        }
        if self.p.is_local_addr(dst)
            && let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport))
        {
            for &i in ports {
                let pf = self.facts(i);
                if !pf.has_external {
                    if first.is_none_or(|(k, _)| (i, 2) < k) {
                        first = Some(((i, 2), !pf.has_endpoints));
                    }
                    break;
                }
            }
        }
        blocks[1] = first.map(|(_, reject)| reject);
        // KUBE-NODEPORTS (filter): health check NodePorts are accepted.
        self.out.accept =
            self.p.proto == Proto::Tcp && self.f.health_check_ports.contains(&self.p.dport);
        // KUBE-PROXY-FIREWALL: load-balancer IPs with source ranges.
        for &(i, role) in self.entries(dst) {
            if role == Role::LoadBalancer && self.facts(i).uses_fw_chain_ipt {
                blocks[2] = Some(false);
                break;
            }
        }
        self.out.block = blocks.into_iter().flatten().next();
        self.finish()
    }

    /// `KUBE-SVC-` / `KUBE-SVL-`.
    fn ipt_svc(&mut self, i: u32, pf: &PortFacts<'_>, list: List, dst: IpAddr) -> bool {
        self.internal_masq(pf, list, dst);
        self.endpoints(i, pf, list)
    }

    /// `KUBE-EXT-`.
    fn ipt_ext(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        if !pf.uses_ext_chain {
            return false;
        }
        if !pf.sp.external_policy_local {
            self.out.masq = true;
        } else {
            if self.sent_by_pod() == Some(true) && self.ipt_svc(i, pf, List::Cluster, dst) {
                return true;
            }
            if self.p.src_is_local {
                self.out.masq = true;
                if self.ipt_svc(i, pf, List::Cluster, dst) {
                    return true;
                }
            }
        }
        pf.has_external && self.ipt_svc(i, pf, pf.external, dst)
    }

    /// `KUBE-FW-`.
    fn ipt_fw(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        let src = self.p.src;
        for cidr in &pf.sp.lb_source_ranges {
            if cidr.contains(&src) && self.ipt_ext(i, pf, dst) {
                return true;
            }
        }
        let allow_from_node = self
            .n
            .ctx
            .node_ip
            .is_some_and(|ip| pf.sp.lb_source_ranges.iter().any(|c| c.contains(&ip)));
        if allow_from_node {
            for &lb in &pf.sp.lb_vips {
                if lb == src && self.ipt_ext(i, pf, dst) {
                    return true;
                }
            }
        }
        false
    }

    // --- nftables -------------------------------------------------------------------------

    fn nftables(mut self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let dst = self.p.dst;
        // The pre-DNAT filter chain: firewall-check.
        if let Some(&(i, _)) = self
            .entries(dst)
            .iter()
            .find(|&&(i, role)| role == Role::LoadBalancer && self.facts(i).uses_fw_chain_nft)
        {
            let pf = self.facts(i);
            let mut allowed = pf
                .sp
                .lb_source_ranges
                .iter()
                .any(|c| c.contains(&self.p.src));
            let allow_from_node = self
                .n
                .ctx
                .node_ip
                .is_some_and(|ip| pf.sp.lb_source_ranges.iter().any(|c| c.contains(&ip)));
            if allow_from_node {
                allowed |= pf.sp.lb_vips.contains(&self.p.src);
            }
            if !allowed {
                self.out.block = Some(false);
                return self.finish();
            }
        }
        // nat-prerouting → services: the service-ips map, else the NodePort map.
        let element = self.entries(dst).iter().find_map(|&(i, role)| {
            let pf = self.facts(i);
            let present = match role {
                Role::Cluster => pf.has_internal,
                Role::External | Role::LoadBalancer => pf.has_endpoints,
            };
            present.then_some((i, role))
        });
        match element {
            Some((i, role)) => {
                let pf = self.facts(i);
                match role {
                    Role::Cluster => {
                        self.nft_svc(i, &pf, pf.internal, dst);
                    }
                    _ => {
                        self.nft_ext(i, &pf, dst);
                    }
                }
            }
            None => {
                if self.nodeport_rule_matches(dst, true)
                    && let Some(&i) = self
                        .f
                        .nodeports
                        .get(&(self.p.proto, self.p.dport))
                        .and_then(|ports| ports.iter().find(|&&i| self.facts(i).has_endpoints))
                {
                    let pf = self.facts(i);
                    self.nft_ext(i, &pf, dst);
                }
            }
        }
        // filter-forward with the destination rewritten to the first DNAT output:
        // service-endpoints-check, then cluster-ips-check.
        let dst = self.first_dnat_ip().unwrap_or(dst);
        if let Some(reject) = self.no_endpoint_service(dst) {
            self.out.block = Some(reject);
            return self.finish();
        }
        let v = self.n.ctx.version;
        if v.at_least(30) {
            if self.f.cluster_ips.contains(&dst) {
                self.out.block = Some(true);
                return self.finish();
            }
            if v.at_least(33) && self.n.ctx.service_cidrs.iter().any(|c| c.contains(&dst)) {
                self.out.block = Some(false);
                return self.finish();
            }
        }
        // filter-input: nodeport-endpoints-check.
        let matches = if self.n.ctx.nodeport.match_all {
            !matches!(dst, IpAddr::V4(v4) if v4.octets()[0] == 127)
                && !matches!(dst, IpAddr::V6(v6) if v6.is_loopback())
        } else {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !ip.is_loopback() && *ip == dst)
        };
        if matches && let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport)) {
            for &i in ports {
                let pf = self.facts(i);
                if !pf.has_external {
                    self.out.block = Some(!pf.has_endpoints);
                    break;
                }
            }
        }
        self.finish()
    }

    /// The first element of `no-endpoint-services` for `dst`: reject (true) or drop (false).
    fn no_endpoint_service(&self, dst: IpAddr) -> Option<bool> {
        self.entries(dst).iter().find_map(|&(i, role)| {
            let pf = self.facts(i);
            let present = match role {
                Role::Cluster => !pf.has_internal,
                Role::External | Role::LoadBalancer => !pf.has_external,
            };
            present.then_some(!pf.has_endpoints)
        })
    }

    /// `service-` / `local-`.
    fn nft_svc(&mut self, i: u32, pf: &PortFacts<'_>, list: List, dst: IpAddr) -> bool {
        self.internal_masq(pf, list, dst);
        self.endpoints(i, pf, list)
    }

    /// `external-`.
    fn nft_ext(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        if !pf.uses_ext_chain {
            return false;
        }
        if !pf.sp.external_policy_local {
            self.out.masq = true;
        } else {
            if self.sent_by_pod() == Some(true) {
                return self.nft_svc(i, pf, List::Cluster, dst);
            }
            // fib saddr type local: the node's own addresses only.
            if self.p.node_ips.contains(&self.p.src) {
                self.out.masq = true;
                return self.nft_svc(i, pf, List::Cluster, dst);
            }
        }
        pf.has_external && self.nft_svc(i, pf, pf.external, dst)
    }
}

/// What kube-proxy does to a packet, in the terms the walk uses: the first DROP or REJECT,
/// whether something ACCEPTs it, the DNAT destinations in order, and the masquerade mark.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxySummary {
    pub block: Option<&'static str>,
    pub accept: bool,
    pub dnat: Vec<String>,
    pub masq: bool,
}

#[cfg(test)]
impl ProxySummary {
    /// The summary of a rule tracer's result.
    pub(crate) fn of_trace(r: &crate::proxy::iptables::TraceResult) -> ProxySummary {
        ProxySummary {
            block: r.outputs.iter().find_map(|o| match o.as_str() {
                "DROP" => Some("DROP"),
                "REJECT" => Some("REJECT"),
                _ => None,
            }),
            accept: r.outputs.iter().any(|o| o == "ACCEPT"),
            dnat: r
                .outputs
                .iter()
                .filter(|o| crate::proxy::split_host_port(o).is_some())
                .cloned()
                .collect(),
            masq: r.masq,
        }
    }

    /// The fast path's evaluation of the same packet at `node` (`None` when kube-proxy
    /// programs nothing there).
    pub(crate) fn of_fast(
        dp: &Dataplane,
        node: &str,
        p: &crate::proxy::PacketCtx,
    ) -> Option<ProxySummary> {
        let ix = dp.fast_index();
        let family = Family::of_ip(&p.dst);
        let f = &ix.families[fam_index(family)];
        let n = *ix.node_index.get(node)?;
        let pn = ix.nodes[n as usize].proxy[fam_index(family)].as_ref()?;
        let model = f.model.as_deref()?;
        let pkt = Pkt {
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            dport: p.dport,
            node_ips: &p.node_ips,
            src_is_local: p.src_is_local,
            from_local_pod: p.from_local_pod,
        };
        let proxy = Proxy::new(model, f, pn, &pkt);
        let (out, _) = if ix.nftables {
            proxy.nftables()
        } else {
            proxy.iptables()
        };
        let dnat = match out.dnat {
            Some((i, list)) => {
                let sp = &model.ports[i as usize];
                PortFacts::new(sp, node)
                    .endpoints(list)
                    .map(|(j, _)| sp.endpoint_addr(j).to_string())
                    .collect()
            }
            None => Vec::new(),
        };
        Some(ProxySummary {
            block: out
                .block
                .map(|reject| if reject { "REJECT" } else { "DROP" }),
            accept: out.accept,
            dnat,
            masq: out.masq,
        })
    }
}
