//! The real-world corpus the front end's tests run over: `shared/corpus/real`
//! beside the project. Tests that use it fail when it is missing rather than
//! pass without having looked at anything.

use std::path::{Path, PathBuf};

/// The shared material beside the project (corpus, spec fixtures).
pub(crate) fn shared_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        dir.is_dir(),
        "the shared material is missing: expected it at {}",
        dir.display()
    );
    dir
}

/// The corpus folder (one sub-folder per project).
pub(crate) fn dir() -> PathBuf {
    let dir = shared_dir().join("corpus/real");
    assert!(
        dir.is_dir(),
        "the corpus is missing: expected it at {}",
        dir.display()
    );
    dir
}

/// One project's folder in the corpus.
pub(crate) fn project(name: &str) -> PathBuf {
    let project = dir().join(name);
    assert!(project.is_dir(), "no project {name} in the corpus");
    project
}

/// Every YAML file below `dir`, sorted.
pub(crate) fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}
