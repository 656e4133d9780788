//! kube-proxy's nftables mode: the `ip kube-proxy` / `ip6 kube-proxy` table of one node, its
//! `nft list ruleset`-style text (which `nft -f` reads back), and the packet tracer of the
//! nftables `proxier_test.go` (`helpers_test.go`).
//!
//! Version differences modelled: the `cluster-ips-check` chain (1.30+), the "Drop traffic to
//! unallocated ClusterIPs" rule (needs ServiceCIDR objects, on by default from 1.33), and the
//! filter chain layout, which kubernetes/kubernetes#132456 changed in 1.34 from
//! `filter-prerouting`/`filter-output-post-dnat` at DNAT−10/+10 to `filter-*-pre-dnat` at
//! DNAT−10 plus `filter-input`/`filter-forward`/`filter-output` at priority 0.
//!
//! As in iptables mode, the table is compact data: the chains, sets and map verdicts of a
//! service port or endpoint are named by index into the family model ([`NChain`]), every
//! chain's rules sit together in one vector, and text is produced only when rendering.
// kube-proxy: pkg/proxy/nftables/proxier.go (setupNFTables, syncProxyRules)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use knetsim_ipam::Family;

use super::iptables::{Addr, MatchedRule, TraceResult};
use super::model::{EndpointInfo, FamilyModel, Proto, ServicePortInfo, categorize};
use super::text::{push_ip, push_net, push_u32};
use super::{LocalDetector, NodeCtx, PacketCtx};

/// A chain name. The chains of a service port or endpoint are named by index into the family
/// model, which holds their name bases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NChain {
    /// A chain with a fixed name (`services`, `filter-input`, …).
    Fixed(&'static str),
    /// `service-<base>` of service port `i`.
    Service(u32),
    /// `local-<base>` of service port `i`.
    Local(u32),
    /// `external-<base>` of service port `i`.
    External(u32),
    /// `firewall-<base>` of service port `i`.
    Firewall(u32),
    /// `endpoint-<base>` of endpoint `j` of service port `i`.
    Endpoint(u32, u32),
}

fn port(model: &FamilyModel, i: u32) -> &ServicePortInfo {
    &model.ports[i as usize]
}

fn endpoint(model: &FamilyModel, i: u32, j: u32) -> &EndpointInfo {
    &model.ports[i as usize].endpoints[j as usize]
}

impl NChain {
    /// Appends the chain's name.
    pub fn push_to(self, out: &mut String, model: &FamilyModel) {
        let (prefix, base): (&str, &str) = match self {
            NChain::Fixed(s) => return out.push_str(s),
            NChain::Service(i) => ("service-", model.nft_port_base(i)),
            NChain::Local(i) => ("local-", model.nft_port_base(i)),
            NChain::External(i) => ("external-", model.nft_port_base(i)),
            NChain::Firewall(i) => ("firewall-", model.nft_port_base(i)),
            NChain::Endpoint(i, j) => ("endpoint-", model.nft_endpoint_base(i, j)),
        };
        out.push_str(prefix);
        out.push_str(base);
    }

    pub fn name(self, model: &FamilyModel) -> String {
        let mut s = String::new();
        self.push_to(&mut s, model);
        s
    }
}

/// A match expression of a rule.
#[derive(Clone, Debug)]
pub enum Expr {
    CtStateNew,
    /// `ip daddr X` / `ip daddr != X`.
    Daddr(Addr, bool),
    /// `ip daddr IP` of service port `i`'s cluster IP (whose text the model keeps).
    DaddrClusterIp(u32),
    /// `ip daddr @set`.
    DaddrInSet(&'static str),
    /// `ip daddr { a, b }` (anonymous set).
    DaddrAnon(Vec<IpNet>),
    /// `tcp dport N`.
    Dport(Proto, u16),
    /// `ip saddr X` / `ip saddr != X`.
    Saddr(Addr, bool),
    /// `ip saddr != { a, b }`.
    SaddrNotAnon(Vec<Addr>),
    /// `ip saddr IP` of endpoint `j` of service port `i` (the hairpin rule of its chain).
    SaddrEndpoint(u32, u32),
    /// `ip saddr @affinity-<base>` of endpoint `j` of service port `i`.
    SaddrInAffinitySet(u32, u32),
    FibSaddrLocal,
    FibDaddrLocal,
    /// `iifname "x"` / `iifname != "x"`.
    Iifname(Arc<str>, bool),
    /// `mark and M == 0`.
    MarkAndZero(Arc<str>),
}

/// The statement that ends a rule.
#[derive(Clone, Debug)]
pub enum Stmt {
    Jump(NChain),
    Goto(NChain),
    Drop,
    Reject,
    Return,
    MarkSetOr(Arc<str>),
    MarkSetXor(Arc<str>),
    Masquerade,
    /// `meta l4proto tcp dnat to ip:port` of endpoint `j` of service port `i`.
    Dnat(Proto, u32, u32),
    /// `update @affinity-<base> { ip saddr }` of endpoint `j` of service port `i`.
    UpdateAffinitySet(u32, u32),
    /// `ip daddr . meta l4proto . th dport vmap @map`.
    VmapDest(&'static str),
    /// `meta l4proto . th dport vmap @map`.
    VmapPort(&'static str),
    /// `numgen random mod N vmap { 0 : goto a , 1 : goto b }` over endpoint chains of service
    /// port `port`, whose endpoint indices are `numgen[first..first + len]` of the table.
    Numgen {
        port: u32,
        first: u32,
        len: u32,
    },
}

/// One rule; its expressions are `exprs[first_expr..first_expr + n_exprs]` of the table.
#[derive(Clone, Debug)]
pub struct NftRule {
    first_expr: u32,
    n_exprs: u32,
    pub stmt: Stmt,
    pub comment: Option<&'static str>,
}

/// A base chain's hook.
#[derive(Clone, Debug)]
pub struct Hook {
    pub type_: &'static str,
    pub hook: &'static str,
    /// Numeric priority (`-110` is `dstnat - 10`); numeric because `nft` accepts the symbolic
    /// `dstnat` only on the prerouting hook.
    pub priority: &'static str,
}

/// A chain; its rules are `rules[first_rule..first_rule + n_rules]` of the table.
#[derive(Clone, Debug)]
pub struct NftChain {
    pub name: NChain,
    pub hook: Option<Hook>,
    pub comment: Option<&'static str>,
    first_rule: u32,
    n_rules: u32,
}

/// A verdict stored in a verdict map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapVerdict {
    Goto(NChain),
    Drop,
}

/// An element of `service-ips`, `no-endpoint-services` or `firewall-ips`.
#[derive(Clone, Debug)]
pub struct DestElem {
    pub ip: IpAddr,
    /// The service port `ip` is the cluster IP of, if it is (whose text the model keeps).
    pub cluster_ip_of: Option<u32>,
    pub proto: Proto,
    pub port: u16,
    /// The service port whose name is the element's comment, if it has one.
    pub comment: Option<u32>,
    pub verdict: MapVerdict,
}

/// An element of `service-nodeports` or `no-endpoint-nodeports`.
#[derive(Clone, Debug)]
pub struct PortElem {
    pub proto: Proto,
    pub port: u16,
    /// The service port whose name is the element's comment, if it has one.
    pub comment: Option<u32>,
    pub verdict: MapVerdict,
}

/// One family's `kube-proxy` table on one node.
#[derive(Debug)]
pub struct NftablesRules {
    pub family: Family,
    pub chains: Vec<NftChain>,
    rules: Vec<NftRule>,
    exprs: Vec<Expr>,
    /// Endpoint indices listed by `numgen` statements.
    numgen: Vec<u32>,
    /// The elements of `cluster-ips`: the service ports whose cluster IPs they are.
    pub cluster_ips: Vec<u32>,
    /// `None` when kube-proxy deletes the set (NodePorts on every local address).
    pub nodeport_ips: Option<Vec<IpAddr>>,
    pub service_ips: Vec<DestElem>,
    pub service_nodeports: Vec<PortElem>,
    pub no_endpoint_services: Vec<DestElem>,
    pub no_endpoint_nodeports: Vec<PortElem>,
    pub firewall_ips: Vec<DestElem>,
    /// `affinity-…` sets: the endpoint (service port, endpoint index) and the timeout in
    /// seconds.
    pub affinity_sets: Vec<(u32, u32, u32)>,
    /// The base chains the tracer walks, in `tracePacket`'s order: the pre-DNAT filter chain,
    /// `nat-prerouting`, `filter-forward`, `filter-input`.
    pub trace_chains: [&'static str; 4],
    /// The family model the table's service-port names refer to.
    pub model: Arc<FamilyModel>,
    index: OnceLock<HashMap<NChain, usize>>,
}

impl Clone for NftablesRules {
    fn clone(&self) -> Self {
        NftablesRules {
            family: self.family,
            chains: self.chains.clone(),
            rules: self.rules.clone(),
            exprs: self.exprs.clone(),
            numgen: self.numgen.clone(),
            cluster_ips: self.cluster_ips.clone(),
            nodeport_ips: self.nodeport_ips.clone(),
            service_ips: self.service_ips.clone(),
            service_nodeports: self.service_nodeports.clone(),
            no_endpoint_services: self.no_endpoint_services.clone(),
            no_endpoint_nodeports: self.no_endpoint_nodeports.clone(),
            firewall_ips: self.firewall_ips.clone(),
            affinity_sets: self.affinity_sets.clone(),
            trace_chains: self.trace_chains,
            model: self.model.clone(),
            index: OnceLock::new(),
        }
    }
}

impl NftablesRules {
    pub fn table_family(&self) -> &'static str {
        match self.family {
            Family::IPv4 => "ip",
            Family::IPv6 => "ip6",
        }
    }

