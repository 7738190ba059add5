//! Time: the context clock, ROWTIME, event time and watermarks.
//!
//! ```text
//!            ingest (clock.now())                 declared: WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! source ──► ROWTIME stamped ──► rowtime watermark = last ROWTIME - 1 ms, or clock.now() - 1 ms on a tick
//!                           └──► event watermark   = max(ts seen) - 5 s   (or an explicit replay watermark)
//! ```
//!
//! A watermark `W` means: *no row with a time `<= W` will follow on this partition*
//! (Flink's definition). A window `[start, end)` is complete, and fires, once `W >= end - 1 ms`.
//! All times are epoch milliseconds ([`Millis`]), UTC.
//!
//! Tests never sleep: a [`ManualClock`] is advanced explicitly and every source that stamps
//! ROWTIME from the clock sees the advance as a tick, so ROWTIME windows close and idle
//! partitions are detected deterministically.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::BoxStream;
use futures::StreamExt;

/// Epoch milliseconds, UTC.
pub type Millis = i64;

/// Field metadata key that marks the ROWTIME column of a stream.
pub const ROWTIME_METADATA_KEY: &str = "datafusion_stream.rowtime";

/// Default name of the ROWTIME column in DataFusion-dialect SQL (unquoted identifiers fold to
/// lower case there, so `SELECT ROWTIME` finds it). The KDA front end uses `ROWTIME`.
pub const DEFAULT_ROWTIME_COLUMN: &str = "rowtime";

/// The watermark before anything is known.
pub const WATERMARK_MIN: Millis = i64::MIN;
/// The watermark at the end of a bounded input: every window fires.
pub const WATERMARK_MAX: Millis = i64::MAX;

/// A source of processing time owned by a stream context.
pub trait StreamClock: Debug + Send + Sync {
    /// The current processing time.
    fn now(&self) -> Millis;
    /// A stream of clock readings. A real clock yields every `period`; a manual clock yields
    /// once per explicit advance (and never otherwise).
    fn ticks(&self, period: Duration) -> BoxStream<'static, Millis>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl StreamClock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }

    fn ticks(&self, period: Duration) -> BoxStream<'static, Millis> {
        let period = period.max(Duration::from_millis(1));
        let interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        futures::stream::unfold(interval, |mut interval| async move {
            interval.tick().await;
            Some((SystemClock.now(), interval))
        })
        .boxed()
    }
}

/// A clock that only moves when told to; for deterministic tests and replays.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
    tx: tokio::sync::watch::Sender<Millis>,
}

impl ManualClock {
    /// A manual clock reading `start`.
    pub fn new(start: Millis) -> Arc<Self> {
        let (tx, _) = tokio::sync::watch::channel(start);
        Arc::new(Self {
            now: AtomicI64::new(start),
            tx,
        })
    }

    /// Moves the clock to `t`. A clock never goes backwards: an earlier `t` is ignored.
    pub fn advance_to(&self, t: Millis) {
        let prev = self.now.fetch_max(t, Ordering::SeqCst);
        if t > prev {
            self.tx.send_replace(t);
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance_by(&self, d: Duration) {
        let now = self.now.load(Ordering::SeqCst);
        self.advance_to(now.saturating_add(d.as_millis() as Millis));
    }
}

impl StreamClock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    fn ticks(&self, _period: Duration) -> BoxStream<'static, Millis> {
        let rx = self.tx.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let t = *rx.borrow_and_update();
            Some((t, rx))
        })
        .boxed()
    }
}

/// Converts an interval value to milliseconds; months are rejected (a month has no fixed
/// length, so it cannot size a window or a watermark delay).
pub fn interval_to_millis(
    value: &datafusion::common::ScalarValue,
    what: &str,
) -> datafusion::common::Result<Millis> {
    use datafusion::common::{plan_err, ScalarValue};
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return plan_err!(
                    "{what}: month and year intervals are not supported, use days or smaller units"
                );
            }
            Ok(v.days as Millis * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Ok(v.days as Millis * 86_400_000 + v.milliseconds as Millis)
        }
        ScalarValue::IntervalYearMonth(_) => {
            plan_err!(
                "{what}: month and year intervals are not supported, use days or smaller units"
            )
        }
        ScalarValue::DurationMillisecond(Some(v)) => Ok(*v),
        ScalarValue::DurationSecond(Some(v)) => Ok(v * 1000),
        other => plan_err!(
            "{what}: expected an INTERVAL literal such as INTERVAL '10' SECOND, got {other:?}"
        ),
    }
}

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), for messages and status lines.
pub fn format_millis(t: Millis) -> String {
    match t {
        WATERMARK_MIN => "-inf".to_string(),
        WATERMARK_MAX => "+inf".to_string(),
        t => datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(t)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_else(|| t.to_string()),
    }
}
