//! Kinesis records (after deaggregation) to rows of the declared columns: payload columns
//! decoded from the record data, metadata columns from the record itself.
//!
//! ```text
//!  DecodePlan (built once, at CREATE STREAM):
//!    declared column ──► Meta(shard_id | sequence_number | sub_sequence_number |
//!                             partition_key | approximate_arrival_time)   by name, any case
//!                    └─► Data(i, widen-to)  i-th column of the payload decoder's schema
//!
//!  BatchDecoder (one per partition), per GetRecords answer:
//!    push(UserRow) ... (kept)            finish():
//!                                         payload ─┬─ KDA input schema: RecordDecoder per
//!                                                  │   record (0..n rows each)
//!                                                  ├─ plain JSON: arrow JSON decoder, one
//!                                                  │   object per record
//!                                                  └─ plain CSV: arrow CSV decoder, one line
//!                                                      per record
//!                                         bulk first; if anything fails, record by record,
//!                                         each bad record ──► ErrorSink (Parse_Error, with
//!                                         shard, sequence number and the raw bytes)
//!                                         rows + metadata gathered per row ──► RecordBatch
//! ```
//!
//! State: the records pushed since the last `finish`.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::{can_cast_types, cast, concat_batches};
use datafusion::arrow::csv::reader::Format as CsvFormat;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatchOptions;
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion_stream::errors::{ErrorRecord, ErrorSink};
use datafusion_stream::Millis;

use crate::kda::{InputSchema, RecordDecoder, RecordMeta};

/// `ERROR_NAME` of a record that cannot be decoded.
pub const PARSE_ERROR: &str = "Parse_Error";

/// A metadata column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaColumn {
    /// `shard_id`: the shard the record was read from.
    ShardId,
    /// `sequence_number`: the Kinesis record's sequence number (shared by the user records of
    /// a KPL aggregated record).
    SequenceNumber,
    /// `sub_sequence_number`: the user record's index in a KPL aggregated record (0 for a
    /// plain record).
    SubSequenceNumber,
    /// `partition_key`: the (user) record's partition key.
    PartitionKey,
    /// `approximate_arrival_time`: when Kinesis accepted the record (TIMESTAMP).
    ApproximateArrivalTime,
}

impl MetaColumn {
    /// The metadata column a declared column name means (any case), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "shard_id" => MetaColumn::ShardId,
            "sequence_number" => MetaColumn::SequenceNumber,
            "sub_sequence_number" => MetaColumn::SubSequenceNumber,
            "partition_key" => MetaColumn::PartitionKey,
            "approximate_arrival_time" => MetaColumn::ApproximateArrivalTime,
            _ => return None,
        })
    }

    fn natural_type(self) -> DataType {
        match self {
            MetaColumn::SubSequenceNumber => DataType::Int64,
            MetaColumn::ApproximateArrivalTime => DataType::Timestamp(TimeUnit::Millisecond, None),
            _ => DataType::Utf8,
        }
    }
}

/// The payload format.
#[derive(Debug, Clone)]
pub enum PayloadFormat {
    /// One JSON object per record; keys matched to column names.
    Json,
    /// One delimited line per record (no header, no quoting rules beyond CSV's).
    Csv {
        /// Field delimiter.
        delimiter: u8,
    },
    /// Decoded with a KDA input schema (JSONPath mappings / CSV delimiters, KDA coercion).
    Kda(Box<InputSchema>),
}

#[derive(Debug, Clone)]
enum ColumnSource {
    Data {
        index: usize,
        cast_to: Option<DataType>,
    },
    Meta(MetaColumn, DataType),
}

/// How records become rows of the declared columns; see the module docs.
#[derive(Debug)]
pub struct DecodePlan {
    stream: String,
    declared: SchemaRef,
    /// The payload decoder's schema (plain formats: the declared non-metadata columns).
    payload_schema: SchemaRef,
    columns: Vec<ColumnSource>,
    format: PayloadFormat,
    not_null: Vec<String>,
}

/// One user record to decode.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Its shard.
    pub shard_id: Arc<str>,
    /// The Kinesis record's sequence number.
    pub sequence_number: Arc<str>,
    /// Index in a KPL aggregated record, if it came from one.
    pub sub_sequence_number: Option<u64>,
    /// Partition key.
    pub partition_key: String,
    /// Approximate arrival time.
    pub arrival: Option<Millis>,
    /// The data.
    pub data: Vec<u8>,
}

