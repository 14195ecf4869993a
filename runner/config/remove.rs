//! Removing runners from `config.toml` (`unregister`), keeping the
//! comments that describe the file rather than the runner.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use super::edit::{edit, no_such_runner};
use super::load::ConfigError;

/// Which runners to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerSelector<'a> {
    Name(&'a str),
    Token(&'a str),
    All,
}

/// Removes the runners `which` selects; returns their names. Naming a
/// runner the file does not have is an error; `All` on a file without
/// runners is not.
pub fn remove_runners(path: &Path, which: RunnerSelector<'_>) -> Result<Vec<String>, ConfigError> {
    let mut removed = Vec::new();
    let mut missing = None;
    edit(path, false, |doc| {
        let Some(runners) = doc
            .get_mut("runners")
            .and_then(Item::as_array_of_tables_mut)
        else {
            missing = (which != RunnerSelector::All).then_some(which);
            return Ok(());
        };
        let selected: Vec<usize> = (0..runners.len())
            .filter(|&i| {
                let table = runners.get(i);
                let field = |key: &str| {
                    table
                        .and_then(|t| t.get(key))
                        .and_then(Item::as_str)
                        .map(str::to_owned)
                };
                match which {
                    RunnerSelector::All => true,
                    RunnerSelector::Name(name) => field("name").as_deref() == Some(name),
                    RunnerSelector::Token(token) => field("token").as_deref() == Some(token),
                }
            })
            .collect();
        if selected.is_empty() && which != RunnerSelector::All {
            missing = Some(which);
            return Ok(());
        }
        // Comments above a runner's header that a blank line separates
        // from it describe the file, not the runner: they stay.
        let mut kept = Vec::new();
        for &i in selected.iter().rev() {
            let Some(table) = runners.get(i) else {
                continue;
            };
            let name = table
                .get("name")
                .and_then(Item::as_str)
                .unwrap_or("")
                .to_owned();
            let prefix = table
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("");
            let (unattached, _) = split_prefix(prefix);
            if unattached.contains('#') {
                kept.push((table.position(), unattached.to_owned()));
            }
            runners.remove(i);
            removed.push(name);
        }
        removed.reverse();
        // Later runners first, so comments of runners removed together
        // end up in their order.
        for (position, comments) in kept {
            give_comments_to_next_table(doc, position.unwrap_or(0), &comments);
        }
        Ok(())
    })?;
    if let Some(which) = missing {
        return Err(no_such_runner(path, which));
    }
    Ok(removed)
}

/// Splits the text above a table header at its last blank line: what
/// comes before belongs to the file, what follows (comment lines right
/// above the header) to the table.
fn split_prefix(prefix: &str) -> (&str, &str) {
    let mut split = 0;
    let mut line_start = 0;
    for (i, c) in prefix.char_indices() {
        if c == '\n' {
            if prefix[line_start..i].trim().is_empty() {
                split = i + 1;
            }
            line_start = i + 1;
        }
    }
    prefix.split_at(split)
}

/// `comments` end with a blank line (see [`split_prefix`]); the blank
/// lines that opened `rest` would double it.
fn join_comments(comments: &str, rest: &str) -> String {
    format!("{comments}{}", rest.trim_start_matches(['\n', '\r']))
}

/// Puts `comments` above the first table after `position`, or at the end
/// of the file when none follows.
fn give_comments_to_next_table(doc: &mut DocumentMut, position: isize, comments: &str) {
    struct Next {
        after: isize,
        best: Option<isize>,
    }
    impl toml_edit::visit::Visit<'_> for Next {
        fn visit_table(&mut self, node: &Table) {
            if let Some(p) = node.position().filter(|&p| p > self.after) {
                self.best = Some(self.best.map_or(p, |b| b.min(p)));
            }
            toml_edit::visit::visit_table(self, node);
        }
    }
    struct Prepend<'a> {
        position: isize,
        comments: &'a str,
        done: bool,
    }
    impl toml_edit::visit_mut::VisitMut for Prepend<'_> {
        fn visit_table_mut(&mut self, node: &mut Table) {
            if !self.done && node.position() == Some(self.position) {
                let old = node.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                let new = join_comments(self.comments, old);
                node.decor_mut().set_prefix(new);
                self.done = true;
            }
            toml_edit::visit_mut::visit_table_mut(self, node);
        }
    }
    let mut next = Next {
        after: position,
        best: None,
    };
    toml_edit::visit::Visit::visit_document(&mut next, doc);
    match next.best {
        Some(target) => {
            let mut prepend = Prepend {
                position: target,
                comments,
                done: false,
            };
            toml_edit::visit_mut::VisitMut::visit_document_mut(&mut prepend, doc);
        }
        None => {
            let old = doc.trailing().as_str().unwrap_or("").to_owned();
            doc.set_trailing(join_comments(comments, &old));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::add_runner;
    use crate::config::edit::tests::{hand_written_file, names, new_runner};

    #[test]
    fn runners_are_removed_by_name_by_token_or_all() {
        let (_dir, path) = hand_written_file();
        add_runner(&path, &new_runner("a", "glrt-A")).unwrap();
        add_runner(&path, &new_runner("b", "glrt-B")).unwrap();
        assert_eq!(names(&path), ["old", "a", "b"]);

        let removed = remove_runners(&path, RunnerSelector::Name("a")).unwrap();
        assert_eq!(removed, ["a"]);
        assert_eq!(names(&path), ["old", "b"]);

        let removed = remove_runners(&path, RunnerSelector::Token("glrt-OLDTOKEN123")).unwrap();
        assert_eq!(removed, ["old"]);
        assert_eq!(names(&path), ["b"]);
        // What is not a runner stays, comments included: those above the
        // removed runner that a blank line sets apart describe the file.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Build farm, rack 3.\nconcurrent = 4   # two per core\n\ncheck_interval    = 3\n\n\n[session_server]\n  # The terminal.\n  session_timeout = 1800\n\n# --- runners ---\n\n[[runners]]\n  name = \"b\""),
            "{text}"
        );
        assert!(!text.contains("the first one"), "{text}");
        assert!(!text.contains("Docker settings"), "{text}");
        assert!(text.ends_with("# end of file\n"), "{text}");

        let removed = remove_runners(&path, RunnerSelector::All).unwrap();
        assert_eq!(removed, ["b"]);
        assert!(names(&path).is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# --- runners ---\n"), "{text}");
        assert_eq!(
            remove_runners(&path, RunnerSelector::All).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_header_prefix_splits_at_its_last_blank_line() {
        assert_eq!(
            split_prefix("\n# file\n\n# runner\n"),
            ("\n# file\n\n", "# runner\n")
        );
        assert_eq!(split_prefix("# runner\n  "), ("", "# runner\n  "));
        assert_eq!(split_prefix("\n"), ("\n", ""));
        assert_eq!(split_prefix(""), ("", ""));
    }

    #[test]
    fn removing_from_a_missing_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/config.toml");
        let err = remove_runners(&path, RunnerSelector::All).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", path.display())),
            "{err}"
        );
        assert!(!dir.path().join("gone").exists());
    }
}
