//! GitLab's slugs (`Gitlab::Utils.slugify`), used by every `*_SLUG`
//! predefined variable (rule 201).

/// The slug of `s`: lowercased, every character other than `a-z` and `0-9`
/// replaced by `-`, cut to 63 characters, and leading and trailing `-`
/// removed.
///
/// The order matters and is GitLab's: the cut happens before the trimming,
/// so a slug can be shorter than 63 characters even when the input is long,
/// and lowercasing is Unicode-aware (so `İ`, which lowercases to two
/// characters, becomes `i-`). After the replacement every character is
/// ASCII, so 63 characters are 63 bytes.
pub fn slugify(s: &str) -> String {
    let replaced: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    replaced.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_201_lowercases_and_replaces_other_characters() {
        assert_eq!(slugify("Feature/ABC_123.fix"), "feature-abc-123-fix");
        assert_eq!(slugify("main"), "main");
        assert_eq!(slugify("v1.2.3"), "v1-2-3");
    }

    #[test]
    fn rule_201_no_leading_or_trailing_dash_but_inner_runs_stay() {
        assert_eq!(slugify("--a--b--"), "a--b");
        assert_eq!(slugify("/release/"), "release");
        assert_eq!(slugify("---"), "");
        assert_eq!(slugify(""), "");
    }

    #[test]
    fn rule_201_cut_to_63_bytes_before_trimming() {
        let long = "a".repeat(70);
        assert_eq!(slugify(&long), "a".repeat(63));
        // The 63rd character is a `-`, trimmed after the cut.
        let edge = format!("{}/{}", "b".repeat(62), "c".repeat(10));
        assert_eq!(slugify(&edge), "b".repeat(62));
        // Leading dashes count towards the 63 before they are trimmed.
        let leading = format!("{}{}", "_".repeat(60), "abcdef");
        assert_eq!(slugify(&leading), "abc");
    }

    #[test]
    fn rule_201_non_ascii_characters_become_one_dash_each() {
        assert_eq!(slugify("café"), "caf");
        assert_eq!(slugify("über-straße"), "ber-stra-e");
        assert_eq!(slugify("日本x"), "x");
        // U+0130 lowercases to `i` plus a combining dot, as in Ruby.
        assert_eq!(slugify("İx"), "i-x");
        // The Kelvin sign lowercases to an ASCII `k`.
        assert_eq!(slugify("\u{212A}elvin"), "kelvin");
    }
}
