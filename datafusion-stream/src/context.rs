//! [`StreamContext`]: a DataFusion `SessionContext` set up for streaming, plus `CREATE STREAM`,
//! window table functions and continuous queries.
//!
//! ```text
//!  StreamContext ── SessionContext (stock DataFusion; no fork)
//!       │             + analyzer rule  WindowAggregateRule      (window aggregates)
//!       │             + query planner  StreamExtensionPlanner   (StreamWindowAggExec)
//!       │             + physical rule  IncrementalFilterRule    (no buffering filters)
//!       │             + table functions tumble / hop / session
//!       │             + SessionConfig extension StreamRuntime   (clock, idle timeout, late rows)
//!       ├── source factories ('replay' built in; connectors crate adds more)
//!       ├── sink factories / table factories (connectors crate): CREATE SINK, CREATE TABLE
//!       │     ... WITH ('connector' = ...); the sinks and the tables' background guards
//!       └── query(sql) ──► StreamQuery: a record batch stream that emits incrementally
//!           INSERT INTO <sink> <query> ──► StreamQuery whose stream is the sink's reports
//!             (crate::sink: one row per object completed / records acknowledged) and whose
//!             stop() makes the sink close what it has open and end
//! ```

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{
    plan_datafusion_err, plan_err, Column, DFSchema, DataFusionError, Result, TableReference,
};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator};
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Insert, Statement, TableObject};
use futures::{StreamExt, TryStreamExt};

use crate::exec::filter::IncrementalFilterRule;
use crate::exec::messages::{MessageInput, MessageStream};
use crate::runtime::StreamRuntime;
use crate::scan::StreamMessage;
use crate::scan::{EventTime, StreamTable};
use crate::sink::{
    report_batch, sink_report_schema, SinkCounters, SinkEnv, SinkFactory, SinkRun, StreamSink,
    TableFactory,
};
use crate::source::replay::{ReplayFactory, ReplayHandle, ReplaySource};
use crate::source::{ConnectorOptions, SourceFactory};
use crate::sql::ddl::{parse_create_stream, CreateStream};
use crate::sql::sink::{classify, parse_connector_ddl, ConnectorDdl, ConnectorObject};
use crate::sql::{hide_rowtime, normalize_lower, object_name_string, split_script};
use crate::time::{interval_to_millis, Millis, DEFAULT_ROWTIME_COLUMN};
use crate::window::logical::WindowAggregateRule;
use crate::window::planner::StreamQueryPlanner;
use crate::window::tvf::WindowTableFunction;

/// Adds the streaming rules, planner and runtime to a DataFusion session builder. Use this to
/// stream on your own `SessionContext`; call [`register_window_functions`] on the context after.
pub fn configure_session(
    builder: SessionStateBuilder,
    runtime: Arc<StreamRuntime>,
) -> SessionStateBuilder {
    builder
        .with_query_planner(Arc::new(StreamQueryPlanner))
        .with_analyzer_rule(Arc::new(WindowAggregateRule))
        .with_analyzer_rule(Arc::new(crate::over::logical::OverRule))
        .with_analyzer_rule(Arc::new(crate::join::StreamJoinRule))
        .with_analyzer_rule(Arc::new(crate::sort::logical::StreamSortRule))
        .with_physical_optimizer_rule(Arc::new(IncrementalFilterRule))
        .with_config(streaming_config().with_extension(runtime))
}

/// Session settings for streaming: no round-robin repartitioning and no batch coalescing, so
/// every operator of a query runs in the task that polls it and emits as soon as it can.
pub fn streaming_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(true);
    let o = config.options_mut();
    o.execution.coalesce_batches = false;
    o.optimizer.enable_round_robin_repartition = false;
    o.optimizer.repartition_aggregations = false;
    o.optimizer.repartition_joins = false;
    o.optimizer.repartition_windows = false;
    o.optimizer.repartition_sorts = false;
    config
}

