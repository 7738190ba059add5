//! Unbounded, partitioned sources of record batches.
//!
//! ```text
//!  StreamSource ──open(p)──► stream of SourceEvent ──► scan (ROWTIME, watermarks) ──► StreamMessage
//!   (Kinesis shards, files, generators, replay)          see crate::scan
//! ```
//!
//! A source only produces rows (and, if it knows better than a bounded-out-of-orderness
//! strategy, explicit event-time watermarks). Stamping ROWTIME, generating watermarks,
//! detecting idleness and merging processing-time ticks is done once, by the scan, for every
//! source alike.

pub mod channel;
pub mod replay;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use futures::stream::BoxStream;

use crate::time::{Millis, StreamClock};

/// What a source partition produces.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// Rows in the source's schema. `rowtime` carries ROWTIME values when the source supplies
    /// them (a replay of a recorded stream); `None` means "stamp them from the clock now".
    Data {
        /// The rows.
        batch: RecordBatch,
        /// ROWTIME per row (a `TimestampMillisecondArray`), when supplied by the source.
        rowtime: Option<ArrayRef>,
    },
    /// An explicit event-time watermark: no row with event time `<= t` will follow.
    Watermark(Millis),
    /// A rowtime bound (KDA/SQLstream): no row with ROWTIME `< t` will follow. Sources that
    /// supply ROWTIME send these to move time forward without rows (in-application streams
    /// forward the progress of the pumps that write them).
    RowtimeBound(Millis),
    /// The partition has nothing to say for now; it does not hold back the combined watermark
    /// until it produces rows again.
    Idle,
}

/// How ROWTIME is assigned for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowtimeMode {
    /// ROWTIME is the context clock at ingestion; the clock's ticks advance the ROWTIME
    /// watermark even when no rows arrive.
    Ingest,
    /// The source supplies ROWTIME with every row (replays of recorded streams). Only the
    /// supplied values advance the ROWTIME watermark.
    Supplied,
}

/// Everything a source partition gets from the context when it is opened.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The context clock.
    pub clock: Arc<dyn StreamClock>,
    /// Preferred number of rows per batch.
    pub batch_size: usize,
    /// Where records the source cannot decode go (see [`crate::errors`]).
    pub errors: Arc<dyn crate::errors::ErrorSink>,
}

/// An unbounded (or bounded, for replays of files) partitioned source of record batches.
pub trait StreamSource: Debug + Send + Sync {
    /// Schema of the rows the source produces (without ROWTIME).
    fn schema(&self) -> SchemaRef;
    /// Number of partitions (Kinesis shards, files, ...); each is read independently.
    fn partition_count(&self) -> usize;
    /// How ROWTIME is assigned.
    fn rowtime_mode(&self) -> RowtimeMode {
        RowtimeMode::Ingest
    }
    /// True when every partition ends by itself (a file); at the end the watermark advances to
    /// the end of time, so every window is emitted.
    fn is_bounded(&self) -> bool {
        false
    }
    /// Opens one partition.
    fn open(
        &self,
        partition: usize,
        ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>>;
    /// Downcasting support (to reach, e.g., a replay source's handle).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Creates sources for `CREATE STREAM ... WITH ('connector' = 'name', ...)`.
pub trait SourceFactory: Debug + Send + Sync {
    /// Creates a source with the declared columns. `options` holds every `WITH` option except
    /// `connector` and the options the stream itself consumes; a factory must reject the ones
    /// it does not know, naming them.
    fn create(
        &self,
        stream_name: &str,
        schema: SchemaRef,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSource>>;
}

/// `WITH (...)` options of a `CREATE STREAM`, consumed by name so that whatever is left at the
/// end can be reported as unknown.
#[derive(Debug, Clone, Default)]
pub struct ConnectorOptions {
    connector: String,
    values: HashMap<String, String>,
}

impl ConnectorOptions {
    /// Options for `connector`.
    pub fn new(connector: impl Into<String>, values: HashMap<String, String>) -> Self {
        Self {
            connector: connector.into(),
            values,
        }
    }

    /// The connector name.
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// Removes and returns an option.
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    /// Removes and parses an option, naming it in the error.
    pub fn take_parsed<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.remove(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<T>().map(Some).map_err(|e| {
                datafusion::common::DataFusionError::Plan(format!(
                    "connector '{}': option '{key}' = '{v}' is invalid: {e}",
                    self.connector
                ))
            }),
        }
    }

    /// Removes and parses a duration option such as `'500ms'`, `'5s'`, `'2m'`, `'1h'`.
    pub fn take_duration(&mut self, key: &str) -> Result<Option<Duration>> {
        match self.values.remove(key) {
            None => Ok(None),
            Some(v) => parse_duration(&v).map(Some).map_err(|e| {
                datafusion::common::DataFusionError::Plan(format!(
                    "connector '{}': option '{key}' = '{v}' is invalid: {e}",
                    self.connector
                ))
            }),
        }
    }

    /// Fails if any option was not consumed, listing the unknown ones and the valid ones.
    pub fn finish(&mut self, valid: &[&str]) -> Result<()> {
        let values = std::mem::take(&mut self.values);
        if values.is_empty() {
            return Ok(());
        }
        let mut unknown: Vec<_> = values.keys().cloned().collect();
        unknown.sort();
        datafusion::common::plan_err!(
            "connector '{}': unknown option(s) {}; valid options are: {}",
            self.connector,
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            valid.join(", ")
        )
    }
}

/// Parses `'250ms'`, `'5s'`, `'2m'`, `'1h'` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "ms"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a duration like '500ms', '5s', '2m' or '1h', got '{s}'"))?;
    let ms = match unit {
        "ms" => n,
        "s" | "sec" | "second" | "seconds" => n * 1e3,
        "m" | "min" | "minute" | "minutes" => n * 60e3,
        "h" | "hour" | "hours" => n * 3600e3,
        other => return Err(format!("unknown duration unit '{other}' in '{s}'")),
    };
    if !(ms >= 0.0 && ms.is_finite()) {
        return Err(format!("duration must be non-negative, got '{s}'"));
    }
    Ok(Duration::from_micros((ms * 1e3) as u64))
}
