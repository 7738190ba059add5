//! The join core against a brute-force evaluation of the same semantics, over random inputs,
//! random interleavings of the partitions of both sides and random polling.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{NullEquality, ScalarValue};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;

use super::state::{CoreMetrics, JoinCore, SideSpec, LEFT, RIGHT};
use super::JoinWindow;
use crate::runtime::LateRowPolicy;
use crate::scan::Progress;
use crate::time::Millis;

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    key: Option<i64>,
    t: Millis,
    partition: usize,
    pos: usize,
}

impl Row {
    fn order(&self) -> (Millis, usize, usize) {
        (self.t, self.partition, self.pos)
    }
}

fn side_schema(prefix: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(format!("{prefix}_id"), DataType::Int64, false),
        Field::new(format!("{prefix}_k"), DataType::Int64, true),
        Field::new(
            format!("{prefix}_rowtime"),
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

fn batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::clone(schema),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.id))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.key))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.t),
            )),
        ],
    )
    .unwrap()
}

fn gen_side(rng: &mut Rng, partitions: usize, rows: usize, id_base: i64) -> Vec<Vec<Row>> {
    let mut out = vec![Vec::new(); partitions];
    let mut t = vec![0 as Millis; partitions];
    for i in 0..rows {
        let p = rng.below(partitions as u64) as usize;
        t[p] += rng.below(4) as Millis;
        let key = if rng.below(10) == 0 {
            None
        } else {
            Some(rng.below(3) as i64)
        };
        let pos = out[p].len();
        out[p].push(Row {
            id: id_base + i as i64,
            key,
            t: t[p],
            partition: p,
            pos,
        });
    }
    out
}

fn filter_passes(l: &Row, r: &Row) -> bool {
    (l.id + r.id) % 3 != 0
}

/// `(left id, right id)` → emission time (`Millis::MAX`: flushed at the end).
type Expected = Vec<((Option<i64>, Option<i64>), Millis)>;

/// The semantics of the module docs, evaluated pair by pair.
fn brute_force(
    sides: [&[Row]; 2],
    windows: [Option<JoinWindow>; 2],
    preserved: [bool; 2],
    with_filter: bool,
) -> Expected {
    let sorted: Vec<Vec<&Row>> = sides
        .iter()
        .map(|rows| {
            let mut v: Vec<&Row> = rows.iter().collect();
            v.sort_by_key(|r| r.order());
            v
        })
        .collect();
    // Is `stored` (of side s) held in its window when the other side's row at `now` is
    // processed? Rows of s processed before it: t <= now for the left side, t < now for the
    // right side.
    let held = |s: usize, stored: &Row, now: Millis| -> bool {
        let before = |r: &Row| if s == LEFT { r.t <= now } else { r.t < now };
        if !before(stored) {
            return false;
        }
        match windows[s] {
            None => false,
            Some(JoinWindow::Range(n)) => stored.t + n >= now,
            Some(JoinWindow::Rows(n)) => {
                let later = sorted[s]
                    .iter()
                    .filter(|r| before(r) && r.order() > stored.order())
                    .count();
                (later as u64) <= n
            }
        }
    };
    let mut out = Vec::new();
    let mut matched = [HashMap::new(), HashMap::new()];
    for l in sorted[LEFT].iter() {
        for r in sorted[RIGHT].iter() {
            if l.key.is_none() || l.key != r.key {
                continue;
            }
            if with_filter && !filter_passes(l, r) {
                continue;
            }
            let ok = if l.t <= r.t {
                held(LEFT, l, r.t)
            } else {
                held(RIGHT, r, l.t)
            };
            if ok {
                out.push(((Some(l.id), Some(r.id)), l.t.max(r.t)));
                matched[LEFT].insert(l.id, ());
                matched[RIGHT].insert(r.id, ());
            }
        }
    }
    for s in [LEFT, RIGHT] {
        if !preserved[s] {
            continue;
        }
        for (rank, row) in sorted[s].iter().enumerate() {
            if matched[s].contains_key(&row.id) {
                continue;
            }
            let at = match windows[s] {
                None => row.t,
                Some(JoinWindow::Range(n)) => row.t + n,
                Some(JoinWindow::Rows(n)) => sorted[s]
                    .get(rank + n as usize + 1)
                    .map(|r| r.t)
                    .unwrap_or(Millis::MAX),
            };
            let ids = if s == LEFT {
                (Some(row.id), None)
            } else {
                (None, Some(row.id))
            };
            out.push((ids, at));
        }
    }
    out
}

