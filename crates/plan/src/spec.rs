//! The `plan:` section of a scenario: the target, the growth and churn model, the sweep, and
//! the underlay networks to check for overlaps.
//!
//! Every key is optional. The shape, with each default:
//!
//! ```yaml
//! plan:
//!   target:                  # what the cluster must hold
//!     nodes: 5000            # default: the number of the scenario's `nodes:`
//!     podsPerNode: 30        # default: the kubelet's max-pods (110 unless set)
//!     services: 10000        # single-stack Services (a ClusterIP in the primary family); default 0
//!     dualStackServices: 0   # Services with a ClusterIP in every family; default 0
//!   nodeNetworks:            # the underlay: subnets node addresses come from. Default: the
//!     - 172.16.0.0/16        #   scenario's node IPs, and kind's docker networks (172.18.0.0/16,
//!     - fd00:172:16::/64     #   fc00:f853:ccd:e793::/64) if a node has none, as `run` gives them
//!   growth:                  # a workload over time, replayed day by day (see `growth`)
//!     days: 365              # the horizon; default 365
//!     runs: 100              # Monte Carlo runs; default 100
//!     initialNodes: 1000     # nodes on day 0; default: the number of the scenario's `nodes:`
//!     nodesAddedPerDay: 15   # mean of a Poisson draw per day; default 0
//!     nodesRemovedPerDay: 3  # mean of a Poisson draw per day (random nodes leave); default 0
//!     podsPerNode: 30        # pods each node runs; default: target.podsPerNode, else max-pods
//!     podChurnPerDay: 0.1    # fraction of the running pods deleted and recreated on a random
//!                            #   node each day; default 0
//!     initialServices: 100   # Services on day 0, besides `kubernetes`; default: the number
//!                            #   of Services in the scenario's `manifests:`
//!     servicesAddedPerDay: 20    # mean of a Poisson draw per day; default 0
//!     servicesRemovedPerDay: 5   # mean of a Poisson draw per day; default 0
//!     dualStackServices: false   # whether the Services take a ClusterIP in every family;
//!                                #   default false (the API server's SingleStack default)
//!   sweep:                   # choices to evaluate, as a cartesian product (see `sweep`)
//!     ipv4ClusterPrefix: [8, 20]     # an inclusive range [from, to], or one value
//!     ipv4NodeMask: [22, 26]
//!     ipv6ClusterPrefix: [48, 64]
//!     ipv6NodeMask: [64, 120]
//!     ipv4ServicePrefix: [12, 24]
//!     ipv6ServicePrefix: [108, 120]
//!     maxPods: [32, 64, 110]         # a list of values, or one value
//!     show: 20               # passing configurations listed in the table; default 20
//! ```
//!
//! Reading reports every problem at once (unknown keys with a did-you-mean, wrong types, empty
//! or inverted ranges, prefixes longer than the address), each at the value that is wrong.
//! Whether a swept family exists in the cluster is checked later, against the configuration.

use std::ops::RangeInclusive;

use ipnet::IpNet;
use knetsim_model::yaml::{
    Diags, MapReader, Node, Resolved, expect_bool, expect_cidr, expect_map, expect_seq, expect_u64,
    mismatch,
};
use knetsim_model::{Diagnostic, Span, Spanned};

/// The `plan:` section, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanSpec {
    pub target: Option<TargetSpec>,
    pub node_networks: Vec<Spanned<IpNet>>,
    pub growth: Option<GrowthSpec>,
    pub sweep: Option<SweepSpec>,
}

/// `plan.target`. Unset fields take their defaults when the plan is made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSpec {
    pub nodes: Option<u64>,
    pub pods_per_node: Option<u32>,
    pub services: Option<u64>,
    pub dual_stack_services: Option<u64>,
}

/// `plan.growth`. Unset fields take their defaults when the plan is made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GrowthSpec {
    pub days: Option<u32>,
    pub runs: Option<usize>,
    pub initial_nodes: Option<u64>,
    pub nodes_added_per_day: Option<f64>,
    pub nodes_removed_per_day: Option<f64>,
    pub pods_per_node: Option<u32>,
    pub pod_churn_per_day: Option<f64>,
    pub initial_services: Option<u64>,
    pub services_added_per_day: Option<f64>,
    pub services_removed_per_day: Option<f64>,
    pub dual_stack_services: Option<bool>,
    pub span: Span,
}

