//! `release:` (rule 246): the release a job creates after its script.

use serde::Serialize;

use super::check::{
    ErrorMark, attr_error, child, is_blank, opt_string, required_string, string_or_strings,
};
use super::decode::Decoder;
use super::duration::duration_with_variables;
use crate::ci::yaml::{Mapping, Node};

const ALLOWED_KEYS: &[&str] = &[
    "tag_name",
    "tag_message",
    "name",
    "description",
    "ref",
    "released_at",
    "milestones",
    "assets",
];
const LINK_KEYS: &[&str] = &["name", "url", "filepath", "direct_asset_path", "link_type"];

/// A job's `release:`. Strings are kept as written; the release tool
/// expands variables when the job runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReleaseSpec {
    pub tag_name: String,
    /// Makes the new tag annotated.
    pub tag_message: Option<String>,
    /// Defaults to `tag_name`.
    pub name: Option<String>,
    /// Text, or a path to a file holding it.
    pub description: String,
    /// Commit, tag or branch to tag when `tag_name` does not exist yet.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub milestones: Vec<String>,
    /// ISO 8601 date and time.
    pub released_at: Option<String>,
    pub assets_links: Vec<ReleaseLink>,
}

/// One entry of `release:assets:links`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReleaseLink {
    pub name: String,
    pub url: String,
    pub filepath: Option<String>,
    pub direct_asset_path: Option<String>,
    /// `other`, `runbook`, `image` or `package`.
    pub link_type: Option<String>,
}

/// Decodes `release:` at `path` (`jobs:release:release`).
pub(crate) fn decode_release(d: &mut Decoder, node: &Node, path: &str) -> Option<ReleaseSpec> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, ALLOWED_KEYS);
    let mut spec = ReleaseSpec {
        tag_name: required_string(d, node, map, path, "tag_name").unwrap_or_default(),
        ..ReleaseSpec::default()
    };
    if let Some(value) = map.get("tag_message").filter(|n| !is_blank(n)) {
        match value.as_str() {
            Some(text) => spec.tag_message = Some(text.to_string()),
            None => attr_error(d, value, path, "tag_message", "should be a string"),
        }
    }
    spec.name = opt_string(d, map, path, "name");
    spec.description = required_string(d, node, map, path, "description").unwrap_or_default();
    if let Some(value) = map.get("ref").filter(|n| !n.is_null()) {
        match value.as_str() {
            Some(git_ref) if valid_git_ref(git_ref) => spec.git_ref = Some(git_ref.to_string()),
            _ => attr_error(d, value, path, "ref", "must be a valid ref"),
        }
    }
    if let Some(value) = map.get("released_at").filter(|n| !n.is_null()) {
        match value.as_str() {
            Some(at) if valid_iso8601(at) => spec.released_at = Some(at.to_string()),
            _ => attr_error(d, value, path, "released_at", "must be a valid datetime"),
        }
    }
    if let Some(value) = map.get("milestones").filter(|n| !is_blank(n)) {
        match string_or_strings(value) {
            Some(list) => spec.milestones = list,
            None => attr_error(
                d,
                value,
                path,
                "milestones",
                "should be an array of strings or a string",
            ),
        }
    }
    // Nested entries are only validated once the release itself is valid.
    if mark.clean(d) {
        if let Some(assets) = map.get("assets").filter(|n| !n.is_null()) {
            spec.assets_links =
                decode_assets(d, assets, &child(path, "assets")).unwrap_or_default();
        }
    }
    mark.finish(d, spec)
}

fn decode_assets(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<ReleaseLink>> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, &["links"]);
    let links = map.get("links");
    match links {
        Some(l) if !is_blank(l) => {
            let hashes = l
                .as_seq()
                .is_some_and(|items| items.iter().all(|i| i.as_map().is_some()));
            if !hashes {
                attr_error(d, l, path, "links", "should be an array of hashes");
            }
        }
        found => {
            if let Some(l) = found.filter(|l| l.as_seq().is_none()) {
                attr_error(d, l, path, "links", "should be an array of hashes");
            }
            attr_error(d, found.unwrap_or(node), path, "links", "can't be blank");
        }
    }
    if !mark.clean(d) {
        return None;
    }
    let links_path = child(path, "links");
    let link_path = child(&links_path, "link");
    let items = links.and_then(|l| l.as_seq()).unwrap_or_default();
    let decoded: Vec<ReleaseLink> = items
        .iter()
        .filter_map(|item| {
            item.as_map()
                .and_then(|m| decode_link(d, item, m, &link_path))
        })
        .collect();
    mark.finish(d, decoded)
}

