//! `needs` (rules 140-151) and `dependencies` (rules 151-155).

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{array_of_strings, attr_error, flatten_all, is_blank};
use super::parallel::{MatrixEntry, Parallel, decode_parallel};
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node, Value};

/// How many `needs` one job may list by default (rule 140). GitLab checks
/// it when the pipeline is created, after rules have chosen the needs.
pub const MAX_NEEDS: usize = 50;
/// How many `needs:pipeline` entries one job may list.
const MAX_CROSS_PIPELINE_NEEDS: usize = 5;

/// One entry of `needs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    #[serde(flatten)]
    pub target: NeedTarget,
    /// Whether the needed job's artifacts are downloaded (rule 146).
    pub artifacts: bool,
    /// Whether a missing needed job is ignored (rule 145).
    pub optional: bool,
    #[serde(skip)]
    pub span: Span,
}

/// What a `needs` entry points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NeedTarget {
    /// A job of this pipeline, or some of its matrix jobs (rule 150).
    Job {
        job: String,
        matrix: Option<Vec<MatrixEntry>>,
    },
    /// A job of another pipeline of the same hierarchy (rule 148).
    Pipeline { pipeline: String, job: String },
    /// A job of another project (rule 147).
    Project {
        project: String,
        job: String,
        #[serde(rename = "ref")]
        git_ref: String,
    },
    /// `needs: {pipeline: group/project}`: a trigger job that mirrors the
    /// upstream pipeline's status (rule 149).
    Upstream { pipeline: String },
}

/// The kinds of need GitLab groups `needs` into; each place allows some.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NeedType {
    Job,
    CrossDependency,
    Bridge,
}

impl NeedType {
    fn name(self) -> &'static str {
        match self {
            NeedType::Job => "job",
            NeedType::CrossDependency => "cross_dependency",
            NeedType::Bridge => "bridge",
        }
    }
}

impl Need {
    fn kind(&self) -> NeedType {
        match self.target {
            NeedTarget::Job { .. } => NeedType::Job,
            NeedTarget::Pipeline { .. } | NeedTarget::Project { .. } => NeedType::CrossDependency,
            NeedTarget::Upstream { .. } => NeedType::Bridge,
        }
    }

    /// The name of the job this need waits for in this pipeline, if any.
    pub fn job_name(&self) -> Option<&str> {
        match &self.target {
            NeedTarget::Job { job, .. } => Some(job),
            _ => None,
        }
    }
}

/// GitLab's error when a job lists more needs than allowed, raised when
/// the pipeline is created.
pub fn too_many_needs_message(job: &str, count: usize) -> String {
    format!(
        "{job}: one job can only need {MAX_NEEDS} others, but you have listed {count}. \
         See needs keyword documentation for more details"
    )
}

/// Decodes `needs` at `path`, which may use only the `allowed` kinds.
pub(crate) fn decode_needs(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    allowed: &[NeedType],
) -> Option<Vec<Need>> {
    match &node.value {
        Value::Seq(_) => {}
        Value::Map(map) if map.is_empty() => {
            d.error(node, path, "config can not be an empty hash");
            return None;
        }
        Value::Map(_) => {}
        _ => {
            d.error(node, path, "config can only be a hash or an array");
            return None;
        }
    }
    let need_path = format!("{path}:need");
    let before = d.diags.len();
    let needs: Vec<Need> = flatten_all(node)
        .into_iter()
        .filter_map(|item| decode_need(d, item, &need_path))
        .collect();
    let mut invalid: Vec<&str> = Vec::new();
    for need in &needs {
        let kind = need.kind();
        if !allowed.contains(&kind) && !invalid.contains(&kind.name()) {
            invalid.push(kind.name());
        }
    }
    if !invalid.is_empty() {
        d.error(
            node,
            path,
            format!("config uses invalid types: {}", invalid.join(", ")),
        );
    }
    let cross_pipeline = needs
        .iter()
        .filter(|n| matches!(n.target, NeedTarget::Pipeline { .. }))
        .count();
    if cross_pipeline > MAX_CROSS_PIPELINE_NEEDS {
        let msg = format!("config must be less than or equal to {MAX_CROSS_PIPELINE_NEEDS}");
        d.error(node, path, msg);
    }
    (d.diags.len() == before).then_some(needs)
}

fn decode_need(d: &mut Decoder, node: &Node, path: &str) -> Option<Need> {
    let need = |target| Need {
        target,
        artifacts: true,
        optional: false,
        span: node.span,
    };
    match &node.value {
        // `[@config].flatten` keeps a null entry, which GitLab then skips.
        Value::Null => None,
        Value::Str(job) => {
            if is_blank(node) {
                d.error(node, path, "config can't be blank");
                return None;
            }
            Some(need(NeedTarget::Job {
                job: job.clone(),
                matrix: None,
            }))
        }
        Value::Map(map) => decode_need_hash(d, node, map, path),
        _ => {
            d.error_raw(node, path, "has an unsupported type");
            None
        }
    }
}

