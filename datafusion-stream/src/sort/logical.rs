//! The `StreamSort` logical node and the analyzer rule that creates it.
//!
//! ```text
//!  Projection: x, score                                   Projection: x, score     (unchanged)
//!    Sort: tumble_start(s.rowtime, 1s) ASC, score DESC ──►  StreamSort: ..., key=buckets of 1s
//!      Projection: x, score, s.rowtime                        Projection: x, score, s.rowtime
//!        TableScan: s   [StreamTable]                           TableScan: s
//! ```
//!
//! DataFusion plans ORDER BY as a `LogicalPlan::Sort`, which needs its whole input: over a
//! stream it would never produce a row. [`StreamSortRule`] replaces every `Sort` whose input is
//! a stream with a [`StreamSort`] of the same schema, after classifying its leading key (see
//! [`super`] for what is accepted): the key is followed down through projections, aliases,
//! filters, subquery aliases and UNION ALL (the same key in every input) to a ROWTIME column, a `tumble_start`/`tumble_end` of one, the
//! window bounds of a ROWTIME window aggregate, or a `tsort_within` call.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{plan_err, DFSchemaRef, Result};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, SortExpr, UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;

use super::{tsort_call, tsort_within_millis, SortKey, TimeBucket, TSORT_WITHIN};
use crate::over::logical::{is_streaming, StreamOver};
use crate::scan::is_rowtime;
use crate::window::functions::{group_window_call, GroupWindowFamily, WindowBound};
use crate::window::logical::{GroupItem, StreamWindowAggregate};
use crate::window::{TimeDomain, WindowKind};

/// What a streaming ORDER BY may start with (for errors).
pub const LEADING_KEY_HINT: &str = "ORDER BY on a stream needs a leading monotonic time key such as rowtime, tumble_start(rowtime, INTERVAL '1' SECOND) or tumble_end(rowtime, ...), the window_start/window_end of a ROWTIME window aggregate, or a T-sort tsort_within(ts, INTERVAL '5' SECOND)";

const LIMIT_ERROR: &str = "LIMIT on a stream applies to each value of the leading ORDER BY key (ORDER BY <time key>, ... LIMIT n: the first n rows of every bucket); it must directly follow that ORDER BY, without OFFSET";

/// A streaming ORDER BY (logical): the input's rows, sorted per bucket of the leading key or
/// T-sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamSort {
    /// The stream.
    pub input: LogicalPlan,
    /// The ORDER BY, resolved against `input`.
    pub expr: Vec<SortExpr>,
    /// What the leading key is.
    pub key: SortKey,
    /// `LIMIT n`: at most n rows per value of the leading key (top-N per window).
    pub fetch: Option<usize>,
}

impl PartialOrd for StreamSort {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.expr.partial_cmp(&other.expr) {
            Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
            o => o,
        }
        .filter(|o| *o != Ordering::Equal || self == other)
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip(&a.expr),
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        e => e,
    }
}

/// What the leading key `e` (an expression over `plan`'s output) is, if it is one of the keys
/// a stream can be sorted by.
pub fn classify_key(e: &Expr, plan: &LogicalPlan) -> Result<Option<SortKey>> {
    if let Some(args) = tsort_call(e) {
        return Ok(Some(SortKey::TSort {
            within: tsort_within_millis(args)?,
        }));
    }
    let e = strip(e);
    if let Some(call) = group_window_call(e) {
        if call.family != GroupWindowFamily::Tumble {
            return Ok(None);
        }
        let Some(time) = call.time() else {
            return Ok(None);
        };
        if classify_key(time, plan)? != Some(SortKey::Bucket(TimeBucket::ROWTIME)) {
            return Ok(None);
        }
        let WindowKind::Tumble { size, offset } = call.kind()? else {
            return Ok(None);
        };
        let shift = match call.bound {
            WindowBound::Start => 0,
            WindowBound::End => size,
        };
        return Ok(Some(SortKey::Bucket(TimeBucket {
            width: size,
            align: offset,
            shift,
        })));
    }
    match e {
        Expr::Column(c) => {
            let Ok(idx) = plan.schema().index_of_column(c) else {
                return Ok(None);
            };
            column_key(plan, idx)
        }
        _ => Ok(None),
    }
}

