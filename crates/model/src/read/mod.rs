//! Reading scenario files and manifests into the model, collecting every diagnostic.
//!
//! - `mod.rs` (this file): [`load_scenario`], [`load_manifests`], the reading context (sources,
//!   diagnostics, the [`FileLoader`], `path:` resolution) and sub-spans of scalars.
//! - `render`: diagnostics to plain text with `annotate-snippets`.
//! - `flags`: each component's flag schema, `--flag=value` parsing like pflag, and the merge of a
//!   component's `key: value` map with its pasted `args:` list.
//! - `objects`: Kubernetes manifests, strict like `kubectl apply --validate=strict`.
//! - `scenario`: the scenario document (`cluster`, `nodes`, `steps`, `expect`, …).
//!
//! Reading never stops at the first problem: every reader reports what it finds and carries on
//! with what it could read, and [`Loaded::value`] is `Some` only when no error was found.

mod flags;
mod objects;
mod render;
mod scenario;

use std::collections::HashMap;
use std::path::{Component as PathComponent, Path, PathBuf};

pub(crate) use flags::flag_schema;
pub use flags::read_flag_edits;
pub(crate) use render::render_diagnostics;

use crate::diag::Diagnostic;
use crate::objects::Object;
use crate::scenario::Scenario;
use crate::source::{FileId, FileLoader, LoadError, SourceMap, Span};
use crate::yaml::{Node, NodeKind, parse_stream_within};

/// The outcome of loading: the model if there were no errors, every diagnostic, and the
/// sources they point into.
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: Option<T>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl<T> Loaded<T> {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics rendered as plain text.
    pub fn render(&self) -> String {
        render_diagnostics(&self.sources, &self.diagnostics)
    }
}

/// Loads a scenario file and every manifest file it references. `path` is used as written in
/// messages; `path:` references are resolved against the directory of the file naming them.
pub fn load_scenario(path: &Path, loader: &dyn FileLoader) -> Loaded<Scenario> {
    let mut cx = Ctx::new(loader);
    let value = match cx.load_file(path, None) {
        Some(file) => {
            let docs = cx.parse(file);
            scenario::read_scenario_docs(&mut cx, file, &docs)
        }
        None => None,
    };
    cx.finish(value)
}

/// Loads a bare manifest file (several `---` documents, `kind: List`), as `kubectl apply -f`
/// reads it.
pub fn load_manifests(path: &Path, loader: &dyn FileLoader) -> Loaded<Vec<Object>> {
    let mut cx = Ctx::new(loader);
    let value = match cx.load_file(path, None) {
        Some(file) => {
            let docs = cx.parse(file);
            let mut out = Vec::new();
            for doc in &docs {
                objects::read_document(&mut cx, doc, &mut out);
            }
            Some(out)
        }
        None => None,
    };
    cx.finish(value)
}

/// Parses scenario text held in memory (tests, and tools that generate scenarios). `name` is
/// the file name used in messages; `path:` references resolve against its directory.
pub fn load_scenario_str(name: &str, text: &str, loader: &dyn FileLoader) -> Loaded<Scenario> {
    let mut cx = Ctx::new(loader);
    let file = cx.sources.add(name, name, text.to_string());
    cx.by_path.insert(PathBuf::from(name), file);
    let docs = cx.parse(file);
    let value = scenario::read_scenario_docs(&mut cx, file, &docs);
    cx.finish(value)
}

/// Everything a reader needs: where diagnostics go, the files read so far, and how to read more.
pub(crate) struct Ctx<'l> {
    /// The scenario's `kubernetesVersion`, once read (`None` for bare manifest files), for the
    /// few reading rules that depend on it.
    pub version: Option<crate::KubeVersion>,
    pub sources: SourceMap,
    pub diags: Vec<Diagnostic>,
    loader: &'l dyn FileLoader,
    by_path: HashMap<PathBuf, FileId>,
    /// YAML nodes the scenario's files may still hold ([`crate::limits::MAX_YAML_NODES`]).
    yaml_budget: usize,
    /// Nodes read so far (`nodes:` and `addNodes:`), against [`crate::limits::MAX_NODES`].
    pub nodes_read: u64,
    /// Objects `generate:` entries made so far, against [`crate::limits::MAX_OBJECTS`].
    pub objects_generated: u64,
    /// Files whose bytes are not UTF-8 text (already reported): not parsed.
    unreadable: std::collections::HashSet<FileId>,
}

