//! `inherit:` (rules 32-33): which `default:` keywords and top-level
//! variables a job takes.

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{array_of_strings, to_s};
use crate::ci::yaml::{Node, Value};

/// The `default:` keywords `inherit:default` may list (rule 30).
pub(crate) const DEFAULT_KEYS: &[&str] = &[
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "identity",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
];

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

/// `inherit:` at `path` (rules 32-33).
pub(crate) fn decode_inherit(d: &mut Decoder, node: &Node, path: &str) -> Inherit {
    let mut inherit = Inherit::default();
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return inherit;
    };
    d.unknown_keys(map, path, &["default", "variables"]);
    if let Some(value) = map.get("default").filter(|n| !n.is_null()) {
        let p = format!("{path}:default");
        if let Some(keys) = inherit_keys(d, value, &p, Some(DEFAULT_KEYS)) {
            inherit.default = keys;
        }
    }
    if let Some(value) = map.get("variables").filter(|n| !n.is_null()) {
        let p = format!("{path}:variables");
        if let Some(keys) = inherit_keys(d, value, &p, None) {
            inherit.variables = keys;
        }
    }
    inherit
}

/// `true`, `false` or a list of names, each one of `allowed` if given.
fn inherit_keys(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    allowed: Option<&[&str]>,
) -> Option<InheritKeys> {
    let items = match &node.value {
        Value::Bool(b) => return Some(InheritKeys::All(*b)),
        Value::Seq(items) => items,
        _ => {
            d.error_raw(node, path, "should be a bool or array of strings");
            return None;
        }
    };
    let list = array_of_strings(node);
    if list.is_none() {
        d.error(node, path, "config should be an array of strings");
    }
    if let Some(allowed) = allowed {
        let unknown: Vec<String> = items
            .iter()
            .filter(|i| !i.as_str().is_some_and(|k| allowed.contains(&k)))
            .map(to_s)
            .collect();
        if !unknown.is_empty() {
            let msg = format!("config contains unknown values: {}", unknown.join(", "));
            d.error(node, path, msg);
            return None;
        }
    }
    list.map(InheritKeys::Only)
}

#[cfg(test)]
mod tests {
    use crate::ci::model::job::Job;
    use crate::ci::model::pipeline::decode_pipeline;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> Result<Job, Vec<String>> {
        let root = parse_documents(text, SourceId(1)).unwrap().remove(0);
        decode_pipeline(&root)
            .map(|mut p| p.jobs.remove(0))
            .map_err(|e| e.iter().map(|d| d.message.clone()).collect())
    }

    fn job(text: &str) -> Job {
        decode(text).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).unwrap_err()
    }

    #[test]
    fn rule_32_33_inherit() {
        let j = job("a: {script: x, inherit: {default: [image, retry], variables: false}}");
        assert!(j.inherit.default.includes("image"));
        assert!(!j.inherit.default.includes("tags"));
        assert!(!j.inherit.variables.includes("ANY"));
        assert!(job("a: {script: x}").inherit.variables.includes("ANY"));
        assert_eq!(
            errors("a: {script: x, inherit: {default: [image, script]}}"),
            ["jobs:a:inherit:default config contains unknown values: script"]
        );
        assert_eq!(
            errors("a: {script: x, inherit: {variables: maybe}}"),
            ["jobs:a:inherit:variables should be a bool or array of strings"]
        );
        assert_eq!(
            errors("a: {script: x, inherit: {image: false}}"),
            ["jobs:a:inherit config contains unknown keys: image"]
        );
    }
}
