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
//!       └── query(sql) ──► StreamQuery: a record batch stream that emits incrementally
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{
    plan_datafusion_err, plan_err, DFSchema, DataFusionError, Result, TableReference,
};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use futures::StreamExt;

use crate::exec::filter::IncrementalFilterRule;
use crate::runtime::StreamRuntime;
use crate::scan::{EventTime, StreamTable};
use crate::source::replay::{ReplayFactory, ReplayHandle, ReplaySource};
use crate::source::{ConnectorOptions, SourceFactory};
use crate::sql::ddl::{parse_create_stream, CreateStream};
use crate::sql::{hide_rowtime, normalize_lower, split_script};
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

/// A streaming SQL context.
pub struct StreamContext {
    session: SessionContext,
    runtime: Arc<StreamRuntime>,
    factories: RwLock<HashMap<String, Arc<dyn SourceFactory>>>,
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
}

impl StreamQuery {
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

    fn connector_names(&self) -> String {
        let mut names: Vec<String> = self
            .factories
            .read()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names.join(", ")
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

    async fn plan(&self, sql: &str) -> Result<LogicalPlan> {
        let state = self.session.state();
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(sql, &dialect)?;
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
        let plan = self.plan(&s.sql).await?;
        self.session.execute_logical_plan(plan).await
    }

    /// Plans and starts a continuous query (one statement).
    pub async fn query(&self, sql: &str) -> Result<StreamQuery> {
        let df = self.sql(sql).await?;
        self.start(df).await
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
        Ok(StreamQuery { plan, stream })
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
        let plan = self.plan(sql).await?;
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

fn table_ref(name: &str) -> TableReference {
    if name.contains('.') {
        TableReference::from(name)
    } else {
        TableReference::bare(name)
    }
}
