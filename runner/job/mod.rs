//! Job execution: what the runner does with one job once it has it.

pub mod artifact_store;
pub mod artifacts_stage;
pub mod cache_stage;
pub mod engine;
pub mod log;
pub mod outcome;
pub mod payload;
pub mod script;
pub mod sources;
pub mod vars;

pub use artifact_store::LocalArtifactStore;
pub use artifacts_stage::{
    ArtifactFormat, ArtifactStageError, ArtifactTransport, ArtifactUpload, TransportError,
    download_artifacts, upload_artifacts,
};
pub use cache_stage::{CacheContext, restore_caches, save_caches};
pub use script::{
    Dialect, ScriptSpec, ScriptVar, generate, generate_after_script, quote_bash, quote_posix,
};
