//! Reading the `include:` value into entries and, after `rules`, into the
//! files to fetch (rules 38, 39, 48, 50, 51).
//!
//! GitLab's order is kept: short string forms have their variables
//! expanded before deciding local or remote, `rules` filter whole entries,
//! then `project` file lists and `local` wildcards are expanded, and only
//! then the remaining values have their variables expanded.

use std::collections::BTreeMap;

use super::vars::{Unknown, expand};
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node, Value};

/// Keys GitLab accepts in an include hash.
const ALLOWED_KEYS: &[&str] = &[
    "local",
    "file",
    "remote",
    "project",
    "ref",
    "integrity",
    "template",
    "artifact",
    "inputs",
    "job",
    "rules",
    "component",
];

/// The include kinds, in GitLab's order for its messages.
const SUBKEYS: &str = "`local`, `project`, `remote`, `template`, `artifact`, `component`";

/// One file an include resolves to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Target {
    /// A path in the current project, leading `/` removed.
    Local(String),
    /// A `local` path with `*` in it, to match against the project tree.
    LocalGlob(String),
    Remote {
        url: String,
        integrity: Option<String>,
    },
    Project {
        project: String,
        git_ref: String,
        file: String,
    },
    Template(String),
    Component(String),
}

/// A file to include, where it was asked for, and its inputs.
#[derive(Clone, Debug)]
pub(crate) struct IncludeFile {
    pub target: Target,
    pub span: Span,
    pub inputs: Option<Node>,
}

/// Splits the `include:` value into entry hashes, turning short string
/// forms into `{local: ...}` or `{remote: ...}`.
pub(crate) fn entries(
    include: &Node,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<Node>, Diagnostic> {
    let items: Vec<&Node> = match &include.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items.iter().filter(|i| !i.is_null()).collect(),
        _ => vec![include],
    };
    items
        .into_iter()
        .map(|item| match &item.value {
            Value::Str(s) => {
                let location = expand(s, vars, Unknown::Blank);
                let key = if is_url(&location) { "remote" } else { "local" };
                let mut map = Mapping::new();
                map.insert_str(key, Node::string(location, item.span));
                Ok(Node::map(map, item.span))
            }
            Value::Map(_) => Ok(item.clone()),
            _ => Err(Diagnostic::config(
                item.span,
                "Each include must be a hash or a string",
            )),
        })
        .collect()
}

/// Checks an entry hash the way GitLab's include entry and file matcher
/// do.
pub(crate) fn check(entry: &Node) -> Result<(), Diagnostic> {
    let Some(map) = entry.as_map() else {
        return Err(Diagnostic::config(
            entry.span,
            "Each include must be a hash or a string",
        ));
    };
    let unknown: Vec<String> = map
        .iter()
        .filter(|(k, _)| k.as_str().is_none_or(|k| !ALLOWED_KEYS.contains(&k)))
        .map(|(k, _)| {
            k.scalar_string()
                .map(|s| s.into_owned())
                .unwrap_or_default()
        })
        .collect();
    if !unknown.is_empty() {
        return Err(Diagnostic::config(
            entry.span,
            // Entry messages are lower-cased whole by GitLab.
            format!(
                "include config contains unknown keys: {}",
                unknown.join(", ")
            )
            .to_lowercase(),
        ));
    }
    let present = |key: &str| map.get(key).is_some_and(is_present);
    if map.contains_key("project") && !present("file") {
        return Err(Diagnostic::config(
            entry.span,
            "include config must specify the file where to fetch the config from",
        ));
    }
    let kinds = [
        "local",
        "project",
        "remote",
        "template",
        "artifact",
        "component",
    ]
    .iter()
    .filter(|k| {
        if **k == "project" {
            present("project") && present("file")
        } else {
            present(k)
        }
    })
    .count();
    if kinds == 0 {
        return Err(Diagnostic::config(
            entry.span,
            format!(
                "`{}` does not have a valid subkey for include. Valid subkeys are: {SUBKEYS}",
                to_json(entry)
            ),
        ));
    }
    if kinds > 1 {
        return Err(Diagnostic::config(
            entry.span,
            format!("Each include must use only one of: {SUBKEYS}"),
        ));
    }
    if present("artifact") {
        return Err(Diagnostic::config(
            entry.span,
            "Including configs from artifacts is only allowed when triggering child pipelines",
        ));
    }
    if let Some(integrity) = map.get("integrity").filter(|n| !n.is_null()) {
        check_integrity(integrity, present("remote"))?;
    }
    Ok(())
}

