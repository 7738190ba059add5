//! The state of sliding windows and the per-row evaluation (see [`super`] for the semantics).
//!
//! ```text
//!  OverState
//!   └─ one GroupState per PARTITION BY list
//!       ├─ partitions: HashMap<key in Arrow row format, Partition>
//!       │     Partition ── rows: VecDeque<Row{seq, ROWTIME, argument values}>  (the rows still
//!       │               │        inside the widest bounded frame; none if all are UNBOUNDED)
//!       │               └─ per window expression, one of
//!       │                    Acc{accumulator, start}  UNBOUNDED (update only) or sliding
//!       │                                             (update new row, retract rows that left)
//!       │                    Frame{start}             recompute a fresh accumulator over the
//!       │                                             frame, or scan it (LAG, NTH_VALUE, ...)
//!       │                    Head / Tail / Count      UNBOUNDED window functions: a few values
//!       └─ expiry: (ROWTIME, key) in processing order, when every frame is RANGE: partitions
//!                  whose last row fell out of every future frame are dropped on progress
//! ```
//!
//! A row's window is decided when it is processed: the frame start of each expression only
//! moves forward (rows leave in arrival order), so the accumulators see rows retracted in the
//! order they were added, which sliding accumulators such as MIN/MAX rely on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{exec_err, internal_err, Result, ScalarValue};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;

use super::FrameStart;
use crate::time::Millis;

/// What one window expression computes.
#[derive(Debug, Clone)]
pub enum OverFunction {
    /// An aggregate function (any UDAF).
    Aggregate(Arc<AggregateFunctionExpr>),
    /// `LAG(value, offset, default)`: the value `offset` rows before the current row inside
    /// the window (skipping NULL values with IGNORE NULLS), else `default` (evaluated on the
    /// current row; NULL when absent).
    Lag {
        /// Rows back (0 is the current row).
        offset: usize,
        /// Evaluated on the current row when there is no such row.
        default: Option<Arc<dyn PhysicalExpr>>,
        /// IGNORE NULLS.
        ignore_nulls: bool,
    },
    /// `NTH_VALUE(value, n)` (`FIRST_VALUE` is `n = 1`, `LAST_VALUE` is `n = -1`): the n-th row of
    /// the window from its first row (n > 0) or from the current row backwards (n < 0).
    NthValue {
        /// Position, 1-based; negative counts from the last row.
        n: i64,
        /// IGNORE NULLS: count only rows whose value is not NULL.
        ignore_nulls: bool,
    },
    /// `ROW_NUMBER()`: the position of the current row in its window (its number of rows).
    RowNumber,
}

/// One window expression, physically.
#[derive(Debug, Clone)]
pub struct OverExpr {
    /// Display name (the output column).
    pub name: String,
    /// What it computes.
    pub function: OverFunction,
    /// Arguments evaluated on each input row (an aggregate's inputs, or the window function's
    /// value; empty for ROW_NUMBER).
    pub args: Vec<Arc<dyn PhysicalExpr>>,
    /// The frame.
    pub frame: FrameStart,
    /// The output field.
    pub field: FieldRef,
    /// Position among the window columns of the output.
    pub output: usize,
}

/// Window expressions that share a PARTITION BY list.
#[derive(Debug, Clone)]
pub struct OverGroup {
    /// PARTITION BY expressions (empty: one partition).
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The expressions.
    pub exprs: Vec<OverExpr>,
}

/// How an expression keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Aggregate over UNBOUNDED PRECEDING: one accumulator, update only.
    Running,
    /// Aggregate whose accumulator can retract: update the new row, retract rows that left.
    Sliding,
    /// Aggregate whose accumulator cannot retract: a fresh accumulator over the frame's rows.
    Recompute,
    /// Window function over a bounded frame: look at the frame's rows.
    Scan,
    /// Window function over UNBOUNDED PRECEDING: a few values.
    Small,
}

#[derive(Debug)]
struct Row {
    seq: u64,
    time: Millis,
    values: Vec<ScalarValue>,
}

impl Row {
    fn size(&self) -> usize {
        std::mem::size_of::<Row>() + self.values.iter().map(|v| v.size()).sum::<usize>()
    }
}

enum ExprState {
    Acc {
        acc: Box<dyn Accumulator>,
        start: u64,
    },
    Frame {
        start: u64,
    },
    Head(Vec<ScalarValue>),
    Tail(VecDeque<ScalarValue>),
    Count(u64),
}

