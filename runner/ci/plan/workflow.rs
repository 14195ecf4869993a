//! `workflow`: whether GitLab creates the pipeline at all, with which extra
//! variables and under which name (rules 72-77).

use std::cell::OnceCell;
use std::collections::HashMap;

use super::context::{BaseVars, RuleScope, defs_to_vars};
use super::plan_types::{DecidedBy, DecisionKind};
use super::rules_eval::{Env, RuleError, RuleInput, RuleTrace, first_match, rule_text};
use crate::ci::model::pipeline::Pipeline;
use crate::ci::model::rules::Rule;
use crate::ci::model::variables::VariableDef;
use crate::ci::model::when::When;
use crate::ci::variables::{
    ExpandOptions, VarSource, Variables, expand_gitlab, expand_gitlab_or_blank, sort_and_expand_all,
};

/// GitLab's error when `workflow:rules` leave no pipeline.
pub(crate) const FILTERED_OUT: &str = "Pipeline filtered out by workflow rules.";

/// What `workflow` decided.
pub(crate) struct WorkflowResult<'p> {
    pub passed: bool,
    pub decided_by: DecidedBy,
    /// The matching rule's `variables`, which every job inherits (rule 74).
    pub variables: &'p [VariableDef],
    /// `workflow:name`, expanded and trimmed; `None` when empty (rule 75).
    pub name: Option<String>,
}

/// Evaluates `workflow:rules` against the pipeline's predefined and
/// pipeline variables plus the top-level YAML variables (rule 77). No
/// `workflow:rules` means the pipeline is created; otherwise the first
/// matching rule decides, `when: never` or no match meaning no pipeline.
pub(crate) fn evaluate_workflow<'p>(
    pipeline: &'p Pipeline,
    base: &BaseVars<'_>,
    env: &Env<'_>,
    trace: Option<&mut Vec<RuleTrace>>,
) -> WorkflowResult<'p> {
    let workflow = pipeline.workflow.as_ref();
    let mut scope = RuleScope {
        base,
        yaml: Vec::new(),
        job: None,
    };
    scope.push_defs(&pipeline.variables);
    let expanded =
        LazyExpanded::new(|| ExpandedVars::new(&env.ctx.variables, &pipeline.variables, &[]));
    let expand = |text: &str| expanded.expand_existing(text);
    let input = RuleInput {
        scope: &scope,
        expand: &expand,
    };
    let rules: Option<&'p [Rule]> = workflow.and_then(|w| w.rules.as_deref());
    let (passed, decided_by, variables) = match rules {
        None => (true, DecidedBy::default_with("no workflow:rules"), &[][..]),
        Some(rules) => match first_match(rules, &input, env, trace) {
            // GitLab turns a rule it cannot evaluate into `when: never`, so
            // the pipeline is filtered out; say why.
            Err(RuleError { index, message }) => {
                env.warn(format!("workflow:rules: rule {}: {message}", index + 1));
                let rule = &rules[index];
                let decided = DecidedBy {
                    kind: DecisionKind::Rule,
                    index: Some(index),
                    text: format!("{} ({message})", rule_text(rule)),
                    span: rule.span,
                    location: env.ctx.location(rule.span),
                };
                (false, decided, &[][..])
            }
            Ok(Some((index, rule))) => {
                let when = rule.when.unwrap_or(When::Always);
                let decided = DecidedBy {
                    kind: DecisionKind::Rule,
                    index: Some(index),
                    text: rule_text(rule),
                    span: rule.span,
                    location: env.ctx.location(rule.span),
                };
                (when != When::Never, decided, rule.variables.as_slice())
            }
            Ok(None) => (
                false,
                DecidedBy::default_with("no workflow rule matched"),
                &[][..],
            ),
        },
    };
    let name = workflow.and_then(|w| w.name.as_deref()).and_then(|raw| {
        let vars = ExpandedVars::new(&env.ctx.variables, &pipeline.variables, variables);
        let value = expand_gitlab_or_blank(raw, |k| vars.get(k));
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    });
    WorkflowResult {
        passed,
        decided_by,
        variables,
        name,
    }
}

