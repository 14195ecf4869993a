//! Local runs: `runner exec` and `runner pipeline` on this machine, with
//! the local repository standing in for GitLab.

pub mod output;
pub mod payload;
pub mod run;
pub mod state;
pub mod var_file;
