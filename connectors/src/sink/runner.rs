//! Driving a sink from message streams, and running a query into one.
//!
//! ```text
//!  run_query_into_sink(ctx, sql, sink)
//!     ctx.sql ─► physical plan ─► MessageInput::extract (stream scan / window / join / ...
//!                                  + fused filters and projections)
//!                                  └─ a bounded plan without progress: its partitions' batches
//!     open every partition ─► FileSink::run:
//!        MergedInputs ── Batch{p} ─► write(p, batch)
//!                     └─ Progress ─► progress(W)         (time partitions, boundary rolls)
//!        clock ticks ─────────────► tick()               (roll_interval while no rows arrive)
//!        end of every partition ──► close() ─► SinkStats
//!        any error ───────────────► abort open files (no partial object) ─► Err
//! ```

use std::sync::Arc;
use std::time::Duration;

use datafusion::common::Result;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion_stream::exec::messages::{Merged, MergedInputs, MessageInput, MessageStream};
use datafusion_stream::scan::StreamMessage;
use datafusion_stream::StreamContext;
use futures::{StreamExt, TryStreamExt};

use super::{FileSink, SinkStats};

/// How often a real clock is read for `roll_interval` while no rows arrive.
fn tick_period(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

impl FileSink {
    /// Writes every partition's rows and progress until all of them end, then closes the
    /// files. On error, open files are aborted and the error is returned.
    pub async fn run(mut self, inputs: Vec<MessageStream>) -> Result<SinkStats> {
        let clock = self.clock();
        let mut merged = MergedInputs::new(inputs);
        let mut ticks = match self.options.roll_interval {
            Some(d) => clock.ticks(tick_period(d)),
            None => futures::stream::pending().boxed(),
        };
        loop {
            tokio::select! {
                biased;
                message = merged.next() => match message {
                    None => break,
                    Some(Ok(Merged::Batch { input, batch })) => self.write(input, &batch).await?,
                    Some(Ok(Merged::Progress(p))) => self.progress(p).await?,
                    Some(Err(e)) => {
                        let _ = self.abort_open().await;
                        return Err(e);
                    }
                },
                tick = ticks.next() => match tick {
                    Some(_) => self.tick().await?,
                    None => ticks = futures::stream::pending().boxed(),
                },
            }
        }
        self.close().await
    }
}

/// Plans `sql` in `ctx`, opens every partition of its output and writes it into `sink` until
/// the input ends (a bounded replay, a file, a bounded table) or fails. The query's output is
/// read as rows with progress when it comes from a streaming operator ([`MessageInput`]); a
/// bounded plan that produces no progress (a query over tables) is written batch by batch.
/// The sink uses the context's clock unless it was given one.
pub async fn run_query_into_sink(
    ctx: &StreamContext,
    sql: &str,
    mut sink: FileSink,
) -> Result<SinkStats> {
    let df = ctx.sql(sql).await?;
    let plan = df.create_physical_plan().await?;
    if !sink.has_clock() {
        sink = sink.with_clock(Arc::clone(&ctx.runtime().clock));
    }
    sink.bind_schema(plan.schema())?;
    let task = ctx.session().task_ctx();
    let inputs: Vec<MessageStream> = match MessageInput::extract(&plan, "sink") {
        Ok(input) => input.open(&task)?,
        Err(e) if plan.properties().boundedness.is_unbounded() => return Err(e),
        Err(_) => (0..plan.output_partitioning().partition_count())
            .map(|p| {
                let batches = plan.execute(p, Arc::clone(&task))?;
                Ok(batches.map_ok(StreamMessage::Batch).boxed())
            })
            .collect::<Result<Vec<_>>>()?,
    };
    sink.run(inputs).await
}
