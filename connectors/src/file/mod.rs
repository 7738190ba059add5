//! The file replay source (connector `'file'`): replays a CSV or JSON-lines file (or stdin) in
//! file order as one bounded partition.
//!
//! ```sql
//! CREATE STREAM trades (
//!     ts TIMESTAMP(3), symbol VARCHAR, price DOUBLE,
//!     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! ) WITH ('connector' = 'file', 'path' = 'trades.csv', 'format' = 'csv');
//! ```
//!
//! ```text
//!  'path' file ──std::fs, one batch per poll──┐
//!  'path' '-'  ──blocking thread ──channel────┤
//!                                             ▼
//!        reader.rs: lines ──► arrow csv / json decoder (declared column types)
//!                   ──► columns in declared order  [+ 'rowtime_column' split off]
//!                                             │
//!                                             ▼
//!        SourceEvent::Data { batch, rowtime: None | Some(ROWTIME) } ... end of input
//!                                             │                           │
//!                                             ▼                           ▼
//!                         scan: ROWTIME (clock, or supplied)   watermark → end of time:
//!                               event-time watermark            every window fires
//! ```
//!
//! Options:
//! * `'path'` (required): the file, or `'-'` for standard input (readable by one query);
//! * `'format'`: `'csv'` (default) or `'json'` (one JSON object per line; keys are matched to
//!   column names, unknown keys are ignored);
//! * `'header'` (CSV, default `'true'`): the first line names the columns; declared columns are
//!   found by name (exact, else case-insensitive), other file columns are ignored. Without a
//!   header the file's columns are the declared columns, in order;
//! * `'delimiter'` (CSV, default `','`; `'\t'` or `'tab'` for tabs);
//! * `'rowtime_column'`: a column of the file (not declared in `CREATE STREAM`) holding each
//!   row's ROWTIME, a timestamp that must not decrease; without it ROWTIME is the ingest time;
//! * `'batch_size'` (default 1024): rows per batch.
//!
//! A row that does not parse fails the query with the file and the line it starts on.

mod reader;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::{
    ConnectorOptions, SourceContext, SourceEvent, SourceFactory, StreamSource,
};
use datafusion_stream::RowtimeMode;
use futures::stream::BoxStream;
use futures::StreamExt;

use self::reader::BatchReader;

/// The connector name.
pub const CONNECTOR: &str = "file";

/// The option names the connector accepts.
pub const OPTIONS: &[&str] = &[
    "path",
    "format",
    "header",
    "delimiter",
    "rowtime_column",
    "batch_size",
];

/// Where rows are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePath {
    /// A file.
    File(PathBuf),
    /// Standard input (`'path' = '-'`).
    Stdin,
}

/// The file format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma (or other delimiter) separated values.
    Csv {
        /// The first line names the columns.
        header: bool,
        /// The field delimiter.
        delimiter: u8,
    },
    /// One JSON object per line.
    Json,
}

/// Settings of a file stream (the `WITH` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// The input.
    pub path: FilePath,
    /// Its format.
    pub format: FileFormat,
    /// The column holding ROWTIME, if the file supplies it.
    pub rowtime_column: Option<String>,
    /// Rows per batch.
    pub batch_size: usize,
}

fn option_err(option: &str, value: &str, why: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!(
        "connector '{CONNECTOR}': option '{option}' = '{value}' is invalid: {why}"
    ))
}

impl FileConfig {
    /// Reads the options (and rejects unknown ones).
    pub fn from_options(options: &mut ConnectorOptions) -> Result<Self> {
        let Some(path) = options.take("path") else {
            return plan_err!(
                "connector '{CONNECTOR}': option 'path' is required (a file path, or '-' for standard input)"
            );
        };
        let format = options.take("format");
        let header = options.take("header");
        let delimiter = options.take("delimiter");
        let rowtime_column = options.take("rowtime_column");
        let batch_size = options.take_parsed::<usize>("batch_size")?.unwrap_or(1024);
        options.finish(OPTIONS)?;

        let path = if path.trim() == "-" {
            FilePath::Stdin
        } else if path.trim().is_empty() {
            return Err(option_err("path", &path, "the path is empty"));
        } else {
            FilePath::File(PathBuf::from(&path))
        };
        let format_name = format
            .as_deref()
            .unwrap_or("csv")
            .trim()
            .to_ascii_lowercase();
        let format = match format_name.as_str() {
            "csv" => {
                let header = match header.as_deref().map(|h| h.trim().to_ascii_lowercase()) {
                    None => true,
                    Some(h) if h == "true" => true,
                    Some(h) if h == "false" => false,
                    Some(_) => {
                        return Err(option_err(
                            "header",
                            header.as_deref().unwrap_or_default(),
                            "use 'true' or 'false'",
                        ))
                    }
                };
                let delimiter = match delimiter.as_deref() {
                    None => b',',
                    Some("\\t") | Some("tab") | Some("\t") => b'\t',
                    Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                    Some(d) => {
                        return Err(option_err(
                            "delimiter",
                            d,
                            "the delimiter must be one ASCII character (or '\\t')",
                        ))
                    }
                };
                FileFormat::Csv { header, delimiter }
            }
            "json" | "jsonl" | "ndjson" | "json_lines" => {
                for (name, value) in [("header", &header), ("delimiter", &delimiter)] {
                    if let Some(v) = value {
                        return Err(option_err(name, v, "only applies to 'format' = 'csv'"));
                    }
                }
                FileFormat::Json
            }
            _ => {
                return Err(option_err(
                    "format",
                    format.as_deref().unwrap_or_default(),
                    "use 'csv' or 'json' (one JSON object per line)",
                ))
            }
        };
        if batch_size == 0 {
            return Err(option_err("batch_size", "0", "must be at least 1"));
        }
        let rowtime_column = match rowtime_column {
            Some(c) if c.trim().is_empty() => {
                return Err(option_err("rowtime_column", &c, "the column name is empty"))
            }
            Some(c) => {
                if matches!(format, FileFormat::Csv { header: false, .. }) {
                    return Err(option_err(
                        "rowtime_column",
                        &c,
                        "the column is found by name, which needs 'header' = 'true'",
                    ));
                }
                Some(c.trim().to_string())
            }
            None => None,
        };
        Ok(Self {
            path,
            format,
            rowtime_column,
            batch_size,
        })
    }
}

