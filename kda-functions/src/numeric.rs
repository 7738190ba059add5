//! Numeric functions that KDA adds or gives special meaning: `STEP`, and the
//! `FLOOR(ts TO unit)` / `CEIL(ts TO unit)` helpers `FLOOR_TO` / `CEIL_TO`.
//!
//! * `STEP(ts, interval)` — the front end rewrites `STEP(ts BY INTERVAL '60' SECOND)` into this
//!   call. Epoch-aligned floor (SPEC §2.8):
//!   `(ts - TIMESTAMP '1970-01-01 00:00:00') / i * i + TIMESTAMP '1970-01-01 00:00:00'`.
//!   The result has the argument's timestamp type (unit and zone are kept). The interval must be
//!   a positive day-time interval (or an Arrow duration); year-month intervals are rejected, and
//!   so is an interval that is not a whole number of the timestamp's unit.
//! * `STEP(x, n)` on integers — the largest multiple of `n` that is `<= x` (floor semantics,
//!   so `STEP(-7, 5) = -10`, as the KDA docs' "largest multiple ≤ x" says; SPEC §2.8 notes that
//!   this differs from truncating `(x / n) * n` for negative `x`). The result has `x`'s type; `n`
//!   is cast to it. Floating-point arguments use `floor(x / n) * n` and return DOUBLE. `n <= 0`
//!   is an error. DECIMAL is rejected (cast to DOUBLE or BIGINT first).
//! * `FLOOR_TO(ts, 'MINUTE')` / `CEIL_TO(ts, 'MINUTE')` — the front end rewrites
//!   `FLOOR(ts TO MINUTE)` / `CEIL(ts TO MINUTE)` into these. Units (case-insensitive):
//!   `MILLISECOND`, `SECOND`, `MINUTE`, `HOUR`, `DAY`, `MONTH`, `QUARTER`, `YEAR`; the unit must
//!   be a constant. All boundaries are UTC. `CEIL_TO` of a value already on a boundary is the
//!   value itself. The result has the argument's timestamp type.
//!
//! NULL in any argument gives NULL.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, PrimitiveArray};
use datafusion::arrow::datatypes::Field;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, ArrowTimestampType, DataType, Int16Type, Int32Type, Int64Type, Int8Type,
    IntervalUnit, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::util::{
    check_arg_count, civil_from_days, coerce_string, days_from_civil, from_millis,
    interval_to_nanos, invoke_on_arrays, is_interval_like, lower_alias, normalize_year_month,
    scalar_str, scalar_value_str, to_millis, unit_nanos, KDA_TIMESTAMP, MS_PER_DAY,
};

/// `STEP(x, n)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Step {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for Step {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("STEP"),
        }
    }
}

