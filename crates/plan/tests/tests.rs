//! knetsim-plan's tests: documented sizing facts, the planner against `run` and against the
//! allocators filled by hand, determinism, the `plan:` section's diagnostics, and the reports of
//! the bundled planning scenarios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use knetsim_ipam::cidrset::CidrSet;
use knetsim_ipam::host_local::{HostLocal, host_local_capacity};
use knetsim_ipam::range_allocator::RangeAllocator;
use knetsim_ipam::service_ip::{
    AllocatorKind, ServiceIpAllocator, calculate_range_offset, service_range_size,
};
use knetsim_ipam::{Family, rng};
use knetsim_model::{
    FileLoader, FsLoader, KubeVersion, Scenario, load_scenario, load_scenario_str,
};
use knetsim_plan::capacity::FamilyFigures;
use knetsim_plan::config::Severity;
use knetsim_plan::{PlanOptions, PlanReport, plan};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A loader over files held in memory (paths as written).
struct Files(BTreeMap<PathBuf, String>);

impl FileLoader for Files {
    fn load(&self, path: &Path) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| "No such file or directory (os error 2)".to_string())
    }
}

fn scenario(yaml: &str) -> Scenario {
    let loaded = load_scenario_str("test.yaml", yaml, &Files(BTreeMap::new()));
    match loaded.value {
        Some(s) => s,
        None => panic!("scenario does not load:\n{}\n{yaml}", loaded.render()),
    }
}

fn plan_of(yaml: &str) -> PlanReport {
    plan(&scenario(yaml), &PlanOptions::default()).unwrap_or_else(|d| panic!("{d:?}"))
}

fn family(r: &PlanReport, f: Family) -> &FamilyFigures {
    r.single
        .families
        .iter()
        .find(|x| x.family == f)
        .expect("family in the report")
}

/// A scenario with a `cluster:` section and `nodes` generated nodes.
fn cluster_yaml(version: &str, cluster: &str, nodes: u64) -> String {
    let mut s = format!("name: t\nkubernetesVersion: \"{version}\"\ncluster:\n");
    for line in cluster.lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    if nodes > 0 {
        s.push_str(&format!("nodes:\n  - count: {nodes}\n    prefix: node-\n"));
    }
    s
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("CIDR")
}

// ---------------------------------------------------------------------------------------------
// Documented sizing facts

/// Node counts as the sizing tables give them. A /24 has 256 addresses; host-local hands out
/// 253 of them (the network address, the gateway `.1` and the broadcast address are never
/// given to a pod), one fewer than the "254 usable" tables usually print, which forget the
/// gateway.
#[test]
fn documented_sizing_facts() {
    // (what, version, cluster section, family, node blocks, pods per node (host-local))
    let cases: &[(&str, &str, &str, Family, u128, u128)] = &[
        (
            "/16 with /24 nodes holds 256 nodes of 254 pod addresses",
            "1.33",
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/16}",
            Family::IPv4,
            256,
            253,
        ),
        (
            "/12 with /24 nodes holds 4,096 nodes",
            "1.33",
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.96.0.0/12, node-cidr-mask-size: 24}",
            Family::IPv4,
            4096,
            253,
        ),
        (
            "/48 with /64 nodes holds 65,536 nodes",
            "1.33",
            "kube-apiserver: {service-cluster-ip-range: \"fd00:10:96::/112\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"fd00::/48\"}",
            Family::IPv6,
            65536,
            (1 << 64) - 2,
        ),
        (
            "/22 with /26 nodes: 16 nodes of 61 addresses",
            "1.30",
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/22, node-cidr-mask-size: 26}",
            Family::IPv4,
            16,
            61,
        ),
    ];
    for (what, version, cluster, fam, blocks, per_node) in cases {
        let r = plan_of(&cluster_yaml(version, cluster, 0));
        let f = family(&r, *fam);
        let b = f
            .node_blocks
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no node blocks"));
        assert_eq!((b.total, b.max_nodes), (*blocks, *blocks), "{what}");
        assert_eq!(
            f.pod_ips.as_ref().map(|p| p.per_node),
            Some(*per_node),
            "{what}"
        );
    }
}

/// GKE's table: max-pods → the node mask with at least twice as many addresses; and /24 per
/// node at 110 max-pods.
#[test]
fn gke_node_masks_for_max_pods() {
    let table: &[(u32, u8)] = &[
        (8, 28),
        (12, 27),
        (16, 27),
        (17, 26),
        (32, 26),
        (33, 25),
        (64, 25),
        (65, 24),
        (110, 24),
    ];
    for &(max_pods, mask) in table {
        let yaml = cluster_yaml(
            "1.33",
            &format!(
                "kube-controller-manager: {{allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/14}}\nkubelet: {{max-pods: {max_pods}}}"
            ),
            0,
        );
        let r = plan_of(&yaml);
        assert_eq!(r.single.max_pods, max_pods);
        let p = family(&r, Family::IPv4)
            .pod_ips
            .clone()
            .expect("host-local");
        assert_eq!(p.gke_node_mask, Some(mask), "max-pods {max_pods}");
    }
}

