//! Pattern translators of the log parsers: KDA's "Fast Regex" syntax, Apache/W3C log formats,
//! the IIS log format and the syslog line layout, each turned into an anchored `regex`.

use datafusion::common::{plan_err, Result};

/// Translates a `FAST_REGEX_LOG_PARSE` pattern (the dk.brics-automaton syntax KDA documents)
/// into an anchored `regex` with lazy quantifiers.
///
/// Supported: literal characters, `"quoted strings"`, `.` (any character), `[...]` / `[^...]`
/// classes with ranges, `|`, `(...)` (every parenthesised expression is a column), `?`, `*`,
/// `+`, `{n}`, `{n,}`, `{n,m}` (all lazy), `@` (any string, lazy), `#` (the empty language)
/// and `\c` escapes (`\c` is the literal `c`; as an extension `\d \D \s \S \w \W` are the ASCII
/// classes of Java regexes). Intersection `&`, complement `~` and named / numeric-interval
/// automata `<...>` are rejected with an error naming them.
pub fn fast_regex_to_regex(func: &str, pattern: &str) -> Result<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("^(?s:");
    let mut i = 0;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let Some(&next) = chars.get(i) else {
                    return plan_err!("{func}: trailing backslash in pattern '{pattern}'");
                };
                i += 1;
                out.push_str(&escape_char_or_class(next));
            }
            '"' => {
                let mut literal = String::new();
                let mut closed = false;
                while i < chars.len() {
                    let d = chars[i];
                    i += 1;
                    if d == '"' {
                        closed = true;
                        break;
                    }
                    literal.push(d);
                }
                if !closed {
                    return plan_err!("{func}: unterminated \"string\" in pattern '{pattern}'");
                }
                out.push_str(&format!("(?:{})", regex::escape(&literal)));
            }
            '[' => {
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                let mut closed = false;
                let mut first = true;
                while i < chars.len() {
                    let d = chars[i];
                    i += 1;
                    match d {
                        ']' if !first => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            let Some(&next) = chars.get(i) else { break };
                            i += 1;
                            out.push_str(&escape_in_class(next));
                        }
                        '-' => out.push('-'),
                        _ => out.push_str(&escape_in_class(d)),
                    }
                    first = false;
                }
                if !closed {
                    return plan_err!(
                        "{func}: unterminated character class in pattern '{pattern}'"
                    );
                }
                out.push(']');
            }
            '(' => {
                depth += 1;
                out.push('(');
            }
            ')' => {
                if depth == 0 {
                    return plan_err!("{func}: unbalanced ')' in pattern '{pattern}'");
                }
                depth -= 1;
                out.push(')');
            }
            '|' => out.push('|'),
            '.' => out.push('.'),
            '@' => out.push_str(".*?"),
            '#' => out.push_str(r"[^\s\S]"),
            '?' | '*' | '+' => {
                out.push(c);
                out.push('?');
            }
            '{' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == ',') {
                    i += 1;
                }
                if chars.get(i) != Some(&'}') || i == start {
                    return plan_err!("{func}: invalid repetition '{{' in pattern '{pattern}'");
                }
                let body: String = chars[start..i].iter().collect();
                i += 1;
                out.push('{');
                out.push_str(&body);
                out.push('}');
                if body.contains(',') {
                    out.push('?');
                }
            }
            '&' | '~' => {
                let what = if c == '&' {
                    "intersection"
                } else {
                    "complement"
                };
                return plan_err!(
                    "{func}: the Fast Regex {what} operator '{c}' is not supported (pattern '{pattern}'); escape it as \\{c} for a literal"
                );
            }
            '<' => {
                return plan_err!(
                    "{func}: named automata and numeric intervals '<...>' are not supported (pattern '{pattern}'); escape '<' as \\< for a literal"
                );
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    if depth != 0 {
        return plan_err!("{func}: unbalanced '(' in pattern '{pattern}'");
    }
    out.push_str(")$");
    Ok(out)
}

fn escape_char_or_class(c: char) -> String {
    match c {
        'd' => "[[:digit:]]".into(),
        'D' => "[^[:digit:]]".into(),
        's' => "[[:space:]]".into(),
        'S' => "[^[:space:]]".into(),
        'w' => "[[:word:]]".into(),
        'W' => "[^[:word:]]".into(),
        other => regex::escape(&other.to_string()),
    }
}

fn escape_in_class(c: char) -> String {
    match c {
        'd' | 'D' | 's' | 'S' | 'w' | 'W' => String::from(c), // literal letters inside [...]
        '[' | ']' | '\\' | '&' | '~' | '^' | '-' => format!("\\{c}"),
        other => other.to_string(),
    }
}

