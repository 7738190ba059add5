//! Output encoding: one record per row, as KDA writes a destination whose
//! `DestinationSchema.RecordFormatType` is JSON or CSV.
//!
//! ```text
//!  RecordBatch ──per column: a formatter (arrow display, KDA datetime formats)──► per row:
//!     JSON  {"COL":value,...}  keys = column names, in order
//!     CSV   value<delim>value  (no header)
//! ```
//!
//! Values: numbers and booleans as JSON literals (DECIMAL with its scale, `33.99`); CHAR /
//! VARCHAR as strings; TIMESTAMP `yyyy-MM-dd HH:mm:ss.SSS` (UTC), DATE `yyyy-MM-dd`, TIME
//! `HH:mm:ss.SSS`; BINARY / VARBINARY base64 (KDA's JSON form); NULL → `null` in JSON and an
//! empty field in CSV. Non-finite floats are written as the strings `NaN`, `Infinity`,
//! `-Infinity` (Java's spellings; JSON has no literal for them). Other Arrow types use Arrow's
//! display form as a string. A record carries no delimiter after it: the sink frames records
//! (one Kinesis record each, or newline-separated in a Firehose file). A CSV field holding the
//! delimiter, a quote or a line break is quoted (RFC 4180) so it reads back; others are not.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;

use super::input_schema::RecordFormatType;
use super::json::write_json_string;

const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";
const DATE_FORMAT: &str = "%Y-%m-%d";
const TIME_FORMAT: &str = "%H:%M:%S%.3f";

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A JSON literal as displayed (integers, decimals, booleans).
    Literal,
    /// A float: a literal, or a string when not finite.
    Float,
    /// Base64 of the bytes.
    Binary,
    /// A string (text, datetimes, anything else).
    Text,
}

fn kind(dt: &DataType) -> Kind {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::Boolean => Kind::Literal,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => Kind::Binary,
        _ => Kind::Text,
    }
}

fn float_text(column: &dyn Array, row: usize) -> Option<&'static str> {
    let v = match column.data_type() {
        DataType::Float32 => f64::from(column.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row),
        _ => return None,
    };
    if v.is_nan() {
        Some("NaN")
    } else if v.is_infinite() {
        Some(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        None
    }
}

fn binary_value(column: &dyn Array, row: usize) -> &[u8] {
    match column.data_type() {
        DataType::Binary => column.as_binary::<i32>().value(row),
        DataType::LargeBinary => column.as_binary::<i64>().value(row),
        DataType::BinaryView => column.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => column.as_fixed_size_binary().value(row),
        _ => &[],
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// Writes one value (not null) of a column into `out`, as JSON (`json`) or as CSV text.
fn write_value(
    column: &dyn Array,
    kind: Kind,
    formatter: &ArrayFormatter,
    row: usize,
    json: bool,
    out: &mut String,
) -> Result<()> {
    let text = match kind {
        Kind::Binary => {
            let mut s = String::new();
            base64(binary_value(column, row), &mut s);
            if json {
                write_json_string(&s, out);
            } else {
                out.push_str(&s);
            }
            return Ok(());
        }
        Kind::Float => match float_text(column, row) {
            Some(special) => {
                if json {
                    write_json_string(special, out);
                } else {
                    out.push_str(special);
                }
                return Ok(());
            }
            None => formatter.value(row).try_to_string()?,
        },
        Kind::Literal | Kind::Text => formatter.value(row).try_to_string()?,
    };
    if json && kind == Kind::Text {
        write_json_string(&text, out);
    } else {
        out.push_str(&text);
    }
    Ok(())
}

fn formatters(batch: &RecordBatch) -> Result<Vec<(Kind, ArrayFormatter<'_>)>> {
    let options = FormatOptions::default()
        .with_timestamp_format(Some(TIMESTAMP_FORMAT))
        .with_timestamp_tz_format(Some(TIMESTAMP_FORMAT))
        .with_datetime_format(Some(TIMESTAMP_FORMAT))
        .with_date_format(Some(DATE_FORMAT))
        .with_time_format(Some(TIME_FORMAT));
    batch
        .columns()
        .iter()
        .map(|c| {
            Ok((
                kind(c.data_type()),
                ArrayFormatter::try_new(c.as_ref(), &options)?,
            ))
        })
        .collect()
}

/// One JSON object per row: `{"COLUMN":value,...}`.
pub fn encode_json_rows(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let schema = batch.schema();
    let formatters = formatters(batch)?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut out = String::from("{");
        for (i, ((kind, formatter), column)) in formatters.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_string(schema.field(i).name(), &mut out);
            out.push(':');
            if column.is_null(row) {
                out.push_str("null");
            } else {
                write_value(column.as_ref(), *kind, formatter, row, true, &mut out)?;
            }
        }
        out.push('}');
        rows.push(out.into_bytes());
    }
    Ok(rows)
}

