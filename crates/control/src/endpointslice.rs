//! The EndpointSlice controller (`pkg/controller/endpointslice`), reduced to its steady state.
//!
//! For every Service with a selector, one set of slices per address type the Service has
//! (its `ipFamilies`), each holding at most 100 endpoints (`--max-endpoints-per-slice`
//! default), one endpoint per ready pod that has an address of that family. A Service with no
//! endpoints of a family gets an empty placeholder slice, as the controller's reconciler
//! writes one. Slice names come from `generateName: <service>-`, with the random suffix drawn
//! from a stream seeded by the scenario seed, the Service, the family and the slice's index:
//! a Service keeps its slice names from step to step (the controller updates slices in place),
//! and Services are reconciled in parallel with the same result whatever the thread count.

use std::collections::BTreeMap;

use knetsim_ipam::Family;

use crate::fxhash::FxHashMap;
use crate::names;
use crate::state::{
    ClusterState, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, IpList,
    NamespacedName, ObjectMeta, OwnerReference, Pod, Service, TargetPort, TargetRef,
};

/// `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Pods indexed by namespace and by each `key=value` label, so that selecting pods for
/// 10,000 Services does not scan 150,000 pods each time.
struct PodIndex<'a> {
    by_label: FxHashMap<(&'a str, &'a str, &'a str), Vec<&'a Pod>>,
}

