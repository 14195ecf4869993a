//! Images: reference parsing, the host names of services, and the pull
//! policies.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::client::{api_error, error_text, is_not_found};
use super::options::PullPolicy;
use crate::ExecutorError;

/// An image reference split into its parts: `repo[:tag][@digest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageRef<'a> {
    /// Registry and path, e.g. `registry.example.com:5000/tools/postgres`.
    pub repo: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Splits `name`. A `:` is a tag separator only after the last `/`, so
/// that a registry port (`localhost:5000/img`) is not taken for a tag.
pub(crate) fn parse_reference(name: &str) -> ImageRef<'_> {
    let (rest, digest) = match name.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (name, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => ImageRef {
            repo: &rest[..last_slash + i],
            tag: Some(&rest[last_slash + i + 1..]),
            digest,
        },
        None => ImageRef {
            repo: rest,
            tag: None,
            digest,
        },
    }
}

/// The host names GitLab gives a service from its image name: the path
/// without tag, with `/` replaced by `__`, and by `-`
/// (`registry.example.com/tools/postgres:16` gives
/// `registry.example.com__tools__postgres` and
/// `registry.example.com-tools-postgres`; `postgres:16` gives `postgres`).
pub(crate) fn service_hostnames(name: &str) -> Vec<String> {
    let repo = parse_reference(name).repo;
    let mut names = vec![repo.replace('/', "__")];
    let dashed = repo.replace('/', "-");
    if dashed != names[0] {
        names.push(dashed);
    }
    names.retain(|n| !n.is_empty());
    names
}

/// The pull policies for `image`: the job's when it gives any, else the
/// executor's.
pub(crate) fn effective_policies(
    image: &str,
    requested: &[String],
    default: &[PullPolicy],
) -> Result<Vec<PullPolicy>, ExecutorError> {
    if requested.is_empty() {
        return Ok(if default.is_empty() {
            vec![PullPolicy::IfNotPresent]
        } else {
            default.to_vec()
        });
    }
    requested
        .iter()
        .map(|p| {
            p.parse().map_err(|_| ExecutorError::PullPolicy {
                image: image.to_owned(),
                value: p.clone(),
            })
        })
        .collect()
}

/// What a job needs to know of an image present on the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalImage {
    /// The image id: containers are created from it, so every step of a
    /// job runs the same image even if its tag moves meanwhile.
    pub id: String,
    /// The TCP ports the image exposes (`EXPOSE 5432`).
    pub tcp_ports: Vec<u16>,
}

/// Makes `image` present as `policies` allow, trying them in order, and
/// describes it. Notes for the job log (a failed policy before one that
/// worked) go to `notes`.
pub(crate) async fn ensure_image(
    docker: &Docker,
    image: &str,
    policies: &[PullPolicy],
    notes: &mut Vec<String>,
) -> Result<LocalImage, ExecutorError> {
    let mut last_error = None;
    for (attempt, &policy) in policies.iter().enumerate() {
        if let Some(e) = &last_error {
            // GitLab's wording for the fall-back to the next policy.
            notes.push(format!(
                "{e}; attempt #{}: trying \"{policy}\" pull policy",
                attempt + 1
            ));
        }
        let result = match policy {
            PullPolicy::Always => pull_then_inspect(docker, image).await,
            PullPolicy::IfNotPresent => match inspect(docker, image).await? {
                Some(found) => Ok(found),
                None => pull_then_inspect(docker, image)
                    .await
                    .map_err(with_local_image_hint),
            },
            PullPolicy::Never => match inspect(docker, image).await? {
                Some(found) => Ok(found),
                None => Err(ExecutorError::ImageNotPresent {
                    image: image.to_owned(),
                    policy: policy.to_string(),
                }),
            },
        };
        match result {
            Ok(found) => return Ok(found),
            Err(e @ (ExecutorError::ImagePull { .. } | ExecutorError::ImageNotPresent { .. })) => {
                last_error = Some(e)
            }
            Err(other) => return Err(other),
        }
    }
    Err(
        last_error.unwrap_or_else(|| ExecutorError::ImageNotPresent {
            image: image.to_owned(),
            policy: "empty".to_owned(),
        }),
    )
}

