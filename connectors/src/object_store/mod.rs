//! Object stores from URLs (`s3://bucket/prefix`, `file:///abs/path`, `memory://name/prefix`)
//! and reference tables loaded from them.
//!
//! ```text
//!  'path' URL + StoreOptions ──StoreLocation::resolve(env, ..)──► StoreLocation
//!     s3://b/p      AmazonS3 (AWS_* environment, then explicit options)  { store, prefix, url }
//!     file:///a/b   LocalFileSystem                                       │
//!     memory://m/p  InMemory, one per name and session                    │
//!        └── built stores are registered in the session's RuntimeEnv, ────┤
//!            so DataFusion tables over the same URL read the same store   │
//!                                                                         ├──► sinks (crate::sink)
//!                                                                         └──► ReferenceTable
//! ```
//!
//! S3 settings come from the standard AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, ...) and are overridden by [`StoreOptions`] (`'endpoint'`, `'region'`,
//! `'allow_http'`, `'max_retries'`, `'timeout'` in SQL options; credentials only from the
//! environment or the Rust API, never from SQL text). Secrets are never printed: the
//! `Debug` of [`StoreOptions`] and [`StoreLocation`] redacts them, and errors name the URL,
//! bucket, endpoint or option concerned, not the credentials.
//!
//! Nothing is contacted when a location is resolved; [`StoreLocation::check`] makes one LIST
//! request so that a missing bucket, bad credentials or an unreachable endpoint are reported
//! before a query starts, with a message naming the bucket or endpoint.

pub mod reference;
pub mod table_factory;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::object_store::aws::AmazonS3Builder;
use ::object_store::local::LocalFileSystem;
use ::object_store::memory::InMemory;
use ::object_store::path::Path;
use ::object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use datafusion::common::{plan_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion_stream::source::ConnectorOptions;
use url::Url;

pub use reference::{
    ObjectVersion, ReferenceFormat, ReferenceTable, ReferenceTableOptions, ReloadOutcome,
    ReloadTask,
};
pub use table_factory::ReferenceTableFactory;

/// The store options a `WITH (...)` clause may carry (see [`StoreOptions::take_from`]).
pub const STORE_OPTION_NAMES: &[&str] =
    &["endpoint", "region", "allow_http", "max_retries", "timeout"];

/// Settings for building a store; each overrides the AWS environment. Credentials are
/// redacted from `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// S3 endpoint (e.g. `http://127.0.0.1:5000` for a local server); `AWS_ENDPOINT_URL`
    /// otherwise.
    pub endpoint: Option<String>,
    /// S3 region; `AWS_REGION` / `AWS_DEFAULT_REGION` otherwise (`us-east-1` if none).
    pub region: Option<String>,
    /// Allow plain `http://` endpoints (a local server).
    pub allow_http: Option<bool>,
    /// Access key id; `AWS_ACCESS_KEY_ID` otherwise.
    pub access_key_id: Option<String>,
    /// Secret access key; `AWS_SECRET_ACCESS_KEY` otherwise. Never printed.
    pub secret_access_key: Option<String>,
    /// Session token; `AWS_SESSION_TOKEN` otherwise. Never printed.
    pub session_token: Option<String>,
    /// Retries of a failed request (default 5; object_store's own default is 10 over up to
    /// 3 minutes, too long to report an unreachable endpoint).
    pub max_retries: Option<usize>,
    /// Timeout of one request (default 30 s; connecting: 5 s).
    pub timeout: Option<Duration>,
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("StoreOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redact(&self.secret_access_key))
            .field("session_token", &redact(&self.session_token))
            .field("max_retries", &self.max_retries)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Default retries of a failed request (see [`StoreOptions::max_retries`]).
pub const DEFAULT_MAX_RETRIES: usize = 5;

impl StoreOptions {
    /// Options for a local S3-compatible server at `endpoint` (plain HTTP allowed).
    pub fn local_endpoint(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            allow_http: Some(true),
            ..Self::default()
        }
    }

    /// Sets static credentials (instead of the environment's).
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the number of retries of a failed request.
    pub fn with_max_retries(mut self, n: usize) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// True when nothing is set (every setting comes from the environment).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Consumes the store options ([`STORE_OPTION_NAMES`]) of a `WITH (...)` clause.
    pub fn take_from(options: &mut ConnectorOptions) -> Result<Self> {
        Ok(Self {
            endpoint: options.take("endpoint"),
            region: options.take("region"),
            allow_http: options.take_parsed::<bool>("allow_http")?,
            max_retries: options.take_parsed::<usize>("max_retries")?,
            timeout: options.take_duration("timeout")?,
            ..Self::default()
        })
    }
}

/// What kind of store a location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Amazon S3 or an S3-compatible server.
    S3,
    /// The local file system.
    File,
    /// An in-memory store (tests, benchmarks).
    Memory,
    /// A store registered by the application for another scheme.
    Other,
}

