//! A job's `inherit:` keyword (rules 32-33): its form is checked here, and
//! `inherit:default` decides which `default` keywords the job takes.
//! `inherit:variables` is only checked; the variable stage applies it.

use super::keywords::DEFAULT_KEYWORDS;
use super::ruby;
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::yaml::{Mapping, Node, Value};

/// Which `default` keywords a job takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InheritDefault {
    All,
    Nothing,
    Only(Vec<String>),
}

impl InheritDefault {
    pub(crate) fn takes(&self, key: &str) -> bool {
        match self {
            InheritDefault::All => true,
            InheritDefault::Nothing => false,
            InheritDefault::Only(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// Checks the job's `inherit` and returns what it says about `default`.
/// Messages are GitLab's; those produced by its validators are lowercased
/// as GitLab lowercases them (`jobs:build:inherit config contains unknown
/// keys: foo`).
pub(crate) fn inherit_default(
    name: &str,
    job: &Mapping,
    diags: &mut Diagnostics,
) -> InheritDefault {
    let Some(inherit) = job.get("inherit").filter(|n| !n.is_null()) else {
        return InheritDefault::All;
    };
    let path = format!("jobs:{name}:inherit");
    let map = match &inherit.value {
        Value::Map(map) if !inherit.is_reference() => map,
        _ => {
            diags.push(validator_error(inherit, &path, "config should be a hash"));
            // An invalid `inherit` is never composed, so nothing is inherited.
            return InheritDefault::Nothing;
        }
    };
    let unknown: Vec<&Node> = map
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !matches!(k.as_str(), Some("default" | "variables")))
        .collect();
    if let Some(first) = unknown.first() {
        let keys: Vec<String> = unknown.iter().map(|k| ruby::to_s(k)).collect();
        let message = format!("config contains unknown keys: {}", keys.join(", "));
        diags.push(validator_error(first, &path, &message));
        return InheritDefault::Nothing;
    }
    if let Some(variables) = map.get("variables") {
        check_form(variables, &format!("{path}:variables"), None, diags);
    }
    match map.get("default") {
        None => InheritDefault::All,
        Some(default) => {
            let path = format!("{path}:default");
            check_form(default, &path, Some(DEFAULT_KEYWORDS), diags)
        }
    }
}

/// `true`, `false` or a list of strings (limited to `allowed` if given).
fn check_form(
    node: &Node,
    path: &str,
    allowed: Option<&[&str]>,
    diags: &mut Diagnostics,
) -> InheritDefault {
    if node.is_reference() {
        diags.push(unknown_form(node, path));
        return InheritDefault::Nothing;
    }
    match &node.value {
        Value::Null | Value::Bool(true) => InheritDefault::All,
        Value::Bool(false) => InheritDefault::Nothing,
        Value::Seq(items) => {
            if !items.iter().all(|i| i.as_str().is_some()) {
                diags.push(validator_error(
                    node,
                    path,
                    "config should be an array of strings",
                ));
            }
            if let Some(allowed) = allowed {
                let unknown: Vec<String> = items
                    .iter()
                    .filter(|i| !i.as_str().is_some_and(|s| allowed.contains(&s)))
                    .map(ruby::to_s)
                    .collect();
                if !unknown.is_empty() {
                    let message = format!("config contains unknown values: {}", unknown.join(", "));
                    diags.push(validator_error(node, path, &message));
                }
            }
            InheritDefault::Only(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect(),
            )
        }
        _ => {
            diags.push(unknown_form(node, path));
            InheritDefault::Nothing
        }
    }
}

/// GitLab builds this one by hand, so it keeps its case.
fn unknown_form(node: &Node, path: &str) -> Diagnostic {
    Diagnostic::config(
        node.span,
        format!("{path} should be a bool or array of strings"),
    )
}

/// GitLab's validator messages are `"#{location} #{error}".downcase`.
pub(crate) fn validator_error(node: &Node, path: &str, message: &str) -> Diagnostic {
    Diagnostic::config(node.span, format!("{path} {message}").to_lowercase())
}
