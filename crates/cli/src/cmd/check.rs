//! `knetsim check FILE...`: validate scenarios or manifest files.

use std::io::Write;
use std::path::Path;

use knetsim_model::Diagnostic;

use crate::{EXIT_INVALID, EXIT_OK};

pub fn check(
    files: &[std::path::PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut code = EXIT_OK;
    for file in files {
        let c = if looks_like_manifest(file) {
            check_manifest(file, out, err)?
        } else {
            check_scenario(file, out, err)?
        };
        code = code.max(c);
    }
    Ok(code)
}

/// A file whose first document starts with `apiVersion:` or `kind:` is a manifest.
fn looks_like_manifest(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#') && *l != "---")
        .is_some_and(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"))
}

fn check_manifest(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let loaded = knetsim_model::load_manifests(file, &super::load::Confined::for_file(file));
    super::write_diagnostics(&loaded.sources, &loaded.diagnostics, err);
    if loaded.diagnostics.iter().any(Diagnostic::is_error) {
        return Ok(EXIT_INVALID);
    }
    let n = loaded.value.map_or(0, |v| v.len());
    writeln!(
        out,
        "ok: {} ({n} object{})",
        file.display(),
        if n == 1 { "" } else { "s" }
    )?;
    Ok(EXIT_OK)
}

fn check_scenario(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let scenario = match super::load(file, err) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    writeln!(
        out,
        "ok: {} (Kubernetes {}, {} node{}, {} manifest object{}, {} step{}, {} expectation{})",
        file.display(),
        scenario.version,
        scenario.nodes.len(),
        plural(scenario.nodes.len()),
        scenario.manifests.len(),
        plural(scenario.manifests.len()),
        scenario.steps.len(),
        plural(scenario.steps.len()),
        scenario.expect.len(),
        plural(scenario.expect.len()),
    )?;
    // The flag checks are cheap and are what `check` users most want to know: say which
    // components would refuse to start. This is not an error in the scenario.
    let cp = knetsim_control::components::configure(scenario.version, &scenario.cluster);
    for (name, status) in &cp.statuses {
        if let Some(msg) = status.message.as_deref().filter(|_| !status.started) {
            writeln!(out, "note: {name} would not start: {msg}")?;
        }
    }
    Ok(EXIT_OK)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
