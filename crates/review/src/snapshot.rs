//! The snapshot: a scenario's routing and allocation state as a reviewer reads it.
//!
//! A snapshot is a list of sections ([`Area`]s, in a fixed order), each a sorted map from an
//! object's name (a node, `namespace/name`, `node/IPv6`, a family) to its facts, each a sorted
//! map from a fact's name to a [`Value`]: one line of text, or a list of lines. This shape is
//! what makes both the file and the diff readable: one fact a line, and every change names its
//! section, its object and its fact.
//!
//! Large clusters (more than [`SUMMARY_PODS`] pods or [`SUMMARY_NODES`] nodes) get the
//! summary form ([`Form::Summary`]): components, capacity and events (counted by reason) as in
//! the full form; each node's podCIDRs on one line; the first node (in name order) in full but
//! for its routes; kube-proxy's mode and egress masquerade; Services, pods, EndpointSlices and
//! the nodes' addresses as counts and a digest of what the full form would record. It does not
//! build the dataplane (unless the scenario asks for matrices or traces): a 150,000-pod
//! cluster's per-pod facts would be a file no reviewer reads, and one node's rules of 10,000
//! Services cost more than the simulation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use knetsim_control::state::{ClusterState, EndpointSlice, NamespacedName, Pod, Service};
use knetsim_dataplane::{Dataplane, EgressMasq};
use knetsim_ipam::Family;
use knetsim_model::{Diagnostic, Scenario};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::queries::{self, Query};

/// Above this many pods a snapshot takes the summary form.
pub const SUMMARY_PODS: usize = 5_000;
/// Above this many nodes a snapshot takes the summary form.
pub const SUMMARY_NODES: usize = 500;

/// A fact: one line, or a list of lines (routes, rules, addresses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Scalar(String),
    List(Vec<String>),
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Scalar(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Scalar(s.to_string())
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::List(v)
    }
}

/// An object's facts, by name.
pub type Object = BTreeMap<String, Value>;
/// A section's objects, by name.
pub type Section = BTreeMap<String, Object>;

/// The sections, in the order a snapshot lists them and a diff reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Area {
    Components,
    Nodes,
    KubeProxy,
    Masquerade,
    Services,
    Pods,
    EndpointSlices,
    Capacity,
    Events,
    Reachability,
    Traces,
}

impl Area {
    pub const ALL: [Area; 11] = [
        Area::Components,
        Area::Nodes,
        Area::KubeProxy,
        Area::Masquerade,
        Area::Services,
        Area::Pods,
        Area::EndpointSlices,
        Area::Capacity,
        Area::Events,
        Area::Reachability,
        Area::Traces,
    ];

    /// The section's key in the file.
    pub fn key(self) -> &'static str {
        match self {
            Area::Components => "components",
            Area::Nodes => "nodes",
            Area::KubeProxy => "kubeProxy",
            Area::Masquerade => "masquerade",
            Area::Services => "services",
            Area::Pods => "pods",
            Area::EndpointSlices => "endpointSlices",
            Area::Capacity => "capacity",
            Area::Events => "events",
            Area::Reachability => "reachability",
            Area::Traces => "traces",
        }
    }

    pub fn from_key(key: &str) -> Option<Area> {
        Area::ALL.into_iter().find(|a| a.key() == key)
    }

    /// What a diff calls the section.
    pub fn title(self) -> &'static str {
        match self {
            Area::Components => "Components",
            Area::Nodes => "Nodes (podCIDRs, addresses, readiness, routes)",
            Area::KubeProxy => "kube-proxy rules (per node and family)",
            Area::Masquerade => "Egress masquerade (per family, the same on every node)",
            Area::Services => "Services",
            Area::Pods => "Pods",
            Area::EndpointSlices => "EndpointSlices",
            Area::Capacity => "Capacity (per family)",
            Area::Events => "Warning events",
            Area::Reachability => "Reachability",
            Area::Traces => "Traces",
        }
    }
}

