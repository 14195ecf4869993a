//! One module per subcommand. Each `run` returns the process exit status.

pub mod cleanup;
pub mod exec;
pub mod lint;
pub mod list;
mod local_run;
pub mod pipeline;
pub mod plan;
pub mod register;
pub mod run;
pub mod service;
mod unit;
pub mod unregister;
pub mod verify;

mod common;
