//! Java `java.util.regex` compatibility on top of the `regex` crate.
//!
//! KDA's `REGEX_REPLACE` and `REGEX_LOG_PARSE` take Java regular expressions and Java
//! replacement strings. The `regex` crate (linear-time, no backtracking) covers most of Java's
//! syntax; [`translate`] rewrites the parts that differ:
//!
//! * `\d \D \w \W \s \S` are ASCII-only in Java (without `UNICODE_CHARACTER_CLASS`); they become
//!   the ASCII classes `[[:digit:]]`, `[[:word:]]`, `[[:space:]]` (and negations), inside and
//!   outside brackets.
//! * `\Q...\E` quoting is expanded into escaped literals; `\e` becomes `\x1B`, `\uXXXX` becomes
//!   `\x{XXXX}`, `\Z` becomes `(?:\n?\z)`.
//! * Possessive quantifiers (`*+`, `++`, `?+`, `{n,m}+`) and atomic groups `(?>...)` have no
//!   equivalent; they are treated as their greedy / non-atomic forms. This only differs from
//!   Java when backtracking *into* them would change the match.
//! * Look-around (`(?=`, `(?!`, `(?<=`, `(?<!`) and back-references (`\1`, `\k<name>`) are not
//!   supported by a linear-time engine: they are rejected with an error that names the construct.
//!
//! [`JavaReplacement`] implements `Matcher.appendReplacement` semantics: `$n` and `${name}` are
//! group references (`$12` is group 12 only if the pattern has 12 groups, else group 1 followed
//! by `2`), `\x` is a literal `x`, and a group that did not participate contributes nothing.

use regex::{Captures, Regex, RegexBuilder};

/// Translates a Java regular expression into `regex`-crate syntax. Errors name the construct.
pub fn translate(java: &str) -> Result<String, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 8);
    let mut i = 0;
    let mut class_depth = 0usize;
    // true right after something a quantifier can follow (used for possessive `+`)
    let mut after_quantifier = false;
    while i < chars.len() {
        let c = chars[i];
        let was_after_quantifier = after_quantifier;
        after_quantifier = false;
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err("trailing backslash at the end of the pattern".into());
                };
                i += 2;
                match next {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        let (name, negated) = match next {
                            'd' => ("digit", false),
                            'D' => ("digit", true),
                            'w' => ("word", false),
                            'W' => ("word", true),
                            's' => ("space", false),
                            _ => ("space", true),
                        };
                        let class = if negated {
                            format!("[^[:{name}:]]")
                        } else if class_depth > 0 {
                            format!("[:{name}:]")
                        } else {
                            format!("[[:{name}:]]")
                        };
                        out.push_str(&class);
                    }
                    'Q' => {
                        let mut literal = String::new();
                        while i < chars.len() {
                            if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            literal.push(chars[i]);
                            i += 1;
                        }
                        out.push_str(&regex::escape(&literal));
                    }
                    'E' => {} // stray \E is ignored by Java
                    'e' => out.push_str(r"\x1B"),
                    'Z' => out.push_str(r"(?:\n?\z)"),
                    'u' => {
                        let hex: String = chars.iter().skip(i).take(4).collect();
                        if hex.len() != 4 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                            return Err(format!("invalid unicode escape \\u{hex}"));
                        }
                        i += 4;
                        out.push_str(&format!("\\x{{{hex}}}"));
                    }
                    '1'..='9' => {
                        return Err(format!(
                            "back-reference \\{next} is not supported (linear-time regex engine)"
                        ))
                    }
                    'k' => return Err(
                        "named back-reference \\k<...> is not supported (linear-time regex engine)"
                            .into(),
                    ),
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                continue;
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                i += 1;
                // a leading ']' (or '^]') is a literal in Java too; copy it verbatim
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
                i += 1;
                continue;
            }
            _ if class_depth > 0 => {
                // Java allows unescaped '[' only as nested classes (handled above); copy others
                out.push(c);
                i += 1;
                continue;
            }
            '(' => {
                let rest: String = chars.iter().skip(i).take(4).collect();
                if rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                {
                    return Err(format!(
                        "look-around '{}' is not supported (linear-time regex engine)",
                        if rest.starts_with("(?<") {
                            &rest[..4]
                        } else {
                            &rest[..3]
                        }
                    ));
                }
                if rest.starts_with("(?>") {
                    out.push_str("(?:");
                    i += 3;
                    continue;
                }
                out.push('(');
                i += 1;
                continue;
            }
            '*' | '+' | '?' => {
                if c == '+' && was_after_quantifier {
                    // possessive: approximate with greedy
                    i += 1;
                    continue;
                }
                out.push(c);
                i += 1;
                if c == '?' && was_after_quantifier {
                    // lazy modifier; nothing can follow it
                    continue;
                }
                after_quantifier = true;
                continue;
            }
            '{' => {
                // a counted repetition {n}, {n,}, {n,m}
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ',') {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '}' && j > i + 1 {
                    out.extend(&chars[i..=j]);
                    i = j + 1;
                    after_quantifier = true;
                } else {
                    out.push_str(r"\{");
                    i += 1;
                }
                continue;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Compiles a Java regular expression (see [`translate`]); errors name `func`.
pub fn compile(func: &str, java: &str) -> datafusion::common::Result<Regex> {
    let translated = translate(java).map_err(|e| {
        datafusion::common::DataFusionError::Execution(format!(
            "{func}: invalid regular expression '{java}': {e}"
        ))
    })?;
    RegexBuilder::new(&translated)
        .size_limit(10 * (1 << 20))
        .build()
        .map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!(
                "{func}: invalid regular expression '{java}': {e}"
            ))
        })
}

/// One piece of a parsed Java replacement string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Named(String),
}

