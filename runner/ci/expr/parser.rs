//! Builds the expression tree with GitLab's algorithm: a shunting-yard pass
//! to reverse Polish notation, then a stack machine that builds the nodes.
//!
//! The algorithm is reproduced rather than replaced by a grammar because its
//! leniency is part of what GitLab accepts: operands and operators are never
//! checked to alternate, so `== $A $B` is `$A == $B`, and an empty pair of
//! parentheses vanishes (`$A ()` is `$A`).

use std::ops::Range;

use super::api::ExprError;
use super::lexer::{self, Op, Token, TokenKind};
use super::regex_literal::{self, Pattern};

pub(crate) const EMPTY_PARSE_TREE: &str = "Empty parse tree";
pub(crate) const UNREACHABLE_NODES: &str = "Unreachable nodes in parse tree";
pub(crate) const UNMATCHED_PARENTHESIS: &str = "Unmatched parenthesis";
pub(crate) const UNPROCESSABLE_PAREN: &str =
    "Unprocessable token found in parse tree: parenthesis_open";
pub(crate) const INVALID_LEFT_OPERAND: &str = "Invalid left operand";
pub(crate) const INVALID_REGEX: &str = "Invalid regular expression!";

/// GitLab's precedence for `(` on the operator stack: above every operator,
/// so nothing pops it but `)`.
const PAREN_OPEN_PRECEDENCE: u16 = 901;
/// And for `)`, which pops every operator down to the `(`.
const PAREN_CLOSE_PRECEDENCE: u16 = 900;

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    /// Bytes of the expression text this node was written as.
    pub(crate) span: Range<usize>,
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Variable(Box<str>),
    Input(Box<str>),
    Str(Box<str>),
    Pattern(Box<Pattern>),
    Null,
    Bool(bool),
    Binary { op: Op, left: usize, right: usize },
}

impl Node {
    pub(crate) fn input_name(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Input(name) => Some(name),
            _ => None,
        }
    }
}

/// Parses `text` into a node arena and the index of its root.
pub(crate) fn parse(text: &str) -> Result<(Vec<Node>, usize), ExprError> {
    let tokens = lexer::tokenize(text)?;
    if tokens.is_empty() {
        return Err(ExprError::new(EMPTY_PARSE_TREE, 0));
    }
    let rpn = to_rpn(&tokens)?;
    build(&rpn)
}

fn stack_precedence(token: &Token<'_>) -> u16 {
    match token.kind {
        TokenKind::Op(op) => op.precedence(),
        _ => PAREN_OPEN_PRECEDENCE,
    }
}

/// GitLab's `tokens_rpn`. An incoming operator pops every stacked operator
/// whose precedence number is not higher (left associativity); `)` pops down
/// to its `(`. Left-over `(` stay in the output and fail when built.
fn to_rpn<'a, 't>(tokens: &'a [Token<'t>]) -> Result<Vec<&'a Token<'t>>, ExprError> {
    let mut output = Vec::with_capacity(tokens.len());
    let mut operators: Vec<&Token<'t>> = Vec::new();
    for token in tokens {
        let incoming = match token.kind {
            TokenKind::ParenOpen => {
                operators.push(token);
                continue;
            }
            TokenKind::ParenClose => PAREN_CLOSE_PRECEDENCE,
            TokenKind::Op(op) => op.precedence(),
            _ => {
                output.push(token);
                continue;
            }
        };
        while let Some(top) = operators.last() {
            if incoming < stack_precedence(top) {
                break;
            }
            output.push(*top);
            operators.pop();
        }
        if token.kind == TokenKind::ParenClose {
            if operators.pop().is_none() {
                return Err(ExprError::new(UNMATCHED_PARENTHESIS, token.start));
            }
        } else {
            operators.push(token);
        }
    }
    output.extend(operators.into_iter().rev());
    Ok(output)
}

