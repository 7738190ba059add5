//! The message protocol between streaming operators: ordered rows plus progress.
//!
//! ```text
//!  message source (scan, window, over, join, ...)          consumer (window, over, join, pump)
//!   partition 0 ── Batch, Batch, Progress, Batch ... ──┐
//!   partition 1 ── Batch, Progress, ...              ──┼─► MergedInputs ─► Batch{input, rows}
//!   ...            (stateless Pipeline applied here)   ┘                  Progress(combined)
//! ```
//!
//! DataFusion's `execute` only carries record batches; a streaming operator also needs to know
//! how far time has advanced in each input partition, *in order with the rows*. Every operator
//! that can tell implements [`MessageExec`]. Filters and projections between two such operators
//! are fused into a [`Pipeline`] that maps batches and passes progress through untouched
//! ([`MessageInput`]).
//!
//! [`MergedInputs`] polls all partitions of one input fairly and keeps the combined progress:
//! the minimum over partitions that are not idle (an idle partition does not hold time back),
//! never moving backwards. It reports the combined progress only when it changes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::common::{plan_err, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use super::pipeline::Pipeline;
use crate::runtime::StreamRuntime;
use crate::scan::{Progress, StreamMessage, StreamScanExec};
use crate::time::WATERMARK_MIN;

/// Rows and progress of one partition, in order.
pub type MessageStream = BoxStream<'static, Result<StreamMessage>>;

/// An operator that can produce its output as [`StreamMessage`]s.
pub trait MessageExec {
    /// Rows and progress of output partition `partition`, in order.
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream>;
}

type Probe = fn(&Arc<dyn ExecutionPlan>) -> Option<&dyn MessageExec>;

/// Every operator type of this crate that speaks the message protocol.
static PROBES: &[Probe] = &[
    |p| {
        p.downcast_ref::<StreamScanExec>()
            .map(|e| e as &dyn MessageExec)
    },
    |p| {
        p.downcast_ref::<crate::window::exec::StreamWindowAggExec>()
            .map(|e| e as &dyn MessageExec)
    },
    |p| {
        p.downcast_ref::<crate::over::exec::StreamOverExec>()
            .map(|e| e as &dyn MessageExec)
    },
    crate::join::as_message_exec,
    |p| {
        p.downcast_ref::<super::union::StreamUnionExec>()
            .map(|e| e as &dyn MessageExec)
    },
    |p| {
        p.downcast_ref::<crate::sort::exec::StreamSortExec>()
            .map(|e| e as &dyn MessageExec)
    },
    |p| {
        p.downcast_ref::<crate::anomaly::exec::AnomalyExec>()
            .map(|e| e as &dyn MessageExec)
    },
];

/// The batches of a message stream (progress dropped): what a streaming operator's plain
/// `ExecutionPlan::execute` returns.
pub fn batches_only(
    messages: MessageStream,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> datafusion::execution::SendableRecordBatchStream {
    let batches = messages.filter_map(|m| async move {
        match m {
            Ok(StreamMessage::Batch(b)) => Some(Ok(b)),
            Ok(StreamMessage::Progress(_)) => None,
            Err(e) => Some(Err(e)),
        }
    });
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, batches))
}

/// The streaming operator under `child`: physical optimizer rules may wrap a streaming input in
/// single-child operators (e.g. for cooperative scheduling); they are looked through.
pub fn unwrap_streaming_child(mut child: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    while !is_message_exec(&child) && child.children().len() == 1 {
        child = Arc::clone(child.children()[0]);
    }
    child
}

/// The plan as a [`MessageExec`], when it is one.
pub fn as_message_exec(plan: &Arc<dyn ExecutionPlan>) -> Option<&dyn MessageExec> {
    PROBES.iter().find_map(|probe| probe(plan))
}

/// True when the plan speaks the message protocol.
pub fn is_message_exec(plan: &Arc<dyn ExecutionPlan>) -> bool {
    as_message_exec(plan).is_some()
}

/// A message-producing operator plus the stateless stages above it.
#[derive(Debug, Clone)]
pub struct MessageInput {
    /// The operator at the bottom (see [`as_message_exec`]).
    pub source: Arc<dyn ExecutionPlan>,
    /// Filters and projections applied to its batches.
    pub pipeline: Pipeline,
}

impl MessageInput {
    /// Splits `plan` into a message source and the stateless stages above it; `operator` names
    /// the consumer in errors.
    pub fn extract(plan: &Arc<dyn ExecutionPlan>, operator: &str) -> Result<Self> {
        let (source, pipeline) = Pipeline::extract(plan, operator)?;
        Ok(Self { source, pipeline })
    }

    /// Number of partitions of the source.
    pub fn partition_count(&self) -> usize {
        self.source.properties().partitioning.partition_count()
    }

    /// Opens every partition of the source, with the pipeline applied to each batch. A row
    /// whose expressions fail is reported to the runtime's error sink
    /// ([`Pipeline::apply_isolating`]).
    pub fn open(&self, context: &Arc<TaskContext>) -> Result<Vec<MessageStream>> {
        (0..self.partition_count())
            .map(|p| self.open_partition(p, context))
            .collect()
    }