fn decode_link(d: &mut Decoder, node: &Node, map: &Mapping, path: &str) -> Option<ReleaseLink> {
    let mark = ErrorMark::new(d);
    d.unknown_keys(map, path, LINK_KEYS);
    let name = required_string(d, node, map, path, "name").unwrap_or_default();
    let url = match map.get("url") {
        Some(u) if !is_blank(u) => check_url(d, u, path),
        found => {
            attr_error(d, found.unwrap_or(node), path, "url", "can't be blank");
            String::new()
        }
    };
    let link = ReleaseLink {
        name,
        url,
        filepath: opt_string(d, map, path, "filepath"),
        direct_asset_path: opt_string(d, map, path, "direct_asset_path"),
        link_type: opt_string(d, map, path, "link_type"),
    };
    mark.finish(d, link)
}

/// Asset URLs must be `http` or `https` once known; a URL built from
/// variables (`$PACKAGE_REGISTRY_URL/file`) is only known when the job runs.
fn check_url(d: &mut Decoder, node: &Node, path: &str) -> String {
    let text = node
        .scalar_string()
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let lower = text.trim().to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    if !web && !duration_with_variables(&text) {
        attr_error(
            d,
            node,
            path,
            "url",
            "is blocked: only allowed schemes are http, https",
        );
    }
    text
}

