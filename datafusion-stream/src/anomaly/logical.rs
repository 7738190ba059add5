//! The `AnomalyDetect` logical node: a stream's rows plus the columns an [`AnomalyFunction`]
//! adds.
//!
//! ```text
//!  SubqueryAlias: random_cut_forest()          (the table function's provider, inlined)
//!    AnomalyDetect: RANDOM_CUT_FOREST(trees=100, ...), columns=[heartRate]
//!      <the stream's scan | a view's plan | a KDA cursor's plan>
//! ```
//!
//! The node is created by the table functions ([`super::tvf`]); it checks the input's columns
//! (some numeric, at most 30 for RCF, no DECIMAL) when it is built, and keeps all of its input's
//! columns (no projection is pushed below it: the model reads every numeric column).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{plan_err, DFSchema, DFSchemaRef, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::AnomalyFunction;
use crate::scan::is_rowtime;

/// Whether the model reads a column of this type.
pub fn is_model_numeric(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float64
            | DataType::Float32
            | DataType::Float16
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// Indexes and names of the columns of `schema` the model reads; errors name the function.
pub fn model_columns(
    function: &AnomalyFunction,
    fields: &[&Field],
) -> Result<(Vec<usize>, Vec<String>)> {
    let max = function.max_dimensions();
    let function = function.name();
    let mut idx = Vec::new();
    let mut names = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if matches!(
            f.data_type(),
            DataType::Decimal32(_, _)
                | DataType::Decimal64(_, _)
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
        ) {
            return plan_err!(
                "{function}: column \"{}\" is {}; DECIMAL columns are not supported (use DOUBLE, REAL, BIGINT, INTEGER, SMALLINT or TINYINT), or leave it out of the CURSOR's select list",
                f.name(),
                f.data_type()
            );
        }
        if is_model_numeric(f.data_type()) && !is_rowtime(f) {
            idx.push(i);
            names.push(f.name().clone());
        }
    }
    if idx.is_empty() {
        let cols: Vec<String> = fields
            .iter()
            .map(|f| format!("\"{}\" {}", f.name(), f.data_type()))
            .collect();
        return plan_err!(
            "{function}: the input has no numeric column to score (DOUBLE, REAL, BIGINT, INTEGER, SMALLINT, TINYINT); its columns are {}",
            cols.join(", ")
        );
    }
    if idx.len() > max {
        return plan_err!(
            "{function}: the input has {} numeric columns; at most {max} are allowed (select fewer columns in the CURSOR / view)",
            idx.len()
        );
    }
    Ok((idx, names))
}

/// Anomaly scoring of a stream (logical).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnomalyDetect {
    /// The stream.
    pub input: LogicalPlan,
    /// What is computed.
    pub function: AnomalyFunction,
    /// Names of the input columns the model reads, in order.
    pub columns: Vec<String>,
    schema: DFSchemaRef,
}

impl AnomalyDetect {
    /// Checks the input's columns and builds the output schema (input + the function's columns).
    pub fn try_new(input: LogicalPlan, function: AnomalyFunction) -> Result<Self> {
        let in_schema = input.schema();
        let fields: Vec<&Field> = in_schema.fields().iter().map(|f| f.as_ref()).collect();
        let (_, columns) = model_columns(&function, &fields)?;
        let mut qualified: Vec<_> = in_schema
            .iter()
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        for f in function.output_fields() {
            if in_schema.fields().iter().any(|x| x.name() == f.name()) {
                return plan_err!(
                    "{}: the input already has a column named {}, which the function adds",
                    function.name(),
                    f.name()
                );
            }
            qualified.push((None, f));
        }
        let schema = DFSchema::new_with_metadata(qualified, in_schema.metadata().clone())?;
        Ok(Self {
            input,
            function,
            columns,
            schema: Arc::new(schema),
        })
    }
}

impl PartialOrd for AnomalyDetect {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.function.partial_cmp(&other.function) {
            Some(std::cmp::Ordering::Equal) => self.input.partial_cmp(&other.input),
            o => o,
        }
        .filter(|o| *o != std::cmp::Ordering::Equal || self == other)
    }
}

impl UserDefinedLogicalNodeCore for AnomalyDetect {
    fn name(&self) -> &str {
        "AnomalyDetect"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "AnomalyDetect: {}, columns=[{}]",
            self.function,
            self.columns.join(", ")
        )
    }

    /// Every input column: the model reads all numeric ones, and the rest pass through.
    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![(0..self.input.schema().fields().len()).collect()])
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("AnomalyDetect needs one input");
        };
        Self::try_new(input, self.function.clone())
    }
}
