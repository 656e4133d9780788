//! Packet flows through kube-proxy's rules, evaluated with the semantics of kube-proxy's own
//! unit-test tracers, in both modes and both families.
//!
//! The fixture follows `proxier_test.go`'s conventions: node `test-node` at 192.168.0.2 and
//! 2001:db8::1, pods in 10.0.0.0/8 and fd00:10::/64, Services in 172.30.0.0/16 and
//! fd00:172:30::/112, external client 203.0.113.2 (blocked client 203.0.113.130, outside the
//! source range 203.0.113.0/25), load-balancer IPs 1.2.3.4 and 5.6.7.8. The Services are those
//! of `TestOverallIPTablesRules`, plus internal-traffic-policy and local-endpoint cases.

use std::net::IpAddr;

use knetsim_control::state::{ClientIpConfig, LoadBalancerIngress, SessionAffinityConfig};
use knetsim_ipam::Family::{self, IPv4, IPv6};

use crate::config::FabricConfig;
use crate::proxy::{PacketCtx, Proto};
use crate::testkit::{ClusterBuilder, Ep};
use crate::{Cni, Dataplane, build_with};

const NODE: &str = "test-node";

pub(crate) fn fixture(mode: &str, variant: Variant) -> Dataplane {
    fixture_with(mode, 34, &|p| match variant {
        Variant::Default => {}
        Variant::MasqueradeAll => p.masquerade_all = true,
        Variant::NoLocalDetector => p.cluster_cidrs.clear(),
    })
}

