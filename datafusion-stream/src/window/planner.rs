//! Physical planning of [`StreamWindowAggregate`] into [`StreamWindowAggExec`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::Session;
use datafusion::common::{internal_err, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use super::aggregator::AggregateSpec;
use super::exec::{OutputGroup, StreamWindowAggExec};
use super::logical::{GroupItem, StreamWindowAggregate};
use crate::exec::messages::MessageInput;

/// Plans streaming extension nodes.
#[derive(Debug, Default)]
pub struct StreamExtensionPlanner;

#[async_trait]
impl ExtensionPlanner for StreamExtensionPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<StreamWindowAggregate>() else {
            return Ok(None);
        };
        let (Some(input), Some(logical)) = (physical_inputs.first(), logical_inputs.first()) else {
            return internal_err!("StreamWindowAggregate without input");
        };
        let name = format!("{} window aggregate", node.kind.name());
        let MessageInput {
            source: scan,
            pipeline,
        } = MessageInput::extract(input, &name)?;
        let dfschema = logical.schema();
        let physical_schema = input.schema();
        let phys = |e| planner.create_physical_expr(e, dfschema, session, planning_ctx);
        let time = phys(&node.time)?;
        let partition_keys = node
            .partition_keys
            .iter()
            .map(phys)
            .collect::<Result<Vec<_>>>()?;
        let mut keys = Vec::new();
        let mut key_fields = Vec::new();
        let mut group = Vec::new();
        for (i, g) in node.group.iter().enumerate() {
            group.push(match g {
                GroupItem::WindowStart => OutputGroup::WindowStart,
                GroupItem::WindowEnd => OutputGroup::WindowEnd,
                GroupItem::Key(e) => {
                    keys.push(phys(e)?);
                    let f = node.schema.field(i);
                    key_fields.push(Field::new(f.name(), f.data_type().clone(), true));
                    OutputGroup::Key(keys.len() - 1)
                }
            });
        }
        let mut aggregates = Vec::new();
        let mut filters = Vec::new();
        for e in &node.aggr {
            let lowered = LoweredAggregateBuilder::new(
                e,
                dfschema,
                &physical_schema,
                session.execution_props(),
                planning_ctx,
            )
            .build()?;
            aggregates.push(lowered.aggregate);
            filters.push(lowered.filter);
        }
        let spec = AggregateSpec::try_new(aggregates, filters, Arc::new(Schema::new(key_fields)))?;
        let schema = Arc::new(node.schema.as_arrow().clone());
        Ok(Some(Arc::new(StreamWindowAggExec::try_new(
            scan,
            pipeline,
            node.kind,
            node.domain,
            time,
            partition_keys,
            keys,
            group,
            spec,
            schema,
        )?)))
    }
}

/// DataFusion's physical planner plus the streaming extension planner.
#[derive(Debug, Default)]
pub struct StreamQueryPlanner;

#[async_trait]
impl QueryPlanner for StreamQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(StreamExtensionPlanner),
            Arc::new(crate::over::planner::OverExtensionPlanner),
            Arc::new(crate::join::JoinPlanner),
            Arc::new(crate::sort::planner::SortPlanner),
            Arc::new(crate::anomaly::planner::AnomalyPlanner),
        ])
        .create_physical_plan(logical_plan, session_state)
        .await
    }
}
