//! The driving loop shared by single-input streaming operators.
//!
//! ```text
//!  MergedInputs ──Batch──► op.on_batch ──┐
//!   (all input   ──Progress► op.on_progress├─► op.output() queue ──► next message out
//!    partitions) ──end────► op.on_end ────┘
//! ```
//!
//! An operator (window aggregate, sliding window, streaming sort) implements
//! [`MessageOperator`]: what to do with a batch, with progress, and at the end of its input,
//! queueing what it emits. [`OperatorStream`] polls the merged input, times the work, counts
//! output rows, and hands out the queued messages first — so an operator never needs its own
//! `poll_next`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::physical_plan::metrics::BaselineMetrics;
use futures::{Stream, StreamExt};

use super::messages::{Merged, MergedInputs};
use crate::scan::{Progress, StreamMessage};

/// The logic of a streaming operator over one (merged) input.
pub trait MessageOperator: Send + Unpin {
    /// Rows from input partition `input`.
    fn on_batch(&mut self, input: usize, batch: RecordBatch) -> Result<()>;
    /// The combined progress of the input moved.
    fn on_progress(&mut self, progress: Progress) -> Result<()>;
    /// Every input partition ended (emit everything that is left).
    fn on_end(&mut self) -> Result<()>;
    /// Messages ready to be emitted, in order.
    fn output(&mut self) -> &mut VecDeque<StreamMessage>;
}

/// Drives a [`MessageOperator`] as a stream of messages.
pub struct OperatorStream<O> {
    op: O,
    inputs: MergedInputs,
    baseline: BaselineMetrics,
    finished: bool,
}

impl<O: MessageOperator> OperatorStream<O> {
    /// Runs `op` over `inputs`, recording compute time and output rows in `baseline`.
    pub fn new(op: O, inputs: MergedInputs, baseline: BaselineMetrics) -> Self {
        Self {
            op,
            inputs,
            baseline,
            finished: false,
        }
    }
}

impl<O: MessageOperator> Stream for OperatorStream<O> {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let timer = this.baseline.elapsed_compute().clone();
        loop {
            if let Some(m) = this.op.output().pop_front() {
                if let StreamMessage::Batch(b) = &m {
                    this.baseline.record_output(b.num_rows());
                }
                return Poll::Ready(Some(Ok(m)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let step = match this.inputs.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(msg))) => {
                    let _t = timer.timer();
                    match msg {
                        Merged::Batch { input, batch } => this.op.on_batch(input, batch),
                        Merged::Progress(p) => this.op.on_progress(p),
                    }
                }
                Poll::Ready(Some(Err(e))) => Err(e),
                Poll::Ready(None) => {
                    this.finished = true;
                    let _t = timer.timer();
                    this.op.on_end()
                }
            };
            if let Err(e) = step {
                this.finished = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}
