//! The Kubernetes objects knetsim reads from manifests, as a user wrote them.
//!
//! These are *requests*, not stored objects: fields the API server defaults or allocates
//! (`clusterIPs`, `ipFamilies`, …) are `None`/empty when the user left them out, and values are
//! kept as written (strings) wherever the API server's validation, not YAML decoding, is what
//! rejects a bad value, so that the control plane can answer with Kubernetes' own message.
//! Structural problems (a list where a map belongs, an unknown field) are diagnostics raised
//! while reading, as `kubectl apply --validate=strict` would raise them.

use std::collections::BTreeMap;

use crate::source::{Span, Spanned};

/// `metadata` of any object.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub name: Spanned<String>,
    /// `None` when not written; namespaced kinds then land in `default`.
    pub namespace: Option<Spanned<String>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// An object from a manifest, by kind. Kinds knetsim does not model but that are real
/// Kubernetes kinds (ConfigMap, Ingress, …) are read as [`Object::Other`] and reported as
/// ignored; unknown kinds are errors.
// Objects are read once and moved into the control plane's state; boxing the large variants
// would only add an allocation per object, and the public shape is shared by every crate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Namespace(Namespace),
    Node(NodeObject),
    Service(Service),
    Pod(Pod),
    Workload(Workload),
    Other {
        api_version: String,
        kind: String,
        name: String,
        span: Span,
    },
}

impl Object {
    pub fn kind(&self) -> &str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::Node(_) => "Node",
            Object::Service(_) => "Service",
            Object::Pod(_) => "Pod",
            Object::Workload(w) => w.kind.as_str(),
            Object::Other { kind, .. } => kind,
        }
    }

    /// Where the object starts (its first key), for messages about the object as a whole.
    pub fn span(&self) -> Span {
        match self {
            Object::Namespace(o) => o.span,
            Object::Node(o) => o.span,
            Object::Service(o) => o.span,
            Object::Pod(o) => o.span,
            Object::Workload(o) => o.span,
            Object::Other { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub meta: ObjectMeta,
    pub span: Span,
}

/// A Node object written in a manifest (as opposed to a scenario `nodes:` entry). Its
/// `spec.podCIDRs`, if set, are occupied by the node IPAM at startup, as for existing nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeObject {
    pub meta: ObjectMeta,
    pub pod_cidrs: Vec<Spanned<String>>,
    /// `status.addresses` of type InternalIP, as written.
    pub internal_ips: Vec<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}

/// Deployment, ReplicaSet, StatefulSet or DaemonSet: expanded into pods by the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub meta: ObjectMeta,
    /// `spec.replicas`; `None` means the API default (1). Always `None` for DaemonSets.
    pub replicas: Option<Spanned<i64>>,
    /// `spec.selector.matchLabels`.
    pub selector: BTreeMap<String, String>,
    /// `spec.template.metadata.labels`.
    pub template_labels: BTreeMap<String, String>,
    pub template: PodSpec,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub meta: ObjectMeta,
    pub spec: PodSpec,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PodSpec {
    pub node_name: Option<Spanned<String>>,
    pub host_network: bool,
    pub node_selector: BTreeMap<String, String>,
    pub containers: Vec<Container>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Container {
    pub name: String,
    pub ports: Vec<ContainerPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: i64,
    /// As written; `None` means TCP.
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub meta: ObjectMeta,
    pub spec: ServiceSpec,
    /// The 1.16–1.19 alpha field `spec.ipFamily` (a single family), if written. Honoured on
    /// those versions, dropped with a warning from 1.20 on.
    pub legacy_ip_family: Option<Spanned<String>>,
    pub span: Span,
}

/// `Service.spec` as written. Strings stay strings where the API server validates them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServiceSpec {
    /// `spec.type`; `None` means ClusterIP.
    pub type_: Option<Spanned<String>>,
    /// `spec.selector`; `None` (or an empty map, which Kubernetes treats the same) means the
    /// Service has no selector.
    pub selector: Option<BTreeMap<String, String>>,
    pub ports: Vec<ServicePort>,
    pub cluster_ip: Option<Spanned<String>>,
    pub cluster_ips: Option<Vec<Spanned<String>>>,
    pub ip_families: Option<Vec<Spanned<String>>>,
    pub ip_family_policy: Option<Spanned<String>>,
    pub external_ips: Vec<Spanned<String>>,
    pub load_balancer_ip: Option<Spanned<String>>,
    pub load_balancer_source_ranges: Vec<Spanned<String>>,
    pub external_traffic_policy: Option<Spanned<String>>,
    pub internal_traffic_policy: Option<Spanned<String>>,
    pub session_affinity: Option<Spanned<String>>,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds`.
    pub session_affinity_timeout: Option<i64>,
    pub external_name: Option<Spanned<String>>,
    pub allocate_load_balancer_node_ports: Option<bool>,
    /// `status.loadBalancer.ingress[].ip` if a manifest carries it (LoadBalancer IPs are
    /// otherwise assigned by the scenario's load-balancer pool).
    pub load_balancer_ingress: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServicePort {
    pub name: Option<String>,
    /// As written; `None` means TCP.
    pub protocol: Option<String>,
    pub port: i64,
    /// A number or a container port name; `None` means the same as `port`.
    pub target_port: Option<TargetPort>,
    pub node_port: Option<i64>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(i64),
    Name(String),
}

/// A reference to an object by kind, namespace and name (in `delete` and `scale` steps and in
/// expectations).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}