impl ScalarUDFImpl for Step {
    fn name(&self) -> &str {
        "STEP"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count(
            "STEP",
            arg_types,
            2..=2,
            "STEP(timestamp, interval) or STEP(number, number)",
        )?;
        let (x, n) = (&arg_types[0], &arg_types[1]);
        let month_day_nano = DataType::Interval(IntervalUnit::MonthDayNano);
        Ok(match (x, n) {
            (DataType::Timestamp(..), n) if is_interval_like(n) => vec![x.clone(), n.clone()],
            (DataType::Timestamp(..), DataType::Null) => vec![x.clone(), month_day_nano],
            (DataType::Null, n) if is_interval_like(n) => vec![KDA_TIMESTAMP, n.clone()],
            (DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..), _)
            | (_, DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) | DataType::Decimal256(..)) => {
                return plan_err!(
                    "STEP: DECIMAL arguments are not supported (got {x}, {n}); CAST them to BIGINT or DOUBLE"
                )
            }
            (x, n) if x.is_integer() && (n.is_integer() || n == &DataType::Null) => {
                vec![x.clone(), x.clone()]
            }
            (DataType::Null, n) if n.is_integer() => vec![n.clone(), n.clone()],
            (DataType::Null, DataType::Null) => vec![DataType::Int64, DataType::Int64],
            (x, n)
                if (x.is_numeric() || x == &DataType::Null)
                    && (n.is_numeric() || n == &DataType::Null) =>
            {
                vec![DataType::Float64, DataType::Float64]
            }
            _ => {
                return plan_err!(
                    "STEP: unsupported argument types ({x}, {n}); expected STEP(TIMESTAMP, INTERVAL) or STEP(number, number)"
                )
            }
        })
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => plan_err!("STEP: expected 2 arguments"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [x, n] = take_args::<2>("STEP", args.args)?;
        match x.data_type() {
            DataType::Timestamp(unit, _) => step_timestamp(&x, &n, unit),
            _ => invoke_on_arrays(&[x, n], |arrays| {
                let (x, n) = (&arrays[0], &arrays[1]);
                match x.data_type() {
                    DataType::Int8 => step_ints::<Int8Type>(x, n),
                    DataType::Int16 => step_ints::<Int16Type>(x, n),
                    DataType::Int32 => step_ints::<Int32Type>(x, n),
                    DataType::Int64 => step_ints::<Int64Type>(x, n),
                    DataType::UInt8 => step_ints::<UInt8Type>(x, n),
                    DataType::UInt16 => step_ints::<UInt16Type>(x, n),
                    DataType::UInt32 => step_ints::<UInt32Type>(x, n),
                    DataType::UInt64 => step_ints::<UInt64Type>(x, n),
                    DataType::Float64 => step_floats(x, n),
                    other => exec_err!("STEP: unsupported argument type {other}"),
                }
            }),
        }
    }
}

/// Moves exactly `N` arguments out of `args`, or fails naming the function.
pub(crate) fn take_args<const N: usize>(
    func: &str,
    args: Vec<ColumnarValue>,
) -> Result<[ColumnarValue; N]> {
    let got = args.len();
    args.try_into().map_err(|_| {
        DataFusionError::Execution(format!("{func}: expected {N} arguments, got {got}"))
    })
}

fn step_timestamp(x: &ColumnarValue, n: &ColumnarValue, unit: TimeUnit) -> Result<ColumnarValue> {
    let step_in_unit = |interval: &ScalarValue| -> Result<Option<i64>> {
        let Some(nanos) = interval_to_nanos("STEP", interval)? else {
            return Ok(None);
        };
        if nanos <= 0 {
            return exec_err!("STEP: the interval must be positive, got {interval}");
        }
        let per_unit = unit_nanos(unit);
        if nanos % per_unit != 0 {
            return exec_err!(
                "STEP: interval {interval} is not a whole number of {unit:?}s, the unit of the timestamp argument"
            );
        }
        Ok(Some(nanos / per_unit))
    };
    let floor = |v: i64, step: i64| -> Result<i64> {
        v.div_euclid(step)
            .checked_mul(step)
            .ok_or_else(|| DataFusionError::Execution(format!("STEP: result out of range for {v}")))
    };
    match n {
        ColumnarValue::Scalar(interval) => match step_in_unit(interval)? {
            Some(step) => map_timestamps(x, |v| floor(v, step)),
            None => null_like(x),
        },
        ColumnarValue::Array(intervals) => {
            let xs = x.to_array(intervals.len())?;
            let mut out = Vec::with_capacity(xs.len());
            for i in 0..xs.len() {
                let value = ScalarValue::try_from_array(&xs, i)?;
                let interval = ScalarValue::try_from_array(intervals, i)?;
                let stepped = match (timestamp_scalar_value(&value), step_in_unit(&interval)?) {
                    (Some(v), Some(step)) => Some(floor(v, step)?),
                    _ => None,
                };
                out.push(stepped);
            }
            Ok(ColumnarValue::Array(timestamps_from_values(
                out,
                xs.data_type(),
            )?))
        }
    }
}

/// All-NULL value shaped like `x` (same type; scalar stays scalar).
fn null_like(x: &ColumnarValue) -> Result<ColumnarValue> {
    let dt = x.data_type();
    match x {
        ColumnarValue::Scalar(_) => Ok(ColumnarValue::Scalar(ScalarValue::try_from(&dt)?)),
        ColumnarValue::Array(a) => Ok(ColumnarValue::Array(
            datafusion::arrow::array::new_null_array(&dt, a.len()),
        )),
    }
}

