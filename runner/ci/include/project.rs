//! Files from git repositories: `include:project` (rule 48),
//! `include:component` (rule 50), and `include:local` inside a file that
//! came from another project (rule 46, last point).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::context::IncludeContext;
use super::entry::has_yaml_extension;
use super::fetch::{FetchError, GitBlob, cache_path, cache_read, cache_write};
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;

/// A repository at a ref: where nested includes of a fetched file resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Repo {
    /// `group/project` as written; GitLab compares paths without case
    /// and prints them in lower case.
    pub project: String,
    pub url: String,
    pub git_ref: String,
}

/// A file read from a repository.
#[derive(Clone, Debug)]
pub(crate) struct RepoFile {
    pub text: String,
    pub repo: Repo,
}

/// What a component's file may refer to as `$[[ component.* ]]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ComponentInfo {
    pub name: String,
    pub sha: String,
    pub version: String,
    pub reference: String,
}

/// Fetches `file` of `project` at `git_ref` from the instance.
pub(crate) fn fetch_project(
    ctx: &IncludeContext,
    project: &str,
    git_ref: &str,
    file: &str,
    span: Span,
    time_left: Duration,
) -> Result<RepoFile, Diagnostic> {
    if !has_yaml_extension(file) {
        return Err(Diagnostic::config(
            span,
            format!("Included file `{file}` does not have YAML extension!"),
        ));
    }
    let repo = Repo {
        project: project.to_string(),
        url: format!("{}/{project}.git", ctx.server()),
        git_ref: git_ref.to_string(),
    };
    let project = project.to_lowercase();
    let unreachable = |why: String| {
        Diagnostic::include_unreachable(
            span,
            format!(
                "Project `{project}` reference `{git_ref}` file `{file}` could not be fetched from {}: {why}",
                repo.url
            ),
        )
    };
    match read_cached(ctx, &repo, file, time_left) {
        Ok(Some(blob)) if blob.text.trim().is_empty() => Err(Diagnostic::config(
            span,
            format!("Project `{project}` file `{file}` is empty!"),
        )),
        Ok(Some(blob)) => Ok(RepoFile {
            text: blob.text,
            repo: repo.clone(),
        }),
        Ok(None) => Err(Diagnostic::include_missing(
            span,
            format!("Project `{project}` file `{file}` does not exist!"),
        )),
        Err(Miss::Fetch(FetchError::RefNotFound)) => Err(Diagnostic::include_missing(
            span,
            format!("Project `{project}` reference `{git_ref}` does not exist!"),
        )),
        Err(Miss::Offline) => Err(unreachable(
            "it is not in the cache and the run is offline".into(),
        )),
        Err(Miss::Fetch(e)) => Err(unreachable(e.to_string())),
    }
}

/// Reads an `include:local` path inside a file that came from `repo`.
pub(crate) fn fetch_repo_local(
    ctx: &IncludeContext,
    repo: &Repo,
    path: &str,
    span: Span,
    time_left: Duration,
) -> Result<RepoFile, Diagnostic> {
    match read_cached(ctx, repo, path, time_left) {
        Ok(Some(blob)) if blob.text.trim().is_empty() => Err(Diagnostic::config(
            span,
            format!("Local file `{path}` is empty!"),
        )),
        Ok(Some(blob)) => Ok(RepoFile {
            text: blob.text,
            repo: repo.clone(),
        }),
        Ok(None) | Err(Miss::Fetch(FetchError::RefNotFound)) => Err(Diagnostic::include_missing(
            span,
            format!("Local file `{path}` does not exist!"),
        )),
        Err(miss) => Err(Diagnostic::include_unreachable(
            span,
            format!(
                "Local file `{path}` of project `{}` reference `{}` could not be fetched: {}",
                repo.project,
                repo.git_ref,
                miss.reason()
            ),
        )),
    }
}