impl<'l> Ctx<'l> {
    fn new(loader: &'l dyn FileLoader) -> Self {
        Ctx {
            sources: SourceMap::new(),
            diags: Vec::new(),
            loader,
            by_path: HashMap::new(),
            version: None,
            yaml_budget: crate::limits::MAX_YAML_NODES,
            unreadable: Default::default(),
            nodes_read: 0,
            objects_generated: 0,
        }
    }

    fn finish<T>(mut self, value: Option<T>) -> Loaded<T> {
        let ok = !self.diags.iter().any(Diagnostic::is_error);
        // Readers report in the order they read (a map's unknown keys after its known ones);
        // users read top to bottom. Files are in the order they were loaded.
        self.diags
            .sort_by_key(|d| d.span.map(|s| (s.file, s.start, s.end)));
        Loaded {
            value: if ok { value } else { None },
            diagnostics: self.diags,
            sources: self.sources,
        }
    }

    /// Reads a file through the loader (once per path). `at` is the `path:` value naming it,
    /// where a read failure is reported; `None` for the top-level file.
    pub fn load_file(&mut self, path: &Path, at: Option<Span>) -> Option<FileId> {
        // The top-level file is named exactly as the user wrote it; included files by their
        // resolved path with `.` and `dir/..` folded away.
        let written = path.to_string_lossy().into_owned();
        let path = normalize(path);
        if let Some(&id) = self.by_path.get(&path) {
            return Some(id);
        }
        let name = match at {
            None => written,
            Some(_) => path.to_string_lossy().into_owned(),
        };
        match self.loader.load_bytes(&path) {
            Ok(bytes) => {
                let (text, problem) = decode(bytes);
                let id = self.sources.add(name, path.clone(), text);
                self.by_path.insert(path, id);
                if let Some((offset, message, label)) = problem {
                    let span = self.span_at(id, offset);
                    self.diags
                        .push(Diagnostic::error(span, message).with_label(label).with_help(
                            "knetsim reads YAML as UTF-8 text, as kubectl does; convert the file (e.g. `iconv -t UTF-8`)",
                        ));
                    // Nothing in the file is read: the parser would report what follows the
                    // bad byte in terms of replacement characters.
                    self.unreadable.insert(id);
                }
                Some(id)
            }
            Err(e) => {
                let (reason, label, help) = match e {
                    LoadError::Io(reason) => (
                        reason,
                        "this file cannot be read".to_string(),
                        "`path:` is relative to the directory of the file that names it"
                            .to_string(),
                    ),
                    LoadError::Outside { resolved, allowed } => (
                        format!(
                            "it is outside the directories this scenario may read ({})",
                            allowed
                                .iter()
                                .map(|p| format!("`{}`", p.display()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        format!("resolves to `{}`", resolved.display()),
                        "a scenario may only name files under its own directory (symbolic links resolved); widen it with `--allow-path DIR`"
                            .to_string(),
                    ),
                    LoadError::TooLarge { bytes } => (
                        format!(
                            "the file has {bytes} bytes, more than knetsim's cap of {} bytes per file",
                            crate::limits::MAX_FILE_BYTES
                        ),
                        "this file is too large".to_string(),
                        "generate large clusters with `count:` (nodes) and `generate:` (objects)"
                            .to_string(),
                    ),
                };
                let d = match at {
                    Some(span) => {
                        Diagnostic::error(span, format!("cannot read `{name}`: {reason}"))
                            .with_label(label)
                            .with_help(help)
                    }
                    None => Diagnostic::error_nowhere(format!("cannot read `{name}`: {reason}")),
                };
                self.diags.push(d);
                None
            }
        }
    }

    /// The span of the character at byte `offset` of a loaded file (one byte long), with its
    /// line and column.
    fn span_at(&self, file: FileId, offset: usize) -> Span {
        let text = &self.sources.get(file).text;
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Span {
            file,
            start: offset,
            end: (offset + 1).min(text.len()).max(offset),
            line: before.matches('\n').count() as u32 + 1,
            col: before[line_start..].chars().count() as u32 + 1,
        }
    }

    /// Resolves a `path:` written in `from` against that file's directory.
    pub fn resolve(&self, from: FileId, rel: &str) -> PathBuf {
        let base = self
            .sources
            .get(from)
            .path
            .parent()
            .unwrap_or(Path::new(""));
        base.join(rel)
    }

    /// Parses a loaded file into its YAML documents, reporting syntax errors.
    pub fn parse(&mut self, file: FileId) -> Vec<Node> {
        if self.unreadable.contains(&file) {
            return Vec::new();
        }
        let (docs, diags) =
            parse_stream_within(file, &self.sources.get(file).text, &mut self.yaml_budget);
        self.diags.extend(diags);
        docs
    }

    /// The span of bytes `range` of a scalar's text, when the text appears verbatim in the
    /// source (a one-line plain or quoted scalar without escapes); otherwise the whole node.
    /// Used to point at one entry of a comma-separated list.
    pub fn sub_span(&self, node: &Node, range: std::ops::Range<usize>) -> Span {
        let NodeKind::Scalar(s) = &node.kind else {
            return node.span;
        };
        let src = &self.sources.get(node.span.file).text;
        let Some(written) = src.get(node.span.start..node.span.end) else {
            return node.span;
        };
        let offset = if written == s.text {
            0
        } else if written.len() == s.text.len() + 2
            && written.get(1..written.len() - 1) == Some(&s.text)
        {
            1
        } else {
            return node.span;
        };
        if s.text.contains('\n') || range.end > s.text.len() {
            return node.span;
        }
        let col = node.span.col
            + offset as u32
            + s.text.get(..range.start).map_or(0, |p| p.chars().count()) as u32;
        Span {
            file: node.span.file,
            start: node.span.start + offset + range.start,
            end: node.span.start + offset + range.end,
            line: node.span.line,
            col,
        }
    }
}

/// Decodes a file's bytes as UTF-8. A UTF-8 byte-order mark is dropped (YAML allows it); a
/// UTF-16 or UTF-32 one, or bytes that are not UTF-8, give the text up to the problem (with
/// the rest replaced lossily, so the line can still be shown) and the byte offset, message
/// and label of the problem.
fn decode(bytes: Vec<u8>) -> (String, Option<(usize, String, String)>) {
    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
    let boms: [(&[u8], &str); 4] = [
        (b"\x00\x00\xFE\xFF", "UTF-32 (big-endian)"),
        (b"\xFF\xFE\x00\x00", "UTF-32 (little-endian)"),
        (b"\xFE\xFF", "UTF-16 (big-endian)"),
        (b"\xFF\xFE", "UTF-16 (little-endian)"),
    ];
    for (bom, encoding) in boms {
        if bytes.starts_with(bom) {
            return (
                String::new(),
                Some((
                    0,
                    format!("the file is {encoding} text, not UTF-8"),
                    format!("a {encoding} byte-order mark"),
                )),
            );
        }
    }
    let bytes = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let bad = bytes[offset];
            (
                String::from_utf8_lossy(&bytes).into_owned(),
                Some((
                    offset,
                    format!(
                        "the file is not UTF-8 text: byte 0x{bad:02X} at offset {offset} is not valid UTF-8"
                    ),
                    "not UTF-8".to_string(),
                )),
            )
        }
    }
}

/// Removes `.` components and folds `dir/..`, so that messages name files the way users would.
fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<PathComponent<'_>> = Vec::new();
    for c in path.components() {
        match c {
            PathComponent::CurDir => {}
            PathComponent::ParentDir => match out.last() {
                Some(PathComponent::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_relative_paths_lexically() {
        let cases = [
            (
                "scenarios/bad/./manifests/x.yaml",
                "scenarios/bad/manifests/x.yaml",
            ),
            ("scenarios/bad/../good/x.yaml", "scenarios/good/x.yaml"),
            ("../x.yaml", "../x.yaml"),
            ("a/b/../../c.yaml", "c.yaml"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }
}
