//! Ruby's `File.fnmatch?` with the flags GitLab passes for `rules:changes`,
//! `rules:exists` and `only/except:changes` (rule 90):
//! `FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB`.
//!
//! What those flags mean, as Ruby's `dir.c` implements them:
//! - `*` and `?` never match `/`; `*` matches a leading dot (`FNM_DOTMATCH`).
//! - `**/` at the start of a path segment matches zero or more whole
//!   directories. A `**` anywhere else is a plain `*`, so `docs/**` matches
//!   `docs/a` but not `docs/a/b` (GitLab's docs therefore write `docs/**/*`).
//! - `[abc]`, `[a-z]`, `[!a]` and `[^a]` are classes that never match `/`; an
//!   unterminated class makes the pattern match nothing.
//! - `\x` is a literal `x`.
//! - `{a,b}` alternatives are expanded first, nested ones included; a `{`
//!   without its `}` makes the pattern match nothing.
//!
//! A pattern is compiled once into one anchored regular expression, so a
//! pipeline with hundreds of jobs does not re-parse its globs per file.

use regex::Regex;

/// Brace expansion stops after this many alternatives: past it, the
/// remaining alternatives are dropped rather than letting `{a,b}{c,d}...`
/// grow without bound.
const MAX_ALTERNATIVES: usize = 1024;

/// A compiled `File.fnmatch?` pattern.
#[derive(Clone, Debug)]
pub(crate) struct FnMatch {
    matcher: Matcher,
}

/// The common `**/*.ext` and `**/Name` forms are matched directly, as
/// GitLab itself does for `exists`; compiling a regular expression for
/// each of them costs more than the matching.
#[derive(Clone, Debug)]
enum Matcher {
    /// `**/*<suffix>`: any path whose last segment ends with the suffix.
    Suffix(String),
    /// `**/<name>`: any path whose last segment is the name.
    Basename(String),
    /// Everything else; `None` matches nothing.
    Regex(Option<Regex>),
}

/// Whether `text` has no glob metacharacter and no separator.
fn is_literal_segment(text: &str) -> bool {
    !text.is_empty() && !text.contains(['*', '?', '[', ']', '{', '}', '\\', '/'])
}

impl FnMatch {
    /// Compiles `pattern`. Never fails: a pattern Ruby could never match
    /// compiles to one that matches nothing.
    pub(crate) fn new(pattern: &str) -> FnMatch {
        if let Some(rest) = pattern.strip_prefix("**/") {
            if let Some(suffix) = rest.strip_prefix('*').filter(|s| is_literal_segment(s)) {
                return FnMatch {
                    matcher: Matcher::Suffix(suffix.to_string()),
                };
            }
            if is_literal_segment(rest) {
                return FnMatch {
                    matcher: Matcher::Basename(rest.to_string()),
                };
            }
        }
        let mut alternatives = Vec::new();
        brace_expand(pattern, &mut alternatives);
        let translated: Vec<String> = alternatives.iter().filter_map(|a| translate(a)).collect();
        let regex = if translated.is_empty() {
            None
        } else {
            Regex::new(&format!("^(?:{})$", translated.join("|"))).ok()
        };
        FnMatch {
            matcher: Matcher::Regex(regex),
        }
    }

    /// Whether `path` (relative, `/`-separated) matches.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Suffix(suffix) => path.ends_with(suffix.as_str()),
            Matcher::Basename(name) => path
                .strip_suffix(name.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('/')),
            Matcher::Regex(regex) => regex.as_ref().is_some_and(|r| r.is_match(path)),
        }
    }
}

