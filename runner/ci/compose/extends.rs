//! `extends`: a top-level entry takes the deep-merged hashes of the entries
//! it names, then its own keys on top (rules 156-162).
//!
//! GitLab walks every top-level entry in order and, for each one with an
//! `extends` key, extends its parents first (recursively), then merges
//! `{} <- parent 1 <- parent 2 ... <- own hash`. The first problem found on
//! that walk stops everything, so exactly one error is reported, named
//! after the entry where the walk met it. The walk re-visits shared parents
//! every time; since merging a parent in twice changes nothing, the result
//! is the same with each entry extended once, which is what is done here.
//! Errors are found first on a small graph of names, so the walk is only
//! replayed (at most 12 steps deep) when there is one to report.
//!
//! The `extends` key itself stays in the merged hash, as in GitLab: the job
//! decoder validates its form and ignores it otherwise.

use std::collections::HashMap;

use super::ruby;
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::merge::deep_merge;
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node, Value};

/// GitLab allows 11 levels of `extends`: an entry reached through more than
/// this many ancestors may not extend anything.
const MAX_NESTING_LEVELS: usize = 10;

/// Depth (counted in ancestors) at which a walk has certainly either failed
/// or finished: the entry there is visited, and fails if it extends anything.
const LAST_VISITED_DEPTH: usize = MAX_NESTING_LEVELS + 1;

/// Resolves `extends` on every top-level entry whose value is a hash with
/// an `extends` key (a string or a list of entry names). Each such entry is
/// replaced by its parents' extended hashes deep-merged in list order, with
/// its own keys merged last (hashes merge key by key; arrays, scalars and
/// `null` replace). The `extends` key is kept.
///
/// Errors, in GitLab's words and order of checks:
/// `<key>: unknown keys in `extends` (a, b)`,
/// `<key>: invalid base hashes in `extends` (a)`,
/// `<key>: nesting too deep in `extends``,
/// `<key>: circular dependency detected in `extends``.
pub fn resolve_extends(root: &mut Node) -> Result<(), Diagnostics> {
    let Some(map) = root.as_map_mut() else {
        return Ok(());
    };
    let graph = Graph::new(map);
    if let Some(error) = graph.first_error() {
        return Err(error.into());
    }
    let mut slots: Vec<&mut Node> = map.iter_mut().map(|(_, v)| v).collect();
    let mut done = vec![false; slots.len()];
    for e in 0..slots.len() {
        extend(&graph, e, &mut slots, &mut done);
    }
    Ok(())
}

/// One top-level entry, as far as `extends` is concerned.
struct Entry {
    /// The key as GitLab prints it in messages.
    name: String,
    /// A hash with an `extends` key (even `extends: null`).
    extensible: bool,
    /// Where the `extends` value is, for errors about the entry as a whole.
    span: Span,
    /// Parents that exist, in `extends` order.
    parents: Vec<usize>,
    /// Names that are not top-level keys, with their positions.
    unknown: Vec<(String, Span)>,
    /// Names of top-level entries that are not hashes.
    invalid: Vec<(String, Span)>,
}

struct Graph {
    entries: Vec<Entry>,
    /// `deep[e][m]`: the walk from `e` reaches an entry with an `extends`
    /// key `m` steps away. Cycles make this true for every `m`.
    deep: Vec<[bool; LAST_VISITED_DEPTH + 1]>,
    /// `bad[e][m]`: the walk from `e` reaches an entry with an unknown or
    /// invalid parent within `m` steps.
    bad: Vec<[bool; LAST_VISITED_DEPTH + 1]>,
}

impl Graph {
    fn new(map: &Mapping) -> Graph {
        let index: HashMap<&str, usize> = map
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| k.as_str().map(|k| (k, i)))
            .collect();
        let values: Vec<&Node> = map.iter().map(|(_, v)| v).collect();
        let entries: Vec<Entry> = map
            .iter()
            .map(|(key, value)| entry(key, value, &index, &values))
            .collect();

