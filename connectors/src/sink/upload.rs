//! One object being written: an `object_store::buffered::BufWriter` whose multipart upload, if
//! it starts one, is tracked so that it is always completed or aborted.
//!
//! ```text
//!  bytes ──► UploadWriter ──► BufWriter ── < capacity at shutdown: one PUT (atomic)
//!                 │                     └─ ≥ capacity: multipart upload via TrackingStore
//!                 │                                         │ the upload lives in UploadSlot
//!                 └── abort(): BufWriter::abort (if not shut down), then abort whatever is
//!                     still in the slot (a failed complete leaves it there)
//! ```
//!
//! `BufWriter` itself aborts on `abort()` and when completing the upload fails, but not when a
//! part upload fails during shutdown: `WriteMultipart::finish` returns the part's error and
//! drops the upload. The slot keeps it, so [`UploadWriter::abort`] can abort it: no multipart
//! upload is ever left behind by an error we see.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ::object_store::buffered::BufWriter;
use ::object_store::path::Path;
use ::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
use datafusion::parquet::errors::ParquetError;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::io::AsyncWriteExt;

/// The multipart upload of one object, while it is neither completed nor aborted.
#[derive(Default)]
pub(crate) struct UploadSlot {
    upload: Mutex<Option<Box<dyn MultipartUpload>>>,
}

impl UploadSlot {
    fn take(&self) -> Option<Box<dyn MultipartUpload>> {
        match self.upload.lock() {
            Ok(mut u) => u.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn put(&self, upload: Box<dyn MultipartUpload>) {
        match self.upload.lock() {
            Ok(mut u) => *u = Some(upload),
            Err(poisoned) => *poisoned.into_inner() = Some(upload),
        }
    }
}

/// The upload handed to `BufWriter`: delegates to the real one, which stays in the slot until
/// it is completed or aborted.
struct TrackedUpload {
    slot: Arc<UploadSlot>,
}

impl fmt::Debug for TrackedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrackedUpload")
    }
}

fn finished_error() -> ::object_store::Error {
    ::object_store::Error::Generic {
        store: "sink",
        source: "the multipart upload was already completed or aborted".into(),
    }
}

#[async_trait]
impl MultipartUpload for TrackedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let part = match self.slot.upload.lock() {
            Ok(mut u) => u.as_mut().map(|u| u.put_part(data)),
            Err(_) => None,
        };
        part.unwrap_or_else(|| Box::pin(async { Err(finished_error()) }))
    }

    async fn complete(&mut self) -> ::object_store::Result<PutResult> {
        let Some(mut upload) = self.slot.take() else {
            return Err(finished_error());
        };
        match upload.complete().await {
            Ok(r) => Ok(r),
            Err(e) => {
                // Left for UploadWriter::abort.
                self.slot.put(upload);
                Err(e)
            }
        }
    }

    async fn abort(&mut self) -> ::object_store::Result<()> {
        match self.slot.take() {
            Some(mut upload) => upload.abort().await,
            None => Ok(()),
        }
    }
}

/// A store wrapper, one per object written, whose multipart uploads go through the slot.
struct TrackingStore {
    inner: Arc<dyn ObjectStore>,
    slot: Arc<UploadSlot>,
}

impl fmt::Debug for TrackingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackingStore({})", self.inner)
    }
}

impl fmt::Display for TrackingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait]
impl ObjectStore for TrackingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> ::object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> ::object_store::Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        self.slot.put(upload);
        Ok(Box::new(TrackedUpload {
            slot: Arc::clone(&self.slot),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> ::object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> ::object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, ::object_store::Result<Path>>,
    ) -> BoxStream<'static, ::object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, ::object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> ::object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> ::object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Writes one object; see the module docs. Implements parquet's `AsyncFileWriter`.
pub(crate) struct UploadWriter {
    buf: BufWriter,
    slot: Arc<UploadSlot>,
    shutdown_started: bool,
    bytes: u64,
}

impl fmt::Debug for UploadWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadWriter")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl UploadWriter {
    /// A writer of `path` in `store`, buffering up to `capacity` bytes (the single-PUT limit and
    /// the multipart part size).
    pub(crate) fn new(store: &Arc<dyn ObjectStore>, path: Path, capacity: usize) -> Self {
        let slot = Arc::new(UploadSlot::default());
        let tracking: Arc<dyn ObjectStore> = Arc::new(TrackingStore {
            inner: Arc::clone(store),
            slot: Arc::clone(&slot),
        });
        Self {
            buf: BufWriter::with_capacity(tracking, path, capacity),
            slot,
            shutdown_started: false,
            bytes: 0,
        }
    }

    /// Bytes handed to the writer so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends bytes.
    pub(crate) async fn put(&mut self, bytes: Bytes) -> ::object_store::Result<()> {
        if self.shutdown_started {
            return Err(finished_error());
        }
        self.bytes += bytes.len() as u64;
        self.buf.put(bytes).await
    }

    /// Completes the object: it becomes visible, whole, or not at all.
    pub(crate) async fn finish(&mut self) -> std::io::Result<()> {
        if self.shutdown_started {
            return Err(std::io::Error::other("object already completed"));
        }
        self.shutdown_started = true;
        self.buf.shutdown().await
    }

    /// Abandons the object: a multipart upload in progress is aborted (its parts deleted);
    /// nothing becomes visible.
    pub(crate) async fn abort(&mut self) -> ::object_store::Result<()> {
        let mut first_error = None;
        if !self.shutdown_started {
            self.shutdown_started = true;
            if let Err(e) = self.buf.abort().await {
                first_error = Some(e);
            }
        }
        if let Some(mut upload) = self.slot.take() {
            if let Err(e) = upload.abort().await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl AsyncFileWriter for UploadWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        Box::pin(async move {
            self.put(bs)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        Box::pin(async move {
            self.finish()
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }
}
