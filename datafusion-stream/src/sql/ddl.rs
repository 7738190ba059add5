//! `CREATE [OR REPLACE] STREAM [IF NOT EXISTS] name (columns [, WATERMARK FOR col AS expr]) [WITH (...)]`.
//!
//! ```sql
//! CREATE STREAM trades (
//!     ts TIMESTAMP, symbol VARCHAR, price DOUBLE NOT NULL,
//!     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! ) WITH ('connector' = 'replay', 'partitions' = '2');
//! ```
//!
//! `TIMESTAMP` is millisecond precision here, as in Flink (`TIMESTAMP(3)`) and KDA.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{plan_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::sql::sqlparser::ast::ColumnOption;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// A parsed `CREATE STREAM`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    /// Stream name (normalised).
    pub name: String,
    /// `OR REPLACE`.
    pub or_replace: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Columns.
    pub columns: Vec<Field>,
    /// `WATERMARK FOR col AS expr`: the column and the expression's SQL text.
    pub watermark: Option<(String, String)>,
    /// `WITH (...)` options, keys lower-cased.
    pub options: HashMap<String, String>,
}

fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// True if the statement starts with `CREATE [OR REPLACE] STREAM`.
pub fn is_create_stream(tokens: &[Token]) -> bool {
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .take(4)
        .collect();
    match words.as_slice() {
        [c, s, ..] if is_word(c, "CREATE") && is_word(s, "STREAM") => true,
        [c, o, r, s, ..] if is_word(c, "CREATE") && is_word(o, "OR") && is_word(r, "REPLACE") => {
            is_word(s, "STREAM")
        }
        _ => false,
    }
}

fn pe(e: impl std::fmt::Display) -> DataFusionError {
    plan_datafusion_err!("CREATE STREAM: {e}")
}

fn take_word(p: &mut Parser, w: &str) -> bool {
    if is_word(&p.peek_token().token, w) {
        p.next_token();
        true
    } else {
        false
    }
}

fn expect_word(p: &mut Parser, w: &str) -> Result<()> {
    if take_word(p, w) {
        Ok(())
    } else {
        Err(pe(format!("expected {w}, found {}", p.peek_token())))
    }
}

/// Parses a `CREATE STREAM` statement. `normalize` maps an identifier (value, quoted?) to a name.
pub fn parse_create_stream(
    sql: &str,
    normalize: &dyn Fn(&str, bool) -> String,
) -> Result<CreateStream> {
    let dialect = GenericDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql).map_err(pe)?;
    expect_word(&mut p, "CREATE")?;
    let or_replace = take_word(&mut p, "OR");
    if or_replace {
        expect_word(&mut p, "REPLACE")?;
    }
    expect_word(&mut p, "STREAM")?;
    let if_not_exists = if take_word(&mut p, "IF") {
        expect_word(&mut p, "NOT")?;
        expect_word(&mut p, "EXISTS")?;
        true
    } else {
        false
    };
    let name_parts = p.parse_object_name(false).map_err(pe)?;
    let name = name_parts
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(id) => normalize(&id.value, id.quote_style.is_some()),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".");
    p.expect_token(&Token::LParen).map_err(pe)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    loop {
        if take_word(&mut p, "WATERMARK") {
            expect_word(&mut p, "FOR")?;
            let col = p.parse_identifier().map_err(pe)?;
            expect_word(&mut p, "AS")?;
            let expr = p.parse_expr().map_err(pe)?;
            if watermark.is_some() {
                return plan_err!("CREATE STREAM {name}: only one WATERMARK may be declared");
            }
            watermark = Some((
                normalize(&col.value, col.quote_style.is_some()),
                expr.to_string(),
            ));
        } else {
            let def = p.parse_column_def().map_err(pe)?;
            let col = normalize(&def.name.value, def.name.quote_style.is_some());
            let data_type = sql_type_to_arrow(&def.data_type.to_string())
                .map_err(|e| pe(format!("column '{col}': {e}")))?;
            let not_null = def
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull));
            if columns.iter().any(|f: &Field| f.name() == &col) {
                return plan_err!("CREATE STREAM {name}: column '{col}' is declared twice");
            }
            columns.push(Field::new(col, data_type, !not_null));
        }
        if p.consume_token(&Token::Comma) {
            continue;
        }
        p.expect_token(&Token::RParen).map_err(pe)?;
        break;
    }
    let mut options = HashMap::new();
    if take_word(&mut p, "WITH") {
        p.expect_token(&Token::LParen).map_err(pe)?;
        loop {
            let key = p.parse_literal_string().map_err(pe)?.to_ascii_lowercase();
            p.expect_token(&Token::Eq).map_err(pe)?;
            let value = match p.next_token().token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) => w.value,
                other => {
                    return Err(pe(format!(
                        "option '{key}': expected a value, found {other}"
                    )))
                }
            };
            if options.insert(key.clone(), value).is_some() {
                return plan_err!("CREATE STREAM {name}: option '{key}' is given twice");
            }
            if p.consume_token(&Token::Comma) {
                continue;
            }
            p.expect_token(&Token::RParen).map_err(pe)?;
            break;
        }
    }
    if p.peek_token().token != Token::EOF {
        return Err(pe(format!(
            "unexpected {} after the statement",
            p.peek_token()
        )));
    }
    if columns.is_empty() {
        return plan_err!("CREATE STREAM {name}: a stream needs at least one column");
    }
    Ok(CreateStream {
        name,
        or_replace,
        if_not_exists,
        columns,
        watermark,
        options,
    })
}

