//! The simulated dataplane: the fabric around the cluster, per-node routes, the rules
//! kube-proxy writes (iptables and nftables), egress masquerade, and packet traces.
//!
//! The module list below is a map of the code.
//!
//! - [`config`]: the scenario's `fabric:` section (underlay, external hosts, load balancers).
//! - [`fabric`]: the resolved fabric, CNI shapes (host-local/kindnet, kubenet, Calico), route
//!   construction, MetalLB-like load-balancer IP assignment, the petgraph graph and its DOT.
//! - [`routes`]: per-node routing tables (`local` and `main`), longest-prefix match, and
//!   `ip route show` rendering.
//! - [`proxy`]: kube-proxy per family (`model`: Services and endpoints as the proxier sees
//!   them; `iptables` and `nftables`: rule generation, text, and the unit-test tracers).
//! - [`masq`]: egress masquerade by ip-masq-agent, kindnet, kubenet or Calico, and whether the
//!   external network can answer a source address.
//! - [`trace`]: `knetsim trace`: a packet walked hop by hop, its verdict, the reply path.
//! - [`expect`]: scenario `expect:` entries `trace:` and `reachability:`.
//! - [`names`]: hashes and encodings kube-proxy and CNIs derive names from.
//! - [`testkit`]: building `ClusterState` values by hand, for tests.
//!
//! Invariants: no I/O, no clock, no randomness. Per-node routes and rules are computed on
//! demand and cached, because a 5,000-node cluster would otherwise hold 5,000 copies of a rule
//! set that differs between nodes only in node-local parts.

pub mod config;
pub mod expect;
pub mod fabric;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod flow_tests;
pub mod masq;
pub mod names;
pub mod proxy;
pub mod routes;
#[doc(hidden)]
pub mod testkit;
pub mod trace;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use knetsim_control::state::{ClusterState, NamespacedName, ProxyConfig};
use knetsim_ipam::Family;
use knetsim_model::{Diagnostic, Scenario};

pub use config::FabricConfig;
pub use expect::{ExpectOutcome, check_expectation};
pub use fabric::{Cni, Fabric};
pub use masq::EgressMasq;
pub use proxy::{ProxyRules, RuleCounts, RulesError};
pub use routes::{RouteTable, render_routes};
pub use trace::{Trace, TraceQuery, render_trace_text, trace};

#[derive(Debug, Default)]
struct NodeCache {
    routes: [OnceLock<RouteTable>; 2],
    rules: [OnceLock<Result<ProxyRules, RulesError>>; 2],
}

