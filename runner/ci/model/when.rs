//! The keywords that say when a job runs and how its failure counts:
//! `when`, `start_in`, `allow_failure`, `retry` and `timeout`.

use std::time::Duration;

use serde::Serialize;

use super::decode::Decoder;
use super::duration::{duration_with_variables, parse_duration};
use super::judge::{array_of_strings, attr_error, integer_in_range, to_s};
use crate::ci::yaml::{Node, Value};

/// When a job (or a rule) lets a job run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
    Manual,
    Delayed,
    /// Only in `rules` and `workflow:rules`: the job (or pipeline) is not
    /// created.
    Never,
}

impl When {
    /// The value written `text` in YAML, if it is one.
    pub fn parse(text: &str) -> Option<When> {
        Some(match text {
            "on_success" => When::OnSuccess,
            "on_failure" => When::OnFailure,
            "always" => When::Always,
            "manual" => When::Manual,
            "delayed" => When::Delayed,
            "never" => When::Never,
            _ => return None,
        })
    }

    /// The value as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            When::OnSuccess => "on_success",
            When::OnFailure => "on_failure",
            When::Always => "always",
            When::Manual => "manual",
            When::Delayed => "delayed",
            When::Never => "never",
        }
    }
}

/// Job-level `when` values (rule 129: `never` only exists in rules).
pub(crate) const JOB_WHEN: &[&str] = &["on_success", "on_failure", "always", "manual", "delayed"];
/// A trigger job cannot be delayed.
pub(crate) const BRIDGE_WHEN: &[&str] = &["on_success", "on_failure", "always", "manual"];
/// `rules:when` (rule 85).
pub(crate) const RULE_WHEN: &[&str] = &[
    "on_success",
    "on_failure",
    "always",
    "never",
    "manual",
    "delayed",
];
/// `workflow:rules:when` (rule 73).
pub(crate) const WORKFLOW_WHEN: &[&str] = &["always", "never"];

/// The longest `start_in` GitLab accepts (rule 133).
pub(crate) const START_IN_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest job `timeout`: Rails' `1.month` (30.436875 days).
pub(crate) const TIMEOUT_LIMIT: Duration = Duration::from_secs(2_629_746);

/// A job-level `when`. A regular job also checks the value is a string
/// (`when should be a string`) before checking it is one of `allowed`.
pub(crate) fn decode_job_when(
    d: &mut Decoder,
    node: &Node,
    job_path: &str,
    allowed: &[&str],
    check_type: bool,
) -> Option<When> {
    let text = node.as_str();
    if check_type && text.is_none() {
        attr_error(d, node, job_path, "when", "should be a string");
    }
    match text {
        Some(t) if allowed.contains(&t) => When::parse(t),
        _ => {
            let msg = format!("should be one of: {}", allowed.join(", "));
            attr_error(d, node, job_path, "when", &msg);
            None
        }
    }
}

/// A rule's `when`, worded as GitLab's allowed-values check words it.
pub(crate) fn decode_rule_when(
    d: &mut Decoder,
    node: &Node,
    rule_path: &str,
    allowed: &[&str],
) -> Option<When> {
    let text = to_s(node);
    if allowed.contains(&text.as_str()) {
        When::parse(&text)
    } else {
        attr_error(
            d,
            node,
            rule_path,
            "when",
            &format!("unknown value: {text}"),
        );
        None
    }
}

/// A `start_in` of a delayed job or rule: a duration of at most a week.
/// `attr` reports under `<path> start in ...`; a missing value is given as
/// a null node, which GitLab reports as not being a duration.
pub(crate) fn check_start_in(d: &mut Decoder, node: &Node, path: &str) {
    match node.as_str().map(parse_duration) {
        Some(Some(duration)) => {
            if duration > START_IN_LIMIT {
                attr_error(d, node, path, "start_in", "should not exceed the limit");
            }
        }
        _ => {
            attr_error(d, node, path, "start_in", "should be a duration");
            attr_error(d, node, path, "start_in", "should not exceed the limit");
        }
    }
}

