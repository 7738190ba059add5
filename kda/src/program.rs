//! KDA application code → statements: `CREATE [OR REPLACE] STREAM`, `CREATE [OR REPLACE]
//! PUMP ... AS INSERT INTO ... SELECT STREAM ...`, and bare `SELECT STREAM` queries.
//!
//! ```text
//!  code ─► tokens (comments dropped) ─► split at top-level ';' ─► one Statement each
//!          every problem becomes a Diagnostic with its statement number and line:column
//! ```

use std::fmt;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::sql::sqlparser::tokenizer::Token;
use datafusion_stream::sql::ddl::sql_type_to_arrow;

use crate::tokens::{ident_name, is_kw, matching_paren, render, tokenize, Tok};

/// A problem in the application code, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based number of the statement in the code (0: the code as a whole).
    pub statement: usize,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statement {} (line {}, column {}): {}",
            self.statement, self.line, self.column, self.message
        )
    }
}

/// Diagnostics as one error message.
pub fn diagnostics_error(d: &[Diagnostic]) -> datafusion::common::DataFusionError {
    let lines: Vec<String> = d.iter().map(|d| d.to_string()).collect();
    datafusion::common::DataFusionError::Plan(format!(
        "the application code has {} error(s):\n{}",
        d.len(),
        lines.join("\n")
    ))
}

/// Parses a column list as in `CREATE STREAM` (`"TICKER VARCHAR(4), PRICE DOUBLE"`, with or
/// without the parentheses) into an Arrow schema (column names folded like KDA identifiers).
pub fn parse_columns(decl: &str) -> Result<datafusion::arrow::datatypes::Schema, String> {
    let decl = decl.trim();
    let code = if decl.starts_with('(') {
        format!("CREATE STREAM X {decl}")
    } else {
        format!("CREATE STREAM X ({decl})")
    };
    let p = parse_program(&code).map_err(|d| {
        d.iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    match p.first().map(|s| &s.kind) {
        Some(StatementKind::Stream(s)) => Ok(datafusion::arrow::datatypes::Schema::new(
            s.columns
                .iter()
                .map(|c| c.field.clone())
                .collect::<Vec<_>>(),
        )),
        _ => Err("expected a column list".to_string()),
    }
}

/// A column of `CREATE STREAM`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDecl {
    /// Name and Arrow type (nullable unless NOT NULL).
    pub field: Field,
    /// Declared length of CHAR/VARCHAR (values are truncated to it on insert).
    pub length: Option<usize>,
    /// The SQL type as written.
    pub sql_type: String,
}

/// `CREATE [OR REPLACE] STREAM`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDecl {
    /// Name (folded).
    pub name: String,
    /// Columns.
    pub columns: Vec<ColumnDecl>,
    /// `DESCRIPTION '...'`.
    pub description: Option<String>,
    /// `OR REPLACE` was given.
    pub or_replace: bool,
}

/// `CREATE [OR REPLACE] PUMP`.
#[derive(Debug, Clone, PartialEq)]
pub struct PumpDecl {
    /// Name (folded).
    pub name: String,
    /// Target stream.
    pub target: String,
    /// `INSERT INTO s (cols)`.
    pub columns: Option<Vec<String>>,
    /// The query's tokens.
    pub query: Vec<Token>,
    /// `DESCRIPTION '...'`.
    pub description: Option<String>,
}

/// One statement of the application code.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// `CREATE STREAM`.
    Stream(StreamDecl),
    /// `CREATE PUMP`.
    Pump(PumpDecl),
    /// A bare `SELECT STREAM` (SQLstream style, for interactive use and tests).
    Query(Vec<Token>),
}

/// A statement and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramStatement {
    /// 1-based number.
    pub number: usize,
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
    /// The statement.
    pub kind: StatementKind,
}

/// Parses application code; every statement that fails adds a diagnostic.
pub fn parse_program(code: &str) -> Result<Vec<ProgramStatement>, Vec<Diagnostic>> {
    let (statements, diags) = parse_program_lenient(code);
    if diags.is_empty() {
        Ok(statements)
    } else {
        Err(diags)
    }
}

