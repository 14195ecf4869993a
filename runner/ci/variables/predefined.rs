//! The predefined variables of a local pipeline, computed from git.
//!
//! They come in GitLab's order and in GitLab's three groups (rule 198):
//! - [`pipeline_variables`]: what the project and the pipeline define
//!   (pre-pipeline and pipeline phases). `workflow`, `include:rules` and job
//!   `rules` see these.
//! - `job_variables` (in `job.rs`): what each job adds (`CI_JOB_NAME`,
//!   `CI_NODE_*`). Job `rules` see these too.
//! - `job_only_variables` (in `job.rs`): what exists only once a job runs
//!   (IDs, URLs, `CI_PROJECT_DIR`). Never give these to `rules` (rule 119).
//!
//! A job's full set, in GitLab's order, is `job_only_variables`, then
//! `job_variables`, then `pipeline_variables`, then the user's variables
//! (`Variables::in_precedence_order`). Runner-side variables
//! (`CI_BUILDS_DIR`, `CI_JOB_TOKEN`, `CI_JOB_STARTED_AT`, `CI_RUNNER_*`, ...)
//! belong to the executor.
//!
//! Values that only a GitLab instance knows are fixed and documented here:
//! the server is GitLab [`SERVER_VERSION`]; project and pipeline IDs come
//! from [`PipelineOptions`] (1 by default) and the namespace ID is 1; the
//! project is private, with no description, languages or licensed
//! features; the container registry is `registry.gitlab.com` for gitlab.com
//! and `<host>:5050` (the port GitLab documents for a registry on the
//! instance's own domain) elsewhere; Pages variables are not set.

use std::time::SystemTime;

use super::commit::{commit_text, iso8601_utc};
use super::git::GitFacts;
use super::pipeline_ref::{PipelineRef, RefKind, default_branch, resolve_ref};
use super::remote::{ProjectLocation, parse_remote_url};
use super::set::{VarSource, Variables};
use super::slug::slugify;

/// The GitLab version the local server claims to be (`CI_SERVER_VERSION`).
pub const SERVER_VERSION: &str = "18.6.0";

/// The `CI_PIPELINE_SOURCE` values GitLab knows (rule 199).
pub const PIPELINE_SOURCES: &[&str] = &[
    "api",
    "chat",
    "external",
    "external_pull_request_event",
    "merge_request_event",
    "ondemand_dast_scan",
    "ondemand_dast_validation",
    "parent_pipeline",
    "pipeline",
    "push",
    "schedule",
    "security_orchestration_policy",
    "trigger",
    "web",
    "webide",
];

/// What the caller decides about the pipeline, beyond what git knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineOptions {
    /// `--ref REF`: a branch or tag name (see `pipeline_ref`).
    pub ref_override: Option<String>,
    /// `CI_PIPELINE_SOURCE`; `push` by default.
    pub source: String,
    /// `CI_COMMIT_REF_PROTECTED`; false by default.
    pub protected: bool,
    pub project_id: u64,
    pub pipeline_id: u64,
    pub pipeline_iid: u64,
    /// `CI_CONFIG_PATH`; `.gitlab-ci.yml` by default.
    pub config_path: String,
    /// `CI_PIPELINE_NAME`, once `workflow:name` is known.
    pub pipeline_name: Option<String>,
    /// `CI_PIPELINE_CREATED_AT`.
    pub created_at: SystemTime,
    /// The target branch of a merge request pipeline; the default branch
    /// if unset. Only used when `source` is `merge_request_event`.
    pub merge_request_target: Option<String>,
}

impl Default for PipelineOptions {
    fn default() -> PipelineOptions {
        PipelineOptions {
            ref_override: None,
            source: "push".to_owned(),
            protected: false,
            project_id: 1,
            pipeline_id: 1,
            pipeline_iid: 1,
            config_path: ".gitlab-ci.yml".to_owned(),
            pipeline_name: None,
            created_at: SystemTime::now(),
            merge_request_target: None,
        }
    }
}

impl PipelineOptions {
    fn is_merge_request(&self) -> bool {
        self.source == "merge_request_event"
    }
}

/// The server and project path, from the `origin` remote, or
/// `local/<directory>` on `http://localhost` without one.
pub fn project_location(facts: &GitFacts) -> ProjectLocation {
    facts
        .origin_url
        .as_deref()
        .and_then(parse_remote_url)
        .unwrap_or_else(|| {
            let dir = facts
                .toplevel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            ProjectLocation::local(dir.as_deref().unwrap_or(""))
        })
}