fn filter_expr() -> Arc<dyn PhysicalExpr> {
    // (l_id + r_id) % 3 != 0 over the output schema (l_id is column 0, r_id column 3).
    let sum = Arc::new(BinaryExpr::new(
        Arc::new(Column::new("l_id", 0)),
        Operator::Plus,
        Arc::new(Column::new("r_id", 3)),
    ));
    let rem = Arc::new(BinaryExpr::new(
        sum,
        Operator::Modulo,
        Arc::new(Literal::new(ScalarValue::Int64(Some(3)))),
    ));
    Arc::new(BinaryExpr::new(
        rem,
        Operator::NotEq,
        Arc::new(Literal::new(ScalarValue::Int64(Some(0)))),
    ))
}

fn spec(schema: &SchemaRef, prefix: &str, window: Option<JoinWindow>, preserved: bool) -> SideSpec {
    SideSpec {
        window,
        preserved,
        keys: vec![Arc::new(Column::new(&format!("{prefix}_k"), 1))],
        rowtime: Arc::new(Column::new(&format!("{prefix}_rowtime"), 2)),
        schema: Arc::clone(schema),
    }
}

/// Emission time of an output row according to `expected`.
fn times(expected: &Expected) -> HashMap<(Option<i64>, Option<i64>), Millis> {
    expected.iter().cloned().collect()
}

