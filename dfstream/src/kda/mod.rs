//! `dfstream kda` and `dfstream check`: run or validate a Kinesis Data Analytics SQL
//! application, on the demo ticker, a file replay or a Kinesis data stream, with reference
//! data from S3 or local files, writing its outputs to stdout, Kinesis or files on S3.
//!
//! ```text
//!  app.json (describe-application) ─┬─ InputDescriptions ─► inputs::  demo | file | Kinesis
//!  APP.sql                          │                        (PREFIX_001..N, ROWTIME = ingest)
//!                                   ├─ ReferenceDataSources ─► inputs::reference_table (S3 | dir)
//!                                   └─ OutputDescriptions ─┐
//!  --sink STREAM=URL ──────────────────────────────────────┴► outputs::plan_destinations
//!                 │                                            (errors before anything runs)
//!                 ▼
//!          KdaApplication ── start ──► RunningApplication
//!  loop: next event | Ctrl-C | --duration | 500 ms tick
//!        per output stream: take_output ─► destinations (Kinesis PutRecords / FileSink)
//!                                      └─► stdout (streams without a destination)
//!                           output_rowtime_bound ─► FileSink progress (rolls)
//!  stop (Ctrl-C, --duration, --max-rows, inputs ended): files completed, summary on stderr
//!  error: open files aborted (no partial object), exit 1
//!  check: parse + resolve + plan every pump (stand-in inputs and tables: nothing contacted)
//!         ─► FILE:line:column: statement N: message
//! ```

pub mod inputs;
pub mod outputs;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{
    exec_datafusion_err, plan_datafusion_err, plan_err, DataFusionError, Result,
};
use datafusion_stream::StreamRuntime;
use datafusion_stream_connectors::file::FileFormat;
use datafusion_stream_connectors::kda::{
    ApplicationDetail, InputDescription, InputSchema, RecordFormatType,
};
use datafusion_stream_connectors::kinesis::PayloadFormat;
use datafusion_stream_kda::program::{parse_columns, Diagnostic};
use datafusion_stream_kda::{KdaApplication, RunningApplication, ERROR_STREAM};

use inputs::{Endpoints, KinesisInput, Mode, ReferenceSources};
use outputs::Destination;

/// Output formats of `dfstream kda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KdaFormat {
    /// One JSON object per row, with a `stream` field.
    Json,
    /// CSV: a header per stream (first field `stream`), then its rows.
    Csv,
}

/// Where the application's input stream and reference data come from.
#[derive(Debug, clap::Args, Clone)]
pub struct InputArgs {
    /// The application code (CREATE STREAM / CREATE PUMP statements); defaults to the
    /// ApplicationCode of --description.
    #[arg(value_name = "APP.sql", required_unless_present = "description")]
    pub code: Option<PathBuf>,
    /// A KDA application description, as `aws kinesisanalytics describe-application` prints
    /// it: the input (Kinesis stream ARN, InputSchema with JSONPath / CSV mappings,
    /// InputParallelism, starting position), reference tables (S3 BucketARN + FileKey, or
    /// files under --reference-dir), outputs (Kinesis streams) and, without APP.sql, the code.
    #[arg(long, value_name = "app.json")]
    pub description: Option<PathBuf>,
    /// Directory holding the reference-data files named by the description's FileKeys; takes
    /// precedence over the S3 location (default: S3 when the description gives a bucket, else
    /// the description's directory).
    #[arg(long, value_name = "DIR")]
    pub reference_dir: Option<PathBuf>,
    /// Input: `ticker` (the built-in demo stream: TICKER_SYMBOL, SECTOR, CHANGE, PRICE,
    /// EVENT_TIME), a CSV / JSON-lines file (`.csv`, `.json`, `.jsonl`; `-` for stdin as JSON
    /// lines; a ROWTIME column/field sets each record's ingest time), or a Kinesis data stream
    /// (`kinesis://NAME` or its ARN). Default: the description's Kinesis stream, else `ticker`.
    #[arg(long)]
    pub input: Option<String>,
    /// Columns of a file or Kinesis input without a description, as in CREATE STREAM:
    /// "TICKER VARCHAR(4), PRICE DOUBLE" (JSON keys / CSV header names match column names),
    /// or a file holding a KDA InputSchema (JSON, as in the API).
    #[arg(long, value_name = "COLUMNS")]
    pub input_schema: Option<String>,
    /// Name of the input in-application stream (without a description).
    #[arg(long, default_value = "SOURCE_SQL_STREAM_001")]
    pub input_name: String,
    /// Rows per second of the demo ticker.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Where a Kinesis input starts: NOW, TRIM_HORIZON (LAST_STOPPED_POINT needs a checkpoint
    /// dfstream does not keep yet: an error). Default: the description's
    /// InputStartingPosition, else NOW.
    #[arg(long, value_name = "POSITION")]
    pub starting_position: Option<String>,
    /// Kinesis endpoint, e.g. http://127.0.0.1:4567 (default: AWS_ENDPOINT_URL_KINESIS,
    /// AWS_ENDPOINT_URL, else the region's AWS endpoint).
    #[arg(long, value_name = "URL")]
    pub kinesis_endpoint: Option<String>,
    /// S3 endpoint, e.g. http://127.0.0.1:5000 (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
}

