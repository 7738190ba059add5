//! Sliding windows (`agg(x) OVER (...)`) through the public API: many rows over several input
//! partitions compared with a brute-force recomputation of the KDA semantics, a ROWTIME column
//! named as in KDA, partition expiry and memory accounting.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplaySource, RowtimeMode, StreamContext, StreamQuery,
    StreamRuntime, StreamTable,
};
use futures::{FutureExt, StreamExt};

fn runtime() -> StreamRuntime {
    StreamRuntime {
        clock: ManualClock::new(0),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        ..StreamRuntime::default()
    }
}

/// Everything the query has emitted so far (without blocking).
fn drain(q: &mut StreamQuery, out: &mut Vec<RecordBatch>) {
    while let Some(next) = q.stream().next().now_or_never() {
        match next {
            Some(b) => out.push(b.unwrap()),
            None => break,
        }
    }
}

/// A small deterministic generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[derive(Debug, Clone)]
struct In {
    t: i64,
    part: usize,
    arrival: usize,
    id: i64,
    k: Option<String>,
    v: Option<i64>,
}

fn push(h: &datafusion_stream::ReplayHandle, part: usize, rows: &[In]) {
    let schema = h.schema().clone();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.k.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.v).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let times = TimestampMillisecondArray::from(rows.iter().map(|r| r.t).collect::<Vec<_>>());
    h.push(part, batch, Some(Arc::new(times))).unwrap();
}

const QUERY: &str = "SELECT id, rowtime,
    SUM(v) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN INTERVAL '3' SECOND PRECEDING AND CURRENT ROW) AS s_range,
    COUNT(v) OVER (PARTITION BY k ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS c_rows,
    MIN(v) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW) AS min_range,
    MAX(v) OVER (ORDER BY rowtime RANGE BETWEEN INTERVAL '1' SECOND PRECEDING AND CURRENT ROW) AS max_global,
    COUNT(*) OVER (PARTITION BY k ORDER BY rowtime) AS running,
    LAG(v, 2) IGNORE NULLS OVER (PARTITION BY k ROWS BETWEEN 5 PRECEDING AND CURRENT ROW) AS lag2,
    FIRST_VALUE(v) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW) AS first_r,
    BOOL_OR(v > 50) OVER (PARTITION BY k ROWS 3 PRECEDING) AS any_big,
    COUNT(*) OVER (RANGE CURRENT ROW) AS peers_before
  FROM s";

/// One expected output row, computed from the definition.
#[derive(Debug, PartialEq)]
struct Out {
    id: i64,
    t: i64,
    s_range: Option<i64>,
    c_rows: i64,
    min_range: Option<i64>,
    max_global: Option<i64>,
    running: i64,
    lag2: Option<i64>,
    first_r: Option<i64>,
    any_big: Option<bool>,
    peers_before: i64,
}

fn since<'a>(xs: &[&'a In], lo: i64) -> Vec<&'a In> {
    xs.iter().copied().filter(|x| x.t >= lo).collect()
}

fn last<'a>(xs: &[&'a In], n: usize) -> Vec<&'a In> {
    xs[xs.len().saturating_sub(n)..].to_vec()
}

