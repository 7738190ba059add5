//! A small Kinesis Data Streams client: the JSON 1.1 protocol over object_store's HTTP client,
//! signed with SigV4, credentials from the standard AWS chain.
//!
//! ```text
//!  call(action, JSON body)
//!     │  POST <endpoint>/  X-Amz-Target: Kinesis_20131202.<action>
//!     │  Content-Type: application/x-amz-json-1.1
//!     ▼
//!  Credentials::get ── env keys | shared credentials file | object_store's chain
//!     │                                          (web identity, ECS container, EC2 IMDS)
//!     ▼
//!  AwsAuthorizer (SigV4, service "kinesis") ──► HttpClient::execute ──► status + JSON body
//!     │
//!     ├─ 2xx            ──► serde_json::Value ──► typed outputs (ListShards, GetRecords, ...)
//!     └─ 4xx/5xx / I/O  ──► KinesisError { kind: Throttled | ExpiredIterator | NotFound |
//!                                          Transient | Other, code, message }
//! ```
//!
//! The client makes exactly one attempt per call: retrying (and backing off) is the caller's
//! decision, because a source and a sink react differently (a source keeps its shard iterator
//! on throttling and re-acquires one when it expired; a sink retries only failed records).
//! [`KinesisClient::call_with_retry`] is the plain policy for control calls.
//!
//! Secrets never appear in `Debug` output, errors or logs: errors carry the action, the
//! service's error code and message, and the endpoint, nothing else.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use datafusion::common::{DataFusionError, Result};
use datafusion_stream::Millis;
use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential, AwsCredentialProvider};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector,
};
use serde_json::{json, Value};

/// What kind of failure a call had (decides retrying).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ProvisionedThroughputExceededException`, `LimitExceededException`, throttling: retry
    /// later with the same arguments.
    Throttled,
    /// `ExpiredIteratorException`: get a new shard iterator.
    ExpiredIterator,
    /// `ResourceNotFoundException`: the stream (or shard) does not exist.
    NotFound,
    /// A 5xx answer or a network failure (connection refused, reset, timeout): retry.
    Transient,
    /// Anything else (bad request, access denied, ...): do not retry.
    Other,
}

/// A failed Kinesis call.
#[derive(Debug, Clone)]
pub struct KinesisError {
    /// How to react.
    pub kind: ErrorKind,
    /// The action, e.g. `GetRecords`.
    pub action: String,
    /// The service's error code (`__type` without its namespace), or `Http`/`Io`.
    pub code: String,
    /// The service's (or the transport's) message.
    pub message: String,
}

impl fmt::Display for KinesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kinesis {} failed: {}", self.action, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for KinesisError {}

