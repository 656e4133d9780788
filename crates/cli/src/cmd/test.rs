//! `knetsim test PATH... [--junit FILE]`: run scenarios' expectations.
//!
//! A line per scenario (PASS, FAIL with a located line per failed expectation, or INVALID
//! after its diagnostics) and a total. With `--junit FILE` the same results are also written
//! as JUnit XML ([`crate::render::junit`]); in a GitHub Actions job each failed expectation is
//! also printed as a workflow command, an annotation at its line ([`crate::render::github`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::render::{github, junit};
use crate::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// Scenario files under `paths`, sorted, skipping `bad/`, `failing/` and `manifests/`
/// directories (the bad-input corpus, scenarios whose expectations fail on purpose, and files
/// that scenarios include by `path:`).
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
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        let name = e.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if e.is_dir() {
            if name != "bad" && name != "failing" && name != "manifests" {
                walk(&e, files)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            files.push(e);
        }
    }
    Ok(())
}

pub fn test(
    paths: &[PathBuf],
    junit_file: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let files = collect(paths)?;
    let (mut passed, mut failed, mut invalid) = (0usize, 0usize, false);
    let mut suites = Vec::new();
    for file in &files {
        let shown = file.display().to_string();
        // Diagnostics go to `err` as they always do, and into the JUnit report.
        let mut diags = Vec::new();
        let loaded = super::load::load_input(file, &mut diags);
        err.write_all(&diags)?;
        let input = match loaded {
            Ok(i) => i,
            Err(_) => {
                writeln!(out, "INVALID {shown}")?;
                failed += 1;
                invalid = true;
                suites.push(invalid_suite(&shown, &shown, &diags));
                continue;
            }
        };
        let scenario = &input.scenario;
        let state = knetsim_control::simulate(scenario);
        let mut outcomes = knetsim_control::expect::evaluate(&state, &scenario.expect);
        let mut diags = Vec::new();
        let dataplane = dataplane_outcomes(&input, &state, &mut outcomes, &mut diags);
        err.write_all(&diags)?;
        if let Err(code) = dataplane {
            writeln!(out, "INVALID {shown}")?;
            failed += 1;
            invalid = invalid || code == EXIT_INVALID;
            suites.push(invalid_suite(&scenario.name, &shown, &diags));
            continue;
        }
        let bad: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
        if bad.is_empty() {
            writeln!(
                out,
                "PASS {} ({shown}, {} expectation{})",
                scenario.name,
                outcomes.len(),
                if outcomes.len() == 1 { "" } else { "s" }
            )?;
            passed += 1;
        } else {
            writeln!(out, "FAIL {} ({shown})", scenario.name)?;
            for o in &bad {
                writeln!(out, "  {}", located(&shown, o))?;
            }
            if crate::github_actions() {
                for o in &bad {
                    let message = format!("{}: {}", o.what, reason(o));
                    let at = Some((shown.as_str(), o.span.line, o.span.col));
                    out.write_all(github::command("error", at, &message).as_bytes())?;
                }
            }
            failed += 1;
        }
        suites.push(junit::Suite {
            name: scenario.name.clone(),
            file: shown.clone(),
            cases: outcomes
                .iter()
                .map(|o| junit::Case {
                    name: o.what.clone(),
                    line: Some(o.span.line),
                    result: if o.passed {
                        junit::CaseResult::Passed
                    } else {
                        junit::CaseResult::Failed {
                            message: reason(o).to_string(),
                            text: located(&shown, o),
                        }
                    },
                })
                .collect(),
        });
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    if let Some(path) = junit_file {
        std::fs::write(path, junit::render(&suites))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if invalid {
        EXIT_INVALID
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// Why an expectation failed.
fn reason(o: &knetsim_control::expect::Outcome) -> &str {
    o.detail.as_deref().unwrap_or("failed")
}

/// `file:line:col: what: reason`, the line `knetsim test` prints for a failed expectation.
fn located(file: &str, o: &knetsim_control::expect::Outcome) -> String {
    format!(
        "{file}:{}:{}: {}: {}",
        o.span.line,
        o.span.col,
        o.what,
        reason(o)
    )
}

/// The JUnit suite of a scenario that cannot be run: one case in error, with its diagnostics
/// (without the workflow commands printed beside them in a GitHub Actions job).
fn invalid_suite(name: &str, file: &str, diags: &[u8]) -> junit::Suite {
    let text: String = String::from_utf8_lossy(diags)
        .lines()
        .filter(|l| !(l.starts_with("::error") || l.starts_with("::warning")))
        .map(|l| format!("{l}\n"))
        .collect();
    junit::Suite {
        name: name.to_string(),
        file: file.to_string(),
        cases: vec![junit::Case {
            name: "the scenario is valid".into(),
            line: None,
            result: junit::CaseResult::Error {
                message: "invalid scenario (exit status 2)".into(),
                text,
            },
        }],
    }
}

/// Evaluates `trace:` and `reachability:` expectations (the dataplane is built only when a
/// scenario has some).
fn dataplane_outcomes(
    input: &super::load::Input,
    state: &knetsim_control::ClusterState,
    outcomes: &mut Vec<knetsim_control::expect::Outcome>,
    err: &mut dyn Write,
) -> Result<(), i32> {
    let scenario = &input.scenario;
    let nodes = scenario.dataplane_expectations();
    if nodes.is_empty() {
        return Ok(());
    }
    let dp = match knetsim_dataplane::build(state, scenario) {
        Ok(dp) => dp,
        Err(diags) => {
            super::write_diagnostics(&input.sources, &diags, err);
            return Err(EXIT_INVALID);
        }
    };
    let mut diags = Vec::new();
    for n in nodes {
        match knetsim_dataplane::check_expectation(&dp, state, n) {
            Ok(results) => {
                outcomes.extend(
                    results
                        .into_iter()
                        .map(|r| knetsim_control::expect::Outcome {
                            what: r.name,
                            passed: r.passed,
                            detail: (!r.passed).then_some(r.message),
                            span: r.span,
                        }),
                )
            }
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        super::write_diagnostics(&input.sources, &diags, err);
        return Err(EXIT_INVALID);
    }
    Ok(())
}
