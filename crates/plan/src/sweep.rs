//! Sweeps: many choices of prefix lengths and max-pods, each evaluated as its own
//! configuration, ranked.
//!
//! The configurations are the cartesian product of the swept dimensions, nested in this order
//! (the last varies fastest): `ipv4ClusterPrefix`, `ipv4NodeMask`, `ipv6ClusterPrefix`,
//! `ipv6NodeMask`, `ipv4ServicePrefix`, `ipv6ServicePrefix`, `maxPods`. A dimension not swept
//! keeps the scenario's value. A new prefix keeps the address of the scenario's range, masked
//! (sweeping 10.244.0.0/16 to /12 gives 10.240.0.0/12).
//!
//! Each configuration is written into the scenario's flags ([`edit_cluster`]) and derived like
//! the scenario itself ([`PlanConfig::derive`]: `components::configure`, then the node IPAM), so
//! a choice that stops a component from starting fails with the component's own message. The
//! rest is the closed-form capacity of [`crate::capacity`] — no allocator is filled — which is
//! what makes tens of thousands of configurations cheap. They are evaluated in parallel with
//! rayon and collected in input order, so the output does not depend on the thread count.
//!
//! Configurations that meet the target are ranked by the address space they use (IPv4 cluster
//! CIDR plus Service range first, then IPv6), smallest first, ties in input order. The others
//! carry the first reason they fail: a component that does not start, else the first limit (in
//! [`capacity::limits`] order) whose demand exceeds its capacity.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_ipam::family::net_size;
use knetsim_model::{Diagnostic, KubeVersion};
use rayon::prelude::*;
use serde::Serialize;

use crate::capacity::{self, Target};
use crate::config::{Bases, Choices, PlanConfig, Severity, edit_cluster, reprefix};
use crate::render::count;
use crate::spec::SweepSpec;

/// The most configurations one sweep may ask for.
pub const MAX_CONFIGS: usize = 1_000_000;
/// Passing configurations the table lists unless `show:` says otherwise.
pub const DEFAULT_SHOW: usize = 20;

/// What every configuration of a sweep must hold. `pods_per_node: None` means each
/// configuration's own max-pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepTarget {
    pub nodes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_per_node: Option<u32>,
    pub services: u64,
    pub dual_stack_services: u64,
}

/// One configuration and how it fares.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepRow {
    /// Position in the product, from 0.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_cluster_cidr: Option<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_node_mask: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_cluster_cidr: Option<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_node_mask: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_service_cidr: Option<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_service_cidr: Option<IpNet>,
    pub max_pods: u32,
    pub meets_target: bool,
    /// 1 for the smallest configuration that meets the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Why it fails: the component or limit key, and the sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u128>,
    pub pods_per_node: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_service_ips: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_service_ips: Option<u128>,
    /// Addresses the choice takes: cluster CIDR plus Service range, per family.
    pub ipv4_addresses: u128,
    pub ipv6_addresses: u128,
}

/// How many configurations failed for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureGroup {
    pub failed: String,
    pub count: usize,
    /// The reason of the first configuration (in input order) that failed this way.
    pub example: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub kubernetes_version: KubeVersion,
    pub target: SweepTarget,
    /// The swept dimensions, as written (`ipv4NodeMask: 22-26`).
    pub dimensions: Vec<String>,
    pub evaluated: usize,
    pub passing: usize,
    /// Passing configurations the table lists.
    pub show: usize,
    /// Every configuration, in input order.
    pub rows: Vec<SweepRow>,
    /// Failures grouped by what failed, most frequent first.
    pub failures: Vec<FailureGroup>,
}

impl SweepReport {
    /// Passing rows, best first.
    pub fn ranked(&self) -> Vec<&SweepRow> {
        let mut v: Vec<&SweepRow> = self.rows.iter().filter(|r| r.rank.is_some()).collect();
        v.sort_by_key(|r| r.rank);
        v
    }
}

/// One swept dimension's values and the key it was written under.
struct Dim {
    key: &'static str,
    values: Vec<u32>,
}

