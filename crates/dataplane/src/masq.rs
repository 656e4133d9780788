//! Egress masquerade: who rewrites a pod's source address when its traffic leaves the node,
//! and the rules that say so.
//!
//! - ip-masq-agent (when the scenario configures `cluster.ip-masq-agent`): chain
//!   `IP-MASQ-AGENT` (or `--masq-chain`), link-local RETURN unless `masqLinkLocal`, one RETURN
//!   per non-masquerade CIDR, then MASQUERADE (or SNAT to `snatTarget`, IPv4 only). IPv6 only
//!   with `--enable-ipv6`. An invalid configuration makes the agent log its error and write
//!   no rules at all, which knetsim reproduces.
//! - kindnet (the `host-local` CNI, unless ip-masq-agent is configured instead): chain
//!   `KIND-MASQ-AGENT`, RETURN for the cluster's pod CIDRs of the family, then MASQUERADE; both
//!   families.
//! - kubenet: one POSTROUTING rule, `! -d <non-masquerade-cidr>` (kubelet default
//!   `10.0.0.0/8`), IPv4 only.
//! - Calico: `cali-nat-outgoing`, MASQUERADE from pools with `natOutgoing` to destinations
//!   outside all pools; IPv6 only with Felix IPv6 support.
// ip-masq-agent: cmd/ip-masq-agent/ip-masq-agent.go
// kindnet: cmd/kindnetd/masq.go
// kubenet: pkg/kubelet/dockershim/network/kubenet/kubenet_linux.go ensureMasqRule
// calico: felix/rules/nat.go NATOutgoingChain

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use knetsim_control::state::ClusterState;
use knetsim_ipam::Family;
use knetsim_model::Diagnostic;
use knetsim_model::scenario::IpMasqAgentConfig;
use serde::Serialize;

use crate::fabric::Cni;
use crate::proxy::iptables::{Addr, Arg, Chain, Comment, IptRule, Target};

const LINK_LOCAL_V4: &str = "169.254.0.0/16";
const LINK_LOCAL_V6: &str = "fe80::/10";

/// ip-masq-agent's effective configuration (defaults applied, validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasqAgent {
    pub chain: String,
    pub non_masquerade: Vec<IpNet>,
    pub masq_link_local: bool,
    pub masq_link_local_ipv6: bool,
    pub enable_ipv6: bool,
    /// `false` when the configuration was rejected: the agent then writes no rules.
    pub valid: bool,
    /// The error the agent logs (`error syncing configuration: …`).
    pub error: Option<String>,
}

/// `NewMasqConfig`: RFC 1918, plus the other reserved ranges with
/// `--nomasq-all-reserved-ranges`.
pub fn default_non_masquerade(all_reserved: bool) -> Vec<&'static str> {
    let mut v = vec!["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    if all_reserved {
        v.extend([
            "100.64.0.0/10",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "240.0.0.0/4",
        ]);
    }
    v
}

/// Validates and applies ip-masq-agent's configuration. Returns the agent and, for a rejected
/// configuration, a warning diagnostic carrying the agent's message word for word.
pub fn masq_agent(cfg: &IpMasqAgentConfig) -> (MasqAgent, Option<Diagnostic>) {
    let mut agent = MasqAgent {
        chain: cfg
            .masq_chain
            .clone()
            .unwrap_or_else(|| "IP-MASQ-AGENT".to_string()),
        non_masquerade: Vec::new(),
        masq_link_local: cfg.masq_link_local,
        masq_link_local_ipv6: cfg.masq_link_local_ipv6,
        enable_ipv6: cfg.enable_ipv6,
        valid: true,
        error: None,
    };
    let cidrs: Vec<(String, Option<knetsim_model::Span>)> = match &cfg.non_masquerade_cidrs {
        Some(list) => list
            .iter()
            .map(|s| (s.value.clone(), Some(s.span)))
            .collect(),
        None => default_non_masquerade(cfg.nomasq_all_reserved_ranges)
            .into_iter()
            .map(|s| (s.to_string(), None))
            .collect(),
    };
    match validate(&cidrs, cfg.enable_ipv6) {
        Ok(nets) => agent.non_masquerade = nets,
        Err((msg, span)) => {
            agent.valid = false;
            agent.error = Some(format!("error syncing configuration: {msg}"));
            let span = span.unwrap_or(cfg.span);
            let d = Diagnostic::warning(span, format!("ip-masq-agent would log: error syncing configuration: {msg}"))
                .with_help("the agent keeps running but writes no masquerade rules until the configuration is fixed");
            return (agent, Some(d));
        }
    }
    (agent, None)
}

