//! Shared helpers: proleptic-Gregorian calendar arithmetic (UTC), timestamp-unit conversion,
//! interval decoding, argument plumbing and a small compile cache for patterns.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::ColumnarValue;

/// Milliseconds in a (UTC, leap-second-free) day.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// The KDA `TIMESTAMP` type: millisecond precision, no time zone.
pub(crate) const KDA_TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// `(year, month 1..=12, day 1..=31)` of a day number counted from 1970-01-01
/// (proleptic Gregorian calendar; H. Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (from 1970-01-01) of a proleptic-Gregorian date. `month` must be 1..=12;
/// `day` may be anything (it is simply added), which gives Java's lenient roll-over.
pub(crate) fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// Normalises a possibly out-of-range (year, month) pair: month 13 is January of the next year.
pub(crate) fn normalize_year_month(year: i64, month: i64) -> (i64, u32) {
    let m0 = month - 1;
    (year + m0.div_euclid(12), (m0.rem_euclid(12) + 1) as u32)
}

/// Whether `year` is a leap year (proleptic Gregorian).
#[cfg(test)]
pub(crate) fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Day of week of a day number: 0 = Sunday .. 6 = Saturday (1970-01-01 was a Thursday).
pub(crate) fn weekday_sunday0(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Nanoseconds per unit of `unit`.
pub(crate) fn unit_nanos(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Converts a timestamp value in `unit` to epoch milliseconds (flooring sub-millisecond parts,
/// so pre-1970 values round towards minus infinity like a calendar would).
pub(crate) fn to_millis(value: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => value.checked_mul(1000),
        TimeUnit::Millisecond => Some(value),
        TimeUnit::Microsecond => Some(value.div_euclid(1000)),
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000_000)),
    }
}

/// Converts epoch milliseconds to a value in `unit` (flooring for `Second`).
pub(crate) fn from_millis(ms: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => Some(ms.div_euclid(1000)),
        TimeUnit::Millisecond => Some(ms),
        TimeUnit::Microsecond => ms.checked_mul(1000),
        TimeUnit::Nanosecond => ms.checked_mul(1_000_000),
    }
}

/// A day-time interval in nanoseconds, or an error naming `func` if the value is a
/// year-month interval (months have no fixed length) or does not fit.
pub(crate) fn interval_to_nanos(func: &str, value: &ScalarValue) -> Result<Option<i64>> {
    let too_big = || {
        datafusion::common::DataFusionError::Execution(format!(
            "{func}: interval {value} is too large"
        ))
    };
    match value {
        ScalarValue::IntervalMonthDayNano(None)
        | ScalarValue::IntervalDayTime(None)
        | ScalarValue::IntervalYearMonth(None)
        | ScalarValue::DurationSecond(None)
        | ScalarValue::DurationMillisecond(None)
        | ScalarValue::DurationMicrosecond(None)
        | ScalarValue::DurationNanosecond(None)
        | ScalarValue::Null => Ok(None),
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return exec_err!(
                    "{func}: year-month intervals are not supported (got {value}); use a day-time interval such as INTERVAL '1' DAY"
                );
            }
            let days = i64::from(v.days).checked_mul(86_400_000_000_000).ok_or_else(too_big)?;
            days.checked_add(v.nanoseconds).map(Some).ok_or_else(too_big)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            let ms = i64::from(v.days) * MS_PER_DAY + i64::from(v.milliseconds);
            ms.checked_mul(1_000_000).map(Some).ok_or_else(too_big)
        }
        ScalarValue::IntervalYearMonth(Some(_)) => exec_err!(
            "{func}: year-month intervals are not supported (got {value}); use a day-time interval such as INTERVAL '1' DAY"
        ),
        ScalarValue::DurationSecond(Some(v)) => {
            v.checked_mul(1_000_000_000).map(Some).ok_or_else(too_big)
        }
        ScalarValue::DurationMillisecond(Some(v)) => {
            v.checked_mul(1_000_000).map(Some).ok_or_else(too_big)
        }
        ScalarValue::DurationMicrosecond(Some(v)) => {
            v.checked_mul(1_000).map(Some).ok_or_else(too_big)
        }
        ScalarValue::DurationNanosecond(Some(v)) => Ok(Some(*v)),
        other => exec_err!(
            "{func}: expected an INTERVAL, got {other} of type {}",
            other.data_type()
        ),
    }
}

/// Whether `dt` is an interval or duration type accepted where KDA takes a day-time interval.
pub(crate) fn is_interval_like(dt: &DataType) -> bool {
    matches!(dt, DataType::Interval(_) | DataType::Duration(_))
}

/// Whether `dt` is one of the string types.
pub(crate) fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Whether `dt` is a (signed or unsigned) integer type.
pub(crate) fn is_integer(dt: &DataType) -> bool {
    dt.is_integer()
}

/// Coerces a string-like (or NULL) argument to `Utf8`, or fails naming the function/argument.
pub(crate) fn coerce_string(func: &str, arg_name: &str, dt: &DataType) -> Result<DataType> {
    if is_string(dt) || dt == &DataType::Null {
        Ok(DataType::Utf8)
    } else {
        datafusion::common::plan_err!(
            "{func}: argument {arg_name} must be a character string (VARCHAR), got {dt}"
        )
    }
}

/// Coerces an integer (or NULL) argument to `Int64`, or fails naming the function/argument.
pub(crate) fn coerce_int64(func: &str, arg_name: &str, dt: &DataType) -> Result<DataType> {
    if is_integer(dt) || dt == &DataType::Null {
        Ok(DataType::Int64)
    } else {
        datafusion::common::plan_err!("{func}: argument {arg_name} must be an integer, got {dt}")
    }
}

