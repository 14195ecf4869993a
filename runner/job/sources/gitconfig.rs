//! The git configuration gitlab-runner prepares before fetching (§9.2):
//! a template for `git init`, and an external file holding the
//! credentials, so they never land in the project's `.git/config`.
//!
//! The files are written directly rather than with one `git config`
//! process per key: the content is the same, and on a small repository
//! those processes would cost more than the fetch.

use std::path::{Path, PathBuf};

use super::SourcesError;

/// The external config's name, inside the job's tmp dir.
pub(crate) const EXT_CONFIG: &str = ".gitlab-runner.ext.conf";
/// The `--replace-all` value pattern selecting our `include.path` entry.
pub(crate) const EXT_CONFIG_PATTERN: &str = r"\.gitlab-runner\.ext\.conf$";

/// The remote URL as stored in `.git/config`, and the rewrite that adds
/// the credentials back when git connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteUrl {
    /// Without `user:password@`.
    pub plain: String,
    /// The original URL, when it carried credentials.
    pub with_credentials: Option<String>,
}

impl RemoteUrl {
    pub fn parse(url: &str) -> RemoteUrl {
        let Some(scheme_end) = url.find("://") else {
            // A path or `host:path` (scp-like): nothing to strip.
            return RemoteUrl {
                plain: url.to_owned(),
                with_credentials: None,
            };
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => RemoteUrl {
                plain: format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]),
                with_credentials: Some(url.to_owned()),
            },
            None => RemoteUrl {
                plain: url.to_owned(),
                with_credentials: None,
            },
        }
    }
}

/// Whether `url` names a repository on this machine (a path or `file://`),
/// whose submodules then need `protocol.file.allow=always`: git refuses
/// local submodule URLs by default since 2.38.1, to protect clones of
/// untrusted remotes. Only a local main remote gets the exception.
pub(crate) fn is_local(url: &str) -> bool {
    if url.starts_with("file://") {
        return true;
    }
    if url.contains("://") {
        return false;
    }
    // git reads `host:path` as ssh when the colon comes before any slash.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Paths of the prepared configuration.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `<tmp>/git-template`, for `git init --template`.
    pub template_dir: PathBuf,
    /// `<tmp>/.gitlab-runner.ext.conf`.
    pub ext_config: PathBuf,
}

/// Writes the template config and the external config into `tmp_dir`.
pub(crate) fn prepare(tmp_dir: &Path, remote: &RemoteUrl) -> Result<Prepared, SourcesError> {
    let template_dir = tmp_dir.join("git-template");
    std::fs::create_dir_all(&template_dir)
        .map_err(|e| SourcesError::io("cannot create", &template_dir, e))?;
    let ext_config = tmp_dir.join(EXT_CONFIG);

    let mut ext = String::new();
    if let Some(with) = &remote.with_credentials {
        ext.push_str(&format!(
            "[url {}]\n\tinsteadOf = {}\n",
            quote_subsection(with),
            quote_value(&remote.plain)
        ));
    }
    write_private(&ext_config, &ext)?;

    let template = format!(
        "[init]\n\tdefaultBranch = none\n\
         [fetch]\n\trecurseSubmodules = false\n\
         [credential]\n\tinteractive = never\n\
         [gc]\n\tautoDetach = false\n\
         [include]\n\tpath = {}\n",
        quote_value(&ext_config.to_string_lossy())
    );
    let template_config = template_dir.join("config");
    std::fs::write(&template_config, template)
        .map_err(|e| SourcesError::io("cannot write", &template_config, e))?;
    Ok(Prepared {
        template_dir,
        ext_config,
    })
}

/// The credentials file is readable by the runner's user only.
fn write_private(path: &Path, content: &str) -> Result<(), SourcesError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Removed first, as gitlab-runner does: a stale file from another
    // job must not leave its rewrites behind.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SourcesError::io("cannot remove", path, e)),
    }
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(content.as_bytes())
    };
    write().map_err(|e| SourcesError::io("cannot write", path, e))
}

/// A config value in double quotes, with git's escapes.
fn quote_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `[section "subsection"]` name: only `\` and `"` are escaped there.
fn quote_subsection(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            // A newline cannot be written in a subsection name; such a URL
            // could not work anyway.
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_the_url() {
        let r = RemoteUrl::parse("https://gitlab-ci-token:s3cr3t@gitlab.example.com/g/p.git");
        assert_eq!(r.plain, "https://gitlab.example.com/g/p.git");
        assert_eq!(
            r.with_credentials.as_deref(),
            Some("https://gitlab-ci-token:s3cr3t@gitlab.example.com/g/p.git")
        );
        let r = RemoteUrl::parse("https://gitlab.example.com/g/p@2.git");
        assert_eq!(r.plain, "https://gitlab.example.com/g/p@2.git");
        assert!(r.with_credentials.is_none());
        assert!(RemoteUrl::parse("/home/me/repo").with_credentials.is_none());
    }

    #[test]
    fn local_remotes_are_paths_and_file_urls() {
        assert!(is_local("/home/me/repo"));
        assert!(is_local("../repo"));
        assert!(is_local("file:///home/me/repo"));
        assert!(is_local("./dir:with/colon"));
        assert!(!is_local("git@gitlab.com:g/p.git"));
        assert!(!is_local("https://gitlab.com/g/p.git"));
    }

    #[tokio::test]
    async fn git_reads_the_rewrite_through_the_template_include() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("p \"x\".tmp");
        let remote = RemoteUrl::parse("https://u:pw@example.com/g/p.git");
        let prepared = prepare(&tmp, &remote).unwrap();
        let out = std::process::Command::new("git")
            .args(["config", "-f"])
            .arg(prepared.template_dir.join("config"))
            .args(["--includes", "--get-regexp", "^(url|init|include)\\."])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("init.defaultbranch none"), "{text}");
        assert!(
            text.contains(
                "url.https://u:pw@example.com/g/p.git.insteadof https://example.com/g/p.git"
            ),
            "{text}"
        );
        assert!(text.contains(&format!("include.path {}", prepared.ext_config.display())));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&prepared.ext_config)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