/// The hash forms, told apart by their keys in GitLab's order: a job of
/// this pipeline, of another pipeline, an upstream pipeline, or another
/// project.
fn decode_need_hash(d: &mut Decoder, node: &Node, map: &Mapping, path: &str) -> Option<Need> {
    let has = |k| map.contains_key(k);
    let before = d.diags.len();
    let target = if has("job") && !(has("project") || has("ref") || has("pipeline")) {
        d.unknown_keys(map, path, &["job", "artifacts", "optional", "parallel"]);
        let job = required_string(d, map, node, path, "job");
        let matrix = match map.get("parallel").filter(|n| !n.is_null()) {
            Some(p) => match decode_parallel(d, p, &format!("{path}:parallel"), false) {
                Some(Parallel::Matrix(m)) => Some(m),
                _ => None,
            },
            None => None,
        };
        NeedTarget::Job {
            job: job.unwrap_or_default(),
            matrix,
        }
    } else if has("job") && has("pipeline") && !has("project") {
        d.unknown_keys(map, path, &["pipeline", "job", "artifacts"]);
        let pipeline = required_string(d, map, node, path, "pipeline");
        let job = required_string(d, map, node, path, "job");
        NeedTarget::Pipeline {
            pipeline: pipeline.unwrap_or_default(),
            job: job.unwrap_or_default(),
        }
    } else if !has("job") && !has("project") {
        d.unknown_keys(map, path, &["pipeline"]);
        let pipeline = required_string(d, map, node, path, "pipeline");
        NeedTarget::Upstream {
            pipeline: pipeline.unwrap_or_default(),
        }
    } else {
        d.unknown_keys(map, path, &["project", "ref", "job", "artifacts"]);
        let project = required_string(d, map, node, path, "project");
        let git_ref = required_string(d, map, node, path, "ref");
        let job = required_string(d, map, node, path, "job");
        NeedTarget::Project {
            project: project.unwrap_or_default(),
            job: job.unwrap_or_default(),
            git_ref: git_ref.unwrap_or_default(),
        }
    };
    let artifacts = optional_bool(d, map, path, "artifacts").unwrap_or(true);
    let optional = match target {
        NeedTarget::Job { .. } => optional_bool(d, map, path, "optional").unwrap_or(false),
        _ => false,
    };
    (d.diags.len() == before).then_some(Need {
        target,
        artifacts,
        optional,
        span: node.span,
    })
}

/// `validates :<key>, type: String, presence: true` on a need's hash.
fn required_string(
    d: &mut Decoder,
    map: &Mapping,
    node: &Node,
    path: &str,
    key: &str,
) -> Option<String> {
    let value = map.get(key);
    let at = value.unwrap_or(node);
    let text = value.and_then(Node::as_str);
    if text.is_none() {
        attr_error(d, at, path, key, "should be a string");
    }
    if value.is_none_or(is_blank) {
        attr_error(d, at, path, key, "can't be blank");
    }
    text.map(String::from)
}

fn optional_bool(d: &mut Decoder, map: &Mapping, path: &str, key: &str) -> Option<bool> {
    let value = map.get(key).filter(|v| !v.is_null())?;
    let b = value.as_bool();
    if b.is_none() {
        attr_error(d, value, path, key, "should be a boolean value");
    }
    b
}

/// `dependencies`: a list of job names (rule 153), checked as an
/// attribute of the job.
pub(crate) fn decode_dependencies(
    d: &mut Decoder,
    node: &Node,
    job_path: &str,
) -> Option<Vec<String>> {
    let deps = array_of_strings(node);
    if deps.is_none() {
        attr_error(
            d,
            node,
            job_path,
            "dependencies",
            "should be an array of strings",
        );
    }
    deps
}

