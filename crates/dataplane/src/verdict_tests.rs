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

#[test]
fn fast_verdicts_equal_detailed_traces() {
    let queries = fabric_queries();
    type Make = fn() -> Dataplane;
    let fixtures: Vec<(&str, Make)> = vec![
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
    ];
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
