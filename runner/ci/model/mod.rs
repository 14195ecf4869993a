//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

pub mod artifacts;
pub mod cache;
pub(crate) mod check;
mod checks;
#[cfg(test)]
mod corpus;
#[cfg(test)]
mod corpus_tests;
pub mod duration;
pub mod environment;
pub mod extras;
pub mod image;
pub mod inherit;
pub mod job;
mod job_keys;
mod judge;
pub mod needs;
mod numerize;
pub mod only_except;
pub mod parallel;
pub mod pipeline;
pub mod release;
pub mod rules;
mod secrets;
pub mod trigger;
pub mod variables;
pub mod when;
pub mod workflow;

pub use inherit::{Inherit, InheritKeys};
pub use job::{DastConfiguration, Job, JobKind};
pub use needs::{Need, NeedTarget};
pub use only_except::OnlyExcept;
pub use parallel::{MatrixEntry, Parallel};
pub use pipeline::{Pipeline, decode_fragment, decode_pipeline};
pub use rules::{AutoCancel, Changes, Exists, Rule};
pub use trigger::{Forward, Trigger, TriggerInclude};
pub use variables::VariableDef;
pub use when::{AllowFailure, Retry, When};
pub use workflow::Workflow;