/// How much a snapshot records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Every object.
    Full,
    /// Counts and digests for Services, pods and EndpointSlices; routes and rules of the first
    /// node only.
    Summary,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Full => "full",
            Form::Summary => "summary",
        }
    }

    pub fn parse(s: &str) -> Option<Form> {
        match s {
            "full" => Some(Form::Full),
            "summary" => Some(Form::Summary),
            _ => None,
        }
    }

    /// The form a cluster of this size gets.
    pub fn for_state(state: &ClusterState) -> Form {
        if state.pods.len() > SUMMARY_PODS || state.nodes.len() > SUMMARY_NODES {
            Form::Summary
        } else {
            Form::Full
        }
    }
}

/// What to record beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Record kube-proxy's rules themselves, not only their counts and digest.
    pub rules: bool,
    /// The form; `None` chooses by the cluster's size ([`Form::for_state`]).
    pub form: Option<Form>,
    /// Questions to answer besides the scenario's own (`knetsim diff --reach`).
    pub extra: Vec<Query>,
}

/// A snapshot of one scenario's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub scenario: String,
    pub kubernetes_version: String,
    pub seed: u64,
    pub form: Form,
    /// Whether kube-proxy's rules are recorded line by line.
    pub rules: bool,
    pub sections: BTreeMap<Area, Section>,
}

impl Snapshot {
    pub fn section(&self, area: Area) -> Option<&Section> {
        self.sections.get(&area)
    }
}

/// A snapshot, and the warnings found while building the dataplane it reads.
#[derive(Debug)]
pub struct Built {
    pub snapshot: Snapshot,
    pub warnings: Vec<Diagnostic>,
}

/// Builds the snapshot of a scenario's simulated state. The dataplane is built from it when
/// the snapshot needs it: for the full form, and for any matrix or trace to answer; the
/// summary form records nothing that needs it otherwise, which keeps a limits-scale snapshot
/// at the cost of the simulation (building the dataplane and one node's rules of a
/// 10,000-Service cluster would more than double it).
///
/// Errors: a malformed `snapshot:` or `fabric:` section. A question that cannot be answered
/// (a name the cluster does not have) is recorded as the question's `error`, so that a change
/// which removes an object shows up in the diff rather than failing it.
pub fn build(
    scenario: &Scenario,
    state: Arc<ClusterState>,
    opts: &Options,
) -> Result<Built, Vec<Diagnostic>> {
    let mut qs = queries::read(scenario)?;
    qs.extend(opts.extra.iter().cloned());
    let form = opts.form.unwrap_or_else(|| Form::for_state(&state));
    let dp = if form == Form::Full || !qs.is_empty() {
        Some(knetsim_dataplane::build(state.clone(), scenario)?)
    } else {
        None
    };
    let dp = dp.as_ref();
    let state = &*state;
    let masq = match dp {
        Some(dp) => dp.masq.clone(),
        None => egress(scenario, state),
    };
    let mut sections = BTreeMap::new();
    sections.insert(Area::Components, components(state));
    sections.insert(Area::Nodes, nodes(state, dp));
    sections.insert(Area::KubeProxy, kube_proxy(state, dp, opts.rules));
    sections.insert(Area::Masquerade, masquerade(state, &masq));
    let lb = |nn: &NamespacedName, s: &Service| -> Vec<IpAddr> {
        match dp {
            Some(dp) => dp.load_balancer_ips().get(nn).cloned().unwrap_or_default(),
            None => s
                .status
                .load_balancer
                .ingress
                .iter()
                .map(|i| i.ip)
                .collect(),
        }
    };
    match form {
        Form::Full => {
            sections.insert(
                Area::Services,
                state
                    .services
                    .iter()
                    .map(|(nn, s)| (nn.to_string(), service(s, &lb(nn, s))))
                    .collect(),
            );
            sections.insert(
                Area::Pods,
                state
                    .pods
                    .iter()
                    .map(|(nn, p)| (nn.to_string(), pod(p)))
                    .collect(),
            );
            sections.insert(Area::EndpointSlices, slices(state));
        }
        Form::Summary => {
            sections.insert(Area::Services, services_summary(state, &lb));
            sections.insert(Area::Pods, pods_summary(state));
            sections.insert(Area::EndpointSlices, slices_summary(state));
        }
    }
    sections.insert(Area::Capacity, capacity(state));
    sections.insert(Area::Events, events(state, form));
    if let Some(dp) = dp {
        let (reach, traces) = answers(state, dp, &qs);
        sections.insert(Area::Reachability, reach);
        sections.insert(Area::Traces, traces);
    }
    sections.retain(|_, s| !s.is_empty());
    Ok(Built {
        snapshot: Snapshot {
            scenario: state.name.clone(),
            kubernetes_version: state.kubernetes_version.to_string(),
            seed: state.seed,
            form,
            rules: opts.rules,
            sections,
        },
        warnings: dp.map(|d| d.warnings.clone()).unwrap_or_default(),
    })
}

