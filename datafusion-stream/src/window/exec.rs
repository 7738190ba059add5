//! `StreamWindowAggExec`: the streaming window aggregate (see the module docs of
//! [`crate::window`] for the dataflow and the semantics).
//!
//! The plan node is thin; the work happens in [`WindowStream`], whose `poll_next` loop is:
//!
//! ```text
//!  loop:
//!    1. a closed window is queued?            → return it
//!    2. every input ended?                    → fire all windows, then end
//!    3. poll each input once (round robin):
//!         Batch    → pipeline → assign windows → update (or count late / NULL-time rows)
//!         Progress → remember the partition's watermark; combined = min over non-idle ones;
//!                    fire every window with end - 1 <= combined
//!    4. no input was ready                    → Pending
//! ```
//!
//! State (all of it Arrow-convertible for checkpoints, see
//! [`super::aggregator::GroupedAggregator::into_state`]): the open windows (TUMBLE/HOP/STAGGER:
//! `BTreeMap<window start, GroupedAggregator>`; SESSION: open session intervals per partition
//! key plus the rows of open sessions), the per-input watermarks, and the fired watermark. A
//! window's state is freed when it fires; memory is tracked by a `MemoryReservation`, so it is
//! bounded by open windows × keys, not by the number of events.
//!
//! STAGGER keeps, besides the windows by start, which windows each key has open:
//!
//! ```text
//!  row (key, t) ─► RowConverter ─► open: HashMap<key row bytes, [starts]> ─┬─ t in [s, s+size) of an open
//!                                                                           │  window of the key → window s
//!                                                                           ├─ t <= watermark → late
//!                                                                           └─ else open [t, t+size):
//!                                                                              windows[t] (aggregator keyed
//!                                                                              by the GROUP BY keys), opened[t]
//!  watermark >= s + size - 1 ─► windows[s] fires; every key in opened[s] forgets s (and is dropped
//!                               from `open` when it has no window left, so keys do not pile up)
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, max, min};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_err, internal_err, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};

use super::aggregator::{AggInput, AggregateSpec, GroupedAggregator};
use super::{TimeDomain, WindowKind};
use crate::exec::messages::{
    is_message_exec, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::exec::operator::{MessageOperator, OperatorStream};
use crate::exec::pipeline::Pipeline;
use crate::runtime::{LateRowPolicy, StreamRuntime};
use crate::scan::{Progress, StreamMessage};
use crate::time::{format_millis, Millis, WATERMARK_MIN};

/// A GROUP BY item, physically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputGroup {
    /// `window_start`.
    WindowStart,
    /// `window_end`.
    WindowEnd,
    /// The i-th key expression.
    Key(usize),
}

