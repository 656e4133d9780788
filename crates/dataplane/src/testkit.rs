//! Building [`ClusterState`] values by hand, for tests (this crate's and the lead's) that need a
//! simulated cluster without running the control plane.
//!
//! The builder fills only what the dataplane reads: node addresses, podCIDRs and sysctls; pod
//! IPs; Services with their allocated IPs; EndpointSlices; the network and kube-proxy
//! configuration. Everything is explicit, so a test states the cluster it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_control::state::*;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;

/// A [`ClusterState`] under construction.
#[derive(Debug)]
pub struct ClusterBuilder {
    state: ClusterState,
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("testkit: bad IP {s:?}"))
}

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|_| panic!("testkit: bad CIDR {s:?}"))
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    }
}

/// One endpoint of an EndpointSlice: its address, node and readiness.
#[derive(Clone, Debug)]
pub struct Ep {
    pub ip: &'static str,
    pub node: Option<&'static str>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

impl Ep {
    /// A ready endpoint on `node`.
    pub fn on(ip: &'static str, node: &'static str) -> Ep {
        Ep {
            ip,
            node: Some(node),
            ready: true,
            serving: true,
            terminating: false,
        }
    }
    /// A ready endpoint without a node name (never local), as proxier_test.go often writes.
    pub fn anywhere(ip: &'static str) -> Ep {
        Ep {
            ip,
            node: None,
            ready: true,
            serving: true,
            terminating: false,
        }
    }
    /// A terminating endpoint that still serves.
    pub fn terminating(mut self) -> Ep {
        self.ready = false;
        self.terminating = true;
        self
    }
}

impl ClusterBuilder {
    /// An empty cluster on `version`, with kube-proxy in `mode` ("iptables" or "nftables") and
    /// the given service and cluster CIDRs (kube-proxy's `--cluster-cidr` is set to the same).
    pub fn new(minor: u16, mode: &str, service_cidrs: &[&str], cluster_cidrs: &[&str]) -> Self {
        let service_cidrs: Vec<IpNet> = service_cidrs.iter().map(|s| net(s)).collect();
        let cluster_cidrs: Vec<IpNet> = cluster_cidrs.iter().map(|s| net(s)).collect();
        let ip_families = service_cidrs.iter().map(Family::of_net).collect();
        let mut components = BTreeMap::new();
        components.insert(
            "kube-proxy".to_string(),
            ComponentStatus {
                started: true,
                ..ComponentStatus::default()
            },
        );
        let state = ClusterState {
            name: "test".to_string(),
            kubernetes_version: KubeVersion::new(minor),
            seed: 0,
            components,
            network: NetworkConfig {
                ip_families,
                service_cidrs,
                cluster_cidrs: cluster_cidrs.clone(),
                node_cidr_mask_sizes: vec![],
                service_node_port_range: (30000, 32767),
                cni: "host-local".to_string(),
                kube_proxy: Some(ProxyConfig {
                    mode: mode.to_string(),
                    cluster_cidrs,
                    masquerade_all: false,
                    nodeport_addresses: vec![],
                    detect_local_mode: "ClusterCIDR".to_string(),
                    masquerade_bit: 14,
                    localhost_nodeports: true,
                    pod_bridge_interface: None,
                    pod_interface_name_prefix: None,
                }),
            },
            capacity: BTreeMap::new(),
            namespaces: BTreeSet::new(),
            nodes: BTreeMap::new(),
            services: BTreeMap::new(),
            endpoint_slices: BTreeMap::new(),
            pods: BTreeMap::new(),
            calico: None,
            events: vec![],
        };
        ClusterBuilder { state }
    }

    /// Changes kube-proxy's configuration.
    pub fn proxy(mut self, f: impl FnOnce(&mut ProxyConfig)) -> Self {
        if let Some(p) = self.state.network.kube_proxy.as_mut() {
            f(p);
        }
        self
    }

    /// Sets the CNI name ("host-local", "kubenet", "calico").
    pub fn cni(mut self, cni: &str) -> Self {
        self.state.network.cni = cni.to_string();
        self
    }

    /// Sets Calico's IPAM state.
    pub fn calico(mut self, calico: CalicoState) -> Self {
        self.state.calico = Some(calico);
        self
    }

