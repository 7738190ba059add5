//! Inputs and reference data of `dfstream kda`: the demo ticker, a file replay, a Kinesis data
//! stream, and reference tables from S3 or local files.
//!
//! ```text
//!  --input ticker ───────────────► DemoTickerSource ─► RenamedSource (upper case) ─┐
//!  --input FILE | - ─────────────► FileSource (ROWTIME column = replayed ingest time)─┤
//!  KinesisStreamsInput ARN ┐                                                         ├─► app.add_input
//!  --input kinesis://NAME  ┴─► KinesisSource (parallelism N = InputParallelism) ──────┤   PREFIX_001..N
//!        shards spread round-robin over its N partitions; partition k ─► PartitionOf ┘
//!        ─► in-app stream PREFIX_00(k+1); ROWTIME = ingest time
//!
//!  reference data:  --reference-dir DIR ─► DIR/FileKey (local file)      ─┐
//!                   else S3ReferenceDataSource ─► s3://bucket/FileKey    ─┼─► ReferenceSchema
//!                   else the description's directory / FileKey           ─┘   decode ─► table
//!  `dfstream check`: stand-ins with the same columns (nothing is contacted)
//! ```
//!
//! Endpoints: Kinesis from `--kinesis-endpoint`, else `AWS_ENDPOINT_URL_KINESIS` /
//! `AWS_ENDPOINT_URL`; S3 from `--s3-endpoint`, else `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL`. Credentials and region come from the standard AWS environment; the
//! region of a Kinesis stream comes from its ARN when one is given.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{exec_datafusion_err, plan_datafusion_err, plan_err, Result};
use datafusion::datasource::MemTable;
use datafusion_stream::source::{SourceContext, SourceEvent};
use datafusion_stream::{ReplaySource, RowtimeMode, StreamSource};
use datafusion_stream_connectors::file::{FileConfig, FileFormat, FilePath, FileSource};
use datafusion_stream_connectors::generator::{
    demo_ticker_schema, DemoTickerConfig, DemoTickerSource,
};
use datafusion_stream_connectors::kda::{
    Arn, InputSchema, RecordDecoder, RecordFormatType, RecordMeta, ReferenceDataSourceDescription,
};
use datafusion_stream_connectors::kinesis::{
    ClientConfig, KinesisSource, KinesisSourceConfig, PayloadFormat, StartingPosition,
};
use datafusion_stream_connectors::object_store::{
    ReferenceFormat, ReferenceTable, ReferenceTableOptions, StoreLocation, StoreOptions,
};
use datafusion_stream_kda::input::RenamedSource;
use futures::stream::BoxStream;

/// Whether sources and reference data are real or stand-ins with the same columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `dfstream kda`: connect to everything.
    Run,
    /// `dfstream check`: plan only; no server is contacted.
    Check,
}

/// Endpoint overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// `--kinesis-endpoint`.
    pub kinesis: Option<String>,
    /// `--s3-endpoint`.
    pub s3: Option<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Endpoints {
    /// The S3 store options: the endpoint (flag, else `AWS_ENDPOINT_URL_S3`, else
    /// `AWS_ENDPOINT_URL`), plain HTTP allowed for an `http://` endpoint; the rest from the
    /// AWS environment.
    pub fn s3_options(&self) -> StoreOptions {
        let endpoint = self
            .s3
            .clone()
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
        match endpoint {
            Some(e) => StoreOptions {
                allow_http: e.trim().starts_with("http://").then_some(true),
                endpoint: Some(e.trim().to_string()),
                ..StoreOptions::default()
            },
            None => StoreOptions::default(),
        }
    }

    /// The Kinesis client settings for `region` (endpoint: flag, else the environment).
    pub fn kinesis_client(&self, region: &str) -> ClientConfig {
        let config = ClientConfig::new(region);
        match &self.kinesis {
            Some(e) => config.with_endpoint(e.trim()),
            None => config,
        }
    }
}

/// A Kinesis stream named on the command line: `kinesis://NAME`, `kinesis://ARN` or an ARN.
/// `None` when `spec` names no Kinesis stream.
pub fn kinesis_target(spec: &str) -> Option<Result<(String, Option<String>)>> {
    let rest = match spec.strip_prefix("kinesis://") {
        Some(r) => r,
        None if spec.starts_with("arn:") => spec,
        None => return None,
    };
    let rest = rest.trim_end_matches('/');
    if rest.starts_with("arn:") {
        return Some(Arn::kinesis_stream(rest).map(|(n, r)| (n, Some(r))));
    }
    if rest.is_empty() || rest.contains('/') {
        return Some(plan_err!(
            "'{spec}': expected kinesis://STREAM_NAME (or a Kinesis stream ARN)"
        ));
    }
    Some(Ok((rest.to_string(), None)))
}

