//! `only` and `except` (rules 121-127), as GitLab's build policies
//! evaluate them: `only` includes a job when every key it sets has a match;
//! `except` excludes it when any key has one.

use regex::RegexBuilder;

use super::context::RuleScope;
use super::rules_eval::Env;
use crate::ci::expr::VarLookup;
use crate::ci::model::only_except::OnlyExcept;

/// Facts about the pipeline that `refs` entries test.
#[derive(Clone, Debug)]
pub(crate) struct RefFacts {
    /// `CI_PIPELINE_SOURCE` without a trailing `_event`
    /// (`merge_request_event` is `merge_request`).
    pub source: String,
    pub tag: bool,
    /// A branch pipeline: neither a tag nor a merge request pipeline.
    pub branch: bool,
    /// The branch or tag name.
    pub git_ref: String,
    /// `CI_PROJECT_PATH`, for `name@group/project`.
    pub project_path: String,
}

impl RefFacts {
    pub(crate) fn new(source: &str, vars: &dyn VarLookup) -> RefFacts {
        let tag = vars.lookup("CI_COMMIT_TAG").is_some_and(|t| !t.is_empty());
        let merge_request = source == "merge_request_event";
        RefFacts {
            source: source.strip_suffix("_event").unwrap_or(source).to_string(),
            tag,
            branch: !tag && !merge_request,
            git_ref: vars.lookup("CI_COMMIT_REF_NAME").unwrap_or("").to_string(),
            project_path: vars.lookup("CI_PROJECT_PATH").unwrap_or("").to_string(),
        }
    }
}

/// Which key of a policy matched, or why none did, for explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyOutcome {
    pub satisfied: bool,
    /// One line per key that was checked.
    pub details: Vec<String>,
}

/// Evaluates `only` (every key must match) or `except` (`any_key`: one
/// matching key is enough).
pub(crate) fn evaluate_policy(
    policy: &OnlyExcept,
    any_key: bool,
    facts: &RefFacts,
    scope: &RuleScope<'_, '_>,
    env: &Env<'_>,
) -> PolicyOutcome {
    let mut results: Vec<(bool, String)> = Vec::new();
    if let Some(refs) = &policy.refs {
        let hit = refs.iter().find(|r| ref_matches(r, facts, env));
        results.push(match hit {
            Some(r) => (true, format!("refs: `{r}` matches")),
            None => (
                false,
                format!("refs: none of [{}] matches", refs.join(", ")),
            ),
        });
    }
    if let Some(exprs) = &policy.variables {
        let hit = exprs.iter().find(|e| match env.expr(e) {
            Some(expr) => expr.evaluate(scope as &dyn VarLookup),
            None => false,
        });
        results.push(match hit {
            Some(e) => (true, format!("variables: `{e}` is true")),
            None => (false, "variables: no expression is true".to_string()),
        });
    }
    if let Some(globs) = &policy.changes {
        let outcome = env.changes.evaluate(env.changes.default_changes(), globs);
        let detail = match outcome.matched.first() {
            Some(file) => format!("changes: {file} changed (compared with {})", outcome.base),
            None if outcome.satisfied => format!("changes: {}", outcome.base),
            None => format!("changes: nothing matching changed since {}", outcome.base),
        };
        results.push((outcome.satisfied, detail));
    }
    if let Some(k8s) = &policy.kubernetes {
        let active = k8s == "active" && env.ctx.kubernetes_active;
        results.push((
            active,
            format!(
                "kubernetes: {k8s} ({})",
                if active {
                    "active"
                } else {
                    "no cluster locally"
                }
            ),
        ));
    }
    let satisfied = if any_key {
        results.iter().any(|(ok, _)| *ok)
    } else {
        results.iter().all(|(ok, _)| *ok)
    };
    PolicyOutcome {
        satisfied,
        details: results.into_iter().map(|(_, d)| d).collect(),
    }
}

