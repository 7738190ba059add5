//! The SQL front end: statements → DataFusion plans, with the streaming extensions.
//!
//! ```text
//!  script ──tokenize──► statements (split at ';') ──► per statement:
//!     CREATE STREAM ...                          ──► ddl::parse_create_stream
//!     CREATE SINK ... / CREATE TABLE ... WITH ('connector' = ...)
//!                                                ──► sink::parse_connector_ddl
//!     INSERT INTO <sink> <query>                 ──► the query, written by the sink (context)
//!     anything else ──► TABLE(TUMBLE(TABLE t, DESCRIPTOR(c), ...)) → tumble('t', 'c', ...)
//!                   ──► DataFusion parser ──► SELECT * over a stream hides ROWTIME
//!                   ──► DataFusion planner (+ analyzer rule for windows)
//! ```

pub mod ddl;
pub mod sink;

use std::collections::HashSet;

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// One statement of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStatement {
    /// Its SQL, with window table functions rewritten.
    pub sql: String,
    /// 1-based line where it starts in the script.
    pub line: u64,
    /// Whether it is a `CREATE STREAM`.
    pub create_stream: bool,
}

fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

fn significant(toks: &[Token], mut i: usize) -> usize {
    while i < toks.len() && matches!(toks[i], Token::Whitespace(_)) {
        i += 1;
    }
    i
}

/// Identifier normalisation of DataFusion's dialect: unquoted names fold to lower case.
pub fn normalize_lower(value: &str, quoted: bool) -> String {
    if quoted {
        value.to_string()
    } else {
        value.to_ascii_lowercase()
    }
}

/// Splits a script into statements and rewrites Flink-style window table functions.
pub fn split_script(
    sql: &str,
    normalize: &dyn Fn(&str, bool) -> String,
) -> Result<Vec<ScriptStatement>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
    let mut out = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut line = 1;
    let mut push = |current: &mut Vec<Token>, line: u64| -> Result<()> {
        let toks = std::mem::take(current);
        if toks.iter().all(|t| matches!(t, Token::Whitespace(_))) {
            return Ok(());
        }
        let create_stream = ddl::is_create_stream(&toks);
        let sql = rewrite_window_functions(&toks, normalize)?;
        out.push(ScriptStatement {
            sql: sql.trim().to_string(),
            line,
            create_stream,
        });
        Ok(())
    };
    for t in tokens {
        if t.token == Token::SemiColon {
            push(&mut current, line)?;
            continue;
        }
        if current.iter().all(|c| matches!(c, Token::Whitespace(_)))
            && !matches!(t.token, Token::Whitespace(_))
        {
            line = t.span.start.line;
        }
        current.push(t.token);
    }
    push(&mut current, line)?;
    Ok(out)
}

fn render(toks: &[Token]) -> String {
    toks.iter().map(|t| t.to_string()).collect()
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Rewrites `TABLE(F(TABLE t [PARTITION BY k, ...], DESCRIPTOR(c), args...))` for F in
/// TUMBLE, HOP, SESSION into `f('t', 'c', args... [, 'k', ...])`.
pub fn rewrite_window_functions(
    toks: &[Token],
    normalize: &dyn Fn(&str, bool) -> String,
) -> Result<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < toks.len() {
        if is_word(&toks[i], "TABLE") {
            if let Some((text, next)) = window_call(toks, i, normalize)? {
                out.push_str(&text);
                i = next;
                continue;
            }
        }
        out.push_str(&toks[i].to_string());
        i += 1;
    }
    Ok(out)
}

fn ident(t: &Token, normalize: &dyn Fn(&str, bool) -> String) -> Option<String> {
    match t {
        Token::Word(w) => Some(normalize(&w.value, w.quote_style.is_some())),
        _ => None,
    }
}

