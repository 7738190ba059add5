//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Streaming SQL on Apache DataFusion: CREATE STREAM, watermarks and event-time windows.
#[derive(Debug, Parser)]
#[command(name = "dfstream", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a SQL script: DDL first, then every query runs continuously and prints each batch
    /// of results as it is emitted.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Run a Kinesis Data Analytics SQL application (CREATE STREAM / CREATE PUMP) on the demo
    /// ticker, a file replay or a Kinesis stream, writing its outputs to stdout, Kinesis or S3.
    Kda(crate::kda::KdaArgs),
    /// Validate a KDA application without running it: parse, resolve and plan every pump, and
    /// report every error with its statement and position.
    Check(crate::kda::InputArgs),
}

const RUN_HELP: &str = "\
A built-in demo stream `ticker` (ticker_symbol, sector, change, price, event_time; watermark
2 s behind event_time) is registered first unless --no-demo is given, e.g.:

  dfstream run -e \"SELECT window_start, window_end, ticker_symbol, COUNT(*) AS trades,
      AVG(price) AS avg_price
    FROM TABLE(TUMBLE(TABLE ticker, DESCRIPTOR(event_time), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, ticker_symbol\"

Files are streams declared in SQL:
  CREATE STREAM trades (ts TIMESTAMP(3), symbol VARCHAR, price DOUBLE,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
  WITH ('connector' = 'file', 'path' = 'trades.csv', 'format' = 'csv');
('path' = '-' reads standard input; 'format' = 'json' reads JSON lines.) A file ends, so its
queries end after emitting every window, and dfstream exits 0 when all queries have ended.

When the script has several queries, each table is preceded by `query N:` and csv/json rows
get a leading `query` column/field holding N (1-based, in script order).

Kinesis streams, S3 reference tables and sinks are declared in SQL too:
  CREATE STREAM s (...) WITH ('connector' = 'kinesis', 'stream' = 'name', ...);
  CREATE TABLE ref [(...)] WITH ('connector' = 'object_store', 'path' = 's3://b/ref.csv');
  CREATE SINK out [(...)] WITH ('connector' = 'object_store', 'path' = 's3://b/out/',
    'format' = 'parquet', 'partition_by' = 'dt_hour(window_start)');    -- or 'kinesis'
  INSERT INTO out SELECT ...;
An INSERT INTO a sink prints nothing on stdout: each object the sink completes is logged on
stderr (`dfstream: sink out: wrote s3://... (N rows, B bytes)`) and the status line adds the
rows the sinks received and wrote. See examples/kinesis_to_s3_parquet.sql.

A status line (rows in, rows out, events/s, watermark, late rows) goes to stderr every second
unless --quiet. Ctrl-C, --duration and --max-rows stop cleanly (exit 0): sinks first close
what they have open (every object complete; windows not yet closed are not written), a second
Ctrl-C abandons open objects (never visible partially) and exits 1. Errors exit 1.";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table per batch.
    Table,
    /// One JSON object per row.
    Json,
    /// CSV, with a header line once per query.
    Csv,
}

/// `dfstream run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// SQL script to run.
    #[arg(
        value_name = "FILE.sql",
        required_unless_present = "execute",
        conflicts_with = "execute"
    )]
    pub file: Option<PathBuf>,

    /// SQL to run (instead of a file); may start with a `--` comment.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "SQL",
        allow_hyphen_values = true
    )]
    pub execute: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// No status line on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not register the built-in demo stream `ticker`.
    #[arg(long)]
    pub no_demo: bool,

    /// Rows per second of the demo stream `ticker`.
    #[arg(long, value_name = "N", default_value_t = 10.0)]
    pub rate: f64,

    /// Stop after printing N result rows (over all queries).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,

    /// Stop after this much wall-clock time, e.g. 30s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// Parses a duration argument such as `30s`.
pub fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    datafusion_stream::source::parse_duration(s)
}
