//! `workflow:` (rules 72-76): whether a pipeline is created, its name,
//! and how it is auto-cancelled.

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{attr_error, flatten_all, is_blank, to_s};
use super::rules::{AutoCancel, Rule, RuleSet, decode_auto_cancel, decode_items};
use super::when::WORKFLOW_WHEN;
use crate::ci::yaml::Node;

/// `workflow:` (rules 72-76).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Workflow {
    pub name: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub auto_cancel: Option<AutoCancel>,
}

/// `workflow:rules` (rule 73): `start_in`, `allow_failure` and `needs` are
/// accepted and ignored.
pub(crate) const WORKFLOW_RULES: RuleSet = RuleSet {
    keys: &[
        "if",
        "changes",
        "exists",
        "when",
        "start_in",
        "allow_failure",
        "variables",
        "needs",
        "auto_cancel",
    ],
    when: WORKFLOW_WHEN,
};

/// The top-level `workflow:`.
pub(crate) fn decode_workflow(d: &mut Decoder, node: &Node) -> Option<Workflow> {
    const PATH: &str = "workflow";
    let Some(map) = node.as_map() else {
        d.error(node, PATH, "config should be a hash");
        return None;
    };
    d.unknown_keys(map, PATH, &["rules", "name", "auto_cancel"]);
    let mut workflow = Workflow::default();
    if let Some(name) = map.get("name").filter(|n| !n.is_null()) {
        let text = to_s(name);
        let length = text.chars().count();
        if length < 1 {
            attr_error(
                d,
                name,
                PATH,
                "name",
                "is too short (minimum is 1 character)",
            );
        } else if length > 255 {
            attr_error(
                d,
                name,
                PATH,
                "name",
                "is too long (maximum is 255 characters)",
            );
        } else if name.is_scalar() {
            workflow.name = Some(text);
        }
    }
    if let Some(rules) = map.get("rules").filter(|n| !n.is_null()) {
        let path = "workflow:rules";
        if is_blank(rules) {
            d.error(rules, path, "config can't be blank");
        } else if rules.as_seq().is_none() {
            d.error(rules, path, "config should be a array");
        } else {
            let items: Vec<&Node> = flatten_all(rules)
                .into_iter()
                .filter(|n| !n.is_null())
                .collect();
            workflow.rules = decode_items(d, &items, "workflow:rules:rule", &WORKFLOW_RULES);
        }
    }
    if let Some(ac) = map.get("auto_cancel").filter(|n| !n.is_null()) {
        workflow.auto_cancel = decode_auto_cancel(d, ac, "workflow:auto_cancel");
    }
    Some(workflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn workflow(text: &str) -> (Option<Workflow>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::lowercasing();
        let wf = decode_workflow(&mut d, &node);
        (wf, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_72_73_workflow_rules() {
        let (wf, msgs) = workflow(
            "rules:\n  - if: $CI_MERGE_REQUEST_IID\n    when: never\n  - when: always\n    variables: {X: y}\n    auto_cancel: {on_new_commit: interruptible}\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let rules = wf.unwrap().rules.unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[1]
                .auto_cancel
                .as_ref()
                .unwrap()
                .on_new_commit
                .as_deref(),
            Some("interruptible")
        );
        let (_, msgs) = workflow("rules: [{when: manual}]");
        assert_eq!(msgs, ["workflow:rules:rule when unknown value: manual"]);
        let (_, msgs) = workflow("rules: [{if: $X, interruptible: true}]");
        assert_eq!(
            msgs,
            ["workflow:rules:rule config contains unknown keys: interruptible"]
        );
    }

    #[test]
    fn rule_75_workflow_name() {
        let (wf, msgs) = workflow("name: 'Pipeline for $CI_COMMIT_BRANCH'");
        assert!(msgs.is_empty());
        assert_eq!(wf.unwrap().name.unwrap(), "Pipeline for $CI_COMMIT_BRANCH");
        let (_, msgs) = workflow("name: ''");
        assert_eq!(
            msgs,
            ["workflow name is too short (minimum is 1 character)"]
        );
    }

    #[test]
    fn rule_76_auto_cancel_values() {
        let (wf, msgs) = workflow("auto_cancel: {on_new_commit: none, on_job_failure: all}");
        assert!(msgs.is_empty());
        assert_eq!(
            wf.unwrap().auto_cancel.unwrap().on_job_failure.as_deref(),
            Some("all")
        );
        let (_, msgs) = workflow("auto_cancel: {on_new_commit: always}");
        assert_eq!(
            msgs,
            [
                "workflow:auto_cancel on new commit must be one of: conservative, interruptible, none"
            ]
        );
    }

    #[test]
    fn workflow_keys_and_shape() {
        assert_eq!(workflow("[a]").1, ["workflow config should be a hash"]);
        assert_eq!(
            workflow("{when: always}").1,
            ["workflow config contains unknown keys: when"]
        );
        assert_eq!(
            workflow("{rules: {if: $X}}").1,
            ["workflow:rules config should be a array"]
        );
    }
}