/// One `refs` entry (rule 122): `pattern@project` compares the project
/// path literally; `tags`, `branches` and the pipeline-source keywords
/// (singular or plural: `schedules`, `merge_requests`, `pushes`...) test
/// the pipeline type; otherwise a `/regex/` or a literal name is matched
/// against the ref, for branch and tag pipelines only.
pub(crate) fn ref_matches(entry: &str, facts: &RefFacts, env: &Env<'_>) -> bool {
    let (pattern, path) = match entry.split_once('@') {
        Some((pattern, path)) => (pattern, Some(path)),
        None => (entry, None),
    };
    if path.is_some_and(|p| p != facts.project_path) {
        return false;
    }
    if (facts.tag && pattern == "tags") || (facts.branch && pattern == "branches") {
        return true;
    }
    if facts.source == pattern || pluralize(&facts.source) == pattern {
        return true;
    }
    // GitLab reuses `merge_requests` for external merge requests.
    if facts.source == "external_merge_request" && pattern == "merge_requests" {
        return true;
    }
    if !(facts.branch || facts.tag) {
        return false;
    }
    match ruby_regex_literal(pattern) {
        Some((body, flags)) => {
            let compiled = env.regex(pattern, || {
                RegexBuilder::new(body)
                    .case_insensitive(flags.contains('i'))
                    .dot_matches_new_line(flags.contains('m'))
                    .swap_greed(flags.contains('U'))
                    .build()
                    .ok()
            });
            match compiled {
                Some(re) => re.is_match(&facts.git_ref),
                None => {
                    env.warn(format!(
                        "`{pattern}` is not an RE2 regular expression: it matches no ref"
                    ));
                    false
                }
            }
        }
        None => pattern == facts.git_ref,
    }
}

/// `/body/flags` with flags from `[ismU]`, as GitLab's `RubySyntax` reads a
/// regular expression written as a string.
fn ruby_regex_literal(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('/')?;
    let close = rest.rfind('/')?;
    let (body, flags) = (&rest[..close], &rest[close + 1..]);
    flags
        .chars()
        .all(|c| matches!(c, 'i' | 's' | 'm' | 'U'))
        .then_some((body, flags))
}

/// ActiveSupport's `pluralize` for the pipeline source names GitLab has.
fn pluralize(word: &str) -> String {
    match word {
        "" => String::new(),
        "push" => "pushes".to_string(),
        w if w.ends_with('s') => format!("{w}es"),
        w if w.ends_with("cy") => format!("{}ies", &w[..w.len() - 1]),
        w => format!("{w}s"),
    }
}

