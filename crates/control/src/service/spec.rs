//! The Service as kube-apiserver's registry code sees it, and the conversions to and from it.
//!
//! [`Svc`] mirrors the internal `core.Service` fields this module works on, with Go's zero
//! values: an unset string is `""`, an unset number is `0`, unset lists are empty. Requests
//! ([`objects::Service`], strings as written) become a [`Svc`] through the v1 defaulting
//! functions ([`Svc::from_request`], `pkg/apis/core/v1/defaults.go SetDefaults_Service`);
//! stored objects ([`state::Service`]) convert both ways losslessly.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::objects;

use crate::state;

use super::Features;

pub const TYPE_CLUSTER_IP: &str = "ClusterIP";
pub const TYPE_NODE_PORT: &str = "NodePort";
pub const TYPE_LOAD_BALANCER: &str = "LoadBalancer";
pub const TYPE_EXTERNAL_NAME: &str = "ExternalName";
pub const CLUSTER_IP_NONE: &str = "None";
pub const SINGLE_STACK: &str = "SingleStack";
pub const PREFER_DUAL_STACK: &str = "PreferDualStack";
pub const REQUIRE_DUAL_STACK: &str = "RequireDualStack";
/// `v1.DefaultClientIPServiceAffinitySeconds`.
pub const DEFAULT_AFFINITY_SECONDS: i64 = 10800;

/// `spec.ports[*].targetPort`: an `intstr.IntOrString`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub protocol: String,
    pub port: i64,
    pub target_port: IntOrString,
    pub node_port: i64,
}

