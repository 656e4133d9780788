//! `knetsim reach`: a reachability matrix, every source against every destination, answered
//! by the fast path ([`crate::verdict`]) in parallel batches.
//!
//! Sources and destinations are those of `knetsim trace` (`ns/name` or `pod:ns/name`,
//! `node:NAME`, `external`, an IP; destinations also `svc:ns/name[:port]`), plus selectors
//! that stand for many of them:
//!
//! - `pods:NS` — every pod of namespace `NS`; `pods:*` — every pod; `pods:NS/KEY=VALUE` —
//!   the pods of `NS` with that label (`pods:*/KEY=VALUE`: in every namespace);
//! - `nodes:*` — every node;
//! - `services:NS`, `services:*`, `services:NS/KEY=VALUE` (destinations only) — every port
//!   of the protocol asked for (`--proto`, tcp by default) of every Service with a cluster IP
//!   (headless and ExternalName Services have none to reach), as `svc:ns/name:port`.
//!
//! Selectors expand in name order. A name that does not exist, a selector that matches
//! nothing and a malformed item are errors (with `trace`'s messages for names); a cell whose
//! query cannot be asked (a source without an address of the destination's family, a Service
//! without a cluster IP of the family asked for) is `n/a`, with the reason in JSON.

use std::fmt::Write as _;

use knetsim_control::state::{ClusterState, NamespacedName};
use knetsim_ipam::Family;
use rayon::prelude::*;
use serde::Serialize;

use crate::Dataplane;
use crate::proxy::Proto;
use crate::trace::{Outcome, check_names};

/// The most cells a matrix may have: each cell's query and verdict are held until the matrix
/// is complete, and a selector such as `pods:*` against `services:*` on a large cluster
/// would otherwise exhaust memory instead of answering.
pub const MAX_CELLS: usize = 4_000_000;

/// What to ask: sources and destinations as the command line gives them (items, each a
/// name or a selector), and the packet's family, protocol and port as `trace` takes them.
#[derive(Clone, Debug, Default)]
pub struct ReachQuery {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub family: Option<Family>,
    /// `tcp`, `udp` or `sctp` (empty: tcp).
    pub proto: String,
    pub port: Option<u16>,
}

/// One cell: the verdict of the packet from a row's source to a column's destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    /// `None`: the query cannot be asked (see `error`).
    pub outcome: Option<Outcome>,
    /// Destinations the packet could be sent to after kube-proxy's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<u32>,
    /// Of those, how many it reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u32>,
    /// Whether a destination reached sees a source other than the sender's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masqueraded: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Cells by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub delivered: usize,
    pub dropped: usize,
    pub rejected: usize,
    pub not_applicable: usize,
}

/// A finished matrix: `cells[row][column]`, rows in the order of `from`, columns in the
/// order of `to`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    /// The family asked for (`None`: each destination's).
    pub family: Option<Family>,
    pub proto: Proto,
    /// The port asked for (`None`: 80; a Service's port for Services).
    pub port: Option<u16>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cells: Vec<Vec<Cell>>,
    pub summary: Summary,
}

/// Which side of the matrix an item is on (`trace`'s words, used in its messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Source,
    Destination,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }
}

/// A selector's scope: a namespace (or every one) and an optional label.
struct Scope<'a> {
    namespace: Option<&'a str>,
    label: Option<(&'a str, &'a str)>,
}

impl<'a> Scope<'a> {
    /// Parses `NS`, `*`, `NS/KEY=VALUE` or `*/KEY=VALUE`.
    fn parse(item: &str, rest: &'a str, r: &str) -> Result<Scope<'a>, String> {
        let (ns, label) = match rest.split_once('/') {
            Some((ns, sel)) => {
                let (k, v) = sel
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| {
                        format!("{r}: {item:?}: the label selector must be KEY=VALUE")
                    })?;
                (ns, Some((k, v)))
            }
            None => (rest, None),
        };
        if ns.is_empty() {
            return Err(format!(
                "{r}: {item:?}: name a namespace, or * for every one"
            ));
        }
        Ok(Scope {
            namespace: (ns != "*").then_some(ns),
            label,
        })
    }

