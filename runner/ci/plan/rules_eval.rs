//! Evaluating `rules` and `workflow:rules`: the first rule whose clauses
//! all hold decides (rules 80-84).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

use super::changes::{ChangeTracker, ChangesOutcome};
use super::context::{PlanContext, RuleScope};
use super::exists::{ExistsIndex, ExistsOutcome};
use crate::ci::expr::{Explanation, Expr, VarLookup};
use crate::ci::model::rules::Rule;
use crate::ci::model::when::When;

/// Shared, per-plan state: parsed expressions, change sets and file lists
/// are computed once however many jobs use them.
pub(crate) struct Env<'c> {
    pub ctx: &'c PlanContext,
    pub changes: ChangeTracker,
    pub exists: ExistsIndex,
    exprs: RefCell<HashMap<String, Option<Rc<Expr>>>>,
    regexes: RefCell<HashMap<String, Option<Rc<Regex>>>>,
    warnings: RefCell<Vec<String>>,
}

impl<'c> Env<'c> {
    pub(crate) fn new(ctx: &'c PlanContext, changes: ChangeTracker) -> Env<'c> {
        Env {
            ctx,
            changes,
            exists: ExistsIndex::new(&ctx.project_dir),
            exprs: RefCell::new(HashMap::new()),
            regexes: RefCell::new(HashMap::new()),
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// The parsed expression, or `None` when it does not parse.
    pub(crate) fn expr(&self, text: &str) -> Option<Rc<Expr>> {
        if let Some(hit) = self.exprs.borrow().get(text) {
            return hit.clone();
        }
        let parsed = Expr::parse(text).ok().map(Rc::new);
        self.exprs
            .borrow_mut()
            .insert(text.to_string(), parsed.clone());
        parsed
    }

    /// A compiled `refs` regular expression, keyed by its literal text
    /// (`/^release/i`); `None` when RE2 syntax rejects it.
    pub(crate) fn regex(
        &self,
        literal: &str,
        build: impl FnOnce() -> Option<Regex>,
    ) -> Option<Rc<Regex>> {
        if let Some(hit) = self.regexes.borrow().get(literal) {
            return hit.clone();
        }
        let compiled = build().map(Rc::new);
        self.regexes
            .borrow_mut()
            .insert(literal.to_string(), compiled.clone());
        compiled
    }

    pub(crate) fn warn(&self, message: String) {
        let mut warnings = self.warnings.borrow_mut();
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    }

    /// Every warning so far, change detection's included.
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        let mut out = std::mem::take(&mut *self.warnings.borrow_mut());
        out.extend(self.changes.take_warnings());
        out
    }
}

/// What one rule's clauses gave, for `--why`.
#[derive(Clone, Debug)]
pub(crate) struct RuleTrace {
    pub index: usize,
    pub if_result: Option<Explanation>,
    pub changes: Option<ChangesOutcome>,
    pub exists: Option<ExistsOutcome>,
    pub matched: bool,
}

/// A rule that could not be evaluated. GitLab fails the pipeline with
/// `Failed to parse rule for <job>: <message>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleError {
    pub index: usize,
    pub message: String,
}

/// The inputs of one evaluation: the variables `if` sees, and how to
/// expand `$VAR` in `changes`/`exists` paths (GitLab's `expand_existing`
/// against the expanded variables).
pub(crate) struct RuleInput<'x, 's, 'a> {
    pub scope: &'x RuleScope<'s, 'a>,
    pub expand: &'x dyn Fn(&str) -> String,
}

