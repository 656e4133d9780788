//! The dataplane of the scenarios in `scenarios/dataplane/`, as a user sees it through
//! `knetsim routes`, `knetsim rules` and `knetsim trace`, snapshotted in `snapshots/dataplane/`
//! so that any change to a route, a kube-proxy rule, a NAT decision or a verdict shows up as a
//! reviewable diff.
//!
//! Two tables drive it: [`SCENARIOS`] says, per scenario, which nodes' routes and rules to
//! show, and [`TRACES`] lists the packet flows to trace, with the question each one answers.

use crate::harness::{knetsim, scenario_files, snapshot_settings};

/// Which kube-proxy rules a scenario's snapshot shows.
#[derive(Clone, Copy)]
enum RulesFormat {
    /// `--format iptables-save` (kube-proxy in iptables mode, plus the egress agents' rules).
    IptablesSave,
    /// `--format nft` (kube-proxy in nftables mode).
    Nft,
}

impl RulesFormat {
    fn arg(self) -> &'static str {
        match self {
            RulesFormat::IptablesSave => "iptables-save",
            RulesFormat::Nft => "nft",
        }
    }
}

struct Scenario {
    /// The file name below `scenarios/dataplane/`, without `.yaml`.
    name: &'static str,
    /// Every node, for `rules --format counts`.
    nodes: &'static [&'static str],
    /// The nodes whose routing tables are shown.
    route_nodes: &'static [&'static str],
    /// The node whose rules are shown.
    rules_node: &'static str,
    rules_format: RulesFormat,
}

const KIND_NODES: &[&str] = &["kind-control-plane", "kind-worker", "kind-worker2"];
const WORKERS: &[&str] = &["worker-1", "worker-2"];
const GUIDE_NODES: &[&str] = &["k8s-master", "k8s-node-1", "k8s-node-2"];
const LB_NODES: &[&str] = &["node-1", "node-2", "node-3"];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "udp-and-affinity",
        nodes: &["kind-control-plane", "kind-worker"],
        route_nodes: &["kind-worker"],
        // Both protocols of `dns`, the `recent` match of `sticky`, `no-dns`'s UDP REJECT.
        rules_node: "kind-worker",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "kind-iptables",
        nodes: KIND_NODES,
        // kind-worker2 holds the only endpoint of the NodePort Services.
        route_nodes: &["kind-worker", "kind-worker2"],
        rules_node: "kind-worker2",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "kind-nftables",
        nodes: KIND_NODES,
        route_nodes: &["kind-worker"],
        // A node without a local endpoint of echo-local: its NodePort is in
        // `no-endpoint-nodeports`.
        rules_node: "kind-control-plane",
        rules_format: RulesFormat::Nft,
    },
    Scenario {
        name: "ip-masq-agent",
        nodes: WORKERS,
        route_nodes: &["worker-1"],
        rules_node: "worker-1",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "ip-masq-agent-ipv4-only",
        nodes: WORKERS,
        route_nodes: &["worker-1"],
        rules_node: "worker-1",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "calico-guide",
        nodes: GUIDE_NODES,
        route_nodes: &["k8s-node-1", "k8s-node-2"],
        rules_node: "k8s-node-1",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "calico-no-ipv6-nat",
        nodes: GUIDE_NODES,
        route_nodes: &["k8s-node-1"],
        rules_node: "k8s-node-1",
        rules_format: RulesFormat::IptablesSave,
    },
    Scenario {
        name: "loadbalancer-and-forwarding",
        nodes: LB_NODES,
        // node-1 has IPv6 forwarding off; node-2 receives the load-balancer traffic.
        route_nodes: &["node-1", "node-2"],
        rules_node: "node-2",
        rules_format: RulesFormat::IptablesSave,
    },
];