    pub fn chain(&self, name: NChain) -> Option<&NftChain> {
        let index = self.index.get_or_init(|| {
            self.chains
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name, i))
                .collect()
        });
        index.get(&name).map(|&i| &self.chains[i])
    }

    /// The rules of a chain, in order.
    pub fn chain_rules<'a>(&'a self, c: &NftChain) -> &'a [NftRule] {
        &self.rules[c.first_rule as usize..(c.first_rule + c.n_rules) as usize]
    }

    /// A rule's match expressions.
    pub fn exprs<'a>(&'a self, r: &NftRule) -> &'a [Expr] {
        &self.exprs[r.first_expr as usize..(r.first_expr + r.n_exprs) as usize]
    }

    /// The endpoint chains a `numgen` statement chooses from.
    pub fn numgen_chains(&self, port: u32, first: u32, len: u32) -> impl Iterator<Item = NChain> {
        self.numgen[first as usize..(first + len) as usize]
            .iter()
            .map(move |&j| NChain::Endpoint(port, j))
    }

    /// Makes room for the chains, rules and elements of `ports` service ports with
    /// `endpoints` endpoints in all (a chain of two or three rules per endpoint, a few rules
    /// and elements per service port). Growing the vectors instead would copy them over and
    /// over.
    fn reserve_services(&mut self, ports: usize, endpoints: usize) {
        self.chains.reserve(ports + endpoints);
        self.rules.reserve(ports * 3 + endpoints * 2);
        self.exprs.reserve(ports * 4 + endpoints);
        self.numgen.reserve(endpoints);
        self.cluster_ips.reserve(ports);
        self.service_ips.reserve(ports);
    }

    /// Rules plus map and set elements, the way `nft` would count table content.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn element_count(&self) -> usize {
        self.cluster_ips.len()
            + self.nodeport_ips.as_ref().map_or(0, Vec::len)
            + self.service_ips.len()
            + self.service_nodeports.len()
            + self.no_endpoint_services.len()
            + self.no_endpoint_nodeports.len()
            + self.firewall_ips.len()
    }
}

/// A chain of the fixed part of the table while it is being built (a handful of chains, whose
/// rules arrive in any order).
struct DraftChain {
    name: NChain,
    hook: Option<Hook>,
    comment: Option<&'static str>,
    rules: Vec<(Vec<Expr>, Stmt, Option<&'static str>)>,
}

#[derive(Default)]
struct Draft {
    chains: Vec<DraftChain>,
}

impl Draft {
    fn ensure(&mut self, name: &'static str) -> usize {
        let name = NChain::Fixed(name);
        if let Some(i) = self.chains.iter().position(|c| c.name == name) {
            return i;
        }
        self.chains.push(DraftChain {
            name,
            hook: None,
            comment: None,
            rules: Vec::new(),
        });
        self.chains.len() - 1
    }
    fn base(
        &mut self,
        name: &'static str,
        type_: &'static str,
        hook: &'static str,
        prio: &'static str,
    ) {
        let i = self.ensure(name);
        self.chains[i].hook = Some(Hook {
            type_,
            hook,
            priority: prio,
        });
    }
    fn rule(
        &mut self,
        chain: &'static str,
        exprs: Vec<Expr>,
        stmt: Stmt,
        comment: Option<&'static str>,
    ) {
        let i = self.ensure(chain);
        self.chains[i].rules.push((exprs, stmt, comment));
    }
}

/// Appends rules to the table, one chain at a time, so that every chain's rules are
/// contiguous.
struct Emitter<'a> {
    out: &'a mut NftablesRules,
    first_rule: u32,
}