/// Finds the first matching rule. With `trace`, records every evaluated
/// rule's clauses.
pub(crate) fn first_match<'r>(
    rules: &'r [Rule],
    input: &RuleInput<'_, '_, '_>,
    env: &Env<'_>,
    mut trace: Option<&mut Vec<RuleTrace>>,
) -> Result<Option<(usize, &'r Rule)>, RuleError> {
    for (index, rule) in rules.iter().enumerate() {
        let mut t = RuleTrace {
            index,
            if_result: None,
            changes: None,
            exists: None,
            matched: false,
        };
        let matched = rule_matches(rule, input, env, trace.is_some().then_some(&mut t))
            .map_err(|message| RuleError { index, message })?;
        t.matched = matched;
        if let Some(trace) = trace.as_deref_mut() {
            trace.push(t);
        }
        if matched {
            return Ok(Some((index, rule)));
        }
    }
    Ok(None)
}

/// All clauses must hold (rule 82); a rule with none always matches (84).
/// Clauses are checked in the order `if`, `changes`, `exists`, stopping at
/// the first that fails.
fn rule_matches(
    rule: &Rule,
    input: &RuleInput<'_, '_, '_>,
    env: &Env<'_>,
    mut trace: Option<&mut RuleTrace>,
) -> Result<bool, String> {
    if let Some(text) = &rule.if_expr {
        let expr = env
            .expr(text)
            .ok_or_else(|| "invalid expression syntax".to_string())?;
        let value = match trace.as_deref_mut() {
            Some(t) => {
                let explained = expr.explain(input.scope as &dyn VarLookup);
                let value = explained.value;
                t.if_result = Some(explained);
                value
            }
            None => expr.evaluate(input.scope as &dyn VarLookup),
        };
        if !value {
            return Ok(false);
        }
    }
    if let Some(changes) = &rule.changes {
        let paths: Vec<String> = changes.paths.iter().map(|p| (input.expand)(p)).collect();
        let outcome = match &changes.compare_to {
            Some(reference) => {
                let reference = (input.expand)(reference);
                let set = env.changes.compared_to(&reference)?;
                env.changes.evaluate(&set, &paths)
            }
            None => env.changes.evaluate(env.changes.default_changes(), &paths),
        };
        let satisfied = outcome.satisfied;
        if let Some(t) = trace.as_deref_mut() {
            t.changes = Some(outcome);
        }
        if !satisfied {
            return Ok(false);
        }
    }
    if let Some(exists) = &rule.exists {
        let outcome = evaluate_exists(rule, exists, input, env)?;
        let satisfied = outcome.satisfied;
        if let Some(t) = trace {
            t.exists = Some(outcome);
        }
        if !satisfied {
            return Ok(false);
        }
    }
    Ok(true)
}

fn evaluate_exists(
    _rule: &Rule,
    exists: &crate::ci::model::rules::Exists,
    input: &RuleInput<'_, '_, '_>,
    env: &Env<'_>,
) -> Result<ExistsOutcome, String> {
    let paths: Vec<String> = exists.paths.iter().map(|p| (input.expand)(p)).collect();
    let own_project = input
        .scope
        .lookup("CI_PROJECT_PATH")
        .unwrap_or("")
        .to_string();
    let project = exists.project.as_deref().map(|p| (input.expand)(p));
    if let Some(project) = project.as_deref().filter(|p| *p != own_project) {
        env.warn(format!(
            "rules:exists:project `{project}` is another project, which cannot be read locally: \
             its files count as missing"
        ));
        return Ok(ExistsOutcome {
            satisfied: false,
            matched: None,
            searched: format!("project {project} (not readable locally)"),
        });
    }
    match exists.git_ref.as_deref().map(|r| (input.expand)(r)) {
        Some(reference) => {
            let files = env.exists.tree(&reference).ok_or_else(|| {
                format!(
                    "rules:exists:ref `{reference}` is not a valid ref in project `{own_project}`"
                )
            })?;
            Ok(ExistsIndex::evaluate(
                &files,
                &paths,
                &env.changes,
                format!("the tree of {reference}"),
            ))
        }
        None => {
            let files = env.exists.worktree();
            Ok(ExistsIndex::evaluate(
                &files,
                &paths,
                &env.changes,
                "the working tree".to_string(),
            ))
        }
    }
}

