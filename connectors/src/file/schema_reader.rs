//! Reads a file whose lines are KDA records, decoding each with an input schema's
//! [`RecordDecoder`] (options `'input_schema'` / `'input_schema_file'`).
//!
//! ```text
//!  input (BufRead) ──line──► strip line break (and BOM) ──► skip blank lines (and the
//!     line n                                                 first line if 'header')
//!                                                               │
//!                  RecordMeta { origin: stream/file/line, error_time: clock,
//!                               rowtime: clock (ingest) | from the record }
//!                                                               ▼
//!                          RecordDecoder::decode ──rows──► buffered until batch_size
//!                                   │                        │ (or, live input: nothing
//!                                   │                        │  more is buffered)
//!                        rejected ──┴─► SourceContext::errors.report (Err: the source fails)
//!                                                            ▼
//!            finish_with_rowtime ──► declared columns (by name, widened) ──► SourceEvent::Data
//! ```
//!
//! State: the decoder's rows not yet flushed, the line number, and whether the input ended.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion_stream::errors::ErrorSink;
use datafusion_stream::{SourceEvent, StreamClock};

use super::KdaPlan;
use crate::kda::{RecordDecoder, RecordMeta};

/// Where a record is, for messages: `stream 's': file 'x' line 3`.
struct Origin<'a> {
    stream: &'a str,
    label: &'a str,
    line: u64,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream '{}': {} line {}",
            self.stream, self.label, self.line
        )
    }
}

/// Reads and decodes one input; see the module docs.
pub(super) struct SchemaReader {
    label: String,
    stream_name: String,
    plan: Arc<KdaPlan>,
    /// The declared columns.
    schema: SchemaRef,
    decoder: RecordDecoder,
    input: BufReader<Box<dyn Read + Send>>,
    live: bool,
    errors: Arc<dyn ErrorSink>,
    clock: Arc<dyn StreamClock>,
    batch_size: usize,
    line_no: u64,
    line: Vec<u8>,
    eof: bool,
    failed: bool,
}

impl SchemaReader {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        label: String,
        stream_name: String,
        plan: Arc<KdaPlan>,
        schema: SchemaRef,
        batch_size: usize,
        input: Box<dyn Read + Send>,
        live: bool,
        errors: Arc<dyn ErrorSink>,
        clock: Arc<dyn StreamClock>,
    ) -> Result<Self> {
        let decoder = plan.decoder()?;
        Ok(Self {
            label,
            stream_name,
            plan,
            schema,
            decoder,
            input: BufReader::with_capacity(64 * 1024, input),
            live,
            errors,
            clock,
            batch_size,
            line_no: 0,
            line: Vec::new(),
            eof: false,
            failed: false,
        })
    }

    /// The next batch of good rows, or `None` at the end of the input. After an error the
    /// reader is finished.
    pub(super) fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        if self.failed {
            return Ok(None);
        }
        let r = self.next_event_inner();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn next_event_inner(&mut self) -> Result<Option<SourceEvent>> {
        loop {
            let buffered = self.decoder.buffered_rows();
            if buffered >= self.batch_size
                || (buffered > 0 && (self.eof || (self.live && self.input.buffer().is_empty())))
            {
                return self.flush().map(Some);
            }
            if self.eof {
                return Ok(None);
            }
            if !self.read_line()? {
                self.eof = true;
                continue;
            }
            if self.line_no == 1 && self.plan.skip_header {
                continue;
            }
            if self.line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let now = self.clock.now();
            let origin = Origin {
                stream: &self.stream_name,
                label: &self.label,
                line: self.line_no,
            };
            let meta = RecordMeta {
                origin: &origin,
                error_time: now,
                rowtime: if self.plan.rowtime_supplied {
                    None
                } else {
                    Some(now)
                },
            };
            let out = self.decoder.decode(&self.line, &meta);
            for record in out.rejected {
                self.errors.report(record)?;
            }
        }
    }

    /// Reads one line, without its line break, into `self.line`; false at the end.
    fn read_line(&mut self) -> Result<bool> {
        self.line.clear();
        let n = self.input.read_until(b'\n', &mut self.line).map_err(|e| {
            DataFusionError::Execution(format!(
                "stream '{}': {} line {}: cannot read: {e}",
                self.stream_name,
                self.label,
                self.line_no + 1
            ))
        })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
        }
        if self.line_no == 1 && self.line.starts_with(b"\xEF\xBB\xBF") {
            self.line.drain(..3);
        }
        Ok(true)
    }

    /// The decoded rows as the declared columns.
    fn flush(&mut self) -> Result<SourceEvent> {
        let (batch, rowtime) = self.decoder.finish_with_rowtime()?;
        let columns = self
            .plan
            .columns
            .iter()
            .map(|(i, to)| {
                let c = batch.column(*i);
                match to {
                    Some(t) => cast(c, t).map_err(|e| {
                        DataFusionError::Execution(format!(
                            "stream '{}': {}: cannot widen input column '{}' to {t}: {e}",
                            self.stream_name,
                            self.label,
                            batch.schema().field(*i).name()
                        ))
                    }),
                    None => Ok(Arc::clone(c)),
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let out = RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(SourceEvent::Data {
            batch: out,
            rowtime: self
                .plan
                .rowtime_supplied
                .then(|| Arc::new(rowtime) as ArrayRef),
        })
    }
}
