//! Event-time and ROWTIME windows: Flink's window table-valued functions, group-window
//! functions in GROUP BY, and KDA's STAGGER windows.
//!
//! ```text
//!  SQL:  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))
//!        GROUP BY window_start, window_end, k
//!   or:  FROM <any streaming plan> GROUP BY tumble_end(ts, INTERVAL '10' SECOND), k
//!   or:  FROM <any streaming plan> GROUP BY stagger_end(rowtime, INTERVAL '1' MINUTE), k
//!
//!  tvf.rs        tumble()/hop()/session() table functions: a WindowedTable = stream columns
//!                + window_start + window_end (only aggregated use is supported)
//!  functions.rs  tumble_start/tumble_end/stagger_start/stagger_end scalar UDFs that mark a
//!                window in GROUP BY
//!  logical.rs    analyzer rule: such an Aggregate ──► StreamWindowAggregate node
//!  planner.rs    extension planner: node ──► StreamWindowAggExec, fusing the stateless
//!                filters/projections between the message source and the aggregate
//!  exec.rs       StreamWindowAggExec:
//!
//!    source p0 ─┐ messages (rows + Progress)    ┌──────────── state ─────────────┐
//!    source p1 ─┼─► pipeline ─► assign windows ─► open windows: BTreeMap<start,  │──► closed windows,
//!    source pN ─┘   (filter,    (tumble/hop/    │   GroupedAggregator>           │    one batch each,
//!   (scan or a      project)    stagger) or     │ stagger: open starts per key   │    when W >= end - 1
//!    window below)              session buffer  │ per-partition watermarks (min) │
//!                                               └────────────────────────────────┘
//! ```
//!
//! Semantics (TUMBLE/HOP/SESSION checked against Flink 2.3 by `sql-tests/flink`):
//! * window `[start, end)`; it fires exactly once, when the combined watermark `W >= end - 1`;
//! * the combined watermark is the minimum over the input partitions that are not idle;
//! * a row is late when the first window it belongs to has already fired; late rows are dropped
//!   and counted, or fail the query, per [`crate::LateRowPolicy`];
//! * rows whose time is NULL belong to no window; they are dropped and counted (`null_time_rows`);
//! * SESSION: a row at `t` opens `[t, t + gap)`; windows of the same partition key that overlap
//!   or touch are merged; `window_end` = last row time + gap.
//! * STAGGER (KDA, SPEC §2.5): the partition key is the GROUP BY keys (NULLs equal). A row joins
//!   the open window of its key that contains its time; otherwise, unless its time is at or
//!   behind the watermark (late), it opens `[t, t + size)` at its own time. So a row at exactly
//!   `t0 + size` opens a new window, and a key whose window fired opens a new one with its next
//!   row. On ROWTIME (KDA's case) rows come in time order and windows of one key never overlap;
//!   with out-of-order event time a row before a key's open window opens an earlier window,
//!   which may overlap it (a row in both goes to the one that starts first).
//! * Time domain: ROWTIME when the time column carries [`crate::time::ROWTIME_METADATA_KEY`],
//!   event time when it is a stream's column with a declared watermark, or the domain of the
//!   window aggregate below when it is that aggregate's window end (windows over windows: a
//!   window's end is past the progress that follows it, so it is a valid time column; its
//!   start is not).

pub mod aggregator;
pub mod exec;
pub mod functions;
pub mod logical;
pub mod planner;
pub mod tvf;

use std::fmt;

use crate::time::Millis;

/// Which time a window runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum TimeDomain {
    /// A declared event-time column (its watermark strategy drives firing).
    EventTime,
    /// ROWTIME (processing time; the clock drives firing).
    Rowtime,
}

/// A window function and its sizes, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// `TUMBLE(data, DESCRIPTOR(t), size [, offset])`.
    Tumble {
        /// Window length.
        size: Millis,
        /// Alignment offset from the epoch.
        offset: Millis,
    },
    /// `HOP(data, DESCRIPTOR(t), slide, size [, offset])`.
    Hop {
        /// Distance between window starts.
        slide: Millis,
        /// Window length.
        size: Millis,
        /// Alignment offset from the epoch.
        offset: Millis,
    },
    /// `SESSION(data [PARTITION BY keys], DESCRIPTOR(t), gap)`.
    Session {
        /// Inactivity gap that closes a session.
        gap: Millis,
    },
    /// KDA's `WINDOWED BY STAGGER (PARTITION BY keys RANGE size)`, written
    /// `GROUP BY stagger_start(t, size), keys`: per key, a window opens at the time of the first
    /// row that finds no open window of its key and covers `[t0, t0 + size)`.
    Stagger {
        /// Window length.
        size: Millis,
    },
}

