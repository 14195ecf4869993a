//! The YAML tree every later step works on.
//!
//! A [`Node`] is a value as Ruby's Psych would load it (YAML 1.1 scalars,
//! anchors expanded, `<<` merged, last duplicate key wins) that also keeps
//! where it was written and its custom tag (`!reference`). GitLab's
//! composition steps (`include`, `extends`, `!reference`, `default`) are
//! done on this tree, so positions survive into the typed model's errors.

use std::borrow::Cow;

use crate::ci::source::Span;

/// A YAML value with its position and tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// A custom tag such as `!reference`, with its leading `!`. Core-schema
    /// tags (`!!str`, `!!int`, ...) are applied while loading and not kept.
    pub tag: Option<Box<str>>,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Mapping),
}

/// An ordered mapping. Keys are nodes because YAML allows `true:` or `1:` as
/// keys; lookups by keyword compare string keys only.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Mapping {
    entries: Vec<(Node, Node)>,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Node {
        Node {
            value,
            span,
            tag: None,
        }
    }

    pub fn null(span: Span) -> Node {
        Node::new(Value::Null, span)
    }

    pub fn string(s: impl Into<String>, span: Span) -> Node {
        Node::new(Value::Str(s.into()), span)
    }

    pub fn seq(items: Vec<Node>, span: Span) -> Node {
        Node::new(Value::Seq(items), span)
    }

    pub fn map(map: Mapping, span: Span) -> Node {
        Node::new(Value::Map(map), span)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Mapping> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self.value, Value::Seq(_) | Value::Map(_))
    }

    /// True for a `!reference [job, key, ...]` node not yet resolved.
    pub fn is_reference(&self) -> bool {
        self.tag.as_deref() == Some("!reference")
    }

    /// The value as Ruby's `to_s` would print it, for scalars. GitLab turns
    /// integer variable values into strings this way (`012` is octal in
    /// YAML 1.1, so it becomes `"10"`).
    pub fn scalar_string(&self) -> Option<Cow<'_, str>> {
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Float(f) => Some(Cow::Owned(ruby_float_to_s(*f))),
            Value::Null => Some(Cow::Borrowed("")),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The name of the value's type, as used in messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "hash",
        }
    }
}

/// Ruby prints floats with at least one decimal (`1.0`) and switches to
/// exponent form outside 1e-4..1e16.
fn ruby_float_to_s(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { "-" } else { "+" },
            exp.abs()
        );
    }
    let s = f.to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}

impl Mapping {
    pub fn new() -> Mapping {
        Mapping::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under a string key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node and the value under a string key.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets a key. An existing key keeps its place and takes the new value,
    /// as assigning to a Ruby hash does: this is how "last duplicate wins"
    /// and merges keep the order the user wrote.
    pub fn insert(&mut self, key: Node, value: Node) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| same_key(k, &key)) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Sets a string key; the key node takes the value's span.
    pub fn insert_str(&mut self, key: &str, value: Node) {
        let span = value.span;
        self.insert(Node::string(key, span), value);
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let at = self
            .entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))?;
        Some(self.entries.remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Node, &Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Node, &mut Node)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// String keys in order; keys of other types are skipped.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|(k, _)| k.as_str())
    }

    pub fn into_entries(self) -> Vec<(Node, Node)> {
        self.entries
    }
}

impl FromIterator<(Node, Node)> for Mapping {
    fn from_iter<I: IntoIterator<Item = (Node, Node)>>(iter: I) -> Self {
        let mut map = Mapping::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

/// Two keys are the same when their values are equal, whatever their
/// positions: `true` and `"true"` are different keys, as in Ruby.
fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_float_format() {
        assert_eq!(ruby_float_to_s(1.0), "1.0");
        assert_eq!(ruby_float_to_s(1.25), "1.25");
        assert_eq!(ruby_float_to_s(1e20), "1.0e+20");
    }

    #[test]
    fn insert_keeps_position_of_existing_key() {
        let s = Span::synthetic();
        let mut m = Mapping::new();
        m.insert_str("a", Node::string("1", s));
        m.insert_str("b", Node::string("2", s));
        m.insert_str("a", Node::string("3", s));
        let keys: Vec<_> = m.keys().collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a").unwrap().as_str(), Some("3"));
    }
}
