//! The Kinesis source: a [`StreamSource`] whose partitions read the shards of a Kinesis data
//! stream, following resharding.
//!
//! ```text
//!  open(p) ─► generation (one per query run: the partitions opened together share it)
//!              Shared { client, Coordinator }
//!                         │ ListShards (each partition, on start, after a SHARD_END, and
//!                         │ every 'shard_refresh_interval')
//!                         ▼
//!   Coordinator: shard ─► Waiting ──(every listed parent Finished)──► Ready{owner, start}
//!                             ──take_ready(p)──► Reading{p} ──SHARD_END──► Finished
//!     owner: roots (and, for LATEST, the open shards) round-robin over the partitions;
//!            a child inherits its (first) parent's partition, so a key's records stay in
//!            one partition, in order, across splits and merges
//!
//!  partition task p (tokio), per owned shard: iterator, last sequence number, next poll time
//!     GetShardIterator(start | AFTER_SEQUENCE_NUMBER last) ─► GetRecords (≥ 200 ms apart
//!     per shard: ≤ 5/s; 'poll_interval' apart once caught up)
//!       ok ──► KPL deaggregation ──► BatchDecoder ──► SourceEvent::Data ──► channel ──► scan
//!              MillisBehindLatest ──► KinesisMetrics; NextShardIterator absent = SHARD_END
//!       throttled          ──► same iterator, exponential backoff (250 ms .. 10 s)
//!       expired iterator   ──► new iterator AFTER_SEQUENCE_NUMBER the last processed record
//!       5xx / network      ──► backoff, at most 'max_retries' in a row, then the query fails
//!       other              ──► the query fails, naming the stream, shard and call
//!     no shards, or every shard caught up and silent ──► SourceEvent::Idle (once)
//! ```
//!
//! State per partition: its shard readers (iterator, last sequence number, backoff), the
//! decoder's pending records. Shared: the coordinator's shard states, the metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::{
    ConnectorOptions, SourceContext, SourceEvent, SourceFactory, StreamSource,
};
use datafusion_stream::{Millis, RowtimeMode};
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{
    ClientConfig, ErrorKind, KinesisClient, KinesisError, ShardInfo, StartPosition,
};
use super::decode::{BatchDecoder, DecodePlan, PayloadFormat, UserRow};
use super::kpl;
use crate::kda::InputSchema;

/// The connector name.
pub const CONNECTOR: &str = "kinesis";

/// The option names the source accepts.
pub const OPTIONS: &[&str] = &[
    "stream",
    "region",
    "endpoint",
    "starting_position",
    "starting_timestamp",
    "starting_sequence_numbers",
    "format",
    "delimiter",
    "input_schema",
    "input_schema_file",
    "parallelism",
    "max_records",
    "poll_interval",
    "shard_refresh_interval",
    "max_retries",
];

