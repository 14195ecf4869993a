//! A job: every job keyword decoded and checked the way GitLab checks a
//! job entry (rules 13-21, 32-33, 129-138, 168, 233-234, 239-254).

use serde::Serialize;

use super::artifacts::ArtifactsSpec;
use super::cache::CacheSpec;
use super::decode::Decoder;
use super::environment::EnvironmentSpec;
use super::extras::{HooksSpec, IdTokenSpec, IdentitySpec, PagesSpec, SecretSpec};
use super::image::{ImageSpec, ServiceSpec};
use super::job_keys::{decode_bridge_keys, decode_build_keys, decode_inherit};
use super::judge::{array_of_strings, attr_error, present_keys};
use super::needs::Need;
use super::only_except::{OnlyExcept, decode_only_except};
use super::parallel::Parallel;
use super::release::ReleaseSpec;
use super::rules::{Rule, decode_job_rules};
use super::trigger::Trigger;
use super::variables::{VarScope, VariableDef, decode_variables};
use super::when::{AllowFailure, Retry, When};
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node};

/// A regular job runs a script; a trigger job (GitLab's "bridge") starts a
/// downstream pipeline or mirrors an upstream one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    #[default]
    Build,
    Trigger,
}

/// A visible job, every keyword decoded. Keywords a job does not set are
/// `None` (or empty); defaults that depend on other jobs or on the
/// pipeline (`only`, `allow_failure`) are applied when planning.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Job {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
    pub kind: JobKind,
    /// The job's stage: `stage`, else the deprecated `type`, else `test`
    /// (rules 21 and 23).
    pub stage: String,
    pub script: Vec<String>,
    pub before_script: Option<Vec<String>>,
    pub after_script: Option<Vec<String>>,
    /// Experimental `run` steps, kept as written (rule 251).
    pub run: Option<serde_json::Value>,
    pub when: When,
    pub start_in: Option<String>,
    pub allow_failure: Option<AllowFailure>,
    pub manual_confirmation: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub only: Option<OnlyExcept>,
    pub except: Option<OnlyExcept>,
    pub needs: Option<Vec<Need>>,
    pub dependencies: Option<Vec<String>>,
    pub variables: Vec<VariableDef>,
    pub inherit: Inherit,
    pub parallel: Option<Parallel>,
    pub retry: Option<Retry>,
    pub timeout: Option<String>,
    pub tags: Vec<String>,
    pub interruptible: Option<bool>,
    /// The coverage regex as written, slashes included (rule 244).
    pub coverage: Option<String>,
    pub resource_group: Option<String>,
    pub trigger: Option<Trigger>,
    pub image: Option<ImageSpec>,
    pub services: Option<Vec<ServiceSpec>>,
    pub artifacts: Option<ArtifactsSpec>,
    pub cache: Option<Vec<CacheSpec>>,
    pub environment: Option<EnvironmentSpec>,
    pub release: Option<ReleaseSpec>,
    pub pages: Option<PagesSpec>,
    /// Deprecated job-level `publish` of a Pages job (rule 252).
    pub publish: Option<String>,
    pub secrets: Option<Vec<(String, SecretSpec)>>,
    pub id_tokens: Option<Vec<(String, IdTokenSpec)>>,
    pub hooks: Option<HooksSpec>,
    pub identity: Option<IdentitySpec>,
    pub dast_configuration: Option<DastConfiguration>,
}

/// `inherit:` (rules 32-33).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inherit {
    pub default: InheritKeys,
    pub variables: InheritKeys,
}

impl Default for Inherit {
    fn default() -> Self {
        Inherit {
            default: InheritKeys::All(true),
            variables: InheritKeys::All(true),
        }
    }
}

/// `true`/`false`, or the names to inherit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum InheritKeys {
    All(bool),
    Only(Vec<String>),
}