/// Ruby's `ruby_brace_expand`: the first top-level `{...}` group is expanded
/// into each of its comma-separated alternatives, recursively. A pattern
/// with an unbalanced `{` yields nothing; a lone `}` is literal.
fn brace_expand(pattern: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_ALTERNATIVES {
        return;
    }
    let bytes = pattern.as_bytes();
    let mut nest = 0usize;
    let mut lbrace = None;
    let mut rbrace = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                if nest == 0 {
                    lbrace = Some(i);
                }
                nest += 1;
            }
            b'}' if lbrace.is_some() => {
                nest -= 1;
                if nest == 0 {
                    rbrace = Some(i);
                    break;
                }
            }
            b'\\' => {
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let (Some(l), Some(r)) = (lbrace, rbrace) else {
        if lbrace.is_none() {
            out.push(pattern.to_string());
        }
        return;
    };
    let prefix = &pattern[..l];
    let suffix = &pattern[r + 1..];
    let mut start = l + 1;
    let mut depth = 0usize;
    let mut j = l + 1;
    while j <= r {
        let at_end = j == r;
        let c = bytes[j];
        if at_end || (c == b',' && depth == 0) {
            let alternative = format!("{prefix}{}{suffix}", &pattern[start..j]);
            brace_expand(&alternative, out);
            start = j + 1;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth = depth.saturating_sub(1);
        } else if c == b'\\' && j + 1 < r {
            j += 1;
        }
        j += 1;
    }
}

/// Translates one brace-free pattern into a regular expression body, or
/// `None` when Ruby could never match it (an unterminated `[`).
fn translate(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let n = chars.len();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut i = 0;
    loop {
        // At the start of a segment: a run of `**/` matches any number of
        // whole directories (Ruby collapses repeated slashes after it).
        if starts_with_globstar(&chars, i) {
            while starts_with_globstar(&chars, i) {
                i += 3;
                while i < n && chars[i] == '/' {
                    i += 1;
                }
            }
            out.push_str("(?:[^/]*/)*");
        }
        while i < n && chars[i] != '/' {
            match chars[i] {
                '*' => {
                    while i < n && chars[i] == '*' {
                        i += 1;
                    }
                    out.push_str("[^/]*");
                    continue;
                }
                '?' => out.push_str("[^/]"),
                '[' => {
                    let (class, next) = bracket(&chars, i + 1)?;
                    out.push_str(&class);
                    i = next;
                    continue;
                }
                '\\' => {
                    i += 1;
                    match chars.get(i) {
                        // An escaped slash still ends the segment.
                        Some('/') | None => continue,
                        Some(&c) => push_literal(&mut out, c),
                    }
                }
                c => push_literal(&mut out, c),
            }
            i += 1;
        }
        if i >= n {
            break;
        }
        out.push('/');
        i += 1;
    }
    Some(out)
}

