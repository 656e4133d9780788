//! `knetsim test PATH...`: run scenarios' expectations.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// Scenario files under `paths`, sorted, skipping `bad/` and `manifests/` directories (the
/// bad-input corpus and files that scenarios include by `path:`).
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        let name = e.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if e.is_dir() {
            if name != "bad" && name != "manifests" {
                walk(&e, files)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push(e);
        }
    }
    Ok(())
}

pub fn test(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let files = collect(paths)?;
    let (mut passed, mut failed, mut invalid) = (0usize, 0usize, false);
    for file in &files {
        let scenario = match super::load(file, err) {
            Ok(s) => s,
            Err(_) => {
                writeln!(out, "INVALID {}", file.display())?;
                failed += 1;
                invalid = true;
                continue;
            }
        };
        let state = knetsim_control::simulate(&scenario);
        let mut outcomes = knetsim_control::expect::evaluate(&state, &scenario.expect);
        if let Err(code) = dataplane_outcomes(file, &scenario, &state, &mut outcomes, err) {
            writeln!(out, "INVALID {}", file.display())?;
            failed += 1;
            invalid = invalid || code == EXIT_INVALID;
            continue;
        }
        let bad: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
        if bad.is_empty() {
            writeln!(out, "PASS {} ({}, {} expectation{})", scenario.name, file.display(), outcomes.len(), if outcomes.len() == 1 { "" } else { "s" })?;
            passed += 1;
        } else {
            writeln!(out, "FAIL {} ({})", scenario.name, file.display())?;
            for o in bad {
                writeln!(
                    out,
                    "  {}:{}:{}: {}: {}",
                    file.display(),
                    o.span.line,
                    o.span.col,
                    o.what,
                    o.detail.as_deref().unwrap_or("failed")
                )?;
            }
            failed += 1;
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if invalid {
        EXIT_INVALID
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// Evaluates `trace:` and `reachability:` expectations (the dataplane is built only when a
/// scenario has some).
fn dataplane_outcomes(
    file: &Path,
    scenario: &knetsim_model::Scenario,
    state: &knetsim_control::ClusterState,
    outcomes: &mut Vec<knetsim_control::expect::Outcome>,
    err: &mut dyn Write,
) -> Result<(), i32> {
    use knetsim_model::scenario::Expectation;
    let nodes: Vec<&knetsim_model::yaml::Node> = scenario
        .expect
        .iter()
        .filter_map(|e| match &e.value {
            Expectation::Dataplane(n) => Some(n),
            _ => None,
        })
        .collect();
    if nodes.is_empty() {
        return Ok(());
    }
    let loaded = || knetsim_model::load_scenario(file, &knetsim_model::source::FsLoader).sources;
    let dp = match knetsim_dataplane::build(state, scenario) {
        Ok(dp) => dp,
        Err(diags) => {
            super::write_diagnostics(&loaded(), &diags, err);
            return Err(EXIT_INVALID);
        }
    };
    let mut diags = Vec::new();
    for n in nodes {
        match knetsim_dataplane::check_expectation(&dp, state, n) {
            Ok(results) => outcomes.extend(results.into_iter().map(|r| knetsim_control::expect::Outcome {
                what: r.name,
                passed: r.passed,
                detail: (!r.passed).then_some(r.message),
                span: r.span,
            })),
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        super::write_diagnostics(&loaded(), &diags, err);
        return Err(EXIT_INVALID);
    }
    Ok(())
}