impl<'a> Emitter<'a> {
    fn begin(out: &'a mut NftablesRules) -> Self {
        let first_rule = out.rules.len() as u32;
        Emitter { out, first_rule }
    }
    fn rule(
        &mut self,
        exprs: impl IntoIterator<Item = Expr>,
        stmt: Stmt,
        comment: Option<&'static str>,
    ) {
        let first_expr = self.out.exprs.len() as u32;
        self.out.exprs.extend(exprs);
        self.out.rules.push(NftRule {
            first_expr,
            n_exprs: self.out.exprs.len() as u32 - first_expr,
            stmt,
            comment,
        });
    }
    /// The rules written since `begin`, as (first, count).
    fn end(self) -> (u32, u32) {
        (
            self.first_rule,
            self.out.rules.len() as u32 - self.first_rule,
        )
    }
}

const MARK_FOR_MASQUERADE: NChain = NChain::Fixed("mark-for-masquerade");
const REJECT_CHAIN: NChain = NChain::Fixed("reject-chain");

/// Builds the table of one node and family.
pub fn build(model: &Arc<FamilyModel>, ctx: &NodeCtx) -> NftablesRules {
    let mut out = start(model, ctx, true);
    write_services(&mut out, ctx, 0..model.ports.len());
    out
}

/// The table without any service port: its base chains and fixed chains, with their rules,
/// and the NodePort addresses. `reserve` sizes it for every service port of the model.
fn start(model: &Arc<FamilyModel>, ctx: &NodeCtx, reserve: bool) -> NftablesRules {
    let v = ctx.version;
    let new_layout = v.at_least(34);
    let has_cluster_ips_check = v.at_least(30);
    let mut b = Draft::default();
    let mark = ctx.masq_mark.clone();

    // Base chains.
    let pre_dnat_prerouting;
    let pre_dnat_output;
    let post_dnat_output;
    if new_layout {
        pre_dnat_prerouting = "filter-prerouting-pre-dnat";
        pre_dnat_output = "filter-output-pre-dnat";
        post_dnat_output = "filter-output";
        b.base(pre_dnat_prerouting, "filter", "prerouting", "-110");
        b.base(pre_dnat_output, "filter", "output", "-110");
        b.base("filter-input", "filter", "input", "0");
        b.base("filter-forward", "filter", "forward", "0");
        b.base("filter-output", "filter", "output", "0");
    } else {
        pre_dnat_prerouting = "filter-prerouting";
        pre_dnat_output = "filter-output";
        post_dnat_output = "filter-output-post-dnat";
        b.base("filter-prerouting", "filter", "prerouting", "-110");
        b.base("filter-input", "filter", "input", "-110");
        b.base("filter-forward", "filter", "forward", "-110");
        b.base("filter-output", "filter", "output", "-110");
        if has_cluster_ips_check {
            b.base("filter-output-post-dnat", "filter", "output", "-90");
        }
    }
    b.base("nat-prerouting", "nat", "prerouting", "-100");
    b.base("nat-output", "nat", "output", "-100");
    b.base("nat-postrouting", "nat", "postrouting", "100");

    // Jumps from the base chains (nftablesJumpChains).
    let new = || vec![Expr::CtStateNew];
    let mut jumps: Vec<(&'static str, &'static str, bool)> = vec![
        ("nodeport-endpoints-check", "filter-input", true),
        ("service-endpoints-check", "filter-input", true),
        ("service-endpoints-check", "filter-forward", true),
        ("service-endpoints-check", "filter-output", true),
        ("firewall-check", pre_dnat_prerouting, true),
        ("firewall-check", pre_dnat_output, true),
        ("services", "nat-output", false),
        ("services", "nat-prerouting", false),
        ("masquerading", "nat-postrouting", false),
    ];
    if has_cluster_ips_check {
        jumps.push(("cluster-ips-check", "filter-forward", true));
        jumps.push(("cluster-ips-check", post_dnat_output, true));
    }
    for (dst, src, ct) in jumps {
        b.ensure(dst);
        b.rule(
            src,
            if ct { new() } else { vec![] },
            Stmt::Jump(NChain::Fixed(dst)),
            None,
        );
    }
    for c in ["services", "masquerading", "mark-for-masquerade"] {
        b.ensure(c);
    }
    b.rule(
        "mark-for-masquerade",
        vec![],
        Stmt::MarkSetOr(mark.clone()),
        None,
    );
    b.rule(
        "masquerading",
        vec![Expr::MarkAndZero(mark.clone())],
        Stmt::Return,
        None,
    );
    b.rule("masquerading", vec![], Stmt::MarkSetXor(mark.clone()), None);
    b.rule("masquerading", vec![], Stmt::Masquerade, None);

    if has_cluster_ips_check {
        b.rule(
            "cluster-ips-check",
            vec![Expr::DaddrInSet("cluster-ips")],
            Stmt::Reject,
            Some("Reject traffic to invalid ports of ClusterIPs"),
        );
        if v.at_least(33) && !ctx.service_cidrs.is_empty() {
            b.rule(
                "cluster-ips-check",
                vec![Expr::DaddrAnon(ctx.service_cidrs.clone())],
                Stmt::Drop,
                Some("Drop traffic to unallocated ClusterIPs"),
            );
        }
    }

    let nodeport_ips = if ctx.nodeport.match_all {
        None
    } else {
        Some(
            ctx.nodeport_ips()
                .into_iter()
                .filter(|ip| !ip.is_loopback())
                .collect::<Vec<_>>(),
        )
    };
    let loopback: IpNet = match ctx.family {
        Family::IPv4 => "127.0.0.0/8".parse().expect("static"),
        Family::IPv6 => "::1/128".parse().expect("static"),
    };
    let no_localhost = || match ctx.family {
        Family::IPv4 => Expr::Daddr(Addr::Net(loopback), true),
        Family::IPv6 => Expr::Daddr(Addr::Ip("::1".parse().expect("static")), true),
    };

    let ri = b.ensure("reject-chain");
    b.chains[ri].comment = Some("helper for @no-endpoint-services / @no-endpoint-nodeports");
    b.rule("reject-chain", vec![], Stmt::Reject, None);
    b.rule(
        "service-endpoints-check",
        vec![],
        Stmt::VmapDest("no-endpoint-services"),
        None,
    );
    if nodeport_ips.is_none() {
        b.rule(
            "nodeport-endpoints-check",
            vec![no_localhost()],
            Stmt::VmapPort("no-endpoint-nodeports"),
            None,
        );
    } else {
        b.rule(
            "nodeport-endpoints-check",
            vec![Expr::DaddrInSet("nodeport-ips")],
            Stmt::VmapPort("no-endpoint-nodeports"),
            None,
        );
    }
    b.rule(
        "firewall-check",
        vec![],
        Stmt::VmapDest("firewall-ips"),
        None,
    );
    b.rule("services", vec![], Stmt::VmapDest("service-ips"), None);
    if nodeport_ips.is_none() {
        b.rule(
            "services",
            vec![Expr::FibDaddrLocal, no_localhost()],
            Stmt::VmapPort("service-nodeports"),
            None,
        );
    } else {
        b.rule(
            "services",
            vec![Expr::DaddrInSet("nodeport-ips")],
            Stmt::VmapPort("service-nodeports"),
            None,
        );
    }

    let mut out = NftablesRules {
        family: ctx.family,
        chains: Vec::with_capacity(b.chains.len()),
        rules: Vec::with_capacity(64),
        exprs: Vec::with_capacity(64),
        numgen: Vec::new(),
        cluster_ips: Vec::new(),
        nodeport_ips,
        service_ips: Vec::new(),
        service_nodeports: Vec::new(),
        no_endpoint_services: Vec::new(),
        no_endpoint_nodeports: Vec::new(),
        firewall_ips: Vec::new(),
        affinity_sets: Vec::new(),
        trace_chains: [
            pre_dnat_prerouting,
            "nat-prerouting",
            "filter-forward",
            "filter-input",
        ],
        model: model.clone(),
        index: OnceLock::new(),
    };
    if reserve {
        out.reserve_services(model.ports.len(), model.total_endpoints);
    }
    // The fixed chains come first, in the order they were first named.
    for c in b.chains {
        let mut e = Emitter::begin(&mut out);
        for (exprs, stmt, comment) in c.rules {
            e.rule(exprs, stmt, comment);
        }
        let (first_rule, n_rules) = e.end();
        out.chains.push(NftChain {
            name: c.name,
            hook: c.hook,
            comment: c.comment,
            first_rule,
            n_rules,
        });
    }
    out
}

