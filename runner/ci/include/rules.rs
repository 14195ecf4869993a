//! `include:rules`: which includes are used (rule 53).
//!
//! Only `if`, `exists`, `changes` and `when: never|always` are allowed. The
//! first rule whose clauses all hold decides: the include is used unless
//! that rule says `when: never`. No matching rule skips the include.

use std::collections::BTreeMap;

use super::glob::fnmatch;
use super::vars::{Unknown, expand};
use crate::ci::diag::Diagnostic;
use crate::ci::yaml::{Node, Value};

/// Evaluates `rules:if` expressions. The front end's expression engine
/// implements it; tests use small stand-ins.
pub trait ConditionEvaluator {
    /// Whether `expr` holds with `vars`. `Err` means the expression is not
    /// valid; the message says why.
    fn if_true(&self, expr: &str, vars: &BTreeMap<String, String>) -> Result<bool, String>;
}

/// GitLab stops comparing `exists` patterns after this many comparisons
/// and then treats the clause as true.
const MAX_EXISTS_COMPARISONS: usize = 10_000;

/// What evaluating rules can look at.
pub(crate) struct RuleEnv<'a> {
    pub conditions: Option<&'a dyn ConditionEvaluator>,
    pub variables: &'a BTreeMap<String, String>,
    /// Changed paths, `None` when unknown (then `changes` holds).
    pub changed: Option<&'a [String]>,
    /// Lists the files of the project holding the include; `Ok(None)` when
    /// there is no project (a file from a remote URL or template), where
    /// `exists` never holds.
    pub files: &'a mut dyn FnMut() -> Result<Option<Vec<String>>, Diagnostic>,
}

const RULE_KEYS: &[&str] = &["if", "exists", "when", "changes"];

/// Whether an include with these `rules` is used.
pub(crate) fn include_passes(rules: &Node, env: &mut RuleEnv<'_>) -> Result<bool, Diagnostic> {
    validate(rules)?;
    for rule in rules.as_seq().unwrap_or_default() {
        let Some(map) = rule.as_map() else { continue };
        let mut holds = true;
        if let Some(expr) = map.get("if") {
            holds = eval_if(expr, env)?;
        }
        if holds && let Some(exists) = map.get("exists") {
            holds = eval_exists(exists, env)?;
        }
        if holds && let Some(changes) = map.get("changes") {
            holds = eval_changes(changes, env);
        }
        if holds {
            return Ok(map.get("when").and_then(Node::as_str) != Some("never"));
        }
    }
    Ok(false)
}

