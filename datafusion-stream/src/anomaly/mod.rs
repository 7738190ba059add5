//! Anomaly detection over a stream: KDA's `RANDOM_CUT_FOREST`,
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION` and `HOTSPOTS` (`SPEC.md` §1.10, Examples I and J), as
//! one operator that any row-by-row model plugs into (one [`AnomalyFunction`] arm and one
//! [`RowModel`] each).
//!
//! ```text
//!  SQL:  SELECT * FROM random_cut_forest('s' [, trees, sub_sample_size, time_decay, shingle_size])
//!        SELECT * FROM random_cut_forest_with_explanation('s', ... [, with_directionality])
//!        SELECT * FROM hotspots('s', window_size, scan_radius, min_points)
//!        KDA: TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM ... FROM "S"), 100, 256, 100000, 1))
//!             TABLE(HOTSPOTS(CURSOR(SELECT STREAM "x", "y" FROM "S"), 1000, 0.2, 17))
//!
//!  tvf.rs      table function ─► AnomalyTable (provider; its logical plan is inlined):
//!  logical.rs    AnomalyDetect node { function, input: the stream's / view's / cursor's plan }
//!  planner.rs  ─► AnomalyExec (fuses the filters/projections below it into a Pipeline)
//!  exec.rs     AnomalyExec (a MessageExec, ONE output partition, ONE model):
//!
//!   input p0 ─┐                   per row, in order            ┌──────── state ───────────┐
//!   input p1 ─┼─► pipeline ─► numeric columns → f64 point ───► │ RowModel (RcfModel: trees,│
//!   input pN ─┘  (MergedInputs)  NULL / NaN → error sink, row   │ samples, shingle buffer; │
//!                                 dropped                       │ or HotspotsModel: window)│
//!                                                               └──────────────────────────┘
//!        input columns + ANOMALY_SCORE [+ ANOMALY_EXPLANATION] | HOTSPOTS_RESULT ─► out
//!   Progress ───────────────────────────────────────────────────────────────────────► passed on
//! ```
//!
//! **Columns.** The model reads every numeric column of the input, in order: DOUBLE, FLOAT /
//! REAL, BIGINT, INTEGER, SMALLINT, TINYINT (and unsigned integers), at most 30 for RCF (KDA's
//! limit) and 1000 for HOTSPOTS (KDA's limit on the columns of a stream); DECIMAL is rejected
//! (KDA does not take it), other types (strings, timestamps, ROWTIME) pass through untouched.
//! No numeric column, too many, or a DECIMAL column is a plan error. The output is the input's
//! columns plus `ANOMALY_SCORE` DOUBLE (and `ANOMALY_EXPLANATION` VARCHAR JSON), or plus
//! `HOTSPOTS_RESULT` VARCHAR JSON.
//! The new columns are named in upper case, as KDA writes them — also in DataFusion SQL, where
//! they must be quoted (`"ANOMALY_SCORE"`) when the session folds identifiers to lower case.
//! Output rows keep their input ROWTIME; progress passes through unchanged.
//!
//! **NULL policy** (KDA's docs are silent): a row with a NULL (or NaN / infinite) value in a
//! numeric column is not scored; it goes to the error sink (`Runtime_Error`, naming the
//! column; KDA applications write it to `error_stream`, the default sink fails the query) and
//! is not emitted. Treating NULL as 0 would silently teach the model a wrong value.
//!
//! **One model** per query: all input partitions are merged in arrival order, so the scores
//! depend on that order (deterministic for a single-partition input such as a KDA in-app
//! stream). The default seed is 0 (fixed, so runs repeat); the DataFusion table functions take
//! a seed as an optional last argument.
//!
//! State: the model (serde-serialisable, see [`rcf::RcfModel`] and
//! [`hotspots::HotspotsModel`]), tracked by a
//! `MemoryReservation`. Metrics: `input_rows`, `rows_scored`, `error_rows`, `output_rows`.

pub mod exec;
pub mod forest;
pub mod hotspots;
pub mod logical;
pub mod planner;
pub mod rcf;
pub mod tvf;

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::execution::context::SessionContext;

use hotspots::{HotspotsModel, HotspotsParams};
use rcf::{Attribution, RcfModel, RcfParams};

/// Name of the score column.
pub const ANOMALY_SCORE: &str = "ANOMALY_SCORE";
/// Name of the explanation column.
pub const ANOMALY_EXPLANATION: &str = "ANOMALY_EXPLANATION";
/// Name of the HOTSPOTS column.
pub const HOTSPOTS_RESULT: &str = "HOTSPOTS_RESULT";

