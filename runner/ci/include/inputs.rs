//! The `spec:` header and input values (rules 56-62).
//!
//! The header is checked first, with GitLab's entry messages (which GitLab
//! lower-cases whole), then the given values against it, with the input
//! messages (`` `name` input: ... ``).

use std::collections::BTreeMap;

use regex::Regex;

use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;
use crate::ci::yaml::{Node, Value};

/// At most this many `options` per input.
const MAX_OPTIONS: usize = 50;

const INPUT_KEYS: &[&str] = &[
    "default",
    "description",
    "options",
    "regex",
    "type",
    "rules",
];
const COMPONENT_VALUES: &[&str] = &["name", "sha", "version", "reference"];

/// An input's declared type (rule 59).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputType {
    String,
    Number,
    Boolean,
    Array,
}

impl InputType {
    fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Array => "array",
        }
    }

    fn article(self) -> &'static str {
        if self == InputType::Array { "an" } else { "a" }
    }

    fn accepts(self, value: &Node) -> bool {
        match (self, &value.value) {
            // A string input's value may be null (`default: null` is common).
            (InputType::String, Value::Str(_) | Value::Null) => true,
            (InputType::Number, Value::Int(_) | Value::Float(_)) => true,
            (InputType::Boolean, Value::Bool(_)) => true,
            (InputType::Array, Value::Seq(_)) => true,
            _ => false,
        }
    }
}

/// One declared input.
#[derive(Clone, Debug)]
pub(crate) struct InputSpec {
    pub name: String,
    pub ty: InputType,
    /// `Some` when a `default` key is present (its value may be null).
    pub default: Option<Node>,
    pub options: Option<Vec<Node>>,
    pub regex: Option<String>,
}

/// A checked `spec:` header.
#[derive(Clone, Debug, Default)]
pub(crate) struct Header {
    pub inputs: Vec<InputSpec>,
    /// Which `$[[ component.* ]]` values the file may use.
    pub component: Vec<String>,
}

/// Checks a header document (a hash with a `spec` key).
pub(crate) fn parse_header(header: &Node) -> Result<Header, Diagnostic> {
    // Messages are lower-cased whole, as GitLab's entry validator does.
    let err = |node: &Node, msg: String| Diagnostic::config(node.span, msg.to_lowercase());
    let root = header
        .as_map()
        .ok_or_else(|| err(header, "header config should be a hash".into()))?;
    unknown_keys(root.iter().map(|(k, _)| k), &["spec"]).map_or(Ok(()), |keys| {
        Err(err(
            header,
            format!("header config contains unknown keys: {keys}"),
        ))
    })?;
    let Some(spec) = root.get("spec") else {
        return Ok(Header::default());
    };
    let spec_map = spec
        .as_map()
        .ok_or_else(|| err(spec, "header:spec config should be a hash".into()))?;
    unknown_keys(spec_map.iter().map(|(k, _)| k), &["inputs", "component"]).map_or(
        Ok(()),
        |keys| {
            Err(err(
                spec,
                format!("header:spec config contains unknown keys: {keys}"),
            ))
        },
    )?;
    let mut out = Header::default();
    if let Some(component) = spec_map.get("component").filter(|c| !c.is_null()) {
        let values: Option<Vec<&str>> = component
            .as_seq()
            .and_then(|s| s.iter().map(Node::as_str).collect());
        let Some(values) = values else {
            return Err(err(
                component,
                "header:spec:component config should be an array of strings".into(),
            ));
        };
        let unknown: Vec<&str> = values
            .iter()
            .copied()
            .filter(|v| !COMPONENT_VALUES.contains(v))
            .collect();
        if !unknown.is_empty() {
            return Err(err(
                component,
                format!(
                    "header:spec:component config contains unknown values: {}",
                    unknown.join(", ")
                ),
            ));
        }
        out.component = values.into_iter().map(String::from).collect();
    }
    let Some(inputs) = spec_map.get("inputs").filter(|i| !i.is_null()) else {
        return Ok(out);
    };
    let inputs = inputs
        .as_map()
        .ok_or_else(|| err(inputs, "header:spec:inputs config should be a hash".into()))?;
    for (key, spec) in inputs.iter() {
        let name = key.scalar_string().unwrap_or_default().into_owned();
        out.inputs.push(parse_input(&name, spec, &err)?);
    }
    Ok(out)
}