/// Registers `tumble`, `hop` and `session`.
pub fn register_window_functions(ctx: &SessionContext) {
    for f in [
        WindowTableFunction::TUMBLE,
        WindowTableFunction::HOP,
        WindowTableFunction::SESSION,
    ] {
        ctx.register_udtf(f.name(), Arc::new(f));
    }
    crate::window::functions::register_group_window_functions(ctx);
    crate::join::register_join_functions(ctx);
    crate::sort::register_sort_functions(ctx);
    crate::anomaly::register_anomaly_functions(ctx);
}

/// A sink created by `CREATE SINK`.
struct RegisteredSink {
    sink: Arc<dyn StreamSink>,
    columns: Option<SchemaRef>,
}

/// A streaming SQL context.
pub struct StreamContext {
    session: SessionContext,
    runtime: Arc<StreamRuntime>,
    factories: RwLock<HashMap<String, Arc<dyn SourceFactory>>>,
    sink_factories: RwLock<HashMap<String, Arc<dyn SinkFactory>>>,
    table_factories: RwLock<HashMap<String, Arc<dyn TableFactory>>>,
    sinks: RwLock<HashMap<String, RegisteredSink>>,
    table_guards: Mutex<HashMap<String, Box<dyn Any + Send + Sync>>>,
    streams: RwLock<HashSet<String>>,
    rowtime_column: String,
}

impl std::fmt::Debug for StreamContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamContext")
            .field("runtime", &self.runtime)
            .finish()
    }
}

impl Default for StreamContext {
    fn default() -> Self {
        Self::new()
    }
}

/// A running continuous query.
pub struct StreamQuery {
    plan: Arc<dyn ExecutionPlan>,
    stream: SendableRecordBatchStream,
    sink: Option<SinkHandle>,
}

/// The sink side of an `INSERT INTO <sink>` query.
struct SinkHandle {
    name: String,
    counters: Arc<SinkCounters>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl StreamQuery {
    /// The sink this query writes into (`INSERT INTO <sink> ...`), if any.
    pub fn sink_name(&self) -> Option<&str> {
        self.sink.as_ref().map(|s| s.name.as_str())
    }

    /// Live counters of the sink this query writes into.
    pub fn sink_counters(&self) -> Option<&Arc<SinkCounters>> {
        self.sink.as_ref().map(|s| &s.counters)
    }

    /// Asks the sink of an `INSERT INTO` query to stop reading its input and close what it has
    /// open (files completed, not aborted); the output stream then yields the last reports and
    /// ends. No effect on other queries (drop them to stop them).
    pub fn stop(&self) {
        if let Some(s) = &self.sink {
            let _ = s.stop.send(true);
        }
    }

    /// Output schema.
    pub fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }

    /// The physical plan (for `EXPLAIN`-style display and live metrics).
    pub fn plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// The output: each batch as soon as it is emitted.
    pub fn stream(&mut self) -> &mut SendableRecordBatchStream {
        &mut self.stream
    }

    /// Sum of a named counter over every operator: `source_rows` (rows read by stream scans),
    /// `input_rows`, `late_rows`, `null_time_rows`, `windows_emitted` (window operators).
    pub fn counter(&self, name: &str) -> usize {
        fn walk(p: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
            let own = p
                .metrics()
                .map(|m| {
                    m.iter()
                        .filter(|m| matches!(m.value(), MetricValue::Count { name: n, .. } if n == name))
                        .map(|m| m.value().as_usize())
                        .sum::<usize>()
                })
                .unwrap_or(0);
            own + p.children().iter().map(|c| walk(c, name)).sum::<usize>()
        }
        walk(&self.plan, name)
    }

    /// Splits the query into its plan (for metrics, which stay live) and its output stream.
    pub fn into_parts(self) -> (Arc<dyn ExecutionPlan>, SendableRecordBatchStream) {
        (self.plan, self.stream)
    }

