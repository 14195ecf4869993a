//! `environment:` (rules 230-232): where a job deploys, and how the job
//! acts on that environment.

use serde::Serialize;

use super::check::{ErrorMark, attr_error, check_duration, child, is_blank, opt_bool, opt_string};
use super::decode::Decoder;
use super::duration::duration_with_variables;
use crate::ci::yaml::{Mapping, Node, Value};

const ALLOWED_KEYS: &[&str] = &[
    "name",
    "url",
    "action",
    "on_stop",
    "auto_stop_in",
    "kubernetes",
    "deployment_tier",
];
const TIERS: &[&str] = &["production", "staging", "testing", "development", "other"];
const KUBERNETES_KEYS: &[&str] = &[
    "namespace",
    "agent",
    "flux_resource_path",
    "dashboard",
    "managed_resources",
];
const NAME_MESSAGE: &str = "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'";
const URL_MAX: usize = 255;

/// What a job does to its environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentAction {
    /// Deploys (the default): the job is a deployment job.
    #[default]
    Start,
    Prepare,
    Stop,
    Verify,
    Access,
}

impl EnvironmentAction {
    fn parse(text: &str) -> Option<EnvironmentAction> {
        Some(match text {
            "start" => EnvironmentAction::Start,
            "prepare" => EnvironmentAction::Prepare,
            "stop" => EnvironmentAction::Stop,
            "verify" => EnvironmentAction::Verify,
            "access" => EnvironmentAction::Access,
            _ => return None,
        })
    }

    /// The keyword as written in the YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentAction::Start => "start",
            EnvironmentAction::Prepare => "prepare",
            EnvironmentAction::Stop => "stop",
            EnvironmentAction::Verify => "verify",
            EnvironmentAction::Access => "access",
        }
    }
}

/// A job's `environment:`. Strings are kept as written: variables in them
/// are expanded when the pipeline is created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnvironmentSpec {
    pub name: String,
    pub url: Option<String>,
    /// The job that stops this environment.
    pub on_stop: Option<String>,
    pub action: EnvironmentAction,
    /// As written: a duration, `never`, or a value with a variable.
    pub auto_stop_in: Option<String>,
    /// `production`, `staging`, `testing`, `development`, `other`, or a
    /// value with a variable.
    pub deployment_tier: Option<String>,
    pub kubernetes: Option<KubernetesSpec>,
}

/// `environment:kubernetes`: the agent and what the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KubernetesSpec {
    pub agent: Option<String>,
    /// `namespace`, or `dashboard:namespace` where that is used.
    pub namespace: Option<String>,
    /// `flux_resource_path`, or `dashboard:flux_resource_path`.
    pub flux_resource_path: Option<String>,
    /// `managed_resources:enabled`.
    pub managed_resources: Option<bool>,
}

/// Decodes `environment:` at `path` (`jobs:deploy:environment`).
pub(crate) fn decode_environment(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<EnvironmentSpec> {
    let mark = ErrorMark::new(d);
    let (name_node, map) = match &node.value {
        Value::Str(_) => (Some(node), None),
        Value::Map(map) => (map.get("name"), Some(map)),
        _ => {
            d.error(node, path, "config should be a hash or a string");
            (None, None)
        }
    };
    let name = check_name(d, node, name_node, path);
    let mut spec = EnvironmentSpec {
        name: name.unwrap_or_default(),
        ..EnvironmentSpec::default()
    };
    if let Some(map) = map {
        read_hash(d, map, path, &mut spec);
    }
    if !mark.clean(d) {
        return None;
    }
    if let Some(k8s) = map
        .and_then(|m| m.get("kubernetes"))
        .filter(|n| !n.is_null())
    {
        spec.kubernetes = decode_kubernetes(d, k8s, &child(path, "kubernetes"));
    }
    mark.finish(d, spec)
}

/// Environment names: letters, digits, spaces and `- _ / $ { } .`, not
/// starting or ending with `/`.
fn check_name(d: &mut Decoder, node: &Node, name: Option<&Node>, path: &str) -> Option<String> {
    let at = name.unwrap_or(node);
    if name.is_none_or(is_blank) {
        attr_error(d, at, path, "name", "can't be blank");
    }
    let text = name.and_then(|n| n.as_str());
    if !text.is_some_and(valid_name) {
        attr_error(d, at, path, "name", NAME_MESSAGE);
    }
    text.map(String::from)
}

fn valid_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_/${}. -".contains(c);
    !name.is_empty() && name.chars().all(allowed) && !name.starts_with('/') && !name.ends_with('/')
}