/// The Apache format strings of the predefined `W3C_LOG_PARSE` formats (KDA SQL reference).
/// `IIS` is handled separately ([`iis_regex`]).
pub fn predefined_w3c_format(name: &str) -> Option<&'static str> {
    let normalized: Vec<String> = name
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    match normalized.join(" ").as_str() {
        "COMMON" => Some(r#"%h %l %u %t "%r" %>s %b"#),
        "COMMON WITH VHOST" => Some(r#"%v %h %l %u %t "%r" %>s %b"#),
        "NCSA EXTENDED" => Some(r#"%h %l %u %t "%r" %>s %b "%[Referer]i" "%[User-agent]i""#),
        "REFERER" => Some("%[Referer]i ---> %U"),
        "AGENT" => Some("%[User-agent]i"),
        _ => None,
    }
}

/// Whether `name` is the predefined `IIS` format.
pub fn is_iis(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("IIS")
}

/// The Microsoft IIS log format: 15 comma-separated fields (client IP, user name, date, time,
/// service, server name, server IP, time taken, client bytes, server bytes, status, Windows
/// status, request type, target, parameters), each followed by `", "`; a trailing comma is
/// optional.
pub fn iis_regex() -> String {
    let field = r"\s*([^,]*?)\s*";
    let mut out = String::from("^");
    for i in 0..15 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(field);
    }
    out.push_str(",?\\s*$");
    out
}

/// Translates an Apache `mod_log_config` format (`%h %l %u %t "%r" %>s %b`) into an anchored
/// regex with one capture group per directive. KDA also writes header/cookie/environment
/// names in square brackets (`%[Referer]i`); both `%{...}x` and `%[...]x` are accepted, as are
/// the `<`, `>`, `!` and status-code modifiers. `%%` is a literal percent sign.
///
/// A directive between double quotes captures everything up to the closing quote (`\"` is
/// allowed inside); `%t` captures the text between its square brackets; any other directive
/// captures a run of non-blank characters, except at the very end of the format, where it
/// takes the rest of the line (so `AGENT`, `%[User-agent]i`, keeps a user agent with blanks).
pub fn apache_format_to_regex(func: &str, format: &str) -> Result<(String, usize)> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::from("^");
    let mut groups = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            i += 1;
            continue;
        }
        let directive_start = i;
        i += 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        // modifiers: <, >, !, status codes
        while i < chars.len() && matches!(chars[i], '<' | '>' | '!' | ',' | '0'..='9') {
            i += 1;
        }
        let mut has_param = false;
        if let Some(&open) = chars.get(i) {
            if open == '{' || open == '[' {
                let close = if open == '{' { '}' } else { ']' };
                match chars[i..].iter().position(|&ch| ch == close) {
                    Some(end) => {
                        i += end + 1;
                        has_param = true;
                    }
                    None => {
                        return plan_err!("{func}: unterminated '{open}' in log format '{format}'")
                    }
                }
            }
        }
        let Some(&letter) = chars.get(i) else {
            return plan_err!("{func}: incomplete directive at the end of log format '{format}'");
        };
        if !letter.is_ascii_alphabetic() {
            let text: String = chars[directive_start..=i].iter().collect();
            return plan_err!("{func}: invalid directive '{text}' in log format '{format}'");
        }
        i += 1;
        let quoted =
            directive_start > 0 && chars[directive_start - 1] == '"' && chars.get(i) == Some(&'"');
        let group = if quoted {
            r#"((?:[^"\\]|\\.)*)"#
        } else if letter == 't' && !has_param {
            r"\[([^\]]*)\]"
        } else if i == chars.len() {
            r"(.*)"
        } else {
            r"(\S*)"
        };
        out.push_str(group);
        groups += 1;
    }
    out.push('$');
    if groups == 0 {
        return plan_err!("{func}: log format '{format}' has no % directives");
    }
    Ok((out, groups))
}

/// The RFC 3164 syslog layout: an optional `<PRI>`, then `Mmm dd HH:mm:ss`, then the rest
/// (host and message).
pub const SYSLOG_REGEX: &str =
    r"^(?:<\d{1,3}>)?([A-Za-z]{3}\s+\d{1,2}\s+\d{1,2}:\d{2}:\d{2})\s+(.*)$";