#[test]
fn service_range_figures() {
    // (version, range, family, allocator, total, static band, available)
    let cases: &[(&str, &str, Family, &str, u128, u128, u128)] = &[
        (
            "1.30",
            "10.96.0.0/12",
            Family::IPv4,
            "bitmap",
            1_048_574,
            256,
            1_048_573,
        ),
        (
            "1.33",
            "10.96.0.0/12",
            Family::IPv4,
            "IPAddress",
            1_048_574,
            256,
            1_048_573,
        ),
        (
            "1.33",
            "10.96.0.0/16,fd00:10:96::/112",
            Family::IPv6,
            "IPAddress",
            65_535,
            256,
            65_535,
        ),
        (
            "1.30",
            "10.96.0.0/16,fd00:10:96::/108",
            Family::IPv6,
            "bitmap",
            65_535,
            256,
            65_535,
        ),
        (
            "1.34",
            "10.96.0.0/16,fd00:10:96::/108",
            Family::IPv6,
            "IPAddress",
            1_048_575,
            256,
            1_048_575,
        ),
        ("1.24", "10.96.0.0/24", Family::IPv4, "bitmap", 254, 0, 253),
        ("1.26", "10.96.0.0/24", Family::IPv4, "bitmap", 254, 16, 253),
        ("1.26", "10.96.0.0/28", Family::IPv4, "bitmap", 14, 0, 13),
    ];
    for (version, range, fam, allocator, total, static_band, available) in cases {
        let r = plan_of(&cluster_yaml(
            version,
            &format!("kube-apiserver: {{service-cluster-ip-range: \"{range}\"}}"),
            0,
        ));
        let s = family(&r, *fam)
            .service_ips
            .clone()
            .unwrap_or_else(|| panic!("{version} {range}"));
        assert_eq!(
            (s.allocator, s.total, s.static_band, s.available),
            (*allocator, *total, *static_band, *available),
            "{version} {range} {fam}"
        );
    }
}

/// Every error, with the releases it applies to, in the component's own words.
#[test]
fn configuration_errors_name_their_releases() {
    // (cluster section, version, component, message, releases)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "kube-apiserver: {service-cluster-ip-range: \"fd00:10:96::/112\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"fd00::/47\"}",
            "1.33",
            "kube-controller-manager",
            "New CIDR set failed; the node CIDR size is too big",
            "1.24-1.37",
        ),
        (
            "kube-apiserver: {service-cluster-ip-range: \"fd00:10:96::/112\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"fd00::/47\"}",
            "1.20",
            "kube-controller-manager",
            "error starting controllers: New CIDR set failed; the node CIDR size is too big",
            "1.17-1.23",
        ),
        (
            "kube-apiserver: {service-cluster-ip-range: \"10.96.0.0/16,fd00:10:96::/100\"}",
            "1.30",
            "kube-apiserver",
            "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108",
            "1.21-1.33",
        ),
        (
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/16, node-cidr-mask-size: 12}",
            "1.33",
            "kube-controller-manager",
            "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family",
            "1.17-1.37",
        ),
    ];
    for (cluster, version, component, message, releases) in cases {
        let r = plan_of(&cluster_yaml(version, cluster, 0));
        let found = r.single.versions.outcomes.iter().find(|o| {
            o.component == *component && o.message == *message && o.severity == Severity::Error
        });
        let Some(o) = found else {
            panic!(
                "{cluster}: no `{message}` in {:#?}",
                r.single.versions.outcomes
            );
        };
        if !releases.is_empty() {
            assert_eq!(o.versions.to_string(), *releases, "{cluster}");
        }
        assert!(o.applies, "{cluster}: applies to {version}");
        assert!(!r.single.meets_target, "{cluster}");
    }
}

