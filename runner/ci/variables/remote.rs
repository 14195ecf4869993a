//! Where the project lives, worked out from the `origin` remote's URL: the
//! GitLab server and the project's full path, which the `CI_SERVER_*` and
//! `CI_PROJECT_*` variables describe.
//!
//! A remote URL tells the host and the path, not how the GitLab instance is
//! configured, so some things are assumed and documented here:
//! - An SSH remote (`git@host:group/proj.git`, `ssh://git@host:2222/...`)
//!   means the web side is `https://host` on port 443; the SSH port goes to
//!   `CI_SERVER_SHELL_SSH_PORT`.
//! - An HTTP(S) remote gives protocol, host and port as written. The whole
//!   path is taken as the project path, so an instance served under a
//!   relative URL root (`https://host/gitlab/group/proj`) is misread.
//! - Credentials in the URL (`https://user:token@host/...`) are dropped.
//! - No `origin`, or an origin that is a local path: the project is
//!   `local/<directory name>` on `http://localhost`.

/// The server and project a remote URL points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectLocation {
    /// `https` or `http`.
    pub protocol: String,
    pub host: String,
    /// The web port: explicit, or 443/80 from the protocol.
    pub port: u16,
    /// The SSH port for `CI_SERVER_SHELL_SSH_PORT`.
    pub ssh_port: u16,
    /// The project's full path, `group/sub/project`.
    pub path: String,
}

impl ProjectLocation {
    /// The location used when there is no usable remote: `local/<dir_name>`
    /// on `http://localhost`.
    pub fn local(dir_name: &str) -> ProjectLocation {
        let name = if dir_name.is_empty() {
            "project"
        } else {
            dir_name
        };
        ProjectLocation {
            protocol: "http".to_owned(),
            host: "localhost".to_owned(),
            port: 80,
            ssh_port: 22,
            path: format!("local/{name}"),
        }
    }

    fn default_port(&self) -> u16 {
        if self.protocol == "http" { 80 } else { 443 }
    }

    /// `host`, plus `:port` when the port is not the protocol's default
    /// (`CI_SERVER_FQDN`).
    pub fn host_with_optional_port(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `CI_SERVER_URL`: `https://host[:port]`.
    pub fn server_url(&self) -> String {
        format!("{}://{}", self.protocol, self.host_with_optional_port())
    }

    /// The project's name, the last path segment (`CI_PROJECT_NAME`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// Everything before the name (`CI_PROJECT_NAMESPACE`).
    pub fn namespace(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(ns, _)| ns)
    }

    /// The top-level group or user (`CI_PROJECT_ROOT_NAMESPACE`).
    pub fn root_namespace(&self) -> &str {
        self.namespace().split('/').next().unwrap_or("")
    }
}

/// Reads a git remote URL. `None` for local paths, `file://` URLs and
/// anything without a host and a path.
pub fn parse_remote_url(url: &str) -> Option<ProjectLocation> {
    let url = url.trim();
    let (protocol, authority, path, ssh) = if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let scheme = scheme.to_ascii_lowercase();
        let (protocol, ssh) = match scheme.as_str() {
            "http" | "https" => (scheme.clone(), false),
            "ssh" | "git+ssh" | "ssh+git" => ("https".to_owned(), true),
            "git" => ("https".to_owned(), false),
            _ => return None,
        };
        (protocol, authority, path, ssh)
    } else {
        // scp-like `[user@]host:path`: git reads it so when a colon comes
        // before any slash.
        let colon = url.find(':')?;
        if url[..colon].contains('/') {
            return None;
        }
        let (authority, path) = (&url[..colon], &url[colon + 1..]);
        // `host:path` with an empty host, or a Windows drive letter.
        if authority.len() <= 1 && !authority.contains('@') {
            return None;
        }
        ("https".to_owned(), authority, path, true)
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port, url.contains("://"));
    if host.is_empty() {
        return None;
    }
    let path = project_path(path)?;
    let default_web_port = if protocol == "http" { 80 } else { 443 };
    let (port, ssh_port) = match (ssh, port) {
        (true, p) => (default_web_port, p.unwrap_or(22)),
        (false, p) => (p.unwrap_or(default_web_port), 22),
    };
    Some(ProjectLocation {
        protocol,
        host: host.to_ascii_lowercase(),
        port,
        ssh_port,
        path,
    })
}

/// Splits `host[:port]` (or `[v6]:port`). In scp-like URLs there is no port.
fn split_host_port(s: &str, may_have_port: bool) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
    }
    match s.rsplit_once(':') {
        Some((host, port)) if may_have_port => (host, port.parse().ok()),
        _ => (s, None),
    }
}

/// `/group/sub/proj.git/` -> `group/sub/proj`. At least two segments.
fn project_path(path: &str) -> Option<String> {
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() < 2 {
        return None;
    }
    Some(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(url: &str) -> ProjectLocation {
        parse_remote_url(url).unwrap_or_else(|| panic!("{url} should parse"))
    }

    #[test]
    fn scp_like_ssh_remote() {
        let l = loc("git@gitlab.com:group/sub/proj.git");
        assert_eq!(l.server_url(), "https://gitlab.com");
        assert_eq!((l.port, l.ssh_port), (443, 22));
        assert_eq!(l.path, "group/sub/proj");
        assert_eq!(l.name(), "proj");
        assert_eq!(l.namespace(), "group/sub");
        assert_eq!(l.root_namespace(), "group");
    }

    #[test]
    fn ssh_url_with_port() {
        let l = loc("ssh://git@gitlab.example.com:2222/team/app.git");
        assert_eq!(l.server_url(), "https://gitlab.example.com");
        assert_eq!(l.ssh_port, 2222);
        assert_eq!(l.path, "team/app");
    }

    #[test]
    fn https_url_drops_credentials_and_keeps_port() {
        let l = loc("https://user:glpat-secret@Gitlab.Example.com:8443/group/proj.git/");
        assert_eq!(l.host, "gitlab.example.com");
        assert_eq!(l.port, 8443);
        assert_eq!(l.server_url(), "https://gitlab.example.com:8443");
        assert_eq!(l.host_with_optional_port(), "gitlab.example.com:8443");
        assert_eq!(l.path, "group/proj");
        assert!(!format!("{l:?}").contains("secret"));
    }

    #[test]
    fn http_url_default_port_is_80() {
        let l = loc("http://localhost/root/demo");
        assert_eq!((l.protocol.as_str(), l.port), ("http", 80));
        assert_eq!(l.server_url(), "http://localhost");
    }

    #[test]
    fn ipv6_host() {
        let l = loc("https://[::1]:8080/a/b.git");
        assert_eq!((l.host.as_str(), l.port), ("::1", 8080));
    }

    #[test]
    fn local_paths_and_single_segments_are_not_projects() {
        for url in [
            "/srv/git/proj.git",
            "../proj",
            "file:///srv/proj.git",
            "C:/repo",
            "https://host/proj.git",
        ] {
            assert_eq!(parse_remote_url(url), None, "{url}");
        }
    }

    #[test]
    fn local_fallback() {
        let l = ProjectLocation::local("my-repo");
        assert_eq!(l.path, "local/my-repo");
        assert_eq!(l.server_url(), "http://localhost");
        assert_eq!(l.root_namespace(), "local");
    }
}
