//! Destinations of `dfstream kda`: the description's Kinesis outputs and `--sink STREAM=URL`
//! (Kinesis, or Parquet / JSON / CSV files on S3 or the local file system).
//!
//! ```text
//!  description OutputDescriptions ─┐   KinesisStreamsOutput ──► Kinesis  (DestinationSchema
//!  --sink STREAM=URL (repeatable) ─┤                                       JSON | CSV, KDA encoding)
//!                                  │   Firehose / Lambda without --sink ─► error
//!                                  ▼
//!  plan_destinations ─► per in-app stream: [DestinationPlan] ─open()─► [Destination]
//!        (no server contacted)                 (bucket LISTed / stream listed: early errors)
//!
//!  run loop: take_output(stream) ─► Destination::write ─┬─ Kinesis: PutRecords, returns once
//!            output_rowtime_bound ─► progress (rolls)   │   every record is written
//!            every turn ─► tick (roll_interval)         └─ FileSink: rows (+ ROWTIME) into
//!  stop ─► close(): every open file completed           the open file of the stream
//!  error ─► abort(): open files abandoned (no partial object)
//! ```
//!
//! Kinesis records hold the stream's columns without ROWTIME, as KDA writes them; files hold
//! ROWTIME first (Parquet / JSON / CSV), except the KDA formats (`kda-json`, `kda-csv`), which
//! hold exactly what a KDA destination receives.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{plan_datafusion_err, plan_err, DataFusionError, Result};
use datafusion_stream::scan::Progress;
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::time::WATERMARK_MIN;
use datafusion_stream::Millis;
use datafusion_stream_connectors::kda::{Arn, OutputDescription, RecordFormatType};
use datafusion_stream_connectors::kinesis::{
    ClientConfig, KinesisClient, KinesisSink, KinesisSinkConfig,
};
use datafusion_stream_connectors::object_store::{StoreKind, StoreLocation, StoreOptions};
use datafusion_stream_connectors::sink::{FileSink, SinkOptions, SINK_OPTION_NAMES};

use super::inputs::{kinesis_target, Endpoints};
use super::strip;

/// The options a Kinesis `--sink` URL takes (`?format=csv&partition_key_column=TICKER`).
const KINESIS_SINK_QUERY_OPTIONS: &[&str] = &[
    "format",
    "delimiter",
    "partition_key_column",
    "max_retries",
    "region",
];

/// Where one in-application stream goes, before anything is contacted.
#[derive(Debug, Clone)]
pub enum DestinationPlan {
    /// A Kinesis data stream.
    Kinesis {
        /// What the user wrote (for messages).
        label: String,
        /// The Kinesis stream name.
        stream: String,
        /// Its region, when an ARN gave it.
        region: Option<String>,
        /// Sink options (`format`, `delimiter`, `partition_key_column`, ...).
        options: HashMap<String, String>,
    },
    /// Files under an object-store prefix.
    Files {
        /// What the user wrote (for messages).
        label: String,
        /// The URL without its query.
        url: String,
        /// Sink options (`format`, `roll_rows`, `roll_interval`, ...).
        options: HashMap<String, String>,
    },
}

impl DestinationPlan {
    /// What the user wrote.
    pub fn label(&self) -> &str {
        match self {
            Self::Kinesis { label, .. } | Self::Files { label, .. } => label,
        }
    }
}

/// Parses `key=value&key=value`.
fn parse_query(spec: &str, query: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || v.trim().is_empty() {
            return plan_err!("--sink {spec}: option '{pair}' is not key=value");
        }
        if out.insert(k.clone(), v.trim().to_string()).is_some() {
            return plan_err!("--sink {spec}: option '{k}' is given twice");
        }
    }
    Ok(out)
}