/// Least time between two GetRecords calls on one shard (the service allows 5 per second).
pub const MIN_GET_RECORDS_INTERVAL: Duration = Duration::from_millis(200);

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Where reading starts (`'starting_position'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest records (`TRIM_HORIZON`).
    TrimHorizon,
    /// Records written from now on (`LATEST`, the default; KDA's `NOW`).
    Latest,
    /// Records from a time on (`AT_TIMESTAMP`, `'starting_timestamp'`), epoch milliseconds.
    AtTimestamp(Millis),
    /// Resume after saved sequence numbers (`AFTER_SEQUENCE_NUMBER`,
    /// `'starting_sequence_numbers'` = `'shardId-…:seq,…'`): the named shards continue after
    /// their number, their ancestors are skipped, every other shard is read from its start.
    AfterSequenceNumbers(BTreeMap<String, String>),
}

/// Settings of a Kinesis stream (the `WITH` options).
#[derive(Debug, Clone)]
pub struct KinesisSourceConfig {
    /// The Kinesis stream name (or ARN).
    pub stream: String,
    /// Region and endpoint.
    pub client: ClientConfig,
    /// Where to start.
    pub starting_position: StartingPosition,
    /// How record data is decoded.
    pub format: PayloadFormat,
    /// Number of partitions; `None`: one per open shard at CREATE STREAM.
    pub parallelism: Option<usize>,
    /// GetRecords `Limit` (1..=10000).
    pub max_records: usize,
    /// Wait before polling a shard that is caught up (at least 200 ms).
    pub poll_interval: Duration,
    /// How often the shard list is refreshed besides after a SHARD_END.
    pub shard_refresh_interval: Duration,
    /// Consecutive transient failures (5xx, network) tolerated per shard.
    pub max_retries: u32,
}

fn option_err(option: &str, value: &str, why: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Plan(format!(
        "connector '{CONNECTOR}': option '{option}' = '{value}' is invalid: {why}"
    ))
}

/// Reads `'input_schema'` / `'input_schema_file'`.
pub(crate) fn input_schema_option(
    connector: &str,
    inline: Option<String>,
    file: Option<String>,
) -> Result<Option<InputSchema>> {
    match (inline, file) {
        (Some(_), Some(f)) => Err(DataFusionError::Plan(format!(
            "connector '{connector}': option 'input_schema_file' = '{f}' is invalid: give either \
             'input_schema' or 'input_schema_file', not both"
        ))),
        (Some(text), None) => Ok(Some(InputSchema::from_json(&text).map_err(|e| {
            DataFusionError::Plan(format!(
                "connector '{connector}': option 'input_schema': {}",
                e.message()
            ))
        })?)),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f.trim()).map_err(|e| {
                DataFusionError::Plan(format!(
                    "connector '{connector}': option 'input_schema_file' = '{f}' is invalid: \
                     cannot read it: {e}"
                ))
            })?;
            Ok(Some(InputSchema::from_json(&text).map_err(|e| {
                DataFusionError::Plan(format!(
                    "connector '{connector}': option 'input_schema_file' = '{f}': {}",
                    e.message()
                ))
            })?))
        }
        (None, None) => Ok(None),
    }
}

/// Reads `'format'` (+ `'delimiter'`) and the input schema options into a payload format.
pub(crate) fn payload_format(
    connector: &str,
    format: Option<String>,
    delimiter: Option<String>,
    input_schema: Option<InputSchema>,
) -> Result<PayloadFormat> {
    let err = |option: &str, value: &str, why: &str| {
        DataFusionError::Plan(format!(
            "connector '{connector}': option '{option}' = '{value}' is invalid: {why}"
        ))
    };
    let name = format.as_deref().map(|f| f.trim().to_ascii_lowercase());
    if let Some(schema) = input_schema {
        let kind = schema.format_type();
        if let Some(n) = &name {
            let agrees = match n.as_str() {
                "json" => kind == crate::kda::RecordFormatType::Json,
                "csv" => kind == crate::kda::RecordFormatType::Csv,
                _ => false,
            };
            if !agrees {
                return Err(err(
                    "format",
                    n,
                    &format!("the input schema's RecordFormatType is {kind}"),
                ));
            }
        }
        if let Some(d) = &delimiter {
            return Err(err(
                "delimiter",
                d,
                "with an input schema the delimiters come from its CSVMappingParameters",
            ));
        }
        return Ok(PayloadFormat::Kda(Box::new(schema)));
    }
    match name.as_deref().unwrap_or("json") {
        "json" => {
            if let Some(d) = &delimiter {
                return Err(err("delimiter", d, "only applies to 'format' = 'csv'"));
            }
            Ok(PayloadFormat::Json)
        }
        "csv" => {
            let delimiter = match delimiter.as_deref() {
                None => b',',
                Some("\\t") | Some("tab") | Some("\t") => b'\t',
                Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                Some(d) => {
                    return Err(err(
                        "delimiter",
                        d,
                        "the delimiter must be one ASCII character (or '\\t')",
                    ))
                }
            };
            Ok(PayloadFormat::Csv { delimiter })
        }
        other => Err(err("format", other, "use 'json' or 'csv'")),
    }
}

/// `'region'` (else `AWS_REGION` / `AWS_DEFAULT_REGION`) and `'endpoint'`.
pub(crate) fn client_config(
    connector: &str,
    region: Option<String>,
    endpoint: Option<String>,
) -> Result<ClientConfig> {
    let Some(region) = region
        .filter(|r| !r.trim().is_empty())
        .or_else(ClientConfig::region_from_env)
    else {
        return plan_err!(
            "connector '{connector}': option 'region' is required (or set AWS_REGION / \
             AWS_DEFAULT_REGION)"
        );
    };
    let mut config = ClientConfig::new(region.trim());
    if let Some(e) = endpoint {
        if e.trim().is_empty() {
            return plan_err!("connector '{connector}': option 'endpoint' is empty");
        }
        config = config.with_endpoint(e.trim());
    }
    Ok(config)
}

impl KinesisSourceConfig {
    /// Reads the options (and rejects unknown ones).
    pub fn from_options(options: &mut ConnectorOptions) -> Result<Self> {
        let Some(stream) = options.take("stream").filter(|s| !s.trim().is_empty()) else {
            return plan_err!(
                "connector '{CONNECTOR}': option 'stream' is required (the Kinesis stream name or ARN)"
            );
        };
        let region = options.take("region");
        let endpoint = options.take("endpoint");
        let position = options.take("starting_position");
        let timestamp = options.take("starting_timestamp");
        let sequence_numbers = options.take("starting_sequence_numbers");
        let format = options.take("format");
        let delimiter = options.take("delimiter");
        let inline = options.take("input_schema");
        let schema_file = options.take("input_schema_file");
        let parallelism = options.take_parsed::<usize>("parallelism")?;
        let max_records = options
            .take_parsed::<usize>("max_records")?
            .unwrap_or(10_000);
        let poll_interval = options
            .take_duration("poll_interval")?
            .unwrap_or(Duration::from_secs(1));
        let shard_refresh_interval = options
            .take_duration("shard_refresh_interval")?
            .unwrap_or(Duration::from_secs(10));
        let max_retries = options.take_parsed::<u32>("max_retries")?.unwrap_or(10);
        options.finish(OPTIONS)?;

        let client = client_config(CONNECTOR, region, endpoint)?;
        let input_schema = input_schema_option(CONNECTOR, inline, schema_file)?;
        let format = payload_format(CONNECTOR, format, delimiter, input_schema)?;
        let position_name = position
            .as_deref()
            .map(|p| p.trim().to_ascii_uppercase())
            .unwrap_or_else(|| "LATEST".to_string());
        let starting_position = match position_name.as_str() {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" | "NOW" => StartingPosition::Latest,
            "AT_TIMESTAMP" => {
                let Some(t) = &timestamp else {
                    return plan_err!(
                        "connector '{CONNECTOR}': 'starting_position' = 'AT_TIMESTAMP' needs option \
                         'starting_timestamp' (epoch milliseconds or 'yyyy-MM-dd HH:mm:ss[.SSS]' UTC)"
                    );
                };
                let t = t.trim();
                let ms = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    t.parse::<Millis>().ok()
                } else {
                    crate::kda::coerce::parse_timestamp(t)
                };
                StartingPosition::AtTimestamp(ms.ok_or_else(|| {
                    option_err(
                        "starting_timestamp",
                        t,
                        "use epoch milliseconds or 'yyyy-MM-dd HH:mm:ss[.SSS]' (UTC)",
                    )
                })?)
            }
            "AFTER_SEQUENCE_NUMBER" => {
                let Some(list) = &sequence_numbers else {
                    return plan_err!(
                        "connector '{CONNECTOR}': 'starting_position' = 'AFTER_SEQUENCE_NUMBER' needs \
                         option 'starting_sequence_numbers' ('shardId-000000000000:4959…,…')"
                    );
                };
                let mut map = BTreeMap::new();
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match part.split_once(':') {
                        Some((shard, seq))
                            if !shard.trim().is_empty()
                                && !seq.trim().is_empty()
                                && seq.trim().bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            map.insert(shard.trim().to_string(), seq.trim().to_string());
                        }
                        _ => {
                            return Err(option_err(
                                "starting_sequence_numbers",
                                list,
                                format!("'{part}' is not 'shardId:sequenceNumber'"),
                            ))
                        }
                    }
                }
                if map.is_empty() {
                    return Err(option_err(
                        "starting_sequence_numbers",
                        list,
                        "no shard is named",
                    ));
                }
                StartingPosition::AfterSequenceNumbers(map)
            }
            _ => {
                return Err(option_err(
                    "starting_position",
                    position.as_deref().unwrap_or_default(),
                    "use 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP' or 'AFTER_SEQUENCE_NUMBER'",
                ))
            }
        };
        if timestamp.is_some() && !matches!(starting_position, StartingPosition::AtTimestamp(_)) {
            return Err(option_err(
                "starting_timestamp",
                timestamp.as_deref().unwrap_or_default(),
                "only applies to 'starting_position' = 'AT_TIMESTAMP'",
            ));
        }
        if sequence_numbers.is_some()
            && !matches!(starting_position, StartingPosition::AfterSequenceNumbers(_))
        {
            return Err(option_err(
                "starting_sequence_numbers",
                sequence_numbers.as_deref().unwrap_or_default(),
                "only applies to 'starting_position' = 'AFTER_SEQUENCE_NUMBER'",
            ));
        }
        if parallelism == Some(0) {
            return Err(option_err("parallelism", "0", "must be at least 1"));
        }
        if !(1..=10_000).contains(&max_records) {
            return Err(option_err(
                "max_records",
                &max_records.to_string(),
                "GetRecords takes 1 to 10000 records",
            ));
        }
        Ok(Self {
            stream: stream.trim().to_string(),
            client,
            starting_position,
            format,
            parallelism,
            max_records,
            poll_interval: poll_interval.max(MIN_GET_RECORDS_INTERVAL),
            shard_refresh_interval,
            max_retries,
        })
    }
}

/// Counters and gauges of a Kinesis source (all its partitions and runs).
#[derive(Debug, Default)]
pub struct KinesisMetrics {
    /// GetRecords calls made.
    pub get_records_calls: AtomicU64,
    /// Kinesis records read.
    pub records: AtomicU64,
    /// User records in KPL aggregated records.
    pub user_records: AtomicU64,
    /// Rows produced.
    pub rows: AtomicU64,
    /// Records sent to the error sink.
    pub rejected_records: AtomicU64,
    /// Throttled calls (backed off and retried).
    pub throttled: AtomicU64,
    /// Expired shard iterators (re-acquired).
    pub expired_iterators: AtomicU64,
    /// Transient failures (retried).
    pub transient_failures: AtomicU64,
    /// Shards read to SHARD_END.
    pub shards_finished: AtomicU64,
    behind: Mutex<HashMap<String, i64>>,
}

impl KinesisMetrics {
    /// The largest `MillisBehindLatest` over the shards being read (`None` before the first
    /// answer).
    pub fn millis_behind_latest(&self) -> Option<i64> {
        lock(&self.behind).values().copied().max()
    }

    /// `MillisBehindLatest` per shard being read.
    pub fn millis_behind_latest_per_shard(&self) -> BTreeMap<String, i64> {
        lock(&self.behind)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    fn set_behind(&self, shard: &str, ms: Option<i64>) {
        let mut m = lock(&self.behind);
        match ms {
            Some(v) => {
                m.insert(shard.to_string(), v);
            }
            None => {
                m.remove(shard);
            }
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ShardState {
    Waiting,
    Ready(StartPosition),
    Reading,
    Finished,
}

#[derive(Debug)]
struct Tracked {
    info: ShardInfo,
    state: ShardState,
    owner: Option<usize>,
}

/// Which partition reads which shard, and when; see the module docs.
#[derive(Debug)]
struct Coordinator {
    partitions: usize,
    start: StartingPosition,
    initialized: bool,
    shards: BTreeMap<String, Tracked>,
    next_owner: usize,
}

impl Coordinator {
    fn new(partitions: usize, start: StartingPosition) -> Self {
        Self {
            partitions,
            start,
            initialized: false,
            shards: BTreeMap::new(),
            next_owner: 0,
        }
    }

    fn round_robin(&mut self) -> usize {
        let p = self.next_owner % self.partitions;
        self.next_owner += 1;
        p
    }

    fn apply_listing(&mut self, listing: Vec<ShardInfo>) {
        for s in listing {
            match self.shards.get_mut(&s.shard_id) {
                Some(t) => t.info = s,
                None => {
                    self.shards.insert(
                        s.shard_id.clone(),
                        Tracked {
                            info: s,
                            state: ShardState::Waiting,
                            owner: None,
                        },
                    );
                }
            }
        }
        if !self.initialized {
            self.initialized = true;
            self.initialize();
        }
        self.resolve();
    }

    fn initialize(&mut self) {
        match self.start.clone() {
            StartingPosition::Latest => {
                let ids: Vec<String> = self.shards.keys().cloned().collect();
                for id in ids {
                    let open = self.shards.get(&id).is_some_and(|t| t.info.is_open());
                    let owner = open.then(|| self.round_robin());
                    if let Some(t) = self.shards.get_mut(&id) {
                        if open {
                            t.state = ShardState::Ready(StartPosition::Latest);
                            t.owner = owner;
                        } else {
                            t.state = ShardState::Finished;
                        }
                    }
                }
            }
            StartingPosition::AfterSequenceNumbers(map) => {
                let mut done = HashSet::new();
                let mut stack: Vec<String> = Vec::new();
                for id in map.keys() {
                    if let Some(t) = self.shards.get(id) {
                        stack.extend(t.info.parents().cloned());
                    }
                }
                while let Some(id) = stack.pop() {
                    if done.insert(id.clone()) {
                        if let Some(t) = self.shards.get(&id) {
                            stack.extend(t.info.parents().cloned());
                        }
                    }
                }
                for id in done {
                    if let Some(t) = self.shards.get_mut(&id) {
                        t.state = ShardState::Finished;
                    }
                }
                for (id, seq) in map {
                    if self.shards.contains_key(&id) {
                        let owner = self.round_robin();
                        if let Some(t) = self.shards.get_mut(&id) {
                            t.state = ShardState::Ready(StartPosition::AfterSequenceNumber(seq));
                            t.owner = Some(owner);
                        }
                    }
                }
            }
            // Roots first, children after their parents: `resolve` does it.
            StartingPosition::TrimHorizon | StartingPosition::AtTimestamp(_) => {}
        }
    }

    /// Where a shard that becomes readable after its parents starts.
    fn child_start(&self) -> StartPosition {
        match self.start {
            StartingPosition::AtTimestamp(t) => StartPosition::AtTimestamp(t),
            _ => StartPosition::TrimHorizon,
        }
    }

    /// Makes every waiting shard whose known parents are finished ready.
    fn resolve(&mut self) {
        loop {
            let mut ready = Vec::new();
            for (id, t) in &self.shards {
                if t.state != ShardState::Waiting {
                    continue;
                }
                let mut parents_done = true;
                let mut inherited = None;
                for p in t.info.parents() {
                    if let Some(pt) = self.shards.get(p) {
                        if pt.state != ShardState::Finished {
                            parents_done = false;
                        }
                        inherited = inherited.or(pt.owner);
                    }
                }
                if parents_done {
                    ready.push((id.clone(), inherited));
                }
            }
            if ready.is_empty() {
                return;
            }
            let start = self.child_start();
            for (id, inherited) in ready {
                let owner = match inherited {
                    Some(o) => o,
                    None => self.round_robin(),
                };
                if let Some(t) = self.shards.get_mut(&id) {
                    t.state = ShardState::Ready(start.clone());
                    t.owner = Some(owner);
                }
            }
        }
    }

    fn take_ready(&mut self, partition: usize) -> Vec<(String, StartPosition)> {
        let mut out = Vec::new();
        for (id, t) in self.shards.iter_mut() {
            if t.owner == Some(partition) {
                if let ShardState::Ready(start) = &t.state {
                    out.push((id.clone(), start.clone()));
                    t.state = ShardState::Reading;
                }
            }
        }
        out
    }

    fn finish(&mut self, shard: &str) {
        if let Some(t) = self.shards.get_mut(shard) {
            t.state = ShardState::Finished;
        }
        self.resolve();
    }
}

/// What the partitions of one run share.
#[derive(Debug)]
struct Shared {
    client: KinesisClient,
    coordinator: Mutex<Coordinator>,
}

#[derive(Debug)]
struct Generation {
    shared: Weak<Shared>,
    opened: Vec<bool>,
}

/// A Kinesis stream as a [`StreamSource`]; see the module docs.
#[derive(Debug)]
pub struct KinesisSource {
    stream_name: String,
    config: Arc<KinesisSourceConfig>,
    plan: Arc<DecodePlan>,
    partitions: usize,
    metrics: Arc<KinesisMetrics>,
    generations: Mutex<Vec<Generation>>,
}

impl KinesisSource {
    /// A source for SQL stream `stream_name` with the declared columns `schema`. Checks that
    /// the Kinesis stream exists (one `ListShards`), and without `'parallelism'` takes one
    /// partition per open shard.
    pub fn try_new(
        stream_name: &str,
        schema: SchemaRef,
        config: KinesisSourceConfig,
    ) -> Result<Self> {
        let plan = Arc::new(DecodePlan::try_new(
            stream_name,
            schema,
            config.format.clone(),
        )?);
        let shards = probe(&config)?;
        let partitions = match config.parallelism {
            Some(p) => p,
            None => shards.iter().filter(|s| s.is_open()).count().max(1),
        };
        Ok(Self {
            stream_name: stream_name.to_string(),
            config: Arc::new(config),
            plan,
            partitions,
            metrics: Arc::new(KinesisMetrics::default()),
            generations: Mutex::new(Vec::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KinesisSourceConfig {
        &self.config
    }

    /// Counters and `MillisBehindLatest`.
    pub fn metrics(&self) -> &Arc<KinesisMetrics> {
        &self.metrics
    }

    /// The run state partition `partition` joins: the oldest live run it is not part of yet.
    fn shared_for(&self, partition: usize) -> Result<Arc<Shared>> {
        let mut gens = lock(&self.generations);
        gens.retain(|g| g.shared.strong_count() > 0);
        for g in gens.iter_mut() {
            if !g.opened[partition] {
                if let Some(s) = g.shared.upgrade() {
                    g.opened[partition] = true;
                    return Ok(s);
                }
            }
        }
        let shared = Arc::new(Shared {
            client: KinesisClient::try_new(&self.config.client)?,
            coordinator: Mutex::new(Coordinator::new(
                self.partitions,
                self.config.starting_position.clone(),
            )),
        });
        let mut opened = vec![false; self.partitions];
        opened[partition] = true;
        gens.push(Generation {
            shared: Arc::downgrade(&shared),
            opened,
        });
        Ok(shared)
    }
}

/// Lists the shards once at CREATE STREAM, on a thread of its own (the factory is not async).
fn probe(config: &KinesisSourceConfig) -> Result<Vec<ShardInfo>> {
    let client_config = config.client.clone();
    let stream = config.stream.clone();
    let handle = std::thread::Builder::new()
        .name("kinesis-probe".into())
        .spawn(move || -> Result<Vec<ShardInfo>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    DataFusionError::Execution(format!("Kinesis: cannot start a runtime: {e}"))
                })?;
            rt.block_on(async {
                let client = KinesisClient::try_new(&client_config)?;
                client
                    .list_shards(&stream)
                    .await
                    .map_err(|e| describe_failure(&stream, &client, e))
            })
        })
        .map_err(|e| DataFusionError::Execution(format!("Kinesis: cannot start a thread: {e}")))?;
    handle.join().map_err(|_| {
        DataFusionError::Execution("Kinesis: the shard listing thread panicked".into())
    })?
}

fn describe_failure(stream: &str, client: &KinesisClient, e: KinesisError) -> DataFusionError {
    let why = match e.kind {
        ErrorKind::NotFound => format!(
            "Kinesis stream '{stream}' does not exist at {} ({})",
            client.endpoint(),
            e.message
        ),
        ErrorKind::Transient => format!(
            "cannot reach the Kinesis endpoint {} for stream '{stream}': {e}",
            client.endpoint()
        ),
        _ => format!("Kinesis stream '{stream}' at {}: {e}", client.endpoint()),
    };
    DataFusionError::Plan(format!("connector '{CONNECTOR}': {why}"))
}

/// Aborts the partition task when the stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl StreamSource for KinesisSource {
    fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    fn partition_count(&self) -> usize {
        self.partitions
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        RowtimeMode::Ingest
    }

    fn open(
        &self,
        partition: usize,
        ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        if partition >= self.partitions {
            return exec_err!(
                "stream '{}': Kinesis source has {} partitions; partition {partition} does not exist",
                self.stream_name,
                self.partitions
            );
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            DataFusionError::Execution(format!(
                "stream '{}': the Kinesis source needs a tokio runtime",
                self.stream_name
            ))
        })?;
        let shared = self.shared_for(partition)?;
        let (tx, rx) = mpsc::channel::<Result<SourceEvent>>(2);
        let reader = PartitionReader {
            partition,
            stream_name: self.stream_name.clone(),
            config: Arc::clone(&self.config),
            shared,
            decoder: self.plan.decoder()?,
            metrics: Arc::clone(&self.metrics),
            ctx: ctx.clone(),
            tx,
            readers: Vec::new(),
        };
        let task = runtime.spawn(reader.run());
        let guard = AbortOnDrop(task);
        Ok(
            futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
                rx.recv().await.map(|item| (item, (rx, guard)))
            })
            .boxed(),
        )
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One shard being read by a partition.
#[derive(Debug)]
struct ShardReader {
    shard_id: Arc<str>,
    start: StartPosition,
    iterator: Option<String>,
    last_sequence: Option<String>,
    next_poll: Instant,
    backoff: Duration,
    failures: u32,
    caught_up: bool,
}

impl ShardReader {
    fn new(shard_id: String, start: StartPosition) -> Self {
        Self {
            shard_id: Arc::from(shard_id),
            start,
            iterator: None,
            last_sequence: None,
            next_poll: Instant::now(),
            backoff: BACKOFF_START,
            failures: 0,
            caught_up: false,
        }
    }

    /// Where a new iterator starts: after the last processed record, else the start.
    fn resume_position(&self) -> StartPosition {
        match &self.last_sequence {
            Some(s) => StartPosition::AfterSequenceNumber(s.clone()),
            None => self.start.clone(),
        }
    }

    fn back_off(&mut self) {
        self.next_poll = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// What a failed call means for the partition.
enum Reaction {
    Retry,
    Fail(DataFusionError),
}

/// The task of one partition; see the module docs.
struct PartitionReader {
    partition: usize,
    stream_name: String,
    config: Arc<KinesisSourceConfig>,
    shared: Arc<Shared>,
    decoder: BatchDecoder,
    metrics: Arc<KinesisMetrics>,
    ctx: SourceContext,
    tx: mpsc::Sender<Result<SourceEvent>>,
    readers: Vec<ShardReader>,
}

impl PartitionReader {
    async fn run(mut self) {
        let tx = self.tx.clone();
        if let Err(e) = self.read().await {
            let _ = tx.send(Err(e)).await;
        }
    }

    fn fail(&self, shard: Option<&str>, e: &KinesisError) -> DataFusionError {
        let at = match shard {
            Some(s) => format!(" shard {s}"),
            None => String::new(),
        };
        DataFusionError::Execution(format!(
            "stream '{}': Kinesis stream '{}'{at} at {}: {e}",
            self.stream_name,
            self.config.stream,
            self.shared.client.endpoint()
        ))
    }

    /// Sends an event; false when the query is gone.
    async fn send(&self, event: SourceEvent) -> bool {
        self.tx.send(Ok(event)).await.is_ok()
    }

    async fn read(&mut self) -> Result<()> {
        let mut need_listing = true;
        let mut last_listing = Instant::now();
        let mut listing_failures = 0u32;
        let mut idle_sent = false;
        loop {
            if need_listing || last_listing.elapsed() >= self.config.shard_refresh_interval {
                match self.shared.client.list_shards(&self.config.stream).await {
                    Ok(listing) => {
                        lock(&self.shared.coordinator).apply_listing(listing);
                        listing_failures = 0;
                        need_listing = false;
                        last_listing = Instant::now();
                    }
                    Err(e)
                        if matches!(e.kind, ErrorKind::Throttled | ErrorKind::Transient)
                            && listing_failures < self.config.max_retries =>
                    {
                        listing_failures += 1;
                        KinesisMetrics::add(&self.metrics.transient_failures, 1);
                        tokio::time::sleep(BACKOFF_START * listing_failures).await;
                        continue;
                    }
                    Err(e) => return Err(self.fail(None, &e)),
                }
            }
            let ready = lock(&self.shared.coordinator).take_ready(self.partition);
            for (id, start) in ready {
                self.readers.push(ShardReader::new(id, start));
            }
            if self.readers.is_empty() {
                if !idle_sent {
                    if !self.send(SourceEvent::Idle).await {
                        return Ok(());
                    }
                    idle_sent = true;
                }
                // Another partition may finish a parent and hand this one its child.
                tokio::time::sleep(self.config.poll_interval.min(Duration::from_millis(500))).await;
                if self.tx.is_closed() {
                    return Ok(());
                }
                continue;
            }
            let Some(i) = (0..self.readers.len()).min_by_key(|i| self.readers[*i].next_poll) else {
                continue;
            };
            tokio::time::sleep_until(self.readers[i].next_poll).await;
            if self.tx.is_closed() {
                return Ok(());
            }
            match self.poll_shard(i).await? {
                Polled::Data(batch_sent) => {
                    if batch_sent {
                        idle_sent = false;
                    } else if !idle_sent && self.readers.iter().all(|r| r.caught_up) {
                        if !self.send(SourceEvent::Idle).await {
                            return Ok(());
                        }
                        idle_sent = true;
                    }
                }
                Polled::ShardEnd(batch_sent) => {
                    if batch_sent {
                        idle_sent = false;
                    }
                    need_listing = true;
                }
                Polled::Retry => {}
                Polled::Closed => return Ok(()),
            }
        }
    }

    fn react(&mut self, i: usize, e: &KinesisError) -> Reaction {
        let shard = self.readers[i].shard_id.clone();
        match e.kind {
            ErrorKind::Throttled => {
                KinesisMetrics::add(&self.metrics.throttled, 1);
                self.readers[i].back_off();
                Reaction::Retry
            }
            ErrorKind::ExpiredIterator => {
                KinesisMetrics::add(&self.metrics.expired_iterators, 1);
                let r = &mut self.readers[i];
                r.iterator = None;
                r.next_poll = Instant::now() + MIN_GET_RECORDS_INTERVAL;
                Reaction::Retry
            }
            ErrorKind::Transient => {
                KinesisMetrics::add(&self.metrics.transient_failures, 1);
                let r = &mut self.readers[i];
                r.failures += 1;
                if r.failures > self.config.max_retries {
                    return Reaction::Fail(self.fail(
                        Some(&shard),
                        &KinesisError {
                            message: format!(
                                "{} (gave up after {} attempts in a row)",
                                e.message, self.config.max_retries
                            ),
                            ..e.clone()
                        },
                    ));
                }
                r.back_off();
                Reaction::Retry
            }
            ErrorKind::NotFound | ErrorKind::Other => Reaction::Fail(self.fail(Some(&shard), e)),
        }
    }

    async fn poll_shard(&mut self, i: usize) -> Result<Polled> {
        let shard = Arc::clone(&self.readers[i].shard_id);
        if self.readers[i].iterator.is_none() {
            let position = match self.readers[i].resume_position() {
                // Re-acquired before any record: LATEST would skip what arrived meanwhile.
                StartPosition::Latest if self.readers[i].last_sequence.is_none() => {
                    let t = now_millis();
                    self.readers[i].start = StartPosition::AtTimestamp(t);
                    StartPosition::Latest
                }
                p => p,
            };
            match self
                .shared
                .client
                .get_shard_iterator(&self.config.stream, &shard, &position)
                .await
            {
                Ok(it) => self.readers[i].iterator = Some(it),
                Err(e) => {
                    return match self.react(i, &e) {
                        Reaction::Retry => Ok(Polled::Retry),
                        Reaction::Fail(err) => Err(err),
                    }
                }
            }
        }
        let Some(iterator) = self.readers[i].iterator.clone() else {
            return Ok(Polled::Retry);
        };
        let called = Instant::now();
        KinesisMetrics::add(&self.metrics.get_records_calls, 1);
        let out = match self
            .shared
            .client
            .get_records(&iterator, self.config.max_records)
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match self.react(i, &e) {
                    Reaction::Retry => Ok(Polled::Retry),
                    Reaction::Fail(err) => Err(err),
                }
            }
        };
        let n = out.records.len();
        KinesisMetrics::add(&self.metrics.records, n as u64);
        let now = self.ctx.clock.now();
        let errors = Arc::clone(&self.ctx.errors);
        let mut last = None;
        for record in out.records {
            let seq: Arc<str> = Arc::from(record.sequence_number.as_str());
            if kpl::is_aggregated(&record.data) {
                match kpl::deaggregate(&record.data) {
                    Ok(users) => {
                        KinesisMetrics::add(&self.metrics.user_records, users.len() as u64);
                        for (sub, u) in users.into_iter().enumerate() {
                            self.decoder.push(UserRow {
                                shard_id: Arc::clone(&shard),
                                sequence_number: Arc::clone(&seq),
                                sub_sequence_number: Some(sub as u64),
                                partition_key: u.partition_key,
                                arrival: record.approximate_arrival,
                                data: u.data,
                            });
                        }
                    }
                    Err(why) => {
                        KinesisMetrics::add(&self.metrics.rejected_records, 1);
                        errors.report(datafusion_stream::errors::ErrorRecord::error(
                            now,
                            super::decode::PARSE_ERROR,
                            format!(
                                "stream '{}': shard {shard} sequence number {seq}: {why}",
                                self.stream_name
                            ),
                            Some(now),
                            record.data,
                        ))?;
                    }
                }
            } else {
                self.decoder.push(UserRow {
                    shard_id: Arc::clone(&shard),
                    sequence_number: Arc::clone(&seq),
                    sub_sequence_number: None,
                    partition_key: record.partition_key,
                    arrival: record.approximate_arrival,
                    data: record.data,
                });
            }
            last = Some(record.sequence_number);
        }
        let counting = CountingSink {
            inner: errors.as_ref(),
            count: AtomicU64::new(0),
        };
        let batch = self.decoder.finish(now, &counting)?;
        KinesisMetrics::add(
            &self.metrics.rejected_records,
            counting.count.load(Ordering::Relaxed),
        );
        let mut sent = false;
        if let Some(batch) = batch {
            KinesisMetrics::add(&self.metrics.rows, batch.num_rows() as u64);
            if !self
                .send(SourceEvent::Data {
                    batch,
                    rowtime: None,
                })
                .await
            {
                return Ok(Polled::Closed);
            }
            sent = true;
        }
        let r = &mut self.readers[i];
        if let Some(seq) = last {
            r.last_sequence = Some(seq);
        }
        r.failures = 0;
        r.backoff = BACKOFF_START;
        r.caught_up = n == 0 || out.millis_behind_latest == Some(0);
        match out.next_iterator {
            Some(next) => {
                r.iterator = Some(next);
                r.next_poll = called
                    + if r.caught_up {
                        self.config.poll_interval
                    } else {
                        MIN_GET_RECORDS_INTERVAL
                    };
                self.metrics.set_behind(&shard, out.millis_behind_latest);
                Ok(Polled::Data(sent))
            }
            None => {
                // SHARD_END: every record of the shard was read; its children may start.
                self.readers.remove(i);
                self.metrics.set_behind(&shard, None);
                KinesisMetrics::add(&self.metrics.shards_finished, 1);
                lock(&self.shared.coordinator).finish(&shard);
                Ok(Polled::ShardEnd(sent))
            }
        }
    }
}

enum Polled {
    Data(bool),
    ShardEnd(bool),
    Retry,
    Closed,
}

/// Counts the records reported through it.
#[derive(Debug)]
struct CountingSink<'a> {
    inner: &'a dyn datafusion_stream::errors::ErrorSink,
    count: AtomicU64,
}

impl datafusion_stream::errors::ErrorSink for CountingSink<'_> {
    fn report(&self, record: datafusion_stream::errors::ErrorRecord) -> Result<()> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.report(record)
    }
}

/// Creates [`KinesisSource`]s for `CREATE STREAM ... WITH ('connector' = 'kinesis', ...)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KinesisFactory;

impl SourceFactory for KinesisFactory {
    fn create(
        &self,
        stream_name: &str,
        schema: SchemaRef,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSource>> {
        let config = KinesisSourceConfig::from_options(options)?;
        Ok(Arc::new(KinesisSource::try_new(
            stream_name,
            schema,
            config,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, adjacent: Option<&str>, open: bool) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parent: parent.map(Into::into),
            adjacent_parent: adjacent.map(Into::into),
            starting_hash_key: "0".into(),
            ending_hash_key: "1".into(),
            ending_sequence_number: (!open).then(|| "9".to_string()),
        }
    }

    fn ids(v: &[(String, StartPosition)]) -> Vec<&str> {
        v.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn children_wait_for_every_parent_and_inherit_the_partition() {
        let mut c = Coordinator::new(2, StartingPosition::TrimHorizon);
        // 0 and 1 are roots; 2, 3 split from 0; 4 merged from 3 and 1.
        c.apply_listing(vec![
            shard("s0", None, None, false),
            shard("s1", None, None, false),
            shard("s2", Some("s0"), None, true),
            shard("s3", Some("s0"), None, false),
            shard("s4", Some("s3"), Some("s1"), true),
        ]);
        assert_eq!(ids(&c.take_ready(0)), vec!["s0"]);
        assert_eq!(ids(&c.take_ready(1)), vec!["s1"]);
        c.finish("s0");
        assert_eq!(ids(&c.take_ready(0)), vec!["s2", "s3"]);
        assert!(c.take_ready(1).is_empty());
        c.finish("s3");
        assert!(c.take_ready(0).is_empty(), "s4 still waits for s1");
        c.finish("s1");
        let r = c.take_ready(0);
        assert_eq!(ids(&r), vec!["s4"]);
        assert_eq!(r[0].1, StartPosition::TrimHorizon);
    }

    #[test]
    fn latest_reads_only_open_shards_and_resume_skips_ancestors() {
        let listing = vec![
            shard("s0", None, None, false),
            shard("s1", Some("s0"), None, true),
            shard("s2", Some("s0"), None, true),
        ];
        let mut c = Coordinator::new(2, StartingPosition::Latest);
        c.apply_listing(listing.clone());
        assert_eq!(ids(&c.take_ready(0)), vec!["s1"]);
        assert_eq!(ids(&c.take_ready(1)), vec!["s2"]);

        let map = BTreeMap::from([("s1".to_string(), "42".to_string())]);
        let mut c = Coordinator::new(1, StartingPosition::AfterSequenceNumbers(map));
        c.apply_listing(listing);
        let r = c.take_ready(0);
        assert_eq!(
            r,
            vec![
                (
                    "s1".to_string(),
                    StartPosition::AfterSequenceNumber("42".into())
                ),
                ("s2".to_string(), StartPosition::TrimHorizon)
            ]
        );
    }

    #[test]
    fn rejects_unknown_and_bad_options_by_name() {
        let opts = |pairs: &[(&str, &str)]| {
            ConnectorOptions::new(
                CONNECTOR,
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let err = |pairs: &[(&str, &str)]| {
            KinesisSourceConfig::from_options(&mut opts(pairs))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("stream", "s"), ("region", "r"), ("shards", "2")]);
        assert!(e.contains("unknown option(s) 'shards'"), "{e}");
        let e = err(&[("region", "r")]);
        assert!(e.contains("option 'stream' is required"), "{e}");
        let e = err(&[
            ("stream", "s"),
            ("region", "r"),
            ("starting_position", "EARLIEST"),
        ]);
        assert!(e.contains("'starting_position' = 'EARLIEST'"), "{e}");
        let e = err(&[
            ("stream", "s"),
            ("region", "r"),
            ("starting_position", "AT_TIMESTAMP"),
        ]);
        assert!(e.contains("needs option 'starting_timestamp'"), "{e}");
        let e = err(&[("stream", "s"), ("region", "r"), ("format", "avro")]);
        assert!(e.contains("'format' = 'avro'"), "{e}");
        let e = err(&[("stream", "s"), ("region", "r"), ("max_records", "20000")]);
        assert!(e.contains("'max_records' = '20000'"), "{e}");
        let c = KinesisSourceConfig::from_options(&mut opts(&[
            ("stream", "s"),
            ("region", "eu-west-1"),
            ("starting_position", "at_timestamp"),
            ("starting_timestamp", "2024-01-02 03:04:05.006"),
            ("poll_interval", "10ms"),
        ]))
        .unwrap();
        assert_eq!(
            c.starting_position,
            StartingPosition::AtTimestamp(1_704_164_645_006)
        );
        assert_eq!(c.poll_interval, MIN_GET_RECORDS_INTERVAL);
        assert_eq!(c.client.region, "eu-west-1");
    }
}
