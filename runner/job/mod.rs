//! Job execution: what the runner does with one job once it has it.

pub mod log;
pub mod payload;
pub mod script;
pub mod sources;
pub mod vars;

pub use script::{
    Dialect, ScriptSpec, ScriptVar, generate, generate_after_script, quote_bash, quote_posix,
};
