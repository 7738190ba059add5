//! `AnomalyExec`: scores a stream row by row with one [`RowModel`] (see [`super`] for the
//! dataflow and the semantics).
//!
//! ```text
//!  loop (OperatorStream):
//!    Batch    → numeric columns cast to f64; rows with a NULL / NaN / infinite value → error
//!               sink, dropped; the rest → model.process (row-major points, in order)
//!               → input columns + model columns → one output batch
//!    Progress → passed on unchanged (a row's output is emitted with the row)
//!    end      → end (nothing is buffered)
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};

use super::logical::model_columns;
use super::{AnomalyFunction, RowModel};
use crate::errors::ErrorSink;
use crate::exec::messages::{
    batches_only, is_message_exec, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::exec::operator::{MessageOperator, OperatorStream};
use crate::exec::pipeline::{row_error, Pipeline};
use crate::runtime::StreamRuntime;
use crate::scan::{Progress, StreamMessage};
use crate::time::StreamClock;

/// Anomaly scoring over a message source (a stream scan or another streaming operator, plus
/// fused stateless stages). One output partition; all input partitions are merged into one
/// model.
#[derive(Debug)]
pub struct AnomalyExec {
    input: Arc<dyn ExecutionPlan>,
    pipeline: Pipeline,
    function: AnomalyFunction,
    /// The pipeline's output (the model's input).
    input_schema: SchemaRef,
    /// Indexes of the numeric columns of `input_schema`, and their names.
    columns: Vec<usize>,
    names: Vec<String>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl AnomalyExec {
    /// Creates the operator: `input` must speak the message protocol; `pipeline` maps its
    /// batches to rows of `input_schema`.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        pipeline: Pipeline,
        input_schema: SchemaRef,
        function: AnomalyFunction,
    ) -> Result<Self> {
        if !is_message_exec(&input) {
            return internal_err!(
                "AnomalyExec needs a streaming input (scan, window, join), got {}",
                input.name()
            );
        }
        let fields: Vec<_> = input_schema.fields().iter().map(|f| f.as_ref()).collect();
        let (columns, names) = model_columns(&function, &fields)?;
        let mut out: Vec<_> = input_schema.fields().iter().cloned().collect();
        out.extend(function.output_fields());
        let schema = Arc::new(Schema::new_with_metadata(
            out,
            input_schema.metadata().clone(),
        ));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Unbounded {
                requires_infinite_memory: false,
            },
        );
        Ok(Self {
            input,
            pipeline,
            function,
            input_schema,
            columns,
            names,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// What is computed.
    pub fn function(&self) -> &AnomalyFunction {
        &self.function
    }
}

impl DisplayAs for AnomalyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "AnomalyExec: {}, columns=[{}]",
            self.function,
            self.names.join(", ")
        )?;
        if !self.pipeline.is_empty() {
            write!(f, ", pipeline={}", self.pipeline)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for AnomalyExec {
    fn name(&self) -> &str {
        "AnomalyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::UnspecifiedDistribution]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("AnomalyExec takes one child");
        }
        let input = crate::exec::messages::unwrap_streaming_child(children.swap_remove(0));
        Ok(Arc::new(Self::try_new(
            input,
            self.pipeline.clone(),
            Arc::clone(&self.input_schema),
            self.function.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(batches_only(
            self.execute_messages(partition, &context)?,
            Arc::clone(&self.schema),
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

impl MessageExec for AnomalyExec {
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!("AnomalyExec has one output partition, asked for {partition}");
        }
        let input = MessageInput {
            source: Arc::clone(&self.input),
            pipeline: self.pipeline.clone(),
        };
        let inputs = MergedInputs::new(input.open(context)?);
        let runtime = StreamRuntime::from_task(context);
        let reservation = MemoryConsumer::new("AnomalyExec").register(context.memory_pool());
        let model = self.function.create_model(&self.names)?;
        reservation.try_resize(model.size())?;
        let metrics = AnomalyMetrics::new(&self.metrics);
        let baseline = metrics.baseline.clone();
        let op = AnomalyStream {
            function: self.function.name(),
            columns: self.columns.clone(),
            names: self.names.clone(),
            schema: Arc::clone(&self.schema),
            model,
            points: Vec::new(),
            output: VecDeque::new(),
            reservation,
            metrics,
            errors: Arc::clone(&runtime.errors),
            clock: Arc::clone(&runtime.clock),
        };
        Ok(Box::pin(OperatorStream::new(op, inputs, baseline)))
    }
}

#[derive(Debug, Clone)]
struct AnomalyMetrics {
    baseline: BaselineMetrics,
    input_rows: Count,
    rows_scored: Count,
    error_rows: Count,
}

impl AnomalyMetrics {
    fn new(m: &ExecutionPlanMetricsSet) -> Self {
        Self {
            baseline: BaselineMetrics::new(m, 0),
            input_rows: MetricBuilder::new(m).counter("input_rows", 0),
            rows_scored: MetricBuilder::new(m).counter("rows_scored", 0),
            error_rows: MetricBuilder::new(m).counter("error_rows", 0),
        }
    }
}

/// The running operator.
struct AnomalyStream {
    function: &'static str,
    columns: Vec<usize>,
    names: Vec<String>,
    schema: SchemaRef,
    model: Box<dyn RowModel>,
    /// Row-major points of the current batch (reused).
    points: Vec<f64>,
    output: VecDeque<StreamMessage>,
    reservation: MemoryReservation,
    metrics: AnomalyMetrics,
    errors: Arc<dyn ErrorSink>,
    clock: Arc<dyn StreamClock>,
}

impl AnomalyStream {
    fn on_batch(&mut self, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        self.metrics.input_rows.add(rows);
        let dims = self.columns.len();
        let values: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&c| cast(batch.column(c), &DataType::Float64))
            .collect::<std::result::Result<_, _>>()?;
        let values: Vec<_> = values
            .iter()
            .map(|a| a.as_primitive::<Float64Type>())
            .collect();
        // Rows with a NULL or non-finite value go to the error sink.
        let mut keep = vec![true; rows];
        let mut bad = 0;
        for (d, col) in values.iter().enumerate() {
            for (r, k) in keep.iter_mut().enumerate() {
                if !*k {
                    continue;
                }
                let why = if col.is_null(r) {
                    "NULL"
                } else if !col.value(r).is_finite() {
                    "not a finite number"
                } else {
                    continue;
                };
                *k = false;
                bad += 1;
                let e = DataFusionError::Execution(format!(
                    "{}: column \"{}\" is {why}; the row is not scored",
                    self.function, self.names[d]
                ));
                self.errors
                    .report(row_error(&batch.slice(r, 1), &e, self.clock.now()))?;
            }
        }
        let batch = if bad > 0 {
            self.metrics.error_rows.add(bad);
            let mask = BooleanArray::from(keep.clone());
            filter_record_batch(&batch, &mask)?
        } else {
            batch
        };
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.points.clear();
        self.points.reserve(n * dims);
        for (r, k) in keep.iter().enumerate() {
            if *k {
                self.points.extend(values.iter().map(|c| c.value(r)));
            }
        }
        let added = self.model.process(&self.points, dims, n)?;
        self.metrics.rows_scored.add(n);
        self.reservation.try_resize(self.model.size())?;
        let mut cols = batch.columns().to_vec();
        cols.extend(added);
        let out = RecordBatch::try_new(Arc::clone(&self.schema), cols)?;
        self.output.push_back(StreamMessage::Batch(out));
        Ok(())
    }
}

impl MessageOperator for AnomalyStream {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch) -> Result<()> {
        AnomalyStream::on_batch(self, batch)
    }

    fn on_progress(&mut self, progress: Progress) -> Result<()> {
        self.output.push_back(StreamMessage::Progress(progress));
        Ok(())
    }

    /// Nothing is buffered; the merged input already reported the end of time.
    fn on_end(&mut self) -> Result<()> {
        Ok(())
    }

    fn output(&mut self) -> &mut VecDeque<StreamMessage> {
        &mut self.output
    }
}
