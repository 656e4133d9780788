//! `knetsim snapshot PATH... [--update] [--dir DIR] [--rules]`: regression snapshots of the
//! scenarios' routing and allocation state.
//!
//! A scenario's snapshot lives beside it, in `__knetsim__/NAME.snap` (or in `--dir`). Without
//! `--update` the state is compared with it, semantically: a change prints the grouped diff
//! and fails (exit 1), and the new snapshot is left as `NAME.snap.new` for review (unless `CI`
//! is set, where nothing is written). A missing snapshot is written as `NAME.snap.new` and
//! fails only when `CI` is set, as insta does. A stored snapshot that cannot be read (not
//! YAML, another format version) is a located error, exit 2, and is left as it is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use knetsim_control::ClusterState;
use knetsim_model::{Scenario, SourceMap};
use knetsim_review::render::Labels;
use knetsim_review::{Options, Snapshot};

use crate::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// Whether `CI` says this is a CI run (set, non-empty, and not `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Simulates a loaded scenario and builds its snapshot; `Err(exit status)` after printing
/// why not (diagnostics point into the scenario's files, read again). The state comes back
/// too, for the caller to free as it sees fit (see [`release`]).
pub fn snapshot_of(
    file: &Path,
    scenario: &Scenario,
    opts: &Options,
    err: &mut dyn Write,
) -> Result<(Snapshot, Arc<ClusterState>), i32> {
    let state = Arc::new(knetsim_control::simulate(scenario));
    match knetsim_review::build(scenario, state.clone(), opts) {
        // The dataplane's warnings (`built.warnings`) are the loading pass's, reported when
        // the scenario was loaded.
        Ok(built) => Ok((built.snapshot, state)),
        Err(diags) => {
            // Re-read (confined, as when it was loaded) for the sources the errors point into.
            let loader = super::load::Confined::for_file(file);
            let sources = knetsim_model::load_scenario(file, &loader).sources;
            super::write_diagnostics(&sources, &diags, err);
            Err(EXIT_INVALID)
        }
    }
}

/// Frees a state (and its scenario) on a thread of its own: freeing a limits-scale state object by object costs
/// a fifth of its simulation, and the next scenario can be simulated meanwhile. The caller
/// joins the handle before releasing another, so that at most two states are held at once.
pub fn release<T: Send + 'static>(state: T) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || drop(state))
}

/// Where a scenario's snapshot is kept.
fn snap_path(file: &Path, dir: Option<&Path>) -> PathBuf {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario");
    let name = format!("{stem}.snap");
    match dir {
        Some(d) => d.join(name),
        None => file
            .parent()
            .unwrap_or(Path::new(""))
            .join("__knetsim__")
            .join(name),
    }
}

fn pending(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".new");
    PathBuf::from(s)
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Reads a stored snapshot; `Err` after printing its located problems.
fn read_stored(path: &Path, text: String, err: &mut dyn Write) -> Result<Snapshot, ()> {
    let mut sources = SourceMap::new();
    let id = sources.add(path.display().to_string(), path, text);
    let text = &sources.get(id).text;
    knetsim_review::parse(id, text).map_err(|diags| {
        super::write_diagnostics(&sources, &diags, err);
    })
}

