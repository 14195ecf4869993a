//! Artifacts and caches: selecting a job's files, zipping them the way
//! gitlab-runner does, extracting archives safely, cache keys, and dotenv
//! reports.

mod cache_key;
mod collect;
mod compression;
mod dotenv;
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
mod zip_catalog;
mod zip_meta;
mod zip_pool;
mod zip_read;
mod zip_write;

pub use cache_key::{
    DEFAULT_CACHE_KEY, cache_key_from_files, cache_key_from_files_commits, cache_path,
    hashed_cache_key, is_protected_fallback_key, protected_cache_key, sanitize_cache_key,
    validate_cache_key,
};
pub use compression::{CompressionLevel, InvalidCompressionLevel};
pub use dotenv::{DotenvLimits, parse_dotenv};
pub use error::{ArchiveError, CacheKeyProblem};
pub use glob::{Entry, EntryKind, Selection, select_paths};
pub use select_note::SelectNote;
pub use zip_read::{ExtractSummary, extract_zip};
pub use zip_write::{ZipOptions, ZipSummary, archive_is_current, write_zip};
