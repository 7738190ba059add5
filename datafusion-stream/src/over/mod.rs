//! Streaming sliding windows: `agg(x) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN
//! INTERVAL '1' DAY PRECEDING AND CURRENT ROW)` with the semantics of Kinesis Data Analytics
//! (KDA) SQL: **one output row per input row, emitted as soon as the row is processed.**
//!
//! ```text
//!  SQL:  SELECT ..., MIN(temp) OVER (PARTITION BY city ORDER BY rowtime
//!                                    RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND CURRENT ROW)
//!
//!  logical.rs  analyzer rule: LogicalPlan::Window over a stream ──► StreamOver node
//!              (validates every frame; same output schema as the Window node)
//!  planner.rs  extension planner: StreamOver ──► StreamOverExec (fuses the filters and
//!              projections under it into a Pipeline)
//!  exec.rs     StreamOverExec (a MessageExec):
//!
//!   input p0 ─┐                        one input partition: every row at once
//!   input p1 ─┼─► pipeline ─► order ─┬─────────────────────────────────────────┐
//!   input pN ─┘                      └ several: buffer, release in ROWTIME      │
//!                                      order once min(progress.rowtime) >= t    ▼
//!        ┌─────────────────────────── state.rs ───────────────────────────────────────┐
//!        │ per PARTITION BY list: HashMap<partition key (row format), Partition>      │
//!        │   Partition: rows still inside the widest bounded frame (ROWTIME + argument│
//!        │   values), and per window expression: a sliding accumulator (update the   │
//!        │   new row, retract rows that left, evaluate), or a frame start for         │
//!        │   recomputation / LAG / NTH_VALUE, or a tiny state for UNBOUNDED frames    │
//!        └────────────────────────────────────────────────────────────────────────────┘
//!                      │ input columns + one column per window expression
//!                      ▼
//!             rows (same ROWTIME as their input row) + progress passed through
//! ```
//!
//! Semantics (KDA SQL Reference, "Windowed aggregation on streams", "Allowed and disallowed
//! window specifications"; `SPEC.md` §1.4, §2.4, Examples B, C, M, S):
//! * Rows are processed in arrival order, which is ROWTIME order. With several input partitions
//!   rows are released in ROWTIME order (ties: input partition, then arrival) once the combined
//!   ROWTIME progress has passed them.
//! * The window of row `r` holds the rows of `r`'s partition (PARTITION BY values, NULLs equal)
//!   that were processed **before** `r`, plus `r`, restricted by the frame. A peer with the same
//!   ROWTIME that arrives after `r` is not in `r`'s window (unlike SQL's RANGE peers).
//! * Frames (all end at the current row): `RANGE BETWEEN INTERVAL 'n' unit PRECEDING AND CURRENT
//!   ROW` = rows with `ROWTIME >= r.ROWTIME - n` (inclusive); `RANGE CURRENT ROW` = earlier
//!   rows with the same ROWTIME; `ROWS BETWEEN n PRECEDING AND CURRENT ROW` = `r` and the `n`
//!   rows before it; `UNBOUNDED PRECEDING` = everything so far (kept as accumulators only).
//!   RANGE is ordered by the ROWTIME column (found by its field metadata, whatever its name);
//!   no ORDER BY means ROWTIME.
//! * Rejected at planning, with the reason: frames with FOLLOWING or that end before the
//!   current row, GROUPS frames, ORDER BY anything but ROWTIME ascending, DISTINCT and FILTER
//!   in window aggregates, window functions other than the ones below.
//! * Functions: every aggregate UDAF (via its sliding accumulator when it can retract, else by
//!   recomputation over the frame's rows); `LAG(x [, n [, default]]) [IGNORE NULLS]` (the row `n`
//!   rows before `r` *inside the window*, else `default`, evaluated on `r`), `NTH_VALUE(x, n)`,
//!   `FIRST_VALUE(x)`, `LAST_VALUE(x)` (of the window, optionally ignoring NULLs), and
//!   `ROW_NUMBER()` (the position of `r` in its window, i.e. the number of rows in it).
//! * State: the rows still inside the widest bounded frame, per partition key; a partition
//!   whose rows all fell out of every RANGE frame (by ROWTIME progress) is dropped. Memory is
//!   tracked with a `MemoryReservation`; metrics `input_rows`, `output_rows`, `partitions`.

pub mod exec;
pub mod logical;
pub mod planner;
pub mod state;

use std::fmt;

use crate::time::Millis;

/// Where a sliding window starts; every supported window ends at the current row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum FrameStart {
    /// `UNBOUNDED PRECEDING`: every earlier row of the partition.
    Unbounded,
    /// `ROWS n PRECEDING` (`0` is `ROWS CURRENT ROW`): the current row and the `n` before it.
    Rows(u64),
    /// `RANGE` of `n` milliseconds of ROWTIME (`0` is `RANGE CURRENT ROW`): earlier rows with
    /// `ROWTIME >= current ROWTIME - n`.
    Range(Millis),
}

impl FrameStart {
    /// True when the frame keeps rows (it is not `UNBOUNDED PRECEDING`).
    pub fn is_bounded(&self) -> bool {
        !matches!(self, FrameStart::Unbounded)
    }
}

/// Formats milliseconds as the largest exact unit: `1d`, `2h`, `5s`, `1500ms`.
pub(crate) fn format_duration(ms: Millis) -> String {
    const UNITS: [(Millis, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1_000, "s"),
    ];
    if ms == 0 {
        return "0s".to_string();
    }
    for (size, unit) in UNITS {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

impl fmt::Display for FrameStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameStart::Unbounded => write!(f, "UNBOUNDED PRECEDING"),
            FrameStart::Rows(0) => write!(f, "ROWS CURRENT ROW"),
            FrameStart::Rows(n) => write!(f, "ROWS {n} PRECEDING"),
            FrameStart::Range(0) => write!(f, "RANGE CURRENT ROW"),
            FrameStart::Range(ms) => write!(f, "RANGE {} PRECEDING", format_duration(*ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_display() {
        assert_eq!(
            FrameStart::Range(86_400_000).to_string(),
            "RANGE 1d PRECEDING"
        );
        assert_eq!(
            FrameStart::Range(1_500).to_string(),
            "RANGE 1500ms PRECEDING"
        );
        assert_eq!(FrameStart::Range(0).to_string(), "RANGE CURRENT ROW");
        assert_eq!(FrameStart::Rows(2).to_string(), "ROWS 2 PRECEDING");
        assert_eq!(FrameStart::Unbounded.to_string(), "UNBOUNDED PRECEDING");
    }
}
