//! Kinesis Data Analytics (SQL) input and output formats: input schemas, record decoding with
//! KDA's coercion rules, schema discovery, the application description, and output encoding
//! (SPEC §1.2, §1.7, §1.8, §1.11, §2.7).
//!
//! ```text
//!  describe-application JSON ──description.rs──► ApplicationDetail: inputs (NamePrefix_001..n,
//!                                                 InputSchema), reference tables, outputs
//!                                                        │ InputSchema
//!  sample records ──discover.rs──► InputSchema ─────────►│
//!                                                        ▼
//!                  input_schema.rs: validate, SqlType per column (sql_type.rs),
//!                                   JSONPath per column (jsonpath.rs), Arrow schema
//!                                                        │
//!  record bytes ─────────────► decode.rs: RecordDecoder ─┼─► RecordBatch (+ ROWTIME per row)
//!  (file line, Kinesis record)   json.rs  (ordered JSON)  └─► ErrorRecord per rejected
//!                                coerce.rs (SPEC §1.8)        row/record → error sink
//!
//!  RecordBatch ──encode.rs──► one JSON / CSV record per row (DestinationSchema JSON | CSV)
//! ```
//!
//! Nothing here depends on where records come from: the decoder takes bytes and a
//! [`RecordMeta`] (origin for messages, clock time, ROWTIME if known), so the file connector
//! and the Kinesis source share it.

pub mod coerce;
pub mod decode;
pub mod description;
pub mod discover;
pub mod encode;
pub mod input_schema;
pub mod json;
pub mod jsonpath;
pub mod reserved;
pub mod sql_type;

#[cfg(test)]
mod decode_tests;

pub use decode::{Decoded, RecordDecoder, RecordMeta, RowtimeField};
pub use description::{
    ApplicationDetail, Arn, DestinationSchema, InputDescription, InputParallelism,
    InputStartingPositionConfiguration, OutputDescription, ReferenceDataSourceDescription,
    ResourceRef, S3ReferenceDataSource,
};
pub use discover::{discover, discover_input_schema, sanitize_column_name, Discovery};
pub use encode::{encode_csv_rows, encode_json_rows, encode_rows};
pub use input_schema::{
    ColumnSpec, CsvMappingParameters, InputSchema, JsonMappingParameters, MappingParameters,
    RecordColumn, RecordFormat, RecordFormatType, RecordLayout, ResolvedSchema,
};
pub use jsonpath::JsonPath;
pub use reserved::is_reserved_word;
pub use sql_type::SqlType;
