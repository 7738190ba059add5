//! Reference tables: one object (CSV, JSON lines or Parquet) loaded into memory as a DataFusion
//! table, reloadable on demand and on a schedule, with the loaded object's version recorded.
//!
//! ```text
//!  StoreLocation (s3:// file:// memory://)          ReferenceTable (Clone: one shared Inner)
//!     │ GET (If-None-Match: current ETag)       ┌──────────────────────────────────────────┐
//!     ├── 304 not modified ──► Unchanged        │ snapshot: RwLock<Arc<Snapshot>>          │
//!     └── 200 bytes + meta ──► decode ─────────►│   batches (the whole table)              │
//!            csv / json lines (arrow readers,   │   version {ETag, version, last_modified, │
//!            declared or inferred schema),      │            size}  ◄── current_version()  │
//!            KDA ReferenceSchema (RecordDecoder)│ generation: watch<u64> (changes())       │
//!            parquet (ParquetRecordBatchReader) │ last_error (scheduled reloads)           │
//!                                               └───────────┬──────────────────────────────┘
//!  TableProvider::scan ── snapshot at planning time ────────┘──► MemTable scan (bounded)
//!  ReloadTask: clock ticks ──► reload() every `every` ──► swap snapshot (stop() / drop ends it)
//! ```
//!
//! * **Atomic versions.** Rows and version come from the same GET response, so the recorded
//!   version is the one whose bytes were decoded (a HEAD then a GET could straddle an update).
//!   A reload sends `If-None-Match` with the current ETag and does nothing when the object is
//!   unchanged.
//! * **Failed reloads** keep the previous snapshot: a reload that cannot read or decode the
//!   object returns the error (on demand) or records it in [`ReferenceTable::last_error`]
//!   (scheduled), and the table keeps serving the rows it had.
//! * **The schema is fixed** at the first load (declared, inferred for CSV / JSON, or the
//!   Parquet file's): a reloaded Parquet object whose columns differ is rejected.
//! * **Queries see one snapshot.** `scan` takes the snapshot current at planning time; the
//!   engine's stream-to-table lookup join reads it once when the query starts, so a reload
//!   affects queries started after it.

use std::fmt;
use std::io::Cursor;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ::object_store::{GetOptions, ObjectMeta};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{exec_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_stream::time::StreamClock;
use datafusion_stream::Millis;
use futures::StreamExt;

use super::StoreLocation;
use crate::kda::{InputSchema, RecordDecoder, RecordFormatType, RecordMeta};

/// How the object is encoded.
#[derive(Debug, Clone)]
pub enum ReferenceFormat {
    /// CSV with an optional header line.
    Csv {
        /// The first line names the columns.
        header: bool,
        /// Field delimiter.
        delimiter: u8,
    },
    /// One JSON object per line; keys are matched to column names.
    JsonLines,
    /// A Parquet file.
    Parquet,
    /// KDA's `ReferenceSchema`: CSV or JSON records decoded with its column mappings and
    /// coercion rules ([`RecordDecoder`]). A record that does not decode fails the load.
    Kda(Box<InputSchema>),
}

impl ReferenceFormat {
    /// `'csv'` (with a header), `'json'`, `'parquet'`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv {
                header: true,
                delimiter: b',',
            }),
            "json" | "jsonl" | "json_lines" | "ndjson" => Ok(Self::JsonLines),
            "parquet" => Ok(Self::Parquet),
            other => {
                plan_err!("reference table: format '{other}' is not supported (csv, json, parquet)")
            }
        }
    }
}

/// How to load a reference table.
#[derive(Debug, Clone)]
pub struct ReferenceTableOptions {
    /// The object's format.
    pub format: ReferenceFormat,
    /// The columns (CSV / JSON). `None`: inferred from the object at the first load (all of
    /// it). For Parquet, the file's schema is used and, if given, must match.
    pub schema: Option<SchemaRef>,
    /// Rows per batch when decoding.
    pub batch_size: usize,
}

