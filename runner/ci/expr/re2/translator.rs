//! The pattern-level part of the translation: groups, flags, repetition,
//! anchors and escapes outside brackets.

use std::fmt::Write as _;

use super::class::{perl_class, push_char};

/// RE2's `kMaxRepeat`.
const MAX_REPEAT: u64 = 1000;

/// Rewrites an RE2 pattern for the `regex` crate, or says why RE2 would
/// reject it (in RE2's words, roughly).
pub(crate) fn translate(src: &str) -> Result<String, String> {
    let mut t = Translator {
        src,
        pos: 0,
        out: String::with_capacity(src.len() * 2),
        groups: vec![1],
        names: Vec::new(),
        can_repeat: false,
        last_atom: 1,
    };
    t.run()?;
    Ok(t.out)
}

pub(super) struct Translator<'s> {
    pub(super) src: &'s str,
    pub(super) pos: usize,
    pub(super) out: String,
    /// One entry per open group (plus the whole pattern): the largest product
    /// of nested repetition counts seen inside it so far.
    groups: Vec<u64>,
    names: Vec<String>,
    /// Whether there is something for a repetition operator to apply to.
    can_repeat: bool,
    /// The nested repetition product of the most recent atom.
    last_atom: u64,
}

impl<'s> Translator<'s> {
    pub(super) fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(super) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub(super) fn atom(&mut self, product: u64) {
        self.can_repeat = true;
        self.last_atom = product;
        if let Some(top) = self.groups.last_mut() {
            *top = (*top).max(product);
        }
    }

    fn literal(&mut self, c: char) {
        push_char(&mut self.out, c);
        self.atom(1);
    }

    fn run(&mut self) -> Result<(), String> {
        let mut last_unary = false;
        while let Some(c) = self.peek() {
            let mut unary = false;
            match c {
                '(' if self.rest().starts_with("(?") => self.perl_group()?,
                '(' => {
                    self.pos += 1;
                    self.open_group("(");
                }
                '|' => {
                    self.pos += 1;
                    self.out.push('|');
                    self.can_repeat = false;
                }
                ')' => {
                    self.pos += 1;
                    if self.groups.len() < 2 {
                        return Err("unexpected ): missing (".into());
                    }
                    let inner = self.groups.pop().unwrap_or(1);
                    self.out.push(')');
                    self.atom(inner);
                }
                '^' | '$' => {
                    self.pos += 1;
                    let _ = write!(self.out, "(?:{c})");
                    self.atom(1);
                }
                '.' => {
                    self.pos += 1;
                    self.out.push('.');
                    self.atom(1);
                }
                '[' => self.class()?,
                '*' | '+' | '?' => {
                    self.pos += 1;
                    let lazy = self.eat('?');
                    self.check_repeat(last_unary, &c.to_string())?;
                    self.out.push(c);
                    if lazy {
                        self.out.push('?');
                    }
                    unary = true;
                }
                '{' => match parse_count(self.rest()) {
                    None => {
                        self.pos += 1;
                        self.literal('{');
                    }
                    Some((lo, hi, len)) => {
                        let op = &self.src[self.pos..self.pos + len];
                        self.pos += len;
                        let lazy = self.eat('?');
                        self.counted(lo, hi, op, last_unary)?;
                        if lazy {
                            self.out.push('?');
                        }
                        unary = true;
                    }
                },
                '\\' => self.escape()?,
                _ => {
                    self.pos += c.len_utf8();
                    self.literal(c);
                }
            }
            last_unary = unary;
        }
        if self.groups.len() > 1 {
            return Err("missing ): unclosed group".into());
        }
        Ok(())
    }

    fn open_group(&mut self, opener: &str) {
        self.out.push_str(opener);
        self.groups.push(1);
        self.can_repeat = false;
    }

    fn check_repeat(&self, last_unary: bool, op: &str) -> Result<(), String> {
        if last_unary {
            return Err(format!("bad repetition operator: {op}"));
        }
        if !self.can_repeat {
            return Err(format!("missing argument to repetition operator: {op}"));
        }
        Ok(())
    }

