//! The network around and inside the cluster: the underlay subnets, the router to the external
//! network, load-balancer address pools, each node's interfaces and pods, and each CNI's way of
//! wiring pods (which is what decides the routes).
//!
//! CNI shapes modelled:
//! - `host-local` (kind's kindnet): `ptp` veth per pod, a `/32` (`/128`) host route per local
//!   pod, and a route to every other node's podCIDR via that node's InternalIP of the same
//!   family.
//! - `kubenet`: bridge `cbr0` holding the first address of each podCIDR; no routes to other
//!   nodes on the node itself: the cloud's route table (kube-controller-manager's route
//!   controller) carries them, so the router has a route to every node's podCIDRs.
//! - `calico`: a `cali…` veth per pod with a `/32` (`/128`) route, a `blackhole` route for
//!   each block affine to the node, and a route to every other node's blocks via that node
//!   (BGP, no encapsulation). IPv6 routes exist only when Felix runs with IPv6 support
//!   (`FELIX_IPV6SUPPORT`, default true).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_control::state::{ClusterState, NamespacedName};
use knetsim_ipam::Family;
use knetsim_ipam::family::{ip_to_u128, u128_to_ip};
use knetsim_model::Scenario;
use knetsim_model::scenario::CniConfig;
use petgraph::stable_graph::{NodeIndex, StableGraph};

use crate::config::{FabricConfig, UnderlaySubnet};
use crate::names;
use crate::routes::{NextHop, Route, RouteTable};

/// Which CNI wires the pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cni {
    HostLocal,
    Kubenet,
    Calico(CalicoInfo),
}

/// What Calico contributes to the dataplane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoInfo {
    /// Felix programs IPv6 (routes, NAT) only with `FELIX_IPV6SUPPORT` true.
    pub ipv6_support: bool,
    /// (pool CIDR, natOutgoing, disabled).
    pub pools: Vec<(IpNet, bool, bool)>,
    /// Blocks and the node each is affine to.
    pub blocks: Vec<(IpNet, String)>,
}

