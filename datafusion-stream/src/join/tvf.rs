//! The join-window table functions `stream_range` and `stream_rows`.
//!
//! ```sql
//! stream_range('stream', INTERVAL '1' MINUTE)   -- KDA: stream OVER (RANGE INTERVAL '1' MINUTE PRECEDING)
//! stream_rows('stream', 10)                     -- KDA: stream OVER (ROWS 10 PRECEDING)
//! ```
//!
//! Each returns a [`JoinWindowTable`]: the stream's columns, unchanged, plus the window the
//! join keeps on that side. The analyzer rule in [`super::logical`] reads the window and puts
//! the plain stream back in its place. Anywhere other than directly under a join (through
//! aliases, `WHERE` and projections) the table cannot be scanned.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use super::JoinWindow;
use crate::scan::StreamTable;
use crate::time::interval_to_millis;

/// A stream with a join window: the output of `stream_range` / `stream_rows`.
#[derive(Debug, Clone)]
pub struct JoinWindowTable {
    /// The stream.
    pub stream: StreamTable,
    /// The window the join keeps on this stream's side.
    pub window: JoinWindow,
}

impl JoinWindowTable {
    /// The SQL call that made this table, for messages.
    pub fn describe(&self) -> String {
        match self.window {
            JoinWindow::Range(ms) => format!("stream_range('{}', {ms} ms)", self.stream.name()),
            JoinWindow::Rows(n) => format!("stream_rows('{}', {n})", self.stream.name()),
        }
    }
}

#[async_trait]
impl TableProvider for JoinWindowTable {
    fn schema(&self) -> SchemaRef {
        self.stream.schema()
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
            "{}: a join window is only valid as a join input, e.g. FROM {} AS a JOIN other AS b ON a.k = b.k (it may sit under aliases, WHERE and projections, nothing else)",
            self.describe(),
            self.describe()
        )
    }
}

/// `stream_range` or `stream_rows`.
#[derive(Debug, Clone, Copy)]
pub struct JoinWindowFunction {
    name: &'static str,
}

impl JoinWindowFunction {
    /// `stream_range('stream', INTERVAL ...)`: RANGE n PRECEDING.
    pub const RANGE: Self = Self {
        name: "stream_range",
    };
    /// `stream_rows('stream', n)`: ROWS n PRECEDING.
    pub const ROWS: Self = Self {
        name: "stream_rows",
    };

    /// The SQL name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn usage(&self) -> &'static str {
        match self.name {
            "stream_range" => "stream_range('stream', INTERVAL '1' MINUTE)",
            _ => "stream_rows('stream', 10)",
        }
    }
}

/// Registers `stream_range` and `stream_rows` on a context.
pub fn register_join_functions(ctx: &SessionContext) {
    for f in [JoinWindowFunction::RANGE, JoinWindowFunction::ROWS] {
        ctx.register_udtf(f.name(), Arc::new(f));
    }
}

impl TableFunctionImpl for JoinWindowFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let fname = self.name;
        let exprs = args.exprs();
        if exprs.len() != 2 {
            return plan_err!(
                "{fname} takes 2 arguments, the stream name and the window: {}; got {}",
                self.usage(),
                exprs.len()
            );
        }
        let table = match &exprs[0] {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _)
            | Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _)
            | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => s.clone(),
            other => {
                return plan_err!(
                    "{fname}: argument 1 must be a stream name in quotes as in {}, got {other}",
                    self.usage()
                )
            }
        };
        let window = match (fname, &exprs[1]) {
            ("stream_range", Expr::Literal(v, _))
                if matches!(v.data_type(), DataType::Interval(_) | DataType::Duration(_)) =>
            {
                let ms = interval_to_millis(v, &format!("{fname}: the window"))?;
                if ms < 0 {
                    return plan_err!("{fname}: the window must not be negative, got {ms} ms");
                }
                JoinWindow::Range(ms)
            }
            ("stream_rows", Expr::Literal(v, _)) if v.data_type().is_integer() && !v.is_null() => {
                let n = match v.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(n)) => n,
                    other => return plan_err!("{fname}: bad row count {other}"),
                };
                if n < 0 {
                    return plan_err!("{fname}: the row count must not be negative, got {n}");
                }
                JoinWindow::Rows(n as u64)
            }
            (_, other) => {
                return plan_err!(
                    "{fname}: argument 2 must be {} as in {}, got {other}",
                    if fname == "stream_range" {
                        "an INTERVAL literal"
                    } else {
                        "a non-negative integer literal"
                    },
                    self.usage()
                )
            }
        };
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{fname}: join windows need a DataFusion SessionState");
        };
        let (_, provider) = crate::window::tvf::lookup_table(fname, state, &table, "stream")?;
        let Some(stream) = provider.downcast_ref::<StreamTable>() else {
            return plan_err!(
                "{fname}: '{table}' is a table, not a stream; a join window applies to a stream (CREATE STREAM), a table is joined without one"
            );
        };
        Ok(Arc::new(JoinWindowTable {
            stream: stream.clone(),
            window,
        }))
    }
}