impl ExprState {
    fn size(&self) -> usize {
        std::mem::size_of::<ExprState>()
            + match self {
                ExprState::Acc { acc, .. } => acc.size(),
                ExprState::Head(v) => v.iter().map(|s| s.size()).sum(),
                ExprState::Tail(v) => v.iter().map(|s| s.size()).sum(),
                ExprState::Frame { .. } | ExprState::Count(_) => 0,
            }
    }

    fn start(&self) -> Option<u64> {
        match self {
            ExprState::Acc { start, .. } | ExprState::Frame { start } => Some(*start),
            _ => None,
        }
    }
}

struct Partition {
    rows: VecDeque<Row>,
    next_seq: u64,
    last_time: Millis,
    states: Vec<ExprState>,
    rows_bytes: usize,
    /// Bytes last accounted for this partition (key included).
    bytes: usize,
}

impl Partition {
    fn index(&self, seq: u64) -> usize {
        let front = self.rows.front().map(|r| r.seq).unwrap_or(seq);
        (seq - front) as usize
    }

    fn size(&self, key_len: usize) -> usize {
        std::mem::size_of::<Partition>()
            + key_len
            + self.rows_bytes
            + self.states.iter().map(|s| s.size()).sum::<usize>()
    }
}

struct GroupState {
    spec: OverGroup,
    modes: Vec<Mode>,
    /// Per expression: where its argument values start in a buffered row (bounded frames).
    offsets: Vec<Option<usize>>,
    /// Values per buffered row; rows are kept when any frame is bounded.
    keeps_rows: bool,
    converter: Option<RowConverter>,
    partitions: HashMap<Box<[u8]>, Partition>,
    /// The widest RANGE, when every frame is a RANGE: partitions expire by ROWTIME progress.
    max_range: Option<Millis>,
    expiry: VecDeque<(Millis, Box<[u8]>)>,
    expiry_bytes: usize,
}

/// The state of every sliding window of one operator.
pub struct OverState {
    groups: Vec<GroupState>,
    outputs: usize,
    bytes: usize,
}

impl std::fmt::Debug for OverState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverState")
            .field("partitions", &self.partitions())
            .field("bytes", &self.bytes)
            .finish()
    }
}

fn new_state(e: &OverExpr, mode: Mode) -> Result<ExprState> {
    Ok(match (mode, &e.function) {
        (Mode::Running, OverFunction::Aggregate(a)) => ExprState::Acc {
            acc: a.create_accumulator()?,
            start: 0,
        },
        (Mode::Sliding, OverFunction::Aggregate(a)) => ExprState::Acc {
            acc: a.create_sliding_accumulator()?,
            start: 0,
        },
        (Mode::Recompute | Mode::Scan, _) => ExprState::Frame { start: 0 },
        (Mode::Small, OverFunction::Lag { .. }) => ExprState::Tail(VecDeque::new()),
        (Mode::Small, OverFunction::NthValue { n, .. }) if *n < 0 => {
            ExprState::Tail(VecDeque::new())
        }
        (Mode::Small, OverFunction::NthValue { .. }) => ExprState::Head(Vec::new()),
        (Mode::Small, OverFunction::RowNumber) => ExprState::Count(0),
        (mode, f) => return internal_err!("sliding window: no {mode:?} state for {f:?}"),
    })
}

/// Arrays of the argument values of rows `range` (buffered rows), one per argument.
fn frame_arrays(
    rows: &VecDeque<Row>,
    range: std::ops::Range<usize>,
    offset: usize,
    nargs: usize,
) -> Result<Vec<ArrayRef>> {
    (0..nargs)
        .map(|j| {
            ScalarValue::iter_to_array(
                rows.range(range.clone())
                    .map(|r| r.values[offset + j].clone()),
            )
        })
        .collect()
}

