//! A KDA input schema (`SourceSchema` / `InputSchema` / `ReferenceSchema` of the AWS API),
//! serialised in exactly the API's JSON shape, validated, and turned into an Arrow schema.
//!
//! ```json
//! {"RecordColumns": [{"Name": "TICKER_SYMBOL", "SqlType": "VARCHAR(4)", "Mapping": "$.TICKER_SYMBOL"}],
//!  "RecordFormat": {"RecordFormatType": "JSON",
//!                   "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
//!  "RecordEncoding": "UTF-8"}
//! ```
//!
//! ```text
//!  JSON text ──serde──► InputSchema ──resolve()──► ResolvedSchema { columns: [ColumnSpec
//!                        (as written)   validate     {name, SqlType, JsonPath?}],
//!                                                    layout: Json{row path} | Csv{delimiters} }
//!                                                          │
//!                                                          └──► arrow_schema(): one nullable
//!                                                               field per column, names as
//!                                                               given (KDA quotes them)
//! ```
//!
//! Validation (errors name the column, its position and the mapping): 1..=1000 columns; names
//! non-empty, unique, without whitespace or `-<>&` (the API's pattern), not `ROWTIME`; every
//! `SqlType` known ([`SqlType`]); JSON columns need a mapping in the JSONPath subset
//! ([`JsonPath`]) and at most one array may be flattened; CSV delimiters are non-empty and
//! differ; `RecordEncoding`, when given, is UTF-8. Unknown JSON fields are ignored. A JSON
//! format without `MappingParameters` reads rows at `$`; a CSV one defaults to `","` and `"\n"`.
//! CSV columns ignore any `Mapping` (CSV mapping is positional).

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::{plan_err, DataFusionError, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::jsonpath::JsonPath;
use super::sql_type::SqlType;

/// The most columns an input schema may have.
pub const MAX_COLUMNS: usize = 1000;

/// An input schema in the AWS API's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSchema {
    /// `RecordFormat`.
    #[serde(rename = "RecordFormat")]
    pub record_format: RecordFormat,
    /// `RecordEncoding` (`UTF-8`).
    #[serde(
        rename = "RecordEncoding",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_encoding: Option<String>,
    /// `RecordColumns`.
    #[serde(rename = "RecordColumns")]
    pub record_columns: Vec<RecordColumn>,
}

/// One column: `{Name, SqlType, Mapping}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordColumn {
    /// `Name`, used as is (a quoted identifier).
    #[serde(rename = "Name")]
    pub name: String,
    /// `SqlType`, e.g. `VARCHAR(16)`.
    #[serde(rename = "SqlType")]
    pub sql_type: String,
    /// `Mapping`: a JSONPath for JSON records; absent for CSV.
    #[serde(rename = "Mapping", default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
}

/// `RecordFormat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFormat {
    /// `RecordFormatType`.
    #[serde(rename = "RecordFormatType")]
    pub record_format_type: RecordFormatType,
    /// `MappingParameters`.
    #[serde(
        rename = "MappingParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mapping_parameters: Option<MappingParameters>,
}

/// `JSON` or `CSV` (read case-insensitively, written upper-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordFormatType {
    /// `JSON`.
    Json,
    /// `CSV`.
    Csv,
}

impl RecordFormatType {
    /// `JSON` / `CSV`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordFormatType::Json => "JSON",
            RecordFormatType::Csv => "CSV",
        }
    }
}

impl std::fmt::Display for RecordFormatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RecordFormatType {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordFormatType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim().to_ascii_uppercase().as_str() {
            "JSON" => Ok(RecordFormatType::Json),
            "CSV" => Ok(RecordFormatType::Csv),
            _ => Err(serde::de::Error::custom(format!(
                "RecordFormatType '{s}' is not JSON or CSV"
            ))),
        }
    }
}

/// `MappingParameters`: one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MappingParameters {
    /// `JSONMappingParameters`.
    #[serde(
        rename = "JSONMappingParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json: Option<JsonMappingParameters>,
    /// `CSVMappingParameters`.
    #[serde(
        rename = "CSVMappingParameters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub csv: Option<CsvMappingParameters>,
}

/// `JSONMappingParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonMappingParameters {
    /// `RecordRowPath`: where the rows are in a record (`$`: the record is the row).
    #[serde(rename = "RecordRowPath")]
    pub record_row_path: String,
}

