//! Helpers that turn [`Node`]s into typed values and report problems in
//! GitLab's wording: `<key path> config should be a string`, with the key
//! path written as GitLab writes it (`jobs:build:artifacts:paths`).

use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::yaml::{Mapping, Node, Value};

/// Collects the problems found while decoding one configuration.
#[derive(Default)]
pub(crate) struct Decoder {
    pub diags: Diagnostics,
    /// Whether messages are lowercased, as GitLab's entry validator
    /// lowercases every message it reports (a job named `Build` is
    /// reported as `jobs:build`). The pipeline decoder turns it on; a
    /// keyword decoder tested alone keeps the case it was given.
    lowercase: bool,
}

impl Decoder {
    /// A decoder that keeps the case of its messages, for testing one
    /// keyword decoder alone.
    #[cfg(test)]
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder that words messages exactly as GitLab reports them.
    pub fn lowercasing() -> Decoder {
        Decoder {
            diags: Diagnostics::default(),
            lowercase: true,
        }
    }

    /// Records `<path> <message>` at the node's position.
    pub fn error(&mut self, node: &Node, path: &str, message: impl std::fmt::Display) {
        let mut text = format!("{path} {message}");
        if self.lowercase {
            text = text.to_lowercase();
        }
        self.diags.push(Diagnostic::config(node.span, text));
    }

    /// Records `<path> <message>` as written. GitLab's messages for a value
    /// of no recognised shape (`... has to be either a string or a hash`)
    /// bypass the validator, so they keep the key path's case.
    pub fn error_raw(&mut self, node: &Node, path: &str, message: impl std::fmt::Display) {
        self.diags
            .push(Diagnostic::config(node.span, format!("{path} {message}")));
    }

    /// The node as a hash, or an error `<path> config should be a hash`.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n Mapping> {
        match &node.value {
            Value::Map(m) => Some(m),
            _ => {
                self.error(node, path, "config should be a hash");
                None
            }
        }
    }

    /// Reports keys outside `allowed` as GitLab does:
    /// `<path> config contains unknown keys: a, b`. The error points at the
    /// first unknown key.
    pub fn unknown_keys(&mut self, map: &Mapping, path: &str, allowed: &[&str]) {
        let mut unknown = Vec::new();
        let mut first: Option<&Node> = None;
        for (key, _) in map.iter() {
            let known = key.as_str().is_some_and(|k| allowed.contains(&k));
            if !known {
                unknown.push(
                    key.scalar_string()
                        .map(|s| s.into_owned())
                        .unwrap_or_else(|| "?".into()),
                );
                first.get_or_insert(key);
            }
        }
        if let Some(key) = first {
            self.error(
                key,
                path,
                format!("config contains unknown keys: {}", unknown.join(", ")),
            );
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.error(node, path, "config should be a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(node, path, "config should be a boolean value");
                None
            }
        }
    }

    /// An array of strings: `<path> config should be an array of strings`.
    pub fn array_of_strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = node
            .as_seq()
            .filter(|items| items.iter().all(|i| i.as_str().is_some()));
        match items {
            Some(items) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect(),
            ),
            None => {
                self.error(node, path, "config should be an array of strings");
                None
            }
        }
    }
}

/// Flattens nested arrays of strings (what anchors and `!reference` make
/// inside `script`) up to `max_depth` levels. `None` when an item is not a
/// string or the nesting is deeper.
pub(crate) fn flatten_strings(node: &Node, max_depth: usize) -> Option<Vec<String>> {
    fn walk(node: &Node, depth: usize, max_depth: usize, out: &mut Vec<String>) -> bool {
        match &node.value {
            Value::Str(s) => {
                out.push(s.clone());
                true
            }
            Value::Seq(items) if depth < max_depth => items
                .iter()
                .all(|item| walk(item, depth + 1, max_depth, out)),
            _ => false,
        }
    }
    let mut out = Vec::new();
    match &node.value {
        Value::Str(s) => Some(vec![s.clone()]),
        Value::Seq(_) => walk(node, 0, max_depth, &mut out).then_some(out),
        _ => None,
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

    #[test]
    fn unknown_keys_are_listed_in_gitlab_wording() {
        let node = doc("script: x\nfoo: 1\nbar: 2\n");
        let mut d = Decoder::new();
        d.unknown_keys(node.as_map().unwrap(), "jobs:build", &["script"]);
        assert_eq!(
            d.diags.0[0].message,
            "jobs:build config contains unknown keys: foo, bar"
        );
        assert_eq!(d.diags.0[0].span.line, 2);
    }

    #[test]
    fn rule_6_nested_script_arrays_flatten_up_to_ten_levels() {
        let node = doc("[a, [b, [c, d]], e]");
        assert_eq!(
            flatten_strings(&node, 10).unwrap(),
            ["a", "b", "c", "d", "e"]
        );
        let deep = doc(&("[".repeat(12) + "x" + &"]".repeat(12)));
        assert!(flatten_strings(&deep, 10).is_none());
        assert!(flatten_strings(&doc("[a, {b: c}]"), 10).is_none());
    }
}