/// The rule as one line: `if: $X == "y", changes: [a, b], when: manual`.
pub(crate) fn rule_text(rule: &Rule) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(expr) = &rule.if_expr {
        parts.push(format!("if: {expr}"));
    }
    if let Some(changes) = &rule.changes {
        let paths = changes.paths.join(", ");
        match &changes.compare_to {
            Some(c) => parts.push(format!("changes: {{paths: [{paths}], compare_to: {c}}}")),
            None => parts.push(format!("changes: [{paths}]")),
        }
    }
    if let Some(exists) = &rule.exists {
        parts.push(format!("exists: [{}]", exists.paths.join(", ")));
    }
    if let Some(when) = rule.when {
        parts.push(format!("when: {}", when.as_str()));
    }
    if parts.is_empty() {
        parts.push("(always)".to_string());
    }
    parts.join(", ")
}

/// A rule with only `when` (other than `never`): with no `workflow:rules`,
/// GitLab warns that it may run duplicate pipelines (rule 79).
pub(crate) fn is_bare_when(rule: &Rule) -> bool {
    rule.if_expr.is_none()
        && rule.changes.is_none()
        && rule.exists.is_none()
        && rule.start_in.is_none()
        && rule.allow_failure.is_none()
        && rule.variables.is_empty()
        && rule.needs.is_none()
        && rule.interruptible.is_none()
        && rule.when.is_some_and(|w| w != When::Never)
}

