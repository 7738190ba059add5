//! Streaming ORDER BY: sort a stream bucket by bucket of a monotonic time key, or T-sort it by a
//! timestamp over a sliding buffer (KDA / SQLstream semantics, `SPEC.md` §1.3, §2.2 and the
//! ORDER BY rules of Example R).
//!
//! ```text
//!  SQL:  SELECT ... FROM s ORDER BY tumble_start(rowtime, INTERVAL '1' SECOND), score DESC
//!        SELECT ... FROM s ORDER BY rowtime, ticker
//!        SELECT ts AS rowtime, ... FROM s ORDER BY tsort_within(ts, INTERVAL '5' SECOND), id
//!
//!  logical.rs  analyzer rule: Sort over a stream ──► StreamSort node (classifies the leading
//!              key, rejects anything else, and LIMIT)
//!  planner.rs  extension planner: StreamSort ──► StreamSortExec (fuses the filters and
//!              projections under it into a Pipeline)
//!  exec.rs     StreamSortExec (a MessageExec, one output partition):
//!
//!   input p0 ─┐                      ┌──────────── buffer (state) ─────────────────────┐
//!   input p1 ─┼─► pipeline ─► key ──►│ rows + per row: bucket start s (or T-sort value v)│
//!   input pN ─┘   (MergedInputs)     │ arrival order; event-time progress at arrival    │
//!                                    └──────────────────────────────────────────────────┘
//!     Progress P (buckets) / the largest v seen (T-sort)  │ release rows whose key <= threshold
//!                                                         ▼
//!                     lexsort by the whole ORDER BY (ties: arrival order) ─► one batch
//!                     then Progress (what the still-buffered rows allow)
//! ```
//!
//! **Bucket sort** (the leading key is time-based and monotonic): rows are buffered per bucket
//! of the leading key; once the ROWTIME progress guarantees a bucket is complete, its rows are
//! emitted sorted by the whole ORDER BY. Leading keys (ascending only):
//!
//! | leading key                                  | bucket              | complete when `P >=` |
//! |----------------------------------------------|---------------------|----------------------|
//! | a ROWTIME column (field metadata)            | one millisecond     | `rowtime`            |
//! | `tumble_start(rowtime, w)` / `tumble_end(..)`| `[start, start + w)`| `start + w - 1`      |
//! | `window_end` of a ROWTIME window aggregate   | one window end `e`  | `e - 1`              |
//! | `window_start` of a ROWTIME TUMBLE aggregate | `[start, start + w)`| `start + w - 1`      |
//!
//! Columns are followed through projections and aliases, so `ORDER BY sec, ...` with
//! `tumble_start(rowtime, ...) AS sec` in the select list works. Rows keep their values. After
//! releasing, the operator sends `Progress.rowtime = start of the first incomplete bucket - 1`
//! (no later output row has a ROWTIME, bucket start or bucket end at or before it) and an
//! event-time progress held back to what was known when the oldest buffered row arrived.
//! A row whose bucket was already emitted (only possible when the key is not really bounded by
//! ROWTIME) goes to the error sink as `Late_Row`.
//!
//! **T-sort** (`ORDER BY tsort_within(v, INTERVAL 'n' unit) [, keys]`, KDA's
//! `ORDER BY v WITHIN INTERVAL ...`): reorders a stream by a timestamp `v` over a sliding
//! buffer of width `n`. The buffer slides with the data (KDA: "incoming rowtime bounds are
//! ignored"): with `M` the largest `v` accepted so far, rows with `v <= M - n` are released in
//! `(v, remaining keys, arrival)` order. A row with `v` below the last released value is too
//! late: it goes to the error sink (`StreamRuntime::errors`, an `ErrorRecord` named
//! `Late_Row`; the default sink fails the query, a KDA application writes `error_stream`) and is
//! dropped. Rows whose `v` is NULL are discarded (counted in `null_time_rows`). At the end of
//! the input everything is released. The output is a re-timed stream: it is ordered by `v`,
//! every ROWTIME column (field metadata) of the output carries `v`, and `Progress.rowtime`
//! speaks about `v` (the last released value - 1), so the query should select `v` as its
//! ROWTIME (KDA requires `v AS ROWTIME` in the select list).
//!
//! Rejected at planning: a leading key that is not one of the above ("ORDER BY on a stream
//! needs a leading monotonic time key ..."), a descending leading key, `tsort_within` anywhere
//! but as the leading ORDER BY key of a streaming query, and LIMIT (a stream never ends, so
//! its first `n` rows by a sort are never known).
//!
//! State: the buffered rows (Arrow batches), tracked by a `MemoryReservation`. Metrics:
//! `input_rows`, `output_rows`, `late_rows`, `null_time_rows`, `buffered_rows`.

pub mod exec;
pub mod logical;
pub mod planner;

use std::fmt;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::over::format_duration;
use crate::time::{interval_to_millis, Millis};

/// The name of the T-sort marker function.
pub const TSORT_WITHIN: &str = "tsort_within";

/// How the leading ORDER BY key of a stream cuts it into parts that can be sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum SortKey {
    /// Buckets of a monotonic ROWTIME-based key.
    Bucket(TimeBucket),
    /// T-sort: reorder by the key's value over a sliding buffer of `within` milliseconds.
    TSort {
        /// Width of the buffer.
        within: Millis,
    },
}

/// Buckets of a leading key `k`: the bucket starts at `k - shift`, is `width` wide (bucket
/// starts are `align` modulo `width`), and is complete once ROWTIME progress reaches
/// `start + width - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub struct TimeBucket {
    /// Bucket width in milliseconds (1 for ROWTIME itself).
    pub width: Millis,
    /// Alignment of bucket starts.
    pub align: Millis,
    /// `start = key - shift` (0 for ROWTIME and window starts, `width` for `tumble_end`, 1 for
    /// the window end of an aggregate).
    pub shift: Millis,
}

