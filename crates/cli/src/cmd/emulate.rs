//! `knetsim emulate`: a thin front over the knetsim-emulate crate (which alone touches the
//! kernel): load and simulate the scenario, run the emulation, print the report.

use std::io::Write;
use std::path::Path;

use crate::cli::TextOrJson;
use crate::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

pub fn emulate(
    file: Option<&Path>,
    keep: bool,
    clean: bool,
    matrix: Option<knetsim_dataplane::ReachQuery>,
    output: TextOrJson,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if clean {
        match knetsim_emulate::clean() {
            Ok(removed) => writeln!(
                err,
                "removed {} leftover(s) of earlier runs (namespaces, host-local state){}{}",
                removed.len(),
                if removed.is_empty() { "" } else { ": " },
                removed.join(" ")
            )?,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(EXIT_INVALID);
            }
        }
    }
    let Some(file) = file else {
        return Ok(EXIT_OK);
    };
    // Checked before the scenario is simulated, so that a machine that cannot emulate says
    // so at once.
    if let Err(e) = knetsim_emulate::check_host(None) {
        writeln!(err, "error: {e}")?;
        return Ok(EXIT_INVALID);
    }
    let (input, state, dp) = match super::dataplane::build_input(file, err) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    // The matrix's cells, expanded as `knetsim reach` expands them (and refused with its
    // messages) before anything is built.
    let extra = match &matrix {
        Some(q) => match knetsim_dataplane::reach::cell_queries(&dp, q) {
            Ok(cells) => cells,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(EXIT_INVALID);
            }
        },
        None => Vec::new(),
    };
    let opts = knetsim_emulate::Options {
        keep,
        extra,
        ..Default::default()
    };
    let report = match knetsim_emulate::emulate(&dp, &state, &input.scenario, &opts) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_INVALID);
        }
    };
    for s in &report.skipped {
        writeln!(err, "skipped: {s}")?;
    }
    let n = report.probes.len().max(1) as f64;
    writeln!(
        err,
        "{} namespaces built in {:.2} s; {} probes in {:.2} s ({:.0} probes/s); torn down in {:.2} s",
        report.namespaces,
        report.build_seconds,
        report.probes.len(),
        report.probe_seconds,
        n / report.probe_seconds.max(1e-9),
        report.teardown_seconds
    )?;
    if report.cni_plugins {
        writeln!(
            err,
            "pods wired by the real CNI plugins (ptp + host-local from /usr/lib/cni); each node's \
             routes compared with knetsim's"
        )?;
    }
    if report.kept {
        writeln!(
            err,
            "kept: the namespaces are named {p}* (ip netns list | grep {p}); enter one with \
             `ip netns exec {p}n0 bash`, remove them with `knetsim emulate --clean` once this \
             process is gone, or `ip netns del NAME`",
            p = report.prefix
        )?;
    }
    match output {
        TextOrJson::Text => out.write_all(report.text().as_bytes())?,
        TextOrJson::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(if report.disagree == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}