fn brute_force<'a>(rows: &'a [In]) -> Vec<Out> {
    let mut order: Vec<&In> = rows.iter().collect();
    order.sort_by_key(|r| (r.t, r.part, r.arrival));
    let mut out = Vec::new();
    for (i, r) in order.iter().enumerate() {
        let before = &order[..=i];
        let part: Vec<&In> = before.iter().copied().filter(|x| x.k == r.k).collect();
        let vals = |xs: &[&In]| xs.iter().filter_map(|x| x.v).collect::<Vec<_>>();
        let since = |xs: &[&'a In], ms: i64| since(xs, r.t - ms);
        let last = last;
        let r3 = vals(&since(&part, 3000));
        let r2 = since(&part, 2000);
        let g1 = vals(&since(before, 1000));
        let frame6 = last(&part, 6);
        let before_r: Vec<i64> = vals(&frame6[..frame6.len() - 1]);
        let frame4 = vals(&last(&part, 4));
        out.push(Out {
            id: r.id,
            t: r.t,
            s_range: (!r3.is_empty()).then(|| r3.iter().sum()),
            c_rows: vals(&last(&part, 5)).len() as i64,
            min_range: vals(&r2).into_iter().min(),
            max_global: g1.into_iter().max(),
            running: part.len() as i64,
            lag2: (before_r.len() >= 2).then(|| before_r[before_r.len() - 2]),
            first_r: r2.first().and_then(|x| x.v),
            any_big: (!frame4.is_empty()).then(|| frame4.iter().any(|v| *v > 50)),
            peers_before: before.iter().filter(|x| x.t == r.t).count() as i64,
        });
    }
    out
}

fn actual(batches: &[RecordBatch]) -> Vec<Out> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| Arc::clone(b.column(b.schema().index_of(name).unwrap()));
        let i64s = |name: &str| {
            let c = datafusion::arrow::compute::cast(&col(name), &DataType::Int64).unwrap();
            let c = c.as_primitive::<Int64Type>().clone();
            (0..c.len())
                .map(|i| (!c.is_null(i)).then(|| c.value(i)))
                .collect::<Vec<_>>()
        };
        let (id, s_range, c_rows, min_range, max_global, running, lag2, first_r, peers) = (
            i64s("id"),
            i64s("s_range"),
            i64s("c_rows"),
            i64s("min_range"),
            i64s("max_global"),
            i64s("running"),
            i64s("lag2"),
            i64s("first_r"),
            i64s("peers_before"),
        );
        let t = col("rowtime");
        let t = t
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        let big = col("any_big");
        let big = big.as_any().downcast_ref::<BooleanArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push(Out {
                id: id[i].unwrap(),
                t: t.value(i),
                s_range: s_range[i],
                c_rows: c_rows[i].unwrap(),
                min_range: min_range[i],
                max_global: max_global[i],
                running: running[i].unwrap(),
                lag2: lag2[i],
                first_r: first_r[i],
                any_big: (!big.is_null(i)).then(|| big.value(i)),
                peers_before: peers[i].unwrap(),
            });
        }
    }
    out
}

#[tokio::test]
async fn many_rows_over_several_partitions_match_a_brute_force_recomputation() {
    let ctx = StreamContext::with_runtime(runtime());
    ctx.sql("CREATE STREAM s (id BIGINT, k VARCHAR, v BIGINT) WITH ('connector' = 'replay', 'rowtime' = 'supplied', 'partitions' = '3')")
        .await
        .unwrap();
    let h = ctx.replay_handle("s").await.unwrap();
    let mut q = ctx.query(QUERY).await.unwrap();
    let mut rng = Rng(42);
    let keys = [Some("a"), Some("b"), Some("c"), Some("d"), None];
    let mut clocks = [0i64; 3];
    let mut arrivals = [0usize; 3];
    let mut all = Vec::new();
    let mut got = Vec::new();
    let mut id = 0;
    while id < 3000 {
        let part = rng.next(3) as usize;
        let n = 1 + rng.next(6) as usize;
        let mut rows = Vec::new();
        for _ in 0..n {
            // multiples of 250 ms: ties within and across partitions are frequent
            clocks[part] += 250 * rng.next(4) as i64;
            let v = (rng.next(10) != 0).then(|| rng.next(100) as i64);
            rows.push(In {
                t: clocks[part],
                part,
                arrival: arrivals[part],
                id,
                k: keys[rng.next(5) as usize].map(String::from),
                v,
            });
            arrivals[part] += 1;
            id += 1;
        }
        push(&h, part, &rows);
        all.extend(rows);
        drain(&mut q, &mut got);
    }
    let before_end = actual(&got).len();
    assert!(
        before_end > 1000,
        "rows are released while the input runs, not only at its end ({before_end})"
    );
    h.finish().unwrap();
    drain(&mut q, &mut got);
    let expected = brute_force(&all);
    let actual = actual(&got);
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(a, e);
    }
}

