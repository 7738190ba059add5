//! Reference tables from object storage: CSV / JSON lines / Parquet / KDA ReferenceSchema from
//! memory://, file:// and S3 (a local moto server), reloaded on demand and on a schedule with
//! the object's version recorded, joined by streams in DataFusion SQL and in a KDA
//! application, and the errors for missing objects, buckets and endpoints.

mod objstore_support;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion_stream::errors::FailOnError;
use datafusion_stream::{
    LateRowPolicy, ManualClock, ReplaySource, RowtimeMode, StreamContext, StreamRuntime,
};
use datafusion_stream_connectors::kda::InputSchema;
use datafusion_stream_connectors::object_store::{
    ReferenceFormat, ReferenceTable, ReferenceTableOptions, ReloadOutcome, StoreLocation,
    StoreOptions,
};
use datafusion_stream_kda::KdaApplication;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objstore_support::*;

async fn put(store: &Arc<dyn ObjectStore>, path: &str, text: &str) {
    store
        .put(&Path::from(path), PutPayload::from(text.to_string()))
        .await
        .unwrap();
}

fn csv() -> ReferenceTableOptions {
    ReferenceTableOptions::new(ReferenceFormat::Csv {
        header: true,
        delimiter: b',',
    })
}

fn runtime(clock: Arc<ManualClock>) -> StreamRuntime {
    StreamRuntime {
        clock,
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors: Arc::new(FailOnError),
    }
}

#[tokio::test]
async fn csv_from_memory_reloads_only_when_the_object_changes() {
    let env = RuntimeEnv::default();
    let location =
        StoreLocation::resolve(&env, "memory://ref/companies.csv", &StoreOptions::default())
            .unwrap();
    let store = Arc::clone(location.store());
    put(
        &store,
        "companies.csv",
        "ticker,name,employees\nAMZN,Amazon,1500000\nIBM,IBM Corp.,280000\n",
    )
    .await;
    let table = ReferenceTable::load(location, csv()).await.unwrap();
    // Columns inferred from the object.
    let schema = datafusion::catalog::TableProvider::schema(&table);
    assert_eq!(
        schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>(),
        vec!["ticker Utf8", "name Utf8", "employees Int64"]
    );
    assert_eq!(
        lines(&table.batches()),
        vec!["AMZN,Amazon,1500000", "IBM,IBM Corp.,280000"]
    );
    let v1 = table.current_version();
    assert_eq!(v1.url, "memory://ref/companies.csv");
    assert!(v1.e_tag.is_some());
    assert_eq!(v1.size, 63);

    // Unchanged object: nothing reloaded.
    assert_eq!(
        table.reload().await.unwrap(),
        ReloadOutcome::Unchanged(v1.clone())
    );
    let changes = table.changes();
    assert_eq!(*changes.borrow(), 0);

    // A new version: reloaded, new ETag recorded.
    put(
        &store,
        "companies.csv",
        "ticker,name,employees\nAMZN,Amazon,1500001\nMSFT,Microsoft,220000\nIBM,IBM,280000\n",
    )
    .await;
    let ReloadOutcome::Reloaded {
        previous,
        current,
        rows,
    } = table.reload().await.unwrap()
    else {
        panic!("not reloaded")
    };
    assert_eq!((previous, rows), (v1.clone(), 3));
    assert_ne!(current.e_tag, v1.e_tag);
    assert_eq!(table.current_version(), current);
    assert_eq!(*changes.borrow(), 1);
    assert_eq!(
        lines(&table.batches()),
        vec![
            "AMZN,Amazon,1500001",
            "MSFT,Microsoft,220000",
            "IBM,IBM,280000"
        ]
    );

    // A version that does not decode: the reload fails, the table keeps its rows and version.
    put(
        &store,
        "companies.csv",
        "ticker,name,employees\nAMZN,Amazon,lots\n",
    )
    .await;
    let e = table.reload().await.unwrap_err().to_string();
    assert!(
        e.contains("reference table 'memory://ref/companies.csv'"),
        "{e}"
    );
    assert_eq!(table.num_rows(), 3);
    assert_eq!(table.current_version(), current);

    // A missing object names the URL.
    let missing =
        StoreLocation::resolve(&env, "memory://ref/none.csv", &StoreOptions::default()).unwrap();
    let e = ReferenceTable::load(missing, csv())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reference table: read memory://ref/none.csv: not found"),
        "{e}"
    );
    // A URL naming no object.
    let bucket = StoreLocation::resolve(&env, "memory://ref", &StoreOptions::default()).unwrap();
    let e = ReferenceTable::load(bucket, csv())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("must name an object"), "{e}");
}

