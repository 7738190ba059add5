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
//! * `'batch_size'` (default 1024): rows per batch;
//! * `'input_schema'` (an InputSchema in the AWS API's JSON, inline) or `'input_schema_file'`
//!   (a path to one): read the file as KDA reads a stream, below.
//!
//! Without an input schema, a row that does not parse fails the query with the file and the
//! line it starts on.
//!
//! ## KDA input schemas
//!
//! ```sql
//! CREATE STREAM "SOURCE_SQL_STREAM_001" ("TICKER_SYMBOL" VARCHAR(4), "PRICE" DECIMAL(5,2))
//! WITH ('connector' = 'file', 'path' = 'ticker.jsonl', 'input_schema_file' = 'schema.json');
//! ```
//!
//! Each line is one record, decoded by [`crate::kda::RecordDecoder`] with KDA's mapping and
//! coercion rules (JSONPath, array flattening, CSV with the schema's delimiters — a line may
//! hold several rows when the row delimiter is not a line break). A record or row that cannot
//! be decoded goes to the context's error sink ([`SourceContext::errors`]) with its raw bytes,
//! file and line, and the other rows keep flowing; when the sink refuses it (the default
//! policy) the query fails. The format comes from the schema (`'format'`, if given, must agree;
//! `'delimiter'` is not accepted). `'header'` = `'true'` skips the first line of a CSV file
//! (default `'false'`: KDA reads every line as data).
//!
//! The declared columns are found among the schema's columns by name (exact, else
//! case-insensitive, since unquoted names are folded) and must have the schema's type or a type
//! that holds every value of it (e.g. `TINYINT` → `BIGINT`, `TIME` → the DDL's `TIME`,
//! `BINARY(n)` → `VARBINARY`); schema columns not declared are read and dropped. A declared
//! `NOT NULL` column rejects rows with NULL there (`Null_Value_Error`).
//!
//! `'rowtime_column'` still supplies ROWTIME: for JSON it names a top-level field of each record
//! (it need not be a schema column); for CSV each line has one extra leading field holding
//! ROWTIME, before the schema's fields (the option's value is then only a label). Values are
//! timestamps (`yyyy-MM-dd HH:mm:ss.SSS`, ISO) or epoch milliseconds; a record without one, or
//! going back in time, is rejected like a bad record.

mod reader;
mod schema_reader;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::{
    ConnectorOptions, SourceContext, SourceEvent, SourceFactory, StreamSource,
};
use datafusion_stream::RowtimeMode;
use futures::stream::BoxStream;
use futures::StreamExt;

