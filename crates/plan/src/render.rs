//! The report for people and for machines: an aligned text table, CSV, and an SVG chart.
//! (JSON is the report's `Serialize`, e.g. `serde_json::to_string_pretty`.)
//!
//! - [`render_table`]: sections for the node blocks, pod addresses, Calico, Service IPs, the
//!   limits under the target and the one that binds first, start-up errors by release,
//!   findings, then the sweep's best configurations and failure counts, and the growth
//!   model's exhaustion days. Counts are written with thousands separators; counts of 2^40 or
//!   more as powers of two (`2^64-2`), which is how IPv6 ranges are thought of.
//! - [`render_csv`]: one table, the most detailed the report has: the sweep (one row per
//!   configuration, in input order) if there is one, else the growth pools, else the
//!   single-configuration figures in long form (`section,family,metric,value`).
//!   [`render_csv_table`] picks a table explicitly.
//! - [`render_svg`]: headroom in percent, per pool; against days (the median over runs) when
//!   the report has a growth model, else against cluster size for the scenario's own
//!   configuration. Written by hand, with text as plain SVG `<text>`, so it needs no fonts and
//!   is byte-for-byte deterministic.

use std::fmt::Write as _;

use crate::PlanReport;
use crate::capacity::Limit;
use crate::config::Severity;

// ---------------------------------------------------------------------------------------------
// Numbers

/// `n` with thousands separators; from 2^40 on, as a power of two with a small offset
/// (`2^64`, `2^64-2`) or approximately (`~2^80`).
pub fn count(n: u128) -> String {
    if n >= 1 << 40 {
        let k = 127 - n.leading_zeros();
        let lower = 1u128 << k;
        let upper = lower.checked_mul(2);
        if n == lower {
            return format!("2^{k}");
        }
        if n - lower < 16 {
            return format!("2^{k}+{}", n - lower);
        }
        // 2^(k+1) - n, also when 2^(k+1) is 2^128 and does not fit.
        let below = match upper {
            Some(u) => u - n,
            None => (u128::MAX - n) + 1,
        };
        if below < 16 {
            return format!("2^{}-{below}", k + 1);
        }
        return format!("~2^{k}");
    }
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn opt_day(d: Option<u32>) -> String {
    match d {
        Some(d) => format!("day {d}"),
        None => "never".to_string(),
    }
}

fn percent(p: f64) -> String {
    if p.is_infinite() {
        "inf".to_string()
    } else {
        format!("{p:.1}%")
    }
}

// ---------------------------------------------------------------------------------------------
// Aligned tables

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns separated by two spaces, each as wide as its widest cell, indented by two.
fn table(out: &mut String, headers: &[(&str, Align)], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            s.push(' ');
            match headers[i].1 {
                Align::Left => {
                    s.push_str(cell);
                    s.push_str(&" ".repeat(pad));
                }
                Align::Right => {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                }
            }
            s.push(' ');
        }
        s.trim_end().to_string()
    };
    out.push_str(&line(headers.iter().map(|(h, _)| *h).collect()));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
}

use Align::{Left as L, Right as R};

