//! Checking a file that is meant to be included, on its own.
//!
//! GitLab never validates an included file by itself: it merges every file
//! first. A template therefore leans on its includer for names it does not
//! define: `extends` parents, `!reference` targets, a job's `script`, the
//! stages, and values for its required inputs. Fragment mode stands in for
//! those pieces so that everything the file *does* say can be checked with
//! GitLab's rules, and nothing it leaves to its includer is reported.

use super::compose::is_global_keyword;
use super::source::Span;
use super::yaml::{Mapping, Node, Value};

/// The script given to jobs that get theirs from the including file. `:`
/// is the shell's no-op, so the stand-in is also harmless if ever run.
const STAND_IN_SCRIPT: &str = ":";

/// Adds an empty hidden job for every `extends` parent the file does not
/// define (it comes from the including file), and returns their names so
/// [`remove_stubs`] can take them out again once `extends` is resolved.
pub(crate) fn stub_missing_parents(root: &mut Node) -> Vec<String> {
    let Some(map) = root.as_map_mut() else {
        return Vec::new();
    };
    let mut missing: Vec<(String, Span)> = Vec::new();
    for (_, value) in map.iter() {
        let Some(extends) = value.as_map().and_then(|m| m.get("extends")) else {
            continue;
        };
        let parents: Vec<&Node> = match &extends.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![extends],
        };
        for parent in parents {
            if let Some(name) = parent.as_str()
                && !map.contains_key(name)
                && !missing.iter().any(|(m, _)| m == name)
            {
                missing.push((name.to_string(), parent.span));
            }
        }
    }
    for (name, span) in &missing {
        map.insert_str(name, Node::map(Mapping::new(), *span));
    }
    missing.into_iter().map(|(name, _)| name).collect()
}

/// Removes the stand-in parents again: they are not part of the file, and
/// an empty hidden job would be reported as blank.
pub(crate) fn remove_stubs(root: &mut Node, names: &[String]) {
    if let Some(map) = root.as_map_mut() {
        for name in names {
            map.remove(name);
        }
    }
}

/// Drops every `!reference` the file cannot resolve itself: the including
/// file provides that value. A reference that is a list item leaves the
/// list; one that is a whole value takes its key with it, as does a list
/// or hash left empty. Dropping one can take away the target of another,
/// so this repeats until nothing changes. Run after `extends`, before
/// references are resolved.
pub(crate) fn drop_unresolvable_references(root: &mut Node) {
    loop {
        let snapshot = root.clone();
        let resolvable = |node: &Node| {
            reference_path(node).is_some_and(|path| lookup(&snapshot, &path).is_some())
        };
        prune(root, &resolvable);
        if *root == snapshot {
            return;
        }
    }
}

/// Removes unresolvable references below `node`; returns true when `node`
/// itself should go.
fn prune(node: &mut Node, resolvable: &dyn Fn(&Node) -> bool) -> bool {
    if node.is_reference() {
        return !resolvable(node);
    }
    match &mut node.value {
        Value::Seq(items) => {
            let before = items.len();
            items.retain_mut(|item| !prune(item, resolvable));
            before > 0 && items.is_empty()
        }
        Value::Map(map) => {
            let before = map.len();
            let doomed: Vec<Node> = map
                .iter_mut()
                .filter_map(|(key, value)| prune(value, resolvable).then(|| key.clone()))
                .collect();
            if !doomed.is_empty() {
                let kept: Mapping = std::mem::take(map)
                    .into_entries()
                    .into_iter()
                    .filter(|(k, _)| !doomed.iter().any(|d| d == k))
                    .collect();
                *map = kept;
            }
            before > 0 && map.is_empty()
        }
        _ => false,
    }
}

fn reference_path(node: &Node) -> Option<Vec<String>> {
    let items = node.as_seq()?;
    let path: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(String::from)).collect();
    path.filter(|p| !p.is_empty())
}