/// A file replay source; see the module docs.
#[derive(Debug)]
pub struct FileSource {
    stream_name: String,
    schema: SchemaRef,
    config: Arc<FileConfig>,
    stdin_taken: AtomicBool,
}

impl FileSource {
    /// A source for `stream_name` producing rows with the declared columns `schema`.
    pub fn try_new(stream_name: &str, schema: SchemaRef, config: FileConfig) -> Result<Self> {
        if let Some(rt) = &config.rowtime_column {
            if schema.fields().iter().any(|f| f.name() == rt) {
                return plan_err!(
                    "CREATE STREAM {stream_name}: option 'rowtime_column' = '{rt}' names a declared column; \
                     the ROWTIME column is read from the file but must not be declared (it becomes the stream's ROWTIME)"
                );
            }
        }
        if let FilePath::File(p) = &config.path {
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {
                    return Err(option_err(
                        "path",
                        &p.display().to_string(),
                        "it is a directory, not a file",
                    ))
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(option_err(
                        "path",
                        &p.display().to_string(),
                        format!("cannot read the file: {e}"),
                    ))
                }
            }
        }
        Ok(Self {
            stream_name: stream_name.to_string(),
            schema,
            config: Arc::new(config),
            stdin_taken: AtomicBool::new(false),
        })
    }

    /// The settings.
    pub fn config(&self) -> &FileConfig {
        &self.config
    }

    fn label(&self) -> String {
        match &self.config.path {
            FilePath::File(p) => format!("file '{}'", p.display()),
            FilePath::Stdin => "stdin".to_string(),
        }
    }
}

impl StreamSource for FileSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn partition_count(&self) -> usize {
        1
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        if self.config.rowtime_column.is_some() {
            RowtimeMode::Supplied
        } else {
            RowtimeMode::Ingest
        }
    }

    fn is_bounded(&self) -> bool {
        true
    }

    fn open(
        &self,
        partition: usize,
        _ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        if partition != 0 {
            return exec_err!(
                "stream '{}': a file stream has one partition; partition {partition} does not exist",
                self.stream_name
            );
        }
        match &self.config.path {
            FilePath::File(p) => {
                let file = File::open(p).map_err(|e| {
                    DataFusionError::Execution(format!(
                        "stream '{}': cannot open file '{}': {e}",
                        self.stream_name,
                        p.display()
                    ))
                })?;
                let reader = BatchReader::new(
                    self.label(),
                    self.stream_name.clone(),
                    Arc::clone(&self.config),
                    Arc::clone(&self.schema),
                    Box::new(file),
                    false,
                );
                // One batch per poll; reading a batch of a local file is short. The budget
                // check lets other tasks run while a large file is replayed.
                Ok(futures::stream::unfold(reader, |mut reader| async move {
                    tokio::task::coop::consume_budget().await;
                    match reader.next_event() {
                        Ok(Some(event)) => Some((Ok(event), reader)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), reader)),
                    }
                })
                .boxed())
            }
            FilePath::Stdin => {
                if self.stdin_taken.swap(true, Ordering::SeqCst) {
                    return exec_err!(
                        "stream '{}': standard input ('path' = '-') can be read by one query only",
                        self.stream_name
                    );
                }
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<SourceEvent>>(4);
                let label = self.label();
                let stream_name = self.stream_name.clone();
                let config = Arc::clone(&self.config);
                let schema = Arc::clone(&self.schema);
                std::thread::Builder::new()
                    .name(format!("stdin-{stream_name}"))
                    .spawn(move || {
                        let input: Box<dyn Read + Send> = Box::new(std::io::stdin());
                        let mut reader =
                            BatchReader::new(label, stream_name, config, schema, input, true);
                        loop {
                            let event = reader.next_event();
                            let stop = !matches!(event, Ok(Some(_)));
                            let item = match event {
                                Ok(Some(e)) => Ok(e),
                                Ok(None) => break,
                                Err(e) => Err(e),
                            };
                            // The receiver is gone when the query was dropped.
                            if tx.blocking_send(item).is_err() || stop {
                                break;
                            }
                        }
                    })
                    .map_err(|e| {
                        DataFusionError::Execution(format!(
                            "stream '{}': cannot start the stdin reader: {e}",
                            self.stream_name
                        ))
                    })?;
                Ok(futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                })
                .boxed())
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Creates [`FileSource`]s for `CREATE STREAM ... WITH ('connector' = 'file', ...)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileFactory;

impl SourceFactory for FileFactory {
    fn create(
        &self,
        stream_name: &str,
        schema: SchemaRef,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSource>> {
        let config = FileConfig::from_options(options)?;
        Ok(Arc::new(FileSource::try_new(stream_name, schema, config)?))
    }
}
