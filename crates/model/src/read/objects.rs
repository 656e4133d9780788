//! Kubernetes manifests, read as strictly as `kubectl apply --validate=strict` (server-side
//! strict field validation, 1.25+) reads them.
//!
//! The messages are kubectl's where it has one: `no matches for kind "Foo" in version "v1"`
//! (the REST mapper), `unknown field "spec.ipFamilyPolcy"` (strict decoding,
//! `sigs.k8s.io/json`), `resource name may not be empty`, `Object 'Kind' is missing in '…'`
//! (`k8s.io/apimachinery/pkg/runtime/error.go`). Type errors say what was expected in plain
//! words and give the decoder's own line (`json: cannot unmarshal string into Go struct field
//! ServicePort.spec.ports.port of type int32`) as help.
//!
//! Only the parts of an object knetsim models are checked field by field (metadata, the
//! Service spec and ports, Node, Namespace, workload spec/selector/template, the PodSpec's
//! top-level fields, containers and container ports). Everything below them (resources,
//! probes, volumes, …) is accepted unread, so real manifests pass.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::objects::{
    Container, ContainerPort, Namespace, NodeObject, Object, ObjectMeta, Pod, PodSpec, Service,
    ServicePort, ServiceSpec, TargetPort, Workload, WorkloadKind,
};
use crate::source::{Span, Spanned};
use crate::yaml::{MapReader, Node, NodeKind, Resolved, did_you_mean};

use super::Ctx;

/// Kinds knetsim models, with the group versions that serve them (old ones included: a manifest
/// written for 1.16 may still say `extensions/v1beta1`; whether the version still serves it is
/// the control plane's call).
const MODELLED: &[(&str, &[&str])] = &[
    ("Namespace", &["v1"]),
    ("Node", &["v1"]),
    ("Service", &["v1"]),
    ("Pod", &["v1"]),
    (
        "Deployment",
        &[
            "apps/v1",
            "apps/v1beta1",
            "apps/v1beta2",
            "extensions/v1beta1",
        ],
    ),
    (
        "ReplicaSet",
        &["apps/v1", "apps/v1beta2", "extensions/v1beta1"],
    ),
    ("StatefulSet", &["apps/v1", "apps/v1beta1", "apps/v1beta2"]),
    (
        "DaemonSet",
        &["apps/v1", "apps/v1beta2", "extensions/v1beta1"],
    ),
];

/// Real Kubernetes kinds knetsim does not model, by group/version. They are accepted and
/// ignored with a warning.
const OTHER: &[(&str, &[&str])] = &[
    (
        "v1",
        &[
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Endpoints",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "ResourceQuota",
            "LimitRange",
            "Event",
            "ReplicationController",
            "PodTemplate",
        ],
    ),
    ("apps/v1", &["ControllerRevision"]),
    ("batch/v1", &["Job", "CronJob"]),
    ("batch/v1beta1", &["CronJob"]),
    (
        "networking.k8s.io/v1",
        &[
            "Ingress",
            "IngressClass",
            "NetworkPolicy",
            "ServiceCIDR",
            "IPAddress",
        ],
    ),
    (
        "networking.k8s.io/v1beta1",
        &["Ingress", "IngressClass", "ServiceCIDR", "IPAddress"],
    ),
    (
        "networking.k8s.io/v1alpha1",
        &["ServiceCIDR", "IPAddress", "ClusterCIDR"],
    ),
    (
        "extensions/v1beta1",
        &["Ingress", "NetworkPolicy", "PodSecurityPolicy"],
    ),
    (
        "rbac.authorization.k8s.io/v1",
        &["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"],
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        &["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"],
    ),
    ("autoscaling/v1", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2beta1", &["HorizontalPodAutoscaler"]),
    ("autoscaling/v2beta2", &["HorizontalPodAutoscaler"]),
    ("policy/v1", &["PodDisruptionBudget"]),
    (
        "policy/v1beta1",
        &["PodDisruptionBudget", "PodSecurityPolicy"],
    ),
    ("apiextensions.k8s.io/v1", &["CustomResourceDefinition"]),
    (
        "apiextensions.k8s.io/v1beta1",
        &["CustomResourceDefinition"],
    ),
    ("discovery.k8s.io/v1", &["EndpointSlice"]),
    ("discovery.k8s.io/v1beta1", &["EndpointSlice"]),
    (
        "storage.k8s.io/v1",
        &["StorageClass", "CSIDriver", "CSINode", "VolumeAttachment"],
    ),
    ("scheduling.k8s.io/v1", &["PriorityClass"]),
    (
        "admissionregistration.k8s.io/v1",
        &[
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ],
    ),
    ("coordination.k8s.io/v1", &["Lease"]),
    ("certificates.k8s.io/v1", &["CertificateSigningRequest"]),
    ("node.k8s.io/v1", &["RuntimeClass"]),
    ("apiregistration.k8s.io/v1", &["APIService"]),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        &["FlowSchema", "PriorityLevelConfiguration"],
    ),
    // Calico's resources, as its manifests and guides apply them.
    (
        "crd.projectcalico.org/v1",
        &[
            "IPPool",
            "IPAMConfig",
            "BGPConfiguration",
            "BGPPeer",
            "FelixConfiguration",
            "ClusterInformation",
            "IPAMBlock",
            "BlockAffinity",
        ],
    ),
    (
        "projectcalico.org/v3",
        &[
            "IPPool",
            "IPAMConfiguration",
            "BGPConfiguration",
            "BGPPeer",
            "FelixConfiguration",
        ],
    ),
];

