//! How an attempt of a job ended, and what GitLab makes of a failure:
//! whether the job is retried (`retry`, rules 239-240) and whether the
//! failure is allowed (`allow_failure`, rule 138).

use crate::ci::model::when::Retry;

pub use crate::job::outcome::FailureReason;

/// How one attempt of a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Success,
    /// `exit_code` is the script's exit status when there is one; it
    /// decides `allow_failure:exit_codes` and `retry:exit_codes`.
    Failed {
        reason: FailureReason,
        exit_code: Option<i32>,
    },
    Canceled,
}

/// Failure reasons GitLab never retries, whatever `retry` says
/// (`RETRY_OVERRIDES` in `lib/gitlab/ci/build/auto_retry.rb`; the others
/// there are server-side reasons a local run does not produce).
const NEVER_RETRIED: &[FailureReason] = &[FailureReason::MissingDependencyFailure];

/// Whether a failed attempt is retried, given how many retries the job
/// has had already. GitLab's `Gitlab::Ci::Build::AutoRetry`:
///
/// - the job is retried while fewer than `max` retries were made;
/// - only when `retry:when` lists the reason or `always`, or the attempt
///   exited with a code `retry:exit_codes` lists;
/// - `retry:when` defaults to `always`, except when `exit_codes` is given:
///   then it defaults to nothing, so only the exit codes count.
pub(crate) fn retry_allowed(
    retry: Option<&Retry>,
    reason: FailureReason,
    exit_code: Option<i32>,
    retries_done: u32,
) -> bool {
    let Some(retry) = retry else {
        return false;
    };
    if NEVER_RETRIED.contains(&reason) {
        return false;
    }
    let on_reason = match &retry.when {
        Some(when) => when.iter().any(|w| w == "always" || w == reason.as_str()),
        None => retry.exit_codes.is_none(),
    };
    let on_exit_code = match (&retry.exit_codes, exit_code) {
        (Some(codes), Some(code)) => codes.contains(&i64::from(code)),
        _ => false,
    };
    (on_reason || on_exit_code) && u32::from(retry.max) > retries_done
}

/// Whether a failure is allowed: `allow_failure: true`, or an exit code
/// `allow_failure:exit_codes` lists (GitLab's `force_allow_failure?`; a
/// failure without an exit code is never allowed by the list).
pub(crate) fn failure_allowed(
    allow_failure: bool,
    exit_codes: Option<&[i64]>,
    exit_code: Option<i32>,
) -> bool {
    allow_failure
        || matches!((exit_codes, exit_code), (Some(codes), Some(code)) if codes.contains(&i64::from(code)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(max: u8, when: Option<&[&str]>, exit_codes: Option<&[i64]>) -> Retry {
        Retry {
            max,
            when: when.map(|w| w.iter().map(|s| s.to_string()).collect()),
            exit_codes: exit_codes.map(<[i64]>::to_vec),
        }
    }

    const SCRIPT: FailureReason = FailureReason::ScriptFailure;
    const SYSTEM: FailureReason = FailureReason::RunnerSystemFailure;

    #[test]
    fn rule_239_retry_max_counts_retries_not_attempts() {
        let r = retry(2, None, None);
        assert!(retry_allowed(Some(&r), SCRIPT, Some(1), 0));
        assert!(retry_allowed(Some(&r), SCRIPT, Some(1), 1));
        assert!(!retry_allowed(Some(&r), SCRIPT, Some(1), 2));
        assert!(!retry_allowed(Some(&retry(0, None, None)), SCRIPT, None, 0));
        assert!(!retry_allowed(None, SCRIPT, Some(1), 0));
    }

    #[test]
    fn rule_240_retry_when_lists_the_retried_reasons() {
        let r = retry(2, Some(&["runner_system_failure"]), None);
        assert!(retry_allowed(Some(&r), SYSTEM, None, 0));
        assert!(!retry_allowed(Some(&r), SCRIPT, Some(1), 0));
        let always = retry(1, Some(&["always"]), None);
        assert!(retry_allowed(Some(&always), SCRIPT, Some(1), 0));
    }

    #[test]
    fn rule_240_a_timeout_is_not_a_stuck_or_timeout_failure() {
        let r = retry(2, Some(&["stuck_or_timeout_failure"]), None);
        let timeout = FailureReason::JobExecutionTimeout;
        assert!(!retry_allowed(Some(&r), timeout, None, 0));
        let r = retry(2, Some(&["job_execution_timeout"]), None);
        assert!(retry_allowed(Some(&r), timeout, None, 0));
    }

    #[test]
    fn rule_239_exit_codes_alone_retry_only_those_codes() {
        let r = retry(2, None, Some(&[137, 255]));
        assert!(retry_allowed(Some(&r), SCRIPT, Some(137), 0));
        assert!(!retry_allowed(Some(&r), SCRIPT, Some(1), 0));
        // A failure without an exit code matches no code.
        assert!(!retry_allowed(Some(&r), SYSTEM, None, 0));
    }

    #[test]
    fn rule_239_exit_codes_and_when_either_one_retries() {
        let r = retry(1, Some(&["runner_system_failure"]), Some(&[137]));
        assert!(retry_allowed(Some(&r), SYSTEM, None, 0));
        assert!(retry_allowed(Some(&r), SCRIPT, Some(137), 0));
        assert!(!retry_allowed(Some(&r), SCRIPT, Some(1), 0));
        assert!(!retry_allowed(Some(&r), SCRIPT, Some(137), 1));
    }

    #[test]
    fn a_missing_dependency_is_never_retried() {
        let r = retry(2, Some(&["always"]), None);
        let missing = FailureReason::MissingDependencyFailure;
        assert!(!retry_allowed(Some(&r), missing, None, 0));
    }

    #[test]
    fn rule_138_allow_failure_true_or_a_listed_exit_code() {
        assert!(failure_allowed(true, None, Some(1)));
        assert!(failure_allowed(true, None, None));
        assert!(failure_allowed(false, Some(&[137]), Some(137)));
        assert!(!failure_allowed(false, Some(&[137]), Some(1)));
        assert!(!failure_allowed(false, Some(&[137]), None));
        assert!(!failure_allowed(false, Some(&[]), Some(0)));
        assert!(!failure_allowed(false, None, Some(1)));
    }

    #[test]
    fn reasons_round_trip_through_their_gitlab_names() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(FailureReason::parse("stuck_or_timeout_failure"), None);
    }
}
