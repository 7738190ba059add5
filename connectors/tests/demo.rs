//! The demo ticker source under a manual clock: reproducible, paced by the clock, validated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::Result;
use datafusion_stream::source::{ConnectorOptions, SourceContext, SourceFactory, StreamSource};
use datafusion_stream::{LateRowPolicy, ManualClock, SourceEvent, StreamContext, StreamRuntime};
use datafusion_stream_connectors::generator::{DemoTickerFactory, TICKERS};
use datafusion_stream_connectors::{demo_ticker_ddl, demo_ticker_schema, register_all};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

const T0: i64 = 1_700_000_000_000;

fn options(pairs: &[(&str, &str)]) -> ConnectorOptions {
    let values: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConnectorOptions::new("demo", values)
}

fn source(pairs: &[(&str, &str)]) -> Result<Arc<dyn StreamSource>> {
    DemoTickerFactory.create("ticker", demo_ticker_schema(), &mut options(pairs))
}

/// Every batch the partition has ready now (without waiting).
fn drain(stream: &mut BoxStream<'static, Result<SourceEvent>>) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    while let Some(Some(event)) = stream.next().now_or_never() {
        match event {
            Ok(SourceEvent::Data { batch, rowtime }) => {
                assert!(rowtime.is_none(), "the demo source stamps no ROWTIME");
                out.push(batch);
            }
            Ok(other) => panic!("unexpected event {other:?}"),
            Err(e) => panic!("error: {e}"),
        }
    }
    out
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn text(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

/// Opens partition `p` of a fresh source on a fresh manual clock and applies `steps` advances.
fn run(pairs: &[(&str, &str)], p: usize, steps: &[u64]) -> Vec<RecordBatch> {
    let clock = ManualClock::new(T0);
    let src = source(pairs).unwrap();
    let ctx = SourceContext {
        clock: clock.clone(),
        batch_size: 8192,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
    };
    let mut stream = src.open(p, &ctx).unwrap();
    let mut out = drain(&mut stream);
    for ms in steps {
        clock.advance_by(Duration::from_millis(*ms));
        out.extend(drain(&mut stream));
    }
    out
}

#[test]
fn rate_is_honoured_by_the_clock() {
    let clock = ManualClock::new(T0);
    let src = source(&[("rate", "100")]).unwrap();
    let ctx = SourceContext {
        clock: clock.clone(),
        batch_size: 8192,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
    };
    let mut stream = src.open(0, &ctx).unwrap();
    assert_eq!(
        rows(&drain(&mut stream)),
        0,
        "nothing is due before the clock moves"
    );
    clock.advance_by(Duration::from_secs(1));
    assert_eq!(rows(&drain(&mut stream)), 100);
    clock.advance_by(Duration::from_millis(500));
    assert_eq!(rows(&drain(&mut stream)), 50);
    // Without an advance nothing more comes.
    assert_eq!(rows(&drain(&mut stream)), 0);
}

#[test]
fn same_seed_same_rows_whatever_the_clock_steps() {
    let one_step = run(&[("rate", "100")], 0, &[1000]);
    let ten_steps = run(&[("rate", "100")], 0, &[100; 10]);
    assert_eq!(rows(&one_step), 100);
    assert_eq!(text(&one_step), text(&ten_steps));
    let again = run(&[("rate", "100"), ("seed", "42")], 0, &[1000]);
    assert_eq!(text(&one_step), text(&again));
    let other = run(&[("rate", "100"), ("seed", "7")], 0, &[1000]);
    assert_ne!(text(&one_step), text(&other));
}

#[test]
fn rows_are_plausible() {
    let batches = run(&[("rate", "50"), ("max_delay", "500ms")], 0, &[2000]);
    assert_eq!(rows(&batches), 100);
    for b in &batches {
        let symbols = b.column(0).as_string::<i32>();
        let sectors = b.column(1).as_string::<i32>();
        let change = b.column(2).as_primitive::<Float64Type>();
        let price = b.column(3).as_primitive::<Float64Type>();
        let time = b.column(4).as_primitive::<TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            let (_, sector, _) = TICKERS
                .iter()
                .find(|(s, _, _)| *s == symbols.value(i))
                .expect("a known ticker");
            assert_eq!(sectors.value(i), *sector);
            assert!(price.value(i) >= 1.0);
            assert!(change.value(i).abs() <= price.value(i) * 0.02 + 0.01);
            // Cents only.
            assert_eq!((price.value(i) * 100.0).round() / 100.0, price.value(i));
            // Event time: within max_delay before the time the row became due, which is
            // within the 2 s the clock moved.
            let t = time.value(i);
            assert!(t > T0 - 500 && t <= T0 + 2000, "event time {t}");
            assert!(!time.is_null(i));
        }
    }
}

