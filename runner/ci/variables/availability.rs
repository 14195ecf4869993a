//! When each predefined variable exists (rule 198), and so whether
//! `workflow`, `include:rules` and job `rules` can see it (rules 77, 119).

/// The phase in which GitLab makes a predefined variable available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Availability {
    /// Before the pipeline exists: usable in `include:rules`, `workflow`
    /// and job `rules`.
    PrePipeline,
    /// While GitLab creates the pipeline: usable in job `rules`.
    Pipeline,
    /// Only when a runner runs the job: scripts, never `rules`.
    JobOnly,
}

/// The availability of a predefined variable, per GitLab's predefined
/// variables reference; `None` for names that are not predefined.
pub fn availability(key: &str) -> Option<Availability> {
    use Availability::*;
    let by_prefix = [
        ("CI_MERGE_REQUEST_", PrePipeline),
        ("CI_EXTERNAL_PULL_REQUEST_", PrePipeline),
        ("CI_COMMIT_", PrePipeline),
        ("CI_PROJECT_", PrePipeline),
        ("CI_SERVER_TLS_", Pipeline),
        ("CI_SERVER_", PrePipeline),
        ("CI_ENVIRONMENT_", Pipeline),
        ("GITLAB_USER_", Pipeline),
        ("CI_RUNNER_", JobOnly),
        ("CHAT_", Pipeline),
    ];
    let exact = match key {
        "CI"
        | "GITLAB_CI"
        | "GITLAB_FEATURES"
        | "CI_API_V4_URL"
        | "CI_API_GRAPHQL_URL"
        | "CI_CONFIG_PATH"
        | "CI_DEFAULT_BRANCH"
        | "CI_DEPENDENCY_PROXY_SERVER"
        | "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX"
        | "CI_DEPENDENCY_PROXY_DIRECT_GROUP_IMAGE_PREFIX"
        | "CI_DEPLOY_FREEZE"
        | "CI_GITLAB_FIPS_MODE"
        | "CI_KUBERNETES_ACTIVE"
        | "CI_OPEN_MERGE_REQUESTS"
        | "CI_PAGES_DOMAIN"
        | "CI_PIPELINE_SOURCE"
        | "CI_PIPELINE_CREATED_AT"
        | "CI_PIPELINE_NAME"
        | "CI_PIPELINE_SCHEDULE_DESCRIPTION"
        | "CI_REGISTRY"
        | "CI_REGISTRY_IMAGE"
        | "CI_TEMPLATE_REGISTRY_HOST" => Some(PrePipeline),
        "CI_DEBUG_TRACE"
        | "CI_DEBUG_SERVICES"
        | "CI_DEPENDENCY_PROXY_USER"
        | "CI_DEPENDENCY_PROXY_PASSWORD"
        | "CI_DISPOSABLE_ENVIRONMENT"
        | "CI_SHARED_ENVIRONMENT"
        | "CI_HAS_OPEN_REQUIREMENTS"
        | "CI_JOB_GROUP_NAME"
        | "CI_JOB_IMAGE"
        | "CI_JOB_MANUAL"
        | "CI_JOB_NAME"
        | "CI_JOB_NAME_SLUG"
        | "CI_JOB_STAGE"
        | "CI_NODE_INDEX"
        | "CI_NODE_TOTAL"
        | "CI_PIPELINE_IID"
        | "CI_PIPELINE_TRIGGERED"
        | "CI_RELEASE_DESCRIPTION"
        | "KUBECONFIG"
        | "TRIGGER_PAYLOAD" => Some(Pipeline),
        "CI_BUILDS_DIR"
        | "CI_CONCURRENT_ID"
        | "CI_CONCURRENT_PROJECT_ID"
        | "CI_DEPLOY_USER"
        | "CI_DEPLOY_PASSWORD"
        | "CI_JOB_ID"
        | "CI_JOB_STATUS"
        | "CI_JOB_TIMEOUT"
        | "CI_JOB_TOKEN"
        | "CI_JOB_URL"
        | "CI_JOB_STARTED_AT"
        | "CI_PAGES_HOSTNAME"
        | "CI_PAGES_URL"
        | "CI_PIPELINE_ID"
        | "CI_PIPELINE_URL"
        | "CI_PROJECT_DIR"
        | "CI_REGISTRY_PASSWORD"
        | "CI_REGISTRY_USER"
        | "CI_REPOSITORY_URL"
        | "CI_SERVER"
        | "CI_TRIGGER_SHORT_TOKEN" => Some(JobOnly),
        _ => None,
    };
    exact.or_else(|| {
        by_prefix
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix))
            .map(|&(_, phase)| phase)
    })
}

/// True if `rules`, `only`/`except` and `workflow:rules` can see the
/// predefined variable `key` (rule 119): not the job-only ones, and not the
/// environment name, slug and URL. Names that are not predefined are
/// visible; whether they exist is another matter.
pub fn visible_to_rules(key: &str) -> bool {
    !matches!(
        key,
        "CI_ENVIRONMENT_NAME" | "CI_ENVIRONMENT_SLUG" | "CI_ENVIRONMENT_URL"
    ) && availability(key) != Some(Availability::JobOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_198_three_phases() {
        assert_eq!(
            availability("CI_COMMIT_BRANCH"),
            Some(Availability::PrePipeline)
        );
        assert_eq!(
            availability("CI_PIPELINE_SOURCE"),
            Some(Availability::PrePipeline)
        );
        assert_eq!(
            availability("CI_MERGE_REQUEST_IID"),
            Some(Availability::PrePipeline)
        );
        assert_eq!(availability("CI_JOB_NAME"), Some(Availability::Pipeline));
        assert_eq!(availability("CI_NODE_TOTAL"), Some(Availability::Pipeline));
        assert_eq!(
            availability("CI_PIPELINE_IID"),
            Some(Availability::Pipeline)
        );
        assert_eq!(availability("CI_PIPELINE_ID"), Some(Availability::JobOnly));
        assert_eq!(availability("CI_PROJECT_DIR"), Some(Availability::JobOnly));
        assert_eq!(availability("CI_SERVER"), Some(Availability::JobOnly));
        assert_eq!(
            availability("CI_SERVER_HOST"),
            Some(Availability::PrePipeline)
        );
        assert_eq!(
            availability("CI_SERVER_TLS_CA_FILE"),
            Some(Availability::Pipeline)
        );
        assert_eq!(availability("CI_RUNNER_TAGS"), Some(Availability::JobOnly));
        assert_eq!(availability("MY_OWN"), None);
    }

    #[test]
    fn rule_119_rules_cannot_see_job_only_or_environment_variables() {
        assert!(!visible_to_rules("CI_JOB_ID"));
        assert!(!visible_to_rules("CI_PIPELINE_URL"));
        assert!(!visible_to_rules("CI_REGISTRY_PASSWORD"));
        assert!(!visible_to_rules("CI_ENVIRONMENT_NAME"));
        assert!(!visible_to_rules("CI_ENVIRONMENT_URL"));
        assert!(visible_to_rules("CI_ENVIRONMENT_TIER"));
        assert!(visible_to_rules("CI_COMMIT_REF_NAME"));
        assert!(visible_to_rules("CI_JOB_NAME"));
        assert!(visible_to_rules("DEPLOY_TARGET"));
    }
}
