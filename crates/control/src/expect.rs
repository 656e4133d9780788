//! Evaluating a scenario's `expect:` entries against the state document.
//!
//! Object fields are addressed by dotted paths into the object as the state document writes
//! it (`spec.clusterIPs[1]`, `metadata.labels["kubernetes.io/hostname"]`), so an expectation
//! reads exactly like the YAML a user sees. Scalars compare by their text, so `110` matches
//! the string `"110"` that `status.capacity.pods` holds, as it would in a kubectl diff.

use knetsim_model::Span;
use knetsim_model::scenario::Expectation;
use knetsim_model::yaml::{Node, NodeKind};
use serde_json::Value;

use crate::state::ClusterState;

/// The result of one expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What was checked, in a few words ("Service default/web spec.clusterIPs").
    pub what: String,
    pub passed: bool,
    /// Why it failed: expected vs actual.
    pub detail: Option<String>,
    pub span: Span,
}

/// Evaluates every control-plane expectation (dataplane ones are skipped: the dataplane
/// evaluates those).
pub fn evaluate(
    state: &ClusterState,
    expectations: &[knetsim_model::Spanned<Expectation>],
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for e in expectations {
        let span = e.span;
        match &e.value {
            Expectation::Component {
                component,
                started,
                message,
            } => {
                let name = component.name();
                let status = state.components.get(name);
                if let Some(want) = started {
                    let got = status.is_some_and(|s| s.started);
                    out.push(check(format!("{name} started"), span, got == *want, || {
                        format!("expected started: {want}, found started: {got}")
                    }));
                }
                if let Some(want) = message {
                    let got = status.and_then(|s| s.message.clone());
                    out.push(check(
                        format!("{name} message"),
                        span,
                        got.as_deref() == Some(want.as_str()),
                        || {
                            format!(
                                "expected message {want:?}, found {}",
                                got.as_deref().map_or("none".into(), |g| format!("{g:?}"))
                            )
                        },
                    ));
                }
            }
            Expectation::Object {
                target,
                absent,
                fields,
            } => {
                let label = match &target.namespace {
                    Some(ns) if is_namespaced(&target.kind) => {
                        format!("{} {}/{}", target.kind, ns, target.name)
                    }
                    _ if is_namespaced(&target.kind) => {
                        format!("{} default/{}", target.kind, target.name)
                    }
                    _ => format!("{} {}", target.kind, target.name),
                };
                let obj = find_object(
                    state,
                    &target.kind,
                    target.namespace.as_deref(),
                    &target.name,
                );
                if *absent {
                    out.push(check(
                        format!("{label} absent"),
                        span,
                        obj.is_none(),
                        || "the object exists".into(),
                    ));
                    continue;
                }
                let Some(obj) = obj.as_ref() else {
                    out.push(check(label.clone(), span, false, || {
                        "no such object in the state".into()
                    }));
                    continue;
                };
                if fields.is_empty() {
                    out.push(check(format!("{label} exists"), span, true, String::new));
                }
                for (path, want) in fields {
                    let want = node_to_json(want);
                    let got = lookup(obj, &path.value);
                    let ok = got.as_ref().is_some_and(|g| same(g, &want));
                    out.push(Outcome {
                        what: format!("{label} {}", path.value),
                        passed: ok,
                        detail: (!ok).then(|| {
                            format!(
                                "expected {}, found {}",
                                compact(&want),
                                got.as_ref()
                                    .map_or("nothing (no such field)".into(), compact)
                            )
                        }),
                        span: path.span,
                    });
                }
            }
            Expectation::Event {
                reason,
                object,
                message,
            } => {
                let found = state.events.iter().any(|ev| {
                    ev.reason == *reason
                        && object
                            .as_ref()
                            .is_none_or(|o| object_matches(o, &ev.involved_object))
                        && message.as_ref().is_none_or(|m| ev.message == *m)
                });
                let what = format!(
                    "event {reason}{}",
                    object
                        .as_ref()
                        .map(|o| format!(" on {o}"))
                        .unwrap_or_default()
                );
                out.push(check(what, span, found, || {
                    let same_reason: Vec<String> = state
                        .events
                        .iter()
                        .filter(|ev| ev.reason == *reason)
                        .take(3)
                        .map(|ev| {
                            format!(
                                "{}/{}: {:?}",
                                ev.involved_object.kind, ev.involved_object.name, ev.message
                            )
                        })
                        .collect();
                    if same_reason.is_empty() {
                        format!("no {reason} event was reported")
                    } else {
                        format!(
                            "no matching event; {reason} events seen: {}",
                            same_reason.join("; ")
                        )
                    }
                }));
            }
            Expectation::Count { kind, equals } => {
                let got = count(state, kind);
                out.push(check(
                    format!("count of {kind}"),
                    span,
                    got == Some(*equals),
                    || match got {
                        Some(g) => format!("expected {equals}, found {g}"),
                        None => format!("knetsim does not count objects of kind {kind}"),
                    },
                ));
            }
            Expectation::Dataplane(_) => {}
        }
    }
    out
}

