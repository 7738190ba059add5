//! Datetime conversion functions with Java `SimpleDateFormat` patterns (see
//! [`crate::simple_date_format`] for the pattern language and parsing rules):
//!
//! | function | result |
//! |---|---|
//! | `CHAR_TO_TIMESTAMP(fmt, s)` | `TIMESTAMP` (= `Timestamp(Millisecond, None)`) |
//! | `CHAR_TO_DATE(fmt, s)` | `DATE` (`Date32`); time-of-day fields in `s` are dropped |
//! | `CHAR_TO_TIME(fmt, s)` | `TIME` (`Time32(Millisecond)`); date fields in `s` are dropped |
//! | `TIMESTAMP_TO_CHAR(fmt, ts)` | `VARCHAR`; `ts` may be a timestamp of any unit |
//! | `DATE_TO_CHAR(fmt, d)` | `VARCHAR`; `d` is a `DATE` (`Date32`/`Date64`) |
//! | `TIME_TO_CHAR(fmt, t)` | `VARCHAR`; `t` is a `TIME` (`Time32`/`Time64`) |
//!
//! Everything is UTC. The format comes first, as in KDA.
//!
//! NULLs and failures:
//! * `CHAR_TO_*`: a NULL format or string gives NULL; a string that does not match the
//!   pattern gives NULL (KDA's documentation says "no result"; in a SQL expression NULL is the
//!   closest equivalent); a parsed value outside the result type's range gives NULL.
//! * `TIMESTAMP_TO_CHAR(fmt, NULL)` returns the **string** `'null'`, as documented (SPEC §2.8).
//!   KDA documents that only for `TIMESTAMP_TO_CHAR`, so `DATE_TO_CHAR` / `TIME_TO_CHAR` of NULL
//!   return SQL NULL. A NULL format gives SQL NULL in all three.
//! * An invalid pattern (for instance an unsupported letter) is an error naming the function
//!   and the letter — at planning time when the format is a literal, else at execution.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, StringArray, StringBuilder, Time32MillisecondArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit,
};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::datetime::epoch_millis;
use crate::simple_date_format::SimpleDateFormat;
use crate::util::{
    check_arg_count, coerce_string, invoke_on_arrays, lower_alias, scalar_str, scalar_value_str,
    CompileCache, KDA_TIMESTAMP, MS_PER_DAY,
};

/// Which SQL datetime type a conversion produces or consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatetimeKind {
    /// `TIMESTAMP`
    Timestamp,
    /// `DATE`
    Date,
    /// `TIME`
    Time,
}

impl DatetimeKind {
    fn sql_name(self) -> &'static str {
        match self {
            Self::Timestamp => "TIMESTAMP",
            Self::Date => "DATE",
            Self::Time => "TIME",
        }
    }
}

/// Compiles `pattern`, turning a pattern error into an error that names `func`.
pub(crate) fn compile_format(func: &str, pattern: &str) -> Result<SimpleDateFormat> {
    SimpleDateFormat::compile(pattern)
        .map_err(|e| DataFusionError::Execution(format!("{func}: {e}")))
}

/// Plan-time check of a literal format argument.
fn validate_literal_format(func: &str, arg: Option<&Option<&ScalarValue>>) -> Result<()> {
    if let Some(Some(value)) = arg {
        if let Some(Some(pattern)) = scalar_value_str(value) {
            if let Err(e) = SimpleDateFormat::compile(pattern) {
                return plan_err!("{func}: {e}");
            }
        }
    }
    Ok(())
}

/// The compiled format for row `i`: the constant one, or one from the cache.
fn format_for_row(
    func: &str,
    constant: &Option<Arc<SimpleDateFormat>>,
    cache: &CompileCache<SimpleDateFormat>,
    formats: &StringArray,
    i: usize,
) -> Result<Option<Arc<SimpleDateFormat>>> {
    if formats.is_null(i) {
        return Ok(None);
    }
    match constant {
        Some(f) => Ok(Some(Arc::clone(f))),
        None => cache
            .get_or_try_insert(formats.value(i), |p| compile_format(func, p))
            .map(Some),
    }
}