    fn counted(
        &mut self,
        lo: u64,
        hi: Option<u64>,
        op: &str,
        last_unary: bool,
    ) -> Result<(), String> {
        if last_unary {
            return Err(format!("bad repetition operator: {op}"));
        }
        if hi.is_some_and(|h| h < lo) || lo > MAX_REPEAT || hi.is_some_and(|h| h > MAX_REPEAT) {
            return Err(format!("bad repetition operator: {op}"));
        }
        if !self.can_repeat {
            return Err(format!("missing argument to repetition operator: {op}"));
        }
        // RE2 also bounds the product of counts along any nesting chain.
        let count = hi.unwrap_or(lo);
        if count > 0 {
            let product = self.last_atom.saturating_mul(count);
            if (lo >= 2 || hi.is_some_and(|h| h >= 2)) && product > MAX_REPEAT {
                return Err(format!("bad repetition operator: {op}"));
            }
            self.atom(product);
        }
        let _ = match hi {
            Some(h) if h == lo => write!(self.out, "{{{lo}}}"),
            Some(h) => write!(self.out, "{{{lo},{h}}}"),
            None => write!(self.out, "{{{lo},}}"),
        };
        Ok(())
    }

    /// `(?flags)`, `(?flags:...)`, `(?P<name>...)` and `(?<name>...)`.
    fn perl_group(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 2;
        let named = if self.rest().starts_with("P<") {
            Some(2)
        } else if self.rest().starts_with('<') {
            Some(1)
        } else {
            None
        };
        if let Some(skip) = named {
            let after = self.pos + skip;
            let Some(len) = self.src[after..].find('>') else {
                return Err(format!(
                    "invalid named capture group: {}",
                    &self.src[start..]
                ));
            };
            let name = &self.src[after..after + len];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!("invalid named capture group: {name}"));
            }
            if self.names.iter().any(|n| n == name) {
                return Err(format!("duplicate capture group name: {name}"));
            }
            self.names.push(name.to_string());
            self.pos = after + len + 1;
            // The crate is stricter about names; matching never needs them.
            self.open_group("(");
            return Ok(());
        }
        // Final state of each flag the group mentions, in `imsU` order.
        let mut flags: [Option<bool>; 4] = [None; 4];
        let mut negated = false;
        let mut saw_flag = false;
        let bad = |t: &Self| {
            format!(
                "invalid or unsupported Perl syntax: {}",
                &t.src[start..t.pos]
            )
        };
        let opens = loop {
            let Some(c) = self.bump() else {
                return Err(bad(self));
            };
            match c {
                'i' | 'm' | 's' | 'U' => {
                    saw_flag = true;
                    let slot = "imsU".find(c).unwrap_or(0);
                    flags[slot] = Some(!negated);
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' => break true,
                ')' => break false,
                _ => return Err(bad(self)),
            }
        };
        if negated && !saw_flag {
            return Err(bad(self));
        }
        let mut spec = String::new();
        let mut off = String::new();
        for (c, state) in "imsU".chars().zip(flags) {
            match state {
                Some(true) => spec.push(c),
                Some(false) => off.push(c),
                None => {}
            }
        }
        if !off.is_empty() {
            spec.push('-');
            spec.push_str(&off);
        }
        if opens {
            self.open_group(&format!("(?{spec}:"));
        } else if !spec.is_empty() {
            let _ = write!(self.out, "(?{spec})");
        }
        Ok(())
    }

    fn escape(&mut self) -> Result<(), String> {
        let Some(next) = self.rest()[1..].chars().next() else {
            return Err("trailing \\".into());
        };
        let simple = match next {
            'b' => Some("(?:(?-u:\\b))"),
            'B' => Some("(?:(?-u:\\B))"),
            'A' => Some("(?:\\A)"),
            'z' => Some("(?:\\z)"),
            // Any byte; on text that is always valid UTF-8, any character.
            'C' => Some("(?s:.)"),
            _ => None,
        };
        if let Some(replacement) = simple {
            self.pos += 2;
            self.out.push_str(replacement);
            self.atom(1);
            return Ok(());
        }
        if next == 'Q' {
            self.pos += 2;
            while !self.rest().is_empty() && !self.rest().starts_with("\\E") {
                if let Some(c) = self.bump() {
                    self.literal(c);
                }
            }
            self.pos = (self.pos + 2).min(self.src.len());
            return Ok(());
        }
        if next == 'p' || next == 'P' {
            let class = self.unicode_class()?;
            self.out.push_str(&class);
            self.atom(1);
            return Ok(());
        }
        if let Some(class) = perl_class(next) {
            self.pos += 2;
            self.out.push_str(class);
            self.atom(1);
            return Ok(());
        }
        let c = self.escaped_char()?;
        self.literal(c);
        Ok(())
    }
}