/// Reads one YAML document of a manifest: nothing (an empty document), one object, or a
/// `kind: List` of objects.
pub(crate) fn read_document(cx: &mut Ctx<'_>, doc: &Node, out: &mut Vec<Object>) {
    if doc.is_null() {
        return;
    }
    if let Some(entries) = doc.as_map() {
        let is_list = entries
            .iter()
            .any(|(k, v)| k.scalar_text() == Some("kind") && v.scalar_text() == Some("List"));
        if is_list {
            let mut r = MapReader::new(doc).expect("checked: a map");
            r.allow(&["apiVersion", "kind", "metadata"]);
            if let Some(items) = r.seq("items", &mut cx.diags) {
                for item in items {
                    if let Some(o) = read_object(cx, item) {
                        out.push(o);
                    }
                }
            }
            r.finish_with(
                &mut cx.diags,
                |k| format!("unknown field \"{k}\""),
                |k| format!("`{k}`"),
                "unknown field",
            );
            return;
        }
    }
    if let Some(o) = read_object(cx, doc) {
        out.push(o);
    }
}

/// JSON's name for a node's type, as Go's decoder words it.
fn json_type(n: &Node) -> &'static str {
    match &n.kind {
        NodeKind::Null => "null",
        NodeKind::Seq(_) => "array",
        NodeKind::Map(_) => "object",
        NodeKind::Scalar(s) => match s.resolve() {
            Resolved::Bool(_) => "bool",
            Resolved::Int(_) | Resolved::Float(_) => "number",
            Resolved::Str(_) => "string",
        },
    }
}

/// A map inside an object, with the paths needed for kubectl's messages.
struct Obj<'a> {
    r: MapReader<'a>,
    /// JSON path with list indices (`spec.ports[0]`), for `unknown field` messages.
    path: String,
    /// The same path without indices (`spec.ports`), as Go's decoder names struct fields.
    go_path: String,
    /// The Go struct being decoded (`ServicePort`).
    go_struct: &'static str,
}

impl<'a> Obj<'a> {
    fn root(r: MapReader<'a>, go_struct: &'static str) -> Self {
        Obj {
            r,
            path: String::new(),
            go_path: String::new(),
            go_struct,
        }
    }

    fn join(base: &str, key: &str) -> String {
        if base.is_empty() {
            key.to_string()
        } else {
            format!("{base}.{key}")
        }
    }