/// `CSVMappingParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvMappingParameters {
    /// `RecordRowDelimiter` (any non-empty string).
    #[serde(rename = "RecordRowDelimiter")]
    pub record_row_delimiter: String,
    /// `RecordColumnDelimiter` (any non-empty string).
    #[serde(rename = "RecordColumnDelimiter")]
    pub record_column_delimiter: String,
}

/// A validated column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The name, as given.
    pub name: String,
    /// The parsed type.
    pub sql_type: SqlType,
    /// The parsed mapping (JSON records only).
    pub mapping: Option<JsonPath>,
}

/// How rows are laid out in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordLayout {
    /// JSON documents; rows found at `row_path` (an array there gives one row per element).
    Json {
        /// `RecordRowPath`.
        row_path: JsonPath,
    },
    /// Delimited text; the i-th field goes to the i-th column.
    Csv {
        /// Between rows.
        row_delimiter: String,
        /// Between fields.
        column_delimiter: String,
    },
}

/// A validated input schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSchema {
    /// The columns, in order.
    pub columns: Vec<ColumnSpec>,
    /// The record layout.
    pub layout: RecordLayout,
}

impl ResolvedSchema {
    /// One nullable Arrow field per column, named exactly as given.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.sql_type.arrow_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The array flattened by the JSON mappings, if any (its keys).
    pub fn flattened_array(&self) -> Option<&[String]> {
        self.columns
            .iter()
            .find_map(|c| c.mapping.as_ref().and_then(|m| m.flattened_array()))
    }
}

fn column_err(i: usize, name: &str, why: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!("input schema: column #{} '{name}': {why}", i + 1))
}

impl InputSchema {
    /// Parses the API JSON and validates it.
    pub fn from_json(text: &str) -> Result<Self> {
        let schema: InputSchema = serde_json::from_str(text).map_err(|e| {
            DataFusionError::Plan(format!("input schema: not a valid InputSchema JSON: {e}"))
        })?;
        schema.validate()?;
        Ok(schema)
    }

    /// The API JSON (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A JSON schema: `(name, SqlType, mapping)` per column, rows at `record_row_path`.
    pub fn json<'a>(
        record_row_path: &str,
        columns: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Self {
        InputSchema {
            record_format: RecordFormat {
                record_format_type: RecordFormatType::Json,
                mapping_parameters: Some(MappingParameters {
                    json: Some(JsonMappingParameters {
                        record_row_path: record_row_path.to_string(),
                    }),
                    csv: None,
                }),
            },
            record_encoding: Some("UTF-8".to_string()),
            record_columns: columns
                .into_iter()
                .map(|(name, ty, mapping)| RecordColumn {
                    name: name.to_string(),
                    sql_type: ty.to_string(),
                    mapping: Some(mapping.to_string()),
                })
                .collect(),
        }
    }

