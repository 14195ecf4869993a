//! Every real-world pipeline in the corpus must load as GitLab loads it.
//!
//! A file is linted as the root of its project folder. It must either be
//! valid, or fail only because an include points outside the corpus
//! (`remote`, `project`, `template`, `component`: no network here), with an
//! error naming that include. A file that is only a fragment (for example a
//! template that `!reference`s jobs defined by the file including it) counts
//! as checked when a passing root pipeline included it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use runner::ci::diag::DiagnosticKind;
use runner::ci::load::{LoadOptions, load};

use crate::support::corpus_dir;

#[derive(Debug, PartialEq)]
enum Verdict {
    Valid,
    IncludeUnreachable,
    Invalid(String),
}

fn corpus_files() -> Vec<(PathBuf, String)> {
    let root = corpus_dir();
    let mut files = Vec::new();
    for project in std::fs::read_dir(&root).expect("corpus folder beside the project") {
        let project = project.unwrap().path();
        if !project.is_dir() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&project) {
            let entry = entry.unwrap();
            let is_yaml = entry.path().extension().is_some_and(|e| e == "yml" || e == "yaml");
            if entry.file_type().is_file() && is_yaml {
                let rel = entry.path().strip_prefix(&project).unwrap().to_string_lossy().into_owned();
                files.push((project.clone(), rel));
            }
        }
    }
    files.sort();
    files
}

fn lint(project: &Path, rel: &str, cache: &Path) -> (Verdict, Vec<String>) {
    let mut opts = LoadOptions::new(project.to_path_buf(), PathBuf::from(rel));
    opts.offline = true;
    opts.cache_dir = cache.to_path_buf();
    match load(&opts) {
        Ok(loaded) => (Verdict::Valid, loaded.sources.names()),
        Err(failure) => {
            let names = failure.sources.names();
            let diags = &failure.diagnostics;
            if diags.iter().all(|d| d.kind == DiagnosticKind::IncludeUnreachable) && !diags.is_empty() {
                (Verdict::IncludeUnreachable, names)
            } else {
                let text: Vec<String> = diags.iter().map(|d| d.render(&failure.sources)).collect();
                (Verdict::Invalid(text.join("\n")), names)
            }
        }
    }
}

#[test]
fn every_corpus_pipeline_lints_as_gitlab_would() {
    let cache = tempfile::tempdir().unwrap();
    let files = corpus_files();
    assert_eq!(files.len(), 199, "the corpus has 199 files");

    let mut verdicts = BTreeMap::new();
    // Files loaded (as includes) by a root that passed.
    let mut covered: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    for (project, rel) in &files {
        let (verdict, loaded) = lint(project, rel, cache.path());
        if !matches!(verdict, Verdict::Invalid(_)) {
            for name in loaded {
                covered.insert((project.clone(), name));
            }
        }
        verdicts.insert((project.clone(), rel.clone()), verdict);
    }

    let mut valid = 0;
    let mut unreachable = 0;
    let mut fragments = 0;
    let mut failures = Vec::new();
    for (key, verdict) in &verdicts {
        match verdict {
            Verdict::Valid => valid += 1,
            Verdict::IncludeUnreachable => unreachable += 1,
            Verdict::Invalid(_) if covered.contains(key) => fragments += 1,
            Verdict::Invalid(text) => failures.push(format!("{}/{}:\n{text}", key.0.display(), key.1)),
        }
    }
    println!(
        "corpus: {} files: {valid} valid, {unreachable} fail only on an unreachable include, \
         {fragments} fragments checked inside the pipeline that includes them",
        files.len()
    );
    assert!(failures.is_empty(), "{} files failed:\n{}", failures.len(), failures.join("\n\n"));
}