impl<'a> PodIndex<'a> {
    /// Indexes the labels whose keys appear in `selector_keys` (the only ones any Service
    /// selects on).
    fn new(
        pods: &'a BTreeMap<NamespacedName, Box<Pod>>,
        selector_keys: &std::collections::BTreeSet<&str>,
    ) -> Self {
        use rayon::prelude::*;
        type Lists<'p> = FxHashMap<(&'p str, &'p str, &'p str), Vec<&'p Pod>>;
        // BTreeMap order makes every list sorted by (namespace, name). The pods are indexed
        // in runs, in parallel, and each run's lists appended in run order, which keeps them
        // sorted.
        let all: Vec<(&NamespacedName, &Pod)> = pods.iter().map(|(k, p)| (k, &**p)).collect();
        let runs: Vec<Lists<'a>> = all
            .par_chunks(8192)
            .map(|run| {
                let mut lists: Lists<'a> = FxHashMap::default();
                for &(key, pod) in run {
                    for (k, v) in &pod.metadata.labels {
                        if selector_keys.contains(k.as_str()) {
                            lists
                                .entry((key.namespace.as_str(), k.as_str(), v.as_str()))
                                .or_default()
                                .push(pod);
                        }
                    }
                }
                lists
            })
            .collect();
        let mut by_label: Lists<'a> = FxHashMap::default();
        for run in runs {
            for (k, mut pods) in run {
                by_label.entry(k).or_default().append(&mut pods);
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
        let Some((first, rest)) = lists.split_first() else {
            return Vec::new();
        };
        first
            .iter()
            .copied()
            .filter(|p| {
                rest.is_empty()
                    || selector
                        .iter()
                        .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
            })
            .collect()
    }
}

/// Recomputes every EndpointSlice from Services and pods.
pub fn reconcile(state: &mut ClusterState, seed: u64, api_version: &'static str) {
    use rayon::prelude::*;
    let selector_keys: std::collections::BTreeSet<&str> = state
        .services
        .values()
        .filter_map(|s| s.spec.selector.as_ref())
        .flat_map(|sel| sel.keys().map(String::as_str))
        .collect();
    let index = PodIndex::new(&state.pods, &selector_keys);
    let services: Vec<(&NamespacedName, &Service)> = state.services.iter().collect();
    let per_service: Vec<Vec<EndpointSlice>> = services
        .par_iter()
        .map(|(key, svc)| {
            let Some(selector) = svc.spec.selector.as_ref().filter(|s| !s.is_empty()) else {
                return Vec::new();
            };
            if svc.spec.type_ == "ExternalName" {
                return Vec::new();
            }
            let pods = index.select(&key.namespace, selector);
            let mut out = Vec::new();
            for &family in &svc.spec.ip_families {
                for (i, chunk) in slices_for(svc, &pods, family).into_iter().enumerate() {
                    let mut rng = knetsim_ipam::rng::named(
                        seed,
                        &format!(
                            "kube-controller-manager/endpointslice/{}/{}/{family}/{i}",
                            key.namespace, key.name
                        ),
                    );
                    let name = names::generate_name(&mut rng, &format!("{}-", key.name));
                    out.push(make_slice(key, svc, family, name, chunk, api_version));
                }
            }
            out
        })
        .collect();
    let mut slices: Vec<Option<EndpointSlice>> =
        Vec::with_capacity(per_service.iter().map(Vec::len).sum());
    for s in per_service {
        slices.extend(s.into_iter().map(Some));
    }
    // Slice names end in a random suffix, so the slices of one Service are not always in name
    // order: sort their indices (a stable sort, which keeps the last of equal names last, as
    // collecting into the map would), not the slices, then move each slice once.
    fn key(s: &Option<EndpointSlice>) -> (&str, &str) {
        let m = &s.as_ref().expect("not taken yet").metadata;
        (m.namespace.as_deref().unwrap_or_default(), m.name.as_str())
    }
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by(|&a, &b| key(&slices[a]).cmp(&key(&slices[b])));
    state.endpoint_slices = order
        .into_iter()
        .map(|i| {
            let s = slices[i].take().expect("each slice is taken once");
            (
                NamespacedName::new(
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone(),
                ),
                s,
            )
        })
        .collect();
}

/// The endpoints of one Service and family, grouped by the ports they resolve to (pods can
/// resolve a named `targetPort` differently), each group cut into slices of at most
/// [`MAX_ENDPOINTS_PER_SLICE`]. A Service without endpoints gets one empty placeholder.
fn slices_for(
    svc: &Service,
    pods: &[&Pod],
    family: Family,
) -> Vec<(Vec<Endpoint>, Vec<EndpointPort>)> {
    // With numeric target ports (the common case) every pod resolves the same ports: resolve
    // once, and group without per-pod work.
    let numeric = svc
        .spec
        .ports
        .iter()
        .all(|p| matches!(p.target_port, TargetPort::Number(_)));
    let mut groups: Vec<(Vec<Option<u16>>, Vec<Endpoint>)> = Vec::new();
    for pod in pods {
        if !pod.is_running() {
            continue;
        }
        let Some(ip) = pod.ip_of(family) else {
            continue;
        };
        let key: Vec<Option<u16>> = if numeric {
            Vec::new()
        } else {
            resolve_ports(svc, pod)
        };
        let endpoint = Endpoint {
            addresses: IpList::one(ip),
            conditions: EndpointConditions {
                ready: true,
                serving: true,
                terminating: false,
            },
            node_name: pod.spec.node_name.clone(),
            target_ref: Some(TargetRef {
                kind: "Pod",
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone(),
            }),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(endpoint),
            None => groups.push((key, vec![endpoint])),
        }
    }
    if groups.is_empty() {
        return vec![(Vec::new(), Vec::new())];
    }
    let mut out = Vec::new();
    for (key, list) in groups {
        let ports: Vec<EndpointPort> = svc
            .spec
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let port = match &p.target_port {
                    TargetPort::Number(n) => Some(*n),
                    TargetPort::Name(_) => key.get(i).copied().flatten(),
                }?;
                Some(EndpointPort {
                    name: p.name.clone(),
                    port,
                    protocol: p.protocol.clone(),
                })
            })
            .collect();
        let mut list = list;
        while list.len() > MAX_ENDPOINTS_PER_SLICE {
            let rest = list.split_off(MAX_ENDPOINTS_PER_SLICE);
            out.push((list, ports.clone()));
            list = rest;
        }
        out.push((list, ports));
    }
    out
}

/// The container port each Service port's `targetPort` names on this pod (`None` when the
/// pod has no such port, and the port is left out of its slice).
fn resolve_ports(svc: &Service, pod: &Pod) -> Vec<Option<u16>> {
    svc.spec
        .ports
        .iter()
        .map(|p| match &p.target_port {
            TargetPort::Number(n) => Some(*n),
            TargetPort::Name(name) => pod
                .spec
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|cp| cp.name.as_deref() == Some(name.as_str()) && cp.protocol == p.protocol)
                .map(|cp| cp.container_port),
        })
        .collect()
}

fn make_slice(
    key: &NamespacedName,
    svc: &Service,
    family: Family,
    name: String,
    (endpoints, ports): (Vec<Endpoint>, Vec<EndpointPort>),
    api_version: &'static str,
) -> EndpointSlice {
    let mut labels = (*svc.metadata.labels).clone();
    labels.insert(
        "endpointslice.kubernetes.io/managed-by".into(),
        "endpointslice-controller.k8s.io".into(),
    );
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
            labels: labels.into(),
            annotations: BTreeMap::new(),
            owner_references: vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: key.name.clone(),
                controller: true,
            }]
            .into(),
        },
        address_type: family,
        endpoints,
        ports,
    }
}
