//! The application description: what `aws kinesisanalytics describe-application` prints
//! (`{"ApplicationDetail": {...}}`), the same object without the wrapper, or the input of
//! `create-application` (`Inputs`, `ReferenceDataSources`, `Outputs`). Unknown fields are
//! ignored, so newer or older CLI output still reads.
//!
//! ```text
//!  JSON ──unwrap "ApplicationDetail" if present──► ApplicationDetail
//!           ├─ application_code: the SQL
//!           ├─ inputs[]: NamePrefix, InputParallelism ──stream_names()──► PREFIX_001..PREFIX_00n
//!           │            InputSchema, Kinesis stream / Firehose, starting position
//!           ├─ reference_data_sources[]: TableName, S3 bucket + key, ReferenceSchema
//!           └─ outputs[]: in-app stream Name ──► Kinesis / Firehose / Lambda, JSON | CSV
//! ```
//!
//! Field names are those of the describe output (`InputDescriptions`,
//! `KinesisStreamsInputDescription`, ...); the create-application names (`Inputs`,
//! `KinesisStreamsInput`, ...) are accepted as aliases. [`ApplicationDetail::validate`] checks
//! KDA's limits: one streaming input, at most one reference source, at most 3 outputs,
//! `NamePrefix` 1..=32 characters, `InputParallelism.Count` 1..=64, valid schemas.

use datafusion::common::{plan_err, DataFusionError, Result};
use serde::{Deserialize, Serialize};

use super::input_schema::{InputSchema, RecordFormatType};

/// The most in-application input streams per input (`InputParallelism.Count`).
pub const MAX_INPUT_PARALLELISM: u32 = 64;
/// The most output destinations.
pub const MAX_OUTPUTS: usize = 3;

/// A KDA (SQL) application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplicationDetail {
    /// `ApplicationName`.
    #[serde(rename = "ApplicationName", default)]
    pub application_name: String,
    /// `ApplicationDescription`.
    #[serde(
        rename = "ApplicationDescription",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_description: Option<String>,
    /// `ApplicationARN`.
    #[serde(
        rename = "ApplicationARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_arn: Option<String>,
    /// `ApplicationStatus` (`READY`, `RUNNING`, ...).
    #[serde(
        rename = "ApplicationStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_status: Option<String>,
    /// `ApplicationCode`: the SQL program.
    #[serde(
        rename = "ApplicationCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub application_code: Option<String>,
    /// `InputDescriptions` (create-application: `Inputs`).
    #[serde(rename = "InputDescriptions", alias = "Inputs", default)]
    pub inputs: Vec<InputDescription>,
    /// `ReferenceDataSourceDescriptions` (create-application: `ReferenceDataSources`).
    #[serde(
        rename = "ReferenceDataSourceDescriptions",
        alias = "ReferenceDataSources",
        default
    )]
    pub reference_data_sources: Vec<ReferenceDataSourceDescription>,
    /// `OutputDescriptions` (create-application: `Outputs`).
    #[serde(rename = "OutputDescriptions", alias = "Outputs", default)]
    pub outputs: Vec<OutputDescription>,
}

/// A streaming input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDescription {
    /// `InputId` (e.g. `1.1`).
    #[serde(rename = "InputId", default, skip_serializing_if = "Option::is_none")]
    pub input_id: Option<String>,
    /// `NamePrefix`: the in-application streams are `<NamePrefix>_001` ...
    #[serde(rename = "NamePrefix")]
    pub name_prefix: String,
    /// `InAppStreamNames` as the service reported them.
    #[serde(
        rename = "InAppStreamNames",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub in_app_stream_names: Vec<String>,
    /// `InputSchema`.
    #[serde(rename = "InputSchema")]
    pub input_schema: InputSchema,
    /// `InputParallelism`.
    #[serde(
        rename = "InputParallelism",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_parallelism: Option<InputParallelism>,
    /// `KinesisStreamsInputDescription` (create-application: `KinesisStreamsInput`).
    #[serde(
        rename = "KinesisStreamsInputDescription",
        alias = "KinesisStreamsInput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_streams_input: Option<ResourceRef>,
    /// `KinesisFirehoseInputDescription` (create-application: `KinesisFirehoseInput`).
    #[serde(
        rename = "KinesisFirehoseInputDescription",
        alias = "KinesisFirehoseInput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_firehose_input: Option<ResourceRef>,
    /// `InputProcessingConfigurationDescription` (create-application:
    /// `InputProcessingConfiguration`): the preprocessing Lambda.
    #[serde(
        rename = "InputProcessingConfigurationDescription",
        alias = "InputProcessingConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_processing_configuration: Option<InputProcessingConfiguration>,
    /// `InputStartingPositionConfiguration`.
    #[serde(
        rename = "InputStartingPositionConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_starting_position_configuration: Option<InputStartingPositionConfiguration>,
}