impl InputArgs {
    fn endpoints(&self) -> Endpoints {
        Endpoints {
            kinesis: self.kinesis_endpoint.clone(),
            s3: self.s3_endpoint.clone(),
        }
    }
}

/// `dfstream kda`.
#[derive(Debug, clap::Args)]
pub struct KdaArgs {
    /// Application and input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Streams to print (repeatable); default: the description's outputs that have no
    /// destination, else every stream no pump reads, plus error_stream. A stream with a
    /// destination (a Kinesis output, --sink) is not printed.
    #[arg(long = "output", value_name = "STREAM")]
    pub outputs: Vec<String>,
    /// Write an in-application stream (or error_stream) to a destination (repeatable; a stream
    /// may have several): `kinesis://NAME` or a Kinesis stream ARN (`?format=json|csv`,
    /// `partition_key_column=COL`), or files `s3://bucket/prefix/` / `file:///dir/` with
    /// `?format=parquet|json|csv|kda-json|kda-csv` (default parquet) and roll options
    /// (`roll_rows=N`, `roll_interval=60s`, `roll_bytes=64MiB`, `roll_boundary=1m`, ...).
    #[arg(long = "sink", value_name = "STREAM=URL")]
    pub sinks: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = KdaFormat::Json)]
    pub format: KdaFormat,
    /// Stop after printing N rows.
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Stop after this much wall-clock time, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = crate::args::parse_duration_arg)]
    pub duration: Option<Duration>,
}

/// The message of an error without DataFusion's prefixes (to nest it in another message).
pub(crate) fn strip(e: &DataFusionError) -> String {
    let s = e.find_root().to_string();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "External error: ",
        "Schema error: ",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    s
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| exec_datafusion_err!("cannot read '{}': {e}", path.display()))
}

fn columns(decl: &str) -> Result<SchemaRef> {
    parse_columns(decl)
        .map(Arc::new)
        .map_err(|e| plan_datafusion_err!("--input-schema: {e}"))
}

/// The code file named in diagnostics.
fn code_path(args: &InputArgs) -> PathBuf {
    args.code
        .clone()
        .or_else(|| args.description.clone())
        .unwrap_or_default()
}

fn load_description(args: &InputArgs) -> Result<Option<ApplicationDetail>> {
    match &args.description {
        Some(p) => Ok(Some(ApplicationDetail::from_json(&read(p)?)?)),
        None => Ok(None),
    }
}

/// The starting position: `--starting-position`, else the description's, else NOW.
fn start_of(args: &InputArgs, input: Option<&InputDescription>) -> Result<String> {
    if let Some(p) = &args.starting_position {
        return Ok(p.clone());
    }
    Ok(input
        .and_then(|i| i.input_starting_position_configuration.as_ref())
        .and_then(|c| c.input_starting_position.clone())
        .unwrap_or_else(|| "NOW".to_string()))
}

