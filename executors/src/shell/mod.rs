//! The shell executor: runs each step with the host's bash (or sh), fed
//! the script on stdin as GitLab's shell executor does (Linux only).

mod executor;
mod locate;
mod output;
mod process;
pub(crate) mod procfs;
mod step;
mod sweep;
mod unix;

#[cfg(test)]
mod tests;

pub use executor::{ShellExecutor, ShellOptions, ShellPrepared};
