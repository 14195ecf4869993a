//! `!reference [job, key, ...]`: replaced by a copy of the value at that
//! path (rules 163-167).
//!
//! This follows GitLab's resolver closely, because its quirks are visible:
//! - Paths are looked up in the tree as it was before any reference was
//!   resolved (after `extends`). A path that runs through another
//!   `!reference` therefore fails, as does one through a list or a scalar.
//! - The copied value has its own references resolved: all of them when it
//!   is a hash, only its direct items when it is a list. A reference inside
//!   a list inside a referenced list is left as it is, and the job decoder
//!   then rejects it as GitLab does.
//! - A reference whose value is `null` or `false` "could not be found".
//! - Each reference is resolved once; meeting it again while it is being
//!   resolved is a circular chain.
//! - The first error stops resolution, so at most one is reported.

use std::collections::HashMap;

use super::ruby;
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::yaml::{Mapping, Node, Value};

/// References resolved inside one another, beyond which resolution stops.
/// GitLab has no such limit of its own (real files nest a few levels); this
/// one keeps recursion on hostile input within the stack.
const MAX_ACTIVE: usize = 50;

/// Replaces every `!reference` node by the value it points to. A reference
/// used as a list item is replaced in place, so it becomes a nested list
/// when its value is a list (script decoding flattens it, rule 164).
///
/// Errors: `!reference ["a", "b"] could not be found`,
/// `!reference ["a", "b"] is part of a circular chain`,
/// `!reference [] is not valid` (the tag needs a non-empty list of strings).
pub fn resolve_references(root: &mut Node) -> Result<(), Diagnostics> {
    let values = {
        let mut resolver = Resolver {
            config: &*root,
            memo: HashMap::new(),
            active: 0,
        };
        let mut values = Vec::new();
        resolver.walk(root, true, &mut values)?;
        values
    };
    let mut values = values.into_iter();
    substitute(root, true, &mut values);
    Ok(())
}

enum Memo {
    InProgress,
    Done(Node),
}

struct Resolver<'a> {
    /// The tree as it was before any reference was resolved.
    config: &'a Node,
    /// Keyed by the reference node's address, which stays put because the
    /// tree is only borrowed while references are resolved.
    memo: HashMap<*const Node, Memo>,
    active: usize,
}

impl<'a> Resolver<'a> {
    /// Resolves the references of the whole configuration in document
    /// order, pushing one value per reference node met. The root hash is
    /// searched to any depth; a root list only in its items, as GitLab does.
    fn walk(&mut self, node: &'a Node, top: bool, out: &mut Vec<Node>) -> Result<(), Diagnostic> {
        if node.is_reference() {
            out.push(self.resolve(node)?);
            return Ok(());
        }
        match &node.value {
            Value::Map(map) => {
                for (_, v) in map.iter() {
                    self.walk(v, false, out)?;
                }
            }
            Value::Seq(items) => {
                for item in items {
                    if !top || item.is_reference() {
                        self.walk(item, false, out)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The value of one reference. The copy's outer node takes the
    /// reference's position, so errors about the value as a whole point at
    /// the place that uses it; the nodes inside keep where they were written.
    fn resolve(&mut self, reference: &'a Node) -> Result<Node, Diagnostic> {
        let mut value = self.resolve_value(reference)?;
        value.span = reference.span;
        Ok(value)
    }

    fn resolve_value(&mut self, reference: &'a Node) -> Result<Node, Diagnostic> {
        let path = path(reference).ok_or_else(|| {
            Diagnostic::config(
                reference.span,
                format!("!reference {} is not valid", invalid_form(reference)),
            )
        })?;
        let key = reference as *const Node;
        match self.memo.get(&key) {
            Some(Memo::Done(value)) => return Ok(value.clone()),
            Some(Memo::InProgress) => {
                return Err(error(reference, "is part of a circular chain"));
            }
            None => {}
        }
        if self.active >= MAX_ACTIVE {
            return Err(error(reference, "is nested too deeply"));
        }
        self.memo.insert(key, Memo::InProgress);
        self.active += 1;
        let target = dig(self.config, &path).map_err(|()| not_found(reference))?;
        let value = match target {
            Some(target) => self.deep_resolve(target)?,
            None => return Err(not_found(reference)),
        };
        self.active -= 1;
        if matches!(value.value, Value::Null | Value::Bool(false)) {
            return Err(not_found(reference));
        }
        self.memo.insert(key, Memo::Done(value.clone()));
        Ok(value)
    }

    /// A referenced value with its references resolved: a hash fully, a list
    /// in its direct items only.
    fn deep_resolve(&mut self, node: &'a Node) -> Result<Node, Diagnostic> {
        if node.is_reference() {
            return self.resolve(node);
        }
        match &node.value {
            Value::Map(_) => self.transform(node),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(if item.is_reference() {
                        self.resolve(item)?
                    } else {
                        item.clone()
                    });
                }
                Ok(Node::seq(out, node.span))
            }
            _ => Ok(node.clone()),
        }
    }

    /// A copy with every reference in it resolved, at any depth.
    fn transform(&mut self, node: &'a Node) -> Result<Node, Diagnostic> {
        if node.is_reference() {
            return self.resolve(node);
        }
        match &node.value {
            Value::Map(map) => {
                let mut out = Mapping::new();
                for (k, v) in map.iter() {
                    out.insert(k.clone(), self.transform(v)?);
                }
                Ok(Node::map(out, node.span))
            }
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.transform(item)?);
                }
                Ok(Node::seq(out, node.span))
            }
            _ => Ok(node.clone()),
        }
    }
}

