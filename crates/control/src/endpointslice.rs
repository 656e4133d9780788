//! The EndpointSlice controller (`pkg/controller/endpointslice`), reduced to its steady state.
//!
//! For every Service with a selector, one set of slices per address type the Service has
//! (its `ipFamilies`), each holding at most 100 endpoints (`--max-endpoints-per-slice`
//! default), one endpoint per ready pod that has an address of that family. A Service with no
//! endpoints of a family gets an empty placeholder slice, as the controller's reconciler
//! writes one. Slice names come from `generateName: <service>-`; a Service keeps its slice
//! names from step to step, as the controller updates slices in place.

use std::collections::{BTreeMap, HashMap};

use knetsim_ipam::{Family, NamedRng};

use crate::names;
use crate::state::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, NamespacedName,
    ObjectMeta, OwnerReference, Pod, Service, TargetPort, TargetRef,
};

/// `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Slice names already handed out, so that they survive recomputation.
#[derive(Debug, Default)]
pub struct SliceNames {
    names: BTreeMap<(NamespacedName, Family, usize), String>,
}

/// Pods indexed by namespace and by each `key=value` label, so that selecting pods for
/// 10,000 Services does not scan 150,000 pods each time.
struct PodIndex<'a> {
    by_label: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Pod>>,
}

impl<'a> PodIndex<'a> {
    fn new(pods: &'a BTreeMap<NamespacedName, Pod>) -> Self {
        let mut by_label: HashMap<(&str, &str, &str), Vec<&Pod>> = HashMap::new();
        // BTreeMap order makes every list sorted by (namespace, name).
        for (key, pod) in pods {
            for (k, v) in &pod.metadata.labels {
                by_label.entry((key.namespace.as_str(), k.as_str(), v.as_str())).or_default().push(pod);
            }
        }
        PodIndex { by_label }
    }

    /// Pods in `ns` whose labels contain every pair of `selector`, sorted by name.
    fn select(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<&'a Pod> {
        let mut lists: Vec<&Vec<&Pod>> = Vec::with_capacity(selector.len());
        for (k, v) in selector {
            match self.by_label.get(&(ns, k.as_str(), v.as_str())) {
                Some(l) => lists.push(l),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let Some((first, rest)) = lists.split_first() else { return Vec::new() };
        first
            .iter()
            .copied()
            .filter(|p| rest.is_empty() || selector.iter().all(|(k, v)| p.metadata.labels.get(k) == Some(v)))
            .collect()
    }
}

/// Recomputes every EndpointSlice from Services and pods.
pub fn reconcile(
    state: &mut ClusterState,
    names: &mut SliceNames,
    rng: &mut NamedRng,
    api_version: &'static str,
) {
    let index = PodIndex::new(&state.pods);
    let mut slices = BTreeMap::new();
    for (key, svc) in &state.services {
        let Some(selector) = svc.spec.selector.as_ref().filter(|s| !s.is_empty()) else { continue };
        if svc.spec.type_ == "ExternalName" {
            continue;
        }
        let pods = index.select(&key.namespace, selector);
        for &family in &svc.spec.ip_families {
            let endpoints = endpoints_for(svc, &pods, family);
            for (i, chunk) in chunked(endpoints).into_iter().enumerate() {
                let name = names
                    .names
                    .entry((key.clone(), family, i))
                    .or_insert_with(|| names::generate_name(rng, &format!("{}-", key.name)))
                    .clone();
                let slice = make_slice(key, svc, family, name.clone(), chunk, api_version);
                slices.insert(NamespacedName::new(key.namespace.clone(), name), slice);
            }
        }
    }
    state.endpoint_slices = slices;
}

/// One endpoint per running pod with an address of `family`, with the ports it resolves to.
fn endpoints_for(svc: &Service, pods: &[&Pod], family: Family) -> Vec<(Endpoint, Vec<EndpointPort>)> {
    let mut out = Vec::new();
    for pod in pods {
        if !pod.is_running() {
            continue;
        }
        let Some(ip) = pod.ip_of(family) else { continue };
        let ports = svc
            .spec
            .ports
            .iter()
            .filter_map(|p| {
                let port = match &p.target_port {
                    TargetPort::Number(n) => Some(*n),
                    TargetPort::Name(name) => pod
                        .spec
                        .containers
                        .iter()
                        .flat_map(|c| &c.ports)
                        .find(|cp| cp.name.as_deref() == Some(name.as_str()) && cp.protocol == p.protocol)
                        .map(|cp| cp.container_port),
                }?;
                Some(EndpointPort { name: p.name.clone(), port, protocol: p.protocol.clone() })
            })
            .collect();
        let endpoint = Endpoint {
            addresses: vec![ip],
            conditions: EndpointConditions { ready: true, serving: true, terminating: false },
            node_name: pod.spec.node_name.clone(),
            target_ref: Some(TargetRef {
                kind: "Pod".into(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone(),
            }),
        };
        out.push((endpoint, ports));
    }
    out
}

/// Groups endpoints by their resolved port list (pods can resolve a named port differently),
/// then cuts each group into slices of at most [`MAX_ENDPOINTS_PER_SLICE`]. A Service without
/// endpoints gets one empty placeholder.
fn chunked(endpoints: Vec<(Endpoint, Vec<EndpointPort>)>) -> Vec<(Vec<Endpoint>, Vec<EndpointPort>)> {
    let mut groups: Vec<(Vec<EndpointPort>, Vec<Endpoint>)> = Vec::new();
    for (e, ports) in endpoints {
        let key = ports_key(&ports);
        match groups.iter_mut().find(|(p, _)| ports_key(p) == key) {
            Some((_, list)) => list.push(e),
            None => groups.push((ports, vec![e])),
        }
    }
    if groups.is_empty() {
        return vec![(Vec::new(), Vec::new())];
    }
    let mut out = Vec::new();
    for (ports, list) in groups {
        for chunk in list.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push((chunk.to_vec(), ports.clone()));
        }
    }
    out
}

fn ports_key(ports: &[EndpointPort]) -> Vec<(Option<&str>, u16, &str)> {
    ports.iter().map(|p| (p.name.as_deref(), p.port, p.protocol.as_str())).collect()
}

fn make_slice(
    key: &NamespacedName,
    svc: &Service,
    family: Family,
    name: String,
    (endpoints, ports): (Vec<Endpoint>, Vec<EndpointPort>),
    api_version: &'static str,
) -> EndpointSlice {
    let mut labels = svc.metadata.labels.clone();
    labels.insert("endpointslice.kubernetes.io/managed-by".into(), "endpointslice-controller.k8s.io".into());
    labels.insert("kubernetes.io/service-name".into(), key.name.clone());
    if svc.spec.is_headless() {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    EndpointSlice {
        api_version,
        kind: "EndpointSlice",
        metadata: ObjectMeta {
            name,
            namespace: Some(key.namespace.clone()),
            labels,
            annotations: BTreeMap::new(),
            owner_references: vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: key.name.clone(),
                controller: true,
            }],
        },
        address_type: family,
        endpoints,
        ports,
    }
}
