//! Expanding `$NAME` references in one string, the three ways that matter:
//!
//! - GitLab expanding a keyword value (`environment:name`, `resource_group`,
//!   `rules:changes` paths, ...): `$v`, `${v}` and `%v%` on every OS
//!   (rule 193). This is GitLab's `ExpandVariables`.
//! - GitLab expanding one variable's value against the variables before it
//!   (`Collection#expand_value`), which also knows `$$` and `%%` as
//!   escapes and leaves them for the runner (rules 179, 180). Used by
//!   `resolve.rs`.
//! - The runner's single pass over image names, cache keys, artifact names
//!   and variables (rule 190): Go's `os.Expand` with the runner's mapping.
//!
//! GitLab's side never expands recursively inside one string: the recursion
//! of rule 180 comes from expanding every variable once, in dependency order,
//! before any keyword is expanded against the result (`resolve.rs`). So the
//! lookup given to `expand_gitlab` should be that expanded set.
//!
//! All references are ASCII, so the scanners work on bytes and only ever
//! cut the text next to an ASCII byte, which is always a char boundary.

/// `[a-zA-Z_]`: a byte that may start a GitLab variable name.
fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

/// `[a-zA-Z0-9_]`: a byte that may continue a GitLab variable name. Go's
/// `isAlphaNum` accepts the same set.
fn is_name_byte(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// The length of the name starting at `s[at]`, or 0 if none starts there.
fn name_len(s: &[u8], at: usize) -> usize {
    match s.get(at) {
        Some(&b) if is_name_start(b) => s[at..].iter().take_while(|&&b| is_name_byte(b)).count(),
        _ => 0,
    }
}

/// One thing GitLab's reference scanner found in a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `$NAME`, `${NAME}` or `%NAME%`: `name` is NAME, `text` the whole match.
    Ref { name: &'a str, text: &'a str },
    /// `$$`, `%%` or `${}` in the collection dialect: kept as written.
    Escape(&'a str),
    /// Anything else, copied as is.
    Literal(&'a str),
}

/// Which of GitLab's two reference regexes to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `ExpandVariables::VARIABLES_REGEXP`: `$v`, `${v}`, `%v%`. `$$` is not
    /// special, so `$$A` is a `$` followed by a reference to `A`.
    Keyword,
    /// `Collection::Item::VARIABLES_REGEXP`: the same, but `$$`, `%%` and
    /// `${}` match first and are left alone.
    Collection,
}

/// Splits `text` into literals, escapes and references, leftmost match
/// first, as Ruby's `gsub` walks a regex over it.
pub(crate) fn tokenize(text: &str, dialect: Dialect) -> Vec<Token<'_>> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut literal_from = 0;
    let mut i = 0;
    while i < s.len() {
        let found = match s[i] {
            b'$' => match_dollar(s, i, dialect),
            b'%' => match_percent(s, i, dialect),
            _ => None,
        };
        let Some((len, name)) = found else {
            i += 1;
            continue;
        };
        if literal_from < i {
            out.push(Token::Literal(&text[literal_from..i]));
        }
        let whole = &text[i..i + len];
        out.push(match name {
            Some((from, to)) => Token::Ref {
                name: &text[from..to],
                text: whole,
            },
            None => Token::Escape(whole),
        });
        i += len;
        literal_from = i;
    }
    if literal_from < s.len() {
        out.push(Token::Literal(&text[literal_from..]));
    }
    out
}

/// A match at a `$`: its length and the byte range of the name, if any.
type Found = Option<(usize, Option<(usize, usize)>)>;

fn match_dollar(s: &[u8], i: usize, dialect: Dialect) -> Found {
    if dialect == Dialect::Collection && s.get(i + 1) == Some(&b'$') {
        return Some((2, None));
    }
    let n = name_len(s, i + 1);
    if n > 0 {
        return Some((1 + n, Some((i + 1, i + 1 + n))));
    }
    if s.get(i + 1) == Some(&b'{') {
        let n = name_len(s, i + 2);
        if s.get(i + 2 + n) == Some(&b'}') {
            if n > 0 {
                return Some((3 + n, Some((i + 2, i + 2 + n))));
            }
            if dialect == Dialect::Collection {
                return Some((3, None));
            }
        }
    }
    None
}

fn match_percent(s: &[u8], i: usize, dialect: Dialect) -> Found {
    if dialect == Dialect::Collection && s.get(i + 1) == Some(&b'%') {
        return Some((2, None));
    }
    let n = name_len(s, i + 1);
    if n > 0 && s.get(i + 1 + n) == Some(&b'%') {
        return Some((2 + n, Some((i + 1, i + 1 + n))));
    }
    None
}

