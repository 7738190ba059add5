//! `StreamLookupJoinExec`: a stream joined with a bounded reference table (KDA "reference
//! data"): the table is read to the end once, when the query starts, and hashed on its join
//! keys; then every stream row looks its key up and is emitted at once, with its own ROWTIME.
//!
//! ```text
//!  table plan ──collect──► LookupTable { rows (one batch), key → row numbers }   (Arc)
//!                                   │ lookup
//!  stream p0..pn ─► pipeline ─► MergedInputs ─► matches (+ null-extended stream rows for the
//!                                   │            outer join that keeps the stream) ──► rows
//!                                   └── Progress passes through unchanged ─────────► Progress
//! ```
//!
//! The stream reads nothing until the table is loaded. The loaded table is one immutable
//! [`LookupTable`] behind an `Arc`: reloading the reference data later means building a new
//! one and swapping the `Arc` between two batches (rows already emitted stay as they were).
//! Output order is the stream's arrival order: ascending ROWTIME per input partition.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, internal_err, JoinType, NullEquality, Result};
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
    collect, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning,
    PlanProperties,
};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

use super::logical::Side;
use crate::exec::messages::{
    is_message_exec, Merged, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::scan::StreamMessage;

/// The reference table, loaded: all rows in one batch and a hash index on the join keys.
#[derive(Debug)]
pub struct LookupTable {
    rows: RecordBatch,
    index: HashMap<Box<[u8]>, Vec<u32>>,
    converter: Option<RowConverter>,
    key_types: Vec<DataType>,
    null_equality: NullEquality,
}

fn key_arrays(
    keys: &[Arc<dyn PhysicalExpr>],
    types: &[DataType],
    batch: &RecordBatch,
) -> Result<Vec<ArrayRef>> {
    let n = batch.num_rows();
    keys.iter()
        .zip(types)
        .map(|(k, t)| {
            let a = k.evaluate(batch)?.into_array(n)?;
            Ok(if a.data_type() == t { a } else { cast(&a, t)? })
        })
        .collect()
}

impl LookupTable {
    /// Indexes `batches` (the whole table) on `keys`, converted to `key_types` (the stream
    /// side's key types).
    pub fn try_new(
        schema: SchemaRef,
        batches: &[RecordBatch],
        keys: &[Arc<dyn PhysicalExpr>],
        key_types: Vec<DataType>,
        null_equality: NullEquality,
    ) -> Result<Self> {
        let rows = concat_batches(&schema, batches)?;
        let converter = if key_types.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                key_types
                    .iter()
                    .map(|t| SortField::new(t.clone()))
                    .collect(),
            )?)
        };
        let mut index: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        match &converter {
            None => {
                index.insert(Box::from(&[][..]), (0..rows.num_rows() as u32).collect());
            }
            Some(c) => {
                let arrays = key_arrays(keys, &key_types, &rows)?;
                let converted = c.convert_columns(&arrays)?;
                for i in 0..rows.num_rows() {
                    if null_equality == NullEquality::NullEqualsNothing
                        && arrays.iter().any(|a| a.is_null(i))
                    {
                        continue;
                    }
                    index
                        .entry(Box::from(converted.row(i).as_ref()))
                        .or_default()
                        .push(i as u32);
                }
            }
        }
        Ok(Self {
            rows,
            index,
            converter,
            key_types,
            null_equality,
        })
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.rows.num_rows()
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        self.rows.get_array_memory_size()
            + self
                .index
                .iter()
                .map(|(k, v)| k.len() + v.len() * 4 + 48)
                .sum::<usize>()
    }

    /// For each stream row (by its key arrays), the table rows with an equal key.
    fn candidates(&self, stream_keys: &[ArrayRef], n: usize) -> Result<Vec<(u32, u32)>> {
        let mut pairs = Vec::new();
        match &self.converter {
            None => {
                if let Some(all) = self.index.get(&[][..]) {
                    for i in 0..n as u32 {
                        pairs.extend(all.iter().map(|&j| (i, j)));
                    }
                }
            }
            Some(c) => {
                let converted = c.convert_columns(stream_keys)?;
                for i in 0..n {
                    if self.null_equality == NullEquality::NullEqualsNothing
                        && stream_keys.iter().any(|a| a.is_null(i))
                    {
                        continue;
                    }
                    if let Some(rows) = self.index.get(converted.row(i).as_ref()) {
                        pairs.extend(rows.iter().map(|&j| (i as u32, j)));
                    }
                }
            }
        }
        Ok(pairs)
    }
}