/// Appends the elements and chains of the service ports `ports` (indices into the model).
fn write_services(out: &mut NftablesRules, ctx: &NodeCtx, ports: std::ops::Range<usize>) {
    let model = out.model.clone();
    let if_local = ctx.local_detector.nft_if_local();
    let if_not_local = ctx.local_detector.nft_if_not_local();
    let node = model.node_id(&ctx.node);
    for i in ports {
        write_service(
            out,
            i as u32,
            &model.ports[i],
            ctx,
            node,
            if_local.as_ref(),
            if_not_local.as_ref(),
        );
    }
}

/// A table holding nothing, for writing a run of service ports into.
fn empty_like(t: &NftablesRules) -> NftablesRules {
    NftablesRules {
        family: t.family,
        chains: Vec::new(),
        rules: Vec::new(),
        exprs: Vec::new(),
        numgen: Vec::new(),
        cluster_ips: Vec::new(),
        nodeport_ips: None,
        service_ips: Vec::new(),
        service_nodeports: Vec::new(),
        no_endpoint_services: Vec::new(),
        no_endpoint_nodeports: Vec::new(),
        firewall_ips: Vec::new(),
        affinity_sets: Vec::new(),
        trace_chains: t.trace_chains,
        model: t.model.clone(),
        index: OnceLock::new(),
    }
}