/// The fixture on Kubernetes `minor`, with kube-proxy's configuration adjusted by `tweak`.
pub(crate) fn fixture_with(
    mode: &str,
    minor: u16,
    tweak: &dyn Fn(&mut knetsim_control::state::ProxyConfig),
) -> Dataplane {
    let mut b = ClusterBuilder::new(
        minor,
        mode,
        &["172.30.0.0/16", "fd00:172:30::/112"],
        &["10.0.0.0/8", "fd00:10::/64"],
    )
    .node(
        NODE,
        &["192.168.0.2", "2001:db8::1"],
        &["10.0.0.0/24", "fd00:10::/64"],
    )
    .node(
        "node2",
        &["192.168.0.3", "2001:db8::2"],
        &["10.0.1.0/24", "fd00:10:0:1::/64"],
    );
    b = b.proxy(tweak);
    // The nftables fake proxier of the upstream tests uses the "primary" NodePort addresses;
    // the iptables one leaves them unset (every local address).
    b = b
        // svc1: ClusterIP, one endpoint.
        .service(
            "ns1",
            "svc1",
            "ClusterIP",
            &["172.30.0.41", "fd00:172:30::41"],
            &[("p80", 80, 0)],
            |_, _| {},
        )
        .slice(
            "ns1",
            "svc1",
            IPv4,
            &[("p80", 80)],
            &[Ep::anywhere("10.180.0.1")],
        )
        .slice(
            "ns1",
            "svc1",
            IPv6,
            &[("p80", 80)],
            &[Ep::anywhere("fd00:10:180::1")],
        )
        // svc2: LoadBalancer, externalTrafficPolicy Local, no local endpoint.
        .service(
            "ns2",
            "svc2",
            "LoadBalancer",
            &["172.30.0.42"],
            &[("p80", 80, 3001)],
            |s, st| {
                s.external_traffic_policy = Some("Local".into());
                s.external_ips = vec!["192.168.99.22".parse().unwrap()];
                s.health_check_node_port = Some(30000);
                st.load_balancer.ingress = vec![LoadBalancerIngress {
                    ip: "1.2.3.4".parse().unwrap(),
                }];
            },
        )
        .slice(
            "ns2",
            "svc2",
            IPv4,
            &[("p80", 80)],
            &[Ep::anywhere("10.180.0.2")],
        )
        // svc3: NodePort.
        .service(
            "ns3",
            "svc3",
            "NodePort",
            &["172.30.0.43", "fd00:172:30::43"],
            &[("p80", 80, 3003)],
            |_, _| {},
        )
        .slice(
            "ns3",
            "svc3",
            IPv4,
            &[("p80", 80)],
            &[Ep::anywhere("10.180.0.3")],
        )
        .slice(
            "ns3",
            "svc3",
            IPv6,
            &[("p80", 80)],
            &[Ep::anywhere("fd00:10:180::3")],
        )
        // svc4: NodePort with an external IP and two endpoints (one local).
        .service(
            "ns4",
            "svc4",
            "NodePort",
            &["172.30.0.44"],
            &[("p80", 80, 0)],
            |s, _| {
                s.external_ips = vec!["192.168.99.33".parse().unwrap()];
            },
        )
        .slice(
            "ns4",
            "svc4",
            IPv4,
            &[("p80", 80)],
            &[Ep::anywhere("10.180.0.4"), Ep::on("10.180.0.5", NODE)],
        )
        // svc5: LoadBalancer, Cluster policy, source ranges, session affinity.
        .service(
            "ns5",
            "svc5",
            "LoadBalancer",
            &["172.30.0.45"],
            &[("p80", 80, 3002)],
            |s, st| {
                s.load_balancer_source_ranges = vec!["203.0.113.0/25".parse().unwrap()];
                s.session_affinity = Some("ClientIP".into());
                s.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: ClientIpConfig {
                        timeout_seconds: 10800,
                    },
                });
                st.load_balancer.ingress = vec![LoadBalancerIngress {
                    ip: "5.6.7.8".parse().unwrap(),
                }];
            },
        )
        .slice(
            "ns5",
            "svc5",
            IPv4,
            &[("p80", 80)],
            &[Ep::anywhere("10.180.0.3")],
        )
        // svc6: no endpoints in either family.
        .service(
            "ns6",
            "svc6",
            "ClusterIP",
            &["172.30.0.46", "fd00:172:30::46"],
            &[("p80", 80, 0)],
            |_, _| {},
        )
        // svc7: internalTrafficPolicy Local without a local endpoint.
        .service(
            "ns7",
            "svc7",
            "ClusterIP",
            &["172.30.0.47"],
            &[("p80", 80, 0)],
            |s, _| {
                s.internal_traffic_policy = Some("Local".into());
            },
        )
        .slice(
            "ns7",
            "svc7",
            IPv4,
            &[("p80", 80)],
            &[Ep::on("10.180.1.7", "node2")],
        )
        // svc8: internalTrafficPolicy Local with one local and one remote endpoint.
        .service(
            "ns8",
            "svc8",
            "ClusterIP",
            &["172.30.0.48"],
            &[("p80", 80, 0)],
            |s, _| {
                s.internal_traffic_policy = Some("Local".into());
            },
        )
        .slice(
            "ns8",
            "svc8",
            IPv4,
            &[("p80", 80)],
            &[Ep::on("10.180.0.8", NODE), Ep::on("10.180.1.8", "node2")],
        )
        // svc9: NodePort, externalTrafficPolicy Local, a local and a remote endpoint, dual-stack.
        .service(
            "ns9",
            "svc9",
            "NodePort",
            &["172.30.0.49", "fd00:172:30::49"],
            &[("p80", 80, 3009)],
            |s, _| {
                s.external_traffic_policy = Some("Local".into());
            },
        )
        .slice(
            "ns9",
            "svc9",
            IPv4,
            &[("p80", 80)],
            &[Ep::on("10.180.0.9", NODE), Ep::on("10.180.1.9", "node2")],
        )
        .slice(
            "ns9",
            "svc9",
            IPv6,
            &[("p80", 80)],
            &[
                Ep::on("fd00:10:180::9", NODE),
                Ep::on("fd00:10:180::1:9", "node2"),
            ],
        )
        // svc10: only terminating endpoints left: kube-proxy falls back to serving ones.
        .service(
            "ns10",
            "svc10",
            "ClusterIP",
            &["172.30.0.50"],
            &[("p80", 80, 0)],
            |_, _| {},
        )
        .slice(
            "ns10",
            "svc10",
            IPv4,
            &[("p80", 80)],
            &[Ep::on("10.180.0.10", NODE).terminating()],
        );
    let state = b.build();
    build_with(&state, Cni::HostLocal, &FabricConfig::default(), None)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Variant {
    Default,
    MasqueradeAll,
    NoLocalDetector,
}