/// A stream joined with a bounded table (see the module docs).
#[derive(Debug)]
pub struct StreamLookupJoinExec {
    stream: MessageInput,
    table: Arc<dyn ExecutionPlan>,
    stream_side: Side,
    stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    table_keys: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    join_type: JoinType,
    null_equality: NullEquality,
    stream_schema: SchemaRef,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamLookupJoinExec {
    /// Creates the operator. `stream` must speak the message protocol; `stream_schema` is its
    /// row schema after the pipeline; the output `schema` is left columns then right columns.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        stream: MessageInput,
        table: Arc<dyn ExecutionPlan>,
        stream_side: Side,
        stream_keys: Vec<Arc<dyn PhysicalExpr>>,
        table_keys: Vec<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        join_type: JoinType,
        null_equality: NullEquality,
        stream_schema: SchemaRef,
        schema: SchemaRef,
    ) -> Result<Self> {
        if !is_message_exec(&stream.source) {
            return internal_err!(
                "StreamLookupJoinExec: the stream input must be a streaming operator, got {}",
                stream.source.name()
            );
        }
        if stream_keys.len() != table_keys.len() {
            return internal_err!("StreamLookupJoinExec: key counts differ");
        }
        let ok = match join_type {
            JoinType::Inner => true,
            JoinType::Left => stream_side == Side::Left,
            JoinType::Right => stream_side == Side::Right,
            _ => false,
        };
        if !ok {
            return internal_err!(
                "StreamLookupJoinExec: {join_type} join with the stream on the {}",
                stream_side.name()
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
            stream,
            table,
            stream_side,
            stream_keys,
            table_keys,
            filter,
            join_type,
            null_equality,
            stream_schema,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for StreamLookupJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<String> = self
            .stream_keys
            .iter()
            .zip(self.table_keys.iter())
            .map(|(s, t)| format!("{s} = {t}"))
            .collect();
        write!(
            f,
            "StreamLookupJoinExec: type={}, stream={}, on=[{}]",
            self.join_type,
            self.stream_side.name(),
            on.join(", ")
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter={filter}")?;
        }
        if !self.stream.pipeline.is_empty() {
            write!(f, ", pipeline={}", self.stream.pipeline)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamLookupJoinExec {
    fn name(&self) -> &str {
        "StreamLookupJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::UnspecifiedDistribution; 2]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false, false]
    }

    /// The stream first, then the table.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.stream.source, &self.table]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut all: Vec<&Arc<dyn PhysicalExpr>> = Vec::new();
        all.extend(self.stream_keys.iter());
        all.extend(self.table_keys.iter());
        all.extend(self.filter.iter());
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
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [source, table]: [Arc<dyn ExecutionPlan>; 2] = match children.try_into() {
            Ok(c) => c,
            Err(_) => return internal_err!("StreamLookupJoinExec takes two children"),
        };
        let source = crate::exec::messages::unwrap_streaming_child(source);
        Ok(Arc::new(Self::try_new(
            MessageInput {
                source,
                pipeline: self.stream.pipeline.clone(),
            },
            table,
            self.stream_side,
            self.stream_keys.clone(),
            self.table_keys.clone(),
            self.filter.clone(),
            self.join_type,
            self.null_equality,
            Arc::clone(&self.stream_schema),
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

impl MessageExec for StreamLookupJoinExec {
    /// Joined rows as the stream's rows arrive; the stream's progress, unchanged.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!(
                "StreamLookupJoinExec has one output partition, asked for {partition}"
            );
        }
        let key_types = self
            .stream_keys
            .iter()
            .map(|k| k.data_type(&self.stream_schema))
            .collect::<Result<Vec<_>>>()?;
        let table = Arc::clone(&self.table);
        let table_keys = self.table_keys.clone();
        let null_equality = self.null_equality;
        let task = Arc::clone(context);
        let types = key_types.clone();
        let load = async move {
            let schema = table.schema();
            let batches = collect(table, task).await?;
            LookupTable::try_new(schema, &batches, &table_keys, types, null_equality)
        }
        .boxed();
        let m = &self.metrics;
        Ok(Box::pin(LookupStream {
            state: LookupState::Loading(load),
            input: MergedInputs::new(self.stream.open(context)?),
            stream_side: self.stream_side,
            stream_keys: self.stream_keys.clone(),
            filter: self.filter.clone(),
            outer: self.join_type != JoinType::Inner,
            schema: Arc::clone(&self.schema),
            reservation: MemoryConsumer::new("StreamLookupJoinExec")
                .register(context.memory_pool()),
            metrics: LookupMetrics {
                baseline: BaselineMetrics::new(m, 0),
                stream_rows: MetricBuilder::new(m).counter("stream_rows", 0),
                matches: MetricBuilder::new(m).counter("matches", 0),
                table_rows: MetricBuilder::new(m).gauge("table_rows", 0),
            },
            done: false,
        }))
    }
}

struct LookupMetrics {
    baseline: BaselineMetrics,
    stream_rows: Count,
    matches: Count,
    table_rows: Gauge,
}

enum LookupState {
    /// Reading the table to the end.
    Loading(BoxFuture<'static, Result<LookupTable>>),
    /// Joining stream rows against the loaded table (swap the `Arc` to reload).
    Running(Arc<LookupTable>),
}

struct LookupStream {
    state: LookupState,
    input: MergedInputs,
    stream_side: Side,
    stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    outer: bool,
    schema: SchemaRef,
    reservation: MemoryReservation,
    metrics: LookupMetrics,
    done: bool,
}

impl LookupStream {
    /// Output columns for (stream row, table row) index pairs; a NULL table index gives a
    /// null-extended row.
    fn assemble(
        &self,
        table: &LookupTable,
        batch: &RecordBatch,
        stream_idx: &UInt32Array,
        table_idx: &UInt32Array,
    ) -> Result<RecordBatch> {
        let stream_cols = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), stream_idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let table_cols = table
            .rows
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), table_idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let columns: Vec<ArrayRef> = match self.stream_side {
            Side::Left => stream_cols.into_iter().chain(table_cols).collect(),
            Side::Right => table_cols.into_iter().chain(stream_cols).collect(),
        };
        if columns.len() != self.schema.fields().len() {
            return internal_err!(
                "StreamLookupJoinExec: {} columns for an output of {}",
                columns.len(),
                self.schema.fields().len()
            );
        }
        let columns = columns
            .into_iter()
            .zip(self.schema.fields().iter())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    fn join(&self, table: &LookupTable, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let n = batch.num_rows();
        self.metrics.stream_rows.add(n);
        let keys = key_arrays(&self.stream_keys, &table.key_types, &batch)?;
        let mut pairs = table.candidates(&keys, n)?;
        if let Some(filter) = &self.filter {
            if !pairs.is_empty() {
                let s = UInt32Array::from_iter_values(pairs.iter().map(|p| p.0));
                let t = UInt32Array::from_iter_values(pairs.iter().map(|p| p.1));
                let candidates = self.assemble(table, &batch, &s, &t)?;
                let mask = filter
                    .evaluate(&candidates)?
                    .into_array(candidates.num_rows())?;
                let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
                    return exec_err!(
                        "stream-table join: the ON condition {filter} is not a boolean"
                    );
                };
                pairs = pairs
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
                    .map(|(_, p)| p)
                    .collect();
            }
        }
        self.metrics.matches.add(pairs.len());
        let (mut s_idx, mut t_idx): (Vec<u32>, Vec<Option<u32>>) = (Vec::new(), Vec::new());
        let mut next = 0;
        for i in 0..n as u32 {
            let mut any = false;
            while next < pairs.len() && pairs[next].0 == i {
                s_idx.push(i);
                t_idx.push(Some(pairs[next].1));
                next += 1;
                any = true;
            }
            if !any && self.outer {
                s_idx.push(i);
                t_idx.push(None);
            }
        }
        if s_idx.is_empty() {
            return Ok(None);
        }
        let out = self.assemble(
            table,
            &batch,
            &UInt32Array::from(s_idx),
            &UInt32Array::from(t_idx),
        )?;
        Ok(Some(out))
    }
}

impl Stream for LookupStream {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let table = match &mut this.state {
                LookupState::Loading(load) => match load.poll_unpin(cx) {
                    Poll::Ready(Ok(t)) => {
                        this.metrics.table_rows.set(t.num_rows());
                        if let Err(e) = this.reservation.try_resize(t.size()) {
                            this.done = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                        this.state = LookupState::Running(Arc::new(t));
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(e.context(
                            "stream-table join: loading the table when the query started",
                        ))));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                LookupState::Running(t) => Arc::clone(t),
            };
            match this.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(Merged::Batch { batch, .. }))) => {
                    let _t = this.metrics.baseline.elapsed_compute().timer();
                    match this.join(&table, batch) {
                        Ok(Some(out)) => {
                            this.metrics.baseline.record_output(out.num_rows());
                            return Poll::Ready(Some(Ok(StreamMessage::Batch(out))));
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            this.done = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                Poll::Ready(Some(Ok(Merged::Progress(p)))) => {
                    return Poll::Ready(Some(Ok(StreamMessage::Progress(p))))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