/// `(scenario, --from, --to, further arguments)`: the flows whose traces are snapshotted.
#[rustfmt::skip]
const TRACES: &[(&str, &str, &str, &[&str])] = &[
    // UDP to a Service with a UDP and a TCP port of one number; ClientIP affinity; a UDP
    // Service without endpoints (REJECT).
    ("udp-and-affinity", "default/client", "svc:default/dns:dns", &["--family", "IPv6", "--proto", "udp"]),
    ("udp-and-affinity", "default/client", "svc:default/sticky", &["--family", "IPv4"]),
    ("udp-and-affinity", "default/client", "svc:default/no-dns:dns", &["--family", "IPv4", "--proto", "udp"]),

    // pod -> ClusterIP, both families: every endpoint, no masquerade.
    ("kind-iptables", "default/client", "svc:default/web:http", &["--family", "IPv4"]),
    ("kind-iptables", "default/debug", "svc:default/web:http", &["--family", "IPv6"]),
    // pod -> pod across nodes: kindnet's route to the other node's podCIDR.
    ("kind-iptables", "default/client", "default/echo", &["--family", "IPv4", "--port", "8080"]),
    ("kind-iptables", "default/client", "default/echo", &["--family", "IPv6", "--port", "8080"]),
    // external -> NodePort, externalTrafficPolicy Cluster: masqueraded, forwarded.
    ("kind-iptables", "external", "node:kind-control-plane", &["--family", "IPv4", "--port", "30081"]),
    // externalTrafficPolicy Local: a node with the endpoint keeps the client's address ...
    ("kind-iptables", "external", "node:kind-worker2", &["--family", "IPv6", "--port", "30080"]),
    // ... a node without one drops.
    ("kind-iptables", "external", "node:kind-control-plane", &["--family", "IPv4", "--port", "30080"]),
    // Hairpin: a pod reaching itself through its Service.
    ("kind-iptables", "default/echo", "svc:default/echo-cluster:http", &["--family", "IPv4"]),
    // A Service without endpoints: REJECT.
    ("kind-iptables", "default/client", "svc:default/nothing", &["--family", "IPv4"]),
    // pod -> internet, masqueraded by kindnet in both families.
    ("kind-iptables", "default/client", "external", &["--family", "IPv4", "--port", "443"]),
    ("kind-iptables", "default/client", "external", &["--family", "IPv6", "--port", "443"]),
    // The host's own traffic to a ClusterIP (marked for masquerade: not from a pod).
    ("kind-iptables", "node:kind-worker", "svc:default/echo-local:http", &["--family", "IPv4"]),

    ("kind-nftables", "default/client", "svc:default/web:http", &["--family", "IPv4"]),
    ("kind-nftables", "default/debug", "svc:default/web:http", &["--family", "IPv6"]),
    ("kind-nftables", "external", "node:kind-control-plane", &["--family", "IPv4", "--port", "30081"]),
    ("kind-nftables", "external", "node:kind-worker2", &["--family", "IPv6", "--port", "30080"]),
    ("kind-nftables", "external", "node:kind-control-plane", &["--family", "IPv4", "--port", "30080"]),
    ("kind-nftables", "default/echo", "svc:default/echo-cluster:http", &["--family", "IPv6"]),
    ("kind-nftables", "default/client", "svc:default/nothing", &["--family", "IPv6"]),
    ("kind-nftables", "default/client", "external", &["--family", "IPv6", "--port", "443"]),

    // ip-masq-agent with --enable-ipv6: both families masqueraded to the internet.
    ("ip-masq-agent", "default/app-1", "external", &["--family", "IPv4", "--port", "443"]),
    ("ip-masq-agent", "default/app-1", "external", &["--family", "IPv6", "--port", "443"]),
    ("ip-masq-agent", "default/app-1", "default/app-2", &["--family", "IPv6", "--port", "8080"]),
    // A non-masquerade destination outside the cluster: the reply cannot come back.
    ("ip-masq-agent", "default/app-1", "192.168.200.10", &["--port", "5432"]),

    // Without --enable-ipv6: IPv4 masqueraded, IPv6 leaves with its ULA source.
    ("ip-masq-agent-ipv4-only", "default/app-1", "external", &["--family", "IPv4", "--port", "443"]),
    ("ip-masq-agent-ipv4-only", "default/app-1", "external", &["--family", "IPv6", "--port", "443"]),
    ("ip-masq-agent-ipv4-only", "default/client", "svc:default/app:http", &["--family", "IPv6"]),
    // Regression: a pod reaching its own Service. The hairpin mark of its own endpoint chain
    // must apply to the path back to itself only, not to the other endpoints' paths.
    ("ip-masq-agent-ipv4-only", "default/app-1", "svc:default/app:http", &["--family", "IPv6"]),

    // Calico as the seed guide sets it up.
    ("calico-guide", "default/client", "default/server", &["--family", "IPv6", "--port", "8080"]),
    ("calico-guide", "default/client", "svc:default/server:http", &["--family", "IPv4"]),
    ("calico-guide", "default/client", "svc:default/server:http", &["--family", "IPv6"]),
    ("calico-guide", "default/client", "external", &["--family", "IPv4", "--port", "443"]),
    ("calico-guide", "default/client", "external", &["--family", "IPv6", "--port", "443"]),

    // Without CALICO_IPV6POOL_NAT_OUTGOING.
    ("calico-no-ipv6-nat", "default/client", "external", &["--family", "IPv4", "--port", "443"]),
    ("calico-no-ipv6-nat", "default/client", "external", &["--family", "IPv6", "--port", "443"]),

    // LoadBalancer with loadBalancerSourceRanges, externalTrafficPolicy Local.
    ("loadbalancer-and-forwarding", "external", "198.51.100.10", &[]),
    ("loadbalancer-and-forwarding", "external", "2001:db8:1b::10", &[]),
    ("loadbalancer-and-forwarding", "203.0.113.200", "198.51.100.10", &[]),
    ("loadbalancer-and-forwarding", "2001:db8:eeee::10", "2001:db8:1b::10", &[]),
    ("loadbalancer-and-forwarding", "default/tools", "198.51.100.10", &[]),
    // IPv6 forwarding off on node-1: out of its pod, into its pod, and the node's own traffic.
    ("loadbalancer-and-forwarding", "default/tools", "default/shop-1", &["--family", "IPv6", "--port", "8080"]),
    ("loadbalancer-and-forwarding", "default/shop-1", "default/tools", &["--family", "IPv6", "--port", "8080"]),
    ("loadbalancer-and-forwarding", "default/tools", "default/shop-1", &["--family", "IPv4", "--port", "8080"]),
    ("loadbalancer-and-forwarding", "node:node-1", "svc:default/shop:http", &["--family", "IPv6"]),
];

