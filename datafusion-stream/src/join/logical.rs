//! The `StreamJoin` and `StreamLookupJoin` logical nodes and the analyzer rule that creates them.
//!
//! ```text
//!  Join(o.orderid = s.orderid)                          StreamJoin(on: o.orderid = s.orderid,
//!    SubqueryAlias o                               ──►             o: RANGE 60000 ms, s: none)
//!      TableScan stream_range() [JoinWindowTable]         SubqueryAlias o
//!    SubqueryAlias s                                        TableScan [StreamTable orders]
//!      TableScan shipments [StreamTable]                  SubqueryAlias s
//!                                                           TableScan [StreamTable shipments]
//!
//!  Join(t.k = r.k)   stream ⋈ bounded table        ──►  StreamLookupJoin(stream: left)
//! ```
//!
//! The rule keeps DataFusion's join schema (left columns, then right columns), so everything
//! above the join is unchanged. The `ON` clause is split here into equality keys (one side's
//! columns `=` the other side's) and a residual filter: the analyzer runs before DataFusion's
//! optimizer would do that split.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{
    internal_err, plan_err, Column, DFSchemaRef, JoinType, NullEquality, Result,
};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Extension, Join, LogicalPlan, Operator, TableScanBuilder,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;

use super::tvf::JoinWindowTable;
use super::JoinWindow;
use crate::scan::{is_rowtime, StreamTable};
use crate::window::logical::StreamWindowAggregate;
use crate::window::tvf::WindowedTable;

/// Which input of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum Side {
    /// The left input.
    Left,
    /// The right input.
    Right,
}

impl Side {
    /// `"left"` / `"right"`.
    pub fn name(&self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// A stream-to-stream join with KDA window semantics (logical). See [`super`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamJoin {
    /// Left input (a stream with filters and projections).
    pub left: LogicalPlan,
    /// Right input.
    pub right: LogicalPlan,
    /// Equality keys: (left expression, right expression).
    pub on: Vec<(Expr, Expr)>,
    /// The rest of the `ON` condition, over the join schema.
    pub filter: Option<Expr>,
    /// INNER, LEFT, RIGHT or FULL.
    pub join_type: JoinType,
    /// Whether NULL keys match each other (`IS NOT DISTINCT FROM`).
    pub null_equality: NullEquality,
    /// The window kept on the left side.
    pub left_window: Option<JoinWindow>,
    /// The window kept on the right side.
    pub right_window: Option<JoinWindow>,
    /// The left ROWTIME column.
    pub left_rowtime: Expr,
    /// The right ROWTIME column.
    pub right_rowtime: Expr,
    /// DataFusion's join schema.
    pub schema: DFSchemaRef,
}

/// A stream joined with a bounded table, loaded once when the query starts (logical).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamLookupJoin {
    /// Left input.
    pub left: LogicalPlan,
    /// Right input.
    pub right: LogicalPlan,
    /// Which input is the stream; the other one is the table.
    pub stream_side: Side,
    /// Equality keys: (left expression, right expression).
    pub on: Vec<(Expr, Expr)>,
    /// The rest of the `ON` condition, over the join schema.
    pub filter: Option<Expr>,
    /// INNER, or the outer join that preserves the stream.
    pub join_type: JoinType,
    /// Whether NULL keys match each other.
    pub null_equality: NullEquality,
    /// DataFusion's join schema.
    pub schema: DFSchemaRef,
}

impl PartialOrd for StreamJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // Plans are only compared for equality in practice.
        (self == other).then_some(Ordering::Equal)
    }
}

impl PartialOrd for StreamLookupJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self == other).then_some(Ordering::Equal)
    }
}

