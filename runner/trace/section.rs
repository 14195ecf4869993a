//! Collapsible section markers of the job log.
//!
//! GitLab's log viewer folds everything between
//! `section_start:<ts>:<name>[<opts>]\r\e[0K` and `section_end:<ts>:<name>\r\e[0K`
//! and shows the duration from the two Unix timestamps. The `\r\e[0K`
//! returns to the line start and erases, so terminals that print the raw
//! log do not show the marker.

use super::ansi;

/// Options of a section start marker, written as `[k=v,…]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionOptions {
    /// Folded when the log is first shown.
    pub collapsed: bool,
    /// The viewer does not show the section's duration.
    pub hide_duration: bool,
}

impl SectionOptions {
    /// The `[…]` suffix, or nothing when no option is set (GitLab treats a
    /// missing list as all defaults).
    fn suffix(&self) -> String {
        let mut opts = Vec::new();
        // Order as the reference runner writes them for script steps.
        if self.hide_duration {
            opts.push("hide_duration=true");
        }
        if self.collapsed {
            opts.push("collapsed=true");
        }
        if opts.is_empty() {
            String::new()
        } else {
            format!("[{}]", opts.join(","))
        }
    }
}

/// Makes `name` acceptable to GitLab's log parser, which only recognises
/// section names made of ASCII letters, digits, `_`, `.` and `-`: any other
/// character becomes `_`. An empty name becomes `_` so the marker still parses.
pub fn sanitize_name(name: &str) -> String {
    if name.is_empty() {
        return "_".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The start marker followed by `header` (the visible, clickable line).
/// The caller ends the header line with `\n`.
pub fn section_start(unix_ts: u64, name: &str, opts: SectionOptions, header: &str) -> String {
    format!(
        "section_start:{unix_ts}:{}{}\r{}{header}",
        sanitize_name(name),
        opts.suffix(),
        ansi::CLEAR
    )
}

/// The end marker. It carries no newline: the next line of the log (often
/// the next section's start) follows it directly.
pub fn section_end(unix_ts: u64, name: &str) -> String {
    format!(
        "section_end:{unix_ts}:{}\r{}",
        sanitize_name(name),
        ansi::CLEAR
    )
}

/// A stage section's header: the title in bold cyan, reset, newline, as the
/// reference runner writes e.g. `Preparing environment`.
pub fn stage_header(title: &str) -> String {
    format!("{}{}{title}{}\n", ansi::CLEAR, ansi::BOLD_CYAN, ansi::RESET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_marker_without_options() {
        assert_eq!(
            section_start(1700000000, "get_sources", SectionOptions::default(), "hdr"),
            "section_start:1700000000:get_sources\r\x1b[0Khdr"
        );
    }

    #[test]
    fn start_marker_with_collapsed() {
        let opts = SectionOptions {
            collapsed: true,
            hide_duration: false,
        };
        assert_eq!(
            section_start(5, "step_script", opts, ""),
            "section_start:5:step_script[collapsed=true]\r\x1b[0K"
        );
    }

    #[test]
    fn start_marker_for_script_step_has_both_options() {
        let opts = SectionOptions {
            collapsed: true,
            hide_duration: true,
        };
        assert_eq!(
            section_start(7, "section_script_step_0", opts, "$ make"),
            "section_start:7:section_script_step_0[hide_duration=true,collapsed=true]\r\x1b[0K$ make"
        );
    }

    #[test]
    fn end_marker() {
        assert_eq!(
            section_end(1700000042, "upload_artifacts_on_success"),
            "section_end:1700000042:upload_artifacts_on_success\r\x1b[0K"
        );
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize_name("step_script"), "step_script");
        assert_eq!(sanitize_name("my step: build/é"), "my_step__build__");
        assert_eq!(sanitize_name("v1.2-rc_3"), "v1.2-rc_3");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(section_end(1, "a b"), "section_end:1:a_b\r\x1b[0K");
    }

    #[test]
    fn stage_header_is_bold_cyan_and_reset() {
        assert_eq!(
            stage_header("Preparing environment"),
            "\x1b[0K\x1b[36;1mPreparing environment\x1b[0;m\n"
        );
    }
}
