//! `needs` and `dependencies` once rules have chosen the jobs (rules
//! 140-155): parallel names expanded, optional needs dropped, missing ones
//! reported in GitLab's words.
//!
//! The checks GitLab makes on the configuration itself (an undefined need,
//! a need in a later stage, duplicates, cycles) are made while decoding the
//! model; what is left here is what depends on which jobs were created.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::plan_types::PlannedNeed;
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::model::job::Job;
use crate::ci::model::needs::{MAX_NEEDS, Need, NeedTarget, too_many_needs_message};
use crate::ci::model::parallel::{MatrixEntry, Parallel};

/// Configuration jobs by name, to expand needs on `parallel` jobs.
pub(crate) struct JobIndex<'p> {
    jobs: HashMap<&'p str, &'p Job>,
}

impl<'p> JobIndex<'p> {
    pub(crate) fn new(jobs: &'p [Job]) -> JobIndex<'p> {
        JobIndex {
            jobs: jobs.iter().map(|j| (j.name.as_str(), j)).collect(),
        }
    }

    /// The pipeline job names `name` stands for: all copies of a
    /// `parallel` job (rule 143), or the name itself.
    pub(crate) fn expand_name(&self, name: &str) -> Vec<String> {
        match self.jobs.get(name).and_then(|j| j.parallel.as_ref()) {
            Some(parallel) => parallel.job_names(name),
            None => vec![name.to_string()],
        }
    }

    /// A `needs` entry as pipeline job names: `needs:parallel:matrix`
    /// selects the copies its own matrix names (rule 150), otherwise a
    /// `parallel` job means all its copies. Needs on other pipelines or
    /// projects name no job of this pipeline. `$[[ matrix.NAME ]]` in the
    /// entry takes the needing job's own value (rule 71); names it lacks
    /// are added to `missing`.
    pub(crate) fn expand_need(
        &self,
        need: &Need,
        own: &dyn Fn(&str) -> Option<String>,
        missing: &mut Vec<String>,
    ) -> Vec<String> {
        let NeedTarget::Job { job, matrix } = &need.target else {
            return Vec::new();
        };
        let job = interpolate_matrix(job, own, missing);
        let parallel = self
            .jobs
            .get(job.as_str())
            .and_then(|j| j.parallel.as_ref());
        match (parallel, matrix) {
            (Some(_), Some(matrix)) => {
                let entries: Vec<MatrixEntry> = matrix
                    .iter()
                    .map(|entry| MatrixEntry {
                        vars: entry
                            .vars
                            .iter()
                            .map(|(name, values)| {
                                let values = values
                                    .iter()
                                    .map(|v| interpolate_matrix(v, own, missing))
                                    .collect();
                                (name.clone(), values)
                            })
                            .collect(),
                    })
                    .collect();
                Parallel::Matrix(entries).job_names(&job)
            }
            (Some(parallel), None) => parallel.job_names(&job),
            (None, _) => vec![job],
        }
    }
}

/// GitLab's matrix expressions in `needs`: each `$[[ matrix.NAME ]]` is
/// replaced by the needing job's value of `NAME` (rule 71).
pub(crate) fn interpolate_matrix(
    text: &str,
    own: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<String>,
) -> String {
    static EXPRESSION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\$\[\[\s*matrix\.([a-zA-Z0-9_-]+)\s*\]\]").expect("valid regex")
    });
    if !text.contains("$[[") {
        return text.to_string();
    }
    EXPRESSION
        .replace_all(text, |caps: &regex::Captures<'_>| match own(&caps[1]) {
            Some(value) => value,
            None => {
                let message = format!("'{}' does not exist in matrix configuration", &caps[1]);
                if !missing.contains(&message) {
                    missing.push(message);
                }
                caps[0].to_string()
            }
        })
        .into_owned()
}

