//! Date/time functions: `TSDIFF`, `UNIX_TIMESTAMP`, `CURRENT_ROW_TIMESTAMP`.
//!
//! * `TSDIFF(a, b)` → BIGINT milliseconds `a - b`. The SQL reference types both arguments as
//!   BIGINT milliseconds since the epoch, but real applications pass TIMESTAMPs
//!   (`TSDIFF(MAX(ts), MIN(ts)) / 1000`, SPEC §1.6); both are accepted, and may be mixed
//!   (a BIGINT is taken as epoch milliseconds). The order is `a - b`, which makes that common
//!   `TSDIFF(max, min)` positive. Timestamps of other units are converted to milliseconds
//!   first (sub-millisecond parts are floored). NULL if any argument is NULL; overflow is an error.
//! * `UNIX_TIMESTAMP(ts)` → BIGINT milliseconds since 1970-01-01 00:00:00 UTC (not seconds,
//!   unlike MySQL). NULL → NULL.
//! * `CURRENT_ROW_TIMESTAMP()` → the wall clock (UTC) as `TIMESTAMP` (millisecond precision),
//!   evaluated anew for every batch of rows — volatile, so DataFusion never constant-folds it,
//!   unlike `CURRENT_TIMESTAMP`, which KDA fixes at query start (SPEC §2.8). All rows of one
//!   batch share one reading of the clock.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{
    DataType, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::{check_arg_count, expect_args, invoke_on_arrays, lower_alias, to_millis};

/// Epoch milliseconds of a TIMESTAMP (any unit) or BIGINT-milliseconds array, row by row.
pub(crate) fn epoch_millis(func: &str, a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    fn convert<T: datafusion::arrow::datatypes::ArrowTimestampType>(
        func: &str,
        a: &ArrayRef,
        unit: TimeUnit,
    ) -> Result<Vec<Option<i64>>> {
        a.as_primitive::<T>()
            .iter()
            .map(|v| match v {
                None => Ok(None),
                Some(v) => to_millis(v, unit).map(Some).ok_or_else(|| {
                    DataFusionError::Execution(format!("{func}: timestamp {v} out of range"))
                }),
            })
            .collect()
    }
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            convert::<TimestampSecondType>(func, a, TimeUnit::Second)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(a
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            convert::<TimestampMicrosecondType>(func, a, TimeUnit::Microsecond)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            convert::<TimestampNanosecondType>(func, a, TimeUnit::Nanosecond)
        }
        DataType::Int64 => Ok(a.as_primitive::<Int64Type>().iter().collect()),
        other => exec_err!("{func}: expected a TIMESTAMP or BIGINT argument, got {other}"),
    }
}

/// `TSDIFF(a, b)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TsDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for TsDiff {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("TSDIFF"),
        }
    }
}

/// Accepts TIMESTAMP (kept) or any integer / NULL (→ BIGINT ms).
fn coerce_ts_or_millis(func: &str, arg: &str, dt: &DataType) -> Result<DataType> {
    match dt {
        DataType::Timestamp(..) => Ok(dt.clone()),
        DataType::Null => Ok(DataType::Int64),
        t if t.is_integer() => Ok(DataType::Int64),
        other => plan_err!(
            "{func}: argument {arg} must be a TIMESTAMP or a BIGINT of epoch milliseconds, got {other}"
        ),
    }
}

impl ScalarUDFImpl for TsDiff {
    fn name(&self) -> &str {
        "TSDIFF"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count("TSDIFF", arg_types, 2..=2, "TSDIFF(startTime, endTime)")?;
        Ok(vec![
            coerce_ts_or_millis("TSDIFF", "1 (startTime)", &arg_types[0])?,
            coerce_ts_or_millis("TSDIFF", "2 (endTime)", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        expect_args("TSDIFF", &args.args, 2..=2)?;
        invoke_on_arrays(&args.args, |arrays| {
            let [a, b] = [&arrays[0], &arrays[1]];
            let a = epoch_millis("TSDIFF", a)?;
            let b = epoch_millis("TSDIFF", b)?;
            let out = a
                .into_iter()
                .zip(b)
                .map(|pair| match pair {
                    (Some(a), Some(b)) => a.checked_sub(b).map(Some).ok_or_else(|| {
                        DataFusionError::Execution(format!("TSDIFF({a}, {b}): result out of range"))
                    }),
                    _ => Ok(None),
                })
                .collect::<Result<Int64Array>>()?;
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// `UNIX_TIMESTAMP(ts)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UnixTimestamp {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for UnixTimestamp {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("UNIX_TIMESTAMP"),
        }
    }
}

impl ScalarUDFImpl for UnixTimestamp {
    fn name(&self) -> &str {
        "UNIX_TIMESTAMP"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(
            "UNIX_TIMESTAMP",
            arg_types,
            1..=1,
            "UNIX_TIMESTAMP(timestamp)",
        )?;
        match &arg_types[0] {
            t @ DataType::Timestamp(..) => Ok(vec![t.clone()]),
            DataType::Null => Ok(vec![crate::util::KDA_TIMESTAMP]),
            other => plan_err!("UNIX_TIMESTAMP: argument must be a TIMESTAMP, got {other}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        expect_args("UNIX_TIMESTAMP", &args.args, 1..=1)?;
        invoke_on_arrays(&args.args, |arrays| {
            let ms = epoch_millis("UNIX_TIMESTAMP", &arrays[0])?;
            Ok(Arc::new(Int64Array::from(ms)) as ArrayRef)
        })
    }
}

/// `CURRENT_ROW_TIMESTAMP()` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CurrentRowTimestamp {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for CurrentRowTimestamp {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
            aliases: lower_alias("CURRENT_ROW_TIMESTAMP"),
        }
    }
}

impl ScalarUDFImpl for CurrentRowTimestamp {
    fn name(&self) -> &str {
        "CURRENT_ROW_TIMESTAMP"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(crate::util::KDA_TIMESTAMP)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.is_empty() {
            return exec_err!(
                "CURRENT_ROW_TIMESTAMP: takes no arguments, got {}",
                args.args.len()
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| DataFusionError::Execution(format!("CURRENT_ROW_TIMESTAMP: {e}")))?;
        let ms = i64::try_from(now.as_millis()).map_err(|e| {
            DataFusionError::Execution(format!("CURRENT_ROW_TIMESTAMP: clock out of range: {e}"))
        })?;
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(ms),
            None,
        )))
    }
}

/// `TSDIFF`.
pub fn tsdiff() -> ScalarUDF {
    ScalarUDF::new_from_impl(TsDiff::default())
}

/// `UNIX_TIMESTAMP`.
pub fn unix_timestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(UnixTimestamp::default())
}

