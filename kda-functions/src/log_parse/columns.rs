//! Column descriptions of the log parsers (`'A VARCHAR(10), B INTEGER'`, `'ts TYPE TIMESTAMP
//! ''MMM d HH:mm:ss'' START 0 FOR 15'`) and the conversion of the parsed text to those types.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{plan_err, Result};

use crate::simple_date_format::SimpleDateFormat;
use crate::util::MS_PER_DAY;

/// The SQL type of a parsed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    /// `VARCHAR(n)`; values longer than `n` characters are truncated (KDA truncates VARCHAR
    /// overflow rather than failing, SPEC §2.7). `None`: unbounded.
    Varchar(Option<usize>),
    /// `CHAR(n)`: truncated or blank-padded to `n` characters.
    Char(usize),
    /// `TINYINT`
    TinyInt,
    /// `SMALLINT`
    SmallInt,
    /// `INTEGER` / `INT`
    Integer,
    /// `BIGINT`
    BigInt,
    /// `REAL`
    Real,
    /// `DOUBLE` / `DOUBLE PRECISION` / `FLOAT`
    Double,
    /// `DECIMAL(p, s)` / `DEC` / `NUMERIC`
    Decimal(u8, i8),
    /// `BOOLEAN`
    Boolean,
    /// `TIMESTAMP` (milliseconds, no zone)
    Timestamp,
    /// `DATE`
    Date,
    /// `TIME` (milliseconds)
    Time,
}

impl SqlType {
    /// The Arrow type of the column.
    pub fn arrow_type(&self) -> DataType {
        match self {
            Self::Varchar(_) | Self::Char(_) => DataType::Utf8,
            Self::TinyInt => DataType::Int8,
            Self::SmallInt => DataType::Int16,
            Self::Integer => DataType::Int32,
            Self::BigInt => DataType::Int64,
            Self::Real => DataType::Float32,
            Self::Double => DataType::Float64,
            Self::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Self::Boolean => DataType::Boolean,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time32(TimeUnit::Millisecond),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Self::Varchar(_) | Self::Char(_))
    }

    fn is_datetime(&self) -> bool {
        matches!(self, Self::Timestamp | Self::Date | Self::Time)
    }
}

/// One output column of a log parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Field name in the result struct (unquoted names are upper-cased, as KDA does).
    pub name: String,
    /// SQL type.
    pub ty: SqlType,
    /// `NOT NULL` was given. Accepted for compatibility; not enforced (a value that cannot be
    /// converted is NULL either way).
    pub not_null: bool,
    /// `START n` (0-based character position), for `FIXED_COLUMN_LOG_PARSE`.
    pub start: Option<usize>,
    /// `FOR n` (length in characters), for `FIXED_COLUMN_LOG_PARSE`.
    pub length: Option<usize>,
    /// A `SimpleDateFormat` pattern for DATE / TIME / TIMESTAMP columns.
    pub format: Option<String>,
}

impl ColumnSpec {
    /// A `VARCHAR(len)` column with the default name `COLUMN{index}` (1-based).
    pub fn default_varchar(index: usize, len: Option<usize>) -> Self {
        Self::named(format!("COLUMN{index}"), SqlType::Varchar(len))
    }

    /// A column with the given name and type.
    pub fn named(name: impl Into<String>, ty: SqlType) -> Self {
        Self {
            name: name.into(),
            ty,
            not_null: false,
            start: None,
            length: None,
            format: None,
        }
    }

    /// The Arrow field of the column (always nullable: a non-matching line gives NULLs).
    pub fn field(&self) -> Field {
        Field::new(&self.name, self.ty.arrow_type(), true)
    }
}

/// `COLUMN1..COLUMNn`, all `VARCHAR(1024)` — the documented default of the log parsers.
pub fn default_columns(n: usize) -> Vec<ColumnSpec> {
    (1..=n)
        .map(|i| ColumnSpec::default_varchar(i, Some(1024)))
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    QuotedName(String),
    Str(String),
    Num(usize),
    LParen,
    RParen,
    Comma,
}

