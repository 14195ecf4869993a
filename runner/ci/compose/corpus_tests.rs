//! The three passes over every real configuration in the corpus.
//!
//! Many corpus files are fragments included by others, so their `extends`
//! and `!reference` may name jobs defined elsewhere. A file is
//! self-contained when every name it extends and every job it references is
//! one of its own top-level keys; those must go through all three passes
//! without error and without a reference left over. The others may only
//! fail with "unknown keys in `extends`" or "could not be found".

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{apply_defaults, resolve_extends, resolve_references};
use crate::ci::diag::Diagnostics;
use crate::ci::merge::deep_merge;
use crate::ci::source::{SourceId, Span};
use crate::ci::test_corpus;
use crate::ci::yaml::{Mapping, Node, Value, parse_documents};

/// Every `extends` name, and the first element of every `!reference` path.
fn names_used(node: &Node, extends: &mut Vec<String>, refs: &mut Vec<String>) {
    if node.is_reference() {
        if let Some(first) = node.as_seq().and_then(|s| s.first()).and_then(Node::as_str) {
            refs.push(first.to_string());
        }
        return;
    }
    match &node.value {
        Value::Map(map) => {
            for (k, v) in map.iter() {
                if k.as_str() == Some("extends") {
                    match &v.value {
                        Value::Str(s) => extends.push(s.clone()),
                        Value::Seq(items) => extends
                            .extend(items.iter().filter_map(|i| i.as_str().map(String::from))),
                        _ => {}
                    }
                }
                names_used(v, extends, refs);
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| names_used(i, extends, refs)),
        _ => {}
    }
}

fn count_references(node: &Node) -> usize {
    if node.is_reference() {
        return 1;
    }
    match &node.value {
        Value::Map(map) => map.iter().map(|(_, v)| count_references(v)).sum(),
        Value::Seq(items) => items.iter().map(count_references).sum(),
        _ => 0,
    }
}

/// Every name used is defined here, and not by a stand-in from `foreign`.
fn is_self_contained(root: &Mapping, node: &Node, foreign: &[String]) -> bool {
    let (mut extends, mut refs) = (Vec::new(), Vec::new());
    names_used(node, &mut extends, &mut refs);
    extends
        .iter()
        .chain(&refs)
        .all(|n| root.contains_key(n) && !foreign.contains(n))
}

/// How one configuration went through the three passes.
enum Outcome {
    Composed { references: bool },
    NeedsOtherFiles,
}

/// Runs the passes on one root and checks the result as the module doc says.
fn compose(name: &str, mut root: Node, foreign: &[String]) -> Outcome {
    let Some(map) = root.as_map() else {
        return Outcome::NeedsOtherFiles;
    };
    let self_contained = is_self_contained(map, &root, foreign);
    let references = count_references(&root) > 0;
    let outcome: Result<(), Diagnostics> = resolve_extends(&mut root)
        .and_then(|()| resolve_references(&mut root))
        .and_then(|()| apply_defaults(&mut root));
    match outcome {
        Ok(()) => {
            assert_eq!(
                count_references(&root),
                0,
                "{name}: a reference was left unresolved"
            );
            Outcome::Composed { references }
        }
        Err(diags) => {
            let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
            assert!(
                !self_contained,
                "{name}: self-contained file failed: {messages:?}"
            );
            assert!(
                messages
                    .iter()
                    .all(|m| m.contains("unknown keys in `extends`")
                        || m.ends_with("could not be found")),
                "{name}: unexpected errors: {messages:?}"
            );
            if std::env::var_os("CORPUS_VERBOSE").is_some() {
                println!("{name}: {messages:?}");
            }
            Outcome::NeedsOtherFiles
        }
    }
}

fn last_document(path: &Path) -> Option<Node> {
    let text = std::fs::read_to_string(path).ok()?;
    parse_documents(&text, SourceId(1)).ok()?.pop()
}

fn corpus_files() -> (PathBuf, Vec<PathBuf>) {
    let dir = test_corpus::dir();
    assert!(
        dir.is_dir(),
        "no YAML file in the corpus at {}",
        dir.display()
    );
    let files = test_corpus::yaml_files(&dir);
    assert!(!files.is_empty());
    (dir, files)
}

#[test]
fn corpus_files_compose() {
    let (_, files) = corpus_files();
    let (mut composed, mut with_refs, mut fragments, mut unparsed) = (0, 0, 0, 0);
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for path in &files {
        let Some(root) = last_document(path) else {
            unparsed += 1;
            continue;
        };
        let started = Instant::now();
        match compose(&path.display().to_string(), root, &[]) {
            Outcome::Composed { references } => {
                composed += 1;
                with_refs += usize::from(references);
            }
            Outcome::NeedsOtherFiles => fragments += 1,
        }
        if started.elapsed() > slowest.0 {
            slowest = (started.elapsed(), path.clone());
        }
    }
    println!(
        "corpus files: {} files, {composed} composed ({with_refs} with references), \
         {fragments} need other files, {unparsed} not parsed; slowest {:?} ({})",
        files.len(),
        slowest.0,
        slowest.1.display()
    );
    assert!(composed > files.len() / 2);
}

/// Each repository's files deep-merged into one configuration, a rough
/// stand-in for its includes, so references across files are exercised.
/// Templates from outside the corpus (remote includes, components) that
/// are only extended get an empty stand-in.
#[test]
fn corpus_repositories_compose() {
    let (dir, files) = corpus_files();
    let mut repos: Vec<(String, Node)> = Vec::new();
    for path in &files {
        let Ok(relative) = path.strip_prefix(&dir) else {
            continue;
        };
        let Some(repo) = relative.components().next() else {
            continue;
        };
        let repo = repo.as_os_str().to_string_lossy().into_owned();
        let Some(root) = last_document(path).filter(|r| r.as_map().is_some()) else {
            continue;
        };
        match repos.last_mut() {
            Some((name, merged)) if *name == repo => deep_merge(merged, root),
            _ => repos.push((repo, root)),
        }
    }
    let (mut composed, mut with_refs) = (0, 0);
    for (repo, mut root) in repos.iter().cloned() {
        let (mut extends, mut refs) = (Vec::new(), Vec::new());
        names_used(&root, &mut extends, &mut refs);
        let mut foreign = Vec::new();
        if let Some(map) = root.as_map_mut() {
            for name in extends {
                if !map.contains_key(&name) {
                    map.insert_str(&name, Node::map(Mapping::new(), Span::synthetic()));
                    foreign.push(name);
                }
            }
        }
        if let Outcome::Composed { references } = compose(&repo, root, &foreign) {
            composed += 1;
            with_refs += usize::from(references);
        }
    }
    println!(
        "corpus repositories: {} merged, {composed} composed ({with_refs} with references)",
        repos.len()
    );
    assert!(composed > repos.len() / 2);
}

fn flat_strings(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items.iter().flat_map(flat_strings).collect(),
        _ => vec![node.scalar_string().unwrap_or_default().into_owned()],
    }
}

