//! Sinks and reference tables from SQL through the Rust API (`CREATE SINK`, `INSERT INTO`,
//! `CREATE TABLE ... WITH ('connector' = 'object_store')`), on replay streams and `memory://`
//! stores, deterministic (manual clock).

mod objstore_support;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion_stream::{LateRowPolicy, ManualClock, StreamContext, StreamRuntime};
use datafusion_stream_connectors::object_store::{StoreLocation, StoreOptions};
use datafusion_stream_connectors::register_all;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use objstore_support::*;

/// 2024-05-01 12:58:00 UTC.
const T0: i64 = 1_714_568_280_000;

fn context() -> StreamContext {
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: ManualClock::new(0),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors: Arc::new(datafusion_stream::errors::FailOnError),
    });
    register_all(&ctx);
    ctx
}

fn trades_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("sym", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
    ]))
}

fn trades(rows: &[(i64, &str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        trades_schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| T0 + r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

async fn store(ctx: &StreamContext, url: &str) -> Arc<dyn ObjectStore> {
    StoreLocation::resolve(&ctx.session().runtime_env(), url, &StoreOptions::default())
        .unwrap()
        .store()
        .clone()
}

async fn create_trades(ctx: &StreamContext) {
    ctx.sql(
        "CREATE STREAM trades (ts TIMESTAMP, sym VARCHAR, qty BIGINT, \
         WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'replay', 'partitions' = '2')",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn insert_into_a_parquet_sink_a_window_joined_with_a_reference_table() {
    let ctx = context();
    let reference = store(&ctx, "memory://ref").await;
    reference
        .put(
            &Path::from("companies.csv"),
            "sym,sector\nA,tech\nB,retail\n".into(),
        )
        .await
        .unwrap();
    create_trades(&ctx).await;
    ctx.sql(
        "CREATE TABLE companies WITH ('connector' = 'object_store', 'path' = 'memory://ref/companies.csv')",
    )
    .await
    .unwrap();
    ctx.sql(
        "CREATE SINK summary (ws TIMESTAMP, sym VARCHAR, sector VARCHAR, n BIGINT, total BIGINT) \
         WITH ('connector' = 'object_store', 'path' = 'memory://out/w/', \
               'partition_by' = 'dt_hour(ws)')",
    )
    .await
    .unwrap();
    assert_eq!(ctx.sink_names(), vec!["summary".to_string()]);
    let q = ctx
        .query(
            "INSERT INTO summary \
             SELECT w.window_start, w.sym, c.sector, w.n, w.total \
             FROM (SELECT window_start, sym, COUNT(*) AS n, SUM(qty) AS total \
                   FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) \
                   GROUP BY window_start, window_end, sym) AS w \
             JOIN companies AS c ON w.sym = c.sym",
        )
        .await
        .unwrap();
    assert_eq!(q.sink_name(), Some("summary"));
    let handle = ctx.replay_handle("trades").await.unwrap();
    // 12:58:00 .. 13:00:30: windows 12:58, 12:59 (hour 12) and 13:00 (hour 13); C has no sector.
    handle
        .push(
            0,
            trades(&[
                (0, "A", 1),
                (30_000, "B", 2),
                (61_000, "A", 3),
                (150_000, "A", 4),
            ]),
            None,
        )
        .unwrap();
    handle
        .push(
            1,
            trades(&[(5_000, "A", 10), (70_000, "C", 7), (120_000, "B", 5)]),
            None,
        )
        .unwrap();
    handle.finish().unwrap();
    let reports = q.collect().await.unwrap();
    let report_rows = lines(&reports);
    // One object per (hour, input partition) that got rows, in the order they completed
    // (sink, location, rows, bytes; bytes depend on the Parquet writer, so only a prefix).
    assert_eq!(report_rows.len(), 2, "{report_rows:?}");
    assert!(
        report_rows[0].starts_with(
            "summary,memory://out/w/dt=2024-05-01/hour=12/summary-0-000000.parquet,3,"
        ),
        "{report_rows:?}"
    );
    assert!(
        report_rows[1].starts_with(
            "summary,memory://out/w/dt=2024-05-01/hour=13/summary-0-000000.parquet,2,"
        ),
        "{report_rows:?}"
    );
    let out = store(&ctx, "memory://out").await;
    let paths = list_paths(&out, "w").await;
    assert_eq!(
        paths,
        vec![
            "w/dt=2024-05-01/hour=12/summary-0-000000.parquet",
            "w/dt=2024-05-01/hour=13/summary-0-000000.parquet",
        ]
    );
    let mut rows = Vec::new();
    for p in &paths {
        let batches = read_parquet(&out, p).await;
        let names: Vec<String> = batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, vec!["ws", "sym", "sector", "n", "total"]);
        rows.extend(lines(&batches));
    }
    rows.sort();
    // DataFusion's own batch tables read what the sink wrote through the same registered store.
    ctx.session()
        .sql("CREATE EXTERNAL TABLE written STORED AS PARQUET LOCATION 'memory://out/w/'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let counted = ctx
        .session()
        .sql("SELECT COUNT(*) AS n, SUM(total) AS t FROM written")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(lines(&counted), vec!["5,25"]);
    assert_eq!(
        rows,
        vec![
            "2024-05-01T12:58:00,A,tech,2,11",
            "2024-05-01T12:58:00,B,retail,1,2",
            "2024-05-01T12:59:00,A,tech,1,3",
            "2024-05-01T13:00:00,A,tech,1,4",
            "2024-05-01T13:00:00,B,retail,1,5",
        ]
    );
}

#[tokio::test]
async fn stop_completes_open_files_and_keeps_every_row() {
    let ctx = context();
    create_trades(&ctx).await;
    ctx.sql(
        "CREATE SINK raw WITH ('connector' = 'filesystem', 'path' = 'memory://out/raw', 'format' = 'json')",
    )
    .await
    .unwrap();
    let mut q = ctx
        .query("INSERT INTO raw SELECT sym, qty FROM trades WHERE qty > 1")
        .await
        .unwrap();
    let handle = ctx.replay_handle("trades").await.unwrap();
    handle
        .push(0, trades(&[(0, "A", 1), (1, "B", 2), (2, "C", 3)]), None)
        .unwrap();
    handle.push(1, trades(&[(0, "D", 4)]), None).unwrap();
    // The input does not end: rows are written into open files, nothing is complete yet.
    let first = tokio::time::timeout(Duration::from_millis(300), q.stream().next()).await;
    assert!(first.is_err(), "no object is complete before the stop");
    let counters = Arc::clone(q.sink_counters().unwrap());
    assert_eq!(counters.rows_in(), 3);
    assert_eq!(counters.rows_written(), 0);
    let out = store(&ctx, "memory://out").await;
    assert!(list_paths(&out, "raw").await.is_empty());
    // A second INSERT into the same file sink while this one runs is refused.
    let e = match ctx
        .query("INSERT INTO raw SELECT sym, qty FROM trades")
        .await
    {
        Ok(_) => panic!("a second INSERT must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("sink 'raw' (memory://out/raw) already has a running INSERT"),
        "{e}"
    );
    q.stop();
    let reports = q.collect().await.unwrap();
    let mut report_rows = lines(&reports);
    report_rows.sort();
    assert_eq!(report_rows.len(), 2, "{report_rows:?}");
    assert!(report_rows[0].starts_with("raw,memory://out/raw/raw-0-000000.json,2,"));
    assert!(report_rows[1].starts_with("raw,memory://out/raw/raw-1-000000.json,1,"));
    assert_eq!(counters.rows_written(), 3);
    assert_eq!(
        read_text(&out, "raw/raw-0-000000.json").await,
        "{\"sym\":\"B\",\"qty\":2}\n{\"sym\":\"C\",\"qty\":3}\n"
    );
    assert_eq!(
        read_text(&out, "raw/raw-1-000000.json").await,
        "{\"sym\":\"D\",\"qty\":4}\n"
    );
    // The sink is free again once the INSERT ended.
    let again = ctx
        .query("INSERT INTO raw SELECT sym, qty FROM trades")
        .await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn sink_and_table_errors_name_the_option_column_or_resource() {
    let ctx = context();
    create_trades(&ctx).await;
    let err = |sql: &'static str| {
        let ctx = &ctx;
        async move { ctx.sql(sql).await.unwrap_err().to_string() }
    };
    let e = err("CREATE SINK s WITH ('connector' = 'object_store', 'path' = 'memory://o/p', 'rolll_rows' = '5')").await;
    assert!(e.contains("unknown option(s) 'rolll_rows'"), "{e}");
    let e = err("CREATE SINK s WITH ('connector' = 'object_store')").await;
    assert!(
        e.contains("sink 's' (connector 'object_store'): option 'path' is required"),
        "{e}"
    );
    let e = err("CREATE SINK s WITH ('connector' = 'nope')").await;
    assert!(
        e.contains("CREATE SINK s: unknown connector 'nope'; sink connectors: filesystem, kinesis, object_store"),
        "{e}"
    );
    let e = err("CREATE SINK s (a INT)").await;
    assert!(e.contains("CREATE SINK s: expected WITH"), "{e}");
    let e = err("CREATE SINK s (ts TIMESTAMP) WITH ('connector' = 'object_store', 'path' = 'memory://o/p', 'partition_by' = 'dt_hour(event_ts)')").await;
    assert!(e.contains("partition column 'event_ts'"), "{e}");
    let e = err(
        "CREATE TABLE t WITH ('connector' = 'object_store', 'path' = 'memory://ref/missing.csv')",
    )
    .await;
    assert!(e.contains("memory://ref/missing.csv"), "{e}");
    let e = err("CREATE TABLE t WITH ('connector' = 'object_store', 'path' = 'memory://ref/x', 'reload' = '1s')").await;
    assert!(e.contains("'format' is required"), "{e}");
    let e = err("CREATE TABLE t WITH ('connector' = 'object_store', 'path' = 'memory://ref/x.csv', 'reload' = '1s')").await;
    assert!(e.contains("unknown option(s) 'reload'"), "{e}");

    ctx.sql(
        "CREATE SINK out (sym VARCHAR, qty BIGINT) WITH ('connector' = 'object_store', 'path' = 'memory://o/out')",
    )
    .await
    .unwrap();
    let e =
        err("CREATE SINK out WITH ('connector' = 'object_store', 'path' = 'memory://o/out')").await;
    assert!(
        e.contains("CREATE SINK out: a sink with this name already exists (use CREATE OR REPLACE)"),
        "{e}"
    );
    let e =
        err("CREATE SINK trades WITH ('connector' = 'object_store', 'path' = 'memory://o/out')")
            .await;
    assert!(
        e.contains("CREATE SINK trades: a stream with this name already exists"),
        "{e}"
    );
    let qerr = |sql: &'static str| {
        let ctx = &ctx;
        async move {
            match ctx.query(sql).await {
                Ok(_) => panic!("{sql} should fail"),
                Err(e) => e.to_string(),
            }
        }
    };
    let e = qerr("INSERT INTO out SELECT sym FROM trades").await;
    assert!(
        e.contains("INSERT INTO out: the query has 1 columns (sym) but the sink declares 2 (sym Utf8, qty Int64)"),
        "{e}"
    );
    let e = qerr("INSERT INTO out SELECT sym, ts FROM trades").await;
    assert!(
        e.contains("INSERT INTO out: column 2 'ts' of the query is Timestamp(ms), but the sink's column 'qty' is Int64; cast it in the query")
            || e.contains("INSERT INTO out: column 2 'ts' of the query is Timestamp(Millisecond, None), but the sink's column 'qty' is Int64"),
        "{e}"
    );
    let e = qerr("INSERT INTO out (sym, qty) SELECT sym, qty FROM trades").await;
    assert!(e.contains("a column list is not supported"), "{e}");
    let e = err("INSERT INTO out SELECT sym, qty FROM trades").await;
    assert!(
        e.contains("INSERT INTO sink 'out' is a continuous query"),
        "{e}"
    );
    // Numbers widen implicitly (INT → BIGINT), by position, under the sink's names.
    let q = ctx
        .query("INSERT INTO out SELECT sym AS s, CAST(qty AS INT) AS q FROM trades")
        .await
        .unwrap();
    assert_eq!(q.plan().schema().field(0).name(), "sym");
    assert_eq!(q.plan().schema().field(1).data_type(), &DataType::Int64);
}
