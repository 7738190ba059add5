//! Group-window functions: `tumble_start`, `tumble_end`, `stagger_start`, `stagger_end`.
//!
//! They mark a window in the GROUP BY of a streaming aggregate, in the style of Flink's legacy
//! group windows, and work over any streaming input (filters, projections, subqueries, the
//! output of another window aggregate):
//!
//! ```text
//!  SELECT tumble_end(ts, INTERVAL '1' MINUTE) AS w, k, COUNT(*)       StreamWindowAggregate
//!  FROM (SELECT ... FROM s WHERE ...)                           ──►     window=TUMBLE(60000ms)
//!  GROUP BY tumble_end(ts, INTERVAL '1' MINUTE), k                      group=[tumble_end(..), k]
//!                                                                        <input unchanged>
//! ```
//!
//! * `tumble_start(time, size)` / `tumble_end(time, size)`: epoch-aligned window bounds,
//!   `start = floor(time / size) * size`, `end = start + size`, as `TIMESTAMP(3)` (the time
//!   argument's time zone is kept); NULL when `time` is NULL. Outside a streaming GROUP BY they
//!   are ordinary scalar functions, so batch queries can use them too.
//! * `stagger_start(time, size)` / `stagger_end(time, size)`: KDA's STAGGER window
//!   (`WINDOWED BY STAGGER (PARTITION BY keys RANGE size)`); the other GROUP BY expressions are
//!   the partition keys. A stagger window depends on the rows before it, so these have no
//!   meaning as scalar functions: anywhere but the GROUP BY of a streaming aggregate they are
//!   a plan error (and an execution error if they are ever evaluated).
//!
//! `size` is an INTERVAL literal of days or smaller units. The analyzer rule in
//! [`super::logical`] recognises the calls with [`group_window_call`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::WindowKind;
use crate::time::{interval_to_millis, Millis};

/// Which window a group-window function marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupWindowFamily {
    /// `tumble_start` / `tumble_end`.
    Tumble,
    /// `stagger_start` / `stagger_end`.
    Stagger,
}

/// Which bound of the window a group-window function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowBound {
    /// The window start.
    Start,
    /// The window end (exclusive).
    End,
}

/// One of the four group-window scalar functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GroupWindowFunction {
    name: &'static str,
    family: GroupWindowFamily,
    bound: WindowBound,
    signature: Signature,
}

impl GroupWindowFunction {
    fn new(name: &'static str, family: GroupWindowFamily, bound: WindowBound) -> Self {
        Self {
            name,
            family,
            bound,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// `tumble_start(time, size)`.
    pub fn tumble_start() -> Self {
        Self::new(
            "tumble_start",
            GroupWindowFamily::Tumble,
            WindowBound::Start,
        )
    }

    /// `tumble_end(time, size)`.
    pub fn tumble_end() -> Self {
        Self::new("tumble_end", GroupWindowFamily::Tumble, WindowBound::End)
    }

    /// `stagger_start(time, size)`.
    pub fn stagger_start() -> Self {
        Self::new(
            "stagger_start",
            GroupWindowFamily::Stagger,
            WindowBound::Start,
        )
    }

    /// `stagger_end(time, size)`.
    pub fn stagger_end() -> Self {
        Self::new("stagger_end", GroupWindowFamily::Stagger, WindowBound::End)
    }

    /// All four.
    pub fn all() -> [Self; 4] {
        [
            Self::tumble_start(),
            Self::tumble_end(),
            Self::stagger_start(),
            Self::stagger_end(),
        ]
    }

    /// The window family.
    pub fn family(&self) -> GroupWindowFamily {
        self.family
    }

    /// The bound it returns.
    pub fn bound(&self) -> WindowBound {
        self.bound
    }
}

/// Registers the four group-window functions on a context.
pub fn register_group_window_functions(ctx: &SessionContext) {
    for f in GroupWindowFunction::all() {
        ctx.register_udf(ScalarUDF::new_from_impl(f));
    }
}

/// A call of a group-window function found in an expression.
#[derive(Debug, Clone, Copy)]
pub struct GroupWindowCall<'a> {
    /// The function's name.
    pub name: &'a str,
    /// Tumble or stagger.
    pub family: GroupWindowFamily,
    /// Start or end.
    pub bound: WindowBound,
    /// The arguments, `(time, size)` when well formed.
    pub args: &'a [Expr],
}

impl GroupWindowCall<'_> {
    /// The window this call describes: checks the argument count and that `size` is a positive
    /// INTERVAL literal.
    pub fn kind(&self) -> Result<WindowKind> {
        let name = self.name;
        let [_, size] = self.args else {
            return plan_err!(
                "{name}(time, size) takes 2 arguments, got {}",
                self.args.len()
            );
        };
        let size = match unalias(size) {
            Expr::Literal(v, _)
                if matches!(
                    v.data_type(),
                    DataType::Interval(_) | DataType::Duration(_)
                ) =>
            {
                interval_to_millis(v, &format!("{name}: size"))?
            }
            other => {
                return plan_err!(
                "{name}: the window size must be an INTERVAL literal such as INTERVAL '1' MINUTE, got {other}"
            )
            }
        };
        if size <= 0 {
            return plan_err!("{name}: the window size must be positive, got {size} ms");
        }
        Ok(match self.family {
            GroupWindowFamily::Tumble => WindowKind::Tumble { size, offset: 0 },
            GroupWindowFamily::Stagger => WindowKind::Stagger { size },
        })
    }