/// `plan.sweep`: one optional dimension per choice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepSpec {
    pub ipv4_cluster_prefix: Option<Spanned<RangeInclusive<u8>>>,
    pub ipv4_node_mask: Option<Spanned<RangeInclusive<u8>>>,
    pub ipv6_cluster_prefix: Option<Spanned<RangeInclusive<u8>>>,
    pub ipv6_node_mask: Option<Spanned<RangeInclusive<u8>>>,
    pub ipv4_service_prefix: Option<Spanned<RangeInclusive<u8>>>,
    pub ipv6_service_prefix: Option<Spanned<RangeInclusive<u8>>>,
    pub max_pods: Option<Spanned<Vec<u32>>>,
    pub show: Option<usize>,
    pub span: Span,
}

/// Upper bounds that keep a mistyped number from asking for years of simulation.
const MAX_DAYS: u64 = 36_500;
const MAX_RUNS: u64 = 100_000;
/// The kubelet validates `--max-pods` as an int32; a node cannot run more pods than that.
const MAX_PODS: u64 = i32::MAX as u64;

/// Reads the `plan:` node. `None` (no section) gives the empty spec.
pub fn read(node: Option<&Node>) -> Result<PlanSpec, Vec<Diagnostic>> {
    let mut d: Diags = Vec::new();
    let spec = match node {
        None => PlanSpec::default(),
        Some(n) => read_plan(n, &mut d),
    };
    if d.iter().any(Diagnostic::is_error) {
        Err(d)
    } else {
        Ok(spec)
    }
}

fn read_plan(node: &Node, d: &mut Diags) -> PlanSpec {
    let mut out = PlanSpec::default();
    let Some(mut r) = expect_map(node, "plan", d) else {
        return out;
    };
    if let Some(mut t) = r.map("target", d) {
        out.target = Some(TargetSpec {
            nodes: t.u64("nodes", d).map(|v| v.value),
            pods_per_node: max_pods_value(&mut t, "podsPerNode", d),
            services: t.u64("services", d).map(|v| v.value),
            dual_stack_services: t.u64("dualStackServices", d).map(|v| v.value),
        });
        t.finish(d);
    }
    if let Some(items) = r.seq("nodeNetworks", d) {
        out.node_networks = items
            .iter()
            .filter_map(|n| expect_cidr(n, "nodeNetworks", d))
            .collect();
    }
    if let Some(g) = r.map("growth", d) {
        out.growth = Some(read_growth(g, d));
    }
    if let Some(s) = r.map("sweep", d) {
        out.sweep = Some(read_sweep(s, d));
    }
    r.finish(d);
    out
}

fn read_growth(mut g: MapReader<'_>, d: &mut Diags) -> GrowthSpec {
    let span = g.span();
    let out = GrowthSpec {
        days: bounded(&mut g, "days", 1, MAX_DAYS, d).map(|v| v as u32),
        runs: bounded(&mut g, "runs", 1, MAX_RUNS, d).map(|v| v as usize),
        initial_nodes: g.u64("initialNodes", d).map(|v| v.value),
        nodes_added_per_day: rate(&mut g, "nodesAddedPerDay", None, d),
        nodes_removed_per_day: rate(&mut g, "nodesRemovedPerDay", None, d),
        pods_per_node: max_pods_value(&mut g, "podsPerNode", d),
        pod_churn_per_day: rate(&mut g, "podChurnPerDay", Some(1.0), d),
        initial_services: g.u64("initialServices", d).map(|v| v.value),
        services_added_per_day: rate(&mut g, "servicesAddedPerDay", None, d),
        services_removed_per_day: rate(&mut g, "servicesRemovedPerDay", None, d),
        dual_stack_services: g
            .value("dualStackServices")
            .and_then(|n| expect_bool(n, "dualStackServices", d))
            .map(|v| v.value),
        span,
    };
    g.finish(d);
    out
}

fn read_sweep(mut s: MapReader<'_>, d: &mut Diags) -> SweepSpec {
    let span = s.span();
    let out = SweepSpec {
        ipv4_cluster_prefix: prefix_range(&mut s, "ipv4ClusterPrefix", 32, d),
        ipv4_node_mask: prefix_range(&mut s, "ipv4NodeMask", 32, d),
        ipv6_cluster_prefix: prefix_range(&mut s, "ipv6ClusterPrefix", 128, d),
        ipv6_node_mask: prefix_range(&mut s, "ipv6NodeMask", 128, d),
        ipv4_service_prefix: prefix_range(&mut s, "ipv4ServicePrefix", 32, d),
        ipv6_service_prefix: prefix_range(&mut s, "ipv6ServicePrefix", 128, d),
        max_pods: max_pods_list(&mut s, d),
        show: s.u64("show", d).map(|v| v.value as usize),
        span,
    };
    s.finish(d);
    out
}

