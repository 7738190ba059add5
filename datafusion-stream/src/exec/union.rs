//! `StreamUnionExec`: `UNION ALL` of streams.
//!
//! ```text
//!  input 0: source partitions 0..a  (+ its filters/projections) ──┐ partitions 0..a
//!  input 1: source partitions 0..b  (+ its filters/projections) ──┼ partitions a..a+b   ──► consumer
//!  ...                                                             ┘ (rows + progress each)
//! ```
//!
//! No state: each output partition is one partition of one input, rows and progress in
//! order. Consumers combine partitions by progress as for any stream (the minimum over
//! partitions), so the union's ROWTIME progress is what every input guarantees — KDA's "merged
//! in ROWTIME order". DataFusion's `UnionExec` over streaming inputs is replaced by this
//! operator when a streaming consumer extracts its input ([`super::pipeline::Pipeline::extract`]).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use super::messages::{batches_only, MessageExec, MessageInput, MessageStream};
use crate::scan::StreamMessage;

/// `UNION ALL` of streaming inputs.
#[derive(Debug)]
pub struct StreamUnionExec {
    inputs: Vec<MessageInput>,
    sources: Vec<Arc<dyn ExecutionPlan>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl StreamUnionExec {
    /// A union of `inputs` with output `schema` (the union's).
    pub fn try_new(inputs: Vec<MessageInput>, schema: SchemaRef) -> Result<Self> {
        if inputs.is_empty() {
            return internal_err!("StreamUnionExec needs at least one input");
        }
        let partitions: usize = inputs.iter().map(|i| i.partition_count()).sum();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Unbounded {
                requires_infinite_memory: false,
            },
        );
        Ok(Self {
            sources: inputs.iter().map(|i| Arc::clone(&i.source)).collect(),
            inputs,
            schema,
            properties: Arc::new(properties),
        })
    }

    /// The input and its partition behind output partition `partition`.
    fn locate(&self, mut partition: usize) -> Option<(&MessageInput, usize)> {
        for i in &self.inputs {
            let n = i.partition_count();
            if partition < n {
                return Some((i, partition));
            }
            partition -= n;
        }
        None
    }
}

impl DisplayAs for StreamUnionExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let parts: Vec<String> = self
            .inputs
            .iter()
            .map(|i| {
                if i.pipeline.is_empty() {
                    i.source.name().to_string()
                } else {
                    format!("{} {}", i.source.name(), i.pipeline)
                }
            })
            .collect();
        write!(f, "StreamUnionExec: inputs=[{}]", parts.join(", "))
    }
}

impl ExecutionPlan for StreamUnionExec {
    fn name(&self) -> &str {
        "StreamUnionExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.sources.iter().collect()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
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
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != self.inputs.len() {
            return internal_err!(
                "StreamUnionExec has {} children, got {}",
                self.inputs.len(),
                children.len()
            );
        }
        let inputs = self
            .inputs
            .iter()
            .zip(children)
            .map(|(i, c)| MessageInput {
                source: c,
                pipeline: i.pipeline.clone(),
            })
            .collect();
        Ok(Arc::new(Self::try_new(inputs, Arc::clone(&self.schema))?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(batches_only(
            self.execute_messages(partition, &context)?,
            Arc::clone(&self.schema),
        ))
    }
}

impl MessageExec for StreamUnionExec {
    fn execute_messages(
        &self,
        partition: usize,
        context: &Arc<TaskContext>,
    ) -> Result<MessageStream> {
        let Some((input, local)) = self.locate(partition) else {
            return internal_err!("StreamUnionExec has no partition {partition}");
        };
        let stream = input.open_partition(local, context)?;
        let schema = Arc::clone(&self.schema);
        // Each input's rows take the union's schema (same types; names may differ).
        Ok(stream
            .map(move |m| match m {
                Ok(StreamMessage::Batch(b)) => {
                    RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec())
                        .map(StreamMessage::Batch)
                        .map_err(Into::into)
                }
                other => other,
            })
            .boxed())
    }
}