/// Checks the number of arguments (planning time).
pub(crate) fn check_arg_count(
    func: &str,
    arg_types: &[DataType],
    allowed: std::ops::RangeInclusive<usize>,
    usage: &str,
) -> Result<()> {
    if allowed.contains(&arg_types.len()) {
        Ok(())
    } else {
        datafusion::common::plan_err!(
            "{func}: wrong number of arguments ({}); usage: {usage}",
            arg_types.len()
        )
    }
}

/// Checks the number of arguments at execution time (DataFusion has already checked it during
/// planning; this guards direct calls).
pub(crate) fn expect_args(
    func: &str,
    args: &[ColumnarValue],
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if allowed.contains(&args.len()) {
        Ok(())
    } else {
        exec_err!("{func}: wrong number of arguments ({})", args.len())
    }
}

/// Returns the string value of a constant (scalar) argument: `Some(None)` for a NULL constant,
/// `None` if the argument is not a constant.
pub(crate) fn scalar_str(value: &ColumnarValue) -> Option<Option<&str>> {
    match value {
        ColumnarValue::Scalar(s) => scalar_value_str(s),
        ColumnarValue::Array(_) => None,
    }
}

/// String content of a string-typed [`ScalarValue`] (`Some(None)` for NULL), `None` if it is
/// not a string.
pub(crate) fn scalar_value_str(value: &ScalarValue) -> Option<Option<&str>> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            Some(v.as_deref())
        }
        ScalarValue::Null => Some(None),
        _ => None,
    }
}

/// Evaluates a function row by row over arrays: scalars are broadcast, and if every argument
/// was a scalar the (single-row) result is returned as a scalar again.
pub(crate) fn invoke_on_arrays(
    args: &[ColumnarValue],
    f: impl FnOnce(&[ArrayRef]) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let result = f(&arrays)?;
    if all_scalar && !args.is_empty() {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}

/// A bounded cache of compiled patterns keyed by their source text, so per-batch evaluation
/// (streaming batches are often tiny) does not recompile regexes / date formats.
///
/// It is ignored by equality and hashing so UDF structs holding one can derive both.
pub(crate) struct CompileCache<T> {
    entries: Mutex<HashMap<String, Arc<T>>>,
}

impl<T> CompileCache<T> {
    const CAPACITY: usize = 256;

    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the compiled form of `key`, compiling (and remembering) it on a miss.
    pub(crate) fn get_or_try_insert(
        &self,
        key: &str,
        compile: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Arc<T>> {
        if let Ok(entries) = self.entries.lock() {
            if let Some(hit) = entries.get(key) {
                return Ok(Arc::clone(hit));
            }
        }
        let compiled = Arc::new(compile(key)?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(key.to_string(), Arc::clone(&compiled));
        }
        Ok(compiled)
    }
}

impl<T> std::fmt::Debug for CompileCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompileCache")
    }
}

impl<T> PartialEq for CompileCache<T> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<T> Eq for CompileCache<T> {}

impl<T> Hash for CompileCache<T> {
    fn hash<H: Hasher>(&self, _state: &mut H) {}
}

/// Builds the `[UPPER, lower]` name set KDA functions are registered under.
pub(crate) fn lower_alias(name: &str) -> Vec<String> {
    vec![name.to_ascii_lowercase()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-719_468_i64, -1, 0, 1, 59, 365, 10_957, 17_836, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, i64::from(d)), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2018, 11, 1), 17_836);
        // lenient day overflow
        assert_eq!(days_from_civil(2020, 2, 30), days_from_civil(2020, 3, 1));
    }

    #[test]
    fn weekday_and_leap() {
        assert_eq!(weekday_sunday0(0), 4); // Thursday
        assert_eq!(weekday_sunday0(days_from_civil(2024, 6, 2,)), 0); // a Sunday
        assert!(is_leap_year(2000) && is_leap_year(2024));
        assert!(!is_leap_year(1900) && !is_leap_year(2023));
        assert_eq!(normalize_year_month(2020, 13), (2021, 1));
        assert_eq!(normalize_year_month(2020, 0), (2019, 12));
    }

    #[test]
    fn unit_conversion_floors() {
        assert_eq!(to_millis(-1, TimeUnit::Microsecond), Some(-1));
        assert_eq!(to_millis(1_999_999, TimeUnit::Nanosecond), Some(1));
        assert_eq!(to_millis(2, TimeUnit::Second), Some(2000));
        assert_eq!(from_millis(-1, TimeUnit::Second), Some(-1));
        assert_eq!(to_millis(i64::MAX, TimeUnit::Second), None);
    }

    #[test]
    fn intervals() {
        use datafusion::arrow::datatypes::IntervalMonthDayNano;
        let v = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 1, 5)));
        assert_eq!(
            interval_to_nanos("F", &v).unwrap(),
            Some(86_400_000_000_005)
        );
        let m = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0)));
        let err = interval_to_nanos("F", &m).unwrap_err().to_string();
        assert!(err.contains("F: year-month"), "{err}");
        assert_eq!(
            interval_to_nanos("F", &ScalarValue::DurationSecond(Some(2))).unwrap(),
            Some(2_000_000_000)
        );
        assert!(interval_to_nanos("F", &ScalarValue::Int32(Some(1))).is_err());
    }
}
