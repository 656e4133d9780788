//! kube-controller-manager: whether the node IPAM controller runs, over which cluster CIDRs, with
//! which node mask sizes, and the exact error when it cannot start.
//!
//! The node IPAM controller is started by `startNodeIpamController`
//! (`cmd/kube-controller-manager/app/core.go`), which validates `--cluster-cidr`, the service
//! ranges and the mask flags, then builds the controller (`pkg/controller/nodeipam/
//! node_ipam_controller.go`), whose range allocator builds one `CidrSet` per cluster CIDR
//! (`pkg/controller/nodeipam/ipam/cidrset/cidr_set.go`). Any error stops the whole
//! controller manager.
//!
//! How the error reaches the log changed over the releases:
//! - up to 1.23 `StartControllers` errors end in `klog.Fatalf("error starting controllers: %v")`
//!   (e.g. aks-engine#4144 on 1.20); from 1.24 they are logged as `"Error starting controller"
//!   err="…" controller="…"` and `"Error starting controllers" err="…"` (the seed guide's log);
//! - the controller constructor's own checks (`Must specify --cluster-cidr`, the mask check)
//!   were `klog.Fatal` / `os.Exit(1)` with the bare text until about 1.26, and returned errors
//!   after; either way the text is the bare message.
//!
//! `message` is the error text (the `err=` value, or the fatal line's text).

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;

use super::gates::{self, Gates};
use super::values::{
    self, CidrEntry, Flags, bool_flag, cidr_entries, go_quote, int_flag, list_flag, masked,
    pflag_invalid, str_flag,
};
use super::{Outcome, echo_flags};
use crate::state::ComponentStatus;

/// `defaultNodeMaskCIDRIPv4` / `defaultNodeMaskCIDRIPv6`.
pub const DEFAULT_NODE_MASK_IPV4: u8 = 24;
pub const DEFAULT_NODE_MASK_IPV6: u8 = 64;
/// `clusterSubnetMaxDiff` of the CIDR set: an IPv6 cluster CIDR may hold at most 2^16 node
/// blocks.
const CLUSTER_SUBNET_MAX_DIFF: u8 = 16;

/// What the running kube-controller-manager uses for node IPAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KcmConfig {
    pub allocate_node_cidrs: bool,
    /// Masked, in flag order; empty unless the node IPAM controller runs.
    pub cluster_cidrs: Vec<IpNet>,
    /// Node mask size per cluster CIDR, index-aligned (`setNodeCIDRMaskSizes`).
    pub node_mask_sizes: Vec<u8>,
    /// KCM's own `--service-cluster-ip-range`, masked, used to keep Service ranges out of the
    /// node blocks (`filterOutServiceRange`).
    pub service_cidrs: Vec<IpNet>,
    /// Whether the node IPAM controller runs with the range allocator knetsim models.
    pub node_ipam: bool,
    pub gates: std::collections::BTreeMap<String, bool>,
}

/// How the manager reports a `--feature-gates` error: a pflag error until the flag moved to the
/// component-globals registry (1.32), then the gate error itself.
fn gate_error(version: KubeVersion, raw: &str, err: &str) -> String {
    if version.at_least(32) {
        err.to_string()
    } else {
        pflag_invalid(raw, "feature-gates", err)
    }
}

/// The controller's name in the manager's log: `nodeipam` until the 1.28 rename.
pub fn node_ipam_controller_name(version: KubeVersion) -> &'static str {
    if version.at_least(28) {
        "node-ipam-controller"
    } else {
        "nodeipam"
    }
}

