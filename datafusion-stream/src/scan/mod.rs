//! Stream tables: a [`StreamSource`] registered as an unbounded DataFusion table, and the scan
//! that turns source events into rows with ROWTIME plus per-partition watermarks.
//!
//! ```text
//!              ┌──────────────────── StreamScanExec (one partition per source partition) ─────┐
//!  source p ──►│ SourceEvent::Data ──► stamp ROWTIME ──► batch ──► StreamMessage::Batch       │
//!              │ SourceEvent::Watermark/Idle ─┐                                               │
//!  clock ticks►│ (ROWTIME-from-clock sources) ┴─► watermark state ──► StreamMessage::Progress │
//!              └──────────────────────────────────────────────────────────────────────────────┘
//!   state per partition: last ROWTIME, max event time, event/rowtime watermarks, idle flag
//! ```
//!
//! `ExecutionPlan::execute` yields only the batches, so any DataFusion operator can consume a
//! stream table. Streaming operators (windows) call [`StreamScanExec::execute_messages`]
//! instead and see each partition's watermarks in order with its rows: a watermark never
//! overtakes the rows it covers, because it travels in the same stream, after them.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::{cast, max};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions, SchedulingType,
};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::runtime::StreamRuntime;
use crate::source::{RowtimeMode, SourceContext, SourceEvent, StreamSource};
use crate::time::{
    format_millis, Millis, StreamClock, ROWTIME_METADATA_KEY, WATERMARK_MAX, WATERMARK_MIN,
};

/// A declared event-time column and its bounded-out-of-orderness watermark strategy
/// (`WATERMARK FOR col AS col - INTERVAL ...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventTime {
    /// The timestamp column.
    pub column: String,
    /// How far behind the largest event time seen the watermark stays.
    pub max_delay: Millis,
}

/// What flows out of a stream partition to streaming operators.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// Rows (with ROWTIME, projected as the scan was asked).
    Batch(RecordBatch),
    /// The partition's watermarks after everything before this message.
    Progress(Progress),
}

/// A partition's watermarks: no row with event time `<= event_time`, or ROWTIME `<= rowtime`,
/// will follow. An idle partition does not hold back the combined watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Event-time watermark ([`WATERMARK_MIN`] when the stream declares no event time).
    pub event_time: Millis,
    /// ROWTIME watermark.
    pub rowtime: Millis,
    /// The partition is idle.
    pub idle: bool,
}

impl Progress {
    /// Nothing known yet.
    pub const START: Progress = Progress {
        event_time: WATERMARK_MIN,
        rowtime: WATERMARK_MIN,
        idle: false,
    };
    /// End of input.
    pub const END: Progress = Progress {
        event_time: WATERMARK_MAX,
        rowtime: WATERMARK_MAX,
        idle: false,
    };
}

/// An unbounded stream registered as a DataFusion table. Its schema is the source's columns
/// followed by ROWTIME (`TIMESTAMP(3) NOT NULL`, marked with [`ROWTIME_METADATA_KEY`]).
#[derive(Debug, Clone)]
pub struct StreamTable {
    name: String,
    source: Arc<dyn StreamSource>,
    schema: SchemaRef,
    event_time: Option<(EventTime, usize)>,
    idle_timeout: Option<Duration>,
}

impl StreamTable {
    /// A stream table over `source`, with ROWTIME named `rowtime_column` and optional event time.
    pub fn try_new(
        name: impl Into<String>,
        source: Arc<dyn StreamSource>,
        rowtime_column: &str,
        event_time: Option<EventTime>,
    ) -> Result<Self> {
        let name = name.into();
        let source_schema = source.schema();
        if source_schema.column_with_name(rowtime_column).is_some() {
            return plan_err!(
                "stream '{name}': column '{rowtime_column}' is reserved for ROWTIME, the system column every stream has"
            );
        }
        let mut fields: Vec<Field> = source_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(rowtime_field(rowtime_column));
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            source_schema.metadata().clone(),
        ));
        let event_time = match event_time {
            None => None,
            Some(et) => {
                let Some((idx, field)) = source_schema.column_with_name(&et.column) else {
                    return plan_err!(
                        "stream '{name}': WATERMARK FOR '{}': no such column; columns are {}",
                        et.column,
                        column_list(&source_schema)
                    );
                };
                if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
                    return plan_err!(
                        "stream '{name}': WATERMARK FOR '{}': the column is {}, an event-time column must be a TIMESTAMP",
                        et.column,
                        field.data_type()
                    );
                }
                if et.max_delay < 0 {
                    return plan_err!(
                        "stream '{name}': WATERMARK FOR '{}': the delay must not be negative",
                        et.column
                    );
                }
                Some((et, idx))
            }
        };
        Ok(Self {
            name,
            source,
            schema,
            event_time,
            idle_timeout: None,
        })
    }

    /// A partition with no rows for this long (processing time) stops holding back the
    /// watermark until it has rows again. Overrides the context default.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn StreamSource> {
        &self.source
    }

    /// The declared event time, if any.
    pub fn event_time(&self) -> Option<&EventTime> {
        self.event_time.as_ref().map(|(e, _)| e)
    }

    /// Name of the ROWTIME column.
    pub fn rowtime_column(&self) -> &str {
        self.schema.fields()[self.schema.fields().len() - 1].name()
    }
}

