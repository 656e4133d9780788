//! Direct writers for the two kinds that make up nine tenths of a large state document: pods
//! and EndpointSlices (150,000 and 20,000 of them, 8 million lines, at Kubernetes' published
//! limits). They write the text the serde path writes, field by field in declaration order,
//! with the same skipping and quoting rules, but with the constant parts of each object as
//! whole lines and without serde's call per field. Every field is named in a destructuring
//! pattern, so a field added to a type does not compile here until it is written. Rare parts
//! (annotations, node selectors, conditions) and shared parts (labels, containers, owner
//! references: rendered once per buffer) go through the serde path at the same place.
//!
//! `parallel_state_writer_matches_the_serde_path` (cli tests) compares the two on every
//! bundled scenario, and the tests below on objects with every optional part and with text
//! that needs quotes.

use std::net::IpAddr;

use knetsim_control::state::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, ObjectMeta, Pod, PodSpec, PodStatus,
    TargetRef, ip_text,
};
use serde::Serialize;

use super::{Ctx, Emit, Error, Ser, shared};

/// An item of a root-level sequence ([`super::write_root_seq_par`]).
pub(crate) trait RootItem: Serialize + Sync {
    /// Writes the item, from its `- ` to its last line's newline, as the serde path writes an
    /// item of a root-level sequence.
    fn render_item(&self, s: &mut Ser<'_>) -> Result<(), Error> {
        s.out.push_str("- ");
        self.serialize(Emit {
            s,
            ctx: Ctx::SeqItem { indent: 0 },
        })
    }
}

impl RootItem for knetsim_control::state::Node {}
impl RootItem for knetsim_control::state::Service {}

/// The entries of one block mapping being written: the first one starts on a new line (its
/// key was just written, `key:`), an empty one is `{}`.
struct Block {
    indent: usize,
    count: usize,
}

impl Block {
    fn new(indent: usize) -> Self {
        Block { indent, count: 0 }
    }

    /// Writes the start of the next entry, up to and including `key:`. `key` is a Rust field
    /// name (camelCased), which needs no quotes.
    fn key(&mut self, s: &mut Ser<'_>, key: &'static str) {
        if self.count == 0 {
            s.out.push('\n');
        }
        s.pad(self.indent);
        s.out.push_str(key);
        s.out.push(':');
        self.count += 1;
    }

    fn end(self, s: &mut Ser<'_>) {
        if self.count == 0 {
            s.out.push_str(" {}\n");
        }
    }

    /// A value the serde path writes, after its key.
    fn serde<T: Serialize + ?Sized>(&self, s: &mut Ser<'_>, v: &T) -> Result<(), Error> {
        v.serialize(Emit {
            s,
            ctx: Ctx::MapValue {
                indent: self.indent,
            },
        })
    }

    /// A shared value (see [`knetsim_control::state::SHARED`]), after its key.
    fn shared<T: Serialize + ?Sized>(&self, s: &mut Ser<'_>, v: &T) -> Result<(), Error> {
        shared(
            s,
            Ctx::MapValue {
                indent: self.indent,
            },
            v,
        )
    }
}

/// ` value` and the line's end, after a key: a string scalar.
fn string(s: &mut Ser<'_>, v: &str) {
    s.out.push(' ');
    s.push_str_scalar(v);
    s.out.push('\n');
}

/// An address as the serde path writes it (`fast_ip`), without the space or newline.
fn address(s: &mut Ser<'_>, ip: &IpAddr) {
    let mut buf = [0u8; 45];
    let (text, plain) = ip_text(ip, &mut buf);
    if plain {
        s.out.push_str(text);
    } else {
        s.push_str_scalar(text);
    }
}

