//! # datafusion-stream-kda
//!
//! Runs Amazon Kinesis Data Analytics for SQL (KDA v1) applications unchanged on the
//! `datafusion-stream` engine: `CREATE STREAM`, `CREATE PUMP`, ROWTIME, `STEP` / `FLOOR`
//! tumbling windows, `WINDOWED BY STAGGER`, sliding `OVER` windows, stream joins, reference
//! tables and the `error_stream` (`/work/shared/kda/SPEC.md`).
//!
//! ```text
//!  application code ──► program (statements, diagnostics with positions)
//!        │ per pump: tokens ──► tokens::rewrite_query ──► translate (AST) ──► DataFusion plan
//!        ▼                                                   (streaming rules of the engine)
//!  KdaApplication ──start──► RunningApplication: pumps write in-application streams
//!        inputs (SOURCE_SQL_STREAM_001 ...) ──► pumps ──► streams ──► outputs + error_stream
//! ```
//!
//! This is a front end, not a second engine: every KDA construct is translated into the
//! engine's own operators (window aggregates, sliding windows, joins, channel streams).

#![warn(missing_docs)]

pub mod app;
pub mod functions;
pub mod input;
pub mod program;
pub mod tokens;
pub mod translate;

pub use app::{KdaApplication, RunningApplication, ERROR_STREAM};
pub use program::{parse_program, Diagnostic};

use datafusion::prelude::SessionContext;

/// Registers the functions the KDA front end rewrites into (`kda_nonzero`, `kda_units`).
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(functions::kda_nonzero());
    ctx.register_udf(functions::kda_units());
}
