//! The `StreamWindowAggregate` logical node and the analyzer rule that creates it.
//!
//! ```text
//!  Aggregate(group: window_start, window_end, k; aggr: count(*))     StreamWindowAggregate
//!    Filter(v > 0)                                           ──►       Filter(v > 0)
//!      TableScan tumble()  [WindowedTable over stream t]                 TableScan tumble() [StreamTable t]
//! ```
//!
//! The rule keeps the aggregate's output schema, so everything above it is unchanged. Between
//! the window function and the aggregate only `WHERE` (Filter), aliases and projections that do
//! not touch `window_start`/`window_end` are allowed.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{plan_err, Column, DFSchemaRef, Result};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{
    Aggregate, Expr, Extension, LogicalPlan, LogicalPlanBuilder, TableScan,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;

use super::tvf::{WindowedTable, WINDOW_END, WINDOW_START};
use super::{TimeDomain, WindowKind};

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
            .map(|g| match g {
                GroupItem::WindowStart => WINDOW_START.to_string(),
                GroupItem::WindowEnd => WINDOW_END.to_string(),
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

fn rewrite_aggregate(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let Some((_, w)) = windowed_scan(&agg.input) else {
        return Ok(None);
    };
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
    Ok(Some(LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    })))
}

impl AnalyzerRule for WindowAggregateRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| {
            if let LogicalPlan::Aggregate(agg) = &p {
                if let Some(new) = rewrite_aggregate(agg)? {
                    return Ok(Transformed::yes(new));
                }
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "stream_window_aggregate"
    }
}
