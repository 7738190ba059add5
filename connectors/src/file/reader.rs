//! Turns the lines of a CSV or JSON-lines input into record batches, keeping the line number
//! of every record so a bad row is reported where it is.
//!
//! ```text
//!  input (BufRead) ──read line──► skip blanks ──► arrow decoder (csv / json) ──► flush at
//!      line n                      (between       │ + raw bytes and first line     batch_size
//!                                   records)      │   of each buffered record      records
//!                                                 ▼
//!                         batch ok?  ── yes ──► reorder to the declared columns,
//!                            │                  split off + check the ROWTIME column
//!                            no                 (not NULL, non-decreasing)
//!                            ▼
//!            re-decode the buffered records one by one ──► "file 'x' line n: <error>"
//! ```
//!
//! For a live input (stdin) a partial batch is also flushed whenever the input has no more
//! bytes buffered, so rows typed or piped slowly are not held back until a batch fills.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::csv::reader::{Decoder as CsvDecoder, Format as CsvFormat};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::reader::Decoder as JsonDecoder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion_stream::time::format_millis;
use datafusion_stream::{Millis, SourceEvent};

use super::{FileConfig, FileFormat};

/// One of arrow's push decoders.
enum Decoder {
    Csv(Box<CsvDecoder>),
    Json(JsonDecoder),
}

impl Decoder {
    fn decode(&mut self, buf: &[u8]) -> std::result::Result<usize, ArrowError> {
        match self {
            Decoder::Csv(d) => d.decode(buf),
            Decoder::Json(d) => d.decode(buf),
        }
    }

    fn flush(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        match self {
            Decoder::Csv(d) => d.flush(),
            Decoder::Json(d) => d.flush(),
        }
    }

    /// Records complete and buffered.
    fn buffered(&self, batch_size: usize) -> usize {
        match self {
            Decoder::Csv(d) => batch_size.saturating_sub(d.capacity()),
            // `len` counts a record being decoded too.
            Decoder::Json(d) => d.len() - usize::from(d.has_partial_record()),
        }
    }
}

/// How to build decoders for this input (known once the header, if any, is read).
#[derive(Debug, Clone)]
struct DecoderSpec {
    /// The schema the decoder parses (CSV: every column of the file, in file order).
    file_schema: SchemaRef,
    /// CSV: the file columns to keep.
    projection: Option<Vec<usize>>,
}

/// A record being read: its first line and its bytes in `raw`.
#[derive(Debug, Clone, Copy)]
struct RecordSpan {
    line: u64,
    start: usize,
    end: usize,
}

/// Reads batches from one input; see the module docs.
pub(super) struct BatchReader {
    /// `file 'path'` or `stdin`, for messages.
    label: String,
    stream_name: String,
    config: Arc<FileConfig>,
    /// The declared columns (the rows the source yields).
    schema: SchemaRef,
    input: BufReader<Box<dyn Read + Send>>,
    live: bool,
    spec: Option<DecoderSpec>,
    decoder: Option<Decoder>,
    /// Lines read so far.
    line_no: u64,
    line: Vec<u8>,
    /// Bytes of the buffered records (kept to find a bad record).
    raw: Vec<u8>,
    records: Vec<RecordSpan>,
    /// The record currently being read, when it spans lines: (first line, start in `raw`).
    pending: Option<(u64, usize)>,
    last_rowtime: Millis,
    eof: bool,
    failed: bool,
}

impl BatchReader {
    pub(super) fn new(
        label: String,
        stream_name: String,
        config: Arc<FileConfig>,
        schema: SchemaRef,
        input: Box<dyn Read + Send>,
        live: bool,
    ) -> Self {
        Self {
            label,
            stream_name,
            config,
            schema,
            input: BufReader::with_capacity(64 * 1024, input),
            live,
            spec: None,
            decoder: None,
            line_no: 0,
            line: Vec::new(),
            raw: Vec::new(),
            records: Vec::new(),
            pending: None,
            last_rowtime: Millis::MIN,
            eof: false,
            failed: false,
        }
    }

    fn err(&self, line: Option<u64>, msg: impl std::fmt::Display) -> DataFusionError {
        match line {
            Some(l) => DataFusionError::Execution(format!(
                "stream '{}': {} line {l}: {msg}",
                self.stream_name, self.label
            )),
            None => DataFusionError::Execution(format!(
                "stream '{}': {}: {msg}",
                self.stream_name, self.label
            )),
        }
    }

