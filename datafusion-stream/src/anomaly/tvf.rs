//! The table functions `random_cut_forest`, `random_cut_forest_with_explanation` and
//! `hotspots`.
//!
//! ```sql
//! random_cut_forest(input [, number_of_trees, sub_sample_size, time_decay, shingle_size [, seed]])
//! random_cut_forest_with_explanation(input [, number_of_trees, sub_sample_size, time_decay,
//!                                    shingle_size, with_directionality [, seed]])
//! hotspots(input, window_size, scan_radius, minimum_number_of_points_in_a_hotspot)
//! ```
//!
//! `input` is the name of a stream or of a view over streams (`'s'`), or a query as
//! `EXISTS (SELECT ...)` (how the KDA front end passes `CURSOR(SELECT STREAM ...)`: DataFusion
//! plans an `EXISTS` subquery into a whole logical plan without limiting its columns). The
//! numbers are integer literals with KDA's defaults and ranges (100 [1..1000], 256 [10..1000,
//! < time_decay], 100000 [1..2^31-1], 1 [1..30]); `with_directionality` is a boolean (default
//! false); `seed` (default 0) is ours. `hotspots` takes all three of its parameters, as KDA
//! does: `window_size` an integer in [100, 1000], `scan_radius` a number > 0 (integer, decimal
//! or float literal), `min_points` an integer in [2, window_size].
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

use super::hotspots::HotspotsParams;
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

/// Which table function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rcf,
    RcfWithExplanation,
    Hotspots,
}

/// `random_cut_forest`, `random_cut_forest_with_explanation` or `hotspots`.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyTableFunction {
    name: &'static str,
    kind: Kind,
}

impl AnomalyTableFunction {
    /// `random_cut_forest`.
    pub const RANDOM_CUT_FOREST: Self = Self {
        name: "random_cut_forest",
        kind: Kind::Rcf,
    };
    /// `random_cut_forest_with_explanation`.
    pub const RANDOM_CUT_FOREST_WITH_EXPLANATION: Self = Self {
        name: "random_cut_forest_with_explanation",
        kind: Kind::RcfWithExplanation,
    };
    /// `hotspots`.
    pub const HOTSPOTS: Self = Self {
        name: "hotspots",
        kind: Kind::Hotspots,
    };

    /// The function's SQL name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The value of a literal argument, possibly negated (`-5`); NULL for anything else.
fn literal_value(e: &Expr) -> Result<ScalarValue> {
    Ok(match e {
        Expr::Literal(v, _) => v.clone(),
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate()?,
            _ => ScalarValue::Null,
        },
        _ => ScalarValue::Null,
    })
}

/// An integer literal (possibly negated), or an error naming the argument.
fn int_arg(fname: &str, e: &Expr, pos: usize, what: &str) -> Result<i64> {
    let n = match literal_value(e)? {
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

/// A numeric literal (integer, decimal or float; possibly negated) as `f64`, or an error naming
/// the argument.
fn number_arg(fname: &str, e: &Expr, pos: usize, what: &str) -> Result<f64> {
    let v = literal_value(e)?;
    let numeric = v.data_type().is_numeric() && !v.is_null();
    match numeric.then(|| v.cast_to(&datafusion::arrow::datatypes::DataType::Float64)) {
        Some(Ok(ScalarValue::Float64(Some(x)))) => Ok(x),
        _ => plan_err!("{fname}: argument {pos} ({what}) must be a number literal, got {e}"),
    }
}

fn bool_arg(fname: &str, e: &Expr, pos: usize, what: &str) -> Result<bool> {
    match e {
        Expr::Literal(ScalarValue::Boolean(Some(b)), _) => Ok(*b),
        _ => plan_err!("{fname}: argument {pos} ({what}) must be TRUE or FALSE, got {e}"),
    }
}

/// A count parameter: a negative value is an error naming it; values too large for the range
/// are reported by the parameters' `validate` with the range.
fn count(fname: &str, n: i64, what: &str) -> Result<usize> {
    match usize::try_from(n) {
        Ok(n) => Ok(n),
        Err(_) => plan_err!("{fname}: {what} must not be negative, got {n}"),
    }
}

impl AnomalyTableFunction {
    /// `hotspots`' parameters: all three are required.
    fn hotspots_params(fname: &str, args: &[Expr]) -> Result<HotspotsParams> {
        let [window, radius, min_points] = args else {
            return plan_err!(
                "{fname} takes the input and 3 parameters (windowSize, scanRadius, minimumNumberOfPointsInAHotspot), got {} parameters",
                args.len()
            );
        };
        let p = HotspotsParams {
            window_size: count(
                fname,
                int_arg(fname, window, 2, "windowSize")?,
                "windowSize",
            )?,
            scan_radius: number_arg(fname, radius, 3, "scanRadius")?,
            min_points: count(
                fname,
                int_arg(fname, min_points, 4, "minimumNumberOfPointsInAHotspot")?,
                "minimumNumberOfPointsInAHotspot",
            )?,
        };
        p.validate()?;
        Ok(p)
    }

    fn params(&self, fname: &str, args: &[Expr]) -> Result<RcfParams> {
        let mut p = RcfParams::default();
        let names: &[&str] = if self.kind == Kind::RcfWithExplanation {
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
                "numberOfTrees" => {
                    p.number_of_trees = count(fname, int_arg(fname, e, pos, name)?, name)?
                }
                "subSampleSize" => {
                    p.sub_sample_size = count(fname, int_arg(fname, e, pos, name)?, name)?
                }
                "timeDecay" => time_decay = int_arg(fname, e, pos, name)?,
                "shingleSize" => {
                    p.shingle_size = count(fname, int_arg(fname, e, pos, name)?, name)?
                }
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
        let args = &exprs[1..];
        let function = match self.kind {
            Kind::Rcf => AnomalyFunction::RandomCutForest(self.params(&fname, args)?),
            Kind::RcfWithExplanation => {
                AnomalyFunction::RandomCutForestWithExplanation(self.params(&fname, args)?)
            }
            Kind::Hotspots => AnomalyFunction::Hotspots(Self::hotspots_params(&fname, args)?),
        };
        Ok(Arc::new(AnomalyTable::try_new(input, function)?))
    }
}