/// Follows column `idx` of `plan` down to where it is computed.
fn column_key(plan: &LogicalPlan, idx: usize) -> Result<Option<SortKey>> {
    if idx >= plan.schema().fields().len() {
        return Ok(None);
    }
    if is_rowtime(plan.schema().field(idx)) {
        return Ok(Some(SortKey::Bucket(TimeBucket::ROWTIME)));
    }
    match plan {
        LogicalPlan::Projection(p) => match p.expr.get(idx) {
            Some(e) => classify_key(e, &p.input),
            None => Ok(None),
        },
        LogicalPlan::SubqueryAlias(s) => column_key(&s.input, idx),
        LogicalPlan::Filter(f) => column_key(&f.input, idx),
        LogicalPlan::Union(u) => {
            // The same key in every input.
            let mut key = None;
            for input in &u.inputs {
                let k = column_key(input, idx)?;
                if k.is_none() || (key.is_some() && key != k) {
                    return Ok(None);
                }
                key = k;
            }
            Ok(key)
        }
        LogicalPlan::Extension(ext) => {
            let node = ext.node.as_any();
            if let Some(w) = node.downcast_ref::<StreamWindowAggregate>() {
                if w.domain != TimeDomain::Rowtime {
                    return Ok(None);
                }
                return Ok(match (w.group.get(idx), w.kind) {
                    (Some(GroupItem::WindowEnd), _) => Some(SortKey::Bucket(TimeBucket {
                        width: 1,
                        align: 0,
                        shift: 1,
                    })),
                    (Some(GroupItem::WindowStart), WindowKind::Tumble { size, offset }) => {
                        Some(SortKey::Bucket(TimeBucket {
                            width: size,
                            align: offset,
                            shift: 0,
                        }))
                    }
                    _ => None,
                });
            }
            if let Some(o) = node.downcast_ref::<StreamOver>() {
                return column_key(&o.input, idx);
            }
            if let Some(s) = node.downcast_ref::<StreamSort>() {
                return column_key(&s.input, idx);
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn order_text(expr: &[SortExpr]) -> String {
    expr.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn contains_tsort(e: &Expr) -> bool {
    e.exists(|x| Ok(tsort_call(x).is_some())).unwrap_or(false)
}

impl StreamSort {
    /// Checks the ORDER BY of a stream and classifies its leading key.
    pub fn try_new(input: LogicalPlan, expr: Vec<SortExpr>) -> Result<Self> {
        let Some(first) = expr.first() else {
            return plan_err!("ORDER BY on a stream needs at least one key");
        };
        let text = order_text(&expr);
        let Some(key) = classify_key(&first.expr, &input)? else {
            return plan_err!(
                "{LEADING_KEY_HINT}; ORDER BY {text} starts with {}, which is not ROWTIME-based",
                first.expr
            );
        };
        if !first.asc {
            return match key {
                SortKey::TSort { .. } => plan_err!(
                    "a T-sort ({TSORT_WITHIN}) sorts ascending; remove DESC from ORDER BY {text}"
                ),
                SortKey::Bucket(_) => plan_err!(
                    "the leading ORDER BY key of a stream ({}) must be ascending (time only moves forward); ORDER BY {text}",
                    first.expr
                ),
            };
        }
        if let Some(other) = expr[1..].iter().find(|s| contains_tsort(&s.expr)) {
            return plan_err!(
                "{TSORT_WITHIN} marks a T-sort and must be the leading ORDER BY key; found it in {other}"
            );
        }
        Ok(Self {
            input,
            expr,
            key,
            fetch: None,
        })
    }
}

impl UserDefinedLogicalNodeCore for StreamSort {
    fn name(&self) -> &str {
        "StreamSort"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        self.expr.iter().map(|s| s.expr.clone()).collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StreamSort: {}, key={}",
            order_text(&self.expr),
            self.key
        )?;
        if let Some(n) = self.fetch {
            write!(f, ", fetch_per_key={n}")?;
        }
        Ok(())
    }

    /// The columns the parent needs plus those the ORDER BY references.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let schema = self.input.schema();
        let mut needed = output_columns.to_vec();
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
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("StreamSort needs one input");
        };
        if exprs.len() != self.expr.len() {
            return plan_err!(
                "StreamSort: expected {} sort expressions, got {}",
                self.expr.len(),
                exprs.len()
            );
        }
        let expr = self
            .expr
            .iter()
            .zip(exprs)
            .map(|(s, e)| SortExpr::new(e, s.asc, s.nulls_first))
            .collect();
        // The key was classified on the original input; optimizer rewrites keep its meaning.
        Ok(Self {
            input,
            expr,
            key: self.key,
            fetch: self.fetch,
        })
    }
}

/// `LIMIT n` directly over a streaming ORDER BY: n rows per value of the leading key (the
/// top n of every window or second). OFFSET, or a LIMIT further up, is an error.
fn per_key_limit(l: &datafusion::logical_expr::Limit) -> Result<Transformed<LogicalPlan>> {
    use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
    let (Ok(SkipType::Literal(0)), Ok(FetchType::Literal(Some(n)))) =
        (l.get_skip_type(), l.get_fetch_type())
    else {
        return plan_err!("{LIMIT_ERROR}");
    };
    let LogicalPlan::Extension(e) = l.input.as_ref() else {
        return plan_err!("{LIMIT_ERROR}");
    };
    let Some(sort) = e.node.as_any().downcast_ref::<StreamSort>() else {
        return plan_err!("{LIMIT_ERROR}");
    };
    let mut sort = sort.clone();
    sort.fetch = Some(sort.fetch.map_or(n, |f| f.min(n)));
    Ok(Transformed::yes(LogicalPlan::Extension(Extension {
        node: Arc::new(sort),
    })))
}

/// True when `plan` is (under projections and aliases) a streaming ORDER BY.
fn is_stream_sort(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<StreamSort>().is_some(),
        LogicalPlan::Projection(p) => is_stream_sort(&p.input),
        LogicalPlan::SubqueryAlias(s) => is_stream_sort(&s.input),
        _ => false,
    }
}

/// Analyzer rule: `Sort` over a stream → [`StreamSort`].
#[derive(Debug, Default)]
pub struct StreamSortRule;

impl AnalyzerRule for StreamSortRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan
            .transform_up_with_subqueries(|p| match &p {
                LogicalPlan::Sort(s) if is_streaming(&s.input) => {
                    let mut node = StreamSort::try_new(s.input.as_ref().clone(), s.expr.clone())?;
                    node.fetch = s.fetch;
                    Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                        node: Arc::new(node),
                    })))
                }
                LogicalPlan::Limit(l) if is_stream_sort(&l.input) => per_key_limit(l),
                _ => Ok(Transformed::no(p)),
            })?
            .data;
        // tsort_within is only meaningful as the leading key of a streaming ORDER BY.
        let mut misplaced = None;
        plan.apply_with_subqueries(|p| {
            let exprs = match p {
                LogicalPlan::Extension(e) => match e.node.as_any().downcast_ref::<StreamSort>() {
                    Some(s) => s.expr[1..].iter().map(|s| s.expr.clone()).collect(),
                    None => p.expressions(),
                },
                LogicalPlan::Sort(s) => s.expr.iter().map(|s| s.expr.clone()).collect(),
                _ => p.expressions(),
            };
            if let Some(e) = exprs.into_iter().find(contains_tsort) {
                misplaced = Some(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if let Some(e) = misplaced {
            return plan_err!(
                "{TSORT_WITHIN}(v, within) marks a T-sort: it must be the leading ORDER BY key of a query over a stream, found in {e}"
            );
        }
        Ok(plan)
    }

    fn name(&self) -> &str {
        "stream_sort"
    }
}