/// The ROWTIME field.
pub fn rowtime_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )
    .with_metadata([(ROWTIME_METADATA_KEY.to_string(), "true".to_string())].into())
}

/// True if `field` is a stream's ROWTIME.
pub fn is_rowtime(field: &Field) -> bool {
    field.metadata().contains_key(ROWTIME_METADATA_KEY)
}

fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(StreamScanExec::try_new(
            self.clone(),
            projection.cloned(),
        )?))
    }
}

/// Scans a [`StreamTable`]: one output partition per source partition.
#[derive(Debug, Clone)]
pub struct StreamScanExec {
    table: StreamTable,
    projection: Option<Vec<usize>>,
    projected_schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamScanExec {
    /// Scans `table`, keeping the columns in `projection` (all when `None`).
    pub fn try_new(table: StreamTable, projection: Option<Vec<usize>>) -> Result<Self> {
        let projected_schema = match &projection {
            Some(p) => Arc::new(table.schema.project(p)?),
            None => table.schema.clone(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(projected_schema.clone()),
            Partitioning::UnknownPartitioning(table.source.partition_count()),
            EmissionType::Incremental,
            Boundedness::Unbounded {
                requires_infinite_memory: false,
            },
        )
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(Self {
            table,
            projection,
            projected_schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The table scanned.
    pub fn table(&self) -> &StreamTable {
        &self.table
    }

    /// Rows and watermarks of one partition, in order.
    pub fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<StreamMessage>>> {
        let runtime = StreamRuntime::from_task(context);
        let source_ctx = SourceContext {
            clock: runtime.clock.clone(),
            batch_size: context.session_config().batch_size(),
            errors: Arc::new(crate::errors::InputErrors(Arc::clone(&runtime.errors))),
        };
        let events = self.table.source.open(partition, &source_ctx)?;
        let mode = self.table.source.rowtime_mode();
        let ticks = match mode {
            RowtimeMode::Ingest => Some(runtime.clock.ticks(runtime.tick_interval)),
            RowtimeMode::Supplied => None,
        };
        let idle_timeout = self
            .table
            .idle_timeout
            .or(runtime.idle_timeout)
            .map(|d| d.as_millis() as Millis);
        let now = runtime.clock.now();
        Ok(Box::pin(PartitionIngest {
            source_rows: MetricBuilder::new(&self.metrics).counter("source_rows", partition),
            stream_name: self.table.name.clone(),
            partition,
            events,
            ticks,
            clock: runtime.clock.clone(),
            mode,
            full_schema: self.table.schema.clone(),
            projection: self.projection.clone(),
            projected_schema: self.projected_schema.clone(),
            event_time: self
                .table
                .event_time
                .as_ref()
                .map(|(e, idx)| (*idx, e.max_delay)),
            idle_timeout,
            last_rowtime: WATERMARK_MIN,
            max_event: WATERMARK_MIN,
            progress: Progress::START,
            sent: Progress::START,
            last_data_at: now,
            pending: VecDeque::new(),
            done: false,
        }))
    }
}

impl DisplayAs for StreamScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "StreamScanExec: stream={}, partitions={}",
            self.table.name,
            self.table.source.partition_count()
        )?;
        if let Some((et, _)) = &self.table.event_time {
            write!(f, ", watermark={} - {}ms", et.column, et.max_delay)?;
        }
        write!(
            f,
            ", rowtime={}",
            match self.table.source.rowtime_mode() {
                RowtimeMode::Ingest => "ingest",
                RowtimeMode::Supplied => "supplied",
            }
        )?;
        if self.projection.is_some() {
            write!(f, ", projection=[{}]", column_list(&self.projected_schema))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamScanExec {
    fn name(&self) -> &str {
        "StreamScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
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
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return exec_err!("StreamScanExec has no children");
        }
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(crate::exec::messages::batches_only(
            self.execute_messages(partition, &context)?,
            self.projected_schema.clone(),
        ))
    }
}

/// Per-partition ingest state: see the module docs.
struct PartitionIngest {
    /// Rows read from the source (metric `source_rows`).
    source_rows: Count,
    stream_name: String,
    partition: usize,
    events: BoxStream<'static, Result<SourceEvent>>,
    ticks: Option<BoxStream<'static, Millis>>,
    clock: Arc<dyn StreamClock>,
    mode: RowtimeMode,
    full_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    projected_schema: SchemaRef,
    /// (column index in the source schema, max delay)
    event_time: Option<(usize, Millis)>,
    idle_timeout: Option<Millis>,
    last_rowtime: Millis,
    max_event: Millis,
    progress: Progress,
    sent: Progress,
    last_data_at: Millis,
    pending: VecDeque<StreamMessage>,
    done: bool,
}

impl PartitionIngest {
    fn on_event(&mut self, event: SourceEvent) -> Result<()> {
        match event {
            SourceEvent::Data { batch, rowtime } => self.on_data(batch, rowtime)?,
            SourceEvent::Watermark(t) => {
                self.progress.event_time = self.progress.event_time.max(t);
            }
            SourceEvent::RowtimeBound(t) => {
                self.progress.rowtime = self.progress.rowtime.max(t.saturating_sub(1));
                self.last_rowtime = self.last_rowtime.max(t);
            }
            SourceEvent::Idle => self.progress.idle = true,
        }
        self.flush_progress();
        Ok(())
    }

    fn on_tick(&mut self, now: Millis) {
        if self.mode == RowtimeMode::Ingest {
            // Rows ingested from now on get ROWTIME >= now.
            self.progress.rowtime = self.progress.rowtime.max(now.saturating_sub(1));
        }
        if let Some(timeout) = self.idle_timeout {
            if now.saturating_sub(self.last_data_at) >= timeout {
                self.progress.idle = true;
            }
        }
        self.flush_progress();
    }

    fn flush_progress(&mut self) {
        if self.progress != self.sent {
            self.sent = self.progress;
            self.pending
                .push_back(StreamMessage::Progress(self.progress));
        }
    }

    fn on_data(&mut self, batch: RecordBatch, rowtime: Option<ArrayRef>) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.source_rows.add(n);
        let rowtime: ArrayRef = match rowtime {
            None => {
                let now = self.clock.now().max(self.last_rowtime);
                self.last_rowtime = now;
                Arc::new(TimestampMillisecondArray::from_value(now, n))
            }
            Some(supplied) => {
                let supplied = cast(&supplied, &DataType::Timestamp(TimeUnit::Millisecond, None))
                    .map_err(|e| {
                    DataFusionError::Execution(format!(
                        "stream '{}' partition {}: ROWTIME is not a timestamp: {e}",
                        self.stream_name, self.partition
                    ))
                })?;
                let values = supplied.as_primitive::<TimestampMillisecondType>();
                if values.len() != n {
                    return exec_err!(
                        "stream '{}' partition {}: {} ROWTIME values for {} rows",
                        self.stream_name,
                        self.partition,
                        values.len(),
                        n
                    );
                }
                for i in 0..n {
                    if values.is_null(i) {
                        return exec_err!(
                            "stream '{}' partition {}: ROWTIME is NULL in row {i} of a batch; ROWTIME is NOT NULL",
                            self.stream_name,
                            self.partition
                        );
                    }
                    let t = values.value(i);
                    if t < self.last_rowtime {
                        return exec_err!(
                            "stream '{}' partition {}: ROWTIME went backwards in row {i} of a batch: {} after {}; ROWTIME must not decrease",
                            self.stream_name,
                            self.partition,
                            format_millis(t),
                            format_millis(self.last_rowtime)
                        );
                    }
                    self.last_rowtime = t;
                }
                Arc::new(values.clone().with_timezone_opt(None::<Arc<str>>))
            }
        };
        // Rows with an equal ROWTIME may still follow.
        self.progress.rowtime = self
            .progress
            .rowtime
            .max(self.last_rowtime.saturating_sub(1));
        if let Some((idx, delay)) = self.event_time {
            let col = cast(
                batch.column(idx),
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )?;
            if let Some(m) = max(col.as_primitive::<TimestampMillisecondType>()) {
                self.max_event = self.max_event.max(m);
                self.progress.event_time = self
                    .progress
                    .event_time
                    .max(self.max_event.saturating_sub(delay));
            }
        }
        self.progress.idle = false;
        self.last_data_at = self.clock.now();
        let mut columns = batch.columns().to_vec();
        columns.push(rowtime);
        let full = RecordBatch::try_new(self.full_schema.clone(), columns).map_err(|e| {
            DataFusionError::Execution(format!(
                "stream '{}' partition {}: rows do not match the stream's schema: {e}",
                self.stream_name, self.partition
            ))
        })?;
        let out = match &self.projection {
            Some(p) => full.project(p)?,
            None => full,
        };
        debug_assert_eq!(
            out.schema().fields().len(),
            self.projected_schema.fields().len()
        );
        self.pending.push_back(StreamMessage::Batch(out));
        Ok(())
    }
}

impl Stream for PartitionIngest {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(m) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(m)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.events.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(event))) => {
                    if let Err(e) = this.on_event(event) {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    // A failed source ends the partition: no END watermark follows an error.
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    this.pending
                        .push_back(StreamMessage::Progress(Progress::END));
                    continue;
                }
                Poll::Pending => {}
            }
            if let Some(ticks) = this.ticks.as_mut() {
                match ticks.poll_next_unpin(cx) {
                    Poll::Ready(Some(now)) => {
                        this.on_tick(now);
                        continue;
                    }
                    Poll::Ready(None) => this.ticks = None,
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        }
    }
}

impl crate::exec::messages::MessageExec for StreamScanExec {
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<crate::exec::messages::MessageStream> {
        StreamScanExec::execute_messages(self, partition, context)
    }
}