/// Adds the description's input (or the `--input` override) to the application.
fn add_described_input(
    app: &mut KdaApplication,
    args: &InputArgs,
    input: &InputDescription,
    mode: Mode,
) -> Result<()> {
    let names = input.stream_names();
    let kinesis = match args.input.as_deref() {
        Some(spec) => inputs::kinesis_target(spec).transpose()?,
        None => match (&input.kinesis_streams_input, &input.kinesis_firehose_input) {
            (Some(k), _) => Some(
                datafusion_stream_connectors::kda::Arn::kinesis_stream(&k.resource_arn)
                    .map(|(n, r)| (n, Some(r)))
                    .map_err(|e| {
                        plan_datafusion_err!("input '{}': {}", input.name_prefix, strip(&e))
                    })?,
            ),
            (None, Some(f)) => {
                return plan_err!(
                    "input '{}' is the Kinesis Data Firehose delivery stream {}; dfstream reads Kinesis data streams: give --input kinesis://STREAM, a file or ticker",
                    input.name_prefix,
                    f.resource_arn
                )
            }
            (None, None) => None,
        },
    };
    if let Some((stream, region)) = kinesis {
        let start = inputs::starting_position(&start_of(args, Some(input))?)
            .map_err(|e| plan_datafusion_err!("input '{}': {}", input.name_prefix, strip(&e)))?;
        let sources = inputs::kinesis_inputs(
            KinesisInput {
                stream,
                region,
                start,
                schema: input.input_schema.arrow_schema()?,
                format: PayloadFormat::Kda(Box::new(input.input_schema.clone())),
            },
            &names,
            &args.endpoints(),
            mode,
        )?;
        for (name, source) in sources {
            app.add_input(&name, source)?;
        }
        return Ok(());
    }
    let spec = args.input.as_deref().unwrap_or("ticker");
    if spec == "ticker" {
        for (i, name) in names.iter().enumerate() {
            app.add_input(name, inputs::demo_input(name, args.rate, 42 + i as u64)?)?;
        }
        return Ok(());
    }
    if names.len() != 1 {
        return plan_err!(
            "--input {spec}: a file replay feeds one in-application stream; the description's InputParallelism gives {}",
            names.len()
        );
    }
    let format = match input.input_schema.format_type() {
        RecordFormatType::Json => FileFormat::Json,
        RecordFormatType::Csv => FileFormat::Csv {
            header: false,
            delimiter: b',',
        },
    };
    let src = inputs::file_input(
        &names[0],
        spec,
        input.input_schema.arrow_schema()?,
        format,
        Some(input.input_schema.clone()),
    )?;
    app.add_input(&names[0], src)
}

/// `--input-schema`: a file holding a KDA InputSchema, or column declarations.
fn input_schema_arg(decl: &str) -> Result<(SchemaRef, Option<InputSchema>)> {
    let path = Path::new(decl.trim());
    if decl.trim().ends_with(".json") && path.is_file() {
        let schema = InputSchema::from_json(&read(path)?)
            .map_err(|e| plan_datafusion_err!("--input-schema {decl}: {}", e.message()))?;
        return Ok((schema.arrow_schema()?, Some(schema)));
    }
    Ok((columns(decl)?, None))
}

/// Adds `--input` without a description.
fn add_plain_input(app: &mut KdaApplication, args: &InputArgs, mode: Mode) -> Result<()> {
    let spec = args.input.as_deref().unwrap_or("ticker");
    let name = &args.input_name;
    if spec == "ticker" {
        return app.add_input(name, inputs::demo_input(name, args.rate, 42)?);
    }
    let Some(decl) = &args.input_schema else {
        return plan_err!(
            "--input {spec}: give the columns with --input-schema \"COL TYPE, ...\" (or a KDA InputSchema .json file), or a --description"
        );
    };
    let (schema, input_schema) = input_schema_arg(decl)?;
    if let Some(target) = inputs::kinesis_target(spec) {
        let (stream, region) = target?;
        let start = inputs::starting_position(&start_of(args, None)?)?;
        let format = match input_schema {
            Some(s) => PayloadFormat::Kda(Box::new(s)),
            None => PayloadFormat::Json,
        };
        let sources = inputs::kinesis_inputs(
            KinesisInput {
                stream,
                region,
                start,
                schema,
                format,
            },
            std::slice::from_ref(name),
            &args.endpoints(),
            mode,
        )?;
        for (n, s) in sources {
            app.add_input(&n, s)?;
        }
        return Ok(());
    }
    let format = match &input_schema {
        Some(s) => match s.format_type() {
            RecordFormatType::Json => FileFormat::Json,
            RecordFormatType::Csv => FileFormat::Csv {
                header: false,
                delimiter: b',',
            },
        },
        None if spec == "-" => FileFormat::Json,
        None => match Path::new(spec).extension().and_then(|e| e.to_str()) {
            Some("json") | Some("jsonl") | Some("ndjson") => FileFormat::Json,
            Some("csv") => FileFormat::Csv {
                header: true,
                delimiter: b',',
            },
            _ => {
                return plan_err!(
                    "--input {spec}: use a .csv, .json or .jsonl file, kinesis://STREAM or 'ticker'"
                )
            }
        },
    };
    let src = inputs::file_input(name, spec, schema, format, input_schema)?;
    app.add_input(name, src)
}

