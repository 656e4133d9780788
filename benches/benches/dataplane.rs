//! The dataplane at scale, on two clusters of 5,000 dual-stack nodes:
//!
//! - `limits-5000`: `scenarios/limits/limits-5000.yaml`, simulated (150,000 pods, 10,000
//!   dual-stack Services of 15 endpoints);
//! - `10k-svc-x5`: the benchmark, 10,000 dual-stack Services of 5 endpoints
//!   (`knetsim_dataplane::testkit::scale`).
//!
//! Groups:
//! - `rules/one-node`: kube-proxy's rules of one node, both families and both modes
//!   (`render_rules_in_mode`, sharing the per-family Service model), rendered as
//!   `knetsim rules --node X` prints them (`iptables-save` with the egress agent's rules, and
//!   `nft` text). `cold` starts from a built dataplane with nothing cached, so it includes
//!   the Service models; `warm` has the models and builds only the node's rules.
//! - `trace/fast`: verdicts of a batch of precompiled pod → ClusterIP queries (both families,
//!   sources on many nodes), per query, one after another on one thread.
//! - `trace/fast-batch`: `Dataplane::verdicts` on 10,000 such precompiled queries (in
//!   parallel on the machine's cores, as `knetsim reach` and scenario reachability matrices
//!   ask them), per query.
//! - `trace/detailed`: the hop-by-hop trace of one such query, with the node's rules cached
//!   (`warm`) and from a dataplane with nothing cached (`cold`: what one `knetsim trace` call
//!   does after building the dataplane).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use knetsim_control::state::ClusterState;
use knetsim_dataplane::testkit::{Scale, scale};
use knetsim_dataplane::{CompiledQuery, Dataplane, TraceQuery, render_rules_in_mode, trace};
use knetsim_ipam::Family;
use knetsim_model::source::FsLoader;

/// The allocator the `knetsim` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LIMITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/limits/limits-5000.yaml"
);

/// One cluster in both kube-proxy modes.
struct Cluster {
    name: &'static str,
    /// The iptables-mode and nftables-mode dataplanes.
    dps: Vec<Dataplane>,
    node: String,
}

fn with_mode(state: &ClusterState, mode: &str) -> Arc<ClusterState> {
    let mut s = state.clone();
    if let Some(p) = s.network.kube_proxy.as_mut() {
        p.mode = mode.to_string();
    }
    Arc::new(s)
}

fn clusters() -> Vec<Cluster> {
    let loaded = knetsim_model::load_scenario(Path::new(LIMITS), &FsLoader);
    let scenario = loaded.value.expect("the limits scenario loads");
    let limits = knetsim_control::simulate(&scenario);
    let limits_dps = ["iptables", "nftables"]
        .map(|m| {
            knetsim_dataplane::build(with_mode(&limits, m), &scenario).expect("dataplane builds")
        })
        .into();
    let node = limits.nodes.keys().nth(7).expect("nodes").clone();
    drop(limits);
    let services = ["iptables", "nftables"]
        .map(|mode| {
            let s = scale(&Scale {
                minor: 33,
                mode,
                nodes: 5000,
                services: 10_000,
                endpoints: 5,
                namespaces: 50,
            });
            knetsim_dataplane::build_with(
                s,
                knetsim_dataplane::Cni::HostLocal,
                &Default::default(),
                None,
            )
        })
        .into();
    vec![
        Cluster {
            name: "limits-5000",
            dps: limits_dps,
            node,
        },
        Cluster {
            name: "10k-svc-x5",
            dps: services,
            node: "node-7".to_string(),
        },
    ]
}

/// What `knetsim rules --node X` prints, in both families and both modes: the
/// `iptables-save` text (with the egress agent's rules) and the `nft` ruleset.
fn rules_text(dp: &Dataplane, node: &str) -> usize {
    let mut n = 0;
    for f in [Family::IPv4, Family::IPv6] {
        for mode in ["iptables", "nftables"] {
            n += render_rules_in_mode(dp, node, f, mode)
                .expect("kube-proxy runs")
                .len();
        }
    }
    n
}

/// Pod → ClusterIP queries: pods spread over the cluster, Services spread over the
/// namespaces, families alternating.
fn pod_to_cluster_ip(dp: &Dataplane, n: usize) -> Vec<TraceQuery> {
    let pods: Vec<String> = dp
        .state()
        .pods
        .keys()
        .step_by(97)
        .map(|p| p.to_string())
        .collect();
    let svcs: Vec<String> = dp
        .state()
        .services
        .keys()
        .filter(|s| s.name != "kubernetes")
        .step_by(13)
        .map(|s| format!("svc:{s}"))
        .collect();
    (0..n)
        .map(|k| TraceQuery {
            from: pods[k % pods.len()].clone(),
            to: svcs[(k * 7) % svcs.len()].clone(),
            family: Some(if k % 2 == 0 {
                Family::IPv4
            } else {
                Family::IPv6
            }),
            proto: "tcp".to_string(),
            port: None,
        })
        .collect()
}

/// [`pod_to_cluster_ip`] queries, compiled for the fast path.
fn compiled(dp: &Dataplane, n: usize) -> Vec<CompiledQuery> {
    pod_to_cluster_ip(dp, n)
        .iter()
        .map(|q| dp.compile(q).expect("query compiles"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut clusters = clusters();

    let mut g = c.benchmark_group("rules/one-node");
    g.sample_size(10);
    for cl in &mut clusters {
        let node = cl.node.clone();
        let dp = &mut cl.dps[0];
        g.bench_function(BenchmarkId::new(cl.name, "cold"), |b| {
            b.iter(|| {
                dp.reset_caches();
                rules_text(black_box(dp), &node)
            })
        });
        g.bench_function(BenchmarkId::new(cl.name, "warm"), |b| {
            rules_text(dp, &node);
            b.iter(|| rules_text(black_box(dp), &node))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("trace/fast");
    for cl in &clusters {
        for dp in &cl.dps {
            let mode = dp.proxy_mode().unwrap_or("none");
            let queries = compiled(dp, 1000);
            g.throughput(Throughput::Elements(queries.len() as u64));
            g.bench_function(BenchmarkId::new(cl.name, mode), |b| {
                b.iter(|| {
                    queries
                        .iter()
                        .filter(|q| dp.verdict(black_box(q)).delivered > 0)
                        .count()
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("trace/fast-batch");
    for cl in &clusters {
        for dp in &cl.dps {
            let mode = dp.proxy_mode().unwrap_or("none");
            let queries = compiled(dp, 10_000);
            g.throughput(Throughput::Elements(queries.len() as u64));
            g.bench_function(BenchmarkId::new(cl.name, mode), |b| {
                b.iter(|| {
                    dp.verdicts(black_box(&queries))
                        .iter()
                        .filter(|v| v.delivered > 0)
                        .count()
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("trace/detailed");
    g.sample_size(10);
    for cl in &mut clusters {
        for dp in &mut cl.dps {
            let mode = dp.proxy_mode().unwrap_or("none");
            let q = pod_to_cluster_ip(dp, 1).remove(0);
            g.bench_function(
                BenchmarkId::new(format!("{}/{mode}", cl.name), "warm"),
                |b| {
                    trace(dp, dp.state(), &q).expect("traces");
                    b.iter(|| trace(black_box(&*dp), dp.state(), &q).expect("traces"))
                },
            );
            g.bench_function(
                BenchmarkId::new(format!("{}/{mode}", cl.name), "cold"),
                |b| {
                    b.iter(|| {
                        dp.reset_caches();
                        trace(black_box(&*dp), dp.state(), &q).expect("traces")
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