/// A store and a prefix inside it, resolved from a URL.
#[derive(Clone)]
pub struct StoreLocation {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    kind: StoreKind,
    endpoint: Option<String>,
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLocation")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

fn parse_url(url: &str) -> Result<Url> {
    let text = url.trim();
    let parsed = if text.starts_with('/') {
        Url::from_file_path(text)
            .map_err(|_| plan_datafusion_err!("'{text}' is not a valid absolute path"))?
    } else {
        Url::parse(text).map_err(|e| {
            plan_datafusion_err!(
                "'{text}' is not a valid URL ({e}); expected s3://bucket/prefix, file:///absolute/path or memory://name/prefix"
            )
        })?
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Never echo the URL: it holds credentials.
        return plan_err!(
            "object store URLs must not carry credentials; use the AWS environment or StoreOptions"
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return plan_err!("'{text}': object store URLs take no query or fragment");
    }
    Ok(parsed)
}

fn store_key(url: &Url) -> Result<Url> {
    let key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    Url::parse(&key).map_err(|e| plan_datafusion_err!("'{url}': {e}"))
}

/// Builds an S3 store for `bucket` from the environment and `options`.
fn build_s3(bucket: &str, url: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(e) = &options.endpoint {
        if Url::parse(e).is_err() {
            return plan_err!("'{url}': option 'endpoint' = '{e}' is not a URL (expected e.g. http://127.0.0.1:5000)");
        }
        builder = builder.with_endpoint(e);
    }
    if let Some(r) = &options.region {
        builder = builder.with_region(r);
    }
    if let Some(k) = &options.access_key_id {
        builder = builder.with_access_key_id(k);
    }
    if let Some(s) = &options.secret_access_key {
        builder = builder.with_secret_access_key(s);
    }
    if let Some(t) = &options.session_token {
        builder = builder.with_token(t);
    }
    let mut client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(options.timeout.unwrap_or(Duration::from_secs(30)));
    if let Some(allow) = options.allow_http {
        client = client.with_allow_http(allow);
        builder = builder.with_allow_http(allow);
    }
    builder = builder.with_client_options(client).with_retry(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: options.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        retry_timeout: Duration::from_secs(60),
    });
    let store = builder.build().map_err(|e| {
        // object_store's configuration errors name the key, never a secret value.
        plan_datafusion_err!("'{url}': cannot configure S3 for bucket '{bucket}': {e}")
    })?;
    Ok(Arc::new(store))
}

impl StoreLocation {
    /// Builds the store for `url` (nothing is contacted). `memory://` gives a new, empty store
    /// each time; use [`Self::resolve`] to share stores within a session.
    pub fn parse(url: &str, options: &StoreOptions) -> Result<Self> {
        let parsed = parse_url(url)?;
        Self::build(&parsed, options)
    }

    /// Like [`Self::parse`], but through the session's object store registry: a store already
    /// registered for the URL's scheme and bucket (`s3://bucket`, `memory://name`, `file://`,
    /// or a store of another scheme the application registered) is used when `options` is
    /// empty; otherwise the store is built and registered, so that DataFusion tables over the
    /// same URL (`CREATE EXTERNAL TABLE ... LOCATION 's3://...'`) and reference tables read
    /// what sinks wrote.
    pub fn resolve(env: &RuntimeEnv, url: &str, options: &StoreOptions) -> Result<Self> {
        let parsed = parse_url(url)?;
        let key = store_key(&parsed)?;
        if options.is_empty() {
            if let Ok(store) = env.object_store_registry.get_store(&key) {
                let kind = match parsed.scheme() {
                    "s3" | "s3a" => StoreKind::S3,
                    "file" => StoreKind::File,
                    "memory" => StoreKind::Memory,
                    _ => StoreKind::Other,
                };
                return Ok(Self {
                    store,
                    prefix: url_prefix(&parsed)?,
                    url: display_url(&parsed),
                    kind,
                    endpoint: None,
                });
            }
        }
        let location = Self::build(&parsed, options)?;
        env.object_store_registry
            .register_store(&key, Arc::clone(&location.store));
        Ok(location)
    }

    /// A location over a store built by the caller (a wrapping store, another cloud, ...);
    /// `url` is only used in messages and to derive nothing else.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str, url: impl Into<String>) -> Self {
        Self {
            store,
            prefix: Path::from(prefix),
            url: url.into(),
            kind: StoreKind::Other,
            endpoint: None,
        }
    }