fn flow(
    dp: &Dataplane,
    family: Family,
    src: &str,
    dst: &str,
    port: u16,
    proto: Proto,
) -> (String, bool) {
    let rules = dp.rules(NODE, family).expect("rules");
    let node_ips: Vec<IpAddr> = dp.state().nodes[NODE]
        .internal_ips()
        .filter(|ip| Family::of_ip(ip) == family)
        .collect();
    let src: IpAddr = src.parse().unwrap();
    let p = PacketCtx {
        src,
        dst: dst.parse().unwrap(),
        proto,
        dport: port,
        src_is_local: src.is_loopback() || node_ips.contains(&src),
        node_ips,
        from_local_pod: false,
    };
    let r = rules.trace(&p);
    (r.outputs.join(", "), r.masq)
}

/// Which modes a row applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Modes {
    Both,
    Iptables,
    Nftables,
}

struct Flow {
    name: &'static str,
    modes: Modes,
    variant: Variant,
    family: Family,
    src: &'static str,
    dst: &'static str,
    port: u16,
    proto: Proto,
    output: &'static str,
    masq: bool,
}

const fn f(
    name: &'static str,
    family: Family,
    src: &'static str,
    dst: &'static str,
    port: u16,
    output: &'static str,
    masq: bool,
) -> Flow {
    Flow {
        name,
        modes: Modes::Both,
        variant: Variant::Default,
        family,
        src,
        dst,
        port,
        proto: Proto::Tcp,
        output,
        masq,
    }
}

impl Flow {
    const fn only(mut self, m: Modes) -> Self {
        self.modes = m;
        self
    }
    const fn variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }
    const fn udp(mut self) -> Self {
        self.proto = Proto::Udp;
        self
    }
}

const EXT: &str = "203.0.113.2";
const BLOCKED: &str = "203.0.113.130";
const NODE_IP: &str = "192.168.0.2";

