//! Helpers for unit tests: invoking a UDF directly on `ColumnarValue`s.

use std::sync::Arc;

use datafusion::arrow::datatypes::Field;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF};

use crate::simple_date_format::SimpleDateFormat;

/// Invokes `udf` on already-coerced arguments, as DataFusion's physical expression would.
pub(crate) fn invoke(
    udf: &ScalarUDF,
    args: Vec<ColumnarValue>,
    rows: usize,
) -> Result<ColumnarValue> {
    let arg_fields: Vec<Arc<Field>> = args
        .iter()
        .enumerate()
        .map(|(i, a)| Arc::new(Field::new(format!("a{i}"), a.data_type(), true)))
        .collect();
    let scalars: Vec<Option<&ScalarValue>> = args
        .iter()
        .map(|a| match a {
            ColumnarValue::Scalar(s) => Some(s),
            ColumnarValue::Array(_) => None,
        })
        .collect();
    let return_field = udf.return_field_from_args(ReturnFieldArgs {
        arg_fields: &arg_fields,
        scalar_arguments: &scalars,
    })?;
    udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: rows,
        return_field,
        config_options: Arc::new(ConfigOptions::default()),
    })
}

/// Invokes `udf` on scalar arguments and returns the scalar result (panics on error).
pub(crate) fn invoke_scalar(udf: &ScalarUDF, args: Vec<ColumnarValue>) -> ScalarValue {
    match invoke(udf, args, 1) {
        Ok(ColumnarValue::Scalar(s)) => s,
        Ok(ColumnarValue::Array(a)) => {
            assert_eq!(a.len(), 1, "expected one row");
            ScalarValue::try_from_array(&a, 0).expect("scalar from array")
        }
        Err(e) => panic!("{} failed: {e}", udf.name()),
    }
}

/// Wraps a scalar argument.
pub(crate) fn scalar(v: ScalarValue) -> ColumnarValue {
    ColumnarValue::Scalar(v)
}

/// Epoch milliseconds of `yyyy-MM-dd HH:mm:ss[.SSS]` (UTC).
pub(crate) fn ts_ms(text: &str) -> i64 {
    let pattern = if text.contains('.') {
        "yyyy-MM-dd HH:mm:ss.SSS"
    } else {
        "yyyy-MM-dd HH:mm:ss"
    };
    SimpleDateFormat::compile(pattern)
        .expect("pattern")
        .parse_millis(text)
        .expect("timestamp literal")
}
