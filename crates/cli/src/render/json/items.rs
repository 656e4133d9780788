//! Direct JSON writers for pods and EndpointSlices, the two kinds that make up nine tenths of
//! a large state document (as in the YAML writer's `items`). They write the text serde_json
//! writes for an item of a top-level entry's array (the item's `{` at level 2, four spaces
//! in), field by field in declaration order with the same skipping, but with the constant
//! parts as whole strings and without serde's call per field. Every field is named in a
//! destructuring pattern, so a field added to a type does not compile here until it is
//! written. Rare parts (annotations, node selectors, conditions, the address type) and shared
//! parts (labels, containers, owner references: rendered once per buffer) go through the serde
//! path at the same place.
//!
//! `parallel_json_writer_matches_serde_json` (cli tests) compares the whole document with
//! serde_json's on every bundled scenario, and the tests below compare objects with every
//! optional part and text that needs escapes.

use std::net::IpAddr;

use knetsim_control::state::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, ObjectMeta, Pod, PodSpec, PodStatus,
    TargetRef, ip_text,
};
use serde::Serialize;

use super::{Error, Ser, shared};

/// An item of a top-level entry's array ([`super::Root::seq_par`]).
pub(crate) trait RootItem: Serialize + Sync {
    /// Writes the item from its `{` to its `}` (the separator and indentation before it are
    /// written by the caller), as serde_json writes an item at level 2.
    fn render_item(&self, s: &mut Ser) -> Result<(), Error> {
        self.serialize(s)
    }
}

impl RootItem for knetsim_control::state::Node {}
impl RootItem for knetsim_control::state::Service {}

/// The entries of one object at level 4 (eight spaces in: the objects inside a pod or an
/// EndpointSlice); its `{` is written when it is made.
struct Obj {
    count: usize,
}

/// Writes the start of the next entry of an [`Obj`], up to and including `"key": `, as one
/// constant string. `key` is a Rust field name (camelCased), which needs no escapes.
macro_rules! key {
    ($o:expr, $s:expr, $key:literal) => {{
        $s.out.push_str(if $o.count == 0 {
            concat!("\n        \"", $key, "\": ")
        } else {
            concat!(",\n        \"", $key, "\": ")
        });
        $o.count += 1;
    }};
}

impl Obj {
    const LEVEL: usize = 4;

    fn open(s: &mut Ser) -> Self {
        s.out.push('{');
        Obj { count: 0 }
    }

    fn end(self, s: &mut Ser) {
        s.out
            .push_str(if self.count > 0 { "\n      }" } else { "}" });
    }

    /// A value the serde path writes, after its key.
    fn serde<T: Serialize + ?Sized>(&self, s: &mut Ser, v: &T) -> Result<(), Error> {
        s.level = Self::LEVEL;
        v.serialize(&mut *s)
    }

    /// A shared value (see [`knetsim_control::state::SHARED`]), after its key.
    fn shared<T: Serialize + ?Sized>(&self, s: &mut Ser, v: &T) -> Result<(), Error> {
        s.level = Self::LEVEL;
        shared(s, v)
    }
}

/// An address in quotes: its text never needs escapes.
fn address(s: &mut Ser, ip: &IpAddr) {
    let mut buf = [0u8; 45];
    let (text, _) = ip_text(ip, &mut buf);
    s.out.push('"');
    s.out.push_str(text);
    s.out.push('"');
}

