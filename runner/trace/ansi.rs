//! The ANSI escape sequences GitLab Runner writes into job logs.
//!
//! GitLab's log viewer renders these; using the same bytes keeps logs
//! looking the same as those of the reference runner.

/// Notices and echoed `$ command` lines.
pub const BOLD_GREEN: &str = "\x1b[32;1m";
/// `WARNING:` lines.
pub const YELLOW: &str = "\x1b[0;33m";
/// `ERROR:` lines.
pub const BOLD_RED: &str = "\x1b[31;1m";
/// Stage titles at the start of each section.
pub const BOLD_CYAN: &str = "\x1b[36;1m";
/// The output-limit notice.
pub const BOLD_YELLOW: &str = "\x1b[33;1m";
/// Ends every runner-written line, before its `\n`.
pub const RESET: &str = "\x1b[0;m";
/// Erase to end of line; follows the `\r` of section markers so the viewer
/// hides the marker text.
pub const CLEAR: &str = "\x1b[0K";
