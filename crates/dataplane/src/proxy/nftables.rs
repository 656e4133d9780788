//! kube-proxy's nftables mode: the `ip kube-proxy` / `ip6 kube-proxy` table of one node, its
//! `nft list ruleset`-style text (which `nft -f` reads back), and the packet tracer of the
//! nftables `proxier_test.go` (`helpers_test.go`).
//!
//! Version differences modelled: the `cluster-ips-check` chain (1.30+), the "Drop traffic to
//! unallocated ClusterIPs" rule (needs ServiceCIDR objects, on by default from 1.33), and the
//! filter chain layout, which kubernetes/kubernetes#132456 changed in 1.34 from
//! `filter-prerouting`/`filter-output-post-dnat` at DNAT−10/+10 to `filter-*-pre-dnat` at
//! DNAT−10 plus `filter-input`/`filter-forward`/`filter-output` at priority 0.
// kube-proxy: pkg/proxy/nftables/proxier.go (setupNFTables, syncProxyRules)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use knetsim_ipam::Family;

use super::iptables::{Addr, MatchedRule, TraceResult};
use super::model::{FamilyModel, Proto, ServicePortInfo, categorize};
use super::{LocalDetector, NodeCtx, PacketCtx};

/// A match expression of a rule.
#[derive(Clone, Debug)]
pub enum Expr {
    CtStateNew,
    /// `ip daddr X` / `ip daddr != X`.
    Daddr(Addr, bool),
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
    /// `ip saddr @set`.
    SaddrInSet(Arc<str>),
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
    Jump(Arc<str>),
    Goto(Arc<str>),
    Drop,
    Reject,
    Return,
    MarkSetOr(Arc<str>),
    MarkSetXor(Arc<str>),
    Masquerade,
    /// `meta l4proto tcp dnat to ip:port`.
    Dnat(Proto, Arc<str>),
    /// `update @set { ip saddr }`.
    UpdateSet(Arc<str>),
    /// `ip daddr . meta l4proto . th dport vmap @map`.
    VmapDest(&'static str),
    /// `meta l4proto . th dport vmap @map`.
    VmapPort(&'static str),
    /// `numgen random mod N vmap { 0 : goto a , 1 : goto b }`.
    Numgen(Vec<Arc<str>>),
}

#[derive(Clone, Debug)]
pub struct NftRule {
    pub exprs: Vec<Expr>,
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

#[derive(Clone, Debug)]
pub struct NftChain {
    pub name: Arc<str>,
    pub hook: Option<Hook>,
    pub comment: Option<&'static str>,
    pub rules: Vec<NftRule>,
}

/// A verdict stored in a verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapVerdict {
    Goto(Arc<str>),
    Drop,
}

impl std::fmt::Display for MapVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapVerdict::Goto(c) => write!(f, "goto {c}"),
            MapVerdict::Drop => f.write_str("drop"),
        }
    }
}

/// An element of `service-ips`, `no-endpoint-services` or `firewall-ips`.
#[derive(Clone, Debug)]
pub struct DestElem {
    pub ip: IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub comment: Option<Arc<str>>,
    pub verdict: MapVerdict,
}

/// An element of `service-nodeports` or `no-endpoint-nodeports`.
#[derive(Clone, Debug)]
pub struct PortElem {
    pub proto: Proto,
    pub port: u16,
    pub comment: Option<Arc<str>>,
    pub verdict: MapVerdict,
}

/// One family's `kube-proxy` table on one node.
#[derive(Clone, Debug)]
pub struct NftablesRules {
    pub family: Family,
    pub chains: Vec<NftChain>,
    pub cluster_ips: Vec<IpAddr>,
    /// `None` when kube-proxy deletes the set (NodePorts on every local address).
    pub nodeport_ips: Option<Vec<IpAddr>>,
    pub service_ips: Vec<DestElem>,
    pub service_nodeports: Vec<PortElem>,
    pub no_endpoint_services: Vec<DestElem>,
    pub no_endpoint_nodeports: Vec<PortElem>,
    pub firewall_ips: Vec<DestElem>,
    /// `affinity-…` sets with their timeout in seconds.
    pub affinity_sets: Vec<(Arc<str>, u32)>,
    /// The base chains the tracer walks, in `tracePacket`'s order: the pre-DNAT filter chain,
    /// `nat-prerouting`, `filter-forward`, `filter-input`.
    pub trace_chains: [&'static str; 4],
    index: HashMap<Arc<str>, usize>,
}

impl NftablesRules {
    pub fn table_family(&self) -> &'static str {
        match self.family {
            Family::IPv4 => "ip",
            Family::IPv6 => "ip6",
        }
    }