/// The configurations `spec` asks for, in input order; errors for a swept family the cluster
/// does not have, or a sweep too large to run.
pub fn expand(spec: &SweepSpec, bases: &Bases) -> Result<Vec<Choices>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut dims: Vec<Dim> = Vec::new();
    let prefix_dims = [
        (
            "ipv4ClusterPrefix",
            &spec.ipv4_cluster_prefix,
            Family::IPv4,
            bases.cluster.contains_key(&Family::IPv4),
            "cluster CIDR",
        ),
        (
            "ipv4NodeMask",
            &spec.ipv4_node_mask,
            Family::IPv4,
            bases.cluster.contains_key(&Family::IPv4),
            "cluster CIDR",
        ),
        (
            "ipv6ClusterPrefix",
            &spec.ipv6_cluster_prefix,
            Family::IPv6,
            bases.cluster.contains_key(&Family::IPv6),
            "cluster CIDR",
        ),
        (
            "ipv6NodeMask",
            &spec.ipv6_node_mask,
            Family::IPv6,
            bases.cluster.contains_key(&Family::IPv6),
            "cluster CIDR",
        ),
        (
            "ipv4ServicePrefix",
            &spec.ipv4_service_prefix,
            Family::IPv4,
            bases.service.contains_key(&Family::IPv4),
            "Service range",
        ),
        (
            "ipv6ServicePrefix",
            &spec.ipv6_service_prefix,
            Family::IPv6,
            bases.service.contains_key(&Family::IPv6),
            "Service range",
        ),
    ];
    for (key, range, family, present, what) in prefix_dims {
        let Some(r) = range else {
            continue;
        };
        if !present {
            diags.push(
                Diagnostic::error(
                    r.span,
                    format!("`{key}` sweeps the {family} {what}, but the cluster has none"),
                )
                .with_label(format!("no {family} {what} in the scenario's `cluster:`")),
            );
            continue;
        }
        dims.push(Dim {
            key,
            values: r.value.clone().map(u32::from).collect(),
        });
    }
    if let Some(m) = &spec.max_pods {
        dims.push(Dim {
            key: "maxPods",
            values: m.value.clone(),
        });
    }
    let total = dims
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(d.values.len()))
        .filter(|n| *n <= MAX_CONFIGS);
    let Some(total) = total else {
        diags.push(
            Diagnostic::error(
                spec.span,
                format!("the sweep asks for more than {MAX_CONFIGS} configurations"),
            )
            .with_label("the product of these ranges")
            .with_help("narrow a range, or sweep fewer dimensions at once"),
        );
        return Err(diags);
    };
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut out = Vec::with_capacity(total);
    for index in 0..total {
        // Mixed radix, last dimension fastest.
        let mut rest = index;
        let mut c = Choices::default();
        for d in dims.iter().rev() {
            let v = d.values[rest % d.values.len()];
            rest /= d.values.len();
            let p = v as u8;
            match d.key {
                "ipv4ClusterPrefix" => c.ipv4_cluster_prefix = Some(p),
                "ipv4NodeMask" => c.ipv4_node_mask = Some(p),
                "ipv6ClusterPrefix" => c.ipv6_cluster_prefix = Some(p),
                "ipv6NodeMask" => c.ipv6_node_mask = Some(p),
                "ipv4ServicePrefix" => c.ipv4_service_prefix = Some(p),
                "ipv6ServicePrefix" => c.ipv6_service_prefix = Some(p),
                _ => c.max_pods = Some(v),
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// The dimensions of `spec`, for the report.
pub fn describe(spec: &SweepSpec) -> Vec<String> {
    let mut out = Vec::new();
    let ranges = [
        ("ipv4ClusterPrefix", &spec.ipv4_cluster_prefix),
        ("ipv4NodeMask", &spec.ipv4_node_mask),
        ("ipv6ClusterPrefix", &spec.ipv6_cluster_prefix),
        ("ipv6NodeMask", &spec.ipv6_node_mask),
        ("ipv4ServicePrefix", &spec.ipv4_service_prefix),
        ("ipv6ServicePrefix", &spec.ipv6_service_prefix),
    ];
    for (key, r) in ranges {
        if let Some(r) = r {
            let (a, b) = (r.value.start(), r.value.end());
            out.push(if a == b {
                format!("{key}: {a}")
            } else {
                format!("{key}: {a}-{b}")
            });
        }
    }
    if let Some(m) = &spec.max_pods {
        let v: Vec<String> = m.value.iter().map(ToString::to_string).collect();
        out.push(format!("maxPods: {}", v.join(", ")));
    }
    out
}

/// Evaluates `configs` against `target`, in parallel, in input order, and ranks them.
/// `progress` is told `(configurations done, configurations)`.
pub fn sweep_configs(
    base: &PlanConfig,
    bases: &Bases,
    configs: &[Choices],
    target: &SweepTarget,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
) -> Vec<SweepRow> {
    let total = configs.len() as u64;
    let done = AtomicU64::new(0);
    // Reporting every configuration would make the callback the bottleneck; every 1/256th is
    // smooth enough for a bar.
    let step = (total / 256).max(1);
    let mut rows: Vec<SweepRow> = configs
        .par_iter()
        .enumerate()
        .map(|(index, c)| {
            let row = evaluate(base, bases, index, c, target);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress
                && (n.is_multiple_of(step) || n == total)
            {
                p(n, total);
            }
            row
        })
        .collect();
    rank(&mut rows);
    rows
}

/// Ranks the passing rows: least IPv4 address use, then least IPv6, then input order.
fn rank(rows: &mut [SweepRow]) {
    let mut passing: Vec<(u128, u128, usize)> = rows
        .iter()
        .filter(|r| r.meets_target)
        .map(|r| (r.ipv4_addresses, r.ipv6_addresses, r.index))
        .collect();
    passing.sort_unstable();
    for (rank, (_, _, index)) in passing.into_iter().enumerate() {
        rows[index].rank = Some(rank + 1);
    }
}

/// One configuration.
pub fn evaluate(
    base: &PlanConfig,
    bases: &Bases,
    index: usize,
    choices: &Choices,
    target: &SweepTarget,
) -> SweepRow {
    let cluster = edit_cluster(&base.cluster, bases, choices);
    let cfg = PlanConfig::derive(base.version, base.seed, &cluster);
    let ppn = target.pods_per_node.unwrap_or(cfg.max_pods);
    let figures = capacity::family_figures(&cfg, ppn);
    let t = Target {
        nodes: target.nodes,
        pods_per_node: ppn,
        services: target.services,
        dual_stack_services: target.dual_stack_services,
    };
    let limits = capacity::limits(&cfg, &figures, &t);

    let (failed, reason) = match cfg.outcomes.iter().find(|o| o.severity == Severity::Error) {
        Some(o) => (Some(o.component.clone()), Some(o.message.clone())),
        None => match limits.iter().find(|l| l.hard && !l.meets) {
            Some(l) => (
                Some(l.key.clone()),
                Some(format!(
                    "{}: {} {} < {} {}",
                    l.description,
                    count(l.capacity),
                    l.unit,
                    count(l.demand),
                    l.unit
                )),
            ),
            None => (None, None),
        },
    };

    let effective = |f: Family| -> (Option<IpNet>, Option<u8>, Option<IpNet>) {
        let cluster = bases
            .cluster
            .get(&f)
            .map(|b| match choices.cluster_prefix(f) {
                Some(p) => reprefix(b, p),
                None => *b,
            });
        let mask = choices
            .node_mask(f)
            .or_else(|| cfg.node_set(f).map(|(_, s)| s.node_mask))
            .or_else(|| base.node_set(f).map(|(_, s)| s.node_mask));
        let service = bases
            .service
            .get(&f)
            .map(|b| match choices.service_prefix(f) {
                Some(p) => reprefix(b, p),
                None => *b,
            });
        (cluster, mask, service)
    };
    let (c4, m4, s4) = effective(Family::IPv4);
    let (c6, m6, s6) = effective(Family::IPv6);
    let size = |n: Option<IpNet>| n.map_or(0, |n| net_size(&n));
    let service_ips = |f: Family| {
        figures
            .iter()
            .find(|x| x.family == f)
            .and_then(|x| x.service_ips.as_ref())
            .map(|s| s.available)
    };
    SweepRow {
        index,
        ipv4_cluster_cidr: c4,
        ipv4_node_mask: m4.filter(|_| c4.is_some()),
        ipv6_cluster_cidr: c6,
        ipv6_node_mask: m6.filter(|_| c6.is_some()),
        ipv4_service_cidr: s4,
        ipv6_service_cidr: s6,
        max_pods: cfg.max_pods,
        meets_target: failed.is_none(),
        rank: None,
        failed,
        reason,
        max_nodes: capacity::max_nodes(&cfg, &figures, ppn).map(|b| b.value),
        pods_per_node: capacity::pods_per_node(&cfg, &figures).value,
        ipv4_service_ips: service_ips(Family::IPv4),
        ipv6_service_ips: service_ips(Family::IPv6),
        ipv4_addresses: size(c4).saturating_add(size(s4)),
        ipv6_addresses: size(c6).saturating_add(size(s6)),
    }
}

/// Groups failures by what failed: most frequent first, then by key.
pub fn failure_groups(rows: &[SweepRow]) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<String, FailureGroup> = BTreeMap::new();
    for r in rows {
        let (Some(failed), Some(reason)) = (&r.failed, &r.reason) else {
            continue;
        };
        groups
            .entry(failed.clone())
            .and_modify(|g| g.count += 1)
            .or_insert_with(|| FailureGroup {
                failed: failed.clone(),
                count: 1,
                example: reason.clone(),
            });
    }
    let mut v: Vec<FailureGroup> = groups.into_values().collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.failed.cmp(&b.failed)));
    v
}

/// A whole sweep of `base` over `configs` (from [`expand`]): evaluate, rank, group.
pub fn report(
    base: &PlanConfig,
    spec: &SweepSpec,
    bases: &Bases,
    configs: &[Choices],
    target: SweepTarget,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
) -> SweepReport {
    let rows = sweep_configs(base, bases, configs, &target, progress);
    let passing = rows.iter().filter(|r| r.meets_target).count();
    SweepReport {
        kubernetes_version: base.version,
        target,
        dimensions: describe(spec),
        evaluated: rows.len(),
        passing,
        show: spec.show.unwrap_or(DEFAULT_SHOW),
        failures: failure_groups(&rows),
        rows,
    }
}
