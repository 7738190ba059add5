//! The Kinesis sink: rows out as Kinesis records, with `PutRecords` batched within the
//! service's limits and failed records retried.
//!
//! ```text
//!  query output (StreamContext::query) ──► RecordBatch
//!     │  encode each row: JSON object | CSV line   (kda::encode_json_rows / encode_csv_rows)
//!     │  partition key: 'partition_key_column' value | a counter (spreads evenly)
//!     ▼
//!  pending entries ──► PutRecords calls of ≤ 500 records and ≤ 5 MiB (data + keys)
//!                          │
//!                          ├─ all written ──► next
//!                          ├─ some failed (ProvisionedThroughputExceeded, InternalFailure)
//!                          │      ──► only those again, in order, after a backoff
//!                          │          (250 ms doubling, up to 10 s), at most 'max_retries'
//!                          ├─ whole call throttled / 5xx / network ──► the same, whole call
//!                          └─ other errors, or retries used up ──► Err naming the stream,
//!                                                                   the code and the count
//! ```
//!
//! State: the counter for generated partition keys and the sink's totals. Each
//! `write_batch` returns only once every row is written (or fails), so a caller that
//! checkpoints after it never loses rows. A record over 1 MiB (data + key) is an error, not
//! dropped. Retried records can land after records of the same key that were written in the
//! same call (as with any PutRecords producer).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::StreamContext;
use futures::StreamExt;

use super::client::{ClientConfig, ErrorKind, KinesisClient, PutEntry, PutResult};
use super::source::client_config;

/// Most records in one `PutRecords` call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// Most bytes (data + partition keys) in one `PutRecords` call.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Most bytes (data + partition key) in one record.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The option names the sink accepts.
pub const SINK_OPTIONS: &[&str] = &[
    "stream",
    "region",
    "endpoint",
    "format",
    "delimiter",
    "partition_key_column",
    "max_retries",
];

/// How rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkFormat {
    /// One JSON object per row (`{"COLUMN":value,...}`).
    Json,
    /// One delimited line per row.
    Csv {
        /// Field delimiter.
        delimiter: String,
    },
}

/// Settings of a Kinesis sink.
#[derive(Debug, Clone)]
pub struct KinesisSinkConfig {
    /// The Kinesis stream name (or ARN).
    pub stream: String,
    /// Region and endpoint.
    pub client: ClientConfig,
    /// Record format.
    pub format: SinkFormat,
    /// Column whose value is each record's partition key; `None`: a counter.
    pub partition_key_column: Option<String>,
    /// Retries of failed records (or throttled calls) before the sink fails.
    pub max_retries: u32,
}

impl KinesisSinkConfig {
    /// Reads `'stream'`, `'region'`, `'endpoint'`, `'format'` (`json` | `csv`), `'delimiter'`,
    /// `'partition_key_column'`, `'max_retries'`; unknown options are rejected by name.
    pub fn from_options(options: &mut ConnectorOptions) -> Result<Self> {
        let connector = options.connector().to_string();
        let Some(stream) = options.take("stream").filter(|s| !s.trim().is_empty()) else {
            return plan_err!("sink '{connector}': option 'stream' is required");
        };
        let region = options.take("region");
        let endpoint = options.take("endpoint");
        let format = options.take("format");
        let delimiter = options.take("delimiter");
        let partition_key_column = options.take("partition_key_column");
        let max_retries = options.take_parsed::<u32>("max_retries")?.unwrap_or(10);
        options.finish(SINK_OPTIONS)?;
        let format = match format
            .as_deref()
            .map(|f| f.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("json") => {
                if let Some(d) = delimiter {
                    return plan_err!(
                        "sink '{connector}': option 'delimiter' = '{d}' only applies to 'format' = 'csv'"
                    );
                }
                SinkFormat::Json
            }
            Some("csv") => SinkFormat::Csv {
                delimiter: delimiter.unwrap_or_else(|| ",".to_string()),
            },
            Some(other) => {
                return plan_err!(
                "sink '{connector}': option 'format' = '{other}' is invalid: use 'json' or 'csv'"
            )
            }
        };
        Ok(Self {
            stream: stream.trim().to_string(),
            client: client_config(&connector, region, endpoint)?,
            format,
            partition_key_column: partition_key_column.map(|c| c.trim().to_string()),
            max_retries,
        })
    }
}

/// What a sink has written.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records written.
    pub records: AtomicU64,
    /// Bytes of data written.
    pub bytes: AtomicU64,
    /// `PutRecords` calls made.
    pub calls: AtomicU64,
    /// Records retried after a partial failure (or a failed call).
    pub retried_records: AtomicU64,
}

/// Writes rows to a Kinesis stream; see the module docs.
#[derive(Debug)]
pub struct KinesisSink {
    client: KinesisClient,
    config: KinesisSinkConfig,
    next_key: AtomicU64,
    stats: Arc<SinkStats>,
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250)
        .saturating_mul(1 << attempt.min(6))
        .min(Duration::from_secs(10))
}

impl KinesisSink {
    /// A sink for `config` (credentials from the standard AWS chain).
    pub fn try_new(config: KinesisSinkConfig) -> Result<Self> {
        Ok(Self {
            client: KinesisClient::try_new(&config.client)?,
            config,
            next_key: AtomicU64::new(0),
            stats: Arc::new(SinkStats::default()),
        })
    }

