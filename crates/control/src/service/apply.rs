//! `kubectl apply`'s three-way merge, for the fields of a Service.
//!
//! kubectl sends a strategic merge patch computed from three objects: the last-applied
//! manifest (the `kubectl.kubernetes.io/last-applied-configuration` annotation), the new
//! manifest and the live object. Per field, the outcome is:
//! - the new manifest sets it: the new value;
//! - the new manifest omits it but the last-applied one set it: it is deleted (sent as `null`);
//! - neither sets it: the live value stays, which is how server-set values (`clusterIP(s)`,
//!   `ipFamilies`, `ipFamilyPolicy`, `nodePort`s, defaulted fields) survive re-applies.
//!
//! Maps (`selector`, labels, annotations) merge per key the same way. `spec.ports` is a list
//! merged by its patch merge key, `port` (`k8s.io/api/core/v1 ServiceSpec.Ports`,
//! `patchMergeKey:"port"`): each new port merges field by field with the live port of the same
//! number; live ports missing from the new manifest are dropped only if the last-applied
//! manifest had them. Other lists (`clusterIPs`, `ipFamilies`, `externalIPs`, ...) have no
//! merge key and are replaced whole.

use std::collections::BTreeMap;

use knetsim_model::objects::{self, ServicePort, TargetPort};
use knetsim_model::{Span, Spanned};

use crate::state;

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(v, Span::default())
}

/// One optional field: new value, else deleted if last-applied had it, else the live value.
fn three_way<T: Clone>(new: &Option<T>, last_had: bool, live: Option<T>) -> Option<T> {
    match new {
        Some(v) => Some(v.clone()),
        None if last_had => None,
        None => live,
    }
}

fn merge_map(
    new: Option<&BTreeMap<String, String>>,
    last: Option<&BTreeMap<String, String>>,
    live: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    match new {
        None => {
            if last.is_some_and(|l| !l.is_empty()) {
                None
            } else {
                live.cloned()
            }
        }
        Some(new) => {
            let mut out = live.cloned().unwrap_or_default();
            if let Some(last) = last {
                for k in last.keys() {
                    if !new.contains_key(k) {
                        out.remove(k);
                    }
                }
            }
            for (k, v) in new {
                out.insert(k.clone(), v.clone());
            }
            Some(out)
        }
    }
}

fn live_port(p: &state::ServicePort) -> ServicePort {
    ServicePort {
        name: p.name.clone(),
        protocol: Some(p.protocol.clone()),
        port: p.port as i64,
        target_port: Some(match &p.target_port {
            state::TargetPort::Number(n) => TargetPort::Number(*n as i64),
            state::TargetPort::Name(n) => TargetPort::Name(n.clone()),
        }),
        node_port: p.node_port.map(i64::from),
        span: Span::default(),
    }
}

fn merge_ports(
    new: &[ServicePort],
    last: Option<&[ServicePort]>,
    live: &[state::ServicePort],
) -> Vec<ServicePort> {
    let last_ports = last.unwrap_or(&[]);
    let mut out = Vec::new();
    for np in new {
        let lp = last_ports.iter().find(|p| p.port == np.port);
        match live
            .iter()
            .find(|p| p.port as i64 == np.port)
            .map(live_port)
        {
            None => out.push(np.clone()),
            Some(live) => out.push(ServicePort {
                name: three_way(&np.name, lp.is_some_and(|l| l.name.is_some()), live.name),
                protocol: three_way(
                    &np.protocol,
                    lp.is_some_and(|l| l.protocol.is_some()),
                    live.protocol,
                ),
                port: np.port,
                target_port: three_way(
                    &np.target_port,
                    lp.is_some_and(|l| l.target_port.is_some()),
                    live.target_port,
                ),
                node_port: three_way(
                    &np.node_port,
                    lp.is_some_and(|l| l.node_port.is_some()),
                    live.node_port,
                ),
                span: np.span,
            }),
        }
    }
    // Live ports the new manifest does not name stay unless kubectl applied them before.
    for lp in live {
        let port = lp.port as i64;
        if new.iter().any(|p| p.port == port) {
            continue;
        }
        if last_ports.iter().any(|p| p.port == port) {
            continue;
        }
        out.push(live_port(lp));
    }
    out
}