/// Parses one `--sink STREAM=URL`: the in-application stream and its destination.
pub fn parse_sink(spec: &str) -> Result<(String, DestinationPlan)> {
    let Some((stream, url)) = spec.split_once('=') else {
        return plan_err!(
            "--sink {spec}: expected STREAM=URL, e.g. DESTINATION_SQL_STREAM=s3://bucket/prefix/?format=parquet"
        );
    };
    let (stream, url) = (stream.trim(), url.trim());
    if stream.is_empty() || url.is_empty() {
        return plan_err!("--sink {spec}: expected STREAM=URL (both non-empty)");
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let options = parse_query(spec, query)?;
    if let Some(target) = kinesis_target(base) {
        let (name, region) =
            target.map_err(|e| plan_datafusion_err!("--sink {spec}: {}", strip(&e)))?;
        if let Some(bad) = options
            .keys()
            .find(|k| !KINESIS_SINK_QUERY_OPTIONS.contains(&k.as_str()))
        {
            return plan_err!(
                "--sink {spec}: unknown option '{bad}' for a Kinesis sink; valid options are: {}",
                KINESIS_SINK_QUERY_OPTIONS.join(", ")
            );
        }
        return Ok((
            stream.to_string(),
            DestinationPlan::Kinesis {
                label: url.to_string(),
                stream: name,
                region,
                options,
            },
        ));
    }
    let scheme = base.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("s3") | Some("s3a") | Some("file") => {}
        _ => {
            return plan_err!(
                "--sink {spec}: '{base}' is not a sink URL; use kinesis://STREAM (or a Kinesis stream ARN), s3://bucket/prefix/ or file:///directory/"
            )
        }
    }
    // Check the options now (before anything runs): the same parsing the sink does later.
    file_sink_options(spec, stream, &options)?;
    StoreLocation::parse(base, &StoreOptions::default())
        .map_err(|e| plan_datafusion_err!("--sink {spec}: {}", strip(&e)))?;
    Ok((
        stream.to_string(),
        DestinationPlan::Files {
            label: url.to_string(),
            url: base.to_string(),
            options,
        },
    ))
}

/// The file-name-safe form of a stream name (the default `query_name` of its files).
fn file_stem(stream: &str) -> String {
    let s: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "part".into()
    } else {
        s
    }
}

/// The FileSink options of a `--sink` URL's query: `format` = parquet (default) | json | csv
/// | kda-json | kda-csv, and the sink's roll options.
fn file_sink_options(
    spec: &str,
    stream: &str,
    query: &HashMap<String, String>,
) -> Result<SinkOptions> {
    let mut values = query.clone();
    let format = values
        .remove("format")
        .unwrap_or_else(|| "parquet".into())
        .to_ascii_lowercase()
        .replace('-', "_");
    values.insert("format".into(), format);
    values
        .entry("query_name".into())
        .or_insert_with(|| file_stem(stream));
    let mut options = ConnectorOptions::new("file sink", values);
    let valid: Vec<&str> = SINK_OPTION_NAMES
        .iter()
        .copied()
        .filter(|o| *o != "path")
        .collect();
    let parsed = SinkOptions::take_from(&mut options).and_then(|o| {
        options.finish(&valid)?;
        Ok(o)
    });
    parsed.map_err(|e| plan_datafusion_err!("--sink {spec}: {}", strip(&e)))
}

/// The destinations of every stream: the description's outputs, then `--sink`s. A stream
/// may have several. A Firehose or Lambda output without a `--sink` for its stream is an
/// error naming it.
pub fn plan_destinations(
    described: &[OutputDescription],
    sinks: &[String],
) -> Result<BTreeMap<String, Vec<DestinationPlan>>> {
    let mut plans: BTreeMap<String, Vec<DestinationPlan>> = BTreeMap::new();
    let mut from_cli: Vec<(String, DestinationPlan)> = Vec::new();
    for s in sinks {
        from_cli.push(parse_sink(s)?);
    }
    for o in described {
        let id = o
            .output_id
            .as_deref()
            .map(|i| format!(" (OutputId {i})"))
            .unwrap_or_default();
        let overridden = from_cli.iter().any(|(s, _)| s == &o.name);
        if let Some(k) = &o.kinesis_streams_output {
            let (stream, region) = Arn::kinesis_stream(&k.resource_arn)
                .map_err(|e| plan_datafusion_err!("output '{}'{id}: {}", o.name, strip(&e)))?;
            let mut options = HashMap::new();
            options.insert(
                "format".to_string(),
                match o.record_format() {
                    RecordFormatType::Json => "json".to_string(),
                    RecordFormatType::Csv => "csv".to_string(),
                },
            );
            plans
                .entry(o.name.clone())
                .or_default()
                .push(DestinationPlan::Kinesis {
                    label: k.resource_arn.clone(),
                    stream,
                    region: Some(region),
                    options,
                });
            continue;
        }
        let other = match (&o.kinesis_firehose_output, &o.lambda_output) {
            (Some(f), _) => Some(("the Kinesis Data Firehose delivery stream", f)),
            (None, Some(l)) => Some(("the Lambda function", l)),
            (None, None) => None,
        };
        if let Some((what, r)) = other {
            if !overridden {
                return plan_err!(
                    "output '{}'{id} goes to {what} {}, which dfstream cannot write; give --sink {}=s3://bucket/prefix/ (Parquet files) or --sink {}=kinesis://STREAM instead",
                    o.name,
                    r.resource_arn,
                    o.name,
                    o.name
                );
            }
        }
    }
    for (stream, plan) in from_cli {
        plans.entry(stream).or_default().push(plan);
    }
    Ok(plans)
}