/// `CURRENT_ROW_TIMESTAMP`.
pub fn current_row_timestamp() -> ScalarUDF {
    ScalarUDF::new_from_impl(CurrentRowTimestamp::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use datafusion::arrow::array::TimestampMillisecondArray;

    #[test]
    fn tsdiff_timestamps_and_bigints() {
        let a = ScalarValue::TimestampMillisecond(Some(ts_ms("2018-11-01 10:00:01.500")), None);
        let b = ScalarValue::TimestampMillisecond(Some(ts_ms("2018-11-01 10:00:00")), None);
        assert_eq!(
            invoke_scalar(&tsdiff(), vec![scalar(a.clone()), scalar(b.clone())]),
            ScalarValue::Int64(Some(1500))
        );
        assert_eq!(
            invoke_scalar(&tsdiff(), vec![scalar(b), scalar(a)]),
            ScalarValue::Int64(Some(-1500))
        );
        assert_eq!(
            invoke_scalar(
                &tsdiff(),
                vec![
                    scalar(ScalarValue::Int64(Some(5000))),
                    scalar(ScalarValue::Int64(Some(2000)))
                ]
            ),
            ScalarValue::Int64(Some(3000))
        );
        // mixed units: seconds vs micro
        assert_eq!(
            invoke_scalar(
                &tsdiff(),
                vec![
                    scalar(ScalarValue::TimestampSecond(Some(2), None)),
                    scalar(ScalarValue::TimestampMicrosecond(Some(500_000), None))
                ]
            ),
            ScalarValue::Int64(Some(1500))
        );
    }

    #[test]
    fn tsdiff_nulls_and_errors() {
        let col = std::sync::Arc::new(TimestampMillisecondArray::from(vec![Some(10), None]));
        let out = invoke(
            &tsdiff(),
            vec![
                ColumnarValue::Array(col),
                scalar(ScalarValue::TimestampMillisecond(Some(4), None)),
            ],
            2,
        )
        .unwrap()
        .to_array(2)
        .unwrap();
        let got: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(got, vec![Some(6), None]);
        let err = invoke(
            &tsdiff(),
            vec![
                scalar(ScalarValue::Int64(Some(i64::MIN))),
                scalar(ScalarValue::Int64(Some(1))),
            ],
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("TSDIFF"), "{err}");
        let err = TsDiff::default()
            .coerce_types(&[DataType::Utf8, DataType::Int64])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("TSDIFF: argument 1 (startTime) must be a TIMESTAMP"),
            "{err}"
        );
        let err = TsDiff::default()
            .coerce_types(&[DataType::Int64])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("TSDIFF: wrong number of arguments"),
            "{err}"
        );
        assert_eq!(
            TsDiff::default()
                .coerce_types(&[DataType::Int32, DataType::Null])
                .unwrap(),
            vec![DataType::Int64, DataType::Int64]
        );
    }

    #[test]
    fn unix_timestamp_millis() {
        assert_eq!(
            invoke_scalar(
                &unix_timestamp(),
                vec![scalar(ScalarValue::TimestampNanosecond(
                    Some(1_500_000_000_123),
                    None
                ))]
            ),
            ScalarValue::Int64(Some(1_500_000))
        );
        assert_eq!(
            invoke_scalar(
                &unix_timestamp(),
                vec![scalar(ScalarValue::TimestampMillisecond(None, None))]
            ),
            ScalarValue::Int64(None)
        );
        let err = UnixTimestamp::default()
            .coerce_types(&[DataType::Utf8])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("UNIX_TIMESTAMP: argument must be a TIMESTAMP"),
            "{err}"
        );
    }

    #[test]
    fn current_row_timestamp_is_now_and_volatile() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let ScalarValue::TimestampMillisecond(Some(v), None) =
            invoke_scalar(&current_row_timestamp(), vec![])
        else {
            panic!("wrong type");
        };
        assert!(v >= before && v - before < 60_000);
        assert_eq!(
            current_row_timestamp().signature().volatility,
            Volatility::Volatile
        );
    }
}
