//! End-to-end checks on a small dual-stack cluster: traces across the fabric (routes,
//! forwarding sysctls, masquerade, the external network), rendered rules and routes as
//! snapshots, and the rule files `tests/kernel-load.sh` loads into a real kernel.

use knetsim_control::state::{
    BlockAffinity, CalicoPool, CalicoState, ClientIpConfig, SessionAffinityConfig,
};
use knetsim_ipam::Family::{self, IPv4, IPv6};

use crate::config::{AddressRange, FabricConfig};
use crate::fabric::CalicoInfo;
use crate::masq::masq_agent;
use crate::testkit::{ClusterBuilder, Ep};
use crate::trace::{Outcome, TraceQuery};
use crate::{
    Cni, Dataplane, build_with, render_iptables_save, render_nft, render_routes, render_trace_text,
    trace,
};

pub(crate) fn cluster(mode: &str, minor: u16) -> ClusterBuilder {
    ClusterBuilder::new(
        minor,
        mode,
        &["10.96.0.0/16", "fd00:10:96::/112"],
        &["10.244.0.0/16", "fd00:10:244::/56"],
    )
    .node(
        "node-1",
        &["192.168.0.11", "fd00:192:168::11"],
        &["10.244.0.0/24", "fd00:10:244::/64"],
    )
    .node(
        "node-2",
        &["192.168.0.12", "fd00:192:168::12"],
        &["10.244.1.0/24", "fd00:10:244:1::/64"],
    )
    .pod(
        "default",
        "client",
        "node-1",
        &["10.244.0.5", "fd00:10:244::5"],
    )
    .pod(
        "default",
        "web-1",
        "node-1",
        &["10.244.0.6", "fd00:10:244::6"],
    )
    .pod(
        "default",
        "web-2",
        "node-2",
        &["10.244.1.7", "fd00:10:244:1::7"],
    )
    .service(
        "default",
        "web",
        "ClusterIP",
        &["10.96.0.10", "fd00:10:96::10"],
        &[("http", 80, 0)],
        |_, _| {},
    )
    .slice(
        "default",
        "web",
        IPv4,
        &[("http", 8080)],
        &[
            Ep::on("10.244.0.6", "node-1"),
            Ep::on("10.244.1.7", "node-2"),
        ],
    )
    .slice(
        "default",
        "web",
        IPv6,
        &[("http", 8080)],
        &[
            Ep::on("fd00:10:244::6", "node-1"),
            Ep::on("fd00:10:244:1::7", "node-2"),
        ],
    )
    .service(
        "default",
        "web-local",
        "NodePort",
        &["10.96.0.11", "fd00:10:96::11"],
        &[("http", 80, 30080)],
        |s, _| {
            s.external_traffic_policy = Some("Local".into());
        },
    )
    .slice(
        "default",
        "web-local",
        IPv4,
        &[("http", 8080)],
        &[
            Ep::on("10.244.0.6", "node-1"),
            Ep::on("10.244.1.7", "node-2"),
        ],
    )
    .slice(
        "default",
        "web-local",
        IPv6,
        &[("http", 8080)],
        &[
            Ep::on("fd00:10:244::6", "node-1"),
            Ep::on("fd00:10:244:1::7", "node-2"),
        ],
    )
    .service(
        "default",
        "web-lb",
        "LoadBalancer",
        &["10.96.0.12", "fd00:10:96::12"],
        &[("http", 80, 30081)],
        |s, _| {
            s.load_balancer_source_ranges = vec![
                "203.0.113.0/24".parse().unwrap(),
                "2001:db8:ffff::/48".parse().unwrap(),
            ];
            s.session_affinity = Some("ClientIP".into());
            s.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: ClientIpConfig {
                    timeout_seconds: 10800,
                },
            });
        },
    )
    .slice(
        "default",
        "web-lb",
        IPv4,
        &[("http", 8080)],
        &[Ep::on("10.244.1.7", "node-2")],
    )
    .slice(
        "default",
        "web-lb",
        IPv6,
        &[("http", 8080)],
        &[Ep::on("fd00:10:244:1::7", "node-2")],
    )
    .service(
        "default",
        "web-ext",
        "ClusterIP",
        &["10.96.0.13"],
        &[("", 8443, 0)],
        |s, _| {
            s.external_ips = vec!["192.168.0.200".parse().unwrap()];
        },
    )
    .slice(
        "default",
        "web-ext",
        IPv4,
        &[("", 8443)],
        &[Ep::on("10.244.0.6", "node-1")],
    )
    .service(
        "default",
        "empty",
        "ClusterIP",
        &["10.96.0.14", "fd00:10:96::14"],
        &[("http", 80, 0)],
        |_, _| {},
    )
    .service(
        "default",
        "v4-only",
        "ClusterIP",
        &["10.96.0.15"],
        &[("http", 80, 0)],
        |_, _| {},
    )
    .slice(
        "default",
        "v4-only",
        IPv4,
        &[("http", 8080)],
        &[Ep::on("10.244.1.7", "node-2")],
    )
}

