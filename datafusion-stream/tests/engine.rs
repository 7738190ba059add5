//! Engine behaviour through the public Rust API: a stock DataFusion `SessionContext`, UDFs on
//! streams, the late-row policy, memory accounting of window state.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use datafusion_stream::context::{configure_session, register_window_functions};
use datafusion_stream::{
    EventTime, LateRowPolicy, ManualClock, ReplayHandle, ReplaySource, RowtimeMode, StreamContext,
    StreamQuery, StreamRuntime, StreamTable,
};
use futures::{FutureExt, StreamExt};

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
    ]))
}

fn batch(rows: &[(i64, &str, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn test_runtime(late_rows: LateRowPolicy) -> StreamRuntime {
    StreamRuntime {
        clock: ManualClock::new(0),
        idle_timeout: None,
        late_rows,
        ..StreamRuntime::default()
    }
}

#[tokio::test]
async fn window_on_a_stock_session_context() {
    let runtime = Arc::new(test_runtime(LateRowPolicy::Drop));
    let state =
        configure_session(SessionStateBuilder::new().with_default_features(), runtime).build();
    let ctx = SessionContext::new_with_state(state);
    register_window_functions(&ctx);
    let source = ReplaySource::new(schema(), 1, RowtimeMode::Ingest);
    let handle = source.handle();
    let table = StreamTable::try_new(
        "t",
        Arc::new(source),
        "rowtime",
        Some(EventTime {
            column: "ts".into(),
            max_delay: 0,
        }),
    )
    .unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let df = ctx
        .sql("SELECT window_start, k, SUM(v) AS s FROM tumble('t', 'ts', INTERVAL '10' SECOND) GROUP BY window_start, window_end, k ORDER BY k")
        .await;
    // ORDER BY over an unbounded input cannot finish: DataFusion rejects it at planning.
    assert!(df.is_err() || df.unwrap().execute_stream().await.is_err());

    let df = ctx
        .sql("SELECT window_start, k, SUM(v) AS s FROM tumble('t', 'ts', INTERVAL '10' SECOND) GROUP BY window_start, window_end, k")
        .await
        .unwrap();
    let mut stream = df.execute_stream().await.unwrap();
    handle
        .push(
            0,
            batch(&[(1_000, "a", 1.0), (2_000, "a", 2.0), (11_000, "b", 4.0)]),
            None,
        )
        .unwrap();
    // the first window is complete (watermark 11 s) and is emitted before the input ends
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 1);
    let s = first
        .column(2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(s.value(0), 3.0);
    handle.finish().unwrap();
    let rest = stream.next().await.unwrap().unwrap();
    assert_eq!(rest.num_rows(), 1);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn scalar_udfs_work_in_filters_and_window_keys() {
    let ctx = StreamContext::with_runtime(test_runtime(LateRowPolicy::Drop));
    let bucket = create_udf(
        "bucket",
        vec![DataType::Float64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let v = arrays[0]
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("f64");
            let out: Int64Array = v
                .iter()
                .map(|x| x.map(|x| (x / 10.0).floor() as i64))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    );
    ctx.session().register_udf(bucket);
    ctx.sql("CREATE STREAM t (ts TIMESTAMP, k VARCHAR, v DOUBLE, WATERMARK FOR ts AS ts) WITH ('connector' = 'replay')")
        .await
        .unwrap();
    let mut q = ctx
        .query("SELECT bucket(v) AS b, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) WHERE bucket(v) < 5 GROUP BY window_start, window_end, bucket(v)")
        .await
        .unwrap();
    let h = ctx.replay_handle("t").await.unwrap();
    h.push(
        0,
        batch(&[
            (0, "a", 1.0),
            (1, "a", 15.0),
            (2, "a", 19.0),
            (3, "a", 99.0),
        ]),
        None,
    )
    .unwrap();
    h.finish().unwrap();
    let mut rows = Vec::new();
    while let Some(b) = q.stream().next().await {
        let b = b.unwrap();
        let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            rows.push((k.value(i), n.value(i)));
        }
    }
    rows.sort();
    assert_eq!(rows, vec![(0, 1), (1, 2)]);
}

#[tokio::test]
async fn late_rows_fail_the_query_under_the_fail_policy() {
    let ctx = StreamContext::with_runtime(test_runtime(LateRowPolicy::Fail));
    ctx.sql("CREATE STREAM t (ts TIMESTAMP, k VARCHAR, v DOUBLE, WATERMARK FOR ts AS ts) WITH ('connector' = 'replay')")
        .await
        .unwrap();
    let mut q = ctx
        .query("SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end")
        .await
        .unwrap();
    let h = ctx.replay_handle("t").await.unwrap();
    h.push(0, batch(&[(1_000, "a", 1.0), (25_000, "a", 1.0)]), None)
        .unwrap();
    let first = q.stream().next().now_or_never().unwrap().unwrap().unwrap();
    assert_eq!(first.num_rows(), 1);
    h.push(0, batch(&[(3_000, "late", 1.0)]), None).unwrap();
    let err = loop {
        match q.stream().next().now_or_never() {
            Some(Some(Err(e))) => break e,
            Some(Some(Ok(_))) => continue,
            other => panic!(
                "expected an error, got {:?}",
                other.map(|o| o.map(|r| r.map(|b| b.num_rows())))
            ),
        }
    };
    let msg = err.to_string();
    assert!(
        msg.contains("late row with time 1970-01-01 00:00:03.000"),
        "{msg}"
    );
    assert!(msg.contains("late-row policy 'fail'"), "{msg}");
}

/// A stream `t` and an hourly per-key SUM over it.
async fn hourly_sums(ctx: &StreamContext) -> (StreamQuery, ReplayHandle) {
    ctx.sql("CREATE STREAM t (ts TIMESTAMP, k VARCHAR, v DOUBLE, WATERMARK FOR ts AS ts) WITH ('connector' = 'replay')")
        .await
        .unwrap();
    let q = ctx
        .query("SELECT window_start, k, SUM(v) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k")
        .await
        .unwrap();
    (q, ctx.replay_handle("t").await.unwrap())
}

#[tokio::test]
async fn window_state_is_accounted_in_the_memory_pool() {
    // 64 KiB is far too little for 50,000 open groups: the query must fail with a
    // resources error naming the operator instead of growing without bound.
    let env = RuntimeEnvBuilder::new()
        .with_memory_limit(64 * 1024, 1.0)
        .build_arc()
        .unwrap();
    let ctx = StreamContext::with_runtime_env(test_runtime(LateRowPolicy::Drop), env);
    let (mut q, h) = hourly_sums(&ctx).await;
    let keys: Vec<String> = (0..50_000).map(|i| format!("key-{i}")).collect();
    let rows: Vec<(i64, &str, f64)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (i as i64, k.as_str(), 1.0))
        .collect();
    h.push(0, batch(&rows), None).unwrap();
    let err = match q.stream().next().now_or_never() {
        Some(Some(Err(e))) => e.to_string(),
        other => panic!(
            "expected a memory error, got {:?}",
            other.map(|o| o.map(|r| r.is_ok()))
        ),
    };
    assert!(err.contains("StreamWindowAggExec"), "{err}");

    // With room, the same input runs, and memory is released when the window closes.
    let ctx = StreamContext::with_runtime(test_runtime(LateRowPolicy::Drop));
    let (mut q, h) = hourly_sums(&ctx).await;
    h.push(0, batch(&rows), None).unwrap();
    assert!(
        q.stream().next().now_or_never().is_none(),
        "the window is still open"
    );
    let pool = ctx.session().runtime_env().memory_pool.clone();
    assert!(
        pool.reserved() > 50_000,
        "open window state is reserved: {}",
        pool.reserved()
    );
    h.push(0, batch(&[(3_600_000, "next", 1.0)]), None).unwrap();
    let out = q.stream().next().now_or_never().unwrap().unwrap().unwrap();
    assert_eq!(out.num_rows(), 50_000);
    assert!(
        pool.reserved() < 10_000,
        "state is freed when the window fires: {}",
        pool.reserved()
    );
}