#[tokio::test]
async fn json_lines_from_a_file_url_and_parquet() {
    let dir = TempDir::new("reference");
    std::fs::write(
        dir.0.join("rates.jsonl"),
        "{\"currency\":\"EUR\",\"rate\":1.08,\"ignored\":true}\n{\"currency\":\"GBP\",\"rate\":1.27}\n",
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("currency", DataType::Utf8, false),
        Field::new("rate", DataType::Float64, true),
    ]));
    let location = StoreLocation::parse(
        &format!("{}/rates.jsonl", dir.url()),
        &StoreOptions::default(),
    )
    .unwrap();
    let table = ReferenceTable::load(
        location,
        ReferenceTableOptions::new(ReferenceFormat::JsonLines).with_schema(Arc::clone(&schema)),
    )
    .await
    .unwrap();
    assert_eq!(lines(&table.batches()), vec!["EUR,1.08", "GBP,1.27"]);
    assert!(table.current_version().e_tag.is_some());

    // Parquet, written by arrow's writer, in memory.
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["JPY", "CHF"])) as ArrayRef,
            Arc::new(Float64Array::from(vec![Some(0.0067), None])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, Arc::clone(&schema), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    store
        .put(&Path::from("rates.parquet"), PutPayload::from(buf))
        .await
        .unwrap();
    let location = StoreLocation::from_store(
        Arc::clone(&store),
        "rates.parquet",
        "memory://x/rates.parquet",
    );
    let table = ReferenceTable::load(
        location,
        ReferenceTableOptions::new(ReferenceFormat::Parquet),
    )
    .await
    .unwrap();
    assert_eq!(lines(&table.batches()), vec!["JPY,0.0067", "CHF,NULL"]);
    // A reloaded Parquet object with other columns is rejected; the rows stay.
    put(&store, "rates.parquet", "not parquet").await;
    let e = table.reload().await.unwrap_err().to_string();
    assert!(e.contains("not a readable Parquet file"), "{e}");
    assert_eq!(table.num_rows(), 2);
}

#[tokio::test]
async fn kda_reference_schema_decodes_csv_records() {
    let env = RuntimeEnv::default();
    let location =
        StoreLocation::resolve(&env, "memory://kda/companies.csv", &StoreOptions::default())
            .unwrap();
    put(
        location.store(),
        "companies.csv",
        "AMZN;Amazon;1994\nIBM;IBM Corp.;1911\n",
    )
    .await;
    let schema = InputSchema::csv(
        "\n",
        ";",
        [
            ("TICKER", "VARCHAR(4)"),
            ("COMPANY", "VARCHAR(32)"),
            ("FOUNDED", "INTEGER"),
        ],
    );
    let table = ReferenceTable::load(
        location.clone(),
        ReferenceTableOptions::new(ReferenceFormat::Kda(Box::new(schema.clone()))),
    )
    .await
    .unwrap();
    assert_eq!(
        lines(&table.batches()),
        vec!["AMZN,Amazon,1994", "IBM,IBM Corp.,1911"]
    );
    // A record KDA cannot coerce fails the load, naming the object.
    put(location.store(), "companies.csv", "AMZN;Amazon;long ago\n").await;
    let e = table.reload().await.unwrap_err().to_string();
    assert!(e.contains("memory://kda/companies.csv"), "{e}");
    assert!(e.contains("Coercion_Error"), "{e}");
}

