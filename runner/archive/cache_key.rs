//! Cache keys: GitLab's validation of `cache:key`, its `cache:key:files`
//! construction, the suffix that keeps protected and unprotected caches
//! apart, gitlab-runner's sanitising, and where a local cache lives.
//!
//! On GitLab the server builds the key (validation, `key:files`, suffixes)
//! and the runner only expands variables and sanitises it. Running jobs
//! locally we play both parts, so both halves are here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::error::CacheKeyProblem;
use super::pattern::clean;
use super::{ArchiveError, git};

/// The key of a cache that names none, shared by all such caches.
pub const DEFAULT_CACHE_KEY: &str = "default";

/// GitLab's check of a `cache:key` string (its `KeyValidator`): after
/// URL-decoding, the key may not contain `/` nor be `.` or `..`.
/// `location` is the key's path for the message, e.g.
/// `jobs:build:cache:key`.
pub fn validate_cache_key(location: &str, key: &str) -> Result<(), ArchiveError> {
    let decoded = cgi_unescape(key);
    let problem = if decoded.contains(&b'/') {
        CacheKeyProblem::Slash
    } else if decoded == b"." || decoded == b".." {
        CacheKeyProblem::Dots
    } else {
        return Ok(());
    };
    Err(ArchiveError::InvalidCacheKey {
        location: location.to_owned(),
        problem,
    })
}

/// Ruby's `CGI.unescape`: `+` is a space and `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is.
fn cgi_unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The key for `cache:key:files` as GitLab computes it today: the SHA-1 of
/// the sorted, distinct blob ids of the listed files at commit `rev`,
/// joined by `-`, or `default` when none of them exists there. A file
/// containing `*` is a wildcard over the commit's files (`*` within one
/// directory, `**` across them). The prefix, when not blank, comes first:
/// `<prefix>-<digest>`.
///
/// Only committed content counts, as on GitLab: uncommitted changes to the
/// files do not change the key.
pub fn cache_key_from_files(
    repo: &Path,
    rev: &str,
    files: &[String],
    prefix: Option<&str>,
) -> Result<String, ArchiveError> {
    let tree = blobs_at(repo, rev)?;
    let mut paths: Vec<&str> = Vec::new();
    for pattern in distinct_present(files) {
        if pattern.contains('*') {
            let re = wildcard_regex(pattern);
            paths.extend(
                tree.iter()
                    .filter(|(p, _)| re.is_match(p))
                    .map(|(p, _)| p.as_str()),
            );
        } else {
            paths.push(pattern);
        }
    }
    let ids = lookup(&tree, &paths);
    Ok(with_prefix(prefix, digest(ids)))
}

/// The older `cache:key:files` construction, still available as
/// `cache:key:files_commits`: the SHA-1 of the sorted, distinct ids of the
/// last commits (up to `rev`) that changed each file, joined by `-`.
pub fn cache_key_from_files_commits(
    repo: &Path,
    rev: &str,
    files: &[String],
    prefix: Option<&str>,
) -> Result<String, ArchiveError> {
    let mut ids = Vec::new();
    for file in distinct_present(files) {
        let args = [
            "--literal-pathspecs",
            "log",
            "-1",
            "--format=%H",
            "--end-of-options",
            rev,
            "--",
            file,
        ];
        let out = git::run(repo, &args)?;
        let id = String::from_utf8_lossy(&out).trim().to_owned();
        if !id.is_empty() {
            ids.push(id);
        }
    }
    Ok(with_prefix(prefix, digest(ids)))
}

/// Non-blank entries, each once, in their first order (Ruby's
/// `select(&:present?).uniq`).
fn distinct_present(files: &[String]) -> Vec<&str> {
    let mut seen = HashSet::new();
    files
        .iter()
        .map(String::as_str)
        .filter(|f| !f.trim().is_empty() && seen.insert(*f))
        .collect()
}

