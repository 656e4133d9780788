//! The emulated cluster: which namespaces a run creates, and the `ip -batch` text and rule
//! files that wire them.
//!
//! - `<prefix>u` is the underlay: a bridge `br0` holding the fabric's gateway addresses (the
//!   router), a veth `n<i>` per node whose other end is the node's `eth0`, and `x0` towards
//!   the external namespace. Its routes: the external hosts, the load-balancer IPs (to the
//!   node the dataplane hands them to), services' external IPs, kubenet's cloud routes. It
//!   forwards but has no NAT: a reply to a pod address nobody masqueraded finds no route, as
//!   on the fabric knetsim models.
//! - `<prefix>x` holds the scenario's external hosts on its `eth0`.
//! - `<prefix>n<i>`, one per node: `eth0` with the node's addresses, a veth per pod (named as
//!   the routes name it), the main-table routes `knetsim routes` prints (those the kernel does
//!   not add itself), and the rules `knetsim rules` prints.
//! - `<prefix>p<i>`, one per pod that is not on the host network: `eth0` with the pod's
//!   addresses and a default route to its node, as the CNI model wires it (see [`pod_side`]).
//!
//! Every link is created inside a namespace of the run with its peer placed in another one of
//! the run's namespaces in the same command (`link add A type veth peer name B netns NS`), so
//! no interface ever appears in the machine's namespace.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_control::state::{ClusterState, NamespacedName};
use knetsim_dataplane::routes::NextHop;
use knetsim_dataplane::{Cni, Dataplane};
use knetsim_ipam::Family;

use crate::sys;

/// The namespaces of one run.
#[derive(Clone, Debug)]
pub struct Topology {
    pub prefix: String,
    pub underlay: String,
    pub external: String,
    /// Node name → namespace.
    pub nodes: BTreeMap<String, String>,
    /// Pod → namespace (pods on the host network share their node's).
    pub pods: BTreeMap<NamespacedName, String>,
}

impl Topology {
    /// Names the namespaces of `state` under `prefix`.
    pub fn plan(state: &ClusterState, prefix: &str) -> Topology {
        let nodes: BTreeMap<String, String> = state
            .nodes
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), format!("{prefix}n{i}")))
            .collect();
        let mut pods = BTreeMap::new();
        let mut i = 0;
        for (nn, pod) in &state.pods {
            let Some(node) = pod.spec.node_name.as_ref().and_then(|n| nodes.get(n)) else {
                continue;
            };
            if pod.spec.host_network {
                pods.insert(nn.clone(), node.clone());
            } else if !pod.status.pod_ips.is_empty() {
                pods.insert(nn.clone(), format!("{prefix}p{i}"));
                i += 1;
            }
        }
        Topology {
            prefix: prefix.to_string(),
            underlay: format!("{prefix}u"),
            external: format!("{prefix}x"),
            nodes,
            pods,
        }
    }

    /// Every namespace, each once.
    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.underlay.clone(), self.external.clone()];
        v.extend(self.nodes.values().cloned());
        let node_ns: std::collections::BTreeSet<&String> = self.nodes.values().collect();
        v.extend(self.pods.values().filter(|p| !node_ns.contains(p)).cloned());
        v
    }
}

/// A node address with the underlay subnet's prefix length.
fn on_subnet(ip: IpAddr, net: &IpNet) -> String {
    format!("{ip}/{}", net.prefix_len())
}

fn host_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// ` nodad` for IPv6 addresses: duplicate address detection would hold the address
/// tentative (unusable) for a second, and nothing else can hold it in these namespaces.
fn nodad(ip: &IpAddr) -> &'static str {
    if ip.is_ipv6() { " nodad" } else { "" }
}

/// The IPv6 gateway every pod's default route names: a link-local address on the host side
/// of its veth (Calico uses fe80::ecee:eeff:feee:eeee the same way; the address only has to
/// be on-link).
const POD_GW6: &str = "fe80::1";
/// Calico's IPv4 gateway: answered by proxy ARP on the host side of the veth.
const CALICO_GW4: &str = "169.254.1.1";