/// GitLab's `tree`: values are pushed, operators take the top two.
fn build(rpn: &[&Token<'_>]) -> Result<(Vec<Node>, usize), ExprError> {
    let mut nodes: Vec<Node> = Vec::with_capacity(rpn.len());
    let mut results: Vec<usize> = Vec::new();
    for token in rpn {
        let span = token.start..token.end;
        let kind = match token.kind {
            TokenKind::Op(op) => {
                let right = results.pop();
                let left = results.pop();
                let (Some(left), Some(right)) = (left, right) else {
                    return Err(ExprError::new(INVALID_LEFT_OPERAND, token.start));
                };
                let start = span
                    .start
                    .min(nodes[left].span.start)
                    .min(nodes[right].span.start);
                let end = span
                    .end
                    .max(nodes[left].span.end)
                    .max(nodes[right].span.end);
                nodes.push(Node {
                    kind: NodeKind::Binary { op, left, right },
                    span: start..end,
                });
                results.push(nodes.len() - 1);
                continue;
            }
            TokenKind::ParenOpen | TokenKind::ParenClose => {
                return Err(ExprError::new(UNPROCESSABLE_PAREN, token.start));
            }
            TokenKind::Variable(name) => NodeKind::Variable(name.into()),
            TokenKind::Input(name) => NodeKind::Input(name.into()),
            TokenKind::Str(text) => NodeKind::Str(text.into()),
            TokenKind::Null => NodeKind::Null,
            TokenKind::Bool(value) => NodeKind::Bool(value),
            TokenKind::Pattern(text) => match regex_literal::fabricate_cached(text) {
                Some(pattern) => NodeKind::Pattern(Box::new(pattern)),
                None => return Err(ExprError::new(INVALID_REGEX, token.start)),
            },
        };
        nodes.push(Node { kind, span });
        results.push(nodes.len() - 1);
    }
    match results.as_slice() {
        [root] => Ok((nodes, *root)),
        [] => Err(ExprError::new(EMPTY_PARSE_TREE, 0)),
        [_, second, ..] => Err(ExprError::new(UNREACHABLE_NODES, nodes[*second].span.start)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as a fully parenthesised string, to check its shape.
    fn shape(text: &str) -> String {
        let (nodes, root) = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        fn render(nodes: &[Node], at: usize) -> String {
            match &nodes[at].kind {
                NodeKind::Variable(n) => format!("${n}"),
                NodeKind::Input(n) => format!("input.{n}"),
                NodeKind::Str(s) => format!("{s:?}"),
                NodeKind::Pattern(p) => p.written().to_string(),
                NodeKind::Null => "null".into(),
                NodeKind::Bool(b) => b.to_string(),
                NodeKind::Binary { op, left, right } => {
                    let symbol = match op {
                        Op::Equals => "==",
                        Op::NotEquals => "!=",
                        Op::Matches => "=~",
                        Op::NotMatches => "!~",
                        Op::And => "&&",
                        Op::Or => "||",
                    };
                    format!(
                        "({} {symbol} {})",
                        render(nodes, *left),
                        render(nodes, *right)
                    )
                }
            }
        }
        render(&nodes, root)
    }

    fn error(text: &str) -> ExprError {
        parse(text).expect_err("should not parse")
    }

    #[test]
    fn rule_103_and_binds_tighter_than_or() {
        assert_eq!(shape("$A || $B && $C"), "($A || ($B && $C))");
        assert_eq!(shape("$A && $B || $C"), "(($A && $B) || $C)");
        assert_eq!(
            shape(r#"$A =~ /^content.*/ || $B =~ /thing$/ && $C"#),
            "(($A =~ /^content.*/) || (($B =~ /thing$/) && $C))"
        );
    }

    #[test]
    fn rule_103_operators_are_left_associative() {
        assert_eq!(shape("$A || $B || $C"), "(($A || $B) || $C)");
        assert_eq!(shape("$A == $B == $C"), "(($A == $B) == $C)");
    }

    #[test]
    fn rule_103_parentheses_group_first() {
        assert_eq!(shape("($A || $B) && $C"), "(($A || $B) && $C)");
        assert_eq!(
            shape(
                r#"$CI_COMMIT_BRANCH == "my-branch" || (($V1 == "thing" || $V2 == "thing") && $V3)"#
            ),
            r#"(($CI_COMMIT_BRANCH == "my-branch") || ((($V1 == "thing") || ($V2 == "thing")) && $V3))"#
        );
        assert_eq!(shape("((($A)))"), "$A");
    }

    #[test]
    fn gitlab_accepts_operators_out_of_place() {
        // The shunting-yard pass never checks that operands and operators
        // alternate; GitLab accepts these too.
        assert_eq!(shape("== $A $B"), "($A == $B)");
        assert_eq!(shape("$A $B =="), "($A == $B)");
        assert_eq!(shape("$A ()"), "$A");
        assert_eq!(shape("() $A"), "$A");
    }

    #[test]
    fn rule_120_structural_errors() {
        assert_eq!(error("$A ==").message, INVALID_LEFT_OPERAND);
        assert_eq!(error("$A ==").offset, 3);
        assert_eq!(error("&&").message, INVALID_LEFT_OPERAND);
        let e = error("$A $B");
        assert_eq!((e.message.as_str(), e.offset), (UNREACHABLE_NODES, 3));
        let e = error("$A == $B)");
        assert_eq!((e.message.as_str(), e.offset), (UNMATCHED_PARENTHESIS, 8));
        let e = error("($A == $B");
        assert_eq!((e.message.as_str(), e.offset), (UNPROCESSABLE_PAREN, 0));
        assert_eq!(error("()").message, EMPTY_PARSE_TREE);
        assert_eq!(error("").message, EMPTY_PARSE_TREE);
        assert_eq!(error("   ").message, EMPTY_PARSE_TREE);
    }

    #[test]
    fn rule_111_invalid_regex_literal_is_a_syntax_error() {
        let e = error("$A =~ /(unclosed/");
        assert_eq!((e.message.as_str(), e.offset), (INVALID_REGEX, 6));
        assert_eq!(error("$A =~ /(?<!x)y/").message, INVALID_REGEX);
        assert_eq!(error("$A =~ /ab\\1/").message, INVALID_REGEX);
    }

    #[test]
    fn spans_cover_the_sub_expression_as_written() {
        let text = r#"($A == "x") && $B"#;
        let (nodes, root) = parse(text).expect("parses");
        assert_eq!(&text[nodes[root].span.clone()], &text[1..]);
        let NodeKind::Binary { left, .. } = nodes[root].kind else {
            panic!("root is a binary node");
        };
        assert_eq!(&text[nodes[left].span.clone()], r#"$A == "x""#);
    }
}