/// Parses application code: the statements that parse, and a diagnostic for each one that
/// does not (so later checks can still report problems in the others).
pub fn parse_program_lenient(code: &str) -> (Vec<ProgramStatement>, Vec<Diagnostic>) {
    let toks = match tokenize(code) {
        Ok(t) => t,
        Err(e) => {
            return (
                Vec::new(),
                vec![Diagnostic {
                    statement: 0,
                    line: 1,
                    column: 1,
                    message: e.to_string(),
                }],
            )
        }
    };
    let mut statements: Vec<Vec<Tok>> = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i32;
    for t in toks {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                statements.push(std::mem::take(&mut current));
                depth = 0;
                continue;
            }
            _ => {}
        }
        current.push(t);
    }
    statements.push(current);
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for (i, st) in statements.into_iter().filter(|s| !s.is_empty()).enumerate() {
        let number = i + 1;
        let (line, column) = (st[0].line, st[0].column);
        match parse_statement(&st) {
            Ok(kind) => out.push(ProgramStatement {
                number,
                line,
                column,
                kind,
            }),
            Err((at, message)) => {
                let t = st.get(at).unwrap_or(&st[0]);
                diags.push(Diagnostic {
                    statement: number,
                    line: t.line,
                    column: t.column,
                    message,
                });
            }
        }
    }
    (out, diags)
}

type ParseError = (usize, String);

fn expect_name(toks: &[Tok], i: usize, what: &str) -> Result<String, ParseError> {
    toks.get(i)
        .and_then(|t| ident_name(&t.token))
        .ok_or_else(|| {
            (
                i,
                format!(
                    "expected {what}, found {}",
                    toks.get(i)
                        .map(|t| t.token.to_string())
                        .unwrap_or("the end".into())
                ),
            )
        })
}

fn description(toks: &[Tok], i: &mut usize) -> Result<Option<String>, ParseError> {
    if toks.get(*i).is_some_and(|t| is_kw(&t.token, "DESCRIPTION")) {
        match toks.get(*i + 1).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => {
                *i += 2;
                Ok(Some(s.clone()))
            }
            _ => Err((*i, "DESCRIPTION needs a string literal".into())),
        }
    } else {
        Ok(None)
    }
}

fn parse_statement(toks: &[Tok]) -> Result<StatementKind, ParseError> {
    let kw = |i: usize, w: &str| toks.get(i).is_some_and(|t| is_kw(&t.token, w));
    if kw(0, "SELECT") || toks[0].token == Token::LParen {
        return Ok(StatementKind::Query(
            toks.iter().map(|t| t.token.clone()).collect(),
        ));
    }
    if !kw(0, "CREATE") {
        return Err((
            0,
            format!(
                "expected CREATE STREAM, CREATE PUMP or SELECT STREAM, found {}",
                toks[0].token
            ),
        ));
    }
    let mut i = 1;
    let or_replace = kw(1, "OR") && kw(2, "REPLACE");
    if or_replace {
        i = 3;
    }
    if kw(i, "STREAM") {
        return parse_stream(toks, i + 1, or_replace).map(StatementKind::Stream);
    }
    if kw(i, "PUMP") {
        return parse_pump(toks, i + 1).map(StatementKind::Pump);
    }
    if kw(i, "FUNCTION") {
        return Err((
            i,
            "CREATE FUNCTION (user-defined functions) is not supported".into(),
        ));
    }
    Err((
        i,
        format!(
            "expected STREAM or PUMP after CREATE{}, found {}",
            if or_replace { " OR REPLACE" } else { "" },
            toks.get(i)
                .map(|t| t.token.to_string())
                .unwrap_or("the end".into())
        ),
    ))
}