/// The names a value refers to, in order, as GitLab's `Item#depends_on`
/// finds them (collection dialect, so `$$A` refers to nothing).
pub(crate) fn references(text: &str) -> Vec<&str> {
    tokenize(text, Dialect::Collection)
        .into_iter()
        .filter_map(|t| match t {
            Token::Ref { name, .. } => Some(name),
            _ => None,
        })
        .collect()
}

fn expand_keyword<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
    keep_unknown: bool,
) -> String {
    if !text.contains(['$', '%']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for token in tokenize(text, Dialect::Keyword) {
        match token {
            Token::Literal(t) | Token::Escape(t) => out.push_str(t),
            Token::Ref { name, text } => match lookup(name) {
                Some(value) => out.push_str(value),
                None if keep_unknown => out.push_str(text),
                None => {}
            },
        }
    }
    out
}

/// GitLab's expansion of a keyword value (`ExpandVariables.expand_existing`):
/// `$v`, `${v}` and `%v%` are replaced by the value `lookup` gives; a name
/// it does not know is left as written, for the runner to try (rule 180).
///
/// `$$` is not an escape here: GitLab's keyword regex does not know it, so
/// `$$A` becomes `$` followed by A's value. `lookup` should answer from the
/// expanded variables (`sort_and_expand_all`); this function does not
/// recurse into the values it inserts.
pub fn expand_gitlab<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    expand_keyword(text, lookup, true)
}

/// Like [`expand_gitlab`], but a name `lookup` does not know becomes the
/// empty string (`ExpandVariables.expand`). Which of the two a keyword uses
/// is that keyword's business.
pub fn expand_gitlab_or_blank<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    expand_keyword(text, lookup, false)
}

/// Go's `isShellSpecialVar`: one byte that names a shell special variable.
fn is_shell_special(b: u8) -> bool {
    matches!(
        b,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// Go's `getShellName` on the text after a `$`: the name and how many bytes
/// it took. `("", n > 0)` is bad syntax, which `os.Expand` swallows.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match b[1..].iter().position(|&c| c == b'}') {
            Some(0) => ("", 2),
            Some(p) => (&s[1..1 + p], p + 2),
            None => ("", 1),
        };
    }
    if is_shell_special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b.iter().take_while(|&&c| is_name_byte(c)).count();
    (&s[..n], n)
}

/// The runner's mapping (`Variables.Get`): `$$` gives `$`, positional and
/// special parameters give nothing, any other name its value or nothing.
fn runner_value<'a>(name: &str, lookup: &impl Fn(&str) -> Option<&'a str>) -> &'a str {
    match name {
        "$" => "$",
        "*" | "#" | "@" | "!" | "?" | "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" => {
            ""
        }
        _ => lookup(name).unwrap_or(""),
    }
}