fn fmt_on(on: &[(Expr, Expr)]) -> String {
    on.iter()
        .map(|(l, r)| format!("{l} = {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_window(w: &Option<JoinWindow>) -> String {
    match w {
        Some(w) => w.to_string(),
        None => "none".to_string(),
    }
}

/// Equality keys, other expressions, filter.
type OnParts = (Vec<(Expr, Expr)>, Vec<Expr>, Option<Expr>);

/// Splits `exprs` back into (on pairs, filter) after `n` pairs and `extra` leading expressions.
fn rebuild_on(
    exprs: Vec<Expr>,
    pairs: usize,
    extra: usize,
    has_filter: bool,
    node: &str,
) -> Result<OnParts> {
    if exprs.len() != pairs * 2 + extra + usize::from(has_filter) {
        return internal_err!("{node}: unexpected number of expressions");
    }
    let mut it = exprs.into_iter();
    let mut on = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        if let (Some(l), Some(r)) = (it.next(), it.next()) {
            on.push((l, r));
        }
    }
    let extras: Vec<Expr> = it.by_ref().take(extra).collect();
    let filter = if has_filter { it.next() } else { None };
    Ok((on, extras, filter))
}

fn two_inputs(mut inputs: Vec<LogicalPlan>, node: &str) -> Result<(LogicalPlan, LogicalPlan)> {
    if inputs.len() != 2 {
        return internal_err!("{node} takes two inputs, got {}", inputs.len());
    }
    let right = inputs.pop();
    let left = inputs.pop();
    match (left, right) {
        (Some(l), Some(r)) => Ok((l, r)),
        _ => internal_err!("{node} takes two inputs"),
    }
}

impl UserDefinedLogicalNodeCore for StreamJoin {
    fn name(&self) -> &str {
        "StreamJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v: Vec<Expr> = self
            .on
            .iter()
            .flat_map(|(l, r)| [l.clone(), r.clone()])
            .collect();
        v.push(self.left_rowtime.clone());
        v.push(self.right_rowtime.clone());
        v.extend(self.filter.iter().cloned());
        v
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StreamJoin: type={}, on=[{}], left window={}, right window={}",
            self.join_type,
            fmt_on(&self.on),
            fmt_window(&self.left_window),
            fmt_window(&self.right_window)
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter={filter}")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let (on, extras, filter) =
            rebuild_on(exprs, self.on.len(), 2, self.filter.is_some(), "StreamJoin")?;
        let [left_rowtime, right_rowtime]: [Expr; 2] = match extras.try_into() {
            Ok(a) => a,
            Err(_) => return internal_err!("StreamJoin: ROWTIME expressions missing"),
        };
        let (left, right) = two_inputs(inputs, "StreamJoin")?;
        Ok(Self {
            left,
            right,
            on,
            filter,
            left_rowtime,
            right_rowtime,
            schema: Arc::clone(&self.schema),
            ..self.clone()
        })
    }
}

impl UserDefinedLogicalNodeCore for StreamLookupJoin {
    fn name(&self) -> &str {
        "StreamLookupJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        let mut v: Vec<Expr> = self
            .on
            .iter()
            .flat_map(|(l, r)| [l.clone(), r.clone()])
            .collect();
        v.extend(self.filter.iter().cloned());
        v
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StreamLookupJoin: type={}, on=[{}], stream={}",
            self.join_type,
            fmt_on(&self.on),
            self.stream_side.name()
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter={filter}")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let (on, _, filter) = rebuild_on(
            exprs,
            self.on.len(),
            0,
            self.filter.is_some(),
            "StreamLookupJoin",
        )?;
        let (left, right) = two_inputs(inputs, "StreamLookupJoin")?;
        Ok(Self {
            left,
            right,
            on,
            filter,
            schema: Arc::clone(&self.schema),
            ..self.clone()
        })
    }
}

/// Analyzer rule: a `Join` with a streaming input → [`StreamJoin`] or [`StreamLookupJoin`].
#[derive(Debug, Default)]
pub struct StreamJoinRule;

impl AnalyzerRule for StreamJoinRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            if let LogicalPlan::Join(join) = &p {
                if let Some(new) = rewrite_join(join)? {
                    return Ok(Transformed::yes(new));
                }
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "stream_join"
    }
}

/// True when the plan reads a stream (directly or through a streaming operator).
pub fn is_streaming(plan: &LogicalPlan) -> bool {
    plan.exists(|p| {
        Ok(match p {
            LogicalPlan::TableScan(scan) => match source_as_provider(&scan.source) {
                Ok(provider) => {
                    provider.is::<StreamTable>()
                        || provider.is::<JoinWindowTable>()
                        || provider.is::<WindowedTable>()
                }
                Err(_) => false,
            },
            LogicalPlan::Extension(e) => {
                let node = e.node.as_any();
                node.is::<StreamJoin>()
                    || node.is::<StreamLookupJoin>()
                    || node.is::<StreamWindowAggregate>()
            }
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// Finds a join-window table function under aliases, filters and projections, and returns the
/// plan with the plain stream scanned in its place.
fn take_window(plan: &LogicalPlan) -> Result<(LogicalPlan, Option<JoinWindowTable>)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let Ok(provider) = source_as_provider(&scan.source) else {
                return Ok((plan.clone(), None));
            };
            let Some(w) = provider.downcast_ref::<JoinWindowTable>() else {
                return Ok((plan.clone(), None));
            };
            let new = TableScanBuilder::new(
                scan.table_name.clone(),
                provider_as_source(Arc::new(w.stream.clone())),
            )
            .with_projection(scan.projection.clone())
            .with_filters(scan.filters.clone())
            .with_fetch(scan.fetch)
            .build()?;
            Ok((LogicalPlan::TableScan(new), Some(w.clone())))
        }
        LogicalPlan::Filter(_) | LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            let (input, w) = take_window(plan.inputs()[0])?;
            if w.is_none() {
                return Ok((plan.clone(), None));
            }
            let new = plan.with_new_exprs(plan.expressions(), vec![input])?;
            Ok((new, w))
        }
        _ => Ok((plan.clone(), None)),
    }
}

/// A short name for a join input in messages: its alias or table name.
fn input_name(plan: &LogicalPlan) -> String {
    match plan {
        LogicalPlan::SubqueryAlias(a) => a.alias.to_string(),
        LogicalPlan::TableScan(s) => s.table_name.to_string(),
        LogicalPlan::Filter(_) | LogicalPlan::Projection(_) => input_name(plan.inputs()[0]),
        other => other.display().to_string(),
    }
}

/// The ROWTIME column of a stream join input.
fn rowtime_of(plan: &LogicalPlan, side: Side) -> Result<Expr> {
    let schema = plan.schema();
    let found: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| is_rowtime(schema.field(i)))
        .collect();
    match found.as_slice() {
        [i] => {
            let (q, f) = schema.qualified_field(*i);
            Ok(Expr::Column(Column::new(q.cloned(), f.name())))
        }
        [] => plan_err!(
            "stream join: the {} input ({}) must keep its ROWTIME column (select it in the subquery): the join orders rows by ROWTIME",
            side.name(),
            input_name(plan)
        ),
        _ => plan_err!(
            "stream join: the {} input ({}) has {} ROWTIME columns; joining the output of a stream-to-stream join again is not supported",
            side.name(),
            input_name(plan),
            found.len()
        ),
    }
}

