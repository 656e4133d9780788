//! `knetsim trace`, `rules`, `routes`, `graph`: questions about the dataplane.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use knetsim_control::ClusterState;
use knetsim_dataplane::{Dataplane, TraceQuery};
use knetsim_ipam::Family;

use crate::cli::{FamilyArg, RulesFormat, TextOrJson};
use crate::{EXIT_INVALID, EXIT_OK};

/// Loads and simulates a scenario and builds its dataplane; `Err(exit status)` after
/// printing why not. The dataplane shares the state (a large cluster's is not copied).
pub fn build(file: &Path, err: &mut dyn Write) -> Result<(Arc<ClusterState>, Dataplane), i32> {
    build_input(file, err).map(|(_, state, dp)| (state, dp))
}

/// [`build`], keeping the loaded input (its sources, for diagnostics about the scenario).
pub fn build_input(
    file: &Path,
    err: &mut dyn Write,
) -> Result<(super::load::Input, Arc<ClusterState>, Dataplane), i32> {
    let input = super::load::load_input(file, err)?;
    let state = Arc::new(knetsim_control::simulate(&input.scenario));
    // The loading pass validated `fabric:` and reported the dataplane's warnings (an
    // ip-masq-agent configuration the agent rejects) already.
    match knetsim_dataplane::build(&state, &input.scenario) {
        Ok(dp) => Ok((input, state, dp)),
        Err(diags) => {
            super::write_diagnostics(&input.sources, &diags, err);
            Err(EXIT_INVALID)
        }
    }
}

fn pick_node(
    input: &super::load::Input,
    state: &ClusterState,
    node: Option<String>,
    err: &mut dyn Write,
) -> Result<String, i32> {
    match node {
        Some(n) if state.nodes.contains_key(&n) => Ok(n),
        Some(n) => {
            let known: Vec<&str> = state.nodes.keys().map(String::as_str).take(10).collect();
            let _ = writeln!(
                err,
                "error: no node named {n:?} (nodes: {})",
                known.join(", ")
            );
            Err(EXIT_INVALID)
        }
        None => match state.nodes.keys().next() {
            Some(n) => Ok(n.clone()),
            None => {
                let d = knetsim_model::Diagnostic::error(
                    super::load::file_start(),
                    "the scenario has no nodes, so no node has routes or rules to show",
                )
                .with_label("this scenario")
                .with_help("add nodes under `nodes:` (a `name:` and `node-ip:` each, or `count:` to generate them)");
                super::write_diagnostics(&input.sources, &[d], err);
                Err(EXIT_INVALID)
            }
        },
    }
}

#[allow(clippy::too_many_arguments)]
pub fn trace(
    file: &Path,
    from: String,
    to: String,
    family: Option<FamilyArg>,
    proto: String,
    port: Option<u16>,
    output: TextOrJson,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (state, dp) = match build(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let q = TraceQuery {
        from,
        to,
        family: family.map(FamilyArg::family),
        proto,
        port,
    };
    match knetsim_dataplane::trace(&dp, &state, &q) {
        Ok(t) => {
            match output {
                TextOrJson::Text => {
                    out.write_all(knetsim_dataplane::render_trace_text(&t).as_bytes())?
                }
                TextOrJson::Json => {
                    serde_json::to_writer_pretty(&mut *out, &t)?;
                    out.write_all(b"\n")?;
                }
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(EXIT_INVALID)
        }
    }
}

fn families(dp: &Dataplane, family: Option<FamilyArg>) -> Vec<Family> {
    match family {
        Some(f) => vec![f.family()],
        None => dp.families(),
    }
}

fn suffix(f: Family) -> &'static str {
    match f {
        Family::IPv4 => "v4",
        Family::IPv6 => "v6",
    }
}

pub fn rules(
    file: &Path,
    node: Option<String>,
    family: Option<FamilyArg>,
    format: RulesFormat,
    write_dir: Option<PathBuf>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (input, state, dp) = match build_input(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if let Some(problem) = &dp.proxy_problem {
        writeln!(
            err,
            "note: {problem}; only egress masquerade rules are shown"
        )?;
    }
    if let Some(dir) = write_dir {
        std::fs::create_dir_all(&dir)?;
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario");
        let nodes: Vec<String> = match node {
            Some(n) => vec![n],
            None => state.nodes.keys().cloned().collect(),
        };
        let mut written = 0;
        for n in nodes {
            for f in families(&dp, family) {
                std::fs::write(
                    dir.join(format!("{stem}.{n}.{}.rules", suffix(f))),
                    knetsim_dataplane::render_iptables_save(&dp, &n, f),
                )?;
                let sets = dp.masq.ipsets(f);
                if !sets.is_empty() {
                    std::fs::write(dir.join(format!("{stem}.{n}.{}.ipsets", suffix(f))), sets)?;
                }
                written += 1;
            }
            let nft = knetsim_dataplane::render_nft(&dp, &n);
            if !nft.is_empty() {
                std::fs::write(dir.join(format!("{stem}.{n}.nft")), nft)?;
                written += 1;
            }
        }
        writeln!(out, "wrote {written} rule files to {}", dir.display())?;
        return Ok(EXIT_OK);
    }
    let node = match pick_node(&input, &state, node, err) {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    match format {
        RulesFormat::IptablesSave => {
            for f in families(&dp, family) {
                out.write_all(knetsim_dataplane::render_iptables_save(&dp, &node, f).as_bytes())?;
            }
        }
        RulesFormat::Nft => out.write_all(knetsim_dataplane::render_nft(&dp, &node).as_bytes())?,
        RulesFormat::Counts => {
            writeln!(
                out,
                "{:<24} {:<6} {:>8} {:>8} {:>8} {:>10} {:>7}",
                "NODE", "FAMILY", "FILTER", "NAT", "NFT", "ELEMENTS", "CHAINS"
            )?;
            for f in families(&dp, family) {
                if let Some(r) = dp.rules(&node, f) {
                    let c = r.counts();
                    writeln!(
                        out,
                        "{:<24} {:<6} {:>8} {:>8} {:>8} {:>10} {:>7}",
                        node, f, c.filter_rules, c.nat_rules, c.nft_rules, c.nft_elements, c.chains
                    )?;
                }
            }
        }
    }
    Ok(EXIT_OK)
}

pub fn routes(
    file: &Path,
    node: Option<String>,
    family: Option<FamilyArg>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (input, state, dp) = match build_input(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let node = match pick_node(&input, &state, node, err) {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    for f in families(&dp, family) {
        if let Some(t) = dp.node_routes(&node, f) {
            out.write_all(knetsim_dataplane::render_routes(t).as_bytes())?;
        }
    }
    Ok(EXIT_OK)
}

pub fn graph(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let (_, dp) = match build(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    out.write_all(knetsim_dataplane::render_dot(&dp).as_bytes())?;
    Ok(EXIT_OK)
}
