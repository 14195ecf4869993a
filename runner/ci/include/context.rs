//! Everything `include` resolution needs to know about the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::fetch::{Fetcher, NetFetcher};
use super::rules::ConditionEvaluator;
use crate::ci::yaml::Node;

/// GitLab's default `ci_max_includes` since 15.10.
pub const MAX_INCLUDES: usize = 150;

/// GitLab's time budget for resolving every include of a pipeline.
pub const INCLUDE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where GitLab's own CI templates are published; GitLab serves
/// `include:template` from the copy shipped with the instance, which is this
/// tree at the instance's version.
pub const TEMPLATE_BASE_URL: &str =
    "https://gitlab.com/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates";

/// The settings and services used while resolving `include`.
pub struct IncludeContext {
    /// The repository root: `include:local` paths are relative to it.
    pub project_dir: PathBuf,
    /// The include-safe variables (rule 51): predefined `CI_PROJECT_*`,
    /// `CI_COMMIT_REF_NAME`, `CI_PIPELINE_SOURCE`, `CI_SERVER_*`, plus user
    /// `--var` values. They expand `$VAR` in include locations, feed
    /// `include:rules` and the `expand_vars` input function.
    pub variables: BTreeMap<String, String>,
    /// The GitLab instance, e.g. `https://gitlab.com`: `project` includes
    /// are fetched from `<server_url>/<project>.git`.
    pub server_url: String,
    /// On-disk cache of remote, project, template and component files.
    pub cache_dir: PathBuf,
    /// Use only the cache, never the network.
    pub offline: bool,
    /// Evaluates `include:rules:if` expressions. Without one, an include
    /// whose rules need an `if` evaluated is reported as an error rather
    /// than guessed.
    pub conditions: Option<Box<dyn ConditionEvaluator>>,
    /// Values for the root file's own `spec:inputs` (inputs not given take
    /// their defaults).
    pub root_inputs: BTreeMap<String, Node>,
    /// Give the root file's required inputs stand-in values when none are
    /// given, to check a template on its own.
    pub placeholder_inputs: bool,
    /// Paths changed by the pipeline's commits, for `include:rules:changes`.
    /// `None` means unknown, and GitLab then treats `changes` as true.
    pub changed_paths: Option<Vec<String>>,
    /// Base URL of GitLab's CI template tree, for `include:template`.
    pub template_base_url: String,
    /// How remote, project, template and component files are fetched.
    pub fetcher: Box<dyn Fetcher>,
    /// Most includes allowed, nested ones and duplicates counted.
    pub max_includes: usize,
    /// Time budget for resolving every include.
    pub timeout: Duration,
}

impl IncludeContext {
    /// A context with GitLab's limits, the network fetcher (keeping its git
    /// repositories under `cache_dir/git`) and no variables.
    pub fn new(
        project_dir: impl Into<PathBuf>,
        server_url: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> IncludeContext {
        let cache_dir = cache_dir.into();
        IncludeContext {
            project_dir: project_dir.into(),
            variables: BTreeMap::new(),
            server_url: server_url.into(),
            fetcher: Box::new(NetFetcher::new(cache_dir.join("git"))),
            cache_dir,
            offline: false,
            conditions: None,
            root_inputs: BTreeMap::new(),
            placeholder_inputs: false,
            changed_paths: None,
            template_base_url: TEMPLATE_BASE_URL.to_string(),
            max_includes: MAX_INCLUDES,
            timeout: INCLUDE_TIMEOUT,
        }
    }

    /// The server URL without a trailing slash.
    pub(crate) fn server(&self) -> &str {
        self.server_url.trim_end_matches('/')
    }

    /// The instance's host name: `CI_SERVER_FQDN` when given, else the
    /// host of `server_url`.
    pub(crate) fn server_fqdn(&self) -> String {
        if let Some(fqdn) = self.variables.get("CI_SERVER_FQDN") {
            return fqdn.clone();
        }
        let rest = self
            .server()
            .split_once("://")
            .map_or(self.server(), |(_, r)| r);
        rest.split('/').next().unwrap_or("").to_string()
    }
}
