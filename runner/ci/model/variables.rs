//! Variables defined in the YAML: top-level `variables`, job `variables`,
//! and the `variables` of `rules` and `workflow:rules` (rules 173-178).

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{array_of_strings, attr_error, bare_error, is_alphanumeric, to_s};
use crate::ci::source::Span;
use crate::ci::yaml::{Node, Value};

/// One variable as written in the YAML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableDef {
    pub name: String,
    /// The value as GitLab stores it: Ruby's `to_s` of the scalar, so
    /// `012` (octal in YAML 1.1) is `"10"`, `true` is `"true"` and a
    /// missing value is `""`.
    pub value: String,
    /// Top-level only: shown when the pipeline is run by hand.
    pub description: Option<String>,
    /// Top-level only: the values offered when the pipeline is run by hand.
    pub options: Option<Vec<String>>,
    /// `false` keeps `$` references in the value as written (rule 178).
    pub expand: bool,
    #[serde(skip)]
    pub span: Span,
}

/// Where a `variables:` block sits, which decides what its hash form may
/// hold (rule 175).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarScope {
    /// Top-level `variables`: `value`, `description`, `options`, `expand`.
    Root,
    /// Job `variables`: `value` and `expand`.
    Job,
    /// `rules:variables` and `workflow:rules:variables`: plain values only.
    Rule,
}

impl VarScope {
    fn allowed_data(self) -> &'static [&'static str] {
        match self {
            VarScope::Root => &["value", "description", "expand", "options"],
            VarScope::Job => &["value", "expand"],
            VarScope::Rule => &[],
        }
    }
}

/// Decodes a `variables:` hash. `path` is the block's key path
/// (`jobs:build:variables`); a variable's own problems are reported under
/// `<path>:<NAME>`.
pub(crate) fn decode_variables(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    scope: VarScope,
) -> Vec<VariableDef> {
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return Vec::new();
    };
    let mut vars = Vec::with_capacity(map.len());
    for (key, value) in map.iter() {
        let name = to_s(key);
        let var_path = format!("{path}:{name}");
        // YAML keys are strings or integers in practice; GitLab rejects
        // the rest (`true:`, `1.5:`).
        if !is_alphanumeric(key) {
            attr_error(d, key, &var_path, "key", "must be an alphanumeric string");
        }
        if let Some(var) = decode_one(d, &name, value, &var_path, scope) {
            vars.push(var);
        }
    }
    vars
}

fn decode_one(
    d: &mut Decoder,
    name: &str,
    node: &Node,
    path: &str,
    scope: VarScope,
) -> Option<VariableDef> {
    let simple = |value: String| VariableDef {
        name: name.to_string(),
        value,
        description: None,
        options: None,
        expand: true,
        span: node.span,
    };
    match &node.value {
        // Strings, integers, floats and booleans are all "scalars" to
        // GitLab and become their Ruby `to_s`.
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            Some(simple(to_s(node)))
        }
        // GitLab reads a missing value as an empty hash, which the hash
        // form accepts where it is allowed at all.
        Value::Null => {
            if scope == VarScope::Rule {
                d.error(node, path, "config must be a string");
                return None;
            }
            Some(simple(String::new()))
        }
        Value::Map(map) => decode_hash_form(d, name, node, map, path, scope),
        Value::Seq(_) => {
            bare_error(
                d,
                node,
                "variable definition must be either a string or a hash",
            );
            None
        }
    }
}

