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
use crate::source::{FileId, FileLoader, SourceMap, Span};
use crate::yaml::{Node, NodeKind, parse_stream};

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
}

impl<'l> Ctx<'l> {
    fn new(loader: &'l dyn FileLoader) -> Self {
        Ctx {
            sources: SourceMap::new(),
            diags: Vec::new(),
            loader,
            by_path: HashMap::new(),
            version: None,
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
        match self.loader.load(&path) {
            Ok(text) => {
                let id = self.sources.add(name, path.clone(), text);
                self.by_path.insert(path, id);
                Some(id)
            }
            Err(reason) => {
                let d = match at {
                    Some(span) => {
                        Diagnostic::error(span, format!("cannot read `{name}`: {reason}"))
                            .with_label("this file cannot be read")
                            .with_help(
                                "`path:` is relative to the directory of the file that names it",
                            )
                    }
                    None => Diagnostic::error_nowhere(format!("cannot read `{name}`: {reason}")),
                };
                self.diags.push(d);
                None
            }
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
        let (docs, diags) = parse_stream(file, &self.sources.get(file).text);
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
