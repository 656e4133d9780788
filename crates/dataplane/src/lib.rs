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
//! - [`trace`](mod@trace): `knetsim trace`: a packet walked hop by hop, its verdict, the reply path.
//! - [`verdict`]: the fast path: a compiled query's verdict from lookup tables, without the
//!   hop-by-hop record, one at a time or in parallel batches (for reachability questions
//!   asked millions of times).
//! - [`reach`](mod@reach): `knetsim reach`: reachability matrices (sources × destinations, with
//!   selectors such as `pods:NS` and `services:NS`) answered by the fast path.
//! - [`expect`]: scenario `expect:` entries `trace:` and `reachability:` (matrices answered
//!   by the fast path; failing cells traced for their reason). A malformed entry is a
//!   Diagnostic; a well-formed query the state cannot answer is a failed outcome.
//! - [`names`]: hashes and encodings kube-proxy and CNIs derive names from.
//! - [`fasthash`]: a fast hasher for the lookup tables on hot paths.
//! - [`testkit`]: building `ClusterState` values by hand, for tests.
//!
//! Invariants: no I/O, no clock, no randomness. Per-node routes and rules are computed on
//! demand and cached, because a 5,000-node cluster would otherwise hold 5,000 copies of a rule
//! set that differs between nodes only in node-local parts.

pub mod config;
pub mod expect;
pub mod fabric;
pub mod fasthash;
#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod flow_tests;
pub mod masq;
pub mod names;
pub mod proxy;
pub mod reach;
pub mod routes;
#[doc(hidden)]
pub mod testkit;
pub mod trace;
pub mod verdict;
#[cfg(test)]
mod verdict_tests;

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
pub use reach::{Matrix, ReachQuery, reach, render_reach_table};
pub use routes::{RouteTable, render_routes};
pub use trace::{Trace, TraceQuery, render_trace_text, trace};
// `render_rules_in_mode` is defined below with the other renderers.
pub use verdict::{CompiledQuery, QueryGrid, Verdict};

#[derive(Debug, Default)]
struct NodeCache {
    routes: [OnceLock<RouteTable>; 2],
    rules: [OnceLock<Result<ProxyRules, RulesError>>; 2],
}

/// A cluster state the dataplane can share instead of copying: pass an `Arc` (or an owned
/// state) to avoid the copy a borrowed one needs.
pub trait IntoSharedState {
    fn into_shared(self) -> Arc<ClusterState>;
}

impl IntoSharedState for &ClusterState {
    fn into_shared(self) -> Arc<ClusterState> {
        Arc::new(self.clone())
    }
}

impl IntoSharedState for ClusterState {
    fn into_shared(self) -> Arc<ClusterState> {
        Arc::new(self)
    }
}

impl IntoSharedState for Arc<ClusterState> {
    fn into_shared(self) -> Arc<ClusterState> {
        self
    }
}

impl IntoSharedState for &Arc<ClusterState> {
    fn into_shared(self) -> Arc<ClusterState> {
        self.clone()
    }
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
    /// The Service model of each family, both built on first use (`None` when kube-proxy
    /// programs nothing).
    models: OnceLock<Option<[Arc<proxy::FamilyModel>; 2]>>,
    nodes: BTreeMap<String, NodeCache>,
    /// The fast path's lookup tables, built on first use.
    fast: OnceLock<verdict::FastIndex>,
    /// Warnings found while building (an ip-masq-agent configuration the agent rejects, …).
    pub warnings: Vec<Diagnostic>,
}