fn run_case(seed: u64) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let windows_choice = |rng: &mut Rng| match rng.below(4) {
        0 => None,
        1 => Some(JoinWindow::Range(rng.below(6) as Millis)),
        2 => Some(JoinWindow::Rows(rng.below(3))),
        _ => Some(JoinWindow::Range(rng.below(3) as Millis)),
    };
    let mut windows = [windows_choice(&mut rng), windows_choice(&mut rng)];
    if windows[LEFT].is_none() && windows[RIGHT].is_none() {
        windows[RIGHT] = Some(JoinWindow::Range(2));
    }
    let preserved = [rng.below(2) == 0, rng.below(2) == 0];
    let with_filter = rng.below(3) == 0;
    let parts = [1 + rng.below(3) as usize, 1 + rng.below(3) as usize];
    let sizes = [5 + rng.below(25) as usize, 5 + rng.below(25) as usize];
    let inputs = [
        gen_side(&mut rng, parts[LEFT], sizes[LEFT], 0),
        gen_side(&mut rng, parts[RIGHT], sizes[RIGHT], 1000),
    ];
    let schemas = [side_schema("l"), side_schema("r")];
    let mut fields: Vec<Field> = Vec::new();
    for s in &schemas {
        fields.extend(
            s.fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
    }
    let out_schema = Arc::new(Schema::new(fields));
    let mut core = JoinCore::try_new(
        spec(&schemas[LEFT], "l", windows[LEFT], preserved[LEFT]),
        spec(&schemas[RIGHT], "r", windows[RIGHT], preserved[RIGHT]),
        NullEquality::NullEqualsNothing,
        with_filter.then(filter_expr),
        out_schema,
        LateRowPolicy::Fail,
        CoreMetrics::default(),
    )
    .unwrap();

    // Scan behaviour per partition: batches of 1..3 rows, each followed by Progress(last - 1);
    // END at the end. Progress of a side = minimum over its partitions, never decreasing.
    let mut cursors: Vec<(usize, usize, usize)> = Vec::new(); // (side, partition, next row)
    for s in [LEFT, RIGHT] {
        for p in 0..parts[s] {
            cursors.push((s, p, 0));
        }
    }
    let mut part_progress: [Vec<Millis>; 2] = [
        vec![Millis::MIN; parts[LEFT]],
        vec![Millis::MIN; parts[RIGHT]],
    ];
    let mut side_progress = [Millis::MIN; 2];
    let mut ended = vec![false; cursors.len()];
    let mut output: Vec<(Option<i64>, Option<i64>)> = Vec::new();
    let mut out_progress = Millis::MIN;
    let collect = |core: &mut JoinCore,
                   output: &mut Vec<(Option<i64>, Option<i64>)>,
                   out_progress: &mut Millis| {
        let step = core.step().unwrap();
        if let Some(b) = step.batch {
            let l = b.column(0).as_primitive::<Int64Type>();
            let r = b.column(3).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let li = l.is_valid(i).then(|| l.value(i));
                let ri = r.is_valid(i).then(|| r.value(i));
                output.push((li, ri));
            }
        }
        if let Some(p) = step.progress {
            assert!(p.rowtime >= *out_progress, "progress went backwards");
            *out_progress = p.rowtime;
        }
    };
    while ended.iter().any(|e| !e) {
        let open: Vec<usize> = (0..cursors.len()).filter(|&i| !ended[i]).collect();
        let c = open[rng.below(open.len() as u64) as usize];
        let (s, p, next) = cursors[c];
        let rows = &inputs[s][p];
        if next >= rows.len() {
            ended[c] = true;
            part_progress[s][p] = Millis::MAX;
        } else {
            let n = (1 + rng.below(3) as usize).min(rows.len() - next);
            let chunk = &rows[next..next + n];
            core.push(s, p, batch(&schemas[s], chunk)).unwrap();
            cursors[c].2 += n;
            part_progress[s][p] = part_progress[s][p].max(chunk[n - 1].t - 1);
        }
        let combined = part_progress[s].iter().copied().min().unwrap();
        if combined > side_progress[s] {
            side_progress[s] = combined;
            let progress = if combined == Millis::MAX {
                Progress::END
            } else {
                Progress {
                    rowtime: combined,
                    ..Progress::START
                }
            };
            core.progress(s, progress);
        }
        if rng.below(3) > 0 {
            collect(&mut core, &mut output, &mut out_progress);
        }
    }
    collect(&mut core, &mut output, &mut out_progress);
    assert!(core.is_finished(), "seed {seed}: the join did not finish");
    assert_eq!(core.stored_rows() + core.pending_rows(), 0);
    assert_eq!(core.memory_size(), 0, "seed {seed}: memory not released");

    let flat: [Vec<Row>; 2] = [
        inputs[LEFT].iter().flatten().cloned().collect(),
        inputs[RIGHT].iter().flatten().cloned().collect(),
    ];
    let expected = brute_force([&flat[LEFT], &flat[RIGHT]], windows, preserved, with_filter);
    let mut want: Vec<_> = expected.iter().map(|(k, _)| *k).collect();
    let mut got = output.clone();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "seed {seed}: windows {windows:?}, preserved {preserved:?}, filter {with_filter}, partitions {parts:?}"
    );
    // Ascending emission time.
    let at = times(&expected);
    let order: Vec<Millis> = output.iter().map(|k| at[k]).collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "seed {seed}: output not in ascending ROWTIME: {order:?} ({windows:?})"
    );
    output.len()
}

#[test]
fn random_interleavings_match_brute_force() {
    let rows: usize = (1..=400).map(run_case).sum();
    // The cases are not trivially empty.
    assert!(rows > 2000, "only {rows} output rows over all cases");
}

