//! One `artifacts:paths` / `cache:paths` / `exclude` pattern, normalised
//! and compiled the way gitlab-runner's file archiver treats it.
//!
//! gitlab-runner (`commands/helpers/file_archiver.go`) splits a pattern into
//! its literal base directory and the glob part (doublestar's
//! `SplitPattern`), resolves the base against the project directory, refuses
//! it when it lands outside, and joins the two again with Go's
//! `filepath.Join`, which also cleans the result (`.`, `..`, doubled and
//! trailing slashes). The cleaned pattern is then globbed with doublestar v4.
//! We reproduce the normalisation exactly and match with globset, whose
//! syntax is the same once `*` and `?` stop at `/` (`literal_separator`) and
//! `\` escapes. One doublestar rule has no globset equivalent and is added
//! by hand: `dir/**` also matches `dir` itself, because doublestar's `**`
//! matches zero or more path segments.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

/// The characters that make a path a pattern for gitlab-runner (its
/// `strings.ContainsAny(path, "*?[{")` test).
const META: &[char] = &['*', '?', '[', '{'];

/// Why a pattern cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// The pattern resolves to a place outside the project directory.
    Outside,
    /// The glob syntax is broken (doublestar's `ErrBadPattern`).
    Syntax,
}

/// A pattern relative to the project directory, ready to match
/// `/`-separated relative paths.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// The cleaned pattern, relative to the project directory; `.` for the
    /// project directory itself.
    pub(crate) text: String,
    /// The literal directory part (unescaped), where a walk starts; `.` when
    /// the pattern starts with a wildcard. Equals `text` for a literal path.
    pub(crate) base: String,
    /// `None` for a literal path (no wildcard): it is looked up, not walked.
    matchers: Option<Vec<GlobMatcher>>,
    /// How deep below `base` a match can be; `None` when `**` allows any
    /// depth. Bounds the walk so that `*.txt` never descends.
    pub(crate) max_depth: Option<usize>,
}

impl Pattern {
    /// Normalises `raw` against the absolute, clean `project_dir` and
    /// compiles it.
    pub(crate) fn new(raw: &str, project_dir: &Path) -> Result<Pattern, PatternError> {
        let text = relative_in_project(raw, project_dir)?;
        let has_meta = text.contains(META);
        let (base, rest) = if has_meta {
            split_pattern(&text)
        } else {
            (text.clone(), String::new())
        };
        let matchers = if has_meta {
            Some(compile(&text)?)
        } else {
            None
        };
        let max_depth = if rest.contains("**") {
            None
        } else {
            // Every `/` can start one more level (an alternation such as
            // `{a/b,c}` makes this an upper bound, which is enough).
            Some(rest.matches('/').count() + 1)
        };
        Ok(Pattern {
            base: unescape(&base),
            text,
            matchers,
            max_depth,
        })
    }

    /// Whether the pattern is a plain path rather than a glob.
    pub(crate) fn is_literal(&self) -> bool {
        self.matchers.is_none()
    }

    /// Whether `path` (relative, `/`-separated, no leading `./`) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.matchers {
            Some(matchers) => matchers.iter().any(|m| m.is_match(path)),
            None => path == self.text,
        }
    }
}

/// gitlab-runner's `findRelativePathInProject` followed by the join: the
/// cleaned pattern relative to the project directory.
fn relative_in_project(raw: &str, project_dir: &Path) -> Result<String, PatternError> {
    let wd = project_dir.to_string_lossy();
    let wd = clean(&wd);
    if clean(raw) == wd {
        return Ok(".".to_owned());
    }
    let (base, rest) = if raw.contains(META) {
        split_pattern(raw)
    } else {
        (raw.to_owned(), String::new())
    };
    let absolute = if base.starts_with('/') {
        clean(&base)
    } else {
        clean(&format!("{wd}/{base}"))
    };
    let relative = if absolute == wd {
        ".".to_owned()
    } else if let Some(inside) = absolute.strip_prefix(&format!("{}/", wd.trim_end_matches('/'))) {
        inside.to_owned()
    } else {
        return Err(PatternError::Outside);
    };
    let joined = clean(&format!("{relative}/{rest}"));
    // The glob part may climb out again (`*/../../x`); gitlab-runner only
    // notices per matched file, we refuse the pattern as a whole.
    if joined == ".." || joined.starts_with("../") {
        return Err(PatternError::Outside);
    }
    Ok(joined)
}

/// doublestar's `SplitPattern`: everything before the last `/` that comes
/// before the first unescaped wildcard, and the rest. The base is `.` when
/// there is no such slash.
pub(crate) fn split_pattern(p: &str) -> (String, String) {
    let bytes = p.as_bytes();
    let mut split = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'/' => split = Some(i),
            b'*' | b'?' | b'[' | b'{' => break,
            _ => {}
        }
        i += 1;
    }
    match split {
        Some(0) => ("/".to_owned(), p[1..].to_owned()),
        Some(i) => (p[..i].to_owned(), p[i + 1..].to_owned()),
        None => (".".to_owned(), p.to_owned()),
    }
}

