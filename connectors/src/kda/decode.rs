//! The record decoder: bytes of one record in, Arrow rows and rejected records out. Shared by
//! every source that reads KDA-style records (the file connector, Kinesis).
//!
//! ```text
//!            record bytes + RecordMeta { origin, error_time, rowtime }
//!                 │
//!     JSON ───────┼──────────────────────────────── CSV ───────────────────────────────
//!  documents (1..n, concatenated)             rows split on RecordRowDelimiter
//!  [rowtime field of the document]            fields split on RecordColumnDelimiter
//!  rows at RecordRowPath (array: 1 per item)  [leading rowtime field]
//!  flattened array: 1 row per element         i-th field → i-th column, missing → NULL
//!  column mappings (JSONPath) → values        values coerced as JSON strings
//!                 │                                        │
//!                 └──────── coerce.rs (SPEC §1.8) ─────────┘
//!                                 │
//!            every column ok? ── yes ──► column builders (+ ROWTIME per row) ──► finish()
//!                                 │                                              RecordBatch
//!                                 no ──► ErrorRecord (Parse_Error | Coercion_Error |
//!                                        Null_Value_Error | Rowtime_Order_Error),
//!                                        DATA_ROW = the raw bytes; the row is not added
//! ```
//!
//! State: the column builders of the rows decoded since the last `finish`, their ROWTIMEs,
//! and the last ROWTIME read from a rowtime field (to reject rows that go back in time).
//!
//! Flattening follows JSONPath matching: `$.arr[0:].f` gives one row per element of `arr` in
//! which one of the flattened paths matches (an element lacking some of the fields gets NULL
//! there); when nothing matches — no array, an empty one, or no element with the fields — the
//! record gives one row whose flattened columns are NULL (Example N: `$.orders[0:].itemId` →
//! one row of NULLs).
//!
//! Granularity: a row is added whole or not at all. A record that is not valid JSON (or not
//! UTF-8 CSV) is rejected whole; otherwise each row is judged alone, so one bad element of a
//! flattened array rejects only its row. `DATA_ROW` is the record's bytes, or, when a record
//! holds several JSON documents or CSV rows, the bytes of the document or row concerned.
//! A JSON row that is not an object, or a document without a value at `RecordRowPath`, is a
//! `Parse_Error`.
//!
//! CSV decisions: KDA's CSV mapping has no quote character, so fields are split literally.
//! Empty rows (e.g. after a trailing row delimiter) are skipped. Extra fields are ignored (a
//! schema may map a prefix of the fields); a row with fewer fields than columns gets NULL in
//! the missing columns — the same rule as a missing JSON path. An empty field is NULL, except in
//! CHAR/VARCHAR columns, where it is the empty string (blank-padded for CHAR).
//!
//! ROWTIME from the record ([`RowtimeField`]): a JSON document's top-level field, or the CSV
//! row's first field, read as a TIMESTAMP string (`yyyy-MM-dd HH:mm:ss.SSS`, ISO...) or an
//! integer of epoch milliseconds. A missing or unreadable value is a `Parse_Error`, a value
//! below the previous one a `Rowtime_Order_Error` (ROWTIME never decreases).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, Int8Builder, StringBuilder, Time32MillisecondBuilder, TimestampMillisecondArray,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{plan_err, DataFusionError, Result};
use datafusion_stream::errors::ErrorRecord;
use datafusion_stream::Millis;

use super::coerce::{coerce_json, coerce_str, parse_timestamp, show, Cell};
use super::input_schema::{ColumnSpec, InputSchema, RecordLayout, ResolvedSchema};
use super::json::{parse_documents, write_json_string, Json};
use super::jsonpath::{resolve, JsonPath};
use super::sql_type::SqlType;

