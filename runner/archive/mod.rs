//! Artifacts and caches: selecting a job's files, zipping them the way
//! gitlab-runner does, extracting archives safely, cache keys, and dotenv
//! reports.

mod compression;
mod error;
mod git;
mod glob;
mod pattern;
#[cfg(test)]
mod roundtrip_tests;
mod select_note;
mod temp_file;
#[cfg(test)]
mod test_support;
mod zip_meta;
mod zip_read;
mod zip_write;

pub use compression::{CompressionLevel, InvalidCompressionLevel};
pub use error::{ArchiveError, CacheKeyProblem};
pub use glob::{Entry, EntryKind, Selection, select_paths};
pub use select_note::SelectNote;
pub use zip_read::{ExtractSummary, extract_zip};
pub use zip_write::{ZipOptions, ZipSummary, archive_is_current, write_zip};
