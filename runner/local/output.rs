//! Where a local job's log goes: a log file holding the full trace as
//! GitLab would store it, and the terminal.
//!
//! The file keeps everything (ANSI colours, section markers), so it can be
//! compared with a GitLab trace. The terminal gets a readable rendering:
//! section markers removed, colours only on a colour-capable terminal, and
//! in pipeline mode every line prefixed with its job's name, because
//! several jobs write at once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::job::log::LogTarget;

/// How the terminal shows job output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalStyle {
    /// Keep ANSI colours (a TTY without `NO_COLOR`).
    pub color: bool,
    /// Print nothing of the job's log (`--quiet`): only the summary.
    pub quiet: bool,
}

/// A job's log target: the file, plus the terminal rendering.
pub struct LocalLogTarget {
    file: Option<BufWriter<File>>,
    terminal: TerminalLines,
}

impl LocalLogTarget {
    /// `prefix` is the job name to put before each terminal line, or
    /// `None` for a single job.
    pub fn new(
        log_file: &Path,
        prefix: Option<&str>,
        style: TerminalStyle,
    ) -> std::io::Result<Self> {
        if let Some(dir) = log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(log_file)?;
        Ok(LocalLogTarget {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            terminal: TerminalLines::new(prefix, style),
        })
    }
}

impl LogTarget for LocalLogTarget {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(file) = &mut self.file {
            // A full disk must not stop the job: the log file stops, the
            // terminal goes on, and the end of the run says so.
            if file.write_all(bytes).is_err() {
                self.file = None;
            }
        }
        self.terminal.write(bytes);
    }

    fn finish(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
        self.terminal.flush_partial();
    }
}

/// Turns the byte stream into terminal lines.
struct TerminalLines {
    prefix: Option<String>,
    style: TerminalStyle,
    /// The current, unfinished line.
    partial: Vec<u8>,
}

/// Colours for job name prefixes, picked by a hash of the name so a job
/// keeps its colour from run to run.
const PREFIX_COLORS: &[&str] = &["36", "33", "35", "32", "34", "96", "93", "95", "92", "94"];

impl TerminalLines {
    fn new(prefix: Option<&str>, style: TerminalStyle) -> Self {
        let prefix = prefix.map(|name| {
            if style.color {
                let hash = name
                    .bytes()
                    .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
                let color = PREFIX_COLORS[hash % PREFIX_COLORS.len()];
                format!("\x1b[{color}m{name}\x1b[0m │ ")
            } else {
                format!("{name} │ ")
            }
        });
        TerminalLines {
            prefix,
            style,
            partial: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.style.quiet {
            return;
        }
        let mut rest = bytes;
        let mut out = Vec::with_capacity(bytes.len() + 64);
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..nl]);
            self.render_line(&mut out);
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
        }
    }

    fn flush_partial(&mut self) {
        if self.style.quiet || self.partial.is_empty() {
            return;
        }
        let mut out = Vec::new();
        self.render_line(&mut out);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&out);
        let _ = stdout.flush();
    }

    /// Renders `self.partial` as one terminal line into `out` and clears it.
    fn render_line(&mut self, out: &mut Vec<u8>) {
        let (line, had_marker) = strip_section_markers(&self.partial);
        let line = if self.style.color {
            line
        } else {
            strip_ansi(&line)
        };
        self.partial.clear();
        // A line that held only a section end marker disappears.
        if line.is_empty() && had_marker {
            return;
        }
        if let Some(prefix) = &self.prefix {
            out.extend_from_slice(prefix.as_bytes());
        }
        out.extend_from_slice(&line);
        if self.style.color {
            out.extend_from_slice(b"\x1b[0m");
        }
        out.push(b'\n');
    }
}

/// What ends a section marker: carriage return and erase-line.
const MARKER_END: &[u8] = b"\r\x1b[0K";

/// Removes `section_start:…\r\e[0K` and `section_end:…\r\e[0K` from a
/// line; says whether there was one.
fn strip_section_markers(line: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(line.len());
    let mut found = false;
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if rest.starts_with(b"section_start:") || rest.starts_with(b"section_end:") {
            if let Some(end) = find(rest, MARKER_END) {
                found = true;
                i += end + MARKER_END.len();
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
    (out, found)
}

/// Removes ANSI escape sequences (CSI `ESC [ … final`, and lone `ESC x`).
fn strip_ansi(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b {
            if line.get(i + 1) == Some(&b'[') {
                let mut j = i + 2;
                while j < line.len() && !(0x40..=0x7e).contains(&line[j]) {
                    j += 1;
                }
                i = j + 1;
            } else {
                i += 2;
            }
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_removed_and_marker_only_lines_vanish() {
        let (line, found) = strip_section_markers(
            b"section_end:1:a\r\x1b[0Ksection_start:2:b\r\x1b[0K\x1b[36;1mTitle\x1b[0;m",
        );
        assert!(found);
        assert_eq!(line, b"\x1b[36;1mTitle\x1b[0;m");
        assert_eq!(strip_ansi(&line), b"Title");
        let (line, found) = strip_section_markers(b"section_end:1:a\r\x1b[0K");
        assert!(found && line.is_empty());
        let (line, found) = strip_section_markers(b"plain section_ text");
        assert!(!found);
        assert_eq!(line, b"plain section_ text");
    }

    #[test]
    fn the_log_file_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/job.log");
        let style = TerminalStyle {
            color: false,
            quiet: true,
        };
        let mut target = LocalLogTarget::new(&path, Some("job"), style).unwrap();
        target.write(b"section_start:1:x\r\x1b[0Kone\n");
        target.write(b"two");
        target.finish();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"section_start:1:x\r\x1b[0Kone\ntwo"
        );
    }
}
