//! Functions the KDA front end rewrites into (not called by users directly).
//!
//! ```text
//!  a / b                 → a / kda_nonzero(b)        b = 0 fails the row (→ error_stream)
//!  (t1 - t2) SECOND      → kda_units(t1 - t2, 'SECOND')   whole units of a datetime difference
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `kda_nonzero(x)`: `x`, or an error when `x` is zero.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NonZero {
    signature: Signature,
}

/// The `kda_nonzero` UDF.
pub fn kda_nonzero() -> ScalarUDF {
    ScalarUDF::new_from_impl(NonZero {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

fn is_zero(v: &ScalarValue) -> bool {
    if v.is_null() {
        return false;
    }
    match ScalarValue::new_zero(&v.data_type()) {
        Ok(z) => *v == z,
        Err(_) => false,
    }
}

impl ScalarUDFImpl for NonZero {
    fn name(&self) -> &str {
        "kda_nonzero"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.into_iter().next() else {
            return exec_err!("kda_nonzero takes one argument");
        };
        match &arg {
            ColumnarValue::Scalar(v) => {
                if is_zero(v) {
                    return exec_err!("division by zero");
                }
            }
            ColumnarValue::Array(a) => {
                if a.data_type().is_numeric() {
                    for i in 0..a.len() {
                        if a.is_valid(i) && is_zero(&ScalarValue::try_from_array(a, i)?) {
                            return exec_err!("division by zero");
                        }
                    }
                }
            }
        }
        Ok(arg)
    }
}

/// `kda_units(difference, 'UNIT')`: whole `UNIT`s (rounded down) of an interval or duration.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Units {
    signature: Signature,
}

/// The `kda_units` UDF.
pub fn kda_units() -> ScalarUDF {
    ScalarUDF::new_from_impl(Units {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit.to_ascii_uppercase().as_str() {
        "MILLISECOND" => 1_000_000,
        "SECOND" => 1_000_000_000,
        "MINUTE" => 60_000_000_000,
        "HOUR" => 3_600_000_000_000,
        "DAY" => 86_400_000_000_000,
        _ => return None,
    })
}

fn nanos_of(a: &ArrayRef) -> Result<Vec<Option<i128>>> {
    let n = a.len();
    let get = |f: &dyn Fn(usize) -> i128| -> Vec<Option<i128>> {
        (0..n).map(|i| a.is_valid(i).then(|| f(i))).collect()
    };
    Ok(match a.data_type() {
        DataType::Duration(TimeUnit::Second) => {
            let p = a.as_primitive::<DurationSecondType>();
            get(&|i| p.value(i) as i128 * 1_000_000_000)
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            let p = a.as_primitive::<DurationMillisecondType>();
            get(&|i| p.value(i) as i128 * 1_000_000)
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            let p = a.as_primitive::<DurationMicrosecondType>();
            get(&|i| p.value(i) as i128 * 1_000)
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            let p = a.as_primitive::<DurationNanosecondType>();
            get(&|i| p.value(i) as i128)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let p = a.as_primitive::<IntervalMonthDayNanoType>();
            get(&|i| {
                let v = p.value(i);
                v.days as i128 * 86_400_000_000_000 + v.nanoseconds as i128
            })
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let p = a.as_primitive::<IntervalDayTimeType>();
            get(&|i| {
                let v = p.value(i);
                v.days as i128 * 86_400_000_000_000 + v.milliseconds as i128 * 1_000_000
            })
        }
        other => {
            return exec_err!(
                "(a - b) <unit>: the difference must be a datetime difference, got {other}"
            )
        }
    })
}

impl ScalarUDFImpl for Units {
    fn name(&self) -> &str {
        "kda_units"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::Duration(_) | DataType::Interval(_) | DataType::Null => Ok(DataType::Int64),
            other => plan_err!("(a - b) <unit> needs a difference of two datetimes, got a {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let unit = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(u)))) => u.clone(),
            _ => return exec_err!("kda_units: the unit must be a string literal"),
        };
        let Some(per) = unit_nanos(&unit) else {
            return exec_err!(
                "(a - b) {unit}: unknown unit; use MILLISECOND, SECOND, MINUTE, HOUR or DAY"
            );
        };
        let Some(diff) = args.args.into_iter().next() else {
            return exec_err!("kda_units takes two arguments");
        };
        let arr = diff.into_array(n)?;
        if arr.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(Arc::new(Int64Array::new_null(n))));
        }
        let out: Int64Array = nanos_of(&arr)?
            .into_iter()
            .map(|v| v.map(|x| x.div_euclid(per) as i64))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
