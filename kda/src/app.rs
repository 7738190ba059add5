//! A KDA application on the streaming engine: in-application streams, pumps, outputs and the
//! error stream.
//!
//! ```text
//!  input stream (Kinesis, file, demo) ─► StreamTable "SOURCE_SQL_STREAM_001"
//!        │ scan                                   ▲ scan (readers register on open)
//!        ▼                                        │
//!  pump P1: translated SELECT ─► MessageInput ─► writer ─► ChannelSource "S1" (1 partition per
//!        (rows + progress)     cast to S1's columns,          writer partition)
//!                              NOT NULL / ROWTIME order checks ──► error_stream
//!  output "S1" ◄─ scan of S1 ─ ROWTIME + columns, collected for the caller
//! ```
//!
//! Pumps are planned in dependency order: a stream is registered (with one partition per
//! partition of every pump writing it) once all its writers are planned, so that the pumps
//! reading it see its final partitioning. Cycles are rejected. At run time one loop drives
//! every pump and output ([`RunningApplication::poll_round`]): deterministic under a manual
//! clock (tests drive it until nothing moves), and event-driven under the wall clock (the
//! CLI awaits [`RunningApplication::next_event`]).
//!
//! ROWTIME (SPEC §2.1): rows keep the ROWTIME of the row the query produced them from (or
//! the window end, the later side of a join, or an `expr AS ROWTIME` override). Progress of a
//! pump's query becomes a rowtime bound of its target, so windows downstream close without
//! waiting for the next row. A row whose ROWTIME would go backwards in its target, or that
//! puts NULL into a NOT NULL column, goes to `error_stream`, as does a row whose expressions
//! fail (division by zero); the other rows keep flowing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::compute::{can_cast_types, cast, filter};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::{exec_datafusion_err, plan_err, DataFusionError, Result, TableReference};
use datafusion::execution::TaskContext;
use datafusion::sql::sqlparser::tokenizer::Token;
use datafusion_stream::errors::{ErrorRecord, ErrorSink};
use datafusion_stream::exec::messages::{MessageInput, MessageStream};
use datafusion_stream::exec::pipeline::row_error;
use datafusion_stream::scan::{StreamMessage, StreamScanExec};
use datafusion_stream::source::channel::{ChannelSource, ChannelWriter};
use datafusion_stream::time::{format_millis, Millis, WATERMARK_MAX, WATERMARK_MIN};
use datafusion_stream::{
    RowtimeMode, SourceEvent, StreamContext, StreamRuntime, StreamSource, StreamTable,
};
use futures::StreamExt;

use crate::program::{
    diagnostics_error, parse_program_lenient, ColumnDecl, Diagnostic, ProgramStatement, PumpDecl,
    StatementKind, StreamDecl,
};
use crate::tokens::ident_name;
use crate::translate::{translate_query, Catalog, RelationKind, ROWTIME};

/// The name of the system error stream.
pub const ERROR_STREAM: &str = "error_stream";

/// Rejected records of the application, in order.
#[derive(Debug, Default)]
pub struct ErrorQueue {
    records: Mutex<VecDeque<ErrorRecord>>,
}

impl ErrorQueue {
    fn drain(&self) -> Vec<ErrorRecord> {
        match self.records.lock() {
            Ok(mut g) => g.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        }
    }
}

impl ErrorSink for ErrorQueue {
    fn report(&self, record: ErrorRecord) -> Result<()> {
        match self.records.lock() {
            Ok(mut g) => g.push_back(record),
            Err(p) => p.into_inner().push_back(record),
        }
        Ok(())
    }
}

/// Tags the records of one pump with its name.
#[derive(Debug)]
struct PumpErrors {
    pump: String,
    queue: Arc<ErrorQueue>,
}

impl ErrorSink for PumpErrors {
    fn report(&self, record: ErrorRecord) -> Result<()> {
        if record.from_input {
            // A record the input could not decode: no pump is involved.
            return self.queue.report(record);
        }
        self.queue.report(record.with_pump(self.pump.clone()))
    }
}

/// A pump (or a bare query) as written.
#[derive(Debug, Clone)]
struct PumpSpec {
    name: String,
    /// `None`: a bare query whose rows go to an output of the same name.
    target: Option<String>,
    columns: Option<Vec<String>>,
    query: Vec<Token>,
    statement: usize,
    line: u64,
    column: u64,
}

/// A KDA application: its code, inputs, reference tables and outputs.
pub struct KdaApplication {
    ctx: StreamContext,
    catalog: Catalog,
    inputs: Vec<String>,
    streams: BTreeMap<String, StreamDecl>,
    pumps: Vec<PumpSpec>,
    outputs: Vec<String>,
    errors: Arc<ErrorQueue>,
}

