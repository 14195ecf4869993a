//! `artifacts:reports:dotenv`: the variables a job hands to later jobs, read
//! with GitLab's rules (`Ci::ParseDotenvArtifactService` and the job
//! variable model).
//!
//! Each line is `KEY=VALUE`, split at the first `=`, both sides stripped of
//! surrounding white space. Nothing else is interpreted: quotes stay part
//! of the value, `$` is not expanded, and a line without `=` (a blank line,
//! a comment, the second line of a multi-line value) is an error. Keys are
//! ASCII letters, digits and `_`. A repeated key keeps its last value, in
//! the place where it first appeared.

use std::collections::HashMap;

use super::ArchiveError;

/// GitLab's instance limits for dotenv reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotenvLimits {
    /// Largest accepted file, in bytes (GitLab's `dotenv_size`).
    pub max_bytes: usize,
    /// Most variables accepted (GitLab's `dotenv_variables`).
    pub max_variables: usize,
}

impl Default for DotenvLimits {
    /// GitLab's defaults: 5 KiB and 20 variables.
    fn default() -> Self {
        DotenvLimits {
            max_bytes: 5 * 1024,
            max_variables: 20,
        }
    }
}

/// The longest key GitLab stores.
const MAX_KEY_LEN: usize = 255;

/// Parses a dotenv report into `(key, value)` pairs in first-appearance
/// order.
///
/// GitLab measures the size limit on the compressed upload; here it is
/// measured on the file itself, which is stricter for large, repetitive
/// files and the same for typical ones.
pub fn parse_dotenv(
    content: &[u8],
    limits: &DotenvLimits,
) -> Result<Vec<(String, String)>, ArchiveError> {
    if content.len() > limits.max_bytes {
        return Err(ArchiveError::DotenvTooBig {
            size: content.len(),
            limit: limits.max_bytes,
        });
    }
    let text = decode(content)?;
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let line_error = |message: &str| ArchiveError::DotenvLine {
            line: n + 1,
            message: message.to_owned(),
        };
        let line = line.strip_suffix('\n').unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(line_error("Invalid Format"));
        };
        let (key, value) = (ruby_strip(key), ruby_strip(value));
        if key.is_empty() {
            return Err(line_error("Key can't be blank"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(line_error("Key is too long (maximum is 255 characters)"));
        }
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(line_error("Key can contain only letters, digits and '_'."));
        }
        match index.get(key) {
            Some(&at) => variables[at].1 = value.to_owned(),
            None => {
                index.insert(key.to_owned(), variables.len());
                variables.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    if variables.len() > limits.max_variables {
        return Err(ArchiveError::DotenvTooManyVariables {
            count: variables.len(),
            limit: limits.max_variables,
        });
    }
    Ok(variables)
}

/// The report as text: UTF-8 without its byte order mark, or UTF-16 when
/// it starts with a UTF-16 byte order mark (PowerShell writes that, and
/// GitLab converts it). Anything else must be valid UTF-8.
fn decode(content: &[u8]) -> Result<String, ArchiveError> {
    let utf16 = |bytes: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| from([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        String::from_utf16(&units).map_err(|_| ArchiveError::DotenvLine {
            line: 1,
            message: "invalid UTF-16".to_owned(),
        })
    };
    match content {
        [0xEF, 0xBB, 0xBF, rest @ ..] => utf8(rest),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => utf8(content),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ArchiveError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        ArchiveError::DotenvLine {
            line: bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1,
            message: "not valid UTF-8".to_owned(),
        }
    })
}

/// Ruby's `String#strip`: white space and NUL on both ends.
fn ruby_strip(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r' | '\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
        parse_dotenv(text.as_bytes(), &DotenvLimits::default()).map_err(|e| e.to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rule_214_values_are_taken_literally() {
        let got = parse("A=1\nB = two words \nQUOTED=\"x y\"\nREF=$A\nEQ=a=b\nEMPTY=\nCRLF=z\r\n")
            .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("QUOTED", "\"x y\""),
                ("REF", "$A"),
                ("EQ", "a=b"),
                ("EMPTY", ""),
                ("CRLF", "z"),
            ])
        );
        assert_eq!(parse("").unwrap(), pairs(&[]));
        assert_eq!(
            parse("LAST=no newline").unwrap(),
            pairs(&[("LAST", "no newline")])
        );
    }

    #[test]
    fn rule_214_a_repeated_key_keeps_its_last_value() {
        let got = parse("A=1\nB=2\nA=3\n").unwrap();
        assert_eq!(got, pairs(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn rule_214_keys_are_letters_digits_and_underscores() {
        assert_eq!(
            parse("GOOD=1\nBAD-KEY=2\n").unwrap_err(),
            "dotenv line 2: Key can contain only letters, digits and '_'."
        );
        assert_eq!(
            parse("export A=1").unwrap_err(),
            "dotenv line 1: Key can contain only letters, digits and '_'."
        );
        assert_eq!(
            parse("=value").unwrap_err(),
            "dotenv line 1: Key can't be blank"
        );
        let long = format!("{}=1", "K".repeat(256));
        assert_eq!(
            parse(&long).unwrap_err(),
            "dotenv line 1: Key is too long (maximum is 255 characters)"
        );
    }

    #[test]
    fn rule_214_blank_lines_comments_and_multi_line_values_are_invalid() {
        assert_eq!(
            parse("A=1\n\nB=2\n").unwrap_err(),
            "dotenv line 2: Invalid Format"
        );
        assert_eq!(
            parse("# comment\n").unwrap_err(),
            "dotenv line 1: Invalid Format"
        );
        assert_eq!(
            parse("A=\"first\nsecond\"\n").unwrap_err(),
            "dotenv line 2: Invalid Format"
        );
    }

    #[test]
    fn rule_214_the_size_and_variable_limits_apply() {
        let big = format!("A={}\n", "x".repeat(5 * 1024));
        assert_eq!(
            parse(&big).unwrap_err(),
            "Dotenv Artifact Too Big. Maximum Allowable Size: 5120"
        );
        let many: String = (0..21).map(|i| format!("V{i}=x\n")).collect();
        assert_eq!(
            parse(&many).unwrap_err(),
            "Dotenv files cannot have more than 20 variables"
        );
        let limits = DotenvLimits {
            max_bytes: 10_000,
            max_variables: 50,
        };
        assert_eq!(parse_dotenv(many.as_bytes(), &limits).unwrap().len(), 21);
    }

    #[test]
    fn rule_214_text_must_be_unicode() {
        let err = parse_dotenv(b"A=1\nB=\xff\n", &DotenvLimits::default()).unwrap_err();
        assert_eq!(err.to_string(), "dotenv line 2: not valid UTF-8");
        let bom = parse_dotenv(b"\xEF\xBB\xBFA=1\n", &DotenvLimits::default()).unwrap();
        assert_eq!(bom, pairs(&[("A", "1")]));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("A=\u{e9}\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            parse_dotenv(&utf16, &DotenvLimits::default()).unwrap(),
            pairs(&[("A", "\u{e9}")])
        );
    }
}
