//! Service validation: `pkg/apis/core/validation/validation.go` (`ValidateService`,
//! `ValidateServiceUpdate`, `ValidateServiceClusterIPsRelatedFields`,
//! `validateUpgradeDowngradeClusterIPs`, `validateUpgradeDowngradeIPFamilies`) and, for the
//! 1.16–1.19 alpha, `conditional_validation.go validateIPFamily`.
//!
//! Errors are produced in the order upstream appends them, because a response with several
//! errors lists them in that order. Checks that do not touch the fields knetsim models
//! (label syntax of the selector, annotations, `loadBalancerClass`, `trafficDistribution`,
//! `appProtocol`) are not ported.

use std::collections::BTreeSet;

use knetsim_ipam::Family;

use super::Features;
use super::field::{BadValue, FieldError};
use super::ipstr::{is_ipv6_string, parse_ip_sloppy};
use super::spec::*;

const FIELD_IMMUTABLE: &str = "field is immutable";
const VALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn strs(v: &[String]) -> BadValue {
    if v.is_empty() {
        BadValue::Strings(None)
    } else {
        BadValue::Strings(Some(v.to_vec()))
    }
}

fn families(v: &[String]) -> BadValue {
    if v.is_empty() {
        BadValue::Families(None)
    } else {
        BadValue::Families(Some(v.to_vec()))
    }
}

/// `service.Spec.IPFamilyPolicy` as a field-error value: a nil pointer prints `null`.
pub fn policy_value(svc: &Svc) -> BadValue {
    match &svc.ip_family_policy {
        None => BadValue::Null,
        Some(p) => BadValue::Str(p.clone()),
    }
}

// ---------------------------------------------------------------------------------------
// apimachinery/pkg/util/validation/validation.go

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.iter().all(|c| is_label_char(*c)) && b[0] != b'-' && b[b.len() - 1] != b'-'
}