    /// A Ready node with InternalIPs (primary first) and podCIDRs.
    pub fn node(mut self, name: &str, ips: &[&str], pod_cidrs: &[&str]) -> Self {
        let pod_cidrs: Vec<IpNet> = pod_cidrs.iter().map(|s| net(s)).collect();
        let node = Node {
            api_version: "v1",
            kind: "Node",
            metadata: meta(None, name),
            spec: NodeSpec {
                pod_cidr: pod_cidrs.first().copied(),
                pod_cidrs,
                taints: vec![],
            },
            status: NodeStatus {
                addresses: ips
                    .iter()
                    .map(|s| NodeAddress {
                        type_: "InternalIP".to_string(),
                        address: ip(s),
                    })
                    .collect(),
                capacity: BTreeMap::new(),
                conditions: vec![Condition {
                    type_: "Ready".to_string(),
                    status: "True".to_string(),
                    reason: None,
                    message: None,
                }],
            },
            sysctl: BTreeMap::new(),
        };
        self.state.nodes.insert(name.to_string(), node);
        self
    }

    /// Sets a sysctl on a node.
    pub fn sysctl(mut self, node: &str, key: &str, value: &str) -> Self {
        if let Some(n) = self.state.nodes.get_mut(node) {
            n.sysctl.insert(key.to_string(), value.to_string());
        }
        self
    }

    /// A running pod on `node` with its IPs (primary first).
    pub fn pod(mut self, namespace: &str, name: &str, node: &str, ips: &[&str]) -> Self {
        let ips: Vec<IpAddr> = ips.iter().map(|s| ip(s)).collect();
        let host_ips: IpList = self
            .state
            .nodes
            .get(node)
            .map(|n| n.internal_ips().collect())
            .unwrap_or_default();
        let pod = Pod {
            api_version: "v1",
            kind: "Pod",
            metadata: meta(Some(namespace), name),
            spec: PodSpec {
                node_name: Some(node.to_string()),
                host_network: false,
                node_selector: Default::default(),
                containers: vec![].into(),
            },
            sim: Default::default(),
            status: PodStatus {
                phase: "Running",
                conditions: vec![],
                host_ip: host_ips.first().copied(),
                host_ips,
                pod_ip: ips.first().copied(),
                pod_ips: ips.into_iter().collect(),
            },
        };
        self.state.namespaces.insert(namespace.to_string());
        self.state
            .pods
            .insert(NamespacedName::new(namespace, name), Box::new(pod));
        self
    }

    /// A Service of `type_` with its cluster IPs (primary first) and TCP ports
    /// `(name, port, nodePort)`; `f` adjusts anything else.
    pub fn service(
        mut self,
        namespace: &str,
        name: &str,
        type_: &str,
        cluster_ips: &[&str],
        ports: &[(&str, u16, u16)],
        f: impl FnOnce(&mut ServiceSpec, &mut ServiceStatus),
    ) -> Self {
        let mut spec = ServiceSpec {
            type_: type_.to_string(),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: ports
                .iter()
                .map(|(pname, port, node_port)| ServicePort {
                    name: if pname.is_empty() {
                        None
                    } else {
                        Some(pname.to_string())
                    },
                    protocol: "TCP".to_string(),
                    port: *port,
                    target_port: TargetPort::Number(*port),
                    node_port: if *node_port == 0 {
                        None
                    } else {
                        Some(*node_port)
                    },
                })
                .collect(),
            cluster_ip: cluster_ips.first().map(|s| s.to_string()),
            cluster_ips: cluster_ips.iter().map(|s| s.to_string()).collect(),
            ip_families: cluster_ips
                .iter()
                .filter_map(|s| s.parse::<IpAddr>().ok())
                .map(|ip| Family::of_ip(&ip))
                .collect(),
            ip_family_policy: Some(
                if cluster_ips.len() > 1 {
                    "RequireDualStack"
                } else {
                    "SingleStack"
                }
                .to_string(),
            ),
            ..ServiceSpec::default()
        };
        if type_ == "NodePort" || type_ == "LoadBalancer" {
            spec.external_traffic_policy = Some("Cluster".to_string());
        }
        spec.internal_traffic_policy = Some("Cluster".to_string());
        let mut status = ServiceStatus::default();
        f(&mut spec, &mut status);
        let svc = Service {
            api_version: "v1",
            kind: "Service",
            metadata: meta(Some(namespace), name),
            spec,
            status,
        };
        self.state.namespaces.insert(namespace.to_string());
        self.state
            .services
            .insert(NamespacedName::new(namespace, name), svc);
        self
    }