fn file_of(name: &str) -> String {
    format!("scenarios/dataplane/{name}.yaml")
}

/// Runs `knetsim <args>`, requires success and no diagnostics, and returns what it printed
/// under a `$ knetsim ...` line, as a terminal would show it.
fn shown(args: &[&str]) -> String {
    let out = knetsim(args);
    let line = format!("$ knetsim {}", args.join(" "));
    assert_eq!(out.code, 0, "{line}\n{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "{line} printed diagnostics");
    format!("{line}\n{}", out.stdout)
}

#[test]
fn every_dataplane_scenario_is_in_the_table() {
    let mut on_disk: Vec<String> = scenario_files("scenarios/dataplane");
    on_disk.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| file_of(s.name)).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    for (name, from, to, _) in TRACES {
        assert!(
            SCENARIOS.iter().any(|s| s.name == *name),
            "trace {from} -> {to} names unknown scenario {name}"
        );
    }
}

#[test]
fn dataplane_routes_rules_and_traces_are_snapshotted() {
    for s in SCENARIOS {
        let file = file_of(s.name);
        let settings = snapshot_settings("dataplane");

        let routes: Vec<String> = s
            .route_nodes
            .iter()
            .map(|n| shown(&["routes", &file, "--node", n]))
            .collect();
        settings.bind(|| insta::assert_snapshot!(format!("{}__routes", s.name), routes.join("\n")));

        let rules = shown(&[
            "rules",
            &file,
            "--node",
            s.rules_node,
            "--format",
            s.rules_format.arg(),
        ]);
        settings.bind(|| insta::assert_snapshot!(format!("{}__rules", s.name), rules));

        let counts: Vec<String> = s
            .nodes
            .iter()
            .map(|n| shown(&["rules", &file, "--node", n, "--format", "counts"]))
            .collect();
        settings.bind(|| insta::assert_snapshot!(format!("{}__counts", s.name), counts.join("\n")));

        let traces: Vec<String> = TRACES
            .iter()
            .filter(|(name, ..)| *name == s.name)
            .map(|(_, from, to, extra)| {
                let mut args = vec!["trace", file.as_str(), "--from", from, "--to", to];
                args.extend_from_slice(extra);
                shown(&args)
            })
            .collect();
        assert!(!traces.is_empty(), "{} has no traces in TRACES", s.name);
        settings.bind(|| insta::assert_snapshot!(format!("{}__traces", s.name), traces.join("\n")));
    }
}

