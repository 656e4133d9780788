//! kube-proxy's iptables mode: the rules `syncProxyRules` writes for one node and family, their
//! `iptables-restore` text, and the packet tracer of `proxier_test.go`.
//!
//! Rules are kept as data ([`IptRule`]: a chain, match arguments in the order kube-proxy writes
//! them, a target) so that the same value renders to text and drives the tracer.
// kube-proxy: pkg/proxy/iptables/proxier.go (syncProxyRules, writeServiceToEndpointRules)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use knetsim_ipam::Family;

use super::model::{FamilyModel, Proto, ServicePortInfo, categorize};
use super::{LocalDetector, NodeCtx, PacketCtx};
use crate::names;

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
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Ip(ip) => write!(f, "{ip}"),
            Addr::Net(n) => write!(f, "{n}"),
        }
    }
}

/// One match argument, rendered in place.
#[derive(Clone, Debug)]
pub enum Arg {
    /// `-m comment --comment X`; `quoted` when kube-proxy wrote the quotes itself.
    Comment(Arc<str>, bool),
    /// `-m tcp -p tcp`.
    Proto(Proto),
    /// `-d X` / `! -d X`.
    Dst(Addr, bool),
    /// `-s X` / `! -s X`.
    Src(Addr, bool),
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
    /// `-m statistic --mode random --probability P`.
    Statistic(Arc<str>),
    /// `-m recent --name N --rcheck --seconds S --reap`.
    RecentCheck(Arc<str>, u32),
    /// `-m recent --name N --set`.
    RecentSet(Arc<str>),
    /// `-i IFACE` / `! -i IFACE` (interface-based local-traffic detection).
    InIface(Arc<str>, bool),
    /// `-m set --match-set NAME src|dst` / `-m set ! --match-set …` (Calico's ipsets).
    MatchSet(Arc<str>, &'static str, bool),
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Jump(Arc<str>),
    Accept,
    Drop,
    Reject,
    Return,
    Dnat(Arc<str>),
    Masquerade {
        random_fully: bool,
    },
    Snat(Arc<str>),
    MarkOr(Arc<str>),
    MarkXor(Arc<str>),
    /// No `-j` at all (the last rule of a `KUBE-FW-` chain).
    None,
}

/// One `-A CHAIN …` line.
#[derive(Clone, Debug)]
pub struct IptRule {
    pub chain: Arc<str>,
    pub args: Vec<Arg>,
    pub target: Target,
}

impl IptRule {
    /// The comment text, if the rule has one.
    pub fn comment(&self) -> Option<&str> {
        self.args.iter().find_map(|a| match a {
            Arg::Comment(c, _) => Some(&**c),
            _ => None,
        })
    }

