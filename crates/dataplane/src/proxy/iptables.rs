//! kube-proxy's iptables mode: the rules `syncProxyRules` writes for one node and family, their
//! `iptables-restore` text, and the packet tracer of `proxier_test.go`.
//!
//! Rules are kept as data (a chain, match arguments in the order kube-proxy writes them, a
//! target) so that the same value renders to text and drives the tracer. The representation
//! is compact because a node of a 10,000-Service cluster has hundreds of thousands of rules:
//! chain names and comments that belong to a service port are references into the family
//! model ([`Chain::Svc`], [`Comment::Port`], …) rather than strings, and a table keeps every
//! rule's arguments in one shared vector. Text is produced only when rendering.
// kube-proxy: pkg/proxy/iptables/proxier.go (syncProxyRules, writeServiceToEndpointRules)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use knetsim_ipam::Family;

use super::model::{FamilyModel, Proto, ServicePortInfo, categorize};
use super::text::{push_ip, push_net, push_u32};
use super::{LocalDetector, NodeCtx, PacketCtx};

/// `largeClusterEndpointsThreshold`: above this many endpoints kube-proxy drops per-endpoint
/// comments to keep the rule set small.
pub const LARGE_CLUSTER_ENDPOINTS_THRESHOLD: usize = 1000;

/// An address in a match: a bare IP (`-d 172.30.0.41`) or a CIDR (`-s 10.0.0.0/8`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Ip(IpAddr),
    Net(IpNet),
}

impl Addr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Addr::Ip(a) => *a == ip,
            Addr::Net(n) => n.contains(&ip),
        }
    }

    /// Appends the address as `Display` writes it.
    pub fn push_to(&self, out: &mut String) {
        match self {
            Addr::Ip(ip) => push_ip(out, *ip),
            Addr::Net(n) => push_net(out, *n),
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Ip(ip) => write!(f, "{ip}"),
            Addr::Net(n) => write!(f, "{n}"),
        }
    }
}

/// A chain name. The chains of a service port or endpoint are named by index into the family
/// model, which holds their hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// A chain with a fixed name: the built-in ones and kube-proxy's own (`KUBE-SERVICES`, …).
    Fixed(&'static str),
    /// `KUBE-SVC-<hash>` of service port `i`.
    Svc(u32),
    /// `KUBE-SVL-<hash>` of service port `i`.
    Svl(u32),
    /// `KUBE-EXT-<hash>` of service port `i`.
    Ext(u32),
    /// `KUBE-FW-<hash>` of service port `i`.
    Fw(u32),
    /// `KUBE-SEP-<hash>` of endpoint `j` of service port `i`.
    Sep(u32, u32),
    /// Any other name (the chains of egress agents).
    Named(Arc<str>),
}

impl Chain {
    /// Appends the chain's name. `model` resolves service-port chains; without it (rules of
    /// other agents) those cannot occur.
    pub fn push_to(&self, out: &mut String, model: Option<&FamilyModel>) {
        let m = || model.expect("a service-port chain needs its family model");
        let (prefix, i) = match self {
            Chain::Fixed(s) => return out.push_str(s),
            Chain::Named(s) => return out.push_str(s),
            Chain::Sep(i, j) => {
                out.push_str("KUBE-SEP-");
                out.push_str(m().ipt_endpoint_hash(*i, *j));
                return;
            }
            Chain::Svc(i) => ("KUBE-SVC-", *i),
            Chain::Svl(i) => ("KUBE-SVL-", *i),
            Chain::Ext(i) => ("KUBE-EXT-", *i),
            Chain::Fw(i) => ("KUBE-FW-", *i),
        };
        out.push_str(prefix);
        out.push_str(m().ipt_port_hash(i));
    }

    /// The chain's name as a string.
    pub fn name(&self, model: Option<&FamilyModel>) -> String {
        let mut s = String::new();
        self.push_to(&mut s, model);
        s
    }

    /// Whether this is the chain with the fixed name `name`.
    pub fn is(&self, name: &str) -> bool {
        match self {
            Chain::Fixed(s) => *s == name,
            Chain::Named(s) => &**s == name,
            _ => false,
        }
    }
}

/// What a comment about a service port says; `{name}` is the port's `ServicePortName`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortComment {
    /// `{name}`
    Name,
    /// `{name} cluster IP`
    ClusterIp,
    /// `{name} external IP`
    ExternalIp,
    /// `{name} loadbalancer IP`
    LoadBalancerIp,
    /// `{name} has no endpoints`
    NoEndpoints,
    /// `{name} has no local endpoints`
    NoLocalEndpoints,
    /// `{name} health check node port`
    HealthCheckNodePort,
    /// `{name} traffic not accepted by KUBE-FW-<hash>`
    NotAcceptedByFirewall,
    /// `masquerade traffic for {name} external destinations`
    MasqueradeExternal,
    /// `pod traffic for {name} external destinations`
    PodExternal,
    /// `masquerade LOCAL traffic for {name} external destinations`
    MasqueradeLocalExternal,
    /// `route LOCAL traffic for {name} external destinations`
    RouteLocalExternal,
    /// `other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL`
    OtherTrafficDropped,
    /// `{name} -> {ip:port}` of endpoint `j`.
    Endpoint(u32),
}

