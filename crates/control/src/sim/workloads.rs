//! The workload controllers: Deployment (through its ReplicaSet), ReplicaSet, StatefulSet and
//! DaemonSet, each creating and deleting pods until the desired count is met.

use std::collections::BTreeMap;

use knetsim_model::objects::{self, Workload, WorkloadKind};

use super::Sim;
use crate::fxhash::FxHasher;
use crate::names;
use crate::state::{
    Container, ContainerPort, Labels, NamespacedName, ObjectMeta, OwnerReference, Pod, PodSpec,
    PodStatus, Shared,
};

/// The workloads that exist, by kind and namespaced name.
#[derive(Debug, Default)]
pub(crate) struct Workloads<'a> {
    items: BTreeMap<(WorkloadKind, NamespacedName), Record<'a>>,
}

#[derive(Debug)]
struct Record<'a> {
    /// The manifest as applied: the scenario's own object (it outlives the simulation).
    spec: &'a Workload,
    /// Desired replicas (`spec.replicas`, default 1; ignored for DaemonSets).
    replicas: u64,
    /// Deployments: the pod-template-hash of the current ReplicaSet.
    template_hash: String,
}

fn kind_of(s: &str) -> Option<WorkloadKind> {
    Some(match s {
        "Deployment" => WorkloadKind::Deployment,
        "ReplicaSet" => WorkloadKind::ReplicaSet,
        "StatefulSet" => WorkloadKind::StatefulSet,
        "DaemonSet" => WorkloadKind::DaemonSet,
        _ => return None,
    })
}

/// A canonical text of the template fields knetsim models, for the pod-template-hash.
fn canonical_template(w: &Workload) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (k, v) in &w.template_labels {
        let _ = write!(s, "label {k}={v};");
    }
    let _ = write!(s, "hostNetwork={};", w.template.host_network);
    for (k, v) in &w.template.node_selector {
        let _ = write!(s, "nodeSelector {k}={v};");
    }
    for c in &w.template.containers {
        let _ = write!(s, "container {};", c.name);
        for p in &c.ports {
            let _ = write!(
                s,
                "port {:?} {} {:?};",
                p.name, p.container_port, p.protocol
            );
        }
    }
    s
}

impl<'a> Workloads<'a> {
    pub fn apply(&mut self, ns: String, w: &'a Workload) {
        let key = (w.kind, NamespacedName::new(ns, w.meta.name.value.clone()));
        let replicas = w
            .replicas
            .as_ref()
            .map(|r| r.value.max(0) as u64)
            .unwrap_or(1);
        let template_hash = names::pod_template_hash(&canonical_template(w));
        self.items.insert(
            key,
            Record {
                spec: w,
                replicas,
                template_hash,
            },
        );
    }

    pub fn delete(&mut self, kind: &str, key: &NamespacedName) -> bool {
        kind_of(kind).is_some_and(|k| self.items.remove(&(k, key.clone())).is_some())
    }

    pub fn delete_namespace(&mut self, ns: &str) {
        self.items.retain(|(_, k), _| k.namespace != ns);
    }

    pub fn scale(&mut self, kind: &str, key: &NamespacedName, replicas: i64) -> bool {
        match kind_of(kind).and_then(|k| self.items.get_mut(&(k, key.clone()))) {
            Some(r) => {
                r.replicas = replicas.max(0) as u64;
                true
            }
            None => false,
        }
    }
}

/// The controller that owns a pod: (owner kind, owner name).
fn owner(kind: WorkloadKind, name: &str, hash: &str) -> (&'static str, String) {
    match kind {
        WorkloadKind::Deployment => ("ReplicaSet", format!("{name}-{hash}")),
        WorkloadKind::ReplicaSet => ("ReplicaSet", name.to_owned()),
        WorkloadKind::StatefulSet => ("StatefulSet", name.to_owned()),
        WorkloadKind::DaemonSet => ("DaemonSet", name.to_owned()),
    }
}

/// The containers of a pod spec as the pod object lists them (ports with their protocol
/// defaulted), built once per template and shared by its pods.
pub(crate) fn containers_of(spec: &objects::PodSpec) -> Shared<Vec<Container>> {
    spec.containers
        .iter()
        .map(|c| Container {
            name: c.name.clone(),
            ports: c
                .ports
                .iter()
                .filter_map(|p| {
                    Some(ContainerPort {
                        name: p.name.clone(),
                        container_port: u16::try_from(p.container_port).ok()?,
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    })
                })
                .collect(),
        })
        .collect::<Vec<_>>()
        .into()
}

