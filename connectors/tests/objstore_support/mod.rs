//! Shared by the object-store tests: a local S3-compatible server (moto) started per test, a
//! store wrapper that injects failures and records multipart calls, and readers.

#![allow(dead_code)]

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
#[allow(deprecated)] // parquet 59.2 deprecates it in favour of a hand-written AsyncFileReader
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion_stream_connectors::object_store::{StoreLocation, StoreOptions};
use futures::stream::BoxStream;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// A moto server on a free port of 127.0.0.1, killed on drop.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts `moto_server` (from `DFSTREAM_MOTO_SERVER`, else the PATH) and waits until it
    /// answers. Fails, never skips, when it is not installed.
    pub fn start() -> Self {
        let program = std::env::var("DFSTREAM_MOTO_SERVER")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "moto_server".to_string());
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("local addr").port()
        };
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the local S3 server '{program}' ({e}): run scripts/test.sh, or `pip install 'moto[server]'`, or set DFSTREAM_MOTO_SERVER"
                )
            });
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto_server exited at start ({status}); run scripts/test.sh or `pip install 'moto[server]'`");
            }
            if server.request("GET", "/moto-api/", "").is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Store options for this server, with fake credentials.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::local_endpoint(self.endpoint())
            .with_credentials("test", "test")
            .with_region("us-east-1")
    }

    /// One raw HTTP/1.1 request (moto does not check signatures); the status and body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).ok()?;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self
            .request("PUT", &format!("/{bucket}"), "")
            .expect("moto answers");
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
    }

    /// Number of multipart uploads in progress in the bucket.
    pub fn multipart_uploads(&self, bucket: &str) -> usize {
        let (status, body) = self
            .request("GET", &format!("/{bucket}?uploads"), "")
            .expect("moto answers");
        assert_eq!(status, 200, "list uploads of {bucket}: {body}");
        body.matches("<Upload>").count()
    }

    /// A location on this server.
    pub fn location(&self, url: &str) -> StoreLocation {
        StoreLocation::parse(url, &self.options()).expect("location")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`FailingStore`] saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Calls {
    pub multipart_started: usize,
    pub parts: usize,
    pub completed: usize,
    pub aborted: usize,
    pub puts: usize,
}

/// Wraps a store; fails the `fail_part`-th part upload (1-based, over all uploads) and/or
/// every single PUT when `fail_puts`; records multipart calls.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn ObjectStore>,
    fail_part: Option<usize>,
    fail_puts: bool,
    part_counter: Arc<AtomicUsize>,
    calls: Arc<Mutex<Calls>>,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, fail_part: Option<usize>, fail_puts: bool) -> Self {
        Self {
            inner,
            fail_part,
            fail_puts,
            part_counter: Arc::new(AtomicUsize::new(0)),
            calls: Arc::new(Mutex::new(Calls::default())),
        }
    }

    pub fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }
}

impl fmt::Display for FailingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailingStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FailingStore",
        source: format!("injected failure: {what}").into(),
    }
}

#[derive(Debug)]
struct FailingUpload {
    inner: Box<dyn MultipartUpload>,
    fail_part: Option<usize>,
    part_counter: Arc<AtomicUsize>,
    calls: Arc<Mutex<Calls>>,
}

#[async_trait]
impl MultipartUpload for FailingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.calls.lock().unwrap().parts += 1;
        let n = self.part_counter.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.fail_part {
            return Box::pin(async move { Err(injected(&format!("part {n}"))) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.calls.lock().unwrap().completed += 1;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.calls.lock().unwrap().aborted += 1;
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for FailingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.calls.lock().unwrap().puts += 1;
        if self.fail_puts {
            return Err(injected("put"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        self.calls.lock().unwrap().multipart_started += 1;
        Ok(Box::new(FailingUpload {
            inner,
            fail_part: self.fail_part,
            part_counter: Arc::clone(&self.part_counter),
            calls: Arc::clone(&self.calls),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Every object under `prefix`, sorted by path.
pub async fn list_paths(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let prefix = Path::from(prefix);
    let mut paths: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    paths.sort();
    paths
}

/// Reads a Parquet object in full and decodes it (synchronous reader over the bytes).
pub async fn read_parquet(store: &Arc<dyn ObjectStore>, path: &str) -> Vec<RecordBatch> {
    let bytes = store
        .get(&Path::parse(path).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Reads a Parquet object with range requests (`ParquetObjectReader`, the async reader).
#[allow(deprecated)]
pub async fn read_parquet_async(store: &Arc<dyn ObjectStore>, path: &str) -> Vec<RecordBatch> {
    let reader = ParquetObjectReader::new(Arc::clone(store), Path::parse(path).unwrap());
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .unwrap()
        .build()
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// Reads a text object.
pub async fn read_text(store: &Arc<dyn ObjectStore>, path: &str) -> String {
    let bytes = store
        .get(&Path::parse(path).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Rows as comma-separated text (NULL as `NULL`).
pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    out
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dfstream-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
