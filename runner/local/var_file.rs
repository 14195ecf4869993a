//! `--var-file FILE`: variables kept out of the command line, the local
//! stand-in for a project's CI/CD settings.
//!
//! ```yaml
//! DEPLOY_ENV: staging              # a plain variable
//! API_TOKEN:                       # with GitLab's settings flags
//!   value: glpat-abcdefgh12345678
//!   masked: true
//! KUBECONFIG:
//!   value: |
//!     apiVersion: v1
//!   file: true
//! ```
//!
//! Variables from the file are project-level: above the YAML's, below
//! `--var`. Every variable from it is a secret in GitLab's sense (`public:
//! false`), so it never reaches service containers.

use std::path::Path;

use crate::ci::source::Sources;
use crate::ci::yaml::{Node, Value, parse_documents};
use crate::job::payload::JobVariable;

/// Reads `path`. Errors name the file, line and key.
pub fn read_var_file(path: &Path) -> Result<Vec<JobVariable>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_var_file(&path.display().to_string(), &text)
}

pub(crate) fn parse_var_file(name: &str, text: &str) -> Result<Vec<JobVariable>, String> {
    let mut sources = Sources::new();
    let id = sources.add(name.to_owned(), text.to_owned());
    let docs = parse_documents(text, id).map_err(|d| d.render(&sources).trim_end().to_owned())?;
    let Some(root) = docs.into_iter().next() else {
        return Ok(Vec::new());
    };
    let at = |node: &Node| format!("{name}:{}:{}", node.span.line, node.span.col);
    let map = match &root.value {
        Value::Map(map) => map,
        Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(format!(
                "{}: a variables file is a map of NAME: value",
                at(&root)
            ));
        }
    };
    let mut out = Vec::new();
    for (key, node) in map.iter() {
        let key = key.scalar_string().unwrap_or_default().into_owned();
        if !is_variable_name(&key) {
            return Err(format!(
                "{}: `{key}` is not a variable name (letters, digits and _)",
                at(node)
            ));
        }
        let mut var = JobVariable {
            key: key.clone(),
            ..JobVariable::default()
        };
        match &node.value {
            Value::Map(fields) => {
                for (field, value) in fields.iter() {
                    match field.scalar_string().unwrap_or_default().as_ref() {
                        "value" => var.value = scalar(value, &key, "value", &at)?,
                        "masked" => var.masked = flag(value, &key, "masked", &at)?,
                        "file" => var.file = flag(value, &key, "file", &at)?,
                        "raw" => var.raw = flag(value, &key, "raw", &at)?,
                        other => {
                            return Err(format!(
                                "{}: {key}: unknown key `{other}` (expected value, masked, file or raw)",
                                at(value)
                            ));
                        }
                    }
                }
            }
            _ => var.value = scalar(node, &key, "value", &at)?,
        }
        out.push(var);
    }
    Ok(out)
}

fn scalar(
    node: &Node,
    key: &str,
    field: &str,
    at: &dyn Fn(&Node) -> String,
) -> Result<String, String> {
    match &node.value {
        Value::Seq(_) | Value::Map(_) => Err(format!(
            "{}: {key}: `{field}` must be a string, number or boolean",
            at(node)
        )),
        Value::Null => Ok(String::new()),
        _ => Ok(node.scalar_string().unwrap_or_default().into_owned()),
    }
}

fn flag(node: &Node, key: &str, field: &str, at: &dyn Fn(&Node) -> String) -> Result<bool, String> {
    match &node.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(format!(
            "{}: {key}: `{field}` must be true or false",
            at(node)
        )),
    }
}

fn is_variable_name(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_flagged_variables() {
        let vars = parse_var_file(
            "vars.yml",
            "A: 1\nTOKEN:\n  value: s3cr3t-value\n  masked: true\nKEY:\n  value: |\n    line\n  file: true\n",
        )
        .unwrap();
        assert_eq!(vars.len(), 3);
        assert_eq!((vars[0].key.as_str(), vars[0].value.as_str()), ("A", "1"));
        assert!(!vars[0].public && !vars[0].masked);
        assert!(vars[1].masked && vars[1].value == "s3cr3t-value");
        assert!(vars[2].file && vars[2].value == "line\n");
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let err =
            parse_var_file("vars.yml", "A: 1\nB:\n  value: x\n  masked: maybe\n").unwrap_err();
        assert_eq!(err, "vars.yml:4:11: B: `masked` must be true or false");
        let err = parse_var_file("vars.yml", "A:\n  valu: x\n").unwrap_err();
        assert!(
            err.starts_with("vars.yml:2:9: A: unknown key `valu`"),
            "{err}"
        );
        let err = parse_var_file("vars.yml", "- a\n").unwrap_err();
        assert!(err.starts_with("vars.yml:1:1: "), "{err}");
        let err = parse_var_file("vars.yml", "A: [1]\n").unwrap_err();
        assert!(err.contains("A: `value` must be"), "{err}");
        let err = parse_var_file("vars.yml", "A: 'x\n").unwrap_err();
        assert!(err.contains("vars.yml"), "{err}");
    }

    #[test]
    fn an_empty_file_has_no_variables() {
        assert!(parse_var_file("v.yml", "").unwrap().is_empty());
        assert!(parse_var_file("v.yml", "# nothing\n").unwrap().is_empty());
    }
}
