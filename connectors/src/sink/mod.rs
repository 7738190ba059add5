//! File sinks: a stream's rows written as Parquet, JSON-lines or CSV objects through
//! `object_store` (S3, local files, memory), rolled by size and time, optionally partitioned
//! Hive-style, with deterministic object names.
//!
//! ```text
//!  MessageStream p0..pn ─► MergedInputs ─► Batch{input p, rows} ──► Partitioner ──► per (dir, p):
//!   (run / run_query_into_sink)    │                               dt=2024-05-01/hour=13 ...
//!                                  │                                       │
//!                                  │      open files: (dir, p) ─► OpenFile { seq, rows, opened_at,
//!                                  │                                writer: AsyncArrowWriter<UploadWriter>
//!                                  │                                        | text encoder + UploadWriter }
//!                                  │                                       │ roll: rows / bytes / age
//!                                  └─ Progress(W) ─► close time partitions ending ≤ W, boundary rolls
//!  clock ticks ─► close files older than roll_interval                     │ close
//!                                                                          ▼
//!                    <prefix>/<dir>/<query>-<p>-<seq:06>.<ext>  (visible only when complete)
//! ```
//!
//! # Guarantees
//! * **Whole objects only.** A file is written through `object_store::buffered::BufWriter`:
//!   small files are one PUT when closed, larger ones a multipart upload completed when closed.
//!   Until then nothing is visible. On any error (or [`FileSink::abort`]) every open file is
//!   abandoned and its multipart upload aborted ([`upload`] tracks the upload so that even a
//!   part failing during completion is aborted). Files closed before the error stay: each is a
//!   complete, readable object.
//! * **Deterministic names.** `<prefix>/<partition dir>/<query>-<p>-<seq:06>.<ext>`: `query` is
//!   [`SinkOptions::query_name`], `p` the input partition the rows came from (a file never mixes
//!   partitions, so its contents depend only on that partition's ordered input), `seq` counts
//!   the files of (dir, p) from 0. With [`SequenceStart::Resume`] (the default) a sink continues
//!   after the highest sequence number already in a directory (one LIST per directory, when it
//!   is first written), so a restart never overwrites earlier output; [`SequenceStart::Zero`]
//!   always starts at 0 (replays that must reproduce the same objects).
//! * **Rolling.** A file is closed when it holds `roll_rows` rows (exactly: a batch is split at
//!   the limit), when its estimated size reaches `roll_bytes` (checked after each batch), when
//!   it is `roll_interval` old on the context clock (checked on every batch and clock tick),
//!   when the stream's progress crosses a multiple of `roll_boundary` (deterministic: driven by
//!   the data's time, not the wall clock), when its time partition is complete (the watermark
//!   passed the partition's end), when more than `max_open_files` are open (least recently
//!   written first), and at the end of the input.
//! * **Late rows** for a time partition already closed open a new file (next sequence number)
//!   in the same directory: never lost.
//!
//! Dropping a sink without [`FileSink::close`] or [`FileSink::abort`] aborts its open uploads
//! in the background (best effort, when a tokio runtime is running).

pub mod factory;
mod options;
pub mod partition;
mod runner;
mod upload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use ::object_store::path::Path;
use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, internal_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion_stream::scan::Progress;
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::time::{StreamClock, SystemClock, WATERMARK_MAX, WATERMARK_MIN};
use datafusion_stream::Millis;

use crate::object_store::{StoreLocation, StoreOptions, STORE_OPTION_NAMES};
pub use factory::{FileSinkDef, FileSinkFactory};
pub use options::{ProgressTime, SequenceStart, SinkFormat, SinkOptions, SINK_OPTION_NAMES};
pub use partition::{PartitionBy, TimeGranularity};
pub use runner::run_query_into_sink;
use upload::UploadWriter;

/// One object the sink completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Path in the store (prefix included).
    pub path: String,
    /// Its URL.
    pub url: String,
    /// Partition directory relative to the prefix (`""` when unpartitioned).
    pub partition: String,
    /// Input partition the rows came from.
    pub input: usize,
    /// Sequence number.
    pub sequence: u64,
    /// Rows in the file.
    pub rows: u64,
    /// Bytes in the object.
    pub bytes: u64,
}

/// What a sink has written so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Rows in completed files.
    pub rows: u64,
    /// Bytes in completed files.
    pub bytes: u64,
    /// Every completed file, in the order they were completed.
    pub files: Vec<WrittenFile>,
}

