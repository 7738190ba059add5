//! The `StreamWindowAggregate` logical node and the analyzer rule that creates it.
//!
//! Two ways to write a window aggregate reach the same node:
//!
//! ```text
//!  window table function (input: a named stream)       group-window function (input: any stream plan)
//!
//!  Aggregate(group: window_start, window_end, k)        Aggregate(group: tumble_end(ts, 1 min), k)
//!    Filter(v > 0)                                        SubqueryAlias / Projection / Filter / ...
//!      TableScan tumble() [WindowedTable over t]            TableScan t | StreamWindowAggregate | ...
//!                 │                                                  │
//!                 ▼                                                  ▼
//!  StreamWindowAggregate                                StreamWindowAggregate
//!    Filter(v > 0)                                        <the aggregate's input, unchanged>
//!      TableScan tumble() [StreamTable t]
//! ```
//!
//! The rule keeps the aggregate's output schema, so everything above it is unchanged. Between
//! a window table function and the aggregate only `WHERE` (Filter), aliases and projections that
//! do not touch `window_start`/`window_end` are allowed. Group-window functions
//! ([`super::functions`]) may sit over any plan that reads a stream.
//!
//! Checks, each a plan error that says what to write instead:
//! * all group-window calls of one GROUP BY are of one window with identical arguments;
//! * the time argument is ROWTIME (a column carrying [`ROWTIME_METADATA_KEY`], which plain
//!   column projections and aliases keep), the event-time column of a stream with a declared
//!   watermark, or the window end of a window aggregate below (windows over windows);
//! * an aggregate or DISTINCT over a stream without any window is rejected (it would never
//!   emit);
//! * `stagger_start`/`stagger_end` anywhere but the GROUP BY of a streaming aggregate.
//!
//! [`ROWTIME_METADATA_KEY`]: crate::time::ROWTIME_METADATA_KEY

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{plan_err, Column, DFSchemaRef, Result};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{
    Aggregate, Expr, Extension, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;

use datafusion::arrow::datatypes::DataType;

use super::functions::{
    contains_group_window_call, group_window_call, GroupWindowCall, GroupWindowFamily, WindowBound,
};
use super::tvf::{WindowedTable, WINDOW_END, WINDOW_START};
use super::{TimeDomain, WindowKind};
use crate::scan::{is_rowtime, StreamTable};

/// One GROUP BY item of a window aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupItem {
    /// `window_start`, produced by the operator.
    WindowStart,
    /// `window_end`, produced by the operator.
    WindowEnd,
    /// Any expression over the input rows.
    Key(Expr),
}

/// A streaming window aggregate (logical).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamWindowAggregate {
    /// Rows of the stream (with filters/projections), without window columns.
    pub input: LogicalPlan,
    /// The window.
    pub kind: WindowKind,
    /// Event time or ROWTIME.
    pub domain: TimeDomain,
    /// The time column, resolved against `input`.
    pub time: Expr,
    /// SESSION partition keys, resolved against `input`.
    pub partition_keys: Vec<Expr>,
    /// GROUP BY items in the user's order.
    pub group: Vec<GroupItem>,
    /// Aggregate expressions.
    pub aggr: Vec<Expr>,
    /// Output schema: the original aggregate's.
    pub schema: DFSchemaRef,
}

impl PartialOrd for StreamWindowAggregate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // Plans are compared only for equality in practice; order by the window definition.
        self.kind.partial_cmp(&other.kind)
    }
}

impl StreamWindowAggregate {
    fn key_exprs(&self) -> impl Iterator<Item = &Expr> {
        self.group.iter().filter_map(|g| match g {
            GroupItem::Key(e) => Some(e),
            _ => None,
        })
    }
}

