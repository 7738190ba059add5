//! The `StreamOver` logical node and the analyzer rule that creates it.
//!
//! ```text
//!  Projection: rowtime, city, min(temp) PARTITION BY [city] ... AS wmin     (unchanged)
//!    WindowAggr: [min(temp) PARTITION BY [city] ORDER BY [rowtime] RANGE ...]  ──►  StreamOver
//!      TableScan: weather   [StreamTable]                                          TableScan
//! ```
//!
//! DataFusion plans `agg(x) OVER (...)` as a `LogicalPlan::Window`, which sorts its whole input:
//! over a stream it could never produce a row. [`OverRule`] replaces every `Window` whose input
//! is a stream (a stream scan, or any streaming extension node such as a window aggregate or
//! another `StreamOver`: DataFusion stacks one `Window` per PARTITION BY / ORDER BY) with a
//! [`StreamOver`] node of the same output schema, after checking each window against what a
//! stream can compute (see [`super`] for the rules).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{
    plan_err, Column, DFSchema, DFSchemaRef, ExprSchema, Result, ScalarValue,
};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::{Alias, NullTreatment, WindowFunction};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore, Window, WindowFrame,
    WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

use super::FrameStart;
use crate::scan::{is_rowtime, StreamTable};
use crate::time::interval_to_millis;

/// Window functions (not aggregates) that a sliding window over a stream can compute.
pub const SUPPORTED_WINDOW_FUNCTIONS: &[&str] = &[
    "lag",
    "nth_value",
    "first_value",
    "last_value",
    "row_number",
];

/// Sliding windows over a stream (logical): the input's columns plus one column per window
/// expression, one output row per input row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamOver {
    /// The stream.
    pub input: LogicalPlan,
    /// The window expressions (`Expr::WindowFunction`), as DataFusion planned them.
    pub window_exprs: Vec<Expr>,
    /// Frame start of each window expression (every frame ends at the current row).
    pub frames: Vec<FrameStart>,
    /// The ROWTIME column of the input (`None` when the input has none; only ROWS windows over
    /// one input partition work then).
    pub time: Option<Expr>,
    /// Output schema: the input's columns and one per window expression.
    pub schema: DFSchemaRef,
}

impl PartialOrd for StreamOver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.window_exprs.partial_cmp(&other.window_exprs) {
            Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
            o => o,
        }
        .filter(|o| *o != Ordering::Equal || self == other)
    }
}

/// The window function of a window expression (under any aliases), and the alias.
pub fn window_function(e: &Expr) -> Option<(&WindowFunction, Option<&str>)> {
    let mut alias = None;
    let mut e = e;
    while let Expr::Alias(Alias { expr, name, .. }) = e {
        alias.get_or_insert(name.as_str());
        e = expr;
    }
    match e {
        Expr::WindowFunction(wf) => Some((wf, alias)),
        _ => None,
    }
}

/// The columns of `schema` that are a stream's ROWTIME (by field metadata, whatever the name).
pub fn rowtime_columns(schema: &DFSchema) -> Vec<Column> {
    schema
        .iter()
        .filter(|(_, f)| is_rowtime(f))
        .map(|(q, f)| Column::new(q.cloned(), f.name()))
        .collect()
}

fn scalar_u64(v: &ScalarValue) -> Option<u64> {
    match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) if n >= 0 => Some(n as u64),
        _ => None,
    }
}

fn is_zero(v: &ScalarValue) -> bool {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) => {
            i.months == 0 && i.days == 0 && i.nanoseconds == 0
        }
        ScalarValue::IntervalDayTime(Some(i)) => i.days == 0 && i.milliseconds == 0,
        ScalarValue::IntervalYearMonth(Some(i)) => *i == 0,
        other => scalar_u64(other) == Some(0),
    }
}

/// A frame bound as SQL-ish text (intervals as `1h`, `30s`, ...).
fn bound_text(b: &WindowFrameBound) -> String {
    let value = |v: &ScalarValue| match interval_to_millis(v, "") {
        Ok(ms)
            if !matches!(
                v,
                ScalarValue::DurationMillisecond(_) | ScalarValue::DurationSecond(_)
            ) =>
        {
            format!("INTERVAL {}", super::format_duration(ms))
        }
        _ => v.to_string(),
    };
    match b {
        WindowFrameBound::CurrentRow => "CURRENT ROW".to_string(),
        WindowFrameBound::Preceding(v) if v.is_null() => "UNBOUNDED PRECEDING".to_string(),
        WindowFrameBound::Following(v) if v.is_null() => "UNBOUNDED FOLLOWING".to_string(),
        WindowFrameBound::Preceding(v) => format!("{} PRECEDING", value(v)),
        WindowFrameBound::Following(v) => format!("{} FOLLOWING", value(v)),
    }
}