    fn matches(
        &self,
        nn: &NamespacedName,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        self.namespace.is_none_or(|ns| nn.namespace == ns)
            && self
                .label
                .is_none_or(|(k, v)| labels.get(k).is_some_and(|x| x == v))
    }

    /// The error for a namespace that does not exist.
    fn check_namespace(&self, state: &ClusterState, item: &str, r: &str) -> Result<(), String> {
        match self.namespace {
            Some(ns)
                if !state.namespaces.contains(ns)
                    && !state.pods.keys().any(|p| p.namespace == ns)
                    && !state.services.keys().any(|s| s.namespace == ns) =>
            {
                Err(format!("{r}: {item:?}: namespace {ns:?} not found"))
            }
            _ => Ok(()),
        }
    }
}

/// Expands one item of `--from` or `--to` into query specs, in name order.
fn expand(
    state: &ClusterState,
    item: &str,
    role: Role,
    proto: Proto,
) -> Result<Vec<String>, String> {
    let r = role.as_str();
    let out: Vec<String> = if let Some(rest) = item.strip_prefix("pods:") {
        let scope = Scope::parse(item, rest, r)?;
        scope.check_namespace(state, item, r)?;
        state
            .pods
            .iter()
            .filter(|(nn, p)| scope.matches(nn, &p.metadata.labels))
            .map(|(nn, _)| nn.to_string())
            .collect()
    } else if let Some(rest) = item.strip_prefix("nodes:") {
        if rest != "*" {
            return Err(format!(
                "{r}: {item:?}: nodes:* is every node (a single node is node:NAME)"
            ));
        }
        state.nodes.keys().map(|n| format!("node:{n}")).collect()
    } else if let Some(rest) = item.strip_prefix("services:") {
        if role == Role::Source {
            return Err("source: a Service cannot send packets".to_string());
        }
        let scope = Scope::parse(item, rest, r)?;
        scope.check_namespace(state, item, r)?;
        let mut out = Vec::new();
        for (nn, svc) in &state.services {
            if svc.spec.cluster_ip_addrs().is_empty() || !scope.matches(nn, &svc.metadata.labels) {
                continue;
            }
            for sp in &svc.spec.ports {
                if Proto::parse(&sp.protocol) != Some(proto) {
                    continue;
                }
                let port = sp.name.clone().unwrap_or_else(|| sp.port.to_string());
                out.push(format!("svc:{nn}:{port}"));
            }
        }
        out
    } else {
        check_names(state, item, r)?;
        return Ok(vec![item.to_string()]);
    };
    if out.is_empty() {
        let what = match item.split(':').next() {
            Some("services") => {
                format!("no {} port of a Service with a cluster IP", proto.as_str())
            }
            Some("nodes") => "no node".to_string(),
            _ => "no pod".to_string(),
        };
        return Err(format!("{r}: {item:?} matches {what}"));
    }
    Ok(out)
}

/// The rows and columns of a matrix, selectors expanded, and its protocol. `Err` when an item
/// names nothing, a selector matches nothing, the protocol is unknown, or the matrix would
/// have more than [`MAX_CELLS`] cells.
fn axes(state: &ClusterState, q: &ReachQuery) -> Result<(Vec<String>, Vec<String>, Proto), String> {
    let proto_s = if q.proto.is_empty() { "tcp" } else { &q.proto };
    let proto = Proto::parse(proto_s).ok_or_else(|| format!("unknown protocol {proto_s:?}"))?;
    let mut from = Vec::new();
    for item in &q.from {
        from.extend(expand(state, item, Role::Source, proto)?);
    }
    let mut to = Vec::new();
    for item in &q.to {
        to.extend(expand(state, item, Role::Destination, proto)?);
    }
    if from.is_empty() || to.is_empty() {
        return Err("name at least one source (--from) and one destination (--to)".to_string());
    }
    let n = from.len().saturating_mul(to.len());
    if n > MAX_CELLS {
        return Err(format!(
            "the matrix would have {n} cells ({} sources x {} destinations), more than {MAX_CELLS}: narrow --from or --to",
            from.len(),
            to.len()
        ));
    }
    Ok((from, to, proto))
}

