//! Token-level rewrites of KDA SQL into SQL that DataFusion's parser accepts.
//!
//! ```text
//!  KDA text ─► tokens (comments dropped) ─► fold identifiers ─► SELECT STREAM → SELECT
//!   ─► STEP(x BY i) → step(x, i) ─► FLOOR/CEIL(x TO u) → floor_to(x, 'u')
//!   ─► (a - b) SECOND → kda_units(a - b, 'SECOND')
//!   ─► FROM s OVER (RANGE ...) → stream_range('s', ...)        (join windows)
//!   ─► OVER (PARTITION BY k RANGE ...) → ... ORDER BY ROWTIME RANGE ...   (sliding windows)
//!   ─► WINDOWED BY STAGGER (PARTITION BY k RANGE i) → GROUP BY k, stagger_start/end(ROWTIME, i)
//!   ─► AVG( → kda_avg(      EXP_AVG(x, i) → exp_avg(x, ROWTIME, i)
//! ```
//!
//! Identifier folding (KDA: unquoted identifiers are upper case, quoted ones exact): an
//! unquoted word followed by `(` is a function name and is folded to lower case, where
//! DataFusion keeps its functions (the KDA functions have lower-case aliases); every other
//! unquoted word folds to upper case. DataFusion's own normalisation is turned off for KDA
//! applications, so the folded names reach the planner unchanged.

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// A significant token and where it starts in the application code (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Tok {
    /// The token.
    pub token: Token,
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

/// Tokenizes KDA SQL; whitespace and comments are dropped. `line_offset` is added to lines
/// (for code fragments).
pub fn tokenize(sql: &str) -> Result<Vec<Tok>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
    Ok(tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .map(|t| Tok {
            token: t.token,
            line: t.span.start.line,
            column: t.span.start.column,
        })
        .collect())
}

