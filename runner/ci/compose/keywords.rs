//! Which top-level keys are global keywords and which are jobs, and which
//! job keywords take a value from `default`.

use crate::ci::yaml::Node;

/// The keys GitLab's root entry knows (rule 11), `types` being the
/// deprecated spelling of `stages`. Every other top-level key is a job.
const GLOBAL_KEYWORDS: &[&str] = &[
    "default",
    "include",
    "before_script",
    "image",
    "services",
    "after_script",
    "variables",
    "stages",
    "types",
    "cache",
    "workflow",
];

/// Global keywords that can never name a job (rule 13). `default` and
/// `workflow` are not among them: a `default:` hash with a `script` is a job
/// called `default`.
pub(crate) const RESERVED: &[&str] = &[
    "include",
    "before_script",
    "image",
    "services",
    "after_script",
    "variables",
    "stages",
    "types",
    "cache",
];

/// Keys allowed under `default:` (rule 30), in GitLab's order.
pub const DEFAULT_KEYWORDS: &[&str] = &[
    "before_script",
    "after_script",
    "hooks",
    "cache",
    "image",
    "services",
    "interruptible",
    "timeout",
    "retry",
    "tags",
    "artifacts",
    "id_tokens",
    "identity",
];

/// Deprecated top-level keywords that feed `default` (rule 36), in the
/// order GitLab checks them for a clash with `default:`.
pub(crate) const TOP_LEVEL_DEFAULTS: &[&str] = &[
    "before_script",
    "after_script",
    "cache",
    "image",
    "services",
];

/// Keywords a job (one with `script` or `run`) takes from `default`.
/// `timeout` is allowed in `default` but GitLab reads a job's timeout from
/// the job's own hash only, so a default timeout has no effect (rule 30).
pub(crate) const JOB_INHERITED: &[&str] = &[
    "before_script",
    "after_script",
    "hooks",
    "cache",
    "image",
    "services",
    "interruptible",
    "retry",
    "tags",
    "artifacts",
    "id_tokens",
    "identity",
];

/// A trigger job only takes `interruptible`: the others configure a runner.
pub(crate) const BRIDGE_INHERITED: &[&str] = &["interruptible"];

/// What a job entry is, as GitLab tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// A name starting with `.`: a template, never run (rule 18).
    Hidden,
    /// A hash with `script` or `run`.
    Job,
    /// A hash with `trigger` or `needs` (and no `script`): a trigger job.
    Bridge,
}

impl JobKind {
    /// The keywords this kind of job takes from `default`.
    pub(crate) fn inherited(self) -> &'static [&'static str] {
        match self {
            JobKind::Hidden => &[],
            JobKind::Job => JOB_INHERITED,
            JobKind::Bridge => BRIDGE_INHERITED,
        }
    }
}

/// True for the keys GitLab's root entry knows (`default`, `include`,
/// `stages`, `variables`, `workflow` and the deprecated `image`, `services`,
/// `cache`, `before_script`, `after_script`). Any other top-level key is a
/// job (rule 12). `spec` belongs to the header document, so in the main
/// document it is a job name like any other.
pub fn is_global_keyword(key: &str) -> bool {
    GLOBAL_KEYWORDS.contains(&key)
}

/// The kind of a job entry, or `None` for a hash GitLab cannot classify
/// (it then reports "config should implement the script:, run:, or
/// trigger: keyword").
pub fn job_kind(name: &str, value: &Node) -> Option<JobKind> {
    if name.starts_with('.') {
        return Some(JobKind::Hidden);
    }
    let map = value.as_map().filter(|_| !value.is_reference())?;
    if map.contains_key("script") || map.contains_key("run") {
        Some(JobKind::Job)
    } else if map.contains_key("trigger") || map.contains_key("needs") {
        Some(JobKind::Bridge)
    } else {
        None
    }
}

/// True when a top-level entry is a job (visible or hidden): it is not a
/// reserved keyword, and it is either not a global keyword at all or a
/// `default:`/`workflow:` hash that looks like a job.
pub fn is_job_entry(name: &str, value: &Node) -> bool {
    if RESERVED.contains(&name) {
        return false;
    }
    !is_global_keyword(name) || job_kind(name, value).is_some()
}

/// The job entries of a configuration (visible and hidden), in document
/// order, with their kind (`None` for an entry GitLab cannot classify).
pub fn job_entries(root: &Node) -> Vec<(&str, &Node, Option<JobKind>)> {
    let Some(map) = root.as_map() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
        .filter(|(k, v)| is_job_entry(k, v))
        .map(|(k, v)| (k, v, job_kind(k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    #[test]
    fn rule_11_global_keywords() {
        for key in ["default", "include", "stages", "workflow", "variables"] {
            assert!(is_global_keyword(key), "{key}");
        }
        for key in [
            "image",
            "services",
            "cache",
            "before_script",
            "after_script",
        ] {
            assert!(is_global_keyword(key), "{key}");
        }
        assert!(!is_global_keyword("build"));
        assert!(!is_global_keyword("pages"));
        // The deprecated spelling of `stages` is still a global keyword.
        assert!(is_global_keyword("types"));
    }

    #[test]
    fn rule_12_other_keys_are_jobs_and_dot_keys_are_hidden() {
        let job = doc("script: x");
        assert!(is_job_entry("build", &job));
        assert!(is_job_entry(".tpl", &doc("image: x")));
        assert_eq!(job_kind(".tpl", &job), Some(JobKind::Hidden));
        assert_eq!(job_kind("build", &job), Some(JobKind::Job));
        assert_eq!(job_kind("up", &doc("trigger: a/b")), Some(JobKind::Bridge));
        assert_eq!(job_kind("odd", &doc("stage: test")), None);
        assert_eq!(job_kind("odd", &doc("just a string")), None);
        assert!(is_job_entry("odd", &doc("stage: test")));
    }

    #[test]
    fn rule_12_job_entries_in_document_order() {
        let root = doc(
            "stages: [a]\nbuild:\n  script: x\n.tpl:\n  image: y\nvariables: {}\nup:\n  trigger: p\n",
        );
        let jobs: Vec<_> = job_entries(&root)
            .into_iter()
            .map(|(name, _, kind)| (name, kind))
            .collect();
        assert_eq!(
            jobs,
            [
                ("build", Some(JobKind::Job)),
                (".tpl", Some(JobKind::Hidden)),
                ("up", Some(JobKind::Bridge)),
            ]
        );
    }

    #[test]
    fn rule_13_reserved_names_are_never_jobs() {
        let job = doc("script: x");
        assert!(!is_job_entry("image", &job));
        assert!(!is_job_entry("variables", &job));
        assert!(!is_job_entry("default", &doc("image: ruby")));
        // `default` and `workflow` are not reserved: with a script they are jobs.
        assert!(is_job_entry("default", &job));
        assert!(is_job_entry("workflow", &job));
    }
}