impl std::fmt::Debug for KdaApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdaApplication")
            .field("inputs", &self.inputs)
            .field("streams", &self.streams.keys().collect::<Vec<_>>())
            .field(
                "pumps",
                &self.pumps.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KdaApplication {
    /// An empty application on `runtime` (its clock and settings; the error sink is the
    /// application's `error_stream`).
    pub fn new(runtime: StreamRuntime) -> Result<Self> {
        let errors = Arc::new(ErrorQueue::default());
        let runtime = StreamRuntime {
            errors: Arc::clone(&errors) as Arc<dyn ErrorSink>,
            ..runtime
        };
        let ctx = StreamContext::with_runtime(runtime);
        {
            let state = ctx.session().state_ref();
            let mut state = state.write();
            // KDA folds unquoted identifiers to upper case itself (crate::tokens).
            state
                .config_mut()
                .options_mut()
                .sql_parser
                .enable_ident_normalization = false;
        }
        datafusion_stream_kda_functions::register_all(ctx.session());
        crate::register_functions(ctx.session());
        Ok(Self {
            ctx,
            catalog: Catalog::default(),
            inputs: Vec::new(),
            streams: BTreeMap::new(),
            pumps: Vec::new(),
            outputs: Vec::new(),
            errors,
        })
    }

    /// The streaming context underneath (to register connectors or tables).
    pub fn context(&self) -> &StreamContext {
        &self.ctx
    }

    /// Adds an input in-application stream (e.g. `SOURCE_SQL_STREAM_001`) read from `source`;
    /// ROWTIME is assigned by the source (ingest time, or supplied by a replay).
    pub fn add_input(&mut self, name: &str, source: Arc<dyn StreamSource>) -> Result<()> {
        if self.catalog.relations.contains_key(name) {
            return plan_err!("'{name}' is already defined");
        }
        // The source is read once, by an input pump that stamps ROWTIME and broadcasts the
        // rows to the in-application stream every pump reads (as KDA ingests a record once).
        let hidden = format!("__INPUT__{name}");
        let partitions = source.partition_count();
        let schema = source.schema();
        let table = StreamTable::try_new(&hidden, source, ROWTIME, None)?;
        self.ctx.register_stream(table)?;
        let channel = Arc::new(ChannelSource::new(name, schema, partitions));
        self.ctx
            .register_stream(StreamTable::try_new(name, channel, ROWTIME, None)?)?;
        self.catalog
            .relations
            .insert(name.to_string(), RelationKind::Stream);
        self.inputs.push(name.to_string());
        Ok(())
    }

    /// Adds a reference table (an in-application table joined by stream rows).
    pub fn add_reference_table(&mut self, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
        if self.catalog.relations.contains_key(name) {
            return plan_err!("'{name}' is already defined");
        }
        self.ctx
            .session()
            .register_table(TableReference::bare(name), table)?;
        self.catalog
            .relations
            .insert(name.to_string(), RelationKind::Table);
        Ok(())
    }

    /// Loads application code (`CREATE STREAM`, `CREATE PUMP`, bare `SELECT STREAM`s, which
    /// become outputs named `QUERY_<n>`). Every problem is reported with its statement.
    pub fn load_code(&mut self, code: &str) -> std::result::Result<(), Vec<Diagnostic>> {
        let (statements, mut diags) = parse_program_lenient(code);
        for s in statements {
            if let Err(message) = self.add_statement(&s) {
                diags.push(Diagnostic {
                    statement: s.number,
                    line: s.line,
                    column: s.column,
                    message,
                });
            }
        }
        if diags.is_empty() {
            Ok(())
        } else {
            diags.sort_by_key(|d| (d.statement, d.line, d.column));
            Err(diags)
        }
    }

    fn add_statement(&mut self, s: &ProgramStatement) -> std::result::Result<(), String> {
        match &s.kind {
            StatementKind::Stream(d) => {
                if self.inputs.contains(&d.name) {
                    return Err(format!(
                        "{} is an input stream and cannot be redefined",
                        d.name
                    ));
                }
                if self.streams.contains_key(&d.name) && !d.or_replace {
                    return Err(format!(
                        "stream {} already exists (use CREATE OR REPLACE STREAM)",
                        d.name
                    ));
                }
                if self.catalog.relations.get(&d.name) == Some(&RelationKind::Table) {
                    return Err(format!("{} is a reference table", d.name));
                }
                self.catalog
                    .relations
                    .insert(d.name.clone(), RelationKind::Stream);
                self.streams.insert(d.name.clone(), d.clone());
            }
            StatementKind::Pump(p) => self.add_pump(p, s)?,
            StatementKind::Query(q) => {
                let name = format!("QUERY_{}", s.number);
                self.pumps.push(PumpSpec {
                    name: name.clone(),
                    target: None,
                    columns: None,
                    query: q.clone(),
                    statement: s.number,
                    line: s.line,
                    column: s.column,
                });
            }
        }
        Ok(())
    }

    fn add_pump(&mut self, p: &PumpDecl, s: &ProgramStatement) -> std::result::Result<(), String> {
        if p.target == ERROR_STREAM {
            return Err(
                "error_stream is written by the system only; a pump cannot insert into it".into(),
            );
        }
        if self.inputs.contains(&p.target) {
            return Err(format!(
                "pump {}: {} is an input stream; pumps write in-application streams",
                p.name, p.target
            ));
        }
        if !self.streams.contains_key(&p.target) {
            return Err(format!(
                "pump {}: no stream named {} (create it first with CREATE STREAM)",
                p.name, p.target
            ));
        }
        if let Some(existing) = self.pumps.iter().position(|x| x.name == p.name) {
            self.pumps.remove(existing);
        }
        self.pumps.push(PumpSpec {
            name: p.name.clone(),
            target: Some(p.target.clone()),
            columns: p.columns.clone(),
            query: p.query.clone(),
            statement: s.number,
            line: s.line,
            column: s.column,
        });
        Ok(())
    }

    /// Adds a bare query under `name` (its rows become the output `name`).
    pub fn add_query(&mut self, name: &str, sql: &str) -> Result<()> {
        let toks = crate::tokens::tokenize(sql)?;
        let (line, column) = toks.first().map(|t| (t.line, t.column)).unwrap_or((1, 1));
        self.pumps.push(PumpSpec {
            name: name.to_string(),
            target: None,
            columns: None,
            query: toks.into_iter().map(|t| t.token).collect(),
            statement: 0,
            line,
            column,
        });
        Ok(())
    }

    /// Makes the rows of stream `name` (or `error_stream`) available as an output.
    pub fn add_output(&mut self, name: &str) -> Result<()> {
        if name != ERROR_STREAM
            && !self.streams.contains_key(name)
            && !self.inputs.iter().any(|i| i == name)
        {
            return plan_err!("output: no in-application stream named {name}");
        }
        if !self.outputs.iter().any(|o| o == name) {
            self.outputs.push(name.to_string());
        }
        Ok(())
    }

    /// Names of the declared (non-input) streams, in name order.
    pub fn stream_names(&self) -> Vec<String> {
        self.streams.keys().cloned().collect()
    }

    /// Declared streams that no pump reads (the natural outputs).
    pub fn sink_streams(&self) -> Vec<String> {
        let read: HashSet<String> = self
            .pumps
            .iter()
            .flat_map(|p| p.query.iter().filter_map(ident_name).collect::<Vec<_>>())
            .collect();
        self.streams
            .keys()
            .filter(|s| !read.contains(*s))
            .cloned()
            .collect()
    }

    /// Plans every pump without running anything; the problems found, per statement.
    pub async fn check(mut self) -> Vec<Diagnostic> {
        match self.plan_all().await {
            Ok((_, diags)) => diags,
            Err(e) => vec![Diagnostic {
                statement: 0,
                line: 1,
                column: 1,
                message: e.to_string(),
            }],
        }
    }

    fn reads(&self, p: &PumpSpec) -> Vec<String> {
        let mut r: Vec<String> = p
            .query
            .iter()
            .filter_map(|t| match t {
                Token::Word(_) => ident_name(t),
                _ => None,
            })
            .filter(|n| self.streams.contains_key(n))
            .collect();
        r.sort();
        r.dedup();
        r
    }

    async fn plan_pump(&self, p: &PumpSpec) -> Result<Planned> {
        let translated = translate_query(p.query.clone(), &self.catalog)?;
        if !translated.streaming {
            return plan_err!("the query reads no stream; a pump must SELECT STREAM from an in-application stream");
        }
        let state = self.ctx.session().state();
        let plan = state
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                translated.statement.clone(),
            )))
            .await?;
        let df = self.ctx.session().execute_logical_plan(plan).await?;
        let physical = df.create_physical_plan().await?;
        let schema = physical.schema();
        let input = MessageInput::extract(&physical, &format!("pump {}", p.name))?;
        let Some(rowtime_idx) = schema.fields().iter().rposition(|f| f.name() == ROWTIME) else {
            return plan_err!("internal: the translated query has no ROWTIME column");
        };
        let data: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| i != rowtime_idx || translated.rowtime_is_data)
            .collect();
        let mapping = match &p.target {
            None => {
                let fields: Vec<Field> = data
                    .iter()
                    .map(|&i| schema.field(i).as_ref().clone().with_nullable(true))
                    .collect();
                Mapping {
                    target_schema: Arc::new(Schema::new(fields)),
                    sources: data.iter().map(|&i| Some(i)).collect(),
                    lengths: vec![None; data.len()],
                }
            }
            Some(t) => {
                let decl = self
                    .streams
                    .get(t)
                    .ok_or_else(|| exec_datafusion_err!("pump {}: no stream named {t}", p.name))?;
                target_mapping(decl, p.columns.as_deref(), &schema, &data)?
            }
        };
        Ok(Planned {
            input,
            rowtime_idx,
            mapping,
            rowtime_overridden: translated.rowtime_overridden,
        })
    }

    /// Plans all pumps in dependency order, registering in-application streams on the way.
    async fn plan_all(&mut self) -> Result<(Vec<(PumpSpec, Planned)>, Vec<Diagnostic>)> {
        let mut diags = Vec::new();
        let mut planned: Vec<(PumpSpec, Planned)> = Vec::new();
        let mut pending: Vec<PumpSpec> = self.pumps.clone();
        let mut ready: HashSet<String> = HashSet::new();
        let mut failed_streams: HashSet<String> = HashSet::new();
        loop {
            // Streams whose writers are all planned (or failed) get registered.
            let mut registered_any = false;
            for (name, decl) in self.streams.clone() {
                if ready.contains(&name) {
                    continue;
                }
                let writers_pending = pending.iter().any(|p| p.target.as_deref() == Some(&name));
                if writers_pending {
                    continue;
                }
                let partitions: usize = planned
                    .iter()
                    .filter(|(p, _)| p.target.as_deref() == Some(&name))
                    .map(|(_, pl)| pl.input.partition_count())
                    .sum();
                let schema = Arc::new(Schema::new(
                    decl.columns
                        .iter()
                        .map(|c| c.field.clone())
                        .collect::<Vec<_>>(),
                ));
                let source = Arc::new(ChannelSource::new(name.clone(), schema, partitions.max(1)));
                let table = StreamTable::try_new(&name, source, ROWTIME, None)?;
                let _ = self
                    .ctx
                    .session()
                    .deregister_table(TableReference::bare(name.as_str()));
                self.ctx.register_stream(table)?;
                ready.insert(name.clone());
                registered_any = true;
            }
            // Pumps whose inputs are ready get planned.
            let mut progressed = registered_any;
            let mut still = Vec::new();
            for p in std::mem::take(&mut pending) {
                let reads = self.reads(&p);
                if let Some(target) = &p.target {
                    if reads.contains(target) {
                        diags.push(diag(&p, format!("pump {} reads the stream it writes ({target}); pumps may not form a cycle", p.name)));
                        failed_streams.insert(target.clone());
                        progressed = true;
                        continue;
                    }
                }
                if reads.iter().all(|r| ready.contains(r)) {
                    progressed = true;
                    match self.plan_pump(&p).await {
                        Ok(pl) => planned.push((p, pl)),
                        Err(e) => {
                            if let Some(t) = &p.target {
                                failed_streams.insert(t.clone());
                            }
                            diags.push(diag(&p, format!("pump {}: {}", p.name, strip(&e))));
                        }
                    }
                } else {
                    still.push(p);
                }
            }
            pending = still;
            if pending.is_empty() && self.streams.keys().all(|s| ready.contains(s)) {
                break;
            }
            if !progressed {
                for p in &pending {
                    diags.push(diag(
                        p,
                        format!(
                            "pump {} is part of a cycle of pumps (it reads {}, which depend on it)",
                            p.name,
                            self.reads(p).join(", ")
                        ),
                    ));
                }
                break;
            }
        }
        Ok((planned, diags))
    }

    /// Plans and starts the application.
    pub async fn start(self) -> Result<RunningApplication> {
        match self.start_checked().await? {
            Ok(running) => Ok(running),
            Err(diags) => Err(diagnostics_error(&diags)),
        }
    }

    /// Plans and starts the application; the problems found, per statement, if any pump
    /// cannot be planned.
    pub async fn start_checked(
        mut self,
    ) -> Result<std::result::Result<RunningApplication, Vec<Diagnostic>>> {
        let (planned, diags) = self.plan_all().await?;
        if !diags.is_empty() {
            return Ok(Err(diags));
        }
        let state = self.ctx.session().state();
        let mut offsets: HashMap<String, usize> = HashMap::new();
        let mut pumps = Vec::new();
        let mut outputs: Vec<Output> = Vec::new();
        for (spec, pl) in planned {
            let runtime = StreamRuntime {
                errors: Arc::new(PumpErrors {
                    pump: spec.name.clone(),
                    queue: Arc::clone(&self.errors),
                }),
                ..(*self.ctx.runtime().as_ref()).clone()
            };
            let config = state.config().clone().with_extension(Arc::new(runtime));
            let task = Arc::new(TaskContext::from(&state).with_session_config(config));
            let inputs = pl.input.open(&task)?;
            let sink = match &spec.target {
                Some(t) => {
                    let table = self.ctx.stream_table(t).await?;
                    let Some(channel) = table.source().as_any().downcast_ref::<ChannelSource>()
                    else {
                        return plan_err!("internal: stream {t} is not an in-application stream");
                    };
                    let offset = offsets.entry(t.clone()).or_insert(0);
                    let writers = (0..inputs.len())
                        .map(|p| channel.writer(*offset + p))
                        .collect::<Result<Vec<_>>>()?;
                    *offset += inputs.len();
                    PumpSink::Stream(writers)
                }
                None => {
                    outputs.push(Output::new(
                        &spec.name,
                        pl.mapping.target_schema.clone(),
                        false,
                    ));
                    PumpSink::Output(outputs.len() - 1)
                }
            };
            let n = inputs.len();
            pumps.push(Pump {
                name: spec.name.clone(),
                inputs: inputs.into_iter().map(Some).collect(),
                sink,
                rowtime_idx: pl.rowtime_idx,
                mapping: pl.mapping,
                last_rowtime: vec![WATERMARK_MIN; n],
                rowtime_overridden: pl.rowtime_overridden,
                ignore_idle: false,
                errors: Arc::clone(&self.errors),
                clock: Arc::clone(&self.ctx.runtime().clock),
            });
        }
        // Input pumps: each source is read once and broadcast to its in-application stream.
        let task = self.ctx.session().task_ctx();
        for name in &self.inputs {
            let hidden = self.ctx.stream_table(&format!("__INPUT__{name}")).await?;
            let channel_table = self.ctx.stream_table(name).await?;
            let Some(channel) = channel_table
                .source()
                .as_any()
                .downcast_ref::<ChannelSource>()
            else {
                return plan_err!("internal: input {name} is not broadcast");
            };
            let source_schema = hidden.source().schema();
            let ingest = hidden.source().rowtime_mode() == RowtimeMode::Ingest;
            let n_cols = source_schema.fields().len();
            let input = MessageInput {
                source: Arc::new(StreamScanExec::try_new(hidden.clone(), None)?),
                pipeline: Default::default(),
            };
            let inputs = input.open(&task)?;
            let writers = (0..inputs.len())
                .map(|p| channel.writer(p))
                .collect::<Result<Vec<_>>>()?;
            let n = inputs.len();
            // Inputs first: each round moves rows from the source through every pump.
            pumps.insert(
                0,
                Pump {
                    name: format!("input {name}"),
                    inputs: inputs.into_iter().map(Some).collect(),
                    sink: PumpSink::Stream(writers),
                    rowtime_idx: n_cols,
                    mapping: Mapping {
                        target_schema: Arc::clone(&source_schema),
                        sources: (0..n_cols).map(Some).collect(),
                        lengths: vec![None; n_cols],
                    },
                    last_rowtime: vec![WATERMARK_MIN; n],
                    rowtime_overridden: false,
                    ignore_idle: ingest,
                    errors: Arc::clone(&self.errors),
                    clock: Arc::clone(&self.ctx.runtime().clock),
                },
            );
        }
        // Streams with no writer end at once.
        for name in &self.outputs {
            if name == ERROR_STREAM {
                outputs.push(Output::new(ERROR_STREAM, ErrorRecord::schema(), false));
                continue;
            }
            let table = self.ctx.stream_table(name).await?;
            let scan = StreamScanExec::try_new(table.clone(), None)?;
            let n = table.source().partition_count();
            let mut out = Output::new(name, table.schema(), true);
            out.inputs = (0..n)
                .map(|p| scan.execute_messages(p, &task).map(Some))
                .collect::<Result<Vec<_>>>()?;
            out.progress = vec![WATERMARK_MIN; n];
            outputs.push(out);
        }
        // Writers of streams without pumps: drop them so readers see the end.
        for name in self.streams.keys() {
            if !offsets.contains_key(name) {
                let table = self.ctx.stream_table(name).await?;
                if let Some(channel) = table.source().as_any().downcast_ref::<ChannelSource>() {
                    drop(channel.writer(0)?);
                }
            }
        }
        let error_output = outputs.iter().position(|o| o.name == ERROR_STREAM);
        Ok(Ok(RunningApplication {
            pumps,
            outputs,
            error_output,
            errors: self.errors,
            _ctx: self.ctx,
        }))
    }
}

