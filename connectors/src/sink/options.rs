//! Sink options: format, rolling, partitioning, naming; from Rust ([`SinkOptions`] builders)
//! or from `WITH (...)`-style options ([`SinkOptions::take_from`]).
//!
//! ```text
//!  ConnectorOptions ─ take_from ─► SinkOptions { query_name, format, roll_rows, roll_bytes,
//!   ('format', 'roll_rows',        roll_interval, roll_boundary (+ time), partition_by,
//!    'partition_by', ...)          max_open_files, upload_buffer, sequence_start }
//!                                  └─ validate(): names the offending option
//! ```

use std::time::Duration;

use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion::parquet::basic::Compression;
use datafusion_stream::source::ConnectorOptions;

use super::partition::PartitionBy;

/// How rows are encoded in the files.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkFormat {
    /// Parquet (extension `parquet`).
    Parquet {
        /// Compression codec (default SNAPPY).
        compression: Compression,
        /// Rows per row group at most (default 131,072); also bounds the rows a file buffers.
        row_group_rows: usize,
    },
    /// One JSON object per line, Arrow's JSON encoding (extension `json`).
    JsonLines,
    /// CSV with Arrow's encoding (extension `csv`).
    Csv {
        /// Each file starts with a header line.
        header: bool,
        /// Field delimiter.
        delimiter: u8,
    },
    /// One JSON object per line with KDA's value formats ([`crate::kda::encode_json_rows`]).
    KdaJson,
    /// KDA's CSV records ([`crate::kda::encode_csv_rows`]), one per line.
    KdaCsv {
        /// Column delimiter.
        delimiter: String,
    },
}

impl SinkFormat {
    /// Parquet with SNAPPY compression and 131,072-row row groups.
    pub fn parquet() -> Self {
        Self::Parquet {
            compression: Compression::SNAPPY,
            row_group_rows: 128 * 1024,
        }
    }

    /// CSV with a header, comma-separated.
    pub fn csv() -> Self {
        Self::Csv {
            header: true,
            delimiter: b',',
        }
    }

    /// File name extension.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Parquet { .. } => "parquet",
            Self::JsonLines | Self::KdaJson => "json",
            Self::Csv { .. } | Self::KdaCsv { .. } => "csv",
        }
    }
}

/// Which progress time drives `roll_boundary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressTime {
    /// The ROWTIME bound.
    #[default]
    Rowtime,
    /// The event-time watermark.
    EventTime,
}

/// Where sequence numbers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SequenceStart {
    /// After the highest sequence number of this query and partition already in the directory.
    #[default]
    Resume,
    /// At 0 (existing objects with the same names are overwritten).
    Zero,
}

/// How a [`FileSink`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOptions {
    /// Name of the query in file names (letters, digits, `_`, `-`, `.`).
    pub query_name: String,
    /// Encoding.
    pub format: SinkFormat,
    /// Close a file when it holds this many rows.
    pub roll_rows: Option<u64>,
    /// Close a file when its estimated size reaches this many bytes.
    pub roll_bytes: Option<u64>,
    /// Close a file this long after it was opened (context clock).
    pub roll_interval: Option<Duration>,
    /// Close every open file when the progress time crosses a multiple of this.
    pub roll_boundary: Option<Duration>,
    /// The progress time `roll_boundary` follows.
    pub boundary_time: ProgressTime,
    /// Hive-style partition directories.
    pub partition_by: PartitionBy,
    /// Keep partition columns in the files (column partitioning; default: left out).
    pub keep_partition_columns: bool,
    /// Files open at once at most (default 64); the least recently written is closed first.
    pub max_open_files: usize,
    /// Bytes buffered per file before a multipart upload starts; also the part size
    /// (default 10 MiB; S3 needs at least 5 MiB).
    pub upload_buffer: usize,
    /// Where sequence numbers start.
    pub sequence_start: SequenceStart,
}

impl SinkOptions {
    /// Defaults: Parquet, no rolling but at the end, no partitioning.
    pub fn new(query_name: impl Into<String>) -> Self {
        Self {
            query_name: query_name.into(),
            format: SinkFormat::parquet(),
            roll_rows: None,
            roll_bytes: None,
            roll_interval: None,
            roll_boundary: None,
            boundary_time: ProgressTime::Rowtime,
            partition_by: PartitionBy::None,
            keep_partition_columns: false,
            max_open_files: 64,
            upload_buffer: 10 * 1024 * 1024,
            sequence_start: SequenceStart::Resume,
        }
    }

