//! kube-proxy: the proxy mode, `--cluster-cidr` and the local-traffic detector,
//! `--nodeport-addresses`, the masquerade mark, and the messages of its configuration
//! validation (`pkg/proxy/apis/config/validation/validation.go`).
//!
//! The command (`cmd/kube-proxy/app/server.go`) applies the feature gates in `Complete()` and
//! reports failures as `failed complete: %v`, then validates the whole configuration and
//! reports the aggregate as `failed validate: %v`. Field errors print as apimachinery's
//! `field.Error` does: `<path>: Invalid value: <value>: <detail>`.

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;

use super::gates::{self, Gates};
use super::values::{
    self, CidrEntry, Flags, aggregate, bool_flag, cidr_entries, go_quote, go_string_slice,
    int_flag, list_flag, masked, pflag_invalid, str_flag,
};
use super::{Outcome, echo_flags};
use crate::state::{ComponentStatus, ProxyConfig};

/// `--iptables-masquerade-bit` default (mark 0x4000).
pub const DEFAULT_MASQUERADE_BIT: u8 = 14;
const PATH: &str = "KubeProxyConfiguration";

/// The flag that selects the mode: kube-proxy's own `--proxy-mode`, or `mode` as the
/// configuration file (and knetsim's scenario contract) calls it.
fn mode_flag<'a>(flags: Flags<'a>) -> Option<(&'static str, &'a str)> {
    if let Some(m) = str_flag(flags, "proxy-mode") {
        return Some(("proxy-mode", m));
    }
    str_flag(flags, "mode").map(|m| ("mode", m))
}

