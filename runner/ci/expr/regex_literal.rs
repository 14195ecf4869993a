//! `/pattern/flags` regular expressions: recognising the lexeme, reading a
//! text as pattern and flags the way GitLab does, and compiling it.
//!
//! GitLab turns a text into a regular expression in three steps, used both
//! for literals in the expression and for strings on the right of `=~`:
//! every `\/` becomes `/`; the text must then contain a line of the form
//! `/pattern/flags` (Ruby's `^` and `$` are line anchors); and `pattern`,
//! prefixed with `(?flags)`, must compile as RE2.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::re2;

/// GitLab's Pattern lexeme, `^/([^/]|\\/)+[^\\]/[ismU]*`: a slash, at least
/// one character that is not a slash (or an escaped slash), one more
/// character that is not a backslash, the closing slash, and flags. It needs
/// two characters between the slashes, so `/./` is not a lexeme (rule 112).
/// The crate's leftmost-first matching picks the same end as Ruby's
/// backtracking.
static LEXEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A/(?:[^/]|\\/)+[^\\]/[ismU]*").expect("constant pattern compiles")
});

/// GitLab's `RubySyntax::PATTERN`, `^/(?<regexp>.*)/(?<flags>[ismU]*)$`,
/// with Ruby's line-based anchors.
static RUBY_SYNTAX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^/(.*)/([ismU]*)$").expect("constant pattern compiles"));

/// The same patterns come back again and again: one literal is copied into
/// many jobs by `extends` and `!reference`, and `=~` operands from variables
/// repeat from one evaluation to the next. Compiling each text once per
/// thread keeps parsing and evaluation cheap. The bound only stops
/// unbounded growth.
const CACHE_LIMIT: usize = 1024;

thread_local! {
    static CACHE: RefCell<HashMap<Box<str>, Option<Pattern>>> = RefCell::new(HashMap::new());
}

/// A compiled regular expression and the text GitLab knows it by.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    regex: Regex,
    /// The RE2 source, `(?flags)pattern`: what GitLab compares when two
    /// patterns meet in `==`.
    source: Box<str>,
    /// The text it was read from, such as `/^v\d+/i`.
    written: Box<str>,
}

impl Pattern {
    /// `=~` succeeds when the pattern matches anywhere in the text (rule 113).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn written(&self) -> &str {
        &self.written
    }
}

/// The length of the Pattern lexeme at the start of `rest`, if there is one.
pub(crate) fn scan_lexeme(rest: &str) -> Option<usize> {
    if !rest.starts_with('/') {
        return None;
    }
    LEXEME.find(rest).map(|m| m.end())
}

/// Reads `text` as a `/pattern/flags` regular expression, or `None` when
/// GitLab would not take it for one (it is then compared as a plain string).
pub(crate) fn fabricate(text: &str) -> Option<Pattern> {
    // Without a line that starts with a slash there is nothing to read.
    if !text.starts_with('/') && !text.contains("\n/") {
        return None;
    }
    let unescaped = text.replace("\\/", "/");
    let caps = RUBY_SYNTAX.captures(&unescaped)?;
    let (body, flags) = (caps.get(1)?.as_str(), caps.get(2)?.as_str());
    let source = if flags.is_empty() {
        body.to_string()
    } else {
        format!("(?{flags}){body}")
    };
    let regex = Regex::new(&re2::translate(&source).ok()?).ok()?;
    Some(Pattern {
        regex,
        source: source.into(),
        written: text.into(),
    })
}