    /// Sets the format.
    pub fn with_format(mut self, format: SinkFormat) -> Self {
        self.format = format;
        self
    }

    /// Rolls at `rows` rows.
    pub fn with_roll_rows(mut self, rows: u64) -> Self {
        self.roll_rows = Some(rows);
        self
    }

    /// Rolls at `bytes` bytes.
    pub fn with_roll_bytes(mut self, bytes: u64) -> Self {
        self.roll_bytes = Some(bytes);
        self
    }

    /// Rolls files older than `interval`.
    pub fn with_roll_interval(mut self, interval: Duration) -> Self {
        self.roll_interval = Some(interval);
        self
    }

    /// Rolls when `time` progress crosses a multiple of `boundary`.
    pub fn with_roll_boundary(mut self, boundary: Duration, time: ProgressTime) -> Self {
        self.roll_boundary = Some(boundary);
        self.boundary_time = time;
        self
    }

    /// Partitions the output.
    pub fn with_partition_by(mut self, by: PartitionBy) -> Self {
        self.partition_by = by;
        self
    }

    /// Sets where sequence numbers start.
    pub fn with_sequence_start(mut self, start: SequenceStart) -> Self {
        self.sequence_start = start;
        self
    }

    /// Sets the upload buffer (multipart threshold and part size).
    pub fn with_upload_buffer(mut self, bytes: usize) -> Self {
        self.upload_buffer = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let name = &self.query_name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return plan_err!(
                "sink: query name '{name}' must be non-empty and use only letters, digits, '_', '-' and '.'"
            );
        }
        if self.roll_rows == Some(0) {
            return plan_err!("sink: option 'roll_rows' must be at least 1");
        }
        if self.roll_bytes == Some(0) {
            return plan_err!("sink: option 'roll_bytes' must be at least 1");
        }
        if self.roll_interval.is_some_and(|d| d.is_zero()) {
            return plan_err!("sink: option 'roll_interval' must be positive");
        }
        if self.roll_boundary.is_some_and(|d| d.as_millis() == 0) {
            return plan_err!("sink: option 'roll_boundary' must be at least 1ms");
        }
        if self.max_open_files == 0 {
            return plan_err!("sink: option 'max_open_files' must be at least 1");
        }
        if self.upload_buffer == 0 {
            return plan_err!("sink: option 'upload_buffer' must be at least 1");
        }
        if let SinkFormat::Parquet { row_group_rows, .. } = &self.format {
            if *row_group_rows == 0 {
                return plan_err!("sink: option 'row_group_rows' must be at least 1");
            }
        }
        Ok(())
    }
}

/// Every option [`FileSink::from_options`] accepts.
pub const SINK_OPTION_NAMES: &[&str] = &[
    "path",
    "format",
    "query_name",
    "roll_rows",
    "roll_bytes",
    "roll_interval",
    "roll_boundary",
    "roll_boundary_time",
    "partition_by",
    "keep_partition_columns",
    "max_open_files",
    "upload_buffer",
    "sequence",
    "compression",
    "row_group_rows",
    "header",
    "delimiter",
];

fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a size like '1000000', '64KiB', '128MiB', got '{t}'"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("unknown size unit '{other}' in '{t}'")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size '{t}' is too large"))
}

fn take_bytes(options: &mut ConnectorOptions, key: &str) -> Result<Option<u64>> {
    match options.take(key) {
        None => Ok(None),
        Some(v) => parse_bytes(&v).map(Some).map_err(|e| {
            DataFusionError::Plan(format!(
                "connector '{}': option '{key}' = '{v}' is invalid: {e}",
                options.connector()
            ))
        }),
    }
}