/// `timeout` (rule 241). A value with a variable is left for the runner to
/// expand, so it is not checked here (rule 254).
pub(crate) fn decode_timeout(d: &mut Decoder, node: &Node, path: &str) -> Option<String> {
    let Some(text) = node.as_str() else {
        d.error(node, path, "config should be a duration");
        d.error(node, path, "config should not exceed the limit");
        return None;
    };
    if duration_with_variables(text) {
        return Some(text.to_string());
    }
    match parse_duration(text) {
        Some(duration) if duration <= TIMEOUT_LIMIT => Some(text.to_string()),
        Some(_) => {
            d.error(node, path, "config should not exceed the limit");
            None
        }
        None => {
            d.error(node, path, "config should be a duration");
            d.error(node, path, "config should not exceed the limit");
            None
        }
    }
}

/// `allow_failure` (rule 138).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AllowFailure {
    Bool(bool),
    /// Failure is allowed only for these exit codes. `{}` gives an empty
    /// list, which allows no failure.
    ExitCodes {
        exit_codes: Vec<i64>,
    },
}

impl AllowFailure {
    /// Whether any failure is allowed regardless of the exit code.
    pub fn always(&self) -> bool {
        matches!(self, AllowFailure::Bool(true))
    }
}

/// A regular job's `allow_failure`: a boolean or `{exit_codes: ...}`.
pub(crate) fn decode_allow_failure(
    d: &mut Decoder,
    node: &Node,
    job_path: &str,
) -> Option<AllowFailure> {
    match &node.value {
        Value::Bool(b) => Some(AllowFailure::Bool(*b)),
        Value::Map(map) => {
            let path = format!("{job_path}:allow_failure");
            d.unknown_keys(map, &path, &["exit_codes"]);
            let exit_codes = match map.get("exit_codes") {
                None => Vec::new(),
                Some(codes) if codes.is_null() => Vec::new(),
                Some(codes) => int_or_ints(codes).unwrap_or_else(|| {
                    let msg = "should be an array of integers or an integer";
                    attr_error(d, codes, &path, "exit_codes", msg);
                    Vec::new()
                }),
            };
            Some(AllowFailure::ExitCodes { exit_codes })
        }
        _ => {
            let msg = "should be a hash or a boolean value";
            attr_error(d, node, job_path, "allow_failure", msg);
            None
        }
    }
}

/// An integer or a list of integers, as a list.
fn int_or_ints(node: &Node) -> Option<Vec<i64>> {
    match &node.value {
        Value::Int(i) => Some(vec![*i]),
        Value::Seq(items) => items.iter().map(Node::as_int).collect(),
        _ => None,
    }
}

/// `retry` (rules 239-240).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Retry {
    /// How many retries, 0 to 2 (0 when only `when` is given).
    pub max: u8,
    /// The failure reasons that are retried; `None` means `always`.
    pub when: Option<Vec<String>>,
    /// The exit codes that are retried; `None` means any.
    pub exit_codes: Option<Vec<i64>>,
}

/// The failure reasons `retry:when` accepts: GitLab's job failure reasons
/// plus `always`.
pub(crate) const RETRY_WHEN: &[&str] = &[
    "always",
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "missing_dependency_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
    "forward_deployment_failure",
    "user_blocked",
    "project_deleted",
    "ci_quota_exceeded",
    "pipeline_loop_detected",
    "no_matching_runner",
    "trace_size_exceeded",
    "builds_disabled",
    "environment_creation_failure",
    "deployment_rejected",
    "failed_outdated_deployment_job",
    "job_execution_server_timeout",
    "stuck_pending_with_matching_runners",
    "stuck_pending_no_matching_runners",
    "no_updates_running",
    "no_updates_canceling",
    "server_timeout_running",
    "server_timeout_canceling",
    "runner_configuration_error",
    "runner_external_dependency_failure",
    "runner_interrupted",
    "image_pull_failure",
    "protected_environment_failure",
    "insufficient_bridge_permissions",
    "downstream_bridge_project_not_found",
    "invalid_bridge_trigger",
    "upstream_bridge_project_not_found",
    "insufficient_upstream_permissions",
    "bridge_pipeline_is_child_pipeline",
    "downstream_pipeline_creation_failed",
    "secrets_provider_not_found",
    "reached_max_descendant_pipelines_depth",
    "ip_restriction_failure",
    "reached_max_pipeline_hierarchy_size",
    "reached_downstream_pipeline_trigger_rate_limit",
];