/// Streaming window aggregate over a message source (a stream scan or another streaming
/// operator, plus fused stateless stages).
#[derive(Debug)]
pub struct StreamWindowAggExec {
    scan: Arc<dyn ExecutionPlan>,
    pipeline: Pipeline,
    kind: WindowKind,
    domain: TimeDomain,
    time: Arc<dyn PhysicalExpr>,
    partition_keys: Vec<Arc<dyn PhysicalExpr>>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    group: Vec<OutputGroup>,
    spec: AggregateSpec,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamWindowAggExec {
    /// Creates the operator. `scan` must speak the message protocol
    /// ([`crate::exec::messages`]); `pipeline` maps its batches
    /// to the rows `time`, `keys` and the aggregates are evaluated on.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        scan: Arc<dyn ExecutionPlan>,
        pipeline: Pipeline,
        kind: WindowKind,
        domain: TimeDomain,
        time: Arc<dyn PhysicalExpr>,
        partition_keys: Vec<Arc<dyn PhysicalExpr>>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        group: Vec<OutputGroup>,
        spec: AggregateSpec,
        schema: SchemaRef,
    ) -> Result<Self> {
        if !is_message_exec(&scan) {
            return internal_err!(
                "StreamWindowAggExec needs a streaming input (scan, window, join), got {}",
                scan.name()
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
            scan,
            pipeline,
            kind,
            domain,
            time,
            partition_keys,
            keys,
            group,
            spec,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The window.
    pub fn kind(&self) -> WindowKind {
        self.kind
    }
}

impl DisplayAs for StreamWindowAggExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let group: Vec<String> = self
            .group
            .iter()
            .map(|g| match g {
                OutputGroup::WindowStart => "window_start".to_string(),
                OutputGroup::WindowEnd => "window_end".to_string(),
                OutputGroup::Key(i) => self.keys[*i].to_string(),
            })
            .collect();
        let aggr: Vec<&str> = self.spec.aggregates.iter().map(|a| a.name()).collect();
        write!(
            f,
            "StreamWindowAggExec: window={} on {} ({:?}), group=[{}], aggr=[{}]",
            self.kind,
            self.time,
            self.domain,
            group.join(", "),
            aggr.join(", ")
        )?;
        if !self.partition_keys.is_empty() {
            let keys: Vec<String> = self.partition_keys.iter().map(|k| k.to_string()).collect();
            write!(f, ", partition_by=[{}]", keys.join(", "))?;
        }
        if !self.pipeline.is_empty() {
            write!(f, ", pipeline={}", self.pipeline)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamWindowAggExec {
    fn name(&self) -> &str {
        "StreamWindowAggExec"
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
        vec![&self.scan]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut all: Vec<&Arc<dyn PhysicalExpr>> = vec![&self.time];
        all.extend(self.partition_keys.iter());
        all.extend(self.keys.iter());
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
            return internal_err!("StreamWindowAggExec takes one child");
        }
        let scan = crate::exec::messages::unwrap_streaming_child(children.swap_remove(0));
        Ok(Arc::new(Self::try_new(
            scan,
            self.pipeline.clone(),
            self.kind,
            self.domain,
            Arc::clone(&self.time),
            self.partition_keys.clone(),
            self.keys.clone(),
            self.group.clone(),
            self.spec.clone(),
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

impl MessageExec for StreamWindowAggExec {
    /// Closed windows, each followed by the progress that closed it: every later output row
    /// has a window end (and so a ROWTIME, where the end becomes ROWTIME) past that progress.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!(
                "StreamWindowAggExec has one output partition, asked for {partition}"
            );
        }
        let input = MessageInput {
            source: Arc::clone(&self.scan),
            pipeline: Pipeline::default(),
        };
        let inputs = MergedInputs::new(input.open(context)?);
        let runtime = StreamRuntime::from_task(context);
        let reservation =
            MemoryConsumer::new("StreamWindowAggExec").register(context.memory_pool());
        let session = match self.kind {
            WindowKind::Session { gap } => Some(SessionState::try_new(self, gap)?),
            _ => None,
        };
        let stagger = match self.kind {
            WindowKind::Stagger { size } => Some(StaggerState::try_new(&self.spec, size)?),
            _ => None,
        };
        let op = WindowStream {
            plan: Plan {
                pipeline: self.pipeline.clone(),
                kind: self.kind,
                time: Arc::clone(&self.time),
                partition_keys: self.partition_keys.clone(),
                keys: self.keys.clone(),
                group: self.group.clone(),
                spec: self.spec.clone(),
                schema: Arc::clone(&self.schema),
                domain: self.domain,
            },
            watermark: WATERMARK_MIN,
            windows: BTreeMap::new(),
            windows_bytes: 0,
            session,
            stagger,
            output: VecDeque::new(),
            reservation,
            late_policy: runtime.late_rows,
            metrics: WindowMetrics::new(&self.metrics),
        };
        let baseline = op.metrics.baseline.clone();
        Ok(Box::pin(OperatorStream::new(op, inputs, baseline)))
    }
}

#[derive(Debug, Clone)]
struct WindowMetrics {
    baseline: BaselineMetrics,
    input_rows: Count,
    late_rows: Count,
    null_time_rows: Count,
    windows_emitted: Count,
    watermark: Gauge,
}

impl WindowMetrics {
    fn new(m: &ExecutionPlanMetricsSet) -> Self {
        Self {
            baseline: BaselineMetrics::new(m, 0),
            input_rows: MetricBuilder::new(m).counter("input_rows", 0),
            late_rows: MetricBuilder::new(m).counter("late_rows", 0),
            null_time_rows: MetricBuilder::new(m).counter("null_time_rows", 0),
            windows_emitted: MetricBuilder::new(m).counter("windows_emitted", 0),
            watermark: MetricBuilder::new(m).gauge("watermark_ms", 0),
        }
    }
}

/// What the stream needs of the plan.
#[derive(Debug)]
struct Plan {
    pipeline: Pipeline,
    kind: WindowKind,
    domain: TimeDomain,
    time: Arc<dyn PhysicalExpr>,
    partition_keys: Vec<Arc<dyn PhysicalExpr>>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    group: Vec<OutputGroup>,
    spec: AggregateSpec,
    schema: SchemaRef,
}

impl Plan {
    /// Assembles an output batch from window bounds, key columns and aggregate columns.
    fn output(
        &self,
        starts: ArrayRef,
        ends: ArrayRef,
        keys: &[ArrayRef],
        aggs: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (i, g) in self.group.iter().enumerate() {
            let field = self.schema.field(i);
            cols.push(match g {
                OutputGroup::WindowStart => cast(&starts, field.data_type())?,
                OutputGroup::WindowEnd => cast(&ends, field.data_type())?,
                OutputGroup::Key(k) => Arc::clone(&keys[*k]),
            });
        }
        cols.extend(aggs);
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), cols)?)
    }

    fn times(&self, batch: &RecordBatch) -> Result<TimestampMillisecondArray> {
        let t = self.time.evaluate(batch)?.into_array(batch.num_rows())?;
        let t = cast(&t, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        Ok(t.as_primitive::<TimestampMillisecondType>().clone())
    }
}

/// Session windows: open session intervals per partition key and the rows of open sessions.
struct SessionState {
    gap: Millis,
    key_values: Option<Box<dyn GroupValues>>,
    key_ids: Vec<usize>,
    /// Per partition key: disjoint `[start, end)` intervals sorted by start.
    open: Vec<Vec<(Millis, Millis)>>,
    /// Rows of open sessions: (inputs, times, partition key ids).
    buffer: Vec<(AggInput, Vec<Millis>, Vec<usize>)>,
    /// Bytes of `buffer`.
    buffer_bytes: usize,
    /// Number of open session intervals over all keys.
    intervals: usize,
    /// Aggregates keyed by (window_start, window_end, keys...).
    fire_spec: AggregateSpec,
    /// Lower bound of the earliest session end.
    next_end: Millis,
}

impl SessionState {
    fn try_new(exec: &StreamWindowAggExec, gap: Millis) -> Result<Self> {
        let mut fields = vec![
            Field::new("__window_start", DataType::Int64, false),
            Field::new("__window_end", DataType::Int64, false),
        ];
        fields.extend(
            exec.spec
                .key_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone()),
        );
        let fire_spec = AggregateSpec {
            key_schema: Arc::new(Schema::new(fields)),
            ..exec.spec.clone()
        };
        Ok(Self {
            gap,
            key_values: None,
            key_ids: Vec::new(),
            open: Vec::new(),
            buffer: Vec::new(),
            buffer_bytes: 0,
            intervals: 0,
            fire_spec,
            next_end: Millis::MAX,
        })
    }

    /// Bytes held, kept up to date incrementally (this runs for every batch).
    fn size(&self) -> usize {
        self.buffer_bytes
            + self.intervals * std::mem::size_of::<(Millis, Millis)>()
            + self.open.len() * std::mem::size_of::<Vec<(Millis, Millis)>>()
            + self.key_values.as_ref().map(|k| k.size()).unwrap_or(0)
    }

    fn entry_bytes((input, times, kids): &(AggInput, Vec<Millis>, Vec<usize>)) -> usize {
        input
            .keys
            .iter()
            .chain(input.args.iter().flatten())
            .map(|a| a.get_array_memory_size())
            .sum::<usize>()
            + times.len() * std::mem::size_of::<Millis>()
            + kids.len() * std::mem::size_of::<usize>()
    }

    /// Buffers rows of open sessions.
    fn buffer_rows(&mut self, entry: (AggInput, Vec<Millis>, Vec<usize>)) {
        self.buffer_bytes += Self::entry_bytes(&entry);
        self.buffer.push(entry);
    }

    /// Partition key id per row.
    fn intern(&mut self, keys: &[ArrayRef], n: usize) -> Result<Vec<usize>> {
        if keys.is_empty() {
            if self.open.is_empty() {
                self.open.push(Vec::new());
            }
            return Ok(vec![0; n]);
        }
        if self.key_values.is_none() {
            let fields: Vec<Field> = keys
                .iter()
                .enumerate()
                .map(|(i, a)| Field::new(format!("p{i}"), a.data_type().clone(), true))
                .collect();
            self.key_values = Some(new_group_values(
                Arc::new(Schema::new(fields)),
                &GroupOrdering::None,
            )?);
        }
        let Some(kv) = self.key_values.as_mut() else {
            return internal_err!("session key state missing");
        };
        kv.intern(keys, &mut self.key_ids)?;
        if self.open.len() < kv.len() {
            self.open.resize_with(kv.len(), Vec::new);
        }
        Ok(self.key_ids.clone())
    }

    /// Adds `t` to key `k`'s sessions; returns false if it forms a session that already ended
    /// behind the watermark (a late row).
    fn insert(&mut self, k: usize, t: Millis, watermark: Millis) -> bool {
        let gap = self.gap;
        let list = &mut self.open[k];
        let (mut s, mut e) = (t, t.saturating_add(gap));
        // Intervals that overlap or touch [s, e] merge into one.
        let first = list.partition_point(|&(_, end)| end < s);
        let mut last = first;
        while last < list.len() && list[last].0 <= e {
            s = s.min(list[last].0);
            e = e.max(list[last].1);
            last += 1;
        }
        if first == last && e.saturating_sub(1) <= watermark {
            return false;
        }
        list.splice(first..last, [(s, e)]);
        self.intervals = self.intervals + 1 - (last - first);
        self.next_end = self.next_end.min(e);
        true
    }

    /// Closes every session whose end - 1 <= watermark and aggregates its rows.
    fn fire(&mut self, plan: &Plan, watermark: Millis) -> Result<Option<RecordBatch>> {
        if self.next_end == Millis::MAX || self.next_end.saturating_sub(1) > watermark {
            return Ok(None);
        }
        let mut closed: HashMap<usize, Vec<(Millis, Millis)>> = HashMap::new();
        let mut next_end = Millis::MAX;
        for (k, list) in self.open.iter_mut().enumerate() {
            let split = list.partition_point(|&(_, e)| e.saturating_sub(1) <= watermark);
            // Sessions of one key end in start order, so closed ones form a prefix.
            if split > 0 {
                closed.insert(k, list.drain(..split).collect());
                self.intervals -= split;
            }
            if let Some(&(_, e)) = list.first() {
                next_end = next_end.min(e);
            }
        }
        self.next_end = next_end;
        if closed.is_empty() {
            return Ok(None);
        }
        let mut agg = GroupedAggregator::try_new(&self.fire_spec)?;
        let mut keep = Vec::with_capacity(self.buffer.len());
        for (input, times, kids) in std::mem::take(&mut self.buffer) {
            let (mut fire_idx, mut keep_idx) = (Vec::new(), Vec::new());
            let (mut starts, mut ends) = (Vec::new(), Vec::new());
            for (i, (&t, &k)) in times.iter().zip(kids.iter()).enumerate() {
                let hit = closed.get(&k).and_then(|c| {
                    let j = c.partition_point(|&(s, _)| s <= t);
                    (j > 0 && t < c[j - 1].1).then(|| c[j - 1])
                });
                match hit {
                    Some((s, e)) => {
                        fire_idx.push(i as u32);
                        starts.push(s);
                        ends.push(e);
                    }
                    None => keep_idx.push(i as u32),
                }
            }
            if !fire_idx.is_empty() {
                let mut part = input.take(&UInt32Array::from(fire_idx))?;
                let mut keys: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(starts)),
                    Arc::new(Int64Array::from(ends)),
                ];
                keys.append(&mut part.keys);
                part.keys = keys;
                agg.update(&part)?;
            }
            if !keep_idx.is_empty() {
                let idx = UInt32Array::from(keep_idx);
                let kept = input.take(&idx)?;
                let t: Vec<Millis> = idx.values().iter().map(|&i| times[i as usize]).collect();
                let k: Vec<usize> = idx.values().iter().map(|&i| kids[i as usize]).collect();
                keep.push((kept, t, k));
            }
        }
        self.buffer_bytes = keep.iter().map(Self::entry_bytes).sum();
        self.buffer = keep;
        if agg.num_groups() == 0 {
            return Ok(None);
        }
        let (mut keys, aggs) = agg.finish()?;
        let rest = keys.split_off(2);
        let ends = keys.pop();
        let starts = keys.pop();
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return internal_err!("session window bounds missing");
        };
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        Ok(Some(plan.output(
            cast(&starts, &ts)?,
            cast(&ends, &ts)?,
            &rest,
            aggs,
        )?))
    }
}

