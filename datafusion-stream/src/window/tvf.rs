//! The window table functions `tumble`, `hop` and `session`.
//!
//! Flink's syntax `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))` is rewritten by
//! the SQL front end ([`crate::sql`]) into a DataFusion table-function call
//! `tumble('t', 'ts', INTERVAL '10' SECOND)`, which can also be written directly:
//!
//! ```sql
//! tumble('stream', 'time_column', size [, offset])
//! hop('stream', 'time_column', slide, size [, offset])
//! session('stream', 'time_column', gap [, 'partition_key', ...])
//! ```
//!
//! The function returns a [`WindowedTable`]: the stream's columns plus `window_start` and
//! `window_end`. The analyzer rule in [`super::logical`] turns an aggregate over it into a
//! streaming window aggregate.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue, TableReference};
use datafusion::datasource::TableType;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use futures::FutureExt;

use super::{TimeDomain, WindowKind};
use crate::scan::{is_rowtime, StreamTable};
use crate::time::interval_to_millis;

/// Name of the window start column.
pub const WINDOW_START: &str = "window_start";
/// Name of the window end column.
pub const WINDOW_END: &str = "window_end";

/// A stream with windows assigned: the output of a window table function.
#[derive(Debug, Clone)]
pub struct WindowedTable {
    /// The stream.
    pub stream: StreamTable,
    /// The window.
    pub kind: WindowKind,
    /// The time column.
    pub time_column: String,
    /// Whether the time column is event time or ROWTIME.
    pub domain: TimeDomain,
    /// SESSION `PARTITION BY` columns.
    pub partition_keys: Vec<String>,
    schema: SchemaRef,
}

impl WindowedTable {
    /// Checks the time column and the sizes, naming the problem.
    pub fn try_new(
        stream: StreamTable,
        kind: WindowKind,
        time_column: &str,
        partition_keys: Vec<String>,
    ) -> Result<Self> {
        let fname = kind.name();
        let base = stream.schema();
        let Some((_, field)) = base.column_with_name(time_column) else {
            return plan_err!(
                "{fname}: DESCRIPTOR({time_column}): stream '{}' has no column '{time_column}'",
                stream.name()
            );
        };
        if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
            return plan_err!(
                "{fname}: DESCRIPTOR({time_column}): the time column must be a TIMESTAMP, but '{time_column}' is {}",
                field.data_type()
            );
        }
        let domain = if is_rowtime(field) {
            TimeDomain::Rowtime
        } else if stream.event_time().map(|e| e.column.as_str()) == Some(time_column) {
            TimeDomain::EventTime
        } else {
            return plan_err!(
                "{fname}: DESCRIPTOR({time_column}): column '{time_column}' of stream '{}' has no watermark; declare `WATERMARK FOR {time_column} AS {time_column} - INTERVAL '5' SECOND` in CREATE STREAM, or window over {}",
                stream.name(),
                stream.rowtime_column()
            );
        };
        match kind {
            WindowKind::Tumble { size, .. } if size <= 0 => {
                return plan_err!("{fname}: the window size must be positive, got {size} ms")
            }
            WindowKind::Hop { slide, size, .. } if slide <= 0 || size <= 0 => {
                return plan_err!(
                "{fname}: slide and size must be positive, got slide {slide} ms and size {size} ms"
            )
            }
            WindowKind::Session { gap } if gap <= 0 => {
                return plan_err!("{fname}: the session gap must be positive, got {gap} ms")
            }
            _ => {}
        }
        for k in &partition_keys {
            if base.column_with_name(k).is_none() {
                return plan_err!(
                    "{fname}: PARTITION BY {k}: stream '{}' has no column '{k}'",
                    stream.name()
                );
            }
        }
        for reserved in [WINDOW_START, WINDOW_END] {
            if base.column_with_name(reserved).is_some() {
                return plan_err!(
                    "{fname}: stream '{}' already has a column named '{reserved}', which the window function adds",
                    stream.name()
                );
            }
        }
        let tz = match field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        for name in [WINDOW_START, WINDOW_END] {
            fields.push(Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
                false,
            ));
        }
        Ok(Self {
            schema: Arc::new(Schema::new(fields)),
            stream,
            kind,
            time_column: time_column.to_string(),
            domain,
            partition_keys,
        })
    }
}

#[async_trait]
impl TableProvider for WindowedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan_err!(
            "{}: the rows of a window function can only be aggregated: use GROUP BY window_start, window_end[, keys] with aggregate functions (the window function must be the direct input of that GROUP BY, through WHERE only)",
            self.kind.name()
        )
    }
}

/// A window table function (`tumble`, `hop` or `session`).
#[derive(Debug, Clone, Copy)]
pub struct WindowTableFunction {
    name: &'static str,
}

