//! Builds the job payload GitLab would send for a planned job, from the
//! local configuration and repository, so local runs go through the same
//! engine as jobs from a GitLab instance.
//!
//! What GitLab computes on its side is computed here the same way:
//! `before_script` + `script` merged into one step, cache keys from
//! `key:files` with the protected/non-protected suffix, report artifacts
//! with their fixed formats, the variables in GitLab's precedence order.

use std::path::Path;

use crate::archive::{cache_key_from_files, cache_key_from_files_commits, protected_cache_key};
use crate::ci::model::artifacts::ArtifactsSpec;
use crate::ci::model::cache::{CacheKey, CacheSpec as YamlCache};
use crate::ci::model::job::Job;
use crate::ci::model::when::When;
use crate::ci::plan::PlannedJob;
use crate::ci::variables::{
    GitFacts, PipelineOptions, VarSource, Variables, job_only_variables, job_variables,
};
use crate::job::payload::{
    AFTER_SCRIPT_STEP, ArtifactSpec, CacheSpec, Dependency, Features, GitInfo, Image, JobInfo,
    JobPayload, JobVariable, RunnerInfo, SCRIPT_STEP, Step,
};

/// The job timeout when the job sets none: one hour, GitLab's project
/// default.
pub const LOCAL_DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// GitLab's default shallow clone depth for new projects.
const DEFAULT_GIT_DEPTH: u32 = 20;

/// What is the same for every job of a local pipeline.
pub struct PipelineFacts<'a> {
    pub git: &'a GitFacts,
    /// Whether `git` is a real repository (not a stand-in for a plain
    /// directory).
    pub git_is_real: bool,
    pub pipeline_variables: &'a Variables,
    pub pipeline_id: u64,
    /// Variables from `--var-file`: project-level settings, with their
    /// masked and file flags.
    pub file_variables: &'a [JobVariable],
    /// `--var`: pipeline variables, the highest precedence.
    pub cli_variables: &'a [(String, String)],
    /// `CI_COMMIT_REF_PROTECTED`.
    pub protected: bool,
}

/// What one job adds.
pub struct JobFacts<'a> {
    pub planned: &'a PlannedJob,
    pub model: &'a Job,
    pub job_id: u64,
    /// Jobs whose artifacts this job downloads, as GitLab lists them.
    pub dependencies: Vec<Dependency>,
    /// `artifacts:reports:dotenv` variables of those jobs.
    pub dotenv: Vec<(String, String)>,
}

/// The payload of one job.
pub fn build_payload(p: &PipelineFacts, j: &JobFacts) -> Result<JobPayload, String> {
    let planned = j.planned;
    let variables = variables(p, j);
    let lookup = |key: &str| {
        variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.clone())
    };
    let token = format!("local-job-token-{}", j.job_id);
    let sha = p.git.head.sha.clone();
    let git_ref = lookup("CI_COMMIT_REF_NAME").unwrap_or_default();
    let is_tag = lookup("CI_COMMIT_TAG").is_some();
    let depth = lookup("GIT_DEPTH")
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or(DEFAULT_GIT_DEPTH);
    let timeout = planned.timeout.unwrap_or(LOCAL_DEFAULT_TIMEOUT_SECS);
    let project_path = lookup("CI_PROJECT_PATH").unwrap_or_else(|| "local/project".to_owned());

    let mut script = j.model.before_script.clone().unwrap_or_default();
    script.extend(j.model.script.iter().cloned());
    let mut steps = vec![Step {
        name: SCRIPT_STEP.to_owned(),
        script,
        timeout,
        when: "on_success".to_owned(),
        allow_failure: false,
    }];
    if let Some(after) = j.model.after_script.as_ref().filter(|a| !a.is_empty()) {
        steps.push(Step {
            name: AFTER_SCRIPT_STEP.to_owned(),
            script: after.clone(),
            timeout,
            when: "always".to_owned(),
            allow_failure: true,
        });
    }

    let cache = match &j.model.cache {
        Some(caches) => caches
            .iter()
            .map(|c| cache_spec(c, p, &sha))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };

    Ok(JobPayload {
        id: j.job_id,
        token,
        allow_git_fetch: true,
        job_info: JobInfo {
            id: j.job_id,
            name: planned.name.clone(),
            stage: planned.stage.clone(),
            pipeline_id: p.pipeline_id,
            project_id: lookup("CI_PROJECT_ID")
                .and_then(|id| id.parse().ok())
                .unwrap_or(1),
            project_name: lookup("CI_PROJECT_NAME").unwrap_or_default(),
            project_full_path: project_path,
        },
        git_info: GitInfo {
            repo_url: p.git.toplevel.to_string_lossy().into_owned(),
            refspecs: refspecs(&sha, &git_ref, is_tag, depth, p.pipeline_id),
            git_ref,
            sha,
            before_sha: p.git.before_sha.clone(),
            ref_type: if is_tag { "tag" } else { "branch" }.to_owned(),
            depth,
            repo_object_format: "sha1".to_owned(),
            protected: Some(p.protected),
        },
        runner_info: RunnerInfo {
            timeout: i64::try_from(timeout).unwrap_or(i64::MAX),
        },
        variables,
        steps,
        image: planned.image.as_ref().map(|name| Image {
            name: name.clone(),
            entrypoint: j.model.image.as_ref().and_then(|i| i.entrypoint.clone()),
            pull_policy: j
                .model
                .image
                .as_ref()
                .map(|i| i.pull_policy.clone())
                .filter(|p| !p.is_empty()),
            ..Image::default()
        }),
        services: services(j.model),
        artifacts: j
            .model
            .artifacts
            .as_ref()
            .map(artifacts)
            .unwrap_or_default(),
        cache,
        dependencies: j.dependencies.clone(),
        features: Features {
            trace_sections: true,
            ..Features::default()
        },
        hooks: j
            .model
            .hooks
            .as_ref()
            .map(|h| h.pre_get_sources_script.clone())
            .filter(|script| !script.is_empty())
            .map(|script| {
                vec![crate::job::payload::Hook {
                    name: "pre_get_sources_script".to_owned(),
                    script,
                }]
            })
            .unwrap_or_default(),
    })
}

