//! One module per subcommand. Each `run` returns the process exit status.

pub mod cleanup;
pub mod exec;
pub mod lint;
mod local_run;
pub mod pipeline;
pub mod plan;

mod common;