/// `stream 's': shard shardId-… sequence 4960…[/3]` in messages.
struct Origin<'a> {
    stream: &'a str,
    row: &'a UserRow,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream '{}': shard {} sequence number {}",
            self.stream, self.row.shard_id, self.row.sequence_number
        )?;
        if let Some(s) = self.row.sub_sequence_number {
            write!(f, " (KPL user record {s})")?;
        }
        Ok(())
    }
}

/// True if `from` converts to `to` without loss (the same rule as the file connector).
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (Float32, Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (Utf8, Utf8View | LargeUtf8) => true,
        (Time32(TimeUnit::Millisecond), Time64(_)) => true,
        (Timestamp(TimeUnit::Millisecond, None), Timestamp(_, None)) => true,
        (FixedSizeBinary(_), Binary | LargeBinary | BinaryView) => true,
        (Binary, LargeBinary | BinaryView) => true,
        _ => false,
    }
}

impl DecodePlan {
    /// A plan for `declared` columns of `stream` with records in `format`.
    pub fn try_new(stream: &str, declared: SchemaRef, format: PayloadFormat) -> Result<Self> {
        let kda_names: Option<Vec<String>> = match &format {
            PayloadFormat::Kda(schema) => Some(
                RecordDecoder::try_new(schema)
                    .map_err(|e| {
                        DataFusionError::Plan(format!("CREATE STREAM {stream}: {}", e.message()))
                    })?
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
            ),
            _ => None,
        };
        let mut columns = Vec::new();
        let mut payload_fields = Vec::new();
        let mut not_null = Vec::new();
        let kda_schema = match &format {
            PayloadFormat::Kda(s) => Some(RecordDecoder::try_new(s)?.schema()),
            _ => None,
        };
        for f in declared.fields() {
            let name = f.name();
            // With an input schema, a column it maps is payload even if named like metadata.
            let in_schema = |names: &Vec<String>| {
                names.iter().any(|n| n == name)
                    || names
                        .iter()
                        .filter(|n| n.eq_ignore_ascii_case(name))
                        .count()
                        == 1
            };
            let meta =
                MetaColumn::from_name(name).filter(|_| !kda_names.as_ref().is_some_and(in_schema));
            if let Some(m) = meta {
                if !can_cast_types(&m.natural_type(), f.data_type()) {
                    return plan_err!(
                        "CREATE STREAM {stream}: metadata column '{name}' is declared {}, but it \
                         holds {} values",
                        f.data_type(),
                        m.natural_type()
                    );
                }
                columns.push(ColumnSource::Meta(m, f.data_type().clone()));
                continue;
            }
            match (&kda_names, &kda_schema) {
                (Some(names), Some(schema)) => {
                    let idx = match names.iter().position(|n| n == name) {
                        Some(i) => i,
                        None => {
                            let m: Vec<usize> = (0..names.len())
                                .filter(|i| names[*i].eq_ignore_ascii_case(name))
                                .collect();
                            match m.as_slice() {
                                [i] => *i,
                                [] => {
                                    return plan_err!(
                                        "CREATE STREAM {stream}: column '{name}' is neither in the \
                                         input schema (its columns: {}) nor a Kinesis metadata column \
                                         (shard_id, sequence_number, sub_sequence_number, \
                                         partition_key, approximate_arrival_time)",
                                        names.join(", ")
                                    )
                                }
                                _ => {
                                    return plan_err!(
                                        "CREATE STREAM {stream}: column '{name}' matches several input \
                                         schema columns when case is ignored; quote it to pick one"
                                    )
                                }
                            }
                        }
                    };
                    let from = schema.field(idx).data_type();
                    let cast_to = if from == f.data_type() {
                        None
                    } else if widens(from, f.data_type()) {
                        Some(f.data_type().clone())
                    } else {
                        return plan_err!(
                            "CREATE STREAM {stream}: column '{name}' is declared {}, but the input \
                             schema has {from}, which does not always fit",
                            f.data_type()
                        );
                    };
                    if !f.is_nullable() {
                        not_null.push(names[idx].clone());
                    }
                    columns.push(ColumnSource::Data {
                        index: idx,
                        cast_to,
                    });
                }
                _ => {
                    columns.push(ColumnSource::Data {
                        index: payload_fields.len(),
                        cast_to: None,
                    });
                    payload_fields.push(Field::new(name, f.data_type().clone(), f.is_nullable()));
                }
            }
        }
        let payload_schema = match kda_schema {
            Some(s) => s,
            None => Arc::new(Schema::new(payload_fields)),
        };
        let plan = Self {
            stream: stream.to_string(),
            declared,
            payload_schema,
            columns,
            format,
            not_null,
        };
        plan.decoder_inner()?;
        Ok(plan)
    }