    fn type_error(&self, cx: &mut Ctx<'_>, node: &Node, key: &str, expected: &str, go_type: &str) {
        let path = Self::join(&self.path, key);
        let go = Self::join(&self.go_path, key);
        let mut d = Diagnostic::error(
            node.span,
            format!(
                "expected {expected} for `{path}`, found {}",
                node.describe()
            ),
        )
        .with_label(format!("expected {expected}"));
        if !self.go_struct.is_empty() {
            d = d.with_help(format!(
                "kubectl would report: json: cannot unmarshal {} into Go struct field {}.{go} of type {go_type}",
                json_type(node),
                self.go_struct
            ));
        }
        cx.diags.push(d);
    }

    fn str(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Spanned<String>> {
        let n = self.r.value(key)?;
        match n.as_str() {
            Some(s) => Some(Spanned::new(s.to_string(), n.span)),
            None => {
                self.type_error(cx, n, key, "a string", "string");
                None
            }
        }
    }

    fn int(&mut self, cx: &mut Ctx<'_>, key: &'static str, go_type: &str) -> Option<Spanned<i64>> {
        let n = self.r.value(key)?;
        let v = match n.as_scalar().map(|s| s.resolve()) {
            Some(Resolved::Int(i)) => match go_type {
                "int32" => i32::try_from(i).ok().map(i64::from),
                _ => i64::try_from(i).ok(),
            },
            _ => None,
        };
        if v.is_none() {
            self.type_error(cx, n, key, &format!("an integer ({go_type})"), go_type);
        }
        v.map(|v| Spanned::new(v, n.span))
    }

    fn bool(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<bool> {
        let n = self.r.value(key)?;
        match n.as_scalar().map(|s| s.resolve()) {
            Some(Resolved::Bool(b)) => Some(b),
            _ => {
                self.type_error(cx, n, key, "a boolean (true or false)", "bool");
                None
            }
        }
    }

    fn strings(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<Spanned<String>>> {
        let n = self.r.value(key)?;
        let Some(items) = n.as_seq() else {
            self.type_error(cx, n, key, "a list of strings", "[]string");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(Spanned::new(s.to_string(), item.span)),
                None => {
                    self.type_error(cx, item, &format!("{key}[{i}]"), "a string", "string");
                    return None;
                }
            }
        }
        Some(out)
    }

    fn string_map(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<BTreeMap<String, String>> {
        let n = self.r.value(key)?;
        let Some(entries) = n.as_map() else {
            self.type_error(cx, n, key, "a map of strings", "map[string]string");
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let name = k.scalar_text().unwrap_or_default();
            match &v.kind {
                NodeKind::Null => {
                    out.insert(name.to_string(), String::new());
                }
                _ => match v.as_str() {
                    Some(s) => {
                        out.insert(name.to_string(), s.to_string());
                    }
                    None => {
                        self.type_error(
                            cx,
                            v,
                            &format!("{key}.{name}"),
                            "a string (quote numbers and booleans)",
                            "string",
                        );
                    }
                },
            }
        }
        Some(out)
    }

    fn child(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        go_struct: &'static str,
    ) -> Option<Obj<'a>> {
        let n = self.r.value(key)?;
        match MapReader::new(n) {
            Some(r) => Some(Obj {
                r,
                path: Self::join(&self.path, key),
                go_path: Self::join(&self.go_path, key),
                go_struct,
            }),
            None => {
                self.type_error(cx, n, key, "a map", &format!("v1.{go_struct}"));
                None
            }
        }
    }

    fn list(&mut self, cx: &mut Ctx<'_>, key: &'static str, go_type: &str) -> Option<&'a [Node]> {
        let n = self.r.value(key)?;
        match n.as_seq() {
            Some(items) => Some(items),
            None => {
                self.type_error(cx, n, key, "a list", go_type);
                None
            }
        }
    }

    /// Item `i` of the list under `key` (already fetched with [`list`](Self::list)).
    fn item(
        &self,
        cx: &mut Ctx<'_>,
        node: &'a Node,
        key: &str,
        i: usize,
        go_struct: &'static str,
    ) -> Option<Obj<'a>> {
        match MapReader::new(node) {
            Some(r) if !node.is_null() => Some(Obj {
                r,
                path: format!("{}[{i}]", Self::join(&self.path, key)),
                go_path: Self::join(&self.go_path, key),
                go_struct,
            }),
            _ => {
                self.type_error(
                    cx,
                    node,
                    &format!("{key}[{i}]"),
                    "a map",
                    &format!("v1.{go_struct}"),
                );
                None
            }
        }
    }