#[test]
fn overlaps_are_found() {
    let cases: &[(&str, &str)] = &[
        (
            "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/20}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.96.0.0/16, service-cluster-ip-range: 10.96.0.0/20}",
            "cluster CIDR 10.96.0.0/16 overlaps Service range 10.96.0.0/20: kube-controller-manager keeps the 16 node blocks it covers out of use",
        ),
        (
            "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/20}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.96.0.0/16}",
            "cluster CIDR 10.96.0.0/16 overlaps Service range 10.96.0.0/20, which kube-controller-manager's --service-cluster-ip-range does not name: nodes can get podCIDRs that hold ClusterIPs",
        ),
        (
            "kube-apiserver: {service-cluster-ip-range: 172.18.0.0/24}",
            "Service range 172.18.0.0/24 overlaps the node network: 172.18.0.0/16 (default node addresses)",
        ),
    ];
    for (cluster, finding) in cases {
        let yaml = format!("{}nodes:\n  - name: a\n", cluster_yaml("1.33", cluster, 0));
        let r = plan_of(&yaml);
        let msgs: Vec<&str> = r
            .single
            .findings
            .iter()
            .map(|f| f.message.as_str())
            .collect();
        assert!(msgs.contains(finding), "{cluster}: {msgs:#?}");
    }
    // The reserved blocks are taken from the node count.
    let r = plan_of(&cluster_yaml("1.33", cases[0].0, 0));
    let b = family(&r, Family::IPv4)
        .node_blocks
        .clone()
        .expect("blocks");
    assert_eq!((b.total, b.reserved, b.max_nodes), (256, 16, 240));
}

// ---------------------------------------------------------------------------------------------
// The planner against `run`

/// The planner's figures for one configuration equal what `knetsim run` allocates when the
/// cluster is filled one node past what the planner says it holds.
#[test]
fn figures_equal_what_run_allocates_when_filled() {
    let cases: &[(&str, &str)] = &[
        (
            "IPv4 /22 in /24s",
            "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/16}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/22, service-cluster-ip-range: 10.96.0.0/16}",
        ),
        (
            "dual-stack, both /28 in /24 and /124 in /120",
            "kube-apiserver: {service-cluster-ip-range: \"10.96.0.0/24,fd00:10:96::/116\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"10.244.0.0/24,fd00:10:244::/120\", node-cidr-mask-size-ipv4: 28, node-cidr-mask-size-ipv6: 124}",
        ),
        (
            "a Service range inside the cluster CIDR",
            "kube-apiserver: {service-cluster-ip-range: 10.0.0.0/24}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.0.0.0/22, node-cidr-mask-size: 26, service-cluster-ip-range: 10.0.0.0/24}",
        ),
        (
            "IPv6 primary, IPv4 binds first and leaks IPv6 blocks",
            "kube-apiserver: {service-cluster-ip-range: \"fd00:10:96::/112,10.96.0.0/16\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"fd00:10:244::/56,10.1.0.0/20\"}",
        ),
        (
            "IPv6 single-stack /60 in /64s",
            "kube-apiserver: {service-cluster-ip-range: \"fd00:10:96::/108\"}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: \"fd00:10:244::/60\"}",
        ),
    ];
    for version in ["1.30", "1.33"] {
        for (what, cluster) in cases {
            let empty = plan_of(&cluster_yaml(version, cluster, 0));
            let max = empty.single.max_nodes.as_ref().expect("a node limit").value as u64;
            let yaml = cluster_yaml(version, cluster, max + 1);
            let s = scenario(&yaml);
            let report = plan(&s, &PlanOptions::default()).expect("plan");
            let state = knetsim_control::simulate(&s);
            let with_cidrs = state
                .nodes
                .values()
                .filter(|n| !n.spec.pod_cidrs.is_empty())
                .count() as u64;
            assert_eq!(with_cidrs, max, "{what} on {version}: nodes with podCIDRs");
            let not_available = state
                .events
                .iter()
                .filter(|e| e.reason == "CIDRNotAvailable")
                .count();
            assert_eq!(
                not_available, 1,
                "{what} on {version}: one node left without"
            );
            for f in &report.single.families {
                let cap = state
                    .capacity
                    .get(&f.family)
                    .unwrap_or_else(|| panic!("{what}: {} in run", f.family));
                if let Some(b) = &f.node_blocks {
                    let run = cap.node_cidrs.as_ref().expect("run's node CIDRs");
                    assert_eq!(
                        (b.cluster_cidr, b.node_mask, b.total, b.used, b.free),
                        (run.cidr, run.block_prefix, run.total, run.used, run.free),
                        "{what} on {version}: {} node blocks",
                        f.family
                    );
                }
                if let Some(sv) = &f.service_ips {
                    let run = cap.service_ips.as_ref().expect("run's Service IPs");
                    assert_eq!(
                        (sv.cidr, sv.allocator, sv.total, sv.static_band),
                        (run.cidr, run.allocator.as_str(), run.total, run.static_band),
                        "{what} on {version}: {} Service IPs",
                        f.family
                    );
                }
                if let Some(p) = &f.pod_ips {
                    let run = cap.pod_ips.as_ref().expect("run's pod IPs");
                    assert_eq!(
                        p.per_node, run.per_node,
                        "{what} on {version}: {} pod IPs per node",
                        f.family
                    );
                }
            }
        }
    }
}

