//! Artifacts and caches: selecting a job's files, zipping them the way
//! gitlab-runner does, extracting archives safely, cache keys, and dotenv
//! reports.

mod error;
mod git;
mod glob;
mod pattern;
mod select_note;

pub use error::{ArchiveError, CacheKeyProblem};
pub use glob::{Entry, EntryKind, Selection, select_paths};
pub use select_note::SelectNote;