impl ReferenceTableOptions {
    /// Options for `format`, schema inferred, 8192 rows per batch.
    pub fn new(format: ReferenceFormat) -> Self {
        Self {
            format,
            schema: None,
            batch_size: 8192,
        }
    }

    /// Declares the columns.
    pub fn with_schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }
}

/// The version of the object a snapshot was loaded from: what a checkpoint records to pin it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// URL of the object.
    pub url: String,
    /// Its ETag, when the store has them (S3, local files, memory).
    pub e_tag: Option<String>,
    /// Its version id, on a versioned bucket.
    pub version: Option<String>,
    /// Last modification time, epoch milliseconds.
    pub last_modified: Millis,
    /// Size in bytes.
    pub size: u64,
}

impl ObjectVersion {
    fn from_meta(url: String, meta: &ObjectMeta) -> Self {
        Self {
            url,
            e_tag: meta.e_tag.clone(),
            version: meta.version.clone(),
            last_modified: meta.last_modified.timestamp_millis(),
            size: meta.size,
        }
    }
}

/// What [`ReferenceTable::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The object has the version already loaded; nothing changed.
    Unchanged(ObjectVersion),
    /// A new version was loaded.
    Reloaded {
        /// The version replaced.
        previous: ObjectVersion,
        /// The version now served.
        current: ObjectVersion,
        /// Rows now in the table.
        rows: usize,
    },
}

#[derive(Debug)]
struct Snapshot {
    batches: Vec<RecordBatch>,
    rows: usize,
    version: ObjectVersion,
}

struct Inner {
    location: StoreLocation,
    options: ReferenceTableOptions,
    schema: SchemaRef,
    snapshot: RwLock<Arc<Snapshot>>,
    generation: tokio::sync::watch::Sender<u64>,
    last_error: Mutex<Option<String>>,
    /// Serialises reloads (on demand and scheduled).
    reload_lock: tokio::sync::Mutex<()>,
}

/// A reference table over one object; see the module docs. Cloning gives another handle on
/// the same table (register one clone, keep another to reload).
#[derive(Clone)]
pub struct ReferenceTable {
    inner: Arc<Inner>,
}

impl fmt::Debug for ReferenceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceTable")
            .field("url", &self.inner.location.url())
            .field("version", &self.current_version())
            .finish()
    }
}