    /// The next batch of rows, or `None` at the end of the input. After an error the reader
    /// is finished.
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
        if self.spec.is_none() {
            let spec = self.read_spec()?;
            self.decoder = Some(self.build_decoder(&spec)?);
            self.spec = Some(spec);
        }
        loop {
            if self.eof {
                return self.flush_batch();
            }
            let batch_size = self.config.batch_size;
            let buffered = self.decoder.as_ref().map_or(0, |d| d.buffered(batch_size));
            if buffered >= batch_size
                || (self.live
                    && buffered > 0
                    && self.pending.is_none()
                    && self.input.buffer().is_empty())
            {
                if let Some(event) = self.flush_batch()? {
                    return Ok(Some(event));
                }
            }
            if !self.read_line()? {
                self.eof = true;
                // Let the decoder see the end of the input (completes a last record that has
                // no line break).
                let before = self.decoder.as_ref().map_or(0, |d| d.buffered(batch_size));
                if let Some(d) = self.decoder.as_mut() {
                    d.decode(&[]).map_err(|e| {
                        DataFusionError::Execution(format!(
                            "stream '{}': {} line {}: {e}",
                            self.stream_name,
                            self.label,
                            self.pending.map_or(self.line_no, |p| p.0)
                        ))
                    })?;
                }
                let after = self.decoder.as_ref().map_or(0, |d| d.buffered(batch_size));
                if let Some((line, start)) = self.pending.take() {
                    if after > before {
                        self.records.push(RecordSpan {
                            line,
                            start,
                            end: self.raw.len(),
                        });
                    } else {
                        return Err(self.err(
                            Some(line),
                            "the record is incomplete at the end of the input (an unclosed quote or object?)",
                        ));
                    }
                }
                continue;
            }
            // Blank lines between records are skipped.
            if self.pending.is_none() && self.line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            self.feed_line()?;
        }
    }

    /// Reads one line into `self.line`; false at the end of the input.
    fn read_line(&mut self) -> Result<bool> {
        self.line.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|e| self.err(Some(self.line_no + 1), format!("cannot read: {e}")))?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.line_no == 1 && self.line.starts_with(b"\xEF\xBB\xBF") {
            self.line.drain(..3);
        }
        Ok(true)
    }

    /// Feeds the current line to the decoder, noting which records it completes.
    fn feed_line(&mut self) -> Result<()> {
        let batch_size = self.config.batch_size;
        let start = self.raw.len();
        self.raw.extend_from_slice(&self.line);
        let (first_line, record_start) = self.pending.unwrap_or((self.line_no, start));
        let Some(decoder) = self.decoder.as_mut() else {
            return Err(self.err(None, "internal error: no decoder"));
        };
        let before = decoder.buffered(batch_size);
        let mut offset = 0;
        while offset < self.line.len() {
            let n = decoder.decode(&self.line[offset..]).map_err(|e| {
                DataFusionError::Execution(format!(
                    "stream '{}': {} line {first_line}: {}",
                    self.stream_name,
                    self.label,
                    strip_arrow_line(&e.to_string())
                ))
            })?;
            if n == 0 {
                // The batch is full in the middle of a line: cannot happen with one record per
                // line, but stay safe.
                return Err(self.err(Some(self.line_no), "more than one record on a line"));
            }
            offset += n;
        }
        let after = decoder.buffered(batch_size);
        match after.saturating_sub(before) {
            0 => self.pending = Some((first_line, record_start)),
            1 => {
                self.records.push(RecordSpan {
                    line: first_line,
                    start: record_start,
                    end: self.raw.len(),
                });
                self.pending = None;
            }
            _ => return Err(self.err(Some(self.line_no), "more than one record on a line")),
        }
        Ok(())
    }

    /// Decodes the buffered records into a batch of the declared columns.
    fn flush_batch(&mut self) -> Result<Option<SourceEvent>> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        let flushed = decoder.flush();
        let records = std::mem::take(&mut self.records);
        let raw = std::mem::take(&mut self.raw);
        let batch = match flushed {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.locate_error(&records, &raw, e)),
        };
        // Bytes of a record still being read stay for the next batch.
        if let Some((line, start)) = self.pending {
            self.raw = raw[start..].to_vec();
            self.pending = Some((line, 0));
        }
        if batch.num_rows() != records.len() {
            return Err(self.err(
                None,
                format!(
                    "internal error: {} rows decoded from {} records",
                    batch.num_rows(),
                    records.len()
                ),
            ));
        }
        self.make_event(batch, &records).map(Some)
    }

    /// Finds the first record that does not decode on its own and names its line.
    fn locate_error(
        &self,
        records: &[RecordSpan],
        raw: &[u8],
        original: ArrowError,
    ) -> DataFusionError {
        if let Some(spec) = &self.spec {
            for r in records {
                let Ok(mut d) = self.build_decoder(spec) else {
                    break;
                };
                let res = d
                    .decode(&raw[r.start..r.end])
                    .and_then(|_| d.decode(&[]))
                    .and_then(|_| d.flush());
                if let Err(e) = res {
                    let msg =
                        name_arrow_columns(&strip_arrow_line(&e.to_string()), &spec.file_schema);
                    return self.err(Some(r.line), msg);
                }
            }
        }
        let lines = match (records.first(), records.last()) {
            (Some(a), Some(b)) => format!("lines {}-{}", a.line, b.line),
            _ => "unknown line".to_string(),
        };
        self.err(None, format!("{lines}: {original}"))
    }

    /// Reorders the decoded columns to the declared ones and splits off ROWTIME.
    fn make_event(&mut self, batch: RecordBatch, records: &[RecordSpan]) -> Result<SourceEvent> {
        let decoded = batch.schema();
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for f in self.schema.fields() {
            let idx = decoded.index_of(f.name()).map_err(|_| {
                self.err(
                    None,
                    format!("internal error: column '{}' was not decoded", f.name()),
                )
            })?;
            columns.push(Arc::clone(batch.column(idx)));
        }
        let config = Arc::clone(&self.config);
        let rowtime = match &config.rowtime_column {
            None => None,
            Some(name) => {
                let idx = decoded.index_of(name).map_err(|_| {
                    self.err(
                        None,
                        format!("internal error: column '{name}' was not decoded"),
                    )
                })?;
                Some(self.check_rowtime(batch.column(idx), name, records)?)
            }
        };
        let out = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| {
            let lines = match (records.first(), records.last()) {
                (Some(a), Some(b)) => format!("lines {}-{}", a.line, b.line),
                _ => "unknown lines".to_string(),
            };
            // A NULL in a NOT NULL column: find the row.
            for (i, f) in self.schema.fields().iter().enumerate() {
                if !f.is_nullable() {
                    if let Some(row) = (0..batch.num_rows()).find(|&r| {
                        decoded
                            .index_of(f.name())
                            .map(|c| batch.column(c).is_null(r))
                            .unwrap_or(false)
                    }) {
                        let line = records.get(row).map(|r| r.line);
                        return self.err(
                            line,
                            format!(
                                "column '{}' (#{}) is declared NOT NULL but is empty/null",
                                f.name(),
                                i + 1
                            ),
                        );
                    }
                }
            }
            self.err(None, format!("{lines}: {e}"))
        })?;
        Ok(SourceEvent::Data {
            batch: out,
            rowtime,
        })
    }

    fn check_rowtime(
        &mut self,
        col: &ArrayRef,
        name: &str,
        records: &[RecordSpan],
    ) -> Result<ArrayRef> {
        let col = cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))
            .map_err(|e| self.err(None, format!("rowtime column '{name}': {e}")))?;
        let values = col.as_primitive::<TimestampMillisecondType>();
        for i in 0..values.len() {
            let line = records.get(i).map(|r| r.line);
            if values.is_null(i) {
                return Err(self.err(
                    line,
                    format!("rowtime column '{name}' is empty; every row needs a ROWTIME"),
                ));
            }
            let t = values.value(i);
            if t < self.last_rowtime {
                return Err(self.err(
                    line,
                    format!(
                        "rowtime column '{name}' goes backwards: {} after {}; ROWTIME must not decrease",
                        format_millis(t),
                        format_millis(self.last_rowtime)
                    ),
                ));
            }
            self.last_rowtime = t;
        }
        Ok(col)
    }

    fn rowtime_field(&self) -> Option<Field> {
        self.config
            .rowtime_column
            .as_ref()
            .map(|n| Field::new(n, DataType::Timestamp(TimeUnit::Millisecond, None), true))
    }

    /// Works out what to decode: for CSV with a header, reads the header and maps its
    /// columns by name.
    fn read_spec(&mut self) -> Result<DecoderSpec> {
        match &self.config.format {
            FileFormat::Json => {
                let mut fields: Vec<Field> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                fields.extend(self.rowtime_field());
                Ok(DecoderSpec {
                    file_schema: Arc::new(Schema::new(fields)),
                    projection: None,
                })
            }
            FileFormat::Csv { header: false, .. } => {
                let fields: Vec<Field> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                Ok(DecoderSpec {
                    file_schema: Arc::new(Schema::new(fields)),
                    projection: None,
                })
            }
            FileFormat::Csv {
                header: true,
                delimiter,
            } => {
                let delimiter = *delimiter;
                // The header is the first non-blank line.
                loop {
                    if !self.read_line()? {
                        return Err(self.err(
                            None,
                            "the input is empty, but 'header' = 'true' expects a header line",
                        ));
                    }
                    if !self.line.iter().all(|b| b.is_ascii_whitespace()) {
                        break;
                    }
                }
                let header_line = self.line_no;
                let (names, _) = CsvFormat::default()
                    .with_header(true)
                    .with_delimiter(delimiter)
                    .infer_schema(&self.line[..], Some(0))
                    .map_err(|e| self.err(Some(header_line), format!("bad header: {e}")))?;
                let names: Vec<String> = names
                    .fields()
                    .iter()
                    .map(|f| f.name().trim().to_string())
                    .collect();
                let find = |wanted: &str| -> Option<usize> {
                    names
                        .iter()
                        .position(|n| n == wanted)
                        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(wanted)))
                };
                let mut file_fields: Vec<Field> = names
                    .iter()
                    .map(|n| Field::new(format!("__unused_{n}"), DataType::Utf8, true))
                    .collect();
                let mut projection = Vec::new();
                let mut wanted: Vec<Field> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone())
                    .collect();
                wanted.extend(self.rowtime_field());
                for f in &wanted {
                    let Some(idx) = find(f.name()) else {
                        return Err(self.err(
                            Some(header_line),
                            format!(
                                "the header has no column '{}' (header columns: {})",
                                f.name(),
                                names.join(", ")
                            ),
                        ));
                    };
                    if projection.contains(&idx) {
                        return Err(self.err(
                            Some(header_line),
                            format!(
                                "header column '{}' is claimed by two declared columns",
                                names[idx]
                            ),
                        ));
                    }
                    file_fields[idx] = f.clone().with_nullable(true);
                    projection.push(idx);
                }
                projection.sort_unstable();
                Ok(DecoderSpec {
                    file_schema: Arc::new(Schema::new(file_fields)),
                    projection: Some(projection),
                })
            }
        }
    }

    fn build_decoder(&self, spec: &DecoderSpec) -> Result<Decoder> {
        let batch_size = self.config.batch_size;
        match &self.config.format {
            FileFormat::Csv { delimiter, .. } => {
                let mut b =
                    datafusion::arrow::csv::ReaderBuilder::new(Arc::clone(&spec.file_schema))
                        .with_header(false)
                        .with_delimiter(*delimiter)
                        .with_batch_size(batch_size);
                if let Some(p) = &spec.projection {
                    b = b.with_projection(p.clone());
                }
                Ok(Decoder::Csv(Box::new(b.build_decoder())))
            }
            FileFormat::Json => {
                datafusion::arrow::json::ReaderBuilder::new(Arc::clone(&spec.file_schema))
                    .with_batch_size(batch_size)
                    .with_strict_mode(false)
                    .build_decoder()
                    .map(Decoder::Json)
                    .map_err(|e| {
                        self.err(
                            None,
                            format!("cannot read JSON with the declared columns: {e}"),
                        )
                    })
            }
        }
    }
}

