//! Durations written in words (`3 mins 4 sec`, `2h20min`, `one hour`), read
//! the way GitLab's `ChronicDuration` reads them for `timeout`,
//! `artifacts:expire_in`, `environment:auto_stop_in`, `start_in` and
//! `pages:expire_in`.
//!
//! The parser is forgiving by design: number words become digits, unknown
//! words are dropped, a number without a unit counts as seconds, and
//! `1:20` reads as a clock time. A value is a duration when what is left
//! adds up to more than zero seconds.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::numerize::numerize;

/// Parses a GitLab duration (`1h 30m`, `3 mins 4 sec`, `42`) as GitLab's
/// ChronicDuration does. `None` when the text is not a duration or adds up
/// to zero. `never` is not a duration here: the keywords that accept it
/// (`expire_in`, `auto_stop_in`) check for it first.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let seconds = chronic_seconds(text)?;
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// True when GitLab's duration parser accepts `text` (`never` excluded).
pub fn is_duration(text: &str) -> bool {
    chronic_seconds(text).is_some()
}

/// True for `never` in any letter case, which `expire_in` and
/// `auto_stop_in` accept in place of a duration.
pub fn is_never(text: &str) -> bool {
    text.eq_ignore_ascii_case("never")
}

/// True when the value may refer to a CI/CD variable (`$VAR`, `${VAR}`,
/// `%VAR%`). GitLab skips duration validation for such values because they
/// are only known when the job runs.
pub fn duration_with_variables(text: &str) -> bool {
    text.contains('$') || text.contains('%')
}

/// The duration in seconds, or `None` when it adds up to zero.
fn chronic_seconds(text: &str) -> Option<f64> {
    let cleaned = cleanup(text);
    let words: Vec<&str> = cleaned.split(' ').collect();
    let mut total = 0.0;
    for (i, word) in words.iter().enumerate() {
        if !FLOAT.is_match(word) {
            continue;
        }
        let unit = words.get(i + 1).copied().unwrap_or("seconds");
        total += number(word) * unit_seconds(unit);
    }
    (total != 0.0).then_some(total)
}

/// ChronicDuration's `float_matcher`, unanchored as in the gem.
static FLOAT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]*\.?[0-9]+").expect("float"));

/// `h:mm:ss`-style values, read from the right: seconds, minutes, hours,
/// days, months, years.
static CLOCK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^[0-9]+:[0-9]+(:[0-9]+){0,4}(\.[0-9]*)?$").expect("clock"));

/// Lower-cases, turns number words into digits, expands clock times, puts
/// spaces around numbers and keeps only numbers and unit names.
fn cleanup(text: &str) -> String {
    let lowered = text.to_lowercase();
    let numerized = numerize(&lowered);
    let typed = clock_to_words(&numerized);
    let spaced = FLOAT.replace_all(&typed, |c: &regex::Captures| format!(" {} ", &c[0]));
    let squeezed = squeeze_spaces(&spaced);
    keep_known_words(ruby_strip(&squeezed))
}

fn clock_to_words(text: &str) -> String {
    const UNITS: [&str; 6] = ["seconds", "minutes", "hours", "days", "months", "years"];
    let compact: String = text.chars().filter(|&c| c != ' ').collect();
    if !CLOCK.is_match(&compact) {
        return text.to_string();
    }
    let parts: Vec<String> = compact
        .split(':')
        .rev()
        .zip(UNITS)
        .map(|(value, unit)| format!("{value} {unit}"))
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join(" ")
}

/// Ruby's `squeeze(' ')`: runs of spaces become one space.
fn squeeze_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out
}

/// Ruby's `strip`: ASCII whitespace and NUL at both ends.
fn ruby_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0' || c == '\x0b')
}

/// Keeps numbers and unit names (mapped to their long form); `and`,
/// `with`, `plus` and any other word are dropped. A leading unit without a
/// number counts once (`day` is one day).
fn keep_known_words(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for word in text.split_ascii_whitespace() {
        if FLOAT.is_match(word) {
            kept.push(word);
            continue;
        }
        let word = word.strip_prefix(',').unwrap_or(word);
        let word = word.strip_suffix(',').unwrap_or(word);
        if let Some(unit) = unit_name(word) {
            kept.push(unit);
        }
    }
    if kept.first().is_some_and(|w| unit_name(w).is_some()) {
        kept.insert(0, "1");
    }
    kept.join(" ")
}