    /// An EndpointSlice of `family` for Service `namespace/service`, with TCP ports
    /// `(name, port)` and the given endpoints.
    pub fn slice(
        mut self,
        namespace: &str,
        service: &str,
        family: Family,
        ports: &[(&str, u16)],
        endpoints: &[Ep],
    ) -> Self {
        let suffix = match family {
            Family::IPv4 => "v4",
            Family::IPv6 => "v6",
        };
        let name = format!("{service}-{suffix}");
        let mut m = meta(Some(namespace), &name);
        m.labels.make_mut().insert(
            "kubernetes.io/service-name".to_string(),
            service.to_string(),
        );
        let slice = EndpointSlice {
            api_version: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: m,
            address_type: family,
            endpoints: endpoints
                .iter()
                .map(|e| Endpoint {
                    addresses: IpList::one(ip(e.ip)),
                    conditions: EndpointConditions {
                        ready: e.ready,
                        serving: e.serving,
                        terminating: e.terminating,
                    },
                    node_name: e.node.map(str::to_string),
                    target_ref: None,
                })
                .collect(),
            ports: ports
                .iter()
                .map(|(pname, port)| EndpointPort {
                    name: if pname.is_empty() {
                        None
                    } else {
                        Some(pname.to_string())
                    },
                    port: *port,
                    protocol: "TCP".to_string(),
                })
                .collect(),
        };
        self.state
            .endpoint_slices
            .insert(NamespacedName::new(namespace, &name), slice);
        self
    }

    pub fn build(self) -> ClusterState {
        self.state
    }
}

/// The shape of a generated cluster for benchmarks: `nodes` dual-stack nodes, `services`
/// dual-stack ClusterIP Services with one TCP port (`http`, 80 → 8080) and `endpoints` ready
/// endpoints per family, each a running pod, spread round-robin over the nodes.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub minor: u16,
    pub mode: &'static str,
    pub nodes: usize,
    pub services: usize,
    pub endpoints: usize,
    /// Namespaces the Services and pods are spread over (`ns-0` …).
    pub namespaces: usize,
}

