//! Rejected records and per-row errors, by explicit policy.
//!
//! ```text
//!  source decode error ─┐
//!  per-row runtime error ┼─► ErrorRecord ─► ErrorSink ─┬─ FailOnError: the query fails, naming it
//!  ROWTIME order error  ─┘                             └─ a collecting sink (KDA's error_stream)
//! ```
//!
//! Nothing is dropped silently: every component that rejects a record reports it to the
//! context's [`ErrorSink`] (carried in [`crate::StreamRuntime::errors`]). The default sink fails
//! the query with the record's message; a KDA application installs a sink that turns the
//! records into rows of its `error_stream` (schema: [`ErrorRecord::schema`]).

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder, TimestampMillisecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};

use crate::time::Millis;

/// One rejected record or failed row, with KDA's `error_stream` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// When the error occurred (context clock).
    pub error_time: Millis,
    /// `ERROR` (or `WARNING`).
    pub level: String,
    /// Short class of error, e.g. `Coercion_Error`, `Parse_Error`, `Division_By_Zero`.
    pub name: String,
    /// What went wrong and where (stream, partition/shard, column).
    pub message: String,
    /// ROWTIME of the record, when it had one.
    pub data_rowtime: Option<Millis>,
    /// The record's raw bytes (or its row rendered as text); hex-encoded in `DATA_ROW`.
    pub data_row: Vec<u8>,
    /// The pump (or query) that rejected it; empty for input errors.
    pub pump_name: String,
    /// Reported by a source (a record that could not be read), not by a query.
    pub from_input: bool,
}

impl ErrorRecord {
    /// An `ERROR`-level record.
    pub fn error(
        error_time: Millis,
        name: impl Into<String>,
        message: impl Into<String>,
        data_rowtime: Option<Millis>,
        data_row: Vec<u8>,
    ) -> Self {
        Self {
            error_time,
            level: "ERROR".to_string(),
            name: name.into(),
            message: message.into(),
            data_rowtime,
            data_row,
            pump_name: String::new(),
            from_input: false,
        }
    }

    /// Sets the originating pump.
    pub fn with_pump(mut self, pump: impl Into<String>) -> Self {
        self.pump_name = pump.into();
        self
    }

    /// The schema of KDA's `error_stream` (upper-case names, as KDA defines them).
    pub fn schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        Arc::new(Schema::new(vec![
            Field::new("ERROR_TIME", ts.clone(), false),
            Field::new("ERROR_LEVEL", DataType::Utf8, false),
            Field::new("ERROR_NAME", DataType::Utf8, false),
            Field::new("MESSAGE", DataType::Utf8, false),
            Field::new("DATA_ROWTIME", ts, true),
            Field::new("DATA_ROW", DataType::Utf8, true),
            Field::new("PUMP_NAME", DataType::Utf8, true),
        ]))
    }

    /// `DATA_ROW` as KDA prints it: lower-case hex of the raw bytes.
    pub fn data_row_hex(&self) -> String {
        let mut s = String::with_capacity(self.data_row.len() * 2);
        for b in &self.data_row {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Rows of the `error_stream` schema.
    pub fn to_batch(records: &[ErrorRecord]) -> Result<RecordBatch> {
        let n = records.len();
        let mut time = TimestampMillisecondBuilder::with_capacity(n);
        let mut level = StringBuilder::new();
        let mut name = StringBuilder::new();
        let mut message = StringBuilder::new();
        let mut rowtime = TimestampMillisecondBuilder::with_capacity(n);
        let mut row = StringBuilder::new();
        let mut pump = StringBuilder::new();
        for r in records {
            time.append_value(r.error_time);
            level.append_value(&r.level);
            name.append_value(&r.name);
            message.append_value(&r.message);
            rowtime.append_option(r.data_rowtime);
            row.append_value(r.data_row_hex());
            pump.append_value(&r.pump_name);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(time.finish()),
            Arc::new(level.finish()),
            Arc::new(name.finish()),
            Arc::new(message.finish()),
            Arc::new(rowtime.finish()),
            Arc::new(row.finish()),
            Arc::new(pump.finish()),
        ];
        Ok(RecordBatch::try_new(Self::schema(), cols)?)
    }
}

/// Where rejected records go.
pub trait ErrorSink: Debug + Send + Sync {
    /// Takes one record. An `Err` fails the component that reported it (and so the query).
    fn report(&self, record: ErrorRecord) -> Result<()>;
}

/// The default policy: the first rejected record fails the query, with its message.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailOnError;

impl ErrorSink for FailOnError {
    fn report(&self, record: ErrorRecord) -> Result<()> {
        Err(DataFusionError::Execution(format!(
            "{}: {} (no error stream is configured, so the query fails; record: {})",
            record.name,
            record.message,
            String::from_utf8_lossy(&record.data_row)
        )))
    }
}

/// A sink that keeps every record in memory (tests, and the CLI's error output).
#[derive(Debug, Default)]
pub struct CollectingErrorSink {
    records: std::sync::Mutex<Vec<ErrorRecord>>,
}

impl CollectingErrorSink {
    /// Takes the records collected so far.
    pub fn take(&self) -> Vec<ErrorRecord> {
        match self.records.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl ErrorSink for CollectingErrorSink {
    fn report(&self, record: ErrorRecord) -> Result<()> {
        match self.records.lock() {
            Ok(mut g) => g.push(record),
            Err(p) => p.into_inner().push(record),
        }
        Ok(())
    }
}

/// Marks every record reported through it as an input error (the scan gives this to its
/// source, so a query's error sink can tell rejected input records from failed rows).
#[derive(Debug)]
pub struct InputErrors(pub std::sync::Arc<dyn ErrorSink>);

impl ErrorSink for InputErrors {
    fn report(&self, mut record: ErrorRecord) -> Result<()> {
        record.from_input = true;
        self.0.report(record)
    }
}
