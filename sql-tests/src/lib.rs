//! A sqllogictest database over a [`StreamContext`] with a manual clock, plus the commands that
//! make streaming tests readable as "input → output after each step":
//!
//! ```text
//!  START q AS <query>                      start a continuous query named q
//!  PUSH s [PARTITION n] VALUES (..), ..    rows into replay stream s (ROWTIME first when the
//!                                          stream was created with 'rowtime' = 'supplied')
//!  WATERMARK s [PARTITION n] '<ts>'        explicit event-time watermark (all partitions if none)
//!  IDLE s PARTITION n                      mark a partition idle
//!  FINISH s                                end of input for every partition of s
//!  ADVANCE CLOCK TO '<ts>' | BY '<dur>'    move processing time (ROWTIME windows, idleness)
//!  POLL q                                  (a query) rows q emitted since the last POLL
//!  METRIC q <counter>                      (a query) e.g. late_rows, null_time_rows
//!  anything else                           DataFusion/streaming SQL (CREATE STREAM, EXPLAIN, ...)
//! ```
//!
//! `POLL` drives the query in the calling task until every operator would block, so results
//! are deterministic and nothing sleeps.

pub mod kda;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{plan_datafusion_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::parse_duration;
use datafusion_stream::{
    LateRowPolicy, ManualClock, RowtimeMode, StatementOutcome, StreamContext, StreamQuery,
    StreamRuntime,
};
use futures::{FutureExt, StreamExt};
use sqllogictest::{DBOutput, DefaultColumnType};

/// Error type for the runner.
#[derive(Debug)]
pub struct SltError(pub DataFusionError);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for SltError {}

/// The database under test.
pub struct StreamDb {
    ctx: StreamContext,
    clock: Arc<ManualClock>,
    queries: HashMap<String, (StreamQuery, bool)>,
}

impl Default for StreamDb {
    fn default() -> Self {
        Self::new()
    }
}

fn words(sql: &str) -> Vec<&str> {
    sql.split_whitespace().collect()
}

/// The text after the first `n` whitespace-separated words.
fn after_words(sql: &str, n: usize) -> &str {
    let mut rest = sql.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

pub(crate) fn parse_ts(s: &str) -> Result<i64> {
    let s = s.trim().trim_matches('\'');
    let arr: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![s]));
    let t = cast(&arr, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    let t = t
        .as_any()
        .downcast_ref::<datafusion::arrow::array::TimestampMillisecondArray>()
        .ok_or_else(|| plan_datafusion_err!("bad timestamp '{s}'"))?;
    if t.is_null(0) {
        return plan_err!("bad timestamp '{s}'");
    }
    Ok(t.value(0))
}

impl StreamDb {
    /// A fresh context whose clock reads 1970-01-01 00:00:00, with idleness off unless a stream
    /// sets `idle_timeout`.
    pub fn new() -> Self {
        let clock = ManualClock::new(0);
        let ctx = StreamContext::with_runtime(StreamRuntime {
            clock: clock.clone(),
            tick_interval: Duration::from_millis(100),
            idle_timeout: None,
            late_rows: LateRowPolicy::Drop,
            errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
        });
        Self {
            ctx,
            clock,
            queries: HashMap::new(),
        }
    }

    /// The context.
    pub fn context(&self) -> &StreamContext {
        &self.ctx
    }

