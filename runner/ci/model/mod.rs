//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

pub mod artifacts;
pub mod cache;
mod checks;
pub mod duration;
pub mod environment;
pub mod extras;
pub mod image;
pub mod job;
mod job_keys;
mod judge;
pub mod needs;
pub mod only_except;
pub mod parallel;
pub mod pipeline;
pub mod release;
pub mod rules;
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