    fn allow(&mut self, keys: &[&'static str]) {
        self.r.allow(keys);
    }

    fn finish(self, cx: &mut Ctx<'_>) {
        let path = self.path;
        self.r.finish_with(
            &mut cx.diags,
            |k| format!("unknown field \"{}\"", Obj::join(&path, k)),
            |k| format!("`{k}`"),
            "unknown field",
        );
    }
}

fn all_kinds() -> impl Iterator<Item = &'static str> {
    MODELLED
        .iter()
        .map(|(k, _)| *k)
        .chain(OTHER.iter().flat_map(|(_, ks)| ks.iter().copied()))
}

/// Reads one object. `None` (with diagnostics) when it cannot be read at all.
pub(crate) fn read_object(cx: &mut Ctx<'_>, node: &Node) -> Option<Object> {
    let Some(r) = MapReader::new(node).filter(|_| !node.is_null()) else {
        cx.diags.push(crate::yaml::mismatch(
            node,
            "a Kubernetes object (a map with `apiVersion`, `kind` and `metadata`)",
            "",
        ));
        return None;
    };
    let mut o = Obj::root(r, "");
    let span = node.span;
    let api_version = o.r.value("apiVersion");
    let kind = o.r.value("kind");
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        let missing = if kind.is_none() { "Kind" } else { "apiVersion" };
        let mut json = node.to_json().to_string();
        if json.chars().count() > 80 {
            json = json.chars().take(80).collect::<String>() + "…";
        }
        cx.diags.push(
            Diagnostic::error(
                o.r.head_span(),
                format!("Object '{missing}' is missing in '{json}'"),
            )
            .with_label(format!(
                "this object has no `{}`",
                if missing == "Kind" {
                    "kind"
                } else {
                    "apiVersion"
                }
            )),
        );
        return None;
    };
    let (Some(av), Some(k)) = (api_version.as_str(), kind.as_str()) else {
        for (n, key) in [(api_version, "apiVersion"), (kind, "kind")] {
            if n.as_str().is_none() {
                o.type_error(cx, n, key, "a string", "string");
            }
        }
        return None;
    };
    let modelled = MODELLED.iter().find(|(mk, _)| *mk == k);
    if let Some((mk, versions)) = modelled {
        if !versions.contains(&av) {
            cx.diags.push(
                Diagnostic::error(
                    api_version.span,
                    format!("no matches for kind \"{k}\" in version \"{av}\""),
                )
                .with_label(format!("{mk} is not served by {av}"))
                .with_help(format!("{mk} is in apiVersion `{}`", versions[0])),
            );
            return None;
        }
        o.go_struct = mk;
        let meta = read_meta(cx, &mut o, span)?;
        return match *mk {
            "Namespace" => read_namespace(cx, o, meta, span),
            "Node" => read_node(cx, o, meta, span),
            "Service" => read_service(cx, o, meta, span),
            "Pod" => read_pod(cx, o, meta, span),
            "Deployment" => read_workload(cx, o, meta, span, WorkloadKind::Deployment),
            "ReplicaSet" => read_workload(cx, o, meta, span, WorkloadKind::ReplicaSet),
            "StatefulSet" => read_workload(cx, o, meta, span, WorkloadKind::StatefulSet),
            _ => read_workload(cx, o, meta, span, WorkloadKind::DaemonSet),
        };
    }
    let known_other = OTHER.iter().any(|(v, ks)| *v == av && ks.contains(&k));
    if known_other {
        let name = node
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::scalar_text)
            .unwrap_or_default()
            .to_string();
        let mut d = Diagnostic::warning(
            kind.span,
            format!("kind {k} is not modelled by knetsim; ignored"),
        )
        .with_label("accepted, but has no effect on the simulation");
        if k == "IPPool" || k == "IPAMConfig" || k == "IPAMConfiguration" {
            d = d.with_help("Calico pools and IPAM settings go under `cluster.cni.calico` (`ipPools:`, `ipamConfig:`)");
        }
        cx.diags.push(d);
        return Some(Object::Other {
            api_version: av.to_string(),
            kind: k.to_string(),
            name,
            span,
        });
    }
    // A real kind under the wrong version, or an unknown kind: the REST mapper's message.
    let mut d = Diagnostic::error(
        kind.span,
        format!("no matches for kind \"{k}\" in version \"{av}\""),
    );
    let served_in: Vec<&str> = OTHER
        .iter()
        .filter(|(_, ks)| ks.contains(&k))
        .map(|(v, _)| *v)
        .collect();
    if let Some(v) = served_in.first() {
        d = d
            .with_label(format!("{k} is not served by {av}"))
            .with_help(format!("{k} is in apiVersion `{v}`"));
    } else if let Some(s) = did_you_mean(k, all_kinds()) {
        d = d
            .with_label("unknown kind")
            .with_help(format!("did you mean `{s}`?"));
    } else {
        d = d.with_label("unknown kind");
        if av.contains('.') {
            d = d.with_help(
                "ensure CRDs are installed first (knetsim does not model custom resources)",
            );
        }
    }
    cx.diags.push(d);
    None
}

