//! KDA SQL column types (SPEC §1.7) as written in an input schema's `SqlType`, and the Arrow
//! type each becomes.
//!
//! ```text
//!  "decimal(5, 2)" ──parse (case-insensitive, spaces ignored)──► SqlType::Decimal{5,2}
//!                                                                  │
//!                         arrow_type() ◄───────────────────────────┤──► max_length(): the
//!                         Decimal128(5,2)                               truncation length of
//!                                                                       CHAR/VARCHAR, the size
//!                                                                       of BINARY/VARBINARY
//! ```
//!
//! | SQL | Arrow |
//! |---|---|
//! | `TINYINT` / `SMALLINT` / `INTEGER`, `INT` / `BIGINT` | `Int8` / `Int16` / `Int32` / `Int64` |
//! | `DECIMAL(p,s)`, `DEC`, `NUMERIC` (p ≤ 19; default `(19,0)`, `(p)` = `(p,0)`) | `Decimal128(p,s)` |
//! | `REAL` / `DOUBLE`, `DOUBLE PRECISION`, `FLOAT` | `Float32` / `Float64` |
//! | `BOOLEAN` | `Boolean` |
//! | `CHAR(n)` (default 1; blank-padded), `VARCHAR(n)` (no length: unbounded) | `Utf8` |
//! | `DATE` / `TIME` / `TIMESTAMP` | `Date32` / `Time32(ms)` / `Timestamp(ms)` |
//! | `BINARY(n)` (default 1) / `VARBINARY(n)` | `FixedSizeBinary(n)` / `Binary` |
//!
//! `CHARACTER`, `CHARACTER VARYING`, `CHAR VARYING`, `TIME(p)` and `TIMESTAMP(p)` with
//! p ≤ 3 are accepted as the SQL standard spellings of the same types.

use std::fmt;
use std::str::FromStr;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{plan_err, DataFusionError, Result};

/// The largest DECIMAL precision KDA supports ("up to 19 significant digits").
pub const MAX_DECIMAL_PRECISION: u8 = 19;
/// The largest CHAR / VARCHAR / BINARY length (`0 < n < 65535`).
pub const MAX_LENGTH: u32 = 65_534;

/// A KDA SQL column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// `TINYINT` (8 bits).
    TinyInt,
    /// `SMALLINT` (16 bits).
    SmallInt,
    /// `INTEGER` / `INT` (32 bits).
    Integer,
    /// `BIGINT` (64 bits).
    BigInt,
    /// `DECIMAL(p,s)` / `DEC` / `NUMERIC`.
    Decimal {
        /// Total significant digits (1..=19).
        precision: u8,
        /// Digits after the point (0..=precision).
        scale: u8,
    },
    /// `REAL` (32-bit float).
    Real,
    /// `DOUBLE` / `DOUBLE PRECISION` / `FLOAT` (64-bit float).
    Double,
    /// `BOOLEAN`.
    Boolean,
    /// `CHAR(n)`: values are truncated or blank-padded to exactly `n` characters.
    Char(u32),
    /// `VARCHAR(n)`: values longer than `n` characters are truncated; `None`: no limit.
    Varchar(Option<u32>),
    /// `DATE`.
    Date,
    /// `TIME` (millisecond precision).
    Time,
    /// `TIMESTAMP` (millisecond precision, no time zone).
    Timestamp,
    /// `BINARY(n)`: exactly `n` bytes (shorter values are zero-padded on the right).
    Binary(u32),
    /// `VARBINARY(n)`: at most `n` bytes; `None`: no limit.
    Varbinary(Option<u32>),
}

fn type_err(text: &str, why: impl fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("SQL type '{text}': {why}"))
}

