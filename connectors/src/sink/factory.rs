//! `CREATE SINK ... WITH ('connector' = 'object_store' | 'filesystem', ...)`: file sinks from
//! SQL, run by `INSERT INTO`.
//!
//! ```text
//!  CREATE SINK out [(cols)] WITH ('connector' = 'object_store', 'path' = 's3://b/out/', ...)
//!     FileSinkFactory::create: options (SinkOptions::take_from + store options, unknown ones
//!     rejected by name) ─► StoreLocation::resolve ─► check(): one LIST (missing bucket, bad
//!     credentials, unreachable endpoint named now) ─► FileSinkDef { location, options }
//!
//!  INSERT INTO out SELECT ...  ─► FileSinkDef::start ─► a new FileSink, driven by Writer:
//!     MergedInputs ── Batch ─► FileSink::write ─┐
//!                  └─ Progress ─► progress ─────┤ after each step: files completed since the
//!     clock ticks ─────────────► tick ──────────┤ last step ─► one SinkReport each
//!     inputs end | stop signal ─► close ────────┘ (every open file completed) ─► end
//!     error ─► abort open files (multipart uploads aborted) ─► Err
//! ```
//!
//! Options: `'path'` (required: `s3://bucket/prefix/`, `file:///dir`, `memory://name/prefix`),
//! `'format'` (`parquet`, the default; `json`, `csv`, `kda_json`, `kda_csv`), the rolling,
//! partitioning and naming options of [`SinkOptions::take_from`] (`'query_name'` defaults to
//! the sink's name), and the store options (`'endpoint'`, `'region'`, `'allow_http'`,
//! `'max_retries'`, `'timeout'`). One INSERT at a time per file sink (a second one would write
//! objects with the same names): a second running INSERT is an error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion_stream::exec::messages::{Merged, MergedInputs};
use datafusion_stream::sink::{
    SinkCounters, SinkEnv, SinkFactory, SinkReport, SinkReports, SinkRun, StopSignal, StreamSink,
};
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::Millis;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use super::{partition, FileSink, SinkOptions, SINK_OPTION_NAMES};
use crate::object_store::{StoreLocation, StoreOptions, STORE_OPTION_NAMES};

/// Connector names of the file sink.
pub const CONNECTORS: &[&str] = &["object_store", "filesystem"];

/// Creates file sinks (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct FileSinkFactory;

/// A file sink created by `CREATE SINK`: where and how to write.
#[derive(Debug)]
pub struct FileSinkDef {
    name: String,
    location: StoreLocation,
    options: SinkOptions,
    running: Arc<AtomicBool>,
}

impl FileSinkDef {
    /// The location written to.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The sink options.
    pub fn options(&self) -> &SinkOptions {
        &self.options
    }
}

fn valid_query_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[async_trait]
impl SinkFactory for FileSinkFactory {
    async fn create(
        &self,
        env: &SinkEnv,
        sink_name: &str,
        _columns: Option<SchemaRef>,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSink>> {
        let connector = options.connector().to_string();
        let Some(path) = options.take("path") else {
            return plan_err!(
                "sink '{sink_name}' (connector '{connector}'): option 'path' is required (s3://bucket/prefix/, file:///dir or memory://name/prefix)"
            );
        };
        let store_options = StoreOptions::take_from(options)?;
        // Defaults that differ from the Rust API's: Parquet unless 'format' says otherwise, and
        // objects named after the sink.
        let mut values = std::collections::HashMap::new();
        let format = options
            .take("format")
            .unwrap_or_else(|| "parquet".to_string());
        values.insert("format".to_string(), format);
        match options.take("query_name") {
            Some(q) => {
                values.insert("query_name".to_string(), q);
            }
            None if valid_query_name(sink_name) => {
                values.insert("query_name".to_string(), sink_name.to_string());
            }
            None => {}
        }
        for name in SINK_OPTION_NAMES {
            if let Some(v) = options.take(name) {
                values.insert(name.to_string(), v);
            }
        }
        let valid: Vec<&str> = SINK_OPTION_NAMES
            .iter()
            .chain(STORE_OPTION_NAMES)
            .copied()
            .collect();
        options.finish(&valid)?;
        let mut sink_values = ConnectorOptions::new(connector.clone(), values);
        let sink_options = SinkOptions::take_from(&mut sink_values)?;
        sink_values.finish(&valid)?;
        let location = StoreLocation::resolve(&env.runtime_env, &path, &store_options)?;
        location.check().await?;
        Ok(Arc::new(FileSinkDef {
            name: sink_name.to_string(),
            location,
            options: sink_options,
            running: Arc::new(AtomicBool::new(false)),
        }))
    }
}

impl StreamSink for FileSinkDef {
    fn check_schema(&self, schema: &SchemaRef) -> Result<()> {
        partition::Partitioner::try_new(
            &self.options.partition_by,
            schema,
            self.options.keep_partition_columns,
        )
        .map(|_| ())
    }