fn trades(symbols: &[&str], first_qty: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sym", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(symbols.to_vec())) as ArrayRef,
            Arc::new(Int64Array::from(
                (0..symbols.len() as i64)
                    .map(|i| first_qty + i)
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

async fn join_once(ctx: &StreamContext, stream: &str, batch: RecordBatch) -> Vec<String> {
    ctx.sql(&format!(
        "CREATE STREAM {stream} (sym VARCHAR, qty BIGINT) WITH ('connector' = 'replay')"
    ))
    .await
    .unwrap();
    let handle = ctx.replay_handle(stream).await.unwrap();
    handle.push(0, batch, None).unwrap();
    handle.finish().unwrap();
    let q = ctx
        .query(&format!(
            "SELECT t.sym, t.qty, c.name FROM {stream} AS t JOIN companies AS c ON t.sym = c.ticker"
        ))
        .await
        .unwrap();
    lines(&q.collect().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_reference_table_joined_by_streams_and_reloaded() {
    let moto = MotoServer::start();
    moto.create_bucket("refdata");
    let clock = ManualClock::new(1_000);
    let ctx = StreamContext::with_runtime(runtime(clock.clone()));
    let location = StoreLocation::resolve(
        &ctx.session().runtime_env(),
        "s3://refdata/dims/companies.csv",
        &moto.options(),
    )
    .unwrap();
    put(
        location.store(),
        "dims/companies.csv",
        "ticker,name\nAMZN,Amazon\nIBM,IBM Corp.\n",
    )
    .await;
    let table = ReferenceTable::load(location.clone(), csv()).await.unwrap();
    let v1 = table.current_version();
    assert_eq!(v1.url, "s3://refdata/dims/companies.csv");
    assert!(v1.e_tag.is_some());
    ctx.session()
        .register_table("companies", Arc::new(table.clone()))
        .unwrap();

    // A stream joined with the table: the lookup join reads it when the query starts.
    assert_eq!(
        join_once(&ctx, "s1", trades(&["AMZN", "XYZ", "IBM", "AMZN"], 1)).await,
        vec!["AMZN,1,Amazon", "IBM,3,IBM Corp.", "AMZN,4,Amazon"]
    );

    // The object changes: an on-demand reload records the new ETag, new queries see it.
    put(
        location.store(),
        "dims/companies.csv",
        "ticker,name\nAMZN,Amazon.com\nXYZ,Xyz Inc.\n",
    )
    .await;
    let ReloadOutcome::Reloaded { current: v2, .. } = table.reload().await.unwrap() else {
        panic!("not reloaded")
    };
    assert_ne!(v2.e_tag, v1.e_tag);
    assert_eq!(
        join_once(&ctx, "s2", trades(&["AMZN", "XYZ", "IBM"], 10)).await,
        vec!["AMZN,10,Amazon.com", "XYZ,11,Xyz Inc."]
    );
    assert_eq!(
        table.reload().await.unwrap(),
        ReloadOutcome::Unchanged(v2.clone())
    );

    // On a schedule: every 10 s of the context clock.
    let task = table.start_reloading(Duration::from_secs(10), clock.clone());
    let mut changes = table.changes();
    changes.borrow_and_update();
    put(
        location.store(),
        "dims/companies.csv",
        "ticker,name\nIBM,International Business Machines\n",
    )
    .await;
    clock.advance_by(Duration::from_secs(10));
    tokio::time::timeout(Duration::from_secs(20), changes.changed())
        .await
        .expect("scheduled reload within 20 s")
        .unwrap();
    let v3 = table.current_version();
    assert_ne!(v3.e_tag, v2.e_tag);
    assert_eq!(table.last_error(), None);
    task.stop().await;
    assert_eq!(
        join_once(&ctx, "s3", trades(&["IBM"], 20)).await,
        vec!["IBM,20,International Business Machines"]
    );

    // The same table in a KDA application.
    let app_clock = ManualClock::new(0);
    let mut app = KdaApplication::new(runtime(app_clock)).unwrap();
    let input_schema = Arc::new(Schema::new(vec![
        Field::new("TICKER", DataType::Utf8, true),
        Field::new("PRICE", DataType::Float64, true),
    ]));
    let source = ReplaySource::new(Arc::clone(&input_schema), 1, RowtimeMode::Supplied);
    let handle = source.handle();
    app.add_input("SOURCE_SQL_STREAM_001", Arc::new(source))
        .unwrap();
    let kda_location = StoreLocation::parse("s3://refdata/dims/kda.csv", &moto.options()).unwrap();
    put(
        kda_location.store(),
        "dims/kda.csv",
        "AMZN,Amazon\nIBM,IBM Corp.\n",
    )
    .await;
    let kda_table = ReferenceTable::load(
        kda_location,
        ReferenceTableOptions::new(ReferenceFormat::Kda(Box::new(InputSchema::csv(
            "\n",
            ",",
            [("TICKER", "VARCHAR(4)"), ("COMPANY", "VARCHAR(32)")],
        )))),
    )
    .await
    .unwrap();
    app.add_reference_table("COMPANIES", Arc::new(kda_table))
        .unwrap();
    app.load_code(
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (TICKER VARCHAR(4), COMPANY VARCHAR(32), PRICE DOUBLE);
         CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
           SELECT STREAM s.TICKER, c.COMPANY, s.PRICE
           FROM SOURCE_SQL_STREAM_001 AS s LEFT JOIN COMPANIES AS c ON s.TICKER = c.TICKER;",
    )
    .unwrap();
    app.add_output("DESTINATION_SQL_STREAM").unwrap();
    let mut running = app.start().await.unwrap();
    let batch = RecordBatch::try_new(
        input_schema,
        vec![
            Arc::new(StringArray::from(vec!["IBM", "NONE", "AMZN"])) as ArrayRef,
            Arc::new(Float64Array::from(vec![150.0, 1.0, 100.5])),
        ],
    )
    .unwrap();
    let rowtime: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![
        1_704_103_200_000,
        1_704_103_201_000,
        1_704_103_202_000,
    ]));
    handle.push(0, batch, Some(rowtime)).unwrap();
    handle.finish().unwrap();
    running.run_until_stalled().unwrap();
    assert_eq!(
        lines(&running.take_output("DESTINATION_SQL_STREAM")),
        vec![
            "2024-01-01T10:00:00,IBM,IBM Corp.,150.0",
            "2024-01-01T10:00:01,NONE,NULL,1.0",
            "2024-01-01T10:00:02,AMZN,Amazon,100.5"
        ]
    );

    // Errors: a missing object, a missing bucket, an unreachable endpoint.
    let e = ReferenceTable::load(moto.location("s3://refdata/dims/none.csv"), csv())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3://refdata/dims/none.csv: not found"), "{e}");
    let e = ReferenceTable::load(moto.location("s3://nobucket/dims/a.csv"), csv())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("bucket 'nobucket' does not exist"), "{e}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = StoreOptions::local_endpoint(format!("http://127.0.0.1:{port}"))
        .with_credentials("test", "test")
        .with_max_retries(0);
    let e = ReferenceTable::load(
        StoreLocation::parse("s3://refdata/a.csv", &options).unwrap(),
        csv(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("cannot reach endpoint 'http://127.0.0.1:{port}'")),
        "{e}"
    );
}