/// The raw `i64` of a timestamp scalar of any unit.
fn timestamp_scalar_value(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _) => *v,
        _ => None,
    }
}

/// Builds a timestamp array of type `dt` (any unit, zone kept) from raw values.
fn timestamps_from_values(values: Vec<Option<i64>>, dt: &DataType) -> Result<ArrayRef> {
    let DataType::Timestamp(unit, tz) = dt else {
        return exec_err!("expected a timestamp type, got {dt}");
    };
    fn build<T: ArrowTimestampType>(values: Vec<Option<i64>>, tz: Option<Arc<str>>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .collect::<PrimitiveArray<T>>()
                .with_timezone_opt(tz),
        )
    }
    let tz = tz.clone();
    Ok(match unit {
        TimeUnit::Second => build::<TimestampSecondType>(values, tz),
        TimeUnit::Millisecond => build::<TimestampMillisecondType>(values, tz),
        TimeUnit::Microsecond => build::<TimestampMicrosecondType>(values, tz),
        TimeUnit::Nanosecond => build::<TimestampNanosecondType>(values, tz),
    })
}

/// Applies `f` to every non-NULL raw timestamp value of `x` (any unit), keeping type and zone.
pub(crate) fn map_timestamps(
    x: &ColumnarValue,
    f: impl Fn(i64) -> Result<i64>,
) -> Result<ColumnarValue> {
    fn map_array<T: ArrowTimestampType>(
        a: &ArrayRef,
        tz: Option<Arc<str>>,
        f: &impl Fn(i64) -> Result<i64>,
    ) -> Result<ArrayRef> {
        let mapped = a
            .as_primitive::<T>()
            .try_unary::<_, T, DataFusionError>(f)?
            .with_timezone_opt(tz);
        Ok(Arc::new(mapped))
    }
    let as_array = |a: &ArrayRef| -> Result<ArrayRef> {
        match a.data_type() {
            DataType::Timestamp(TimeUnit::Second, tz) => {
                map_array::<TimestampSecondType>(a, tz.clone(), &f)
            }
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                map_array::<TimestampMillisecondType>(a, tz.clone(), &f)
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                map_array::<TimestampMicrosecondType>(a, tz.clone(), &f)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
                map_array::<TimestampNanosecondType>(a, tz.clone(), &f)
            }
            other => exec_err!("expected a TIMESTAMP argument, got {other}"),
        }
    };
    match x {
        ColumnarValue::Array(a) => Ok(ColumnarValue::Array(as_array(a)?)),
        ColumnarValue::Scalar(s) => {
            let out = as_array(&s.to_array()?)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        }
    }
}

/// Integer types STEP supports: floor to a multiple with overflow checking.
trait StepInt: Copy + PartialOrd + std::fmt::Display {
    const ZERO: Self;
    fn floor_multiple(self, n: Self) -> Option<Self>;
}

macro_rules! impl_step_int {
    ($($t:ty),*) => {$(
        impl StepInt for $t {
            const ZERO: Self = 0;
            fn floor_multiple(self, n: Self) -> Option<Self> {
                self.checked_div_euclid(n)?.checked_mul(n)
            }
        }
    )*};
}
impl_step_int!(i8, i16, i32, i64, u8, u16, u32, u64);

fn step_ints<T: ArrowPrimitiveType>(x: &ArrayRef, n: &ArrayRef) -> Result<ArrayRef>
where
    T::Native: StepInt,
{
    let xs = x.as_primitive::<T>();
    let ns = n.as_primitive::<T>();
    let out = xs
        .iter()
        .zip(ns.iter())
        .map(|pair| match pair {
            (Some(x), Some(n)) => {
                if n <= T::Native::ZERO {
                    return exec_err!("STEP: the step must be positive, got {n}");
                }
                x.floor_multiple(n).map(Some).ok_or_else(|| {
                    DataFusionError::Execution(format!("STEP({x}, {n}): result out of range"))
                })
            }
            _ => Ok(None),
        })
        .collect::<Result<PrimitiveArray<T>>>()?;
    Ok(Arc::new(out))
}

