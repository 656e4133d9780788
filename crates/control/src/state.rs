//! The state document: what the simulated cluster looks like after a scenario ran.
//!
//! Nodes, Services, Pods and EndpointSlices use Kubernetes' own object shapes (field names and
//! nesting as `kubectl get -o yaml` prints them) so that the document diffs against a real
//! cluster. `components`, `network`, `capacity` and `events` are knetsim's own sections.
//!
//! Every collection that is written out is ordered (`BTreeMap` by name, or `Vec` in the order
//! things happened), which is what makes output byte-identical from run to run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;
use serde::{Serialize, Serializer};

/// `namespace/name`, ordered by namespace then name, as `kubectl get -A` lists objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespacedName {
    pub namespace: String,
    pub name: String,
}

impl NamespacedName {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NamespacedName {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The whole simulated cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub name: String,
    pub kubernetes_version: KubeVersion,
    pub seed: u64,
    /// Each component by binary name: whether it started, its effective flags, and what it
    /// logged if it did not.
    pub components: BTreeMap<String, ComponentStatus>,
    /// The effective network configuration the components agreed on.
    pub network: NetworkConfig,
    /// Headroom per family.
    pub capacity: BTreeMap<Family, FamilyCapacity>,
    pub namespaces: BTreeSet<String>,
    #[serde(serialize_with = "values")]
    pub nodes: BTreeMap<String, Node>,
    #[serde(serialize_with = "values")]
    pub services: BTreeMap<NamespacedName, Service>,
    #[serde(serialize_with = "values")]
    pub endpoint_slices: BTreeMap<NamespacedName, EndpointSlice>,
    /// Boxed: the map's nodes then hold 56 bytes per pod rather than 400, so building the map
    /// of a limits-scale cluster's 150,000 pods moves 8 MB, not 60 (on one thread), and the
    /// pods themselves are made, in parallel, where they stay.
    #[serde(serialize_with = "values")]
    pub pods: BTreeMap<NamespacedName, Box<Pod>>,
    /// Calico IPAM state (pools and block affinities), when Calico is the CNI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calico: Option<CalicoState>,
    /// What the control plane reported, in the order it happened.
    pub events: Vec<Event>,
}

/// Calico's IPAM state, in the shapes of its own resources.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoState {
    pub ip_pools: Vec<CalicoPool>,
    /// BlockAffinity resources: which node owns which block, sorted by block.
    pub block_affinities: Vec<BlockAffinity>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoPool {
    pub name: String,
    pub cidr: IpNet,
    pub block_size: u8,
    pub nat_outgoing: bool,
    pub disabled: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockAffinity {
    pub cidr: IpNet,
    pub node: String,
}

fn values<K, V: Serialize, S: Serializer>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.values())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One component (kube-apiserver, kube-controller-manager, kubelet, kube-proxy, …).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub started: bool,
    /// Effective flags: what the scenario set, plus the defaults knetsim applied for the
    /// flags it models, as `--flag=value` would spell them.
    pub flags: BTreeMap<String, String>,
    /// The error the component would log and exit with, word for word, if it did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The controller whose start failed (kube-controller-manager's `controller=` log field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Warnings the component would log while starting (deprecated defaults, ignored flags).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The network configuration in effect, per family, in the order the flags listed them.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    /// The cluster's IP families, primary first (the family of the first service CIDR).
    pub ip_families: Vec<Family>,
    /// kube-apiserver `--service-cluster-ip-range`, masked.
    pub service_cidrs: Vec<IpNet>,
    /// kube-controller-manager `--cluster-cidr`, masked.
    pub cluster_cidrs: Vec<IpNet>,
    /// Node mask size for each cluster CIDR, index-aligned.
    pub node_cidr_mask_sizes: Vec<u8>,
    /// kube-apiserver `--service-node-port-range`.
    pub service_node_port_range: (u16, u16),
    /// The CNI plugin that wires pods ("host-local", "kubenet", "calico").
    pub cni: String,
    /// kube-proxy's effective configuration, when kube-proxy runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_proxy: Option<ProxyConfig>,
}

