//! Diagnostics: what is wrong with an input, where, and what was expected.
//!
//! Diagnostics are data; they are rendered to text once, at the edge ([`render`]), with
//! `annotate-snippets`' plain renderer so that snapshots do not depend on terminal colours.

use crate::source::{SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where the problem is. `None` only for problems with no place in a file (e.g. the
    /// scenario file itself cannot be read).
    pub span: Option<Span>,
    /// What is wrong, in one sentence, starting lower-case (rustc style).
    pub message: String,
    /// The label under the underlined text: usually what was expected there.
    pub label: Option<String>,
    /// Further help lines ("did you mean `ipFamilyPolicy`?").
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span: Some(span),
            message: message.into(),
            label: None,
            help: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    /// An error with no position (a file that cannot be read at all).
    pub fn error_nowhere(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            span: None,
            message: message.into(),
            label: None,
            help: Vec::new(),
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders diagnostics as plain text, in the order given, each as
/// `error: message\n --> file:line:col\n` followed by the annotated source line(s).
pub fn render(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    crate::read::render_diagnostics(sources, diags)
}