fn step_floats(x: &ArrayRef, n: &ArrayRef) -> Result<ArrayRef> {
    let xs = x.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let ns = n.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let out = xs
        .iter()
        .zip(ns.iter())
        .map(|pair| match pair {
            (Some(x), Some(n)) => {
                if n.is_nan() || n <= 0.0 {
                    return exec_err!("STEP: the step must be positive, got {n}");
                }
                Ok(Some((x / n).floor() * n))
            }
            _ => Ok(None),
        })
        .collect::<Result<Float64Array>>()?;
    Ok(Arc::new(out))
}

/// A `FLOOR`/`CEIL` target unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnitKeyword {
    /// A fixed-length unit of this many milliseconds.
    Fixed(i64),
    /// A calendar unit of this many months.
    Months(u32),
}

impl TimeUnitKeyword {
    pub(crate) fn parse(func: &str, unit: &str) -> Result<Self> {
        Ok(match unit.trim().to_ascii_uppercase().as_str() {
            "MILLISECOND" => Self::Fixed(1),
            "SECOND" => Self::Fixed(1000),
            "MINUTE" => Self::Fixed(60_000),
            "HOUR" => Self::Fixed(3_600_000),
            "DAY" => Self::Fixed(MS_PER_DAY),
            "MONTH" => Self::Months(1),
            "QUARTER" => Self::Months(3),
            "YEAR" => Self::Months(12),
            _ => {
                return plan_err!(
                    "{func}: unsupported time unit '{unit}'; expected one of MILLISECOND, SECOND, MINUTE, HOUR, DAY, MONTH, QUARTER, YEAR"
                )
            }
        })
    }
}

/// `FLOOR_TO(ts, unit)` / `CEIL_TO(ts, unit)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FloorCeilTo {
    ceil: bool,
    signature: Signature,
    aliases: Vec<String>,
}

impl FloorCeilTo {
    /// `FLOOR_TO` (`ceil == false`) or `CEIL_TO` (`ceil == true`).
    pub fn new(ceil: bool) -> Self {
        let name = if ceil { "CEIL_TO" } else { "FLOOR_TO" };
        Self {
            ceil,
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias(name),
        }
    }

    fn fname(&self) -> &'static str {
        if self.ceil {
            "CEIL_TO"
        } else {
            "FLOOR_TO"
        }
    }
}