/// Builds the application with its inputs and reference tables (not started).
pub async fn build(
    args: &InputArgs,
    description: Option<&ApplicationDetail>,
    runtime: StreamRuntime,
    mode: Mode,
) -> Result<(KdaApplication, String)> {
    let code = match (&args.code, description) {
        (Some(p), _) => read(p)?,
        (None, Some(d)) => d.application_code.clone().ok_or_else(|| {
            plan_datafusion_err!("the description has no ApplicationCode; give APP.sql")
        })?,
        (None, None) => return plan_err!("give APP.sql or --description"),
    };
    let mut app = KdaApplication::new(runtime)?;
    match description {
        Some(d) => {
            let sources = ReferenceSources {
                dir: args.reference_dir.clone(),
                description_dir: args
                    .description
                    .as_ref()
                    .and_then(|p| p.parent().map(|p| p.to_path_buf()))
                    .unwrap_or_default(),
            };
            for r in &d.reference_data_sources {
                let table = inputs::reference_table(r, &sources, &args.endpoints(), mode).await?;
                app.add_reference_table(&r.table_name, table)?;
            }
            match d.inputs.first() {
                Some(input) => add_described_input(&mut app, args, input, mode)?,
                None => add_plain_input(&mut app, args, mode)?,
            }
        }
        None => add_plain_input(&mut app, args, mode)?,
    }
    Ok((app, code))
}

fn print_diagnostics(file: &Path, diags: &[Diagnostic]) {
    for d in diags {
        eprintln!(
            "{}:{}:{}: statement {}: {}",
            file.display(),
            d.line,
            d.column,
            d.statement,
            d.message
        );
    }
}

/// `dfstream check`: 0 when the application plans, 1 with every problem listed otherwise.
/// Inputs and reference tables are stand-ins with their declared columns: no server is
/// contacted.
pub async fn check(args: InputArgs) -> Result<bool> {
    let description = load_description(&args)?;
    let (mut app, code) = build(
        &args,
        description.as_ref(),
        StreamRuntime::default(),
        Mode::Check,
    )
    .await?;
    if let Err(d) = app.load_code(&code) {
        print_diagnostics(&code_path(&args), &d);
        return Ok(false);
    }
    let streams = app.stream_names().len();
    let diags = app.check().await;
    if diags.is_empty() {
        println!(
            "{}: ok ({streams} stream(s); every pump parses, resolves and plans)",
            code_path(&args).display()
        );
        Ok(true)
    } else {
        print_diagnostics(&code_path(&args), &diags);
        Ok(false)
    }
}

struct Printer {
    format: KdaFormat,
    headers: HashSet<String>,
}

