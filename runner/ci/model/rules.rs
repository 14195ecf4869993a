//! `rules` (rules 80-100). `workflow:rules` use the same [`Rule`] with
//! other keys and `when` values.
//! Conditions are kept as written: the `if` expression is parsed and
//! evaluated later.

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{array_of_strings, attr_error, flatten_nested, is_blank};
use super::needs::{Need, NeedType, decode_needs};
use super::variables::{VarScope, VariableDef, decode_variables};
use super::when::{RULE_WHEN, When, check_start_in, decode_rule_when};
use crate::ci::expr::{Expr, INVALID_EXPRESSION_SYNTAX};
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node, Value};

/// One entry of `rules` or `workflow:rules`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The `if` expression as written, not yet parsed.
    #[serde(rename = "if")]
    pub if_expr: Option<String>,
    pub changes: Option<Changes>,
    pub exists: Option<Exists>,
    pub when: Option<When>,
    pub start_in: Option<String>,
    pub allow_failure: Option<bool>,
    /// Variables set when the rule matches (rules 74 and 100).
    pub variables: Vec<VariableDef>,
    /// Replaces the job's `needs` when the rule matches (rule 99).
    pub needs: Option<Vec<Need>>,
    pub interruptible: Option<bool>,
    /// `workflow:rules` only (rule 76).
    pub auto_cancel: Option<AutoCancel>,
    /// Where the rule starts, to explain which rule decided.
    #[serde(skip)]
    pub span: Span,
    /// Where the `if` expression is, for expression errors.
    #[serde(skip)]
    pub if_span: Span,
}

/// `rules:changes` (rules 90-94).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub paths: Vec<String>,
    pub compare_to: Option<String>,
}

/// `rules:exists` (rules 95-97).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exists {
    pub paths: Vec<String>,
    pub project: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

/// `workflow:auto_cancel` and `workflow:rules:auto_cancel` (rule 76).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AutoCancel {
    pub on_new_commit: Option<String>,
    pub on_job_failure: Option<String>,
}

/// What a rule may hold where it is used.
pub(crate) struct RuleSet {
    pub(crate) keys: &'static [&'static str],
    pub(crate) when: &'static [&'static str],
}

/// Job `rules` (rule 81).
pub(crate) const JOB_RULES: RuleSet = RuleSet {
    keys: &[
        "if",
        "changes",
        "exists",
        "when",
        "start_in",
        "allow_failure",
        "variables",
        "needs",
        "interruptible",
    ],
    when: RULE_WHEN,
};

/// How deep `!reference` may nest rule lists in a job (rule 89).
const MAX_NESTING: usize = 10;
/// The most paths one `changes` or `exists` may list.
const MAX_PATHS: usize = 50;

/// A job's `rules`, nested lists flattened up to ten levels (rule 89).
pub(crate) fn decode_job_rules(d: &mut Decoder, node: &Node, job_path: &str) -> Option<Vec<Rule>> {
    let Some(items) = flatten_nested(node, MAX_NESTING, |n| n.as_map().is_some()) else {
        let msg = "should be an array containing hashes and arrays of hashes";
        attr_error(d, node, job_path, "rules", msg);
        return None;
    };
    let path = format!("{job_path}:rules");
    if items.is_empty() {
        d.error(node, &path, "config can't be blank");
        return None;
    }
    decode_items(d, &items, &format!("{path}:rule"), &JOB_RULES)
}

pub(crate) fn decode_items(
    d: &mut Decoder,
    items: &[&Node],
    path: &str,
    set: &RuleSet,
) -> Option<Vec<Rule>> {
    let before = d.diags.len();
    let rules: Vec<Rule> = items
        .iter()
        .filter_map(|item| decode_rule(d, item, path, set))
        .collect();
    (d.diags.len() == before).then_some(rules)
}