impl ReferenceTable {
    /// Loads the object at `location` (the location's prefix is the object's path). Fails
    /// with the URL (and bucket or endpoint) when it cannot be read or decoded.
    pub async fn load(location: StoreLocation, options: ReferenceTableOptions) -> Result<Self> {
        let path = location.prefix().clone();
        if path.as_ref().is_empty() {
            return plan_err!(
                "reference table '{}': the URL must name an object, not a bucket",
                location.url()
            );
        }
        let result = location
            .store()
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(|e| location.error("reference table: read", &path, e))?;
        let meta = result.meta.clone();
        let bytes = result
            .bytes()
            .await
            .map_err(|e| location.error("reference table: read", &path, e))?;
        let schema = match (&options.format, &options.schema) {
            (ReferenceFormat::Kda(s), _) => s.arrow_schema()?,
            (ReferenceFormat::Parquet, _) => parquet_schema(&location, &bytes)?,
            (_, Some(s)) => Arc::clone(s),
            (format, None) => infer_schema(&location, format, &bytes)?,
        };
        if let (ReferenceFormat::Parquet, Some(declared)) = (&options.format, &options.schema) {
            check_same_columns(&location, declared, &schema)?;
        }
        let batches = decode(&location, &options, &schema, bytes)?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let version = ObjectVersion::from_meta(location.url().to_string(), &meta);
        let (generation, _) = tokio::sync::watch::channel(0);
        Ok(Self {
            inner: Arc::new(Inner {
                location,
                options,
                schema,
                snapshot: RwLock::new(Arc::new(Snapshot {
                    batches,
                    rows,
                    version,
                })),
                generation,
                last_error: Mutex::new(None),
                reload_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.inner.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The version of the object the table currently serves.
    pub fn current_version(&self) -> ObjectVersion {
        self.snapshot().version.clone()
    }

    /// Rows currently in the table.
    pub fn num_rows(&self) -> usize {
        self.snapshot().rows
    }

    /// The rows currently in the table.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.snapshot().batches.clone()
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        self.inner.location.url()
    }

    /// Counts the loads that changed the table (0 after the first load); `changed()` on the
    /// receiver wakes after each one.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// The error of the last scheduled reload, if it failed (cleared by a successful one).
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Reloads the object if its version changed. On failure the table keeps its rows.
    pub async fn reload(&self) -> Result<ReloadOutcome> {
        let _serial = self.inner.reload_lock.lock().await;
        let inner = &self.inner;
        let location = &inner.location;
        let path = location.prefix().clone();
        let current = self.current_version();
        let options = GetOptions {
            if_none_match: current.e_tag.clone(),
            ..GetOptions::default()
        };
        let result = match location.store().get_opts(&path, options).await {
            Ok(r) => r,
            Err(::object_store::Error::NotModified { .. }) => {
                return Ok(ReloadOutcome::Unchanged(current))
            }
            Err(e) => return Err(location.error("reference table: reload", &path, e)),
        };
        let meta = result.meta.clone();
        let version = ObjectVersion::from_meta(location.url().to_string(), &meta);
        if current.e_tag.is_some() && version == current {
            return Ok(ReloadOutcome::Unchanged(current));
        }
        let bytes = result
            .bytes()
            .await
            .map_err(|e| location.error("reference table: reload", &path, e))?;
        if let ReferenceFormat::Parquet = inner.options.format {
            let found = parquet_schema(location, &bytes)?;
            check_same_columns(location, &inner.schema, &found)?;
        }
        let batches = decode(location, &inner.options, &inner.schema, bytes)?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let snapshot = Arc::new(Snapshot {
            batches,
            rows,
            version: version.clone(),
        });
        match inner.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        inner.generation.send_modify(|g| *g += 1);
        Ok(ReloadOutcome::Reloaded {
            previous: current,
            current: version,
            rows,
        })
    }

    /// Reloads in a background task whenever `every` has passed on `clock` since the last
    /// attempt (a real clock ticks every `every`; a manual clock at each advance). Errors are
    /// kept in [`Self::last_error`]; the table keeps its rows. Stop it with
    /// [`ReloadTask::stop`] (or by dropping the handle).
    pub fn start_reloading(&self, every: Duration, clock: Arc<dyn StreamClock>) -> ReloadTask {
        let table = self.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let every_ms = every.as_millis() as Millis;
        // Subscribed before the task starts, so no clock advance after this call is missed.
        let mut ticks = clock.ticks(every);
        let mut last = clock.now();
        let handle = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    tick = ticks.next() => {
                        let Some(now) = tick else { break };
                        if now.saturating_sub(last) < every_ms {
                            continue;
                        }
                        last = now;
                        let outcome = table.reload().await;
                        if let Ok(mut e) = table.inner.last_error.lock() {
                            *e = outcome.err().map(|e| e.to_string());
                        }
                    }
                }
            }
        });
        ReloadTask {
            stop: Some(stop_tx),
            handle: Some(handle),
        }
    }
}

/// A running scheduled reload ([`ReferenceTable::start_reloading`]).
#[derive(Debug)]
pub struct ReloadTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl ReloadTask {
    /// Stops the schedule and waits for a reload in progress to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for ReloadTask {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

#[async_trait]
impl TableProvider for ReferenceTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.inner.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.snapshot();
        let table = MemTable::try_new(self.schema(), vec![snapshot.batches.clone()])?;
        table.scan(state, projection, filters, limit).await
    }
}

fn decode_error(location: &StoreLocation, e: impl fmt::Display) -> DataFusionError {
    exec_datafusion_err!("reference table '{}': {e}", location.url())
}