/// The underlay namespace's batch: the bridge and gateways, a veth per node, the link to the
/// external namespace, and the router's routes.
pub fn underlay_batch(dp: &Dataplane, state: &ClusterState, t: &Topology) -> String {
    let mut b = String::from("link set lo up\nlink add br0 type bridge\nlink set br0 up\n");
    for (net, gw) in dp.fabric.underlay.values() {
        let _ = writeln!(b, "addr add {} dev br0{}", on_subnet(*gw, net), nodad(gw));
    }
    for (i, ns) in t.nodes.values().enumerate() {
        let _ = writeln!(b, "link add n{i} type veth peer name eth0 netns {ns}");
        let _ = writeln!(b, "link set n{i} master br0");
        let _ = writeln!(b, "link set n{i} up");
    }
    let _ = writeln!(
        b,
        "link add x0 type veth peer name eth0 netns {}",
        t.external
    );
    let _ = writeln!(b, "link set x0 up");
    let _ = writeln!(b, "addr add {POD_GW6}/64 dev x0 nodad");
    // What the fabric does with an address nobody routes: it is lost beyond the router (the
    // internet drops it), silently; an ICMP unreachable here would turn drops into rejects.
    b.push_str("route replace blackhole 0.0.0.0/0\nroute replace blackhole ::/0\n");
    for ip in &dp.fabric.external_hosts {
        let _ = writeln!(b, "route replace {ip}/{} dev x0", host_len(ip));
    }
    // Where the router sends addresses that belong to the cluster but to no node.
    let node_ip =
        |node: &str, family: Family| state.nodes.get(node).and_then(|n| n.internal_ip(family));
    for (nn, ips) in dp.load_balancer_ips() {
        for ip in ips {
            let family = Family::of_ip(ip);
            if let Some(via) = knetsim_dataplane::trace::announcing_node(dp, state, nn, family)
                .and_then(|n| node_ip(&n, family))
            {
                let _ = writeln!(b, "route replace {ip}/{} via {via} dev br0", host_len(ip));
            }
        }
    }
    let first = state.nodes.keys().next().cloned().unwrap_or_default();
    for svc in state.services.values() {
        for ip in &svc.spec.external_ips {
            if let Some(via) = node_ip(&first, Family::of_ip(ip)) {
                let _ = writeln!(b, "route replace {ip}/{} via {via} dev br0", host_len(ip));
            }
        }
    }
    for family in dp.families() {
        for (cidr, node) in dp.fabric.router_pod_routes(state, family) {
            if let Some(via) = node_ip(&node, family) {
                let _ = writeln!(b, "route replace {cidr} via {via} dev br0");
            }
        }
    }
    b
}

/// The external namespace's batch: the external hosts' addresses and a default route to the
/// router.
pub fn external_batch(dp: &Dataplane) -> String {
    let mut b = String::from("link set lo up\nlink set eth0 up\n");
    for ip in &dp.fabric.external_hosts {
        let _ = writeln!(b, "addr add {ip}/{} dev eth0{}", host_len(ip), nodad(ip));
    }
    if let Some(gw) = dp.fabric.gateway(Family::IPv4) {
        let _ = writeln!(b, "route replace default via {gw} dev eth0 onlink");
    }
    if dp.fabric.gateway(Family::IPv6).is_some() {
        let _ = writeln!(b, "route replace default via {POD_GW6} dev eth0");
    }
    b
}

/// The host-side interface of a pod on its node: the name the routes use (kubenet's pods hang
/// off `cbr0`, so theirs are numbered).
fn host_iface(dp: &Dataplane, nn: &NamespacedName, index: usize) -> String {
    match dp.fabric.cni {
        Cni::Kubenet => format!("veth{index}"),
        _ => dp.fabric.pod_iface(nn),
    }
}