/// `IsDNS1123Label`.
fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !matches_dns1123_label(s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsDNS1035Label`.
fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let ok = matches_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase();
    if !ok {
        errs.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errs
}

/// `IsValidPortNum`.
fn port_num_errors(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPortName`.
fn port_name_errors(p: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if p.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if p.is_empty() || !p.bytes().all(is_label_char) {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !p.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if p.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if p.starts_with('-') || p.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `ValidateNonSpecialIP`.
fn non_special_ip_errors(path: &str, s: &str) -> Vec<FieldError> {
    let Some(ip) = parse_ip_sloppy(s) else {
        return vec![FieldError::invalid(
            path,
            BadValue::Str(s.to_string()),
            "must be a valid IP address",
        )];
    };
    let v = || BadValue::Str(s.to_string());
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            v(),
            format!("may not be unspecified ({s})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            v(),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let link_local_unicast = match ip {
        std::net::IpAddr::V4(a) => a.is_link_local(),
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local_unicast {
        errs.push(FieldError::invalid(
            path,
            v(),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match ip {
        std::net::IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        std::net::IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            v(),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------
// ValidateServiceClusterIPsRelatedFields

/// `ValidateServiceClusterIPsRelatedFields`: the loose checks run both inside
/// `initIPFamilyFields` and as part of `ValidateService`.
pub fn cluster_ips_related(svc: &Svc) -> Vec<FieldError> {
    // ClusterIP, ClusterIPs, IPFamilyPolicy and IPFamilies are validated elsewhere (all must be
    // unset) for ExternalName Services.
    if svc.type_ == TYPE_EXTERNAL_NAME {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let mut has_invalid_ips = false;
    let ips_path = "spec.clusterIPs";

    if !svc.cluster_ip.is_empty() {
        if svc.cluster_ips.is_empty() {
            errs.push(FieldError::required(ips_path, ""));
        } else if svc.cluster_ips[0] != svc.cluster_ip {
            errs.push(FieldError::invalid(
                ips_path,
                strs(&svc.cluster_ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !svc.cluster_ips.is_empty() {
        errs.push(FieldError::invalid(
            ips_path,
            strs(&svc.cluster_ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen = BTreeSet::new();
    for (i, fam) in svc.ip_families.iter().enumerate() {
        let path = || format!("spec.ipFamilies[{i}]");
        if Family::parse(fam).is_none() {
            errs.push(FieldError::not_supported(
                path(),
                BadValue::Str(fam.clone()),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(fam.as_str()) {
            errs.push(FieldError::duplicate(path(), BadValue::Str(fam.clone())));
        }
    }

    if let Some(p) = &svc.ip_family_policy
        && ![SINGLE_STACK, PREFER_DUAL_STACK, REQUIRE_DUAL_STACK].contains(&p.as_str())
    {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            BadValue::Str(p.clone()),
            &[PREFER_DUAL_STACK, REQUIRE_DUAL_STACK, SINGLE_STACK],
        ));
    }

    for (i, ip) in svc.cluster_ips.iter().enumerate() {
        if i == 0 && ip == CLUSTER_IP_NONE {
            if svc.cluster_ips.len() > 1 {
                has_invalid_ips = true;
                errs.push(FieldError::invalid(
                    ips_path,
                    strs(&svc.cluster_ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if parse_ip_sloppy(ip).is_none() {
            has_invalid_ips = true;
            errs.push(FieldError::invalid(
                format!("spec.clusterIPs[{i}]"),
                BadValue::Str(ip.clone()),
                VALID_IP_MSG,
            ));
        }
    }

    if svc.cluster_ips.len() > 2 {
        errs.push(FieldError::invalid(
            ips_path,
            strs(&svc.cluster_ips),
            "may only hold up to 2 values",
        ));
    }

    // An invalid IP or a misplaced None would skew the following checks.
    if has_invalid_ips {
        return errs;
    }

    if svc.cluster_ips.len() > 1 {
        // `netutils.IsDualStackIPStrings`: at least one IP of each family.
        let v6 = svc
            .cluster_ips
            .iter()
            .filter(|ip| is_ipv6_string(ip))
            .count();
        let dual = v6 > 0 && v6 < svc.cluster_ips.len();
        if !dual {
            errs.push(FieldError::invalid(
                ips_path,
                strs(&svc.cluster_ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }

    if !svc.is_headless() && !svc.cluster_ips.is_empty() && !svc.ip_families.is_empty() {
        for (i, ip) in svc.cluster_ips.iter().enumerate() {
            let Some(fam) = svc.ip_families.get(i) else {
                break;
            };
            let v6 = is_ipv6_string(ip);
            if fam == "IPv4" && v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    BadValue::Str(ip.clone()),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if fam == "IPv6" && !v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    BadValue::Str(ip.clone()),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// `validateUpgradeDowngradeClusterIPs`.
pub fn upgrade_downgrade_cluster_ips(old: &Svc, new: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if new.type_ == TYPE_EXTERNAL_NAME || old.type_ == TYPE_EXTERNAL_NAME {
        return errs;
    }
    if old.is_headless() && new.is_headless() {
        return errs;
    }
    let (o, n) = (&old.cluster_ips, &new.cluster_ips);
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    strs(n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                strs(n),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                strs(n),
                "may not change once set",
            ));
        }
        if n.len() == 1 && new.policy() != SINGLE_STACK {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(new),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            strs(n),
            "may not change once set",
        ));
    }
    errs
}

/// `validateUpgradeDowngradeIPFamilies` (the "may not change once set" errors name
/// `ipFamilies[0]` whichever entry changed, and some print the clusterIPs: as upstream).
pub fn upgrade_downgrade_ip_families(old: &Svc, new: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if new.type_ == TYPE_EXTERNAL_NAME || old.type_ == TYPE_EXTERNAL_NAME {
        return errs;
    }
    if old.is_headless() != new.is_headless() || new.is_headless() {
        return errs;
    }
    let (o, n) = (&old.ip_families, &new.ip_families);
    if o.len() == n.len() {
        for (i, fam) in o.iter().enumerate() {
            if *fam != n[i] {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    families(n),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if new.cluster_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.ipFamilies[0]",
                families(n),
                "primary ipFamily can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                "spec.ipFamilies[0]",
                strs(&new.cluster_ips),
                "may not change once set",
            ));
        }
        if n.len() == 1 && new.policy() != SINGLE_STACK {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(new),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            "spec.ipFamilies[0]",
            strs(&new.cluster_ips),
            "may not change once set",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------
// ValidateService

/// `%#v` of the `core.ServicePort{Protocol, Port}` key in the duplicate-port error. The
/// struct gained `AppProtocol` in 1.18.
fn service_port_key(f: &Features, protocol: &str, port: i64) -> String {
    let app = if f.version.at_least(18) {
        "AppProtocol:(*string)(nil), "
    } else {
        ""
    };
    format!(
        "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", {app}Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
    )
}

fn validate_port(
    p: &Port,
    i: usize,
    require_name: bool,
    names: &mut BTreeSet<String>,
    f: &Features,
) -> Vec<FieldError> {
    let base = format!("spec.ports[{i}]");
    let mut errs = Vec::new();
    if require_name && p.name.is_empty() {
        errs.push(FieldError::required(format!("{base}.name"), ""));
    } else if !p.name.is_empty() {
        for m in dns1123_label_errors(&p.name) {
            errs.push(FieldError::invalid(
                format!("{base}.name"),
                BadValue::Str(p.name.clone()),
                m,
            ));
        }
        if !names.insert(p.name.clone()) {
            errs.push(FieldError::duplicate(
                format!("{base}.name"),
                BadValue::Str(p.name.clone()),
            ));
        }
    }
    for m in port_num_errors(p.port) {
        errs.push(FieldError::invalid(
            format!("{base}.port"),
            BadValue::Int(p.port),
            m,
        ));
    }
    if p.protocol.is_empty() {
        errs.push(FieldError::required(format!("{base}.protocol"), ""));
    } else if !["SCTP", "TCP", "UDP"].contains(&p.protocol.as_str()) {
        errs.push(FieldError::not_supported(
            format!("{base}.protocol"),
            BadValue::Str(p.protocol.clone()),
            &["SCTP", "TCP", "UDP"],
        ));
    }
    match &p.target_port {
        IntOrString::Int(n) => {
            for m in port_num_errors(*n) {
                errs.push(FieldError::invalid(
                    format!("{base}.targetPort"),
                    BadValue::Int(*n),
                    m,
                ));
            }
        }
        IntOrString::Str(s) => {
            for m in port_name_errors(s) {
                errs.push(FieldError::invalid(
                    format!("{base}.targetPort"),
                    BadValue::Str(s.clone()),
                    m,
                ));
            }
        }
    }
    let _ = f;
    errs
}

/// `ValidateService` for the version in `features`.
pub fn validate_service(svc: &Svc, f: &Features) -> Vec<FieldError> {
    let mut errs = Vec::new();

    // ValidateObjectMeta: the name must be a DNS-1035 label.
    if svc.name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in dns1035_label_errors(&svc.name) {
            errs.push(FieldError::invalid(
                "metadata.name",
                BadValue::Str(svc.name.clone()),
                m,
            ));
        }
    }

    // Before 1.20 "headless" was `clusterIP: None`; since then it is `clusterIPs: [None]`.
    let headless = if f.alpha_api {
        svc.cluster_ip == CLUSTER_IP_NONE
    } else {
        svc.is_headless()
    };
    if svc.ports.is_empty() && !headless && svc.type_ != TYPE_EXTERNAL_NAME {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let none_value = |svc: &Svc| -> (String, BadValue) {
        if f.alpha_api {
            (
                "spec.clusterIP".to_string(),
                BadValue::Str(svc.cluster_ip.clone()),
            )
        } else {
            (
                "spec.clusterIPs[0]".to_string(),
                BadValue::Str(svc.cluster_ips.first().cloned().unwrap_or_default()),
            )
        }
    };
    match svc.type_.as_str() {
        TYPE_LOAD_BALANCER => {
            for (ix, p) in svc.ports.iter().enumerate() {
                if p.port == 10250 {
                    errs.push(FieldError::invalid(
                        format!("spec.ports[{ix}]"),
                        BadValue::Int(p.port),
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
            if headless {
                let (path, v) = none_value(svc);
                errs.push(FieldError::invalid(
                    path,
                    v,
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        TYPE_NODE_PORT if headless => {
            let (path, v) = none_value(svc);
            errs.push(FieldError::invalid(
                path,
                v,
                "may not be set to 'None' for NodePort services",
            ));
        }
        TYPE_EXTERNAL_NAME => {
            if f.alpha_api {
                if !svc.cluster_ip.is_empty() {
                    errs.push(FieldError::forbidden(
                        "spec.clusterIP",
                        "must be empty for ExternalName services",
                    ));
                }
            } else {
                if !svc.cluster_ips.is_empty() {
                    errs.push(FieldError::forbidden(
                        "spec.clusterIPs",
                        "may not be set for ExternalName services",
                    ));
                }
                if !svc.ip_families.is_empty() {
                    errs.push(FieldError::forbidden(
                        "spec.ipFamilies",
                        "may not be set for ExternalName services",
                    ));
                }
                if svc.ip_family_policy.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.ipFamilyPolicy",
                        "may not be set for ExternalName services",
                    ));
                }
            }
            // The value (a CNAME) may have a trailing dot to denote it as fully qualified.
            let cname = svc
                .external_name
                .strip_suffix('.')
                .unwrap_or(&svc.external_name);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in dns1123_subdomain_errors(cname) {
                    errs.push(FieldError::invalid(
                        "spec.externalName",
                        BadValue::Str(cname.to_string()),
                        m,
                    ));
                }
            }
        }
        _ => {}
    }

    let mut names = BTreeSet::new();
    for (i, p) in svc.ports.iter().enumerate() {
        errs.extend(validate_port(p, i, svc.ports.len() > 1, &mut names, f));
    }

    if svc.session_affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !["ClientIP", "None"].contains(&svc.session_affinity.as_str()) {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            BadValue::Str(svc.session_affinity.clone()),
            &["ClientIP", "None"],
        ));
    }
    if svc.session_affinity == "ClientIP"
        && let Some(t) = svc.session_affinity_timeout
        && (t <= 0 || t > 86400)
    {
        errs.push(FieldError::invalid(
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            BadValue::Int(t),
            "must be greater than 0 and less than 86400",
        ));
    }

    if f.alpha_api {
        // Before the dual-stack API: `helper.IsServiceIPSet` and a parseable clusterIP.
        if !svc.cluster_ip.is_empty()
            && svc.cluster_ip != CLUSTER_IP_NONE
            && parse_ip_sloppy(&svc.cluster_ip).is_none()
        {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                BadValue::Str(svc.cluster_ip.clone()),
                "must be empty, 'None', or a valid IP address",
            ));
        }
    } else {
        errs.extend(cluster_ips_related(svc));
    }

    for (i, ip) in svc.external_ips.iter().enumerate() {
        let path = format!("spec.externalIPs[{i}]");
        if parse_ip_sloppy(ip).is_none() {
            errs.push(FieldError::invalid(
                &path,
                BadValue::Str(ip.clone()),
                VALID_IP_MSG,
            ));
        } else {
            errs.extend(non_special_ip_errors(&path, ip));
        }
    }

    if svc.type_.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if ![
        TYPE_CLUSTER_IP,
        TYPE_EXTERNAL_NAME,
        TYPE_LOAD_BALANCER,
        TYPE_NODE_PORT,
    ]
    .contains(&svc.type_.as_str())
    {
        errs.push(FieldError::not_supported(
            "spec.type",
            BadValue::Str(svc.type_.clone()),
            &[
                TYPE_CLUSTER_IP,
                TYPE_EXTERNAL_NAME,
                TYPE_LOAD_BALANCER,
                TYPE_NODE_PORT,
            ],
        ));
    }

    if svc.type_ == TYPE_CLUSTER_IP {
        for (i, p) in svc.ports.iter().enumerate() {
            if p.node_port != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    let mut node_ports = BTreeSet::new();
    for (i, p) in svc.ports.iter().enumerate() {
        if p.node_port == 0 {
            continue;
        }
        if !node_ports.insert((p.protocol.clone(), p.node_port)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                BadValue::Int(p.node_port),
            ));
        }
    }
    let mut ports = BTreeSet::new();
    for (i, p) in svc.ports.iter().enumerate() {
        if !ports.insert((p.protocol.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                BadValue::Raw(service_port_key(f, &p.protocol, p.port)),
            ));
        }
    }

    if !svc.load_balancer_source_ranges.is_empty() {
        let path = "spec.LoadBalancerSourceRanges";
        if svc.type_ != TYPE_LOAD_BALANCER {
            errs.push(FieldError::forbidden(
                path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        if f.per_entry_source_range_validation {
            for (idx, v) in svc.load_balancer_source_ranges.iter().enumerate() {
                let v = v.trim();
                if v.parse::<ipnet::IpNet>().is_err() {
                    errs.push(FieldError::invalid(
                        format!("{path}[{idx}]"),
                        BadValue::Str(v.to_string()),
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    ));
                }
            }
        } else if svc
            .load_balancer_source_ranges
            .iter()
            .any(|v| v.trim().parse::<ipnet::IpNet>().is_err())
        {
            errs.push(FieldError::invalid(
                path,
                BadValue::Str(format!("[{}]", svc.load_balancer_source_ranges.join(" "))),
                "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
            ));
        }
    }

    if svc.allocate_load_balancer_node_ports.is_some() && svc.type_ != TYPE_LOAD_BALANCER {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }

    if f.modern_etp_validation {
        errs.extend(external_traffic_policy(svc, f));
    } else {
        errs.extend(external_traffic_fields_value(svc));
        if !f.rest_checks_traffic_combination {
            errs.extend(external_traffic_fields_combination(svc));
        }
    }

    if let Some(itp) = &svc.internal_traffic_policy
        && !["Cluster", "Local"].contains(&itp.as_str())
    {
        errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            BadValue::Str(itp.clone()),
            &["Cluster", "Local"],
        ));
    }

    // Before 1.19 SCTP sat behind the SCTPSupport gate (beta, on, in 1.19;
    // `ValidateConditionalService`).
    if !f.version.at_least(19) {
        for (i, p) in svc.ports.iter().enumerate() {
            if p.protocol == "SCTP" {
                errs.push(FieldError::not_supported(
                    format!("spec.ports[{i}].protocol"),
                    BadValue::Str("SCTP".to_string()),
                    &["TCP", "UDP"],
                ));
            }
        }
    }
    errs
}

/// `validateServiceExternalTrafficPolicy` (newer revisions).
fn external_traffic_policy(svc: &Svc, f: &Features) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !svc.externally_accessible(f) {
        if !svc.external_traffic_policy.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                BadValue::Str(svc.external_traffic_policy.clone()),
                if f.externally_accessible_external_ips {
                    "may only be set for externally-accessible services"
                } else {
                    "may only be set when `type` is 'NodePort' or 'LoadBalancer'"
                },
            ));
        }
    } else if svc.external_traffic_policy.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !["Cluster", "Local"].contains(&svc.external_traffic_policy.as_str()) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            BadValue::Str(svc.external_traffic_policy.clone()),
            &["Cluster", "Local"],
        ));
    }
    if !svc.needs_health_check() {
        if svc.health_check_node_port != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                BadValue::Int(svc.health_check_node_port),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if svc.health_check_node_port == 0 {
        errs.push(FieldError::required("spec.healthCheckNodePort", ""));
    } else {
        for m in port_num_errors(svc.health_check_node_port) {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                BadValue::Int(svc.health_check_node_port),
                m,
            ));
        }
    }
    errs
}

/// `validateServiceExternalTrafficFieldsValue` (older revisions).
fn external_traffic_fields_value(svc: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let etp = &svc.external_traffic_policy;
    if !etp.is_empty() && etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            BadValue::Str(etp.clone()),
            "ExternalTrafficPolicy must be empty, Cluster or Local",
        ));
    }
    if svc.health_check_node_port < 0 {
        errs.push(FieldError::invalid(
            "spec.healthCheckNodePort",
            BadValue::Int(svc.health_check_node_port),
            "HealthCheckNodePort must be not less than 0",
        ));
    }
    errs
}

/// `ValidateServiceExternalTrafficFieldsCombination` (older revisions).
pub fn external_traffic_fields_combination(svc: &Svc) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if svc.type_ != TYPE_LOAD_BALANCER
        && svc.type_ != TYPE_NODE_PORT
        && !svc.external_traffic_policy.is_empty()
    {
        errs.push(FieldError::invalid(
            "spec.externalTrafficPolicy",
            BadValue::Str(svc.external_traffic_policy.clone()),
            "ExternalTrafficPolicy can only be set on NodePort and LoadBalancer service",
        ));
    }
    if !svc.needs_health_check() && svc.health_check_node_port != 0 {
        errs.push(FieldError::invalid(
            "spec.healthCheckNodePort",
            BadValue::Int(svc.health_check_node_port),
            "HealthCheckNodePort can only be set on LoadBalancer service with ExternalTrafficPolicy=Local",
        ));
    }
    errs
}

/// `ValidateServiceUpdate` for the version in `features`.
pub fn validate_service_update(new: &Svc, old: &Svc, f: &Features) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if f.alpha_api {
        // ClusterIP is immutable for Services that use one and already have it.
        if new.type_ != TYPE_EXTERNAL_NAME
            && old.type_ != TYPE_EXTERNAL_NAME
            && !old.cluster_ip.is_empty()
            && new.cluster_ip != old.cluster_ip
        {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                BadValue::Str(new.cluster_ip.clone()),
                FIELD_IMMUTABLE,
            ));
        }
    } else {
        errs.extend(upgrade_downgrade_cluster_ips(old, new));
        errs.extend(upgrade_downgrade_ip_families(old, new));
        if f.era == super::Era::Modern
            && old.needs_health_check()
            && new.needs_health_check()
            && new.health_check_node_port != old.health_check_node_port
        {
            errs.push(FieldError::forbidden(
                "spec.healthCheckNodePort",
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs.extend(validate_service(new, f));
    errs
}

/// `validateIPFamily` (1.16–1.19, `conditional_validation.go`): `allowed` is the cluster's
/// families, primary first.
pub fn alpha_ip_family(
    new: &Svc,
    old: Option<&Svc>,
    allowed: &[Family],
    f: &Features,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // An unchanged value may stay in storage whatever it is.
    if let Some(old) = old
        && old.ip_family.is_some()
        && old.ip_family == new.ip_family
    {
        return errs;
    }
    if !f.dual_stack {
        // The strategy drops the field when the gate is off, so this never fires for a
        // request; it is kept for completeness.
        if let Some(fam) = &new.ip_family {
            match old {
                Some(old) => {
                    if old.ip_family.as_deref() != Some(fam.as_str()) {
                        errs.push(FieldError::invalid(
                            "spec.ipFamily",
                            BadValue::Str(fam.clone()),
                            FIELD_IMMUTABLE,
                        ));
                    }
                }
                None => errs.push(FieldError::forbidden(
                    "spec.ipFamily",
                    "programmer error, must be cleared when the dual-stack feature gate is off",
                )),
            }
        }
        return errs;
    }
    let Some(desired) = &new.ip_family else {
        errs.push(FieldError::required(
            "spec.ipFamily",
            "programmer error, must be set or defaulted by other fields",
        ));
        return errs;
    };
    if let Some(old) = old
        && old.ip_family.is_some()
        && new.type_ != TYPE_EXTERNAL_NAME
        && old.ip_family.as_ref() != Some(desired)
    {
        errs.push(FieldError::invalid(
            "spec.ipFamily",
            BadValue::Str(desired.clone()),
            FIELD_IMMUTABLE,
        ));
    }
    if allowed.iter().any(|a| a.as_str() == desired) {
        if let Some(ip) = parse_ip_sloppy(&new.cluster_ip) {
            let v6 = ip.is_ipv6();
            if v6 && desired != "IPv6" {
                errs.push(FieldError::invalid(
                    "spec.ipFamily",
                    BadValue::Str(desired.clone()),
                    "does not match IPv6 cluster IP",
                ));
            } else if !v6 && desired != "IPv4" {
                errs.push(FieldError::invalid(
                    "spec.ipFamily",
                    BadValue::Str(desired.clone()),
                    "does not match IPv4 cluster IP",
                ));
            }
        }
    } else {
        let joined: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        errs.push(FieldError::invalid(
            "spec.ipFamily",
            BadValue::Str(desired.clone()),
            format!(
                "only the following families are allowed: {}",
                joined.join(", ")
            ),
        ));
    }
    errs
}
