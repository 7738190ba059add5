//! Per-context streaming settings, carried to operators as a DataFusion `SessionConfig`
//! extension (so stream tables work on any `SessionContext`, with defaults when absent).

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::TaskContext;

use crate::errors::{ErrorSink, FailOnError};
use crate::time::{StreamClock, SystemClock};

/// What a window operator does with a row that arrives after its window was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LateRowPolicy {
    /// Drop it and count it (metric `late_rows`, shown by `EXPLAIN ANALYZE` and the CLI status).
    #[default]
    Drop,
    /// Fail the query with an error naming the row's time and the watermark.
    Fail,
}

impl std::str::FromStr for LateRowPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "drop" => Ok(Self::Drop),
            "fail" => Ok(Self::Fail),
            other => Err(format!(
                "late-row policy must be 'drop' or 'fail', got '{other}'"
            )),
        }
    }
}

/// Streaming settings of a context.
#[derive(Debug, Clone)]
pub struct StreamRuntime {
    /// The clock that stamps ROWTIME and drives processing-time progress.
    pub clock: Arc<dyn StreamClock>,
    /// How often sources that stamp ROWTIME from a real clock report processing-time progress.
    pub tick_interval: Duration,
    /// Default idle timeout for stream partitions (`None`: a silent partition holds the
    /// watermark back until it speaks or ends).
    pub idle_timeout: Option<Duration>,
    /// What window operators do with late rows.
    pub late_rows: LateRowPolicy,
    /// Where rejected records and failed rows go (default: fail the query).
    pub errors: Arc<dyn ErrorSink>,
}

impl Default for StreamRuntime {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            tick_interval: Duration::from_millis(100),
            idle_timeout: Some(Duration::from_secs(5)),
            late_rows: LateRowPolicy::Drop,
            errors: Arc::new(FailOnError),
        }
    }
}

impl StreamRuntime {
    /// The runtime of the session a task runs in (defaults when the session has none).
    pub fn from_task(ctx: &TaskContext) -> Arc<StreamRuntime> {
        ctx.session_config()
            .get_extension::<StreamRuntime>()
            .unwrap_or_default()
    }
}