#[tokio::test]
async fn rowtime_is_found_by_its_metadata_whatever_its_name() {
    let ctx = StreamContext::with_runtime(runtime());
    let schema = Arc::new(Schema::new(vec![
        Field::new("CITY", DataType::Utf8, true),
        Field::new("TEMP", DataType::Int64, true),
    ]));
    let source = ReplaySource::new(Arc::clone(&schema), 1, RowtimeMode::Supplied);
    let h = source.handle();
    ctx.register_stream(
        StreamTable::try_new("WEATHER", Arc::new(source), "ROWTIME", None).unwrap(),
    )
    .unwrap();
    // what the KDA front end generates for `OVER W ... WINDOW W AS (RANGE INTERVAL '1' DAY PRECEDING)`
    let mut q = ctx
        .query(r#"SELECT "ROWTIME", "CITY", MIN("TEMP") OVER (ORDER BY "ROWTIME" RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND CURRENT ROW) AS "WMIN", COUNT(*) OVER (PARTITION BY "CITY" ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS "N" FROM "WEATHER""#)
        .await
        .unwrap();
    let day = 86_400_000;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                "Denver",
                "Anchorage",
                "Denver",
                "Denver",
            ])),
            Arc::new(Int64Array::from(vec![29, 2, 40, 50])),
        ],
    )
    .unwrap();
    let times = TimestampMillisecondArray::from(vec![0, 0, day, day + 1]);
    h.push(0, batch, Some(Arc::new(times))).unwrap();
    let mut got = Vec::new();
    drain(&mut q, &mut got);
    let b = datafusion::arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
    let wmin = b.column(2).as_primitive::<Int64Type>().values().to_vec();
    let n = b
        .column(3)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.values().to_vec());
    assert_eq!(wmin, vec![29, 2, 2, 40]);
    assert_eq!(n, Some(vec![1, 1, 2, 2]));
}

fn gauge(plan: &Arc<dyn ExecutionPlan>, name: &str) -> Option<usize> {
    let own = plan.metrics().and_then(|m| {
        m.iter().find_map(|m| match m.value() {
            MetricValue::Gauge { name: n, gauge } if n == name => Some(gauge.value()),
            _ => None,
        })
    });
    own.or_else(|| plan.children().iter().find_map(|c| gauge(c, name)))
}

#[tokio::test]
async fn partitions_whose_rows_left_every_range_window_are_dropped() {
    let ctx = StreamContext::with_runtime(runtime());
    ctx.sql("CREATE STREAM s (id BIGINT, k VARCHAR, v BIGINT) WITH ('connector' = 'replay', 'rowtime' = 'supplied')")
        .await
        .unwrap();
    let h = ctx.replay_handle("s").await.unwrap();
    let mut q = ctx
        .query("SELECT id, SUM(v) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS s FROM s")
        .await
        .unwrap();
    let row = |id: i64, k: &str, t: i64| In {
        t,
        part: 0,
        arrival: 0,
        id,
        k: Some(k.to_string()),
        v: Some(id),
    };
    let mut got = Vec::new();
    push(
        &h,
        0,
        &(0..100)
            .map(|i| row(i, &format!("k{i}"), 1_000))
            .collect::<Vec<_>>(),
    );
    drain(&mut q, &mut got);
    assert_eq!(gauge(q.plan(), "partitions"), Some(100));
    // 11.001 s: the rows at 1 s are out of every future window (11.002 - 10 > 1)
    push(&h, 0, &[row(100, "k0", 11_000)]);
    drain(&mut q, &mut got);
    assert_eq!(
        gauge(q.plan(), "partitions"),
        Some(100),
        "rows at 1 s are still in k0's window at 11 s"
    );
    push(&h, 0, &[row(101, "k1", 11_002)]);
    drain(&mut q, &mut got);
    assert_eq!(gauge(q.plan(), "partitions"), Some(2));
    let sums: Vec<i64> = got
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(sums.len(), 102);
    assert_eq!(&sums[98..], &[98, 99, 100, 101]);
}

