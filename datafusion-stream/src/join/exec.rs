//! `StreamJoinExec`: the stream-to-stream join operator. The plan node is thin; the stream
//! ([`StreamJoinStream`]) polls both inputs and drives the [`JoinCore`] state machine:
//!
//! ```text
//!  loop:
//!    1. output queued?                         → return it
//!    2. the core finished (both inputs ended)  → end
//!    3. poll the inputs, alternating sides:
//!         Batch    → core.push(side, partition, rows)
//!         Progress → core.progress(side, combined progress of that input)
//!         ended    → core.end(side)
//!       then core.step() → output rows, then the output Progress
//!    4. no input ready                         → Pending
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, JoinType, NullEquality, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{Stream, StreamExt};

use super::state::{CoreMetrics, JoinCore, SideSpec, LEFT, RIGHT};
use super::JoinWindow;
use crate::exec::messages::{
    is_message_exec, Merged, MergedInputs, MessageExec, MessageInput, MessageStream,
};
use crate::runtime::StreamRuntime;
use crate::scan::StreamMessage;

/// One input of a stream join, physically.
#[derive(Debug, Clone)]
pub struct JoinInput {
    /// The message source and the filters/projections fused above it.
    pub input: MessageInput,
    /// Equality key expressions over the input's rows.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The input's ROWTIME column.
    pub rowtime: Arc<dyn PhysicalExpr>,
    /// Its window.
    pub window: Option<JoinWindow>,
    /// The input's row schema (after the pipeline).
    pub schema: SchemaRef,
}

