//! The table functions `random_cut_forest` and `random_cut_forest_with_explanation`.
//!
//! ```sql
//! random_cut_forest(input [, number_of_trees, sub_sample_size, time_decay, shingle_size [, seed]])
//! random_cut_forest_with_explanation(input [, number_of_trees, sub_sample_size, time_decay,
//!                                    shingle_size, with_directionality [, seed]])
//! ```
//!
//! `input` is the name of a stream or of a view over streams (`'s'`), or a query as
//! `EXISTS (SELECT ...)` (how the KDA front end passes `CURSOR(SELECT STREAM ...)`: DataFusion
//! plans an `EXISTS` subquery into a whole logical plan without limiting its columns). The
//! numbers are integer literals with KDA's defaults and ranges (100 [1..1000], 256 [10..1000,
//! < time_decay], 100000 [1..2^31-1], 1 [1..30]); `with_directionality` is a boolean (default
//! false); `seed` (default 0) is ours.
//!
//! The function returns an [`AnomalyTable`] whose logical plan — an [`AnomalyDetect`] node over
//! the input's plan — DataFusion inlines into the query, so filters, projections, ORDER BY and
//! joins over it are planned as over any stream.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::{provider_as_source, TableType};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;

use super::logical::AnomalyDetect;
use super::rcf::RcfParams;
use super::AnomalyFunction;

/// The result of an anomaly table function: the input's rows plus the function's columns.
#[derive(Debug, Clone)]
pub struct AnomalyTable {
    plan: LogicalPlan,
    schema: SchemaRef,
}

impl AnomalyTable {
    /// Scores `input` with `function`.
    pub fn try_new(input: LogicalPlan, function: AnomalyFunction) -> Result<Self> {
        let node = AnomalyDetect::try_new(input, function)?;
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        let schema = Arc::clone(plan.schema().inner());
        Ok(Self { plan, schema })
    }
}

#[async_trait]
impl TableProvider for AnomalyTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        Some(Cow::Borrowed(&self.plan))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan_err!("an anomaly table function is planned through its logical plan, not scanned")
    }
}

/// `random_cut_forest` or `random_cut_forest_with_explanation`.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyTableFunction {
    name: &'static str,
    explain: bool,
}

impl AnomalyTableFunction {
    /// `random_cut_forest`.
    pub const RANDOM_CUT_FOREST: Self = Self {
        name: "random_cut_forest",
        explain: false,
    };
    /// `random_cut_forest_with_explanation`.
    pub const RANDOM_CUT_FOREST_WITH_EXPLANATION: Self = Self {
        name: "random_cut_forest_with_explanation",
        explain: true,
    };

    /// The function's SQL name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// An integer literal (possibly negated), or an error naming the argument.
fn int_arg(fname: &str, e: &Expr, pos: usize, what: &str) -> Result<i64> {
    let v = match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate()?,
            _ => ScalarValue::Null,
        },
        _ => ScalarValue::Null,
    };
    let n = match v {
        ScalarValue::Int8(Some(n)) => n as i64,
        ScalarValue::Int16(Some(n)) => n as i64,
        ScalarValue::Int32(Some(n)) => n as i64,
        ScalarValue::Int64(Some(n)) => n,
        ScalarValue::UInt8(Some(n)) => n as i64,
        ScalarValue::UInt16(Some(n)) => n as i64,
        ScalarValue::UInt32(Some(n)) => n as i64,
        ScalarValue::UInt64(Some(n)) => i64::try_from(n).unwrap_or(i64::MAX),
        _ => {
            return plan_err!(
                "{fname}: argument {pos} ({what}) must be an integer literal, got {e}"
            )
        }
    };
    Ok(n)
}

fn bool_arg(fname: &str, e: &Expr, pos: usize, what: &str) -> Result<bool> {
    match e {
        Expr::Literal(ScalarValue::Boolean(Some(b)), _) => Ok(*b),
        _ => plan_err!("{fname}: argument {pos} ({what}) must be TRUE or FALSE, got {e}"),
    }
}

/// A count parameter: out-of-range values (also negative ones) are reported by
/// [`RcfParams::validate`] with the range; here they are only clamped into `usize`.
fn count(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

impl AnomalyTableFunction {
    fn params(&self, fname: &str, args: &[Expr]) -> Result<RcfParams> {
        let mut p = RcfParams::default();
        let names: &[&str] = if self.explain {
            &[
                "numberOfTrees",
                "subSampleSize",
                "timeDecay",
                "shingleSize",
                "withDirectionality",
                "seed",
            ]
        } else {
            &[
                "numberOfTrees",
                "subSampleSize",
                "timeDecay",
                "shingleSize",
                "seed",
            ]
        };
        if args.len() > names.len() {
            return plan_err!(
                "{fname} takes at most {} arguments after the input ({}), got {}",
                names.len(),
                names.join(", "),
                args.len()
            );
        }
        let mut time_decay = p.time_decay as i64;
        for (i, (e, name)) in args.iter().zip(names).enumerate() {
            let pos = i + 2;
            match *name {
                "numberOfTrees" => p.number_of_trees = count(int_arg(fname, e, pos, name)?),
                "subSampleSize" => p.sub_sample_size = count(int_arg(fname, e, pos, name)?),
                "timeDecay" => time_decay = int_arg(fname, e, pos, name)?,
                "shingleSize" => p.shingle_size = count(int_arg(fname, e, pos, name)?),
                "withDirectionality" => p.with_directionality = bool_arg(fname, e, pos, name)?,
                _ => {
                    let s = int_arg(fname, e, pos, name)?;
                    if s < 0 {
                        return plan_err!("{fname}: seed must be a non-negative integer, got {s}");
                    }
                    p.seed = s as u64;
                }
            }
        }
        if time_decay < 1 {
            return plan_err!(
                "{fname}: timeDecay must be in [1, {}], got {time_decay}",
                i32::MAX
            );
        }
        p.time_decay = time_decay as u64;
        p.validate(fname)?;
        Ok(p)
    }
}

/// The logical plan of a named stream or view.
fn named_input(fname: &str, state: &SessionState, name: &str) -> Result<LogicalPlan> {
    let (table_ref, provider) =
        crate::window::tvf::lookup_table(fname, state, name, "stream or view")?;
    LogicalPlanBuilder::scan(table_ref, provider_as_source(provider), None)?.build()
}

impl TableFunctionImpl for AnomalyTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let fname = self.name.to_ascii_uppercase();
        let exprs = args.exprs();
        let Some(first) = exprs.first() else {
            return plan_err!(
                "{fname}: the first argument must be a stream or view name, or a query"
            );
        };
        let input = match first {
            Expr::Literal(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
                _,
            ) => {
                let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
                    return plan_err!("{fname}: needs a DataFusion SessionState");
                };
                named_input(&fname, state, s)?
            }
            Expr::Exists(e) if !e.negated => e.subquery.subquery.as_ref().clone(),
            Expr::ScalarSubquery(s) => s.subquery.as_ref().clone(),
            other => {
                return plan_err!(
                    "{fname}: the first argument must be a stream or view name such as 'ticker', or a query (EXISTS (SELECT ...)), got {other}"
                )
            }
        };
        let params = self.params(&fname, &exprs[1..])?;
        let function = if self.explain {
            AnomalyFunction::RandomCutForestWithExplanation(params)
        } else {
            AnomalyFunction::RandomCutForest(params)
        };
        Ok(Arc::new(AnomalyTable::try_new(input, function)?))
    }
}