fn write_service(
    out: &mut NftablesRules,
    i: u32,
    sp: &ServicePortInfo,
    ctx: &NodeCtx,
    node: Option<u32>,
    if_local: Option<&Expr>,
    if_not_local: Option<&Expr>,
) {
    let cat = categorize(sp, node);
    let cluster_chain = NChain::Service(i);
    let local_chain = NChain::Local(i);
    let ext_chain = NChain::External(i);
    let fw_chain = NChain::Firewall(i);

    let has_endpoints = cat.has_any;
    let cluster_empty = cat.cluster_is_empty();
    let local_empty = cat.local_is_empty();
    let uses_cluster_chain = !cluster_empty && sp.uses_cluster_endpoints();
    let uses_local_chain = !local_empty && sp.uses_local_endpoints();
    let mut internal_chain = cluster_chain;
    let mut has_internal = has_endpoints;
    if sp.internal_policy_local {
        internal_chain = local_chain;
        if local_empty {
            has_internal = false;
        }
    }
    let mut external_policy_chain = cluster_chain;
    let mut has_external = has_endpoints;
    if sp.external_policy_local {
        external_policy_chain = local_chain;
        if local_empty {
            has_external = false;
        }
    }
    let uses_ext_chain = has_endpoints && sp.externally_accessible();
    let uses_fw_chain = !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty();
    let reject = MapVerdict::Goto(REJECT_CHAIN);
    let (int_verdict, ext_verdict) = if !has_endpoints {
        (reject, reject)
    } else {
        (MapVerdict::Drop, MapVerdict::Drop)
    };
    let proto = sp.proto;

    out.cluster_ips.push(i);
    if has_internal {
        out.service_ips.push(DestElem {
            ip: sp.cluster_ip,
            cluster_ip_of: Some(i),
            proto,
            port: sp.port,
            comment: None,
            verdict: MapVerdict::Goto(internal_chain),
        });
    } else {
        out.no_endpoint_services.push(DestElem {
            ip: sp.cluster_ip,
            cluster_ip_of: Some(i),
            proto,
            port: sp.port,
            comment: Some(i),
            verdict: int_verdict,
        });
    }
    for &eip in &sp.external_ips {
        if has_endpoints {
            out.service_ips.push(DestElem {
                ip: eip,
                cluster_ip_of: None,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain),
            });
        }
        if !has_external {
            out.no_endpoint_services.push(DestElem {
                ip: eip,
                cluster_ip_of: None,
                proto,
                port: sp.port,
                comment: Some(i),
                verdict: ext_verdict,
            });
        }
    }
    for &lbip in &sp.lb_vips {
        if has_endpoints {
            out.service_ips.push(DestElem {
                ip: lbip,
                cluster_ip_of: None,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain),
            });
        }
        if uses_fw_chain {
            out.firewall_ips.push(DestElem {
                ip: lbip,
                cluster_ip_of: None,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(fw_chain),
            });
        }
    }
    if !has_external {
        for &lbip in &sp.lb_vips {
            out.no_endpoint_services.push(DestElem {
                ip: lbip,
                cluster_ip_of: None,
                proto,
                port: sp.port,
                comment: Some(i),
                verdict: ext_verdict,
            });
        }
    }
    if sp.node_port != 0 {
        if has_endpoints {
            out.service_nodeports.push(PortElem {
                proto,
                port: sp.node_port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain),
            });
        }
        if !has_external {
            out.no_endpoint_nodeports.push(PortElem {
                proto,
                port: sp.node_port,
                comment: Some(i),
                verdict: ext_verdict,
            });
        }
    }
    if let Some(secs) = sp.affinity_seconds {
        for (j, _) in cat.all_reachable() {
            out.affinity_sets.push((i, j, secs));
        }
    }

    // The chains of this service port, in the order kube-proxy creates them: the endpoint
    // chains, then the service, local, external and firewall chains. Each chain's rules are
    // written in one go (kube-proxy writes them interleaved; only the order within a chain is
    // visible).
    let mut chains: [(NChain, u32, u32); 4] = [(NChain::Fixed(""), 0, 0); 4];
    let mut n_chains = 0;
    let internal_masq = |e: &mut Emitter<'_>| {
        let base = [Expr::DaddrClusterIp(i), Expr::Dport(proto, sp.port)];
        if ctx.masquerade_all {
            e.rule(base, Stmt::Jump(MARK_FOR_MASQUERADE), None);
        } else if let Some(x) = if_not_local {
            e.rule(
                base.into_iter().chain([x.clone()]),
                Stmt::Jump(MARK_FOR_MASQUERADE),
                None,
            );
        }
    };
    let write_eps = |e: &mut Emitter<'_>, eps: &mut dyn Iterator<Item = (u32, &EndpointInfo)>| {
        let first = e.out.numgen.len() as u32;
        for (j, _) in eps {
            e.out.numgen.push(j);
        }
        let len = e.out.numgen.len() as u32 - first;
        if sp.affinity_seconds.is_some() {
            for k in first..first + len {
                let j = e.out.numgen[k as usize];
                e.rule(
                    [Expr::SaddrInAffinitySet(i, j)],
                    Stmt::Goto(NChain::Endpoint(i, j)),
                    None,
                );
            }
        }
        e.rule(
            [],
            Stmt::Numgen {
                port: i,
                first,
                len,
            },
            None,
        );
    };
    if uses_cluster_chain {
        let mut e = Emitter::begin(out);
        if has_internal && internal_chain == cluster_chain {
            internal_masq(&mut e);
        }
        write_eps(&mut e, &mut cat.cluster());
        let (f, n) = e.end();
        chains[n_chains] = (cluster_chain, f, n);
        n_chains += 1;
    }
    if uses_local_chain {
        let mut e = Emitter::begin(out);
        if has_internal && internal_chain == local_chain {
            internal_masq(&mut e);
        }
        write_eps(&mut e, &mut cat.local());
        let (f, n) = e.end();
        chains[n_chains] = (local_chain, f, n);
        n_chains += 1;
    }
    if uses_ext_chain {
        let mut e = Emitter::begin(out);
        if !sp.external_policy_local {
            e.rule([], Stmt::Jump(MARK_FOR_MASQUERADE), None);
        } else {
            if let Some(x) = if_local {
                e.rule(
                    [x.clone()],
                    Stmt::Goto(cluster_chain),
                    Some("short-circuit pod traffic"),
                );
            }
            e.rule(
                [Expr::FibSaddrLocal],
                Stmt::Jump(MARK_FOR_MASQUERADE),
                Some("masquerade local traffic"),
            );
            e.rule(
                [Expr::FibSaddrLocal],
                Stmt::Goto(cluster_chain),
                Some("short-circuit local traffic"),
            );
        }
        if has_external {
            e.rule([], Stmt::Goto(external_policy_chain), None);
        }
        let (f, n) = e.end();
        chains[n_chains] = (ext_chain, f, n);
        n_chains += 1;
    }
    if uses_fw_chain {
        let mut sources: Vec<Addr> = sp.lb_source_ranges.iter().map(|n| Addr::Net(*n)).collect();
        let allow_from_node = ctx
            .node_ip
            .is_some_and(|ip| sp.lb_source_ranges.iter().any(|n| n.contains(&ip)));
        if allow_from_node {
            sources.extend(sp.lb_vips.iter().map(|ip| Addr::Ip(*ip)));
        }
        let mut e = Emitter::begin(out);
        e.rule([Expr::SaddrNotAnon(sources)], Stmt::Drop, None);
        let (f, n) = e.end();
        chains[n_chains] = (fw_chain, f, n);
        n_chains += 1;
    }
    for (j, _) in cat.all_reachable() {
        let mut e = Emitter::begin(out);
        e.rule(
            [Expr::SaddrEndpoint(i, j)],
            Stmt::Jump(MARK_FOR_MASQUERADE),
            None,
        );
        if sp.affinity_seconds.is_some() {
            e.rule([], Stmt::UpdateAffinitySet(i, j), None);
        }
        e.rule([], Stmt::Dnat(proto, i, j), None);
        let (first_rule, n_rules) = e.end();
        out.chains.push(NftChain {
            name: NChain::Endpoint(i, j),
            hook: None,
            comment: None,
            first_rule,
            n_rules,
        });
    }
    for &(name, first_rule, n_rules) in &chains[..n_chains] {
        out.chains.push(NftChain {
            name,
            hook: None,
            comment: None,
            first_rule,
            n_rules,
        });
    }
}

impl LocalDetector {
    pub(crate) fn nft_if_local(&self) -> Option<Expr> {
        match self {
            LocalDetector::NoOp => None,
            LocalDetector::Cidr(n) => Some(Expr::Saddr(Addr::Net(*n), false)),
            LocalDetector::Interface(i) => Some(Expr::Iifname(i.clone(), false)),
        }
    }
    pub(crate) fn nft_if_not_local(&self) -> Option<Expr> {
        match self {
            LocalDetector::NoOp => None,
            LocalDetector::Cidr(n) => Some(Expr::Saddr(Addr::Net(*n), true)),
            LocalDetector::Interface(i) => Some(Expr::Iifname(i.clone(), true)),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Rendering

fn ipx(family: Family) -> &'static str {
    match family {
        Family::IPv4 => "ip",
        Family::IPv6 => "ip6",
    }
}

fn neq(out: &mut String, neg: bool) {
    if neg {
        out.push_str("!= ");
    }
}

impl NftablesRules {
    fn push_expr(&self, e: &Expr, out: &mut String) {
        let ipx = ipx(self.family);
        match e {
            Expr::CtStateNew => out.push_str("ct state new"),
            Expr::Daddr(a, neg) => {
                out.push_str(ipx);
                out.push_str(" daddr ");
                neq(out, *neg);
                a.push_to(out);
            }
            Expr::DaddrClusterIp(i) => {
                out.push_str(ipx);
                out.push_str(" daddr ");
                out.push_str(port(&self.model, *i).cluster_ip_text());
            }
            Expr::DaddrInSet(set) => {
                out.push_str(ipx);
                out.push_str(" daddr @");
                out.push_str(set);
            }
            Expr::DaddrAnon(nets) => {
                out.push_str(ipx);
                out.push_str(" daddr { ");
                for (k, n) in nets.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    push_net(out, *n);
                }
                out.push_str(" }");
            }
            Expr::Dport(p, port) => {
                out.push_str(p.as_str());
                out.push_str(" dport ");
                push_u32(out, (*port).into());
            }
            Expr::Saddr(a, neg) => {
                out.push_str(ipx);
                out.push_str(" saddr ");
                neq(out, *neg);
                a.push_to(out);
            }
            Expr::SaddrNotAnon(list) => {
                out.push_str(ipx);
                out.push_str(" saddr != { ");
                for (k, a) in list.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    a.push_to(out);
                }
                out.push_str(" }");
            }
            Expr::SaddrEndpoint(i, j) => {
                out.push_str(ipx);
                out.push_str(" saddr ");
                out.push_str(port(&self.model, *i).endpoint_ip_text(*j));
            }
            Expr::SaddrInAffinitySet(i, j) => {
                out.push_str(ipx);
                out.push_str(" saddr @affinity-");
                out.push_str(self.model.nft_endpoint_base(*i, *j));
            }
            Expr::FibSaddrLocal => out.push_str("fib saddr type local"),
            Expr::FibDaddrLocal => out.push_str("fib daddr type local"),
            Expr::Iifname(i, neg) => {
                out.push_str("iifname ");
                neq(out, *neg);
                out.push('"');
                out.push_str(i);
                out.push('"');
            }
            Expr::MarkAndZero(m) => {
                out.push_str("mark and ");
                out.push_str(m);
                out.push_str(" == 0");
            }
        }
    }

