//! The fast path against the detailed trace: the same verdict for every query of a table,
//! built as the cross product of sources, destinations, ports and protocols over the
//! fixtures of the other test modules (both modes, both families, several CNIs, kube-proxy
//! configurations and Kubernetes versions), and the same kube-proxy decision as the rule
//! tracers for every packet of another cross product.

use std::collections::BTreeMap;
use std::net::IpAddr;

use knetsim_control::state::ProxyConfig;
use knetsim_ipam::Family::{self, IPv4, IPv6};

use crate::fixture_tests::{self as fx, q};
use crate::flow_tests::fixture_with;
use crate::proxy::{PacketCtx, Proto};
use crate::testkit::Ep;
use crate::trace::{Outcome, TraceQuery};
use crate::verdict::{ProxySummary, Verdict};
use crate::{Dataplane, trace};

type Tweak = fn(&mut ProxyConfig);

/// kube-proxy configurations the packet table runs under.
fn configs() -> Vec<(&'static str, Tweak)> {
    vec![
        ("default", |_| {}),
        ("masquerade-all", |p| p.masquerade_all = true),
        ("no-local-detector", |p| p.cluster_cidrs.clear()),
        ("node-cidr", |p| p.detect_local_mode = "NodeCIDR".into()),
        ("bridge-interface", |p| {
            p.detect_local_mode = "BridgeInterface".into();
            p.pod_bridge_interface = Some("cbr0".into());
        }),
        ("nodeport-primary", |p| {
            p.nodeport_addresses = vec!["primary".into()]
        }),
        ("nodeport-cidrs", |p| {
            p.nodeport_addresses = vec!["192.168.0.0/24".into(), "127.0.0.0/8".into()]
        }),
        ("no-localhost-nodeports", |p| p.localhost_nodeports = false),
    ]
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn fast_kube_proxy_decisions_equal_the_rule_tracers() {
    // Sources and destinations of the flow fixture: pods, endpoints (hairpin), the nodes,
    // loopback, external clients (inside and outside the source range), cluster IPs (and an
    // unallocated one), external and load-balancer IPs.
    let srcs = [
        ips(&[
            "10.0.0.2",
            "10.180.0.1",
            "10.180.0.9",
            "192.168.0.2",
            "192.168.0.3",
            "127.0.0.1",
            "203.0.113.2",
            "203.0.113.130",
            "1.2.3.4",
        ]),
        ips(&[
            "fd00:10::2",
            "fd00:10:180::1",
            "2001:db8::1",
            "::1",
            "2600:5200::1",
        ]),
    ];
    let dsts = [
        ips(&[
            "172.30.0.41",
            "172.30.0.42",
            "172.30.0.43",
            "172.30.0.44",
            "172.30.0.45",
            "172.30.0.46",
            "172.30.0.47",
            "172.30.0.48",
            "172.30.0.49",
            "172.30.0.50",
            "172.30.0.99",
            "192.168.99.22",
            "192.168.99.33",
            "1.2.3.4",
            "5.6.7.8",
            "192.168.0.2",
            "192.168.0.3",
            "127.0.0.1",
            "10.180.0.1",
        ]),
        ips(&[
            "fd00:172:30::41",
            "fd00:172:30::43",
            "fd00:172:30::46",
            "fd00:172:30::49",
            "fd00:172:30::99",
            "2001:db8::1",
            "::1",
        ]),
    ];
    let ports = [80u16, 81, 3001, 3002, 3003, 3009, 30000];
    let mut compared = 0;
    let mut failures = Vec::new();
    let mut kinds: BTreeMap<(&str, Family, &str), usize> = BTreeMap::new();
    for mode in ["iptables", "nftables"] {
        for minor in [29u16, 30, 33, 34] {
            for (cfg_name, tweak) in configs() {
                // Every configuration on the newest version; the default one on every version.
                if minor != 34 && cfg_name != "default" {
                    continue;
                }
                let dp = fixture_with(mode, minor, &tweak);
                for node in ["test-node", "node2"] {
                    for (fi, family) in [IPv4, IPv6].into_iter().enumerate() {
                        let node_ips: Vec<IpAddr> = dp.state().nodes[node]
                            .internal_ips()
                            .filter(|ip| Family::of_ip(ip) == family)
                            .collect();
                        let rules = dp.rules(node, family).expect("rules");
                        for &src in &srcs[fi] {
                            for &dst in &dsts[fi] {
                                for &dport in &ports {
                                    for proto in [Proto::Tcp, Proto::Udp] {
                                        if proto == Proto::Udp && dport != 80 {
                                            continue;
                                        }
                                        for from_local_pod in [false, true] {
                                            let p = PacketCtx {
                                                src,
                                                dst,
                                                proto,
                                                dport,
                                                src_is_local: src.is_loopback()
                                                    || node_ips.contains(&src),
                                                node_ips: node_ips.clone(),
                                                from_local_pod,
                                            };
                                            let want = ProxySummary::of_trace(&rules.trace(&p));
                                            let got = ProxySummary::of_fast(&dp, node, &p)
                                                .expect("kube-proxy runs");
                                            compared += 1;
                                            let kind = match (want.block, want.dnat.is_empty()) {
                                                (Some(b), _) => b,
                                                (None, false) => "DNAT",
                                                (None, true) if want.accept => "ACCEPT",
                                                (None, true) => "none",
                                            };
                                            *kinds.entry((mode, family, kind)).or_default() += 1;
                                            if got != want && failures.len() < 20 {
                                                failures.push(format!(
                                                    "[{mode} 1.{minor} {cfg_name} {node}] {proto:?} {src} -> {dst}:{dport} local-pod={from_local_pod}\n  tracer: {want:?}\n  fast:   {got:?}"
                                                ));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences, first:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The table exercises every decision in both modes and families (the fixture's only
    // Services with the Local policy and no local endpoint, which iptables DROPs, are IPv4).
    for mode in ["iptables", "nftables"] {
        for family in [IPv4, IPv6] {
            for kind in ["DNAT", "REJECT", "none"] {
                assert!(
                    kinds.get(&(mode, family, kind)).is_some_and(|&n| n > 0),
                    "no {kind} in {mode} {family}: {kinds:?}"
                );
            }
        }
        assert!(kinds.contains_key(&(mode, IPv4, "DROP")), "{kinds:?}");
    }
    assert!(kinds.contains_key(&("nftables", IPv6, "DROP")), "{kinds:?}");
    assert!(
        kinds.contains_key(&("iptables", IPv4, "ACCEPT")),
        "{kinds:?}"
    );
    assert!(compared > 50_000, "only {compared} packets compared");
}

/// Every query of the cross product over one dataplane: the fast verdict equals the detailed
/// trace's (or both report the same error). Returns the verdicts seen, by kind.
fn compare_all(
    name: &str,
    dp: &Dataplane,
    queries: &[TraceQuery],
    failures: &mut Vec<String>,
    seen: &mut BTreeMap<(String, Family, Outcome), usize>,
) -> usize {
    let mut n = 0;
    for query in queries {
        let detailed = trace(dp, dp.state(), query);
        let compiled = dp.compile(query);
        match (detailed, compiled) {
            (Err(a), Err(b)) => {
                if a != b {
                    failures.push(format!("[{name}] {query:?}: errors {a:?} vs {b:?}"));
                }
            }
            (Ok(t), Ok(cq)) => {
                n += 1;
                let mut reached = Vec::new();
                let fast = dp.verdict_with(&cq, |ip, port| {
                    reached.push(crate::proxy::model::join_host_port(ip, port))
                });
                let want = Verdict::of_trace(&t);
                *seen
                    .entry((
                        dp.proxy_mode().unwrap_or("none").to_string(),
                        t.family,
                        t.verdict,
                    ))
                    .or_default() += 1;
                if fast != want || reached != t.endpoints || dp.verdict(&cq) != fast {
                    failures.push(format!(
                        "[{name}] {} -> {} ({:?} {:?} {:?}):\n  detailed {want:?} {:?}\n  fast     {fast:?} {reached:?}\n{}",
                        query.from,
                        query.to,
                        query.family,
                        query.proto,
                        query.port,
                        t.endpoints,
                        crate::render_trace_text(&t)
                    ));
                }
            }
            (a, b) => failures.push(format!(
                "[{name}] {query:?}: detailed {:?} vs compiled {:?}",
                a.map(|t| t.verdict),
                b.map(|_| ())
            )),
        }
    }
    n
}

/// Sources × destinations × ports of the small dual-stack cluster of `fixture_tests`.
fn fabric_queries() -> Vec<TraceQuery> {
    let sources = [
        "default/client",
        "pod:default/web-1",
        "default/web-2",
        "node:node-1",
        "node:node-2",
        "external",
        "203.0.113.7",
        "198.18.0.1",
        "2001:db8:ffff::99",
        "10.244.0.5",
    ];
    let mut out = Vec::new();
    let fams = [None, Some(IPv4), Some(IPv6)];
    for from in sources {
        for family in fams {
            for svc in [
                "svc:default/web:http",
                "svc:default/web",
                "svc:default/web-local",
                "svc:default/web-lb",
                "svc:default/web-ext",
                "svc:default/empty:http",
                "svc:default/v4-only",
                "svc:default/nope",
                "svc:default/mixed",
            ] {
                out.push(q(from, svc, family, None));
            }
            for (to, ports) in [
                ("default/web-1", &[8080u16, 80][..]),
                ("default/web-2", &[8080]),
                ("default/client", &[8080]),
                ("node:node-1", &[30080, 30081, 80]),
                ("node:node-2", &[30080, 30081]),
                ("external", &[443]),
                ("198.51.100.10", &[80, 8080]),
                ("2001:db8:1b::10", &[80]),
                ("192.168.0.200", &[8443]),
                ("10.96.0.10", &[80, 81]),
                ("10.96.0.99", &[80]),
                ("fd00:10:96::10", &[80]),
                ("10.244.1.7", &[8080]),
                ("10.244.0.200", &[8080]),
                ("fd00:10:244:1::7", &[8080]),
                ("203.0.113.10", &[80]),
                ("192.168.0.12", &[22]),
            ] {
                for &port in ports {
                    out.push(q(from, to, family, Some(port)));
                }
            }
        }
    }
    // A few UDP queries: kube-proxy matches protocols.
    for to in ["svc:default/web", "node:node-1", "10.96.0.10"] {
        let mut query = q("default/client", to, None, Some(80));
        query.proto = "udp".into();
        out.push(query);
    }
    out
}

/// The small cluster with ip-masq-agent's defaults and a Service `mixed` whose endpoints are
/// the client pod itself, an address outside the cluster that the agent does not masquerade,
/// an address in node-2's podCIDR that no pod has, and (with `two_addresses`, where node-2
/// has two InternalIPs per family) node-2's second address:
///
/// - the hairpin mark of the client's own endpoint chain must not masquerade the path to the
///   other endpoints (whose reply could then come back);
/// - the stale address is routed to node-2 and on from there (a walk beyond the next node);
/// - node-2's second address is local to node-2 only.
fn mixed(mode: &str, two_addresses: bool) -> Dataplane {
    let (agent, _) = crate::masq::masq_agent(&Default::default());
    let mut b = fx::cluster(mode, 34);
    let (mut v4, mut v6) = (
        vec![
            Ep::on("10.244.0.5", "node-1"),
            Ep::anywhere("192.168.200.10"),
            Ep::anywhere("10.244.1.99"),
        ],
        vec![
            Ep::on("fd00:10:244::5", "node-1"),
            Ep::anywhere("fd00:99::10"),
            Ep::anywhere("fd00:10:244:1::99"),
        ],
    );
    if two_addresses {
        b = b.node(
            "node-2",
            &[
                "192.168.0.12",
                "192.168.0.22",
                "fd00:192:168::12",
                "fd00:192:168::22",
            ],
            &["10.244.1.0/24", "fd00:10:244:1::/64"],
        );
        v4.push(Ep::on("192.168.0.22", "node-2"));
        v6.push(Ep::on("fd00:192:168::22", "node-2"));
    }
    let state = b
        .service(
            "default",
            "mixed",
            "ClusterIP",
            &["10.96.0.20", "fd00:10:96::20"],
            &[("http", 80, 0)],
            |_, _| {},
        )
        .slice("default", "mixed", IPv4, &[("http", 8080)], &v4)
        .slice("default", "mixed", IPv6, &[("http", 8080)], &v6)
        .build();
    crate::build_with(state, crate::Cni::HostLocal, &fx::fabric(), Some(&agent))
}

type Make = fn() -> Dataplane;

/// The dataplanes the fast path is compared on: CNIs, egress agents, modes, sysctls.
fn fabric_fixtures() -> Vec<(&'static str, Make)> {
    vec![
        ("host-local iptables", fx::hl),
        ("host-local nftables", fx::hl_nft),
        ("IPv6 forwarding off", fx::hl_no_v6_fwd),
        ("ip-masq-agent", fx::masq_agent_default),
        ("calico", fx::calico_dual),
        ("calico IPv6 natOutgoing", fx::calico_v6_nat),
        ("calico without IPv6", fx::calico_no_felix_v6),
        ("kubenet", fx::kubenet),
        ("nftables 1.29", || {
            crate::build_with(
                fx::cluster("nftables", 29).build(),
                crate::Cni::HostLocal,
                &fx::fabric(),
                None,
            )
        }),
        ("no kube-proxy", || {
            let mut s = fx::cluster("iptables", 34).build();
            s.network.kube_proxy = None;
            crate::build_with(s, crate::Cni::HostLocal, &fx::fabric(), None)
        }),
        ("mixed endpoints", || mixed("iptables", false)),
        ("mixed endpoints, nftables", || mixed("nftables", false)),
        ("mixed endpoints, two addresses", || mixed("iptables", true)),
        ("masquerade-all nftables", || {
            crate::build_with(
                fx::cluster("nftables", 34)
                    .proxy(|p| p.masquerade_all = true)
                    .build(),
                crate::Cni::HostLocal,
                &fx::fabric(),
                None,
            )
        }),
    ]
}

#[test]
fn fast_verdicts_equal_detailed_traces() {
    let queries = fabric_queries();
    let fixtures = fabric_fixtures();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    let mut compared = 0;
    for (name, make) in fixtures {
        let dp = make();
        compared += compare_all(name, &dp, &queries, &mut failures, &mut seen);
    }
    assert!(
        failures.is_empty(),
        "{} differences, first:\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    for mode in ["iptables", "nftables"] {
        for family in [IPv4, IPv6] {
            for outcome in [Outcome::Delivered, Outcome::Dropped, Outcome::Rejected] {
                assert!(
                    seen.get(&(mode.to_string(), family, outcome))
                        .is_some_and(|&n| n > 0),
                    "no {outcome:?} verdict in {mode} {family}: {seen:?}"
                );
            }
        }
    }
    assert!(compared > 3_000, "only {compared} queries compared");
}

#[test]
fn fast_verdicts_match_the_named_cases() {
    // The end-to-end cases of `fixture_tests`, answered by the fast path.
    for c in fx::cases() {
        let dp = (c.dp)();
        let cq = dp
            .compile(&c.query)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let mut reached = Vec::new();
        let v = dp.verdict_with(&cq, |ip, port| {
            reached.push(crate::proxy::model::join_host_port(ip, port))
        });
        reached.sort();
        let mut want: Vec<String> = c.endpoints.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            (v.outcome, reached, v.masqueraded),
            (c.verdict, want, c.masq),
            "{}",
            c.name
        );
    }
}

#[test]
fn a_service_at_scale_is_reached_from_every_pod() {
    // The generated cluster of the benchmarks, small: every pod reaches every Service's
    // endpoints in both families and modes, masqueraded only when it is one of them
    // (hairpin).
    for mode in ["iptables", "nftables"] {
        let state = crate::testkit::scale(&crate::testkit::Scale {
            minor: 34,
            mode,
            nodes: 4,
            services: 6,
            endpoints: 3,
            namespaces: 2,
        });
        let dp = crate::build_with(state, crate::Cni::HostLocal, &Default::default(), None);
        let pods: Vec<String> = dp.state().pods.keys().map(|p| p.to_string()).collect();
        let svcs: Vec<String> = dp
            .state()
            .services
            .keys()
            .map(|s| format!("svc:{s}"))
            .collect();
        for from in &pods {
            for to in &svcs {
                let hairpin = from.starts_with(&format!("{}-", &to["svc:".len()..]));
                for family in [IPv4, IPv6] {
                    let cq = dp.compile(&q(from, to, Some(family), None)).unwrap();
                    let v = dp.verdict(&cq);
                    assert_eq!(
                        v,
                        Verdict {
                            outcome: Outcome::Delivered,
                            paths: 3,
                            delivered: 3,
                            masqueraded: hairpin
                        },
                        "[{mode}] {from} -> {to} {family}"
                    );
                }
            }
        }
    }
}

/// ip-masq-agent with IPv6, link-local masquerade and all reserved ranges exempt.
fn masq_agent_ipv6() -> Dataplane {
    let (agent, _) = crate::masq::masq_agent(&knetsim_model::scenario::IpMasqAgentConfig {
        enable_ipv6: true,
        masq_link_local: true,
        masq_link_local_ipv6: true,
        nomasq_all_reserved_ranges: true,
        ..Default::default()
    });
    crate::build_with(
        fx::cluster("iptables", 34).build(),
        crate::Cni::HostLocal,
        &fx::fabric(),
        Some(&agent),
    )
}

/// The generated cluster of the benchmarks, small.
fn small_scale(mode: &'static str) -> Dataplane {
    let state = crate::testkit::scale(&crate::testkit::Scale {
        minor: 34,
        mode,
        nodes: 6,
        services: 12,
        endpoints: 3,
        namespaces: 2,
    });
    crate::build_with(state, crate::Cni::HostLocal, &Default::default(), None)
}

/// Every dataplane the shortcut checks run on: the fabric fixtures, ip-masq-agent with IPv6,
/// the kube-proxy flow fixture in every configuration (Local policies, terminating endpoints)
/// and the generated cluster.
fn every_fixture() -> Vec<(String, Dataplane)> {
    let mut out: Vec<(String, Dataplane)> = fabric_fixtures()
        .into_iter()
        .map(|(name, make)| (name.to_string(), make()))
        .collect();
    out.push(("ip-masq-agent with IPv6".into(), masq_agent_ipv6()));
    for mode in ["iptables", "nftables"] {
        for (cfg, tweak) in configs() {
            out.push((format!("flow {mode} {cfg}"), fixture_with(mode, 34, &tweak)));
        }
        out.push((format!("scale {mode}"), small_scale(mode)));
    }
    out
}

/// Runs a shortcut check over [`every_fixture`], requires no differences, and returns the
/// tally of what it compared.
fn check_every_fixture(
    check: impl Fn(&Dataplane, &mut crate::verdict::checks::Tally) -> Vec<String>,
) -> crate::verdict::checks::Tally {
    let mut tally = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, dp) in every_fixture() {
        failures.extend(
            check(&dp, &mut tally)
                .into_iter()
                .map(|f| format!("[{name}] {f}")),
        );
    }
    assert!(
        failures.is_empty(),
        "{} differences, first:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    tally
}

#[test]
fn generic_routes_hold_for_every_plain_node() {
    let tally = check_every_fixture(crate::verdict::checks::generic_routes);
    // Every kind of endpoint the fast walk distinguishes occurs.
    for kind in [
        "tail deliver",
        "tail drop",
        "tail walk",
        "no generic route",
        "plain node",
        "special node",
    ] {
        assert!(
            tally.get(kind).is_some_and(|&n| n > 0),
            "no {kind}: {tally:?}"
        );
    }
    assert!(tally["plain node"] > 100, "{tally:?}");
}

#[test]
fn categorize_is_evaluated_per_node_equal() {
    let tally = check_every_fixture(crate::verdict::checks::categorization);
    for kind in [
        "cluster list empty",
        "cluster list not empty",
        "local list empty",
        "local list not empty",
    ] {
        assert!(
            tally.get(kind).is_some_and(|&n| n > 0),
            "no {kind}: {tally:?}"
        );
    }
}

#[test]
fn masquerade_by_masks_equals_the_rule_walk() {
    // Pods, nodes, Services, link-local, reserved and private ranges, Calico pools, and
    // global addresses of both families.
    let addrs = ips(&[
        "10.244.0.5",
        "10.244.1.7",
        "10.96.0.10",
        "192.168.0.11",
        "192.168.200.10",
        "172.16.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "203.0.113.10",
        "8.8.8.8",
        "fd00:10:244::5",
        "fd00:10:244:1::7",
        "fd00:10:96::10",
        "fd00:192:168::11",
        "fe80::1",
        "fc00::1",
        "2001:db8:ffff::10",
        "2600::1",
    ]);
    let tally = check_every_fixture(|dp, tally| {
        crate::verdict::checks::masquerade_masks(dp, &addrs, tally)
    });
    for kind in ["masquerade true", "masquerade false"] {
        assert!(
            tally.get(kind).is_some_and(|&n| n > 0),
            "no {kind}: {tally:?}"
        );
    }
}

#[test]
fn batch_verdicts_do_not_depend_on_the_thread_count() {
    let mut outcomes = std::collections::BTreeSet::new();
    for (name, dp) in [
        ("scale".to_string(), small_scale("nftables")),
        ("mixed".to_string(), mixed("iptables", true)),
    ] {
        let pods: Vec<String> = dp.state().pods.keys().map(|p| p.to_string()).collect();
        let mut tos: Vec<String> = dp
            .state()
            .services
            .keys()
            .map(|s| format!("svc:{s}"))
            .collect();
        tos.extend(pods.iter().cloned());
        tos.push("external".into());
        let mut queries = Vec::new();
        for from in &pods {
            for to in &tos {
                for family in [IPv4, IPv6] {
                    if let Ok(cq) = dp.compile(&q(from, to, Some(family), Some(8080))) {
                        queries.push(cq);
                    }
                }
            }
        }
        assert!(
            queries.len() > 50,
            "[{name}] only {} queries",
            queries.len()
        );
        let one_by_one: Vec<Verdict> = queries.iter().map(|cq| dp.verdict(cq)).collect();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let batch = pool.install(|| dp.verdicts(&queries));
            assert_eq!(batch, one_by_one, "[{name}] on {threads} threads");
        }
        outcomes.extend(one_by_one.iter().map(|v| v.outcome));
    }
    // The queries are not all alike.
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

#[test]
fn query_grids_compile_each_pair_as_compile_does() {
    // The sources and destinations of `fabric_queries`, every family, both ports, a
    // protocol kube-proxy matches and one that does not exist.
    let sources = [
        "default/client",
        "pod:default/web-1",
        "node:node-1",
        "node:node-9",
        "external",
        "203.0.113.7",
        "2001:db8:ffff::99",
        "10.244.0.5",
        "svc:default/web",
        "nope",
    ];
    let destinations: Vec<String> = [
        "svc:default/web:http",
        "svc:default/web",
        "svc:default/web-lb",
        "svc:default/v4-only",
        "svc:default/nope",
        "svc:default/web:grpc",
        "default/web-2",
        "node:node-2",
        "external",
        "198.51.100.10",
        "2001:db8:1b::10",
        "10.96.0.10",
        "fd00:10:244:1::7",
        "default/nope",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut compared = 0;
    let mut errors = 0;
    for (name, make) in fabric_fixtures() {
        let dp = make();
        for family in [None, Some(IPv4), Some(IPv6)] {
            for port in [None, Some(8080)] {
                for proto in ["tcp", "udp", "icmp"] {
                    let grid = dp.query_grid(&destinations, family, proto, port);
                    for from in sources {
                        let row = grid.row(from);
                        assert_eq!(row.len(), destinations.len());
                        for (to, got) in destinations.iter().zip(row) {
                            let want = dp.compile(&TraceQuery {
                                from: from.to_string(),
                                to: to.clone(),
                                family,
                                proto: proto.to_string(),
                                port,
                            });
                            compared += 1;
                            errors += usize::from(want.is_err());
                            assert_eq!(
                                got, want,
                                "[{name}] {from} -> {to} {family:?} {proto} {port:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(
        compared > 10_000 && errors > 1_000 && compared - errors > 1_000,
        "{compared} compared, {errors} errors"
    );
}