/// The cells of a matrix as trace queries, row by row (for `knetsim emulate --reach`, which
/// sends a real packet for each). The same expansion, checks and messages as [`reach`].
pub fn cell_queries(dp: &Dataplane, q: &ReachQuery) -> Result<Vec<crate::TraceQuery>, String> {
    let (from, to, proto) = axes(dp.state(), q)?;
    Ok(from
        .iter()
        .flat_map(|f| {
            to.iter().map(move |t| crate::TraceQuery {
                from: f.clone(),
                to: t.clone(),
                family: q.family,
                proto: proto.as_str().to_string(),
                port: q.port,
            })
        })
        .collect())
}

/// Rows of cells compiled and answered together: enough for both threads to share, few
/// enough that queries do not pile up.
const CHUNK_CELLS: usize = 1 << 16;

/// Builds the matrix. `Err` (with `trace`'s messages for names) when an item names
/// nothing, a selector matches nothing, the protocol is unknown, or the matrix would have
/// more than [`MAX_CELLS`] cells.
pub fn reach(dp: &Dataplane, q: &ReachQuery) -> Result<Matrix, String> {
    let (from, to, proto) = axes(dp.state(), q)?;
    // Each destination is resolved once, each source once per row (and family).
    let grid = dp.query_grid(&to, q.family, proto.as_str(), q.port);
    let mut flat: Vec<Cell> = Vec::with_capacity(from.len() * to.len());
    let rows_per_chunk = (CHUNK_CELLS / to.len()).max(1);
    for rows in from.chunks(rows_per_chunk) {
        // Compiled in parallel, row by row, and answered in one batch.
        let compiled: Vec<Result<crate::CompiledQuery, String>> =
            rows.par_iter().flat_map_iter(|src| grid.row(src)).collect();
        let ok: Vec<crate::CompiledQuery> = compiled
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .cloned()
            .collect();
        let mut verdicts = dp.verdicts(&ok).into_iter();
        for c in compiled {
            flat.push(match c {
                Ok(_) => Cell::of(verdicts.next().expect("a verdict per compiled query")),
                Err(e) => Cell::error(e),
            });
        }
    }
    let mut summary = Summary::default();
    for c in &flat {
        match c.outcome {
            Some(Outcome::Delivered) => summary.delivered += 1,
            Some(Outcome::Dropped) => summary.dropped += 1,
            Some(Outcome::Rejected) => summary.rejected += 1,
            None => summary.not_applicable += 1,
        }
    }
    let mut cells = Vec::with_capacity(from.len());
    let mut it = flat.into_iter();
    for _ in 0..from.len() {
        cells.push(it.by_ref().take(to.len()).collect());
    }
    Ok(Matrix {
        family: q.family,
        proto,
        port: q.port,
        from,
        to,
        cells,
        summary,
    })
}

impl Cell {
    /// The cell of a verdict.
    pub fn of(v: crate::Verdict) -> Cell {
        Cell {
            outcome: Some(v.outcome),
            paths: Some(v.paths),
            delivered: Some(v.delivered),
            masqueraded: Some(v.masqueraded),
            error: None,
        }
    }

    /// A cell whose query cannot be asked.
    pub fn error(e: String) -> Cell {
        Cell {
            outcome: None,
            paths: None,
            delivered: None,
            masqueraded: None,
            error: Some(e),
        }
    }

    /// The cell as the table shows it: `delivered` (`delivered 2/3` when only some of the
    /// destinations after kube-proxy's choice are reached), `dropped`, `rejected` or `n/a`,
    /// with `*` when the destination sees another source address.
    pub fn text(&self) -> String {
        let mut s = match self.outcome {
            Some(Outcome::Delivered) => match (self.delivered, self.paths) {
                (Some(d), Some(p)) if p > d => format!("delivered {d}/{p}"),
                _ => "delivered".to_string(),
            },
            Some(Outcome::Dropped) => "dropped".to_string(),
            Some(Outcome::Rejected) => "rejected".to_string(),
            None => "n/a".to_string(),
        };
        if self.masqueraded == Some(true) {
            s.push('*');
        }
        s
    }
}