/// Who masquerades egress traffic, as the dataplane decides it, without building one.
fn egress(scenario: &Scenario, state: &ClusterState) -> EgressMasq {
    let cni = knetsim_dataplane::Cni::from_scenario(scenario, state);
    let agent = scenario
        .cluster
        .ip_masq_agent
        .as_ref()
        .map(|c| knetsim_dataplane::masq::masq_agent(c).0);
    EgressMasq::new(state, &cni, agent.as_ref())
}

fn put(o: &mut Object, k: &str, v: impl Into<Value>) {
    o.insert(k.to_string(), v.into());
}

fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

/// The first 16 hex digits of a SHA-256: enough to tell that something changed.
fn hex16(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(16);
    for b in &bytes[..8] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn digest_text(text: &str) -> String {
    hex16(&Sha256::digest(text.as_bytes()))
}

/// A digest of many objects' facts (each object's bytes written by `feed`), hashed in
/// fixed-size chunks in parallel and then over the chunks' digests in order: the same
/// whatever the thread count.
fn digest_objects<T: Sync>(items: &[T], feed: impl Fn(&T, &mut Sha256) + Sync) -> String {
    let chunks: Vec<[u8; 32]> = items
        .par_chunks(4096)
        .map(|chunk| {
            let mut h = Sha256::new();
            for item in chunk {
                feed(item, &mut h);
            }
            h.finalize().into()
        })
        .collect();
    let mut h = Sha256::new();
    for c in &chunks {
        h.update(c);
    }
    hex16(&h.finalize())
}

fn components(state: &ClusterState) -> Section {
    state
        .components
        .iter()
        .map(|(name, c)| {
            let mut o = Object::new();
            put(&mut o, "started", c.started.to_string());
            if let Some(m) = &c.message {
                put(&mut o, "message", m.as_str());
            }
            if let Some(ctl) = &c.controller {
                put(&mut o, "controller", ctl.as_str());
            }
            put(
                &mut o,
                "flags",
                strings(c.flags.iter().map(|(k, v)| format!("--{k}={v}"))),
            );
            (name.clone(), o)
        })
        .collect()
}

/// A route table's lines as `knetsim routes` prints them, without its comment lines (the
/// local table's routes say `local` or `broadcast` themselves).
fn route_lines(dp: &Dataplane, node: &str, family: Family) -> Option<Vec<String>> {
    let t = dp.node_routes(node, family)?;
    Some(
        knetsim_dataplane::render_routes(t)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
    )
}

/// Every node's facts. Without the dataplane (the summary form) the first node (in name
/// order) is recorded in full but for its routes, and the others by their podCIDRs on one line
/// each (the fact a mask or CIDR change moves), with their addresses and readiness as counts
/// and a digest under `(all nodes)`.
fn nodes(state: &ClusterState, dp: Option<&Dataplane>) -> Section {
    let first = state.nodes.keys().next();
    let summary = dp.is_none();
    let mut out: Section = state
        .nodes
        .iter()
        .map(|(name, n)| {
            let mut o = Object::new();
            if summary && Some(name) != first {
                put(&mut o, "podCIDRs", strings(&n.spec.pod_cidrs).join(", "));
                return (name.clone(), o);
            }
            put(&mut o, "podCIDRs", strings(&n.spec.pod_cidrs));
            put(&mut o, "addresses", addresses(n));
            put(&mut o, "ready", n.is_ready().to_string());
            if let Some(dp) = dp {
                for f in dp.families() {
                    if let Some(lines) = route_lines(dp, name, f) {
                        put(&mut o, &format!("routes/{f}"), lines);
                    }
                }
            }
            (name.clone(), o)
        })
        .collect();
    if summary {
        let mut o = Object::new();
        put(&mut o, "count", state.nodes.len().to_string());
        let ready = state.nodes.values().filter(|n| n.is_ready()).count();
        put(&mut o, "ready", ready.to_string());
        let items: Vec<(&String, &knetsim_control::state::Node)> = state.nodes.iter().collect();
        put(
            &mut o,
            "addressesDigest",
            digest_objects(&items, |(name, n), h| {
                h.update(name.as_bytes());
                for a in &n.status.addresses {
                    h.update(a.type_.as_bytes());
                    ip_bytes(h, &a.address);
                }
            }),
        );
        out.insert("(all nodes)".to_string(), o);
    }
    out
}

fn addresses(n: &knetsim_control::state::Node) -> Vec<String> {
    strings(
        n.status
            .addresses
            .iter()
            .map(|a| format!("{} {}", a.type_, a.address)),
    )
}

/// kube-proxy's rules per node and family: counts and a digest of the text `knetsim rules`
/// prints (with `--rules`, the lines). Without the dataplane (the summary form), the mode only.
fn kube_proxy(state: &ClusterState, dp: Option<&Dataplane>, rules: bool) -> Section {
    let mut out = Section::new();
    let Some(dp) = dp else {
        let mut o = Object::new();
        match (
            &state.network.kube_proxy,
            state.components.get("kube-proxy"),
        ) {
            (Some(p), c) if c.is_none_or(|c| c.started) => put(&mut o, "mode", p.mode.as_str()),
            _ => put(&mut o, "programs", "nothing"),
        }
        out.insert("all nodes".to_string(), o);
        return out;
    };
    if let Some(problem) = &dp.proxy_problem {
        let mut o = Object::new();
        put(&mut o, "programs", "nothing");
        put(&mut o, "why", problem.as_str());
        out.insert("all nodes".to_string(), o);
        return out;
    }
    let Some(mode) = dp.proxy_mode() else {
        return out;
    };
    for node in state.nodes.keys() {
        for f in dp.families() {
            let Some(text) = knetsim_dataplane::render_rules_in_mode(dp, node, f, mode) else {
                continue;
            };
            let mut o = Object::new();
            put(&mut o, "mode", mode);
            if let Some(c) = dp.with_rules(node, f, |r| r.map(|r| r.counts())) {
                match mode {
                    "nftables" => {
                        put(&mut o, "nftRules", c.nft_rules.to_string());
                        put(&mut o, "nftElements", c.nft_elements.to_string());
                    }
                    _ => {
                        put(&mut o, "filterRules", c.filter_rules.to_string());
                        put(&mut o, "natRules", c.nat_rules.to_string());
                    }
                }
                put(&mut o, "chains", c.chains.to_string());
            }
            put(&mut o, "digest", digest_text(&text));
            if rules {
                put(
                    &mut o,
                    "rules",
                    text.lines()
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                );
            }
            out.insert(format!("{node}/{f}"), o);
        }
    }
    out
}

fn masquerade(state: &ClusterState, masq: &EgressMasq) -> Section {
    use knetsim_dataplane::proxy::iptables::{IptablesRules, render};
    let agent = match masq {
        EgressMasq::IpMasqAgent(_) => "ip-masq-agent",
        EgressMasq::Kindnet { .. } => "kindnet",
        EgressMasq::Kubenet { .. } => "kubenet",
        EgressMasq::Calico { .. } => "calico",
    };
    let mut out = Section::new();
    for f in families(state) {
        let (chains, extra) = masq.iptables(f);
        let base = render(&IptablesRules::empty(f), &[], &[]);
        let with = render(&IptablesRules::empty(f), &chains, &extra);
        let base: std::collections::HashSet<&str> = base.lines().collect();
        let rules: Vec<String> = with
            .lines()
            .filter(|l| !base.contains(l) && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let mut o = Object::new();
        put(&mut o, "agent", agent);
        put(&mut o, "rules", rules);
        out.insert(f.to_string(), o);
    }
    out
}

fn service(s: &Service, lb: &[IpAddr]) -> Object {
    let mut o = Object::new();
    let spec = &s.spec;
    put(&mut o, "type", spec.type_.as_str());
    if let Some(p) = &spec.ip_family_policy {
        put(&mut o, "ipFamilyPolicy", p.as_str());
    }
    if !spec.ip_families.is_empty() {
        put(&mut o, "ipFamilies", strings(&spec.ip_families));
    }
    if let Some(f) = spec.ip_family {
        put(&mut o, "ipFamily", f.to_string());
    }
    if !spec.cluster_ips.is_empty() {
        put(&mut o, "clusterIPs", spec.cluster_ips.clone());
    } else if let Some(ip) = &spec.cluster_ip {
        put(&mut o, "clusterIP", ip.as_str());
    }
    let node_ports: Vec<String> = spec
        .ports
        .iter()
        .filter_map(|p| Some(format!("{}/{}: {}", p.port, p.protocol, p.node_port?)))
        .collect();
    if !node_ports.is_empty() {
        put(&mut o, "nodePorts", node_ports);
    }
    if !spec.external_ips.is_empty() {
        put(&mut o, "externalIPs", strings(&spec.external_ips));
    }
    if !lb.is_empty() {
        put(&mut o, "loadBalancer", strings(lb));
    }
    if let Some(n) = &spec.external_name {
        put(&mut o, "externalName", n.as_str());
    }
    o
}

fn pod(p: &Pod) -> Object {
    let mut o = Object::new();
    put(
        &mut o,
        "node",
        p.spec.node_name.as_deref().unwrap_or("(none)"),
    );
    put(&mut o, "phase", p.status.phase);
    put(&mut o, "podIPs", strings(p.status.pod_ips.iter()));
    if p.spec.host_network {
        put(&mut o, "hostNetwork", "true");
    }
    o
}

/// The EndpointSlices of one Service and family, by `namespace/service/family`: slice names
/// end in a generated suffix, and a reviewer asks which addresses a Service's endpoints have,
/// not how the controller cut them into slices.
fn slices(state: &ClusterState) -> Section {
    let mut out = Section::new();
    for (nn, s) in &state.endpoint_slices {
        let key = format!(
            "{}/{}/{}",
            nn.namespace,
            s.service_name().unwrap_or("(none)"),
            s.address_type
        );
        let o = out.entry(key).or_default();
        let n = match o.get("slices") {
            Some(Value::Scalar(n)) => n.parse::<usize>().unwrap_or(0),
            _ => 0,
        };
        put(o, "slices", (n + 1).to_string());
        let mut eps = match o.remove("endpoints") {
            Some(Value::List(l)) => l,
            _ => Vec::new(),
        };
        eps.extend(
            s.endpoints
                .iter()
                .map(|e| strings(e.addresses.iter()).join(",")),
        );
        eps.sort();
        put(o, "endpoints", eps);
        let mut ports = match o.remove("ports") {
            Some(Value::List(l)) => l,
            _ => Vec::new(),
        };
        ports.extend(s.ports.iter().map(|p| match &p.name {
            Some(n) if !n.is_empty() => format!("{n} {}/{}", p.port, p.protocol),
            _ => format!("{}/{}", p.port, p.protocol),
        }));
        ports.sort();
        ports.dedup();
        put(o, "ports", ports);
    }
    out
}

/// Counts by a key, as facts `PREFIX KEY: N`.
fn counts(o: &mut Object, prefix: &str, keys: impl Iterator<Item = String>) {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_default() += 1;
    }
    for (k, n) in m {
        put(o, &format!("{prefix} {k}"), n.to_string());
    }
}

/// An address as bytes for a digest: a family tag and the octets.
fn ip_bytes(h: &mut Sha256, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            h.update([4]);
            h.update(v4.octets());
        }
        IpAddr::V6(v6) => {
            h.update([6]);
            h.update(v6.octets());
        }
    }
}

