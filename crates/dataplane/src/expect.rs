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

use knetsim_control::state::ClusterState;
use knetsim_ipam::Family;
use knetsim_model::yaml::{Node, NodeKind};
use knetsim_model::{Diagnostic, Span};

use crate::Dataplane;
use crate::config::{entries, scalar, seq};
use crate::trace::{Outcome, TraceQuery, trace};

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
                    .to_string()
            }
            "to" => {
                spec.q.to = scalar(v)
                    .ok_or_else(|| err(v.span, "`to` must be a string"))?
                    .to_string()
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
    let name = format!("trace {} -> {}", spec.q.from, spec.q.to);
    let t = match trace(dp, state, &spec.q) {
        Ok(t) => t,
        Err(e) => return Err(err(node.span, format!("cannot trace: {e}"))),
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
        let strings = |v: &Node, what: &str| -> Result<Vec<String>, Diagnostic> {
            let mut d = Vec::new();
            let items = seq(v, what, &mut d).ok_or_else(|| d.remove(0))?;
            items
                .iter()
                .map(|i| {
                    scalar(i)
                        .map(str::to_string)
                        .ok_or_else(|| err(i.span, format!("{what} entries must be strings")))
                })
                .collect()
        };
        match key {
            "from" => from = strings(v, "`from`")?,
            "to" => to = strings(v, "`to`")?,
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
    // Every cell's query is compiled first (the first bad cell, in order, is the error), then
    // the verdicts come in one parallel batch; only a cell that fails its expectation is
    // traced hop by hop, for the reason its message gives.
    struct Cell<'a> {
        want: bool,
        src: &'a str,
        dst: &'a str,
        span: Span,
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
            // The errors of `compile` are those of `trace`.
            let cq = dp
                .compile(&q)
                .map_err(|e| err(cell.span, format!("cannot trace {src} -> {dst}: {e}")))?;
            compiled.push(cq);
            cells.push(Cell {
                want,
                src,
                dst,
                span: cell.span,
            });
        }
    }
    let verdicts = dp.verdicts(&compiled);
    let mut out = Vec::with_capacity(cells.len());
    for (c, v) in cells.iter().zip(verdicts) {
        let got = v.outcome == Outcome::Delivered;
        let message = if got == c.want {
            outcome_name(v.outcome).to_string()
        } else {
            let q = TraceQuery {
                from: c.src.to_string(),
                to: c.dst.to_string(),
                ..base.clone()
            };
            let t = trace(dp, state, &q)
                .map_err(|e| err(c.span, format!("cannot trace {} -> {}: {e}", c.src, c.dst)))?;
            format!(
                "expected {}, got {}{}",
                if c.want { "allow" } else { "deny" },
                outcome_name(t.verdict),
                t.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            )
        };
        out.push(ExpectOutcome {
            name: format!("reachability {} -> {}", c.src, c.dst),
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

    #[test]
    fn reachability_matrices_report_each_cell() {
        let dp = fx::hl_no_v6_fwd();
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
                    "reachability default/client -> default/web-2: FAIL at 7:8: expected allow, got dropped (IPv6 forwarding is disabled on node-1)",
                    "reachability default/client -> default/web-1: pass at 7:14: dropped",
                    "reachability default/client -> svc:default/empty: FAIL at 7:21: expected allow, got rejected (Service default/empty has no IPv6 endpoints (rejected by kube-proxy on node-1: \"default/empty:http has no endpoints\"))",
                    "reachability default/web-2 -> default/web-2: FAIL at 8:8: expected deny, got delivered",
                    "reachability default/web-2 -> default/web-1: FAIL at 8:15: expected allow, got dropped (IPv6 forwarding is disabled on node-1)",
                    "reachability default/web-2 -> svc:default/empty: pass at 8:21: rejected",
                ],
            ),
            (
                "a cell that names nothing is an error at the cell",
                "reachability:
  from: [default/client]
  to: [default/web-2, default/nope]
  allow: [[true, true]]
",
                &[
                    "error 4:18: cannot trace default/client -> default/nope: destination: pod default/nope not found",
                ],
            ),
            (
                "the first bad cell is reported (a name)",
                "reachability:
  from: [default/client]
  to: [default/nope, default/web-2]
  allow: [[true, maybe]]
",
                &[
                    "error 4:12: cannot trace default/client -> default/nope: destination: pod default/nope not found",
                ],
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