fn parse_input(
    name: &str,
    spec: &Node,
    err: &dyn Fn(&Node, String) -> Diagnostic,
) -> Result<InputSpec, Diagnostic> {
    let path = format!("header:spec:inputs:{name}");
    let mut input = InputSpec {
        name: name.to_string(),
        ty: InputType::String,
        default: None,
        options: None,
        regex: None,
    };
    let map = match &spec.value {
        Value::Null => return Ok(input),
        Value::Map(map) => map,
        _ => return Err(err(spec, format!("{path} config should be a hash"))),
    };
    if let Some(keys) = unknown_keys(map.iter().map(|(k, _)| k), INPUT_KEYS) {
        return Err(err(
            spec,
            format!("{path} config contains unknown keys: {keys}"),
        ));
    }
    for other in ["options", "default"] {
        if map.contains_key("rules") && map.contains_key(other) {
            return Err(err(
                spec,
                format!("{path} config these keys cannot be used together: rules, {other}"),
            ));
        }
    }
    if let Some(rules) = map.get("rules") {
        return Err(Diagnostic::config(
            rules.span,
            format!("{path}: input `rules` are not supported yet"),
        ));
    }
    if let Some(ty) = map.get("type").filter(|t| !t.is_null()) {
        input.ty = match ty.as_str() {
            Some("string") => InputType::String,
            Some("number") => InputType::Number,
            Some("boolean") => InputType::Boolean,
            Some("array") => InputType::Array,
            _ => {
                let shown = ty.scalar_string().unwrap_or_default().into_owned();
                return Err(err(ty, format!("{path} input type unknown value: {shown}")));
            }
        };
    }
    if let Some(description) = map.get("description").filter(|d| !d.is_null())
        && !matches!(description.value, Value::Str(_) | Value::Int(_))
    {
        return Err(err(
            description,
            format!("{path} input description must be an alphanumeric string"),
        ));
    }
    if let Some(regex) = map.get("regex").filter(|r| !r.is_null()) {
        let Some(text) = regex.as_str() else {
            return Err(err(regex, format!("{path} input regex should be a string")));
        };
        input.regex = Some(text.to_string());
    }
    if let Some(options) = map.get("options").filter(|o| !o.is_null()) {
        let Some(items) = options.as_seq() else {
            return Err(err(
                options,
                format!("{path} input options should be an array"),
            ));
        };
        if items.len() > MAX_OPTIONS {
            return Err(err(
                options,
                format!("{path} config cannot define more than {MAX_OPTIONS} options"),
            ));
        }
        if items.iter().any(Node::is_null) {
            return Err(err(
                options,
                format!("{path} config options array cannot contain null values"),
            ));
        }
        input.options = Some(items.to_vec());
    }
    input.default = map.get("default").cloned();
    Ok(input)
}