/// One delimited line per row (no header, no line break).
pub fn encode_csv_rows(batch: &RecordBatch, column_delimiter: &str) -> Result<Vec<Vec<u8>>> {
    let formatters = formatters(batch)?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut field = String::new();
    for row in 0..batch.num_rows() {
        let mut out = String::new();
        for (i, ((kind, formatter), column)) in formatters.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                out.push_str(column_delimiter);
            }
            if column.is_null(row) {
                continue;
            }
            field.clear();
            write_value(column.as_ref(), *kind, formatter, row, false, &mut field)?;
            let needs_quotes = (!column_delimiter.is_empty() && field.contains(column_delimiter))
                || field.contains(['"', '\n', '\r']);
            if needs_quotes {
                out.push('"');
                out.push_str(&field.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&field);
            }
        }
        rows.push(out.into_bytes());
    }
    Ok(rows)
}

/// The rows in a destination's format (CSV with `,`).
pub fn encode_rows(batch: &RecordBatch, format: RecordFormatType) -> Result<Vec<Vec<u8>>> {
    match format {
        RecordFormatType::Json => encode_json_rows(batch),
        RecordFormatType::Csv => encode_csv_rows(batch, ","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int8Array, StringArray, Time32MillisecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    fn batch() -> RecordBatch {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("TICKER", DataType::Utf8, true),
            Field::new("CHANGE", DataType::Int8, true),
            Field::new("PRICE", DataType::Decimal128(5, 2), true),
            Field::new("R", DataType::Float32, true),
            Field::new("D", DataType::Float64, true),
            Field::new("OK", DataType::Boolean, true),
            Field::new("TS", ts, true),
            Field::new(
                "TS_NS",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("DAY", DataType::Date32, true),
            Field::new("T", DataType::Time32(TimeUnit::Millisecond), true),
            Field::new("B", DataType::Binary, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("AMZN"),
                Some("a,\"b\"\n"),
                None,
            ])),
            Arc::new(Int8Array::from(vec![Some(-3), Some(127), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(8451), Some(-50), None])
                    .with_precision_and_scale(5, 2)
                    .unwrap(),
            ),
            Arc::new(Float32Array::from(vec![Some(1.5), Some(f32::NAN), None])),
            Arc::new(Float64Array::from(vec![
                Some(190.0),
                Some(f64::NEG_INFINITY),
                None,
            ])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_528_899_065_766),
                Some(0),
                None,
            ])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1_528_899_065_766_191_000),
                Some(5),
                None,
            ])),
            Arc::new(Date32Array::from(vec![Some(8079), Some(0), None])),
            Arc::new(Time32MillisecondArray::from(vec![
                Some(66_944_500),
                Some(0),
                None,
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x3f\x67\xa2"[..]),
                Some(&b"ab"[..]),
                None,
            ])),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn text(rows: Vec<Vec<u8>>) -> Vec<String> {
        rows.into_iter()
            .map(|r| String::from_utf8(r).unwrap())
            .collect()
    }

    #[test]
    fn json_rows() {
        let rows = text(encode_json_rows(&batch()).unwrap());
        assert_eq!(
            rows,
            vec![
                r#"{"TICKER":"AMZN","CHANGE":-3,"PRICE":84.51,"R":1.5,"D":190.0,"OK":true,"TS":"2018-06-13 14:11:05.766","TS_NS":"2018-06-13 14:11:05.766","DAY":"1992-02-14","T":"18:35:44.500","B":"P2ei"}"#,
                r#"{"TICKER":"a,\"b\"\n","CHANGE":127,"PRICE":-0.50,"R":"NaN","D":"-Infinity","OK":false,"TS":"1970-01-01 00:00:00.000","TS_NS":"1970-01-01 00:00:00.000","DAY":"1970-01-01","T":"00:00:00.000","B":"YWI="}"#,
                r#"{"TICKER":null,"CHANGE":null,"PRICE":null,"R":null,"D":null,"OK":null,"TS":null,"TS_NS":null,"DAY":null,"T":null,"B":null}"#,
            ]
        );
        // Every row is valid JSON.
        for r in &rows {
            serde_json::from_str::<serde_json::Value>(r).unwrap();
        }
        assert_eq!(
            text(encode_rows(&batch(), RecordFormatType::Json).unwrap()),
            rows
        );
    }

    #[test]
    fn csv_rows() {
        let rows = text(encode_csv_rows(&batch(), ",").unwrap());
        assert_eq!(
            rows,
            vec![
                "AMZN,-3,84.51,1.5,190.0,true,2018-06-13 14:11:05.766,2018-06-13 14:11:05.766,1992-02-14,18:35:44.500,P2ei",
                "\"a,\"\"b\"\"\n\",127,-0.50,NaN,-Infinity,false,1970-01-01 00:00:00.000,1970-01-01 00:00:00.000,1970-01-01,00:00:00.000,YWI=",
                ",,,,,,,,,,",
            ]
        );
        let piped = text(encode_csv_rows(&batch().project(&[0, 1]).unwrap(), "||").unwrap());
        assert_eq!(piped, vec!["AMZN||-3", "\"a,\"\"b\"\"\n\"||127", "||"]);
        assert_eq!(
            text(encode_rows(&batch(), RecordFormatType::Csv).unwrap()),
            rows
        );
    }
}
