//! The whole pipeline on small inputs, as the CLI runs it but without files: load (check),
//! simulate and render the state (run), evaluate the expectations (test), build the dataplane
//! and render every node's routes and rules, the graph, a few traces and a reachability
//! matrix (rules, routes, graph, trace, reach).
//!
//! Input: as the `scenario` target (a scenario, then `#@file NAME` files). Inputs that could
//! expand to a large cluster are skipped (`common::small_text`, `common::small_scenario`):
//! the target is for crashes on small clusters, not for timing legitimate large ones.

#![no_main]

mod common;

use std::sync::Arc;

use knetsim_dataplane::{ReachQuery, TraceQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !common::small_text(text) {
        return;
    }
    let (main, files) = common::split_files(text);
    let loader = common::MemLoader { files };
    let loaded = knetsim_model::load_scenario_str("scenario.yaml", main, &loader);
    common::check_diagnostics(&loaded.sources, &loaded.diagnostics);
    let Some(scenario) = &loaded.value else {
        return;
    };
    if !common::small_scenario(scenario) {
        return;
    }

    // check: the components' reading of their flags.
    let _ = knetsim_control::components::configure(scenario.version, &scenario.cluster);

    // run: the state document.
    let state = Arc::new(knetsim_control::simulate(scenario));
    let mut yaml = Vec::new();
    knetsim::cmd::run::write_state_yaml(&mut yaml, &state).expect("state renders as YAML");
    let _ = knetsim::cmd::run::Summary::of(&state);

    // test: control-plane expectations.
    let _ = knetsim_control::expect::evaluate(&state, &scenario.expect);

    // The dataplane, its warnings rendered against the scenario's own sources.
    let dp = match knetsim_dataplane::build(Arc::clone(&state), scenario) {
        Ok(dp) => dp,
        Err(diags) => {
            assert!(
                diags.iter().any(|d| d.is_error()),
                "build failed without an error"
            );
            common::check_diagnostics(&loaded.sources, &diags);
            return;
        }
    };
    common::check_diagnostics(&loaded.sources, &dp.warnings);

    // test: dataplane expectations.
    for e in &scenario.expect {
        if let knetsim_model::scenario::Expectation::Dataplane(n) = &e.value
            && let Err(d) = knetsim_dataplane::check_expectation(&dp, &state, n)
        {
            common::check_diagnostics(&loaded.sources, std::slice::from_ref(&d));
        }
    }

    // routes and rules: every node, every family, every format.
    for node in state.nodes.keys() {
        for f in dp.families() {
            if let Some(t) = dp.node_routes(node, f) {
                let _ = knetsim_dataplane::render_routes(t);
            }
            let _ = knetsim_dataplane::render_iptables_save(&dp, node, f);
            let _ = dp.masq.ipsets(f);
            if let Some(r) = dp.rules(node, f) {
                let _ = r.counts();
            }
        }
        let _ = knetsim_dataplane::render_nft(&dp, node);
    }
    let _ = dp.rule_counts();
    // graph
    let _ = knetsim_dataplane::render_dot(&dp);

    // trace: a few packets between the first and last pods, nodes and Services, and out.
    let pods: Vec<String> = state
        .pods
        .keys()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let services: Vec<String> = state
        .services
        .keys()
        .map(|s| format!("svc:{}/{}", s.namespace, s.name))
        .collect();
    let nodes: Vec<String> = state.nodes.keys().map(|n| format!("node:{n}")).collect();
    let mut places: Vec<&String> = Vec::new();
    for list in [&pods, &nodes] {
        places.extend(list.first());
        places.extend(list.last());
    }
    let external = "external".to_string();
    places.push(&external);
    let mut destinations = places.clone();
    destinations.extend(services.first());
    destinations.extend(services.last());
    for from in &places {
        for to in &destinations {
            for family in [None, Some(knetsim_ipam::Family::IPv6)] {
                let q = TraceQuery {
                    from: (*from).clone(),
                    to: (*to).clone(),
                    family,
                    proto: String::new(),
                    port: None,
                };
                if let Ok(t) = knetsim_dataplane::trace(&dp, &state, &q) {
                    let _ = knetsim_dataplane::render_trace_text(&t);
                }
            }
        }
    }

    // reach: every pod (and the external host) to every Service and pod, the fast path.
    let q = ReachQuery {
        from: vec!["pods:*".to_string(), "external".to_string()],
        to: vec!["services:*".to_string(), "pods:*".to_string()],
        family: None,
        proto: String::new(),
        port: None,
    };
    if let Ok(m) = knetsim_dataplane::reach(&dp, &q) {
        let _ = knetsim_dataplane::render_reach_table(&m);
    }
});