fn strip(e: &DataFusionError) -> String {
    let s = e.find_root().to_string().replace('\n', " ");
    s.strip_prefix("Error during planning: ")
        .or_else(|| s.strip_prefix("Execution error: "))
        .or_else(|| s.strip_prefix("Schema error: "))
        .unwrap_or(&s)
        .to_string()
}

fn diag(p: &PumpSpec, message: String) -> Diagnostic {
    Diagnostic {
        statement: p.statement,
        line: p.line,
        column: p.column,
        message,
    }
}

/// How a query's output columns become the target stream's columns.
#[derive(Debug, Clone)]
struct Mapping {
    target_schema: SchemaRef,
    /// Per target column: the output column it comes from (None: NULL).
    sources: Vec<Option<usize>>,
    /// Per target column: CHAR/VARCHAR length to truncate to.
    lengths: Vec<Option<usize>>,
}

fn target_mapping(
    decl: &StreamDecl,
    columns: Option<&[String]>,
    schema: &Schema,
    data: &[usize],
) -> Result<Mapping> {
    let cols: &Vec<ColumnDecl> = &decl.columns;
    let mut sources = vec![None; cols.len()];
    match columns {
        Some(list) => {
            if list.len() != data.len() {
                return plan_err!(
                    "INSERT INTO {} ({}) names {} column(s) but the query returns {}",
                    decl.name,
                    list.join(", "),
                    list.len(),
                    data.len()
                );
            }
            for (k, name) in list.iter().enumerate() {
                let Some(j) = cols.iter().position(|c| c.field.name() == name) else {
                    let names: Vec<&str> = cols.iter().map(|c| c.field.name().as_str()).collect();
                    return plan_err!(
                        "stream {} has no column {name}; its columns are {}",
                        decl.name,
                        names.join(", ")
                    );
                };
                sources[j] = Some(data[k]);
            }
        }
        None => {
            if data.len() != cols.len() {
                let got: Vec<&str> = data
                    .iter()
                    .map(|&i| schema.field(i).name().as_str())
                    .collect();
                let want: Vec<&str> = cols.iter().map(|c| c.field.name().as_str()).collect();
                return plan_err!(
                    "the query returns {} column(s) ({}) but stream {} has {} ({}); the select list must match the stream's columns",
                    data.len(),
                    got.join(", "),
                    decl.name,
                    cols.len(),
                    want.join(", ")
                );
            }
            for (j, &i) in data.iter().enumerate() {
                sources[j] = Some(i);
            }
        }
    }
    for (j, c) in cols.iter().enumerate() {
        if let Some(i) = sources[j] {
            let from = schema.field(i).data_type();
            if !can_cast_types(from, c.field.data_type()) {
                return plan_err!(
                    "column {} of {} is {} but the query gives {} ({}) for it",
                    c.field.name(),
                    decl.name,
                    c.sql_type,
                    from,
                    schema.field(i).name()
                );
            }
        }
    }
    Ok(Mapping {
        target_schema: Arc::new(Schema::new(
            cols.iter().map(|c| c.field.clone()).collect::<Vec<_>>(),
        )),
        sources,
        lengths: cols.iter().map(|c| c.length).collect(),
    })
}