fn starts_with_globstar(chars: &[char], i: usize) -> bool {
    chars.get(i) == Some(&'*') && chars.get(i + 1) == Some(&'*') && chars.get(i + 2) == Some(&'/')
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Ruby's `bracket`: parses the class that starts at `start` (just after
/// `[`) and returns its regex and the index after the closing `]`. Both
/// ends of a range always match, even a reversed one, as in Ruby.
fn bracket(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start;
    let mut negated = false;
    if matches!(chars.get(i), Some('!') | Some('^')) {
        negated = true;
        i += 1;
    }
    let mut items = String::new();
    loop {
        let c = *chars.get(i)?;
        if c == ']' {
            break;
        }
        let lo = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            let mut hi = *chars.get(i)?;
            if hi == '\\' {
                i += 1;
                hi = *chars.get(i)?;
            }
            i += 1;
            if lo <= hi {
                items.push_str(&format!("\\x{{{:x}}}-\\x{{{:x}}}", lo as u32, hi as u32));
            } else {
                items.push_str(&format!("\\x{{{:x}}}\\x{{{:x}}}", lo as u32, hi as u32));
            }
        } else {
            items.push_str(&format!("\\x{{{:x}}}", lo as u32));
        }
    }
    let class = match (negated, items.is_empty()) {
        // `[]` matches nothing; `[!]` matches any one character.
        (false, true) => "[^\\x{0}-\\x{10FFFF}]".to_string(),
        (true, true) => "[^/]".to_string(),
        (false, false) => format!("[[{items}]&&[^/]]"),
        (true, false) => format!("[^{items}/]"),
    };
    Some((class, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        FnMatch::new(pattern).is_match(path)
    }

    #[test]
    fn rule_90_star_does_not_cross_directories() {
        assert!(m("*.md", "README.md"));
        assert!(!m("*.md", "docs/README.md"));
        assert!(m("docs/*", "docs/a.md"));
        assert!(!m("docs/*", "docs/sub/a.md"));
    }

    #[test]
    fn rule_90_globstar_slash_matches_zero_or_more_directories() {
        assert!(m("**/*.c", "main.c"));
        assert!(m("**/*.c", "src/lib/main.c"));
        assert!(m(
            "subprojects/gstreamer/**/*",
            "subprojects/gstreamer/a/b/c.h"
        ));
        assert!(m(
            "subprojects/gstreamer/**/*",
            "subprojects/gstreamer/meson.build"
        ));
        assert!(!m(
            "subprojects/gstreamer/**/*",
            "subprojects/other/meson.build"
        ));
    }

    #[test]
    fn rule_90_trailing_globstar_is_a_single_star() {
        assert!(m("config/software/**", "config/software/a.rb"));
        assert!(!m("config/software/**", "config/software/x/a.rb"));
        assert!(m("a**b", "axxb"));
        assert!(!m("a**b", "ax/xb"));
    }

    #[test]
    fn rule_90_dotmatch_lets_wildcards_match_dotfiles() {
        assert!(m("*", ".gitlab-ci.yml"));
        assert!(m("**/*", ".ci/jobs.yml"));
        assert!(m("?gitignore", ".gitignore"));
        assert!(m(".ci-farms-disabled/*", ".ci-farms-disabled/microsoft"));
    }

    #[test]
    fn rule_90_extglob_braces_expand_including_nested() {
        assert!(m("{alpha,beta}/x", "alpha/x"));
        assert!(m("{alpha,beta}/x", "beta/x"));
        assert!(!m("{alpha,beta}/x", "gamma/x"));
        assert!(m("src/**/*.{c,h{,pp}}", "src/a/b.hpp"));
        assert!(m("src/**/*.{c,h{,pp}}", "src/b.h"));
        assert!(m("{a}", "a"));
        // A `{` without its `}` makes Ruby's expansion yield nothing.
        assert!(!m("{a,b", "{a,b"));
        assert!(m("a}", "a}"));
    }

    #[test]
    fn rule_90_classes_and_escapes() {
        assert!(m("file[0-9].txt", "file7.txt"));
        assert!(!m("file[!0-9].txt", "file7.txt"));
        assert!(m("file[^0-9].txt", "filex.txt"));
        assert!(!m("a[/]b", "a/b"));
        assert!(!m("a[!x]b", "a/b"));
        assert!(m("[z-a]", "z"));
        assert!(!m("[z-a]", "m"));
        assert!(!m("[abc", "a"));
        assert!(m("\\*.md", "*.md"));
        assert!(!m("\\*.md", "a.md"));
        // `[]` is an empty class in Ruby, so `a[]]` can never match.
        assert!(!m("a[]]", "a]"));
    }

    #[test]
    fn rule_90_direct_forms_agree_with_the_general_translation() {
        let general = |pattern: &str, path: &str| {
            let body = translate(pattern).unwrap();
            Regex::new(&format!("^(?:{body})$")).unwrap().is_match(path)
        };
        let paths = [
            "a.c",
            "x/y/a.c",
            ".c",
            "x/.c",
            "a.cc",
            "Gemfile",
            "x/Gemfile",
            "xGemfile",
            "x/Gemfile.lock",
        ];
        for pattern in ["**/*.c", "**/Gemfile", "**/*"] {
            for path in paths {
                assert_eq!(
                    m(pattern, path),
                    general(pattern, path),
                    "{pattern} vs {path}"
                );
            }
        }
        assert!(matches!(FnMatch::new("**/*.c").matcher, Matcher::Suffix(_)));
        assert!(matches!(
            FnMatch::new("**/Gemfile").matcher,
            Matcher::Basename(_)
        ));
    }

    #[test]
    fn rule_90_regex_metacharacters_are_literal() {
        assert!(m("a+b(c).txt", "a+b(c).txt"));
        assert!(!m("a.b", "axb"));
        assert!(m("$DIR/x", "$DIR/x"));
    }

    #[test]
    fn rule_90_case_sensitive_and_anchored() {
        assert!(!m("Dockerfile", "dockerfile"));
        assert!(!m("Dockerfile", "docker/Dockerfile"));
        assert!(!m("/docs/*", "docs/a"));
    }
}
