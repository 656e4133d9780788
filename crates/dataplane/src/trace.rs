//! `knetsim trace`: one packet, walked hop by hop through the simulated dataplane.
//!
//! The walk: the source's first hop (a pod's veth, a node's own stack, or the router for an
//! external host); the node where the packet meets kube-proxy's rules (evaluated with the
//! semantics of kube-proxy's own unit-test tracer, so a probabilistic choice lists every
//! endpoint); for each possible destination the route lookups, forwarding sysctls and
//! POSTROUTING masquerade on every node it crosses; the external network's return route; and
//! the reply path conntrack takes back.
//!
//! Query forms: source `ns/name` or `pod:ns/name`, `node:NAME`, `external` (the external host
//! of the family) or an IP; destination the same, or `svc:ns/name[:port]` (port by name or
//! number; the first port when omitted). `family` defaults to the destination's (for a
//! Service: the requested family, else its primary one); `proto` to tcp; `port` to the
//! Service port, else 80.

use std::fmt::Write as _;
use std::net::IpAddr;

use knetsim_control::state::{ClusterState, NamespacedName};
use knetsim_ipam::Family;
use serde::Serialize;

use crate::Dataplane;
use crate::masq::{MasqDecision, globally_routable};
use crate::proxy::{PacketCtx, Proto, split_host_port};
use crate::routes::NextHop;

/// What to trace.
#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    pub from: String,
    pub to: String,
    pub family: Option<Family>,
    pub proto: String,
    pub port: Option<u16>,
}

/// Where a packet starts or ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    /// `pod`, `node`, `external` or `service`.
    pub kind: &'static str,
    pub name: String,
    pub ip: IpAddr,
    /// The node a pod runs on (or the node itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One step of the walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// Where it happens: `pod ns/name`, a node name, `router`, `external`.
    pub at: String,
    /// `interface`, `route`, `rule`, `dnat`, `snat`, `sysctl`, `deliver`, `drop`, `reply`.
    pub kind: &'static str,
    pub text: String,
}

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    Dropped,
    Rejected,
}

/// One possible destination after kube-proxy's choice (or the only one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathResult {
    /// `ip:port` the packet is sent to.
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The source address the destination sees.
    pub seen_source: IpAddr,
    pub hops: Vec<Hop>,
    pub reply: Vec<Hop>,
}

/// A finished trace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    pub family: Family,
    pub proto: Proto,
    pub from: Place,
    pub to: Place,
    pub port: u16,
    /// Hops up to kube-proxy's decision.
    pub hops: Vec<Hop>,
    /// One per possible destination.
    pub paths: Vec<PathResult>,
    pub verdict: Outcome,
    /// `ip:port` of every destination reached.
    pub endpoints: Vec<String>,
    /// Whether the destination sees a source other than the sender's address.
    pub masqueraded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The trace of a packet its sender addresses to itself: delivered where it was sent, before
/// any node, rule or router sees it (a pod through its `lo`, an outside host locally).
fn delivered_to_itself(
    mut trace: Trace,
    mut hops: Vec<Hop>,
    at: String,
    dest: String,
    why: String,
    pod: Option<String>,
    src: IpAddr,
) -> Trace {
    let deliver = hop(at, "deliver", why);
    hops.push(deliver.clone());
    trace.hops = hops;
    trace.paths.push(PathResult {
        destination: dest.clone(),
        pod,
        outcome: Outcome::Delivered,
        reason: None,
        seen_source: src,
        hops: vec![deliver],
        reply: Vec::new(),
    });
    trace.verdict = Outcome::Delivered;
    trace.endpoints = vec![dest];
    trace
}

fn hop(at: impl Into<String>, kind: &'static str, text: impl Into<String>) -> Hop {
    Hop {
        at: at.into(),
        kind,
        text: text.into(),
    }
}

fn parse_nn(s: &str) -> Option<NamespacedName> {
    let (ns, name) = s.split_once('/')?;
    (!ns.is_empty() && !name.is_empty()).then(|| NamespacedName::new(ns, name))
}

/// A resolved endpoint of the query.
pub(crate) struct End {
    pub(crate) place: Place,
    pub(crate) pod: Option<NamespacedName>,
    pub(crate) host_network: bool,
}

