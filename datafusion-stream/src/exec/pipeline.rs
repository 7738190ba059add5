//! Stateless stages (filters and projections) fused into a streaming operator.
//!
//! ```text
//!  StreamScanExec ──► [Filter] ──► [Project] ──► ... ──► streaming operator
//!        batches and Progress messages stay in order: a stage maps each batch in place,
//!        never buffers, and Progress passes through untouched.
//! ```
//!
//! DataFusion plans `WHERE` and `SELECT` expressions between a stream scan and a window
//! aggregate as `FilterExec`/`ProjectionExec`. Those operators only pass record batches, and
//! `FilterExec` buffers rows until a full batch, so a watermark sent around them could
//! overtake rows. The window planner therefore lifts their expressions into a [`Pipeline`]
//! that the window operator runs on each batch it pulls from the scan.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::filter::StreamFilterExec;
use super::messages::is_message_exec;
use crate::errors::{ErrorRecord, ErrorSink};
use crate::scan::is_rowtime;
use crate::time::Millis;

/// One stateless stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Keep the rows where `predicate` is true, then keep the columns in `projection`.
    Filter {
        /// The predicate (over the input columns).
        predicate: Arc<dyn PhysicalExpr>,
        /// Columns kept in the output (as `FilterExec` does).
        projection: Option<Vec<usize>>,
    },
    /// Compute new columns.
    Project {
        /// One expression per output column.
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        /// Output schema.
        schema: SchemaRef,
    },
}

/// Stateless stages applied in order to every batch.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