impl SinkOptions {
    /// Reads the sink options of a `WITH (...)` clause (every [`SINK_OPTION_NAMES`] entry but
    /// `'path'`); the format comes from `'format'`, else from the connector name
    /// (`parquet`, `json`, `csv`, `kda_json`, `kda_csv`).
    pub fn take_from(options: &mut ConnectorOptions) -> Result<Self> {
        let connector = options.connector().to_string();
        let format_name = options
            .take("format")
            .unwrap_or_else(|| connector.clone())
            .to_ascii_lowercase();
        let compression = options.take("compression");
        let row_group_rows = options.take_parsed::<usize>("row_group_rows")?;
        let header = options.take_parsed::<bool>("header")?;
        let delimiter = options.take("delimiter");
        let reject = |given: bool, name: &str, format: &str| -> Result<()> {
            if given {
                return plan_err!(
                    "connector '{connector}': option '{name}' does not apply to format '{format}'"
                );
            }
            Ok(())
        };
        let format = match format_name.as_str() {
            "parquet" => {
                reject(header.is_some(), "header", "parquet")?;
                reject(delimiter.is_some(), "delimiter", "parquet")?;
                let compression = match compression {
                    None => Compression::SNAPPY,
                    Some(c) => c.parse::<Compression>().map_err(|e| {
                        DataFusionError::Plan(format!(
                            "connector '{connector}': option 'compression' = '{c}' is invalid: {e}"
                        ))
                    })?,
                };
                SinkFormat::Parquet {
                    compression,
                    row_group_rows: row_group_rows.unwrap_or(128 * 1024),
                }
            }
            "json" | "jsonl" | "json_lines" | "kda_json" => {
                reject(compression.is_some(), "compression", &format_name)?;
                reject(row_group_rows.is_some(), "row_group_rows", &format_name)?;
                reject(header.is_some(), "header", &format_name)?;
                reject(delimiter.is_some(), "delimiter", &format_name)?;
                if format_name == "kda_json" {
                    SinkFormat::KdaJson
                } else {
                    SinkFormat::JsonLines
                }
            }
            "csv" => {
                reject(compression.is_some(), "compression", "csv")?;
                reject(row_group_rows.is_some(), "row_group_rows", "csv")?;
                let delimiter = match delimiter.as_deref() {
                    None => b',',
                    Some("\\t") | Some("tab") => b'\t',
                    Some(d) if d.len() == 1 => d.as_bytes()[0],
                    Some(d) => {
                        return plan_err!("connector '{connector}': option 'delimiter' = '{d}' must be one character")
                    }
                };
                SinkFormat::Csv {
                    header: header.unwrap_or(true),
                    delimiter,
                }
            }
            "kda_csv" => {
                reject(compression.is_some(), "compression", "kda_csv")?;
                reject(row_group_rows.is_some(), "row_group_rows", "kda_csv")?;
                reject(header.is_some(), "header", "kda_csv")?;
                SinkFormat::KdaCsv {
                    delimiter: delimiter.unwrap_or_else(|| ",".to_string()),
                }
            }
            other => {
                return plan_err!(
                    "connector '{connector}': format '{other}' is not supported (parquet, json, csv, kda_json, kda_csv)"
                )
            }
        };
        let mut out = SinkOptions::new(options.take("query_name").unwrap_or_else(|| "part".into()))
            .with_format(format);
        out.roll_rows = options.take_parsed::<u64>("roll_rows")?;
        out.roll_bytes = take_bytes(options, "roll_bytes")?;
        out.roll_interval = options.take_duration("roll_interval")?;
        out.roll_boundary = options.take_duration("roll_boundary")?;
        if let Some(t) = options.take("roll_boundary_time") {
            out.boundary_time = match t.trim().to_ascii_lowercase().as_str() {
                "rowtime" => ProgressTime::Rowtime,
                "event_time" | "event-time" | "eventtime" => ProgressTime::EventTime,
                _ => {
                    return plan_err!(
                        "connector '{connector}': option 'roll_boundary_time' = '{t}' must be 'rowtime' or 'event_time'"
                    )
                }
            };
        }
        if let Some(p) = options.take("partition_by") {
            out.partition_by = PartitionBy::parse(&p)?;
        }
        if let Some(k) = options.take_parsed::<bool>("keep_partition_columns")? {
            out.keep_partition_columns = k;
        }
        if let Some(n) = options.take_parsed::<usize>("max_open_files")? {
            out.max_open_files = n;
        }
        if let Some(b) = take_bytes(options, "upload_buffer")? {
            out.upload_buffer = usize::try_from(b).unwrap_or(usize::MAX);
        }
        if let Some(s) = options.take("sequence") {
            out.sequence_start = match s.trim().to_ascii_lowercase().as_str() {
                "resume" => SequenceStart::Resume,
                "zero" => SequenceStart::Zero,
                _ => {
                    return plan_err!(
                    "connector '{connector}': option 'sequence' = '{s}' must be 'resume' or 'zero'"
                )
                }
            };
        }
        out.validate()?;
        Ok(out)
    }
}