    pub fn chain(&self, name: &str) -> Option<&NftChain> {
        self.index.get(name).map(|&i| &self.chains[i])
    }

    /// Rules plus map and set elements, the way `nft` would count table content.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
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

struct Builder {
    chains: Vec<NftChain>,
    index: HashMap<Arc<str>, usize>,
}

impl Builder {
    fn ensure(&mut self, name: &Arc<str>) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.chains.push(NftChain {
            name: name.clone(),
            hook: None,
            comment: None,
            rules: Vec::new(),
        });
        let i = self.chains.len() - 1;
        self.index.insert(name.clone(), i);
        i
    }
    fn base(
        &mut self,
        name: &'static str,
        type_: &'static str,
        hook: &'static str,
        prio: &'static str,
    ) {
        let i = self.ensure(&Arc::from(name));
        self.chains[i].hook = Some(Hook {
            type_,
            hook,
            priority: prio,
        });
    }
    fn rule(
        &mut self,
        chain: &Arc<str>,
        exprs: Vec<Expr>,
        stmt: Stmt,
        comment: Option<&'static str>,
    ) {
        let i = self.ensure(chain);
        self.chains[i].rules.push(NftRule {
            exprs,
            stmt,
            comment,
        });
    }
}

fn s(x: &'static str) -> Arc<str> {
    Arc::from(x)
}