impl Pipeline {
    /// Splits `plan` into the message-producing operator at its bottom (a stream scan, a window,
    /// ...: see [`super::messages`]) and the stateless stages above it.
    /// Anything else between them is rejected with a plan error naming the operator.
    pub fn extract(
        plan: &Arc<dyn ExecutionPlan>,
        operator: &str,
    ) -> Result<(Arc<dyn ExecutionPlan>, Pipeline)> {
        let mut stages = Vec::new();
        let mut node = Arc::clone(plan);
        loop {
            if is_message_exec(&node) {
                stages.reverse();
                return Ok((node, Pipeline { stages }));
            }
            let next = if let Some(f) = node.downcast_ref::<FilterExec>() {
                stages.push(Stage::Filter {
                    predicate: Arc::clone(f.predicate()),
                    projection: f.projection().as_ref().map(|p| p.to_vec()),
                });
                Arc::clone(f.input())
            } else if let Some(f) = node.downcast_ref::<StreamFilterExec>() {
                stages.push(Stage::Filter {
                    predicate: Arc::clone(f.predicate()),
                    projection: f.projection().map(|p| p.to_vec()),
                });
                Arc::clone(f.input())
            } else if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                stages.push(Stage::Project {
                    exprs: p.expr().iter().map(|e| Arc::clone(&e.expr)).collect(),
                    schema: p.schema(),
                });
                Arc::clone(p.input())
            } else if let Some(u) = node.downcast_ref::<UnionExec>() {
                // UNION ALL of streams: each input with its own stateless stages.
                let inputs = u
                    .inputs()
                    .iter()
                    .map(|c| {
                        let (source, pipeline) = Pipeline::extract(c, operator)?;
                        Ok(super::messages::MessageInput { source, pipeline })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let union: Arc<dyn ExecutionPlan> =
                    Arc::new(super::union::StreamUnionExec::try_new(inputs, u.schema())?);
                stages.reverse();
                return Ok((union, Pipeline { stages }));
            } else if matches!(
                node.name(),
                "CoalesceBatchesExec" | "RepartitionExec" | "CooperativeExec"
            ) && node.children().len() == 1
            {
                // Order-preserving per partition and stateless for our purpose.
                Arc::clone(node.children()[0])
            } else {
                return plan_err!(
                    "{operator}: its input must be a stream with WHERE filters and projections only; found {} (only streams, streaming windows, sliding windows and stream joins produce rows with progress)",
                    node.name()
                );
            };
            node = next;
        }
    }

    /// A pipeline of the given stages.
    pub fn from_stages(stages: Vec<Stage>) -> Self {
        Self { stages }
    }

    /// True when there are no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Applies every stage; `None` when no row is left.
    pub fn apply(&self, mut batch: RecordBatch) -> Result<Option<RecordBatch>> {
        for stage in &self.stages {
            if batch.num_rows() == 0 {
                return Ok(None);
            }
            batch = match stage {
                Stage::Filter {
                    predicate,
                    projection,
                } => {
                    let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                    let kept = filter_record_batch(&batch, as_boolean_array(&mask)?)?;
                    match projection {
                        Some(p) => kept.project(p)?,
                        None => kept,
                    }
                }
                Stage::Project { exprs, schema } => {
                    let n = batch.num_rows();
                    let cols = exprs
                        .iter()
                        .map(|e| e.evaluate(&batch)?.into_array(n))
                        .collect::<Result<Vec<_>>>()?;
                    RecordBatch::try_new(Arc::clone(schema), cols)?
                }
            };
        }
        Ok((batch.num_rows() > 0).then_some(batch))
    }
}

impl Pipeline {
    /// Like [`Self::apply`], but a row whose expressions fail (division by zero, a bad cast)
    /// is reported to `errors` and left out, and the other rows of the batch go on. The sink
    /// decides: a collecting sink (KDA's error_stream) keeps the query running, the default
    /// sink fails it with the row named.
    pub fn apply_isolating(
        &self,
        batch: RecordBatch,
        errors: &dyn ErrorSink,
        now: Millis,
    ) -> Result<Option<RecordBatch>> {
        match self.apply(batch.clone()) {
            Ok(out) => Ok(out),
            Err(first) if batch.num_rows() == 0 => Err(first),
            Err(_) => {
                let mut kept = Vec::new();
                for i in 0..batch.num_rows() {
                    let row = batch.slice(i, 1);
                    match self.apply(row.clone()) {
                        Ok(Some(b)) => kept.push(b),
                        Ok(None) => {}
                        Err(e) => errors.report(row_error(&row, &e, now))?,
                    }
                }
                let Some(out_schema) = kept.first().map(|b| b.schema()) else {
                    return Ok(None);
                };
                Ok(Some(concat_batches(&out_schema, &kept)?))
            }
        }
    }
}

/// An error-stream record for one failed row: its ROWTIME (if it has one) and its values.
pub fn row_error(row: &RecordBatch, e: &DataFusionError, now: Millis) -> ErrorRecord {
    let schema = row.schema();
    let mut rowtime = None;
    let mut text = Vec::new();
    let options = FormatOptions::default().with_null("null");
    for (i, f) in schema.fields().iter().enumerate() {
        let col = row.column(i);
        if is_rowtime(f) {
            if let Some(ts) = col
                .as_primitive_opt::<TimestampMillisecondType>()
                .filter(|a| a.is_valid(0))
            {
                rowtime = Some(ts.value(0));
            }
            continue;
        }
        let v = ArrayFormatter::try_new(col.as_ref(), &options)
            .map(|fm| fm.value(0).to_string())
            .unwrap_or_else(|_| "?".into());
        text.push(format!("{}={}", f.name(), v));
    }
    let full = e.to_string();
    let message = [
        "Execution error: ",
        "Arrow error: ",
        "Error during planning: ",
    ]
    .iter()
    .find_map(|p| full.strip_prefix(p))
    .unwrap_or(&full)
    .to_string();
    let lower = message.to_ascii_lowercase();
    let name = if lower.contains("divide by zero") || lower.contains("division by zero") {
        "Division_By_Zero"
    } else if lower.contains("cast") || lower.contains("overflow") {
        "Conversion_Error"
    } else {
        "Runtime_Error"
    };
    ErrorRecord::error(now, name, message, rowtime, text.join(", ").into_bytes())
}

impl std::fmt::Display for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .stages
            .iter()
            .map(|s| match s {
                Stage::Filter { predicate, .. } => format!("filter: {predicate}"),
                Stage::Project { exprs, .. } => format!(
                    "project: {}",
                    exprs
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        write!(f, "[{}]", parts.join("; "))
    }
}