/// Go's `net.ParseCIDR` followed by ip-masq-agent's alignment check.
// ip-masq-agent: validate, validateCIDR
fn validate(
    cidrs: &[(String, Option<knetsim_model::Span>)],
    enable_ipv6: bool,
) -> Result<Vec<IpNet>, (String, Option<knetsim_model::Span>)> {
    let n = cidrs.len();
    if n > 64 {
        return Err((
            format!(
                "the daemon can only accept up to 64 CIDRs (excluding link-local), but got {n} CIDRs (excluding link local)"
            ),
            None,
        ));
    }
    let mut out = Vec::new();
    for (text, span) in cidrs {
        let Ok(net) = text.parse::<IpNet>() else {
            return Err((
                format!("CIDR {text:?} could not be parsed, invalid CIDR address: {text}"),
                *span,
            ));
        };
        if net.addr() != net.network() {
            return Err((
                format!(
                    "CIDR {text:?} is not aligned to a CIDR block, ip: {:?} network: {:?}",
                    net.addr().to_string(),
                    net.trunc().to_string()
                ),
                *span,
            ));
        }
        if !enable_ipv6 && net.addr().is_ipv6() {
            return Err((
                format!(
                    "ipv6 is not enabled, but ipv6 cidr {text} provided. Enable ipv6 using --enable-ipv6 agent flag"
                ),
                *span,
            ));
        }
        out.push(net);
    }
    Ok(out)
}

/// Who masquerades egress traffic on the nodes, per family.
#[derive(Clone, Debug)]
pub enum EgressMasq {
    IpMasqAgent(MasqAgent),
    Kindnet {
        non_masquerade: Vec<IpNet>,
    },
    /// kubelet's `--non-masquerade-cidr` for kubenet; `0.0.0.0/0` disables the rule.
    Kubenet {
        non_masquerade: IpNet,
    },
    Calico {
        masq_pools: Vec<IpNet>,
        all_pools: Vec<IpNet>,
        programs_ipv6: bool,
    },
}