enum Target {
    Kinesis(KinesisSink),
    Files {
        /// `None` once closed or aborted.
        sink: Option<Box<FileSink>>,
        /// Files hold ROWTIME (not the KDA formats).
        keep_rowtime: bool,
        /// The last progress passed to the sink.
        bound: Millis,
    },
}

/// An open destination of one stream.
pub struct Destination {
    stream: String,
    label: String,
    /// The stream's rows start with ROWTIME (declared streams; not error_stream).
    has_rowtime: bool,
    target: Target,
    rows: u64,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("stream", &self.stream)
            .field("label", &self.label)
            .finish()
    }
}

impl Destination {
    /// Opens a destination: checks that the bucket / Kinesis stream is there (one LIST /
    /// ListShards), so that a missing one is reported before the application starts.
    pub async fn open(
        stream: &str,
        plan: &DestinationPlan,
        has_rowtime: bool,
        endpoints: &Endpoints,
    ) -> Result<Self> {
        let label = plan.label().to_string();
        let fail = |e: DataFusionError| {
            plan_datafusion_err!("output '{stream}' to {label}: {}", strip(&e))
        };
        let target = match plan {
            DestinationPlan::Kinesis {
                stream: name,
                region,
                options,
                ..
            } => {
                let mut values = options.clone();
                values.insert("stream".into(), name.clone());
                if let Some(r) = region {
                    values.entry("region".into()).or_insert_with(|| r.clone());
                }
                if let Some(e) = &endpoints.kinesis {
                    values.insert("endpoint".into(), e.clone());
                }
                let mut options = ConnectorOptions::new("kinesis sink", values);
                let config = KinesisSinkConfig::from_options(&mut options).map_err(fail)?;
                check_kinesis_stream(name, &config.client)
                    .await
                    .map_err(fail)?;
                Target::Kinesis(KinesisSink::try_new(config).map_err(fail)?)
            }
            DestinationPlan::Files { url, options, .. } => {
                let sink_options = file_sink_options(&label, stream, options).map_err(fail)?;
                let store_options = match StoreLocation::parse(url, &StoreOptions::default())
                    .map_err(fail)?
                    .kind()
                {
                    StoreKind::S3 => endpoints.s3_options(),
                    _ => StoreOptions::default(),
                };
                let location = StoreLocation::parse(url, &store_options).map_err(fail)?;
                location.check().await.map_err(fail)?;
                let keep_rowtime = !matches!(
                    sink_options.format,
                    datafusion_stream_connectors::sink::SinkFormat::KdaJson
                        | datafusion_stream_connectors::sink::SinkFormat::KdaCsv { .. }
                );
                Target::Files {
                    sink: Some(Box::new(
                        FileSink::try_new(location, sink_options).map_err(fail)?,
                    )),
                    keep_rowtime,
                    bound: WATERMARK_MIN,
                }
            }
        };
        Ok(Self {
            stream: stream.to_string(),
            label,
            has_rowtime,
            target,
            rows: 0,
        })
    }

