//! Diagnostics as plain text, rustc style, with `annotate-snippets`' plain renderer:
//!
//! ```text
//! error: unknown key `nmae`
//!  --> scenarios/bad/05-unknown-top-level-key.yaml:1:1
//!   |
//! 1 | nmae: x
//!   | ^^^^ unknown key
//!   |
//!   = help: did you mean `name`?
//! ```
//!
//! Only the line a diagnostic points at is handed to the renderer (a span over several lines is
//! cut at the end of its first line), so rendering costs the same for a 10-line file and a
//! 100,000-line manifest dump, and output stays one source line per diagnostic.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diag::{Diagnostic, Severity};
use crate::source::SourceMap;

/// Diagnostics rendered in full; the rest are counted. A file of a million bad values would
/// otherwise print a million snippets (and users read the first screen anyway).
pub const MAX_RENDERED: usize = 100;

/// Lines longer than this are shown as a window around the span: rendering is then bounded
/// per diagnostic, however long the line (a flow list on one line can be megabytes).
const LONG_LINE: usize = 1000;
const WINDOW: usize = 300;

pub(crate) fn render_diagnostics(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let renderer = Renderer::plain();
    let mut out = String::new();
    if diags.len() > MAX_RENDERED {
        let rest = &diags[MAX_RENDERED..];
        let errors = rest.iter().filter(|d| d.is_error()).count();
        let warnings = rest.len() - errors;
        let mut text = render_diagnostics(sources, &diags[..MAX_RENDERED]);
        text.push_str(&format!(
            "note: {errors} more error{} and {warnings} more warning{} not shown (knetsim shows the first {MAX_RENDERED})\n\n",
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        ));
        return text;
    }
    for d in diags {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = level.primary_title(d.message.as_str());
        // A span into a file this map does not hold would be a caller's bug (every diagnostic
        // of a run points into the one map its files were loaded into); say the message
        // without a snippet rather than fail.
        let windowed: String;
        let located = d
            .span
            .and_then(|span| sources.try_get(span.file).map(|file| (span, file)));
        let mut group: Group<'_> = match located {
            Some((span, file)) => {
                let text = file.text.as_str();
                let mut start = span.start.min(text.len());
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
                let line = text[line_start..line_end].trim_end_matches('\r');
                let mut a_start = start - line_start;
                let mut end = span.end.clamp(start, line_start + line.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let mut a_end = end - line_start;
                let line = if line.len() > LONG_LINE {
                    let (w, s, e) = window(line, a_start, a_end);
                    windowed = w;
                    (a_start, a_end) = (s, e);
                    windowed.as_str()
                } else {
                    line
                };
                let mut annotation = AnnotationKind::Primary.span(a_start..a_end);
                if let Some(label) = &d.label {
                    annotation = annotation.label(label.as_str());
                }
                title.element(
                    Snippet::source(line)
                        .line_start(span.line as usize)
                        .path(file.name.as_str())
                        .annotation(annotation),
                )
            }
            None => Group::with_title(title),
        };
        for h in &d.help {
            group = group.element(Level::HELP.message(h.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push_str("\n\n");
    }
    out
}

/// A window of a long line around bytes `start..end`, marked `...` where cut, with the span's
/// offsets in the window.
fn window(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    let mut from = start.saturating_sub(WINDOW);
    while !line.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = end.max(start).saturating_add(WINDOW).min(line.len());
    while !line.is_char_boundary(to) {
        to += 1;
    }
    let prefix = if from > 0 { "..." } else { "" };
    let suffix = if to < line.len() { "..." } else { "" };
    let text = format!("{prefix}{}{suffix}", &line[from..to]);
    let shift = prefix.len();
    (text, start - from + shift, end.min(to) - from + shift)
}