/// Resolves a created job's `needs` against the jobs created with it.
/// Optional needs on absent jobs are dropped (rule 145); a required one is
/// GitLab's pipeline error (rule 144); more than 50 is an error too.
pub(crate) fn resolve_needs(
    job: &NeedingJob<'_>,
    needs: &[Need],
    index: &JobIndex<'_>,
    present: &HashSet<&str>,
    diags: &mut Diagnostics,
) -> Vec<PlannedNeed> {
    let job_name = job.name;
    let mut missing = Vec::new();
    let expanded: Vec<(&Need, String)> = needs
        .iter()
        .flat_map(|need| {
            index
                .expand_need(need, job.own, &mut missing)
                .into_iter()
                .map(move |n| (need, n))
        })
        .collect();
    if !missing.is_empty() {
        let span = needs.first().map(|n| n.span).unwrap_or_default();
        for message in missing {
            diags.push(Diagnostic::config(
                span,
                format!("{} job: {message}", job.config_name),
            ));
        }
        return Vec::new();
    }
    if expanded.len() > MAX_NEEDS {
        let span = needs.first().map(|n| n.span).unwrap_or_default();
        diags.push(Diagnostic::config(
            span,
            too_many_needs_message(job_name, expanded.len()),
        ));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(expanded.len());
    for (need, name) in expanded {
        if present.contains(name.as_str()) {
            out.push(PlannedNeed {
                job: name,
                artifacts: need.artifacts,
                optional: need.optional,
            });
        } else if !need.optional {
            diags.push(Diagnostic::config(
                need.span,
                missing_need_message(job_name, &name),
            ));
        }
    }
    out
}

/// The job whose needs are resolved.
pub(crate) struct NeedingJob<'a> {
    /// Its pipeline name (`test 1/2`).
    pub name: &'a str,
    /// Its configuration name (`test`).
    pub config_name: &'a str,
    /// Its own variables, matrix values included, for matrix expressions.
    pub own: &'a dyn Fn(&str) -> Option<String>,
}

/// GitLab's error for a need on a job that `rules`, `only` or `except`
/// left out.
pub(crate) fn missing_need_message(job: &str, need: &str) -> String {
    format!(
        "'{job}' job needs '{need}' job, but '{need}' does not exist in the pipeline. \
         This might be because of the only, except, or rules keywords. \
         To need a job that sometimes does not exist in the pipeline, use needs:optional."
    )
}

/// `dependencies` as pipeline job names: a `parallel` job stands for all
/// its copies; a copy's own name (`"ruby: [2.7, aws]"`) stays (rule 155).
pub(crate) fn expand_dependencies(deps: &[String], index: &JobIndex<'_>) -> Vec<String> {
    deps.iter().flat_map(|d| index.expand_name(d)).collect()
}

