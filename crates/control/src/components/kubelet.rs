//! The kubelet: `--node-ip`, `--max-pods`, `--cloud-provider` and its feature gates, for the
//! cluster-wide kubelet configuration and for each node (whose flags override the cluster's).
//!
//! `--node-ip` parsing changed three times:
//! - up to 1.19 it was one address (`net.ParseIP` of the whole value); a value that does not
//!   parse, a dual-stack pair included, is ignored and the node IP is detected instead;
//! - 1.20–1.26: a comma-separated list checked in `RunKubelet` (`cmd/kubelet/app/server.go`),
//!   dual-stack only without a cloud provider and, until GA, with `IPv6DualStack`;
//! - from 1.27: `ParseNodeIPArgument` (`staging/src/k8s.io/component-helpers/node/util/
//!   ips.go`), wrapped as `bad --node-ip %q: %v`; dual-stack also with
//!   `--cloud-provider=external` once `CloudDualStackNodeIPs` is on (GA in 1.30).
//!
//! Errors from `RunKubelet` come out of `Run` as `failed to run Kubelet: %v`.
//! `validateNodeIP` (`pkg/kubelet/kubelet_node_status.go`) does not stop the kubelet: it fails
//! the node-status update (`Failed to set some node status fields` err=`failed to validate
//! nodeIP: …`); [`node_ip_status_error`] gives that text.

use std::collections::BTreeMap;
use std::net::IpAddr;

use knetsim_model::KubeVersion;
use knetsim_model::flags::ComponentFlags;

use super::gates::{self, Gates};
use super::values::{self, Flags, go_quote, int_flag, str_flag};
use super::{Outcome, echo_flags};
use crate::state::ComponentStatus;