/// Calico's block figures are `run`'s per-node capacity, and its pools are `run`'s pools.
#[test]
fn calico_figures_equal_runs_pools() {
    let cluster = "kube-apiserver: {service-cluster-ip-range: \"10.96.0.0/16,fd00:10:96::/112\"}\ncni:\n  plugin: calico\n  calico:\n    ipam: {type: calico-ipam, assign_ipv4: \"true\", assign_ipv6: \"true\"}\n    env: {CALICO_IPV4POOL_CIDR: 10.48.0.0/16, CALICO_IPV4POOL_BLOCK_SIZE: \"24\"}";
    let yaml = cluster_yaml("1.33", cluster, 2);
    let s = scenario(&yaml);
    let report = plan(&s, &PlanOptions::default()).expect("plan");
    let state = knetsim_control::simulate(&s);
    let pools = &state.calico.as_ref().expect("calico state").ip_pools;
    for f in &report.single.families {
        let c = f.calico.as_ref().expect("calico figures");
        let run_pool = pools
            .iter()
            .find(|p| Family::of_net(&p.cidr) == f.family)
            .expect("run's pool");
        assert_eq!(
            (c.pools[0], c.block_size),
            (run_pool.cidr, run_pool.block_size),
            "{}",
            f.family
        );
        let run_cap = state.capacity[&f.family].pod_ips.as_ref().expect("pod IPs");
        assert_eq!(c.addresses_per_block, run_cap.per_node, "{}", f.family);
    }
    let v4 = family(&report, Family::IPv4).calico.clone().expect("IPv4");
    assert_eq!(
        (v4.blocks, v4.addresses, v4.addresses_per_block),
        (256, 65536, 256)
    );
}

// ---------------------------------------------------------------------------------------------
// Closed forms against the allocators filled by hand

#[test]
fn node_blocks_equal_filling_the_range_allocator() {
    // (cluster CIDRs, masks, Service CIDRs)
    let cases: &[(&[&str], &[u8], &[&str])] = &[
        (&["10.244.0.0/22"], &[24], &[]),
        (&["10.0.0.0/22"], &[26], &["10.0.0.0/24"]),
        (&["10.0.0.0/24"], &[30], &["10.0.0.4/30", "10.0.0.128/25"]),
        (&["fd00::/120"], &[124], &["fd00::/123"]),
        (
            &["10.244.0.0/24", "fd00::/120"],
            &[28, 124],
            &["10.244.0.0/26"],
        ),
        (&["fd00::/112", "10.1.0.0/28"], &[120, 30], &[]),
        (&["192.168.5.219/28"], &[30], &[]),
        (&["10.0.0.0/16"], &[16], &[]),
    ];
    for (clusters, masks, services) in cases {
        let clusters: Vec<IpNet> = clusters.iter().map(|c| net(c)).collect();
        let services: Vec<IpNet> = services.iter().map(|c| net(c)).collect();
        let fresh = RangeAllocator::new(&clusters, masks, &services, &[]).expect("allocator");
        // The planner's figure: a set's free blocks before any node joins.
        let predicted: Vec<u64> = fresh.sets().iter().map(CidrSet::free).collect();
        let mut filled = fresh.clone();
        let mut nodes = 0u64;
        while filled.allocate().is_ok() {
            nodes += 1;
        }
        assert_eq!(
            nodes,
            *predicted.iter().min().expect("a set"),
            "{clusters:?}"
        );
        // Single sets, filled on their own, give exactly their free count.
        for (i, c) in clusters.iter().enumerate() {
            let mut set = RangeAllocator::new(&[*c], &[masks[i]], &services, &[]).expect("set");
            let mut n = 0u64;
            while set.allocate().is_ok() {
                n += 1;
            }
            assert_eq!(n, predicted[i], "{c} /{}", masks[i]);
        }
    }
}

#[test]
fn pod_addresses_equal_filling_host_local() {
    for subnet in [
        "10.244.1.0/24",
        "10.0.0.0/28",
        "10.0.0.0/30",
        "10.0.0.0/31",
        "fd00::/120",
        "fd00::/126",
        "fd00::/127",
    ] {
        let subnet = net(subnet);
        let mut h = HostLocal::new(subnet);
        let mut n = 0u128;
        while h.allocate().is_some() {
            n += 1;
        }
        assert_eq!(n, host_local_capacity(&subnet), "{subnet}");
    }
}