impl GroupState {
    fn try_new(spec: OverGroup) -> Result<Self> {
        let mut modes = Vec::with_capacity(spec.exprs.len());
        let mut offsets = Vec::with_capacity(spec.exprs.len());
        let mut width = 0;
        for e in &spec.exprs {
            let bounded = e.frame.is_bounded();
            let mode = match (&e.function, bounded) {
                (OverFunction::Aggregate(_), false) => Mode::Running,
                // DataFusion refuses a sliding accumulator for aggregates that cannot retract;
                // those are recomputed over the frame (their real errors surface then).
                (OverFunction::Aggregate(a), true) => match a.create_sliding_accumulator() {
                    Ok(acc) if acc.supports_retract_batch() => Mode::Sliding,
                    _ => Mode::Recompute,
                },
                (_, true) => Mode::Scan,
                (_, false) => Mode::Small,
            };
            modes.push(mode);
            if bounded {
                offsets.push(Some(width));
                width += e.args.len();
            } else {
                offsets.push(None);
            }
        }
        let keeps_rows = spec.exprs.iter().any(|e| e.frame.is_bounded());
        let max_range = spec
            .exprs
            .iter()
            .map(|e| match e.frame {
                FrameStart::Range(ms) => Some(ms),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max());
        Ok(Self {
            spec,
            modes,
            offsets,
            keeps_rows,
            converter: None,
            partitions: HashMap::new(),
            max_range,
            expiry: VecDeque::new(),
            expiry_bytes: 0,
        })
    }

    fn new_partition(&self) -> Result<Partition> {
        let states = self
            .spec
            .exprs
            .iter()
            .zip(&self.modes)
            .map(|(e, m)| new_state(e, *m))
            .collect::<Result<Vec<_>>>()?;
        Ok(Partition {
            rows: VecDeque::new(),
            next_seq: 0,
            last_time: Millis::MIN,
            states,
            rows_bytes: 0,
            bytes: 0,
        })
    }

    /// Partition keys of every row (in Arrow's row format; NULLs are equal).
    fn keys(&mut self, batch: &RecordBatch) -> Result<Option<datafusion::arrow::row::Rows>> {
        if self.spec.partition_by.is_empty() {
            return Ok(None);
        }
        let n = batch.num_rows();
        let arrays = self
            .spec
            .partition_by
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<_>>>()?;
        if self.converter.is_none() {
            let fields = arrays
                .iter()
                .map(|a| SortField::new(a.data_type().clone()))
                .collect();
            self.converter = Some(RowConverter::new(fields)?);
        }
        let Some(converter) = self.converter.as_ref() else {
            return internal_err!("sliding window: partition key converter missing");
        };
        Ok(Some(converter.convert_columns(&arrays)?))
    }
}

/// Evaluates a window function over the buffered rows `[first, last]` of a bounded frame.
fn scan(
    function: &OverFunction,
    rows: &VecDeque<Row>,
    first: usize,
    last: usize,
    offset: Option<usize>,
    default: impl FnOnce() -> Result<ScalarValue>,
    null: &ScalarValue,
) -> Result<ScalarValue> {
    let value = |i: usize| -> &ScalarValue {
        match offset {
            Some(o) => &rows[i].values[o],
            None => null,
        }
    };
    Ok(match function {
        OverFunction::RowNumber => ScalarValue::UInt64(Some((last - first + 1) as u64)),
        OverFunction::Lag {
            offset: back,
            ignore_nulls,
            ..
        } => {
            if *back == 0 {
                return Ok(value(last).clone());
            }
            let mut seen = 0;
            for i in (first..last).rev() {
                let v = value(i);
                if *ignore_nulls && v.is_null() {
                    continue;
                }
                seen += 1;
                if seen == *back {
                    return Ok(v.clone());
                }
            }
            default()?
        }
        OverFunction::NthValue { n, ignore_nulls } => {
            let wanted = n.unsigned_abs() as usize;
            let mut seen = 0;
            let mut pick = |i: usize| -> Option<ScalarValue> {
                let v = value(i);
                if *ignore_nulls && v.is_null() {
                    return None;
                }
                seen += 1;
                (seen == wanted).then(|| v.clone())
            };
            let found = if *n > 0 {
                (first..=last).find_map(&mut pick)
            } else {
                (first..=last).rev().find_map(&mut pick)
            };
            found.unwrap_or_else(|| null.clone())
        }
        OverFunction::Aggregate(_) => {
            return internal_err!("sliding window: an aggregate is not scanned")
        }
    })
}

impl OverState {
    /// Empty state for the given windows.
    pub fn try_new(groups: &[OverGroup]) -> Result<Self> {
        let outputs = groups.iter().map(|g| g.exprs.len()).sum();
        Ok(Self {
            groups: groups
                .iter()
                .cloned()
                .map(GroupState::try_new)
                .collect::<Result<Vec<_>>>()?,
            outputs,
            bytes: 0,
        })
    }

    /// Bytes of state.
    pub fn size(&self) -> usize {
        self.bytes
    }

    /// Number of partition keys with state.
    pub fn partitions(&self) -> usize {
        self.groups.iter().map(|g| g.partitions.len()).sum()
    }

