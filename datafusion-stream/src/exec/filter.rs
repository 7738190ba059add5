//! `StreamFilterExec`: a filter that emits every batch as soon as it is filtered.
//!
//! ```text
//!  input batch ──► predicate ──► non-empty result ──► out     (no state, no buffering)
//! ```
//!
//! DataFusion 55's `FilterExec` coalesces its output up to `batch_size` rows, so on a slow
//! stream a matching row could wait indefinitely. [`IncrementalFilterRule`] replaces every
//! `FilterExec` over an unbounded input with this operator.

use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

use super::pipeline::{Pipeline, Stage};

/// A filter that never buffers.
#[derive(Debug)]
pub struct StreamFilterExec {
    input: Arc<dyn ExecutionPlan>,
    predicate: Arc<dyn PhysicalExpr>,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl StreamFilterExec {
    /// Takes over a `FilterExec`'s predicate, projection and properties.
    pub fn from_filter(f: &FilterExec) -> Self {
        Self {
            input: Arc::clone(f.input()),
            predicate: Arc::clone(f.predicate()),
            projection: f.projection().as_ref().map(|p| p.to_vec()),
            properties: Arc::clone(f.properties()),
        }
    }
}

impl StreamFilterExec {
    /// The filtered input.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The predicate.
    pub fn predicate(&self) -> &Arc<dyn PhysicalExpr> {
        &self.predicate
    }

    /// Columns kept after filtering.
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }
}

impl DisplayAs for StreamFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StreamFilterExec: {}", self.predicate)?;
        if let Some(p) = &self.projection {
            let schema = self.input.schema();
            let cols: Vec<String> = p
                .iter()
                .map(|i| format!("{}@{i}", schema.field(*i).name()))
                .collect();
            write!(f, ", projection=[{}]", cols.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StreamFilterExec {
    fn name(&self) -> &str {
        "StreamFilterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.predicate)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("StreamFilterExec takes one child");
        }
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            predicate: Arc::clone(&self.predicate),
            projection: self.projection.clone(),
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let pipeline = Pipeline::from_stages(vec![Stage::Filter {
            predicate: Arc::clone(&self.predicate),
            projection: self.projection.clone(),
        }]);
        let input = self.input.execute(partition, context)?;
        let out = input.filter_map(move |b| {
            let r = b.and_then(|b| pipeline.apply(b)).transpose();
            async move { r }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), out)))
    }
}

/// Replaces `FilterExec` over unbounded inputs with [`StreamFilterExec`].
#[derive(Debug, Default)]
pub struct IncrementalFilterRule;

impl PhysicalOptimizerRule for IncrementalFilterRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|p| {
            if let Some(f) = p.downcast_ref::<FilterExec>() {
                if f.input().boundedness().is_unbounded() {
                    return Ok(Transformed::yes(
                        Arc::new(StreamFilterExec::from_filter(f)) as Arc<dyn ExecutionPlan>
                    ));
                }
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "incremental_filter"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
