//! Plain scalars resolved the way Ruby's Psych resolves them.
//!
//! GitLab loads `.gitlab-ci.yml` with Psych, which follows YAML 1.1: `yes`,
//! `On` and `TRUE` are booleans, `0755` is octal, `1,000` is a thousand and
//! `1:30` is ninety (base 60). Only plain (unquoted) scalars are resolved;
//! quoted and block scalars are always strings.

use super::node::Value;

/// Resolves one plain scalar to its value.
pub(crate) fn resolve_plain(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if looks_like_word(text) || text.contains('\n') {
        // Psych only tries the keyword spellings on short words; anything
        // longer that starts like a word is a string.
        if text.chars().count() > 5 {
            return Value::Str(text.to_string());
        }
        return resolve_keyword(text).unwrap_or_else(|| Value::Str(text.to_string()));
    }
    if is_time_or_date(text) {
        // Psych makes Time and Date objects here; they have no place in a CI
        // configuration, and GitLab reads them back as their text.
        return Value::Str(text.to_string());
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        ".inf" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" => return Value::Float(f64::NEG_INFINITY),
        ".nan" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(v) = sexagesimal(text) {
        return v;
    }
    if let Some(f) = float(text) {
        return f;
    }
    if let Some(i) = integer(text) {
        return Value::Int(i);
    }
    Value::Str(text.to_string())
}

/// Psych's "is this a string" test: an optional first character that is not a
/// digit, `.`, `:` or `-`, then at least one letter or punctuation character.
fn looks_like_word(text: &str) -> bool {
    fn wordy(c: char) -> bool {
        c.is_alphabetic() || c.is_whitespace() || "_!@#$%^&*(){}<>|/\\~;=".contains(c)
    }
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if wordy(first) {
        return true;
    }
    let second = chars.next();
    !(first.is_ascii_digit() || ".:-".contains(first)) && second.is_some_and(wordy)
}

fn resolve_keyword(text: &str) -> Option<Value> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "~" | "null" => Some(Value::Null),
        "yes" | "true" | "on" => Some(Value::Bool(true)),
        "no" | "false" | "off" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn is_time_or_date(text: &str) -> bool {
    let b = text.as_bytes();
    let date_prefix = b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && text[5..]
            .split(['-', 'T', 't', ' '])
            .take(2)
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|c| c.is_ascii_digit()));
    if !date_prefix {
        return false;
    }
    // A bare date (`2024-01-31`) or a date with a time part.
    let rest: Vec<&str> = text[5..].splitn(3, '-').collect();
    rest.len() >= 2
}

/// `1:30` is 90 and `1:00:00` is 3600 in YAML 1.1.
fn sexagesimal(text: &str) -> Option<Value> {
    let (sign, body) = split_sign(text);
    let mut parts = body.split(':');
    let head = parts.next()?;
    let tail: Vec<&str> = parts.collect();
    if tail.is_empty() || tail.len() > 2 {
        return None;
    }
    if head.is_empty() || !head.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if !head.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    let (last, fraction) = match tail[tail.len() - 1].split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (tail[tail.len() - 1], None),
    };
    let mut minutes_seconds: Vec<&str> = tail[..tail.len() - 1].to_vec();
    minutes_seconds.push(last);
    for p in &minutes_seconds {
        let ok = (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && (p.len() == 1 || p.as_bytes()[0] <= b'5');
        if !ok {
            return None;
        }
    }
    let mut total: i64 = head.replace('_', "").parse().ok()?;
    for p in &minutes_seconds {
        total = total.checked_mul(60)?.checked_add(p.parse::<i64>().ok()?)?;
    }
    match fraction {
        None => Some(Value::Int(sign * total)),
        Some(frac) if frac.bytes().all(|c| c.is_ascii_digit() || c == b'_') => {
            let frac: f64 = format!("0.{}", frac.replace('_', ""))
                .parse()
                .unwrap_or(0.0);
            Some(Value::Float(sign as f64 * (total as f64 + frac)))
        }
        Some(_) => None,
    }
}

fn split_sign(text: &str) -> (i64, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (-1, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (1, rest)
    } else {
        (1, text)
    }
}