    /// Processes the rows of `batch` in order (`times`: their ROWTIME, when the input has one)
    /// and returns one column per window expression, in output order.
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        times: Option<&[Millis]>,
    ) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.outputs];
        for g in &mut self.groups {
            let keys = g.keys(batch)?;
            let args = g
                .spec
                .exprs
                .iter()
                .map(|e| {
                    e.args
                        .iter()
                        .map(|a| a.evaluate(batch)?.into_array(n))
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            let defaults = g
                .spec
                .exprs
                .iter()
                .map(|e| match &e.function {
                    OverFunction::Lag {
                        default: Some(d), ..
                    } => d.evaluate(batch)?.into_array(n).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>>>()?;
            let nulls = g
                .spec
                .exprs
                .iter()
                .map(|e| ScalarValue::try_from(e.field.data_type()))
                .collect::<Result<Vec<_>>>()?;
            let mut out: Vec<Vec<ScalarValue>> =
                g.spec.exprs.iter().map(|_| Vec::with_capacity(n)).collect();
            for i in 0..n {
                let key: &[u8] = match &keys {
                    Some(k) => k.row(i).data(),
                    None => &[],
                };
                let t = times.map(|t| t[i]).unwrap_or(0);
                if !g.partitions.contains_key(key) {
                    let p = g.new_partition()?;
                    g.partitions.insert(key.into(), p);
                }
                let GroupState {
                    spec,
                    modes,
                    offsets,
                    keeps_rows,
                    partitions,
                    max_range,
                    expiry,
                    expiry_bytes,
                    ..
                } = g;
                let Some(p) = partitions.get_mut(key) else {
                    return internal_err!("sliding window: partition vanished");
                };
                if max_range.is_some() && p.last_time != t {
                    expiry.push_back((t, key.into()));
                    *expiry_bytes += key.len() + std::mem::size_of::<(Millis, Box<[u8]>)>();
                }
                p.last_time = t;
                let seq = p.next_seq;
                p.next_seq += 1;
                if *keeps_rows {
                    let mut values = Vec::new();
                    for (k, off) in offsets.iter().enumerate() {
                        if off.is_some() {
                            for a in &args[k] {
                                values.push(ScalarValue::try_from_array(a, i)?);
                            }
                        }
                    }
                    let row = Row {
                        seq,
                        time: t,
                        values,
                    };
                    p.rows_bytes += row.size();
                    p.rows.push_back(row);
                }
                let last = p.index(seq);
                for (k, e) in spec.exprs.iter().enumerate() {
                    let nargs = e.args.len();
                    let start = p.states[k].start().unwrap_or(0);
                    let new_start = match e.frame {
                        FrameStart::Unbounded => start,
                        FrameStart::Rows(back) => start.max(seq.saturating_sub(back)),
                        FrameStart::Range(ms) => {
                            let lo = t.saturating_sub(ms);
                            let mut s = start;
                            while s < seq && p.rows[p.index(s)].time < lo {
                                s += 1;
                            }
                            s
                        }
                    };
                    let first = if e.frame.is_bounded() {
                        p.index(new_start)
                    } else {
                        0
                    };
                    let value = match (&mut p.states[k], modes[k]) {
                        (ExprState::Acc { acc, start }, Mode::Running) => {
                            let slice: Vec<ArrayRef> =
                                args[k].iter().map(|a| a.slice(i, 1)).collect();
                            acc.update_batch(&slice)?;
                            *start = new_start;
                            acc.evaluate()?
                        }
                        (ExprState::Acc { acc, start }, _) => {
                            let slice: Vec<ArrayRef> =
                                args[k].iter().map(|a| a.slice(i, 1)).collect();
                            acc.update_batch(&slice)?;
                            if new_start > *start {
                                let Some(off) = offsets[k] else {
                                    return internal_err!("sliding window: rows not kept");
                                };
                                let from = p.rows.front().map(|r| r.seq).unwrap_or(seq);
                                let leaving = frame_arrays(
                                    &p.rows,
                                    (*start - from) as usize..(new_start - from) as usize,
                                    off,
                                    nargs,
                                )?;
                                acc.retract_batch(&leaving)?;
                            }
                            *start = new_start;
                            acc.evaluate()?
                        }
                        (ExprState::Frame { start }, Mode::Recompute) => {
                            *start = new_start;
                            let (Some(off), OverFunction::Aggregate(a)) = (offsets[k], &e.function)
                            else {
                                return internal_err!("sliding window: recompute without rows");
                            };
                            let mut acc = a.create_accumulator()?;
                            acc.update_batch(&frame_arrays(&p.rows, first..last + 1, off, nargs)?)?;
                            acc.evaluate()?
                        }
                        (ExprState::Frame { start }, _) => {
                            *start = new_start;
                            let value_offset = offsets[k].filter(|_| nargs > 0);
                            scan(
                                &e.function,
                                &p.rows,
                                first,
                                last,
                                value_offset,
                                || match &defaults[k] {
                                    Some(d) => ScalarValue::try_from_array(d, i),
                                    None => Ok(nulls[k].clone()),
                                },
                                &nulls[k],
                            )?
                        }
                        (ExprState::Head(values), _) => {
                            let (n, ignore) = match &e.function {
                                OverFunction::NthValue { n, ignore_nulls } => (*n, *ignore_nulls),
                                _ => return internal_err!("sliding window: head state"),
                            };
                            let v = ScalarValue::try_from_array(&args[k][0], i)?;
                            if values.len() < n as usize && !(ignore && v.is_null()) {
                                values.push(v);
                            }
                            values
                                .get(n as usize - 1)
                                .cloned()
                                .unwrap_or_else(|| nulls[k].clone())
                        }
                        (ExprState::Tail(values), _) => {
                            let v = ScalarValue::try_from_array(&args[k][0], i)?;
                            match &e.function {
                                OverFunction::Lag {
                                    offset: back,
                                    ignore_nulls,
                                    ..
                                } => {
                                    let back = *back;
                                    let result = if back == 0 {
                                        v.clone()
                                    } else if values.len() >= back {
                                        values[values.len() - back].clone()
                                    } else {
                                        match &defaults[k] {
                                            Some(d) => ScalarValue::try_from_array(d, i)?,
                                            None => nulls[k].clone(),
                                        }
                                    };
                                    if back > 0 && !(*ignore_nulls && v.is_null()) {
                                        values.push_back(v);
                                        while values.len() > back {
                                            values.pop_front();
                                        }
                                    }
                                    result
                                }
                                OverFunction::NthValue { n, ignore_nulls } => {
                                    let want = n.unsigned_abs() as usize;
                                    if !(*ignore_nulls && v.is_null()) {
                                        values.push_back(v);
                                        while values.len() > want {
                                            values.pop_front();
                                        }
                                    }
                                    if values.len() == want {
                                        values[0].clone()
                                    } else {
                                        nulls[k].clone()
                                    }
                                }
                                _ => return internal_err!("sliding window: tail state"),
                            }
                        }
                        (ExprState::Count(c), _) => {
                            *c += 1;
                            ScalarValue::UInt64(Some(*c))
                        }
                    };
                    let value = if value.data_type() != *e.field.data_type() {
                        value.cast_to(e.field.data_type())?
                    } else {
                        value
                    };
                    out[k].push(value);
                }
                // Rows before every frame start are no longer needed.
                if *keeps_rows {
                    let min_start = p
                        .states
                        .iter()
                        .zip(spec.exprs.iter())
                        .filter(|(_, e)| e.frame.is_bounded())
                        .filter_map(|(s, _)| s.start())
                        .min()
                        .unwrap_or(seq);
                    while p.rows.front().is_some_and(|r| r.seq < min_start) {
                        if let Some(r) = p.rows.pop_front() {
                            p.rows_bytes -= r.size();
                        }
                    }
                }
                let size = p.size(key.len());
                self.bytes = self.bytes - p.bytes + size;
                p.bytes = size;
            }
            for (e, values) in g.spec.exprs.iter().zip(out) {
                columns[e.output] = Some(if values.is_empty() {
                    datafusion::arrow::array::new_empty_array(e.field.data_type())
                } else {
                    ScalarValue::iter_to_array(values)?
                });
            }
        }
        columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| match c {
                Some(c) => Ok(c),
                None => exec_err!("sliding window: no value for window column {i}"),
            })
            .collect()
    }

    /// ROWTIME progress: no row with ROWTIME <= `rowtime` follows. Drops the partitions whose
    /// rows are all out of every future RANGE frame.
    pub fn expire(&mut self, rowtime: Millis) {
        for g in &mut self.groups {
            let Some(max_range) = g.max_range else {
                continue;
            };
            // A future row has ROWTIME >= rowtime + 1; its frame starts at that - max_range.
            let cutoff = rowtime.saturating_add(1).saturating_sub(max_range);
            while g.expiry.front().is_some_and(|(t, _)| *t < cutoff) {
                let Some((_, key)) = g.expiry.pop_front() else {
                    break;
                };
                g.expiry_bytes -= key.len() + std::mem::size_of::<(Millis, Box<[u8]>)>();
                if g.partitions.get(&key).is_some_and(|p| p.last_time < cutoff) {
                    if let Some(p) = g.partitions.remove(&key) {
                        self.bytes -= p.bytes;
                    }
                }
            }
        }
    }

    /// Bytes of state including the expiry queues.
    pub fn total_size(&self) -> usize {
        self.bytes + self.groups.iter().map(|g| g.expiry_bytes).sum::<usize>()
    }
}