pub(crate) fn configure(version: KubeVersion, flags: Flags<'_>) -> Outcome<KcmConfig> {
    let mut defaults = vec![
        ("allocate-node-cidrs", "false".to_string()),
        ("cidr-allocator-type", "RangeAllocator".to_string()),
    ];
    if version.at_least(17) {
        defaults.push((
            "node-cidr-mask-size-ipv4",
            DEFAULT_NODE_MASK_IPV4.to_string(),
        ));
        defaults.push((
            "node-cidr-mask-size-ipv6",
            DEFAULT_NODE_MASK_IPV6.to_string(),
        ));
    } else {
        defaults.push(("node-cidr-mask-size", DEFAULT_NODE_MASK_IPV4.to_string()));
    }
    let mut status = ComponentStatus {
        flags: echo_flags(flags, &defaults),
        ..ComponentStatus::default()
    };
    match run(version, flags, &mut status) {
        Ok(cfg) => {
            status.started = true;
            Outcome {
                status,
                config: Some(cfg),
            }
        }
        Err(Failure {
            message,
            in_node_ipam,
        }) => {
            status.message = Some(message);
            if in_node_ipam {
                status.controller = Some(node_ipam_controller_name(version).to_string());
            }
            Outcome {
                status,
                config: None,
            }
        }
    }
}

struct Failure {
    message: String,
    /// Whether the error came from starting the node IPAM controller.
    in_node_ipam: bool,
}

impl Failure {
    fn startup(message: String) -> Failure {
        Failure {
            message,
            in_node_ipam: false,
        }
    }
}

fn run(
    version: KubeVersion,
    flags: Flags<'_>,
    status: &mut ComponentStatus,
) -> Result<KcmConfig, Failure> {
    // Flag parsing. The per-family mask flags arrived in 1.17 (kubernetes#79993); 1.16 had one
    // mask size for every family.
    if !version.at_least(17) {
        for name in ["node-cidr-mask-size-ipv4", "node-cidr-mask-size-ipv6"] {
            if values::get(flags, name).is_some() {
                return Err(Failure::startup(format!("unknown flag: --{name}")));
            }
        }
    }
    let wrap = |raw: &str, e: &str| gate_error(version, raw, e);
    let gates = gates::from_flags(version, flags, wrap, wrap).map_err(Failure::startup)?;
    status.warnings.extend(gates.warnings.iter().cloned());
    let allocate = bool_flag(flags, "allocate-node-cidrs")
        .map_err(Failure::startup)?
        .unwrap_or(false);
    let mask = |name| -> Result<i64, Failure> {
        Ok(int_flag(flags, name)
            .map_err(Failure::startup)?
            .unwrap_or(0))
    };
    let masks = MaskFlags {
        single: mask("node-cidr-mask-size")?,
        ipv4: mask("node-cidr-mask-size-ipv4")?,
        ipv6: mask("node-cidr-mask-size-ipv6")?,
    };
    let allocator_type = str_flag(flags, "cidr-allocator-type")
        .unwrap_or("RangeAllocator")
        .to_string();
    let cloud_provider = str_flag(flags, "cloud-provider").unwrap_or("").to_string();

    // Options validation (NodeIPAMControllerOptions.Validate), before any controller starts.
    let service_entries = cidr_entries(flags, "service-cluster-ip-range").unwrap_or_default();
    if service_entries.len() > 2 {
        return Err(Failure::startup(
            "--service-cluster-ip-range can not contain more than two entries".to_string(),
        ));
    }

    let idle = |gates: Gates| KcmConfig {
        allocate_node_cidrs: allocate,
        cluster_cidrs: Vec::new(),
        node_mask_sizes: Vec::new(),
        service_cidrs: Vec::new(),
        node_ipam: false,
        gates: gates.values,
    };
    if !allocate || !controller_enabled(version, flags) {
        return Ok(idle(gates));
    }

    let cfg = start_node_ipam(
        version,
        flags,
        &gates,
        &masks,
        &allocator_type,
        &cloud_provider,
        &service_entries,
        status,
    )
    .map_err(|e| Failure {
        message: match e {
            IpamError::Returned(m) if !version.at_least(24) => {
                format!("error starting controllers: {m}")
            }
            IpamError::Returned(m) | IpamError::Constructor(m) => m,
        },
        in_node_ipam: true,
    })?;
    match cfg {
        Some((cluster_cidrs, node_mask_sizes, service_cidrs)) => Ok(KcmConfig {
            allocate_node_cidrs: true,
            cluster_cidrs,
            node_mask_sizes,
            service_cidrs,
            node_ipam: true,
            gates: gates.values,
        }),
        None => Ok(idle(gates)),
    }
}