/// `(scenario, further arguments of knetsim reach)`: the reachability matrices snapshotted
/// (one snapshot per scenario, `<scenario>__reach`), with the question each answers.
#[rustfmt::skip]
const REACHES: &[(&str, &[&str])] = &[
    // Every pod, a node and the internet against every Service and the internet: hairpin
    // masquerade (`*`) for pods reaching their own Service, REJECT for the Service without
    // endpoints, kindnet's masquerade to the internet, nothing in from outside.
    ("kind-iptables", &["--from", "pods:default,node:kind-worker,external", "--to", "services:default,external", "--family", "IPv4"]),
    ("kind-iptables", &["--from", "pods:default,node:kind-worker,external", "--to", "services:default,external", "--family", "IPv6"]),
    // The same in nftables mode, by label: the web Deployment's pods.
    ("kind-nftables", &["--from", "pods:default/app=web,default/client", "--to", "services:default", "--family", "IPv6"]),
    // Without --enable-ipv6: IPv6 reaches the internet unmasqueraded and is dropped; each
    // destination's family (kubernetes is IPv4 only).
    ("ip-masq-agent-ipv4-only", &["--from", "pods:default", "--to", "services:default,external"]),
    ("ip-masq-agent-ipv4-only", &["--from", "pods:default", "--to", "pods:default,external", "--family", "IPv6", "--port", "8080"]),
    // Calico: pod to pod across nodes, and the nodes themselves.
    ("calico-guide", &["--from", "pods:default,nodes:*", "--to", "pods:default,external", "--family", "IPv6", "--port", "8080"]),
    // IPv6 forwarding off on node-1, loadBalancerSourceRanges: some endpoints unreachable,
    // clients outside the ranges dropped, cells that cannot be asked in a family.
    ("loadbalancer-and-forwarding", &["--from", "pods:default,nodes:*,external,203.0.113.200,2001:db8:eeee::10", "--to", "services:default,198.51.100.10,2001:db8:1b::10", "--family", "IPv6"]),
    // JSON: each cell's counts; a question that cannot be asked carries its reason.
    ("loadbalancer-and-forwarding", &["--from", "default/tools,203.0.113.200", "--to", "svc:default/shop,2001:db8:1b::10", "--family", "IPv6", "-o", "json"]),
];

#[test]
fn reachability_matrices_are_snapshotted() {
    for s in SCENARIOS {
        let file = file_of(s.name);
        let outputs: Vec<String> = REACHES
            .iter()
            .filter(|(name, _)| *name == s.name)
            .map(|(_, extra)| {
                let mut args = vec!["reach", file.as_str()];
                args.extend_from_slice(extra);
                shown(&args)
            })
            .collect();
        if outputs.is_empty() {
            continue;
        }
        let settings = snapshot_settings("dataplane");
        settings.bind(|| insta::assert_snapshot!(format!("{}__reach", s.name), outputs.join("\n")));
    }
    for (name, _) in REACHES {
        assert!(
            SCENARIOS.iter().any(|s| s.name == *name),
            "reach names unknown scenario {name}"
        );
    }
}

#[test]
fn reach_rejects_bad_input_with_exit_2() {
    let file = file_of("kind-iptables");
    // (arguments after the file, what stderr says)
    let cases: &[(&[&str], &str)] = &[
        (
            &["--from", "default/nope", "--to", "external"],
            "error: source: pod default/nope not found\n",
        ),
        (
            &["--from", "default/client", "--to", "svc:default/web:grpc"],
            "error: destination: Service default/web has no port grpc\n",
        ),
        (
            &["--from", "pods:nope", "--to", "external"],
            "error: source: \"pods:nope\": namespace \"nope\" not found\n",
        ),
        (
            &["--from", "pods:kube-system", "--to", "external"],
            "error: source: \"pods:kube-system\" matches no pod\n",
        ),
        (
            &["--from", "services:default", "--to", "external"],
            "error: source: a Service cannot send packets\n",
        ),
        (
            &["--from", "pods:default/tier", "--to", "external"],
            "error: source: \"pods:default/tier\": the label selector must be KEY=VALUE\n",
        ),
        (
            &[
                "--from",
                "default/client",
                "--to",
                "external",
                "--proto",
                "icmp",
            ],
            "error: unknown protocol \"icmp\"\n",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["reach", file.as_str()];
        args.extend_from_slice(extra);
        let out = knetsim(&args);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (2, "", *want),
            "{args:?}"
        );
    }
    // Flags clap checks, and a scenario with errors: its diagnostics, located.
    let out = knetsim(&["reach", &file, "--from", "default/client"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--to <TO>"), "{}", out.stderr);
    let out = knetsim(&[
        "reach",
        "scenarios/bad/07-unknown-flag-typo.yaml",
        "--from",
        "external",
        "--to",
        "external",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("--> scenarios/bad/07-unknown-flag-typo.yaml:6:5"),
        "{}",
        out.stderr
    );
}