/// A frame as SQL-ish text.
fn frame_text(frame: &WindowFrame) -> String {
    format!(
        "{} BETWEEN {} AND {}",
        frame.units,
        bound_text(&frame.start_bound),
        bound_text(&frame.end_bound)
    )
}

const FRAME_HINT: &str = "a sliding window over a stream must end at CURRENT ROW: use RANGE BETWEEN INTERVAL '<n>' <unit> PRECEDING AND CURRENT ROW, ROWS BETWEEN <n> PRECEDING AND CURRENT ROW, or UNBOUNDED PRECEDING AND CURRENT ROW";

/// The frame start of a window, or a plan error naming what is not allowed.
fn frame_start(frame: &WindowFrame, label: &str, frame_ignored: bool) -> Result<FrameStart> {
    let text = frame_text(frame);
    let units = match frame.units {
        WindowFrameUnits::Rows => WindowFrameUnits::Rows,
        WindowFrameUnits::Range => WindowFrameUnits::Range,
        WindowFrameUnits::Groups => {
            return plan_err!(
                "sliding window (OVER) of {label}: GROUPS frames are not supported over a stream; {FRAME_HINT}"
            )
        }
    };
    // `OVER (PARTITION BY k)` with no ORDER BY and no frame means the whole partition in SQL
    // (ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING). LAG and ROW_NUMBER ignore the
    // frame in SQL, so for them that is "everything so far".
    let whole_partition = matches!(&frame.start_bound, WindowFrameBound::Preceding(v) if v.is_null())
        && matches!(&frame.end_bound, WindowFrameBound::Following(v) if v.is_null());
    if whole_partition && frame_ignored {
        return Ok(FrameStart::Unbounded);
    }
    match &frame.end_bound {
        WindowFrameBound::CurrentRow => {}
        WindowFrameBound::Preceding(v) if is_zero(v) => {}
        WindowFrameBound::Preceding(_) => {
            return plan_err!(
                "sliding window (OVER) of {label}: the frame {text} ends at {}, before the current row (offset and negative-size windows are not supported); {FRAME_HINT}",
                bound_text(&frame.end_bound)
            )
        }
        WindowFrameBound::Following(v) if v.is_null() => {
            let hint = if whole_partition {
                " (an OVER clause without ORDER BY and without a frame means the whole partition, which never ends on a stream)"
            } else {
                ""
            };
            return plan_err!(
                "sliding window (OVER) of {label}: the frame {text} reaches UNBOUNDED FOLLOWING, rows that have not arrived yet{hint}; {FRAME_HINT}"
            );
        }
        WindowFrameBound::Following(_) => {
            return plan_err!(
                "sliding window (OVER) of {label}: the frame {text} reaches {}, rows that have not arrived yet; {FRAME_HINT}",
                bound_text(&frame.end_bound)
            )
        }
    }
    match &frame.start_bound {
        WindowFrameBound::Preceding(v) if v.is_null() => Ok(FrameStart::Unbounded),
        WindowFrameBound::CurrentRow => Ok(match units {
            WindowFrameUnits::Rows => FrameStart::Rows(0),
            _ => FrameStart::Range(0),
        }),
        WindowFrameBound::Preceding(v) => match units {
            WindowFrameUnits::Rows => match scalar_u64(v) {
                Some(n) => Ok(FrameStart::Rows(n)),
                None => plan_err!(
                    "sliding window (OVER) of {label}: ROWS {v} PRECEDING needs a non-negative integer"
                ),
            },
            _ if is_zero(v) => Ok(FrameStart::Range(0)),
            _ => {
                let ms = interval_to_millis(
                    v,
                    &format!("sliding window (OVER) of {label}: {text}"),
                )?;
                if ms < 0 {
                    return plan_err!(
                        "sliding window (OVER) of {label}: {text}: the interval must not be negative"
                    );
                }
                Ok(FrameStart::Range(ms))
            }
        },
        WindowFrameBound::Following(_) => plan_err!(
            "sliding window (OVER) of {label}: the frame {text} starts at {}, after the current row; {FRAME_HINT}",
            bound_text(&frame.start_bound)
        ),
    }
}