impl From<KinesisError> for DataFusionError {
    fn from(e: KinesisError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl KinesisError {
    fn new(kind: ErrorKind, action: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            action: action.to_string(),
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// Kind of a service error code.
    pub fn kind_of(code: &str, status: u16) -> ErrorKind {
        match code {
            "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "KMSThrottlingException"
            | "RequestLimitExceeded" => ErrorKind::Throttled,
            "ExpiredIteratorException" => ErrorKind::ExpiredIterator,
            "ResourceNotFoundException" => ErrorKind::NotFound,
            "InternalFailure" | "ServiceUnavailable" | "InternalServerError" => {
                ErrorKind::Transient
            }
            _ if status >= 500 => ErrorKind::Transient,
            _ => ErrorKind::Other,
        }
    }
}

/// Where the client connects and how it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// AWS region (`us-east-1`).
    pub region: String,
    /// Endpoint URL override (`http://127.0.0.1:4567`); default
    /// `https://kinesis.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A config for `region`, with the endpoint from `AWS_ENDPOINT_URL_KINESIS` /
    /// `AWS_ENDPOINT_URL` if set.
    pub fn new(region: impl Into<String>) -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_KINESIS")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
            .filter(|e| !e.trim().is_empty());
        Self {
            region: region.into(),
            endpoint,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the endpoint.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region from `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub fn region_from_env() -> Option<String> {
        std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok()
            .filter(|r| !r.trim().is_empty())
    }
}

/// Where credentials come from (never printed).
enum Credentials {
    Static(Arc<AwsCredential>),
    Provider(AwsCredentialProvider),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Static(_) => f.write_str("Credentials::Static(******)"),
            Credentials::Provider(_) => f.write_str("Credentials::Provider(aws chain)"),
        }
    }
}

impl Credentials {
    /// The standard chain: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/
    /// `AWS_SESSION_TOKEN`); else the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
    /// `~/.aws/credentials`, profile `AWS_PROFILE` or `default`); else object_store's chain
    /// (web identity token, ECS container credentials, EC2 instance metadata).
    fn from_chain(region: &str) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(key_id), Some(secret_key)) =
            (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Credentials::Static(Arc::new(AwsCredential {
                key_id,
                secret_key,
                token: env("AWS_SESSION_TOKEN"),
            })));
        }
        let file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join("credentials")));
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        if let Some(file) = file {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Some(c) = profile_credentials(&text, &profile) {
                    return Ok(Credentials::Static(Arc::new(c)));
                }
            }
        }
        // object_store resolves web identity / container / instance metadata credentials; it
        // needs a bucket name to build, which is never used.
        let s3 = AmazonS3Builder::from_env()
            .with_region(region)
            .with_bucket_name("unused-kinesis-credentials")
            .build()
            .map_err(|e| {
                DataFusionError::Plan(format!(
                    "Kinesis: cannot set up AWS credentials (environment, shared credentials \
                     file, web identity, container or instance metadata): {e}"
                ))
            })?;
        Ok(Credentials::Provider(Arc::clone(s3.credentials())))
    }

    async fn get(&self, action: &str) -> std::result::Result<Arc<AwsCredential>, KinesisError> {
        match self {
            Credentials::Static(c) => Ok(Arc::clone(c)),
            Credentials::Provider(p) => p.get_credential().await.map_err(|e| {
                KinesisError::new(
                    ErrorKind::Other,
                    action,
                    "CredentialsError",
                    format!("no AWS credentials could be found: {e}"),
                )
            }),
        }
    }
}

/// Keys of `[profile]` in a shared credentials file.
fn profile_credentials(text: &str, profile: &str) -> Option<AwsCredential> {
    let mut in_profile = false;
    let (mut key_id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_profile = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => key_id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some(AwsCredential {
        key_id: key_id?,
        secret_key: secret?,
        token,
    })
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record kept.
    TrimHorizon,
    /// Only records written after the iterator is obtained.
    Latest,
    /// The first record at or after this time (epoch milliseconds).
    AtTimestamp(Millis),
    /// The record with this sequence number.
    AtSequenceNumber(String),
    /// The record after this sequence number.
    AfterSequenceNumber(String),
}

impl StartPosition {
    fn to_json(&self) -> Value {
        match self {
            StartPosition::TrimHorizon => json!({"ShardIteratorType": "TRIM_HORIZON"}),
            StartPosition::Latest => json!({"ShardIteratorType": "LATEST"}),
            StartPosition::AtTimestamp(t) => json!({
                "ShardIteratorType": "AT_TIMESTAMP",
                "Timestamp": (*t as f64) / 1000.0,
            }),
            StartPosition::AtSequenceNumber(s) => json!({
                "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                "StartingSequenceNumber": s,
            }),
            StartPosition::AfterSequenceNumber(s) => json!({
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": s,
            }),
        }
    }
}

/// One shard as `ListShards` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// `shardId-000000000000`.
    pub shard_id: String,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent: Option<String>,
    /// The second parent of a merged shard.
    pub adjacent_parent: Option<String>,
    /// First hash key (decimal).
    pub starting_hash_key: String,
    /// Last hash key (decimal).
    pub ending_hash_key: String,
    /// Set once the shard is closed (split or merged): no record is added after it.
    pub ending_sequence_number: Option<String>,
}

impl ShardInfo {
    /// True while records can still be written to the shard.
    pub fn is_open(&self) -> bool {
        self.ending_sequence_number.is_none()
    }

    /// The parents that are named.
    pub fn parents(&self) -> impl Iterator<Item = &String> {
        self.parent.iter().chain(self.adjacent_parent.iter())
    }
}

/// One record from `GetRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    /// The sequence number (decimal string, up to 128 bits).
    pub sequence_number: String,
    /// The partition key.
    pub partition_key: String,
    /// The payload.
    pub data: Vec<u8>,
    /// `ApproximateArrivalTimestamp`, epoch milliseconds.
    pub approximate_arrival: Option<Millis>,
}

/// The answer of `GetRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRecordsOutput {
    /// The records, in shard order.
    pub records: Vec<KinesisRecord>,
    /// The next iterator; `None` when the shard is closed and fully read (SHARD_END).
    pub next_iterator: Option<String>,
    /// How far the iterator is behind the tip of the shard.
    pub millis_behind_latest: Option<i64>,
}

/// One record for `PutRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    /// The partition key (1 to 256 characters).
    pub partition_key: String,
    /// The payload (up to 1 MiB with the key).
    pub data: Vec<u8>,
    /// Explicit hash key (decimal), to target a shard.
    pub explicit_hash_key: Option<String>,
}

/// The outcome of one `PutRecords` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutResult {
    /// Written.
    Ok {
        /// Its shard.
        shard_id: String,
        /// Its sequence number.
        sequence_number: String,
    },
    /// Not written.
    Failed {
        /// `ProvisionedThroughputExceededException` or `InternalFailure`.
        code: String,
        /// The service's message.
        message: String,
    },
}

