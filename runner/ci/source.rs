//! The files a pipeline is read from, and positions inside them.
//!
//! Every YAML node keeps a [`Span`] so that an error found long after
//! parsing (an unknown key in a job assembled from three included files and
//! an `extends` chain) still names the file, line and column it came from.

use std::sync::Arc;

/// Identifies one file in a [`Sources`] registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceId(pub u32);

/// A position in a source file. `line` and `col` count from 1; a span of
/// `line == 0` means "no position" (a value synthesised by the runner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub source: SourceId,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub const fn new(source: SourceId, line: u32, col: u32) -> Span {
        Span { source, line, col }
    }

    /// A span for values the runner makes up itself.
    pub const fn synthetic() -> Span {
        Span {
            source: SourceId(0),
            line: 0,
            col: 0,
        }
    }

    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }
}

/// One file's display name and text.
#[derive(Debug)]
pub struct SourceFile {
    /// How the file is named in messages: a path relative to the project
    /// for local files, the URL or `project:ref:file` for others.
    pub name: String,
    pub text: Arc<str>,
}

/// All files read while loading one pipeline. Id 0 is reserved for
/// synthetic values, so real files start at 1.
#[derive(Debug)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            files: vec![SourceFile {
                name: "<runner>".into(),
                text: Arc::from(""),
            }],
        }
    }
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceId {
        let id = SourceId(self.files.len() as u32);
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
        });
        id
    }

    pub fn get(&self, id: SourceId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn name(&self, id: SourceId) -> &str {
        self.get(id).map(|f| f.name.as_str()).unwrap_or("<unknown>")
    }

    /// The names of all real files, in the order they were read.
    pub fn names(&self) -> Vec<String> {
        self.files.iter().skip(1).map(|f| f.name.clone()).collect()
    }

    /// The text of line `line` (1-based) of a file, without its newline.
    pub fn line_text(&self, span: Span) -> Option<&str> {
        if span.is_synthetic() {
            return None;
        }
        let file = self.get(span.source)?;
        file.text.lines().nth(span.line as usize - 1)
    }

    /// `file:line:col`, or just the file name for a synthetic span.
    pub fn location(&self, span: Span) -> String {
        if span.is_synthetic() {
            return self.name(span.source).to_string();
        }
        format!("{}:{}:{}", self.name(span.source), span.line, span.col)
    }
}
