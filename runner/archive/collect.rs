//! The walk behind [`select_paths`](super::select_paths): one pattern at a
//! time, each matched path added unless excluded, matched directories
//! taken whole, untracked files from git.

use std::collections::BTreeMap;
use std::fs::{self, FileType};
use std::io;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::git;
use super::glob::{Entry, EntryKind, Selection};
use super::pattern::{Pattern, PatternError, clean};
use super::select_note::SelectNote;

pub(super) struct Collector<'a> {
    root: &'a Path,
    canonical_root: PathBuf,
    /// `exclude` patterns with their text as written.
    excludes: Vec<(String, Pattern)>,
    /// How many paths each exclude pattern removed.
    excluded: Vec<usize>,
    entries: BTreeMap<String, EntryKind>,
    notes: Vec<SelectNote>,
}

impl<'a> Collector<'a> {
    /// A collector for the project at `root` (absolute) whose real path is
    /// `canonical_root`, with the `exclude` patterns compiled; those that
    /// cannot be used are reported and ignored.
    pub(super) fn new(root: &'a Path, canonical_root: PathBuf, exclude: &[String]) -> Self {
        let mut collector = Collector {
            root,
            canonical_root,
            excludes: Vec::new(),
            excluded: Vec::new(),
            entries: BTreeMap::new(),
            notes: Vec::new(),
        };
        for raw in exclude {
            match Pattern::new(raw, root) {
                Ok(p) => collector.excludes.push((raw.clone(), p)),
                Err(PatternError::Outside) => {
                    collector.notes.push(SelectNote::ExcludeOutsideProject {
                        pattern: raw.clone(),
                    })
                }
                Err(PatternError::Syntax) => collector.notes.push(SelectNote::BadPattern {
                    pattern: raw.clone(),
                }),
            }
        }
        collector.excluded = vec![0; collector.excludes.len()];
        collector
    }
}

