//! What the fuzz targets share: the input format for multi-file scenarios, an in-memory
//! [`FileLoader`], the checks every reader's diagnostics must pass, and the size guard of the
//! pipeline target.
//!
//! Each target includes this file with `mod common;`; it is not a library of its own because a
//! library depending on `libfuzzer-sys` would pull libFuzzer's `main` into test builds.

#![allow(dead_code)] // Not every target uses every helper.

use std::collections::BTreeMap;
use std::path::Path;

use knetsim_model::{Diagnostic, FileLoader, SourceMap};

/// The line that starts an extra file in a scenario input: `#@file NAME` (a YAML comment, so a
/// plain scenario file is a valid input as it is, and the corpus can be real scenario files).
pub const FILE_MARKER: &str = "\n#@file ";

/// Splits an input into the scenario text and the files its `path:` entries may name.
pub fn split_files(text: &str) -> (&str, BTreeMap<String, &str>) {
    let mut files = BTreeMap::new();
    let mut parts = text.split(FILE_MARKER);
    let main = parts.next().unwrap_or_default();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        files.entry(name.trim().to_string()).or_insert(body);
    }
    (main, files)
}

/// A [`FileLoader`] over the files of one input. A path is found by its exact text or, failing
/// that, by its last component, so that a seed taken from `scenarios/kind/x.yaml` that names
/// `../manifests/myapp.yaml` finds the file bundled as `myapp.yaml`; a name it does not hold is
/// the loader's "No such file" error, as on disk.
pub struct MemLoader<'a> {
    pub files: BTreeMap<String, &'a str>,
}

impl FileLoader for MemLoader<'_> {
    fn load(&self, path: &Path) -> Result<String, String> {
        let exact = path.to_string_lossy();
        if let Some(text) = self.files.get(exact.as_ref()) {
            return Ok((*text).to_string());
        }
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.files.get(&base) {
            Some(text) => Ok((*text).to_string()),
            None => Err("No such file or directory (os error 2)".to_string()),
        }
    }
}

/// Renders the diagnostics (where the dataplane's warnings panicked in issue 15) and checks
/// what every reader promises: each error is located in a file of the source map, inside its
/// text, on a character boundary, with a 1-based line and column.
pub fn check_diagnostics(sources: &SourceMap, diags: &[Diagnostic]) {
    let files = sources.files().count();
    for d in diags {
        let Some(span) = d.span else {
            assert!(!d.is_error(), "error without a location: {:?}", d.message);
            continue;
        };
        assert!(
            (span.file.0 as usize) < files,
            "diagnostic points at file {} of {files}: {:?}",
            span.file.0,
            d.message
        );
        let text = &sources.get(span.file).text;
        assert!(
            span.start <= span.end && span.end <= text.len(),
            "span {}..{} outside a {}-byte file: {:?}",
            span.start,
            span.end,
            text.len(),
            d.message
        );
        assert!(
            text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
            "span {}..{} splits a character: {:?}",
            span.start,
            span.end,
            d.message
        );
        assert!(
            span.line >= 1 && span.col >= 1,
            "line/column 0: {:?}",
            d.message
        );
    }
    let rendered = knetsim_model::diag::render(sources, diags);
    assert!(diags.is_empty() || !rendered.is_empty());
}

/// The caps of the pipeline target, far below knetsim's own: the target looks for crashes on
/// small clusters, and a legitimate large one would only make it slow.
pub const MAX_NODES: usize = 32;
pub const MAX_OBJECTS: usize = 128;
pub const MAX_PODS: i64 = 128;
pub const MAX_INPUT: usize = 16 * 1024;

/// Refuses, before reading, an input that may expand to a large cluster: any number of five
/// or more digits (a `count:`, `replicas:` or `generate` count of 10,000 or more) and
/// hexadecimal or octal numbers (`0x186A0`), which YAML also reads as integers. IPs, CIDRs,
/// ports below 10,000 and small counts still pass; what they expand to is capped after
/// loading by [`small_scenario`]. Until knetsim enforces caps of its own (issue 15), this is
/// what keeps the target from timing out on inputs that are merely large.
pub fn small_text(text: &str) -> bool {
    if text.len() > MAX_INPUT {
        return false;
    }
    let b = text.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 5 {
                return false;
            }
            if c == b'0' && run == 1 && matches!(b.get(i + 1), Some(b'x' | b'X' | b'o' | b'O')) {
                return false;
            }
        } else if c != b'_' {
            // `1_000_000` is a YAML 1.1 integer: underscores do not end a number.
            run = 0;
        }
    }
    true
}

/// Caps what a loaded scenario asks the simulator to build: nodes, objects, and pods from
/// replicas, over the scenario and all its steps.
pub fn small_scenario(s: &knetsim_model::Scenario) -> bool {
    use knetsim_model::objects::Object;
    use knetsim_model::scenario::Step;
    let mut nodes = s.nodes.len();
    let mut objects = s.manifests.len();
    let mut pods: i64 = 0;
    let replicas = |objs: &[Object]| -> i64 {
        objs.iter()
            .map(|o| match o {
                Object::Workload(w) => w.replicas.as_ref().map_or(1, |r| r.value.max(0)),
                _ => 0,
            })
            .fold(0i64, i64::saturating_add)
    };
    pods = pods.saturating_add(replicas(&s.manifests));
    for step in &s.steps {
        match &step.value {
            Step::Apply(objs) => {
                objects += objs.len();
                pods = pods.saturating_add(replicas(objs));
            }
            Step::AddNodes(n) => nodes += n.len(),
            Step::Scale { replicas, .. } => pods = pods.saturating_add(replicas.value.max(0)),
            Step::Delete(_) | Step::RemoveNodes(_) | Step::Configure(_) => {}
        }
    }
    nodes <= MAX_NODES && objects <= MAX_OBJECTS && pods <= MAX_PODS
}