    pub fn render(&self, out: &mut String) {
        out.push_str("-A ");
        out.push_str(&self.chain);
        for a in &self.args {
            match a {
                Arg::Comment(c, quoted) => {
                    if *quoted {
                        let _ = write!(out, " -m comment --comment \"{c}\"");
                    } else {
                        let _ = write!(out, " -m comment --comment {c}");
                    }
                }
                Arg::Proto(p) => {
                    let _ = write!(out, " -m {0} -p {0}", p.as_str());
                }
                Arg::Dst(addr, neg) => {
                    let _ = write!(out, "{} -d {addr}", if *neg { " !" } else { "" });
                }
                Arg::Src(addr, neg) => {
                    let _ = write!(out, "{} -s {addr}", if *neg { " !" } else { "" });
                }
                Arg::DPort(p) => {
                    let _ = write!(out, " --dport {p}");
                }
                Arg::DstTypeLocal(neg) => {
                    let _ = write!(
                        out,
                        " -m addrtype{} --dst-type LOCAL",
                        if *neg { " !" } else { "" }
                    );
                }
                Arg::SrcTypeLocal => out.push_str(" -m addrtype --src-type LOCAL"),
                Arg::Mark(m, neg) => {
                    let _ = write!(
                        out,
                        " -m mark{} --mark {m}/{m}",
                        if *neg { " !" } else { "" }
                    );
                }
                Arg::CtState(s, neg) => {
                    let _ = write!(
                        out,
                        " -m conntrack{} --ctstate {s}",
                        if *neg { " !" } else { "" }
                    );
                }
                Arg::Statistic(p) => {
                    let _ = write!(out, " -m statistic --mode random --probability {p}");
                }
                Arg::RecentCheck(name, secs) => {
                    let _ = write!(
                        out,
                        " -m recent --name {name} --rcheck --seconds {secs} --reap"
                    );
                }
                Arg::RecentSet(name) => {
                    let _ = write!(out, " -m recent --name {name} --set");
                }
                Arg::InIface(i, neg) => {
                    let _ = write!(out, "{} -i {i}", if *neg { " !" } else { "" });
                }
                Arg::MatchSet(name, dir, neg) => {
                    let _ = write!(
                        out,
                        " -m set{} --match-set {name} {dir}",
                        if *neg { " !" } else { "" }
                    );
                }
            }
        }
        match &self.target {
            Target::Jump(c) => {
                let _ = write!(out, " -j {c}");
            }
            Target::Accept => out.push_str(" -j ACCEPT"),
            Target::Drop => out.push_str(" -j DROP"),
            Target::Reject => out.push_str(" -j REJECT"),
            Target::Return => out.push_str(" -j RETURN"),
            Target::Dnat(d) => {
                let _ = write!(out, " -j DNAT --to-destination {d}");
            }
            Target::Masquerade { random_fully } => {
                out.push_str(" -j MASQUERADE");
                if *random_fully {
                    out.push_str(" --random-fully");
                }
            }
            Target::Snat(s) => {
                let _ = write!(out, " -j SNAT --to-source {s}");
            }
            Target::MarkOr(m) => {
                let _ = write!(out, " -j MARK --or-mark {m}");
            }
            Target::MarkXor(m) => {
                let _ = write!(out, " -j MARK --xor-mark {m}");
            }
            Target::None => {}
        }
    }