/// `metadata`; the object's top-level fields are checked by the kind's reader.
fn read_meta(cx: &mut Ctx<'_>, o: &mut Obj<'_>, span: Span) -> Option<ObjectMeta> {
    let Some(mut m) = o.child(cx, "metadata", "ObjectMeta") else {
        if o.r.get("metadata").is_none_or(Node::is_null) {
            let _ = span;
            cx.diags.push(
                Diagnostic::error(o.r.head_span(), "resource name may not be empty")
                    .with_label("this object has no `metadata.name`"),
            );
        }
        return None;
    };
    // An absent or empty name is kubectl's "may not be empty"; a name of the wrong type is a
    // type error, reported by `str`.
    let name_absent = m.r.get("name").is_none_or(Node::is_null);
    let name = m.str(cx, "name");
    let name_empty = name.as_ref().is_some_and(|n| n.is_empty());
    let namespace = m.str(cx, "namespace");
    let labels = m.string_map(cx, "labels").unwrap_or_default();
    let annotations = m.string_map(cx, "annotations").unwrap_or_default();
    m.allow(&[
        "generateName",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "clusterName",
    ]);
    let meta_span = m.r.head_span();
    m.finish(cx);
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        if name_absent || name_empty {
            cx.diags.push(
                Diagnostic::error(meta_span, "resource name may not be empty")
                    .with_label("`metadata.name` is required"),
            );
        }
        return None;
    };
    Some(ObjectMeta {
        name,
        namespace,
        labels,
        annotations,
    })
}

fn read_namespace(
    cx: &mut Ctx<'_>,
    mut o: Obj<'_>,
    meta: ObjectMeta,
    span: Span,
) -> Option<Object> {
    o.allow(&["spec", "status"]);
    o.finish(cx);
    Some(Object::Namespace(Namespace { meta, span }))
}

fn read_node(cx: &mut Ctx<'_>, mut o: Obj<'_>, meta: ObjectMeta, span: Span) -> Option<Object> {
    let mut pod_cidrs = Vec::new();
    if let Some(mut spec) = o.child(cx, "spec", "NodeSpec") {
        let single = spec.str(cx, "podCIDR");
        let many = spec.strings(cx, "podCIDRs");
        pod_cidrs = match (many, single) {
            (Some(m), _) if !m.is_empty() => m,
            (_, Some(s)) => vec![s],
            _ => Vec::new(),
        };
        spec.allow(&[
            "providerID",
            "unschedulable",
            "taints",
            "configSource",
            "externalID",
        ]);
        spec.finish(cx);
    }
    let mut internal_ips = Vec::new();
    if let Some(mut status) = o.child(cx, "status", "NodeStatus") {
        if let Some(items) = status.list(cx, "addresses", "[]v1.NodeAddress") {
            for (i, item) in items.iter().enumerate() {
                if let Some(mut a) = status.item(cx, item, "addresses", i, "NodeAddress") {
                    let ty = a.str(cx, "type");
                    let addr = a.str(cx, "address");
                    if let (Some(t), Some(addr)) = (ty, addr)
                        && t.value == "InternalIP"
                    {
                        internal_ips.push(addr);
                    }
                    a.finish(cx);
                }
            }
        }
        status.allow(&[
            "capacity",
            "allocatable",
            "phase",
            "conditions",
            "daemonEndpoints",
            "nodeInfo",
            "images",
            "volumesInUse",
            "volumesAttached",
            "config",
            "runtimeHandlers",
            "features",
        ]);
        status.finish(cx);
    }
    o.finish(cx);
    Some(Object::Node(NodeObject {
        meta,
        pod_cidrs,
        internal_ips,
        span,
    }))
}

