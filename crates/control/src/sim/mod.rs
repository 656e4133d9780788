//! The simulation: a scenario's components start, its nodes register, its manifests and
//! steps are applied, and the controllers reconcile after each step.
//!
//! The order within one step is the order a real cluster settles in: the API server admits
//! objects in the order kubectl sends them (file order), then node IPAM hands podCIDRs to new
//! nodes in registration order, the workload controllers create pods, the scheduler binds
//! them, the kubelets' CNI plugins give them addresses, and the EndpointSlice controller
//! publishes endpoints. Each of those is deterministic given the seed.

mod network;
mod scheduler;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::range_allocator::RangeAllocator;
use knetsim_ipam::{Family, NamedRng, rng};
use knetsim_model::flags::{Component, ComponentFlags};
use knetsim_model::objects::{self, Object, ObjectRef};
use knetsim_model::scenario::{ClusterConfig, NodeSpec as NodeEntry, Step};
use knetsim_model::{KubeVersion, Scenario};

use crate::components::{self, ControlPlaneConfig};
use crate::endpointslice;
use crate::service::{ServiceApi, ServiceApiConfig};
use crate::state::*;

use network::PodNetwork;
use workloads::Workloads;

/// Namespaces every cluster has.
const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// Node addresses for nodes that name no `node-ip`: kind's docker network, where kind
/// clusters get theirs, one address per cluster family.
const DEFAULT_NODE_NET_V4: &str = "172.18.0.0/16";
const DEFAULT_NODE_NET_V6: &str = "fc00:f853:ccd:e793::/64";

/// Runs a scenario to its final state.
pub fn simulate(scenario: &Scenario) -> ClusterState {
    let mut sim = Sim::new(scenario);
    sim.start(&scenario.cluster);
    for node in &scenario.nodes {
        sim.register_node(node);
    }
    sim.allocate_pod_cidrs();
    for obj in &scenario.manifests {
        sim.apply(obj);
    }
    sim.reconcile();
    for (i, step) in scenario.steps.iter().enumerate() {
        sim.step = i + 1;
        sim.run_step(&step.value);
        sim.reconcile();
    }
    sim.finish()
}