impl SqlType {
    /// Parses a KDA SQL type string (case-insensitive), e.g. `VARCHAR(16)`, `decimal(5, 2)`.
    pub fn parse(text: &str) -> Result<Self> {
        let original = text.trim();
        // ASCII upper-casing keeps byte offsets, so `original` can be sliced the same way.
        let upper = original.to_ascii_uppercase();
        let (base, args) = match upper.find('(') {
            Some(open) => {
                let Some(rest) = original[open + 1..].strip_suffix(')') else {
                    return Err(type_err(text, "unbalanced parentheses"));
                };
                let args = rest
                    .split(',')
                    .map(|a| {
                        a.trim().parse::<u32>().map_err(|_| {
                            type_err(
                                text,
                                format!("'{}' is not a non-negative integer", a.trim()),
                            )
                        })
                    })
                    .collect::<Result<Vec<u32>>>()?;
                (&upper[..open], args)
            }
            None => (upper.as_str(), Vec::new()),
        };
        let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
        let no_args = |t: SqlType| -> Result<SqlType> {
            if args.is_empty() {
                Ok(t)
            } else {
                Err(type_err(
                    text,
                    format!("{base} takes no length or precision"),
                ))
            }
        };
        let one_arg = |default: Option<u32>| -> Result<Option<u32>> {
            match args.as_slice() {
                [] => Ok(default),
                [n] if (1..=MAX_LENGTH).contains(n) => Ok(Some(*n)),
                [n] => Err(type_err(
                    text,
                    format!("the length {n} must be between 1 and {MAX_LENGTH}"),
                )),
                _ => Err(type_err(text, format!("{base} takes one length"))),
            }
        };
        match base.as_str() {
            "TINYINT" => no_args(SqlType::TinyInt),
            "SMALLINT" => no_args(SqlType::SmallInt),
            "INTEGER" | "INT" => no_args(SqlType::Integer),
            "BIGINT" => no_args(SqlType::BigInt),
            "REAL" => no_args(SqlType::Real),
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" => no_args(SqlType::Double),
            "BOOLEAN" => no_args(SqlType::Boolean),
            "DATE" => no_args(SqlType::Date),
            "TIME" | "TIMESTAMP" => {
                match args.as_slice() {
                    [] => {}
                    [p] if *p <= 3 => {}
                    _ => {
                        return Err(type_err(
                            text,
                            format!("{base} has millisecond precision: use {base} or {base}(3)"),
                        ))
                    }
                }
                Ok(if base == "TIME" {
                    SqlType::Time
                } else {
                    SqlType::Timestamp
                })
            }
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let (p, s) = match args.as_slice() {
                    [] => (u32::from(MAX_DECIMAL_PRECISION), 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err(type_err(text, "DECIMAL takes (precision[, scale])")),
                };
                if p == 0 || p > u32::from(MAX_DECIMAL_PRECISION) {
                    return Err(type_err(
                        text,
                        format!("the precision {p} must be between 1 and {MAX_DECIMAL_PRECISION}"),
                    ));
                }
                if s > p {
                    return Err(type_err(
                        text,
                        format!("the scale {s} is larger than the precision {p}"),
                    ));
                }
                Ok(SqlType::Decimal {
                    precision: p as u8,
                    scale: s as u8,
                })
            }
            "CHAR" | "CHARACTER" => Ok(SqlType::Char(one_arg(Some(1))?.unwrap_or(1))),
            "VARCHAR" | "CHARACTER VARYING" | "CHAR VARYING" => {
                Ok(SqlType::Varchar(one_arg(None)?))
            }
            "BINARY" => Ok(SqlType::Binary(one_arg(Some(1))?.unwrap_or(1))),
            "VARBINARY" | "BINARY VARYING" => Ok(SqlType::Varbinary(one_arg(None)?)),
            _ => plan_err!(
                "unknown SQL type '{}': KDA input columns use TINYINT, SMALLINT, INTEGER, BIGINT, \
                 DECIMAL(p,s), REAL, DOUBLE, BOOLEAN, CHAR(n), VARCHAR(n), DATE, TIME, TIMESTAMP, \
                 BINARY(n) or VARBINARY(n)",
                text.trim()
            ),
        }
    }

    /// The Arrow type of a column of this type.
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::TinyInt => DataType::Int8,
            SqlType::SmallInt => DataType::Int16,
            SqlType::Integer => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Char(_) | SqlType::Varchar(_) => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Binary(n) => DataType::FixedSizeBinary(*n as i32),
            SqlType::Varbinary(_) => DataType::Binary,
        }
    }

    /// The declared length: characters for CHAR/VARCHAR (values are truncated to it), bytes for
    /// BINARY/VARBINARY. `None` for other types and unbounded VARCHAR/VARBINARY.
    pub fn max_length(&self) -> Option<usize> {
        match self {
            SqlType::Char(n) | SqlType::Binary(n) => Some(*n as usize),
            SqlType::Varchar(n) | SqlType::Varbinary(n) => n.map(|n| n as usize),
            _ => None,
        }
    }

    /// TINYINT, SMALLINT, INTEGER, BIGINT, DECIMAL, REAL or DOUBLE.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt
                | SqlType::SmallInt
                | SqlType::Integer
                | SqlType::BigInt
                | SqlType::Decimal { .. }
                | SqlType::Real
                | SqlType::Double
        )
    }

    /// CHAR or VARCHAR.
    pub fn is_character(&self) -> bool {
        matches!(self, SqlType::Char(_) | SqlType::Varchar(_))
    }

    /// DATE, TIME or TIMESTAMP.
    pub fn is_datetime(&self) -> bool {
        matches!(self, SqlType::Date | SqlType::Time | SqlType::Timestamp)
    }
}

