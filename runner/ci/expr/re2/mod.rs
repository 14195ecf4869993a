//! RE2 syntax, which GitLab compiles user patterns with, rewritten into the
//! `regex` crate's syntax.
//!
//! The two dialects are close relatives but not equal. This module parses a
//! pattern the way RE2's parser does, so what RE2 rejects is rejected here,
//! and writes out a pattern the crate reads with the same meaning. The
//! differences it bridges:
//! - `\d`, `\s`, `\w` and `\b` are ASCII-only in RE2 and Unicode-aware in the
//!   crate; RE2's `\s` also leaves out the vertical tab.
//! - A `{` that does not start a well-formed count (`{,3}`, `{x}`, `{01}`) is
//!   a literal in RE2 and an error in the crate. RE2 rejects counts over 1000,
//!   nested counts whose product exceeds 1000, and stacked operators (`a**`).
//! - Inside brackets RE2 reads `[`, `&&`, `--` and `~~` literally; the crate
//!   reads them as nested classes and set operations.
//! - Octal escapes (`\012`), `\Q...\E` and `\C` exist only in RE2; `\<` and
//!   `\>` are literals in RE2 and word boundaries in the crate.
//! - Group names may start with a digit in RE2, and flag groups may repeat a
//!   flag (`(?ii)`, which GitLab produces for `/x/ii`) or be empty (`(?)`).
//!
//! Every literal character that is not an ASCII letter or digit is written as
//! `\x{..}`, which the crate reads the same way in every context.
//!
//! Known gaps: `\C` (any byte) becomes any character; Unicode class names the
//! crate knows and RE2 does not (such as `\p{Letter}`) are accepted; a flag
//! group directly before a repetition (`a(?i)*`) is rejected.

mod class;
mod translator;

pub(crate) use translator::translate;