use self::reader::BatchReader;
use self::schema_reader::SchemaReader;
use crate::kda::{InputSchema, RecordDecoder, RecordFormatType, RowtimeField};

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
    "input_schema",
    "input_schema_file",
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
    /// A KDA input schema: lines are decoded as KDA records (see the module docs).
    pub input_schema: Option<InputSchema>,
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
        let inline_schema = options.take("input_schema");
        let schema_file = options.take("input_schema_file");
        options.finish(OPTIONS)?;
        let input_schema = match (inline_schema, schema_file) {
            (Some(_), Some(f)) => {
                return Err(option_err(
                    "input_schema_file",
                    &f,
                    "give either 'input_schema' or 'input_schema_file', not both",
                ))
            }
            (Some(text), None) => Some(InputSchema::from_json(&text).map_err(|e| {
                DataFusionError::Plan(format!(
                    "connector '{CONNECTOR}': option 'input_schema': {}",
                    e.message()
                ))
            })?),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f.trim()).map_err(|e| {
                    option_err("input_schema_file", &f, format!("cannot read it: {e}"))
                })?;
                Some(InputSchema::from_json(&text).map_err(|e| {
                    DataFusionError::Plan(format!(
                        "connector '{CONNECTOR}': option 'input_schema_file' = '{f}': {}",
                        e.message()
                    ))
                })?)
            }
            (None, None) => None,
        };
        if let Some(schema) = &input_schema {
            return Self::with_input_schema(
                path,
                schema.clone(),
                format,
                header,
                delimiter,
                rowtime_column,
                batch_size,
            );
        }

        let path = parse_path(&path)?;
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
            input_schema: None,
        })
    }

    /// The options that go with an input schema (see the module docs).
    fn with_input_schema(
        path: String,
        schema: InputSchema,
        format: Option<String>,
        header: Option<String>,
        delimiter: Option<String>,
        rowtime_column: Option<String>,
        batch_size: usize,
    ) -> Result<Self> {
        let path = parse_path(&path)?;
        let kind = schema.format_type();
        if let Some(f) = &format {
            let agrees = match f.trim().to_ascii_lowercase().as_str() {
                "csv" => kind == RecordFormatType::Csv,
                "json" | "jsonl" | "ndjson" | "json_lines" => kind == RecordFormatType::Json,
                _ => false,
            };
            if !agrees {
                return Err(option_err(
                    "format",
                    f,
                    format!("the input schema's RecordFormatType is {kind}"),
                ));
            }
        }
        if let Some(d) = &delimiter {
            return Err(option_err(
                "delimiter",
                d,
                "with an input schema the delimiters come from its CSVMappingParameters",
            ));
        }
        let header = match (
            kind,
            header.as_deref().map(|h| h.trim().to_ascii_lowercase()),
        ) {
            (_, None) => false,
            (RecordFormatType::Csv, Some(h)) if h == "true" => true,
            (RecordFormatType::Csv, Some(h)) if h == "false" => false,
            (RecordFormatType::Csv, Some(_)) => {
                return Err(option_err(
                    "header",
                    header.as_deref().unwrap_or_default(),
                    "use 'true' or 'false'",
                ))
            }
            (RecordFormatType::Json, Some(_)) => {
                return Err(option_err(
                    "header",
                    header.as_deref().unwrap_or_default(),
                    "only applies to CSV input schemas",
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
            other => other.map(|c| c.trim().to_string()),
        };
        let format = match kind {
            RecordFormatType::Json => FileFormat::Json,
            RecordFormatType::Csv => FileFormat::Csv {
                header,
                delimiter: b',',
            },
        };
        Ok(Self {
            path,
            format,
            rowtime_column,
            batch_size,
            input_schema: Some(schema),
        })
    }
}

fn parse_path(path: &str) -> Result<FilePath> {
    if path.trim() == "-" {
        Ok(FilePath::Stdin)
    } else if path.trim().is_empty() {
        Err(option_err("path", path, "the path is empty"))
    } else {
        Ok(FilePath::File(PathBuf::from(path)))
    }
}

/// How a file with an input schema is read: the decoder settings and how its columns become
/// the declared ones.
#[derive(Debug)]
pub(crate) struct KdaPlan {
    schema: InputSchema,
    rowtime: Option<RowtimeField>,
    /// Input-schema columns declared NOT NULL.
    not_null: Vec<String>,
    /// Per declared column: the input-schema column, and the type to widen it to.
    columns: Vec<(usize, Option<DataType>)>,
    skip_header: bool,
    rowtime_supplied: bool,
}

impl KdaPlan {
    fn try_new(
        stream_name: &str,
        declared: &SchemaRef,
        config: &FileConfig,
    ) -> Result<Option<Self>> {
        let Some(schema) = &config.input_schema else {
            return Ok(None);
        };
        let rowtime = config
            .rowtime_column
            .as_ref()
            .map(|c| match schema.format_type() {
                RecordFormatType::Json => RowtimeField::JsonField(c.clone()),
                RecordFormatType::Csv => RowtimeField::CsvLeadingField,
            });
        let decoder = RecordDecoder::try_new(schema).map_err(|e| {
            DataFusionError::Plan(format!("CREATE STREAM {stream_name}: {}", e.message()))
        })?;
        let input = decoder.schema();
        let names: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
        let mut columns = Vec::new();
        let mut not_null = Vec::new();
        for f in declared.fields() {
            let name = f.name();
            let idx = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    let matches: Vec<usize> = (0..names.len())
                        .filter(|i| names[*i].eq_ignore_ascii_case(name))
                        .collect();
                    match matches.as_slice() {
                        [i] => *i,
                        [] => {
                            return plan_err!(
                                "CREATE STREAM {stream_name}: column '{name}' is not in the input schema                                  (its columns: {})",
                                names.join(", ")
                            )
                        }
                        _ => {
                            return plan_err!(
                                "CREATE STREAM {stream_name}: column '{name}' matches several input schema                                  columns when case is ignored; quote it to pick one"
                            )
                        }
                    }
                }
            };
            let from = input.field(idx).data_type();
            let to = f.data_type();
            let cast_to = if from == to {
                None
            } else if widens(from, to) {
                Some(to.clone())
            } else {
                return plan_err!(
                    "CREATE STREAM {stream_name}: column '{name}' is declared {to}, but the input schema                      has {} ({from}), which does not always fit; declare it as {from} or wider",
                    schema.record_columns[idx].sql_type
                );
            };
            if !f.is_nullable() {
                not_null.push(names[idx].to_string());
            }
            columns.push((idx, cast_to));
        }
        let plan = Self {
            schema: schema.clone(),
            rowtime,
            not_null,
            columns,
            skip_header: matches!(config.format, FileFormat::Csv { header: true, .. }),
            rowtime_supplied: config.rowtime_column.is_some(),
        };
        // Builds one decoder now so every setting is checked at CREATE STREAM.
        plan.decoder().map_err(|e| {
            DataFusionError::Plan(format!("CREATE STREAM {stream_name}: {}", e.message()))
        })?;
        Ok(Some(plan))
    }

    /// A fresh decoder (one per opened partition).
    fn decoder(&self) -> Result<RecordDecoder> {
        let mut d = RecordDecoder::try_new(&self.schema)?;
        if let Some(r) = &self.rowtime {
            d = d.with_rowtime_field(r.clone())?;
        }
        for c in &self.not_null {
            d = d.with_not_null(c)?;
        }
        Ok(d)
    }
}

