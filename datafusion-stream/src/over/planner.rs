//! Physical planning of [`StreamOver`] into [`StreamOverExec`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, NullTreatment};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, WindowFunctionDefinition,
};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::StreamOverExec;
use super::logical::{window_function, StreamOver};
use super::state::{OverExpr, OverFunction, OverGroup};
use crate::exec::pipeline::Pipeline;

/// Plans [`StreamOver`] nodes.
#[derive(Debug, Default)]
pub struct OverExtensionPlanner;

/// The integer value of a constant argument such as LAG's offset.
fn constant_int(e: &Expr, what: &str) -> Result<i64> {
    let v = match e {
        Expr::Literal(v, _) => v,
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => v,
            _ => {
                return plan_err!(
                    "sliding window (OVER): {what} must be a constant integer, got {e}"
                )
            }
        },
        _ => return plan_err!("sliding window (OVER): {what} must be a constant integer, got {e}"),
    };
    match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) => Ok(n),
        _ => plan_err!("sliding window (OVER): {what} must be a constant integer, got {v}"),
    }
}

#[async_trait]
impl ExtensionPlanner for OverExtensionPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<StreamOver>() else {
            return Ok(None);
        };
        let (Some(input), Some(logical)) = (physical_inputs.first(), logical_inputs.first()) else {
            return internal_err!("StreamOver without input");
        };
        let (source, pipeline) = Pipeline::extract(input, "sliding window (OVER)")?;
        let dfschema = logical.schema();
        let physical_schema = input.schema();
        let phys = |e: &Expr| planner.create_physical_expr(e, dfschema, session, planning_ctx);
        let time = node.time.as_ref().map(phys).transpose()?;
        let input_len = dfschema.fields().len();
        let mut groups: Vec<(Vec<Expr>, OverGroup)> = Vec::new();
        for (i, (e, frame)) in node.window_exprs.iter().zip(&node.frames).enumerate() {
            let Some((wf, _)) = window_function(e) else {
                return internal_err!("StreamOver: {e} is not a window function");
            };
            let field = Arc::clone(&node.schema.fields()[input_len + i]);
            let p = &wf.params;
            let ignore_nulls = p.null_treatment == Some(NullTreatment::IgnoreNulls);
            let fname = wf.fun.name().to_ascii_lowercase();
            let (function, args) = match &wf.fun {
                WindowFunctionDefinition::AggregateUDF(udaf) => {
                    let agg = Expr::AggregateFunction(AggregateFunction::new_udf(
                        Arc::clone(udaf),
                        p.args.clone(),
                        false,
                        None,
                        vec![],
                        p.null_treatment,
                    ));
                    let lowered = LoweredAggregateBuilder::new(
                        &agg,
                        dfschema,
                        &physical_schema,
                        session.execution_props(),
                        planning_ctx,
                    )
                    .with_name(field.name())
                    .build()?;
                    let args = lowered.aggregate.expressions();
                    (OverFunction::Aggregate(lowered.aggregate), args)
                }
                WindowFunctionDefinition::WindowUDF(_) => {
                    let value = || match p.args.first() {
                        Some(v) => Ok(vec![phys(v)?]),
                        None => plan_err!("sliding window (OVER): {fname} needs an argument"),
                    };
                    match fname.as_str() {
                        "lag" => {
                            let offset = match p.args.get(1) {
                                Some(o) => constant_int(o, "the offset of LAG")?,
                                None => 1,
                            };
                            if offset < 0 {
                                return plan_err!(
                                    "sliding window (OVER): LAG with a negative offset ({offset}) reads rows that have not arrived yet"
                                );
                            }
                            let default = p.args.get(2).map(phys).transpose()?;
                            (
                                OverFunction::Lag {
                                    offset: offset as usize,
                                    default,
                                    ignore_nulls,
                                },
                                value()?,
                            )
                        }
                        "nth_value" => {
                            let n = match p.args.get(1) {
                                Some(n) => constant_int(n, "the position of NTH_VALUE")?,
                                None => {
                                    return plan_err!(
                                        "sliding window (OVER): NTH_VALUE(value, n) needs n"
                                    )
                                }
                            };
                            if n == 0 {
                                return plan_err!(
                                    "sliding window (OVER): NTH_VALUE position must not be 0 (1 is the first row of the window, -1 the last)"
                                );
                            }
                            (OverFunction::NthValue { n, ignore_nulls }, value()?)
                        }
                        "first_value" => (OverFunction::NthValue { n: 1, ignore_nulls }, value()?),
                        "last_value" => (OverFunction::NthValue { n: -1, ignore_nulls }, value()?),
                        "row_number" => (OverFunction::RowNumber, vec![]),
                        other => {
                            return plan_err!(
                                "sliding window (OVER): window function {other} is not supported over a stream"
                            )
                        }
                    }
                }
            };
            let expr = OverExpr {
                name: field.name().to_string(),
                function,
                args,
                frame: *frame,
                field,
                output: i,
            };
            match groups.iter_mut().find(|(k, _)| *k == p.partition_by) {
                Some((_, g)) => g.exprs.push(expr),
                None => {
                    let partition_by = p
                        .partition_by
                        .iter()
                        .map(phys)
                        .collect::<Result<Vec<_>>>()?;
                    groups.push((
                        p.partition_by.clone(),
                        OverGroup {
                            partition_by,
                            exprs: vec![expr],
                        },
                    ));
                }
            }
        }
        let schema = Arc::new(node.schema.as_arrow().clone());
        Ok(Some(Arc::new(StreamOverExec::try_new(
            source,
            pipeline,
            time,
            groups.into_iter().map(|(_, g)| g).collect(),
            schema,
        )?)))
    }
}
