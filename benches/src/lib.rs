//! # datafusion-stream benchmarks
//!
//! Shared pieces of the `window_bench` binary, which runs one TUMBLE window aggregate twice
//! over the same pre-generated events and compares:
//!
//! ```text
//!   generate(N, K) ──► Arc<Vec<RecordBatch>> (8192 rows each, generated once, not timed)
//!        │                              │
//!        ▼                              ▼
//!   PregeneratedSource             MemTable (one partition)
//!   (bounded StreamSource)         SessionConfig::with_target_partitions(1)
//!        │                              │
//!   StreamContext::query(          SessionContext::sql(
//!     TUMBLE(...) GROUP BY           date_bin('1 minute', ts) GROUP BY 1, 2)
//!     window_start, window_end, k)      │
//!        ▼                              ▼
//!   drain, fold into Summary       drain, fold into Summary ──► same groups? same aggregates?
//! ```
//!
//! * [`alloc`]: a counting global allocator (current and peak bytes) for peak-memory figures;
//!   the binary installs it with `#[global_allocator]`.
//! * [`gen`]: a deterministic event generator (local splitmix64, no `rand`): event time
//!   advancing at a fixed rate, ~20% of rows out of order by up to 4 s, never late for a
//!   5 s bounded-out-of-orderness watermark.
//! * [`PregeneratedSource`]: a bounded [`StreamSource`] yielding Arc-cloned batches.
//! * [`run_streaming`] / [`run_batch`]: one timed run of each engine, returning a [`RunStats`].
//! * [`Summary`]: an order-independent digest of a result (groups, totals, checksum) so the
//!   two engines' outputs can be compared without sorting or keeping them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{displayable, ExecutionPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_stream::source::SourceContext;
use datafusion_stream::{
    EventTime, LateRowPolicy, ManualClock, RowtimeMode, SourceEvent, StreamContext, StreamRuntime,
    StreamSource, StreamTable,
};
use futures::stream::BoxStream;
use futures::StreamExt;

/// Window size of the benchmark query (1 minute), in milliseconds.
pub const WINDOW_MS: i64 = 60_000;
/// Watermark delay declared on the stream (`ts - INTERVAL '5' SECOND`), in milliseconds.
pub const WATERMARK_DELAY_MS: i64 = 5_000;

/// The streaming query.
pub const STREAM_SQL: &str =
    "SELECT window_start, window_end, k, COUNT(*), SUM(v), MIN(v), MAX(v) \
     FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) \
     GROUP BY window_start, window_end, k";

/// The batch reference query.
pub const BATCH_SQL: &str =
    "SELECT date_bin(INTERVAL '1 minute', ts) AS w, k, COUNT(*), SUM(v), MIN(v), MAX(v) \
     FROM events GROUP BY 1, 2";

pub mod alloc {
    //! A counting wrapper around [`std::alloc::System`]: live bytes and the peak since the last
    //! [`reset_peak`]. Install it in a binary with
    //! `#[global_allocator] static A: CountingAlloc = CountingAlloc;` (a library must not
    //! choose the allocator for its users). Without it every figure reads 0.
    //!
    //! Cost: two relaxed atomic operations per allocation, the same for both engines.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    static CURRENT: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// The counting allocator.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct CountingAlloc;

    #[inline]
    fn grow(n: usize) {
        let now = CURRENT.fetch_add(n, Relaxed) + n;
        PEAK.fetch_max(now, Relaxed);
    }

    #[inline]
    fn shrink(n: usize) {
        CURRENT.fetch_sub(n, Relaxed);
    }

    // SAFETY: every call is forwarded unchanged to `System`; the counters are bookkeeping only.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grow(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grow(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            shrink(layout.size());
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                if new_size >= layout.size() {
                    grow(new_size - layout.size());
                } else {
                    shrink(layout.size() - new_size);
                }
            }
            p
        }
    }

    /// Bytes allocated and not yet freed.
    pub fn current() -> usize {
        CURRENT.load(Relaxed)
    }

    /// Highest [`current`] since the last [`reset_peak`] (or the start).
    pub fn peak() -> usize {
        PEAK.load(Relaxed)
    }

    /// Sets the peak to the current value and returns it: the baseline of a measurement.
    pub fn reset_peak() -> usize {
        let now = CURRENT.load(Relaxed);
        PEAK.store(now, Relaxed);
        now
    }
}

