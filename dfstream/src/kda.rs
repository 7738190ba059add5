//! `dfstream kda` and `dfstream check`: run or validate a Kinesis Data Analytics SQL
//! application.
//!
//! ```text
//!  APP.sql ─► KdaApplication ◄─ input SOURCE_SQL_STREAM_001: demo ticker | file replay
//!                 │ (a ROWTIME column in the file sets each record's ingest time)
//!                 ▼ start
//!  loop: next event ─► each output stream's new rows ─► stdout (JSON lines or CSV, with the
//!        stream name) ── Ctrl-C / --duration / --max-rows / inputs ended ─► stop
//!  check: parse + resolve + plan every pump ─► FILE:line:column: statement N: message
//! ```

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_datafusion_err, plan_datafusion_err, plan_err, Result};
use datafusion::datasource::MemTable;
use datafusion_stream::{StreamRuntime, StreamSource};
use datafusion_stream_connectors::file::{FileConfig, FileFormat, FilePath, FileSource};
use datafusion_stream_connectors::generator::{
    demo_ticker_schema, DemoTickerConfig, DemoTickerSource,
};
use datafusion_stream_connectors::kda::{
    ApplicationDetail, InputSchema, RecordDecoder, RecordFormatType, RecordMeta,
};
use datafusion_stream_kda::input::RenamedSource;
use datafusion_stream_kda::program::{parse_columns, Diagnostic};
use datafusion_stream_kda::{KdaApplication, ERROR_STREAM};

/// Output formats of `dfstream kda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KdaFormat {
    /// One JSON object per row, with a `stream` field.
    Json,
    /// CSV: a header per stream (first field `stream`), then its rows.
    Csv,
}

/// Where the application's input stream comes from.
#[derive(Debug, clap::Args, Clone)]
pub struct InputArgs {
    /// The application code (CREATE STREAM / CREATE PUMP statements); defaults to the
    /// ApplicationCode of --description.
    #[arg(value_name = "APP.sql", required_unless_present = "description")]
    pub code: Option<PathBuf>,
    /// A KDA application description, as `aws kinesisanalytics describe-application` prints
    /// it: input stream names and InputSchema (JSONPath / CSV mapping), reference tables (their
    /// FileKey is read from --reference-dir), outputs and, without APP.sql, the code.
    #[arg(long, value_name = "app.json")]
    pub description: Option<PathBuf>,
    /// Directory holding the reference-data files named by the description's FileKeys
    /// (default: the description's directory).
    #[arg(long, value_name = "DIR")]
    pub reference_dir: Option<PathBuf>,
    /// Input: `ticker` (the built-in demo stream: TICKER_SYMBOL, SECTOR, CHANGE, PRICE,
    /// EVENT_TIME) or a CSV / JSON-lines file (`.csv`, `.json`, `.jsonl`; `-` for stdin as JSON
    /// lines). A column/field named ROWTIME in the file sets each record's ingest time.
    #[arg(long, default_value = "ticker")]
    pub input: String,
    /// Columns of a file input, as in CREATE STREAM: "TICKER VARCHAR(4), PRICE DOUBLE".
    #[arg(long, value_name = "COLUMNS")]
    pub input_schema: Option<String>,
    /// Name of the input in-application stream.
    #[arg(long, default_value = "SOURCE_SQL_STREAM_001")]
    pub input_name: String,
    /// Rows per second of the demo ticker.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
}

/// `dfstream kda`.
#[derive(Debug, clap::Args)]
pub struct KdaArgs {
    /// Application and input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Streams to print (repeatable); default: every stream no pump reads, plus error_stream.
    #[arg(long = "output", value_name = "STREAM")]
    pub outputs: Vec<String>,
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

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| exec_datafusion_err!("cannot read '{}': {e}", path.display()))
}

fn columns(decl: &str) -> Result<SchemaRef> {
    parse_columns(decl)
        .map(Arc::new)
        .map_err(|e| plan_datafusion_err!("--input-schema: {e}"))
}