impl UserDefinedLogicalNodeCore for StreamWindowAggregate {
    fn name(&self) -> &str {
        "StreamWindowAggregate"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v = vec![self.time.clone()];
        v.extend(self.partition_keys.iter().cloned());
        v.extend(self.key_exprs().cloned());
        v.extend(self.aggr.iter().cloned());
        v
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let group: Vec<String> = self
            .group
            .iter()
            .enumerate()
            .map(|(i, g)| match g {
                // `window_start`/`window_end`, or the group-window function call
                GroupItem::WindowStart | GroupItem::WindowEnd => {
                    self.schema.field(i).name().to_string()
                }
                GroupItem::Key(e) => e.to_string(),
            })
            .collect();
        write!(
            f,
            "StreamWindowAggregate: window={} on {} ({:?}), group=[{}], aggr=[{}]",
            self.kind,
            self.time,
            self.domain,
            group.join(", "),
            self.aggr
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        if !self.partition_keys.is_empty() {
            write!(
                f,
                ", partition_by=[{}]",
                self.partition_keys
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        Ok(())
    }

    /// Every output column needs all of the node's expressions (a window's rows are only
    /// complete with every aggregate), so the input needs exactly the columns they reference:
    /// unused stream columns, ROWTIME included, are pruned from the scan.
    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let schema = self.input.schema();
        let mut needed: Vec<usize> = self
            .expressions()
            .iter()
            .flat_map(|e| e.column_refs())
            .map(|c| schema.index_of_column(c).ok())
            .collect::<Option<Vec<_>>>()?;
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let mut it = exprs.into_iter();
        let mut next = || {
            it.next().ok_or_else(|| {
                datafusion::common::DataFusionError::Internal(
                    "StreamWindowAggregate: too few expressions".into(),
                )
            })
        };
        let time = next()?;
        let partition_keys = (0..self.partition_keys.len())
            .map(|_| next())
            .collect::<Result<Vec<_>>>()?;
        let group = self
            .group
            .iter()
            .map(|g| match g {
                GroupItem::Key(_) => next().map(GroupItem::Key),
                other => Ok(other.clone()),
            })
            .collect::<Result<Vec<_>>>()?;
        let aggr = (0..self.aggr.len())
            .map(|_| next())
            .collect::<Result<Vec<_>>>()?;
        let Some(input) = inputs.pop() else {
            return plan_err!("StreamWindowAggregate needs one input");
        };
        Ok(Self {
            input,
            kind: self.kind,
            domain: self.domain,
            time,
            partition_keys,
            group,
            aggr,
            schema: self.schema.clone(),
        })
    }
}

/// Analyzer rule: `Aggregate` over a window table function → [`StreamWindowAggregate`].
#[derive(Debug, Default)]
pub struct WindowAggregateRule;

fn windowed_scan(plan: &LogicalPlan) -> Option<(&TableScan, WindowedTable)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let w = provider.downcast_ref::<WindowedTable>()?;
            Some((scan, w.clone()))
        }
        LogicalPlan::Filter(_) | LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            windowed_scan(plan.inputs()[0])
        }
        _ => None,
    }
}

fn mentions_window_columns(e: &Expr) -> bool {
    e.column_refs()
        .iter()
        .any(|c| c.name == WINDOW_START || c.name == WINDOW_END)
}

/// Rebuilds the chain between the aggregate and the window function over the plain stream.
fn replace_scan(plan: &LogicalPlan, w: &WindowedTable) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            if scan.projection.is_some() || !scan.filters.is_empty() {
                return plan_err!(
                    "{}: internal: the window function scan was already optimised",
                    w.kind.name()
                );
            }
            LogicalPlanBuilder::scan(
                scan.table_name.clone(),
                provider_as_source(Arc::new(w.stream.clone())),
                None,
            )?
            .build()
        }
        other => {
            let exprs = other.expressions();
            if exprs.iter().any(mentions_window_columns) {
                return plan_err!(
                    "{}: window_start and window_end can only be used in the GROUP BY and SELECT of the window aggregate, not in WHERE or a subquery under it",
                    w.kind.name()
                );
            }
            let input = replace_scan(other.inputs()[0], w)?;
            other.with_new_exprs(exprs, vec![input])
        }
    }
}

fn resolve(input: &LogicalPlan, name: &str, what: &str, fname: &str) -> Result<Expr> {
    match input.schema().qualified_field_with_unqualified_name(name) {
        Ok((q, f)) => Ok(Expr::Column(Column::new(q.cloned(), f.name()))),
        Err(_) => plan_err!(
            "{fname}: the {what} '{name}' must stay visible between the window function and its GROUP BY"
        ),
    }
}