/// A node namespace's batch: `eth0`, the pods' veths and host-side addresses, and the routes.
/// Also returns the host-side interfaces that need proxy ARP (Calico).
pub fn node_batch(
    dp: &Dataplane,
    state: &ClusterState,
    t: &Topology,
    node: &str,
    plugins: bool,
) -> (String, Vec<String>) {
    let mut b = String::from("link set lo up\nlink set eth0 up\n");
    let mut proxy_arp = Vec::new();
    let Some(n) = state.nodes.get(node) else {
        return (b, proxy_arp);
    };
    for ip in n.internal_ips() {
        if let Some((net, _)) = dp.fabric.underlay.get(&Family::of_ip(&ip)) {
            let _ = writeln!(b, "addr add {} dev eth0{}", on_subnet(ip, net), nodad(&ip));
        }
    }
    if let Cni::Kubenet = dp.fabric.cni {
        b.push_str("link add cbr0 type bridge\nlink set cbr0 up\n");
        for family in dp.families() {
            if let Some(cidr) = n.pod_cidr(family) {
                let gw = knetsim_ipam::family::nth_addr(&cidr, 1);
                let _ = writeln!(
                    b,
                    "addr add {gw}/{} dev cbr0{}",
                    cidr.prefix_len(),
                    nodad(&gw)
                );
            }
        }
    }
    for (i, (nn, ns)) in t.pods.iter().enumerate() {
        let Some(pod) = state.pods.get(nn) else {
            continue;
        };
        // With the real plugins, ptp creates the veth, its addresses and the pod's route.
        if pod.spec.node_name.as_deref() != Some(node) || pod.spec.host_network || plugins {
            continue;
        }
        let iface = host_iface(dp, nn, i);
        let _ = writeln!(b, "link add {iface} type veth peer name eth0 netns {ns}");
        match dp.fabric.cni {
            Cni::Kubenet => {
                let _ = writeln!(b, "link set {iface} master cbr0");
            }
            Cni::HostLocal => {
                // ptp (kindnet, host-local): the gateway address of the node's pod range, as
                // a host address, on the host side of every pod's veth (ptp's setupHostVeth).
                for family in dp.families() {
                    if let Some(gw) = n
                        .pod_cidr(family)
                        .map(|c| knetsim_ipam::family::nth_addr(&c, 1))
                    {
                        let _ = writeln!(
                            b,
                            "addr add {gw}/{} dev {iface}{}",
                            host_len(&gw),
                            nodad(&gw)
                        );
                    }
                }
            }
            Cni::Calico(_) => {
                proxy_arp.push(iface.clone());
                let _ = writeln!(b, "addr add {POD_GW6}/64 dev {iface} nodad");
            }
        }
        let _ = writeln!(b, "link set {iface} up");
    }
    for family in dp.families() {
        if let Some(table) = dp.node_routes(node, family) {
            for r in &table.main {
                // The kernel adds the connected and link-local routes with the addresses.
                if r.proto == Some("kernel") || matches!(r.next_hop, NextHop::Connected) {
                    continue;
                }
                if plugins && matches!(r.next_hop, NextHop::Pod { .. }) {
                    continue;
                }
                let line = r.render(family);
                let line = line.strip_suffix(" pref medium").unwrap_or(&line);
                let _ = writeln!(b, "route replace {line}");
            }
        }
    }
    (b, proxy_arp)
}

/// A pod namespace's batch: its addresses and default routes.
///
/// - host-local/ptp (kindnet): the address as a host route, default via the node range's
///   first address (on the host side of the veth) `onlink`; IPv6 via a link-local gateway.
/// - Calico: default via 169.254.1.1 (proxy ARP on the host side), IPv6 via link-local.
/// - kubenet: the address with the node range's length on the `cbr0` bridge, default via the
///   bridge's address.
pub fn pod_side(dp: &Dataplane, state: &ClusterState, nn: &NamespacedName) -> String {
    let mut b = String::from("link set lo up\nlink set eth0 up\n");
    let Some(pod) = state.pods.get(nn) else {
        return b;
    };
    let node = pod.spec.node_name.as_ref().and_then(|n| state.nodes.get(n));
    for ip in &pod.status.pod_ips {
        let family = Family::of_ip(ip);
        let cidr = node.and_then(|n| n.pod_cidr(family));
        let (len, gw) = match (&dp.fabric.cni, family, cidr) {
            (Cni::Kubenet | Cni::HostLocal, _, Some(c)) => (
                if matches!(dp.fabric.cni, Cni::Kubenet) {
                    c.prefix_len()
                } else {
                    host_len(ip)
                },
                knetsim_ipam::family::nth_addr(&c, 1).to_string(),
            ),
            (_, Family::IPv6, _) => (128, POD_GW6.to_string()),
            (_, Family::IPv4, _) => (32, CALICO_GW4.to_string()),
        };
        let _ = writeln!(b, "addr add {ip}/{len} dev eth0{}", nodad(ip));
        if len == host_len(ip) {
            // ptp and Calico: the gateway is reached as a host route on the veth.
            let _ = writeln!(b, "route replace {gw} dev eth0 scope link");
        }
        let _ = writeln!(b, "route replace default via {gw} dev eth0");
    }
    b
}

/// The sysctls of a router or node namespace: forwarding on, duplicate address detection off.
pub const FORWARDING: &[(&str, &str)] = &[
    // kube-proxy's REJECTs answer with ICMP errors, which the kernel rate-limits per
    // destination: a burst of probes would see some rejects as drops.
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv4/icmp_msgs_per_sec", "100000"),
    ("net/ipv6/icmp/ratelimit", "0"),
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
];
/// The sysctls of a pod or external namespace.
pub const END_HOST: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
];