/// `[branches, tags]` or `{refs: [main], variables: [...]}`, one line.
pub(crate) fn policy_text(p: &OnlyExcept) -> String {
    let mut parts = Vec::new();
    if let Some(refs) = &p.refs {
        parts.push(format!("refs: [{}]", refs.join(", ")));
    }
    if let Some(vars) = &p.variables {
        parts.push(format!("variables: [{}]", vars.join(", ")));
    }
    if let Some(changes) = &p.changes {
        parts.push(format!("changes: [{}]", changes.join(", ")));
    }
    if let Some(k) = &p.kubernetes {
        parts.push(format!("kubernetes: {k}"));
    }
    match (parts.len(), &p.refs) {
        (1, Some(refs)) => format!("[{}]", refs.join(", ")),
        _ => format!("{{{}}}", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn rule_123_without_rules_jobs_run_for_branches_and_tags_only() {
        let yaml = "job-with-no-rules:\n  script: x\njob-with-rules:\n  script: x\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n";
        assert_eq!(
            names(&plan_of(yaml, &ctx("push", &[]))),
            ["job-with-no-rules"]
        );
        assert_eq!(
            names(&plan_of(yaml, &ctx("push", &[("CI_COMMIT_TAG", "v1")]))),
            ["job-with-no-rules"]
        );
        assert_eq!(
            names(&plan_of(yaml, &ctx("merge_request_event", &[]))),
            ["job-with-rules"]
        );
    }

    #[test]
    fn rule_78_workflow_rules_remove_the_implicit_only() {
        let yaml = "workflow:\n  rules:\n    - when: always\njob:\n  script: x\n";
        let p = plan_of(yaml, &ctx("merge_request_event", &[]));
        assert_eq!(names(&p), ["job"]);
    }

    #[test]
    fn rule_122_pipeline_type_keywords() {
        let yaml = "job:\n  script: x\n  only:\n    - tags\n    - triggers\n    - schedules\n";
        assert!(plan_of(yaml, &ctx("push", &[])).jobs.is_empty());
        for (source, vars) in [
            ("push", &[("CI_COMMIT_TAG", "v1")][..]),
            ("trigger", &[]),
            ("schedule", &[]),
        ] {
            assert_eq!(plan_of(yaml, &ctx(source, vars)).jobs.len(), 1, "{source}");
        }
        let mr = "job:\n  script: x\n  only: [merge_requests]\n";
        assert_eq!(plan_of(mr, &ctx("merge_request_event", &[])).jobs.len(), 1);
        let pushes = "job:\n  script: x\n  only: [pushes]\n";
        assert_eq!(plan_of(pushes, &ctx("push", &[])).jobs.len(), 1);
        assert!(plan_of(pushes, &ctx("web", &[])).jobs.is_empty());
    }

    #[test]
    fn rule_122_regexes_names_and_project_paths() {
        let yaml = r#"
job:
  script: x
  only:
    - branches@group/project
  except:
    - main@group/project
    - /^release/.*$/@group/project
fork:
  script: x
  only: [branches@someone/fork]
issue:
  script: x
  only: ['/^issue-.*$/i']
"#;
        let run = |branch: &str| {
            let c = ctx(
                "push",
                &[("CI_COMMIT_REF_NAME", branch), ("CI_COMMIT_BRANCH", branch)],
            );
            names(&plan_of(yaml, &c)).join(",")
        };
        assert_eq!(run("main"), "");
        assert_eq!(run("release/1.0"), "");
        assert_eq!(run("feature"), "job");
        assert_eq!(run("ISSUE-12"), "job,issue");
    }

    #[test]
    fn rule_124_only_branches_also_matches_schedules() {
        let yaml = "job:\n  script: x\n  only: [branches]\nnot-scheduled:\n  script: x\n  only: [branches]\n  except: [schedules]\n";
        assert_eq!(names(&plan_of(yaml, &ctx("schedule", &[]))), ["job"]);
    }

    #[test]
    fn rule_125_variables_any_expression_and_keys_combine() {
        let yaml = r#"
end-to-end:
  script: rake test:end-to-end
  except:
    variables:
      - $CI_COMMIT_MESSAGE =~ /skip-end-to-end-tests/
test:
  script: npm run test
  only:
    refs:
      - main
      - schedules
    variables:
      - $CI_COMMIT_MESSAGE =~ /run-end-to-end-tests/
"#;
        let skip = ctx(
            "push",
            &[("CI_COMMIT_MESSAGE", "fix: skip-end-to-end-tests")],
        );
        assert!(plan_of(yaml, &skip).jobs.is_empty());
        let run = ctx(
            "push",
            &[("CI_COMMIT_MESSAGE", "please run-end-to-end-tests")],
        );
        assert_eq!(names(&plan_of(yaml, &run)), ["end-to-end", "test"]);
        let feature = ctx(
            "push",
            &[
                ("CI_COMMIT_MESSAGE", "run-end-to-end-tests"),
                ("CI_COMMIT_REF_NAME", "feature"),
            ],
        );
        assert_eq!(names(&plan_of(yaml, &feature)), ["end-to-end"]);
    }

    #[test]
    fn rule_126_changes_without_a_push_only_runs_and_except_skips() {
        let yaml = "build:\n  script: x\n  except:\n    changes: ['*.md']\ndocs:\n  script: x\n  only:\n    changes: ['*.md']\n";
        let tag = ctx("push", &[("CI_COMMIT_TAG", "v1")]);
        let p = plan_of(yaml, &tag);
        assert_eq!(names(&p), ["docs"]);
        assert!(
            p.skipped[0]
                .reason
                .starts_with("except: {changes: [*.md]} matches")
        );
    }

    #[test]
    fn rule_127_kubernetes_is_never_active_locally() {
        let yaml = "test:\n  script: x\n  only:\n    refs: [main]\n    kubernetes: active\nother:\n  script: x\n  except:\n    kubernetes: active\n";
        assert_eq!(names(&plan_of(yaml, &ctx("push", &[]))), ["other"]);
        let mut with_cluster = ctx("push", &[]);
        with_cluster.kubernetes_active = true;
        assert_eq!(names(&plan_of(yaml, &with_cluster)), ["test"]);
    }
}
