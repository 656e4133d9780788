//! Growth and churn: a workload model replayed day by day through the real allocators, many
//! times over (Monte Carlo), to say when each pool runs out.
//!
//! One run, for day 0 and then each day of the horizon:
//!
//! 1. Day 0: `initialNodes` nodes join, `initialServices` Services are created (after the
//!    `kubernetes` Service, which takes the first address of the primary range).
//! 2. Each later day: a Poisson number of random nodes leave (mean `nodesRemovedPerDay`), then a
//!    Poisson number join (mean `nodesAddedPerDay`); a Poisson number of pods (mean
//!    `podChurnPerDay` × running pods) are deleted and recreated on a random node with room under
//!    max-pods; a Poisson number of random Services are deleted, then new ones created.
//!
//! What goes through which allocator:
//!
//! - Node podCIDRs: one `RangeAllocator` as kube-controller-manager runs it, so its round-robin
//!   order with wrap-around and its leak on a failed dual-stack allocation (blocks taken from the
//!   first cluster CIDR stay taken) shape when it runs out. A node that gets no podCIDR is
//!   asked for once and then given up on (as an autoscaler would give up on a node that never
//!   becomes Ready), so it leaks at most once; under host-local it runs no pods, under Calico
//!   it still runs them.
//! - Pods under Calico: `CalicoIpam`, one `assign` per family per pod in the CNI plugin's order,
//!   with block affinity, borrowing and `strictAffinity`; a leaving node's blocks are released.
//! - Pods under host-local: a node's podCIDR runs out only when it holds more pods than
//!   `host_local_capacity` (allocation is a round-robin over a fixed range and released addresses
//!   come back), so pods are counted against that figure instead of being allocated one by one;
//!   the tests fill the real allocator to the same count.
//! - Services: kube-apiserver's allocators (`ServiceIpAllocator`) scan their whole range, the
//!   dynamic band and then the static band, before giving up, so a ClusterIP can be had exactly
//!   while fewer than `size` are taken. Services are therefore counted against the allocator's
//!   size (after the `kubernetes` Service's address), which is the same answer for a fraction of
//!   the cost (a replay of 10,000 Services through the allocator's interval set took three
//!   quarters of a 5,000-node run); the tests churn the real allocators and check that they
//!   agree with the count at every step. A dual-stack Service that gets its first address but
//!   not the second gives the first back, as the API server does.
//!
//! Each run draws from its own stream, `rng::for_task(seed, "plan/growth", run)` (and named
//! sub-streams for the Service allocators and Calico's block choice), and runs are collected in
//! run order, so the report is the same whatever the thread count. A pool's exhaustion day is
//! the first day an allocation from it failed; percentiles are over runs, nearest-rank, with
//! "never within the horizon" ranked last.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use knetsim_ipam::calico::CalicoIpam;
use knetsim_ipam::range_allocator::RangeAllocator;
use knetsim_ipam::service_ip::service_range_size;
use knetsim_ipam::{Family, NamedRng, rng};
use rand::RngExt;
use rayon::prelude::*;
use serde::Serialize;

use crate::capacity;
use crate::config::{Cni, PlanConfig};
use crate::render::count;

/// The workload model, defaults applied (see [`crate::spec`] for the YAML keys).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrowthModel {
    pub days: u32,
    pub runs: usize,
    pub initial_nodes: u64,
    pub nodes_added_per_day: f64,
    pub nodes_removed_per_day: f64,
    pub pods_per_node: u32,
    pub pod_churn_per_day: f64,
    pub initial_services: u64,
    pub services_added_per_day: f64,
    pub services_removed_per_day: f64,
    pub dual_stack_services: bool,
}

/// When one pool ran out, over the runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolExhaustion {
    /// The pool, named like the limits: `nodeBlocks/IPv4`, `podCidr/IPv6`,
    /// `calicoBlocks/IPv4`, `calicoAddresses/IPv4`, `serviceIps/IPv4`.
    pub pool: String,
    pub description: String,
    /// Runs in which it ran out within the horizon.
    pub runs_exhausted: usize,
    /// Day by which half the runs had run out; `None`: not within the horizon.
    pub p50: Option<u32>,
    pub p90: Option<u32>,
    pub p99: Option<u32>,
}

/// The median share of a pool still free at the end of each day, over the runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Headroom {
    pub pool: String,
    /// Percent free at the end of day 0, 1, …, `days`.
    pub free_percent: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrowthReport {
    pub model: GrowthModel,
    pub seed: u64,
    pub pools: Vec<PoolExhaustion>,
    pub headroom: Vec<Headroom>,
}

