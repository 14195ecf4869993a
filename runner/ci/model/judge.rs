//! How GitLab's entry validators judge values and word their verdicts,
//! shared by the pipeline and job decoders.
//!
//! GitLab validates a keyword in one of two places. A keyword that is a
//! nested entry reports under its own key path (`jobs:build:script config
//! should be ...`). A keyword checked as an attribute of its parent reports
//! under the parent's path with the attribute name humanized
//! (`jobs:build allow failure should be a hash or a boolean value`).

use super::decode::Decoder;
use crate::ci::diag::Diagnostic;
use crate::ci::yaml::{Node, Value};

/// Reports `<path> <attribute> <message>` with the attribute named the way
/// ActiveModel's `humanize` names it: underscores become spaces.
pub(crate) fn attr_error(d: &mut Decoder, node: &Node, path: &str, attr: &str, message: &str) {
    d.error(node, path, format!("{} {message}", humanize(attr)));
}

/// ActiveModel's `humanize` for the attribute names GitLab uses: `_`
/// becomes a space, leading spaces go, and a trailing `_id` is dropped.
pub(crate) fn humanize(attr: &str) -> String {
    let trimmed = attr.strip_suffix("_id").unwrap_or(attr);
    trimmed.replace('_', " ").trim_start().to_string()
}

/// A message that GitLab emits as is, without a key path.
pub(crate) fn bare_error(d: &mut Decoder, node: &Node, message: &str) {
    d.diags.push(Diagnostic::config(node.span, message));
}

/// A list whose items are all strings, without reporting anything.
pub(crate) fn array_of_strings(node: &Node) -> Option<Vec<String>> {
    node.as_seq()?
        .iter()
        .map(|i| i.as_str().map(String::from))
        .collect()
}

/// Splits `/pattern/flags` (flags from `ismU`) into its pattern and
/// flags: the form GitLab treats as a regular expression.
pub(crate) fn slash_regex(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('/')?;
    let end = rest.rfind('/')?;
    let (pattern, flags) = (&rest[..end], &rest[end + 1..]);
    flags
        .chars()
        .all(|c| "ismU".contains(c))
        .then_some((pattern, flags))
}

/// Whether a pattern compiles in RE2's syntax, which GitLab requires. The
/// `regex` crate follows RE2 (no backreferences, no lookaround).
pub(crate) fn compiles_as_re2(pattern: &str, flags: &str) -> bool {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .swap_greed(flags.contains('U'))
        .build()
        .is_ok()
}

/// Ruby's `blank?`: `nil`, `false`, empty or whitespace-only strings, and
/// empty arrays and hashes.
pub(crate) fn is_blank(node: &Node) -> bool {
    match &node.value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Str(s) => s.trim().is_empty(),
        Value::Seq(items) => items.is_empty(),
        Value::Map(map) => map.is_empty(),
        Value::Int(_) | Value::Float(_) => false,
    }
}

/// GitLab's "alphanumeric" values: strings and integers.
pub(crate) fn is_alphanumeric(node: &Node) -> bool {
    matches!(node.value, Value::Str(_) | Value::Int(_))
}

/// The `to_s` of a scalar used in a message (`unknown value: 42`).
pub(crate) fn to_s(node: &Node) -> String {
    node.scalar_string()
        .map(|s| s.into_owned())
        .unwrap_or_else(|| node.type_name().to_string())
}

/// ActiveModel's `numericality: { only_integer: true, greater_than_or_equal_to:
/// min, less_than_or_equal_to: max }`. Reports under `<path> <attr>` and
/// returns the number when it is valid.
pub(crate) fn integer_in_range(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    attr: &str,
    min: i64,
    max: i64,
) -> Option<i64> {
    // ActiveModel reads numeric strings too, so `max: "2"` is accepted.
    let number = match &node.value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(number) = number else {
        attr_error(d, node, path, attr, "is not a number");
        return None;
    };
    if number.fract() != 0.0 || !number.is_finite() {
        attr_error(d, node, path, attr, "must be an integer");
        return None;
    }
    if number < min as f64 {
        attr_error(
            d,
            node,
            path,
            attr,
            &format!("must be greater than or equal to {min}"),
        );
        return None;
    }
    if number > max as f64 {
        attr_error(
            d,
            node,
            path,
            attr,
            &format!("must be less than or equal to {max}"),
        );
        return None;
    }
    Some(number as i64)
}