/// `maxPods` default (`pkg/kubelet/apis/config/v1beta1/defaults.go`).
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The cluster-wide kubelet configuration (`cluster.kubelet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletConfig {
    pub max_pods: u32,
    /// `--cloud-provider` ("" when unset).
    pub cloud_provider: String,
    /// Whether a dual-stack `--node-ip` pair is accepted with this configuration.
    pub dual_stack_node_ip_allowed: bool,
    pub gates: BTreeMap<String, bool>,
}

/// One node's kubelet, after its own flags were applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletNode {
    /// The parsed `--node-ip`, in the order given (primary first); empty when the kubelet
    /// detects its address itself.
    pub node_ips: Vec<IpAddr>,
    /// Entries of `--node-ip` the kubelet could not parse and ignored.
    pub ignored_node_ips: Vec<String>,
    pub max_pods: u32,
}

/// How the kubelet reports a gate error: `klog.Fatal(err)` / `klog.ErrorS(err, …)` with the bare
/// error until the command became `RunE` (1.26), then wrapped.
fn gate_error(version: KubeVersion, err: &str) -> String {
    if version.at_least(26) {
        format!("failed to set feature gates from initial flags-based config: {err}")
    } else {
        err.to_string()
    }
}

fn resolve_gates(version: KubeVersion, flags: Flags<'_>) -> Result<Gates, String> {
    let wrap = |_: &str, e: &str| gate_error(version, e);
    gates::from_flags(version, flags, wrap, wrap)
}

/// `ValidateKubeletConfiguration`'s message for a negative `maxPods` (the field name lost its
/// capital around 1.24, the sentence around 1.20). The kubelet wraps it with a dump of its
/// whole configuration, which knetsim does not reproduce.
fn max_pods(version: KubeVersion, flags: Flags<'_>) -> Result<Option<u32>, String> {
    let Some(v) = int_flag(flags, "max-pods")? else {
        return Ok(None);
    };
    if v < 0 {
        return Err(if version.at_least(24) {
            format!("invalid configuration: maxPods (--max-pods) {v} must not be a negative number")
        } else if version.at_least(20) {
            format!("invalid configuration: MaxPods (--max-pods) {v} must not be a negative number")
        } else {
            format!("Invalid configuration: MaxPods (--max-pods) {v} must not be a negative number")
        });
    }
    Ok(Some(u32::try_from(v).unwrap_or(u32::MAX)))
}

/// Whether a dual-stack `--node-ip` is accepted.
fn dual_stack_allowed(version: KubeVersion, gates: &Gates, cloud_provider: &str) -> bool {
    if !version.at_least(20) {
        false
    } else if !version.at_least(27) {
        gates.enabled(version, "IPv6DualStack") && cloud_provider.is_empty()
    } else {
        cloud_provider.is_empty()
            || (cloud_provider == "external" && gates.enabled(version, "CloudDualStackNodeIPs"))
    }
}

pub(crate) fn configure(version: KubeVersion, flags: Flags<'_>) -> Outcome<KubeletConfig> {
    let mut status = ComponentStatus {
        flags: echo_flags(flags, &[("max-pods", DEFAULT_MAX_PODS.to_string())]),
        ..ComponentStatus::default()
    };
    let result = (|| {
        let gates = resolve_gates(version, flags)?;
        let max_pods = max_pods(version, flags)?.unwrap_or(DEFAULT_MAX_PODS);
        let cloud_provider = str_flag(flags, "cloud-provider").unwrap_or("").to_string();
        Ok::<_, String>((gates, max_pods, cloud_provider))
    })();
    match result {
        Ok((gates, max_pods, cloud_provider)) => {
            status.started = true;
            status.warnings.extend(gates.warnings.iter().cloned());
            let config = KubeletConfig {
                max_pods,
                dual_stack_node_ip_allowed: dual_stack_allowed(version, &gates, &cloud_provider),
                cloud_provider,
                gates: gates.values,
            };
            Outcome {
                status,
                config: Some(config),
            }
        }
        Err(message) => {
            status.message = Some(message);
            Outcome {
                status,
                config: None,
            }
        }
    }
}

/// The kubelet of one node: the cluster configuration with the node's own flags on top.
/// `Err` is the message the kubelet exits with.
pub fn node(
    version: KubeVersion,
    cluster: &KubeletConfig,
    node_flags: &ComponentFlags,
    node_ip: Option<&str>,
) -> Result<KubeletNode, String> {
    let flags = Some(node_flags);
    let (dual_allowed, gates_on_dual) = if values::get(flags, "feature-gates").is_some()
        || values::get(flags, "cloud-provider").is_some()
    {
        let gates = if values::get(flags, "feature-gates").is_some() {
            resolve_gates(version, flags)?
        } else {
            Gates {
                values: cluster.gates.clone(),
                warnings: Vec::new(),
            }
        };
        let cloud = str_flag(flags, "cloud-provider").unwrap_or(&cluster.cloud_provider);
        let dual = gates.enabled(version, "IPv6DualStack");
        (dual_stack_allowed(version, &gates, cloud), dual)
    } else {
        (
            cluster.dual_stack_node_ip_allowed,
            gates::enabled(&cluster.gates, version, "IPv6DualStack"),
        )
    };
    let cloud = str_flag(flags, "cloud-provider").unwrap_or(&cluster.cloud_provider);
    let max_pods = max_pods(version, flags)?.unwrap_or(cluster.max_pods);
    let (node_ips, ignored_node_ips) = match node_ip {
        None => (Vec::new(), Vec::new()),
        Some(raw) => parse_node_ip(version, raw, dual_allowed, gates_on_dual, cloud)
            .map_err(|e| format!("failed to run Kubelet: {e}"))?,
    };
    Ok(KubeletNode {
        node_ips,
        ignored_node_ips,
        max_pods,
    })
}

/// Go's `IsIPv6`: an IPv4-mapped IPv6 address counts as IPv4.
fn go_is_ipv6(ip: &IpAddr) -> bool {
    matches!(ip.to_canonical(), IpAddr::V6(_))
}

fn parse_node_ip(
    version: KubeVersion,
    raw: &str,
    dual_allowed: bool,
    dual_stack_gate: bool,
    cloud_provider: &str,
) -> Result<(Vec<IpAddr>, Vec<String>), String> {
    if !version.at_least(20) {
        // One address; anything else is not an address and is ignored.
        return Ok(match raw.parse::<IpAddr>() {
            Ok(ip) => (vec![ip], Vec::new()),
            Err(_) if raw.is_empty() => (Vec::new(), Vec::new()),
            Err(_) => (Vec::new(), vec![raw.to_string()]),
        });
    }
    let mut ips = Vec::new();
    let mut ignored = Vec::new();
    if !raw.is_empty() {
        for part in raw.split(',') {
            match values::parse_ip_sloppy(part.trim()) {
                Some(ip) => ips.push(ip),
                None => ignored.push(part.to_string()),
            }
        }
    }
    let quoted = go_quote(raw);
    let bad_pair = ips.len() > 2 || (ips.len() == 2 && go_is_ipv6(&ips[0]) == go_is_ipv6(&ips[1]));
    let unspecified = ips.len() == 2 && (ips[0].is_unspecified() || ips[1].is_unspecified());
    if version.at_least(27) {
        // ips.go parseNodeIP, wrapped by RunKubelet.
        let err = if bad_pair {
            Some("must contain either a single IP or a dual-stack pair of IPs")
        } else if ips.len() == 2 && !dual_allowed {
            Some("dual-stack not supported in this configuration")
        } else if unspecified {
            Some("dual-stack node IP cannot include '0.0.0.0' or '::'")
        } else {
            None
        };
        if let Some(err) = err {
            return Err(format!("bad --node-ip {quoted}: {err}"));
        }
        return Ok((ips, ignored));
    }
    if !dual_stack_gate && ips.len() > 1 {
        return Err(format!(
            "dual-stack --node-ip {quoted} not supported in a single-stack cluster"
        ));
    }
    if bad_pair {
        return Err(format!(
            "bad --node-ip {quoted}; must contain either a single IP or a dual-stack pair of IPs"
        ));
    }
    if ips.len() == 2 && !cloud_provider.is_empty() {
        return Err(format!(
            "dual-stack --node-ip {quoted} not supported when using a cloud provider"
        ));
    }
    if unspecified {
        return Err(format!(
            "dual-stack --node-ip {quoted} cannot include '0.0.0.0' or '::'"
        ));
    }
    Ok((ips, ignored))
}

/// What the kubelet publishes as the Node's addresses, from its parsed `--node-ip`
/// (pkg/kubelet/nodestatus `NodeAddress`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAddresses {
    /// No `--node-ip`: the host's addresses.
    Host,
    /// `--node-ip=0.0.0.0` or `::` (since 1.18): not an address but "detect one, preferring
    /// this family" — the address of the host's default route.
    Detect(knetsim_ipam::Family),
    /// The given addresses.
    Given(Vec<IpAddr>),
    /// `validateNodeIP` refuses the primary address (its message): the status update fails
    /// and the Node has no addresses.
    Refused(String),
}

/// [`NodeAddresses`] for a kubelet of `version` given `node_ips`.
pub fn node_addresses(version: KubeVersion, node_ips: &[IpAddr]) -> NodeAddresses {
    match node_ips {
        [] => NodeAddresses::Host,
        [ip] if ip.is_unspecified() && version.at_least(18) => {
            NodeAddresses::Detect(knetsim_ipam::Family::of_ip(&ip.to_canonical()))
        }
        ips => match node_ip_status_error(ips) {
            Some(msg) => NodeAddresses::Refused(msg),
            None => NodeAddresses::Given(ips.to_vec()),
        },
    }
}

/// `validateNodeIP` for the primary node IP, as the node-status update reports it
/// (`failed to validate nodeIP: …`). The kubelet keeps running; the node's addresses are not
/// updated. The host-interface check is not modelled: a knetsim node has the addresses it is
/// given.
pub fn node_ip_status_error(node_ips: &[IpAddr]) -> Option<String> {
    let ip = node_ips.first()?.to_canonical();
    let detail = if ip.is_loopback() {
        "nodeIP can't be loopback address"
    } else if ip.is_multicast() {
        "nodeIP can't be a multicast address"
    } else if is_link_local_unicast(&ip) {
        "nodeIP can't be a link-local unicast address"
    } else if ip.is_unspecified() {
        "nodeIP can't be an all zeros address"
    } else {
        return None;
    };
    Some(format!("failed to validate nodeIP: {detail}"))
}

/// Go's `IsLinkLocalUnicast`: 169.254.0.0/16 and fe80::/10.
fn is_link_local_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