/// `ERROR_NAME` of a record that cannot be read (bad JSON, bad UTF-8, no rows, bad ROWTIME).
pub const PARSE_ERROR: &str = "Parse_Error";
/// `ERROR_NAME` of a value that does not convert to its column's type.
pub const COERCION_ERROR: &str = "Coercion_Error";
/// `ERROR_NAME` of a NULL in a column declared NOT NULL.
pub const NULL_VALUE_ERROR: &str = "Null_Value_Error";
/// `ERROR_NAME` of a row whose ROWTIME is below the previous row's.
pub const ROWTIME_ORDER_ERROR: &str = "Rowtime_Order_Error";

/// What the caller knows about a record.
#[derive(Clone, Copy)]
pub struct RecordMeta<'a> {
    /// Where the record comes from (e.g. `stream 'S': file 'x' line 3`, or a shard and
    /// sequence number); prefixed to every message. Only formatted when a record is rejected.
    pub origin: &'a dyn fmt::Display,
    /// `ERROR_TIME` of rejected records (the context clock).
    pub error_time: Millis,
    /// The record's ROWTIME, when known: `DATA_ROWTIME` of rejected records, and the ROWTIME of
    /// its rows unless a [`RowtimeField`] supplies them.
    pub rowtime: Option<Millis>,
}

impl fmt::Debug for RecordMeta<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordMeta")
            .field("origin", &self.origin.to_string())
            .field("error_time", &self.error_time)
            .field("rowtime", &self.rowtime)
            .finish()
    }
}

/// Where each row's ROWTIME is read from, when the records carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowtimeField {
    /// A top-level field of each JSON document (not a column unless also mapped).
    JsonField(String),
    /// An extra first field of each CSV row, before the mapped fields.
    CsvLeadingField,
}

/// The outcome of decoding one record.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Rows added to the batch being built.
    pub rows: usize,
    /// Rejected rows / records (to report to the error sink).
    pub rejected: Vec<ErrorRecord>,
}

/// One column's Arrow builder.
#[derive(Debug)]
enum ColumnBuilder {
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Decimal(Decimal128Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Date32(Date32Builder),
    Time32(Time32MillisecondBuilder),
    Timestamp(TimestampMillisecondBuilder),
    FixedBinary(FixedSizeBinaryBuilder, usize),
    Binary(BinaryBuilder),
}

impl ColumnBuilder {
    fn new(ty: &SqlType) -> Result<Self> {
        Ok(match ty {
            SqlType::TinyInt => Self::Int8(Int8Builder::new()),
            SqlType::SmallInt => Self::Int16(Int16Builder::new()),
            SqlType::Integer => Self::Int32(Int32Builder::new()),
            SqlType::BigInt => Self::Int64(Int64Builder::new()),
            SqlType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::new().with_precision_and_scale(*precision, *scale as i8)?,
            ),
            SqlType::Real => Self::Float32(Float32Builder::new()),
            SqlType::Double => Self::Float64(Float64Builder::new()),
            SqlType::Boolean => Self::Boolean(BooleanBuilder::new()),
            SqlType::Char(_) | SqlType::Varchar(_) => Self::Utf8(StringBuilder::new()),
            SqlType::Date => Self::Date32(Date32Builder::new()),
            SqlType::Time => Self::Time32(Time32MillisecondBuilder::new()),
            SqlType::Timestamp => Self::Timestamp(TimestampMillisecondBuilder::new()),
            SqlType::Binary(n) => {
                Self::FixedBinary(FixedSizeBinaryBuilder::new(*n as i32), *n as usize)
            }
            SqlType::Varbinary(_) => Self::Binary(BinaryBuilder::new()),
        })
    }

