//! kube-scheduler and kubelet admission, for the one resource knetsim models: pod slots.
//!
//! Pods are scheduled in creation order. A pod without `nodeName` goes to the schedulable
//! node (Ready, untainted, matching its `nodeSelector`, under `max-pods`) with the fewest pods,
//! ties broken by registration order — the outcome of the default scoring for identical pods,
//! made deterministic. A pod created with `nodeName` (DaemonSet pods, pinned pods) skips the
//! scheduler and meets the kubelet's admission check instead.

use std::collections::BTreeSet;

use super::Sim;
use crate::state::{Condition, InvolvedObject, NamespacedName};

pub(crate) fn schedule(sim: &mut Sim<'_>) {
    let mut pending: Vec<(u64, NamespacedName)> = sim
        .state
        .pods
        .keys()
        .filter(|k| !sim.admitted.contains(*k) && sim.state.pods[*k].status.phase != "Failed")
        .map(|k| (sim.pod_seq[k], k.clone()))
        .collect();
    if pending.is_empty() {
        return;
    }
    pending.sort();

    // Schedulable nodes ordered by (pods, registration index).
    let mut free: BTreeSet<(u32, usize, String)> = sim
        .nodes
        .iter()
        .filter(|(name, info)| sim.state.nodes[*name].is_ready() && info.pods < info.max_pods)
        .map(|(name, info)| (info.pods, info.index, name.clone()))
        .collect();

    for (_, key) in pending {
        let pod = &sim.state.pods[&key];
        if let Some(node) = pod.spec.node_name.clone() {
            admit_pinned(sim, &key, &node, &mut free);
            continue;
        }
        let selector = pod.spec.node_selector.clone();
        let choice = free
            .iter()
            .find(|(_, _, n)| selector.iter().all(|(k, v)| sim.state.nodes[n].metadata.labels.get(k) == Some(v)))
            .cloned();
        match choice {
            Some(entry) => {
                free.remove(&entry);
                let (pods, index, node) = entry;
                let info = sim.nodes.get_mut(&node).expect("node exists");
                info.pods += 1;
                if info.pods < info.max_pods {
                    free.insert((pods + 1, index, node.clone()));
                }
                let p = sim.state.pods.get_mut(&key).expect("pod exists");
                p.spec.node_name = Some(node);
                sim.admitted.insert(key);
            }
            None => {
                let msg = fit_error(sim, &selector);
                let already = sim.state.events.iter().any(|e| {
                    e.reason == "FailedScheduling"
                        && e.involved_object.name == key.name
                        && e.involved_object.namespace.as_deref() == Some(&key.namespace)
                        && e.message == msg
                });
                let p = sim.state.pods.get_mut(&key).expect("pod exists");
                p.status.conditions = vec![Condition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some(msg.clone()),
                }];
                if !already {
                    let involved =
                        InvolvedObject { kind: "Pod".into(), namespace: Some(key.namespace.clone()), name: key.name.clone() };
                    sim.event("Warning", "FailedScheduling", involved, "default-scheduler", msg);
                }
            }
        }
    }
}

/// The kubelet admits a pod bound by name if it has a free pod slot; otherwise the pod fails
/// with `OutOfpods` (`pkg/kubelet/lifecycle/predicate.go`).
fn admit_pinned(sim: &mut Sim<'_>, key: &NamespacedName, node: &str, free: &mut BTreeSet<(u32, usize, String)>) {
    let Some(info) = sim.nodes.get(node).cloned() else {
        // No kubelet will ever run this pod: it stays Pending, as in a real cluster.
        return;
    };
    if info.pods >= info.max_pods {
        let msg = format!(
            "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {}",
            info.pods, info.max_pods
        );
        let p = sim.state.pods.get_mut(key).expect("pod exists");
        p.status.phase = "Failed".into();
        p.status.conditions = vec![];
        let involved = InvolvedObject { kind: "Pod".into(), namespace: Some(key.namespace.clone()), name: key.name.clone() };
        sim.event("Warning", "OutOfpods", involved, "kubelet", msg);
        return;
    }
    free.remove(&(info.pods, info.index, node.to_owned()));
    let n = sim.nodes.get_mut(node).expect("node exists");
    n.pods += 1;
    if n.pods < n.max_pods && sim.state.nodes[node].is_ready() {
        free.insert((n.pods, n.index, node.to_owned()));
    }
    sim.admitted.insert(key.clone());
}

/// kube-scheduler's FitError text: `0/N nodes are available: <reasons sorted>.`
fn fit_error(sim: &Sim<'_>, selector: &std::collections::BTreeMap<String, String>) -> String {
    let mut too_many = 0;
    let mut not_ready = 0;
    let mut selector_mismatch = 0;
    for (name, info) in &sim.nodes {
        let node = &sim.state.nodes[name];
        if !selector.iter().all(|(k, v)| node.metadata.labels.get(k) == Some(v)) {
            selector_mismatch += 1;
        } else if !node.is_ready() {
            not_ready += 1;
        } else if info.pods >= info.max_pods {
            too_many += 1;
        }
    }
    let mut reasons = Vec::new();
    if too_many > 0 {
        reasons.push(format!("{too_many} Too many pods"));
    }
    if not_ready > 0 {
        reasons.push(format!("{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"));
    }
    if selector_mismatch > 0 {
        reasons.push(format!("{selector_mismatch} node(s) didn't match Pod's node affinity/selector"));
    }
    reasons.sort();
    if reasons.is_empty() {
        format!("0/{} nodes are available.", sim.nodes.len())
    } else {
        format!("0/{} nodes are available: {}.", sim.nodes.len(), reasons.join(", "))
    }
}