    fn start(&self, run: SinkRun) -> Result<SinkReports> {
        if self.running.swap(true, Ordering::SeqCst) {
            return plan_err!(
                "sink '{}' ({}) already has a running INSERT; a file sink takes one writer at a time (create another sink, e.g. with another 'path' or 'query_name')",
                self.name,
                self.location
            );
        }
        let busy = Busy(Arc::clone(&self.running));
        let mut sink = FileSink::try_new(self.location.clone(), self.options.clone())?
            .with_clock(Arc::clone(&run.clock));
        sink.bind_schema(Arc::clone(&run.schema))?;
        let ticks = match self.options.roll_interval {
            Some(d) => run.clock.ticks(tick_period(d)),
            None => futures::stream::pending().boxed(),
        };
        let writer = Writer {
            sink: Some(sink),
            merged: MergedInputs::new(run.inputs),
            ticks,
            stop: run.stop,
            stop_closed: false,
            counters: run.counters,
            reported: 0,
            pending: VecDeque::new(),
            failed: None,
            done: false,
            _busy: busy,
        };
        Ok(futures::stream::unfold(writer, Writer::next).boxed())
    }
}

/// Clears the sink's running flag when the writer goes away.
#[derive(Debug)]
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// How often a real clock is read for `roll_interval` while no rows arrive.
fn tick_period(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

struct Writer {
    sink: Option<FileSink>,
    merged: MergedInputs,
    ticks: BoxStream<'static, Millis>,
    stop: StopSignal,
    stop_closed: bool,
    counters: Arc<SinkCounters>,
    reported: usize,
    pending: VecDeque<SinkReport>,
    failed: Option<DataFusionError>,
    done: bool,
    _busy: Busy,
}

enum Step {
    Continue,
    Close,
    Fail(DataFusionError),
}

impl Writer {
    /// Queues a report for each file completed since the last call.
    fn collect_reports(&mut self, files: &[super::WrittenFile]) {
        for f in files.iter().skip(self.reported) {
            self.pending.push_back(SinkReport {
                location: f.url.clone(),
                rows: f.rows,
                bytes: f.bytes,
            });
        }
        self.reported = files.len();
    }

    async fn next(mut self) -> Option<(Result<SinkReport>, Self)> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some((Ok(r), self));
            }
            if let Some(e) = self.failed.take() {
                return Some((Err(e), self));
            }
            if self.done {
                return None;
            }
            let mut sink = self.sink.take()?;
            let step = {
                let Self {
                    merged,
                    ticks,
                    stop,
                    stop_closed,
                    counters,
                    ..
                } = &mut self;
                tokio::select! {
                    biased;
                    stopped = stop.wait_for(|v| *v).map(|r| r.is_ok()), if !*stop_closed => {
                        if stopped {
                            Step::Close
                        } else {
                            // The query handle is gone: nobody can stop us any more.
                            *stop_closed = true;
                            Step::Continue
                        }
                    }
                    message = merged.next() => match message {
                        None => Step::Close,
                        Some(Ok(Merged::Batch { input, batch })) => {
                            counters
                                .rows_in
                                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                            match sink.write(input, &batch).await {
                                Ok(()) => Step::Continue,
                                Err(e) => Step::Fail(e),
                            }
                        }
                        Some(Ok(Merged::Progress(p))) => match sink.progress(p).await {
                            Ok(()) => Step::Continue,
                            Err(e) => Step::Fail(e),
                        },
                        Some(Err(e)) => Step::Fail(e),
                    },
                    tick = ticks.next() => match tick {
                        Some(_) => match sink.tick().await {
                            Ok(()) => Step::Continue,
                            Err(e) => Step::Fail(e),
                        },
                        None => {
                            *ticks = futures::stream::pending().boxed();
                            Step::Continue
                        }
                    },
                }
            };
            self.collect_reports(&sink.stats().files);
            match step {
                Step::Continue => self.sink = Some(sink),
                Step::Close => {
                    self.done = true;
                    match sink.close().await {
                        Ok(stats) => self.collect_reports(&stats.files),
                        // close() aborted what it could not complete.
                        Err(e) => self.failed = Some(e),
                    }
                }
                Step::Fail(e) => {
                    // Files completed before the error stay (reported first); open ones are
                    // abandoned, their multipart uploads aborted.
                    let _ = sink.abort().await;
                    self.done = true;
                    self.failed = Some(e);
                }
            }
        }
    }
}
