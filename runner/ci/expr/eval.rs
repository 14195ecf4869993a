//! Evaluation with GitLab's Ruby semantics.
//!
//! Every node evaluates to a Ruby value: `nil`, `true`/`false`, a string or
//! a regular expression. `&&` and `||` are Ruby's: they return one of their
//! operands, chosen by Ruby truthiness (only `nil` and `false` are false).
//! Only the final value is judged by `present?`, which also counts empty and
//! whitespace-only strings as false. So `$EMPTY || "x"` is false in GitLab:
//! `""` is truthy to `||`, which returns it, and it is not present.

use super::api::{ExplainStep, Expr, VarLookup};
use super::lexer::Op;
use super::parser::NodeKind;
use super::regex_literal::{self, Pattern};

/// What Ruby's `to_s` gives for GitLab's regular expression object; it
/// carries an object address in GitLab, which nothing can depend on.
const PATTERN_TO_S: &str = "#<Gitlab::UntrustedRegexp>";

#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    Pattern(&'a Pattern),
}

impl<'a> Value<'a> {
    /// Ruby truthiness, used by `&&` and `||`.
    fn is_truthy(self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    /// ActiveSupport's `present?`, used on the final result (rule 109).
    fn is_present(self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => b,
            Value::Str(s) => !s.chars().all(char::is_whitespace),
            Value::Pattern(_) => true,
        }
    }

    /// Ruby's `to_s`, applied to the left side of `=~`.
    fn to_s(self) -> &'a str {
        match self {
            Value::Null => "",
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            Value::Str(s) => s,
            Value::Pattern(_) => PATTERN_TO_S,
        }
    }

    fn render(self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Pattern(p) => p.written().to_string(),
        }
    }
}

/// A Ruby exception other than a syntax error, raised while evaluating. GitLab
/// treats the condition as false (rule 120).
#[derive(Debug)]
struct EvalError(&'static str);

struct Evaluator<'a, 's> {
    expr: &'a Expr,
    vars: &'a dyn VarLookup,
    steps: Option<&'s mut Vec<ExplainStep>>,
    failed: bool,
}

impl Expr {
    pub(super) fn eval_root(
        &self,
        vars: &dyn VarLookup,
        steps: Option<&mut Vec<ExplainStep>>,
    ) -> bool {
        let mut evaluator = Evaluator {
            expr: self,
            vars,
            steps,
            failed: false,
        };
        evaluator.eval(self.root).is_ok_and(Value::is_present)
    }
}

impl<'a> Evaluator<'a, '_> {
    fn eval(&mut self, at: usize) -> Result<Value<'a>, EvalError> {
        let expr = self.expr;
        let node = &expr.nodes[at];
        let result = match &node.kind {
            NodeKind::Variable(name) => Ok(self.vars.lookup(name).map_or(Value::Null, Value::Str)),
            NodeKind::Input(name) => {
                Ok(self.vars.lookup_input(name).map_or(Value::Null, Value::Str))
            }
            NodeKind::Str(s) => Ok(Value::Str(s)),
            NodeKind::Pattern(p) => Ok(Value::Pattern(p)),
            NodeKind::Null => Ok(Value::Null),
            NodeKind::Bool(b) => Ok(Value::Bool(*b)),
            NodeKind::Binary { op, left, right } => self.binary(*op, *left, *right),
        };
        if let Some(steps) = self.steps.as_deref_mut() {
            let value = match &result {
                Ok(value) => value.render(),
                // Only the node that failed reports the error, not the
                // parents it propagates through.
                Err(_) if self.failed => return result,
                Err(EvalError(message)) => {
                    self.failed = true;
                    format!("error: {message}")
                }
            };
            steps.push(ExplainStep {
                text: expr.text[node.span.clone()].to_string(),
                span: node.span.clone(),
                value,
            });
        }
        result
    }

    fn binary(&mut self, op: Op, left: usize, right: usize) -> Result<Value<'a>, EvalError> {
        match op {
            Op::And => {
                let l = self.eval(left)?;
                if l.is_truthy() {
                    self.eval(right)
                } else {
                    Ok(l)
                }
            }
            Op::Or => {
                let l = self.eval(left)?;
                if l.is_truthy() {
                    Ok(l)
                } else {
                    self.eval(right)
                }
            }
            Op::Equals | Op::NotEquals => {
                let l = self.eval(left)?;
                let r = self.eval(right)?;
                let equal = equals(l, r)?;
                Ok(Value::Bool(equal == (op == Op::Equals)))
            }
            Op::Matches | Op::NotMatches => {
                let text = self.eval(left)?;
                let pattern = self.eval(right)?;
                matches(text, pattern, op == Op::NotMatches).map(Value::Bool)
            }
        }
    }
}

