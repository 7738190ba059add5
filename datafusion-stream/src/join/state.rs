//! The stream-to-stream join state machine, free of async and of DataFusion's plan types so it
//! can be driven step by step (by [`super::exec::StreamJoinStream`], and by tests).
//!
//! ```text
//!  push(side, partition, rows) ──► pending[side][partition]   (rows not yet safe to process)
//!  progress(side, p)           ──► frontier[side]
//!  step():
//!    while the smallest pending row (t, side) is safe (no earlier row can still come):
//!      evict RANGE rows with t' + n < t from both sides   ──► null rows for unmatched outer rows
//!      match it against the other side's stored rows     ──► one output row per match
//!      store it if its side has a window (ROWS n: push out the oldest beyond n + 1 rows)
//!      no window and preserved and unmatched             ──► null row at once
//!    evict RANGE rows that no future row can match       ──► null rows
//!    output progress = min(frontiers, pending rows - 1, pending null rows - 1)
//! ```
//!
//! Order: rows are processed in `(ROWTIME, side, partition, arrival)` order with the left side
//! first on equal ROWTIME. A left row at `t` is safe once both inputs' progress is `>= t - 1`
//! (no row of either side before `t` can still come); a right row at `t` once the left
//! progress is `>= t` (every left row at `t` came first) and the right progress is `>= t - 1`.
//! Stored rows are kept in a `BTreeMap` by that order key, so the `n + 1` latest rows of a
//! ROWS window do not depend on how equal-ROWTIME rows of different partitions interleave.
//!
//! A row that arrives behind what was already processed or promised (possible only from a
//! partition that was idle) is late: dropped and counted, or fails the query, per
//! [`LateRowPolicy`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{exec_err, internal_err, NullEquality, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::{Count, Gauge};

use super::JoinWindow;
use crate::runtime::LateRowPolicy;
use crate::scan::Progress;
use crate::time::{format_millis, Millis, WATERMARK_MAX, WATERMARK_MIN};

/// Index of the left side in per-side arrays.
pub const LEFT: usize = 0;
/// Index of the right side in per-side arrays.
pub const RIGHT: usize = 1;

/// What the join needs to know about one input.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// Its window (`None`: its rows only match when they are processed).
    pub window: Option<JoinWindow>,
    /// An outer join keeps its unmatched rows (LEFT: left, RIGHT: right, FULL: both).
    pub preserved: bool,
    /// Key expressions over the input's rows.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The ROWTIME column of the input's rows.
    pub rowtime: Arc<dyn PhysicalExpr>,
    /// The input's row schema (after its pipeline).
    pub schema: SchemaRef,
}

/// Counters the core updates.
#[derive(Debug, Clone, Default)]
pub struct CoreMetrics {
    /// Rows received per side.
    pub rows: [Count; 2],
    /// Matched pairs emitted.
    pub matches: Count,
    /// Null-extended rows emitted (outer joins).
    pub unmatched: Count,
    /// Late rows dropped.
    pub late_rows: Count,
    /// Rows held in windows (both sides).
    pub stored_rows: Gauge,
    /// Rows waiting until it is their turn (both sides).
    pub pending_rows: Gauge,
}

/// Position of a row in the processing order: (ROWTIME, partition, arrival number).
type OrderKey = (Millis, usize, u64);

/// A join key in row format (`None`: a NULL key, which matches nothing).
type Key = Option<Box<[u8]>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowRef {
    batch: u64,
    row: u32,
}

#[derive(Debug)]
struct PendingRow {
    row: RowRef,
    key: Key,
}

#[derive(Debug)]
struct StoredRow {
    row: RowRef,
    key: Key,
    matched: bool,
}

/// Fixed per-row bookkeeping estimate for memory accounting.
const ROW_OVERHEAD: usize = 96;

#[derive(Debug)]
struct SideState {
    spec: SideSpec,
    batches: HashMap<u64, (RecordBatch, usize)>,
    next_batch: u64,
    next_seq: u64,
    /// Rows not processed yet, in processing order (an input partition need not be sorted:
    /// only its progress is relied on).
    pending: BTreeMap<OrderKey, PendingRow>,
    stored: BTreeMap<OrderKey, StoredRow>,
    index: HashMap<Box<[u8]>, BTreeSet<OrderKey>>,
    /// Unmatched rows in `stored` (for outer-join progress).
    unmatched: usize,
    progress: Progress,
    ended: bool,
    /// No row with a ROWTIME below this is accepted any more.
    floor: Millis,
    bytes: usize,
}

