//! `only` and `except` (rules 121-127): deprecated, still common.

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{array_of_strings, attr_error, compiles_as_re2, is_blank, slash_regex, to_s};
use crate::ci::expr::{Expr, INVALID_EXPRESSION_SYNTAX};
use crate::ci::yaml::{Node, Value};

/// One `only:` or `except:` policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OnlyExcept {
    /// Branch names, `/regex/`es, `name@group/project` and pipeline-type
    /// keywords (`branches`, `tags`, `merge_requests`, ...) (rule 122).
    pub refs: Option<Vec<String>>,
    /// Variable expressions, not evaluated here (rule 125).
    pub variables: Option<Vec<String>>,
    /// Path globs (rule 126).
    pub changes: Option<Vec<String>>,
    /// Only `active` (rule 127).
    pub kubernetes: Option<String>,
}

impl OnlyExcept {
    /// The policy a job gets when it has no `only`, `except` or `rules`
    /// and the pipeline has no `workflow:rules` (rules 78 and 123).
    pub fn default_only() -> OnlyExcept {
        OnlyExcept {
            refs: Some(vec!["branches".into(), "tags".into()]),
            ..OnlyExcept::default()
        }
    }
}

const REFS_MESSAGE: &str = "should be an array of strings or regular expressions using re2 syntax";

/// Refs are strings; those written `/.../` must be valid RE2 regexes.
fn refs(node: &Node) -> Option<Vec<String>> {
    let refs = array_of_strings(node)?;
    refs.iter()
        .all(|r| slash_regex(r).is_none_or(|(p, f)| compiles_as_re2(p, f)))
        .then_some(refs)
}

/// Decodes `only` or `except` at `path`: a list of refs or a hash.
pub(crate) fn decode_only_except(d: &mut Decoder, node: &Node, path: &str) -> Option<OnlyExcept> {
    match &node.value {
        Value::Seq(_) => match refs(node) {
            Some(refs) => Some(OnlyExcept {
                refs: Some(refs),
                ..OnlyExcept::default()
            }),
            None => {
                d.error(node, path, format!("config {REFS_MESSAGE}"));
                None
            }
        },
        Value::Map(map) => {
            if is_blank(node) {
                d.error(node, path, "config can't be blank");
                return None;
            }
            let before = d.diags.len();
            d.unknown_keys(map, path, &["refs", "kubernetes", "variables", "changes"]);
            let mut policy = OnlyExcept::default();
            if let Some(refs) = map.get("refs").filter(|n| !n.is_null()) {
                policy.refs = self::refs(refs);
                if policy.refs.is_none() {
                    attr_error(d, refs, path, "refs", REFS_MESSAGE);
                }
            }
            if let Some(k8s) = map.get("kubernetes").filter(|n| !n.is_null()) {
                if k8s.as_str() == Some("active") {
                    policy.kubernetes = Some("active".into());
                } else {
                    let msg = format!("unknown value: {}", to_s(k8s));
                    attr_error(d, k8s, path, "kubernetes", &msg);
                }
            }
            for key in ["variables", "changes"] {
                let Some(value) = map.get(key).filter(|n| !n.is_null()) else {
                    continue;
                };
                let list = array_of_strings(value);
                if list.is_none() {
                    attr_error(d, value, path, key, "should be an array of strings");
                }
                if key == "variables" {
                    // Each statement that does not parse is reported.
                    for statement in list.iter().flatten() {
                        if Expr::parse(statement).is_err() {
                            attr_error(d, value, path, key, INVALID_EXPRESSION_SYNTAX);
                        }
                    }
                }
                match key {
                    "variables" => policy.variables = list,
                    _ => policy.changes = list,
                }
            }
            (d.diags.len() == before).then_some(policy)
        }
        _ => {
            d.error_raw(
                node,
                path,
                "has to be either an array of conditions or a hash",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<OnlyExcept>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::lowercasing();
        let p = decode_only_except(&mut d, &node, "jobs:a:only");
        (p, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_121_array_means_refs() {
        let (p, msgs) = decode("[main, /^release-.*$/, tags, main@group/project]");
        assert!(msgs.is_empty());
        assert_eq!(p.unwrap().refs.unwrap().len(), 4);
    }

    #[test]
    fn rule_121_hash_form() {
        let (p, msgs) = decode(
            "{refs: [branches], variables: ['$CI_COMMIT_MESSAGE =~ /run/'], changes: ['src/**/*'], kubernetes: active}",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let p = p.unwrap();
        assert_eq!(p.variables.unwrap().len(), 1);
        assert_eq!(p.changes.unwrap(), ["src/**/*"]);
        assert_eq!(p.kubernetes.as_deref(), Some("active"));
    }

    #[test]
    fn rule_121_other_shapes_are_rejected() {
        assert_eq!(
            decode("main").1,
            ["jobs:a:only has to be either an array of conditions or a hash"]
        );
        assert_eq!(decode("{}").1, ["jobs:a:only config can't be blank"]);
        assert_eq!(
            decode("{branches: true}").1,
            ["jobs:a:only config contains unknown keys: branches"]
        );
        assert_eq!(
            decode("['/*invalid/']").1,
            [
                "jobs:a:only config should be an array of strings or regular expressions using re2 syntax"
            ]
        );
        assert_eq!(
            decode("[main, 1]").1,
            [
                "jobs:a:only config should be an array of strings or regular expressions using re2 syntax"
            ]
        );
    }

    #[test]
    fn rule_125_variables_are_expressions() {
        assert_eq!(
            decode("{variables: ['$A == \"x\"', '$B ==', '$C']}").1,
            ["jobs:a:only variables invalid expression syntax"]
        );
    }

    #[test]
    fn rule_127_kubernetes_accepts_only_active() {
        assert_eq!(
            decode("{kubernetes: inactive}").1,
            ["jobs:a:only kubernetes unknown value: inactive"]
        );
    }

    #[test]
    fn rule_123_default_only_is_branches_and_tags() {
        assert_eq!(
            OnlyExcept::default_only().refs.unwrap(),
            ["branches", "tags"]
        );
    }
}