fn read_service(cx: &mut Ctx<'_>, mut o: Obj<'_>, meta: ObjectMeta, span: Span) -> Option<Object> {
    let mut spec_out = ServiceSpec::default();
    let mut legacy_ip_family = None;
    if let Some(mut spec) = o.child(cx, "spec", "ServiceSpec") {
        spec_out.type_ = spec.str(cx, "type");
        spec_out.selector = spec.string_map(cx, "selector");
        if let Some(items) = spec.list(cx, "ports", "[]v1.ServicePort") {
            for (i, item) in items.iter().enumerate() {
                if let Some(p) = spec.item(cx, item, "ports", i, "ServicePort") {
                    spec_out.ports.push(read_service_port(cx, p, item.span));
                }
            }
        }
        spec_out.cluster_ip = spec.str(cx, "clusterIP");
        spec_out.cluster_ips = spec.strings(cx, "clusterIPs");
        spec_out.ip_families = spec.strings(cx, "ipFamilies");
        spec_out.ip_family_policy = spec.str(cx, "ipFamilyPolicy");
        spec_out.external_ips = spec.strings(cx, "externalIPs").unwrap_or_default();
        spec_out.load_balancer_ip = spec.str(cx, "loadBalancerIP");
        spec_out.load_balancer_source_ranges = spec
            .strings(cx, "loadBalancerSourceRanges")
            .unwrap_or_default();
        spec_out.external_traffic_policy = spec.str(cx, "externalTrafficPolicy");
        spec_out.internal_traffic_policy = spec.str(cx, "internalTrafficPolicy");
        spec_out.session_affinity = spec.str(cx, "sessionAffinity");
        if let Some(mut sac) = spec.child(cx, "sessionAffinityConfig", "SessionAffinityConfig") {
            if let Some(mut cip) = sac.child(cx, "clientIP", "ClientIPConfig") {
                spec_out.session_affinity_timeout =
                    cip.int(cx, "timeoutSeconds", "int32").map(|v| v.value);
                cip.finish(cx);
            }
            sac.finish(cx);
        }
        spec_out.external_name = spec.str(cx, "externalName");
        spec_out.allocate_load_balancer_node_ports = spec.bool(cx, "allocateLoadBalancerNodePorts");
        let _ = spec.int(cx, "healthCheckNodePort", "int32");
        let _ = spec.bool(cx, "publishNotReadyAddresses");
        let _ = spec.str(cx, "loadBalancerClass");
        let _ = spec.str(cx, "trafficDistribution");
        let _ = spec.strings(cx, "topologyKeys");
        if let Some(f) = spec.str(cx, "ipFamily") {
            // Only where the field is gone: on 1.16–1.19 it is the API.
            if cx.version.is_none_or(|v| v.at_least(20)) {
                cx.diags.push(legacy_ip_family_warning(&f));
            }
            legacy_ip_family = Some(f);
        }
        spec.finish(cx);
    }
    if let Some(mut status) = o.child(cx, "status", "ServiceStatus") {
        if let Some(mut lb) = status.child(cx, "loadBalancer", "LoadBalancerStatus") {
            if let Some(items) = lb.list(cx, "ingress", "[]v1.LoadBalancerIngress") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(mut ing) = lb.item(cx, item, "ingress", i, "LoadBalancerIngress") {
                        if let Some(ip) = ing.str(cx, "ip") {
                            spec_out.load_balancer_ingress.push(ip);
                        }
                        ing.allow(&["hostname", "ipMode", "ports"]);
                        ing.finish(cx);
                    }
                }
            }
            lb.finish(cx);
        }
        status.allow(&["conditions"]);
        status.finish(cx);
    }
    o.finish(cx);
    Some(Object::Service(Service {
        meta,
        spec: spec_out,
        legacy_ip_family,
        span,
    }))
}

