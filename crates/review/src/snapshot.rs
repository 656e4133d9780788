//! The snapshot: a scenario's routing and allocation state as a reviewer reads it.
//!
//! A snapshot is a list of sections ([`Area`]s, in a fixed order), each a sorted map from an
//! object's name (a node, `namespace/name`, `node/IPv6`, a family) to its facts, each a sorted
//! map from a fact's name to a [`Value`]: one line of text, or a list of lines. This shape is
//! what makes both the file and the diff readable: one fact a line, and every change names its
//! section, its object and its fact.
//!
//! Large clusters (more than [`SUMMARY_PODS`] pods or [`SUMMARY_NODES`] nodes) get the
//! summary form ([`Form::Summary`]): nodes, components, capacity and events are recorded as
//! in the full form, routes and kube-proxy rules for the first node in name order only, and
//! Services, pods and EndpointSlices as counts and a digest of what the full form would
//! record. A 150,000-pod cluster's per-pod facts would be a file no reviewer reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;

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

/// Builds the snapshot of a scenario's state, from its dataplane (which holds the state).
/// Errors: a malformed `snapshot:` section. A question that cannot be answered (a name the
/// cluster does not have) is recorded as the question's `error`, so that a change which
/// removes an object shows up in the diff rather than failing it.
pub fn build(
    scenario: &Scenario,
    dp: &Dataplane,
    opts: &Options,
) -> Result<Snapshot, Vec<Diagnostic>> {
    let mut qs = queries::read(scenario)?;
    qs.extend(opts.extra.iter().cloned());
    let state = dp.state();
    let form = opts.form.unwrap_or_else(|| Form::for_state(state));
    let mut sections = BTreeMap::new();
    sections.insert(Area::Components, components(state));
    sections.insert(Area::Nodes, nodes(state, dp, form));
    sections.insert(Area::KubeProxy, kube_proxy(state, dp, form, opts.rules));
    sections.insert(Area::Masquerade, masquerade(dp));
    match form {
        Form::Full => {
            sections.insert(
                Area::Services,
                state
                    .services
                    .iter()
                    .map(|(nn, s)| (nn.to_string(), service(nn, s, dp)))
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
            sections.insert(Area::Services, services_summary(state, dp));
            sections.insert(Area::Pods, pods_summary(state));
            sections.insert(Area::EndpointSlices, slices_summary(state));
        }
    }
    sections.insert(Area::Capacity, capacity(state));
    sections.insert(Area::Events, events(state, form));
    let (reach, traces) = answers(state, dp, &qs);
    sections.insert(Area::Reachability, reach);
    sections.insert(Area::Traces, traces);
    sections.retain(|_, s| !s.is_empty());
    Ok(Snapshot {
        scenario: state.name.clone(),
        kubernetes_version: state.kubernetes_version.to_string(),
        seed: state.seed,
        form,
        rules: opts.rules,
        sections,
    })
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

/// A digest of many objects' facts, hashed in fixed-size chunks in parallel and then over
/// the chunks' digests in order: the same whatever the thread count.
fn digest_objects<T: Sync>(items: &[T], line: impl Fn(&T, &mut String) + Sync) -> String {
    let chunks: Vec<[u8; 32]> = items
        .par_chunks(4096)
        .map(|chunk| {
            let mut h = Sha256::new();
            let mut buf = String::new();
            for item in chunk {
                buf.clear();
                line(item, &mut buf);
                buf.push('\n');
                h.update(buf.as_bytes());
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

fn nodes(state: &ClusterState, dp: &Dataplane, form: Form) -> Section {
    let first = state.nodes.keys().next();
    state
        .nodes
        .iter()
        .map(|(name, n)| {
            let mut o = Object::new();
            put(&mut o, "podCIDRs", strings(&n.spec.pod_cidrs));
            put(
                &mut o,
                "addresses",
                strings(
                    n.status
                        .addresses
                        .iter()
                        .map(|a| format!("{} {}", a.type_, a.address)),
                ),
            );
            put(&mut o, "ready", n.is_ready().to_string());
            if form == Form::Full || Some(name) == first {
                for f in dp.families() {
                    if let Some(lines) = route_lines(dp, name, f) {
                        put(&mut o, &format!("routes/{f}"), lines);
                    }
                }
            }
            (name.clone(), o)
        })
        .collect()
}

fn kube_proxy(state: &ClusterState, dp: &Dataplane, form: Form, rules: bool) -> Section {
    let mut out = Section::new();
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
    let nodes: Vec<&String> = match form {
        Form::Full => state.nodes.keys().collect(),
        Form::Summary => state.nodes.keys().take(1).collect(),
    };
    for node in nodes {
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

fn masquerade(dp: &Dataplane) -> Section {
    use knetsim_dataplane::proxy::iptables::{IptablesRules, render};
    let agent = match &dp.masq {
        EgressMasq::IpMasqAgent(_) => "ip-masq-agent",
        EgressMasq::Kindnet { .. } => "kindnet",
        EgressMasq::Kubenet { .. } => "kubenet",
        EgressMasq::Calico { .. } => "calico",
    };
    let mut out = Section::new();
    for f in dp.families() {
        let (chains, extra) = dp.masq.iptables(f);
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

fn service(nn: &NamespacedName, s: &Service, dp: &Dataplane) -> Object {
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
    if let Some(ips) = dp.load_balancer_ips().get(nn) {
        put(&mut o, "loadBalancer", strings(ips));
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

fn object_line(name: &str, o: &Object, buf: &mut String) {
    buf.push_str(name);
    for (k, v) in o {
        buf.push('\t');
        buf.push_str(k);
        buf.push('=');
        match v {
            Value::Scalar(s) => buf.push_str(s),
            Value::List(l) => buf.push_str(&l.join(",")),
        }
    }
}

fn services_summary(state: &ClusterState, dp: &Dataplane) -> Section {
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
        digest_objects(&items, |(nn, s), buf| {
            object_line(&nn.to_string(), &service(nn, s, dp), buf)
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
        digest_objects(&items, |(nn, p), buf| {
            // The full form's facts, written without building them.
            let _ = write!(
                buf,
                "{nn}\t{}\t{}",
                p.spec.node_name.as_deref().unwrap_or("(none)"),
                p.status.phase
            );
            for ip in p.status.pod_ips.iter() {
                let _ = write!(buf, "\t{ip}");
            }
            if p.spec.host_network {
                buf.push_str("\thostNetwork");
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
        digest_objects(&items, |(nn, s), buf| {
            let _ = write!(buf, "{nn}\t{}", s.address_type);
            for e in &s.endpoints {
                buf.push('\t');
                for ip in e.addresses.iter() {
                    let _ = write!(buf, "{ip},");
                }
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