/// A comment's text.
#[derive(Clone, Debug)]
pub enum Comment {
    Static(&'static str),
    Text(Arc<str>),
    /// About service port `i`.
    Port(u32, PortComment),
}

impl Comment {
    /// Appends the comment text.
    pub fn push_to(&self, out: &mut String, model: Option<&FamilyModel>) {
        let (i, what) = match self {
            Comment::Static(s) => return out.push_str(s),
            Comment::Text(s) => return out.push_str(s),
            Comment::Port(i, what) => (*i, *what),
        };
        let model = model.expect("a service-port comment needs its family model");
        let sp = &model.ports[i as usize];
        let name = &*sp.name;
        let (before, after) = match what {
            PortComment::Name => ("", ""),
            PortComment::ClusterIp => ("", " cluster IP"),
            PortComment::ExternalIp => ("", " external IP"),
            PortComment::LoadBalancerIp => ("", " loadbalancer IP"),
            PortComment::NoEndpoints => ("", " has no endpoints"),
            PortComment::NoLocalEndpoints => ("", " has no local endpoints"),
            PortComment::HealthCheckNodePort => ("", " health check node port"),
            PortComment::NotAcceptedByFirewall => {
                out.push_str(name);
                out.push_str(" traffic not accepted by KUBE-FW-");
                out.push_str(model.ipt_port_hash(i));
                return;
            }
            PortComment::MasqueradeExternal => {
                ("masquerade traffic for ", " external destinations")
            }
            PortComment::PodExternal => ("pod traffic for ", " external destinations"),
            PortComment::MasqueradeLocalExternal => {
                ("masquerade LOCAL traffic for ", " external destinations")
            }
            PortComment::RouteLocalExternal => {
                ("route LOCAL traffic for ", " external destinations")
            }
            PortComment::OtherTrafficDropped => (
                "other traffic to ",
                " will be dropped by KUBE-PROXY-FIREWALL",
            ),
            PortComment::Endpoint(j) => {
                out.push_str(name);
                out.push_str(" -> ");
                out.push_str(sp.endpoint_addr(j));
                return;
            }
        };
        out.push_str(before);
        out.push_str(name);
        out.push_str(after);
    }
}

/// One match argument, rendered in place.
#[derive(Clone, Debug)]
pub enum Arg {
    /// `-m comment --comment X`; `quoted` when kube-proxy wrote the quotes itself.
    Comment(Comment, bool),
    /// `-m tcp -p tcp`.
    Proto(Proto),
    /// `-d X` / `! -d X`.
    Dst(Addr, bool),
    /// `-s X` / `! -s X`.
    Src(Addr, bool),
    /// `-s IP` of endpoint `j` of service port `i` (the hairpin rule of its chain).
    SrcEndpoint(u32, u32),
    /// `-d IP` of service port `i`'s cluster IP (whose text the model keeps).
    DstClusterIp(u32),
    /// `--dport N`.
    DPort(u16),
    /// `-m addrtype --dst-type LOCAL` / `-m addrtype ! --dst-type LOCAL`.
    DstTypeLocal(bool),
    /// `-m addrtype --src-type LOCAL`.
    SrcTypeLocal,
    /// `-m mark --mark M/M` / `-m mark ! --mark M/M`.
    Mark(Arc<str>, bool),
    /// `-m conntrack --ctstate S` / `-m conntrack ! --ctstate S`.
    CtState(&'static str, bool),
    /// `-m statistic --mode random --probability P` with P = 1/n.
    Statistic(u32),
    /// `-m recent --name N --rcheck --seconds S --reap`.
    RecentCheck(Chain, u32),
    /// `-m recent --name N --set`.
    RecentSet(Chain),
    /// `-i IFACE` / `! -i IFACE` (interface-based local-traffic detection).
    InIface(Arc<str>, bool),
    /// `-m set --match-set NAME src|dst` / `-m set ! --match-set …` (Calico's ipsets).
    MatchSet(Arc<str>, &'static str, bool),
}

/// Where a DNAT sends the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnatTo {
    /// Endpoint `j` of service port `i`.
    Endpoint(u32, u32),
    /// An explicit `ip:port`.
    Addr(Arc<str>),
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Jump(Chain),
    Accept,
    Drop,
    Reject,
    Return,
    Dnat(DnatTo),
    Masquerade {
        random_fully: bool,
    },
    Snat(Arc<str>),
    MarkOr(Arc<str>),
    MarkXor(Arc<str>),
    /// No `-j` at all (the last rule of a `KUBE-FW-` chain).
    None,
}

/// One `-A CHAIN …` line, borrowed from a table or an [`IptRule`].
#[derive(Clone, Copy, Debug)]
pub struct RuleRef<'a> {
    pub chain: &'a Chain,
    pub args: &'a [Arg],
    pub target: &'a Target,
}

fn neg(out: &mut String, n: bool) {
    if n {
        out.push_str(" !");
    }
}

impl RuleRef<'_> {
    /// Appends the line (without a newline) as `iptables-save` prints it.
    pub fn render(&self, out: &mut String, model: Option<&FamilyModel>) {
        out.push_str("-A ");
        self.chain.push_to(out, model);
        for a in self.args {
            push_arg(out, a, model);
        }
        push_target(out, self.target, model);
    }

    /// The line as a string.
    pub fn to_line(&self, model: Option<&FamilyModel>) -> String {
        let mut s = String::new();
        self.render(&mut s, model);
        s
    }
}

/// Appends one match argument, with the space before it, as `iptables-save` prints it.
fn push_arg(out: &mut String, a: &Arg, model: Option<&FamilyModel>) {
    match a {
        Arg::Comment(c, quoted) => {
            out.push_str(" -m comment --comment ");
            if *quoted {
                out.push('"');
                c.push_to(out, model);
                out.push('"');
            } else {
                c.push_to(out, model);
            }
        }
        Arg::Proto(p) => {
            out.push_str(" -m ");
            out.push_str(p.as_str());
            out.push_str(" -p ");
            out.push_str(p.as_str());
        }
        Arg::Dst(addr, n) => {
            neg(out, *n);
            out.push_str(" -d ");
            addr.push_to(out);
        }
        Arg::Src(addr, n) => {
            neg(out, *n);
            out.push_str(" -s ");
            addr.push_to(out);
        }
        Arg::SrcEndpoint(i, j) => {
            out.push_str(" -s ");
            out.push_str(
                model
                    .expect("an endpoint address needs its family model")
                    .ports[*i as usize]
                    .endpoint_ip_text(*j),
            );
        }
        Arg::DstClusterIp(i) => {
            out.push_str(" -d ");
            out.push_str(
                model.expect("a cluster IP needs its family model").ports[*i as usize]
                    .cluster_ip_text(),
            );
        }
        Arg::DPort(p) => {
            out.push_str(" --dport ");
            push_u32(out, (*p).into());
        }
        Arg::DstTypeLocal(n) => {
            out.push_str(" -m addrtype");
            neg(out, *n);
            out.push_str(" --dst-type LOCAL");
        }
        Arg::SrcTypeLocal => out.push_str(" -m addrtype --src-type LOCAL"),
        Arg::Mark(m, n) => {
            out.push_str(" -m mark");
            neg(out, *n);
            out.push_str(" --mark ");
            out.push_str(m);
            out.push('/');
            out.push_str(m);
        }
        Arg::CtState(s, n) => {
            out.push_str(" -m conntrack");
            neg(out, *n);
            out.push_str(" --ctstate ");
            out.push_str(s);
        }
        Arg::Statistic(n) => {
            out.push_str(" -m statistic --mode random --probability ");
            match model {
                Some(m) => out.push_str(&m.probability(*n as usize)),
                None => out.push_str(&super::super::names::probability(*n as usize)),
            }
        }
        Arg::RecentCheck(name, secs) => {
            out.push_str(" -m recent --name ");
            name.push_to(out, model);
            out.push_str(" --rcheck --seconds ");
            push_u32(out, *secs);
            out.push_str(" --reap");
        }
        Arg::RecentSet(name) => {
            out.push_str(" -m recent --name ");
            name.push_to(out, model);
            out.push_str(" --set");
        }
        Arg::InIface(i, n) => {
            neg(out, *n);
            out.push_str(" -i ");
            out.push_str(i);
        }
        Arg::MatchSet(name, dir, n) => {
            out.push_str(" -m set");
            neg(out, *n);
            out.push_str(" --match-set ");
            out.push_str(name);
            out.push(' ');
            out.push_str(dir);
        }
    }
}