/// The 1.16–1.19 alpha field. Read without error (the control plane honours it on those
/// versions; from 1.20 kubectl's validation refuses it), and pointed out on versions without
/// it, with the modern equivalent.
fn legacy_ip_family_warning(f: &Spanned<String>) -> Diagnostic {
    let family = if f.value.is_empty() {
        "IPv4"
    } else {
        f.value.as_str()
    };
    Diagnostic::warning(
        f.span,
        "`spec.ipFamily` is the 1.16–1.19 alpha field; it was removed in 1.20",
    )
    .with_label("alpha dual-stack API (Kubernetes 1.16 to 1.19)")
    .with_help(format!(
        "from 1.20 on, the fields are `spec.ipFamilies` and `spec.ipFamilyPolicy`: write `ipFamilyPolicy: SingleStack` and `ipFamilies: [{family}]`"
    ))
}

fn read_service_port(cx: &mut Ctx<'_>, mut p: Obj<'_>, span: Span) -> ServicePort {
    let name = p.str(cx, "name").map(|s| s.value);
    let protocol = p.str(cx, "protocol").map(|s| s.value);
    let port = p.int(cx, "port", "int32").map_or(0, |v| v.value);
    let target_port = match p.r.value("targetPort") {
        None => None,
        Some(n) => match n.as_scalar().map(|s| s.resolve()) {
            Some(Resolved::Int(i)) => i32::try_from(i)
                .ok()
                .map(|v| TargetPort::Number(i64::from(v))),
            Some(Resolved::Str(s)) => Some(TargetPort::Name(s.to_string())),
            _ => None,
        }
        .or_else(|| {
            // IntOrString decodes itself, so there is no Go struct-field message to quote.
            cx.diags.push(
                Diagnostic::error(
                    n.span,
                    format!(
                        "expected a port number or name for `{}.targetPort`, found {}",
                        p.path,
                        n.describe()
                    ),
                )
                .with_label("expected a port number (8080) or a container port name (http)"),
            );
            None
        }),
    };
    let node_port = p.int(cx, "nodePort", "int32").map(|v| v.value);
    let _ = p.str(cx, "appProtocol");
    p.finish(cx);
    ServicePort {
        name,
        protocol,
        port,
        target_port,
        node_port,
        span,
    }
}

/// Every field of `PodSpec` (`k8s.io/api/core/v1/types.go`) that knetsim does not read; they
/// are accepted unchecked.
const POD_SPEC_OTHER: &[&str] = &[
    "volumes",
    "initContainers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
    "hostnameOverride",
];

/// Every field of `Container` that knetsim does not read.
const CONTAINER_OTHER: &[&str] = &[
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];

fn read_pod_spec(cx: &mut Ctx<'_>, mut s: Obj<'_>) -> PodSpec {
    let node_name = s.str(cx, "nodeName");
    let host_network = s.bool(cx, "hostNetwork").unwrap_or(false);
    let node_selector = s.string_map(cx, "nodeSelector").unwrap_or_default();
    let mut containers = Vec::new();
    if let Some(items) = s.list(cx, "containers", "[]v1.Container") {
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = s.item(cx, item, "containers", i, "Container") {
                containers.push(read_container(cx, c));
            }
        }
    }
    // Init containers have the same fields; check them so a typo there is caught too.
    if let Some(items) = s.list(cx, "initContainers", "[]v1.Container") {
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = s.item(cx, item, "initContainers", i, "Container") {
                let _ = read_container(cx, c);
            }
        }
    }
    s.allow(POD_SPEC_OTHER);
    s.finish(cx);
    PodSpec {
        node_name,
        host_network,
        node_selector,
        containers,
    }
}

