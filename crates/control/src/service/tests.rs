//! Tests of the Service REST logic. The tables named after upstream tests are ports of
//! `pkg/registry/core/service/storage/storage_test.go` (newest revision): each row keeps the
//! upstream case name and its expected outcome; error rows additionally pin the exact message
//! where the behaviour list of this module asks for one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::objects::{self, ServicePort, TargetPort};
use knetsim_model::{KubeVersion, Span, Spanned};

use super::spec::Svc;
use super::*;
use crate::state;

// -------------------------------------------------------------------------------------------
// Helpers

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(v, Span::default())
}

fn cidrs(cluster: &str) -> Vec<IpNet> {
    let v4: IpNet = "10.0.0.0/16".parse().unwrap();
    let v6: IpNet = "2000::/108".parse().unwrap();
    match cluster {
        "singlestack:v4" => vec![v4],
        "singlestack:v6" => vec![v6],
        "dualstack:v4v6" => vec![v4, v6],
        "dualstack:v6v4" => vec![v6, v4],
        other => panic!("unknown cluster {other}"),
    }
}

fn api_with(version: u16, service_cidrs: Vec<IpNet>, dual_stack: bool) -> ServiceApi {
    ServiceApi::new(ServiceApiConfig {
        version: KubeVersion::new(version),
        service_cidrs,
        dual_stack,
        allocator_kind: AllocatorKind::Bitmap,
        static_subrange: true,
        node_port_range: (30000, 32767),
        node_port_static_subrange: version >= 28,
        seed: 7,
    })
    .unwrap()
}

/// A kube-apiserver of the newest modelled version over one of the upstream test clusters.
fn api(cluster: &str) -> ServiceApi {
    api_with(KubeVersion::NEWEST.minor, cidrs(cluster), true)
}

/// `svctest.MakeService`: ClusterIP, selector `{k: v}`, one TCP port 93 -> 76.
fn make(name: &str) -> objects::Service {
    objects::Service {
        meta: objects::ObjectMeta {
            name: sp(name.to_string()),
            namespace: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        },
        spec: objects::ServiceSpec {
            selector: Some([("k".to_string(), "v".to_string())].into_iter().collect()),
            ports: vec![port(None, 93, 76, None)],
            ..Default::default()
        },
        legacy_ip_family: None,
        span: Span::default(),
    }
}

fn port(name: Option<&str>, port: i64, target: i64, protocol: Option<&str>) -> ServicePort {
    ServicePort {
        name: name.map(str::to_string),
        protocol: protocol.map(str::to_string),
        port,
        target_port: Some(TargetPort::Number(target)),
        node_port: None,
        span: Span::default(),
    }
}

trait Tweak {
    fn cluster_ips(self, ips: &[&str]) -> Self;
    fn families(self, fams: &[&str]) -> Self;
    fn policy(self, p: &str) -> Self;
    fn headless(self) -> Self;
    fn no_selector(self) -> Self;
    fn type_(self, t: &str) -> Self;
    fn node_ports(self, nps: &[i64]) -> Self;
    fn ports(self, ports: Vec<ServicePort>) -> Self;
    fn etp(self, p: &str) -> Self;
}

impl Tweak for objects::Service {
    /// `svctest.SetClusterIPs`: sets `clusterIP` to the first and `clusterIPs` to all.
    fn cluster_ips(mut self, ips: &[&str]) -> Self {
        self.spec.cluster_ip = ips.first().map(|s| sp(s.to_string()));
        self.spec.cluster_ips = Some(ips.iter().map(|s| sp(s.to_string())).collect());
        self
    }
    fn families(mut self, fams: &[&str]) -> Self {
        self.spec.ip_families = Some(fams.iter().map(|s| sp(s.to_string())).collect());
        self
    }
    fn policy(mut self, p: &str) -> Self {
        self.spec.ip_family_policy = Some(sp(p.to_string()));
        self
    }
    fn headless(self) -> Self {
        self.cluster_ips(&["None"])
    }
    fn no_selector(mut self) -> Self {
        self.spec.selector = None;
        self
    }
    fn type_(mut self, t: &str) -> Self {
        self.spec.type_ = Some(sp(t.to_string()));
        if t == "ExternalName" {
            self.spec.external_name = Some(sp("foo.example.com".to_string()));
        }
        self
    }
    fn node_ports(mut self, nps: &[i64]) -> Self {
        for (p, np) in self.spec.ports.iter_mut().zip(nps) {
            p.node_port = (*np != 0).then_some(*np);
        }
        self
    }
    fn ports(mut self, ports: Vec<ServicePort>) -> Self {
        self.spec.ports = ports;
        self
    }
    fn etp(mut self, p: &str) -> Self {
        self.spec.external_traffic_policy = Some(sp(p.to_string()));
        self
    }
}

fn fams(s: &state::Service) -> Vec<&'static str> {
    s.spec.ip_families.iter().map(|f| f.as_str()).collect()
}

/// `proveClusterIPsAllocated`: one IP per family, of that family, allocated, and
/// `clusterIP == clusterIPs[0]`.
fn prove_cluster_ips_allocated(api: &ServiceApi, s: &state::Service) {
    assert_eq!(s.spec.cluster_ips.len(), s.spec.ip_families.len(), "{s:?}");
    assert_eq!(
        s.spec.cluster_ip.as_deref(),
        s.spec.cluster_ips.first().map(String::as_str)
    );
    for (ip, fam) in s.spec.cluster_ips.iter().zip(&s.spec.ip_families) {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(Family::of_ip(&ip), *fam);
        assert!(
            api.allocator(*fam).unwrap().is_allocated(ip),
            "{ip} not allocated"
        );
    }
}