/// A string as bytes for a digest: its length first, so that fields cannot run together.
fn str_bytes(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// The families the cluster runs, as [`Dataplane::families`] says them.
fn families(state: &ClusterState) -> Vec<Family> {
    let mut v = state.network.ip_families.clone();
    if v.is_empty() {
        v = vec![Family::IPv4, Family::IPv6];
    }
    v.sort();
    v.dedup();
    v
}

fn services_summary(
    state: &ClusterState,
    lb: &(dyn Fn(&NamespacedName, &Service) -> Vec<IpAddr> + Sync),
) -> Section {
    let mut o = Object::new();
    put(&mut o, "count", state.services.len().to_string());
    counts(
        &mut o,
        "type",
        state.services.values().map(|s| s.spec.type_.clone()),
    );
    counts(
        &mut o,
        "ipFamilyPolicy",
        state
            .services
            .values()
            .filter_map(|s| s.spec.ip_family_policy.clone()),
    );
    counts(
        &mut o,
        "ipFamilies",
        state
            .services
            .values()
            .filter(|s| !s.spec.ip_families.is_empty())
            .map(|s| strings(&s.spec.ip_families).join(",")),
    );
    let items: Vec<(&NamespacedName, &Service)> = state.services.iter().collect();
    put(
        &mut o,
        "digest",
        digest_objects(&items, |(nn, s), h| {
            for (k, v) in service(s, &lb(nn, s)) {
                str_bytes(h, &k);
                match v {
                    Value::Scalar(t) => str_bytes(h, &t),
                    Value::List(l) => l.iter().for_each(|t| str_bytes(h, t)),
                }
            }
            str_bytes(h, &nn.namespace);
            str_bytes(h, &nn.name);
        }),
    );
    Section::from([("all Services".to_string(), o)])
}

fn pods_summary(state: &ClusterState) -> Section {
    let mut o = Object::new();
    put(&mut o, "count", state.pods.len().to_string());
    counts(
        &mut o,
        "phase",
        state.pods.values().map(|p| p.status.phase.to_string()),
    );
    for f in [Family::IPv4, Family::IPv6] {
        let n = state.pods.values().filter(|p| p.ip_of(f).is_some()).count();
        put(&mut o, &format!("with {f}"), n.to_string());
    }
    let items: Vec<(&NamespacedName, &Box<Pod>)> = state.pods.iter().collect();
    put(
        &mut o,
        "digest",
        // The full form's facts, as bytes: formatting 150,000 pods' addresses as text
        // would cost more than the rest of the snapshot.
        digest_objects(&items, |(nn, p), h| {
            str_bytes(h, &nn.namespace);
            str_bytes(h, &nn.name);
            str_bytes(h, p.spec.node_name.as_deref().unwrap_or(""));
            str_bytes(h, p.status.phase);
            h.update([p.status.pod_ips.len() as u8, u8::from(p.spec.host_network)]);
            for ip in p.status.pod_ips.iter() {
                ip_bytes(h, ip);
            }
        }),
    );
    Section::from([("all Pods".to_string(), o)])
}

fn slices_summary(state: &ClusterState) -> Section {
    let mut o = Object::new();
    put(&mut o, "count", state.endpoint_slices.len().to_string());
    counts(
        &mut o,
        "addressType",
        state
            .endpoint_slices
            .values()
            .map(|s| s.address_type.to_string()),
    );
    let endpoints: usize = state
        .endpoint_slices
        .values()
        .map(|s| s.endpoints.len())
        .sum();
    put(&mut o, "endpoints", endpoints.to_string());
    let items: Vec<(&NamespacedName, &EndpointSlice)> = state.endpoint_slices.iter().collect();
    put(
        &mut o,
        "digest",
        digest_objects(&items, |(nn, s), h| {
            str_bytes(h, &nn.namespace);
            str_bytes(h, &nn.name);
            str_bytes(h, s.service_name().unwrap_or(""));
            h.update([u8::from(s.address_type == Family::IPv6)]);
            h.update((s.endpoints.len() as u64).to_le_bytes());
            for e in &s.endpoints {
                h.update([e.addresses.len() as u8]);
                for ip in e.addresses.iter() {
                    ip_bytes(h, ip);
                }
            }
            for p in &s.ports {
                str_bytes(h, p.name.as_deref().unwrap_or(""));
                h.update(p.port.to_le_bytes());
                str_bytes(h, &p.protocol);
            }
        }),
    );
    Section::from([("all EndpointSlices".to_string(), o)])
}

fn capacity(state: &ClusterState) -> Section {
    state
        .capacity
        .iter()
        .map(|(f, c)| {
            let mut o = Object::new();
            if let Some(n) = &c.node_cidrs {
                put(
                    &mut o,
                    "clusterCIDR",
                    format!("{} (node mask /{})", n.cidr, n.block_prefix),
                );
                put(&mut o, "maxNodes", n.total.to_string());
                put(&mut o, "nodeBlocksUsed", n.used.to_string());
                put(&mut o, "nodeBlocksFree", n.free.to_string());
            }
            if let Some(s) = &c.service_ips {
                put(
                    &mut o,
                    "serviceCIDR",
                    format!("{} ({})", s.cidr, s.allocator),
                );
                put(&mut o, "serviceIPs", s.total.to_string());
                put(&mut o, "serviceIPsUsed", s.used.to_string());
                put(&mut o, "serviceIPsFree", s.free.to_string());
            }
            if let Some(p) = &c.pod_ips {
                put(&mut o, "podIPsPerNode", p.per_node.to_string());
                put(&mut o, "podIPsUsed", p.used.to_string());
            }
            (f.to_string(), o)
        })
        .collect()
}

/// Warning events by involved object, each reason's messages in the order they happened.
/// The summary form keeps, per reason, the count and the first.
fn events(state: &ClusterState, form: Form) -> Section {
    let mut out = Section::new();
    let warnings = state.events.iter().filter(|e| e.type_ == "Warning");
    let who = |e: &knetsim_control::state::Event| {
        let io = &e.involved_object;
        match &io.namespace {
            Some(ns) => format!("{}/{ns}/{}", io.kind, io.name),
            None => format!("{}/{}", io.kind, io.name),
        }
    };
    match form {
        Form::Full => {
            for e in warnings {
                let line = format!("step {}, {}: {}", e.step, e.source, e.message);
                let o = out.entry(who(e)).or_default();
                match o
                    .entry(e.reason.clone())
                    .or_insert_with(|| Value::List(Vec::new()))
                {
                    Value::List(l) => l.push(line),
                    Value::Scalar(_) => {}
                }
            }
        }
        Form::Summary => {
            let mut by_reason: BTreeMap<&str, (usize, String)> = BTreeMap::new();
            for e in warnings {
                let entry = by_reason
                    .entry(e.reason.as_str())
                    .or_insert_with(|| (0, format!("{}: {}", who(e), e.message)));
                entry.0 += 1;
            }
            for (reason, (n, first)) in by_reason {
                let mut o = Object::new();
                put(&mut o, "count", n.to_string());
                put(&mut o, "first", first);
                out.insert(reason.to_string(), o);
            }
        }
    }
    out
}

fn outcome(o: knetsim_dataplane::trace::Outcome) -> &'static str {
    use knetsim_dataplane::trace::Outcome;
    match o {
        Outcome::Delivered => "delivered",
        Outcome::Dropped => "dropped",
        Outcome::Rejected => "rejected",
    }
}