/// Needs on other projects and pipelines, which a local run cannot wait
/// for, described for the caller's warning.
pub(crate) fn external_needs(needs: &[Need]) -> impl Iterator<Item = String> + '_ {
    needs.iter().filter_map(|n| match &n.target {
        NeedTarget::Job { .. } => None,
        NeedTarget::Project {
            project,
            job,
            git_ref,
        } => Some(format!(
            "needs:project {project} (job {job}, ref {git_ref})"
        )),
        NeedTarget::Pipeline { pipeline, job } => {
            Some(format!("needs:pipeline {pipeline} (job {job})"))
        }
        NeedTarget::Upstream { pipeline } => Some(format!("needs:pipeline {pipeline}")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::seed::plan;
    use super::super::testutil::*;
    use super::missing_need_message;
    use crate::ci::model::needs::NeedTarget;

    const BUILD_ON_MR_ONLY: &str = r#"
build:
  stage: build
  script: echo
  rules:
    - if: '$CI_MERGE_REQUEST_ID'
test:
  stage: test
  script: echo
  needs: ['build']
"#;

    #[test]
    fn rule_144_a_need_left_out_by_rules_fails_the_pipeline() {
        let errors = errors_of(BUILD_ON_MR_ONLY, &ctx("push", &[]));
        assert_eq!(errors, [missing_need_message("test", "build")]);
        assert_eq!(
            errors[0],
            "'test' job needs 'build' job, but 'build' does not exist in the pipeline. \
             This might be because of the only, except, or rules keywords. \
             To need a job that sometimes does not exist in the pipeline, use needs:optional."
        );
    }

    #[test]
    fn rule_145_optional_needs_on_absent_jobs_are_dropped() {
        let yaml =
            BUILD_ON_MR_ONLY.replace("needs: ['build']", "needs: [{job: build, optional: true}]");
        let p = plan_of(&yaml, &ctx("push", &[]));
        assert_eq!(p.job("test").unwrap().needs.as_deref(), Some(&[][..]));
        let p = plan_of(&yaml, &ctx("push", &[("CI_MERGE_REQUEST_ID", "1")]));
        let needs = p.job("test").unwrap().needs.clone().unwrap();
        assert_eq!((needs[0].job.as_str(), needs[0].optional), ("build", true));
    }

    #[test]
    fn rule_143_needing_a_parallel_job_needs_every_copy() {
        let yaml = r#"
build:
  stage: build
  script: x
  parallel: 2
ruby:
  stage: build
  script: x
  parallel:
    matrix:
      - RUBY_VERSION: ["2.7", "3.0"]
        PROVIDER: [aws, gcp]
test:
  stage: test
  script: x
  needs:
    - build
    - job: ruby
      artifacts: false
      parallel:
        matrix:
          - RUBY_VERSION: "2.7"
            PROVIDER: [aws, gcp]
deploy:
  stage: deploy
  script: x
  dependencies:
    - "ruby: [3.0, aws]"
    - build
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        let test = p.job("test").unwrap();
        let needs: Vec<(&str, bool)> = test
            .needs
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| (n.job.as_str(), n.artifacts))
            .collect();
        assert_eq!(
            needs,
            [
                ("build 1/2", true),
                ("build 2/2", true),
                ("ruby: [2.7, aws]", false),
                ("ruby: [2.7, gcp]", false)
            ]
        );
        assert_eq!(
            p.job("deploy").unwrap().dependencies.as_deref(),
            Some(
                &[
                    "ruby: [3.0, aws]".to_string(),
                    "build 1/2".into(),
                    "build 2/2".into()
                ][..]
            )
        );
    }

    #[test]
    fn rule_71_matrix_expressions_select_the_matching_copy() {
        let yaml = r#"
stages: [build, test]
linux:build:
  stage: build
  parallel:
    matrix:
      - PROVIDER: [aws, gcp]
        STACK: [monitoring, app1]
  script: x
linux:test:
  stage: test
  parallel:
    matrix:
      - PROVIDER: [aws, gcp]
        STACK: [monitoring, app1]
  needs:
    - job: linux:build
      parallel:
        matrix:
          - PROVIDER: aws
            STACK: monitoring
  script: x
"#;
        // Decoding does not know matrix expressions yet, so they are put in
        // after it, where `needs:parallel:matrix` values are kept.
        let mut pipeline = pipeline(yaml);
        let test = pipeline
            .jobs
            .iter_mut()
            .find(|j| j.name == "linux:test")
            .unwrap();
        let need = &mut test.needs.as_mut().unwrap()[0];
        let NeedTarget::Job {
            matrix: Some(matrix),
            ..
        } = &mut need.target
        else {
            panic!("a job need with a matrix");
        };
        matrix[0].vars[0].1 = vec!["$[[ matrix.PROVIDER ]]".into()];
        matrix[0].vars[1].1 = vec!["$[[matrix.STACK]]".into()];
        let p = plan(&pipeline, &ctx("push", &[])).unwrap();
        let needs = |job: &str| -> Vec<String> {
            p.job(job)
                .unwrap()
                .needs
                .iter()
                .flatten()
                .map(|n| n.job.clone())
                .collect()
        };
        assert_eq!(
            needs("linux:test: [gcp, app1]"),
            ["linux:build: [gcp, app1]"]
        );
        assert_eq!(
            needs("linux:test: [aws, monitoring]"),
            ["linux:build: [aws, monitoring]"]
        );

        matrix_set(&mut pipeline, "$[[ matrix.NOPE ]]");
        let errors: Vec<String> = plan(&pipeline, &ctx("push", &[]))
            .unwrap_err()
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert!(
            errors.contains(
                &"linux:test job: 'NOPE' does not exist in matrix configuration".to_string()
            ),
            "{errors:?}"
        );
    }

    fn matrix_set(pipeline: &mut crate::ci::model::pipeline::Pipeline, value: &str) {
        let test = pipeline
            .jobs
            .iter_mut()
            .find(|j| j.name == "linux:test")
            .unwrap();
        let need = &mut test.needs.as_mut().unwrap()[0];
        if let NeedTarget::Job {
            matrix: Some(matrix),
            ..
        } = &mut need.target
        {
            matrix[0].vars[0].1 = vec![value.into()];
        }
    }

    #[test]
    fn rule_140_more_than_fifty_needs_fail_once_rules_have_run() {
        let mut yaml = String::from("stages: [a, b]\nbig:\n  stage: b\n  script: x\n  needs:\n");
        for i in 0..51 {
            yaml.push_str(&format!("    - j{i}\n"));
        }
        for i in 0..51 {
            yaml.push_str(&format!("j{i}:\n  stage: a\n  script: x\n"));
        }
        let errors = errors_of(&yaml, &ctx("push", &[]));
        assert_eq!(
            errors,
            [
                "big: one job can only need 50 others, but you have listed 51. See needs keyword documentation for more details"
            ]
        );
    }

    #[test]
    fn rule_141_needs_nothing_and_same_stage_needs_are_kept() {
        let yaml = "a:\n  stage: test\n  script: x\nb:\n  stage: test\n  script: x\n  needs: [a]\nc:\n  stage: deploy\n  script: x\n  needs: []\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(p.job("b").unwrap().needs.as_ref().unwrap()[0].job, "a");
        assert_eq!(p.job("c").unwrap().needs.as_deref(), Some(&[][..]));
        assert_eq!(p.job("a").unwrap().needs, None);
    }
}