/// What a pool is, for the replay.
#[derive(Clone, Debug)]
enum PoolKind {
    /// A cluster CIDR's node blocks, by set index.
    NodeBlocks(usize),
    /// A node's podCIDR under host-local, with its capacity.
    PodCidr(u128),
    CalicoBlocks(Family),
    CalicoAddresses(Family),
    ServiceIps(Family),
}

#[derive(Clone, Debug)]
struct Pool {
    key: String,
    description: String,
    kind: PoolKind,
}

/// The pools `cfg` has, in report order.
fn pools(cfg: &PlanConfig, pods_per_node: u32) -> Vec<Pool> {
    let figures = capacity::family_figures(cfg, pods_per_node);
    let mut out = Vec::new();
    for f in &figures {
        let fam = f.family;
        if let (Some(b), Some((i, _))) = (&f.node_blocks, cfg.node_set(fam)) {
            out.push(Pool {
                key: format!("nodeBlocks/{fam}"),
                description: format!(
                    "{fam} node blocks ({} in /{}s)",
                    b.cluster_cidr, b.node_mask
                ),
                kind: PoolKind::NodeBlocks(i),
            });
        }
        if let Some(p) = &f.pod_ips {
            out.push(Pool {
                key: format!("podCidr/{fam}"),
                description: format!(
                    "{fam} addresses in a node's podCIDR ({})",
                    count(p.per_node)
                ),
                kind: PoolKind::PodCidr(p.per_node),
            });
        }
        if let Some(c) = &f.calico {
            out.push(Pool {
                key: format!("calicoBlocks/{fam}"),
                description: format!(
                    "{fam} Calico blocks ({} /{} blocks)",
                    count(c.blocks),
                    c.block_size
                ),
                kind: PoolKind::CalicoBlocks(fam),
            });
            out.push(Pool {
                key: format!("calicoAddresses/{fam}"),
                description: format!("{fam} Calico pool addresses ({})", count(c.addresses)),
                kind: PoolKind::CalicoAddresses(fam),
            });
        }
        if let Some(s) = &f.service_ips {
            out.push(Pool {
                key: format!("serviceIps/{fam}"),
                description: format!("{fam} ClusterIPs ({}, {})", s.cidr, s.allocator),
                kind: PoolKind::ServiceIps(fam),
            });
        }
    }
    out
}

/// What one run saw.
#[derive(Clone, Debug)]
struct RunResult {
    /// Per pool: the first day an allocation failed.
    exhausted: Vec<Option<u32>>,
    /// Per pool: percent free at the end of each day.
    free: Vec<Vec<f32>>,
}

/// Runs the model `model.runs` times and summarises. `progress` is told `(runs done, runs)`.
pub fn growth_runs(
    cfg: &PlanConfig,
    model: &GrowthModel,
    seed: u64,
    progress: Option<&(dyn Fn(u64, u64) + Sync)>,
) -> GrowthReport {
    let pools = pools(cfg, model.pods_per_node);
    let total = model.runs as u64;
    let done = AtomicU64::new(0);
    let results: Vec<RunResult> = (0..model.runs)
        .into_par_iter()
        .map(|run| {
            let r = Run::new(cfg, model, &pools, seed, run as u64).play();
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n, total);
            }
            r
        })
        .collect();
    summarise(model.clone(), seed, &pools, &results)
}

fn summarise(model: GrowthModel, seed: u64, pools: &[Pool], results: &[RunResult]) -> GrowthReport {
    let mut out_pools = Vec::new();
    let mut headroom = Vec::new();
    for (i, pool) in pools.iter().enumerate() {
        let mut days: Vec<Option<u32>> = results.iter().map(|r| r.exhausted[i]).collect();
        // `None` (never) ranks after every day.
        days.sort_by_key(|d| d.unwrap_or(u32::MAX));
        out_pools.push(PoolExhaustion {
            pool: pool.key.clone(),
            description: pool.description.clone(),
            runs_exhausted: days.iter().filter(|d| d.is_some()).count(),
            p50: percentile(&days, 50),
            p90: percentile(&days, 90),
            p99: percentile(&days, 99),
        });
        let n_days = model.days as usize + 1;
        let free_percent = (0..n_days)
            .map(|day| {
                let mut v: Vec<f32> = results.iter().map(|r| r.free[i][day]).collect();
                v.sort_by(f32::total_cmp);
                let m = if v.is_empty() {
                    100.0
                } else {
                    v[(v.len() - 1) / 2]
                };
                (f64::from(m) * 10.0).round() / 10.0
            })
            .collect();
        headroom.push(Headroom {
            pool: pool.key.clone(),
            free_percent,
        });
    }
    GrowthReport {
        model,
        seed,
        pools: out_pools,
        headroom,
    }
}