/// Ruby's `==` between two values (rules 107, 108).
fn equals(left: Value<'_>, right: Value<'_>) -> Result<bool, EvalError> {
    Ok(match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        // GitLab's regular expression object compares `source`s, and asks
        // the other side for one even when it has none.
        (Value::Pattern(a), Value::Pattern(b)) => a.source() == b.source(),
        (Value::Pattern(_), _) => {
            return Err(EvalError(
                "only a regular expression can be compared with a regular expression",
            ));
        }
        _ => false,
    })
}

/// `=~` (or `!~` when `negate`), rules 113 to 115.
fn matches(text: Value<'_>, pattern: Value<'_>, negate: bool) -> Result<bool, EvalError> {
    let found = match pattern {
        // A null (or false) right-hand side never matches.
        Value::Null | Value::Bool(false) => return Ok(negate),
        Value::Bool(true) => return Err(EvalError("true is not a regular expression")),
        Value::Pattern(p) => p.is_match(text.to_s()),
        // A string holding `/.../` is used as a regular expression; any
        // other string is searched for the left side as a substring.
        Value::Str(s) => match regex_literal::fabricate_cached(s) {
            Some(p) => p.is_match(text.to_s()),
            None => s.contains(text.to_s()),
        },
    };
    Ok(found != negate)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eval(text: &str, pairs: &[(&str, &str)]) -> bool {
        Expr::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .evaluate(&vars(pairs))
    }

    #[test]
    fn rule_106_compare_variable_with_string_either_side() {
        let v = [("VARIABLE", "some value")];
        assert!(eval(r#"$VARIABLE == "some value""#, &v));
        assert!(eval(r#"$VARIABLE == 'some value'"#, &v));
        assert!(eval(r#""some value" == $VARIABLE"#, &v));
        assert!(!eval(r#"$VARIABLE != "some value""#, &v));
        assert!(eval(r#"$VARIABLE != "other""#, &v));
        assert!(!eval(r#"$VARIABLE == "Some value""#, &v), "case-sensitive");
    }

    #[test]
    fn rule_106_compare_two_variables() {
        let v = [("A", "main"), ("B", "main"), ("C", "dev")];
        assert!(eval("$A == $B", &v));
        assert!(!eval("$A != $B", &v));
        assert!(eval("$A != $C", &v));
        // Two undefined variables are both null, hence equal.
        assert!(eval("$X == $Y", &v));
        assert!(!eval("$A == $X", &v));
    }

    #[test]
    fn rule_107_undefined_equals_null() {
        assert!(eval("$VARIABLE == null", &[]));
        assert!(!eval("$VARIABLE != null", &[]));
        assert!(!eval("$VARIABLE == null", &[("VARIABLE", "")]));
        assert!(eval("$VARIABLE != null", &[("VARIABLE", "")]));
        assert!(eval("null == $VARIABLE", &[]));
    }

    #[test]
    fn rule_108_empty_is_not_undefined() {
        assert!(eval(r#"$VARIABLE == """#, &[("VARIABLE", "")]));
        assert!(!eval(r#"$VARIABLE != """#, &[("VARIABLE", "")]));
        assert!(
            !eval(r#"$VARIABLE == """#, &[]),
            "null is not the empty string"
        );
        assert!(eval(r#"$VARIABLE != ''"#, &[]));
    }

    #[test]
    fn rule_109_bare_variable_is_present() {
        assert!(eval("$VARIABLE", &[("VARIABLE", "x")]));
        assert!(
            eval("$VARIABLE", &[("VARIABLE", "false")]),
            "any non-blank string"
        );
        assert!(!eval("$VARIABLE", &[]));
        assert!(!eval("$VARIABLE", &[("VARIABLE", "")]));
        assert!(!eval("$VARIABLE", &[("VARIABLE", " \t\n")]));
        assert!(
            !eval("$VARIABLE", &[("VARIABLE", "\u{3000}")]),
            "Unicode space is blank"
        );
        assert!(!eval("false", &[]));
        assert!(eval("true", &[]));
        assert!(!eval("null", &[]));
        assert!(!eval(r#""  ""#, &[]));
    }

    #[test]
    fn rule_109_and_or_return_operands_by_ruby_truthiness() {
        let v = [("EMPTY", ""), ("B", "yes")];
        // "" is truthy to && and ||: `&&` moves on to B, `||` stops at "".
        assert!(eval("$EMPTY && $B", &v));
        assert!(!eval("$EMPTY || $B", &v));
        assert!(eval("$UNDEFINED || $B", &v));
        assert!(!eval("$UNDEFINED && $B", &v));
        // Short-circuiting skips an operand that would fail.
        assert!(!eval("$UNDEFINED && (/ab/ == 'x')", &v));
        assert!(eval("$B || (/ab/ == 'x')", &v));
    }

    #[test]
    fn rule_70_booleans_compare_only_with_booleans() {
        let v = [("A", "true"), ("B", "x")];
        assert!(
            !eval("$A == true", &v),
            "a variable is a string, never a boolean"
        );
        assert!(eval(r#"($B == "x") == true"#, &v));
        assert!(eval("true != false", &v));
    }

    #[test]
    fn rule_70_inputs_are_null_in_rules() {
        assert!(eval("$[[ inputs.env ]] == null", &[("inputs", "x")]));
        struct Inputs;
        impl VarLookup for Inputs {
            fn lookup(&self, _: &str) -> Option<&str> {
                None
            }
            fn lookup_input(&self, name: &str) -> Option<&str> {
                (name == "env").then_some("prod")
            }
        }
        let expr = Expr::parse(r#"$[[ inputs.env ]] == "prod""#).expect("parses");
        assert!(expr.evaluate(&Inputs));
        assert_eq!(expr.input_names(), vec!["env"]);
    }

    #[test]
    fn rule_110_regex_match_and_flags() {
        let v = [("VARIABLE", "content-123"), ("BRANCH", "Feature/X")];
        assert!(eval("$VARIABLE =~ /^content.*/", &v));
        assert!(!eval("$VARIABLE !~ /^content.*/", &v));
        assert!(
            eval("$VARIABLE =~ /123/", &v),
            "unanchored matches anywhere"
        );
        assert!(!eval("$BRANCH =~ /^feature/", &v));
        assert!(eval("$BRANCH =~ /^feature/i", &v));
        assert!(eval(r"$BRANCH =~ /^feature\/x$/i", &v));
        assert!(eval(r"$BRANCH =~ /\x2FX/", &v));
    }

    #[test]
    fn rule_113_null_right_side_never_matches() {
        let v = [("A", "abc")];
        assert!(!eval("$A =~ $UNDEFINED", &v));
        assert!(eval("$A !~ $UNDEFINED", &v));
        assert!(!eval("$A =~ null", &v));
        // An undefined left side is matched as "".
        assert!(eval("$UNDEFINED =~ /^$/", &v));
        assert!(eval("$UNDEFINED !~ /ab/", &v));
    }

    #[test]
    fn rule_114_variable_holding_a_regex() {
        let v = [("pattern", "/^ab.*/"), ("good", "abcde"), ("bad", "fghij")];
        assert!(eval("$good =~ $pattern", &v));
        assert!(!eval("$bad =~ $pattern", &v));
        assert!(eval("$bad !~ $pattern", &v));
        let flagged = [("pattern", "/^AB/i"), ("s", "abc")];
        assert!(eval("$s =~ $pattern", &flagged));
        // A regex literal does not expand variables written inside it.
        assert!(!eval("$s =~ /$x/", &[("s", "abc"), ("x", "abc")]));
        assert!(eval(r"$s =~ /\$x/", &[("s", "a$x")]));
    }

    #[test]
    fn rule_115_non_regex_right_side_is_substring_check() {
        assert!(eval(r#""23" =~ "1234""#, &[]));
        assert!(!eval(r#""23" =~ /1234/"#, &[]));
        assert!(!eval(r#""1234" =~ "23""#, &[]));
        assert!(eval(r#""23" !~ "abc""#, &[]));
        // An invalid regex in a variable also falls back to the substring test.
        assert!(eval("$A =~ $P", &[("A", "(/"), ("P", "/(/")]));
        // A quoted string that reads as a regex is one.
        assert!(eval(r#"$A =~ "/^ab/""#, &[("A", "abc")]));
        // The empty left side is a substring of anything.
        assert!(eval(r#"$UNDEFINED =~ "x""#, &[]));
    }

    #[test]
    fn rule_118_values_are_not_expanded_again() {
        let v = [("A", "$B"), ("B", "x")];
        assert!(eval(r#"$A == "$B""#, &v));
        assert!(!eval(r#"$A == "x""#, &v));
    }

    #[test]
    fn rule_120_evaluation_errors_make_the_condition_false() {
        assert!(!eval("/ab/ == 'x'", &[]));
        assert!(!eval("/ab/ != 'x'", &[]));
        assert!(!eval("$A !~ true", &[("A", "x")]));
        assert!(!eval("($A == 'x' || /ab/ == null) || true", &[]));
        // Comparing two patterns is allowed: GitLab compares their sources.
        assert!(eval("/ab/i == /ab/i", &[]));
        assert!(!eval("/ab/i == /ab/", &[]));
        assert!(!eval("null == /ab/", &[]));
    }

    #[test]
    fn documented_examples_evaluate() {
        let v = [
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_COMMIT_TITLE", "Merge branch 'x' into 'main'"),
            ("CI_PIPELINE_SOURCE", "push"),
            ("VARIABLE1", "content-a"),
            ("VARIABLE3", "something"),
        ];
        assert!(eval(
            "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_COMMIT_TITLE =~ /Merge branch.*/",
            &v
        ));
        assert!(!eval(r#"$CI_PIPELINE_SOURCE == "merge_request_event""#, &v));
        assert!(eval(r#"$CI_PIPELINE_SOURCE == "push""#, &v));
        assert!(eval(
            "($VARIABLE1 =~ /^content.*/ || $VARIABLE2) && ($VARIABLE3 =~ /thing$/ || $VARIABLE4)",
            &v
        ));
        assert!(eval(
            "$VARIABLE1 =~ /^content.*/ || $VARIABLE2 =~ /thing$/ && $VARIABLE3",
            &v
        ));
        assert!(!eval(
            "$VARIABLE1 =~ /^content.*/ && $VARIABLE2 =~ /thing$/ && $VARIABLE3",
            &v
        ));
    }

    /// The raw value of the whole expression, before `present?`.
    fn value_of(text: &str, pairs: &[(&str, &str)]) -> String {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let explanation = expr.explain(&vars(pairs));
        // The root is evaluated last.
        let last = explanation.steps.last().expect("at least one step");
        last.value.clone()
    }

    /// Values GitLab's own test suite expects from its evaluator.
    #[test]
    fn rule_102_to_115_values_match_gitlab() {
        let v = [
            ("PRESENT_VARIABLE", "my variable"),
            ("PATH_VARIABLE", "a/path/variable/value"),
            ("FULL_PATH_VARIABLE", "/a/full/path/variable/value"),
            ("EMPTY_VARIABLE", ""),
        ];
        let cases: &[(&str, &str)] = &[
            (r#"$PRESENT_VARIABLE == "my variable""#, "true"),
            (r#""my variable" == $PRESENT_VARIABLE"#, "true"),
            ("$PRESENT_VARIABLE == null", "false"),
            ("$EMPTY_VARIABLE == null", "false"),
            (r#""" == $EMPTY_VARIABLE"#, "true"),
            ("$EMPTY_VARIABLE", r#""""#),
            ("$UNDEFINED_VARIABLE == null", "true"),
            ("null == $UNDEFINED_VARIABLE", "true"),
            ("$PRESENT_VARIABLE", r#""my variable""#),
            ("$UNDEFINED_VARIABLE", "null"),
            ("$PRESENT_VARIABLE =~ /var.*e$/", "true"),
            (r"$PRESENT_VARIABLE =~ /va\r.*e$/", "false"),
            (r"$PRESENT_VARIABLE =~ /va\/r.*e$/", "false"),
            ("$PRESENT_VARIABLE =~ /^var.*/", "false"),
            ("$EMPTY_VARIABLE =~ /var.*/", "false"),
            ("$UNDEFINED_VARIABLE =~ /var.*/", "false"),
            ("$PRESENT_VARIABLE =~ /VAR.*/i", "true"),
            (r"$PATH_VARIABLE =~ /path\/variable/", "true"),
            (
                r"$FULL_PATH_VARIABLE =~ /^\/a\/full\/path\/variable\/value$/",
                "true",
            ),
            (r"$FULL_PATH_VARIABLE =~ /\/path\/variable\/value$/", "true"),
            (r#"$PRESENT_VARIABLE != "my variable""#, "false"),
            ("$EMPTY_VARIABLE != null", "true"),
            ("null != $UNDEFINED_VARIABLE", "false"),
            ("$PRESENT_VARIABLE !~ /^var.*/", "true"),
            (r"$PRESENT_VARIABLE !~ /^v\ar.*/", "true"),
            ("$UNDEFINED_VARIABLE !~ /var.*/", "true"),
            ("$PRESENT_VARIABLE !~ /VAR.*/i", "false"),
            (r#"$PRESENT_VARIABLE && "string""#, r#""string""#),
            ("$PRESENT_VARIABLE && $EMPTY_VARIABLE", r#""""#),
            ("$PRESENT_VARIABLE && null", "null"),
            ("$EMPTY_VARIABLE && $PRESENT_VARIABLE", r#""my variable""#),
            (r#"null && "string""#, "null"),
            (
                "$PRESENT_VARIABLE =~ /my var/ && $EMPTY_VARIABLE =~ /nope/",
                "false",
            ),
            (
                r#"$EMPTY_VARIABLE == "" && $PRESENT_VARIABLE"#,
                r#""my variable""#,
            ),
            ("$UNDEFINED_VARIABLE && $EMPTY_VARIABLE", "null"),
            (
                r#"$PRESENT_VARIABLE && null || $EMPTY_VARIABLE == """#,
                "true",
            ),
            (
                "$UNDEFINED_VARIABLE || $PRESENT_VARIABLE",
                r#""my variable""#,
            ),
            (
                "$PRESENT_VARIABLE || $UNDEFINED_VARIABLE == null",
                r#""my variable""#,
            ),
            ("(($PRESENT_VARIABLE))", r#""my variable""#),
            (
                r#"($PRESENT_VARIABLE) && (null || $EMPTY_VARIABLE == "")"#,
                "true",
            ),
            (r#"("string" || "test") == "string""#, "true"),
            (r#"(null || ("test" == "string"))"#, "false"),
            (r#"("string" == ("test" && "string"))"#, "true"),
            (r#"("string" == ("test" || "string"))"#, "false"),
            (r#"("string" == "test" || "string")"#, r#""string""#),
            (
                r#"("string" == ("string" || (("1" == "1") && ("2" == "3"))))"#,
                "true",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(value_of(text, &v), *expected, "{text}");
        }
    }

    #[test]
    fn rule_114_truthiness_with_pattern_variables() {
        let v = [
            ("teststring", "abcde"),
            ("pattern1", "/^ab.*/"),
            ("pattern2", "/^at.*/"),
        ];
        assert!(eval(r#"$teststring =~ "abcde""#, &v));
        assert!(eval("$teststring =~ $teststring", &v));
        assert!(eval("$teststring =~ $pattern1", &v));
        assert!(!eval("$teststring =~ $pattern2", &v));
        assert!(Expr::parse("$INVALID = 1").is_err());
    }

    #[test]
    fn explain_lists_evaluated_sub_expressions_innermost_first() {
        let expr = Expr::parse(r#"$CI_COMMIT_BRANCH == "main" || $FORCE"#).expect("parses");
        let explanation = expr.explain(&vars(&[("CI_COMMIT_BRANCH", "main")]));
        assert!(explanation.value);
        let steps: Vec<(&str, &str)> = explanation
            .steps
            .iter()
            .map(|s| (s.text.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("$CI_COMMIT_BRANCH", r#""main""#),
                (r#""main""#, r#""main""#),
                (r#"$CI_COMMIT_BRANCH == "main""#, "true"),
                (r#"$CI_COMMIT_BRANCH == "main" || $FORCE"#, "true"),
            ]
        );
        let undefined = expr.explain(&vars(&[]));
        assert!(!undefined.value);
        assert_eq!(undefined.steps[0].value, "null");
        assert_eq!(
            undefined.steps.last().map(|s| s.value.as_str()),
            Some("null")
        );
    }

    #[test]
    fn explain_reports_the_failing_node() {
        let expr = Expr::parse("$A && /ab/ == 'x'").expect("parses");
        let explanation = expr.explain(&vars(&[("A", "1")]));
        assert!(!explanation.value);
        let last = explanation.steps.last().expect("steps");
        assert_eq!(last.text, "/ab/ == 'x'");
        assert!(last.value.starts_with("error: "));
        assert_eq!(last.span, 6..17);
    }
}
