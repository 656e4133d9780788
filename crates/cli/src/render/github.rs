//! GitHub Actions workflow commands: `::error file=F,line=L,col=C::message` lines, which the
//! runner turns into annotations on the job and on the pull request's diff. Printed besides
//! the usual text when the binary runs with `GITHUB_ACTIONS=true` (see [`crate::github_actions`]).
//!
//! Escaping follows the Actions toolkit (`@actions/core`'s `command.ts`): in the message,
//! `%`, `\r` and `\n` become `%25`, `%0D` and `%0A`; in a property's value, `:` and `,` also
//! become `%3A` and `%2C`, since they separate the properties.

use std::fmt::Write as _;

use knetsim_model::{Diagnostic, Severity, SourceMap, Span};

/// The message of a command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The value of a command's property.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One command line: `::kind file=…,line=…,col=…::message` (`::kind::message` without a
/// file), ending in a newline.
pub fn command(kind: &str, at: Option<(&str, u32, u32)>, message: &str) -> String {
    let mut line = format!("::{kind}");
    if let Some((file, l, c)) = at {
        let _ = write!(line, " file={},line={l},col={c}", escape_property(file));
    }
    let _ = writeln!(line, "::{}", escape_data(message));
    line
}

/// The commands for `diags`: `error` or `warning` at the diagnostic's file, line and column,
/// with its message, label and help on the following lines of the annotation.
pub fn diagnostics(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(label) = &d.label {
            let _ = write!(message, "\n{label}");
        }
        for h in &d.help {
            let _ = write!(message, "\nhelp: {h}");
        }
        let file = d.span.and_then(|s| file_name(sources, s));
        let at = d.span.zip(file).map(|(s, name)| (name, s.line, s.col));
        out.push_str(&command(kind, at, &message));
    }
    out
}

/// The name of a span's file as the user wrote it; `None` for a span of no loaded file.
fn file_name(sources: &SourceMap, span: Span) -> Option<&str> {
    sources
        .files()
        .find(|(id, _)| *id == span.file)
        .map(|(_, f)| f.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_as_the_toolkit_does() {
        assert_eq!(escape_data("100% a:b,c\r\nd"), "100%25 a:b,c%0D%0Ad");
        assert_eq!(
            escape_property("dir,1/a:b%.yaml\n"),
            "dir%2C1/a%3Ab%25.yaml%0A"
        );
        assert_eq!(
            command("error", Some(("s/a,b.yaml", 3, 7)), "x: 50%\ny"),
            "::error file=s/a%2Cb.yaml,line=3,col=7::x: 50%25%0Ay\n"
        );
        assert_eq!(command("warning", None, "plain"), "::warning::plain\n");
    }

    #[test]
    fn diagnostics_carry_their_place_label_and_help() {
        let mut sources = SourceMap::new();
        let id = sources.add("scenarios/x.yaml", "scenarios/x.yaml", "a: 1\n".into());
        let span = Span {
            file: id,
            start: 0,
            end: 1,
            line: 1,
            col: 1,
        };
        let diags = [
            Diagnostic::error(span, "unknown key `a`")
                .with_label("not a scenario key")
                .with_help("did you mean `name`?"),
            Diagnostic {
                severity: Severity::Warning,
                span: None,
                message: "no place".into(),
                label: None,
                help: vec![],
            },
        ];
        assert_eq!(
            diagnostics(&sources, &diags),
            "::error file=scenarios/x.yaml,line=1,col=1::unknown key `a`%0Anot a scenario key%0Ahelp: did you mean `name`?\n::warning::no place\n"
        );
    }
}
