//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

// The keyword decoders below are called by the job model; until a caller
// exists in this build they would all be reported as unused.
#[allow(dead_code)]
pub mod artifacts;
#[allow(dead_code)]
pub mod cache;
#[allow(dead_code)]
pub(crate) mod check;
mod checks;
#[cfg(test)]
mod corpus;
pub mod duration;
#[allow(dead_code)]
pub mod environment;
#[allow(dead_code)]
pub mod extras;
#[allow(dead_code)]
pub mod image;
pub mod job;
mod job_keys;
mod judge;
pub mod needs;
mod numerize;
pub mod only_except;
pub mod parallel;
pub mod pipeline;
#[allow(dead_code)]
pub mod release;
pub mod rules;
#[allow(dead_code)]
mod secrets;
pub mod trigger;
pub mod variables;
pub mod when;

pub use job::{DastConfiguration, Inherit, InheritKeys, Job, JobKind};
pub use needs::{Need, NeedTarget};
pub use only_except::OnlyExcept;
pub use parallel::{MatrixEntry, Parallel};
pub use pipeline::{Pipeline, decode_pipeline};
pub use rules::{AutoCancel, Changes, Exists, Rule, Workflow};
pub use trigger::{Forward, Trigger, TriggerInclude};
pub use variables::VariableDef;
pub use when::{AllowFailure, Retry, When};
