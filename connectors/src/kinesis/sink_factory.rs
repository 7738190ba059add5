//! `CREATE SINK ... WITH ('connector' = 'kinesis', ...)`: a Kinesis sink from SQL, run by
//! `INSERT INTO`.
//!
//! ```text
//!  CREATE SINK out WITH ('connector' = 'kinesis', 'stream' = 's', ...)
//!     KinesisSinkConfig::from_options (unknown options rejected by name)
//!     ─► DescribeStreamSummary: a missing stream, rejected credentials or an unreachable
//!        endpoint is an error naming the stream / endpoint now ─► KinesisSinkDef
//!
//!  INSERT INTO out SELECT ... ─► KinesisSinkDef::start ─► a KinesisSink, driven by:
//!     MergedInputs ── Batch ─► write_batch (PutRecords ≤ 500 / 5 MiB, failed records
//!                  │           retried) ─► SinkReport { kinesis:<stream>, rows, bytes }
//!                  └─ Progress: ignored (records are written as they come)
//!     inputs end | stop signal ─► end (nothing is held: every batch was acknowledged)
//! ```

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion_stream::exec::messages::{Merged, MergedInputs};
use datafusion_stream::sink::{
    SinkCounters, SinkEnv, SinkFactory, SinkReport, SinkReports, SinkRun, StopSignal, StreamSink,
};
use datafusion_stream::source::ConnectorOptions;
use futures::{FutureExt, StreamExt};

use super::client::{ErrorKind, KinesisClient};
use super::sink::{KinesisSink, KinesisSinkConfig};

/// Creates Kinesis sinks (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct KinesisSinkFactory;

/// A Kinesis sink created by `CREATE SINK`.
#[derive(Debug)]
pub struct KinesisSinkDef {
    config: KinesisSinkConfig,
    checker: KinesisSink,
}

#[async_trait]
impl SinkFactory for KinesisSinkFactory {
    async fn create(
        &self,
        _env: &SinkEnv,
        sink_name: &str,
        _columns: Option<SchemaRef>,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSink>> {
        let config = KinesisSinkConfig::from_options(options)?;
        let client = KinesisClient::try_new(&config.client)?;
        if let Err(e) = client.describe_stream_summary(&config.stream).await {
            let stream = &config.stream;
            let endpoint = client.endpoint();
            let why = match e.kind {
                ErrorKind::NotFound => {
                    format!("Kinesis stream '{stream}' does not exist at {endpoint} ({e})")
                }
                ErrorKind::Transient => {
                    format!(
                        "cannot reach the Kinesis endpoint {endpoint} for stream '{stream}': {e}"
                    )
                }
                _ => format!("Kinesis stream '{stream}' at {endpoint}: {e}"),
            };
            return Err(DataFusionError::Plan(format!(
                "sink '{sink_name}' (connector 'kinesis'): {why}"
            )));
        }
        Ok(Arc::new(KinesisSinkDef {
            checker: KinesisSink::try_new(config.clone())?,
            config,
        }))
    }
}

impl StreamSink for KinesisSinkDef {
    fn check_schema(&self, schema: &SchemaRef) -> Result<()> {
        self.checker.check_schema(schema)
    }

    fn start(&self, run: SinkRun) -> Result<SinkReports> {
        let writer = Writer {
            sink: KinesisSink::try_new(self.config.clone())?,
            location: format!("kinesis:{}", self.config.stream),
            merged: MergedInputs::new(run.inputs),
            stop: run.stop,
            stop_closed: false,
            counters: run.counters,
            done: false,
        };
        Ok(futures::stream::unfold(writer, Writer::next).boxed())
    }
}

struct Writer {
    sink: KinesisSink,
    location: String,
    merged: MergedInputs,
    stop: StopSignal,
    stop_closed: bool,
    counters: Arc<SinkCounters>,
    done: bool,
}

impl Writer {
    async fn next(mut self) -> Option<(Result<SinkReport>, Self)> {
        loop {
            if self.done {
                return None;
            }
            let batch = tokio::select! {
                biased;
                stopped = self.stop.wait_for(|v| *v).map(|r| r.is_ok()), if !self.stop_closed => {
                    if !stopped {
                        // The query handle is gone: nobody can stop us any more.
                        self.stop_closed = true;
                        continue;
                    }
                    None
                }
                message = self.merged.next() => match message {
                    None => None,
                    Some(Ok(Merged::Batch { batch, .. })) => Some(batch),
                    Some(Ok(Merged::Progress(_))) => continue,
                    Some(Err(e)) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                },
            };
            let Some(batch) = batch else {
                self.done = true;
                return None;
            };
            if batch.num_rows() == 0 {
                continue;
            }
            self.counters
                .rows_in
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            let before = self.sink.stats().bytes.load(Ordering::Relaxed);
            return match self.sink.write_batch(&batch).await {
                Ok(rows) => {
                    let bytes = self.sink.stats().bytes.load(Ordering::Relaxed) - before;
                    let report = SinkReport {
                        location: self.location.clone(),
                        rows: rows as u64,
                        bytes,
                    };
                    Some((Ok(report), self))
                }
                Err(e) => {
                    self.done = true;
                    Some((Err(e), self))
                }
            };
        }
    }
}
