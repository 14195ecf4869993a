//! The CI/CD variable expression language of `rules:if`,
//! `workflow:rules:if`, `include:rules:if` and `only/except:variables`.
//!
//! It follows GitLab's lexer, parser and evaluator, quirks included:
//! - Lexemes are tried in a fixed order with no lookahead; at most 99 tokens
//!   fit (GitLab's limit of 100 counts the end of the text as one).
//! - The parser is GitLab's shunting-yard algorithm, which accepts some
//!   oddly ordered expressions (`== $A $B`).
//! - `&&`/`||` return operands by Ruby truthiness and only the final value is
//!   judged by `present?`, so `$EMPTY || "x"` is false.
//! - A `/regex/` needs at least two characters between the slashes; regexes
//!   are RE2, translated for the `regex` crate.
//! - The right side of `=~` that is not a `/regex/` (after reading it the way
//!   GitLab does) is a substring test.
//!
//! `$[[ inputs.name ]]` lexemes are normally gone by the time a `rules:if`
//! is parsed, because inputs are interpolated into the file first. Any that
//! remain evaluate through [`VarLookup::lookup_input`], which is `null` by
//! default, as in GitLab.
//!
//! ```
//! use std::collections::HashMap;
//! use runner::ci::expr::Expr;
//!
//! let expr = Expr::parse(r#"$CI_COMMIT_BRANCH =~ /^release\/.*/ || $FORCE"#).unwrap();
//! let vars = HashMap::from([("CI_COMMIT_BRANCH".to_string(), "release/1.2".to_string())]);
//! assert!(expr.evaluate(&vars));
//! ```

mod api;
mod eval;
mod lexer;
mod parser;
mod re2;
mod regex_literal;

pub use api::{ExplainStep, Explanation, Expr, ExprError, INVALID_EXPRESSION_SYNTAX, VarLookup};