/// `InputParallelism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputParallelism {
    /// `Count` (1..=64; default 1).
    #[serde(rename = "Count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// A resource and the role used to reach it (`{ResourceARN, RoleARN}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `ResourceARN`.
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    /// `RoleARN`.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// `InputProcessingConfiguration[Description]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputProcessingConfiguration {
    /// `InputLambdaProcessorDescription` (create-application: `InputLambdaProcessor`).
    #[serde(
        rename = "InputLambdaProcessorDescription",
        alias = "InputLambdaProcessor",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_lambda_processor: Option<ResourceRef>,
}

/// `InputStartingPositionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputStartingPositionConfiguration {
    /// `InputStartingPosition`: `NOW`, `TRIM_HORIZON` or `LAST_STOPPED_POINT`.
    #[serde(
        rename = "InputStartingPosition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_starting_position: Option<String>,
}

/// A reference table loaded from S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceDataSourceDescription {
    /// `ReferenceId`.
    #[serde(
        rename = "ReferenceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reference_id: Option<String>,
    /// `TableName`: the in-application table.
    #[serde(rename = "TableName")]
    pub table_name: String,
    /// `S3ReferenceDataSourceDescription` (create-application: `S3ReferenceDataSource`).
    #[serde(
        rename = "S3ReferenceDataSourceDescription",
        alias = "S3ReferenceDataSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_reference_data_source: Option<S3ReferenceDataSource>,
    /// `ReferenceSchema`.
    #[serde(rename = "ReferenceSchema")]
    pub reference_schema: InputSchema,
}

/// `S3ReferenceDataSource[Description]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3ReferenceDataSource {
    /// `BucketARN`.
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,
    /// `FileKey`.
    #[serde(rename = "FileKey")]
    pub file_key: String,
    /// `ReferenceRoleARN`.
    #[serde(
        rename = "ReferenceRoleARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reference_role_arn: Option<String>,
}

/// An output: an in-application stream written to a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDescription {
    /// `OutputId`.
    #[serde(rename = "OutputId", default, skip_serializing_if = "Option::is_none")]
    pub output_id: Option<String>,
    /// `Name`: the in-application stream (matched case-sensitively).
    #[serde(rename = "Name")]
    pub name: String,
    /// `KinesisStreamsOutputDescription` (create-application: `KinesisStreamsOutput`).
    #[serde(
        rename = "KinesisStreamsOutputDescription",
        alias = "KinesisStreamsOutput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_streams_output: Option<ResourceRef>,
    /// `KinesisFirehoseOutputDescription` (create-application: `KinesisFirehoseOutput`).
    #[serde(
        rename = "KinesisFirehoseOutputDescription",
        alias = "KinesisFirehoseOutput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_firehose_output: Option<ResourceRef>,
    /// `LambdaOutputDescription` (create-application: `LambdaOutput`).
    #[serde(
        rename = "LambdaOutputDescription",
        alias = "LambdaOutput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lambda_output: Option<ResourceRef>,
    /// `DestinationSchema`.
    #[serde(
        rename = "DestinationSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_schema: Option<DestinationSchema>,
}

/// `DestinationSchema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSchema {
    /// `RecordFormatType`: how rows are written (JSON or CSV).
    #[serde(rename = "RecordFormatType")]
    pub record_format_type: RecordFormatType,
}

/// An Amazon Resource Name, split: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// `aws`, `aws-cn`, ...
    pub partition: String,
    /// `kinesis`, `firehose`, `lambda`, `s3`, ...
    pub service: String,
    /// The region (empty for S3 buckets).
    pub region: String,
    /// The account id (empty for S3 buckets).
    pub account: String,
    /// What follows the account: `stream/NAME`, `deliverystream/NAME`, `function:NAME`, a
    /// bucket name.
    pub resource: String,
}