/// Stream-to-stream join with KDA semantics (see [`crate::join`]).
#[derive(Debug)]
pub struct StreamJoinExec {
    sides: [JoinInput; 2],
    join_type: JoinType,
    null_equality: NullEquality,
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl StreamJoinExec {
    /// Creates the operator; both inputs must speak the message protocol.
    pub fn try_new(
        left: JoinInput,
        right: JoinInput,
        join_type: JoinType,
        null_equality: NullEquality,
        filter: Option<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
    ) -> Result<Self> {
        for (name, side) in [("left", &left), ("right", &right)] {
            if !is_message_exec(&side.input.source) {
                return internal_err!(
                    "StreamJoinExec: the {name} input must be a streaming operator, got {}",
                    side.input.source.name()
                );
            }
        }
        if !matches!(
            join_type,
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
        ) {
            return internal_err!("StreamJoinExec: unsupported join type {join_type}");
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
            sides: [left, right],
            join_type,
            null_equality,
            filter,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The windows of the left and right inputs.
    pub fn windows(&self) -> [Option<JoinWindow>; 2] {
        [self.sides[LEFT].window, self.sides[RIGHT].window]
    }

    fn preserved(&self, side: usize) -> bool {
        match self.join_type {
            JoinType::Full => true,
            JoinType::Left => side == LEFT,
            JoinType::Right => side == RIGHT,
            _ => false,
        }
    }
}

fn fmt_window(w: &Option<JoinWindow>) -> String {
    w.map(|w| w.to_string()).unwrap_or_else(|| "none".into())
}

impl DisplayAs for StreamJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let on: Vec<String> = self.sides[LEFT]
            .keys
            .iter()
            .zip(self.sides[RIGHT].keys.iter())
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        write!(
            f,
            "StreamJoinExec: type={}, on=[{}], left window={}, right window={}",
            self.join_type,
            on.join(", "),
            fmt_window(&self.sides[LEFT].window),
            fmt_window(&self.sides[RIGHT].window)
        )?;
        if let Some(filter) = &self.filter {
            write!(f, ", filter={filter}")?;
        }
        for (name, side) in [("left", &self.sides[LEFT]), ("right", &self.sides[RIGHT])] {
            if !side.input.pipeline.is_empty() {
                write!(f, ", {name} pipeline={}", side.input.pipeline)?;
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamJoinExec {
    fn name(&self) -> &str {
        "StreamJoinExec"
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

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![
            &self.sides[LEFT].input.source,
            &self.sides[RIGHT].input.source,
        ]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut all: Vec<&Arc<dyn PhysicalExpr>> = Vec::new();
        for side in &self.sides {
            all.extend(side.keys.iter());
            all.push(&side.rowtime);
        }
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
        if children.len() != 2 {
            return internal_err!("StreamJoinExec takes two children");
        }
        let mut sides = self.sides.clone();
        for (side, child) in sides.iter_mut().zip(children) {
            side.input.source = crate::exec::messages::unwrap_streaming_child(child);
        }
        let [left, right] = sides;
        Ok(Arc::new(Self::try_new(
            left,
            right,
            self.join_type,
            self.null_equality,
            self.filter.clone(),
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

impl MessageExec for StreamJoinExec {
    /// Joined rows in ascending output ROWTIME, each batch followed by the progress it allows.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        if partition != 0 {
            return internal_err!("StreamJoinExec has one output partition, asked for {partition}");
        }
        let runtime = StreamRuntime::from_task(context);
        let m = &self.metrics;
        let metrics = CoreMetrics {
            rows: [
                MetricBuilder::new(m).counter("left_rows", 0),
                MetricBuilder::new(m).counter("right_rows", 0),
            ],
            matches: MetricBuilder::new(m).counter("matches", 0),
            unmatched: MetricBuilder::new(m).counter("unmatched_rows", 0),
            late_rows: MetricBuilder::new(m).counter("late_rows", 0),
            stored_rows: MetricBuilder::new(m).gauge("stored_rows", 0),
            pending_rows: MetricBuilder::new(m).gauge("pending_rows", 0),
        };
        let spec = |s: usize| SideSpec {
            window: self.sides[s].window,
            preserved: self.preserved(s),
            keys: self.sides[s].keys.clone(),
            rowtime: Arc::clone(&self.sides[s].rowtime),
            schema: Arc::clone(&self.sides[s].schema),
        };
        let core = JoinCore::try_new(
            spec(LEFT),
            spec(RIGHT),
            self.null_equality,
            self.filter.clone(),
            Arc::clone(&self.schema),
            runtime.late_rows,
            metrics,
        )?;
        let inputs = [
            Some(MergedInputs::new(self.sides[LEFT].input.open(context)?)),
            Some(MergedInputs::new(self.sides[RIGHT].input.open(context)?)),
        ];
        let reservation = MemoryConsumer::new("StreamJoinExec").register(context.memory_pool());
        Ok(Box::pin(StreamJoinStream {
            core,
            inputs,
            next_side: LEFT,
            output: VecDeque::new(),
            reservation,
            baseline: BaselineMetrics::new(&self.metrics, 0),
            done: false,
        }))
    }
}

/// The running join: see the module docs.
pub struct StreamJoinStream {
    core: JoinCore,
    inputs: [Option<MergedInputs>; 2],
    next_side: usize,
    output: VecDeque<StreamMessage>,
    reservation: MemoryReservation,
    baseline: BaselineMetrics,
    done: bool,
}

impl StreamJoinStream {
    fn step(&mut self) -> Result<()> {
        let out = self.core.step()?;
        if let Some(b) = out.batch {
            if b.num_rows() > 0 {
                self.output.push_back(StreamMessage::Batch(b));
            }
        }
        if let Some(p) = out.progress {
            self.output.push_back(StreamMessage::Progress(p));
        }
        self.reservation.try_resize(self.core.memory_size())
    }

    /// Polls the inputs once each (alternating which goes first); true if anything happened.
    fn poll_inputs(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        for k in 0..2 {
            let s = (self.next_side + k) % 2;
            let Some(input) = self.inputs[s].as_mut() else {
                continue;
            };
            match input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(Merged::Batch { input, batch }))) => {
                    self.core.push(s, input, batch)?;
                }
                Poll::Ready(Some(Ok(Merged::Progress(p)))) => self.core.progress(s, p),
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Ready(None) => {
                    self.inputs[s] = None;
                    self.core.end(s);
                }
                Poll::Pending => continue,
            }
            self.next_side = 1 - s;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Stream for StreamJoinStream {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let timer = this.baseline.elapsed_compute().clone();
        loop {
            if let Some(m) = this.output.pop_front() {
                if let StreamMessage::Batch(b) = &m {
                    this.baseline.record_output(b.num_rows());
                }
                return Poll::Ready(Some(Ok(m)));
            }
            if this.done || this.core.is_finished() {
                this.done = true;
                return Poll::Ready(None);
            }
            let all_ended = this.inputs.iter().all(|i| i.is_none());
            let r = if all_ended {
                Ok(true)
            } else {
                this.poll_inputs(cx)
            };
            match r {
                Ok(true) => {
                    let _t = timer.timer();
                    if let Err(e) = this.step() {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    if all_ended && !this.core.is_finished() {
                        this.done = true;
                        return Poll::Ready(Some(internal_err!(
                            "StreamJoinExec: both inputs ended but rows are left"
                        )));
                    }
                }
                Ok(false) => return Poll::Pending,
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}
