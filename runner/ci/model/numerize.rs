//! Number words to digits, as the `numerizer` gem (0.2) does it before
//! GitLab's duration parser reads a value: `one hour` becomes `1 hour`,
//! `twenty five mins` becomes `25 mins`.
//!
//! The gem is a chain of regular-expression substitutions; the order matters
//! (`twenty` is replaced after `twentyone`), so the chain is kept step for
//! step. Ruby's lookarounds, which the `regex` crate lacks, are checked by
//! hand around each match.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::{Captures, Regex};

const DIRECT_NUMS: &[(&str, &str)] = &[
    ("eleven", "11"),
    ("twelve", "12"),
    ("thirteen", "13"),
    ("fourteen", "14"),
    ("fifteen", "15"),
    ("sixteen", "16"),
    ("seventeen", "17"),
    ("eighteen", "18"),
    ("nineteen", "19"),
    ("ninteen", "19"),
    ("zero", "0"),
    ("ten", "10"),
    (r"(?-u:\b)a(?-u:\b)", "1"),
];

const SINGLE_NUMS: &[(&str, u64)] = &[
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
];

const TEN_PREFIXES: &[(&str, u64)] = &[
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fourty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

const BIG_PREFIXES: &[(&str, u128)] = &[
    ("hundred", 100),
    ("thousand", 1000),
    ("million", 1_000_000),
    ("billion", 1_000_000_000),
    ("trillion", 1_000_000_000_000),
];

const FRACTIONS: &[(&str, &str)] = &[
    ("half", "2"),
    ("third(s)?", "3"),
    ("fourth(s)?", "4"),
    ("quarter(s)?", "4"),
    ("fifth(s)?", "5"),
    ("sixth(s)?", "6"),
    ("seventh(s)?", "7"),
    ("eighth(s)?", "8"),
    ("ninth(s)?", "9"),
];

const SINGLE_ORDINALS: &[(&str, u64)] = &[
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
];

const DIRECT_ORDINALS: &[(&str, &str)] = &[
    ("tenth", "10"),
    ("eleventh", "11"),
    ("twelfth", "12"),
    ("thirteenth", "13"),
    ("fourteenth", "14"),
    ("fifteenth", "15"),
    ("sixteenth", "16"),
    ("seventeenth", "17"),
    ("eighteenth", "18"),
    ("nineteenth", "19"),
    ("twentieth", "20"),
    ("thirtieth", "30"),
    ("fourtieth", "40"),
    ("fiftieth", "50"),
    ("sixtieth", "60"),
    ("seventieth", "70"),
    ("eightieth", "80"),
    ("ninetieth", "90"),
];

/// Ruby's `\w`: ASCII letters, digits and `_` only.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Ruby's `(?=$|\W)` after a match ending at `end`.
fn word_ends_at(text: &str, end: usize) -> bool {
    text[end..].chars().next().is_none_or(|c| !is_word(c))
}

/// Compiles a pattern once per process. The patterns all come from the
/// constant tables above, so the set is small and fixed; each regex is
/// leaked so that its match cache is reused across calls.
fn regex(pattern: &str) -> &'static Regex {
    static CACHE: LazyLock<Mutex<HashMap<String, &'static Regex>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Box::leak(Box::new(Regex::new(pattern).expect("numerizer pattern"))))
}