/// Go's `path.Clean`: the shortest equivalent path, lexically.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Removes glob escapes from a literal base (`a\[1\]` names `a[1]`).
fn unescape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn compile(text: &str) -> Result<Vec<GlobMatcher>, PatternError> {
    let mut matchers = vec![build(text)?];
    // doublestar's trailing `/**` also matches the directory it follows;
    // globset's does not, so the directory gets its own matcher.
    if let Some(dir) = text.strip_suffix("/**") {
        matchers.push(build(dir)?);
    }
    Ok(matchers)
}

fn build(glob: &str) -> Result<GlobMatcher, PatternError> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        // doublestar accepts `{,x}` (empty alternative); globset only with
        // this switch.
        .empty_alternates(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|_| PatternError::Syntax)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(raw: &str) -> Result<String, PatternError> {
        relative_in_project(raw, Path::new("/builds/group/project"))
    }

    #[test]
    fn clean_follows_go_path_clean() {
        for (input, want) in [
            ("", "."),
            ("a/b/../c", "a/c"),
            ("./a//b/", "a/b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("*/../x", "x"),
            ("/", "/"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn split_pattern_follows_doublestar() {
        let split = |p: &str| split_pattern(p);
        assert_eq!(split("path/to/*.txt"), ("path/to".into(), "*.txt".into()));
        assert_eq!(split("*.txt"), (".".into(), "*.txt".into()));
        assert_eq!(split("/abs/*"), ("/abs".into(), "*".into()));
        assert_eq!(split("/*"), ("/".into(), "*".into()));
        // Without a wildcard the split is at the last slash.
        assert_eq!(split("a/b/c"), ("a/b".into(), "c".into()));
        // An escaped wildcard belongs to the base.
        assert_eq!(split(r"a\*/b/*"), (r"a\*/b".into(), "*".into()));
    }

    #[test]
    fn rule_203_patterns_are_relative_to_the_project_dir() {
        assert_eq!(rel("out/").unwrap(), "out");
        assert_eq!(rel("./out/**/*.log").unwrap(), "out/**/*.log");
        assert_eq!(rel("/builds/group/project/out/*").unwrap(), "out/*");
        assert_eq!(rel("/builds/group/project").unwrap(), ".");
        assert_eq!(rel("sub/../*.txt").unwrap(), "*.txt");
    }

    #[test]
    fn rule_203_patterns_outside_the_project_dir_are_refused() {
        assert_eq!(rel("../other/*"), Err(PatternError::Outside));
        assert_eq!(rel("/etc/passwd"), Err(PatternError::Outside));
        assert_eq!(rel("/builds/group/project-2/x"), Err(PatternError::Outside));
        assert_eq!(rel("*/../../x"), Err(PatternError::Outside));
        assert_eq!(rel(".."), Err(PatternError::Outside));
    }

    #[test]
    fn trailing_double_star_matches_the_directory_itself() {
        let p = Pattern::new("sub/**", Path::new("/p")).unwrap();
        assert!(p.matches("sub"));
        assert!(p.matches("sub/a"));
        assert!(p.matches("sub/a/b"));
        assert!(!p.matches("subway"));
        assert_eq!(p.base, "sub");
        assert_eq!(p.max_depth, None);
    }

    #[test]
    fn single_star_stops_at_slashes_and_bounds_the_walk() {
        let p = Pattern::new("*.txt", Path::new("/p")).unwrap();
        assert!(p.matches("a.txt"));
        assert!(p.matches(".hidden.txt"));
        assert!(!p.matches("sub/b.txt"));
        assert_eq!(p.max_depth, Some(1));
        let p = Pattern::new("a/*/c?", Path::new("/p")).unwrap();
        assert_eq!((p.base.as_str(), p.max_depth), ("a", Some(2)));
    }

    #[test]
    fn doublestar_syntax_is_supported() {
        let p = Pattern::new("{alpha,beta}/x", Path::new("/p")).unwrap();
        assert!(p.matches("alpha/x") && p.matches("beta/x") && !p.matches("gamma/x"));
        let p = Pattern::new("[!a]*.o", Path::new("/p")).unwrap();
        assert!(p.matches("b.o") && !p.matches("a.o"));
        let p = Pattern::new("x{,.bak}", Path::new("/p")).unwrap();
        assert!(p.matches("x") && p.matches("x.bak"));
        let p = Pattern::new(r"lit\*", Path::new("/p")).unwrap();
        assert!(p.matches("lit*") && !p.matches("literal"));
    }

    #[test]
    fn broken_globs_are_syntax_errors() {
        assert_eq!(
            Pattern::new("a/[b", Path::new("/p")).unwrap_err(),
            PatternError::Syntax
        );
        assert_eq!(
            Pattern::new("{a,b", Path::new("/p")).unwrap_err(),
            PatternError::Syntax
        );
    }

    #[test]
    fn literal_paths_are_not_globs() {
        let p = Pattern::new("out/report.xml", Path::new("/p")).unwrap();
        assert!(p.is_literal());
        assert!(p.matches("out/report.xml"));
        assert_eq!(p.base, "out/report.xml");
    }
}