/// Removes arrow's own " at line N" / " for line N" (counted from its first data record, not
/// the file's first line) from a message: the caller names the real line instead.
fn strip_arrow_line(msg: &str) -> String {
    let mut out = msg.to_string();
    for marker in [" at line ", " for line "] {
        while let Some(i) = out.find(marker) {
            let digits_start = i + marker.len();
            let digits = out[digits_start..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 {
                break;
            }
            out.replace_range(i..digits_start + digits, "");
        }
    }
    out
}

/// Replaces arrow's 0-based "column N" by the column's name.
fn name_arrow_columns(msg: &str, schema: &Schema) -> String {
    let marker = "column ";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(marker) {
        let after = &rest[i + marker.len()..];
        let digits = after.chars().take_while(|c| c.is_ascii_digit()).count();
        out.push_str(&rest[..i + marker.len()]);
        match after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| schema.fields().get(n))
        {
            Some(f) if digits > 0 => out.push_str(&format!("'{}'", f.name())),
            _ => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{name_arrow_columns, strip_arrow_line};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn names_arrow_columns() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
        ]);
        assert_eq!(
            name_arrow_columns(
                "value 'x' as type 'Float64' for column 1. Error parsing column 0: y; column 7",
                &schema
            ),
            "value 'x' as type 'Float64' for column 'price'. Error parsing column 'a': y; column 7"
        );
    }

    #[test]
    fn strips_arrow_line_numbers() {
        assert_eq!(
            strip_arrow_line("Error while parsing value 'x' as type 'Float64' for column 2 at line 0. Row data: '[x]'"),
            "Error while parsing value 'x' as type 'Float64' for column 2. Row data: '[x]'"
        );
        assert_eq!(
            strip_arrow_line("incorrect number of fields for line 1, expected 4 got 2"),
            "incorrect number of fields, expected 4 got 2"
        );
        assert_eq!(strip_arrow_line("at line x"), "at line x");
    }
}
