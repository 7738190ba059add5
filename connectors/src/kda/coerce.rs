//! KDA's JSON → SQL coercion table (SPEC §1.8), applied to one value for one column.
//!
//! ```text
//!  JSON value ─┬─ null ───────────────► NULL (any type)
//!              ├─ true/false ─────────► numeric 1/0 · BOOLEAN · 'true'/'false' · BINARY low bit
//!              │                        · datetime: error
//!              ├─ number ─────────────► numeric exactly (overflow / lost digits: error)
//!              │                        · BOOLEAN 0=false · VARCHAR string form · else error
//!              ├─ string (and every ──► parsed as the type (error if it cannot be) · BOOLEAN
//!              │  CSV field)            "true" (any case) else false · CHAR/VARCHAR truncated
//!              │                        · BINARY from X'hex'
//!              └─ array / object ─────► CHAR/VARCHAR: the JSON text · else error
//!                                            │
//!                                            ▼
//!                                   Cell (one typed value) ──► column builder (decode.rs)
//! ```
//!
//! Decisions where the spec is silent:
//! * A number converts to an integer type when its value is integral (`60.0` → 60); a
//!   fractional part (`123.4` → INT) or a value outside the type's range (180 → TINYINT) is an
//!   error. A string must be an integer literal (`"60.0"` → INT is an error, as Java's
//!   `Integer.parseInt`).
//! * DECIMAL(p,s) takes a value exactly or not at all: more than `s` non-zero decimal places, or
//!   more than `p - s` integer digits, is an error (KDA: "error if it exceeds the target's size
//!   or precision"). REAL/DOUBLE take the nearest float; a finite value that overflows REAL is an
//!   error.
//! * Strings parsed as numbers, booleans, datetimes and binaries are trimmed of surrounding
//!   whitespace first; CHAR/VARCHAR values are kept as they are, truncated to the declared
//!   length in characters. CHAR(n) values are also blank-padded to n characters.
//! * Datetime strings: DATE `yyyy-MM-dd`; TIME `HH:mm[:ss[.f…]]`; TIMESTAMP `yyyy-MM-dd`,
//!   `yyyy-MM-dd HH:mm[:ss[.f…]]` or the ISO form with `T`, fractions truncated to
//!   milliseconds, an optional `Z` or `±HH:mm` offset converted to UTC. Month, day and hour may
//!   have one digit (as Java's `Timestamp.valueOf`).
//! * BINARY(n) pads shorter values with zero bytes; a value longer than the declared length is
//!   an error (binary data is not truncated silently).

use super::json::Json;
use super::sql_type::SqlType;
use serde_json::Number;

/// One decoded value, ready for a column builder.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// TINYINT..BIGINT (range-checked for the column's type).
    Int(i64),
    /// DECIMAL: the unscaled value.
    Decimal(i128),
    /// REAL.
    Real(f32),
    /// DOUBLE.
    Double(f64),
    /// CHAR / VARCHAR (already truncated / padded).
    Str(String),
    /// BINARY / VARBINARY.
    Bytes(Vec<u8>),
    /// DATE: days since 1970-01-01.
    Date(i32),
    /// TIME: milliseconds since midnight.
    Time(i32),
    /// TIMESTAMP: milliseconds since the epoch.
    Timestamp(i64),
}