impl ScalarUDFImpl for FloorCeilTo {
    fn name(&self) -> &str {
        self.fname()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let f = self.fname();
        check_arg_count(f, arg_types, 2..=2, &format!("{f}(timestamp, 'MINUTE')"))?;
        let ts = match &arg_types[0] {
            t @ DataType::Timestamp(..) => t.clone(),
            DataType::Null => KDA_TIMESTAMP,
            other => {
                return plan_err!("{f}: argument 1 must be a TIMESTAMP, got {other}");
            }
        };
        Ok(vec![ts, coerce_string(f, "2 (unit)", &arg_types[1])?])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => plan_err!("{}: expected 2 arguments", self.fname()),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<Arc<Field>> {
        let f = self.fname();
        if let Some(Some(unit)) = args.scalar_arguments.get(1) {
            if let Some(Some(unit)) = scalar_value_str(unit) {
                TimeUnitKeyword::parse(f, unit)?;
            }
        }
        let Some(first) = args.arg_fields.first() else {
            return plan_err!("{f}: expected 2 arguments");
        };
        Ok(Arc::new(Field::new(f, first.data_type().clone(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.fname();
        let [x, unit] = take_args::<2>(f, args.args)?;
        let unit = match scalar_str(&unit) {
            Some(Some(u)) => TimeUnitKeyword::parse(f, u)?,
            Some(None) => return null_like(&x),
            None => {
                return exec_err!("{f}: the unit must be a constant string such as 'MINUTE'");
            }
        };
        let DataType::Timestamp(ts_unit, _) = x.data_type() else {
            return exec_err!("{f}: argument 1 must be a TIMESTAMP, got {}", x.data_type());
        };
        let ceil = self.ceil;
        map_timestamps(&x, |v| {
            round_timestamp(v, ts_unit, unit, ceil).ok_or_else(|| {
                DataFusionError::Execution(format!("{f}: result out of range for value {v}"))
            })
        })
    }
}

/// Floors (or ceils) a raw timestamp value in `ts_unit` to a `unit` boundary (UTC).
pub(crate) fn round_timestamp(
    v: i64,
    ts_unit: TimeUnit,
    unit: TimeUnitKeyword,
    ceil: bool,
) -> Option<i64> {
    match unit {
        TimeUnitKeyword::Fixed(ms) => {
            let size_nanos = ms.checked_mul(1_000_000)?;
            let per = unit_nanos(ts_unit);
            if size_nanos <= per {
                return Some(v);
            }
            let size = size_nanos / per;
            let floor = v.div_euclid(size).checked_mul(size)?;
            if ceil && floor != v {
                floor.checked_add(size)
            } else {
                Some(floor)
            }
        }
        TimeUnitKeyword::Months(step) => {
            let ms = to_millis(v, ts_unit)?;
            let (year, month, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
            let month0 = (month - 1) / step * step;
            let floor_days = days_from_civil(year, month0 + 1, 1);
            let floor = from_millis(floor_days.checked_mul(MS_PER_DAY)?, ts_unit)?;
            if ceil && floor != v {
                let (y, m) = normalize_year_month(year, i64::from(month0 + 1 + step));
                from_millis(days_from_civil(y, m, 1).checked_mul(MS_PER_DAY)?, ts_unit)
            } else {
                Some(floor)
            }
        }
    }
}

/// `STEP`.
pub fn step() -> ScalarUDF {
    ScalarUDF::new_from_impl(Step::default())
}

/// `FLOOR_TO`.
pub fn floor_to() -> ScalarUDF {
    ScalarUDF::new_from_impl(FloorCeilTo::new(false))
}

/// `CEIL_TO`.
pub fn ceil_to() -> ScalarUDF {
    ScalarUDF::new_from_impl(FloorCeilTo::new(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use datafusion::arrow::array::Array;
    use datafusion::arrow::array::{Int32Array, Int64Array, TimestampMillisecondArray, UInt8Array};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    fn interval_secs(s: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(0, 0, s * 1_000_000_000),
        )))
    }

    #[test]
    fn step_timestamps_epoch_aligned() {
        let t = ts_ms("2018-11-01 17:05:42.123");
        let input = Arc::new(TimestampMillisecondArray::from(vec![
            Some(t),
            None,
            Some(-1),
        ]));
        let out = invoke(
            &step(),
            vec![ColumnarValue::Array(input), interval_secs(60)],
            3,
        )
        .unwrap();
        let out = out.to_array(3).unwrap();
        let out = out.as_primitive::<TimestampMillisecondType>();
        assert_eq!(out.value(0), ts_ms("2018-11-01 17:05:00"));
        assert!(out.is_null(1));
        assert_eq!(out.value(2), -60_000); // floor, not truncation, before 1970
    }

    #[test]
    fn step_timestamp_keeps_unit_and_zone() {
        let input = ScalarValue::TimestampNanosecond(Some(1_500_000_000_123), Some("UTC".into()));
        let out = invoke_scalar(
            &step(),
            vec![ColumnarValue::Scalar(input), interval_secs(1)],
        );
        assert_eq!(
            out,
            ScalarValue::TimestampNanosecond(Some(1_500_000_000_000), Some("UTC".into()))
        );
    }

    #[test]
    fn step_timestamp_null_interval_and_errors() {
        let t = ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(5), None));
        let null_iv = ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(None));
        assert_eq!(
            invoke_scalar(&step(), vec![t.clone(), null_iv]),
            ScalarValue::TimestampMillisecond(None, None)
        );
        let err = invoke(&step(), vec![t.clone(), interval_secs(0)], 1).unwrap_err();
        assert!(
            err.to_string()
                .contains("STEP: the interval must be positive"),
            "{err}"
        );
        let month = ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(
            IntervalMonthDayNano::new(1, 0, 0),
        )));
        let err = invoke(&step(), vec![t, month], 1).unwrap_err();
        assert!(err.to_string().contains("STEP: year-month"), "{err}");
        let secs = ColumnarValue::Scalar(ScalarValue::TimestampSecond(Some(5), None));
        let half = ColumnarValue::Scalar(ScalarValue::DurationMillisecond(Some(500)));
        let err = invoke(&step(), vec![secs, half], 1).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }

