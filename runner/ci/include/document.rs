//! One file's text to its content mapping: the optional `spec:` header
//! document, input values, and interpolation (rules 57-67).

use std::collections::BTreeMap;

use super::inputs::{parse_header, placeholder_values, resolve};
use super::interpolate::{Scope, interpolate};
use super::project::ComponentInfo;
use crate::ci::diag::Diagnostic;
use crate::ci::source::{SourceId, Span};
use crate::ci::yaml::{Node, Value, parse_documents};

/// How a file is being loaded.
pub(crate) struct Use<'a> {
    /// The include location, for messages about included files (`None` for
    /// the root file, whose messages GitLab does not prefix).
    pub label: Option<&'a str>,
    /// The `inputs` given to the file.
    pub given: &'a [(String, Node)],
    /// The `include` entry, or the root file's start.
    pub span: Span,
    /// Set for a component, for `$[[ component.* ]]`.
    pub component: Option<&'a ComponentInfo>,
    /// The variables `expand_vars` may use.
    pub variables: &'a BTreeMap<String, String>,
    /// Give required inputs that have no value a stand-in instead of
    /// failing (checking a template on its own).
    pub placeholders: bool,
}

/// Parses `text` (registered as `source`), checks its header and inputs,
/// interpolates, and returns the content mapping.
pub(crate) fn load_document(
    text: &str,
    source: SourceId,
    how: &Use<'_>,
) -> Result<Node, Diagnostic> {
    // GitLab prefixes every problem inside an included file with its
    // location: "`ci/a.yml`: ...".
    let prefix = |msg: &str| match how.label {
        Some(l) => format!("`{l}`: {msg}"),
        None => msg.to_string(),
    };
    let mut docs = parse_documents(text, source).map_err(|d| Diagnostic {
        message: prefix(&d.message),
        ..d
    })?;
    // A header is a first document holding `spec`, with a second document
    // after it; other documents are ignored as GitLab ignores them.
    let has_header = docs.len() > 1 && docs[0].as_map().is_some_and(|m| m.contains_key("spec"));
    let (header, content) = if has_header {
        let content = docs.swap_remove(1);
        (Some(docs.swap_remove(0)), content)
    } else if docs.is_empty() {
        (None, Node::null(Span::new(source, 1, 1)))
    } else {
        (None, docs.swap_remove(0))
    };
    let content = match header {
        None if !how.given.is_empty() => {
            return Err(Diagnostic::config(
                how.span,
                prefix(
                    "Given inputs not defined in the `spec` section of the included configuration file",
                ),
            ));
        }
        // Without a header nothing is interpolated: `$[[ ]]` stays as text.
        None => content,
        Some(header) => {
            let spec = parse_header(&header).map_err(|d| Diagnostic {
                message: prefix(&d.message),
                ..d
            })?;
            let stand_ins = if how.placeholders {
                placeholder_values(&spec.inputs, how.given)
            } else {
                Vec::new()
            };
            let inputs = resolve(&spec.inputs, how.given, stand_ins).map_err(|errors| {
                let span = if how.label.is_some() {
                    how.span
                } else {
                    header.span
                };
                // GitLab surfaces at most three problems, joined.
                let joined = errors.into_iter().take(3).collect::<Vec<_>>().join(", ");
                Diagnostic::config(span, prefix(&joined))
            })?;
            let component = component_scope(&spec.component, how.component);
            let scope = Scope {
                inputs: &inputs,
                component: &component,
                variables: how.variables,
            };
            interpolate(content, &scope)
                .map_err(|(span, msg)| Diagnostic::config(span, prefix(&msg)))?
        }
    };
    match (&content.value, how.label) {
        (Value::Map(_), _) => Ok(content),
        (Value::Null, Some(label)) => Err(Diagnostic::config(
            how.span,
            format!("Included file `{label}` does not have valid YAML syntax!"),
        )),
        _ => Err(Diagnostic::config(
            content.span,
            prefix("Invalid configuration format"),
        )),
    }
}

