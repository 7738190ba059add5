//! Schema discovery (`DiscoverInputSchema`, SPEC §1.8 and Example O): infers an input schema
//! from sample records.
//!
//! ```text
//!  samples ──every one JSON objects?──yes──► JSON: one column per leaf path, in first-seen
//!     │                                          order; nested objects → $.a.b (named by
//!     │                                          the last key); arrays → $.a[0:] VARCHAR
//!     no
//!     ▼
//!  CSV: row delimiter "\r\n" if the samples use it, else "\n"; column delimiter: the first of
//!       , TAB | ; that splits every row into the same number (> 1) of fields; the first row
//!       names the columns when it looks like a header, and stays a data row (KDA reads it as
//!       one: ParsedInputRecords)
//!     │
//!     ▼
//!  per column: the values decide the type ──► names sanitised (COL_ rules) ──► InputSchema
//!                                                                              + ParsedInputRecords
//! ```
//!
//! Types: integers → INTEGER (BIGINT if one does not fit 32 bits); other numbers → DOUBLE
//! (KDA's console picked REAL for the demo stream; DOUBLE keeps every digit); `true`/`false`
//! → BOOLEAN; datetime strings with a time → TIMESTAMP, dates → DATE; anything else, or a mix
//! of kinds → `VARCHAR(n)` with `n` the longest value rounded up to a power of two, at least 4
//! (Example O: `AK` → 4, `ShortTons` → 16, 35 characters → 64). Columns seen only as null are
//! `VARCHAR(4)`. JSON strings stay VARCHAR even when they hold digits (their JSON type says
//! string); CSV fields are typed by their text.
//!
//! Header rule (CSV): the first row is a header when there is another row, its fields are
//! non-empty, distinct and not numbers, and at least one column's other values are all
//! numbers, booleans or datetimes that the header field is not. Like KDA (Example O), the header
//! row does not count for types and widths but is parsed as data in `ParsedInputRecords`
//! (non-numeric values of numeric columns become null). Without a header, columns are named
//! `COL_0`, `COL_1`, ...
//!
//! Names ([`sanitize_column_name`]): characters other than ASCII letters, digits and `_` are
//! removed; a name that had such characters, is a reserved word ([`super::reserved`]), starts
//! with a digit or is longer than 100 characters gets the prefix `COL_` (keeping at most 100
//! characters); if nothing is left the name is `COL_<ordinal>` (0-based column position).
//! Duplicate names get `_2`, `_3`, ... JSON keys containing `.`, `[` or `]` cannot be written in
//! the JSONPath subset and are skipped.

use datafusion::common::{plan_err, Result};

use super::coerce::{coerce_json, coerce_str, parse_date, parse_timestamp, Cell};
use super::input_schema::{InputSchema, RecordColumn, RecordFormatType};
use super::json::{parse_documents, Json};
use super::jsonpath::resolve;
use super::reserved::is_reserved_word;
use super::sql_type::SqlType;

/// The result of discovery, as `DiscoverInputSchema` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// The inferred schema.
    pub input_schema: InputSchema,
    /// Each sample row as the schema reads it: one value per column (None = NULL).
    pub parsed_input_records: Vec<Vec<Option<String>>>,
    /// The samples as text.
    pub raw_input_records: Vec<String>,
}

/// Infers an input schema from sample records (see the module docs).
pub fn discover_input_schema(samples: &[Vec<u8>]) -> Result<InputSchema> {
    Ok(discover(samples)?.input_schema)
}

/// Infers an input schema and parses the samples with it.
pub fn discover(samples: &[Vec<u8>]) -> Result<Discovery> {
    let raw_input_records: Vec<String> = samples
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if raw_input_records.iter().all(|s| s.trim().is_empty()) {
        return plan_err!("schema discovery: no sample records (or only empty ones)");
    }
    let (input_schema, parsed_input_records) = match json_rows(samples) {
        Some(rows) => discover_json(&rows)?,
        None => discover_csv(&raw_input_records)?,
    };
    input_schema.validate()?;
    Ok(Discovery {
        input_schema,
        parsed_input_records,
        raw_input_records,
    })
}

/// Removes unsupported characters and applies the `COL_` rules (see the module docs).
pub fn sanitize_column_name(name: &str, ordinal: usize) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if kept.is_empty() {
        return format!("COL_{ordinal}");
    }
    let needs_prefix = kept.len() != name.len()
        || is_reserved_word(&kept)
        || kept.starts_with(|c: char| c.is_ascii_digit())
        || kept.len() > 100;
    if needs_prefix {
        let mut k = kept;
        k.truncate(96);
        format!("COL_{k}")
    } else {
        kept
    }
}