fn bool_text(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

/// `metadata` at level 3 (its entries at 4).
fn metadata(s: &mut Ser, m: &ObjectMeta) -> Result<(), Error> {
    let ObjectMeta {
        name,
        namespace,
        labels,
        annotations,
        owner_references,
    } = m;
    let mut o = Obj::open(s);
    key!(o, s, "name");
    s.string(name);
    if let Some(ns) = namespace {
        key!(o, s, "namespace");
        s.string(ns);
    }
    if !labels.is_empty() {
        key!(o, s, "labels");
        o.shared(s, &**labels)?;
    }
    if !annotations.is_empty() {
        key!(o, s, "annotations");
        o.serde(s, annotations)?;
    }
    if !owner_references.is_empty() {
        key!(o, s, "ownerReferences");
        o.shared(s, &**owner_references)?;
    }
    o.end(s);
    Ok(())
}

impl RootItem for Pod {
    fn render_item(&self, s: &mut Ser) -> Result<(), Error> {
        let Pod {
            api_version,
            kind,
            metadata: meta,
            spec,
            status,
            sim: _,
        } = self;
        s.out.push_str("{\n      \"apiVersion\": ");
        s.string(api_version);
        s.out.push_str(",\n      \"kind\": ");
        s.string(kind);
        s.out.push_str(",\n      \"metadata\": ");
        metadata(s, meta)?;
        s.out.push_str(",\n      \"spec\": ");
        pod_spec(s, spec)?;
        s.out.push_str(",\n      \"status\": ");
        pod_status(s, status)?;
        s.out.push_str("\n    }");
        Ok(())
    }
}

fn pod_spec(s: &mut Ser, spec: &PodSpec) -> Result<(), Error> {
    let PodSpec {
        node_name,
        host_network,
        node_selector,
        containers,
    } = spec;
    let mut o = Obj::open(s);
    if let Some(n) = node_name {
        key!(o, s, "nodeName");
        s.string(n);
    }
    if *host_network {
        key!(o, s, "hostNetwork");
        s.out.push_str("true");
    }
    if !node_selector.is_empty() {
        key!(o, s, "nodeSelector");
        o.serde(s, node_selector)?;
    }
    if !containers.is_empty() {
        key!(o, s, "containers");
        o.shared(s, &**containers)?;
    }
    o.end(s);
    Ok(())
}

fn pod_status(s: &mut Ser, status: &PodStatus) -> Result<(), Error> {
    let PodStatus {
        phase,
        conditions,
        host_ip,
        host_ips,
        pod_ip,
        pod_ips,
    } = status;
    let mut o = Obj::open(s);
    key!(o, s, "phase");
    s.string(phase);
    if !conditions.is_empty() {
        key!(o, s, "conditions");
        o.serde(s, conditions)?;
    }
    // `[{"ip": …}, …]`: the items at level 5, their entry at 6.
    let ip_items = |s: &mut Ser, ips: &[IpAddr]| {
        s.out.push('[');
        for (i, ip) in ips.iter().enumerate() {
            s.out.push_str(if i == 0 {
                "\n          {\n            \"ip\": "
            } else {
                ",\n          {\n            \"ip\": "
            });
            address(s, ip);
            s.out.push_str("\n          }");
        }
        s.out.push_str("\n        ]");
    };
    if let Some(ip) = host_ip {
        key!(o, s, "hostIP");
        address(s, ip);
    }
    if !host_ips.is_empty() {
        key!(o, s, "hostIPs");
        ip_items(s, host_ips);
    }
    if let Some(ip) = pod_ip {
        key!(o, s, "podIP");
        address(s, ip);
    }
    if !pod_ips.is_empty() {
        key!(o, s, "podIPs");
        ip_items(s, pod_ips);
    }
    o.end(s);
    Ok(())
}

impl RootItem for EndpointSlice {
    fn render_item(&self, s: &mut Ser) -> Result<(), Error> {
        let EndpointSlice {
            api_version,
            kind,
            metadata: meta,
            address_type,
            endpoints,
            ports,
        } = self;
        s.out.push_str("{\n      \"apiVersion\": ");
        s.string(api_version);
        s.out.push_str(",\n      \"kind\": ");
        s.string(kind);
        s.out.push_str(",\n      \"metadata\": ");
        metadata(s, meta)?;
        s.out.push_str(",\n      \"addressType\": ");
        s.level = 3;
        address_type.serialize(&mut *s)?;
        s.out.push_str(",\n      \"endpoints\": ");
        if endpoints.is_empty() {
            s.out.push_str("[]");
        } else {
            s.out.push('[');
            for (i, e) in endpoints.iter().enumerate() {
                s.out.push_str(if i == 0 { "\n" } else { ",\n" });
                endpoint(s, e);
            }
            s.out.push_str("\n      ]");
        }
        s.out.push_str(",\n      \"ports\": ");
        if ports.is_empty() {
            s.out.push_str("[]");
        } else {
            s.out.push('[');
            for (i, p) in ports.iter().enumerate() {
                s.out.push_str(if i == 0 { "\n" } else { ",\n" });
                endpoint_port(s, p);
            }
            s.out.push_str("\n      ]");
        }
        s.out.push_str("\n    }");
        Ok(())
    }
}

/// One item of `endpoints` (at level 4, its entries at 5).
fn endpoint(s: &mut Ser, e: &Endpoint) {
    let Endpoint {
        addresses,
        conditions,
        node_name,
        target_ref,
    } = e;
    s.out.push_str("        {\n          \"addresses\": ");
    if addresses.is_empty() {
        s.out.push_str("[]");
    } else {
        s.out.push('[');
        for (i, ip) in addresses.iter().enumerate() {
            s.out.push_str(if i == 0 {
                "\n            "
            } else {
                ",\n            "
            });
            address(s, ip);
        }
        s.out.push_str("\n          ]");
    }
    let EndpointConditions {
        ready,
        serving,
        terminating,
    } = conditions;
    s.out
        .push_str(",\n          \"conditions\": {\n            \"ready\": ");
    s.out.push_str(bool_text(*ready));
    s.out.push_str(",\n            \"serving\": ");
    s.out.push_str(bool_text(*serving));
    s.out.push_str(",\n            \"terminating\": ");
    s.out.push_str(bool_text(*terminating));
    s.out.push_str("\n          }");
    if let Some(n) = node_name {
        s.out.push_str(",\n          \"nodeName\": ");
        s.string(n);
    }
    if let Some(TargetRef {
        kind,
        namespace,
        name,
    }) = target_ref
    {
        s.out
            .push_str(",\n          \"targetRef\": {\n            \"kind\": ");
        s.string(kind);
        s.out.push_str(",\n            \"namespace\": ");
        s.string(namespace);
        s.out.push_str(",\n            \"name\": ");
        s.string(name);
        s.out.push_str("\n          }");
    }
    s.out.push_str("\n        }");
}

/// One item of `ports` (at level 4, its entries at 5).
fn endpoint_port(s: &mut Ser, p: &EndpointPort) {
    let EndpointPort {
        name,
        port,
        protocol,
    } = p;
    s.out.push_str("        {\n          ");
    if let Some(n) = name {
        s.out.push_str("\"name\": ");
        s.string(n);
        s.out.push_str(",\n          ");
    }
    s.out.push_str("\"port\": ");
    super::super::yaml::push_int(&mut s.out, u128::from(*port), false);
    s.out.push_str(",\n          \"protocol\": ");
    s.string(protocol);
    s.out.push_str("\n        }");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use knetsim_control::state::{Condition, Container, ContainerPort, IpList, OwnerReference};

    use super::*;

    /// serde_json's text of `{"items": [...]}`, whose items are at level 2 as in the state
    /// document, against the direct writer's between the same brackets.
    fn check<T: RootItem>(items: &[&T]) {
        #[derive(Serialize)]
        struct Doc<'a, T> {
            items: &'a [&'a T],
        }
        let want = serde_json::to_string_pretty(&Doc { items }).expect("serde_json");
        let mut s = Ser::with_capacity(0);
        s.out.push_str("{\n  \"items\": [");
        for (i, item) in items.iter().enumerate() {
            s.level = 2;
            s.entry_start(i == 0);
            item.render_item(&mut s).expect("direct path");
        }
        s.out.push_str("\n  ]\n}");
        assert_eq!(s.out, want);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn meta(name: &str, namespace: Option<&str>, full: bool) -> ObjectMeta {
        let mut m = ObjectMeta {
            name: name.into(),
            namespace: namespace.map(Into::into),
            ..Default::default()
        };
        if full {
            m.labels = BTreeMap::from([
                ("app".to_string(), "web \"x\"".to_string()),
                ("tab\t".to_string(), "\u{1}".to_string()),
            ])
            .into();
            m.annotations = BTreeMap::from([("note".to_string(), "a\\b\n".to_string())]);
            m.owner_references = vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web-1".into(),
                controller: true,
            }]
            .into();
        }
        m
    }

    #[test]
    fn pods_as_serde_json_writes_them() {
        let bare = Pod {
            api_version: "v1",
            kind: "Pod",
            metadata: meta("bare", None, false),
            spec: PodSpec::default(),
            status: PodStatus {
                phase: "Pending",
                ..Default::default()
            },
            sim: Default::default(),
        };
        let mut full = bare.clone();
        full.metadata = meta("\"quoted\"", Some("ns\n1"), true);
        full.spec = PodSpec {
            node_name: Some("node\\1".into()),
            host_network: true,
            node_selector: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
            containers: vec![Container {
                name: "web".into(),
                ports: vec![ContainerPort {
                    name: None,
                    container_port: 80,
                    protocol: "TCP".into(),
                }],
            }]
            .into(),
        };
        full.status = PodStatus {
            phase: "Running",
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: None,
                message: Some("ok".into()),
            }],
            host_ip: Some(ip("fd00::")),
            host_ips: [ip("fd00::"), ip("10.0.0.1")].into_iter().collect(),
            pod_ip: Some(ip("::ffff:10.0.0.9")),
            pod_ips: [ip("1:2:3:4:5:6:7:8"), ip("10.1.0.2")]
                .into_iter()
                .collect(),
        };
        // One address each, and a spec whose only part is the node name.
        let mut one = bare.clone();
        one.spec.node_name = Some("n".into());
        one.status.host_ips = IpList::one(ip("10.0.0.1"));
        one.status.pod_ips = IpList::one(ip("::"));
        let mut shared = full.clone();
        shared.metadata.name = "second".into();
        check(&[&bare]);
        check(&[&bare, &full, &shared, &one, &bare]);
    }

    #[test]
    fn endpoint_slices_as_serde_json_writes_them() {
        let empty = EndpointSlice {
            api_version: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: meta("empty", Some("default"), false),
            address_type: knetsim_ipam::Family::IPv6,
            endpoints: vec![],
            ports: vec![],
        };
        let mut full = empty.clone();
        full.metadata = meta("null", Some("ns-1"), true);
        full.endpoints = vec![
            Endpoint {
                addresses: IpList::one(ip("fd00::1")),
                conditions: EndpointConditions {
                    ready: false,
                    serving: true,
                    terminating: true,
                },
                node_name: Some("node-1".into()),
                target_ref: Some(TargetRef {
                    kind: "Pod",
                    namespace: "ns-1".into(),
                    name: "\"~\"".into(),
                }),
            },
            Endpoint {
                addresses: IpList::new(),
                conditions: EndpointConditions {
                    ready: true,
                    serving: true,
                    terminating: false,
                },
                node_name: None,
                target_ref: None,
            },
            Endpoint {
                addresses: [ip("::"), ip("10.0.0.1")].into_iter().collect(),
                conditions: EndpointConditions {
                    ready: true,
                    serving: false,
                    terminating: false,
                },
                node_name: Some("#1\u{7}".into()),
                target_ref: None,
            },
        ];
        full.ports = vec![
            EndpointPort {
                name: Some("http".into()),
                port: 80,
                protocol: "TCP".into(),
            },
            EndpointPort {
                name: None,
                port: 65535,
                protocol: "SCTP".into(),
            },
            EndpointPort {
                name: Some("\\".into()),
                port: 0,
                protocol: "on".into(),
            },
        ];
        check(&[&empty]);
        check(&[&empty, &full, &empty, &full]);
    }
}
