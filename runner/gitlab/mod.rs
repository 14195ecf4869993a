//! GitLab's runner API (runner-api.md §1–§7): the protocol layer of the
//! registered agent.
//!
//! [`ApiClient`] talks to one GitLab: registration and token calls, job
//! polling, job updates and trace patches, artifacts. [`TraceStreamer`]
//! sends a running job's log and final state and turns GitLab's answers
//! into cancellation; [`ApiArtifactTransport`] plugs the artifact calls
//! into the job engine.

mod artifact_transport;
mod artifacts;
mod client;
mod error;
mod failure;
mod final_update;
mod info;
mod jobs;
mod retry;
mod runners;
mod tokens;
mod trace;
mod trace_buffer;

pub use artifact_transport::ApiArtifactTransport;
pub use artifacts::ArtifactTiming;
pub use client::{ApiAnswer, ApiClient, ApiObserver, ClientTimeouts};
pub use error::ApiError;
pub use failure::{map_failure_reason, map_reason_name};
pub use final_update::{FinalOutcome, FinalState, FinishReport};
pub use info::{FeaturesInfo, Info, InfoConfig, go_arch, go_os};
pub use jobs::{
    JobCredentials, JobRequest, JobRequestOutcome, JobRequestResponse, JobState, JobUpdate,
    MAX_UPDATE_INTERVAL, PatchOutcome, PatchResponse, ReceivedJob, TraceOutput, UpdateOutcome,
    UpdateResponse,
};
pub use retry::RetryPolicy;
pub(crate) use retry::random_u64;
pub use runners::{RegisterParams, RegisteredRunner, ResetToken, VerifiedRunner};
pub use tokens::short_token;
pub use trace::{TraceConfig, TraceStreamer};
pub use trace_buffer::TraceBuffer;