    /// The fired watermark of the first window operator, once it has advanced.
    pub fn watermark(&self) -> Option<Millis> {
        fn walk(p: &Arc<dyn ExecutionPlan>) -> Option<Millis> {
            let own = p.metrics().and_then(|m| {
                m.iter().find_map(|m| match m.value() {
                    MetricValue::Gauge { name, gauge }
                        if name == "watermark_ms" && gauge.value() > 0 =>
                    {
                        Some(gauge.value() as Millis)
                    }
                    _ => None,
                })
            });
            own.or_else(|| p.children().iter().find_map(|c| walk(c)))
        }
        walk(&self.plan)
    }

    /// Collects everything (for bounded inputs and tests).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(b) = self.stream.next().await {
            out.push(b?);
        }
        Ok(out)
    }
}

/// What running one statement of a script produced.
pub enum StatementOutcome {
    /// DDL or a setting: done.
    Done,
    /// A query: its output.
    Query(StreamQuery),
}

impl StreamContext {
    /// A context on the wall clock.
    pub fn new() -> Self {
        Self::with_runtime(StreamRuntime::default())
    }

    /// A context with the given runtime (use a [`crate::ManualClock`] in tests).
    pub fn with_runtime(runtime: StreamRuntime) -> Self {
        Self::with_runtime_env(runtime, Arc::new(RuntimeEnv::default()))
    }

    /// A context with the given runtime and DataFusion runtime environment (memory pool,
    /// object stores, ...). Window state is accounted in the environment's memory pool.
    pub fn with_runtime_env(runtime: StreamRuntime, env: Arc<RuntimeEnv>) -> Self {
        let runtime = Arc::new(runtime);
        let builder = SessionStateBuilder::new()
            .with_default_features()
            .with_runtime_env(env);
        let state = configure_session(builder, Arc::clone(&runtime)).build();
        let session = SessionContext::new_with_state(state);
        register_window_functions(&session);
        let ctx = Self {
            session,
            runtime,
            factories: RwLock::new(HashMap::new()),
            sink_factories: RwLock::new(HashMap::new()),
            table_factories: RwLock::new(HashMap::new()),
            sinks: RwLock::new(HashMap::new()),
            table_guards: Mutex::new(HashMap::new()),
            streams: RwLock::new(HashSet::new()),
            rowtime_column: DEFAULT_ROWTIME_COLUMN.to_string(),
        };
        let replay = ReplayFactory::with_clock(Arc::clone(&ctx.runtime.clock));
        ctx.register_source_factory("replay", Arc::new(replay));
        ctx
    }

    /// The DataFusion context underneath.
    pub fn session(&self) -> &SessionContext {
        &self.session
    }

    /// The streaming runtime.
    pub fn runtime(&self) -> &Arc<StreamRuntime> {
        &self.runtime
    }

    /// Name of the ROWTIME column.
    pub fn rowtime_column(&self) -> &str {
        &self.rowtime_column
    }

    /// Makes `CREATE STREAM ... WITH ('connector' = name)` use `factory`.
    pub fn register_source_factory(&self, name: &str, factory: Arc<dyn SourceFactory>) {
        if let Ok(mut f) = self.factories.write() {
            f.insert(name.to_ascii_lowercase(), factory);
        }
    }

    /// Makes `CREATE SINK ... WITH ('connector' = name)` use `factory`.
    pub fn register_sink_factory(&self, name: &str, factory: Arc<dyn SinkFactory>) {
        if let Ok(mut f) = self.sink_factories.write() {
            f.insert(name.to_ascii_lowercase(), factory);
        }
    }

    /// Makes `CREATE TABLE ... WITH ('connector' = name)` use `factory`.
    pub fn register_table_factory(&self, name: &str, factory: Arc<dyn TableFactory>) {
        if let Ok(mut f) = self.table_factories.write() {
            f.insert(name.to_ascii_lowercase(), factory);
        }
    }

    fn connector_names(&self) -> String {
        names_of(&self.factories)
    }