/// KDA's `InputStartingPosition` as the Kinesis source's starting position.
///
/// `LAST_STOPPED_POINT` resumes where the application last stopped; dfstream keeps no
/// checkpoint yet, so it is an error (re-reading from TRIM_HORIZON would duplicate output,
/// NOW would skip records): choose NOW or TRIM_HORIZON.
pub fn starting_position(name: &str) -> Result<StartingPosition> {
    match name.trim().to_ascii_uppercase().as_str() {
        "NOW" | "LATEST" => Ok(StartingPosition::Latest),
        "TRIM_HORIZON" => Ok(StartingPosition::TrimHorizon),
        "LAST_STOPPED_POINT" => plan_err!(
            "InputStartingPosition LAST_STOPPED_POINT: dfstream keeps no checkpoint of where an \
             application stopped yet; use --starting-position NOW or TRIM_HORIZON"
        ),
        other => plan_err!(
            "InputStartingPosition '{other}' is not one of NOW, TRIM_HORIZON, LAST_STOPPED_POINT"
        ),
    }
}

/// One partition of another source, as a source with one partition: the in-application
/// input stream `PREFIX_00k` reads partition `k - 1` of the Kinesis source, i.e. its share of
/// the shards.
#[derive(Debug)]
pub struct PartitionOf {
    inner: Arc<dyn StreamSource>,
    partition: usize,
}

impl StreamSource for PartitionOf {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn partition_count(&self) -> usize {
        1
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        self.inner.rowtime_mode()
    }

    fn is_bounded(&self) -> bool {
        self.inner.is_bounded()
    }

    fn open(
        &self,
        partition: usize,
        ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        if partition != 0 {
            return plan_err!("an in-application input stream has one partition, not {partition}");
        }
        self.inner.open(self.partition, ctx)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// How a Kinesis input is read.
#[derive(Debug, Clone)]
pub struct KinesisInput {
    /// The Kinesis stream name.
    pub stream: String,
    /// Its region (from the ARN), else the environment's.
    pub region: Option<String>,
    /// Where reading starts.
    pub start: StartingPosition,
    /// The columns.
    pub schema: SchemaRef,
    /// How records are decoded.
    pub format: PayloadFormat,
}

/// The in-application streams `names` over one Kinesis stream: one source with a partition
/// per name, shards spread round-robin over the partitions (KDA gives each in-application
/// input stream a subset of the shards).
pub fn kinesis_inputs(
    input: KinesisInput,
    names: &[String],
    endpoints: &Endpoints,
    mode: Mode,
) -> Result<Vec<(String, Arc<dyn StreamSource>)>> {
    if mode == Mode::Check {
        return Ok(names
            .iter()
            .map(|n| {
                let s: Arc<dyn StreamSource> = Arc::new(ReplaySource::new(
                    Arc::clone(&input.schema),
                    1,
                    RowtimeMode::Ingest,
                ));
                (n.clone(), s)
            })
            .collect());
    }
    let Some(region) = input.region.clone().or_else(ClientConfig::region_from_env) else {
        return plan_err!(
            "Kinesis stream '{}': no region: give the stream's ARN or set AWS_REGION",
            input.stream
        );
    };
    let config = KinesisSourceConfig {
        stream: input.stream.clone(),
        client: endpoints.kinesis_client(&region),
        starting_position: input.start,
        format: input.format,
        parallelism: Some(names.len().max(1)),
        max_records: 10_000,
        poll_interval: Duration::from_millis(500),
        shard_refresh_interval: Duration::from_secs(10),
        max_retries: 10,
    };
    let source: Arc<dyn StreamSource> =
        Arc::new(KinesisSource::try_new(&input.stream, input.schema, config)?);
    Ok(names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let s: Arc<dyn StreamSource> = Arc::new(PartitionOf {
                inner: Arc::clone(&source),
                partition: k,
            });
            (n.clone(), s)
        })
        .collect())
}

/// The demo ticker with KDA's upper-case column names.
pub fn demo_input(name: &str, rate: f64, seed: u64) -> Result<Arc<dyn StreamSource>> {
    let config = DemoTickerConfig {
        rate,
        seed,
        ..Default::default()
    };
    let demo = DemoTickerSource::try_new(name, demo_ticker_schema(), config)?;
    Ok(Arc::new(RenamedSource::upper_case(Arc::new(demo))?))
}

/// Whether the first record of a file has a ROWTIME column.
fn file_has_rowtime(path: &Path, format: &FileFormat) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    if std::io::BufReader::new(f).read_line(&mut line).is_err() {
        return false;
    }
    match format {
        FileFormat::Json => line.contains("\"ROWTIME\""),
        _ => line
            .trim_end()
            .split(',')
            .any(|h| h.trim().trim_matches('"') == "ROWTIME"),
    }
}

/// A file replay (`-`: standard input); a ROWTIME column in the file's first record makes
/// the file supply each record's ingest time.
pub fn file_input(
    name: &str,
    input: &str,
    schema: SchemaRef,
    format: FileFormat,
    input_schema: Option<InputSchema>,
) -> Result<Arc<dyn StreamSource>> {
    let path = if input == "-" {
        FilePath::Stdin
    } else {
        FilePath::File(PathBuf::from(input))
    };
    let rowtime_column = match &path {
        FilePath::File(p) if file_has_rowtime(p, &format) => Some("ROWTIME".to_string()),
        _ => None,
    };
    let config = FileConfig {
        path,
        format,
        rowtime_column,
        batch_size: 1024,
        input_schema,
    };
    Ok(Arc::new(FileSource::try_new(name, schema, config)?))
}