#[test]
fn service_ips_equal_filling_the_service_allocators() {
    for (cidr, kind) in [
        ("10.96.0.0/24", AllocatorKind::Bitmap),
        ("10.96.0.0/24", AllocatorKind::IpAddress),
        ("10.96.0.0/28", AllocatorKind::Bitmap),
        ("10.96.0.0/20", AllocatorKind::IpAddress),
        ("fd00::/116", AllocatorKind::Bitmap),
        ("fd00::/116", AllocatorKind::IpAddress),
        ("fd00::/111", AllocatorKind::Bitmap),
    ] {
        let cidr = net(cidr);
        let mut a =
            ServiceIpAllocator::new(cidr, kind, true, rng::named(1, "test")).expect("allocator");
        let mut static_hits = 0u128;
        let mut n = 0u128;
        let first = knetsim_ipam::family::ip_to_u128(cidr.network()) + 1;
        let band = calculate_range_offset(&cidr);
        while let Ok(ip) = a.allocate_next() {
            n += 1;
            // Dynamic allocation reaches the static band only once the dynamic band is full.
            if knetsim_ipam::family::ip_to_u128(ip) < first + band {
                static_hits += 1;
                assert!(
                    n > service_range_size(&cidr, kind) - band,
                    "{cidr} {kind:?}: static band used early"
                );
            }
        }
        assert_eq!(n, service_range_size(&cidr, kind), "{cidr} {kind:?}");
        assert_eq!(static_hits, band.min(n), "{cidr} {kind:?}");
    }
}