/// The given input values checked against the header, with defaults
/// filled in. Errors are GitLab's input messages in GitLab's order.
/// `stand_ins` are values for inputs nobody gave (see
/// [`placeholder_values`]); they are taken as they are, unchecked.
pub(crate) fn resolve(
    specs: &[InputSpec],
    given: &[(String, Node)],
    stand_ins: Vec<(String, Node)>,
) -> Result<BTreeMap<String, Node>, Vec<String>> {
    let mut errors = Vec::new();
    let unknown: Vec<&str> = given
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !specs.iter().any(|s| s.name == *k))
        .collect();
    if !unknown.is_empty() {
        errors.push(format!("unknown input arguments: {}", unknown.join(", ")));
    }
    let mut values = BTreeMap::new();
    for spec in specs {
        if let Some((_, value)) = stand_ins.iter().find(|(name, _)| *name == spec.name) {
            values.insert(spec.name.clone(), value.clone());
            continue;
        }
        let value = given.iter().find(|(k, _)| *k == spec.name).map(|(_, v)| v);
        let before = errors.len();
        check_input(spec, value.filter(|v| !v.is_null()), &mut errors);
        if errors.len() == before {
            let actual = value
                .filter(|v| !v.is_null())
                .or(spec.default.as_ref())
                .cloned()
                .unwrap_or_else(|| Node::null(Span::synthetic()));
            values.insert(spec.name.clone(), actual);
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// Stand-in values for required inputs that were not given, used when a
/// template is checked on its own (`runner lint --fragment`): the first of
/// its `options`, else a plain value of its type. The string stand-in is
/// the input's own name, which reads well where it ends up (job names,
/// stages).
pub(crate) fn placeholder_values(
    specs: &[InputSpec],
    given: &[(String, Node)],
) -> Vec<(String, Node)> {
    let span = Span::synthetic();
    specs
        .iter()
        .filter(|spec| spec.default.is_none() && !given.iter().any(|(k, _)| *k == spec.name))
        .map(|spec| {
            let value = match (&spec.options, spec.ty) {
                (Some(options), _) if !options.is_empty() => options[0].clone(),
                (_, InputType::String) => Node::string(spec.name.clone(), span),
                (_, InputType::Number) => Node::new(Value::Int(0), span),
                (_, InputType::Boolean) => Node::new(Value::Bool(false), span),
                (_, InputType::Array) => Node::seq(Vec::new(), span),
            };
            (spec.name.clone(), value)
        })
        .collect()
}

/// GitLab's order: required first (and stop), then the default's type,
/// options and regex, then the given value's.
fn check_input(spec: &InputSpec, value: Option<&Node>, errors: &mut Vec<String>) {
    let mut error = |msg: String| errors.push(format!("`{}` input: {msg}", spec.name));
    if spec.default.is_none() && value.is_none() {
        error("required value has not been provided".into());
        return;
    }
    let mut run = |v: &Node, is_default: bool| {
        let who = if is_default { "default" } else { "provided" };
        if !spec.ty.accepts(v) {
            error(format!(
                "{who} value is not {} {}",
                spec.ty.article(),
                spec.ty.name()
            ));
        }
        if let Some(options) = &spec.options {
            match spec.ty {
                InputType::String | InputType::Number if !v.is_null() => {
                    if !options.iter().any(|o| same_value(o, v)) {
                        let shown = v.scalar_string().unwrap_or_default();
                        let the = if spec.ty == InputType::Number {
                            "the "
                        } else {
                            ""
                        };
                        error(format!(
                            "`{shown}` cannot be used because it is not in the list of {the}allowed options"
                        ));
                    }
                }
                InputType::String | InputType::Number => {}
                _ => error("Options can only be used with string and number inputs".into()),
            }
        }
        if let Some(pattern) = &spec.regex {
            if spec.ty != InputType::String {
                error("RegEx validation can only be used with string inputs".into());
            } else if let Some(text) = v.as_str() {
                match Regex::new(pattern) {
                    Err(_) => error("invalid regular expression".into()),
                    Ok(re) if !re.is_match(text) => {
                        error(format!("{who} value does not match required RegEx pattern"));
                    }
                    Ok(_) => {}
                }
            }
        }
    };
    if let Some(default) = &spec.default {
        run(default, true);
    }
    if let Some(value) = value {
        run(value, false);
    }
}

/// Ruby equality as `Array#include?` uses it: `1 == 1.0`, but `"1" != 1`.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => false,
    }
}