#[tokio::test]
async fn window_state_is_accounted_in_the_memory_pool() {
    let env = RuntimeEnvBuilder::new()
        .with_memory_limit(64 * 1024, 1.0)
        .build_arc()
        .unwrap();
    let ctx = StreamContext::with_runtime_env(runtime(), env);
    ctx.sql("CREATE STREAM s (id BIGINT, k VARCHAR, v BIGINT) WITH ('connector' = 'replay', 'rowtime' = 'supplied')")
        .await
        .unwrap();
    let h = ctx.replay_handle("s").await.unwrap();
    let mut q = ctx
        .query("SELECT id, MAX(v) OVER (PARTITION BY k ROWS BETWEEN 100 PRECEDING AND CURRENT ROW) AS m FROM s")
        .await
        .unwrap();
    let rows: Vec<In> = (0..20_000)
        .map(|i| In {
            t: i,
            part: 0,
            arrival: 0,
            id: i,
            k: Some(format!("key-{}", i % 5000)),
            v: Some(i),
        })
        .collect();
    push(&h, 0, &rows);
    let err = match q.stream().next().now_or_never() {
        Some(Some(Err(e))) => e.to_string(),
        other => panic!(
            "expected a memory error, got {:?}",
            other.map(|o| o.map(|r| r.map(|b| b.num_rows()).is_ok()))
        ),
    };
    assert!(err.contains("StreamOverExec"), "{err}");
}

/// KDA's AVG over INTEGER: a truncated integer average. A user UDAF without retraction, so
/// the sliding window recomputes it over the frame's rows.
#[derive(Debug, Default)]
struct IntAvg {
    sum: i64,
    count: i64,
}

impl datafusion::logical_expr::Accumulator for IntAvg {
    fn update_batch(
        &mut self,
        values: &[datafusion::arrow::array::ArrayRef],
    ) -> datafusion::common::Result<()> {
        for v in values[0].as_primitive::<Int64Type>().iter().flatten() {
            self.sum += v;
            self.count += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> datafusion::common::Result<datafusion::common::ScalarValue> {
        Ok(datafusion::common::ScalarValue::Int64(
            (self.count > 0).then(|| self.sum / self.count),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> datafusion::common::Result<Vec<datafusion::common::ScalarValue>> {
        Ok(vec![
            datafusion::common::ScalarValue::Int64(Some(self.sum)),
            datafusion::common::ScalarValue::Int64(Some(self.count)),
        ])
    }

    fn merge_batch(
        &mut self,
        states: &[datafusion::arrow::array::ArrayRef],
    ) -> datafusion::common::Result<()> {
        self.sum += states[0]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum::<i64>();
        self.count += states[1]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum::<i64>();
        Ok(())
    }
}

#[tokio::test]
async fn user_aggregates_work_in_sliding_windows() {
    let ctx = StreamContext::with_runtime(runtime());
    ctx.session()
        .register_udaf(datafusion::logical_expr::create_udaf(
            "int_avg",
            vec![DataType::Int64],
            Arc::new(DataType::Int64),
            datafusion::logical_expr::Volatility::Immutable,
            Arc::new(|_| Ok(Box::new(IntAvg::default()))),
            Arc::new(vec![DataType::Int64, DataType::Int64]),
        ));
    ctx.sql("CREATE STREAM s (id BIGINT, k VARCHAR, v BIGINT) WITH ('connector' = 'replay', 'rowtime' = 'supplied')")
        .await
        .unwrap();
    let h = ctx.replay_handle("s").await.unwrap();
    // Example B2's AVG column for Denver: 29, 32, 50, 43 on 11-01, then 39 at 11-02 01:00
    let mut q = ctx
        .query("SELECT id, int_avg(v) OVER (PARTITION BY k ORDER BY rowtime RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND CURRENT ROW) AS a FROM s")
        .await
        .unwrap();
    let hour = 3_600_000;
    let rows: Vec<In> = [(1, 29), (7, 32), (13, 50), (19, 43), (25, 39), (31, 46)]
        .iter()
        .enumerate()
        .map(|(i, &(h, v))| In {
            t: h * hour,
            part: 0,
            arrival: i,
            id: i as i64,
            k: Some("Denver".into()),
            v: Some(v),
        })
        .collect();
    push(&h, 0, &rows);
    let mut got = Vec::new();
    drain(&mut q, &mut got);
    let avgs: Vec<i64> = got
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(avgs, vec![29, 30, 37, 38, 38, 42]);
}
