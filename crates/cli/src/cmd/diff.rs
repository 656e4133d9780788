//! `knetsim diff A B`, `diff FILE --version V1 --version V2`, `diff FILE --set c.flag=value`:
//! the semantic difference between two scenarios' states.
//!
//! Every input problem of both sides (and of every `--set`) is reported before anything
//! runs. The sides are simulated one after the other and only their snapshots are kept, so a
//! diff of two large clusters holds one cluster's state at a time.

use std::io::Write;
use std::path::PathBuf;

use knetsim_dataplane::ReachQuery;
use knetsim_model::flags::FlagEdit;
use knetsim_model::{KubeVersion, Scenario};
use knetsim_review::render::Labels;
use knetsim_review::{Options, Query};

use crate::cli::DiffOutput;
use crate::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

pub struct Args {
    pub before: PathBuf,
    pub after: Option<PathBuf>,
    pub versions: Vec<String>,
    pub sets: Vec<String>,
    pub rules: bool,
    pub extra: Option<ReachQuery>,
}

fn version(text: &str, err: &mut dyn Write) -> Option<KubeVersion> {
    match KubeVersion::parse(text) {
        Some(v) if v >= KubeVersion::OLDEST && v <= KubeVersion::NEWEST => Some(v),
        Some(v) => {
            let _ = writeln!(
                err,
                "error: --version {text}: Kubernetes {v} is not modelled (knetsim models {} to {})",
                KubeVersion::OLDEST,
                KubeVersion::NEWEST
            );
            None
        }
        None => {
            let _ = writeln!(
                err,
                "error: --version {text}: expected a version like 1.33, v1.33 or 1.33.2"
            );
            None
        }
    }
}

pub fn diff(
    args: Args,
    output: DiffOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let Args {
        before,
        after,
        versions,
        sets,
        rules,
        extra,
    } = args;
    if after.is_some() && (!versions.is_empty() || !sets.is_empty()) {
        writeln!(
            err,
            "error: compare two files, or one file with --version/--set, not both"
        )?;
        return Ok(EXIT_INVALID);
    }
    if after.is_none() && versions.is_empty() && sets.is_empty() {
        writeln!(
            err,
            "error: nothing to compare: give a second scenario, --version or --set"
        )?;
        return Ok(EXIT_INVALID);
    }
    if versions.len() > 2 {
        writeln!(
            err,
            "error: --version is given at most twice (before, after)"
        )?;
        return Ok(EXIT_INVALID);
    }
    // Every problem of every input, before anything runs.
    let mut ok = true;
    let a = super::load(&before, err);
    ok &= a.is_ok();
    let b = match &after {
        Some(p) => {
            let b = super::load(p, err);
            ok &= b.is_ok();
            b.ok()
        }
        None => None,
    };
    let versions: Vec<Option<KubeVersion>> = versions.iter().map(|v| version(v, err)).collect();
    ok &= versions.iter().all(Option::is_some);
    let edits = knetsim_model::read_flag_edits(&sets);
    super::write_diagnostics(&edits.sources, &edits.diagnostics, err);
    ok &= !edits.has_errors();
    let (Ok(a), true) = (a, ok) else {
        return Ok(EXIT_INVALID);
    };
    let edits: Vec<FlagEdit> = edits.value.unwrap_or_default();
    let versions: Vec<KubeVersion> = versions.into_iter().flatten().collect();

    let (first, second, labels) = sides(&before, a, b, after.as_ref(), &versions, &edits, &sets);
    let mut opts = Options {
        rules,
        form: None,
        extra: extra.into_iter().map(Query::Reach).collect(),
    };
    let (snap_a, state_a) = match super::snapshot::snapshot_of(&first.0, &first.1, &opts, err) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    // The first side is freed while the second is simulated: at most two states are held.
    let freeing = super::snapshot::release((first, state_a));
    // Both sides in the same form, the first side's, so that they compare fact by fact.
    opts.form = Some(snap_a.form);
    let (snap_b, state_b) = match super::snapshot::snapshot_of(&second.0, &second.1, &opts, err) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let _ = freeing.join();
    // The process exits next: the OS reclaims the state faster than freeing it would.
    std::mem::forget((second, state_b));
    let d = knetsim_review::diff(&snap_a, &snap_b);
    let text = match output {
        DiffOutput::Text => knetsim_review::render::text(&d, &labels),
        DiffOutput::Json => knetsim_review::render::json(&d, &labels),
        DiffOutput::Markdown => knetsim_review::render::markdown(&d, &labels),
    };
    out.write_all(text.as_bytes())?;
    Ok(if d.is_empty() { EXIT_OK } else { EXIT_FAILED })
}

/// The two scenarios to compare and what to call them.
#[allow(clippy::type_complexity)]
fn sides(
    before: &std::path::Path,
    a: Scenario,
    b: Option<Scenario>,
    after: Option<&PathBuf>,
    versions: &[KubeVersion],
    edits: &[FlagEdit],
    sets: &[String],
) -> ((PathBuf, Scenario), (PathBuf, Scenario), Labels) {
    let name = |s: &Scenario, p: &std::path::Path| {
        format!("{} ({}, Kubernetes {})", p.display(), s.name, s.version)
    };
    if let (Some(b), Some(bp)) = (b, after) {
        let labels = Labels {
            before: name(&a, before),
            after: name(&b, bp),
        };
        return ((before.to_path_buf(), a), (bp.clone(), b), labels);
    }
    let mut first = a.clone();
    let mut second = a;
    match versions {
        [v] => second.version = *v,
        [v1, v2] => {
            first.version = *v1;
            second.version = *v2;
        }
        _ => {}
    }
    for e in edits {
        e.apply(&mut second.cluster);
    }
    let mut after_label = name(&second, before);
    if !sets.is_empty() {
        after_label.push_str(&format!(" with --set {}", sets.join(" --set ")));
    }
    let labels = Labels {
        before: name(&first, before),
        after: after_label,
    };
    (
        (before.to_path_buf(), first),
        (before.to_path_buf(), second),
        labels,
    )
}