/// Puts the resolved values in place, visiting nodes in the order `walk` did.
fn substitute(node: &mut Node, top: bool, values: &mut impl Iterator<Item = Node>) {
    if node.is_reference() {
        if let Some(value) = values.next() {
            *node = value;
        }
        return;
    }
    match &mut node.value {
        Value::Map(map) => {
            for (_, v) in map.iter_mut() {
                substitute(v, false, values);
            }
        }
        Value::Seq(items) => {
            for item in items {
                if !top || item.is_reference() {
                    substitute(item, false, values);
                }
            }
        }
        _ => {}
    }
}

/// The path of a valid reference: a non-empty list of strings.
fn path(reference: &Node) -> Option<Vec<&str>> {
    let items = reference.as_seq().filter(|items| !items.is_empty())?;
    items.iter().map(|i| i.as_str()).collect()
}

/// Ruby's `Hash#dig` with symbol keys: `Ok(None)` when a key is missing or
/// a value on the way is `null`, `Err` when the way runs into something
/// that is not a hash (a list, a scalar, an unresolved reference).
fn dig<'a>(config: &'a Node, path: &[&str]) -> Result<Option<&'a Node>, ()> {
    let mut current = config;
    for (i, key) in path.iter().enumerate() {
        let map = match &current.value {
            Value::Null if i > 0 => return Ok(None),
            Value::Map(map) if !current.is_reference() => map,
            _ => return Err(()),
        };
        match map.get(key) {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// How GitLab prints a malformed tag: its scalar or hash if it has a
/// non-empty one, else its list.
fn invalid_form(reference: &Node) -> String {
    match &reference.value {
        Value::Map(map) if !map.is_empty() => ruby::inspect(&untagged(reference)),
        Value::Seq(_) => ruby::inspect(&untagged(reference)),
        Value::Str(s) if !s.is_empty() => {
            let mut out = String::new();
            ruby::inspect_str(s, &mut out);
            out
        }
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            let mut out = String::new();
            ruby::inspect_str(&reference.scalar_string().unwrap_or_default(), &mut out);
            out
        }
        _ => "[]".into(),
    }
}

fn untagged(node: &Node) -> Node {
    Node::new(node.value.clone(), node.span)
}

fn error(reference: &Node, what: &str) -> Diagnostic {
    Diagnostic::config(
        reference.span,
        format!("!reference {} {what}", ruby::inspect(&untagged(reference))),
    )
}

fn not_found(reference: &Node) -> Diagnostic {
    error(reference, "could not be found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::compose::resolve_extends;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn resolved(text: &str) -> Node {
        let mut root = doc(text);
        resolve_references(&mut root).unwrap();
        root
    }

    fn error(text: &str) -> Diagnostic {
        let mut root = doc(text);
        let mut diags = resolve_references(&mut root).unwrap_err();
        assert_eq!(diags.len(), 1);
        diags.0.remove(0)
    }

    fn at<'a>(root: &'a Node, path: &[&str]) -> &'a Node {
        path.iter()
            .fold(root, |n, k| n.as_map().unwrap().get(k).unwrap())
    }

    fn strings(node: &Node) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match &node.value {
                Value::Seq(items) => items.iter().for_each(|i| walk(i, out)),
                _ => out.push(node.scalar_string().unwrap().into_owned()),
            }
        }
        let mut out = Vec::new();
        walk(node, &mut out);
        out
    }

    #[test]
    fn rule_163_whole_values_are_copied() {
        let root = resolved(
            ".vars:\n  variables: {A: a, B: b}\njob:\n  variables: !reference [.vars, variables]\n  script: x\n",
        );
        let vars = at(&root, &["job", "variables"]);
        assert!(!vars.is_reference());
        assert_eq!(
            vars.as_map().unwrap().keys().collect::<Vec<_>>(),
            ["A", "B"]
        );
        // The copy as a whole points at the reference; its items at their source.
        assert_eq!(vars.span.line, 4);
        assert_eq!(at(vars, &["A"]).span.line, 2);
    }

    #[test]
    fn rule_164_leaves_and_list_items() {
        let root = resolved(
            ".vars:\n  variables: {URL: http://x}\n.setup:\n  script: [one, two]\n\
             job:\n  variables:\n    U: !reference [.vars, variables, URL]\n  \
             script:\n    - !reference [.setup, script]\n    - three\n",
        );
        assert_eq!(
            at(&root, &["job", "variables", "U"]).as_str(),
            Some("http://x")
        );
        let script = at(&root, &["job", "script"]).as_seq().unwrap();
        // Kept nested, as GitLab does; script decoding flattens it.
        assert_eq!(script[0].as_seq().unwrap().len(), 2);
        assert_eq!(
            strings(at(&root, &["job", "script"])),
            ["one", "two", "three"]
        );
    }

    #[test]
    fn rule_165_references_inside_referenced_values_resolve() {
        let root = resolved(
            ".a:\n  script: [a]\n.b:\n  script:\n    - !reference [.a, script]\n    - b\n\
             .c:\n  script:\n    - !reference [.b, script]\n    - c\n\
             job:\n  script:\n    - !reference [.c, script]\n    - d\n",
        );
        assert_eq!(strings(at(&root, &["job", "script"])), ["a", "b", "c", "d"]);
        assert_eq!(strings(at(&root, &[".c", "script"])), ["a", "b", "c"]);
    }

    #[test]
    fn rule_165_hash_targets_are_resolved_at_any_depth() {
        let root = resolved(
            ".img:\n  image: {name: ruby}\n.tpl:\n  image: !reference [.img, image]\n  \
             rules:\n    - if: $A\n      variables: !reference [.v, variables]\n\
             .v:\n  variables: {X: x}\njob: !reference [.tpl]\n",
        );
        assert_eq!(at(&root, &["job", "image", "name"]).as_str(), Some("ruby"));
        let rule = &at(&root, &["job", "rules"]).as_seq().unwrap()[0];
        assert_eq!(at(rule, &["variables", "X"]).as_str(), Some("x"));
    }

    #[test]
    fn rule_165_lists_inside_referenced_lists_keep_their_references() {
        // GitLab resolves only the direct items of a referenced list.
        let root = resolved(
            ".a:\n  script: [a]\n.b:\n  script:\n    - [!reference [.a, script]]\njob:\n  script: !reference [.b, script]\n",
        );
        let inner = &at(&root, &["job", "script"]).as_seq().unwrap()[0]
            .as_seq()
            .unwrap()[0];
        assert!(inner.is_reference());
        // Where the configuration itself is walked, everything resolves.
        let own = &at(&root, &[".b", "script"]).as_seq().unwrap()[0]
            .as_seq()
            .unwrap()[0];
        assert!(!own.is_reference());
    }

    #[test]
    fn rule_166_missing_references_are_errors() {
        let e = error(".a:\n  script: x\njob:\n  script: !reference [.a, before_script]\n");
        assert_eq!(
            e.message,
            r#"!reference [".a", "before_script"] could not be found"#
        );
        assert_eq!((e.span.line, e.span.col), (4, 11));
        let e = error("job:\n  script: !reference [.nowhere, script]\n");
        assert_eq!(
            e.message,
            r#"!reference [".nowhere", "script"] could not be found"#
        );
    }

    #[test]
    fn rule_166_paths_through_non_hashes_are_not_found() {
        let text =
            ".a:\n  script: [x]\n  image: ruby\njob:\n  script: !reference [.a, script, '0']\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "script", "0"] could not be found"#
        );
        let text = ".a:\n  image: ruby\njob:\n  script: !reference [.a, image, name]\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "image", "name"] could not be found"#
        );
        let text = ".a:\n  image: null\njob:\n  script: !reference [.a, image, name]\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "image", "name"] could not be found"#
        );
    }

    #[test]
    fn rule_166_paths_through_other_references_are_not_found() {
        let text = ".v:\n  variables: {X: x}\n.a:\n  variables: !reference [.v, variables]\n\
                    job:\n  variables:\n    X: !reference [.a, variables, X]\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "variables", "X"] could not be found"#
        );
    }

    #[test]
    fn rule_166_null_and_false_values_are_not_found() {
        let text =
            ".a:\n  allow_failure: false\njob:\n  allow_failure: !reference [.a, allow_failure]\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "allow_failure"] could not be found"#
        );
        let text = ".a:\n  cache: ~\njob:\n  cache: !reference [.a, cache]\n";
        assert_eq!(
            error(text).message,
            r#"!reference [".a", "cache"] could not be found"#
        );
        // `true` and `0` are values.
        let root = resolved(
            ".a:\n  i: true\n  n: 0\njob:\n  i: !reference [.a, i]\n  n: !reference [.a, n]\n",
        );
        assert_eq!(at(&root, &["job", "n"]).as_int(), Some(0));
    }

    #[test]
    fn rule_166_circular_chains_are_errors() {
        let e = error(".a:\n  script:\n    - !reference [.a, script]\n");
        assert_eq!(
            e.message,
            r#"!reference [".a", "script"] is part of a circular chain"#
        );
        let e = error(".a:\n  x: !reference [.b, x]\n.b:\n  x: !reference [.a, x]\n");
        assert_eq!(
            e.message,
            r#"!reference [".b", "x"] is part of a circular chain"#
        );
    }

    #[test]
    fn rule_7_malformed_tags_are_not_valid() {
        let e = error("job:\n  script: !reference []\n");
        assert_eq!(e.message, "!reference [] is not valid");
        let e = error("job:\n  script: !reference [.a, 1]\n");
        assert_eq!(e.message, r#"!reference [".a", 1] is not valid"#);
        let e = error("job:\n  script: !reference .a\n");
        assert_eq!(e.message, r#"!reference ".a" is not valid"#);
        let e = error("job:\n  script: !reference {a: b}\n");
        assert_eq!(e.message, r#"!reference {"a"=>"b"} is not valid"#);
    }

    #[test]
    fn rule_163_keys_with_colons_and_spaces() {
        let root = resolved(
            ".tpl::setup:\n  'my script': [a]\njob:\n  script: !reference ['.tpl::setup', 'my script']\n",
        );
        assert_eq!(strings(at(&root, &["job", "script"])), ["a"]);
        let e = error("job:\n  script: !reference ['.x::y z', \"q\\\"\"]\n");
        assert_eq!(
            e.message,
            r#"!reference [".x::y z", "q\""] could not be found"#
        );
    }

    #[test]
    fn rule_167_references_in_stages() {
        let root = resolved(
            ".s:\n  stages: [build, test]\nstages:\n  - !reference [.s, stages]\n  - deploy\n",
        );
        assert_eq!(strings(at(&root, &["stages"])), ["build", "test", "deploy"]);
    }

    #[test]
    fn references_see_the_extended_tree() {
        let mut root = doc(".base:\n  script: [base]\n.child:\n  extends: .base\n\
             job:\n  extends: .child\n  before_script: !reference [.child, script]\n  \
             after_script: !reference [job, script]\n");
        resolve_extends(&mut root).unwrap();
        resolve_references(&mut root).unwrap();
        assert_eq!(strings(at(&root, &["job", "before_script"])), ["base"]);
        assert_eq!(strings(at(&root, &["job", "after_script"])), ["base"]);
    }

    #[test]
    fn parents_with_references_resolve_against_each_child() {
        let mut root = doc(
            ".v:\n  variables: {X: x}\n.tpl:\n  variables: !reference [.v, variables]\n\
             a:\n  extends: .tpl\n  script: a\nb:\n  extends: .tpl\n  script: b\n",
        );
        resolve_extends(&mut root).unwrap();
        resolve_references(&mut root).unwrap();
        for job in ["a", "b", ".tpl"] {
            assert_eq!(at(&root, &[job, "variables", "X"]).as_str(), Some("x"));
        }
    }

    #[test]
    fn the_first_error_in_document_order_is_reported() {
        let e = error("a:\n  script: !reference [.x, one]\nb:\n  script: !reference [.x, two]\n");
        assert_eq!(e.message, r#"!reference [".x", "one"] could not be found"#);
    }

    #[test]
    fn hostile_chains_stop_with_an_error() {
        let chain = |n: usize| {
            let mut text = String::new();
            for i in 0..n {
                text.push_str(&format!(".r{i}:\n  v: !reference [.r{}, v]\n", i + 1));
            }
            text + &format!(".r{n}:\n  v: end\n")
        };
        let e = error(&chain(200));
        assert!(e.message.ends_with("is nested too deeply"), "{}", e.message);
        let root = resolved(&chain(40));
        assert_eq!(at(&root, &[".r0", "v"]).as_str(), Some("end"));
    }
}