fn prove_headless(s: &state::Service) {
    assert_eq!(s.spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(s.spec.cluster_ips, vec!["None".to_string()]);
}

fn used(api: &ServiceApi, f: Family) -> u128 {
    api.allocator(f).unwrap().used()
}

/// Builds the request a TestCreateInitIPFields case name describes.
fn case_service(name: &str) -> objects::Service {
    let mut parts = name.split('_');
    let head = parts.next().unwrap();
    let mut svc = make("foo");
    match head {
        "Headless" => svc = svc.headless(),
        "HeadlessSelectorless" => svc = svc.headless().no_selector(),
        h => {
            let ips: &[&str] = match h.strip_prefix("ClusterIPs:").unwrap() {
                "unset" => &[],
                "v4" => &["10.0.0.1"],
                "v6" => &["2000::1"],
                "v4v6" => &["10.0.0.1", "2000::1"],
                "v6v4" => &["2000::1", "10.0.0.1"],
                other => panic!("{other}"),
            };
            if !ips.is_empty() {
                svc = svc.cluster_ips(ips);
            }
        }
    }
    let policy = parts.next().unwrap().strip_prefix("Policy:").unwrap();
    if policy != "unset" {
        svc = svc.policy(policy);
    }
    let families: &[&str] = match parts.next().unwrap().strip_prefix("Families:").unwrap() {
        "unset" => &[],
        "v4" => &["IPv4"],
        "v6" => &["IPv6"],
        "v4v6" => &["IPv4", "IPv6"],
        "v6v4" => &["IPv6", "IPv4"],
        other => panic!("{other}"),
    };
    if !families.is_empty() {
        svc = svc.families(families);
    }
    svc
}

// -------------------------------------------------------------------------------------------
// TestCreateInitIPFields

/// `(cluster, case, expected)`: `expected` is `"error"` or `"<policy> <families>"`.
#[rustfmt::skip]
const CREATE_INIT_IP_FIELDS: &[(&str, &str, &str)] = &[
    // singlestack:v4 ClusterIPs:unset
    ("singlestack:v4", "ClusterIPs:unset_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:unset_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:unset_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:SingleStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6v4", "error"),
    // singlestack:v4 ClusterIPs:v4
    ("singlestack:v4", "ClusterIPs:v4_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:unset_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:unset_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:SingleStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:PreferDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:v6v4", "error"),
    // singlestack:v4 ClusterIPs:v4v6 and v6v4: always an error.
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:unset_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:unset_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:unset_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:SingleStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:SingleStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:SingleStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:unset_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:unset_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:unset_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:SingleStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:SingleStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:SingleStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v6v4", "error"),
    // singlestack:v4 Headless
    ("singlestack:v4", "Headless_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "Headless_Policy:unset_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "Headless_Policy:unset_Families:v6", "error"),
    ("singlestack:v4", "Headless_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v4", "Headless_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v4", "Headless_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "Headless_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "Headless_Policy:SingleStack_Families:v6", "error"),
    ("singlestack:v4", "Headless_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "Headless_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "Headless_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4"),
    ("singlestack:v4", "Headless_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4"),
    ("singlestack:v4", "Headless_Policy:PreferDualStack_Families:v6", "error"),
    ("singlestack:v4", "Headless_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "Headless_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v4", "Headless_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v4", "Headless_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v4", "Headless_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v4", "Headless_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v4", "Headless_Policy:RequireDualStack_Families:v6v4", "error"),
    // singlestack:v4 HeadlessSelectorless: dual even on a single-stack cluster.
    ("singlestack:v4", "HeadlessSelectorless_Policy:unset_Families:unset", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:unset_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:unset_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:unset_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:unset_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:SingleStack_Families:v6", "SingleStack IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v6", "PreferDualStack IPv6,IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v4v6", "PreferDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("singlestack:v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // singlestack:v6 (the rows read from upstream)
    ("singlestack:v6", "ClusterIPs:unset_Policy:unset_Families:unset", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:unset_Families:v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:unset_Families:v6", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:SingleStack_Families:unset", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:SingleStack_Families:v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:SingleStack_Families:v6", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:SingleStack_Families:v4v6", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:SingleStack_Families:v6v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v6", "PreferDualStack IPv6"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v4v6", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v6v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:unset", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4v6", "error"),
    ("singlestack:v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6v4", "error"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:unset_Families:unset", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:unset_Families:v4", "error"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:unset_Families:v6", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:unset_Families:v4v6", "error"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:unset_Families:v6v4", "error"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:SingleStack_Families:unset", "SingleStack IPv6"),
    ("singlestack:v6", "ClusterIPs:v6_Policy:SingleStack_Families:v4", "error"),
    // dualstack:v4v6 ClusterIPs:unset (the rows read from upstream)
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v4v6", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:unset_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // dualstack:v4v6 ClusterIPs:v4
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:unset_Families:v4", "SingleStack IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:unset_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:unset_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:unset_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:SingleStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:SingleStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:SingleStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:PreferDualStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:PreferDualStack_Families:v4v6", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:PreferDualStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:RequireDualStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4_Policy:RequireDualStack_Families:v6v4", "error"),
    // dualstack:v4v6 ClusterIPs:v6
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:unset_Families:unset", "SingleStack IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:unset_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:unset_Families:v6", "SingleStack IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:unset_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:unset_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:SingleStack_Families:unset", "SingleStack IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:SingleStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:SingleStack_Families:v6", "SingleStack IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:SingleStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:SingleStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:PreferDualStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:PreferDualStack_Families:v6", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:PreferDualStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:RequireDualStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:RequireDualStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // dualstack:v4v6 ClusterIPs:v4v6
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:unset_Families:unset", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:unset_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:unset_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:unset_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:unset_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:SingleStack_Families:unset", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:SingleStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:SingleStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:SingleStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:SingleStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v4v6", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:PreferDualStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v4v6", "ClusterIPs:v4v6_Policy:RequireDualStack_Families:v6v4", "error"),
    // dualstack:v4v6 ClusterIPs:v6v4
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:unset_Families:unset", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:unset_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:unset_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:unset_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:unset_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:SingleStack_Families:unset", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:SingleStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:SingleStack_Families:v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:SingleStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:SingleStack_Families:v6v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v6", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v4", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v4v6", "error"),
    ("dualstack:v4v6", "ClusterIPs:v6v4_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // dualstack:v4v6 Headless (the rows read from upstream)
    ("dualstack:v4v6", "Headless_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("dualstack:v4v6", "Headless_Policy:unset_Families:v4", "SingleStack IPv4"),
    ("dualstack:v4v6", "Headless_Policy:unset_Families:v6", "SingleStack IPv6"),
    ("dualstack:v4v6", "Headless_Policy:unset_Families:v4v6", "error"),
    ("dualstack:v4v6", "Headless_Policy:unset_Families:v6v4", "error"),
    ("dualstack:v4v6", "Headless_Policy:SingleStack_Families:unset", "SingleStack IPv4"),
    // dualstack:v6v4 Headless (the rows read from upstream)
    ("dualstack:v6v4", "Headless_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "Headless_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "Headless_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "Headless_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "Headless_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "Headless_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // dualstack:v6v4 HeadlessSelectorless
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:unset_Families:unset", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:unset_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:unset_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:unset_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:unset_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:SingleStack_Families:unset", "SingleStack IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:SingleStack_Families:v4", "SingleStack IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:SingleStack_Families:v6", "SingleStack IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:SingleStack_Families:v4v6", "error"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:SingleStack_Families:v6v4", "error"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v4", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v6", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v4v6", "PreferDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:PreferDualStack_Families:v6v4", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:unset", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v6", "RequireDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v4v6", "RequireDualStack IPv4,IPv6"),
    ("dualstack:v6v4", "HeadlessSelectorless_Policy:RequireDualStack_Families:v6v4", "RequireDualStack IPv6,IPv4"),
    // The dualstack:v6v4 rows of k8s-facts.md §3.3: a user IP beats the cluster default.
    ("dualstack:v6v4", "ClusterIPs:v4_Policy:unset_Families:unset", "SingleStack IPv4"),
    ("dualstack:v6v4", "ClusterIPs:unset_Policy:unset_Families:unset", "SingleStack IPv6"),
    ("dualstack:v6v4", "ClusterIPs:unset_Policy:PreferDualStack_Families:unset", "PreferDualStack IPv6,IPv4"),
    ("dualstack:v6v4", "ClusterIPs:v4_Policy:RequireDualStack_Families:v4", "RequireDualStack IPv4,IPv6"),
];

#[test]
fn test_create_init_ip_fields() {
    for (cluster, case, expected) in CREATE_INIT_IP_FIELDS {
        let mut api = api(cluster);
        let result = api.create("default", &case_service(case));
        if *expected == "error" {
            assert!(
                result.is_err(),
                "{cluster} {case}: expected an error, got {result:?}"
            );
            continue;
        }
        let created = result.unwrap_or_else(|e| panic!("{cluster} {case}: {e}"));
        let (policy, families) = expected.split_once(' ').unwrap();
        assert_eq!(
            created.spec.ip_family_policy.as_deref(),
            Some(policy),
            "{cluster} {case}"
        );
        assert_eq!(fams(&created).join(","), families, "{cluster} {case}");
        if case.starts_with("Headless") {
            prove_headless(&created);
        } else {
            prove_cluster_ips_allocated(&api, &created);
        }
    }
}

// -------------------------------------------------------------------------------------------
// TestCreateInvalidClusterIPInputs (upstream checks substrings; the full messages are pinned)

#[test]
fn test_create_invalid_cluster_ip_inputs() {
    let v4 = "singlestack:v4";
    let dual = "dualstack:v4v6";
    let cases: Vec<(&str, &str, objects::Service, &str)> = vec![
        (
            "bad_ipFamilyPolicy",
            v4,
            make("foo").policy("garbage"),
            r#"Service "foo" is invalid: spec.ipFamilyPolicy: Unsupported value: "garbage": supported values: "PreferDualStack", "RequireDualStack", "SingleStack""#,
        ),
        (
            "requiredual_ipFamilyPolicy_on_singlestack",
            v4,
            make("foo").policy("RequireDualStack"),
            r#"Service "foo" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
        ),
        (
            "bad_ipFamilies_0_value",
            v4,
            make("foo").families(&["garbage"]),
            r#"Service "foo" is invalid: spec.ipFamilies[0]: Unsupported value: "garbage": supported values: "IPv4", "IPv6""#,
        ),
        (
            "bad_ipFamilies_1_value",
            v4,
            make("foo").families(&["IPv4", "garbage"]),
            r#"Service "foo" is invalid: spec.ipFamilies[1]: Unsupported value: "garbage": supported values: "IPv4", "IPv6""#,
        ),
        (
            "bad_ipFamilies_2_value",
            dual,
            make("foo").families(&["IPv4", "IPv6", "garbage"]),
            r#"Service "foo" is invalid: spec.ipFamilies[2]: Unsupported value: "garbage": supported values: "IPv4", "IPv6""#,
        ),
        (
            "wrong_ipFamily",
            v4,
            make("foo").families(&["IPv6"]),
            r#"Service "foo" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#,
        ),
        (
            "too_many_ipFamilies_on_singlestack",
            v4,
            make("foo").families(&["IPv4", "IPv6"]),
            r#"Service "foo" is invalid: spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"#,
        ),
        (
            "dup_ipFamily_singlestack",
            v4,
            make("foo").families(&["IPv4", "IPv4"]),
            r#"Service "foo" is invalid: spec.ipFamilies[1]: Duplicate value: "IPv4""#,
        ),
        (
            "dup_ipFamily_dualstack",
            dual,
            make("foo").families(&["IPv4", "IPv6", "IPv6"]),
            r#"Service "foo" is invalid: spec.ipFamilies[2]: Duplicate value: "IPv6""#,
        ),
        (
            "bad_IP",
            v4,
            make("foo").cluster_ips(&["garbage"]),
            r#"Service "foo" is invalid: spec.clusterIPs[0]: Invalid value: "garbage": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
        ),
        (
            "IP_wrong_family",
            v4,
            make("foo").cluster_ips(&["2000::1"]),
            r#"Service "foo" is invalid: spec.clusterIPs[0]: Invalid value: []string{"2000::1"}: IPv6 is not configured on this cluster"#,
        ),
        (
            "IP_doesnt_match_family",
            v4,
            make("foo").families(&["IPv4"]).cluster_ips(&["2000::1"]),
            r#"Service "foo" is invalid: spec.clusterIPs[0]: Invalid value: "2000::1": expected an IPv4 value as indicated by `ipFamilies[0]`"#,
        ),
        (
            "too_many_IPs_singlestack",
            v4,
            make("foo").cluster_ips(&["10.0.0.1", "10.0.0.2"]),
            r#"Service "foo" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.1", "10.0.0.2"}: may specify no more than one IP for each IP family"#,
        ),
        (
            "too_many_IPs_dualstack",
            dual,
            make("foo").cluster_ips(&["10.0.0.1", "2000::1", "10.0.0.2"]),
            r#"Service "foo" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.1", "2000::1", "10.0.0.2"}: may only hold up to 2 values"#,
        ),
        (
            "dup_IPs",
            v4,
            make("foo").cluster_ips(&["10.0.0.1", "10.0.0.1"]),
            r#"Service "foo" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.1", "10.0.0.1"}: may specify no more than one IP for each IP family"#,
        ),
        (
            "empty_IP",
            v4,
            make("foo").cluster_ips(&[""]),
            r#"Service "foo" is invalid: [spec.clusterIPs: Invalid value: []string{""}: must be empty when `clusterIP` is not specified, spec.clusterIPs[0]: Invalid value: "": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)]"#,
        ),
        (
            "None_IP_1",
            v4,
            make("foo").cluster_ips(&["10.0.0.1", "None"]),
            r#"Service "foo" is invalid: spec.clusterIPs[1]: Invalid value: "None": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#,
        ),
    ];
    for (name, cluster, svc, want) in cases {
        let mut api = api(cluster);
        let err = api.create("default", &svc).expect_err(name);
        assert_eq!(err.reason, "Invalid", "{name}");
        assert_eq!(err.message, want, "{name}");
        assert_eq!(
            used(&api, Family::of_net(&cidrs(cluster)[0])),
            0,
            "{name}: nothing leaked"
        );
    }
}

// -------------------------------------------------------------------------------------------
// Error messages the behaviour list asks for, word for word

#[test]
fn user_cluster_ip_errors_word_for_word() {
    let cases: Vec<(&str, &str, objects::Service, &str)> = vec![
        (
            "clusterIP and clusterIPs[0] differ",
            "dualstack:v4v6",
            {
                let mut s = make("my-svc").policy("PreferDualStack");
                s.spec.cluster_ip = Some(sp("10.0.0.9".to_string()));
                s.spec.cluster_ips =
                    Some(vec![sp("10.0.0.8".to_string()), sp("2000::8".to_string())]);
                s
            },
            r#"Service "my-svc" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.8", "2000::8"}: first value must match `clusterIP`"#,
        ),
        (
            "two cluster IPs without a policy on a dual-stack cluster (k8s-facts §3.3)",
            "dualstack:v4v6",
            make("my-svc").cluster_ips(&["10.0.0.1", "2000::1"]),
            r#"Service "my-svc" is invalid: spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"#,
        ),
        (
            "user IP outside the range",
            "singlestack:v4",
            make("my-svc").cluster_ips(&["10.1.0.1"]),
            r#"Service "my-svc" is invalid: spec.clusterIPs: Invalid value: []string{"10.1.0.1"}: failed to allocate IP 10.1.0.1: the provided IP (10.1.0.1) is not in the valid range. The range of valid IPs is 10.0.0.0/16"#,
        ),
    ];
    for (name, cluster, svc, want) in cases {
        let mut api = api(cluster);
        let err = api.create("default", &svc).expect_err(name);
        assert_eq!(err.message, want, "{name}");
    }
}

#[test]
fn recreating_a_name_is_already_exists_and_a_taken_ip_fails_first() {
    let mut api = api("singlestack:v4");
    api.create("default", &make("x")).unwrap();
    let err = api.create("default", &make("x")).unwrap_err();
    assert_eq!(
        (err.reason, err.message.as_str()),
        ("AlreadyExists", r#"services "x" already exists"#)
    );
    // The failed create released the IP it took before the etcd write failed.
    assert_eq!(used(&api, Family::IPv4), 1);
    // The same name in another namespace is another Service.
    api.create("other", &make("x")).unwrap();

    // kubeadm's kube-dns re-create: the fixed IP is already taken, and allocation runs before
    // the write that would have said AlreadyExists.
    api.create("kube-system", &make("kube-dns").cluster_ips(&["10.0.0.10"]))
        .unwrap();
    let err = api
        .create("kube-system", &make("kube-dns").cluster_ips(&["10.0.0.10"]))
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "kube-dns" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.10"}: failed to allocate IP 10.0.0.10: provided IP is already allocated"#
    );
}

#[test]
fn exhausted_range_is_an_internal_error() {
    let mut api = api_with(33, vec!["10.0.0.0/29".parse().unwrap()], true); // 6 usable
    for i in 0..6 {
        api.create("default", &make(&format!("s{i}"))).unwrap();
    }
    let err = api.create("default", &make("s6")).unwrap_err();
    assert_eq!(err.reason, "InternalError");
    assert_eq!(
        err.message,
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    // A dual-stack Service that gets its IPv6 address but not its IPv4 one gives the IPv6
    // address back.
    let mut api = api_with(
        33,
        vec![
            "10.0.0.0/30".parse().unwrap(),
            "2000::/120".parse().unwrap(),
        ],
        true,
    );
    api.create("default", &make("a").families(&["IPv4"]))
        .unwrap();
    api.create("default", &make("b").families(&["IPv4"]))
        .unwrap();
    let err = api
        .create(
            "default",
            &make("c")
                .policy("RequireDualStack")
                .families(&["IPv6", "IPv4"]),
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    assert_eq!(used(&api, Family::IPv6), 0);
}

// -------------------------------------------------------------------------------------------
// Creation behaviours

#[test]
fn creation_defaults_by_cluster() {
    // (cluster, request, policy, families, cluster IP count)
    let rows: Vec<(&str, objects::Service, &str, &str, usize)> = vec![
        ("singlestack:v4", make("a"), "SingleStack", "IPv4", 1),
        ("dualstack:v4v6", make("a"), "SingleStack", "IPv4", 1),
        ("dualstack:v6v4", make("a"), "SingleStack", "IPv6", 1),
        (
            "singlestack:v4",
            make("a").policy("PreferDualStack"),
            "PreferDualStack",
            "IPv4",
            1,
        ),
        (
            "dualstack:v4v6",
            make("a").policy("PreferDualStack"),
            "PreferDualStack",
            "IPv4,IPv6",
            2,
        ),
        (
            "dualstack:v4v6",
            make("a")
                .policy("PreferDualStack")
                .families(&["IPv6", "IPv4"]),
            "PreferDualStack",
            "IPv6,IPv4",
            2,
        ),
        (
            "dualstack:v4v6",
            make("a").policy("RequireDualStack").families(&["IPv6"]),
            "RequireDualStack",
            "IPv6,IPv4",
            2,
        ),
        (
            "singlestack:v4",
            make("a").headless(),
            "SingleStack",
            "IPv4",
            1,
        ),
        (
            "singlestack:v4",
            make("a").headless().no_selector(),
            "RequireDualStack",
            "IPv4,IPv6",
            1,
        ),
    ];
    for (cluster, req, policy, families, ips) in rows {
        let mut api = api(cluster);
        let s = api.create("default", &req).unwrap();
        assert_eq!(
            s.spec.ip_family_policy.as_deref(),
            Some(policy),
            "{cluster}"
        );
        assert_eq!(fams(&s).join(","), families, "{cluster}");
        assert_eq!(s.spec.cluster_ips.len(), ips, "{cluster}");
        assert_eq!(s.spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(s.spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(s.spec.ports[0].target_port, state::TargetPort::Number(76));
        assert_eq!(s.spec.ports[0].protocol, "TCP");
        if s.spec.cluster_ip.as_deref() != Some("None") {
            prove_cluster_ips_allocated(&api, &s);
        }
    }
}

#[test]
fn external_name_gets_no_ips() {
    let mut api = api("dualstack:v4v6");
    let s = api
        .create("default", &make("ext").type_("ExternalName"))
        .unwrap();
    assert_eq!(s.spec.type_, "ExternalName");
    assert_eq!(s.spec.cluster_ip, None);
    assert!(s.spec.cluster_ips.is_empty());
    assert!(s.spec.ip_families.is_empty());
    assert_eq!(s.spec.ip_family_policy, None);
    assert_eq!(s.spec.internal_traffic_policy, None);
    assert_eq!(s.spec.external_name.as_deref(), Some("foo.example.com"));
    assert_eq!(used(&api, Family::IPv4) + used(&api, Family::IPv6), 0);
}

#[test]
fn load_balancer_gets_node_ports_and_health_check_port() {
    let mut api = api("singlestack:v4");
    let s = api
        .create("default", &make("lb").type_("LoadBalancer").etp("Local"))
        .unwrap();
    assert_eq!(s.spec.allocate_load_balancer_node_ports, Some(true));
    assert_eq!(s.spec.external_traffic_policy.as_deref(), Some("Local"));
    let np = s.spec.ports[0].node_port.unwrap();
    let hc = s.spec.health_check_node_port.unwrap();
    assert!((30000..=32767).contains(&np) && (30000..=32767).contains(&hc) && np != hc);
    // KEP-3668: dynamic ports come from above the static band (86 ports).
    assert!(np >= 30086 && hc >= 30086);
    assert!(api.node_port_allocator().is_allocated(np as i64));
    assert!(api.node_port_allocator().is_allocated(hc as i64));
    let plain = api
        .create("default", &make("np").type_("NodePort"))
        .unwrap();
    assert_eq!(
        plain.spec.external_traffic_policy.as_deref(),
        Some("Cluster")
    );
    assert_eq!(plain.spec.health_check_node_port, None);
    assert_eq!(plain.spec.allocate_load_balancer_node_ports, None);
    api.delete(&s);
    api.delete(&plain);
    assert_eq!(api.node_port_allocator().used(), 0);
    assert_eq!(used(&api, Family::IPv4), 0);
}

// TestCreateInitNodePorts
#[test]
fn test_create_init_node_ports() {
    let pq = || {
        vec![
            port(Some("p"), 80, 80, Some("TCP")),
            port(Some("q"), 443, 443, Some("TCP")),
        ]
    };
    let dns = || {
        vec![
            port(Some("p"), 53, 53, Some("TCP")),
            port(Some("q"), 53, 53, Some("UDP")),
        ]
    };
    let conflict = || {
        vec![
            port(Some("p"), 93, 93, Some("TCP")),
            port(Some("q"), 76, 76, Some("UDP")),
        ]
    };
    let mut alloc_false = make("foo").type_("LoadBalancer");
    alloc_false.spec.allocate_load_balancer_node_ports = Some(false);
    // (name, request, expected outcome: Err(message) or Ok(number of ports with node ports))
    let rows: Vec<(&str, objects::Service, Result<usize, &str>)> = vec![
        // Upstream's two "ExternalName" rows build ClusterIP Services (they never set the
        // type); ported as written.
        ("type:ExternalName", make("foo"), Ok(0)),
        (
            "type:ExternalName_with_NodePorts",
            make("foo").node_ports(&[30093]),
            Err(
                "Service \"foo\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            ),
        ),
        ("type:ClusterIP", make("foo"), Ok(0)),
        (
            "type:ClusterIP_with_NodePorts",
            make("foo").node_ports(&[30093]),
            Err(
                "Service \"foo\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            ),
        ),
        (
            "type:NodePort_single_port_unspecified",
            make("foo").type_("NodePort"),
            Ok(1),
        ),
        (
            "type:NodePort_single_port_specified",
            make("foo").type_("NodePort").node_ports(&[30093]),
            Ok(1),
        ),
        (
            "type:NodePort_multiport_unspecified",
            make("foo").type_("NodePort").ports(pq()),
            Ok(2),
        ),
        (
            "type:NodePort_multiport_specified",
            make("foo")
                .type_("NodePort")
                .ports(pq())
                .node_ports(&[30080, 30443]),
            Ok(2),
        ),
        (
            "type:NodePort_multiport_same",
            make("foo")
                .type_("NodePort")
                .ports(pq())
                .node_ports(&[30080, 30080]),
            Err(
                r#"Service "foo" is invalid: spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"#,
            ),
        ),
        (
            "type:NodePort_multiport_multiproto_unspecified",
            make("foo").type_("NodePort").ports(dns()),
            Ok(2),
        ),
        (
            "type:NodePort_multiport_multiproto_specified",
            make("foo")
                .type_("NodePort")
                .ports(dns())
                .node_ports(&[30053, 30054]),
            Ok(2),
        ),
        (
            "type:NodePort_multiport_multiproto_same",
            make("foo")
                .type_("NodePort")
                .ports(dns())
                .node_ports(&[30053, 30053]),
            Ok(2),
        ),
        (
            "type:NodePort_multiport_multiproto_conflict",
            make("foo")
                .type_("NodePort")
                .ports(conflict())
                .node_ports(&[30093, 30093]),
            Err(
                r#"Service "foo" is invalid: spec.ports[1].nodePort: Invalid value: 30093: provided port is already allocated"#,
            ),
        ),
        (
            "type:LoadBalancer_single_port_unspecified:on_alloc:false",
            alloc_false.clone(),
            Ok(0),
        ),
        (
            "type:LoadBalancer_single_port_unspecified:on_alloc:true",
            make("foo").type_("LoadBalancer"),
            Ok(1),
        ),
        (
            "type:LoadBalancer_single_port_specified:on_alloc:false",
            alloc_false.clone().node_ports(&[30093]),
            Ok(1),
        ),
        (
            "type:LoadBalancer_multiport_unspecified:on_alloc:false",
            alloc_false.clone().ports(pq()),
            Ok(0),
        ),
        (
            "type:LoadBalancer_multiport_specified:on_alloc:false",
            alloc_false.clone().ports(pq()).node_ports(&[30080, 30443]),
            Ok(2),
        ),
        (
            "type:LoadBalancer_multiport_same",
            make("foo")
                .type_("LoadBalancer")
                .ports(pq())
                .node_ports(&[30080, 30080]),
            Err(
                r#"Service "foo" is invalid: spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"#,
            ),
        ),
        (
            "type:LoadBalancer_multiport_multiproto_same",
            make("foo")
                .type_("LoadBalancer")
                .ports(dns())
                .node_ports(&[30053, 30053]),
            Ok(2),
        ),
        (
            "node port outside the range",
            make("foo").type_("NodePort").node_ports(&[8080]),
            Err(
                r#"Service "foo" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"#,
            ),
        ),
    ];
    for (name, req, want) in rows {
        let mut api = api("singlestack:v4");
        match (api.create("default", &req), want) {
            (Ok(s), Ok(n)) => {
                let with: Vec<u16> = s.spec.ports.iter().filter_map(|p| p.node_port).collect();
                assert_eq!(with.len(), n, "{name}");
                for (got, asked) in s.spec.ports.iter().zip(&req.spec.ports) {
                    if let Some(asked) = asked.node_port {
                        assert_eq!(got.node_port.map(i64::from), Some(asked), "{name}");
                    }
                }
                for np in with {
                    assert!(api.node_port_allocator().is_allocated(np as i64), "{name}");
                }
            }
            (Err(e), Err(msg)) => {
                if !msg.is_empty() {
                    assert_eq!(e.message, msg, "{name}");
                }
                assert_eq!(
                    api.node_port_allocator().used(),
                    0,
                    "{name}: nothing leaked"
                );
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn taken_node_port_word_for_word() {
    let mut api = api("singlestack:v4");
    api.create("default", &make("a").type_("NodePort").node_ports(&[30080]))
        .unwrap();
    let err = api
        .create("default", &make("b").type_("NodePort").node_ports(&[30080]))
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#
    );
    // The failed create gave its cluster IP back.
    assert_eq!(used(&api, Family::IPv4), 1);
}

// -------------------------------------------------------------------------------------------
// Updates: TestUpdatePatchAllocatedValues (PUTs that omit allocated values)

fn lb_local(name: &str) -> objects::Service {
    make(name).type_("LoadBalancer").etp("Local")
}

fn put(
    api: &mut ServiceApi,
    live: &state::Service,
    req: &objects::Service,
    hcnp: i64,
) -> Result<state::Service, ApiError> {
    let mut svc = Svc::from_request(req, "default", api.features());
    svc.health_check_node_port = hcnp;
    api.update(live, svc)
}

#[test]
fn test_update_patch_allocated_values() {
    let pq = || {
        vec![
            port(Some("p"), 867, 867, Some("TCP")),
            port(Some("q"), 5309, 5309, Some("TCP")),
        ]
    };
    let qp = || {
        vec![
            port(Some("q"), 5309, 5309, Some("TCP")),
            port(Some("p"), 867, 867, Some("TCP")),
        ]
    };
    // (name, create, update, update HCNP, expected ports/HCNP or error)
    type Want = Result<(Vec<Option<i64>>, i64), ()>;
    let dual_create = lb_local("foo")
        .policy("PreferDualStack")
        .cluster_ips(&["10.0.0.1", "2000::1"])
        .ports(pq())
        .node_ports(&[30093, 30076]);
    let single_create = lb_local("foo").ports(pq()).node_ports(&[30093, 30076]);
    let rows: Vec<(&str, objects::Service, objects::Service, i64, Want)> = vec![
        (
            "single-ip_single-port",
            lb_local("foo")
                .cluster_ips(&["10.0.0.1"])
                .node_ports(&[30093]),
            lb_local("foo"),
            0,
            Ok((vec![Some(30093)], 30118)),
        ),
        (
            "multi-ip_multi-port",
            dual_create.clone(),
            lb_local("foo").ports(pq()),
            0,
            Ok((vec![Some(30093), Some(30076)], 30118)),
        ),
        (
            "multi-ip_partial",
            dual_create.clone(),
            lb_local("foo").cluster_ips(&["10.0.0.1"]),
            0,
            Err(()),
        ),
        (
            "multi-port_partial",
            single_create.clone(),
            lb_local("foo").ports(pq()).node_ports(&[30093, 0]),
            0,
            Ok((vec![Some(30093), Some(30076)], 30118)),
        ),
        (
            "swap-ports",
            single_create.clone(),
            lb_local("foo").ports(qp()),
            0,
            Ok((vec![Some(30076), Some(30093)], 30118)),
        ),
        (
            "partial-swap-ports",
            single_create.clone(),
            lb_local("foo").ports(pq()).node_ports(&[30076, 0]),
            30118,
            Ok((vec![Some(30076), None], 30118)),
        ),
        (
            "swap-port-with-hcnp",
            single_create.clone(),
            lb_local("foo").ports(pq()).node_ports(&[30076, 30118]),
            0,
            Err(()),
        ),
        (
            "partial-swap-port-with-hcnp",
            single_create.clone(),
            lb_local("foo").ports(pq()).node_ports(&[30118, 0]),
            0,
            Err(()),
        ),
        (
            "update-hcnp",
            single_create.clone(),
            lb_local("foo").ports(pq()).node_ports(&[30093, 30076]),
            30111,
            Err(()),
        ),
    ];
    for (name, create, update, hcnp, want) in rows {
        let mut api = api("dualstack:v4v6");
        let mut created = Svc::from_request(&create, "default", api.features());
        created.health_check_node_port = 30118;
        let mut txn = IpTxn::default();
        let mut op = nodeport::PortOp::default();
        api.create_modern(&mut created, &mut txn, &mut op).unwrap();
        api.commit(txn, op);
        let live = created.to_state();
        match (put(&mut api, &live, &update, hcnp), want) {
            (Ok(s), Ok((nps, hc))) => {
                assert_eq!(s.spec.cluster_ips, live.spec.cluster_ips, "{name}");
                for (got, want) in s.spec.ports.iter().zip(&nps) {
                    match want {
                        Some(w) => assert_eq!(got.node_port.map(i64::from), Some(*w), "{name}"),
                        // "wanted anything but 30076": a fresh port.
                        None => assert!(got.node_port.is_some_and(|p| p != 30076), "{name}"),
                    }
                }
                assert_eq!(
                    s.spec.health_check_node_port.map(i64::from),
                    Some(hc),
                    "{name}"
                );
            }
            (Err(_), Err(())) => {
                // Nothing changed in the allocators.
                for np in live.spec.ports.iter().filter_map(|p| p.node_port) {
                    assert!(api.node_port_allocator().is_allocated(np as i64), "{name}");
                }
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn health_check_node_port_change_word_for_word() {
    for (version, want) in [
        (
            33,
            r#"Service "foo" is invalid: spec.healthCheckNodePort: Forbidden: field is immutable"#,
        ),
        (
            21,
            r#"Service "foo" is invalid: spec.healthCheckNodePort: Invalid value: 30111: cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update"#,
        ),
    ] {
        let mut api = api_with(version, cidrs("singlestack:v4"), true);
        let live = api.create("default", &lb_local("foo")).unwrap();
        // kubectl apply sends the live clusterIP back; only the health-check port differs.
        let req = apply_request(&live, None, &lb_local("foo"));
        let err = put(&mut api, &live, &req, 30111).unwrap_err();
        assert_eq!(err.message, want, "1.{version}");
    }
}

// -------------------------------------------------------------------------------------------
// TestUpdateIPsFromSingleStack / TestUpdateIPsFromDualStack (PUT updates)

/// The update half of a `cudTestCase`: policy / families / IPs of the PUT ("nil" = unset),
/// and the expected number of families or `0` for an error.
type UpdRow = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    usize,
);

fn update_case(policy: &str, families: &[&str], ips: &[&str]) -> objects::Service {
    let mut s = make("foo");
    s.spec.selector = Some([("k2".to_string(), "v2".to_string())].into_iter().collect());
    if policy != "nil" {
        s = s.policy(policy);
    }
    if !families.is_empty() {
        s = s.families(families);
    }
    if !ips.is_empty() {
        s = s.cluster_ips(ips);
    }
    s
}

fn run_update_rows(cluster: &str, create: objects::Service, rows: &[UpdRow]) {
    for (policy, families, ips, want) in rows {
        let mut api = api(cluster);
        let live = api.create("default", &create).unwrap();
        let before_v4 = used(&api, Family::IPv4);
        let before_v6 = api.allocator(Family::IPv6).map(|a| a.used());
        let label = format!("{cluster} policy:{policy} families:{families:?} ips:{ips:?}");
        match put(&mut api, &live, &update_case(policy, families, ips), 0) {
            Ok(s) => {
                assert!(*want > 0, "{label}: expected an error, got {s:?}");
                assert_eq!(s.spec.ip_families.len(), *want, "{label}");
                prove_cluster_ips_allocated(&api, &s);
                // The primary never changes.
                assert_eq!(s.spec.cluster_ips[0], live.spec.cluster_ips[0], "{label}");
                // A downgrade gave the secondary back.
                if *want == 1 && live.spec.cluster_ips.len() == 2 {
                    let gone: IpAddr = live.spec.cluster_ips[1].parse().unwrap();
                    let fam = Family::of_ip(&gone);
                    assert!(!api.allocator(fam).unwrap().is_allocated(gone), "{label}");
                }
            }
            Err(e) => {
                assert_eq!(*want, 0, "{label}: unexpected error {e}");
                assert_eq!(used(&api, Family::IPv4), before_v4, "{label}");
                assert_eq!(
                    api.allocator(Family::IPv6).map(|a| a.used()),
                    before_v6,
                    "{label}"
                );
            }
        }
    }
}

const NIL: &[&str] = &[];
const V4: &[&str] = &["IPv4"];
const V4V6: &[&str] = &["IPv4", "IPv6"];
const IP4: &[&str] = &["10.0.0.1"];
const IP46: &[&str] = &["10.0.0.1", "2000::1"];

#[test]
fn test_update_ips_from_single_stack() {
    // singlestack:v4, created SingleStack.
    run_update_rows(
        "singlestack:v4",
        make("foo").policy("SingleStack"),
        &[
            ("SingleStack", NIL, NIL, 1),       // single-single
            ("RequireDualStack", V4V6, NIL, 0), // single-dual
            ("RequireDualStack", NIL, NIL, 0),  // single-dual_policy
            ("nil", V4V6, NIL, 0),              // single-dual_families
        ],
    );
    // dualstack:v4v6, created SingleStack with 10.0.0.1: the full policy x families x ips
    // matrix.
    run_update_rows(
        "dualstack:v4v6",
        make("foo").policy("SingleStack").cluster_ips(IP4),
        &[
            ("nil", NIL, NIL, 1),
            ("nil", NIL, IP4, 1),
            ("nil", NIL, IP46, 0),
            ("nil", V4, NIL, 1),
            ("nil", V4, IP4, 1),
            ("nil", V4, IP46, 0),
            ("nil", V4V6, NIL, 0),
            ("nil", V4V6, IP4, 0),
            ("nil", V4V6, IP46, 0),
            ("SingleStack", NIL, NIL, 1),
            ("SingleStack", NIL, IP4, 1),
            ("SingleStack", NIL, IP46, 0),
            ("SingleStack", V4, NIL, 1),
            ("SingleStack", V4, IP4, 1),
            ("SingleStack", V4, IP46, 0),
            ("SingleStack", V4V6, NIL, 0),
            ("SingleStack", V4V6, IP4, 0),
            ("SingleStack", V4V6, IP46, 0),
            ("PreferDualStack", NIL, NIL, 2),
            ("PreferDualStack", NIL, IP4, 2),
            ("PreferDualStack", NIL, IP46, 2),
            ("PreferDualStack", V4, NIL, 2),
            ("PreferDualStack", V4, IP4, 2),
            ("PreferDualStack", V4, IP46, 2),
            ("PreferDualStack", V4V6, NIL, 2),
            ("PreferDualStack", V4V6, IP4, 2),
            ("PreferDualStack", V4V6, IP46, 2),
            ("RequireDualStack", NIL, NIL, 2),
            ("RequireDualStack", NIL, IP4, 2),
            ("RequireDualStack", NIL, IP46, 2),
            ("RequireDualStack", V4, NIL, 2),
            ("RequireDualStack", V4, IP4, 2),
            ("RequireDualStack", V4, IP46, 2),
            ("RequireDualStack", V4V6, NIL, 2),
            ("RequireDualStack", V4V6, IP4, 2),
            ("RequireDualStack", V4V6, IP46, 2),
            ("RequireDualStack", &["IPv6", "IPv4"], NIL, 0), // single-dual_wrong_order_families
            ("RequireDualStack", NIL, &["2000::1", "10.0.0.1"], 0), // single-dual_wrong_order_ips
        ],
    );
}

#[test]
fn single_dual_ip_in_use() {
    let mut api = api("dualstack:v4v6");
    let live = api
        .create(
            "default",
            &make("foo").policy("SingleStack").cluster_ips(IP4),
        )
        .unwrap();
    api.create(
        "default",
        &make("bar").families(&["IPv6"]).cluster_ips(&["2000::1"]),
    )
    .unwrap();
    let err = put(
        &mut api,
        &live,
        &update_case("RequireDualStack", V4V6, IP46),
        0,
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "foo" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.1", "2000::1"}: failed to allocate IP 2000::1: provided IP is already allocated"#
    );
}

#[test]
fn test_update_ips_from_dual_stack() {
    run_update_rows(
        "dualstack:v4v6",
        make("foo").policy("RequireDualStack").cluster_ips(IP46),
        &[
            ("nil", NIL, NIL, 2),
            ("nil", NIL, IP4, 0),
            ("nil", NIL, IP46, 2),
            ("nil", V4, NIL, 0),
            ("nil", V4, IP4, 0),
            ("nil", V4, IP46, 0),
            ("nil", V4V6, NIL, 2),
            ("nil", V4V6, IP4, 0),
            ("nil", V4V6, IP46, 2),
            ("SingleStack", NIL, NIL, 1),
            ("SingleStack", NIL, IP4, 1),
            ("SingleStack", NIL, IP46, 1),
            ("SingleStack", V4, NIL, 1),
            ("SingleStack", V4, IP4, 1),
            ("SingleStack", V4, IP46, 1),
            ("SingleStack", V4V6, NIL, 1),
            ("SingleStack", V4V6, IP4, 1),
            ("SingleStack", V4V6, IP46, 1),
            ("PreferDualStack", NIL, NIL, 2),
            ("PreferDualStack", NIL, IP4, 0),
            ("PreferDualStack", NIL, IP46, 2),
            ("PreferDualStack", V4, NIL, 0),
            ("PreferDualStack", V4, IP4, 0),
            ("PreferDualStack", V4, IP46, 0),
            ("PreferDualStack", V4V6, NIL, 2),
            ("PreferDualStack", V4V6, IP4, 0),
            ("PreferDualStack", V4V6, IP46, 2),
            ("RequireDualStack", NIL, NIL, 2),
            ("RequireDualStack", NIL, IP4, 0),
            ("RequireDualStack", NIL, IP46, 2),
            ("RequireDualStack", V4, NIL, 0),
            ("RequireDualStack", V4, IP4, 0),
            ("RequireDualStack", V4, IP46, 0),
            ("RequireDualStack", V4V6, NIL, 2),
            ("RequireDualStack", V4V6, IP4, 0),
            ("RequireDualStack", V4V6, IP46, 2),
            ("SingleStack", &["IPv6"], NIL, 0), // dual-single_wrong_order_families
            ("SingleStack", NIL, &["2000::1"], 0), // dual-single_wrong_order_ips
        ],
    );
}

#[test]
fn test_update_headless_from_single_stack() {
    run_update_rows_headless(&[
        ("PreferDualStack", V4, 2),
        ("PreferDualStack", V4V6, 2),
        ("RequireDualStack", NIL, 2),
        ("RequireDualStack", V4, 2),
        ("RequireDualStack", V4V6, 2),
    ]);
}

fn run_update_rows_headless(rows: &[(&str, &[&str], usize)]) {
    for (policy, families, want) in rows {
        let mut api = api("dualstack:v4v6");
        let live = api
            .create("default", &make("foo").policy("SingleStack").headless())
            .unwrap();
        let s = put(&mut api, &live, &update_case(policy, families, NIL), 0).unwrap();
        assert_eq!(s.spec.ip_families.len(), *want, "{policy} {families:?}");
        prove_headless(&s);
    }
}

// -------------------------------------------------------------------------------------------
// kubectl apply

fn manifest(name: &str) -> objects::Service {
    make(name)
}

#[test]
fn apply_upgrades_and_downgrades() {
    let mut api = api("dualstack:v4v6");
    let m1 = manifest("web");
    let live = api.create("default", &m1).unwrap();
    assert_eq!(fams(&live), ["IPv4"]);

    // Upgrade: the server-set clusterIP(s) and families stay from the live object, the new
    // policy asks for the second family, and only the secondary is allocated.
    let m2 = manifest("web").policy("RequireDualStack");
    let up = api.apply_update(&live, Some(&m1), &m2).unwrap();
    assert_eq!(fams(&up), ["IPv4", "IPv6"]);
    assert_eq!(up.spec.cluster_ips[0], live.spec.cluster_ips[0]);
    prove_cluster_ips_allocated(&api, &up);
    assert_eq!((used(&api, Family::IPv4), used(&api, Family::IPv6)), (1, 1));

    // Re-applying the same manifest changes nothing.
    let again = api.apply_update(&up, Some(&m2), &m2).unwrap();
    assert_eq!(again.spec.cluster_ips, up.spec.cluster_ips);

    // Downgrade: SingleStack with the fields left as they were drops the secondary and keeps
    // the primary.
    let m3 = manifest("web").policy("SingleStack");
    let down = api.apply_update(&up, Some(&m2), &m3).unwrap();
    assert_eq!(fams(&down), ["IPv4"]);
    assert_eq!(down.spec.cluster_ips, vec![up.spec.cluster_ips[0].clone()]);
    assert_eq!((used(&api, Family::IPv4), used(&api, Family::IPv6)), (1, 0));

    // Dropping the policy line from the manifest keeps the live SingleStack.
    let kept = api.apply_update(&down, Some(&m3), &m1).unwrap();
    assert_eq!(kept.spec.ip_family_policy.as_deref(), Some("SingleStack"));

    // Changing the primary family is refused: the live IPv4 clusterIP is sent back with the
    // new families, so the loose validation names the mismatch first.
    let m4 = manifest("web")
        .policy("RequireDualStack")
        .families(&["IPv6", "IPv4"]);
    let err = api.apply_update(&down, Some(&m3), &m4).unwrap_err();
    assert_eq!(
        err.message,
        format!(
            r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: "{}": expected an IPv6 value as indicated by `ipFamilies[0]`"#,
            down.spec.cluster_ips[0]
        )
    );
    // ... and so is changing the primary cluster IP.
    let m5 = manifest("web").cluster_ips(&["10.0.0.77"]);
    let err = api.apply_update(&down, Some(&m1), &m5).unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.0.0.77"}: may not change once set"#
    );
    assert!(
        !api.allocator(Family::IPv4)
            .unwrap()
            .is_allocated("10.0.0.77".parse().unwrap())
    );

    api.delete(&kept);
    assert_eq!((used(&api, Family::IPv4), used(&api, Family::IPv6)), (0, 0));
}

#[test]
fn apply_with_families_reordered_is_refused_on_same_length() {
    let mut api = api("dualstack:v4v6");
    let m1 = manifest("web").policy("RequireDualStack");
    let live = api.create("default", &m1).unwrap();
    let m2 = manifest("web")
        .policy("RequireDualStack")
        .families(&["IPv6", "IPv4"]);
    let err = api.apply_update(&live, Some(&m1), &m2).unwrap_err();
    assert_eq!(
        err.message,
        format!(
            r#"Service "web" is invalid: [spec.clusterIPs[0]: Invalid value: "{}": expected an IPv6 value as indicated by `ipFamilies[0]`, spec.clusterIPs[1]: Invalid value: "{}": expected an IPv4 value as indicated by `ipFamilies[1]`]"#,
            live.spec.cluster_ips[0], live.spec.cluster_ips[1]
        )
    );
    // A headless Service may change its families.
    let h1 = manifest("h").headless().policy("RequireDualStack");
    let hl = api.create("default", &h1).unwrap();
    let h2 = manifest("h")
        .headless()
        .policy("RequireDualStack")
        .families(&["IPv6", "IPv4"]);
    let changed = api.apply_update(&hl, Some(&h1), &h2).unwrap();
    assert_eq!(fams(&changed), ["IPv6", "IPv4"]);
}

#[test]
fn prefer_dual_stack_is_not_auto_upgraded() {
    // Created on a single-stack cluster; kube-apiserver then restarts dual-stack.
    let m = manifest("web").policy("PreferDualStack");
    let mut single = api("singlestack:v4");
    let live = single.create("default", &m).unwrap();
    assert_eq!(fams(&live), ["IPv4"]);

    let mut dual = api("dualstack:v4v6");
    assert!(dual.restore(std::slice::from_ref(&live)).is_empty());
    let same = dual.apply_update(&live, Some(&m), &m).unwrap();
    assert_eq!(fams(&same), ["IPv4"], "1.23+ leaves PreferDualStack alone");
    // Asking for it explicitly upgrades.
    let m2 = manifest("web").policy("RequireDualStack");
    let up = dual.apply_update(&live, Some(&m), &m2).unwrap();
    assert_eq!(fams(&up), ["IPv4", "IPv6"]);

    // In 1.20 any update re-ran the defaulting, so the Service was upgraded.
    let mut old_single = api_with(20, cidrs("singlestack:v4"), true);
    let live20 = old_single.create("default", &m).unwrap();
    let mut old_dual = api_with(20, cidrs("dualstack:v4v6"), true);
    old_dual.restore(std::slice::from_ref(&live20));
    let up20 = old_dual.apply_update(&live20, Some(&m), &m).unwrap();
    assert_eq!(fams(&up20), ["IPv4", "IPv6"]);
}

#[test]
fn apply_request_three_way_merge() {
    let mut api = api("singlestack:v4");
    let m1 = manifest("web").type_("NodePort");
    let live = api.create("default", &m1).unwrap();
    let np = live.spec.ports[0].node_port.map(i64::from);
    assert!(np.is_some());

    // Omitted by both manifests: the live value is sent back.
    let req = apply_request(&live, Some(&m1), &m1);
    assert_eq!(
        req.spec.cluster_ip.as_ref().map(|s| s.value.clone()),
        live.spec.cluster_ip
    );
    assert_eq!(req.spec.ports[0].node_port, np);
    assert_eq!(
        req.spec.ip_family_policy.as_ref().map(|s| s.value.as_str()),
        Some("SingleStack")
    );
    assert_eq!(
        req.spec
            .external_traffic_policy
            .as_ref()
            .map(|s| s.value.as_str()),
        Some("Cluster")
    );

    // Set in the last-applied manifest, omitted in the new one: cleared.
    let m2 = manifest("web")
        .type_("NodePort")
        .node_ports(&[30500])
        .cluster_ips(&["10.0.0.50"]);
    let req = apply_request(&live, Some(&m2), &m1);
    assert_eq!(req.spec.ports[0].node_port, None);
    assert_eq!(req.spec.cluster_ip, None);
    assert_eq!(req.spec.cluster_ips, None);

    // Set in the new manifest: the new value.
    let req = apply_request(&live, Some(&m1), &m2);
    assert_eq!(req.spec.ports[0].node_port, Some(30500));

    // A live port the manifests never named stays; one the last manifest named goes.
    let two = manifest("web").type_("NodePort").ports(vec![
        port(Some("a"), 80, 80, None),
        port(Some("b"), 81, 81, None),
    ]);
    let live2 = api
        .create("default", &{
            let mut s = two.clone();
            s.meta.name = sp("web2".to_string());
            s
        })
        .unwrap();
    let one = manifest("web")
        .type_("NodePort")
        .ports(vec![port(Some("a"), 80, 80, None)]);
    let kept = apply_request(&live2, None, &one);
    assert_eq!(
        kept.spec.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        vec![80, 81]
    );
    let dropped = apply_request(&live2, Some(&two), &one);
    assert_eq!(
        dropped
            .spec
            .ports
            .iter()
            .map(|p| p.port)
            .collect::<Vec<_>>(),
        vec![80]
    );
}

#[test]
fn apply_type_change_releases_node_ports() {
    let mut api = api("singlestack:v4");
    let m1 = manifest("web").type_("NodePort");
    let live = api.create("default", &m1).unwrap();
    assert_eq!(api.node_port_allocator().used(), 1);
    // The live node port is sent back (it was never in a manifest) and wiped by
    // `dropTypeDependentFields`.
    let m2 = manifest("web");
    let s = api.apply_update(&live, Some(&m1), &m2).unwrap();
    assert_eq!(s.spec.type_, "ClusterIP");
    assert_eq!(s.spec.ports[0].node_port, None);
    assert_eq!(s.spec.external_traffic_policy, None);
    assert_eq!(api.node_port_allocator().used(), 0);
    // To ExternalName: every cluster IP goes back.
    let m3 = manifest("web").type_("ExternalName");
    let e = api.apply_update(&s, Some(&m2), &m3).unwrap();
    assert_eq!(e.spec.cluster_ip, None);
    assert!(e.spec.ip_families.is_empty());
    assert_eq!(used(&api, Family::IPv4), 0);
    // And back: allocated again.
    let back = api.apply_update(&e, Some(&m3), &m2).unwrap();
    prove_cluster_ips_allocated(&api, &back);
}

// -------------------------------------------------------------------------------------------
// 1.16–1.19: spec.ipFamily

/// (version, gate, cluster, request, expected `spec.ipFamily` and cluster IP family, or error)
type AlphaRow = (
    u16,
    bool,
    &'static str,
    objects::Service,
    Result<(Option<&'static str>, Family), &'static str>,
);

fn alpha_svc(name: &str) -> objects::Service {
    make(name)
}

#[test]
fn alpha_ip_family() {
    // (version, gate, cluster, request, expected ipFamily and clusterIP family, or error)
    let with_family = |f: &str| {
        let mut s = alpha_svc("web");
        s.legacy_ip_family = Some(sp(f.to_string()));
        s
    };
    let rows: Vec<AlphaRow> = vec![
        (
            17,
            false,
            "singlestack:v4",
            alpha_svc("web"),
            Ok((None, Family::IPv4)),
        ),
        // Without the gate the field is dropped, whatever it says.
        (
            17,
            false,
            "singlestack:v4",
            with_family("IPv6"),
            Ok((None, Family::IPv4)),
        ),
        (
            18,
            true,
            "dualstack:v4v6",
            alpha_svc("web"),
            Ok((Some("IPv4"), Family::IPv4)),
        ),
        (
            18,
            true,
            "dualstack:v4v6",
            with_family("IPv6"),
            Ok((Some("IPv6"), Family::IPv6)),
        ),
        (
            19,
            true,
            "dualstack:v6v4",
            alpha_svc("web"),
            Ok((Some("IPv6"), Family::IPv6)),
        ),
        // A chosen clusterIP decides the family.
        (
            19,
            true,
            "dualstack:v4v6",
            alpha_svc("web").cluster_ips(&["2000::5"]),
            Ok((Some("IPv6"), Family::IPv6)),
        ),
        (
            16,
            true,
            "singlestack:v4",
            with_family("IPv6"),
            Err(
                r#"Service "web" is invalid: spec.ipFamily: Invalid value: "IPv6": only the following families are allowed: IPv4"#,
            ),
        ),
        (
            19,
            true,
            "dualstack:v4v6",
            with_family("IPv5"),
            Err(
                r#"Service "web" is invalid: spec.ipFamily: Invalid value: "IPv5": only the following families are allowed: IPv4, IPv6"#,
            ),
        ),
        (
            19,
            true,
            "dualstack:v4v6",
            with_family("IPv4").cluster_ips(&["2000::5"]),
            Err(
                r#"Service "web" is invalid: spec.ipFamily: Invalid value: "IPv4": does not match IPv6 cluster IP"#,
            ),
        ),
        (
            19,
            true,
            "singlestack:v4",
            alpha_svc("web").cluster_ips(&["10.1.0.5"]),
            Err(
                r#"Service "web" is invalid: spec.clusterIP: Invalid value: "10.1.0.5": provided IP is not in the valid range. The range of valid IPs is 10.0.0.0/16"#,
            ),
        ),
    ];
    for (version, gate, cluster, req, want) in rows {
        let mut api = api_with(version, cidrs(cluster), gate);
        let label = format!("1.{version} gate={gate} {cluster}");
        match (api.create("default", &req), want) {
            (Ok(s), Ok((family, ip_family))) => {
                assert_eq!(s.spec.ip_family.map(|f| f.as_str()), family, "{label}");
                // The 1.16–1.19 API has one clusterIP and none of the new fields.
                assert!(
                    s.spec.cluster_ips.is_empty() && s.spec.ip_families.is_empty(),
                    "{label}"
                );
                assert_eq!(s.spec.ip_family_policy, None, "{label}");
                assert_eq!(s.spec.internal_traffic_policy, None, "{label}");
                let ip: IpAddr = s.spec.cluster_ip.as_deref().unwrap().parse().unwrap();
                assert_eq!(Family::of_ip(&ip), ip_family, "{label}");
                assert!(
                    api.allocator(ip_family).unwrap().is_allocated(ip),
                    "{label}"
                );
            }
            (Err(e), Err(msg)) => assert_eq!(e.message, msg, "{label}"),
            (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn alpha_updates() {
    let mut api = api_with(19, cidrs("dualstack:v4v6"), true);
    let mut m = alpha_svc("web");
    m.legacy_ip_family = Some(sp("IPv6".to_string()));
    let live = api.create("default", &m).unwrap();
    // Re-applying without the field keeps it (it is in the live object).
    let again = api
        .apply_update(&live, Some(&m), &alpha_svc("web"))
        .unwrap();
    assert_eq!(again.spec.ip_family, Some(Family::IPv6));
    // Changing it is refused.
    let mut m4 = alpha_svc("web");
    m4.legacy_ip_family = Some(sp("IPv4".to_string()));
    let err = api.apply_update(&live, Some(&m), &m4).unwrap_err();
    assert_eq!(
        err.message,
        format!(
            r#"Service "web" is invalid: [spec.ipFamily: Invalid value: "IPv4": field is immutable, spec.ipFamily: Invalid value: "IPv4": does not match IPv6 cluster IP]"#
        )
    );
    // So is changing the clusterIP.
    let err = api
        .apply_update(&live, None, &alpha_svc("web").cluster_ips(&["2000::9"]))
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "web" is invalid: spec.clusterIP: Invalid value: "2000::9": field is immutable"#
    );
    api.delete(&live);
    assert_eq!(used(&api, Family::IPv6), 0);
}

// -------------------------------------------------------------------------------------------
// 1.20–1.22

#[test]
fn legacy_messages_and_quirks() {
    // (version, cluster, request, expected error or families)
    let rows: Vec<(u16, &str, objects::Service, Result<&str, &str>)> = vec![
        (
            21,
            "singlestack:v4",
            make("web").policy("RequireDualStack"),
            Err(
                r#"Service "web" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": Cluster is not configured for dual stack services"#,
            ),
        ),
        (
            20,
            "singlestack:v4",
            make("web").cluster_ips(&["2000::1"]),
            Err(
                r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"2000::1"}: may not use IPv6 on a cluster which is not configured for it"#,
            ),
        ),
        (
            22,
            "singlestack:v4",
            make("web").families(&["IPv6"]),
            Err(
                r#"Service "web" is invalid: spec.ipFamilies[0]: Invalid value: []string(nil): ipfamily IPv6 is not configured on cluster"#,
            ),
        ),
        (
            22,
            "dualstack:v4v6",
            make("web")
                .policy("SingleStack")
                .cluster_ips(&["10.0.0.1", "2000::1"]),
            Err(
                r#"Service "web" is invalid: spec.ipFamilyPolicy: Invalid value: "SingleStack": must be RequireDualStack or PreferDualStack when multiple 'clusterIPs' are specified"#,
            ),
        ),
        // Without a policy the SingleStack checks were skipped: two IPs were accepted.
        (
            21,
            "dualstack:v4v6",
            make("web").cluster_ips(&["10.0.0.1", "2000::1"]),
            Ok("SingleStack IPv4,IPv6"),
        ),
        // PreferDualStack on a headless selectorless Service stays single on a single-stack
        // cluster before 1.23.
        (
            20,
            "singlestack:v4",
            make("web")
                .headless()
                .no_selector()
                .policy("PreferDualStack"),
            Ok("PreferDualStack IPv4"),
        ),
        (
            20,
            "singlestack:v4",
            make("web").headless().no_selector(),
            Ok("RequireDualStack IPv4,IPv6"),
        ),
    ];
    for (version, cluster, req, want) in rows {
        let mut api = api_with(version, cidrs(cluster), true);
        let label = format!("1.{version} {cluster}");
        match (api.create("default", &req), want) {
            (Ok(s), Ok(w)) => {
                let (policy, families) = w.split_once(' ').unwrap();
                assert_eq!(s.spec.ip_family_policy.as_deref(), Some(policy), "{label}");
                assert_eq!(fams(&s).join(","), families, "{label}");
            }
            (Err(e), Err(msg)) => assert_eq!(e.message, msg, "{label}"),
            (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
        }
    }
    // The taken-IP message of that era (kubeadm's kube-dns).
    let mut api = api_with(21, cidrs("singlestack:v4"), true);
    api.create("kube-system", &make("kube-dns").cluster_ips(&["10.0.0.10"]))
        .unwrap();
    let err = api
        .create(
            "kube-system",
            &make("kube-dns2").cluster_ips(&["10.0.0.10"]),
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "kube-dns2" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.10"}: failed to allocated ip:10.0.0.10 with error:provided IP is already allocated"#
    );
}

#[test]
fn legacy_gate_off_is_single_family() {
    // 1.21 with IPv6DualStack disabled: the new fields are dropped; one IP from the primary.
    let mut api = api_with(21, cidrs("dualstack:v4v6"), false);
    let s = api
        .create(
            "default",
            &make("web").policy("RequireDualStack").families(&["IPv6"]),
        )
        .unwrap();
    assert_eq!(s.spec.ip_family_policy, None);
    assert!(s.spec.ip_families.is_empty());
    assert_eq!(s.spec.cluster_ips.len(), 1);
    assert!(api.allocator(Family::IPv6).is_none());
    assert_eq!(used(&api, Family::IPv4), 1);
}

#[test]
fn defaults_by_version() {
    // (version, type, internalTrafficPolicy, allocateLoadBalancerNodePorts)
    let rows = [
        (21, "ClusterIP", None, None),
        (22, "ClusterIP", Some("Cluster"), None),
        (21, "LoadBalancer", None, None),
        (22, "LoadBalancer", Some("Cluster"), Some(true)),
        (35, "LoadBalancer", Some("Cluster"), Some(true)),
        (35, "ExternalName", None, None),
    ];
    for (version, type_, itp, alloc) in rows {
        let mut api = api_with(version, cidrs("singlestack:v4"), true);
        let s = api.create("default", &make("web").type_(type_)).unwrap();
        assert_eq!(
            s.spec.internal_traffic_policy.as_deref(),
            itp,
            "1.{version} {type_}"
        );
        assert_eq!(
            s.spec.allocate_load_balancer_node_ports, alloc,
            "1.{version} {type_}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// The kubernetes Service, delete, restore, read

#[test]
fn kubernetes_service() {
    let mut api = api("dualstack:v6v4");
    let k = api.create_kubernetes_service();
    assert_eq!(k.metadata.name, "kubernetes");
    assert_eq!(k.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(k.spec.cluster_ip.as_deref(), Some("2000::1"));
    assert_eq!(k.spec.cluster_ips, vec!["2000::1".to_string()]);
    assert_eq!(k.spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(fams(&k), ["IPv6"]);
    assert_eq!(k.spec.selector, None);
    assert_eq!(k.spec.ports[0].name.as_deref(), Some("https"));
    assert_eq!(
        (k.spec.ports[0].port, k.spec.ports[0].target_port.clone()),
        (443, state::TargetPort::Number(6443))
    );
    assert_eq!(
        k.metadata.labels.get("component").map(String::as_str),
        Some("apiserver")
    );
    assert_eq!(
        k.metadata.labels.get("provider").map(String::as_str),
        Some("kubernetes")
    );
    // Idempotent.
    let again = api.create_kubernetes_service();
    assert_eq!(again.spec.cluster_ip, k.spec.cluster_ip);
    assert_eq!(used(&api, Family::IPv6), 1);
    // On 1.16 it is a plain single-IP Service.
    let mut old = api_with(16, cidrs("singlestack:v4"), false);
    let k16 = old.create_kubernetes_service();
    assert_eq!(k16.spec.cluster_ip.as_deref(), Some("10.0.0.1"));
    assert!(k16.spec.cluster_ips.is_empty());
}

#[test]
fn restore_reoccupies_and_reports_what_no_longer_fits() {
    let mut before = api("dualstack:v4v6");
    let a = before
        .create(
            "default",
            &make("a").policy("RequireDualStack").type_("NodePort"),
        )
        .unwrap();
    let b = before.create("default", &make("b")).unwrap();
    // Restart single-stack IPv4 with a narrower node port range.
    let mut after = api_with(33, vec!["10.0.0.0/16".parse().unwrap()], true);
    let mut narrow = ServiceApi::new(ServiceApiConfig {
        version: KubeVersion::new(33),
        service_cidrs: vec!["10.0.0.0/16".parse().unwrap()],
        dual_stack: true,
        allocator_kind: AllocatorKind::Bitmap,
        static_subrange: true,
        node_port_range: (31000, 31001),
        node_port_static_subrange: true,
        seed: 7,
    })
    .unwrap();
    let findings = after.restore(&[a.clone(), b.clone()]);
    let v6 = &a.spec.cluster_ips[1];
    assert_eq!(
        findings,
        vec![format!(
            "the cluster IP {v6}(IPv6) for service a/default is of ip family that is no longer configured on cluster; please recreate"
        )]
    );
    assert_eq!(used(&after, Family::IPv4), 2);
    // The names are known again.
    assert_eq!(
        after.create("default", &make("b")).unwrap_err().reason,
        "AlreadyExists"
    );
    let np = a.spec.ports[0].node_port.unwrap();
    let detailed = narrow.restore_detailed(std::slice::from_ref(&a));
    let ports: Vec<(&str, String)> = detailed
        .iter()
        .filter(|f| f.reason.starts_with("Port"))
        .map(|f| (f.reason, f.log.clone()))
        .collect();
    assert_eq!(
        ports,
        vec![(
            "PortOutOfRange",
            format!(
                "the port {np} for service a/default is not within the port range 31000-31001; please recreate"
            )
        )]
    );
    // Out of a narrower IPv4 range.
    let mut small = api_with(33, vec!["10.0.0.0/24".parse().unwrap()], true);
    let c = before
        .create("default", &make("c").cluster_ips(&["10.0.9.9"]))
        .unwrap();
    assert_eq!(
        small.restore(&[c]),
        vec!["the cluster IP [IPv4]:10.0.9.9 for service c/default is not within the service CIDR 10.0.0.0/24; please recreate".to_string()]
    );
}

#[test]
fn read_after_upgrade_fills_dual_stack_fields() {
    let mut old = api_with(19, cidrs("singlestack:v4"), false);
    let s = old.create("default", &make("web")).unwrap();
    let mut new = api("singlestack:v4");
    assert!(new.restore(std::slice::from_ref(&s)).is_empty());
    let view = new.read(&s);
    assert_eq!(
        view.spec.cluster_ips,
        vec![s.spec.cluster_ip.clone().unwrap()]
    );
    assert_eq!(fams(&view), ["IPv4"]);
    assert_eq!(view.spec.ip_family_policy.as_deref(), Some("SingleStack"));
    // An update of such a Service works on the read view.
    let upd = new.apply_update(&s, None, &make("web")).unwrap();
    assert_eq!(upd.spec.cluster_ip, s.spec.cluster_ip);
}

// -------------------------------------------------------------------------------------------
// Field error rendering

#[test]
fn field_error_rendering() {
    use field::{BadValue, FieldError};
    let cases: Vec<(FieldError, &str)> = vec![
        (
            FieldError::required("spec.clusterIPs", ""),
            "spec.clusterIPs: Required value",
        ),
        (
            FieldError::invalid("spec.ipFamilyPolicy", BadValue::Null, "must be set"),
            "spec.ipFamilyPolicy: Invalid value: null: must be set",
        ),
        (
            FieldError::invalid(
                "x",
                BadValue::Strings(Some(vec!["10.0.0.1".into(), "2000::1".into()])),
                "d",
            ),
            r#"x: Invalid value: []string{"10.0.0.1", "2000::1"}: d"#,
        ),
        (
            FieldError::invalid("x", BadValue::Strings(None), "d"),
            "x: Invalid value: []string(nil): d",
        ),
        (
            FieldError::invalid("x", BadValue::Families(Some(vec!["IPv4".into()])), "d"),
            r#"x: Invalid value: []core.IPFamily{"IPv4"}: d"#,
        ),
        (
            FieldError::invalid("x", BadValue::Int(30080), "d"),
            "x: Invalid value: 30080: d",
        ),
        (
            FieldError::not_supported(
                "spec.ipFamilies[0]",
                BadValue::Str("IPv5".into()),
                &["IPv4", "IPv6"],
            ),
            r#"spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6""#,
        ),
        (
            FieldError::duplicate("spec.ipFamilies[1]", BadValue::Str("IPv4".into())),
            r#"spec.ipFamilies[1]: Duplicate value: "IPv4""#,
        ),
        (
            FieldError::forbidden("spec.x", "nope"),
            "spec.x: Forbidden: nope",
        ),
        (
            FieldError::invalid("x", BadValue::Str("a\"b\\c\n".into()), "d"),
            r#"x: Invalid value: "a\"b\\c\n": d"#,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.message(), want);
    }
    // Duplicates collapse; several errors are bracketed.
    let e = FieldError::forbidden("spec.x", "nope");
    assert_eq!(
        ApiError::invalid("s", &[e.clone(), e.clone()]).message,
        r#"Service "s" is invalid: spec.x: Forbidden: nope"#
    );
    let e2 = FieldError::forbidden("spec.y", "no");
    assert_eq!(
        ApiError::invalid("s", &[e, e2]).message,
        r#"Service "s" is invalid: [spec.x: Forbidden: nope, spec.y: Forbidden: no]"#
    );
}

#[test]
fn general_validation_word_for_word() {
    let mut bad_port = make("web");
    bad_port.spec.ports[0].port = 0;
    let two_unnamed = make("web").ports(vec![port(None, 80, 80, None), port(None, 81, 81, None)]);
    let rows: Vec<(objects::Service, &str)> = vec![
        (
            make("Web_1"),
            r#"Service "Web_1" is invalid: metadata.name: Invalid value: "Web_1": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#,
        ),
        (
            bad_port,
            r#"Service "web" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"#,
        ),
        (
            two_unnamed,
            r#"Service "web" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]"#,
        ),
        (
            make("web").type_("Mystery"),
            r#"Service "web" is invalid: spec.type: Unsupported value: "Mystery": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
        ),
        (
            make("web").type_("NodePort").headless(),
            r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services"#,
        ),
        (
            make("web").ports(vec![
                port(Some("a"), 80, 80, None),
                port(Some("b"), 80, 8080, None),
            ]),
            r#"Service "web" is invalid: spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}"#,
        ),
    ];
    for (req, want) in rows {
        let mut api = api("singlestack:v4");
        let err = api.create("default", &req).unwrap_err();
        assert_eq!(err.message, want);
    }
}

#[test]
fn type_change_by_version() {
    // NodePort -> ClusterIP with kubectl apply: the live node port is sent back. 1.16–1.19
    // reject it; from 1.20 the server wipes it (`dropTypeDependentFields`).
    for (version, want) in [
        (
            19,
            Err(
                r#"Service "web" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"#,
            ),
        ),
        (20, Ok(())),
        (33, Ok(())),
    ] {
        let mut api = api_with(version, cidrs("singlestack:v4"), false);
        let m1 = manifest("web").type_("NodePort");
        let live = api.create("default", &m1).unwrap();
        let got = api.apply_update(&live, Some(&m1), &manifest("web"));
        match (got, want) {
            (Ok(s), Ok(())) => {
                assert_eq!(s.spec.ports[0].node_port, None, "1.{version}");
                assert_eq!(api.node_port_allocator().used(), 0, "1.{version}");
            }
            (Err(e), Err(msg)) => {
                assert_eq!(e.message, msg, "1.{version}");
                assert_eq!(api.node_port_allocator().used(), 1, "1.{version}");
            }
            (got, want) => panic!("1.{version}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn legacy_apply_upgrade_and_downgrade() {
    let mut api = api_with(21, cidrs("dualstack:v6v4"), true);
    let m1 = manifest("web");
    let live = api.create("default", &m1).unwrap();
    assert_eq!(fams(&live), ["IPv6"]);
    let m2 = manifest("web").policy("PreferDualStack");
    let up = api.apply_update(&live, Some(&m1), &m2).unwrap();
    assert_eq!(fams(&up), ["IPv6", "IPv4"]);
    prove_cluster_ips_allocated(&api, &up);
    // `trimFieldsForDualStackDowngrade`: SingleStack drops the secondary.
    let m3 = manifest("web").policy("SingleStack");
    let down = api.apply_update(&up, Some(&m2), &m3).unwrap();
    assert_eq!(fams(&down), ["IPv6"]);
    assert_eq!(down.spec.cluster_ips, vec![up.spec.cluster_ips[0].clone()]);
    assert_eq!(used(&api, Family::IPv4), 0);
}

#[test]
fn external_traffic_policy_defaults_and_validation_by_version() {
    // A ClusterIP Service with external IPs is externally accessible from 1.29 (#119150).
    for (version, want) in [(26, None), (28, None), (29, Some("Cluster"))] {
        let mut api = api_with(version, cidrs("singlestack:v4"), true);
        let mut m = manifest("web");
        m.spec.external_ips = vec![sp("192.0.2.10".to_string())];
        let s = api.create("default", &m).unwrap();
        assert_eq!(
            s.spec.external_traffic_policy.as_deref(),
            want,
            "1.{version}"
        );
    }
    for (version, want) in [
        (
            26,
            r#"Service "web" is invalid: spec.externalTrafficPolicy: Invalid value: "Sometimes": ExternalTrafficPolicy must be empty, Cluster or Local"#,
        ),
        (
            27,
            r#"Service "web" is invalid: spec.externalTrafficPolicy: Unsupported value: "Sometimes": supported values: "Cluster", "Local""#,
        ),
    ] {
        let mut api = api_with(version, cidrs("singlestack:v4"), true);
        let err = api
            .create(
                "default",
                &manifest("web").type_("NodePort").etp("Sometimes"),
            )
            .unwrap_err();
        assert_eq!(err.message, want, "1.{version}");
    }
    // `externalTrafficPolicy: Local` on a ClusterIP Service with external IPs: the wording
    // of each era (the 1.28 one is quoted in kubernetes/kubernetes#119150).
    for (version, want) in [
        (
            26,
            Some(
                r#"Service "web" is invalid: spec.externalTrafficPolicy: Invalid value: "Local": ExternalTrafficPolicy can only be set on NodePort and LoadBalancer service"#,
            ),
        ),
        (
            28,
            Some(
                r#"Service "web" is invalid: spec.externalTrafficPolicy: Invalid value: "Local": may only be set when `type` is 'NodePort' or 'LoadBalancer'"#,
            ),
        ),
        (29, None),
    ] {
        let mut api = api_with(version, cidrs("singlestack:v4"), true);
        let mut m = manifest("web").etp("Local");
        m.spec.external_ips = vec![sp("192.0.2.10".to_string())];
        let got = api.create("default", &m);
        match want {
            Some(want) => assert_eq!(got.unwrap_err().message, want, "1.{version}"),
            None => assert_eq!(
                got.unwrap().spec.external_traffic_policy.as_deref(),
                Some("Local")
            ),
        }
    }
    let mut api = api("singlestack:v4");
    let err = api
        .create("default", &manifest("web").etp("Local"))
        .unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "web" is invalid: spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services"#
    );
    let mut m = manifest("web");
    m.spec.external_ips = vec![sp("127.0.0.1".to_string())];
    let err = api.create("default", &m).unwrap_err();
    assert_eq!(
        err.message,
        r#"Service "web" is invalid: spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
    );
}

#[test]
fn legacy_ip_family_is_not_a_field_from_1_20() {
    // From 1.20 `spec.ipFamily` no longer exists: the server drops it (the lead warns), so an
    // IPv6 request on a v4-first dual-stack cluster still gets the primary family.
    for version in [20, 23, 30] {
        let mut api = api_with(version, cidrs("dualstack:v4v6"), true);
        let mut m = manifest("web");
        m.legacy_ip_family = Some(sp("IPv6".to_string()));
        let s = api.create("default", &m).unwrap();
        assert_eq!(s.spec.ip_family, None, "1.{version}");
        assert_eq!(fams(&s), ["IPv4"], "1.{version}");
    }
}