/// A model that turns each row's numeric values into output columns, in order.
pub trait RowModel: Send + fmt::Debug {
    /// The columns it adds (`ANOMALY_SCORE`, `ANOMALY_EXPLANATION`, `HOTSPOTS_RESULT`).
    fn output_fields(&self) -> Vec<FieldRef>;
    /// Processes `rows` points of `dims` values each (row-major), updating the model; returns
    /// one array of `rows` values per output field.
    fn process(&mut self, points: &[f64], dims: usize, rows: usize) -> Result<Vec<ArrayRef>>;
    /// Approximate bytes of state.
    fn size(&self) -> usize;
}

/// Which function an anomaly operator computes (carried by the logical node).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub enum AnomalyFunction {
    /// `RANDOM_CUT_FOREST`: adds `ANOMALY_SCORE`.
    RandomCutForest(RcfParams),
    /// `RANDOM_CUT_FOREST_WITH_EXPLANATION`: adds `ANOMALY_SCORE` and `ANOMALY_EXPLANATION`.
    RandomCutForestWithExplanation(RcfParams),
    /// `HOTSPOTS`: adds `HOTSPOTS_RESULT`.
    Hotspots(HotspotsParams),
}

impl AnomalyFunction {
    /// The KDA name of the function.
    pub fn name(&self) -> &'static str {
        match self {
            AnomalyFunction::RandomCutForest(_) => "RANDOM_CUT_FOREST",
            AnomalyFunction::RandomCutForestWithExplanation(_) => {
                "RANDOM_CUT_FOREST_WITH_EXPLANATION"
            }
            AnomalyFunction::Hotspots(_) => "HOTSPOTS",
        }
    }

    /// Most numeric input columns the function takes.
    pub fn max_dimensions(&self) -> usize {
        match self {
            AnomalyFunction::RandomCutForest(_)
            | AnomalyFunction::RandomCutForestWithExplanation(_) => rcf::MAX_DIMENSIONS,
            AnomalyFunction::Hotspots(_) => hotspots::MAX_DIMENSIONS,
        }
    }

    /// The columns the function adds.
    pub fn output_fields(&self) -> Vec<FieldRef> {
        let score = Arc::new(Field::new(ANOMALY_SCORE, DataType::Float64, false));
        match self {
            AnomalyFunction::RandomCutForest(_) => vec![score],
            AnomalyFunction::RandomCutForestWithExplanation(_) => vec![
                score,
                Arc::new(Field::new(ANOMALY_EXPLANATION, DataType::Utf8, false)),
            ],
            AnomalyFunction::Hotspots(_) => {
                vec![Arc::new(Field::new(HOTSPOTS_RESULT, DataType::Utf8, false))]
            }
        }
    }

    /// A new model over the numeric columns `columns` (their names, in order).
    pub fn create_model(&self, columns: &[String]) -> Result<Box<dyn RowModel>> {
        Ok(match self {
            AnomalyFunction::RandomCutForest(p) => Box::new(RcfRowModel {
                model: RcfModel::try_new(*p, columns.len())?,
                explain: None,
            }),
            AnomalyFunction::RandomCutForestWithExplanation(p) => Box::new(RcfRowModel {
                model: RcfModel::try_new(*p, columns.len())?,
                explain: Some(Explainer::new(columns, p.with_directionality)),
            }),
            AnomalyFunction::Hotspots(p) => Box::new(HotspotsRowModel {
                model: HotspotsModel::try_new(*p, columns.len())?,
            }),
        })
    }
}

impl fmt::Display for AnomalyFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnomalyFunction::RandomCutForest(p)
            | AnomalyFunction::RandomCutForestWithExplanation(p) => {
                write!(
                    f,
                    "{}(trees={}, sub_sample_size={}, time_decay={}, shingle_size={}",
                    self.name(),
                    p.number_of_trees,
                    p.sub_sample_size,
                    p.time_decay,
                    p.shingle_size
                )?;
                if matches!(self, AnomalyFunction::RandomCutForestWithExplanation(_)) {
                    write!(f, ", with_directionality={}", p.with_directionality)?;
                }
                write!(f, ", seed={})", p.seed)
            }
            AnomalyFunction::Hotspots(p) => write!(
                f,
                "HOTSPOTS(window_size={}, scan_radius={:?}, min_points={})",
                p.window_size, p.scan_radius, p.min_points
            ),
        }
    }
}

/// Renders explanations as KDA's JSON.
#[derive(Debug)]
struct Explainer {
    /// `"<col>":` with the name JSON-escaped, per column.
    keys: Vec<String>,
    with_directionality: bool,
}

impl Explainer {
    fn new(columns: &[String], with_directionality: bool) -> Self {
        let keys = columns
            .iter()
            .map(|c| format!("{}:", serde_json::Value::String(c.clone())))
            .collect();
        Self {
            keys,
            with_directionality,
        }
    }

