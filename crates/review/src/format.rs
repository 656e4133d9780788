//! The snapshot file: YAML made to be read in `git diff`, and read back.
//!
//! ```yaml
//! # knetsim snapshot of scenario kind-dual-stack-defaults …
//! format: 1
//! scenario: kind-dual-stack-defaults
//! kubernetesVersion: "1.33"
//! seed: 7
//! form: full
//! rules: false
//! nodes:
//!   kind-worker:
//!     podCIDRs:
//!       - 10.244.1.0/24
//!       - fd00:10:244:1::/64
//!     ready: true
//! ```
//!
//! Sections, objects and facts are written in order (sections in [`Area`] order, the rest
//! sorted by name); lists one item a line. Every value is read back as the text written, so
//! a scalar is quoted only when YAML's syntax needs it (`true` stays `true` and reads back
//! as the text "true"). The writer and the reader are each other's inverse (tested on every
//! bundled scenario's snapshot), and a file of another format version is refused rather than
//! misread.

use std::fmt::Write as _;

use knetsim_model::yaml::{Node, NodeKind, did_you_mean, mismatch, parse_stream};
use knetsim_model::{Diagnostic, FileId};

use crate::snapshot::{Area, Form, Object, Section, Snapshot, Value};

/// The format this knetsim writes and reads.
pub const FORMAT_VERSION: u64 = 1;

const HEADER_KEYS: [&str; 6] = [
    "format",
    "scenario",
    "kubernetesVersion",
    "seed",
    "form",
    "rules",
];

/// Writes a snapshot as its file's text.
pub fn write(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "# knetsim snapshot: the routing and allocation state of scenario {}.",
        one_line(&s.scenario)
    );
    out.push_str("# Checked by `knetsim snapshot`; rewritten by `knetsim snapshot --update`.\n");
    let _ = writeln!(out, "format: {FORMAT_VERSION}");
    scalar_line(&mut out, 0, "scenario", &s.scenario);
    scalar_line(&mut out, 0, "kubernetesVersion", &s.kubernetes_version);
    scalar_line(&mut out, 0, "seed", &s.seed.to_string());
    scalar_line(&mut out, 0, "form", s.form.name());
    scalar_line(&mut out, 0, "rules", if s.rules { "true" } else { "false" });
    for (area, section) in &s.sections {
        let _ = writeln!(out, "{}:", area.key());
        for (name, obj) in section {
            key(&mut out, 2, name);
            if obj.is_empty() {
                out.push_str(" {}\n");
                continue;
            }
            out.push('\n');
            for (k, v) in obj {
                match v {
                    Value::Scalar(t) => scalar_line(&mut out, 4, k, t),
                    Value::List(items) if items.is_empty() => {
                        key(&mut out, 4, k);
                        out.push_str(" []\n");
                    }
                    Value::List(items) => {
                        key(&mut out, 4, k);
                        out.push('\n');
                        for i in items {
                            out.push_str("      - ");
                            text(&mut out, i);
                            out.push('\n');
                        }
                    }
                }
            }
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn key(out: &mut String, indent: usize, k: &str) {
    for _ in 0..indent {
        out.push(' ');
    }
    text(out, k);
    out.push(':');
}

fn scalar_line(out: &mut String, indent: usize, k: &str, v: &str) {
    key(out, indent, k);
    out.push(' ');
    text(out, v);
    out.push('\n');
}

/// Writes `s` plain when YAML reads it back as the same text, double-quoted (JSON escapes,
/// which YAML's double-quoted style reads) otherwise.
fn text(out: &mut String, s: &str) {
    if plain_ok(s) {
        out.push_str(s);
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
    }
}

/// Whether a plain scalar reads back as exactly `s`: not empty or null, no indicator at the
/// start, no `: ` or ` #`, no leading or trailing space or `:`, printable ASCII only (other
/// characters are quoted to keep the rule simple; they are rare in these documents).
fn plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if matches!(s, "~" | "null" | "Null" | "NULL") {
        return false;
    }
    // `1.30` reads back as the text written, but other readers would see a number.
    if s.contains('.') && s.parse::<f64>().is_ok() {
        return false;
    }
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) || first == b' ' {
        // Of the indicators only `-` starts a plain scalar here (`?` and `:` may too, but
        // are quoted to be safe), and only when no space follows (`-A KUBE-SERVICES …`).
        let next = b.get(1).copied();
        if !(first == b'-' && next.is_some_and(|n| n != b' ')) {
            return false;
        }
    }
    if last == b' ' || last == b':' {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") {
        return false;
    }
    b.iter().all(|&c| (0x20..0x7f).contains(&c))
}