/// The growth model counts Services against the allocator's size: under any churn, the real
/// allocators give an address exactly while fewer than `size` are taken.
#[test]
fn service_allocators_under_churn_agree_with_the_count() {
    use rand::RngExt;
    for (cidr, kind) in [
        ("10.96.0.0/26", AllocatorKind::Bitmap),
        ("10.96.0.0/26", AllocatorKind::IpAddress),
        ("10.96.0.0/28", AllocatorKind::IpAddress),
        ("fd00::/120", AllocatorKind::Bitmap),
        ("fd00::/121", AllocatorKind::IpAddress),
    ] {
        let cidr = net(cidr);
        let size = service_range_size(&cidr, kind);
        let mut a = ServiceIpAllocator::new(cidr, kind, true, rng::named(3, "test/alloc"))
            .expect("allocator");
        let mut draws = rng::named(3, "test/churn");
        let mut held: Vec<std::net::IpAddr> = Vec::new();
        for step in 0..4000 {
            // Mostly allocations, so that the range fills and empties again and again.
            if held.is_empty() || draws.random_range(0..10) < 6 {
                let got = a.allocate_next();
                assert_eq!(
                    got.is_ok(),
                    (held.len() as u128) < size,
                    "{cidr} {kind:?} step {step}"
                );
                if let Ok(ip) = got {
                    held.push(ip);
                }
            } else {
                let i = draws.random_range(0..held.len());
                a.release(held.swap_remove(i));
            }
            assert_eq!(a.used(), held.len() as u128);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sweeps and growth

fn load_bundled(name: &str) -> Scenario {
    let path = root().join("scenarios/plan").join(name);
    let loaded = load_scenario(&path, &FsLoader);
    let rendered = loaded.render();
    loaded.value.unwrap_or_else(|| panic!("{name}: {rendered}"))
}

#[test]
fn sweep_output_is_the_same_with_one_or_two_threads() {
    let s = load_bundled("gke-max-pods.yaml");
    let opts = PlanOptions {
        skip_growth: true,
        ..Default::default()
    };
    let reports: Vec<String> = [1, 2]
        .into_iter()
        .map(|n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("pool");
            let r = pool.install(|| plan(&s, &opts)).expect("plan");
            serde_json::to_string(&r).expect("json")
        })
        .collect();
    assert_eq!(reports[0], reports[1]);
}

#[test]
fn sweep_ranks_by_address_use_and_says_why_the_others_fail() {
    let r = plan(&load_bundled("gke-max-pods.yaml"), &PlanOptions::default()).expect("plan");
    let sw = r.sweep.expect("a sweep");
    assert_eq!(sw.evaluated, 6 * 5);
    let ranked = sw.ranked();
    // Same cluster CIDR everywhere: the ranking falls back to input order.
    assert_eq!(
        ranked[0].index,
        ranked.iter().map(|r| r.index).min().unwrap()
    );
    for row in &sw.rows {
        let mask = row.ipv4_node_mask.expect("mask");
        let per_node = host_local_capacity(&IpNet::new("10.0.0.0".parse().unwrap(), mask).unwrap());
        let nodes = 1u128 << (mask - 14);
        let fits = per_node >= u128::from(row.max_pods) && nodes >= 1000;
        assert_eq!(
            row.meets_target, fits,
            "/{mask} max-pods {}: {:?}",
            row.max_pods, row.reason
        );
        if !fits {
            let want = if nodes < 1000 {
                "nodeBlocks/IPv4"
            } else {
                "podCidr/IPv4"
            };
            assert_eq!(
                row.failed.as_deref(),
                Some(want),
                "/{mask} max-pods {}",
                row.max_pods
            );
        }
    }
}

fn growth_scenario(cluster: &str, growth: &str) -> Scenario {
    let mut yaml = cluster_yaml("1.33", cluster, 0);
    yaml.push_str("plan:\n  growth:\n");
    for line in growth.lines() {
        yaml.push_str("    ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    scenario(&yaml)
}

#[test]
fn growth_is_deterministic_for_a_seed_and_any_thread_count() {
    let s = load_bundled("target-5000.yaml");
    let opts = PlanOptions {
        skip_sweep: true,
        runs: Some(12),
        ..Default::default()
    };
    let out: Vec<String> = [1, 2, 2]
        .into_iter()
        .map(|n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("pool");
            let r = pool.install(|| plan(&s, &opts)).expect("plan");
            serde_json::to_string(&r.growth).expect("json")
        })
        .collect();
    assert_eq!(out[0], out[1]);
    assert_eq!(out[1], out[2]);
    let mut other = s.clone();
    other.seed += 1;
    let r = plan(&other, &opts).expect("plan");
    assert_ne!(
        serde_json::to_string(&r.growth).expect("json"),
        out[0],
        "the seed matters"
    );
}

/// Pools that run out on day 0 in every run, or never, whatever the draws.
#[test]
fn growth_exhaustion_days() {
    let host_local = "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/28}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/22}";
    let calico = |strict: bool| {
        format!(
            "kube-apiserver: {{service-cluster-ip-range: 10.96.0.0/24}}\ncni:\n  plugin: calico\n  calico:\n    env: {{CALICO_IPV4POOL_CIDR: 10.48.0.0/24, FELIX_IPV6SUPPORT: \"false\"}}\n    ipamConfig: {{strictAffinity: {strict}}}"
        )
    };
    /// (what, cluster, growth, pool, runs exhausted of 5, p50)
    type Case = (
        &'static str,
        String,
        &'static str,
        &'static str,
        usize,
        Option<u32>,
    );
    let cases: Vec<Case> = vec![
        (
            "4 blocks, 5 nodes",
            host_local.to_string(),
            "runs: 5\ndays: 3\ninitialNodes: 5",
            "nodeBlocks/IPv4",
            5,
            Some(0),
        ),
        (
            "4 blocks, 4 nodes",
            host_local.to_string(),
            "runs: 5\ndays: 3\ninitialNodes: 4",
            "nodeBlocks/IPv4",
            0,
            None,
        ),
        (
            "13 ClusterIPs, 13 Services",
            host_local.to_string(),
            "runs: 5\ndays: 3\ninitialServices: 13",
            "serviceIps/IPv4",
            0,
            None,
        ),
        (
            "13 ClusterIPs, 14 Services",
            host_local.to_string(),
            "runs: 5\ndays: 3\ninitialServices: 14",
            "serviceIps/IPv4",
            5,
            Some(0),
        ),
        (
            "253 addresses, 300 pods",
            host_local.to_string(),
            "runs: 5\ndays: 3\ninitialNodes: 1\npodsPerNode: 300",
            "podCidr/IPv4",
            5,
            Some(0),
        ),
        (
            "4 blocks strict, 5 nodes",
            calico(true),
            "runs: 5\ndays: 3\ninitialNodes: 5\npodsPerNode: 1",
            "calicoAddresses/IPv4",
            5,
            Some(0),
        ),
        (
            "4 blocks borrowing, 5 nodes",
            calico(false),
            "runs: 5\ndays: 3\ninitialNodes: 5\npodsPerNode: 1",
            "calicoAddresses/IPv4",
            0,
            None,
        ),
        (
            "4 blocks borrowing, 5 nodes",
            calico(false),
            "runs: 5\ndays: 3\ninitialNodes: 5\npodsPerNode: 1",
            "calicoBlocks/IPv4",
            5,
            Some(0),
        ),
        (
            "256 addresses, 257 pods",
            calico(false),
            "runs: 5\ndays: 3\ninitialNodes: 257\npodsPerNode: 1",
            "calicoAddresses/IPv4",
            5,
            Some(0),
        ),
    ];
    for (what, cluster, growth, pool, exhausted, p50) in cases {
        let s = growth_scenario(&cluster, growth);
        let r = plan(&s, &PlanOptions::default()).expect("plan");
        let g = r.growth.expect("growth");
        let p = g
            .pools
            .iter()
            .find(|p| p.pool == pool)
            .unwrap_or_else(|| panic!("{what}: no {pool} in {:?}", g.pools));
        assert_eq!(
            (p.runs_exhausted, p.p50),
            (exhausted, p50),
            "{what}: {pool}"
        );
    }
}

/// The bundled 5,000-node model: IPv4 node blocks run out around day (4096 - 3000) / 8.
#[test]
fn growth_of_the_5000_node_model() {
    let s = load_bundled("target-5000.yaml");
    let r = plan(
        &s,
        &PlanOptions {
            skip_sweep: true,
            runs: Some(40),
            ..Default::default()
        },
    )
    .expect("plan");
    let g = r.growth.expect("growth");
    let v4 = g
        .pools
        .iter()
        .find(|p| p.pool == "nodeBlocks/IPv4")
        .expect("IPv4 blocks");
    assert_eq!(v4.runs_exhausted, 40);
    let p50 = v4.p50.expect("runs out");
    assert!((120..=155).contains(&p50), "p50 day {p50}");
    assert!(v4.p50 <= v4.p90 && v4.p90 <= v4.p99);
    let v6 = g
        .pools
        .iter()
        .find(|p| p.pool == "nodeBlocks/IPv6")
        .expect("IPv6 blocks");
    assert_eq!((v6.runs_exhausted, v6.p50), (0, None));
}

// ---------------------------------------------------------------------------------------------
// Inputs

#[test]
fn plan_section_problems_are_diagnostics() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/16}\nkube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/16}",
            "sweep: {ipv6NodeMask: [64, 80]}",
            "`ipv6NodeMask` sweeps the IPv6 cluster CIDR, but the cluster has none",
        ),
        (
            "kube-apiserver: {service-cluster-ip-range: 10.96.0.0/16}",
            "sweep: {ipv4ClusterPrefix: [8, 20]}",
            "`ipv4ClusterPrefix` sweeps the IPv4 cluster CIDR, but the cluster has none",
        ),
        (
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/16}",
            "sweep: {ipv4ClusterPrefix: [0, 32], ipv4NodeMask: [0, 32], ipv4ServicePrefix: [0, 32], maxPods: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]}",
            "the sweep asks for more than 1000000 configurations",
        ),
        ("", "target: {nodes: -1}", "`nodes` is out of range"),
    ];
    for (cluster, section, message) in cases {
        let mut yaml = cluster_yaml(
            "1.33",
            if cluster.is_empty() {
                "kubelet: {}"
            } else {
                cluster
            },
            0,
        );
        yaml.push_str(&format!("plan:\n  {section}\n"));
        let diags = plan(&scenario(&yaml), &PlanOptions::default()).expect_err("errors");
        let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs.contains(message), "{section}: {msgs:?}");
        assert!(
            diags.iter().all(|d| d.span.is_some()),
            "{section}: every diagnostic has a place"
        );
    }
}