/// [`fabricate`] with a per-thread cache.
pub(crate) fn fabricate_cached(text: &str) -> Option<Pattern> {
    if !text.starts_with('/') && !text.contains("\n/") {
        return None;
    }
    CACHE.with(|cache| {
        if let Some(hit) = cache.borrow().get(text) {
            return hit.clone();
        }
        let built = fabricate(text);
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(text.into(), built.clone());
        built
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexeme(text: &str) -> Option<&str> {
        scan_lexeme(text).map(|len| &text[..len])
    }

    #[test]
    fn rule_110_lexeme_shapes() {
        assert_eq!(lexeme("/ab/"), Some("/ab/"));
        assert_eq!(lexeme("/ab/ismU rest"), Some("/ab/ismU"));
        assert_eq!(lexeme(r"/a\/b/ x"), Some(r"/a\/b/"));
        assert_eq!(lexeme("/ab/x"), Some("/ab/"));
        // The last character before the closing slash may itself be a slash.
        assert_eq!(lexeme("/ab// x"), Some("/ab//"));
        // ... but not a backslash: `/a\\/` cannot close.
        assert_eq!(lexeme(r"/a\\/"), None);
        assert_eq!(lexeme("//"), None);
        assert_eq!(lexeme("/ab"), None);
    }

    #[test]
    fn rule_110_lexeme_then_pattern_source() {
        let source = |text: &str| {
            let lexeme = lexeme(text).expect("a lexeme");
            fabricate(lexeme).map(|p| p.source().to_string())
        };
        // The lexeme ends at the first unescaped slash that can close it.
        assert_eq!(source("/some .* / pattern/").as_deref(), Some("some .* "));
        assert_eq!(
            source(r"/some .* \/ pattern/").as_deref(),
            Some("some .* / pattern")
        );
        assert_eq!(
            source(r"/some numeric \/$ pattern/").as_deref(),
            Some("some numeric /$ pattern")
        );
        // Only `\/` is unescaped; other escapes reach RE2 as written.
        assert_eq!(
            source(r"/some numeric \$ pattern/").as_deref(),
            Some(r"some numeric \$ pattern")
        );
        // Unsupported flags are not part of the lexeme.
        assert_eq!(source("/pattern/x").as_deref(), Some("pattern"));
        assert_eq!(source("/pattern/im").as_deref(), Some("(?im)pattern"));
    }

    #[test]
    fn rule_112_single_character_patterns_do_not_lex() {
        assert_eq!(lexeme("/./"), None);
        assert_eq!(lexeme("/a/"), None);
        assert_eq!(lexeme("/a/ && /b/"), None);
    }

    #[test]
    fn rule_110_flags_and_escaped_slashes() {
        let p = fabricate(r"/^release\/v\d+$/i").expect("valid");
        assert_eq!(p.source(), r"(?i)^release/v\d+$");
        assert!(p.is_match("RELEASE/v12"));
        assert!(!p.is_match("release/x"));
        assert_eq!(p.written(), r"/^release\/v\d+$/i");
        let plain = fabricate("/Abc/").expect("valid");
        assert_eq!(plain.source(), "Abc");
        assert!(!plain.is_match("abc"), "case-sensitive without i");
    }

    #[test]
    fn rule_111_invalid_regex_is_not_a_pattern() {
        assert!(fabricate("/(/").is_none());
        assert!(fabricate("/a(?=b)/").is_none());
        assert!(fabricate("abc").is_none());
        assert!(fabricate("/abc/x").is_none(), "x is not a flag");
    }

    #[test]
    fn ruby_anchors_are_line_based() {
        // A later line may hold the pattern.
        let p = fabricate("junk\n/^ab/").expect("second line");
        assert!(p.is_match("abc"));
        // A pattern split across lines is not one.
        assert!(fabricate("/a\nb/").is_none());
        // The greedy body runs to the last slash of the line.
        assert_eq!(
            fabricate("/a/b/").map(|p| p.source().to_string()),
            Some("a/b".into())
        );
    }

    #[test]
    fn cache_returns_the_same_answer() {
        for _ in 0..2 {
            assert!(fabricate_cached("/^ab.*/").is_some_and(|p| p.is_match("abcde")));
            assert!(fabricate_cached("/(/").is_none());
            assert!(fabricate_cached("plain").is_none());
        }
    }
}
