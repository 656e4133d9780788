//! Capacity planning at scale: a sweep of 11,050 configurations (IPv4 cluster prefix /8–/20,
//! IPv4 node mask /22–/26, IPv6 cluster prefix /48–/64, IPv6 node mask /64–/73) against a
//! 5,000-node target, and 1,000 Monte Carlo runs of a year of growth of a 5,000-node cluster.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use knetsim_model::source::FsLoader;
use knetsim_plan::growth::GrowthModel;
use knetsim_plan::sweep::{self, SweepTarget};
use knetsim_plan::{PlanConfig, config, spec};

const TARGET_5000: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/plan/target-5000.yaml"
);

const SWEEP: &str = r#"
name: bench-sweep
kubernetesVersion: "1.33"
cluster:
  kube-apiserver:
    service-cluster-ip-range: 10.96.0.0/16,fd00:10:96::/112
  kube-controller-manager:
    allocate-node-cidrs: true
    cluster-cidr: 10.128.0.0/12,fd00:10:244::/48
    service-cluster-ip-range: 10.96.0.0/16,fd00:10:96::/112
plan:
  target: {nodes: 5000, podsPerNode: 30, services: 10000}
  sweep:
    ipv4ClusterPrefix: [8, 20]
    ipv4NodeMask: [22, 26]
    ipv6ClusterPrefix: [48, 64]
    ipv6NodeMask: [64, 73]
"#;

fn plan(c: &mut Criterion) {
    let s = knetsim_model::load_scenario_str("bench-sweep.yaml", SWEEP, &FsLoader)
        .value
        .expect("sweep scenario");
    let base = PlanConfig::from_scenario(&s);
    let bases = config::Bases::of(&base.cluster, &base);
    let sweep_spec = spec::read(s.plan.as_ref())
        .expect("plan section")
        .sweep
        .expect("sweep");
    let configs = sweep::expand(&sweep_spec, &bases).expect("configurations");
    assert!(configs.len() >= 10_000, "{} configurations", configs.len());
    let target = SweepTarget {
        nodes: 5000,
        pods_per_node: Some(30),
        services: 10000,
        dual_stack_services: 0,
    };

    let g5000 = knetsim_model::load_scenario(Path::new(TARGET_5000), &FsLoader)
        .value
        .expect("target-5000");
    let cfg = PlanConfig::from_scenario(&g5000);
    let model = GrowthModel {
        days: 365,
        runs: 1000,
        initial_nodes: 3000,
        nodes_added_per_day: 12.0,
        nodes_removed_per_day: 4.0,
        pods_per_node: 30,
        pod_churn_per_day: 0.0,
        initial_services: 6000,
        services_added_per_day: 15.0,
        services_removed_per_day: 3.0,
        dual_stack_services: false,
    };

    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.bench_function(format!("sweep-{}-configurations", configs.len()), |b| {
        b.iter(|| sweep::sweep_configs(black_box(&base), &bases, &configs, &target, None))
    });
    g.bench_function("growth-1000-runs-5000-nodes", |b| {
        b.iter(|| knetsim_plan::growth_runs(black_box(&cfg), &model, g5000.seed, None))
    });
    g.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
