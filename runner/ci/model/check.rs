//! Checks shared by the keyword decoders, worded as GitLab's validators
//! word them.
//!
//! GitLab reports a problem with a hash entry's attribute as
//! `<entry path> <attribute> <message>`, with the attribute humanized
//! (`expire_in` becomes `expire in`): `jobs:build:artifacts expire in should
//! be a duration`. Problems with the entry itself use `config`:
//! `jobs:build:artifacts config should be a hash`.

use super::decode::Decoder;
use super::duration::{duration_with_variables, is_duration, is_never};
use crate::ci::yaml::{Mapping, Node, Value};

/// Rails' `humanize` of an attribute name as it appears in messages.
pub(crate) fn humanize(key: &str) -> String {
    key.replace('_', " ")
}

/// `<path>:<key>`, the path of a nested entry.
pub(crate) fn child(path: &str, key: &str) -> String {
    format!("{path}:{key}")
}

/// Splits `jobs:build:identity` into `jobs:build` and `identity`, for
/// keywords GitLab validates as an attribute of the enclosing entry.
pub(crate) fn split_last(path: &str) -> (&str, &str) {
    match path.rsplit_once(':') {
        Some((parent, key)) => (parent, key),
        None => ("", path),
    }
}

/// Rails' `blank?`: null, `false`, an empty or all-whitespace string, an
/// empty array or hash.
pub(crate) fn is_blank(node: &Node) -> bool {
    match &node.value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Str(s) => s.chars().all(char::is_whitespace),
        Value::Seq(items) => items.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Int(_) | Value::Float(_) => false,
    }
}

/// Counts errors so a decoder can tell whether its part added any.
pub(crate) struct ErrorMark(usize);

impl ErrorMark {
    pub fn new(d: &Decoder) -> ErrorMark {
        ErrorMark(d.diags.len())
    }

    /// True when no error was recorded since the mark.
    pub fn clean(&self, d: &Decoder) -> bool {
        d.diags.len() == self.0
    }

    /// `Some(value)` when no error was recorded since the mark.
    pub fn finish<T>(&self, d: &Decoder, value: T) -> Option<T> {
        (d.diags.len() == self.0).then_some(value)
    }
}

/// Reports a problem with attribute `key` of the entry at `path`.
pub(crate) fn attr_error(d: &mut Decoder, node: &Node, path: &str, key: &str, message: &str) {
    d.error(node, path, format!("{} {message}", humanize(key)));
}

/// An optional string attribute (`validates :key, type: String,
/// allow_nil: true`). Null counts as absent.
pub(crate) fn opt_string(d: &mut Decoder, map: &Mapping, path: &str, key: &str) -> Option<String> {
    let node = map.get(key)?;
    match &node.value {
        Value::Null => None,
        Value::Str(s) => Some(s.clone()),
        _ => {
            attr_error(d, node, path, key, "should be a string");
            None
        }
    }
}

/// A string attribute that must be present (`presence: true, type: String`).
pub(crate) fn required_string(
    d: &mut Decoder,
    map_node: &Node,
    map: &Mapping,
    path: &str,
    key: &str,
) -> Option<String> {
    match map.get(key) {
        Some(node) if !is_blank(node) => match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                attr_error(d, node, path, key, "should be a string");
                None
            }
        },
        found => {
            attr_error(d, found.unwrap_or(map_node), path, key, "can't be blank");
            if let Some(node) = found.filter(|n| !n.is_null() && n.as_str().is_none()) {
                attr_error(d, node, path, key, "should be a string");
            }
            None
        }
    }
}

/// An optional boolean attribute (`boolean: true, allow_nil: true`).
pub(crate) fn opt_bool(d: &mut Decoder, map: &Mapping, path: &str, key: &str) -> Option<bool> {
    let node = map.get(key)?;
    match node.value {
        Value::Null => None,
        Value::Bool(b) => Some(b),
        _ => {
            attr_error(d, node, path, key, "should be a boolean value");
            None
        }
    }
}

/// An optional array-of-strings attribute.
pub(crate) fn opt_strings(
    d: &mut Decoder,
    map: &Mapping,
    path: &str,
    key: &str,
) -> Option<Vec<String>> {
    let node = map.get(key)?;
    if node.is_null() {
        return None;
    }
    match strings(node) {
        Some(items) => Some(items),
        None => {
            attr_error(d, node, path, key, "should be an array of strings");
            None
        }
    }
}

/// The items of an array of strings, or `None` if it is not one.
pub(crate) fn strings(node: &Node) -> Option<Vec<String>> {
    node.as_seq()?
        .iter()
        .map(|item| item.as_str().map(String::from))
        .collect()
}