impl SideState {
    fn new(spec: SideSpec) -> Self {
        Self {
            spec,
            batches: HashMap::new(),
            next_batch: 0,
            next_seq: 0,
            pending: BTreeMap::new(),
            stored: BTreeMap::new(),
            index: HashMap::new(),
            unmatched: 0,
            progress: Progress::START,
            ended: false,
            floor: WATERMARK_MIN,
            bytes: 0,
        }
    }

    fn min_pending(&self) -> Option<OrderKey> {
        self.pending.first_key_value().map(|(k, _)| *k)
    }

    fn store(&mut self, order: OrderKey, row: RowRef, key: Key, matched: bool) {
        if let Some(k) = &key {
            self.index.entry(k.clone()).or_default().insert(order);
        }
        if !matched {
            self.unmatched += 1;
        }
        self.stored.insert(order, StoredRow { row, key, matched });
    }

    /// Removes a stored row from the index (its batch is still held: call `release`).
    fn unstore(&mut self, order: &OrderKey, row: &StoredRow) {
        if let Some(k) = &row.key {
            if let Some(set) = self.index.get_mut(k) {
                set.remove(order);
                if set.is_empty() {
                    self.index.remove(k);
                }
            }
        }
        if !row.matched {
            self.unmatched -= 1;
        }
    }

    /// The first ROWTIME at which an unmatched stored row of a RANGE window will be emitted.
    fn next_outer_emission(&self) -> Option<Millis> {
        match self.spec.window {
            Some(JoinWindow::Range(n)) if self.spec.preserved && self.unmatched > 0 => self
                .stored
                .iter()
                .find(|(_, r)| !r.matched)
                .map(|((t, _, _), _)| t.saturating_add(n)),
            _ => None,
        }
    }
}

/// Rows of the output under construction: per side, the batches they come from and, per row,
/// the (batch, row) position or `None` for the null-extended side.
#[derive(Debug)]
struct OutputRows {
    batches: [Vec<RecordBatch>; 2],
    positions: [HashMap<u64, usize>; 2],
    rows: [Vec<Option<(usize, usize)>>; 2],
}

impl OutputRows {
    fn new() -> Self {
        Self {
            batches: [Vec::new(), Vec::new()],
            positions: [HashMap::new(), HashMap::new()],
            rows: [Vec::new(), Vec::new()],
        }
    }

    fn len(&self) -> usize {
        self.rows[LEFT].len()
    }

    fn slot(&mut self, sides: &[SideState; 2], s: usize, r: Option<RowRef>) -> Result<()> {
        let entry = match r {
            None => None,
            Some(r) => {
                let pos = match self.positions[s].get(&r.batch) {
                    Some(&p) => p,
                    None => {
                        let Some((batch, _)) = sides[s].batches.get(&r.batch) else {
                            return internal_err!(
                                "stream join: {} batch {} released while still referenced",
                                side_name(s),
                                r.batch
                            );
                        };
                        self.batches[s].push(batch.clone());
                        let p = self.batches[s].len() - 1;
                        self.positions[s].insert(r.batch, p);
                        p
                    }
                };
                Some((pos, r.row as usize))
            }
        };
        self.rows[s].push(entry);
        Ok(())
    }

    fn push(
        &mut self,
        sides: &[SideState; 2],
        left: Option<RowRef>,
        right: Option<RowRef>,
    ) -> Result<()> {
        self.slot(sides, LEFT, left)?;
        self.slot(sides, RIGHT, right)
    }

