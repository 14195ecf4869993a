//! The value syntaxes of `[runners.docker]` resource limits: memory sizes
//! (`512m`, `4g`) and CPU counts (`1.5`), parsed as Docker and
//! gitlab-runner parse them.

/// A memory size or CPU count that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {expected}")]
pub struct InvalidUnit {
    /// `size` or `number of CPUs`.
    what: &'static str,
    /// The text given.
    value: String,
    /// What would have been accepted.
    expected: &'static str,
}

/// A memory size in bytes, from Docker's syntax (its `RAMInBytes`, which
/// gitlab-runner uses for `memory`, `memory_swap` and
/// `memory_reservation`): a number, optionally with a fraction, then
/// optionally one space, a unit `b`, `k`, `m`, `g`, `t` or `p` (any case,
/// powers of 1024), an `i` and a `b`: `512m`, `4g`, `1.5GiB`, `100 MB`,
/// `1048576`. A fraction of a byte is dropped.
pub fn parse_memory(text: &str) -> Result<i64, InvalidUnit> {
    let invalid = || InvalidUnit {
        what: "size",
        value: text.to_owned(),
        expected: "expected a number with an optional unit b, k, m, g, t or p, such as 512m or 4g",
    };
    let digits_end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let int_len = digits_end(text);
    if int_len == 0 {
        return Err(invalid());
    }
    let mut rest = &text[int_len..];
    let mut number_len = int_len;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = digits_end(fraction);
        if len == 0 {
            return Err(invalid());
        }
        number_len += 1 + len;
        rest = &fraction[len..];
    }
    let number: f64 = text[..number_len].parse().map_err(|_| invalid())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let multiplier: f64 = match chars.peek().map(char::to_ascii_lowercase) {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if multiplier != 1.0 {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(invalid());
    }
    let bytes = number * multiplier;
    // 2^63 is the first value an i64 cannot hold; every f64 below it can
    // be truncated into one.
    if bytes >= 9_223_372_036_854_775_808.0 {
        return Err(InvalidUnit {
            what: "size",
            value: text.to_owned(),
            expected: "the size is too large",
        });
    }
    Ok(bytes as i64)
}

/// A number of CPUs as Docker's `NanoCpus` (billionths of a CPU): a
/// positive decimal number such as `2` or `1.5`, as `docker run --cpus`
/// takes it. Digits past the ninth decimal are dropped, as gitlab-runner
/// truncates them.
pub fn parse_cpus(text: &str) -> Result<i64, InvalidUnit> {
    let invalid = |expected| InvalidUnit {
        what: "number of CPUs",
        value: text.to_owned(),
        expected,
    };
    const EXPECTED: &str = "expected a positive decimal number such as 1.5";
    let (int, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && fraction.is_empty() || !all_digits(int) || !all_digits(fraction) {
        return Err(invalid(EXPECTED));
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| invalid("the number is too large"))?
    };
    let mut nanos = 0i64;
    for (i, digit) in fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .enumerate()
    {
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    let total = whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(|| invalid("the number is too large"))?;
    if total == 0 {
        return Err(invalid(EXPECTED));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_docker_parses_them() {
        let cases: [(&str, i64); 14] = [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512m", 512 << 20),
            ("512M", 512 << 20),
            ("4g", 4 << 30),
            ("4G", 4 << 30),
            ("4gb", 4 << 30),
            ("4GiB", 4 << 30),
            ("1.5g", 3 << 29),
            ("100 mb", 100 << 20),
            ("32k", 32 << 10),
            ("2t", 2 << 40),
            ("1p", 1 << 50),
            ("10b", 10),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_memory(text), Ok(bytes), "{text}");
        }
        // A fraction of a byte is dropped.
        assert_eq!(parse_memory("1.7"), Ok(1));
    }

    #[test]
    fn bad_memory_sizes_are_errors_naming_the_value() {
        for bad in [
            "", "m", "4x", "4gg", "-1", "1.", ".5g", "4 g b", "4  g", " 4g", "4g ", "1.2.3m", "４g",
        ] {
            let err = parse_memory(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid size {bad:?}: expected a number")),
                "{bad}: {err}"
            );
        }
        let err = parse_memory("9000000p").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid size \"9000000p\": the size is too large"
        );
    }

    #[test]
    fn cpu_counts_become_nano_cpus() {
        let cases: [(&str, i64); 7] = [
            ("1", 1_000_000_000),
            ("2", 2_000_000_000),
            ("1.5", 1_500_000_000),
            ("0.25", 250_000_000),
            (".5", 500_000_000),
            ("3.", 3_000_000_000),
            ("0.0000000019", 1),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_cpus(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn bad_cpu_counts_are_errors_naming_the_value() {
        for bad in [
            "", ".", "0", "0.0", "-1", "1,5", "two", "1.5.1", "1e3", " 1",
        ] {
            let err = parse_cpus(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid number of CPUs {bad:?}: expected a positive decimal number such as 1.5"
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_cpus("99999999999999").unwrap_err().to_string(),
            "invalid number of CPUs \"99999999999999\": the number is too large"
        );
    }
}