/// Aggregate over a window table function.
fn rewrite_tvf_aggregate(agg: &Aggregate, w: WindowedTable) -> Result<LogicalPlan> {
    let fname = w.kind.name();
    let mut group = Vec::with_capacity(agg.group_expr.len());
    for e in &agg.group_expr {
        let item = match e {
            Expr::Column(c) if c.name == WINDOW_START => GroupItem::WindowStart,
            Expr::Column(c) if c.name == WINDOW_END => GroupItem::WindowEnd,
            Expr::GroupingSet(_) => {
                return plan_err!("{fname}: GROUPING SETS, CUBE and ROLLUP are not supported on window aggregates")
            }
            e if mentions_window_columns(e) => {
                return plan_err!(
                    "{fname}: GROUP BY may name window_start and window_end only as plain columns, got {e}"
                )
            }
            e => GroupItem::Key(e.clone()),
        };
        group.push(item);
    }
    if !group.contains(&GroupItem::WindowStart) || !group.contains(&GroupItem::WindowEnd) {
        return plan_err!(
            "{fname}: a window aggregate must GROUP BY both window_start and window_end (as in Flink SQL)"
        );
    }
    if let Some(e) = agg.aggr_expr.iter().find(|e| mentions_window_columns(e)) {
        return plan_err!("{fname}: aggregate {e} cannot use window_start or window_end");
    }
    let input = replace_scan(&agg.input, &w)?;
    let time = resolve(&input, &w.time_column, "time column", fname)?;
    let partition_keys = w
        .partition_keys
        .iter()
        .map(|k| resolve(&input, k, "PARTITION BY column", fname))
        .collect::<Result<Vec<_>>>()?;
    let node = StreamWindowAggregate {
        input,
        kind: w.kind,
        domain: w.domain,
        time,
        partition_keys,
        group,
        aggr: agg.aggr_expr.clone(),
        schema: agg.schema.clone(),
    };
    Ok(LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    }))
}

fn rewrite_aggregate(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let calls: Vec<(usize, GroupWindowCall)> = agg
        .group_expr
        .iter()
        .enumerate()
        .filter_map(|(i, e)| group_window_call(e).map(|c| (i, c)))
        .collect();
    if let Some(e) = agg
        .group_expr
        .iter()
        .find(|e| group_window_call(e).is_none() && contains_group_window_call(e, None))
    {
        return plan_err!(
            "GROUP BY {e}: a group-window function (tumble_start, tumble_end, stagger_start, stagger_end) must be a GROUP BY item by itself, not part of an expression"
        );
    }
    if let Some((_, w)) = windowed_scan(&agg.input) {
        if let Some((_, c)) = calls.first() {
            return plan_err!(
                "{}: cannot combine the window table function {} with the group-window function {}; use one of them",
                w.kind.name(),
                w.kind.name(),
                c.name
            );
        }
        return rewrite_tvf_aggregate(agg, w).map(Some);
    }
    let streams = stream_names(&agg.input);
    if streams.is_empty() {
        // Batch input: tumble_start/tumble_end are ordinary scalar functions.
        if let Some((_, c)) = calls
            .iter()
            .find(|(_, c)| c.family == GroupWindowFamily::Stagger)
        {
            return plan_err!(
                "{}: a STAGGER window needs a stream as input; this GROUP BY reads only tables",
                c.name
            );
        }
        return Ok(None);
    }
    if calls.is_empty() {
        return plan_err!(
            "a streaming GROUP BY needs a monotonic ROWTIME-based grouping expression: this aggregate over stream {} has no window, so it would never emit. Group by a window: GROUP BY tumble_end({}, INTERVAL '1' MINUTE), ... (or tumble_start, stagger_start, stagger_end; the time may also be an event-time column with a WATERMARK), or use FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(col), size)) GROUP BY window_start, window_end, ...",
            streams.join(", "),
            rowtime_names(&agg.input).first().map(String::as_str).unwrap_or("rowtime")
        );
    }
    rewrite_group_window_aggregate(agg, &calls).map(Some)
}

/// Aggregate whose GROUP BY contains group-window functions, over a streaming input.
fn rewrite_group_window_aggregate(
    agg: &Aggregate,
    calls: &[(usize, GroupWindowCall)],
) -> Result<LogicalPlan> {
    let (_, first) = &calls[0];
    for (_, c) in &calls[1..] {
        if c.family != first.family || c.args != first.args {
            let show = |c: &GroupWindowCall| {
                format!(
                    "{}({})",
                    c.name,
                    c.args
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return plan_err!(
                "GROUP BY has two different windows, {} and {}: all window functions of one GROUP BY must be of the same window (tumble_* or stagger_*) with identical time and size arguments",
                show(first),
                show(c)
            );
        }
    }
    let kind = first.kind()?;
    let fname = first.name;
    let Some(time) = first.time() else {
        return plan_err!("{fname}: the time argument is missing");
    };
    let domain = time_domain(&agg.input, time, fname)?;
    if let Some(e) = agg
        .aggr_expr
        .iter()
        .find(|e| contains_group_window_call(e, Some(GroupWindowFamily::Stagger)))
    {
        return plan_err!(
            "{e}: stagger_start/stagger_end can only be GROUP BY items, not aggregate arguments"
        );
    }
    let mut group = Vec::with_capacity(agg.group_expr.len());
    for (i, e) in agg.group_expr.iter().enumerate() {
        let item = match calls.iter().find(|(j, _)| *j == i) {
            Some((_, c)) => match c.bound {
                WindowBound::Start => GroupItem::WindowStart,
                WindowBound::End => GroupItem::WindowEnd,
            },
            None => {
                if let Expr::GroupingSet(_) = e {
                    return plan_err!(
                        "{fname}: GROUPING SETS, CUBE and ROLLUP are not supported on window aggregates"
                    );
                }
                GroupItem::Key(e.clone())
            }
        };
        group.push(item);
    }
    let node = StreamWindowAggregate {
        input: agg.input.as_ref().clone(),
        kind,
        domain,
        time: time.clone(),
        partition_keys: vec![],
        group,
        aggr: agg.aggr_expr.clone(),
        schema: agg.schema.clone(),
    };
    Ok(LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    }))
}