struct Planned {
    input: MessageInput,
    rowtime_idx: usize,
    mapping: Mapping,
    rowtime_overridden: bool,
}

enum PumpSink {
    Stream(Vec<ChannelWriter>),
    Output(usize),
}

struct Pump {
    name: String,
    inputs: Vec<Option<MessageStream>>,
    sink: PumpSink,
    rowtime_idx: usize,
    mapping: Mapping,
    last_rowtime: Vec<Millis>,
    /// `expr AS ROWTIME`: the input's progress says nothing about the output's times, so only
    /// the rows themselves (and the end) move the target's time.
    rowtime_overridden: bool,
    /// An input pump over an ingest-time source (Kinesis, the demo): its ROWTIME is
    /// processing time, which advances with the clock even when no record arrives, so an idle
    /// source still moves the in-application stream's time (windows close on time, as in
    /// KDA) instead of being marked idle, which would stop time downstream once every
    /// partition is idle.
    ignore_idle: bool,
    errors: Arc<ErrorQueue>,
    clock: Arc<dyn datafusion_stream::StreamClock>,
}

/// Rows of an output: ROWTIME (for streams) followed by the columns.
struct Output {
    name: String,
    schema: SchemaRef,
    with_rowtime: bool,
    inputs: Vec<Option<MessageStream>>,
    batches: Vec<RecordBatch>,
    /// Per input partition: the ROWTIME bound reported so far (no later row has a ROWTIME at
    /// or below it).
    progress: Vec<Millis>,
    ended: bool,
}