    pub fn to_line(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

/// One table (`filter` or `nat`): built-in chains, kube-proxy's chains in the order it
/// declared them, and rules in the order it wrote them.
#[derive(Debug, Default)]
pub struct IptTable {
    pub builtin: Vec<&'static str>,
    pub chains: Vec<Arc<str>>,
    pub rules: Vec<IptRule>,
    index: OnceLock<HashMap<Arc<str>, Vec<u32>>>,
}

impl Clone for IptTable {
    fn clone(&self) -> Self {
        IptTable {
            builtin: self.builtin.clone(),
            chains: self.chains.clone(),
            rules: self.rules.clone(),
            index: OnceLock::new(),
        }
    }
}

impl IptTable {
    fn new(builtin: Vec<&'static str>) -> Self {
        IptTable {
            builtin,
            ..IptTable::default()
        }
    }

    fn chain(&mut self, name: Arc<str>) {
        self.chains.push(name);
    }

    fn push(&mut self, chain: &Arc<str>, args: Vec<Arg>, target: Target) {
        self.rules.push(IptRule {
            chain: chain.clone(),
            args,
            target,
        });
    }

    /// The rules of one chain, in order.
    pub fn chain_rules(&self, chain: &str) -> impl Iterator<Item = &IptRule> {
        let index = self.index.get_or_init(|| {
            let mut m: HashMap<Arc<str>, Vec<u32>> = HashMap::new();
            for (i, r) in self.rules.iter().enumerate() {
                m.entry(r.chain.clone()).or_default().push(i as u32);
            }
            m
        });
        index
            .get(chain)
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i as usize])
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
}

fn chain(s: &str) -> Arc<str> {
    Arc::from(s)
}

pub const KUBE_SERVICES: &str = "KUBE-SERVICES";
pub const KUBE_EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const KUBE_NODEPORTS: &str = "KUBE-NODEPORTS";
pub const KUBE_POSTROUTING: &str = "KUBE-POSTROUTING";
pub const KUBE_MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const KUBE_FORWARD: &str = "KUBE-FORWARD";
pub const KUBE_PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";
pub const KUBE_FIREWALL: &str = "KUBE-FIREWALL";

/// Builds the rules of one node and family.
pub fn build(model: &FamilyModel, ctx: &NodeCtx) -> IptablesRules {
    let mark: Arc<str> = ctx.masq_mark.clone();
    let c_services = chain(KUBE_SERVICES);
    let c_ext_services = chain(KUBE_EXTERNAL_SERVICES);
    let c_nodeports = chain(KUBE_NODEPORTS);
    let c_post = chain(KUBE_POSTROUTING);
    let c_markmasq = chain(KUBE_MARK_MASQ);
    let c_forward = chain(KUBE_FORWARD);
    let c_proxy_fw = chain(KUBE_PROXY_FIREWALL);
    let c_firewall = chain(KUBE_FIREWALL);

    let mut filter = IptTable::new(vec!["INPUT", "FORWARD", "OUTPUT"]);
    let mut nat = IptTable::new(vec!["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    for c in [
        &c_services,
        &c_ext_services,
        &c_forward,
        &c_nodeports,
        &c_proxy_fw,
    ] {
        filter.chain(c.clone());
    }
    for c in [&c_services, &c_nodeports, &c_post, &c_markmasq] {
        nat.chain(c.clone());
    }
    let is_ipv6 = ctx.family == Family::IPv6;
    // KUBE-FIREWALL is kubelet's chain; kube-proxy only fills it in for IPv4 localhost
    // NodePorts, but ensures the (possibly empty) chain and its jumps either way.
    let writes_kubelet_firewall = !is_ipv6 && ctx.localhost_nodeports;
    if !writes_kubelet_firewall {
        filter.chain(c_firewall.clone());
    }

    // Jumps from the built-in chains, as EnsureRule(Prepend) leaves them: the last one
    // ensured comes first. kubelet created KUBE-FIREWALL's jumps before kube-proxy ran.
    let new = || Arg::CtState("NEW", false);
    let cm = |s: &str| Arg::Comment(Arc::from(s), true);
    // filter INPUT
    filter.push(
        &chain("INPUT"),
        vec![new(), cm("kubernetes load balancer firewall")],
        Target::Jump(c_proxy_fw.clone()),
    );
    filter.push(
        &chain("INPUT"),
        vec![cm("kubernetes health check service ports")],
        Target::Jump(c_nodeports.clone()),
    );
    filter.push(
        &chain("INPUT"),
        vec![new(), cm("kubernetes externally-visible service portals")],
        Target::Jump(c_ext_services.clone()),
    );
    filter.push(&chain("INPUT"), vec![], Target::Jump(c_firewall.clone()));
    // filter FORWARD
    filter.push(
        &chain("FORWARD"),
        vec![new(), cm("kubernetes load balancer firewall")],
        Target::Jump(c_proxy_fw.clone()),
    );
    filter.push(
        &chain("FORWARD"),
        vec![cm("kubernetes forwarding rules")],
        Target::Jump(c_forward.clone()),
    );
    filter.push(
        &chain("FORWARD"),
        vec![new(), cm("kubernetes service portals")],
        Target::Jump(c_services.clone()),
    );
    filter.push(
        &chain("FORWARD"),
        vec![new(), cm("kubernetes externally-visible service portals")],
        Target::Jump(c_ext_services.clone()),
    );
    // filter OUTPUT
    filter.push(
        &chain("OUTPUT"),
        vec![new(), cm("kubernetes load balancer firewall")],
        Target::Jump(c_proxy_fw.clone()),
    );
    filter.push(
        &chain("OUTPUT"),
        vec![new(), cm("kubernetes service portals")],
        Target::Jump(c_services.clone()),
    );
    filter.push(&chain("OUTPUT"), vec![], Target::Jump(c_firewall.clone()));
    // nat
    nat.push(
        &chain("PREROUTING"),
        vec![cm("kubernetes service portals")],
        Target::Jump(c_services.clone()),
    );
    nat.push(
        &chain("OUTPUT"),
        vec![cm("kubernetes service portals")],
        Target::Jump(c_services.clone()),
    );
    nat.push(
        &chain("POSTROUTING"),
        vec![cm("kubernetes postrouting rules")],
        Target::Jump(c_post.clone()),
    );

    // KUBE-POSTROUTING and KUBE-MARK-MASQ.
    nat.push(&c_post, vec![Arg::Mark(mark.clone(), true)], Target::Return);
    nat.push(&c_post, vec![], Target::MarkXor(mark.clone()));
    nat.push(
        &c_post,
        vec![cm("kubernetes service traffic requiring SNAT")],
        Target::Masquerade { random_fully: true },
    );
    nat.push(&c_markmasq, vec![], Target::MarkOr(mark.clone()));

    if writes_kubelet_firewall {
        filter.chain(c_firewall.clone());
        filter.push(
            &c_firewall,
            vec![
                cm("block incoming localnet connections"),
                Arg::Dst(Addr::Net(net("127.0.0.0/8")), false),
                Arg::Src(Addr::Net(net("127.0.0.0/8")), true),
                Arg::CtState("RELATED,ESTABLISHED,DNAT", true),
            ],
            Target::Drop,
        );
    }

    let large = model.total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
    for sp in &model.ports {
        write_service(&mut filter, &mut nat, sp, ctx, large, &c_markmasq);
    }

    // Finally, the tail-call to KUBE-NODEPORTS.
    let np_comment = || {
        Arg::Comment(
            Arc::from(
                "kubernetes service nodeports; NOTE: this must be the last rule in this chain",
            ),
            true,
        )
    };
    if ctx.nodeport.match_all {
        let mut args = vec![np_comment(), Arg::DstTypeLocal(false)];
        if is_ipv6 {
            args.push(Arg::Dst(Addr::Net(net("::1/128")), true));
        } else if !ctx.localhost_nodeports {
            args.push(Arg::Dst(Addr::Net(net("127.0.0.0/8")), true));
        }
        nat.push(&c_services, args, Target::Jump(c_nodeports.clone()));
    } else {
        for ip in ctx.nodeport_ips() {
            if ip.is_loopback() && (is_ipv6 || !ctx.localhost_nodeports) {
                continue;
            }
            nat.push(
                &c_services,
                vec![np_comment(), Arg::Dst(Addr::Ip(ip), false)],
                Target::Jump(c_nodeports.clone()),
            );
        }
    }

    if !ctx.conntrack_tcp_liberal {
        filter.push(
            &c_forward,
            vec![Arg::CtState("INVALID", false)],
            Target::Drop,
        );
    }
    filter.push(
        &c_forward,
        vec![
            cm("kubernetes forwarding rules"),
            Arg::Mark(mark.clone(), false),
        ],
        Target::Accept,
    );
    filter.push(
        &c_forward,
        vec![
            cm("kubernetes forwarding conntrack rule"),
            Arg::CtState("RELATED,ESTABLISHED", false),
        ],
        Target::Accept,
    );

    IptablesRules {
        family: ctx.family,
        filter,
        nat,
        large_cluster_mode: large,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("static CIDR")
}

fn write_service(
    filter: &mut IptTable,
    nat: &mut IptTable,
    sp: &ServicePortInfo,
    ctx: &NodeCtx,
    large: bool,
    c_markmasq: &Arc<str>,
) {
    let proto = sp.proto;
    let name = &sp.name;
    let cat = categorize(sp, &ctx.node);
    let cluster_chain: Arc<str> = format!("KUBE-SVC-{}", sp.ipt_hash).into();
    let local_chain: Arc<str> = format!("KUBE-SVL-{}", sp.ipt_hash).into();
    let ext_chain: Arc<str> = format!("KUBE-EXT-{}", sp.ipt_hash).into();
    let fw_chain: Arc<str> = format!("KUBE-FW-{}", sp.ipt_hash).into();
    let has_endpoints = cat.has_any;
    let uses_cluster_chain = !cat.cluster.is_empty() && sp.uses_cluster_endpoints();
    let uses_local_chain = !cat.local.is_empty() && sp.uses_local_endpoints();

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
    let uses_fw_chain = has_endpoints && !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty();
    let lb_chain = if uses_fw_chain {
        fw_chain.clone()
    } else {
        ext_chain.clone()
    };

    let (int_target, int_comment, ext_target, ext_comment);
    if !has_endpoints {
        let c: Arc<str> = format!("{name} has no endpoints").into();
        int_target = Target::Reject;
        int_comment = c.clone();
        ext_target = Target::Reject;
        ext_comment = c;
    } else {
        let c: Arc<str> = format!("{name} has no local endpoints").into();
        int_target = Target::Drop;
        int_comment = c.clone();
        ext_target = Target::Drop;
        ext_comment = c;
    }

    let q = |s: String| Arg::Comment(Arc::from(s), true);
    let svcs = chain(KUBE_SERVICES);
    let ext_svcs = chain(KUBE_EXTERNAL_SERVICES);
    let nodeports = chain(KUBE_NODEPORTS);

    // Capture the clusterIP.
    if has_internal {
        nat.push(
            &svcs,
            vec![
                q(format!("{name} cluster IP")),
                Arg::Proto(proto),
                Arg::Dst(Addr::Ip(sp.cluster_ip), false),
                Arg::DPort(sp.port),
            ],
            Target::Jump(internal_chain.clone()),
        );
    } else {
        filter.push(
            &svcs,
            vec![
                Arg::Comment(int_comment.clone(), true),
                Arg::Proto(proto),
                Arg::Dst(Addr::Ip(sp.cluster_ip), false),
                Arg::DPort(sp.port),
            ],
            int_target.clone(),
        );
    }

    // Capture externalIPs.
    for &eip in &sp.external_ips {
        if has_endpoints {
            nat.push(
                &svcs,
                vec![
                    q(format!("{name} external IP")),
                    Arg::Proto(proto),
                    Arg::Dst(Addr::Ip(eip), false),
                    Arg::DPort(sp.port),
                ],
                Target::Jump(ext_chain.clone()),
            );
        }
        if !has_external {
            filter.push(
                &ext_svcs,
                vec![
                    Arg::Comment(ext_comment.clone(), true),
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
                &svcs,
                vec![
                    q(format!("{name} loadbalancer IP")),
                    Arg::Proto(proto),
                    Arg::Dst(Addr::Ip(lbip), false),
                    Arg::DPort(sp.port),
                ],
                Target::Jump(lb_chain.clone()),
            );
        }
        if uses_fw_chain {
            filter.push(
                &chain(KUBE_PROXY_FIREWALL),
                vec![
                    q(format!("{name} traffic not accepted by {fw_chain}")),
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
                &ext_svcs,
                vec![
                    Arg::Comment(ext_comment.clone(), true),
                    Arg::Proto(proto),
                    Arg::Dst(Addr::Ip(lbip), false),
                    Arg::DPort(sp.port),
                ],
                ext_target.clone(),
            );
        }
    }

    // Capture nodeports. (The nfacct localhost counter rule is not written: knetsim models
    // a host where the nfacct counters could not be created, which kube-proxy tolerates.)
    if sp.node_port != 0 {
        if has_endpoints {
            nat.push(
                &nodeports,
                vec![
                    Arg::Comment(name.clone(), false),
                    Arg::Proto(proto),
                    Arg::DPort(sp.node_port),
                ],
                Target::Jump(ext_chain.clone()),
            );
        }
        if !has_external {
            filter.push(
                &ext_svcs,
                vec![
                    Arg::Comment(ext_comment.clone(), true),
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
            &nodeports,
            vec![
                q(format!("{name} health check node port")),
                Arg::Proto(Proto::Tcp),
                Arg::DPort(sp.health_check_node_port),
            ],
            Target::Accept,
        );
    }

    // Internal traffic handling.
    if has_internal {
        let base = vec![
            q(format!("{name} cluster IP")),
            Arg::Proto(proto),
            Arg::Dst(Addr::Ip(sp.cluster_ip), false),
            Arg::DPort(sp.port),
        ];
        if ctx.masquerade_all {
            nat.push(&internal_chain, base, Target::Jump(c_markmasq.clone()));
        } else if let Some(arg) = ctx.local_detector.ipt_if_not_local() {
            let mut args = base;
            args.push(arg);
            nat.push(&internal_chain, args, Target::Jump(c_markmasq.clone()));
        }
    }

    // External traffic handling.
    if uses_ext_chain {
        nat.chain(ext_chain.clone());
        if !sp.external_policy_local {
            nat.push(
                &ext_chain,
                vec![q(format!(
                    "masquerade traffic for {name} external destinations"
                ))],
                Target::Jump(c_markmasq.clone()),
            );
        } else {
            if let Some(arg) = ctx.local_detector.ipt_if_local() {
                nat.push(
                    &ext_chain,
                    vec![
                        q(format!("pod traffic for {name} external destinations")),
                        arg,
                    ],
                    Target::Jump(cluster_chain.clone()),
                );
            }
            nat.push(
                &ext_chain,
                vec![
                    q(format!(
                        "masquerade LOCAL traffic for {name} external destinations"
                    )),
                    Arg::SrcTypeLocal,
                ],
                Target::Jump(c_markmasq.clone()),
            );
            nat.push(
                &ext_chain,
                vec![
                    q(format!(
                        "route LOCAL traffic for {name} external destinations"
                    )),
                    Arg::SrcTypeLocal,
                ],
                Target::Jump(cluster_chain.clone()),
            );
        }
        if has_external {
            nat.push(
                &ext_chain,
                vec![],
                Target::Jump(external_policy_chain.clone()),
            );
        }
    }

    // Firewall chain.
    if uses_fw_chain {
        nat.chain(fw_chain.clone());
        let c = || q(format!("{name} loadbalancer IP"));
        let mut allow_from_node = false;
        for cidr in &sp.lb_source_ranges {
            nat.push(
                &fw_chain,
                vec![c(), Arg::Src(Addr::Net(*cidr), false)],
                Target::Jump(ext_chain.clone()),
            );
            if ctx.node_ip.is_some_and(|ip| cidr.contains(&ip)) {
                allow_from_node = true;
            }
        }
        if allow_from_node {
            for &lbip in &sp.lb_vips {
                nat.push(
                    &fw_chain,
                    vec![c(), Arg::Src(Addr::Ip(lbip), false)],
                    Target::Jump(ext_chain.clone()),
                );
            }
        }
        nat.push(
            &fw_chain,
            vec![q(format!(
                "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"
            ))],
            Target::None,
        );
    }

    if uses_cluster_chain {
        nat.chain(cluster_chain.clone());
        write_endpoint_jumps(nat, sp, &cluster_chain, &cat.cluster, large);
    }
    if uses_local_chain {
        nat.chain(local_chain.clone());
        write_endpoint_jumps(nat, sp, &local_chain, &cat.local, large);
    }

    // Per-endpoint chains.
    for ep in &cat.all_reachable {
        let sep = ep.sep_chain.clone();
        nat.chain(sep.clone());
        let mut args = Vec::with_capacity(5);
        if !large {
            args.push(Arg::Comment(name.clone(), false));
        }
        let mut hairpin = args.clone();
        hairpin.push(Arg::Src(Addr::Ip(ep.ip), false));
        nat.push(&sep, hairpin, Target::Jump(c_markmasq.clone()));
        if sp.affinity_seconds.is_some() {
            args.push(Arg::RecentSet(sep.clone()));
        }
        args.push(Arg::Proto(proto));
        nat.push(&sep, args, Target::Dnat(ep.addr.clone()));
    }
}

fn write_endpoint_jumps(
    nat: &mut IptTable,
    sp: &ServicePortInfo,
    svc_chain: &Arc<str>,
    endpoints: &[&super::model::EndpointInfo],
    large: bool,
) {
    let comment = |addr: &str| -> Option<Arg> {
        (!large).then(|| Arg::Comment(Arc::from(format!("{} -> {addr}", sp.name)), true))
    };
    if let Some(secs) = sp.affinity_seconds {
        for ep in endpoints {
            let mut args: Vec<Arg> = comment(&ep.addr).into_iter().collect();
            args.push(Arg::RecentCheck(ep.sep_chain.clone(), secs));
            nat.push(svc_chain, args, Target::Jump(ep.sep_chain.clone()));
        }
    }
    let n = endpoints.len();
    for (i, ep) in endpoints.iter().enumerate() {
        let mut args: Vec<Arg> = comment(&ep.addr).into_iter().collect();
        if i < n - 1 {
            args.push(Arg::Statistic(Arc::from(names::probability(n - i))));
        }
        nat.push(svc_chain, args, Target::Jump(ep.sep_chain.clone()));
    }
}

/// Renders one family's rules as the text kube-proxy hands to `iptables-restore`, with the
/// built-in chains and kube-proxy's jumps from them as `iptables-save` shows them, followed by
/// `extra_nat` (egress masquerade rules of other agents on the node).
pub fn render(r: &IptablesRules, extra_nat_chains: &[Arc<str>], extra_nat: &[IptRule]) -> String {
    let mut out = String::with_capacity(256 + (r.filter.rules.len() + r.nat.rules.len()) * 120);
    for (name, t, extra_chains, extra_rules) in [
        ("filter", &r.filter, &[][..], &[][..]),
        ("nat", &r.nat, extra_nat_chains, extra_nat),
    ] {
        let _ = writeln!(out, "*{name}");
        for b in &t.builtin {
            let _ = writeln!(out, ":{b} ACCEPT [0:0]");
        }
        for c in t.chains.iter().chain(extra_chains.iter()) {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        // Built-in chains' rules first (kube-proxy's jumps, then other agents' appended ones).
        let is_builtin = |c: &str| t.builtin.contains(&c);
        for rule in t.rules.iter().filter(|r| is_builtin(&r.chain)) {
            rule.render(&mut out);
            out.push('\n');
        }
        for rule in extra_rules.iter().filter(|r| is_builtin(&r.chain)) {
            rule.render(&mut out);
            out.push('\n');
        }
        for rule in t.rules.iter().filter(|r| !is_builtin(&r.chain)) {
            rule.render(&mut out);
            out.push('\n');
        }
        for rule in extra_rules.iter().filter(|r| !is_builtin(&r.chain)) {
            rule.render(&mut out);
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

fn rule_matches(rule: &IptRule, p: &PacketCtx, dst: IpAddr) -> bool {
    for a in &rule.args {
        let ok = match a {
            Arg::Src(addr, neg) => addr.contains(p.src) != *neg,
            Arg::SrcTypeLocal => p.src_is_local,
            Arg::Proto(pr) => *pr == p.proto,
            Arg::Dst(addr, neg) => addr.contains(dst) != *neg,
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

fn run_chain(
    t: &IptTable,
    table: &'static str,
    chain: &str,
    p: &PacketCtx,
    dst: IpAddr,
    res: &mut TraceResult,
    depth: usize,
) -> bool {
    if depth > 32 {
        return false;
    }
    for rule in t.chain_rules(chain) {
        if rule.target == Target::None || !rule_matches(rule, p, dst) {
            continue;
        }
        res.matches.push(MatchedRule {
            table,
            chain: rule.chain.to_string(),
            rule: rule.to_line(),
        });
        match &rule.target {
            Target::Jump(c) if &**c == KUBE_MARK_MASQ => {
                res.masq = true;
            }
            Target::Accept => {
                res.outputs.push("ACCEPT".into());
                return true;
            }
            Target::Reject => {
                res.outputs.push("REJECT".into());
                return true;
            }
            Target::Drop => {
                res.outputs.push("DROP".into());
                return true;
            }
            Target::Dnat(d) => {
                res.outputs.push(d.to_string());
                return true;
            }
            Target::Jump(c) => {
                let terminated = run_chain(t, table, c, p, dst, res, depth + 1);
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

/// `tracePacket` of `proxier_test.go`: nat PREROUTING, then (with the destination rewritten to
/// the first DNAT output) filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and
/// KUBE-PROXY-FIREWALL. POSTROUTING is not run; the masquerade mark stands for it.
pub fn trace(r: &IptablesRules, p: &PacketCtx) -> TraceResult {
    let mut res = TraceResult::default();
    run_chain(&r.nat, "nat", "PREROUTING", p, p.dst, &mut res, 0);
    let dst = res
        .outputs
        .first()
        .and_then(|o| super::split_host_port(o).map(|(ip, _)| ip))
        .unwrap_or(p.dst);
    for c in [
        KUBE_SERVICES,
        KUBE_EXTERNAL_SERVICES,
        KUBE_NODEPORTS,
        KUBE_PROXY_FIREWALL,
    ] {
        run_chain(&r.filter, "filter", c, p, dst, &mut res, 0);
    }
    res
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