/// Builds a pod object (unscheduled, no addresses) from a pod spec.
pub(crate) fn pod_from_spec(
    key: &NamespacedName,
    labels: Labels,
    spec: &objects::PodSpec,
    containers: Shared<Vec<Container>>,
    owner_references: Shared<Vec<OwnerReference>>,
) -> Pod {
    Pod {
        api_version: "v1",
        kind: "Pod",
        metadata: ObjectMeta {
            name: key.name.clone(),
            namespace: Some(key.namespace.clone()),
            labels,
            annotations: BTreeMap::new(),
            owner_references,
        },
        spec: PodSpec {
            node_name: spec.node_name.as_ref().map(|n| n.value.clone()),
            host_network: spec.host_network,
            node_selector: spec.node_selector.clone(),
            containers,
        },
        status: PodStatus {
            phase: "Pending",
            ..Default::default()
        },
        sim: Default::default(),
    }
}

/// The pods one reconcile creates. Names are drawn from the controller's one RNG stream in
/// workload order (so they are the same on any number of threads); the pod objects are then
/// built in parallel and merged into the pod map in one bulk operation, which costs far less
/// than 150,000 separate inserts into a name-ordered map.
#[derive(Default)]
struct Batch<'a> {
    /// Each with its place in creation order (the orders are sorted by name before the pods
    /// are made).
    orders: Vec<(u32, Order<'a>)>,
    /// The first order with each name hash, for the generated-name collision check without
    /// a second copy of every name; `overflow` holds the (rare) orders whose name hash an
    /// earlier order already had.
    names: std::collections::HashMap<u64, u32, std::hash::BuildHasherDefault<IdHasher>>,
    overflow: Vec<u32>,
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn name_hash(key: &NamespacedName) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// One pod to create: its name, the template it comes from, and (DaemonSets) its node.
struct Order<'a> {
    key: NamespacedName,
    template: std::sync::Arc<Template<'a>>,
    labels: Option<Labels>,
    node: Option<String>,
}

/// What every pod of one workload shares.
struct Template<'a> {
    labels: Labels,
    spec: &'a objects::PodSpec,
    containers: Shared<Vec<Container>>,
    owner_references: Shared<Vec<OwnerReference>>,
}

impl<'a> Template<'a> {
    fn new(
        labels: BTreeMap<String, String>,
        spec: &'a objects::PodSpec,
        owner_references: Vec<OwnerReference>,
    ) -> std::sync::Arc<Template<'a>> {
        std::sync::Arc::new(Template {
            labels: labels.into(),
            containers: containers_of(spec),
            spec,
            owner_references: owner_references.into(),
        })
    }
}

impl<'a> Batch<'a> {
    fn taken(&self, sim: &Sim<'_>, key: &NamespacedName) -> bool {
        let is = |i: &u32| self.orders[*i as usize].1.key == *key;
        sim.state.pods.contains_key(key)
            || self
                .names
                .get(&name_hash(key))
                .is_some_and(|i| is(i) || self.overflow.iter().any(is))
    }

    fn reserve(&mut self, n: usize) {
        self.orders.reserve(n);
        self.names.reserve(n);
    }

    fn push(&mut self, order: Order<'a>) {
        let id = u32::try_from(self.orders.len()).expect("fewer than 2^32 pods");
        match self.names.entry(name_hash(&order.key)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.overflow.push(id),
        }
        self.orders.push((id, order));
    }

    /// Builds the pods and adds them, in creation order, to the cluster.
    fn flush(self, sim: &mut Sim<'_>) {
        use rayon::prelude::*;
        if self.orders.is_empty() {
            return;
        }
        let first = sim.next_pod_seq;
        sim.next_pod_seq += self.orders.len() as u64;
        // Creation order is the order of the orders; the map wants name order. Sorting the
        // small orders (not the built pods) keeps the moves cheap.
        let mut orders = self.orders;
        orders.par_sort_unstable_by(|a, b| a.1.key.cmp(&b.1.key));
        let pods: Vec<(NamespacedName, Box<Pod>)> = orders
            .into_par_iter()
            .map(|(place, o)| {
                let labels = o.labels.unwrap_or_else(|| o.template.labels.clone());
                let mut pod = pod_from_spec(
                    &o.key,
                    labels,
                    o.template.spec,
                    o.template.containers.clone(),
                    o.template.owner_references.clone(),
                );
                if o.node.is_some() {
                    pod.spec.node_name = o.node;
                }
                pod.sim.creation_index = first + u64::from(place);
                (o.key, Box::new(pod))
            })
            .collect();
        // Sorted, distinct keys (the batch never takes a name twice): `from_iter` finds one
        // run and builds the tree bottom-up, and `append` merges two trees in linear time (or
        // moves one into an empty map).
        let mut new: BTreeMap<NamespacedName, Box<Pod>> = pods.into_iter().collect();
        sim.state.pods.append(&mut new);
    }
}