/// Git's rules for a branch name (`git check-ref-format`), as GitLab checks
/// `release:ref`.
fn valid_git_ref(name: &str) -> bool {
    if name.is_empty() || name == "HEAD" || name == "@" {
        return false;
    }
    if ["refs/heads/", "refs/remotes/", "-"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return false;
    }
    let bad_char = |c: char| c.is_ascii_control() || " ~^:?*[\\".contains(c);
    if name.chars().any(bad_char) || name.contains("..") || name.contains("@{") {
        return false;
    }
    if name.ends_with('/') || name.ends_with('.') {
        return false;
    }
    name.split('/')
        .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// Ruby's `DateTime.iso8601` for the usual forms: `2021-03-15`,
/// `2021-03-15T08:00:00Z`, `20210315T080000+0100`, with optional fractions.
fn valid_iso8601(text: &str) -> bool {
    let (date, time) = match text.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    valid_date(date) && time.is_none_or(valid_time)
}

fn digits(text: &str, len: usize) -> Option<u32> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn valid_date(date: &str) -> bool {
    if !date.is_ascii() {
        return false;
    }
    let parts: Vec<&str> = date.split('-').collect();
    let (year, month, day) = match parts.as_slice() {
        [y, m, d] => (digits(y, 4), digits(m, 2), digits(d, 2)),
        [compact] if compact.len() == 8 => (
            digits(&compact[..4], 4),
            digits(&compact[4..6], 2),
            digits(&compact[6..], 2),
        ),
        _ => return false,
    };
    match (year, month, day) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn valid_time(time: &str) -> bool {
    if !time.is_ascii() {
        return false;
    }
    let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => (&time[..at], Some(&time[at..])),
        None => (time, None),
    };
    let (clock, fraction) = match clock.split_once(['.', ',']) {
        Some((c, f)) => (c, Some(f)),
        None => (clock, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let fields: Vec<&str> = if clock.contains(':') {
        clock.split(':').collect()
    } else {
        clock
            .as_bytes()
            .chunks(2)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect()
    };
    let values: Option<Vec<u32>> = fields.iter().map(|f| digits(f, 2)).collect();
    let clock_ok = match values.as_deref() {
        Some([h, m]) => *h <= 24 && *m <= 59,
        Some([h, m, s]) => *h <= 24 && *m <= 59 && *s <= 60,
        _ => false,
    };
    clock_ok && zone.is_none_or(valid_zone)
}

fn valid_zone(zone: &str) -> bool {
    if zone.eq_ignore_ascii_case("z") {
        return true;
    }
    let offset = &zone[1..];
    let compact: String = offset.chars().filter(|&c| c != ':').collect();
    matches!(compact.len(), 2 | 4) && compact.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<ReleaseSpec>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::new();
        let out = decode_release(&mut d, &node, "jobs:rel:release");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).1
    }

    #[test]
    fn rule_246_full_release_decodes() {
        let (spec, errs) = decode(
            "tag_name: $CI_COMMIT_TAG\ntag_message: Annotated\nname: Release $CI_COMMIT_TAG\ndescription: ./CHANGELOG.md\nref: $CI_COMMIT_SHA\nmilestones: [m1, m2]\nreleased_at: '2021-03-15T08:00:00Z'\nassets:\n  links:\n    - name: asset1\n      url: https://example.com/assets/1\n    - name: asset2\n      url: $PACKAGE_REGISTRY_URL/asset2\n      filepath: /pretty/url/1\n      link_type: other\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(spec.tag_name, "$CI_COMMIT_TAG");
        assert_eq!(spec.git_ref.as_deref(), Some("$CI_COMMIT_SHA"));
        assert_eq!(spec.milestones, ["m1", "m2"]);
        assert_eq!(spec.assets_links.len(), 2);
        assert_eq!(spec.assets_links[1].link_type.as_deref(), Some("other"));
    }

    #[test]
    fn rule_246_tag_name_and_description_are_required() {
        assert_eq!(
            errors("description: x\n"),
            ["jobs:rel:release tag name can't be blank"]
        );
        assert_eq!(
            errors("tag_name: v1\n"),
            ["jobs:rel:release description can't be blank"]
        );
        assert_eq!(
            errors("tag_name: v1\ndescription: 10\n"),
            ["jobs:rel:release description should be a string"]
        );
    }

    #[test]
    fn rule_246_other_keys_are_checked() {
        let base = "tag_name: v1\ndescription: d\n";
        assert_eq!(
            errors(&format!("{base}ref: 'invalid\\branch'\n")),
            ["jobs:rel:release ref must be a valid ref"]
        );
        assert_eq!(
            errors(&format!("{base}released_at: ABC123\n")),
            ["jobs:rel:release released at must be a valid datetime"]
        );
        assert_eq!(
            errors(&format!("{base}milestones: [1, 2]\n")),
            ["jobs:rel:release milestones should be an array of strings or a string"]
        );
        assert_eq!(
            errors(&format!("{base}tag_message: 100\n")),
            ["jobs:rel:release tag message should be a string"]
        );
        assert_eq!(
            errors(&format!("{base}test: 1\n")),
            ["jobs:rel:release config contains unknown keys: test"]
        );
    }

    #[test]
    fn rule_246_asset_links_need_a_name_and_a_web_url() {
        let base = "tag_name: v1\ndescription: d\nassets:\n  links:\n";
        assert_eq!(
            errors(&format!("{base}    - url: https://x\n")),
            ["jobs:rel:release:assets:links:link name can't be blank"]
        );
        assert_eq!(
            errors(&format!("{base}    - name: a\n      url: xyz\n")),
            [
                "jobs:rel:release:assets:links:link url is blocked: only allowed schemes are http, https"
            ]
        );
        assert_eq!(
            errors("tag_name: v1\ndescription: d\nassets: {links: []}\n"),
            ["jobs:rel:release:assets links can't be blank"]
        );
        assert_eq!(
            errors("tag_name: v1\ndescription: d\nassets: {links: [a]}\n"),
            ["jobs:rel:release:assets links should be an array of hashes"]
        );
    }

    #[test]
    fn git_refs_and_dates_follow_git_and_iso_8601() {
        for good in [
            "main",
            "fix/123-branch",
            "v1.2.3-rc",
            "b3235930",
            "$CI_COMMIT_SHA",
        ] {
            assert!(valid_git_ref(good), "{good}");
        }
        for bad in [
            "a..b",
            "a b",
            "-x",
            "x/",
            "x.lock",
            ".x",
            "a@{b",
            "HEAD",
            "refs/heads/x",
        ] {
            assert!(!valid_git_ref(bad), "{bad}");
        }
        for good in [
            "2021-03-15",
            "2021-03-15T08:00:00Z",
            "2021-03-15T08:00:00.5+01:00",
            "20210315T080000Z",
        ] {
            assert!(valid_iso8601(good), "{good}");
        }
        for bad in [
            "ABC123",
            "2021-13-01",
            "2021-02-30",
            "2021-03-15T25:00",
            "202é0315",
        ] {
            assert!(!valid_iso8601(bad), "{bad}");
        }
    }
}