/// `--controllers`: `*` enables every controller that is on by default (node IPAM is),
/// `-name` disables one, `name` enables one.
fn controller_enabled(version: KubeVersion, flags: Flags<'_>) -> bool {
    let Some(list) = list_flag(flags, "controllers") else {
        return true;
    };
    let names: &[&str] = if version.at_least(28) {
        &["nodeipam", "node-ipam-controller"]
    } else {
        &["nodeipam"]
    };
    let mut star = false;
    for item in &list {
        if let Some(off) = item.strip_prefix('-') {
            if names.contains(&off) {
                return false;
            }
        } else if names.contains(&item.as_str()) {
            return true;
        } else if item == "*" {
            star = true;
        }
    }
    star
}

struct MaskFlags {
    /// `--node-cidr-mask-size` (0 when unset).
    single: i64,
    ipv4: i64,
    ipv6: i64,
}

enum IpamError {
    /// Returned from `startNodeIpamController` (wrapped by the manager up to 1.23).
    Returned(String),
    /// From the controller constructor's fatal checks (always the bare text).
    Constructor(String),
}

type NodeIpam = (Vec<IpNet>, Vec<u8>, Vec<IpNet>);

#[allow(clippy::too_many_arguments)]
fn start_node_ipam(
    version: KubeVersion,
    flags: Flags<'_>,
    gates: &Gates,
    masks: &MaskFlags,
    allocator_type: &str,
    cloud_provider: &str,
    service_entries: &[CidrEntry],
    status: &mut ComponentStatus,
) -> Result<Option<NodeIpam>, IpamError> {
    use IpamError::{Constructor, Returned};

    match allocator_type {
        "RangeAllocator" => {}
        // KCM has no in-tree cloud provider from 1.31 (KEP-2395), and none is configured when
        // --cloud-provider is unset or "external".
        "CloudAllocator"
            if version.at_least(31)
                || cloud_provider.is_empty()
                || cloud_provider == "external" =>
        {
            return Err(Returned(
                "--cidr-allocator-type is set to 'CloudAllocator' but cloud provider is not configured".to_string(),
            ));
        }
        "CloudAllocator" | "IPAMFromCluster" | "IPAMFromCloud" => {
            status.warnings.push(format!(
                "cidr-allocator-type {allocator_type} is not modelled by knetsim; no node CIDRs are allocated"
            ));
            return Ok(None);
        }
        _ => {}
    }

    // validateCIDRs / the inline checks of the older releases.
    let raw = values::get(flags, "cluster-cidr").map_or(String::new(), |f| f.raw.clone());
    let entries = cidr_entries(flags, "cluster-cidr").unwrap_or_default();
    let cluster_cidrs = parse_cidrs(&raw, &entries).map_err(Returned)?;
    let dual = is_dual_stack(&cluster_cidrs);
    if cluster_cidrs.len() > 1 && !gates.enabled(version, "IPv6DualStack") {
        return Err(Returned(format!(
            "len of ClusterCIDRs=={} and dualstack feature is not enabled",
            cluster_cidrs.len()
        )));
    }
    if cluster_cidrs.len() > 1 && !dual {
        return Err(Returned(format!(
            "len of ClusterCIDRs=={} and they are not configured as dual stack (at least one from each IPFamily",
            cluster_cidrs.len()
        )));
    }
    if cluster_cidrs.len() > 2 {
        return Err(Returned(if version.at_least(21) {
            format!(
                "length of clusterCIDRs is:{} more than max allowed of 2",
                cluster_cidrs.len()
            )
        } else {
            format!(
                "len of clusters is:{} > more than max allowed of 2",
                cluster_cidrs.len()
            )
        }));
    }

    // Service ranges: a range that does not parse is logged and ignored.
    let mut service_cidrs: Vec<IpNet> = Vec::new();
    for entry in service_entries.iter().take(2) {
        match entry {
            CidrEntry::Net(n) => service_cidrs.push(masked(*n)),
            // The structured form from 1.24 (`logger.Info("Warning: unsuccessful parsing of
            // service CIDR", "CIDR", …, "err", …)`), the printf form before.
            CidrEntry::Bad(text) => status.warnings.push(if version.at_least(24) {
                format!(
                    "\"Warning: unsuccessful parsing of service CIDR\" CIDR={} err=\"invalid CIDR address: {text}\"",
                    go_quote(text)
                )
            } else {
                format!("Unsuccessful parsing of service CIDR {text}: invalid CIDR address: {text}")
            }),
        }
    }
    let both_service = service_entries.len() == 2 && service_cidrs.len() == 2;
    if both_service {
        if !gates.enabled(version, "IPv6DualStack") {
            return Err(Returned(
                "secondary service cidr is provided and IPv6DualStack feature is not enabled"
                    .to_string(),
            ));
        }
        if Family::of_net(&service_cidrs[0]) == Family::of_net(&service_cidrs[1]) {
            return Err(Returned(
                "serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)"
                    .to_string(),
            ));
        }
    }

    let node_mask_sizes =
        node_cidr_mask_sizes(version, gates, masks, &cluster_cidrs).map_err(Returned)?;

    // NewNodeIpamController.
    if cluster_cidrs.is_empty() {
        // Not reachable through the flags (an empty --cluster-cidr fails to parse above), kept
        // because it is the controller's own check.
        return Err(Constructor(
            "Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set".to_string(),
        ));
    }
    for (cidr, &node_mask) in cluster_cidrs.iter().zip(&node_mask_sizes) {
        if i64::from(cidr.prefix_len()) > node_mask {
            return Err(Constructor(if version.at_least(17) {
                "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family".to_string()
            } else {
                "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than --node-cidr-mask-size".to_string()
            }));
        }
    }
    if allocator_type != "RangeAllocator" {
        return Err(Returned(format!(
            "invalid CIDR allocator type: {allocator_type}"
        )));
    }
    // NewCIDRRangeAllocator → cidrset.NewCIDRSet for each cluster CIDR.
    let mut sizes = Vec::with_capacity(node_mask_sizes.len());
    for (cidr, &node_mask) in cluster_cidrs.iter().zip(&node_mask_sizes) {
        if matches!(cidr, IpNet::V6(_))
            && node_mask - i64::from(cidr.prefix_len()) > i64::from(CLUSTER_SUBNET_MAX_DIFF)
        {
            return Err(Returned(
                "New CIDR set failed; the node CIDR size is too big".to_string(),
            ));
        }
        // The mask is at least the cluster prefix (checked above); the CIDR set does not bound it
        // by the address width, but a block narrower than an address cannot be allocated.
        sizes.push(
            u8::try_from(node_mask.min(i64::from(cidr.max_prefix_len())))
                .unwrap_or(cidr.max_prefix_len()),
        );
    }
    Ok(Some((cluster_cidrs, sizes, service_cidrs)))
}

