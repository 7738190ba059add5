//! Stream joins with the semantics of Kinesis Data Analytics for SQL (KDA SQL Reference,
//! join-clause; `shared/kda/SPEC.md` §1.5, §2.6, Example F).
//!
//! ```text
//!  SQL:  FROM stream_range('orders', INTERVAL '1' MINUTE) AS o     -- KDA: orders OVER (RANGE ...)
//!        [LEFT | RIGHT | FULL] JOIN shipments AS s                  -- no window: current row only
//!        ON o.orderid = s.orderid
//!
//!  tvf.rs      stream_range('s', INTERVAL) / stream_rows('s', n): a JoinWindowTable = the stream
//!              + the window its side keeps (scanning it anywhere but under a join is an error)
//!  logical.rs  analyzer rule: Join with a streaming input ──► StreamJoin        (stream ⋈ stream)
//!                                                         ──► StreamLookupJoin  (stream ⋈ table)
//!  planner.rs  extension planner ──► StreamJoinExec / StreamLookupJoinExec
//!  state.rs    JoinCore, the stream-to-stream state machine; exec.rs drives it:
//!
//!   left  p0..pn ─► pipeline ─► MergedInputs ─┐       ┌─────────── JoinCore ───────────┐
//!                                             ├─────► │ pending rows  (t, side, p, seq) │──► rows in
//!   right p0..pm ─► pipeline ─► MergedInputs ─┘       │ stored rows per windowed side:  │   ascending
//!                                                     │   BTreeMap by order + key index │   ROWTIME,
//!                                                     │   + matched flag (outer joins)  │   then
//!                                                     │ progress of each input          │   Progress
//!                                                     └─────────────────────────────────┘
//!  lookup.rs   StreamLookupJoinExec: table read once at start ──► hash index; stream rows look up
//! ```
//!
//! # Stream-to-stream semantics (KDA)
//! * **Order.** Rows of both inputs are processed in one global ROWTIME order, left before right
//!   on equal ROWTIME. Each input may have several partitions, combined by [`MergedInputs`]
//!   (progress = minimum over its non-idle partitions). A left row at `t` is processed once both
//!   inputs' progress is `>= t - 1` (no row of either input before `t` can still come); a right
//!   row at `t` once the left progress is `>= t` and the right progress `>= t - 1`. Until then
//!   rows wait (metric `pending_rows`).
//! * **Windows.** A side with a window stores its rows while they are in it: `RANGE n`
//!   (`stream_range`): rows with `ROWTIME >= now - n`, inclusive, where `now` is the ROWTIME of
//!   the row being processed; `ROWS n` (`stream_rows`): the `n + 1` latest rows. A side without a
//!   window stores nothing: its row matches, when processed, against the other side's stored
//!   rows and never later. At least one side needs a window.
//! * **Matching.** A processed row is matched against the other side's stored rows (expired
//!   rows are evicted first); each match is one output row whose ROWTIME is the later of the two,
//!   which is the processed row's. Then the row is stored if its side has a window.
//! * **Outer joins** (LEFT / RIGHT / FULL): a preserved-side row that never matched is emitted
//!   once, null-extended, when it can no longer match: a side without a window at once (at its
//!   own ROWTIME); a `RANGE n` side when it leaves its window, at `ROWTIME + n` (once progress
//!   passes it); a `ROWS n` side when it is pushed out, at the ROWTIME of the row that pushes it.
//!   At the end of both inputs the rows still held are flushed (RANGE: in `ROWTIME + n` order,
//!   then ROWS windows).
//! * **Output.** Rows come out in ascending output ROWTIME (the KDA guarantee); the output
//!   progress is what both inputs guarantee, held back by waiting rows and by null rows still
//!   to come. The output schema is DataFusion's join schema (left columns, then right columns,
//!   both ROWTIME columns included); the output ROWTIME of a match is
//!   `GREATEST(l.ROWTIME, r.ROWTIME)`. A null-extended row of a windowed side is emitted at
//!   `ROWTIME + n` in the output order, although that time is in no column.
//! * **Keys.** NULL keys match nothing (unless the condition is `IS NOT DISTINCT FROM`). The
//!   part of `ON` that is not `left expr = right expr` is a filter over candidate pairs.
//! * **Late rows** (only possible from a partition that was idle): dropped and counted
//!   (`late_rows`), or the query fails, per [`crate::LateRowPolicy`].
//! * **Event-time progress** of the output is the minimum of both inputs', held while rows wait
//!   or unmatched outer rows are stored (KDA joins run on ROWTIME; this only keeps downstream
//!   event-time windows safe).
//!
//! # Stream-to-table joins
//! One input streams, the other is bounded (a MemTable, a listing table, a view over them...):
//! the table is read to the end once, when the query starts, and every stream row looks it up
//! and is emitted at once with its own ROWTIME (`INNER`, or the outer join that keeps the
//! stream's rows). See [`lookup`].
//!
//! # State
//! Join state is Arrow data: the input batches that hold stored or waiting rows, plus per row
//! its order key, join key in Arrow row format and matched flag. It is tracked by a
//! `MemoryReservation`; metrics: `left_rows`, `right_rows`, `matches`, `unmatched_rows`,
//! `late_rows`, `stored_rows` and `pending_rows` (gauges).
//!
//! [`MergedInputs`]: crate::exec::messages::MergedInputs

pub mod exec;
pub mod logical;
pub mod lookup;
pub mod planner;
pub mod state;
pub mod tvf;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;

use crate::exec::messages::MessageExec;
use crate::time::Millis;

pub use logical::StreamJoinRule;
pub use planner::JoinPlanner;
pub use tvf::register_join_functions;

/// The window a stream join keeps on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum JoinWindow {
    /// `RANGE n PRECEDING`: rows with `ROWTIME >= now - n` (milliseconds, inclusive).
    Range(Millis),
    /// `ROWS n PRECEDING`: the `n + 1` latest rows.
    Rows(u64),
}

impl fmt::Display for JoinWindow {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            JoinWindow::Range(ms) => write!(f, "RANGE {ms} ms PRECEDING"),
            JoinWindow::Rows(n) => write!(f, "ROWS {n} PRECEDING"),
        }
    }
}

/// The join operators as [`MessageExec`]s (for [`crate::exec::messages`]' probe list).
pub fn as_message_exec(plan: &Arc<dyn ExecutionPlan>) -> Option<&dyn MessageExec> {
    if let Some(e) = plan.downcast_ref::<exec::StreamJoinExec>() {
        return Some(e as &dyn MessageExec);
    }
    plan.downcast_ref::<lookup::StreamLookupJoinExec>()
        .map(|e| e as &dyn MessageExec)
}