/// Brings every workload's pods to the desired count.
pub(crate) fn reconcile(sim: &mut Sim<'_>) {
    let mut batch = Batch::default();
    reconcile_into(sim, &mut batch);
    batch.flush(sim);
}

fn reconcile_into<'a>(sim: &mut Sim<'a>, batch: &mut Batch<'a>) {
    // Group existing pods by their controlling owner.
    let mut owned: BTreeMap<(String, String, String), Vec<NamespacedName>> = BTreeMap::new();
    for (key, pod) in &sim.state.pods {
        if let Some(o) = pod.metadata.owner_references.iter().find(|o| o.controller) {
            owned
                .entry((key.namespace.clone(), o.kind.clone(), o.name.clone()))
                .or_default()
                .push(key.clone());
        }
    }
    // The records are read while the controllers change the rest of the simulation; they are
    // put back below.
    let items = std::mem::take(&mut sim.workloads.items);
    // Room for the pods the controllers may create (bounded: `replicas` is user input), so
    // that the orders and the name index do not grow, and move, as they fill.
    let wanted: u64 = items
        .iter()
        .map(|((kind, _), rec)| match kind {
            WorkloadKind::DaemonSet => sim.nodes.len() as u64,
            _ => rec.replicas,
        })
        .fold(0, u64::saturating_add);
    batch.reserve(usize::try_from(wanted.min(1 << 20)).unwrap_or(0));
    let mut wanted_owners = std::collections::BTreeSet::new();
    for ((kind, key), rec) in &items {
        let (owner_kind, owner_name) = owner(*kind, &key.name, &rec.template_hash);
        // Without pods owned by anything (the first reconcile of a large scenario) there is
        // nothing to look up and nothing to collect.
        let mut pods = Vec::new();
        if !owned.is_empty() {
            let owner_key = (
                key.namespace.clone(),
                owner_kind.to_owned(),
                owner_name.clone(),
            );
            if let Some(p) = owned.get(&owner_key) {
                pods = p.clone();
            }
            wanted_owners.insert(owner_key);
        }
        match kind {
            WorkloadKind::DaemonSet => {
                reconcile_daemonset(sim, batch, rec, key, owner_name, &mut pods)
            }
            WorkloadKind::StatefulSet => reconcile_statefulset(sim, batch, rec, key, &mut pods),
            _ => reconcile_replicas(
                sim, batch, rec, *kind, key, owner_kind, owner_name, &mut pods,
            ),
        }
    }
    sim.workloads.items = items;
    // Pods whose controller is gone (workload deleted, or a Deployment rolled to a new
    // template) are garbage-collected.
    for ((ns, kind, name), pods) in owned {
        let is_workload_kind = matches!(kind.as_str(), "ReplicaSet" | "StatefulSet" | "DaemonSet");
        if is_workload_kind && !wanted_owners.contains(&(ns, kind, name)) {
            for p in pods {
                sim.delete_pod(&p);
            }
        }
    }
}

fn owner_ref(kind: &str, name: &str) -> Vec<OwnerReference> {
    vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        controller: true,
    }]
}