/// `processCIDRs`: split on commas, parse each with `netutils.ParseCIDRs`, keep the masked
/// network.
fn parse_cidrs(raw: &str, entries: &[CidrEntry]) -> Result<Vec<IpNet>, String> {
    // An unset or empty flag splits into one empty entry, which does not parse (seen in the
    // wild as `failed to parse cidr value:"" with error:invalid CIDR address: `).
    if entries.is_empty() {
        let text = raw.trim();
        return Err(format!(
            "failed to parse cidr value:{} with error:invalid CIDR address: {text}",
            go_quote(text)
        ));
    }
    entries
        .iter()
        .map(|e| match e {
            CidrEntry::Net(n) => Ok(masked(*n)),
            CidrEntry::Bad(text) => Err(format!(
                "failed to parse cidr value:{} with error:invalid CIDR address: {text}",
                go_quote(text)
            )),
        })
        .collect()
}

/// `netutils.IsDualStackCIDRs`: at least one CIDR of each family.
fn is_dual_stack(cidrs: &[IpNet]) -> bool {
    cidrs.iter().any(|c| matches!(c, IpNet::V4(_)))
        && cidrs.iter().any(|c| matches!(c, IpNet::V6(_)))
}

/// The node mask size of each cluster CIDR, per release:
/// - 1.16: `--node-cidr-mask-size` (default 24) for every CIDR;
/// - 1.17–1.19: with `IPv6DualStack` on, only the per-family flags (defaults 24/64); off, only
///   `--node-cidr-mask-size`;
/// - 1.20: the same choice, made by the number of cluster CIDRs instead of the gate;
/// - from 1.21: `setNodeCIDRMaskSizes(cfg, clusterCIDRs)`, where a single-stack cluster may use
///   either the old flag or its own family's flag.
fn node_cidr_mask_sizes(
    version: KubeVersion,
    gates: &Gates,
    masks: &MaskFlags,
    cluster_cidrs: &[IpNet],
) -> Result<Vec<i64>, String> {
    let (v4_default, v6_default) = (
        i64::from(DEFAULT_NODE_MASK_IPV4),
        i64::from(DEFAULT_NODE_MASK_IPV6),
    );
    let sorted = |v4: i64, v6: i64| -> Vec<i64> {
        cluster_cidrs
            .iter()
            .map(|c| if matches!(c, IpNet::V6(_)) { v6 } else { v4 })
            .collect()
    };
    if !version.at_least(17) {
        let m = if masks.single != 0 {
            masks.single
        } else {
            v4_default
        };
        return Ok(sorted(m, m));
    }
    if !version.at_least(21) {
        let dual_path = if version.at_least(20) {
            cluster_cidrs.len() > 1
        } else {
            gates.enabled(version, "IPv6DualStack")
        };
        if dual_path {
            // setNodeCIDRMaskSizesDualStack
            if masks.single != 0 {
                return Err(
                    "usage of --node-cidr-mask-size is not allowed with dual-stack clusters"
                        .to_string(),
                );
            }
            let v4 = if masks.ipv4 != 0 {
                masks.ipv4
            } else {
                v4_default
            };
            let v6 = if masks.ipv6 != 0 {
                masks.ipv6
            } else {
                v6_default
            };
            return Ok(sorted(v4, v6));
        }
        // setNodeCIDRMaskSizes (single-stack)
        if masks.ipv4 != 0 || masks.ipv6 != 0 {
            return Err("usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 are not allowed with non dual-stack clusters".to_string());
        }
        let (v4, v6) = if masks.single != 0 {
            (masks.single, masks.single)
        } else {
            (v4_default, v6_default)
        };
        return Ok(sorted(v4, v6));
    }
    if cluster_cidrs.len() > 1 {
        if masks.single != 0 {
            return Err(
                "usage of --node-cidr-mask-size is not allowed with dual-stack clusters"
                    .to_string(),
            );
        }
        let v4 = if masks.ipv4 != 0 {
            masks.ipv4
        } else {
            v4_default
        };
        let v6 = if masks.ipv6 != 0 {
            masks.ipv6
        } else {
            v6_default
        };
        return Ok(sorted(v4, v6));
    }
    let single_stack_ipv6 = cluster_cidrs
        .first()
        .is_some_and(|c| matches!(c, IpNet::V6(_)));
    if masks.single != 0 {
        if masks.ipv4 != 0 || masks.ipv6 != 0 {
            return Err("usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags".to_string());
        }
        return Ok(sorted(masks.single, masks.single));
    }
    let mut v4 = v4_default;
    let mut v6 = v6_default;
    if masks.ipv4 != 0 {
        if single_stack_ipv6 {
            return Err("usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster".to_string());
        }
        v4 = masks.ipv4;
    }
    if masks.ipv6 != 0 {
        if !single_stack_ipv6 {
            return Err("usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster".to_string());
        }
        v6 = masks.ipv6;
    }
    Ok(sorted(v4, v6))
}
