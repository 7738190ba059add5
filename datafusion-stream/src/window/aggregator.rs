//! Vectorised grouped aggregation for one window: DataFusion's own [`GroupValues`] (key →
//! group index) and [`GroupsAccumulator`]s (one per aggregate), so every built-in aggregate and
//! every UDAF works, with the same speed as `AggregateExec`.
//!
//! ```text
//!  AggInput { keys, args, filters } ──intern(keys)──► group ids ──update_batch──► accumulators
//!                                                     finish(): emit keys + evaluate aggregates
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{aggregate_expressions, AggregateMode};

/// The aggregates of a window operator, planned once.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// The aggregate functions.
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// `FILTER (WHERE ...)` per aggregate.
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Argument expressions per aggregate (including ordering columns of order-sensitive ones).
    pub arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// Schema of the group key columns.
    pub key_schema: SchemaRef,
}

impl AggregateSpec {
    /// Plans the argument expressions of `aggregates`.
    pub fn try_new(
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
        key_schema: SchemaRef,
    ) -> Result<Self> {
        let arguments = aggregate_expressions(&aggregates, &AggregateMode::Single, 0)?;
        Ok(Self {
            aggregates,
            filters,
            arguments,
            key_schema,
        })
    }

    /// Evaluates keys, arguments and filters on a batch.
    pub fn evaluate(&self, keys: Vec<ArrayRef>, batch: &RecordBatch) -> Result<AggInput> {
        let n = batch.num_rows();
        let args = self
            .arguments
            .iter()
            .map(|exprs| {
                exprs
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let filters = self
            .filters
            .iter()
            .map(|f| match f {
                None => Ok(None),
                Some(f) => {
                    let a = f.evaluate(batch)?.into_array(n)?;
                    Ok(Some(
                        datafusion::common::cast::as_boolean_array(&a)?.clone(),
                    ))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AggInput {
            num_rows: n,
            keys,
            args,
            filters,
        })
    }
}

/// The evaluated inputs of some rows: group keys, aggregate arguments and filters.
#[derive(Debug, Clone)]
pub struct AggInput {
    /// Number of rows.
    pub num_rows: usize,
    /// Group key columns.
    pub keys: Vec<ArrayRef>,
    /// Argument columns per aggregate.
    pub args: Vec<Vec<ArrayRef>>,
    /// Filter per aggregate.
    pub filters: Vec<Option<BooleanArray>>,
}

impl AggInput {
    /// The rows at `indices`.
    pub fn take(&self, indices: &UInt32Array) -> Result<AggInput> {
        let t = |a: &ArrayRef| take(a.as_ref(), indices, None);
        Ok(AggInput {
            num_rows: indices.len(),
            keys: self.keys.iter().map(t).collect::<Result<_, _>>()?,
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<Result<Vec<_>, _>>())
                .collect::<Result<_, _>>()?,
            filters: self
                .filters
                .iter()
                .map(|f| match f {
                    None => Ok(None),
                    Some(f) => {
                        let a = take(f, indices, None)?;
                        Ok(Some(
                            datafusion::common::cast::as_boolean_array(&a)?.clone(),
                        ))
                    }
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// Grouped aggregation state of one window.
pub struct GroupedAggregator {
    group_values: Option<Box<dyn GroupValues>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    groups: Vec<usize>,
    num_groups: usize,
}

impl std::fmt::Debug for GroupedAggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedAggregator")
            .field("num_groups", &self.num_groups)
            .finish()
    }
}

fn accumulator(agg: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if agg.groups_accumulator_supported() {
        agg.create_groups_accumulator()
    } else {
        let agg = Arc::clone(agg);
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
            agg.create_accumulator()
        })))
    }
}

impl GroupedAggregator {
    /// Empty state for `spec`.
    pub fn try_new(spec: &AggregateSpec) -> Result<Self> {
        let group_values = if spec.key_schema.fields().is_empty() {
            None
        } else {
            Some(new_group_values(
                Arc::clone(&spec.key_schema),
                &GroupOrdering::None,
            )?)
        };
        Ok(Self {
            group_values,
            accumulators: spec
                .aggregates
                .iter()
                .map(accumulator)
                .collect::<Result<_>>()?,
            groups: Vec::new(),
            num_groups: 0,
        })
    }

    /// Adds rows.
    pub fn update(&mut self, input: &AggInput) -> Result<()> {
        if input.num_rows == 0 {
            return Ok(());
        }
        match &mut self.group_values {
            Some(gv) => {
                gv.intern(&input.keys, &mut self.groups)?;
                self.num_groups = gv.len();
            }
            None => {
                self.groups.clear();
                self.groups.resize(input.num_rows, 0);
                self.num_groups = 1;
            }
        }
        for (i, acc) in self.accumulators.iter_mut().enumerate() {
            acc.update_batch(
                &input.args[i],
                &self.groups,
                input.filters[i].as_ref(),
                self.num_groups,
            )?;
        }
        Ok(())
    }

    /// Bytes of memory held.
    pub fn size(&self) -> usize {
        self.group_values.as_ref().map(|g| g.size()).unwrap_or(0)
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.groups.capacity() * std::mem::size_of::<usize>()
    }

    /// Number of groups.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Emits every group: (key columns, aggregate columns).
    pub fn finish(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match &mut self.group_values {
            Some(gv) => gv.emit(EmitTo::All)?,
            None => vec![],
        };
        let aggs = self
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, aggs))
    }

    /// The state as Arrow columns (keys, then each aggregate's intermediate state), the form a
    /// checkpoint would store; consumes the state like [`Self::finish`].
    pub fn into_state(mut self) -> Result<Vec<ArrayRef>> {
        let mut cols = match &mut self.group_values {
            Some(gv) => gv.emit(EmitTo::All)?,
            None => vec![],
        };
        for a in self.accumulators.iter_mut() {
            cols.extend(a.state(EmitTo::All)?);
        }
        Ok(cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_aggregate::sum::sum_udaf;
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::col;

    fn spec() -> (AggregateSpec, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(8.0),
                ])),
            ],
        )
        .unwrap();
        let v = col("v", &schema).unwrap();
        let sum = AggregateExprBuilder::new(sum_udaf(), vec![v.clone()])
            .schema(schema.clone())
            .alias("s")
            .build()
            .unwrap();
        let count = AggregateExprBuilder::new(count_udaf(), vec![v])
            .schema(schema.clone())
            .alias("c")
            .build()
            .unwrap();
        let keys = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let spec =
            AggregateSpec::try_new(vec![Arc::new(sum), Arc::new(count)], vec![None, None], keys)
                .unwrap();
        (spec, batch)
    }

    #[test]
    fn groups_null_keys_and_skips_null_values() {
        let (spec, batch) = spec();
        let mut agg = GroupedAggregator::try_new(&spec).unwrap();
        let input = spec
            .evaluate(vec![batch.column(0).clone()], &batch)
            .unwrap();
        agg.update(&input).unwrap();
        agg.update(&input.take(&UInt32Array::from(vec![1])).unwrap())
            .unwrap();
        assert_eq!(agg.num_groups(), 3);
        assert!(agg.size() > 0);
        let (keys, aggs) = agg.finish().unwrap();
        let k = keys[0].as_string::<i32>();
        let s = aggs[0].as_primitive::<Float64Type>();
        let c = aggs[1].as_primitive::<Int64Type>();
        let mut rows: Vec<(Option<String>, Option<f64>, i64)> = (0..k.len())
            .map(|i| {
                (
                    (!k.is_null(i)).then(|| k.value(i).to_string()),
                    (!s.is_null(i)).then(|| s.value(i)),
                    c.value(i),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            rows,
            vec![
                (None, Some(8.0), 1),
                (Some("a".into()), Some(1.0), 1),
                (Some("b".into()), Some(4.0), 2),
            ]
        );
    }

    #[test]
    fn state_is_arrow_columns_for_checkpoints() {
        let (spec, batch) = spec();
        let mut agg = GroupedAggregator::try_new(&spec).unwrap();
        let input = spec
            .evaluate(vec![batch.column(0).clone()], &batch)
            .unwrap();
        agg.update(&input).unwrap();
        let state = agg.into_state().unwrap();
        // keys, then SUM's state (sum) and COUNT's state (count), one row per group
        assert_eq!(state.len(), 3);
        assert!(state.iter().all(|c| c.len() == 3));
    }
}