impl Arn {
    /// Splits `arn`; an error names it when it is not an ARN.
    pub fn parse(arn: &str) -> Result<Self> {
        let parts: Vec<&str> = arn.trim().splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, service, region, account, resource]
                if !partition.is_empty() && !service.is_empty() && !resource.is_empty() =>
            {
                Ok(Self {
                    partition: partition.to_string(),
                    service: service.to_string(),
                    region: region.to_string(),
                    account: account.to_string(),
                    resource: resource.to_string(),
                })
            }
            _ => plan_err!(
                "'{arn}' is not an ARN (expected arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)"
            ),
        }
    }

    /// The stream name and region of a Kinesis data stream ARN
    /// (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
    pub fn kinesis_stream(arn: &str) -> Result<(String, String)> {
        let a = Self::parse(arn)?;
        match (a.service.as_str(), a.resource.strip_prefix("stream/")) {
            ("kinesis", Some(name)) if !name.is_empty() && !a.region.is_empty() => {
                Ok((name.to_string(), a.region))
            }
            _ => plan_err!(
                "'{arn}' is not a Kinesis data stream ARN (expected arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"
            ),
        }
    }

    /// The bucket of an S3 bucket ARN (`arn:aws:s3:::BUCKET`).
    pub fn s3_bucket(arn: &str) -> Result<String> {
        let a = Self::parse(arn)?;
        if a.service != "s3" || a.resource.contains('/') {
            return plan_err!("'{arn}' is not an S3 bucket ARN (expected arn:aws:s3:::BUCKET)");
        }
        Ok(a.resource)
    }
}

impl InputDescription {
    /// `InputParallelism.Count`, 1 when absent.
    pub fn parallelism(&self) -> u32 {
        self.input_parallelism.and_then(|p| p.count).unwrap_or(1)
    }

    /// The in-application input streams: `<NamePrefix>_001` ... `<NamePrefix>_00n` for
    /// `n = InputParallelism.Count`.
    pub fn stream_names(&self) -> Vec<String> {
        (1..=self.parallelism())
            .map(|i| format!("{}_{i:03}", self.name_prefix))
            .collect()
    }
}

impl OutputDescription {
    /// The destination ARN, whichever kind it is.
    pub fn destination_arn(&self) -> Option<&str> {
        self.kinesis_streams_output
            .as_ref()
            .or(self.kinesis_firehose_output.as_ref())
            .or(self.lambda_output.as_ref())
            .map(|r| r.resource_arn.as_str())
    }

    /// The record format written (JSON when not given).
    pub fn record_format(&self) -> RecordFormatType {
        self.destination_schema
            .map(|d| d.record_format_type)
            .unwrap_or(RecordFormatType::Json)
    }
}

