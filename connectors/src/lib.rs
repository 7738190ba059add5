//! Connectors for datafusion-stream: sources registered as `CREATE STREAM ... WITH
//! ('connector' = '<name>', ...)`.
//!
//! ```text
//!  register_all(ctx) ──► 'demo'  generator::DemoTickerFactory  stock ticker rows paced by the
//!                    │                                          context clock (unbounded, or
//!                    │                                          'rows' then end)
//!                    ├─► 'file'  file::FileFactory             CSV / JSON lines from a file or
//!                    │                                          stdin, replayed in order (bounded)
//!                    └─► 'kinesis' kinesis::KinesisFactory     Kinesis data stream shards
//!
//!  sinks (CREATE SINK ... WITH ('connector' = ...), written by INSERT INTO):
//!     'object_store' | 'filesystem'  sink::FileSinkFactory       Parquet / JSON / CSV objects
//!     'kinesis'                      kinesis::KinesisSinkFactory PutRecords
//!  tables (CREATE TABLE ... WITH ('connector' = ...)):
//!     'object_store' | 'filesystem'  object_store::ReferenceTableFactory  reference tables
//! ```
//!
//! Every connector rejects options it does not know, naming them, and reports bad input with
//! the option, file and line it concerns.

#![warn(missing_docs)]

pub mod file;
pub mod generator;
pub mod kda;
pub mod kinesis;
pub mod object_store;
pub mod sink;

use std::sync::Arc;

use datafusion_stream::StreamContext;

pub use file::{FileConfig, FileFactory, FileFormat, FilePath, FileSource};
pub use generator::{
    demo_ticker_ddl, demo_ticker_schema, DemoTickerConfig, DemoTickerFactory, DemoTickerSource,
};

/// Registers every connector of this crate: the sources `'demo'`, `'file'` and `'kinesis'`,
/// the sinks `'object_store'` (alias `'filesystem'`) and `'kinesis'`, and the reference
/// tables `'object_store'` (alias `'filesystem'`).
pub fn register_all(ctx: &StreamContext) {
    ctx.register_source_factory(generator::CONNECTOR, Arc::new(DemoTickerFactory));
    ctx.register_source_factory(file::CONNECTOR, Arc::new(FileFactory));
    ctx.register_source_factory(kinesis::CONNECTOR, Arc::new(kinesis::KinesisFactory));
    for name in sink::factory::CONNECTORS {
        ctx.register_sink_factory(name, Arc::new(sink::FileSinkFactory));
    }
    ctx.register_sink_factory(kinesis::CONNECTOR, Arc::new(kinesis::KinesisSinkFactory));
    for name in object_store::table_factory::CONNECTORS {
        ctx.register_table_factory(name, Arc::new(object_store::ReferenceTableFactory));
    }
}