fn unit_name(word: &str) -> Option<&'static str> {
    Some(match word {
        "seconds" | "second" | "secs" | "sec" | "s" => "seconds",
        "minutes" | "minute" | "mins" | "min" | "m" => "minutes",
        "hours" | "hour" | "hrs" | "hr" | "h" => "hours",
        "days" | "day" | "dy" | "d" => "days",
        "weeks" | "week" | "wks" | "wk" | "w" => "weeks",
        "months" | "mo" | "mos" | "month" => "months",
        "years" | "year" | "yrs" | "yr" | "y" => "years",
        _ => return None,
    })
}

/// A month is 30 days and a year 365.25 days, as in the gem.
fn unit_seconds(unit: &str) -> f64 {
    match unit {
        "years" => 31_557_600.0,
        "months" => 2_592_000.0,
        "weeks" => 604_800.0,
        "days" => 86_400.0,
        "hours" => 3_600.0,
        "minutes" => 60.0,
        "seconds" => 1.0,
        _ => 0.0,
    }
}

/// Ruby's `to_f`, then `to_i` when there is no fraction.
fn number(word: &str) -> f64 {
    let value: f64 = word.parse().unwrap_or(0.0);
    if value.fract() > 0.0 {
        value
    } else {
        value.trunc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Option<f64> {
        chronic_seconds(text)
    }

    #[test]
    fn rule_205_documented_expire_in_examples_parse() {
        assert_eq!(secs("42"), Some(42.0));
        assert_eq!(secs("42 seconds"), Some(42.0));
        assert_eq!(secs("3 mins 4 sec"), Some(184.0));
        assert_eq!(secs("2 hrs 20 min"), Some(8400.0));
        assert_eq!(secs("2h20min"), Some(8400.0));
        assert_eq!(secs("6 mos 1 day"), Some(6.0 * 2_592_000.0 + 86_400.0));
        assert_eq!(
            secs("47 yrs 6 mos and 4d"),
            Some(47.0 * 31_557_600.0 + 6.0 * 2_592_000.0 + 4.0 * 86_400.0)
        );
        assert_eq!(
            secs("3 weeks and 2 days"),
            Some(3.0 * 604_800.0 + 2.0 * 86_400.0)
        );
        assert_eq!(secs("1 week"), Some(604_800.0));
    }

    #[test]
    fn rule_241_timeout_examples_parse_including_number_words() {
        assert_eq!(secs("3600 seconds"), Some(3600.0));
        assert_eq!(secs("60 minutes"), Some(3600.0));
        assert_eq!(secs("one hour"), Some(3600.0));
        assert_eq!(secs("3 hours 30 minutes"), Some(12_600.0));
        assert_eq!(secs("3h 30m"), Some(12_600.0));
        assert_eq!(secs("one week"), Some(604_800.0));
        assert_eq!(secs("7 days"), Some(604_800.0));
        assert_eq!(secs("168 hours"), Some(604_800.0));
    }

    #[test]
    fn rule_254_gem_quirks_are_kept() {
        // Case, clock times, fractions, a unit alone, commas and join words.
        assert_eq!(secs("3 Mins 4 Sec"), Some(184.0));
        assert_eq!(secs("1:20"), Some(80.0));
        assert_eq!(secs("4:01:01"), Some(14_461.0));
        assert_eq!(secs("2.5 hrs"), Some(9000.0));
        assert_eq!(secs("day"), Some(86_400.0));
        assert_eq!(secs("minute 30s"), Some(90.0));
        assert_eq!(
            secs("3 weeks, plus 2 days"),
            Some(3.0 * 604_800.0 + 2.0 * 86_400.0)
        );
        // Unknown words are dropped rather than rejected.
        assert_eq!(secs("about 5 fortnights"), Some(5.0));
        // numerizer reads the word `second` as the ordinal `2nd`.
        assert_eq!(secs("1 second"), Some(2.0));
        assert_eq!(secs("2 seconds"), Some(2.0));
    }

    #[test]
    fn rule_254_zero_and_wordless_values_are_not_durations() {
        assert!(!is_duration("0"));
        assert!(!is_duration("gobblygoo"));
        assert!(!is_duration("never"));
        assert!(!is_duration(""));
        assert!(is_never("Never"));
    }

    #[test]
    fn rule_254_values_with_variables_are_recognised() {
        assert!(duration_with_variables("$EXPIRY"));
        assert!(duration_with_variables("${TTL} days"));
        assert!(duration_with_variables("%TTL%"));
        assert!(!duration_with_variables("1 day"));
    }

    #[test]
    fn parse_duration_returns_a_std_duration() {
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5 sec"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("never"), None);
        assert!(parse_duration(&"9".repeat(400)).is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,30}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn number_words_and_units_parse_without_panicking(
            text in "(one|two|twenty|a|half|second|quarter|the|and|hundred|[0-9]{1,3}|[.:/ -]|mins|h|d|,){0,8}"
        ) {
            let _ = parse_duration(&text);
        }
    }
}