/// Shortens a value for a message.
pub fn show(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// Converts one JSON value for a column of type `ty`. The error says why (the caller names the
/// column and mapping).
pub fn coerce_json(value: &Json, ty: &SqlType) -> Result<Cell, String> {
    match value {
        Json::Null => Ok(Cell::Null),
        Json::Bool(b) => coerce_bool(*b, ty),
        Json::Number(n) => coerce_number(n, ty),
        Json::String(s) => coerce_str(s, ty),
        Json::Array(_) | Json::Object(_) => {
            if ty.is_character() {
                Ok(character(value.to_text(), ty))
            } else {
                Err(format!(
                    "a JSON {} cannot be converted to {ty} (only CHAR/VARCHAR columns take JSON text)",
                    value.kind()
                ))
            }
        }
    }
}

/// CHAR/VARCHAR value: truncated to the declared length; CHAR blank-padded.
fn character(mut s: String, ty: &SqlType) -> Cell {
    if let Some(n) = ty.max_length() {
        if let Some((cut, _)) = s.char_indices().nth(n) {
            s.truncate(cut);
        }
        if let SqlType::Char(n) = ty {
            let len = s.chars().count();
            for _ in len..*n as usize {
                s.push(' ');
            }
        }
    }
    Cell::Str(s)
}

fn int_range(ty: &SqlType) -> (i64, i64) {
    match ty {
        SqlType::TinyInt => (i8::MIN.into(), i8::MAX.into()),
        SqlType::SmallInt => (i16::MIN.into(), i16::MAX.into()),
        SqlType::Integer => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}

fn out_of_range(ty: &SqlType) -> String {
    let (lo, hi) = int_range(ty);
    format!("out of range for {ty} ({lo}..{hi})")
}

fn checked_int(v: i64, ty: &SqlType) -> Result<Cell, String> {
    let (lo, hi) = int_range(ty);
    if v < lo || v > hi {
        Err(out_of_range(ty))
    } else {
        Ok(Cell::Int(v))
    }
}

fn coerce_bool(b: bool, ty: &SqlType) -> Result<Cell, String> {
    let i = i64::from(b);
    match ty {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            Ok(Cell::Int(i))
        }
        SqlType::Decimal { precision, scale } => {
            if b && precision == scale {
                return Err(format!("true (1) does not fit {ty}"));
            }
            Ok(Cell::Decimal(i128::from(i) * 10i128.pow(u32::from(*scale))))
        }
        SqlType::Real => Ok(Cell::Real(i as f32)),
        SqlType::Double => Ok(Cell::Double(i as f64)),
        SqlType::Boolean => Ok(Cell::Bool(b)),
        SqlType::Char(_) | SqlType::Varchar(_) => Ok(character(b.to_string(), ty)),
        SqlType::Date | SqlType::Time | SqlType::Timestamp => {
            Err(format!("a JSON boolean cannot be converted to {ty}"))
        }
        SqlType::Binary(n) => {
            let mut bytes = vec![0u8; *n as usize];
            if let Some(last) = bytes.last_mut() {
                *last = u8::from(b);
            }
            Ok(Cell::Bytes(bytes))
        }
        SqlType::Varbinary(_) => Ok(Cell::Bytes(vec![u8::from(b)])),
    }
}

fn coerce_number(n: &Number, ty: &SqlType) -> Result<Cell, String> {
    let text = n.to_string();
    match ty {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            if let Some(i) = n.as_i64() {
                return checked_int(i, ty);
            }
            if n.as_u64().is_some() {
                return Err(out_of_range(ty));
            }
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() != 0.0 {
                return Err(format!("has a fractional part, which {ty} cannot hold"));
            }
            let (lo, hi) = int_range(ty);
            if f < lo as f64 || f > hi as f64 {
                return Err(out_of_range(ty));
            }
            Ok(Cell::Int(f as i64))
        }
        SqlType::Decimal { precision, scale } => {
            parse_decimal(&text, *precision, *scale).map(Cell::Decimal)
        }
        SqlType::Real => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let r = f as f32;
            if r.is_infinite() {
                Err("out of range for REAL".to_string())
            } else {
                Ok(Cell::Real(r))
            }
        }
        SqlType::Double => Ok(Cell::Double(n.as_f64().unwrap_or(f64::NAN))),
        SqlType::Boolean => Ok(Cell::Bool(n.as_f64().is_some_and(|f| f != 0.0))),
        SqlType::Char(_) | SqlType::Varchar(_) => Ok(character(text, ty)),
        SqlType::Date | SqlType::Time | SqlType::Timestamp => Err(format!(
            "a JSON number cannot be converted to {ty}; use a string such as \"1992-02-14 18:35:44.0\""
        )),
        SqlType::Binary(_) | SqlType::Varbinary(_) => Err(format!(
            "a JSON number cannot be converted to {ty}; use a string such as \"X'3F67'\""
        )),
    }
}