    /// A decoder for one partition.
    pub fn decoder(self: &Arc<Self>) -> Result<BatchDecoder> {
        self.decoder_inner().map(|kda| BatchDecoder {
            plan: Arc::clone(self),
            kda,
            pending: Vec::new(),
        })
    }

    fn decoder_inner(&self) -> Result<Option<RecordDecoder>> {
        match &self.format {
            PayloadFormat::Kda(schema) => {
                let mut d = RecordDecoder::try_new(schema)?;
                for c in &self.not_null {
                    d = d.with_not_null(c)?;
                }
                Ok(Some(d))
            }
            _ => Ok(None),
        }
    }

    /// The declared columns.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.declared)
    }
}

/// Decodes the records of one partition; see the module docs.
#[derive(Debug)]
pub struct BatchDecoder {
    plan: Arc<DecodePlan>,
    kda: Option<RecordDecoder>,
    pending: Vec<UserRow>,
}

fn reject(now: Millis, origin: &Origin, why: impl fmt::Display) -> ErrorRecord {
    ErrorRecord::error(
        now,
        PARSE_ERROR,
        format!("{origin}: {why}"),
        Some(now),
        origin.row.data.clone(),
    )
}

impl BatchDecoder {
    /// Adds a record (decoded at [`Self::finish`]).
    pub fn push(&mut self, row: UserRow) {
        self.pending.push(row);
    }

