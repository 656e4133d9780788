//! kube-proxy's view of Services and endpoints for one IP family: what its
//! `ServiceChangeTracker` and `EndpointsChangeTracker` hand to `syncProxyRules`.
//!
//! Built once per family for the whole cluster; the per-node parts (which endpoints are local,
//! which node addresses accept NodePorts) are decided later, per node, in [`super::NodeCtx`].
//! Chain names are hashed here, once, so that generating rules for another node costs no
//! hashing.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use knetsim_control::state::{ClusterState, EndpointSlice, NamespacedName, Service};
use knetsim_ipam::Family;

use crate::names;

/// A transport protocol kube-proxy programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
    /// Lower case, as iptables and nftables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One endpoint of one service port, as `BaseEndpointInfo` holds it.
#[derive(Clone, Debug)]
pub struct EndpointInfo {
    pub ip: IpAddr,
    pub port: u16,
    /// `ip:port` (`[ip]:port` for IPv6), `BaseEndpointInfo.String()`.
    pub addr: Arc<str>,
    pub node: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// The pod behind the endpoint, when known.
    pub pod: Option<NamespacedName>,
    /// `KUBE-SEP-…`.
    pub sep_chain: Arc<str>,
    /// nftables endpoint chain base (`HASH-ns/svc/proto/port__ip/port`).
    pub nft_base: Arc<str>,
}

/// One service port of one family, as `servicePortInfo` holds it.
#[derive(Clone, Debug)]
pub struct ServicePortInfo {
    pub service: NamespacedName,
    /// The port's name ("" when unnamed).
    pub port_name: String,
    /// `ServicePortName.String()`: `ns/name:port`, or `ns/name` when the port is unnamed.
    pub name: Arc<str>,
    pub proto: Proto,
    pub cluster_ip: IpAddr,
    pub port: u16,
    /// 0 when the port has no NodePort.
    pub node_port: u16,
    pub external_ips: Vec<IpAddr>,
    pub lb_vips: Vec<IpAddr>,
    pub lb_source_ranges: Vec<IpNet>,
    /// ClientIP affinity timeout, when `sessionAffinity: ClientIP`.
    pub affinity_seconds: Option<u32>,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    pub health_check_node_port: u16,
    /// All endpoints (any readiness), sorted by `ip:port` text as `endpointsMapFromEndpointInfo`
    /// sorts them.
    pub endpoints: Vec<EndpointInfo>,
    /// The 16-character iptables hash (`KUBE-SVC-<hash>` etc.).
    pub ipt_hash: Arc<str>,
    /// The nftables chain base (`HASH-ns/name/proto/port`).
    pub nft_base: Arc<str>,
}

impl ServicePortInfo {
    /// `ExternallyAccessible`: reachable via NodePort, an external IP or a load-balancer IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.lb_vips.is_empty() || !self.external_ips.is_empty()
    }
    /// `UsesClusterEndpoints`.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }
    /// `UsesLocalEndpoints`.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }
}

/// Every service port kube-proxy programs for one family, in `ServicePortName` order.
#[derive(Clone, Debug)]
pub struct FamilyModel {
    pub family: Family,
    pub ports: Vec<ServicePortInfo>,
    /// Sum of endpoints over all service ports (decides iptables "large cluster mode").
    pub total_endpoints: usize,
}

/// `ip:port` as Go's `net.JoinHostPort` writes it.
pub fn join_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn is_local_policy(v: &Option<String>) -> bool {
    v.as_deref() == Some("Local")
}

/// `apiservice.ExternalPolicyLocal`: only NodePort and LoadBalancer Services have an external
/// traffic policy.
fn external_policy_local(svc: &Service) -> bool {
    (svc.spec.type_ == "NodePort" || svc.spec.type_ == "LoadBalancer")
        && is_local_policy(&svc.spec.external_traffic_policy)
}