/// Converts a string (a JSON string, or a CSV field) for a column of type `ty`.
pub fn coerce_str(s: &str, ty: &SqlType) -> Result<Cell, String> {
    if ty.is_character() {
        return Ok(character(s.to_string(), ty));
    }
    let t = s.trim();
    let bad = |what: &str| format!("not a valid {what}");
    match ty {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&ty.to_string()));
            }
            match t.parse::<i64>() {
                Ok(v) => checked_int(v, ty),
                Err(_) => Err(out_of_range(ty)),
            }
        }
        SqlType::Decimal { precision, scale } => {
            parse_decimal(t, *precision, *scale).map(Cell::Decimal)
        }
        SqlType::Real | SqlType::Double => {
            let f: f64 = t.parse().map_err(|_| bad(&ty.to_string()))?;
            if *ty == SqlType::Real {
                let r = f as f32;
                if f.is_finite() && r.is_infinite() {
                    return Err("out of range for REAL".to_string());
                }
                Ok(Cell::Real(r))
            } else {
                Ok(Cell::Double(f))
            }
        }
        SqlType::Boolean => Ok(Cell::Bool(t.eq_ignore_ascii_case("true"))),
        SqlType::Date => parse_date(t)
            .map(Cell::Date)
            .ok_or_else(|| format!("{} (expected yyyy-MM-dd)", bad("DATE"))),
        SqlType::Time => parse_time(t)
            .map(Cell::Time)
            .ok_or_else(|| format!("{} (expected HH:mm:ss[.SSS])", bad("TIME"))),
        SqlType::Timestamp => parse_timestamp(t).map(Cell::Timestamp).ok_or_else(|| {
            format!(
                "{} (expected yyyy-MM-dd[ HH:mm:ss[.SSS]] or yyyy-MM-ddTHH:mm:ss[.SSS])",
                bad("TIMESTAMP")
            )
        }),
        SqlType::Binary(n) => {
            let mut bytes = parse_binary_literal(t).ok_or_else(|| {
                format!(
                    "{} (expected a binary literal such as X'3F67A23A')",
                    bad("BINARY")
                )
            })?;
            if bytes.len() > *n as usize {
                return Err(format!("{} bytes do not fit {ty}", bytes.len()));
            }
            bytes.resize(*n as usize, 0);
            Ok(Cell::Bytes(bytes))
        }
        SqlType::Varbinary(n) => {
            let bytes = parse_binary_literal(t).ok_or_else(|| {
                format!(
                    "{} (expected a binary literal such as X'3F67A23A')",
                    bad("VARBINARY")
                )
            })?;
            if let Some(n) = n {
                if bytes.len() > *n as usize {
                    return Err(format!("{} bytes do not fit {ty}", bytes.len()));
                }
            }
            Ok(Cell::Bytes(bytes))
        }
        SqlType::Char(_) | SqlType::Varchar(_) => Ok(character(s.to_string(), ty)),
    }
}

/// `X'3F67A23A'` (or `x'...'`) → bytes.
pub fn parse_binary_literal(s: &str) -> Option<Vec<u8>> {
    let hex = s
        .strip_prefix(['X', 'x'])?
        .strip_prefix('\'')?
        .strip_suffix('\'')?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    hex.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? * 16 + digit(p[1])?))
        .collect()
}

