//! The reachability matrices and traces a snapshot records.
//!
//! ```yaml
//! snapshot:
//!   reach:                           # matrices, as `knetsim reach` takes them
//!     - from: [pods:default, node:kind-worker]   # a list, or one comma-separated string
//!       to: services:default
//!       family: IPv6                 # optional, as are proto and port
//!   trace:                           # traces, as `knetsim trace` takes them
//!     - {from: default/client, to: "svc:default/web:80", family: IPv4}
//! ```
//!
//! A scenario's `expect:` entries `trace:` and `reachability:` are recorded too (their
//! queries only; whether they pass is `knetsim test`'s business).

use knetsim_dataplane::{ReachQuery, TraceQuery};
use knetsim_ipam::Family;
use knetsim_model::scenario::Expectation;
use knetsim_model::yaml::{Node, NodeKind, expect_map, expect_seq, mismatch};
use knetsim_model::{Diagnostic, Scenario};

/// One question whose answer a snapshot records.
#[derive(Clone, Debug)]
pub enum Query {
    Reach(ReachQuery),
    Trace(TraceQuery),
}

impl Query {
    /// The object name the answer is recorded under: the question as the command line asks
    /// it, so that a reader can ask it again.
    pub fn name(&self) -> String {
        let (from, to, family, proto, port) = match self {
            Query::Reach(q) => (q.from.join(","), q.to.join(","), q.family, &q.proto, q.port),
            Query::Trace(q) => (q.from.clone(), q.to.clone(), q.family, &q.proto, q.port),
        };
        let mut s = format!("--from {from} --to {to}");
        if let Some(f) = family {
            s.push_str(&format!(" --family {f}"));
        }
        if !proto.is_empty() && proto != "tcp" {
            s.push_str(&format!(" --proto {proto}"));
        }
        if let Some(p) = port {
            s.push_str(&format!(" --port {p}"));
        }
        s
    }
}

/// The queries of the scenario's `snapshot:` section, then those of its `expect:` entries,
/// in file order. Errors are a malformed `snapshot:` section (the expectations are checked
/// by their own reader when the scenario is tested).
pub fn read(scenario: &Scenario) -> Result<Vec<Query>, Vec<Diagnostic>> {
    let mut d = Vec::new();
    let mut out = Vec::new();
    if let Some(node) = &scenario.snapshot
        && let Some(mut r) = expect_map(node, "snapshot", &mut d)
    {
        if let Some(items) = r.seq("reach", &mut d) {
            for item in items {
                if let Some(q) = read_query(item, true, "a `snapshot.reach` entry", &mut d) {
                    out.push(q);
                }
            }
        }
        if let Some(items) = r.seq("trace", &mut d) {
            for item in items {
                if let Some(q) = read_query(item, false, "a `snapshot.trace` entry", &mut d) {
                    out.push(q);
                }
            }
        }
        r.finish(&mut d);
    }
    for e in &scenario.expect {
        if let Expectation::Dataplane(n) = &e.value {
            out.extend(expectation_query(n));
        }
    }
    if d.iter().any(Diagnostic::is_error) {
        Err(d)
    } else {
        Ok(out)
    }
}

/// Reads `from`, `to`, `family`, `proto`, `port` strictly.
fn read_query(node: &Node, matrix: bool, what: &str, d: &mut Vec<Diagnostic>) -> Option<Query> {
    let mut r = expect_map(node, what, d)?;
    let from = r.require("from", d).and_then(|n| names(n, matrix, d));
    let to = r.require("to", d).and_then(|n| names(n, matrix, d));
    let family = match r.text("family", d) {
        Some(t) => match Family::parse(&t.value) {
            Some(f) => Some(f),
            None => {
                d.push(
                    Diagnostic::error(t.span, format!("unknown family `{}`", t.value))
                        .with_label("expected IPv4 or IPv6"),
                );
                return None;
            }
        },
        None => None,
    };
    let proto = match r.text("proto", d) {
        Some(t) if ["tcp", "udp", "sctp"].contains(&t.value.as_str()) => t.value,
        Some(t) => {
            d.push(
                Diagnostic::error(t.span, format!("unknown protocol `{}`", t.value))
                    .with_label("expected tcp, udp or sctp"),
            );
            return None;
        }
        None => String::new(),
    };
    let port = match r.u64("port", d) {
        Some(p) if (1..=65535).contains(&p.value) => Some(p.value as u16),
        Some(p) => {
            d.push(
                Diagnostic::error(p.span, format!("port {} is out of range", p.value))
                    .with_label("expected a port from 1 to 65535"),
            );
            return None;
        }
        None => None,
    };
    r.finish(d);
    let (from, to) = (from?, to?);
    Some(if matrix {
        Query::Reach(ReachQuery {
            from,
            to,
            family,
            proto,
            port,
        })
    } else {
        Query::Trace(TraceQuery {
            from: from.join(","),
            to: to.join(","),
            family,
            proto,
            port,
        })
    })
}

/// A list of names, or one string (comma-separated for matrices).
fn names(node: &Node, matrix: bool, d: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
    match &node.kind {
        NodeKind::Scalar(s) if matrix => Some(
            s.text
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        ),
        NodeKind::Scalar(s) => Some(vec![s.text.clone()]),
        NodeKind::Seq(_) if matrix => {
            let items = expect_seq(node, "a list of sources or destinations", d)?;
            let mut out = Vec::new();
            for i in items {
                match i.scalar_text() {
                    Some(t) => out.push(t.to_string()),
                    None => {
                        d.push(mismatch(i, "a string", "a source or destination"));
                        return None;
                    }
                }
            }
            Some(out)
        }
        _ => {
            d.push(mismatch(
                node,
                if matrix {
                    "a list of names or selectors"
                } else {
                    "a string"
                },
                "from/to",
            ));
            None
        }
    }
}

/// The query of an `expect:` `trace:` or `reachability:` entry, read leniently: its other
/// keys are the expectation's, and a malformed entry is reported by `knetsim test`.
fn expectation_query(node: &Node) -> Option<Query> {
    let map = node.as_map()?;
    let (matrix, inner) = match map {
        [(k, v)] if k.scalar_text() == Some("trace") => (false, v),
        [(k, v)] if k.scalar_text() == Some("reachability") => (true, v),
        _ if node.get("allow").is_some() => (true, node),
        _ if node.get("verdict").is_some() => (false, node),
        _ => return None,
    };
    let text = |k: &str| inner.get(k).and_then(Node::scalar_text).map(str::to_string);
    let list = |k: &str| -> Option<Vec<String>> {
        match &inner.get(k)?.kind {
            NodeKind::Seq(items) => items
                .iter()
                .map(|i| i.scalar_text().map(str::to_string))
                .collect(),
            NodeKind::Scalar(s) => Some(vec![s.text.clone()]),
            _ => None,
        }
    };
    let family = text("family").and_then(|f| Family::parse(&f));
    let proto = text("proto").unwrap_or_default();
    let port = text("port").and_then(|p| p.parse().ok());
    Some(if matrix {
        Query::Reach(ReachQuery {
            from: list("from")?,
            to: list("to")?,
            family,
            proto,
            port,
        })
    } else {
        Query::Trace(TraceQuery {
            from: text("from")?,
            to: text("to")?,
            family,
            proto,
            port,
        })
    })
}