pub(crate) fn configure(
    version: KubeVersion,
    flags: Flags<'_>,
    primary_family: Option<Family>,
) -> Outcome<ProxyConfig> {
    let mut defaults = vec![
        ("masquerade-all", "false".to_string()),
        (
            "iptables-masquerade-bit",
            DEFAULT_MASQUERADE_BIT.to_string(),
        ),
    ];
    if mode_flag(flags).is_none() {
        defaults.push(("proxy-mode", "iptables".to_string()));
    }
    if version.at_least(18) {
        defaults.push(("detect-local-mode", "ClusterCIDR".to_string()));
    }
    if version.at_least(26) {
        defaults.push(("iptables-localhost-nodeports", "true".to_string()));
    }
    let mut status = ComponentStatus {
        flags: echo_flags(flags, &defaults),
        ..ComponentStatus::default()
    };
    match run(version, flags, primary_family, &mut status) {
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
    primary_family: Option<Family>,
    status: &mut ComponentStatus,
) -> Result<ProxyConfig, String> {
    // Flag parsing.
    // The gates are applied in Complete(); a malformed list already fails flag parsing.
    let gates = gates::from_flags(
        version,
        flags,
        |raw, e| pflag_invalid(raw, "feature-gates", e),
        |_, e| format!("failed complete: {e}"),
    )?;
    let masquerade_all = bool_flag(flags, "masquerade-all")?.unwrap_or(false);
    let localhost_nodeports = bool_flag(flags, "iptables-localhost-nodeports")?.unwrap_or(true);
    let masquerade_bit =
        int_flag(flags, "iptables-masquerade-bit")?.unwrap_or(i64::from(DEFAULT_MASQUERADE_BIT));
    let mode = mode_flag(flags).map_or("", |(_, m)| m).to_string();
    let detect_local_mode = str_flag(flags, "detect-local-mode")
        .unwrap_or("")
        .to_string();
    let bridge = str_flag(flags, "pod-bridge-interface").map(str::to_string);
    let prefix = str_flag(flags, "pod-interface-name-prefix").map(str::to_string);
    let cluster_raw = values::get(flags, "cluster-cidr")
        .map(|f| f.raw.clone())
        .unwrap_or_default();
    let cluster_entries = cidr_entries(flags, "cluster-cidr").unwrap_or_default();
    let nodeport_set = list_flag(flags, "nodeport-addresses");

    status.warnings.extend(gates.warnings.iter().cloned());

    // Validate().
    let mut errs = Vec::new();
    if !(0..=31).contains(&masquerade_bit) {
        errs.push(format!(
            "{PATH}.KubeProxyIPTablesConfiguration.MasqueradeBit: Invalid value: {masquerade_bit}: must be within the range [0, 31]"
        ));
    }
    errs.extend(validate_mode(version, &gates, &mode));
    if !version.at_least(30) {
        errs.extend(validate_cluster_cidr_string(
            version,
            &gates,
            &cluster_raw,
            &cluster_entries,
        ));
    }
    if let Some(list) = &nodeport_set {
        errs.extend(validate_nodeport_addresses(version, list));
    }
    let effective_detect = if detect_local_mode.is_empty() {
        "ClusterCIDR".to_string()
    } else {
        detect_local_mode.clone()
    };
    if version.at_least(23) {
        let valid = [
            "ClusterCIDR",
            "NodeCIDR",
            "BridgeInterface",
            "InterfaceNamePrefix",
            "",
        ];
        if !valid.contains(&detect_local_mode.as_str()) {
            let supported: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            errs.push(format!(
                "{PATH}.DetectLocalMode: Unsupported value: {}: supported values: {}",
                go_quote(&detect_local_mode),
                supported.join(", ")
            ));
        }
        match effective_detect.as_str() {
            "BridgeInterface" if bridge.as_deref().unwrap_or("").is_empty() => errs.push(format!(
                "{PATH}.DetectLocalConfiguration.InterfaceName: Invalid value: \"\": must not be empty"
            )),
            "InterfaceNamePrefix" if prefix.as_deref().unwrap_or("").is_empty() => errs.push(format!(
                "{PATH}.DetectLocalConfiguration.InterfacePrefix: Invalid value: \"\": must not be empty"
            )),
            "ClusterCIDR" if version.at_least(30) && !cluster_entries.is_empty() => {
                errs.extend(validate_cluster_cidrs(&cluster_entries));
            }
            _ => {}
        }
    }
    if let Some(msg) = aggregate(&errs) {
        return Err(format!("failed validate: {msg}"));
    }
    // Before validation learnt the detect-local modes, the server rejected an unknown one when
    // it built the proxier (server_others.go newProxyServer → getDetectLocalMode).
    if version.at_least(18)
        && !version.at_least(23)
        && !["ClusterCIDR", "NodeCIDR", ""].contains(&detect_local_mode.as_str())
    {
        return Err(format!(
            "cannot determine detect-local-mode: unknown detect-local-mode: {detect_local_mode}"
        ));
    }

    let effective_mode = if mode.is_empty() {
        "iptables".to_string()
    } else {
        mode
    };
    let cluster_cidrs: Vec<IpNet> = cluster_entries
        .iter()
        .filter_map(|e| match e {
            CidrEntry::Net(n) => Some(masked(*n)),
            CidrEntry::Bad(_) => None,
        })
        .collect();
    if effective_detect == "ClusterCIDR" {
        status.warnings.extend(detect_local_warnings(
            version,
            &cluster_cidrs,
            primary_family,
        ));
    }
    // The nftables proxier defaults an unset --nodeport-addresses to the node's primary IPs
    // (server_linux.go); the other modes accept NodePorts on every local address.
    let nodeport_addresses = match nodeport_set {
        Some(list) => list,
        None if effective_mode == "nftables" => vec!["primary".to_string()],
        None => Vec::new(),
    };
    Ok(ProxyConfig {
        mode: effective_mode,
        cluster_cidrs,
        masquerade_all,
        nodeport_addresses,
        detect_local_mode: effective_detect,
        masquerade_bit: u8::try_from(masquerade_bit).unwrap_or(DEFAULT_MASQUERADE_BIT),
        localhost_nodeports,
        pod_bridge_interface: bridge,
        pod_interface_name_prefix: prefix,
    })
}

/// `validateProxyModeLinux`: userspace until its removal in 1.26, nftables from 1.29 when
/// `NFTablesProxyMode` is on. The valid modes are listed sorted, joined by "," while userspace
/// existed and by ", " after.
fn validate_mode(version: KubeVersion, gates: &Gates, mode: &str) -> Option<String> {
    let mut valid = vec!["iptables", "ipvs"];
    if !version.at_least(26) {
        valid.push("userspace");
    }
    if gates.enabled(version, "NFTablesProxyMode") {
        valid.push("nftables");
    }
    valid.sort_unstable();
    if mode.is_empty() || valid.contains(&mode) {
        return None;
    }
    let sep = if version.at_least(26) { ", " } else { "," };
    Some(format!(
        "{PATH}.Mode.ProxyMode: Invalid value: {}: must be {} or blank (blank means the best-available proxy [currently iptables])",
        go_quote(mode),
        valid.join(sep)
    ))
}

/// The `ClusterCIDR` string checks of releases up to 1.29. While `IPv6DualStack` could be off
/// (up to 1.22), a second CIDR needed it.
fn validate_cluster_cidr_string(
    version: KubeVersion,
    gates: &Gates,
    raw: &str,
    entries: &[CidrEntry],
) -> Option<String> {
    if raw.is_empty() && entries.is_empty() {
        return None;
    }
    let dual_enabled = gates.enabled(version, "IPv6DualStack");
    let nets: Vec<Option<IpNet>> = entries
        .iter()
        .map(|e| match e {
            CidrEntry::Net(n) => Some(*n),
            CidrEntry::Bad(_) => None,
        })
        .collect();
    let detail = match nets.len() {
        n if dual_enabled && n > 2 => {
            "only one CIDR allowed or a valid DualStack CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"
        }
        2 if dual_enabled => {
            let dual = matches!((nets[0], nets[1]), (Some(a), Some(b)) if Family::of_net(&a) != Family::of_net(&b));
            if dual {
                return None;
            }
            "must be a valid DualStack CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"
        }
        n if !dual_enabled && n > 1 => {
            "only one CIDR allowed (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)"
        }
        _ => {
            if nets.first().is_some_and(Option::is_some) {
                return None;
            }
            "must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)"
        }
    };
    Some(format!(
        "{PATH}.ClusterCIDR: Invalid value: {}: {detail}",
        go_quote(raw)
    ))
}

/// `validateDualStackCIDRStrings` over `DetectLocal.ClusterCIDRs` (from 1.30). The detail keeps
/// upstream's typo and unbalanced bracket.
fn validate_cluster_cidrs(entries: &[CidrEntry]) -> Vec<String> {
    const PAIR: &str = "must be a either a single CIDR or dual-stack pair of CIDRs (e.g. [10.100.0.0/16, fde4:8dba:82e1::/48]";
    let path = format!("{PATH}.DetectLocalConfiguration.ClusterCIDRs");
    let strings: Vec<String> = entries
        .iter()
        .map(|e| match e {
            CidrEntry::Net(n) => n.to_string(),
            CidrEntry::Bad(s) => s.clone(),
        })
        .collect();
    if entries.len() > 2 {
        return vec![format!(
            "{path}: Invalid value: {}: {PAIR}",
            go_string_slice(&strings)
        )];
    }
    let mut errs = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let CidrEntry::Bad(s) = e {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {}: must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)",
                go_quote(s)
            ));
        }
    }
    if let [CidrEntry::Net(a), CidrEntry::Net(b)] = entries
        && Family::of_net(a) == Family::of_net(b)
    {
        errs.push(format!(
            "{path}: Invalid value: {}: {PAIR}",
            go_string_slice(&strings)
        ));
    }
    errs
}