    /// Records pushed since the last finish.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Decodes the pushed records: the good rows (`None` if there are none); every bad record
    /// is reported to `errors` (an `Err` from the sink fails the call).
    pub fn finish(&mut self, now: Millis, errors: &dyn ErrorSink) -> Result<Option<RecordBatch>> {
        let rows = std::mem::take(&mut self.pending);
        if rows.is_empty() {
            return Ok(None);
        }
        let plan = Arc::clone(&self.plan);
        let (payload, sources) = match (&mut self.kda, &plan.format) {
            (Some(decoder), _) => decode_kda(&plan, decoder, &rows, now, errors)?,
            (None, PayloadFormat::Json) => decode_plain(&plan, &rows, now, errors, false, b',')?,
            (None, PayloadFormat::Csv { delimiter }) => {
                decode_plain(&plan, &rows, now, errors, true, *delimiter)?
            }
            (None, PayloadFormat::Kda(_)) => {
                return Err(DataFusionError::Internal(
                    "Kinesis decoder: input schema without a record decoder".into(),
                ))
            }
        };
        if sources.is_empty() {
            return Ok(None);
        }
        let n = sources.len();
        let columns = plan
            .columns
            .iter()
            .map(|c| match c {
                ColumnSource::Data { index, cast_to } => {
                    let col = payload.column(*index);
                    match cast_to {
                        Some(t) => cast(col, t).map_err(|e| {
                            DataFusionError::Execution(format!(
                                "stream '{}': cannot widen input column '{}' to {t}: {e}",
                                plan.stream,
                                payload.schema().field(*index).name()
                            ))
                        }),
                        None => Ok(Arc::clone(col)),
                    }
                }
                ColumnSource::Meta(m, t) => meta_column(*m, t, &rows, &sources),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(Some(RecordBatch::try_new_with_options(
            Arc::clone(&plan.declared),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?))
    }
}

fn meta_column(
    m: MetaColumn,
    t: &DataType,
    rows: &[UserRow],
    sources: &[usize],
) -> Result<ArrayRef> {
    let arr: ArrayRef = match m {
        MetaColumn::ShardId | MetaColumn::SequenceNumber | MetaColumn::PartitionKey => {
            let mut b = StringBuilder::with_capacity(sources.len(), sources.len() * 24);
            for &i in sources {
                let r = &rows[i];
                b.append_value(match m {
                    MetaColumn::ShardId => &r.shard_id,
                    MetaColumn::SequenceNumber => &r.sequence_number,
                    _ => r.partition_key.as_str(),
                });
            }
            Arc::new(b.finish())
        }
        MetaColumn::SubSequenceNumber => {
            let mut b = Int64Builder::with_capacity(sources.len());
            for &i in sources {
                b.append_value(rows[i].sub_sequence_number.unwrap_or(0) as i64);
            }
            Arc::new(b.finish())
        }
        MetaColumn::ApproximateArrivalTime => {
            let mut b = TimestampMillisecondBuilder::with_capacity(sources.len());
            for &i in sources {
                b.append_option(rows[i].arrival);
            }
            Arc::new(b.finish())
        }
    };
    if arr.data_type() == t {
        Ok(arr)
    } else {
        Ok(cast(&arr, t)?)
    }
}

/// KDA input schema: each record through the record decoder (0..n rows per record).
fn decode_kda(
    plan: &DecodePlan,
    decoder: &mut RecordDecoder,
    rows: &[UserRow],
    now: Millis,
    errors: &dyn ErrorSink,
) -> Result<(RecordBatch, Vec<usize>)> {
    let mut sources = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let origin = Origin {
            stream: &plan.stream,
            row,
        };
        let meta = RecordMeta {
            origin: &origin,
            error_time: now,
            rowtime: Some(now),
        };
        let out = decoder.decode(&row.data, &meta);
        for r in out.rejected {
            errors.report(r)?;
        }
        sources.extend(std::iter::repeat_n(i, out.rows));
    }
    Ok((decoder.finish()?, sources))
}

/// Plain JSON / CSV: one row per record. Bulk first; record by record when anything fails.
fn decode_plain(
    plan: &DecodePlan,
    rows: &[UserRow],
    now: Millis,
    errors: &dyn ErrorSink,
    csv: bool,
    delimiter: u8,
) -> Result<(RecordBatch, Vec<usize>)> {
    let schema = &plan.payload_schema;
    let bulk = if csv {
        csv_rows(
            schema,
            delimiter,
            rows.iter().map(|r| r.data.as_slice()),
            rows.len(),
        )
    } else {
        json_rows(schema, rows.iter().map(|r| r.data.as_slice()), rows.len())
    };
    if let Ok(batch) = bulk {
        return Ok((batch, (0..rows.len()).collect()));
    }
    let mut batches = Vec::new();
    let mut sources = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let one = if csv {
            csv_rows(schema, delimiter, std::iter::once(row.data.as_slice()), 1)
        } else {
            json_rows(schema, std::iter::once(row.data.as_slice()), 1)
        };
        match one {
            Ok(b) => {
                batches.push(b);
                sources.push(i);
            }
            Err(why) => {
                let origin = Origin {
                    stream: &plan.stream,
                    row,
                };
                errors.report(reject(now, &origin, why))?;
            }
        }
    }
    let batch = if batches.is_empty() {
        RecordBatch::new_empty(Arc::clone(schema))
    } else {
        concat_batches(schema, &batches)?
    };
    Ok((batch, sources))
}

/// Exactly one JSON object per record, else an error (for the record when `n` is 1).
fn json_rows<'a>(
    schema: &SchemaRef,
    records: impl Iterator<Item = &'a [u8]>,
    n: usize,
) -> std::result::Result<RecordBatch, String> {
    use datafusion::arrow::json::ReaderBuilder;
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(n + 1)
        .build_decoder()
        .map_err(|e| e.to_string())?;
    for (i, data) in records.enumerate() {
        let consumed = decoder
            .decode(data)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        if consumed != data.len() || decoder.has_partial_record() {
            return Err("the record is not one complete JSON object".to_string());
        }
        if decoder.len() != i + 1 {
            return Err(if decoder.len() <= i {
                "the record holds no JSON object".to_string()
            } else {
                "the record holds more than one JSON object".to_string()
            });
        }
    }
    match decoder.flush() {
        Ok(Some(b)) if b.num_rows() == n => Ok(b),
        Ok(Some(b)) => Err(format!("{} rows for {n} records", b.num_rows())),
        Ok(None) => Err("no rows".to_string()),
        Err(e) => Err(format!(
            "cannot convert the JSON values to the declared columns: {e}"
        )),
    }
}

