//! The job log: the one place every stage of a job writes to.
//!
//! Script output and the runner's own lines (notices, warnings, section
//! markers) go through the same masker and output limit, in the order they
//! were written, so a secret cannot leak through a runner message and the
//! limit counts everything the reader sees. Where the bytes end up (a
//! terminal, a log file, GitLab's trace) is the [`LogTarget`]'s business.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::trace::{self, Masker, OutputLimit, SectionOptions, TokenMasker, ansi};

/// Where finished (masked, limited) log bytes go.
pub trait LogTarget: Send {
    fn write(&mut self, bytes: &[u8]);
    /// Called once the job is over; flush what is buffered.
    fn finish(&mut self) {}
}

impl LogTarget for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The log of one job.
pub struct JobLog {
    target: Box<dyn LogTarget>,
    masker: Masker,
    /// GitLab tokens by prefix (`glpat-…`), after the exact values.
    tokens: TokenMasker,
    limit: OutputLimit,
    /// Whether to write collapsible section markers.
    sections: bool,
    /// Whether the last byte written was a newline: section ends and
    /// runner lines begin on a line of their own.
    at_line_start: bool,
    /// Scratch buffers reused for every write.
    masked: Vec<u8>,
    tokens_masked: Vec<u8>,
    limited: Vec<u8>,
}

impl JobLog {
    /// A log masking `secrets` and keeping at most `limit_bytes` bytes.
    pub fn new(target: Box<dyn LogTarget>, secrets: &[String], limit_bytes: usize) -> Self {
        JobLog {
            target,
            masker: Masker::new(secrets),
            tokens: TokenMasker::new(&[]),
            limit: OutputLimit::new(limit_bytes),
            sections: true,
            at_line_start: true,
            masked: Vec::new(),
            tokens_masked: Vec::new(),
            limited: Vec::new(),
        }
    }

    /// Also masks tokens with these prefixes (the payload's
    /// `features.token_mask_prefixes`), besides GitLab's own.
    pub fn with_token_prefixes(mut self, extra: &[String]) -> Self {
        self.tokens = TokenMasker::new(extra);
        self
    }

    /// Turns section markers off (a payload without `trace_sections`).
    pub fn without_sections(mut self) -> Self {
        self.sections = false;
        self
    }