/// Reads a snapshot file's text (`file` names it in diagnostics). Errors: not YAML, not a
/// snapshot, another format version, or values of the wrong shape, each located.
pub fn parse(file: FileId, text: &str) -> Result<Snapshot, Vec<Diagnostic>> {
    let (docs, mut d) = parse_stream(file, text);
    if d.iter().any(Diagnostic::is_error) {
        return Err(d);
    }
    let Some(root) = docs.first() else {
        return Err(vec![
            Diagnostic::error(
                knetsim_model::Span {
                    file,
                    start: 0,
                    end: 0,
                    line: 1,
                    col: 1,
                },
                "the snapshot file is empty",
            )
            .with_label("expected `format: 1` and the snapshot's sections")
            .with_help("write it again with `knetsim snapshot --update`"),
        ]);
    };
    let Some(entries) = root.as_map() else {
        return Err(vec![mismatch(
            root,
            "a map with `format:` and the snapshot's sections",
            "the snapshot",
        )]);
    };
    // The version first: a file of another format is not read further.
    match root.get("format") {
        None => {
            return Err(vec![
                Diagnostic::error(root.span, "not a knetsim snapshot: no `format:`")
                    .with_label(format!("expected `format: {FORMAT_VERSION}` here"))
                    .with_help("write it again with `knetsim snapshot --update`"),
            ]);
        }
        Some(v) if v.scalar_text() != Some(&FORMAT_VERSION.to_string()) => {
            return Err(vec![
                Diagnostic::error(
                    v.span,
                    format!(
                        "unknown snapshot format `{}`",
                        v.scalar_text().unwrap_or("(not a number)")
                    ),
                )
                .with_label(format!("this knetsim reads format {FORMAT_VERSION}"))
                .with_help("write it again with `knetsim snapshot --update`"),
            ]);
        }
        Some(_) => {}
    }
    let mut snap = Snapshot {
        scenario: String::new(),
        kubernetes_version: String::new(),
        seed: 0,
        form: Form::Full,
        rules: false,
        sections: Default::default(),
    };
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            d.push(mismatch(k, "a key", "the snapshot"));
            continue;
        };
        match name {
            "format" => {}
            "scenario" => snap.scenario = scalar(v, name, &mut d),
            "kubernetesVersion" => snap.kubernetes_version = scalar(v, name, &mut d),
            "seed" => {
                let t = scalar(v, name, &mut d);
                match t.parse() {
                    Ok(s) => snap.seed = s,
                    Err(_) => d.push(mismatch(v, "a number", "seed")),
                }
            }
            "form" => match Form::parse(&scalar(v, name, &mut d)) {
                Some(f) => snap.form = f,
                None => d.push(mismatch(v, "`full` or `summary`", "form")),
            },
            "rules" => match scalar(v, name, &mut d).as_str() {
                "true" => snap.rules = true,
                "false" => snap.rules = false,
                _ => d.push(mismatch(v, "true or false", "rules")),
            },
            _ => match Area::from_key(name) {
                Some(area) => {
                    snap.sections.insert(area, section(v, name, &mut d));
                }
                None => {
                    let mut diag =
                        Diagnostic::error(k.span, format!("unknown snapshot section `{name}`"))
                            .with_label("not a section of a knetsim snapshot");
                    let known = HEADER_KEYS
                        .iter()
                        .copied()
                        .chain(Area::ALL.iter().map(|a| a.key()));
                    if let Some(s) = did_you_mean(name, known) {
                        diag = diag.with_help(format!("did you mean `{s}`?"));
                    }
                    d.push(diag);
                }
            },
        }
    }
    if d.iter().any(Diagnostic::is_error) {
        Err(d)
    } else {
        Ok(snap)
    }
}

fn scalar(v: &Node, what: &str, d: &mut Vec<Diagnostic>) -> String {
    match &v.kind {
        NodeKind::Scalar(s) => s.text.clone(),
        _ => {
            d.push(mismatch(v, "a single value", what));
            String::new()
        }
    }
}