/// The outcome of the egress masquerade rules for one packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MasqDecision {
    pub masquerade: bool,
    /// The agent that decided (`ip-masq-agent`, `kindnet`, `kubenet`, `calico`), if any rule
    /// applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<&'static str>,
    /// The rule that matched, as iptables-save prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// SNAT target, for ip-masq-agent's `snatTarget` (not modelled: always MASQUERADE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl EgressMasq {
    pub fn new(state: &ClusterState, cni: &Cni, agent: Option<&MasqAgent>) -> EgressMasq {
        if let Some(a) = agent {
            return EgressMasq::IpMasqAgent(a.clone());
        }
        match cni {
            Cni::HostLocal => EgressMasq::Kindnet {
                non_masquerade: state.network.cluster_cidrs.clone(),
            },
            Cni::Kubenet => EgressMasq::Kubenet {
                non_masquerade: "10.0.0.0/8".parse().expect("static"),
            },
            Cni::Calico(c) => EgressMasq::Calico {
                masq_pools: c
                    .pools
                    .iter()
                    .filter(|(_, nat, disabled)| *nat && !disabled)
                    .map(|(n, _, _)| *n)
                    .collect(),
                all_pools: c.pools.iter().map(|(n, _, _)| *n).collect(),
                programs_ipv6: c.ipv6_support,
            },
        }
    }

    /// The nat-table chains and rules this agent adds on a node, for one family.
    pub fn iptables(&self, family: Family) -> (Vec<Arc<str>>, Vec<IptRule>) {
        let post = Chain::Fixed("POSTROUTING");
        let cm = |s: String| Arg::Comment(Comment::Text(Arc::from(s)), true);
        let mut chains = Vec::new();
        let mut rules = Vec::new();
        match self {
            EgressMasq::IpMasqAgent(a) => {
                if !a.valid || (family == Family::IPv6 && !a.enable_ipv6) {
                    return (chains, rules);
                }
                let name: Arc<str> = Arc::from(a.chain.as_str());
                chains.push(name.clone());
                let chain = Chain::Named(name);
                rules.push(IptRule {
                    chain: post,
                    args: vec![
                        cm(format!("ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom {} chain", a.chain)),
                        Arg::DstTypeLocal(true),
                    ],
                    target: Target::Jump(chain.clone()),
                });
                let local =
                    || cm("ip-masq-agent: local traffic is not subject to MASQUERADE".to_string());
                let (ll, masq_ll) = match family {
                    Family::IPv4 => (LINK_LOCAL_V4, a.masq_link_local),
                    Family::IPv6 => (LINK_LOCAL_V6, a.masq_link_local_ipv6),
                };
                if !masq_ll {
                    rules.push(IptRule {
                        chain: chain.clone(),
                        args: vec![
                            local(),
                            Arg::Dst(Addr::Net(ll.parse().expect("static")), false),
                        ],
                        target: Target::Return,
                    });
                }
                for n in a
                    .non_masquerade
                    .iter()
                    .filter(|n| Family::of_net(n) == family)
                {
                    rules.push(IptRule {
                        chain: chain.clone(),
                        args: vec![local(), Arg::Dst(Addr::Net(*n), false)],
                        target: Target::Return,
                    });
                }
                rules.push(IptRule {
                    chain,
                    args: vec![cm("ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)".to_string())],
                    target: Target::Masquerade {
                        random_fully: false,
                    },
                });
            }
            EgressMasq::Kindnet { non_masquerade } => {
                let name: Arc<str> = Arc::from("KIND-MASQ-AGENT");
                chains.push(name.clone());
                let chain = Chain::Named(name);
                rules.push(IptRule {
                    chain: post,
                    args: vec![
                        Arg::DstTypeLocal(true),
                        cm("kind-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom KIND-MASQ-AGENT chain".to_string()),
                    ],
                    target: Target::Jump(chain.clone()),
                });
                for n in non_masquerade
                    .iter()
                    .filter(|n| Family::of_net(n) == family)
                {
                    rules.push(IptRule {
                        chain: chain.clone(),
                        args: vec![
                            Arg::Dst(Addr::Net(n.trunc()), false),
                            cm(
                                "kind-masq-agent: local traffic is not subject to MASQUERADE"
                                    .to_string(),
                            ),
                        ],
                        target: Target::Return,
                    });
                }
                rules.push(IptRule {
                    chain,
                    args: vec![cm("kind-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)".to_string())],
                    target: Target::Masquerade {
                        random_fully: false,
                    },
                });
            }
            EgressMasq::Kubenet { non_masquerade } => {
                if family == Family::IPv4 && non_masquerade.prefix_len() != 0 {
                    rules.push(IptRule {
                        chain: post,
                        args: vec![
                            Arg::Dst(Addr::Net(*non_masquerade), true),
                            cm("kubenet: SNAT for outbound traffic from cluster".to_string()),
                            Arg::DstTypeLocal(true),
                        ],
                        target: Target::Masquerade {
                            random_fully: false,
                        },
                    });
                }
            }
            EgressMasq::Calico {
                masq_pools,
                programs_ipv6,
                ..
            } => {
                if family == Family::IPv6 && !programs_ipv6 {
                    return (chains, rules);
                }
                let (masq_set, all_set) = calico_set_names(family);
                let cpost_name: Arc<str> = Arc::from("cali-POSTROUTING");
                let cnat_name: Arc<str> = Arc::from("cali-nat-outgoing");
                chains.push(cpost_name.clone());
                chains.push(cnat_name.clone());
                let cpost = Chain::Named(cpost_name);
                let cnat = Chain::Named(cnat_name);
                rules.push(IptRule {
                    chain: post,
                    args: vec![],
                    target: Target::Jump(cpost.clone()),
                });
                rules.push(IptRule {
                    chain: cpost,
                    args: vec![],
                    target: Target::Jump(cnat.clone()),
                });
                if masq_pools.iter().any(|n| Family::of_net(n) == family) {
                    rules.push(IptRule {
                        chain: cnat,
                        args: vec![
                            Arg::MatchSet(Arc::from(masq_set), "src", false),
                            Arg::MatchSet(Arc::from(all_set), "dst", true),
                        ],
                        target: Target::Masquerade {
                            random_fully: false,
                        },
                    });
                }
            }
        }
        (chains, rules)
    }

    /// The ipsets Calico's rules refer to, in `ipset save` format, for one family.
    pub fn ipsets(&self, family: Family) -> String {
        let EgressMasq::Calico {
            masq_pools,
            all_pools,
            programs_ipv6,
        } = self
        else {
            return String::new();
        };
        if family == Family::IPv6 && !programs_ipv6 {
            return String::new();
        }
        let (masq_set, all_set) = calico_set_names(family);
        let fam = match family {
            Family::IPv4 => "inet",
            Family::IPv6 => "inet6",
        };
        let mut out = String::new();
        for (set, nets) in [(masq_set, masq_pools), (all_set, all_pools)] {
            out.push_str(&format!(
                "create {set} hash:net family {fam} hashsize 1024 maxelem 1048576\n"
            ));
            for n in nets.iter().filter(|n| Family::of_net(n) == family) {
                out.push_str(&format!("add {set} {n}\n"));
            }
        }
        out
    }

    /// Whether traffic from `src` to the non-local destination `dst` leaving the node is
    /// masqueraded by this agent.
    pub fn decide(&self, src: IpAddr, dst: IpAddr) -> MasqDecision {
        let family = Family::of_ip(&dst);
        let (_, rules) = self.iptables(family);
        self.decide_with(&rules, src, dst)
    }

    /// [`EgressMasq::decide`] with the agent's rules of `dst`'s family already built (by
    /// [`EgressMasq::iptables`]).
    pub fn decide_with(&self, rules: &[IptRule], src: IpAddr, dst: IpAddr) -> MasqDecision {
        let family = Family::of_ip(&dst);
        let agent = match self {
            EgressMasq::IpMasqAgent(_) => "ip-masq-agent",
            EgressMasq::Kindnet { .. } => "kindnet",
            EgressMasq::Kubenet { .. } => "kubenet",
            EgressMasq::Calico { .. } => "calico",
        };
        if let Some((i, masquerade)) = self.walk(rules, src, dst) {
            return MasqDecision {
                masquerade,
                agent: Some(agent),
                rule: Some(rules[i].to_line()),
                reason: None,
            };
        }
        let reason = match self {
            EgressMasq::IpMasqAgent(a) if !a.valid => a.error.clone(),
            EgressMasq::IpMasqAgent(a) if family == Family::IPv6 && !a.enable_ipv6 => Some(
                "ip-masq-agent runs without --enable-ipv6: no IPv6 masquerade rules".to_string(),
            ),
            EgressMasq::Kubenet { .. } if family == Family::IPv6 => {
                Some("kubenet masquerades IPv4 only".to_string())
            }
            EgressMasq::Calico { programs_ipv6, .. }
                if family == Family::IPv6 && !programs_ipv6 =>
            {
                Some("Felix runs without IPv6 support (FELIX_IPV6SUPPORT=false)".to_string())
            }
            EgressMasq::Calico { .. } => Some(
                "the source is not in an IP pool with natOutgoing, or the destination is in an IP pool"
                    .to_string(),
            ),
            _ => None,
        };
        MasqDecision {
            masquerade: false,
            agent: None,
            rule: None,
            reason,
        }
    }

    /// Walks POSTROUTING's rules of this agent (the jump rule, then its chain) for a packet
    /// leaving the node: the index of the rule that decided and whether it masquerades, or
    /// `None` when no rule applied.
    pub fn walk(&self, rules: &[IptRule], src: IpAddr, dst: IpAddr) -> Option<(usize, bool)> {
        let matches = |r: &IptRule| -> bool {
            r.args.iter().all(|a| match a {
                Arg::Dst(addr, neg) => addr.contains(dst) != *neg,
                Arg::Src(addr, neg) => addr.contains(src) != *neg,
                Arg::DstTypeLocal(neg) => *neg, // dst is not local: `! --dst-type LOCAL` matches
                Arg::MatchSet(name, dir, neg) => {
                    let ip = if *dir == "src" { src } else { dst };
                    self.set_contains(name, ip) != *neg
                }
                _ => true,
            })
        };
        let mut chain: &Chain = &Chain::Fixed("POSTROUTING");
        let mut depth = 0;
        'walk: while depth < 8 {
            depth += 1;
            for (i, r) in rules.iter().enumerate().filter(|(_, r)| &r.chain == chain) {
                if !matches(r) {
                    continue;
                }
                match &r.target {
                    Target::Jump(next) => {
                        chain = next;
                        continue 'walk;
                    }
                    Target::Return => return Some((i, false)),
                    Target::Masquerade { .. } => return Some((i, true)),
                    _ => {}
                }
            }
            break;
        }
        None
    }

    fn set_contains(&self, name: &str, ip: IpAddr) -> bool {
        let EgressMasq::Calico {
            masq_pools,
            all_pools,
            ..
        } = self
        else {
            return false;
        };
        let list = if name.contains("masq") {
            masq_pools
        } else {
            all_pools
        };
        list.iter().any(|n| n.contains(&ip))
    }
}