    /// Runs one statement or command.
    pub async fn execute(&mut self, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
        let sql = sql.trim().trim_end_matches(';').trim();
        let w = words(sql);
        let head = w
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match head.as_str() {
            "START" => {
                // START name AS query
                if w.len() < 4 || !w[2].eq_ignore_ascii_case("AS") {
                    return plan_err!("usage: START <name> AS <query>");
                }
                let name = w[1].to_string();
                let query_sql = after_words(sql, 3);
                let q = self.ctx.query(query_sql).await?;
                self.queries.insert(name, (q, false));
                Ok(None)
            }
            "POLL" => {
                let name = w
                    .get(1)
                    .ok_or_else(|| plan_datafusion_err!("usage: POLL <name>"))?;
                let (q, ended) = self
                    .queries
                    .get_mut(*name)
                    .ok_or_else(|| plan_datafusion_err!("no query named {name}"))?;
                let mut out = Vec::new();
                while !*ended {
                    let next = tokio::task::unconstrained(q.stream().next()).now_or_never();
                    match next {
                        Some(Some(Ok(b))) => out.push(b),
                        Some(Some(Err(e))) => {
                            *ended = true;
                            return Err(e);
                        }
                        Some(None) => *ended = true,
                        None => break,
                    }
                }
                Ok(Some(out))
            }
            "METRIC" => {
                let (name, metric) = match (w.get(1), w.get(2)) {
                    (Some(n), Some(m)) => (*n, *m),
                    _ => return plan_err!("usage: METRIC <query> <counter>"),
                };
                let (q, _) = self
                    .queries
                    .get(name)
                    .ok_or_else(|| plan_datafusion_err!("no query named {name}"))?;
                let v = q.counter(metric) as i64;
                let b = self
                    .ctx
                    .session()
                    .sql(&format!("SELECT {v} AS {metric}"))
                    .await?
                    .collect()
                    .await?;
                Ok(Some(b))
            }
            "PUSH" => self.push(sql, &w).await.map(|_| None),
            "WATERMARK" => {
                // WATERMARK s [PARTITION n] 'ts'
                let stream = w.get(1).ok_or_else(|| {
                    plan_datafusion_err!("usage: WATERMARK <stream> [PARTITION n] '<ts>'")
                })?;
                let h = self.ctx.replay_handle(stream).await?;
                let (parts, ts) =
                    if w.get(2).map(|s| s.eq_ignore_ascii_case("PARTITION")) == Some(true) {
                        let p: usize = w
                            .get(3)
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| plan_datafusion_err!("bad partition"))?;
                        (vec![p], w[4..].join(" "))
                    } else {
                        ((0..h.partition_count()).collect(), w[2..].join(" "))
                    };
                let t = parse_ts(&ts)?;
                for p in parts {
                    h.watermark(p, t)?;
                }
                Ok(None)
            }
            "IDLE" => {
                let (stream, p) = match (w.get(1), w.get(3).and_then(|s| s.parse::<usize>().ok())) {
                    (Some(s), Some(p)) => (*s, p),
                    _ => return plan_err!("usage: IDLE <stream> PARTITION <n>"),
                };
                self.ctx.replay_handle(stream).await?.idle(p)?;
                Ok(None)
            }
            "FINISH" => {
                let stream = w
                    .get(1)
                    .ok_or_else(|| plan_datafusion_err!("usage: FINISH <stream>"))?;
                self.ctx.replay_handle(stream).await?.finish()?;
                Ok(None)
            }
            "ADVANCE" => {
                // ADVANCE CLOCK TO 'ts' | ADVANCE CLOCK BY 'dur'
                match (
                    w.get(1).map(|s| s.to_ascii_uppercase()),
                    w.get(2).map(|s| s.to_ascii_uppercase()),
                ) {
                    (Some(c), Some(k)) if c == "CLOCK" && k == "TO" => {
                        self.clock.advance_to(parse_ts(&w[3..].join(" "))?)
                    }
                    (Some(c), Some(k)) if c == "CLOCK" && k == "BY" => {
                        let d = parse_duration(w[3..].join(" ").trim_matches('\''))
                            .map_err(|e| plan_datafusion_err!("{e}"))?;
                        self.clock.advance_by(d)
                    }
                    _ => {
                        return plan_err!(
                            "usage: ADVANCE CLOCK TO '<ts>' | ADVANCE CLOCK BY '<duration>'"
                        )
                    }
                }
                Ok(None)
            }
            _ => {
                let statements = datafusion_stream::sql::split_script(
                    sql,
                    &datafusion_stream::sql::normalize_lower,
                )?;
                let mut last = None;
                for s in statements {
                    last = match self.ctx.run_statement(&s.sql, s.create_stream).await? {
                        StatementOutcome::Done => None,
                        StatementOutcome::Query(mut q) => {
                            let mut out = Vec::new();
                            loop {
                                match tokio::task::unconstrained(q.stream().next()).now_or_never() {
                                    Some(Some(b)) => out.push(b?),
                                    Some(None) => break,
                                    None => {
                                        return plan_err!(
                                            "the query did not finish (it reads a stream): use START <name> AS <query> and POLL <name>"
                                        )
                                    }
                                }
                            }
                            Some(out)
                        }
                    };
                }
                Ok(last)
            }
        }
    }