    /// Totals so far.
    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// Checks that the rows of `schema` can be written (the key column exists).
    pub fn check_schema(&self, schema: &SchemaRef) -> Result<()> {
        if let Some(c) = &self.config.partition_key_column {
            if schema.index_of(c).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return plan_err!(
                    "Kinesis sink for stream '{}': option 'partition_key_column' = '{c}' is not a \
                     column of the output (columns: {})",
                    self.config.stream,
                    names.join(", ")
                );
            }
        }
        Ok(())
    }

    /// The records for the rows of `batch`.
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<PutEntry>> {
        let data = match &self.config.format {
            SinkFormat::Json => crate::kda::encode_json_rows(batch)?,
            SinkFormat::Csv { delimiter } => crate::kda::encode_csv_rows(batch, delimiter)?,
        };
        let keys: Vec<String> = match &self.config.partition_key_column {
            Some(c) => {
                self.check_schema(&batch.schema())?;
                let col = batch.column(batch.schema().index_of(c)?);
                let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
                (0..batch.num_rows())
                    .map(|i| {
                        if col.is_null(i) {
                            return exec_err!(
                                "Kinesis sink for stream '{}': partition key column '{c}' is NULL \
                                 in row {i} of the batch; a record needs a key",
                                self.config.stream
                            );
                        }
                        let k = f.value(i).to_string();
                        if k.is_empty() || k.chars().count() > 256 {
                            return exec_err!(
                                "Kinesis sink for stream '{}': partition key '{k}' (column '{c}') \
                                 must have 1 to 256 characters",
                                self.config.stream
                            );
                        }
                        Ok(k)
                    })
                    .collect::<Result<_>>()?
            }
            None => (0..batch.num_rows())
                .map(|_| self.next_key.fetch_add(1, Ordering::Relaxed).to_string())
                .collect(),
        };
        Ok(data
            .into_iter()
            .zip(keys)
            .map(|(data, partition_key)| PutEntry {
                partition_key,
                data,
                explicit_hash_key: None,
            })
            .collect())
    }

    /// Writes the rows of `batch`; returns once all are written.
    pub async fn write_batch(&self, batch: &RecordBatch) -> Result<usize> {
        let entries = self.encode(batch)?;
        let n = entries.len();
        self.put_all(entries).await?;
        Ok(n)
    }

    /// Writes records, in calls within the limits, retrying failed ones.
    pub async fn put_all(&self, entries: Vec<PutEntry>) -> Result<()> {
        let mut call: Vec<PutEntry> = Vec::new();
        let mut bytes = 0;
        for e in entries {
            let size = e.data.len() + e.partition_key.len();
            if size > MAX_RECORD_BYTES {
                return exec_err!(
                    "Kinesis sink for stream '{}': a record of {size} bytes (key '{}') is over the \
                     1 MiB limit",
                    self.config.stream,
                    e.partition_key
                );
            }
            if call.len() == MAX_RECORDS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL {
                self.put_call(std::mem::take(&mut call)).await?;
                bytes = 0;
            }
            bytes += size;
            call.push(e);
        }
        if !call.is_empty() {
            self.put_call(call).await?;
        }
        Ok(())
    }

    /// One batch within the limits: PutRecords until every record is written.
    async fn put_call(&self, mut entries: Vec<PutEntry>) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            let failed: Vec<(PutEntry, String)> =
                match self.client.put_records(&self.config.stream, &entries).await {
                    Ok(results) => {
                        let mut failed = Vec::new();
                        for (e, r) in entries.into_iter().zip(results) {
                            match r {
                                PutResult::Ok { .. } => {
                                    self.stats.records.fetch_add(1, Ordering::Relaxed);
                                    self.stats
                                        .bytes
                                        .fetch_add(e.data.len() as u64, Ordering::Relaxed);
                                }
                                PutResult::Failed { code, message } => {
                                    failed.push((e, format!("{code}: {message}")))
                                }
                            }
                        }
                        failed
                    }
                    Err(e) if matches!(e.kind, ErrorKind::Throttled | ErrorKind::Transient) => {
                        let why = e.to_string();
                        entries.into_iter().map(|x| (x, why.clone())).collect()
                    }
                    Err(e) => {
                        return Err(DataFusionError::Execution(format!(
                            "Kinesis sink for stream '{}' at {}: {e}",
                            self.config.stream,
                            self.client.endpoint()
                        )))
                    }
                };
            if failed.is_empty() {
                return Ok(());
            }
            if attempt >= self.config.max_retries {
                return exec_err!(
                    "Kinesis sink for stream '{}': {} record(s) still not written after {} retries \
                     (last error: {})",
                    self.config.stream,
                    failed.len(),
                    self.config.max_retries,
                    failed[0].1
                );
            }
            self.stats
                .retried_records
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
            entries = failed.into_iter().map(|(e, _)| e).collect();
        }
    }
}

/// What [`run_query_into_kinesis`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkSummary {
    /// Output batches written.
    pub batches: usize,
    /// Rows (records) written.
    pub rows: usize,
}

/// Runs `sql` on `ctx` and writes every output row to Kinesis until the query ends (bounded
/// inputs) or fails. `options` are the sink's options (see [`KinesisSinkConfig::from_options`]).
pub async fn run_query_into_kinesis(
    ctx: &StreamContext,
    sql: &str,
    options: &mut ConnectorOptions,
) -> Result<SinkSummary> {
    let sink = KinesisSink::try_new(KinesisSinkConfig::from_options(options)?)?;
    let mut query = ctx.query(sql).await?;
    sink.check_schema(&query.schema())?;
    let mut summary = SinkSummary {
        batches: 0,
        rows: 0,
    };
    while let Some(batch) = query.stream().next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        summary.rows += sink.write_batch(&batch).await?;
        summary.batches += 1;
    }
    Ok(summary)
}