/// Stream status and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`.
    pub status: String,
    /// Open shards.
    pub open_shards: usize,
}

/// How a stream is named in requests: a name, or an ARN.
fn stream_ref(stream: &str) -> (&'static str, Value) {
    if stream.starts_with("arn:") {
        ("StreamARN", json!(stream))
    } else {
        ("StreamName", json!(stream))
    }
}

fn with_stream(stream: &str, mut body: Value) -> Value {
    let (k, v) = stream_ref(stream);
    if let Some(o) = body.as_object_mut() {
        o.insert(k.to_string(), v);
    }
    body
}

/// A Kinesis Data Streams client; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct KinesisClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    endpoint: String,
    region: String,
    credentials: Credentials,
}

impl fmt::Debug for KinesisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KinesisClient")
            .field("endpoint", &self.inner.endpoint)
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(|s| s.as_str()).map(|s| s.to_string())
}

impl KinesisClient {
    /// A client for `config` with credentials from the standard chain (see [`Credentials`]).
    pub fn try_new(config: &ClientConfig) -> Result<Self> {
        let region = config.region.trim();
        if region.is_empty() {
            return datafusion::common::plan_err!("Kinesis: the region is empty");
        }
        let endpoint = match &config.endpoint {
            Some(e) => e.trim().trim_end_matches('/').to_string(),
            None => format!("https://kinesis.{region}.amazonaws.com"),
        };
        let uri: http::Uri = endpoint.parse().map_err(|e| {
            DataFusionError::Plan(format!("Kinesis: endpoint '{endpoint}' is not a URL: {e}"))
        })?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
            return datafusion::common::plan_err!(
                "Kinesis: endpoint '{endpoint}' must be an http:// or https:// URL with a host"
            );
        }
        let options = ClientOptions::new()
            .with_allow_http(true)
            .with_timeout(config.request_timeout)
            .with_connect_timeout(Duration::from_secs(5));
        let http = ReqwestConnector::default().connect(&options).map_err(|e| {
            DataFusionError::Plan(format!("Kinesis: cannot create the HTTP client: {e}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint: format!("{endpoint}/"),
                region: region.to_string(),
                credentials: Credentials::from_chain(region)?,
            }),
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// One call of `action` with a JSON body; the JSON answer, or the error.
    pub async fn call(
        &self,
        action: &str,
        body: &Value,
    ) -> std::result::Result<Value, KinesisError> {
        let credential = self.inner.credentials.get(action).await?;
        let payload = serde_json::to_vec(body).map_err(|e| {
            KinesisError::new(ErrorKind::Other, action, "Serialization", e.to_string())
        })?;
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(self.inner.endpoint.as_str())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Kinesis_20131202.{action}"))
            .body(HttpRequestBody::from(payload))
            .map_err(|e| KinesisError::new(ErrorKind::Other, action, "Request", e.to_string()))?;
        AwsAuthorizer::new(&credential, "kinesis", &self.inner.region)
            .authorize(&mut request, None);
        let response = self.inner.http.execute(request).await.map_err(|e| {
            KinesisError::new(
                ErrorKind::Transient,
                action,
                "Http",
                format!("{} ({e})", self.inner.endpoint),
            )
        })?;
        let status = response.status().as_u16();
        let bytes = response.into_body().bytes().await.map_err(|e| {
            KinesisError::new(
                ErrorKind::Transient,
                action,
                "Http",
                format!("reading the answer from {}: {e}", self.inner.endpoint),
            )
        })?;
        if (200..300).contains(&status) {
            if bytes.is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                KinesisError::new(
                    ErrorKind::Transient,
                    action,
                    "BadResponse",
                    format!("the answer is not JSON: {e}"),
                )
            });
        }
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = str_field(&parsed, "__type")
            .map(|t| t.rsplit('#').next().unwrap_or_default().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = str_field(&parsed, "message")
            .or_else(|| str_field(&parsed, "Message"))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
            });
        Err(KinesisError::new(
            KinesisError::kind_of(&code, status),
            action,
            &code,
            message,
        ))
    }

    /// [`Self::call`], retried with exponential backoff (100 ms doubling, up to 5 s) while it
    /// is throttled or fails transiently, at most `attempts` times.
    pub async fn call_with_retry(
        &self,
        action: &str,
        body: &Value,
        attempts: u32,
    ) -> std::result::Result<Value, KinesisError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.call(action, body).await {
                Err(e)
                    if attempt < attempts
                        && matches!(e.kind, ErrorKind::Throttled | ErrorKind::Transient) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Every shard of `stream` (`ListShards`, all pages).
    pub async fn list_shards(
        &self,
        stream: &str,
    ) -> std::result::Result<Vec<ShardInfo>, KinesisError> {
        let mut shards = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let body = match &next {
                Some(token) => json!({"NextToken": token}),
                None => with_stream(stream, json!({})),
            };
            let out = self.call_with_retry("ListShards", &body, 5).await?;
            if let Some(list) = out.get("Shards").and_then(|s| s.as_array()) {
                for s in list {
                    let range = |k: &str| {
                        s.get("HashKeyRange")
                            .and_then(|r| r.get(k))
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let Some(shard_id) = str_field(s, "ShardId") else {
                        continue;
                    };
                    shards.push(ShardInfo {
                        shard_id,
                        parent: str_field(s, "ParentShardId"),
                        adjacent_parent: str_field(s, "AdjacentParentShardId"),
                        starting_hash_key: range("StartingHashKey"),
                        ending_hash_key: range("EndingHashKey"),
                        ending_sequence_number: s
                            .get("SequenceNumberRange")
                            .and_then(|r| r.get("EndingSequenceNumber"))
                            .and_then(|v| v.as_str())
                            .map(|v| v.to_string()),
                    });
                }
            }
            next = str_field(&out, "NextToken");
            if next.is_none() {
                break;
            }
        }
        shards.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(shards)
    }

    /// A shard iterator (`GetShardIterator`), one attempt.
    pub async fn get_shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        position: &StartPosition,
    ) -> std::result::Result<String, KinesisError> {
        let mut body = position.to_json();
        if let Some(o) = body.as_object_mut() {
            o.insert("ShardId".to_string(), json!(shard_id));
        }
        let out = self
            .call("GetShardIterator", &with_stream(stream, body))
            .await?;
        str_field(&out, "ShardIterator").ok_or_else(|| {
            KinesisError::new(
                ErrorKind::Other,
                "GetShardIterator",
                "BadResponse",
                format!("no ShardIterator for shard {shard_id}"),
            )
        })
    }

    /// Records at `iterator` (`GetRecords`, at most `limit`), one attempt.
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> std::result::Result<GetRecordsOutput, KinesisError> {
        let out = self
            .call(
                "GetRecords",
                &json!({"ShardIterator": iterator, "Limit": limit}),
            )
            .await?;
        let mut records = Vec::new();
        if let Some(list) = out.get("Records").and_then(|r| r.as_array()) {
            records.reserve(list.len());
            for r in list {
                let data = match r.get("Data").and_then(|d| d.as_str()) {
                    Some(d) => b64().decode(d).map_err(|e| {
                        KinesisError::new(
                            ErrorKind::Other,
                            "GetRecords",
                            "BadResponse",
                            format!("record Data is not base64: {e}"),
                        )
                    })?,
                    None => Vec::new(),
                };
                records.push(KinesisRecord {
                    sequence_number: str_field(r, "SequenceNumber").unwrap_or_default(),
                    partition_key: str_field(r, "PartitionKey").unwrap_or_default(),
                    data,
                    approximate_arrival: r
                        .get("ApproximateArrivalTimestamp")
                        .and_then(|t| t.as_f64())
                        .map(|t| (t * 1000.0).round() as Millis),
                });
            }
        }
        Ok(GetRecordsOutput {
            records,
            next_iterator: str_field(&out, "NextShardIterator"),
            millis_behind_latest: out.get("MillisBehindLatest").and_then(|m| m.as_i64()),
        })
    }

    /// `PutRecords` of up to 500 entries, one attempt; one result per entry, in order.
    pub async fn put_records(
        &self,
        stream: &str,
        entries: &[PutEntry],
    ) -> std::result::Result<Vec<PutResult>, KinesisError> {
        let records: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut r = json!({
                    "Data": b64().encode(&e.data),
                    "PartitionKey": e.partition_key,
                });
                if let (Some(h), Some(o)) = (&e.explicit_hash_key, r.as_object_mut()) {
                    o.insert("ExplicitHashKey".to_string(), json!(h));
                }
                r
            })
            .collect();
        let out = self
            .call(
                "PutRecords",
                &with_stream(stream, json!({"Records": records})),
            )
            .await?;
        let results = out
            .get("Records")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        if results.len() != entries.len() {
            return Err(KinesisError::new(
                ErrorKind::Other,
                "PutRecords",
                "BadResponse",
                format!("{} results for {} records", results.len(), entries.len()),
            ));
        }
        Ok(results
            .iter()
            .map(|r| match str_field(r, "ErrorCode") {
                Some(code) => PutResult::Failed {
                    code,
                    message: str_field(r, "ErrorMessage").unwrap_or_default(),
                },
                None => PutResult::Ok {
                    shard_id: str_field(r, "ShardId").unwrap_or_default(),
                    sequence_number: str_field(r, "SequenceNumber").unwrap_or_default(),
                },
            })
            .collect())
    }

    /// `PutRecord` (retried while throttled); the shard and sequence number.
    pub async fn put_record(
        &self,
        stream: &str,
        entry: &PutEntry,
    ) -> std::result::Result<(String, String), KinesisError> {
        let mut body = json!({
            "Data": b64().encode(&entry.data),
            "PartitionKey": entry.partition_key,
        });
        if let (Some(h), Some(o)) = (&entry.explicit_hash_key, body.as_object_mut()) {
            o.insert("ExplicitHashKey".to_string(), json!(h));
        }
        let out = self
            .call_with_retry("PutRecord", &with_stream(stream, body), 8)
            .await?;
        Ok((
            str_field(&out, "ShardId").unwrap_or_default(),
            str_field(&out, "SequenceNumber").unwrap_or_default(),
        ))
    }

    /// `CreateStream` (provisioned, `shards` shards).
    pub async fn create_stream(
        &self,
        stream: &str,
        shards: usize,
    ) -> std::result::Result<(), KinesisError> {
        self.call_with_retry(
            "CreateStream",
            &json!({"StreamName": stream, "ShardCount": shards}),
            5,
        )
        .await
        .map(|_| ())
    }

    /// `DeleteStream`.
    pub async fn delete_stream(&self, stream: &str) -> std::result::Result<(), KinesisError> {
        self.call_with_retry("DeleteStream", &with_stream(stream, json!({})), 5)
            .await
            .map(|_| ())
    }

    /// `DescribeStreamSummary`.
    pub async fn describe_stream_summary(
        &self,
        stream: &str,
    ) -> std::result::Result<StreamSummary, KinesisError> {
        let out = self
            .call_with_retry("DescribeStreamSummary", &with_stream(stream, json!({})), 5)
            .await?;
        let d = out
            .get("StreamDescriptionSummary")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(StreamSummary {
            status: str_field(&d, "StreamStatus").unwrap_or_default(),
            open_shards: d
                .get("OpenShardCount")
                .and_then(|n| n.as_u64())
                .unwrap_or(0) as usize,
        })
    }

    /// Waits (up to `timeout`) until the stream is `ACTIVE`.
    pub async fn wait_active(
        &self,
        stream: &str,
        timeout: Duration,
    ) -> std::result::Result<(), KinesisError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.describe_stream_summary(stream).await?;
            if s.status == "ACTIVE" {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KinesisError::new(
                    ErrorKind::Other,
                    "DescribeStreamSummary",
                    "Timeout",
                    format!("stream '{stream}' is still {} after {timeout:?}", s.status),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `SplitShard` at `new_starting_hash_key` (decimal).
    pub async fn split_shard(
        &self,
        stream: &str,
        shard_id: &str,
        new_starting_hash_key: &str,
    ) -> std::result::Result<(), KinesisError> {
        self.call_with_retry(
            "SplitShard",
            &with_stream(
                stream,
                json!({"ShardToSplit": shard_id, "NewStartingHashKey": new_starting_hash_key}),
            ),
            5,
        )
        .await
        .map(|_| ())
    }

    /// `MergeShards` of two adjacent shards.
    pub async fn merge_shards(
        &self,
        stream: &str,
        shard_id: &str,
        adjacent_shard_id: &str,
    ) -> std::result::Result<(), KinesisError> {
        self.call_with_retry(
            "MergeShards",
            &with_stream(
                stream,
                json!({"ShardToMerge": shard_id, "AdjacentShardToMerge": adjacent_shard_id}),
            ),
            5,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_profile_from_a_shared_credentials_file() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n\
                    [profile other]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=E\n";
        let d = profile_credentials(text, "default").unwrap();
        assert_eq!((d.key_id.as_str(), d.secret_key.as_str()), ("A", "B"));
        let o = profile_credentials(text, "other").unwrap();
        assert_eq!(o.token.as_deref(), Some("E"));
        assert!(profile_credentials(text, "missing").is_none());
    }

    #[test]
    fn classifies_error_codes() {
        assert_eq!(
            KinesisError::kind_of("ProvisionedThroughputExceededException", 400),
            ErrorKind::Throttled
        );
        assert_eq!(
            KinesisError::kind_of("ExpiredIteratorException", 400),
            ErrorKind::ExpiredIterator
        );
        assert_eq!(KinesisError::kind_of("Whatever", 503), ErrorKind::Transient);
        assert_eq!(
            KinesisError::kind_of("AccessDeniedException", 400),
            ErrorKind::Other
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Credentials::Static(Arc::new(AwsCredential {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "very-secret".into(),
            token: Some("tok".into()),
        }));
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret") && !s.contains("tok") && !s.contains("AKID"));
    }
}