fn read_container(cx: &mut Ctx<'_>, mut c: Obj<'_>) -> Container {
    let name = c.str(cx, "name").map(|s| s.value).unwrap_or_default();
    let mut ports = Vec::new();
    if let Some(items) = c.list(cx, "ports", "[]v1.ContainerPort") {
        for (i, item) in items.iter().enumerate() {
            if let Some(mut p) = c.item(cx, item, "ports", i, "ContainerPort") {
                let port = ContainerPort {
                    name: p.str(cx, "name").map(|s| s.value),
                    container_port: p.int(cx, "containerPort", "int32").map_or(0, |v| v.value),
                    protocol: p.str(cx, "protocol").map(|s| s.value),
                };
                let _ = p.int(cx, "hostPort", "int32");
                let _ = p.str(cx, "hostIP");
                p.finish(cx);
                ports.push(port);
            }
        }
    }
    c.allow(CONTAINER_OTHER);
    c.finish(cx);
    Container { name, ports }
}

fn read_pod(cx: &mut Ctx<'_>, mut o: Obj<'_>, meta: ObjectMeta, span: Span) -> Option<Object> {
    let spec = match o.child(cx, "spec", "PodSpec") {
        Some(s) => read_pod_spec(cx, s),
        None => PodSpec::default(),
    };
    o.allow(&["status"]);
    o.finish(cx);
    Some(Object::Pod(Pod { meta, spec, span }))
}

fn read_workload(
    cx: &mut Ctx<'_>,
    mut o: Obj<'_>,
    meta: ObjectMeta,
    span: Span,
    kind: WorkloadKind,
) -> Option<Object> {
    let spec_struct = match kind {
        WorkloadKind::Deployment => "DeploymentSpec",
        WorkloadKind::ReplicaSet => "ReplicaSetSpec",
        WorkloadKind::StatefulSet => "StatefulSetSpec",
        WorkloadKind::DaemonSet => "DaemonSetSpec",
    };
    let mut replicas = None;
    let mut selector = BTreeMap::new();
    let mut template_labels = BTreeMap::new();
    let mut template = PodSpec::default();
    if let Some(mut spec) = o.child(cx, "spec", spec_struct) {
        if kind != WorkloadKind::DaemonSet {
            replicas = spec.int(cx, "replicas", "int32");
        }
        if let Some(mut sel) = spec.child(cx, "selector", "LabelSelector") {
            selector = sel.string_map(cx, "matchLabels").unwrap_or_default();
            sel.allow(&["matchExpressions"]);
            sel.finish(cx);
        }
        if let Some(mut t) = spec.child(cx, "template", "PodTemplateSpec") {
            if let Some(mut tm) = t.child(cx, "metadata", "ObjectMeta") {
                template_labels = tm.string_map(cx, "labels").unwrap_or_default();
                tm.allow(&[
                    "name",
                    "namespace",
                    "annotations",
                    "generateName",
                    "creationTimestamp",
                    "finalizers",
                    "ownerReferences",
                    "uid",
                    "resourceVersion",
                    "generation",
                ]);
                tm.finish(cx);
            }
            if let Some(ps) = t.child(cx, "spec", "PodSpec") {
                template = read_pod_spec(cx, ps);
            }
            t.finish(cx);
        }
        spec.allow(&["minReadySeconds", "revisionHistoryLimit"]);
        match kind {
            WorkloadKind::Deployment => spec.allow(&[
                "strategy",
                "paused",
                "progressDeadlineSeconds",
                "rollbackTo",
            ]),
            WorkloadKind::ReplicaSet => {}
            WorkloadKind::StatefulSet => spec.allow(&[
                "volumeClaimTemplates",
                "serviceName",
                "podManagementPolicy",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "ordinals",
            ]),
            WorkloadKind::DaemonSet => spec.allow(&["updateStrategy", "templateGeneration"]),
        }
        spec.finish(cx);
    }
    o.allow(&["status"]);
    o.finish(cx);
    Some(Object::Workload(Workload {
        kind,
        meta,
        replicas,
        selector,
        template_labels,
        template,
        span,
    }))
}
