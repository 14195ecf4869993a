//! The public face of the expression module: parsed expressions, their
//! errors, variable lookup and the evaluation trace used by `--why`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Range;

use super::parser::{self, Node};

/// The message GitLab attaches to a `rules:if`, `workflow:rules:if`,
/// `include:rules:if` or `only/except:variables` entry whose expression does
/// not parse. GitLab prints it after the key path and lowercases the whole
/// line: `jobs:build:rules:rule if invalid expression syntax`.
pub const INVALID_EXPRESSION_SYNTAX: &str = "Invalid expression syntax";

/// Where an expression finds the values of `$VARIABLE`s.
///
/// `None` means the variable is not defined, which the expression language
/// treats as `null` (rule 107). A defined but empty variable is `Some("")`.
pub trait VarLookup {
    /// The value of the variable `name` (without the `$`).
    fn lookup(&self, name: &str) -> Option<&str>;

    /// The value of `$[[ inputs.name ]]` when such a lexeme survives to
    /// evaluation time. In `rules:if` inputs have already been interpolated
    /// into the text, and GitLab evaluates any leftover lexeme to `null`,
    /// which is what the default does. Only `spec:inputs` rules, which GitLab
    /// evaluates against the inputs themselves, need to override it.
    fn lookup_input(&self, _name: &str) -> Option<&str> {
        None
    }
}

impl<S: BuildHasher> VarLookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }

    fn lookup_input(&self, name: &str) -> Option<&str> {
        (**self).lookup_input(name)
    }
}

/// A statically invalid expression (rule 120).
///
/// `message` is the text GitLab's lexer or parser raises internally (for
/// example `Unknown lexeme found!`); what GitLab shows the user for any of
/// them is [`INVALID_EXPRESSION_SYNTAX`]. `offset` is the byte offset in the
/// expression text of the token at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    pub offset: usize,
}

