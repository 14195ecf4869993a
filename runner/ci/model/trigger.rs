//! `trigger`: the downstream pipeline a trigger job starts (rules 233-238).

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{attr_error, is_blank, to_s};
use crate::ci::yaml::{Mapping, Node, Value};

/// A trigger job's downstream pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// A pipeline in another project (`trigger: group/project` or
    /// `trigger: {project: ...}`).
    Project {
        project: String,
        branch: Option<String>,
        strategy: Option<String>,
        forward: Option<Forward>,
        inputs: Option<serde_json::Value>,
    },
    /// A child pipeline of this project (`trigger: {include: ...}`).
    Child {
        include: Vec<TriggerInclude>,
        strategy: Option<String>,
        forward: Option<Forward>,
        inputs: Option<serde_json::Value>,
    },
}

/// `trigger:forward` (rule 237).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    /// Default `true`.
    pub yaml_variables: Option<bool>,
    /// Default `false`.
    pub pipeline_variables: Option<bool>,
}

/// One `trigger:include` entry (rule 235). A bare string is a local path.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TriggerInclude {
    pub local: Option<String>,
    pub template: Option<String>,
    pub remote: Option<String>,
    pub component: Option<String>,
    /// A file made by a job of this pipeline (a dynamic child pipeline).
    pub artifact: Option<String>,
    pub job: Option<String>,
    pub project: Option<String>,
    pub file: Option<Vec<String>>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub inputs: Option<serde_json::Value>,
}

/// The most files a child pipeline may include.
const INCLUDE_MAX_SIZE: usize = 3;
const STRATEGIES: &[&str] = &["depend", "mirror"];
const INCLUDE_KEYS: &[&str] = &[
    "local",
    "file",
    "remote",
    "template",
    "component",
    "artifact",
    "inputs",
    "job",
    "project",
    "ref",
    "rules",
    "integrity",
];

/// Decodes `trigger` at `path`.
pub(crate) fn decode_trigger(d: &mut Decoder, node: &Node, path: &str) -> Option<Trigger> {
    match &node.value {
        Value::Str(project) => {
            if is_blank(node) {
                d.error(node, path, "config can't be blank");
                return None;
            }
            Some(Trigger::Project {
                project: project.clone(),
                branch: None,
                strategy: None,
                forward: None,
                inputs: None,
            })
        }
        Value::Map(map) => {
            let before = d.diags.len();
            if map.is_empty() {
                d.error(node, path, "config can't be blank");
            }
            let strategy = decode_strategy(d, map, path);
            let forward = map
                .get("forward")
                .filter(|n| !n.is_null())
                .and_then(|f| decode_forward(d, f, &format!("{path}:forward")));
            let inputs = map.get("inputs").filter(|n| !n.is_null()).map(to_json);
            let trigger = if let Some(include) = map.get("include") {
                d.unknown_keys(map, path, &["strategy", "include", "forward", "inputs"]);
                let include = decode_includes(d, include, &format!("{path}:include"));
                Trigger::Child {
                    include,
                    strategy,
                    forward,
                    inputs,
                }
            } else {
                let keys = &["project", "branch", "strategy", "forward", "inputs"];
                d.unknown_keys(map, path, keys);
                let project = map.get("project");
                let at = project.unwrap_or(node);
                if project.and_then(Node::as_str).is_none() {
                    attr_error(d, at, path, "project", "should be a string");
                }
                if project.is_none_or(is_blank) {
                    attr_error(d, at, path, "project", "can't be blank");
                }
                let branch = match map.get("branch").filter(|n| !n.is_null()) {
                    Some(b) if b.as_str().is_none() => {
                        attr_error(d, b, path, "branch", "should be a string");
                        None
                    }
                    other => other.and_then(Node::as_str).map(String::from),
                };
                Trigger::Project {
                    project: project
                        .and_then(Node::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    branch,
                    strategy,
                    forward,
                    inputs,
                }
            };
            (d.diags.len() == before).then_some(trigger)
        }
        _ => {
            d.error_raw(node, path, "has to be either a string or a hash");
            None
        }
    }
}

fn decode_strategy(d: &mut Decoder, map: &Mapping, path: &str) -> Option<String> {
    let node = map.get("strategy").filter(|n| !n.is_null())?;
    match node.as_str() {
        Some(s) if STRATEGIES.contains(&s) => Some(s.to_string()),
        text => {
            if text.is_none() {
                attr_error(d, node, path, "strategy", "should be a string");
            }
            attr_error(d, node, path, "strategy", "should be depend or mirror");
            None
        }
    }
}

fn decode_forward(d: &mut Decoder, node: &Node, path: &str) -> Option<Forward> {
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return None;
    };
    d.unknown_keys(map, path, &["yaml_variables", "pipeline_variables"]);
    let mut flag = |key: &str| {
        let v = map.get(key).filter(|n| !n.is_null())?;
        let b = v.as_bool();
        if b.is_none() {
            attr_error(d, v, path, key, "should be a boolean value");
        }
        b
    };
    Some(Forward {
        yaml_variables: flag("yaml_variables"),
        pipeline_variables: flag("pipeline_variables"),
    })
}