/// A string, or an array of strings, as a list.
pub(crate) fn string_or_strings(node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Str(s) => Some(vec![s.clone()]),
        _ => strings(node),
    }
}

/// An entry that is itself a leaf node (`entry :paths, Entry::Paths`):
/// errors read `<path>:<key> config should be an array of strings`.
pub(crate) fn entry_strings(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<String>> {
    let items = strings(node);
    if items.is_none() {
        d.error(node, path, "config should be an array of strings");
    }
    items
}

/// A boolean entry (`Gitlab::Config::Entry::Boolean`).
pub(crate) fn entry_bool(d: &mut Decoder, node: &Node, path: &str) -> Option<bool> {
    let b = node.as_bool();
    if b.is_none() {
        d.error(node, path, "config should be a boolean value");
    }
    b
}

/// GitLab's `DurationValidator` with the CI duration parser: `never` is
/// accepted, a value that may hold a variable is not checked, anything
/// else must parse. Reports `<attribute> should be a duration`.
pub(crate) fn check_duration(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    key: &str,
    allow_never: bool,
) {
    let ok = match node.as_str() {
        Some(text) => {
            duration_with_variables(text) || (allow_never && is_never(text)) || is_duration(text)
        }
        None => false,
    };
    if !ok {
        attr_error(d, node, path, key, "should be a duration");
    }
}

/// GitLab's `KeyValidator` for cache keys and prefixes: a string (or
/// symbol), without `/` (also URL-encoded as `%2F`), and not only dots.
/// Messages are prefixed with `subject` (`config` for an entry).
pub(crate) fn check_cache_key(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    subject: &str,
) -> Option<String> {
    let Some(text) = node.as_str() else {
        d.error(
            node,
            path,
            format!("{subject} should be a string or symbol"),
        );
        return None;
    };
    let decoded = url_unescape(text);
    if decoded.contains('/') {
        d.error(
            node,
            path,
            format!("{subject} cannot contain the \"/\" character"),
        );
        return None;
    }
    if !decoded.is_empty() && decoded.chars().all(|c| c == '.') {
        d.error(node, path, format!("{subject} cannot be \".\" or \"..\""));
        return None;
    }
    Some(text.to_string())
}

/// Ruby's `CGI.unescape`: `%XX` becomes the byte, `+` a space.
pub(crate) fn url_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|v| v as u8)
}

/// Variables of a service (`Entry::Variables`): a hash whose values are
/// scalars, turned into strings as Ruby's `to_s` would.
pub(crate) fn variables(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
    let map = d.map(node, path)?;
    let mark = ErrorMark::new(d);
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map.iter() {
        let name = key
            .scalar_string()
            .map(|s| s.into_owned())
            .unwrap_or_default();
        match &value.value {
            Value::Seq(_) | Value::Null => {
                d.error(
                    value,
                    "variable definition",
                    "must be either a string or a hash",
                );
            }
            Value::Map(_) => d.error(value, &child(path, &name), "config must be a string"),
            _ => {
                let text = value
                    .scalar_string()
                    .map(|s| s.into_owned())
                    .unwrap_or_default();
                out.push((name, text));
            }
        }
    }
    mark.finish(d, out)
}

/// A short list of allowed words, as GitLab prints it: `a, b, c`.
pub(crate) fn one_of(allowed: &[&str]) -> String {
    allowed.join(", ")
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
    fn rule_217_url_encoded_slash_and_dots_are_decoded() {
        assert_eq!(url_unescape("a%2Fb"), "a/b");
        assert_eq!(url_unescape("%2e%2E"), "..");
        assert_eq!(url_unescape("100%"), "100%");
        assert_eq!(url_unescape("a+b"), "a b");
    }

    #[test]
    fn blank_matches_rails() {
        assert!(is_blank(
            &doc("k: ' '").as_map().unwrap().get("k").unwrap().clone()
        ));
        assert!(is_blank(
            &doc("k: false").as_map().unwrap().get("k").unwrap().clone()
        ));
        assert!(is_blank(
            &doc("k: []").as_map().unwrap().get("k").unwrap().clone()
        ));
        assert!(!is_blank(
            &doc("k: 0").as_map().unwrap().get("k").unwrap().clone()
        ));
    }

    #[test]
    fn service_variables_take_scalars_as_ruby_strings() {
        let node = doc("A: 1\nB: true\nC: x\nD: 1.5\n");
        let mut d = Decoder::new();
        let vars = variables(&mut d, &node, "v").unwrap();
        assert_eq!(
            vars,
            [("A", "1"), ("B", "true"), ("C", "x"), ("D", "1.5")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let mut d = Decoder::new();
        assert!(variables(&mut d, &doc("A: {value: x}\n"), "v").is_none());
        assert_eq!(d.diags.0[0].message, "v:A config must be a string");
    }
}