fn job<'a>(root: &'a Node, name: &str) -> &'a Mapping {
    root.as_map()
        .and_then(|m| m.get(name))
        .and_then(Node::as_map)
        .unwrap()
}

#[test]
fn rule_165_gitlab_ci_local_reference_fixture() {
    let (dir, _) = corpus_files();
    let path = dir.join("firecow__gitlab-ci-local/tests/test-cases/reference/.gitlab-ci.yml");
    let mut root = last_document(&path).unwrap();
    // `.setup` comes from the fixture's included base file.
    let base = "\n.setup:\n  variables: {MYVAR: from-setup}\n  script: [echo setup]\n";
    let mut extra = parse_documents(base, SourceId(2)).unwrap().remove(0);
    std::mem::swap(&mut root, &mut extra);
    deep_merge(&mut root, extra);
    resolve_extends(&mut root).unwrap();
    resolve_references(&mut root).unwrap();
    let test_job = job(&root, "test-job");
    assert_eq!(
        test_job
            .get("variables")
            .and_then(|v| v.as_map())
            .and_then(|v| v.get("MYVAR"))
            .and_then(Node::as_str),
        Some("from-setup")
    );
    assert_eq!(
        flat_strings(test_job.get("script").unwrap()),
        ["echo setup", "echo \"array root\"", "echo ${MYVAR}"]
    );
    assert_eq!(
        flat_strings(job(&root, "issue-909").get("script").unwrap()),
        ["echo TEST"]
    );
}

#[test]
fn rule_32_gitlab_ci_local_inherit_fixture() {
    let (dir, _) = corpus_files();
    let path = dir
        .join("firecow__gitlab-ci-local/tests/test-cases/inherit/.gitlab-ci-inherit-default.yml");
    let mut root = last_document(&path).unwrap();
    apply_defaults(&mut root).unwrap();
    let all = job(&root, "inherit-default-true");
    assert!(all.contains_key("image") && all.contains_key("after_script"));
    let none = job(&root, "inherit-default-false");
    assert!(!none.contains_key("image") && !none.contains_key("before_script"));
    let some = job(&root, "inherit-default-before_script_and_image");
    assert!(some.contains_key("image") && some.contains_key("before_script"));
    assert!(!some.contains_key("after_script"));
}