/// `[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?`: a dot is required.
fn float(text: &str) -> Option<Value> {
    let (_, body) = split_sign(text);
    let (int_part, rest) = body.split_once('.')?;
    let int_ok = int_part.is_empty()
        || (int_part.as_bytes()[0].is_ascii_digit()
            && int_part
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'_' || c == b','));
    if !int_ok {
        return None;
    }
    let (frac, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if let Some(exp) = exp {
        let digits = exp.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    if int_part.is_empty() && frac.is_empty() {
        // A lone `.` (or `-.`) stays a string.
        return None;
    }
    let cleaned: String = text.chars().filter(|c| *c != ',' && *c != '_').collect();
    let cleaned = cleaned.replace(".e", ".0e").replace(".E", ".0E");
    let cleaned = if cleaned.ends_with('.') {
        format!("{cleaned}0")
    } else {
        cleaned
    };
    cleaned.parse::<f64>().ok().map(Value::Float)
}

/// Psych's legacy integer forms: binary, octal (leading 0), decimal with
/// `_` or `,` separators, and hex.
fn integer(text: &str) -> Option<i64> {
    let (sign, body) = split_sign(text);
    let strip = |s: &str| -> String { s.chars().filter(|c| *c != '_' && *c != ',').collect() };
    let value = if let Some(bin) = body.strip_prefix("0b") {
        if bin.is_empty() || !bin.bytes().all(|c| matches!(c, b'0' | b'1' | b'_' | b',')) {
            return None;
        }
        i64::from_str_radix(&strip(bin), 2).ok()?
    } else if let Some(hex) = body.strip_prefix("0x") {
        if hex.is_empty()
            || !hex
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b'_' || c == b',')
        {
            return None;
        }
        i64::from_str_radix(&strip(hex), 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        if !body.bytes().all(|c| matches!(c, b'0'..=b'7' | b'_' | b',')) {
            return None;
        }
        let digits = strip(body);
        if digits.is_empty() {
            return None;
        }
        i64::from_str_radix(&digits, 8).ok()?
    } else {
        if body.is_empty() || !body.as_bytes()[0].is_ascii_digit() {
            return None;
        }
        // Separators must sit between digits: `1_000`, `1,000`.
        let bytes = body.as_bytes();
        for (i, c) in bytes.iter().enumerate() {
            let ok = c.is_ascii_digit()
                || ((*c == b'_' || *c == b',')
                    && i > 0
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
            if !ok {
                return None;
            }
        }
        strip(body).parse::<i64>().ok()?
    };
    Some(sign * value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Value {
        Value::Str(t.to_string())
    }

    #[test]
    fn rule_1_unquoted_leading_zero_is_octal() {
        assert_eq!(resolve_plain("012345"), Value::Int(5349));
        assert_eq!(resolve_plain("0755"), Value::Int(493));
        // Not octal digits: stays a string, as in Psych.
        assert_eq!(resolve_plain("089"), s("089"));
    }

    #[test]
    fn rule_2_yaml_1_1_booleans() {
        for t in ["yes", "Yes", "YES", "true", "True", "on", "ON", "yEs"] {
            assert_eq!(resolve_plain(t), Value::Bool(true), "{t}");
        }
        for t in ["no", "No", "false", "FALSE", "off", "Off"] {
            assert_eq!(resolve_plain(t), Value::Bool(false), "{t}");
        }
        // Single letters are not booleans in Psych.
        assert_eq!(resolve_plain("y"), s("y"));
        assert_eq!(resolve_plain("n"), s("n"));
    }

    #[test]
    fn nulls() {
        assert_eq!(resolve_plain(""), Value::Null);
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("null"), Value::Null);
        assert_eq!(resolve_plain("NULL"), Value::Null);
        assert_eq!(resolve_plain("nullify"), s("nullify"));
    }

    #[test]
    fn numbers() {
        assert_eq!(resolve_plain("42"), Value::Int(42));
        assert_eq!(resolve_plain("-7"), Value::Int(-7));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("1,000"), Value::Int(1000));
        assert_eq!(resolve_plain("0x1f"), Value::Int(31));
        assert_eq!(resolve_plain("0b101"), Value::Int(5));
        assert_eq!(resolve_plain("0"), Value::Int(0));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1."), Value::Float(1.0));
        assert_eq!(resolve_plain(".5"), Value::Float(0.5));
        assert_eq!(resolve_plain("1.0e+3"), Value::Float(1000.0));
        assert_eq!(resolve_plain("1e3"), s("1e3"));
        assert_eq!(resolve_plain("1.2.3"), s("1.2.3"));
        assert_eq!(resolve_plain("."), s("."));
        assert_eq!(resolve_plain("-.inf"), Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn base_sixty() {
        assert_eq!(resolve_plain("1:30"), Value::Int(90));
        assert_eq!(resolve_plain("1:00:00"), Value::Int(3600));
        assert_eq!(resolve_plain("1:60"), s("1:60"));
        assert_eq!(resolve_plain("1:2:3:4"), s("1:2:3:4"));
    }

    #[test]
    fn words_stay_strings() {
        assert_eq!(resolve_plain("echo hello"), s("echo hello"));
        assert_eq!(resolve_plain("v1.2"), s("v1.2"));
        assert_eq!(resolve_plain("2024-01-31"), s("2024-01-31"));
        assert_eq!(resolve_plain("1.2.3-alpha"), s("1.2.3-alpha"));
        assert_eq!(resolve_plain("-"), s("-"));
        assert_eq!(resolve_plain(":"), s(":"));
        assert_eq!(resolve_plain("ontology"), s("ontology"));
    }
}
