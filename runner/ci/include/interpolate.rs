//! `$[[ inputs.x | function ]]` interpolation over a file's YAML tree
//! (rules 63-67).
//!
//! Keys and values are both interpolated. A string that is exactly one
//! block takes the value with its type (a number stays a number, an array
//! stays an array, so `- $[[ inputs.list ]]` puts the list inside the outer
//! list as one item, which `script`, `rules` and `needs` flatten later, as
//! GitLab does). A block inside a longer string is replaced by the value's
//! Ruby `to_s`. `$[[ matrix.* ]]` blocks are left for `needs:parallel`.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use super::vars::{Unknown, expand};
use crate::ci::source::Span;
use crate::ci::yaml::{Mapping, Node, Value};

/// GitLab stops after this many nodes ("config too large").
const MAX_NODES: usize = 500_000;
/// A string holding interpolation must stay under 1 MB (rule 66).
const MAX_NODE_SIZE: usize = 1024 * 1024;
/// The text of one block must stay under 1 KB (rule 66).
const MAX_ACCESS_BYTES: usize = 1024;
/// At most this many distinct blocks per file.
const MAX_BLOCKS: usize = 10_000;
/// At most 3 functions per block (rule 67).
const MAX_FUNCTIONS: usize = 3;
/// `inputs.a.b.c.d`: at most five dotted parts.
const MAX_ACCESS_OBJECTS: usize = 5;

static BLOCK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\[\[\s*(?P<data>\S.*?\S)\s*\]\]").expect("constant pattern"));

static TRUNCATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)?$").expect("constant pattern")
});

static SPLIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^split\('([^']*)'\)$").expect("constant pattern"));

/// What blocks can refer to.
pub(crate) struct Scope<'a> {
    pub inputs: &'a BTreeMap<String, Node>,
    /// The `$[[ component.* ]]` values the file declared in `spec:component`.
    pub component: &'a BTreeMap<String, Node>,
    /// For `expand_vars`: the include-safe variables.
    pub variables: &'a BTreeMap<String, String>,
}

/// Interpolates every block in `node`. The error carries the span of the
/// string holding the bad block and GitLab's message.
pub(crate) fn interpolate(node: Node, scope: &Scope<'_>) -> Result<Node, (Span, String)> {
    let mut walker = Walker {
        scope,
        visited: 0,
        blocks: HashMap::new(),
    };
    walker.walk(node)
}

struct Walker<'s, 'a> {
    scope: &'s Scope<'a>,
    visited: usize,
    blocks: HashMap<String, Result<Node, String>>,
}

