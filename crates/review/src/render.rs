//! A diff as text (for a terminal), JSON (for tools) or GitHub-flavoured Markdown (a
//! pull-request comment or a CI job summary). Pure string building.
//!
//! Text and Markdown show at most [`MAX_OBJECTS`] objects per area and [`MAX_LINES`] lines per
//! fact, and say how many more there are; JSON holds everything.

use std::fmt::Write as _;

use serde::Serialize;

use crate::diff::{ChangeKind, Diff, FieldChange};
use crate::snapshot::{Area, Value};

/// Objects shown per area in text and Markdown.
pub const MAX_OBJECTS: usize = 50;
/// Lines shown per fact in text and Markdown.
pub const MAX_LINES: usize = 20;
/// Wider than this, a fact's before and after go on lines of their own.
const INLINE: usize = 60;

/// What the two sides are (file names, versions, "stored snapshot").
#[derive(Clone, Debug, Serialize)]
pub struct Labels {
    pub before: String,
    pub after: String,
}

fn title(area: &str) -> &'static str {
    Area::from_key(area).map_or("", Area::title)
}

fn summary(d: &Diff) -> String {
    if d.is_empty() {
        return "no changes".to_string();
    }
    let n = d.objects();
    let a = d.areas.len();
    format!(
        "{n} object{} changed in {a} area{}",
        if n == 1 { "" } else { "s" },
        if a == 1 { "" } else { "s" }
    )
}

fn inline(v: &Option<Value>) -> String {
    match v {
        None => "(none)".to_string(),
        Some(Value::Scalar(s)) => s.clone(),
        Some(Value::List(l)) => format!("[{}]", l.join(", ")),
    }
}

fn all_lines(v: &Option<Value>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::Scalar(s)) => vec![s.clone()],
        Some(Value::List(l)) => l.clone(),
    }
}

/// The lines a fact lost and gained: for two lists, their differing lines; otherwise the
/// whole values.
fn lost_gained(f: &FieldChange) -> (Vec<String>, Vec<String>) {
    match (&f.before, &f.after) {
        (Some(Value::List(_)), Some(Value::List(_))) => (f.removed.clone(), f.added.clone()),
        _ => (all_lines(&f.before), all_lines(&f.after)),
    }
}

fn capped(lines: &[String], max: usize) -> (&[String], usize) {
    if lines.len() > max {
        (&lines[..max], lines.len() - max)
    } else {
        (lines, 0)
    }
}

/// The diff as text for a terminal.
pub fn text(d: &Diff, labels: &Labels) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "--- {}", labels.before);
    let _ = writeln!(out, "+++ {}", labels.after);
    for f in &d.header {
        let _ = writeln!(
            out,
            "{}: {} -> {}",
            f.name,
            inline(&f.before),
            inline(&f.after)
        );
    }
    for a in &d.areas {
        let _ = writeln!(out, "\n{}", title(a.area));
        let (shown, more) = (
            a.objects.iter().take(MAX_OBJECTS),
            a.objects.len().saturating_sub(MAX_OBJECTS),
        );
        for o in shown {
            match o.change {
                ChangeKind::Added => {
                    let _ = writeln!(out, "  + {} (new)", o.name);
                }
                ChangeKind::Removed => {
                    let _ = writeln!(out, "  - {} (gone)", o.name);
                }
                ChangeKind::Changed => {
                    let _ = writeln!(out, "  {}", o.name);
                }
            }
            for f in &o.facts {
                fact_text(&mut out, f, o.change);
            }
        }
        if more > 0 {
            let _ = writeln!(out, "  … and {more} more (all of them in `-o json`)");
        }
    }
    let _ = writeln!(out, "\n{}", summary(d));
    out
}