/// An integer in `[lo, hi]`.
fn bounded(
    r: &mut MapReader<'_>,
    key: &'static str,
    lo: u64,
    hi: u64,
    d: &mut Diags,
) -> Option<u64> {
    let v = r.u64(key, d)?;
    if v.value < lo || v.value > hi {
        d.push(
            Diagnostic::error(v.span, format!("`{key}` must be from {lo} to {hi}"))
                .with_label(format!("{} is out of range", v.value)),
        );
        return None;
    }
    Some(v.value)
}

/// A pods-per-node count: at least 1, at most what `--max-pods` can say.
fn max_pods_value(r: &mut MapReader<'_>, key: &'static str, d: &mut Diags) -> Option<u32> {
    bounded(r, key, 1, MAX_PODS, d).map(|v| v as u32)
}

/// A non-negative number (integer or decimal), at most `max` when given.
fn rate(r: &mut MapReader<'_>, key: &'static str, max: Option<f64>, d: &mut Diags) -> Option<f64> {
    let n = r.value(key)?;
    let v = match n.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Int(i)) => i as f64,
        Some(Resolved::Float(f)) => f,
        _ => {
            d.push(mismatch(n, "a number", key));
            return None;
        }
    };
    let too_big = max.is_some_and(|m| v > m);
    if !v.is_finite() || v < 0.0 || too_big {
        let expected = match max {
            Some(m) => format!("a number from 0 to {m}"),
            None => "a number of 0 or more".to_string(),
        };
        d.push(
            Diagnostic::error(n.span, format!("`{key}` must be {expected}"))
                .with_label(format!("{} is out of range", n.scalar_text().unwrap_or(""))),
        );
        return None;
    }
    Some(v)
}

/// A prefix-length dimension: `N` or `[from, to]`, each at most `bits`.
fn prefix_range(
    r: &mut MapReader<'_>,
    key: &'static str,
    bits: u8,
    d: &mut Diags,
) -> Option<Spanned<RangeInclusive<u8>>> {
    let node = r.value(key)?;
    let prefix = |n: &Node, d: &mut Diags| -> Option<u8> {
        let v = expect_u64(n, key, d)?;
        if v.value > u64::from(bits) {
            d.push(
                Diagnostic::error(
                    n.span,
                    format!("`{key}` must be a prefix length from 0 to {bits}"),
                )
                .with_label(format!("{} is longer than a {bits}-bit address", v.value)),
            );
            return None;
        }
        Some(v.value as u8)
    };
    let range = match node.as_seq() {
        None if node.as_map().is_some() => {
            d.push(mismatch(node, "a prefix length or a [from, to] range", key));
            return None;
        }
        None => {
            let p = prefix(node, d)?;
            p..=p
        }
        Some([from, to]) => {
            let (a, b) = (prefix(from, d), prefix(to, d));
            let (a, b) = (a?, b?);
            if a > b {
                d.push(
                    Diagnostic::error(node.span, format!("`{key}` is an empty range"))
                        .with_label(format!("{a} is greater than {b}"))
                        .with_help(format!("write [{b}, {a}]")),
                );
                return None;
            }
            a..=b
        }
        Some(_) => {
            d.push(
                Diagnostic::error(
                    node.span,
                    format!("`{key}` takes one prefix length or a [from, to] range"),
                )
                .with_label("expected two values: from and to (inclusive)"),
            );
            return None;
        }
    };
    Some(Spanned::new(range, node.span))
}