    /// The time argument.
    pub fn time(&self) -> Option<&Expr> {
        self.args.first()
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        e => e,
    }
}

/// The group-window function called at the top of `e` (aliases looked through), if any.
pub fn group_window_call(e: &Expr) -> Option<GroupWindowCall<'_>> {
    match unalias(e) {
        Expr::ScalarFunction(ScalarFunction { func, args }) => {
            let f = func.inner().downcast_ref::<GroupWindowFunction>()?;
            Some(GroupWindowCall {
                name: f.name,
                family: f.family,
                bound: f.bound,
                args,
            })
        }
        _ => None,
    }
}

/// True when `e` calls a group-window function (of `family`, or of any family) anywhere inside.
pub fn contains_group_window_call(e: &Expr, family: Option<GroupWindowFamily>) -> bool {
    e.exists(|x| {
        Ok(match x {
            Expr::ScalarFunction(ScalarFunction { func, .. }) => func
                .inner()
                .downcast_ref::<GroupWindowFunction>()
                .is_some_and(|f| family.is_none_or(|fam| fam == f.family)),
            _ => false,
        })
    })
    .unwrap_or(false)
}

impl ScalarUDFImpl for GroupWindowFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let name = self.name;
        let [time, size] = arg_types else {
            return plan_err!(
                "{name}(time, size) takes 2 arguments, got {}",
                arg_types.len()
            );
        };
        let tz = match time {
            DataType::Timestamp(_, tz) => tz.clone(),
            DataType::Null => None,
            other => {
                return plan_err!("{name}: the time argument must be a TIMESTAMP, got {other}")
            }
        };
        if !matches!(size, DataType::Interval(_) | DataType::Duration(_)) {
            return plan_err!(
                "{name}: the window size must be an INTERVAL literal such as INTERVAL '1' MINUTE, got a value of type {size}"
            );
        }
        Ok(DataType::Timestamp(TimeUnit::Millisecond, tz))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name;
        if self.family == GroupWindowFamily::Stagger {
            return exec_err!(
                "{name}: a STAGGER window is only meaningful as a GROUP BY item of an aggregate over a stream (e.g. GROUP BY {name}(rowtime, INTERVAL '1' MINUTE), key); it cannot be evaluated as a scalar function"
            );
        }
        let [time, size] = args.args.as_slice() else {
            return exec_err!(
                "{name}(time, size) takes 2 arguments, got {}",
                args.args.len()
            );
        };
        let size = match size {
            ColumnarValue::Scalar(v) => interval_to_millis(v, &format!("{name}: size"))?,
            ColumnarValue::Array(_) => {
                return exec_err!(
                    "{name}: the window size must be an INTERVAL literal, not a column"
                )
            }
        };
        if size <= 0 {
            return exec_err!("{name}: the window size must be positive, got {size} ms");
        }
        let out_type = args.return_type().clone();
        let kind = WindowKind::Tumble { size, offset: 0 };
        let bound = self.bound;
        let compute = |a: &ArrayRef| -> Result<ArrayRef> {
            let t = cast(a, &out_type)?;
            let t = t.as_primitive::<TimestampMillisecondType>();
            let out = t.unary::<_, TimestampMillisecondType>(|t: Millis| {
                let start = WindowKind::last_start(kind.size(), 0, t);
                match bound {
                    WindowBound::Start => start,
                    WindowBound::End => start.saturating_add(kind.size()),
                }
            });
            Ok(Arc::new(out.with_timezone_opt(match &out_type {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            })))
        };
        match time {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(compute(a)?)),
            ColumnarValue::Scalar(s) => {
                let a = compute(&s.to_array()?)?;
                if a.is_empty() {
                    return exec_err!("{name}: empty input");
                }
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?))
            }
        }
    }
}