pub(crate) struct Sim<'a> {
    scenario: &'a Scenario,
    pub(crate) version: KubeVersion,
    pub(crate) step: usize,
    cluster: ClusterConfig,
    cp: ControlPlaneConfig,
    services: Option<ServiceApi>,
    node_ipam: Option<RangeAllocator>,
    pub(crate) network: PodNetwork,
    pub(crate) state: ClusterState,
    /// Per node: registration index, max pods, pods bound.
    pub(crate) nodes: BTreeMap<String, NodeInfo>,
    next_node_index: usize,
    /// Nodes whose `CIDRNotAvailable` event is recorded: a set, so that deciding whether a
    /// waiting node's retry repeats its event does not scan every event (which made clusters
    /// with more nodes than node blocks quadratic).
    cidr_not_available: std::collections::HashSet<String>,
    /// Nodes without podCIDRs, by registration index: what the node IPAM retries on each
    /// pass. Kept as a set so that a pass costs the waiting nodes, not every node (applying
    /// 20,000 Node objects one by one was quadratic).
    waiting_for_cidrs: BTreeMap<usize, String>,
    /// The waiting nodes whose `CIDRNotAvailable` event is not recorded yet.
    unreported: std::collections::BTreeSet<usize>,
    workloads: Workloads<'a>,
    /// The manifest last applied for each Service, for kubectl apply's three-way merge: the
    /// scenario's own object (the scenario outlives the simulation), not a copy.
    last_applied: BTreeMap<NamespacedName, &'a objects::Service>,
    pub(crate) name_rng: NamedRng,
    /// The creation index the next pod gets.
    pub(crate) next_pod_seq: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct NodeInfo {
    pub index: usize,
    pub max_pods: u32,
    pub pods: u32,
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        let seed = scenario.seed;
        Sim {
            scenario,
            version: scenario.version,
            step: 0,
            cluster: scenario.cluster.clone(),
            cp: components::configure(scenario.version, &scenario.cluster),
            services: None,
            node_ipam: None,
            network: PodNetwork::None,
            state: ClusterState {
                name: scenario.name.clone(),
                kubernetes_version: scenario.version,
                seed,
                components: BTreeMap::new(),
                network: NetworkConfig::default(),
                capacity: BTreeMap::new(),
                namespaces: BTreeSet::new(),
                nodes: BTreeMap::new(),
                services: BTreeMap::new(),
                endpoint_slices: BTreeMap::new(),
                pods: BTreeMap::new(),
                calico: None,
                events: Vec::new(),
            },
            nodes: BTreeMap::new(),
            next_node_index: 0,
            cidr_not_available: Default::default(),
            waiting_for_cidrs: BTreeMap::new(),
            unreported: Default::default(),
            workloads: Workloads::default(),
            last_applied: BTreeMap::new(),
            name_rng: rng::named(seed, "kube-controller-manager/generated-names"),
            next_pod_seq: 0,
        }
    }

    pub(crate) fn event(
        &mut self,
        type_: &'static str,
        reason: &str,
        obj: InvolvedObject,
        source: &str,
        message: String,
    ) {
        self.state.events.push(Event {
            step: self.step,
            type_,
            reason: reason.to_owned(),
            involved_object: obj,
            source: source.to_owned(),
            message,
        });
    }

    fn apiserver_up(&self) -> bool {
        self.cp.apiserver.is_some()
    }

    fn kcm_up(&self) -> bool {
        self.cp.kcm.is_some()
    }

    // -----------------------------------------------------------------------------------------
    // Components

    /// Starts (or restarts) the components with `cluster`'s flags. Allocations already made
    /// survive a restart: kube-apiserver's repair loop re-marks Service IPs, and the node IPAM
    /// occupies the podCIDRs nodes already have, as their real counterparts do.
    fn start(&mut self, cluster: &ClusterConfig) {
        self.cluster = cluster.clone();
        self.cp = components::configure(self.version, &self.cluster);
        self.state.components = self.cp.statuses.clone();
        self.state.network = self.cp.network.clone();
        self.state.network.cni = match &self.cluster.cni {
            knetsim_model::scenario::CniConfig::HostLocal => "host-local",
            knetsim_model::scenario::CniConfig::Kubenet => "kubenet",
            knetsim_model::scenario::CniConfig::Calico(_) => "calico",
        }
        .to_owned();
        for ns in BUILTIN_NAMESPACES {
            self.state.namespaces.insert(ns.to_owned());
        }

        // kube-apiserver: the Service registry, restored from the Services that exist.
        self.services = None;
        if let Some(api) = &self.cp.apiserver {
            let cfg = ServiceApiConfig {
                version: self.version,
                service_cidrs: api.service_cidrs.clone(),
                dual_stack: api.dual_stack,
                allocator_kind: api.allocator_kind,
                static_subrange: api.static_subrange,
                node_port_range: api.node_port_range,
                node_port_static_subrange: api.node_port_static_subrange,
                seed: self.scenario.seed,
            };
            match ServiceApi::new(cfg) {
                Ok(mut registry) => {
                    let existing: Vec<Service> = self.state.services.values().cloned().collect();
                    if existing.is_empty() {
                        let k = registry.create_kubernetes_service();
                        self.state
                            .services
                            .insert(NamespacedName::new("default", "kubernetes"), k);
                    } else {
                        for f in registry.restore_detailed(&existing) {
                            let involved = InvolvedObject {
                                kind: "Service".into(),
                                namespace: Some(f.namespace),
                                name: f.name,
                            };
                            self.event(
                                "Warning",
                                f.reason,
                                involved,
                                "ipallocator-repair-controller",
                                f.event,
                            );
                        }
                    }
                    self.services = Some(registry);
                }
                Err(msg) => self.fail_component(Component::KubeApiserver, msg),
            }
        }

        // kube-controller-manager: node IPAM over the cluster CIDRs.
        self.node_ipam = None;
        if let Some(kcm) = self.cp.kcm.clone().filter(|k| k.node_ipam) {
            let existing: Vec<(String, Vec<IpNet>)> = self
                .nodes_in_order()
                .into_iter()
                .filter_map(|n| {
                    let node = &self.state.nodes[&n];
                    (!node.spec.pod_cidrs.is_empty())
                        .then(|| (n.clone(), node.spec.pod_cidrs.clone()))
                })
                .collect();
            match RangeAllocator::new(
                &kcm.cluster_cidrs,
                &kcm.node_mask_sizes,
                &kcm.service_cidrs,
                &existing,
            ) {
                Ok(a) => self.node_ipam = Some(a),
                Err(msg) => {
                    self.fail_component(Component::KubeControllerManager, msg);
                    if let Some(s) = self.state.components.get_mut("kube-controller-manager") {
                        s.controller = Some("node-ipam-controller".into());
                    }
                }
            }
        }

        // The CNI plugin's IPAM, kept across restarts of the control plane.
        if matches!(self.network, PodNetwork::None) {
            self.network = PodNetwork::new(&self.cluster.cni, self.scenario.seed, &mut self.state);
        }
    }

    /// Marks a component as not started with `message`, and drops what depends on it.
    fn fail_component(&mut self, c: Component, message: String) {
        let status = self
            .state
            .components
            .entry(c.name().to_owned())
            .or_default();
        status.started = false;
        status.message = Some(message);
        match c {
            Component::KubeApiserver => {
                self.cp.apiserver = None;
                self.services = None;
            }
            Component::KubeControllerManager => {
                self.cp.kcm = None;
                self.node_ipam = None;
            }
            _ => {}
        }
    }

    /// What kubectl prints when kube-apiserver is not running.
    fn apiserver_down_message(&self) -> String {
        "The connection to the server localhost:6443 was refused - did you specify the right host or port?".to_owned()
    }

    // -----------------------------------------------------------------------------------------
    // Nodes

    pub(crate) fn nodes_in_order(&self) -> Vec<String> {
        let mut v: Vec<(&usize, &String)> = self.nodes.iter().map(|(n, i)| (&i.index, n)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n.clone()).collect()
    }

    /// A kubelet starts and registers its Node.
    fn register_node(&mut self, spec: &NodeEntry) {
        let name = spec.name.value.clone();
        let involved = InvolvedObject {
            kind: "Node".into(),
            namespace: None,
            name: name.clone(),
        };
        if !self.apiserver_up() {
            let msg = self.apiserver_down_message();
            self.event(
                "Warning",
                "RegistrationFailed",
                involved,
                "kubelet",
                format!("Unable to register node with API server: {msg}"),
            );
            return;
        }
        if self.state.nodes.contains_key(&name) {
            self.event(
                "Warning",
                "AlreadyExists",
                involved,
                "kubelet",
                format!("nodes \"{name}\" already exists"),
            );
            return;
        }
        let node_ips = match components::kubelet_node_ips(
            self.version,
            &self.cp.kubelet,
            &spec.kubelet,
            spec.node_ip.as_ref().map(|s| s.value.as_str()),
        ) {
            Ok(ips) => match components::node_addresses(self.version, &ips) {
                components::NodeAddresses::Host => self.default_node_ips(),
                // The host's default-route address of that family: here the node's default
                // address of that family.
                components::NodeAddresses::Detect(family) => {
                    let mut auto = self.default_node_ips_of(&[family]);
                    auto.truncate(1);
                    auto
                }
                components::NodeAddresses::Given(ips) => ips,
                // setNodeStatus logs "Failed to set some node status fields" and the Node is
                // registered without addresses (its other conditions are set as usual).
                components::NodeAddresses::Refused(msg) => {
                    self.event(
                        "Warning",
                        "NodeAddressesNotSet",
                        involved,
                        "kubelet",
                        format!("Failed to set some node status fields: {msg}"),
                    );
                    Vec::new()
                }
            },
            Err(msg) => {
                self.event("Warning", "KubeletNotStarted", involved, "kubelet", msg);
                return;
            }
        };
        let max_pods = components::kubelet_max_pods(&self.cp.kubelet, &spec.kubelet);
        let pod_cidrs: Vec<IpNet> = spec
            .pod_cidrs
            .iter()
            .filter_map(|c| c.value.parse::<IpNet>().ok().map(|n| n.trunc()))
            .collect();
        let mut sysctl = default_sysctls();
        for (k, v) in self.cluster.sysctl.iter().chain(spec.sysctl.iter()) {
            sysctl.insert(k.clone(), v.value.clone());
        }
        self.add_node(
            name,
            node_ips,
            spec.labels.clone(),
            pod_cidrs,
            max_pods,
            sysctl,
        );
    }

    /// A Node object from a manifest: registered as if its kubelet had started.
    fn register_node_object(&mut self, obj: &objects::NodeObject) {
        let name = obj.meta.name.value.clone();
        if self.state.nodes.contains_key(&name) {
            let involved = InvolvedObject {
                kind: "Node".into(),
                namespace: None,
                name: name.clone(),
            };
            self.event(
                "Warning",
                "AlreadyExists",
                involved,
                "kube-apiserver",
                format!("nodes \"{name}\" already exists"),
            );
            return;
        }
        let ips: Vec<IpAddr> = obj
            .internal_ips
            .iter()
            .filter_map(|s| s.value.parse().ok())
            .collect();
        let ips = if ips.is_empty() {
            self.default_node_ips()
        } else {
            ips
        };
        let pod_cidrs: Vec<IpNet> = obj
            .pod_cidrs
            .iter()
            .filter_map(|c| c.value.parse::<IpNet>().ok().map(|n| n.trunc()))
            .collect();
        let mut sysctl = default_sysctls();
        for (k, v) in &self.cluster.sysctl {
            sysctl.insert(k.clone(), v.value.clone());
        }
        let max_pods = components::kubelet_max_pods(&self.cp.kubelet, &ComponentFlags::default());
        self.add_node(
            name,
            ips,
            obj.meta.labels.clone(),
            pod_cidrs,
            max_pods,
            sysctl,
        );
    }

    /// One address per cluster family from kind's docker network, in cluster-family order.
    fn default_node_ips(&self) -> Vec<IpAddr> {
        let mut fams = self.state.network.ip_families.clone();
        if fams.is_empty() {
            fams.push(Family::IPv4);
        }
        self.default_node_ips_of(&fams)
    }

    /// The next node's default address in each of `fams`.
    fn default_node_ips_of(&self, fams: &[Family]) -> Vec<IpAddr> {
        let k = self.next_node_index as u128 + 2;
        fams.iter()
            .map(|f| {
                let net: IpNet = match f {
                    Family::IPv4 => DEFAULT_NODE_NET_V4,
                    Family::IPv6 => DEFAULT_NODE_NET_V6,
                }
                .parse()
                .expect("constant CIDR");
                knetsim_ipam::family::nth_addr(&net, k)
            })
            .collect()
    }

    fn add_node(
        &mut self,
        name: String,
        ips: Vec<IpAddr>,
        user_labels: BTreeMap<String, String>,
        pod_cidrs: Vec<IpNet>,
        max_pods: u32,
        sysctl: BTreeMap<String, String>,
    ) {
        let mut labels = BTreeMap::from([
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("kubernetes.io/hostname".to_owned(), name.clone()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ]);
        labels.extend(user_labels);
        // The kubelet reports addresses in --node-ip order: the primary family first.
        let addresses: Vec<NodeAddress> = ips
            .iter()
            .map(|ip| NodeAddress {
                type_: "InternalIP".into(),
                address: *ip,
            })
            .collect();
        let node = Node {
            api_version: "v1",
            kind: "Node",
            metadata: ObjectMeta {
                name: name.clone(),
                labels: labels.into(),
                ..Default::default()
            },
            spec: NodeSpec {
                pod_cidr: pod_cidrs.first().copied(),
                pod_cidrs: pod_cidrs.clone(),
                taints: vec![],
            },
            status: NodeStatus {
                addresses,
                capacity: BTreeMap::from([("pods".to_owned(), max_pods.to_string())]),
                conditions: vec![],
            },
            sysctl,
        };
        self.state.nodes.insert(name.clone(), node);
        self.nodes.insert(
            name.clone(),
            NodeInfo {
                index: self.next_node_index,
                max_pods,
                pods: 0,
            },
        );
        if pod_cidrs.is_empty() {
            self.waiting_for_cidrs
                .insert(self.next_node_index, name.clone());
            if !self.cidr_not_available.contains(&name) {
                self.unreported.insert(self.next_node_index);
            }
        }
        self.next_node_index += 1;
        if !pod_cidrs.is_empty()
            && let Some(ipam) = self.node_ipam.as_mut()
            && let Err(msg) = ipam.occupy(&name, &pod_cidrs)
        {
            let involved = InvolvedObject {
                kind: "Node".into(),
                namespace: None,
                name: name.clone(),
            };
            self.event(
                "Warning",
                "CIDRNotAvailable",
                involved,
                "cidrAllocator",
                msg,
            );
        }
        self.network.add_node(&name, &pod_cidrs);
        self.update_node_readiness(&name);
    }

    /// kube-controller-manager's node IPAM gives every node without podCIDRs one block per
    /// cluster CIDR, in registration order.
    fn allocate_pod_cidrs(&mut self) {
        if self.node_ipam.is_none() {
            return;
        }
        // Once the first cluster CIDR is full, every waiting node fails the same way with
        // nothing leaked until something is released; only nodes whose failure is not yet
        // recorded need visiting. Without this, registering nodes beyond the blocks one at a
        // time is quadratic.
        let full = self.node_ipam.as_ref().is_some_and(|i| i.fails_at_first());
        let waiting: Vec<(usize, String)> = if full {
            self.unreported
                .iter()
                .filter_map(|i| Some((*i, self.waiting_for_cidrs.get(i)?.clone())))
                .collect()
        } else {
            self.waiting_for_cidrs
                .iter()
                .map(|(i, n)| (*i, n.clone()))
                .collect()
        };
        for (index, name) in waiting {
            let Some(ipam) = self.node_ipam.as_mut() else {
                return;
            };
            match ipam.allocate() {
                Ok(cidrs) => {
                    self.waiting_for_cidrs.remove(&index);
                    self.unreported.remove(&index);
                    let node = self.state.nodes.get_mut(&name).expect("node exists");
                    node.spec.pod_cidr = cidrs.first().copied();
                    node.spec.pod_cidrs = cidrs.clone();
                    self.network.add_node(&name, &cidrs);
                    self.update_node_readiness(&name);
                }
                Err(_log) => {
                    // range_allocator.go records the node status change as an event
                    // (nodeutil.RecordNodeStatusChange) and logs the allocation error. The
                    // node is retried on every pass; the API server aggregates repeats of an
                    // event into one (with a count), so it is recorded once per node.
                    self.unreported.remove(&index);
                    if !self.cidr_not_available.insert(name.clone()) {
                        continue;
                    }
                    let involved = InvolvedObject {
                        kind: "Node".into(),
                        namespace: None,
                        name: name.clone(),
                    };
                    self.event(
                        "Normal",
                        "CIDRNotAvailable",
                        involved,
                        "cidrAllocator",
                        format!("Node {name} status is now: CIDRNotAvailable"),
                    );
                }
            }
        }
    }

    /// A node is Ready when its CNI plugin can wire pods: host-local and kubenet need the
    /// node's podCIDRs; Calico brings its own IPAM.
    fn update_node_readiness(&mut self, name: &str) {
        let ready = self.network.node_ready(name, &self.state.nodes[name]);
        let node = self.state.nodes.get_mut(name).expect("node exists");
        node.status.conditions = vec![if ready {
            Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("kubelet is posting ready status".into()),
            }
        } else {
            Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: Some("KubeletNotReady".into()),
                message: Some(
                    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
                        .into(),
                ),
            }
        }];
        node.spec.taints = if ready {
            vec![]
        } else {
            vec![Taint {
                key: "node.kubernetes.io/not-ready".into(),
                effect: "NoSchedule".into(),
            }]
        };
    }

    fn remove_node(&mut self, name: &str) {
        let Some(node) = self.state.nodes.remove(name) else {
            let involved = InvolvedObject {
                kind: "Node".into(),
                namespace: None,
                name: name.to_owned(),
            };
            self.event(
                "Warning",
                "NotFound",
                involved,
                "kube-apiserver",
                format!("nodes \"{name}\" not found"),
            );
            return;
        };
        if let Some(info) = self.nodes.remove(name) {
            self.waiting_for_cidrs.remove(&info.index);
            self.unreported.remove(&info.index);
        }
        if let Some(ipam) = self.node_ipam.as_mut()
            && let Err(msg) = ipam.release(name, &node.spec.pod_cidrs)
        {
            let involved = InvolvedObject {
                kind: "Node".into(),
                namespace: None,
                name: name.to_owned(),
            };
            self.event(
                "Warning",
                "CIDRReleaseFailed",
                involved,
                "cidrAllocator",
                msg,
            );
        }
        // The pod garbage collector deletes pods bound to a node that no longer exists.
        let orphans: Vec<NamespacedName> = self
            .state
            .pods
            .iter()
            .filter(|(_, p)| p.spec.node_name.as_deref() == Some(name))
            .map(|(k, _)| k.clone())
            .collect();
        for key in orphans {
            self.delete_pod(&key);
        }
        self.network.remove_node(name);
    }

    // -----------------------------------------------------------------------------------------
    // Objects

    /// `kubectl apply` of one object.
    fn apply(&mut self, obj: &'a Object) {
        if !self.apiserver_up() {
            let msg = self.apiserver_down_message();
            let involved = involved_of(obj);
            self.event("Warning", "ServerUnavailable", involved, "kubectl", msg);
            return;
        }
        match obj {
            Object::Namespace(ns) => {
                self.state.namespaces.insert(ns.meta.name.value.clone());
            }
            Object::Node(n) => {
                self.register_node_object(n);
                self.allocate_pod_cidrs();
            }
            Object::Service(svc) => self.apply_service(obj, svc),
            Object::Pod(pod) => self.apply_pod(obj, pod),
            Object::Workload(w) => {
                let ns = namespace_of(&w.meta);
                if self.namespace_missing(&ns, obj) {
                    return;
                }
                self.workloads.apply(ns, w);
            }
            Object::Other { .. } => {}
        }
    }

    /// Namespaced objects need their namespace; the API server answers NotFound otherwise.
    fn namespace_missing(&mut self, ns: &str, obj: &Object) -> bool {
        if self.state.namespaces.contains(ns) {
            return false;
        }
        self.event(
            "Warning",
            "NotFound",
            involved_of(obj),
            "kube-apiserver",
            format!("namespaces \"{ns}\" not found"),
        );
        true
    }

    fn apply_service(&mut self, obj: &Object, svc: &'a objects::Service) {
        let ns = namespace_of(&svc.meta);
        if self.namespace_missing(&ns, obj) {
            return;
        }
        let key = NamespacedName::new(ns.clone(), svc.meta.name.value.clone());
        if let Some((reason, message)) = kubectl_schema_check(self.version, svc) {
            let involved = InvolvedObject {
                kind: "Service".into(),
                namespace: Some(ns),
                name: key.name,
            };
            self.event("Warning", reason, involved, "kubectl", message);
            return;
        }
        let Some(api) = self.services.as_mut() else {
            return;
        };
        let result = match self.state.services.get(&key) {
            Some(live) => {
                let last = self.last_applied.get(&key).copied();
                api.apply_update(live, last, svc)
            }
            None => api.create(&ns, svc),
        };
        match result {
            Ok(stored) => {
                self.state.services.insert(key.clone(), stored);
                self.last_applied.insert(key, svc);
            }
            Err(e) => {
                let involved = InvolvedObject {
                    kind: "Service".into(),
                    namespace: Some(ns),
                    name: key.name,
                };
                self.event("Warning", e.reason, involved, "kube-apiserver", e.message);
            }
        }
    }

    fn apply_pod(&mut self, obj: &Object, pod: &objects::Pod) {
        let ns = namespace_of(&pod.meta);
        if self.namespace_missing(&ns, obj) {
            return;
        }
        let key = NamespacedName::new(ns.clone(), pod.meta.name.value.clone());
        if self.state.pods.contains_key(&key) {
            // Pod specs are immutable in the fields knetsim models; an identical re-apply is a
            // no-op and a changed one is rejected, as the API server does.
            return;
        }
        let new = workloads::pod_from_spec(
            &key,
            pod.meta.labels.clone().into(),
            &pod.spec,
            workloads::containers_of(&pod.spec),
            Vec::new().into(),
        );
        self.insert_pod(key, new);
    }

    pub(crate) fn insert_pod(&mut self, key: NamespacedName, mut pod: Pod) {
        pod.sim.creation_index = self.next_pod_seq;
        self.next_pod_seq += 1;
        self.state.pods.insert(key, Box::new(pod));
    }

    pub(crate) fn delete_pod(&mut self, key: &NamespacedName) {
        if let Some(pod) = self.state.pods.remove(key) {
            if pod.sim.admitted
                && let Some(info) = pod
                    .spec
                    .node_name
                    .as_ref()
                    .and_then(|n| self.nodes.get_mut(n))
            {
                info.pods = info.pods.saturating_sub(1);
            }
            if !pod.spec.host_network {
                self.network
                    .release(pod.spec.node_name.as_deref(), &pod.status.pod_ips);
            }
        }
    }

    fn delete(&mut self, target: &ObjectRef) {
        if !self.apiserver_up() {
            return;
        }
        let ns = target
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let key = NamespacedName::new(ns.clone(), target.name.clone());
        let involved = InvolvedObject {
            kind: target.kind.clone(),
            namespace: (target.kind != "Node" && target.kind != "Namespace").then(|| ns.clone()),
            name: target.name.clone(),
        };
        let plural = plural_of(&target.kind);
        let not_found = format!("{plural} \"{}\" not found", target.name);
        match target.kind.as_str() {
            "Service" => match self.state.services.remove(&key) {
                Some(svc) => {
                    if let Some(api) = self.services.as_mut() {
                        api.delete(&svc);
                    }
                    self.last_applied.remove(&key);
                }
                None => self.event("Warning", "NotFound", involved, "kube-apiserver", not_found),
            },
            "Pod" => {
                if self.state.pods.contains_key(&key) {
                    self.delete_pod(&key);
                } else {
                    self.event("Warning", "NotFound", involved, "kube-apiserver", not_found);
                }
            }
            "Node" => self.remove_node(&target.name),
            "Namespace" => {
                if BUILTIN_NAMESPACES.contains(&target.name.as_str())
                    && target.name != "kube-node-lease"
                {
                    self.event(
                        "Warning",
                        "Forbidden",
                        involved,
                        "kube-apiserver",
                        format!(
                            "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                            target.name
                        ),
                    );
                } else if self.state.namespaces.remove(&target.name) {
                    self.delete_namespace_contents(&target.name);
                } else {
                    self.event("Warning", "NotFound", involved, "kube-apiserver", not_found);
                }
            }
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
                if !self.workloads.delete(&target.kind, &key) {
                    self.event("Warning", "NotFound", involved, "kube-apiserver", not_found);
                }
            }
            _ => self.event("Warning", "NotFound", involved, "kube-apiserver", not_found),
        }
    }

    fn delete_namespace_contents(&mut self, ns: &str) {
        let svcs: Vec<NamespacedName> = self
            .state
            .services
            .keys()
            .filter(|k| k.namespace == ns)
            .cloned()
            .collect();
        for key in svcs {
            if let Some(svc) = self.state.services.remove(&key)
                && let Some(api) = self.services.as_mut()
            {
                api.delete(&svc);
            }
        }
        let pods: Vec<NamespacedName> = self
            .state
            .pods
            .keys()
            .filter(|k| k.namespace == ns)
            .cloned()
            .collect();
        for key in pods {
            self.delete_pod(&key);
        }
        self.workloads.delete_namespace(ns);
    }

    fn run_step(&mut self, step: &'a Step) {
        match step {
            Step::Apply(objs) => {
                for o in objs {
                    self.apply(o);
                }
            }
            Step::Delete(refs) => {
                for r in refs {
                    self.delete(&r.value);
                }
            }
            Step::AddNodes(nodes) => {
                for n in nodes {
                    self.register_node(n);
                }
                self.allocate_pod_cidrs();
            }
            Step::RemoveNodes(names) => {
                for n in names {
                    self.remove_node(&n.value);
                }
            }
            Step::Scale { target, replicas } => {
                let ns = target
                    .value
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned());
                let key = NamespacedName::new(ns.clone(), target.value.name.clone());
                if !self
                    .workloads
                    .scale(&target.value.kind, &key, replicas.value)
                {
                    let involved = InvolvedObject {
                        kind: target.value.kind.clone(),
                        namespace: Some(ns),
                        name: target.value.name.clone(),
                    };
                    let msg = format!(
                        "{} \"{}\" not found",
                        plural_of(&target.value.kind),
                        target.value.name
                    );
                    self.event("Warning", "NotFound", involved, "kube-apiserver", msg);
                }
            }
            Step::Configure(changes) => {
                let mut cluster = self.cluster.clone();
                for (c, flags) in &changes.components {
                    cluster.components.insert(*c, flags.clone());
                }
                if changes.ip_masq_agent.is_some() {
                    cluster.ip_masq_agent = changes.ip_masq_agent.clone();
                }
                for (k, v) in &changes.sysctl {
                    cluster.sysctl.insert(k.clone(), v.clone());
                }
                self.start(&cluster);
                self.allocate_pod_cidrs();
            }
        }
    }

    /// Controllers, scheduler, kubelets and the EndpointSlice controller settle.
    fn reconcile(&mut self) {
        // The node IPAM retries nodes still waiting for podCIDRs (it requeues them), so blocks
        // freed by a step go to the longest-waiting node first.
        self.allocate_pod_cidrs();
        if self.kcm_up() {
            workloads::reconcile(self);
        }
        if self.cp.scheduler_started && self.apiserver_up() {
            scheduler::schedule(self);
        }
        network::wire_pods(self);
        if self.kcm_up() && self.version.at_least(17) {
            let api_version = if self.version.at_least(21) {
                "discovery.k8s.io/v1"
            } else {
                "discovery.k8s.io/v1beta1"
            };
            endpointslice::reconcile(&mut self.state, self.scenario.seed, api_version);
            self.apiserver_endpoints(api_version);
        }
    }

    /// kube-apiserver's endpoint reconciler publishes its own address behind the `kubernetes`
    /// Service (`pkg/controlplane/reconcilers`): the `--advertise-address`, or — as kubeadm
    /// sets it — the control-plane node's address, which knetsim takes to be the first
    /// registered node's, on `--secure-port` (6443).
    fn apiserver_endpoints(&mut self, api_version: &'static str) {
        let Some(svc) = self
            .state
            .services
            .get(&NamespacedName::new("default", "kubernetes"))
        else {
            return;
        };
        let family = svc
            .spec
            .ip_families
            .first()
            .copied()
            .unwrap_or(Family::IPv4);
        let flags = self.cluster.flags(Component::KubeApiserver);
        let advertised = flags
            .and_then(|f| f.str("advertise-address"))
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        let ip = advertised.or_else(|| {
            let first = self.nodes_in_order().into_iter().next()?;
            self.state.nodes[&first].internal_ip(family)
        });
        let Some(ip) = ip.filter(|ip| Family::of_ip(ip) == family) else {
            return;
        };
        let port = flags
            .and_then(|f| f.int("secure-port"))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(6443);
        let slice = EndpointSlice {
            api_version,
            kind: "EndpointSlice",
            metadata: ObjectMeta {
                name: "kubernetes".into(),
                namespace: Some("default".into()),
                labels: BTreeMap::from([(
                    "kubernetes.io/service-name".to_owned(),
                    "kubernetes".to_owned(),
                )])
                .into(),
                ..Default::default()
            },
            address_type: family,
            endpoints: vec![Endpoint {
                addresses: IpList::one(ip),
                conditions: EndpointConditions {
                    ready: true,
                    serving: true,
                    terminating: false,
                },
                node_name: None,
                target_ref: None,
            }],
            ports: vec![EndpointPort {
                name: Some("https".into()),
                port,
                protocol: "TCP".into(),
            }],
        };
        self.state
            .endpoint_slices
            .insert(NamespacedName::new("default", "kubernetes"), slice);
    }

    fn finish(mut self) -> ClusterState {
        self.state.capacity = self.capacity();
        self.state.calico = self.network.calico_state();
        self.state
    }

    fn capacity(&self) -> BTreeMap<Family, FamilyCapacity> {
        let mut out: BTreeMap<Family, FamilyCapacity> = BTreeMap::new();
        if let Some(ipam) = &self.node_ipam {
            for set in ipam.sets() {
                let fam = Family::of_net(&set.cluster_cidr());
                let total = set.max_cidrs() as u128;
                let used = set.allocated() as u128;
                out.entry(fam).or_default().node_cidrs = Some(PoolUsage {
                    cidr: set.cluster_cidr(),
                    block_prefix: set.node_mask(),
                    total,
                    used,
                    free: total - used,
                });
            }
        }
        if let Some(api) = &self.services {
            for fam in [Family::IPv4, Family::IPv6] {
                if let Some(a) = api.allocator(fam) {
                    out.entry(fam).or_default().service_ips = Some(ServiceIpUsage {
                        cidr: a.cidr(),
                        allocator: match a.kind() {
                            knetsim_ipam::service_ip::AllocatorKind::Bitmap => "bitmap".into(),
                            knetsim_ipam::service_ip::AllocatorKind::IpAddress => {
                                "IPAddress".into()
                            }
                        },
                        total: a.size(),
                        used: a.used(),
                        free: a.free(),
                        static_band: a.static_band_size(),
                    });
                }
            }
        }
        // Pods with an address of each family, counted in one parallel pass.
        let with_ip = {
            use rayon::prelude::*;
            self.state
                .pods
                .par_iter()
                .filter(|(_, p)| !p.spec.host_network)
                .map(|(_, p)| {
                    let has = |fam| usize::from(p.ip_of(fam).is_some());
                    (has(Family::IPv4), has(Family::IPv6))
                })
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        for fam in [Family::IPv4, Family::IPv6] {
            if let Some(per_node) = self.network.per_node_capacity(fam, &self.state) {
                let used = match fam {
                    Family::IPv4 => with_ip.0,
                    Family::IPv6 => with_ip.1,
                };
                out.entry(fam).or_default().pod_ips = Some(PodIpUsage {
                    per_node,
                    used: used as u128,
                });
            }
        }
        out
    }
}