/// `retry`. GitLab reports its problems under the bare location `retry`,
/// whatever job they are in.
pub(crate) fn decode_retry(d: &mut Decoder, node: &Node) -> Option<Retry> {
    const PATH: &str = "retry";
    match &node.value {
        Value::Int(_) => {
            let max = integer_in_range(d, node, PATH, "config", 0, 2)?;
            Some(Retry {
                max: max as u8,
                ..Retry::default()
            })
        }
        Value::Map(map) => {
            d.unknown_keys(map, PATH, &["max", "when", "exit_codes"]);
            let mut retry = Retry::default();
            if let Some(max) = map.get("max").filter(|n| !n.is_null()) {
                retry.max = integer_in_range(d, max, PATH, "max", 0, 2).unwrap_or(0) as u8;
            }
            if let Some(when) = map.get("when").filter(|n| !n.is_null()) {
                retry.when = decode_retry_when(d, when);
            }
            if let Some(codes) = map.get("exit_codes").filter(|n| !n.is_null()) {
                retry.exit_codes = int_or_ints(codes);
                if retry.exit_codes.is_none() {
                    let msg = "should be an array of integers or an integer";
                    attr_error(d, codes, PATH, "exit_codes", msg);
                }
            }
            Some(retry)
        }
        _ => {
            d.error_raw(
                node,
                "retry config",
                "has to be either an integer or a hash",
            );
            None
        }
    }
}