/// kube-proxy's effective configuration (defaults applied for the version).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// "iptables", "nftables" or "ipvs".
    pub mode: String,
    /// `--cluster-cidr`, in the order given (the local detector uses the first of each family).
    pub cluster_cidrs: Vec<IpNet>,
    pub masquerade_all: bool,
    /// `--nodeport-addresses` as given ("primary" or CIDRs); empty means all local addresses.
    pub nodeport_addresses: Vec<String>,
    /// "ClusterCIDR", "NodeCIDR", "BridgeInterface" or "InterfaceNamePrefix".
    pub detect_local_mode: String,
    /// `--iptables-masquerade-bit` (default 14, mark 0x4000).
    pub masquerade_bit: u8,
    /// `--iptables-localhost-nodeports` (IPv4 only).
    pub localhost_nodeports: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_bridge_interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_interface_name_prefix: Option<String>,
}

/// Capacity of one family.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyCapacity {
    /// Node podCIDR blocks in the cluster CIDR of this family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_cidrs: Option<PoolUsage>,
    /// Service IPs in the service CIDR of this family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ips: Option<ServiceIpUsage>,
    /// Pod IPs: allocatable per node (what one podCIDR or block yields) and in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_ips: Option<PodIpUsage>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUsage {
    pub cidr: IpNet,
    pub block_prefix: u8,
    pub total: u128,
    pub used: u128,
    pub free: u128,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceIpUsage {
    pub cidr: IpNet,
    /// "bitmap" (legacy) or "IPAddress" (KEP-1880 ServiceCIDR allocator).
    pub allocator: String,
    /// Allocatable addresses (network address, and for IPv4 broadcast, excluded).
    pub total: u128,
    pub used: u128,
    pub free: u128,
    /// Size of the static band (KEP-3070): the first addresses, preferred for user-chosen IPs.
    pub static_band: u128,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIpUsage {
    /// Addresses a pod can get on one node (podCIDR minus reserved addresses, or Calico block).
    pub per_node: u128,
    pub used: u128,
}

/// A value many objects hold the same copy of: the labels, containers and owner references
/// of the pods of one template. A limits-scale cluster has 150,000 pods made from 10,000
/// templates; sharing these saves about a kilobyte and a dozen allocations per pod. It reads
/// like the value itself (`Deref`), serializes as it, and copies on write (`make_mut`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shared<T>(std::sync::Arc<T>);

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> Shared<T> {
    /// The value, to change: copied first if another object shares it.
    pub fn make_mut(&mut self) -> &mut T {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(v: T) -> Self {
        Shared(std::sync::Arc::new(v))
    }
}

/// The newtype name a [`Shared`] value serializes under. Serializers see the value itself
/// (serde's newtype structs are transparent in JSON and YAML); a writer that knows the name
/// may render one shared value once and copy its text.
pub const SHARED: &str = "knetsim::Shared";

/// The newtype name of a string its serializer knows YAML reads back as a string, unquoted
/// (an address: `fast_ip`). Serializers see the string itself; a YAML writer that knows the
/// name may skip its quoting check. It wraps strings only.
pub const PLAIN: &str = "knetsim::Plain";

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(SHARED, &*self.0)
    }
}

impl<'a, T> IntoIterator for &'a Shared<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&*self.0).into_iter()
    }
}

/// `metadata.labels`.
pub type Labels = Shared<BTreeMap<String, String>>;

/// `metadata` as Kubernetes writes it (only the fields knetsim sets).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Shared<Vec<OwnerReference>>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub controller: bool,
}

// ---------------------------------------------------------------------------------------------
// Node

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: NodeSpec,
    pub status: NodeStatus,
    /// Kernel settings knetsim models for this node (forwarding sysctls), effective values.
    #[serde(skip)]
    pub sysctl: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<IpNet>,
    #[serde(rename = "podCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<IpNet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Taint {
    pub key: String,
    pub effect: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub addresses: Vec<NodeAddress>,
    pub capacity: BTreeMap<String, String>,
    pub conditions: Vec<Condition>,
}