        let n = entries.len();
        let mut deep = vec![[false; LAST_VISITED_DEPTH + 1]; n];
        let mut bad = vec![[false; LAST_VISITED_DEPTH + 1]; n];
        for (e, entry) in entries.iter().enumerate() {
            deep[e][0] = entry.extensible;
            bad[e][0] = !entry.unknown.is_empty() || !entry.invalid.is_empty();
        }
        // Each layer only looks one step further than the previous one, so
        // this terminates on cyclic graphs and costs 11 passes over the edges.
        for m in 1..=LAST_VISITED_DEPTH {
            for (e, entry) in entries.iter().enumerate() {
                if !entry.extensible {
                    continue;
                }
                deep[e][m] = entry.parents.iter().any(|&p| deep[p][m - 1]);
                bad[e][m] = bad[e][0] || entry.parents.iter().any(|&p| bad[p][m - 1]);
            }
        }
        Graph { entries, deep, bad }
    }

    /// Whether GitLab's walk, entering `e` with `depth` ancestors, raises.
    fn fails(&self, e: usize, depth: usize) -> bool {
        if !self.entries[e].extensible {
            return false;
        }
        let Some(left) = LAST_VISITED_DEPTH.checked_sub(depth) else {
            return true;
        };
        self.deep[e][left] || self.bad[e][left]
    }

    /// The error GitLab reports, if any: the first top-level entry whose
    /// walk fails, followed down to where it fails.
    fn first_error(&self) -> Option<Diagnostic> {
        let start = (0..self.entries.len()).find(|&e| self.fails(e, 0))?;
        Some(self.replay(start, &mut Vec::new()))
    }

    /// GitLab's checks at one entry, then the first parent whose walk fails.
    fn replay(&self, e: usize, ancestors: &mut Vec<usize>) -> Diagnostic {
        let entry = &self.entries[e];
        if let Some((_, span)) = entry.unknown.first() {
            return Diagnostic::config(
                *span,
                format!(
                    "{}: unknown keys in `extends` ({})",
                    entry.name,
                    names(&entry.unknown)
                ),
            );
        }
        if let Some((_, span)) = entry.invalid.first() {
            return Diagnostic::config(
                *span,
                format!(
                    "{}: invalid base hashes in `extends` ({})",
                    entry.name,
                    names(&entry.invalid)
                ),
            );
        }
        if ancestors.len() > MAX_NESTING_LEVELS {
            return Diagnostic::config(
                entry.span,
                format!("{}: nesting too deep in `extends`", entry.name),
            );
        }
        if ancestors.contains(&e) {
            return Diagnostic::config(
                entry.span,
                format!("{}: circular dependency detected in `extends`", entry.name),
            );
        }
        ancestors.push(e);
        let depth = ancestors.len();
        match entry.parents.iter().find(|&&p| self.fails(p, depth)) {
            Some(&p) => self.replay(p, ancestors),
            // Unreachable when `fails` is right; kept as a plain error
            // rather than a panic.
            None => Diagnostic::config(
                entry.span,
                format!("{}: nesting too deep in `extends`", entry.name),
            ),
        }
    }
}

fn entry(key: &Node, value: &Node, index: &HashMap<&str, usize>, values: &[&Node]) -> Entry {
    let name = ruby::to_s(key);
    let extends = is_hash(value)
        .then(|| value.as_map().and_then(|m| m.get("extends")))
        .flatten();
    let mut entry = Entry {
        name,
        extensible: extends.is_some(),
        span: extends.map_or(value.span, |n| n.span),
        parents: Vec::new(),
        unknown: Vec::new(),
        invalid: Vec::new(),
    };
    for (parent, span) in extends.map(extends_names).unwrap_or_default() {
        match index.get(parent.as_str()) {
            None => entry.unknown.push((parent, span)),
            Some(&p) if !is_hash(values[p]) => entry.invalid.push((parent, span)),
            Some(&p) => entry.parents.push(p),
        }
    }
    entry
}

/// The names in an `extends` value, as GitLab's `Array(value).map(&:to_s)`
/// reads them: a string is one name, `null` none, a list one per item.
fn extends_names(node: &Node) -> Vec<(String, Span)> {
    if node.is_reference() {
        return vec![(ruby::inspect(node), node.span)];
    }
    match &node.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items.iter().map(|i| (ruby::to_s(i), i.span)).collect(),
        // `Array(hash)` is its list of `[key, value]` pairs.
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    format!("[:{}, {}]", ruby::to_s(k), ruby::inspect(v)),
                    k.span,
                )
            })
            .collect(),
        _ => vec![(ruby::to_s(node), node.span)],
    }
}

