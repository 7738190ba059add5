//! Kinesis Data Streams: a source (connector `'kinesis'`) and a sink.
//!
//! ```sql
//! CREATE STREAM trades (
//!     ticker VARCHAR, price DOUBLE, ts TIMESTAMP,
//!     shard_id VARCHAR, sequence_number VARCHAR, partition_key VARCHAR,
//!     approximate_arrival_time TIMESTAMP,                 -- metadata columns, when declared
//!     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! ) WITH ('connector' = 'kinesis', 'stream' = 'trades', 'region' = 'us-east-1',
//!         'starting_position' = 'TRIM_HORIZON', 'format' = 'json');
//! ```
//!
//! ```text
//!            Kinesis data stream (shards, resharding)                 Kinesis data stream
//!                      │ ListShards / GetShardIterator / GetRecords          ▲ PutRecords
//!                      ▼                                                     │ (≤ 500 / 5 MiB,
//!  source.rs  KinesisSource: partitions ◄─ shards (Coordinator:              │  failed retried)
//!             parents to SHARD_END before children), per-shard pacing,       │
//!             backoff, iterator re-acquisition, MillisBehindLatest   sink.rs KinesisSink,
//!                      │                                             run_query_into_kinesis
//!  kpl.rs     KPL aggregated record ──► user records (MD5 checked)           ▲
//!                      │                                                     │ rows
//!  decode.rs  data ──► payload columns (KDA input schema | JSON | CSV)       │
//!             record ─► metadata columns; bad record ──► error sink   StreamContext::query
//!                      │
//!                      ▼ SourceEvent::Data ──► scan: ROWTIME (ingest), watermarks, idleness
//!  client.rs  JSON 1.1 over HTTP, SigV4, AWS credential chain (shared by both)
//! ```
//!
//! ## Source options
//!
//! * `'stream'` (required): the Kinesis stream name or ARN. It must exist at CREATE STREAM
//!   (one `ListShards` checks it; a missing stream, bad credentials or an unreachable endpoint
//!   is an error naming it).
//! * `'region'`: else `AWS_REGION` / `AWS_DEFAULT_REGION`; required one way or the other.
//! * `'endpoint'`: an endpoint override (`'http://127.0.0.1:4567'`); else
//!   `AWS_ENDPOINT_URL_KINESIS` / `AWS_ENDPOINT_URL`, else the region's AWS endpoint.
//! * `'starting_position'`: `'LATEST'` (default; KDA's `NOW`), `'TRIM_HORIZON'`,
//!   `'AT_TIMESTAMP'` (with `'starting_timestamp'`: epoch ms or `'yyyy-MM-dd HH:mm:ss[.SSS]'`
//!   UTC), or `'AFTER_SEQUENCE_NUMBER'` (with `'starting_sequence_numbers'` =
//!   `'shardId-…:seq,…'`, a saved position: those shards resume after their number, their
//!   ancestors are skipped, other shards are read from their start).
//! * `'format'`: `'json'` (default; one object per record, keys matched to column names) or
//!   `'csv'` (one line per record; `'delimiter'`, default `,`); or `'input_schema'` (a KDA
//!   InputSchema in the AWS API's JSON) / `'input_schema_file'`: records are decoded as KDA
//!   decodes them ([`crate::kda::RecordDecoder`]: JSONPath mappings, CSV delimiters, KDA's
//!   coercions; a record may give several rows).
//! * `'parallelism'`: number of partitions (default: one per open shard at CREATE STREAM);
//!   shards are spread round-robin, children follow their parent's partition.
//! * `'max_records'` (GetRecords `Limit`, default 10000), `'poll_interval'` (wait before
//!   polling a caught-up shard, default `1s`, at least `200ms`), `'shard_refresh_interval'`
//!   (default `10s`; the shard list is also re-read after every SHARD_END), `'max_retries'`
//!   (transient failures in a row per shard before the query fails, default 10).
//!
//! Unknown options are errors that list the valid ones.
//!
//! **Columns.** Declared columns named (any case) `shard_id`, `sequence_number`,
//! `sub_sequence_number` (index in a KPL aggregated record, else 0), `partition_key` and
//! `approximate_arrival_time` (TIMESTAMP) are filled from the record, not the payload (with an
//! input schema, a column the schema maps is payload even if so named). Every other declared
//! column comes from the payload. ROWTIME is the ingestion time (context clock).
//!
//! **Bad records** (not decodable, KPL checksum mismatch) go to the context's error sink
//! ([`datafusion_stream::source::SourceContext::errors`]) as `Parse_Error`, with the stream,
//! shard and sequence number in the message and the raw bytes as `DATA_ROW`; the other
//! records keep flowing. With the default policy (no error stream) the query fails.
//!
//! **Progress** is reported by [`KinesisSource::metrics`]: counters and
//! `MillisBehindLatest` (largest over the shards being read, and per shard).
//!
//! ## Guarantees and limits
//!
//! * Per shard, records are emitted in sequence order, exactly once while the query runs:
//!   after throttling the same iterator is retried; after an expired iterator a new one
//!   starts AFTER_SEQUENCE_NUMBER the last record emitted.
//! * A shard created by a split or merge is read only after every parent reached SHARD_END,
//!   by the partition that read its (first) parent, so the records of a key stay in order.
//! * At most 5 GetRecords per second per shard (200 ms between calls), `poll_interval`
//!   between calls once a shard is caught up.
//! * No checkpointing yet: a restarted query starts from `'starting_position'` (which may be
//!   a saved `AFTER_SEQUENCE_NUMBER` list). Enhanced fan-out (SubscribeToShard) is not used.
//!
//! ## Dependency choice
//!
//! No AWS SDK. Resolved here (`cargo tree`, Linux), `aws-sdk-kinesis` + `aws-config` with
//! default features off (`rt-tokio`, `behavior-version-latest`, `default-https-client`, `sso`)
//! would add 46 crates even on top of the HTTP stack below: aws-lc-sys (a large C build), the
//! STS / SSO / SSO-OIDC clients of the credential chain, 13 aws-smithy-* crates, `time`, ...
//! The S3 side of the connectors needs `object_store` with its `aws` feature anyway, and that
//! already has everything a Kinesis client needs: an HTTP client (reqwest, rustls with ring: a
//! small C/asm build, no cmake), SigV4 signing (`AwsAuthorizer`) and the web identity / ECS /
//! EC2 metadata credential providers. Kinesis speaks JSON 1.1 (one POST per call, `X-Amz-Target` names the
//! action), so [`client`] is a few hundred lines over those. Measured here: adding
//! `object_store/aws` to the workspace (which had `object_store` without it) compiles 36 more
//! crates on Linux (hyper, h2, rustls, ring, reqwest, tower, quick-xml, ...; an estimated 2–3
//! minutes of a cold build on 2 cores, ring and rustls the largest), all shared with the S3 connectors;
//! the Kinesis code itself adds no crate (`base64`, `md-5`, `http` were already built). The
//! tests use kinesalite (npm) because moto's Kinesis does not close split or merged shards.

pub mod client;
pub mod decode;
pub mod kpl;
pub mod sink;
pub mod sink_factory;
pub mod source;

pub use client::{
    ClientConfig, ErrorKind, GetRecordsOutput, KinesisClient, KinesisError, KinesisRecord,
    PutEntry, PutResult, ShardInfo, StartPosition,
};
pub use decode::{MetaColumn, PayloadFormat};
pub use sink::{
    run_query_into_kinesis, KinesisSink, KinesisSinkConfig, SinkFormat, SinkStats, SinkSummary,
};
pub use sink_factory::{KinesisSinkDef, KinesisSinkFactory};
pub use source::{
    KinesisFactory, KinesisMetrics, KinesisSource, KinesisSourceConfig, StartingPosition, CONNECTOR,
};