fn strip_casts(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_casts(&a.expr),
        Expr::Cast(c) => strip_casts(&c.expr),
        Expr::TryCast(c) => strip_casts(&c.expr),
        e => e,
    }
}

/// Where a column of a plan comes from, as far as time is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeOrigin {
    /// A stream's ROWTIME.
    Rowtime,
    /// A stream's declared event-time column.
    EventTime,
    /// The window end of a window aggregate on that time domain.
    WindowEnd(TimeDomain),
    /// The window start of a window aggregate.
    WindowStart,
    /// A plain column of a stream (no watermark).
    Plain,
}

fn stream_of(scan: &TableScan) -> Option<StreamTable> {
    let provider = source_as_provider(&scan.source).ok()?;
    if let Some(s) = provider.downcast_ref::<StreamTable>() {
        return Some(s.clone());
    }
    if let Some(w) = provider.downcast_ref::<WindowedTable>() {
        return Some(w.stream.clone());
    }
    provider
        .downcast_ref::<crate::join::tvf::JoinWindowTable>()
        .map(|j| j.stream.clone())
}

/// Follows column `idx` of `plan` down through renames to its origin.
fn time_origin(plan: &LogicalPlan, idx: usize) -> Option<TimeOrigin> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let stream = stream_of(scan)?;
            let field = scan.projected_schema.field(idx);
            if is_rowtime(field) {
                Some(TimeOrigin::Rowtime)
            } else if stream.event_time().map(|e| e.column.as_str()) == Some(field.name()) {
                Some(TimeOrigin::EventTime)
            } else {
                Some(TimeOrigin::Plain)
            }
        }
        LogicalPlan::Projection(p) => match strip_alias(p.expr.get(idx)?) {
            Expr::Column(c) => time_origin(&p.input, p.input.schema().index_of_column(c).ok()?),
            _ => None,
        },
        LogicalPlan::SubqueryAlias(s) => time_origin(&s.input, idx),
        LogicalPlan::Filter(f) => time_origin(&f.input, idx),
        LogicalPlan::Sort(s) => time_origin(&s.input, idx),
        LogicalPlan::Limit(l) => time_origin(&l.input, idx),
        // Through a stream-to-table (lookup) join only: its rows are the stream's rows, emitted
        // when they arrive, and its progress is the stream's, so a time column of the stream
        // side keeps its watermark. A stream-to-stream join is not traced: it may emit a row
        // with an old time after the watermark has passed it (a buffered row matched later).
        LogicalPlan::Join(j)
            if matches!(
                j.join_type,
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
            ) =>
        {
            let left = j.left.schema().fields().len();
            let (side, other, i) = if idx < left {
                (&j.left, &j.right, idx)
            } else {
                (&j.right, &j.left, idx - left)
            };
            if crate::join::logical::is_streaming(other) {
                return None;
            }
            time_origin(side, i)
        }
        LogicalPlan::Extension(e) => {
            let w = e.node.as_any().downcast_ref::<StreamWindowAggregate>()?;
            match w.group.get(idx)? {
                GroupItem::WindowEnd => Some(TimeOrigin::WindowEnd(w.domain)),
                GroupItem::WindowStart => Some(TimeOrigin::WindowStart),
                GroupItem::Key(_) => None,
            }
        }
        _ => None,
    }
}

fn strip_alias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_alias(&a.expr),
        e => e,
    }
}