fn answers(state: &ClusterState, dp: &Dataplane, qs: &[Query]) -> (Section, Section) {
    let (mut reach, mut traces) = (Section::new(), Section::new());
    for q in qs {
        let mut o = Object::new();
        match q {
            Query::Reach(rq) => {
                match knetsim_dataplane::reach(dp, rq) {
                    Ok(m) => {
                        for (src, row) in m.from.iter().zip(&m.cells) {
                            for (dst, cell) in m.to.iter().zip(row) {
                                let text = match &cell.error {
                                    Some(e) => format!("n/a ({e})"),
                                    None => cell.text(),
                                };
                                put(&mut o, &format!("{src} -> {dst}"), text);
                            }
                        }
                    }
                    Err(e) => put(&mut o, "error", e),
                }
                reach.insert(q.name(), o);
            }
            Query::Trace(tq) => {
                match knetsim_dataplane::trace(dp, state, tq) {
                    Ok(t) => {
                        put(&mut o, "verdict", outcome(t.verdict));
                        put(&mut o, "family", t.family.to_string());
                        let mut eps = t.endpoints.clone();
                        eps.sort();
                        put(&mut o, "endpoints", eps);
                        put(&mut o, "masqueraded", t.masqueraded.to_string());
                        if let Some(r) = &t.reason {
                            put(&mut o, "reason", r.as_str());
                        }
                    }
                    Err(e) => put(&mut o, "error", e),
                }
                traces.insert(q.name(), o);
            }
        }
    }
    (reach, traces)
}