/// GitLab's order: predefined variables, the job's own predefined ones,
/// YAML variables (as planned, already merged and expanded), dotenv from
/// dependencies, project-level (`--var-file`), pipeline-level (`--var`).
/// A later duplicate wins.
fn variables(p: &PipelineFacts, j: &JobFacts) -> Vec<JobVariable> {
    let planned = j.planned;
    let mut out: Vec<JobVariable> = p
        .pipeline_variables
        .iter()
        .filter(|v| v.source == VarSource::Predefined)
        .map(|v| JobVariable::public(v.key.clone(), v.value.clone()))
        .collect();
    let opts = PipelineOptions {
        pipeline_id: p.pipeline_id,
        ..PipelineOptions::default()
    };
    let node = planned.parallel.map(|n| (n.index, n.total));
    let manual = planned.when == When::Manual;
    for v in job_only_variables(p.git, &opts, j.job_id)
        .iter()
        .chain(job_variables(&planned.name, &planned.stage, node, manual).iter())
    {
        out.push(JobVariable::public(v.key.clone(), v.value.clone()));
    }
    out.push(JobVariable {
        masked: true,
        ..JobVariable::public("CI_JOB_TOKEN", format!("local-job-token-{}", j.job_id))
    });
    out.push(JobVariable::public("CI_JOB_STARTED_AT", now_iso8601()));
    out.push(JobVariable::public("CI", "true"));
    out.push(JobVariable::public("GITLAB_CI", "true"));
    for (key, value) in &planned.variables {
        out.push(JobVariable::public(key.clone(), value.clone()));
    }
    for (key, value) in &j.dotenv {
        out.push(JobVariable::public(key.clone(), value.clone()));
    }
    out.extend(p.file_variables.iter().cloned());
    for (key, value) in p.cli_variables {
        out.push(JobVariable::public(key.clone(), value.clone()));
    }
    out
}

/// The refspecs GitLab sends: the pipeline's persistent ref, plus the
/// job's branch or tag for a shallow fetch, or every branch and tag for a
/// full one.
fn refspecs(sha: &str, git_ref: &str, is_tag: bool, depth: u32, pipeline_id: u64) -> Vec<String> {
    let mut specs = vec![format!("+{sha}:refs/pipelines/{pipeline_id}")];
    if depth > 0 {
        if is_tag {
            specs.push(format!("+refs/tags/{git_ref}:refs/tags/{git_ref}"));
        } else if !git_ref.is_empty() {
            specs.push(format!(
                "+refs/heads/{git_ref}:refs/remotes/origin/{git_ref}"
            ));
        }
    } else {
        specs.push("+refs/heads/*:refs/remotes/origin/*".to_owned());
        specs.push("+refs/tags/*:refs/tags/*".to_owned());
    }
    specs
}

