//! kube-apiserver: `--service-cluster-ip-range`, `--service-node-port-range`,
//! `--advertise-address` and the gates that decide the Service IP allocator.
//!
//! The order of the checks is the server's: flags are parsed (feature gates included), then
//! `Complete()` turns the range flag into a primary and a secondary range
//! (`cmd/kube-apiserver/app/options/completion.go` `getServiceIPAndRanges`, with
//! `ServiceIPRange` from `pkg/controlplane/apiserver/options/options.go` supplying the
//! deprecated default), then `Validate()` collects every error of
//! `cmd/kube-apiserver/app/options/validation.go` into one aggregate, and finally the storage
//! layer builds the Service IP allocators (`pkg/registry/core/rest/storage_core.go`).

use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;

use super::gates::{self, Gates};
use super::values::{
    self, CidrEntry, Flags, cidr_entries, go_quote, masked, pflag_invalid, port_range_flag,
    str_flag,
};
use super::{Outcome, ServiceAllocator, echo_flags};
use crate::state::ComponentStatus;

/// `kubeoptions.DefaultServiceIPCIDR` (`pkg/kubeapiserver/options/options.go`).
pub const DEFAULT_SERVICE_IP_CIDR: &str = "10.0.0.0/24";
/// `kubeoptions.DefaultServiceNodePortRange`: base 30000, size 2768.
pub const DEFAULT_NODE_PORT_RANGE: (u16, u16) = (30000, 32767);
/// `maxCIDRBits` of `validateClusterIPFlags`: at most 2^20 addresses per range.
const MAX_CIDR_BITS: u8 = 20;

/// What the running kube-apiserver uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiServerConfig {
    /// Masked, primary first; the deprecated default `10.0.0.0/24` when the flag is unset.
    pub service_cidrs: Vec<IpNet>,
    /// Whether dual-stack Services exist: the `IPv6DualStack` gate up to 1.24, always after.
    pub dual_stack: bool,
    /// The legacy bitmap, or the IPAddress allocator when `MultiCIDRServiceAllocator` is on.
    pub allocator_kind: ServiceAllocator,
    /// `ServiceIPStaticSubrange` (KEP-3070) in effect.
    pub static_subrange: bool,
    pub node_port_range: (u16, u16),
    /// `ServiceNodePortStaticSubrange` (KEP-3668) in effect.
    pub node_port_static_subrange: bool,
    /// Effective values of the modelled gates the release has.
    pub gates: std::collections::BTreeMap<String, bool>,
}

/// How the server reports a `--feature-gates` error. Up to 1.30 the gates are a pflag value, so
/// pflag wraps the error; from 1.31 the flag is collected by the component-globals registry and
/// `Set()` returns the gate error as it is (`component-base/featuregate/registry.go`).
fn gate_error(version: KubeVersion, raw: &str, err: &str) -> String {
    if version.at_least(31) {
        err.to_string()
    } else {
        pflag_invalid(raw, "feature-gates", err)
    }
}

pub(crate) fn configure(version: KubeVersion, flags: Flags<'_>) -> Outcome<ApiServerConfig> {
    let mut status = ComponentStatus {
        flags: echo_flags(
            flags,
            &[
                (
                    "service-cluster-ip-range",
                    DEFAULT_SERVICE_IP_CIDR.to_string(),
                ),
                ("service-node-port-range", "30000-32767".to_string()),
            ],
        ),
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
        Err(message) => {
            status.message = Some(message);
            Outcome {
                status,
                config: None,
            }
        }
    }
}