fn decode_retry_when(d: &mut Decoder, node: &Node) -> Option<Vec<String>> {
    if let Some(text) = node.as_str() {
        if RETRY_WHEN.contains(&text) {
            return Some(vec![text.to_string()]);
        }
        attr_error(d, node, "retry", "when", "is not included in the list");
        return None;
    }
    let Some(items) = array_of_strings(node) else {
        let msg = "should be an array of strings or a string";
        attr_error(d, node, "retry", "when", msg);
        return None;
    };
    let unknown: Vec<&str> = items
        .iter()
        .map(String::as_str)
        .filter(|w| !RETRY_WHEN.contains(w))
        .collect();
    if unknown.is_empty() {
        Some(items)
    } else {
        // Point at the first unknown value rather than the list.
        let first_unknown = node
            .as_seq()
            .and_then(|seq| {
                seq.iter()
                    .find(|i| i.as_str().is_some_and(|w| !RETRY_WHEN.contains(&w)))
            })
            .unwrap_or(node);
        let msg = format!("contains unknown values: {}", unknown.join(", "));
        attr_error(d, first_unknown, "retry", "when", &msg);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn messages(d: &Decoder) -> Vec<&str> {
        d.diags.iter().map(|d| d.message.as_str()).collect()
    }

    #[test]
    fn rule_129_job_when_excludes_never() {
        let mut d = Decoder::lowercasing();
        let when = decode_job_when(&mut d, &doc("manual"), "jobs:a", JOB_WHEN, true);
        assert_eq!(when, Some(When::Manual));
        assert!(decode_job_when(&mut d, &doc("never"), "jobs:a", JOB_WHEN, true).is_none());
        assert_eq!(
            messages(&d),
            ["jobs:a when should be one of: on_success, on_failure, always, manual, delayed"]
        );
    }

    #[test]
    fn rule_129_job_when_must_be_a_string() {
        let mut d = Decoder::lowercasing();
        decode_job_when(&mut d, &doc("true"), "jobs:a", JOB_WHEN, true);
        assert_eq!(messages(&d)[0], "jobs:a when should be a string");
        assert_eq!(d.diags.len(), 2);
    }

    #[test]
    fn rule_85_rule_when_reports_the_unknown_value() {
        let mut d = Decoder::lowercasing();
        let path = "jobs:a:rules:rule";
        assert_eq!(
            decode_rule_when(&mut d, &doc("never"), path, RULE_WHEN),
            Some(When::Never)
        );
        assert!(decode_rule_when(&mut d, &doc("sometimes"), path, RULE_WHEN).is_none());
        assert_eq!(
            messages(&d),
            ["jobs:a:rules:rule when unknown value: sometimes"]
        );
    }

    #[test]
    fn rule_138_allow_failure_forms() {
        let mut d = Decoder::lowercasing();
        let af = decode_allow_failure(&mut d, &doc("true"), "jobs:a");
        assert_eq!(af, Some(AllowFailure::Bool(true)));
        let af = decode_allow_failure(&mut d, &doc("{exit_codes: 137}"), "jobs:a");
        assert_eq!(
            af,
            Some(AllowFailure::ExitCodes {
                exit_codes: vec![137]
            })
        );
        let af = decode_allow_failure(&mut d, &doc("{exit_codes: [1, 2]}"), "jobs:a");
        assert_eq!(
            af,
            Some(AllowFailure::ExitCodes {
                exit_codes: vec![1, 2]
            })
        );
        assert!(d.diags.is_empty());
        decode_allow_failure(&mut d, &doc("maybe"), "jobs:rspec");
        decode_allow_failure(&mut d, &doc("{exit_codes: x, foo: 1}"), "jobs:rspec");
        assert_eq!(
            messages(&d),
            [
                "jobs:rspec allow failure should be a hash or a boolean value",
                "jobs:rspec:allow_failure config contains unknown keys: foo",
                "jobs:rspec:allow_failure exit codes should be an array of integers or an integer",
            ]
        );
    }

    #[test]
    fn rule_239_retry_forms() {
        let mut d = Decoder::lowercasing();
        assert_eq!(decode_retry(&mut d, &doc("2")).unwrap().max, 2);
        let full = decode_retry(
            &mut d,
            &doc("{max: 1, when: script_failure, exit_codes: 137}"),
        );
        let full = full.unwrap();
        assert_eq!(full.max, 1);
        assert_eq!(full.when, Some(vec!["script_failure".to_string()]));
        assert_eq!(full.exit_codes, Some(vec![137]));
        assert!(d.diags.is_empty());
        decode_retry(&mut d, &doc("3"));
        decode_retry(&mut d, &doc("{max: 5, foo: 1}"));
        decode_retry(&mut d, &doc("always"));
        assert_eq!(
            messages(&d),
            [
                "retry config must be less than or equal to 2",
                "retry config contains unknown keys: foo",
                "retry max must be less than or equal to 2",
                "retry config has to be either an integer or a hash",
            ]
        );
    }

    #[test]
    fn rule_240_retry_when_values() {
        let mut d = Decoder::lowercasing();
        let r = decode_retry(&mut d, &doc("{when: [api_failure, runner_system_failure]}"));
        assert_eq!(r.unwrap().when.unwrap().len(), 2);
        decode_retry(&mut d, &doc("{when: [api_failure, bad_luck]}"));
        decode_retry(&mut d, &doc("{when: bad_luck}"));
        assert_eq!(
            messages(&d),
            [
                "retry when contains unknown values: bad_luck",
                "retry when is not included in the list"
            ]
        );
    }

    #[test]
    fn rule_241_timeout_must_be_a_string_duration() {
        let mut d = Decoder::lowercasing();
        assert!(decode_timeout(&mut d, &doc("3600"), "jobs:a:timeout").is_none());
        assert_eq!(
            messages(&d),
            [
                "jobs:a:timeout config should be a duration",
                "jobs:a:timeout config should not exceed the limit"
            ]
        );
    }

    #[test]
    fn rule_254_timeout_with_a_variable_is_not_checked() {
        let mut d = Decoder::lowercasing();
        let t = decode_timeout(&mut d, &doc("$JOB_TIMEOUT"), "jobs:a:timeout");
        assert_eq!(t.as_deref(), Some("$JOB_TIMEOUT"));
        assert!(d.diags.is_empty());
    }

    #[test]
    fn rule_241_timeout_limit_is_a_month() {
        let mut d = Decoder::lowercasing();
        let t = decode_timeout(&mut d, &doc("3h 30m"), "jobs:a:timeout");
        assert_eq!(t.as_deref(), Some("3h 30m"));
        assert!(decode_timeout(&mut d, &doc("30 days"), "jobs:a:timeout").is_some());
        assert!(decode_timeout(&mut d, &doc("2 months"), "jobs:a:timeout").is_none());
        assert_eq!(
            messages(&d),
            ["jobs:a:timeout config should not exceed the limit"]
        );
    }

    #[test]
    fn rule_133_start_in_is_at_most_a_week() {
        let mut d = Decoder::lowercasing();
        check_start_in(&mut d, &doc("1 week"), "jobs:a");
        check_start_in(&mut d, &doc("'30'"), "jobs:a");
        assert!(d.diags.is_empty());
        check_start_in(&mut d, &doc("8 days"), "jobs:a");
        assert_eq!(
            messages(&d),
            ["jobs:a start in should not exceed the limit"]
        );
    }

    #[test]
    fn rule_133_start_in_must_be_a_duration() {
        let mut d = Decoder::lowercasing();
        check_start_in(&mut d, &doc("~"), "jobs:a");
        assert_eq!(
            messages(&d),
            [
                "jobs:a start in should be a duration",
                "jobs:a start in should not exceed the limit"
            ]
        );
    }
}