/// Rule 151: with both `needs` and `dependencies`, every dependency must
/// also be needed.
pub(crate) fn check_dependencies_in_needs(
    d: &mut Decoder,
    node: &Node,
    job_path: &str,
    dependencies: &[String],
    needs: &[Need],
) {
    if dependencies.is_empty() || needs.is_empty() {
        return;
    }
    let needed: Vec<&str> = needs.iter().filter_map(Need::job_name).collect();
    if needed.is_empty() {
        let msg = "corresponding to dependencies must be from the same pipeline";
        attr_error(d, node, job_path, "needs", msg);
        return;
    }
    let missing: Vec<&str> = dependencies
        .iter()
        .map(String::as_str)
        .filter(|dep| !needed.contains(dep))
        .collect();
    if !missing.is_empty() {
        let msg = format!("the {} should be part of needs", missing.join(", "));
        attr_error(d, node, job_path, "dependencies", &msg);
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

    const JOB: &[NeedType] = &[NeedType::Job, NeedType::CrossDependency];

    fn decode(text: &str, allowed: &[NeedType]) -> (Option<Vec<Need>>, Vec<String>) {
        let mut d = Decoder::lowercasing();
        let needs = decode_needs(&mut d, &doc(text), "jobs:a:needs", allowed);
        (needs, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_140_names_and_hashes() {
        let (needs, msgs) = decode(
            "[build, {job: lint, artifacts: false}, {job: opt, optional: true}]",
            JOB,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let needs = needs.unwrap();
        assert_eq!(needs[0].job_name(), Some("build"));
        assert!(needs[0].artifacts);
        assert!(!needs[1].artifacts);
        assert!(needs[2].optional);
    }

    #[test]
    fn rule_141_empty_list_is_allowed() {
        let (needs, msgs) = decode("[]", JOB);
        assert!(msgs.is_empty());
        assert_eq!(needs, Some(vec![]));
        assert_eq!(
            decode("{}", JOB).1,
            ["jobs:a:needs config can not be an empty hash"]
        );
        assert_eq!(
            decode("build", JOB).1,
            ["jobs:a:needs config can only be a hash or an array"]
        );
    }

    #[test]
    fn rule_140_entry_shapes_are_checked() {
        assert_eq!(
            decode("[1]", JOB).1,
            ["jobs:a:needs:need has an unsupported type"]
        );
        assert_eq!(
            decode("[{job: x, when: always}]", JOB).1,
            ["jobs:a:needs:need config contains unknown keys: when"]
        );
        assert_eq!(
            decode("[{job: x, artifacts: yes please}]", JOB).1,
            ["jobs:a:needs:need artifacts should be a boolean value"]
        );
    }

    #[test]
    fn rule_147_project_needs() {
        let (needs, msgs) = decode(
            "[{project: g/p, job: build, ref: main, artifacts: true}]",
            JOB,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(matches!(
            needs.unwrap()[0].target,
            NeedTarget::Project { .. }
        ));
        let (_, msgs) = decode("[{project: g/p, job: build}]", JOB);
        assert_eq!(
            msgs,
            [
                "jobs:a:needs:need ref should be a string",
                "jobs:a:needs:need ref can't be blank"
            ]
        );
    }

    #[test]
    fn rule_148_149_pipeline_needs() {
        let (needs, msgs) = decode("[{pipeline: $PARENT_ID, job: gen}]", JOB);
        assert!(msgs.is_empty(), "{msgs:?}");
        assert!(matches!(
            needs.unwrap()[0].target,
            NeedTarget::Pipeline { .. }
        ));
        let (_, msgs) = decode("{pipeline: other/project}", JOB);
        assert_eq!(msgs, ["jobs:a:needs config uses invalid types: bridge"]);
        let bridge = &[NeedType::Job, NeedType::Bridge];
        let (needs, msgs) = decode("{pipeline: other/project}", bridge);
        assert!(msgs.is_empty());
        assert!(matches!(
            needs.unwrap()[0].target,
            NeedTarget::Upstream { .. }
        ));
    }

    #[test]
    fn rule_150_needs_parallel_matrix() {
        let (needs, msgs) = decode(
            "[{job: build, parallel: {matrix: [{PROVIDER: aws, STACK: [a, b]}]}}]",
            JOB,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        match &needs.unwrap()[0].target {
            NeedTarget::Job {
                matrix: Some(m), ..
            } => assert_eq!(m[0].vars.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nested_needs_lists_are_flattened() {
        let (needs, msgs) = decode("[a, [b, [c]]]", JOB);
        assert!(msgs.is_empty());
        assert_eq!(needs.unwrap().len(), 3);
    }

    #[test]
    fn rule_151_dependencies_must_be_needed() {
        let mut d = Decoder::lowercasing();
        let (needs, _) = decode("[build1, build2]", JOB);
        let deps = vec!["build1".to_string(), "build3".to_string()];
        check_dependencies_in_needs(&mut d, &doc("x"), "jobs:test1", &deps, &needs.unwrap());
        assert_eq!(
            d.diags.0[0].message,
            "jobs:test1 dependencies the build3 should be part of needs"
        );
    }

    #[test]
    fn rule_153_dependencies_are_strings() {
        let mut d = Decoder::lowercasing();
        assert!(decode_dependencies(&mut d, &doc("deploy"), "jobs:test1").is_none());
        assert_eq!(
            d.diags.0[0].message,
            "jobs:test1 dependencies should be an array of strings"
        );
    }

    #[test]
    fn rule_140_limit_message() {
        assert_eq!(
            too_many_needs_message("rspec", 51),
            "rspec: one job can only need 50 others, but you have listed 51. See needs keyword documentation for more details"
        );
    }
}