    /// True if `append(cell)` succeeds: the cell has this column's type (or is NULL).
    fn accepts(&self, cell: &Cell) -> bool {
        matches!(
            (self, cell),
            (_, Cell::Null)
                | (
                    Self::Int8(_) | Self::Int16(_) | Self::Int32(_) | Self::Int64(_),
                    Cell::Int(_)
                )
                | (Self::Decimal(_), Cell::Decimal(_))
                | (Self::Float32(_), Cell::Real(_))
                | (Self::Float64(_), Cell::Double(_))
                | (Self::Boolean(_), Cell::Bool(_))
                | (Self::Utf8(_), Cell::Str(_))
                | (Self::Date32(_), Cell::Date(_))
                | (Self::Time32(_), Cell::Time(_))
                | (Self::Timestamp(_), Cell::Timestamp(_))
                | (Self::Binary(_), Cell::Bytes(_))
        ) || matches!((self, cell), (Self::FixedBinary(_, n), Cell::Bytes(v)) if v.len() == *n)
    }

    /// Appends a cell produced by `coerce` for this column's type.
    fn append(&mut self, cell: &Cell) -> Result<()> {
        let mismatch = |b: &ColumnBuilder| {
            DataFusionError::Internal(format!(
                "record decoder: value {cell:?} does not match builder {b:?}"
            ))
        };
        match (self, cell) {
            (Self::Int8(b), Cell::Null) => b.append_null(),
            (Self::Int16(b), Cell::Null) => b.append_null(),
            (Self::Int32(b), Cell::Null) => b.append_null(),
            (Self::Int64(b), Cell::Null) => b.append_null(),
            (Self::Decimal(b), Cell::Null) => b.append_null(),
            (Self::Float32(b), Cell::Null) => b.append_null(),
            (Self::Float64(b), Cell::Null) => b.append_null(),
            (Self::Boolean(b), Cell::Null) => b.append_null(),
            (Self::Utf8(b), Cell::Null) => b.append_null(),
            (Self::Date32(b), Cell::Null) => b.append_null(),
            (Self::Time32(b), Cell::Null) => b.append_null(),
            (Self::Timestamp(b), Cell::Null) => b.append_null(),
            (Self::FixedBinary(b, _), Cell::Null) => b.append_null(),
            (Self::Binary(b), Cell::Null) => b.append_null(),
            (Self::Int8(b), Cell::Int(v)) => b.append_value(*v as i8),
            (Self::Int16(b), Cell::Int(v)) => b.append_value(*v as i16),
            (Self::Int32(b), Cell::Int(v)) => b.append_value(*v as i32),
            (Self::Int64(b), Cell::Int(v)) => b.append_value(*v),
            (Self::Decimal(b), Cell::Decimal(v)) => b.append_value(*v),
            (Self::Float32(b), Cell::Real(v)) => b.append_value(*v),
            (Self::Float64(b), Cell::Double(v)) => b.append_value(*v),
            (Self::Boolean(b), Cell::Bool(v)) => b.append_value(*v),
            (Self::Utf8(b), Cell::Str(v)) => b.append_value(v),
            (Self::Date32(b), Cell::Date(v)) => b.append_value(*v),
            (Self::Time32(b), Cell::Time(v)) => b.append_value(*v),
            (Self::Timestamp(b), Cell::Timestamp(v)) => b.append_value(*v),
            (Self::FixedBinary(b, _), Cell::Bytes(v)) => b.append_value(v)?,
            (Self::Binary(b), Cell::Bytes(v)) => b.append_value(v),
            (b, _) => return Err(mismatch(b)),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::Time32(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::FixedBinary(b, _) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// What does not change while decoding.
#[derive(Debug)]
struct Spec {
    resolved: ResolvedSchema,
    schema: SchemaRef,
    /// The flattened array's keys, and the fields read from its elements.
    flatten: Option<(Vec<String>, Vec<Vec<String>>)>,
    not_null: Vec<bool>,
    rowtime_field: Option<RowtimeField>,
}

/// The rows being built.
#[derive(Debug)]
struct Output {
    builders: Vec<ColumnBuilder>,
    rowtimes: TimestampMillisecondBuilder,
    rows: usize,
    last_rowtime: Option<Millis>,
    cells: Vec<Cell>,
}

/// Decodes records of one input schema; see the module docs.
#[derive(Debug)]
pub struct RecordDecoder {
    spec: Spec,
    out: Output,
}

fn reject(
    meta: &RecordMeta,
    name: &str,
    message: impl fmt::Display,
    rowtime: Option<Millis>,
    data: &[u8],
) -> ErrorRecord {
    ErrorRecord::error(
        meta.error_time,
        name,
        format!("{}: {message}", meta.origin),
        rowtime,
        data.to_vec(),
    )
}

/// A JSON value or CSV field as shown in messages.
fn show_json(v: &Json) -> String {
    show(&v.to_text())
}

fn show_field(s: &str) -> String {
    let mut out = String::new();
    write_json_string(&show(s), &mut out);
    out
}

/// Reads a ROWTIME value: a timestamp string or epoch milliseconds.
fn rowtime_value(text: Option<&str>, number: Option<&serde_json::Number>) -> Option<Millis> {
    if let Some(n) = number {
        return n.as_i64();
    }
    let t = text?.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    parse_timestamp(t)
}

impl RecordDecoder {
    /// A decoder for records of `schema` (validated here).
    pub fn try_new(schema: &InputSchema) -> Result<Self> {
        let resolved = schema.resolve()?;
        let arrow = resolved.arrow_schema();
        let flatten = resolved.flattened_array().map(|a| {
            let fields = resolved
                .columns
                .iter()
                .filter_map(|c| match &c.mapping {
                    Some(JsonPath::Flatten { field, .. }) => Some(field.clone()),
                    _ => None,
                })
                .collect();
            (a.to_vec(), fields)
        });
        let builders = resolved
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(&c.sql_type))
            .collect::<Result<Vec<_>>>()?;
        let n = resolved.columns.len();
        Ok(Self {
            spec: Spec {
                resolved,
                schema: arrow,
                flatten,
                not_null: vec![false; n],
                rowtime_field: None,
            },
            out: Output {
                builders,
                rowtimes: TimestampMillisecondBuilder::new(),
                rows: 0,
                last_rowtime: None,
                cells: Vec::with_capacity(n),
            },
        })
    }

    /// Reads each row's ROWTIME from the records (see [`RowtimeField`]).
    pub fn with_rowtime_field(mut self, field: RowtimeField) -> Result<Self> {
        match (&self.spec.resolved.layout, &field) {
            (RecordLayout::Json { .. }, RowtimeField::JsonField(name)) if !name.is_empty() => {}
            (RecordLayout::Csv { .. }, RowtimeField::CsvLeadingField) => {}
            (layout, field) => {
                let kind = match layout {
                    RecordLayout::Json { .. } => {
                        "JSON records take a non-empty top-level field name"
                    }
                    RecordLayout::Csv { .. } => "CSV records take a leading field",
                };
                return plan_err!("record decoder: rowtime {field:?} does not fit: {kind}");
            }
        }
        self.spec.rowtime_field = Some(field);
        Ok(self)
    }

    /// Rejects rows with a NULL in the named column (`Null_Value_Error`).
    pub fn with_not_null(mut self, column: &str) -> Result<Self> {
        let Some(i) = self
            .spec
            .resolved
            .columns
            .iter()
            .position(|c| c.name == column)
        else {
            return plan_err!("record decoder: no column '{column}' in the input schema");
        };
        self.spec.not_null[i] = true;
        Ok(self)
    }

    /// The schema of the rows (the input schema's Arrow schema).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.spec.schema)
    }

    /// The validated input schema.
    pub fn resolved(&self) -> &ResolvedSchema {
        &self.spec.resolved
    }

    /// Rows decoded since the last `finish`.
    pub fn buffered_rows(&self) -> usize {
        self.out.rows
    }

    /// Decodes one record, appending its good rows; see the module docs.
    pub fn decode(&mut self, record: &[u8], meta: &RecordMeta) -> Decoded {
        let mut result = Decoded::default();
        match &self.spec.resolved.layout {
            RecordLayout::Json { row_path } => decode_json(
                &self.spec,
                row_path,
                &mut self.out,
                record,
                meta,
                &mut result,
            ),
            RecordLayout::Csv {
                row_delimiter,
                column_delimiter,
            } => decode_csv(
                &self.spec,
                row_delimiter,
                column_delimiter,
                &mut self.out,
                record,
                meta,
                &mut result,
            ),
        }
        result
    }

    /// The rows decoded since the last call, as a batch of [`Self::schema`].
    pub fn finish(&mut self) -> Result<RecordBatch> {
        Ok(self.finish_with_rowtime()?.0)
    }

    /// The rows decoded since the last call, and each row's ROWTIME (NULL where unknown).
    pub fn finish_with_rowtime(&mut self) -> Result<(RecordBatch, TimestampMillisecondArray)> {
        let columns: Vec<ArrayRef> = self.out.builders.iter_mut().map(|b| b.finish()).collect();
        let rowtimes = self.out.rowtimes.finish();
        let rows = self.out.rows;
        self.out.rows = 0;
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.spec.schema),
            columns,
            &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok((batch, rowtimes))
    }
}

/// Commits `out.cells` as one row (all columns converted).
fn commit_row(out: &mut Output, rowtime: Option<Millis>) -> Result<()> {
    // Checked first, so a row is never half appended.
    if let Some((b, cell)) = out
        .builders
        .iter()
        .zip(out.cells.iter())
        .find(|(b, c)| !b.accepts(c))
    {
        return Err(DataFusionError::Internal(format!(
            "record decoder: value {cell:?} does not match builder {b:?}"
        )));
    }
    if out.cells.len() != out.builders.len() {
        return Err(DataFusionError::Internal(format!(
            "record decoder: {} values for {} columns",
            out.cells.len(),
            out.builders.len()
        )));
    }
    for (b, cell) in out.builders.iter_mut().zip(out.cells.iter()) {
        b.append(cell)?;
    }
    out.rowtimes.append_option(rowtime);
    out.rows += 1;
    Ok(())
}

/// Checks the order of a ROWTIME read from a record; on success it becomes the last one.
fn check_order(out: &mut Output, t: Millis) -> std::result::Result<(), String> {
    if let Some(last) = out.last_rowtime {
        if t < last {
            return Err(format!(
                "ROWTIME {} is before the previous row's {}; ROWTIME must not decrease",
                datafusion_stream::time::format_millis(t),
                datafusion_stream::time::format_millis(last)
            ));
        }
    }
    out.last_rowtime = Some(t);
    Ok(())
}

/// The column's mapping, for messages.
fn describe_json_column(c: &ColumnSpec) -> String {
    match &c.mapping {
        Some(m) => format!("column '{}' (mapping '{m}', {})", c.name, c.sql_type),
        None => format!("column '{}' ({})", c.name, c.sql_type),
    }
}

/// The rows of a document at the row path.
fn rows_at<'a>(doc: &'a Json, row_path: &JsonPath) -> Option<Vec<&'a Json>> {
    match row_path {
        JsonPath::Value(keys) => match resolve(doc, keys)? {
            Json::Array(items) => Some(items.iter().collect()),
            v => Some(vec![v]),
        },
        JsonPath::WholeArray(keys) => match resolve(doc, keys)? {
            Json::Array(items) => Some(items.iter().collect()),
            _ => None,
        },
        JsonPath::Flatten { .. } => None,
    }
}