/// Appends a rule's target (` -j …`), as `iptables-save` prints it.
fn push_target(out: &mut String, target: &Target, model: Option<&FamilyModel>) {
    match target {
        Target::Jump(c) => {
            out.push_str(" -j ");
            c.push_to(out, model);
        }
        Target::Accept => out.push_str(" -j ACCEPT"),
        Target::Drop => out.push_str(" -j DROP"),
        Target::Reject => out.push_str(" -j REJECT"),
        Target::Return => out.push_str(" -j RETURN"),
        Target::Dnat(d) => {
            out.push_str(" -j DNAT --to-destination ");
            match d {
                DnatTo::Addr(a) => out.push_str(a),
                DnatTo::Endpoint(i, j) => out.push_str(
                    model
                        .expect("a DNAT to an endpoint needs its family model")
                        .ports[*i as usize]
                        .endpoint_addr(*j),
                ),
            }
        }
        Target::Masquerade { random_fully } => {
            out.push_str(" -j MASQUERADE");
            if *random_fully {
                out.push_str(" --random-fully");
            }
        }
        Target::Snat(s) => {
            out.push_str(" -j SNAT --to-source ");
            out.push_str(s);
        }
        Target::MarkOr(m) => {
            out.push_str(" -j MARK --or-mark ");
            out.push_str(m);
        }
        Target::MarkXor(m) => {
            out.push_str(" -j MARK --xor-mark ");
            out.push_str(m);
        }
        Target::None => {}
    }
}

/// One `-A CHAIN …` line that stands alone (the rules of egress agents).
#[derive(Clone, Debug)]
pub struct IptRule {
    pub chain: Chain,
    pub args: Vec<Arg>,
    pub target: Target,
}

impl IptRule {
    pub fn as_ref(&self) -> RuleRef<'_> {
        RuleRef {
            chain: &self.chain,
            args: &self.args,
            target: &self.target,
        }
    }

    /// The line as `iptables-save` prints it.
    pub fn to_line(&self) -> String {
        self.as_ref().to_line(None)
    }
}

#[derive(Clone, Debug)]
struct Rule {
    chain: Chain,
    first_arg: u32,
    n_args: u32,
    target: Target,
}

/// One table (`filter` or `nat`): built-in chains, kube-proxy's chains in the order it
/// declared them, and rules in the order it wrote them (their arguments in one vector).
#[derive(Debug, Default)]
pub struct IptTable {
    pub builtin: Vec<&'static str>,
    pub chains: Vec<Chain>,
    rules: Vec<Rule>,
    args: Vec<Arg>,
    index: OnceLock<HashMap<Chain, Vec<u32>>>,
}

impl Clone for IptTable {
    fn clone(&self) -> Self {
        IptTable {
            builtin: self.builtin.clone(),
            chains: self.chains.clone(),
            rules: self.rules.clone(),
            args: self.args.clone(),
            index: OnceLock::new(),
        }
    }
}

impl IptTable {
    /// An empty table with these built-in chains.
    pub fn new(builtin: Vec<&'static str>) -> Self {
        IptTable {
            builtin,
            ..IptTable::default()
        }
    }

    fn chain(&mut self, name: Chain) {
        self.chains.push(name);
    }

    fn push(&mut self, chain: Chain, args: impl IntoIterator<Item = Arg>, target: Target) {
        let first_arg = self.args.len() as u32;
        self.args.extend(args);
        self.rules.push(Rule {
            chain,
            first_arg,
            n_args: self.args.len() as u32 - first_arg,
            target,
        });
    }

    fn view<'a>(&'a self, r: &'a Rule) -> RuleRef<'a> {
        RuleRef {
            chain: &r.chain,
            args: &self.args[r.first_arg as usize..(r.first_arg + r.n_args) as usize],
            target: &r.target,
        }
    }

    /// Every rule, in the order kube-proxy wrote them.
    pub fn rules(&self) -> impl Iterator<Item = RuleRef<'_>> {
        self.rules.iter().map(|r| self.view(r))
    }

    /// The rules of one chain, in order.
    pub fn chain_rules(&self, chain: &Chain) -> impl Iterator<Item = RuleRef<'_>> {
        let index = self.index.get_or_init(|| {
            let mut m: HashMap<Chain, Vec<u32>> = HashMap::new();
            for (i, r) in self.rules.iter().enumerate() {
                m.entry(r.chain.clone()).or_default().push(i as u32);
            }
            m
        });
        index
            .get(chain)
            .into_iter()
            .flatten()
            .map(|&i| self.view(&self.rules[i as usize]))
    }

    /// Makes room for the nat rules of `ports` service ports with `endpoints` endpoints in
    /// all: most service ports write a few rules of a few arguments each, plus three rules
    /// and a chain per endpoint. Growing the vectors instead would copy them over and over.
    fn reserve_services(&mut self, ports: usize, endpoints: usize) {
        self.rules.reserve(64 + ports * 4 + endpoints * 3);
        self.args.reserve(64 + ports * 8 + endpoints * 4);
        self.chains.reserve(8 + ports * 2 + endpoints);
    }

    /// Number of `-A` rules (kube-proxy's `sync_proxy_rules_iptables_total` counts these).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

/// The iptables rules of one node and family.
#[derive(Clone, Debug)]
pub struct IptablesRules {
    pub family: Family,
    pub filter: IptTable,
    pub nat: IptTable,
    pub large_cluster_mode: bool,
    /// The family model the rules' service-port names refer to.
    pub model: Arc<FamilyModel>,
}

impl IptablesRules {
    /// Tables with only the built-in chains (what `iptables-save` shows where kube-proxy
    /// wrote nothing).
    pub fn empty(family: Family) -> IptablesRules {
        IptablesRules {
            family,
            filter: filter_table(),
            nat: nat_table(),
            large_cluster_mode: false,
            model: Arc::new(FamilyModel::empty(family)),
        }
    }
}

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";
pub const KUBE_PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
pub const KUBE_FIREWALL: &str = "KUBE-FIREWALL";

const C_SERVICES: Chain = Chain::Fixed(KUBE_SERVICES);
const C_EXT_SERVICES: Chain = Chain::Fixed(KUBE_EXTERNAL_SERVICES);
const C_NODEPORTS: Chain = Chain::Fixed(KUBE_NODEPORTS);
const C_POSTROUTING: Chain = Chain::Fixed(KUBE_POSTROUTING);
const C_MARK_MASQ: Chain = Chain::Fixed(KUBE_MARK_MASQ);
const C_FORWARD: Chain = Chain::Fixed(KUBE_FORWARD);
const C_PROXY_FIREWALL: Chain = Chain::Fixed(KUBE_PROXY_FIREWALL);
const C_FIREWALL: Chain = Chain::Fixed(KUBE_FIREWALL);