/// Lists the files of `repo`, for `rules:exists`.
pub(crate) fn list_repo_files(
    ctx: &IncludeContext,
    repo: &Repo,
    span: Span,
    time_left: Duration,
) -> Result<Vec<String>, Diagnostic> {
    let path = cache_path(
        &ctx.cache_dir,
        "tree",
        &format!("{}\0{}", repo.url, repo.git_ref),
    );
    let cached = || cache_read(&path).and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok());
    let result = if ctx.offline {
        cached().ok_or(Miss::Offline)
    } else {
        ctx.fetcher
            .git_files(&repo.url, &repo.git_ref, time_left)
            .map_err(Miss::Fetch)
    };
    match result {
        Ok(files) => {
            if !ctx.offline
                && let Ok(json) = serde_json::to_string(&files)
            {
                cache_write(&path, &json);
            }
            Ok(files)
        }
        Err(miss) => Err(Diagnostic::include_unreachable(
            span,
            format!(
                "Files of project `{}` reference `{}` could not be listed for `rules:exists`: {}",
                repo.project,
                repo.git_ref,
                miss.reason()
            ),
        )),
    }
}

/// Resolves `<fqdn>/<project path>/<name>@<version>` to the component's
/// template file.
pub(crate) fn fetch_component(
    ctx: &IncludeContext,
    address: &str,
    span: Span,
    time_left: Duration,
) -> Result<(RepoFile, ComponentInfo), Diagnostic> {
    let fail = |msg: &str| Diagnostic::config(span, format!("Component '{address}' - {msg}"));
    let Some((full_path, version)) = address.split_once('@') else {
        return Err(fail("the component path is not supported"));
    };
    let Some((fqdn, path)) = full_path.split_once('/') else {
        return Err(fail("the component path is not supported"));
    };
    let Some((project, name)) = path
        .rsplit_once('/')
        .filter(|(p, n)| !p.is_empty() && !n.is_empty())
    else {
        return Err(fail("content not found"));
    };
    let server = if fqdn == ctx.server_fqdn() {
        ctx.server().to_string()
    } else {
        format!("https://{fqdn}")
    };
    let url = format!("{server}/{project}.git");
    let cache = cache_path(
        &ctx.cache_dir,
        "component",
        &format!("{url}\0{name}\0{version}"),
    );
    let unreachable = |why: String| {
        Diagnostic::include_unreachable(
            span,
            format!("Component '{address}' - could not be fetched from {url}: {why}"),
        )
    };
    let record = if ctx.offline {
        let Some(record) = cache_read(&cache).and_then(|t| serde_json::from_str::<Cached>(&t).ok())
        else {
            return Err(unreachable(
                "it is not in the cache and the run is offline".into(),
            ));
        };
        record
    } else {
        let git_ref = resolve_version(ctx, &url, version, time_left).map_err(|e| match e {
            FetchError::RefNotFound => fail("content not found"),
            other => unreachable(other.to_string()),
        })?;
        let project_name = project.rsplit('/').next().unwrap_or("");
        let mut candidates = vec![
            format!("templates/{name}.yml"),
            format!("templates/{name}/template.yml"),
        ];
        if name == project_name {
            candidates.push("template.yml".to_string());
        }
        let mut found = None;
        for path in candidates {
            match ctx.fetcher.git_file(&url, &git_ref, &path, time_left) {
                Ok(Some(blob)) => {
                    found = Some(Cached {
                        text: blob.text,
                        commit: blob.commit,
                        path,
                        git_ref: git_ref.clone(),
                    });
                    break;
                }
                Ok(None) => {}
                Err(FetchError::RefNotFound) => return Err(fail("content not found")),
                Err(e) => return Err(unreachable(e.to_string())),
            }
        }
        let Some(record) = found else {
            return Err(fail("content not found"));
        };
        if let Ok(json) = serde_json::to_string(&record) {
            cache_write(&cache, &json);
        }
        record
    };
    if record.text.trim().is_empty() {
        return Err(fail("content not found"));
    }
    let info = ComponentInfo {
        name: name.to_string(),
        sha: record.commit.clone(),
        version: record.git_ref.clone(),
        reference: version.to_string(),
    };
    let repo = Repo {
        project: project.to_string(),
        url,
        git_ref: record.git_ref,
    };
    Ok((
        RepoFile {
            text: record.text,
            repo,
        },
        info,
    ))
}