impl Output {
    fn new(name: &str, schema: SchemaRef, with_rowtime: bool) -> Self {
        Self {
            name: name.to_string(),
            schema,
            with_rowtime,
            inputs: Vec::new(),
            batches: Vec::new(),
            progress: Vec::new(),
            ended: false,
        }
    }

    /// The smallest ROWTIME bound over the partitions still open (`WATERMARK_MAX` when all
    /// ended); `None` for outputs that report no progress (error_stream, bare queries).
    fn rowtime_bound(&self) -> Option<Millis> {
        if self.inputs.is_empty() {
            return None;
        }
        self.inputs
            .iter()
            .zip(&self.progress)
            .map(|(i, p)| if i.is_some() { *p } else { WATERMARK_MAX })
            .min()
    }

    /// Output schema: ROWTIME first for streams.
    fn output_schema(&self) -> SchemaRef {
        if !self.with_rowtime {
            return Arc::clone(&self.schema);
        }
        let n = self.schema.fields().len();
        let mut fields: Vec<Field> = vec![self.schema.field(n - 1).clone()];
        fields.extend(
            self.schema
                .fields()
                .iter()
                .take(n - 1)
                .map(|f| f.as_ref().clone()),
        );
        Arc::new(Schema::new(fields))
    }

    fn push_stream_batch(&mut self, b: RecordBatch) -> Result<()> {
        let n = b.num_columns();
        let mut idx = vec![n - 1];
        idx.extend(0..n - 1);
        self.batches.push(b.project(&idx)?);
        Ok(())
    }
}