impl fmt::Display for SqlType {
    /// The canonical spelling (`VARCHAR(16)`, `DECIMAL(5,2)`, `DOUBLE`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::TinyInt => f.write_str("TINYINT"),
            SqlType::SmallInt => f.write_str("SMALLINT"),
            SqlType::Integer => f.write_str("INTEGER"),
            SqlType::BigInt => f.write_str("BIGINT"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            SqlType::Real => f.write_str("REAL"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Char(n) => write!(f, "CHAR({n})"),
            SqlType::Varchar(Some(n)) => write!(f, "VARCHAR({n})"),
            SqlType::Varchar(None) => f.write_str("VARCHAR"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Binary(n) => write!(f, "BINARY({n})"),
            SqlType::Varbinary(Some(n)) => write!(f, "VARBINARY({n})"),
            SqlType::Varbinary(None) => f.write_str("VARBINARY"),
        }
    }
}

impl FromStr for SqlType {
    type Err = DataFusionError;
    fn from_str(s: &str) -> Result<Self> {
        SqlType::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kda_type() {
        let cases: &[(&str, SqlType, DataType, Option<usize>)] = &[
            (
                "VARCHAR(16)",
                SqlType::Varchar(Some(16)),
                DataType::Utf8,
                Some(16),
            ),
            (
                "varchar(4)",
                SqlType::Varchar(Some(4)),
                DataType::Utf8,
                Some(4),
            ),
            ("VARCHAR", SqlType::Varchar(None), DataType::Utf8, None),
            (
                "CHARACTER VARYING (8)",
                SqlType::Varchar(Some(8)),
                DataType::Utf8,
                Some(8),
            ),
            ("CHAR(4)", SqlType::Char(4), DataType::Utf8, Some(4)),
            ("char", SqlType::Char(1), DataType::Utf8, Some(1)),
            ("TINYINT", SqlType::TinyInt, DataType::Int8, None),
            ("SmallInt", SqlType::SmallInt, DataType::Int16, None),
            ("INTEGER", SqlType::Integer, DataType::Int32, None),
            ("int", SqlType::Integer, DataType::Int32, None),
            ("BIGINT", SqlType::BigInt, DataType::Int64, None),
            (
                "DECIMAL(5,2)",
                SqlType::Decimal {
                    precision: 5,
                    scale: 2,
                },
                DataType::Decimal128(5, 2),
                None,
            ),
            (
                "decimal( 5 , 2 )",
                SqlType::Decimal {
                    precision: 5,
                    scale: 2,
                },
                DataType::Decimal128(5, 2),
                None,
            ),
            (
                "DEC(7)",
                SqlType::Decimal {
                    precision: 7,
                    scale: 0,
                },
                DataType::Decimal128(7, 0),
                None,
            ),
            (
                "NUMERIC",
                SqlType::Decimal {
                    precision: 19,
                    scale: 0,
                },
                DataType::Decimal128(19, 0),
                None,
            ),
            ("REAL", SqlType::Real, DataType::Float32, None),
            ("DOUBLE", SqlType::Double, DataType::Float64, None),
            (
                "double   precision",
                SqlType::Double,
                DataType::Float64,
                None,
            ),
            ("FLOAT", SqlType::Double, DataType::Float64, None),
            ("BOOLEAN", SqlType::Boolean, DataType::Boolean, None),
            ("DATE", SqlType::Date, DataType::Date32, None),
            (
                "TIME",
                SqlType::Time,
                DataType::Time32(TimeUnit::Millisecond),
                None,
            ),
            (
                "TIMESTAMP",
                SqlType::Timestamp,
                DataType::Timestamp(TimeUnit::Millisecond, None),
                None,
            ),
            (
                "timestamp(3)",
                SqlType::Timestamp,
                DataType::Timestamp(TimeUnit::Millisecond, None),
                None,
            ),
            (
                "BINARY(4)",
                SqlType::Binary(4),
                DataType::FixedSizeBinary(4),
                Some(4),
            ),
            (
                "VARBINARY(8)",
                SqlType::Varbinary(Some(8)),
                DataType::Binary,
                Some(8),
            ),
        ];
        for (text, ty, arrow, len) in cases {
            let parsed = SqlType::parse(text).unwrap();
            assert_eq!(&parsed, ty, "{text}");
            assert_eq!(&parsed.arrow_type(), arrow, "{text}");
            assert_eq!(parsed.max_length(), *len, "{text}");
            // The canonical form parses back to the same type.
            assert_eq!(
                SqlType::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{text}"
            );
        }
        assert_eq!(
            SqlType::Decimal {
                precision: 5,
                scale: 2
            }
            .to_string(),
            "DECIMAL(5,2)"
        );
        assert_eq!(
            "varchar(16)".parse::<SqlType>().unwrap().to_string(),
            "VARCHAR(16)"
        );
    }

    #[test]
    fn rejects_unknown_and_malformed_types_naming_them() {
        let e = SqlType::parse("STRING").unwrap_err().to_string();
        assert!(e.contains("unknown SQL type 'STRING'"), "{e}");
        let e = SqlType::parse("INTERVAL DAY").unwrap_err().to_string();
        assert!(e.contains("'INTERVAL DAY'"), "{e}");
        for (bad, why) in [
            ("DECIMAL(20,2)", "precision 20"),
            ("DECIMAL(5,6)", "scale 6"),
            ("VARCHAR(0)", "length 0"),
            ("VARCHAR(x)", "'x' is not"),
            ("VARCHAR(16", "unbalanced"),
            ("INTEGER(4)", "takes no length"),
            ("TIMESTAMP(6)", "millisecond precision"),
            ("CHAR(1,2)", "one length"),
        ] {
            let e = SqlType::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
