//! Aggregate functions: `KDA_AVG` (AVG with KDA's result type) and `EXP_AVG`.
//!
//! Both ignore NULL inputs, return NULL over no (non-NULL) rows, and support retraction, so
//! they work in tumbling `GROUP BY`s and in sliding `OVER (RANGE ... PRECEDING)` windows.
//!
//! * `KDA_AVG(x)` — KDA's `AVG` returns the argument's type (SPEC §2.3, §4 item 9): for an
//!   integer column the average is **truncated toward zero** in that integer type (documented
//!   outputs: 154/4 → 38, 191/4 → 47, (29+32)/2 → 30); for DECIMAL(p,s) it is truncated at scale
//!   `s` and keeps DECIMAL(p,s); REAL/DOUBLE give DOUBLE. The front end maps `AVG` to it in KDA
//!   mode. Sums are kept in 128 bits, so integer sums cannot overflow in practice.
//! * `EXP_AVG(x, ts, half_life)` — the exponentially weighted moving average. KDA's syntax is
//!   `EXP_AVG(expr, time_interval) OVER w`, where the weights decay with each row's ROWTIME age:
//!   "the prices in the most recent 10-second subwindow carry double the weight of the prices in
//!   the middle 10-second subwindow and four times the weight of the prices in the oldest",
//!   `time_interval` being the half-life. A function cannot see ROWTIME implicitly, so the
//!   front end passes it: `EXP_AVG(expr, ROWTIME, time_interval)`. Each row's weight is
//!   `2^(-(t_max - t) / half_life)`, `t_max` being the latest timestamp in the window/group (the
//!   current row in a sliding window). KDA's wording ("divides the window into intervals")
//!   could also describe a step function; the continuous decay is chosen here, which agrees
//!   with it at every whole multiple of the half-life. Rows whose `x` or `ts` is NULL are
//!   ignored. The half-life must be a positive constant day-time interval. Returns DOUBLE.
//!
//! `STDDEV_POP`, `STDDEV_SAMP`, `VAR_POP`, `VAR_SAMP` are DataFusion's own (`stddev_pop`,
//! `stddev` / `stddev_samp`, `var_pop`, `var` / `var_samp`) and match KDA; the SQL tests check
//! them against hand-computed values.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use crate::datetime::epoch_millis;
use crate::util::{interval_to_nanos, is_interval_like, lower_alias, KDA_TIMESTAMP};

/// `KDA_AVG(x)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KdaAvg {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for KdaAvg {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("KDA_AVG"),
        }
    }
}

/// The result type of `KDA_AVG` for an (already coerced) argument type.
fn kda_avg_type(arg: &DataType) -> Result<DataType> {
    match arg {
        t if t.is_integer() => Ok(t.clone()),
        DataType::Float64 => Ok(DataType::Float64),
        t @ DataType::Decimal128(..) => Ok(t.clone()),
        other => plan_err!("KDA_AVG: unsupported argument type {other}; expected a numeric type"),
    }
}

impl AggregateUDFImpl for KdaAvg {
    fn name(&self) -> &str {
        "KDA_AVG"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = arg_types else {
            return plan_err!("KDA_AVG: expected 1 argument, got {}", arg_types.len());
        };
        Ok(vec![match t {
            t if t.is_integer() => t.clone(),
            DataType::Null => DataType::Int64,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
                DataType::Decimal128(*p, *s)
            }
            other => {
                return plan_err!(
                    "KDA_AVG: unsupported argument type {other}; expected a numeric type"
                )
            }
        }])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => kda_avg_type(t),
            None => plan_err!("KDA_AVG: expected 1 argument"),
        }
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(KdaAvgAccumulator::new(
            acc_args.return_type().clone(),
        )?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let sum_type = match args.return_type() {
            DataType::Float64 => DataType::Float64,
            DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
            _ => DataType::Decimal128(38, 0),
        };
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "sum"),
                sum_type,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "count"),
                DataType::UInt64,
                true,
            )),
        ])
    }
}