    /// Opens one partition of the source, with the pipeline applied to each batch.
    pub fn open_partition(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        let Some(exec) = as_message_exec(&self.source) else {
            return plan_err!(
                "{} does not produce a stream of rows and progress",
                self.source.name()
            );
        };
        {
            {
                let p = partition;
                let raw = exec.execute_messages(p, context)?;
                if self.pipeline.is_empty() {
                    return Ok(raw);
                }
                let pipeline = self.pipeline.clone();
                let runtime = StreamRuntime::from_task(context);
                let mapped = raw.filter_map(move |m| {
                    let out = match m {
                        Ok(StreamMessage::Batch(b)) => match pipeline.apply_isolating(
                            b,
                            runtime.errors.as_ref(),
                            runtime.clock.now(),
                        ) {
                            Ok(Some(b)) => Some(Ok(StreamMessage::Batch(b))),
                            Ok(None) => None,
                            Err(e) => Some(Err(e)),
                        },
                        other => Some(other),
                    };
                    futures::future::ready(out)
                });
                Ok(Box::pin(mapped) as MessageStream)
            }
        }
    }
}

/// What [`MergedInputs`] yields.
#[derive(Debug)]
pub enum Merged {
    /// Rows from input partition `input`.
    Batch {
        /// Partition index.
        input: usize,
        /// The rows.
        batch: datafusion::arrow::record_batch::RecordBatch,
    },
    /// The combined progress moved forward (or the idle state changed).
    Progress(Progress),
}

/// Polls several partitions fairly and combines their progress.
pub struct MergedInputs {
    inputs: Vec<Option<MessageStream>>,
    progress: Vec<Progress>,
    combined: Progress,
    next: usize,
    ended: bool,
}

impl MergedInputs {
    /// Merges the given partitions.
    pub fn new(inputs: Vec<MessageStream>) -> Self {
        let n = inputs.len();
        Self {
            inputs: inputs.into_iter().map(Some).collect(),
            progress: vec![Progress::START; n],
            combined: Progress::START,
            next: 0,
            ended: false,
        }
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.progress.len()
    }

    /// True when there are no partitions.
    pub fn is_empty(&self) -> bool {
        self.progress.is_empty()
    }

    /// The combined progress so far.
    pub fn progress(&self) -> Progress {
        self.combined
    }

    /// Progress of one partition.
    pub fn partition_progress(&self, input: usize) -> Progress {
        self.progress[input]
    }

    /// True when every partition has ended.
    pub fn is_finished(&self) -> bool {
        self.inputs.iter().all(|i| i.is_none())
    }

    fn recombine(&mut self) -> Option<Progress> {
        let active: Vec<&Progress> = self.progress.iter().filter(|p| !p.idle).collect();
        let next = if active.is_empty() {
            if self.progress.is_empty() {
                Progress::END
            } else {
                Progress {
                    idle: true,
                    ..self.combined
                }
            }
        } else {
            let event_time = active.iter().map(|p| p.event_time).min();
            let rowtime = active.iter().map(|p| p.rowtime).min();
            Progress {
                event_time: event_time
                    .unwrap_or(WATERMARK_MIN)
                    .max(self.combined.event_time),
                rowtime: rowtime.unwrap_or(WATERMARK_MIN).max(self.combined.rowtime),
                idle: false,
            }
        };
        if next != self.combined {
            self.combined = next;
            Some(next)
        } else {
            None
        }
    }

    fn set_progress(&mut self, input: usize, p: Progress) -> Option<Progress> {
        self.progress[input] = p;
        self.recombine()
    }
}

impl Stream for MergedInputs {
    type Item = Result<Merged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let n = this.inputs.len();
        if n == 0 || this.is_finished() {
            this.ended = true;
            // No partitions at all: time is over at once.
            if n == 0 {
                return Poll::Ready(Some(Ok(Merged::Progress(Progress::END))));
            }
            return Poll::Ready(None);
        }
        loop {
            let mut any = false;
            for k in 0..n {
                let i = (this.next + k) % n;
                let Some(input) = this.inputs[i].as_mut() else {
                    continue;
                };
                match input.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(StreamMessage::Batch(batch)))) => {
                        // Rows from an idle partition make it active at once: its watermark
                        // holds time back again before anything else is combined.
                        this.progress[i].idle = false;
                        this.next = (i + 1) % n;
                        return Poll::Ready(Some(Ok(Merged::Batch { input: i, batch })));
                    }
                    Poll::Ready(Some(Ok(StreamMessage::Progress(p)))) => {
                        any = true;
                        if let Some(c) = this.set_progress(i, p) {
                            this.next = (i + 1) % n;
                            return Poll::Ready(Some(Ok(Merged::Progress(c))));
                        }
                    }
                    Poll::Ready(Some(Err(e))) => {
                        this.ended = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => {
                        any = true;
                        this.inputs[i] = None;
                        let c = this.set_progress(i, Progress::END);
                        if this.is_finished() {
                            this.ended = true;
                        }
                        if let Some(c) = c {
                            this.next = (i + 1) % n;
                            return Poll::Ready(Some(Ok(Merged::Progress(c))));
                        }
                        if this.ended {
                            return Poll::Ready(None);
                        }
                    }
                    Poll::Pending => {}
                }
            }
            if !any {
                return Poll::Pending;
            }
        }
    }
}