/// Checks one window expression; returns its frame and the ROWTIME column its ORDER BY names.
fn check_window_expr(e: &Expr, schema: &DFSchema) -> Result<(FrameStart, Option<Column>)> {
    let Some((wf, _)) = window_function(e) else {
        return plan_err!("sliding window (OVER): expected a window function, got {e}");
    };
    let fname = wf.fun.name().to_string();
    let label = format!(
        "{fname}({})",
        wf.params
            .args
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let p = &wf.params;
    let frame_ignored = match &wf.fun {
        WindowFunctionDefinition::AggregateUDF(_) => {
            if p.distinct {
                return plan_err!(
                    "sliding window (OVER) of {label}: DISTINCT aggregates are not supported in sliding windows over a stream"
                );
            }
            if p.filter.is_some() {
                return plan_err!(
                    "sliding window (OVER) of {label}: FILTER (WHERE ...) is not supported in sliding windows over a stream; filter the rows in a subquery"
                );
            }
            false
        }
        WindowFunctionDefinition::WindowUDF(udwf) => {
            let name = udwf.name().to_ascii_lowercase();
            if name == "lead" {
                return plan_err!(
                    "sliding window (OVER): LEAD reads rows that have not arrived yet and is not supported over a stream; use LAG"
                );
            }
            if !SUPPORTED_WINDOW_FUNCTIONS.contains(&name.as_str()) {
                return plan_err!(
                    "sliding window (OVER): window function {fname} is not supported over a stream; supported are aggregate functions and {}",
                    SUPPORTED_WINDOW_FUNCTIONS
                        .iter()
                        .map(|s| s.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            matches!(name.as_str(), "lag" | "row_number")
        }
    };
    let rowtimes = rowtime_columns(schema);
    let allowed = match rowtimes.first() {
        Some(c) => format!("ORDER BY {} (ROWTIME, ascending) or no ORDER BY", c.name),
        None => "no ORDER BY (the input has no ROWTIME column)".to_string(),
    };
    let keys: Vec<_> = p
        .order_by
        .iter()
        .filter(|s| !matches!(s.expr, Expr::Literal(..)))
        .collect();
    let order = match keys.as_slice() {
        [] => None,
        [s] => {
            let rowtime = match &s.expr {
                Expr::Column(c) => schema
                    .field_from_column(c)
                    .ok()
                    .filter(|f| is_rowtime(f))
                    .map(|_| c.clone()),
                _ => None,
            };
            match rowtime {
                Some(c) if s.asc => Some(c),
                Some(c) => {
                    return plan_err!(
                        "sliding window (OVER) of {label}: ORDER BY {} DESC is not supported: rows of a stream arrive in ascending ROWTIME; use ORDER BY {} (ascending) or no ORDER BY",
                        c.name,
                        c.name
                    )
                }
                None => {
                    let what = if p.window_frame.units == WindowFrameUnits::Range {
                        "a RANGE window over a stream is ordered by ROWTIME"
                    } else {
                        "a sliding window over a stream is ordered by ROWTIME (arrival order)"
                    };
                    return plan_err!(
                        "sliding window (OVER) of {label}: ORDER BY {} is not supported: {what}; allowed: {allowed}",
                        s.expr
                    );
                }
            }
        }
        _ => {
            return plan_err!(
                "sliding window (OVER) of {label}: ORDER BY with several keys is not supported; allowed: {allowed}"
            )
        }
    };
    let frame = frame_start(&p.window_frame, &label, frame_ignored)?;
    Ok((frame, order))
}

impl StreamOver {
    /// Checks the window expressions over `input` and builds the node. `time` forces the ROWTIME
    /// column (when the node is rebuilt by an optimizer pass).
    pub fn try_new(
        input: LogicalPlan,
        window_exprs: Vec<Expr>,
        time: Option<Expr>,
    ) -> Result<Self> {
        let schema = input.schema();
        let mut frames = Vec::with_capacity(window_exprs.len());
        let mut ordered_by: Option<Column> = None;
        for e in &window_exprs {
            let (frame, order) = check_window_expr(e, schema)?;
            frames.push(frame);
            if let Some(c) = order {
                match &ordered_by {
                    Some(o) if o != &c => {
                        return plan_err!(
                            "sliding window (OVER): the windows of one SELECT are ordered by different ROWTIME columns ({o} and {c})"
                        )
                    }
                    _ => ordered_by = Some(c),
                }
            }
        }
        let time = match (time, ordered_by) {
            (Some(t), _) => Some(t),
            (None, Some(c)) => Some(Expr::Column(c)),
            (None, None) => {
                let rowtimes = rowtime_columns(schema);
                match rowtimes.as_slice() {
                    [] => None,
                    [c] => Some(Expr::Column(c.clone())),
                    several => {
                        return plan_err!(
                            "sliding window (OVER): the input has several ROWTIME columns ({}); name the one that orders the window with ORDER BY",
                            several
                                .iter()
                                .map(|c| c.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                }
            }
        };
        if time.is_none() {
            if let Some(i) = frames
                .iter()
                .position(|f| matches!(f, FrameStart::Range(_)))
            {
                let label = window_function(&window_exprs[i])
                    .map(|(wf, _)| wf.fun.name().to_string())
                    .unwrap_or_default();
                return plan_err!(
                    "sliding window (OVER) of {label}: a RANGE window needs the stream's ROWTIME column in its input; keep ROWTIME in the subquery's SELECT list"
                );
            }
        }
        let window = Window::try_new(window_exprs.clone(), Arc::new(input.clone()))?;
        Ok(Self {
            input,
            window_exprs,
            frames,
            time,
            schema: window.schema,
        })
    }
}

impl UserDefinedLogicalNodeCore for StreamOver {
    fn name(&self) -> &str {
        "StreamOver"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v = self.window_exprs.clone();
        v.extend(self.time.iter().cloned());
        v
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let exprs: Vec<String> = self
            .window_exprs
            .iter()
            .zip(&self.frames)
            .map(|(e, frame)| match window_function(e) {
                Some((wf, _)) => {
                    let p = &wf.params;
                    let join = |v: &[Expr]| {
                        v.iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let nulls = match p.null_treatment {
                        Some(NullTreatment::IgnoreNulls) => " IGNORE NULLS",
                        _ => "",
                    };
                    let mut s = format!("{}({}){nulls} [{frame}", wf.fun.name(), join(&p.args));
                    if !p.partition_by.is_empty() {
                        s.push_str(&format!(", PARTITION BY {}", join(&p.partition_by)));
                    }
                    s.push(']');
                    s
                }
                None => format!("{e} [{frame}]"),
            })
            .collect();
        write!(f, "StreamOver: {}", exprs.join(", "))?;
        if let Some(t) = &self.time {
            write!(f, ", rowtime={t}")?;
        }
        Ok(())
    }

    /// The input columns the parent needs, plus everything the window expressions and ROWTIME
    /// reference: other stream columns are pruned from the scan.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let schema = self.input.schema();
        let n = schema.fields().len();
        let mut needed: Vec<usize> = output_columns.iter().copied().filter(|&i| i < n).collect();
        for e in self.expressions() {
            for c in e.column_refs() {
                needed.push(schema.index_of_column(c).ok()?);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    fn with_exprs_and_inputs(
        &self,
        mut exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("StreamOver needs one input");
        };
        let n = self.window_exprs.len();
        if exprs.len() < n {
            return plan_err!(
                "StreamOver: expected {n} window expressions, got {}",
                exprs.len()
            );
        }
        let time = (exprs.len() > n).then(|| exprs.pop()).flatten();
        exprs.truncate(n);
        Self::try_new(input, exprs, time)
    }
}

/// True when `plan` reads a stream: a stream scan or a streaming extension node (every extension node of this crate is one).
pub fn is_streaming(plan: &LogicalPlan) -> bool {
    plan.exists(|p| {
        Ok(match p {
            LogicalPlan::TableScan(scan) => source_as_provider(&scan.source)
                .map(|provider| provider.downcast_ref::<StreamTable>().is_some())
                .unwrap_or(false),
            LogicalPlan::Extension(_) => true,
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// Analyzer rule: `Window` over a stream → [`StreamOver`].
#[derive(Debug, Default)]
pub struct OverRule;

impl AnalyzerRule for OverRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            if let LogicalPlan::Window(w) = &p {
                if is_streaming(&w.input) {
                    let node =
                        StreamOver::try_new(w.input.as_ref().clone(), w.window_expr.clone(), None)?;
                    return Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                        node: Arc::new(node),
                    })));
                }
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "stream_over"
    }
}