fn unique_name(name: String, used: &mut Vec<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while used.iter().any(|u| u == &candidate) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    used.push(candidate.clone());
    candidate
}

/// What the values of one column looked like.
#[derive(Debug, Default, Clone)]
struct Inferred {
    ints: usize,
    wide_ints: usize,
    floats: usize,
    bools: usize,
    timestamps: usize,
    dates: usize,
    others: usize,
    max_len: usize,
}

impl Inferred {
    fn note_len(&mut self, text: &str) {
        self.max_len = self.max_len.max(text.chars().count());
    }

    /// A CSV field.
    fn observe_text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.note_len(s);
        match classify_text(s) {
            Kind::Int(wide) => {
                self.ints += 1;
                self.wide_ints += usize::from(wide);
            }
            Kind::Float => self.floats += 1,
            Kind::Bool => self.bools += 1,
            Kind::Timestamp => self.timestamps += 1,
            Kind::Date => self.dates += 1,
            Kind::Other => self.others += 1,
        }
    }

    /// A JSON value.
    fn observe_json(&mut self, v: &Json) {
        match v {
            Json::Null => {}
            Json::Bool(b) => {
                self.note_len(if *b { "true" } else { "false" });
                self.bools += 1;
            }
            Json::Number(n) => {
                self.note_len(&n.to_string());
                match n.as_i64() {
                    Some(i) => {
                        self.ints += 1;
                        self.wide_ints += usize::from(i32::try_from(i).is_err());
                    }
                    None => self.floats += 1,
                }
            }
            Json::String(s) => {
                self.note_len(s);
                if s.contains(':') && parse_timestamp(s.trim()).is_some() {
                    self.timestamps += 1;
                } else if parse_date(s.trim()).is_some() {
                    self.dates += 1;
                } else {
                    self.others += 1;
                }
            }
            Json::Array(_) | Json::Object(_) => {
                self.note_len(&v.to_text());
                self.others += 1;
            }
        }
    }

    fn sql_type(&self) -> SqlType {
        let numeric = self.ints + self.floats;
        let datetime = self.timestamps + self.dates;
        let total = numeric + datetime + self.bools + self.others;
        if total == 0 {
            return SqlType::Varchar(Some(4));
        }
        if self.ints == total {
            return if self.wide_ints > 0 {
                SqlType::BigInt
            } else {
                SqlType::Integer
            };
        }
        if numeric == total {
            return SqlType::Double;
        }
        if self.bools == total {
            return SqlType::Boolean;
        }
        if self.dates == total {
            return SqlType::Date;
        }
        if datetime == total {
            return SqlType::Timestamp;
        }
        SqlType::Varchar(Some(varchar_width(self.max_len)))
    }
}

/// The longest value rounded up to a power of two, at least 4.
fn varchar_width(max_len: usize) -> u32 {
    let w = max_len.max(4).next_power_of_two();
    u32::try_from(w)
        .unwrap_or(u32::MAX)
        .min(super::sql_type::MAX_LENGTH)
}

enum Kind {
    /// An integer; `true` if it does not fit 32 bits.
    Int(bool),
    Float,
    Bool,
    Timestamp,
    Date,
    Other,
}

fn classify_text(s: &str) -> Kind {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i64>() {
            Ok(i) => Kind::Int(i32::try_from(i).is_err()),
            Err(_) => Kind::Float,
        };
    }
    if t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && t.parse::<f64>().is_ok()
    {
        return Kind::Float;
    }
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return Kind::Bool;
    }
    if t.contains(':') && parse_timestamp(t).is_some() {
        return Kind::Timestamp;
    }
    if parse_date(t).is_some() {
        return Kind::Date;
    }
    Kind::Other
}

/// The sample rows if every sample is JSON objects (or arrays of them); `None` otherwise.
fn json_rows(samples: &[Vec<u8>]) -> Option<Vec<Json>> {
    let mut rows = Vec::new();
    for s in samples {
        for (doc, _) in parse_documents(s).ok()? {
            match doc {
                Json::Object(_) => rows.push(doc),
                Json::Array(items) if items.iter().all(|i| matches!(i, Json::Object(_))) => {
                    rows.extend(items)
                }
                _ => return None,
            }
        }
    }
    (!rows.is_empty()).then_some(rows)
}

#[derive(Debug)]
struct JsonColumn {
    keys: Vec<String>,
    array: bool,
    inferred: Inferred,
}