/// Parses a decimal literal (`-12.5`, `1e3`, `.5`) into the unscaled value of DECIMAL(p,s);
/// an error if digits would be lost or the value has more than `p - s` integer digits.
pub fn parse_decimal(s: &str, precision: u8, scale: u8) -> Result<i128, String> {
    let ty = SqlType::Decimal { precision, scale };
    let bad = || format!("not a valid {ty}");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // digits × 10^(exp - frac_len) is the value; we want it × 10^scale.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut shift = i64::from(exp) - frac_part.len() as i64 + i64::from(scale);
    // Trailing zeros can be dropped while the shift stays an exact power of ten.
    let mut digits = digits.to_string();
    while shift < 0 && digits.ends_with('0') {
        digits.pop();
        shift += 1;
    }
    if shift < 0 && !digits.is_empty() {
        return Err(format!(
            "has more than {scale} decimal places, which {ty} cannot hold"
        ));
    }
    if digits.is_empty() {
        return Ok(0);
    }
    let out_of_range = || {
        format!(
            "out of range for {ty} (at most {} digits before the point)",
            precision - scale
        )
    };
    if digits.len() as i64 + shift > i64::from(precision) {
        return Err(out_of_range());
    }
    let mut v: i128 = digits.parse().map_err(|_| out_of_range())?;
    for _ in 0..shift {
        v = v.checked_mul(10).ok_or_else(out_of_range)?;
    }
    Ok(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a valid civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > month_days[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// A run of 1..=max digits at the start of `s`: (value, rest).
fn digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = s
        .bytes()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn parse_date_prefix(s: &str) -> Option<(i64, &str)> {
    let (y, rest) = digits(s, 4, 4)?;
    let rest = rest.strip_prefix('-')?;
    let (m, rest) = digits(rest, 1, 2)?;
    let rest = rest.strip_prefix('-')?;
    let (d, rest) = digits(rest, 1, 2)?;
    Some((days_from_civil(i64::from(y), m, d)?, rest))
}

/// `HH:mm[:ss[.fraction]]` → (ms of day, rest).
fn parse_time_prefix(s: &str) -> Option<(i64, &str)> {
    let (h, rest) = digits(s, 1, 2)?;
    let rest = rest.strip_prefix(':')?;
    let (mi, mut rest) = digits(rest, 2, 2)?;
    let mut sec = 0;
    let mut ms = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let (sv, r) = digits(r, 2, 2)?;
        sec = sv;
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            // Truncated to milliseconds.
            let frac = &r[..n.min(3)];
            ms = frac.parse::<u32>().ok()? * 10u32.pow(3 - frac.len() as u32);
            rest = &r[n..];
        }
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    Some((i64::from(((h * 60 + mi) * 60 + sec) * 1000 + ms), rest))
}

/// `Z`, `±HH:mm`, `±HHmm` or `±HH` → offset in ms (to subtract to get UTC).
fn parse_offset(s: &str) -> Option<i64> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return None,
    };
    let (h, rest) = digits(rest, 2, 2)?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (m, rest) = if rest.is_empty() {
        (0, rest)
    } else {
        digits(rest, 2, 2)?
    };
    if !rest.is_empty() || h > 23 || m > 59 {
        return None;
    }
    Some(sign * i64::from(h * 60 + m) * 60_000)
}

/// `yyyy-MM-dd` → days since the epoch.
pub fn parse_date(s: &str) -> Option<i32> {
    let (days, rest) = parse_date_prefix(s)?;
    if !rest.is_empty() {
        return None;
    }
    i32::try_from(days).ok()
}

/// `HH:mm[:ss[.f…]]` → ms of the day.
pub fn parse_time(s: &str) -> Option<i32> {
    let (ms, rest) = parse_time_prefix(s)?;
    if !rest.is_empty() {
        return None;
    }
    i32::try_from(ms).ok()
}