fn registry_host(loc: &ProjectLocation) -> String {
    if loc.host == "gitlab.com" {
        "registry.gitlab.com".to_owned()
    } else {
        format!("{}:5050", loc.host)
    }
}

/// The pipeline-level predefined variables (project, server, commit, ref),
/// in GitLab's order. `CI_COMMIT_BRANCH` is set only in branch pipelines
/// that are not merge request pipelines, `CI_COMMIT_TAG` only in tag
/// pipelines (rule 200). `CI_COMMIT_BEFORE_SHA` is `facts.before_sha` for a
/// branch push and the blank SHA otherwise, as in GitLab.
pub fn pipeline_variables(facts: &GitFacts, opts: &PipelineOptions) -> Variables {
    let loc = project_location(facts);
    let r = resolve_ref(facts, opts.ref_override.as_deref());
    let mut v = Variables::new();
    let mut set = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);

    let server_url = loc.server_url();
    let project_url = format!("{server_url}/{}", loc.path);
    let mut version = SERVER_VERSION.split('.');
    set("CI", "true");
    set("GITLAB_CI", "true");
    set("CI_SERVER_FQDN", &loc.host_with_optional_port());
    set("CI_SERVER_URL", &server_url);
    set("CI_SERVER_HOST", &loc.host);
    set("CI_SERVER_PORT", &loc.port.to_string());
    set("CI_SERVER_PROTOCOL", &loc.protocol);
    set("CI_SERVER_SHELL_SSH_HOST", &loc.host);
    set("CI_SERVER_SHELL_SSH_PORT", &loc.ssh_port.to_string());
    set("CI_SERVER_NAME", "GitLab");
    set("CI_SERVER_VERSION", SERVER_VERSION);
    set("CI_SERVER_VERSION_MAJOR", version.next().unwrap_or("0"));
    set("CI_SERVER_VERSION_MINOR", version.next().unwrap_or("0"));
    set("CI_SERVER_VERSION_PATCH", version.next().unwrap_or("0"));
    set("CI_SERVER_REVISION", "local");

    set("GITLAB_FEATURES", "");
    set("CI_PROJECT_ID", &opts.project_id.to_string());
    set("CI_PROJECT_NAME", loc.name());
    set("CI_PROJECT_TITLE", loc.name());
    set("CI_PROJECT_DESCRIPTION", "");
    set("CI_PROJECT_PATH", &loc.path);
    set("CI_PROJECT_PATH_SLUG", &slugify(&loc.path));
    set("CI_PROJECT_NAMESPACE", loc.namespace());
    set("CI_PROJECT_NAMESPACE_ID", "1");
    set("CI_PROJECT_ROOT_NAMESPACE", loc.root_namespace());
    set("CI_PROJECT_URL", &project_url);
    set("CI_PROJECT_VISIBILITY", "private");
    set("CI_PROJECT_REPOSITORY_LANGUAGES", "");
    set("CI_DEFAULT_BRANCH", &default_branch(facts));
    set("CI_CONFIG_PATH", &opts.config_path);

    let registry = registry_host(&loc);
    set("CI_REGISTRY", &registry);
    set(
        "CI_REGISTRY_IMAGE",
        &format!("{registry}/{}", loc.path.to_lowercase()),
    );
    // GitLab's `host_with_port` always carries the port.
    let proxy = format!("{}:{}", loc.host, loc.port);
    set("CI_DEPENDENCY_PROXY_SERVER", &proxy);
    set(
        "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX",
        &format!(
            "{proxy}/{}/dependency_proxy/containers",
            loc.root_namespace().to_lowercase()
        ),
    );
    set(
        "CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX",
        &format!(
            "{proxy}/{}/dependency_proxy/containers",
            loc.namespace().to_lowercase()
        ),
    );
    set("CI_API_V4_URL", &format!("{server_url}/api/v4"));
    set("CI_API_GRAPHQL_URL", &format!("{server_url}/api/graphql"));
    set("CI_TEMPLATE_REGISTRY_HOST", "registry.gitlab.com");

    set("CI_PIPELINE_IID", &opts.pipeline_iid.to_string());
    set("CI_PIPELINE_SOURCE", &opts.source);
    set("CI_PIPELINE_CREATED_AT", &iso8601_utc(opts.created_at));
    if let Some(name) = &opts.pipeline_name {
        set("CI_PIPELINE_NAME", name);
    }
    commit_variables(&mut v, facts, opts, &r);
    if opts.is_merge_request() && r.kind == RefKind::Branch {
        merge_request_variables(&mut v, facts, opts, &r, &loc);
    }
    v
}

