//! Which files a job's `artifacts:` or `cache:` section selects: `paths`,
//! `exclude` and `untracked`, with gitlab-runner's semantics.
//!
//! For each path pattern (see `pattern.rs` for how it is normalised), the
//! matching files *and directories* are collected, and every matched
//! directory is then taken whole, recursively. `exclude` is tested against
//! each collected path on its own, not recursively: excluding `build/lib`
//! drops that directory entry but not `build/lib/x.o`, which is why GitLab
//! documents `build/lib/**/*` for "the contents of". Symbolic links are
//! never followed below a pattern's literal base; they are selected as links.
//!
//! Problems with single patterns never fail the selection, as in GitLab
//! they only warn: they are returned as [`SelectNote`]s, worded as
//! gitlab-runner words them, for the caller to print in the job log.

use std::fs;
use std::path::Path;

use super::ArchiveError;
use super::collect::Collector;
use super::select_note::SelectNote;

/// What a selected path is, as `lstat` sees it (links are not followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: selected like GitLab does, but skipped
    /// (with a warning) when the archive is written.
    Other,
}

/// One selected path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the project directory, `/`-separated, never `.`.
    pub path: String,
    pub kind: EntryKind,
}

/// The result of a selection: entries sorted by path (byte order, as
/// gitlab-runner sorts them), each once, and what to tell the user.
#[derive(Debug, Default)]
pub struct Selection {
    pub entries: Vec<Entry>,
    pub notes: Vec<SelectNote>,
}