/// `trigger:include`: a path or a list of at most three entries.
fn decode_includes(d: &mut Decoder, node: &Node, path: &str) -> Vec<TriggerInclude> {
    let items: Vec<&Node> = match &node.value {
        Value::Str(_) => vec![node],
        Value::Seq(items) => {
            if items.len() > INCLUDE_MAX_SIZE {
                let msg = format!("config is too long (maximum is {INCLUDE_MAX_SIZE})");
                d.error(node, path, msg);
            }
            items.iter().collect()
        }
        _ => {
            d.error(node, path, "config should be an array or a string");
            return Vec::new();
        }
    };
    let item_path = format!("{path}:include");
    items
        .into_iter()
        .filter_map(|item| decode_include(d, item, &item_path))
        .collect()
}

fn decode_include(d: &mut Decoder, node: &Node, path: &str) -> Option<TriggerInclude> {
    let map = match &node.value {
        Value::Str(local) => {
            return Some(TriggerInclude {
                local: Some(local.clone()),
                ..TriggerInclude::default()
            });
        }
        Value::Map(map) => map,
        _ => {
            d.error(node, path, "config should be a hash or a string");
            return None;
        }
    };
    d.unknown_keys(map, path, INCLUDE_KEYS);
    let text = |key: &str| map.get(key).and_then(Node::as_str).map(String::from);
    let include = TriggerInclude {
        local: text("local"),
        template: text("template"),
        remote: text("remote"),
        component: text("component"),
        artifact: text("artifact"),
        job: text("job"),
        project: text("project"),
        file: map.get("file").and_then(|f| match &f.value {
            Value::Str(s) => Some(vec![s.clone()]),
            _ => super::judge::array_of_strings(f),
        }),
        git_ref: text("ref"),
        inputs: map.get("inputs").filter(|n| !n.is_null()).map(to_json),
    };
    if include.artifact.is_some() && map.get("job").is_none_or(is_blank) {
        d.error(
            node,
            path,
            "config must specify the job where to fetch the artifact from",
        );
    }
    if include.project.is_some() && map.get("file").is_none_or(is_blank) {
        d.error(
            node,
            path,
            "config must specify the file where to fetch the config from",
        );
    }
    Some(include)
}

/// A YAML value as JSON, for values passed through untouched (`inputs`).
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => J::Object(map.iter().map(|(k, v)| (to_s(k), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<Trigger>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::lowercasing();
        let t = decode_trigger(&mut d, &node, "jobs:a:trigger");
        (t, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_233_project_string() {
        let (t, msgs) = decode("group/project");
        assert!(msgs.is_empty());
        assert!(matches!(t, Some(Trigger::Project { project, .. }) if project == "group/project"));
    }

    #[test]
    fn rule_233_project_hash() {
        let (t, msgs) = decode(
            "{project: g/p, branch: main, strategy: depend, forward: {pipeline_variables: true}}",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        match t.unwrap() {
            Trigger::Project {
                branch,
                strategy,
                forward,
                ..
            } => {
                assert_eq!(branch.as_deref(), Some("main"));
                assert_eq!(strategy.as_deref(), Some("depend"));
                assert_eq!(forward.unwrap().pipeline_variables, Some(true));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rule_235_child_pipeline_includes() {
        let (t, msgs) = decode(
            "{include: [a.yml, {artifact: gen.yml, job: generate}, {project: g/p, file: ci.yml, ref: main}], strategy: depend}",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        match t.unwrap() {
            Trigger::Child { include, .. } => {
                assert_eq!(include[0].local.as_deref(), Some("a.yml"));
                assert_eq!(include[1].job.as_deref(), Some("generate"));
                assert_eq!(include[2].file.as_ref().unwrap(), &["ci.yml"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rule_235_include_checks() {
        assert_eq!(
            decode("{include: [{artifact: gen.yml}]}").1,
            [
                "jobs:a:trigger:include:include config must specify the job where to fetch the artifact from"
            ]
        );
        assert_eq!(
            decode("{include: [a, b, c, d]}").1,
            ["jobs:a:trigger:include config is too long (maximum is 3)"]
        );
    }

    #[test]
    fn rule_233_trigger_shapes() {
        assert_eq!(
            decode("[a]").1,
            ["jobs:a:trigger has to be either a string or a hash"]
        );
        assert_eq!(
            decode("{branch: main}").1,
            [
                "jobs:a:trigger project should be a string",
                "jobs:a:trigger project can't be blank"
            ]
        );
        assert_eq!(
            decode("{project: g/p, strategy: wait}").1,
            ["jobs:a:trigger strategy should be depend or mirror"]
        );
        assert_eq!(
            decode("{project: g/p, when: always}").1,
            ["jobs:a:trigger config contains unknown keys: when"]
        );
    }
}
