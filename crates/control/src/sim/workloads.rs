//! The workload controllers: Deployment (through its ReplicaSet), ReplicaSet, StatefulSet and
//! DaemonSet, each creating and deleting pods until the desired count is met.

use std::collections::BTreeMap;

use knetsim_model::objects::{self, Workload, WorkloadKind};

use super::Sim;
use crate::names;
use crate::state::{Container, ContainerPort, NamespacedName, ObjectMeta, OwnerReference, Pod, PodSpec, PodStatus};

/// The workloads that exist, by kind and namespaced name.
#[derive(Debug, Default)]
pub(crate) struct Workloads {
    items: BTreeMap<(WorkloadKind, NamespacedName), Record>,
}

#[derive(Debug)]
struct Record {
    spec: Workload,
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
    let mut s = String::new();
    for (k, v) in &w.template_labels {
        s.push_str(&format!("label {k}={v};"));
    }
    s.push_str(&format!("hostNetwork={};", w.template.host_network));
    for (k, v) in &w.template.node_selector {
        s.push_str(&format!("nodeSelector {k}={v};"));
    }
    for c in &w.template.containers {
        s.push_str(&format!("container {};", c.name));
        for p in &c.ports {
            s.push_str(&format!("port {:?} {} {:?};", p.name, p.container_port, p.protocol));
        }
    }
    s
}

impl Workloads {
    pub fn apply(&mut self, ns: String, w: Workload) {
        let key = (w.kind, NamespacedName::new(ns, w.meta.name.value.clone()));
        let replicas = w.replicas.as_ref().map(|r| r.value.max(0) as u64).unwrap_or(1);
        let template_hash = names::pod_template_hash(&canonical_template(&w));
        self.items.insert(key, Record { spec: w, replicas, template_hash });
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

/// Builds a pod object (unscheduled, no addresses) from a pod spec.
pub(crate) fn pod_from_spec(
    key: &NamespacedName,
    labels: BTreeMap<String, String>,
    spec: &objects::PodSpec,
    owner_references: Vec<OwnerReference>,
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
            containers: spec
                .containers
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
                .collect(),
        },
        status: PodStatus { phase: "Pending".into(), ..Default::default() },
        sim: Default::default(),
    }
}

/// Brings every workload's pods to the desired count.
pub(crate) fn reconcile(sim: &mut Sim<'_>) {
    // Group existing pods by their controlling owner.
    let mut owned: BTreeMap<(String, String, String), Vec<NamespacedName>> = BTreeMap::new();
    for (key, pod) in &sim.state.pods {
        if let Some(o) = pod.metadata.owner_references.iter().find(|o| o.controller) {
            owned.entry((key.namespace.clone(), o.kind.clone(), o.name.clone())).or_default().push(key.clone());
        }
    }
    let keys: Vec<(WorkloadKind, NamespacedName)> = sim.workloads.items.keys().cloned().collect();
    let mut wanted_owners = std::collections::BTreeSet::new();
    for (kind, key) in keys {
        let rec = &sim.workloads.items[&(kind, key.clone())];
        let (owner_kind, owner_name) = owner(kind, &key.name, &rec.template_hash);
        wanted_owners.insert((key.namespace.clone(), owner_kind.to_owned(), owner_name.clone()));
        let mut pods = owned.get(&(key.namespace.clone(), owner_kind.to_owned(), owner_name.clone())).cloned().unwrap_or_default();
        match kind {
            WorkloadKind::DaemonSet => reconcile_daemonset(sim, &key, owner_name, &mut pods),
            WorkloadKind::StatefulSet => reconcile_statefulset(sim, &key, &mut pods),
            _ => reconcile_replicas(sim, kind, &key, owner_kind, owner_name, &mut pods),
        }
    }
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
    vec![OwnerReference { api_version: "apps/v1".into(), kind: kind.into(), name: name.into(), controller: true }]
}

