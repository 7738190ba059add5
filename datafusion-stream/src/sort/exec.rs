//! `StreamSortExec`: streaming ORDER BY (see [`super`] for the dataflow and the semantics).
//!
//! The plan node is thin; [`SortStream`]'s `poll_next` loop is:
//!
//! ```text
//!  loop:
//!    1. output queued?        → return it (a sorted batch, then the progress that followed it)
//!    2. poll the merged input partitions (pipeline already applied):
//!         Batch    → key of each row: NULL → dropped; behind what was released → Late_Row to
//!                    the error sink; else buffered.  T-sort: release v <= max(v) - within
//!         Progress → buckets: release the buckets it completes; T-sort: at the end, all;
//!                    then pass on the progress the buffered rows allow
//!         end      → release everything, end
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{
    cast, filter_record_batch, interleave_record_batch, lexsort_to_indices, take_record_batch,
    SortColumn,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};

use super::{join_display, SortKey};
use crate::errors::ErrorSink;
use crate::exec::messages::{
    batches_only, is_message_exec, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::exec::operator::{MessageOperator, OperatorStream};
use crate::exec::pipeline::{row_error, Pipeline};
use crate::runtime::StreamRuntime;
use crate::scan::{is_rowtime, Progress, StreamMessage};
use crate::time::{format_millis, Millis, StreamClock};

/// Streaming ORDER BY over a message source (a stream scan or another streaming operator, plus
/// fused stateless stages). One output partition; all input partitions are merged.
#[derive(Debug)]
pub struct StreamSortExec {
    input: Arc<dyn ExecutionPlan>,
    pipeline: Pipeline,
    order: Vec<PhysicalSortExpr>,
    key: SortKey,
    schema: SchemaRef,
    /// `LIMIT n` on a stream: at most n rows per value of the leading key (top-N per window).
    fetch: Option<usize>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamSortExec {
    /// Creates the operator. `input` must speak the message protocol
    /// ([`crate::exec::messages`]); `pipeline` maps its batches to rows of `schema`, on which
    /// `order` is evaluated. `key` says how the leading key of `order` cuts the stream.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        pipeline: Pipeline,
        order: Vec<PhysicalSortExpr>,
        key: SortKey,
        schema: SchemaRef,
    ) -> Result<Self> {
        if !is_message_exec(&input) {
            return internal_err!(
                "StreamSortExec needs a streaming input (scan, window, join), got {}",
                input.name()
            );
        }
        if order.is_empty() {
            return internal_err!("StreamSortExec needs at least one sort key");
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
            order,
            key,
            schema,
            fetch: None,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// Keeps at most `fetch` rows per value of the leading key (`ORDER BY window_end, n DESC
    /// LIMIT 3`: the top 3 of every window).
    pub fn with_fetch_per_key(mut self, fetch: Option<usize>) -> Self {
        self.fetch = fetch;
        self
    }

    /// How the leading key cuts the stream.
    pub fn key(&self) -> SortKey {
        self.key
    }

    /// The ORDER BY.
    pub fn order(&self) -> &[PhysicalSortExpr] {
        &self.order
    }
}

impl DisplayAs for StreamSortExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StreamSortExec: order=[{}], key={}",
            join_display(&self.order),
            self.key
        )?;
        if let Some(n) = self.fetch {
            write!(f, ", fetch_per_key={n}")?;
        }
        if !self.pipeline.is_empty() {
            write!(f, ", pipeline={}", self.pipeline)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamSortExec {
    fn name(&self) -> &str {
        "StreamSortExec"
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
        for s in &self.order {
            if f(&s.expr)? == TreeNodeRecursion::Stop {
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
            return internal_err!("StreamSortExec takes one child");
        }
        let input = crate::exec::messages::unwrap_streaming_child(children.swap_remove(0));
        Ok(Arc::new(
            Self::try_new(
                input,
                self.pipeline.clone(),
                self.order.clone(),
                self.key,
                Arc::clone(&self.schema),
            )?
            .with_fetch_per_key(self.fetch),
        ))
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

impl MessageExec for StreamSortExec {
    /// Sorted batches, each followed by the progress the rows still buffered allow.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!("StreamSortExec has one output partition, asked for {partition}");
        }
        let input = MessageInput {
            source: Arc::clone(&self.input),
            pipeline: self.pipeline.clone(),
        };
        let inputs = MergedInputs::new(input.open(context)?);
        let runtime = StreamRuntime::from_task(context);
        let reservation = MemoryConsumer::new("StreamSortExec").register(context.memory_pool());
        let rowtime_columns = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| is_rowtime(f))
            .map(|(i, _)| i)
            .collect();
        let op = SortStream {
            order: self.order.clone(),
            key: self.key,
            schema: Arc::clone(&self.schema),
            fetch: self.fetch,
            rowtime_columns,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_rows: 0,
            input_progress: Progress::START,
            complete_through: Millis::MIN,
            last_released: Millis::MIN,
            max_seen: Millis::MIN,
            sent: Progress::START,
            output: VecDeque::new(),
            reservation,
            metrics: SortMetrics::new(&self.metrics),
            errors: Arc::clone(&runtime.errors),
            clock: Arc::clone(&runtime.clock),
        };
        let baseline = op.metrics.baseline.clone();
        Ok(Box::pin(OperatorStream::new(op, inputs, baseline)))
    }
}

#[derive(Debug, Clone)]
struct SortMetrics {
    baseline: BaselineMetrics,
    input_rows: Count,
    late_rows: Count,
    null_time_rows: Count,
    buffered_rows: Gauge,
}

impl SortMetrics {
    fn new(m: &ExecutionPlanMetricsSet) -> Self {
        Self {
            baseline: BaselineMetrics::new(m, 0),
            input_rows: MetricBuilder::new(m).counter("input_rows", 0),
            late_rows: MetricBuilder::new(m).counter("late_rows", 0),
            null_time_rows: MetricBuilder::new(m).counter("null_time_rows", 0),
            buffered_rows: MetricBuilder::new(m).gauge("buffered_rows", 0),
        }
    }
}

/// Buffered rows of one input batch.
struct Pending {
    batch: RecordBatch,
    /// Per row: bucket start (buckets) or the sorted value (T-sort).
    keys: Vec<Millis>,
    /// The input's event-time progress when the rows arrived: their event times are later.
    event_floor: Millis,
}

/// The running operator.
struct SortStream {
    order: Vec<PhysicalSortExpr>,
    key: SortKey,
    schema: SchemaRef,
    fetch: Option<usize>,
    /// Output columns that are a ROWTIME (a T-sort writes the sorted value into them).
    rowtime_columns: Vec<usize>,
    /// Rows not yet released, in arrival order.
    pending: Vec<Pending>,
    pending_bytes: usize,
    pending_rows: usize,
    input_progress: Progress,
    /// Buckets: every bucket starting at or before this has been released.
    complete_through: Millis,
    /// T-sort: the largest value released so far.
    last_released: Millis,
    /// T-sort: the largest value accepted so far.
    max_seen: Millis,
    /// The last progress sent.
    sent: Progress,
    output: VecDeque<StreamMessage>,
    reservation: MemoryReservation,
    metrics: SortMetrics,
    errors: Arc<dyn ErrorSink>,
    clock: Arc<dyn StreamClock>,
}

impl SortStream {
    /// The leading key of each row as epoch milliseconds (NULL stays NULL).
    fn leading(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        let lead = &self.order[0].expr;
        let v = lead.evaluate(batch)?.into_array(batch.num_rows())?;
        Ok(cast(&v, &DataType::Timestamp(TimeUnit::Millisecond, None))?)
    }

    fn on_batch(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.metrics.input_rows.add(n);
        let lead = self.leading(&batch)?;
        let lead = lead.as_primitive::<TimestampMillisecondType>();
        let mut keep = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            if lead.is_null(i) {
                self.metrics.null_time_rows.add(1);
                keep.push(false);
                continue;
            }
            let k = lead.value(i);
            let (key, late) = match self.key {
                SortKey::Bucket(b) => {
                    let s = b.start(k);
                    (s, s <= self.complete_through)
                }
                SortKey::TSort { .. } => (k, k < self.last_released),
            };
            if late {
                self.metrics.late_rows.add(1);
                self.report_late(&batch, i, k)?;
                keep.push(false);
                continue;
            }
            keep.push(true);
            keys.push(key);
        }
        if keys.is_empty() {
            return Ok(());
        }
        let batch = if keys.len() == n {
            batch
        } else {
            filter_record_batch(&batch, &BooleanArray::from(keep))?
        };
        if let SortKey::TSort { .. } = self.key {
            if let Some(m) = keys.iter().max() {
                self.max_seen = self.max_seen.max(*m);
            }
        }
        self.pending_bytes += batch.get_array_memory_size();
        self.pending_rows += keys.len();
        self.pending.push(Pending {
            batch,
            keys,
            event_floor: self.input_progress.event_time,
        });
        if let SortKey::TSort { within } = self.key {
            self.release(self.max_seen.saturating_sub(within))?;
            self.push_progress();
        }
        self.track_memory()
    }

    fn report_late(&self, batch: &RecordBatch, row: usize, k: Millis) -> Result<()> {
        let message = match self.key {
            SortKey::Bucket(_) => format!(
                "streaming ORDER BY: a row with leading key {} arrived after its bucket was emitted (ROWTIME progress {})",
                format_millis(k),
                format_millis(self.complete_through)
            ),
            SortKey::TSort { within } => format!(
                "T-sort: a row with sort value {} arrived after {} was emitted (the buffer keeps {} behind the latest value {}); the row is dropped",
                format_millis(k),
                format_millis(self.last_released),
                crate::over::format_duration(within),
                format_millis(self.max_seen)
            ),
        };
        let mut record = row_error(
            &batch.slice(row, 1),
            &DataFusionError::Execution(message),
            self.clock.now(),
        );
        record.name = "Late_Row".to_string();
        if let SortKey::TSort { .. } = self.key {
            // The ROWTIME the row would have had in the re-timed output.
            record.data_rowtime.get_or_insert(k);
        }
        self.errors.report(record)
    }

    /// Releases the buffered rows whose key is at or before `threshold`, sorted.
    fn release(&mut self, threshold: Millis) -> Result<()> {
        match self.key {
            SortKey::Bucket(_) => self.complete_through = self.complete_through.max(threshold),
            SortKey::TSort { .. } => {}
        }
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut max_key = Millis::MIN;
        for (b, p) in self.pending.iter().enumerate() {
            for (r, &k) in p.keys.iter().enumerate() {
                if k <= threshold {
                    picks.push((b, r));
                    max_key = max_key.max(k);
                }
            }
        }
        if picks.is_empty() {
            return Ok(());
        }
        let batches: Vec<&RecordBatch> = self.pending.iter().map(|p| &p.batch).collect();
        let released = interleave_record_batch(&batches, &picks)?;
        let sorted = self.sort(released)?;
        if let SortKey::TSort { .. } = self.key {
            self.last_released = self.last_released.max(max_key);
        }
        // Keep the rest.
        let mut keep = Vec::with_capacity(self.pending.len());
        self.pending_bytes = 0;
        self.pending_rows = 0;
        for p in std::mem::take(&mut self.pending) {
            let stay: Vec<bool> = p.keys.iter().map(|&k| k > threshold).collect();
            let n = stay.iter().filter(|s| **s).count();
            if n == 0 {
                continue;
            }
            let p = if n == p.keys.len() {
                p
            } else {
                let batch = filter_record_batch(&p.batch, &BooleanArray::from(stay.clone()))?;
                let keys = p
                    .keys
                    .iter()
                    .zip(&stay)
                    .filter(|(_, s)| **s)
                    .map(|(k, _)| *k)
                    .collect();
                Pending { batch, keys, ..p }
            };
            self.pending_bytes += p.batch.get_array_memory_size();
            self.pending_rows += p.keys.len();
            keep.push(p);
        }
        self.pending = keep;
        self.output.push_back(StreamMessage::Batch(sorted));
        Ok(())
    }

    /// Sorts rows (given in arrival order) by the ORDER BY, ties in arrival order. A T-sort
    /// also writes the sorted value into the ROWTIME columns.
    fn sort(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let mut columns = Vec::with_capacity(self.order.len() + 1);
        for s in &self.order {
            columns.push(SortColumn {
                values: s.expr.evaluate(&batch)?.into_array(n)?,
                options: Some(s.options),
            });
        }
        columns.push(SortColumn {
            values: Arc::new(UInt32Array::from_iter_values(0..n as u32)),
            options: None,
        });
        let mut indices = lexsort_to_indices(&columns, None)?;
        if let Some(limit) = self.fetch {
            // Keep the first `limit` rows of every leading-key value (rows are now grouped by it).
            let lead = &columns[0].values;
            let mut kept = Vec::with_capacity(indices.len());
            let mut run = 0usize;
            let mut prev: Option<u32> = None;
            for &i in indices.values() {
                let same = prev.is_some_and(|p| {
                    datafusion::arrow::compute::kernels::cmp::not_distinct(
                        &lead.slice(p as usize, 1),
                        &lead.slice(i as usize, 1),
                    )
                    .map(|b| b.value(0))
                    .unwrap_or(false)
                });
                run = if same { run + 1 } else { 1 };
                prev = Some(i);
                if run <= limit {
                    kept.push(i);
                }
            }
            indices = UInt32Array::from(kept);
        }
        let sorted = take_record_batch(&batch, &indices)?;
        if !matches!(self.key, SortKey::TSort { .. }) || self.rowtime_columns.is_empty() {
            return Ok(sorted);
        }
        let v = self.leading(&sorted)?;
        let mut cols = sorted.columns().to_vec();
        for &i in &self.rowtime_columns {
            cols[i] = cast(&v, self.schema.field(i).data_type())?;
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), cols)?)
    }

    fn on_progress(&mut self, p: Progress) -> Result<()> {
        self.input_progress = p;
        match self.key {
            SortKey::Bucket(b) => self.release(b.complete_through(p.rowtime))?,
            SortKey::TSort { .. } if p.rowtime == Millis::MAX => self.release(Millis::MAX)?,
            SortKey::TSort { .. } => {}
        }
        self.push_progress();
        self.track_memory()
    }

    /// Queues the progress the buffered rows allow, when it changed.
    fn push_progress(&mut self) {
        let input = self.input_progress;
        let ended = input.rowtime == Millis::MAX && self.pending.is_empty();
        let rowtime = match self.key {
            _ if ended => Millis::MAX,
            SortKey::Bucket(b) => b.output_progress(input.rowtime),
            SortKey::TSort { .. } if self.last_released == Millis::MIN => Millis::MIN,
            SortKey::TSort { .. } => self.last_released - 1,
        };
        let event_time = self
            .pending
            .iter()
            .map(|p| p.event_floor)
            .fold(input.event_time, Millis::min);
        let next = Progress {
            event_time: event_time.max(self.sent.event_time),
            rowtime: rowtime.max(self.sent.rowtime),
            idle: input.idle,
        };
        if next != self.sent {
            self.sent = next;
            self.output.push_back(StreamMessage::Progress(next));
        }
    }

    fn track_memory(&mut self) -> Result<()> {
        self.metrics.buffered_rows.set(self.pending_rows);
        let size = self.pending_bytes;
        self.reservation.try_resize(size).map_err(|e| {
            e.context(format!(
                "StreamSortExec: {} rows ({size} bytes) buffered for ORDER BY {} ({})",
                self.pending_rows,
                join_display(&self.order),
                self.key
            ))
        })
    }
}

impl MessageOperator for SortStream {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch) -> Result<()> {
        SortStream::on_batch(self, batch)
    }

    fn on_progress(&mut self, progress: Progress) -> Result<()> {
        SortStream::on_progress(self, progress)
    }

    fn on_end(&mut self) -> Result<()> {
        SortStream::on_progress(self, Progress::END)
    }

    fn output(&mut self) -> &mut VecDeque<StreamMessage> {
        &mut self.output
    }
}