fn check(what: String, span: Span, passed: bool, detail: impl FnOnce() -> String) -> Outcome {
    Outcome {
        what,
        passed,
        detail: (!passed).then(detail),
        span,
    }
}

fn is_namespaced(kind: &str) -> bool {
    !matches!(kind, "Node" | "Namespace")
}

fn count(state: &ClusterState, kind: &str) -> Option<u64> {
    Some(match kind {
        "Node" => state.nodes.len(),
        "Service" => state.services.len(),
        "Pod" => state.pods.len(),
        "EndpointSlice" => state.endpoint_slices.len(),
        "Namespace" => state.namespaces.len(),
        "Event" => state.events.len(),
        _ => return None,
    } as u64)
}

fn object_matches(want: &str, obj: &crate::state::InvolvedObject) -> bool {
    let parts: Vec<&str> = want.split('/').collect();
    match parts.as_slice() {
        [kind, name] => obj.kind == *kind && obj.name == *name,
        [kind, ns, name] => {
            obj.kind == *kind && obj.namespace.as_deref() == Some(*ns) && obj.name == *name
        }
        _ => false,
    }
}

/// The object as the state document shows it, found by key: only that object is turned
/// into a JSON value (the whole state of a cluster at four times Kubernetes' limits is
/// gigabytes as JSON values).
fn find_object(state: &ClusterState, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    let key = || crate::state::NamespacedName::new(ns.unwrap_or("default"), name);
    let v = match kind {
        "Node" => serde_json::to_value(state.nodes.get(name)?),
        "Service" => serde_json::to_value(state.services.get(&key())?),
        "Pod" => serde_json::to_value(&**state.pods.get(&key())?),
        "EndpointSlice" => serde_json::to_value(state.endpoint_slices.get(&key())?),
        _ => return None,
    };
    v.ok()
}

/// Follows a path like `spec.ports[0].port` or `metadata.labels["a.b/c"]`.
fn lookup(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            cur = cur.get(&r[..end])?;
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let i: usize = r[..end].parse().ok()?;
            cur = cur.get(i)?;
            rest = &r[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            cur = cur.get(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    Some(cur.clone())
}

/// Equality where scalars compare by text.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        (a, b) => scalar_text(a) == scalar_text(b),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A YAML value as JSON: plain scalars become booleans, numbers or null when they read as
/// such; quoted ones stay strings.
pub fn node_to_json(n: &Node) -> Value {
    match &n.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Scalar(s) if s.quoted => Value::String(s.text.clone()),
        NodeKind::Scalar(s) => match s.text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" | "~" => Value::Null,
            t => t
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(t.to_owned())),
        },
        NodeKind::Seq(items) => Value::Array(items.iter().map(node_to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match &k.kind {
                        NodeKind::Scalar(s) => s.text.clone(),
                        _ => String::new(),
                    };
                    (key, node_to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let v = json!({"spec": {"clusterIPs": ["10.0.0.1", "fd00::1"], "ports": [{"port": 80}]},
                       "metadata": {"labels": {"kubernetes.io/hostname": "n1"}}});
        assert_eq!(lookup(&v, "spec.clusterIPs[1]"), Some(json!("fd00::1")));
        assert_eq!(lookup(&v, "spec.ports[0].port"), Some(json!(80)));
        assert_eq!(
            lookup(&v, "metadata.labels[\"kubernetes.io/hostname\"]"),
            Some(json!("n1"))
        );
        assert_eq!(lookup(&v, "spec.nope"), None);
        assert_eq!(lookup(&v, "spec.clusterIPs[7]"), None);
    }

    #[test]
    fn scalars_compare_by_text() {
        assert!(same(&json!("110"), &json!(110)));
        assert!(same(&json!(["IPv4", "IPv6"]), &json!(["IPv4", "IPv6"])));
        assert!(!same(&json!(["IPv4"]), &json!(["IPv4", "IPv6"])));
        assert!(!same(&json!({"a": 1}), &json!("a")));
    }
}
