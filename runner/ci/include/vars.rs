//! `$VAR` expansion as GitLab does it for include locations and the
//! `expand_vars` input function: `$NAME`, `${NAME}` and `%NAME%`, one pass,
//! no nested expansion.

use std::collections::BTreeMap;

/// What to put in place of a variable that is not defined.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Replace it with nothing (include locations).
    Blank,
    /// Leave the reference as written (`expand_vars`).
    Keep,
}

/// Expands variable references in `text` with `vars`.
pub(crate) fn expand(text: &str, vars: &BTreeMap<String, String>, unknown: Unknown) -> String {
    if !text.contains(['$', '%']) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        // References start with ASCII `$` or `%`, so `i` is a char boundary
        // whenever `reference_at` slices at it.
        if bytes[i] != b'$' && bytes[i] != b'%' {
            i += 1;
            continue;
        }
        let Some((name, end)) = reference_at(text, i) else {
            i += 1;
            continue;
        };
        out.push_str(&text[copied..i]);
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None if unknown == Unknown::Keep => out.push_str(&text[i..end]),
            None => {}
        }
        i = end;
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The variable name and end offset of a reference starting at `at`.
fn reference_at(text: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &text[at..];
    if let Some(after) = rest.strip_prefix("${") {
        let len = name_len(after);
        return (len > 0 && after[len..].starts_with('}')).then(|| (&after[..len], at + 3 + len));
    }
    if let Some(after) = rest.strip_prefix('$') {
        let len = name_len(after);
        return (len > 0).then(|| (&after[..len], at + 1 + len));
    }
    if let Some(after) = rest.strip_prefix('%') {
        let len = name_len(after);
        return (len > 0 && after[len..].starts_with('%')).then(|| (&after[..len], at + 2 + len));
    }
    None
}

/// Length of a variable name (`[A-Za-z_][A-Za-z0-9_]*`) at the start.
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first()
        .is_none_or(|c| !(c.is_ascii_alphabetic() || *c == b'_'))
    {
        return 0;
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("CI_PROJECT_PATH", "g/p"), ("REF", "main")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rule_51_all_three_reference_forms_expand() {
        assert_eq!(
            expand("$CI_PROJECT_PATH/${REF}/%REF%.yml", &vars(), Unknown::Blank),
            "g/p/main/main.yml"
        );
    }

    #[test]
    fn unknown_variables_are_blank_in_locations_and_kept_by_expand_vars() {
        assert_eq!(expand("a/$NOPE/b", &vars(), Unknown::Blank), "a//b");
        assert_eq!(expand("a/$NOPE/b", &vars(), Unknown::Keep), "a/$NOPE/b");
        assert_eq!(
            expand("100% $ ${ x", &vars(), Unknown::Blank),
            "100% $ ${ x"
        );
    }

    #[test]
    fn expansion_is_not_recursive() {
        let mut v = vars();
        v.insert("A".into(), "$REF".into());
        assert_eq!(expand("$A", &v, Unknown::Blank), "$REF");
    }
}