/// STAGGER windows: which windows each partition key (the GROUP BY keys) has open.
struct StaggerState {
    size: Millis,
    /// Encodes key columns to comparable bytes (NULLs equal); `None` without keys.
    converter: Option<RowConverter>,
    /// Open window starts per key, ascending.
    open: HashMap<Box<[u8]>, Vec<Millis>>,
    /// Keys that opened a window at each start.
    opened: BTreeMap<Millis, Vec<Box<[u8]>>>,
    /// Bytes of `open` and `opened`.
    bytes: usize,
}

impl StaggerState {
    fn try_new(spec: &AggregateSpec, size: Millis) -> Result<Self> {
        let fields = spec.key_schema.fields();
        let converter = if fields.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                fields
                    .iter()
                    .map(|f| SortField::new(f.data_type().clone()))
                    .collect(),
            )?)
        };
        Ok(Self {
            size,
            converter,
            open: HashMap::new(),
            opened: BTreeMap::new(),
            bytes: 0,
        })
    }

    /// The key of every row, as comparable bytes.
    fn key_rows(&self, keys: &[ArrayRef]) -> Result<Option<Rows>> {
        match &self.converter {
            None => Ok(None),
            Some(c) => Ok(Some(c.convert_columns(keys)?)),
        }
    }

    /// The open window of `key` that contains `t`; the one that starts first if several do
    /// (possible only with out-of-order event time).
    fn find(&self, key: &[u8], t: Millis) -> Option<Millis> {
        self.open
            .get(key)?
            .iter()
            .copied()
            .find(|&s| s <= t && t < s.saturating_add(self.size))
    }

    /// Opens `[t, t + size)` for `key`.
    fn open_window(&mut self, key: &[u8], t: Millis) {
        let entry = match self.open.get_mut(key) {
            Some(e) => e,
            None => {
                self.bytes += Self::key_bytes(key);
                self.open.entry(key.into()).or_default()
            }
        };
        let at = entry.partition_point(|&s| s < t);
        entry.insert(at, t);
        self.opened.entry(t).or_default().push(key.into());
        self.bytes += Self::key_bytes(key) + 2 * std::mem::size_of::<Millis>();
    }

    /// Forgets the windows that started at `start` (they fired).
    fn close(&mut self, start: Millis) {
        for key in self.opened.remove(&start).unwrap_or_default() {
            self.bytes = self
                .bytes
                .saturating_sub(Self::key_bytes(&key) + 2 * std::mem::size_of::<Millis>());
            if let Some(starts) = self.open.get_mut(&key) {
                starts.retain(|&s| s != start);
                if starts.is_empty() {
                    self.open.remove(&key);
                    self.bytes = self.bytes.saturating_sub(Self::key_bytes(&key));
                }
            }
        }
    }

    fn key_bytes(key: &[u8]) -> usize {
        key.len() + std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<Vec<Millis>>()
    }

    fn size(&self) -> usize {
        self.bytes + self.converter.as_ref().map(|c| c.size()).unwrap_or(0)
    }
}

