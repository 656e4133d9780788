//! The scenario document: the contract's top-level keys and what each holds once read.

use std::collections::BTreeMap;

use crate::flags::{Component, ComponentFlags};
use crate::objects::{Object, ObjectRef};
use crate::source::{Span, Spanned};
use crate::version::KubeVersion;
use crate::yaml::Node;

/// A scenario, read and checked for structure. Semantic checks (flag combinations, API
/// validation) are the control plane's, because their outcome is part of the simulated state.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub version: KubeVersion,
    /// Seed of every named RNG; default 0.
    pub seed: u64,
    pub cluster: ClusterConfig,
    /// Nodes in registration order, generated pools expanded.
    pub nodes: Vec<NodeSpec>,
    /// Objects applied at the start, in file order (multi-document files expanded in place).
    pub manifests: Vec<Object>,
    pub steps: Vec<Spanned<Step>>,
    pub expect: Vec<Spanned<Expectation>>,
    /// The `fabric:` section (underlay, external hosts, load balancers), read by the dataplane.
    pub fabric: Option<Node>,
    /// The `plan:` section (targets, workload model, sweeps), read by the planner.
    pub plan: Option<Node>,
    /// The `snapshot:` section (reachability matrices and traces a snapshot records), read
    /// by the review crate.
    pub snapshot: Option<Node>,
}

impl Scenario {
    /// The `trace:` and `reachability:` expectations, which the dataplane reads itself.
    pub fn dataplane_expectations(&self) -> Vec<&Node> {
        self.expect
            .iter()
            .filter_map(|e| match &e.value {
                Expectation::Dataplane(n) => Some(n),
                _ => None,
            })
            .collect()
    }
}

/// `cluster:`: one flag map per component, plus CNI and egress settings.
#[derive(Clone, Debug, Default)]
pub struct ClusterConfig {
    pub components: BTreeMap<Component, ComponentFlags>,
    pub cni: CniConfig,
    /// `ip-masq-agent:`, when the cluster runs it.
    pub ip_masq_agent: Option<IpMasqAgentConfig>,
    /// `sysctl:` applied to every node unless a node overrides it.
    pub sysctl: BTreeMap<String, Spanned<String>>,
}

impl ClusterConfig {
    pub fn flags(&self, c: Component) -> Option<&ComponentFlags> {
        self.components.get(&c)
    }
}

/// Which CNI plugin wires pods, in its own vocabulary.
// One per scenario: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum CniConfig {
    /// `bridge` or `ptp` with `host-local` IPAM over each node's `spec.podCIDRs`, and a route per
    /// remote podCIDR on every node: what kind's kindnet sets up. The default.
    #[default]
    HostLocal,
    /// kubenet: bridge `cbr0`, host-local per podCIDR, gateway at the first address.
    Kubenet,
    Calico(CalicoConfig),
}

/// Calico, configured as the seed guide does: the CNI config's `ipam` section, calico-node's
/// environment, explicit IPPools and the IPAMConfig.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CalicoConfig {
    /// `ipam.assign_ipv4` as written ("true"/"false"); `None` means Calico's default (assign).
    pub assign_ipv4: Option<Spanned<String>>,
    /// `ipam.assign_ipv6`; `None` means Calico's default (do not assign).
    pub assign_ipv6: Option<Spanned<String>>,
    /// calico-node's environment (`FELIX_IPV6SUPPORT`, `IP6`, `CALICO_IPV4POOL_CIDR`, …).
    pub env: BTreeMap<String, Spanned<String>>,
    /// IPPool resources (`spec.cidr`, `blockSize`, `natOutgoing`, …).
    pub ip_pools: Vec<CalicoIpPool>,
    /// IPAMConfig `strictAffinity` (default false).
    pub strict_affinity: bool,
    /// IPAMConfig `maxBlocksPerHost`; unset or 0 means Calico's default of 20.
    pub max_blocks_per_host: Option<u32>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoIpPool {
    pub name: String,
    pub cidr: Spanned<ipnet::IpNet>,
    pub block_size: Option<Spanned<u8>>,
    pub nat_outgoing: bool,
    pub disabled: bool,
}

/// ip-masq-agent: its flags and its config file (`/etc/config/ip-masq-agent`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IpMasqAgentConfig {
    /// `nonMasqueradeCIDRs`; `None` means the agent's defaults.
    pub non_masquerade_cidrs: Option<Vec<Spanned<String>>>,
    pub masq_link_local: bool,
    pub masq_link_local_ipv6: bool,
    /// `--enable-ipv6`.
    pub enable_ipv6: bool,
    /// `--nomasq-all-reserved-ranges`.
    pub nomasq_all_reserved_ranges: bool,
    /// `--masq-chain` (default `IP-MASQ-AGENT`).
    pub masq_chain: Option<String>,
    pub span: Span,
}

/// One node: the kubelet's view of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: Spanned<String>,
    /// The kubelet's `--node-ip`, verbatim (the kubelet's own parsing rules apply).
    pub node_ip: Option<Spanned<String>>,
    /// Per-node kubelet flags (`max-pods`, …) overriding `cluster.kubelet`.
    pub kubelet: ComponentFlags,
    pub labels: BTreeMap<String, String>,
    /// Pod CIDRs the node already has (a node that existed before the controller started).
    pub pod_cidrs: Vec<Spanned<String>>,
    pub sysctl: BTreeMap<String, Spanned<String>>,
    pub span: Span,
}

/// One entry of `steps:`. Steps run in order after the initial manifests.
#[derive(Clone, Debug)]
pub enum Step {
    /// `apply:` objects (create, or update like `kubectl apply`).
    Apply(Vec<Object>),
    /// `delete:` objects by reference.
    Delete(Vec<Spanned<ObjectRef>>),
    /// `addNodes:` nodes (same form as `nodes:`).
    AddNodes(Vec<NodeSpec>),
    /// `removeNodes:` node names.
    RemoveNodes(Vec<Spanned<String>>),
    /// `scale:` a workload to a replica count.
    Scale {
        target: Spanned<ObjectRef>,
        replicas: Spanned<i64>,
    },
    /// `configure:` new flags for components (restarting them), e.g. turning a cluster
    /// dual-stack. Maps replace the named components' flag maps wholesale.
    Configure(ClusterConfig),
}

/// One entry of `expect:`.
#[derive(Clone, Debug)]
pub enum Expectation {
    /// `component: <name>` with `started:` and/or `message:`.
    Component {
        component: Component,
        started: Option<bool>,
        message: Option<String>,
    },
    /// `object: {kind, name, namespace}` with `fields:` (dotted paths into the object as it
    /// appears in the state document, each with the expected YAML value) or `absent: true`.
    Object {
        target: ObjectRef,
        absent: bool,
        fields: Vec<(Spanned<String>, Node)>,
    },
    /// `event:` with `reason`, optional `object` ("Kind/name" or "Kind/ns/name") and
    /// `message` (exact text).
    Event {
        reason: String,
        object: Option<String>,
        message: Option<String>,
    },
    /// `count: {kind, equals}`: how many objects of a kind exist.
    Count { kind: String, equals: u64 },
    /// `trace:` and `reachability:` entries, read by the dataplane.
    Dataplane(Node),
}