fn cm(s: &'static str) -> Arg {
    Arg::Comment(Comment::Static(s), true)
}

/// Builds the rules of one node and family.
pub fn build(model: &Arc<FamilyModel>, ctx: &NodeCtx) -> IptablesRules {
    let (mut filter, mut nat) = preamble(ctx);
    nat.reserve_services(model.ports.len(), model.total_endpoints);
    write_services(&mut filter, &mut nat, model, ctx, 0..model.ports.len());
    postamble(&mut filter, &mut nat, ctx);
    IptablesRules {
        family: ctx.family,
        filter,
        nat,
        large_cluster_mode: model.total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
        model: model.clone(),
    }
}

/// The built-in chains of the filter and nat tables, as `iptables-save` lists them.
const FILTER_BUILTIN: &[&str] = &["INPUT", "FORWARD", "OUTPUT"];
const NAT_BUILTIN: &[&str] = &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

fn filter_table() -> IptTable {
    IptTable::new(FILTER_BUILTIN.to_vec())
}

fn nat_table() -> IptTable {
    IptTable::new(NAT_BUILTIN.to_vec())
}

/// What kube-proxy writes before the services: its chains, the jumps from the built-in
/// chains, KUBE-POSTROUTING and KUBE-MARK-MASQ (and kubelet's KUBE-FIREWALL).
fn preamble(ctx: &NodeCtx) -> (IptTable, IptTable) {
    let mut filter = filter_table();
    let mut nat = nat_table();
    let mark: Arc<str> = ctx.masq_mark.clone();
    for c in [
        C_SERVICES,
        C_EXT_SERVICES,
        C_FORWARD,
        C_NODEPORTS,
        C_PROXY_FIREWALL,
    ] {
        filter.chain(c);
    }
    for c in [C_SERVICES, C_NODEPORTS, C_POSTROUTING, C_MARK_MASQ] {
        nat.chain(c);
    }
    let is_ipv6 = ctx.family == Family::IPv6;
    // KUBE-FIREWALL is kubelet's chain; kube-proxy only fills it in for IPv4 localhost
    // NodePorts, but ensures the (possibly empty) chain and its jumps either way.
    let writes_kubelet_firewall = !is_ipv6 && ctx.localhost_nodeports;
    if !writes_kubelet_firewall {
        filter.chain(C_FIREWALL);
    }

    // Jumps from the built-in chains, as EnsureRule(Prepend) leaves them: the last one
    // ensured comes first. kubelet created KUBE-FIREWALL's jumps before kube-proxy ran.
    let new = || Arg::CtState("NEW", false);
    let input = Chain::Fixed("INPUT");
    let forward = Chain::Fixed("FORWARD");
    let output = Chain::Fixed("OUTPUT");
    // filter INPUT
    filter.push(
        input.clone(),
        [new(), cm("kubernetes load balancer firewall")],
        Target::Jump(C_PROXY_FIREWALL),
    );
    filter.push(
        input.clone(),
        [cm("kubernetes health check service ports")],
        Target::Jump(C_NODEPORTS),
    );
    filter.push(
        input.clone(),
        [new(), cm("kubernetes externally-visible service portals")],
        Target::Jump(C_EXT_SERVICES),
    );
    filter.push(input, [], Target::Jump(C_FIREWALL));
    // filter FORWARD
    filter.push(
        forward.clone(),
        [new(), cm("kubernetes load balancer firewall")],
        Target::Jump(C_PROXY_FIREWALL),
    );
    filter.push(
        forward.clone(),
        [cm("kubernetes forwarding rules")],
        Target::Jump(C_FORWARD),
    );
    filter.push(
        forward.clone(),
        [new(), cm("kubernetes service portals")],
        Target::Jump(C_SERVICES),
    );
    filter.push(
        forward,
        [new(), cm("kubernetes externally-visible service portals")],
        Target::Jump(C_EXT_SERVICES),
    );
    // filter OUTPUT
    filter.push(
        output.clone(),
        [new(), cm("kubernetes load balancer firewall")],
        Target::Jump(C_PROXY_FIREWALL),
    );
    filter.push(
        output.clone(),
        [new(), cm("kubernetes service portals")],
        Target::Jump(C_SERVICES),
    );
    filter.push(output, [], Target::Jump(C_FIREWALL));
    // nat
    nat.push(
        Chain::Fixed("PREROUTING"),
        [cm("kubernetes service portals")],
        Target::Jump(C_SERVICES),
    );
    nat.push(
        Chain::Fixed("OUTPUT"),
        [cm("kubernetes service portals")],
        Target::Jump(C_SERVICES),
    );
    nat.push(
        Chain::Fixed("POSTROUTING"),
        [cm("kubernetes postrouting rules")],
        Target::Jump(C_POSTROUTING),
    );

    // KUBE-POSTROUTING and KUBE-MARK-MASQ.
    nat.push(
        C_POSTROUTING,
        [Arg::Mark(mark.clone(), true)],
        Target::Return,
    );
    nat.push(C_POSTROUTING, [], Target::MarkXor(mark.clone()));
    nat.push(
        C_POSTROUTING,
        [cm("kubernetes service traffic requiring SNAT")],
        Target::Masquerade { random_fully: true },
    );
    nat.push(C_MARK_MASQ, [], Target::MarkOr(mark.clone()));

    if writes_kubelet_firewall {
        filter.chain(C_FIREWALL);
        filter.push(
            C_FIREWALL,
            [
                cm("block incoming localnet connections"),
                Arg::Dst(Addr::Net(net("127.0.0.0/8")), false),
                Arg::Src(Addr::Net(net("127.0.0.0/8")), true),
                Arg::CtState("RELATED,ESTABLISHED,DNAT", true),
            ],
            Target::Drop,
        );
    }

    (filter, nat)
}

/// The rules of the service ports `ports` (indices into the model), in order.
fn write_services<S: RuleSink>(
    filter: &mut S,
    nat: &mut S,
    model: &FamilyModel,
    ctx: &NodeCtx,
    ports: std::ops::Range<usize>,
) {
    let mut w = ServiceWriter {
        filter,
        nat,
        ctx,
        node: model.node_id(&ctx.node),
        large: model.total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
        if_local: ctx.local_detector.ipt_if_local(),
        if_not_local: ctx.local_detector.ipt_if_not_local(),
    };
    for i in ports {
        w.write_service(i as u32, &model.ports[i]);
    }
}