pub mod gen {
    //! Deterministic event generator.
    //!
    //! Row `i` has the in-order time `start + i * 1000 / rate` ms. With probability
    //! `out_of_order` a row is moved back by 1..`max_disorder_ms` ms instead (but not before
    //! `start`). The in-order
    //! time never decreases, so the largest time seen before any row is at most its in-order
    //! time; with `max_disorder_ms < WATERMARK_DELAY_MS` the watermark (`max seen - 5 s`)
    //! therefore stays below every later row: no row is late.

    use std::sync::Arc;

    use datafusion::arrow::array::{
        Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

    /// The splitmix64 generator (Steele, Lea, Flood 2014): tiny, fast, good enough for data.
    #[derive(Debug, Clone)]
    pub struct SplitMix64(u64);

    impl SplitMix64 {
        /// A generator seeded with `seed`.
        pub fn new(seed: u64) -> Self {
            Self(seed)
        }

        /// The next 64 random bits.
        #[inline]
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix(self.0)
        }

        /// Uniform in `[0, n)` (multiply-shift; bias below 2^-40 for the sizes used here).
        #[inline]
        pub fn below(&mut self, n: u64) -> u64 {
            ((self.next_u64() as u128 * n as u128) >> 64) as u64
        }

        /// Uniform in `[0, 1)` with 53 bits.
        #[inline]
        pub fn next_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
        }
    }

    /// The splitmix64 finaliser (also used to hash result rows).
    #[inline]
    pub fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// What to generate.
    #[derive(Debug, Clone)]
    pub struct GenConfig {
        /// Number of events.
        pub events: usize,
        /// Keys are uniform over `0..keys`.
        pub keys: u64,
        /// Rows per batch.
        pub batch_size: usize,
        /// Events per second of event time.
        pub rate: u64,
        /// Event time of the first event (epoch ms; minute-aligned by default).
        pub start_ms: i64,
        /// Fraction of rows moved back in time.
        pub out_of_order: f64,
        /// Rows move back by 1..max_disorder_ms ms (exclusive).
        pub max_disorder_ms: i64,
        /// PRNG seed.
        pub seed: u64,
    }

    impl GenConfig {
        /// The benchmark's defaults for `events` and `keys`: 8192-row batches, 20,000 events
        /// per second of event time (1.2 M events, ~146 batches per 1-minute window), 20% of
        /// rows out of order by < 4 s, starting at 2024-01-01T00:00:00Z.
        pub fn new(events: usize, keys: u64) -> Self {
            Self {
                events,
                keys,
                batch_size: 8192,
                rate: 20_000,
                start_ms: 1_704_067_200_000,
                out_of_order: 0.2,
                max_disorder_ms: 4_000,
                seed: 0x5EED_DA7A_F051_0001,
            }
        }

        /// In-order event time of row `i`.
        pub fn base_time(&self, i: usize) -> i64 {
            self.start_ms + (i as u128 * 1000 / self.rate as u128) as i64
        }
    }

    /// `events (ts TIMESTAMP, k BIGINT, v DOUBLE)` (nullable, as `CREATE STREAM` declares them).
    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Float64, true),
        ]))
    }

    /// Generates the events as batches of `batch_size` rows (the last one may be shorter).
    pub fn generate(cfg: &GenConfig) -> Vec<RecordBatch> {
        assert!(cfg.keys > 0 && cfg.batch_size > 0 && cfg.rate > 0);
        assert!(cfg.max_disorder_ms >= 2);
        let schema = schema();
        let mut rng = SplitMix64::new(cfg.seed);
        let mut out = Vec::with_capacity(cfg.events.div_ceil(cfg.batch_size));
        let mut i = 0;
        while i < cfg.events {
            let n = cfg.batch_size.min(cfg.events - i);
            let mut ts = Vec::with_capacity(n);
            let mut k = Vec::with_capacity(n);
            let mut v = Vec::with_capacity(n);
            for j in i..i + n {
                let mut t = cfg.base_time(j);
                if rng.next_f64() < cfg.out_of_order {
                    let d = 1 + rng.below(cfg.max_disorder_ms as u64 - 1) as i64;
                    // never before the first event, so no sliver of a window precedes the data
                    t = (t - d).max(cfg.start_ms);
                }
                ts.push(t);
                k.push(rng.below(cfg.keys) as i64);
                v.push(rng.next_f64() * 1000.0);
            }
            out.push(
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(TimestampMillisecondArray::from(ts)),
                        Arc::new(Int64Array::from(k)),
                        Arc::new(Float64Array::from(v)),
                    ],
                )
                .expect("generated batch matches its schema"),
            );
            i += n;
        }
        out
    }
}

