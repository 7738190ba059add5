//! # datafusion-stream
//!
//! Streaming SQL on a stock Apache DataFusion `SessionContext`: unbounded tables, ROWTIME,
//! watermarks, and event-time windows (TUMBLE, HOP, SESSION) that emit each window once, when
//! the watermark passes its end.
//!
//! ```text
//!   CREATE STREAM t (..., WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'=...)
//!                                  │
//!   StreamSource (partitions) ──► StreamScanExec ──► rows + per-partition Progress (watermarks)
//!       source/                      scan/                 │
//!                                                          ├──► any DataFusion operator (rows only;
//!                                                          │    filters never buffer: exec/filter.rs)
//!                                                          └──► StreamWindowAggExec (window/):
//!                                                               fused WHERE/SELECT stages,
//!                                                               GroupsAccumulator state per window,
//!                                                               emits when min(watermarks) >= end-1
//! ```
//!
//! Design decisions (see each module's docs):
//! * **Time** ([`time`]): ROWTIME is ingest time from a clock the context owns, `TIMESTAMP(3)
//!   NOT NULL`, non-decreasing per partition, hidden from `SELECT *`. Event time is any
//!   timestamp column with a declared bounded-out-of-orderness watermark.
//! * **Watermarks travel in band** ([`scan`]): a scan partition yields its rows and its
//!   watermarks in one ordered stream, so a watermark can never overtake rows. Window
//!   operators read all input partitions in their own task and take the minimum over the
//!   partitions that are not idle.
//! * **Aggregation is DataFusion's**: per-window `GroupValues` + `GroupsAccumulator`s, so every
//!   aggregate and UDAF works, vectorised; state is Arrow data (checkpointable) and is freed
//!   when a window fires.
//! * **Deterministic tests**: [`source::replay`] + [`ManualClock`]: push rows, watermarks and
//!   clock advances, poll the query until it blocks, compare.

#![warn(missing_docs)]

pub mod anomaly;
pub mod context;
pub mod errors;
pub mod exec;
pub mod join;
pub mod over;
pub mod runtime;
pub mod scan;
pub mod sink;
pub mod sort;
pub mod source;
pub mod sql;
pub mod time;
pub mod window;

pub use context::{StatementOutcome, StreamContext, StreamQuery};
pub use datafusion;
pub use runtime::{LateRowPolicy, StreamRuntime};
pub use scan::{EventTime, StreamScanExec, StreamTable};
pub use source::replay::{ReplayHandle, ReplaySource};
pub use source::{RowtimeMode, SourceEvent, SourceFactory, StreamSource};
pub use time::{ManualClock, Millis, StreamClock, SystemClock};
