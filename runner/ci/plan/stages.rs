//! Stages of the created pipeline (rules 22-27): only the stages that got
//! jobs, in the configured order, `.pre` first and `.post` last.

use super::plan_types::{PlannedJob, PlannedStage};

/// GitLab's error when no job (or only `.pre`/`.post` jobs) would be created.
pub(crate) const NO_JOBS: &str = "No stages / jobs for this pipeline.";

/// The stages GitLab places around the configured ones (rule 24).
const EDGE_STAGES: [&str; 2] = [".pre", ".post"];

/// Sorts `jobs` by stage (stable, so file order is kept inside a stage)
/// and lists the stages that have jobs. A job whose stage is not in
/// `stages` sorts last; decoding rejects such configurations.
pub(crate) fn arrange(stages: &[String], jobs: &mut [PlannedJob]) -> Vec<PlannedStage> {
    let position = |stage: &str| {
        stages
            .iter()
            .position(|s| s == stage)
            .unwrap_or(stages.len())
    };
    jobs.sort_by_key(|j| position(&j.stage));
    let mut out: Vec<PlannedStage> = Vec::new();
    for job in jobs.iter() {
        match out.last_mut() {
            Some(stage) if stage.name == job.stage => stage.jobs.push(job.name.clone()),
            _ => out.push(PlannedStage {
                name: job.stage.clone(),
                jobs: vec![job.name.clone()],
            }),
        }
    }
    out
}

/// Whether GitLab would refuse the pipeline for having no real stage: no
/// jobs at all, or jobs only in `.pre` and `.post` (rule 25).
pub(crate) fn is_empty_pipeline(stages: &[PlannedStage]) -> bool {
    stages
        .iter()
        .all(|s| EDGE_STAGES.contains(&s.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::model::when::When;
    use crate::ci::plan::plan_types::DecidedBy;

    fn job(name: &str, stage: &str) -> PlannedJob {
        PlannedJob {
            name: name.into(),
            stage: stage.into(),
            when: When::OnSuccess,
            start_in: None,
            allow_failure: false,
            allow_failure_exit_codes: None,
            needs: None,
            dependencies: None,
            image: None,
            tags: vec![],
            variables: vec![],
            decided_by: DecidedBy::default_with("t"),
            parallel: None,
            matrix: None,
            trigger: false,
            interruptible: None,
            retry: None,
            timeout: None,
            source_index: 0,
        }
    }

    fn stage_list() -> Vec<String> {
        [".pre", "build", "test", "deploy", ".post"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn rule_27_stages_without_jobs_are_left_out_and_order_is_kept() {
        let mut jobs = vec![
            job("t1", "test"),
            job("p", ".post"),
            job("b", "build"),
            job("t2", "test"),
        ];
        let stages = arrange(&stage_list(), &mut jobs);
        let names: Vec<(&str, Vec<&str>)> = stages
            .iter()
            .map(|s| (s.name.as_str(), s.jobs.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            names,
            [
                ("build", vec!["b"]),
                ("test", vec!["t1", "t2"]),
                (".post", vec!["p"])
            ]
        );
        assert!(!is_empty_pipeline(&stages));
    }

    #[test]
    fn rule_25_only_pre_and_post_jobs_make_no_pipeline() {
        let mut jobs = vec![job("p", ".post"), job("q", ".pre")];
        let stages = arrange(&stage_list(), &mut jobs);
        assert_eq!(stages[0].name, ".pre");
        assert!(is_empty_pipeline(&stages));
        assert!(is_empty_pipeline(&[]));
    }
}