/// Variables after GitLab's `sort_and_expand_all`, for expanding keyword
/// values (`workflow:name`, `changes` paths). Computed only when a value
/// actually refers to a variable.
pub(crate) struct ExpandedVars {
    values: HashMap<String, String>,
}

impl ExpandedVars {
    /// The pipeline's variables plus top-level and workflow YAML variables.
    pub(crate) fn new(
        pipeline_vars: &Variables,
        top_level: &[VariableDef],
        workflow: &[VariableDef],
    ) -> ExpandedVars {
        let mut all = pipeline_vars.clone();
        all.extend(defs_to_vars(top_level, VarSource::TopLevel));
        all.extend(defs_to_vars(workflow, VarSource::WorkflowRules));
        ExpandedVars::from_set(&all)
    }

    /// Expands a complete set, in precedence order. A variable cycle keeps
    /// the values as written: GitLab reports the cycle elsewhere.
    pub(crate) fn from_set(all: &Variables) -> ExpandedVars {
        let ordered = all.in_precedence_order();
        let expanded =
            sort_and_expand_all(&ordered, ExpandOptions::GITLAB_DEFAULT).unwrap_or(ordered);
        let mut map = HashMap::with_capacity(expanded.len());
        // A later entry of a key wins, as in `Variables::lookup`; the
        // sorted order keeps each key's entries in their original order.
        for v in expanded.iter() {
            map.insert(v.key.clone(), v.value.clone());
        }
        ExpandedVars { values: map }
    }

    /// Values expanded elsewhere.
    pub(crate) fn from_values(values: HashMap<String, String>) -> ExpandedVars {
        ExpandedVars { values }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// GitLab's `expand_existing`: known names are replaced, others kept.
    pub(crate) fn expand_existing(&self, text: &str) -> String {
        expand_gitlab(text, |k| self.get(k))
    }
}

/// [`ExpandedVars`] built on first use: most `changes` and `exists` paths
/// name no variable, and expanding a job's whole set costs more than
/// evaluating its rules.
pub(crate) struct LazyExpanded<F: Fn() -> ExpandedVars> {
    cell: OnceCell<ExpandedVars>,
    make: F,
}

impl<F: Fn() -> ExpandedVars> LazyExpanded<F> {
    pub(crate) fn new(make: F) -> LazyExpanded<F> {
        LazyExpanded {
            cell: OnceCell::new(),
            make,
        }
    }