impl WindowTableFunction {
    /// `tumble`.
    pub const TUMBLE: Self = Self { name: "tumble" };
    /// `hop`.
    pub const HOP: Self = Self { name: "hop" };
    /// `session`.
    pub const SESSION: Self = Self { name: "session" };

    /// The function's SQL name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Looks up the table a table function names (`tumble('t', ...)`, `stream_range('t', ...)`,
/// `random_cut_forest('t', ...)`). Names follow the session's identifier rules: folded to lower
/// case unless quoted (DataFusion's default), or exact when normalisation is off (KDA
/// applications). `what` names the expected kind in the "not found" error.
pub(crate) fn lookup_table(
    fname: &str,
    state: &SessionState,
    name: &str,
    what: &str,
) -> Result<(TableReference, Arc<dyn TableProvider>)> {
    let table_ref = if state
        .config()
        .options()
        .sql_parser
        .enable_ident_normalization
    {
        TableReference::from(name)
    } else {
        TableReference::bare(name)
    };
    let schema = state.schema_for_ref(table_ref.clone())?;
    let provider = match schema.table(table_ref.table()).now_or_never() {
        Some(r) => r?,
        None => {
            return plan_err!(
                "{fname}: looking up '{name}' would block; register streams in an in-memory catalog"
            )
        }
    };
    match provider {
        Some(provider) => Ok((table_ref, provider)),
        None => plan_err!("{fname}: no {what} named '{name}'"),
    }
}

fn string_arg(fname: &str, exprs: &[Expr], i: usize, what: &str) -> Result<String> {
    match exprs.get(i) {
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _))
        | Some(Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _))
        | Some(Expr::Literal(ScalarValue::Utf8View(Some(s)), _)) => Ok(s.clone()),
        Some(other) => plan_err!(
            "{fname}: argument {} ({what}) must be a name, got {other}",
            i + 1
        ),
        None => plan_err!("{fname}: argument {} ({what}) is missing", i + 1),
    }
}

fn interval_arg(fname: &str, exprs: &[Expr], i: usize, what: &str) -> Result<i64> {
    match exprs.get(i) {
        Some(Expr::Literal(v, _))
            if matches!(
                v.data_type(),
                DataType::Interval(_) | DataType::Duration(_)
            ) =>
        {
            interval_to_millis(v, &format!("{fname}: {what}"))
        }
        Some(other) => plan_err!(
            "{fname}: argument {} ({what}) must be an INTERVAL literal such as INTERVAL '10' SECOND, got {other}",
            i + 1
        ),
        None => plan_err!("{fname}: argument {} ({what}) is missing", i + 1),
    }
}

impl TableFunctionImpl for WindowTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let fname = self.name.to_ascii_uppercase();
        let exprs = args.exprs();
        let table = string_arg(&fname, exprs, 0, "the stream")?;
        let time_column = string_arg(&fname, exprs, 1, "the time column")?;
        let (kind, keys) = match self.name {
            "tumble" => {
                if exprs.len() > 4 {
                    return plan_err!("TUMBLE takes (TABLE t, DESCRIPTOR(col), size [, offset]); got {} arguments", exprs.len());
                }
                let size = interval_arg(&fname, exprs, 2, "size")?;
                let offset = if exprs.len() > 3 {
                    interval_arg(&fname, exprs, 3, "offset")?
                } else {
                    0
                };
                (WindowKind::Tumble { size, offset }, vec![])
            }
            "hop" => {
                if exprs.len() > 5 {
                    return plan_err!("HOP takes (TABLE t, DESCRIPTOR(col), slide, size [, offset]); got {} arguments", exprs.len());
                }
                let slide = interval_arg(&fname, exprs, 2, "slide")?;
                let size = interval_arg(&fname, exprs, 3, "size")?;
                let offset = if exprs.len() > 4 {
                    interval_arg(&fname, exprs, 4, "offset")?
                } else {
                    0
                };
                (
                    WindowKind::Hop {
                        slide,
                        size,
                        offset,
                    },
                    vec![],
                )
            }
            _ => {
                let gap = interval_arg(&fname, exprs, 2, "gap")?;
                let keys = (3..exprs.len())
                    .map(|i| string_arg(&fname, exprs, i, "PARTITION BY column"))
                    .collect::<Result<Vec<_>>>()?;
                (WindowKind::Session { gap }, keys)
            }
        };
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{fname}: window functions need a DataFusion SessionState");
        };
        let (_, provider) = lookup_table(&fname, state, &table, "stream")?;
        let Some(stream) = provider.downcast_ref::<StreamTable>() else {
            return plan_err!(
                "{fname}: '{table}' is a table, not a stream; window functions apply to streams (CREATE STREAM)"
            );
        };
        Ok(Arc::new(WindowedTable::try_new(
            stream.clone(),
            kind,
            &time_column,
            keys,
        )?))
    }
}