    #[test]
    fn step_integers_floor() {
        let x = Arc::new(Int32Array::from(vec![
            Some(7),
            Some(10),
            Some(-7),
            Some(-10),
            None,
            Some(0),
        ]));
        let n = ColumnarValue::Scalar(ScalarValue::Int32(Some(5)));
        let out = invoke(&step(), vec![ColumnarValue::Array(x), n], 6)
            .unwrap()
            .to_array(6)
            .unwrap();
        let out = out.as_primitive::<Int32Type>();
        let got: Vec<Option<i32>> = out.iter().collect();
        assert_eq!(
            got,
            vec![Some(5), Some(10), Some(-10), Some(-10), None, Some(0)]
        );
    }

    #[test]
    fn step_integer_errors_and_nulls() {
        let x = ColumnarValue::Scalar(ScalarValue::Int64(Some(7)));
        let err = invoke(
            &step(),
            vec![
                x.clone(),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(0))),
            ],
            1,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("STEP: the step must be positive"),
            "{err}"
        );
        assert_eq!(
            invoke_scalar(
                &step(),
                vec![x, ColumnarValue::Scalar(ScalarValue::Int64(None))]
            ),
            ScalarValue::Int64(None)
        );
        let min = ColumnarValue::Scalar(ScalarValue::Int64(Some(i64::MIN)));
        let err = invoke(
            &step(),
            vec![min, ColumnarValue::Scalar(ScalarValue::Int64(Some(3)))],
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let u = Arc::new(UInt8Array::from(vec![255u8]));
        let out = invoke(
            &step(),
            vec![
                ColumnarValue::Array(u),
                ColumnarValue::Scalar(ScalarValue::UInt8(Some(10))),
            ],
            1,
        )
        .unwrap()
        .to_array(1)
        .unwrap();
        assert_eq!(out.as_primitive::<UInt8Type>().value(0), 250);
        let per_row = Arc::new(Int64Array::from(vec![Some(3), Some(4)]));
        let xs = Arc::new(Int64Array::from(vec![Some(10), Some(10)]));
        let out = invoke(
            &step(),
            vec![ColumnarValue::Array(xs), ColumnarValue::Array(per_row)],
            2,
        )
        .unwrap()
        .to_array(2)
        .unwrap();
        let got: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(got, vec![Some(9), Some(8)]);
    }

    #[test]
    fn step_floats() {
        let out = invoke_scalar(
            &step(),
            vec![
                ColumnarValue::Scalar(ScalarValue::Float64(Some(-2.5))),
                ColumnarValue::Scalar(ScalarValue::Float64(Some(2.0))),
            ],
        );
        assert_eq!(out, ScalarValue::Float64(Some(-4.0)));
    }

    #[test]
    fn step_coercion_errors_name_the_function() {
        let s = Step::default();
        let err = s
            .coerce_types(&[DataType::Utf8, DataType::Int64])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("STEP: unsupported argument types (Utf8, Int64)"),
            "{err}"
        );
        let err = s.coerce_types(&[DataType::Int64]).unwrap_err();
        assert!(
            err.to_string()
                .contains("STEP: wrong number of arguments (1)"),
            "{err}"
        );
        let err = s
            .coerce_types(&[DataType::Decimal128(10, 2), DataType::Int64])
            .unwrap_err();
        assert!(err.to_string().contains("DECIMAL"), "{err}");
        assert_eq!(
            s.coerce_types(&[DataType::Int32, DataType::Int64]).unwrap(),
            vec![DataType::Int32, DataType::Int32]
        );
        assert_eq!(
            s.coerce_types(&[DataType::Float32, DataType::Int64])
                .unwrap(),
            vec![DataType::Float64, DataType::Float64]
        );
    }

    #[test]
    fn floor_and_ceil_to_units() {
        let t = ts_ms("2018-11-03 09:59:30.250");
        let cases = [
            ("SECOND", "2018-11-03 09:59:30", "2018-11-03 09:59:31"),
            ("minute", "2018-11-03 09:59:00", "2018-11-03 10:00:00"),
            ("HOUR", "2018-11-03 09:00:00", "2018-11-03 10:00:00"),
            ("DAY", "2018-11-03 00:00:00", "2018-11-04 00:00:00"),
            ("MONTH", "2018-11-01 00:00:00", "2018-12-01 00:00:00"),
            ("QUARTER", "2018-10-01 00:00:00", "2019-01-01 00:00:00"),
            ("YEAR", "2018-01-01 00:00:00", "2019-01-01 00:00:00"),
            (
                "MILLISECOND",
                "2018-11-03 09:59:30.250",
                "2018-11-03 09:59:30.250",
            ),
        ];
        for (unit, floor, ceil) in cases {
            let args = || {
                vec![
                    ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(t), None)),
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit.to_string()))),
                ]
            };
            assert_eq!(
                invoke_scalar(&floor_to(), args()),
                ScalarValue::TimestampMillisecond(Some(ts_ms(floor)), None),
                "FLOOR {unit}"
            );
            assert_eq!(
                invoke_scalar(&ceil_to(), args()),
                ScalarValue::TimestampMillisecond(Some(ts_ms(ceil)), None),
                "CEIL {unit}"
            );
        }
    }

    #[test]
    fn ceil_on_boundary_and_negative_and_micro() {
        assert_eq!(
            round_timestamp(
                60_000,
                TimeUnit::Millisecond,
                TimeUnitKeyword::Fixed(60_000),
                true
            ),
            Some(60_000)
        );
        assert_eq!(
            round_timestamp(
                -1,
                TimeUnit::Millisecond,
                TimeUnitKeyword::Fixed(60_000),
                false
            ),
            Some(-60_000)
        );
        assert_eq!(
            round_timestamp(-1, TimeUnit::Millisecond, TimeUnitKeyword::Months(1), false),
            Some(-31 * MS_PER_DAY)
        );
        assert_eq!(
            round_timestamp(
                1_500,
                TimeUnit::Microsecond,
                TimeUnitKeyword::Fixed(1),
                true
            ),
            Some(2_000)
        );
        assert_eq!(
            round_timestamp(3, TimeUnit::Second, TimeUnitKeyword::Fixed(1), true),
            Some(3)
        );
        let jan = ts_ms("2019-01-01 00:00:00");
        assert_eq!(
            round_timestamp(
                jan,
                TimeUnit::Millisecond,
                TimeUnitKeyword::Months(12),
                true
            ),
            Some(jan)
        );
    }

    #[test]
    fn floor_to_errors() {
        let t = ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(1), None));
        let err = invoke(
            &floor_to(),
            vec![
                t.clone(),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some("WEEK".into()))),
            ],
            1,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("FLOOR_TO: unsupported time unit 'WEEK'"),
            "{err}"
        );
        let units = Arc::new(datafusion::arrow::array::StringArray::from(vec!["DAY"]));
        let err = invoke(&floor_to(), vec![t.clone(), ColumnarValue::Array(units)], 1).unwrap_err();
        assert!(err.to_string().contains("must be a constant"), "{err}");
        let err = FloorCeilTo::new(true)
            .coerce_types(&[DataType::Int64, DataType::Utf8])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("CEIL_TO: argument 1 must be a TIMESTAMP"),
            "{err}"
        );
        assert_eq!(
            invoke_scalar(
                &floor_to(),
                vec![t, ColumnarValue::Scalar(ScalarValue::Utf8(None))]
            ),
            ScalarValue::TimestampMillisecond(None, None)
        );
    }
}