fn commit_variables(v: &mut Variables, facts: &GitFacts, opts: &PipelineOptions, r: &PipelineRef) {
    let mut set = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);
    let head = &facts.head;
    let text = commit_text(&head.message);
    let is_branch_push = r.kind == RefKind::Branch && opts.source == "push";
    let before = if is_branch_push {
        facts.before_sha.clone()
    } else {
        facts.blank_sha()
    };
    set("CI_COMMIT_SHA", &head.sha);
    set(
        "CI_COMMIT_SHORT_SHA",
        head.sha.get(..8).unwrap_or(&head.sha),
    );
    set("CI_COMMIT_BEFORE_SHA", &before);
    set("CI_COMMIT_REF_NAME", &r.name);
    set("CI_COMMIT_REF_SLUG", &slugify(&r.name));
    if r.kind == RefKind::Branch && !opts.is_merge_request() {
        set("CI_COMMIT_BRANCH", &r.name);
    }
    set("CI_COMMIT_MESSAGE", &text.message);
    set(
        "CI_COMMIT_MESSAGE_IS_TRUNCATED",
        if text.truncated { "true" } else { "false" },
    );
    set("CI_COMMIT_TITLE", &text.title);
    set("CI_COMMIT_DESCRIPTION", &text.description);
    set(
        "CI_COMMIT_REF_PROTECTED",
        if opts.protected { "true" } else { "false" },
    );
    set("CI_COMMIT_TIMESTAMP", &head.committer_date);
    set(
        "CI_COMMIT_AUTHOR",
        &format!("{} <{}>", head.author_name, head.author_email),
    );
    if r.kind == RefKind::Tag {
        // A tag named with `--ref` but not pointing at HEAD has no message
        // here: only the tags at HEAD were read.
        let message = facts
            .tags_at_head
            .iter()
            .find(|t| t.name == r.name)
            .map_or("", |t| t.message.as_str());
        set("CI_COMMIT_TAG", &r.name);
        set("CI_COMMIT_TAG_MESSAGE", message);
    }
}

/// A detached merge request pipeline from the pipeline's branch into
/// `merge_request_target`, with merge request IID 1. Labels, assignees and
/// milestone are absent; the title is the commit title.
fn merge_request_variables(
    v: &mut Variables,
    facts: &GitFacts,
    opts: &PipelineOptions,
    r: &PipelineRef,
    loc: &ProjectLocation,
) {
    let target = opts
        .merge_request_target
        .clone()
        .unwrap_or_else(|| default_branch(facts));
    let project_url = format!("{}/{}", loc.server_url(), loc.path);
    let project_id = opts.project_id.to_string();
    let title = commit_text(&facts.head.message).title;
    let mut set = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);
    set("CI_MERGE_REQUEST_EVENT_TYPE", "detached");
    set("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "");
    set("CI_MERGE_REQUEST_TARGET_BRANCH_SHA", "");
    set("CI_MERGE_REQUEST_ID", "1");
    set("CI_MERGE_REQUEST_IID", "1");
    set("CI_MERGE_REQUEST_REF_PATH", "refs/merge-requests/1/head");
    set("CI_MERGE_REQUEST_PROJECT_ID", &project_id);
    set("CI_MERGE_REQUEST_PROJECT_PATH", &loc.path);
    set("CI_MERGE_REQUEST_PROJECT_URL", &project_url);
    set("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", &target);
    set("CI_MERGE_REQUEST_TARGET_BRANCH_PROTECTED", "false");
    set("CI_MERGE_REQUEST_TITLE", &title);
    set("CI_MERGE_REQUEST_DESCRIPTION", "");
    set("CI_MERGE_REQUEST_DESCRIPTION_IS_TRUNCATED", "false");
    set("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", &r.name);
    set("CI_MERGE_REQUEST_SOURCE_BRANCH_PROTECTED", "false");
    set("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", &project_id);
    set("CI_MERGE_REQUEST_SOURCE_PROJECT_PATH", &loc.path);
    set("CI_MERGE_REQUEST_SOURCE_PROJECT_URL", &project_url);
    set("CI_MERGE_REQUEST_SQUASH_ON_MERGE", "false");
    set("CI_MERGE_REQUEST_DRAFT", "false");
}

