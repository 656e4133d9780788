//! Defaulting of `ipFamilyPolicy` and `ipFamilies` against the cluster's families, and the
//! request-rewriting helpers around it.
//!
//! Two generations are modelled:
//! - [`init_ip_family_fields`] — `pkg/registry/core/service/storage/alloc.go
//!   initIPFamilyFields` (1.23 on), with the messages users see today;
//! - [`legacy_try_default`] — `pkg/registry/core/service/storage/rest.go
//!   tryDefaultValidateServiceClusterIPFields` (1.20–1.22), with its own messages and its
//!   own quirks (a missing policy is defaulted only after the SingleStack checks, so a
//!   Service with two cluster IPs and no policy was accepted as SingleStack).

use knetsim_ipam::Family;

use super::field::{ApiError, BadValue, FieldError};
use super::ipstr::family_of;
use super::spec::*;
use super::validation::{cluster_ips_related, policy_value};

/// The cluster's Service IP families, primary first (`--service-cluster-ip-range`).
#[derive(Clone, Debug)]
pub struct ClusterFamilies {
    pub families: Vec<Family>,
}

impl ClusterFamilies {
    pub fn primary(&self) -> Family {
        self.families[0]
    }

    pub fn has(&self, f: Family) -> bool {
        self.families.contains(&f)
    }

    pub fn has_str(&self, f: &str) -> bool {
        Family::parse(f).map(|f| self.has(f)).unwrap_or(false)
    }

    pub fn is_dual(&self) -> bool {
        self.families.len() >= 2
    }
}

fn other(f: &str) -> String {
    if f == "IPv4" { "IPv6" } else { "IPv4" }.to_string()
}

fn strs(v: &[String]) -> BadValue {
    if v.is_empty() {
        BadValue::Strings(None)
    } else {
        BadValue::Strings(Some(v.to_vec()))
    }
}