impl InheritKeys {
    /// Whether `key` (a `default:` keyword or a top-level variable name)
    /// is inherited.
    pub fn includes(&self, key: &str) -> bool {
        match self {
            InheritKeys::All(all) => *all,
            InheritKeys::Only(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// `dast_configuration` (rule 250).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DastConfiguration {
    pub site_profile: Option<String>,
    pub scanner_profile: Option<String>,
}

/// The keywords every job kind accepts (GitLab's "processable" keys).
pub(crate) const PROCESSABLE_KEYS: &[&str] = &[
    "extends",
    "stage",
    "only",
    "except",
    "rules",
    "variables",
    "inherit",
    "allow_failure",
    "when",
    "needs",
    "resource_group",
    "environment",
    "interruptible",
];

/// The keywords of a regular job on top of [`PROCESSABLE_KEYS`].
pub(crate) const BUILD_KEYS: &[&str] = &[
    "tags",
    "script",
    "image",
    "services",
    "start_in",
    "artifacts",
    "cache",
    "dependencies",
    "before_script",
    "after_script",
    "hooks",
    "coverage",
    "retry",
    "parallel",
    "timeout",
    "release",
    "id_tokens",
    "publish",
    "pages",
    "manual_confirmation",
    "run",
    "dast_configuration",
    "identity",
    "secrets",
    "type",
];

/// The keywords of a trigger job on top of [`PROCESSABLE_KEYS`] (rule 234).
pub(crate) const TRIGGER_KEYS: &[&str] = &["trigger", "parallel"];

/// The longest job name GitLab accepts (rule 15).
const MAX_NAME_LENGTH: usize = 255;

/// Decodes the visible job `name` whose configuration is the hash `map`.
pub(crate) fn decode_job(
    d: &mut Decoder,
    name: &str,
    key: &Node,
    map: &Mapping,
    kind: JobKind,
) -> Job {
    let path = format!("jobs:{name}");
    let own_keys = match kind {
        JobKind::Build => BUILD_KEYS,
        JobKind::Trigger => TRIGGER_KEYS,
    };
    let allowed: Vec<&str> = own_keys.iter().chain(PROCESSABLE_KEYS).copied().collect();
    d.unknown_keys(map, &path, &allowed);
    if name.chars().count() > MAX_NAME_LENGTH {
        let msg = format!("is too long (maximum is {MAX_NAME_LENGTH} characters)");
        attr_error(d, key, &path, "name", &msg);
    }
    let mut exclusive: Vec<&[&str]> = vec![&["script", "trigger"], &["run", "trigger"]];
    if kind == JobKind::Build {
        exclusive.push(&["script", "run"]);
    }
    for pair in exclusive {
        let both = present_keys(map, pair, false);
        if both.len() > 1 {
            let msg = format!(
                "config these keys cannot be used together: {}",
                both.join(", ")
            );
            d.error(key, &path, msg);
        }
    }
    let mut job = Job {
        name: name.to_string(),
        span: key.span,
        kind,
        ..Job::default()
    };
    decode_processable(d, map, &path, &mut job);
    match kind {
        JobKind::Build => decode_build_keys(d, key, map, &path, &mut job),
        JobKind::Trigger => decode_bridge_keys(d, key, map, &path, &mut job),
    }
    job
}

/// The keywords shared by regular and trigger jobs.
fn decode_processable(d: &mut Decoder, map: &Mapping, path: &str, job: &mut Job) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    if let Some(rules) = get("rules") {
        // `only`, `except` and `start_in` set to null are tolerated.
        let clash = present_keys(map, &["only", "except", "start_in"], true);
        if !clash.is_empty() {
            let msg = format!(
                "config key may not be used with `rules`: {}",
                clash.join(", ")
            );
            d.error(rules, path, msg);
        }
        job.rules = decode_job_rules(d, rules, path);
    }
    job.stage = "test".to_string();
    let stage = get("stage").or_else(|| get("type").filter(|_| job.kind == JobKind::Build));
    if let Some(stage) = stage {
        let key = if get("stage").is_some() {
            "stage"
        } else {
            "type"
        };
        match stage.as_str() {
            Some(s) => job.stage = s.to_string(),
            None => d.error(stage, &format!("{path}:{key}"), "config should be a string"),
        }
    }
    // A `type` next to a `stage` is still checked.
    if let Some(kind) = get("type").filter(|_| get("stage").is_some() && job.kind == JobKind::Build)
        && kind.as_str().is_none()
    {
        d.error(kind, &format!("{path}:type"), "config should be a string");
    }
    if let Some(only) = get("only") {
        job.only = decode_only_except(d, only, &format!("{path}:only"));
    }
    if let Some(except) = get("except") {
        job.except = decode_only_except(d, except, &format!("{path}:except"));
    }
    if let Some(vars) = get("variables") {
        job.variables = decode_variables(d, vars, &format!("{path}:variables"), VarScope::Job);
    }
    if let Some(inherit) = get("inherit") {
        job.inherit = decode_inherit(d, inherit, &format!("{path}:inherit"));
    }
    if let Some(env) = get("environment") {
        job.environment =
            super::environment::decode_environment(d, env, &format!("{path}:environment"));
    }
    if let Some(value) = get("interruptible") {
        job.interruptible = value.as_bool();
        if job.interruptible.is_none() {
            d.error(
                value,
                &format!("{path}:interruptible"),
                "config should be a boolean value",
            );
        }
    }
    if let Some(group) = get("resource_group") {
        job.resource_group = group.as_str().map(String::from);
        if job.resource_group.is_none() {
            attr_error(d, group, path, "resource_group", "should be a string");
        }
    }
    if let Some(extends) = get("extends")
        && extends.as_str().is_none()
        && array_of_strings(extends).is_none()
    {
        let msg = "should be an array of strings or a string";
        attr_error(d, extends, path, "extends", msg);
    }
}
