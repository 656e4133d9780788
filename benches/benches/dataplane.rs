//! The dataplane at the benchmark size: a dual-stack cluster of 10,000 Services with 5
//! endpoints each (50,000 pods on 5,000 nodes). `rules/one-node/<mode>` is what
//! `knetsim rules --node X` does for both families of one node (build the dataplane, then the
//! node's rules and their text); `trace` is the detailed hop-by-hop trace of a pod → ClusterIP
//! packet (the per-call cost of `knetsim trace`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use knetsim_dataplane::testkit::{Scale, scale};
use knetsim_dataplane::{
    Cni, FabricConfig, TraceQuery, build_with, render_iptables_save, render_nft,
};
use knetsim_ipam::Family;

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn dataplane(c: &mut Criterion) {
    for mode in ["iptables", "nftables"] {
        let state = scale(&Scale {
            minor: 33,
            mode,
            nodes: 5000,
            services: 10_000,
            endpoints: 5,
            namespaces: 50,
        });
        let cni = Cni::HostLocal;
        let mut g = c.benchmark_group(format!("dataplane/{mode}"));
        g.sample_size(10);
        g.bench_function("rules/one-node", |b| {
            b.iter(|| {
                let dp = build_with(
                    black_box(&state),
                    cni.clone(),
                    &FabricConfig::default(),
                    None,
                );
                let text = if mode == "iptables" {
                    render_iptables_save(&dp, "node-7", Family::IPv4).len()
                        + render_iptables_save(&dp, "node-7", Family::IPv6).len()
                } else {
                    render_nft(&dp, "node-7").len()
                };
                assert!(text > 1_000_000, "{text} bytes");
                text
            })
        });
        let dp = build_with(&state, cni.clone(), &FabricConfig::default(), None);
        let pod = state.pods.keys().next().expect("pods").to_string();
        let svc = state.services.keys().nth(1).expect("services").to_string();
        let q = TraceQuery {
            from: pod,
            to: format!("svc:{svc}:80"),
            family: Some(Family::IPv6),
            proto: "tcp".into(),
            port: None,
        };
        let first = knetsim_dataplane::trace(&dp, &state, &q).expect("trace");
        assert_eq!(
            first.verdict,
            knetsim_dataplane::trace::Outcome::Delivered,
            "{q:?}"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function("trace/detailed", |b| {
            b.iter(|| knetsim_dataplane::trace(&dp, black_box(&state), &q).expect("trace"))
        });
        g.finish();
    }
}

criterion_group!(benches, dataplane);
criterion_main!(benches);