/// Maps a SQL type name to an Arrow type.
pub fn sql_type_to_arrow(sql_type: &str) -> std::result::Result<DataType, String> {
    let t = sql_type.trim().to_ascii_uppercase();
    let with_tz = t.contains("WITH TIME ZONE") && !t.contains("WITHOUT TIME ZONE");
    let base_end = t.find('(').unwrap_or(t.len());
    let base = t[..base_end]
        .trim()
        .trim_end_matches("WITH TIME ZONE")
        .trim_end_matches("WITHOUT TIME ZONE")
        .trim()
        .to_string();
    let nums: Vec<u32> = t[base_end..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    Ok(match base.as_str() {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" | "INT4" => DataType::Int32,
        "BIGINT" | "INT8" | "LONG" => DataType::Int64,
        "REAL" | "FLOAT4" => DataType::Float32,
        "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" => DataType::Float64,
        "DECIMAL" | "NUMERIC" | "DEC" => {
            let p = nums.first().copied().unwrap_or(38);
            let s = nums.get(1).copied().unwrap_or(0);
            if p == 0 || p > 38 || s > p {
                return Err(format!(
                    "{sql_type}: precision must be 1..38 and scale at most the precision"
                ));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        "VARCHAR" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" | "CHAR VARYING" | "STRING"
        | "TEXT" | "NVARCHAR" => DataType::Utf8,
        "BINARY" | "VARBINARY" | "BYTEA" | "BLOB" => DataType::Binary,
        "DATE" => DataType::Date32,
        "TIME" => DataType::Time64(TimeUnit::Nanosecond),
        "TIMESTAMP" => {
            let unit = match nums.first().copied().unwrap_or(3) {
                0 => TimeUnit::Second,
                1..=3 => TimeUnit::Millisecond,
                4..=6 => TimeUnit::Microsecond,
                7..=9 => TimeUnit::Nanosecond,
                p => return Err(format!("TIMESTAMP({p}): precision must be 0..9")),
            };
            DataType::Timestamp(unit, with_tz.then(|| "+00:00".into()))
        }
        _ => return Err(format!("unsupported type {sql_type}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str, quoted: bool) -> String {
        if quoted {
            s.to_string()
        } else {
            s.to_ascii_lowercase()
        }
    }

    #[test]
    fn parses_columns_watermark_and_options() {
        let c = parse_create_stream(
            "CREATE OR REPLACE STREAM T (ts TIMESTAMP, \"Key\" VARCHAR(4) NOT NULL, v DOUBLE, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'replay', 'partitions' = 2)",
            &lower,
        )
        .unwrap();
        assert_eq!(c.name, "t");
        assert!(c.or_replace);
        assert_eq!(c.columns.len(), 3);
        assert_eq!(
            c.columns[0].data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(c.columns[1].name(), "Key");
        assert!(!c.columns[1].is_nullable());
        assert_eq!(
            c.watermark,
            Some(("ts".into(), "ts - INTERVAL '5' SECOND".into()))
        );
        assert_eq!(c.options.get("partitions").map(String::as_str), Some("2"));
    }

    #[test]
    fn rejects_unknown_types_and_trailing_garbage() {
        let e = parse_create_stream("CREATE STREAM s (a FOO)", &lower).unwrap_err();
        assert!(e.to_string().contains("column 'a'"), "{e}");
        let e = parse_create_stream("CREATE STREAM s (a INT) nonsense", &lower).unwrap_err();
        assert!(e.to_string().contains("unexpected"), "{e}");
        let e = parse_create_stream("CREATE STREAM s (a INT, a INT)", &lower).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn maps_types() {
        assert_eq!(
            sql_type_to_arrow("DECIMAL(10,2)").unwrap(),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(
            sql_type_to_arrow("timestamp(6)").unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(sql_type_to_arrow("BIGINT").unwrap(), DataType::Int64);
        assert!(sql_type_to_arrow("GEOMETRY").is_err());
    }
}