/// Nearest-rank percentile of sorted days.
fn percentile(sorted: &[Option<u32>], p: usize) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A Poisson draw: Knuth's method for small means, a rounded normal approximation for large
/// ones (where Knuth's would need too many uniforms).
fn poisson(rng: &mut NamedRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let l = (-mean).exp();
        let mut k = 0u64;
        let mut p = 1.0f64;
        loop {
            p *= rng.random::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
    // Box–Muller; `1 - u` keeps the logarithm's argument in (0, 1].
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (mean + mean.sqrt() * z).round().max(0.0) as u64
}

struct Node {
    /// The host name Calico knows the node by; empty under host-local, where nothing needs it
    /// (the node IPAM names nodes only in error messages).
    name: String,
    cidrs: Vec<IpNet>,
    /// Calico: each pod's addresses (one per assigned family). Host-local: empty; the pods
    /// are counted in `pod_count`.
    pods: Vec<Vec<IpAddr>>,
    pod_count: u32,
}

/// A Service range, counted: see the module docs.
struct ServiceRange {
    family: Family,
    /// The allocator's size (`ServiceIpAllocator::size`).
    size: u128,
    used: u128,
}

struct Run<'a> {
    cfg: &'a PlanConfig,
    model: &'a GrowthModel,
    pools: &'a [Pool],
    rng: NamedRng,
    node_ipam: Option<RangeAllocator>,
    calico: Option<(CalicoIpam, Vec<Family>)>,
    /// The Service ranges, primary first.
    services: Vec<ServiceRange>,
    /// Services created and not deleted (each holds an address in the first range, or in
    /// every range when the model's Services are dual-stack).
    live_services: u64,
    nodes: Vec<Node>,
    next_node: u64,
    day: u32,
    result: RunResult,
}

