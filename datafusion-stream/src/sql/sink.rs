//! `CREATE SINK` and connector tables (`CREATE TABLE ... WITH ('connector' = ...)`).
//!
//! ```sql
//! CREATE [OR REPLACE] SINK [IF NOT EXISTS] name [(col TYPE [NOT NULL], ...)]
//!     WITH ('connector' = 'object_store' | 'filesystem' | 'kinesis', ...);
//! INSERT INTO name SELECT ...;                      -- a continuous query into the sink
//!
//! CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name [(col TYPE, ...)]
//!     WITH ('connector' = 'object_store', 'path' = 's3://bucket/key.csv', ...);
//! ```
//!
//! ```text
//!  statement tokens ──classify──► CREATE SINK ...                 ──► parse_connector_ddl
//!                             ├─► CREATE TABLE ... WITH ('connector' ──► parse_connector_ddl
//!                             └─► anything else (DataFusion's CREATE TABLE / CREATE EXTERNAL
//!                                 TABLE / CTAS / INSERT INTO a table ... untouched)
//! ```
//!
//! As in Flink, the connector is an option (`'connector' = ...`), the columns are optional
//! (a sink without them takes the INSERT query's columns; a table without them infers them
//! from the data), and a sink is written by `INSERT INTO` (Flink, RisingWave: `CREATE SINK ...
//! AS SELECT` is RisingWave's shorthand and not supported here: a sink may receive several
//! INSERTs over time, each a query of its own).

use std::collections::HashMap;

use datafusion::arrow::datatypes::Field;
use datafusion::common::{plan_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::sql::sqlparser::ast::ColumnOption;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::ddl::sql_type_to_arrow;

/// Which connector DDL a statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorObject {
    /// `CREATE SINK`.
    Sink,
    /// `CREATE TABLE ... WITH ('connector' = ...)`.
    Table,
}

impl ConnectorObject {
    fn keyword(self) -> &'static str {
        match self {
            Self::Sink => "SINK",
            Self::Table => "TABLE",
        }
    }
}

/// A parsed `CREATE SINK` or connector `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorDdl {
    /// Sink or table.
    pub object: ConnectorObject,
    /// Name (normalised).
    pub name: String,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Declared columns; `None` when there is no column list.
    pub columns: Option<Vec<Field>>,
    /// `WITH (...)` options, keys lower-cased.
    pub options: HashMap<String, String>,
}

fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// What connector DDL `sql` is, if any (cheap: tokens only).
pub fn classify(sql: &str) -> Option<ConnectorObject> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    classify_tokens(&tokens)
}

/// Like [`classify`], over tokens.
pub fn classify_tokens(tokens: &[Token]) -> Option<ConnectorObject> {
    let sig: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    if !sig.first().is_some_and(|t| is_word(t, "CREATE")) {
        return None;
    }
    let mut i = 1;
    if sig.get(1).is_some_and(|t| is_word(t, "OR"))
        && sig.get(2).is_some_and(|t| is_word(t, "REPLACE"))
    {
        i = 3;
    }
    let kw = sig.get(i)?;
    if is_word(kw, "SINK") {
        return Some(ConnectorObject::Sink);
    }
    if !is_word(kw, "TABLE") {
        return None;
    }
    // A connector table has WITH ('connector' = ...); anything else is DataFusion's.
    let connector = sig.windows(3).any(|w| {
        is_word(w[0], "WITH")
            && *w[1] == Token::LParen
            && matches!(w[2], Token::SingleQuotedString(s) if s.eq_ignore_ascii_case("connector"))
    });
    connector.then_some(ConnectorObject::Table)
}

fn take_word(p: &mut Parser, w: &str) -> bool {
    if is_word(&p.peek_token().token, w) {
        p.next_token();
        true
    } else {
        false
    }
}

/// Parses a `CREATE SINK` or connector `CREATE TABLE`. `normalize` maps an identifier
/// (value, quoted?) to a name.
pub fn parse_connector_ddl(
    sql: &str,
    normalize: &dyn Fn(&str, bool) -> String,
) -> Result<ConnectorDdl> {
    let object = classify(sql)
        .ok_or_else(|| plan_datafusion_err!("not a CREATE SINK or connector CREATE TABLE"))?;
    let what = format!("CREATE {}", object.keyword());
    let pe = |e: &dyn std::fmt::Display| plan_datafusion_err!("{what}: {e}");
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| pe(&e))?;
    let expect = |p: &mut Parser, w: &str| -> Result<()> {
        if take_word(p, w) {
            Ok(())
        } else {
            Err(pe(&format!("expected {w}, found {}", p.peek_token())))
        }
    };
    expect(&mut p, "CREATE")?;
    let or_replace = take_word(&mut p, "OR");
    if or_replace {
        expect(&mut p, "REPLACE")?;
    }
    expect(&mut p, object.keyword())?;
    let if_not_exists = if take_word(&mut p, "IF") {
        expect(&mut p, "NOT")?;
        expect(&mut p, "EXISTS")?;
        true
    } else {
        false
    };
    let name_parts = p.parse_object_name(false).map_err(|e| pe(&e))?;
    let name = name_parts
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(id) => normalize(&id.value, id.quote_style.is_some()),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    let what = format!("{what} {name}");
    let pe = |e: &dyn std::fmt::Display| plan_datafusion_err!("{what}: {e}");
    let mut columns = None;
    if p.consume_token(&Token::LParen) {
        let mut cols: Vec<Field> = Vec::new();
        loop {
            if is_word(&p.peek_token().token, "WATERMARK") {
                return Err(pe(
                    &"WATERMARK applies to streams (CREATE STREAM), not here",
                ));
            }
            let def = p.parse_column_def().map_err(|e| pe(&e))?;
            let col = normalize(&def.name.value, def.name.quote_style.is_some());
            let data_type = sql_type_to_arrow(&def.data_type.to_string())
                .map_err(|e| pe(&format!("column '{col}': {e}")))?;
            let not_null = def
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull));
            if cols.iter().any(|f| f.name() == &col) {
                return Err(pe(&format!("column '{col}' is declared twice")));
            }
            cols.push(Field::new(col, data_type, !not_null));
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen).map_err(|e| pe(&e))?;
            break;
        }
        columns = Some(cols);
    }
    if !take_word(&mut p, "WITH") {
        return Err(pe(&format!(
            "expected WITH ('connector' = '...', ...), found {}",
            p.peek_token()
        )));
    }
    let options = parse_options(&mut p, &what)?;
    if p.peek_token().token != Token::EOF {
        return Err(pe(&format!(
            "unexpected {} after the statement",
            p.peek_token()
        )));
    }
    Ok(ConnectorDdl {
        object,
        name,
        or_replace,
        if_not_exists,
        columns,
        options,
    })
}