/// The items of a list that may nest lists (what anchors and `!reference`
/// make), flattened in order. `None` when an item fails `accept` or the
/// nesting is deeper than `max_depth`.
pub(crate) fn flatten_nested(
    node: &Node,
    max_depth: usize,
    accept: impl Fn(&Node) -> bool + Copy,
) -> Option<Vec<&Node>> {
    fn walk<'n>(
        items: &'n [Node],
        depth: usize,
        max_depth: usize,
        accept: impl Fn(&Node) -> bool + Copy,
        out: &mut Vec<&'n Node>,
    ) -> bool {
        items.iter().all(|item| match &item.value {
            Value::Seq(inner) if depth < max_depth => {
                walk(inner, depth + 1, max_depth, accept, out)
            }
            _ if accept(item) => {
                out.push(item);
                true
            }
            _ => false,
        })
    }
    let items = node.as_seq()?;
    let mut out = Vec::new();
    walk(items, 1, max_depth, accept, &mut out).then_some(out)
}

/// Ruby's `[value].flatten` without a depth limit: every nested list is
/// opened, other values are kept.
pub(crate) fn flatten_all(node: &Node) -> Vec<&Node> {
    fn walk<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
        match &node.value {
            Value::Seq(items) => items.iter().for_each(|i| walk(i, out)),
            _ => out.push(node),
        }
    }
    let mut out = Vec::new();
    walk(node, &mut out);
    out
}

/// Lists the keys of `map` that are also in `keys`, in the order written:
/// GitLab's mutually exclusive and disallowed keys messages list them so.
pub(crate) fn present_keys<'m>(
    map: &'m crate::ci::yaml::Mapping,
    keys: &[&str],
    skip_null: bool,
) -> Vec<&'m str> {
    map.iter()
        .filter(|(_, v)| !(skip_null && v.is_null()))
        .filter_map(|(k, _)| k.as_str())
        .filter(|k| keys.contains(k))
        .collect()
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
    fn humanize_turns_underscores_into_spaces() {
        assert_eq!(humanize("allow_failure"), "allow failure");
        assert_eq!(humanize("start_in"), "start in");
        assert_eq!(humanize("when"), "when");
    }

    #[test]
    fn blank_follows_ruby() {
        for text in ["~", "false", "''", "'  '", "[]", "{}"] {
            assert!(is_blank(&doc(text)), "{text} should be blank");
        }
        for text in ["0", "true", "x", "[a]", "{a: 1}"] {
            assert!(!is_blank(&doc(text)), "{text} should not be blank");
        }
    }

    #[test]
    fn numericality_messages() {
        let mut d = Decoder::lowercasing();
        assert_eq!(
            integer_in_range(&mut d, &doc("2"), "retry", "max", 0, 2),
            Some(2)
        );
        assert_eq!(
            integer_in_range(&mut d, &doc("'1'"), "retry", "max", 0, 2),
            Some(1)
        );
        assert_eq!(
            integer_in_range(&mut d, &doc("3"), "retry", "max", 0, 2),
            None
        );
        assert_eq!(
            integer_in_range(&mut d, &doc("1.5"), "retry", "max", 0, 2),
            None
        );
        assert_eq!(
            integer_in_range(&mut d, &doc("x"), "retry", "max", 0, 2),
            None
        );
        let messages: Vec<_> = d.diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "retry max must be less than or equal to 2",
                "retry max must be an integer",
                "retry max is not a number"
            ]
        );
    }

    #[test]
    fn slash_regexes() {
        assert_eq!(slash_regex("/^v\\d+$/i"), Some(("^v\\d+$", "i")));
        assert_eq!(slash_regex("/a/b"), None);
        assert_eq!(slash_regex("main"), None);
        assert!(compiles_as_re2("^release/.*$", ""));
        assert!(!compiles_as_re2("*invalid", ""));
        assert!(!compiles_as_re2("(?=x)", ""));
    }

    #[test]
    fn nested_lists_flatten_to_the_depth_limit() {
        let node = doc("[{a: 1}, [{b: 2}, [{c: 3}]]]");
        let flat = flatten_nested(&node, 10, |n| n.as_map().is_some()).unwrap();
        assert_eq!(flat.len(), 3);
        assert!(flatten_nested(&node, 2, |n| n.as_map().is_some()).is_none());
        assert!(flatten_nested(&doc("[{a: 1}, x]"), 10, |n| n.as_map().is_some()).is_none());
        assert_eq!(flatten_all(&doc("[a, [b, [c]]]")).len(), 3);
    }
}