/// The running operator.
struct WindowStream {
    plan: Plan,
    /// Everything with end - 1 <= watermark has fired.
    watermark: Millis,
    windows: BTreeMap<Millis, GroupedAggregator>,
    /// Bytes of `windows`, kept up to date incrementally.
    windows_bytes: usize,
    session: Option<SessionState>,
    stagger: Option<StaggerState>,
    output: VecDeque<StreamMessage>,
    reservation: MemoryReservation,
    late_policy: LateRowPolicy,
    metrics: WindowMetrics,
}

impl WindowStream {
    fn late(&self, t: Millis) -> Result<()> {
        match self.late_policy {
            LateRowPolicy::Drop => {
                self.metrics.late_rows.add(1);
                Ok(())
            }
            LateRowPolicy::Fail => exec_err!(
                "{} window: late row with time {} arrived after the watermark {} had closed its window (late-row policy 'fail')",
                self.plan.kind.name(),
                format_millis(t),
                format_millis(self.watermark)
            ),
        }
    }

    fn on_batch(&mut self, batch: RecordBatch) -> Result<()> {
        self.metrics.input_rows.add(batch.num_rows());
        let Some(batch) = self.plan.pipeline.apply(batch)? else {
            return Ok(());
        };
        let n = batch.num_rows();
        let times = self.plan.times(&batch)?;
        let keys = self
            .plan
            .keys
            .iter()
            .map(|k| k.evaluate(&batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        let input = self.plan.spec.evaluate(keys, &batch)?;
        if let Some(mut session) = self.session.take() {
            let r = self.on_session_batch(&mut session, &batch, input, &times);
            self.session = Some(session);
            return r;
        }
        if let Some(mut stagger) = self.stagger.take() {
            let r = self.on_stagger_batch(&mut stagger, input, &times);
            self.stagger = Some(stagger);
            return r;
        }
        // Fast path, the common case of in-order input: a TUMBLE batch that lies entirely in
        // one open window updates it with the whole batch, with no per-row work.
        if let WindowKind::Tumble { size, offset } = self.plan.kind {
            if times.null_count() == 0 {
                if let (Some(lo), Some(hi)) = (min(&times), max(&times)) {
                    let start = WindowKind::last_start(size, offset, lo);
                    if start == WindowKind::last_start(size, offset, hi)
                        && start.saturating_add(size).saturating_sub(1) > self.watermark
                    {
                        self.update_window(start, &input)?;
                        return self.track_memory();
                    }
                }
            }
        }
        // General path: the rows of each window (HOP rows go to several).
        let mut per_window: BTreeMap<Millis, Vec<u32>> = BTreeMap::new();
        let mut starts = Vec::with_capacity(4);
        for i in 0..n {
            if times.is_null(i) {
                self.metrics.null_time_rows.add(1);
                continue;
            }
            let t = times.value(i);
            starts.clear();
            let first_end = self.plan.kind.assign(t, |s| starts.push(s));
            if starts.is_empty() {
                continue; // HOP with slide > size: between windows
            }
            if first_end.saturating_sub(1) <= self.watermark {
                self.late(t)?;
                continue;
            }
            for &s in &starts {
                per_window.entry(s).or_default().push(i as u32);
            }
        }
        self.update_windows(per_window, &input)?;
        self.track_memory()
    }

    /// Updates each window with its rows of `input`.
    fn update_windows(
        &mut self,
        per_window: BTreeMap<Millis, Vec<u32>>,
        input: &AggInput,
    ) -> Result<()> {
        for (s, idx) in per_window {
            if idx.len() == input.num_rows {
                self.update_window(s, input)?;
            } else {
                let part = input.take(&UInt32Array::from(idx))?;
                self.update_window(s, &part)?;
            }
        }
        Ok(())
    }

    /// STAGGER: finds or opens each row's window (see the module docs).
    fn on_stagger_batch(
        &mut self,
        stagger: &mut StaggerState,
        input: AggInput,
        times: &TimestampMillisecondArray,
    ) -> Result<()> {
        let rows = stagger.key_rows(&input.keys)?;
        let mut per_window: BTreeMap<Millis, Vec<u32>> = BTreeMap::new();
        for i in 0..input.num_rows {
            if times.is_null(i) {
                self.metrics.null_time_rows.add(1);
                continue;
            }
            let t = times.value(i);
            let key: &[u8] = rows.as_ref().map(|r| r.row(i).data()).unwrap_or(&[]);
            let start = match stagger.find(key, t) {
                Some(s) => s,
                None if t <= self.watermark => {
                    self.late(t)?;
                    continue;
                }
                None => {
                    stagger.open_window(key, t);
                    t
                }
            };
            per_window.entry(start).or_default().push(i as u32);
        }
        self.update_windows(per_window, &input)?;
        self.track_memory()
    }

    fn on_session_batch(
        &mut self,
        session: &mut SessionState,
        batch: &RecordBatch,
        input: AggInput,
        times: &TimestampMillisecondArray,
    ) -> Result<()> {
        let n = batch.num_rows();
        let pkeys = self
            .plan
            .partition_keys
            .iter()
            .map(|k| k.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        let kids = session.intern(&pkeys, n)?;
        let mut keep = Vec::with_capacity(n);
        for (i, &kid) in kids.iter().enumerate() {
            if times.is_null(i) {
                self.metrics.null_time_rows.add(1);
                continue;
            }
            let t = times.value(i);
            if session.insert(kid, t, self.watermark) {
                keep.push(i as u32);
            } else {
                self.late(t)?;
            }
        }
        if keep.len() == n {
            session.buffer_rows((input, times.values().to_vec(), kids));
        } else if !keep.is_empty() {
            let idx = UInt32Array::from(keep);
            let t = idx
                .values()
                .iter()
                .map(|&i| times.value(i as usize))
                .collect();
            let k = idx.values().iter().map(|&i| kids[i as usize]).collect();
            session.buffer_rows((input.take(&idx)?, t, k));
        }
        self.reservation.try_resize(session.size())?;
        Ok(())
    }

    /// Adds rows to the window starting at `start`, creating it if needed.
    fn update_window(&mut self, start: Millis, input: &AggInput) -> Result<()> {
        let w = match self.windows.entry(start) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(GroupedAggregator::try_new(&self.plan.spec)?)
            }
        };
        let before = w.size();
        w.update(input)?;
        let after = w.size();
        self.windows_bytes = (self.windows_bytes + after).saturating_sub(before);
        Ok(())
    }

    fn track_memory(&mut self) -> Result<()> {
        let stagger = self.stagger.as_ref().map(|s| s.size()).unwrap_or(0);
        self.reservation.try_resize(self.windows_bytes + stagger)
    }

    fn on_progress(&mut self, p: Progress) -> Result<()> {
        if !p.idle {
            let w = match self.plan.domain {
                TimeDomain::EventTime => p.event_time,
                TimeDomain::Rowtime => p.rowtime,
            };
            self.advance(w)?;
        }
        self.output.push_back(StreamMessage::Progress(p));
        Ok(())
    }

    /// Fires every window that the watermark `w` completes.
    fn advance(&mut self, w: Millis) -> Result<()> {
        if w <= self.watermark {
            return Ok(());
        }
        self.watermark = w;
        if w > 0 {
            self.metrics.watermark.set(w as usize);
        }
        if let Some(mut session) = self.session.take() {
            let r = session.fire(&self.plan, w);
            let size = session.size();
            self.session = Some(session);
            if let Some(batch) = r? {
                self.emit(batch);
            }
            return self.reservation.try_resize(size);
        }
        let size = self.plan.kind.size();
        while let Some((&start, _)) = self.windows.iter().next() {
            let end = start.saturating_add(size);
            if end.saturating_sub(1) > w {
                break;
            }
            let Some(agg) = self.windows.remove(&start) else {
                break;
            };
            self.windows_bytes = self.windows_bytes.saturating_sub(agg.size());
            if let Some(stagger) = self.stagger.as_mut() {
                stagger.close(start);
            }
            let (keys, aggs) = agg.finish()?;
            let rows = aggs
                .first()
                .map(|a| a.len())
                .or(keys.first().map(|k| k.len()))
                .unwrap_or(0);
            let starts: ArrayRef = Arc::new(TimestampMillisecondArray::from_value(start, rows));
            let ends: ArrayRef = Arc::new(TimestampMillisecondArray::from_value(end, rows));
            let batch = self.plan.output(starts, ends, &keys, aggs)?;
            self.emit(batch);
        }
        self.track_memory()
    }

    fn emit(&mut self, batch: RecordBatch) {
        self.metrics.windows_emitted.add(1);
        self.output.push_back(StreamMessage::Batch(batch));
    }
}

impl MessageOperator for WindowStream {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch) -> Result<()> {
        WindowStream::on_batch(self, batch)
    }