/// What kube-proxy writes after the services: the tail-call to KUBE-NODEPORTS and
/// KUBE-FORWARD.
fn postamble(filter: &mut IptTable, nat: &mut IptTable, ctx: &NodeCtx) {
    let mark: Arc<str> = ctx.masq_mark.clone();
    let is_ipv6 = ctx.family == Family::IPv6;
    // Finally, the tail-call to KUBE-NODEPORTS.
    let np_comment =
        || cm("kubernetes service nodeports; NOTE: this must be the last rule in this chain");
    if ctx.nodeport.match_all {
        let mut args = vec![np_comment(), Arg::DstTypeLocal(false)];
        if is_ipv6 {
            args.push(Arg::Dst(Addr::Net(net("::1/128")), true));
        } else if !ctx.localhost_nodeports {
            args.push(Arg::Dst(Addr::Net(net("127.0.0.0/8")), true));
        }
        nat.push(C_SERVICES, args, Target::Jump(C_NODEPORTS));
    } else {
        for ip in ctx.nodeport_ips() {
            if ip.is_loopback() && (is_ipv6 || !ctx.localhost_nodeports) {
                continue;
            }
            nat.push(
                C_SERVICES,
                [np_comment(), Arg::Dst(Addr::Ip(ip), false)],
                Target::Jump(C_NODEPORTS),
            );
        }
    }

    if !ctx.conntrack_tcp_liberal {
        filter.push(C_FORWARD, [Arg::CtState("INVALID", false)], Target::Drop);
    }
    filter.push(
        C_FORWARD,
        [
            cm("kubernetes forwarding rules"),
            Arg::Mark(mark.clone(), false),
        ],
        Target::Accept,
    );
    filter.push(
        C_FORWARD,
        [
            cm("kubernetes forwarding conntrack rule"),
            Arg::CtState("RELATED,ESTABLISHED", false),
        ],
        Target::Accept,
    );
}

fn net(s: &str) -> IpNet {
    s.parse().expect("static CIDR")
}

/// Where [`write_services`] puts chains and rules: a table kept as data ([`IptTable`], for
/// [`build`] and the tracer), or text written as the rules arrive ([`TextTable`], for
/// [`render_node`], which has no use for the data). One writer serves both, so the two cannot
/// disagree.
trait RuleSink {
    /// Declares one of kube-proxy's chains.
    fn chain(&mut self, name: Chain);
    /// Appends a rule.
    fn push(&mut self, chain: Chain, args: impl IntoIterator<Item = Arg>, target: Target);
}

impl RuleSink for IptTable {
    fn chain(&mut self, name: Chain) {
        IptTable::chain(self, name);
    }
    fn push(&mut self, chain: Chain, args: impl IntoIterator<Item = Arg>, target: Target) {
        IptTable::push(self, chain, args, target);
    }
}

/// One table of a run of service ports as text: [`render_part`] of the table the same rules
/// would make, written rule by rule, without the table.
struct TextTable<'m> {
    model: &'m FamilyModel,
    builtin: &'static [&'static str],
    part: TextPart,
}

impl<'m> TextTable<'m> {
    /// A table with these built-in chains, with room for about `chains` chains and `rules`
    /// rules.
    fn new(
        model: &'m FamilyModel,
        builtin: &'static [&'static str],
        chains: usize,
        rules: usize,
    ) -> Self {
        TextTable {
            model,
            builtin,
            part: TextPart {
                decl: String::with_capacity(chains * 40),
                builtin: String::new(),
                rules: String::with_capacity(rules * 128),
            },
        }
    }
}

impl RuleSink for TextTable<'_> {
    fn chain(&mut self, name: Chain) {
        let decl = &mut self.part.decl;
        decl.push(':');
        name.push_to(decl, Some(self.model));
        decl.push_str(" - [0:0]\n");
    }
    fn push(&mut self, chain: Chain, args: impl IntoIterator<Item = Arg>, target: Target) {
        // RuleRef::render, one argument at a time as they come: collecting them first
        // would only move them twice.
        let model = Some(self.model);
        let buf = if is_builtin(self.builtin, &chain) {
            &mut self.part.builtin
        } else {
            &mut self.part.rules
        };
        buf.push_str("-A ");
        chain.push_to(buf, model);
        for a in args {
            push_arg(buf, &a, model);
        }
        push_target(buf, &target, model);
        buf.push('\n');
    }
}

/// Writes the rules of each service port into the two tables.
struct ServiceWriter<'a, S: RuleSink> {
    filter: &'a mut S,
    nat: &'a mut S,
    ctx: &'a NodeCtx,
    /// The node's index in the model's node names.
    node: Option<u32>,
    large: bool,
    if_local: Option<Arg>,
    if_not_local: Option<Arg>,
}