#[cfg(test)]
mod tests {
    use super::super::git::tests::Repo;
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn opts() -> PipelineOptions {
        PipelineOptions {
            created_at: UNIX_EPOCH + Duration::from_secs(1_643_647_675),
            ..PipelineOptions::default()
        }
    }

    fn read(repo: &Repo) -> GitFacts {
        GitFacts::read(repo.path()).expect("read")
    }

    #[test]
    fn branch_pipeline_variables() {
        let upstream = Repo::new();
        upstream.commit("a", "Base");
        let repo = Repo::clone_of(&upstream);
        repo.git(&[
            "remote",
            "set-url",
            "origin",
            "git@gitlab.example.com:Group/Sub/My.Proj.git",
        ]);
        repo.git(&["checkout", "-q", "-b", "Feature/Login_Page"]);
        let sha = repo.commit("b", "Add login\n\nWith a form.");
        let facts = read(&repo);
        let v = pipeline_variables(&facts, &opts());
        let get = |k: &str| v.lookup(k).unwrap_or_else(|| panic!("{k} is set"));
        assert_eq!(get("CI_COMMIT_SHA"), sha);
        assert_eq!(get("CI_COMMIT_SHORT_SHA"), &sha[..8]);
        assert_eq!(get("CI_COMMIT_REF_NAME"), "Feature/Login_Page");
        assert_eq!(get("CI_COMMIT_REF_SLUG"), "feature-login-page");
        assert_eq!(get("CI_COMMIT_BRANCH"), "Feature/Login_Page");
        assert_eq!(v.lookup("CI_COMMIT_TAG"), None);
        assert_eq!(get("CI_COMMIT_BEFORE_SHA"), "0".repeat(40));
        assert_eq!(get("CI_COMMIT_MESSAGE"), "Add login\n\nWith a form.\n");
        assert_eq!(get("CI_COMMIT_TITLE"), "Add login");
        assert_eq!(get("CI_COMMIT_DESCRIPTION"), "\nWith a form.");
        assert_eq!(get("CI_COMMIT_AUTHOR"), "Ada Lovelace <ada@example.com>");
        assert_eq!(get("CI_COMMIT_TIMESTAMP"), "2022-01-31T16:47:55+01:00");
        assert_eq!(get("CI_COMMIT_REF_PROTECTED"), "false");
        assert_eq!(get("CI_DEFAULT_BRANCH"), "main");
        assert_eq!(get("CI_PROJECT_PATH"), "Group/Sub/My.Proj");
        assert_eq!(get("CI_PROJECT_NAME"), "My.Proj");
        assert_eq!(get("CI_PROJECT_NAMESPACE"), "Group/Sub");
        assert_eq!(get("CI_PROJECT_ROOT_NAMESPACE"), "Group");
        assert_eq!(get("CI_PROJECT_PATH_SLUG"), "group-sub-my-proj");
        assert_eq!(
            get("CI_PROJECT_URL"),
            "https://gitlab.example.com/Group/Sub/My.Proj"
        );
        assert_eq!(get("CI_SERVER_URL"), "https://gitlab.example.com");
        assert_eq!(get("CI_SERVER_HOST"), "gitlab.example.com");
        assert_eq!(get("CI_SERVER_PORT"), "443");
        assert_eq!(get("CI_SERVER_VERSION_MAJOR"), "18");
        assert_eq!(
            get("CI_REGISTRY_IMAGE"),
            "gitlab.example.com:5050/group/sub/my.proj"
        );
        assert_eq!(get("CI_API_V4_URL"), "https://gitlab.example.com/api/v4");
        assert_eq!(get("CI_PIPELINE_SOURCE"), "push");
        assert_eq!(get("CI_PIPELINE_CREATED_AT"), "2022-01-31T16:47:55Z");
        assert_eq!(get("CI_DEPENDENCY_PROXY_SERVER"), "gitlab.example.com:443");
    }

    #[test]
    fn rule_200_tag_pipeline_has_tag_and_no_branch() {
        let repo = Repo::new();
        repo.commit("a", "Release");
        repo.git(&["tag", "-a", "V1.0", "-m", "Version 1.0"]);
        repo.git(&["checkout", "-q", "--detach"]);
        let v = pipeline_variables(&read(&repo), &opts());
        assert_eq!(v.lookup("CI_COMMIT_TAG"), Some("V1.0"));
        assert_eq!(v.lookup("CI_COMMIT_TAG_MESSAGE"), Some("Version 1.0\n"));
        assert_eq!(v.lookup("CI_COMMIT_REF_NAME"), Some("V1.0"));
        assert_eq!(v.lookup("CI_COMMIT_REF_SLUG"), Some("v1-0"));
        assert_eq!(v.lookup("CI_COMMIT_BRANCH"), None);
        assert_eq!(
            v.lookup("CI_COMMIT_BEFORE_SHA"),
            Some("0".repeat(40).as_str())
        );
    }

