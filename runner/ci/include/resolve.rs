//! Fetching one included file according to where the including file came
//! from (rules 46, 49): local files of the project being run, files of
//! another project at a ref, or public files with no project at all.

use std::collections::HashMap;
use std::time::Duration;

use super::context::IncludeContext;
use super::entry::{IncludeFile, Target};
use super::local::{project_files, read_local};
use super::project::{
    ComponentInfo, Repo, RepoFile, fetch_component, fetch_project, fetch_repo_local,
    list_repo_files, local_component,
};
use super::remote::{fetch_remote, fetch_template};
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;

/// Where a file came from; it decides what its nested includes see.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    /// The project being run: local files on disk, all variables.
    Local,
    /// Another project, at a ref: `local` means that project's files.
    Repo(Repo),
    /// A remote URL or a template: no project, no variables (rule 49).
    Public,
}

/// The text of a file to load and how to name it in messages.
pub(crate) struct Loaded {
    pub text: String,
    /// The source name (path, URL, `project:ref:file`, ...).
    pub name: String,
    pub origin: Origin,
    pub component: Option<ComponentInfo>,
}

/// The files of the project `origin` refers to, listed once per run.
pub(crate) fn file_list(
    ctx: &IncludeContext,
    lists: &mut HashMap<String, Vec<String>>,
    origin: &Origin,
    span: Span,
    time_left: Duration,
) -> Result<Option<Vec<String>>, Diagnostic> {
    let key = match origin {
        Origin::Public => return Ok(None),
        Origin::Local => String::new(),
        Origin::Repo(repo) => format!("{}\0{}", repo.url, repo.git_ref),
    };
    if let Some(files) = lists.get(&key) {
        return Ok(Some(files.clone()));
    }
    let files = match origin {
        Origin::Repo(repo) => list_repo_files(ctx, repo, span, time_left)?,
        _ => project_files(&ctx.project_dir),
    };
    lists.insert(key, files.clone());
    Ok(Some(files))
}

/// Fetches one file. Returns its location for messages and its text.
pub(crate) fn fetch(
    ctx: &IncludeContext,
    file: &IncludeFile,
    origin: &Origin,
    time_left: Duration,
) -> (String, Result<Loaded, Diagnostic>) {
    let span = file.span;
    let repo_loaded = |r: RepoFile, name: String, component| Loaded {
        text: r.text,
        name,
        origin: Origin::Repo(r.repo),
        component,
    };
    match &file.target {
        Target::Local(path) | Target::LocalGlob(path) => {
            let loaded = match origin {
                Origin::Local => read_local(&ctx.project_dir, path, span).map(|text| Loaded {
                    text,
                    name: path.clone(),
                    origin: Origin::Local,
                    component: None,
                }),
                Origin::Repo(repo) => fetch_repo_local(ctx, repo, path, span, time_left).map(|r| {
                    let name = format!("{}:{}:{path}", repo.project, repo.git_ref);
                    repo_loaded(r, name, None)
                }),
                Origin::Public => Err(Diagnostic::config(
                    span,
                    format!("Local file `{path}` does not have project!"),
                )),
            };
            (path.clone(), loaded)
        }
        Target::Remote { url, integrity } => {
            let loaded =
                fetch_remote(ctx, url, integrity.as_deref(), span, time_left).map(|text| Loaded {
                    text,
                    name: url.clone(),
                    origin: Origin::Public,
                    component: None,
                });
            (url.clone(), loaded)
        }
        Target::Template(name) => {
            let loaded = fetch_template(ctx, name, span, time_left).map(|text| Loaded {
                text,
                name: format!("template:{name}"),
                origin: Origin::Public,
                component: None,
            });
            (name.clone(), loaded)
        }
        Target::Project {
            project,
            git_ref,
            file: path,
        } => {
            let loaded = fetch_project(ctx, project, git_ref, path, span, time_left)
                .map(|r| repo_loaded(r, format!("{project}:{git_ref}:{path}"), None));
            (path.clone(), loaded)
        }
        Target::Component(address) => {
            if let Some((path, info)) = local_component(ctx, address) {
                let loaded = read_local(&ctx.project_dir, &path, span).map(|text| Loaded {
                    text,
                    name: path,
                    origin: Origin::Local,
                    component: Some(info),
                });
                return (address.clone(), loaded);
            }
            let loaded = fetch_component(ctx, address, span, time_left)
                .map(|(r, info)| repo_loaded(r, address.clone(), Some(info)));
            (address.clone(), loaded)
        }
    }
}