#[test]
fn partitions_split_the_rate_and_the_tickers() {
    let p0 = run(&[("rate", "100"), ("partitions", "2")], 0, &[1000]);
    let p1 = run(&[("rate", "100"), ("partitions", "2")], 1, &[1000]);
    assert_eq!(rows(&p0) + rows(&p1), 100);
    let symbols = |bs: &[RecordBatch]| {
        let mut s: Vec<String> = bs
            .iter()
            .flat_map(|b| {
                let c = b.column(0).as_string::<i32>();
                (0..c.len())
                    .map(|i| c.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let (s0, s1) = (symbols(&p0), symbols(&p1));
    assert!(
        s0.iter().all(|s| !s1.contains(s)),
        "a ticker lives in one partition"
    );
}

#[test]
fn bounded_by_rows() {
    let clock = ManualClock::new(T0);
    let src = source(&[("rate", "10"), ("rows", "15")]).unwrap();
    assert!(src.is_bounded());
    let ctx = SourceContext {
        clock: clock.clone(),
        batch_size: 4,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
    };
    let mut stream = src.open(0, &ctx).unwrap();
    clock.advance_by(Duration::from_secs(10));
    let mut n = 0;
    let mut ended = false;
    while let Some(item) = stream.next().now_or_never() {
        match item {
            Some(Ok(SourceEvent::Data { batch, .. })) => {
                assert!(batch.num_rows() <= 4, "batch_size is honoured");
                n += batch.num_rows();
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert_eq!(n, 15);
    assert!(ended, "the stream ends after 'rows' rows");
}

fn err(pairs: &[(&str, &str)]) -> String {
    source(pairs).unwrap_err().to_string()
}

#[test]
fn bad_options_name_the_option() {
    let e = err(&[("rate", "fast")]);
    assert!(e.contains("'rate'") && e.contains("fast"), "{e}");
    let e = err(&[("rate", "0")]);
    assert!(e.contains("'rate'"), "{e}");
    let e = err(&[("partitions", "0")]);
    assert!(e.contains("'partitions'"), "{e}");
    let e = err(&[("partitions", "99")]);
    assert!(e.contains("'partitions'"), "{e}");
    let e = err(&[("seed", "-1")]);
    assert!(e.contains("'seed'"), "{e}");
    let e = err(&[("max_delay", "soon")]);
    assert!(e.contains("'max_delay'"), "{e}");
    let e = err(&[("rows", "many")]);
    assert!(e.contains("'rows'"), "{e}");
    let e = err(&[("speed", "1")]);
    assert!(e.contains("unknown option") && e.contains("'speed'"), "{e}");
    assert!(e.contains("rate"), "lists the valid options: {e}");
}

fn manual_context() -> (StreamContext, Arc<ManualClock>) {
    let clock = ManualClock::new(T0);
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: clock.clone(),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Fail,
        errors: std::sync::Arc::new(datafusion_stream::errors::FailOnError),
    });
    register_all(&ctx);
    (ctx, clock)
}

#[tokio::test]
async fn wrong_columns_list_the_expected_ones() {
    let (ctx, _) = manual_context();
    let e = ctx
        .run_script("CREATE STREAM t (symbol VARCHAR, price DOUBLE) WITH ('connector' = 'demo')")
        .await
        .err()
        .expect("wrong columns are rejected")
        .to_string();
    assert!(
        e.contains("ticker_symbol VARCHAR, sector VARCHAR, change DOUBLE, price DOUBLE, event_time TIMESTAMP(3)"),
        "{e}"
    );
    let e = ctx
        .run_script("CREATE STREAM t (ticker_symbol VARCHAR, sector VARCHAR, change DOUBLE, price BIGINT, event_time TIMESTAMP(3)) WITH ('connector' = 'demo')")
        .await
        .err()
        .expect("wrong types are rejected")
        .to_string();
    assert!(e.contains("price Int64"), "{e}");
}

#[test]
fn ddl_text() {
    let ddl = demo_ticker_ddl("ticker");
    assert!(
        ddl.starts_with("CREATE STREAM ticker (ticker_symbol VARCHAR"),
        "{ddl}"
    );
    assert!(
        ddl.contains("WATERMARK FOR event_time AS event_time - INTERVAL '2' SECOND"),
        "{ddl}"
    );
    assert!(ddl.contains("'connector' = 'demo'"), "{ddl}");
}

/// A windowed query over the demo stream: the watermark declared by `demo_ticker_ddl` keeps
/// every row on time, and the same seed gives the same windows.
async fn demo_windows(ddl: &str) -> Vec<String> {
    let (ctx, clock) = manual_context();
    ctx.run_script(ddl).await.unwrap();
    let mut q = ctx
        .query(
            "SELECT window_start, window_end, COUNT(*) AS n, SUM(price) AS total \
             FROM TABLE(TUMBLE(TABLE ticker, DESCRIPTOR(event_time), INTERVAL '5' SECOND)) \
             GROUP BY window_start, window_end",
        )
        .await
        .unwrap();
    assert!(
        q.stream().next().now_or_never().is_none(),
        "no window before the clock moves"
    );
    clock.advance_by(Duration::from_secs(10));
    let batches = q.collect().await.unwrap();
    let mut lines: Vec<String> = text(&batches).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn windowed_query_is_deterministic() {
    let mut config = datafusion_stream_connectors::DemoTickerConfig {
        rows: Some(100),
        ..Default::default()
    };
    let a = demo_windows(&config.ddl("ticker")).await;
    let b = demo_windows(&config.ddl("ticker")).await;
    assert_eq!(a, b);
    // 100 rows in all (LateRowPolicy::Fail: none was late).
    let total: i64 = a
        .iter()
        .filter_map(|l| l.split('|').nth(3))
        .filter_map(|n| n.trim().parse::<i64>().ok())
        .sum();
    assert_eq!(total, 100, "{a:#?}");
    config.seed = 1;
    let c = demo_windows(&config.ddl("ticker")).await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn ddl_with_settings_round_trips() {
    let config = datafusion_stream_connectors::DemoTickerConfig {
        rate: 20.0,
        seed: 3,
        partitions: 2,
        max_delay: Duration::from_millis(1500),
        rows: Some(40),
    };
    let ddl = config.ddl("t");
    assert!(ddl.contains("INTERVAL '1.5' SECOND"), "{ddl}");
    let (ctx, _) = manual_context();
    ctx.run_script(&ddl).await.unwrap();
    let table = ctx.stream_table("t").await.unwrap();
    assert_eq!(table.event_time().map(|e| e.max_delay), Some(1500));
    let source = table
        .source()
        .as_any()
        .downcast_ref::<datafusion_stream_connectors::DemoTickerSource>()
        .expect("a demo source");
    assert_eq!(source.config(), &config);
}