impl Pump {
    fn convert(
        &mut self,
        partition: usize,
        b: RecordBatch,
    ) -> Result<Option<(RecordBatch, ArrayRef)>> {
        let n = b.num_rows();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let rowtime = cast(b.column(self.rowtime_idx), &ts)?;
        let rowtime = rowtime.as_primitive::<TimestampMillisecondType>().clone();
        let mut columns = Vec::with_capacity(self.mapping.sources.len());
        for (j, f) in self.mapping.target_schema.fields().iter().enumerate() {
            let col = match self.mapping.sources[j] {
                Some(i) => {
                    let c = cast(b.column(i), f.data_type()).map_err(|e| {
                        exec_datafusion_err!(
                            "pump {}: column {} ({}): {e}",
                            self.name,
                            f.name(),
                            f.data_type()
                        )
                    })?;
                    match self.mapping.lengths[j] {
                        Some(len) if matches!(f.data_type(), DataType::Utf8) => truncate(&c, len)?,
                        _ => c,
                    }
                }
                None => datafusion::arrow::array::new_null_array(f.data_type(), n),
            };
            columns.push(col);
        }
        // Rows that cannot be written: NULL in a NOT NULL column, ROWTIME NULL or backwards.
        let mut keep = vec![true; n];
        let now = self.clock.now();
        let mut last = self.last_rowtime[partition];
        for (i, k) in keep.iter_mut().enumerate() {
            let problem = if rowtime.is_null(i) {
                Some(("Rowtime_Error", "ROWTIME is NULL".to_string()))
            } else if let Some((_, f)) = columns
                .iter()
                .zip(self.mapping.target_schema.fields())
                .find(|(c, f)| !f.is_nullable() && c.is_null(i))
            {
                Some((
                    "Not_Null_Violation",
                    format!("NULL inserted into NOT NULL column {}", f.name()),
                ))
            } else if rowtime.value(i) < last {
                Some((
                    "Rowtime_Out_Of_Order",
                    format!(
                        "ROWTIME {} is earlier than {} already written; ROWTIME must not decrease",
                        format_millis(rowtime.value(i)),
                        format_millis(last)
                    ),
                ))
            } else {
                last = rowtime.value(i);
                None
            };
            if let Some((name, message)) = problem {
                *k = false;
                let row = b.slice(i, 1);
                let mut rec = row_error(&row, &DataFusionError::Execution(message), now);
                rec.name = name.to_string();
                if !rowtime.is_null(i) {
                    rec.data_rowtime = Some(rowtime.value(i));
                }
                self.errors.report(rec.with_pump(self.name.clone()))?;
            }
        }
        self.last_rowtime[partition] = last;
        let target = Arc::clone(&self.mapping.target_schema);
        let rowtime: ArrayRef = Arc::new(rowtime);
        if keep.iter().all(|k| *k) {
            return Ok(Some((RecordBatch::try_new(target, columns)?, rowtime)));
        }
        let mask = BooleanArray::from(keep);
        let kept = columns
            .iter()
            .map(|c| filter(c, &mask))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if kept.first().is_some_and(|c| c.is_empty()) {
            return Ok(None);
        }
        Ok(Some((
            RecordBatch::try_new(target, kept)?,
            filter(&rowtime, &mask)?,
        )))
    }
}

