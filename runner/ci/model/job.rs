//! A job: every job keyword decoded and checked the way GitLab checks a
//! job entry (rules 13-21, 32-33, 129-138, 168, 233-234, 239-254).

use serde::Serialize;

use super::artifacts::ArtifactsSpec;
use super::cache::CacheSpec;
use super::decode::Decoder;
use super::environment::EnvironmentSpec;
use super::extras::{HooksSpec, IdTokenSpec, IdentitySpec, PagesSpec, SecretSpec};
use super::image::{ImageSpec, ServiceSpec};
use super::inherit::{Inherit, decode_inherit};
use super::job_keys::{decode_bridge_keys, decode_build_keys};
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
    if name.chars().count() > MAX_NAME_LENGTH {
        let msg = format!("is too long (maximum is {MAX_NAME_LENGTH} characters)");
        attr_error(d, key, &path, "name", &msg);
    }
    // GitLab checks the keys every job kind shares first, then the keys
    // of the kind; the messages come in that order.
    exclusive_keys(
        d,
        key,
        map,
        &path,
        &[&["script", "trigger"], &["run", "trigger"]],
    );
    if let Some(rules) = map.get("rules").filter(|n| !n.is_null()) {
        // `only`, `except` and `start_in` set to null are tolerated.
        let clash = present_keys(map, &["only", "except", "start_in"], true);
        if !clash.is_empty() {
            let msg = format!(
                "config key may not be used with `rules`: {}",
                clash.join(", ")
            );
            d.error(rules, &path, msg);
        }
    }
    let allowed: Vec<&str> = own_keys.iter().chain(PROCESSABLE_KEYS).copied().collect();
    d.unknown_keys(map, &path, &allowed);
    if kind == JobKind::Build {
        exclusive_keys(d, key, map, &path, &[&["script", "run"]]);
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

/// GitLab's "these keys cannot be used together" for each group of keys.
fn exclusive_keys(d: &mut Decoder, key: &Node, map: &Mapping, path: &str, groups: &[&[&str]]) {
    for group in groups {
        let both = present_keys(map, group, false);
        if both.len() > 1 {
            let msg = format!(
                "config these keys cannot be used together: {}",
                both.join(", ")
            );
            d.error(key, path, msg);
        }
    }
}

/// The keywords shared by regular and trigger jobs.
fn decode_processable(d: &mut Decoder, map: &Mapping, path: &str, job: &mut Job) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    if let Some(rules) = get("rules") {
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
        if let Some(s) = d.string(stage, &format!("{path}:{key}")) {
            job.stage = s;
        }
    }
    // A `type` next to a `stage` is still checked.
    if let Some(kind) = get("type").filter(|_| get("stage").is_some() && job.kind == JobKind::Build)
    {
        d.string(kind, &format!("{path}:type"));
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
        job.interruptible = d.boolean(value, &format!("{path}:interruptible"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::model::pipeline::{Pipeline, decode_pipeline};
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> Result<Pipeline, Vec<String>> {
        let root = parse_documents(text, SourceId(1)).unwrap().remove(0);
        decode_pipeline(&root).map_err(|e| e.iter().map(|d| d.message.clone()).collect())
    }

    fn job(text: &str) -> Job {
        decode(text).unwrap().jobs.remove(0)
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).unwrap_err()
    }

    #[test]
    fn rule_17_script_must_say_something() {
        assert_eq!(errors("a: {script: ''}"), ["jobs:a script can't be blank"]);
        assert_eq!(errors("a: {script: []}"), ["jobs:a script can't be blank"]);
        assert_eq!(errors("a: {script: ~}"), ["jobs:a script can't be blank"]);
    }

    #[test]
    fn rule_251_run_replaces_script() {
        let j = job("a: {run: [{name: hello, script: echo hi}]}");
        assert!(j.script.is_empty());
        assert_eq!(j.run.unwrap()[0]["name"], "hello");
        assert_eq!(
            errors("a: {script: x, run: [{name: s, script: y}]}"),
            ["jobs:a config these keys cannot be used together: script, run"]
        );
        assert_eq!(
            errors("a: {run: [{script: y}]}"),
            ["jobs:a run must be a valid json schema"]
        );
    }

    #[test]
    fn rule_168_script_shapes() {
        let j = job("a: {script: [one, [two, [three]]], before_script: b, after_script: [c]}");
        assert_eq!(j.script, ["one", "two", "three"]);
        assert_eq!(j.before_script.unwrap(), ["b"]);
        assert_eq!(j.after_script.unwrap(), ["c"]);
        assert_eq!(
            errors("build: {script: [echo, {key: value}]}"),
            [
                "jobs:build:script config should be a string or a nested array of strings up to 10 levels deep"
            ]
        );
    }

    #[test]
    fn unknown_job_keys_are_listed() {
        assert_eq!(
            errors("build: {script: x, foo: 1, bar: 2}"),
            ["jobs:build config contains unknown keys: foo, bar"]
        );
    }

    #[test]
    fn rule_15_job_names_are_at_most_255_characters() {
        let name = "j".repeat(256);
        assert_eq!(
            errors(&format!("{name}: {{script: x}}")),
            [format!(
                "jobs:{name} name is too long (maximum is 255 characters)"
            )]
        );
    }

    #[test]
    fn rule_21_type_is_the_old_stage() {
        assert_eq!(job("a: {type: build, script: x}").stage, "build");
        assert_eq!(
            errors("a: {stage: [b], script: x}"),
            ["jobs:a:stage config should be a string"]
        );
    }

    #[test]
    fn rule_88_rules_exclude_only_except_and_start_in() {
        assert_eq!(
            errors("a: {script: x, rules: [{when: always}], only: [main], except: [tags]}"),
            ["jobs:a config key may not be used with `rules`: only, except"]
        );
        let j = job("a: {script: x, rules: [{when: always}], only: ~}");
        assert_eq!(j.rules.unwrap().len(), 1);
        assert!(j.only.is_none());
    }

    #[test]
    fn rule_87_job_start_in_is_not_allowed_with_rules() {
        let errs = errors("a: {script: x, when: manual, rules: [{when: always}], start_in: 1h}");
        assert_eq!(
            errs,
            [
                "jobs:a config key may not be used with `rules`: start_in",
                "jobs:a start in must be blank"
            ]
        );
    }

    #[test]
    fn rule_134_start_in_only_for_delayed_jobs() {
        assert_eq!(
            errors("a: {script: x, start_in: 5m}"),
            ["jobs:a start in must be blank"]
        );
    }

    #[test]
    fn rule_133_delayed_jobs_need_start_in() {
        assert_eq!(
            errors("a: {script: x, when: delayed}"),
            [
                "jobs:a start in should be a duration",
                "jobs:a start in should not exceed the limit"
            ]
        );
    }

    #[test]
    fn rule_129_job_when() {
        assert_eq!(job("a: {script: x, when: manual}").when, When::Manual);
        assert_eq!(job("a: {script: x}").when, When::OnSuccess);
        assert_eq!(
            errors("a: {script: x, when: never}"),
            ["jobs:a when should be one of: on_success, on_failure, always, manual, delayed"]
        );
    }

    #[test]
    fn rule_138_allow_failure_in_a_job() {
        let j = job("a: {script: x, allow_failure: {exit_codes: [137, 255]}}");
        assert_eq!(
            j.allow_failure,
            Some(AllowFailure::ExitCodes {
                exit_codes: vec![137, 255]
            })
        );
        assert_eq!(
            errors("rspec: {script: test, allow_failure: string}"),
            ["jobs:rspec allow failure should be a hash or a boolean value"]
        );
    }

    #[test]
    fn rule_233_trigger_jobs() {
        let j = job("a: {trigger: g/p, when: manual, allow_failure: true, stage: deploy}");
        assert_eq!(j.kind, JobKind::Trigger);
        assert!(j.script.is_empty());
        assert!(matches!(j.trigger, Some(Trigger::Project { .. })));
        assert_eq!(
            errors("a: {script: x, trigger: g/p}"),
            [
                "jobs:a config these keys cannot be used together: script, trigger",
                "jobs:a config contains unknown keys: trigger"
            ]
        );
    }

    #[test]
    fn rule_234_trigger_jobs_take_only_some_keywords() {
        assert_eq!(
            errors("a: {trigger: g/p, image: ruby, tags: [x]}"),
            ["jobs:a config contains unknown keys: image, tags"]
        );
        assert_eq!(
            errors("a: {trigger: g/p, when: delayed}"),
            ["jobs:a when should be one of: on_success, on_failure, always, manual"]
        );
        assert_eq!(
            errors("a: {trigger: g/p, allow_failure: {exit_codes: 1}}"),
            ["jobs:a allow failure should be a boolean value"]
        );
        assert_eq!(
            errors("a: {trigger: g/p, parallel: 2}"),
            ["jobs:a:parallel config cannot use \"parallel: <number>\"."]
        );
    }

    #[test]
    fn rule_149_upstream_pipeline_trigger_job() {
        let j = job("a: {needs: {pipeline: other/project}}");
        assert_eq!(j.kind, JobKind::Trigger);
        assert_eq!(
            errors("a: {needs: [b]}\nb: {script: x}"),
            ["jobs:a config should contain either a trigger or a needs:pipeline"]
        );
    }

    #[test]
    fn rule_151_dependencies_and_needs_together() {
        assert_eq!(
            errors(
                "a: {script: x, needs: [b], dependencies: [b, c]}\nb: {script: x}\nc: {script: x}"
            ),
            ["jobs:a dependencies the c should be part of needs"]
        );
    }

    #[test]
    fn rule_243_tags() {
        assert_eq!(
            job("a: {script: x, tags: [docker, linux]}").tags,
            ["docker", "linux"]
        );
        let many: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert_eq!(
            errors(&format!("a: {{script: x, tags: [{}]}}", many.join(", "))),
            ["jobs:a:tags config must be less than the limit of 50 tags"]
        );
        assert_eq!(
            errors("a: {script: x, tags: docker}"),
            ["jobs:a:tags config should be an array of strings"]
        );
    }

    #[test]
    fn rule_244_coverage_is_an_re2_regex() {
        let j = job("a: {script: x, coverage: '/^TOTAL.+?(\\d+\\%)$/'}");
        assert_eq!(j.coverage.as_deref(), Some("/^TOTAL.+?(\\d+\\%)$/"));
        assert_eq!(
            errors("a: {script: x, coverage: 'TOTAL (\\d+)'}"),
            ["jobs:a:coverage config must be a regular expression with re2 syntax"]
        );
        assert_eq!(
            errors("a: {script: x, coverage: '/(?=x)/'}"),
            ["jobs:a:coverage config must be a regular expression with re2 syntax"]
        );
    }

    #[test]
    fn rule_242_245_interruptible_and_resource_group() {
        let j = job("a: {script: x, interruptible: true, resource_group: prod}");
        assert_eq!(j.interruptible, Some(true));
        assert_eq!(j.resource_group.as_deref(), Some("prod"));
        assert_eq!(
            errors("a: {script: x, interruptible: yes please, resource_group: [p]}"),
            [
                "jobs:a:interruptible config should be a boolean value",
                "jobs:a resource group should be a string"
            ]
        );
    }

    #[test]
    fn rule_252_publish_belongs_to_pages_jobs() {
        assert_eq!(
            job("pages: {script: x, publish: dist}").publish.as_deref(),
            Some("dist")
        );
        assert_eq!(
            errors("site: {script: x, publish: dist}"),
            ["jobs:site publish can only be used within a `pages` job"]
        );
    }

    #[test]
    fn rule_136_manual_confirmation_is_text() {
        let j = job("a: {script: x, when: manual, manual_confirmation: Sure?}");
        assert_eq!(j.manual_confirmation.as_deref(), Some("Sure?"));
        assert_eq!(
            errors("a: {script: x, manual_confirmation: 1}"),
            ["jobs:a manual confirmation should be a string"]
        );
    }

    #[test]
    fn rule_175_job_variables() {
        let j = job("a: {script: x, variables: {A: 1, B: {value: two, expand: false}}}");
        assert_eq!(j.variables[0].value, "1");
        assert!(!j.variables[1].expand);
    }

    #[test]
    fn jobs_serialize_with_gitlab_key_names() {
        let j = job(
            "a: {script: x, rules: [{if: $X, when: manual}], needs: [{job: b, artifacts: false}]}\nb: {script: y}",
        );
        let json = serde_json::to_value(&j).unwrap();
        assert_eq!(json["rules"][0]["if"], "$X");
        assert_eq!(json["rules"][0]["when"], "manual");
        assert_eq!(json["needs"][0]["type"], "job");
        assert_eq!(json["needs"][0]["artifacts"], false);
    }
}