/// The report as aligned text.
pub fn render_table(report: &PlanReport) -> String {
    let s = &report.single;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "knetsim plan: {} (Kubernetes {}, seed {})",
        report.name, report.kubernetes_version, report.seed
    );
    let _ = writeln!(
        out,
        "CNI {}, max-pods {}, {} node{} in the scenario",
        s.cni,
        s.max_pods,
        s.scenario_nodes,
        if s.scenario_nodes == 1 { "" } else { "s" }
    );

    let blocks: Vec<Vec<String>> = s
        .families
        .iter()
        .filter_map(|f| {
            let b = f.node_blocks.as_ref()?;
            Some(vec![
                f.family.to_string(),
                b.cluster_cidr.to_string(),
                format!("/{}", b.node_mask),
                count(b.total),
                count(b.reserved),
                count(b.used),
                count(b.free),
                count(b.max_nodes),
            ])
        })
        .collect();
    out.push_str(
        "\nNode blocks (kube-controller-manager; used: once the scenario's nodes registered)\n",
    );
    if blocks.is_empty() {
        out.push_str("  none: kube-controller-manager allocates no node CIDRs\n");
    } else {
        table(
            &mut out,
            &[
                ("family", L),
                ("cluster CIDR", L),
                ("mask", L),
                ("total", R),
                ("reserved", R),
                ("used", R),
                ("free", R),
                ("max nodes", R),
            ],
            &blocks,
        );
    }

    let pods: Vec<Vec<String>> = s
        .families
        .iter()
        .filter_map(|f| {
            let p = f.pod_ips.as_ref()?;
            Some(vec![
                f.family.to_string(),
                p.plugin.to_string(),
                count(p.per_node),
                s.max_pods.to_string(),
                p.gke_node_mask.map(|m| format!("/{m}")).unwrap_or_default(),
            ])
        })
        .collect();
    if !pods.is_empty() {
        out.push_str("\nPod addresses per node\n");
        table(
            &mut out,
            &[
                ("family", L),
                ("plugin", L),
                ("per node", R),
                ("max-pods", R),
                ("GKE mask for max-pods", L),
            ],
            &pods,
        );
    }

    let calico: Vec<Vec<String>> = s
        .families
        .iter()
        .filter_map(|f| {
            let c = f.calico.as_ref()?;
            let pools: Vec<String> = c.pools.iter().map(ToString::to_string).collect();
            Some(vec![
                f.family.to_string(),
                pools.join(","),
                format!("/{}", c.block_size),
                count(c.blocks),
                count(c.addresses),
                count(c.blocks_per_node),
                c.max_blocks_per_host.to_string(),
                count(c.per_node),
                c.strict_affinity.to_string(),
            ])
        })
        .collect();
    if !calico.is_empty() {
        out.push_str("\nCalico IPAM\n");
        table(
            &mut out,
            &[
                ("family", L),
                ("pools", L),
                ("block", L),
                ("blocks", R),
                ("addresses", R),
                ("blocks/node", R),
                ("max blocks/host", R),
                ("per node", R),
                ("strictAffinity", L),
            ],
            &calico,
        );
    }

    let services: Vec<Vec<String>> = s
        .families
        .iter()
        .filter_map(|f| {
            let v = f.service_ips.as_ref()?;
            Some(vec![
                f.family.to_string(),
                v.cidr.to_string(),
                v.allocator.to_string(),
                count(v.total),
                count(v.static_band),
                count(v.dynamic_band),
                count(v.available),
            ])
        })
        .collect();
    out.push_str("\nService IPs (kube-apiserver)\n");
    if services.is_empty() {
        out.push_str("  none: kube-apiserver does not start\n");
    } else {
        table(
            &mut out,
            &[
                ("family", L),
                ("range", L),
                ("allocator", L),
                ("total", R),
                ("static", R),
                ("dynamic", R),
                ("available", R),
            ],
            &services,
        );
        for f in &s.families {
            if let Some(v) = &f.service_ips {
                let _ = writeln!(
                    out,
                    "  {} not handed out: {}",
                    f.family,
                    v.reserved.join("; ")
                );
            }
        }
    }

    let t = &s.target;
    let _ = writeln!(
        out,
        "\nLimits (target: {} nodes, {} pods per node, {} Services, {} dual-stack Services{})",
        count(u128::from(t.nodes)),
        t.pods_per_node,
        count(u128::from(t.services)),
        count(u128::from(t.dual_stack_services)),
        if s.target_given {
            ""
        } else {
            "; the scenario's own size, as no target is given"
        }
    );
    limits_table(&mut out, &s.limits);
    let stopped: Vec<&str> = s
        .versions
        .outcomes
        .iter()
        .filter(|o| o.applies && o.severity == Severity::Error)
        .map(|o| o.component.as_str())
        .collect();
    let _ = writeln!(
        out,
        "  meets the target: {}{}{}",
        if s.meets_target { "yes" } else { "no" },
        if stopped.is_empty() {
            String::new()
        } else {
            format!(
                " ({} does not start on {})",
                stopped.join(" and "),
                report.kubernetes_version
            )
        },
        s.binding
            .as_ref()
            .map(|b| format!("; binds first: {b}"))
            .unwrap_or_default()
    );
    let max_nodes = match &s.max_nodes {
        Some(b) => format!(
            "{} nodes of {} pods ({})",
            count(b.value),
            s.target.pods_per_node,
            b.limited_by
        ),
        None => "no limit on nodes".to_string(),
    };
    let _ = writeln!(
        out,
        "  holds: {max_nodes}; up to {} pods on a node ({})",
        count(s.pods_per_node.value),
        s.pods_per_node.limited_by
    );

    out.push_str("\nStart-up on Kubernetes 1.16-1.37\n");
    if s.versions.outcomes.is_empty() {
        out.push_str("  every component starts on every release\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .versions
            .outcomes
            .iter()
            .map(|o| {
                vec![
                    if o.applies {
                        "*".to_string()
                    } else {
                        String::new()
                    },
                    o.component.clone(),
                    match o.severity {
                        Severity::Error => "error".to_string(),
                        Severity::Warning => "warning".to_string(),
                    },
                    o.versions.to_string(),
                    o.message.clone(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                ("", L),
                ("component", L),
                ("level", L),
                ("releases", L),
                ("message", L),
            ],
            &rows,
        );
        if s.versions.outcomes.iter().any(|o| o.applies) {
            let _ = writeln!(out, "  (* applies to {})", report.kubernetes_version);
        } else {
            let _ = writeln!(
                out,
                "  (none of these applies to {})",
                report.kubernetes_version
            );
        }
    }
    if s.versions.service_ips.len() > s.families.len() {
        out.push_str("\nService IPs by release\n");
        let rows: Vec<Vec<String>> = s
            .versions
            .service_ips
            .iter()
            .map(|v| {
                vec![
                    v.family.to_string(),
                    v.allocator.clone(),
                    count(v.total),
                    count(v.static_band),
                    v.versions.to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                ("family", L),
                ("allocator", L),
                ("total", R),
                ("static", R),
                ("releases", L),
            ],
            &rows,
        );
    }

    if !s.findings.is_empty() {
        out.push_str("\nFindings\n");
        for f in &s.findings {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let _ = writeln!(out, "  {sev}: {}", f.message);
        }
    }

    if let Some(sw) = &report.sweep {
        render_sweep(&mut out, sw);
    }
    if let Some(g) = &report.growth {
        render_growth(&mut out, g);
    }
    out
}

fn limits_table(out: &mut String, limits: &[Limit]) {
    let rows: Vec<Vec<String>> = limits
        .iter()
        .map(|l| {
            vec![
                l.key.clone(),
                l.description.clone(),
                count(l.capacity),
                count(l.demand),
                l.unit.to_string(),
                percent(l.utilization),
                if l.meets {
                    "ok".to_string()
                } else if l.hard {
                    "EXCEEDED".to_string()
                } else {
                    "exceeded (events only)".to_string()
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            ("limit", L),
            ("what", L),
            ("capacity", R),
            ("demand", R),
            ("unit", L),
            ("use", R),
            ("", L),
        ],
        &rows,
    );
}

fn render_sweep(out: &mut String, sw: &crate::SweepReport) {
    let t = &sw.target;
    let _ = writeln!(
        out,
        "\nSweep: {} configurations ({}), {} meet the target ({} nodes, {}, {} Services, {} dual-stack Services)",
        count(sw.evaluated as u128),
        sw.dimensions.join("; "),
        count(sw.passing as u128),
        count(u128::from(t.nodes)),
        t.pods_per_node
            .map_or("max-pods pods on each node".to_string(), |p| format!(
                "{p} pods per node"
            )),
        count(u128::from(t.services)),
        count(u128::from(t.dual_stack_services)),
    );
    let ranked = sw.ranked();
    if !ranked.is_empty() {
        let shown = ranked.len().min(sw.show);
        let _ = writeln!(
            out,
            "  smallest address use first ({shown} of {}):",
            count(ranked.len() as u128)
        );
        let cidr = |c: Option<ipnet::IpNet>, m: Option<u8>| match (c, m) {
            (Some(c), Some(m)) => format!("{c} /{m}"),
            (Some(c), None) => c.to_string(),
            _ => "-".to_string(),
        };
        let rows: Vec<Vec<String>> = ranked
            .iter()
            .take(sw.show)
            .map(|r| {
                vec![
                    r.rank.map(|x| x.to_string()).unwrap_or_default(),
                    cidr(r.ipv4_cluster_cidr, r.ipv4_node_mask),
                    cidr(r.ipv6_cluster_cidr, r.ipv6_node_mask),
                    cidr(r.ipv4_service_cidr, None),
                    cidr(r.ipv6_service_cidr, None),
                    r.max_pods.to_string(),
                    r.max_nodes.map(count).unwrap_or_else(|| "-".to_string()),
                    count(r.pods_per_node),
                ]
            })
            .collect();
        let headers = [
            ("rank", R),
            ("IPv4 cluster", L),
            ("IPv6 cluster", L),
            ("IPv4 services", L),
            ("IPv6 services", L),
            ("max-pods", R),
            ("max nodes", R),
            ("pods/node", R),
        ];
        // A family the cluster does not have is a column of dashes: leave it out.
        let keep: Vec<usize> = (0..headers.len())
            .filter(|&i| rows.iter().any(|r| r[i] != "-"))
            .collect();
        let headers: Vec<(&str, Align)> = keep.iter().map(|&i| headers[i]).collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
            .collect();
        table(out, &headers, &rows);
    }
    if !sw.failures.is_empty() {
        out.push_str("  why the others fail:\n");
        let rows: Vec<Vec<String>> = sw
            .failures
            .iter()
            .map(|f| vec![count(f.count as u128), f.failed.clone(), f.example.clone()])
            .collect();
        table(
            out,
            &[("count", R), ("failed", L), ("first example", L)],
            &rows,
        );
    }
}

fn render_growth(out: &mut String, g: &crate::GrowthReport) {
    let m = &g.model;
    let _ = writeln!(
        out,
        "\nGrowth: {} runs over {} days (seed {}): {} nodes on day 0, +{}/-{} per day, {} pods per node, {} of pods churned per day, {} Services on day 0, +{}/-{} per day{}",
        count(m.runs as u128),
        m.days,
        g.seed,
        count(u128::from(m.initial_nodes)),
        m.nodes_added_per_day,
        m.nodes_removed_per_day,
        m.pods_per_node,
        percent(m.pod_churn_per_day * 100.0),
        count(u128::from(m.initial_services)),
        m.services_added_per_day,
        m.services_removed_per_day,
        if m.dual_stack_services {
            ", dual-stack"
        } else {
            ""
        },
    );
    let rows: Vec<Vec<String>> = g
        .pools
        .iter()
        .zip(&g.headroom)
        .map(|(p, h)| {
            vec![
                p.pool.clone(),
                p.description.clone(),
                format!("{}/{}", p.runs_exhausted, m.runs),
                opt_day(p.p50),
                opt_day(p.p90),
                opt_day(p.p99),
                h.free_percent
                    .last()
                    .map(|f| percent(*f))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("pool", L),
            ("what", L),
            ("ran out", R),
            ("p50", R),
            ("p90", R),
            ("p99", R),
            ("free at the end", R),
        ],
        &rows,
    );
    out.push_str(
        "  (pN: the day by which N% of the runs had run out; never: not within the horizon)\n",
    );
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Which table [`render_csv_table`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvTable {
    /// The scenario's own configuration, long form: `section,family,metric,value`.
    Single,
    /// One row per sweep configuration, in input order.
    Sweep,
    /// One row per pool of the growth model.
    Growth,
}

/// The most detailed table of the report (see the module docs).
pub fn render_csv(report: &PlanReport) -> String {
    let table = if report.sweep.is_some() {
        CsvTable::Sweep
    } else if report.growth.is_some() {
        CsvTable::Growth
    } else {
        CsvTable::Single
    };
    render_csv_table(report, table)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(out: &mut String, cells: &[String]) {
    let v: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&v.join(","));
    out.push('\n');
}

/// One table of the report; an absent section gives just the header.
pub fn render_csv_table(report: &PlanReport, which: CsvTable) -> String {
    let mut out = String::new();
    let opt = |v: Option<String>| v.unwrap_or_default();
    match which {
        CsvTable::Single => {
            csv_line(
                &mut out,
                &[
                    "section".into(),
                    "family".into(),
                    "metric".into(),
                    "value".into(),
                ],
            );
            let s = &report.single;
            let mut row = |sec: &str, fam: &str, metric: &str, value: String| {
                csv_line(&mut out, &[sec.into(), fam.into(), metric.into(), value]);
            };
            row(
                "config",
                "",
                "kubernetesVersion",
                report.kubernetes_version.to_string(),
            );
            row("config", "", "cni", s.cni.to_string());
            row("config", "", "maxPods", s.max_pods.to_string());
            for f in &s.families {
                let fam = f.family.to_string();
                if let Some(b) = &f.node_blocks {
                    row(
                        "nodeBlocks",
                        &fam,
                        "clusterCidr",
                        b.cluster_cidr.to_string(),
                    );
                    row("nodeBlocks", &fam, "nodeMask", b.node_mask.to_string());
                    row("nodeBlocks", &fam, "total", b.total.to_string());
                    row("nodeBlocks", &fam, "reserved", b.reserved.to_string());
                    row("nodeBlocks", &fam, "used", b.used.to_string());
                    row("nodeBlocks", &fam, "free", b.free.to_string());
                    row("nodeBlocks", &fam, "maxNodes", b.max_nodes.to_string());
                }
                if let Some(p) = &f.pod_ips {
                    row("podIps", &fam, "plugin", p.plugin.to_string());
                    row("podIps", &fam, "perNode", p.per_node.to_string());
                    if let Some(m) = p.gke_node_mask {
                        row("podIps", &fam, "gkeNodeMask", m.to_string());
                    }
                }
                if let Some(c) = &f.calico {
                    row("calico", &fam, "blockSize", c.block_size.to_string());
                    row("calico", &fam, "blocks", c.blocks.to_string());
                    row("calico", &fam, "addresses", c.addresses.to_string());
                    row(
                        "calico",
                        &fam,
                        "blocksPerNode",
                        c.blocks_per_node.to_string(),
                    );
                    row(
                        "calico",
                        &fam,
                        "maxBlocksPerHost",
                        c.max_blocks_per_host.to_string(),
                    );
                    row("calico", &fam, "perNode", c.per_node.to_string());
                    row(
                        "calico",
                        &fam,
                        "strictAffinity",
                        c.strict_affinity.to_string(),
                    );
                }
                if let Some(v) = &f.service_ips {
                    row("serviceIps", &fam, "cidr", v.cidr.to_string());
                    row("serviceIps", &fam, "allocator", v.allocator.to_string());
                    row("serviceIps", &fam, "total", v.total.to_string());
                    row("serviceIps", &fam, "staticBand", v.static_band.to_string());
                    row(
                        "serviceIps",
                        &fam,
                        "dynamicBand",
                        v.dynamic_band.to_string(),
                    );
                    row("serviceIps", &fam, "available", v.available.to_string());
                }
            }
            for l in &s.limits {
                row(
                    "limit",
                    "",
                    &format!("{}.capacity", l.key),
                    l.capacity.to_string(),
                );
                row(
                    "limit",
                    "",
                    &format!("{}.demand", l.key),
                    l.demand.to_string(),
                );
            }
            row("summary", "", "meetsTarget", s.meets_target.to_string());
            row("summary", "", "binding", opt(s.binding.clone()));
            row(
                "summary",
                "",
                "maxNodes",
                opt(s.max_nodes.as_ref().map(|b| b.value.to_string())),
            );
            row(
                "summary",
                "",
                "podsPerNode",
                s.pods_per_node.value.to_string(),
            );
        }
        CsvTable::Sweep => {
            let header = [
                "index",
                "rank",
                "meetsTarget",
                "ipv4ClusterCidr",
                "ipv4NodeMask",
                "ipv6ClusterCidr",
                "ipv6NodeMask",
                "ipv4ServiceCidr",
                "ipv6ServiceCidr",
                "maxPods",
                "maxNodes",
                "podsPerNode",
                "ipv4ServiceIps",
                "ipv6ServiceIps",
                "ipv4Addresses",
                "ipv6Addresses",
                "failed",
                "reason",
            ];
            csv_line(&mut out, &header.map(String::from));
            for r in report.sweep.iter().flat_map(|s| &s.rows) {
                csv_line(
                    &mut out,
                    &[
                        r.index.to_string(),
                        opt(r.rank.map(|x| x.to_string())),
                        r.meets_target.to_string(),
                        opt(r.ipv4_cluster_cidr.map(|x| x.to_string())),
                        opt(r.ipv4_node_mask.map(|x| x.to_string())),
                        opt(r.ipv6_cluster_cidr.map(|x| x.to_string())),
                        opt(r.ipv6_node_mask.map(|x| x.to_string())),
                        opt(r.ipv4_service_cidr.map(|x| x.to_string())),
                        opt(r.ipv6_service_cidr.map(|x| x.to_string())),
                        r.max_pods.to_string(),
                        opt(r.max_nodes.map(|x| x.to_string())),
                        r.pods_per_node.to_string(),
                        opt(r.ipv4_service_ips.map(|x| x.to_string())),
                        opt(r.ipv6_service_ips.map(|x| x.to_string())),
                        r.ipv4_addresses.to_string(),
                        r.ipv6_addresses.to_string(),
                        opt(r.failed.clone()),
                        opt(r.reason.clone()),
                    ],
                );
            }
        }
        CsvTable::Growth => {
            let header = [
                "pool",
                "description",
                "runs",
                "runsExhausted",
                "p50Day",
                "p90Day",
                "p99Day",
                "freePercentAtEnd",
            ];
            csv_line(&mut out, &header.map(String::from));
            if let Some(g) = &report.growth {
                for (p, h) in g.pools.iter().zip(&g.headroom) {
                    csv_line(
                        &mut out,
                        &[
                            p.pool.clone(),
                            p.description.clone(),
                            g.model.runs.to_string(),
                            p.runs_exhausted.to_string(),
                            opt(p.p50.map(|d| d.to_string())),
                            opt(p.p90.map(|d| d.to_string())),
                            opt(p.p99.map(|d| d.to_string())),
                            opt(h.free_percent.last().map(|f| format!("{f:.1}"))),
                        ],
                    );
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SVG

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;
/// Series colours (the Okabe–Ito palette, readable with colour blindness).
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// The chart (see the module docs).
pub fn render_svg(report: &PlanReport) -> String {
    match &report.growth {
        Some(g) => {
            // A node's podCIDR headroom does not change over time; it is in the table.
            let series = g
                .headroom
                .iter()
                .filter(|h| !h.pool.starts_with("podCidr/"))
                .map(|h| Series {
                    name: h.pool.clone(),
                    points: h
                        .free_percent
                        .iter()
                        .enumerate()
                        .map(|(d, p)| (d as f64, *p))
                        .collect(),
                })
                .collect();
            chart(
                &format!(
                    "{}: headroom over time (median of {} runs)",
                    report.name, g.model.runs
                ),
                "day",
                f64::from(g.model.days),
                series,
                None,
            )
        }
        None => {
            let s = &report.single;
            let ppn = u128::from(s.target.pods_per_node);
            let calico = matches!(s.cni, "calico");
            let mut series = Vec::new();
            let mut x_max: f64 = 0.0;
            for f in &s.families {
                if let (Some(b), false) = (&f.node_blocks, calico)
                    && b.total > 0
                {
                    series.push(linear(
                        format!("nodeBlocks/{}", f.family),
                        b.total,
                        b.reserved,
                        1,
                        b.max_nodes,
                    ));
                    x_max = x_max.max(b.max_nodes as f64);
                }
                if let Some(c) = &f.calico {
                    if c.addresses > 0 && ppn > 0 {
                        let n = c.addresses / ppn;
                        series.push(linear(
                            format!("calicoAddresses/{}", f.family),
                            c.addresses,
                            0,
                            ppn,
                            n,
                        ));
                        x_max = x_max.max(n as f64);
                    }
                    if c.strict_affinity && c.blocks > 0 && c.blocks_per_node > 0 {
                        let n = c.blocks / c.blocks_per_node;
                        series.push(linear(
                            format!("calicoBlocks/{}", f.family),
                            c.blocks,
                            0,
                            c.blocks_per_node,
                            n,
                        ));
                        x_max = x_max.max(n as f64);
                    }
                }
            }
            let target = s.target.nodes as f64;
            let x_max = x_max.max(target).max(1.0) * 1.05;
            chart(
                &format!(
                    "{}: headroom against cluster size ({} pods per node)",
                    report.name, s.target.pods_per_node
                ),
                "nodes",
                x_max,
                series,
                (s.target.nodes > 0).then_some(target),
            )
        }
    }
}

/// Headroom of a pool of `total` with `reserved` taken, `per` used by each node, up to `n`
/// nodes and flat at 0 after.
fn linear(name: String, total: u128, reserved: u128, per: u128, n: u128) -> Series {
    let t = total as f64;
    let start = (total - reserved) as f64 / t * 100.0;
    let end = (total.saturating_sub(reserved + per * n)) as f64 / t * 100.0;
    Series {
        name,
        points: vec![(0.0, start), (n as f64, end), (f64::MAX, end)],
    }
}

/// A round step giving about five intervals over `range` (1, 2 or 5 times a power of ten).
fn nice_step(range: f64) -> f64 {
    if range <= 0.0 {
        return 1.0;
    }
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    (m * mag).max(1.0)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn tick_label(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn chart(
    title: &str,
    x_label: &str,
    x_max: f64,
    series: Vec<Series>,
    marker: Option<f64>,
) -> String {
    let pw = WIDTH - LEFT - RIGHT;
    let ph = HEIGHT - TOP - BOTTOM;
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let sx = |x: f64| LEFT + x.min(x_max) / x_max * pw;
    let sy = |y: f64| TOP + (100.0 - y.clamp(0.0, 100.0)) / 100.0 * ph;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        o,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="24" font-size="14">{}</text>"#,
        esc(title)
    );
    // Grid and axes.
    for i in 0..=5 {
        let y = f64::from(i) * 20.0;
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#dddddd"/>"##,
            sy(y),
            LEFT + pw,
            sy(y)
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{y:.0}%</text>"#,
            LEFT - 6.0,
            sy(y) + 4.0
        );
    }
    let step = nice_step(x_max);
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = writeln!(
            o,
            r##"<line x1="{:.1}" y1="{TOP}" x2="{:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
            sx(x),
            sx(x),
            TOP + ph
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            sx(x),
            TOP + ph + 18.0,
            tick_label(x)
        );
        x += step;
    }
    let _ = writeln!(
        o,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        HEIGHT - 16.0,
        esc(x_label)
    );
    let _ = writeln!(
        o,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">free (%)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    if let Some(m) = marker {
        let _ = writeln!(
            o,
            r##"<line x1="{:.1}" y1="{TOP}" x2="{:.1}" y2="{:.1}" stroke="#555555" stroke-dasharray="4 3"/>"##,
            sx(m),
            sx(m),
            TOP + ph
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">target</text>"#,
            sx(m),
            TOP - 6.0
        );
    }
    if series.is_empty() {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no pool limits the node count</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            o,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        let ly = TOP + 10.0 + i as f64 * 18.0;
        let lx = LEFT + pw + 16.0;
        let _ = writeln!(
            o,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/>"#,
            lx + 20.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 26.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_people_write_them() {
        let cases: &[(u128, &str)] = &[
            (0, "0"),
            (254, "254"),
            (65536, "65,536"),
            (1_048_574, "1,048,574"),
            ((1 << 64) - 2, "2^64-2"),
            (1 << 64, "2^64"),
            ((1 << 80) + 3, "2^80+3"),
            ((1 << 80) + (1 << 70), "~2^80"),
            (u128::MAX, "2^128-1"),
        ];
        for (n, want) in cases {
            assert_eq!(count(*n), *want, "{n}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(field("a"), "a");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn tick_steps_are_round() {
        let cases: &[(f64, f64)] = &[
            (100.0, 20.0),
            (365.0, 100.0),
            (5250.0, 2000.0),
            (4.0, 1.0),
            (68_000.0, 20_000.0),
        ];
        for (range, step) in cases {
            assert_eq!(nice_step(*range), *step, "{range}");
        }
    }
}
