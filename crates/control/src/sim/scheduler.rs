//! kube-scheduler and kubelet admission, for the one resource knetsim models: pod slots.
//!
//! Pods are scheduled in creation order. A pod without `nodeName` goes to the schedulable
//! node (Ready, untainted, matching its `nodeSelector`, under `max-pods`) with the fewest pods,
//! ties broken by registration order — the outcome of the default scoring for identical pods,
//! made deterministic. A pod created with `nodeName` (DaemonSet pods, pinned pods) skips the
//! scheduler and meets the kubelet's admission check instead.

use std::collections::{BTreeMap, BTreeSet};

use super::{NodeInfo, Sim};
use crate::fxhash::FxHashMap;
use crate::state::{Condition, Event, InvolvedObject, Node, Pod};

pub(crate) fn schedule(sim: &mut Sim<'_>) {
    use rayon::prelude::*;
    let step = sim.step;
    let node_objs = &sim.state.nodes;
    // The pods waiting, in the map's order (by name), which is close to their order in memory
    // (a batch of new pods is made in name order, in a few runs).
    let mut pods: Vec<&mut Pod> = sim
        .state
        .pods
        .values_mut()
        .map(|p| &mut **p)
        .filter(|p| !p.sim.admitted && p.status.phase != "Failed")
        .collect();
    if pods.is_empty() {
        return;
    }
    // They are scheduled in creation order, which is unrelated to their order in memory: a
    // visit to each pod would be a cache miss. So what a decision needs is read here, in
    // memory order, and a pod with neither `nodeName` nor a `nodeSelector` (nearly all) is
    // decided without a visit; every binding is written afterwards, in memory order again.
    let mut order: Vec<Waiting> = pods
        .iter()
        .enumerate()
        .map(|(pos, p)| Waiting {
            seq: p.sim.creation_index,
            pos,
            plain: p.spec.node_name.is_none() && p.spec.node_selector.is_empty(),
        })
        .collect();
    // Creation indices are unique, so the unstable sort gives the one order.
    order.sort_unstable_by_key(|w| w.seq);

    // Nodes by registration index (the names borrowed from the node objects).
    let len = sim.nodes.values().map(|i| i.index + 1).max().unwrap_or(0);
    let mut names: Vec<&str> = vec![""; len];
    let mut slots: Vec<Option<&mut NodeInfo>> = std::iter::repeat_with(|| None).take(len).collect();
    let mut index_of: FxHashMap<&str, usize> = FxHashMap::default();
    for (name, info) in sim.nodes.iter_mut() {
        let (name, _) = node_objs
            .get_key_value(name)
            .expect("every node has its object");
        let index = info.index;
        names[index] = name;
        index_of.insert(name, index);
        slots[index] = Some(info);
    }
    let mut nodes = Nodes {
        names,
        slots,
        index_of,
        objs: node_objs,
    };
    // Schedulable nodes ordered by (pods, registration index).
    let mut free: BTreeSet<(u32, usize)> = nodes
        .iter()
        .filter(|(name, info)| node_objs[*name].is_ready() && info.pods < info.max_pods)
        .map(|(_, info)| (info.pods, info.index))
        .collect();

    let mut bound: Vec<Option<usize>> = vec![None; pods.len()];
    let mut events = Vec::new();
    // The FitError text depends only on the selector and the nodes' state, which changes
    // only when a pod binds: remember it per selector until then.
    let mut fit_errors: BTreeMap<BTreeMap<String, String>, String> = BTreeMap::new();
    let mut next = 0;
    while next < order.len() {
        if order[next].plain && !free.is_empty() {
            let run = order[next..].iter().take_while(|w| w.plain).count();
            next += bind_plain_run(&order[next..next + run], &mut nodes, &mut free, &mut bound);
            fit_errors.clear();
            continue;
        }
        let w = &order[next];
        next += 1;
        let pod = &mut *pods[w.pos];
        if let Some(node) = pod.spec.node_name.clone() {
            if let Some(ev) = admit_pinned(pod, &node, &mut nodes, &mut free) {
                events.push(Event {
                    step,
                    type_: "Warning",
                    reason: "OutOfpods".into(),
                    involved_object: involved(pod),
                    source: "kubelet".into(),
                    message: ev,
                });
            }
            continue;
        }
        let selector = &pod.spec.node_selector;
        let choice = free
            .iter()
            .find(|(_, idx)| {
                let labels = &node_objs[nodes.names[*idx]].metadata.labels;
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .copied();
        match choice {
            Some((_, index)) => {
                nodes.bind(index, &mut free);
                bound[w.pos] = Some(index);
                fit_errors.clear();
            }
            None => {
                let msg = fit_errors
                    .entry(selector.clone())
                    .or_insert_with(|| fit_error(&nodes, selector))
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
                        involved_object: involved(pod),
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
    // Every binding, written in memory order (a pod is decided once, so nothing above reads
    // what is written here).
    let names = &nodes.names;
    pods.par_iter_mut().zip(bound).for_each(|(pod, node)| {
        if let Some(index) = node {
            pod.spec.node_name = Some(names[index].to_owned());
            pod.sim.admitted = true;
            pod.status.conditions.clear();
        }
    });
    sim.state.events.extend(events);
}

/// A pod waiting for a node: its creation index, its place in the list of waiting pods, and
/// whether any node with a free slot will do.
struct Waiting {
    seq: u64,
    pos: usize,
    plain: bool,
}

fn involved(pod: &Pod) -> InvolvedObject {
    InvolvedObject {
        kind: "Pod".into(),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
    }
}

/// The nodes' pod counts, by registration index.
struct Nodes<'n> {
    names: Vec<&'n str>,
    slots: Vec<Option<&'n mut NodeInfo>>,
    index_of: FxHashMap<&'n str, usize>,
    objs: &'n BTreeMap<String, Node>,
}

impl Nodes<'_> {
    fn iter(&self) -> impl Iterator<Item = (&str, &NodeInfo)> {
        self.slots
            .iter()
            .zip(&self.names)
            .filter_map(|(info, name)| Some((*name, &**info.as_ref()?)))
    }

    fn info(&mut self, index: usize) -> &mut NodeInfo {
        self.slots[index].as_deref_mut().expect("a registered node")
    }

    /// Counts a pod bound to the free node at `index`.
    fn bind(&mut self, index: usize, free: &mut BTreeSet<(u32, usize)>) {
        let info = self.info(index);
        free.remove(&(info.pods, index));
        info.pods += 1;
        if info.pods < info.max_pods {
            free.insert((info.pods, index));
        }
    }
}

/// Binds the pods of `run` (plain: any node with a free slot will do) as taking the first of
/// `free` for each pod in turn would, and returns how many it bound (fewer than the run when
/// the free slots run out). Taking the first means the nodes with the fewest pods, one pod
/// each in registration order, then the next level (those just bound among them): so a level
/// at a time, with its nodes taken out of the set together and the bound ones merged back
/// at the next level together, rather than a removal and an insertion per pod (150,000 of
/// each at Kubernetes' published limits).
fn bind_plain_run(
    run: &[Waiting],
    nodes: &mut Nodes<'_>,
    free: &mut BTreeSet<(u32, usize)>,
    bound: &mut [Option<usize>],
) -> usize {
    let mut done = 0;
    while done < run.len() {
        let Some(&(level, _)) = free.first() else {
            break;
        };
        let above = free.split_off(&(level.saturating_add(1), 0));
        let at_level = std::mem::replace(free, above);
        let mut back = Vec::new();
        for (pods, index) in at_level {
            if done == run.len() {
                back.push((pods, index));
                continue;
            }
            bound[run[done].pos] = Some(index);
            done += 1;
            let info = nodes.info(index);
            info.pods += 1;
            if info.pods < info.max_pods {
                back.push((info.pods, index));
            }
        }
        // Distinct entries: a bottom-up build (after a sort) and a linear merge.
        let mut back: BTreeSet<(u32, usize)> = back.into_iter().collect();
        free.append(&mut back);
    }
    done
}

/// The kubelet admits a pod bound by name if it has a free pod slot; otherwise the pod fails
/// with `OutOfpods` (`pkg/kubelet/lifecycle/predicate.go`). Returns the event message of a
/// rejection.
fn admit_pinned(
    pod: &mut Pod,
    node: &str,
    nodes: &mut Nodes<'_>,
    free: &mut BTreeSet<(u32, usize)>,
) -> Option<String> {
    // A pod bound to a node that does not exist stays Pending: no kubelet will run it.
    let index = *nodes.index_of.get(node)?;
    let ready = nodes.objs[node].is_ready();
    let info = nodes.info(index);
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
    if info.pods < info.max_pods && ready {
        free.insert((info.pods, info.index));
    }
    pod.sim.admitted = true;
    None
}

/// kube-scheduler's FitError text: `0/N nodes are available: <reasons sorted>.`
fn fit_error(nodes: &Nodes<'_>, selector: &BTreeMap<String, String>) -> String {
    let (mut too_many, mut not_ready, mut selector_mismatch) = (0, 0, 0);
    let mut total = 0;
    for (name, info) in nodes.iter() {
        total += 1;
        let node = &nodes.objs[name];
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
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", reasons.join(", "))
    }
}