/// The runner's single expansion pass (rule 190), byte for byte Go's
/// `os.Expand` with the runner's mapping:
///
/// - `$NAME` (ASCII letters, digits, `_`, longest run) and `${ANYTHING}`
///   become the value, or nothing if unknown;
/// - `$$` becomes `$` (rule 179); `$1`, `$*`, `$#`, `$@`, `$!`, `$?`, `$0`
///   become nothing; `$-` looks up a variable named `-`;
/// - `${}` and an unclosed `${` are swallowed; a `$` before anything else,
///   or at the end, stays;
/// - `%NAME%` is not a reference.
pub fn expand_runner<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&text[copied_to..j]);
            let (name, width) = shell_name(&text[j + 1..]);
            if !name.is_empty() {
                out.push_str(runner_value(name, &lookup));
            } else if width == 0 {
                out.push('$');
            }
            j += width;
            copied_to = j + 1;
        }
        j += 1;
    }
    out.push_str(&text[copied_to.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn map(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    fn gitlab(text: &str, pairs: &[(&'static str, &'static str)]) -> String {
        let m = map(pairs);
        expand_gitlab(text, |k| m.get(k).copied())
    }

    fn runner(text: &str, pairs: &[(&'static str, &'static str)]) -> String {
        let m = map(pairs);
        expand_runner(text, |k| m.get(k).copied())
    }

    #[test]
    fn rule_193_gitlab_accepts_dollar_braces_and_percent_forms() {
        let v = [("NAME", "x")];
        assert_eq!(gitlab("a-$NAME-b", &v), "a-x-b");
        assert_eq!(gitlab("a-${NAME}-b", &v), "a-x-b");
        assert_eq!(gitlab("a-%NAME%-b", &v), "a-x-b");
        assert_eq!(gitlab("$NAME$NAME", &v), "xx");
    }

    #[test]
    fn rule_180_gitlab_leaves_unknown_references_untouched() {
        assert_eq!(gitlab("$NOPE ${NOPE} %NOPE%", &[]), "$NOPE ${NOPE} %NOPE%");
        let m = map(&[]);
        assert_eq!(
            expand_gitlab_or_blank("a$NOPE-b", |k| m.get(k).copied()),
            "a-b"
        );
    }

    #[test]
    fn gitlab_names_are_ascii_and_greedy() {
        let v = [("A", "1"), ("AB", "2")];
        assert_eq!(gitlab("$AB", &v), "2");
        assert_eq!(gitlab("$A.B", &v), "1.B");
        assert_eq!(gitlab("$1A", &v), "$1A");
        assert_eq!(gitlab("${A", &v), "${A");
        assert_eq!(gitlab("${}", &v), "${}");
        assert_eq!(gitlab("%A", &v), "%A");
        assert_eq!(gitlab("100%A%", &v), "1001");
        assert_eq!(gitlab("é$A€", &v), "é1€");
    }

    #[test]
    fn keyword_dialect_has_no_dollar_escape() {
        // GitLab's keyword regex does not know `$$`; only the runner does.
        assert_eq!(gitlab("$$A", &[("A", "1")]), "$1");
        assert_eq!(gitlab("%%A%", &[("A", "1")]), "%1");
    }

    #[test]
    fn rule_179_collection_dialect_keeps_escapes() {
        let toks = tokenize("$$A %%B% ${} $C", Dialect::Collection);
        assert_eq!(
            toks,
            [
                Token::Escape("$$"),
                Token::Literal("A "),
                Token::Escape("%%"),
                Token::Literal("B% "),
                Token::Escape("${}"),
                Token::Literal(" "),
                Token::Ref {
                    name: "C",
                    text: "$C"
                },
            ]
        );
        assert_eq!(references("$$A %%B% ${C} %D% $E"), ["C", "D", "E"]);
    }

    #[test]
    fn rule_190_runner_expands_dollar_forms_only() {
        let v = [("NAME", "x")];
        assert_eq!(runner("a-$NAME-b", &v), "a-x-b");
        assert_eq!(runner("a-${NAME}-b", &v), "a-x-b");
        assert_eq!(runner("a-%NAME%-b", &v), "a-%NAME%-b");
        assert_eq!(runner("a-$NOPE-b", &v), "a--b");
    }

    #[test]
    fn rule_179_runner_turns_double_dollar_into_one() {
        assert_eq!(runner("cost: $$5", &[]), "cost: $5");
        assert_eq!(runner("$$NAME", &[("NAME", "x")]), "$NAME");
        assert_eq!(runner("${$}", &[]), "$");
    }

    #[test]
    fn os_expand_special_and_positional_names() {
        let v = [("A", "1"), ("-", "dash")];
        assert_eq!(runner("$1$*$#$@$!$?$0", &v), "");
        assert_eq!(runner("$12", &v), "2");
        assert_eq!(runner("$-", &v), "dash");
        assert_eq!(runner("${*}x", &v), "x");
        assert_eq!(runner("${1}x", &v), "x");
    }

    #[test]
    fn os_expand_bad_syntax_and_stray_dollars() {
        let v = [("A", "1")];
        assert_eq!(runner("a${}b", &v), "ab");
        assert_eq!(runner("a${A", &v), "aA");
        assert_eq!(runner("a$", &v), "a$");
        assert_eq!(runner("$", &v), "$");
        assert_eq!(runner("a$ b", &v), "a$ b");
        assert_eq!(runner("a$.b", &v), "a$.b");
        assert_eq!(runner("$é", &v), "$é");
        assert_eq!(runner("${A-x}", &v), "");
        assert_eq!(runner("${a b}", &[("a b", "sp")]), "sp");
        assert_eq!(runner("no refs", &v), "no refs");
    }

    proptest! {
        #[test]
        fn tokens_cover_the_text_exactly(text in "(\\PC|[$%{}_A-Z])*") {
            for dialect in [Dialect::Keyword, Dialect::Collection] {
                let joined: String = tokenize(&text, dialect)
                    .into_iter()
                    .map(|t| match t {
                        Token::Literal(s) | Token::Escape(s) => s,
                        Token::Ref { text, .. } => text,
                    })
                    .collect();
                prop_assert_eq!(&joined, &text);
            }
        }

        #[test]
        fn expanders_never_panic(text in "(\\PC|[$%{}_A-Z0-9*#@!?-])*") {
            let m = map(&[("A", "$A"), ("B", "%B%"), ("_", "")]);
            let lookup = |k: &str| m.get(k).copied();
            let _ = expand_gitlab(&text, lookup);
            let _ = expand_gitlab_or_blank(&text, lookup);
            let _ = expand_runner(&text, lookup);
            // Without references, text comes back unchanged.
            let plain = text.replace(['$', '%'], "");
            prop_assert_eq!(expand_runner(&plain, lookup), plain.clone());
            prop_assert_eq!(expand_gitlab(&plain, lookup), plain);
        }
    }
}