/// `normalizeClusterIPs` (`storage.go`; `strategy.go NormalizeClusterIPs` before 1.23): keeps
/// the singular and plural cluster IP fields in step for clients that only set one.
pub fn normalize_cluster_ips(new: &mut Svc, old: Option<&Svc>) {
    let Some(old) = old else {
        // Create: a client that set only the singular field gets the plural one.
        if !new.cluster_ip.is_empty() && new.cluster_ips.is_empty() {
            new.cluster_ips = vec![new.cluster_ip.clone()];
        }
        return;
    };
    // An old client patching another field sent no clusterIPs.
    if !old.cluster_ips.is_empty() && new.cluster_ips.is_empty() && old.cluster_ip == new.cluster_ip
    {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if old.cluster_ip != new.cluster_ip {
        if !old.cluster_ip.is_empty() && new.cluster_ip.is_empty() {
            // A client clearing the singular field: clear the plural on its behalf when it
            // was left as it was.
            if old.cluster_ips == new.cluster_ips {
                new.cluster_ips.clear();
            }
        } else if old.cluster_ips == new.cluster_ips {
            new.cluster_ips = vec![new.cluster_ip.clone()];
        }
    }
}

/// `patchAllocatedValues` (1.22 in the strategy, 1.23+ in `storage.go beginUpdate`): values the
/// server allocated survive an update that omits them.
pub fn patch_allocated_values(new: &mut Svc, old: &Svc) {
    if old.needs_cluster_ip() && new.needs_cluster_ip() {
        if new.cluster_ip.is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_ips.is_empty() && !old.cluster_ips.is_empty() {
            new.cluster_ips = old.cluster_ips.clone();
        }
    }
    if old.needs_node_port() && new.needs_node_port() {
        // Ports used by both old and new cannot be patched in elsewhere.
        let old_used: Vec<i64> = old.node_ports();
        let new_used: Vec<i64> = new.node_ports();
        let used: Vec<i64> = old_used
            .iter()
            .copied()
            .filter(|p| new_used.contains(p))
            .collect();
        // By port name: the user may have changed other properties of the port.
        let by_name: std::collections::BTreeMap<&str, i64> = old
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.node_port))
            .collect();
        for p in &mut new.ports {
            if p.node_port == 0 {
                let old_val = by_name.get(p.name.as_str()).copied().unwrap_or(0);
                if !used.contains(&old_val) {
                    p.node_port = old_val;
                }
            }
        }
    }
    if old.needs_health_check() && new.needs_health_check() && new.health_check_node_port == 0 {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// `dropTypeDependentFields` (strategy, 1.20+): on a type change, fields that no longer apply
/// and that the user left as they were are wiped (and their allocations released).
pub fn drop_type_dependent_fields(new: &mut Svc, old: &Svc) {
    if old.needs_cluster_ip() && !new.needs_cluster_ip() {
        if old.cluster_ip == new.cluster_ip && old.cluster_ips == new.cluster_ips {
            new.cluster_ip.clear();
            new.cluster_ips.clear();
        }
        if old.ip_families == new.ip_families {
            new.ip_families.clear();
        }
        if old.ip_family_policy == new.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if old.needs_node_port() && !new.needs_node_port() {
        // Users may remove or change ports, as long as they add no new NodePort values.
        let old_ports = old.node_ports();
        if new.node_ports().iter().all(|p| old_ports.contains(p)) {
            for p in &mut new.ports {
                p.node_port = 0;
            }
        }
    }
    if old.needs_health_check()
        && !new.needs_health_check()
        && old.health_check_node_port == new.health_check_node_port
    {
        new.health_check_node_port = 0;
    }
    if old.type_ == TYPE_LOAD_BALANCER
        && new.type_ != TYPE_LOAD_BALANCER
        && new.allocate_load_balancer_node_ports.is_some()
        && new.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports
    {
        new.allocate_load_balancer_node_ports = None;
    }
    let needs_etp = |s: &Svc| s.type_ == TYPE_NODE_PORT || s.type_ == TYPE_LOAD_BALANCER;
    if needs_etp(old)
        && !needs_etp(new)
        && old.external_traffic_policy == new.external_traffic_policy
    {
        new.external_traffic_policy.clear();
    }
    if new.type_ != TYPE_LOAD_BALANCER {
        new.load_balancer_ingress.clear();
    }
}

/// `trimFieldsForDualStackDowngrade` (strategy, 1.20–1.22): switching a dual-stack Service to
/// SingleStack drops the secondary IP and family.
pub fn trim_fields_for_dual_stack_downgrade(new: &mut Svc, old: &Svc) {
    let old_dual = matches!(
        old.ip_family_policy.as_deref(),
        Some(REQUIRE_DUAL_STACK) | Some(PREFER_DUAL_STACK)
    );
    if old_dual && new.ip_family_policy.as_deref() == Some(SINGLE_STACK) {
        new.cluster_ips.truncate(1);
        new.ip_families.truncate(1);
    }
}

/// `isMatchingPreferDualStackClusterIPFields`: an update that leaves a PreferDualStack Service's
/// type, policy, IPs and families alone must not upgrade or downgrade it, even if the cluster
/// changed its stack-ness since it was created.
pub fn is_matching_prefer_dual_stack(new: &Svc, old: Option<&Svc>) -> bool {
    let Some(old) = old else {
        return false;
    };
    let Some(policy) = &new.ip_family_policy else {
        return false;
    };
    if old.type_ != new.type_ {
        return false;
    }
    if ![TYPE_CLUSTER_IP, TYPE_NODE_PORT, TYPE_LOAD_BALANCER].contains(&new.type_.as_str()) {
        return false;
    }
    if policy != PREFER_DUAL_STACK {
        return false;
    }
    if old
        .ip_family_policy
        .as_deref()
        .is_some_and(|p| p != PREFER_DUAL_STACK)
    {
        return false;
    }
    old.cluster_ips == new.cluster_ips && old.ip_families == new.ip_families
}

/// `initIPFamilyFields` (1.23+): defaults `ipFamilyPolicy` and `ipFamilies` and checks them
/// against the cluster. `old` is the stored object on update.
pub fn init_ip_family_fields(
    svc: &mut Svc,
    old: Option<&Svc>,
    cluster: &ClusterFamilies,
) -> Result<(), ApiError> {
    if svc.type_ == TYPE_EXTERNAL_NAME {
        return Ok(());
    }
    if is_matching_prefer_dual_stack(svc, old) {
        return Ok(());
    }

    // A missing policy is inferred: on update the old one; on create SingleStack, except that
    // headless Services without a selector default to RequireDualStack.
    if svc.ip_family_policy.is_none() {
        if let Some(p) = old.and_then(|o| o.ip_family_policy.clone()) {
            svc.ip_family_policy = Some(p);
        } else if svc.cluster_ip == CLUSTER_IP_NONE && svc.selector.is_empty() {
            svc.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string());
        } else {
            svc.ip_family_policy = Some(SINGLE_STACK.to_string());
        }
    }

    // Loose pre-validation, so that the rest need not consider corner cases.
    let errs = cluster_ips_related(svc);
    if !errs.is_empty() {
        return Err(ApiError::invalid(&svc.name, &errs));
    }

    let mut el = Vec::new();
    if let Some(old) = old {
        if svc.policy() == SINGLE_STACK {
            // Unchanged fields plus SingleStack are a clear request to downgrade; the primary
            // is immutable, so keeping it is safe.
            if old.cluster_ips == svc.cluster_ips && svc.cluster_ips.len() > 1 {
                svc.cluster_ips.truncate(1);
            }
            if old.ip_families == svc.ip_families && svc.ip_families.len() > 1 {
                svc.ip_families.truncate(1);
            }
        } else {
            if !svc.cluster_ips.is_empty() && svc.cluster_ips.len() < old.cluster_ips.len() {
                el.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(svc),
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !svc.ip_families.is_empty() && svc.ip_families.len() < old.ip_families.len() {
                el.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(svc),
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }

    if svc.policy() == SINGLE_STACK {
        if svc.cluster_ips.len() == 2 {
            el.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(svc),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if svc.ip_families.len() == 2 {
            el.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(svc),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }

    // Infer ipFamilies[] from clusterIPs[] (a better error than the family check below,
    // because it names the user's IP).
    for i in 0..svc.cluster_ips.len() {
        if svc.cluster_ips[i] == CLUSTER_IP_NONE {
            break;
        }
        if i >= svc.ip_families.len() {
            match family_of(&svc.cluster_ips[i]) {
                Some(fam) if cluster.has(fam) => svc.ip_families.push(fam.as_str().to_string()),
                fam => {
                    let name = fam.map(|f| f.as_str()).unwrap_or("unknown");
                    el.push(FieldError::invalid(
                        format!("spec.clusterIPs[{i}]"),
                        strs(&svc.cluster_ips),
                        format!("{name} is not configured on this cluster"),
                    ));
                }
            }
        }
    }

    if !el.is_empty() {
        return Err(ApiError::invalid(&svc.name, &el));
    }

    // Headless + selectorless: allowed even what would otherwise be errors.
    if svc.cluster_ip == CLUSTER_IP_NONE && svc.selector.is_empty() {
        if svc.ip_families.is_empty() {
            svc.ip_families = vec![cluster.primary().as_str().to_string()];
        }
        if svc.ip_families.len() < 2 && svc.policy() != SINGLE_STACK {
            let alt = other(&svc.ip_families[0]);
            svc.ip_families.push(alt);
        }
        return Ok(());
    }

    if svc.policy() == REQUIRE_DUAL_STACK && !cluster.is_dual() {
        el.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy_value(svc),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, fam) in svc.ip_families.iter().enumerate() {
        if !cluster.has_str(fam) {
            el.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                BadValue::Str(fam.clone()),
                "not configured on this cluster",
            ));
        }
    }
    if !el.is_empty() {
        return Err(ApiError::invalid(&svc.name, &el));
    }

    if svc.ip_families.is_empty() {
        svc.ip_families = vec![cluster.primary().as_str().to_string()];
    }
    if svc.policy() != SINGLE_STACK && svc.ip_families.len() == 1 && cluster.families.len() == 2 {
        let alt = other(&svc.ip_families[0]);
        svc.ip_families.push(alt);
    }
    Ok(())
}

/// `tryDefaultValidateServiceClusterIPFields` (1.20–1.22). `prefer_sticky` enables the
/// PreferDualStack no-auto-upgrade rule on updates.
pub fn legacy_try_default(
    svc: &mut Svc,
    old: Option<&Svc>,
    cluster: &ClusterFamilies,
    prefer_sticky: bool,
) -> Result<(), ApiError> {
    if svc.type_ == TYPE_EXTERNAL_NAME {
        return Ok(());
    }
    if prefer_sticky && is_matching_prefer_dual_stack(svc, old) {
        return Ok(());
    }
    if svc.policy() == SINGLE_STACK {
        let mut el = Vec::new();
        if svc.cluster_ips.len() == 2 {
            el.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(svc),
                "must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified",
            ));
        }
        if svc.ip_families.len() == 2 {
            el.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(svc),
                "must be RequireDualStack or PreferDualStack when multiple 'ipFamilies' are specified",
            ));
        }
        if !el.is_empty() {
            return Err(ApiError::invalid(&svc.name, &el));
        }
    }

    // Default families from cluster IPs.
    for i in 0..svc.cluster_ips.len() {
        if svc.cluster_ips[i] == CLUSTER_IP_NONE {
            break;
        }
        if i >= svc.ip_families.len() {
            let v6 = super::ipstr::is_ipv6_string(&svc.cluster_ips[i]);
            let fam = if v6 { Family::IPv6 } else { Family::IPv4 };
            if !cluster.has(fam) {
                let el = vec![FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    strs(&svc.cluster_ips),
                    format!("may not use {fam} on a cluster which is not configured for it"),
                )];
                return Err(ApiError::invalid(&svc.name, &el));
            }
            svc.ip_families.push(fam.as_str().to_string());
        }
    }

    // Headless + selectorless.
    if svc.cluster_ips.first().map(String::as_str) == Some(CLUSTER_IP_NONE)
        && svc.selector.is_empty()
    {
        if svc.ip_family_policy.is_none() {
            svc.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string());
        }
        if svc.ip_families.is_empty() {
            svc.ip_families = vec![cluster.primary().as_str().to_string()];
        }
        if svc.ip_families.len() < 2
            && (svc.policy() == REQUIRE_DUAL_STACK
                || (svc.policy() == PREFER_DUAL_STACK && cluster.families.len() == 2))
        {
            let alt = other(&svc.ip_families[0]);
            svc.ip_families.push(alt);
        }
        return Ok(());
    }

    let mut el = Vec::new();
    if svc.policy() == REQUIRE_DUAL_STACK && !cluster.is_dual() {
        el.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy_value(svc),
            "Cluster is not configured for dual stack services",
        ));
    }
    for (i, fam) in svc.ip_families.iter().enumerate() {
        if !cluster.has_str(fam) {
            el.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                strs(&svc.cluster_ips),
                format!("ipfamily {fam} is not configured on cluster"),
            ));
        }
    }
    if !el.is_empty() {
        return Err(ApiError::invalid(&svc.name, &el));
    }
    if svc.ip_family_policy.is_none() {
        svc.ip_family_policy = Some(SINGLE_STACK.to_string());
    }
    if svc.ip_families.is_empty() {
        svc.ip_families = vec![cluster.primary().as_str().to_string()];
    }
    if svc.policy() != SINGLE_STACK && svc.ip_families.len() == 1 && cluster.families.len() == 2 {
        let alt = other(&svc.ip_families[0]);
        svc.ip_families.push(alt);
    }
    Ok(())
}