/// Every blob (file or symbolic link) at `rev`, path to id, in tree order.
fn blobs_at(repo: &Path, rev: &str) -> Result<Vec<(String, String)>, ArchiveError> {
    let out = git::run(
        repo,
        &[
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            "--end-of-options",
            rev,
        ],
    )?;
    Ok(git::nul_records(&out)
        .filter_map(|record| {
            // "<mode> SP <type> SP <id> TAB <path>"
            let record = String::from_utf8_lossy(record);
            let (meta, path) = record.split_once('\t')?;
            let mut meta = meta.split(' ');
            let (_mode, kind, id) = (meta.next()?, meta.next()?, meta.next()?);
            (kind == "blob").then(|| (path.to_owned(), id.to_owned()))
        })
        .collect())
}

fn lookup(tree: &[(String, String)], paths: &[&str]) -> Vec<String> {
    let index: HashMap<&str, &str> = tree
        .iter()
        .map(|(p, id)| (p.as_str(), id.as_str()))
        .collect();
    paths
        .iter()
        .filter_map(|p| index.get(p).map(|id| (*id).to_owned()))
        .collect()
}

/// GitLab's translation of a `key:files` wildcard into a regular
/// expression over paths: `**` is `.*?`, `*` is `([^/])*?`, the rest is
/// literal, anchored at both ends.
fn wildcard_regex(pattern: &str) -> regex::Regex {
    let escaped = regex::escape(pattern)
        .replace(r"\*\*", ".*?")
        .replace(r"\*", "([^/])*?");
    // Every other character was escaped, so the expression always compiles;
    // a pattern that somehow did not matches nothing.
    regex::Regex::new(&format!("^{escaped}$"))
        .unwrap_or_else(|_| regex::Regex::new("$^").expect("valid"))
}

/// SHA-1 over sorted, distinct ids joined by `-`; `None` without ids.
fn digest(mut ids: Vec<String>) -> Option<String> {
    ids.sort();
    ids.dedup();
    (!ids.is_empty()).then(|| hex(&Sha1::digest(ids.join("-").as_bytes())))
}