fn check_integrity(node: &Node, remote: bool) -> Result<(), Diagnostic> {
    let err = |msg: &str| {
        Err(Diagnostic::config(
            node.span,
            format!("include config {msg}"),
        ))
    };
    if !remote {
        return err("integrity can only be specified for remote includes");
    }
    let Some(hash) = node.as_str().and_then(|s| s.strip_prefix("sha256-")) else {
        return err("integrity hash must start with 'sha256-'");
    };
    if super::remote::base64_decode(hash).is_none() {
        return err("integrity hash must be base64 encoded");
    }
    Ok(())
}

/// The files a checked entry stands for, with variables expanded. Each
/// item fails on its own, as GitLab validates each file separately.
pub(crate) fn files(
    entry: &Node,
    vars: &BTreeMap<String, String>,
) -> Vec<Result<IncludeFile, Diagnostic>> {
    let Some(map) = entry.as_map() else {
        return Vec::new();
    };
    let inputs = map.get("inputs").filter(|n| !n.is_null()).cloned();
    let file = |target: Target, inputs: Option<Node>| {
        Ok(IncludeFile {
            target,
            span: entry.span,
            inputs,
        })
    };
    let string = |node: &Node| -> Result<String, Diagnostic> {
        match node.scalar_string() {
            Some(s) if node.is_scalar() && !node.is_null() => Ok(expand(&s, vars, Unknown::Blank)),
            _ => Err(Diagnostic::config(
                node.span,
                format!("Included file `{}` needs to be a string", to_json(node)),
            )),
        }
    };
    if let Some(local) = map.get("local") {
        let Some(path) = local.as_str() else {
            return vec![Err(not_a_string(local))];
        };
        // GitLab matches wildcards before expanding variables.
        if path.contains('*') {
            return vec![file(
                Target::LocalGlob(path.trim_start_matches('/').to_string()),
                None,
            )];
        }
        let path = expand(path, vars, Unknown::Blank);
        return vec![file(
            Target::Local(path.trim_start_matches('/').to_string()),
            inputs,
        )];
    }
    if let Some(url) = map.get("remote") {
        let Some(url) = url.as_str() else {
            return vec![Err(not_a_string(url))];
        };
        let integrity = map
            .get("integrity")
            .and_then(Node::as_str)
            .map(String::from);
        let url = expand(url, vars, Unknown::Blank);
        return vec![file(Target::Remote { url, integrity }, inputs)];
    }
    if let Some(name) = map.get("template") {
        return vec![
            string(name)
                .map(Target::Template)
                .and_then(|t| file(t, inputs)),
        ];
    }
    if let Some(address) = map.get("component") {
        return vec![
            string(address)
                .map(Target::Component)
                .and_then(|t| file(t, inputs)),
        ];
    }
    let Some(project_node) = map.get("project") else {
        return Vec::new();
    };
    // A list of projects is an old form; GitLab uses the first one.
    let project_node = project_node
        .as_seq()
        .and_then(|s| s.first())
        .unwrap_or(project_node);
    let project = match string(project_node) {
        Ok(p) => p,
        Err(e) => return vec![Err(e)],
    };
    let git_ref = match map.get("ref").filter(|r| !r.is_null()) {
        Some(r) => match string(r) {
            Ok(r) => r,
            Err(e) => return vec![Err(e)],
        },
        None => "HEAD".to_string(),
    };
    let file_nodes: Vec<&Node> = match map.get("file") {
        Some(Node {
            value: Value::Seq(items),
            ..
        }) => items.iter().collect(),
        Some(node) => vec![node],
        None => Vec::new(),
    };
    file_nodes
        .into_iter()
        .map(|f| match f.as_str() {
            Some(path) => file(
                Target::Project {
                    project: project.clone(),
                    git_ref: git_ref.clone(),
                    file: expand(path, vars, Unknown::Blank)
                        .trim_start_matches('/')
                        .to_string(),
                },
                inputs.clone(),
            ),
            None => Err(not_a_string(f)),
        })
        .collect()
}

fn not_a_string(node: &Node) -> Diagnostic {
    Diagnostic::config(
        node.span,
        format!("Included file `{}` needs to be a string", to_json(node)),
    )
}

