//! One module per subcommand. Each `run` returns the process exit status.

pub mod lint;
pub mod plan;

mod common;