fn truncate(c: &ArrayRef, len: usize) -> Result<ArrayRef> {
    let s = c.as_string::<i32>();
    if s.iter().all(|v| v.is_none_or(|v| v.chars().count() <= len)) {
        return Ok(Arc::clone(c));
    }
    let out: StringArray = s
        .iter()
        .map(|v| v.map(|v| v.chars().take(len).collect::<String>()))
        .collect();
    Ok(Arc::new(out))
}

/// A started application.
pub struct RunningApplication {
    pumps: Vec<Pump>,
    outputs: Vec<Output>,
    error_output: Option<usize>,
    errors: Arc<ErrorQueue>,
    _ctx: StreamContext,
}

impl std::fmt::Debug for RunningApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApplication")
            .field(
                "pumps",
                &self.pumps.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self.outputs.iter().map(|o| &o.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RunningApplication {
    /// The application's error sink: records reported here appear in `error_stream` (for
    /// inputs that decode records outside the engine, e.g. a test feeding raw records).
    pub fn error_sink(&self) -> Arc<dyn ErrorSink> {
        Arc::clone(&self.errors) as Arc<dyn ErrorSink>
    }

    /// Names of the outputs, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name.clone()).collect()
    }

    /// The schema of an output (ROWTIME first for streams).
    pub fn output_schema(&self, name: &str) -> Option<SchemaRef> {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.output_schema())
    }

    /// The ROWTIME bound of a stream output: every row with a ROWTIME at or below it has been
    /// delivered to [`Self::take_output`] (the minimum over the stream's partitions;
    /// `WATERMARK_MAX` once all ended). `None` for error_stream, bare queries and unknown
    /// names. Sinks use it to roll files on the application's progress.
    pub fn output_rowtime_bound(&self, name: &str) -> Option<Millis> {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.rowtime_bound())
    }

    /// Takes the rows an output has received so far.
    pub fn take_output(&mut self, name: &str) -> Vec<RecordBatch> {
        self.outputs
            .iter_mut()
            .find(|o| o.name == name)
            .map(|o| std::mem::take(&mut o.batches))
            .unwrap_or_default()
    }

    /// True when every pump and output has ended (bounded inputs only).
    pub fn is_finished(&self) -> bool {
        self.pumps
            .iter()
            .all(|p| p.inputs.iter().all(|i| i.is_none()))
            && self.outputs.iter().all(|o| o.ended || o.inputs.is_empty())
    }

    /// Polls every pump and output once, until each is pending; true if anything moved.
    pub fn poll_round(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        let mut moved = false;
        for k in 0..self.pumps.len() {
            for part in 0..self.pumps[k].inputs.len() {
                loop {
                    let pump = &mut self.pumps[k];
                    let Some(input) = pump.inputs[part].as_mut() else {
                        break;
                    };
                    match input.poll_next_unpin(cx) {
                        Poll::Pending => break,
                        Poll::Ready(None) => {
                            moved = true;
                            pump.inputs[part] = None;
                            if let PumpSink::Stream(w) = &pump.sink {
                                w[part].close();
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            if let PumpSink::Stream(w) = &pump.sink {
                                w[part].fail(&e.to_string());
                            }
                            return Err(e.context(format!("pump {}", pump.name)));
                        }
                        Poll::Ready(Some(Ok(msg))) => {
                            moved = true;
                            self.on_pump_message(k, part, msg)?;
                        }
                    }
                }
            }
        }
        for o in self.outputs.iter_mut() {
            for part in 0..o.inputs.len() {
                while let Some(input) = o.inputs[part].as_mut() {
                    match input.poll_next_unpin(cx) {
                        Poll::Pending => break,
                        Poll::Ready(None) => {
                            moved = true;
                            o.inputs[part] = None;
                        }
                        Poll::Ready(Some(Err(e))) => {
                            return Err(e.context(format!("output {}", o.name)))
                        }
                        Poll::Ready(Some(Ok(StreamMessage::Batch(b)))) => {
                            moved = true;
                            o.push_stream_batch(b)?;
                        }
                        Poll::Ready(Some(Ok(StreamMessage::Progress(p)))) => {
                            if p.rowtime > o.progress[part] {
                                o.progress[part] = p.rowtime;
                            }
                        }
                    }
                }
            }
            if !o.inputs.is_empty() && o.inputs.iter().all(|i| i.is_none()) {
                o.ended = true;
            }
        }
        let errs = self.errors.drain();
        if !errs.is_empty() {
            moved = true;
            if let Some(i) = self.error_output {
                self.outputs[i].batches.push(ErrorRecord::to_batch(&errs)?);
            } else {
                for e in &errs {
                    log::warn!("error_stream: {} {}: {}", e.name, e.pump_name, e.message);
                }
            }
        }
        Ok(moved)
    }

    fn on_pump_message(&mut self, k: usize, part: usize, msg: StreamMessage) -> Result<()> {
        match msg {
            StreamMessage::Batch(b) => {
                let Some((batch, rowtime)) = self.pumps[k].convert(part, b)? else {
                    return Ok(());
                };
                match &self.pumps[k].sink {
                    PumpSink::Stream(w) => w[part].send(SourceEvent::Data {
                        batch,
                        rowtime: Some(rowtime),
                    }),
                    PumpSink::Output(o) => self.outputs[*o].batches.push(batch),
                }
            }
            StreamMessage::Progress(p) => {
                if self.pumps[k].rowtime_overridden {
                    return Ok(());
                }
                if let PumpSink::Stream(w) = &self.pumps[k].sink {
                    if p.idle && !self.pumps[k].ignore_idle {
                        w[part].send(SourceEvent::Idle);
                    } else if p.rowtime > WATERMARK_MIN {
                        w[part].send(SourceEvent::RowtimeBound(p.rowtime.saturating_add(1)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Drives the application until nothing moves (deterministic with a manual clock).
    ///
    /// Each round runs outside Tokio's cooperative budget: a budget-exhausted channel would
    /// otherwise answer "pending" with rows in it, and a round that moves nothing is taken as
    /// the end.
    pub fn run_until_stalled(&mut self) -> Result<()> {
        use futures::FutureExt;
        loop {
            let round = tokio::task::unconstrained(futures::future::poll_fn(|cx| {
                Poll::Ready(self.poll_round(cx))
            }))
            .now_or_never();
            match round {
                Some(Ok(true)) => continue,
                Some(Ok(false)) | None => return Ok(()),
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Waits until something moves (or everything ended); false when finished.
    pub async fn next_event(&mut self) -> Result<bool> {
        futures::future::poll_fn(|cx| match self.poll_round(cx) {
            Err(e) => Poll::Ready(Err(e)),
            Ok(true) => Poll::Ready(Ok(true)),
            Ok(false) if self.is_finished() => Poll::Ready(Ok(false)),
            Ok(false) => Poll::Pending,
        })
        .await
    }
}

/// Converts an output batch's ROWTIME column to text (tests, CLI).
pub fn rowtime_text(a: &TimestampMillisecondArray, i: usize) -> String {
    format_millis(a.value(i))
}
