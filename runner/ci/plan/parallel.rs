//! `parallel`: one job of the configuration becomes several jobs of the
//! pipeline (rules 221-226), the way GitLab's config normalizer does it.

use std::collections::HashMap;

use crate::ci::model::job::Job;
use crate::ci::model::parallel::{Parallel, matrix_job_name};

/// One job of the pipeline before `rules`: a configuration job, or one
/// copy of a `parallel` job.
#[derive(Clone, Debug)]
pub(crate) struct Instance<'p> {
    /// The index of the configuration job in `Pipeline::jobs`.
    pub job_index: usize,
    pub job: &'p Job,
    /// `build`, `test 2/3` or `deploy: [aws, prod]`.
    pub name: String,
    /// `(CI_NODE_INDEX, CI_NODE_TOTAL)` for a `parallel` copy.
    pub node: Option<(u32, u32)>,
    /// The matrix values of a `parallel:matrix` copy, in key order.
    pub matrix: Option<Vec<(String, String)>>,
}

/// Every job of the pipeline in file order, `parallel` jobs expanded in
/// place. `parallel: N` gives `name 1/N` to `name N/N`; a matrix gives one
/// job per combination, each hash's cartesian product in turn, named
/// `name: [v1, v2]` from the values in key order. As in GitLab, a later
/// job with the same name replaces an earlier one but keeps its place.
pub(crate) fn expand_instances(jobs: &[Job]) -> Vec<Instance<'_>> {
    let mut out: Vec<Instance<'_>> = Vec::with_capacity(jobs.len());
    let mut positions: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
    for (job_index, job) in jobs.iter().enumerate() {
        for instance in instances_of(job_index, job) {
            match positions.get(&instance.name) {
                Some(&at) => out[at] = instance,
                None => {
                    positions.insert(instance.name.clone(), out.len());
                    out.push(instance);
                }
            }
        }
    }
    out
}

fn instances_of(job_index: usize, job: &Job) -> Vec<Instance<'_>> {
    match &job.parallel {
        None => vec![Instance {
            job_index,
            job,
            name: job.name.clone(),
            node: None,
            matrix: None,
        }],
        Some(Parallel::Count(n)) => (1..=*n)
            .map(|i| Instance {
                job_index,
                job,
                name: format!("{} {i}/{n}", job.name),
                node: Some((i, *n)),
                matrix: None,
            })
            .collect(),
        Some(Parallel::Matrix(entries)) => {
            let combos: Vec<Vec<(String, String)>> =
                entries.iter().flat_map(|e| e.combinations()).collect();
            let total = combos.len() as u32;
            combos
                .into_iter()
                .enumerate()
                .map(|(i, combo)| Instance {
                    job_index,
                    job,
                    name: matrix_job_name(&job.name, &combo),
                    node: Some((i as u32 + 1, total)),
                    matrix: Some(combo),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan_types::ParallelIndex;
    use super::super::testutil::*;

    #[test]
    fn rule_221_parallel_count_makes_numbered_copies_with_node_variables() {
        let yaml = "test:\n  parallel: 3\n  script: bundle exec rspec_booster --job $CI_NODE_INDEX/$CI_NODE_TOTAL\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(names(&p), ["test 1/3", "test 2/3", "test 3/3"]);
        assert_eq!(
            p.jobs[1].parallel,
            Some(ParallelIndex { index: 2, total: 3 })
        );
        assert_eq!(p.stages[0].jobs.len(), 3);
    }

    #[test]
    fn rule_224_each_matrix_hash_expands_then_all_are_concatenated() {
        let yaml = r#"
deploystacks:
  stage: deploy
  trigger:
    include: path/to/child-pipeline.yml
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: ovh
        STACK: [monitoring, backup]
      - PROVIDER: [gcp, vultr]
        STACK: [data]
  environment: $PROVIDER/$STACK
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(
            names(&p),
            [
                "deploystacks: [aws, monitoring]",
                "deploystacks: [aws, app1]",
                "deploystacks: [ovh, monitoring]",
                "deploystacks: [ovh, backup]",
                "deploystacks: [gcp, data]",
                "deploystacks: [vultr, data]",
            ]
        );
        let last = &p.jobs[5];
        assert!(last.trigger);
        assert_eq!(last.parallel, Some(ParallelIndex { index: 6, total: 6 }));
        assert_eq!(
            last.matrix.as_deref(),
            Some(
                &[
                    ("PROVIDER".to_string(), "vultr".to_string()),
                    ("STACK".to_string(), "data".to_string())
                ][..]
            )
        );
    }

    #[test]
    fn rule_226_matrix_values_reach_tags_image_rules_and_variables() {
        let yaml = r#"
deploystacks:
  stage: deploy
  image: deploy:$PROVIDER
  variables:
    PROVIDER: default
    TARGET: $PROVIDER-$STACK
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: gcp
        STACK: [data]
  tags:
    - ${PROVIDER}-${STACK}
  script: deploy
  rules:
    - if: $STACK != "app1"
"#;
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(
            names(&p),
            [
                "deploystacks: [aws, monitoring]",
                "deploystacks: [gcp, data]"
            ]
        );
        let job = &p.jobs[1];
        assert_eq!(job.tags, ["gcp-data"]);
        assert_eq!(job.image.as_deref(), Some("deploy:gcp"));
        assert_eq!(job.variable("TARGET"), Some("gcp-data"));
        assert_eq!(job.variable("PROVIDER"), Some("gcp"));
        assert_eq!(p.skipped[0].name, "deploystacks: [aws, app1]");
    }

    #[test]
    fn rule_225_same_values_under_other_names_give_one_job() {
        let yaml = "job:\n  script: x\n  parallel:\n    matrix:\n      - A: [x]\n      - B: [x]\n";
        let p = plan_of(yaml, &ctx("push", &[]));
        assert_eq!(names(&p), ["job: [x]"]);
        assert_eq!(p.jobs[0].variable("B"), Some("x"));
    }
}