/// Whether the first record of a file has a ROWTIME column.
fn file_has_rowtime(path: &Path, format: &FileFormat) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    if std::io::BufReader::new(f).read_line(&mut line).is_err() {
        return false;
    }
    match format {
        FileFormat::Json => line.contains("\"ROWTIME\""),
        _ => line
            .trim_end()
            .split(',')
            .any(|h| h.trim().trim_matches('"') == "ROWTIME"),
    }
}

/// The code file named in diagnostics.
fn code_path(args: &InputArgs) -> PathBuf {
    args.code
        .clone()
        .or_else(|| args.description.clone())
        .unwrap_or_default()
}

/// Loads a reference table from a local file with its KDA ReferenceSchema.
fn reference_table(
    path: &Path,
    schema: &InputSchema,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let bytes = std::fs::read(path)
        .map_err(|e| exec_datafusion_err!("reference data '{}': {e}", path.display()))?;
    let mut decoder = RecordDecoder::try_new(schema)?;
    let origin = path.display().to_string();
    let records: Vec<&[u8]> = match schema.format_type() {
        RecordFormatType::Json => bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .collect(),
        RecordFormatType::Csv => vec![bytes.as_slice()],
    };
    for r in records {
        let meta = RecordMeta {
            origin: &origin,
            error_time: 0,
            rowtime: None,
        };
        let decoded = decoder.decode(r, &meta);
        if let Some(e) = decoded.rejected.first() {
            return Err(exec_datafusion_err!(
                "reference data '{}': {}: {}",
                path.display(),
                e.name,
                e.message
            ));
        }
    }
    let batch = decoder.finish()?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    Ok(Arc::new(table))
}

/// The demo ticker with KDA's upper-case column names.
fn demo_input(name: &str, rate: f64, seed: u64) -> Result<Arc<dyn StreamSource>> {
    let config = DemoTickerConfig {
        rate,
        seed,
        ..Default::default()
    };
    let demo = DemoTickerSource::try_new(name, demo_ticker_schema(), config)?;
    Ok(Arc::new(RenamedSource::upper_case(Arc::new(demo))?))
}

/// A file replay (`-`: standard input); a ROWTIME column in the file's first record makes
/// the file supply each record's ingest time.
fn file_input(
    name: &str,
    input: &str,
    schema: SchemaRef,
    format: FileFormat,
    input_schema: Option<InputSchema>,
) -> Result<Arc<dyn StreamSource>> {
    let path = if input == "-" {
        FilePath::Stdin
    } else {
        FilePath::File(PathBuf::from(input))
    };
    let rowtime_column = match &path {
        FilePath::File(p) if file_has_rowtime(p, &format) => Some("ROWTIME".to_string()),
        _ => None,
    };
    let config = FileConfig {
        path,
        format,
        rowtime_column,
        batch_size: 1024,
        input_schema,
    };
    Ok(Arc::new(FileSource::try_new(name, schema, config)?))
}

