//! Every real-world pipeline in the corpus must load as GitLab loads it.
//!
//! A file named `.gitlab-ci.yml` that no other file of its project names is
//! linted as the pipeline of its project. Any other file is an included file (a template, a component, a part of
//! a split pipeline) and is linted in fragment mode, as `runner lint
//! --fragment` does: every keyword it sets is checked, while what it leaves
//! to the file that includes it (`extends` parents, `!reference` targets,
//! stages, needed jobs, required inputs) is not required.
//!
//! Each file must then be valid, or fail only because an include does not
//! resolve here: `remote`, `project`, `template` and `component` includes
//! point outside the corpus (and nothing is fetched in tests), and some
//! projects' local includes were left out of it. The error must name the
//! include.

use std::path::{Path, PathBuf};

use runner::ci::load::{LoadError, LoadOptions, load};

use crate::support::corpus_dir;

#[derive(Debug)]
enum Verdict {
    Valid,
    UnresolvedInclude(Vec<String>),
    Invalid(String),
}

struct CorpusFile {
    /// The repository root the file belongs to.
    project: PathBuf,
    /// The file, relative to `project`.
    file: String,
    /// Another file of the project names this one (it is included).
    named_elsewhere: bool,
}

impl CorpusFile {
    fn is_pipeline(&self) -> bool {
        let name = Path::new(&self.file).file_name();
        !self.named_elsewhere
            && name.is_some_and(|n| n == ".gitlab-ci.yml" || n == ".gitlab-ci.yaml")
    }
}

/// gitlab-ci-local's test cases are each a project of their own.
fn project_of(corpus_project: &Path, path: &Path) -> PathBuf {
    let cases = corpus_project.join("tests/test-cases");
    if let Ok(rest) = path.strip_prefix(&cases)
        && let Some(case) = rest.components().next()
    {
        return cases.join(case);
    }
    corpus_project.to_path_buf()
}

fn corpus_files() -> Vec<CorpusFile> {
    let mut files = Vec::new();
    for project in std::fs::read_dir(corpus_dir()).expect("the corpus folder beside the project") {
        let project = project.unwrap().path();
        if !project.is_dir() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&project) {
            let entry = entry.unwrap();
            let is_yaml = entry
                .path()
                .extension()
                .is_some_and(|e| e == "yml" || e == "yaml");
            if entry.file_type().is_file() && is_yaml {
                let root = project_of(&project, entry.path());
                let file = entry
                    .path()
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push(CorpusFile {
                    project: root,
                    file,
                    named_elsewhere: false,
                });
            }
        }
    }
    files.sort_by(|a, b| (&a.project, &a.file).cmp(&(&b.project, &b.file)));
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f.project.join(&f.file)).unwrap_or_default())
        .collect();
    for i in 0..files.len() {
        let named = (0..files.len()).any(|j| {
            j != i
                && files[j].project == files[i].project
                && texts[j].contains(files[i].file.as_str())
        });
        files[i].named_elsewhere = named;
    }
    files
}

fn lint(file: &CorpusFile, cache: &Path) -> Verdict {
    let mut opts = LoadOptions::new(file.project.clone(), PathBuf::from(&file.file));
    opts.offline = true;
    opts.cache_dir = cache.to_path_buf();
    opts.fragment = !file.is_pipeline();
    match load(&opts) {
        Ok(_) => Verdict::Valid,
        Err(LoadError::Unreadable { path, source }) => {
            panic!("cannot read {}: {source}", path.display())
        }
        Err(LoadError::Invalid(failure)) => {
            let diags = &failure.diagnostics;
            if !diags.is_empty() && diags.iter().all(|d| d.kind.is_unresolved_include()) {
                Verdict::UnresolvedInclude(
                    diags.iter().map(|d| d.render(&failure.sources)).collect(),
                )
            } else {
                let text: Vec<String> = diags.iter().map(|d| d.render(&failure.sources)).collect();
                Verdict::Invalid(text.join("\n"))
            }
        }
    }
}

#[test]
fn every_corpus_file_lints_valid_or_fails_only_on_an_unresolved_include() {
    let cache = tempfile::tempdir().unwrap();
    let files = corpus_files();
    assert_eq!(files.len(), 199, "the corpus has 199 files");

    let (mut pipelines, mut fragments, mut unresolved) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        match lint(file, cache.path()) {
            Verdict::Valid if file.is_pipeline() => pipelines += 1,
            Verdict::Valid => fragments += 1,
            Verdict::UnresolvedInclude(errors) => {
                unresolved += 1;
                // Each error names the include it is about.
                for error in errors {
                    assert!(
                        error.contains('`') || error.contains('\''),
                        "an include error must name the include: {error}"
                    );
                }
            }
            Verdict::Invalid(text) => {
                failures.push(format!("{}/{}:\n{text}", file.project.display(), file.file))
            }
        }
    }
    println!(
        "corpus: {} files: {pipelines} pipelines and {fragments} included files lint valid; \
         {unresolved} fail only on an include that does not resolve here",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} files failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