/// What the streaming engine sees of the input, computed by replaying the scan's watermark
/// rule (`max ts seen - delay`, after each batch) over the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowProfile {
    /// Distinct windows in the input.
    pub windows: usize,
    /// Most windows open at once (holding state before the watermark fires them).
    pub max_open: usize,
    /// Rows whose window had already fired when they arrived (must be 0 here).
    pub late_rows: usize,
    /// Rows with a time below the largest time seen before them.
    pub out_of_order_rows: usize,
}

/// Computes the [`WindowProfile`] of `batches` for tumbling windows of `size` ms and a
/// watermark `delay` (column 0 must be the millisecond timestamp).
pub fn window_profile(batches: &[RecordBatch], size: i64, delay: i64) -> WindowProfile {
    let mut p = WindowProfile::default();
    let mut open = std::collections::BTreeSet::new();
    let mut all = std::collections::BTreeSet::new();
    let mut max_seen = i64::MIN;
    let mut watermark = i64::MIN;
    for b in batches {
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        let mut last_start = None;
        for &t in ts.values().iter() {
            if t < max_seen {
                p.out_of_order_rows += 1;
            }
            max_seen = max_seen.max(t);
            let start = t - t.rem_euclid(size);
            if start + size - 1 <= watermark {
                p.late_rows += 1;
                continue;
            }
            if last_start != Some(start) {
                last_start = Some(start);
                open.insert(start);
                all.insert(start);
            }
        }
        p.max_open = p.max_open.max(open.len());
        watermark = watermark.max(max_seen.saturating_sub(delay));
        open.retain(|&s| s + size - 1 > watermark);
    }
    p.windows = all.len();
    p
}

/// A bounded stream source over pre-generated batches: one partition, ROWTIME stamped at
/// ingest from the context clock (a [`ManualClock`] that never moves, see [`run_streaming`]).
/// Every `open` yields the same Arc-shared batches (cloning a batch clones `Arc`s only).
#[derive(Debug)]
pub struct PregeneratedSource {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
}

impl PregeneratedSource {
    /// A source yielding `batches` (all with schema `schema`) once, then ending.
    pub fn new(schema: SchemaRef, batches: Arc<Vec<RecordBatch>>) -> Self {
        Self { schema, batches }
    }
}

impl StreamSource for PregeneratedSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn partition_count(&self) -> usize {
        1
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        RowtimeMode::Ingest
    }

    fn is_bounded(&self) -> bool {
        true
    }

    fn open(
        &self,
        partition: usize,
        _ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        if partition != 0 {
            return Err(DataFusionError::Execution(format!(
                "pregenerated source has one partition, asked for {partition}"
            )));
        }
        let batches = Arc::clone(&self.batches);
        Ok(futures::stream::iter((0..batches.len()).map(move |i| {
            Ok(SourceEvent::Data {
                batch: batches[i].clone(),
                rowtime: None,
            })
        }))
        .boxed())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An order-independent digest of a window-aggregate result with columns
/// `(window start, key, COUNT, SUM, MIN, MAX)` at the given positions.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Output rows (= groups).
    pub groups: usize,
    /// Sum of COUNT(*) over all groups (= input rows that were aggregated).
    pub total_count: i64,
    /// Sum of SUM(v) over all groups.
    pub total_sum: f64,
    /// Wrapping sum of a hash of (window start, k, COUNT, MIN bits, MAX bits) per group:
    /// equal iff (with overwhelming probability) the two results have the same groups with
    /// the same counts, minima and maxima.
    pub checksum: u64,
}