impl Printer {
    fn print(&mut self, stream: &str, batch: &RecordBatch) -> Result<()> {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match self.format {
            KdaFormat::Json => {
                let mut buf = Vec::new();
                {
                    let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                    w.write(batch)?;
                    w.finish()?;
                }
                let prefix = format!("{{\"stream\":\"{}\",", stream.replace('"', "\\\""));
                for line in String::from_utf8_lossy(&buf).lines() {
                    let body = line.strip_prefix('{').unwrap_or(line);
                    writeln!(out, "{prefix}{body}")?;
                }
            }
            KdaFormat::Csv => {
                let first = self.headers.insert(stream.to_string());
                let mut buf = Vec::new();
                {
                    let mut w = datafusion::arrow::csv::WriterBuilder::new()
                        .with_header(first)
                        .build(&mut buf);
                    w.write(batch)?;
                }
                for (i, line) in String::from_utf8_lossy(&buf).lines().enumerate() {
                    let tag = if first && i == 0 { "stream" } else { stream };
                    writeln!(out, "{tag},{line}")?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// What the run loop delivers where.
struct Delivery {
    /// Every output stream: printed ones first, then those with destinations.
    streams: Vec<String>,
    printed: HashSet<String>,
    printer: Printer,
    printed_rows: u64,
    max_rows: Option<u64>,
}

impl Delivery {
    /// Moves every output's new rows to stdout and the destinations; true once `--max-rows`
    /// rows were printed.
    async fn deliver(
        &mut self,
        running: &mut RunningApplication,
        destinations: &mut [Destination],
    ) -> Result<bool> {
        for name in &self.streams {
            let batches = running.take_output(name);
            let bound = running.output_rowtime_bound(name);
            for d in destinations.iter_mut().filter(|d| d.stream() == name) {
                for b in &batches {
                    d.write(b).await?;
                }
                d.progress(bound).await?;
            }
            if !self.printed.contains(name) {
                continue;
            }
            for b in batches {
                let b = match self.max_rows {
                    Some(max) if self.printed_rows + b.num_rows() as u64 > max => {
                        b.slice(0, (max - self.printed_rows) as usize)
                    }
                    _ => b,
                };
                self.printed_rows += b.num_rows() as u64;
                if b.num_rows() > 0 {
                    self.printer.print(name, &b)?;
                }
            }
        }
        Ok(self.max_rows.is_some_and(|m| self.printed_rows >= m))
    }
}

/// `dfstream kda`: runs the application until its inputs end, `--max-rows`, `--duration` or
/// Ctrl-C, then completes every destination.
pub async fn run(args: KdaArgs) -> Result<()> {
    let description = load_description(&args.input)?;
    let described = description
        .as_ref()
        .map(|d| d.outputs.clone())
        .unwrap_or_default();
    // Destinations are checked before anything is contacted.
    let plans = outputs::plan_destinations(&described, &args.sinks)?;
    let (mut app, code) = build(
        &args.input,
        description.as_ref(),
        StreamRuntime::default(),
        Mode::Run,
    )
    .await?;
    if let Err(d) = app.load_code(&code) {
        print_diagnostics(&code_path(&args.input), &d);
        return Err(exec_datafusion_err!(
            "the application has {} error(s)",
            d.len()
        ));
    }
    let mut printed: Vec<String> = if !args.outputs.is_empty() {
        args.outputs.clone()
    } else if !described.is_empty() {
        described.iter().map(|o| o.name.clone()).collect()
    } else {
        let mut o = app.sink_streams();
        o.push(ERROR_STREAM.to_string());
        o
    };
    printed.retain(|s| !plans.contains_key(s));
    let mut streams = printed.clone();
    streams.extend(plans.keys().filter(|s| !printed.contains(s)).cloned());
    for o in &streams {
        app.add_output(o).map_err(|e| {
            if plans.contains_key(o) {
                plan_datafusion_err!(
                    "--sink {o}: the application has no in-application stream named {o} ({})",
                    strip(&e)
                )
            } else {
                e
            }
        })?;
    }
    let endpoints = args.input.endpoints();
    let mut destinations: Vec<Destination> = Vec::new();
    for (stream, list) in &plans {
        for plan in list {
            match Destination::open(stream, plan, stream != ERROR_STREAM, &endpoints).await {
                Ok(d) => destinations.push(d),
                Err(e) => {
                    outputs::abort_all(destinations).await;
                    return Err(e);
                }
            }
        }
    }
    let mut running = match app.start_checked().await? {
        Ok(r) => r,
        Err(d) => {
            print_diagnostics(&code_path(&args.input), &d);
            outputs::abort_all(destinations).await;
            return Err(exec_datafusion_err!(
                "the application has {} error(s)",
                d.len()
            ));
        }
    };
    let mut delivery = Delivery {
        streams,
        printed: printed.into_iter().collect(),
        printer: Printer {
            format: args.format,
            headers: Default::default(),
        },
        printed_rows: 0,
        max_rows: args.max_rows,
    };
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling: never stop for Ctrl-C (the default action still ends us).
            futures::future::pending::<()>().await;
        }
    };
    tokio::pin!(ctrl_c);
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(3600)));
    tokio::pin!(deadline);
    // Rolls files by age and on progress even when no row arrives.
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result: Result<()> = loop {
        let more = tokio::select! {
            biased;
            _ = &mut ctrl_c => false,
            _ = &mut deadline, if args.duration.is_some() => false,
            r = running.next_event() => match r {
                Ok(m) => m,
                Err(e) => break Err(e),
            },
            _ = ticks.tick() => true,
        };
        match delivery.deliver(&mut running, &mut destinations).await {
            Ok(done) if done || !more => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    match result {
        Ok(()) => {
            for line in outputs::close_all(destinations).await? {
                eprintln!("dfstream: {line}");
            }
            Ok(())
        }
        Err(e) => {
            outputs::abort_all(destinations).await;
            Err(e)
        }
    }
}