/// A component of the project being run, at the commit being run
/// (`$CI_SERVER_FQDN/$CI_PROJECT_PATH/name@$CI_COMMIT_SHA`, how a project
/// tests its own components): its template path in the working tree.
pub(crate) fn local_component(
    ctx: &IncludeContext,
    address: &str,
) -> Option<(String, ComponentInfo)> {
    let (full_path, version) = address.split_once('@')?;
    let (fqdn, path) = full_path.split_once('/')?;
    let (project, name) = path.rsplit_once('/')?;
    let own_project = ctx.variables.get("CI_PROJECT_PATH")?;
    let own_commit = ctx.variables.get("CI_COMMIT_SHA")?;
    if fqdn != ctx.server_fqdn()
        || !project.eq_ignore_ascii_case(own_project)
        || version != own_commit
    {
        return None;
    }
    let path = [
        format!("templates/{name}.yml"),
        format!("templates/{name}/template.yml"),
    ]
    .into_iter()
    .find(|p| ctx.project_dir.join(p).is_file())?;
    let info = ComponentInfo {
        name: name.to_string(),
        sha: version.to_string(),
        version: version.to_string(),
        reference: version.to_string(),
    };
    Some((path, info))
}

/// `~latest` and partial versions (`1`, `1.2`) pick the highest matching
/// `X.Y.Z` tag; anything else is used as a git ref.
fn resolve_version(
    ctx: &IncludeContext,
    url: &str,
    version: &str,
    time_left: Duration,
) -> Result<String, FetchError> {
    let partial: Option<Vec<u64>> = if version == "~latest" {
        Some(Vec::new())
    } else {
        let parts: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| (1..=2).contains(&p.len()))
    };
    let Some(prefix) = partial else {
        return Ok(version.to_string());
    };
    let tags = ctx.fetcher.git_tags(url, time_left)?;
    tags.iter()
        .filter_map(|t| semver(t).map(|v| (v, t)))
        .filter(|(v, _)| v.starts_with(&prefix))
        .max()
        .map(|(_, t)| t.clone())
        .ok_or(FetchError::RefNotFound)
}

fn semver(tag: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = tag.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| p.len() == 3)
}

#[derive(Serialize, Deserialize)]
struct Cached {
    text: String,
    commit: String,
    path: String,
    git_ref: String,
}

enum Miss {
    Offline,
    Fetch(FetchError),
}

impl Miss {
    fn reason(&self) -> String {
        match self {
            Miss::Offline => "it is not in the cache and the run is offline".into(),
            Miss::Fetch(e) => e.to_string(),
        }
    }
}

/// Offline: the cache only. Online: the network, refreshing the cache.
fn read_cached(
    ctx: &IncludeContext,
    repo: &Repo,
    path: &str,
    time_left: Duration,
) -> Result<Option<GitBlob>, Miss> {
    let cache = cache_path(
        &ctx.cache_dir,
        "project",
        &project_cache_key(&repo.url, &repo.git_ref, path),
    );
    if ctx.offline {
        let text = cache_read(&cache).ok_or(Miss::Offline)?;
        let record: Cached = serde_json::from_str(&text).map_err(|_| Miss::Offline)?;
        return Ok(Some(GitBlob {
            text: record.text,
            commit: record.commit,
        }));
    }
    if time_left.is_zero() {
        return Err(Miss::Fetch(FetchError::Timeout));
    }
    let blob = ctx
        .fetcher
        .git_file(&repo.url, &repo.git_ref, path, time_left)
        .map_err(Miss::Fetch)?;
    if let Some(blob) = &blob {
        let record = Cached {
            text: blob.text.clone(),
            commit: blob.commit.clone(),
            path: path.to_string(),
            git_ref: repo.git_ref.clone(),
        };
        if let Ok(json) = serde_json::to_string(&record) {
            cache_write(&cache, &json);
        }
    }
    Ok(blob)
}

