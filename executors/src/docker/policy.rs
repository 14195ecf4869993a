//! What the runner's configuration allows a job: its image and services
//! (`allowed_images`, `allowed_services`, glob patterns), their pull
//! policies (`allowed_pull_policies`) and how many services
//! (`services_limit`). Checked in `prepare` before anything is pulled,
//! created or started.

use super::image::effective_policies;
use super::options::{DockerOptions, PullPolicy};
use crate::{ExecutorError, ImageSpec, ServiceSpec};

/// The pull policies of a job's image and of each of its services, once
/// everything is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobPolicies {
    pub image: Vec<PullPolicy>,
    /// In the order of the job's services.
    pub services: Vec<Vec<PullPolicy>>,
}

/// Checks the job's image (as resolved: the job's, or the default one),
/// services and pull policies against `options`. The runner's own
/// default image is allowed whatever `allowed_images` says, as in
/// gitlab-runner.
pub(crate) fn check_job(
    options: &DockerOptions,
    image: &ImageSpec,
    services: &[ServiceSpec],
) -> Result<JobPolicies, ExecutorError> {
    let default = options.default_image.as_deref();
    check_allowed(&image.name, "images", &options.allowed_images, default)?;
    let image_policies = allowed_policies(
        effective_policies(&image.name, &image.pull_policy, &options.pull_policy)?,
        &options.allowed_pull_policies,
    )?;
    if let Some(limit) = options.services_limit {
        if services.len() > limit {
            return Err(ExecutorError::TooManyServices {
                requested: services.len(),
                allowed: limit,
            });
        }
    }
    let mut service_policies = Vec::with_capacity(services.len());
    for service in services {
        check_allowed(&service.name, "services", &options.allowed_services, None)?;
        service_policies.push(allowed_policies(
            effective_policies(&service.name, &service.pull_policy, &options.pull_policy)?,
            &options.allowed_pull_policies,
        )?);
    }
    Ok(JobPolicies {
        image: image_policies,
        services: service_policies,
    })
}

/// gitlab-runner's rule: an empty list allows every image; otherwise the
/// image must match one of the patterns, or be `internal` (the runner's
/// own default image).
fn check_allowed(
    image: &str,
    list: &str,
    allowed: &[String],
    internal: Option<&str>,
) -> Result<(), ExecutorError> {
    if allowed.is_empty()
        || internal == Some(image)
        || allowed.iter().any(|pattern| glob_match(pattern, image))
    {
        return Ok(());
    }
    Err(ExecutorError::ImageNotAllowed {
        image: image.to_owned(),
        list: list.to_owned(),
        allowed: allowed.to_vec(),
    })
}

/// The `requested` policies that `allowed` permits, in their order (all of
/// them when `allowed` is empty); an error when none is left, as
/// gitlab-runner filters them.
fn allowed_policies(
    requested: Vec<PullPolicy>,
    allowed: &[PullPolicy],
) -> Result<Vec<PullPolicy>, ExecutorError> {
    if allowed.is_empty() {
        return Ok(requested);
    }
    let kept: Vec<PullPolicy> = requested
        .iter()
        .copied()
        .filter(|p| allowed.contains(p))
        .collect();
    if kept.is_empty() {
        let names = |list: &[PullPolicy]| list.iter().map(|p| p.as_str().to_owned()).collect();
        return Err(ExecutorError::PullPolicyNotAllowed {
            requested: names(&requested),
            allowed: names(allowed),
        });
    }
    Ok(kept)
}

/// Whether `name` matches `pattern` as doublestar (v4) `Match` decides,
/// the matcher gitlab-runner checks images with: `*` is any run of
/// characters but `/`, `?` one character but `/`, `[a-z]`/`[!a-z]`/
/// `[^a-z]` one character of (or not of) a class, `{a,b}` either
/// alternative, `\` escapes the next character, and `**` as a whole path
/// component any number of components, none included (`a/**` matches
/// `a`; `**/x` matches `x`). Elsewhere `**` is `*`. A malformed pattern
/// matches nothing, as gitlab-runner ignores doublestar's error.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, 0, &name, 0)
}

