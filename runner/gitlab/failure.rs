//! The `failure_reason` sent with a failed job (runner-api.md §8.6): only
//! reasons the server knows, so an older GitLab never sees a name it would
//! reject.

use crate::job::outcome::FailureReason;

/// Reasons every GitLab that runs jobs knows, listed or not.
const ALWAYS_SUPPORTED: [&str; 3] = [
    "script_failure",
    "runner_system_failure",
    "job_execution_timeout",
];

/// The reason to send for `reason`, given the payload's
/// `features.failure_reasons` (`server_listed`, possibly empty): the
/// reason itself when the server lists it or always knows it; else its
/// older equivalent (`image_pull_failure` and
/// `runner_external_dependency_failure` → `runner_system_failure`,
/// `runner_configuration_error` → `script_failure`); else
/// `unknown_failure`.
pub fn map_failure_reason(reason: FailureReason, server_listed: &[String]) -> &'static str {
    map_reason_name(reason.as_str(), server_listed)
}

/// [`map_failure_reason`] for a reason by name, such as the runner's own
/// `job_canceled`, which no server lists; empty means `script_failure`.
pub fn map_reason_name(reason: &'static str, server_listed: &[String]) -> &'static str {
    if reason.is_empty() {
        return "script_failure";
    }
    let supported =
        |name: &str| ALWAYS_SUPPORTED.contains(&name) || server_listed.iter().any(|l| l == name);
    if supported(reason) {
        return reason;
    }
    let older = match reason {
        "image_pull_failure" | "runner_external_dependency_failure" => "runner_system_failure",
        "runner_configuration_error" => "script_failure",
        _ => "unknown_failure",
    };
    if older != "unknown_failure" && supported(older) {
        older
    } else {
        "unknown_failure"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_list() -> Vec<String> {
        // The list of the spec's job_response.json fixture, abridged to
        // what matters here.
        [
            "unknown_failure",
            "script_failure",
            "runner_system_failure",
            "missing_dependency_failure",
            "job_execution_timeout",
            "runner_configuration_error",
            "runner_external_dependency_failure",
            "runner_interrupted",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[test]
    fn listed_reasons_are_sent_as_they_are() {
        let listed = fixture_list();
        for reason in [
            FailureReason::ScriptFailure,
            FailureReason::RunnerSystemFailure,
            FailureReason::JobExecutionTimeout,
            FailureReason::RunnerConfigurationError,
            FailureReason::RunnerExternalDependencyFailure,
            FailureReason::RunnerInterrupted,
            FailureReason::MissingDependencyFailure,
            FailureReason::UnknownFailure,
        ] {
            assert_eq!(map_failure_reason(reason, &listed), reason.as_str());
        }
        // Listed by no server: its older equivalent.
        assert_eq!(
            map_failure_reason(FailureReason::ImagePullFailure, &listed),
            "runner_system_failure"
        );
    }

    #[test]
    fn without_a_server_list_only_the_core_reasons_pass() {
        let expected = [
            (FailureReason::ScriptFailure, "script_failure"),
            (FailureReason::RunnerSystemFailure, "runner_system_failure"),
            (FailureReason::JobExecutionTimeout, "job_execution_timeout"),
            (FailureReason::ImagePullFailure, "runner_system_failure"),
            (FailureReason::UnknownFailure, "unknown_failure"),
            (FailureReason::RunnerConfigurationError, "script_failure"),
            (
                FailureReason::RunnerExternalDependencyFailure,
                "runner_system_failure",
            ),
            (FailureReason::RunnerInterrupted, "unknown_failure"),
            (FailureReason::MissingDependencyFailure, "unknown_failure"),
        ];
        for (reason, sent) in expected {
            assert_eq!(map_failure_reason(reason, &[]), sent, "{reason}");
        }
    }

    #[test]
    fn job_canceled_and_empty_reasons_are_mapped() {
        assert_eq!(
            map_reason_name("job_canceled", &fixture_list()),
            "unknown_failure"
        );
        assert_eq!(map_reason_name("", &[]), "script_failure");
    }
}