/// Accumulator for [`KdaAvg`]: an exact 128-bit sum (integers, decimals) or an `f64` sum.
#[derive(Debug)]
pub struct KdaAvgAccumulator {
    output: DataType,
    sum_exact: i128,
    sum_float: f64,
    count: u64,
}

impl KdaAvgAccumulator {
    fn new(output: DataType) -> Result<Self> {
        kda_avg_type(&output)?;
        Ok(Self {
            output,
            sum_exact: 0,
            sum_float: 0.0,
            count: 0,
        })
    }

    fn is_float(&self) -> bool {
        self.output == DataType::Float64
    }

    /// Adds (`sign = 1`) or removes (`sign = -1`) a batch of input values.
    fn apply(&mut self, values: &ArrayRef, sign: i8) -> Result<()> {
        let overflow = || DataFusionError::Execution("KDA_AVG: sum overflow (128-bit)".to_string());
        macro_rules! exact {
            ($t:ty) => {{
                for v in values.as_primitive::<$t>().iter().flatten() {
                    let v = i128::from(v);
                    self.sum_exact = if sign > 0 {
                        self.sum_exact.checked_add(v)
                    } else {
                        self.sum_exact.checked_sub(v)
                    }
                    .ok_or_else(overflow)?;
                }
            }};
        }
        match values.data_type() {
            DataType::Int8 => exact!(Int8Type),
            DataType::Int16 => exact!(Int16Type),
            DataType::Int32 => exact!(Int32Type),
            DataType::Int64 => exact!(Int64Type),
            DataType::UInt8 => exact!(UInt8Type),
            DataType::UInt16 => exact!(UInt16Type),
            DataType::UInt32 => exact!(UInt32Type),
            DataType::UInt64 => exact!(UInt64Type),
            DataType::Decimal128(..) => exact!(Decimal128Type),
            DataType::Float64 => {
                for v in values.as_primitive::<Float64Type>().iter().flatten() {
                    self.sum_float += f64::from(sign) * v;
                }
            }
            DataType::Null => {}
            other => return exec_err!("KDA_AVG: unsupported input type {other}"),
        }
        let n = (values.len() - values.logical_null_count()) as u64;
        self.count = if sign > 0 {
            self.count + n
        } else {
            self.count.checked_sub(n).ok_or_else(|| {
                DataFusionError::Execution("KDA_AVG: retracted more rows than were added".into())
            })?
        };
        if self.count == 0 {
            self.sum_exact = 0;
            self.sum_float = 0.0;
        }
        Ok(())
    }
}

