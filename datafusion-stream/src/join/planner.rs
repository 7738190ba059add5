//! Physical planning of [`StreamJoin`] into [`StreamJoinExec`] and of [`StreamLookupJoin`] into
//! [`StreamLookupJoinExec`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{internal_err, DFSchema, Result};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::{JoinInput, StreamJoinExec};
use super::logical::{Side, StreamJoin, StreamLookupJoin};
use super::lookup::StreamLookupJoinExec;
use crate::exec::messages::MessageInput;

/// Plans the join extension nodes.
#[derive(Debug, Default)]
pub struct JoinPlanner;

struct Ctx<'a> {
    planner: &'a dyn PhysicalPlanner,
    session: &'a dyn Session,
    planning_ctx: &'a PhysicalPlanningContext,
}

impl Ctx<'_> {
    fn exprs(&self, exprs: &[&Expr], schema: &DFSchema) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        exprs
            .iter()
            .map(|e| {
                self.planner
                    .create_physical_expr(e, schema, self.session, self.planning_ctx)
            })
            .collect()
    }

    fn expr(&self, e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        self.planner
            .create_physical_expr(e, schema, self.session, self.planning_ctx)
    }
}

fn arrow_schema(s: &DFSchema) -> SchemaRef {
    Arc::new(s.as_arrow().clone())
}

#[async_trait]
impl ExtensionPlanner for JoinPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let ctx = Ctx {
            planner,
            session,
            planning_ctx,
        };
        let ([left_logical, right_logical], [left_physical, right_physical]) =
            (logical_inputs, physical_inputs)
        else {
            if node.as_any().is::<StreamJoin>() || node.as_any().is::<StreamLookupJoin>() {
                return internal_err!("{} needs two inputs", node.name());
            }
            return Ok(None);
        };
        let (ls, rs) = (left_logical.schema(), right_logical.schema());
        if let Some(join) = node.as_any().downcast_ref::<StreamJoin>() {
            let left_keys: Vec<&Expr> = join.on.iter().map(|(l, _)| l).collect();
            let right_keys: Vec<&Expr> = join.on.iter().map(|(_, r)| r).collect();
            let left = JoinInput {
                input: MessageInput::extract(left_physical, "stream join (left input)")?,
                keys: ctx.exprs(&left_keys, ls)?,
                rowtime: ctx.expr(&join.left_rowtime, ls)?,
                window: join.left_window,
                schema: arrow_schema(ls),
            };
            let right = JoinInput {
                input: MessageInput::extract(right_physical, "stream join (right input)")?,
                keys: ctx.exprs(&right_keys, rs)?,
                rowtime: ctx.expr(&join.right_rowtime, rs)?,
                window: join.right_window,
                schema: arrow_schema(rs),
            };
            let filter = match &join.filter {
                Some(f) => Some(ctx.expr(f, &join.schema)?),
                None => None,
            };
            return Ok(Some(Arc::new(StreamJoinExec::try_new(
                left,
                right,
                join.join_type,
                join.null_equality,
                filter,
                arrow_schema(&join.schema),
            )?)));
        }
        if let Some(join) = node.as_any().downcast_ref::<StreamLookupJoin>() {
            let left_keys: Vec<&Expr> = join.on.iter().map(|(l, _)| l).collect();
            let right_keys: Vec<&Expr> = join.on.iter().map(|(_, r)| r).collect();
            let left_keys = ctx.exprs(&left_keys, ls)?;
            let right_keys = ctx.exprs(&right_keys, rs)?;
            let filter = match &join.filter {
                Some(f) => Some(ctx.expr(f, &join.schema)?),
                None => None,
            };
            let (stream_plan, table, stream_keys, table_keys, stream_schema) =
                match join.stream_side {
                    Side::Left => (left_physical, right_physical, left_keys, right_keys, ls),
                    Side::Right => (right_physical, left_physical, right_keys, left_keys, rs),
                };
            let stream = MessageInput::extract(stream_plan, "stream-table join (stream input)")?;
            return Ok(Some(Arc::new(StreamLookupJoinExec::try_new(
                stream,
                Arc::clone(table),
                join.stream_side,
                stream_keys,
                table_keys,
                filter,
                join.join_type,
                join.null_equality,
                arrow_schema(stream_schema),
                arrow_schema(&join.schema),
            )?)));
        }
        Ok(None)
    }
}
