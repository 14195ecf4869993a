//! The job payload: everything the runner needs to run one job, shaped like
//! the body GitLab returns from `POST /api/v4/jobs/request`.
//!
//! One engine runs jobs from both sides: the registered agent decodes this
//! from the API; `runner exec` and `runner pipeline` build it from the local
//! plan. Keeping the wire shape means the engine never learns which side it
//! serves. Unknown keys are ignored and `null` lists read as empty, because
//! GitLab adds fields over time and sends `null` for many empty lists.

use serde::{Deserialize, Deserializer, Serialize};

/// The job, as GitLab sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobPayload {
    pub id: u64,
    pub token: String,
    /// The project's "git fetch" setting: the default `GIT_STRATEGY` is
    /// `fetch` when true, `clone` otherwise.
    pub allow_git_fetch: bool,
    pub job_info: JobInfo,
    pub git_info: GitInfo,
    pub runner_info: RunnerInfo,
    #[serde(deserialize_with = "null_as_default")]
    pub variables: Vec<JobVariable>,
    #[serde(deserialize_with = "null_as_default")]
    pub steps: Vec<Step>,
    pub image: Option<Image>,
    #[serde(deserialize_with = "null_as_default")]
    pub services: Vec<Image>,
    #[serde(deserialize_with = "null_as_default")]
    pub artifacts: Vec<ArtifactSpec>,
    #[serde(deserialize_with = "null_as_default")]
    pub cache: Vec<CacheSpec>,
    #[serde(deserialize_with = "null_as_default")]
    pub dependencies: Vec<Dependency>,
    pub features: Features,
    #[serde(deserialize_with = "null_as_default")]
    pub hooks: Vec<Hook>,
}

/// Who the job is; feeds names, paths and cache keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInfo {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub pipeline_id: u64,
    pub project_id: u64,
    pub project_name: String,
    pub project_full_path: String,
}

/// Where the sources come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitInfo {
    /// Clone URL, with the job token as credentials for a real GitLab.
    pub repo_url: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub before_sha: String,
    /// `branch` or `tag`.
    pub ref_type: String,
    #[serde(deserialize_with = "null_as_default")]
    pub refspecs: Vec<String>,
    /// Shallow clone depth; 0 fetches everything.
    pub depth: u32,
    pub repo_object_format: String,
    pub protected: Option<bool>,
}

/// What the runner is told about itself for this job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunnerInfo {
    /// The effective job timeout in seconds; 0 or less means the default.
    pub timeout: i64,
}

/// Default job timeout when the payload gives none, as gitlab-runner has it.
pub const DEFAULT_JOB_TIMEOUT_SECS: u64 = 7200;

impl RunnerInfo {
    pub fn timeout_secs(&self) -> u64 {
        u64::try_from(self.timeout)
            .ok()
            .filter(|&t| t > 0)
            .unwrap_or(DEFAULT_JOB_TIMEOUT_SECS)
    }
}

/// One job variable. The list is ordered: a later duplicate wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobVariable {
    pub key: String,
    #[serde(deserialize_with = "null_as_default")]
    pub value: String,
    /// `false` for secrets, which are not handed to service containers.
    pub public: bool,
    pub masked: bool,
    /// The value goes into a file and the variable holds its path.
    pub file: bool,
    /// Never `$`-expanded by the runner.
    pub raw: bool,
}

impl JobVariable {
    /// A plain public variable.
    pub fn public(key: impl Into<String>, value: impl Into<String>) -> Self {
        JobVariable {
            key: key.into(),
            value: value.into(),
            public: true,
            ..JobVariable::default()
        }
    }
}

/// The name GitLab gives the step holding `before_script` + `script`.
pub const SCRIPT_STEP: &str = "script";
/// The name of the `after_script` step.
pub const AFTER_SCRIPT_STEP: &str = "after_script";

/// One step: GitLab merges `before_script` and `script` into the `script`
/// step; `after_script` is its own step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub script: Vec<String>,
    pub timeout: u64,
    pub when: String,
    pub allow_failure: bool,
}

/// `image` or one of `services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Image {
    pub name: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Services only: one or more aliases separated by spaces or commas.
    pub alias: String,
    pub pull_policy: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub variables: Vec<JobVariable>,
}