/// Whether a path ends in `.yml` or `.yaml` (any case) after a non-empty
/// base name.
pub(crate) fn has_yaml_extension(location: &str) -> bool {
    let base = location.rsplit('/').next().unwrap_or(location);
    let lower = base.to_ascii_lowercase();
    [".yml", ".yaml"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// GitLab's URL test for short include strings: `http`, `https`, `ssh`
/// or `git` schemes.
pub(crate) fn is_url(s: &str) -> bool {
    let s = s.trim();
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    ["http", "https", "ssh", "git"].contains(&scheme.to_ascii_lowercase().as_str())
        && !rest.is_empty()
}

/// Ruby's `present?`: not null, not false, not an empty or blank string,
/// not an empty list or hash.
fn is_present(node: &Node) -> bool {
    match &node.value {
        Value::Null | Value::Bool(false) => false,
        Value::Str(s) => !s.trim().is_empty(),
        Value::Seq(items) => !items.is_empty(),
        Value::Map(map) => !map.is_empty(),
        _ => true,
    }
}

/// A node as compact JSON, the way GitLab prints an include in messages.
pub(crate) fn to_json(node: &Node) -> String {
    fn value(node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Value::from(*f),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(value).collect()),
            Value::Map(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (k.scalar_string().unwrap_or_default().into_owned(), value(v)))
                    .collect(),
            ),
        }
    }
    match &node.value {
        Value::Str(s) => s.clone(),
        _ => value(node).to_string(),
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

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([("HOST".to_string(), "example.com".to_string())])
    }

    fn targets(text: &str) -> Vec<Target> {
        let include = doc(text);
        entries(&include, &vars())
            .unwrap()
            .iter()
            .flat_map(|e| {
                check(e).unwrap();
                files(e, &vars())
            })
            .map(|f| f.unwrap().target)
            .collect()
    }

    #[test]
    fn rule_39_short_forms_are_local_or_remote() {
        assert_eq!(
            targets("['/a.yml', 'https://$HOST/b.yml', {template: T.gitlab-ci.yml}]"),
            [
                Target::Local("a.yml".into()),
                Target::Remote {
                    url: "https://example.com/b.yml".into(),
                    integrity: None
                },
                Target::Template("T.gitlab-ci.yml".into()),
            ]
        );
        assert_eq!(targets("ci/x.yml"), [Target::Local("ci/x.yml".into())]);
    }

    #[test]
    fn rule_48_project_files_share_one_entry_and_ref_defaults_to_head() {
        assert_eq!(
            targets("- project: Group/Proj\n  file: [/a.yml, b.yml]\n"),
            [
                Target::Project {
                    project: "Group/Proj".into(),
                    git_ref: "HEAD".into(),
                    file: "a.yml".into()
                },
                Target::Project {
                    project: "Group/Proj".into(),
                    git_ref: "HEAD".into(),
                    file: "b.yml".into()
                },
            ]
        );
    }

    #[test]
    fn rule_38_entries_need_exactly_one_kind() {
        let e = doc("{invalid: file.yml}");
        assert_eq!(
            check(&e).unwrap_err().message,
            "include config contains unknown keys: invalid"
        );
        let e = doc("{inputs: {a: 1}}");
        assert_eq!(
            check(&e).unwrap_err().message,
            "`{\"inputs\":{\"a\":1}}` does not have a valid subkey for include. Valid subkeys are: \
             `local`, `project`, `remote`, `template`, `artifact`, `component`"
        );
        let e = doc("{local: a.yml, remote: 'https://x/b.yml'}");
        assert!(
            check(&e)
                .unwrap_err()
                .message
                .starts_with("Each include must use only one of")
        );
        let e = doc("{project: a/b}");
        assert_eq!(
            check(&e).unwrap_err().message,
            "include config must specify the file where to fetch the config from"
        );
        let include = doc("[a.yml, 42]");
        assert_eq!(
            entries(&include, &vars()).unwrap_err().message,
            "Each include must be a hash or a string"
        );
    }

    #[test]
    fn integrity_is_only_for_remote_and_must_be_sha256_base64() {
        let e = doc("{local: a.yml, integrity: 'sha256-AAAA'}");
        assert_eq!(
            check(&e).unwrap_err().message,
            "include config integrity can only be specified for remote includes"
        );
        let e = doc("{remote: 'https://x/a.yml', integrity: 'md5-AAAA'}");
        assert_eq!(
            check(&e).unwrap_err().message,
            "include config integrity hash must start with 'sha256-'"
        );
    }

    #[test]
    fn yaml_extension_check() {
        assert!(has_yaml_extension("a/b.YML"));
        assert!(has_yaml_extension("b.yaml"));
        assert!(!has_yaml_extension("a/.yml"));
        assert!(!has_yaml_extension("https://x/b.yml?x=1"));
    }
}