/// `maxPods`: one value or a list of values, each at least 1.
fn max_pods_list(r: &mut MapReader<'_>, d: &mut Diags) -> Option<Spanned<Vec<u32>>> {
    const KEY: &str = "maxPods";
    let node = r.value(KEY)?;
    let one = |n: &Node, d: &mut Diags| -> Option<u32> {
        let v = expect_u64(n, KEY, d)?;
        if v.value == 0 || v.value > MAX_PODS {
            d.push(
                Diagnostic::error(
                    n.span,
                    format!("`{KEY}` values must be from 1 to {MAX_PODS}"),
                )
                .with_label(format!("{} is out of range", v.value)),
            );
            return None;
        }
        Some(v.value as u32)
    };
    let values = if node.as_seq().is_some() {
        let items = expect_seq(node, KEY, d)?;
        if items.is_empty() {
            d.push(
                Diagnostic::error(node.span, "`maxPods` is an empty list")
                    .with_label("expected at least one value"),
            );
            return None;
        }
        let vals: Vec<Option<u32>> = items.iter().map(|n| one(n, d)).collect();
        vals.into_iter().collect::<Option<Vec<u32>>>()?
    } else {
        vec![one(node, d)?]
    };
    Some(Spanned::new(values, node.span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use knetsim_model::FileId;
    use knetsim_model::yaml::parse_stream;

    fn read_text(text: &str) -> Result<PlanSpec, Vec<String>> {
        let (docs, diags) = parse_stream(FileId(0), text);
        assert!(diags.is_empty(), "{diags:?}");
        let plan = docs[0].get("plan");
        read(plan).map_err(|ds| ds.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn reads_every_key() {
        let spec = read_text(
            "plan:\n  target: {nodes: 5000, podsPerNode: 30, services: 100, dualStackServices: 2}\n  nodeNetworks: [172.16.0.0/16]\n  growth: {days: 30, runs: 7, initialNodes: 10, nodesAddedPerDay: 1.5, nodesRemovedPerDay: 0, podsPerNode: 20, podChurnPerDay: 0.25, initialServices: 3, servicesAddedPerDay: 2, servicesRemovedPerDay: 1, dualStackServices: true}\n  sweep: {ipv4ClusterPrefix: [8, 20], ipv4NodeMask: 24, ipv6NodeMask: [64, 120], maxPods: [32, 110], show: 5}\n",
        )
        .unwrap();
        assert_eq!(
            spec.target,
            Some(TargetSpec {
                nodes: Some(5000),
                pods_per_node: Some(30),
                services: Some(100),
                dual_stack_services: Some(2)
            })
        );
        assert_eq!(
            spec.node_networks[0].value,
            "172.16.0.0/16".parse::<IpNet>().unwrap()
        );
        let g = spec.growth.unwrap();
        assert_eq!(
            (g.days, g.runs, g.initial_nodes),
            (Some(30), Some(7), Some(10))
        );
        assert_eq!(
            (g.nodes_added_per_day, g.pod_churn_per_day),
            (Some(1.5), Some(0.25))
        );
        assert_eq!(g.dual_stack_services, Some(true));
        let s = spec.sweep.unwrap();
        assert_eq!(s.ipv4_cluster_prefix.unwrap().value, 8..=20);
        assert_eq!(s.ipv4_node_mask.unwrap().value, 24..=24);
        assert_eq!(s.ipv6_node_mask.unwrap().value, 64..=120);
        assert_eq!(s.max_pods.unwrap().value, vec![32, 110]);
        assert_eq!(s.show, Some(5));
    }

    #[test]
    fn reports_every_problem_at_once() {
        let cases: &[(&str, &[&str])] = &[
            ("plan:\n  targte: {}\n", &["unknown key `targte`"]),
            (
                "plan:\n  sweep: {ipv4NodeMask: [26, 22]}\n",
                &["`ipv4NodeMask` is an empty range"],
            ),
            (
                "plan:\n  sweep: {ipv4NodeMask: [22, 33]}\n",
                &["`ipv4NodeMask` must be a prefix length from 0 to 32"],
            ),
            (
                "plan:\n  sweep: {ipv6NodeMask: [64, 96, 120]}\n",
                &["`ipv6NodeMask` takes one prefix length or a [from, to] range"],
            ),
            (
                "plan:\n  sweep: {maxPods: [0, 110]}\n",
                &["`maxPods` values must be from 1 to 2147483647"],
            ),
            (
                "plan:\n  growth: {days: 0, podChurnPerDay: 2, nodesAddedPerDay: -1}\n",
                &[
                    "`days` must be from 1 to 36500",
                    "`nodesAddedPerDay` must be a number of 0 or more",
                    "`podChurnPerDay` must be a number from 0 to 1",
                ],
            ),
            (
                "plan:\n  target: {nodes: many}\n",
                &["expected an integer for `nodes`, found a string `many`"],
            ),
            ("plan: [1]\n", &["expected a map for `plan`, found a list"]),
        ];
        for (text, want) in cases {
            let got = read_text(text).unwrap_err();
            assert_eq!(&got, want, "{text}");
        }
    }

    #[test]
    fn no_section_is_the_empty_spec() {
        assert_eq!(read(None).unwrap(), PlanSpec::default());
    }
}