fn read_hash(d: &mut Decoder, map: &Mapping, path: &str, spec: &mut EnvironmentSpec) {
    d.unknown_keys(map, path, ALLOWED_KEYS);
    spec.url = opt_string(d, map, path, "url");
    if let (Some(url), Some(node)) = (&spec.url, map.get("url")) {
        if url.chars().count() > URL_MAX {
            attr_error(
                d,
                node,
                path,
                "url",
                &format!("is too long (maximum is {URL_MAX} characters)"),
            );
        }
    }
    if let Some(node) = map.get("action").filter(|n| !n.is_null()) {
        if node.as_str().is_none() {
            attr_error(d, node, path, "action", "should be a string");
        }
        match node.as_str().and_then(EnvironmentAction::parse) {
            Some(action) => spec.action = action,
            None => attr_error(
                d,
                node,
                path,
                "action",
                "should be start, stop, prepare, verify, or access",
            ),
        }
    }
    if let Some(node) = map.get("deployment_tier").filter(|n| !n.is_null()) {
        match node.as_str() {
            Some(tier) if TIERS.contains(&tier) || duration_with_variables(tier) => {
                spec.deployment_tier = Some(tier.to_string());
            }
            found => {
                if found.is_none() {
                    attr_error(d, node, path, "deployment_tier", "should be a string");
                }
                let message = format!("must be one of {}", TIERS.join(", "));
                attr_error(d, node, path, "deployment_tier", &message);
            }
        }
    }
    spec.on_stop = opt_string(d, map, path, "on_stop");
    if let Some(node) = map.get("kubernetes").filter(|n| !n.is_null()) {
        if node.as_map().is_none() {
            attr_error(d, node, path, "kubernetes", "should be a hash");
        }
    }
    if let Some(node) = map.get("auto_stop_in").filter(|n| !n.is_null()) {
        check_duration(d, node, path, "auto_stop_in", true);
        spec.auto_stop_in = node.as_str().map(String::from);
    }
}

