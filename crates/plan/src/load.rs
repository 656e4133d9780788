//! Reading what `knetsim plan FILE` is given: a scenario, a scenario with no `name:`, or a
//! `cluster:` section alone (a file whose top-level keys are `kube-apiserver`,
//! `kube-controller-manager`, `kubelet`, `kube-proxy`, `kube-scheduler`, `cni`,
//! `ip-masq-agent`, `sysctl`).
//!
//! The last two are read as the scenario they stand for, named after the file: the text is
//! given to the model's reader with the missing `name:` appended (which moves nothing), or
//! nested under `cluster:` (which moves every line two columns right and two lines down).
//! Diagnostics are then moved back onto the file as the user wrote it, and the source map holds
//! the original text, so messages point at what is in the file.

use std::path::Path;

use knetsim_model::flags::Component;
use knetsim_model::scenario::Scenario;
use knetsim_model::yaml::parse_stream;
use knetsim_model::{
    Diagnostic, FileId, FileLoader, Loaded, SourceMap, Span, load_scenario, load_scenario_str,
};

/// Keys a `cluster:` section may hold.
fn is_cluster_key(k: &str) -> bool {
    Component::from_name(k).is_some() || matches!(k, "cni" | "ip-masq-agent" | "sysctl")
}

/// The form of a file, judged by its first document's top-level keys.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Scenario,
    /// Scenario keys, but no `name:`.
    Nameless,
    /// Nothing but `cluster:` keys.
    ClusterSection,
}

fn form(text: &str) -> Form {
    let (docs, diags) = parse_stream(FileId(0), text);
    if !diags.is_empty() || docs.len() != 1 {
        return Form::Scenario;
    }
    // Appending or indenting text is only safe for a block map at the left margin.
    let Some(entries) = docs[0].as_map() else {
        return Form::Scenario;
    };
    if entries.is_empty() || entries.iter().any(|(k, _)| k.span.col != 1) {
        return Form::Scenario;
    }
    let keys: Vec<&str> = entries
        .iter()
        .filter_map(|(k, _)| k.scalar_text())
        .collect();
    if keys.len() == entries.len() && keys.iter().all(|k| is_cluster_key(k)) {
        Form::ClusterSection
    } else if !keys.contains(&"name") && keys.contains(&"cluster") {
        Form::Nameless
    } else {
        Form::Scenario
    }
}

/// Loads `path` as a scenario, a scenario without `name:`, or a `cluster:` section alone.
pub fn load_input(path: &Path, loader: &dyn FileLoader) -> Loaded<Scenario> {
    let Ok(text) = loader.load(path) else {
        // Let the model's reader report the error the way it reports it for `run`.
        return load_scenario(path, loader);
    };
    let name = path.to_string_lossy().into_owned();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".to_string());
    match form(&text) {
        Form::Scenario => load_scenario(path, loader),
        Form::Nameless => {
            let mut synthetic = text.clone();
            if !synthetic.ends_with('\n') {
                synthetic.push('\n');
            }
            synthetic.push_str(&format!("name: {}\n", quote(&stem)));
            let loaded = load_scenario_str(&name, &synthetic, loader);
            // Nothing the user wrote moved; only the source text goes back to theirs.
            restore(loaded, &name, &text, |s| s)
        }
        Form::ClusterSection => {
            let header = format!("name: {}\ncluster:\n", quote(&stem));
            let mut synthetic = header.clone();
            for line in text.split_inclusive('\n') {
                synthetic.push_str("  ");
                synthetic.push_str(line);
            }
            let loaded = load_scenario_str(&name, &synthetic, loader);
            let starts: Vec<usize> = std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect();
            let header_len = header.len();
            restore(loaded, &name, &text, move |s: Span| {
                unshift(s, header_len, &starts)
            })
        }
    }
}

/// A YAML double-quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Where a span of the indented text lies in the original: original line `i` starts at
/// `header_len + starts[i] + 2 * (i + 1)` in the indented text.
fn unshift(s: Span, header_len: usize, starts: &[usize]) -> Span {
    let map = |offset: usize| -> usize {
        if offset < header_len {
            return 0;
        }
        let mut line = 0;
        for (i, start) in starts.iter().enumerate() {
            if header_len + start + 2 * (i + 1) - 2 <= offset {
                line = i;
            } else {
                break;
            }
        }
        let synthetic_start = header_len + starts[line] + 2 * (line + 1);
        starts[line] + offset.saturating_sub(synthetic_start)
    };
    let start = map(s.start);
    let end = map(s.end).max(start);
    let header_lines = 2;
    Span {
        file: s.file,
        start,
        end,
        line: s.line.saturating_sub(header_lines).max(1),
        col: s.col.saturating_sub(2).max(1),
    }
}

/// The loaded scenario with diagnostics on the top-level file moved by `shift` and the
/// original text in the source map (every other file read is kept as it was). Spans inside the
/// scenario's `cluster:` still point into the synthetic text; nothing reports on them (the
/// components' messages are Kubernetes' own, without positions).
fn restore(
    loaded: Loaded<Scenario>,
    name: &str,
    original: &str,
    shift: impl Fn(Span) -> Span,
) -> Loaded<Scenario> {
    let mut sources = SourceMap::new();
    for (id, f) in loaded.sources.files() {
        if id == FileId(0) {
            sources.add(name, f.path.clone(), original.to_string());
        } else {
            sources.add(f.name.clone(), f.path.clone(), f.text.clone());
        }
    }
    let diagnostics: Vec<Diagnostic> = loaded
        .diagnostics
        .into_iter()
        .map(|mut d| {
            if let Some(s) = d.span.filter(|s| s.file == FileId(0)) {
                d.span = Some(shift(s));
            }
            d
        })
        .collect();
    Loaded {
        value: loaded.value,
        diagnostics,
        sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_their_top_level_keys() {
        let cases: &[(&str, Form)] = &[
            ("name: x\ncluster: {}\n", Form::Scenario),
            ("cluster:\n  kubelet: {}\n", Form::Nameless),
            (
                "kube-apiserver:\n  service-cluster-ip-range: 10.96.0.0/16\ncni: {plugin: calico}\n",
                Form::ClusterSection,
            ),
            ("{kube-apiserver: {}}\n", Form::Scenario),
            ("nodes: []\n", Form::Scenario),
            ("", Form::Scenario),
        ];
        for (text, want) in cases {
            assert_eq!(form(text), *want, "{text}");
        }
    }

    #[test]
    fn indented_spans_map_back_to_the_original() {
        let text = "kubelet:\n  max-pods: x\n";
        let header = "name: \"f\"\ncluster:\n";
        let starts = [0usize, 9, 23];
        // In the synthetic text `x` is at header + "  kubelet:\n" (11) + "    max-pods: " (14).
        let at = header.len() + 11 + 14;
        let s = Span {
            file: FileId(0),
            start: at,
            end: at + 1,
            line: 4,
            col: 15,
        };
        let back = unshift(s, header.len(), &starts);
        assert_eq!(&text[back.start..back.end], "x");
        assert_eq!((back.line, back.col), (2, 13));
    }
}
