//! A replay source: rows, watermarks and idleness are pushed explicitly through a
//! [`ReplayHandle`], so a test can show "input → output after each step" without sleeping.
//!
//! ```text
//!  ReplayHandle::push(p, batch) ──► log[p] ──► every reader of p (own cursor) ──► scan
//!  ReplayHandle::watermark(p, t) ─┘    (wakes the readers)
//!  ReplayHandle::finish()  ── ends every partition (bounded replay)
//! ```
//!
//! Every reader (every query over the stream) sees every event of a partition from the start,
//! so several queries can read one replay stream, like several pumps reading one KDA stream.
//! The log is kept for the life of the source: replay is for tests and recorded inputs.

use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use datafusion::arrow::array::{ArrayRef, TimestampMillisecondArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use futures::stream::BoxStream;
use futures::StreamExt;

use super::{
    ConnectorOptions, RowtimeMode, SourceContext, SourceEvent, SourceFactory, StreamSource,
};
use crate::time::{Millis, StreamClock};

#[derive(Debug, Default)]
struct Queue {
    log: Vec<SourceEvent>,
    finished: bool,
    wakers: Vec<Waker>,
}

impl Queue {
    fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

/// A source fed by hand. Cloning the [`ReplayHandle`] shares the queues.
///
/// With [`RowtimeMode::Ingest`] and a clock, rows are stamped with the clock when they are
/// pushed (their ingestion), so every query reading the stream sees the same ROWTIME.
#[derive(Debug)]
pub struct ReplaySource {
    schema: SchemaRef,
    mode: RowtimeMode,
    queues: Vec<Arc<Mutex<Queue>>>,
    clock: Option<Arc<dyn StreamClock>>,
}

/// Pushes events into a [`ReplaySource`].
#[derive(Debug, Clone)]
pub struct ReplayHandle {
    schema: SchemaRef,
    mode: RowtimeMode,
    queues: Vec<Arc<Mutex<Queue>>>,
    clock: Option<Arc<dyn StreamClock>>,
}

impl ReplaySource {
    /// A replay source with `partitions` partitions whose ROWTIME is assigned as `mode` says.
    pub fn new(schema: SchemaRef, partitions: usize, mode: RowtimeMode) -> Self {
        let queues = (0..partitions.max(1))
            .map(|_| Arc::new(Mutex::new(Queue::default())))
            .collect();
        Self {
            schema,
            mode,
            queues,
            clock: None,
        }
    }

    /// Stamps ROWTIME from `clock` when rows are pushed (ingest mode).
    pub fn with_clock(mut self, clock: Arc<dyn StreamClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The handle that feeds this source.
    pub fn handle(&self) -> ReplayHandle {
        ReplayHandle {
            schema: self.schema.clone(),
            mode: self.mode,
            queues: self.queues.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl ReplayHandle {
    /// The schema rows must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The ROWTIME mode of the source.
    pub fn rowtime_mode(&self) -> RowtimeMode {
        self.mode
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        self.queues.len()
    }

    fn queue(&self, partition: usize) -> Result<&Arc<Mutex<Queue>>> {
        self.queues.get(partition).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "replay source has {} partition(s); partition {partition} does not exist",
                self.queues.len()
            ))
        })
    }

    fn send(&self, partition: usize, event: SourceEvent) -> Result<()> {
        let mut q = self
            .queue(partition)?
            .lock()
            .map_err(|_| DataFusionError::Internal("replay queue poisoned".into()))?;
        if q.finished {
            return plan_err!("replay partition {partition} is already finished");
        }
        q.log.push(event);
        q.wake_all();
        Ok(())
    }

    /// Pushes rows. With [`RowtimeMode::Supplied`], `rowtime` must be given.
    pub fn push(
        &self,
        partition: usize,
        batch: RecordBatch,
        rowtime: Option<ArrayRef>,
    ) -> Result<()> {
        if batch.schema().fields().len() != self.schema.fields().len() {
            return plan_err!(
                "replay rows have {} columns, the stream has {}",
                batch.num_columns(),
                self.schema.fields().len()
            );
        }
        match (self.mode, &rowtime) {
            (RowtimeMode::Supplied, None) => {
                return plan_err!(
                    "this replay stream takes ROWTIME from its input; no ROWTIME given"
                )
            }
            (RowtimeMode::Ingest, Some(_)) => {
                return plan_err!(
                    "this replay stream stamps ROWTIME from the clock; ROWTIME cannot be given"
                )
            }
            _ => {}
        }
        let rowtime = match (rowtime, &self.clock) {
            (None, Some(clock)) => Some(Arc::new(TimestampMillisecondArray::from_value(
                clock.now(),
                batch.num_rows(),
            )) as ArrayRef),
            (r, _) => r,
        };
        self.send(partition, SourceEvent::Data { batch, rowtime })
    }

    /// Pushes an explicit event-time watermark.
    pub fn watermark(&self, partition: usize, t: Millis) -> Result<()> {
        self.send(partition, SourceEvent::Watermark(t))
    }

    /// Pushes a rowtime bound: no row with ROWTIME before `t` follows on this partition.
    pub fn rowtime_bound(&self, partition: usize, t: Millis) -> Result<()> {
        self.send(partition, SourceEvent::RowtimeBound(t))
    }

    /// Marks a partition idle.
    pub fn idle(&self, partition: usize) -> Result<()> {
        self.send(partition, SourceEvent::Idle)
    }

    /// Ends one partition.
    pub fn finish_partition(&self, partition: usize) -> Result<()> {
        let mut q = self
            .queue(partition)?
            .lock()
            .map_err(|_| DataFusionError::Internal("replay queue poisoned".into()))?;
        q.finished = true;
        q.wake_all();
        Ok(())
    }

    /// Ends every partition: the input is bounded from here on.
    pub fn finish(&self) -> Result<()> {
        (0..self.queues.len()).try_for_each(|p| self.finish_partition(p))
    }
}

impl StreamSource for ReplaySource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn partition_count(&self) -> usize {
        self.queues.len()
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        self.mode
    }

    fn open(
        &self,
        partition: usize,
        _ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        let Some(queue) = self.queues.get(partition).cloned() else {
            return exec_err!("replay source has no partition {partition}");
        };
        let mut pos = 0;
        Ok(futures::stream::poll_fn(move |cx| {
            let mut q = match queue.lock() {
                Ok(q) => q,
                Err(_) => {
                    return Poll::Ready(Some(Err(DataFusionError::Internal(
                        "replay queue poisoned".into(),
                    ))))
                }
            };
            if let Some(e) = q.log.get(pos) {
                pos += 1;
                return Poll::Ready(Some(Ok(e.clone())));
            }
            if q.finished {
                return Poll::Ready(None);
            }
            if !q.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                q.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .boxed())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `CREATE STREAM ... WITH ('connector' = 'replay', 'partitions' = '2', 'rowtime' = 'ingest' | 'supplied')`.
#[derive(Debug, Default)]
pub struct ReplayFactory {
    clock: Option<Arc<dyn StreamClock>>,
}

impl ReplayFactory {
    /// Replay streams created by this factory stamp ROWTIME from `clock` on push.
    pub fn with_clock(clock: Arc<dyn StreamClock>) -> Self {
        Self { clock: Some(clock) }
    }
}

impl SourceFactory for ReplayFactory {
    fn create(
        &self,
        _stream_name: &str,
        schema: SchemaRef,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSource>> {
        let partitions = options.take_parsed::<usize>("partitions")?.unwrap_or(1);
        if partitions == 0 {
            return plan_err!("connector 'replay': option 'partitions' must be at least 1");
        }
        let mode = match options.take("rowtime").as_deref() {
            None | Some("ingest") => RowtimeMode::Ingest,
            Some("supplied") => RowtimeMode::Supplied,
            Some(other) => {
                return plan_err!(
                    "connector 'replay': option 'rowtime' = '{other}' is invalid; use 'ingest' or 'supplied'"
                )
            }
        };
        options.finish(&["partitions", "rowtime"])?;
        let mut source = ReplaySource::new(schema, partitions, mode);
        if let Some(clock) = &self.clock {
            source = source.with_clock(Arc::clone(clock));
        }
        Ok(Arc::new(source))
    }
}