    fn build(&self, sides: &[SideState; 2], schema: &SchemaRef) -> Result<RecordBatch> {
        let n = self.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for s in [LEFT, RIGHT] {
            let side_schema = &sides[s].spec.schema;
            for (c, field) in side_schema.fields().iter().enumerate() {
                let null = new_null_array(field.data_type(), 1);
                let mut arrays: Vec<&dyn Array> = self.batches[s]
                    .iter()
                    .map(|b| b.column(c).as_ref())
                    .collect();
                let null_pos = arrays.len();
                arrays.push(null.as_ref());
                let indices: Vec<(usize, usize)> = self.rows[s]
                    .iter()
                    .map(|r| r.unwrap_or((null_pos, 0)))
                    .collect();
                columns.push(if n == 0 {
                    new_null_array(field.data_type(), 0)
                } else {
                    interleave(&arrays, &indices)?
                });
            }
        }
        if columns.len() != schema.fields().len() {
            return internal_err!(
                "stream join: {} columns built for an output of {}",
                columns.len(),
                schema.fields().len()
            );
        }
        // The join schema may differ from the inputs' in nullability and field metadata only.
        let columns = columns
            .into_iter()
            .zip(schema.fields().iter())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

fn side_name(s: usize) -> &'static str {
    if s == LEFT {
        "left"
    } else {
        "right"
    }
}

/// What [`JoinCore::step`] produced: output rows and, after them, the new output progress.
#[derive(Debug, Default)]
pub struct StepOutput {
    /// Output rows in ascending output ROWTIME.
    pub batch: Option<RecordBatch>,
    /// The output progress, when it moved.
    pub progress: Option<Progress>,
}

/// The join state: see the module docs.
#[derive(Debug)]
pub struct JoinCore {
    sides: [SideState; 2],
    converter: Option<RowConverter>,
    key_types: Vec<DataType>,
    null_equality: NullEquality,
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    late_policy: LateRowPolicy,
    metrics: CoreMetrics,
    out: OutputRows,
    sent: Progress,
    finished: bool,
}

impl JoinCore {
    /// A join of `left` and `right`; `filter` is evaluated over the output `schema`.
    pub fn try_new(
        left: SideSpec,
        right: SideSpec,
        null_equality: NullEquality,
        filter: Option<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
        late_policy: LateRowPolicy,
        metrics: CoreMetrics,
    ) -> Result<Self> {
        if left.keys.len() != right.keys.len() {
            return internal_err!(
                "stream join: {} left keys but {} right keys",
                left.keys.len(),
                right.keys.len()
            );
        }
        let key_types = left
            .keys
            .iter()
            .map(|k| k.data_type(&left.schema))
            .collect::<Result<Vec<_>>>()?;
        let converter = if key_types.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                key_types
                    .iter()
                    .map(|t| SortField::new(t.clone()))
                    .collect(),
            )?)
        };
        Ok(Self {
            sides: [SideState::new(left), SideState::new(right)],
            converter,
            key_types,
            null_equality,
            filter,
            schema,
            late_policy,
            metrics,
            out: OutputRows::new(),
            sent: Progress::START,
            finished: false,
        })
    }

    /// Bytes held: retained input batches plus per-row bookkeeping.
    pub fn memory_size(&self) -> usize {
        self.sides.iter().map(|s| s.bytes).sum()
    }

    /// Rows held in windows.
    pub fn stored_rows(&self) -> usize {
        self.sides.iter().map(|s| s.stored.len()).sum()
    }

    /// Rows waiting for their turn.
    pub fn pending_rows(&self) -> usize {
        self.sides.iter().map(|s| s.pending.len()).sum()
    }

    /// True once both inputs ended and everything was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Rows from partition `partition` of input `side`.
    pub fn push(&mut self, side: usize, partition: usize, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.metrics.rows[side].add(n);
        let st = &self.sides[side];
        let times = st.spec.rowtime.evaluate(&batch)?.into_array(n)?;
        let times = cast(&times, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let times = times.as_primitive::<TimestampMillisecondType>().clone();
        let keys = self.keys(side, &batch)?;
        let st = &mut self.sides[side];
        let id = st.next_batch;
        st.next_batch += 1;
        let mut live = 0;
        for (i, key) in keys.into_iter().enumerate() {
            if times.is_null(i) {
                return exec_err!(
                    "stream join: the {} input has a NULL ROWTIME in row {i} of a batch",
                    side_name(side)
                );
            }
            let t = times.value(i);
            if t < st.floor {
                match self.late_policy {
                    LateRowPolicy::Drop => {
                        self.metrics.late_rows.add(1);
                        continue;
                    }
                    LateRowPolicy::Fail => {
                        return exec_err!(
                            "stream join: a {} row with ROWTIME {} arrived after the join had processed or promised everything up to {} (it came from a partition that was idle; late-row policy 'fail')",
                            side_name(side),
                            format_millis(t),
                            format_millis(st.floor.saturating_sub(1))
                        )
                    }
                }
            }
            st.bytes += ROW_OVERHEAD + key.as_ref().map_or(0, |k| k.len());
            let seq = st.next_seq;
            st.next_seq += 1;
            let row = RowRef {
                batch: id,
                row: i as u32,
            };
            st.pending
                .insert((t, partition, seq), PendingRow { row, key });
            live += 1;
        }
        if live > 0 {
            st.bytes += batch.get_array_memory_size();
            st.batches.insert(id, (batch, live));
        }
        self.update_gauges();
        Ok(())
    }

    fn keys(&self, side: usize, batch: &RecordBatch) -> Result<Vec<Key>> {
        let n = batch.num_rows();
        let Some(converter) = &self.converter else {
            // No equality keys: every row is a candidate for every other row.
            return Ok(vec![Some(Box::from(&[][..])); n]);
        };
        let arrays = self.sides[side]
            .spec
            .keys
            .iter()
            .zip(self.key_types.iter())
            .map(|(k, t)| {
                let a = k.evaluate(batch)?.into_array(n)?;
                Ok(if a.data_type() == t { a } else { cast(&a, t)? })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let rows = converter.convert_columns(&arrays)?;
        let nulls_match = self.null_equality == NullEquality::NullEqualsNull;
        Ok((0..n)
            .map(|i| {
                if !nulls_match && arrays.iter().any(|a| a.is_null(i)) {
                    None
                } else {
                    Some(Box::from(rows.row(i).as_ref()))
                }
            })
            .collect())
    }

    /// The combined progress of input `side` moved.
    pub fn progress(&mut self, side: usize, p: Progress) {
        let st = &mut self.sides[side];
        if p == Progress::END {
            st.ended = true;
        }
        st.progress = p;
    }

    /// Input `side` ended.
    pub fn end(&mut self, side: usize) {
        self.sides[side].ended = true;
        self.sides[side].progress = Progress::END;
    }

    /// How far input `side` is known to be: no row with a ROWTIME `<=` this will follow. An
    /// input whose partitions are all idle follows the other (live, active) input.
    fn frontier(&self, side: usize) -> Millis {
        let me = &self.sides[side];
        let other = &self.sides[1 - side];
        if me.ended {
            return WATERMARK_MAX;
        }
        if me.progress.idle && !other.ended && !other.progress.idle {
            return me.progress.rowtime.max(other.progress.rowtime);
        }
        me.progress.rowtime
    }

    fn safe(&self, side: usize, t: Millis) -> bool {
        let (l, r) = (self.frontier(LEFT), self.frontier(RIGHT));
        let before = t.saturating_sub(1);
        if side == LEFT {
            l >= before && r >= before
        } else {
            l >= t && r >= before
        }
    }

    /// No row that is still to be processed has a ROWTIME below this.
    fn lower_bound(&self) -> Millis {
        let mut b = self
            .frontier(LEFT)
            .min(self.frontier(RIGHT))
            .saturating_add(1);
        for s in &self.sides {
            if let Some((t, _, _)) = s.min_pending() {
                b = b.min(t);
            }
        }
        b
    }

    /// Processes every row that is safe, evicts what can no longer match, and returns the
    /// output rows and progress.
    pub fn step(&mut self) -> Result<StepOutput> {
        loop {
            let l = self.sides[LEFT].min_pending();
            let r = self.sides[RIGHT].min_pending();
            let side = match (l, r) {
                (None, None) => break,
                (Some(_), None) => LEFT,
                (None, Some(_)) => RIGHT,
                (Some(l), Some(r)) => {
                    if l.0 <= r.0 {
                        LEFT
                    } else {
                        RIGHT
                    }
                }
            };
            let Some((order, row)) = self.sides[side].pending.pop_first() else {
                break;
            };
            if !self.safe(side, order.0) {
                self.sides[side].pending.insert(order, row);
                break;
            }
            self.process(side, order, row)?;
        }
        let bound = self.lower_bound();
        self.evict_range(bound)?;
        for s in self.sides.iter_mut() {
            s.floor = s.floor.max(bound);
        }
        let both_ended = self.sides.iter().all(|s| s.ended);
        if both_ended && self.pending_rows() == 0 {
            self.flush_rows_windows()?;
        }
        let mut out = StepOutput::default();
        if self.out.len() > 0 {
            let rows = std::mem::replace(&mut self.out, OutputRows::new());
            out.batch = Some(rows.build(&self.sides, &self.schema)?);
        }
        out.progress = self.output_progress(both_ended);
        self.release_emitted();
        self.update_gauges();
        Ok(out)
    }

    fn output_progress(&mut self, both_ended: bool) -> Option<Progress> {
        let next = if both_ended && self.pending_rows() == 0 {
            self.finished = true;
            Progress::END
        } else {
            let mut rowtime = self.frontier(LEFT).min(self.frontier(RIGHT));
            for s in &self.sides {
                if let Some((t, _, _)) = s.min_pending() {
                    rowtime = rowtime.min(t.saturating_sub(1));
                }
                if let Some(t) = s.next_outer_emission() {
                    rowtime = rowtime.min(t.saturating_sub(1));
                }
            }
            let quiet = self.pending_rows() == 0
                && self
                    .sides
                    .iter()
                    .all(|s| !s.spec.preserved || s.unmatched == 0);
            let event_time = if quiet {
                self.sides
                    .iter()
                    .map(|s| {
                        if s.ended {
                            WATERMARK_MAX
                        } else {
                            s.progress.event_time
                        }
                    })
                    .min()
                    .unwrap_or(WATERMARK_MIN)
            } else {
                self.sent.event_time
            };
            Progress {
                rowtime: rowtime.max(self.sent.rowtime),
                event_time: event_time.max(self.sent.event_time),
                idle: self.sides.iter().all(|s| s.progress.idle || s.ended),
            }
        };
        if next == self.sent {
            return None;
        }
        self.sent = next;
        if next.rowtime != WATERMARK_MIN {
            for s in self.sides.iter_mut() {
                s.floor = s.floor.max(next.rowtime.saturating_add(1));
            }
        }
        Some(next)
    }

    /// Batches referenced only by emitted rows were kept for the output: let them go now.
    fn release_emitted(&mut self) {
        for s in self.sides.iter_mut() {
            s.batches.retain(|_, (_, live)| *live > 0);
        }
    }

    fn update_gauges(&self) {
        self.metrics.stored_rows.set(self.stored_rows());
        self.metrics.pending_rows.set(self.pending_rows());
    }

    /// Drops a row: frees its share of its batch, but keeps the batch itself until the output
    /// under construction is built (it may reference the row).
    fn drop_row(&mut self, side: usize, r: RowRef, key: &Key) {
        let st = &mut self.sides[side];
        let key_len = key.as_ref().map_or(0, |k| k.len());
        st.bytes = st.bytes.saturating_sub(ROW_OVERHEAD + key_len);
        if let Some((batch, live)) = st.batches.get_mut(&r.batch) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                st.bytes = st.bytes.saturating_sub(batch.get_array_memory_size());
            }
        }
    }

    fn emit(&mut self, left: Option<RowRef>, right: Option<RowRef>) -> Result<()> {
        let sides = &self.sides;
        self.out.push(sides, left, right)
    }

    fn emit_unmatched(&mut self, side: usize, r: RowRef) -> Result<()> {
        self.metrics.unmatched.add(1);
        if side == LEFT {
            self.emit(Some(r), None)
        } else {
            self.emit(None, Some(r))
        }
    }

    /// Evicts the RANGE-window rows that no row at `now` or later can match, emitting the
    /// unmatched ones of a preserved side at `t + n`, in that order over both sides.
    fn evict_range(&mut self, now: Millis) -> Result<()> {
        let mut evicted: Vec<(Millis, usize, OrderKey, StoredRow)> = Vec::new();
        for s in [LEFT, RIGHT] {
            let Some(JoinWindow::Range(n)) = self.sides[s].spec.window else {
                continue;
            };
            while let Some((&order, _)) = self.sides[s].stored.first_key_value() {
                if order.0.saturating_add(n) >= now {
                    break;
                }
                let st = &mut self.sides[s];
                let Some((order, row)) = st.stored.pop_first() else {
                    break;
                };
                st.unstore(&order, &row);
                evicted.push((order.0.saturating_add(n), s, order, row));
            }
        }
        if evicted.is_empty() {
            return Ok(());
        }
        evicted.sort_by_key(|(at, s, order, _)| (*at, *s, *order));
        for (_, s, _, row) in evicted {
            if self.sides[s].spec.preserved && !row.matched {
                self.emit_unmatched(s, row.row)?;
            }
            self.drop_row(s, row.row, &row.key);
        }
        Ok(())
    }

    /// At the end of both inputs: the rows still held in ROWS windows can no longer match.
    fn flush_rows_windows(&mut self) -> Result<()> {
        let mut rest: Vec<(OrderKey, usize, StoredRow)> = Vec::new();
        for s in [LEFT, RIGHT] {
            let st = &mut self.sides[s];
            let stored = std::mem::take(&mut st.stored);
            st.index.clear();
            st.unmatched = 0;
            rest.extend(stored.into_iter().map(|(o, r)| (o, s, r)));
        }
        rest.sort_by_key(|(o, s, _)| (o.0, *s, *o));
        for (_, s, row) in rest {
            if self.sides[s].spec.preserved && !row.matched {
                self.emit_unmatched(s, row.row)?;
            }
            self.drop_row(s, row.row, &row.key);
        }
        Ok(())
    }

    /// Processes one row: see the module docs.
    fn process(&mut self, side: usize, order: OrderKey, row: PendingRow) -> Result<()> {
        let now = order.0;
        self.evict_range(now)?;
        let other = 1 - side;
        // Candidates: the other side's stored rows with the same key.
        let candidates: Vec<OrderKey> = match &row.key {
            None => Vec::new(),
            Some(k) => self.sides[other]
                .index
                .get(k)
                .map(|set| set.iter().copied().collect())
                .unwrap_or_default(),
        };
        let matches = if candidates.is_empty() {
            candidates
        } else {
            self.apply_filter(side, row.row, candidates)?
        };
        let matched = !matches.is_empty();
        for o in &matches {
            let Some(stored) = self.sides[other].stored.get_mut(o) else {
                return internal_err!("stream join: stored row vanished");
            };
            if !stored.matched {
                stored.matched = true;
                self.sides[other].unmatched -= 1;
            }
            let o = stored.row;
            self.metrics.matches.add(1);
            if side == LEFT {
                self.emit(Some(row.row), Some(o))?;
            } else {
                self.emit(Some(o), Some(row.row))?;
            }
        }
        // Nothing before this row can come any more on either side; on the other side, nothing
        // at its ROWTIME either when this is a right row.
        let floor_other = if side == LEFT {
            now
        } else {
            now.saturating_add(1)
        };
        self.sides[side].floor = self.sides[side].floor.max(now);
        self.sides[other].floor = self.sides[other].floor.max(floor_other);
        match self.sides[side].spec.window {
            Some(JoinWindow::Range(_)) => {
                self.sides[side].store(order, row.row, row.key, matched);
            }
            Some(JoinWindow::Rows(n)) => {
                self.sides[side].store(order, row.row, row.key, matched);
                while self.sides[side].stored.len() as u64 > n.saturating_add(1) {
                    let st = &mut self.sides[side];
                    let Some((old_order, old)) = st.stored.pop_first() else {
                        break;
                    };
                    st.unstore(&old_order, &old);
                    if st.spec.preserved && !old.matched {
                        self.emit_unmatched(side, old.row)?;
                    }
                    self.drop_row(side, old.row, &old.key);
                }
            }
            None => {
                if self.sides[side].spec.preserved && !matched {
                    self.emit_unmatched(side, row.row)?;
                }
                self.drop_row(side, row.row, &row.key);
            }
        }
        Ok(())
    }

    /// The candidates that pass the residual filter (all of them when there is none).
    fn apply_filter(
        &mut self,
        side: usize,
        this: RowRef,
        candidates: Vec<OrderKey>,
    ) -> Result<Vec<OrderKey>> {
        let Some(filter) = self.filter.clone() else {
            return Ok(candidates);
        };
        let other = 1 - side;
        let mut rows = OutputRows::new();
        for order in &candidates {
            let Some(stored) = self.sides[other].stored.get(order) else {
                return internal_err!("stream join: stored row vanished");
            };
            let o = stored.row;
            if side == LEFT {
                rows.push(&self.sides, Some(this), Some(o))?;
            } else {
                rows.push(&self.sides, Some(o), Some(this))?;
            }
        }
        let batch = rows.build(&self.sides, &self.schema)?;
        let mask = filter.evaluate(&batch)?.into_array(batch.num_rows())?;
        let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
            return exec_err!(
                "stream join: the ON condition {filter} is not a boolean, it is {}",
                mask.data_type()
            );
        };
        Ok(candidates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
            .map(|(_, o)| o)
            .collect())
    }
}