#[test]
fn example_f2_in_the_core() {
    // Orders RANGE 1 min, shipments RANGE 1 min; times in seconds * 1000.
    let schemas = [side_schema("l"), side_schema("r")];
    let mut fields: Vec<Field> = Vec::new();
    for s in &schemas {
        fields.extend(s.fields().iter().map(|f| f.as_ref().clone()));
    }
    let w = Some(JoinWindow::Range(60_000));
    let mut core = JoinCore::try_new(
        spec(&schemas[LEFT], "l", w, false),
        spec(&schemas[RIGHT], "r", w, false),
        NullEquality::NullEqualsNothing,
        None,
        Arc::new(Schema::new(fields)),
        LateRowPolicy::Fail,
        CoreMetrics::default(),
    )
    .unwrap();
    let row = |id, key, t| Row {
        id,
        key: Some(key),
        t,
        partition: 0,
        pos: 0,
    };
    let orders = [
        row(1, 101, 0),
        row(2, 102, 20_000),
        row(3, 103, 30_000),
        row(4, 104, 40_000),
        row(5, 100, 45_000),
    ];
    let shipments = [row(11, 100, 0), row(12, 104, 45_000), row(13, 105, 50_000)];
    for o in &orders {
        core.push(LEFT, 0, batch(&schemas[LEFT], std::slice::from_ref(o)))
            .unwrap();
    }
    for s in &shipments {
        core.push(RIGHT, 0, batch(&schemas[RIGHT], std::slice::from_ref(s)))
            .unwrap();
    }
    core.progress(LEFT, Progress::END);
    core.progress(RIGHT, Progress::END);
    let out = core.step().unwrap();
    let b = out.batch.unwrap();
    let l = b.column(1).as_primitive::<Int64Type>();
    let lt = b
        .column(2)
        .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    let rt = b
        .column(5)
        .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    let rows: Vec<(i64, i64, i64)> = (0..b.num_rows())
        .map(|i| (l.value(i), lt.value(i), rt.value(i)))
        .collect();
    // Order 100 (45 s) meets shipment 100 (0 s) in the shipments' window; then shipment 104
    // (45 s) meets order 104 (40 s). Both at 10:00:45; left rows come first on ties.
    assert_eq!(rows, vec![(100, 45_000, 0), (104, 40_000, 45_000)]);
    assert_eq!(out.progress, Some(Progress::END));
}

