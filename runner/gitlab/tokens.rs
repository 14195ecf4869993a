//! The short form of a token (runner-api.md §2.1): the part of a runner,
//! job or registration token that is safe to show in logs, directory names
//! and `CI_RUNNER_SHORT_TOKEN`.

/// How many characters of the token are kept (gitlab-runner before 16.x
/// kept 8).
const SHORT_TOKEN_CHARS: usize = 9;

/// The first nine characters of `token` after its kind prefix: `glrt-`
/// (with a partition such as `t1_`), a bare `t1_`, `glrtr-`, `glcbt-`, or a
/// registration token's `GR` + seven hex digits.
pub fn short_token(token: &str) -> String {
    strip_prefix(token)
        .chars()
        .take(SHORT_TOKEN_CHARS)
        .collect()
}

fn strip_prefix(token: &str) -> &str {
    if let Some(rest) = token.strip_prefix("glrt-") {
        return strip_partition(rest).unwrap_or(rest);
    }
    if let Some(rest) = strip_partition(token) {
        return rest;
    }
    for prefix in ["glrtr-", "glcbt-"] {
        if let Some(rest) = token.strip_prefix(prefix) {
            return rest;
        }
    }
    let bytes = token.as_bytes();
    if bytes.len() >= 9 && bytes.starts_with(b"GR") && bytes[2..9].iter().all(u8::is_ascii_hexdigit)
    {
        return &token[9..];
    }
    token
}

/// `t1_`, `t2_` or `t3_` at the start.
fn strip_partition(token: &str) -> Option<&str> {
    ["t1_", "t2_", "t3_"]
        .iter()
        .find_map(|p| token.strip_prefix(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_stripped_before_nine_characters_are_kept() {
        let cases = [
            ("glrt-t1_Qm9vR3xLk2TnP8sWc4VeHdJa", "Qm9vR3xLk"),
            ("glrt-t3_abcdefghijk", "abcdefghi"),
            ("glrt-Qm9vR3xLk2TnP8s", "Qm9vR3xLk"),
            ("t2_Qm9vR3xLk2TnP8s", "Qm9vR3xLk"),
            ("glrtr-Zx9bQ2mWkLr8", "Zx9bQ2mWk"),
            ("glcbt-3f_Zx9bQ2mWkLr8TnYc4VeHdPa", "3f_Zx9bQ2"),
            ("GR1348941aBcDeFgHiJkLmNoPqRsT", "aBcDeFgHi"),
            ("GR13489zz_notaregistrationtoken", "GR13489zz"),
            ("plainjobtoken1234", "plainjobt"),
            ("short", "short"),
            ("", ""),
        ];
        for (token, short) in cases {
            assert_eq!(short_token(token), short, "{token}");
        }
    }

    #[test]
    fn a_partition_is_stripped_only_once() {
        assert_eq!(short_token("glrt-t1_t2_abcdefghij"), "t2_abcdef");
    }

    #[test]
    fn non_ascii_tokens_do_not_panic() {
        assert_eq!(short_token("glrt-ééééééééééé"), "ééééééééé");
        assert_eq!(short_token("GRé"), "GRé");
    }
}
