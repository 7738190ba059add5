//! Physical planning of [`AnomalyDetect`] into [`AnomalyExec`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{internal_err, Result};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::AnomalyExec;
use super::logical::AnomalyDetect;
use crate::exec::messages::MessageInput;

/// Plans [`AnomalyDetect`] nodes.
#[derive(Debug, Default)]
pub struct AnomalyPlanner;

#[async_trait]
impl ExtensionPlanner for AnomalyPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<AnomalyDetect>() else {
            return Ok(None);
        };
        let Some(input) = physical_inputs.first() else {
            return internal_err!("AnomalyDetect without input");
        };
        let MessageInput { source, pipeline } = MessageInput::extract(input, node.function.name())?;
        Ok(Some(Arc::new(AnomalyExec::try_new(
            source,
            pipeline,
            input.schema(),
            node.function.clone(),
        )?)))
    }
}