#[allow(clippy::too_many_arguments)]
fn reconcile_replicas<'a>(
    sim: &mut Sim<'a>,
    batch: &mut Batch<'a>,
    rec: &Record<'a>,
    kind: WorkloadKind,
    key: &NamespacedName,
    owner_kind: &str,
    owner_name: String,
    pods: &mut Vec<NamespacedName>,
) {
    let want = rec.replicas as usize;
    let mut labels = rec.spec.template_labels.clone();
    if kind == WorkloadKind::Deployment {
        labels.insert("pod-template-hash".into(), rec.template_hash.clone());
    }
    let template = Template::new(
        labels,
        &rec.spec.template,
        owner_ref(owner_kind, &owner_name),
    );
    if pods.len() > want {
        // controller.ActivePodsWithRanks: unscheduled before scheduled, pending before
        // running, then the newest first.
        pods.sort_by_key(|p| {
            let pod = &sim.state.pods[p];
            (
                pod.spec.node_name.is_some(),
                pod.is_running(),
                std::cmp::Reverse(pod.sim.creation_index),
            )
        });
        let excess: Vec<NamespacedName> = pods.drain(..pods.len() - want).collect();
        for p in excess {
            sim.delete_pod(&p);
        }
    }
    let base = format!("{owner_name}-");
    let mut created = 0;
    while pods.len() + created < want {
        let name = names::generate_name(&mut sim.name_rng, &base);
        let pkey = NamespacedName::new(key.namespace.clone(), name);
        if batch.taken(sim, &pkey) {
            continue;
        }
        batch.push(Order {
            key: pkey,
            template: template.clone(),
            labels: None,
            node: None,
        });
        created += 1;
    }
}

fn reconcile_statefulset<'a>(
    sim: &mut Sim<'a>,
    batch: &mut Batch<'a>,
    rec: &Record<'a>,
    key: &NamespacedName,
    pods: &mut [NamespacedName],
) {
    let want = rec.replicas;
    let base_labels = rec.spec.template_labels.clone();
    let hash = rec.template_hash.clone();
    let template = Template::new(
        BTreeMap::new(),
        &rec.spec.template,
        owner_ref("StatefulSet", &key.name),
    );
    // Ordinals 0..replicas exist; anything at or above `replicas` is deleted, highest first.
    pods.sort_by_key(|p| std::cmp::Reverse(ordinal(&p.name, &key.name)));
    for p in pods.iter() {
        if ordinal(&p.name, &key.name).is_none_or(|o| o >= want) {
            sim.delete_pod(p);
        }
    }
    for i in 0..want {
        let pkey = NamespacedName::new(key.namespace.clone(), format!("{}-{i}", key.name));
        if batch.taken(sim, &pkey) {
            continue;
        }
        let mut labels = base_labels.clone();
        labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
        labels.insert(
            "controller-revision-hash".into(),
            format!("{}-{hash}", key.name),
        );
        labels.insert(
            "statefulset.kubernetes.io/pod-name".into(),
            pkey.name.clone(),
        );
        batch.push(Order {
            key: pkey,
            template: template.clone(),
            labels: Some(labels.into()),
            node: None,
        });
    }
}

fn ordinal(pod: &str, set: &str) -> Option<u64> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn reconcile_daemonset<'a>(
    sim: &mut Sim<'a>,
    batch: &mut Batch<'a>,
    rec: &Record<'a>,
    key: &NamespacedName,
    owner_name: String,
    pods: &mut [NamespacedName],
) {
    let mut labels = rec.spec.template_labels.clone();
    labels.insert("controller-revision-hash".into(), rec.template_hash.clone());
    let template = Template::new(
        labels,
        &rec.spec.template,
        owner_ref("DaemonSet", &owner_name),
    );
    let spec = &template.spec;
    // One pod per node matching the node selector. DaemonSet pods tolerate the not-ready
    // taints, so NotReady nodes get theirs too.
    let mut covered = std::collections::BTreeSet::new();
    for p in pods.iter() {
        let node = sim.state.pods[p].spec.node_name.clone();
        match node {
            Some(n) if sim.state.nodes.contains_key(&n) && !covered.contains(&n) => {
                covered.insert(n);
            }
            _ => sim.delete_pod(p),
        }
    }
    for node in sim.nodes_in_order() {
        if covered.contains(&node) {
            continue;
        }
        let labels_ok = spec
            .node_selector
            .iter()
            .all(|(k, v)| sim.state.nodes[&node].metadata.labels.get(k) == Some(v));
        if !labels_ok {
            continue;
        }
        // The API server rejects a generated name that exists (AlreadyExists) and the
        // controller tries again with a new one.
        let pkey = loop {
            let name = names::generate_name(&mut sim.name_rng, &format!("{owner_name}-"));
            let pkey = NamespacedName::new(key.namespace.clone(), name);
            if !batch.taken(sim, &pkey) {
                break pkey;
            }
        };
        batch.push(Order {
            key: pkey,
            template: template.clone(),
            labels: None,
            node: Some(node.clone()),
        });
    }
}