/// GitLab composes the rules entry before evaluating any of it, so every
/// shape error is found even when an earlier rule would match.
fn validate(rules: &Node) -> Result<(), Diagnostic> {
    // Entry validation messages are lower-cased whole by GitLab, values too.
    let err = |node: &Node, msg: &str| {
        Diagnostic::config(node.span, format!("include:{msg}").to_lowercase())
    };
    let items = match &rules.value {
        Value::Seq(items) if items.is_empty() => {
            return Err(err(rules, "rules config can't be blank"));
        }
        Value::Seq(items) => items,
        _ => return Err(err(rules, "rules config should be an array")),
    };
    for rule in items {
        let map = match &rule.value {
            Value::Map(map) if !map.is_empty() => map,
            Value::Null => return Err(err(rule, "rule config can't be blank")),
            _ => return Err(err(rule, "rule config should be a hash")),
        };
        let unknown: Vec<String> = map
            .iter()
            .filter(|(k, _)| k.as_str().is_none_or(|k| !RULE_KEYS.contains(&k)))
            .map(|(k, _)| {
                k.scalar_string()
                    .map(|s| s.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        if !unknown.is_empty() {
            return Err(err(
                rule,
                &format!("rule config contains unknown keys: {}", unknown.join(", ")),
            ));
        }
        if let Some(when) = map.get("when")
            && !when.is_null()
            && !matches!(when.as_str(), Some("never" | "always"))
        {
            let shown = when.scalar_string().unwrap_or_default().into_owned();
            return Err(err(when, &format!("rule when unknown value: {shown}")));
        }
        if let Some(expr) = map.get("if")
            && !expr.is_null()
            && expr.as_str().is_none()
        {
            return Err(err(expr, "rule if invalid expression syntax"));
        }
        if let Some(exists) = map.get("exists")
            && patterns(exists).is_none()
        {
            return Err(err(
                exists,
                "rule exists should be an array of strings or a string",
            ));
        }
        if let Some(changes) = map.get("changes")
            && patterns(changes).is_none()
        {
            return Err(err(
                changes,
                "rule changes config should be an array of strings",
            ));
        }
    }
    Ok(())
}

/// The path patterns of an `exists` or `changes` clause: a string, a list
/// of strings, or a hash with `paths`.
fn patterns(node: &Node) -> Option<Vec<&str>> {
    match &node.value {
        Value::Null => Some(Vec::new()),
        Value::Str(s) => Some(vec![s.as_str()]),
        Value::Seq(items) => items.iter().map(Node::as_str).collect(),
        Value::Map(map) => map.get("paths").map_or(Some(Vec::new()), patterns),
        _ => None,
    }
}

fn eval_if(expr: &Node, env: &RuleEnv<'_>) -> Result<bool, Diagnostic> {
    let Some(text) = expr.as_str() else {
        // `if:` with no value is no condition.
        return Ok(true);
    };
    let Some(conditions) = env.conditions else {
        return Err(Diagnostic::config(
            expr.span,
            "include:rule if cannot be evaluated: no expression evaluator is configured",
        ));
    };
    conditions
        .if_true(text, env.variables)
        .map_err(|_| Diagnostic::config(expr.span, "include:rule if invalid expression syntax"))
}

fn eval_exists(exists: &Node, env: &mut RuleEnv<'_>) -> Result<bool, Diagnostic> {
    let globs: Vec<String> = patterns(exists)
        .unwrap_or_default()
        .into_iter()
        .map(|p| expand(p, env.variables, Unknown::Blank))
        .collect();
    if globs.is_empty() {
        return Ok(false);
    }
    let Some(files) = (env.files)()? else {
        return Ok(false);
    };
    let mut comparisons = 0;
    for file in &files {
        for glob in &globs {
            comparisons += 1;
            if comparisons > MAX_EXISTS_COMPARISONS {
                return Ok(true);
            }
            if fnmatch(glob.trim_start_matches('/'), file) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn eval_changes(changes: &Node, env: &RuleEnv<'_>) -> bool {
    let Some(changed) = env.changed else {
        return true;
    };
    let globs: Vec<String> = patterns(changes)
        .unwrap_or_default()
        .into_iter()
        .map(|p| expand(p, env.variables, Unknown::Blank))
        .collect();
    changed.iter().any(|path| {
        globs
            .iter()
            .any(|g| fnmatch(g.trim_start_matches('/'), path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    /// Understands `$VAR` (set and non-empty) and `$VAR == "x"`.
    struct Simple;

    impl ConditionEvaluator for Simple {
        fn if_true(&self, expr: &str, vars: &BTreeMap<String, String>) -> Result<bool, String> {
            let lookup = |v: &str| vars.get(v.trim().trim_start_matches('$')).cloned();
            match expr.split_once("==") {
                Some((l, r)) => Ok(lookup(l) == Some(r.trim().trim_matches('"').to_string())),
                None if expr.trim().starts_with('$') => {
                    Ok(lookup(expr).is_some_and(|v| !v.is_empty()))
                }
                None => Err("bad".into()),
            }
        }
    }

    fn eval(rules: &str, vars: &[(&str, &str)], files: &[&str]) -> Result<bool, Diagnostic> {
        let node = parse_documents(rules, SourceId(1)).unwrap().remove(0);
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        let mut list = || Ok(Some(files.clone()));
        let mut env = RuleEnv {
            conditions: Some(&Simple),
            variables: &vars,
            changed: None,
            files: &mut list,
        };
        include_passes(&node, &mut env)
    }

    #[test]
    fn rule_53_first_matching_rule_decides_and_when_never_skips() {
        let rules = "- if: $A == \"1\"\n  when: never\n- if: $A\n";
        assert_eq!(eval(rules, &[("A", "1")], &[]), Ok(false));
        assert_eq!(eval(rules, &[("A", "2")], &[]), Ok(true));
        assert_eq!(eval(rules, &[], &[]), Ok(false));
    }

    #[test]
    fn rule_53_exists_globs_the_project_tree() {
        let rules = "- exists: ['**/Cargo.toml']\n";
        assert_eq!(eval(rules, &[], &["a/Cargo.toml"]), Ok(true));
        assert_eq!(eval(rules, &[], &["a/Cargo.lock"]), Ok(false));
        let hash = "- exists:\n    paths: [Makefile]\n";
        assert_eq!(eval(hash, &[], &["Makefile"]), Ok(true));
    }

    #[test]
    fn rule_53_only_if_exists_changes_and_when_are_allowed() {
        let err = eval("- if: $A\n  allow_failure: true\n", &[], &[]).unwrap_err();
        assert_eq!(
            err.message,
            "include:rule config contains unknown keys: allow_failure"
        );
        let err = eval("- if: $A\n  when: manual\n", &[], &[]).unwrap_err();
        assert_eq!(err.message, "include:rule when unknown value: manual");
        let err = eval("- if: nonsense\n", &[], &[]).unwrap_err();
        assert_eq!(err.message, "include:rule if invalid expression syntax");
        let err = eval("{if: $A}\n", &[], &[]).unwrap_err();
        assert_eq!(err.message, "include:rules config should be an array");
    }

    #[test]
    fn changes_hold_when_the_changed_paths_are_unknown() {
        assert_eq!(eval("- changes: [src/*]\n", &[], &[]), Ok(true));
    }
}