fn parquet_schema(location: &StoreLocation, bytes: &Bytes) -> Result<SchemaRef> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .map_err(|e| decode_error(location, format!("not a readable Parquet file: {e}")))?;
    Ok(Arc::clone(builder.schema()))
}

fn check_same_columns(location: &StoreLocation, expected: &Schema, found: &Schema) -> Result<()> {
    let shape = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    };
    if shape(expected) != shape(found) {
        return Err(decode_error(
            location,
            format!(
                "the object's columns ({}) differ from the table's ({})",
                shape(found).join(", "),
                shape(expected).join(", ")
            ),
        ));
    }
    Ok(())
}

fn infer_schema(
    location: &StoreLocation,
    format: &ReferenceFormat,
    bytes: &Bytes,
) -> Result<SchemaRef> {
    use datafusion::arrow::{csv, json};
    let schema = match format {
        ReferenceFormat::Csv { header, delimiter } => {
            csv::reader::Format::default()
                .with_header(*header)
                .with_delimiter(*delimiter)
                .infer_schema(Cursor::new(bytes.as_ref()), None)
                .map_err(|e| decode_error(location, format!("cannot infer CSV columns: {e}")))?
                .0
        }
        ReferenceFormat::JsonLines => {
            json::reader::infer_json_schema(Cursor::new(bytes.as_ref()), None)
                .map_err(|e| decode_error(location, format!("cannot infer JSON columns: {e}")))?
                .0
        }
        ReferenceFormat::Parquet | ReferenceFormat::Kda(_) => {
            return Err(decode_error(location, "no schema to infer"))
        }
    };
    Ok(Arc::new(schema))
}

fn decode(
    location: &StoreLocation,
    options: &ReferenceTableOptions,
    schema: &SchemaRef,
    bytes: Bytes,
) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::{csv, json};
    let batch_size = options.batch_size.max(1);
    let batches: Vec<RecordBatch> = match &options.format {
        ReferenceFormat::Csv { header, delimiter } => csv::ReaderBuilder::new(Arc::clone(schema))
            .with_header(*header)
            .with_delimiter(*delimiter)
            .with_batch_size(batch_size)
            .build(Cursor::new(bytes))
            .and_then(|r| r.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| decode_error(location, format!("CSV: {e}")))?,
        ReferenceFormat::JsonLines => json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(batch_size)
            .build(Cursor::new(bytes))
            .and_then(|r| r.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| decode_error(location, format!("JSON: {e}")))?,
        ReferenceFormat::Parquet => ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(batch_size).build())
            .map_err(|e| decode_error(location, format!("Parquet: {e}")))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| decode_error(location, format!("Parquet: {e}")))?,
        ReferenceFormat::Kda(input_schema) => decode_kda(location, input_schema, &bytes)?,
    };
    // Readers may attach their own metadata; the table's schema is the one registered.
    batches
        .into_iter()
        .map(|b| {
            RecordBatch::try_new(Arc::clone(schema), b.columns().to_vec())
                .map_err(|e| decode_error(location, e))
        })
        .collect()
}

/// Decodes KDA reference data: JSON records one per line, or the whole object as CSV records
/// split by the schema's row delimiter. The first record that does not decode fails the load.
fn decode_kda(
    location: &StoreLocation,
    schema: &InputSchema,
    bytes: &[u8],
) -> Result<Vec<RecordBatch>> {
    let mut decoder = RecordDecoder::try_new(schema)?;
    let records: Vec<&[u8]> = match schema.format_type() {
        RecordFormatType::Json => bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .collect(),
        RecordFormatType::Csv => vec![bytes],
    };
    let origin = location.url().to_string();
    for record in records {
        let meta = RecordMeta {
            origin: &origin,
            error_time: 0,
            rowtime: None,
        };
        let decoded = decoder.decode(record, &meta);
        if let Some(e) = decoded.rejected.first() {
            return Err(decode_error(location, format!("{}: {}", e.name, e.message)));
        }
    }
    Ok(vec![decoder.finish()?])
}