impl Collector<'_> {
    /// gitlab-runner's `process`: exclude, else add. Returns whether the
    /// path counts as found.
    fn process(&mut self, rel: &str, kind: EntryKind) -> bool {
        if let Some(i) = self.excludes.iter().position(|(_, p)| p.matches(rel)) {
            self.excluded[i] += 1;
            return false;
        }
        // The project directory itself is walked but is no entry.
        if rel != "." {
            self.entries.insert(rel.to_owned(), kind);
        }
        true
    }

    pub(super) fn collect_pattern(&mut self, raw: &str) {
        if raw.is_empty() {
            self.notes.push(SelectNote::EmptyPath);
            return;
        }
        let pattern = match Pattern::new(raw, self.root) {
            Ok(p) => p,
            Err(PatternError::Outside) => {
                return self.notes.push(SelectNote::OutsideProject {
                    pattern: raw.to_owned(),
                });
            }
            Err(PatternError::Syntax) => {
                return self.notes.push(SelectNote::BadPattern {
                    pattern: raw.to_owned(),
                });
            }
        };
        let found = if pattern.is_literal() {
            self.collect_literal(&pattern)
        } else {
            self.collect_glob(&pattern)
        };
        match found {
            None => self.notes.push(SelectNote::OutsideProject {
                pattern: raw.to_owned(),
            }),
            Some(0) => self.notes.push(SelectNote::NoMatch {
                pattern: raw.to_owned(),
                project_dir: self.root.to_path_buf(),
            }),
            Some(count) => self.notes.push(SelectNote::Found {
                pattern: raw.to_owned(),
                count,
            }),
        }
    }

    /// Whether `dir`, with symbolic links resolved, is inside the project.
    /// Links in the literal part of a pattern are followed (gitlab-runner's
    /// glob follows them too) but must not lead out of the project.
    /// `None` when `dir` does not exist.
    fn inside(&self, dir: &Path) -> Option<bool> {
        match fs::canonicalize(dir) {
            Ok(real) => Some(real.starts_with(&self.canonical_root)),
            Err(_) => None,
        }
    }

    /// A path without wildcards: the path itself, and its contents when it
    /// is a directory. `None` when it lies outside the project.
    fn collect_literal(&mut self, pattern: &Pattern) -> Option<usize> {
        let path = self.root.join(&pattern.text);
        let parent = path.parent().unwrap_or(self.root);
        if pattern.text != "." && self.inside(parent) == Some(false) {
            return None;
        }
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(0),
            Err(e) => {
                self.unreadable(&pattern.text, &e);
                return Some(0);
            }
        };
        let kind = kind_of(meta.file_type(), meta.file_type().is_symlink());
        let mut found = usize::from(self.process(&pattern.text, kind));
        if kind == EntryKind::Dir {
            found += self.collect_tree(&pattern.text, &path);
        }
        Some(found)
    }

    /// A glob: walk from its literal base, as deep as the pattern can
    /// reach, and take every match (whole, for a directory).
    fn collect_glob(&mut self, pattern: &Pattern) -> Option<usize> {
        let base = self.root.join(&pattern.base);
        match self.inside(&base) {
            None => return Some(0),
            Some(false) => return None,
            Some(true) => {}
        }
        let mut walk = WalkDir::new(&base).follow_links(false);
        if let Some(depth) = pattern.max_depth {
            walk = walk.max_depth(depth);
        }
        let mut found = 0;
        let mut it = walk.into_iter();
        while let Some(item) = it.next() {
            let entry = match item {
                Ok(entry) => entry,
                Err(e) => {
                    self.walk_error(e);
                    continue;
                }
            };
            if entry.depth() == 0 && pattern.base == "." {
                continue;
            }
            let Some(rel) = self.relative(&pattern.base, &base, entry.path()) else {
                if entry.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            };
            if !pattern.matches(&rel) {
                continue;
            }
            let kind = kind_of(entry.file_type(), entry.path_is_symlink());
            found += usize::from(self.process(&rel, kind));
            if kind == EntryKind::Dir {
                found += self.collect_tree(&rel, entry.path());
                it.skip_current_dir();
            }
        }
        Some(found)
    }

    /// Everything below the matched directory `dir` (relative path `rel`),
    /// links not followed.
    fn collect_tree(&mut self, rel: &str, dir: &Path) -> usize {
        let mut found = 0;
        let mut it = WalkDir::new(dir)
            .min_depth(1)
            .follow_links(false)
            .follow_root_links(false)
            .into_iter();
        while let Some(item) = it.next() {
            let entry = match item {
                Ok(entry) => entry,
                Err(e) => {
                    self.walk_error(e);
                    continue;
                }
            };
            let Some(child) = self.relative(rel, dir, entry.path()) else {
                if entry.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            };
            let kind = kind_of(entry.file_type(), entry.path_is_symlink());
            found += usize::from(self.process(&child, kind));
        }
        found
    }

    /// The project-relative path of `path`, found below `dir` whose relative
    /// path is `dir_rel`; `None` (with a note) when it is not UTF-8.
    fn relative(&mut self, dir_rel: &str, dir: &Path, path: &Path) -> Option<String> {
        let below = path.strip_prefix(dir).unwrap_or(path);
        let Some(below) = below.to_str() else {
            self.notes.push(SelectNote::NotUtf8 {
                path: path.display().to_string(),
            });
            return None;
        };
        Some(match (dir_rel, below) {
            (_, "") => dir_rel.to_owned(),
            (".", _) => below.to_owned(),
            _ => format!("{dir_rel}/{below}"),
        })
    }

    /// `untracked: true`: every file git does not track, each taken as is
    /// (a directory git reports, such as a nested repository, is not
    /// expanded; gitlab-runner does the same).
    pub(super) fn collect_untracked(&mut self) {
        let files = match git::untracked_files(self.root) {
            Ok(files) => files,
            Err(e) => {
                let reason = e.to_string();
                return self.notes.push(SelectNote::UntrackedFailed { reason });
            }
        };
        let mut found = 0;
        for raw in files {
            let Ok(name) = String::from_utf8(raw) else {
                self.notes.push(SelectNote::NotUtf8 {
                    path: "(untracked file)".to_owned(),
                });
                continue;
            };
            let rel = clean(&name);
            if rel == ".." || rel.starts_with("../") || rel.starts_with('/') {
                continue;
            }
            match fs::symlink_metadata(self.root.join(&rel)) {
                Ok(meta) => {
                    let kind = kind_of(meta.file_type(), meta.file_type().is_symlink());
                    found += usize::from(self.process(&rel, kind));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.unreadable(&rel, &e),
            }
        }
        self.notes.push(if found == 0 {
            SelectNote::UntrackedNone
        } else {
            SelectNote::UntrackedFound { count: found }
        });
    }

    fn unreadable(&mut self, path: &str, e: &io::Error) {
        self.notes.push(SelectNote::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        });
    }

    fn walk_error(&mut self, e: walkdir::Error) {
        let path = e
            .path()
            .map(|p| p.strip_prefix(self.root).unwrap_or(p).display().to_string())
            .unwrap_or_default();
        self.notes.push(SelectNote::Unreadable {
            path,
            reason: e.to_string(),
        });
    }

    pub(super) fn finish(mut self) -> Selection {
        for ((pattern, _), count) in self.excludes.iter().zip(&self.excluded) {
            if *count > 0 {
                self.notes.push(SelectNote::Excluded {
                    pattern: pattern.clone(),
                    count: *count,
                });
            }
        }
        if self
            .entries
            .keys()
            .any(|p| p == ".git" || p.starts_with(".git/"))
        {
            self.notes.push(SelectNote::GitDirectory);
        }
        Selection {
            entries: self
                .entries
                .into_iter()
                .map(|(path, kind)| Entry { path, kind })
                .collect(),
            notes: self.notes,
        }
    }
}

fn kind_of(file_type: FileType, is_symlink: bool) -> EntryKind {
    if is_symlink || file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}
