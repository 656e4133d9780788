//! Scenario `expect:` entries about the dataplane.
//!
//! ```yaml
//! expect:
//!   - trace:
//!       from: default/client          # a trace query, as `knetsim trace` takes it
//!       to: svc:default/web:http
//!       family: IPv6                  # optional
//!       proto: tcp                    # optional (tcp)
//!       port: 80                      # optional
//!       verdict: delivered            # delivered | dropped | rejected
//!       endpoints: ["[fd00:10:244:1::5]:8080"]   # optional: the exact set reached
//!       masqueraded: false            # optional
//!       reason: "has no IPv6 endpoints"          # optional: a substring of the reason
//!   - reachability:
//!       family: IPv4                  # optional, as are proto and port
//!       from: [default/a, node:node-1, external]
//!       to: [svc:default/web, default/b]
//!       allow:                        # one row per `from`, one column per `to`:
//!         - [true, true]              # true/allow = delivered, false/deny = anything else
//!         - [true, false]
//!         - [false, false]
//! ```
//!
//! Each trace or matrix cell gives one [`ExpectOutcome`]; a malformed entry gives a
//! [`Diagnostic`] pointing at the offending value.
//!
//! Where the line runs: an entry is malformed when its text alone is wrong — a key that does
//! not exist, a value of the wrong shape, a `from`/`to` that is not written as a query
//! ([`check_syntax`]). Those are errors in the scenario (`knetsim test` exits 2). A
//! well-formed query that this cluster's state cannot answer — a pod that has no IPv6 address,
//! a Service without a cluster IP of the family, a name the state does not hold (a Deployment
//! whose pods were never made) — is the state failing the expectation: a failed outcome whose
//! message is the tracer's reason (`knetsim test` exits 1). The tracer's errors on a query
//! that passed [`check_syntax`] are all of the second kind.

use knetsim_control::state::ClusterState;
use knetsim_ipam::Family;
use knetsim_model::yaml::{Node, NodeKind};
use knetsim_model::{Diagnostic, Span};

use crate::Dataplane;
use crate::config::{entries, scalar, seq};
use crate::trace::{Outcome, TraceQuery, check_syntax, trace};

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectOutcome {
    /// `trace default/a -> svc:default/web:http` and the like.
    pub name: String,
    pub passed: bool,
    /// What differed, or a one-line summary when it passed.
    pub message: String,
    pub span: Span,
}

fn err(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::error(span, msg)
}

fn bool_of(n: &Node) -> Option<bool> {
    match scalar(n)? {
        "true" | "allow" | "yes" => Some(true),
        "false" | "deny" | "no" => Some(false),
        _ => None,
    }
}

struct QuerySpec {
    q: TraceQuery,
}