#[test]
fn a_cluster_section_alone_plans_like_a_scenario() {
    let bare = "kube-apiserver:\n  service-cluster-ip-range: 10.96.0.0/16\nkube-controller-manager:\n  allocate-node-cidrs: true\n  cluster-cidr: 10.244.0.0/16\n";
    let nameless = format!(
        "kubernetesVersion: \"1.30\"\ncluster:\n{}",
        bare.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let files = Files(BTreeMap::from([
        (PathBuf::from("cluster.yaml"), bare.to_string()),
        (PathBuf::from("nameless.yaml"), nameless),
        (
            PathBuf::from("broken.yaml"),
            "kubelet:\n  max-pods: lots\n".to_string(),
        ),
    ]));
    for (file, name, version) in [
        ("cluster.yaml", "cluster", KubeVersion::NEWEST),
        ("nameless.yaml", "nameless", KubeVersion::new(30)),
    ] {
        let loaded = knetsim_plan::load_input(Path::new(file), &files);
        let rendered = loaded.render();
        let s = loaded.value.unwrap_or_else(|| panic!("{file}: {rendered}"));
        assert_eq!((s.name.as_str(), s.version), (name, version), "{file}");
        let r = plan(&s, &PlanOptions::default()).expect("plan");
        assert_eq!(
            family(&r, Family::IPv4)
                .node_blocks
                .as_ref()
                .map(|b| b.total),
            Some(256),
            "{file}"
        );
    }
    // A mistake in a bare section is reported where it is in the file.
    let loaded = knetsim_plan::load_input(Path::new("broken.yaml"), &files);
    assert!(loaded.value.is_none());
    let d = &loaded.diagnostics[0];
    let span = d.span.expect("a place");
    assert_eq!((span.line, span.col), (2, 13), "{}", loaded.render());
    assert_eq!(
        &"kubelet:\n  max-pods: lots\n"[span.start..span.end],
        "lots"
    );
}

// ---------------------------------------------------------------------------------------------
// The bundled planning scenarios

fn bundled() -> Vec<String> {
    let dir = root().join("scenarios/plan");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios/plan")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn bundled_scenario_reports_are_snapshotted() {
    let files = bundled();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let r = plan(&load_bundled(&file), &PlanOptions::default())
            .unwrap_or_else(|d| panic!("{file}: {d:?}"));
        let name = file.trim_end_matches(".yaml").to_string();
        insta::with_settings!({snapshot_path => root().join("snapshots/plan"), prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(name.clone(), knetsim_plan::render_table(&r));
        });
        if name == "kind-defaults" || name == "target-5000" {
            insta::with_settings!({snapshot_path => root().join("snapshots/plan"), prepend_module_to_snapshot => false, omit_expression => true}, {
                insta::assert_snapshot!(format!("{name}.svg"), knetsim_plan::render_svg(&r));
            });
        }
    }
}

