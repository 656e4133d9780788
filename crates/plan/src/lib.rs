//! Capacity planning: how far a cluster's CIDR and mask choices stretch, per family and per
//! Kubernetes version, and under growth and churn.
//!
//! The planner uses the same code as `knetsim run`: the control plane's flag handling
//! (`knetsim_control::components::configure`) to decide what each component runs with on each
//! release, and the allocators of `knetsim_ipam` for every figure, so that what `plan` promises
//! is what `run` does.
//!
//! The module list below is a map of the code.
//!
//! - [`spec`]: the `plan:` section of a scenario (target, growth model, sweep, underlay), with
//!   its YAML shape and defaults documented, read into [`spec::PlanSpec`] with diagnostics.
//! - [`load`]: reading `knetsim plan FILE`'s file: a scenario, or a `cluster:` section alone.
//! - [`config`]: [`config::PlanConfig`], one configuration as the components would run it on one
//!   release, derived from a scenario's `cluster:`; and the flag edits sweeps make.
//! - [`capacity`]: per-family figures (node blocks, pod addresses per node, Calico blocks,
//!   Service IPs and their bands), the limits a target puts on them, and which binds first.
//! - [`versions`]: the same `cluster:` started on every release from 1.16 to 1.37, with each
//!   error and warning grouped by the releases that log it.
//! - [`single`]: the report for the scenario's own configuration, with overlaps between the
//!   cluster, Service, Calico and node (underlay) ranges.
//! - [`growth`]: the seeded Monte Carlo replay of a workload over days through the node IPAM's
//!   `RangeAllocator` and Calico's IPAM (host-local pods and Service IPs by count, which is
//!   those allocators' exact answer), with exhaustion-day percentiles per pool.
//! - [`sweep`]: ranges of choices evaluated in parallel (rayon), ranked by address use.
//! - [`render`]: the report as an aligned text table, CSV and an SVG chart (JSON is the
//!   report's `Serialize`).
//!
//! The crate does no I/O and reads no clock; randomness comes only from named, seeded streams.
//! Parallel work is collected in input order, so output does not depend on the thread count.
//! Progress is reported through a callback ([`PlanOptions::progress`]); drawing a bar is the
//! CLI's business.

pub mod capacity;
pub mod config;
pub mod growth;
pub mod load;
pub mod render;
pub mod single;
pub mod spec;
pub mod sweep;
pub mod versions;

use knetsim_model::objects::Object;
use knetsim_model::{Diagnostic, KubeVersion, Scenario};
use serde::Serialize;

pub use config::PlanConfig;
pub use growth::{GrowthModel, GrowthReport, growth_runs};
pub use load::load_input;
pub use render::{CsvTable, render_csv, render_csv_table, render_svg, render_table};
pub use single::SingleReport;
pub use sweep::{SweepReport, SweepTarget, sweep_configs};

/// Options a command line may set. Targets and counts given here take precedence over the
/// scenario's `plan:` section.
#[derive(Clone, Copy, Default)]
pub struct PlanOptions<'a> {
    /// Monte Carlo runs (`plan.growth.runs`).
    pub runs: Option<usize>,
    /// Growth horizon in days (`plan.growth.days`).
    pub days: Option<u32>,
    pub target_nodes: Option<u64>,
    pub target_pods_per_node: Option<u32>,
    pub target_services: Option<u64>,
    /// Skip the growth model even if the scenario has one.
    pub skip_growth: bool,
    /// Skip the sweep even if the scenario has one.
    pub skip_sweep: bool,
    /// Called with `(done, total)` as sweep configurations and growth runs finish, from worker
    /// threads; `total` counts both.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl std::fmt::Debug for PlanOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOptions")
            .field("runs", &self.runs)
            .field("days", &self.days)
            .field("target_nodes", &self.target_nodes)
            .field("target_pods_per_node", &self.target_pods_per_node)
            .field("target_services", &self.target_services)
            .field("skip_growth", &self.skip_growth)
            .field("skip_sweep", &self.skip_sweep)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Everything `knetsim plan` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    pub name: String,
    pub kubernetes_version: KubeVersion,
    pub seed: u64,
    pub single: SingleReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<GrowthReport>,
}