fn decode_rule(d: &mut Decoder, node: &Node, path: &str, set: &RuleSet) -> Option<Rule> {
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return None;
    };
    if map.is_empty() {
        d.error(node, path, "config can't be blank");
        return None;
    }
    d.unknown_keys(map, path, set.keys);
    let present = |k: &str| map.get(k).filter(|n| !n.is_null());
    let when = present("when").and_then(|w| decode_rule_when(d, w, path, set.when));
    let mut rule = Rule {
        if_expr: None,
        changes: None,
        exists: None,
        when,
        start_in: None,
        allow_failure: None,
        variables: Vec::new(),
        needs: None,
        interruptible: None,
        auto_cancel: None,
        span: node.span,
        if_span: node.span,
    };
    decode_start_in(d, node, map, path, &mut rule);
    if let Some(cond) = present("if") {
        rule.if_span = cond.span;
        // Parsed only to reject what GitLab rejects; evaluation comes later.
        match cond.as_str().filter(|e| Expr::parse(e).is_ok()) {
            Some(expr) => rule.if_expr = Some(expr.to_string()),
            None => attr_error(d, cond, path, "if", INVALID_EXPRESSION_SYNTAX),
        }
    }
    for key in ["allow_failure", "interruptible"] {
        if let Some(value) = present(key) {
            let b = value.as_bool();
            if b.is_none() {
                attr_error(d, value, path, key, "should be a boolean value");
            }
            match key {
                "allow_failure" => rule.allow_failure = b,
                _ => rule.interruptible = b,
            }
        }
    }
    if let Some(changes) = present("changes") {
        rule.changes = decode_changes(d, changes, &format!("{path}:changes"));
    }
    if let Some(exists) = present("exists") {
        rule.exists = decode_exists(d, exists, &format!("{path}:exists"));
    }
    if let Some(vars) = present("variables") {
        rule.variables = decode_variables(d, vars, &format!("{path}:variables"), VarScope::Rule);
    }
    if let Some(needs) = present("needs") {
        rule.needs = decode_needs(d, needs, &format!("{path}:needs"), &[NeedType::Job]);
    }
    if let Some(ac) = present("auto_cancel") {
        rule.auto_cancel = decode_auto_cancel(d, ac, &format!("{path}:auto_cancel"));
    }
    Some(rule)
}

/// `start_in` belongs to `when: delayed` rules, where it is required
/// (rule 87).
fn decode_start_in(d: &mut Decoder, node: &Node, map: &Mapping, path: &str, rule: &mut Rule) {
    let delayed = map.get("when").and_then(Node::as_str) == Some("delayed");
    let start_in = map.get("start_in");
    if !delayed {
        if let Some(value) = start_in {
            d.error(value, path, "config contains disallowed keys: start_in");
        }
        return;
    }
    let null = Node::null(node.span);
    let value = start_in.unwrap_or(&null);
    if is_blank(value) {
        attr_error(d, value, path, "start_in", "can't be blank");
    }
    let before = d.diags.len();
    check_start_in(d, value, path);
    if d.diags.len() == before {
        rule.start_in = value.as_str().map(String::from);
    }
}

fn decode_changes(d: &mut Decoder, node: &Node, path: &str) -> Option<Changes> {
    match &node.value {
        Value::Seq(_) => {
            let paths = paths_list(d, node, path, "config")?;
            Some(Changes {
                paths,
                compare_to: None,
            })
        }
        Value::Map(map) => {
            d.unknown_keys(map, path, &["paths", "compare_to"]);
            let null = Node::null(node.span);
            if !map.contains_key("paths") {
                d.error(node, path, "config missing required keys: paths");
            }
            let paths = paths_list(d, map.get("paths").unwrap_or(&null), path, "paths");
            let compare_to = match map.get("compare_to").filter(|n| !n.is_null()) {
                Some(c) if c.as_str().is_none() => {
                    attr_error(d, c, path, "compare_to", "should be a string");
                    return None;
                }
                other => other.and_then(Node::as_str).map(String::from),
            };
            Some(Changes {
                paths: paths?,
                compare_to,
            })
        }
        _ => {
            d.error_raw(node, path, "should be an array or a hash");
            None
        }
    }
}

/// A list of at most fifty path strings; `attr` is `config` for the short
/// form and `paths` inside the hash form.
fn paths_list(d: &mut Decoder, node: &Node, path: &str, attr: &str) -> Option<Vec<String>> {
    let Some(paths) = array_of_strings(node) else {
        attr_error(d, node, path, attr, "should be an array of strings");
        return None;
    };
    if paths.len() > MAX_PATHS {
        let msg = format!("has too many entries (maximum {MAX_PATHS})");
        attr_error(d, node, path, attr, &msg);
        return None;
    }
    Some(paths)
}

