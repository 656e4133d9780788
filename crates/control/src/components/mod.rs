//! How each component reads its flags, per Kubernetes release: whether it starts, what it then
//! uses, and the exact error it exits with when it does not.
//!
//! [`configure`] takes the scenario's `cluster:` flags and a [`KubeVersion`] and answers for the
//! whole control plane at once. Each component is its own module, written against the upstream
//! files it mirrors (named at the top of each):
//!
//! - [`gates`]: the feature gates knetsim models, their lifecycle per release, and how a
//!   component applies `--feature-gates`.
//! - `apiserver`: Service IP ranges, the NodePort range, the Service IP allocator kind.
//! - `controller_manager`: the node IPAM controller (cluster CIDRs, node mask sizes).
//! - `kubelet`: `--node-ip`, `--max-pods`, per node.
//! - `proxy`: the proxy mode and the rest of kube-proxy's effective configuration.
//! - `values`: reading flag values with the components' own parsing rules, and Go's renderings
//!   of strings, slices and aggregated errors.
//!
//! A component's `message` is the error text it exits with, without the log decoration (the
//! klog header, cobra's `Error: ` prefix, or the `err=` key of a structured line).

pub mod gates;

mod apiserver;
mod controller_manager;
mod kubelet;
mod proxy;
mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use knetsim_ipam::Family;
use knetsim_model::KubeVersion;
use knetsim_model::flags::{Component, ComponentFlags};
use knetsim_model::scenario::ClusterConfig;

use crate::state::{ComponentStatus, NetworkConfig, ProxyConfig};

pub use apiserver::{ApiServerConfig, DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_IP_CIDR};
pub use controller_manager::{
    DEFAULT_NODE_MASK_IPV4, DEFAULT_NODE_MASK_IPV6, KcmConfig, node_ipam_controller_name,
};
pub use kubelet::{
    DEFAULT_MAX_PODS, KubeletConfig, KubeletNode, NodeAddresses, node_addresses,
    node_ip_status_error,
};
pub use proxy::DEFAULT_MASQUERADE_BIT;

/// Which Service IP allocator the API server runs: the legacy bitmap, or the KEP-1880
/// IPAddress allocator (`MultiCIDRServiceAllocator` on).
pub use knetsim_ipam::service_ip::AllocatorKind as ServiceAllocator;

/// The control plane as the scenario's flags configure it.
#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubelet (the
    /// cluster-wide kubelet configuration), by binary name.
    pub statuses: BTreeMap<String, ComponentStatus>,
    /// `None` when kube-apiserver does not start.
    pub apiserver: Option<ApiServerConfig>,
    /// `None` when kube-controller-manager does not start.
    pub kcm: Option<KcmConfig>,
    pub scheduler_started: bool,
    /// The cluster-wide kubelet configuration. When the kubelet does not start
    /// (`statuses["kubelet"]`), this holds the defaults.
    pub kubelet: KubeletConfig,
    /// `None` when kube-proxy does not start.
    pub proxy: Option<ProxyConfig>,
    /// The network the components agreed on; `cni` is left empty for the caller.
    pub network: NetworkConfig,
}

/// One component's result.
pub(crate) struct Outcome<T> {
    pub status: ComponentStatus,
    pub config: Option<T>,
}