fn names(list: &[(String, Span)]) -> String {
    list.iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A hash as Ruby sees it: an unresolved `!reference` is a tag object, not
/// a hash, whatever it holds.
fn is_hash(node: &Node) -> bool {
    node.as_map().is_some() && !node.is_reference()
}

/// Extends entry `e` after its parents, once. The graph has been checked,
/// so the recursion is at most 12 deep and has no cycle.
fn extend(graph: &Graph, e: usize, slots: &mut [&mut Node], done: &mut [bool]) {
    let entry = &graph.entries[e];
    if done[e] || !entry.extensible {
        return;
    }
    done[e] = true;
    for &p in &entry.parents {
        extend(graph, p, slots, done);
    }
    let own = std::mem::replace(&mut *slots[e], Node::null(Span::synthetic()));
    let mut merged = Node::map(Mapping::new(), own.span);
    for &p in &entry.parents {
        deep_merge(&mut merged, (*slots[p]).clone());
    }
    deep_merge(&mut merged, own);
    *slots[e] = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn extended(text: &str) -> Node {
        let mut root = doc(text);
        resolve_extends(&mut root).unwrap();
        root
    }

    fn error(text: &str) -> Diagnostic {
        let mut root = doc(text);
        let mut diags = resolve_extends(&mut root).unwrap_err();
        assert_eq!(diags.len(), 1);
        diags.0.remove(0)
    }

    fn at<'a>(root: &'a Node, path: &[&str]) -> &'a Node {
        path.iter()
            .fold(root, |n, k| n.as_map().unwrap().get(k).unwrap())
    }

    fn keys(node: &Node) -> Vec<&str> {
        node.as_map().unwrap().keys().collect()
    }

    #[test]
    fn rule_156_hashes_merge_and_arrays_are_replaced() {
        let root = extended(
            ".tpl:\n  variables: {A: '1', B: '2'}\n  script: [one, two]\n  tags: [docker]\n\
             job:\n  extends: .tpl\n  variables: {B: '3'}\n  script: [three]\n",
        );
        let vars = at(&root, &["job", "variables"]);
        assert_eq!(keys(vars), ["A", "B"]);
        assert_eq!(at(vars, &["B"]).as_str(), Some("3"));
        assert_eq!(at(&root, &["job", "script"]).as_seq().unwrap().len(), 1);
        assert_eq!(at(&root, &["job", "tags"]).as_seq().unwrap().len(), 1);
    }

    #[test]
    fn rule_156_merged_keys_come_parent_first_and_extends_stays() {
        let root = extended(
            ".tpl:\n  script: a\n  stage: build\njob:\n  extends: .tpl\n  when: manual\n  script: b\n",
        );
        assert_eq!(
            keys(at(&root, &["job"])),
            ["script", "stage", "extends", "when"]
        );
        assert_eq!(at(&root, &["job", "script"]).as_str(), Some("b"));
        assert_eq!(at(&root, &["job", "extends"]).as_str(), Some(".tpl"));
    }

    #[test]
    fn rule_157_later_parents_win_and_the_job_wins_over_all() {
        let root = extended(
            ".a:\n  image: a\n  stage: a\n  tags: [a]\n.b:\n  image: b\n  stage: b\n\
             job:\n  extends: [.a, .b]\n  stage: own\n",
        );
        assert_eq!(at(&root, &["job", "image"]).as_str(), Some("b"));
        assert_eq!(at(&root, &["job", "stage"]).as_str(), Some("own"));
        assert_eq!(
            at(&root, &["job", "tags"]).as_seq().unwrap()[0].as_str(),
            Some("a")
        );
    }

    #[test]
    fn rule_156_multi_level_chains_resolve_parents_first() {
        let root = extended(
            ".base:\n  image: base\n  variables: {A: a}\n.mid:\n  extends: .base\n  variables: {B: b}\n\
             job:\n  extends: .mid\n  script: x\n",
        );
        assert_eq!(at(&root, &["job", "image"]).as_str(), Some("base"));
        assert_eq!(keys(at(&root, &["job", "variables"])), ["A", "B"]);
        // The parent itself is extended too.
        assert_eq!(at(&root, &[".mid", "image"]).as_str(), Some("base"));
    }

    #[test]
    fn rule_158_eleven_levels_are_allowed() {
        let mut text = String::from("j11:\n  script: x\n");
        for i in (0..11).rev() {
            text.push_str(&format!("j{i}:\n  extends: j{}\n", i + 1));
        }
        let root = extended(&text);
        assert_eq!(at(&root, &["j0", "script"]).as_str(), Some("x"));
    }

    #[test]
    fn rule_158_twelve_levels_are_nesting_too_deep() {
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!("j{i}:\n  extends: j{}\n", i + 1));
        }
        text.push_str("j12:\n  script: x\n");
        let e = error(&text);
        assert_eq!(e.message, "j11: nesting too deep in `extends`");
        assert_eq!(e.span.line, 24);
    }

    #[test]
    fn rule_159_visible_jobs_can_be_extended() {
        let root = extended(
            "build:\n  script: make\n  stage: build\ntest:\n  extends: build\n  stage: test\n",
        );
        assert_eq!(at(&root, &["test", "script"]).as_str(), Some("make"));
        assert_eq!(at(&root, &["test", "stage"]).as_str(), Some("test"));
    }

    #[test]
    fn rule_160_null_removes_and_empty_hash_keeps() {
        let root = extended(
            ".tpl:\n  variables: {A: a}\n  cache: {key: k}\n\
             one:\n  extends: .tpl\n  variables: null\n\
             two:\n  extends: .tpl\n  variables: {}\n",
        );
        assert!(at(&root, &["one", "variables"]).is_null());
        assert_eq!(at(&root, &["one", "cache", "key"]).as_str(), Some("k"));
        assert_eq!(keys(at(&root, &["two", "variables"])), ["A"]);
    }

    #[test]
    fn rule_161_circular_chains_are_errors() {
        let e = error("a:\n  extends: b\nb:\n  extends: a\n");
        assert_eq!(e.message, "a: circular dependency detected in `extends`");
        let e = error("self:\n  extends: self\n  script: x\n");
        assert_eq!(e.message, "self: circular dependency detected in `extends`");
        let e = error(
            "job:\n  extends: [ok, a]\nok:\n  script: x\na:\n  extends: b\nb:\n  extends: a\n",
        );
        assert_eq!(e.message, "a: circular dependency detected in `extends`");
    }

    #[test]
    fn rule_161_long_cycles_hit_the_depth_limit_first() {
        let mut text = String::new();
        for i in 0..15 {
            text.push_str(&format!("j{i}:\n  extends: j{}\n", (i + 1) % 15));
        }
        assert_eq!(error(&text).message, "j11: nesting too deep in `extends`");
    }

    #[test]
    fn rule_162_arrays_are_never_concatenated() {
        let root = extended(".a:\n  rules: [{if: $A}]\njob:\n  extends: .a\n  rules: [{if: $B}]\n");
        let rules = at(&root, &["job", "rules"]).as_seq().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(at(&rules[0], &["if"]).as_str(), Some("$B"));
    }

    #[test]
    fn unknown_parents_are_listed_at_the_first_one() {
        let e = error(".ok:\n  image: x\njob:\n  extends: [.ok, .nope, .gone]\n");
        assert_eq!(e.message, "job: unknown keys in `extends` (.nope, .gone)");
        assert_eq!((e.span.line, e.span.col), (4, 18));
    }

    #[test]
    fn unknown_parent_deep_in_a_chain_is_named_after_its_entry() {
        let e = error("job:\n  extends: .mid\n.mid:\n  extends: .missing\n");
        assert_eq!(e.message, ".mid: unknown keys in `extends` (.missing)");
    }

    #[test]
    fn parents_must_be_hashes() {
        let e = error(".str: just text\njob:\n  extends: .str\n  script: x\n");
        assert_eq!(e.message, "job: invalid base hashes in `extends` (.str)");
        let e = error(".ref: !reference [.x, y]\njob:\n  extends: .ref\n");
        assert_eq!(e.message, "job: invalid base hashes in `extends` (.ref)");
    }

    #[test]
    fn the_first_entry_in_document_order_reports() {
        let e = error("b:\n  extends: .nope_b\na:\n  extends: .nope_a\n");
        assert_eq!(e.message, "b: unknown keys in `extends` (.nope_b)");
    }

    #[test]
    fn non_string_names_print_like_ruby() {
        let e = error("job:\n  extends: [1, true, [x]]\n");
        assert_eq!(
            e.message,
            "job: unknown keys in `extends` (1, true, [\"x\"])"
        );
    }

    #[test]
    fn null_extends_and_non_hash_entries_are_left_alone() {
        let root =
            extended("variables: {A: a}\njob:\n  extends: null\n  script: x\nlist: [extends]\n");
        assert_eq!(keys(at(&root, &["job"])), ["extends", "script"]);
        assert!(at(&root, &["list"]).as_seq().is_some());
    }

    #[test]
    fn shared_parents_give_every_child_the_same_result() {
        let mut text =
            String::from(".a:\n  image: a\n  variables: {A: a}\n.b:\n  extends: .a\n  tags: [b]\n");
        for i in 0..300 {
            text.push_str(&format!("job{i}:\n  extends: [.b, .a]\n  script: s{i}\n"));
        }
        let root = extended(&text);
        for i in [0, 150, 299] {
            let job = at(&root, &[&format!("job{i}")]);
            assert_eq!(
                keys(job),
                ["image", "variables", "extends", "tags", "script"]
            );
        }
    }

    #[test]
    fn a_root_that_is_not_a_hash_is_left_alone() {
        let mut root = doc("[a, b]");
        resolve_extends(&mut root).unwrap();
        assert_eq!(root.as_seq().unwrap().len(), 2);
    }
}
