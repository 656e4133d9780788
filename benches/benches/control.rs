//! The control plane at Kubernetes' published limits (`scenarios/limits/limits-5000.yaml`:
//! 5,000 nodes, 150,000 pods, 10,000 dual-stack Services): loading the scenario, simulating
//! it, and writing the full state document as YAML — the three parts of `knetsim run` — and
//! `run`, all three in a row as the binary does them (the output goes to `io::sink`, so the
//! figure leaves out process start-up and the kernel's copy of the text into a file).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use knetsim_model::source::FsLoader;

const LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/limits/limits-5000.yaml"
);

fn limits(c: &mut Criterion) {
    let loaded = knetsim_model::load_scenario(Path::new(LIMITS), &FsLoader);
    let scenario = loaded.value.expect("the limits scenario loads");
    let state = knetsim_control::simulate(&scenario);

    let mut g = c.benchmark_group("limits-5000");
    g.sample_size(10);
    g.bench_function("load", |b| {
        b.iter(|| knetsim_model::load_scenario(black_box(Path::new(LIMITS)), &FsLoader))
    });
    // The binary exits without freeing the state; `iter_with_large_drop` likewise leaves the
    // drop of each result out of the figure.
    g.bench_function("simulate", |b| {
        b.iter_with_large_drop(|| knetsim_control::simulate(black_box(&scenario)))
    });
    g.bench_function("write-yaml", |b| {
        b.iter(|| {
            knetsim::cmd::run::write_state_yaml(&mut std::io::sink(), black_box(&state))
                .expect("yaml")
        })
    });
    g.bench_function("run", |b| {
        b.iter_with_large_drop(|| {
            let loaded = knetsim_model::load_scenario(black_box(Path::new(LIMITS)), &FsLoader);
            let scenario = loaded.value.expect("the limits scenario loads");
            let state = knetsim_control::simulate(&scenario);
            knetsim::cmd::run::write_state_yaml(&mut std::io::sink(), &state).expect("yaml");
            (scenario, state)
        })
    });
    g.finish();
}

criterion_group!(benches, limits);
criterion_main!(benches);