/// The effective flags of a component: every flag the scenario set, as written, plus knetsim's
/// modelled defaults for the ones it did not set.
pub(crate) fn echo_flags(
    flags: Option<&ComponentFlags>,
    defaults: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = flags
        .map(|f| {
            f.flags
                .iter()
                .map(|(k, v)| (k.clone(), v.raw.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (name, value) in defaults {
        out.entry((*name).to_string())
            .or_insert_with(|| value.clone());
    }
    out
}

/// Configures every component for `version` from the scenario's `cluster:` section.
pub fn configure(version: KubeVersion, cluster: &ClusterConfig) -> ControlPlaneConfig {
    let apiserver = apiserver::configure(version, cluster.flags(Component::KubeApiserver));
    let kcm =
        controller_manager::configure(version, cluster.flags(Component::KubeControllerManager));
    let scheduler = scheduler(version, cluster.flags(Component::KubeScheduler));
    let kubelet = kubelet::configure(version, cluster.flags(Component::Kubelet));
    let primary_family = apiserver
        .config
        .as_ref()
        .and_then(|a| a.service_cidrs.first())
        .map(Family::of_net);
    let proxy = proxy::configure(version, cluster.flags(Component::KubeProxy), primary_family);

    let mut ip_families: Vec<Family> = Vec::new();
    if let Some(a) = &apiserver.config {
        for c in &a.service_cidrs {
            let f = Family::of_net(c);
            if !ip_families.contains(&f) {
                ip_families.push(f);
            }
        }
    }
    let (cluster_cidrs, node_cidr_mask_sizes) = match &kcm.config {
        Some(k) if k.node_ipam => (k.cluster_cidrs.clone(), k.node_mask_sizes.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    let network = NetworkConfig {
        ip_families,
        service_cidrs: apiserver
            .config
            .as_ref()
            .map(|a| a.service_cidrs.clone())
            .unwrap_or_default(),
        cluster_cidrs,
        node_cidr_mask_sizes,
        service_node_port_range: apiserver
            .config
            .as_ref()
            .map_or(DEFAULT_NODE_PORT_RANGE, |a| a.node_port_range),
        cni: String::new(),
        kube_proxy: proxy.config.clone(),
    };

    let kubelet_config = kubelet.config.clone().unwrap_or_else(|| KubeletConfig {
        max_pods: DEFAULT_MAX_PODS,
        cloud_provider: String::new(),
        dual_stack_node_ip_allowed: false,
        gates: gates::resolve(version, None)
            .map(|g| g.values)
            .unwrap_or_default(),
    });
    let scheduler_started = scheduler.started;
    let mut statuses = BTreeMap::new();
    statuses.insert(
        Component::KubeApiserver.name().to_string(),
        apiserver.status,
    );
    statuses.insert(
        Component::KubeControllerManager.name().to_string(),
        kcm.status,
    );
    statuses.insert(Component::KubeScheduler.name().to_string(), scheduler);
    statuses.insert(Component::Kubelet.name().to_string(), kubelet.status);
    statuses.insert(Component::KubeProxy.name().to_string(), proxy.status);
    ControlPlaneConfig {
        statuses,
        apiserver: apiserver.config,
        kcm: kcm.config,
        scheduler_started,
        kubelet: kubelet_config,
        proxy: proxy.config,
        network,
    }
}

/// kube-scheduler: knetsim reads only its feature gates. Up to 1.31 `--feature-gates` is a
/// pflag value (errors come wrapped by pflag); from 1.32 the component-globals registry
/// returns the gate error as it is.
fn scheduler(version: KubeVersion, flags: Option<&ComponentFlags>) -> ComponentStatus {
    let mut status = ComponentStatus {
        flags: echo_flags(flags, &[]),
        ..ComponentStatus::default()
    };
    let wrap = |raw: &str, e: &str| {
        if version.at_least(32) {
            e.to_string()
        } else {
            values::pflag_invalid(raw, "feature-gates", e)
        }
    };
    let result = gates::from_flags(version, flags, wrap, wrap);
    match result {
        Ok(g) => {
            status.started = true;
            status.warnings = g.warnings;
        }
        Err(message) => status.message = Some(message),
    }
    status
}

/// The kubelet of one node: parses and checks `--node-ip` with the node's own kubelet flags
/// over the cluster's. `Ok(vec![])` when `--node-ip` is not set, or (up to 1.19) when it is not
/// a single address and the kubelet ignores it. `Err` is the message the kubelet exits with.
pub fn kubelet_node_ips(
    version: KubeVersion,
    cluster_kubelet: &KubeletConfig,
    node_flags: &ComponentFlags,
    node_ip: Option<&str>,
) -> Result<Vec<IpAddr>, String> {
    kubelet::node(version, cluster_kubelet, node_flags, node_ip).map(|n| n.node_ips)
}

/// Everything knetsim knows about one node's kubelet ([`kubelet_node_ips`] plus the ignored
/// `--node-ip` entries and the effective `--max-pods`).
pub fn kubelet_node(
    version: KubeVersion,
    cluster_kubelet: &KubeletConfig,
    node_flags: &ComponentFlags,
    node_ip: Option<&str>,
) -> Result<KubeletNode, String> {
    kubelet::node(version, cluster_kubelet, node_flags, node_ip)
}

/// The node's `--max-pods`: its own flag, else the cluster's (default 110). A value the kubelet
/// would reject (negative, not a number) leaves the cluster's; [`kubelet_node`] reports it.
pub fn kubelet_max_pods(cluster_kubelet: &KubeletConfig, node_flags: &ComponentFlags) -> u32 {
    match values::int_flag(Some(node_flags), "max-pods") {
        Ok(Some(v)) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
        _ => cluster_kubelet.max_pods,
    }
}