fn tokenize(func: &str, spec: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = spec.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '\'' | '"' => {
                let mut text = String::new();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    if chars[i] == c {
                        if chars.get(i + 1) == Some(&c) {
                            text.push(c);
                            i += 2;
                            continue;
                        }
                        closed = true;
                        i += 1;
                        break;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                if !closed {
                    return plan_err!("{func}: unterminated {c} quote in column list '{spec}'");
                }
                toks.push(if c == '"' {
                    Tok::QuotedName(text)
                } else {
                    Tok::Str(text)
                });
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                match digits.parse() {
                    Ok(n) => toks.push(Tok::Num(n)),
                    Err(_) => return plan_err!("{func}: number {digits} too large in column list"),
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => {
                return plan_err!("{func}: unexpected character '{other}' in column list '{spec}'")
            }
        }
    }
    Ok(toks)
}

struct SpecParser<'a> {
    func: &'a str,
    spec: &'a str,
    toks: Vec<Tok>,
    pos: usize,
}

impl SpecParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect_num(&mut self, what: &str) -> Result<usize> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n),
            other => plan_err!(
                "{}: expected {what} in column list '{}', found {other:?}",
                self.func,
                self.spec
            ),
        }
    }

    /// `( n [, m] )` after a type name, if present.
    fn type_args(&mut self) -> Result<Vec<usize>> {
        if self.peek() != Some(&Tok::LParen) {
            return Ok(vec![]);
        }
        self.pos += 1;
        let mut args = vec![self.expect_num("a type length")?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            args.push(self.expect_num("a type argument")?);
        }
        match self.next() {
            Some(Tok::RParen) => Ok(args),
            other => plan_err!(
                "{}: expected ')' in column list '{}', found {other:?}",
                self.func,
                self.spec
            ),
        }
    }

    fn data_type(&mut self, column: &str) -> Result<SqlType> {
        let f = self.func;
        let Some(Tok::Word(word)) = self.next() else {
            return plan_err!(
                "{f}: missing data type for column {column} in '{}'",
                self.spec
            );
        };
        let upper = word.to_ascii_uppercase();
        let ty = match upper.as_str() {
            "VARCHAR" | "CHAR" | "CHARACTER" => {
                let varying = upper == "VARCHAR" || self.peek_word("VARYING");
                if self.peek_word("VARYING") {
                    self.pos += 1;
                }
                let args = self.type_args()?;
                match (varying, args.as_slice()) {
                    (true, []) => SqlType::Varchar(None),
                    (true, [n]) => SqlType::Varchar(Some(*n)),
                    (false, []) => SqlType::Char(1),
                    (false, [n]) => SqlType::Char(*n),
                    _ => return plan_err!("{f}: bad length for {upper} column {column}"),
                }
            }
            "TINYINT" => SqlType::TinyInt,
            "SMALLINT" => SqlType::SmallInt,
            "INTEGER" | "INT" => SqlType::Integer,
            "BIGINT" => SqlType::BigInt,
            "REAL" => SqlType::Real,
            "FLOAT" => SqlType::Double,
            "DOUBLE" => {
                if self.peek_word("PRECISION") {
                    self.pos += 1;
                }
                SqlType::Double
            }
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let args = self.type_args()?;
                let (p, s) = match args.as_slice() {
                    [] => (19, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return plan_err!("{f}: bad precision for DECIMAL column {column}"),
                };
                if p == 0 || p > 38 || s > p {
                    return plan_err!("{f}: invalid DECIMAL({p}, {s}) for column {column}");
                }
                SqlType::Decimal(p as u8, s as i8)
            }
            "BOOLEAN" => SqlType::Boolean,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            _ => {
                return plan_err!(
                    "{f}: unsupported data type '{word}' for column {column}; expected VARCHAR(n), CHAR(n), TINYINT, SMALLINT, INTEGER, BIGINT, REAL, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE, TIME or TIMESTAMP"
                )
            }
        };
        // A TIME or TIMESTAMP may be followed by a precision, e.g. TIMESTAMP(3): ignore it.
        if matches!(ty, SqlType::Timestamp | SqlType::Time) && self.peek() == Some(&Tok::LParen) {
            self.type_args()?;
        }
        Ok(ty)
    }

    fn column(&mut self) -> Result<ColumnSpec> {
        let f = self.func;
        let name = match self.next() {
            Some(Tok::Word(w)) => w.to_uppercase(),
            Some(Tok::QuotedName(n)) => n,
            other => {
                return plan_err!(
                    "{f}: expected a column name in column list '{}', found {other:?}",
                    self.spec
                )
            }
        };
        // `TYPE` is optional; a column literally named TYPE is still possible: `TYPE TYPE INT`.
        if self.peek_word("TYPE") {
            let is_keyword = !matches!(self.toks.get(self.pos + 1), None | Some(Tok::Comma));
            if is_keyword {
                self.pos += 1;
            }
        }
        let ty = self.data_type(&name)?;
        let mut col = ColumnSpec::named(name, ty);
        loop {
            match self.peek().cloned() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") => {
                    self.pos += 1;
                    if !self.peek_word("NULL") {
                        return plan_err!("{f}: expected NULL after NOT for column {}", col.name);
                    }
                    self.pos += 1;
                    col.not_null = true;
                }
                Some(Tok::Str(format)) => {
                    self.pos += 1;
                    if !col.ty.is_datetime() {
                        return plan_err!(
                            "{f}: a format string is only allowed for DATE, TIME and TIMESTAMP columns (column {})",
                            col.name
                        );
                    }
                    if let Err(e) = SimpleDateFormat::compile(&format) {
                        return plan_err!("{f}: column {}: {e}", col.name);
                    }
                    col.format = Some(format);
                }
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("START") => {
                    self.pos += 1;
                    col.start = Some(self.expect_num("a START position")?);
                    if self.peek_word("FOR") {
                        self.pos += 1;
                        col.length = Some(self.expect_num("a FOR length")?);
                    }
                }
                Some(Tok::Num(start)) => {
                    // shorthand `NAME TYPE start length`
                    self.pos += 1;
                    col.start = Some(start);
                    if let Some(Tok::Num(len)) = self.peek().cloned() {
                        self.pos += 1;
                        col.length = Some(len);
                    }
                }
                Some(Tok::Comma) | None => return Ok(col),
                Some(other) => {
                    return plan_err!(
                        "{f}: unexpected {other:?} after column {} in '{}'",
                        col.name,
                        self.spec
                    )
                }
            }
        }
    }
}