    fn push_stmt(&self, st: &Stmt, out: &mut String) {
        let ipx = ipx(self.family);
        let model = &*self.model;
        match st {
            Stmt::Jump(c) => {
                out.push_str("jump ");
                c.push_to(out, model);
            }
            Stmt::Goto(c) => {
                out.push_str("goto ");
                c.push_to(out, model);
            }
            Stmt::Drop => out.push_str("drop"),
            Stmt::Reject => out.push_str("reject"),
            Stmt::Return => out.push_str("return"),
            Stmt::MarkSetOr(m) => {
                out.push_str("mark set mark or ");
                out.push_str(m);
            }
            Stmt::MarkSetXor(m) => {
                out.push_str("mark set mark xor ");
                out.push_str(m);
            }
            Stmt::Masquerade => out.push_str("masquerade fully-random"),
            Stmt::Dnat(p, i, j) => {
                out.push_str("meta l4proto ");
                out.push_str(p.as_str());
                out.push_str(" dnat to ");
                out.push_str(port(model, *i).endpoint_addr(*j));
            }
            Stmt::UpdateAffinitySet(i, j) => {
                out.push_str("update @affinity-");
                out.push_str(model.nft_endpoint_base(*i, *j));
                out.push_str(" { ");
                out.push_str(ipx);
                out.push_str(" saddr }");
            }
            Stmt::VmapDest(m) => {
                out.push_str(ipx);
                out.push_str(" daddr . meta l4proto . th dport vmap @");
                out.push_str(m);
            }
            Stmt::VmapPort(m) => {
                out.push_str("meta l4proto . th dport vmap @");
                out.push_str(m);
            }
            Stmt::Numgen { port, first, len } => {
                out.push_str("numgen random mod ");
                push_u32(out, *len);
                out.push_str(" vmap { ");
                for (k, c) in self.numgen_chains(*port, *first, *len).enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    push_u32(out, k as u32);
                    out.push_str(" : goto ");
                    c.push_to(out, model);
                }
                out.push_str(" }");
            }
        }
    }

    /// Appends one rule as it appears inside its chain block.
    pub fn push_rule(&self, r: &NftRule, out: &mut String) {
        for e in self.exprs(r) {
            self.push_expr(e, out);
            out.push(' ');
        }
        self.push_stmt(&r.stmt, out);
        if let Some(c) = r.comment {
            out.push_str(" comment \"");
            out.push_str(c);
            out.push('"');
        }
    }

    /// One rule as it appears inside its chain block.
    pub fn rule_text(&self, r: &NftRule) -> String {
        let mut s = String::new();
        self.push_rule(r, &mut s);
        s
    }

    fn push_verdict(&self, v: MapVerdict, out: &mut String) {
        match v {
            MapVerdict::Goto(c) => {
                out.push_str("goto ");
                c.push_to(out, &self.model);
            }
            MapVerdict::Drop => out.push_str("drop"),
        }
    }

    fn push_comment(&self, c: Option<u32>, out: &mut String) {
        if let Some(i) = c {
            out.push_str(" comment \"");
            out.push_str(&port(&self.model, i).name);
            out.push('"');
        }
    }
}

const ELEMENT_SEPARATOR: &str = ",\n\t\t\t     ";

/// Appends `items`, joined as `nft` lists set elements.
fn join_elems<T>(out: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(ELEMENT_SEPARATOR);
        }
        f(out, it);
    }
}

/// Appends the `elements = { … }` line of a set or map from the joined elements of each part
/// (nothing when every part is empty).
fn push_elements<'s>(out: &mut String, parts: impl Iterator<Item = &'s str>) {
    let mut first = true;
    for p in parts.filter(|p| !p.is_empty()) {
        if first {
            out.push_str("\t\telements = { ");
            first = false;
        } else {
            out.push_str(ELEMENT_SEPARATOR);
        }
        out.push_str(p);
    }
    if !first {
        out.push_str(" }\n");
    }
}

/// The text of a table, or of part of one, in pieces: the joined elements of each set and
/// map (in [`SETS`] order), the affinity sets, the chains.
#[derive(Default)]
struct TextPart {
    elements: [String; 7],
    affinity: String,
    chains: String,
}