#[test]
fn csv_tables() {
    let r = plan(&load_bundled("gke-max-pods.yaml"), &PlanOptions::default()).expect("plan");
    let csv = knetsim_plan::render_csv(&r);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 30,
        "a header and one row per configuration"
    );
    assert!(lines[0].starts_with("index,rank,meetsTarget,ipv4ClusterCidr,ipv4NodeMask,"));
    let single = knetsim_plan::render_csv_table(&r, knetsim_plan::CsvTable::Single);
    assert!(single.contains("nodeBlocks,IPv4,total,4096\n"), "{single}");
    assert!(single.contains("podIps,IPv4,gkeNodeMask,26\n"), "{single}");
}

#[test]
fn node_ips_from_the_scenario_are_the_underlay() {
    let yaml = format!(
        "{}nodes:\n  - name: a\n    node-ip: 10.244.3.7\n",
        cluster_yaml(
            "1.33",
            "kube-controller-manager: {allocate-node-cidrs: true, cluster-cidr: 10.244.0.0/16}",
            0
        )
    );
    let r = plan_of(&yaml);
    let msgs: Vec<&str> = r
        .single
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        msgs.contains(&"cluster CIDR 10.244.0.0/16 overlaps the node network: 10.244.3.7 (node a)"),
        "{msgs:?}"
    );
}

/// The progress hook counts sweep configurations and growth runs together, and ends at the
/// total.
#[test]
fn progress_reaches_the_total() {
    use std::sync::Mutex;
    let s = load_bundled("gke-max-pods.yaml");
    let mut with_growth = s.clone();
    with_growth.plan = Some(
        knetsim_model::yaml::parse_stream(
            knetsim_model::FileId(0),
            "sweep: {ipv4NodeMask: [23, 28], maxPods: [8, 16, 32, 64, 110]}\ngrowth: {runs: 7, days: 2}\n",
        )
        .0
        .remove(0),
    );
    let seen: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let hook = |done: u64, total: u64| seen.lock().expect("lock").push((done, total));
    let opts = PlanOptions {
        progress: Some(&hook),
        ..Default::default()
    };
    plan(&with_growth, &opts).expect("plan");
    let seen = seen.into_inner().expect("lock");
    assert!(seen.iter().all(|&(d, t)| t == 37 && d <= t), "{seen:?}");
    assert_eq!(seen.iter().map(|&(d, _)| d).max(), Some(37));
}

/// The seed guide's /94 IPv6 Service range fails on 1.30; a sweep of that range says which
/// prefixes kube-apiserver accepts there, in its own words.
#[test]
fn sweeping_a_refused_service_range() {
    let mut s = load_bundled("seed-guide.yaml");
    s.plan = Some(
        knetsim_model::yaml::parse_stream(
            knetsim_model::FileId(0),
            "target: {nodes: 10, podsPerNode: 10}\nsweep: {ipv6ServicePrefix: [104, 112]}\n",
        )
        .0
        .remove(0),
    );
    let r = plan(&s, &PlanOptions::default()).expect("plan");
    let sw = r.sweep.expect("sweep");
    for row in &sw.rows {
        let prefix = row.ipv6_service_cidr.expect("IPv6 range").prefix_len();
        if prefix < 108 {
            assert_eq!(row.failed.as_deref(), Some("kube-apiserver"), "/{prefix}");
            assert_eq!(
                row.reason.as_deref(),
                Some(
                    "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108"
                ),
                "/{prefix}"
            );
        } else {
            assert!(row.meets_target, "/{prefix}: {:?}", row.reason);
        }
    }
    // Smallest range first among those that pass.
    assert_eq!(
        sw.ranked()[0].ipv6_service_cidr.map(|c| c.prefix_len()),
        Some(112)
    );
}