/// The `SimpleDateFormat` of the syslog timestamp.
pub const SYSLOG_TIME_FORMAT: &str = "MMM d HH:mm:ss";

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn caps(re: &str, s: &str) -> Option<Vec<Option<String>>> {
        let re = Regex::new(re).unwrap();
        re.captures(s).map(|c| {
            (1..c.len())
                .map(|i| c.get(i).map(|m| m.as_str().to_string()))
                .collect()
        })
    }

    #[test]
    fn fast_regex_translation() {
        let re = fast_regex_to_regex("F", r#"(.*)_(._.*)_.*"#).unwrap();
        assert_eq!(re, r"^(?s:(.*?)_(._.*?)_.*?)$");
        // lazy: each group takes as little as the rest of the pattern allows
        let lazy = fast_regex_to_regex("F", r#"(\d+)"-"([a-z]+)@"#).unwrap();
        assert_eq!(
            caps(&lazy, "12-abc rest"),
            Some(vec![Some("12".into()), Some("a".into())])
        );
        let re = fast_regex_to_regex("F", r#"(\d+)"-"([a-z]+)" "@"#).unwrap();
        assert_eq!(
            caps(&re, "12-abc rest"),
            Some(vec![Some("12".into()), Some("abc".into())])
        );
        assert_eq!(caps(&re, "x12-abc"), None);
        let re = fast_regex_to_regex("F", "[^ ]+ ([0-9]{2,3}) #?").unwrap();
        assert_eq!(caps(&re, "GET 200 "), Some(vec![Some("200".into())]));
    }

    #[test]
    fn fast_regex_rejects_unsupported() {
        for (p, needle) in [
            ("a&b", "intersection"),
            ("~a", "complement"),
            ("<1-10>", "numeric intervals"),
            ("(a", "unbalanced '('"),
            ("a)", "unbalanced ')'"),
            ("\"abc", "unterminated"),
            ("[abc", "unterminated character class"),
            ("a{x}", "invalid repetition"),
        ] {
            let e = fast_regex_to_regex("FAST_REGEX_LOG_PARSE", p)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("FAST_REGEX_LOG_PARSE") && e.contains(needle),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn apache_common_format() {
        let (re, n) =
            apache_format_to_regex("W", predefined_w3c_format("common").unwrap()).unwrap();
        assert_eq!(n, 7);
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        assert_eq!(
            caps(&re, line).unwrap(),
            vec![
                Some("127.0.0.1".into()),
                Some("-".into()),
                Some("frank".into()),
                Some("10/Oct/2000:13:55:36 -0700".into()),
                Some("GET /apache_pb.gif HTTP/1.0".into()),
                Some("200".into()),
                Some("2326".into()),
            ]
        );
    }

    #[test]
    fn apache_other_formats() {
        let (re, n) =
            apache_format_to_regex("W", predefined_w3c_format("NCSA  extended").unwrap()).unwrap();
        assert_eq!(n, 9);
        let line = r#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 304 - "http://x/\"q\"" "Mozilla/5.0 (X11)""#;
        let got = caps(&re, line).unwrap();
        assert_eq!(got[7].as_deref(), Some(r#"http://x/\"q\""#));
        assert_eq!(got[8].as_deref(), Some("Mozilla/5.0 (X11)"));
        let (re, _) =
            apache_format_to_regex("W", predefined_w3c_format("REFERER").unwrap()).unwrap();
        assert_eq!(
            caps(&re, "http://a/b ---> /index.html").unwrap(),
            vec![Some("http://a/b".into()), Some("/index.html".into())]
        );
        assert!(predefined_w3c_format("bogus").is_none());
        let (re, n) = apache_format_to_regex("W", "%{X-Forwarded-For}i 100%% %D").unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            caps(&re, "9.9.9.9 100% 1234").unwrap()[1].as_deref(),
            Some("1234")
        );
        assert!(apache_format_to_regex("W", "no directives").is_err());
        assert!(apache_format_to_regex("W", "%{abc")
            .unwrap_err()
            .to_string()
            .contains("unterminated"));
    }

    #[test]
    fn iis_and_syslog() {
        let line = "192.168.114.201, -, 03/20/98, 7:55:20, W3SVC2, SALES1, 172.21.13.45, 4502, 163, 3223, 200, 0, GET, /DeptLogo.gif, -,";
        let got = caps(&iis_regex(), line).unwrap();
        assert_eq!(got.len(), 15);
        assert_eq!(got[0].as_deref(), Some("192.168.114.201"));
        assert_eq!(got[13].as_deref(), Some("/DeptLogo.gif"));
        assert_eq!(got[14].as_deref(), Some("-"));
        let got = caps(
            SYSLOG_REGEX,
            "<34>Oct  1 22:14:15 mymachine su: 'su root' failed",
        )
        .unwrap();
        assert_eq!(got[0].as_deref(), Some("Oct  1 22:14:15"));
        assert_eq!(got[1].as_deref(), Some("mymachine su: 'su root' failed"));
        assert!(caps(SYSLOG_REGEX, "not a syslog line").is_none());
    }
}
