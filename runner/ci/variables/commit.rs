//! Commit message parts and timestamps as GitLab derives them for the
//! `CI_COMMIT_*` and `CI_PIPELINE_CREATED_AT` variables.

use std::time::{SystemTime, UNIX_EPOCH};

/// GitLab's default cap on the commit message it puts in variables
/// (`MAX_COMMIT_MESSAGE_SIZE_IN_BYTES`).
pub const MAX_COMMIT_MESSAGE_BYTES: usize = 100_000;

/// GitLab's placeholder title for an empty message.
const NO_COMMIT_MESSAGE: &str = "No commit message";

/// The message-derived commit variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitText {
    /// `CI_COMMIT_MESSAGE`: the raw message, trailing newline included.
    pub message: String,
    /// `CI_COMMIT_TITLE`: the first line, in full.
    pub title: String,
    /// `CI_COMMIT_DESCRIPTION`.
    pub description: String,
    /// `CI_COMMIT_MESSAGE_IS_TRUNCATED`.
    pub truncated: bool,
}

/// Ruby's `blank?` on a string: empty or only whitespace.
fn is_blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// Ruby's `chomp`: one trailing `\r\n`, `\n` or `\r` removed.
fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary. Ruby's `byteslice` may cut inside a character; a Rust string
/// cannot, so the cut moves back to the boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits a raw commit message the way GitLab's `Commit` model does:
/// - the title is everything before the first `\r` or `\n`, or
///   `No commit message` when the message is blank;
/// - the description is the whole message when the title has 100 or more
///   characters, `No commit message` when the message is blank, and
///   otherwise what follows the first `\n`, minus one trailing newline
///   (empty for a one-line message);
/// - all three are cut to 100,000 bytes when the message is longer.
pub fn commit_text(message: &str) -> CommitText {
    let title = if is_blank(message) {
        NO_COMMIT_MESSAGE
    } else {
        message.split(['\r', '\n']).next().unwrap_or("")
    };
    let description = if title.chars().count() >= 100 {
        message
    } else if is_blank(message) {
        NO_COMMIT_MESSAGE
    } else {
        message.split_once('\n').map_or("", |(_, rest)| chomp(rest))
    };
    let truncated = message.len() > MAX_COMMIT_MESSAGE_BYTES;
    let cut = |s: &str| truncate_bytes(s, MAX_COMMIT_MESSAGE_BYTES).to_owned();
    CommitText {
        message: cut(message),
        title: cut(title),
        description: cut(description),
        truncated,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form Rails' `iso8601` gives a UTC time.
pub fn iso8601_utc(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_line_message() {
        let t = commit_text("Fix the build\n");
        assert_eq!(t.message, "Fix the build\n");
        assert_eq!(t.title, "Fix the build");
        assert_eq!(t.description, "");
        assert!(!t.truncated);
    }

    #[test]
    fn description_is_everything_after_the_first_line_minus_one_newline() {
        let t = commit_text("Title\n\nBody line 1\nBody line 2\n");
        assert_eq!(t.title, "Title");
        assert_eq!(t.description, "\nBody line 1\nBody line 2");
    }

    #[test]
    fn title_stops_at_carriage_return_too() {
        let t = commit_text("Title\r\nBody\r\n");
        assert_eq!(t.title, "Title");
        assert_eq!(t.description, "Body");
    }

    #[test]
    fn long_title_makes_the_description_the_whole_message() {
        let title = "x".repeat(100);
        let msg = format!("{title}\nbody\n");
        let t = commit_text(&msg);
        assert_eq!(t.title, title);
        assert_eq!(t.description, msg);
        let shorter = format!("{}\nbody\n", "x".repeat(99));
        assert_eq!(commit_text(&shorter).description, "body");
    }

    #[test]
    fn blank_message() {
        let t = commit_text(" \n");
        assert_eq!(t.title, "No commit message");
        assert_eq!(t.description, "No commit message");
        assert_eq!(t.message, " \n");
    }

    #[test]
    fn huge_message_is_truncated_on_a_char_boundary() {
        let msg = format!("t\n{}", "é".repeat(60_000));
        let t = commit_text(&msg);
        assert!(t.truncated);
        assert!(t.message.len() <= MAX_COMMIT_MESSAGE_BYTES);
        assert!(t.message.len() >= MAX_COMMIT_MESSAGE_BYTES - 1);
        assert!(t.description.len() <= MAX_COMMIT_MESSAGE_BYTES);
    }

    #[test]
    fn iso8601_formats_utc() {
        assert_eq!(iso8601_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_643_647_675);
        assert_eq!(iso8601_utc(t), "2022-01-31T16:47:55Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601_utc(leap), "2000-02-29T00:00:00Z");
    }
}