    /// Names of the sinks created so far, sorted.
    pub fn sink_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sinks
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The environment handed to sink and table factories.
    pub fn sink_env(&self) -> SinkEnv {
        SinkEnv {
            runtime_env: self.session.runtime_env(),
            clock: Arc::clone(&self.runtime.clock),
        }
    }

    /// Creates a sink or a connector table from a parsed `CREATE SINK` / `CREATE TABLE ...
    /// WITH ('connector' = ...)`.
    pub async fn create_connector_object(&self, ddl: ConnectorDdl) -> Result<()> {
        let name = ddl.name.clone();
        let what = match ddl.object {
            ConnectorObject::Sink => format!("CREATE SINK {name}"),
            ConnectorObject::Table => format!("CREATE TABLE {name}"),
        };
        let sink_exists = self
            .sinks
            .read()
            .map(|s| s.contains_key(&name))
            .unwrap_or(false);
        let table_exists = self.session.table_exist(table_ref(&name))?;
        if sink_exists || table_exists {
            if ddl.if_not_exists {
                return Ok(());
            }
            let same_kind = match ddl.object {
                ConnectorObject::Sink => sink_exists,
                ConnectorObject::Table => table_exists && !self.is_stream(&name),
            };
            if !ddl.or_replace || !same_kind {
                let existing = if sink_exists {
                    "a sink"
                } else if self.is_stream(&name) {
                    "a stream"
                } else {
                    "a table"
                };
                let hint = if same_kind {
                    " (use CREATE OR REPLACE)"
                } else {
                    ""
                };
                return plan_err!("{what}: {existing} with this name already exists{hint}");
            }
        }
        let mut options = ddl.options;
        let (registry, kind) = match ddl.object {
            ConnectorObject::Sink => (names_of(&self.sink_factories), "sink connectors"),
            ConnectorObject::Table => (names_of(&self.table_factories), "table connectors"),
        };
        let Some(connector) = options.remove("connector") else {
            return plan_err!("{what}: WITH ('connector' = '...') is required; {kind}: {registry}");
        };
        let unknown =
            || plan_datafusion_err!("{what}: unknown connector '{connector}'; {kind}: {registry}");
        let columns = ddl.columns.map(|c| Arc::new(Schema::new(c)));
        let mut copts = ConnectorOptions::new(connector.clone(), options);
        let env = self.sink_env();
        match ddl.object {
            ConnectorObject::Sink => {
                let factory = self
                    .sink_factories
                    .read()
                    .map_err(|_| DataFusionError::Internal("sink registry poisoned".into()))?
                    .get(&connector.to_ascii_lowercase())
                    .cloned()
                    .ok_or_else(unknown)?;
                let sink = factory
                    .create(&env, &name, columns.clone(), &mut copts)
                    .await?;
                if let Some(c) = &columns {
                    sink.check_schema(c)?;
                }
                self.sinks
                    .write()
                    .map_err(|_| DataFusionError::Internal("sink registry poisoned".into()))?
                    .insert(name, RegisteredSink { sink, columns });
            }
            ConnectorObject::Table => {
                let factory = self
                    .table_factories
                    .read()
                    .map_err(|_| DataFusionError::Internal("table registry poisoned".into()))?
                    .get(&connector.to_ascii_lowercase())
                    .cloned()
                    .ok_or_else(unknown)?;
                let table = factory.create(&env, &name, columns, &mut copts).await?;
                if table_exists {
                    self.session.deregister_table(table_ref(&name))?;
                }
                let mut guards = self
                    .table_guards
                    .lock()
                    .map_err(|_| DataFusionError::Internal("table registry poisoned".into()))?;
                guards.remove(&name);
                self.session
                    .register_table(table_ref(&name), table.provider)?;
                if let Some(g) = table.background {
                    guards.insert(name, g);
                }
            }
        }
        Ok(())
    }

    fn is_stream(&self, name: &str) -> bool {
        self.streams
            .read()
            .map(|s| s.contains(name))
            .unwrap_or(false)
    }