    /// The same location over another store (e.g. a wrapper that counts or injects faults).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            ..self.clone()
        }
    }

    fn build(url: &Url, options: &StoreOptions) -> Result<Self> {
        let shown = display_url(url);
        let prefix = url_prefix(url)?;
        let (store, kind): (Arc<dyn ObjectStore>, StoreKind) = match url.scheme() {
            "s3" | "s3a" => {
                let Some(bucket) = url.host_str().filter(|b| !b.is_empty()) else {
                    return plan_err!("'{shown}': no bucket (expected s3://bucket/prefix)");
                };
                (build_s3(bucket, &shown, options)?, StoreKind::S3)
            }
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                    return plan_err!(
                        "'{shown}': file URLs take an absolute path (file:///path), not a host"
                    );
                }
                reject_s3_options(&shown, options)?;
                (Arc::new(LocalFileSystem::new()), StoreKind::File)
            }
            "memory" => {
                reject_s3_options(&shown, options)?;
                (Arc::new(InMemory::new()), StoreKind::Memory)
            }
            other => {
                return plan_err!(
                    "'{shown}': unsupported object store scheme '{other}' (supported: s3, file, memory)"
                )
            }
        };
        let endpoint = match kind {
            StoreKind::S3 => options
                .endpoint
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()),
            _ => None,
        };
        Ok(Self {
            store,
            prefix,
            url: shown,
            kind,
            endpoint,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The prefix inside the store (no leading or trailing `/`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The URL, as given (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What kind of store this is.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The bucket (S3), or the URL's host, for messages.
    pub fn bucket(&self) -> Option<&str> {
        let rest = self.url.split_once("://")?.1;
        let host = rest.split('/').next()?;
        (!host.is_empty()).then_some(host)
    }

    /// `prefix/relative` as a store path (`relative` is split on `/`; each part is encoded
    /// as object_store requires).
    pub fn child(&self, relative: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// The URL of a path in this store, for messages and reports.
    pub fn url_of(&self, path: &Path) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split('/').next().unwrap_or("");
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{}/{path}", self.url.trim_end_matches('/')),
        }
    }

    /// Checks that the location is reachable: one LIST request under the prefix. A missing
    /// bucket, rejected credentials or an unreachable endpoint become an error naming them.
    pub async fn check(&self) -> Result<()> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        match self.store.list_with_delimiter(prefix).await {
            Ok(_) => Ok(()),
            // Listing a prefix that does not exist is not an error anywhere but on the local
            // file system, where it means the directory is not there yet: sinks create it.
            Err(::object_store::Error::NotFound { .. }) if self.kind == StoreKind::File => Ok(()),
            Err(e) => Err(self.error("list", &self.prefix, e)),
        }
    }

    /// A clear error for a failed store operation on `path`: names the URL, and the bucket or
    /// endpoint when they are the cause.
    pub fn error(&self, action: &str, path: &Path, e: ::object_store::Error) -> DataFusionError {
        let url = self.url_of(path);
        let text = e.to_string();
        let bucket = self.bucket().unwrap_or("");
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| format!("endpoint '{e}'"))
            .unwrap_or_else(|| "the S3 endpoint".to_string());
        let message = if self.kind == StoreKind::S3 && text.contains("NoSuchBucket") {
            format!("{action} {url}: bucket '{bucket}' does not exist at {endpoint}")
        } else if self.kind == StoreKind::S3 && is_connect_error(&e) {
            format!("{action} {url}: cannot reach {endpoint} (is the server running and the endpoint right?): {text}")
        } else {
            match &e {
                ::object_store::Error::NotFound { .. } if self.kind == StoreKind::S3 && action == "list" => {
                    format!("{action} {url}: bucket '{bucket}' does not exist at {endpoint}: {text}")
                }
                ::object_store::Error::NotFound { .. } => format!("{action} {url}: not found"),
                ::object_store::Error::PermissionDenied { .. }
                | ::object_store::Error::Unauthenticated { .. } => format!(
                    "{action} {url}: access denied for bucket '{bucket}': check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket's policy: {text}"
                ),
                _ if self.kind == StoreKind::S3
                    && (text.contains("InvalidAccessKeyId")
                        || text.contains("SignatureDoesNotMatch")
                        || text.contains("AccessDenied")) =>
                {
                    format!(
                        "{action} {url}: access denied for bucket '{bucket}': check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): {text}"
                    )
                }
                _ => format!("{action} {url}: {text}"),
            }
        };
        DataFusionError::External(message.into())
    }
}

fn reject_s3_options(url: &str, options: &StoreOptions) -> Result<()> {
    let mut given = Vec::new();
    if options.endpoint.is_some() {
        given.push("endpoint");
    }
    if options.region.is_some() {
        given.push("region");
    }
    if options.allow_http.is_some() {
        given.push("allow_http");
    }
    if options.access_key_id.is_some() || options.secret_access_key.is_some() {
        given.push("credentials");
    }
    if options.session_token.is_some() {
        given.push("session_token");
    }
    if given.is_empty() {
        Ok(())
    } else {
        plan_err!(
            "'{url}': option(s) {} only apply to s3:// locations",
            given.join(", ")
        )
    }
}

fn is_connect_error(e: &::object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<::object_store::client::HttpError>() {
            if matches!(
                h.kind(),
                ::object_store::client::HttpErrorKind::Connect
                    | ::object_store::client::HttpErrorKind::Timeout
            ) {
                return true;
            }
        }
        source = s.source();
    }
    let text = e.to_string();
    text.contains("error sending request") || text.contains("Connection refused")
}

fn url_prefix(url: &Url) -> Result<Path> {
    Path::from_url_path(url.path())
        .map_err(|e| plan_datafusion_err!("'{}': invalid path: {e}", display_url(url)))
}

fn display_url(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}