fn calico_set_names(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::IPv4 => ("cali40masq-ipam-pools", "cali40all-ipam-pools"),
        Family::IPv6 => ("cali60masq-ipam-pools", "cali60all-ipam-pools"),
    }
}

/// Whether the external network routes replies back to `src`: private IPv4, shared address
/// space, unique-local and link-local IPv6 are not routed on the internet.
pub fn globally_routable(src: IpAddr) -> Result<(), String> {
    match src {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_private() {
                Err(format!("{src} is a private (RFC 1918) address"))
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Err(format!("{src} is a shared (RFC 6598) address"))
            } else if v4.is_link_local() || v4.is_loopback() {
                Err(format!("{src} is a link-local or loopback address"))
            } else {
                Ok(())
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if (seg[0] & 0xfe00) == 0xfc00 {
                Err(format!("{src} is a unique local address (fc00::/7)"))
            } else if (seg[0] & 0xffc0) == 0xfe80 || v6.is_loopback() {
                Err(format!("{src} is a link-local or loopback address"))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knetsim_model::Spanned;

    fn cfg(cidrs: Option<&[&str]>, ipv6: bool) -> IpMasqAgentConfig {
        IpMasqAgentConfig {
            non_masquerade_cidrs: cidrs.map(|c| {
                c.iter()
                    .map(|s| Spanned::new(s.to_string(), Default::default()))
                    .collect()
            }),
            enable_ipv6: ipv6,
            ..IpMasqAgentConfig::default()
        }
    }

    #[test]
    fn ip_masq_agent_validation_messages_are_verbatim() {
        let many: Vec<String> = (0..65).map(|i| format!("10.{i}.0.0/16")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        type Case<'a> = (Option<&'a [&'a str]>, bool, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (None, false, None),
            (Some(&["10.0.0.0/8"]), false, None),
            (
                Some(&many),
                false,
                Some(
                    "error syncing configuration: the daemon can only accept up to 64 CIDRs (excluding link-local), but got 65 CIDRs (excluding link local)",
                ),
            ),
            (
                Some(&["10.0.0.1/8"]),
                false,
                Some(
                    "error syncing configuration: CIDR \"10.0.0.1/8\" is not aligned to a CIDR block, ip: \"10.0.0.1\" network: \"10.0.0.0/8\"",
                ),
            ),
            (
                Some(&["fd00::/8"]),
                false,
                Some(
                    "error syncing configuration: ipv6 is not enabled, but ipv6 cidr fd00::/8 provided. Enable ipv6 using --enable-ipv6 agent flag",
                ),
            ),
            (Some(&["fd00::/8"]), true, None),
        ];
        for (cidrs, v6, want) in cases {
            let (agent, diag) = masq_agent(&cfg(cidrs, v6));
            assert_eq!(agent.error.as_deref(), want, "{cidrs:?}");
            assert_eq!(diag.is_some(), want.is_some());
            assert_eq!(agent.valid, want.is_none());
        }
    }

    #[test]
    fn ip_masq_agent_rules_and_decisions() {
        let (agent, _) = masq_agent(&cfg(None, false));
        let m = EgressMasq::IpMasqAgent(agent);
        let (_, rules) = m.iptables(Family::IPv4);
        let lines: Vec<String> = rules.iter().map(IptRule::to_line).collect();
        assert_eq!(
            lines,
            [
                "-A POSTROUTING -m comment --comment \"ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain\" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT",
                "-A IP-MASQ-AGENT -m comment --comment \"ip-masq-agent: local traffic is not subject to MASQUERADE\" -d 169.254.0.0/16 -j RETURN",
                "-A IP-MASQ-AGENT -m comment --comment \"ip-masq-agent: local traffic is not subject to MASQUERADE\" -d 10.0.0.0/8 -j RETURN",
                "-A IP-MASQ-AGENT -m comment --comment \"ip-masq-agent: local traffic is not subject to MASQUERADE\" -d 172.16.0.0/12 -j RETURN",
                "-A IP-MASQ-AGENT -m comment --comment \"ip-masq-agent: local traffic is not subject to MASQUERADE\" -d 192.168.0.0/16 -j RETURN",
                "-A IP-MASQ-AGENT -m comment --comment \"ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)\" -j MASQUERADE",
            ]
        );
        let cases = [
            ("10.244.1.5", "203.0.113.10", true),
            ("10.244.1.5", "10.244.2.7", false),
            ("10.244.1.5", "192.168.5.5", false),
            ("10.244.1.5", "169.254.169.254", false),
        ];
        for (src, dst, want) in cases {
            let d = m.decide(src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(d.masquerade, want, "{src} -> {dst}");
        }
        // Without --enable-ipv6 nothing masquerades IPv6.
        let d = m.decide(
            "fd00::5".parse().unwrap(),
            "2001:db8:ffff::10".parse().unwrap(),
        );
        assert!(!d.masquerade);
        assert!(m.iptables(Family::IPv6).1.is_empty());
    }

    #[test]
    fn calico_nat_outgoing_by_pool() {
        let m = EgressMasq::Calico {
            masq_pools: vec!["10.244.0.0/16".parse().unwrap()],
            all_pools: vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00:10:244::/48".parse().unwrap(),
            ],
            programs_ipv6: true,
        };
        let cases = [
            ("10.244.1.5", "203.0.113.10", true),
            ("10.244.1.5", "10.244.9.9", false),
            ("fd00:10:244::5", "2001:db8:ffff::10", false),
        ];
        for (src, dst, want) in cases {
            assert_eq!(
                m.decide(src.parse().unwrap(), dst.parse().unwrap())
                    .masquerade,
                want,
                "{src} -> {dst}"
            );
        }
        assert_eq!(
            m.ipsets(Family::IPv4),
            "create cali40masq-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576\n\
             add cali40masq-ipam-pools 10.244.0.0/16\n\
             create cali40all-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576\n\
             add cali40all-ipam-pools 10.244.0.0/16\n"
        );
    }

    #[test]
    fn routability_of_sources() {
        for (ip, ok) in [
            ("10.1.2.3", false),
            ("100.64.1.1", false),
            ("203.0.113.5", true),
            ("192.168.0.11", false),
            ("fd00:10:244::5", false),
            ("fe80::1", false),
            ("2001:db8:1::5", true),
        ] {
            assert_eq!(globally_routable(ip.parse().unwrap()).is_ok(), ok, "{ip}");
        }
    }
}