/// Plans `scenario`: its own configuration, then its sweep and growth model if it has them.
/// Errors are problems in the `plan:` section, all of them at once.
pub fn plan(scenario: &Scenario, opts: &PlanOptions<'_>) -> Result<PlanReport, Vec<Diagnostic>> {
    let spec = spec::read(scenario.plan.as_ref())?;
    let cfg = PlanConfig::from_scenario(scenario);
    let ts = spec.target.clone().unwrap_or_default();
    let target_given = spec.target.is_some()
        || opts.target_nodes.is_some()
        || opts.target_pods_per_node.is_some()
        || opts.target_services.is_some();
    let pods_per_node = opts.target_pods_per_node.or(ts.pods_per_node);
    let target = capacity::Target {
        nodes: opts
            .target_nodes
            .or(ts.nodes)
            .unwrap_or(scenario.nodes.len() as u64),
        pods_per_node: pods_per_node.unwrap_or(cfg.max_pods),
        services: opts.target_services.or(ts.services).unwrap_or(0),
        dual_stack_services: ts.dual_stack_services.unwrap_or(0),
    };
    let explicit: Vec<ipnet::IpNet> = spec.node_networks.iter().map(|n| n.value).collect();
    let node_networks = config::node_networks(scenario, &explicit, &cfg.families);

    // Expand the sweep first: its size is part of the progress total, and its errors are
    // reported before any work is done.
    let sweep_input = match (&spec.sweep, opts.skip_sweep) {
        (Some(s), false) => {
            let bases = config::Bases::of(&cfg.cluster, &cfg);
            let configs = sweep::expand(s, &bases)?;
            Some((s, bases, configs))
        }
        _ => None,
    };
    let growth_model = match (&spec.growth, opts.skip_growth) {
        (Some(g), false) => Some(GrowthModel {
            days: opts.days.or(g.days).unwrap_or(365),
            runs: opts.runs.or(g.runs).unwrap_or(100),
            initial_nodes: g.initial_nodes.unwrap_or(scenario.nodes.len() as u64),
            nodes_added_per_day: g.nodes_added_per_day.unwrap_or(0.0),
            nodes_removed_per_day: g.nodes_removed_per_day.unwrap_or(0.0),
            pods_per_node: g.pods_per_node.or(pods_per_node).unwrap_or(cfg.max_pods),
            pod_churn_per_day: g.pod_churn_per_day.unwrap_or(0.0),
            initial_services: g.initial_services.unwrap_or_else(|| {
                scenario
                    .manifests
                    .iter()
                    .filter(|o| matches!(o, Object::Service(_)))
                    .count() as u64
            }),
            services_added_per_day: g.services_added_per_day.unwrap_or(0.0),
            services_removed_per_day: g.services_removed_per_day.unwrap_or(0.0),
            dual_stack_services: g.dual_stack_services.unwrap_or(false),
        }),
        _ => None,
    };
    let n_configs = sweep_input.as_ref().map_or(0, |(_, _, c)| c.len() as u64);
    let n_runs = growth_model.as_ref().map_or(0, |m| m.runs as u64);
    let total = n_configs + n_runs;

    let single = single::report(
        scenario,
        &cfg,
        target,
        target_given,
        pods_per_node.is_some(),
        &node_networks,
    );

    let sweep = sweep_input.map(|(s, bases, configs)| {
        let progress = opts
            .progress
            .map(|p| move |done: u64, _: u64| p(done, total));
        let progress_ref = progress.as_ref().map(|p| p as &(dyn Fn(u64, u64) + Sync));
        let st = SweepTarget {
            nodes: target.nodes,
            pods_per_node,
            services: target.services,
            dual_stack_services: target.dual_stack_services,
        };
        sweep::report(&cfg, s, &bases, &configs, st, progress_ref)
    });
    let growth = growth_model.map(|m| {
        let progress = opts
            .progress
            .map(|p| move |done: u64, _: u64| p(n_configs + done, total));
        let progress_ref = progress.as_ref().map(|p| p as &(dyn Fn(u64, u64) + Sync));
        growth_runs(&cfg, &m, scenario.seed, progress_ref)
    });
    Ok(PlanReport {
        name: scenario.name.clone(),
        kubernetes_version: scenario.version,
        seed: scenario.seed,
        single,
        sweep,
        growth,
    })
}