impl Walker<'_, '_> {
    fn walk(&mut self, node: Node) -> Result<Node, (Span, String)> {
        self.visited += 1;
        if self.visited > MAX_NODES {
            return Err((node.span, "config too large".into()));
        }
        let Node { value, span, tag } = node;
        let value = match value {
            Value::Map(map) => {
                let mut out = Mapping::new();
                for (k, v) in map.into_entries() {
                    let k = self.walk(k)?;
                    let v = self.walk(v)?;
                    out.insert(k, v);
                }
                Value::Map(out)
            }
            Value::Seq(items) => Value::Seq(
                items
                    .into_iter()
                    .map(|item| self.walk(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Str(s) if s.contains("$[[") => return self.string(s, span, tag),
            other => other,
        };
        Ok(Node { value, span, tag })
    }

    fn string(
        &mut self,
        s: String,
        span: Span,
        tag: Option<Box<str>>,
    ) -> Result<Node, (Span, String)> {
        if s.len() > MAX_NODE_SIZE {
            return Err((span, "config node too large".into()));
        }
        let found: Vec<(std::ops::Range<usize>, String)> = BLOCK
            .captures_iter(&s)
            .filter_map(|c| Some((c.get(0)?.range(), c.name("data")?.as_str().to_string())))
            .collect();
        let Some((first, _)) = found.first() else {
            return Ok(Node {
                value: Value::Str(s),
                span,
                tag,
            });
        };
        if first.len() == s.len() {
            let (range, data) = &found[0];
            let value = self.block(&s[range.clone()], data).map_err(|e| (span, e))?;
            return Ok(Node { span, ..value });
        }
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        for (range, data) in &found {
            let value = self.block(&s[range.clone()], data).map_err(|e| (span, e))?;
            out.push_str(&s[copied..range.start]);
            out.push_str(&to_s(&value));
            copied = range.end;
        }
        out.push_str(&s[copied..]);
        Ok(Node {
            value: Value::Str(out),
            span,
            tag,
        })
    }

    /// The value of one block, evaluated once per distinct block text.
    fn block(&mut self, text: &str, data: &str) -> Result<Node, String> {
        if let Some(done) = self.blocks.get(text) {
            return done.clone();
        }
        if self.blocks.len() >= MAX_BLOCKS {
            return Err("too many interpolation blocks".into());
        }
        let result = evaluate(text, data, self.scope);
        self.blocks.insert(text.to_string(), result.clone());
        result
    }
}

/// `<access> | <function> | ...`
fn evaluate(text: &str, data: &str, scope: &Scope<'_>) -> Result<Node, String> {
    let mut parts = data.split('|').map(str::trim);
    let access = parts.next().unwrap_or("");
    let functions: Vec<&str> = parts.collect();
    if access.split('.').next() == Some("matrix") {
        return Ok(Node::string(text, Span::synthetic()));
    }
    let objects: Vec<&str> = access.splitn(MAX_ACCESS_OBJECTS, '.').collect();
    let mut errors = Vec::new();
    if objects.len() <= 1 {
        errors.push("invalid interpolation access pattern");
    }
    if access.len() > MAX_ACCESS_BYTES {
        errors.push("maximum interpolation expression size exceeded");
    }
    if !errors.is_empty() {
        return Err(errors.join(", "));
    }
    let mut value = lookup(&objects, scope)?;
    if functions.len() > MAX_FUNCTIONS {
        return Err("too many functions in interpolation block".into());
    }
    if let Some(bad) = functions.iter().find(|f| !is_function(f)) {
        return Err(format!(
            "no function matching `{bad}`: check that the function name, arguments, and types are correct"
        ));
    }
    for function in functions {
        value = apply(function, value, scope)?;
    }
    Ok(value)
}

fn lookup(objects: &[&str], scope: &Scope<'_>) -> Result<Node, String> {
    let unknown = |key: &str| format!("unknown interpolation key: `{key}`");
    let (first, rest) = objects.split_first().ok_or_else(|| unknown(""))?;
    let mut current: Node = match *first {
        "inputs" => map_node(scope.inputs),
        "component" => map_node(scope.component),
        other => return Err(unknown(other)),
    };
    for key in rest {
        let next = current.as_map().and_then(|m| m.get(key)).cloned();
        current = next.ok_or_else(|| unknown(key))?;
    }
    Ok(current)
}

fn map_node(values: &BTreeMap<String, Node>) -> Node {
    let mut map = Mapping::new();
    for (k, v) in values {
        map.insert_str(k, v.clone());
    }
    Node::map(map, Span::synthetic())
}

fn is_function(f: &str) -> bool {
    matches!(f, "expand_vars" | "posix_escape" | "posix_quote")
        || TRUNCATE.is_match(f)
        || SPLIT.is_match(f)
}

fn apply(function: &str, value: Node, scope: &Scope<'_>) -> Result<Node, String> {
    let name = function.split('(').next().unwrap_or(function);
    let Some(input) = value.as_str() else {
        return Err(format!(
            "error in `{name}` function: invalid input type: {name} can only be used with string inputs"
        ));
    };
    let span = value.span;
    if let Some(c) = TRUNCATE.captures(function) {
        let offset: usize = c[1].parse().unwrap_or(usize::MAX);
        let length: usize = c[2].parse().unwrap_or(usize::MAX);
        return Ok(Node::string(
            input.chars().skip(offset).take(length).collect::<String>(),
            span,
        ));
    }
    if let Some(c) = SPLIT.captures(function) {
        let separator = &c[1];
        if separator.is_empty() {
            return Err(
                "error in `split` function: invalid argument: separator cannot be empty".into(),
            );
        }
        let items = input
            .split(separator)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Node::string(s, span))
            .collect();
        return Ok(Node::seq(items, span));
    }
    Ok(Node::string(
        match function {
            "expand_vars" => expand(input, scope.variables, Unknown::Keep),
            _ => shell_escape(input),
        },
        span,
    ))
}

/// Ruby's `Shellwords.shellescape`.
fn shell_escape(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("'\n'"),
            c if c.is_ascii_alphanumeric() || "_-.,:+/@".contains(c) => out.push(c),
            c if !c.is_ascii() => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

/// Ruby's `to_s` of a value put inside a longer string: scalars print
/// plainly, arrays and hashes as Ruby's `inspect` (hash keys are symbols,
/// as GitLab symbolizes them).
fn to_s(node: &Node) -> String {
    match &node.value {
        Value::Seq(_) | Value::Map(_) => inspect(node),
        _ => node.scalar_string().unwrap_or_default().into_owned(),
    }
}

fn inspect(node: &Node) -> String {
    match &node.value {
        Value::Null => "nil".into(),
        Value::Str(s) => inspect_str(s),
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(inspect).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        Some(s) if is_plain_symbol(s) => format!(":{s}"),
                        Some(s) => format!(":{}", inspect_str(s)),
                        None => inspect(k),
                    };
                    format!("{key}=>{}", inspect(v))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        _ => node.scalar_string().unwrap_or_default().into_owned(),
    }
}

fn is_plain_symbol(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.trim_end_matches(['?', '!'])
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn inspect_str(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn run(text: &str, inputs: &str) -> Result<Node, String> {
        let inputs: BTreeMap<String, Node> = doc(inputs)
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
            .collect();
        let variables = BTreeMap::from([("CI_PROJECT_NAME".to_string(), "runner".to_string())]);
        let component = BTreeMap::new();
        let scope = Scope {
            inputs: &inputs,
            component: &component,
            variables: &variables,
        };
        interpolate(doc(text), &scope).map_err(|(_, e)| e)
    }

    fn get<'a>(node: &'a Node, key: &str) -> &'a Node {
        node.as_map().unwrap().get(key).unwrap()
    }

    #[test]
    fn rule_63_keys_and_values_are_interpolated() {
        let out = run(
            "'$[[ inputs.name ]]-job':\n  stage: $[[ inputs.stage ]]\n",
            "{name: build, stage: test}",
        )
        .unwrap();
        assert_eq!(
            get(&out, "build-job")
                .as_map()
                .unwrap()
                .get("stage")
                .unwrap()
                .as_str(),
            Some("test")
        );
    }

    #[test]
    fn rule_64_whole_values_keep_their_type_and_parts_become_strings() {
        let out = run(
            "a: $[[ inputs.n ]]\nb: 'x$[[ inputs.n ]]'\nc: $[[ inputs.flag ]]\nd: 'v=$[[ inputs.list ]]'\n",
            "{n: 3, flag: true, list: [x, y]}",
        )
        .unwrap();
        assert_eq!(get(&out, "a").as_int(), Some(3));
        assert_eq!(get(&out, "b").as_str(), Some("x3"));
        assert_eq!(get(&out, "c").as_bool(), Some(true));
        assert_eq!(get(&out, "d").as_str(), Some("v=[\"x\", \"y\"]"));
    }

    #[test]
    fn rule_65_an_array_item_becomes_a_nested_list() {
        let out = run(
            "rules:\n  - $[[ inputs.extra ]]\n  - when: never\n",
            "{extra: [{if: $A}, {if: $B}]}",
        )
        .unwrap();
        let rules = get(&out, "rules").as_seq().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].as_seq().unwrap().len(), 2);
    }

    #[test]
    fn rule_66_block_size_is_limited() {
        let long = format!("a: $[[ inputs.{} ]]\n", "x".repeat(1100));
        assert_eq!(
            run(&long, "{}").unwrap_err(),
            "maximum interpolation expression size exceeded"
        );
    }

    #[test]
    fn rule_67_functions_apply_left_to_right_up_to_three() {
        let out = run(
            "a: $[[ inputs.s | truncate(1,4) ]]\nb: $[[ inputs.v | expand_vars ]]\nc: $[[ inputs.l | split(',') ]]\n",
            "{s: abcdefgh, v: 'x-$CI_PROJECT_NAME-$SECRET', l: 'a, b,,c'}",
        )
        .unwrap();
        assert_eq!(get(&out, "a").as_str(), Some("bcde"));
        assert_eq!(get(&out, "b").as_str(), Some("x-runner-$SECRET"));
        assert_eq!(get(&out, "c").as_seq().unwrap().len(), 3);
        assert_eq!(
            run("a: $[[ inputs.s | truncate(0,1) | truncate(0,1) | truncate(0,1) | truncate(0,1) ]]\n", "{s: x}")
                .unwrap_err(),
            "too many functions in interpolation block"
        );
        assert_eq!(
            run("a: $[[ inputs.s | upcase ]]\n", "{s: x}").unwrap_err(),
            "no function matching `upcase`: check that the function name, arguments, and types are correct"
        );
        assert_eq!(
            run("a: $[[ inputs.n | truncate(0,1) ]]\n", "{n: 1}").unwrap_err(),
            "error in `truncate` function: invalid input type: truncate can only be used with string inputs"
        );
    }

    #[test]
    fn unknown_keys_and_bad_access_are_errors_and_matrix_is_left_alone() {
        assert_eq!(
            run("a: $[[ inputs.nope ]]\n", "{x: 1}").unwrap_err(),
            "unknown interpolation key: `nope`"
        );
        assert_eq!(
            run("a: $[[ nope ]]\n", "{x: 1}").unwrap_err(),
            "invalid interpolation access pattern"
        );
        let out = run("a: 'x $[[ matrix.OS ]]'\n", "{x: 1}").unwrap();
        assert_eq!(get(&out, "a").as_str(), Some("x $[[ matrix.OS ]]"));
    }

    #[test]
    fn shell_escape_matches_ruby() {
        assert_eq!(shell_escape("a b'c"), "a\\ b\\'c");
        assert_eq!(shell_escape(""), "''");
    }
}