fn decode_exists(d: &mut Decoder, node: &Node, path: &str) -> Option<Exists> {
    let simple = |paths| Exists {
        paths,
        project: None,
        git_ref: None,
    };
    match &node.value {
        Value::Str(s) => Some(simple(vec![s.clone()])),
        Value::Seq(_) => paths_list(d, node, path, "config").map(simple),
        // GitLab takes an empty value for an empty list.
        _ if is_blank(node) => Some(simple(Vec::new())),
        Value::Map(map) => {
            d.unknown_keys(map, path, &["paths", "project", "ref"]);
            if !map.contains_key("paths") {
                d.error(node, path, "config missing required keys: paths");
            }
            if map.get("ref").is_some_and(|r| !r.is_null()) && !map.contains_key("project") {
                d.error(node, path, "config missing required keys: project");
            }
            let paths = match map.get("paths").filter(|n| !n.is_null()) {
                Some(p) => paths_list(d, p, path, "paths")?,
                None => Vec::new(),
            };
            let mut text = |key: &str| match map.get(key).filter(|n| !n.is_null()) {
                Some(v) if v.as_str().is_none() => {
                    attr_error(d, v, path, key, "should be a string");
                    None
                }
                other => other.and_then(Node::as_str).map(String::from),
            };
            Some(Exists {
                paths,
                project: text("project"),
                git_ref: text("ref"),
            })
        }
        _ => {
            d.error_raw(
                node,
                path,
                "should be a string, an array of strings, or a hash",
            );
            None
        }
    }
}