/// A parsed Java replacement string (`Matcher.appendReplacement` syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaReplacement {
    pieces: Vec<Piece>,
}

impl JavaReplacement {
    /// Parses `replacement` for `regex`: group numbers are resolved against its group count
    /// like Java does. Errors are Java's ("Illegal group reference", "No group n", ...).
    pub fn parse(replacement: &str, regex: &Regex) -> Result<Self, String> {
        let group_count = regex.captures_len() - 1;
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let chars: Vec<char> = replacement.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    let Some(&next) = chars.get(i + 1) else {
                        return Err("character to be escaped is missing".into());
                    };
                    literal.push(next);
                    i += 2;
                }
                '$' => {
                    i += 1;
                    let Some(&next) = chars.get(i) else {
                        return Err("Illegal group reference: group index is missing".into());
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    if next == '{' {
                        let end = chars[i..]
                            .iter()
                            .position(|&c| c == '}')
                            .ok_or("named capturing group is missing trailing '}'")?;
                        let name: String = chars[i + 1..i + end].iter().collect();
                        if name.is_empty() {
                            return Err("named capturing group has 0 length name".into());
                        }
                        if !regex.capture_names().flatten().any(|n| n == name) {
                            return Err(format!("No group with name {{{name}}}"));
                        }
                        pieces.push(Piece::Named(name));
                        i += end + 1;
                    } else if let Some(d) = next.to_digit(10) {
                        let mut group = d as usize;
                        if group > group_count {
                            return Err(format!("No group {group}"));
                        }
                        i += 1;
                        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            let candidate = group * 10 + d as usize;
                            if candidate > group_count {
                                break;
                            }
                            group = candidate;
                            i += 1;
                        }
                        pieces.push(Piece::Group(group));
                    } else {
                        return Err("Illegal group reference".into());
                    }
                }
                c => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// Appends the expansion for one match to `out`.
    pub fn expand(&self, caps: &Captures<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(g) => {
                    if let Some(m) = caps.get(*g) {
                        out.push_str(m.as_str());
                    }
                }
                Piece::Named(n) => {
                    if let Some(m) = caps.name(n) {
                        out.push_str(m.as_str());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        compile("T", p).unwrap()
    }

    #[test]
    fn ascii_classes_and_escapes() {
        assert_eq!(
            translate(r"\d+\s\w").unwrap(),
            "[[:digit:]]+[[:space:]][[:word:]]"
        );
        assert_eq!(translate(r"[\d.]").unwrap(), "[[:digit:].]");
        assert_eq!(translate(r"[^\D]").unwrap(), "[^[^[:digit:]]]");
        assert!(!re(r"^\d$").is_match("٣")); // Arabic-Indic digit: not \d in Java
        assert!(re(r"^\d$").is_match("3"));
        assert!(re(r"^\Qa.b*\E$").is_match("a.b*"));
        assert!(!re(r"^\Qa.b\E$").is_match("axb"));
        assert!(re(r"^\u0041$").is_match("A"));
        assert!(re(r"^[]a]+$").is_match("]a]"));
    }

    #[test]
    fn possessive_and_atomic_are_approximated() {
        assert_eq!(translate("a*+b++c?+d{2,3}+").unwrap(), "a*b+c?d{2,3}");
        assert_eq!(translate("a*?b+?").unwrap(), "a*?b+?");
        assert_eq!(translate("(?>ab)").unwrap(), "(?:ab)");
        assert_eq!(translate("a{x").unwrap(), r"a\{x");
        assert!(re("^[a-z]++$").is_match("abc"));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        assert!(translate("a(?=b)").unwrap_err().contains("(?="));
        assert!(translate("(?<!x)y").unwrap_err().contains("(?<!"));
        assert!(translate(r"(a)\1").unwrap_err().contains(r"\1"));
        let e = compile("REGEX_REPLACE", "(").unwrap_err().to_string();
        assert!(
            e.contains("REGEX_REPLACE: invalid regular expression '('"),
            "{e}"
        );
    }

    #[test]
    fn replacement_group_refs() {
        let r = re("(a)(b)?(c)");
        let rep = JavaReplacement::parse("[$3$1$2]", &r).unwrap();
        let caps = r.captures("ac").unwrap();
        let mut out = String::new();
        rep.expand(&caps, &mut out);
        assert_eq!(out, "[ca]");
        // $12 with 3 groups is group 1 then '2'
        let rep = JavaReplacement::parse("$12", &r).unwrap();
        let mut out = String::new();
        rep.expand(&r.captures("abc").unwrap(), &mut out);
        assert_eq!(out, "a2");
        // escapes
        let rep = JavaReplacement::parse(r"\$1\\", &r).unwrap();
        let mut out = String::new();
        rep.expand(&r.captures("abc").unwrap(), &mut out);
        assert_eq!(out, r"$1\");
        // named
        let n = re("(?<word>x+)");
        let rep = JavaReplacement::parse("<${word}>", &n).unwrap();
        let mut out = String::new();
        rep.expand(&n.captures("xx").unwrap(), &mut out);
        assert_eq!(out, "<xx>");
    }

    #[test]
    fn replacement_errors_like_java() {
        let r = re("(a)");
        assert_eq!(JavaReplacement::parse("$2", &r).unwrap_err(), "No group 2");
        assert!(JavaReplacement::parse("$", &r)
            .unwrap_err()
            .contains("Illegal group reference"));
        assert!(JavaReplacement::parse("$x", &r)
            .unwrap_err()
            .contains("Illegal group reference"));
        assert!(JavaReplacement::parse("\\", &r)
            .unwrap_err()
            .contains("escaped"));
        assert!(JavaReplacement::parse("${nope}", &r)
            .unwrap_err()
            .contains("No group with name"));
    }
}