fn decode_hash_form(
    d: &mut Decoder,
    name: &str,
    node: &Node,
    map: &crate::ci::yaml::Mapping,
    path: &str,
    scope: VarScope,
) -> Option<VariableDef> {
    let mut ok = true;
    let value = map.get("value").filter(|v| !v.is_null());
    if let Some(v) = value
        && !v.is_scalar()
    {
        attr_error(d, v, path, "config_value", "must be a scalar");
        ok = false;
    }
    let description = map.get("description").filter(|v| !v.is_null());
    if let Some(desc) = description
        && !is_alphanumeric(desc)
    {
        attr_error(
            d,
            desc,
            path,
            "config_description",
            "must be an alphanumeric string",
        );
        ok = false;
    }
    let mut expand = true;
    if let Some(e) = map.get("expand").filter(|v| !v.is_null()) {
        match e.as_bool() {
            Some(b) => expand = b,
            None => {
                attr_error(d, e, path, "config_expand", "should be a boolean value");
                ok = false;
            }
        }
    }
    let mut options = None;
    if let Some(o) = map.get("options").filter(|v| !v.is_null()) {
        options = array_of_strings(o);
        if options.is_none() {
            attr_error(
                d,
                o,
                path,
                "config_options",
                "should be an array of strings",
            );
            ok = false;
        }
    }
    let allowed = scope.allowed_data();
    if allowed.is_empty() {
        d.error(node, path, "config must be a string");
        ok = false;
    } else {
        let extra: Vec<String> = map
            .iter()
            .filter(|(k, _)| !k.as_str().is_some_and(|k| allowed.contains(&k)))
            .map(|(k, _)| to_s(k))
            .collect();
        if !extra.is_empty() {
            d.error(
                node,
                path,
                format!("config uses invalid data keys: {}", extra.join(", ")),
            );
            ok = false;
        }
    }
    // The options must list the value itself, compared as written: an
    // integer value never matches the string options.
    if let Some(opts) = options.as_ref().filter(|o| !o.is_empty()) {
        let listed = value
            .and_then(Node::as_str)
            .is_some_and(|v| opts.iter().any(|o| o == v));
        if !listed {
            d.error(node, path, "config value must be present in options");
            ok = false;
        }
    }
    ok.then(|| VariableDef {
        name: name.to_string(),
        value: value.map(to_s).unwrap_or_default(),
        description: description.map(to_s),
        options,
        expand,
        span: node.span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn decode(text: &str, scope: VarScope) -> (Vec<VariableDef>, Vec<String>) {
        let mut d = Decoder::lowercasing();
        let vars = decode_variables(&mut d, &doc(text), "variables", scope);
        let msgs = d.diags.iter().map(|d| d.message.clone()).collect();
        (vars, msgs)
    }

    #[test]
    fn rule_174_scalars_become_ruby_strings() {
        let (vars, msgs) = decode(
            "{A: text, B: 012, C: 1.5, D: true, E: ~, F: 1.0e+20, G: 1e20}",
            VarScope::Job,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let values: Vec<_> = vars.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(values, ["text", "10", "1.5", "true", "", "1.0e+20", "1e20"]);
    }

    #[test]
    fn rule_174_lists_are_not_variable_values() {
        let (vars, msgs) = decode("{A: [1, 2]}", VarScope::Job);
        assert!(vars.is_empty());
        assert_eq!(
            msgs,
            ["variable definition must be either a string or a hash"]
        );
    }

    #[test]
    fn rule_175_root_hash_form_keeps_description_and_options() {
        let (vars, msgs) = decode(
            "{DEPLOY: {value: staging, description: Where, options: [staging, prod], expand: false}}",
            VarScope::Root,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        let v = &vars[0];
        assert_eq!(v.value, "staging");
        assert_eq!(v.description.as_deref(), Some("Where"));
        assert_eq!(v.options.as_ref().unwrap().len(), 2);
        assert!(!v.expand);
    }

    #[test]
    fn rule_175_job_hash_form_allows_only_value_and_expand() {
        let (_, msgs) = decode("{DEPLOY: {value: x, description: y}}", VarScope::Job);
        assert_eq!(
            msgs,
            ["variables:deploy config uses invalid data keys: description"]
        );
    }

    #[test]
    fn rule_100_rule_variables_take_no_hash_form() {
        let (_, msgs) = decode("{A: {value: x, expand: false}, B: ~}", VarScope::Rule);
        assert_eq!(
            msgs,
            [
                "variables:a config must be a string",
                "variables:b config must be a string"
            ]
        );
    }

    #[test]
    fn rule_176_description_only_gives_an_empty_value() {
        let (vars, msgs) = decode("{A: {description: Pick one}}", VarScope::Root);
        assert!(msgs.is_empty());
        assert_eq!(vars[0].value, "");
    }

    #[test]
    fn rule_177_options_must_include_the_value() {
        let (_, msgs) = decode("{A: {value: x, options: [y, z]}}", VarScope::Root);
        assert_eq!(
            msgs,
            ["variables:a config value must be present in options"]
        );
    }

    #[test]
    fn rule_178_expand_must_be_boolean() {
        let (_, msgs) = decode("{A: {value: x, expand: nope}}", VarScope::Job);
        assert_eq!(
            msgs,
            ["variables:a config expand should be a boolean value"]
        );
    }

    #[test]
    fn variables_must_be_a_hash() {
        let (_, msgs) = decode("[A, B]", VarScope::Root);
        assert_eq!(msgs, ["variables config should be a hash"]);
    }
}