    #[test]
    fn rule_200_merge_request_pipeline_has_no_branch_variable() {
        let repo = Repo::new();
        repo.commit("a", "Base");
        repo.git(&["checkout", "-q", "-b", "topic"]);
        repo.commit("b", "Topic work");
        let o = PipelineOptions {
            source: "merge_request_event".to_owned(),
            ..opts()
        };
        let v = pipeline_variables(&read(&repo), &o);
        assert_eq!(v.lookup("CI_COMMIT_BRANCH"), None);
        assert_eq!(v.lookup("CI_COMMIT_REF_NAME"), Some("topic"));
        assert_eq!(
            v.lookup("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"),
            Some("topic")
        );
        assert_eq!(
            v.lookup("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
            Some("main")
        );
        assert_eq!(v.lookup("CI_MERGE_REQUEST_TITLE"), Some("Topic work"));
        assert_eq!(v.lookup("CI_PIPELINE_SOURCE"), Some("merge_request_event"));
    }

    #[test]
    fn branch_push_uses_the_upstream_as_before_sha_and_other_sources_do_not() {
        let upstream = Repo::new();
        let pushed = upstream.commit("a", "Base");
        let repo = Repo::clone_of(&upstream);
        repo.commit("b", "Local");
        let facts = read(&repo);
        let v = pipeline_variables(&facts, &opts());
        assert_eq!(v.lookup("CI_COMMIT_BEFORE_SHA"), Some(pushed.as_str()));
        let web = PipelineOptions {
            source: "web".to_owned(),
            ..opts()
        };
        let v = pipeline_variables(&facts, &web);
        assert_eq!(
            v.lookup("CI_COMMIT_BEFORE_SHA"),
            Some("0".repeat(40).as_str())
        );
        assert_eq!(v.lookup("CI_COMMIT_BRANCH"), Some("main"));
    }

    #[test]
    fn no_origin_gives_a_local_project() {
        let repo = Repo::new();
        repo.commit("a", "x");
        let facts = read(&repo);
        let dir = facts
            .toplevel
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let v = pipeline_variables(&facts, &opts());
        assert_eq!(
            v.lookup("CI_PROJECT_PATH"),
            Some(format!("local/{dir}").as_str())
        );
        assert_eq!(v.lookup("CI_PROJECT_NAMESPACE"), Some("local"));
        assert_eq!(v.lookup("CI_SERVER_URL"), Some("http://localhost"));
        assert_eq!(v.lookup("CI_SERVER_PORT"), Some("80"));
    }

    #[test]
    fn gitlab_com_registry_and_protected_option() {
        let repo = Repo::new();
        repo.commit("a", "x");
        repo.git(&[
            "remote",
            "add",
            "origin",
            "https://oauth2:tok@gitlab.com/gitlab-org/gitlab-runner.git",
        ]);
        let o = PipelineOptions {
            protected: true,
            ..opts()
        };
        let v = pipeline_variables(&read(&repo), &o);
        assert_eq!(v.lookup("CI_REGISTRY"), Some("registry.gitlab.com"));
        assert_eq!(
            v.lookup("CI_REGISTRY_IMAGE"),
            Some("registry.gitlab.com/gitlab-org/gitlab-runner")
        );
        assert_eq!(v.lookup("CI_COMMIT_REF_PROTECTED"), Some("true"));
        assert!(v.iter().all(|var| !var.value.contains("tok@")));
    }

    #[test]
    fn pipeline_and_job_variables_are_all_visible_to_rules() {
        let repo = Repo::new();
        repo.commit("a", "x");
        let v = pipeline_variables(&read(&repo), &opts());
        let job = super::super::job::job_variables("j", "s", Some((1, 2)), true);
        for var in v.iter().chain(job.iter()) {
            assert!(
                super::super::availability::visible_to_rules(&var.key),
                "{}",
                var.key
            );
            assert!(
                super::super::availability::availability(&var.key).is_some(),
                "{}",
                var.key
            );
        }
    }
}
