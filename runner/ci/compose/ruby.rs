//! Ruby's `inspect` and `to_s`, for the values GitLab prints in its
//! `extends` and `!reference` messages (`!reference [".a", "b"] could not be
//! found`).

use std::fmt::Write as _;

use crate::ci::yaml::{Node, Value};

/// The node as Ruby's `inspect` prints the loaded value. Hashes use the
/// `{"k"=>v}` form of the Ruby versions GitLab runs on.
pub(crate) fn inspect(node: &Node) -> String {
    let mut out = String::new();
    write_inspect(node, &mut out);
    out
}

/// The node as Ruby's `to_s` prints it: scalars bare, collections inspected
/// (`Array#to_s` is `inspect`).
pub(crate) fn to_s(node: &Node) -> String {
    match node.scalar_string() {
        Some(s) if !node.is_reference() => s.into_owned(),
        _ => inspect(node),
    }
}

fn write_inspect(node: &Node, out: &mut String) {
    if node.is_reference() {
        // GitLab would print the tag object itself; the tag and its
        // sequence say the same thing in a readable way.
        out.push_str("!reference ");
    }
    match &node.value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(_) | Value::Float(_) => {
            out.push_str(&node.scalar_string().unwrap_or_default());
        }
        Value::Str(s) => inspect_str(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_inspect(item, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_inspect(k, out);
                out.push_str("=>");
                write_inspect(v, out);
            }
            out.push('}');
        }
    }
}

/// `String#inspect` for a UTF-8 string.
pub(crate) fn inspect_str(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            '\x08' => out.push_str("\\b"),
            '\x07' => out.push_str("\\a"),
            '\x1b' => out.push_str("\\e"),
            // Ruby escapes `#` only where it would start an interpolation.
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            '\x7f' => out.push_str("\\x7F"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    fn arrays_print_like_ruby() {
        assert_eq!(
            inspect(&doc("[.a, 'b c', 1, null, true, [x]]")),
            r#"[".a", "b c", 1, nil, true, ["x"]]"#
        );
    }

    #[test]
    fn strings_escape_quotes_and_interpolation() {
        let mut out = String::new();
        inspect_str("say \"#{x}\"\n#", &mut out);
        assert_eq!(out, r##""say \"\#{x}\"\n#""##);
    }

    #[test]
    fn hashes_use_the_rocket_form() {
        assert_eq!(inspect(&doc("{a: b}")), r#"{"a"=>"b"}"#);
    }

    #[test]
    fn to_s_leaves_scalars_bare() {
        assert_eq!(to_s(&doc("12")), "12");
        assert_eq!(to_s(&doc("null")), "");
        assert_eq!(to_s(&doc("[a]")), r#"["a"]"#);
    }
}