/// Exactly one CSV line per record.
fn csv_rows<'a>(
    schema: &SchemaRef,
    delimiter: u8,
    records: impl Iterator<Item = &'a [u8]>,
    n: usize,
) -> std::result::Result<RecordBatch, String> {
    use datafusion::arrow::csv::ReaderBuilder;
    let mut buf = Vec::new();
    for data in records {
        let mut d = data;
        while let Some((b'\n' | b'\r', rest)) = d.split_last() {
            d = rest;
        }
        if d.contains(&b'\n') {
            return Err("the record holds more than one line".to_string());
        }
        if d.is_empty() {
            return Err("the record is empty".to_string());
        }
        buf.extend_from_slice(d);
        buf.push(b'\n');
    }
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_format(
            CsvFormat::default()
                .with_header(false)
                .with_delimiter(delimiter),
        )
        .with_batch_size(n + 1)
        .build_decoder();
    let mut pos = 0;
    while pos < buf.len() {
        let consumed = decoder
            .decode(&buf[pos..])
            .map_err(|e| format!("invalid CSV: {e}"))?;
        if consumed == 0 {
            break;
        }
        pos += consumed;
    }
    decoder
        .decode(&[])
        .map_err(|e| format!("invalid CSV: {e}"))?;
    match decoder.flush() {
        Ok(Some(b)) if b.num_rows() == n => Ok(b),
        Ok(Some(b)) => Err(format!("{} rows for {n} records", b.num_rows())),
        Ok(None) => Err("no rows".to_string()),
        Err(e) => Err(format!(
            "cannot convert the CSV fields to the declared columns: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion_stream::errors::CollectingErrorSink;

    fn row(seq: &str, data: &str) -> UserRow {
        UserRow {
            shard_id: Arc::from("shardId-000000000000"),
            sequence_number: Arc::from(seq),
            sub_sequence_number: None,
            partition_key: "pk".into(),
            arrival: Some(1_000),
            data: data.as_bytes().to_vec(),
        }
    }

    fn declared() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("SHARD_ID", DataType::Utf8, true),
            Field::new("sequence_number", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn plain_json_isolates_bad_records() {
        let plan = Arc::new(DecodePlan::try_new("s", declared(), PayloadFormat::Json).unwrap());
        let mut d = plan.decoder().unwrap();
        d.push(row("1", r#"{"k":"a","n":1}"#));
        d.push(row("2", r#"{"k":"b","n":"#));
        d.push(row("3", r#"{"k":"c","n":"x"}"#));
        d.push(row("4", r#"{"k":"d","n":4}{"k":"e"}"#));
        d.push(row("5", r#"{"k":"f","n":6,"extra":true}"#));
        let errors = CollectingErrorSink::default();
        let b = d.finish(7, &errors).unwrap().unwrap();
        let text = pretty_format_batches(&[b]).unwrap().to_string();
        assert_eq!(
            text,
            "+---+---+----------------------+-----------------+\n\
             | k | n | SHARD_ID             | sequence_number |\n\
             +---+---+----------------------+-----------------+\n\
             | a | 1 | shardId-000000000000 | 1               |\n\
             | f | 6 | shardId-000000000000 | 5               |\n\
             +---+---+----------------------+-----------------+"
        );
        let errs = errors.take();
        let seqs: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| {
                (
                    e.message
                        .split("sequence number ")
                        .nth(1)
                        .unwrap_or("")
                        .split(':')
                        .next()
                        .unwrap_or(""),
                    std::str::from_utf8(&e.data_row).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seqs,
            vec![
                ("2", r#"{"k":"b","n":"#),
                ("3", r#"{"k":"c","n":"x"}"#),
                ("4", r#"{"k":"d","n":4}{"k":"e"}"#)
            ]
        );
        assert!(errs.iter().all(|e| e.name == PARSE_ERROR
            && e.message
                .starts_with("stream 's': shard shardId-000000000000 sequence number ")));
    }

    #[test]
    fn plain_csv_one_line_per_record() {
        let plan = Arc::new(
            DecodePlan::try_new("s", declared(), PayloadFormat::Csv { delimiter: b';' }).unwrap(),
        );
        let mut d = plan.decoder().unwrap();
        d.push(row("1", "a;1\n"));
        d.push(row("2", "b;two"));
        d.push(row("3", "c;3\nd;4"));
        d.push(row("4", "e;5"));
        let errors = CollectingErrorSink::default();
        let b = d.finish(7, &errors).unwrap().unwrap();
        assert_eq!(b.num_rows(), 2);
        let errs = errors.take();
        assert_eq!(errs.len(), 2);
        assert!(
            errs[1].message.contains("more than one line"),
            "{}",
            errs[1].message
        );
    }

    #[test]
    fn rejects_metadata_columns_of_the_wrong_type() {
        let s = Arc::new(Schema::new(vec![Field::new(
            "approximate_arrival_time",
            DataType::Boolean,
            true,
        )]));
        let e = DecodePlan::try_new("s", s, PayloadFormat::Json).unwrap_err();
        assert!(
            e.to_string()
                .contains("metadata column 'approximate_arrival_time'"),
            "{e}"
        );
    }
}