fn fidx(f: Family) -> usize {
    match f {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

/// The dataplane of one simulated cluster.
#[derive(Debug)]
pub struct Dataplane {
    state: Arc<ClusterState>,
    pub fabric: Fabric,
    pub proxy: Option<ProxyConfig>,
    /// Why kube-proxy programs nothing (not running, or a mode knetsim does not model).
    pub proxy_problem: Option<String>,
    pub masq: EgressMasq,
    /// Effective `status.loadBalancer.ingress` IPs per LoadBalancer Service.
    lb_ips: BTreeMap<NamespacedName, Vec<IpAddr>>,
    models: BTreeMap<Family, proxy::FamilyModel>,
    nodes: BTreeMap<String, NodeCache>,
    /// Warnings found while building (an ip-masq-agent configuration the agent rejects, …).
    pub warnings: Vec<Diagnostic>,
}

/// Builds the dataplane from the simulated cluster and the scenario (`cluster.cni`,
/// `cluster.ip-masq-agent`, `fabric:`).
pub fn build(state: &ClusterState, scenario: &Scenario) -> Result<Dataplane, Vec<Diagnostic>> {
    let cfg = config::read_fabric(scenario.fabric.as_ref())?;
    let cni = Cni::from_scenario(scenario, state);
    let mut warnings = Vec::new();
    let agent = scenario.cluster.ip_masq_agent.as_ref().map(|c| {
        let (a, d) = masq::masq_agent(c);
        warnings.extend(d);
        a
    });
    let mut dp = build_with(state, cni, &cfg, agent.as_ref());
    dp.warnings = warnings;
    Ok(dp)
}

/// [`build`] with the pieces given directly (for tests and callers without a scenario).
pub fn build_with(
    state: &ClusterState,
    cni: Cni,
    cfg: &FabricConfig,
    agent: Option<&masq::MasqAgent>,
) -> Dataplane {
    let fabric = Fabric::build(state, cni, cfg);
    let mut lb_ips: BTreeMap<NamespacedName, Vec<IpAddr>> = BTreeMap::new();
    for (nn, svc) in &state.services {
        if svc.spec.type_ != "LoadBalancer" {
            continue;
        }
        let from_status: Vec<IpAddr> = svc
            .status
            .load_balancer
            .ingress
            .iter()
            .map(|i| i.ip)
            .collect();
        let ips = if from_status.is_empty() {
            fabric.lb_assigned.get(nn).cloned().unwrap_or_default()
        } else {
            from_status
        };
        if !ips.is_empty() {
            lb_ips.insert(nn.clone(), ips);
        }
    }
    let proxy_started = state.components.get("kube-proxy").is_none_or(|c| c.started);
    let proxy = state.network.kube_proxy.clone();
    let proxy_problem = match &proxy {
        None => Some("kube-proxy is not running".to_string()),
        Some(_) if !proxy_started => Some("kube-proxy did not start".to_string()),
        Some(p) if p.mode != "iptables" && p.mode != "nftables" && !p.mode.is_empty() => {
            Some(proxy::RulesError::ModeNotModelled(p.mode.clone()).to_string())
        }
        _ => None,
    };
    let mut models = BTreeMap::new();
    if proxy_problem.is_none() {
        for family in [Family::IPv4, Family::IPv6] {
            let m = proxy::model::build_family(state, family, &|nn, _svc| {
                lb_ips.get(nn).cloned().unwrap_or_default()
            });
            models.insert(family, m);
        }
    }
    let masq = EgressMasq::new(state, &fabric.cni, agent);
    let nodes = state
        .nodes
        .keys()
        .map(|n| (n.clone(), NodeCache::default()))
        .collect();
    Dataplane {
        state: Arc::new(state.clone()),
        fabric,
        proxy,
        proxy_problem,
        masq,
        lb_ips,
        models,
        nodes,
        warnings: Vec::new(),
    }
}

impl Dataplane {
    /// The cluster state the dataplane was built from.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// One node's routing table of one family, built on first use.
    pub fn node_routes(&self, node: &str, family: Family) -> Option<&RouteTable> {
        let cache = self.nodes.get(node)?;
        Some(
            cache.routes[fidx(family)]
                .get_or_init(|| self.fabric.routes(&self.state, node, family)),
        )
    }

    /// kube-proxy's rules on one node for one family, built on first use. `None` when the
    /// node does not exist or kube-proxy programs nothing (see [`Dataplane::proxy_problem`]).
    pub fn rules(&self, node: &str, family: Family) -> Option<&ProxyRules> {
        let cache = self.nodes.get(node)?;
        let cfg = self.proxy.as_ref()?;
        if self.proxy_problem.is_some() {
            return None;
        }
        let model = self.models.get(&family)?;
        cache.rules[fidx(family)]
            .get_or_init(|| {
                let ctx = proxy::NodeCtx::new(&self.state, cfg, node, family);
                proxy::build_rules(model, &ctx, &cfg.mode)
            })
            .as_ref()
            .ok()
    }

    /// Rule counts per node and family (builds every node's rules).
    pub fn rule_counts(&self) -> BTreeMap<String, BTreeMap<Family, RuleCounts>> {
        let mut out = BTreeMap::new();
        for node in self.nodes.keys() {
            let mut per = BTreeMap::new();
            for family in self.families() {
                if let Some(r) = self.rules(node, family) {
                    per.insert(family, r.counts());
                }
            }
            out.insert(node.clone(), per);
        }
        out
    }

    /// Load-balancer IPs in effect per LoadBalancer Service (from status, or assigned from
    /// the fabric's pool).
    pub fn load_balancer_ips(&self) -> &BTreeMap<NamespacedName, Vec<IpAddr>> {
        &self.lb_ips
    }

    /// The families the cluster runs (by its service CIDRs; both when unknown).
    pub fn families(&self) -> Vec<Family> {
        let f = &self.state.network.ip_families;
        if f.is_empty() {
            vec![Family::IPv4, Family::IPv6]
        } else {
            let mut v = f.clone();
            v.sort();
            v.dedup();
            v
        }
    }

    /// The family model (every Service port kube-proxy programs).
    pub fn family_model(&self, family: Family) -> Option<&proxy::FamilyModel> {
        self.models.get(&family)
    }
}

/// Generates kube-proxy's rules for one node and family directly from the cluster state,
/// without a [`Dataplane`]: the entry point for benchmarks of rule generation.
pub fn build_rules(
    state: &ClusterState,
    node: &str,
    family: Family,
) -> Result<ProxyRules, RulesError> {
    let Some(cfg) = state.network.kube_proxy.as_ref() else {
        return Err(RulesError::ModeNotModelled("none".to_string()));
    };
    let lb = |_: &NamespacedName, svc: &knetsim_control::state::Service| {
        svc.status
            .load_balancer
            .ingress
            .iter()
            .map(|i| i.ip)
            .collect()
    };
    let model = proxy::model::build_family(state, family, &lb);
    let ctx = proxy::NodeCtx::new(state, cfg, node, family);
    proxy::build_rules(&model, &ctx, &cfg.mode)
}

/// Renders one node's and family's iptables rules as `iptables-save` / `ip6tables-save` would
/// list them (kube-proxy's tables in the order it writes them), with the egress masquerade
/// rules other agents add to the nat table. In nftables mode only those egress rules remain
/// in iptables.
pub fn render_iptables_save(dp: &Dataplane, node: &str, family: Family) -> String {
    let (chains, extra) = dp.masq.iptables(family);
    match dp.rules(node, family) {
        Some(ProxyRules::Iptables(r)) => proxy::iptables::render(r, &chains, &extra),
        _ => {
            let empty = proxy::iptables::IptablesRules {
                family,
                filter: Default::default(),
                nat: Default::default(),
                large_cluster_mode: false,
            };
            let mut r = empty;
            r.filter.builtin = vec!["INPUT", "FORWARD", "OUTPUT"];
            r.nat.builtin = vec!["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];
            proxy::iptables::render(&r, &chains, &extra)
        }
    }
}

/// Renders both families' `kube-proxy` nftables tables of a node (empty in iptables mode).
pub fn render_nft(dp: &Dataplane, node: &str) -> String {
    let mut out = String::new();
    for family in [Family::IPv4, Family::IPv6] {
        if let Some(ProxyRules::Nftables(r)) = dp.rules(node, family) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&proxy::nftables::render(r));
        }
    }
    out
}

/// Renders the fabric as Graphviz DOT.
pub fn render_dot(dp: &Dataplane) -> String {
    fabric::render_dot(&fabric::graph(&dp.state, &dp.fabric))
}