fn bool_text(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

/// `metadata`'s entries, at indent 4 (the metadata of a root-level sequence's item).
fn metadata(s: &mut Ser<'_>, m: &ObjectMeta) -> Result<(), Error> {
    let ObjectMeta {
        name,
        namespace,
        labels,
        annotations,
        owner_references,
    } = m;
    let mut b = Block::new(4);
    b.key(s, "name");
    string(s, name);
    if let Some(ns) = namespace {
        b.key(s, "namespace");
        string(s, ns);
    }
    if !labels.is_empty() {
        b.key(s, "labels");
        b.shared(s, &**labels)?;
    }
    if !annotations.is_empty() {
        b.key(s, "annotations");
        b.serde(s, annotations)?;
    }
    if !owner_references.is_empty() {
        b.key(s, "ownerReferences");
        b.shared(s, &**owner_references)?;
    }
    b.end(s);
    Ok(())
}

impl RootItem for Pod {
    fn render_item(&self, s: &mut Ser<'_>) -> Result<(), Error> {
        let Pod {
            api_version,
            kind,
            metadata: meta,
            spec,
            status,
            sim: _,
        } = self;
        let mut top = Block::new(2);
        s.out.push_str("- apiVersion:");
        top.count = 1;
        string(s, api_version);
        top.key(s, "kind");
        string(s, kind);
        top.key(s, "metadata");
        metadata(s, meta)?;
        top.key(s, "spec");
        pod_spec(s, spec)?;
        top.key(s, "status");
        pod_status(s, status)?;
        Ok(())
    }
}

fn pod_spec(s: &mut Ser<'_>, spec: &PodSpec) -> Result<(), Error> {
    let PodSpec {
        node_name,
        host_network,
        node_selector,
        containers,
    } = spec;
    let mut b = Block::new(4);
    if let Some(n) = node_name {
        b.key(s, "nodeName");
        string(s, n);
    }
    if *host_network {
        b.key(s, "hostNetwork");
        s.out.push_str(" true\n");
    }
    if !node_selector.is_empty() {
        b.key(s, "nodeSelector");
        b.serde(s, node_selector)?;
    }
    if !containers.is_empty() {
        b.key(s, "containers");
        b.shared(s, &**containers)?;
    }
    b.end(s);
    Ok(())
}

fn pod_status(s: &mut Ser<'_>, status: &PodStatus) -> Result<(), Error> {
    let PodStatus {
        phase,
        conditions,
        host_ip,
        host_ips,
        pod_ip,
        pod_ips,
    } = status;
    let mut b = Block::new(4);
    b.key(s, "phase");
    string(s, phase);
    if !conditions.is_empty() {
        b.key(s, "conditions");
        b.serde(s, conditions)?;
    }
    // `{ip: …}` items of a sequence inside a mapping at indent 4 (kubectl's layout: the
    // dashes line up with the key).
    let ip_items = |s: &mut Ser<'_>, ips: &[IpAddr]| {
        s.out.push('\n');
        for ip in ips {
            s.out.push_str("    - ip: ");
            address(s, ip);
            s.out.push('\n');
        }
    };
    for (one, one_key, list, list_key) in [
        (host_ip, "hostIP", host_ips, "hostIPs"),
        (pod_ip, "podIP", pod_ips, "podIPs"),
    ] {
        if let Some(ip) = one {
            b.key(s, one_key);
            s.out.push(' ');
            address(s, ip);
            s.out.push('\n');
        }
        if !list.is_empty() {
            b.key(s, list_key);
            ip_items(s, list);
        }
    }
    b.end(s);
    Ok(())
}

impl RootItem for EndpointSlice {
    fn render_item(&self, s: &mut Ser<'_>) -> Result<(), Error> {
        let EndpointSlice {
            api_version,
            kind,
            metadata: meta,
            address_type,
            endpoints,
            ports,
        } = self;
        let mut top = Block::new(2);
        s.out.push_str("- apiVersion:");
        top.count = 1;
        string(s, api_version);
        top.key(s, "kind");
        string(s, kind);
        top.key(s, "metadata");
        metadata(s, meta)?;
        top.key(s, "addressType");
        top.serde(s, address_type)?;
        top.key(s, "endpoints");
        if endpoints.is_empty() {
            s.out.push_str(" []\n");
        } else {
            s.out.push('\n');
            for e in endpoints {
                endpoint(s, e);
            }
        }
        top.key(s, "ports");
        if ports.is_empty() {
            s.out.push_str(" []\n");
        } else {
            s.out.push('\n');
            for p in ports {
                endpoint_port(s, p);
            }
        }
        Ok(())
    }
}