fn window_call(
    toks: &[Token],
    start: usize,
    normalize: &dyn Fn(&str, bool) -> String,
) -> Result<Option<(String, usize)>> {
    let mut j = significant(toks, start + 1);
    if toks.get(j) != Some(&Token::LParen) {
        return Ok(None);
    }
    j = significant(toks, j + 1);
    let func = match toks.get(j) {
        Some(t) if is_word(t, "TUMBLE") => "tumble",
        Some(t) if is_word(t, "HOP") => "hop",
        Some(t) if is_word(t, "SESSION") => "session",
        Some(t) if is_word(t, "CUMULATE") => {
            return plan_err!("CUMULATE windows are not supported yet; use TUMBLE, HOP or SESSION")
        }
        _ => return Ok(None),
    };
    let fname = func.to_ascii_uppercase();
    let err = |what: &str| {
        plan_datafusion_err!(
            "{fname}: expected {what} in {fname}(TABLE t, DESCRIPTOR(time_col), ...)"
        )
    };
    j = significant(toks, j + 1);
    if toks.get(j) != Some(&Token::LParen) {
        return Err(err("'('"));
    }
    j = significant(toks, j + 1);
    if !toks.get(j).is_some_and(|t| is_word(t, "TABLE")) {
        return Err(err("TABLE <stream> as the first argument"));
    }
    // stream name, possibly qualified
    j = significant(toks, j + 1);
    let mut name = vec![toks
        .get(j)
        .and_then(|t| ident(t, normalize))
        .ok_or_else(|| err("a stream name"))?];
    j = significant(toks, j + 1);
    while toks.get(j) == Some(&Token::Period) {
        j = significant(toks, j + 1);
        name.push(
            toks.get(j)
                .and_then(|t| ident(t, normalize))
                .ok_or_else(|| err("a name after '.'"))?,
        );
        j = significant(toks, j + 1);
    }
    let mut keys = Vec::new();
    if toks.get(j).is_some_and(|t| is_word(t, "PARTITION")) {
        j = significant(toks, j + 1);
        if !toks.get(j).is_some_and(|t| is_word(t, "BY")) {
            return Err(err("BY after PARTITION"));
        }
        loop {
            j = significant(toks, j + 1);
            keys.push(
                toks.get(j)
                    .and_then(|t| ident(t, normalize))
                    .ok_or_else(|| err("a PARTITION BY column"))?,
            );
            j = significant(toks, j + 1);
            let k = significant(toks, j + 1);
            if toks.get(j) == Some(&Token::Comma)
                && !toks.get(k).is_some_and(|t| is_word(t, "DESCRIPTOR"))
            {
                continue;
            }
            break;
        }
    }
    if toks.get(j) != Some(&Token::Comma) {
        return Err(err("',' after the table argument"));
    }
    j = significant(toks, j + 1);
    if !toks.get(j).is_some_and(|t| is_word(t, "DESCRIPTOR")) {
        return Err(err("DESCRIPTOR(time_col) as the second argument"));
    }
    j = significant(toks, j + 1);
    if toks.get(j) != Some(&Token::LParen) {
        return Err(err("'(' after DESCRIPTOR"));
    }
    j = significant(toks, j + 1);
    let col = toks
        .get(j)
        .and_then(|t| ident(t, normalize))
        .ok_or_else(|| err("a column in DESCRIPTOR()"))?;
    j = significant(toks, j + 1);
    if toks.get(j) != Some(&Token::RParen) {
        return Err(err("')' after the DESCRIPTOR column"));
    }
    j = significant(toks, j + 1);
    // remaining arguments up to the matching ')'
    let mut rest_start = None;
    if toks.get(j) == Some(&Token::Comma) {
        rest_start = Some(j + 1);
        let mut depth = 0;
        loop {
            j += 1;
            match toks.get(j) {
                None => return Err(err("')' closing the call")),
                Some(Token::LParen) => depth += 1,
                Some(Token::RParen) if depth == 0 => break,
                Some(Token::RParen) => depth -= 1,
                _ => {}
            }
        }
    } else if toks.get(j) != Some(&Token::RParen) {
        return Err(err("',' or ')'"));
    }
    let rest = rest_start.map(|s| render(&toks[s..j])).unwrap_or_default();
    // the outer TABLE( ... ) closes next
    let close = significant(toks, j + 1);
    if toks.get(close) != Some(&Token::RParen) {
        return Err(err("')' closing TABLE("));
    }
    let mut args = vec![quote_literal(&name.join(".")), quote_literal(&col)];
    if !rest.trim().is_empty() {
        args.push(rest.trim().to_string());
    }
    args.extend(keys.iter().map(|k| quote_literal(k)));
    Ok(Some((format!("{func}({})", args.join(", ")), close + 1)))
}

/// Adds `EXCLUDE (rowtime)` to every `*` / `alias.*` that reads a stream, so `SELECT *` does
/// not return ROWTIME (it stays selectable by name).
pub fn hide_rowtime(statement: &mut Statement, streams: &HashSet<String>, rowtime: &str) {
    match statement {
        Statement::Query(q) => hide_in_query(q, streams, rowtime),
        Statement::Explain { statement, .. } => hide_rowtime(statement, streams, rowtime),
        Statement::Insert(insert) => {
            if let Some(q) = insert.source.as_mut() {
                hide_in_query(q, streams, rowtime)
            }
        }
        Statement::CreateView(v) => hide_in_query(&mut v.query, streams, rowtime),
        Statement::CreateTable(t) => {
            if let Some(q) = t.query.as_mut() {
                hide_in_query(q, streams, rowtime)
            }
        }
        _ => {}
    }
}

fn hide_in_query(q: &mut Query, streams: &HashSet<String>, rowtime: &str) {
    if let Some(with) = q.with.as_mut() {
        for cte in with.cte_tables.iter_mut() {
            hide_in_query(&mut cte.query, streams, rowtime);
        }
    }
    hide_in_set_expr(&mut q.body, streams, rowtime);
}