    /// `{"<col>":{"DIRECTION":"LOW|HIGH","STRENGTH":"<n>","ATTRIBUTION_SCORE":"<n>"},...}`
    /// (DIRECTION and STRENGTH only with directionality), numbers with 4 decimals as strings.
    fn render(&self, attributions: &[Attribution], out: &mut String) {
        use std::fmt::Write;
        out.push('{');
        for (i, (k, a)) in self.keys.iter().zip(attributions).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            if self.with_directionality {
                let _ = write!(
                    out,
                    "{{\"DIRECTION\":\"{}\",\"STRENGTH\":\"{:.4}\",\"ATTRIBUTION_SCORE\":\"{:.4}\"}}",
                    a.direction.as_str(),
                    a.strength,
                    a.attribution
                );
            } else {
                let _ = write!(out, "{{\"ATTRIBUTION_SCORE\":\"{:.4}\"}}", a.attribution);
            }
        }
        out.push('}');
    }
}

/// [`RcfModel`] as a [`RowModel`].
#[derive(Debug)]
struct RcfRowModel {
    model: RcfModel,
    explain: Option<Explainer>,
}

impl RowModel for RcfRowModel {
    fn output_fields(&self) -> Vec<FieldRef> {
        let p = *self.model.params();
        match self.explain {
            None => AnomalyFunction::RandomCutForest(p).output_fields(),
            Some(_) => AnomalyFunction::RandomCutForestWithExplanation(p).output_fields(),
        }
    }

    fn process(&mut self, points: &[f64], dims: usize, rows: usize) -> Result<Vec<ArrayRef>> {
        match &self.explain {
            None => {
                let scores = self.model.score_and_update_all(&points[..rows * dims])?;
                Ok(vec![Arc::new(Float64Array::from(scores))])
            }
            Some(explainer) => {
                let mut scores = Vec::with_capacity(rows);
                let mut json = StringBuilder::with_capacity(rows, rows * 64 * dims);
                let mut text = String::new();
                for (s, a) in self.model.explain_and_update_all(&points[..rows * dims])? {
                    scores.push(s);
                    text.clear();
                    explainer.render(&a, &mut text);
                    json.append_value(&text);
                }
                Ok(vec![
                    Arc::new(Float64Array::from(scores)),
                    Arc::new(json.finish()),
                ])
            }
        }
    }

    fn size(&self) -> usize {
        self.model.size()
    }
}

/// [`HotspotsModel`] as a [`RowModel`].
#[derive(Debug)]
struct HotspotsRowModel {
    model: HotspotsModel,
}

impl RowModel for HotspotsRowModel {
    fn output_fields(&self) -> Vec<FieldRef> {
        AnomalyFunction::Hotspots(*self.model.params()).output_fields()
    }

    fn process(&mut self, points: &[f64], dims: usize, rows: usize) -> Result<Vec<ArrayRef>> {
        let mut json = StringBuilder::with_capacity(rows, rows * 32);
        for point in points.chunks_exact(dims).take(rows) {
            json.append_value(self.model.update(point)?);
        }
        Ok(vec![Arc::new(json.finish())])
    }

    fn size(&self) -> usize {
        self.model.size()
    }
}

/// Registers `random_cut_forest`, `random_cut_forest_with_explanation` and `hotspots`.
pub fn register_anomaly_functions(ctx: &SessionContext) {
    for f in [
        tvf::AnomalyTableFunction::RANDOM_CUT_FOREST,
        tvf::AnomalyTableFunction::RANDOM_CUT_FOREST_WITH_EXPLANATION,
        tvf::AnomalyTableFunction::HOTSPOTS,
    ] {
        ctx.register_udtf(f.name(), Arc::new(f));
    }
}

#[cfg(test)]
mod tests {
    use super::rcf::Direction;
    use super::*;

    #[test]
    fn explanation_json() {
        let a = [
            Attribution {
                direction: Direction::High,
                strength: 0.85671,
                attribution: 1.74466,
            },
            Attribution::LEARNING,
        ];
        let cols = ["Systolic".to_string(), "Dia\"stolic".to_string()];
        let mut s = String::new();
        Explainer::new(&cols, true).render(&a, &mut s);
        assert_eq!(
            s,
            r#"{"Systolic":{"DIRECTION":"HIGH","STRENGTH":"0.8567","ATTRIBUTION_SCORE":"1.7447"},"Dia\"stolic":{"DIRECTION":"LOW","STRENGTH":"0.0000","ATTRIBUTION_SCORE":"0.0000"}}"#
        );
        let mut s = String::new();
        Explainer::new(&cols, false).render(&a, &mut s);
        assert_eq!(
            s,
            r#"{"Systolic":{"ATTRIBUTION_SCORE":"1.7447"},"Dia\"stolic":{"ATTRIBUTION_SCORE":"0.0000"}}"#
        );
    }
}