fn resolve_host(
    dp: &Dataplane,
    state: &ClusterState,
    spec: &str,
    family: Option<Family>,
    role: &str,
) -> Result<Option<End>, String> {
    let fam_or =
        |f: Option<Family>, primary: Option<IpAddr>| f.or(primary.map(|ip| Family::of_ip(&ip)));
    if let Some(name) = spec.strip_prefix("node:") {
        let n = node_named(state, name, role)?;
        let fam = fam_or(family, n.internal_ips().next());
        let ip = fam
            .and_then(|f| n.internal_ip(f))
            .ok_or_else(|| format!("{role}: node {name} has no {} address", fam_name(fam)))?;
        return Ok(Some(End {
            place: Place {
                kind: "node",
                name: name.to_string(),
                ip,
                node: Some(name.to_string()),
            },
            pod: None,
            host_network: true,
        }));
    }
    if spec == "external" || spec == "internet" {
        let fam = family.unwrap_or(Family::IPv4);
        let ip = dp
            .fabric
            .external_hosts
            .iter()
            .copied()
            .find(|ip| Family::of_ip(ip) == fam)
            .ok_or_else(|| format!("{role}: the fabric has no {fam} external host"))?;
        return Ok(Some(End {
            place: Place {
                kind: "external",
                name: ip.to_string(),
                ip,
                node: None,
            },
            pod: None,
            host_network: false,
        }));
    }
    if let Ok(ip) = spec.parse::<IpAddr>() {
        if let Some(pod) = dp.fabric.pod_by_ip.get(&ip) {
            let node = state.pods.get(pod).and_then(|p| p.spec.node_name.clone());
            return Ok(Some(End {
                place: Place {
                    kind: "pod",
                    name: pod.to_string(),
                    ip,
                    node,
                },
                pod: Some(pod.clone()),
                host_network: false,
            }));
        }
        if let Some(node) = dp.fabric.node_by_ip.get(&ip) {
            return Ok(Some(End {
                place: Place {
                    kind: "node",
                    name: node.clone(),
                    ip,
                    node: Some(node.clone()),
                },
                pod: None,
                host_network: true,
            }));
        }
        return Ok(Some(End {
            place: Place {
                kind: "external",
                name: ip.to_string(),
                ip,
                node: None,
            },
            pod: None,
            host_network: false,
        }));
    }
    if spec.starts_with("svc:") {
        return Ok(None);
    }
    let (nn, pod) = pod_named(state, spec, role)?;
    let node = pod.spec.node_name.clone();
    if pod.spec.host_network {
        let n = node
            .as_deref()
            .and_then(|n| state.nodes.get(n))
            .ok_or_else(|| format!("{role}: pod {nn} is not scheduled"))?;
        let fam = fam_or(family, n.internal_ips().next());
        let ip = fam.and_then(|f| n.internal_ip(f)).ok_or_else(|| {
            format!(
                "{role}: pod {nn} (host network) has no {} address",
                fam_name(fam)
            )
        })?;
        return Ok(Some(End {
            place: Place {
                kind: "pod",
                name: nn.to_string(),
                ip,
                node,
            },
            pod: Some(nn),
            host_network: true,
        }));
    }
    let fam = fam_or(family, pod.status.pod_ips.first().copied());
    let ip = fam
        .and_then(|f| pod.ip_of(f))
        .ok_or_else(|| format!("{role}: pod {nn} has no {} address", fam_name(fam)))?;
    Ok(Some(End {
        place: Place {
            kind: "pod",
            name: nn.to_string(),
            ip,
            node,
        },
        pod: Some(nn),
        host_network: false,
    }))
}

fn node_named<'s>(
    state: &'s ClusterState,
    name: &str,
    role: &str,
) -> Result<&'s knetsim_control::state::Node, String> {
    state
        .nodes
        .get(name)
        .ok_or_else(|| format!("{role}: node {name:?} not found"))
}

/// The pod a `ns/name` or `pod:ns/name` spec names.
fn pod_named<'s>(
    state: &'s ClusterState,
    spec: &str,
    role: &str,
) -> Result<(NamespacedName, &'s knetsim_control::state::Pod), String> {
    let nn = parse_pod_spec(spec, role)?;
    let pod = state
        .pods
        .get(&nn)
        .ok_or_else(|| format!("{role}: pod {nn} not found"))?;
    Ok((nn, pod))
}

/// The name in a pod spec (`ns/name` or `pod:ns/name`).
fn parse_pod_spec(spec: &str, role: &str) -> Result<NamespacedName, String> {
    let pod_spec = spec.strip_prefix("pod:").unwrap_or(spec);
    parse_nn(pod_spec).ok_or_else(|| {
        format!("{role}: {spec:?} is not a pod (ns/name), node:NAME, svc:ns/name[:port], external or an IP")
    })
}

/// The Service's name and the port (by name or number) of a `svc:ns/name[:port]` destination
/// (`rest` follows `svc:`).
fn parse_service_spec<'r>(
    to: &str,
    rest: &'r str,
) -> Result<(NamespacedName, Option<&'r str>), String> {
    let (nn_s, port_s) = match rest.matches('/').count() {
        1 => match rest.rsplit_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        },
        _ => (rest, None),
    };
    let nn =
        parse_nn(nn_s).ok_or_else(|| format!("destination: {to:?} is not svc:ns/name[:port]"))?;
    Ok((nn, port_s))
}

/// Checks that a query's source or destination (`role`: `source` or `destination`) is written
/// as one — `node:NAME`, `external`, an IP, `svc:ns/name[:port]` (a destination only), or a
/// pod `ns/name` — with [`trace`]'s messages, without looking anything up. An error here is in
/// the query's text; an error of [`trace`] on a query that passes is about the cluster's state
/// (a name it does not hold, an address of a family it lacks).
pub fn check_syntax(spec: &str, role: &str) -> Result<(), String> {
    if let Some(name) = spec.strip_prefix("node:") {
        if name.is_empty() {
            return Err(format!("{role}: {spec:?} names no node"));
        }
    } else if let Some(rest) = spec.strip_prefix("svc:") {
        if role == "source" {
            return Err("source: a Service cannot send packets".to_string());
        }
        parse_service_spec(spec, rest)?;
    } else if spec != "external" && spec != "internet" && spec.parse::<IpAddr>().is_err() {
        parse_pod_spec(spec, role)?;
    }
    Ok(())
}

/// The Service and port a `svc:ns/name[:port]` destination names (`rest` follows `svc:`;
/// the port by name or number, the first one when omitted).
fn service_port<'s>(
    state: &'s ClusterState,
    to: &str,
    rest: &str,
) -> Result<
    (
        NamespacedName,
        &'s knetsim_control::state::Service,
        &'s knetsim_control::state::ServicePort,
    ),
    String,
> {
    let (nn, port_s) = parse_service_spec(to, rest)?;
    let svc = state
        .services
        .get(&nn)
        .ok_or_else(|| format!("destination: Service {nn} not found"))?;
    let sp = match port_s {
        None => svc.spec.ports.first(),
        Some(p) => svc
            .spec
            .ports
            .iter()
            .find(|sp| sp.name.as_deref() == Some(p) || p.parse::<u16>().ok() == Some(sp.port)),
    }
    .ok_or_else(|| {
        format!(
            "destination: Service {nn} has no port {}",
            port_s.unwrap_or("")
        )
    })?;
    Ok((nn, svc, sp))
}