/// Column positions of `(window start, k, COUNT, SUM, MIN, MAX)` in a result.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    /// Window start (any timestamp type).
    pub window: usize,
    /// Key (BIGINT).
    pub key: usize,
    /// COUNT(*).
    pub count: usize,
    /// SUM(v).
    pub sum: usize,
    /// MIN(v).
    pub min: usize,
    /// MAX(v).
    pub max: usize,
}

/// Column positions in [`STREAM_SQL`]'s output.
pub const STREAM_COLUMNS: Columns = Columns {
    window: 0,
    key: 2,
    count: 3,
    sum: 4,
    min: 5,
    max: 6,
};

/// Column positions in [`BATCH_SQL`]'s output.
pub const BATCH_COLUMNS: Columns = Columns {
    window: 0,
    key: 1,
    count: 2,
    sum: 3,
    min: 4,
    max: 5,
};

impl Summary {
    /// Folds one output batch in.
    pub fn add(&mut self, b: &RecordBatch, c: Columns) -> Result<()> {
        let w = cast(
            b.column(c.window),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let w = w.as_primitive::<TimestampMillisecondType>();
        let k = b.column(c.key).as_primitive::<Int64Type>();
        let n = b.column(c.count).as_primitive::<Int64Type>();
        let s = b.column(c.sum).as_primitive::<Float64Type>();
        let lo = b.column(c.min).as_primitive::<Float64Type>();
        let hi = b.column(c.max).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            self.total_count += n.value(i);
            self.total_sum += s.value(i);
            let mut h = gen::mix(w.value(i) as u64);
            for x in [
                k.value(i) as u64,
                n.value(i) as u64,
                lo.value(i).to_bits(),
                hi.value(i).to_bits(),
            ] {
                h = gen::mix(h ^ x);
            }
            self.checksum = self.checksum.wrapping_add(h);
        }
        self.groups += b.num_rows();
        Ok(())
    }

    /// True if `other` describes the same result (total SUM compared to 1e-9 relative, as
    /// the two engines may add a group's values in a different order).
    pub fn matches(&self, other: &Summary) -> bool {
        let tol = 1e-9 * self.total_sum.abs().max(other.total_sum.abs()).max(1.0);
        self.groups == other.groups
            && self.total_count == other.total_count
            && self.checksum == other.checksum
            && (self.total_sum - other.total_sum).abs() <= tol
    }
}

/// CPU time consumed by this process so far (all threads), from
/// `/proc/self/task/*/schedstat` (nanoseconds). `None` where that is unavailable.
pub fn process_cpu_time() -> Option<Duration> {
    let mut total: u64 = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// One timed run of one engine.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Wall time from context creation to the last output batch.
    pub wall: Duration,
    /// Process CPU time over the same span (`None` without `/proc`).
    pub cpu: Option<Duration>,
    /// Peak allocated bytes above the baseline taken just before the run.
    pub peak_bytes: usize,
    /// The result digest.
    pub summary: Summary,
    /// Rows the streaming window operator dropped as late (0 for batch).
    pub late_rows: usize,
    /// `elapsed_compute` of the aggregating operator (streaming: `StreamWindowAggExec`,
    /// batch: the `AggregateExec`s), to split operator time from scan time.
    pub agg_compute: Option<Duration>,
}

struct Meter {
    start: Instant,
    cpu: Option<Duration>,
    baseline: usize,
}

impl Meter {
    fn start() -> Self {
        let baseline = alloc::reset_peak();
        Self {
            start: Instant::now(),
            cpu: process_cpu_time(),
            baseline,
        }
    }