impl Cni {
    pub fn from_scenario(scenario: &Scenario, state: &ClusterState) -> Cni {
        match &scenario.cluster.cni {
            CniConfig::HostLocal => Cni::HostLocal,
            CniConfig::Kubenet => Cni::Kubenet,
            CniConfig::Calico(c) => {
                // calico-node: FELIX_IPV6SUPPORT defaults to true (felix config param
                // Ipv6Support); any value other than a true boolean turns it off.
                let ipv6_support = c
                    .env
                    .get("FELIX_IPV6SUPPORT")
                    .map(|v| matches!(v.value.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
                    .unwrap_or(true);
                Cni::Calico(CalicoInfo::from_state(state, ipv6_support))
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Cni::HostLocal => "host-local",
            Cni::Kubenet => "kubenet",
            Cni::Calico(_) => "calico",
        }
    }
}

impl CalicoInfo {
    pub fn from_state(state: &ClusterState, ipv6_support: bool) -> CalicoInfo {
        let calico = state.calico.clone().unwrap_or_default();
        CalicoInfo {
            ipv6_support,
            pools: calico
                .ip_pools
                .iter()
                .map(|p| (p.cidr, p.nat_outgoing, p.disabled))
                .collect(),
            blocks: calico
                .block_affinities
                .iter()
                .map(|b| (b.cidr, b.node.clone()))
                .collect(),
        }
    }
    /// Whether Felix programs this family.
    pub fn programs(&self, family: Family) -> bool {
        family == Family::IPv4 || self.ipv6_support
    }
}

/// The resolved fabric.
#[derive(Clone, Debug)]
pub struct Fabric {
    pub cni: Cni,
    /// One underlay subnet per family, with its gateway.
    pub underlay: BTreeMap<Family, (IpNet, IpAddr)>,
    pub external_hosts: Vec<IpAddr>,
    /// Load-balancer IPs assigned from the pool, per Service.
    pub lb_assigned: BTreeMap<NamespacedName, Vec<IpAddr>>,
    pub pod_by_ip: HashMap<IpAddr, NamespacedName>,
    pub node_by_ip: HashMap<IpAddr, String>,
}

/// The smallest subnet (no longer than /24 or /64) holding all `ips`.
fn derive_subnet(ips: &[IpAddr], family: Family) -> Option<IpNet> {
    let first = *ips.first()?;
    let start = match family {
        Family::IPv4 => 24,
        Family::IPv6 => 64,
    };
    for len in (0..=start).rev() {
        let net = IpNet::new(first, len).ok()?.trunc();
        if ips.iter().all(|ip| net.contains(ip)) {
            return Some(net);
        }
    }
    None
}

fn pick_gateway(net: IpNet, used: &[IpAddr]) -> IpAddr {
    let base = ip_to_u128(net.network());
    let family = Family::of_net(&net);
    (1..1024u128)
        .map(|i| u128_to_ip(family, base + i))
        .find(|ip| net.contains(ip) && !used.contains(ip))
        .unwrap_or_else(|| u128_to_ip(family, base + 1))
}

impl Fabric {
    pub fn build(state: &ClusterState, cni: Cni, cfg: &FabricConfig) -> Fabric {
        let mut underlay = BTreeMap::new();
        for family in [Family::IPv4, Family::IPv6] {
            let ips: Vec<IpAddr> = state
                .nodes
                .values()
                .flat_map(|n| n.internal_ips())
                .filter(|ip| Family::of_ip(ip) == family)
                .collect();
            let explicit: Option<&UnderlaySubnet> = cfg
                .underlay
                .iter()
                .find(|u| Family::of_net(&u.cidr) == family);
            let subnet = match explicit {
                Some(u) => Some((u.cidr, u.gateway)),
                None => derive_subnet(&ips, family).map(|n| (n, None)),
            };
            if let Some((net, gw)) = subnet {
                let gw = gw.unwrap_or_else(|| pick_gateway(net, &ips));
                underlay.insert(family, (net, gw));
            }
        }
        let mut pod_by_ip = HashMap::new();
        for (nn, pod) in &state.pods {
            if pod.spec.host_network {
                continue;
            }
            for ip in &pod.status.pod_ips {
                pod_by_ip.insert(*ip, nn.clone());
            }
        }
        let mut node_by_ip = HashMap::new();
        for (name, node) in &state.nodes {
            for ip in node.internal_ips() {
                node_by_ip.insert(ip, name.clone());
            }
        }
        let lb_assigned = assign_load_balancers(state, cfg);
        Fabric {
            cni,
            underlay,
            external_hosts: cfg.external_hosts.clone(),
            lb_assigned,
            pod_by_ip,
            node_by_ip,
        }
    }

    /// The gateway of the family's underlay subnet.
    pub fn gateway(&self, family: Family) -> Option<IpAddr> {
        self.underlay.get(&family).map(|(_, gw)| *gw)
    }

    /// The pod's host-side interface name on its node.
    pub fn pod_iface(&self, pod: &NamespacedName) -> String {
        match self.cni {
            Cni::Calico(_) => names::calico_veth(&pod.namespace, &pod.name),
            Cni::Kubenet => "cbr0".to_string(),
            Cni::HostLocal => names::cni_veth(&pod.namespace, &pod.name),
        }
    }

    /// The address MASQUERADE gives a packet leaving a node towards one of its pods: the
    /// primary address of the outgoing interface. ptp (kindnet, host-local) puts the pod
    /// range's gateway on the host side of every pod's veth, kubenet on `cbr0`; Calico's
    /// veths have no address of the family, so the kernel takes the node's. (Found by
    /// `knetsim emulate`: the kernel's hairpin source is 10.244.x.1, not the node's.)
    pub fn pod_side_masq_source(
        &self,
        pod_cidr: Option<IpNet>,
        node_ip: Option<IpAddr>,
    ) -> Option<IpAddr> {
        match self.cni {
            Cni::HostLocal | Cni::Kubenet => pod_cidr
                .map(|c| knetsim_ipam::family::nth_addr(&c, 1))
                .or(node_ip),
            Cni::Calico(_) => node_ip,
        }
    }

    /// Builds one node's routing table for one family.
    pub fn routes(&self, state: &ClusterState, node: &str, family: Family) -> RouteTable {
        let mut t = RouteTable::new(node, family);
        let Some(n) = state.nodes.get(node) else {
            return t;
        };
        let v6 = family == Family::IPv6;
        let node_ip = n.internal_ip(family);
        // Loopback and the node's own address.
        match family {
            Family::IPv4 => {
                t.local.push(
                    Route::unicast("127.0.0.0/8".parse().expect("static"), NextHop::Local)
                        .kind("local")
                        .dev("lo")
                        .proto("kernel")
                        .scope("host")
                        .src("127.0.0.1".parse().expect("static")),
                );
            }
            Family::IPv6 => {
                t.local.push(
                    Route::unicast("::1/128".parse().expect("static"), NextHop::Local)
                        .kind("local")
                        .dev("lo")
                        .proto("kernel")
                        .metric(0),
                );
            }
        }
        for ip in n.internal_ips().filter(|ip| Family::of_ip(ip) == family) {
            let r = Route::unicast(IpNet::from(ip), NextHop::Local)
                .kind("local")
                .dev("eth0")
                .proto("kernel");
            t.local.push(if v6 {
                r.metric(0)
            } else {
                r.scope("host").src(ip)
            });
        }
        // The connected underlay subnet and the default route.
        if let (Some((net, gw)), Some(nip)) = (self.underlay.get(&family), node_ip) {
            let r = Route::unicast(*net, NextHop::Connected)
                .dev("eth0")
                .proto("kernel");
            t.main.push(if v6 {
                r.metric(256)
            } else {
                r.scope("link").src(nip)
            });
            let d = Route::unicast(
                IpNet::new(u128_to_ip(family, 0), 0).expect("static"),
                NextHop::Gateway,
            )
            .via(*gw)
            .dev("eth0");
            t.main.push(if v6 { d.metric(1024) } else { d });
            if v6 {
                t.main.push(
                    Route::unicast("fe80::/64".parse().expect("static"), NextHop::Connected)
                        .dev("eth0")
                        .proto("kernel")
                        .metric(256),
                );
            }
        }
        // Other nodes on the underlay are reached through the connected route; mark them so
        // lookups can say which node a next hop is.
        let pods_here: Vec<(&NamespacedName, IpAddr)> = state
            .pods
            .iter()
            .filter(|(_, p)| p.spec.node_name.as_deref() == Some(node) && !p.spec.host_network)
            .filter_map(|(nn, p)| p.ip_of(family).map(|ip| (nn, ip)))
            .collect();
        match &self.cni {
            Cni::HostLocal => {
                for (nn, ip) in pods_here {
                    let r = Route::unicast(IpNet::from(ip), NextHop::Pod { pod: nn.clone() })
                        .dev(self.pod_iface(nn));
                    t.main
                        .push(if v6 { r.metric(1024) } else { r.scope("host") });
                }
                for (other, on) in &state.nodes {
                    if other == node {
                        continue;
                    }
                    let (Some(cidr), Some(via)) = (on.pod_cidr(family), on.internal_ip(family))
                    else {
                        continue;
                    };
                    let r = Route::unicast(
                        cidr,
                        NextHop::Node {
                            node: other.clone(),
                        },
                    )
                    .via(via)
                    .dev("eth0");
                    t.main.push(if v6 { r.metric(1024) } else { r });
                }
            }
            Cni::Kubenet => {
                if let Some(cidr) = n.pod_cidr(family) {
                    let gw = knetsim_ipam::family::nth_addr(&cidr, 1);
                    let r = Route::unicast(cidr, NextHop::Bridge)
                        .dev("cbr0")
                        .proto("kernel");
                    t.main.push(if v6 {
                        r.metric(256)
                    } else {
                        r.scope("link").src(gw)
                    });
                    let l = Route::unicast(IpNet::from(gw), NextHop::Local)
                        .kind("local")
                        .dev("cbr0")
                        .proto("kernel");
                    t.local.push(if v6 {
                        l.metric(0)
                    } else {
                        l.scope("host").src(gw)
                    });
                }
            }
            Cni::Calico(c) => {
                if c.programs(family) {
                    for (nn, ip) in pods_here {
                        let r = Route::unicast(IpNet::from(ip), NextHop::Pod { pod: nn.clone() })
                            .dev(self.pod_iface(nn));
                        t.main
                            .push(if v6 { r.metric(1024) } else { r.scope("link") });
                    }
                    for (block, owner) in &c.blocks {
                        if Family::of_net(block) != family {
                            continue;
                        }
                        if owner == node {
                            let r = Route::unicast(*block, NextHop::Blackhole)
                                .kind("blackhole")
                                .proto("bird");
                            t.main.push(if v6 { r.dev("lo").metric(1024) } else { r });
                        } else if let Some(via) =
                            state.nodes.get(owner).and_then(|o| o.internal_ip(family))
                        {
                            let r = Route::unicast(
                                *block,
                                NextHop::Node {
                                    node: owner.clone(),
                                },
                            )
                            .via(via)
                            .dev("eth0")
                            .proto("bird");
                            t.main.push(if v6 { r.metric(1024) } else { r });
                        }
                    }
                }
            }
        }
        t.sort();
        t
    }

    /// The router's routes to pod networks: kubenet's cloud routes (one per node podCIDR).
    pub fn router_pod_routes(&self, state: &ClusterState, family: Family) -> Vec<(IpNet, String)> {
        match self.cni {
            Cni::Kubenet => state
                .nodes
                .iter()
                .filter_map(|(name, n)| n.pod_cidr(family).map(|c| (c, name.clone())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Assigns load-balancer IPs like MetalLB: LoadBalancer Services in name order, one address
/// per family the Service has, the first free address of the pool (a requested
/// `spec.loadBalancerIP` when it is in the pool and free). Services whose status already
/// carries ingress IPs keep them.
fn assign_load_balancers(
    state: &ClusterState,
    cfg: &FabricConfig,
) -> BTreeMap<NamespacedName, Vec<IpAddr>> {
    let mut used: Vec<IpAddr> = state
        .services
        .values()
        .flat_map(|s| s.status.load_balancer.ingress.iter().map(|i| i.ip))
        .collect();
    let in_pool = |ip: IpAddr| {
        cfg.lb_addresses.iter().any(|r| {
            r.first.is_ipv4() == ip.is_ipv4()
                && ip_to_u128(r.first) <= ip_to_u128(ip)
                && ip_to_u128(ip) <= ip_to_u128(r.last)
        })
    };
    let mut out = BTreeMap::new();
    for (nn, svc) in &state.services {
        if svc.spec.type_ != "LoadBalancer" || !svc.status.load_balancer.ingress.is_empty() {
            continue;
        }
        let mut ips = Vec::new();
        for family in &svc.spec.ip_families {
            if let Some(req) = svc.spec.load_balancer_ip
                && Family::of_ip(&req) == *family
                && in_pool(req)
                && !used.contains(&req)
            {
                used.push(req);
                ips.push(req);
                continue;
            }
            'ranges: for r in cfg
                .lb_addresses
                .iter()
                .filter(|r| Family::of_ip(&r.first) == *family)
            {
                let (a, b) = (ip_to_u128(r.first), ip_to_u128(r.last));
                let mut v = a;
                while v <= b {
                    let ip = u128_to_ip(*family, v);
                    if !used.contains(&ip) {
                        used.push(ip);
                        ips.push(ip);
                        break 'ranges;
                    }
                    v += 1;
                    if v - a > 1 << 20 {
                        break;
                    }
                }
            }
        }
        if !ips.is_empty() {
            out.insert(nn.clone(), ips);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// The graph

/// A vertex of the fabric graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vertex {
    Router,
    External,
    ExternalHost(IpAddr),
    Subnet(IpNet),
    LoadBalancer(String),
    Node(String),
    Pod(NamespacedName),
}

/// The fabric as a graph: edges carry the interface (and address) that joins two vertices.
pub fn graph(state: &ClusterState, fabric: &Fabric) -> StableGraph<Vertex, String> {
    let mut g = StableGraph::new();
    let router = g.add_node(Vertex::Router);
    let external = g.add_node(Vertex::External);
    g.add_edge(router, external, "uplink".to_string());
    for h in &fabric.external_hosts {
        let v = g.add_node(Vertex::ExternalHost(*h));
        g.add_edge(external, v, h.to_string());
    }
    let mut subnets: BTreeMap<Family, NodeIndex> = BTreeMap::new();
    for (family, (net, gw)) in &fabric.underlay {
        let v = g.add_node(Vertex::Subnet(*net));
        g.add_edge(router, v, gw.to_string());
        subnets.insert(*family, v);
    }
    if !fabric.lb_assigned.is_empty() {
        let lb = g.add_node(Vertex::LoadBalancer("load-balancer".to_string()));
        let ips: Vec<String> = fabric
            .lb_assigned
            .values()
            .flatten()
            .map(|ip| ip.to_string())
            .collect();
        g.add_edge(router, lb, ips.join(", "));
    }
    let mut node_v: BTreeMap<&str, NodeIndex> = BTreeMap::new();
    for (name, n) in &state.nodes {
        let v = g.add_node(Vertex::Node(name.clone()));
        node_v.insert(name, v);
        for ip in n.internal_ips() {
            if let Some(&s) = subnets.get(&Family::of_ip(&ip)) {
                g.add_edge(v, s, format!("eth0 {ip}"));
            }
        }
    }
    for (nn, pod) in &state.pods {
        if pod.spec.host_network {
            continue;
        }
        let Some(&nv) = pod.spec.node_name.as_deref().and_then(|n| node_v.get(n)) else {
            continue;
        };
        let v = g.add_node(Vertex::Pod(nn.clone()));
        let ips: Vec<String> = pod.status.pod_ips.iter().map(|p| p.to_string()).collect();
        g.add_edge(nv, v, format!("{} {}", fabric.pod_iface(nn), ips.join(" ")));
    }
    g
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Renders the fabric graph as Graphviz DOT, vertices and edges in insertion order (which is
/// sorted by name), so the output is stable.
pub fn render_dot(g: &StableGraph<Vertex, String>) -> String {
    let mut out = String::from("graph fabric {\n  node [shape=box];\n");
    for i in g.node_indices() {
        let (label, shape) = match &g[i] {
            Vertex::Router => ("router".to_string(), "diamond"),
            Vertex::External => ("external network".to_string(), "ellipse"),
            Vertex::ExternalHost(ip) => (format!("host {ip}"), "ellipse"),
            Vertex::Subnet(n) => (format!("underlay {n}"), "ellipse"),
            Vertex::LoadBalancer(n) => (n.clone(), "hexagon"),
            Vertex::Node(n) => (format!("node {n}"), "box3d"),
            Vertex::Pod(p) => (format!("pod {p}"), "box"),
        };
        let _ = writeln!(
            out,
            "  n{} [label=\"{}\", shape={shape}];",
            i.index(),
            dot_escape(&label)
        );
    }
    for e in g.edge_indices() {
        if let Some((a, b)) = g.edge_endpoints(e) {
            let _ = writeln!(
                out,
                "  n{} -- n{} [label=\"{}\"];",
                a.index(),
                b.index(),
                dot_escape(&g[e])
            );
        }
    }
    out.push_str("}\n");
    out
}