/// Builds the table of one node and family.
pub fn build(model: &FamilyModel, ctx: &NodeCtx) -> NftablesRules {
    let v = ctx.version;
    let new_layout = v.at_least(34);
    let has_cluster_ips_check = v.at_least(30);
    let mut b = Builder {
        chains: Vec::new(),
        index: HashMap::new(),
    };
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
        b.ensure(&s(dst));
        b.rule(
            &s(src),
            if ct { new() } else { vec![] },
            Stmt::Jump(s(dst)),
            None,
        );
    }
    for c in ["services", "masquerading", "mark-for-masquerade"] {
        b.ensure(&s(c));
    }
    b.rule(
        &s("mark-for-masquerade"),
        vec![],
        Stmt::MarkSetOr(mark.clone()),
        None,
    );
    b.rule(
        &s("masquerading"),
        vec![Expr::MarkAndZero(mark.clone())],
        Stmt::Return,
        None,
    );
    b.rule(
        &s("masquerading"),
        vec![],
        Stmt::MarkSetXor(mark.clone()),
        None,
    );
    b.rule(&s("masquerading"), vec![], Stmt::Masquerade, None);

    if has_cluster_ips_check {
        b.rule(
            &s("cluster-ips-check"),
            vec![Expr::DaddrInSet("cluster-ips")],
            Stmt::Reject,
            Some("Reject traffic to invalid ports of ClusterIPs"),
        );
        if v.at_least(33) && !ctx.service_cidrs.is_empty() {
            b.rule(
                &s("cluster-ips-check"),
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

    b.ensure(&s("reject-chain"));
    let ri = b.index[&s("reject-chain")];
    b.chains[ri].comment = Some("helper for @no-endpoint-services / @no-endpoint-nodeports");
    b.rule(&s("reject-chain"), vec![], Stmt::Reject, None);
    b.rule(
        &s("service-endpoints-check"),
        vec![],
        Stmt::VmapDest("no-endpoint-services"),
        None,
    );
    if nodeport_ips.is_none() {
        b.rule(
            &s("nodeport-endpoints-check"),
            vec![no_localhost()],
            Stmt::VmapPort("no-endpoint-nodeports"),
            None,
        );
    } else {
        b.rule(
            &s("nodeport-endpoints-check"),
            vec![Expr::DaddrInSet("nodeport-ips")],
            Stmt::VmapPort("no-endpoint-nodeports"),
            None,
        );
    }
    b.rule(
        &s("firewall-check"),
        vec![],
        Stmt::VmapDest("firewall-ips"),
        None,
    );
    b.rule(&s("services"), vec![], Stmt::VmapDest("service-ips"), None);
    if nodeport_ips.is_none() {
        b.rule(
            &s("services"),
            vec![Expr::FibDaddrLocal, no_localhost()],
            Stmt::VmapPort("service-nodeports"),
            None,
        );
    } else {
        b.rule(
            &s("services"),
            vec![Expr::DaddrInSet("nodeport-ips")],
            Stmt::VmapPort("service-nodeports"),
            None,
        );
    }

    let mut out = NftablesRules {
        family: ctx.family,
        chains: Vec::new(),
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
        index: HashMap::new(),
    };
    for sp in &model.ports {
        write_service(&mut b, &mut out, sp, ctx);
    }
    out.chains = b.chains;
    out.index = b.index;
    out
}

fn write_service(b: &mut Builder, out: &mut NftablesRules, sp: &ServicePortInfo, ctx: &NodeCtx) {
    let cat = categorize(sp, &ctx.node);
    let cluster_chain: Arc<str> = format!("service-{}", sp.nft_base).into();
    let local_chain: Arc<str> = format!("local-{}", sp.nft_base).into();
    let ext_chain: Arc<str> = format!("external-{}", sp.nft_base).into();
    let fw_chain: Arc<str> = format!("firewall-{}", sp.nft_base).into();
    let ep_chain =
        |e: &super::model::EndpointInfo| -> Arc<str> { format!("endpoint-{}", e.nft_base).into() };
    let aff_set =
        |e: &super::model::EndpointInfo| -> Arc<str> { format!("affinity-{}", e.nft_base).into() };

    for e in &cat.all_reachable {
        b.ensure(&ep_chain(e));
    }
    let has_endpoints = cat.has_any;
    let uses_cluster_chain = !cat.cluster.is_empty() && sp.uses_cluster_endpoints();
    if uses_cluster_chain {
        b.ensure(&cluster_chain);
    }
    let uses_local_chain = !cat.local.is_empty() && sp.uses_local_endpoints();
    if uses_local_chain {
        b.ensure(&local_chain);
    }
    let mut internal_chain = cluster_chain.clone();
    let mut has_internal = has_endpoints;
    if sp.internal_policy_local {
        internal_chain = local_chain.clone();
        if cat.local.is_empty() {
            has_internal = false;
        }
    }
    let mut external_policy_chain = cluster_chain.clone();
    let mut has_external = has_endpoints;
    if sp.external_policy_local {
        external_policy_chain = local_chain.clone();
        if cat.local.is_empty() {
            has_external = false;
        }
    }
    let uses_ext_chain = has_endpoints && sp.externally_accessible();
    if uses_ext_chain {
        b.ensure(&ext_chain);
    }
    let reject = MapVerdict::Goto(s("reject-chain"));
    let (int_verdict, ext_verdict) = if !has_endpoints {
        (reject.clone(), reject)
    } else {
        (MapVerdict::Drop, MapVerdict::Drop)
    };
    let comment: Arc<str> = sp.name.clone();
    let proto = sp.proto;

    out.cluster_ips.push(sp.cluster_ip);
    if has_internal {
        out.service_ips.push(DestElem {
            ip: sp.cluster_ip,
            proto,
            port: sp.port,
            comment: None,
            verdict: MapVerdict::Goto(internal_chain.clone()),
        });
    } else {
        out.no_endpoint_services.push(DestElem {
            ip: sp.cluster_ip,
            proto,
            port: sp.port,
            comment: Some(comment.clone()),
            verdict: int_verdict,
        });
    }
    for &eip in &sp.external_ips {
        if has_endpoints {
            out.service_ips.push(DestElem {
                ip: eip,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain.clone()),
            });
        }
        if !has_external {
            out.no_endpoint_services.push(DestElem {
                ip: eip,
                proto,
                port: sp.port,
                comment: Some(comment.clone()),
                verdict: ext_verdict.clone(),
            });
        }
    }
    let uses_fw_chain = !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty();
    if uses_fw_chain {
        b.ensure(&fw_chain);
    }
    for &lbip in &sp.lb_vips {
        if has_endpoints {
            out.service_ips.push(DestElem {
                ip: lbip,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain.clone()),
            });
        }
        if uses_fw_chain {
            out.firewall_ips.push(DestElem {
                ip: lbip,
                proto,
                port: sp.port,
                comment: None,
                verdict: MapVerdict::Goto(fw_chain.clone()),
            });
        }
    }
    if !has_external {
        for &lbip in &sp.lb_vips {
            out.no_endpoint_services.push(DestElem {
                ip: lbip,
                proto,
                port: sp.port,
                comment: Some(comment.clone()),
                verdict: ext_verdict.clone(),
            });
        }
    }
    if sp.node_port != 0 {
        if has_endpoints {
            out.service_nodeports.push(PortElem {
                proto,
                port: sp.node_port,
                comment: None,
                verdict: MapVerdict::Goto(ext_chain.clone()),
            });
        }
        if !has_external {
            out.no_endpoint_nodeports.push(PortElem {
                proto,
                port: sp.node_port,
                comment: Some(comment.clone()),
                verdict: ext_verdict.clone(),
            });
        }
    }

    if has_internal {
        let base = vec![
            Expr::Daddr(Addr::Ip(sp.cluster_ip), false),
            Expr::Dport(proto, sp.port),
        ];
        if ctx.masquerade_all {
            b.rule(
                &internal_chain,
                base,
                Stmt::Jump(s("mark-for-masquerade")),
                None,
            );
        } else if let Some(e) = ctx.local_detector.nft_if_not_local() {
            let mut exprs = base;
            exprs.push(e);
            b.rule(
                &internal_chain,
                exprs,
                Stmt::Jump(s("mark-for-masquerade")),
                None,
            );
        }
    }
    if uses_ext_chain {
        if !sp.external_policy_local {
            b.rule(
                &ext_chain,
                vec![],
                Stmt::Jump(s("mark-for-masquerade")),
                None,
            );
        } else {
            if let Some(e) = ctx.local_detector.nft_if_local() {
                b.rule(
                    &ext_chain,
                    vec![e],
                    Stmt::Goto(cluster_chain.clone()),
                    Some("short-circuit pod traffic"),
                );
            }
            b.rule(
                &ext_chain,
                vec![Expr::FibSaddrLocal],
                Stmt::Jump(s("mark-for-masquerade")),
                Some("masquerade local traffic"),
            );
            b.rule(
                &ext_chain,
                vec![Expr::FibSaddrLocal],
                Stmt::Goto(cluster_chain.clone()),
                Some("short-circuit local traffic"),
            );
        }
        if has_external {
            b.rule(
                &ext_chain,
                vec![],
                Stmt::Goto(external_policy_chain.clone()),
                None,
            );
        }
    }
    if uses_fw_chain {
        let mut sources: Vec<Addr> = sp.lb_source_ranges.iter().map(|n| Addr::Net(*n)).collect();
        let allow_from_node = ctx
            .node_ip
            .is_some_and(|ip| sp.lb_source_ranges.iter().any(|n| n.contains(&ip)));
        if allow_from_node {
            sources.extend(sp.lb_vips.iter().map(|ip| Addr::Ip(*ip)));
        }
        b.rule(
            &fw_chain,
            vec![Expr::SaddrNotAnon(sources)],
            Stmt::Drop,
            None,
        );
    }
    if let Some(secs) = sp.affinity_seconds {
        for e in &cat.all_reachable {
            out.affinity_sets.push((aff_set(e), secs));
        }
    }
    let write_eps = |b: &mut Builder, chain: &Arc<str>, eps: &[&super::model::EndpointInfo]| {
        if sp.affinity_seconds.is_some() {
            for e in eps {
                b.rule(
                    chain,
                    vec![Expr::SaddrInSet(aff_set(e))],
                    Stmt::Goto(ep_chain(e)),
                    None,
                );
            }
        }
        b.rule(
            chain,
            vec![],
            Stmt::Numgen(eps.iter().map(|e| ep_chain(e)).collect()),
            None,
        );
    };
    if uses_cluster_chain {
        write_eps(b, &cluster_chain, &cat.cluster);
    }
    if uses_local_chain {
        write_eps(b, &local_chain, &cat.local);
    }
    for e in &cat.all_reachable {
        let c = ep_chain(e);
        b.rule(
            &c,
            vec![Expr::Saddr(Addr::Ip(e.ip), false)],
            Stmt::Jump(s("mark-for-masquerade")),
            None,
        );
        if sp.affinity_seconds.is_some() {
            b.rule(&c, vec![], Stmt::UpdateSet(aff_set(e)), None);
        }
        b.rule(&c, vec![], Stmt::Dnat(proto, e.addr.clone()), None);
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

fn render_expr(ipx: &str, e: &Expr, out: &mut String) {
    match e {
        Expr::CtStateNew => out.push_str("ct state new"),
        Expr::Daddr(a, neg) => {
            let _ = write!(out, "{ipx} daddr {}{a}", if *neg { "!= " } else { "" });
        }
        Expr::DaddrInSet(set) => {
            let _ = write!(out, "{ipx} daddr @{set}");
        }
        Expr::DaddrAnon(nets) => {
            let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            let _ = write!(out, "{ipx} daddr {{ {} }}", list.join(", "));
        }
        Expr::Dport(p, port) => {
            let _ = write!(out, "{} dport {port}", p.as_str());
        }
        Expr::Saddr(a, neg) => {
            let _ = write!(out, "{ipx} saddr {}{a}", if *neg { "!= " } else { "" });
        }
        Expr::SaddrNotAnon(list) => {
            let l: Vec<String> = list.iter().map(|a| a.to_string()).collect();
            let _ = write!(out, "{ipx} saddr != {{ {} }}", l.join(", "));
        }
        Expr::SaddrInSet(set) => {
            let _ = write!(out, "{ipx} saddr @{set}");
        }
        Expr::FibSaddrLocal => out.push_str("fib saddr type local"),
        Expr::FibDaddrLocal => out.push_str("fib daddr type local"),
        Expr::Iifname(i, neg) => {
            let _ = write!(out, "iifname {}\"{i}\"", if *neg { "!= " } else { "" });
        }
        Expr::MarkAndZero(m) => {
            let _ = write!(out, "mark and {m} == 0");
        }
    }
}

fn render_stmt(ipx: &str, st: &Stmt, out: &mut String) {
    match st {
        Stmt::Jump(c) => {
            let _ = write!(out, "jump {c}");
        }
        Stmt::Goto(c) => {
            let _ = write!(out, "goto {c}");
        }
        Stmt::Drop => out.push_str("drop"),
        Stmt::Reject => out.push_str("reject"),
        Stmt::Return => out.push_str("return"),
        Stmt::MarkSetOr(m) => {
            let _ = write!(out, "mark set mark or {m}");
        }
        Stmt::MarkSetXor(m) => {
            let _ = write!(out, "mark set mark xor {m}");
        }
        Stmt::Masquerade => out.push_str("masquerade fully-random"),
        Stmt::Dnat(p, to) => {
            let _ = write!(out, "meta l4proto {} dnat to {to}", p.as_str());
        }
        Stmt::UpdateSet(set) => {
            let _ = write!(out, "update @{set} {{ {ipx} saddr }}");
        }
        Stmt::VmapDest(m) => {
            let _ = write!(out, "{ipx} daddr . meta l4proto . th dport vmap @{m}");
        }
        Stmt::VmapPort(m) => {
            let _ = write!(out, "meta l4proto . th dport vmap @{m}");
        }
        Stmt::Numgen(eps) => {
            let items: Vec<String> = eps
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i} : goto {c}"))
                .collect();
            let _ = write!(
                out,
                "numgen random mod {} vmap {{ {} }}",
                eps.len(),
                items.join(", ")
            );
        }
    }
}

/// One rule as it appears inside its chain block.
pub fn rule_text(family: Family, r: &NftRule) -> String {
    let ipx = match family {
        Family::IPv4 => "ip",
        Family::IPv6 => "ip6",
    };
    let mut out = String::new();
    for e in &r.exprs {
        render_expr(ipx, e, &mut out);
        out.push(' ');
    }
    render_stmt(ipx, &r.stmt, &mut out);
    if let Some(c) = r.comment {
        let _ = write!(out, " comment \"{c}\"");
    }
    out
}

fn elems<T>(out: &mut String, items: &[T], f: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    out.push_str("\t\telements = { ");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n\t\t\t     ");
        }
        out.push_str(&f(it));
    }
    out.push_str(" }\n");
}