/// Builds the model of one family.
///
/// `lb_ingress` gives the effective `status.loadBalancer.ingress` IPs per Service (the state's,
/// or those the fabric's load-balancer pool assigned).
pub fn build_family(
    state: &ClusterState,
    family: Family,
    lb_ingress: &dyn Fn(&NamespacedName, &Service) -> Vec<IpAddr>,
) -> FamilyModel {
    let mut ports = Vec::new();
    let mut total_endpoints = 0;
    // Slices by owning Service, once: looking them up per service port would be quadratic
    // in a namespace with thousands of Services.
    let mut slices: std::collections::HashMap<(&str, &str), Vec<&EndpointSlice>> =
        std::collections::HashMap::new();
    for (nn, slice) in &state.endpoint_slices {
        if slice.address_type != family {
            continue;
        }
        if let Some(svc) = slice.service_name() {
            slices
                .entry((nn.namespace.as_str(), svc))
                .or_default()
                .push(slice);
        }
    }
    let no_slices = Vec::new();
    for (nn, svc) in &state.services {
        // ShouldSkipService: headless and ExternalName Services get no rules.
        if svc.spec.type_ == "ExternalName" || svc.spec.is_headless() {
            continue;
        }
        // serviceToServiceMap: a Service without a cluster IP of this family is not this
        // proxier's business (the metaproxier hands it to the other one).
        let Some(cluster_ip) = svc.spec.cluster_ip_of(family) else {
            continue;
        };
        let affinity_seconds = if svc.spec.session_affinity.as_deref() == Some("ClientIP") {
            Some(
                svc.spec
                    .session_affinity_config
                    .as_ref()
                    .map(|c| c.client_ip.timeout_seconds)
                    .unwrap_or(10800),
            )
        } else {
            None
        };
        let external_ips: Vec<IpAddr> = svc
            .spec
            .external_ips
            .iter()
            .copied()
            .filter(|ip| Family::of_ip(ip) == family)
            .collect();
        let lb_vips: Vec<IpAddr> = lb_ingress(nn, svc)
            .into_iter()
            .filter(|ip| Family::of_ip(ip) == family)
            .collect();
        let lb_source_ranges: Vec<IpNet> = svc
            .spec
            .load_balancer_source_ranges
            .iter()
            .copied()
            .filter(|n| Family::of_net(n) == family)
            .collect();
        let needs_health_check = svc.spec.type_ == "LoadBalancer" && external_policy_local(svc);
        for sp in &svc.spec.ports {
            let Some(proto) = Proto::parse(&sp.protocol) else {
                continue;
            };
            let port_name = sp.name.clone().unwrap_or_default();
            let name: Arc<str> = if port_name.is_empty() {
                format!("{}/{}", nn.namespace, nn.name).into()
            } else {
                format!("{}/{}:{}", nn.namespace, nn.name, port_name).into()
            };
            let svc_slices = slices
                .get(&(nn.namespace.as_str(), nn.name.as_str()))
                .unwrap_or(&no_slices);
            let endpoints = collect_endpoints(svc_slices, nn, &port_name, proto, &name);
            total_endpoints += endpoints.len();
            ports.push(ServicePortInfo {
                service: nn.clone(),
                ipt_hash: names::port_proto_hash(&name, proto.as_str()).into(),
                nft_base: names::nft_service_base(
                    &nn.namespace,
                    &nn.name,
                    proto.as_str(),
                    &port_name,
                )
                .into(),
                port_name,
                name,
                proto,
                cluster_ip,
                port: sp.port,
                node_port: sp.node_port.unwrap_or(0),
                external_ips: external_ips.clone(),
                lb_vips: lb_vips.clone(),
                lb_source_ranges: lb_source_ranges.clone(),
                affinity_seconds,
                external_policy_local: external_policy_local(svc),
                internal_policy_local: is_local_policy(&svc.spec.internal_traffic_policy),
                health_check_node_port: if needs_health_check {
                    svc.spec.health_check_node_port.unwrap_or(0)
                } else {
                    0
                },
                endpoints,
            });
        }
    }
    // The real proxier iterates a Go map (random order); knetsim writes service ports in
    // ServicePortName order so that output is stable.
    ports.sort_by(|a, b| {
        (&a.service, &a.port_name, a.proto).cmp(&(&b.service, &b.port_name, b.proto))
    });
    FamilyModel {
        family,
        ports,
        total_endpoints,
    }
}

