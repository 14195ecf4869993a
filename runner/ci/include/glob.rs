//! Ruby's `File.fnmatch?` with `FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB`,
//! which GitLab uses for `rules:exists` and `rules:changes` paths.
//!
//! `*` and `?` stay inside one path segment, `**/` matches any number of
//! directories (also none), `[a-z]`/`[!a]` are classes, `{a,b}` are
//! alternatives, `\` escapes, and leading dots need no special care.

/// Brace expansion stops here so a hostile pattern cannot explode.
const MAX_ALTERNATIVES: usize = 1024;

/// Whether `path` (relative, `/`-separated) matches `pattern`.
pub(crate) fn fnmatch(pattern: &str, path: &str) -> bool {
    let path_segs: Vec<&str> = path.split('/').collect();
    expand_braces(pattern).iter().any(|p| {
        let pat_segs: Vec<&str> = p.split('/').collect();
        match_segments(&pat_segs, &path_segs)
    })
}

fn match_segments(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        // `**/` (a `**` segment with more after it) spans directories.
        Some((&"**", rest)) if !rest.is_empty() => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((seg, rest)) => match path.split_first() {
            Some((name, path_rest)) => {
                match_segment(
                    &seg.chars().collect::<Vec<_>>(),
                    &name.chars().collect::<Vec<_>>(),
                ) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One segment, no `/` on either side.
fn match_segment(pat: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index, name index).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    while p < pat.len() && pat[p] == '*' {
                        p += 1;
                    }
                    star = Some((p, n));
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(pat, p, name[n]) {
                        if matched {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                '\\' if p + 1 < pat.len() && pat[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                // An escaped character that differs: no literal `\` match.
                '\\' if p + 1 < pat.len() => {}
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `pat[start] == '['`. Returns
/// whether it matched and the index after `]`, or `None` for an unclosed
/// class (then `[` is literal).
fn match_class(pat: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pat.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let mut lo = pat[i];
        if lo == '\\' && i + 1 < pat.len() {
            i += 1;
            lo = pat[i];
        }
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            let hi = pat[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

/// `a{b,c{d,e}}f` → `abf`, `acdf`, `acef`. Unbalanced braces are literal.
pub(crate) fn expand_braces(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(pattern, &mut out);
    out
}

fn expand_into(pattern: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_ALTERNATIVES {
        return;
    }
    let Some((open, close, commas)) = first_group(pattern) else {
        out.push(pattern.to_string());
        return;
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut start = open + 1;
    for end in commas.into_iter().chain(std::iter::once(close)) {
        expand_into(&format!("{head}{}{tail}", &pattern[start..end]), out);
        start = end + 1;
    }
}

/// The first balanced `{...}` group: its bounds and top-level commas.
fn first_group(pattern: &str) -> Option<(usize, usize, Vec<usize>)> {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'{' => {
                let mut depth = 0;
                let mut commas = Vec::new();
                let mut j = i;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => j += 1,
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some((i, j, commas));
                            }
                        }
                        b',' if depth == 1 => commas.push(j),
                        _ => {}
                    }
                    j += 1;
                }
                return None;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_one_segment() {
        assert!(fnmatch("*.txt", "a.txt"));
        assert!(!fnmatch("*.txt", "sub/a.txt"));
        assert!(fnmatch("*.txt", ".hidden.txt"));
    }

    #[test]
    fn double_star_slash_spans_zero_or_more_directories() {
        assert!(fnmatch("**/*.txt", "a.txt"));
        assert!(fnmatch("**/*.txt", "x/y/a.txt"));
        assert!(fnmatch("docs/**/index.md", "docs/index.md"));
        assert!(fnmatch("docs/**/index.md", "docs/a/b/index.md"));
        assert!(!fnmatch("docs/**/index.md", "src/index.md"));
        // A trailing `**` is a plain `*`.
        assert!(fnmatch("docs/**", "docs/a"));
        assert!(!fnmatch("docs/**", "docs/a/b"));
    }

    #[test]
    fn classes_braces_and_escapes() {
        assert!(fnmatch("[a-c]?.yml", "b1.yml"));
        assert!(!fnmatch("[!a-c]?.yml", "b1.yml"));
        assert!(fnmatch("{src,lib}/**/*.{rs,c}", "lib/x/y.c"));
        assert!(!fnmatch("{src,lib}/*.rs", "bin/a.rs"));
        assert!(fnmatch("a\\*b", "a*b"));
        assert!(!fnmatch("a\\*b", "axb"));
        assert_eq!(expand_braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand_braces("a{b"), ["a{b"]);
    }
}
