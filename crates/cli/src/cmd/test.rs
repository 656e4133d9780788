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
        let outcomes = knetsim_control::expect::evaluate(&state, &scenario.expect);
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