fn decode_json(
    spec: &Spec,
    row_path: &JsonPath,
    out: &mut Output,
    record: &[u8],
    meta: &RecordMeta,
    result: &mut Decoded,
) {
    let docs = match parse_documents(record) {
        Ok(d) => d,
        Err(e) => {
            result.rejected.push(reject(
                meta,
                PARSE_ERROR,
                format!("the record is not valid JSON: {e}"),
                meta.rowtime,
                record,
            ));
            return;
        }
    };
    if docs.is_empty() {
        result.rejected.push(reject(
            meta,
            PARSE_ERROR,
            "the record is empty",
            meta.rowtime,
            record,
        ));
        return;
    }
    let single = docs.len() == 1;
    for (doc, range) in &docs {
        let data = if single {
            record
        } else {
            &record[range.clone()]
        };
        let rowtime = match &spec.rowtime_field {
            Some(RowtimeField::JsonField(name)) => {
                let v = doc.get(name);
                let t = match v {
                    Some(Json::String(s)) => rowtime_value(Some(s), None),
                    Some(Json::Number(n)) => rowtime_value(None, Some(n)),
                    _ => None,
                };
                let Some(t) = t else {
                    let why = match v {
                        None | Some(Json::Null) => "is missing".to_string(),
                        Some(v) => format!(
                            "is {}, not a timestamp (yyyy-MM-dd HH:mm:ss.SSS) or epoch milliseconds",
                            show_json(v)
                        ),
                    };
                    result.rejected.push(reject(
                        meta,
                        PARSE_ERROR,
                        format!("the rowtime field '{name}' {why}"),
                        meta.rowtime,
                        data,
                    ));
                    continue;
                };
                if let Err(why) = check_order(out, t) {
                    result
                        .rejected
                        .push(reject(meta, ROWTIME_ORDER_ERROR, why, Some(t), data));
                    continue;
                }
                Some(t)
            }
            _ => meta.rowtime,
        };
        let Some(rows) = rows_at(doc, row_path) else {
            result.rejected.push(reject(
                meta,
                PARSE_ERROR,
                format!("the record has no rows at RecordRowPath '{row_path}'"),
                rowtime,
                data,
            ));
            continue;
        };
        for row in rows {
            if !matches!(row, Json::Object(_)) {
                result.rejected.push(reject(
                    meta,
                    PARSE_ERROR,
                    format!(
                        "a row must be a JSON object, but the record has a {} ({})",
                        row.kind(),
                        show_json(row)
                    ),
                    rowtime,
                    data,
                ));
                continue;
            }
            let mut elements: Vec<Option<&Json>> = match &spec.flatten {
                None => Vec::new(),
                // The elements where a flattened path matches (JSONPath semantics).
                Some((keys, fields)) => match resolve(row, keys) {
                    Some(Json::Array(items)) => items
                        .iter()
                        .filter(|e| fields.iter().any(|f| resolve(e, f).is_some()))
                        .map(Some)
                        .collect(),
                    _ => Vec::new(),
                },
            };
            if elements.is_empty() {
                // No array, an empty one, or no element with the fields: one row whose
                // flattened columns are NULL.
                elements.push(None);
            }
            for element in elements {
                out.cells.clear();
                let mut failed = None;
                for (i, col) in spec.resolved.columns.iter().enumerate() {
                    let value = match &col.mapping {
                        Some(JsonPath::Value(keys)) => resolve(row, keys),
                        Some(JsonPath::WholeArray(keys)) => {
                            resolve(row, keys).filter(|v| matches!(v, Json::Array(_)))
                        }
                        Some(JsonPath::Flatten { field, .. }) => {
                            element.and_then(|e| resolve(e, field))
                        }
                        None => None,
                    };
                    let cell = match value {
                        None => Cell::Null,
                        Some(v) => match coerce_json(v, &col.sql_type) {
                            Ok(c) => c,
                            Err(why) => {
                                failed = Some((
                                    COERCION_ERROR,
                                    format!(
                                        "{}, value {}: {why}",
                                        describe_json_column(col),
                                        show_json(v)
                                    ),
                                ));
                                break;
                            }
                        },
                    };
                    if matches!(cell, Cell::Null) && spec.not_null[i] {
                        failed = Some((
                            NULL_VALUE_ERROR,
                            format!(
                                "{} is NOT NULL but the value is null or missing",
                                describe_json_column(col)
                            ),
                        ));
                        break;
                    }
                    out.cells.push(cell);
                }
                match failed {
                    Some((name, msg)) => {
                        result.rejected.push(reject(meta, name, msg, rowtime, data));
                    }
                    None => match commit_row(out, rowtime) {
                        Ok(()) => result.rows += 1,
                        Err(e) => {
                            result
                                .rejected
                                .push(reject(meta, COERCION_ERROR, e, rowtime, data))
                        }
                    },
                }
            }
        }
    }
}