fn matches_from(p: &[char], mut pi: usize, s: &[char], mut si: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                let start = pi;
                while pi < p.len() && p[pi] == '*' {
                    pi += 1;
                }
                let whole_component = pi - start >= 2
                    && (start == 0 || p[start - 1] == '/')
                    && (pi == p.len() || p[pi] == '/');
                if whole_component {
                    if pi == p.len() {
                        return true;
                    }
                    // `**/`: no component, or every split after a `/`.
                    let rest = pi + 1;
                    return matches_from(p, rest, s, si)
                        || (si..s.len()).any(|k| s[k] == '/' && matches_from(p, rest, s, k + 1));
                }
                let mut k = si;
                loop {
                    if matches_from(p, pi, s, k) {
                        return true;
                    }
                    if k == s.len() || s[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            // `dir/**` also matches `dir` itself.
            '/' if si == s.len() && p[pi + 1..] == ['*', '*'] => return true,
            '?' => {
                if si == s.len() || s[si] == '/' {
                    return false;
                }
                pi += 1;
                si += 1;
            }
            '[' => {
                let Some((matched, next)) = class_match(p, pi, s.get(si).copied()) else {
                    return false;
                };
                if !matched {
                    return false;
                }
                pi = next;
                si += 1;
            }
            '{' => {
                let Some((alternatives, next)) = alternatives(p, pi) else {
                    return false;
                };
                // Each alternative in place of the braces, so that what
                // comes before still counts for `**`.
                return alternatives.into_iter().any(|alt| {
                    let mut expanded: Vec<char> = p[..pi].to_vec();
                    expanded.extend_from_slice(alt);
                    expanded.extend_from_slice(&p[next..]);
                    matches_from(&expanded, pi, s, si)
                });
            }
            '\\' => {
                let Some(&c) = p.get(pi + 1) else {
                    return false;
                };
                if s.get(si) != Some(&c) {
                    return false;
                }
                pi += 2;
                si += 1;
            }
            c => {
                if s.get(si) != Some(&c) {
                    return false;
                }
                pi += 1;
                si += 1;
            }
        }
    }
    si == s.len()
}

/// Matches `c` against the class opening at `p[open]`: whether it matched
/// and where the pattern goes on; `None` for a malformed class. A class
/// never matches `/` nor the end of the name.
fn class_match(p: &[char], open: usize, c: Option<char>) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut empty = true;
    loop {
        let lo = match p.get(i)? {
            ']' if !empty => break,
            '\\' => {
                i += 1;
                *p.get(i)?
            }
            &ch => ch,
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&n| n != ']') {
            i += 1;
            let hi = match p.get(i)? {
                '\\' => {
                    i += 1;
                    *p.get(i)?
                }
                &ch => ch,
            };
            i += 1;
            hi
        } else {
            lo
        };
        if lo > hi {
            return None;
        }
        empty = false;
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
    }
    let ok = match c {
        None | Some('/') => false,
        Some(_) => matched != negated,
    };
    Some((ok, i + 1))
}