fn read_query_field(q: &mut TraceQuery, key: &str, v: &Node) -> Result<bool, Diagnostic> {
    match key {
        "family" => {
            let f = scalar(v).and_then(Family::parse).ok_or_else(|| {
                err(v.span, "family must be IPv4 or IPv6").with_label("expected IPv4 or IPv6")
            })?;
            q.family = Some(f);
        }
        "proto" => {
            q.proto = scalar(v)
                .ok_or_else(|| err(v.span, "proto must be tcp, udp or sctp"))?
                .to_string();
            if crate::proxy::Proto::parse(&q.proto).is_none() {
                return Err(
                    err(v.span, "proto must be tcp, udp or sctp").with_label("unknown protocol")
                );
            }
        }
        "port" => {
            let p = scalar(v)
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| err(v.span, "port must be a number from 1 to 65535"))?;
            q.port = Some(p);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Checks one `expect:` entry of the dataplane kind.
pub fn check_expectation(
    dp: &Dataplane,
    state: &ClusterState,
    node: &Node,
) -> Result<Vec<ExpectOutcome>, Diagnostic> {
    let mut d = Vec::new();
    let map = entries(node, "a dataplane expectation", &mut d).ok_or_else(|| d.remove(0))?;
    // Accept `{trace: {...}}` / `{reachability: {...}}`, or the inner map itself.
    if let [(k, v)] = map {
        match scalar(k) {
            Some("trace") => return check_trace(dp, state, v),
            Some("reachability") => return check_matrix(dp, state, v),
            _ => {}
        }
    }
    if map.iter().any(|(k, _)| scalar(k) == Some("allow")) {
        return check_matrix(dp, state, node);
    }
    if map.iter().any(|(k, _)| scalar(k) == Some("verdict")) {
        return check_trace(dp, state, node);
    }
    Err(err(
        node.span,
        "a dataplane expectation must be `trace:` or `reachability:`",
    )
    .with_label("expected `trace:` or `reachability:`"))
}

/// The trace queries an `expect:` entry of the dataplane kind asks: a `trace:`'s one, or a
/// `reachability:` matrix's cells row by row. `knetsim emulate` asks the kernel the same
/// questions. A malformed entry gives what could be read (reporting it is
/// [`check_expectation`]'s job).
pub fn expectation_queries(node: &Node) -> Vec<TraceQuery> {
    let mut d = Vec::new();
    let Some(map) = entries(node, "a dataplane expectation", &mut d) else {
        return Vec::new();
    };
    let inner = match map {
        [(k, v)] if matches!(scalar(k), Some("trace" | "reachability")) => v,
        _ => node,
    };
    let Some(map) = entries(inner, "a dataplane expectation", &mut d) else {
        return Vec::new();
    };
    let mut base = TraceQuery::default();
    let mut from: Vec<String> = Vec::new();
    let mut to: Vec<String> = Vec::new();
    let strings = |v: &Node| -> Vec<String> {
        match &v.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(scalar)
                .map(str::to_string)
                .collect(),
            _ => scalar(v).map(str::to_string).into_iter().collect(),
        }
    };
    for (k, v) in map {
        let key = scalar(k).unwrap_or("");
        if matches!(read_query_field(&mut base, key, v), Ok(true)) {
            continue;
        }
        match key {
            "from" => from = strings(v),
            "to" => to = strings(v),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for f in &from {
        for t in &to {
            out.push(TraceQuery {
                from: f.clone(),
                to: t.clone(),
                ..base.clone()
            });
        }
    }
    out
}

fn check_trace(
    dp: &Dataplane,
    state: &ClusterState,
    node: &Node,
) -> Result<Vec<ExpectOutcome>, Diagnostic> {
    let mut d = Vec::new();
    let map = entries(node, "`trace`", &mut d).ok_or_else(|| d.remove(0))?;
    let mut spec = QuerySpec {
        q: TraceQuery::default(),
    };
    let (mut from_span, mut to_span) = (node.span, node.span);
    let mut verdict: Option<(Outcome, Span)> = None;
    let mut endpoints: Option<Vec<String>> = None;
    let mut masq: Option<bool> = None;
    let mut reason: Option<String> = None;
    for (k, v) in map {
        let key = scalar(k).unwrap_or("");
        if read_query_field(&mut spec.q, key, v)? {
            continue;
        }
        match key {
            "from" => {
                spec.q.from = scalar(v)
                    .ok_or_else(|| err(v.span, "`from` must be a string"))?
                    .to_string();
                from_span = v.span;
            }
            "to" => {
                spec.q.to = scalar(v)
                    .ok_or_else(|| err(v.span, "`to` must be a string"))?
                    .to_string();
                to_span = v.span;
            }
            "verdict" => {
                let o = match scalar(v) {
                    Some("delivered") => Outcome::Delivered,
                    Some("dropped") => Outcome::Dropped,
                    Some("rejected") => Outcome::Rejected,
                    _ => {
                        return Err(
                            err(v.span, "verdict must be delivered, dropped or rejected")
                                .with_label("unknown verdict"),
                        );
                    }
                };
                verdict = Some((o, v.span));
            }
            "endpoints" => {
                let mut list = Vec::new();
                for e in seq(v, "`endpoints`", &mut d).ok_or_else(|| d.remove(0))? {
                    list.push(
                        scalar(e)
                            .ok_or_else(|| err(e.span, "an endpoint must be ip:port"))?
                            .to_string(),
                    );
                }
                list.sort();
                endpoints = Some(list);
            }
            "masqueraded" => {
                masq = Some(
                    bool_of(v).ok_or_else(|| err(v.span, "`masqueraded` must be true or false"))?,
                )
            }
            "reason" => {
                reason = Some(
                    scalar(v)
                        .ok_or_else(|| err(v.span, "`reason` must be a string"))?
                        .to_string(),
                )
            }
            _ => {
                return Err(err(k.span, format!("unknown key `{key}` in `trace`")).with_help(
                    "known keys: from, to, family, proto, port, verdict, endpoints, masqueraded, reason",
                ));
            }
        }
    }
    if spec.q.from.is_empty() || spec.q.to.is_empty() {
        return Err(err(node.span, "`trace` needs `from` and `to`"));
    }
    let Some((want, _)) = verdict else {
        return Err(err(node.span, "`trace` needs a `verdict`").with_label("missing `verdict`"));
    };
    for (text, role, span) in [
        (&spec.q.from, "source", from_span),
        (&spec.q.to, "destination", to_span),
    ] {
        check_syntax(text, role).map_err(|e| err(span, format!("cannot trace: {e}")))?;
    }
    let name = format!(
        "trace {} -> {}{}",
        spec.q.from,
        spec.q.to,
        qualifiers(&spec.q)
    );
    let t = match trace(dp, state, &spec.q) {
        Ok(t) => t,
        // Well-formed (checked above): the state cannot answer it, which fails the
        // expectation.
        Err(e) => {
            return Ok(vec![ExpectOutcome {
                name,
                passed: false,
                message: format!("cannot trace: {e}"),
                span: node.span,
            }]);
        }
    };
    let mut problems = Vec::new();
    if t.verdict != want {
        problems.push(format!(
            "verdict: expected {}, got {}{}",
            outcome_name(want),
            outcome_name(t.verdict),
            t.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    if let Some(eps) = &endpoints {
        let mut got = t.endpoints.clone();
        got.sort();
        if &got != eps {
            problems.push(format!(
                "endpoints: expected [{}], got [{}]",
                eps.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(m) = masq
        && m != t.masqueraded
    {
        problems.push(format!("masqueraded: expected {m}, got {}", t.masqueraded));
    }
    if let Some(r) = &reason
        && !t.reason.as_deref().unwrap_or("").contains(r.as_str())
    {
        problems.push(format!(
            "reason: expected it to contain {r:?}, got {:?}",
            t.reason.clone().unwrap_or_default()
        ));
    }
    Ok(vec![ExpectOutcome {
        passed: problems.is_empty(),
        message: if problems.is_empty() {
            format!("{} ({})", outcome_name(t.verdict), t.endpoints.join(", "))
        } else {
            problems.join("; ")
        },
        name,
        span: node.span,
    }])
}

/// What a query sets besides its ends, for the name of its check: ` (IPv6, udp, port 53)`,
/// or nothing. Two checks of the same ends in two families then have two names (a JUnit report
/// lists checks by name).
fn qualifiers(q: &TraceQuery) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(f) = q.family {
        parts.push(f.to_string());
    }
    if !q.proto.is_empty() {
        parts.push(q.proto.clone());
    }
    if let Some(p) = q.port {
        parts.push(format!("port {p}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Delivered => "delivered",
        Outcome::Dropped => "dropped",
        Outcome::Rejected => "rejected",
    }
}

fn check_matrix(
    dp: &Dataplane,
    state: &ClusterState,
    node: &Node,
) -> Result<Vec<ExpectOutcome>, Diagnostic> {
    let mut d = Vec::new();
    let map = entries(node, "`reachability`", &mut d).ok_or_else(|| d.remove(0))?;
    let mut base = TraceQuery::default();
    let mut from: Vec<String> = Vec::new();
    let mut to: Vec<String> = Vec::new();
    let mut allow: Option<&Node> = None;
    for (k, v) in map {
        let key = scalar(k).unwrap_or("");
        if read_query_field(&mut base, key, v)? {
            continue;
        }
        // Each entry must be a string written as a query's source or destination.
        let strings = |v: &Node, what: &str, role: &str| -> Result<Vec<String>, Diagnostic> {
            let mut d = Vec::new();
            let items = seq(v, what, &mut d).ok_or_else(|| d.remove(0))?;
            items
                .iter()
                .map(|i| {
                    let text = scalar(i)
                        .ok_or_else(|| err(i.span, format!("{what} entries must be strings")))?;
                    check_syntax(text, role)
                        .map_err(|e| err(i.span, format!("cannot trace: {e}")))?;
                    Ok(text.to_string())
                })
                .collect()
        };
        match key {
            "from" => from = strings(v, "`from`", "source")?,
            "to" => to = strings(v, "`to`", "destination")?,
            "allow" => allow = Some(v),
            _ => {
                return Err(
                    err(k.span, format!("unknown key `{key}` in `reachability`"))
                        .with_help("known keys: from, to, allow, family, proto, port"),
                );
            }
        }
    }
    let Some(allow) = allow else {
        return Err(
            err(node.span, "`reachability` needs an `allow` matrix").with_label("missing `allow`")
        );
    };
    let rows = seq(allow, "`allow`", &mut d).ok_or_else(|| d.remove(0))?;
    if rows.len() != from.len() {
        return Err(err(
            allow.span,
            format!(
                "`allow` has {} rows but `from` has {} sources",
                rows.len(),
                from.len()
            ),
        ));
    }
    // Every cell's query is compiled first (the first malformed cell, in order, is the
    // error; a cell the state cannot answer fails with the reason), then the verdicts come in
    // one parallel batch; only a cell that fails its expectation is traced hop by hop, for the
    // reason its message gives.
    struct Cell<'a> {
        want: bool,
        src: &'a str,
        dst: &'a str,
        span: Span,
        /// Why the state cannot answer this cell's query; `None` when it was compiled.
        unanswerable: Option<String>,
    }
    let mut cells: Vec<Cell<'_>> = Vec::new();
    let mut compiled = Vec::new();
    for (row, src) in rows.iter().zip(&from) {
        let row_cells = match &row.kind {
            NodeKind::Seq(c) => c,
            _ => return Err(err(row.span, "each `allow` row must be a list")),
        };
        if row_cells.len() != to.len() {
            return Err(err(
                row.span,
                format!(
                    "this row has {} cells but `to` has {} destinations",
                    row_cells.len(),
                    to.len()
                ),
            ));
        }
        for (cell, dst) in row_cells.iter().zip(&to) {
            let want = bool_of(cell)
                .ok_or_else(|| err(cell.span, "a cell must be true/false or allow/deny"))?;
            let q = TraceQuery {
                from: src.clone(),
                to: dst.clone(),
                ..base.clone()
            };
            // The errors of `compile` are those of `trace`: on a well-formed query (`from`
            // and `to` were checked as they were read), about the state.
            let unanswerable = match dp.compile(&q) {
                Ok(cq) => {
                    compiled.push(cq);
                    None
                }
                Err(e) => Some(e),
            };
            cells.push(Cell {
                want,
                src,
                dst,
                span: cell.span,
                unanswerable,
            });
        }
    }
    let mut verdicts = dp.verdicts(&compiled).into_iter();
    let mut out = Vec::with_capacity(cells.len());
    for c in &cells {
        let name = format!("reachability {} -> {}{}", c.src, c.dst, qualifiers(&base));
        if let Some(e) = &c.unanswerable {
            out.push(ExpectOutcome {
                name,
                passed: false,
                message: format!("cannot trace {} -> {}: {e}", c.src, c.dst),
                span: c.span,
            });
            continue;
        }
        let v = verdicts
            .next()
            .expect("one verdict per compiled query, in order");
        let got = v.outcome == Outcome::Delivered;
        let message = if got == c.want {
            outcome_name(v.outcome).to_string()
        } else {
            let q = TraceQuery {
                from: c.src.to_string(),
                to: c.dst.to_string(),
                ..base.clone()
            };
            // The hop-by-hop tracer resolves the query as `compile` did, so it answers too.
            let (verdict, reason) = match trace(dp, state, &q) {
                Ok(t) => (t.verdict, t.reason),
                Err(e) => (v.outcome, Some(e)),
            };
            format!(
                "expected {}, got {}{}",
                if c.want { "allow" } else { "deny" },
                outcome_name(verdict),
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )
        };
        out.push(ExpectOutcome {
            name,
            passed: got == c.want,
            message,
            span: c.span,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use knetsim_model::source::FileId;
    use knetsim_model::yaml::parse_stream;

    use super::check_expectation;
    use crate::fixture_tests as fx;

    /// Checks one expectation written in YAML on the small cluster of `fixture_tests`:
    /// `name: passed: message` per result, or `error line:col: message`.
    fn check(dp: &crate::Dataplane, yaml: &str) -> Vec<String> {
        let (docs, diags) = parse_stream(FileId(0), yaml);
        assert!(diags.is_empty(), "{diags:?}");
        match check_expectation(dp, dp.state(), &docs[0]) {
            Ok(results) => results
                .into_iter()
                .map(|r| {
                    format!(
                        "{}: {} at {}:{}: {}",
                        r.name,
                        if r.passed { "pass" } else { "FAIL" },
                        r.span.line,
                        r.span.col,
                        r.message
                    )
                })
                .collect(),
            Err(d) => {
                let span = d.span.unwrap_or_default();
                vec![format!("error {}:{}: {}", span.line, span.col, d.message)]
            }
        }
    }

    /// The fixture cluster with IPv6 forwarding off on node-1 and a pod that has only an
    /// IPv4 address.
    fn with_v4_only_pod() -> crate::Dataplane {
        let s = fx::cluster("iptables", 34)
            .sysctl("node-1", "net.ipv6.conf.all.forwarding", "0")
            .pod("default", "v4-only", "node-2", &["10.244.1.9"])
            .build();
        crate::build_with(&s, crate::Cni::HostLocal, &fx::fabric(), None)
    }

    #[test]
    fn traces_report_what_the_state_cannot_answer_as_failures() {
        let dp = with_v4_only_pod();
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "a pod without an address of the family",
                "trace: {from: default/v4-only, to: default/web-2, family: IPv6, verdict: delivered}",
                &[
                    "trace default/v4-only -> default/web-2 (IPv6): FAIL at 1:8: cannot trace: source: pod default/v4-only has no IPv6 address",
                ],
            ),
            (
                "a pod the state does not hold",
                "trace: {from: default/client, to: default/web-9, verdict: delivered}",
                &[
                    "trace default/client -> default/web-9: FAIL at 1:8: cannot trace: destination: pod default/web-9 not found",
                ],
            ),
            (
                "a Service port the state does not hold",
                "trace: {from: default/client, to: \"svc:default/web:grpc\", verdict: delivered}",
                &[
                    "trace default/client -> svc:default/web:grpc: FAIL at 1:8: cannot trace: destination: Service default/web has no port grpc",
                ],
            ),
            (
                "an answerable trace still passes",
                "trace: {from: default/v4-only, to: default/web-2, verdict: delivered}",
                &["trace default/v4-only -> default/web-2: pass at 1:8: delivered (10.244.1.7:80)"],
            ),
            (
                "a source not written as one is malformed",
                "trace: {from: client, to: default/web-2, verdict: delivered}",
                &[
                    "error 1:15: cannot trace: source: \"client\" is not a pod (ns/name), node:NAME, svc:ns/name[:port], external or an IP",
                ],
            ),
            (
                "an empty node name is malformed",
                "trace: {from: default/client, to: \"node:\", verdict: delivered}",
                &["error 1:35: cannot trace: destination: \"node:\" names no node"],
            ),
            (
                "an unknown key is malformed",
                "trace: {from: default/client, to: default/web-2, verdict: delivered, hops: 3}",
                &["error 1:70: unknown key `hops` in `trace`"],
            ),
        ];
        for (name, yaml, want) in cases {
            assert_eq!(check(&dp, yaml), *want, "{name}");
        }
    }

    #[test]
    fn reachability_matrices_report_each_cell() {
        let dp = with_v4_only_pod();
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "every cell as expected",
                "reachability:
  from: [default/client, node:node-2, external]
  to: [svc:default/web, default/web-2, svc:default/empty]
  allow:
    - [true, true, false]
    - [allow, allow, deny]
    - [no, no, no]
",
                &[
                    "reachability default/client -> svc:default/web: pass at 5:8: delivered",
                    "reachability default/client -> default/web-2: pass at 5:14: delivered",
                    "reachability default/client -> svc:default/empty: pass at 5:20: rejected",
                    "reachability node:node-2 -> svc:default/web: pass at 6:8: delivered",
                    "reachability node:node-2 -> default/web-2: pass at 6:15: delivered",
                    "reachability node:node-2 -> svc:default/empty: pass at 6:22: rejected",
                    "reachability external -> svc:default/web: pass at 7:8: dropped",
                    "reachability external -> default/web-2: pass at 7:12: dropped",
                    "reachability external -> svc:default/empty: pass at 7:16: dropped",
                ],
            ),
            (
                "failing cells carry the detailed trace's reason",
                "reachability:
  family: IPv6
  port: 8080
  from: [default/client, default/web-2]
  to: [default/web-2, default/web-1, svc:default/empty]
  allow:
    - [true, false, true]
    - [false, true, false]
",
                &[
                    "reachability default/client -> default/web-2 (IPv6, port 8080): FAIL at 7:8: expected allow, got dropped (IPv6 forwarding is disabled on node-1)",
                    "reachability default/client -> default/web-1 (IPv6, port 8080): pass at 7:14: dropped",
                    "reachability default/client -> svc:default/empty (IPv6, port 8080): FAIL at 7:21: expected allow, got rejected (Service default/empty has no IPv6 endpoints (rejected by kube-proxy on node-1: \"default/empty:http has no endpoints\"))",
                    "reachability default/web-2 -> default/web-2 (IPv6, port 8080): FAIL at 8:8: expected deny, got delivered",
                    "reachability default/web-2 -> default/web-1 (IPv6, port 8080): FAIL at 8:15: expected allow, got dropped (IPv6 forwarding is disabled on node-1)",
                    "reachability default/web-2 -> svc:default/empty (IPv6, port 8080): pass at 8:21: rejected",
                ],
            ),
            (
                "a cell naming what the state does not hold fails at the cell, with the reason",
                "reachability:
  from: [default/client]
  to: [default/web-2, default/nope]
  allow: [[true, false]]
",
                &[
                    "reachability default/client -> default/web-2: pass at 4:12: delivered",
                    "reachability default/client -> default/nope: FAIL at 4:18: cannot trace default/client -> default/nope: destination: pod default/nope not found",
                ],
            ),
            (
                "a cell the state cannot answer in the family fails at the cell",
                "reachability:
  family: IPv6
  from: [default/v4-only, default/client]
  to: [default/web-2]
  allow: [[false], [false]]
",
                &[
                    "reachability default/v4-only -> default/web-2 (IPv6): FAIL at 5:12: cannot trace default/v4-only -> default/web-2: source: pod default/v4-only has no IPv6 address",
                    "reachability default/client -> default/web-2 (IPv6): pass at 5:21: dropped",
                ],
            ),
            (
                "a malformed cell is an error even after one the state cannot answer",
                "reachability:
  from: [default/client]
  to: [default/nope, default/web-2]
  allow: [[true, maybe]]
",
                &["error 4:18: a cell must be true/false or allow/deny"],
            ),
            (
                "a destination not written as one is an error at the entry",
                "reachability:
  from: [default/client]
  to: [default/web-2, svc:web]
  allow: [[true, true]]
",
                &["error 3:23: cannot trace: destination: \"svc:web\" is not svc:ns/name[:port]"],
            ),
            (
                "a Service as a source is an error at the entry",
                "reachability:
  from: [svc:default/web]
  to: [default/web-2]
  allow: [[true]]
",
                &["error 2:10: cannot trace: source: a Service cannot send packets"],
            ),
            (
                "the first bad cell is reported (a boolean)",
                "reachability:
  from: [default/client]
  to: [default/web-2, default/nope]
  allow: [[maybe, true]]
",
                &["error 4:12: a cell must be true/false or allow/deny"],
            ),
            (
                "rows must match the sources",
                "reachability:
  from: [default/client, default/web-1]
  to: [default/web-2]
  allow: [[true]]
",
                &["error 4:10: `allow` has 1 rows but `from` has 2 sources"],
            ),
        ];
        for (name, yaml, want) in cases {
            assert_eq!(check(&dp, yaml), *want, "{name}");
        }
    }
}
