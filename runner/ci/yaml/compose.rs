//! Builds [`Node`] trees from the parser's events.
//!
//! The composer does what Psych does when it turns YAML into Ruby objects:
//! aliases become copies of their anchor's value, `<<` merge keys are applied,
//! a repeated key replaces the earlier value, and plain scalars are resolved
//! with YAML 1.1 rules. It keeps custom tags (`!reference`) for the later
//! composition steps and records every node's position.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan, Tag};

use super::node::{Mapping, Node, Value};
use super::scalar::resolve_plain;
use crate::ci::diag::Diagnostic;
use crate::ci::source::{SourceId, Span};

/// GitLab refuses configurations nested deeper than this ("The parsed YAML
/// is too big"); the limit also keeps every later recursive pass safe.
pub const MAX_DEPTH: usize = 100;

/// Copies made through aliases are counted so that an alias bomb
/// ("billion laughs") fails quickly instead of eating memory.
const MAX_NODES: usize = 2_000_000;

/// Parses every YAML document in `text`. A text with no document at all
/// gives an empty list; `---` alone gives one null node.
pub fn parse_documents(text: &str, source: SourceId) -> Result<Vec<Node>, Diagnostic> {
    let mut composer = Composer {
        source,
        anchors: HashMap::new(),
        stack: Vec::new(),
        docs: Vec::new(),
        nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            Diagnostic::syntax(
                Span::new(source, m.line() as u32, m.col() as u32 + 1),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        composer.event(event, span)?;
    }
    Ok(composer.docs)
}

/// A collection being built, waiting for its children.
enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
        tag: Option<Box<str>>,
    },
    Map {
        map: Mapping,
        pending_key: Option<Node>,
        span: Span,
        anchor: usize,
        tag: Option<Box<str>>,
    },
}

struct Composer {
    source: SourceId,
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    nodes: usize,
}

impl Composer {
    fn span(&self, s: YamlSpan) -> Span {
        Span::new(self.source, s.start.line() as u32, s.start.col() as u32 + 1)
    }

    fn event(&mut self, event: Event<'_>, yspan: YamlSpan) -> Result<(), Diagnostic> {
        let span = self.span(yspan);
        match event {
            Event::DocumentStart(_) => {
                // Anchors are local to a document.
                self.anchors.clear();
            }
            Event::DocumentEnd => {}
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(&text, style, tag.as_deref(), span)?;
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(Diagnostic::syntax(span, "invalid YAML: unknown alias"));
                };
                self.nodes += count_nodes(&node);
                if self.nodes > MAX_NODES {
                    return Err(Diagnostic::syntax(span, "The parsed YAML is too big"));
                }
                self.finish(node, 0)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(span)?;
                let tag = custom_tag(tag.as_deref());
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    span,
                    anchor,
                    tag,
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.open(span)?;
                let tag = custom_tag(tag.as_deref());
                self.stack.push(Frame::Map {
                    map: Mapping::new(),
                    pending_key: None,
                    span,
                    anchor,
                    tag,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    items,
                    span,
                    anchor,
                    tag,
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Seq(items),
                        span,
                        tag,
                    };
                    self.finish(node, anchor)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    map,
                    span,
                    anchor,
                    tag,
                    ..
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Map(map),
                        span,
                        tag,
                    };
                    self.finish(node, anchor)?;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(&mut self, span: Span) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::syntax(span, "The parsed YAML is too big"));
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<Node, Diagnostic> {
        self.nodes += 1;
        let value = match core_tag(tag) {
            Some("str") => Value::Str(text.to_string()),
            Some("int") => match resolve_plain(text) {
                v @ Value::Int(_) => v,
                _ => {
                    return Err(Diagnostic::syntax(
                        span,
                        format!("invalid YAML: invalid value for !!int: {text:?}"),
                    ));
                }
            },
            Some("float") => match resolve_plain(text) {
                Value::Int(i) => Value::Float(i as f64),
                v @ Value::Float(_) => v,
                _ => {
                    return Err(Diagnostic::syntax(
                        span,
                        format!("invalid YAML: invalid value for !!float: {text:?}"),
                    ));
                }
            },
            Some("bool") | Some("null") => resolve_plain(text),
            _ if style == ScalarStyle::Plain => resolve_plain(text),
            _ => Value::Str(text.to_string()),
        };
        Ok(Node {
            value,
            span,
            tag: custom_tag(tag),
        })
    }