    fn finish(self, summary: Summary, late_rows: usize, agg_compute: Option<Duration>) -> RunStats {
        let wall = self.start.elapsed();
        let cpu = match (self.cpu, process_cpu_time()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        RunStats {
            wall,
            cpu,
            peak_bytes: alloc::peak().saturating_sub(self.baseline),
            summary,
            late_rows,
            agg_compute,
        }
    }
}

/// Sum of `elapsed_compute` over the operators of `plan` whose name is `name`.
fn compute_time(plan: &Arc<dyn ExecutionPlan>, name: &str) -> Option<Duration> {
    fn walk(p: &Arc<dyn ExecutionPlan>, name: &str, acc: &mut Option<u64>) {
        if p.name() == name {
            if let Some(ns) = p.metrics().and_then(|m| m.elapsed_compute()) {
                *acc = Some(acc.unwrap_or(0) + ns as u64);
            }
        }
        for c in p.children() {
            walk(c, name, acc);
        }
    }
    let mut acc = None;
    walk(plan, name, &mut acc);
    acc.map(Duration::from_nanos)
}

/// The physical plans of both queries (streaming, batch), as `EXPLAIN` would indent them.
pub async fn explain(batches: &Arc<Vec<RecordBatch>>) -> Result<(String, String)> {
    let ctx = stream_context(batches)?;
    let query = ctx.query(STREAM_SQL).await?;
    let stream = displayable(query.plan().as_ref()).indent(true).to_string();
    let ctx = batch_context(batches)?;
    let plan = ctx.sql(BATCH_SQL).await?.create_physical_plan().await?;
    let batch = displayable(plan.as_ref()).indent(true).to_string();
    Ok((stream, batch))
}

fn stream_context(batches: &Arc<Vec<RecordBatch>>) -> Result<StreamContext> {
    let runtime = StreamRuntime {
        clock: ManualClock::new(0),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
        ..StreamRuntime::default()
    };
    let ctx = StreamContext::with_runtime(runtime);
    let source = PregeneratedSource::new(gen::schema(), Arc::clone(batches));
    let table = StreamTable::try_new(
        "events",
        Arc::new(source),
        ctx.rowtime_column(),
        Some(EventTime {
            column: "ts".into(),
            max_delay: WATERMARK_DELAY_MS,
        }),
    )?;
    ctx.register_stream(table)?;
    Ok(ctx)
}

fn batch_context(batches: &Arc<Vec<RecordBatch>>) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let table = MemTable::try_new(gen::schema(), vec![batches.as_ref().clone()])?;
    ctx.register_table("events", Arc::new(table))?;
    Ok(ctx)
}

/// Runs [`STREAM_SQL`] on datafusion-stream over `batches` and drains the output.
///
/// The source stamps ROWTIME at ingest from a [`ManualClock`] that is never advanced: the
/// query does not use ROWTIME, stamping costs one constant-array fill per batch (cheaper than
/// the per-row monotonicity check of [`RowtimeMode::Supplied`]), no clock ticks wake the task,
/// and no processing-time idleness can fire windows early. Windows fire on the event-time
/// watermark only, and all remaining ones at the end of the bounded input.
pub async fn run_streaming(batches: &Arc<Vec<RecordBatch>>) -> Result<RunStats> {
    let meter = Meter::start();
    let ctx = stream_context(batches)?;
    let mut query = ctx.query(STREAM_SQL).await?;
    let mut summary = Summary::default();
    while let Some(b) = query.stream().next().await {
        summary.add(&b?, STREAM_COLUMNS)?;
    }
    let late = query.counter("late_rows");
    let agg = compute_time(query.plan(), "StreamWindowAggExec");
    drop(query);
    drop(ctx);
    Ok(meter.finish(summary, late, agg))
}

/// Runs [`BATCH_SQL`] on stock DataFusion over `batches` in a one-partition `MemTable` with
/// `target_partitions = 1`, and drains the output. (This is `DataFrame::collect` without
/// keeping the result batches, so that both engines' peaks measure working state, not
/// retained output.)
pub async fn run_batch(batches: &Arc<Vec<RecordBatch>>) -> Result<RunStats> {
    let meter = Meter::start();
    let ctx = batch_context(batches)?;
    let plan = ctx.sql(BATCH_SQL).await?.create_physical_plan().await?;
    let mut stream = datafusion::physical_plan::execute_stream(Arc::clone(&plan), ctx.task_ctx())?;
    let mut summary = Summary::default();
    while let Some(b) = stream.next().await {
        summary.add(&b?, BATCH_COLUMNS)?;
    }
    drop(stream);
    let agg = compute_time(&plan, "AggregateExec");
    drop(plan);
    drop(ctx);
    Ok(meter.finish(summary, 0, agg))
}