/// Parses a column list such as `'A VARCHAR(10), B TYPE INTEGER NOT NULL'`.
pub fn parse_column_specs(func: &str, spec: &str) -> Result<Vec<ColumnSpec>> {
    let toks = tokenize(func, spec)?;
    if toks.is_empty() {
        return plan_err!("{func}: the column list is empty");
    }
    let mut parser = SpecParser {
        func,
        spec,
        toks,
        pos: 0,
    };
    let mut columns: Vec<ColumnSpec> = Vec::new();
    loop {
        let col = parser.column()?;
        if columns.iter().any(|c| c.name == col.name) {
            return plan_err!("{func}: duplicate column name {} in column list", col.name);
        }
        columns.push(col);
        match parser.next() {
            Some(Tok::Comma) => continue,
            None => return Ok(columns),
            Some(other) => {
                return plan_err!("{func}: unexpected {other:?} in column list '{spec}'")
            }
        }
    }
}

/// Converts the raw text of one column (one entry per row; `None` = NULL) to its SQL type.
/// Values that cannot be converted become NULL. Non-text values are trimmed first.
pub fn convert_column(column: &ColumnSpec, raw: Vec<Option<String>>) -> Result<ArrayRef> {
    match &column.ty {
        SqlType::Varchar(limit) => Ok(Arc::new(StringArray::from_iter(raw.into_iter().map(|v| {
            v.map(|s| match limit {
                Some(n) => truncate_chars(s, *n),
                None => s,
            })
        })))),
        SqlType::Char(n) => Ok(Arc::new(StringArray::from_iter(raw.into_iter().map(|v| {
            v.map(|s| {
                let mut s = truncate_chars(s, *n);
                let len = s.chars().count();
                s.extend(std::iter::repeat_n(' ', n.saturating_sub(len)));
                s
            })
        })))),
        ty if ty.is_datetime() && column.format.is_some() => {
            let pattern = column.format.as_deref().unwrap_or_default();
            let format = SimpleDateFormat::compile(pattern).map_err(|e| {
                datafusion::common::DataFusionError::Execution(format!(
                    "column {}: {e}",
                    column.name
                ))
            })?;
            let millis: Vec<Option<i64>> = raw
                .iter()
                .map(|v| v.as_deref().and_then(|s| format.parse_millis(s.trim())))
                .collect();
            let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(millis));
            match ty {
                SqlType::Timestamp => Ok(ts),
                SqlType::Date => {
                    let ts =
                        ts.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
                    Ok(Arc::new(datafusion::arrow::array::Date32Array::from_iter(
                        ts.iter().map(|v| {
                            v.and_then(|ms| i32::try_from(ms.div_euclid(MS_PER_DAY)).ok())
                        }),
                    )))
                }
                _ => {
                    let ts =
                        ts.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
                    Ok(Arc::new(
                        datafusion::arrow::array::Time32MillisecondArray::from_iter(
                            ts.iter()
                                .map(|v| v.map(|ms| ms.rem_euclid(MS_PER_DAY) as i32)),
                        ),
                    ))
                }
            }
        }
        ty => {
            debug_assert!(!ty.is_text());
            let text = StringArray::from_iter(
                raw.iter()
                    .map(|v| v.as_deref().map(str::trim).filter(|s| !s.is_empty())),
            );
            let options = CastOptions {
                safe: true,
                ..Default::default()
            };
            Ok(cast_with_options(&text, &ty.arrow_type(), &options)?)
        }
    }
}

