//! `knetsim run FILE`: the resulting state document.

use std::io::Write;
use std::path::Path;

use knetsim_control::ClusterState;
use serde::Serialize;

use crate::EXIT_OK;
use crate::cli::Output;
use crate::render::{json, yaml};

pub fn run(
    file: &Path,
    output: Output,
    summary: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let scenario = match super::load(file, err) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let state = knetsim_control::simulate(&scenario);
    if summary {
        write(out, output, &Summary::of(&state))?;
    } else {
        match output {
            Output::Yaml => write_state_yaml(out, &state)?,
            Output::Json => write_state_json(out, &state)?,
        }
    }
    // The process exits next: freeing a limits-scale state object by object would cost a
    // fifth of the run, for memory the OS reclaims anyway.
    std::mem::forget(state);
    std::mem::forget(scenario);
    Ok(EXIT_OK)
}

pub fn write<T: Serialize>(out: &mut dyn Write, output: Output, value: &T) -> anyhow::Result<()> {
    match output {
        Output::Yaml => yaml::to_writer(out, value)?,
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, value)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// Writes the state document as YAML, rendering its four large lists in parallel. The text is
/// byte-identical to `yaml::to_writer(&state)` (a test holds the two together), so the field
/// order here must follow `ClusterState`'s.
pub fn write_state_yaml(w: &mut dyn Write, s: &ClusterState) -> anyhow::Result<()> {
    yaml::write_root_entry(w, "name", &s.name)?;
    yaml::write_root_entry(w, "kubernetesVersion", &s.kubernetes_version)?;
    yaml::write_root_entry(w, "seed", &s.seed)?;
    yaml::write_root_entry(w, "components", &s.components)?;
    yaml::write_root_entry(w, "network", &s.network)?;
    yaml::write_root_entry(w, "capacity", &s.capacity)?;
    yaml::write_root_entry(w, "namespaces", &s.namespaces)?;
    yaml::write_root_seq_par(w, "nodes", &s.nodes.values().collect::<Vec<_>>())?;
    yaml::write_root_seq_par(w, "services", &s.services.values().collect::<Vec<_>>())?;
    yaml::write_root_seq_par(
        w,
        "endpointSlices",
        &s.endpoint_slices.values().collect::<Vec<_>>(),
    )?;
    yaml::write_root_seq_par(
        w,
        "pods",
        &s.pods.values().map(|p| &**p).collect::<Vec<_>>(),
    )?;
    if let Some(c) = &s.calico {
        yaml::write_root_entry(w, "calico", c)?;
    }
    yaml::write_root_entry(w, "events", &s.events)?;
    Ok(())
}

/// Writes the state document as pretty JSON, rendering its four large lists in parallel. The
/// text is byte-identical to `serde_json::to_writer_pretty(&state)` and a newline (a test
/// holds the two together), so the field order here must follow `ClusterState`'s.
pub fn write_state_json(w: &mut dyn Write, s: &ClusterState) -> anyhow::Result<()> {
    let mut root = json::Root::new(w);
    root.entry("name", &s.name)?;
    root.entry("kubernetesVersion", &s.kubernetes_version)?;
    root.entry("seed", &s.seed)?;
    root.entry("components", &s.components)?;
    root.entry("network", &s.network)?;
    root.entry("capacity", &s.capacity)?;
    root.entry("namespaces", &s.namespaces)?;
    root.seq_par("nodes", &s.nodes.values().collect::<Vec<_>>())?;
    root.seq_par("services", &s.services.values().collect::<Vec<_>>())?;
    root.seq_par(
        "endpointSlices",
        &s.endpoint_slices.values().collect::<Vec<_>>(),
    )?;
    root.seq_par("pods", &s.pods.values().map(|p| &**p).collect::<Vec<_>>())?;
    if let Some(c) = &s.calico {
        root.entry("calico", c)?;
    }
    root.entry("events", &s.events)?;
    root.end()?;
    w.write_all(b"\n")?;
    Ok(())
}

/// The state without its object lists: what a large cluster's run is read for.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary<'a> {
    name: &'a str,
    kubernetes_version: knetsim_model::KubeVersion,
    seed: u64,
    components: &'a std::collections::BTreeMap<String, knetsim_control::state::ComponentStatus>,
    network: &'a knetsim_control::state::NetworkConfig,
    capacity: &'a std::collections::BTreeMap<
        knetsim_ipam::Family,
        knetsim_control::state::FamilyCapacity,
    >,
    counts: Counts,
    events: &'a [knetsim_control::state::Event],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    namespaces: usize,
    nodes: usize,
    nodes_ready: usize,
    services: usize,
    services_dual_stack: usize,
    endpoint_slices: usize,
    endpoints: usize,
    pods: usize,
    pods_running: usize,
    pods_dual_stack: usize,
}

impl<'a> Summary<'a> {
    pub fn of(state: &'a ClusterState) -> Self {
        Summary {
            name: &state.name,
            kubernetes_version: state.kubernetes_version,
            seed: state.seed,
            components: &state.components,
            network: &state.network,
            capacity: &state.capacity,
            counts: Counts {
                namespaces: state.namespaces.len(),
                nodes: state.nodes.len(),
                nodes_ready: state.nodes.values().filter(|n| n.is_ready()).count(),
                services: state.services.len(),
                services_dual_stack: state
                    .services
                    .values()
                    .filter(|s| s.spec.cluster_ips.len() == 2)
                    .count(),
                endpoint_slices: state.endpoint_slices.len(),
                endpoints: state
                    .endpoint_slices
                    .values()
                    .map(|s| s.endpoints.len())
                    .sum(),
                pods: state.pods.len(),
                pods_running: state.pods.values().filter(|p| p.is_running()).count(),
                pods_dual_stack: state
                    .pods
                    .values()
                    .filter(|p| p.status.pod_ips.len() == 2)
                    .count(),
            },
            events: &state.events,
        }
    }
}