/// The local image `image`, or `None` when the daemon has none.
pub(crate) async fn inspect(
    docker: &Docker,
    image: &str,
) -> Result<Option<LocalImage>, ExecutorError> {
    match docker.inspect_image(image).await {
        Ok(found) => Ok(Some(LocalImage {
            id: found.id.unwrap_or_else(|| image.to_owned()),
            tcp_ports: found
                .config
                .and_then(|c| c.exposed_ports)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| tcp_port(p))
                .collect(),
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(api_error(format!("inspect image {image}"), &e)),
    }
}

/// `5432/tcp` (or a bare `5432`) as a port; other protocols as `None`.
fn tcp_port(exposed: &str) -> Option<u16> {
    let (port, proto) = exposed.split_once('/').unwrap_or((exposed, "tcp"));
    (proto == "tcp").then(|| port.parse().ok()).flatten()
}

async fn pull_then_inspect(docker: &Docker, image: &str) -> Result<LocalImage, ExecutorError> {
    pull(docker, image).await?;
    inspect(docker, image)
        .await?
        .ok_or_else(|| ExecutorError::ImagePull {
            image: image.to_owned(),
            message: "the daemon reported success, but the image is not there".to_owned(),
            hint: None,
        })
}

/// Pulls `image` from its registry.
async fn pull(docker: &Docker, image: &str) -> Result<(), ExecutorError> {
    let r = parse_reference(image);
    // Without a tag the API pulls EVERY tag of the repository; `latest`
    // is what `docker pull` means.
    let tag = r.digest.or(r.tag).unwrap_or("latest");
    let options = CreateImageOptionsBuilder::default()
        .from_image(r.repo)
        .tag(tag)
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        if let Err(e) = item {
            return Err(ExecutorError::ImagePull {
                image: image.to_owned(),
                message: error_text(&e),
                hint: None,
            });
        }
    }
    Ok(())
}

/// Adds, to the pull failure of an image that is not on the machine, a
/// hint at making it locally, when the failure is that no registry could
/// be reached (a machine offline, or behind a firewall): pulling again
/// will not help, building or loading it will.
fn with_local_image_hint(e: ExecutorError) -> ExecutorError {
    match e {
        ExecutorError::ImagePull {
            image,
            message,
            hint: None,
        } if registry_unreachable(&message) => ExecutorError::ImagePull {
            hint: Some(format!(
                "image {image} is not on this machine and no registry is reachable: \
                 make it locally with `docker load`, `docker import` or `docker build`"
            )),
            image,
            message,
        },
        other => other,
    }
}

/// Whether a pull failed for want of a network path to the registry,
/// judged from the daemon's text as gitlab-runner does (its words are
/// Go's network errors).
fn registry_unreachable(message: &str) -> bool {
    const SIGNS: [&str; 9] = [
        "dial tcp",
        "connection refused",
        "no such host",
        "i/o timeout",
        "network is unreachable",
        "no route to host",
        "tls handshake timeout",
        "temporary failure in name resolution",
        "while awaiting headers",
    ];
    let message = message.to_ascii_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repo_tag_and_digest() {
        let r = parse_reference("registry.example.com:5000/tools/postgres:16");
        assert_eq!(r.repo, "registry.example.com:5000/tools/postgres");
        assert_eq!(r.tag, Some("16"));
        assert_eq!(r.digest, None);
        let r = parse_reference("localhost:5000/img");
        assert_eq!((r.repo, r.tag), ("localhost:5000/img", None));
        let r = parse_reference("alpine@sha256:abc");
        assert_eq!(
            (r.repo, r.tag, r.digest),
            ("alpine", None, Some("sha256:abc"))
        );
        let r = parse_reference("alpine:3@sha256:abc");
        assert_eq!(
            (r.repo, r.tag, r.digest),
            ("alpine", Some("3"), Some("sha256:abc"))
        );
    }

    #[test]
    fn service_hostnames_follow_gitlab() {
        assert_eq!(
            service_hostnames("registry.example.com/tools/postgres:16"),
            [
                "registry.example.com__tools__postgres",
                "registry.example.com-tools-postgres"
            ]
        );
        assert_eq!(service_hostnames("postgres:16"), ["postgres"]);
        assert_eq!(
            service_hostnames("tutum/wordpress:latest"),
            ["tutum__wordpress", "tutum-wordpress"]
        );
    }

    #[test]
    fn job_policies_win_and_are_checked() {
        let default = [PullPolicy::IfNotPresent];
        assert_eq!(effective_policies("a", &[], &default).unwrap(), default);
        assert_eq!(
            effective_policies("a", &["always".into(), "never".into()], &default).unwrap(),
            [PullPolicy::Always, PullPolicy::Never]
        );
        let err = effective_policies("alpine", &["sometimes".into()], &default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown pull policy \"sometimes\" for image alpine: expected always, if-not-present or never"
        );
    }

    #[test]
    fn unreachable_registries_get_a_hint_other_failures_do_not() {
        let pull = |message: &str| ExecutorError::ImagePull {
            image: "alpine:3".into(),
            message: message.into(),
            hint: None,
        };
        for offline in [
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
            "Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
            "Get \"https://r.example/v2/\": net/http: TLS handshake timeout",
        ] {
            let e = with_local_image_hint(pull(offline));
            let hint = e.hint().unwrap_or_else(|| panic!("no hint for {offline}"));
            assert!(
                hint.starts_with("image alpine:3 is not on this machine"),
                "{hint}"
            );
            assert!(hint.contains("`docker load`, `docker import` or `docker build`"));
            assert!(!hint.contains('\n'));
            assert_eq!(
                e.to_string(),
                format!("failed to pull image alpine:3: {offline}"),
                "the message itself is unchanged"
            );
        }
        for answered in [
            "pull access denied for nope, repository does not exist or may require 'docker login'",
            "manifest for alpine:99 not found: manifest unknown",
        ] {
            assert_eq!(
                with_local_image_hint(pull(answered)).hint(),
                None,
                "{answered}"
            );
        }
    }

    #[test]
    fn only_tcp_ports_are_waited_for() {
        assert_eq!(tcp_port("5432/tcp"), Some(5432));
        assert_eq!(tcp_port("53/udp"), None);
        assert_eq!(tcp_port("80"), Some(80));
        assert_eq!(tcp_port("x/tcp"), None);
    }
}