/// RE2's `MaybeParseRepetition`: `{n}`, `{n,}` or `{n,m}` with decimal
/// numbers without leading zeros. Returns the bounds and the length.
fn parse_count(s: &str) -> Option<(u64, Option<u64>, usize)> {
    fn int(s: &str, pos: &mut usize) -> Option<u64> {
        let digits = s[*pos..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || (digits > 1 && s.as_bytes()[*pos] == b'0') || digits > 9 {
            return None;
        }
        let n = s[*pos..*pos + digits].parse().ok()?;
        *pos += digits;
        Some(n)
    }
    let mut pos = 1;
    let lo = int(s, &mut pos)?;
    let hi = if s[pos..].starts_with(',') {
        pos += 1;
        if s[pos..].starts_with('}') {
            None
        } else {
            Some(int(s, &mut pos)?)
        }
    } else {
        Some(lo)
    };
    s[pos..].starts_with('}').then_some((lo, hi, pos + 1))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn compiles(re2: &str) -> regex::Regex {
        let translated = translate(re2).unwrap_or_else(|e| panic!("{re2}: {e}"));
        regex::Regex::new(&translated).unwrap_or_else(|e| panic!("{re2} -> {translated}: {e}"))
    }

    pub(crate) fn rejected(re2: &str) {
        assert!(translate(re2).is_err(), "{re2} should be rejected as RE2");
    }

    #[test]
    fn rule_111_lookaround_and_backreferences_are_rejected() {
        rejected(r"(?=a)");
        rejected(r"(?!a)");
        rejected(r"(?<=a)b");
        rejected(r"(a)\1");
        rejected(r"\Z");
        rejected(r"a**");
        rejected(r"a{2}{3}");
        rejected(r"*a");
        rejected(r"(|*)");
        rejected(r"a{1001}");
        rejected(r"(a{100}){100}");
        rejected(r"a{3,2}");
        rejected(r"[z-a]");
        rejected(r"[abc");
        rejected(r"(abc");
        rejected(r"abc)");
        rejected(r"\e");
        rejected(r"[[:foo:]]");
        rejected(r"(?x)a");
        rejected(r"(?i-)a");
        rejected(r"(?P<n>a)(?P<n>b)");
        rejected("\\");
    }
    #[test]
    fn re2_flags() {
        assert!(compiles("(?ii)abc").is_match("ABC"));
        assert!(compiles("(?i-i)abc").is_match("abc"));
        assert!(!compiles("(?i-i)abc").is_match("ABC"));
        assert!(compiles("(?)abc").is_match("abc"));
        assert!(compiles("(?m)^b$").is_match("a\nb\nc"));
        assert!(!compiles("^b$").is_match("a\nb\nc"));
        assert!(compiles("(?s)a.b").is_match("a\nb"));
        assert!(!compiles("a.b").is_match("a\nb"));
        assert_eq!(
            compiles("(?U)a+").find("aaa").map(|m| m.as_str()),
            Some("a")
        );
        assert!(compiles("(?P<1st>a)(?<x>b)(?i:c)").is_match("abC"));
        assert!(compiles("^*a").is_match("a"), "RE2 lets an anchor repeat");
    }
}