impl<S: RuleSink> ServiceWriter<'_, S> {
    fn write_service(&mut self, i: u32, sp: &ServicePortInfo) {
        let (filter, nat, ctx) = (&mut *self.filter, &mut *self.nat, self.ctx);
        let proto = sp.proto;
        let cat = categorize(sp, self.node);
        let cluster_chain = Chain::Svc(i);
        let local_chain = Chain::Svl(i);
        let ext_chain = Chain::Ext(i);
        let fw_chain = Chain::Fw(i);
        let has_endpoints = cat.has_any;
        let cluster_empty = cat.cluster_is_empty();
        let local_empty = cat.local_is_empty();
        let uses_cluster_chain = !cluster_empty && sp.uses_cluster_endpoints();
        let uses_local_chain = !local_empty && sp.uses_local_endpoints();

        let mut internal_chain = cluster_chain.clone();
        let mut has_internal = has_endpoints;
        if sp.internal_policy_local {
            internal_chain = local_chain.clone();
            if local_empty {
                has_internal = false;
            }
        }
        let mut external_policy_chain = cluster_chain.clone();
        let mut has_external = has_endpoints;
        if sp.external_policy_local {
            external_policy_chain = local_chain.clone();
            if local_empty {
                has_external = false;
            }
        }
        let uses_ext_chain = has_endpoints && sp.externally_accessible();
        let uses_fw_chain =
            has_endpoints && !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty();
        let lb_chain = if uses_fw_chain {
            fw_chain.clone()
        } else {
            ext_chain.clone()
        };

        let (int_target, ext_target, blocked) = if !has_endpoints {
            (Target::Reject, Target::Reject, PortComment::NoEndpoints)
        } else {
            (Target::Drop, Target::Drop, PortComment::NoLocalEndpoints)
        };
        let q = |what: PortComment| Arg::Comment(Comment::Port(i, what), true);

        // Capture the clusterIP.
        if has_internal {
            nat.push(
                C_SERVICES,
                [
                    q(PortComment::ClusterIp),
                    Arg::Proto(proto),
                    Arg::DstClusterIp(i),
                    Arg::DPort(sp.port),
                ],
                Target::Jump(internal_chain.clone()),
            );
        } else {
            filter.push(
                C_SERVICES,
                [
                    q(blocked),
                    Arg::Proto(proto),
                    Arg::DstClusterIp(i),
                    Arg::DPort(sp.port),
                ],
                int_target,
            );
        }

        // Capture externalIPs.
        for &eip in &sp.external_ips {
            if has_endpoints {
                nat.push(
                    C_SERVICES,
                    [
                        q(PortComment::ExternalIp),
                        Arg::Proto(proto),
                        Arg::Dst(Addr::Ip(eip), false),
                        Arg::DPort(sp.port),
                    ],
                    Target::Jump(ext_chain.clone()),
                );
            }
            if !has_external {
                filter.push(
                    C_EXT_SERVICES,
                    [
                        q(blocked),
                        Arg::Proto(proto),
                        Arg::Dst(Addr::Ip(eip), false),
                        Arg::DPort(sp.port),
                    ],
                    ext_target.clone(),
                );
            }
        }

        // Capture load-balancer ingress.
        for &lbip in &sp.lb_vips {
            if has_endpoints {
                nat.push(
                    C_SERVICES,
                    [
                        q(PortComment::LoadBalancerIp),
                        Arg::Proto(proto),
                        Arg::Dst(Addr::Ip(lbip), false),
                        Arg::DPort(sp.port),
                    ],
                    Target::Jump(lb_chain.clone()),
                );
            }
            if uses_fw_chain {
                filter.push(
                    C_PROXY_FIREWALL,
                    [
                        q(PortComment::NotAcceptedByFirewall),
                        Arg::Proto(proto),
                        Arg::Dst(Addr::Ip(lbip), false),
                        Arg::DPort(sp.port),
                    ],
                    Target::Drop,
                );
            }
        }
        if !has_external {
            for &lbip in &sp.lb_vips {
                filter.push(
                    C_EXT_SERVICES,
                    [
                        q(blocked),
                        Arg::Proto(proto),
                        Arg::Dst(Addr::Ip(lbip), false),
                        Arg::DPort(sp.port),
                    ],
                    ext_target.clone(),
                );
            }
        }

        // Capture nodeports. (The nfacct localhost counter rule is not written: knetsim
        // models a host where the nfacct counters could not be created, which kube-proxy
        // tolerates.)
        if sp.node_port != 0 {
            if has_endpoints {
                nat.push(
                    C_NODEPORTS,
                    [
                        Arg::Comment(Comment::Port(i, PortComment::Name), false),
                        Arg::Proto(proto),
                        Arg::DPort(sp.node_port),
                    ],
                    Target::Jump(ext_chain.clone()),
                );
            }
            if !has_external {
                filter.push(
                    C_EXT_SERVICES,
                    [
                        q(blocked),
                        Arg::DstTypeLocal(false),
                        Arg::Proto(proto),
                        Arg::DPort(sp.node_port),
                    ],
                    ext_target.clone(),
                );
            }
        }

        // Capture healthCheckNodePorts.
        if sp.health_check_node_port != 0 {
            filter.push(
                C_NODEPORTS,
                [
                    q(PortComment::HealthCheckNodePort),
                    Arg::Proto(Proto::Tcp),
                    Arg::DPort(sp.health_check_node_port),
                ],
                Target::Accept,
            );
        }

        // Internal traffic handling.
        if has_internal {
            let base = [
                q(PortComment::ClusterIp),
                Arg::Proto(proto),
                Arg::DstClusterIp(i),
                Arg::DPort(sp.port),
            ];
            if ctx.masquerade_all {
                nat.push(internal_chain.clone(), base, Target::Jump(C_MARK_MASQ));
            } else if let Some(arg) = &self.if_not_local {
                nat.push(
                    internal_chain.clone(),
                    base.into_iter().chain([arg.clone()]),
                    Target::Jump(C_MARK_MASQ),
                );
            }
        }

        // External traffic handling.
        if uses_ext_chain {
            nat.chain(ext_chain.clone());
            if !sp.external_policy_local {
                nat.push(
                    ext_chain.clone(),
                    [q(PortComment::MasqueradeExternal)],
                    Target::Jump(C_MARK_MASQ),
                );
            } else {
                if let Some(arg) = &self.if_local {
                    nat.push(
                        ext_chain.clone(),
                        [q(PortComment::PodExternal), arg.clone()],
                        Target::Jump(cluster_chain.clone()),
                    );
                }
                nat.push(
                    ext_chain.clone(),
                    [q(PortComment::MasqueradeLocalExternal), Arg::SrcTypeLocal],
                    Target::Jump(C_MARK_MASQ),
                );
                nat.push(
                    ext_chain.clone(),
                    [q(PortComment::RouteLocalExternal), Arg::SrcTypeLocal],
                    Target::Jump(cluster_chain.clone()),
                );
            }
            if has_external {
                nat.push(
                    ext_chain.clone(),
                    [],
                    Target::Jump(external_policy_chain.clone()),
                );
            }
        }

        // Firewall chain.
        if uses_fw_chain {
            nat.chain(fw_chain.clone());
            let mut allow_from_node = false;
            for cidr in &sp.lb_source_ranges {
                nat.push(
                    fw_chain.clone(),
                    [
                        q(PortComment::LoadBalancerIp),
                        Arg::Src(Addr::Net(*cidr), false),
                    ],
                    Target::Jump(ext_chain.clone()),
                );
                if ctx.node_ip.is_some_and(|ip| cidr.contains(&ip)) {
                    allow_from_node = true;
                }
            }
            if allow_from_node {
                for &lbip in &sp.lb_vips {
                    nat.push(
                        fw_chain.clone(),
                        [
                            q(PortComment::LoadBalancerIp),
                            Arg::Src(Addr::Ip(lbip), false),
                        ],
                        Target::Jump(ext_chain.clone()),
                    );
                }
            }
            nat.push(
                fw_chain.clone(),
                [q(PortComment::OtherTrafficDropped)],
                Target::None,
            );
        }

        if uses_cluster_chain {
            nat.chain(cluster_chain.clone());
            endpoint_jumps(nat, self.large, i, sp, &cluster_chain, cat.cluster());
        }
        if uses_local_chain {
            nat.chain(local_chain.clone());
            endpoint_jumps(nat, self.large, i, sp, &local_chain, cat.local());
        }

        // Per-endpoint chains.
        for (j, _) in cat.all_reachable() {
            let sep = Chain::Sep(i, j);
            nat.chain(sep.clone());
            let comment =
                (!self.large).then_some(Arg::Comment(Comment::Port(i, PortComment::Name), false));
            nat.push(
                sep.clone(),
                comment.clone().into_iter().chain([Arg::SrcEndpoint(i, j)]),
                Target::Jump(C_MARK_MASQ),
            );
            let set = sp.affinity_seconds.map(|_| Arg::RecentSet(sep.clone()));
            nat.push(
                sep,
                comment.into_iter().chain(set).chain([Arg::Proto(proto)]),
                Target::Dnat(DnatTo::Endpoint(i, j)),
            );
        }
    }
}