/// The endpoints of one service port: every EndpointSlice of the Service and family, every
/// slice port with the same name and protocol, deduplicated by `ip:port` (a non-terminating
/// endpoint wins over a terminating one), sorted by `ip:port` text.
// kube-proxy: pkg/proxy/endpointslicecache.go addEndpoints, endpointsMapFromEndpointInfo
fn collect_endpoints(
    slices: &[&EndpointSlice],
    svc: &NamespacedName,
    port_name: &str,
    proto: Proto,
    svc_port_name: &str,
) -> Vec<EndpointInfo> {
    let mut by_addr: std::collections::BTreeMap<String, EndpointInfo> =
        std::collections::BTreeMap::new();
    for slice in slices {
        for p in &slice.ports {
            if p.name.as_deref().unwrap_or("") != port_name
                || Proto::parse(&p.protocol) != Some(proto)
                || p.port == 0
            {
                continue;
            }
            for ep in &slice.endpoints {
                let Some(&ip) = ep.addresses.first() else {
                    continue;
                };
                let addr = join_host_port(ip, p.port);
                let terminating = ep.conditions.terminating;
                if by_addr.contains_key(&addr) && terminating {
                    continue;
                }
                let info = EndpointInfo {
                    ip,
                    port: p.port,
                    sep_chain: names::endpoint_chain(svc_port_name, proto.as_str(), &addr).into(),
                    nft_base: names::nft_endpoint_base(
                        &svc.namespace,
                        &svc.name,
                        proto.as_str(),
                        port_name,
                        &ip.to_string(),
                        p.port,
                    )
                    .into(),
                    addr: addr.clone().into(),
                    node: ep.node_name.clone(),
                    ready: ep.conditions.ready,
                    serving: ep.conditions.serving,
                    terminating,
                    pod: ep.target_ref.as_ref().and_then(|t| {
                        (t.kind == "Pod").then(|| NamespacedName::new(&t.namespace, &t.name))
                    }),
                };
                by_addr.insert(addr, info);
            }
        }
    }
    // BTreeMap<String, _> iterates in byte order of "ip:port", which is byEndpoint's order.
    by_addr.into_values().collect()
}

/// The endpoints a node uses for one service port: `CategorizeEndpoints` without topology
/// hints (knetsim does not model topology-aware routing).
#[derive(Debug, Default)]
pub struct Categorized<'a> {
    pub cluster: Vec<&'a EndpointInfo>,
    pub local: Vec<&'a EndpointInfo>,
    pub all_reachable: Vec<&'a EndpointInfo>,
    pub has_any: bool,
}

// kube-proxy: pkg/proxy/topology.go CategorizeEndpoints
pub fn categorize<'a>(sp: &'a ServicePortInfo, node: &str) -> Categorized<'a> {
    let mut out = Categorized::default();
    let is_local = |e: &EndpointInfo| e.node.as_deref() == Some(node);
    let mut use_serving_terminating = false;
    if sp.uses_cluster_endpoints() {
        out.cluster = sp.endpoints.iter().filter(|e| e.ready).collect();
        if out.cluster.is_empty() {
            out.cluster = sp
                .endpoints
                .iter()
                .filter(|e| e.serving && e.terminating)
                .collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !sp.uses_local_endpoints() {
        out.all_reachable = out.cluster.clone();
        return out;
    }
    let mut has_local_ready = false;
    let mut has_local_serving_terminating = false;
    for e in &sp.endpoints {
        if e.ready {
            out.has_any = true;
            has_local_ready |= is_local(e);
        } else if e.serving && e.terminating {
            out.has_any = true;
            has_local_serving_terminating |= is_local(e);
        }
    }
    if has_local_ready {
        out.local = sp
            .endpoints
            .iter()
            .filter(|e| is_local(e) && e.ready)
            .collect();
    } else if has_local_serving_terminating {
        use_serving_terminating = true;
        out.local = sp
            .endpoints
            .iter()
            .filter(|e| is_local(e) && e.serving && e.terminating)
            .collect();
    }
    if !sp.uses_cluster_endpoints() {
        out.all_reachable = out.local.clone();
        return out;
    }
    if !use_serving_terminating {
        out.all_reachable = out.cluster.clone();
        return out;
    }
    // Union of both lists. Upstream builds it from a map (random order); knetsim sorts by
    // `ip:port` like the endpoints map itself.
    let mut all: Vec<&EndpointInfo> = out.cluster.clone();
    for e in &out.local {
        if !all.iter().any(|x| x.addr == e.addr) {
            all.push(e);
        }
    }
    all.sort_by(|a, b| a.addr.cmp(&b.addr));
    out.all_reachable = all;
    out
}