impl ExprError {
    pub(crate) fn new(message: impl Into<String>, offset: usize) -> ExprError {
        ExprError {
            message: message.into(),
            offset,
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for ExprError {}

/// A parsed CI/CD variable expression. Parse once, evaluate many times:
/// regular expression literals are compiled during [`Expr::parse`].
#[derive(Clone, Debug)]
pub struct Expr {
    pub(super) text: Box<str>,
    pub(super) nodes: Vec<Node>,
    pub(super) root: usize,
}

impl Expr {
    /// Parses `text` as GitLab's lexer and parser would, including their
    /// quirks (see the module documentation).
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let (nodes, root) = parser::parse(text)?;
        Ok(Expr {
            text: text.into(),
            nodes,
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the condition holds: GitLab's `present?` on the result, so
    /// `null`, `false`, `""` and whitespace-only strings are false (rule 109).
    /// An error while evaluating makes the condition false (rule 120).
    pub fn evaluate(&self, vars: &dyn VarLookup) -> bool {
        self.eval_root(vars, None)
    }

    /// Like [`Expr::evaluate`], and records the value of every
    /// sub-expression that was evaluated, innermost first. Operands skipped
    /// by `&&`/`||` short-circuiting do not appear.
    pub fn explain(&self, vars: &dyn VarLookup) -> Explanation {
        let mut steps = Vec::new();
        let value = self.eval_root(vars, Some(&mut steps));
        Explanation { value, steps }
    }

    /// Names of the `$[[ inputs.name ]]` lexemes in the expression, in order
    /// of appearance, without duplicates.
    pub fn input_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for node in &self.nodes {
            if let Some(name) = node.input_name() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The outcome of [`Expr::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The final truthiness, the same as [`Expr::evaluate`].
    pub value: bool,
    /// Evaluated sub-expressions, innermost first; the last one is the whole
    /// expression (unless evaluation failed part way).
    pub steps: Vec<ExplainStep>,
}

/// One evaluated sub-expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainStep {
    /// The sub-expression as written (without enclosing parentheses).
    pub text: String,
    /// Where `text` sits in the expression, in bytes.
    pub span: Range<usize>,
    /// Its value: `null`, `true`, `false`, a quoted string such as `"main"`,
    /// a regular expression such as `/^v\d+/i`, or `error: ...` when
    /// evaluation failed there.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Fragments that often combine into valid expressions, including every
    /// lexeme, odd regexes and things that are not lexemes at all.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "$A",
                "$B",
                "$EMPTY",
                "$PAT",
                "$UNSET",
                "null",
                "true",
                "false",
                "==",
                "!=",
                "=~",
                "!~",
                "&&",
                "||",
                "(",
                ")",
                "\"x\"",
                "'abc'",
                "\"\"",
                "/ab/",
                "/^a.*/i",
                r"/a\/b/",
                "/(x/",
                "/a{2,}b/",
                r"/\d+/",
                "$[[ inputs.x ]]",
                "/./",
                "${A}",
                "!",
                "=",
            ])
            .prop_map(str::to_string),
            "[ -~]{0,6}",
            "\\PC{0,4}",
        ]
    }

    fn variables() -> impl Strategy<Value = HashMap<String, String>> {
        let value = prop_oneof![
            Just(String::new()),
            Just(" ".to_string()),
            Just("/^ab.*/".to_string()),
            Just("/(/".to_string()),
            "\\PC{0,8}",
        ];
        prop::collection::hash_map(
            prop::sample::select(vec!["A", "B", "EMPTY", "PAT"]).prop_map(str::to_string),
            value,
            0..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
            let _ = Expr::parse(&text);
        }

        #[test]
        fn parse_and_evaluate_never_panic(
            parts in prop::collection::vec(fragment(), 0..14),
            vars in variables(),
        ) {
            let text = parts.join(" ");
            match Expr::parse(&text) {
                Ok(expr) => {
                    let value = expr.evaluate(&vars);
                    let explanation = expr.explain(&vars);
                    prop_assert_eq!(value, explanation.value);
                    for step in &explanation.steps {
                        prop_assert_eq!(&text[step.span.clone()], step.text.as_str());
                    }
                }
                Err(err) => prop_assert!(err.offset <= text.len()),
            }
        }

        #[test]
        fn regex_literals_never_panic(body in "[-a-z0-9\\\\()\\[\\]{}^$|*+?.:<>P=!,&~ /é]{0,24}", flags in "[ismU]{0,3}") {
            let _ = Expr::parse(&format!("$A =~ /{body}/{flags}"));
            let vars = HashMap::from([("P".to_string(), format!("/{body}/{flags}"))]);
            if let Ok(expr) = Expr::parse("$P =~ $P") {
                let _ = expr.evaluate(&vars);
            }
        }
    }

    #[test]
    fn lookup_works_for_both_map_types() {
        let hash = HashMap::from([("A".to_string(), "1".to_string())]);
        let btree = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let expr = Expr::parse("$A == '1' && $B == null").expect("parses");
        assert!(expr.evaluate(&hash));
        assert!(expr.evaluate(&btree));
        assert!(expr.evaluate(&&btree));
    }

    #[test]
    fn parsed_expressions_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + Clone>(_: &T) {}
        let expr = Expr::parse("$A =~ /^ab/").expect("parses");
        shareable(&expr);
        let vars = HashMap::from([("A".to_string(), "abc".to_string())]);
        let handle = std::thread::spawn({
            let expr = expr.clone();
            let vars = vars.clone();
            move || expr.evaluate(&vars)
        });
        assert_eq!(handle.join().ok(), Some(true));
        assert_eq!(expr.text(), "$A =~ /^ab/");
    }

    #[test]
    fn error_display_names_the_offset() {
        let err = Expr::parse("$A == ${B}").expect_err("invalid");
        assert_eq!(err.to_string(), "Unknown lexeme found! at offset 6");
    }
}