/// Checks that a query's source or destination (`role`: `source` or `destination`) names
/// something that exists, with [`trace`]'s messages: the name lookups of a query, without
/// what depends on the family (an address of the family, a cluster IP of the family).
pub fn check_names(state: &ClusterState, spec: &str, role: &str) -> Result<(), String> {
    if let Some(name) = spec.strip_prefix("node:") {
        node_named(state, name, role)?;
    } else if let Some(rest) = spec.strip_prefix("svc:") {
        if role == "source" {
            return Err("source: a Service cannot send packets".to_string());
        }
        service_port(state, spec, rest)?;
    } else if spec != "external" && spec != "internet" && spec.parse::<IpAddr>().is_err() {
        pod_named(state, spec, role)?;
    }
    Ok(())
}

fn fam_name(f: Option<Family>) -> &'static str {
    f.map(|f| f.as_str()).unwrap_or("IP")
}

/// A query with every name looked up.
pub(crate) struct Resolved {
    pub(crate) from: End,
    pub(crate) to: Place,
    pub(crate) port: u16,
    pub(crate) family: Family,
    pub(crate) proto: Proto,
}

/// Traces one packet. `Err` when the query names something that does not exist.
pub fn trace(dp: &Dataplane, state: &ClusterState, q: &TraceQuery) -> Result<Trace, String> {
    let r = resolve(dp, state, q)?;
    let mut w = Walk {
        dp,
        state,
        family: r.family,
        proto: r.proto,
        port: r.port,
    };
    Ok(w.run(r.from, r.to))
}

/// Looks up the names of a query: where the packet starts, where it goes, its family,
/// protocol and port. The errors are [`trace`]'s.
pub(crate) fn resolve(
    dp: &Dataplane,
    state: &ClusterState,
    q: &TraceQuery,
) -> Result<Resolved, String> {
    let proto = parse_proto(&q.proto)?;
    // Destination first: it decides the family when none is given.
    let (to, port) = resolve_destination(dp, state, &q.to, q.family, q.port)?;
    let family = Family::of_ip(&to.ip);
    let from = resolve_source(dp, state, &q.from, family)?;
    Ok(Resolved {
        from,
        to,
        port,
        family,
        proto,
    })
}

/// A query's protocol (tcp when empty).
pub(crate) fn parse_proto(proto: &str) -> Result<Proto, String> {
    let proto_s = if proto.is_empty() { "tcp" } else { proto };
    Proto::parse(proto_s).ok_or_else(|| format!("unknown protocol {proto_s:?}"))
}

/// Where a query's packet goes, and its destination port: the first half of [`resolve`].
/// The packet's family is the destination address's.
pub(crate) fn resolve_destination(
    dp: &Dataplane,
    state: &ClusterState,
    to: &str,
    family: Option<Family>,
    port: Option<u16>,
) -> Result<(Place, u16), String> {
    let (place, port) = if let Some(rest) = to.strip_prefix("svc:") {
        let (nn, svc, sp) = service_port(state, to, rest)?;
        let fam = family
            .or_else(|| svc.spec.ip_families.first().copied())
            .unwrap_or(Family::IPv4);
        let Some(cip) = svc.spec.cluster_ip_of(fam) else {
            return Err(format!("destination: Service {nn} has no {fam} cluster IP"));
        };
        (
            Place {
                kind: "service",
                name: format!(
                    "{nn}:{}",
                    sp.name.clone().unwrap_or_else(|| sp.port.to_string())
                ),
                ip: cip,
                node: None,
            },
            sp.port,
        )
    } else {
        let end = resolve_host(dp, state, to, family, "destination")?
            .ok_or_else(|| "destination: unknown".to_string())?;
        (end.place, port.unwrap_or(80))
    };
    if let Some(f) = family
        && f != Family::of_ip(&place.ip)
    {
        return Err(format!("destination {} is not {f}", place.ip));
    }
    Ok((place, port))
}

/// Where a query's packet starts, in the destination's family: the second half of
/// [`resolve`].
pub(crate) fn resolve_source(
    dp: &Dataplane,
    state: &ClusterState,
    from: &str,
    family: Family,
) -> Result<End, String> {
    let end = resolve_host(dp, state, from, Some(family), "source")?
        .ok_or_else(|| "source: a Service cannot send packets".to_string())?;
    if Family::of_ip(&end.place.ip) != family {
        return Err(format!("source {} is not {family}", end.place.ip));
    }
    Ok(end)
}

pub(crate) struct Walk<'a> {
    pub(crate) dp: &'a Dataplane,
    pub(crate) state: &'a ClusterState,
    pub(crate) family: Family,
    pub(crate) proto: Proto,
    pub(crate) port: u16,
}

/// How the packet meets its first netfilter hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Sent by a pod on this node (through its veth).
    LocalPod,
    /// Sent by the node's own stack (or a host-network pod).
    Host,
    /// Arrived from the underlay.
    Wire,
}

pub(crate) fn sysctl_forwarding(state: &ClusterState, node: &str, family: Family) -> bool {
    let Some(n) = state.nodes.get(node) else {
        return true;
    };
    let keys: &[&str] = match family {
        Family::IPv4 => &["net.ipv4.conf.all.forwarding", "net.ipv4.ip_forward"],
        Family::IPv6 => &["net.ipv6.conf.all.forwarding"],
    };
    // Default "1": a node running a CNI plugin has forwarding on (kubeadm's preflight
    // requires it for IPv4, and CNI plugins enable it for the families they configure).
    keys.iter()
        .find_map(|k| n.sysctl(k))
        .map(|v| v.trim() != "0")
        .unwrap_or(true)
}