/// `[prefix, digest].select(&:present?).join('-')`, with `default` for a
/// missing digest.
fn with_prefix(prefix: Option<&str>, digest: Option<String>) -> String {
    let digest = digest.unwrap_or_else(|| DEFAULT_CACHE_KEY.to_owned());
    match prefix.filter(|p| !p.trim().is_empty()) {
        Some(prefix) => format!("{prefix}-{digest}"),
        None => digest,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key with GitLab's `-protected` or `-non_protected` suffix, added
/// when the project keeps separate caches (the default): protected refs
/// get their own cache unless the cache says `unprotect: true`. The same
/// applies to each of `fallback_keys`.
pub fn protected_cache_key(key: &str, protected_ref: bool, unprotect: bool) -> String {
    let suffix = if protected_ref && !unprotect {
        "protected"
    } else {
        "non_protected"
    };
    format!("{key}-{suffix}")
}

/// Whether a `CACHE_FALLBACK_KEY` value would reach a protected cache;
/// gitlab-runner refuses such values (trailing dots and spaces do not
/// hide the suffix).
pub fn is_protected_fallback_key(key: &str) -> bool {
    key.trim_end_matches(['.', ' ']).ends_with("-protected")
}

/// gitlab-runner's sanitising of a key before it becomes a path: `%2F`
/// and `%2E` are decoded, `\` becomes `/`, `.` and `..` are resolved
/// within the key (they cannot climb out of it), and trailing white space
/// is removed from the last components (dropping those left empty).
/// An empty key stays empty (the runner then uses `<job>/<ref>`).
pub fn sanitize_cache_key(key: &str) -> Result<String, ArchiveError> {
    if key.is_empty() {
        return Ok(String::new());
    }
    let cleaned = clean(&format!("/{}", normalise(key)));
    let mut parts: Vec<&str> = cleaned[1..].split('/').collect();
    while let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(char::is_whitespace);
        if !last.is_empty() {
            break;
        }
        parts.pop();
    }
    let sanitized = parts.join("/");
    if sanitized.is_empty() {
        return Err(ArchiveError::UnsanitizableCacheKey(key.to_owned()));
    }
    Ok(sanitized)
}

/// One left-to-right pass replacing `%2f`/`%2F` by `/`, `%2e`/`%2E` by `.`
/// and `\` by `/` (Go's `strings.NewReplacer`).
fn normalise(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(c) = rest.chars().next() {
        let escape = rest.get(..3).map(str::to_ascii_lowercase);
        let (replacement, len) = match escape.as_deref() {
            Some("%2f") => ('/', 3),
            Some("%2e") => ('.', 3),
            _ if c == '\\' => ('/', 1),
            _ => (c, c.len_utf8()),
        };
        out.push(replacement);
        rest = &rest[len..];
    }
    out
}

/// The key used on disk and in object storage when `FF_HASH_CACHE_KEYS`
/// is on: the hex SHA-256 of the key.
pub fn hashed_cache_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Where gitlab-runner keeps a local cache:
/// `<cache_dir>/<project path>/<key>/cache.zip`, the project path being
/// the project's full path such as `group/project`. `key` should come from
/// [`sanitize_cache_key`]; empty, `.` and `..` components of either part
/// are dropped all the same, so the result stays below `cache_dir`.
pub fn cache_path(cache_dir: &Path, project_path: &str, key: &str) -> PathBuf {
    let mut path = cache_dir.to_path_buf();
    for part in project_path.split('/').chain(key.split('/')) {
        if !matches!(part, "" | "." | "..") {
            path.push(part);
        }
    }
    path.join("cache.zip")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::git::testing::Repo;

    fn problem(key: &str) -> Option<String> {
        validate_cache_key("jobs:build:cache:key", key)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn rule_217_keys_cannot_hold_slashes_or_be_dots() {
        let slash =
            Some(r#"jobs:build:cache:key config cannot contain the "/" character"#.to_owned());
        let dots = Some(r#"jobs:build:cache:key config cannot be "." or "..""#.to_owned());
        assert_eq!(problem("a/b"), slash);
        assert_eq!(problem("a%2Fb"), slash);
        assert_eq!(problem("a%2fb"), slash);
        assert_eq!(problem("."), dots);
        assert_eq!(problem(".."), dots);
        assert_eq!(problem("%2E"), dots);
        assert_eq!(problem("%2e%2E"), dots);
        for fine in [
            "...",
            "default",
            "$CI_COMMIT_REF_SLUG",
            "a+b",
            "100%",
            "%zz",
            "a.b",
            "%2",
        ] {
            assert_eq!(problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn keys_are_sanitized_like_gitlab_runner() {
        for (raw, want) in [
            ("fallback_key", "fallback_key"),
            ("some-job/some-ref", "some-job/some-ref"),
            (".../....", ".../...."),
            ("fallback_key/", "fallback_key"),
            ("fallback_key\\", "fallback_key"),
            ("fallback_key/ / \\  \\", "fallback_key"),
            ("fallback_key / \\o", "fallback_key / /o"),
            ("\t foo bar \t\r", "\t foo bar"),
            (" foo / bar ", " foo / bar"),
            ("something %2F something", "something / something"),
            ("some%2f../job/some/ref/.", "job/some/ref"),
            ("%2E%2E%2E", "..."),
            ("%5C", "%5C"),
            ("/foo/bar", "foo/bar"),
            ("../foo/bar", "foo/bar"),
            ("foo/bar/../../../.././blerp", "blerp"),
            ("a/b/c/../../d", "a/d"),
            (r"job\name/git\ref", "job/name/git/ref"),
            ("foo/ /bar", "foo/ /bar"),
            ("foo/ / /", "foo"),
            ("", ""),
        ] {
            assert_eq!(sanitize_cache_key(raw).unwrap(), want, "{raw:?}");
        }
        for raw in [
            "\\",
            "/",
            " ",
            ".",
            "..",
            "//",
            "../.",
            "foo/bar/../..",
            " \t\r\n",
            "%2E",
            "%2e%2E",
            ".%2E",
        ] {
            let err = sanitize_cache_key(raw).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cache key {raw:?} could not be sanitized")
            );
        }
    }

    #[test]
    fn rule_218_key_files_hash_the_committed_blobs() {
        let repo = Repo::new();
        repo.write("Gemfile.lock", "GEM\n  specs:\n");
        repo.write("package-lock.json", "{}\n");
        repo.commit_all("locks");
        let files = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let key = |names: &[&str], prefix| {
            cache_key_from_files(repo.path(), "HEAD", &files(names), prefix).unwrap()
        };
        // sha1("0967ef42...-b2688302...") of the two blob ids, computed with git and sha1sum.
        let both = "f7bb3cf9cd5a29b797881faf7034e2881b1fce86";
        assert_eq!(key(&["Gemfile.lock", "package-lock.json"], None), both);
        assert_eq!(
            key(&["package-lock.json", "Gemfile.lock", "Gemfile.lock"], None),
            both
        );
        assert_eq!(
            key(&["Gemfile.lock"], Some("gems")),
            "gems-dffbe937553d762de02cdf99fee10dfa63e3de05"
        );
        assert_eq!(
            key(&["Gemfile.lock", "missing"], None),
            "dffbe937553d762de02cdf99fee10dfa63e3de05"
        );
        assert_eq!(key(&["missing"], Some("gems")), "gems-default");
        assert_eq!(key(&["missing"], Some("  ")), "default");
        assert_eq!(key(&[], None), "default");
        // Only the commit counts, not the work tree.
        repo.write("Gemfile.lock", "changed\n");
        assert_eq!(key(&["Gemfile.lock", "package-lock.json"], None), both);
    }

    #[test]
    fn key_files_wildcards_follow_gitlab() {
        let repo = Repo::new();
        repo.write("x.lock", "lock\n");
        repo.write("sub/deep/y.lock", "lock\n");
        repo.commit_all("locks");
        let key = |pattern: &str| {
            cache_key_from_files(repo.path(), "HEAD", &[pattern.to_owned()], None).unwrap()
        };
        // Both files have the blob id 4b67b6a0...; one id is hashed.
        let one = hex(&Sha1::digest(b"4b67b6a0d6b6df3e2b1a4b635a26525353c5c362"));
        assert_eq!(key("*.lock"), one);
        assert_eq!(key("**/*.lock"), one);
        assert_eq!(key("sub/*.lock"), "default");
        assert!(wildcard_regex("**/*.lock").is_match("sub/deep/y.lock"));
        assert!(!wildcard_regex("**/*.lock").is_match("x.lock"));
        assert!(!wildcard_regex("*.lock").is_match("sub/y.lock"));
        assert!(!wildcard_regex("a.b").is_match("axb"));
    }

    #[test]
    fn key_files_commits_hash_the_last_commits() {
        let repo = Repo::new();
        repo.write("a.lock", "1");
        let first = repo.commit_all("a");
        repo.write("b.lock", "2");
        let second = repo.commit_all("b");
        repo.write("other", "3");
        repo.commit_all("unrelated");
        let files = ["b.lock".to_owned(), "a.lock".to_owned(), "never".to_owned()];
        let got = cache_key_from_files_commits(repo.path(), "HEAD", &files, Some("p")).unwrap();
        let mut ids = [first, second];
        ids.sort();
        assert_eq!(
            got,
            format!("p-{}", hex(&Sha1::digest(ids.join("-").as_bytes())))
        );
        let none = cache_key_from_files_commits(repo.path(), "HEAD", &["never".to_owned()], None);
        assert_eq!(none.unwrap(), "default");
    }

    #[test]
    fn key_files_outside_a_repository_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = cache_key_from_files(dir.path(), "HEAD", &["x".to_owned()], None).unwrap_err();
        assert!(err.to_string().starts_with("git ls-tree"), "{err}");
    }

    #[test]
    fn rule_220_protected_refs_get_their_own_cache() {
        assert_eq!(protected_cache_key("deps", true, false), "deps-protected");
        assert_eq!(
            protected_cache_key("deps", true, true),
            "deps-non_protected"
        );
        assert_eq!(
            protected_cache_key("deps", false, false),
            "deps-non_protected"
        );
        assert!(is_protected_fallback_key("main-protected"));
        assert!(is_protected_fallback_key("main-protected. ."));
        assert!(!is_protected_fallback_key("main-non_protected"));
    }

    #[test]
    fn local_caches_live_under_project_and_key() {
        let path = cache_path(Path::new("/cache"), "group/project", "deps-non_protected");
        assert_eq!(
            path,
            Path::new("/cache/group/project/deps-non_protected/cache.zip")
        );
        let path = cache_path(Path::new("/cache"), "/group/../project/", "job/ref");
        assert_eq!(path, Path::new("/cache/group/project/job/ref/cache.zip"));
        assert_eq!(hashed_cache_key("default").len(), 64);
        assert_eq!(
            hashed_cache_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