fn fact_text(out: &mut String, f: &FieldChange, change: ChangeKind) {
    let pad = "    ";
    match change {
        ChangeKind::Added | ChangeKind::Removed => {
            let v = if change == ChangeKind::Added {
                &f.after
            } else {
                &f.before
            };
            let s = inline(v);
            if s.len() <= INLINE || matches!(v, Some(Value::Scalar(_))) {
                let _ = writeln!(out, "{pad}{}: {s}", f.name);
            } else {
                let _ = writeln!(out, "{pad}{}:", f.name);
                let lines = all_lines(v);
                let (shown, more) = capped(&lines, MAX_LINES);
                for l in shown {
                    let _ = writeln!(out, "{pad}  {l}");
                }
                if more > 0 {
                    let _ = writeln!(out, "{pad}  … and {more} more lines");
                }
            }
        }
        ChangeKind::Changed => {
            let (b, a) = (inline(&f.before), inline(&f.after));
            if b.len() <= INLINE && a.len() <= INLINE {
                let _ = writeln!(out, "{pad}{}: {b} -> {a}", f.name);
                return;
            }
            let _ = writeln!(out, "{pad}{}:", f.name);
            let (lost, gained) = lost_gained(f);
            if lost.is_empty() && gained.is_empty() {
                let _ = writeln!(out, "{pad}  (the same lines, in another order)");
            }
            for (sign, lines) in [("-", &lost), ("+", &gained)] {
                if lines.is_empty()
                    && matches!((sign, &f.before, &f.after), ("-", None, _) | ("+", _, None))
                {
                    let _ = writeln!(out, "{pad}  {sign} (none)");
                }
                let (shown, more) = capped(lines, MAX_LINES);
                for l in shown {
                    let _ = writeln!(out, "{pad}  {sign} {l}");
                }
                if more > 0 {
                    let _ = writeln!(out, "{pad}  {sign} … and {more} more lines");
                }
            }
        }
    }
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    before: &'a str,
    after: &'a str,
    changed: bool,
    #[serde(flatten)]
    diff: &'a Diff,
}

/// The diff as JSON: everything, uncapped.
pub fn json(d: &Diff, labels: &Labels) -> String {
    let doc = JsonDiff {
        before: &labels.before,
        after: &labels.after,
        changed: !d.is_empty(),
        diff: d,
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// A table cell: each line in a code span, lines joined with `<br>`, pipes escaped.
fn cell(lines: &[String], prefix: &str) -> String {
    if lines.is_empty() {
        return "—".to_string();
    }
    let (shown, more) = capped(lines, MAX_LINES.min(10));
    let mut parts: Vec<String> = shown
        .iter()
        .map(|l| {
            let l = l.replace('\n', " ");
            let body = if l.contains('`') {
                l.replace('|', "\\|")
            } else {
                format!("`{}`", l.replace('|', "\\|"))
            };
            format!("{prefix}{body}")
        })
        .collect();
    if more > 0 {
        parts.push(format!("… and {more} more"));
    }
    parts.join("<br>")
}

fn code(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') { s } else { format!("`{s}`") }
}

/// The diff as GitHub-flavoured Markdown: a heading, the summary, and a table per area.
pub fn markdown(d: &Diff, labels: &Labels) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### knetsim diff: {} → {}\n",
        code(&labels.before),
        code(&labels.after)
    );
    let _ = writeln!(out, "**{}**", summary(d));
    if !d.header.is_empty() {
        out.push('\n');
        for f in &d.header {
            let _ = writeln!(
                out,
                "- {}: {} → {}",
                f.name,
                code(&inline(&f.before)),
                code(&inline(&f.after))
            );
        }
    }
    for a in &d.areas {
        let _ = writeln!(out, "\n#### {}\n", title(a.area));
        out.push_str("| object | fact | before | after |\n| --- | --- | --- | --- |\n");
        for o in a.objects.iter().take(MAX_OBJECTS) {
            let name = match o.change {
                ChangeKind::Added => format!("{} (new)", code(&o.name)),
                ChangeKind::Removed => format!("{} (gone)", code(&o.name)),
                ChangeKind::Changed => code(&o.name),
            };
            if o.facts.is_empty() {
                let _ = writeln!(out, "| {name} | | | |");
            }
            for f in &o.facts {
                let (lost, gained) = lost_gained(f);
                let (b, a) = if matches!(
                    (&f.before, &f.after),
                    (Some(Value::List(_)), Some(Value::List(_)))
                ) {
                    if lost.is_empty() && gained.is_empty() {
                        ("the same lines".to_string(), "in another order".to_string())
                    } else {
                        (cell(&lost, "− "), cell(&gained, "+ "))
                    }
                } else {
                    (cell(&lost, ""), cell(&gained, ""))
                };
                let _ = writeln!(out, "| {name} | {} | {b} | {a} |", code(&f.name));
            }
        }
        let more = a.objects.len().saturating_sub(MAX_OBJECTS);
        if more > 0 {
            let _ = writeln!(
                out,
                "\n… and {more} more objects (all of them in `-o json`)"
            );
        }
    }
    out
}