fn truncate_chars(s: String, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((byte, _)) => s[..byte].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;
    use datafusion::arrow::datatypes::{Int32Type, TimestampMillisecondType};

    #[test]
    fn parses_types_names_and_options() {
        let cols = parse_column_specs(
            "F",
            "a VARCHAR(10), b TYPE INTEGER NOT NULL, \"MixedCase\" DOUBLE PRECISION, d DECIMAL(5,2), ts TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss' START 0 FOR 20, e CHAR(3) 21 3",
        )
        .unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "MixedCase", "D", "TS", "E"]);
        assert_eq!(cols[0].ty, SqlType::Varchar(Some(10)));
        assert!(cols[1].not_null);
        assert_eq!(cols[2].ty, SqlType::Double);
        assert_eq!(cols[3].ty, SqlType::Decimal(5, 2));
        assert_eq!(cols[4].format.as_deref(), Some("dd/MMM/yyyy:HH:mm:ss"));
        assert_eq!((cols[4].start, cols[4].length), (Some(0), Some(20)));
        assert_eq!((cols[5].start, cols[5].length), (Some(21), Some(3)));
        assert_eq!(cols[5].ty, SqlType::Char(3));
    }

    #[test]
    fn spec_errors_name_the_function() {
        for (spec, needle) in [
            ("a BLOB", "unsupported data type 'BLOB'"),
            ("a", "missing data type"),
            ("a INT, a INT", "duplicate column name A"),
            ("a INT 'yyyy'", "format string is only allowed"),
            ("a TIMESTAMP 'YYYY'", "'Y'"),
            ("a VARCHAR(", "expected a type length"),
            ("", "empty"),
            ("a INT; b INT", "unexpected character ';'"),
            ("a DECIMAL(50,2)", "invalid DECIMAL"),
        ] {
            let err = parse_column_specs("VARIABLE_COLUMN_LOG_PARSE", spec)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("VARIABLE_COLUMN_LOG_PARSE") && err.contains(needle),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn converts_and_truncates() {
        let raw = |v: &[Option<&str>]| v.iter().map(|s| s.map(String::from)).collect::<Vec<_>>();
        let ints = convert_column(
            &ColumnSpec::named("I", SqlType::Integer),
            raw(&[Some(" 42 "), Some("x"), None, Some("")]),
        )
        .unwrap();
        let got: Vec<Option<i32>> = ints.as_primitive::<Int32Type>().iter().collect();
        assert_eq!(got, vec![Some(42), None, None, None]);
        let s = convert_column(
            &ColumnSpec::default_varchar(1, Some(3)),
            raw(&[Some("abcdef"), Some("")]),
        )
        .unwrap();
        assert_eq!(s.as_string::<i32>().value(0), "abc");
        assert_eq!(s.as_string::<i32>().value(1), "");
        let c =
            convert_column(&ColumnSpec::named("C", SqlType::Char(3)), raw(&[Some("a")])).unwrap();
        assert_eq!(c.as_string::<i32>().value(0), "a  ");
        let mut ts = ColumnSpec::named("T", SqlType::Timestamp);
        ts.format = Some("dd/MMM/yyyy:HH:mm:ss".into());
        let t = convert_column(&ts, raw(&[Some("10/Oct/2000:13:55:36"), Some("bad")])).unwrap();
        let t = t.as_primitive::<TimestampMillisecondType>();
        assert_eq!(t.value(0), 971_186_136_000);
        assert!(t.is_null(1));
        let t = convert_column(
            &ColumnSpec::named("T", SqlType::Timestamp),
            raw(&[Some("2018-11-01 01:00:00")]),
        )
        .unwrap();
        assert_eq!(
            t.as_primitive::<TimestampMillisecondType>().value(0),
            1_541_034_000_000
        );
    }
}