/// The alternatives of the braces opening at `p[open]` and the index
/// after the closing one; `None` when they never close.
fn alternatives(p: &[char], open: usize) -> Option<(Vec<&[char]>, usize)> {
    let mut depth = 0;
    let mut start = open + 1;
    let mut found = Vec::new();
    let mut i = open + 1;
    while i < p.len() {
        match p[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            '}' => {
                found.push(&p[start..i]);
                return Some((found, i + 1));
            }
            ',' if depth == 0 => {
                found.push(&p[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_stop_at_slashes_and_double_stars_cross_them() {
        let cases = [
            ("local/busybox:*", "local/busybox:runner-test", true),
            ("local/busybox:*", "local/busybox:", true),
            ("other/*", "local/busybox:runner-test", false),
            ("other/*", "other/x:1", true),
            ("other/*", "other/x/y:1", false),
            ("*", "alpine:3", true),
            ("*", "library/alpine:3", false),
            ("*:3", "alpine:3", true),
            (
                "registry.example.com/**",
                "registry.example.com/a/b/c:1",
                true,
            ),
            ("registry.example.com/**", "registry.example.com", true),
            ("registry.example.com/**", "registry.example.comx/a", false),
            ("**/postgres:*", "postgres:16", true),
            ("**/postgres:*", "docker.io/library/postgres:16", true),
            ("**/postgres:*", "docker.io/library/mypostgres:16", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("**", "anything/at/all:1", true),
            // Not a whole component: an ordinary star.
            ("a**", "abc", true),
            ("a**", "ab/c", false),
            ("x/a**/y", "x/ab/y", true),
            ("x/a**/y", "x/a/b/y", false),
            ("alpine", "alpine", true),
            ("alpine", "alpine:3", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        let cases = [
            ("alpine:3.?", "alpine:3.9", true),
            ("alpine:3.?", "alpine:3.10", false),
            ("a?b", "a/b", false),
            ("alpine:3.[0-9]", "alpine:3.7", true),
            ("alpine:3.[!0-9]", "alpine:3.7", false),
            ("alpine:3.[^0-9]", "alpine:3.x", true),
            ("a[/]b", "a/b", false),
            ("{alpine,busybox}:*", "busybox:1", true),
            ("{alpine,busybox}:*", "debian:1", false),
            ("{a/**,b}", "a/x/y", true),
            ("x{a,{b,c}}", "xc", true),
            ("weird\\*", "weird*", true),
            ("weird\\*", "weirdo", false),
            // Malformed: nothing matches.
            ("alpine[", "alpine[", false),
            ("{alpine", "alpine", false),
            ("trailing\\", "trailing\\", false),
            ("[z-a]", "m", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    fn options() -> DockerOptions {
        DockerOptions {
            default_image: Some("runner/default:1".into()),
            allowed_images: vec!["local/*".into()],
            allowed_services: vec!["postgres:*".into()],
            ..DockerOptions::default()
        }
    }

    #[test]
    fn images_and_services_must_be_on_their_lists() {
        let o = options();
        assert!(check_job(&o, &ImageSpec::new("local/busybox:1"), &[]).is_ok());
        // The runner's own default image is always allowed.
        assert!(check_job(&o, &ImageSpec::new("runner/default:1"), &[]).is_ok());
        let err = check_job(&o, &ImageSpec::new("evil/miner:1"), &[]).unwrap_err();
        assert!(err.is_configuration());
        assert_eq!(
            err.to_string(),
            "the \"evil/miner:1\" image is not present on list of allowed images: local/*"
        );
        let report = err.report().unwrap();
        assert_eq!(
            report.headline,
            "The \"evil/miner:1\" image is not present on list of allowed images:"
        );
        assert_eq!(report.lines[0], "- local/*");

        let image = ImageSpec::new("local/busybox:1");
        assert!(check_job(&o, &image, &[ServiceSpec::new("postgres:16")]).is_ok());
        let err = check_job(&o, &image, &[ServiceSpec::new("redis:7")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the \"redis:7\" image is not present on list of allowed services: postgres:*"
        );
        // Empty lists allow anything.
        let open = DockerOptions::default();
        assert!(
            check_job(
                &open,
                &ImageSpec::new("any/thing"),
                &[ServiceSpec::new("x")]
            )
            .is_ok()
        );
    }

    #[test]
    fn pull_policies_are_filtered_to_the_allowed_ones() {
        let o = DockerOptions {
            pull_policy: vec![PullPolicy::IfNotPresent],
            allowed_pull_policies: vec![PullPolicy::IfNotPresent, PullPolicy::Never],
            ..DockerOptions::default()
        };
        let job = |policies: &[&str]| {
            check_job(
                &o,
                &ImageSpec::new("a").with_pull_policy(policies.iter().copied()),
                &[],
            )
        };
        assert_eq!(job(&[]).unwrap().image, [PullPolicy::IfNotPresent]);
        assert_eq!(job(&["never"]).unwrap().image, [PullPolicy::Never]);
        // gitlab-runner keeps the allowed ones, in the job's order.
        assert_eq!(
            job(&["always", "never", "if-not-present"]).unwrap().image,
            [PullPolicy::Never, PullPolicy::IfNotPresent]
        );
        let err = job(&["always"]).unwrap_err();
        assert!(err.is_configuration());
        assert_eq!(
            err.to_string(),
            "pull_policy ([always]) defined in the job is not one of the allowed_pull_policies ([if-not-present never])"
        );
        // A service's policies are checked the same way.
        let service = ServiceSpec::new("db").with_pull_policy(["always"]);
        let err = check_job(&o, &ImageSpec::new("a"), &[service]).unwrap_err();
        assert!(matches!(err, ExecutorError::PullPolicyNotAllowed { .. }));
    }

    #[test]
    fn services_beyond_the_limit_fail_the_job() {
        let o = DockerOptions {
            services_limit: Some(1),
            ..DockerOptions::default()
        };
        let image = ImageSpec::new("a");
        assert!(check_job(&o, &image, &[ServiceSpec::new("db")]).is_ok());
        let err =
            check_job(&o, &image, &[ServiceSpec::new("db"), ServiceSpec::new("c")]).unwrap_err();
        assert!(err.is_configuration());
        assert_eq!(
            err.to_string(),
            "too many services requested: 2, only 1 allowed (services_limit)"
        );
        let none = DockerOptions {
            services_limit: Some(0),
            ..DockerOptions::default()
        };
        assert!(check_job(&none, &image, &[]).is_ok());
        assert!(check_job(&none, &image, &[ServiceSpec::new("db")]).is_err());
    }
}