fn decode_csv(
    spec: &Spec,
    row_delimiter: &str,
    column_delimiter: &str,
    out: &mut Output,
    record: &[u8],
    meta: &RecordMeta,
    result: &mut Decoded,
) {
    let text = match std::str::from_utf8(record) {
        Ok(t) => t,
        Err(e) => {
            result.rejected.push(reject(
                meta,
                PARSE_ERROR,
                format!("the record is not valid UTF-8: {e}"),
                meta.rowtime,
                record,
            ));
            return;
        }
    };
    let rows: Vec<&str> = text
        .split(row_delimiter)
        .filter(|r| !r.is_empty())
        .collect();
    let single = rows.len() == 1;
    let leading = matches!(spec.rowtime_field, Some(RowtimeField::CsvLeadingField));
    for row in rows {
        let data = if single { record } else { row.as_bytes() };
        let mut fields = row.split(column_delimiter);
        let rowtime = if leading {
            let field = fields.next();
            let Some(t) = rowtime_value(field, None) else {
                let why = match field {
                    None | Some("") => "is missing".to_string(),
                    Some(f) => format!(
                        "is {}, not a timestamp (yyyy-MM-dd HH:mm:ss.SSS) or epoch milliseconds",
                        show_field(f)
                    ),
                };
                result.rejected.push(reject(
                    meta,
                    PARSE_ERROR,
                    format!("the rowtime (first field) {why}"),
                    meta.rowtime,
                    data,
                ));
                continue;
            };
            if let Err(why) = check_order(out, t) {
                result
                    .rejected
                    .push(reject(meta, ROWTIME_ORDER_ERROR, why, Some(t), data));
                continue;
            }
            Some(t)
        } else {
            meta.rowtime
        };
        out.cells.clear();
        let mut failed = None;
        let offset = usize::from(leading);
        for (i, col) in spec.resolved.columns.iter().enumerate() {
            let describe = || {
                format!(
                    "column '{}' (field {}, {})",
                    col.name,
                    i + 1 + offset,
                    col.sql_type
                )
            };
            let cell = match fields.next() {
                None => Cell::Null,
                Some("") if !col.sql_type.is_character() => Cell::Null,
                Some(f) => match coerce_str(f, &col.sql_type) {
                    Ok(c) => c,
                    Err(why) => {
                        failed = Some((
                            COERCION_ERROR,
                            format!("{}, value {}: {why}", describe(), show_field(f)),
                        ));
                        break;
                    }
                },
            };
            if matches!(cell, Cell::Null) && spec.not_null[i] {
                failed = Some((
                    NULL_VALUE_ERROR,
                    format!(
                        "{} is NOT NULL but the value is empty or missing",
                        describe()
                    ),
                ));
                break;
            }
            out.cells.push(cell);
        }
        match failed {
            Some((name, msg)) => result.rejected.push(reject(meta, name, msg, rowtime, data)),
            None => match commit_row(out, rowtime) {
                Ok(()) => result.rows += 1,
                Err(e) => result
                    .rejected
                    .push(reject(meta, COERCION_ERROR, e, rowtime, data)),
            },
        }
    }
}
