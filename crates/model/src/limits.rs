//! knetsim's caps on input, stated once.
//!
//! knetsim accepts at least four times Kubernetes' published scale limits (5,000 nodes,
//! 150,000 pods, 10,000 Services) and refuses anything beyond these caps when the scenario is
//! read, with a located error that names the cap, so that `check` refuses what `run` could not
//! finish. Within them a run stays under 4 GiB and grows linearly with the input.
//!
//! The counts are upper bounds taken from the text, before anything is simulated: every node a
//! scenario registers (`nodes:` and every `addNodes:`), every Service it creates, and the pods
//! its workloads could make at their largest (the largest `replicas` a workload is ever given,
//! one pod per node for each DaemonSet, and every bare Pod).

/// Nodes a scenario may register, over `nodes:` and every `addNodes:` step (4× Kubernetes'
/// 5,000).
pub const MAX_NODES: u64 = 20_000;

/// Pods a scenario's workloads and Pod objects may make, at most (4× Kubernetes' 150,000).
pub const MAX_PODS: u64 = 600_000;

/// Services a scenario may create (4× Kubernetes' 10,000).
pub const MAX_SERVICES: u64 = 40_000;

/// Objects in `manifests:` and `apply:` steps, after `generate:` and files are expanded.
pub const MAX_OBJECTS: u64 = 1_000_000;

/// Bytes of one input file. A scenario generates large clusters with `count:` and
/// `generate:`; a file this size is a manifest dump, and larger ones are refused unread.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// YAML nodes (scalars, sequences, maps, alias copies) over all files of one scenario. A node
/// of the tree takes about 100 bytes; this keeps the tree under about half a gigabyte.
pub const MAX_YAML_NODES: usize = 5_000_000;

/// Nesting depth of YAML collections. Real manifests nest a dozen levels; the cap keeps
/// every recursive walk of the tree far from the stack's end.
pub const MAX_YAML_DEPTH: usize = 256;

/// Nodes that alias expansion may create in one file (a "billion laughs" document expands
/// exponentially otherwise).
pub const MAX_ALIAS_EXPANSION: usize = 500_000;

use std::collections::{HashMap, HashSet};

use crate::diag::Diagnostic;
use crate::objects::{Object, WorkloadKind};
use crate::scenario::{Scenario, Step};
use crate::source::Span;

/// The help line of every cap error.
pub const CAPS_HELP: &str = "knetsim simulates up to 4× Kubernetes' published scale limits; the caps are listed in the README (\"Limits\")";

fn ns_of(ns: &Option<crate::source::Spanned<String>>) -> &str {
    ns.as_ref().map_or("default", |n| n.value.as_str())
}

/// The error for a count that goes over a cap, at the value that takes it over.
fn over(span: Span, what: &str, total: u64, cap: u64) -> Diagnostic {
    Diagnostic::error(
        span,
        format!("the scenario would have {total} {what}, more than knetsim's cap of {cap}"),
    )
    .with_label("this goes over the cap")
    .with_help(CAPS_HELP)
}

/// Checks a scenario that was read without errors against [`MAX_PODS`], [`MAX_SERVICES`]
/// and [`MAX_OBJECTS`] (nodes are counted while they are read, before generated nodes are
/// made). Each cap is reported once, at the object that takes the count over it.
pub(crate) fn check(scenario: &Scenario) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut nodes = scenario.nodes.len() as u64;
    let mut objects = 0u64;
    let mut services: HashSet<(&str, &str)> = HashSet::new();
    let mut bare_pods: HashSet<(&str, &str)> = HashSet::new();
    // The largest replica count each workload is ever given, and the DaemonSets.
    let mut replicas: HashMap<(WorkloadKind, &str, &str), u64> = HashMap::new();
    let mut daemonsets: HashSet<(&str, &str)> = HashSet::new();
    let mut replica_pods = 0u64;
    let (mut objects_done, mut services_done, mut pods_done) = (false, false, false);

    // Nodes register as their steps run; a DaemonSet's pods are bounded by every node the
    // scenario ever registers, so count those first.
    for step in &scenario.steps {
        if let Step::AddNodes(list) = &step.value {
            nodes += list.len() as u64;
        }
    }
    let pods_total = |replica_pods: u64, daemonsets: usize, bare: usize| {
        replica_pods
            .saturating_add((daemonsets as u64).saturating_mul(nodes))
            .saturating_add(bare as u64)
    };

    let all_objects = scenario.manifests.iter().chain(
        scenario
            .steps
            .iter()
            .filter_map(|s| match &s.value {
                Step::Apply(list) => Some(list.iter()),
                _ => None,
            })
            .flatten(),
    );
    let mut scale_targets: Vec<(WorkloadKind, &str, &str, u64, Span)> = Vec::new();
    for step in &scenario.steps {
        if let Step::Scale { target, replicas } = &step.value {
            let kind = match target.value.kind.as_str() {
                "Deployment" => WorkloadKind::Deployment,
                "ReplicaSet" => WorkloadKind::ReplicaSet,
                "StatefulSet" => WorkloadKind::StatefulSet,
                _ => continue,
            };
            scale_targets.push((
                kind,
                target.value.namespace.as_deref().unwrap_or("default"),
                target.value.name.as_str(),
                replicas.value.max(0) as u64,
                replicas.span,
            ));
        }
    }
    for o in all_objects {
        objects += 1;
        if objects > MAX_OBJECTS && !objects_done {
            objects_done = true;
            diags.push(over(o.span(), "objects", objects, MAX_OBJECTS));
        }
        match o {
            Object::Service(s) => {
                services.insert((ns_of(&s.meta.namespace), s.meta.name.value.as_str()));
                if services.len() as u64 > MAX_SERVICES && !services_done {
                    services_done = true;
                    diags.push(over(
                        o.span(),
                        "Services",
                        services.len() as u64,
                        MAX_SERVICES,
                    ));
                }
            }
            Object::Pod(p) => {
                bare_pods.insert((ns_of(&p.meta.namespace), p.meta.name.value.as_str()));
            }
            Object::Workload(w) => {
                let key = (w.kind, ns_of(&w.meta.namespace), w.meta.name.value.as_str());
                if w.kind == WorkloadKind::DaemonSet {
                    daemonsets.insert((key.1, key.2));
                } else {
                    let n = w.replicas.as_ref().map_or(1, |r| r.value.max(0) as u64);
                    let seen = replicas.entry(key).or_insert(0);
                    if n > *seen {
                        replica_pods = replica_pods.saturating_add(n - *seen);
                        *seen = n;
                    }
                }
            }
            _ => {}
        }
        let total = pods_total(replica_pods, daemonsets.len(), bare_pods.len());
        if total > MAX_PODS && !pods_done {
            pods_done = true;
            let span = match o {
                Object::Workload(w) => w.replicas.as_ref().map_or(w.span, |r| r.span),
                _ => o.span(),
            };
            diags.push(over(span, "pods", total, MAX_PODS));
        }
    }
    for (kind, ns, name, n, span) in &scale_targets {
        if let Some(seen) = replicas.get_mut(&(*kind, *ns, *name))
            && *n > *seen
        {
            replica_pods = replica_pods.saturating_add(*n - *seen);
            *seen = *n;
        }
        let total = pods_total(replica_pods, daemonsets.len(), bare_pods.len());
        if total > MAX_PODS && !pods_done {
            pods_done = true;
            diags.push(over(*span, "pods", total, MAX_PODS));
        }
    }
    diags
}