/// Selects what `paths`, `exclude` and `untracked` designate in
/// `project_dir`. Variables in the patterns must already be expanded.
///
/// Fails only when the project directory itself cannot be resolved.
pub fn select_paths(
    project_dir: &Path,
    paths: &[String],
    exclude: &[String],
    untracked: bool,
) -> Result<Selection, ArchiveError> {
    let root = std::path::absolute(project_dir)
        .map_err(|e| ArchiveError::io("resolve", project_dir, e))?;
    let canonical_root =
        fs::canonicalize(&root).map_err(|e| ArchiveError::io("resolve", &root, e))?;
    let mut collector = Collector::new(&root, canonical_root, exclude);
    for raw in paths {
        collector.collect_pattern(raw);
    }
    if untracked {
        collector.collect_untracked();
    }
    Ok(collector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::git::testing::Repo;
    use std::os::unix::fs::symlink;

    /// The tree of the doublestar experiment (style guide B.2).
    fn b2_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in [
            "a.txt",
            "sub/b.txt",
            "sub/deep/c.txt",
            ".hidden.txt",
            "build/x.o",
            "build/lib/y.o",
            "out/keep.log",
            "out/nested/z.log",
            "alpha/x",
            "beta/x",
        ] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, file).unwrap();
        }
        dir
    }

    fn select(dir: &Path, paths: &[&str], exclude: &[&str]) -> Selection {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        select_paths(dir, &own(paths), &own(exclude), false).expect("selection")
    }

    fn names(selection: &Selection) -> Vec<&str> {
        selection.entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn rule_203_the_doublestar_experiment_table() {
        let dir = b2_tree();
        let table: &[(&str, &[&str])] = &[
            ("*.txt", &[".hidden.txt", "a.txt"]),
            (
                "**/*.txt",
                &[".hidden.txt", "a.txt", "sub/b.txt", "sub/deep/c.txt"],
            ),
            ("{alpha,beta}/x", &["alpha/x", "beta/x"]),
            (
                "sub/**",
                &["sub", "sub/b.txt", "sub/deep", "sub/deep/c.txt"],
            ),
            (
                "out/",
                &["out", "out/keep.log", "out/nested", "out/nested/z.log"],
            ),
        ];
        for (pattern, want) in table {
            let got = select(dir.path(), &[pattern], &[]);
            assert_eq!(names(&got), *want, "pattern {pattern}");
        }
        // Dotfiles are matched by `*`.
        let all = select(dir.path(), &["*"], &[]);
        assert!(names(&all).contains(&".hidden.txt"));
        assert_eq!(all.entries.len(), 18, "{:?}", names(&all));
    }

    #[test]
    fn rule_203_a_matched_directory_is_taken_whole() {
        let dir = b2_tree();
        let got = select(dir.path(), &["build"], &[]);
        assert_eq!(
            names(&got),
            ["build", "build/lib", "build/lib/y.o", "build/x.o"]
        );
        let kinds: Vec<EntryKind> = got.entries.iter().map(|e| e.kind).collect();
        use EntryKind::{Dir, File};
        assert_eq!(kinds, [Dir, Dir, File, File]);
        assert_eq!(
            got.notes,
            [SelectNote::Found {
                pattern: "build".into(),
                count: 4
            }]
        );
    }

    #[test]
    fn rule_204_exclude_is_applied_to_each_path_not_recursively() {
        let dir = b2_tree();
        let got = select(dir.path(), &["build/"], &["build/lib"]);
        assert_eq!(names(&got), ["build", "build/lib/y.o", "build/x.o"]);
        assert!(got.notes.contains(&SelectNote::Excluded {
            pattern: "build/lib".into(),
            count: 1
        }));

        let got = select(dir.path(), &["build/"], &["build/lib/**/*"]);
        assert_eq!(names(&got), ["build", "build/lib", "build/x.o"]);

        let got = select(dir.path(), &["**/*"], &["**/*.o", "**/*.log", "*.txt"]);
        assert_eq!(
            names(&got),
            [
                "alpha",
                "alpha/x",
                "beta",
                "beta/x",
                "build",
                "build/lib",
                "out",
                "out/nested",
                "sub",
                "sub/b.txt",
                "sub/deep",
                "sub/deep/c.txt"
            ]
        );
    }

    #[test]
    fn overlapping_patterns_give_each_path_once() {
        let dir = b2_tree();
        let got = select(dir.path(), &["sub", "sub/**", "**/*.txt"], &[]);
        assert_eq!(
            names(&got),
            [
                ".hidden.txt",
                "a.txt",
                "sub",
                "sub/b.txt",
                "sub/deep",
                "sub/deep/c.txt"
            ]
        );
    }

    #[test]
    fn rule_203_paths_outside_the_project_are_refused_by_name() {
        let dir = b2_tree();
        let got = select(dir.path(), &["../*", "/etc/passwd", "sub/../../x"], &[]);
        assert!(got.entries.is_empty());
        assert_eq!(
            got.notes,
            ["../*", "/etc/passwd", "sub/../../x"]
                .map(|p| SelectNote::OutsideProject { pattern: p.into() })
        );
        assert_eq!(
            got.notes[0].to_string(),
            "processPath: artifact path is not a subpath of project directory: ../*"
        );
        assert!(got.notes[0].is_warning());
    }

    #[test]
    fn absolute_paths_inside_the_project_are_accepted() {
        let dir = b2_tree();
        let abs = format!("{}/alpha", dir.path().display());
        let got = select(dir.path(), &[&abs], &[]);
        assert_eq!(names(&got), ["alpha", "alpha/x"]);
    }

    #[test]
    fn a_pattern_matching_nothing_warns_with_gitlab_wording() {
        let dir = b2_tree();
        let got = select(dir.path(), &["missing/*.bin", ""], &[]);
        assert!(got.entries.is_empty());
        let root = std::path::absolute(dir.path()).unwrap();
        assert_eq!(
            got.notes[0].to_string(),
            format!(
                "missing/*.bin: no matching files. Ensure that the artifact path is relative to the working directory ({})",
                root.display()
            )
        );
        assert_eq!(got.notes[1], SelectNote::EmptyPath);
    }

    #[test]
    fn broken_globs_warn_and_select_nothing() {
        let dir = b2_tree();
        let got = select(dir.path(), &["sub/[b"], &[]);
        assert!(got.entries.is_empty());
        assert_eq!(got.notes[0].to_string(), "sub/[b: syntax error in pattern");
    }

    #[test]
    fn symlinks_are_selected_as_links_and_never_followed() {
        let dir = b2_tree();
        symlink("sub", dir.path().join("link")).unwrap();
        let got = select(dir.path(), &["**/*.txt"], &[]);
        assert!(!names(&got).iter().any(|p| p.starts_with("link/")));

        let got = select(dir.path(), &["link", "l*"], &[]);
        assert_eq!(
            got.entries,
            [Entry {
                path: "link".into(),
                kind: EntryKind::Symlink
            }]
        );
    }

    #[test]
    fn a_linked_base_may_not_lead_out_of_the_project() {
        let dir = b2_tree();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("secret"), "s").unwrap();
        symlink(elsewhere.path(), dir.path().join("escape")).unwrap();
        let got = select(dir.path(), &["escape/*", "escape/secret"], &[]);
        assert!(got.entries.is_empty());
        assert_eq!(
            got.notes,
            ["escape/*", "escape/secret"].map(|p| SelectNote::OutsideProject { pattern: p.into() })
        );
        // A link inside the project is followed as a base, like GitLab does.
        symlink("sub", dir.path().join("inside")).unwrap();
        let got = select(dir.path(), &["inside/*.txt"], &[]);
        assert_eq!(names(&got), ["inside/b.txt"]);
    }

    #[test]
    fn rule_210_untracked_includes_ignored_files_and_honours_exclude() {
        let repo = Repo::new();
        repo.write(".gitignore", "*.log\n");
        repo.write("src/main.c", "int main;");
        repo.commit_all("initial");
        repo.write("build/app.bin", "bin");
        repo.write("debug.log", "log");
        repo.write("notes.tmp", "tmp");
        let untracked =
            |exclude: &[String]| select_paths(repo.path(), &[], exclude, true).expect("selection");
        let got = untracked(&[]);
        assert_eq!(names(&got), ["build/app.bin", "debug.log", "notes.tmp"]);
        assert_eq!(got.notes, [SelectNote::UntrackedFound { count: 3 }]);

        let got = untracked(&["*.tmp".to_owned()]);
        assert_eq!(names(&got), ["build/app.bin", "debug.log"]);
    }

    #[test]
    fn untracked_outside_a_repository_warns() {
        let dir = tempfile::tempdir().unwrap();
        let got = select_paths(dir.path(), &[], &[], true).unwrap();
        assert!(got.entries.is_empty());
        assert!(matches!(got.notes[0], SelectNote::UntrackedFailed { .. }));
        assert!(got.notes[0].to_string().starts_with("untracked: "));
    }

    #[test]
    fn selecting_the_git_directory_warns() {
        let repo = Repo::new();
        let got = select_paths(repo.path(), &[".git/HEAD".into()], &[], false).unwrap();
        assert_eq!(names(&got), [".git/HEAD"]);
        assert!(got.notes.contains(&SelectNote::GitDirectory));
    }
}