fn flows() -> Vec<Flow> {
    vec![
        f(
            "pod to cluster IP reaches the endpoint unmasqueraded",
            IPv4,
            "10.0.0.2",
            "172.30.0.41",
            80,
            "10.180.0.1:80",
            false,
        ),
        f(
            "hairpin: an endpoint reaching itself through its Service is masqueraded",
            IPv4,
            "10.180.0.1",
            "172.30.0.41",
            80,
            "10.180.0.1:80",
            true,
        ),
        f(
            "probabilistic choice lists every endpoint",
            IPv4,
            "10.0.0.2",
            "172.30.0.44",
            80,
            "10.180.0.4:80, 10.180.0.5:80",
            false,
        ),
        f(
            "external client to cluster IP is masqueraded (not from the cluster CIDR)",
            IPv4,
            EXT,
            "172.30.0.41",
            80,
            "10.180.0.1:80",
            true,
        ),
        f(
            "external to NodePort with externalTrafficPolicy Cluster is masqueraded",
            IPv4,
            EXT,
            NODE_IP,
            3003,
            "10.180.0.3:80",
            true,
        ),
        f(
            "node to its own NodePort is masqueraded",
            IPv4,
            NODE_IP,
            NODE_IP,
            3003,
            "10.180.0.3:80",
            true,
        ),
        f(
            "external to NodePort, policy Local, no local endpoint: dropped",
            IPv4,
            EXT,
            NODE_IP,
            3001,
            "DROP",
            false,
        ),
        f(
            "external to LB IP, policy Local, no local endpoint: dropped",
            IPv4,
            EXT,
            "1.2.3.4",
            80,
            "DROP",
            false,
        ),
        f(
            "pod to LB IP with policy Local is short-circuited to all endpoints",
            IPv4,
            "10.0.0.2",
            "1.2.3.4",
            80,
            "10.180.0.2:80",
            false,
        ),
        f(
            "node to external IP with policy Local is masqueraded and routed to the cluster chain",
            IPv4,
            NODE_IP,
            "192.168.99.22",
            80,
            "10.180.0.2:80",
            true,
        ),
        f(
            "external to external IP with policy Local and no local endpoint: dropped",
            IPv4,
            EXT,
            "192.168.99.22",
            80,
            "DROP",
            false,
        ),
        f(
            "external to external IP with policy Cluster reaches every endpoint, masqueraded",
            IPv4,
            EXT,
            "192.168.99.33",
            80,
            "10.180.0.4:80, 10.180.0.5:80",
            true,
        ),
        f(
            "external to NodePort, policy Local, local endpoint only, source kept",
            IPv4,
            EXT,
            NODE_IP,
            3009,
            "10.180.0.9:80",
            false,
        ),
        f(
            "pod to NodePort with policy Local reaches every endpoint unmasqueraded",
            IPv4,
            "10.0.0.2",
            NODE_IP,
            3009,
            "10.180.0.9:80, 10.180.1.9:80",
            false,
        ),
        f(
            "allowed client to LB IP with source ranges",
            IPv4,
            EXT,
            "5.6.7.8",
            80,
            "10.180.0.3:80",
            true,
        ),
        f(
            "client outside loadBalancerSourceRanges is dropped",
            IPv4,
            BLOCKED,
            "5.6.7.8",
            80,
            "DROP",
            false,
        ),
        f(
            "NodePort bypasses loadBalancerSourceRanges",
            IPv4,
            BLOCKED,
            NODE_IP,
            3002,
            "10.180.0.3:80",
            true,
        ),
        f(
            "pod to cluster IP of a Service without endpoints is rejected",
            IPv4,
            "10.0.0.2",
            "172.30.0.46",
            80,
            "REJECT",
            false,
        ),
        f(
            "internalTrafficPolicy Local without a local endpoint drops cluster IP traffic",
            IPv4,
            "10.0.0.2",
            "172.30.0.47",
            80,
            "DROP",
            false,
        ),
        f(
            "internalTrafficPolicy Local uses only the local endpoint",
            IPv4,
            "10.0.0.2",
            "172.30.0.48",
            80,
            "10.180.0.8:80",
            false,
        ),
        f(
            "session affinity still lists the endpoint for a first connection",
            IPv4,
            "10.0.0.2",
            "172.30.0.45",
            80,
            "10.180.0.3:80",
            false,
        ),
        f(
            "only terminating endpoints: kube-proxy falls back to serving ones",
            IPv4,
            "10.0.0.2",
            "172.30.0.50",
            80,
            "10.180.0.10:80",
            false,
        ),
        f(
            "masquerade-all masquerades pod traffic to a cluster IP",
            IPv4,
            "10.0.0.2",
            "172.30.0.41",
            80,
            "10.180.0.1:80",
            true,
        )
        .variant(Variant::MasqueradeAll),
        f(
            "without a local detector, off-cluster traffic to a cluster IP is not masqueraded",
            IPv4,
            EXT,
            "172.30.0.41",
            80,
            "10.180.0.1:80",
            false,
        )
        .variant(Variant::NoLocalDetector),
        f(
            "without a local detector, policy Local has no pod short-circuit",
            IPv4,
            "10.0.0.2",
            "1.2.3.4",
            80,
            "DROP",
            false,
        )
        .variant(Variant::NoLocalDetector),
        f(
            "health check NodePort is accepted",
            IPv4,
            "1.2.3.4",
            NODE_IP,
            30000,
            "ACCEPT",
            false,
        )
        .only(Modes::Iptables),
        f(
            "UDP to a TCP-only port matches nothing in iptables",
            IPv4,
            "10.0.0.2",
            "172.30.0.41",
            80,
            "",
            false,
        )
        .udp()
        .only(Modes::Iptables),
        f(
            "UDP to a TCP-only port of a cluster IP is rejected by cluster-ips-check",
            IPv4,
            "10.0.0.2",
            "172.30.0.41",
            80,
            "REJECT",
            false,
        )
        .udp()
        .only(Modes::Nftables),
        f(
            "traffic to an unallocated cluster IP is dropped by cluster-ips-check",
            IPv4,
            "10.0.0.2",
            "172.30.0.99",
            80,
            "DROP",
            false,
        )
        .only(Modes::Nftables),
        f(
            "IPv4 localhost NodePorts work in iptables mode and are masqueraded",
            IPv4,
            "127.0.0.1",
            "127.0.0.1",
            3003,
            "10.180.0.3:80",
            true,
        )
        .only(Modes::Iptables),
        f(
            "nftables mode never accepts localhost NodePorts",
            IPv4,
            "127.0.0.1",
            "127.0.0.1",
            3003,
            "",
            false,
        )
        .only(Modes::Nftables),
        f(
            "IPv6 pod to IPv6 cluster IP",
            IPv6,
            "fd00:10::2",
            "fd00:172:30::41",
            80,
            "[fd00:10:180::1]:80",
            false,
        ),
        f(
            "IPv6 hairpin is masqueraded",
            IPv6,
            "fd00:10:180::1",
            "fd00:172:30::41",
            80,
            "[fd00:10:180::1]:80",
            true,
        ),
        f(
            "IPv6 external to NodePort is masqueraded",
            IPv6,
            "2600:5200::1",
            "2001:db8::1",
            3003,
            "[fd00:10:180::3]:80",
            true,
        ),
        f(
            "IPv6 external to NodePort with policy Local keeps the source",
            IPv6,
            "2600:5200::1",
            "2001:db8::1",
            3009,
            "[fd00:10:180::9]:80",
            false,
        ),
        f(
            "IPv6 localhost NodePorts are never accepted",
            IPv6,
            "::1",
            "::1",
            3003,
            "",
            false,
        ),
        f(
            "IPv6 Service without endpoints is rejected",
            IPv6,
            "fd00:10::2",
            "fd00:172:30::46",
            80,
            "REJECT",
            false,
        ),
        f(
            "a single-stack IPv4 Service has no IPv6 rules",
            IPv6,
            "fd00:10::2",
            "fd00:172:30::42",
            80,
            "",
            false,
        )
        .only(Modes::Iptables),
    ]
}

#[test]
fn kube_proxy_packet_flows() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for mode in ["iptables", "nftables"] {
        for variant in [
            Variant::Default,
            Variant::MasqueradeAll,
            Variant::NoLocalDetector,
        ] {
            let dp = fixture(mode, variant);
            for fl in flows().iter().filter(|fl| {
                std::mem::discriminant(&fl.variant) == std::mem::discriminant(&variant)
            }) {
                let applies = match fl.modes {
                    Modes::Both => true,
                    Modes::Iptables => mode == "iptables",
                    Modes::Nftables => mode == "nftables",
                };
                if !applies {
                    continue;
                }
                ran += 1;
                let (out, masq) = flow(&dp, fl.family, fl.src, fl.dst, fl.port, fl.proto);
                if out != fl.output || masq != fl.masq {
                    failures.push(format!(
                        "[{mode}] {}: got ({out:?}, masq {masq}), want ({:?}, masq {})",
                        fl.name, fl.output, fl.masq
                    ));
                }
            }
        }
    }
    assert!(ran >= 25 * 2 - 10, "only {ran} flows ran");
    assert!(
        failures.is_empty(),
        "{} failing flows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
