//! A sqllogictest database for KDA applications (`sql-tests/kda/*.slt`).
//!
//! ```text
//!  INPUT <name> (<col> <type>, ...)          an input in-application stream; ROWTIME is given
//!                                            with every PUSH (a replay of the documented input)
//!  INPUT <name> SCHEMA <InputSchema JSON>   an input decoded with KDA's InputSchema (JSONPath
//!                                            or CSV mapping, coercion rules)
//!  RECORD <name> '<rowtime>' <raw record>    one raw record (the rest of the statement) into
//!                                            an INPUT ... SCHEMA; rejects go to error_stream
//!  DISCOVER <sample records, one per line>   (a query) the discovered columns: name, type
//!  REFERENCE <name> (<col> <type>, ...) VALUES (...), ...   a reference table
//!  APPLICATION <code>                        KDA application code (CREATE STREAM / PUMP ...)
//!  QUERY <name> AS SELECT STREAM ...         a bare query; its rows are the output <name>
//!  OUTPUT <stream>                           collect a stream's rows (or error_stream)
//!  START                                     plan and start (errors: every diagnostic)
//!  RESET                                     a fresh application (nothing declared)
//!  CHECK                                     (a query) the diagnostics of `dfstream check`
//!  PUSH <input> VALUES ('<rowtime>', v, ...), ...   rows, ROWTIME first
//!  BOUND <input> '<ts>'                      a rowtime bound: no row before ts follows
//!  FINISH <input>                            end of the input
//!  POLL <output> [(col, ...)]                (a query) rows since the last POLL; streams show
//!                                            ROWTIME first; timestamps as yyyy-mm-dd hh:mm:ss[.fff]
//! ```
//!
//! After every command the application runs until nothing moves, so results are
//! deterministic and nothing sleeps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{plan_datafusion_err, plan_err, Result};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion_stream::errors::FailOnError;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplayHandle, ReplaySource, RowtimeMode, StreamRuntime,
};
use datafusion_stream_connectors::kda::{
    discover_input_schema, InputSchema, RecordDecoder, RecordMeta,
};
use datafusion_stream_kda::program::parse_columns;
use datafusion_stream_kda::{KdaApplication, RunningApplication};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::SltError;

/// The KDA database under test.
pub struct KdaDb {
    app: Option<KdaApplication>,
    decoders: HashMap<String, RecordDecoder>,
    running: Option<RunningApplication>,
    inputs: HashMap<String, ReplayHandle>,
    values: SessionContext,
    _clock: Arc<ManualClock>,
}

impl Default for KdaDb {
    fn default() -> Self {
        Self::new()
    }
}

fn strip_quotes(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_ascii_uppercase()
    }
}

/// Splits `NAME rest` (NAME possibly quoted).
fn name_and_rest(s: &str) -> (String, &str) {
    let s = s.trim_start();
    if let Some(stripped) = s.strip_prefix('"') {
        if let Some(end) = stripped.find('"') {
            return (stripped[..end].to_string(), &stripped[end + 1..]);
        }
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(s.len());
    (s[..end].to_ascii_uppercase(), &s[end..])
}

fn after_keyword<'a>(sql: &'a str, kw: &str) -> &'a str {
    sql.trim_start()[kw.len()..].trim_start()
}

impl KdaDb {
    /// A fresh application on a manual clock at 1970-01-01 00:00:00.
    pub fn new() -> Self {
        let clock = ManualClock::new(0);
        let runtime = StreamRuntime {
            clock: clock.clone(),
            tick_interval: Duration::from_millis(100),
            idle_timeout: None,
            late_rows: LateRowPolicy::Drop,
            errors: Arc::new(FailOnError),
        };
        Self {
            app: KdaApplication::new(runtime).ok(),
            decoders: HashMap::new(),
            running: None,
            inputs: HashMap::new(),
            values: SessionContext::new(),
            _clock: clock,
        }
    }

    fn app(&mut self) -> Result<&mut KdaApplication> {
        self.app
            .as_mut()
            .ok_or_else(|| plan_datafusion_err!("the application has already started"))
    }

    fn running(&mut self) -> Result<&mut RunningApplication> {
        self.running
            .as_mut()
            .ok_or_else(|| plan_datafusion_err!("START the application first"))
    }

