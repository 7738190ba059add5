//! Printing result batches: a table per batch, JSON lines, or CSV with one header per query.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::args::Format;

/// Writes to the process's standard output (so arrow writers can own a writer each).
#[derive(Debug, Clone, Copy, Default)]
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

enum QueryWriter {
    Table,
    Csv(Box<datafusion::arrow::csv::Writer<Stdout>>),
    Json(datafusion::arrow::json::LineDelimitedWriter<Stdout>),
}

/// Prints the batches of every query of a script.
pub struct Output {
    writers: Vec<QueryWriter>,
    /// Label batches with their query number.
    label: bool,
}

impl Output {
    /// Output for `queries` queries in `format`.
    pub fn new(format: Format, queries: usize) -> Self {
        let writers = (0..queries)
            .map(|_| match format {
                Format::Table => QueryWriter::Table,
                Format::Csv => QueryWriter::Csv(Box::new(
                    datafusion::arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .with_timestamp_format(TIMESTAMP_FORMAT.to_string())
                        .build(Stdout),
                )),
                Format::Json => {
                    QueryWriter::Json(datafusion::arrow::json::LineDelimitedWriter::new(Stdout))
                }
            })
            .collect();
        Self {
            writers,
            label: queries > 1,
        }
    }

    /// Prints one batch of query `query` (0-based) and flushes stdout.
    pub fn write(&mut self, query: usize, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let n = query + 1;
        let label = self.label;
        let Some(writer) = self.writers.get_mut(query) else {
            return Err(ArrowError::InvalidArgumentError(format!("no query {n}")));
        };
        match writer {
            QueryWriter::Table => {
                let table = pretty_format_batches(std::slice::from_ref(batch))?;
                let mut out = std::io::stdout().lock();
                if label {
                    writeln!(out, "query {n}:")?;
                }
                writeln!(out, "{table}")?;
                out.flush()?;
            }
            QueryWriter::Csv(w) => {
                if label {
                    w.write(&with_query_column(batch, n)?)?;
                } else {
                    w.write(batch)?;
                }
                std::io::stdout().flush()?;
            }
            QueryWriter::Json(w) => {
                if label {
                    w.write(&with_query_column(batch, n)?)?;
                } else {
                    w.write(batch)?;
                }
                std::io::stdout().flush()?;
            }
        }
        Ok(())
    }
}

/// Prepends a `query` column holding `n`.
fn with_query_column(batch: &RecordBatch, n: usize) -> Result<RecordBatch, ArrowError> {
    let mut fields = vec![Arc::new(Field::new("query", DataType::UInt32, false))];
    fields.extend(batch.schema().fields().iter().cloned());
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_value(
        n as u32,
        batch.num_rows(),
    ))];
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// True if an error is a closed stdout (`dfstream ... | head`): a reason to stop, not to fail.
pub fn is_broken_pipe(e: &ArrowError) -> bool {
    match e {
        ArrowError::IoError(_, io) => io.kind() == std::io::ErrorKind::BrokenPipe,
        ArrowError::ExternalError(inner) => inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe),
        other => other.to_string().contains("Broken pipe"),
    }
}