fn reconcile_replicas(
    sim: &mut Sim<'_>,
    kind: WorkloadKind,
    key: &NamespacedName,
    owner_kind: &str,
    owner_name: String,
    pods: &mut Vec<NamespacedName>,
) {
    let rec = &sim.workloads.items[&(kind, key.clone())];
    let want = rec.replicas as usize;
    let spec = rec.spec.template.clone();
    let mut labels = rec.spec.template_labels.clone();
    if kind == WorkloadKind::Deployment {
        labels.insert("pod-template-hash".into(), rec.template_hash.clone());
    }
    if pods.len() > want {
        // controller.ActivePodsWithRanks: unscheduled before scheduled, pending before
        // running, then the newest first.
        pods.sort_by_key(|p| {
            let pod = &sim.state.pods[p];
            (pod.spec.node_name.is_some(), pod.is_running(), std::cmp::Reverse(pod.sim.creation_index))
        });
        let excess: Vec<NamespacedName> = pods.drain(..pods.len() - want).collect();
        for p in excess {
            sim.delete_pod(&p);
        }
    }
    while pods.len() < want {
        let name = names::generate_name(&mut sim.name_rng, &format!("{owner_name}-"));
        let pkey = NamespacedName::new(key.namespace.clone(), name);
        if sim.state.pods.contains_key(&pkey) {
            continue;
        }
        let pod = pod_from_spec(&pkey, labels.clone(), &spec, owner_ref(owner_kind, &owner_name));
        sim.insert_pod(pkey.clone(), pod);
        pods.push(pkey);
    }
}

fn reconcile_statefulset(sim: &mut Sim<'_>, key: &NamespacedName, pods: &mut Vec<NamespacedName>) {
    let rec = &sim.workloads.items[&(WorkloadKind::StatefulSet, key.clone())];
    let want = rec.replicas;
    let spec = rec.spec.template.clone();
    let base_labels = rec.spec.template_labels.clone();
    let hash = rec.template_hash.clone();
    // Ordinals 0..replicas exist; anything at or above `replicas` is deleted, highest first.
    pods.sort_by_key(|p| std::cmp::Reverse(ordinal(&p.name, &key.name)));
    for p in pods.iter() {
        if ordinal(&p.name, &key.name).is_none_or(|o| o >= want) {
            sim.delete_pod(p);
        }
    }
    for i in 0..want {
        let pkey = NamespacedName::new(key.namespace.clone(), format!("{}-{i}", key.name));
        if sim.state.pods.contains_key(&pkey) {
            continue;
        }
        let mut labels = base_labels.clone();
        labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
        labels.insert("controller-revision-hash".into(), format!("{}-{hash}", key.name));
        labels.insert("statefulset.kubernetes.io/pod-name".into(), pkey.name.clone());
        let pod = pod_from_spec(&pkey, labels, &spec, owner_ref("StatefulSet", &key.name));
        sim.insert_pod(pkey, pod);
    }
}

fn ordinal(pod: &str, set: &str) -> Option<u64> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn reconcile_daemonset(sim: &mut Sim<'_>, key: &NamespacedName, owner_name: String, pods: &mut Vec<NamespacedName>) {
    let rec = &sim.workloads.items[&(WorkloadKind::DaemonSet, key.clone())];
    let spec = rec.spec.template.clone();
    let mut labels = rec.spec.template_labels.clone();
    labels.insert("controller-revision-hash".into(), rec.template_hash.clone());
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
        let labels_ok = spec.node_selector.iter().all(|(k, v)| sim.state.nodes[&node].metadata.labels.get(k) == Some(v));
        if !labels_ok {
            continue;
        }
        let name = names::generate_name(&mut sim.name_rng, &format!("{owner_name}-"));
        let pkey = NamespacedName::new(key.namespace.clone(), name);
        let mut pod = pod_from_spec(&pkey, labels.clone(), &spec, owner_ref("DaemonSet", &owner_name));
        pod.spec.node_name = Some(node.clone());
        sim.insert_pod(pkey, pod);
    }
}