/// Gives a stand-in script to jobs that have none (their script comes from
/// the including file, which may define a job of the same name: rule 16).
/// Run after `!reference` resolution, before `default:` is applied, so the
/// jobs count as jobs and take the defaults.
pub(crate) fn stub_missing_scripts(root: &mut Node) {
    let Some(map) = root.as_map_mut() else { return };
    for (key, value) in map.iter_mut() {
        let Some(name) = key.as_str() else { continue };
        if name.starts_with('.') || is_global_keyword(name) {
            continue;
        }
        let span = value.span;
        let Some(job) = value.as_map_mut() else {
            continue;
        };
        if !["script", "run", "trigger"]
            .iter()
            .any(|k| job.contains_key(k))
        {
            job.insert_str(
                "script",
                Node::seq(vec![Node::string(STAND_IN_SCRIPT, span)], span),
            );
        }
    }
}

fn lookup<'n>(root: &'n Node, path: &[String]) -> Option<&'n Node> {
    path.iter()
        .try_fold(root, |node, key| node.as_map()?.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    #[test]
    fn unknown_parents_become_empty_hidden_jobs() {
        let mut root = doc("job:\n  extends: [.known, .elsewhere]\n.known: {}\n");
        let stubs = stub_missing_parents(&mut root);
        assert_eq!(stubs, [".elsewhere"]);
        assert!(
            root.as_map()
                .unwrap()
                .get(".elsewhere")
                .unwrap()
                .as_map()
                .unwrap()
                .is_empty()
        );
        remove_stubs(&mut root, &stubs);
        assert_eq!(root.as_map().unwrap().len(), 2);
    }

    #[test]
    fn unresolvable_references_are_dropped_and_resolvable_ones_kept() {
        let mut root = doc(concat!(
            ".here: {script: [a]}\n",
            "job:\n",
            "  script:\n    - !reference [.here, script]\n    - !reference [.elsewhere, script]\n    - make\n",
            "  rules:\n    - !reference [.rules]\n",
            "  retry: !reference [.retry, retry]\n",
            "  cache: {paths: !reference [.cache, paths]}\n",
            ".chain: {script: !reference [.missing, script]}\n",
            "other:\n  script: [!reference [.chain, script], b]\n",
        ));
        drop_unresolvable_references(&mut root);
        let job = root.as_map().unwrap().get("job").unwrap().as_map().unwrap();
        let script = job.get("script").unwrap().as_seq().unwrap();
        assert_eq!(script.len(), 2);
        assert!(script[0].is_reference());
        assert_eq!(script[1].as_str(), Some("make"));
        assert!(
            !job.contains_key("rules"),
            "a list left empty goes with its key"
        );
        assert!(!job.contains_key("retry"));
        assert!(
            !job.contains_key("cache"),
            "a hash left empty goes with its key"
        );
        // `.chain`'s script went, so a reference to it goes too.
        let other = root
            .as_map()
            .unwrap()
            .get("other")
            .unwrap()
            .as_map()
            .unwrap();
        assert_eq!(other.get("script").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn jobs_without_script_get_a_stand_in_and_others_are_untouched() {
        let mut root =
            doc("a:\n  stage: x\nb:\n  script: [make]\nc:\n  trigger: child\n.h:\n  stage: y\n");
        stub_missing_scripts(&mut root);
        let map = root.as_map().unwrap();
        assert!(
            map.get("a")
                .unwrap()
                .as_map()
                .unwrap()
                .contains_key("script")
        );
        assert_eq!(
            map.get("b")
                .unwrap()
                .as_map()
                .unwrap()
                .get("script")
                .unwrap()
                .as_seq()
                .unwrap()[0]
                .as_str(),
            Some("make")
        );
        assert!(
            !map.get("c")
                .unwrap()
                .as_map()
                .unwrap()
                .contains_key("script")
        );
        assert!(
            !map.get(".h")
                .unwrap()
                .as_map()
                .unwrap()
                .contains_key("script")
        );
    }
}