    /// Job output, passed through as it came (masked and limited).
    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            self.at_line_start = last == b'\n';
        }
        self.masked.clear();
        self.masker.push(bytes, &mut self.masked);
        self.emit_masked();
    }

    /// A runner line in the notice colour (bold green), like `$ cmd`.
    pub fn notice(&mut self, text: &str) {
        self.line(ansi::BOLD_GREEN, text);
    }

    /// A plain runner line.
    pub fn info(&mut self, text: &str) {
        self.line("", text);
    }

    /// `WARNING: text`, in yellow.
    pub fn warning(&mut self, text: &str) {
        self.line(ansi::YELLOW, &format!("WARNING: {text}"));
    }

    /// `ERROR: text`, in bold red.
    pub fn error(&mut self, text: &str) {
        self.line(ansi::BOLD_RED, &format!("ERROR: {text}"));
    }

    /// A command about to run, echoed as the job script echoes its own.
    pub fn command(&mut self, command: &str) {
        self.notice(&format!("$ {command}"));
    }

    /// Opens section `name` with a bold cyan `title` line.
    pub fn section_start(&mut self, name: &str, title: &str) {
        if self.sections {
            let header = format!("{}{title}{}", ansi::BOLD_CYAN, ansi::RESET);
            let marker = trace::section_start(now(), name, SectionOptions::default(), &header);
            self.write(marker.as_bytes());
            self.write(b"\n");
        } else {
            self.line(ansi::BOLD_CYAN, title);
        }
    }

    /// Closes section `name`.
    pub fn section_end(&mut self, name: &str) {
        if self.sections {
            self.end_line();
            self.write(trace::section_end(now(), name).as_bytes());
        }
    }

    /// Ends the log: decides the bytes the masker still holds back.
    pub fn finish(&mut self) {
        self.masked.clear();
        self.masker.finish(&mut self.masked);
        self.emit_masked();
        self.tokens_masked.clear();
        self.tokens.finish(&mut self.tokens_masked);
        self.emit_limited();
        self.target.finish();
    }

    /// Output may stop mid-line; what the runner writes next starts anew.
    fn end_line(&mut self) {
        if !self.at_line_start {
            self.write(b"\n");
        }
    }

    fn line(&mut self, colour: &str, text: &str) {
        self.end_line();
        let mut out = String::with_capacity(text.len() + 16);
        out.push_str(colour);
        out.push_str(text);
        out.push_str(ansi::RESET);
        out.push('\n');
        self.write(out.as_bytes());
    }

    fn emit_masked(&mut self) {
        if self.masked.is_empty() {
            return;
        }
        self.tokens_masked.clear();
        self.tokens.push(&self.masked, &mut self.tokens_masked);
        self.emit_limited();
    }

    fn emit_limited(&mut self) {
        if self.tokens_masked.is_empty() {
            return;
        }
        self.limited.clear();
        self.limit.push(&self.tokens_masked, &mut self.limited);
        // The limit appends its own notice where it cuts.
        if !self.limited.is_empty() {
            self.target.write(&self.limited);
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl LogTarget for Shared {
        fn write(&mut self, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[test]
    fn runner_lines_are_masked_like_output() {
        let out = Shared::default();
        let mut log = JobLog::new(Box::new(out.clone()), &["hunter22".into()], 1 << 20);
        log.warning("token hunter22 rejected");
        log.write(b"abc hunt");
        log.write(b"er22 def\n");
        log.finish();
        let text = out.text();
        assert!(!text.contains("hunter22"), "{text}");
        assert_eq!(text.matches("[MASKED]").count(), 2, "{text}");
        assert!(text.contains("WARNING: token [MASKED] rejected"));
    }

    #[test]
    fn tokens_are_masked_by_prefix_even_when_split() {
        let out = Shared::default();
        let mut log = JobLog::new(Box::new(out.clone()), &[], 1 << 20)
            .with_token_prefixes(&["acme-".to_owned()]);
        log.write(b"pat glpat-abc");
        log.write(b"DEF123 and acme-xyz\n");
        log.finish();
        assert_eq!(out.text(), "pat glpat-[MASKED] and acme-[MASKED]\n");
    }

    #[test]
    fn sections_wrap_a_titled_block() {
        let out = Shared::default();
        let mut log = JobLog::new(Box::new(out.clone()), &[], 1 << 20);
        log.section_start("get_sources", "Getting source from Git repository");
        log.info("Fetching changes...");
        log.section_end("get_sources");
        log.finish();
        let text = out.text();
        assert!(text.starts_with("section_start:"), "{text}");
        assert!(text.contains(":get_sources\r\x1b[0K\x1b[36;1mGetting source"));
        assert!(text.contains("section_end:"));
    }

    #[test]
    fn without_sections_the_title_is_still_shown() {
        let out = Shared::default();
        let mut log = JobLog::new(Box::new(out.clone()), &[], 1 << 20).without_sections();
        log.section_start("get_sources", "Getting source from Git repository");
        log.section_end("get_sources");
        log.finish();
        assert_eq!(
            out.text(),
            "\x1b[36;1mGetting source from Git repository\x1b[0;m\n"
        );
    }

    #[test]
    fn the_limit_notice_is_written_once() {
        let out = Shared::default();
        let mut log = JobLog::new(Box::new(out.clone()), &[], 10);
        log.write(b"0123456789abcdef");
        log.write(b"more");
        log.finish();
        let text = out.text();
        assert!(text.starts_with("0123456789"));
        assert_eq!(text.matches("exceeded limit").count(), 1, "{text}");
    }
}