/// True if every value of `from` converts to `to` without loss.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let int_digits = |t: &DataType| match t {
        Int8 => Some(3),
        Int16 => Some(5),
        Int32 => Some(10),
        Int64 => Some(19),
        _ => None,
    };
    match (from, to) {
        (a, b) if a == b => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (Float32, Float64) => true,
        (Int8 | Int16 | Int32 | Int64, Decimal128(p, s)) => {
            int_digits(from).is_some_and(|d| i16::from(*p) - i16::from(*s) >= d)
        }
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (Utf8, Utf8View | LargeUtf8) => true,
        (Time32(TimeUnit::Millisecond), Time64(_)) => true,
        (
            Timestamp(TimeUnit::Millisecond, None),
            Timestamp(TimeUnit::Microsecond | TimeUnit::Nanosecond, None),
        ) => true,
        (FixedSizeBinary(_), Binary | LargeBinary | BinaryView) => true,
        (Binary, LargeBinary | BinaryView) => true,
        _ => false,
    }
}

/// A file replay source; see the module docs.
#[derive(Debug)]
pub struct FileSource {
    stream_name: String,
    schema: SchemaRef,
    config: Arc<FileConfig>,
    kda: Option<Arc<KdaPlan>>,
    stdin_taken: AtomicBool,
}

/// One of the two line readers.
enum LineReader {
    Plain(BatchReader),
    Kda(SchemaReader),
}

impl LineReader {
    fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        match self {
            LineReader::Plain(r) => r.next_event(),
            LineReader::Kda(r) => r.next_event(),
        }
    }
}

impl FileSource {
    /// A source for `stream_name` producing rows with the declared columns `schema`.
    pub fn try_new(stream_name: &str, schema: SchemaRef, config: FileConfig) -> Result<Self> {
        // With an input schema the ROWTIME field is read from each record beside the mapped
        // columns, so a column may map the same field.
        if let (Some(rt), None) = (&config.rowtime_column, &config.input_schema) {
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
        let kda = KdaPlan::try_new(stream_name, &schema, &config)?.map(Arc::new);
        Ok(Self {
            stream_name: stream_name.to_string(),
            schema,
            config: Arc::new(config),
            kda,
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

    fn reader(
        &self,
        input: Box<dyn Read + Send>,
        live: bool,
        ctx: &SourceContext,
    ) -> Result<LineReader> {
        Ok(match &self.kda {
            None => LineReader::Plain(BatchReader::new(
                self.label(),
                self.stream_name.clone(),
                Arc::clone(&self.config),
                Arc::clone(&self.schema),
                input,
                live,
            )),
            Some(plan) => LineReader::Kda(SchemaReader::new(
                self.label(),
                self.stream_name.clone(),
                Arc::clone(plan),
                Arc::clone(&self.schema),
                self.config.batch_size,
                input,
                live,
                Arc::clone(&ctx.errors),
                Arc::clone(&ctx.clock),
            )?),
        })
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
        ctx: &SourceContext,
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
                let reader = self.reader(Box::new(file), false, ctx)?;
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
                let input: Box<dyn Read + Send> = Box::new(std::io::stdin());
                let mut reader = self.reader(input, true, ctx)?;
                std::thread::Builder::new()
                    .name(format!("stdin-{}", self.stream_name))
                    .spawn(move || {
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