/// `CHAR_TO_TIMESTAMP` / `CHAR_TO_DATE` / `CHAR_TO_TIME` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CharToDatetime {
    kind: DatetimeKind,
    name: &'static str,
    signature: Signature,
    aliases: Vec<String>,
    cache: CompileCache<SimpleDateFormat>,
}

impl CharToDatetime {
    /// The parser producing `kind`.
    pub fn new(kind: DatetimeKind) -> Self {
        let name = match kind {
            DatetimeKind::Timestamp => "CHAR_TO_TIMESTAMP",
            DatetimeKind::Date => "CHAR_TO_DATE",
            DatetimeKind::Time => "CHAR_TO_TIME",
        };
        Self {
            kind,
            name,
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias(name),
            cache: CompileCache::new(),
        }
    }

    fn output_type(&self) -> DataType {
        match self.kind {
            DatetimeKind::Timestamp => KDA_TIMESTAMP,
            DatetimeKind::Date => DataType::Date32,
            DatetimeKind::Time => DataType::Time32(TimeUnit::Millisecond),
        }
    }
}

impl ScalarUDFImpl for CharToDatetime {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let f = self.name;
        check_arg_count(f, arg_types, 2..=2, &format!("{f}(format, string)"))?;
        Ok(vec![
            coerce_string(f, "1 (format)", &arg_types[0])?,
            coerce_string(f, "2 (string)", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<Arc<Field>> {
        validate_literal_format(self.name, args.scalar_arguments.first())?;
        Ok(Arc::new(Field::new(self.name, self.output_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.name;
        if args.args.len() != 2 {
            return exec_err!("{f}: expected 2 arguments, got {}", args.args.len());
        }
        let constant = match scalar_str(&args.args[0]) {
            Some(Some(p)) => Some(self.cache.get_or_try_insert(p, |p| compile_format(f, p))?),
            _ => None,
        };
        invoke_on_arrays(&args.args, |arrays| {
            let formats = arrays[0].as_string::<i32>();
            let strings = arrays[1].as_string::<i32>();
            let mut parsed: Vec<Option<i64>> = Vec::with_capacity(strings.len());
            for i in 0..strings.len() {
                if strings.is_null(i) {
                    parsed.push(None);
                    continue;
                }
                let Some(format) = format_for_row(f, &constant, &self.cache, formats, i)? else {
                    parsed.push(None);
                    continue;
                };
                parsed.push(format.parse_millis(strings.value(i)));
            }
            Ok(match self.kind {
                DatetimeKind::Timestamp => {
                    Arc::new(TimestampMillisecondArray::from(parsed)) as ArrayRef
                }
                DatetimeKind::Date => Arc::new(Date32Array::from(
                    parsed
                        .into_iter()
                        .map(|ms| ms.and_then(|ms| i32::try_from(ms.div_euclid(MS_PER_DAY)).ok()))
                        .collect::<Vec<_>>(),
                )),
                DatetimeKind::Time => Arc::new(Time32MillisecondArray::from(
                    parsed
                        .into_iter()
                        .map(|ms| ms.map(|ms| ms.rem_euclid(MS_PER_DAY) as i32))
                        .collect::<Vec<_>>(),
                )),
            })
        })
    }
}

/// `TIMESTAMP_TO_CHAR` / `DATE_TO_CHAR` / `TIME_TO_CHAR` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DatetimeToChar {
    kind: DatetimeKind,
    name: &'static str,
    signature: Signature,
    aliases: Vec<String>,
    cache: CompileCache<SimpleDateFormat>,
}

impl DatetimeToChar {
    /// The formatter for values of `kind`.
    pub fn new(kind: DatetimeKind) -> Self {
        let name = match kind {
            DatetimeKind::Timestamp => "TIMESTAMP_TO_CHAR",
            DatetimeKind::Date => "DATE_TO_CHAR",
            DatetimeKind::Time => "TIME_TO_CHAR",
        };
        Self {
            kind,
            name,
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias(name),
            cache: CompileCache::new(),
        }
    }

    /// Epoch milliseconds of each row of the value argument.
    fn millis(&self, a: &ArrayRef) -> Result<Vec<Option<i64>>> {
        let f = self.name;
        Ok(match a.data_type() {
            DataType::Timestamp(..) => epoch_millis(f, a)?,
            DataType::Date32 => a
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.map(|d| i64::from(d) * MS_PER_DAY))
                .collect(),
            DataType::Date64 => a.as_primitive::<Date64Type>().iter().collect(),
            DataType::Time32(TimeUnit::Second) => a
                .as_primitive::<Time32SecondType>()
                .iter()
                .map(|t| t.map(|t| i64::from(t) * 1000))
                .collect(),
            DataType::Time32(TimeUnit::Millisecond) => a
                .as_primitive::<Time32MillisecondType>()
                .iter()
                .map(|t| t.map(i64::from))
                .collect(),
            DataType::Time64(TimeUnit::Microsecond) => a
                .as_primitive::<Time64MicrosecondType>()
                .iter()
                .map(|t| t.map(|t| t.div_euclid(1000)))
                .collect(),
            DataType::Time64(TimeUnit::Nanosecond) => a
                .as_primitive::<Time64NanosecondType>()
                .iter()
                .map(|t| t.map(|t| t.div_euclid(1_000_000)))
                .collect(),
            other => {
                return exec_err!(
                    "{f}: argument 2 must be a {}, got {other}",
                    self.kind.sql_name()
                )
            }
        })
    }
}

impl ScalarUDFImpl for DatetimeToChar {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let f = self.name;
        let sql = self.kind.sql_name();
        check_arg_count(
            f,
            arg_types,
            2..=2,
            &format!("{f}(format, {})", sql.to_lowercase()),
        )?;
        let value = &arg_types[1];
        let value = match (self.kind, value) {
            (DatetimeKind::Timestamp, DataType::Timestamp(..)) => value.clone(),
            (DatetimeKind::Timestamp, DataType::Null) => KDA_TIMESTAMP,
            (DatetimeKind::Date, DataType::Date32 | DataType::Date64) => value.clone(),
            (DatetimeKind::Date, DataType::Null) => DataType::Date32,
            (DatetimeKind::Time, DataType::Time32(_) | DataType::Time64(_)) => value.clone(),
            (DatetimeKind::Time, DataType::Null) => DataType::Time32(TimeUnit::Millisecond),
            (_, other) => {
                return plan_err!("{f}: argument 2 must be a {sql}, got {other}");
            }
        };
        Ok(vec![coerce_string(f, "1 (format)", &arg_types[0])?, value])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<Arc<Field>> {
        validate_literal_format(self.name, args.scalar_arguments.first())?;
        Ok(Arc::new(Field::new(self.name, DataType::Utf8, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.name;
        if args.args.len() != 2 {
            return exec_err!("{f}: expected 2 arguments, got {}", args.args.len());
        }
        let constant = match scalar_str(&args.args[0]) {
            Some(Some(p)) => Some(self.cache.get_or_try_insert(p, |p| compile_format(f, p))?),
            _ => None,
        };
        let null_text = (self.kind == DatetimeKind::Timestamp).then_some("null");
        invoke_on_arrays(&args.args, |arrays| {
            let formats = arrays[0].as_string::<i32>();
            let values = self.millis(&arrays[1])?;
            let mut out = StringBuilder::with_capacity(values.len(), values.len() * 24);
            let mut buf = String::new();
            for (i, value) in values.iter().enumerate() {
                let Some(format) = format_for_row(f, &constant, &self.cache, formats, i)? else {
                    out.append_null();
                    continue;
                };
                match (value, null_text) {
                    (Some(ms), _) => {
                        buf.clear();
                        format.format_millis(*ms, &mut buf);
                        out.append_value(&buf);
                    }
                    (None, Some(text)) => out.append_value(text),
                    (None, None) => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `CHAR_TO_TIMESTAMP`.
pub fn char_to_timestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(CharToDatetime::new(DatetimeKind::Timestamp))
}

/// `CHAR_TO_DATE`.
pub fn char_to_date() -> ScalarUDF {
    ScalarUDF::new_from_impl(CharToDatetime::new(DatetimeKind::Date))
}

/// `CHAR_TO_TIME`.
pub fn char_to_time() -> ScalarUDF {
    ScalarUDF::new_from_impl(CharToDatetime::new(DatetimeKind::Time))
}

/// `TIMESTAMP_TO_CHAR`.
pub fn timestamp_to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(DatetimeToChar::new(DatetimeKind::Timestamp))
}

/// `DATE_TO_CHAR`.
pub fn date_to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(DatetimeToChar::new(DatetimeKind::Date))
}

/// `TIME_TO_CHAR`.
pub fn time_to_char() -> ScalarUDF {
    ScalarUDF::new_from_impl(DatetimeToChar::new(DatetimeKind::Time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    fn s(v: &str) -> ColumnarValue {
        scalar(ScalarValue::Utf8(Some(v.to_string())))
    }

    #[test]
    fn char_to_timestamp_parses_and_defaults() {
        assert_eq!(
            invoke_scalar(
                &char_to_timestamp(),
                vec![s("yyyy-MM-dd HH:mm:ss"), s("2018-11-01 01:00:00")]
            ),
            ScalarValue::TimestampMillisecond(Some(ts_ms("2018-11-01 01:00:00")), None)
        );
        assert_eq!(
            invoke_scalar(&char_to_timestamp(), vec![s("HH:mm"), s("10:30")]),
            ScalarValue::TimestampMillisecond(Some(ts_ms("1970-01-01 10:30:00")), None)
        );
    }

    #[test]
    fn char_to_timestamp_no_match_and_nulls_are_null() {
        let none = ScalarValue::TimestampMillisecond(None, None);
        assert_eq!(
            invoke_scalar(&char_to_timestamp(), vec![s("yyyy-MM-dd"), s("not a date")]),
            none
        );
        assert_eq!(
            invoke_scalar(
                &char_to_timestamp(),
                vec![s("yyyy-MM-dd"), scalar(ScalarValue::Utf8(None))]
            ),
            none
        );
        assert_eq!(
            invoke_scalar(
                &char_to_timestamp(),
                vec![scalar(ScalarValue::Utf8(None)), s("2018")]
            ),
            none
        );
    }

    #[test]
    fn char_to_timestamp_per_row_formats() {
        let formats = Arc::new(StringArray::from(vec![
            Some("yyyy"),
            Some("MM/yyyy"),
            None,
            Some("yyyy"),
        ]));
        let strings = Arc::new(StringArray::from(vec![
            Some("2018"),
            Some("02/2018"),
            Some("2018"),
            None,
        ]));
        let out = invoke(
            &char_to_timestamp(),
            vec![ColumnarValue::Array(formats), ColumnarValue::Array(strings)],
            4,
        )
        .unwrap()
        .to_array(4)
        .unwrap();
        let out = out.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        let got: Vec<Option<i64>> = out.iter().collect();
        assert_eq!(
            got,
            vec![
                Some(ts_ms("2018-01-01 00:00:00")),
                Some(ts_ms("2018-02-01 00:00:00")),
                None,
                None
            ]
        );
    }

    #[test]
    fn char_to_date_and_time() {
        assert_eq!(
            invoke_scalar(
                &char_to_date(),
                vec![s("dd.MM.yyyy HH:mm"), s("02.11.2018 13:45")]
            ),
            ScalarValue::Date32(Some(17_837))
        );
        assert_eq!(
            invoke_scalar(&char_to_date(), vec![s("yyyy-MM-dd"), s("1969-12-31")]),
            ScalarValue::Date32(Some(-1))
        );
        assert_eq!(
            invoke_scalar(
                &char_to_time(),
                vec![s("yyyy-MM-dd HH:mm:ss.SSS"), s("2018-11-02 13:45:01.002")]
            ),
            ScalarValue::Time32Millisecond(Some(49_501_002))
        );
        assert_eq!(
            invoke_scalar(&char_to_time(), vec![s("HH:mm"), s("xx")]),
            ScalarValue::Time32Millisecond(None)
        );
    }

    #[test]
    fn timestamp_to_char_formats_and_null_is_string_null() {
        let ts = |v: Option<i64>| scalar(ScalarValue::TimestampMillisecond(v, None));
        // SPEC §2.8: hh is a 12-hour clock
        assert_eq!(
            invoke_scalar(
                &timestamp_to_char(),
                vec![
                    s("yyyy-MM-dd hh:mm:ss"),
                    ts(Some(ts_ms("2018-06-13 14:11:05")))
                ]
            ),
            ScalarValue::Utf8(Some("2018-06-13 02:11:05".into()))
        );
        assert_eq!(
            invoke_scalar(&timestamp_to_char(), vec![s("yyyy"), ts(None)]),
            ScalarValue::Utf8(Some("null".into()))
        );
        assert_eq!(
            invoke_scalar(
                &timestamp_to_char(),
                vec![scalar(ScalarValue::Utf8(None)), ts(Some(0))]
            ),
            ScalarValue::Utf8(None)
        );
        // other units
        assert_eq!(
            invoke_scalar(
                &timestamp_to_char(),
                vec![
                    s("HH:mm:ss.SSS"),
                    scalar(ScalarValue::TimestampMicrosecond(Some(1_234_567), None))
                ]
            ),
            ScalarValue::Utf8(Some("00:00:01.234".into()))
        );
    }

    #[test]
    fn timestamp_to_char_array_with_nulls() {
        let col = Arc::new(TimestampMillisecondArray::from(vec![Some(0), None]));
        let out = invoke(
            &timestamp_to_char(),
            vec![s("yyyy-MM-dd"), ColumnarValue::Array(col)],
            2,
        )
        .unwrap()
        .to_array(2)
        .unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "1970-01-01");
        assert_eq!(out.value(1), "null");
        assert!(!out.is_null(1));
    }

    #[test]
    fn date_and_time_to_char() {
        assert_eq!(
            invoke_scalar(
                &date_to_char(),
                vec![
                    s("EEEE d MMMM yyyy"),
                    scalar(ScalarValue::Date32(Some(17_836)))
                ]
            ),
            ScalarValue::Utf8(Some("Thursday 1 November 2018".into()))
        );
        assert_eq!(
            invoke_scalar(
                &date_to_char(),
                vec![s("yyyy"), scalar(ScalarValue::Date32(None))]
            ),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(
                &time_to_char(),
                vec![
                    s("h:mm a"),
                    scalar(ScalarValue::Time32Millisecond(Some(49_501_002)))
                ]
            ),
            ScalarValue::Utf8(Some("1:45 PM".into()))
        );
        assert_eq!(
            invoke_scalar(
                &time_to_char(),
                vec![
                    s("HH:mm:ss"),
                    scalar(ScalarValue::Time64Nanosecond(Some(3_723_000_000_000)))
                ]
            ),
            ScalarValue::Utf8(Some("01:02:03".into()))
        );
        assert_eq!(
            invoke_scalar(
                &time_to_char(),
                vec![s("HH"), scalar(ScalarValue::Time32Second(None))]
            ),
            ScalarValue::Utf8(None)
        );
    }

    #[test]
    fn bad_format_errors_name_function_and_letter() {
        let err = invoke(
            &timestamp_to_char(),
            vec![
                s("YYYY"),
                scalar(ScalarValue::TimestampMillisecond(Some(0), None)),
            ],
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("TIMESTAMP_TO_CHAR") && err.contains("'Y'"),
            "{err}"
        );
        let err = invoke(&char_to_date(), vec![s("yyyy-qq"), s("x")], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CHAR_TO_DATE") && err.contains("'q'"), "{err}");
        let err = CharToDatetime::new(DatetimeKind::Timestamp)
            .coerce_types(&[DataType::Utf8, DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CHAR_TO_TIMESTAMP: argument 2 (string) must be a character string"),
            "{err}"
        );
        let err = DatetimeToChar::new(DatetimeKind::Date)
            .coerce_types(&[DataType::Utf8, DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DATE_TO_CHAR: argument 2 must be a DATE"),
            "{err}"
        );
    }
}