/// Builds the application with its input (not started).
pub fn build(args: &InputArgs, runtime: StreamRuntime) -> Result<(KdaApplication, String)> {
    let description = match &args.description {
        Some(p) => Some(ApplicationDetail::from_json(&read(p)?)?),
        None => None,
    };
    let code = match (&args.code, &description) {
        (Some(p), _) => read(p)?,
        (None, Some(d)) => d.application_code.clone().ok_or_else(|| {
            plan_datafusion_err!("the description has no ApplicationCode; give APP.sql")
        })?,
        (None, None) => return plan_err!("give APP.sql or --description"),
    };
    let mut app = KdaApplication::new(runtime)?;
    if let Some(d) = &description {
        let dir = args
            .reference_dir
            .clone()
            .or_else(|| {
                args.description
                    .as_ref()
                    .and_then(|p| p.parent().map(|p| p.to_path_buf()))
            })
            .unwrap_or_default();
        for r in &d.reference_data_sources {
            let key = r
                .s3_reference_data_source
                .as_ref()
                .map(|s| s.file_key.clone())
                .unwrap_or_else(|| r.table_name.clone());
            let table = reference_table(&dir.join(&key), &r.reference_schema)?;
            app.add_reference_table(&r.table_name, table)?;
        }
        if let Some(input) = d.inputs.first() {
            let names = input.stream_names();
            if args.input == "ticker" {
                for (i, name) in names.iter().enumerate() {
                    app.add_input(name, demo_input(name, args.rate, 42 + i as u64)?)?;
                }
            } else {
                if names.len() != 1 {
                    return plan_err!(
                        "--input {}: a file replay feeds one in-application stream; the description's InputParallelism gives {}",
                        args.input,
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
                let src = file_input(
                    &names[0],
                    &args.input,
                    input.input_schema.arrow_schema()?,
                    format,
                    Some(input.input_schema.clone()),
                )?;
                app.add_input(&names[0], src)?;
            }
            return Ok((app, code));
        }
    }
    if args.input == "ticker" {
        app.add_input(
            &args.input_name,
            demo_input(&args.input_name, args.rate, 42)?,
        )?;
    } else {
        let Some(decl) = &args.input_schema else {
            return plan_err!(
                "--input {}: a file input needs --input-schema \"COL TYPE, ...\"",
                args.input
            );
        };
        let format = if args.input == "-" {
            FileFormat::Json
        } else {
            match Path::new(&args.input).extension().and_then(|e| e.to_str()) {
                Some("json") | Some("jsonl") | Some("ndjson") => FileFormat::Json,
                Some("csv") => FileFormat::Csv {
                    header: true,
                    delimiter: b',',
                },
                _ => {
                    return plan_err!(
                        "--input {}: use a .csv, .json or .jsonl file (or 'ticker')",
                        args.input
                    )
                }
            }
        };
        let src = file_input(&args.input_name, &args.input, columns(decl)?, format, None)?;
        app.add_input(&args.input_name, src)?;
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
pub async fn check(args: InputArgs) -> Result<bool> {
    let (mut app, code) = build(&args, StreamRuntime::default())?;
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
    headers: std::collections::HashSet<String>,
}

impl Printer {
    fn print(&mut self, stream: &str, batch: &RecordBatch) -> Result<()> {
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

/// `dfstream kda`: runs the application until its inputs end, `--max-rows`, `--duration` or
/// Ctrl-C.
pub async fn run(args: KdaArgs) -> Result<()> {
    let (mut app, code) = build(&args.input, StreamRuntime::default())?;
    if let Err(d) = app.load_code(&code) {
        print_diagnostics(&code_path(&args.input), &d);
        return Err(exec_datafusion_err!(
            "the application has {} error(s)",
            d.len()
        ));
    }
    let described: Vec<String> = match &args.input.description {
        Some(p) => ApplicationDetail::from_json(&read(p)?)?
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .collect(),
        None => Vec::new(),
    };
    let outputs = if !args.outputs.is_empty() {
        args.outputs.clone()
    } else if !described.is_empty() {
        described
    } else {
        let mut o = app.sink_streams();
        o.push(ERROR_STREAM.to_string());
        o
    };
    for o in &outputs {
        app.add_output(o)?;
    }
    let mut running = match app.start_checked().await? {
        Ok(r) => r,
        Err(d) => {
            print_diagnostics(&code_path(&args.input), &d);
            return Err(exec_datafusion_err!(
                "the application has {} error(s)",
                d.len()
            ));
        }
    };
    let mut printer = Printer {
        format: args.format,
        headers: Default::default(),
    };
    let mut printed = 0u64;
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    loop {
        let more = tokio::select! {
            r = running.next_event() => r?,
            _ = tokio::signal::ctrl_c() => false,
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending::<()>().await,
                }
            } => false,
        };
        for name in &outputs {
            for b in running.take_output(name) {
                let b = match args.max_rows {
                    Some(max) if printed + b.num_rows() as u64 > max => {
                        b.slice(0, (max - printed) as usize)
                    }
                    _ => b,
                };
                printed += b.num_rows() as u64;
                if b.num_rows() > 0 {
                    printer.print(name, &b)?;
                }
            }
        }
        if !more || args.max_rows.is_some_and(|m| printed >= m) {
            break;
        }
    }
    Ok(())
}