/// The jumps from a service chain to its endpoints' chains: affinity checks first, then one
/// jump per endpoint with the probability that spreads new connections evenly.
fn endpoint_jumps<'e>(
    nat: &mut impl RuleSink,
    large: bool,
    i: u32,
    sp: &ServicePortInfo,
    svc_chain: &Chain,
    endpoints: impl Iterator<Item = (u32, &'e super::model::EndpointInfo)> + Clone,
) {
    let comment = |j: u32| -> Option<Arg> {
        (!large).then_some(Arg::Comment(
            Comment::Port(i, PortComment::Endpoint(j)),
            true,
        ))
    };
    if let Some(secs) = sp.affinity_seconds {
        for (j, _) in endpoints.clone() {
            nat.push(
                svc_chain.clone(),
                comment(j)
                    .into_iter()
                    .chain([Arg::RecentCheck(Chain::Sep(i, j), secs)]),
                Target::Jump(Chain::Sep(i, j)),
            );
        }
    }
    let n = endpoints.clone().count();
    for (k, (j, _)) in endpoints.enumerate() {
        let stat = (k < n - 1).then(|| Arg::Statistic((n - k) as u32));
        nat.push(
            svc_chain.clone(),
            comment(j).into_iter().chain(stat),
            Target::Jump(Chain::Sep(i, j)),
        );
    }
}