impl Node {
    /// InternalIP addresses in the order the kubelet reported them (primary family first).
    pub fn internal_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.status
            .addresses
            .iter()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
    }

    pub fn internal_ip(&self, family: Family) -> Option<IpAddr> {
        self.internal_ips().find(|ip| Family::of_ip(ip) == family)
    }

    pub fn pod_cidr(&self, family: Family) -> Option<IpNet> {
        self.spec
            .pod_cidrs
            .iter()
            .copied()
            .find(|c| Family::of_net(c) == family)
    }

    pub fn is_ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    /// An effective sysctl value ("1"/"0"), if modelled.
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctl.get(key).map(String::as_str)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub type_: String,
    pub address: IpAddr,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Service

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: ServiceSpec,
    pub status: ServiceStatus,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// An IP, or "None" for headless Services; absent for ExternalName.
    #[serde(rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", skip_serializing_if = "Vec::is_empty")]
    pub cluster_ips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<Family>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,
    /// The 1.16–1.19 alpha field, set only on those versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<Family>,
    #[serde(rename = "externalIPs", skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<IpAddr>,
    #[serde(rename = "loadBalancerIP", skip_serializing_if = "Option::is_none")]
    pub load_balancer_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_node_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocate_load_balancer_node_ports: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` when affinity is ClientIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinityConfig {
    #[serde(rename = "clientIP")]
    pub client_ip: ClientIpConfig,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpConfig {
    pub timeout_seconds: u32,
}

impl ServiceSpec {
    /// The allocated cluster IPs as addresses (empty for headless and ExternalName).
    pub fn cluster_ip_addrs(&self) -> Vec<IpAddr> {
        self.cluster_ips
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    pub fn cluster_ip_of(&self, family: Family) -> Option<IpAddr> {
        self.cluster_ip_addrs()
            .into_iter()
            .find(|ip| Family::of_ip(ip) == family)
    }

    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub protocol: String,
    pub port: u16,
    /// A number or a named container port, as `targetPort` prints.
    pub target_port: TargetPort,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

impl Serialize for TargetPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TargetPort::Number(n) => s.serialize_u16(*n),
            TargetPort::Name(n) => s.serialize_str(n),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub load_balancer: LoadBalancerStatus,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadBalancerIngress {
    pub ip: IpAddr,
}

// ---------------------------------------------------------------------------------------------
// Pod

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
    /// The simulation's bookkeeping for this pod; not part of the document.
    #[serde(skip)]
    pub sim: PodBookkeeping,
}

/// What the simulation tracks per pod besides the object itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodBookkeeping {
    /// Creation order (what `metadata.creationTimestamp` orders in a real cluster): the
    /// scheduler and kubelets handle pods oldest first, and scale-down removes the newest.
    pub creation_index: u64,
    /// Bound by the scheduler or admitted by a kubelet, and so counted against its node's
    /// `max-pods`.
    pub admitted: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub host_network: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Container ports by name, for resolving named `targetPort`s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Shared<Vec<Container>>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// "Pending", "Running" or "Failed" (a static string: 150,000 pods need no copies).
    pub phase: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(
        rename = "hostIP",
        skip_serializing_if = "Option::is_none",
        serialize_with = "fast_ip::option"
    )]
    pub host_ip: Option<IpAddr>,
    #[serde(
        rename = "hostIPs",
        skip_serializing_if = "IpList::is_empty",
        serialize_with = "fast_ip::pod_ips"
    )]
    pub host_ips: IpList,
    #[serde(
        rename = "podIP",
        skip_serializing_if = "Option::is_none",
        serialize_with = "fast_ip::option"
    )]
    pub pod_ip: Option<IpAddr>,
    #[serde(
        rename = "podIPs",
        skip_serializing_if = "IpList::is_empty",
        serialize_with = "fast_ip::pod_ips"
    )]
    pub pod_ips: IpList,
}

/// At most two addresses, kept in place: a pod's `podIPs` and `hostIPs` and an endpoint's
/// `addresses` (Kubernetes allows one per family). In place because the state document is
/// written in name order, which is unrelated to the order pods were made in: a `Vec`'s own
/// buffer made each of a limits-scale cluster's million addresses a cache miss, the largest
/// single cost of writing the pods.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IpList {
    len: u8,
    ips: [IpAddr; 2],
}

impl IpList {
    pub const fn new() -> Self {
        IpList {
            len: 0,
            ips: [IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED); 2],
        }
    }

    pub fn one(ip: IpAddr) -> Self {
        let mut list = IpList::new();
        list.push(ip);
        list
    }

    /// Adds `ip` at the end.
    ///
    /// # Panics
    /// If the list already holds two: callers keep one address per family, as the kubelet
    /// and the EndpointSlice controller do.
    pub fn push(&mut self, ip: IpAddr) {
        assert!(self.len < 2, "at most one address per family");
        self.ips[usize::from(self.len)] = ip;
        self.len += 1;
    }

    /// For `skip_serializing_if`, which names a function of `&IpList`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for IpList {
    fn default() -> Self {
        IpList::new()
    }
}

impl std::ops::Deref for IpList {
    type Target = [IpAddr];
    fn deref(&self) -> &[IpAddr] {
        &self.ips[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for IpList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<IpAddr> for IpList {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        let mut list = IpList::new();
        for ip in iter {
            list.push(ip);
        }
        list
    }
}

impl<'a> IntoIterator for &'a IpList {
    type Item = &'a IpAddr;
    type IntoIter = std::slice::Iter<'a, IpAddr>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One entry of `podIPs` / `hostIPs` as the API writes it: `{ip: …}`.
#[derive(Serialize)]
struct PodIp {
    #[serde(serialize_with = "fast_ip::one")]
    ip: IpAddr,
}

/// For writers that render addresses without serde: the text serde writes for an address,
/// and whether YAML reads it back unquoted.
pub use fast_ip::text as ip_text;

/// Addresses as the text serde writes for them (`Display`), with IPv4 formatted without
/// `core::fmt`: a limits-scale state document holds a million pod and endpoint addresses,
/// and formatting them was the largest single cost of writing it.
mod fast_ip {
    use std::net::IpAddr;

    use serde::Serializer;

    pub fn one<S: Serializer>(ip: &IpAddr, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return serde::Serialize::serialize(ip, s);
        }
        let mut buf = [0u8; 45];
        let (text, plain) = text(ip, &mut buf);
        if plain {
            s.serialize_newtype_struct(super::PLAIN, text)
        } else {
            s.serialize_str(text)
        }
    }

    /// The text `Display` writes for `ip`, and whether YAML reads it back as a string
    /// without quotes (see [`super::PLAIN`]).
    pub fn text<'b>(ip: &IpAddr, buf: &'b mut [u8; 45]) -> (&'b str, bool) {
        let n = match ip {
            IpAddr::V4(v4) => v4_text(v4.octets(), buf),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // `Display` writes IPv4-mapped addresses in their dotted form.
                Some(v4) => {
                    buf[..7].copy_from_slice(b"::ffff:");
                    7 + v4_text(v4.octets(), &mut buf[7..])
                }
                None => v6_text(v6.segments(), buf),
            },
        };
        let text = std::str::from_utf8(&buf[..n]).expect("ASCII address text");
        (text, plain(text))
    }

    /// Whether address text reads back as a string in YAML without quotes: a dotted quad
    /// always (two dots make it no number); IPv6 text unless it starts with `:` (an
    /// indicator) or ends with one (`fd00::` would read as a mapping key), or has no letter
    /// (`1:2:3:4:5:6:7:8` is a YAML 1.1 base-60 number).
    fn plain(text: &str) -> bool {
        let b = text.as_bytes();
        !b.contains(&b':')
            || (b[0] != b':' && b[b.len() - 1] != b':' && b.iter().any(u8::is_ascii_alphabetic))
    }

    fn v4_text(octets: [u8; 4], buf: &mut [u8]) -> usize {
        let mut n = 0;
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            if o >= 100 {
                buf[n] = b'0' + o / 100;
                n += 1;
            }
            if o >= 10 {
                buf[n] = b'0' + o / 10 % 10;
                n += 1;
            }
            buf[n] = b'0' + o % 10;
            n += 1;
        }
        n
    }

    /// RFC 5952 text, as `Ipv6Addr`'s `Display` writes it: groups in lowercase hex without
    /// leading zeros, the first longest run of two or more zero groups written `::`.
    fn v6_text(segments: [u16; 8], buf: &mut [u8]) -> usize {
        let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
        for (i, &g) in segments.iter().enumerate() {
            if g == 0 {
                if cur_len == 0 {
                    cur = i;
                }
                cur_len += 1;
                if cur_len > best_len {
                    (best, best_len) = (cur, cur_len);
                }
            } else {
                cur_len = 0;
            }
        }
        let mut out = 0;
        let push_part = |buf: &mut [u8], part: &[u16], out: &mut usize| {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, &g) in part.iter().enumerate() {
                if i > 0 {
                    buf[*out] = b':';
                    *out += 1;
                }
                let digits = (16 - g.leading_zeros() as usize).div_ceil(4).max(1);
                for d in (0..digits).rev() {
                    buf[*out] = HEX[usize::from((g >> (4 * d)) & 0xf)];
                    *out += 1;
                }
            }
        };
        if best_len > 1 {
            push_part(buf, &segments[..best], &mut out);
            buf[out..out + 2].copy_from_slice(b"::");
            out += 2;
            push_part(buf, &segments[best + best_len..], &mut out);
        } else {
            push_part(buf, &segments, &mut out);
        }
        out
    }

    pub fn option<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.serialize_some(&Adapter(ip)),
            None => s.serialize_none(),
        }
    }

    pub fn many<S: Serializer>(ips: &super::IpList, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ips.iter().map(Adapter))
    }

    pub fn pod_ips<S: Serializer>(ips: &super::IpList, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ips.iter().map(|&ip| super::PodIp { ip }))
    }

    struct Adapter<'a>(&'a IpAddr);

    impl serde::Serialize for Adapter<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            one(self.0, s)
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn ipv4_text_is_display() {
            for ip in [
                "0.0.0.0",
                "10.128.8.2",
                "255.255.255.255",
                "100.64.0.10",
                "1.20.199.9",
            ] {
                let ip: std::net::IpAddr = ip.parse().expect("an address");
                let json = serde_json::to_string(&super::Adapter(&ip)).expect("serializes");
                assert_eq!(json, format!("\"{ip}\""));
            }
        }
    }
}

impl Pod {
    pub fn ip_of(&self, family: Family) -> Option<IpAddr> {
        self.status
            .pod_ips
            .iter()
            .copied()
            .find(|ip| Family::of_ip(ip) == family)
    }
    pub fn is_running(&self) -> bool {
        self.status.phase == "Running"
    }
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub address_type: Family,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<EndpointPort>,
}

impl EndpointSlice {
    /// The Service this slice belongs to (the `kubernetes.io/service-name` label).
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get("kubernetes.io/service-name")
            .map(String::as_str)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(serialize_with = "fast_ip::many")]
    pub addresses: IpList,
    pub conditions: EndpointConditions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u16,
    pub protocol: String,
}

// ---------------------------------------------------------------------------------------------
// Events

/// Something the control plane reported: a Kubernetes Event (`CIDRNotAvailable`,
/// `FailedScheduling`, …) or an API request the API server refused (reason `Invalid`,
/// `AlreadyExists`, `NotFound`, …) with the message kubectl would print.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// 0 for the initial manifests and nodes; `n` for `steps[n-1]`.
    pub step: usize,
    /// "Normal" or "Warning".
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub reason: String,
    pub involved_object: InvolvedObject,
    /// The component that reported it.
    pub source: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}