fn section(v: &Node, what: &str, d: &mut Vec<Diagnostic>) -> Section {
    let mut out = Section::new();
    let entries = match &v.kind {
        NodeKind::Map(e) => e,
        NodeKind::Null => return out,
        _ => {
            d.push(mismatch(v, "a map of objects", what));
            return out;
        }
    };
    for (k, obj) in entries {
        let Some(name) = k.scalar_text() else {
            d.push(mismatch(k, "an object's name", what));
            continue;
        };
        out.insert(name.to_string(), object(obj, name, d));
    }
    out
}

fn object(v: &Node, what: &str, d: &mut Vec<Diagnostic>) -> Object {
    let mut out = Object::new();
    let entries = match &v.kind {
        NodeKind::Map(e) => e,
        NodeKind::Null => return out,
        _ => {
            d.push(mismatch(v, "a map of facts", what));
            return out;
        }
    };
    for (k, fact) in entries {
        let Some(name) = k.scalar_text() else {
            d.push(mismatch(k, "a fact's name", what));
            continue;
        };
        let value = match &fact.kind {
            NodeKind::Scalar(s) => Value::Scalar(s.text.clone()),
            NodeKind::Seq(items) => {
                let mut list = Vec::with_capacity(items.len());
                for i in items {
                    match i.scalar_text() {
                        Some(t) => list.push(t.to_string()),
                        None => d.push(mismatch(i, "one line of text", name)),
                    }
                }
                Value::List(list)
            }
            _ => {
                d.push(mismatch(fact, "a value or a list of values", name));
                continue;
            }
        };
        out.insert(name.to_string(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap_with(values: &[&str]) -> Snapshot {
        let mut o = Object::new();
        for (i, v) in values.iter().enumerate() {
            o.insert(format!("fact {i}: {v}"), Value::Scalar(v.to_string()));
        }
        o.insert(
            "list".to_string(),
            Value::List(values.iter().map(|v| v.to_string()).collect()),
        );
        o.insert("empty".to_string(), Value::List(Vec::new()));
        let mut section = Section::new();
        section.insert("an object".to_string(), o);
        section.insert("# not a comment".to_string(), Object::new());
        let mut sections = std::collections::BTreeMap::new();
        sections.insert(Area::Nodes, section);
        Snapshot {
            scenario: "a: b".to_string(),
            kubernetes_version: "1.30".to_string(),
            seed: 7,
            form: Form::Summary,
            rules: true,
            sections,
        }
    }

    /// Text YAML would read as something else, or not at all, unless quoted.
    const AWKWARD: &[&str] = &[
        "",
        "~",
        "null",
        "true",
        "1.30",
        "10",
        "-",
        "- x",
        "-A KUBE-SERVICES -j X",
        "--flag=1",
        "::1",
        "fd00::",
        ":x",
        "?x",
        "a: b",
        "a #b",
        "#a",
        "a:",
        " lead",
        "trail ",
        "[x]",
        "{x}",
        "*x",
        "&x",
        "!x",
        "|x",
        ">x",
        "'q'",
        "\"q\"",
        "%x",
        "@x",
        "`x`",
        "a,b",
        "tab\there",
        "new\nline",
        "ünï",
        "[fd00::1]:80",
        "x -> y: z",
        "\\back",
    ];

    #[test]
    fn what_is_written_reads_back_the_same() {
        let s = snap_with(AWKWARD);
        let text = write(&s);
        let back = parse(FileId(0), &text).unwrap_or_else(|d| panic!("{d:?}\n{text}"));
        assert_eq!(back, s, "{text}");
    }

    #[test]
    fn another_format_version_is_refused_where_it_is_written() {
        let text = "# a comment\nformat: 2\nscenario: x\n";
        let d = parse(FileId(0), text).expect_err("format 2");
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].span.unwrap().line, d[0].span.unwrap().col), (2, 9));
        assert!(
            d[0].message.contains("unknown snapshot format `2`"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn broken_yaml_and_unknown_sections_are_located() {
        let d = parse(FileId(0), "format: 1\nnodes:\n  a: [b\n").expect_err("unclosed");
        assert!(d.iter().all(|d| d.span.is_some()));
        let d = parse(FileId(0), "format: 1\nnodez:\n  a: {}\n").expect_err("typo");
        assert_eq!(d[0].span.unwrap().line, 2);
        assert!(
            d[0].help.iter().any(|h| h.contains("`nodes`")),
            "{:?}",
            d[0]
        );
        let d = parse(FileId(0), "scenario: x\n").expect_err("no format");
        assert!(d[0].message.contains("no `format:`"));
    }
}