/// The object kubectl apply makes the API server see when it patches `live` with the
/// difference between `last_applied` and `new`.
///
/// `healthCheckNodePort` is not part of the manifest model, so the live value always stays;
/// [`super::ServiceApi::apply_update`] carries it over.
pub fn apply_request(
    live: &state::Service,
    last_applied: Option<&objects::Service>,
    new: &objects::Service,
) -> objects::Service {
    let ls = &live.spec;
    let last = last_applied.map(|l| &l.spec);
    let had = |f: fn(&objects::ServiceSpec) -> bool| last.is_some_and(f);
    let n = &new.spec;

    let spec = objects::ServiceSpec {
        type_: three_way(
            &n.type_,
            had(|s| s.type_.is_some()),
            Some(sp(ls.type_.clone())),
        ),
        selector: if n.selector.is_none() && last.is_some_and(|l| l.selector.is_some()) {
            None
        } else {
            merge_map(
                n.selector.as_ref(),
                last.and_then(|l| l.selector.as_ref()),
                ls.selector.as_ref(),
            )
        },
        ports: if n.ports.is_empty() && last.is_some_and(|l| !l.ports.is_empty()) {
            Vec::new()
        } else {
            merge_ports(&n.ports, last.map(|l| l.ports.as_slice()), &ls.ports)
        },
        cluster_ip: three_way(
            &n.cluster_ip,
            had(|s| s.cluster_ip.is_some()),
            ls.cluster_ip.clone().map(sp),
        ),
        cluster_ips: three_way(
            &n.cluster_ips,
            had(|s| s.cluster_ips.is_some()),
            (!ls.cluster_ips.is_empty()).then(|| ls.cluster_ips.iter().cloned().map(sp).collect()),
        ),
        ip_families: three_way(
            &n.ip_families,
            had(|s| s.ip_families.is_some()),
            (!ls.ip_families.is_empty()).then(|| {
                ls.ip_families
                    .iter()
                    .map(|f| sp(f.as_str().to_string()))
                    .collect()
            }),
        ),
        ip_family_policy: three_way(
            &n.ip_family_policy,
            had(|s| s.ip_family_policy.is_some()),
            ls.ip_family_policy.clone().map(sp),
        ),
        external_ips: three_way(
            &(!n.external_ips.is_empty()).then(|| n.external_ips.clone()),
            had(|s| !s.external_ips.is_empty()),
            Some(
                ls.external_ips
                    .iter()
                    .map(|ip| sp(ip.to_string()))
                    .collect(),
            ),
        )
        .unwrap_or_default(),
        load_balancer_ip: three_way(
            &n.load_balancer_ip,
            had(|s| s.load_balancer_ip.is_some()),
            ls.load_balancer_ip.map(|ip| sp(ip.to_string())),
        ),
        load_balancer_source_ranges: three_way(
            &(!n.load_balancer_source_ranges.is_empty())
                .then(|| n.load_balancer_source_ranges.clone()),
            had(|s| !s.load_balancer_source_ranges.is_empty()),
            Some(
                ls.load_balancer_source_ranges
                    .iter()
                    .map(|c| sp(c.to_string()))
                    .collect(),
            ),
        )
        .unwrap_or_default(),
        external_traffic_policy: three_way(
            &n.external_traffic_policy,
            had(|s| s.external_traffic_policy.is_some()),
            ls.external_traffic_policy.clone().map(sp),
        ),
        internal_traffic_policy: three_way(
            &n.internal_traffic_policy,
            had(|s| s.internal_traffic_policy.is_some()),
            ls.internal_traffic_policy.clone().map(sp),
        ),
        session_affinity: three_way(
            &n.session_affinity,
            had(|s| s.session_affinity.is_some()),
            ls.session_affinity.clone().map(sp),
        ),
        session_affinity_timeout: three_way(
            &n.session_affinity_timeout,
            had(|s| s.session_affinity_timeout.is_some()),
            ls.session_affinity_config
                .as_ref()
                .map(|c| c.client_ip.timeout_seconds as i64),
        ),
        external_name: three_way(
            &n.external_name,
            had(|s| s.external_name.is_some()),
            ls.external_name.clone().map(sp),
        ),
        allocate_load_balancer_node_ports: three_way(
            &n.allocate_load_balancer_node_ports,
            had(|s| s.allocate_load_balancer_node_ports.is_some()),
            ls.allocate_load_balancer_node_ports,
        ),
        load_balancer_ingress: Vec::new(),
    };

    let meta = objects::ObjectMeta {
        name: new.meta.name.clone(),
        namespace: new.meta.namespace.clone(),
        labels: merge_map(
            Some(&new.meta.labels),
            last_applied.map(|l| &l.meta.labels),
            Some(&live.metadata.labels),
        )
        .unwrap_or_default(),
        annotations: merge_map(
            Some(&new.meta.annotations),
            last_applied.map(|l| &l.meta.annotations),
            Some(&live.metadata.annotations),
        )
        .unwrap_or_default(),
    };

    objects::Service {
        meta,
        spec,
        legacy_ip_family: three_way(
            &new.legacy_ip_family,
            last_applied.is_some_and(|l| l.legacy_ip_family.is_some()),
            ls.ip_family.map(|f| sp(f.as_str().to_string())),
        ),
        span: new.span,
    }
}