/// `validateKubeProxyNodePortAddress`: CIDRs, and from 1.29 the word `primary` on its own.
fn validate_nodeport_addresses(version: KubeVersion, list: &[String]) -> Vec<String> {
    let path = format!("{PATH}.NodePortAddresses");
    if !version.at_least(29) {
        let bad = list.iter().any(|a| values::parse_cidr_sloppy(a).is_none());
        return if bad {
            vec![format!(
                "{path}: Invalid value: {}: must be a valid IP block",
                go_string_slice(list)
            )]
        } else {
            Vec::new()
        };
    }
    let mut errs = Vec::new();
    for (i, a) in list.iter().enumerate() {
        if a == "primary" {
            if i != 0 || list.len() != 1 {
                errs.push(format!(
                    "{path}[{i}]: Invalid value: {}: can't use both 'primary' and CIDRs",
                    go_quote(a)
                ));
            }
            break;
        }
        if values::parse_cidr_sloppy(a).is_none() {
            errs.push(format!(
                "{path}[{i}]: Invalid value: {}: must be a valid CIDR",
                go_quote(a)
            ));
        }
    }
    errs
}

/// What `getLocalDetectors` logs in ClusterCIDR mode when a family has no cluster CIDR. The
/// proxy still starts and treats that family's traffic as never local. kube-proxy's primary
/// family is its node's; knetsim passes the cluster's primary family.
fn detect_local_warnings(
    version: KubeVersion,
    cidrs: &[IpNet],
    primary: Option<Family>,
) -> Vec<String> {
    let has = |f: Family| cidrs.iter().any(|c| Family::of_net(c) == f);
    if version.at_least(30) {
        match primary {
            Some(f) if !has(f) => vec![
                "Detect-local-mode set to ClusterCIDR, but no cluster CIDR specified for primary IP family".to_string(),
            ],
            _ => Vec::new(),
        }
    } else if version.at_least(28) {
        let primary = primary.unwrap_or(Family::IPv4);
        [primary, primary.other()]
            .into_iter()
            .filter(|f| !has(*f))
            .map(|f| format!("Detect-local-mode set to ClusterCIDR, but no cluster CIDR for family ipFamily=\"{f}\""))
            .collect()
    } else if cidrs.is_empty() {
        vec!["Detect-local-mode set to ClusterCIDR, but no cluster CIDR defined".to_string()]
    } else {
        Vec::new()
    }
}