/// Splits the `ON` condition into equality keys and a residual filter.
fn split_on(join: &Join) -> (Vec<(Expr, Expr)>, Option<Expr>) {
    let mut on = join.on.clone();
    let mut rest = Vec::new();
    let (ls, rs) = (join.left.schema(), join.right.schema());
    let only = |e: &Expr, s: &DFSchemaRef| {
        let cols = e.column_refs();
        !cols.is_empty() && cols.iter().all(|c| s.has_column(c))
    };
    if let Some(filter) = &join.filter {
        for e in split_conjunction(filter) {
            if let Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) = e
            {
                if only(left, ls) && only(right, rs) {
                    on.push((left.as_ref().clone(), right.as_ref().clone()));
                    continue;
                }
                if only(left, rs) && only(right, ls) {
                    on.push((right.as_ref().clone(), left.as_ref().clone()));
                    continue;
                }
            }
            rest.push(e.clone());
        }
    }
    (on, conjunction(rest))
}

fn rewrite_join(join: &Join) -> Result<Option<LogicalPlan>> {
    let (ls, rs) = (is_streaming(&join.left), is_streaming(&join.right));
    if !ls && !rs {
        return Ok(None);
    }
    let (lname, rname) = (input_name(&join.left), input_name(&join.right));
    if join.on.is_empty() && join.filter.is_none() {
        return plan_err!(
            "CROSS JOIN of {lname} and {rname}: a join with a stream needs a join condition; write FROM a JOIN b ON a.k = b.k (a comma join with the condition in WHERE is a CROSS JOIN too)"
        );
    }
    let (on, filter) = split_on(join);
    let (left, left_window) = take_window(&join.left)?;
    let (right, right_window) = take_window(&join.right)?;
    let node = if ls && rs {
        if !matches!(
            join.join_type,
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
        ) {
            return plan_err!(
                "stream join of {lname} and {rname}: {} joins are not supported; use INNER, LEFT, RIGHT or FULL",
                join.join_type
            );
        }
        if left_window.is_none() && right_window.is_none() {
            return plan_err!(
                "stream join of {lname} and {rname}: a stream-to-stream join needs a window on at least one side: use stream_range(...) / stream_rows(...) (KDA: OVER (RANGE ...))"
            );
        }
        let left_rowtime = rowtime_of(&left, Side::Left)?;
        let right_rowtime = rowtime_of(&right, Side::Right)?;
        Arc::new(StreamJoin {
            left,
            right,
            on,
            filter,
            join_type: join.join_type,
            null_equality: join.null_equality,
            left_window: left_window.map(|w| w.window),
            right_window: right_window.map(|w| w.window),
            left_rowtime,
            right_rowtime,
            schema: Arc::clone(&join.schema),
        }) as Arc<dyn datafusion::logical_expr::UserDefinedLogicalNode>
    } else {
        let (stream_side, stream_name, table_name) = if ls {
            (Side::Left, &lname, &rname)
        } else {
            (Side::Right, &rname, &lname)
        };
        if let Some(w) = left_window.as_ref().or(right_window.as_ref()) {
            return plan_err!(
                "{}: a join window applies to stream-to-stream joins only; the join of {stream_name} with table {table_name} looks each stream row up in the table without a window",
                w.describe()
            );
        }
        let ok = match join.join_type {
            JoinType::Inner => true,
            JoinType::Left => stream_side == Side::Left,
            JoinType::Right => stream_side == Side::Right,
            _ => false,
        };
        if !ok {
            return plan_err!(
                "join of stream {stream_name} with table {table_name}: {} JOIN is not supported; a table row that never matches could only be emitted at the end of the stream, which never comes; use INNER JOIN, or the outer join that keeps the stream's rows ({})",
                join.join_type,
                if stream_side == Side::Left { "LEFT JOIN" } else { "RIGHT JOIN" }
            );
        }
        Arc::new(StreamLookupJoin {
            left,
            right,
            stream_side,
            on,
            filter,
            join_type: join.join_type,
            null_equality: join.null_equality,
            schema: Arc::clone(&join.schema),
        })
    };
    Ok(Some(LogicalPlan::Extension(Extension { node })))
}