fn hide_in_set_expr(body: &mut SetExpr, streams: &HashSet<String>, rowtime: &str) {
    match body {
        SetExpr::Select(s) => hide_in_select(s, streams, rowtime),
        SetExpr::Query(q) => hide_in_query(q, streams, rowtime),
        SetExpr::SetOperation { left, right, .. } => {
            hide_in_set_expr(left, streams, rowtime);
            hide_in_set_expr(right, streams, rowtime);
        }
        _ => {}
    }
}

/// An object name as the session resolves it (unquoted parts lower-cased), dot-joined.
pub fn object_name_string(n: &ObjectName) -> String {
    n.0.iter()
        .map(|p| match p.as_ident() {
            Some(id) => normalize_lower(&id.value, id.quote_style.is_some()),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Names (and aliases) under which streams appear in this FROM; recurses into derived tables.
fn stream_relations(
    factor: &mut TableFactor,
    streams: &HashSet<String>,
    rowtime: &str,
    found: &mut Vec<String>,
) {
    match factor {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            let n = object_name_string(name);
            let is_stream = match args {
                Some(_) => matches!(
                    n.as_str(),
                    "tumble" | "hop" | "session" | "stream_range" | "stream_rows"
                ),
                None => streams.contains(&n),
            };
            if is_stream {
                found.push(match alias {
                    Some(a) => normalize_lower(&a.name.value, a.name.quote_style.is_some()),
                    None => n,
                });
            }
        }
        TableFactor::Derived { subquery, .. } => hide_in_query(subquery, streams, rowtime),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            stream_relations(&mut table_with_joins.relation, streams, rowtime, found);
            for j in table_with_joins.joins.iter_mut() {
                stream_relations(&mut j.relation, streams, rowtime, found);
            }
        }
        _ => {}
    }
}

fn add_exclude(opts: &mut WildcardAdditionalOptions, rowtime: &str) {
    let id = Ident::with_quote('"', rowtime);
    match opts.opt_exclude.take() {
        None => {
            opts.opt_exclude = Some(ExcludeSelectItem::Multiple(vec![ObjectName::from(vec![
                id,
            ])]))
        }
        Some(ExcludeSelectItem::Single(n)) => {
            opts.opt_exclude = Some(ExcludeSelectItem::Multiple(vec![
                n,
                ObjectName::from(vec![id]),
            ]))
        }
        Some(ExcludeSelectItem::Multiple(mut v)) => {
            if !v.iter().any(|n| object_name_string(n) == rowtime) {
                v.push(ObjectName::from(vec![id]));
            }
            opts.opt_exclude = Some(ExcludeSelectItem::Multiple(v));
        }
    }
}

fn hide_in_select(s: &mut Select, streams: &HashSet<String>, rowtime: &str) {
    let mut found = Vec::new();
    for twj in s.from.iter_mut() {
        stream_relations(&mut twj.relation, streams, rowtime, &mut found);
        for j in twj.joins.iter_mut() {
            stream_relations(&mut j.relation, streams, rowtime, &mut found);
        }
    }
    if found.is_empty() {
        return;
    }
    for item in s.projection.iter_mut() {
        match item {
            // DataFusion excludes by column name: only streams have a ROWTIME column.
            SelectItem::Wildcard(opts) => add_exclude(opts, rowtime),
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), opts)
                if found.contains(&object_name_string(n)) =>
            {
                add_exclude(opts, rowtime)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_rewrites_window_functions() {
        let s = split_script(
            "-- a comment\nCREATE STREAM s (a INT);\n\nSELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE S, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;\nSELECT * FROM TABLE( SESSION( TABLE s PARTITION BY k, \"K2\", DESCRIPTOR(ts), INTERVAL '1' MINUTE ) ) w",
            &normalize_lower,
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].create_stream);
        assert_eq!(s[0].line, 2);
        assert_eq!(s[1].line, 4);
        assert!(
            s[1].sql
                .contains("FROM tumble('s', 'ts', INTERVAL '10' SECOND) GROUP BY"),
            "{}",
            s[1].sql
        );
        assert!(
            s[2].sql
                .contains("session('s', 'ts', INTERVAL '1' MINUTE, 'k', 'K2') w"),
            "{}",
            s[2].sql
        );
    }

    #[test]
    fn hop_keeps_nested_arguments() {
        let s = split_script(
            "SELECT 1 FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))",
            &normalize_lower,
        )
        .unwrap();
        assert!(
            s[0].sql
                .contains("hop('t', 'ts', INTERVAL '5' SECOND, INTERVAL '15' SECOND)"),
            "{}",
            s[0].sql
        );
    }

    #[test]
    fn malformed_window_call_names_the_problem() {
        let e = split_script(
            "SELECT 1 FROM TABLE(TUMBLE(TABLE t, ts, INTERVAL '5' SECOND))",
            &normalize_lower,
        )
        .unwrap_err();
        assert!(e.to_string().contains("DESCRIPTOR"), "{e}");
    }
}
