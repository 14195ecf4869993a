//! A job's own predefined variables, and the ones that exist only once a
//! job runs.

use std::sync::LazyLock;

use super::git::GitFacts;
use super::predefined::{PipelineOptions, project_location};
use super::set::{VarSource, Variables};
use super::slug::slugify;

/// GitLab's `CI_JOB_GROUP_NAME`: the job name without a trailing
/// `1/3`-style parallel index or `[a, b]` matrix suffix (up to three of
/// them), trimmed.
pub fn job_group_name(job_name: &str) -> String {
    // `[\b\s:]` in Ruby is backspace, whitespace or colon; `\s` and `\d`
    // are ASCII there.
    static SUFFIX: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?:[\x08\t\n\x0B\f\r :]+(?:\[.*\]|[0-9]+[\t\n\x0B\f\r :/\\]+[0-9]+)){1,3}[\t\n\x0B\f\r ]*\z")
            .expect("valid regex")
    });
    let stripped = SUFFIX.replacen(job_name, 1, "");
    stripped
        .trim_matches(['\0', '\t', '\n', '\x0B', '\x0C', '\r', ' '])
        .to_owned()
}

/// A job's own predefined variables, in GitLab's order. `node` is
/// `(index, total)` for `parallel` jobs (1-based index); `CI_NODE_TOTAL` is
/// `1` for the others, as in GitLab. `manual` sets `CI_JOB_MANUAL`.
pub fn job_variables(
    job_name: &str,
    stage: &str,
    node: Option<(u32, u32)>,
    manual: bool,
) -> Variables {
    let mut v = Variables::new();
    let mut set = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);
    set("CI_JOB_NAME", job_name);
    set("CI_JOB_NAME_SLUG", &slugify(job_name));
    set("CI_JOB_GROUP_NAME", &job_group_name(job_name));
    set("CI_JOB_STAGE", stage);
    if manual {
        set("CI_JOB_MANUAL", "true");
    }
    if let Some((index, _)) = node {
        set("CI_NODE_INDEX", &index.to_string());
    }
    set(
        "CI_NODE_TOTAL",
        &node.map_or(1, |(_, total)| total).to_string(),
    );
    v
}

/// The variables GitLab adds only when a job runs (rule 195's persisted
/// ones and `CI_PROJECT_DIR`), for job `job_id`. `CI_REPOSITORY_URL` has no
/// job token in it, and `CI_PROJECT_DIR` is the work tree root.
pub fn job_only_variables(facts: &GitFacts, opts: &PipelineOptions, job_id: u64) -> Variables {
    let loc = project_location(facts);
    let project_url = format!("{}/{}", loc.server_url(), loc.path);
    let mut v = Variables::new();
    let mut set = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);
    set("CI_PIPELINE_ID", &opts.pipeline_id.to_string());
    set(
        "CI_PIPELINE_URL",
        &format!("{project_url}/-/pipelines/{}", opts.pipeline_id),
    );
    set("CI_JOB_ID", &job_id.to_string());
    set("CI_JOB_URL", &format!("{project_url}/-/jobs/{job_id}"));
    set("CI_REGISTRY_USER", "gitlab-ci-token");
    set("CI_REPOSITORY_URL", &format!("{project_url}.git"));
    set("CI_PROJECT_DIR", &facts.toplevel.to_string_lossy());
    set("CI_SERVER", "yes");
    v
}

#[cfg(test)]
mod tests {
    use super::super::availability::{Availability, availability};
    use super::super::git::tests::Repo;
    use super::*;

    #[test]
    fn job_variables_in_gitlab_order() {
        let v = job_variables("rspec 2/3", "test", Some((2, 3)), false);
        let pairs: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("CI_JOB_NAME", "rspec 2/3"),
                ("CI_JOB_NAME_SLUG", "rspec-2-3"),
                ("CI_JOB_GROUP_NAME", "rspec"),
                ("CI_JOB_STAGE", "test"),
                ("CI_NODE_INDEX", "2"),
                ("CI_NODE_TOTAL", "3"),
            ]
        );
        let plain = job_variables("Deploy Prod", "deploy", None, true);
        assert_eq!(plain.lookup("CI_JOB_MANUAL"), Some("true"));
        assert_eq!(plain.lookup("CI_NODE_INDEX"), None);
        assert_eq!(plain.lookup("CI_NODE_TOTAL"), Some("1"));
        assert_eq!(plain.lookup("CI_JOB_NAME_SLUG"), Some("deploy-prod"));
    }

    #[test]
    fn job_group_name_strips_parallel_and_matrix_suffixes() {
        assert_eq!(job_group_name("rspec:test: [ruby, ubuntu]"), "rspec:test");
        assert_eq!(job_group_name("build 1/3"), "build");
        assert_eq!(job_group_name("build 1:3"), "build");
        assert_eq!(job_group_name("test [a] [b]"), "test");
        assert_eq!(job_group_name("plain job"), "plain job");
        assert_eq!(job_group_name("v1.2"), "v1.2");
    }

    #[test]
    fn job_only_variables_are_urls_and_ids() {
        let repo = Repo::new();
        repo.commit("a", "x");
        repo.git(&["remote", "add", "origin", "https://gitlab.com/g/p.git"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        let v = job_only_variables(&facts, &PipelineOptions::default(), 42);
        assert_eq!(
            v.lookup("CI_JOB_URL"),
            Some("https://gitlab.com/g/p/-/jobs/42")
        );
        assert_eq!(
            v.lookup("CI_PIPELINE_URL"),
            Some("https://gitlab.com/g/p/-/pipelines/1")
        );
        assert_eq!(
            v.lookup("CI_REPOSITORY_URL"),
            Some("https://gitlab.com/g/p.git")
        );
        assert!(
            v.iter()
                .all(|var| availability(&var.key) == Some(Availability::JobOnly))
        );
    }
}
