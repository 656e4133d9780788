//! `knetsim snapshot` and `knetsim diff` at Kubernetes' published limits
//! (`scenarios/limits/limits-5000.yaml`), side by side with `knetsim run --summary`, the
//! figure their speed targets are set against (snapshot ≤ 1.3×, a diff of two variants
//! ≤ 2.2×). Each runs the whole command in-process through `main_with`, output to
//! `io::sink`; the snapshot compares against a stored one, as a CI run does.

use std::ffi::OsString;

use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/limits/limits-5000.yaml"
);

fn knetsim(args: &[&str]) -> i32 {
    let mut argv: Vec<OsString> = vec!["knetsim".into()];
    argv.extend(args.iter().map(Into::into));
    knetsim::main_with(argv, &mut std::io::sink(), &mut std::io::sink())
}

fn review(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("knetsim-bench-review-{}", std::process::id()));
    let dir_arg = dir.to_string_lossy().into_owned();
    assert_eq!(
        knetsim(&["snapshot", LIMITS, "--dir", &dir_arg, "--update"]),
        0
    );

    let mut g = c.benchmark_group("review-limits-5000");
    g.sample_size(10);
    g.bench_function("run-summary", |b| {
        b.iter(|| assert_eq!(knetsim(&["run", LIMITS, "--summary"]), 0))
    });
    g.bench_function("snapshot", |b| {
        b.iter(|| assert_eq!(knetsim(&["snapshot", LIMITS, "--dir", &dir_arg]), 0))
    });
    // Two variants: the scenario as it is, and with IPv4 node blocks of /25 instead of /24.
    g.bench_function("diff", |b| {
        b.iter(|| {
            let args = [
                "diff",
                LIMITS,
                "--set",
                "kube-controller-manager.node-cidr-mask-size-ipv4=25",
            ];
            assert_eq!(knetsim(&args), 1)
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, review);
criterion_main!(benches);