#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: alloc::CountingAlloc = alloc::CountingAlloc;

#[cfg(test)]
mod tests {
    use super::*;

    /// The peak counter is process-wide: tests that reset it must not overlap.
    static PEAK_COUNTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn counting_allocator_tracks_peak() {
        let _serial = PEAK_COUNTER.lock().unwrap_or_else(|e| e.into_inner());
        // Other tests still allocate on other threads, so only lower bounds hold.
        let base = alloc::reset_peak();
        let v = vec![1u8; 8 << 20];
        assert!(alloc::current() >= 8 << 20);
        drop(v);
        assert!(alloc::peak() >= base + (8 << 20));
        let base = alloc::reset_peak();
        assert!(alloc::peak() >= base);
    }

    fn small(keys: u64) -> gen::GenConfig {
        gen::GenConfig {
            batch_size: 1000,
            ..gen::GenConfig::new(50_000, keys)
        }
    }

    #[test]
    fn generator_is_deterministic_and_in_range() {
        let cfg = small(100);
        let a = gen::generate(&cfg);
        let b = gen::generate(&cfg);
        assert_eq!(a, b);
        assert_eq!(a.iter().map(|b| b.num_rows()).sum::<usize>(), 50_000);
        assert!(a[..a.len() - 1].iter().all(|b| b.num_rows() == 1000));
        let other = gen::generate(&gen::GenConfig {
            seed: cfg.seed + 1,
            ..cfg.clone()
        });
        assert_ne!(a, other);
        for b in &a {
            let k = b.column(1).as_primitive::<Int64Type>();
            assert!(k.values().iter().all(|&k| (0..100).contains(&k)));
            let v = b.column(2).as_primitive::<Float64Type>();
            assert!(v.values().iter().all(|&v| (0.0..1000.0).contains(&v)));
        }
    }

    #[test]
    fn generator_has_disorder_but_no_late_rows() {
        // 200 s of event time at the default rate is too big for a debug test; slow the rate
        // so that 50,000 rows still cover several windows.
        let cfg = gen::GenConfig {
            rate: 200,
            ..small(10)
        };
        let batches = gen::generate(&cfg);
        let p = window_profile(&batches, WINDOW_MS, WATERMARK_DELAY_MS);
        assert_eq!(p.late_rows, 0);
        assert!(p.windows >= 4, "{p:?}");
        assert!(p.max_open <= 2, "{p:?}");
        let frac = p.out_of_order_rows as f64 / 50_000.0;
        assert!((0.15..0.25).contains(&frac), "{p:?}");
        // the same data with a watermark tighter than the disorder does have late rows
        let tight = window_profile(&batches, 1_000, 0);
        assert!(tight.late_rows > 0);
    }

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs for seed 1234567 (reference implementation by S. Vigna).
        let mut r = gen::SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn both_engines_agree_on_a_small_input() {
        let cfg = gen::GenConfig {
            rate: 500,
            ..small(50)
        };
        let batches = Arc::new(gen::generate(&cfg));
        // One thread, as in the benchmark.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (s, b) = {
            let _serial = PEAK_COUNTER.lock().unwrap_or_else(|e| e.into_inner());
            (
                rt.block_on(run_streaming(&batches)).unwrap(),
                rt.block_on(run_batch(&batches)).unwrap(),
            )
        };
        assert_eq!(s.late_rows, 0);
        assert!(s.peak_bytes > 0 && b.peak_bytes > 0);
        assert_eq!(s.summary.total_count, 50_000);
        let windows = window_profile(&batches, WINDOW_MS, WATERMARK_DELAY_MS).windows;
        assert_eq!(s.summary.groups, windows * 50);
        assert!(
            s.summary.matches(&b.summary),
            "{:?} vs {:?}",
            s.summary,
            b.summary
        );
    }
}