pub(crate) fn fabric() -> FabricConfig {
    FabricConfig {
        lb_addresses: vec![
            AddressRange {
                first: "198.51.100.10".parse().unwrap(),
                last: "198.51.100.20".parse().unwrap(),
            },
            AddressRange {
                first: "2001:db8:1b::10".parse().unwrap(),
                last: "2001:db8:1b::1f".parse().unwrap(),
            },
        ],
        ..FabricConfig::default()
    }
}

pub(crate) fn host_local(mode: &str) -> Dataplane {
    build_with(cluster(mode, 34).build(), Cni::HostLocal, &fabric(), None)
}

pub(crate) fn calico(ipv6_support: bool, v6_nat: bool) -> Dataplane {
    let state = cluster("iptables", 34)
        .cni("calico")
        .calico(CalicoState {
            ip_pools: vec![
                CalicoPool {
                    name: "default-ipv4-ippool".into(),
                    cidr: "10.244.0.0/16".parse().unwrap(),
                    block_size: 26,
                    nat_outgoing: true,
                    disabled: false,
                },
                CalicoPool {
                    name: "default-ipv6-ippool".into(),
                    cidr: "fd00:10:244::/48".parse().unwrap(),
                    block_size: 122,
                    nat_outgoing: v6_nat,
                    disabled: false,
                },
            ],
            block_affinities: vec![
                BlockAffinity {
                    cidr: "10.244.0.0/26".parse().unwrap(),
                    node: "node-1".into(),
                },
                BlockAffinity {
                    cidr: "10.244.1.0/26".parse().unwrap(),
                    node: "node-2".into(),
                },
                BlockAffinity {
                    cidr: "fd00:10:244::/122".parse().unwrap(),
                    node: "node-1".into(),
                },
                BlockAffinity {
                    cidr: "fd00:10:244:1::/122".parse().unwrap(),
                    node: "node-2".into(),
                },
            ],
        })
        .build();
    let cni = Cni::Calico(CalicoInfo::from_state(&state, ipv6_support));
    build_with(&state, cni, &fabric(), None)
}

pub(crate) fn q(from: &str, to: &str, family: Option<Family>, port: Option<u16>) -> TraceQuery {
    TraceQuery {
        from: from.into(),
        to: to.into(),
        family,
        proto: "tcp".into(),
        port,
    }
}

pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) dp: fn() -> Dataplane,
    pub(crate) query: TraceQuery,
    pub(crate) verdict: Outcome,
    pub(crate) endpoints: &'static [&'static str],
    pub(crate) masq: bool,
    pub(crate) reason: &'static str,
}