    async fn push(&mut self, sql: &str, w: &[&str]) -> Result<()> {
        // PUSH s [PARTITION n] VALUES ...
        let stream = w.get(1).ok_or_else(|| {
            plan_datafusion_err!("usage: PUSH <stream> [PARTITION n] VALUES (...)")
        })?;
        let h = self.ctx.replay_handle(stream).await?;
        let partition = if w.get(2).map(|s| s.eq_ignore_ascii_case("PARTITION")) == Some(true) {
            w.get(3)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| plan_datafusion_err!("PUSH: bad partition number"))?
        } else {
            0
        };
        let upper = sql.to_ascii_uppercase();
        let Some(at) = upper.find("VALUES") else {
            return plan_err!("PUSH: expected VALUES (...)");
        };
        let batches = self
            .ctx
            .session()
            .sql(&format!("SELECT * FROM ({})", &sql[at..]))
            .await?
            .collect()
            .await?;
        let schema = h.schema().clone();
        let supplied = h.rowtime_mode() == RowtimeMode::Supplied;
        for b in batches {
            let offset = usize::from(supplied);
            if b.num_columns() != schema.fields().len() + offset {
                return plan_err!(
                    "PUSH {stream}: {} values per row, the stream has {} columns{}",
                    b.num_columns(),
                    schema.fields().len(),
                    if supplied { " plus ROWTIME first" } else { "" }
                );
            }
            let cols = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| cast(b.column(i + offset), f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let batch = RecordBatch::try_new(schema.clone(), cols)?;
            let rowtime = if supplied {
                Some(cast(
                    b.column(0),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )?)
            } else {
                None
            };
            h.push(partition, batch, rowtime)?;
        }
        Ok(())
    }
}

fn column_type(dt: &DataType) -> DefaultColumnType {
    if dt.is_integer() {
        DefaultColumnType::Integer
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(_, _)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// Formats batches as sqllogictest rows (NULL as `NULL`, empty strings as `(empty)`).
pub fn format_rows(batches: &[RecordBatch]) -> Result<(Vec<DefaultColumnType>, Vec<Vec<String>>)> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut types = Vec::new();
    let mut rows = Vec::new();
    for b in batches {
        if types.is_empty() {
            types = b
                .schema()
                .fields()
                .iter()
                .map(|f| column_type(f.data_type()))
                .collect();
        }
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = fmts
                .iter()
                .map(|f| {
                    let s = f.value(r).to_string().trim_end().to_string();
                    if s.is_empty() {
                        "(empty)".to_string()
                    } else {
                        s
                    }
                })
                .collect();
            // A multi-line cell (a plan) continues on rows of its own, one per line.
            let mut extra = Vec::new();
            let first: Vec<String> = cells
                .iter()
                .map(|c| {
                    let mut lines = c.lines();
                    let head = lines.next().unwrap_or("").to_string();
                    extra.extend(lines.map(|l| vec![l.to_string()]));
                    head
                })
                .collect();
            rows.push(first);
            rows.extend(extra);
        }
    }
    Ok((types, rows))
}

#[async_trait]
impl sqllogictest::AsyncDB for StreamDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(
        &mut self,
        sql: &str,
    ) -> std::result::Result<DBOutput<Self::ColumnType>, Self::Error> {
        match self.execute(sql).await.map_err(SltError)? {
            None => Ok(DBOutput::StatementComplete(0)),
            Some(batches) => {
                let (types, rows) = format_rows(&batches).map_err(SltError)?;
                Ok(DBOutput::Rows { types, rows })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion-stream"
    }
}

/// Runs every `.slt` file below `root` (whose path contains `filter`, if given) with a fresh
/// database from `make` per file; prints `test <label>::<file> ... ok|FAILED` and a closing
/// `<label> slt: N passed, M failed` line. True when all passed (and at least one ran).
pub async fn run_slt_dir<D, F>(
    root: &std::path::Path,
    label: &str,
    filter: Option<&str>,
    make: F,
) -> bool
where
    D: sqllogictest::AsyncDB + 'static,
    F: Fn() -> D + Clone + Send + 'static,
{
    fn slt_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                slt_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "slt") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    slt_files(root, &mut files);
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        let name = f.strip_prefix(root).unwrap_or(&f).display().to_string();
        if filter.is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        let make = make.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let make = make.clone();
            async move { Ok(make()) }
        });
        match runner.run_file_async(&f).await {
            Ok(()) => {
                println!("test {label}::{name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test {label}::{name} ... FAILED\n{e}\n");
                failed += 1;
            }
        }
    }
    let prefix = if label == "slt" {
        String::new()
    } else {
        format!("{label} ")
    };
    println!("\n{prefix}slt: {passed} passed, {failed} failed");
    failed == 0 && passed > 0
}
