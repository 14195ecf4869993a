//! Splits an expression into tokens the way GitLab's lexer does: at each
//! position, after skipping whitespace, the lexemes are tried in a fixed order
//! and the first that matches wins. There is no lookahead and no check that
//! tokens alternate sensibly; that is the parser's business.

use super::api::ExprError;
use super::regex_literal;

/// GitLab's `MAX_TOKENS`. Its loop scans at most this many tokens and only
/// checks for the end of the text at the start of an iteration, so an
/// expression of exactly 100 tokens is rejected too (rule 117).
pub(crate) const MAX_TOKENS: usize = 100;

pub(crate) const UNKNOWN_LEXEME: &str = "Unknown lexeme found!";
pub(crate) const TOO_MANY_TOKENS: &str = "Too many tokens!";

/// A binary operator. Precedences are GitLab's (lower binds tighter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    NotEquals,
    Matches,
    NotMatches,
    And,
    Or,
}

impl Op {
    pub(crate) fn precedence(self) -> u16 {
        match self {
            Op::Equals | Op::NotEquals | Op::Matches | Op::NotMatches => 10,
            Op::And => 11,
            Op::Or => 12,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind<'t> {
    ParenOpen,
    ParenClose,
    /// `$[[ inputs.name ]]`, holding `name`.
    Input(&'t str),
    /// `$NAME`, holding `NAME`.
    Variable(&'t str),
    /// A quoted string, holding the text between the quotes.
    Str(&'t str),
    /// A `/pattern/flags` literal, holding the whole lexeme.
    Pattern(&'t str),
    Null,
    Bool(bool),
    Op(Op),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'t> {
    pub(crate) kind: TokenKind<'t>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Ruby's `\s`: ASCII space, tab, newline, vertical tab, form feed, return.
fn is_ruby_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Ruby's `\w` without the `u` flag: ASCII letters, digits and `_`.
fn is_ruby_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_while(text: &str, mut pos: usize, pred: fn(u8) -> bool) -> usize {
    let bytes = text.as_bytes();
    while pos < bytes.len() && pred(bytes[pos]) {
        pos += 1;
    }
    pos
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, ExprError> {
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let mut pos = 0;
    for _ in 0..MAX_TOKENS {
        pos = skip_while(text, pos, is_ruby_space);
        if pos >= text.len() {
            return Ok(tokens);
        }
        let Some((kind, end)) = scan(text, pos) else {
            return Err(ExprError::new(UNKNOWN_LEXEME, pos));
        };
        tokens.push(Token {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    let offset = tokens.last().map_or(0, |t| t.start);
    Err(ExprError::new(TOO_MANY_TOKENS, offset))
}

/// Tries each lexeme at `pos` in GitLab's order; returns the token and
/// where it ends.
fn scan(text: &str, pos: usize) -> Option<(TokenKind<'_>, usize)> {
    let rest = &text[pos..];
    let at = |len: usize| pos + len;
    if rest.starts_with('(') {
        return Some((TokenKind::ParenOpen, at(1)));
    }
    if rest.starts_with(')') {
        return Some((TokenKind::ParenClose, at(1)));
    }
    if let Some((name, len)) = scan_input(rest) {
        return Some((TokenKind::Input(name), at(len)));
    }
    if let Some(stripped) = rest.strip_prefix('$') {
        let len = skip_while(stripped, 0, is_ruby_word);
        if len > 0 {
            return Some((TokenKind::Variable(&stripped[..len]), at(1 + len)));
        }
    }
    if let Some((content, len)) = scan_string(rest) {
        return Some((TokenKind::Str(content), at(len)));
    }
    if let Some(len) = regex_literal::scan_lexeme(rest) {
        return Some((TokenKind::Pattern(&rest[..len]), at(len)));
    }
    if rest.starts_with("null") {
        return Some((TokenKind::Null, at(4)));
    }
    // `\b(?:true|false)\b`: the text after the literal must not continue
    // with a word character.
    for (word, value) in [("true", true), ("false", false)] {
        if rest.starts_with(word)
            && !rest
                .as_bytes()
                .get(word.len())
                .is_some_and(|&b| is_ruby_word(b))
        {
            return Some((TokenKind::Bool(value), at(word.len())));
        }
    }
    let ops = [
        ("==", Op::Equals),
        ("=~", Op::Matches),
        ("!=", Op::NotEquals),
        ("!~", Op::NotMatches),
        ("&&", Op::And),
        ("||", Op::Or),
    ];
    ops.iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
        .map(|&(_, op)| (TokenKind::Op(op), at(2)))
}

/// `\$\[\[\s*inputs\.(\w+)\s*\]\]`
fn scan_input(rest: &str) -> Option<(&str, usize)> {
    if !rest.starts_with("$[[") {
        return None;
    }
    let mut pos = skip_while(rest, 3, is_ruby_space);
    if !rest[pos..].starts_with("inputs.") {
        return None;
    }
    pos += "inputs.".len();
    let name_start = pos;
    pos = skip_while(rest, pos, is_ruby_word);
    if pos == name_start {
        return None;
    }
    let name = &rest[name_start..pos];
    pos = skip_while(rest, pos, is_ruby_space);
    rest[pos..].starts_with("]]").then_some((name, pos + 2))
}

/// `"(.*?)"` or `'(.*?)'`: the shortest run up to the same quote. Ruby's `.`
/// does not cross a newline, and there are no escape sequences (rule 105).
fn scan_string(rest: &str) -> Option<(&str, usize)> {
    let quote = rest.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let body = &rest[1..];
    let close = body.find([quote, '\n'])?;
    (body.as_bytes()[close] == quote as u8).then(|| (&body[..close], close + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind<'_>> {
        tokenize(text)
            .expect("tokenizes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn error(text: &str) -> ExprError {
        tokenize(text).expect_err("should not tokenize")
    }

    #[test]
    fn rule_102_operators_and_parentheses() {
        assert_eq!(
            kinds("($A==$B)&&($C!=$D)||$E=~$F&&$G!~$H"),
            vec![
                TokenKind::ParenOpen,
                TokenKind::Variable("A"),
                TokenKind::Op(Op::Equals),
                TokenKind::Variable("B"),
                TokenKind::ParenClose,
                TokenKind::Op(Op::And),
                TokenKind::ParenOpen,
                TokenKind::Variable("C"),
                TokenKind::Op(Op::NotEquals),
                TokenKind::Variable("D"),
                TokenKind::ParenClose,
                TokenKind::Op(Op::Or),
                TokenKind::Variable("E"),
                TokenKind::Op(Op::Matches),
                TokenKind::Variable("F"),
                TokenKind::Op(Op::And),
                TokenKind::Variable("G"),
                TokenKind::Op(Op::NotMatches),
                TokenKind::Variable("H"),
            ]
        );
    }

    #[test]
    fn rule_104_variable_names_are_ascii_word_characters() {
        assert_eq!(
            kinds("$CI_COMMIT_REF_NAME"),
            vec![TokenKind::Variable("CI_COMMIT_REF_NAME")]
        );
        assert_eq!(kinds("$1x"), vec![TokenKind::Variable("1x")]);
        // `-` ends the name, and is then not a lexeme at all.
        assert_eq!(error("$A-B").offset, 2);
        assert_eq!(error("${A}").message, UNKNOWN_LEXEME);
        assert_eq!(error("%A%").offset, 0);
        assert_eq!(error("$").message, UNKNOWN_LEXEME);
    }

    #[test]
    fn rule_105_strings_have_no_escapes() {
        assert_eq!(kinds(r#""a\""#), vec![TokenKind::Str(r"a\")]);
        assert_eq!(kinds(r#"'say "hi"'"#), vec![TokenKind::Str(r#"say "hi""#)]);
        assert_eq!(kinds(r#""""#), vec![TokenKind::Str("")]);
        // Unterminated, or broken by a newline.
        assert_eq!(error(r#"$A == "abc"#).offset, 6);
        assert_eq!(error("$A == 'a\nb'").offset, 6);
    }

    #[test]
    fn rule_70_literals_and_inputs() {
        assert_eq!(
            kinds("null true false $[[ inputs.env ]] $[[inputs.x]]"),
            vec![
                TokenKind::Null,
                TokenKind::Bool(true),
                TokenKind::Bool(false),
                TokenKind::Input("env"),
                TokenKind::Input("x"),
            ]
        );
        // `true` needs a word boundary after it; `null` does not.
        assert_eq!(error("trueish").offset, 0);
        assert_eq!(kinds("nullnull"), vec![TokenKind::Null, TokenKind::Null]);
        assert_eq!(error("$[[ inputs.x ]").offset, 0);
    }

    #[test]
    fn rule_110_pattern_lexemes() {
        assert_eq!(
            kinds(r"$A =~ /^a\/b$/i"),
            vec![
                TokenKind::Variable("A"),
                TokenKind::Op(Op::Matches),
                TokenKind::Pattern(r"/^a\/b$/i"),
            ]
        );
        // The lexeme ends at the first closing slash that works.
        assert_eq!(
            kinds("/ab/ || /cd/"),
            vec![
                TokenKind::Pattern("/ab/"),
                TokenKind::Op(Op::Or),
                TokenKind::Pattern("/cd/"),
            ]
        );
    }

    #[test]
    fn rule_112_single_character_patterns_are_unknown_lexemes() {
        assert_eq!(error("$A =~ /./").offset, 6);
        assert_eq!(error("$A =~ /a/").message, UNKNOWN_LEXEME);
        assert_eq!(error("$A =~ issue-/.*/").offset, 6);
    }

    #[test]
    fn rule_117_at_most_99_tokens_fit() {
        let ninety_nine = vec!["$A"; 99].join(" ");
        assert_eq!(tokenize(&ninety_nine).map(|t| t.len()), Ok(99));
        let hundred = vec!["$A"; 100].join(" ");
        let err = error(&hundred);
        assert_eq!(err.message, TOO_MANY_TOKENS);
        assert_eq!(err.offset, 99 * 3);
        // Trailing whitespace does not count as a token.
        assert!(tokenize(&format!("{ninety_nine}   ")).is_ok());
    }

    #[test]
    fn whitespace_is_rubys_ascii_set() {
        assert_eq!(kinds("\t$A\x0b==\x0c\r\n$B "), kinds("$A == $B"));
        // A non-breaking space is not whitespace to Ruby's `\s`.
        assert_eq!(error("$A\u{a0}== $B").offset, 2);
    }

    #[test]
    fn empty_text_has_no_tokens() {
        assert_eq!(kinds(""), vec![]);
        assert_eq!(kinds("  \n "), vec![]);
    }
}