fn run(
    version: KubeVersion,
    flags: Flags<'_>,
    status: &mut ComponentStatus,
) -> Result<ApiServerConfig, String> {
    // Flag parsing.
    let wrap = |raw: &str, e: &str| gate_error(version, raw, e);
    let gates = gates::from_flags(version, flags, wrap, wrap)?;
    status.warnings.extend(gates.warnings.iter().cloned());
    let node_port_range =
        port_range_flag(flags, "service-node-port-range")?.unwrap_or(DEFAULT_NODE_PORT_RANGE);
    let advertise = match str_flag(flags, "advertise-address") {
        None => None,
        Some(s) => Some(values::parse_ip_sloppy(s.trim()).ok_or_else(|| {
            pflag_invalid(
                s,
                "advertise-address",
                &format!("failed to parse IP: {}", go_quote(s)),
            )
        })?),
    };

    // Complete(): getServiceIPAndRanges.
    let entries = cidr_entries(flags, "service-cluster-ip-range").unwrap_or_default();
    let (primary, secondary) = complete_ranges(version, &entries, status)?;

    // Validate(): every error, aggregated.
    let mut errs = validate_cluster_ip_flags(version, &gates, &entries, primary, secondary);
    // From 1.31 the advertise-address family check is part of validation
    // (validatePublicIPServiceClusterIPRangeIPFamilies); before, the bootstrap controller made
    // the same check when the server was built, after validation passed.
    let family_err = advertise.and_then(|a| family_mismatch(version, primary, a));
    if version.at_least(31) {
        errs.extend(family_err.clone());
    }
    if let Some(msg) = values::aggregate(&errs) {
        return Err(msg);
    }
    if let Some(msg) = family_err {
        return Err(msg);
    }

    // Storage: the Service IP allocators.
    let allocator_kind = if gates.enabled(version, "MultiCIDRServiceAllocator") {
        ServiceAllocator::IpAddress
    } else {
        ServiceAllocator::Bitmap
    };
    if allocator_kind == ServiceAllocator::IpAddress {
        for (idx, range) in [Some(primary), secondary].into_iter().flatten().enumerate() {
            let Some(err) = ip_allocator_error(range) else {
                continue;
            };
            // 1.27–1.29 build the IPAddress allocator for the flag's range at start-up and fail
            // (`storage_core.go`); from 1.30 the MetaAllocator builds one per ServiceCIDR object
            // in the background, logs the error and leaves that range without an allocator.
            if version.at_least(30) {
                status.warnings.push(err);
            } else if idx == 0 {
                return Err(format!("cannot create cluster IP allocator: {err}"));
            } else {
                return Err(format!(
                    "cannot create cluster secondary IP allocator: {err}"
                ));
            }
        }
    }

    let mut service_cidrs = vec![primary];
    service_cidrs.extend(secondary);
    Ok(ApiServerConfig {
        service_cidrs,
        dual_stack: gates.enabled(version, "IPv6DualStack"),
        allocator_kind,
        static_subrange: gates.enabled(version, "ServiceIPStaticSubrange"),
        node_port_range,
        node_port_static_subrange: gates.enabled(version, "ServiceNodePortStaticSubrange"),
        gates: gates.values,
    })
}

/// `getServiceIPAndRanges`: the primary range (defaulted when the flag is empty) and the
/// secondary, masked. Errors here end start-up on their own, before validation.
fn complete_ranges(
    version: KubeVersion,
    entries: &[CidrEntry],
    status: &mut ComponentStatus,
) -> Result<(IpNet, Option<IpNet>), String> {
    let Some(first) = entries.first() else {
        // ServiceIPRange with no range: the deprecated default, with its warning.
        status.warnings.push(format!(
            "No CIDR for service cluster IPs specified. Default value which was {DEFAULT_SERVICE_IP_CIDR} is deprecated and will be removed in future releases. Please specify it using --service-cluster-ip-range on kube-apiserver."
        ));
        let default: IpNet = DEFAULT_SERVICE_IP_CIDR.parse().expect("constant CIDR");
        return Ok((default, None));
    };
    let CidrEntry::Net(primary) = first else {
        return Err("service-cluster-ip-range[0] is not a valid cidr".to_string());
    };
    let primary = masked(*primary);
    // ServiceIPRange: the range must hold 8 addresses (size capped at 2^16 before comparing).
    if host_bits(&primary) < 3 {
        let detail = if version.at_least(19) {
            "the service cluster IP range must be at least 8 IP addresses"
        } else {
            "The service cluster IP range must be at least 8 IP addresses"
        };
        return Err(format!(
            "error determining service IP ranges for primary service cidr: {detail}"
        ));
    }
    let secondary = match entries.get(1) {
        None => None,
        Some(CidrEntry::Net(n)) => Some(masked(*n)),
        Some(CidrEntry::Bad(_)) => {
            return Err("service-cluster-ip-range[1] is not an ip net".to_string());
        }
    };
    Ok((primary, secondary))
}