/// The values in `rules` that GitLab expands against the job's variables:
/// `changes` and `exists` paths, `compare_to`, `exists:project` and `ref`.
pub(crate) fn rule_path_texts(rules: &[Rule]) -> Vec<&str> {
    let mut out = Vec::new();
    for rule in rules {
        if let Some(c) = &rule.changes {
            out.extend(c.paths.iter().map(String::as_str));
            out.extend(c.compare_to.as_deref());
        }
        if let Some(e) = &rule.exists {
            out.extend(e.paths.iter().map(String::as_str));
            out.extend(e.project.as_deref());
            out.extend(e.git_ref.as_deref());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::git::testing::*;
    use super::super::testutil::*;
    use crate::ci::model::when::When;

    /// The first example of GitLab's "Specify when jobs run with rules".
    const TWO_CASES: &str = r#"
job:
  script: echo "Hello, Rules!"
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: manual
      allow_failure: true
    - if: $CI_PIPELINE_SOURCE == "schedule"
"#;

    #[test]
    fn rule_80_first_matching_rule_decides() {
        let mr = plan_of(TWO_CASES, &ctx("merge_request_event", &[]));
        let job = mr.job("job").unwrap();
        assert_eq!((job.when, job.allow_failure), (When::Manual, true));
        assert_eq!(job.decided_by.index, Some(0));

        let schedule = plan_of(TWO_CASES, &ctx("schedule", &[]));
        let job = schedule.job("job").unwrap();
        assert_eq!((job.when, job.allow_failure), (When::OnSuccess, false));
        assert_eq!(job.decided_by.index, Some(1));

        let push = plan_of(TWO_CASES, &ctx("push", &[]));
        assert!(push.jobs.is_empty());
        assert_eq!(push.skipped[0].reason, "no rule matched");
        assert!(!push.created);
    }

    #[test]
    fn rule_85_when_never_excludes_and_a_final_when_rule_includes() {
        let yaml = r#"
job:
  script: echo "Hello, Rules!"
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: never
    - if: $CI_PIPELINE_SOURCE == "schedule"
      when: never
    - when: on_success
"#;
        let mr = plan_of(yaml, &ctx("merge_request_event", &[]));
        assert!(mr.jobs.is_empty());
        assert_eq!(mr.skipped[0].reason, "rule 1: when: never");
        assert!(plan_of(yaml, &ctx("schedule", &[])).jobs.is_empty());
        let push = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(push.job("job").unwrap().decided_by.index, Some(2));
    }

    #[test]
    fn rule_83_a_rule_without_when_takes_the_job_when() {
        let yaml = "job:\n  script: x\n  when: on_failure\n  rules:\n    - if: $CI_COMMIT_BRANCH\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(p.job("job").unwrap().when, When::OnFailure);
    }

    #[test]
    fn rule_87_a_delayed_rule_carries_its_start_in() {
        let yaml = "job:\n  script: x\n  rules:\n    - if: $CI_COMMIT_BRANCH\n      when: delayed\n      start_in: 5 minutes\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        let job = p.job("job").unwrap();
        assert_eq!(job.when, When::Delayed);
        assert_eq!(job.start_in.as_deref(), Some("5 minutes"));
    }

    #[test]
    fn rule_84_a_when_only_rule_always_matches() {
        let yaml = "job:\n  script: x\n  rules:\n    - if: $NOPE\n    - when: always\n";
        let p = plan_of(yaml, &ctx("web", &[]));
        assert_eq!(p.job("job").unwrap().when, When::Always);
    }

    #[test]
    fn rule_86_rules_manual_blocks_but_job_level_manual_may_fail() {
        let rules_manual = "job:\n  script: x\n  rules:\n    - when: manual\n";
        let p = plan_of(rules_manual, &ctx("push", &[]));
        assert!(!p.job("job").unwrap().allow_failure);
        let job_manual =
            "job:\n  script: x\n  when: manual\n  rules:\n    - if: $CI_COMMIT_BRANCH\n";
        let p = plan_of(job_manual, &ctx("push", &[]));
        let job = p.job("job").unwrap();
        assert_eq!((job.when, job.allow_failure), (When::Manual, true));
    }

    #[test]
    fn rule_82_every_clause_of_a_rule_must_hold() {
        let yaml = r#"
docker build:
  script: docker build .
  rules:
    - if: $VAR == "string value"
      exists:
        - Dockerfile
      when: manual
      allow_failure: true
"#;
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "Dockerfile", "FROM x");
        let with_var = ctx_in(tmp.path(), "push", &[("VAR", "string value")]);
        assert_eq!(plan_of(yaml, &with_var).jobs.len(), 1);
        let without_var = ctx_in(tmp.path(), "push", &[]);
        assert!(plan_of(yaml, &without_var).jobs.is_empty());
        let no_file = ctx("push", &[("VAR", "string value")]);
        assert!(plan_of(yaml, &no_file).jobs.is_empty());
    }

    #[test]
    fn rule_98_rule_allow_failure_and_interruptible_replace_the_job_values() {
        let yaml = "job:\n  script: x\n  allow_failure: {exit_codes: [3]}\n  interruptible: false\n  rules:\n    - if: $CI_COMMIT_BRANCH\n      allow_failure: true\n      interruptible: true\n    - when: always\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        let job = p.job("job").unwrap();
        assert_eq!(
            (job.allow_failure, &job.allow_failure_exit_codes),
            (true, &None)
        );
        assert_eq!(job.interruptible, Some(true));
        let p = plan_of(yaml, &ctx("push", &[("CI_COMMIT_BRANCH", "")]));
        let job = p.job("job").unwrap();
        assert_eq!(
            (job.allow_failure, job.allow_failure_exit_codes.clone()),
            (false, Some(vec![3]))
        );
        assert_eq!(job.interruptible, Some(false));
    }

    #[test]
    fn rule_99_rules_needs_replace_the_job_needs() {
        let yaml = r#"
stages: [build, test]
a:
  stage: build
  script: x
b:
  stage: build
  script: x
job:
  stage: test
  script: x
  needs: [a]
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule"
      needs: [b]
    - when: on_success
"#;
        let needs = |source| {
            let p = plan_of(yaml, &ctx(source, &[]));
            let job = p.job("job").unwrap().clone();
            job.needs
                .unwrap()
                .into_iter()
                .map(|n| n.job)
                .collect::<Vec<_>>()
        };
        assert_eq!(needs("schedule"), ["b"]);
        assert_eq!(needs("push"), ["a"]);
    }

    #[test]
    fn rule_100_rules_variables_override_job_variables_once_matched() {
        let yaml = r#"
variables:
  DEPLOY: "default"
job:
  script: x
  variables:
    DEPLOY: "job"
  rules:
    - if: $DEPLOY == "job"
      variables:
        DEPLOY: "rule"
        EXTRA: "$DEPLOY-extra"
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        let job = p.job("job").unwrap();
        assert_eq!(job.variable("DEPLOY"), Some("rule"));
        assert_eq!(job.variable("EXTRA"), Some("rule-extra"));
    }

    #[test]
    fn rule_114_a_variable_holding_a_regex_is_used_as_one() {
        let yaml = r#"
variables:
  pattern: '/^ab.*/'
regex-job1:
  variables:
    teststring: 'abcde'
  script: echo "This job will run"
  rules:
    - if: '$teststring =~ $pattern'
regex-job2:
  variables:
    teststring: 'fghij'
  script: echo "This job will not run"
  rules:
    - if: '$teststring =~ $pattern'
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(names(&p), ["regex-job1"]);
    }

    #[test]
    fn rule_119_rules_see_job_name_but_not_job_only_variables() {
        let yaml = "job:\n  script: x\n  rules:\n    - if: $CI_JOB_NAME == \"job\" && $CI_JOB_ID == null\n";
        assert_eq!(plan_of(yaml, &ctx("push", &[])).jobs.len(), 1);
    }

    #[test]
    fn rule_182_pipeline_variables_outrank_yaml_in_rules() {
        let yaml =
            "variables:\n  MODE: yaml\njob:\n  script: x\n  rules:\n    - if: $MODE == \"cli\"\n";
        assert!(plan_of(yaml, &ctx("push", &[])).jobs.is_empty());
        assert_eq!(
            plan_of(yaml, &ctx("push", &[("MODE", "cli")])).jobs.len(),
            1
        );
    }

    #[test]
    fn rule_79_a_bare_final_when_warns_without_workflow_rules() {
        let yaml = "job:\n  script: x\n  rules:\n    - if: $X == \"false\"\n      when: never\n    - when: always\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert!(p.warnings[0].starts_with("jobs:job may allow multiple pipelines"));
        let with_workflow = format!("workflow:\n  rules:\n    - when: always\n{yaml}");
        let p = plan_of(&with_workflow, &ctx("push", &[]));
        assert!(!p.warnings.iter().any(|w| w.contains("multiple pipelines")));
    }

    #[test]
    fn rule_94_changes_paths_expand_only_existing_variables() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir);
        write(dir, "README", "1");
        commit_all(dir, "one");
        write(dir, "path/to/files/Dockerfile", "FROM x");
        write(dir, "$LITERAL/x", "1");
        commit_all(dir, "two");
        let yaml = r#"
docker build:
  variables:
    DOCKERFILES_DIR: 'path/to/files'
  script: docker build .
  rules:
    - changes:
        - $DOCKERFILES_DIR/*
literal:
  script: x
  rules:
    - changes: [$LITERAL/*]
untouched:
  script: x
  rules:
    - changes: [README]
"#;
        let p = plan_of(yaml, &ctx_in(dir, "push", &[]));
        assert_eq!(names(&p), ["docker build", "literal"]);
    }

    #[test]
    fn rule_93_compare_to_an_unknown_ref_fails_the_pipeline() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path());
        write(tmp.path(), "a", "1");
        commit_all(tmp.path(), "one");
        let yaml = "job:\n  script: x\n  rules:\n    - changes:\n        paths: ['*']\n        compare_to: refs/heads/nope\n";
        let errors = errors_of(yaml, &ctx_in(tmp.path(), "push", &[]));
        assert_eq!(
            errors,
            ["Failed to parse rule for job: rules:changes:compare_to is not a valid ref"]
        );
    }
}