fn comment_part(c: &Option<Arc<str>>) -> String {
    c.as_ref()
        .map(|c| format!(" comment \"{c}\""))
        .unwrap_or_default()
}

/// Renders the table in `nft list ruleset` layout.
pub fn render(r: &NftablesRules) -> String {
    let fam = r.table_family();
    let addr_t = match r.family {
        Family::IPv4 => "ipv4_addr",
        Family::IPv6 => "ipv6_addr",
    };
    let mut out = String::with_capacity(4096 + r.service_ips.len() * 96);
    let _ = writeln!(out, "table {fam} kube-proxy {{");
    out.push_str("\tcomment \"rules for kube-proxy\"\n");
    let set = |out: &mut String, name: &str, comment: &str, items: &[IpAddr]| {
        let _ = writeln!(
            out,
            "\tset {name} {{\n\t\ttype {addr_t}\n\t\tcomment \"{comment}\""
        );
        elems(out, items, |ip| ip.to_string());
        out.push_str("\t}\n\n");
    };
    set(&mut out, "cluster-ips", "Active ClusterIPs", &r.cluster_ips);
    if let Some(ips) = &r.nodeport_ips {
        set(
            &mut out,
            "nodeport-ips",
            "IPs that accept NodePort traffic",
            ips,
        );
    }
    let dest_map = |out: &mut String, name: &str, comment: &str, items: &[DestElem]| {
        let _ = writeln!(
            out,
            "\tmap {name} {{\n\t\ttype {addr_t} . inet_proto . inet_service : verdict\n\t\tcomment \"{comment}\""
        );
        elems(out, items, |e| {
            format!(
                "{} . {} . {}{} : {}",
                e.ip,
                e.proto.as_str(),
                e.port,
                comment_part(&e.comment),
                e.verdict
            )
        });
        out.push_str("\t}\n\n");
    };
    let port_map = |out: &mut String, name: &str, comment: &str, items: &[PortElem]| {
        let _ = writeln!(
            out,
            "\tmap {name} {{\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"{comment}\""
        );
        elems(out, items, |e| {
            format!(
                "{} . {}{} : {}",
                e.proto.as_str(),
                e.port,
                comment_part(&e.comment),
                e.verdict
            )
        });
        out.push_str("\t}\n\n");
    };
    dest_map(
        &mut out,
        "firewall-ips",
        "destinations that are subject to LoadBalancerSourceRanges",
        &r.firewall_ips,
    );
    port_map(
        &mut out,
        "no-endpoint-nodeports",
        "vmap to drop or reject packets to service nodeports with no endpoints",
        &r.no_endpoint_nodeports,
    );
    dest_map(
        &mut out,
        "no-endpoint-services",
        "vmap to drop or reject packets to services with no endpoints",
        &r.no_endpoint_services,
    );
    dest_map(
        &mut out,
        "service-ips",
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        &r.service_ips,
    );
    port_map(
        &mut out,
        "service-nodeports",
        "NodePort traffic",
        &r.service_nodeports,
    );
    for (name, secs) in &r.affinity_sets {
        let _ = writeln!(
            out,
            "\tset {name} {{\n\t\ttype {addr_t}\n\t\tflags dynamic,timeout\n\t\ttimeout {secs}s\n\t}}\n"
        );
    }
    for c in &r.chains {
        let _ = writeln!(out, "\tchain {} {{", c.name);
        if let Some(comment) = c.comment {
            let _ = writeln!(out, "\t\tcomment \"{comment}\"");
        }
        if let Some(h) = &c.hook {
            let _ = writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy accept;",
                h.type_, h.hook, h.priority
            );
        }
        for rule in &c.rules {
            let _ = writeln!(out, "\t\t{}", rule_text(r.family, rule));
        }
        out.push_str("\t}\n");
        out.push('\n');
    }
    // Drop the blank line after the last block.
    if out.ends_with("\n\n") {
        out.pop();
    }
    out.push_str("}\n");
    out
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
            Expr::DaddrInSet(set) => match *set {
                "cluster-ips" => self.r.cluster_ips.contains(&self.dst),
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
            // Affinity sets start empty: the tracer follows a first connection.
            Expr::SaddrInSet(_) => false,
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

    fn matched(&mut self, chain: &str, rule: &NftRule) {
        self.res.matches.push(MatchedRule {
            table: if self.r.family == Family::IPv4 {
                "ip kube-proxy"
            } else {
                "ip6 kube-proxy"
            },
            chain: chain.to_string(),
            rule: rule_text(self.r.family, rule),
        });
    }

    /// Runs a map verdict; returns Some(terminated) when it ended the chain.
    fn run_verdict(&mut self, v: &MapVerdict, depth: usize) -> bool {
        match v {
            MapVerdict::Drop => {
                self.res.outputs.push("DROP".into());
                true
            }
            MapVerdict::Goto(c) => self.run_chain(c, depth + 1),
        }
    }

    fn run_chain(&mut self, name: &str, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        let Some(chain) = self.r.chain(name) else {
            return false;
        };
        for rule in &chain.rules {
            if !rule.exprs.iter().all(|e| self.expr_matches(e)) {
                continue;
            }
            match &rule.stmt {
                Stmt::Jump(c) if &**c == "mark-for-masquerade" => {
                    self.matched(name, rule);
                    self.res.masq = true;
                }
                Stmt::Jump(c) => {
                    self.matched(name, rule);
                    if self.run_chain(c, depth + 1) {
                        return true;
                    }
                }
                Stmt::Goto(c) => {
                    self.matched(name, rule);
                    return self.run_chain(c, depth + 1);
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
                Stmt::Dnat(_, to) => {
                    self.matched(name, rule);
                    self.res.outputs.push(to.to_string());
                    return true;
                }
                Stmt::VmapDest(map) => {
                    let elems = match *map {
                        "service-ips" => &self.r.service_ips,
                        "no-endpoint-services" => &self.r.no_endpoint_services,
                        "firewall-ips" => &self.r.firewall_ips,
                        _ => continue,
                    };
                    if let Some(e) = self.lookup_dest(elems) {
                        let v = e.verdict.clone();
                        self.matched(name, rule);
                        return self.run_verdict(&v, depth);
                    }
                }
                Stmt::VmapPort(map) => {
                    let elems = match *map {
                        "service-nodeports" => &self.r.service_nodeports,
                        "no-endpoint-nodeports" => &self.r.no_endpoint_nodeports,
                        _ => continue,
                    };
                    if let Some(e) = self.lookup_port(elems) {
                        let v = e.verdict.clone();
                        self.matched(name, rule);
                        return self.run_verdict(&v, depth);
                    }
                }
                Stmt::Numgen(eps) => {
                    // Every endpoint is a possible choice: follow them all.
                    self.matched(name, rule);
                    for c in eps {
                        self.run_chain(c, depth + 1);
                    }
                    return true;
                }
                Stmt::UpdateSet(_)
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
    let [pre, nat, fwd, input] = r.trace_chains;
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