/// Renders a matrix as an aligned table: a line saying what was asked, a row per source
/// with a column per destination, the legend of the marks used, and the totals.
pub fn render_reach_table(m: &Matrix) -> String {
    let mut out = String::new();
    let family = m
        .family
        .map_or("each destination's family".to_string(), |f| f.to_string());
    let port = match m.port {
        Some(p) => format!("port {p}"),
        None => "port 80".to_string(),
    };
    let _ = writeln!(
        out,
        "{} sources x {} destinations, {family}, {} {port} (Services: their own port)",
        m.from.len(),
        m.to.len(),
        m.proto.as_str(),
    );
    let texts: Vec<Vec<String>> = m
        .cells
        .iter()
        .map(|row| row.iter().map(Cell::text).collect())
        .collect();
    let first = m
        .from
        .iter()
        .map(|s| s.chars().count())
        .chain(["FROM".len()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..m.to.len())
        .map(|j| {
            texts
                .iter()
                .map(|row| row[j].chars().count())
                .chain([m.to[j].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut String, head: &str, cols: &mut dyn Iterator<Item = &str>| {
        let mut l = format!("{head:<first$}");
        for (c, w) in cols.zip(&widths) {
            let _ = write!(l, "  {c:<w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, "FROM", &mut m.to.iter().map(String::as_str));
    for (src, row) in m.from.iter().zip(&texts) {
        line(&mut out, src, &mut row.iter().map(String::as_str));
    }
    let cells = m.from.len() * m.to.len();
    if m.cells
        .iter()
        .flatten()
        .any(|c| c.masqueraded == Some(true))
    {
        out.push_str(
            "* masqueraded: the destination sees a source address other than the sender's\n",
        );
    }
    if m.summary.not_applicable > 0 {
        out.push_str("n/a: the query cannot be asked (see -o json for why)\n");
    }
    let s = &m.summary;
    let _ = writeln!(
        out,
        "{cells} cells: {} delivered, {} dropped, {} rejected, {} n/a",
        s.delivered, s.dropped, s.rejected, s.not_applicable
    );
    out
}

#[cfg(test)]
mod tests {
    use knetsim_ipam::Family::{IPv4, IPv6};

    use super::*;
    use crate::fixture_tests as fx;
    use crate::trace::{TraceQuery, trace};
    use crate::verdict::Verdict;

    fn items(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn items_expand_to_query_specs() {
        let dp = fx::hl();
        let state = dp.state();
        // (item, role, protocol, the specs or the error)
        type Case<'a> = (&'a str, Role, Proto, Result<&'a [&'a str], &'a str>);
        let cases: &[Case<'_>] = &[
            (
                "default/client",
                Role::Source,
                Proto::Tcp,
                Ok(&["default/client"]),
            ),
            (
                "pod:default/web-1",
                Role::Source,
                Proto::Tcp,
                Ok(&["pod:default/web-1"]),
            ),
            (
                "node:node-2",
                Role::Destination,
                Proto::Tcp,
                Ok(&["node:node-2"]),
            ),
            ("external", Role::Source, Proto::Tcp, Ok(&["external"])),
            (
                "203.0.113.7",
                Role::Source,
                Proto::Tcp,
                Ok(&["203.0.113.7"]),
            ),
            (
                "svc:default/web:http",
                Role::Destination,
                Proto::Tcp,
                Ok(&["svc:default/web:http"]),
            ),
            (
                "pods:default",
                Role::Source,
                Proto::Tcp,
                Ok(&["default/client", "default/web-1", "default/web-2"]),
            ),
            (
                "pods:*",
                Role::Destination,
                Proto::Tcp,
                Ok(&["default/client", "default/web-1", "default/web-2"]),
            ),
            (
                "nodes:*",
                Role::Source,
                Proto::Tcp,
                Ok(&["node:node-1", "node:node-2"]),
            ),
            (
                // Every port of every Service with a cluster IP: `empty` has no endpoints but
                // a cluster IP; ports by name, or by number when unnamed.
                "services:default",
                Role::Destination,
                Proto::Tcp,
                Ok(&[
                    "svc:default/empty:http",
                    "svc:default/v4-only:http",
                    "svc:default/web:http",
                    "svc:default/web-ext:8443",
                    "svc:default/web-lb:http",
                    "svc:default/web-local:http",
                ]),
            ),
            (
                "services:*",
                Role::Destination,
                Proto::Udp,
                Err(
                    "destination: \"services:*\" matches no udp port of a Service with a cluster IP",
                ),
            ),
            (
                "services:default",
                Role::Source,
                Proto::Tcp,
                Err("source: a Service cannot send packets"),
            ),
            (
                "svc:default/web",
                Role::Source,
                Proto::Tcp,
                Err("source: a Service cannot send packets"),
            ),
            (
                "default/nope",
                Role::Source,
                Proto::Tcp,
                Err("source: pod default/nope not found"),
            ),
            (
                "node:node-9",
                Role::Destination,
                Proto::Tcp,
                Err("destination: node \"node-9\" not found"),
            ),
            (
                "svc:default/nope",
                Role::Destination,
                Proto::Tcp,
                Err("destination: Service default/nope not found"),
            ),
            (
                "svc:default/web:grpc",
                Role::Destination,
                Proto::Tcp,
                Err("destination: Service default/web has no port grpc"),
            ),
            (
                "web",
                Role::Source,
                Proto::Tcp,
                Err(
                    "source: \"web\" is not a pod (ns/name), node:NAME, svc:ns/name[:port], external or an IP",
                ),
            ),
            (
                "pods:kube-system",
                Role::Source,
                Proto::Tcp,
                Err("source: \"pods:kube-system\": namespace \"kube-system\" not found"),
            ),
            (
                "pods:",
                Role::Source,
                Proto::Tcp,
                Err("source: \"pods:\": name a namespace, or * for every one"),
            ),
            (
                "pods:default/app",
                Role::Source,
                Proto::Tcp,
                Err("source: \"pods:default/app\": the label selector must be KEY=VALUE"),
            ),
            (
                "pods:default/app=db",
                Role::Source,
                Proto::Tcp,
                Err("source: \"pods:default/app=db\" matches no pod"),
            ),
            (
                "nodes:node-1",
                Role::Source,
                Proto::Tcp,
                Err("source: \"nodes:node-1\": nodes:* is every node (a single node is node:NAME)"),
            ),
        ];
        for (item, role, proto, want) in cases {
            let got = expand(state, item, *role, *proto);
            let want = want
                .map(|specs| specs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(str::to_string);
            assert_eq!(got, want, "{item} as {role:?}");
        }
    }

    #[test]
    fn pods_are_selected_by_label() {
        let state = crate::testkit::scale(&crate::testkit::Scale {
            minor: 34,
            mode: "iptables",
            nodes: 3,
            services: 4,
            endpoints: 2,
            namespaces: 2,
        });
        let dp = crate::build_with(state, crate::Cni::HostLocal, &Default::default(), None);
        let cases: &[(&str, &[&str])] = &[
            ("pods:ns-1/app=svc-3", &["ns-1/svc-3-0", "ns-1/svc-3-1"]),
            ("pods:*/app=svc-2", &["ns-0/svc-2-0", "ns-0/svc-2-1"]),
            ("services:ns-0/app=svc-2", &[]),
        ];
        for (item, want) in cases {
            let got = expand(dp.state(), item, Role::Destination, Proto::Tcp);
            if want.is_empty() {
                // Services of the fixture carry no labels.
                assert!(got.is_err(), "{item}: {got:?}");
            } else {
                assert_eq!(got, Ok(items(want)), "{item}");
            }
        }
    }

    #[test]
    fn every_cell_is_the_detailed_traces_verdict() {
        type Make = fn() -> Dataplane;
        let fixtures: [(&str, Make); 3] = [
            ("host-local", fx::hl),
            ("nftables", fx::hl_nft),
            ("IPv6 forwarding off", fx::hl_no_v6_fwd),
        ];
        for (name, make) in fixtures {
            let dp = make();
            for family in [None, Some(IPv4), Some(IPv6)] {
                let q = ReachQuery {
                    from: items(&["pods:default", "nodes:*", "external", "198.18.0.1"]),
                    to: items(&[
                        "services:*",
                        "pods:*",
                        "nodes:*",
                        "external",
                        "192.168.0.200",
                    ]),
                    family,
                    proto: "tcp".into(),
                    port: Some(8080),
                };
                let m = reach(&dp, &q).expect("the matrix");
                assert_eq!(m.cells.len(), m.from.len());
                let mut outcomes = std::collections::BTreeSet::new();
                for (src, row) in m.from.iter().zip(&m.cells) {
                    assert_eq!(row.len(), m.to.len());
                    for (dst, cell) in m.to.iter().zip(row) {
                        let t = trace(
                            &dp,
                            dp.state(),
                            &TraceQuery {
                                from: src.clone(),
                                to: dst.clone(),
                                family,
                                proto: "tcp".into(),
                                port: Some(8080),
                            },
                        );
                        let want = match t {
                            Ok(t) => Cell::of(Verdict::of_trace(&t)),
                            Err(e) => Cell::error(e),
                        };
                        outcomes.insert(cell.text());
                        assert_eq!(*cell, want, "[{name} {family:?}] {src} -> {dst}");
                    }
                }
                assert!(outcomes.len() >= 4, "[{name} {family:?}] {outcomes:?}");
            }
        }
    }

    #[test]
    fn the_table_marks_partial_delivery_masquerade_and_questions_that_cannot_be_asked() {
        let dp = fx::hl_no_v6_fwd();
        let q = ReachQuery {
            from: items(&["default/client", "default/web-2", "node:node-1"]),
            to: items(&[
                "svc:default/web",
                "svc:default/v4-only",
                "default/web-1",
                "external",
            ]),
            family: Some(IPv6),
            proto: String::new(),
            port: Some(8080),
        };
        let m = reach(&dp, &q).expect("the matrix");
        assert_eq!(
            render_reach_table(&m),
            "\
3 sources x 4 destinations, IPv6, tcp port 8080 (Services: their own port)
FROM            svc:default/web  svc:default/v4-only  default/web-1  external
default/client  dropped          n/a                  dropped        dropped
default/web-2   delivered 1/2*   n/a                  dropped        delivered*
node:node-1     delivered*       n/a                  delivered      delivered
* masqueraded: the destination sees a source address other than the sender's
n/a: the query cannot be asked (see -o json for why)
12 cells: 5 delivered, 4 dropped, 0 rejected, 3 n/a
"
        );
        assert_eq!(
            m.cells[0][1].error.as_deref(),
            Some("destination: Service default/v4-only has no IPv6 cluster IP")
        );
    }

    #[test]
    fn matrices_too_large_to_hold_are_refused() {
        let dp = fx::hl();
        let q = ReachQuery {
            from: items(&["default/nope"]),
            to: items(&["external"]),
            ..ReachQuery::default()
        };
        assert_eq!(
            reach(&dp, &q).map(|_| ()),
            Err("source: pod default/nope not found".to_string())
        );
        let q = ReachQuery {
            from: items(&["default/client"]),
            to: items(&["external"]),
            proto: "icmp".into(),
            ..ReachQuery::default()
        };
        assert_eq!(
            reach(&dp, &q).map(|_| ()),
            Err("unknown protocol \"icmp\"".to_string())
        );
        // 2,001 pods against 2,001 Services: one row too many.
        let state = crate::testkit::scale(&crate::testkit::Scale {
            minor: 34,
            mode: "iptables",
            nodes: 10,
            services: 2001,
            endpoints: 1,
            namespaces: 1,
        });
        let dp = crate::build_with(state, crate::Cni::HostLocal, &Default::default(), None);
        let q = ReachQuery {
            from: items(&["pods:*"]),
            to: items(&["services:ns-0"]),
            ..ReachQuery::default()
        };
        assert_eq!(
            reach(&dp, &q).map(|_| ()),
            Err("the matrix would have 4004001 cells (2001 sources x 2001 destinations), more than 4000000: narrow --from or --to".to_string())
        );
    }
}
