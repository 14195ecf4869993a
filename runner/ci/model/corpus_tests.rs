//! The real corpus: every file, composed as far as it can be without its
//! includes, decodes without errors.

use super::pipeline::decode_pipeline;
use crate::ci::compose;
use crate::ci::source::SourceId;
use crate::ci::yaml::{Mapping, Node, Value, parse_documents};

fn to_s(node: &Node) -> String {
    node.scalar_string()
        .map(|s| s.into_owned())
        .unwrap_or_default()
}

/// Whether a value needs the loader: an `extends` to resolve or a
/// `!reference` to replace.
fn uses_loader(node: &Node) -> bool {
    if node.is_reference() {
        return true;
    }
    match &node.value {
        Value::Seq(items) => items.iter().any(uses_loader),
        Value::Map(map) => map
            .iter()
            .any(|(k, v)| k.as_str() == Some("extends") || uses_loader(v)),
        _ => false,
    }
}

/// GitLab's composition steps (`extends`, `!reference`, `default`), or
/// `None` when they fail, as they do when a parent is in an included file.
fn composed(root: &Node) -> Option<Node> {
    let mut root = root.clone();
    compose::resolve_extends(&mut root).ok()?;
    compose::resolve_references(&mut root).ok()?;
    compose::apply_defaults(&mut root).ok()?;
    Some(root)
}

/// A corpus file as this module can judge it alone, and whether it is
/// whole. `include` is dropped; then the file is composed, or, when that
/// needs an included file, the entries that need the composer (`extends`,
/// `!reference`) are dropped too. `None` for files with `spec:` inputs.
fn judgeable(text: &str, docs: &[Node]) -> Option<(Node, bool)> {
    if text.contains("$[[") || docs.len() != 1 {
        return None;
    }
    let root = &docs[0];
    let map = root.as_map()?;
    let mut complete = !map.contains_key("include");
    let mut kept: Mapping = map
        .iter()
        .filter(|(k, _)| k.as_str() != Some("include"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match composed(&Node::map(kept.clone(), root.span)) {
        Some(node) => kept = node.as_map()?.clone(),
        None => {
            complete = false;
            kept = kept
                .iter()
                .filter(|(_, v)| !uses_loader(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
    }
    if !complete {
        // With included files gone, a job that only overrides an
        // included job's keys (no `script`, `run` or `trigger` of its
        // own) cannot be judged.
        let overrides = |v: &Node| {
            v.as_map().is_some_and(|m| {
                !["script", "run", "trigger"]
                    .iter()
                    .any(|k| m.contains_key(k))
            })
        };
        let partial: Vec<String> = kept
            .iter()
            .filter(|(k, v)| {
                let name = to_s(k);
                !name.starts_with('.') && !compose::is_global_keyword(&name) && overrides(v)
            })
            .map(|(k, _)| to_s(k))
            .collect();
        for name in partial {
            kept.remove(&name);
        }
    }
    Some((Node::map(kept, root.span), complete))
}

/// Messages of the checks across jobs, which an included fragment
/// cannot pass alone (its stages and jobs are in other files).
fn is_cross_job(message: &str) -> bool {
    message.contains(" job: ")
        || message.starts_with("The pipeline has circular")
        || message.contains("has the following needs duplicated")
        || message == "jobs config should contain at least one visible job"
}

/// Every real corpus file, decoded with only the keys this module can
/// judge alone, gives no error. A complete root `.gitlab-ci.yml` must
/// also pass the checks across jobs.
#[test]
fn real_corpus_decodes_without_errors() {
    let dir = crate::ci::test_corpus::dir();
    let mut checked = 0;
    let mut jobs = 0;
    let mut failures = Vec::new();
    for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let Ok(docs) = parse_documents(&text, SourceId(1)) else {
            continue;
        };
        let Some((root, complete)) = judgeable(&text, &docs) else {
            continue;
        };
        let rel = entry.path().strip_prefix(&dir).unwrap();
        let is_root_file = rel.components().count() == 2 && rel.ends_with(".gitlab-ci.yml");
        checked += 1;
        let diags = match decode_pipeline(&root) {
            Ok(pipeline) => {
                jobs += pipeline.jobs.len();
                continue;
            }
            Err(diags) => diags,
        };
        for diag in diags.iter() {
            if !(complete && is_root_file) && is_cross_job(&diag.message) {
                continue;
            }
            failures.push(format!(
                "{}:{}: {}",
                rel.display(),
                diag.span.line,
                diag.message
            ));
        }
    }
    eprintln!("{checked} corpus files, {jobs} jobs decoded");
    assert!(checked > 150, "only {checked} corpus files checked");
    assert!(
        failures.is_empty(),
        "{} ({jobs} jobs ok)",
        failures.join("\n")
    );
}