/// The sets and maps of the table, in the order `nft` lists them: name, comment, whether it
/// is a map of destinations (address . protocol . port), of ports (protocol . port), or a set
/// of addresses.
const SETS: [(&str, &str, SetKind); 7] = [
    ("cluster-ips", "Active ClusterIPs", SetKind::Addrs),
    (
        "nodeport-ips",
        "IPs that accept NodePort traffic",
        SetKind::Addrs,
    ),
    (
        "firewall-ips",
        "destinations that are subject to LoadBalancerSourceRanges",
        SetKind::Dests,
    ),
    (
        "no-endpoint-nodeports",
        "vmap to drop or reject packets to service nodeports with no endpoints",
        SetKind::Ports,
    ),
    (
        "no-endpoint-services",
        "vmap to drop or reject packets to services with no endpoints",
        SetKind::Dests,
    ),
    (
        "service-ips",
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        SetKind::Dests,
    ),
    ("service-nodeports", "NodePort traffic", SetKind::Ports),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetKind {
    Addrs,
    Dests,
    Ports,
}

fn render_part(r: &NftablesRules) -> TextPart {
    let mut p = TextPart::default();
    let dest = |out: &mut String, e: &DestElem| {
        match e.cluster_ip_of {
            Some(i) => out.push_str(r.model.ports[i as usize].cluster_ip_text()),
            None => push_ip(out, e.ip),
        }
        out.push_str(" . ");
        out.push_str(e.proto.as_str());
        out.push_str(" . ");
        push_u32(out, e.port.into());
        r.push_comment(e.comment, out);
        out.push_str(" : ");
        r.push_verdict(e.verdict, out);
    };
    let port = |out: &mut String, e: &PortElem| {
        out.push_str(e.proto.as_str());
        out.push_str(" . ");
        push_u32(out, e.port.into());
        r.push_comment(e.comment, out);
        out.push_str(" : ");
        r.push_verdict(e.verdict, out);
    };
    let addr = |out: &mut String, ip: &IpAddr| push_ip(out, *ip);
    let [
        cluster,
        nodeport,
        firewall,
        no_ep_np,
        no_ep_svc,
        service,
        service_np,
    ] = &mut p.elements;
    join_elems(cluster, &r.cluster_ips, |out, &i| {
        out.push_str(r.model.ports[i as usize].cluster_ip_text())
    });
    if let Some(ips) = &r.nodeport_ips {
        join_elems(nodeport, ips, addr);
    }
    join_elems(firewall, &r.firewall_ips, dest);
    join_elems(no_ep_np, &r.no_endpoint_nodeports, port);
    join_elems(no_ep_svc, &r.no_endpoint_services, dest);
    join_elems(service, &r.service_ips, dest);
    join_elems(service_np, &r.service_nodeports, port);
    let addr_t = match r.family {
        Family::IPv4 => "ipv4_addr",
        Family::IPv6 => "ipv6_addr",
    };
    for &(i, j, secs) in &r.affinity_sets {
        let out = &mut p.affinity;
        out.push_str("\tset affinity-");
        out.push_str(r.model.nft_endpoint_base(i, j));
        out.push_str(" {\n\t\ttype ");
        out.push_str(addr_t);
        out.push_str("\n\t\tflags dynamic,timeout\n\t\ttimeout ");
        push_u32(out, secs);
        out.push_str("s\n\t}\n\n");
    }
    p.chains.reserve(r.rules.len() * 128 + r.chains.len() * 48);
    for c in &r.chains {
        let out = &mut p.chains;
        out.push_str("\tchain ");
        c.name.push_to(out, &r.model);
        out.push_str(" {\n");
        if let Some(comment) = c.comment {
            out.push_str("\t\tcomment \"");
            out.push_str(comment);
            out.push_str("\"\n");
        }
        if let Some(h) = &c.hook {
            for part in [
                "\t\ttype ",
                h.type_,
                " hook ",
                h.hook,
                " priority ",
                h.priority,
                "; policy accept;\n",
            ] {
                out.push_str(part);
            }
        }
        for rule in r.chain_rules(c) {
            out.push_str("\t\t");
            r.push_rule(rule, out);
            out.push('\n');
        }
        out.push_str("\t}\n\n");
    }
    p
}

/// Joins the parts of a table (its fixed part first, then runs of service ports) into the
/// `nft list ruleset` text.
fn assemble(r: &NftablesRules, parts: &[TextPart], out: &mut String) {
    let fam = r.table_family();
    let addr_t = match r.family {
        Family::IPv4 => "ipv4_addr",
        Family::IPv6 => "ipv6_addr",
    };
    out.push_str("table ");
    out.push_str(fam);
    out.push_str(" kube-proxy {\n");
    out.push_str("\tcomment \"rules for kube-proxy\"\n");
    for (k, (name, comment, kind)) in SETS.iter().enumerate() {
        // nodeport-ips exists only when NodePorts are not on every local address.
        if k == 1 && r.nodeport_ips.is_none() {
            continue;
        }
        let (word, ty) = match kind {
            SetKind::Addrs => ("set", ""),
            SetKind::Dests => ("map", " . inet_proto . inet_service : verdict"),
            SetKind::Ports => ("map", ""),
        };
        for part in ["\t", word, " ", name, " {\n\t\ttype "] {
            out.push_str(part);
        }
        if *kind == SetKind::Ports {
            out.push_str("inet_proto . inet_service : verdict");
        } else {
            out.push_str(addr_t);
            out.push_str(ty);
        }
        out.push_str("\n\t\tcomment \"");
        out.push_str(comment);
        out.push_str("\"\n");
        push_elements(out, parts.iter().map(|p| p.elements[k].as_str()));
        out.push_str("\t}\n\n");
    }
    for p in parts {
        out.push_str(&p.affinity);
    }
    for p in parts {
        out.push_str(&p.chains);
    }
    // Drop the blank line after the last block.
    if out.ends_with("\n\n") {
        out.pop();
    }
    out.push_str("}\n");
}

/// Renders the table in `nft list ruleset` layout.
pub fn render(r: &NftablesRules) -> String {
    let mut out = String::with_capacity(render_capacity(r));
    render_into(r, &mut out);
    out
}

/// A generous estimate of the rendered size: memory reserved but never written costs
/// nothing, a regrown buffer costs a copy of everything written so far.
pub fn render_capacity(r: &NftablesRules) -> usize {
    4096 + (r.element_count() + r.affinity_sets.len()) * 160
        + r.rules.len() * 160
        + r.chains.len() * 160
}

/// [`render`], appended to `out`.
pub fn render_into(r: &NftablesRules, out: &mut String) {
    r.model.name_all_nft();
    assemble(r, &[render_part(r)], out);
}

/// Renders the table of one node and family exactly as [`render`] renders [`build`]'s,
/// appended to `out`, without keeping it: the service ports are written and rendered in
/// runs, in parallel, each run's table dropped as soon as it is text, and the texts joined in
/// order (so the output does not depend on the number of threads).
pub fn render_node_into(model: &Arc<FamilyModel>, ctx: &NodeCtx, out: &mut String) {
    use rayon::prelude::*;
    let fixed = start(model, ctx, false);
    let mut parts = vec![render_part(&fixed)];
    // A names chunk of service ports at a time, so that each run's task makes and uses its
    // own ports' chain names.
    parts.par_extend((0..model.chunks()).into_par_iter().map(|k| {
        let run = model.chunk_range(k);
        let endpoints = model.endpoints_in(run.clone());
        let mut t = empty_like(&fixed);
        t.reserve_services(run.len(), endpoints);
        write_services(&mut t, ctx, run);
        render_part(&t)
    }));
    let size: usize = parts
        .iter()
        .map(|p| {
            p.elements.iter().map(String::len).sum::<usize>() + p.affinity.len() + p.chains.len()
        })
        .sum();
    out.reserve(size + 4096);
    assemble(&fixed, &parts, out);
}

// ------------------------------------------------------------------------------------------
// The tracer

fn addr_in_anon(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(&ip))
}