/// One archive to upload: `artifacts:` itself (`artifact_type` `archive`)
/// or one report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactSpec {
    pub name: Option<String>,
    pub untracked: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub exclude: Vec<String>,
    /// `on_success` (also when empty), `on_failure` or `always`.
    pub when: Option<String>,
    pub expire_in: Option<String>,
    pub artifact_type: String,
    pub artifact_format: String,
}

/// One cache. The key is built by GitLab and may still hold `$VARIABLES`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheSpec {
    pub key: String,
    pub untracked: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    /// `pull-push` (also when empty), `pull` or `push`; may be a variable.
    pub policy: String,
    /// `on_success` (also when empty), `on_failure` or `always`.
    pub when: String,
    #[serde(deserialize_with = "null_as_default")]
    pub fallback_keys: Vec<String>,
}

/// A job whose artifacts this job downloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dependency {
    pub id: u64,
    pub name: String,
    pub token: String,
    /// Absent when the job has no (unexpired) archive.
    pub artifacts_file: Option<ArtifactsFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactsFile {
    pub filename: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    pub trace_sections: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub failure_reasons: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub token_mask_prefixes: Vec<String>,
}

/// `hooks:pre_get_sources_script` and friends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub script: Vec<String>,
}

impl JobPayload {
    /// The value of a variable: the last occurrence wins, as GitLab orders
    /// the list by precedence.
    pub fn variable(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The commands of the hook named `name`, empty when there is none.
    pub fn hook(&self, name: &str) -> &[String] {
        self.hooks
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.script.as_slice())
            .unwrap_or(&[])
    }
}

/// Reads `null` as the type's default (`[]`, `""`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> JobPayload {
        let path = crate::ci::test_corpus::shared_dir().join("spec/fixtures/job_response.json");
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_spec_fixture_decodes_with_every_part_the_engine_uses() {
        let job = fixture();
        assert_eq!(job.id, 7341209);
        assert!(job.allow_git_fetch);
        assert_eq!(job.job_info.name, "test:unit");
        assert_eq!(job.job_info.project_full_path, "acme/backend/webshop");
        assert_eq!(job.git_info.git_ref, "main");
        assert_eq!(job.git_info.depth, 20);
        assert_eq!(job.git_info.protected, Some(true));
        assert_eq!(job.runner_info.timeout_secs(), 3600);
        assert_eq!(job.variable("NODE_ENV"), Some("test"));
        let pem = job
            .variables
            .iter()
            .find(|v| v.key == "DEPLOY_KEY_PEM")
            .unwrap();
        assert!(pem.file && !pem.public);
        assert!(
            job.variables
                .iter()
                .any(|v| v.key == "LITERAL_TEMPLATE" && v.raw)
        );
        assert_eq!(job.step(SCRIPT_STEP).unwrap().script.len(), 4);
        assert_eq!(job.step(AFTER_SCRIPT_STEP).unwrap().when, "always");
        assert_eq!(job.services[0].alias, "db");
        assert_eq!(job.artifacts[1].artifact_type, "junit");
        assert_eq!(
            job.cache[0].fallback_keys,
            ["node-modules-default-protected"]
        );
        assert!(job.dependencies[0].artifacts_file.is_some());
        assert!(job.dependencies[1].artifacts_file.is_none());
        assert_eq!(job.features.token_mask_prefixes.len(), 3);
        assert_eq!(job.hook("pre_get_sources_script").len(), 1);
        assert!(job.hook("post_get_sources_script").is_empty());
    }

    #[test]
    fn nulls_read_as_empty_and_unknown_keys_are_ignored() {
        let job: JobPayload = serde_json::from_str(
            r#"{"id": 1, "variables": [{"key": "A", "value": null}], "artifacts": null,
                "services": null, "some_future_field": {"x": 1},
                "runner_info": {"timeout": 0}}"#,
        )
        .unwrap();
        assert_eq!(job.variable("A"), Some(""));
        assert!(job.artifacts.is_empty() && job.services.is_empty());
        assert_eq!(job.runner_info.timeout_secs(), DEFAULT_JOB_TIMEOUT_SECS);
    }

    #[test]
    fn a_later_duplicate_variable_wins() {
        let job = JobPayload {
            variables: vec![JobVariable::public("A", "1"), JobVariable::public("A", "2")],
            ..JobPayload::default()
        };
        assert_eq!(job.variable("A"), Some("2"));
    }
}