/// `( 'key' = value, ... )`, keys lower-cased, each key once.
fn parse_options(p: &mut Parser, what: &str) -> Result<HashMap<String, String>> {
    let pe = |e: &dyn std::fmt::Display| -> DataFusionError { plan_datafusion_err!("{what}: {e}") };
    p.expect_token(&Token::LParen).map_err(|e| pe(&e))?;
    let mut options = HashMap::new();
    loop {
        let key = p
            .parse_literal_string()
            .map_err(|e| pe(&e))?
            .to_ascii_lowercase();
        p.expect_token(&Token::Eq).map_err(|e| pe(&e))?;
        let value = match p.next_token().token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            other => {
                return Err(pe(&format!(
                    "option '{key}': expected a value, found {other}"
                )))
            }
        };
        if options.insert(key.clone(), value).is_some() {
            return plan_err!("{what}: option '{key}' is given twice");
        }
        if p.consume_token(&Token::Comma) {
            continue;
        }
        p.expect_token(&Token::RParen).map_err(|e| pe(&e))?;
        break;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::normalize_lower;
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn classifies_only_connector_statements() {
        assert_eq!(
            classify("create sink s with ('connector'='x')"),
            Some(ConnectorObject::Sink)
        );
        assert_eq!(
            classify("CREATE OR REPLACE TABLE t (a INT) WITH ('connector' = 'object_store')"),
            Some(ConnectorObject::Table)
        );
        assert_eq!(classify("CREATE TABLE t (a INT)"), None);
        assert_eq!(classify("CREATE TABLE t AS SELECT 1"), None);
        assert_eq!(
            classify("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 's3://b/k.csv'"),
            None
        );
        assert_eq!(
            classify("CREATE STREAM s (a INT) WITH ('connector' = 'x')"),
            None
        );
        assert_eq!(classify("SELECT 1"), None);
    }

    #[test]
    fn parses_sink_with_and_without_columns() {
        let d = parse_connector_ddl(
            "CREATE OR REPLACE SINK Out (w TIMESTAMP, \"Sector\" VARCHAR NOT NULL, n BIGINT) WITH ('connector' = 'object_store', 'path' = 's3://b/out/', 'roll_rows' = 100)",
            &normalize_lower,
        )
        .unwrap();
        assert_eq!(d.object, ConnectorObject::Sink);
        assert_eq!(d.name, "out");
        assert!(d.or_replace);
        let cols = d.columns.unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[1].name(), "Sector");
        assert!(!cols[1].is_nullable());
        assert_eq!(cols[2].data_type(), &DataType::Int64);
        assert_eq!(d.options.get("roll_rows").map(String::as_str), Some("100"));
        let d = parse_connector_ddl(
            "CREATE SINK IF NOT EXISTS k WITH ('connector' = 'kinesis')",
            &normalize_lower,
        )
        .unwrap();
        assert!(d.if_not_exists);
        assert_eq!(d.columns, None);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_connector_ddl("CREATE SINK s (a INT)", &normalize_lower).unwrap_err();
        assert!(
            e.to_string().contains("CREATE SINK s: expected WITH"),
            "{e}"
        );
        let e = parse_connector_ddl(
            "CREATE SINK s WITH ('connector' = 'x', 'connector' = 'y')",
            &normalize_lower,
        )
        .unwrap_err();
        assert!(e.to_string().contains("'connector' is given twice"), "{e}");
        let e = parse_connector_ddl(
            "CREATE TABLE t (a FOO) WITH ('connector' = 'x')",
            &normalize_lower,
        )
        .unwrap_err();
        assert!(e.to_string().contains("CREATE TABLE t: column 'a'"), "{e}");
        let e = parse_connector_ddl(
            "CREATE SINK s WITH ('connector' = 'x') AS SELECT 1",
            &normalize_lower,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unexpected"), "{e}");
    }
}