impl Walk<'_> {
    fn node_ips(&self, node: &str) -> Vec<IpAddr> {
        self.state
            .nodes
            .get(node)
            .map(|n| {
                n.internal_ips()
                    .filter(|ip| Family::of_ip(ip) == self.family)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn node_ip(&self, node: &str) -> Option<IpAddr> {
        self.state
            .nodes
            .get(node)
            .and_then(|n| n.internal_ip(self.family))
    }

    /// The address MASQUERADE gives a packet leaving `node` towards one of its pods.
    fn pod_side_masq_source(&self, node: &str) -> Option<IpAddr> {
        let cidr = self
            .state
            .nodes
            .get(node)
            .and_then(|n| n.pod_cidr(self.family));
        self.dp
            .fabric
            .pod_side_masq_source(cidr, self.node_ip(node))
    }

    /// Whether kube-proxy's rules on `node` decide anything (DNAT, accept, drop, reject) for a
    /// packet the node itself sends from `from` to `to`.
    fn rewrites_here(&self, node: &str, from: &End, to: &Place) -> bool {
        let Some(rules) = self.dp.rules(node, self.family) else {
            return false;
        };
        let node_ips = self.node_ips(node);
        let p = PacketCtx {
            src: from.place.ip,
            dst: to.ip,
            proto: self.proto,
            dport: self.port,
            src_is_local: from.place.ip.is_loopback() || node_ips.contains(&from.place.ip),
            node_ips,
            from_local_pod: false,
        };
        !rules.trace(&p).outputs.is_empty()
    }

    fn run(&mut self, from: End, to: Place) -> Trace {
        let mut hops = Vec::new();
        let fam = self.family;
        let mut trace = Trace {
            family: fam,
            proto: self.proto,
            from: from.place.clone(),
            to: to.clone(),
            port: self.port,
            hops: Vec::new(),
            paths: Vec::new(),
            verdict: Outcome::Dropped,
            endpoints: Vec::new(),
            masqueraded: false,
            reason: None,
        };
        // 1. Where the packet meets netfilter first.
        let (ingress, origin) = match from.place.kind {
            "pod" if !from.host_network => {
                let Some(node) = from.place.node.clone() else {
                    trace.reason = Some(format!("pod {} is not scheduled", from.place.name));
                    return trace;
                };
                let iface = from
                    .pod
                    .as_ref()
                    .map(|p| self.dp.fabric.pod_iface(p))
                    .unwrap_or_default();
                hops.push(hop(
                    format!("pod {}", from.place.name),
                    "interface",
                    format!(
                        "eth0 {} -> {iface} on {node} ({} {})",
                        from.place.ip,
                        self.proto.as_str(),
                        crate::proxy::model::join_host_port(to.ip, self.port)
                    ),
                ));
                (node, Origin::LocalPod)
            }
            "pod" | "node" => {
                let node = from.place.node.clone().unwrap_or_default();
                hops.push(hop(
                    node.clone(),
                    "interface",
                    format!(
                        "sent by the host stack from {} ({} {})",
                        from.place.ip,
                        self.proto.as_str(),
                        crate::proxy::model::join_host_port(to.ip, self.port)
                    ),
                ));
                (node, Origin::Host)
            }
            // A host outside the cluster sending to its own address delivers it locally: the
            // packet never reaches the router (emulation showed `external -> external`).
            _ if to.ip == from.place.ip => {
                let dest = crate::proxy::model::join_host_port(to.ip, self.port);
                let why = format!("{dest} is the sender's own address: delivered locally");
                let at = from.place.name.clone();
                return delivered_to_itself(trace, hops, at, dest, why, None, from.place.ip);
            }
            _ => match self.external_ingress(&to, &mut hops) {
                Ok(node) => (node, Origin::Wire),
                Err(reason) => {
                    hops.push(hop("router", "drop", reason.clone()));
                    trace.hops = hops;
                    trace.reason = Some(reason);
                    return trace;
                }
            },
        };

        // A pod sending to its own address: the kernel routes it through the pod's `lo`, so
        // it never leaves the pod's network namespace and no node or rule sees it.
        if origin == Origin::LocalPod && to.ip == from.place.ip {
            let dest = crate::proxy::model::join_host_port(to.ip, self.port);
            let why = format!("{dest} is the pod's own address: delivered through its lo");
            let at = format!("pod {}", from.place.name);
            let pod = from.pod.as_ref().map(|p| p.to_string());
            return delivered_to_itself(trace, hops, at, dest, why, pod, from.place.ip);
        }

        // A node's packet to another node's address: its own kube-proxy rules match only
        // local destinations (NodePorts: `--dst-type LOCAL`, `fib daddr type local`), so it
        // leaves unchanged and meets netfilter again, as a packet from the wire, on the node
        // that has the address.
        let (ingress, origin) = match (origin, to.kind, to.node.as_ref()) {
            (Origin::Host, "node", Some(dst_node))
                if *dst_node != ingress && !self.rewrites_here(&ingress, &from, &to) =>
            {
                hops.push(hop(
                    ingress.clone(),
                    "interface",
                    format!(
                        "eth0 -> {dst_node}: {} is not local here, no NodePort rule matches",
                        to.ip
                    ),
                ));
                (dst_node.clone(), Origin::Wire)
            }
            _ => (ingress, origin),
        };

        // 2. kube-proxy on the ingress node.
        let mut candidates: Vec<(IpAddr, u16)> = vec![(to.ip, self.port)];
        let mut kube_masq = false;
        let mut any_hairpin_mark = false;
        if let Some(rules) = self.dp.rules(&ingress, fam) {
            let node_ips = self.node_ips(&ingress);
            let p = PacketCtx {
                src: from.place.ip,
                dst: to.ip,
                proto: self.proto,
                dport: self.port,
                src_is_local: from.place.ip.is_loopback() || node_ips.contains(&from.place.ip),
                node_ips,
                from_local_pod: origin == Origin::LocalPod,
            };
            let res = rules.trace(&p);
            for m in &res.matches {
                hops.push(hop(
                    ingress.clone(),
                    "rule",
                    format!("{} {} {}: {}", rules.mode(), m.table, m.chain, m.rule),
                ));
            }
            // kube-proxy's own test tracer keeps one masquerade flag for the whole walk, but the
            // hairpin rule in an endpoint's chain (`-s <endpoint> -j KUBE-MARK-MASQ`) marks only
            // packets DNATed to that same endpoint: a mark set in an endpoint chain belongs to
            // that endpoint's path, a mark set anywhere else to every path.
            kube_masq = res.masq
                && res
                    .matches
                    .iter()
                    .any(|m| marks_for_masquerade(&m.rule) && !is_endpoint_chain(&m.chain));
            any_hairpin_mark = res.masq
                && res
                    .matches
                    .iter()
                    .any(|m| marks_for_masquerade(&m.rule) && is_endpoint_chain(&m.chain));
            let terminal: Vec<&String> = res
                .outputs
                .iter()
                .filter(|o| matches!(o.as_str(), "DROP" | "REJECT"))
                .collect();
            if let Some(t) = terminal.first() {
                let comment = res
                    .matches
                    .iter()
                    .rev()
                    .find_map(|m| extract_comment(&m.rule))
                    .unwrap_or_default();
                let reason = self.explain_block(&to, t, &comment, &ingress);
                hops.push(hop(ingress.clone(), "drop", reason.clone()));
                trace.hops = hops;
                trace.verdict = if t.as_str() == "REJECT" {
                    Outcome::Rejected
                } else {
                    Outcome::Dropped
                };
                trace.reason = Some(reason);
                return trace;
            }
            if res.outputs.iter().any(|o| o == "ACCEPT") {
                hops.push(hop(
                    ingress.clone(),
                    "deliver",
                    format!("accepted for the node's own listener on port {}", self.port),
                ));
                trace.hops = hops;
                trace.verdict = Outcome::Delivered;
                trace.endpoints = vec![crate::proxy::model::join_host_port(to.ip, self.port)];
                return trace;
            }
            let eps: Vec<(IpAddr, u16)> = res
                .outputs
                .iter()
                .filter_map(|o| split_host_port(o))
                .collect();
            if !eps.is_empty() {
                for (ip, port) in &eps {
                    hops.push(hop(
                        ingress.clone(),
                        "dnat",
                        format!(
                            "DNAT {} -> {}{}",
                            crate::proxy::model::join_host_port(to.ip, self.port),
                            crate::proxy::model::join_host_port(*ip, *port),
                            if kube_masq || (res.masq && *ip == from.place.ip) {
                                " (marked for masquerade 0x4000)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                candidates = eps;
            } else if to.kind == "service" {
                let reason = format!(
                    "no kube-proxy rule on {ingress} matches {} {}",
                    self.proto.as_str(),
                    crate::proxy::model::join_host_port(to.ip, self.port)
                );
                hops.push(hop(ingress.clone(), "drop", reason.clone()));
                trace.hops = hops;
                trace.reason = Some(reason);
                return trace;
            }
        } else if to.kind == "service" {
            let reason = match &self.dp.proxy_problem {
                Some(p) => format!("no Service rules on {ingress}: {p}"),
                None => format!("no Service rules on {ingress}"),
            };
            hops.push(hop(ingress.clone(), "drop", reason.clone()));
            trace.hops = hops;
            trace.reason = Some(reason);
            return trace;
        }
        trace.hops = hops;

        // 3. Every possible destination.
        let hairpin_marked = any_hairpin_mark;
        for (ip, port) in candidates {
            // The hairpin mark: the packet goes back to the pod that sent it.
            let hairpin = ip == from.place.ip;
            let path = self.forward(
                &from,
                &to,
                &ingress,
                origin,
                ip,
                port,
                kube_masq || hairpin_marked && hairpin,
            );
            trace.paths.push(path);
        }
        let delivered: Vec<&PathResult> = trace
            .paths
            .iter()
            .filter(|p| p.outcome == Outcome::Delivered)
            .collect();
        trace.endpoints = delivered.iter().map(|p| p.destination.clone()).collect();
        trace.masqueraded = delivered.iter().any(|p| p.seen_source != from.place.ip);
        if delivered.is_empty() {
            trace.verdict = Outcome::Dropped;
            trace.reason = trace.paths.iter().find_map(|p| p.reason.clone());
        } else {
            trace.verdict = Outcome::Delivered;
            if delivered.len() < trace.paths.len() {
                trace.reason = trace
                    .paths
                    .iter()
                    .find(|p| p.outcome != Outcome::Delivered)
                    .and_then(|p| p.reason.clone())
                    .map(|r| format!("some endpoints are unreachable: {r}"));
            }
        }
        trace
    }

    /// Words for a DROP/REJECT by kube-proxy.
    fn explain_block(&self, to: &Place, target: &str, comment: &str, node: &str) -> String {
        let svc = comment
            .split(" has no")
            .next()
            .map(|s| s.split(':').next().unwrap_or(s).to_string())
            .unwrap_or_default();
        let verb = if target == "REJECT" {
            "rejected"
        } else {
            "dropped"
        };
        if comment.ends_with("has no endpoints") {
            format!(
                "Service {svc} has no {} endpoints ({verb} by kube-proxy on {node}: \"{comment}\")",
                self.family
            )
        } else if comment.ends_with("has no local endpoints") {
            format!(
                "Service {svc} has no {} endpoints on {node} and its traffic policy is Local ({verb} by kube-proxy: \"{comment}\")",
                self.family
            )
        } else if comment.contains("traffic not accepted by") {
            format!(
                "source is outside the Service's loadBalancerSourceRanges ({verb} by kube-proxy on {node}: \"{comment}\")"
            )
        } else if comment.is_empty() {
            format!(
                "{verb} by kube-proxy on {node} ({} {})",
                self.proto.as_str(),
                crate::proxy::model::join_host_port(to.ip, self.port)
            )
        } else {
            format!("{verb} by kube-proxy on {node}: \"{comment}\"")
        }
    }

    /// Where a packet from outside the cluster enters it.
    pub(crate) fn external_ingress(
        &self,
        to: &Place,
        hops: &mut Vec<Hop>,
    ) -> Result<String, String> {
        let dst = to.ip;
        hops.push(hop(
            "external",
            "interface",
            format!(
                "sent to {} via the router",
                crate::proxy::model::join_host_port(dst, self.port)
            ),
        ));
        if let Some(node) = self.dp.fabric.node_by_ip.get(&dst) {
            hops.push(hop(
                "router",
                "route",
                format!("{dst} is on the underlay: to {node}"),
            ));
            return Ok(node.clone());
        }
        // Load-balancer IPs: the load balancer hands the packet to one node (MetalLB L2:
        // the announcing node; with externalTrafficPolicy Local, a node with a local
        // endpoint).
        for (nn, ips) in self.dp.load_balancer_ips() {
            if !ips.contains(&dst) {
                continue;
            }
            let node = self.announcing_node(nn);
            return match node {
                Some(n) => {
                    hops.push(hop(
                        "router",
                        "route",
                        format!("{dst} is the load-balancer IP of {nn}: handed to {n}"),
                    ));
                    Ok(n)
                }
                None => Err(format!("no node announces load-balancer IP {dst}")),
            };
        }
        for (nn, svc) in &self.state.services {
            if svc.spec.external_ips.contains(&dst) {
                let node = self
                    .state
                    .nodes
                    .keys()
                    .next()
                    .cloned()
                    .ok_or_else(|| "the cluster has no nodes".to_string())?;
                hops.push(hop(
                    "router",
                    "route",
                    format!("{dst} is an external IP of {nn}: routed to {node}"),
                ));
                return Ok(node);
            }
        }
        for (cidr, node) in self.dp.fabric.router_pod_routes(self.state, self.family) {
            if cidr.contains(&dst) {
                hops.push(hop(
                    "router",
                    "route",
                    format!("{cidr} via {node} (cloud route)"),
                ));
                return Ok(node);
            }
        }
        Err(format!("no route to {dst} on the router"))
    }

    fn announcing_node(&self, nn: &NamespacedName) -> Option<String> {
        announcing_node(self.dp, self.state, nn, self.family)
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        from: &End,
        to: &Place,
        ingress: &str,
        origin: Origin,
        dst: IpAddr,
        port: u16,
        kube_masq: bool,
    ) -> PathResult {
        let dest = crate::proxy::model::join_host_port(dst, port);
        let mut path = PathResult {
            destination: dest.clone(),
            pod: self.dp.fabric.pod_by_ip.get(&dst).map(|p| p.to_string()),
            outcome: Outcome::Dropped,
            reason: None,
            seen_source: from.place.ip,
            hops: Vec::new(),
            reply: Vec::new(),
        };
        let fam = self.family;
        let mut node = ingress.to_string();
        let mut src = from.place.ip;
        let mut origin = origin;
        let mut snat_at: Option<(String, IpAddr)> = None;
        let mut masq_pending = kube_masq;
        for _ in 0..8 {
            let Some(table) = self.dp.node_routes(&node, fam) else {
                path.reason = Some(format!("node {node} not found"));
                return path;
            };
            let Some(route) = table.lookup(dst) else {
                let r = format!("no route to {dst} on {node}");
                path.hops.push(hop(node.clone(), "drop", r.clone()));
                path.reason = Some(r);
                return path;
            };
            path.hops.push(hop(
                node.clone(),
                "route",
                format!("{dst}: {}", route.render(fam)),
            ));
            let leaves_host = !matches!(route.next_hop, NextHop::Local);
            // Forwarding: a packet that came from a pod or the wire and leaves again.
            if leaves_host && origin != Origin::Host && !sysctl_forwarding(self.state, &node, fam) {
                let r = format!("{fam} forwarding is disabled on {node}");
                let key = match fam {
                    Family::IPv4 => "net.ipv4.conf.all.forwarding",
                    Family::IPv6 => "net.ipv6.conf.all.forwarding",
                };
                path.hops
                    .push(hop(node.clone(), "sysctl", format!("{key} = 0")));
                path.hops.push(hop(node.clone(), "drop", r.clone()));
                path.reason = Some(r);
                return path;
            }
            match &route.next_hop {
                NextHop::Local => {
                    path.hops.push(hop(
                        node.clone(),
                        "deliver",
                        format!("delivered to the host stack of {node} ({dest})"),
                    ));
                    path.outcome = Outcome::Delivered;
                    break;
                }
                NextHop::Blackhole => {
                    let r = format!("blackhole route {} on {node}: no pod has {dst}", route.dst);
                    path.hops.push(hop(node.clone(), "drop", r.clone()));
                    path.reason = Some(r);
                    return path;
                }
                NextHop::Pod { .. } | NextHop::Bridge => {
                    let pod = self.dp.fabric.pod_by_ip.get(&dst).cloned();
                    let on_this_node = pod
                        .as_ref()
                        .and_then(|p| self.state.pods.get(p))
                        .and_then(|p| p.spec.node_name.clone())
                        == Some(node.clone());
                    if !on_this_node {
                        let r = format!("no pod has {dst} on {node}");
                        path.hops.push(hop(node.clone(), "drop", r.clone()));
                        path.reason = Some(r);
                        return path;
                    }
                    if masq_pending {
                        let to_ip = self.pod_side_masq_source(&node).unwrap_or(src);
                        path.hops.push(hop(
                            node.clone(),
                            "snat",
                            format!("KUBE-POSTROUTING: MASQUERADE {src} -> {to_ip}"),
                        ));
                        snat_at = Some((node.clone(), src));
                        src = to_ip;
                    }
                    let pname = pod.map(|p| p.to_string()).unwrap_or_default();
                    path.hops.push(hop(
                        node.clone(),
                        "deliver",
                        format!(
                            "{} -> pod {pname} eth0 {dest}",
                            route.dev.clone().unwrap_or_default()
                        ),
                    ));
                    path.outcome = Outcome::Delivered;
                    break;
                }
                NextHop::Node { .. } | NextHop::Connected
                    if leaves_host
                        && !matches!(route.next_hop, NextHop::Connected if !self.dp.fabric.node_by_ip.contains_key(&dst)) =>
                {
                    let next = match &route.next_hop {
                        NextHop::Node { node } => Some(node.clone()),
                        _ => self.dp.fabric.node_by_ip.get(&dst).cloned(),
                    };
                    // POSTROUTING on the way out.
                    src = self.postrouting(
                        &node,
                        src,
                        dst,
                        &mut masq_pending,
                        &mut snat_at,
                        &mut path,
                        origin,
                    );
                    let Some(next) = next else {
                        let r = format!("no host has {dst} on the underlay");
                        path.hops.push(hop(node.clone(), "drop", r.clone()));
                        path.reason = Some(r);
                        return path;
                    };
                    path.hops
                        .push(hop(node.clone(), "interface", format!("eth0 -> {next}")));
                    node = next;
                    origin = Origin::Wire;
                }
                NextHop::Gateway | NextHop::Connected => {
                    src = self.postrouting(
                        &node,
                        src,
                        dst,
                        &mut masq_pending,
                        &mut snat_at,
                        &mut path,
                        origin,
                    );
                    path.hops
                        .push(hop(node.clone(), "interface", "eth0 -> router"));
                    // At the router.
                    if let Some(n) = self.dp.fabric.node_by_ip.get(&dst) {
                        node = n.clone();
                        origin = Origin::Wire;
                        continue;
                    }
                    if let Some((cidr, n)) = self
                        .dp
                        .fabric
                        .router_pod_routes(self.state, fam)
                        .into_iter()
                        .find(|(c, _)| c.contains(&dst))
                    {
                        path.hops.push(hop(
                            "router",
                            "route",
                            format!("{cidr} via {n} (cloud route)"),
                        ));
                        node = n;
                        origin = Origin::Wire;
                        continue;
                    }
                    if self.is_cluster_address(dst) {
                        let r = format!("no route to {dst} on the router");
                        path.hops.push(hop("router", "drop", r.clone()));
                        path.reason = Some(r);
                        return path;
                    }
                    // Out to the external network: can the reply come back?
                    let in_underlay = self
                        .dp
                        .fabric
                        .underlay
                        .get(&fam)
                        .is_some_and(|(net, _)| net.contains(&src));
                    if !in_underlay {
                        let back = self
                            .dp
                            .fabric
                            .router_pod_routes(self.state, fam)
                            .iter()
                            .any(|(c, _)| c.contains(&src));
                        if let Err(why) = globally_routable(src) {
                            let r = format!(
                                "the external network has no route back to {src}: {why}, so replies from {dst} cannot return (the source was not masqueraded)"
                            );
                            path.hops.push(hop("external", "drop", r.clone()));
                            path.reason = Some(r);
                            return path;
                        }
                        if !back {
                            let r = format!(
                                "the router has no route back to {src}, so replies from {dst} cannot return"
                            );
                            path.hops.push(hop("router", "drop", r.clone()));
                            path.reason = Some(r);
                            return path;
                        }
                    }
                    path.hops.push(hop(
                        "router",
                        "route",
                        format!(
                            "default: to the external network{}",
                            if in_underlay {
                                " (the router translates underlay sources)"
                            } else {
                                ""
                            }
                        ),
                    ));
                    path.hops
                        .push(hop("external", "deliver", format!("delivered to {dest}")));
                    path.outcome = Outcome::Delivered;
                    break;
                }
                NextHop::Node { .. } => {
                    let r = format!("no route to {dst} on {node}");
                    path.reason = Some(r);
                    return path;
                }
            }
        }
        if path.outcome != Outcome::Delivered {
            path.reason
                .get_or_insert_with(|| format!("routing loop towards {dst}"));
            return path;
        }
        path.seen_source = src;
        // The reply: conntrack reverses the NATs on the nodes that applied them.
        let mut reply = Vec::new();
        reply.push(hop(
            path.pod
                .clone()
                .map(|p| format!("pod {p}"))
                .unwrap_or_else(|| dest.clone()),
            "reply",
            format!("{dest} -> {src}"),
        ));
        if let Some((n, orig)) = &snat_at {
            reply.push(hop(
                n.clone(),
                "reply",
                format!("conntrack: un-SNAT destination {src} -> {orig}"),
            ));
        }
        if to.ip != dst || to.kind == "service" {
            reply.push(hop(
                ingress.to_string(),
                "reply",
                format!(
                    "conntrack: un-DNAT source {dest} -> {}",
                    crate::proxy::model::join_host_port(to.ip, self.port)
                ),
            ));
        }
        reply.push(hop(
            from.place.name.clone(),
            "reply",
            format!("received by {} {}", from.place.kind, from.place.name),
        ));
        path.reply = reply;
        path
    }

    fn is_cluster_address(&self, ip: IpAddr) -> bool {
        self.state
            .network
            .cluster_cidrs
            .iter()
            .any(|c| c.contains(&ip))
            || self
                .state
                .network
                .service_cidrs
                .iter()
                .any(|c| c.contains(&ip))
            || self.dp.fabric.pod_by_ip.contains_key(&ip)
    }

    /// nat POSTROUTING on `node` for a packet leaving through eth0: kube-proxy's
    /// KUBE-POSTROUTING (when the packet was marked), else the egress masquerade agent (for
    /// traffic from pods).
    #[allow(clippy::too_many_arguments)]
    fn postrouting(
        &self,
        node: &str,
        src: IpAddr,
        dst: IpAddr,
        masq_pending: &mut bool,
        snat_at: &mut Option<(String, IpAddr)>,
        path: &mut PathResult,
        origin: Origin,
    ) -> IpAddr {
        let node_ip = self.node_ip(node).unwrap_or(src);
        if *masq_pending {
            *masq_pending = false;
            path.hops.push(hop(
                node.to_string(),
                "snat",
                format!("KUBE-POSTROUTING: MASQUERADE {src} -> {node_ip} (\"kubernetes service traffic requiring SNAT\")"),
            ));
            *snat_at = Some((node.to_string(), src));
            return node_ip;
        }
        if snat_at.is_some() || origin == Origin::Host || self.node_ips(node).contains(&src) {
            return src;
        }
        let d: MasqDecision = self.dp.masq.decide(src, dst);
        if d.masquerade {
            path.hops.push(hop(
                node.to_string(),
                "snat",
                format!(
                    "{}: MASQUERADE {src} -> {node_ip} ({})",
                    d.agent.unwrap_or(""),
                    d.rule.unwrap_or_default()
                ),
            ));
            *snat_at = Some((node.to_string(), src));
            node_ip
        } else {
            let why = d
                .rule
                .map(|r| format!("{}: {r}", d.agent.unwrap_or("")))
                .or(d.reason)
                .unwrap_or_else(|| "no masquerade rule applies".to_string());
            path.hops.push(hop(
                node.to_string(),
                "snat",
                format!("not masqueraded ({why})"),
            ));
            src
        }
    }
}

fn extract_comment(rule: &str) -> Option<String> {
    let i = rule.find("--comment \"")?;
    let rest = &rule[i + 11..];
    let j = rest.find('"')?;
    Some(rest[..j].to_string())
}

/// Renders a trace for people.
pub fn render_trace_text(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {} {} {} ({}) -> {} {} ({}), {}",
        t.proto.as_str(),
        t.from.kind,
        t.from.name,
        t.from.ip,
        t.to.kind,
        t.to.name,
        crate::proxy::model::join_host_port(t.to.ip, t.port),
        t.family
    );
    let mut n = 0;
    let mut line = |out: &mut String, h: &Hop, indent: &str| {
        n += 1;
        let _ = writeln!(out, "{indent}{n:>3}. [{}] {}: {}", h.at, h.kind, h.text);
    };
    for h in &t.hops {
        line(&mut out, h, "");
    }
    for p in &t.paths {
        let _ = writeln!(
            out,
            "  -> {}{}: {}",
            p.destination,
            p.pod
                .as_ref()
                .map(|p| format!(" (pod {p})"))
                .unwrap_or_default(),
            match p.outcome {
                Outcome::Delivered => "delivered".to_string(),
                Outcome::Dropped => format!("dropped: {}", p.reason.clone().unwrap_or_default()),
                Outcome::Rejected => format!("rejected: {}", p.reason.clone().unwrap_or_default()),
            }
        );
        for h in &p.hops {
            line(&mut out, h, "    ");
        }
        if !p.reply.is_empty() {
            let _ = writeln!(out, "     reply:");
            for h in &p.reply {
                line(&mut out, h, "    ");
            }
        }
    }
    let verdict = match t.verdict {
        Outcome::Delivered => format!("delivered to {}", t.endpoints.join(", ")),
        Outcome::Dropped => "dropped".to_string(),
        Outcome::Rejected => "rejected".to_string(),
    };
    let _ = writeln!(out, "verdict: {verdict}");
    if let Some(r) = &t.reason {
        let _ = writeln!(out, "reason: {r}");
    }
    let _ = writeln!(
        out,
        "masqueraded: {}",
        if t.masqueraded { "yes" } else { "no" }
    );
    out
}

/// Whether a rule jumps to kube-proxy's mark-for-masquerade chain (iptables or nftables).
fn marks_for_masquerade(rule: &str) -> bool {
    rule.contains("-j KUBE-MARK-MASQ") || rule.contains("jump mark-for-masquerade")
}

/// Whether a chain is one endpoint's (iptables `KUBE-SEP-…`, nftables `endpoint-…`).
fn is_endpoint_chain(chain: &str) -> bool {
    chain.starts_with("KUBE-SEP-") || chain.starts_with("endpoint-")
}

/// The node a load-balancer IP of Service `nn` is handed to (MetalLB L2: the announcing
/// node; with externalTrafficPolicy Local, a node with a ready local endpoint), in `family`.
pub fn announcing_node(
    dp: &Dataplane,
    state: &ClusterState,
    nn: &NamespacedName,
    family: Family,
) -> Option<String> {
    let svc = state.services.get(nn)?;
    let local = svc.spec.external_traffic_policy.as_deref() == Some("Local");
    if local {
        let model = dp.family_model(family)?;
        for sp in model.ports.iter().filter(|p| p.is_of(nn)) {
            for e in sp.endpoints.iter().filter(|e| e.ready) {
                if let Some(n) = model.node_name(e) {
                    return Some(n.to_string());
                }
            }
        }
    }
    state.nodes.keys().next().cloned()
}