    fn on_progress(&mut self, progress: Progress) -> Result<()> {
        WindowStream::on_progress(self, progress)
    }

    fn on_end(&mut self) -> Result<()> {
        self.advance(Millis::MAX)
    }

    fn output(&mut self) -> &mut VecDeque<StreamMessage> {
        &mut self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stagger(size: Millis) -> StaggerState {
        StaggerState {
            size,
            converter: None,
            open: HashMap::new(),
            opened: BTreeMap::new(),
            bytes: 0,
        }
    }

    #[test]
    fn stagger_windows_open_per_key_and_are_forgotten_when_they_fire() {
        let mut s = stagger(10);
        assert_eq!(s.find(b"a", 5), None);
        s.open_window(b"a", 5);
        s.open_window(b"b", 7);
        assert_eq!(s.find(b"a", 5), Some(5));
        assert_eq!(s.find(b"a", 14), Some(5));
        // the end is exclusive
        assert_eq!(s.find(b"a", 15), None);
        s.open_window(b"a", 15);
        // out of order: a window before the open ones
        s.open_window(b"a", 1);
        assert_eq!(s.open.get(b"a".as_slice()), Some(&vec![1, 5, 15]));
        assert_eq!(s.find(b"a", 6), Some(1));
        assert_eq!(s.find(b"a", 11), Some(5));
        assert_eq!(s.find(b"b", 16), Some(7));
        s.close(1);
        s.close(5);
        assert_eq!(s.open.get(b"a".as_slice()), Some(&vec![15]));
        s.close(7);
        assert!(!s.open.contains_key(b"b".as_slice()));
        s.close(15);
        assert!(s.open.is_empty() && s.opened.is_empty());
        assert_eq!(s.bytes, 0, "memory accounting returns to zero");
    }
}
