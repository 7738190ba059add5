//! Streaming functions: `MONOTONIC(expr)`.
//!
//! In KDA, `MONOTONIC(expr)` asserts that `expr` is non-decreasing over the stream so a
//! streaming `GROUP BY` may use it as its time-based key (SPEC §2.3); if the assertion is
//! false the behaviour is undefined. Here it is the identity function: the value, its type and
//! its nullability pass through unchanged, and DataFusion is told that it preserves ordering.
//! The front end looks for the call as a marker. It is deliberately *not* simplified away, so
//! the marker survives DataFusion's optimizer.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::util::lower_alias;

/// `MONOTONIC(expr)` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Monotonic {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for Monotonic {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
            aliases: lower_alias("MONOTONIC"),
        }
    }
}

impl ScalarUDFImpl for Monotonic {
    fn name(&self) -> &str {
        "MONOTONIC"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => plan_err!("MONOTONIC: expected 1 argument, got {}", arg_types.len()),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<Arc<Field>> {
        match args.arg_fields {
            [f] => Ok(Arc::new(Field::new(
                "MONOTONIC",
                f.data_type().clone(),
                f.is_nullable(),
            ))),
            other => plan_err!("MONOTONIC: expected 1 argument, got {}", other.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match <[ColumnarValue; 1]>::try_from(args.args) {
            Ok([value]) => Ok(value),
            Err(args) => exec_err!("MONOTONIC: expected 1 argument, got {}", args.len()),
        }
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        Ok(inputs
            .first()
            .map(|p| p.sort_properties)
            .unwrap_or(SortProperties::Unordered))
    }

    fn preserves_lex_ordering(&self, _inputs: &[ExprProperties]) -> Result<bool> {
        Ok(true)
    }
}

/// `MONOTONIC`.
pub fn monotonic() -> ScalarUDF {
    ScalarUDF::new_from_impl(Monotonic::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use datafusion::arrow::array::{Array, Int32Array};
    use datafusion::common::ScalarValue;

    #[test]
    fn identity_on_scalars_and_arrays() {
        assert_eq!(
            invoke_scalar(&monotonic(), vec![scalar(ScalarValue::Int64(Some(7)))]),
            ScalarValue::Int64(Some(7))
        );
        let col = Arc::new(Int32Array::from(vec![Some(1), None]));
        let out = invoke(&monotonic(), vec![ColumnarValue::Array(col)], 2)
            .unwrap()
            .to_array(2)
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.is_null(1));
    }

    #[test]
    fn keeps_type_and_nullability() {
        let f = Arc::new(Field::new("x", DataType::Utf8, false));
        let out = monotonic()
            .return_field_from_args(ReturnFieldArgs {
                arg_fields: &[f],
                scalar_arguments: &[None],
            })
            .unwrap();
        assert_eq!(out.data_type(), &DataType::Utf8);
        assert!(!out.is_nullable());
    }
}
