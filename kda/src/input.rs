//! Input helpers: give a source the column names a KDA application expects.
//!
//! ```text
//!  source (e.g. the demo ticker: ticker_symbol, price, ...) ──► RenamedSource ──► TICKER_SYMBOL, PRICE, ...
//!        same partitions, rows, ROWTIME and progress; only the schema's names change
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{plan_err, Result};
use datafusion_stream::source::{RowtimeMode, SourceContext, SourceEvent, StreamSource};
use futures::stream::BoxStream;
use futures::StreamExt;

/// A source whose columns are renamed (types unchanged).
#[derive(Debug)]
pub struct RenamedSource {
    inner: Arc<dyn StreamSource>,
    schema: SchemaRef,
}

impl RenamedSource {
    /// Renames the columns of `inner` to `names` (same count and order).
    pub fn try_new(inner: Arc<dyn StreamSource>, names: &[String]) -> Result<Self> {
        let s = inner.schema();
        if s.fields().len() != names.len() {
            return plan_err!(
                "cannot rename {} columns to {} names",
                s.fields().len(),
                names.len()
            );
        }
        let fields: Vec<Field> = s
            .fields()
            .iter()
            .zip(names)
            .map(|(f, n)| f.as_ref().clone().with_name(n))
            .collect();
        Ok(Self {
            inner,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Upper-cases every column name (KDA folds unquoted names to upper case).
    pub fn upper_case(inner: Arc<dyn StreamSource>) -> Result<Self> {
        let names: Vec<String> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().to_ascii_uppercase())
            .collect();
        Self::try_new(inner, &names)
    }
}

impl StreamSource for RenamedSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn partition_count(&self) -> usize {
        self.inner.partition_count()
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        self.inner.rowtime_mode()
    }

    fn is_bounded(&self) -> bool {
        self.inner.is_bounded()
    }

    fn open(
        &self,
        partition: usize,
        ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        let schema = Arc::clone(&self.schema);
        let events = self.inner.open(partition, ctx)?;
        Ok(events
            .map(move |e| match e {
                Ok(SourceEvent::Data { batch, rowtime }) => {
                    let batch =
                        RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec())?;
                    Ok(SourceEvent::Data { batch, rowtime })
                }
                other => other,
            })
            .boxed())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
