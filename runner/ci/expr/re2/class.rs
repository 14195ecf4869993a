//! Bracketed classes and escaped characters, parsed as RE2's
//! `ParseCharClass` and `ParseEscape` do.

use std::fmt::Write as _;

use super::translator::Translator;

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

impl Translator<'_> {
    /// RE2's `ParseEscape`: one escaped character.
    pub(super) fn escaped_char(&mut self) -> Result<char, String> {
        let start = self.pos;
        self.pos += 1;
        let bad = |t: &Self| format!("invalid escape sequence: {}", &t.src[start..t.pos]);
        let Some(c) = self.bump() else {
            return Err("trailing \\".into());
        };
        let code = match c {
            '1'..='7' if !self.peek().is_some_and(|d| ('0'..='7').contains(&d)) => {
                // A lone digit would be a backreference.
                return Err(bad(self));
            }
            '0'..='7' => {
                let mut code = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.pos += 1;
                            code = code * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                code
            }
            'x' => self.hex_escape().ok_or_else(|| bad(self))?,
            'n' => '\n' as u32,
            'r' => '\r' as u32,
            't' => '\t' as u32,
            'a' => 0x07,
            'f' => 0x0c,
            'v' => 0x0b,
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => c as u32,
            _ => return Err(bad(self)),
        };
        char::from_u32(code).ok_or_else(|| bad(self))
    }

    /// After `\x`: `{hex...}` or exactly two hex digits.
    fn hex_escape(&mut self) -> Option<u32> {
        if self.eat('{') {
            let len = self.rest().find(|c: char| !c.is_ascii_hexdigit())?;
            let digits = &self.rest()[..len];
            let code = u32::from_str_radix(digits, 16)
                .ok()
                .filter(|&c| c <= 0x10_FFFF)?;
            self.pos += len;
            self.eat('}').then_some(code)
        } else {
            let digits = self.rest().get(..2)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            self.pos += 2;
            u32::from_str_radix(digits, 16).ok()
        }
    }

    /// `\pL`, `\p{Greek}`, `\P{^Greek}` and so on.
    pub(super) fn unicode_class(&mut self) -> Result<String, String> {
        let start = self.pos;
        let mut negated = self.rest().starts_with("\\P");
        self.pos += 2;
        let bad = |t: &Self| format!("invalid character class range: {}", &t.src[start..t.pos]);
        let name = match self.bump() {
            None => return Err(bad(self)),
            Some('{') => {
                let Some(len) = self.rest().find('}') else {
                    return Err(bad(self));
                };
                let name = &self.src[self.pos..self.pos + len];
                self.pos += len + 1;
                name
            }
            Some(c) => &self.src[self.pos - c.len_utf8()..self.pos],
        };
        let name = match name.strip_prefix('^') {
            Some(stripped) => {
                negated = !negated;
                stripped
            }
            None => name,
        };
        // RE2 knows general categories and script names, which are written
        // with a capital letter and underscores.
        let plausible = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
        if !plausible {
            return Err(bad(self));
        }
        Ok(format!("\\{}{{{name}}}", if negated { 'P' } else { 'p' }))
    }

    /// A bracketed class, parsed as RE2's `ParseCharClass` does.
    pub(super) fn class(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        self.out.push('[');
        if self.eat('^') {
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let missing = |t: &Self| format!("missing ]: {}", &t.src[start..]);
            let Some(c) = self.peek() else {
                return Err(missing(self));
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            let rest = self.rest();
            if rest.len() > 2 && rest.starts_with("[:") {
                // RE2 looks for the closing `:]` anywhere further on.
                if let Some(end) = rest[2..].find(":]") {
                    let full = &rest[..end + 4];
                    let name = &rest[2..end + 2];
                    let known = POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name));
                    if !known {
                        return Err(format!("invalid character class range: {full}"));
                    }
                    self.out.push_str(full);
                    self.pos += full.len();
                    continue;
                }
            }
            if rest.len() > 2 && (rest.starts_with("\\p") || rest.starts_with("\\P")) {
                let class = self.unicode_class()?;
                self.out.push_str(&class);
                continue;
            }
            if let Some(class) = rest
                .strip_prefix('\\')
                .and_then(|r| r.chars().next())
                .and_then(perl_class)
            {
                self.pos += 2;
                self.out.push_str(class);
                continue;
            }
            let lo = self.class_char().ok_or_else(|| missing(self))??;
            let rest = self.rest();
            if rest.len() >= 2 && rest.starts_with('-') && !rest[1..].starts_with(']') {
                self.pos += 1;
                let hi = self.class_char().ok_or_else(|| missing(self))??;
                if hi < lo {
                    return Err(format!("invalid character class range: {lo}-{hi}"));
                }
                push_char(&mut self.out, lo);
                self.out.push('-');
                push_char(&mut self.out, hi);
            } else {
                push_char(&mut self.out, lo);
            }
        }
        self.out.push(']');
        self.atom(1);
        Ok(())
    }

    /// One character inside brackets; `None` at the end of the pattern.
    fn class_char(&mut self) -> Option<Result<char, String>> {
        match self.peek()? {
            '\\' => Some(self.escaped_char()),
            c => {
                self.pos += c.len_utf8();
                Some(Ok(c))
            }
        }
    }
}