    /// GitLab's `expand_existing` against the expanded variables.
    pub(crate) fn expand_existing(&self, text: &str) -> String {
        if !text.contains(['$', '%']) {
            return text.to_string();
        }
        self.cell.get_or_init(&self.make).expand_existing(text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan_types::DecisionKind;
    use super::super::testutil::*;
    use super::FILTERED_OUT;

    /// GitLab's `workflow:name` example, with a rule setting the name.
    const NAMED: &str = r#"
variables:
  PROJECT1_PIPELINE_NAME: 'Default pipeline name'
workflow:
  name: '  $PROJECT1_PIPELINE_NAME  '
  rules:
    - if: '$CI_MERGE_REQUEST_LABELS =~ /pipeline:run-in-ruby3/'
      variables:
        PROJECT1_PIPELINE_NAME: 'Ruby 3 pipeline'
    - when: always
job:
  script: echo $CI_PIPELINE_NAME
"#;

    #[test]
    fn rule_75_workflow_name_is_expanded_and_trimmed() {
        let p = plan_of(NAMED, &ctx("push", &[]));
        assert_eq!(p.workflow.name.as_deref(), Some("Default pipeline name"));
        let p = plan_of(
            NAMED,
            &ctx(
                "push",
                &[("CI_MERGE_REQUEST_LABELS", "pipeline:run-in-ruby3")],
            ),
        );
        assert_eq!(p.workflow.name.as_deref(), Some("Ruby 3 pipeline"));
        assert_eq!(
            p.job("job").unwrap().variable("PROJECT1_PIPELINE_NAME"),
            Some("Ruby 3 pipeline")
        );
    }

    #[test]
    fn rule_75_an_empty_name_means_no_name() {
        let yaml = "workflow:\n  name: '$UNSET'\njob:\n  script: x\n";
        assert_eq!(plan_of(yaml, &ctx("push", &[])).workflow.name, None);
    }

    #[test]
    fn rule_72_no_matching_workflow_rule_means_no_pipeline() {
        let yaml = "workflow:\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\njob:\n  script: x\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert!(!p.created);
        assert_eq!(p.reason.as_deref(), Some(FILTERED_OUT));
        assert_eq!(p.workflow.decided_by.kind, DecisionKind::Default);
        let p = plan_of(yaml, &ctx("merge_request_event", &[]));
        assert!(p.created);
        assert_eq!(p.workflow.decided_by.index, Some(0));
    }

    #[test]
    fn rule_73_workflow_when_never_stops_the_pipeline() {
        let yaml = "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\n      when: never\n    - when: always\njob:\n  script: x\n";
        let p = plan_of(yaml, &ctx("push", &[("CI_COMMIT_TAG", "v1")]));
        assert!(!p.created);
        assert!(plan_of(yaml, &ctx("push", &[])).created);
    }

    #[test]
    fn rule_74_workflow_variables_override_top_level_and_reach_every_job() {
        let yaml = r#"
variables:
  DEPLOY_VARIABLE: "default-deploy"
workflow:
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      variables:
        DEPLOY_VARIABLE: "deploy-production"
    - when: always
job1:
  script: x
job2:
  script: x
  variables:
    DEPLOY_VARIABLE: "job2-default-deploy"
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(
            p.job("job1").unwrap().variable("DEPLOY_VARIABLE"),
            Some("deploy-production")
        );
        assert_eq!(
            p.job("job2").unwrap().variable("DEPLOY_VARIABLE"),
            Some("job2-default-deploy")
        );
    }

    #[test]
    fn a_workflow_rule_that_cannot_be_evaluated_filters_the_pipeline_out() {
        let yaml = "workflow:\n  rules:\n    - changes:\n        paths: ['*']\n        compare_to: nope\njob:\n  script: x\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(p.reason.as_deref(), Some(FILTERED_OUT));
        assert_eq!(
            p.warnings,
            ["workflow:rules: rule 1: rules:changes:compare_to is not a valid ref"]
        );
    }

    #[test]
    fn rule_77_workflow_rules_do_not_see_job_variables() {
        let yaml = "workflow:\n  rules:\n    - if: $ONLY_IN_JOB\njob:\n  script: x\n  variables:\n    ONLY_IN_JOB: 'yes'\n";
        assert!(!plan_of(yaml, &ctx("push", &[])).created);
    }

    #[test]
    fn rule_33_inherit_variables_false_drops_top_level_and_workflow_variables() {
        let yaml = r#"
variables:
  TOP: top
workflow:
  rules:
    - variables:
        FLOW: flow
      when: always
plain:
  script: x
isolated:
  script: x
  inherit:
    variables: false
some:
  script: x
  inherit:
    variables: [FLOW]
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        let get = |job: &str, var: &str| p.job(job).unwrap().variable(var).map(str::to_string);
        assert_eq!(
            (get("plain", "TOP"), get("plain", "FLOW")),
            (Some("top".into()), Some("flow".into()))
        );
        assert_eq!(
            (get("isolated", "TOP"), get("isolated", "FLOW")),
            (None, None)
        );
        assert_eq!(
            (get("some", "TOP"), get("some", "FLOW")),
            (None, Some("flow".into()))
        );
    }
}