impl<'a> Run<'a> {
    fn new(
        cfg: &'a PlanConfig,
        model: &'a GrowthModel,
        pools: &'a [Pool],
        seed: u64,
        run: u64,
    ) -> Run<'a> {
        let mut rng = rng::for_task(seed, "plan/growth", run);
        let node_ipam = cfg.node_ipam.as_ref().and_then(|n| n.allocator().ok());
        let calico = match &cfg.cni {
            Cni::Calico(c) => {
                let calico_seed: u64 = rng.random();
                CalicoIpam::new(c.pools.clone(), c.strict_affinity, c.max_blocks_per_host)
                    .ok()
                    .map(|ipam| (ipam.with_seed(calico_seed), c.assign.clone()))
            }
            Cni::HostLocal { .. } => None,
        };
        // A range the allocator refuses (an IPv6 range shorter than /64 under the IPAddress
        // allocator) has size 0: no Service gets an address from it.
        let services = cfg
            .services
            .iter()
            .flat_map(|s| {
                s.cidrs.iter().map(|c| ServiceRange {
                    family: Family::of_net(c),
                    size: service_range_size(c, s.allocator),
                    used: 0,
                })
            })
            .collect();
        Run {
            cfg,
            model,
            pools,
            rng,
            node_ipam,
            calico,
            services,
            live_services: 0,
            nodes: Vec::new(),
            next_node: 0,
            day: 0,
            result: RunResult {
                exhausted: vec![None; pools.len()],
                free: vec![Vec::with_capacity(model.days as usize + 1); pools.len()],
            },
        }
    }

    fn play(mut self) -> RunResult {
        // The `kubernetes` Service: the first address of the primary range.
        if let Some(r) = self.services.first_mut() {
            r.used = r.used.saturating_add(1).min(r.size);
        }
        for _ in 0..self.model.initial_nodes {
            self.add_node();
        }
        for _ in 0..self.model.initial_services {
            self.add_service();
        }
        self.end_of_day();
        for day in 1..=self.model.days {
            self.day = day;
            let leave = poisson(&mut self.rng, self.model.nodes_removed_per_day);
            for _ in 0..leave {
                self.remove_node();
            }
            let join = poisson(&mut self.rng, self.model.nodes_added_per_day);
            for _ in 0..join {
                self.add_node();
            }
            if self.calico.is_some() && self.model.pod_churn_per_day > 0.0 {
                let running: usize = self.nodes.iter().map(|n| n.pods.len()).sum();
                let churn = poisson(&mut self.rng, self.model.pod_churn_per_day * running as f64);
                for _ in 0..churn {
                    self.move_pod();
                }
            }
            let gone = poisson(&mut self.rng, self.model.services_removed_per_day);
            for _ in 0..gone {
                self.remove_service();
            }
            let new = poisson(&mut self.rng, self.model.services_added_per_day);
            for _ in 0..new {
                self.add_service();
            }
            self.end_of_day();
        }
        self.result
    }

    fn exhaust(&mut self, matches: impl Fn(&PoolKind) -> bool) {
        let day = self.day;
        for (i, p) in self.pools.iter().enumerate() {
            if matches(&p.kind) && self.result.exhausted[i].is_none() {
                self.result.exhausted[i] = Some(day);
            }
        }
    }

    fn add_node(&mut self) {
        let name = if self.calico.is_some() {
            format!("node-{}", self.next_node)
        } else {
            String::new()
        };
        self.next_node += 1;
        let mut cidrs = Vec::new();
        if let Some(ipam) = self.node_ipam.as_mut() {
            // `allocate` fails on the first cluster CIDR with no free block; find which, for
            // the report, before letting it fail (and leak) as kube-controller-manager does.
            let full = ipam.sets().iter().position(|s| s.free() == 0);
            match ipam.allocate() {
                Ok(c) => cidrs = c,
                Err(_) => {
                    if let Some(i) = full {
                        self.exhaust(|k| matches!(k, PoolKind::NodeBlocks(j) if *j == i));
                    }
                    if self.calico.is_none() {
                        // NotReady: host-local cannot wire its pods.
                        return;
                    }
                }
            }
        } else if self.calico.is_none() {
            // No node IPAM at all: host-local has nothing to allocate from.
            return;
        }
        let mut node = Node {
            name,
            cidrs,
            pods: Vec::new(),
            pod_count: 0,
        };
        if self.calico.is_some() {
            for _ in 0..self.model.pods_per_node {
                if let Some(ips) = self.assign_pod(&node.name) {
                    node.pods.push(ips);
                }
            }
            node.pod_count = node.pods.len() as u32;
        } else {
            let ppn = u128::from(self.model.pods_per_node);
            let short = self
                .pools
                .iter()
                .any(|p| matches!(p.kind, PoolKind::PodCidr(cap) if ppn > cap));
            if short {
                self.exhaust(|k| matches!(k, PoolKind::PodCidr(cap) if ppn > *cap));
            }
            node.pod_count = self.model.pods_per_node;
        }
        self.nodes.push(node);
    }

    fn remove_node(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.nodes.len());
        let node = self.nodes.swap_remove(i);
        if let Some(ipam) = self.node_ipam.as_mut() {
            let _ = ipam.release(&node.name, &node.cidrs);
        }
        if let Some((ipam, _)) = self.calico.as_mut() {
            ipam.release_host(&node.name);
        }
    }

    /// One pod's addresses from Calico, as the CNI plugin asks for them; `None` when a family
    /// fails (the addresses already given are released, as `run` does).
    fn assign_pod(&mut self, host: &str) -> Option<Vec<IpAddr>> {
        let (ipam, assign) = self.calico.as_mut()?;
        let mut got = Vec::with_capacity(assign.len());
        let mut failed = None;
        for &fam in assign.iter() {
            match ipam.assign(host, fam) {
                Ok(ip) => got.push(ip),
                Err(_) => {
                    failed = Some(fam);
                    break;
                }
            }
        }
        match failed {
            None => Some(got),
            Some(fam) => {
                for ip in got {
                    let _ = ipam.release(ip);
                }
                self.exhaust(|k| matches!(k, PoolKind::CalicoAddresses(f) if *f == fam));
                None
            }
        }
    }

    /// A pod is deleted on a random node and recreated on a random node with room.
    fn move_pod(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        let from = self.rng.random_range(0..self.nodes.len());
        if self.nodes[from].pods.is_empty() {
            return;
        }
        let k = self.rng.random_range(0..self.nodes[from].pods.len());
        let ips = self.nodes[from].pods.swap_remove(k);
        if let Some((ipam, _)) = self.calico.as_mut() {
            for ip in ips {
                let _ = ipam.release(ip);
            }
        }
        // The scheduler places the replacement; a few random probes for a node under max-pods
        // stand in for its spreading, and the pod goes back where it was if none has room.
        let max = self.cfg.max_pods as usize;
        let mut to = from;
        for _ in 0..4 {
            let c = self.rng.random_range(0..self.nodes.len());
            if self.nodes[c].pods.len() < max {
                to = c;
                break;
            }
        }
        let host = self.nodes[to].name.clone();
        if let Some(ips) = self.assign_pod(&host) {
            self.nodes[to].pods.push(ips);
        }
        self.nodes[from].pod_count = self.nodes[from].pods.len() as u32;
        self.nodes[to].pod_count = self.nodes[to].pods.len() as u32;
    }

    fn add_service(&mut self) {
        let n = if self.model.dual_stack_services {
            self.services.len()
        } else {
            self.services.len().min(1)
        };
        // The API server allocates family by family and gives back what it got if a later
        // family is full; the outcome is that of the first full range.
        if let Some(full) = self.services[..n].iter().find(|r| r.used >= r.size) {
            let fam = full.family;
            self.exhaust(|k| matches!(k, PoolKind::ServiceIps(f) if *f == fam));
            return;
        }
        if n == 0 {
            return;
        }
        for r in &mut self.services[..n] {
            r.used += 1;
        }
        self.live_services += 1;
    }

    fn remove_service(&mut self) {
        if self.live_services == 0 {
            return;
        }
        self.live_services -= 1;
        let n = if self.model.dual_stack_services {
            self.services.len()
        } else {
            self.services.len().min(1)
        };
        for r in &mut self.services[..n] {
            r.used -= 1;
        }
    }

    fn end_of_day(&mut self) {
        for (i, p) in self.pools.iter().enumerate() {
            let free = match &p.kind {
                PoolKind::NodeBlocks(s) => self
                    .node_ipam
                    .as_ref()
                    .and_then(|a| a.sets().get(*s))
                    .map_or(0.0, |set| {
                        share(u128::from(set.free()), u128::from(set.max_cidrs()))
                    }),
                PoolKind::PodCidr(cap) => share(
                    cap.saturating_sub(u128::from(self.model.pods_per_node)),
                    *cap,
                ),
                PoolKind::CalicoBlocks(f) => self.calico.as_ref().map_or(0.0, |(ipam, _)| {
                    let u = ipam.usage(*f);
                    let used = u.blocks_affine + u.blocks_unaffine;
                    share(u.blocks_total.saturating_sub(used), u.blocks_total)
                }),
                PoolKind::CalicoAddresses(f) => self.calico.as_ref().map_or(0.0, |(ipam, _)| {
                    let u = ipam.usage(*f);
                    share(u.ips_total.saturating_sub(u.ips_used), u.ips_total)
                }),
                PoolKind::ServiceIps(f) => self
                    .services
                    .iter()
                    .find(|r| r.family == *f)
                    .map_or(0.0, |r| share(r.size - r.used, r.size)),
            };
            self.result.free[i].push(free);
        }
        // Calico claims blocks one by one; the pool's blocks have run out once every block is
        // claimed (from then on nodes borrow, or fail with strictAffinity).
        let exhausted: Vec<Family> = self
            .pools
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.kind {
                PoolKind::CalicoBlocks(f) if self.result.free[i].last() == Some(&0.0) => Some(f),
                _ => None,
            })
            .collect();
        for f in exhausted {
            self.exhaust(|k| matches!(k, PoolKind::CalicoBlocks(g) if *g == f));
        }
    }
}

/// `free / total` in percent.
fn share(free: u128, total: u128) -> f32 {
    if total == 0 {
        0.0
    } else {
        (free as f64 / total as f64 * 100.0) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_rank_never_last() {
        let days = [Some(3), Some(5), Some(9), None];
        assert_eq!(percentile(&days, 50), Some(5));
        assert_eq!(percentile(&days, 90), None);
        assert_eq!(percentile(&days, 25), Some(3));
        let one = [Some(7)];
        assert_eq!(
            (percentile(&one, 50), percentile(&one, 99)),
            (Some(7), Some(7))
        );
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn poisson_draws_have_the_mean() {
        for mean in [0.5, 4.0, 80.0] {
            let mut r = rng::named(1, "test/poisson");
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| poisson(&mut r, mean)).sum();
            let got = sum as f64 / n as f64;
            assert!(
                (got - mean).abs() < mean * 0.05 + 0.05,
                "mean {mean}: got {got}"
            );
        }
        assert_eq!(poisson(&mut rng::named(1, "x"), 0.0), 0);
    }
}
