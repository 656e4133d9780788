//! `knetsim run -o json` against `run -o yaml` at Kubernetes' published limits
//! (`scenarios/limits/limits-5000.yaml`: 5,000 nodes, 150,000 pods, 10,000 dual-stack
//! Services), side by side in one run: the writers alone on one simulated state
//! (`write-yaml`, `write-json`), and the whole of `run` as the binary does it (`run-yaml`,
//! `run-json`: load, simulate, write). The text goes to `io::sink`, so the figures leave out
//! process start-up and the kernel's copy of the text into a file (182 MB of YAML, 329 MB of
//! JSON).
//!
//! `cargo bench -p knetsim-benches --bench output`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use knetsim::cmd::run::{write_state_json, write_state_yaml};
use knetsim_model::source::FsLoader;

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/limits/limits-5000.yaml"
);

fn output(c: &mut Criterion) {
    let loaded = knetsim_model::load_scenario(Path::new(LIMITS), &FsLoader);
    let scenario = loaded.value.expect("the limits scenario loads");
    let state = knetsim_control::simulate(&scenario);

    let mut g = c.benchmark_group("limits-5000");
    g.sample_size(10);
    g.bench_function("write-yaml", |b| {
        b.iter(|| write_state_yaml(&mut std::io::sink(), black_box(&state)).expect("writes"))
    });
    g.bench_function("write-json", |b| {
        b.iter(|| write_state_json(&mut std::io::sink(), black_box(&state)).expect("writes"))
    });
    // The binary exits without freeing the state; `iter_with_large_drop` likewise leaves the
    // drop of each result out of the figure.
    g.bench_function("run-yaml", |b| {
        b.iter_with_large_drop(|| {
            let (scenario, state) = load_and_simulate();
            write_state_yaml(&mut std::io::sink(), &state).expect("writes");
            (scenario, state)
        })
    });
    g.bench_function("run-json", |b| {
        b.iter_with_large_drop(|| {
            let (scenario, state) = load_and_simulate();
            write_state_json(&mut std::io::sink(), &state).expect("writes");
            (scenario, state)
        })
    });
    g.finish();
}

/// What `knetsim run` does before it writes.
fn load_and_simulate() -> (knetsim_model::Scenario, knetsim_control::ClusterState) {
    let loaded = knetsim_model::load_scenario(black_box(Path::new(LIMITS)), &FsLoader);
    let scenario = loaded.value.expect("the limits scenario loads");
    let state = knetsim_control::simulate(&scenario);
    (scenario, state)
}

criterion_group!(benches, output);
criterion_main!(benches);