/// `yyyy-MM-dd`, `yyyy-MM-dd HH:mm[:ss[.f…]]`, or with `T`, optionally followed by `Z` or an
/// offset → ms since the epoch (UTC).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (days, rest) = parse_date_prefix(s)?;
    let day_ms = days.checked_mul(86_400_000)?;
    if rest.is_empty() {
        return Some(day_ms);
    }
    let rest = rest.strip_prefix([' ', 'T', 't'])?;
    let (ms, rest) = parse_time_prefix(rest)?;
    let offset = if rest.is_empty() {
        0
    } else {
        parse_offset(rest.trim_start())?
    };
    day_ms.checked_add(ms)?.checked_sub(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(text: &str) -> Json {
        serde_json::from_str(text).unwrap()
    }

    fn ok(json: &str, ty: &str) -> Cell {
        coerce_json(&j(json), &SqlType::parse(ty).unwrap())
            .unwrap_or_else(|e| panic!("{json} → {ty}: {e}"))
    }

    fn err(json: &str, ty: &str) -> String {
        match coerce_json(&j(json), &SqlType::parse(ty).unwrap()) {
            Ok(c) => panic!("{json} → {ty} should fail, got {c:?}"),
            Err(e) => e,
        }
    }

    const ALL_TYPES: [&str; 15] = [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "DECIMAL(5,2)",
        "REAL",
        "DOUBLE",
        "BOOLEAN",
        "CHAR(4)",
        "VARCHAR(4)",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "BINARY(2)",
        "VARBINARY(2)",
    ];

    #[test]
    fn null_is_null_for_every_type() {
        for ty in ALL_TYPES {
            assert_eq!(ok("null", ty), Cell::Null, "{ty}");
        }
    }

    #[test]
    fn booleans() {
        // numeric: 1 / 0
        assert_eq!(ok("true", "TINYINT"), Cell::Int(1));
        assert_eq!(ok("false", "SMALLINT"), Cell::Int(0));
        assert_eq!(ok("true", "INTEGER"), Cell::Int(1));
        assert_eq!(ok("true", "BIGINT"), Cell::Int(1));
        assert_eq!(ok("true", "DECIMAL(5,2)"), Cell::Decimal(100));
        assert_eq!(ok("false", "DECIMAL(5,2)"), Cell::Decimal(0));
        assert_eq!(ok("true", "REAL"), Cell::Real(1.0));
        assert_eq!(ok("false", "DOUBLE"), Cell::Double(0.0));
        // BOOLEAN: same value
        assert_eq!(ok("true", "BOOLEAN"), Cell::Bool(true));
        assert_eq!(ok("false", "BOOLEAN"), Cell::Bool(false));
        // CHAR/VARCHAR: 'true' / 'false', truncated to fit
        assert_eq!(ok("true", "VARCHAR(8)"), Cell::Str("true".into()));
        assert_eq!(ok("false", "VARCHAR(4)"), Cell::Str("fals".into()));
        assert_eq!(ok("true", "CHAR(6)"), Cell::Str("true  ".into()));
        // datetime: error
        for ty in ["DATE", "TIME", "TIMESTAMP"] {
            assert!(err("true", ty).contains("boolean"), "{ty}");
        }
        // BINARY: lowest bit set / all clear; VARBINARY one byte
        assert_eq!(ok("true", "BINARY(2)"), Cell::Bytes(vec![0, 1]));
        assert_eq!(ok("false", "BINARY(2)"), Cell::Bytes(vec![0, 0]));
        assert_eq!(ok("true", "VARBINARY(2)"), Cell::Bytes(vec![1]));
        assert_eq!(ok("false", "VARBINARY(8)"), Cell::Bytes(vec![0]));
    }

    #[test]
    fn numbers() {
        // numeric: directly, error on size or precision
        assert_eq!(ok("60", "TINYINT"), Cell::Int(60));
        assert_eq!(ok("-128", "TINYINT"), Cell::Int(-128));
        assert_eq!(
            err("180", "TINYINT"),
            "out of range for TINYINT (-128..127)"
        );
        assert!(err("40000", "SMALLINT").contains("out of range for SMALLINT"));
        assert!(err("3000000000", "INTEGER").contains("out of range for INTEGER"));
        assert_eq!(ok("3000000000", "BIGINT"), Cell::Int(3_000_000_000));
        assert!(err("18446744073709551615", "BIGINT").contains("out of range"));
        assert_eq!(
            err("123.4", "INTEGER"),
            "has a fractional part, which INTEGER cannot hold"
        );
        assert_eq!(ok("60.0", "INTEGER"), Cell::Int(60));
        assert_eq!(ok("84.51", "DECIMAL(5,2)"), Cell::Decimal(8451));
        assert_eq!(ok("-3", "DECIMAL(5,2)"), Cell::Decimal(-300));
        assert!(err("84.515", "DECIMAL(5,2)").contains("more than 2 decimal places"));
        assert!(err("1234.5", "DECIMAL(5,2)").contains("out of range for DECIMAL(5,2)"));
        assert_eq!(ok("1.5", "REAL"), Cell::Real(1.5));
        assert!(err("1e300", "REAL").contains("out of range for REAL"));
        assert_eq!(ok("1e300", "DOUBLE"), Cell::Double(1e300));
        assert_eq!(ok("7", "DOUBLE"), Cell::Double(7.0));
        // BOOLEAN: 0 → false, else true
        assert_eq!(ok("0", "BOOLEAN"), Cell::Bool(false));
        assert_eq!(ok("0.0", "BOOLEAN"), Cell::Bool(false));
        assert_eq!(ok("-2.5", "BOOLEAN"), Cell::Bool(true));
        // CHAR/VARCHAR: string form
        assert_eq!(ok("84.51", "VARCHAR(16)"), Cell::Str("84.51".into()));
        assert_eq!(ok("-17", "VARCHAR(16)"), Cell::Str("-17".into()));
        assert_eq!(ok("123456", "VARCHAR(4)"), Cell::Str("1234".into()));
        // BINARY or datetime: error
        for ty in ["DATE", "TIME", "TIMESTAMP", "BINARY(2)", "VARBINARY(2)"] {
            assert!(err("1", ty).contains("a JSON number cannot"), "{ty}");
        }
    }

    #[test]
    fn strings() {
        // numeric: parsed, error if it cannot be
        assert_eq!(ok(r#""12""#, "TINYINT"), Cell::Int(12));
        assert_eq!(ok(r#"" -12 ""#, "INTEGER"), Cell::Int(-12));
        assert_eq!(err(r#""AMZN""#, "INTEGER"), "not a valid INTEGER");
        assert!(err(r#""180""#, "TINYINT").contains("out of range for TINYINT"));
        assert!(err(r#""1.5""#, "BIGINT").contains("not a valid BIGINT"));
        assert!(err(r#""99999999999999999999""#, "BIGINT").contains("out of range"));
        assert_eq!(ok(r#""33.99""#, "DECIMAL(5,2)"), Cell::Decimal(3399));
        assert_eq!(ok(r#""12.500""#, "DECIMAL(5,2)"), Cell::Decimal(1250));
        assert!(err(r#""x1""#, "DECIMAL(5,2)").contains("not a valid DECIMAL(5,2)"));
        assert_eq!(ok(r#""2.5""#, "REAL"), Cell::Real(2.5));
        assert_eq!(ok(r#""-1e3""#, "DOUBLE"), Cell::Double(-1000.0));
        assert_eq!(err(r#""abc""#, "DOUBLE"), "not a valid DOUBLE");
        // BOOLEAN: "true" in any case → true, anything else false
        assert_eq!(ok(r#""TRUE""#, "BOOLEAN"), Cell::Bool(true));
        assert_eq!(ok(r#""True""#, "BOOLEAN"), Cell::Bool(true));
        assert_eq!(ok(r#""yes""#, "BOOLEAN"), Cell::Bool(false));
        assert_eq!(ok(r#""1""#, "BOOLEAN"), Cell::Bool(false));
        // CHAR/VARCHAR: silently truncated
        assert_eq!(
            ok(r#""INFORMATION TECHNOLOGY""#, "VARCHAR(16)"),
            Cell::Str("INFORMATION TECH".into())
        );
        assert_eq!(ok(r#""héllo""#, "VARCHAR(2)"), Cell::Str("hé".into()));
        assert_eq!(ok(r#""ab""#, "CHAR(4)"), Cell::Str("ab  ".into()));
        assert_eq!(ok(r#"" x ""#, "VARCHAR(8)"), Cell::Str(" x ".into()));
        // datetime: parsed, else error
        assert_eq!(ok(r#""1992-02-14""#, "DATE"), Cell::Date(8079));
        assert_eq!(
            ok(r#""1992-02-14""#, "TIMESTAMP"),
            Cell::Timestamp(698_025_600_000)
        );
        assert_eq!(
            ok(r#""1992-02-14 18:35:44.0""#, "TIMESTAMP"),
            Cell::Timestamp(698_092_544_000)
        );
        assert_eq!(
            ok(r#""2018-06-13T14:11:05.766191""#, "TIMESTAMP"),
            Cell::Timestamp(1_528_899_065_766)
        );
        assert_eq!(
            ok(r#""2018-06-13T16:11:05.766+02:00""#, "TIMESTAMP"),
            Cell::Timestamp(1_528_899_065_766)
        );
        assert_eq!(
            ok(r#""2018-06-13T14:11:05Z""#, "TIMESTAMP"),
            Cell::Timestamp(1_528_899_065_000)
        );
        assert_eq!(ok(r#""18:35:44.5""#, "TIME"), Cell::Time(66_944_500));
        assert_eq!(ok(r#""18:35""#, "TIME"), Cell::Time(66_900_000));
        assert!(err(r#""1992-02-30""#, "DATE").contains("not a valid DATE"));
        assert!(err(r#""1992-02-14 25:00:00""#, "TIMESTAMP").contains("not a valid TIMESTAMP"));
        assert!(err(r#""yesterday""#, "TIMESTAMP").contains("not a valid TIMESTAMP"));
        assert!(err(r#""25:00""#, "TIME").contains("not a valid TIME"));
        // BINARY: a valid literal, else error
        assert_eq!(
            ok(r#""X'3F67'""#, "BINARY(2)"),
            Cell::Bytes(vec![0x3f, 0x67])
        );
        assert_eq!(ok(r#""x'3F'""#, "BINARY(2)"), Cell::Bytes(vec![0x3f, 0]));
        assert_eq!(
            ok(r#""X'3F67A23A'""#, "VARBINARY(8)"),
            Cell::Bytes(vec![0x3f, 0x67, 0xa2, 0x3a])
        );
        assert!(err(r#""3F67""#, "BINARY(2)").contains("binary literal"));
        assert!(err(r#""X'3G'""#, "VARBINARY(2)").contains("binary literal"));
        assert!(err(r#""X'3F67A2'""#, "BINARY(2)").contains("3 bytes do not fit BINARY(2)"));
    }

    #[test]
    fn arrays_and_objects() {
        assert_eq!(
            ok(r#"{"b":1,"a":[true,null]}"#, "VARCHAR(64)"),
            Cell::Str(r#"{"b":1,"a":[true,null]}"#.into())
        );
        assert_eq!(ok("[1,2,3]", "VARCHAR(4)"), Cell::Str("[1,2".into()));
        assert_eq!(ok("[1]", "CHAR(4)"), Cell::Str("[1] ".into()));
        for ty in ALL_TYPES.iter().filter(|t| !t.contains("CHAR")) {
            assert!(err("[1]", ty).contains("a JSON array cannot"), "{ty}");
            assert!(
                err(r#"{"a":1}"#, ty).contains("a JSON object cannot"),
                "{ty}"
            );
        }
    }

    #[test]
    fn decimal_parser_edges() {
        assert_eq!(parse_decimal("0", 5, 2), Ok(0));
        assert_eq!(parse_decimal(".5", 5, 2), Ok(50));
        assert_eq!(parse_decimal("1e2", 5, 2), Ok(10_000));
        assert_eq!(parse_decimal("1.5e-1", 5, 2), Ok(15));
        assert_eq!(parse_decimal("999.99", 5, 2), Ok(99_999));
        assert!(parse_decimal("1000", 5, 2).is_err());
        assert!(parse_decimal("1.", 5, 2).is_ok());
        assert!(parse_decimal(".", 5, 2).is_err());
        assert!(parse_decimal("1e", 5, 2).is_err());
        assert_eq!(
            parse_decimal("9999999999999999999", 19, 0),
            Ok(9_999_999_999_999_999_999)
        );
    }
}
