//! Physical planning of [`StreamSort`] into [`StreamSortExec`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::compute::SortOptions;
use datafusion::catalog::Session;
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::StreamSortExec;
use super::logical::StreamSort;
use crate::exec::messages::MessageInput;

/// Plans [`StreamSort`] nodes.
#[derive(Debug, Default)]
pub struct SortPlanner;

#[async_trait]
impl ExtensionPlanner for SortPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<StreamSort>() else {
            return Ok(None);
        };
        let (Some(input), Some(logical)) = (physical_inputs.first(), logical_inputs.first()) else {
            return internal_err!("StreamSort without input");
        };
        let MessageInput { source, pipeline } =
            MessageInput::extract(input, "ORDER BY on a stream")?;
        let dfschema = logical.schema();
        let order = node
            .expr
            .iter()
            .map(|s| {
                Ok(PhysicalSortExpr {
                    expr: planner.create_physical_expr(&s.expr, dfschema, session, planning_ctx)?,
                    options: SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Arc::new(
            StreamSortExec::try_new(source, pipeline, order, node.key, input.schema())?
                .with_fetch_per_key(node.fetch),
        )))
    }
}