fn walk(entries: &[(String, Json)], prefix: &mut Vec<String>, columns: &mut Vec<JsonColumn>) {
    for (k, v) in entries {
        if k.is_empty() || k.contains(['.', '[', ']']) {
            continue;
        }
        prefix.push(k.clone());
        match v {
            Json::Object(inner) if !inner.is_empty() => walk(inner, prefix, columns),
            _ => {
                let array = matches!(v, Json::Array(_));
                let i = match columns
                    .iter()
                    .position(|c| c.array == array && c.keys == *prefix)
                {
                    Some(i) => i,
                    None => {
                        columns.push(JsonColumn {
                            keys: prefix.clone(),
                            array,
                            inferred: Inferred::default(),
                        });
                        columns.len() - 1
                    }
                };
                columns[i].inferred.observe_json(v);
            }
        }
        prefix.pop();
    }
}

type Discovered = (InputSchema, Vec<Vec<Option<String>>>);

fn discover_json(rows: &[Json]) -> Result<Discovered> {
    let mut columns = Vec::new();
    for row in rows {
        if let Json::Object(entries) = row {
            walk(entries, &mut Vec::new(), &mut columns);
        }
    }
    if columns.is_empty() {
        return plan_err!("schema discovery: the JSON samples have no fields that can be mapped");
    }
    let mut used = Vec::new();
    let specs: Vec<(String, SqlType, String)> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let last = c.keys.last().map(String::as_str).unwrap_or_default();
            let name = unique_name(sanitize_column_name(last, i), &mut used);
            let ty = if c.array {
                SqlType::Varchar(Some(varchar_width(c.inferred.max_len)))
            } else {
                c.inferred.sql_type()
            };
            let mapping = format!(
                "$.{}{}",
                c.keys.join("."),
                if c.array { "[0:]" } else { "" }
            );
            (name, ty, mapping)
        })
        .collect();
    let mut schema = InputSchema::json("$", []);
    schema.record_columns = specs
        .iter()
        .map(|(name, ty, mapping)| RecordColumn {
            name: name.clone(),
            sql_type: ty.to_string(),
            mapping: Some(mapping.clone()),
        })
        .collect();
    let parsed = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .zip(&specs)
                .map(|(c, (_, ty, _))| {
                    let v = resolve(row, &c.keys)?;
                    if c.array && !matches!(v, Json::Array(_)) {
                        return None;
                    }
                    match coerce_json(v, ty) {
                        Ok(Cell::Null) | Err(_) => None,
                        Ok(_) => Some(match v {
                            Json::String(s) => s.clone(),
                            other => other.to_text(),
                        }),
                    }
                })
                .collect()
        })
        .collect();
    Ok((schema, parsed))
}

const COLUMN_DELIMITERS: [&str; 4] = [",", "\t", "|", ";"];