/// The `$[[ component.* ]]` values a file declared it uses.
fn component_scope(wanted: &[String], info: Option<&ComponentInfo>) -> BTreeMap<String, Node> {
    let Some(info) = info else {
        return BTreeMap::new();
    };
    wanted
        .iter()
        .filter_map(|key| {
            let value = match key.as_str() {
                "name" => &info.name,
                "sha" => &info.sha,
                "version" => &info.version,
                "reference" => &info.reference,
                _ => return None,
            };
            Some((key.clone(), Node::string(value.clone(), Span::synthetic())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, label: Option<&str>, given: &[(&str, Node)]) -> Result<Node, Diagnostic> {
        let given: Vec<(String, Node)> = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let variables = BTreeMap::new();
        let how = Use {
            label,
            given: &given,
            span: Span::new(SourceId(1), 9, 3),
            component: None,
            variables: &variables,
            placeholders: false,
        };
        load_document(text, SourceId(2), &how)
    }

    fn s(v: &str) -> Node {
        Node::string(v, Span::synthetic())
    }

    #[test]
    fn rule_57_a_header_document_declares_inputs_and_defaults_apply() {
        let text = "spec:\n  inputs:\n    stage: {default: test}\n    name:\n---\n\
                    '$[[ inputs.name ]]':\n  stage: $[[ inputs.stage ]]\n";
        let out = load(text, Some("t.yml"), &[("name", s("lint"))]).unwrap();
        let job = out.as_map().unwrap().get("lint").unwrap();
        assert_eq!(
            job.as_map().unwrap().get("stage").unwrap().as_str(),
            Some("test")
        );
    }

    #[test]
    fn rule_56_problems_name_the_included_file_and_point_at_the_include() {
        let text = "spec:\n  inputs:\n    name:\n---\nj:\n  script: $[[ inputs.name ]]\n";
        let err = load(text, Some("t.yml"), &[("other", s("x"))]).unwrap_err();
        assert_eq!(
            err.message,
            "`t.yml`: unknown input arguments: other, `name` input: required value has not been provided"
        );
        assert_eq!(err.span, Span::new(SourceId(1), 9, 3));
        let err = load("j:\n  script: x\n", Some("t.yml"), &[("name", s("x"))]).unwrap_err();
        assert_eq!(
            err.message,
            "`t.yml`: Given inputs not defined in the `spec` section of the included configuration file"
        );
    }

    #[test]
    fn root_file_messages_are_not_prefixed_and_point_into_the_file() {
        let err = load("spec:\n  inputs:\n    x:\n---\nj: 1\n", None, &[]).unwrap_err();
        assert_eq!(
            err.message,
            "`x` input: required value has not been provided"
        );
        assert_eq!(err.span.source, SourceId(2));
        let err = load(
            "spec:\n  inputs:\n    x: {default: a}\n---\nj: $[[ inputs.y ]]\n",
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.message, "unknown interpolation key: `y`");
        assert_eq!(err.span, Span::new(SourceId(2), 5, 4));
    }

    #[test]
    fn a_file_without_spec_keeps_its_blocks_literal() {
        let out = load("j:\n  script: 'echo $[[ inputs.x ]]'\n", None, &[]).unwrap();
        let job = out.as_map().unwrap().get("j").unwrap().as_map().unwrap();
        assert_eq!(
            job.get("script").unwrap().as_str(),
            Some("echo $[[ inputs.x ]]")
        );
    }

    #[test]
    fn included_content_must_be_a_hash() {
        let err = load("spec:\n  inputs: {}\n---\n", Some("t.yml"), &[]).unwrap_err();
        assert_eq!(
            err.message,
            "Included file `t.yml` does not have valid YAML syntax!"
        );
        let err = load("- a\n- b\n", Some("t.yml"), &[]).unwrap_err();
        assert_eq!(err.message, "`t.yml`: Invalid configuration format");
    }
}
