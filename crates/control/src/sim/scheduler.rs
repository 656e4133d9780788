//! kube-scheduler and kubelet admission, for the one resource knetsim models: pod slots.
//!
//! Pods are scheduled in creation order. A pod without `nodeName` goes to the schedulable
//! node (Ready, untainted, matching its `nodeSelector`, under `max-pods`) with the fewest pods,
//! ties broken by registration order — the outcome of the default scoring for identical pods,
//! made deterministic. A pod created with `nodeName` (DaemonSet pods, pinned pods) skips the
//! scheduler and meets the kubelet's admission check instead.

use std::collections::{BTreeMap, BTreeSet};

use super::{NodeInfo, Sim};
use crate::state::{Condition, Event, InvolvedObject, Node, Pod};

pub(crate) fn schedule(sim: &mut Sim<'_>) {
    let step = sim.step;
    let node_objs = &sim.state.nodes;
    let infos = &mut sim.nodes;
    let mut pending: Vec<(u64, &mut Pod)> = sim
        .state
        .pods
        .values_mut()
        .filter(|p| !p.sim.admitted && p.status.phase != "Failed")
        .map(|p| (p.sim.creation_index, p))
        .collect();
    if pending.is_empty() {
        return;
    }
    // Creation indices are unique, so the unstable sort gives the one order; the key sits
    // next to the reference, so comparing touches no pod.
    pending.sort_unstable_by_key(|(seq, _)| *seq);
    let pending = pending.into_iter().map(|(_, p)| p);

    // Schedulable nodes ordered by (pods, registration index); names by index.
    let mut names: Vec<&str> = vec![""; infos.values().map(|i| i.index + 1).max().unwrap_or(0)];
    for (name, info) in infos.iter() {
        // Borrowed from the node objects, not from `infos`, which changes below.
        let (name, _) = node_objs
            .get_key_value(name)
            .expect("every node has its object");
        names[info.index] = name;
    }
    let mut free: BTreeSet<(u32, usize)> = infos
        .iter()
        .filter(|(name, info)| node_objs[*name].is_ready() && info.pods < info.max_pods)
        .map(|(_, info)| (info.pods, info.index))
        .collect();

    let mut events = Vec::new();
    // The FitError text depends only on the selector and the nodes' state, which changes
    // only when a pod binds: remember it per selector until then.
    let mut fit_errors: BTreeMap<BTreeMap<String, String>, String> = BTreeMap::new();
    for pod in pending {
        let involved = || InvolvedObject {
            kind: "Pod".into(),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
        };
        if let Some(node) = pod.spec.node_name.clone() {
            if let Some(ev) = admit_pinned(pod, &node, node_objs, infos, &mut free) {
                events.push(Event {
                    step,
                    type_: "Warning",
                    reason: "OutOfpods".into(),
                    involved_object: InvolvedObject {
                        kind: "Pod".into(),
                        namespace: pod.metadata.namespace.clone(),
                        name: pod.metadata.name.clone(),
                    },
                    source: "kubelet".into(),
                    message: ev,
                });
            }
            continue;
        }
        let selector = &pod.spec.node_selector;
        let choice = if selector.is_empty() {
            free.first().copied()
        } else {
            free.iter()
                .find(|(_, idx)| {
                    let labels = &node_objs[names[*idx]].metadata.labels;
                    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .copied()
        };
        match choice {
            Some((count, index)) => {
                free.remove(&(count, index));
                let name = names[index];
                let info = infos.get_mut(name).expect("node exists");
                info.pods += 1;
                if info.pods < info.max_pods {
                    free.insert((info.pods, index));
                }
                pod.spec.node_name = Some(name.to_owned());
                pod.sim.admitted = true;
                pod.status.conditions.clear();
                fit_errors.clear();
            }
            None => {
                let msg = fit_errors
                    .entry(selector.clone())
                    .or_insert_with(|| fit_error(infos, node_objs, selector))
                    .clone();
                // The scheduler retries and reports again; the API server folds repeats of
                // the same event into one.
                let already = pod
                    .status
                    .conditions
                    .iter()
                    .any(|c| c.message.as_deref() == Some(msg.as_str()));
                if !already {
                    events.push(Event {
                        step,
                        type_: "Warning",
                        reason: "FailedScheduling".into(),
                        involved_object: involved(),
                        source: "default-scheduler".into(),
                        message: msg.clone(),
                    });
                }
                pod.status.conditions = vec![Condition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some(msg),
                }];
            }
        }
    }
    sim.state.events.extend(events);
}

/// The kubelet admits a pod bound by name if it has a free pod slot; otherwise the pod fails
/// with `OutOfpods` (`pkg/kubelet/lifecycle/predicate.go`). Returns the event message of a
/// rejection.
fn admit_pinned(
    pod: &mut Pod,
    node: &str,
    node_objs: &BTreeMap<String, Node>,
    infos: &mut BTreeMap<String, NodeInfo>,
    free: &mut BTreeSet<(u32, usize)>,
) -> Option<String> {
    // A pod bound to a node that does not exist stays Pending: no kubelet will run it.
    let info = infos.get_mut(node)?;
    if info.pods >= info.max_pods {
        pod.status.phase = "Failed";
        pod.status.conditions.clear();
        return Some(format!(
            "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {}",
            info.pods, info.max_pods
        ));
    }
    free.remove(&(info.pods, info.index));
    info.pods += 1;
    if info.pods < info.max_pods && node_objs[node].is_ready() {
        free.insert((info.pods, info.index));
    }
    pod.sim.admitted = true;
    None
}

/// kube-scheduler's FitError text: `0/N nodes are available: <reasons sorted>.`
fn fit_error(
    infos: &BTreeMap<String, NodeInfo>,
    node_objs: &BTreeMap<String, Node>,
    selector: &BTreeMap<String, String>,
) -> String {
    let (mut too_many, mut not_ready, mut selector_mismatch) = (0, 0, 0);
    for (name, info) in infos {
        let node = &node_objs[name];
        if !selector
            .iter()
            .all(|(k, v)| node.metadata.labels.get(k) == Some(v))
        {
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
        reasons.push(format!(
            "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
        ));
    }
    if selector_mismatch > 0 {
        reasons.push(format!(
            "{selector_mismatch} node(s) didn't match Pod's node affinity/selector"
        ));
    }
    reasons.sort();
    if reasons.is_empty() {
        format!("0/{} nodes are available.", infos.len())
    } else {
        format!(
            "0/{} nodes are available: {}.",
            infos.len(),
            reasons.join(", ")
        )
    }
}
