//! The `get_sources` stage: putting the job's sources into
//! `CI_PROJECT_DIR` (runner-api.md §9).
//!
//! Two source modes share the settings (`GIT_STRATEGY`, `GIT_CHECKOUT`,
//! `GIT_SUBMODULE_STRATEGY`, ...) and the hooks:
//!
//! - [`SourceMode::Commit`] is gitlab-runner's get_sources sequence, run as
//!   real git commands: `init`, `remote`, `fetch`, `checkout`, `clean`,
//!   submodules, with gitlab-runner's messages in the log.
//! - [`SourceMode::WorkingTree`] is the local default: a checkout of the
//!   commit with the user's uncommitted work laid over it, in a few
//!   milliseconds (see [`worktree`]).

mod commit;
mod error;
mod git;
mod gitconfig;
mod hooks;
mod process;
mod settings;
mod stage;
mod submodules;
mod sync;
pub mod worktree;

#[cfg(test)]
mod testutil;

pub use error::SourcesError;
pub use settings::{GitStrategy, resolve_project_dir};
pub use stage::{SourceMode, SourcesRequest, get_sources};