/// `gsub` with a lookaround test: a match the test rejects is skipped and
/// the search resumes one character later, as a backtracking engine would.
fn gsub_checked(
    text: &str,
    re: &Regex,
    accept: impl Fn(&str, &Captures) -> bool,
    replace: impl Fn(&Captures) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at <= text.len() {
        let Some(caps) = re.captures_at(text, at) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        if accept(text, &caps) {
            out.push_str(&text[copied..m.start()]);
            out.push_str(&replace(&caps));
            copied = m.end();
            at = if m.end() > m.start() {
                m.end()
            } else {
                next_boundary(text, m.end())
            };
        } else {
            at = next_boundary(text, m.start());
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn next_boundary(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(text.len() + 1, |c| at + c.len_utf8())
}

/// `(^|\W)WORD(?=$|\W)` replaced by the leading character and `with`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let re = regex(&format!(r"(?im)(^|[^A-Za-z0-9_])(?:{word})"));
    gsub_checked(
        text,
        re,
        |t, c| c.get(0).is_some_and(|m| word_ends_at(t, m.end())),
        |c| format!("{}{with}", &c[1]),
    )
}

/// Ruby's `Float#to_s` for the values the fraction step produces.
fn ruby_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let s = f.to_string();
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Two adjacent numbers become their sum when joined by `and` or when the
/// second is shorter (`<num>20 <num>7` is 27, `<num>7 <num>20` stays).
fn andition(text: &mut String) {
    static RE: LazyLock<&Regex> =
        LazyLock::new(|| regex(r"(?i)<num>([0-9]+)( | and )<num>([0-9]+)"));
    let mut at = 0;
    while at <= text.len() {
        let Some(caps) = RE.captures_at(text, at) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        let (start, end) = (m.start(), m.end());
        if !word_ends_at(text, end) {
            at = next_boundary(text, start);
            continue;
        }
        let (a, joiner, b) = (&caps[1], &caps[2], &caps[3]);
        if joiner.contains("and") || a.len() > b.len() {
            let sum = to_u128(a).saturating_add(to_u128(b));
            text.replace_range(start..end, &format!("<num>{sum}"));
            at = 0;
        } else {
            at = end;
        }
    }
}

/// Ruby's `String#to_i` on a run of digits, saturating where Ruby would
/// switch to a big integer.
fn to_u128(digits: &str) -> u128 {
    digits.bytes().fold(0u128, |n, b| {
        n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    })
}

/// The last two letters of an ordinal word (`st`, `nd`, `rd`, `th`).
fn ordinal_suffix(word: &str) -> &str {
    &word[word.len().saturating_sub(2)..]
}

/// Replaces number words in `input` with digits.
pub(crate) fn numerize(input: &str) -> String {
    static PRE: LazyLock<&Regex> = LazyLock::new(|| regex(r" +|([^0-9])-([^0-9])"));
    static TRAILING_A: LazyLock<&Regex> = LazyLock::new(|| regex(r"(?m)(?-u:\b)a$"));
    static FRACTION_SUM: LazyLock<&Regex> =
        LazyLock::new(|| regex(r"(?i)([0-9]+)(?: | and |-)+(?:<num>|\s)*([0-9]+)\s*/\s*([0-9]+)"));
    static BARE_FRACTION: LazyLock<&Regex> =
        LazyLock::new(|| regex(r"(?m)(?:^|[^A-Za-z0-9_])/([0-9]+)"));
    static LETTER_FRACTION: LazyLock<&Regex> = LazyLock::new(|| regex(r"/([0-9]+)"));
    static HALF: LazyLock<&Regex> = LazyLock::new(|| regex(r"(?i)(?-u:\b)half(?-u:\b)"));

    let mut s = PRE.replace_all(input, "${1} ${2}").into_owned();
    if nothing_to_numerize(&s) {
        return s;
    }
    if TRAILING_A.is_match(&s) {
        s = TRAILING_A.replace_all(&s, "").trim_end().to_string();
    }

    for (word, digits) in DIRECT_NUMS {
        s = replace_word(&s, word, &format!("<num>{digits}"));
    }
    for (word, n) in SINGLE_NUMS {
        s = replace_word(&s, word, &format!("<num>{n}"));
    }

    for (tens, tv) in TEN_PREFIXES {
        for (unit, uv) in SINGLE_NUMS {
            s = replace_word(&s, &format!("{tens}{unit}"), &format!("<num>{}", tv + uv));
        }
        for (ord, ov) in SINGLE_ORDINALS {
            let with = format!("<num>{}{}", tv + ov, ordinal_suffix(ord));
            s = replace_word(&s, &format!(r"{tens}(?:\s)?{ord}"), &with);
        }
        s = replace_word(&s, tens, &format!("<num>{tv}"));
    }

    let ordinal_fractions = DIRECT_ORDINALS
        .iter()
        .map(|(w, d)| (format!("{w}(s)?"), *d));
    let fractions = FRACTIONS
        .iter()
        .map(|(w, d)| ((*w).to_string(), *d))
        .chain(ordinal_fractions);
    for (word, den) in fractions {
        let a_word = regex(&format!("(?i)a {word}"));
        s = gsub_checked(
            &s,
            a_word,
            |t, c| c.get(0).is_some_and(|m| word_ends_at(t, m.end())),
            |_| format!("<num>1/{den}"),
        );
        if word == "quarter(s)?" {
            s = replace_quarters(&s, &word, den);
        } else {
            let spaced = regex(&format!(r"(?i)\s{word}"));
            s = gsub_checked(
                &s,
                spaced,
                |t, c| {
                    c.get(0).is_some_and(|m| {
                        word_ends_at(t, m.end())
                            && !t[..m.start()].to_ascii_lowercase().ends_with("the")
                    })
                },
                |_| format!("/{den}"),
            );
        }
    }

    for (word, digits) in DIRECT_ORDINALS {
        s = replace_word(&s, word, &format!("<num>{digits}{}", ordinal_suffix(word)));
    }
    for (word, n) in SINGLE_ORDINALS {
        s = replace_word(&s, word, &format!("<num>{n}{}", ordinal_suffix(word)));
    }

    s = FRACTION_SUM
        .replace_all(&s, |c: &Captures| {
            let whole: f64 = c[1].parse().unwrap_or(0.0);
            let num: f64 = c[2].parse().unwrap_or(0.0);
            let den: f64 = c[3].parse().unwrap_or(0.0);
            ruby_float(whole + num / den)
        })
        .into_owned();
    s = BARE_FRACTION.replace_all(&s, "1/${1}").into_owned();
    s = gsub_checked(
        &s,
        &LETTER_FRACTION,
        |t, c| {
            c.get(0).is_some_and(|m| {
                t[..m.start()]
                    .chars()
                    .next_back()
                    .is_some_and(|p| p.is_ascii_alphabetic())
            })
        },
        |c| format!(" 1/{}", &c[1]),
    );

    for (word, value) in BIG_PREFIXES {
        let re = regex(&format!("(?i)(?:<num>)?([0-9]*) *{word}"));
        s = re
            .replace_all(&s, |c: &Captures| {
                if c[1].is_empty() {
                    value.to_string()
                } else {
                    format!("<num>{}", value.saturating_mul(to_u128(&c[1])))
                }
            })
            .into_owned();
        andition(&mut s);
    }
    andition(&mut s);

    s = HALF.replace_all(&s, "1/2").into_owned();
    s.replace("<num>", "")
}

/// True when no substitution below can apply: the text has no `/`, no
/// lone `a`, and none of the tables' words. Most durations (`3 mins 4 sec`)
/// skip the chain this way.
fn nothing_to_numerize(text: &str) -> bool {
    static WORDS: LazyLock<Vec<String>> = LazyLock::new(|| {
        let plain = |w: &str| w.replace("(s)?", "");
        let mut words: Vec<String> = Vec::new();
        words.extend(
            DIRECT_NUMS
                .iter()
                .map(|(w, _)| plain(w))
                .filter(|w| w.chars().all(char::is_alphabetic)),
        );
        words.extend(SINGLE_NUMS.iter().map(|(w, _)| plain(w)));
        words.extend(TEN_PREFIXES.iter().map(|(w, _)| plain(w)));
        words.extend(BIG_PREFIXES.iter().map(|(w, _)| plain(w)));
        words.extend(FRACTIONS.iter().map(|(w, _)| plain(w)));
        words.extend(SINGLE_ORDINALS.iter().map(|(w, _)| plain(w)));
        words.extend(DIRECT_ORDINALS.iter().map(|(w, _)| plain(w)));
        words
    });
    let lower = text.to_lowercase();
    !lower.contains('/')
        && !lower.split(|c: char| !is_word(c)).any(|w| w == "a")
        && !WORDS.iter().any(|w| lower.contains(w.as_str()))
}

/// `quarter` is left alone after a pronoun or `to`/`the` (a verb or a
/// noun), and means `1/4` elsewhere.
fn replace_quarters(text: &str, word: &str, den: &str) -> String {
    let re = regex(&format!(r"(?im)[A-Za-z0-9_]*(?:^|[^A-Za-z0-9_]){word}"));
    let pronoun = regex(r"(?i)^(?:i|you|he|she|we|it|they|to|the)");
    let inner = regex(&format!(r"(?m)(?:^|[^A-Za-z0-9_]){word}"));
    gsub_checked(
        text,
        re,
        |t, c| c.get(0).is_some_and(|m| word_ends_at(t, m.end())),
        |c| {
            let matched = &c[0];
            if pronoun.is_match(matched) {
                matched.to_string()
            } else {
                inner.replace_all(matched, format!("/{den}")).into_owned()
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_241_number_words_become_digits() {
        assert_eq!(numerize("one hour"), "1 hour");
        assert_eq!(numerize("twenty seven minutes"), "27 minutes");
        assert_eq!(numerize("thirty-one days"), "31 days");
        assert_eq!(numerize("one hundred and fifty"), "150");
        assert_eq!(numerize("twelve hundred"), "1200");
        assert_eq!(numerize("a day"), "1 day");
    }

    #[test]
    fn rule_241_digits_and_unit_words_are_kept() {
        assert_eq!(numerize("3 mins 4 sec"), "3 mins 4 sec");
        assert_eq!(numerize("never"), "never");
        assert_eq!(numerize("pennyweight"), "pennyweight");
        assert_eq!(numerize("11/02/2007"), "11/02/2007");
    }

    #[test]
    fn rule_241_fractions_and_ordinals_follow_the_gem() {
        assert_eq!(numerize("three and a half hours"), "3.5 hours");
        assert_eq!(numerize("one and a quarter"), "1.25");
        assert_eq!(numerize("half"), "1/2");
        assert_eq!(numerize("second"), "2nd");
        assert_eq!(numerize("the fourth"), "the 4th");
        assert_eq!(numerize("I want to quarter"), "I want to quarter");
    }
}