// One writer per open file: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum FormatWriter {
    Parquet(Box<AsyncArrowWriter<UploadWriter>>),
    Text {
        out: Box<UploadWriter>,
        header_pending: bool,
    },
}

struct OpenFile {
    path: Path,
    sequence: u64,
    rows: u64,
    opened_at: Millis,
    last_write: u64,
    bucket_end: Option<Millis>,
    writer: FormatWriter,
}

impl OpenFile {
    fn size(&self) -> u64 {
        match &self.writer {
            FormatWriter::Parquet(w) => (w.bytes_written() + w.in_progress_size()) as u64,
            FormatWriter::Text { out, .. } => out.bytes(),
        }
    }

    async fn abort(self) -> ::object_store::Result<()> {
        match self.writer {
            FormatWriter::Parquet(w) => w.into_inner().abort().await,
            FormatWriter::Text { mut out, .. } => out.abort().await,
        }
    }
}

type FileKey = (String, usize);

/// Writes rows to objects; see the module docs.
pub struct FileSink {
    location: StoreLocation,
    options: SinkOptions,
    clock: Option<Arc<dyn StreamClock>>,
    schema: Option<SchemaRef>,
    partitioner: Option<partition::Partitioner>,
    open: HashMap<FileKey, OpenFile>,
    next_sequence: HashMap<FileKey, u64>,
    listed_dirs: HashSet<String>,
    stats: SinkStats,
    writes: u64,
    boundary_index: Option<i64>,
    failed: Option<String>,
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("location", &self.location)
            .field("options", &self.options)
            .field("open_files", &self.open.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl FileSink {
    /// A sink writing under `location` (nothing is contacted until the first file; call
    /// [`StoreLocation::check`] first to report a missing bucket early).
    pub fn try_new(location: StoreLocation, options: SinkOptions) -> Result<Self> {
        options.validate()?;
        Ok(Self {
            location,
            options,
            clock: None,
            schema: None,
            partitioner: None,
            open: HashMap::new(),
            next_sequence: HashMap::new(),
            listed_dirs: HashSet::new(),
            stats: SinkStats::default(),
            writes: 0,
            boundary_index: None,
            failed: None,
        })
    }

    /// A sink from `WITH (...)`-style options: `'path'` (the URL, required), the store options
    /// (`'endpoint'`, `'region'`, `'allow_http'`, `'max_retries'`, `'timeout'`) and the sink
    /// options ([`SinkOptions::take_from`]). The store is resolved through the session's
    /// registry (see [`StoreLocation::resolve`]). Unknown options are rejected by name.
    pub fn from_options(
        env: &datafusion::execution::runtime_env::RuntimeEnv,
        mut options: ConnectorOptions,
    ) -> Result<Self> {
        let Some(path) = options.take("path") else {
            return plan_err!(
                "connector '{}': option 'path' is required (s3://bucket/prefix, file:///dir or memory://name/prefix)",
                options.connector()
            );
        };
        let store_options = StoreOptions::take_from(&mut options)?;
        let sink_options = SinkOptions::take_from(&mut options)?;
        let valid: Vec<&str> = SINK_OPTION_NAMES
            .iter()
            .chain(STORE_OPTION_NAMES)
            .copied()
            .collect();
        options.finish(&valid)?;
        let location = StoreLocation::resolve(env, &path, &store_options)?;
        Self::try_new(location, sink_options)
    }

    /// Uses `clock` for `roll_interval` (default: the wall clock; [`run_query_into_sink`] uses
    /// the context's).
    pub fn with_clock(mut self, clock: Arc<dyn StreamClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The location written to.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The options.
    pub fn options(&self) -> &SinkOptions {
        &self.options
    }

    /// What has been written so far.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// Number of files open now.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    fn now(&self) -> Millis {
        match &self.clock {
            Some(c) => c.now(),
            None => SystemClock.now(),
        }
    }

    pub(crate) fn has_clock(&self) -> bool {
        self.clock.is_some()
    }

    pub(crate) fn clock(&self) -> Arc<dyn StreamClock> {
        self.clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock) as Arc<dyn StreamClock>)
    }

    /// Fixes the schema of the rows (done by the first [`Self::write`] otherwise): checks the
    /// partition columns. Every later batch must have this schema.
    pub fn bind_schema(&mut self, schema: SchemaRef) -> Result<()> {
        if let Some(existing) = &self.schema {
            if !same_columns(existing, &schema) {
                return exec_err!(
                    "sink {}: a batch's columns differ from the first batch's",
                    self.location
                );
            }
            return Ok(());
        }
        let partitioner = partition::Partitioner::try_new(
            &self.options.partition_by,
            &schema,
            self.options.keep_partition_columns,
        )?;
        self.partitioner = Some(partitioner);
        self.schema = Some(schema);
        Ok(())
    }