fn services(job: &Job) -> Vec<Image> {
    job.services
        .iter()
        .flatten()
        .map(|s| Image {
            name: s.name.clone(),
            entrypoint: s.entrypoint.clone(),
            command: s.command.clone(),
            alias: if s.aliases.is_empty() {
                s.alias.clone().unwrap_or_default()
            } else {
                s.aliases.join(",")
            },
            pull_policy: Some(s.pull_policy.clone()).filter(|p| !p.is_empty()),
            variables: s
                .variables
                .iter()
                .map(|(k, v)| JobVariable::public(k.clone(), v.clone()))
                .collect(),
        })
        .collect()
}

/// `artifacts:` becomes one `archive` entry; each report its own entry,
/// uploaded whatever the result, in the one format GitLab accepts for it.
fn artifacts(spec: &ArtifactsSpec) -> Vec<ArtifactSpec> {
    let mut out = Vec::new();
    if !spec.paths.is_empty() || spec.untracked {
        out.push(ArtifactSpec {
            name: spec.name.clone(),
            untracked: spec.untracked,
            paths: spec.paths.clone(),
            exclude: spec.exclude.clone(),
            when: Some(spec.when.as_str().to_owned()),
            expire_in: spec.expire_in.clone(),
            artifact_type: "archive".to_owned(),
            artifact_format: "zip".to_owned(),
        });
    }
    for (kind, paths) in &spec.reports {
        let (name, format) = report_file(kind);
        out.push(ArtifactSpec {
            name: Some(name.to_owned()),
            untracked: false,
            paths: paths.clone(),
            exclude: Vec::new(),
            when: Some("always".to_owned()),
            expire_in: spec.expire_in.clone(),
            artifact_type: kind.clone(),
            artifact_format: format.to_owned(),
        });
    }
    out
}

/// A report type's default file name and the only format GitLab accepts
/// for it (runner-api.md §4.7).
fn report_file(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "junit" => ("junit.xml", "gzip"),
        "dotenv" => (".env", "gzip"),
        "cobertura" => ("cobertura-coverage.xml", "gzip"),
        "cyclonedx" => ("gl-sbom.cdx.json", "gzip"),
        "metrics" => ("metrics.txt", "gzip"),
        "lsif" => ("lsif.json", "zip"),
        "codequality" => ("gl-code-quality-report.json", "raw"),
        "sast" => ("gl-sast-report.json", "raw"),
        "secret_detection" => ("gl-secret-detection-report.json", "raw"),
        "dependency_scanning" => ("gl-dependency-scanning-report.json", "raw"),
        "container_scanning" => ("gl-container-scanning-report.json", "raw"),
        "dast" => ("gl-dast-report.json", "raw"),
        "terraform" => ("tfplan.json", "raw"),
        "accessibility" => ("gl-accessibility.json", "raw"),
        "browser_performance" | "performance" => ("browser-performance.json", "raw"),
        "load_performance" => ("load-performance.json", "raw"),
        "requirements" => ("requirements.json", "raw"),
        "api_fuzzing" => ("gl-api-fuzzing-report.json", "raw"),
        "coverage_fuzzing" => ("gl-coverage-fuzzing.json", "raw"),
        _ => ("report", "raw"),
    }
}

/// The cache as GitLab sends it: the key computed from `key:files` where
/// given, with the protected/non-protected suffix on the key and every
/// fallback key.
fn cache_spec(c: &YamlCache, p: &PipelineFacts, sha: &str) -> Result<CacheSpec, String> {
    let repo: &Path = &p.git.toplevel;
    let key = match &c.key {
        CacheKey::Literal(key) => key.clone(),
        CacheKey::Files { files, prefix } | CacheKey::FilesCommits { files, prefix }
            if !p.git_is_real =>
        {
            // No repository: no commit to hash files from, as in GitLab
            // when none of the files exist.
            let _ = files;
            prefix
                .as_ref()
                .map(|p| format!("{p}-default"))
                .unwrap_or_else(|| "default".to_owned())
        }
        CacheKey::Files { files, prefix } => {
            cache_key_from_files(repo, sha, files, prefix.as_deref()).map_err(|e| e.to_string())?
        }
        CacheKey::FilesCommits { files, prefix } => {
            cache_key_from_files_commits(repo, sha, files, prefix.as_deref())
                .map_err(|e| e.to_string())?
        }
    };
    Ok(CacheSpec {
        key: protected_cache_key(&key, p.protected, c.unprotect),
        untracked: c.untracked,
        paths: c.paths.clone(),
        policy: c.policy.clone(),
        when: c.when.as_str().to_owned(),
        fallback_keys: c
            .fallback_keys
            .iter()
            .map(|k| protected_cache_key(k, p.protected, c.unprotect))
            .collect(),
    })
}

fn now_iso8601() -> String {
    crate::ci::variables::iso8601_utc(std::time::SystemTime::now())
}