fn decode_kubernetes(d: &mut Decoder, node: &Node, path: &str) -> Option<KubernetesSpec> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    if map.is_empty() {
        d.error(node, path, "config can't be blank");
        return None;
    }
    d.unknown_keys(map, path, KUBERNETES_KEYS);
    let mut spec = KubernetesSpec {
        agent: opt_string(d, map, path, "agent"),
        namespace: opt_string(d, map, path, "namespace"),
        flux_resource_path: opt_string(d, map, path, "flux_resource_path"),
        managed_resources: None,
    };
    if spec
        .flux_resource_path
        .as_deref()
        .is_some_and(|p| !p.trim().is_empty())
    {
        for (key, value) in [("namespace", &spec.namespace), ("agent", &spec.agent)] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                attr_error(d, map.get(key).unwrap_or(node), path, key, "can't be blank");
            }
        }
    }
    if let Some(dashboard) = map.get("dashboard").filter(|n| !n.is_null()) {
        let dash_path = child(path, "dashboard");
        if let Some(dash) = d.map(dashboard, &dash_path) {
            d.unknown_keys(dash, &dash_path, &["namespace", "flux_resource_path"]);
            if let Some(ns) = opt_string(d, dash, &dash_path, "namespace") {
                spec.namespace = Some(ns);
            }
            if let Some(flux) = opt_string(d, dash, &dash_path, "flux_resource_path") {
                spec.flux_resource_path = Some(flux);
            }
        }
    }
    if let Some(managed) = map.get("managed_resources").filter(|n| !n.is_null()) {
        let managed_path = child(path, "managed_resources");
        if let Some(m) = d.map(managed, &managed_path) {
            d.unknown_keys(m, &managed_path, &["enabled"]);
            spec.managed_resources = opt_bool(d, m, &managed_path, "enabled");
        }
    }
    mark.finish(d, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<EnvironmentSpec>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::new();
        let out = decode_environment(&mut d, &node, "jobs:deploy:environment");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).1
    }

    #[test]
    fn rule_230_environment_is_a_string_or_a_hash() {
        let (spec, errs) = decode("production");
        assert!(errs.is_empty());
        let spec = spec.unwrap();
        assert_eq!(spec.name, "production");
        assert_eq!(spec.action, EnvironmentAction::Start);
        assert_eq!(
            errors("[a]"),
            [
                "jobs:deploy:environment config should be a hash or a string",
                "jobs:deploy:environment name can't be blank",
                &format!("jobs:deploy:environment name {NAME_MESSAGE}"),
            ]
        );
    }

    #[test]
    fn rule_230_names_allow_variables_but_not_other_characters() {
        assert!(errors("review/$CI_COMMIT_REF_SLUG").is_empty());
        assert!(errors("name: review/${CI_COMMIT_REF_NAME}\n").is_empty());
        assert!(errors("env 1.2_x-y").is_empty());
        assert_eq!(
            errors("review:main"),
            [format!("jobs:deploy:environment name {NAME_MESSAGE}")]
        );
        assert_eq!(
            errors("/prod"),
            [format!("jobs:deploy:environment name {NAME_MESSAGE}")]
        );
        assert_eq!(
            errors("url: https://x\n")[0],
            "jobs:deploy:environment name can't be blank"
        );
    }

    #[test]
    fn rule_231_hash_keys_are_checked() {
        let (spec, errs) = decode(
            "name: review/$CI_COMMIT_REF_SLUG\nurl: https://$CI_ENVIRONMENT_SLUG.example.com\non_stop: stop_review\nauto_stop_in: 1 week\ndeployment_tier: development\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(spec.on_stop.as_deref(), Some("stop_review"));
        assert_eq!(spec.auto_stop_in.as_deref(), Some("1 week"));
        assert_eq!(spec.deployment_tier.as_deref(), Some("development"));
        assert_eq!(
            errors("name: a\naction: deploy\n"),
            ["jobs:deploy:environment action should be start, stop, prepare, verify, or access"]
        );
        assert_eq!(
            errors("name: a\ndeployment_tier: prod\n"),
            [
                "jobs:deploy:environment deployment tier must be one of production, staging, testing, development, other"
            ]
        );
        assert_eq!(
            errors("name: a\non_stop: false\n"),
            ["jobs:deploy:environment on stop should be a string"]
        );
        assert_eq!(
            errors("name: a\nurl: [x]\n"),
            ["jobs:deploy:environment url should be a string"]
        );
        assert_eq!(
            errors("name: a\nslug: x\n"),
            ["jobs:deploy:environment config contains unknown keys: slug"]
        );
    }

    #[test]
    fn rule_231_every_action_is_accepted() {
        for action in ["start", "prepare", "stop", "verify", "access"] {
            let (spec, errs) = decode(&format!("name: a\naction: {action}\n"));
            assert!(errs.is_empty());
            assert_eq!(spec.unwrap().action.as_str(), action);
        }
    }

    #[test]
    fn rule_231_auto_stop_in_is_a_duration_never_or_a_variable() {
        for value in ["1 day", "never", "$TTL", "one week"] {
            assert!(
                errors(&format!("name: a\nauto_stop_in: {value}\n")).is_empty(),
                "{value}"
            );
        }
        assert_eq!(
            errors("name: a\nauto_stop_in: soon\n"),
            ["jobs:deploy:environment auto stop in should be a duration"]
        );
    }

    #[test]
    fn rule_231_kubernetes_takes_agent_namespace_and_dashboard() {
        let (spec, errs) = decode(
            "name: a\nkubernetes:\n  agent: group/project:agent\n  dashboard:\n    namespace: ns\n    flux_resource_path: helm/x\n  managed_resources: {enabled: false}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let k8s = spec.unwrap().kubernetes.unwrap();
        assert_eq!(k8s.namespace.as_deref(), Some("ns"));
        assert_eq!(k8s.managed_resources, Some(false));
        assert_eq!(
            errors("name: a\nkubernetes: prod\n"),
            ["jobs:deploy:environment kubernetes should be a hash"]
        );
        assert_eq!(
            errors("name: a\nkubernetes: {flux_resource_path: x, namespace: n}\n"),
            ["jobs:deploy:environment:kubernetes agent can't be blank"]
        );
    }
}