pub fn snapshot(
    paths: &[PathBuf],
    update: bool,
    dir: Option<&Path>,
    rules: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let files = super::test::collect(paths)?;
    let ci = in_ci();
    let opts = Options {
        rules,
        ..Options::default()
    };
    // Two scenarios must not share a snapshot file (`--dir` with equal file names).
    let mut owners: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for f in &files {
        if let Some(other) = owners.insert(snap_path(f, dir), f) {
            writeln!(
                err,
                "error: {} and {} would share the snapshot {}; keep them in separate directories or drop --dir",
                other.display(),
                f.display(),
                snap_path(f, dir).display()
            )?;
            return Ok(EXIT_INVALID);
        }
    }
    let (mut matched, mut changed, mut new, mut written, mut unchanged, mut invalid) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut missing_in_ci = false;
    let mut freeing: Option<std::thread::JoinHandle<()>> = None;
    let mut last: Option<(Scenario, Arc<ClusterState>)> = None;
    for file in &files {
        let loaded = super::load(file, err).and_then(|scenario| {
            let (snap, state) = snapshot_of(file, &scenario, &opts, err)?;
            Ok((snap, scenario, state))
        });
        let snap = match loaded {
            Ok((snap, scenario, state)) => {
                if let Some(prev) = last.replace((scenario, state)) {
                    if let Some(h) = freeing.take() {
                        let _ = h.join();
                    }
                    freeing = Some(release(prev));
                }
                snap
            }
            Err(_) => {
                writeln!(out, "INVALID {}", file.display())?;
                invalid += 1;
                continue;
            }
        };
        let text = knetsim_review::write(&snap);
        let path = snap_path(file, dir);
        let stored_text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let stored = match stored_text {
            Some(t) => match read_stored(&path, t, err) {
                Ok(s) => Some(s),
                Err(()) if update => {
                    writeln!(
                        err,
                        "note: {} could not be read (above); --update replaces it",
                        path.display()
                    )?;
                    None
                }
                Err(()) => {
                    writeln!(
                        out,
                        "INVALID {} (its snapshot {} cannot be read; fix it, or replace it with --update)",
                        file.display(),
                        path.display()
                    )?;
                    invalid += 1;
                    continue;
                }
            },
            None => None,
        };
        let new_path = pending(&path);
        if update {
            let same = stored
                .as_ref()
                .is_some_and(|s| knetsim_review::diff(s, &snap).is_empty())
                && std::fs::read_to_string(&path).is_ok_and(|t| t == text);
            if same {
                writeln!(out, "UNCHANGED {} ({})", snap.scenario, path.display())?;
                unchanged += 1;
            } else {
                write_file(&path, &text)?;
                writeln!(out, "WRITTEN {} ({})", snap.scenario, path.display())?;
                written += 1;
            }
            if new_path.exists() {
                std::fs::remove_file(&new_path)?;
            }
            continue;
        }
        match stored {
            Some(s) => {
                let d = knetsim_review::diff(&s, &snap);
                if d.is_empty() {
                    writeln!(out, "MATCH {} ({})", snap.scenario, path.display())?;
                    matched += 1;
                    if new_path.exists() {
                        std::fs::remove_file(&new_path)?;
                    }
                } else {
                    changed += 1;
                    writeln!(out, "CHANGED {} ({})", snap.scenario, path.display())?;
                    let labels = Labels {
                        before: format!("{} (stored)", path.display()),
                        after: format!("{} (now)", file.display()),
                    };
                    for line in knetsim_review::render::text(&d, &labels).lines() {
                        if line.is_empty() {
                            writeln!(out)?;
                        } else {
                            writeln!(out, "  {line}")?;
                        }
                    }
                    if !ci {
                        write_file(&new_path, &text)?;
                        writeln!(
                            out,
                            "  the new snapshot is in {}; accept it with --update",
                            new_path.display()
                        )?;
                    }
                }
            }
            None if ci => {
                writeln!(
                    out,
                    "MISSING {} ({}; CI is set, so nothing was written)",
                    snap.scenario,
                    path.display()
                )?;
                missing_in_ci = true;
                new += 1;
            }
            None => {
                write_file(&new_path, &text)?;
                writeln!(
                    out,
                    "NEW {} ({} written; accept it with --update)",
                    snap.scenario,
                    new_path.display()
                )?;
                new += 1;
            }
        }
    }
    if let Some(h) = freeing {
        let _ = h.join();
    }
    // The process exits next: the OS reclaims the last state faster than freeing it would.
    std::mem::forget(last);
    if update {
        writeln!(
            out,
            "{written} written, {unchanged} unchanged, {invalid} invalid"
        )?;
    } else {
        writeln!(
            out,
            "{matched} matched, {changed} changed, {new} new, {invalid} invalid"
        )?;
    }
    Ok(if invalid > 0 {
        EXIT_INVALID
    } else if changed > 0 || missing_in_ci {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
