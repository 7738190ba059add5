//! A stream fed by queries: every row written to a partition reaches every reader of it.
//!
//! ```text
//!  writer 0 (a query, a KDA pump) ──send──► partition 0 ──┬─► reader A (scan of query 1)
//!  writer 1                       ──send──► partition 1   └─► reader B (scan of query 2)
//!                                   (one unbounded queue per reader and partition)
//! ```
//!
//! This is the in-application stream of KDA (`CREATE STREAM` filled by `CREATE PUMP`) and, for
//! DataFusion users, the target of a continuous `INSERT INTO stream SELECT ...`. Each writer
//! owns one partition, so ROWTIME stays non-decreasing per partition and the scan's watermark
//! (the minimum over partitions) is what all writers guarantee. Writers supply ROWTIME with
//! every row and forward their progress as [`SourceEvent::RowtimeBound`]s.
//!
//! Readers register when a query opens the partition, so queries must be opened before
//! their writers start (rows written while a partition has no reader are not kept: nobody
//! could see them). Queues are unbounded; the KDA runtime drives writers and readers in one
//! loop, so a queue holds at most what one step of a writer produced.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{exec_err, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{RowtimeMode, SourceContext, SourceEvent, StreamSource};

type Readers = Vec<Vec<mpsc::UnboundedSender<Result<SourceEvent>>>>;

/// A broadcast stream with one partition per writer.
#[derive(Debug)]
pub struct ChannelSource {
    name: String,
    schema: SchemaRef,
    readers: Arc<Mutex<Readers>>,
}

impl ChannelSource {
    /// A stream named `name` (for errors) with `partitions` writers.
    pub fn new(name: impl Into<String>, schema: SchemaRef, partitions: usize) -> Self {
        Self {
            name: name.into(),
            schema,
            readers: Arc::new(Mutex::new(vec![Vec::new(); partitions.max(1)])),
        }
    }

    /// The writer of partition `partition`. Dropping it ends the partition for its readers.
    pub fn writer(&self, partition: usize) -> Result<ChannelWriter> {
        let n = self.partition_count();
        if partition >= n {
            return exec_err!(
                "stream '{}' has {n} writer partition(s); there is no partition {partition}",
                self.name
            );
        }
        Ok(ChannelWriter {
            name: self.name.clone(),
            partition,
            readers: Arc::clone(&self.readers),
        })
    }

    /// Number of readers currently registered on `partition`.
    pub fn reader_count(&self, partition: usize) -> usize {
        lock(&self.readers)
            .get(partition)
            .map(|r| r.iter().filter(|s| !s.is_closed()).count())
            .unwrap_or(0)
    }
}

fn lock(readers: &Mutex<Readers>) -> std::sync::MutexGuard<'_, Readers> {
    match readers.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl StreamSource for ChannelSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn partition_count(&self) -> usize {
        lock(&self.readers).len()
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        RowtimeMode::Supplied
    }

    fn open(
        &self,
        partition: usize,
        _ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut readers = lock(&self.readers);
            let Some(slot) = readers.get_mut(partition) else {
                return exec_err!("stream '{}' has no partition {partition}", self.name);
            };
            slot.push(tx);
        }
        Ok(tokio_stream_from(rx))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<Result<SourceEvent>>,
) -> BoxStream<'static, Result<SourceEvent>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Writes one partition of a [`ChannelSource`].
#[derive(Debug)]
pub struct ChannelWriter {
    name: String,
    partition: usize,
    readers: Arc<Mutex<Readers>>,
}

impl ChannelWriter {
    /// Sends an event to every reader of the partition (readers that went away are removed).
    pub fn send(&self, event: SourceEvent) {
        let mut readers = lock(&self.readers);
        if let Some(slot) = readers.get_mut(self.partition) {
            slot.retain(|tx| tx.send(Ok(event.clone())).is_ok());
        }
    }

    /// Fails every reader of the partition with `message` (the writer's query failed).
    pub fn fail(&self, message: &str) {
        let mut readers = lock(&self.readers);
        if let Some(slot) = readers.get_mut(self.partition) {
            for tx in slot.drain(..) {
                let _ = tx.send(exec_err!(
                    "stream '{}' partition {}: its writer failed: {message}",
                    self.name,
                    self.partition
                ));
            }
        }
    }

    /// Ends the partition: readers see the end of the stream (watermark to the end of time).
    pub fn close(&self) {
        let mut readers = lock(&self.readers);
        if let Some(slot) = readers.get_mut(self.partition) {
            slot.clear();
        }
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        self.close();
    }
}