fn host_bits(net: &IpNet) -> u8 {
    net.max_prefix_len() - net.prefix_len()
}

/// `validateClusterIPFlags`, per release.
fn validate_cluster_ip_flags(
    version: KubeVersion,
    gates: &Gates,
    entries: &[CidrEntry],
    primary: IpNet,
    secondary: Option<IpNet>,
) -> Vec<String> {
    let mut errs = Vec::new();
    if entries.len() > 2 {
        errs.push("--service-cluster-ip-range must not contain more than two entries".to_string());
    }
    // The size limit protects the etcd bitmap. It is skipped when no bitmap is written: with
    // MultiCIDRServiceAllocator alone in 1.27–1.30, with it and DisableAllocatorDualWrite from
    // 1.31 (validation_test.go "service cidr IPv4 is too big but gate enbled").
    let multi = gates.enabled(version, "MultiCIDRServiceAllocator");
    let size_checked = if version.at_least(31) {
        !(multi && gates.enabled(version, "DisableAllocatorDualWrite"))
    } else {
        !multi
    };
    if size_checked {
        errs.extend(max_cidr_range(version, &primary, false));
    }
    let Some(secondary) = secondary else {
        return errs;
    };
    if version.at_least(23) {
        // IPv6DualStack is GA: no gate check.
    } else if version.at_least(20) {
        if !(gates.enabled(version, "IPv6DualStack") && gates.enabled(version, "EndpointSlice")) {
            errs.push("secondary service cluster-ip range(--service-cluster-ip-range[1]) can only be used if IPv6DualStack and EndpointSlice feature is enabled".to_string());
        }
    } else if !gates.enabled(version, "IPv6DualStack") {
        errs.push("--secondary-service-cluster-ip-range can only be used if IPv6DualStack feature is enabled".to_string());
    }
    if Family::of_net(&primary) == Family::of_net(&secondary) {
        errs.push(if version.at_least(20) {
            "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family".to_string()
        } else {
            "--service-cluster-ip-range and --secondary-service-cluster-ip-range must be of different IP family".to_string()
        });
    }
    if size_checked {
        errs.extend(max_cidr_range(version, &secondary, true));
    }
    errs
}

/// `validateMaxCIDRRange`; before 1.20 the message carried no detail.
fn max_cidr_range(version: KubeVersion, cidr: &IpNet, secondary: bool) -> Option<String> {
    if host_bits(cidr) <= MAX_CIDR_BITS {
        return None;
    }
    if !version.at_least(20) {
        return Some(if secondary {
            "specified --secondary-service-cluster-ip-range is too large".to_string()
        } else {
            "specified --service-cluster-ip-range is too large".to_string()
        });
    }
    let flag = if secondary {
        "--service-cluster-ip-range[1]"
    } else {
        "--service-cluster-ip-range"
    };
    let bits = cidr.max_prefix_len();
    Some(format!(
        "specified {flag} is too large; for {bits}-bit addresses, the mask must be >= {}",
        bits - MAX_CIDR_BITS
    ))
}

/// The `kubernetes` Service is single-stack in the primary family, so the address the server
/// advertises as its endpoint must be of that family. Checked since about 1.21 (KEP-2438's
/// TODO in the bootstrap controller).
fn family_mismatch(version: KubeVersion, primary: IpNet, advertise: IpAddr) -> Option<String> {
    if !version.at_least(21) || Family::of_net(&primary) == Family::of_ip(&advertise) {
        return None;
    }
    Some(format!(
        "service IP family {} must match public address family {}",
        go_quote(&primary.to_string()),
        go_quote(&advertise.to_string())
    ))
}

/// `ipallocator.NewIPAllocator` refuses IPv6 ranges shorter than /64.
fn ip_allocator_error(range: IpNet) -> Option<String> {
    match range {
        IpNet::V6(n) if n.prefix_len() < 64 => Some(format!(
            "shortest allowed prefix length for service CIDR is 64, got {}",
            n.prefix_len()
        )),
        _ => None,
    }
}