/// True when `t` is the unquoted word `w` (any case).
pub fn is_kw(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// A word token.
pub fn word(value: &str) -> Token {
    Token::make_word(value, None)
}

/// A single-quoted string token.
pub fn string(value: &str) -> Token {
    Token::SingleQuotedString(value.to_string())
}

/// Renders tokens as SQL text.
pub fn render(toks: &[Token]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match t {
            Token::Whitespace(Whitespace::SingleLineComment { .. }) => {}
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// The name an identifier token stands for after KDA folding (`None` if not a word).
pub fn ident_name(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Index of the `)` matching the `(` at `open`.
pub fn matching_paren(toks: &[Token], open: usize) -> Result<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    plan_err!("unbalanced parentheses: a '(' is never closed")
}

/// Index of the `(` matching the `)` at `close`.
fn matching_open(toks: &[Token], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for i in (0..=close).rev() {
        match toks[i] {
            Token::RParen => depth += 1,
            Token::LParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Keywords that can precede `(` without being a function call.
const NOT_FUNCTIONS: &[&str] = &[
    "AS", "IN", "OVER", "VALUES", "ON", "AND", "OR", "NOT", "EXISTS", "USING", "FROM", "JOIN",
    "WHERE", "SELECT", "BY", "INTO", "TABLE", "CURSOR", "ALL", "ANY", "SOME", "UNION", "STAGGER",
    "WINDOW", "HAVING", "THEN", "ELSE", "WHEN", "CASE", "IS", "LIKE", "DISTINCT",
];

const UNITS: &[&str] = &["MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY"];

/// Applies every rewrite of this module to the tokens of one query.
pub fn rewrite_query(toks: Vec<Token>) -> Result<Vec<Token>> {
    let toks = unicode_literals(toks)?;
    let toks = fold_identifiers(toks);
    let toks = drop_stream_keyword(toks);
    let toks = rewrite_table_functions(toks)?;
    let toks = rewrite_step(toks)?;
    let toks = rewrite_floor_ceil(toks)?;
    let toks = rewrite_interval_qualifiers(toks);
    let toks = rewrite_join_windows(toks)?;
    let toks = rewrite_sliding_specs(toks)?;
    let toks = rewrite_stagger(toks)?;
    let toks = rewrite_tsort(toks)?;
    rewrite_functions(toks)
}

/// `u&'\0009'` (a Unicode string literal: `\XXXX` is a code point, `\\` a backslash) → the
/// plain string literal.
fn unicode_literals(toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let is_u = matches!(&toks[i], Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("u"));
        if is_u && toks.get(i + 1) == Some(&Token::Ampersand) {
            if let Some(Token::SingleQuotedString(raw)) = toks.get(i + 2) {
                out.push(Token::SingleQuotedString(decode_unicode(raw)?));
                i += 3;
                continue;
            }
        }
        if let Token::UnicodeStringLiteral(raw) = &toks[i] {
            out.push(Token::SingleQuotedString(decode_unicode(raw)?));
            i += 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    Ok(out)
}

fn decode_unicode(raw: &str) -> Result<String> {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            if chars.get(i + 1) == Some(&'\\') {
                out.push('\\');
                i += 2;
                continue;
            }
            let hex: String = chars.iter().skip(i + 1).take(4).collect();
            let code = u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32);
            let Some(c) = code else {
                return plan_err!(
                    "u&'{raw}': '\\' must be followed by four hex digits or another '\\'"
                );
            };
            out.push(c);
            i += 5;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Unquoted words: function names to lower case, everything else to upper case.
pub fn fold_identifiers(toks: Vec<Token>) -> Vec<Token> {
    let n = toks.len();
    let mut out = Vec::with_capacity(n + 4);
    for i in 0..n {
        match &toks[i] {
            Token::Word(w) if w.quote_style.is_none() => {
                let next_paren = matches!(toks.get(i + 1), Some(Token::LParen));
                let prev_as = i > 0 && is_kw(&toks[i - 1], "AS");
                if w.value.eq_ignore_ascii_case("CURRENT_ROW_TIMESTAMP") && !next_paren {
                    out.push(word("current_row_timestamp"));
                    out.push(Token::LParen);
                    out.push(Token::RParen);
                    continue;
                }
                let keyword = NOT_FUNCTIONS
                    .iter()
                    .any(|k| w.value.eq_ignore_ascii_case(k));
                if next_paren && !prev_as && !keyword {
                    out.push(word(&w.value.to_ascii_lowercase()));
                } else {
                    out.push(word(&w.value.to_ascii_uppercase()));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

fn drop_stream_keyword(toks: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    for t in toks {
        if is_kw(&t, "STREAM") && out.last().is_some_and(|p| is_kw(p, "SELECT")) {
            continue;
        }
        out.push(t);
    }
    out
}

/// Splits the arguments of the call whose `(` is at `open` at top-level commas.
fn call_args(toks: &[Token], open: usize) -> Result<(Vec<Vec<Token>>, usize)> {
    let close = matching_paren(toks, open)?;
    let mut args = vec![Vec::new()];
    let mut depth = 0;
    for t in &toks[open + 1..close] {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
    }
    Ok((args, close))
}

/// `TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(CURSOR(q), 'COL', seconds))` → a subquery counting the
/// distinct values of COL per tumbling ROWTIME window (exact; KDA's is exact up to 10,000
/// items). `TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(q), 'COL', K, seconds))` → per window, the K
/// most frequent values with their counts, most frequent first (exact, where KDA's is
/// approximate): a windowed count sorted per window with a per-window LIMIT.
/// `TABLE(RANDOM_CUT_FOREST[_WITH_EXPLANATION](CURSOR(q), args...))` and
/// `TABLE(HOTSPOTS(CURSOR(q), args...))` → `random_cut_forest[_with_explanation](EXISTS (q),
/// args...)` / `hotspots(EXISTS (q), args...)`, the table functions of
/// `datafusion_stream::anomaly`. Other table functions over a cursor are rejected by name.
fn rewrite_table_functions(toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let is_table = is_kw(&toks[i], "TABLE") && toks.get(i + 1) == Some(&Token::LParen);
        if !is_table {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let close = matching_paren(&toks, i + 1)?;
        let fname = toks.get(i + 2).and_then(|t| match t {
            Token::Word(w) => Some(w.value.to_ascii_uppercase()),
            _ => None,
        });
        let Some(fname) = fname.filter(|_| toks.get(i + 3) == Some(&Token::LParen)) else {
            out.push(toks[i].clone());
            i += 1;
            continue;
        };
        let (args, _) = call_args(&toks, i + 3)?;
        let cursor = args.first().and_then(|a| {
            (a.len() >= 3 && is_kw(&a[0], "CURSOR") && a[1] == Token::LParen)
                .then(|| a[2..a.len() - 1].to_vec())
        });
        let Some(query) = cursor else {
            return plan_err!(
                "TABLE({fname}(...)): the first argument must be CURSOR(SELECT STREAM ...)"
            );
        };
        match fname.as_str() {
            "COUNT_DISTINCT_ITEMS_TUMBLING" => {
                let [_, col, secs] = args.as_slice() else {
                    return plan_err!("COUNT_DISTINCT_ITEMS_TUMBLING takes (CURSOR(...), 'column', windowSizeSeconds)");
                };
                let col = match col.as_slice() {
                    [Token::SingleQuotedString(c)] => c.clone(),
                    _ => return plan_err!("COUNT_DISTINCT_ITEMS_TUMBLING: the column must be a string literal such as 'TICKER_SYMBOL'"),
                };
                let secs: i64 = match secs.as_slice() {
                    [Token::Number(n, _)] => n.parse().unwrap_or(0),
                    _ => 0,
                };
                if !(1..=3600).contains(&secs) {
                    return plan_err!(
                        "COUNT_DISTINCT_ITEMS_TUMBLING: the window size must be 1 to 3600 seconds"
                    );
                }
                let mut sub = vec![
                    Token::LParen,
                    word("SELECT"),
                    word("count"),
                    Token::LParen,
                    word("DISTINCT"),
                    Token::make_word(&col, Some('"')),
                    Token::RParen,
                    word("AS"),
                    word("NUMBER_OF_DISTINCT_ITEMS"),
                    word("FROM"),
                    Token::LParen,
                ];
                sub.extend(query);
                sub.extend([
                    Token::RParen,
                    word("AS"),
                    Token::make_word("__CURSOR", Some('"')),
                    word("GROUP"),
                    word("BY"),
                    word("step"),
                    Token::LParen,
                    Token::make_word("__CURSOR", Some('"')),
                    Token::Period,
                    word("ROWTIME"),
                    word("BY"),
                    word("INTERVAL"),
                    string(&secs.to_string()),
                    word("SECOND"),
                    Token::RParen,
                    Token::RParen,
                ]);
                out.extend(sub);
            }
            "TOP_K_ITEMS_TUMBLING" => {
                let [_, col, k, secs] = args.as_slice() else {
                    return plan_err!(
                        "TOP_K_ITEMS_TUMBLING takes (CURSOR(...), 'column', K, windowSizeSeconds)"
                    );
                };
                let col = match col.as_slice() {
                    [Token::SingleQuotedString(c)] => c.clone(),
                    _ => return plan_err!("TOP_K_ITEMS_TUMBLING: the column must be a string literal such as 'TICKER_SYMBOL'"),
                };
                let number = |t: &[Token]| -> i64 {
                    match t {
                        [Token::Number(n, _)] => n.parse().unwrap_or(0),
                        _ => 0,
                    }
                };
                let (k, secs) = (number(k), number(secs));
                if !(1..=100_000).contains(&k) {
                    return plan_err!("TOP_K_ITEMS_TUMBLING: K must be 1 to 100000");
                }
                if !(1..=3600).contains(&secs) {
                    return plan_err!(
                        "TOP_K_ITEMS_TUMBLING: the window size must be 1 to 3600 seconds"
                    );
                }
                // The K most frequent values of every window, most frequent first (exact).
                let c = Token::make_word(&col, Some('"'));
                let cur = Token::make_word("__CURSOR", Some('"'));
                let mut sub = vec![
                    Token::LParen,
                    word("SELECT"),
                    c.clone(),
                    Token::Comma,
                    word("count"),
                    Token::LParen,
                    Token::Mul,
                    Token::RParen,
                    word("AS"),
                    Token::make_word("MOST_FREQUENT_VALUES", Some('"')),
                    word("FROM"),
                    Token::LParen,
                ];
                sub.extend(query);
                sub.extend([
                    Token::RParen,
                    word("AS"),
                    cur.clone(),
                    word("GROUP"),
                    word("BY"),
                    c.clone(),
                    Token::Comma,
                    word("step"),
                    Token::LParen,
                    cur,
                    Token::Period,
                    word("ROWTIME"),
                    word("BY"),
                    word("INTERVAL"),
                    string(&secs.to_string()),
                    word("SECOND"),
                    Token::RParen,
                    word("ORDER"),
                    word("BY"),
                    word("ROWTIME"),
                    Token::Comma,
                    Token::make_word("MOST_FREQUENT_VALUES", Some('"')),
                    word("DESC"),
                    Token::Comma,
                    c,
                    word("LIMIT"),
                    Token::Number(k.to_string(), false),
                    Token::RParen,
                ]);
                out.extend(sub);
            }
            "RANDOM_CUT_FOREST" | "RANDOM_CUT_FOREST_WITH_EXPLANATION" | "HOTSPOTS" => {
                // → random_cut_forest[_with_explanation] / hotspots(EXISTS (q), args...): DataFusion plans
                // an EXISTS subquery into the cursor's whole plan, which the table function
                // scores (datafusion-stream's anomaly/tvf.rs validates the arguments).
                out.push(word(&fname.to_ascii_lowercase()));
                out.push(Token::LParen);
                out.push(word("EXISTS"));
                out.push(Token::LParen);
                out.extend(query);
                out.push(Token::RParen);
                for a in &args[1..] {
                    out.push(Token::Comma);
                    out.extend(a.iter().cloned());
                }
                out.push(Token::RParen);
            }
            other => {
                return plan_err!("TABLE({other}(CURSOR(...))) is not supported (supported: COUNT_DISTINCT_ITEMS_TUMBLING, TOP_K_ITEMS_TUMBLING, RANDOM_CUT_FOREST, RANDOM_CUT_FOREST_WITH_EXPLANATION, HOTSPOTS)");
            }
        }
        i = close + 1;
    }
    Ok(out)
}

/// `step ( x BY i )` → `step ( x , i )`.
fn rewrite_step(mut toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut i = 0;
    while i + 1 < toks.len() {
        if is_kw(&toks[i], "step") && toks[i + 1] == Token::LParen {
            let close = matching_paren(&toks, i + 1)?;
            let mut depth = 0;
            let mut found = false;
            for t in toks[i + 1..close].iter_mut() {
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {
                        if depth == 1 && is_kw(t, "BY") {
                            *t = Token::Comma;
                            found = true;
                        }
                    }
                }
            }
            if !found {
                return plan_err!("STEP needs the form STEP(expression BY width), e.g. STEP(s.ROWTIME BY INTERVAL '60' SECOND)");
            }
        }
        i += 1;
    }
    Ok(toks)
}

/// `floor ( x TO UNIT )` → `floor_to ( x , 'UNIT' )`; same for ceil/ceiling.
fn rewrite_floor_ceil(mut toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut i = 0;
    while i + 1 < toks.len() {
        let target = if is_kw(&toks[i], "floor") {
            Some("floor_to")
        } else if is_kw(&toks[i], "ceil") || is_kw(&toks[i], "ceiling") {
            Some("ceil_to")
        } else {
            None
        };
        if let (Some(target), Token::LParen) = (target, &toks[i + 1]) {
            let close = matching_paren(&toks, i + 1)?;
            let mut depth = 0;
            for j in i + 1..close {
                match toks[j] {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {
                        if depth == 1 && is_kw(&toks[j], "TO") && j + 2 == close {
                            let Some(unit) = ident_name(&toks[j + 1]) else {
                                return plan_err!(
                                    "FLOOR/CEIL(... TO unit): expected a time unit after TO"
                                );
                            };
                            toks[i] = word(target);
                            toks[j] = Token::Comma;
                            toks[j + 1] = string(&unit);
                        }
                    }
                }
            }
        }
        i += 1;
    }
    Ok(toks)
}

/// `( a - b ) SECOND` (a datetime difference with an interval qualifier) →
/// `kda_units ( a - b , 'SECOND' )`, the number of whole units.
fn rewrite_interval_qualifiers(toks: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    for t in toks {
        let is_unit = matches!(&t, Token::Word(w) if w.quote_style.is_none() && UNITS.iter().any(|u| w.value.eq_ignore_ascii_case(u)));
        if is_unit && out.last() == Some(&Token::RParen) {
            let close = out.len() - 1;
            if let Some(open) = matching_open(&out, close) {
                // Not a function call's argument list: `f(x) SECOND` is left alone.
                let is_call = open > 0 && matches!(&out[open - 1], Token::Word(_));
                if !is_call {
                    let unit = ident_name(&t).unwrap_or_default();
                    out[close] = Token::Comma;
                    out.push(string(&unit));
                    out.push(Token::RParen);
                    out.insert(open, word("kda_units"));
                    continue;
                }
            }
        }
        out.push(t);
    }
    out
}

/// Finds `WINDOW name AS ( spec )` definitions: name → token range of the spec (inside the
/// parentheses).
fn named_windows(toks: &[Token]) -> Result<Vec<(String, usize, usize)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if is_kw(&toks[i], "WINDOW") {
            let mut j = i + 1;
            while let Some(name) = toks.get(j).and_then(ident_name) {
                if !toks.get(j + 1).is_some_and(|t| is_kw(t, "AS"))
                    || toks.get(j + 2) != Some(&Token::LParen)
                {
                    break;
                }
                let close = matching_paren(toks, j + 2)?;
                out.push((name, j + 3, close));
                if toks.get(close + 1) == Some(&Token::Comma) {
                    j = close + 2;
                } else {
                    break;
                }
            }
            i = j;
        }
        i += 1;
    }
    Ok(out)
}

/// A join window parsed from `RANGE INTERVAL ... PRECEDING` / `ROWS n PRECEDING`.
fn join_window_call(stream: &str, spec: &[Token]) -> Result<Vec<Token>> {
    if spec.iter().any(|t| is_kw(t, "PARTITION")) {
        return plan_err!(
            "the window of a join input ({stream}) cannot have PARTITION BY (KDA: windowed joins allow no PARTITION BY)"
        );
    }
    if let Some(t) = spec.iter().find(|t| is_kw(t, "FOLLOWING")) {
        return plan_err!(
            "the window of a join input ({stream}) must end at the current row; {t} windows are not supported"
        );
    }
    let mut k = 0;
    if spec.first().is_some_and(|t| is_kw(t, "ORDER")) {
        // ORDER BY <input>.ROWTIME is allowed (and implied).
        k = spec
            .iter()
            .position(|t| is_kw(t, "RANGE") || is_kw(t, "ROWS"))
            .unwrap_or(spec.len());
    }
    let rest = &spec[k..];
    let Some(kind) = rest.first() else {
        return plan_err!("the window of a join input ({stream}) needs RANGE or ROWS");
    };
    let body = &rest[1..];
    let body: Vec<Token> = if body.first().is_some_and(|t| is_kw(t, "BETWEEN")) {
        // BETWEEN <start> AND CURRENT ROW
        let and = body
            .iter()
            .position(|t| is_kw(t, "AND"))
            .unwrap_or(body.len());
        let end = &body[(and + 1).min(body.len())..];
        if !(end.len() == 2 && is_kw(&end[0], "CURRENT") && is_kw(&end[1], "ROW")) {
            return plan_err!("the window of a join input ({stream}) must end at CURRENT ROW");
        }
        body[1..and].to_vec()
    } else {
        body.to_vec()
    };
    let current_row = body.len() == 2 && is_kw(&body[0], "CURRENT") && is_kw(&body[1], "ROW");
    let mut out = Vec::new();
    if is_kw(kind, "RANGE") {
        out.push(word("stream_range"));
        out.push(Token::LParen);
        out.push(string(stream));
        out.push(Token::Comma);
        if current_row {
            out.extend([word("INTERVAL"), string("0"), word("SECOND")]);
        } else if body.last().is_some_and(|t| is_kw(t, "PRECEDING")) {
            out.extend(body[..body.len() - 1].iter().cloned());
        } else {
            return plan_err!("the window of a join input ({stream}): expected RANGE INTERVAL '<n>' <unit> PRECEDING");
        }
        out.push(Token::RParen);
    } else if is_kw(kind, "ROWS") {
        out.push(word("stream_rows"));
        out.push(Token::LParen);
        out.push(string(stream));
        out.push(Token::Comma);
        if current_row {
            out.push(Token::Number("0".into(), false));
        } else if body.len() == 2 && is_kw(&body[1], "PRECEDING") {
            out.push(body[0].clone());
        } else {
            return plan_err!("the window of a join input ({stream}): expected ROWS <n> PRECEDING");
        }
        out.push(Token::RParen);
    } else {
        return plan_err!(
            "the window of a join input ({stream}) needs RANGE or ROWS, found {kind}"
        );
    }
    Ok(out)
}

/// `FROM s OVER ( spec )` / `JOIN s OVER w` → `stream_range('s', ...)` / `stream_rows('s', n)`.
fn rewrite_join_windows(toks: Vec<Token>) -> Result<Vec<Token>> {
    let named = named_windows(&toks)?;
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        // `OVER` right after a relation name (not a keyword such as NULLS, not a call's `)`).
        let after_name = matches!(out.last(), Some(Token::Word(w)) if w.keyword == datafusion::sql::sqlparser::keywords::Keyword::NoKeyword || w.quote_style.is_some());
        if is_kw(t, "OVER") && after_name {
            // The relation name: a word, possibly qualified (a.b).
            let mut start = out.len() - 1;
            while start >= 2 && out[start - 1] == Token::Period {
                start -= 2;
            }
            let name: Vec<String> = out[start..].iter().filter_map(ident_name).collect();
            let stream = name.join(".");
            let spec: Vec<Token> = if toks.get(i + 1) == Some(&Token::LParen) {
                let close = matching_paren(&toks, i + 1)?;
                let s = toks[i + 2..close].to_vec();
                i = close + 1;
                s
            } else if let Some(wname) = toks.get(i + 1).and_then(ident_name) {
                let Some((_, a, b)) = named.iter().find(|(n, _, _)| *n == wname) else {
                    return plan_err!(
                        "join window '{wname}' of {stream} is not defined in a WINDOW clause"
                    );
                };
                i += 2;
                toks[*a..*b].to_vec()
            } else {
                return plan_err!("OVER after {stream} needs a window: OVER (RANGE INTERVAL ... PRECEDING) or OVER <window name>");
            };
            out.truncate(start);
            out.extend(join_window_call(&stream, &spec)?);
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    Ok(out)
}

/// Sliding-window specs (`OVER ( ... )` after a call, and `WINDOW w AS ( ... )`): RANGE
/// without ORDER BY gets `ORDER BY ROWTIME` (KDA windows are ordered by ROWTIME).
fn rewrite_sliding_specs(toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut starts = Vec::new();
    for i in 0..toks.len() {
        if is_kw(&toks[i], "OVER") && toks.get(i + 1) == Some(&Token::LParen) {
            starts.push(i + 1);
        }
        if is_kw(&toks[i], "AS")
            && toks.get(i + 1) == Some(&Token::LParen)
            && i >= 2
            && toks[..i - 1]
                .iter()
                .rev()
                .take_while(|t| !is_kw(t, "SELECT"))
                .any(|t| is_kw(t, "WINDOW"))
        {
            starts.push(i + 1);
        }
    }
    let mut insert_at = Vec::new();
    for open in starts {
        let close = matching_paren(&toks, open)?;
        let spec = &toks[open + 1..close];
        let has_order = spec.iter().any(|t| is_kw(t, "ORDER"));
        if let Some(p) = spec.iter().position(|t| is_kw(t, "RANGE")) {
            if !has_order {
                insert_at.push(open + 1 + p);
            }
        }
    }
    let mut out = toks;
    insert_at.sort_unstable();
    for at in insert_at.into_iter().rev() {
        out.splice(at..at, [word("ORDER"), word("BY"), word("ROWTIME")]);
    }
    Ok(out)
}

/// `WINDOWED BY STAGGER ( PARTITION BY k, ... RANGE INTERVAL 'n' unit )` →
/// `GROUP BY k, ..., stagger_start(ROWTIME, INTERVAL 'n' unit), stagger_end(...)`.
fn rewrite_stagger(toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if is_kw(&toks[i], "WINDOWED")
            && toks.get(i + 1).is_some_and(|t| is_kw(t, "BY"))
            && toks.get(i + 2).is_some_and(|t| is_kw(t, "STAGGER"))
        {
            if toks.get(i + 3) != Some(&Token::LParen) {
                return plan_err!(
                    "WINDOWED BY STAGGER needs (PARTITION BY <keys> RANGE INTERVAL '<n>' <unit>)"
                );
            }
            let close = matching_paren(&toks, i + 3)?;
            let spec = &toks[i + 4..close];
            if !(spec.first().is_some_and(|t| is_kw(t, "PARTITION"))
                && spec.get(1).is_some_and(|t| is_kw(t, "BY")))
            {
                return plan_err!(
                    "WINDOWED BY STAGGER: expected PARTITION BY <keys> RANGE INTERVAL '<n>' <unit>"
                );
            }
            // The RANGE at depth 0 of the spec.
            let mut depth = 0;
            let mut range = None;
            for (k, t) in spec.iter().enumerate() {
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ if depth == 0 && is_kw(t, "RANGE") => range = Some(k),
                    _ => {}
                }
            }
            let Some(r) = range else {
                return plan_err!("WINDOWED BY STAGGER: missing RANGE INTERVAL '<n>' <unit> after the partition keys");
            };
            let keys = &spec[2..r];
            let interval = &spec[r + 1..];
            if keys.is_empty() || interval.is_empty() {
                return plan_err!(
                    "WINDOWED BY STAGGER: expected PARTITION BY <keys> RANGE INTERVAL '<n>' <unit>"
                );
            }
            out.extend([word("GROUP"), word("BY")]);
            out.extend(keys.iter().cloned());
            for f in ["stagger_start", "stagger_end"] {
                out.extend([
                    Token::Comma,
                    word(f),
                    Token::LParen,
                    word("ROWTIME"),
                    Token::Comma,
                ]);
                out.extend(interval.iter().cloned());
                out.push(Token::RParen);
            }
            i = close + 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    Ok(out)
}

/// T-sort: `ORDER BY ts WITHIN INTERVAL 'n' unit [, keys]` →
/// `ORDER BY tsort_within ( ts , INTERVAL 'n' unit ) [, keys]` (the engine's T-sort marker;
/// sqlparser has no WITHIN). `WITHIN GROUP (...)` is left alone.
fn rewrite_tsort(toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut out = toks;
    let mut i = 0;
    while i < out.len() {
        if !is_kw(&out[i], "WITHIN") || out.get(i + 1).is_some_and(|t| is_kw(t, "GROUP")) {
            i += 1;
            continue;
        }
        // The ORDER BY this WITHIN belongs to: the nearest one before it at the same depth.
        let mut depth = 0i32;
        let mut by = None;
        for j in (0..i).rev() {
            match out[j] {
                Token::RParen => depth += 1,
                Token::LParen if depth == 0 => break,
                Token::LParen => depth -= 1,
                _ if depth == 0 && is_kw(&out[j], "BY") && j > 0 && is_kw(&out[j - 1], "ORDER") => {
                    by = Some(j);
                    break;
                }
                _ => {}
            }
        }
        let Some(by) = by else {
            return plan_err!("WITHIN is only allowed in a T-sort: ORDER BY <timestamp expression> WITHIN INTERVAL '<n>' <unit>");
        };
        // A comma at depth 0 before WITHIN: WITHIN is not on the leading key.
        let mut d = 0i32;
        for t in &out[by + 1..i] {
            match t {
                Token::LParen => d += 1,
                Token::RParen => d -= 1,
                Token::Comma if d == 0 => {
                    return plan_err!("T-sort: WITHIN must follow the leading ORDER BY key (ORDER BY ts WITHIN INTERVAL '<n>' <unit>, other keys)");
                }
                _ => {}
            }
        }
        if by + 1 == i {
            return plan_err!(
                "T-sort: expected a timestamp expression between ORDER BY and WITHIN"
            );
        }
        // The interval: up to a comma, a closing parenthesis, ASC/DESC/NULLS or LIMIT at depth 0.
        let mut end = i + 1;
        let mut d = 0i32;
        while end < out.len() {
            match out[end] {
                Token::LParen => d += 1,
                Token::RParen if d == 0 => break,
                Token::RParen => d -= 1,
                Token::Comma | Token::SemiColon if d == 0 => break,
                _ if d == 0
                    && ["LIMIT", "FETCH", "ASC", "DESC", "NULLS"]
                        .iter()
                        .any(|k| is_kw(&out[end], k)) =>
                {
                    break
                }
                _ => {}
            }
            end += 1;
        }
        if end == i + 1 {
            return plan_err!(
                "T-sort: expected an interval after WITHIN, e.g. WITHIN INTERVAL '5' SECOND"
            );
        }
        let interval: Vec<Token> = out[i + 1..end].to_vec();
        let ts: Vec<Token> = out[by + 1..i].to_vec();
        let mut call = vec![word("tsort_within"), Token::LParen];
        call.extend(ts);
        call.push(Token::Comma);
        call.extend(interval);
        call.push(Token::RParen);
        let len = call.len();
        out.splice(by + 1..end, call);
        i = by + 1 + len;
    }
    Ok(out)
}

/// Function renames: `avg(` → `kda_avg(` (integer AVG truncates in KDA);
/// `exp_avg(x, i)` → `exp_avg(x, ROWTIME, i)`.
fn rewrite_functions(mut toks: Vec<Token>) -> Result<Vec<Token>> {
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i + 1] == Token::LParen {
            if is_kw(&toks[i], "avg") {
                toks[i] = word("kda_avg");
            } else if is_kw(&toks[i], "exp_avg") {
                let close = matching_paren(&toks, i + 1)?;
                let mut depth = 0;
                let commas: Vec<usize> = (i + 1..close)
                    .filter(|&j| {
                        match toks[j] {
                            Token::LParen => depth += 1,
                            Token::RParen => depth -= 1,
                            _ => {}
                        }
                        depth == 1 && toks[j] == Token::Comma
                    })
                    .collect();
                if commas.len() == 1 {
                    let at = commas[0] + 1;
                    toks.splice(at..at, [word("ROWTIME"), Token::Comma]);
                }
            }
        }
        i += 1;
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str) -> String {
        let toks = tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect();
        render(&rewrite_query(toks).unwrap())
    }

    #[test]
    fn folds_identifiers_and_functions() {
        assert_eq!(
            run(r#"select stream "heartRate", ticker, MIN(price) from "S""#),
            r#"SELECT "heartRate" , TICKER , min ( PRICE ) FROM "S""#
        );
    }

    #[test]
    fn step_floor_and_qualifiers() {
        assert_eq!(
            run("GROUP BY STEP(s.ROWTIME BY INTERVAL '60' SECOND)"),
            "GROUP BY step ( S . ROWTIME , INTERVAL '60' SECOND )"
        );
        assert_eq!(
            run("FLOOR(W.ROWTIME to DAY)"),
            "floor_to ( W . ROWTIME , 'DAY' )"
        );
        assert_eq!(
            run("FLOOR((s.ROWTIME - TIMESTAMP '1970-01-01 00:00:00') SECOND / 10 TO SECOND)"),
            "floor_to ( kda_units ( S . ROWTIME - TIMESTAMP '1970-01-01 00:00:00' , 'SECOND' ) / 10 , 'SECOND' )"
        );
    }

    #[test]
    fn join_windows_become_table_functions() {
        assert_eq!(
            run("FROM ORDERS_STREAM OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS o JOIN S AS s ON o.id = s.id"),
            "FROM stream_range ( 'ORDERS_STREAM' , INTERVAL '1' MINUTE ) AS O JOIN S AS S ON O . ID = S . ID"
        );
        assert_eq!(
            run("FROM a AS x JOIN \"b\" OVER w ON x.k = \"b\".k WINDOW w AS (ROWS 10 PRECEDING)"),
            "FROM A AS X JOIN stream_rows ( 'b' , 10 ) ON X . K = \"b\" . K WINDOW W AS ( ROWS 10 PRECEDING )"
        );
        let toks = tokenize("FROM a OVER (PARTITION BY k RANGE INTERVAL '1' MINUTE PRECEDING)")
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect();
        let err = rewrite_query(toks).unwrap_err().to_string();
        assert!(err.contains("PARTITION BY"), "{err}");
    }

    #[test]
    fn sliding_specs_get_rowtime_order() {
        assert_eq!(
            run("MIN(TEMP) OVER W1 FROM S WINDOW W1 AS (PARTITION BY CITY RANGE INTERVAL '1' DAY PRECEDING)"),
            "min ( TEMP ) OVER W1 FROM S WINDOW W1 AS ( PARTITION BY CITY ORDER BY ROWTIME RANGE INTERVAL '1' DAY PRECEDING )"
        );
        assert_eq!(
            run("SUM(x) OVER (ROWS 2 PRECEDING)"),
            "sum ( X ) OVER ( ROWS 2 PRECEDING )"
        );
    }

    #[test]
    fn stagger_becomes_group_by() {
        assert_eq!(
            run("FROM S WINDOWED BY STAGGER (PARTITION BY FLOOR(EVENT_TIME TO MINUTE), TICKER RANGE INTERVAL '1' MINUTE)"),
            "FROM S GROUP BY floor_to ( EVENT_TIME , 'MINUTE' ) , TICKER , stagger_start ( ROWTIME , INTERVAL '1' MINUTE ) , stagger_end ( ROWTIME , INTERVAL '1' MINUTE )"
        );
    }

    #[test]
    fn unicode_literal() {
        assert_eq!(
            run("SELECT u&'a\\0009b', U&'\\00e9'"),
            "SELECT 'a\tb' , 'é'"
        );
    }

    #[test]
    fn tsort_within_becomes_a_marker_call() {
        assert_eq!(
            run("SELECT STREAM ts AS ROWTIME, id FROM s ORDER BY ts WITHIN INTERVAL '2' MINUTE, id"),
            "SELECT TS AS ROWTIME , ID FROM S ORDER BY tsort_within ( TS , INTERVAL '2' MINUTE ) , ID"
        );
        assert_eq!(
            run("ORDER BY ts WITHIN INTERVAL '1' SECOND DESC LIMIT 2"),
            "ORDER BY tsort_within ( TS , INTERVAL '1' SECOND ) DESC LIMIT 2"
        );
        assert_eq!(
            run("SELECT * FROM (SELECT STREAM x FROM s ORDER BY FLOOR(s.ROWTIME TO MINUTE) WITHIN INTERVAL '1' SECOND)"),
            "SELECT * FROM ( SELECT X FROM S ORDER BY tsort_within ( floor_to ( S . ROWTIME , 'MINUTE' ) , INTERVAL '1' SECOND ) )"
        );
        assert_eq!(
            run("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t"),
            "SELECT percentile_cont ( 0.5 ) WITHIN group ( ORDER BY X ) FROM T"
        );
        let toks = tokenize("SELECT x FROM s ORDER BY ROWTIME, ts WITHIN INTERVAL '1' SECOND")
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect();
        let err = rewrite_query(toks).unwrap_err().to_string();
        assert!(
            err.contains("WITHIN must follow the leading ORDER BY key"),
            "{err}"
        );
    }

    #[test]
    fn avg_and_current_row_timestamp() {
        assert_eq!(
            run("SELECT AVG(x), CURRENT_ROW_TIMESTAMP, EXP_AVG(p, INTERVAL '10' SECOND)"),
            "SELECT kda_avg ( X ) , current_row_timestamp ( ) , exp_avg ( P , ROWTIME , INTERVAL '10' SECOND )"
        );
    }
}