pub(crate) fn hl() -> Dataplane {
    host_local("iptables")
}
pub(crate) fn hl_nft() -> Dataplane {
    host_local("nftables")
}
pub(crate) fn hl_no_v6_fwd() -> Dataplane {
    let s = cluster("iptables", 34)
        .sysctl("node-1", "net.ipv6.conf.all.forwarding", "0")
        .build();
    build_with(&s, Cni::HostLocal, &fabric(), None)
}
pub(crate) fn masq_agent_default() -> Dataplane {
    let (agent, _) = masq_agent(&Default::default());
    build_with(
        cluster("iptables", 34).build(),
        Cni::HostLocal,
        &fabric(),
        Some(&agent),
    )
}
pub(crate) fn calico_dual() -> Dataplane {
    calico(true, false)
}
pub(crate) fn calico_v6_nat() -> Dataplane {
    calico(true, true)
}
pub(crate) fn calico_no_felix_v6() -> Dataplane {
    calico(false, true)
}
pub(crate) fn kubenet() -> Dataplane {
    build_with(
        cluster("iptables", 34).cni("kubenet").build(),
        Cni::Kubenet,
        &fabric(),
        None,
    )
}

pub(crate) fn cases() -> Vec<Case> {
    let c = |name, dp, query, verdict, endpoints, masq, reason| Case {
        name,
        dp,
        query,
        verdict,
        endpoints,
        masq,
        reason,
    };
    use Outcome::*;
    vec![
        c(
            "pod to ClusterIP (IPv4) reaches both endpoints",
            hl as fn() -> Dataplane,
            q("default/client", "svc:default/web:http", None, None),
            Delivered,
            &["10.244.0.6:8080", "10.244.1.7:8080"],
            false,
            "",
        ),
        c(
            "pod to ClusterIP (IPv6) reaches both endpoints",
            hl,
            q("default/client", "svc:default/web:http", Some(IPv6), None),
            Delivered,
            &["[fd00:10:244::6]:8080", "[fd00:10:244:1::7]:8080"],
            false,
            "",
        ),
        c(
            "pod to ClusterIP in nftables mode",
            hl_nft,
            q("pod:default/client", "svc:default/web", Some(IPv6), None),
            Delivered,
            &["[fd00:10:244::6]:8080", "[fd00:10:244:1::7]:8080"],
            false,
            "",
        ),
        c(
            "pod to pod across nodes (IPv4)",
            hl,
            q("default/client", "default/web-2", None, Some(8080)),
            Delivered,
            &["10.244.1.7:8080"],
            false,
            "",
        ),
        c(
            "pod to pod across nodes (IPv6)",
            hl,
            q("default/client", "default/web-2", Some(IPv6), Some(8080)),
            Delivered,
            &["[fd00:10:244:1::7]:8080"],
            false,
            "",
        ),
        c(
            "pod to the internet over IPv4, masqueraded by kindnet",
            hl,
            q("default/client", "external", Some(IPv4), Some(443)),
            Delivered,
            &["203.0.113.10:443"],
            true,
            "",
        ),
        c(
            "pod to the internet over IPv6, masqueraded by kindnet",
            hl,
            q("default/client", "external", Some(IPv6), Some(443)),
            Delivered,
            &["[2001:db8:ffff::10]:443"],
            true,
            "",
        ),
        c(
            "ip-masq-agent without --enable-ipv6 leaves ULA sources: no return route",
            masq_agent_default,
            q("default/client", "external", Some(IPv6), Some(443)),
            Dropped,
            &[],
            false,
            "unique local address",
        ),
        c(
            "ip-masq-agent masquerades IPv4 to the internet",
            masq_agent_default,
            q("default/client", "external", Some(IPv4), Some(443)),
            Delivered,
            &["203.0.113.10:443"],
            true,
            "",
        ),
        c(
            "Calico natOutgoing (IPv6 default false): ULA pod cannot reach the internet",
            calico_dual,
            q("default/client", "external", Some(IPv6), Some(443)),
            Dropped,
            &[],
            false,
            "unique local address",
        ),
        c(
            "Calico with CALICO_IPV6POOL_NAT_OUTGOING=true reaches the internet",
            calico_v6_nat,
            q("default/client", "external", Some(IPv6), Some(443)),
            Delivered,
            &["[2001:db8:ffff::10]:443"],
            true,
            "",
        ),
        c(
            "Calico natOutgoing IPv4 default true",
            calico_dual,
            q("default/client", "external", Some(IPv4), Some(80)),
            Delivered,
            &["203.0.113.10:80"],
            true,
            "",
        ),
        c(
            "Calico pod to pod across nodes over block routes",
            calico_dual,
            q("default/client", "default/web-2", Some(IPv6), Some(8080)),
            Delivered,
            &["[fd00:10:244:1::7]:8080"],
            false,
            "",
        ),
        c(
            "FELIX_IPV6SUPPORT=false: no IPv6 routes to pods",
            calico_no_felix_v6,
            q("default/client", "default/web-2", Some(IPv6), Some(8080)),
            Dropped,
            &[],
            false,
            "no route to fd00:10:244:1::7",
        ),
        c(
            "kubenet: pods across nodes through the cloud route",
            kubenet,
            q("default/client", "default/web-2", Some(IPv4), Some(8080)),
            Delivered,
            &["10.244.1.7:8080"],
            false,
            "",
        ),
        c(
            "kubenet masquerades IPv4 only",
            kubenet,
            q("default/client", "external", Some(IPv6), Some(80)),
            Dropped,
            &[],
            false,
            "unique local address",
        ),
        c(
            "external to NodePort, policy Local, node with a local endpoint",
            hl,
            q("external", "node:node-1", Some(IPv4), Some(30080)),
            Delivered,
            &["10.244.0.6:8080"],
            false,
            "",
        ),
        c(
            "external to NodePort, policy Local, on the other node",
            hl,
            q("external", "node:node-2", Some(IPv6), Some(30080)),
            Delivered,
            &["[fd00:10:244:1::7]:8080"],
            false,
            "",
        ),
        c(
            "external to LB IP from the pool",
            hl,
            q("203.0.113.7", "198.51.100.10", None, Some(80)),
            Delivered,
            &["10.244.1.7:8080"],
            true,
            "",
        ),
        c(
            "external client outside loadBalancerSourceRanges",
            hl,
            q("198.18.0.1", "198.51.100.10", None, Some(80)),
            Dropped,
            &[],
            false,
            "loadBalancerSourceRanges",
        ),
        c(
            "hairpin: an endpoint to its own Service is masqueraded",
            hl,
            q("default/web-1", "svc:default/web-ext", None, None),
            Delivered,
            &["10.244.0.6:8443"],
            true,
            "",
        ),
        c(
            "Service without endpoints is rejected",
            hl,
            q("default/client", "svc:default/empty:http", Some(IPv6), None),
            Rejected,
            &[],
            false,
            "Service default/empty has no IPv6 endpoints",
        ),
        c(
            "IPv6 forwarding disabled on the sending pod's node",
            hl_no_v6_fwd,
            q("default/client", "default/web-2", Some(IPv6), Some(8080)),
            Dropped,
            &[],
            false,
            "IPv6 forwarding is disabled on node-1",
        ),
        c(
            "IPv4 still forwarded when only IPv6 forwarding is off",
            hl_no_v6_fwd,
            q("default/client", "default/web-2", Some(IPv4), Some(8080)),
            Delivered,
            &["10.244.1.7:8080"],
            false,
            "",
        ),
        c(
            "external host cannot reach a cluster IP: the router has no route",
            hl,
            q("external", "10.96.0.10", None, Some(80)),
            Dropped,
            &[],
            false,
            "no route to 10.96.0.10 on the router",
        ),
    ]
}