/// One item of `endpoints` (a sequence at indent 2, its entries at 4).
fn endpoint(s: &mut Ser<'_>, e: &Endpoint) {
    let Endpoint {
        addresses,
        conditions,
        node_name,
        target_ref,
    } = e;
    s.out.push_str("  - addresses:");
    if addresses.is_empty() {
        s.out.push_str(" []\n");
    } else {
        s.out.push('\n');
        for ip in addresses {
            s.out.push_str("    - ");
            address(s, ip);
            s.out.push('\n');
        }
    }
    let EndpointConditions {
        ready,
        serving,
        terminating,
    } = conditions;
    s.out.push_str("    conditions:\n      ready: ");
    s.out.push_str(bool_text(*ready));
    s.out.push_str("\n      serving: ");
    s.out.push_str(bool_text(*serving));
    s.out.push_str("\n      terminating: ");
    s.out.push_str(bool_text(*terminating));
    s.out.push('\n');
    if let Some(n) = node_name {
        s.out.push_str("    nodeName:");
        string(s, n);
    }
    if let Some(TargetRef {
        kind,
        namespace,
        name,
    }) = target_ref
    {
        s.out.push_str("    targetRef:\n      kind:");
        string(s, kind);
        s.out.push_str("      namespace:");
        string(s, namespace);
        s.out.push_str("      name:");
        string(s, name);
    }
}

/// One item of `ports` (a sequence at indent 2, its entries at 4).
fn endpoint_port(s: &mut Ser<'_>, p: &EndpointPort) {
    let EndpointPort {
        name,
        port,
        protocol,
    } = p;
    s.out.push_str("  - ");
    if let Some(n) = name {
        s.out.push_str("name:");
        string(s, n);
        s.out.push_str("    ");
    }
    s.out.push_str("port: ");
    super::push_int(&mut s.out, u128::from(*port), false);
    s.out.push_str("\n    protocol:");
    string(s, protocol);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use knetsim_control::state::{Condition, Container, ContainerPort, IpList, OwnerReference};

    use super::*;

    fn serde_text<T: Serialize>(items: &[&T]) -> String {
        super::super::to_string(items).expect("serde path")
    }

    fn direct_text<T: RootItem>(items: &[&T]) -> String {
        let mut s = Ser {
            out: String::new(),
            scratch: String::new(),
            sink: None,
            shared: Default::default(),
            verbatim: false,
        };
        for item in items {
            item.render_item(&mut s).expect("direct path");
        }
        s.out
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
                ("app".to_string(), "web".to_string()),
                ("yes".to_string(), "no".to_string()),
            ])
            .into();
            m.annotations = BTreeMap::from([("note".to_string(), "a: b".to_string())]);
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
    fn pods_as_the_serde_path_writes_them() {
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
        full.metadata = meta("123", Some("true"), true);
        full.spec = PodSpec {
            node_name: Some("node: 1".into()),
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
        let mut shared = full.clone();
        shared.metadata.name = "second".into();
        let pods = [&bare, &full, &shared, &bare];
        assert_eq!(direct_text(&pods), serde_text(&pods));
    }

    #[test]
    fn endpoint_slices_as_the_serde_path_writes_them() {
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
                    name: "~".into(),
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
                node_name: Some("#1".into()),
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
                name: Some("".into()),
                port: 0,
                protocol: "on".into(),
            },
        ];
        let slices = [&empty, &full, &empty];
        assert_eq!(direct_text(&slices), serde_text(&slices));
    }
}