/// `Some("a, b")` listing the keys not in `allowed`.
fn unknown_keys<'a>(keys: impl Iterator<Item = &'a Node>, allowed: &[&str]) -> Option<String> {
    let unknown: Vec<String> = keys
        .filter(|k| k.as_str().is_none_or(|k| !allowed.contains(&k)))
        .map(|k| k.scalar_string().unwrap_or_default().into_owned())
        .collect();
    (!unknown.is_empty()).then(|| unknown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn header(text: &str) -> Result<Header, Diagnostic> {
        parse_header(&doc(text))
    }

    fn run(spec: &str, given: &str) -> Result<BTreeMap<String, Node>, Vec<String>> {
        let h = header(&format!("spec:\n  inputs:\n{spec}")).unwrap();
        let given: Vec<(String, Node)> = doc(given)
            .as_map()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        resolve(&h.inputs, &given, Vec::new())
    }

    #[test]
    fn rule_57_inputs_without_default_are_required() {
        assert_eq!(
            run("    a:\n    b: {default: ''}\n", "{}").unwrap_err(),
            ["`a` input: required value has not been provided"]
        );
        let v = run("    a:\n    b: {default: ''}\n", "{a: x}").unwrap();
        assert_eq!(v["a"].as_str(), Some("x"));
        assert_eq!(v["b"].as_str(), Some(""));
    }

    #[test]
    fn rule_58_values_and_defaults_are_checked_against_type_options_and_regex() {
        assert_eq!(
            run("    a: {default: coop, options: [one, two]}\n", "{}").unwrap_err(),
            ["`a` input: `coop` cannot be used because it is not in the list of allowed options"]
        );
        assert_eq!(
            run(
                "    a: {type: number, default: 1, options: [1, 2]}\n",
                "{a: word}"
            )
            .unwrap_err(),
            [
                "`a` input: provided value is not a number",
                "`a` input: `word` cannot be used because it is not in the list of the allowed options"
            ]
        );
        assert_eq!(
            run("    a: {regex: '^v\\d+$'}\n", "{a: x1}").unwrap_err(),
            ["`a` input: provided value does not match required RegEx pattern"]
        );
        assert_eq!(
            run("    a: {type: boolean}\n", "{a: 'true'}").unwrap_err(),
            ["`a` input: provided value is not a boolean"]
        );
        assert_eq!(
            run("    a: {type: array, default: x}\n", "{}").unwrap_err(),
            ["`a` input: default value is not an array"]
        );
        assert_eq!(
            run("    a:\n", "{a: x, zz: 1, yy: 2}").unwrap_err()[0],
            "unknown input arguments: zz, yy"
        );
    }

    #[test]
    fn rule_59_types_are_string_number_boolean_array() {
        let v = run(
            "    s:\n    n: {type: number}\n    b: {type: boolean}\n    a: {type: array}\n",
            "{s: x, n: 1.5, b: false, a: [{if: $X}]}",
        )
        .unwrap();
        assert_eq!(v["n"].value, Value::Float(1.5));
        assert_eq!(v["b"].as_bool(), Some(false));
        assert_eq!(v["a"].as_seq().unwrap().len(), 1);
        assert_eq!(
            header("spec:\n  inputs:\n    d: {type: datetime}\n")
                .unwrap_err()
                .message,
            "header:spec:inputs:d input type unknown value: datetime"
        );
    }

    #[test]
    fn rule_60_options_are_limited_and_only_for_strings_and_numbers() {
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        let spec = format!(
            "spec:\n  inputs:\n    a: {{type: number, options: [{}]}}\n",
            many.join(", ")
        );
        assert_eq!(
            header(&spec).unwrap_err().message,
            "header:spec:inputs:a config cannot define more than 50 options"
        );
        assert_eq!(
            run(
                "    a: {type: boolean, default: true, options: [true, false]}\n",
                "{}"
            )
            .unwrap_err(),
            ["`a` input: Options can only be used with string and number inputs"]
        );
    }

    #[test]
    fn rule_61_regex_is_only_for_strings() {
        assert_eq!(
            run("    a: {type: number, regex: '^1$'}\n", "{a: 1}").unwrap_err(),
            ["`a` input: RegEx validation can only be used with string inputs",]
        );
    }

    #[test]
    fn rule_62_description_changes_nothing_and_header_keys_are_checked() {
        assert!(run("    a: {description: 'Some text', default: x}\n", "{}").is_ok());
        assert_eq!(
            header("spec:\n  arguments: {}\n").unwrap_err().message,
            "header:spec config contains unknown keys: arguments"
        );
        assert_eq!(
            header("spec:\n  inputs:\n    a: {Default: 1}\n")
                .unwrap_err()
                .message,
            "header:spec:inputs:a config contains unknown keys: default"
        );
    }
}