/// `auto_cancel` at `path`.
pub(crate) fn decode_auto_cancel(d: &mut Decoder, node: &Node, path: &str) -> Option<AutoCancel> {
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return None;
    };
    d.unknown_keys(map, path, &["on_new_commit", "on_job_failure"]);
    let mut value = |key: &str, allowed: &[&str]| {
        let v = map.get(key).filter(|n| !n.is_null())?;
        if v.as_str().is_none() {
            attr_error(d, v, path, key, "should be a string");
        }
        match v.as_str() {
            Some(s) if allowed.contains(&s) => Some(s.to_string()),
            _ => {
                let msg = format!("must be one of: {}", allowed.join(", "));
                attr_error(d, v, path, key, &msg);
                None
            }
        }
    };
    Some(AutoCancel {
        on_new_commit: value("on_new_commit", &["conservative", "interruptible", "none"]),
        on_job_failure: value("on_job_failure", &["none", "all"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn job_rules(text: &str) -> (Option<Vec<Rule>>, Vec<String>) {
        let mut d = Decoder::lowercasing();
        let rules = decode_job_rules(&mut d, &doc(text), "jobs:a");
        (rules, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_81_rule_keys() {
        let (rules, msgs) = job_rules(
            "- if: '$CI_COMMIT_BRANCH == \"main\"'\n  changes: [src/*]\n  exists: Dockerfile\n  when: manual\n  allow_failure: true\n  variables: {A: b}\n  needs: [build]\n  interruptible: false\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let rule = &rules.unwrap()[0];
        assert_eq!(
            rule.if_expr.as_deref(),
            Some("$CI_COMMIT_BRANCH == \"main\"")
        );
        assert_eq!(rule.if_span.line, 1);
        assert_eq!(rule.changes.as_ref().unwrap().paths, ["src/*"]);
        assert_eq!(rule.exists.as_ref().unwrap().paths, ["Dockerfile"]);
        assert_eq!(rule.when, Some(When::Manual));
        assert_eq!(rule.allow_failure, Some(true));
        assert_eq!(rule.variables[0].value, "b");
        assert_eq!(rule.needs.as_ref().unwrap().len(), 1);
        assert_eq!(rule.interruptible, Some(false));
    }

    #[test]
    fn rule_81_unknown_rule_keys() {
        let (_, msgs) = job_rules("[{if: $X, auto_cancel: {on_new_commit: none}}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule config contains unknown keys: auto_cancel"]
        );
        let (_, msgs) = job_rules("[{}]");
        assert_eq!(msgs, ["jobs:a:rules:rule config can't be blank"]);
        let (_, msgs) = job_rules("[]");
        assert_eq!(msgs, ["jobs:a:rules config can't be blank"]);
    }

    #[test]
    fn rule_85_rule_when_values() {
        let (rules, msgs) = job_rules("[{if: $X, when: never}, {when: delayed, start_in: 1s}]");
        assert!(msgs.iter().all(|m| !m.contains("when")), "{msgs:?}");
        let rules = rules.unwrap_or_default();
        if let Some(first) = rules.first() {
            assert_eq!(first.when, Some(When::Never));
        }
        let (_, msgs) = job_rules("[{when: later}]");
        assert_eq!(msgs, ["jobs:a:rules:rule when unknown value: later"]);
    }

    #[test]
    fn rule_87_start_in_only_with_delayed() {
        let (_, msgs) = job_rules("[{if: $X, start_in: 1 hour}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule config contains disallowed keys: start_in"]
        );
        let (_, msgs) = job_rules("[{if: $X, when: delayed}]");
        assert_eq!(
            msgs,
            [
                "jobs:a:rules:rule start in can't be blank",
                "jobs:a:rules:rule start in should be a duration",
                "jobs:a:rules:rule start in should not exceed the limit"
            ]
        );
    }

    #[test]
    fn rule_89_nested_rule_lists_flatten_up_to_ten_levels() {
        let (rules, msgs) = job_rules("[[{if: $A}, [{if: $B}]], {when: always}]");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(rules.unwrap().len(), 3);
        let deep = "[".repeat(11) + "{when: always}" + &"]".repeat(11);
        let (_, msgs) = job_rules(&deep);
        assert_eq!(
            msgs,
            ["jobs:a rules should be an array containing hashes and arrays of hashes"]
        );
        let (_, msgs) = job_rules("{if: $A}");
        assert_eq!(msgs.len(), 1);
    }

    #[test]
    fn rule_90_93_changes_forms() {
        let (rules, msgs) = job_rules("[{changes: {paths: [a/**], compare_to: refs/heads/main}}]");
        assert!(msgs.is_empty(), "{msgs:?}");
        let changes = rules.unwrap()[0].changes.clone().unwrap();
        assert_eq!(changes.compare_to.as_deref(), Some("refs/heads/main"));
        let (_, msgs) = job_rules("[{changes: src/}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule:changes should be an array or a hash"]
        );
        let (_, msgs) = job_rules("[{changes: {compare_to: main}}]");
        assert_eq!(
            msgs,
            [
                "jobs:a:rules:rule:changes config missing required keys: paths",
                "jobs:a:rules:rule:changes paths should be an array of strings"
            ]
        );
        let many: Vec<String> = (0..51).map(|i| format!("f{i}")).collect();
        let (_, msgs) = job_rules(&format!("[{{changes: [{}]}}]", many.join(", ")));
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule:changes config has too many entries (maximum 50)"]
        );
    }

    #[test]
    fn rule_95_97_exists_forms() {
        let (rules, msgs) = job_rules(
            "[{exists: [a, b]}, {exists: {paths: [c], project: g/p, ref: main}}, {exists: ''}]",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let rules = rules.unwrap();
        assert_eq!(
            rules[1].exists.as_ref().unwrap().git_ref.as_deref(),
            Some("main")
        );
        let (_, msgs) = job_rules("[{exists: {paths: [c], ref: main}}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule:exists config missing required keys: project"]
        );
        let (_, msgs) = job_rules("[{exists: 1}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule:exists should be a string, an array of strings, or a hash"]
        );
    }

    #[test]
    fn rule_98_rule_booleans() {
        let (_, msgs) = job_rules("[{when: manual, allow_failure: sometimes}]");
        assert_eq!(
            msgs,
            ["jobs:a:rules:rule allow failure should be a boolean value"]
        );
    }

    #[test]
    fn rule_120_if_must_be_a_valid_expression() {
        let (_, msgs) = job_rules("[{if: [a]}]");
        assert_eq!(msgs, ["jobs:a:rules:rule if invalid expression syntax"]);
        let (_, msgs) = job_rules("[{if: '$A == '}, {if: '$A = \"x\"'}]");
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .all(|m| m == "jobs:a:rules:rule if invalid expression syntax")
        );
        let (rules, msgs) = job_rules("[{if: '$A =~ /^v\\d+$/ && ($B || $C != \"x\")'}]");
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(rules.unwrap()[0].if_expr.is_some());
    }
}