    /// A CSV schema: `(name, SqlType)` per column.
    pub fn csv<'a>(
        row_delimiter: &str,
        column_delimiter: &str,
        columns: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        InputSchema {
            record_format: RecordFormat {
                record_format_type: RecordFormatType::Csv,
                mapping_parameters: Some(MappingParameters {
                    json: None,
                    csv: Some(CsvMappingParameters {
                        record_row_delimiter: row_delimiter.to_string(),
                        record_column_delimiter: column_delimiter.to_string(),
                    }),
                }),
            },
            record_encoding: Some("UTF-8".to_string()),
            record_columns: columns
                .into_iter()
                .map(|(name, ty)| RecordColumn {
                    name: name.to_string(),
                    sql_type: ty.to_string(),
                    mapping: None,
                })
                .collect(),
        }
    }

    /// The record format type.
    pub fn format_type(&self) -> RecordFormatType {
        self.record_format.record_format_type
    }

    /// Checks the schema (see the module docs).
    pub fn validate(&self) -> Result<()> {
        self.resolve().map(|_| ())
    }

    /// The Arrow schema of the rows (validates first).
    pub fn arrow_schema(&self) -> Result<SchemaRef> {
        Ok(self.resolve()?.arrow_schema())
    }

    /// Validates and parses types, mappings and the layout.
    pub fn resolve(&self) -> Result<ResolvedSchema> {
        if let Some(enc) = &self.record_encoding {
            let e = enc.trim().to_ascii_uppercase();
            if e != "UTF-8" && e != "UTF8" {
                return plan_err!(
                    "input schema: RecordEncoding '{enc}' is not supported; records are UTF-8"
                );
            }
        }
        let n = self.record_columns.len();
        if n == 0 || n > MAX_COLUMNS {
            return plan_err!(
                "input schema: RecordColumns has {n} columns; it must have 1 to {MAX_COLUMNS}"
            );
        }
        let format = self.record_format.record_format_type;
        let params = self
            .record_format
            .mapping_parameters
            .clone()
            .unwrap_or_default();
        let layout = match format {
            RecordFormatType::Json => {
                if params.json.is_none() && params.csv.is_some() {
                    return plan_err!(
                        "input schema: RecordFormatType is JSON but MappingParameters has \
                         CSVMappingParameters; use JSONMappingParameters {{\"RecordRowPath\": \"$\"}}"
                    );
                }
                let text = params
                    .json
                    .map(|j| j.record_row_path)
                    .unwrap_or_else(|| "$".to_string());
                let row_path = JsonPath::parse(&text).map_err(|e| {
                    DataFusionError::Plan(format!("input schema: RecordRowPath: {e}"))
                })?;
                if row_path.flattened_array().is_some() {
                    return plan_err!(
                        "input schema: RecordRowPath '{text}' reads a field of array elements; \
                         it must name the rows ('$', '$.records' or '$.records[0:]')"
                    );
                }
                RecordLayout::Json { row_path }
            }
            RecordFormatType::Csv => {
                if params.csv.is_none() && params.json.is_some() {
                    return plan_err!(
                        "input schema: RecordFormatType is CSV but MappingParameters has \
                         JSONMappingParameters; use CSVMappingParameters"
                    );
                }
                let (row, col) = params
                    .csv
                    .map(|c| (c.record_row_delimiter, c.record_column_delimiter))
                    .unwrap_or_else(|| ("\n".to_string(), ",".to_string()));
                if row.is_empty() || col.is_empty() {
                    return plan_err!(
                        "input schema: CSVMappingParameters: RecordRowDelimiter ({row:?}) and \
                         RecordColumnDelimiter ({col:?}) must not be empty"
                    );
                }
                if row == col {
                    return plan_err!(
                        "input schema: CSVMappingParameters: RecordRowDelimiter and \
                         RecordColumnDelimiter are both {row:?}"
                    );
                }
                RecordLayout::Csv {
                    row_delimiter: row,
                    column_delimiter: col,
                }
            }
        };
        let mut columns: Vec<ColumnSpec> = Vec::with_capacity(n);
        // (array, column index) of the first flattening mapping.
        let mut flattened: Option<(Vec<String>, usize)> = None;
        for (i, c) in self.record_columns.iter().enumerate() {
            let name = c.name.as_str();
            if name.is_empty() {
                return Err(column_err(i, name, "the name is empty"));
            }
            if let Some(bad) = name
                .chars()
                .find(|ch| ch.is_whitespace() || ch.is_control() || "-<>&".contains(*ch))
            {
                return Err(column_err(
                    i,
                    name,
                    format!("the name contains {bad:?}; names may not contain whitespace or any of - < > &"),
                ));
            }
            if name.eq_ignore_ascii_case("ROWTIME") {
                return Err(column_err(
                    i,
                    name,
                    "ROWTIME is the system column of every stream; choose another name",
                ));
            }
            if let Some(j) = columns.iter().position(|o| o.name == name) {
                return Err(column_err(
                    i,
                    name,
                    format!("the name is also used by column #{}", j + 1),
                ));
            }
            let sql_type =
                SqlType::parse(&c.sql_type).map_err(|e| column_err(i, name, e.message()))?;
            let mapping = match format {
                RecordFormatType::Csv => None,
                RecordFormatType::Json => {
                    let Some(text) = c.mapping.as_deref().filter(|m| !m.trim().is_empty()) else {
                        return Err(column_err(
                            i,
                            name,
                            "a JSON column needs a Mapping (a JSONPath such as '$.field')",
                        ));
                    };
                    let path = JsonPath::parse(text).map_err(|e| column_err(i, name, e))?;
                    if let Some(array) = path.flattened_array() {
                        match &flattened {
                            None => flattened = Some((array.to_vec(), i)),
                            Some((first, j)) if first != array => {
                                return Err(column_err(
                                    i,
                                    name,
                                    format!(
                                        "mapping '{text}' flattens a second array ({}); column #{} '{}' \
                                         already flattens {} — only one array may be flattened per schema",
                                        JsonPath::WholeArray(array.to_vec()),
                                        j + 1,
                                        self.record_columns[*j].name,
                                        JsonPath::WholeArray(first.clone()),
                                    ),
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                    Some(path)
                }
            };
            columns.push(ColumnSpec {
                name: name.to_string(),
                sql_type,
                mapping,
            });
        }
        Ok(ResolvedSchema { columns, layout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    const SCH_MAPPING_EXAMPLE: &str = r#"{
      "RecordColumns": [
        {"SqlType": "VARCHAR(4)",   "Name": "TICKER_SYMBOL", "Mapping": "$.TICKER_SYMBOL"},
        {"SqlType": "VARCHAR(16)",  "Name": "SECTOR",        "Mapping": "$.SECTOR"},
        {"SqlType": "TINYINT",      "Name": "CHANGE",        "Mapping": "$.CHANGE"},
        {"SqlType": "DECIMAL(5,2)", "Name": "PRICE",         "Mapping": "$.PRICE"}],
      "RecordFormat": {"MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}, "RecordFormatType": "JSON"},
      "RecordEncoding": "UTF-8"}"#;

    #[test]
    fn reads_the_documented_json_schema_and_round_trips() {
        let s = InputSchema::from_json(SCH_MAPPING_EXAMPLE).unwrap();
        assert_eq!(s.record_columns.len(), 4);
        assert_eq!(s.record_columns[3].sql_type, "DECIMAL(5,2)");
        let arrow = s.arrow_schema().unwrap();
        let types: Vec<(String, DataType)> = arrow
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("TICKER_SYMBOL".to_string(), DataType::Utf8),
                ("SECTOR".to_string(), DataType::Utf8),
                ("CHANGE".to_string(), DataType::Int8),
                ("PRICE".to_string(), DataType::Decimal128(5, 2)),
            ]
        );
        assert!(arrow.fields().iter().all(|f| f.is_nullable()));
        let again = InputSchema::from_json(&s.to_json()).unwrap();
        assert_eq!(again, s);
        // The API's field names, exactly.
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(
            v["RecordFormat"]["MappingParameters"]["JSONMappingParameters"]["RecordRowPath"],
            "$"
        );
        assert_eq!(v["RecordColumns"][1]["Name"], "SECTOR");
        assert_eq!(v["RecordColumns"][1]["SqlType"], "VARCHAR(16)");
        assert_eq!(v["RecordColumns"][1]["Mapping"], "$.SECTOR");
        assert_eq!(v["RecordFormat"]["RecordFormatType"], "JSON");
        assert_eq!(v["RecordEncoding"], "UTF-8");
    }

    #[test]
    fn reads_the_documented_csv_schema() {
        let text = r#"{"RecordColumns": [
            {"Name": "LastName", "SqlType": "VARCHAR(16)"},
            {"Name": "FirstName", "SqlType": "VARCHAR(16)"},
            {"Name": "CustomerId", "SqlType": "INTEGER"}],
          "RecordFormat": {"RecordFormatType": "CSV", "MappingParameters":
            {"CSVMappingParameters": {"RecordColumnDelimiter": ",", "RecordRowDelimiter": "\n"}}},
          "RecordEncoding": "UTF-8", "SomethingNew": 1}"#;
        let s = InputSchema::from_json(text).unwrap();
        let r = s.resolve().unwrap();
        assert_eq!(
            r.layout,
            RecordLayout::Csv {
                row_delimiter: "\n".into(),
                column_delimiter: ",".into()
            }
        );
        assert_eq!(r.columns[2].sql_type, SqlType::Integer);
        assert_eq!(r.columns[2].mapping, None);
        let csv = InputSchema::csv("\n", ",", [("LastName", "VARCHAR(16)")]);
        assert_eq!(csv.record_columns[0].mapping, None);
        assert!(!csv.to_json().contains("Mapping\""));
    }

    fn err(s: &InputSchema) -> String {
        s.validate().unwrap_err().to_string()
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let e = err(&InputSchema::json("$", []));
        assert!(e.contains("has 0 columns"), "{e}");
        let many: Vec<(String, String)> = (0..1001)
            .map(|i| (format!("C{i}"), format!("$.c{i}")))
            .collect();
        let e = err(&InputSchema::json(
            "$",
            many.iter()
                .map(|(n, m)| (n.as_str(), "INTEGER", m.as_str())),
        ));
        assert!(e.contains("1001 columns"), "{e}");
        assert!(InputSchema::json(
            "$",
            many[..1000]
                .iter()
                .map(|(n, m)| (n.as_str(), "INTEGER", m.as_str())),
        )
        .validate()
        .is_ok());

        for (cols, want) in [
            (vec![("", "INTEGER", "$.a")], "column #1 '': the name is empty"),
            (vec![("a b", "INTEGER", "$.a")], "column #1 'a b': the name contains ' '"),
            (vec![("a-b", "INTEGER", "$.a")], "contains '-'"),
            (vec![("rowtime", "INTEGER", "$.a")], "ROWTIME is the system column"),
            (
                vec![("A", "INTEGER", "$.a"), ("A", "INTEGER", "$.b")],
                "column #2 'A': the name is also used by column #1",
            ),
            (vec![("A", "STRING", "$.a")], "column #1 'A': unknown SQL type 'STRING'"),
            (vec![("A", "INTEGER", "")], "column #1 'A': a JSON column needs a Mapping"),
            (vec![("A", "INTEGER", "a")], "column #1 'A': mapping 'a' must start with '$'"),
            (
                vec![("A", "INTEGER", "$.a[0:].b[0:].c")],
                "column #1 'A': mapping '$.a[0:].b[0:].c' dereferences two arrays",
            ),
            (
                vec![("A", "INTEGER", "$.a[0:].x"), ("B", "INTEGER", "$.b[0:].y")],
                "column #2 'B': mapping '$.b[0:].y' flattens a second array ($.b[0:]); column #1 'A' already flattens $.a[0:]",
            ),
        ] {
            let e = err(&InputSchema::json("$", cols));
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        // One array flattened by several columns, and another read whole, is fine.
        assert!(InputSchema::json(
            "$",
            [
                ("A", "INTEGER", "$.a[0:].x"),
                ("B", "INTEGER", "$.a[0:].y"),
                ("C", "VARCHAR(64)", "$.b[0:]"),
            ]
        )
        .validate()
        .is_ok());

        let e = err(&InputSchema::json("$.a[0:].b", [("A", "INTEGER", "$.a")]));
        assert!(e.contains("RecordRowPath '$.a[0:].b'"), "{e}");
        let e = err(&InputSchema::csv("", ",", [("A", "INTEGER")]));
        assert!(e.contains("must not be empty"), "{e}");
        let e = err(&InputSchema::csv(",", ",", [("A", "INTEGER")]));
        assert!(e.contains("are both \",\""), "{e}");
        let mut s = InputSchema::csv("\n", ",", [("A", "INTEGER")]);
        s.record_encoding = Some("UTF-16".into());
        assert!(err(&s).contains("RecordEncoding 'UTF-16'"));
        let e = InputSchema::from_json(
            r#"{"RecordColumns": [], "RecordFormat": {"RecordFormatType": "XML"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("RecordFormatType 'XML' is not JSON or CSV"),
            "{e}"
        );
    }

    #[test]
    fn defaults_when_mapping_parameters_are_absent() {
        let s = InputSchema::from_json(
            r#"{"RecordColumns": [{"Name": "a", "SqlType": "int", "Mapping": "$.a"}],
                "RecordFormat": {"RecordFormatType": "json"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.resolve().unwrap().layout,
            RecordLayout::Json {
                row_path: JsonPath::Value(vec![])
            }
        );
        let s = InputSchema::from_json(
            r#"{"RecordColumns": [{"Name": "a", "SqlType": "int"}],
                "RecordFormat": {"RecordFormatType": "CSV"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.resolve().unwrap().layout,
            RecordLayout::Csv {
                row_delimiter: "\n".into(),
                column_delimiter: ",".into()
            }
        );
    }
}