    /// The stream written.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn without_rowtime(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if !self.has_rowtime || batch.num_columns() == 0 {
            return Ok(batch.clone());
        }
        let idx: Vec<usize> = (1..batch.num_columns()).collect();
        Ok(batch.project(&idx)?)
    }

    /// Writes rows of the stream (returns once a Kinesis destination has them all).
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let result = match &self.target {
            Target::Kinesis(_) => Some(self.without_rowtime(batch)),
            Target::Files { keep_rowtime, .. } if !*keep_rowtime => {
                Some(self.without_rowtime(batch))
            }
            Target::Files { .. } => None,
        };
        let rows = match result {
            Some(r) => r?,
            None => batch.clone(),
        };
        let n = rows.num_rows() as u64;
        let outcome = match &mut self.target {
            Target::Kinesis(k) => k.write_batch(&rows).await.map(|_| ()),
            Target::Files { sink: Some(s), .. } => s.write(0, &rows).await,
            Target::Files { sink: None, .. } => Ok(()),
        };
        outcome.map_err(|e| {
            plan_datafusion_err!("output '{}' to {}: {}", self.stream, self.label, strip(&e))
        })?;
        self.rows += n;
        Ok(())
    }

    /// The stream's ROWTIME bound moved: files roll on it (`roll_boundary`), and aged files
    /// (`roll_interval`) close.
    pub async fn progress(&mut self, rowtime: Option<Millis>) -> Result<()> {
        let Target::Files {
            sink: Some(s),
            bound,
            ..
        } = &mut self.target
        else {
            return Ok(());
        };
        let result = match rowtime {
            Some(r) if r > *bound => {
                *bound = r;
                s.progress(Progress {
                    event_time: WATERMARK_MIN,
                    rowtime: r,
                    idle: false,
                })
                .await
            }
            _ => s.tick().await,
        };
        result.map_err(|e| {
            plan_datafusion_err!("output '{}' to {}: {}", self.stream, self.label, strip(&e))
        })
    }

    /// Completes every open file (Kinesis rows are already written); a line for stderr.
    pub async fn close(mut self) -> Result<String> {
        let what = match &mut self.target {
            Target::Kinesis(_) => format!("{} record(s)", self.rows),
            Target::Files { sink, .. } => match sink.take() {
                Some(s) => {
                    let stats = (*s).close().await.map_err(|e| {
                        plan_datafusion_err!(
                            "output '{}' to {}: closing: {}",
                            self.stream,
                            self.label,
                            strip(&e)
                        )
                    })?;
                    format!("{} row(s) in {} file(s)", stats.rows, stats.files.len())
                }
                None => "closed".to_string(),
            },
        };
        Ok(format!("{} → {}: {what}", self.stream, self.label))
    }

    /// Abandons open files (nothing partial becomes visible).
    pub async fn abort(mut self) {
        if let Target::Files { sink, .. } = &mut self.target {
            if let Some(s) = sink.take() {
                let _ = (*s).abort().await;
            }
        }
    }
}

/// One ListShards call: a missing stream or an unreachable endpoint is reported before the
/// application starts.
async fn check_kinesis_stream(stream: &str, config: &ClientConfig) -> Result<()> {
    let client = KinesisClient::try_new(config)?;
    client.list_shards(stream).await.map(|_| ()).map_err(|e| {
        plan_datafusion_err!("Kinesis stream '{stream}' at {}: {e}", client.endpoint())
    })
}

/// Every destination, by stream.
pub type Destinations = Vec<Destination>;

/// Closes every destination; the first error, after trying them all.
pub async fn close_all(destinations: Destinations) -> Result<Vec<String>> {
    let mut first = None;
    let mut lines = Vec::new();
    for d in destinations {
        match d.close().await {
            Ok(l) => lines.push(l),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(lines),
    }
}

/// Aborts every destination (after an error).
pub async fn abort_all(destinations: Destinations) {
    for d in destinations {
        d.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse() {
        let (s, p) = parse_sink("DEST=s3://lake/out/?format=kda-json&roll_rows=10").unwrap();
        assert_eq!(s, "DEST");
        let DestinationPlan::Files { url, options, .. } = p else {
            panic!("files")
        };
        assert_eq!(url, "s3://lake/out/");
        assert_eq!(options.get("roll_rows").map(String::as_str), Some("10"));
        let (_, p) = parse_sink("DEST=arn:aws:kinesis:eu-west-1:1:stream/out?format=csv").unwrap();
        let DestinationPlan::Kinesis { stream, region, .. } = p else {
            panic!("kinesis")
        };
        assert_eq!(
            (stream.as_str(), region.as_deref()),
            ("out", Some("eu-west-1"))
        );
        for (spec, want) in [
            (
                "DEST=s3://lake/out/?roll_rows",
                "option 'roll_rows' is not key=value",
            ),
            ("DEST=s3://lake/?a=1&a=2", "option 'a' is given twice"),
            ("=s3://lake/", "both non-empty"),
            ("DEST=memory://x/", "is not a sink URL"),
            (
                "DEST=s3://lake/?roll_rows=0",
                "'roll_rows' must be at least 1",
            ),
        ] {
            let e = parse_sink(spec).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn firehose_outputs_need_a_sink() {
        let o: OutputDescription = serde_json::from_value(serde_json::json!({
            "Name": "OUT",
            "LambdaOutput": {"ResourceARN": "arn:aws:lambda:us-east-1:1:function:f"}
        }))
        .unwrap();
        let e = plan_destinations(std::slice::from_ref(&o), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "output 'OUT' goes to the Lambda function arn:aws:lambda:us-east-1:1:function:f"
            ),
            "{e}"
        );
        let plans =
            plan_destinations(std::slice::from_ref(&o), &["OUT=file:///tmp/out/".into()]).unwrap();
        assert_eq!(plans["OUT"].len(), 1);
    }
}