#[test]
fn traces_across_the_fabric() {
    let mut failures = Vec::new();
    for c in cases() {
        let dp = (c.dp)();
        let t = match trace(&dp, dp.state(), &c.query) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{}: error {e}", c.name));
                continue;
            }
        };
        let mut eps = t.endpoints.clone();
        eps.sort();
        let mut want: Vec<String> = c.endpoints.iter().map(|s| s.to_string()).collect();
        want.sort();
        let reason = t.reason.clone().unwrap_or_default();
        if t.verdict != c.verdict
            || eps != want
            || t.masqueraded != c.masq
            || !reason.contains(c.reason)
        {
            failures.push(format!(
                "{}: got {:?} {eps:?} masq={} reason={reason:?}\n{}",
                c.name,
                t.verdict,
                t.masqueraded,
                render_trace_text(&t)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn queries_naming_nothing_are_errors() {
    let dp = hl();
    for (from, to, want) in [
        (
            "default/nope",
            "svc:default/web",
            "source: pod default/nope not found",
        ),
        (
            "default/client",
            "svc:default/nope",
            "destination: Service default/nope not found",
        ),
        (
            "node:node-9",
            "default/web-1",
            "source: node \"node-9\" not found",
        ),
        ("default/client", "svc:default/v4-only", ""),
    ] {
        let r = trace(&dp, dp.state(), &q(from, to, None, None));
        match r {
            Err(e) => assert_eq!(e, want, "{from} -> {to}"),
            Ok(_) => assert!(want.is_empty(), "{from} -> {to} should fail"),
        }
    }
    let r = trace(
        &dp,
        dp.state(),
        &q("default/client", "svc:default/v4-only", Some(IPv6), None),
    );
    assert_eq!(
        r.unwrap_err(),
        "destination: Service default/v4-only has no IPv6 cluster IP"
    );
}

#[test]
fn load_balancer_ips_come_from_the_pool_in_name_order() {
    let dp = hl();
    let got: Vec<String> = dp
        .load_balancer_ips()
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {}",
                v.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    assert_eq!(got, ["default/web-lb: 198.51.100.10, 2001:db8:1b::10"]);
    // Without a pool, LoadBalancer Services stay pending.
    let pending = build_with(
        cluster("iptables", 34).build(),
        Cni::HostLocal,
        &FabricConfig::default(),
        None,
    );
    assert!(pending.load_balancer_ips().is_empty());
}

#[test]
fn snapshots_of_rules_routes_and_traces() {
    let dp = hl();
    insta::assert_snapshot!(
        "iptables_node1_v4",
        render_iptables_save(&dp, "node-1", IPv4)
    );
    insta::assert_snapshot!(
        "iptables_node1_v6",
        render_iptables_save(&dp, "node-1", IPv6)
    );
    insta::assert_snapshot!(
        "routes_node1_v4",
        render_routes(dp.node_routes("node-1", IPv4).unwrap())
    );
    insta::assert_snapshot!(
        "routes_node1_v6",
        render_routes(dp.node_routes("node-1", IPv6).unwrap())
    );
    let nft = hl_nft();
    insta::assert_snapshot!("nft_node1", render_nft(&nft, "node-1"));
    let cal = calico_dual();
    insta::assert_snapshot!(
        "routes_calico_node1_v6",
        render_routes(cal.node_routes("node-1", IPv6).unwrap())
    );
    let t = trace(
        &dp,
        dp.state(),
        &q("default/client", "svc:default/web:http", Some(IPv6), None),
    )
    .unwrap();
    insta::assert_snapshot!("trace_pod_to_clusterip_v6", render_trace_text(&t));
    let t = trace(
        &cal,
        cal.state(),
        &q("default/client", "external", Some(IPv6), Some(443)),
    )
    .unwrap();
    insta::assert_snapshot!("trace_calico_ula_to_internet", render_trace_text(&t));
    insta::assert_snapshot!("dot", crate::render_dot(&dp));
}

/// Writes rule files for every mode, family and egress agent, for `tests/kernel-load.sh`
/// (which loads them into a fresh network namespace) — and checks they are non-trivial.
#[test]
fn kernel_rule_files() {
    // `cargo xtask test` says where (under Cargo's target directory, wherever that is).
    let dir = match std::env::var_os("KNETSIM_KERNEL_LOAD_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kernel-load"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let agent = masq_agent(&knetsim_model::scenario::IpMasqAgentConfig {
        enable_ipv6: true,
        ..Default::default()
    })
    .0;
    let variants: Vec<(&str, Dataplane)> = vec![
        ("iptables-hostlocal", host_local("iptables")),
        ("nftables-hostlocal", host_local("nftables")),
        (
            "nftables-1.33",
            build_with(
                cluster("nftables", 33).build(),
                Cni::HostLocal,
                &fabric(),
                None,
            ),
        ),
        (
            "iptables-masqagent",
            build_with(
                cluster("iptables", 34).build(),
                Cni::HostLocal,
                &fabric(),
                Some(&agent),
            ),
        ),
        ("iptables-calico", calico(true, true)),
        ("iptables-kubenet", kubenet()),
    ];
    for (name, dp) in &variants {
        for node in ["node-1", "node-2"] {
            for (family, ext) in [(IPv4, "v4"), (IPv6, "v6")] {
                let text = render_iptables_save(dp, node, family);
                assert!(text.contains("*nat\n") && text.ends_with("COMMIT\n"));
                std::fs::write(dir.join(format!("{name}-{node}.{ext}.rules")), text).unwrap();
                let sets = dp.masq.ipsets(family);
                if !sets.is_empty() {
                    std::fs::write(dir.join(format!("{name}-{node}-{ext}.ipsets")), sets).unwrap();
                }
            }
            let nft = render_nft(dp, node);
            if !nft.is_empty() {
                assert!(
                    nft.contains("table ip kube-proxy") && nft.contains("table ip6 kube-proxy")
                );
                std::fs::write(dir.join(format!("{name}-{node}.nft")), nft).unwrap();
            }
        }
    }
}

/// A generated cluster with more service ports than one run of the parallel renderers, and
/// some of every kind of Service.
fn varied_cluster(mode: &'static str) -> Dataplane {
    use knetsim_control::state::{ClientIpConfig, SessionAffinityConfig};
    let mut state = crate::testkit::scale(&crate::testkit::Scale {
        minor: 34,
        mode,
        nodes: 8,
        services: 700,
        endpoints: 2,
        namespaces: 3,
    });
    for (i, svc) in state.services.values_mut().enumerate() {
        match i % 6 {
            1 => {
                svc.spec.type_ = "NodePort".into();
                svc.spec.ports[0].node_port = Some(30000 + i as u16);
                svc.spec.external_traffic_policy = Some("Local".into());
            }
            2 => svc.spec.internal_traffic_policy = Some("Local".into()),
            3 => {
                svc.spec.session_affinity = Some("ClientIP".into());
                svc.spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: ClientIpConfig {
                        timeout_seconds: 60,
                    },
                });
            }
            4 => {
                svc.spec.external_ips = vec![
                    format!("192.168.99.{}", i % 250).parse().unwrap(),
                    format!("2001:db8:99::{i:x}").parse().unwrap(),
                ]
            }
            _ => {}
        }
    }
    build_with(state, Cni::HostLocal, &fabric(), None)
}

#[test]
fn rendering_is_the_same_kept_or_not_and_on_any_thread_count() {
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let dps = [varied_cluster("iptables"), varied_cluster("nftables")];
    for (k, dp) in dps.iter().enumerate() {
        let other = &dps[1 - k];
        for node in ["node-0", "node-2"] {
            let render = |dp: &Dataplane| {
                (
                    render_iptables_save(dp, node, IPv4),
                    render_iptables_save(dp, node, IPv6),
                    render_nft(dp, node),
                )
            };
            // Written and rendered in parallel runs, not kept.
            let fresh = render(dp);
            assert!(fresh.0.contains("-A KUBE-SERVICES") || fresh.2.contains("service-ips"));
            assert_eq!(
                one_thread.install(|| render(dp)),
                fresh,
                "{node}: one thread"
            );
            // The other mode's dataplane renders this mode's rules the same way.
            let mode = dp.proxy_mode().unwrap();
            let want = match mode {
                "iptables" => fresh.0.clone(),
                _ => fresh.2.split("\n\ntable ip6").next().unwrap().to_string() + "\n",
            };
            assert_eq!(
                crate::render_rules_in_mode(other, node, IPv4, mode).unwrap(),
                want,
                "{node}: {mode} rules rendered from the other mode's dataplane"
            );
            // Rendered from kept rules.
            for f in [IPv4, IPv6] {
                dp.rules(node, f).unwrap();
            }
            assert_eq!(render(dp), fresh, "{node}: kept rules");
        }
    }
}