    /// Registers a stream table under its name.
    pub fn register_stream(&self, table: StreamTable) -> Result<()> {
        let name = table.name().to_string();
        self.session
            .register_table(table_ref(&name), Arc::new(table))?;
        self.streams
            .write()
            .map_err(|_| DataFusionError::Internal("stream registry poisoned".into()))?
            .insert(name);
        Ok(())
    }

    /// A registered stream.
    pub async fn stream_table(&self, name: &str) -> Result<StreamTable> {
        let provider = self
            .session
            .table_provider(table_ref(name))
            .await
            .map_err(|_| plan_datafusion_err!("no stream named '{name}'"))?;
        provider
            .downcast_ref::<StreamTable>()
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("'{name}' is a table, not a stream"))
    }

    /// The handle that feeds a replay stream.
    pub async fn replay_handle(&self, name: &str) -> Result<ReplayHandle> {
        let table = self.stream_table(name).await?;
        table
            .source()
            .as_any()
            .downcast_ref::<ReplaySource>()
            .map(|r| r.handle())
            .ok_or_else(|| plan_datafusion_err!("stream '{name}' is not a replay stream"))
    }

    /// Creates a stream from a parsed `CREATE STREAM`.
    pub async fn create_stream(&self, c: CreateStream) -> Result<()> {
        let name = c.name.clone();
        if self.session.table_exist(table_ref(&name))? {
            if c.if_not_exists {
                return Ok(());
            }
            if !c.or_replace {
                return plan_err!("CREATE STREAM {name}: a stream or table with this name already exists (use CREATE OR REPLACE STREAM)");
            }
            self.session.deregister_table(table_ref(&name))?;
        }
        let mut options = c.options;
        let Some(connector) = options.remove("connector") else {
            return plan_err!(
                "CREATE STREAM {name}: WITH ('connector' = '...') is required; connectors: {}",
                self.connector_names()
            );
        };
        let factory = self
            .factories
            .read()
            .map_err(|_| DataFusionError::Internal("connector registry poisoned".into()))?
            .get(&connector.to_ascii_lowercase())
            .cloned();
        let Some(factory) = factory else {
            return plan_err!(
                "CREATE STREAM {name}: unknown connector '{connector}'; connectors: {}",
                self.connector_names()
            );
        };
        let mut copts = ConnectorOptions::new(connector, options);
        let idle_timeout = copts.take_duration("idle_timeout")?;
        let schema = Arc::new(Schema::new(c.columns));
        let source = factory.create(&name, Arc::clone(&schema), &mut copts)?;
        let event_time = match c.watermark {
            None => None,
            Some((col, text)) => Some(self.watermark_strategy(&name, &schema, &col, &text)?),
        };
        let mut table = StreamTable::try_new(&name, source, &self.rowtime_column, event_time)?;
        if let Some(d) = idle_timeout {
            table = table.with_idle_timeout(d);
        }
        self.register_stream(table)
    }

    fn watermark_strategy(
        &self,
        stream: &str,
        schema: &SchemaRef,
        col: &str,
        text: &str,
    ) -> Result<EventTime> {
        match schema.column_with_name(col) {
            None => {
                let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return plan_err!(
                    "stream '{stream}': WATERMARK FOR '{col}': no such column; columns are {}",
                    cols.join(", ")
                );
            }
            Some((_, f))
                if !matches!(
                    f.data_type(),
                    datafusion::arrow::datatypes::DataType::Timestamp(_, _)
                ) =>
            {
                return plan_err!(
                    "stream '{stream}': WATERMARK FOR '{col}': the column is {}, an event-time column must be a TIMESTAMP",
                    f.data_type()
                );
            }
            _ => {}
        }
        let dfschema = DFSchema::try_from(schema.as_ref().clone())?;
        let expr = self.session.state().create_logical_expr(text, &dfschema)?;
        let bad = || {
            plan_err!(
                "CREATE STREAM {stream}: WATERMARK FOR {col} AS {text}: only `{col}` or `{col} - INTERVAL '<n>' <unit>` (bounded out-of-orderness) is supported"
            )
        };
        let max_delay = match &expr {
            Expr::Column(c) if c.name == col => 0,
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Minus,
                right,
            }) => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) if c.name == col => {
                    interval_to_millis(v, &format!("CREATE STREAM {stream}: WATERMARK FOR {col}"))?
                }
                _ => return bad(),
            },
            _ => return bad(),
        };
        if max_delay < 0 {
            return plan_err!(
                "CREATE STREAM {stream}: WATERMARK FOR {col}: the delay must not be negative"
            );
        }
        Ok(EventTime {
            column: col.to_string(),
            max_delay,
        })
    }

    fn parse(&self, sql: &str) -> Result<DFStatement> {
        let state = self.session.state();
        let dialect = state.config().options().sql_parser.dialect;
        state.sql_to_statement(sql, &dialect)
    }

    async fn plan_statement(&self, mut statement: DFStatement) -> Result<LogicalPlan> {
        let state = self.session.state();
        let streams = self
            .streams
            .read()
            .map_err(|_| DataFusionError::Internal("stream registry poisoned".into()))?
            .clone();
        match &mut statement {
            DFStatement::Statement(s) => hide_rowtime(s, &streams, &self.rowtime_column),
            DFStatement::Explain(e) => {
                if let DFStatement::Statement(s) = e.statement.as_mut() {
                    hide_rowtime(s, &streams, &self.rowtime_column)
                }
            }
            _ => {}
        }
        state.statement_to_plan(statement).await
    }

    /// Runs one statement. `CREATE STREAM` and other DDL take effect and return an empty
    /// DataFrame; a query returns its DataFrame (see [`Self::query`] to run it incrementally).
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let mut statements = split_script(sql, &normalize_lower)?;
        if statements.len() != 1 {
            return plan_err!("expected one SQL statement, got {}", statements.len());
        }
        let s = statements.remove(0);
        if s.create_stream {
            self.create_stream(parse_create_stream(&s.sql, &normalize_lower)?)
                .await?;
            return self.session.sql("SELECT 1 WHERE false").await;
        }
        if classify(&s.sql).is_some() {
            self.create_connector_object(parse_connector_ddl(&s.sql, &normalize_lower)?)
                .await?;
            return self.session.sql("SELECT 1 WHERE false").await;
        }
        let statement = self.parse(&s.sql)?;
        if let Some((name, _)) = self.sink_insert(&statement)? {
            return plan_err!(
                "INSERT INTO sink '{name}' is a continuous query: start it with StreamContext::query or run_script"
            );
        }
        let plan = self.plan_statement(statement).await?;
        self.session.execute_logical_plan(plan).await
    }

    /// Plans and starts a continuous query (one statement). `INSERT INTO <sink> <query>`
    /// starts the query writing into the sink: the returned query's stream yields the sink's
    /// reports (see [`crate::sink`]).
    pub async fn query(&self, sql: &str) -> Result<StreamQuery> {
        let statements = split_script(sql, &normalize_lower)?;
        if let [s] = statements.as_slice() {
            if !s.create_stream && classify(&s.sql).is_none() {
                let statement = self.parse(&s.sql)?;
                if let Some((name, insert)) = self.sink_insert(&statement)? {
                    return self.start_sink_insert(&name, insert).await;
                }
            }
        }
        let df = self.sql(sql).await?;
        self.start(df).await
    }

    /// The sink and INSERT of an `INSERT INTO <sink> ...` statement.
    fn sink_insert<'a>(&self, statement: &'a DFStatement) -> Result<Option<(String, &'a Insert)>> {
        let DFStatement::Statement(s) = statement else {
            return Ok(None);
        };
        let Statement::Insert(insert) = s.as_ref() else {
            return Ok(None);
        };
        let TableObject::TableName(n) = &insert.table else {
            return Ok(None);
        };
        let name = object_name_string(n);
        let known = self
            .sinks
            .read()
            .map_err(|_| DataFusionError::Internal("sink registry poisoned".into()))?
            .contains_key(&name);
        Ok(known.then_some((name, insert)))
    }

    /// Starts `INSERT INTO <sink> <query>`.
    async fn start_sink_insert(&self, name: &str, insert: &Insert) -> Result<StreamQuery> {
        let what = format!("INSERT INTO {name}");
        if !insert.columns.is_empty() {
            return plan_err!(
                "{what}: a column list is not supported; the query's columns map to the sink's by position"
            );
        }
        if insert.overwrite {
            return plan_err!("{what}: OVERWRITE is not supported by sinks");
        }
        let Some(source) = insert.source.clone() else {
            return plan_err!("{what}: expected a query (SELECT ... or VALUES ...)");
        };
        let (sink, columns) = {
            let sinks = self
                .sinks
                .read()
                .map_err(|_| DataFusionError::Internal("sink registry poisoned".into()))?;
            let Some(s) = sinks.get(name) else {
                return plan_err!("{what}: no sink named '{name}'");
            };
            (Arc::clone(&s.sink), s.columns.clone())
        };
        let statement = DFStatement::Statement(Box::new(Statement::Query(source)));
        let mut plan = self.plan_statement(statement).await?;
        if let Some(columns) = &columns {
            plan = cast_to_columns(plan, columns, &what)?;
        }
        let df = self.session.execute_logical_plan(plan).await?;
        let physical = df.create_physical_plan().await?;
        let schema = physical.schema();
        sink.check_schema(&schema)?;
        let task = self.session.task_ctx();
        let inputs: Vec<MessageStream> = match MessageInput::extract(&physical, name) {
            Ok(input) => input.open(&task)?,
            Err(e) if physical.properties().boundedness.is_unbounded() => return Err(e),
            // A bounded plan without progress (a query over tables): its batches.
            Err(_) => (0..physical.output_partitioning().partition_count())
                .map(|p| {
                    let batches = physical.execute(p, Arc::clone(&task))?;
                    Ok(batches.map_ok(StreamMessage::Batch).boxed())
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let counters = Arc::new(SinkCounters::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let reports = sink.start(SinkRun {
            sink_name: name.to_string(),
            schema,
            inputs,
            stop: stop_rx,
            counters: Arc::clone(&counters),
            clock: Arc::clone(&self.runtime.clock),
        })?;
        let sink_name = name.to_string();
        let report_counters = Arc::clone(&counters);
        let rows = reports.map(move |r| {
            let report = r?;
            report_counters.add_report(&report);
            report_batch(&sink_name, &report)
        });
        Ok(StreamQuery {
            plan: physical,
            stream: Box::pin(RecordBatchStreamAdapter::new(sink_report_schema(), rows)),
            sink: Some(SinkHandle {
                name: name.to_string(),
                counters,
                stop: stop_tx,
            }),
        })
    }

    async fn start(&self, df: DataFrame) -> Result<StreamQuery> {
        let plan = df.create_physical_plan().await?;
        let task = self.session.task_ctx();
        let n = plan.output_partitioning().partition_count();
        let stream: SendableRecordBatchStream = if n == 1 {
            plan.execute(0, task)?
        } else {
            // Merge partitions in the polling task (no spawned tasks): deterministic under a
            // manual clock, and each batch is forwarded as soon as its partition yields it.
            let parts = (0..n)
                .map(|p| plan.execute(p, Arc::clone(&task)))
                .collect::<Result<Vec<_>>>()?;
            Box::pin(RecordBatchStreamAdapter::new(
                plan.schema(),
                futures::stream::select_all(parts),
            ))
        };
        Ok(StreamQuery {
            plan,
            stream,
            sink: None,
        })
    }

    /// Runs a script: DDL takes effect in order; each query is started and returned.
    /// Errors name the statement's line.
    pub async fn run_script(&self, sql: &str) -> Result<Vec<StreamQuery>> {
        let mut queries = Vec::new();
        for s in split_script(sql, &normalize_lower)? {
            match self.run_statement(&s.sql, s.create_stream).await {
                Ok(StatementOutcome::Done) => {}
                Ok(StatementOutcome::Query(q)) => queries.push(q),
                Err(e) => return Err(e.context(format!("in the statement at line {}", s.line))),
            }
        }
        Ok(queries)
    }

    /// Runs one statement of a script.
    pub async fn run_statement(&self, sql: &str, create_stream: bool) -> Result<StatementOutcome> {
        if create_stream {
            self.create_stream(parse_create_stream(sql, &normalize_lower)?)
                .await?;
            return Ok(StatementOutcome::Done);
        }
        if classify(sql).is_some() {
            self.create_connector_object(parse_connector_ddl(sql, &normalize_lower)?)
                .await?;
            return Ok(StatementOutcome::Done);
        }
        let statement = self.parse(sql)?;
        if let Some((name, insert)) = self.sink_insert(&statement)? {
            return Ok(StatementOutcome::Query(
                self.start_sink_insert(&name, insert).await?,
            ));
        }
        let plan = self.plan_statement(statement).await?;
        let is_query = !matches!(
            plan,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Copy(_)
        );
        let df = self.session.execute_logical_plan(plan).await?;
        if is_query {
            Ok(StatementOutcome::Query(self.start(df).await?))
        } else {
            df.collect().await?;
            Ok(StatementOutcome::Done)
        }
    }
}

fn names_of<T: ?Sized>(registry: &RwLock<HashMap<String, Arc<T>>>) -> String {
    let mut names: Vec<String> = registry
        .read()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names.join(", ")
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The implicit conversions of an INSERT into declared columns: same type, NULL, number to
/// number, string to string, timestamp to timestamp (any unit or zone), date to timestamp.
fn implicit_cast(from: &DataType, to: &DataType) -> bool {
    from == to
        || from.is_null()
        || (from.is_numeric() && to.is_numeric())
        || (is_string(from) && is_string(to))
        || matches!(
            (from, to),
            (DataType::Timestamp(_, _), DataType::Timestamp(_, _))
                | (
                    DataType::Date32 | DataType::Date64,
                    DataType::Timestamp(_, _)
                )
        )
}

/// Maps the query's columns by position to the sink's declared columns (renamed, cast where
/// the conversion is implicit); any other difference is a plan error naming the column.
fn cast_to_columns(plan: LogicalPlan, columns: &SchemaRef, what: &str) -> Result<LogicalPlan> {
    let input = plan.schema().clone();
    if input.fields().len() != columns.fields().len() {
        let names = |n: Vec<String>| n.join(", ");
        return plan_err!(
            "{what}: the query has {} columns ({}) but the sink declares {} ({})",
            input.fields().len(),
            names(input.fields().iter().map(|f| f.name().clone()).collect()),
            columns.fields().len(),
            names(
                columns
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect()
            )
        );
    }
    let mut exprs = Vec::with_capacity(columns.fields().len());
    for (i, target) in columns.fields().iter().enumerate() {
        let (qualifier, field) = input.qualified_field(i);
        let col = Expr::Column(Column::from((qualifier, field)));
        let from = field.data_type();
        let to = target.data_type();
        let expr = if from == to {
            col
        } else if implicit_cast(from, to) {
            cast(col, to.clone())
        } else {
            return plan_err!(
                "{what}: column {} '{}' of the query is {from}, but the sink's column '{}' is {to}; cast it in the query",
                i + 1,
                field.name(),
                target.name()
            );
        };
        exprs.push(expr.alias(target.name()));
    }
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

fn table_ref(name: &str) -> TableReference {
    if name.contains('.') {
        TableReference::from(name)
    } else {
        TableReference::bare(name)
    }
}