/// RE2's ASCII-only Perl classes, as bracket expressions the crate reads the
/// same way both alone and nested inside another class.
pub(super) fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x{0C}\\r\\x{20}]",
        'S' => "[^\\t\\n\\x{0C}\\r\\x{20}]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

pub(super) fn push_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::super::translator::tests::{compiles, rejected};

    #[test]
    fn rule_111_perl_classes_are_ascii() {
        let digits = compiles(r"^\d+$");
        assert!(digits.is_match("123"));
        assert!(
            !digits.is_match("١٢٣"),
            "Arabic-Indic digits are not \\d in RE2"
        );
        let word = compiles(r"^\w+$");
        assert!(word.is_match("release_1"));
        assert!(!word.is_match("café"));
        assert!(
            !compiles(r"\s").is_match("\u{0b}"),
            "RE2's \\s has no vertical tab"
        );
        assert!(compiles(r"[\d\s]").is_match(" "));
        assert!(compiles(r"^[^\W]$").is_match("a"));
        // ASCII word boundary: `é` is not a word character.
        assert!(compiles(r"\bx").is_match("éx"));
    }
    #[test]
    fn re2_literal_braces_and_brackets() {
        let re = compiles(r"^a{,3}$");
        assert!(re.is_match("a{,3}"));
        assert!(compiles(r"^x{01}$").is_match("x{01}"));
        assert!(compiles(r"^a{2,3}$").is_match("aaa"));
        assert!(compiles(r"^a{2,}$").is_match("aaaa"));
        let class = compiles(r"^[a&&b~~[]+$");
        assert!(class.is_match("&~[ab"));
        assert!(compiles(r"^[!--]+$").is_match("!-,"));
        rejected(r"[c--d]");
        assert!(compiles(r"^[]a]+$").is_match("]a"));
        assert!(compiles(r"^[[:alpha:][:^digit:]]+$").is_match("ab-"));
        assert!(compiles(r"^a<b>$").is_match("a<b>"));
        assert!(compiles(r"^\<\>$").is_match("<>"));
        assert!(compiles(r"^\_$").is_match("_"));
    }
    #[test]
    fn re2_escapes() {
        assert!(compiles(r"^\x40$").is_match("@"));
        assert!(compiles(r"^\x{1F600}$").is_match("😀"));
        assert!(compiles(r"^\101\0$").is_match("A\0"));
        assert!(compiles(r"^\Q.*\E+$").is_match(".**"));
        assert!(compiles(r"^\t\n\r\f\v\a$").is_match("\t\n\r\x0c\x0b\x07"));
        assert!(compiles(r"^\pL\p{Greek}\P{N}$").is_match("aλx"));
        assert!(compiles(r"^\p{^Greek}$").is_match("a"));
        assert!(compiles(r"^[\p{Lu}]$").is_match("A"));
    }
    #[test]
    fn re2_case_folding_covers_classes() {
        assert!(compiles("(?i)[a-c]+").is_match("ABC"));
        assert!(compiles(r"(?i)\x41").is_match("a"));
        assert!(!compiles("(?i)[^a]").is_match("A"));
    }
}