impl WindowKind {
    /// The SQL name.
    pub fn name(&self) -> &'static str {
        match self {
            WindowKind::Tumble { .. } => "TUMBLE",
            WindowKind::Hop { .. } => "HOP",
            WindowKind::Session { .. } => "SESSION",
            WindowKind::Stagger { .. } => "STAGGER",
        }
    }

    /// Start of the last window (by start) that contains `t` (tumble and hop).
    fn last_start(step: Millis, offset: Millis, t: Millis) -> Millis {
        let shifted = t.saturating_sub(offset);
        shifted
            .saturating_sub(shifted.rem_euclid(step))
            .saturating_add(offset)
    }

    /// Calls `f(start)` for each window containing `t`, latest start first, and returns the end
    /// of the earliest one (the end that decides lateness). Not for sessions; for STAGGER, the
    /// window that `t` would open (which windows are open depends on per-key state).
    pub fn assign(&self, t: Millis, mut f: impl FnMut(Millis)) -> Millis {
        match *self {
            WindowKind::Tumble { size, offset } => {
                let s = Self::last_start(size, offset, t);
                f(s);
                s.saturating_add(size)
            }
            WindowKind::Hop {
                slide,
                size,
                offset,
            } => {
                let mut s = Self::last_start(slide, offset, t);
                let mut earliest = s;
                // at most ceil(size / slide) windows cover a point
                let mut budget = size / slide + 1;
                while s > t.saturating_sub(size) && budget > 0 {
                    f(s);
                    earliest = s;
                    s = s.saturating_sub(slide);
                    budget -= 1;
                }
                earliest.saturating_add(size)
            }
            WindowKind::Session { gap } => t.saturating_add(gap),
            WindowKind::Stagger { size } => {
                f(t);
                t.saturating_add(size)
            }
        }
    }

    /// Window length (tumble, hop and stagger; the gap for sessions).
    pub fn size(&self) -> Millis {
        match *self {
            WindowKind::Tumble { size, .. }
            | WindowKind::Hop { size, .. }
            | WindowKind::Stagger { size } => size,
            WindowKind::Session { gap } => gap,
        }
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowKind::Tumble { size, offset } => {
                write!(f, "TUMBLE(size={size}ms")?;
                if *offset != 0 {
                    write!(f, ", offset={offset}ms")?;
                }
                write!(f, ")")
            }
            WindowKind::Hop {
                slide,
                size,
                offset,
            } => {
                write!(f, "HOP(slide={slide}ms, size={size}ms")?;
                if *offset != 0 {
                    write!(f, ", offset={offset}ms")?;
                }
                write!(f, ")")
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap={gap}ms)"),
            WindowKind::Stagger { size } => write!(f, "STAGGER(size={size}ms)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(k: WindowKind, t: Millis) -> (Vec<Millis>, Millis) {
        let mut v = vec![];
        let end = k.assign(t, |s| v.push(s));
        (v, end)
    }

    #[test]
    fn tumble_assignment_is_epoch_aligned_and_handles_negative_times() {
        let k = WindowKind::Tumble {
            size: 10,
            offset: 0,
        };
        assert_eq!(windows(k, 0), (vec![0], 10));
        assert_eq!(windows(k, 9), (vec![0], 10));
        assert_eq!(windows(k, 10), (vec![10], 20));
        assert_eq!(windows(k, -1), (vec![-10], 0));
        let k = WindowKind::Tumble {
            size: 10,
            offset: 3,
        };
        assert_eq!(windows(k, 2), (vec![-7], 3));
        assert_eq!(windows(k, 3), (vec![3], 13));
    }

    #[test]
    fn hop_assigns_every_covering_window() {
        let k = WindowKind::Hop {
            slide: 5,
            size: 15,
            offset: 0,
        };
        assert_eq!(windows(k, 12), (vec![10, 5, 0], 15));
        assert_eq!(windows(k, 15), (vec![15, 10, 5], 20));
        let k = WindowKind::Hop {
            slide: 10,
            size: 5,
            offset: 0,
        };
        // size < slide: some times fall in no window
        assert_eq!(windows(k, 3), (vec![0], 5));
        assert_eq!(windows(k, 7).0, Vec::<Millis>::new());
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let k = WindowKind::Hop {
            slide: 5,
            size: 15,
            offset: 7,
        };
        assert!(windows(k, Millis::MIN).0.len() <= 4);
        assert!(windows(k, Millis::MAX).0.len() <= 4);
        let k = WindowKind::Tumble {
            size: 10,
            offset: -3,
        };
        assert_eq!(windows(k, Millis::MAX).1, Millis::MAX);
    }
}