struct Tracer<'a> {
    r: &'a NftablesRules,
    p: &'a PacketCtx,
    dst: IpAddr,
    res: TraceResult,
}

impl Tracer<'_> {
    fn expr_matches(&self, e: &Expr) -> bool {
        let p = self.p;
        match e {
            Expr::CtStateNew => true,
            Expr::Daddr(a, neg) => a.contains(self.dst) != *neg,
            Expr::DaddrClusterIp(i) => port(&self.r.model, *i).cluster_ip == self.dst,
            Expr::DaddrInSet(set) => match *set {
                "cluster-ips" => self
                    .r
                    .cluster_ips
                    .iter()
                    .any(|&i| port(&self.r.model, i).cluster_ip == self.dst),
                "nodeport-ips" => self
                    .r
                    .nodeport_ips
                    .as_ref()
                    .is_some_and(|v| v.contains(&self.dst)),
                _ => false,
            },
            Expr::DaddrAnon(list) => addr_in_anon(list, self.dst),
            Expr::Dport(proto, port) => *proto == p.proto && *port == p.dport,
            Expr::Saddr(a, neg) => a.contains(p.src) != *neg,
            Expr::SaddrNotAnon(list) => !list.iter().any(|a| a.contains(p.src)),
            Expr::SaddrEndpoint(i, j) => endpoint(&self.r.model, *i, *j).ip == p.src,
            // Affinity sets start empty: the tracer follows a first connection.
            Expr::SaddrInAffinitySet(..) => false,
            // The nftables test tracer treats only the node's own addresses as local.
            Expr::FibSaddrLocal => p.node_ips.contains(&p.src),
            Expr::FibDaddrLocal => p.node_ips.contains(&self.dst),
            Expr::Iifname(_, neg) => p.from_local_pod != *neg,
            Expr::MarkAndZero(_) => false,
        }
    }

    fn lookup_dest<'b>(&self, elems: &'b [DestElem]) -> Option<&'b DestElem> {
        elems
            .iter()
            .find(|e| e.ip == self.dst && e.proto == self.p.proto && e.port == self.p.dport)
    }

    fn lookup_port<'b>(&self, elems: &'b [PortElem]) -> Option<&'b PortElem> {
        elems
            .iter()
            .find(|e| e.proto == self.p.proto && e.port == self.p.dport)
    }

    fn matched(&mut self, chain: NChain, rule: &NftRule) {
        self.res.matches.push(MatchedRule {
            table: if self.r.family == Family::IPv4 {
                "ip kube-proxy"
            } else {
                "ip6 kube-proxy"
            },
            chain: chain.name(&self.r.model),
            rule: self.r.rule_text(rule),
        });
    }

    /// Runs a map verdict; returns whether it ended the packet's walk.
    fn run_verdict(&mut self, v: MapVerdict, depth: usize) -> bool {
        match v {
            MapVerdict::Drop => {
                self.res.outputs.push("DROP".into());
                true
            }
            MapVerdict::Goto(c) => self.run_chain(c, depth + 1),
        }
    }

    fn run_chain(&mut self, name: NChain, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        let r = self.r;
        let Some(chain) = r.chain(name) else {
            return false;
        };
        for rule in r.chain_rules(chain) {
            if !r.exprs(rule).iter().all(|e| self.expr_matches(e)) {
                continue;
            }
            match &rule.stmt {
                Stmt::Jump(c) if *c == MARK_FOR_MASQUERADE => {
                    self.matched(name, rule);
                    self.res.masq = true;
                }
                Stmt::Jump(c) => {
                    self.matched(name, rule);
                    if self.run_chain(*c, depth + 1) {
                        return true;
                    }
                }
                Stmt::Goto(c) => {
                    self.matched(name, rule);
                    return self.run_chain(*c, depth + 1);
                }
                Stmt::Drop => {
                    self.matched(name, rule);
                    self.res.outputs.push("DROP".into());
                    return true;
                }
                Stmt::Reject => {
                    self.matched(name, rule);
                    self.res.outputs.push("REJECT".into());
                    return true;
                }
                Stmt::Return => {
                    self.matched(name, rule);
                    return false;
                }
                Stmt::Dnat(_, i, j) => {
                    self.matched(name, rule);
                    self.res
                        .outputs
                        .push(port(&r.model, *i).endpoint_addr(*j).to_string());
                    return true;
                }
                Stmt::VmapDest(map) => {
                    let elems = match *map {
                        "service-ips" => &r.service_ips,
                        "no-endpoint-services" => &r.no_endpoint_services,
                        "firewall-ips" => &r.firewall_ips,
                        _ => continue,
                    };
                    if let Some(e) = self.lookup_dest(elems) {
                        self.matched(name, rule);
                        return self.run_verdict(e.verdict, depth);
                    }
                }
                Stmt::VmapPort(map) => {
                    let elems = match *map {
                        "service-nodeports" => &r.service_nodeports,
                        "no-endpoint-nodeports" => &r.no_endpoint_nodeports,
                        _ => continue,
                    };
                    if let Some(e) = self.lookup_port(elems) {
                        self.matched(name, rule);
                        return self.run_verdict(e.verdict, depth);
                    }
                }
                Stmt::Numgen { port, first, len } => {
                    // Every endpoint is a possible choice: follow them all.
                    self.matched(name, rule);
                    for c in r.numgen_chains(*port, *first, *len) {
                        self.run_chain(c, depth + 1);
                    }
                    return true;
                }
                Stmt::UpdateAffinitySet(..)
                | Stmt::MarkSetOr(_)
                | Stmt::MarkSetXor(_)
                | Stmt::Masquerade => {}
            }
        }
        false
    }
}

/// `tracePacket` of the nftables `helpers_test.go`: the pre-DNAT filter chain (stop if it
/// ended the packet), `nat-prerouting`, then with the destination rewritten to the first DNAT
/// output `filter-forward` (stop if it ended the packet) and `filter-input`.
pub fn trace(r: &NftablesRules, p: &PacketCtx) -> TraceResult {
    let mut t = Tracer {
        r,
        p,
        dst: p.dst,
        res: TraceResult::default(),
    };
    let [pre, nat, fwd, input] = r.trace_chains.map(NChain::Fixed);
    if t.run_chain(pre, 0) {
        return t.res;
    }
    t.run_chain(nat, 0);
    if let Some(first) = t.res.outputs.first()
        && let Some((ip, _)) = super::split_host_port(first)
    {
        t.dst = ip;
    }
    if t.run_chain(fwd, 0) {
        return t.res;
    }
    t.run_chain(input, 0);
    t.res
}