/// Loads a reference table from a local file with its KDA ReferenceSchema.
fn local_reference_table(path: &Path, schema: &InputSchema) -> Result<Arc<dyn TableProvider>> {
    let bytes = std::fs::read(path)
        .map_err(|e| exec_datafusion_err!("reference data '{}': {e}", path.display()))?;
    let mut decoder = RecordDecoder::try_new(schema)?;
    let origin = path.display().to_string();
    let records: Vec<&[u8]> = match schema.format_type() {
        RecordFormatType::Json => bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .collect(),
        RecordFormatType::Csv => vec![bytes.as_slice()],
    };
    for r in records {
        let meta = RecordMeta {
            origin: &origin,
            error_time: 0,
            rowtime: None,
        };
        let decoded = decoder.decode(r, &meta);
        if let Some(e) = decoded.rejected.first() {
            return Err(exec_datafusion_err!(
                "reference data '{}': {}: {}",
                path.display(),
                e.name,
                e.message
            ));
        }
    }
    let batch = decoder.finish()?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    Ok(Arc::new(table))
}

/// Where reference data is read from.
#[derive(Debug, Clone)]
pub struct ReferenceSources {
    /// `--reference-dir`: every FileKey is a file under it (takes precedence over S3).
    pub dir: Option<PathBuf>,
    /// The description's directory: FileKeys of sources without an S3 location.
    pub description_dir: PathBuf,
}

/// Loads one reference table of the description. Precedence: `--reference-dir DIR/FileKey`,
/// else the S3 object `s3://BUCKET/FileKey` of its S3ReferenceDataSource, else a local file
/// named by FileKey (or TableName) next to the description. In check mode, an empty table
/// with the ReferenceSchema's columns.
pub async fn reference_table(
    r: &ReferenceDataSourceDescription,
    sources: &ReferenceSources,
    endpoints: &Endpoints,
    mode: Mode,
) -> Result<Arc<dyn TableProvider>> {
    let name = &r.table_name;
    let context = |e: datafusion::common::DataFusionError| {
        plan_datafusion_err!("reference table '{name}': {}", super::strip(&e))
    };
    if mode == Mode::Check {
        let schema = r.reference_schema.arrow_schema().map_err(context)?;
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let key = r
        .s3_reference_data_source
        .as_ref()
        .map(|s| s.file_key.clone())
        .unwrap_or_else(|| name.clone());
    if let Some(dir) = &sources.dir {
        return local_reference_table(&dir.join(&key), &r.reference_schema);
    }
    let Some(s3) = &r.s3_reference_data_source else {
        return local_reference_table(&sources.description_dir.join(&key), &r.reference_schema);
    };
    let bucket = Arn::s3_bucket(&s3.bucket_arn).map_err(context)?;
    let url = format!("s3://{bucket}/{}", s3.file_key.trim_start_matches('/'));
    let location = StoreLocation::parse(&url, &endpoints.s3_options()).map_err(context)?;
    let options =
        ReferenceTableOptions::new(ReferenceFormat::Kda(Box::new(r.reference_schema.clone())));
    let table = ReferenceTable::load(location, options).await.map_err(|e| {
        plan_datafusion_err!(
            "reference table '{name}' (BucketARN {}, FileKey {}): {}",
            s3.bucket_arn,
            s3.file_key,
            super::strip(&e)
        )
    })?;
    Ok(Arc::new(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_targets() {
        assert!(kinesis_target("ticker").is_none());
        assert!(kinesis_target("trades.jsonl").is_none());
        assert_eq!(
            kinesis_target("kinesis://trades").unwrap().unwrap(),
            ("trades".to_string(), None)
        );
        assert_eq!(
            kinesis_target("arn:aws:kinesis:eu-west-1:1:stream/t")
                .unwrap()
                .unwrap(),
            ("t".to_string(), Some("eu-west-1".to_string()))
        );
        assert_eq!(
            kinesis_target("kinesis://arn:aws:kinesis:eu-west-1:1:stream/t")
                .unwrap()
                .unwrap(),
            ("t".to_string(), Some("eu-west-1".to_string()))
        );
        let e = kinesis_target("kinesis://a/b")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected kinesis://STREAM_NAME"), "{e}");
    }

    #[test]
    fn starting_positions() {
        assert_eq!(starting_position("NOW").unwrap(), StartingPosition::Latest);
        assert_eq!(
            starting_position("trim_horizon").unwrap(),
            StartingPosition::TrimHorizon
        );
        let e = starting_position("LAST_STOPPED_POINT")
            .unwrap_err()
            .to_string();
        assert!(e.contains("keeps no checkpoint"), "{e}");
        assert!(starting_position("SOMETIME").is_err());
    }

    #[test]
    fn s3_endpoint_allows_http_for_local_servers() {
        let e = Endpoints {
            kinesis: None,
            s3: Some("http://127.0.0.1:5000".into()),
        };
        let o = e.s3_options();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(o.allow_http, Some(true));
    }
}
