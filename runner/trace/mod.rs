//! Transformations of the job log byte stream: secret masking, collapsible
//! section markers, ANSI conventions and the output size limit.

pub mod ansi;
mod limit;
mod masker;
mod section;
mod token_masker;

pub use limit::{DEFAULT_OUTPUT_LIMIT_KIB, OutputLimit, notice as limit_notice};
pub use masker::{MASKED, Masker};
pub use section::{SectionOptions, sanitize_name, section_end, section_start, stage_header};
pub use token_masker::{DEFAULT_TOKEN_PREFIXES, TokenMasker};