/// `defaultOnReadService` (`storage.go`): Services written before `clusterIPs`/`ipFamilies`
/// existed are presented with them filled in.
pub fn default_on_read(svc: &mut Svc, cluster: &ClusterFamilies) {
    // The alpha field is gone from the API.
    svc.ip_family = None;
    normalize_cluster_ips(svc, None);
    if !svc.needs_cluster_ip() || !svc.ip_families.is_empty() {
        return;
    }
    let primary = cluster.primary().as_str().to_string();
    if svc.cluster_ip == CLUSTER_IP_NONE {
        if svc.selector.is_empty() {
            svc.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string());
            svc.ip_families = vec![primary.clone(), other(&primary)];
        } else {
            svc.ip_family_policy = Some(SINGLE_STACK.to_string());
            svc.ip_families = vec![primary];
        }
    } else {
        svc.ip_families = svc
            .cluster_ips
            .iter()
            .map(|ip| {
                if super::ipstr::is_ipv6_string(ip) {
                    "IPv6".to_string()
                } else {
                    "IPv4".to_string()
                }
            })
            .collect();
        match svc.ip_families.len() {
            1 => svc.ip_family_policy = Some(SINGLE_STACK.to_string()),
            2 => svc.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string()),
            _ => {}
        }
    }
}