/// Builds the whole cluster in its namespaces (already created): links, addresses, routes,
/// sysctls and each node's rules. With `plugins` (a directory for host-local's state), the
/// pods are wired by the real CNI plugins and each node's routes are compared with
/// knetsim's afterwards.
pub fn build(
    dp: &Dataplane,
    state: &ClusterState,
    t: &Topology,
    plugins: Option<&std::path::Path>,
) -> Result<Vec<crate::cni::RouteCheck>, String> {
    sys::sysctls(&t.underlay, FORWARDING)?;
    sys::sysctls(&t.external, END_HOST)?;
    for (node, ns) in &t.nodes {
        sys::sysctls(ns, FORWARDING)?;
        // The node's own settings (a node with forwarding off), before its interfaces exist
        // so that their per-interface copies inherit them.
        node_sysctls(state, node, ns)?;
    }
    let node_ns: std::collections::BTreeSet<&String> = t.nodes.values().collect();
    for ns in t.pods.values().filter(|p| !node_ns.contains(p)) {
        sys::sysctls(ns, END_HOST)?;
    }
    sys::ip_batch(&t.underlay, &underlay_batch(dp, state, t))?;
    sys::ip_batch(&t.external, &external_batch(dp))?;
    for (node, ns) in &t.nodes {
        let (batch, proxy_arp) = node_batch(dp, state, t, node, plugins.is_some());
        sys::ip_batch(ns, &batch)?;
        let keys: Vec<String> = proxy_arp
            .iter()
            .map(|i| format!("net/ipv4/conf/{i}/proxy_arp"))
            .collect();
        let settings: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "1")).collect();
        sys::sysctls(ns, &settings)?;
    }
    let mut checks = Vec::new();
    if let Some(data_dir) = plugins {
        // The sim's veth name → the plugin's, per node.
        let mut names: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (nn, ns) in &t.pods {
            if node_ns.contains(ns) {
                continue;
            }
            let Some(node) = state.pods.get(nn).and_then(|p| p.spec.node_name.clone()) else {
                continue;
            };
            let Some(node_ns) = t.nodes.get(&node) else {
                continue;
            };
            sys::ip_batch(ns, "link set lo up\n")?;
            let real = crate::cni::add(dp, state, node_ns, ns, nn, data_dir)?;
            names
                .entry(node)
                .or_default()
                .insert(dp.fabric.pod_iface(nn), real);
        }
        for (node, ns) in &t.nodes {
            // ptp turns forwarding on at every ADD (ip.EnableForward); the scenario's values
            // are the effective ones, as if set after the last pod came up.
            node_sysctls(state, node, ns)?;
            let empty = BTreeMap::new();
            checks.extend(crate::cni::check_routes(
                dp,
                node,
                ns,
                names.get(node).unwrap_or(&empty),
            )?);
        }
    } else {
        for (nn, ns) in &t.pods {
            if node_ns.contains(ns) {
                continue;
            }
            sys::ip_batch(ns, &pod_side(dp, state, nn))?;
        }
    }
    for (node, ns) in &t.nodes {
        load_rules(dp, node, ns)?;
    }
    Ok(checks)
}

/// Writes the node's `net.*` sysctls from the scenario in its namespace.
fn node_sysctls(state: &ClusterState, node: &str, ns: &str) -> Result<(), String> {
    let Some(n) = state.nodes.get(node) else {
        return Ok(());
    };
    let keys: Vec<(String, &str)> = n
        .sysctl
        .iter()
        .filter(|(k, _)| k.starts_with("net."))
        .map(|(k, v)| (k.replace('.', "/"), v.trim()))
        .collect();
    let settings: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    sys::sysctls(ns, &settings)
}

/// Loads a node's rules, from the text `knetsim rules` prints: ipsets first (Calico's
/// natOutgoing sets), then kube-proxy's nftables tables (nftables mode) and the iptables
/// tables (kube-proxy's in iptables mode, and the egress masquerade agents').
fn load_rules(dp: &Dataplane, node: &str, ns: &str) -> Result<(), String> {
    for family in dp.families() {
        let sets = dp.masq.ipsets(family);
        if !sets.is_empty() {
            sys::exec_in(ns, &["ipset", "restore", "-exist"], &sets)?;
        }
    }
    let nft = knetsim_dataplane::render_nft(dp, node);
    if !nft.is_empty() {
        sys::exec_in(ns, &["nft", "-f", "-"], &nft)?;
    }
    for family in dp.families() {
        let text = knetsim_dataplane::render_iptables_save(dp, node, family);
        let tool = match family {
            Family::IPv4 => "iptables-restore",
            Family::IPv6 => "ip6tables-restore",
        };
        sys::exec_in(ns, &[tool], &text)?;
    }
    Ok(())
}