/// The fields of `core.Service` the Service REST code reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Svc {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub type_: String,
    /// Empty means no selector (Kubernetes treats `{}` and absent alike).
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    pub cluster_ip: String,
    pub cluster_ips: Vec<String>,
    /// Kept as strings so that validation can reject values such as `IPv5` in Kubernetes'
    /// own words.
    pub ip_families: Vec<String>,
    pub ip_family_policy: Option<String>,
    /// The 1.16–1.19 alpha `spec.ipFamily`.
    pub ip_family: Option<String>,
    pub external_ips: Vec<String>,
    pub load_balancer_ip: String,
    pub load_balancer_source_ranges: Vec<String>,
    pub external_traffic_policy: String,
    pub internal_traffic_policy: Option<String>,
    pub health_check_node_port: i64,
    pub allocate_load_balancer_node_ports: Option<bool>,
    pub session_affinity: String,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds`, when a config is present.
    pub session_affinity_timeout: Option<i64>,
    pub external_name: String,
    /// `status.loadBalancer.ingress[].ip`.
    pub load_balancer_ingress: Vec<IpAddr>,
}

impl Svc {
    /// Decodes a request and applies the v1 defaulting functions of `features.version`
    /// (`pkg/apis/core/v1/defaults.go SetDefaults_Service`).
    pub fn from_request(req: &objects::Service, namespace: &str, features: &Features) -> Svc {
        let spec = &req.spec;
        let mut svc = Svc {
            name: req.meta.name.value.clone(),
            namespace: namespace.to_string(),
            labels: req.meta.labels.clone(),
            annotations: req.meta.annotations.clone(),
            type_: spec
                .type_
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            selector: spec.selector.clone().unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .map(|p| Port {
                    name: p.name.clone().unwrap_or_default(),
                    protocol: p.protocol.clone().unwrap_or_default(),
                    port: p.port,
                    target_port: match &p.target_port {
                        None => IntOrString::Int(0),
                        Some(objects::TargetPort::Number(n)) => IntOrString::Int(*n),
                        Some(objects::TargetPort::Name(s)) => IntOrString::Str(s.clone()),
                    },
                    node_port: p.node_port.unwrap_or(0),
                })
                .collect(),
            cluster_ip: spec
                .cluster_ip
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            cluster_ips: spec
                .cluster_ips
                .iter()
                .flatten()
                .map(|s| s.value.clone())
                .collect(),
            ip_families: spec
                .ip_families
                .iter()
                .flatten()
                .map(|s| s.value.clone())
                .collect(),
            ip_family_policy: spec.ip_family_policy.as_ref().map(|s| s.value.clone()),
            // `spec.ipFamily` exists only in the 1.16–1.19 API; later servers do not know the
            // field at all (the caller warns about it).
            ip_family: if features.alpha_api {
                req.legacy_ip_family.as_ref().map(|s| s.value.clone())
            } else {
                None
            },
            external_ips: spec.external_ips.iter().map(|s| s.value.clone()).collect(),
            load_balancer_ip: spec
                .load_balancer_ip
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            load_balancer_source_ranges: spec
                .load_balancer_source_ranges
                .iter()
                .map(|s| s.value.clone())
                .collect(),
            external_traffic_policy: spec
                .external_traffic_policy
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            internal_traffic_policy: spec
                .internal_traffic_policy
                .as_ref()
                .map(|s| s.value.clone()),
            health_check_node_port: 0,
            allocate_load_balancer_node_ports: spec.allocate_load_balancer_node_ports,
            session_affinity: spec
                .session_affinity
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            session_affinity_timeout: spec.session_affinity_timeout,
            external_name: spec
                .external_name
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            // Status is never taken from a request: PrepareForCreate clears it and
            // PrepareForUpdate copies the stored one (`pkg/registry/core/service/strategy.go`).
            load_balancer_ingress: Vec::new(),
        };
        svc.set_defaults(features);
        svc
    }

    /// `SetDefaults_Service` for the version in `features`.
    fn set_defaults(&mut self, f: &Features) {
        if self.session_affinity.is_empty() {
            self.session_affinity = "None".to_string();
        }
        if self.session_affinity == "None" {
            self.session_affinity_timeout = None;
        }
        if self.session_affinity == "ClientIP" && self.session_affinity_timeout.is_none() {
            self.session_affinity_timeout = Some(DEFAULT_AFFINITY_SECONDS);
        }
        if self.type_.is_empty() {
            self.type_ = TYPE_CLUSTER_IP.to_string();
        }
        for p in &mut self.ports {
            if p.protocol.is_empty() {
                p.protocol = "TCP".to_string();
            }
            let unset = match &p.target_port {
                IntOrString::Int(0) => true,
                IntOrString::Str(s) => s.is_empty(),
                IntOrString::Int(_) => false,
            };
            if unset {
                p.target_port = IntOrString::Int(p.port);
            }
        }
        // Defaults ExternalTrafficPolicy to Cluster for externally-accessible Services.
        if self.externally_accessible(f) && self.external_traffic_policy.is_empty() {
            self.external_traffic_policy = "Cluster".to_string();
        }
        // ServiceInternalTrafficPolicy: alpha 1.21 (off), beta 1.22 (on), GA 1.26. Kubernetes
        // briefly defaulted it for ExternalName too, but drops it again on read
        // (`storage.go defaultOnReadInternalTrafficPolicy`), so ExternalName never shows it.
        if f.internal_traffic_policy
            && self.internal_traffic_policy.is_none()
            && self.type_ != TYPE_EXTERNAL_NAME
        {
            self.internal_traffic_policy = Some("Cluster".to_string());
        }
        // ServiceLBNodePortControl: alpha 1.20 (off), beta 1.22 (on), GA 1.24.
        if f.lb_node_port_control
            && self.type_ == TYPE_LOAD_BALANCER
            && self.allocate_load_balancer_node_ports.is_none()
        {
            self.allocate_load_balancer_node_ports = Some(true);
        }
        // 1.16–1.19 with IPv6DualStack: a user-chosen clusterIP decides `spec.ipFamily`.
        if f.alpha_api
            && f.dual_stack
            && self.type_ != TYPE_EXTERNAL_NAME
            && !self.cluster_ip.is_empty()
            && self.cluster_ip != CLUSTER_IP_NONE
            && self.ip_family.is_none()
        {
            let family = if super::ipstr::is_ipv6_string(&self.cluster_ip) {
                "IPv6"
            } else {
                "IPv4"
            };
            self.ip_family = Some(family.to_string());
        }
    }

    /// `apiservice.ExternallyAccessible` (newer revisions count ClusterIP Services with
    /// external IPs; older ones only NodePort and LoadBalancer).
    pub fn externally_accessible(&self, f: &Features) -> bool {
        self.type_ == TYPE_NODE_PORT
            || self.type_ == TYPE_LOAD_BALANCER
            || (f.externally_accessible_external_ips
                && self.type_ == TYPE_CLUSTER_IP
                && !self.external_ips.is_empty())
    }

    /// `apiservice.NeedsHealthCheck`: LoadBalancer with `externalTrafficPolicy: Local`.
    pub fn needs_health_check(&self) -> bool {
        self.type_ == TYPE_LOAD_BALANCER && self.external_traffic_policy == "Local"
    }

    pub fn needs_cluster_ip(&self) -> bool {
        self.type_ != TYPE_EXTERNAL_NAME
    }

    pub fn needs_node_port(&self) -> bool {
        self.type_ == TYPE_NODE_PORT || self.type_ == TYPE_LOAD_BALANCER
    }

    /// `isHeadlessService` in validation: clusterIPs is exactly `["None"]`.
    pub fn is_headless(&self) -> bool {
        self.cluster_ips.len() == 1 && self.cluster_ips[0] == CLUSTER_IP_NONE
    }

    pub fn policy(&self) -> &str {
        self.ip_family_policy.as_deref().unwrap_or("")
    }

    /// The node ports of all ports, in order, zeros skipped (`collectServiceNodePorts`).
    pub fn node_ports(&self) -> Vec<i64> {
        self.ports
            .iter()
            .map(|p| p.node_port)
            .filter(|np| *np != 0)
            .collect()
    }

    /// Reads a stored Service back (no defaulting: it was defaulted when written).
    pub fn from_state(s: &state::Service) -> Svc {
        let spec = &s.spec;
        Svc {
            name: s.metadata.name.clone(),
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            labels: (*s.metadata.labels).clone(),
            annotations: s.metadata.annotations.clone(),
            type_: spec.type_.clone(),
            selector: spec.selector.clone().unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .map(|p| Port {
                    name: p.name.clone().unwrap_or_default(),
                    protocol: p.protocol.clone(),
                    port: p.port as i64,
                    target_port: match &p.target_port {
                        state::TargetPort::Number(n) => IntOrString::Int(*n as i64),
                        state::TargetPort::Name(n) => IntOrString::Str(n.clone()),
                    },
                    node_port: p.node_port.map(i64::from).unwrap_or(0),
                })
                .collect(),
            cluster_ip: spec.cluster_ip.clone().unwrap_or_default(),
            cluster_ips: spec.cluster_ips.clone(),
            ip_families: spec
                .ip_families
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
            ip_family_policy: spec.ip_family_policy.clone(),
            ip_family: spec.ip_family.map(|f| f.as_str().to_string()),
            external_ips: spec.external_ips.iter().map(|ip| ip.to_string()).collect(),
            load_balancer_ip: spec
                .load_balancer_ip
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            load_balancer_source_ranges: spec
                .load_balancer_source_ranges
                .iter()
                .map(|n| n.to_string())
                .collect(),
            external_traffic_policy: spec.external_traffic_policy.clone().unwrap_or_default(),
            internal_traffic_policy: spec.internal_traffic_policy.clone(),
            health_check_node_port: spec.health_check_node_port.map(i64::from).unwrap_or(0),
            allocate_load_balancer_node_ports: spec.allocate_load_balancer_node_ports,
            session_affinity: spec.session_affinity.clone().unwrap_or_default(),
            session_affinity_timeout: spec
                .session_affinity_config
                .as_ref()
                .map(|c| c.client_ip.timeout_seconds as i64),
            external_name: spec.external_name.clone().unwrap_or_default(),
            load_balancer_ingress: s
                .status
                .load_balancer
                .ingress
                .iter()
                .map(|i| i.ip)
                .collect(),
        }
    }

    /// Writes the object as the API server stores it. Values that validation guarantees
    /// (ports in range, families valid, IPs parseable) are converted without re-checking;
    /// the `filter_map`s only guard against a validation gap turning into a panic.
    pub fn to_state(&self) -> state::Service {
        let ports = self
            .ports
            .iter()
            .map(|p| state::ServicePort {
                name: if p.name.is_empty() {
                    None
                } else {
                    Some(p.name.clone())
                },
                protocol: p.protocol.clone(),
                port: u16::try_from(p.port).unwrap_or(0),
                target_port: match &p.target_port {
                    IntOrString::Int(n) => {
                        state::TargetPort::Number(u16::try_from(*n).unwrap_or(0))
                    }
                    IntOrString::Str(s) => state::TargetPort::Name(s.clone()),
                },
                node_port: u16::try_from(p.node_port).ok().filter(|np| *np != 0),
            })
            .collect();
        state::Service {
            api_version: "v1",
            kind: "Service",
            metadata: state::ObjectMeta {
                name: self.name.clone(),
                namespace: Some(self.namespace.clone()),
                labels: self.labels.clone().into(),
                annotations: self.annotations.clone(),
                owner_references: Vec::new().into(),
            },
            spec: state::ServiceSpec {
                type_: self.type_.clone(),
                selector: if self.selector.is_empty() {
                    None
                } else {
                    Some(self.selector.clone())
                },
                ports,
                cluster_ip: if self.cluster_ip.is_empty() {
                    None
                } else {
                    Some(self.cluster_ip.clone())
                },
                cluster_ips: self.cluster_ips.clone(),
                ip_families: self
                    .ip_families
                    .iter()
                    .filter_map(|f| Family::parse(f))
                    .collect(),
                ip_family_policy: self.ip_family_policy.clone(),
                ip_family: self.ip_family.as_deref().and_then(Family::parse),
                external_ips: self
                    .external_ips
                    .iter()
                    .filter_map(|s| super::ipstr::parse_ip_sloppy(s))
                    .collect(),
                load_balancer_ip: super::ipstr::parse_ip_sloppy(&self.load_balancer_ip),
                load_balancer_source_ranges: self
                    .load_balancer_source_ranges
                    .iter()
                    .filter_map(|s| s.trim().parse::<IpNet>().ok())
                    .collect(),
                external_traffic_policy: if self.external_traffic_policy.is_empty() {
                    None
                } else {
                    Some(self.external_traffic_policy.clone())
                },
                internal_traffic_policy: self.internal_traffic_policy.clone(),
                health_check_node_port: u16::try_from(self.health_check_node_port)
                    .ok()
                    .filter(|p| *p != 0),
                allocate_load_balancer_node_ports: self.allocate_load_balancer_node_ports,
                session_affinity: Some(self.session_affinity.clone()),
                session_affinity_config: match (
                    self.session_affinity.as_str(),
                    self.session_affinity_timeout,
                ) {
                    ("ClientIP", Some(t)) => Some(state::SessionAffinityConfig {
                        client_ip: state::ClientIpConfig {
                            timeout_seconds: u32::try_from(t).unwrap_or(0),
                        },
                    }),
                    _ => None,
                },
                external_name: if self.external_name.is_empty() {
                    None
                } else {
                    Some(self.external_name.clone())
                },
            },
            status: state::ServiceStatus {
                load_balancer: state::LoadBalancerStatus {
                    ingress: self
                        .load_balancer_ingress
                        .iter()
                        .map(|ip| state::LoadBalancerIngress { ip: *ip })
                        .collect(),
                },
            },
        }
    }
}
