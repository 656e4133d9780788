//! knetsim at its caps (four times Kubernetes' published limits: 20,000 nodes, 600,000 pods,
//! 40,000 Services), and the shapes that used to grow worse than linearly: nodes beyond the
//! node CIDR blocks, registered at once or as Node objects one at a time. Compare a group's
//! sizes side by side in one run: a linear cost doubles with the size.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use knetsim_model::source::FsLoader;

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LIMITS: &str = include_str!("../../scenarios/limits/limits-5000.yaml");

fn load(text: &str) -> knetsim_model::Scenario {
    let loaded = knetsim_model::load_scenario_str("bench.yaml", text, &FsLoader);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    loaded.value.expect("the scenario loads")
}

/// limits-5000 scaled by four in every dimension (namespaces too, so none outgrows
/// Kubernetes' per-namespace limits).
fn limits_times_four() -> String {
    LIMITS
        .replace("count: 5000", "count: 20000")
        .replace("count: 10000", "count: 40000")
        .replace("count: 50\n", "count: 200\n")
        .replace("{i%50}", "{i%200}")
}

fn caps(c: &mut Criterion) {
    let mut g = c.benchmark_group("caps");
    g.sample_size(10);
    for (name, text) in [
        ("limits-5000", LIMITS.to_string()),
        ("limits-20000", limits_times_four()),
    ] {
        let scenario = load(&text);
        g.bench_function(BenchmarkId::new("simulate", name), |b| {
            b.iter_with_large_drop(|| knetsim_control::simulate(black_box(&scenario)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("nodes-beyond-blocks");
    g.sample_size(10);
    for n in [4000, 8000, 16000] {
        // 256 blocks: all but 256 nodes wait for podCIDRs.
        let at_once = load(&format!(
            "name: b\ncluster:\n  kube-controller-manager: {{allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/16}}\nnodes:\n  - {{count: {n}, prefix: n-, node-ip-pools: [172.16.0.0/12]}}\n"
        ));
        g.bench_function(BenchmarkId::new("registered", n), |b| {
            b.iter_with_large_drop(|| knetsim_control::simulate(black_box(&at_once)))
        });
        let one_by_one = load(&format!(
            "name: b\ncluster:\n  kube-controller-manager: {{allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/16}}\nmanifests:\n  - generate: {{count: {n}, object: {{apiVersion: v1, kind: Node, metadata: {{name: \"n-{{i}}\"}}}}}}\n"
        ));
        g.bench_function(BenchmarkId::new("node-objects", n), |b| {
            b.iter_with_large_drop(|| knetsim_control::simulate(black_box(&one_by_one)))
        });
    }
    g.finish();
}

criterion_group!(benches, caps);
criterion_main!(benches);