impl TimeBucket {
    /// ROWTIME itself: one bucket per millisecond.
    pub const ROWTIME: TimeBucket = TimeBucket {
        width: 1,
        align: 0,
        shift: 0,
    };

    /// Start of the bucket of key value `k`.
    pub fn start(&self, k: Millis) -> Millis {
        k.saturating_sub(self.shift)
    }

    /// Buckets with a start at or before this are complete at ROWTIME progress `p`.
    pub fn complete_through(&self, p: Millis) -> Millis {
        if p == Millis::MAX {
            return Millis::MAX;
        }
        p.saturating_sub(self.width - 1)
    }

    /// The ROWTIME progress to pass on at input progress `p`: the start of the first bucket
    /// that is not complete, minus one (never above `p`).
    pub fn output_progress(&self, p: Millis) -> Millis {
        if p == Millis::MAX || p == Millis::MIN {
            return p;
        }
        let t = p.saturating_add(1);
        let shifted = t.saturating_sub(self.align);
        let start = shifted
            .saturating_sub(shifted.rem_euclid(self.width))
            .saturating_add(self.align);
        start.saturating_sub(1).min(p)
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SortKey::Bucket(b) if b.width == 1 => write!(f, "buckets of 1ms"),
            SortKey::Bucket(b) => write!(f, "buckets of {}", format_duration(b.width)),
            SortKey::TSort { within } => write!(f, "T-sort within {}", format_duration(*within)),
        }
    }
}

/// `tsort_within(v, within)`: marks the leading ORDER BY key of a streaming query as a T-sort
/// of `v` over `within`. As a scalar function it returns `v` (as `TIMESTAMP(3)`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TsortWithin {
    signature: Signature,
}

impl Default for TsortWithin {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// Registers `tsort_within`.
pub fn register_sort_functions(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(TsortWithin::default()));
}

/// If `e` (aliases looked through) calls `tsort_within`, its arguments.
pub fn tsort_call(e: &Expr) -> Option<&[Expr]> {
    let mut e = e;
    while let Expr::Alias(a) = e {
        e = &a.expr;
    }
    match e {
        Expr::ScalarFunction(ScalarFunction { func, args })
            if func.inner().downcast_ref::<TsortWithin>().is_some() =>
        {
            Some(args)
        }
        _ => None,
    }
}

/// The buffer width of a `tsort_within(v, within)` call.
pub fn tsort_within_millis(args: &[Expr]) -> Result<Millis> {
    let [_, within] = args else {
        return plan_err!(
            "{TSORT_WITHIN}(v, within) takes 2 arguments, got {}",
            args.len()
        );
    };
    let mut w = within;
    while let Expr::Alias(a) = w {
        w = &a.expr;
    }
    let ms = match w {
        Expr::Literal(v, _)
            if matches!(
                v.data_type(),
                DataType::Interval(_) | DataType::Duration(_)
            ) =>
        {
            interval_to_millis(v, &format!("{TSORT_WITHIN}: within"))?
        }
        other => {
            return plan_err!(
                "{TSORT_WITHIN}: the buffer width must be an INTERVAL literal such as INTERVAL '5' SECOND, got {other}"
            )
        }
    };
    if ms <= 0 {
        return plan_err!("{TSORT_WITHIN}: the buffer width must be positive, got {ms} ms");
    }
    Ok(ms)
}

impl ScalarUDFImpl for TsortWithin {
    fn name(&self) -> &str {
        TSORT_WITHIN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let [v, within] = arg_types else {
            return plan_err!(
                "{TSORT_WITHIN}(v, within) takes 2 arguments, got {}",
                arg_types.len()
            );
        };
        let tz = match v {
            DataType::Timestamp(_, tz) => tz.clone(),
            DataType::Null => None,
            other => {
                return plan_err!(
                    "{TSORT_WITHIN}: the sorted value must be a TIMESTAMP, got {other}"
                )
            }
        };
        if !matches!(within, DataType::Interval(_) | DataType::Duration(_)) {
            return plan_err!(
                "{TSORT_WITHIN}: the buffer width must be an INTERVAL literal such as INTERVAL '5' SECOND, got a value of type {within}"
            );
        }
        Ok(DataType::Timestamp(TimeUnit::Millisecond, tz))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(v) = args.args.first() else {
            return exec_err!("{TSORT_WITHIN}(v, within) takes 2 arguments");
        };
        let out = args.return_type().clone();
        Ok(match v {
            ColumnarValue::Array(a) => ColumnarValue::Array(cast(a, &out)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s.cast_to(&out)?),
        })
    }
}

/// Shared by the logical node and the exec for display.
pub(crate) fn join_display<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_progress() {
        let sec = TimeBucket {
            width: 1000,
            align: 0,
            shift: 0,
        };
        // bucket [1000, 2000) is complete at 1999
        assert_eq!(sec.complete_through(1999), 1000);
        assert_eq!(sec.complete_through(1998), 999);
        // at 1500 the first incomplete bucket starts at 1000
        assert_eq!(sec.output_progress(1500), 999);
        assert_eq!(sec.output_progress(1999), 1999);
        assert_eq!(sec.output_progress(Millis::MIN), Millis::MIN);
        assert_eq!(sec.output_progress(Millis::MAX), Millis::MAX);
        assert_eq!(TimeBucket::ROWTIME.output_progress(1234), 1234);
        assert_eq!(TimeBucket::ROWTIME.complete_through(1234), 1234);
        let end = TimeBucket {
            width: 1000,
            align: 0,
            shift: 1000,
        };
        assert_eq!(end.start(2000), 1000);
    }
}