    fn check_failed(&self) -> Result<()> {
        match &self.failed {
            Some(e) => exec_err!("sink {} failed earlier: {e}", self.location),
            None => Ok(()),
        }
    }

    async fn fail(&mut self, e: DataFusionError) -> DataFusionError {
        self.failed = Some(e.to_string());
        let _ = self.abort_open().await;
        e
    }

    /// Writes rows that came from input partition `input`.
    pub async fn write(&mut self, input: usize, batch: &RecordBatch) -> Result<()> {
        self.check_failed()?;
        match self.write_inner(input, batch).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn write_inner(&mut self, input: usize, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.schema.is_none() {
            self.bind_schema(batch.schema())?;
        } else if let Some(s) = &self.schema {
            if !same_columns(s, &batch.schema()) {
                return exec_err!(
                    "sink {}: a batch's columns differ from the first batch's",
                    self.location
                );
            }
        }
        let parts = match &self.partitioner {
            Some(p) => p.split(batch)?,
            None => return Err(internal_datafusion_err!("sink: no partitioner")),
        };
        let now = self.now();
        for part in parts {
            let key: FileKey = (part.path, input);
            let rows = part.batch;
            let mut offset = 0;
            while offset < rows.num_rows() {
                let aged = self.open.get(&key).is_some_and(|f| self.is_aged(f, now));
                if aged {
                    self.close_file(&key).await?;
                }
                if !self.open.contains_key(&key) {
                    self.open_file(&key, part.bucket_end, now).await?;
                }
                self.writes += 1;
                let writes = self.writes;
                let roll_rows = self.options.roll_rows;
                let roll_bytes = self.options.roll_bytes;
                let format = self.options.format.clone();
                let Some(file) = self.open.get_mut(&key) else {
                    return Err(internal_datafusion_err!(
                        "sink: file for '{}' not open",
                        key.0
                    ));
                };
                let room = roll_rows.map_or(u64::MAX, |r| r.saturating_sub(file.rows).max(1));
                let n = (rows.num_rows() - offset).min(usize::try_from(room).unwrap_or(usize::MAX));
                let slice = rows.slice(offset, n);
                write_rows(file, &slice, &format)
                    .await
                    .map_err(|e| self.location.error("write", &file.path, e))?;
                file.rows += n as u64;
                file.last_write = writes;
                offset += n;
                let full = roll_rows.is_some_and(|r| file.rows >= r)
                    || roll_bytes.is_some_and(|b| file.size() >= b);
                if full {
                    self.close_file(&key).await?;
                }
            }
        }
        while self.open.len() > self.options.max_open_files {
            let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, f)| f.last_write)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.close_file(&oldest).await?;
        }
        Ok(())
    }

    fn is_aged(&self, file: &OpenFile, now: Millis) -> bool {
        self.options
            .roll_interval
            .is_some_and(|d| now.saturating_sub(file.opened_at) >= d.as_millis() as Millis)
    }

    /// Handles the stream's progress: closes the files of time partitions that are complete,
    /// rolls at `roll_boundary` crossings, and closes aged files.
    pub async fn progress(&mut self, progress: Progress) -> Result<()> {
        self.check_failed()?;
        match self.progress_inner(progress).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn progress_inner(&mut self, p: Progress) -> Result<()> {
        let rowtime_partitions = self
            .partitioner
            .as_ref()
            .is_some_and(|p| p.closes_on_rowtime());
        let w = if rowtime_partitions {
            p.rowtime
        } else {
            p.event_time
        };
        if w > WATERMARK_MIN {
            let mut done: Vec<FileKey> = self
                .open
                .iter()
                .filter(|(_, f)| f.bucket_end.is_some_and(|end| end - 1 <= w))
                .map(|(k, _)| k.clone())
                .collect();
            done.sort();
            for k in done {
                self.close_file(&k).await?;
            }
        }
        if let Some(boundary) = self.options.roll_boundary {
            let t = match self.options.boundary_time {
                ProgressTime::Rowtime => p.rowtime,
                ProgressTime::EventTime => p.event_time,
            };
            if t > WATERMARK_MIN && t < WATERMARK_MAX {
                let b = (boundary.as_millis() as Millis).max(1);
                let index = t.saturating_add(1).div_euclid(b);
                let crossed = self.boundary_index.is_some_and(|prev| index > prev);
                if self.boundary_index.is_none_or(|prev| index > prev) {
                    self.boundary_index = Some(index);
                }
                if crossed {
                    self.close_all().await?;
                }
            }
        }
        self.tick_inner().await
    }

    /// Closes files older than `roll_interval` on the sink's clock.
    pub async fn tick(&mut self) -> Result<()> {
        self.check_failed()?;
        match self.tick_inner().await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e).await),
        }
    }

    async fn tick_inner(&mut self) -> Result<()> {
        if self.options.roll_interval.is_none() {
            return Ok(());
        }
        let now = self.now();
        let mut aged: Vec<FileKey> = self
            .open
            .iter()
            .filter(|(_, f)| self.is_aged(f, now))
            .map(|(k, _)| k.clone())
            .collect();
        aged.sort();
        for k in aged {
            self.close_file(&k).await?;
        }
        Ok(())
    }

    async fn close_all(&mut self) -> Result<()> {
        let mut keys: Vec<FileKey> = self.open.keys().cloned().collect();
        keys.sort();
        for k in keys {
            self.close_file(&k).await?;
        }
        Ok(())
    }

    /// Closes every open file and returns what was written. On error the files not yet closed
    /// are aborted.
    pub async fn close(mut self) -> Result<SinkStats> {
        self.check_failed()?;
        match self.close_all().await {
            Ok(()) => Ok(std::mem::take(&mut self.stats)),
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// Abandons every open file (multipart uploads aborted; nothing partial is visible).
    /// Files completed earlier stay.
    pub async fn abort(mut self) -> Result<SinkStats> {
        self.abort_open().await?;
        Ok(std::mem::take(&mut self.stats))
    }

    async fn abort_open(&mut self) -> Result<()> {
        let mut first = None;
        let files: Vec<(FileKey, OpenFile)> = self.open.drain().collect();
        for (_, f) in files {
            let path = f.path.clone();
            if let Err(e) = f.abort().await {
                first.get_or_insert_with(|| self.location.error("abort upload of", &path, e));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn next_sequence_for(&mut self, key: &FileKey) -> Result<u64> {
        if self.options.sequence_start == SequenceStart::Resume
            && !self.listed_dirs.contains(&key.0)
        {
            self.listed_dirs.insert(key.0.clone());
            let dir = self.dir_path(&key.0)?;
            let listing = self.location.store().list_with_delimiter(Some(&dir)).await;
            let listing = match listing {
                Ok(l) => l.objects,
                Err(::object_store::Error::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(self.location.error("list", &dir, e)),
            };
            let ext = self.options.format.extension();
            let prefix = format!("{}-", self.options.query_name);
            for meta in listing {
                let Some(name) = meta.location.filename() else {
                    continue;
                };
                let Some(rest) = name
                    .strip_prefix(&prefix)
                    .and_then(|r| r.strip_suffix(ext))
                    .and_then(|r| r.strip_suffix('.'))
                else {
                    continue;
                };
                let Some((p, seq)) = rest.split_once('-') else {
                    continue;
                };
                if let (Ok(p), Ok(seq)) = (p.parse::<usize>(), seq.parse::<u64>()) {
                    let next = self.next_sequence.entry((key.0.clone(), p)).or_insert(0);
                    *next = (*next).max(seq + 1);
                }
            }
        }
        let next = self.next_sequence.entry(key.clone()).or_insert(0);
        let seq = *next;
        *next += 1;
        Ok(seq)
    }

    fn dir_path(&self, dir: &str) -> Result<Path> {
        let prefix = self.location.prefix().as_ref();
        let joined = match (prefix.is_empty(), dir.is_empty()) {
            (true, true) => String::new(),
            (true, false) => dir.to_string(),
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}/{dir}"),
        };
        Path::parse(&joined).map_err(|e| {
            DataFusionError::Execution(format!(
                "sink {}: invalid path '{joined}': {e}",
                self.location
            ))
        })
    }

    async fn open_file(
        &mut self,
        key: &FileKey,
        bucket_end: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let sequence = self.next_sequence_for(key).await?;
        let dir = self.dir_path(&key.0)?;
        let name = format!(
            "{}-{}-{:06}.{}",
            self.options.query_name,
            key.1,
            sequence,
            self.options.format.extension()
        );
        let path = dir.join(name.as_str());
        let out = UploadWriter::new(
            self.location.store(),
            path.clone(),
            self.options.upload_buffer,
        );
        let writer = match &self.options.format {
            SinkFormat::Parquet {
                compression,
                row_group_rows,
            } => {
                let Some(partitioner) = &self.partitioner else {
                    return Err(internal_datafusion_err!("sink: schema not bound"));
                };
                let props = WriterProperties::builder()
                    .set_compression(*compression)
                    .set_max_row_group_row_count(Some(*row_group_rows))
                    .set_created_by(format!("datafusion-stream {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let w = AsyncArrowWriter::try_new(
                    out,
                    Arc::clone(partitioner.output_schema()),
                    Some(props),
                )?;
                FormatWriter::Parquet(Box::new(w))
            }
            SinkFormat::Csv { header, .. } => FormatWriter::Text {
                out: Box::new(out),
                header_pending: *header,
            },
            _ => FormatWriter::Text {
                out: Box::new(out),
                header_pending: false,
            },
        };
        self.open.insert(
            key.clone(),
            OpenFile {
                path,
                sequence,
                rows: 0,
                opened_at: now,
                last_write: self.writes,
                bucket_end,
                writer,
            },
        );
        Ok(())
    }

    async fn close_file(&mut self, key: &FileKey) -> Result<()> {
        let Some(mut file) = self.open.remove(key) else {
            return Ok(());
        };
        let result = match &mut file.writer {
            FormatWriter::Parquet(w) => w.finish().await.map(|_| ()).map_err(|e| e.to_string()),
            FormatWriter::Text { out, .. } => out.finish().await.map_err(|e| e.to_string()),
        };
        let bytes = match &file.writer {
            FormatWriter::Parquet(w) => w.bytes_written() as u64,
            FormatWriter::Text { out, .. } => out.bytes(),
        };
        if let Err(e) = result {
            let path = file.path.clone();
            let _ = file.abort().await;
            return exec_err!("sink: complete {}: {e}", self.location.url_of(&path));
        }
        self.stats.rows += file.rows;
        self.stats.bytes += bytes;
        self.stats.files.push(WrittenFile {
            path: file.path.to_string(),
            url: self.location.url_of(&file.path),
            partition: key.0.clone(),
            input: key.1,
            sequence: file.sequence,
            rows: file.rows,
            bytes,
        });
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let files: Vec<OpenFile> = self.open.drain().map(|(_, f)| f).collect();
        handle.spawn(async move {
            for f in files {
                let _ = f.abort().await;
            }
        });
    }
}

/// Encodes `batch` into the open file.
async fn write_rows(
    file: &mut OpenFile,
    batch: &RecordBatch,
    format: &SinkFormat,
) -> ::object_store::Result<()> {
    let encode_error = |e: String| ::object_store::Error::Generic {
        store: "sink",
        source: e.into(),
    };
    match &mut file.writer {
        FormatWriter::Parquet(w) => w.write(batch).await.map_err(|e| match e {
            datafusion::parquet::errors::ParquetError::External(inner) => {
                match inner.downcast::<::object_store::Error>() {
                    Ok(os) => *os,
                    Err(other) => encode_error(other.to_string()),
                }
            }
            other => encode_error(other.to_string()),
        }),
        FormatWriter::Text {
            out,
            header_pending,
        } => {
            let bytes = encode_text(batch, format, *header_pending)
                .map_err(|e| encode_error(e.to_string()))?;
            *header_pending = false;
            out.put(Bytes::from(bytes)).await
        }
    }
}

fn encode_text(batch: &RecordBatch, format: &SinkFormat, header: bool) -> Result<Vec<u8>> {
    use datafusion::arrow::{csv, json};
    match format {
        SinkFormat::JsonLines => {
            let mut w = json::LineDelimitedWriter::new(Vec::new());
            w.write(batch)?;
            w.finish()?;
            Ok(w.into_inner())
        }
        SinkFormat::Csv { delimiter, .. } => {
            let mut w = csv::WriterBuilder::new()
                .with_header(header)
                .with_delimiter(*delimiter)
                .build(Vec::new());
            w.write(batch)?;
            Ok(w.into_inner())
        }
        SinkFormat::KdaJson => Ok(lines(crate::kda::encode_json_rows(batch)?)),
        SinkFormat::KdaCsv { delimiter } => {
            Ok(lines(crate::kda::encode_csv_rows(batch, delimiter)?))
        }
        SinkFormat::Parquet { .. } => Err(internal_datafusion_err!(
            "sink: Parquet is not a text format"
        )),
    }
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn lines(records: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum());
    for r in records {
        out.extend_from_slice(&r);
        out.push(b'\n');
    }
    out
}