/// Renders one family's rules as the text kube-proxy hands to `iptables-restore`, with the
/// built-in chains and kube-proxy's jumps from them as `iptables-save` shows them, followed by
/// `extra_nat` (egress masquerade rules of other agents on the node).
pub fn render(r: &IptablesRules, extra_nat_chains: &[Arc<str>], extra_nat: &[IptRule]) -> String {
    r.model.name_all_ipt();
    let model = Some(&*r.model);
    // Generous: memory reserved but never written costs nothing, a regrown buffer costs a
    // copy of everything written so far.
    let mut out = String::with_capacity(
        4096 + (r.filter.rules.len() + r.nat.rules.len() + extra_nat.len()) * 160
            + (r.filter.chains.len() + r.nat.chains.len()) * 48,
    );
    for (name, t, extra_chains, extra_rules) in [
        ("filter", &r.filter, &[][..], &[][..]),
        ("nat", &r.nat, extra_nat_chains, extra_nat),
    ] {
        out.push('*');
        out.push_str(name);
        out.push('\n');
        for b in &t.builtin {
            out.push(':');
            out.push_str(b);
            out.push_str(" ACCEPT [0:0]\n");
        }
        for c in &t.chains {
            out.push(':');
            c.push_to(&mut out, model);
            out.push_str(" - [0:0]\n");
        }
        for c in extra_chains {
            out.push(':');
            out.push_str(c);
            out.push_str(" - [0:0]\n");
        }
        // Built-in chains' rules first (kube-proxy's jumps, then other agents' appended ones).
        let is_builtin = |c: &Chain| match c {
            Chain::Fixed(n) => t.builtin.contains(n),
            Chain::Named(n) => t.builtin.contains(&&**n),
            _ => false,
        };
        for rule in t.rules().filter(|r| is_builtin(r.chain)) {
            rule.render(&mut out, model);
            out.push('\n');
        }
        for rule in extra_rules.iter().filter(|r| is_builtin(&r.chain)) {
            rule.as_ref().render(&mut out, model);
            out.push('\n');
        }
        for rule in t.rules().filter(|r| !is_builtin(r.chain)) {
            rule.render(&mut out, model);
            out.push('\n');
        }
        for rule in extra_rules.iter().filter(|r| !is_builtin(&r.chain)) {
            rule.as_ref().render(&mut out, model);
            out.push('\n');
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// The text of one part of a table: its chain declarations, its rules in built-in chains,
/// and its other rules.
#[derive(Default)]
struct TextPart {
    decl: String,
    builtin: String,
    rules: String,
}

fn render_part(t: &IptTable, model: Option<&FamilyModel>) -> TextPart {
    let mut p = TextPart {
        decl: String::with_capacity(t.chains.len() * 40),
        builtin: String::new(),
        rules: String::with_capacity(t.rules.len() * 128),
    };
    for c in &t.chains {
        p.decl.push(':');
        c.push_to(&mut p.decl, model);
        p.decl.push_str(" - [0:0]\n");
    }
    for rule in t.rules() {
        let buf = if is_builtin(&t.builtin, rule.chain) {
            &mut p.builtin
        } else {
            &mut p.rules
        };
        rule.render(buf, model);
        buf.push('\n');
    }
    p
}

fn is_builtin(builtin: &[&str], c: &Chain) -> bool {
    match c {
        Chain::Fixed(n) => builtin.contains(n),
        Chain::Named(n) => builtin.contains(&&**n),
        _ => false,
    }
}

/// Renders the rules of one node and family exactly as [`render`] renders [`build`]'s, without
/// keeping them: the service ports are written and rendered in runs, in parallel, each run's
/// rules dropped as soon as they are text, and the texts joined in order (so the output does
/// not depend on the number of threads).
pub fn render_node(
    model: &Arc<FamilyModel>,
    ctx: &NodeCtx,
    extra_nat_chains: &[Arc<str>],
    extra_nat: &[IptRule],
) -> String {
    use rayon::prelude::*;
    let m = Some(&**model);
    let (pf, pn) = preamble(ctx);
    let pre = [render_part(&pf, m), render_part(&pn, m)];
    // The service ports are written and rendered a names chunk at a time, so that each
    // run's task makes and uses its own ports' chain names.
    let runs: Vec<[TextPart; 2]> = (0..model.chunks())
        .into_par_iter()
        .map(|k| {
            let run = model.chunk_range(k);
            let endpoints = model.endpoints_in(run.clone());
            let mut f = TextTable::new(model, FILTER_BUILTIN, 0, 0);
            // As many chains and rules as IptTable::reserve_services reserves.
            let mut t = TextTable::new(
                model,
                NAT_BUILTIN,
                run.len() * 2 + endpoints,
                run.len() * 4 + endpoints * 3,
            );
            write_services(&mut f, &mut t, model, ctx, run);
            [f.part, t.part]
        })
        .collect();
    let (mut f, mut t) = (filter_table(), nat_table());
    postamble(&mut f, &mut t, ctx);
    let post = [render_part(&f, m), render_part(&t, m)];
    let parts = |ti: usize| {
        std::iter::once(&pre[ti])
            .chain(runs.iter().map(move |r| &r[ti]))
            .chain(std::iter::once(&post[ti]))
    };
    let size: usize = (0..2)
        .flat_map(|ti| parts(ti).map(|p| p.decl.len() + p.builtin.len() + p.rules.len()))
        .sum::<usize>()
        + 4096
        + extra_nat.len() * 256;
    let mut out = String::with_capacity(size);
    for (ti, (name, builtin)) in [
        ("filter", filter_table().builtin),
        ("nat", nat_table().builtin),
    ]
    .into_iter()
    .enumerate()
    {
        let (extra_chains, extra_rules): (&[Arc<str>], &[IptRule]) = if ti == 1 {
            (extra_nat_chains, extra_nat)
        } else {
            (&[], &[])
        };
        out.push('*');
        out.push_str(name);
        out.push('\n');
        for b in &builtin {
            out.push(':');
            out.push_str(b);
            out.push_str(" ACCEPT [0:0]\n");
        }
        for p in parts(ti) {
            out.push_str(&p.decl);
        }
        for c in extra_chains {
            out.push(':');
            out.push_str(c);
            out.push_str(" - [0:0]\n");
        }
        for p in parts(ti) {
            out.push_str(&p.builtin);
        }
        for rule in extra_rules
            .iter()
            .filter(|r| is_builtin(&builtin, &r.chain))
        {
            rule.as_ref().render(&mut out, m);
            out.push('\n');
        }
        for p in parts(ti) {
            out.push_str(&p.rules);
        }
        for rule in extra_rules
            .iter()
            .filter(|r| !is_builtin(&builtin, &r.chain))
        {
            rule.as_ref().render(&mut out, m);
            out.push('\n');
        }
        out.push_str("COMMIT\n");
    }
    out
}

// ------------------------------------------------------------------------------------------
// The tracer

/// What the tracer recorded: every matched rule in order, the terminal outputs (endpoint
/// `ip:port`s or `ACCEPT`/`DROP`/`REJECT`), and whether the packet was marked for masquerade.
#[derive(Clone, Debug, Default)]
pub struct TraceResult {
    pub matches: Vec<MatchedRule>,
    pub outputs: Vec<String>,
    pub masq: bool,
}

/// One matched rule: table, its text and, for terminal outputs, the comment that explains it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MatchedRule {
    pub table: &'static str,
    pub chain: String,
    pub rule: String,
}

fn rule_matches(rule: &RuleRef<'_>, model: &FamilyModel, p: &PacketCtx, dst: IpAddr) -> bool {
    for a in rule.args {
        let ok = match a {
            Arg::Src(addr, neg) => addr.contains(p.src) != *neg,
            Arg::SrcEndpoint(i, j) => model.ports[*i as usize].endpoints[*j as usize].ip == p.src,
            Arg::SrcTypeLocal => p.src_is_local,
            Arg::Proto(pr) => *pr == p.proto,
            Arg::Dst(addr, neg) => addr.contains(dst) != *neg,
            Arg::DstClusterIp(i) => model.ports[*i as usize].cluster_ip == dst,
            Arg::DstTypeLocal(neg) => p.is_local_addr(dst) != *neg,
            Arg::DPort(port) => *port == p.dport,
            // Rules that check state or history never match in the tracer: it traces the
            // first packet of a new connection with no affinity recorded.
            Arg::Mark(..) | Arg::CtState(..) | Arg::RecentCheck(..) => false,
            Arg::InIface(_, neg) => p.from_local_pod != *neg,
            Arg::MatchSet(..) => false,
            Arg::Comment(..) | Arg::Statistic(_) | Arg::RecentSet(_) => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

struct Tracer<'a> {
    r: &'a IptablesRules,
    p: &'a PacketCtx,
    res: TraceResult,
}

impl Tracer<'_> {
    fn run_chain(
        &mut self,
        t: &IptTable,
        table: &'static str,
        chain: &Chain,
        dst: IpAddr,
        depth: usize,
    ) -> bool {
        if depth > 32 {
            return false;
        }
        let model = Some(&*self.r.model);
        for rule in t.chain_rules(chain) {
            if *rule.target == Target::None || !rule_matches(&rule, &self.r.model, self.p, dst) {
                continue;
            }
            self.res.matches.push(MatchedRule {
                table,
                chain: rule.chain.name(model),
                rule: rule.to_line(model),
            });
            match rule.target {
                Target::Jump(c) if c.is(KUBE_MARK_MASQ) => {
                    self.res.masq = true;
                }
                Target::Accept => {
                    self.res.outputs.push("ACCEPT".into());
                    return true;
                }
                Target::Reject => {
                    self.res.outputs.push("REJECT".into());
                    return true;
                }
                Target::Drop => {
                    self.res.outputs.push("DROP".into());
                    return true;
                }
                Target::Dnat(d) => {
                    let to = match d {
                        DnatTo::Addr(a) => a.to_string(),
                        DnatTo::Endpoint(i, j) => self.r.model.ports[*i as usize]
                            .endpoint_addr(*j)
                            .to_string(),
                    };
                    self.res.outputs.push(to);
                    return true;
                }
                Target::Jump(c) => {
                    let terminated = self.run_chain(t, table, c, dst, depth + 1);
                    let probabilistic = rule.args.iter().any(|a| matches!(a, Arg::Statistic(_)));
                    if terminated && !probabilistic {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// `tracePacket` of `proxier_test.go`: nat PREROUTING, then (with the destination rewritten to
/// the first DNAT output) filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and
/// KUBE-PROXY-FIREWALL. POSTROUTING is not run; the masquerade mark stands for it.
pub fn trace(r: &IptablesRules, p: &PacketCtx) -> TraceResult {
    let mut t = Tracer {
        r,
        p,
        res: TraceResult::default(),
    };
    t.run_chain(&r.nat, "nat", &Chain::Fixed("PREROUTING"), p.dst, 0);
    let dst = t
        .res
        .outputs
        .first()
        .and_then(|o| super::split_host_port(o).map(|(ip, _)| ip))
        .unwrap_or(p.dst);
    for c in [C_SERVICES, C_EXT_SERVICES, C_NODEPORTS, C_PROXY_FIREWALL] {
        t.run_chain(&r.filter, "filter", &c, dst, 0);
    }
    t.res
}

impl LocalDetector {
    pub(crate) fn ipt_if_local(&self) -> Option<Arg> {
        match self {
            LocalDetector::NoOp => None,
            LocalDetector::Cidr(n) => Some(Arg::Src(Addr::Net(*n), false)),
            LocalDetector::Interface(i) => Some(Arg::InIface(i.clone(), false)),
        }
    }
    pub(crate) fn ipt_if_not_local(&self) -> Option<Arg> {
        match self {
            LocalDetector::NoOp => None,
            LocalDetector::Cidr(n) => Some(Arg::Src(Addr::Net(*n), true)),
            LocalDetector::Interface(i) => Some(Arg::InIface(i.clone(), true)),
        }
    }
}