/// The time domain of a group window's time argument, or a plan error saying what is allowed.
fn time_domain(input: &LogicalPlan, time: &Expr, fname: &str) -> Result<TimeDomain> {
    let rowtime = rowtime_names(input)
        .first()
        .cloned()
        .unwrap_or_else(|| "rowtime".to_string());
    let allowed = format!(
        "the time of a streaming window must be the stream's ROWTIME column ({rowtime}), an event-time column declared with WATERMARK FOR col AS col - INTERVAL '<n>' <unit> in CREATE STREAM, or the window end (tumble_end/stagger_end/window_end) of a window aggregate below"
    );
    let Expr::Column(c) = strip_casts(time) else {
        return plan_err!("{fname}({time}, ...): the time argument must be a column; {allowed}");
    };
    let schema = input.schema();
    let idx = schema.index_of_column(c)?;
    let field = schema.field(idx);
    if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
        return plan_err!(
            "{fname}: the time column '{}' must be a TIMESTAMP, but it is {}",
            c.name,
            field.data_type()
        );
    }
    if is_rowtime(field) {
        return Ok(TimeDomain::Rowtime);
    }
    match time_origin(input, idx) {
        Some(TimeOrigin::Rowtime) => Ok(TimeDomain::Rowtime),
        Some(TimeOrigin::EventTime) => Ok(TimeDomain::EventTime),
        Some(TimeOrigin::WindowEnd(d)) => Ok(d),
        Some(TimeOrigin::WindowStart) => plan_err!(
            "{fname}: the time column '{}' is the window start of a window aggregate below; windows that are closed do not bound later window starts, so window over its window end instead (tumble_end/stagger_end/window_end)",
            c.name
        ),
        Some(TimeOrigin::Plain) | None => plan_err!(
            "{fname}: the time column '{}' is neither ROWTIME nor an event-time column with a watermark; {allowed}",
            c.name
        ),
    }
}

/// Names of the streams read by `plan` (empty for a batch plan).
fn stream_names(plan: &LogicalPlan) -> Vec<String> {
    let mut names = Vec::new();
    let _ = plan.apply(|p| {
        if let LogicalPlan::TableScan(scan) = p {
            if let Some(s) = stream_of(scan) {
                names.push(s.name().to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names.sort();
    names.dedup();
    names
}

/// Names of the ROWTIME columns of the streams read by `plan`.
fn rowtime_names(plan: &LogicalPlan) -> Vec<String> {
    let mut names = Vec::new();
    let _ = plan.apply(|p| {
        if let LogicalPlan::TableScan(scan) = p {
            if let Some(s) = stream_of(scan) {
                names.push(s.rowtime_column().to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names.dedup();
    names
}

/// Rejects a `stagger_*` call left anywhere in the plan once the window aggregates are built.
fn check_no_stagger_left(plan: &LogicalPlan) -> Result<()> {
    plan.apply_with_subqueries(|p| {
        if let Some(e) = p
            .expressions()
            .iter()
            .find(|e| contains_group_window_call(e, Some(GroupWindowFamily::Stagger)))
        {
            return plan_err!(
                "{e}: stagger_start/stagger_end define a STAGGER window and can only be used as GROUP BY items of an aggregate over a stream (and, through that GROUP BY, in its SELECT and HAVING)"
            );
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map(|_| ())
}

impl AnalyzerRule for WindowAggregateRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan
            .transform_up_with_subqueries(|p| {
                match &p {
                    LogicalPlan::Aggregate(agg) => {
                        if let Some(new) = rewrite_aggregate(agg)? {
                            return Ok(Transformed::yes(new));
                        }
                    }
                    LogicalPlan::Distinct(d) => {
                        let streams = stream_names(d.input());
                        if !streams.is_empty() {
                            return plan_err!(
                                "SELECT DISTINCT over stream {} would never emit: a streaming GROUP BY needs a monotonic ROWTIME-based grouping expression; group by a window instead, e.g. GROUP BY tumble_end(rowtime, INTERVAL '1' MINUTE), <columns>",
                                streams.join(", ")
                            );
                        }
                    }
                    _ => {}
                }
                Ok(Transformed::no(p))
            })?
            .data;
        check_no_stagger_left(&plan)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "stream_window_aggregate"
    }
}

#[cfg(test)]
mod tests {
    use crate::scan::is_rowtime;
    use crate::StreamContext;

    #[tokio::test]
    async fn rowtime_marker_survives_column_projections_and_aliases() {
        let ctx = StreamContext::new();
        ctx.sql("CREATE STREAM r (k VARCHAR, v INT) WITH ('connector' = 'replay')")
            .await
            .unwrap();
        let df = ctx
            .sql("SELECT t, k FROM (SELECT rowtime AS t, k, v FROM r WHERE v > 1) AS x")
            .await
            .unwrap();
        assert!(is_rowtime(df.schema().field(0)));
        assert!(!is_rowtime(df.schema().field(1)));
        // an expression over ROWTIME is not ROWTIME
        let df = ctx
            .sql("SELECT rowtime + INTERVAL '1' SECOND AS t FROM r")
            .await
            .unwrap();
        assert!(!is_rowtime(df.schema().field(0)));
    }
}