impl Accumulator for KdaAvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(v) => self.apply(v, 1),
            None => exec_err!("KDA_AVG: missing argument"),
        }
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(v) => self.apply(v, -1),
            None => exec_err!("KDA_AVG: missing argument"),
        }
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [sums, counts] = states else {
            return exec_err!("KDA_AVG: expected 2 state columns, got {}", states.len());
        };
        let counts = counts.as_primitive::<UInt64Type>();
        for i in 0..counts.len() {
            if counts.is_null(i) {
                continue;
            }
            self.count += counts.value(i);
            if sums.is_null(i) {
                continue;
            }
            if self.is_float() {
                self.sum_float += sums.as_primitive::<Float64Type>().value(i);
            } else {
                self.sum_exact = self
                    .sum_exact
                    .checked_add(sums.as_primitive::<Decimal128Type>().value(i))
                    .ok_or_else(|| {
                        DataFusionError::Execution("KDA_AVG: sum overflow (128-bit)".into())
                    })?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let sum = match &self.output {
            DataType::Float64 => ScalarValue::Float64(Some(self.sum_float)),
            DataType::Decimal128(_, s) => ScalarValue::Decimal128(Some(self.sum_exact), 38, *s),
            _ => ScalarValue::Decimal128(Some(self.sum_exact), 38, 0),
        };
        Ok(vec![sum, ScalarValue::UInt64(Some(self.count))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return ScalarValue::try_from(&self.output);
        }
        if self.is_float() {
            return Ok(ScalarValue::Float64(Some(
                self.sum_float / self.count as f64,
            )));
        }
        // Rust's integer division truncates toward zero, like Java's.
        let avg = self.sum_exact / i128::from(self.count);
        let out_of_range = || {
            DataFusionError::Execution(format!(
                "KDA_AVG: average {avg} does not fit {}",
                self.output
            ))
        };
        macro_rules! int {
            ($variant:ident, $t:ty) => {
                ScalarValue::$variant(Some(<$t>::try_from(avg).map_err(|_| out_of_range())?))
            };
        }
        Ok(match &self.output {
            DataType::Int8 => int!(Int8, i8),
            DataType::Int16 => int!(Int16, i16),
            DataType::Int32 => int!(Int32, i32),
            DataType::Int64 => int!(Int64, i64),
            DataType::UInt8 => int!(UInt8, u8),
            DataType::UInt16 => int!(UInt16, u16),
            DataType::UInt32 => int!(UInt32, u32),
            DataType::UInt64 => int!(UInt64, u64),
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(avg), *p, *s),
            other => return exec_err!("KDA_AVG: unsupported result type {other}"),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `EXP_AVG(x, ts, half_life)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExpAvg {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for ExpAvg {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("EXP_AVG"),
        }
    }
}

impl AggregateUDFImpl for ExpAvg {
    fn name(&self) -> &str {
        "EXP_AVG"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() == 2 {
            return plan_err!(
                "EXP_AVG: needs the row time: call EXP_AVG(expr, ROWTIME, time_interval) (the KDA front end rewrites EXP_AVG(expr, time_interval) into this form)"
            );
        }
        let [x, ts, half_life] = arg_types else {
            return plan_err!(
                "EXP_AVG: wrong number of arguments ({}); usage: EXP_AVG(expr, ROWTIME, time_interval)",
                arg_types.len()
            );
        };
        let x = if x.is_numeric() || x == &DataType::Null {
            DataType::Float64
        } else {
            return plan_err!("EXP_AVG: argument 1 (expr) must be numeric, got {x}");
        };
        let ts = match ts {
            DataType::Timestamp(..) => ts.clone(),
            DataType::Null => KDA_TIMESTAMP,
            other => {
                return plan_err!("EXP_AVG: argument 2 (row time) must be a TIMESTAMP, got {other}")
            }
        };
        let half_life = if is_interval_like(half_life) {
            half_life.clone()
        } else {
            return plan_err!(
                "EXP_AVG: argument 3 (time_interval) must be an INTERVAL, got {half_life}"
            );
        };
        Ok(vec![x, ts, half_life])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(expr) = acc_args.exprs.get(2) else {
            return exec_err!("EXP_AVG: expected 3 arguments");
        };
        let constant = match (expr.as_ref() as &dyn Any).downcast_ref::<Literal>() {
            Some(lit) => lit.value().clone(),
            None => {
                let empty = RecordBatch::new_empty(Arc::new(acc_args.schema.clone()));
                match expr.evaluate(&empty)? {
                    ColumnarValue::Scalar(s) => s,
                    ColumnarValue::Array(_) => {
                        return exec_err!(
                            "EXP_AVG: the half-life (argument 3) must be a constant interval"
                        )
                    }
                }
            }
        };
        let half_life_ms = match interval_to_nanos("EXP_AVG", &constant)? {
            Some(n) if n > 0 => n as f64 / 1e6,
            _ => {
                return exec_err!(
                    "EXP_AVG: the half-life must be a positive interval, got {constant}"
                )
            }
        };
        Ok(Box::new(ExpAvgAccumulator::new(half_life_ms)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "ref_time"),
                DataType::Int64,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "weight"),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "weighted_sum"),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "count"),
                DataType::UInt64,
                true,
            )),
        ])
    }
}

/// Accumulator for [`ExpAvg`]. Weights are kept relative to `ref_time` (the latest timestamp
/// seen), so the newest row always has weight 1 and older sums are rescaled when time advances.
#[derive(Debug)]
pub struct ExpAvgAccumulator {
    half_life_ms: f64,
    ref_time: i64,
    weight: f64,
    weighted_sum: f64,
    count: u64,
}

impl ExpAvgAccumulator {
    /// A new accumulator with the given half-life in milliseconds.
    pub fn new(half_life_ms: f64) -> Self {
        Self {
            half_life_ms,
            ref_time: 0,
            weight: 0.0,
            weighted_sum: 0.0,
            count: 0,
        }
    }

    fn decay(&self, age_ms: i64) -> f64 {
        (-(age_ms as f64) / self.half_life_ms).exp2()
    }

    /// Moves the reference time forward to `t`, rescaling the sums.
    fn advance_to(&mut self, t: i64) {
        if self.count == 0 {
            self.ref_time = t;
            self.weight = 0.0;
            self.weighted_sum = 0.0;
        } else if t > self.ref_time {
            let scale = self.decay(t - self.ref_time);
            self.weight *= scale;
            self.weighted_sum *= scale;
            self.ref_time = t;
        }
    }

    fn rows(values: &[ArrayRef]) -> Result<(&ArrayRef, Vec<Option<i64>>)> {
        let [x, ts, ..] = values else {
            return exec_err!("EXP_AVG: expected 3 arguments, got {}", values.len());
        };
        Ok((x, epoch_millis("EXP_AVG", ts)?))
    }
}

impl Accumulator for ExpAvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (x, times) = Self::rows(values)?;
        let x = x.as_primitive::<Float64Type>();
        for (v, t) in x.iter().zip(times) {
            let (Some(v), Some(t)) = (v, t) else { continue };
            self.advance_to(t);
            let w = self.decay(self.ref_time - t);
            self.weight += w;
            self.weighted_sum += w * v;
            self.count += 1;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (x, times) = Self::rows(values)?;
        let x = x.as_primitive::<Float64Type>();
        for (v, t) in x.iter().zip(times) {
            let (Some(v), Some(t)) = (v, t) else { continue };
            if self.count == 0 {
                return exec_err!("EXP_AVG: retracted more rows than were added");
            }
            let w = self.decay(self.ref_time - t);
            self.weight -= w;
            self.weighted_sum -= w * v;
            self.count -= 1;
            if self.count == 0 {
                self.weight = 0.0;
                self.weighted_sum = 0.0;
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [refs, weights, sums, counts] = states else {
            return exec_err!("EXP_AVG: expected 4 state columns, got {}", states.len());
        };
        let refs = refs.as_primitive::<Int64Type>();
        let weights = weights.as_primitive::<Float64Type>();
        let sums = sums.as_primitive::<Float64Type>();
        let counts = counts.as_primitive::<UInt64Type>();
        for i in 0..counts.len() {
            if counts.is_null(i) || counts.value(i) == 0 || refs.is_null(i) {
                continue;
            }
            let (t, mut w, mut s) = (refs.value(i), weights.value(i), sums.value(i));
            self.advance_to(t);
            if t < self.ref_time {
                let scale = self.decay(self.ref_time - t);
                w *= scale;
                s *= scale;
            }
            self.weight += w;
            self.weighted_sum += s;
            self.count += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.ref_time)),
            ScalarValue::Float64(Some(self.weight)),
            ScalarValue::Float64(Some(self.weighted_sum)),
            ScalarValue::UInt64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 || self.weight <= 0.0 {
            return Ok(ScalarValue::Float64(None));
        }
        Ok(ScalarValue::Float64(Some(self.weighted_sum / self.weight)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `KDA_AVG`.
pub fn kda_avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(KdaAvg::default())
}

/// `EXP_AVG`.
pub fn exp_avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(ExpAvg::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Decimal128Array, Float64Array, Int32Array, TimestampMillisecondArray, UInt64Array,
    };

    fn int32(v: &[Option<i32>]) -> ArrayRef {
        Arc::new(Int32Array::from(v.to_vec()))
    }

    #[test]
    fn kda_avg_truncates_integers() {
        // SPEC Example A: Denver 11-01 (29+32+50+43)/4 = 38.5 -> 38, 11-02 191/4 -> 47
        let mut acc = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        acc.update_batch(&[int32(&[Some(29), Some(32), None, Some(50), Some(43)])])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(Some(38)));
        let mut acc = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        acc.update_batch(&[int32(&[Some(39), Some(46), Some(56), Some(50)])])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(Some(47)));
        // toward zero for negatives, like Java
        let mut acc = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        acc.update_batch(&[int32(&[Some(-7), Some(0)])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(Some(-3)));
    }

    #[test]
    fn kda_avg_empty_null_and_retract() {
        let mut acc = KdaAvgAccumulator::new(DataType::Int64).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
        acc.update_batch(&[Arc::new(datafusion::arrow::array::Int64Array::from(vec![
            None, None,
        ]))])
        .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(None));
        let mut acc = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        acc.update_batch(&[int32(&[Some(29), Some(32)])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(Some(30))); // 30.5 -> 30
        acc.retract_batch(&[int32(&[Some(29)])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(Some(32)));
        acc.retract_batch(&[int32(&[Some(32)])]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int32(None));
        assert!(acc.retract_batch(&[int32(&[Some(1)])]).is_err());
    }

    #[test]
    fn kda_avg_large_ints_do_not_overflow() {
        let mut acc = KdaAvgAccumulator::new(DataType::Int64).unwrap();
        let big = Arc::new(datafusion::arrow::array::Int64Array::from(vec![
            i64::MAX,
            i64::MAX,
            i64::MAX,
        ]));
        acc.update_batch(&[big]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(Some(i64::MAX)));
    }

    #[test]
    fn kda_avg_floats_and_decimals() {
        let mut acc = KdaAvgAccumulator::new(DataType::Float64).unwrap();
        acc.update_batch(&[Arc::new(Float64Array::from(vec![1.0, 2.0]))])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(1.5)));
        let mut acc = KdaAvgAccumulator::new(DataType::Decimal128(5, 2)).unwrap();
        let d = Decimal128Array::from(vec![100, 101])
            .with_precision_and_scale(5, 2)
            .unwrap();
        acc.update_batch(&[Arc::new(d)]).unwrap();
        // (1.00 + 1.01) / 2 = 1.005 -> 1.00 at scale 2
        assert_eq!(
            acc.evaluate().unwrap(),
            ScalarValue::Decimal128(Some(100), 5, 2)
        );
    }

    #[test]
    fn kda_avg_merge_states() {
        let mut a = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        a.update_batch(&[int32(&[Some(29), Some(32)])]).unwrap();
        let state = a.state().unwrap();
        let sums = ScalarValue::iter_to_array(vec![state[0].clone()]).unwrap();
        let counts = ScalarValue::iter_to_array(vec![state[1].clone()]).unwrap();
        let mut b = KdaAvgAccumulator::new(DataType::Int32).unwrap();
        b.update_batch(&[int32(&[Some(50), Some(43)])]).unwrap();
        b.merge_batch(&[sums, counts]).unwrap();
        assert_eq!(b.evaluate().unwrap(), ScalarValue::Int32(Some(38)));
    }

    #[test]
    fn kda_avg_types_and_errors() {
        let f = KdaAvg::default();
        assert_eq!(
            f.coerce_types(&[DataType::Float32]).unwrap(),
            vec![DataType::Float64]
        );
        assert_eq!(f.return_type(&[DataType::Int16]).unwrap(), DataType::Int16);
        let err = f.coerce_types(&[DataType::Utf8]).unwrap_err().to_string();
        assert!(
            err.contains("KDA_AVG: unsupported argument type Utf8"),
            "{err}"
        );
    }

    fn exp_rows(acc: &mut ExpAvgAccumulator, rows: &[(f64, i64)], retract: bool) {
        let x: ArrayRef = Arc::new(Float64Array::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ));
        let t: ArrayRef = Arc::new(TimestampMillisecondArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        let iv: ArrayRef = Arc::new(UInt64Array::from(vec![0u64; rows.len()])); // unused 3rd arg
        if retract {
            acc.retract_batch(&[x, t, iv]).unwrap();
        } else {
            acc.update_batch(&[x, t, iv]).unwrap();
        }
    }

    fn value(acc: &mut ExpAvgAccumulator) -> f64 {
        match acc.evaluate().unwrap() {
            ScalarValue::Float64(Some(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exp_avg_halves_weight_per_half_life() {
        // KDA doc: newest 10 s subwindow has twice the weight of the middle, four times the oldest
        let mut acc = ExpAvgAccumulator::new(10_000.0);
        exp_rows(&mut acc, &[(4.0, 0), (2.0, 10_000), (1.0, 20_000)], false);
        // weights 1/4, 1/2, 1 -> (1 + 1 + 1) / 1.75
        assert!((value(&mut acc) - 3.0 / 1.75).abs() < 1e-12);
        // out-of-order arrival gives the same answer
        let mut acc2 = ExpAvgAccumulator::new(10_000.0);
        exp_rows(&mut acc2, &[(1.0, 20_000), (4.0, 0), (2.0, 10_000)], false);
        assert!((value(&mut acc2) - 3.0 / 1.75).abs() < 1e-12);
    }

    #[test]
    fn exp_avg_retract_and_merge() {
        let mut acc = ExpAvgAccumulator::new(10_000.0);
        exp_rows(&mut acc, &[(4.0, 0), (2.0, 10_000), (1.0, 20_000)], false);
        exp_rows(&mut acc, &[(4.0, 0)], true);
        // weights 1/2, 1 -> (1 + 1) / 1.5
        assert!((value(&mut acc) - 2.0 / 1.5).abs() < 1e-12);
        exp_rows(&mut acc, &[(2.0, 10_000), (1.0, 20_000)], true);
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(None));

        let mut a = ExpAvgAccumulator::new(10_000.0);
        exp_rows(&mut a, &[(4.0, 0)], false);
        let mut b = ExpAvgAccumulator::new(10_000.0);
        exp_rows(&mut b, &[(2.0, 10_000), (1.0, 20_000)], false);
        let states: Vec<ArrayRef> = a
            .state()
            .unwrap()
            .into_iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        b.merge_batch(&states).unwrap();
        assert!((value(&mut b) - 3.0 / 1.75).abs() < 1e-12);
    }

    #[test]
    fn exp_avg_ignores_nulls_and_checks_arguments() {
        let mut acc = ExpAvgAccumulator::new(1000.0);
        let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(5.0)]));
        let t: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![
            Some(0),
            Some(0),
            None,
        ]));
        acc.update_batch(&[x, t]).unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(1.0)));
        let f = ExpAvg::default();
        let err = f
            .coerce_types(&[
                DataType::Float64,
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            ])
            .unwrap_err()
            .to_string();
        assert!(err.contains("EXP_AVG: needs the row time"), "{err}");
        let err = f
            .coerce_types(&[
                DataType::Utf8,
                KDA_TIMESTAMP,
                DataType::Duration(datafusion::arrow::datatypes::TimeUnit::Second),
            ])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("EXP_AVG: argument 1 (expr) must be numeric"),
            "{err}"
        );
        let err = f
            .coerce_types(&[DataType::Int32, KDA_TIMESTAMP, DataType::Int64])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("EXP_AVG: argument 3 (time_interval) must be an INTERVAL"),
            "{err}"
        );
    }
}
