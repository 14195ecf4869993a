//! Diagnostics: what is wrong with a configuration, and where.

use std::fmt::Write as _;

use super::source::{Sources, Span};

/// What kind of problem a diagnostic reports. Callers branch on it: an
/// unreachable include is reported alone, because every other error after
/// it would only be a consequence of the missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// The text is not valid YAML.
    Syntax,
    /// Valid YAML that GitLab would reject.
    Config,
    /// An `include` that could not be fetched or read.
    IncludeUnreachable,
    /// An `include` that points at a file (or ref) that does not exist.
    /// Like an unreachable one, it is reported alone.
    IncludeMissing,
}

impl DiagnosticKind {
    /// True for both ways an include can fail to resolve.
    pub fn is_unresolved_include(self) -> bool {
        matches!(
            self,
            DiagnosticKind::IncludeUnreachable | DiagnosticKind::IncludeMissing
        )
    }
}

/// A problem with a configuration. The message uses GitLab's own wording
/// where GitLab has one (`jobs:build:script config should be ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub message: String,
    pub span: Span,
}

impl Diagnostic {
    pub fn config(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind: DiagnosticKind::Config,
            message: message.into(),
            span,
        }
    }

    pub fn syntax(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind: DiagnosticKind::Syntax,
            message: message.into(),
            span,
        }
    }

    pub fn include_unreachable(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind: DiagnosticKind::IncludeUnreachable,
            message: message.into(),
            span,
        }
    }

    pub fn include_missing(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            kind: DiagnosticKind::IncludeMissing,
            message: message.into(),
            span,
        }
    }

    /// `file:line:col: message` followed by the source line and a caret.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = format!("{}: {}", sources.location(self.span), self.message);
        if let Some(line) = sources.line_text(self.span) {
            let gutter = self.span.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_at: String = line
                .chars()
                .take(self.span.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "\n{pad} |\n{gutter} | {line}\n{pad} | {caret_at}^");
        }
        out
    }
}

/// Several diagnostics, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}