/// Builds the cluster `s` describes, directly (no control plane): nodes at 172.16.0.0/16 and
/// fd00:172:16::/64, podCIDRs `/24` and `/64` from 10.128.0.0/9 and fd00:10:244::/48, Services
/// from 10.96.0.0/12 and fd00:10:96::/108, kube-proxy in `s.mode` with `--cluster-cidr` set.
///
/// Panics when the shape does not fit those ranges (more than 32,768 nodes, more than 250
/// pods on a node, or more than 1,000,000 Services): it is a benchmark fixture.
pub fn scale(s: &Scale) -> ClusterState {
    use knetsim_ipam::family::{ip_to_u128, u128_to_ip};
    let pods_total = s.services * s.endpoints;
    let per_node = pods_total.div_ceil(s.nodes.max(1));
    assert!(
        s.nodes <= 32_768 && per_node <= 250 && s.services < 1_000_000 && s.namespaces > 0,
        "testkit::scale: shape {s:?} does not fit the fixture's address ranges"
    );
    let mut b = ClusterBuilder::new(
        s.minor,
        s.mode,
        &["10.96.0.0/12", "fd00:10:96::/108"],
        &["10.128.0.0/9", "fd00:10:244::/48"],
    );
    let v4 = |base: &str, off: u128| u128_to_ip(Family::IPv4, ip_to_u128(ip(base)) + off);
    let v6 = |base: &str, off: u128| u128_to_ip(Family::IPv6, ip_to_u128(ip(base)) + off);
    let node_names: Vec<String> = (0..s.nodes).map(|n| format!("node-{n}")).collect();
    for (n, name) in node_names.iter().enumerate() {
        let n128 = n as u128;
        let a4 = v4("172.16.0.0", n128 + 1).to_string();
        let a6 = v6("fd00:172:16::", n128 + 1).to_string();
        let c4 = format!("{}/24", v4("10.128.0.0", n128 << 8));
        let c6 = format!("{}/64", v6("fd00:10:244::", n128 << 64));
        b = b.node(name, &[&a4, &a6], &[&c4, &c6]);
    }
    let mut state = b.build();
    let mut next_on_node = vec![2u128; s.nodes];
    for i in 0..s.services {
        let ns = format!("ns-{}", i % s.namespaces);
        let name = format!("svc-{i}");
        state.namespaces.insert(ns.clone());
        let cips = [
            v4("10.96.0.0", 10 + i as u128).to_string(),
            v6("fd00:10:96::", 10 + i as u128).to_string(),
        ];
        let spec = ServiceSpec {
            type_: "ClusterIP".to_string(),
            selector: Some(BTreeMap::from([("app".to_string(), name.clone())])),
            ports: vec![ServicePort {
                name: Some("http".to_string()),
                protocol: "TCP".to_string(),
                port: 80,
                target_port: TargetPort::Number(8080),
                node_port: None,
            }],
            cluster_ip: Some(cips[0].clone()),
            cluster_ips: cips.to_vec(),
            ip_families: vec![Family::IPv4, Family::IPv6],
            ip_family_policy: Some("PreferDualStack".to_string()),
            internal_traffic_policy: Some("Cluster".to_string()),
            ..ServiceSpec::default()
        };
        state.services.insert(
            NamespacedName::new(&ns, &name),
            Service {
                api_version: "v1",
                kind: "Service",
                metadata: meta(Some(&ns), &name),
                spec,
                status: ServiceStatus::default(),
            },
        );
        let mut eps: [Vec<Endpoint>; 2] = [Vec::new(), Vec::new()];
        for k in 0..s.endpoints {
            let node = (i * s.endpoints + k) % s.nodes;
            let slot = next_on_node[node];
            next_on_node[node] += 1;
            let ip4 = v4("10.128.0.0", ((node as u128) << 8) + slot);
            let ip6 = v6("fd00:10:244::", ((node as u128) << 64) + slot);
            let pod_name = format!("{name}-{k}");
            let host_ips: IpList = state.nodes[&node_names[node]].internal_ips().collect();
            let mut m = meta(Some(&ns), &pod_name);
            m.labels.make_mut().insert("app".to_string(), name.clone());
            state.pods.insert(
                NamespacedName::new(&ns, &pod_name),
                Box::new(Pod {
                    api_version: "v1",
                    kind: "Pod",
                    metadata: m,
                    spec: PodSpec {
                        node_name: Some(node_names[node].clone()),
                        ..PodSpec::default()
                    },
                    sim: Default::default(),
                    status: PodStatus {
                        phase: "Running",
                        conditions: vec![],
                        host_ip: host_ips.first().copied(),
                        host_ips,
                        pod_ip: Some(ip4),
                        pod_ips: [ip4, ip6].into_iter().collect(),
                    },
                }),
            );
            for (f, ip) in [ip4, ip6].into_iter().enumerate() {
                eps[f].push(Endpoint {
                    addresses: IpList::one(ip),
                    conditions: EndpointConditions {
                        ready: true,
                        serving: true,
                        terminating: false,
                    },
                    node_name: Some(node_names[node].clone()),
                    target_ref: Some(TargetRef {
                        kind: "Pod",
                        namespace: ns.clone(),
                        name: pod_name.clone(),
                    }),
                });
            }
        }
        for (family, endpoints) in [Family::IPv4, Family::IPv6].into_iter().zip(eps) {
            let slice_name = format!(
                "{name}-{}",
                if family == Family::IPv4 { "v4" } else { "v6" }
            );
            let mut m = meta(Some(&ns), &slice_name);
            m.labels
                .make_mut()
                .insert("kubernetes.io/service-name".to_string(), name.clone());
            state.endpoint_slices.insert(
                NamespacedName::new(&ns, &slice_name),
                EndpointSlice {
                    api_version: "discovery.k8s.io/v1",
                    kind: "EndpointSlice",
                    metadata: m,
                    address_type: family,
                    endpoints,
                    ports: vec![EndpointPort {
                        name: Some("http".to_string()),
                        port: 8080,
                        protocol: "TCP".to_string(),
                    }],
                },
            );
        }
    }
    state
}
