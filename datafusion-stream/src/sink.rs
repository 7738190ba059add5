//! Sinks and connector tables: the output side of `CREATE SINK` / `INSERT INTO`, and
//! `CREATE TABLE ... WITH ('connector' = ...)` reference tables.
//!
//! ```text
//!  CREATE SINK out [(cols)] WITH ('connector' = c, ...)
//!     └─ SinkFactory c ──create(ctx, name, cols, options)──► Arc<dyn StreamSink>   (checks the
//!                                                              destination: bucket, stream, ...)
//!  INSERT INTO out SELECT ...
//!     plan the query ─► [cast/rename to the declared columns] ─► physical plan
//!     MessageInput::extract (rows + progress per partition; a bounded plan: rows only)
//!        │
//!        ▼  StreamSink::start(SinkRun { inputs, schema, stop, counters, clock })
//!     the sink's writer (polled by the query's consumer, no task of its own):
//!        rows ─► write (counters.rows_in)      progress ─► roll / close time partitions
//!        ├─ something durable happened ─► SinkReport { location, rows, bytes }
//!        │      = one row of the query's output stream (sink_report_schema)
//!        ├─ inputs end  ─► close (complete every file) ─► final reports ─► end
//!        ├─ stop signal ─► stop reading, close as above  (StreamQuery::stop: Ctrl-C, --duration)
//!        └─ error       ─► abort what is open (no partial object) ─► Err
//!
//!  CREATE TABLE t [(cols)] WITH ('connector' = c, ...)
//!     └─ TableFactory c ──create──► ConnectorTable { provider (bounded), background (reload) }
//!                                    registered in the session: joinable from streams (lookup)
//! ```
//!
//! State: the context keeps each sink (its declared columns and the factory's object) and each
//! connector table's background guard; a running INSERT owns its writer.

use std::any::Any;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::stream::BoxStream;

use crate::exec::messages::MessageStream;
use crate::source::ConnectorOptions;
use crate::time::StreamClock;

/// What a sink's factory gets besides its options.
#[derive(Clone)]
pub struct SinkEnv {
    /// The session's runtime environment (object store registry, memory pool).
    pub runtime_env: Arc<RuntimeEnv>,
    /// The context's clock.
    pub clock: Arc<dyn StreamClock>,
}

impl Debug for SinkEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkEnv").finish_non_exhaustive()
    }
}

/// Creates sinks for `CREATE SINK name [(columns)] WITH ('connector' = '<name>', ...)`.
#[async_trait]
pub trait SinkFactory: Debug + Send + Sync {
    /// Creates the sink. `columns` are the declared columns, if any. `options` holds every
    /// `WITH` option but `connector`; the factory must reject the ones it does not know,
    /// naming them, and should check the destination now (the bucket or stream exists, the
    /// credentials are accepted, the endpoint answers), naming it in the error.
    async fn create(
        &self,
        env: &SinkEnv,
        sink_name: &str,
        columns: Option<SchemaRef>,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSink>>;
}

/// Live counters of a running sink (read by status displays).
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Rows the sink received from the query.
    pub rows_in: AtomicU64,
    /// Rows durably written (in completed objects, or acknowledged records).
    pub rows_written: AtomicU64,
    /// Bytes durably written.
    pub bytes_written: AtomicU64,
    /// Objects completed (files) or write calls acknowledged (records).
    pub commits: AtomicU64,
}

impl SinkCounters {
    /// Adds a report to the written counters.
    pub fn add_report(&self, report: &SinkReport) {
        self.rows_written.fetch_add(report.rows, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(report.bytes, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Rows received so far.
    pub fn rows_in(&self) -> u64 {
        self.rows_in.load(Ordering::Relaxed)
    }

    /// Rows written so far.
    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }

    /// Commits so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// Something a sink made durable: a completed object, or a batch of acknowledged records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkReport {
    /// Where: the object's URL, or the destination (e.g. `kinesis:stream`).
    pub location: String,
    /// Rows in it.
    pub rows: u64,
    /// Bytes in it.
    pub bytes: u64,
}

/// Asks a running sink to stop reading and close (see [`StreamSink::start`]).
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// Everything a sink needs to run one `INSERT INTO`.
pub struct SinkRun {
    /// Name of the sink.
    pub sink_name: String,
    /// The rows' schema (the declared columns when the sink has some).
    pub schema: SchemaRef,
    /// The query's output partitions: rows and progress, in order per partition. A bounded
    /// query without progress gives rows only.
    pub inputs: Vec<MessageStream>,
    /// Becomes `true` when the sink must stop reading and close what it has open.
    pub stop: StopSignal,
    /// Counters to keep up to date (`rows_in`; written counters are added from the reports by
    /// the context).
    pub counters: Arc<SinkCounters>,
    /// The context's clock (time-based rolling).
    pub clock: Arc<dyn StreamClock>,
}

/// The reports of a running sink; it ends when the sink has closed everything.
pub type SinkReports = BoxStream<'static, Result<SinkReport>>;

/// A sink created by `CREATE SINK`; each `INSERT INTO` starts a writer with [`Self::start`].
pub trait StreamSink: Debug + Send + Sync {
    /// Checks that the query's output (already cast to the declared columns, if any) can be
    /// written: a plan error naming the column or option otherwise.
    fn check_schema(&self, schema: &SchemaRef) -> Result<()>;

    /// Starts writing. The returned stream runs the writer when polled (no task of its own)
    /// and yields a report each time something became durable. It ends after the inputs end
    /// or the stop signal fires, once everything open is closed (complete objects only). On
    /// an error it aborts what is open and yields the error. Dropping it abandons open objects
    /// (aborted, never visible).
    fn start(&self, run: SinkRun) -> Result<SinkReports>;
}

/// The schema of an `INSERT INTO`'s output: one row per [`SinkReport`].
pub fn sink_report_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sink", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
    ]))
}

/// One report as a row of [`sink_report_schema`].
pub fn report_batch(sink: &str, report: &SinkReport) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        sink_report_schema(),
        vec![
            Arc::new(StringArray::from(vec![sink])),
            Arc::new(StringArray::from(vec![report.location.as_str()])),
            Arc::new(Int64Array::from(vec![report.rows as i64])),
            Arc::new(Int64Array::from(vec![report.bytes as i64])),
        ],
    )?)
}

/// A table created by a [`TableFactory`].
pub struct ConnectorTable {
    /// The table (bounded: a stream joins it as a lookup table).
    pub provider: Arc<dyn TableProvider>,
    /// Kept alive as long as the table is registered (e.g. a scheduled reload); dropped when
    /// the table is replaced or the context is dropped.
    pub background: Option<Box<dyn Any + Send + Sync>>,
}

impl Debug for ConnectorTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorTable")
            .field("background", &self.background.is_some())
            .finish_non_exhaustive()
    }
}

/// Creates tables for `CREATE TABLE name [(columns)] WITH ('connector' = '<name>', ...)`.
#[async_trait]
pub trait TableFactory: Debug + Send + Sync {
    /// Creates (and loads) the table. `columns` are the declared columns, if any; `options`
    /// every `WITH` option but `connector` (unknown ones must be rejected by name).
    async fn create(
        &self,
        env: &SinkEnv,
        table_name: &str,
        columns: Option<SchemaRef>,
        options: &mut ConnectorOptions,
    ) -> Result<ConnectorTable>;
}