fn discover_csv(samples: &[String]) -> Result<Discovered> {
    let row_delimiter = if samples.iter().any(|s| s.contains("\r\n")) {
        "\r\n"
    } else {
        "\n"
    };
    let rows: Vec<&str> = samples
        .iter()
        .flat_map(|s| s.split(row_delimiter))
        .filter(|r| !r.trim().is_empty())
        .collect();
    let counts = |d: &str| -> Vec<usize> { rows.iter().map(|r| r.split(d).count()).collect() };
    let first_count = |d: &str| rows.first().map_or(0, |r| r.split(d).count());
    let column_delimiter = COLUMN_DELIMITERS
        .iter()
        .find(|d| {
            let n = first_count(d);
            n > 1 && counts(d).iter().all(|c| *c == n)
        })
        .or_else(|| {
            COLUMN_DELIMITERS
                .iter()
                .filter(|d| first_count(d) > 1)
                .max_by_key(|d| first_count(d))
        })
        .copied()
        .unwrap_or(",");
    let table: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.split(column_delimiter).collect())
        .collect();
    let width = table.iter().map(Vec::len).max().unwrap_or(0);

    let infer = |rows: &[Vec<&str>]| -> Vec<Inferred> {
        let mut inferred = vec![Inferred::default(); width];
        for row in rows {
            for (i, f) in row.iter().enumerate() {
                inferred[i].observe_text(f);
            }
        }
        inferred
    };
    let header = table.len() > 1 && {
        let first = &table[0];
        let data = infer(&table[1..]);
        let fields_ok = first.len() == width
            && first.iter().all(|f| !f.trim().is_empty())
            && first
                .iter()
                .enumerate()
                .all(|(i, f)| !first[..i].contains(f))
            && first
                .iter()
                .all(|f| !matches!(classify_text(f), Kind::Int(_) | Kind::Float));
        fields_ok
            && first.iter().zip(&data).any(|(f, inf)| {
                let ty = inf.sql_type();
                !ty.is_character() && coerce_str(f, &ty).is_err()
            })
    };
    let data_rows = if header { &table[1..] } else { &table[..] };
    let inferred = infer(data_rows);
    let mut used = Vec::new();
    let columns: Vec<RecordColumn> = inferred
        .iter()
        .enumerate()
        .map(|(i, inf)| {
            let raw = if header { table[0][i].trim() } else { "" };
            RecordColumn {
                name: unique_name(sanitize_column_name(raw, i), &mut used),
                sql_type: inf.sql_type().to_string(),
                mapping: None,
            }
        })
        .collect();
    let mut schema = InputSchema::csv(row_delimiter, column_delimiter, []);
    schema.record_columns = columns;
    debug_assert_eq!(schema.format_type(), RecordFormatType::Csv);
    let types: Vec<SqlType> = inferred.iter().map(Inferred::sql_type).collect();
    let parsed = table
        .iter()
        .map(|row| {
            types
                .iter()
                .enumerate()
                .map(|(i, ty)| {
                    let f = *row.get(i)?;
                    if f.is_empty() && !ty.is_character() {
                        return None;
                    }
                    coerce_str(f, ty).ok().map(|_| f.to_string())
                })
                .collect()
        })
        .collect();
    Ok((schema, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA_CSV: &str = "year,month,state,producer_type,energy_source,units,consumption\r\n\
        2001,1,AK,TotalElectricPowerIndustry,Coal,ShortTons,47615\r\n\
        2001,1,AK,ElectricGeneratorsElectricUtilities,Coal,ShortTons,16535\r\n\
        2001,1,AK,CombinedHeatandPowerElectricPower,Coal,ShortTons,22890\r\n\
        2001,1,AL,TotalElectricPowerIndustry,Coal,ShortTons,3020601\r\n\
        2001,1,AL,ElectricGeneratorsElectricUtilities,Coal,ShortTons,2987681\r\n";

    fn columns(s: &InputSchema) -> Vec<(String, String)> {
        s.record_columns
            .iter()
            .map(|c| (c.name.clone(), c.sql_type.clone()))
            .collect()
    }

    fn strs(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn example_o_static_csv() {
        let d = discover(&[DATA_CSV.as_bytes().to_vec()]).unwrap();
        assert_eq!(
            columns(&d.input_schema),
            [
                ("COL_year", "INTEGER"),
                ("COL_month", "INTEGER"),
                ("state", "VARCHAR(4)"),
                ("producer_type", "VARCHAR(64)"),
                ("energy_source", "VARCHAR(4)"),
                ("units", "VARCHAR(16)"),
                ("consumption", "INTEGER"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert!(d
            .input_schema
            .record_columns
            .iter()
            .all(|c| c.mapping.is_none()));
        let fmt = &d.input_schema.record_format;
        assert_eq!(fmt.record_format_type, RecordFormatType::Csv);
        let csv = fmt
            .mapping_parameters
            .as_ref()
            .unwrap()
            .csv
            .as_ref()
            .unwrap();
        assert_eq!(csv.record_row_delimiter, "\r\n");
        assert_eq!(csv.record_column_delimiter, ",");
        assert_eq!(d.input_schema.record_encoding.as_deref(), Some("UTF-8"));
        assert_eq!(d.parsed_input_records.len(), 6);
        assert_eq!(
            d.parsed_input_records[0],
            strs(&[
                None,
                None,
                Some("state"),
                Some("producer_type"),
                Some("energy_source"),
                Some("units"),
                None
            ])
        );
        assert_eq!(
            d.parsed_input_records[1],
            strs(&[
                Some("2001"),
                Some("1"),
                Some("AK"),
                Some("TotalElectricPowerIndustry"),
                Some("Coal"),
                Some("ShortTons"),
                Some("47615")
            ])
        );
        assert_eq!(d.parsed_input_records[5][6].as_deref(), Some("2987681"));
        assert_eq!(d.raw_input_records, vec![DATA_CSV.to_string()]);

        // The same rows as one sample per line (no delimiter inside a record): "\n".
        let lines: Vec<Vec<u8>> = DATA_CSV
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let s = discover_input_schema(&lines).unwrap();
        assert_eq!(columns(&s), columns(&d.input_schema));
        let csv = s.record_format.mapping_parameters.unwrap().csv.unwrap();
        assert_eq!(csv.record_row_delimiter, "\n");
    }

    #[test]
    fn renaming_rules() {
        assert_eq!(sanitize_column_name("USER", 0), "COL_USER");
        assert_eq!(sanitize_column_name("USER@DOMAIN", 1), "COL_USERDOMAIN");
        assert_eq!(sanitize_column_name("@@", 0), "COL_0");
        assert_eq!(sanitize_column_name("@@", 3), "COL_3");
        assert_eq!(sanitize_column_name("TIMESTAMP", 0), "COL_TIMESTAMP");
        assert_eq!(sanitize_column_name("values", 0), "COL_values");
        assert_eq!(sanitize_column_name("1st", 0), "COL_1st");
        assert_eq!(sanitize_column_name("heartRate", 0), "heartRate");
        assert_eq!(sanitize_column_name("ticker_symbol", 0), "ticker_symbol");
        let long = "a".repeat(120);
        assert_eq!(
            sanitize_column_name(&long, 0),
            format!("COL_{}", "a".repeat(96))
        );
    }

    #[test]
    fn csv_without_header_pipes_and_types() {
        let d = discover(&[
            b"AMZN|12.5|true|2018-06-13T14:11:05.766191\nTBV|7|false|2018-06-13 14:11:06\n"
                .to_vec(),
        ])
        .unwrap();
        assert_eq!(
            columns(&d.input_schema),
            [
                ("COL_0", "VARCHAR(4)"),
                ("COL_1", "DOUBLE"),
                ("COL_2", "BOOLEAN"),
                ("COL_3", "TIMESTAMP"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let csv = d
            .input_schema
            .record_format
            .mapping_parameters
            .unwrap()
            .csv
            .unwrap();
        assert_eq!(csv.record_column_delimiter, "|");
        assert_eq!(csv.record_row_delimiter, "\n");
        assert_eq!(d.parsed_input_records.len(), 2);
    }

    #[test]
    fn json_leaf_paths_nested_objects_and_arrays() {
        let samples = [
            br#"{"TICKER_SYMBOL":"AMZN","SECTOR":"TECHNOLOGY","CHANGE":-0.05,"PRICE":84.51,"heartRate":60}"#.to_vec(),
            br#"{"TICKER_SYMBOL":"TBV","SECTOR":"HEALTHCARE","CHANGE":1,"PRICE":43.65,"heartRate":180,
                 "address":{"city":"Anytown","streetAddress":{"street":"AnyStreet"}},
                 "orders":[{"orderId":"23284"}],"user":{"name":"x"},"EVENT_TIME":"2018-06-13T14:11:05.766191",
                 "big":5000000000,"ok":true,"a.b":1,"@@":null}"#.to_vec(),
        ];
        let d = discover(&samples).unwrap();
        let cols: Vec<(String, String, String)> = d
            .input_schema
            .record_columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.sql_type.clone(),
                    c.mapping.clone().unwrap(),
                )
            })
            .collect();
        let want = [
            ("TICKER_SYMBOL", "VARCHAR(4)", "$.TICKER_SYMBOL"),
            ("SECTOR", "VARCHAR(16)", "$.SECTOR"),
            ("CHANGE", "DOUBLE", "$.CHANGE"),
            ("PRICE", "DOUBLE", "$.PRICE"),
            ("heartRate", "INTEGER", "$.heartRate"),
            ("city", "VARCHAR(8)", "$.address.city"),
            ("street", "VARCHAR(16)", "$.address.streetAddress.street"),
            ("orders", "VARCHAR(32)", "$.orders[0:]"),
            ("name", "VARCHAR(4)", "$.user.name"),
            ("EVENT_TIME", "TIMESTAMP", "$.EVENT_TIME"),
            ("big", "BIGINT", "$.big"),
            ("ok", "BOOLEAN", "$.ok"),
            ("COL_12", "VARCHAR(4)", "$.@@"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(cols, want);
        assert_eq!(
            d.input_schema.record_format.record_format_type,
            RecordFormatType::Json
        );
        assert_eq!(d.parsed_input_records[0][0].as_deref(), Some("AMZN"));
        assert_eq!(d.parsed_input_records[0][5], None);
        assert_eq!(
            d.parsed_input_records[1][7].as_deref(),
            Some(r#"[{"orderId":"23284"}]"#)
        );
        assert_eq!(d.parsed_input_records[1][3].as_deref(), Some("43.65"));
    }

    #[test]
    fn no_samples_is_an_error() {
        let e = discover_input_schema(&[]).unwrap_err().to_string();
        assert!(e.contains("no sample records"), "{e}");
        assert!(discover_input_schema(&[b"  ".to_vec()]).is_err());
    }
}