    /// Hands a completed node to its parent, or ends the document.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                map, pending_key, ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => insert_entry(map, key, node),
            },
        }
        Ok(())
    }
}

/// Adds a key to a mapping as Psych does, including `<<` merge keys.
///
/// Psych applies a merge with `Hash#merge!`: merged keys replace keys written
/// *before* the `<<` and are replaced by keys written after it. A sequence of
/// mappings merges with the first mapping winning. A `<<` whose value is not
/// a mapping (or list of mappings) is kept as an ordinary key.
fn insert_entry(map: &mut Mapping, key: Node, value: Node) {
    let is_merge = key.as_str() == Some("<<") && key.tag.is_none();
    if is_merge {
        match &value.value {
            Value::Map(source) => {
                for (k, v) in source.iter() {
                    map.insert(k.clone(), v.clone());
                }
                return;
            }
            Value::Seq(items) if items.iter().all(|i| i.as_map().is_some()) => {
                let mut merged = Mapping::new();
                for item in items.iter().rev() {
                    for (k, v) in item.as_map().into_iter().flat_map(Mapping::iter) {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                // Hash#merge! on a hash built in reverse order: the first
                // listed mapping's value wins for a shared key.
                for (k, v) in merged.into_entries() {
                    map.insert(k, v);
                }
                return;
            }
            _ => {}
        }
    }
    map.insert(key, value);
}

/// The core-schema type named by a `!!type` tag, if any.
fn core_tag(tag: Option<&Tag>) -> Option<&str> {
    let tag = tag?;
    if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
        Some(tag.suffix.as_str())
    } else {
        None
    }
}

/// Custom (application) tags such as `!reference`, spelled with their `!`.
fn custom_tag(tag: Option<&Tag>) -> Option<Box<str>> {
    let tag = tag?;
    if core_tag(Some(tag)).is_some() {
        return None;
    }
    Some(format!("{}{}", tag.handle, tag.suffix).into_boxed_str())
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(map) => {
            1 + map
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        let mut docs = parse_documents(text, SourceId(1)).expect("valid YAML");
        assert_eq!(docs.len(), 1, "one document");
        docs.remove(0)
    }

    fn get<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(node, |n, k| {
            n.as_map()
                .and_then(|m| m.get(k))
                .unwrap_or_else(|| panic!("no key {k}"))
        })
    }

    #[test]
    fn rule_3_merge_key_copies_the_anchored_hash() {
        let doc = parse(
            ".base: &base\n  image: ruby\n  stage: build\njob:\n  <<: *base\n  stage: test\n",
        );
        assert_eq!(get(&doc, &["job", "image"]).as_str(), Some("ruby"));
        assert_eq!(get(&doc, &["job", "stage"]).as_str(), Some("test"));
    }

    #[test]
    fn rule_5_several_merge_keys_all_merge_and_last_duplicate_wins() {
        let doc = parse(concat!(
            "a: &a {x: 1}\n",
            "b: &b {y: 2}\n",
            "job:\n  <<: *a\n  <<: *b\n  z: 3\n  z: 4\n",
        ));
        let job = get(&doc, &["job"]).as_map().unwrap();
        assert_eq!(job.keys().collect::<Vec<_>>(), ["x", "y", "z"]);
        assert_eq!(job.get("z").unwrap().as_int(), Some(4));
    }

    #[test]
    fn merge_of_a_list_of_hashes_prefers_the_first() {
        let doc = parse("a: &a {k: 1}\nb: &b {k: 2, m: 3}\nj:\n  <<: [*a, *b]\n");
        assert_eq!(get(&doc, &["j", "k"]).as_int(), Some(1));
        assert_eq!(get(&doc, &["j", "m"]).as_int(), Some(3));
    }

    #[test]
    fn merge_after_explicit_key_replaces_it_as_psych_does() {
        let doc = parse("b: &b {k: from_merge}\nj:\n  k: explicit\n  <<: *b\n");
        assert_eq!(get(&doc, &["j", "k"]).as_str(), Some("from_merge"));
    }

    #[test]
    fn rule_6_alias_of_a_list_inside_a_list_nests() {
        let doc = parse("s: &s [a, b]\nj:\n  script:\n    - *s\n    - c\n");
        let script = get(&doc, &["j", "script"]).as_seq().unwrap();
        assert_eq!(script.len(), 2);
        assert_eq!(script[0].as_seq().unwrap().len(), 2);
    }

    #[test]
    fn rule_7_reference_tag_is_kept() {
        let doc = parse("j:\n  script:\n    - !reference [.setup, script]\n");
        let item = &get(&doc, &["j", "script"]).as_seq().unwrap()[0];
        assert!(item.is_reference());
        assert_eq!(item.as_seq().unwrap()[1].as_str(), Some("script"));
    }

    #[test]
    fn rule_8_spec_header_is_a_separate_document() {
        let docs = parse_documents(
            "spec:\n  inputs:\n    x:\n---\nj:\n  script: echo\n",
            SourceId(1),
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[0].as_map().unwrap().contains_key("spec"));
    }

    #[test]
    fn rule_9_block_scalars_keep_or_fold_newlines() {
        let doc = parse("a: |\n  one\n  two\nb: >\n  one\n  two\n");
        assert_eq!(get(&doc, &["a"]).as_str(), Some("one\ntwo\n"));
        assert_eq!(get(&doc, &["b"]).as_str(), Some("one two\n"));
    }

    #[test]
    fn quoted_scalars_are_never_resolved() {
        let doc = parse("a: '012'\nb: \"yes\"\nc: 012\nd: yes\n");
        assert_eq!(get(&doc, &["a"]).as_str(), Some("012"));
        assert_eq!(get(&doc, &["b"]).as_str(), Some("yes"));
        assert_eq!(get(&doc, &["c"]).as_int(), Some(10));
        assert_eq!(get(&doc, &["d"]).as_bool(), Some(true));
    }

    #[test]
    fn core_tags_force_the_type() {
        let doc = parse("a: !!str 012\nb: !!int '7'\n");
        assert_eq!(get(&doc, &["a"]).as_str(), Some("012"));
        assert_eq!(get(&doc, &["b"]).as_int(), Some(7));
    }

    #[test]
    fn every_node_has_its_position() {
        let doc = parse("top:\n  key: value\n  list:\n    - item\n");
        let value = get(&doc, &["top", "key"]);
        assert_eq!((value.span.line, value.span.col), (2, 8));
        let item = &get(&doc, &["top", "list"]).as_seq().unwrap()[0];
        assert_eq!((item.span.line, item.span.col), (4, 7));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse_documents("a: [1, 2\nb: c\n", SourceId(1)).unwrap_err();
        assert_eq!(err.kind, crate::ci::diag::DiagnosticKind::Syntax);
        assert!(err.span.line >= 1, "{err:?}");
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
    }

    #[test]
    fn unknown_alias_is_an_error() {
        assert!(parse_documents("a: *nope\n", SourceId(1)).is_err());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse_documents(&text, SourceId(1)).unwrap_err();
        assert!(err.message.contains("too big"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        // The parser's own recursion limit may trip before ours does.
        for depth in [150, 5000] {
            let text = "[".repeat(depth) + &"]".repeat(depth);
            let err = parse_documents(&text, SourceId(1)).unwrap_err();
            assert!(
                err.message.contains("too big") || err.message.contains("recursion"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn empty_text_has_no_document() {
        assert!(parse_documents("", SourceId(1)).unwrap().is_empty());
        assert!(
            parse_documents("# only a comment\n", SourceId(1))
                .unwrap()
                .is_empty()
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_documents(&text, SourceId(1));
        }

        #[test]
        fn yaml_like_text_never_panics(text in "[-:&*!<>\\[\\]{}|,'\" a-z0-9\n]{0,200}") {
            let _ = parse_documents(&text, SourceId(1));
        }
    }
}