/// The sysctls knetsim models, at the values a node prepared for Kubernetes has (the seed
/// guide's `/etc/sysctl.d/k8s.conf`, and what kind's node image sets).
fn default_sysctls() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("net.ipv4.conf.all.forwarding".to_owned(), "1".to_owned()),
        ("net.ipv6.conf.all.forwarding".to_owned(), "1".to_owned()),
    ])
}

pub(crate) fn namespace_of(meta: &objects::ObjectMeta) -> String {
    meta.namespace
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| "default".to_owned())
}

fn involved_of(obj: &Object) -> InvolvedObject {
    let (namespace, name) = match obj {
        Object::Namespace(o) => (None, o.meta.name.value.clone()),
        Object::Node(o) => (None, o.meta.name.value.clone()),
        Object::Service(o) => (Some(namespace_of(&o.meta)), o.meta.name.value.clone()),
        Object::Pod(o) => (Some(namespace_of(&o.meta)), o.meta.name.value.clone()),
        Object::Workload(o) => (Some(namespace_of(&o.meta)), o.meta.name.value.clone()),
        Object::Other { name, .. } => (None, name.clone()),
    };
    InvolvedObject {
        kind: obj.kind().to_owned(),
        namespace,
        name,
    }
}

/// kubectl's schema validation of the Service fields that exist only in some releases: the
/// alpha `spec.ipFamily` (1.16–1.19) and its replacements `ipFamilies`, `ipFamilyPolicy` and
/// `clusterIPs` (1.20 on). Up to 1.24 kubectl validates on the client against the OpenAPI
/// schema; from 1.25 it asks the API server for strict field validation.
fn kubectl_schema_check(
    version: KubeVersion,
    svc: &objects::Service,
) -> Option<(&'static str, String)> {
    let field = if version.at_least(20) {
        svc.legacy_ip_family.as_ref().map(|_| "ipFamily")
    } else if svc.spec.ip_families.is_some() {
        Some("ipFamilies")
    } else if svc.spec.ip_family_policy.is_some() {
        Some("ipFamilyPolicy")
    } else if svc.spec.cluster_ips.is_some() {
        Some("clusterIPs")
    } else {
        None
    }?;
    Some(if version.at_least(25) {
        (
            "BadRequest",
            format!(
                "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.{field}\""
            ),
        )
    } else {
        (
            "ValidationError",
            format!(
                "error validating data: ValidationError(Service.spec): unknown field \"{field}\" in io.k8s.api.core.v1.ServiceSpec; if you choose to ignore these errors, turn validation off with --validate=false"
            ),
        )
    })
}

/// The resource name the API server uses in NotFound/AlreadyExists messages.
pub(crate) fn plural_of(kind: &str) -> String {
    match kind {
        "Service" => "services".into(),
        "Pod" => "pods".into(),
        "Node" => "nodes".into(),
        "Namespace" => "namespaces".into(),
        "Deployment" => "deployments.apps".into(),
        "ReplicaSet" => "replicasets.apps".into(),
        "StatefulSet" => "statefulsets.apps".into(),
        "DaemonSet" => "daemonsets.apps".into(),
        other => format!("{}s", other.to_ascii_lowercase()),
    }
}