/// The whole stack (replay streams with supplied ROWTIME over several partitions, scans,
/// SQL, analyzer rule, planner, exec) against the brute force, with random push orders and
/// random polling.
#[tokio::test]
async fn sql_joins_over_partitioned_replays_match_brute_force() {
    use crate::{ManualClock, StreamContext, StreamRuntime};
    use datafusion::arrow::array::ArrayRef;
    use futures::{FutureExt, StreamExt};

    let mut total = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let ctx = StreamContext::with_runtime(StreamRuntime {
            clock: ManualClock::new(0),
            idle_timeout: None,
            late_rows: LateRowPolicy::Fail,
            ..StreamRuntime::default()
        });
        let parts = [1 + rng.below(3) as usize, 1 + rng.below(3) as usize];
        for (name, p) in [("l", parts[LEFT]), ("r", parts[RIGHT])] {
            ctx.sql(&format!(
                "CREATE STREAM {name} (id BIGINT, k BIGINT) WITH ('connector' = 'replay', 'partitions' = '{p}', 'rowtime' = 'supplied')"
            ))
            .await
            .unwrap();
        }
        let window_sql = |rng: &mut Rng, name: &str| -> (String, Option<JoinWindow>) {
            match rng.below(3) {
                0 => (name.to_string(), None),
                1 => {
                    let n = rng.below(6) as Millis;
                    (
                        format!("stream_range('{name}', INTERVAL '{n} milliseconds')"),
                        Some(JoinWindow::Range(n)),
                    )
                }
                _ => {
                    let n = rng.below(3);
                    (
                        format!("stream_rows('{name}', {n})"),
                        Some(JoinWindow::Rows(n)),
                    )
                }
            }
        };
        let (mut lsql, mut lw) = window_sql(&mut rng, "l");
        let (rsql, rw) = window_sql(&mut rng, "r");
        if lw.is_none() && rw.is_none() {
            lsql = "stream_range('l', INTERVAL '2 milliseconds')".into();
            lw = Some(JoinWindow::Range(2));
        }
        let (join, preserved) = match rng.below(4) {
            0 => ("JOIN", [false, false]),
            1 => ("LEFT JOIN", [true, false]),
            2 => ("RIGHT JOIN", [false, true]),
            _ => ("FULL JOIN", [true, true]),
        };
        let with_filter = rng.below(3) == 0;
        let sql = format!(
            "SELECT a.id, b.id FROM {lsql} AS a {join} {rsql} AS b ON a.k = b.k{}",
            if with_filter {
                " AND (a.id + b.id) % 3 <> 0"
            } else {
                ""
            }
        );
        let mut q = ctx.query(&sql).await.unwrap();
        let handles = [
            ctx.replay_handle("l").await.unwrap(),
            ctx.replay_handle("r").await.unwrap(),
        ];
        let sizes = [5 + rng.below(20) as usize, 5 + rng.below(20) as usize];
        let inputs = [
            gen_side(&mut rng, parts[LEFT], sizes[LEFT], 0),
            gen_side(&mut rng, parts[RIGHT], sizes[RIGHT], 1000),
        ];
        let mut output: Vec<(Option<i64>, Option<i64>)> = Vec::new();
        let poll = |q: &mut crate::StreamQuery, out: &mut Vec<(Option<i64>, Option<i64>)>| {
            while let Some(Some(b)) = q.stream().next().now_or_never() {
                let b = b.unwrap();
                let l = b.column(0).as_primitive::<Int64Type>();
                let r = b.column(1).as_primitive::<Int64Type>();
                for i in 0..b.num_rows() {
                    out.push((
                        l.is_valid(i).then(|| l.value(i)),
                        r.is_valid(i).then(|| r.value(i)),
                    ));
                }
            }
        };
        let mut cursors: Vec<(usize, usize, usize)> = Vec::new();
        for s in [LEFT, RIGHT] {
            for p in 0..parts[s] {
                cursors.push((s, p, 0));
            }
        }
        loop {
            let open: Vec<usize> = (0..cursors.len())
                .filter(|&i| cursors[i].2 < inputs[cursors[i].0][cursors[i].1].len())
                .collect();
            if open.is_empty() {
                break;
            }
            let c = open[rng.below(open.len() as u64) as usize];
            let (s, p, next) = cursors[c];
            let rows = &inputs[s][p];
            let n = (1 + rng.below(3) as usize).min(rows.len() - next);
            let chunk = &rows[next..next + n];
            let b = RecordBatch::try_new(
                handles[s].schema().clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.id))),
                    Arc::new(Int64Array::from_iter(chunk.iter().map(|r| r.key))),
                ],
            )
            .unwrap();
            let t: ArrayRef = Arc::new(TimestampMillisecondArray::from_iter_values(
                chunk.iter().map(|r| r.t),
            ));
            handles[s].push(p, b, Some(t)).unwrap();
            cursors[c].2 += n;
            if rng.below(2) == 0 {
                poll(&mut q, &mut output);
            }
        }
        handles[LEFT].finish().unwrap();
        handles[RIGHT].finish().unwrap();
        let rest = q.collect().await.unwrap();
        for b in rest {
            let l = b.column(0).as_primitive::<Int64Type>();
            let r = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                output.push((
                    l.is_valid(i).then(|| l.value(i)),
                    r.is_valid(i).then(|| r.value(i)),
                ));
            }
        }
        let flat: [Vec<Row>; 2] = [
            inputs[LEFT].iter().flatten().cloned().collect(),
            inputs[RIGHT].iter().flatten().cloned().collect(),
        ];
        let expected = brute_force(
            [&flat[LEFT], &flat[RIGHT]],
            [lw, rw],
            preserved,
            with_filter,
        );
        let mut want: Vec<_> = expected.iter().map(|(k, _)| *k).collect();
        let mut got = output.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "seed {seed}: {sql} (partitions {parts:?})");
        let at = times(&expected);
        let order: Vec<Millis> = output.iter().map(|k| at[k]).collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "seed {seed}: {sql}: output not in ascending ROWTIME: {order:?}"
        );
        total += output.len();
    }
    assert!(total > 200, "only {total} output rows over all cases");
}