/// The cache key of one project file.
fn project_cache_key(url: &str, git_ref: &str, path: &str) -> String {
    format!("{url}\0{git_ref}\0{path}")
}

/// Stores a project file in the cache as if it had been fetched, so tests
/// can run `project` includes offline.
#[cfg(test)]
pub(crate) fn seed_project_cache(
    ctx: &IncludeContext,
    project: &str,
    git_ref: &str,
    path: &str,
    text: &str,
) {
    let url = format!("{}/{project}.git", ctx.server());
    let record = Cached {
        text: text.into(),
        commit: "0".repeat(40),
        path: path.into(),
        git_ref: git_ref.into(),
    };
    let cache = cache_path(
        &ctx.cache_dir,
        "project",
        &project_cache_key(&url, git_ref, path),
    );
    cache_write(&cache, &serde_json::to_string(&record).unwrap_or_default());
}

/// Stores a component in the cache as if it had been fetched.
#[cfg(test)]
pub(crate) fn seed_component_cache(ctx: &IncludeContext, address: &str, text: &str) {
    let Some((full_path, version)) = address.split_once('@') else {
        return;
    };
    let Some((fqdn, path)) = full_path.split_once('/') else {
        return;
    };
    let Some((project, name)) = path.rsplit_once('/') else {
        return;
    };
    let server = if fqdn == ctx.server_fqdn() {
        ctx.server().to_string()
    } else {
        format!("https://{fqdn}")
    };
    let url = format!("{server}/{project}.git");
    let record = Cached {
        text: text.into(),
        commit: "0".repeat(40),
        path: format!("templates/{name}.yml"),
        git_ref: version.into(),
    };
    let cache = cache_path(
        &ctx.cache_dir,
        "component",
        &format!("{url}\0{name}\0{version}"),
    );
    cache_write(&cache, &serde_json::to_string(&record).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::ci::diag::DiagnosticKind;
    use crate::ci::include::load_config;
    use crate::ci::source::{SourceId, Sources};
    use crate::ci::yaml::Node;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    /// Commits each step's files (tagging it when a tag is given) in a work
    /// tree, then publishes it as `<root>/server/group/proj.git`. Returns the
    /// `file://` server URL.
    /// Files to commit, and the tag to put on the commit.
    type Step<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

    fn publish(root: &Path, steps: &[Step<'_>]) -> String {
        let work = root.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for (files, tag) in steps {
            for (path, text) in *files {
                let full = work.join(path);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(full, text).unwrap();
            }
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-q", "-m", "step"]);
            if let Some(tag) = tag {
                git(&work, &["tag", tag]);
            }
        }
        let server = root.join("server");
        std::fs::create_dir_all(server.join("group")).unwrap();
        let bare = server.join("group/proj.git");
        git(
            root,
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        format!("file://{}", server.display())
    }

    fn context(root: &Path, server: &str) -> IncludeContext {
        let mut ctx = IncludeContext::new(root.join("project"), server, root.join("cache"));
        ctx.variables
            .insert("CI_SERVER_FQDN".into(), "example.test".into());
        std::fs::create_dir_all(&ctx.project_dir).unwrap();
        ctx
    }

    fn load(ctx: &IncludeContext, text: &str) -> Result<Node, Vec<(DiagnosticKind, String)>> {
        let mut sources = Sources::new();
        let root = sources.add(".gitlab-ci.yml", text.to_string());
        load_config(root, &mut sources, ctx)
            .map_err(|e| e.iter().map(|d| (d.kind, d.message.clone())).collect())
    }

    fn span() -> Span {
        Span::new(SourceId(1), 1, 1)
    }

    const T: Duration = Duration::from_secs(20);

    #[test]
    fn rule_48_project_files_and_their_nested_local_includes_come_from_that_project() {
        let root = tempfile::tempdir().unwrap();
        let server = publish(
            root.path(),
            &[(
                &[
                    ("ci/a.yml", "include: /ci/b.yml\na: {from: a}\n"),
                    ("ci/b.yml", "b: {from: b}\n"),
                ],
                None,
            )],
        );
        let mut ctx = context(root.path(), &server);
        let text =
            "include:\n  - project: group/proj\n    ref: main\n    file: [ci/a.yml]\nmain: 1\n";
        let out = load(&ctx, text).unwrap();
        assert_eq!(
            out.as_map().unwrap().keys().collect::<Vec<_>>(),
            ["b", "a", "main"]
        );
        // What was fetched online is in the cache for offline runs.
        ctx.offline = true;
        assert!(load(&ctx, text).is_ok());
        let default_ref = "include:\n  - project: group/proj\n    file: ci/b.yml\n";
        assert_eq!(
            load(&ctx, default_ref).unwrap_err()[0].0,
            DiagnosticKind::IncludeUnreachable
        );
    }

    #[test]
    fn missing_project_files_and_refs_are_missing_includes_and_missing_projects_unreachable() {
        let root = tempfile::tempdir().unwrap();
        let server = publish(root.path(), &[(&[("a.yml", "a: 1\n")], None)]);
        let ctx = context(root.path(), &server);
        let err = fetch_project(&ctx, "group/proj", "main", "nope.yml", span(), T).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeMissing);
        assert_eq!(
            err.message,
            "Project `group/proj` file `nope.yml` does not exist!"
        );
        let err = fetch_project(&ctx, "group/proj", "nope", "a.yml", span(), T).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeMissing);
        assert_eq!(
            err.message,
            "Project `group/proj` reference `nope` does not exist!"
        );
        let err = fetch_project(&ctx, "group/other", "main", "a.yml", span(), T).unwrap_err();
        assert_eq!(err.kind, DiagnosticKind::IncludeUnreachable);
        assert!(
            err.message.starts_with(
                "Project `group/other` reference `main` file `a.yml` could not be fetched from"
            ),
            "{}",
            err.message
        );
        assert!(fetch_project(&ctx, "group/proj", "HEAD", "a.yml", span(), T).is_ok());
    }

    #[test]
    fn rule_50_components_resolve_versions_and_template_paths() {
        let root = tempfile::tempdir().unwrap();
        let comp = "spec:\n  component: [version, name]\n  inputs:\n    stage: {default: test}\n---\n\
                    '$[[ component.name ]]-job':\n  stage: $[[ inputs.stage ]]\n  script: echo $[[ component.version ]]\n";
        let server = publish(
            root.path(),
            &[
                (&[("templates/lint.yml", comp)], Some("1.0.0")),
                (
                    &[("templates/build/template.yml", "build: {script: b}\n")],
                    Some("1.2.0"),
                ),
                (&[("README.md", "x")], Some("2.0.0-rc1")),
            ],
        );
        let ctx = context(root.path(), &server);
        let out = load(
            &ctx,
            "include:\n  - component: $CI_SERVER_FQDN/group/proj/lint@~latest\n    inputs: {stage: check}\n",
        )
        .unwrap();
        let job = out
            .as_map()
            .unwrap()
            .get("lint-job")
            .unwrap()
            .as_map()
            .unwrap();
        assert_eq!(job.get("stage").unwrap().as_str(), Some("check"));
        assert_eq!(job.get("script").unwrap().as_str(), Some("echo 1.2.0"));
        let out = load(
            &ctx,
            "include:\n  - component: example.test/group/proj/build@1\n",
        )
        .unwrap();
        assert!(out.as_map().unwrap().contains_key("build"));
        let err = load(
            &ctx,
            "include:\n  - component: example.test/group/proj/build@1.0.0\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            [(
                DiagnosticKind::Config,
                "Component 'example.test/group/proj/build@1.0.0' - content not found".to_string()
            )]
        );
        let err = load(
            &ctx,
            "include:\n  - component: example.test/group/proj/lint\n",
        )
        .unwrap_err();
        assert_eq!(
            err[0].1,
            "Component 'example.test/group/proj/lint' - the component path is not supported"
        );
    }
}
