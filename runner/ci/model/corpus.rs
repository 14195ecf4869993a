//! The keyword decoders against real configurations that GitLab accepted:
//! every `artifacts`, `cache`, `image`, `services`, `environment`,
//! `release`, `secrets`, `id_tokens`, `hooks`, `identity` and `pages`
//! value in the corpus must decode without an error.

use super::artifacts::decode_artifacts;
use super::cache::decode_cache;
use super::decode::Decoder;
use super::environment::decode_environment;
use super::extras::{
    decode_hooks, decode_id_tokens, decode_identity, decode_pages, decode_secrets,
};
use super::image::{decode_image, decode_services};
use super::release::decode_release;
use crate::ci::merge::deep_merge;
use crate::ci::source::SourceId;
use crate::ci::test_corpus;
use crate::ci::yaml::{Mapping, Node, Value, parse_documents};

/// Top-level keys that are not jobs.
const GLOBAL_KEYS: &[&str] = &[
    "stages",
    "types",
    "variables",
    "include",
    "workflow",
    "spec",
    "before_script",
    "after_script",
    "image",
    "services",
    "cache",
    "default",
];

/// True when a value is not final yet: it holds an unresolved `!reference`
/// or a `$[[ inputs.x ]]` interpolation of a component template.
fn unresolved(node: &Node) -> bool {
    node.is_reference()
        || match &node.value {
            Value::Str(s) => s.contains("$[["),
            Value::Seq(items) => items.iter().any(unresolved),
            Value::Map(map) => map.iter().any(|(k, v)| unresolved(k) || unresolved(v)),
            _ => false,
        }
}

/// The job with its `extends` parents merged in, as GitLab does before
/// validating it. `None` when a parent lives in another file.
fn resolve_extends(top: &Mapping, job: &Node, depth: usize) -> Option<Node> {
    let Some(parents) = job.as_map().and_then(|m| m.get("extends")) else {
        return Some(job.clone());
    };
    if depth > 11 {
        return None;
    }
    let names: Vec<&str> = match &parents.value {
        Value::Str(s) => vec![s.as_str()],
        Value::Seq(items) => items.iter().filter_map(|i| i.as_str()).collect(),
        _ => return None,
    };
    let mut merged: Option<Node> = None;
    for name in names {
        let parent = resolve_extends(top, top.get(name)?, depth + 1)?;
        match &mut merged {
            Some(base) => deep_merge(base, parent),
            None => merged = Some(parent),
        }
    }
    let mut merged = merged?;
    deep_merge(&mut merged, job.clone());
    Some(merged)
}

/// Decodes one keyword value the way the job model does.
fn decode_keyword(d: &mut Decoder, key: &str, value: &Node, path: &str) -> bool {
    match key {
        "artifacts" => decode_artifacts(d, value, path).is_some(),
        "cache" => decode_cache(d, value, path).is_some(),
        "image" => decode_image(d, value, path).is_some(),
        "services" => decode_services(d, value, path).is_some(),
        "environment" => decode_environment(d, value, path).is_some(),
        "release" => decode_release(d, value, path).is_some(),
        "secrets" => decode_secrets(d, value, path).is_some(),
        "id_tokens" => decode_id_tokens(d, value, path).is_some(),
        "hooks" => decode_hooks(d, value, path).is_some(),
        "identity" => decode_identity(d, value, path).is_some(),
        "pages" => decode_pages(d, value, path).is_some(),
        _ => true,
    }
}

const JOB_KEYS: &[&str] = &[
    "artifacts",
    "cache",
    "image",
    "services",
    "environment",
    "release",
    "secrets",
    "id_tokens",
    "hooks",
    "identity",
    "pages",
];
const DEFAULT_KEYS: &[&str] = &[
    "artifacts",
    "cache",
    "image",
    "services",
    "hooks",
    "id_tokens",
    "identity",
];
const GLOBAL_DEPRECATED: &[&str] = &["image", "services", "cache"];

/// Decodes the keywords of one hash (a job, `default`, or the top level).
fn decode_section(d: &mut Decoder, section: &Node, prefix: &str, keys: &[&str]) -> usize {
    let Some(map) = section.as_map() else {
        return 0;
    };
    let mut decoded = 0;
    for key in keys {
        let Some(value) = map.get(key) else { continue };
        // A null value is "not specified" to GitLab; unresolved
        // `!reference` tags are resolved before decoding.
        if value.is_null() || unresolved(value) {
            continue;
        }
        let path = if prefix.is_empty() {
            (*key).to_string()
        } else {
            format!("{prefix}:{key}")
        };
        decode_keyword(d, key, value, &path);
        decoded += 1;
    }
    decoded
}

#[test]
fn real_corpus_keywords_decode_without_errors() {
    let files = test_corpus::yaml_files(&test_corpus::dir());
    assert!(
        files.len() >= 150,
        "corpus not found at {}",
        test_corpus::dir().display()
    );

    let mut failures = Vec::new();
    let mut decoded = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(mut docs) = parse_documents(&text, SourceId(1)) else {
            continue;
        };
        let Some(root) = docs.pop() else { continue };
        let Some(top) = root.as_map() else { continue };
        let mut d = Decoder::new();
        decoded += decode_section(&mut d, &root, "", GLOBAL_DEPRECATED);
        if let Some(default) = top.get("default") {
            decoded += decode_section(&mut d, default, "default", DEFAULT_KEYS);
        }
        for (key, job) in top.iter() {
            let Some(name) = key.as_str() else { continue };
            // Hidden jobs are templates: GitLab does not validate them.
            if GLOBAL_KEYS.contains(&name) || name.starts_with('.') {
                continue;
            }
            let Some(job) = resolve_extends(top, job, 0) else {
                continue;
            };
            decoded += decode_section(&mut d, &job, &format!("jobs:{name}"), JOB_KEYS);
        }
        for diag in d.diags.iter() {
            failures.push(format!(
                "{}:{}: {}",
                file.display(),
                diag.span.line,
                diag.message
            ));
        }
    }
    assert!(decoded > 500, "only {decoded} values decoded");
    assert!(
        failures.is_empty(),
        "{} errors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