impl ApplicationDetail {
    /// Reads describe-application output, the bare detail object, or create-application input.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            DataFusionError::Plan(format!("application description: not valid JSON: {e}"))
        })?;
        let value = match value {
            serde_json::Value::Object(mut m) => match m.remove("ApplicationDetail") {
                Some(inner) => inner,
                None => serde_json::Value::Object(m),
            },
            other => {
                return plan_err!(
                    "application description: expected a JSON object, found {}",
                    match other {
                        serde_json::Value::Array(_) => "an array",
                        _ => "a scalar",
                    }
                )
            }
        };
        serde_json::from_value(value)
            .map_err(|e| DataFusionError::Plan(format!("application description: {e}")))
    }

    /// Every in-application input stream name, in order.
    pub fn input_stream_names(&self) -> Vec<String> {
        self.inputs.iter().flat_map(|i| i.stream_names()).collect()
    }

    /// Checks KDA's limits and every schema (see the module docs).
    pub fn validate(&self) -> Result<()> {
        let app = &self.application_name;
        if self.inputs.len() > 1 {
            return plan_err!(
                "application '{app}': {} inputs; a KDA application has one streaming source",
                self.inputs.len()
            );
        }
        for input in &self.inputs {
            let prefix = &input.name_prefix;
            let n = prefix.chars().count();
            if n == 0 || n > 32 {
                return plan_err!(
                    "application '{app}': input NamePrefix '{prefix}' has {n} characters; it must have 1 to 32"
                );
            }
            let p = input.parallelism();
            if p == 0 || p > MAX_INPUT_PARALLELISM {
                return plan_err!(
                    "application '{app}': input '{prefix}': InputParallelism.Count is {p}; it must be 1 to {MAX_INPUT_PARALLELISM}"
                );
            }
            input.input_schema.validate().map_err(|e| {
                DataFusionError::Plan(format!(
                    "application '{app}': input '{prefix}': {}",
                    e.message()
                ))
            })?;
        }
        if self.reference_data_sources.len() > 1 {
            return plan_err!(
                "application '{app}': {} reference data sources; KDA allows at most one",
                self.reference_data_sources.len()
            );
        }
        for r in &self.reference_data_sources {
            if r.table_name.is_empty() {
                return plan_err!("application '{app}': a reference data source has no TableName");
            }
            r.reference_schema.validate().map_err(|e| {
                DataFusionError::Plan(format!(
                    "application '{app}': reference table '{}': {}",
                    r.table_name,
                    e.message()
                ))
            })?;
        }
        if self.outputs.len() > MAX_OUTPUTS {
            return plan_err!(
                "application '{app}': {} outputs; KDA allows at most {MAX_OUTPUTS}",
                self.outputs.len()
            );
        }
        if let Some(o) = self.outputs.iter().find(|o| o.name.is_empty()) {
            return plan_err!(
                "application '{app}': output {} names no in-application stream",
                o.output_id.as_deref().unwrap_or("?")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kda::SqlType;

    const FIXTURE: &str = include_str!("../../tests/fixtures/describe-application.json");

    #[test]
    fn reads_describe_application_output() {
        let app = ApplicationDetail::from_json(FIXTURE).unwrap();
        app.validate().unwrap();
        assert_eq!(app.application_name, "ticker-analytics");
        assert_eq!(
            app.application_description.as_deref(),
            Some("Price alerts and per-minute counts over the demo ticker stream")
        );
        assert_eq!(app.application_status.as_deref(), Some("READY"));
        let code = app.application_code.as_deref().unwrap();
        assert!(code.starts_with("CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\""));
        assert!(code.contains("CREATE OR REPLACE PUMP \"STREAM_PUMP\""));

        assert_eq!(app.inputs.len(), 1);
        let input = &app.inputs[0];
        assert_eq!(input.input_id.as_deref(), Some("1.1"));
        assert_eq!(input.name_prefix, "SOURCE_SQL_STREAM");
        assert_eq!(input.parallelism(), 2);
        assert_eq!(
            input.stream_names(),
            vec!["SOURCE_SQL_STREAM_001", "SOURCE_SQL_STREAM_002"]
        );
        assert_eq!(input.stream_names(), input.in_app_stream_names);
        assert_eq!(app.input_stream_names(), input.in_app_stream_names);
        let ks = input.kinesis_streams_input.as_ref().unwrap();
        assert_eq!(
            ks.resource_arn,
            "arn:aws:kinesis:us-east-1:123456789012:stream/ExampleInputStream"
        );
        assert_eq!(
            ks.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/service-role/kinesis-analytics-ticker-analytics-us-east-1")
        );
        assert!(input.kinesis_firehose_input.is_none());
        assert_eq!(
            input
                .input_starting_position_configuration
                .as_ref()
                .unwrap()
                .input_starting_position
                .as_deref(),
            Some("NOW")
        );
        let cols = input.input_schema.resolve().unwrap().columns;
        assert_eq!(cols.len(), 4);
        assert_eq!(cols[0].name, "TICKER_SYMBOL");
        assert_eq!(cols[0].sql_type, SqlType::Varchar(Some(4)));
        assert_eq!(cols[2].sql_type, SqlType::Real);
        assert_eq!(cols[3].mapping.as_ref().unwrap().to_string(), "$.PRICE");

        assert_eq!(app.reference_data_sources.len(), 1);
        let r = &app.reference_data_sources[0];
        assert_eq!(r.reference_id.as_deref(), Some("2.1"));
        assert_eq!(r.table_name, "CompanyName");
        let s3 = r.s3_reference_data_source.as_ref().unwrap();
        assert_eq!(s3.bucket_arn, "arn:aws:s3:::example-reference-data");
        assert_eq!(s3.file_key, "TickerReference.csv");
        assert_eq!(r.reference_schema.format_type(), RecordFormatType::Csv);
        assert_eq!(r.reference_schema.record_columns[1].name, "Company");

        assert_eq!(app.outputs.len(), 2);
        assert_eq!(app.outputs[0].name, "DESTINATION_SQL_STREAM");
        assert_eq!(
            app.outputs[0].destination_arn(),
            Some("arn:aws:firehose:us-east-1:123456789012:deliverystream/ExampleDeliveryStream")
        );
        assert_eq!(app.outputs[0].record_format(), RecordFormatType::Json);
        assert_eq!(app.outputs[1].name, "error_stream");
        assert_eq!(
            app.outputs[1].destination_arn(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:ErrorSink")
        );
        assert_eq!(app.outputs[1].record_format(), RecordFormatType::Csv);
    }

    #[test]
    fn accepts_the_bare_detail_and_create_application_input() {
        let wrapped: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let bare = wrapped["ApplicationDetail"].to_string();
        assert_eq!(
            ApplicationDetail::from_json(&bare).unwrap(),
            ApplicationDetail::from_json(FIXTURE).unwrap()
        );

        let create = r#"{
          "ApplicationName": "app", "ApplicationCode": "SELECT 1;",
          "Inputs": [{"NamePrefix": "IN", "KinesisStreamsInput": {"ResourceARN": "arn:s", "RoleARN": "arn:r"},
                      "InputSchema": {"RecordColumns": [{"Name": "a", "SqlType": "INTEGER", "Mapping": "$.a"}],
                                      "RecordFormat": {"RecordFormatType": "JSON",
                                        "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}}}}],
          "ReferenceDataSources": [{"TableName": "T",
              "S3ReferenceDataSource": {"BucketARN": "arn:b", "FileKey": "k.json", "ReferenceRoleARN": "arn:r"},
              "ReferenceSchema": {"RecordColumns": [{"Name": "k", "SqlType": "VARCHAR(8)", "Mapping": "$.k"}],
                                  "RecordFormat": {"RecordFormatType": "JSON"}}}],
          "Outputs": [{"Name": "OUT", "LambdaOutput": {"ResourceARN": "arn:l"},
                       "DestinationSchema": {"RecordFormatType": "CSV"}}],
          "Tags": [{"Key": "team", "Value": "x"}]
        }"#;
        let app = ApplicationDetail::from_json(create).unwrap();
        app.validate().unwrap();
        assert_eq!(app.inputs[0].stream_names(), vec!["IN_001"]);
        assert_eq!(
            app.inputs[0]
                .kinesis_streams_input
                .as_ref()
                .unwrap()
                .resource_arn,
            "arn:s"
        );
        assert_eq!(
            app.reference_data_sources[0]
                .s3_reference_data_source
                .as_ref()
                .unwrap()
                .file_key,
            "k.json"
        );
        assert_eq!(app.outputs[0].destination_arn(), Some("arn:l"));
        assert_eq!(app.outputs[0].record_format(), RecordFormatType::Csv);
    }

    #[test]
    fn arns_are_split_and_checked() {
        assert_eq!(
            Arn::kinesis_stream("arn:aws:kinesis:eu-west-1:123456789012:stream/trades").unwrap(),
            ("trades".to_string(), "eu-west-1".to_string())
        );
        assert_eq!(
            Arn::s3_bucket("arn:aws:s3:::example-reference-data").unwrap(),
            "example-reference-data"
        );
        let a = Arn::parse("arn:aws:lambda:us-east-1:1:function:Sink").unwrap();
        assert_eq!(
            (a.service.as_str(), a.resource.as_str()),
            ("lambda", "function:Sink")
        );
        let e = Arn::kinesis_stream("arn:aws:firehose:us-east-1:1:deliverystream/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a Kinesis data stream ARN"), "{e}");
        let e = Arn::s3_bucket("trades").unwrap_err().to_string();
        assert!(e.contains("'trades' is not an ARN"), "{e}");
        assert!(Arn::s3_bucket("arn:aws:s3:::b/key").is_err());
    }

    #[test]
    fn limits_are_checked_and_named() {
        let mut app = ApplicationDetail::from_json(FIXTURE).unwrap();
        app.inputs[0].input_parallelism = Some(InputParallelism { count: Some(65) });
        let e = app.validate().unwrap_err().to_string();
        assert!(e.contains("InputParallelism.Count is 65"), "{e}");
        app.inputs[0].input_parallelism = None;
        app.inputs[0].name_prefix = "X".repeat(33);
        assert!(app
            .validate()
            .unwrap_err()
            .to_string()
            .contains("33 characters"));
        app.inputs[0].name_prefix = "IN".into();
        app.inputs[0].input_schema.record_columns[0].sql_type = "TEXT".into();
        let e = app.validate().unwrap_err().to_string();
        assert!(
            e.contains(
                "input 'IN': input schema: column #1 'TICKER_SYMBOL': unknown SQL type 'TEXT'"
            ),
            "{e}"
        );
        let e = ApplicationDetail::from_json("[1]").unwrap_err().to_string();
        assert!(e.contains("expected a JSON object, found an array"), "{e}");
        let e =
            ApplicationDetail::from_json(r#"{"ApplicationDetail": {"InputDescriptions": [{}]}}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("NamePrefix"), "{e}");
    }
}