/// Builds the dataplane from the simulated cluster and the scenario (`cluster.cni`,
/// `cluster.ip-masq-agent`, `fabric:`). A borrowed state is copied; pass it in an `Arc` to
/// share it instead.
pub fn build(
    state: impl IntoSharedState,
    scenario: &Scenario,
) -> Result<Dataplane, Vec<Diagnostic>> {
    let state = state.into_shared();
    let cfg = config::read_fabric(scenario.fabric.as_ref())?;
    let cni = Cni::from_scenario(scenario, &state);
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
    state: impl IntoSharedState,
    cni: Cni,
    cfg: &FabricConfig,
    agent: Option<&masq::MasqAgent>,
) -> Dataplane {
    let shared = state.into_shared();
    let state = &*shared;
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
    let masq = EgressMasq::new(state, &fabric.cni, agent);
    let nodes = state
        .nodes
        .keys()
        .map(|n| (n.clone(), NodeCache::default()))
        .collect();
    Dataplane {
        state: shared,
        fabric,
        proxy,
        proxy_problem,
        masq,
        lb_ips,
        models: Default::default(),
        nodes,
        fast: OnceLock::new(),
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

    /// kube-proxy's rules on one node for one family, built on first use and kept. `None`
    /// when the node does not exist or kube-proxy programs nothing (see
    /// [`Dataplane::proxy_problem`]).
    pub fn rules(&self, node: &str, family: Family) -> Option<&ProxyRules> {
        let cache = self.nodes.get(node)?;
        if let Some(r) = cache.rules[fidx(family)].get() {
            return r.as_ref().ok();
        }
        let built = self.generate_rules(node, family)?;
        cache.rules[fidx(family)]
            .get_or_init(|| built)
            .as_ref()
            .ok()
    }

    /// kube-proxy's rules on one node for one family, built now and not kept (a rule set of
    /// a 10,000-Service cluster is large: rendering every node's rules one after another
    /// should not hold them all). `None` as for [`Dataplane::rules`].
    pub fn generate_rules(
        &self,
        node: &str,
        family: Family,
    ) -> Option<Result<ProxyRules, RulesError>> {
        self.nodes.get(node)?;
        let cfg = self.proxy.as_ref()?;
        let model = self.model(family)?;
        let ctx = proxy::NodeCtx::new(&self.state, cfg, node, family);
        Some(proxy::build_rules(model, &ctx, &cfg.mode))
    }

    /// The mode kube-proxy programs rules in (`iptables` or `nftables`), when it runs and
    /// knetsim models its mode.
    pub fn proxy_mode(&self) -> Option<&'static str> {
        if self.proxy_problem.is_some() {
            return None;
        }
        match self.proxy.as_ref()?.mode.as_str() {
            "iptables" | "" => Some("iptables"),
            "nftables" => Some("nftables"),
            _ => None,
        }
    }

    /// The rules kube-proxy would program on one node for one family if it ran in `mode`
    /// (`iptables` or `nftables`) with the rest of its configuration unchanged: what a
    /// migration between modes would change. Built now and not kept; `None` as for
    /// [`Dataplane::rules`].
    pub fn generate_rules_in(
        &self,
        node: &str,
        family: Family,
        mode: &str,
    ) -> Option<Result<ProxyRules, RulesError>> {
        self.nodes.get(node)?;
        let mut cfg = self.proxy.clone()?;
        cfg.mode = mode.to_string();
        let model = self.model(family)?;
        let ctx = proxy::NodeCtx::new(&self.state, &cfg, node, family);
        Some(proxy::build_rules(model, &ctx, mode))
    }

    /// Calls `f` with the node's rules: the kept ones if [`Dataplane::rules`] built them, else
    /// ones built for the call and dropped after it.
    pub fn with_rules<R>(
        &self,
        node: &str,
        family: Family,
        f: impl FnOnce(Option<&ProxyRules>) -> R,
    ) -> R {
        if let Some(r) = self
            .nodes
            .get(node)
            .and_then(|c| c.rules[fidx(family)].get())
        {
            return f(r.as_ref().ok());
        }
        let built = self.generate_rules(node, family);
        f(built.as_ref().and_then(|r| r.as_ref().ok()))
    }

    /// kube-proxy's view of `node` for `family`, when the node exists and kube-proxy runs.
    fn node_ctx(&self, node: &str, family: Family) -> Option<proxy::NodeCtx> {
        self.nodes.get(node)?;
        let cfg = self.proxy.as_ref()?;
        Some(proxy::NodeCtx::new(&self.state, cfg, node, family))
    }

    /// [`Dataplane::node_ctx`] as if kube-proxy ran in `mode`.
    fn node_ctx_in(&self, node: &str, family: Family, mode: &str) -> Option<proxy::NodeCtx> {
        self.nodes.get(node)?;
        let mut cfg = self.proxy.clone()?;
        cfg.mode = mode.to_string();
        Some(proxy::NodeCtx::new(&self.state, &cfg, node, family))
    }

    /// The Service model of a family, built on first use.
    pub(crate) fn model(&self, family: Family) -> Option<&Arc<proxy::FamilyModel>> {
        let models = self.models.get_or_init(|| {
            if self.proxy_problem.is_some() {
                return None;
            }
            let lb = |nn: &NamespacedName, _svc: &knetsim_control::state::Service| {
                self.lb_ips.get(nn).cloned().unwrap_or_default()
            };
            Some(proxy::model::build_models(&self.state, [true, true], &lb).map(Arc::new))
        });
        models.as_ref().map(|m| &m[fidx(family)])
    }

    /// Drops every model, route table and rule set built so far, as if the dataplane had just
    /// been built (to bound memory after visiting many nodes, or to measure cold costs).
    pub fn reset_caches(&mut self) {
        self.models = Default::default();
        self.fast = OnceLock::new();
        for c in self.nodes.values_mut() {
            *c = NodeCache::default();
        }
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

    /// The family model (every Service port kube-proxy programs), built on first use.
    pub fn family_model(&self, family: Family) -> Option<&proxy::FamilyModel> {
        self.model(family).map(|m| &**m)
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
    let model = Arc::new(proxy::model::build_family(state, family, &lb));
    let ctx = proxy::NodeCtx::new(state, cfg, node, family);
    proxy::build_rules(&model, &ctx, &cfg.mode)
}

/// Renders one node's and family's iptables rules as `iptables-save` / `ip6tables-save` would
/// list them (kube-proxy's tables in the order it writes them), with the egress masquerade
/// rules other agents add to the nat table. In nftables mode only those egress rules remain
/// in iptables. Rules not already kept by [`Dataplane::rules`] are built for the call and dropped.
pub fn render_iptables_save(dp: &Dataplane, node: &str, family: Family) -> String {
    let (chains, extra) = dp.masq.iptables(family);
    if dp.proxy_mode() != Some("iptables") {
        return proxy::iptables::render(
            &proxy::iptables::IptablesRules::empty(family),
            &chains,
            &extra,
        );
    }
    let empty = || {
        proxy::iptables::render(
            &proxy::iptables::IptablesRules::empty(family),
            &chains,
            &extra,
        )
    };
    // Kept rules are rendered as they are; others are rendered as they are written.
    if let Some(cache) = dp.nodes.get(node)
        && let Some(r) = cache.rules[fidx(family)].get()
    {
        return match r {
            Ok(ProxyRules::Iptables(r)) => proxy::iptables::render(r, &chains, &extra),
            _ => empty(),
        };
    }
    match (dp.node_ctx(node, family), dp.model(family)) {
        (Some(ctx), Some(model)) => proxy::iptables::render_node(model, &ctx, &chains, &extra),
        _ => empty(),
    }
}

/// Renders both families' `kube-proxy` nftables tables of a node (empty in iptables mode).
/// Rules not already kept by [`Dataplane::rules`] are built for the call and dropped.
pub fn render_nft(dp: &Dataplane, node: &str) -> String {
    let mut out = String::new();
    if dp.proxy_mode() != Some("nftables") {
        return out;
    }
    for family in [Family::IPv4, Family::IPv6] {
        let kept = dp.nodes.get(node).and_then(|c| c.rules[fidx(family)].get());
        // Kept rules are rendered as they are; others are rendered as they are written.
        match kept {
            Some(Ok(ProxyRules::Nftables(r))) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                proxy::nftables::render_into(r, &mut out);
            }
            Some(_) => {}
            None => {
                if let (Some(ctx), Some(model)) = (dp.node_ctx(node, family), dp.model(family)) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    proxy::nftables::render_node_into(model, &ctx, &mut out);
                }
            }
        }
    }
    out
}

/// Renders one node's and family's kube-proxy rules as they would be if kube-proxy ran in
/// `mode`, whatever mode the cluster runs (what a migration between modes would change):
/// `iptables`: the `iptables-save` text with the egress agent's rules, as
/// [`render_iptables_save`]; `nftables`: the family's `kube-proxy` table, as [`render_nft`].
/// `None` for another mode, an unknown node, or when kube-proxy does not run.
pub fn render_rules_in_mode(
    dp: &Dataplane,
    node: &str,
    family: Family,
    mode: &str,
) -> Option<String> {
    let ctx = dp.node_ctx_in(node, family, mode)?;
    let model = dp.model(family)?;
    match mode {
        "iptables" => {
            let (chains, extra) = dp.masq.iptables(family);
            Some(proxy::iptables::render_node(model, &ctx, &chains, &extra))
        }
        "nftables" => {
            let mut out = String::new();
            proxy::nftables::render_node_into(model, &ctx, &mut out);
            Some(out)
        }
        _ => None,
    }
}

/// Renders the fabric as Graphviz DOT.
pub fn render_dot(dp: &Dataplane) -> String {
    fabric::render_dot(&fabric::graph(&dp.state, &dp.fabric))
}