    async fn values(
        values: SessionContext,
        sql: &str,
        schema: &Schema,
        offset: usize,
    ) -> Result<Vec<RecordBatch>> {
        let upper = sql.to_ascii_uppercase();
        let Some(at) = upper.find("VALUES") else {
            return plan_err!("expected VALUES (...)");
        };
        let batches = values
            .sql(&format!("SELECT * FROM ({})", &sql[at..]))
            .await?
            .collect()
            .await?;
        let mut out = Vec::new();
        for b in batches {
            if b.num_columns() != schema.fields().len() + offset {
                return plan_err!(
                    "{} values per row, expected {}",
                    b.num_columns(),
                    schema.fields().len() + offset
                );
            }
            let mut cols = Vec::new();
            if offset == 1 {
                cols.push(cast(
                    b.column(0),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )?);
            }
            for (i, f) in schema.fields().iter().enumerate() {
                cols.push(cast(b.column(i + offset), f.data_type())?);
            }
            let mut fields: Vec<datafusion::arrow::datatypes::Field> = Vec::new();
            if offset == 1 {
                fields.push(datafusion::arrow::datatypes::Field::new(
                    "ROWTIME",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    true,
                ));
            }
            fields.extend(
                schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true)),
            );
            out.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?);
        }
        Ok(out)
    }

    fn columns(decl: &str) -> Result<Schema> {
        parse_columns(decl).map_err(|e| plan_datafusion_err!("{e}"))
    }

    /// Runs one command.
    pub async fn execute(&mut self, sql: &str) -> Result<Option<Vec<Vec<String>>>> {
        let sql = sql.trim().trim_end_matches(';').trim();
        let head = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let out = match head.as_str() {
            "RESET" => {
                *self = KdaDb::new();
                None
            }
            "INPUT"
                if sql
                    .split_whitespace()
                    .nth(2)
                    .is_some_and(|w| w.eq_ignore_ascii_case("SCHEMA")) =>
            {
                let (name, rest) = name_and_rest(after_keyword(sql, "INPUT"));
                let json = after_keyword(rest.trim_start(), "SCHEMA");
                let schema = InputSchema::from_json(json)?;
                let decoder = RecordDecoder::try_new(&schema)?;
                let source = ReplaySource::new(decoder.schema(), 1, RowtimeMode::Supplied);
                self.inputs.insert(name.clone(), source.handle());
                self.decoders.insert(name.clone(), decoder);
                self.app()?.add_input(&name, Arc::new(source))?;
                None
            }
            "RECORD" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "RECORD"));
                let rest = rest.trim_start();
                let Some(end) = rest[1..].find('\'').map(|i| i + 1) else {
                    return plan_err!("usage: RECORD <input> '<rowtime>' <raw record>");
                };
                let rowtime = crate::parse_ts(&rest[..=end])?;
                let raw = rest[end + 1..].trim_start().to_string();
                let h = self
                    .inputs
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| plan_datafusion_err!("RECORD: no input named {name}"))?;
                let sink = self.running()?.error_sink();
                let decoder = self.decoders.get_mut(&name).ok_or_else(|| {
                    plan_datafusion_err!("RECORD: {name} was not declared with INPUT ... SCHEMA")
                })?;
                let origin = format!("record of {name}");
                let meta = RecordMeta {
                    origin: &origin,
                    error_time: rowtime,
                    rowtime: Some(rowtime),
                };
                let decoded = decoder.decode(raw.as_bytes(), &meta);
                for r in decoded.rejected {
                    sink.report(r)?;
                }
                let batch = decoder.finish()?;
                let n = batch.num_rows();
                let times =
                    datafusion::arrow::array::TimestampMillisecondArray::from(vec![rowtime; n]);
                h.push(0, batch, Some(Arc::new(times)))?;
                self.running()?.run_until_stalled()?;
                None
            }
            "DISCOVER" => {
                let samples: Vec<Vec<u8>> = after_keyword(sql, "DISCOVER")
                    .lines()
                    .map(|l| l.as_bytes().to_vec())
                    .collect();
                let schema = discover_input_schema(&samples)?;
                Some(
                    schema
                        .record_columns
                        .iter()
                        .map(|c| {
                            vec![
                                c.name.clone(),
                                c.sql_type.clone(),
                                c.mapping.clone().unwrap_or_else(|| "(empty)".into()),
                            ]
                        })
                        .collect(),
                )
            }
            "INPUT" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "INPUT"));
                let schema = Arc::new(Self::columns(rest)?);
                let source = ReplaySource::new(schema, 1, RowtimeMode::Supplied);
                self.inputs.insert(name.clone(), source.handle());
                self.app()?.add_input(&name, Arc::new(source))?;
                None
            }
            "REFERENCE" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "REFERENCE"));
                let upper = rest.to_ascii_uppercase();
                let at = upper
                    .find("VALUES")
                    .ok_or_else(|| plan_datafusion_err!("REFERENCE: expected VALUES"))?;
                let schema = Arc::new(Self::columns(&rest[..at])?);
                let batches = Self::values(self.values.clone(), &rest[at..], &schema, 0).await?;
                let batches = batches
                    .into_iter()
                    .map(|b| RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let table = MemTable::try_new(schema, vec![batches])?;
                self.app()?.add_reference_table(&name, Arc::new(table))?;
                None
            }
            "APPLICATION" => {
                let code = after_keyword(sql, "APPLICATION").to_string();
                self.app()?
                    .load_code(&code)
                    .map_err(|d| datafusion_stream_kda::program::diagnostics_error(&d))?;
                None
            }
            "QUERY" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "QUERY"));
                let rest = rest.trim_start();
                if !rest.to_ascii_uppercase().starts_with("AS") {
                    return plan_err!("usage: QUERY <name> AS SELECT STREAM ...");
                }
                self.app()?.add_query(&name, &rest[2..])?;
                None
            }
            "OUTPUT" => {
                let name = after_keyword(sql, "OUTPUT");
                let name = if name == "error_stream" {
                    name.to_string()
                } else {
                    strip_quotes(name)
                };
                self.app()?.add_output(&name)?;
                None
            }
            "START" => {
                let app = self
                    .app
                    .take()
                    .ok_or_else(|| plan_datafusion_err!("already started"))?;
                let mut running = app.start().await?;
                running.run_until_stalled()?;
                self.running = Some(running);
                None
            }
            "CHECK" => {
                let app = self
                    .app
                    .take()
                    .ok_or_else(|| plan_datafusion_err!("already started"))?;
                let diags = app.check().await;
                Some(
                    diags
                        .into_iter()
                        .map(|d| {
                            vec![
                                d.statement.to_string(),
                                format!("{}:{}", d.line, d.column),
                                d.message,
                            ]
                        })
                        .collect(),
                )
            }
            "PUSH" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "PUSH"));
                let h = self
                    .inputs
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| plan_datafusion_err!("PUSH: no input named {name}"))?;
                let schema = h.schema().clone();
                let rest = rest.to_string();
                for b in Self::values(self.values.clone(), &rest, &schema, 1).await? {
                    let rowtime = b.column(0).clone();
                    let data = RecordBatch::try_new(schema.clone(), b.columns()[1..].to_vec())?;
                    h.push(0, data, Some(rowtime))?;
                }
                self.running()?.run_until_stalled()?;
                None
            }
            "BOUND" => {
                let (name, rest) = name_and_rest(after_keyword(sql, "BOUND"));
                let h = self
                    .inputs
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| plan_datafusion_err!("BOUND: no input named {name}"))?;
                h.rowtime_bound(0, crate::parse_ts(rest)?)?;
                self.running()?.run_until_stalled()?;
                None
            }
            "FINISH" => {
                let (name, _) = name_and_rest(after_keyword(sql, "FINISH"));
                let h = self
                    .inputs
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| plan_datafusion_err!("FINISH: no input named {name}"))?;
                h.finish()?;
                self.running()?.run_until_stalled()?;
                None
            }
            "POLL" => {
                let rest = after_keyword(sql, "POLL");
                let (name, cols) = match rest.find('(') {
                    Some(i) => (
                        rest[..i].trim(),
                        Some(
                            rest[i + 1..]
                                .trim_end_matches(')')
                                .split(',')
                                .map(strip_quotes)
                                .collect::<Vec<_>>(),
                        ),
                    ),
                    None => (rest, None),
                };
                let name = if name == "error_stream" {
                    name.to_string()
                } else {
                    strip_quotes(name)
                };
                let running = self.running()?;
                running.run_until_stalled()?;
                if !running.output_names().contains(&name) {
                    return plan_err!(
                        "POLL: no output named {name} (add OUTPUT {name} before START)"
                    );
                }
                let mut batches = running.take_output(&name);
                if let Some(cols) = cols {
                    batches = batches
                        .into_iter()
                        .map(|b| {
                            let idx = cols
                                .iter()
                                .map(|c| b.schema().index_of(c))
                                .collect::<std::result::Result<Vec<_>, _>>()?;
                            b.project(&idx)
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                }
                Some(format_kda_rows(&batches)?)
            }
            _ => return plan_err!("unknown KDA test command: {sql}"),
        };
        Ok(out)
    }
}

/// Formats rows: NULL as `NULL`, timestamps as `yyyy-mm-dd hh:mm:ss[.fff]`.
pub fn format_kda_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let opts = FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut rows = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(
                fmts.iter()
                    .map(|f| {
                        let s = f.value(r).to_string();
                        if s.is_empty() {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

#[async_trait]
impl sqllogictest::AsyncDB for KdaDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(
        &mut self,
        sql: &str,
    ) -> std::result::Result<DBOutput<DefaultColumnType>, SltError> {
        match self.execute(sql).await.map_err(SltError)? {
            None => Ok(DBOutput::StatementComplete(0)),
            Some(rows) => {
                let n = rows.first().map(|r| r.len()).unwrap_or(0);
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Text; n],
                    rows,
                })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion-stream-kda"
    }
}