fn parse_stream(toks: &[Tok], mut i: usize, or_replace: bool) -> Result<StreamDecl, ParseError> {
    let name = expect_name(toks, i, "a stream name")?;
    if name.eq_ignore_ascii_case("error_stream") {
        return Err((
            i,
            "the name error_stream is reserved for the system error stream".into(),
        ));
    }
    i += 1;
    if toks.get(i).map(|t| &t.token) != Some(&Token::LParen) {
        return Err((
            i,
            format!("CREATE STREAM {name}: expected '(' and the column list"),
        ));
    }
    let plain: Vec<Token> = toks.iter().map(|t| t.token.clone()).collect();
    let close = matching_paren(&plain, i).map_err(|e| (i, e.to_string()))?;
    let mut columns = Vec::new();
    let mut start = i + 1;
    let mut depth = 0;
    for (j, t) in plain.iter().enumerate().take(close + 1).skip(i + 1) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen if depth > 0 => depth -= 1,
            Token::Comma | Token::RParen if depth == 0 => {
                if j > start {
                    columns.push(parse_column(toks, start, j, &name)?);
                }
                start = j + 1;
            }
            _ => {}
        }
    }
    if columns.is_empty() {
        return Err((
            i,
            format!("CREATE STREAM {name}: a stream needs at least one column"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for c in &columns {
        if !seen.insert(c.field.name().clone()) {
            return Err((
                i,
                format!(
                    "CREATE STREAM {name}: column {} is declared twice",
                    c.field.name()
                ),
            ));
        }
    }
    i = close + 1;
    let description = description(toks, &mut i)?;
    if i < toks.len() {
        return Err((
            i,
            format!(
                "CREATE STREAM {name}: unexpected {} after the column list",
                toks[i].token
            ),
        ));
    }
    Ok(StreamDecl {
        name,
        columns,
        description,
        or_replace,
    })
}

fn parse_column(
    toks: &[Tok],
    from: usize,
    to: usize,
    stream: &str,
) -> Result<ColumnDecl, ParseError> {
    let name = expect_name(toks, from, "a column name")?;
    if name == crate::translate::ROWTIME {
        return Err((
            from,
            format!("stream {stream}: ROWTIME is a system column and cannot be declared"),
        ));
    }
    let mut end = to;
    let mut not_null = false;
    if end >= from + 3 && is_kw(&toks[end - 2].token, "NOT") && is_kw(&toks[end - 1].token, "NULL")
    {
        not_null = true;
        end -= 2;
    }
    if end <= from + 1 {
        return Err((from, format!("stream {stream}: column {name} has no type")));
    }
    let type_toks: Vec<Token> = toks[from + 1..end]
        .iter()
        .map(|t| t.token.clone())
        .collect();
    let sql_type = render(&type_toks)
        .replace(" ( ", "(")
        .replace(" )", ")")
        .replace(" , ", ",");
    if sql_type.to_ascii_uppercase().starts_with("INTERVAL") {
        return Err((
            from + 1,
            format!("stream {stream}: column {name}: INTERVAL is not a column type in KDA"),
        ));
    }
    let data_type = sql_type_to_arrow(&sql_type)
        .map_err(|e| (from + 1, format!("stream {stream}: column {name}: {e}")))?;
    let data_type = match data_type {
        // KDA TIME has millisecond precision.
        DataType::Time64(_) => {
            DataType::Time32(datafusion::arrow::datatypes::TimeUnit::Millisecond)
        }
        other => other,
    };
    let upper = sql_type.to_ascii_uppercase();
    let length = if upper.starts_with("VARCHAR") || upper.starts_with("CHAR") {
        sql_type
            .split(|c: char| !c.is_ascii_digit())
            .find_map(|s| s.parse::<usize>().ok())
    } else {
        None
    };
    Ok(ColumnDecl {
        field: Field::new(name, data_type, !not_null),
        length,
        sql_type,
    })
}

fn parse_pump(toks: &[Tok], mut i: usize) -> Result<PumpDecl, ParseError> {
    let name = expect_name(toks, i, "a pump name")?;
    i += 1;
    let mut desc = description(toks, &mut i)?;
    if !toks.get(i).is_some_and(|t| is_kw(&t.token, "AS")) {
        return Err((
            i,
            format!("CREATE PUMP {name}: expected AS INSERT INTO <stream> SELECT STREAM ..."),
        ));
    }
    i += 1;
    if !toks.get(i).is_some_and(|t| is_kw(&t.token, "INSERT")) {
        return Err((
            i,
            format!("CREATE PUMP {name}: a pump is AS INSERT INTO <stream> SELECT STREAM ..."),
        ));
    }
    i += 1;
    if toks.get(i).is_some_and(|t| is_kw(&t.token, "EXPEDITED")) {
        i += 1;
    }
    if !toks.get(i).is_some_and(|t| is_kw(&t.token, "INTO")) {
        return Err((i, format!("CREATE PUMP {name}: expected INTO after INSERT")));
    }
    i += 1;
    let target = expect_name(toks, i, "the target stream")?;
    i += 1;
    let mut columns = None;
    if toks.get(i).map(|t| &t.token) == Some(&Token::LParen) {
        let plain: Vec<Token> = toks.iter().map(|t| t.token.clone()).collect();
        let close = matching_paren(&plain, i).map_err(|e| (i, e.to_string()))?;
        // `INSERT INTO s (SELECT ...)` is a parenthesised query, not a column list.
        if !toks.get(i + 1).is_some_and(|t| is_kw(&t.token, "SELECT")) {
            let mut cols = Vec::new();
            for (k, t) in toks[i + 1..close].iter().enumerate() {
                if k % 2 == 1 {
                    if t.token != Token::Comma {
                        return Err((i + 1 + k, format!("CREATE PUMP {name}: the column list of {target} must be names separated by commas")));
                    }
                    continue;
                }
                cols.push(expect_name(toks, i + 1 + k, "a column name")?);
            }
            columns = Some(cols);
            i = close + 1;
        }
    }
    if desc.is_none() {
        desc = description(toks, &mut i)?;
    }
    let query: Vec<Token> = toks[i..].iter().map(|t| t.token.clone()).collect();
    if !query
        .first()
        .is_some_and(|t| is_kw(t, "SELECT") || *t == Token::LParen)
    {
        return Err((
            i,
            format!("CREATE PUMP {name}: expected SELECT STREAM ... after INSERT INTO {target}"),
        ));
    }
    Ok(PumpDecl {
        name,
        target,
        columns,
        query,
        description: desc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_streams_and_pumps() {
        let code = r#"
-- a comment
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    ticker_symbol VARCHAR(4), "Price" DOUBLE NOT NULL, ts TIMESTAMP) DESCRIPTION 'out';
CREATE PUMP p AS INSERT INTO "DESTINATION_SQL_STREAM" (TICKER_SYMBOL, "Price")
  SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001";
"#;
        let p = parse_program(code).unwrap();
        assert_eq!(p.len(), 2);
        let StatementKind::Stream(s) = &p[0].kind else {
            panic!()
        };
        assert_eq!(s.name, "DESTINATION_SQL_STREAM");
        assert_eq!(s.columns[0].field.name(), "TICKER_SYMBOL");
        assert_eq!(s.columns[0].length, Some(4));
        assert_eq!(s.columns[1].field.name(), "Price");
        assert!(!s.columns[1].field.is_nullable());
        assert_eq!(s.description.as_deref(), Some("out"));
        assert_eq!(p[0].line, 3);
        let StatementKind::Pump(pump) = &p[1].kind else {
            panic!()
        };
        assert_eq!(pump.name, "P");
        assert_eq!(
            pump.columns.as_deref(),
            Some(&["TICKER_SYMBOL".to_string(), "Price".to_string()][..])
        );
    }

    #[test]
    fn reports_every_error_with_position() {
        let code = "CREATE STREAM error_stream (a INT);\nCREATE STREAM s (a NOTATYPE);\nCREATE PUMP p AS INSERT INTO s;";
        let d = parse_program(code).unwrap_err();
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].statement, d[0].line), (1, 1));
        assert!(d[0].message.contains("reserved"));
        assert_eq!((d[1].statement, d[1].line, d[1].column), (2, 2, 20));
        assert!(d[1].message.contains("NOTATYPE"), "{}", d[1].message);
        assert_eq!(d[2].statement, 3);
    }
}
