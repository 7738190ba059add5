//! `StreamOverExec`: sliding windows over a stream, one output row per input row (see
//! [`super`] for the dataflow and the semantics).
//!
//! The plan node is thin; [`OverStream`]'s `poll_next` loop is:
//!
//! ```text
//!  loop:
//!    1. output queued?                 → return it (rows, then the progress that followed them)
//!    2. poll the merged input partitions:
//!         Batch    → pipeline → one partition: process now, emit the rows
//!                               several: buffer, then release what progress allows
//!         Progress → release buffered rows with ROWTIME <= progress.rowtime (sorted by
//!                    ROWTIME, partition, arrival), process and emit them; drop expired
//!                    partitions; pass the progress on
//!         end      → release everything, end
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::{cast, filter_record_batch, interleave_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, internal_err, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};

use super::state::{OverFunction, OverGroup, OverState};
use crate::exec::messages::{
    is_message_exec, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::exec::operator::{MessageOperator, OperatorStream};
use crate::exec::pipeline::Pipeline;
use crate::scan::{Progress, StreamMessage};
use crate::time::{format_millis, Millis};

/// Sliding windows over a message source (a stream scan or another streaming operator, plus
/// fused stateless stages).
#[derive(Debug)]
pub struct StreamOverExec {
    input: Arc<dyn ExecutionPlan>,
    pipeline: Pipeline,
    time: Option<Arc<dyn PhysicalExpr>>,
    groups: Vec<OverGroup>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamOverExec {
    /// Creates the operator. `input` must speak the message protocol
    /// ([`crate::exec::messages`]); `pipeline` maps its batches to the rows the window
    /// expressions and `time` (ROWTIME) are evaluated on. `schema` is the pipeline's output
    /// followed by one column per window expression.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        pipeline: Pipeline,
        time: Option<Arc<dyn PhysicalExpr>>,
        groups: Vec<OverGroup>,
        schema: SchemaRef,
    ) -> Result<Self> {
        if !is_message_exec(&input) {
            return internal_err!(
                "StreamOverExec needs a streaming input (scan, window, join), got {}",
                input.name()
            );
        }
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
            time,
            groups,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The window expressions, grouped by PARTITION BY.
    pub fn groups(&self) -> &[OverGroup] {
        &self.groups
    }
}

impl DisplayAs for StreamOverExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StreamOverExec: ")?;
        let mut first = true;
        for g in &self.groups {
            for e in &g.exprs {
                if !first {
                    write!(f, ", ")?;
                }
                first = false;
                let args: Vec<String> = e.args.iter().map(|a| a.to_string()).collect();
                let fname = match &e.function {
                    OverFunction::Aggregate(a) => a.fun().name().to_string(),
                    OverFunction::Lag {
                        offset,
                        ignore_nulls,
                        ..
                    } => format!(
                        "lag[{offset}{}]",
                        if *ignore_nulls { " IGNORE NULLS" } else { "" }
                    ),
                    OverFunction::NthValue { n, ignore_nulls } => {
                        format!(
                            "nth_value[{n}{}]",
                            if *ignore_nulls { " IGNORE NULLS" } else { "" }
                        )
                    }
                    OverFunction::RowNumber => "row_number".to_string(),
                };
                write!(f, "{fname}({}) [{}", args.join(", "), e.frame)?;
                if !g.partition_by.is_empty() {
                    let keys: Vec<String> = g.partition_by.iter().map(|k| k.to_string()).collect();
                    write!(f, ", PARTITION BY {}", keys.join(", "))?;
                }
                write!(f, "]")?;
            }
        }
        if let Some(t) = &self.time {
            write!(f, ", rowtime={t}")?;
        }
        if !self.pipeline.is_empty() {
            write!(f, ", pipeline={}", self.pipeline)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamOverExec {
    fn name(&self) -> &str {
        "StreamOverExec"
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
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut all: Vec<&Arc<dyn PhysicalExpr>> = self.time.iter().collect();
        for g in &self.groups {
            all.extend(g.partition_by.iter());
            for e in &g.exprs {
                all.extend(e.args.iter());
                if let OverFunction::Lag {
                    default: Some(d), ..
                } = &e.function
                {
                    all.push(d);
                }
            }
        }
        for e in all {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
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
            return internal_err!("StreamOverExec takes one child");
        }
        let input = crate::exec::messages::unwrap_streaming_child(children.swap_remove(0));
        Ok(Arc::new(Self::try_new(
            input,
            self.pipeline.clone(),
            self.time.clone(),
            self.groups.clone(),
            Arc::clone(&self.schema),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(crate::exec::messages::batches_only(
            self.execute_messages(partition, &context)?,
            Arc::clone(&self.schema),
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

impl MessageExec for StreamOverExec {
    /// One output row per input row, in processing order (ROWTIME order), each batch followed
    /// by the progress that was known when it was processed.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!("StreamOverExec has one output partition, asked for {partition}");
        }
        let input = MessageInput {
            source: Arc::clone(&self.input),
            pipeline: Pipeline::default(),
        };
        let inputs = MergedInputs::new(input.open(context)?);
        let reservation = MemoryConsumer::new("StreamOverExec").register(context.memory_pool());
        let op = OverStream {
            single: inputs.len() <= 1 || self.time.is_none(),
            pipeline: self.pipeline.clone(),
            time: self.time.clone(),
            state: OverState::try_new(&self.groups)?,
            schema: Arc::clone(&self.schema),
            pending: Vec::new(),
            pending_bytes: 0,
            arrivals: 0,
            released: Millis::MIN,
            output: VecDeque::new(),
            reservation,
            metrics: OverMetrics::new(&self.metrics),
        };
        let baseline = op.metrics.baseline.clone();
        Ok(Box::pin(OperatorStream::new(op, inputs, baseline)))
    }
}

#[derive(Debug, Clone)]
struct OverMetrics {
    baseline: BaselineMetrics,
    input_rows: Count,
    partitions: Gauge,
}

impl OverMetrics {
    fn new(m: &ExecutionPlanMetricsSet) -> Self {
        Self {
            baseline: BaselineMetrics::new(m, 0),
            input_rows: MetricBuilder::new(m).counter("input_rows", 0),
            partitions: MetricBuilder::new(m).gauge("partitions", 0),
        }
    }
}

/// Rows from one input partition waiting for the other partitions' progress.
struct Pending {
    input: usize,
    arrival: u64,
    batch: RecordBatch,
    times: Vec<Millis>,
}

/// The running operator.
struct OverStream {
    /// One input partition (or no ROWTIME): rows are processed as they arrive.
    single: bool,
    pipeline: Pipeline,
    time: Option<Arc<dyn PhysicalExpr>>,
    state: OverState,
    schema: SchemaRef,
    /// Several partitions: rows not yet released, in arrival order.
    pending: Vec<Pending>,
    pending_bytes: usize,
    arrivals: u64,
    /// Rows with ROWTIME <= this have been released.
    released: Millis,
    output: VecDeque<StreamMessage>,
    reservation: MemoryReservation,
    metrics: OverMetrics,
}

impl OverStream {
    fn times(&self, batch: &RecordBatch) -> Result<Option<Vec<Millis>>> {
        let Some(time) = &self.time else {
            return Ok(None);
        };
        let t = time.evaluate(batch)?.into_array(batch.num_rows())?;
        let t = cast(&t, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let t = t.as_primitive::<TimestampMillisecondType>();
        if t.null_count() > 0 {
            return exec_err!("StreamOverExec: ROWTIME ({time}) is NULL in an input row");
        }
        Ok(Some(t.values().to_vec()))
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch) -> Result<()> {
        self.metrics.input_rows.add(batch.num_rows());
        let Some(batch) = self.pipeline.apply(batch)? else {
            return Ok(());
        };
        let times = self.times(&batch)?;
        match times {
            Some(times) if !self.single => {
                // A row behind the released ROWTIME (from a partition that was idle) goes at once.
                let behind = times.iter().any(|&t| t <= self.released);
                self.pending_bytes += batch.get_array_memory_size();
                self.pending.push(Pending {
                    input,
                    arrival: self.arrivals,
                    batch,
                    times,
                });
                self.arrivals += 1;
                if behind {
                    self.release(self.released)?;
                }
            }
            times => self.process(batch, times.as_deref())?,
        }
        self.track_memory()
    }

    /// Processes rows in order and queues the output batch.
    fn process(&mut self, batch: RecordBatch, times: Option<&[Millis]>) -> Result<()> {
        let windows = self.state.process(&batch, times)?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.extend(windows);
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!(
                "StreamOverExec: output rows do not match the schema: {e}"
            ))
        })?;
        self.metrics.partitions.set(self.state.partitions());
        self.output.push_back(StreamMessage::Batch(out));
        Ok(())
    }

    /// Releases the buffered rows with ROWTIME <= `w`, in (ROWTIME, partition, arrival) order.
    fn release(&mut self, w: Millis) -> Result<()> {
        self.released = self.released.max(w);
        let mut picks: Vec<(Millis, usize, u64, usize, usize)> = Vec::new();
        for (b, p) in self.pending.iter().enumerate() {
            for (r, &t) in p.times.iter().enumerate() {
                if t <= w {
                    picks.push((t, p.input, p.arrival, r, b));
                }
            }
        }
        if picks.is_empty() {
            return Ok(());
        }
        picks.sort_unstable();
        let batches: Vec<&RecordBatch> = self.pending.iter().map(|p| &p.batch).collect();
        let indices: Vec<(usize, usize)> = picks.iter().map(|&(_, _, _, r, b)| (b, r)).collect();
        let released = interleave_record_batch(&batches, &indices)?;
        let times: Vec<Millis> = picks.iter().map(|p| p.0).collect();
        let mut keep = Vec::with_capacity(self.pending.len());
        self.pending_bytes = 0;
        for p in std::mem::take(&mut self.pending) {
            let stay: Vec<bool> = p.times.iter().map(|&t| t > w).collect();
            let n = stay.iter().filter(|s| **s).count();
            if n == 0 {
                continue;
            }
            let p = if n == p.times.len() {
                p
            } else {
                let batch = filter_record_batch(&p.batch, &BooleanArray::from(stay.clone()))?;
                let times = p
                    .times
                    .iter()
                    .zip(&stay)
                    .filter(|(_, s)| **s)
                    .map(|(t, _)| *t)
                    .collect();
                Pending { batch, times, ..p }
            };
            self.pending_bytes += p.batch.get_array_memory_size();
            keep.push(p);
        }
        self.pending = keep;
        self.process(released, Some(&times))
    }

    fn on_progress(&mut self, p: Progress) -> Result<()> {
        if !self.single {
            self.release(p.rowtime)?;
        }
        self.state.expire(p.rowtime);
        self.metrics.partitions.set(self.state.partitions());
        self.output.push_back(StreamMessage::Progress(p));
        self.track_memory()
    }

    fn track_memory(&mut self) -> Result<()> {
        let size = self.state.total_size() + self.pending_bytes;
        self.reservation.try_resize(size).map_err(|e| {
            e.context(format!(
                "StreamOverExec: sliding window state ({size} bytes: rows inside the windows, accumulators, rows waiting for progress up to {})",
                format_millis(self.released)
            ))
        })
    }
}

impl MessageOperator for OverStream {
    fn on_batch(&mut self, input: usize, batch: RecordBatch) -> Result<()> {
        OverStream::on_batch(self, input, batch)
    }

    fn on_progress(&mut self, progress: Progress) -> Result<()> {
        OverStream::on_progress(self, progress)
    }

    fn on_end(&mut self) -> Result<()> {
        self.release(Millis::MAX)
    }

    fn output(&mut self) -> &mut VecDeque<StreamMessage> {
        &mut self.output
    }
}
