//! The Kinesis source and sink against a real local Kinesis server (kinesalite, installed by
//! scripts/test.sh), with a loopback proxy injecting the faults the server cannot produce
//! (throttling, expired iterators, partial PutRecords failures).

mod kinesis_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_stream::errors::{CollectingErrorSink, ErrorSink};
use datafusion_stream::source::ConnectorOptions;
use datafusion_stream::{LateRowPolicy, StreamContext, StreamQuery, StreamRuntime, SystemClock};
use datafusion_stream_connectors::kinesis::{
    kpl, run_query_into_kinesis, KinesisClient, KinesisMetrics, KinesisSource, PutEntry, PutResult,
    StartPosition,
};
use datafusion_stream_connectors::register_all;
use futures::StreamExt;
use kinesis_support::{client, create_stream, Fault, FaultProxy, Kinesalite};

fn context(errors: Arc<dyn ErrorSink>) -> StreamContext {
    let ctx = StreamContext::with_runtime(StreamRuntime {
        clock: Arc::new(SystemClock),
        tick_interval: Duration::from_millis(100),
        idle_timeout: None,
        late_rows: LateRowPolicy::Drop,
        errors,
    });
    register_all(&ctx);
    ctx
}

/// Each row as its column values rendered as text.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(f.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    out
}

/// Reads `n` rows from a running query (fails after `secs` seconds).
async fn take_rows(q: &mut StreamQuery, n: usize, secs: u64) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, q.stream().next()).await {
            Ok(Some(b)) => out.extend(rows(&[b.unwrap()])),
            Ok(None) => panic!("the query ended after {} of {n} rows", out.len()),
            Err(_) => panic!("timed out after {} of {n} rows: {out:?}", out.len()),
        }
    }
    assert_eq!(out.len(), n, "more rows than expected: {out:?}");
    out
}

/// No more rows arrive for a while.
async fn expect_no_more(q: &mut StreamQuery, millis: u64) {
    if let Ok(Some(b)) =
        tokio::time::timeout(Duration::from_millis(millis), q.stream().next()).await
    {
        panic!("unexpected rows: {:?}", rows(&[b.unwrap()]));
    }
}

async fn put(c: &KinesisClient, stream: &str, key: &str, data: &str) -> (String, String) {
    c.put_record(
        stream,
        &PutEntry {
            partition_key: key.to_string(),
            data: data.as_bytes().to_vec(),
            explicit_hash_key: None,
        },
    )
    .await
    .unwrap()
}

async fn source_metrics(ctx: &StreamContext, name: &str) -> Arc<KinesisMetrics> {
    let table = ctx.stream_table(name).await.unwrap();
    let source = table
        .source()
        .as_any()
        .downcast_ref::<KinesisSource>()
        .expect("a Kinesis source");
    Arc::clone(source.metrics())
}

fn ddl(name: &str, columns: &str, stream: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "CREATE STREAM {name} ({columns}) WITH ('connector' = 'kinesis', 'stream' = '{stream}', \
         'region' = 'us-east-1', 'endpoint' = '{endpoint}', 'starting_position' = 'TRIM_HORIZON', \
         'poll_interval' = '200ms', 'shard_refresh_interval' = '1s'{extra})"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_shard_read_keeps_per_shard_order_and_metadata() {
    let server = Kinesalite::start();
    let c = client(&server.endpoint());
    create_stream(&c, "multi", 3).await;
    let entries: Vec<PutEntry> = (0..300)
        .map(|i| PutEntry {
            partition_key: format!("k{}", i % 10),
            data: format!(r#"{{"k":"k{}","n":{i}}}"#, i % 10).into_bytes(),
            explicit_hash_key: None,
        })
        .collect();
    let results = c.put_records("multi", &entries).await.unwrap();
    let placed: Vec<(String, String)> = results
        .into_iter()
        .map(|r| match r {
            PutResult::Ok {
                shard_id,
                sequence_number,
            } => (shard_id, sequence_number),
            f => panic!("{f:?}"),
        })
        .collect();
    let shards: std::collections::BTreeSet<&String> = placed.iter().map(|p| &p.0).collect();
    assert_eq!(shards.len(), 3, "the keys spread over the 3 shards");

    let ctx = context(Arc::new(CollectingErrorSink::default()));
    ctx.sql(&ddl(
        "s",
        "k VARCHAR, n BIGINT, shard_id VARCHAR, sequence_number VARCHAR, partition_key VARCHAR, \
         approximate_arrival_time TIMESTAMP",
        "multi",
        &server.endpoint(),
        ", 'max_records' = '40'",
    ))
    .await
    .unwrap();
    let table = ctx.stream_table("s").await.unwrap();
    assert_eq!(
        table.source().partition_count(),
        3,
        "one partition per shard"
    );
    let mut q = ctx
        .query("SELECT k, n, shard_id, sequence_number, partition_key, approximate_arrival_time FROM s")
        .await
        .unwrap();
    let got = take_rows(&mut q, 300, 60).await;
    let mut seen = vec![false; 300];
    let mut per_shard: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in &got {
        let n: usize = r[1].parse().unwrap();
        assert!(!seen[n], "row {n} twice");
        seen[n] = true;
        assert_eq!(r[0], format!("k{}", n % 10));
        assert_eq!(
            (&r[2], &r[3]),
            (&placed[n].0, &placed[n].1),
            "shard / sequence of {n}"
        );
        assert_eq!(r[4], r[0], "partition key");
        assert_ne!(r[5], "NULL", "arrival time");
        per_shard.entry(r[2].clone()).or_default().push(n);
    }
    for (shard, ns) in per_shard {
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "shard {shard} out of order");
    }
    expect_no_more(&mut q, 500).await;
    let m = source_metrics(&ctx, "s").await;
    assert_eq!(KinesisMetrics::get(&m.rows), 300);
    assert_eq!(m.millis_behind_latest_per_shard().len(), 3);
}

/// Halves the hash range of `shard`.
async fn split(c: &KinesisClient, stream: &str, shard: &str) {
    let shards = c.list_shards(stream).await.unwrap();
    let s = shards.iter().find(|s| s.shard_id == shard).unwrap();
    let lo: u128 = s.starting_hash_key.parse().unwrap();
    let hi: u128 = s.ending_hash_key.parse().unwrap();
    let mid = lo + (hi - lo) / 2 + 1;
    c.split_shard(stream, shard, &mid.to_string())
        .await
        .unwrap();
    c.wait_active(stream, Duration::from_secs(10))
        .await
        .unwrap();
}

async fn wave(c: &KinesisClient, stream: &str, from: usize, to: usize) {
    let entries: Vec<PutEntry> = (from..to)
        .map(|i| PutEntry {
            partition_key: format!("key{}", i % 8),
            data: format!(r#"{{"k":"key{}","n":{i}}}"#, i % 8).into_bytes(),
            explicit_hash_key: None,
        })
        .collect();
    for r in c.put_records(stream, &entries).await.unwrap() {
        assert!(matches!(r, PutResult::Ok { .. }), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_split_and_a_merge_during_a_read() {
    let server = Kinesalite::start();
    let c = client(&server.endpoint());
    create_stream(&c, "reshard", 2).await;
    wave(&c, "reshard", 0, 200).await;

    let ctx = context(Arc::new(CollectingErrorSink::default()));
    // 5 records per GetRecords call, 200 ms apart: wave 1 takes seconds to read, longer than
    // the shard refresh interval, so the children are listed while shard 0 is being read.
    ctx.sql(&ddl(
        "s",
        "k VARCHAR, n BIGINT, shard_id VARCHAR",
        "reshard",
        &server.endpoint(),
        ", 'max_records' = '5'",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT k, n, shard_id FROM s").await.unwrap();

    // Split shard 0 while its first records are still unread, and write wave 2 to its
    // children: a child may only be read once shard 0 reached its end (else a key's wave-2
    // records would overtake its wave-1 records).
    split(&c, "reshard", "shardId-000000000000").await;
    wave(&c, "reshard", 200, 280).await;
    let mut got = take_rows(&mut q, 280, 60).await;

    // Merge the upper child of shard 0 with shard 1: the merged shard has parents read by two
    // different partitions, and waits for both.
    let shards = c.list_shards("reshard").await.unwrap();
    let mut children: Vec<_> = shards
        .iter()
        .filter(|s| s.parent.as_deref() == Some("shardId-000000000000"))
        .collect();
    children.sort_by_key(|s| s.starting_hash_key.parse::<u128>().unwrap());
    assert_eq!(children.len(), 2);
    c.merge_shards("reshard", &children[1].shard_id, "shardId-000000000001")
        .await
        .unwrap();
    c.wait_active("reshard", Duration::from_secs(10))
        .await
        .unwrap();
    wave(&c, "reshard", 280, 320).await;
    got.extend(take_rows(&mut q, 40, 30).await);
    expect_no_more(&mut q, 500).await;

    let shards = c.list_shards("reshard").await.unwrap();
    let merged = shards
        .iter()
        .find(|s| s.adjacent_parent.is_some())
        .expect("a merged shard");
    let mut seen = vec![false; 320];
    let mut per_key: HashMap<String, Vec<usize>> = HashMap::new();
    let mut shards_seen = std::collections::BTreeSet::new();
    for r in &got {
        let n: usize = r[1].parse().unwrap();
        assert!(!seen[n], "row {n} twice");
        seen[n] = true;
        per_key.entry(r[0].clone()).or_default().push(n);
        shards_seen.insert(r[2].clone());
        if n >= 280 && r[2] != merged.shard_id {
            // Wave 3 goes to the merged shard or the lower child of shard 0.
            assert_eq!(r[2], children[0].shard_id, "row {n}");
        }
    }
    assert!(seen.iter().all(|s| *s));
    for (k, ns) in per_key {
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "key {k} out of order");
    }
    assert!(shards_seen.contains(&merged.shard_id), "{shards_seen:?}");
    assert!(
        shards_seen.contains(&children[0].shard_id),
        "{shards_seen:?}"
    );
    let m = source_metrics(&ctx, "s").await;
    assert!(
        KinesisMetrics::get(&m.shards_finished) >= 3,
        "shard 0, its upper child and shard 1 ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_backs_off_and_keeps_its_place() {
    let server = Kinesalite::start();
    let proxy = FaultProxy::start(server.port).await;
    let c = client(&server.endpoint());
    create_stream(&c, "throttled", 1).await;
    for i in 0..20 {
        put(&c, "throttled", "k", &format!(r#"{{"n":{i}}}"#)).await;
    }
    for nth in [2, 3, 4] {
        proxy.fault(
            "GetRecords",
            nth,
            Fault::Error("ProvisionedThroughputExceededException"),
        );
    }
    let ctx = context(Arc::new(CollectingErrorSink::default()));
    ctx.sql(&ddl(
        "s",
        "n BIGINT",
        "throttled",
        &proxy.endpoint(),
        ", 'max_records' = '5'",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT n FROM s").await.unwrap();
    let got = take_rows(&mut q, 20, 30).await;
    let ns: Vec<String> = got.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(ns, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    expect_no_more(&mut q, 300).await;
    let m = source_metrics(&ctx, "s").await;
    assert_eq!(KinesisMetrics::get(&m.throttled), 3);
    // The throttled calls retried the same iterator: one iterator for the whole read.
    assert_eq!(proxy.count("GetShardIterator"), 1);
    let calls = proxy.calls("GetRecords");
    let iterators: Vec<&str> = calls[1..4]
        .iter()
        .map(|c| c.body["ShardIterator"].as_str().unwrap())
        .collect();
    assert!(iterators.iter().all(|i| *i == iterators[0]));
    // Backoff: 250 ms, then 500 ms, then 1 s between the retries.
    let gaps: Vec<u128> = calls[1..5]
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert!(
        gaps[0] >= 240 && gaps[1] >= 490 && gaps[2] >= 990,
        "{gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_iterator_is_reacquired_after_the_last_record() {
    let server = Kinesalite::start();
    let proxy = FaultProxy::start(server.port).await;
    let c = client(&server.endpoint());
    create_stream(&c, "expiring", 1).await;
    let mut seqs = Vec::new();
    for i in 0..20 {
        seqs.push(put(&c, "expiring", "k", &format!(r#"{{"n":{i}}}"#)).await.1);
    }
    proxy.fault("GetRecords", 3, Fault::Error("ExpiredIteratorException"));
    let ctx = context(Arc::new(CollectingErrorSink::default()));
    ctx.sql(&ddl(
        "s",
        "n BIGINT",
        "expiring",
        &proxy.endpoint(),
        ", 'max_records' = '5'",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT n FROM s").await.unwrap();
    let got = take_rows(&mut q, 20, 30).await;
    let ns: Vec<String> = got.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(ns, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    expect_no_more(&mut q, 300).await;
    let m = source_metrics(&ctx, "s").await;
    assert_eq!(KinesisMetrics::get(&m.expired_iterators), 1);
    let its = proxy.calls("GetShardIterator");
    assert_eq!(its.len(), 2);
    assert_eq!(its[0].body["ShardIteratorType"], "TRIM_HORIZON");
    assert_eq!(its[1].body["ShardIteratorType"], "AFTER_SEQUENCE_NUMBER");
    assert_eq!(
        its[1].body["StartingSequenceNumber"].as_str().unwrap(),
        seqs[9],
        "after the 10th record, the last one processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stays_within_five_get_records_per_second_per_shard() {
    let server = Kinesalite::start();
    let proxy = FaultProxy::start(server.port).await;
    let c = client(&server.endpoint());
    create_stream(&c, "paced", 1).await;
    let entries: Vec<PutEntry> = (0..400)
        .map(|i| PutEntry {
            partition_key: "k".into(),
            data: format!(r#"{{"n":{i}}}"#).into_bytes(),
            explicit_hash_key: None,
        })
        .collect();
    c.put_records("paced", &entries).await.unwrap();
    let ctx = context(Arc::new(CollectingErrorSink::default()));
    // A shard far behind (1 record per call) is polled as fast as allowed.
    ctx.sql(&ddl(
        "s",
        "n BIGINT",
        "paced",
        &proxy.endpoint(),
        ", 'max_records' = '1'",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT n FROM s").await.unwrap();
    take_rows(&mut q, 8, 30).await;
    let calls = proxy.calls("GetRecords");
    assert!(calls.len() >= 8);
    let gaps: Vec<u128> = calls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert!(gaps.iter().all(|g| *g >= 195), "{gaps:?}");
    assert!(
        gaps.iter().take(6).all(|g| *g < 700),
        "not much slower than needed: {gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_are_deaggregated_and_bad_ones_reported() {
    let server = Kinesalite::start();
    let c = client(&server.endpoint());
    create_stream(&c, "kpl", 1).await;
    let agg = kpl::aggregate(&[
        ("a", br#"{"n":1}"#.to_vec()),
        ("b", br#"{"n":2}"#.to_vec()),
        ("a", br#"{"n":3}"#.to_vec()),
    ]);
    let (_, seq_agg) = c
        .put_record(
            "kpl",
            &PutEntry {
                partition_key: "agg".into(),
                data: agg.clone(),
                explicit_hash_key: None,
            },
        )
        .await
        .unwrap();
    let (_, seq_plain) = put(&c, "kpl", "plain", r#"{"n":4}"#).await;
    let mut corrupt = agg.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let (_, seq_bad) = c
        .put_record(
            "kpl",
            &PutEntry {
                partition_key: "bad".into(),
                data: corrupt.clone(),
                explicit_hash_key: None,
            },
        )
        .await
        .unwrap();
    let (_, seq_after) = put(&c, "kpl", "plain", r#"{"n":5}"#).await;

    let sink = Arc::new(CollectingErrorSink::default());
    let ctx = context(Arc::clone(&sink) as Arc<dyn ErrorSink>);
    ctx.sql(&ddl(
        "s",
        "n BIGINT, partition_key VARCHAR, sequence_number VARCHAR, sub_sequence_number BIGINT",
        "kpl",
        &server.endpoint(),
        "",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT * FROM s").await.unwrap();
    let got = take_rows(&mut q, 5, 30).await;
    let expect = |n: &str, pk: &str, seq: &str, sub: &str| {
        vec![
            n.to_string(),
            pk.to_string(),
            seq.to_string(),
            sub.to_string(),
        ]
    };
    assert_eq!(
        got,
        vec![
            expect("1", "a", &seq_agg, "0"),
            expect("2", "b", &seq_agg, "1"),
            expect("3", "a", &seq_agg, "2"),
            expect("4", "plain", &seq_plain, "0"),
            expect("5", "plain", &seq_after, "0"),
        ]
    );
    let errors = sink.take();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].name, "Parse_Error");
    assert_eq!(errors[0].data_row, corrupt);
    assert_eq!(
        errors[0].message,
        format!(
            "stream 's': shard shardId-000000000000 sequence number {seq_bad}: KPL aggregated \
             record: MD5 checksum mismatch"
        )
    );
    assert!(errors[0].from_input);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_go_to_the_error_sink_with_shard_sequence_and_bytes() {
    let server = Kinesalite::start();
    let c = client(&server.endpoint());
    create_stream(&c, "bad", 1).await;
    let records = [
        r#"{"TICKER":"AMZN","PRICE":84.5}"#,
        r#"{"TICKER":"BRK"#,
        r#"{"TICKER":"XYZ","PRICE":"cheap"}"#,
        r#"{"TICKER":"ABC","PRICE":"12.25"}"#,
    ];
    let mut seqs = Vec::new();
    for r in records {
        seqs.push(put(&c, "bad", "k", r).await.1);
    }
    let schema = r#"{"RecordColumns": [
        {"SqlType": "VARCHAR(8)", "Name": "TICKER", "Mapping": "$.TICKER"},
        {"SqlType": "DOUBLE", "Name": "PRICE", "Mapping": "$.PRICE"}],
      "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}}}"#;
    let sink = Arc::new(CollectingErrorSink::default());
    let ctx = context(Arc::clone(&sink) as Arc<dyn ErrorSink>);
    ctx.sql(&ddl(
        "\"SOURCE_SQL_STREAM_001\"",
        "\"TICKER\" VARCHAR(8), \"PRICE\" DOUBLE, \"SEQUENCE_NUMBER\" VARCHAR",
        "bad",
        &server.endpoint(),
        &format!(", 'input_schema' = '{schema}'"),
    ))
    .await
    .unwrap();
    let mut q = ctx
        .query("SELECT \"TICKER\", \"PRICE\", \"SEQUENCE_NUMBER\" FROM \"SOURCE_SQL_STREAM_001\"")
        .await
        .unwrap();
    let got = take_rows(&mut q, 2, 30).await;
    assert_eq!(
        got,
        vec![
            vec!["AMZN".to_string(), "84.5".to_string(), seqs[0].clone()],
            vec!["ABC".to_string(), "12.25".to_string(), seqs[3].clone()],
        ]
    );
    let errors = sink.take();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (e, i) in errors.iter().zip([1, 2]) {
        assert_eq!(e.data_row, records[i].as_bytes());
        let origin = format!(
            "stream 'SOURCE_SQL_STREAM_001': shard shardId-000000000000 sequence number {}",
            seqs[i]
        );
        assert!(e.message.starts_with(&origin), "{}", e.message);
        assert!(e.from_input);
    }
    assert_eq!(errors[0].name, "Parse_Error");
    assert_eq!(errors[1].name, "Coercion_Error");

    // Without an error stream (the default policy) a bad record fails the query, naming it.
    let ctx = context(Arc::new(datafusion_stream::errors::FailOnError));
    ctx.sql(&ddl(
        "s",
        "\"TICKER\" VARCHAR, \"PRICE\" DOUBLE",
        "bad",
        &server.endpoint(),
        "",
    ))
    .await
    .unwrap();
    let mut q = ctx.query("SELECT * FROM s").await.unwrap();
    let mut failure = None;
    while let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(10), q.stream().next()).await {
        if let Err(e) = b {
            failure = Some(e.to_string());
            break;
        }
    }
    let failure = failure.expect("the query fails");
    assert!(
        failure.contains(&format!(
            "shard shardId-000000000000 sequence number {}",
            seqs[1]
        )),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_tumbling_windows_over_event_time_from_two_shards() {
    let server = Kinesalite::start();
    let c = client(&server.endpoint());
    create_stream(&c, "trades", 2).await;
    let shards = c.list_shards("trades").await.unwrap();
    let hash = |i: usize| shards[i].starting_hash_key.clone();
    // (shard, symbol, price, second of the minute)
    let trades = [
        (0, "A", 10, 1),
        (1, "B", 5, 2),
        (0, "A", 20, 4),
        (1, "B", 7, 9),
        (0, "C", 1, 11),
        (1, "A", 30, 12),
        (0, "A", 40, 15),
        (1, "B", 1, 19),
        // Late for nothing: the watermark is the minimum over both shards.
        (0, "C", 2, 25),
        (1, "C", 3, 21),
        // Closing records (one per shard) move the watermark past 00:00:30.
        (0, "Z", 0, 59),
        (1, "Z", 0, 59),
    ];
    let entries: Vec<PutEntry> = trades
        .iter()
        .map(|(shard, sym, price, sec)| PutEntry {
            partition_key: sym.to_string(),
            data: format!(r#"{{"sym":"{sym}","price":{price},"ts":"2024-05-01 12:00:{sec:02}"}}"#)
                .into_bytes(),
            explicit_hash_key: Some(hash(*shard)),
        })
        .collect();
    for r in c.put_records("trades", &entries).await.unwrap() {
        assert!(matches!(r, PutResult::Ok { .. }), "{r:?}");
    }
    let ctx = context(Arc::new(CollectingErrorSink::default()));
    ctx.sql(&ddl(
        "trades",
        "sym VARCHAR, price BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
        "trades",
        &server.endpoint(),
        "",
    ))
    .await
    .unwrap();
    let mut q = ctx
        .query(
            "SELECT window_start, window_end, sym, COUNT(*) AS n, SUM(price) AS total \
             FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
             GROUP BY window_start, window_end, sym",
        )
        .await
        .unwrap();
    let mut got = take_rows(&mut q, 6, 30).await;
    got.sort();
    let row = |s: &str, e: &str, sym: &str, n: &str, t: &str| {
        vec![
            format!("2024-05-01T12:00:{s}"),
            format!("2024-05-01T12:00:{e}"),
            sym.to_string(),
            n.to_string(),
            t.to_string(),
        ]
    };
    assert_eq!(
        got,
        vec![
            row("00", "10", "A", "2", "30"),
            row("00", "10", "B", "2", "12"),
            row("10", "20", "A", "2", "70"),
            row("10", "20", "B", "1", "1"),
            row("10", "20", "C", "1", "1"),
            row("20", "30", "C", "2", "5"),
        ]
    );
    // The 12:00:50 window waits for a watermark past 12:01:00.
    expect_no_more(&mut q, 1500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_writes_a_query_output_in_batches_and_retries_failed_records() {
    let server = Kinesalite::start();
    let proxy = FaultProxy::start(server.port).await;
    let c = client(&server.endpoint());
    create_stream(&c, "out", 2).await;
    // Input: a CSV file of 1200 rows, replayed by the file connector (bounded).
    let dir = std::env::temp_dir().join(format!("dfstream-kinesis-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.csv");
    let mut csv = String::from("sym,v\n");
    for i in 0..1200 {
        csv.push_str(&format!("s{},{i}\n", i % 7));
    }
    std::fs::write(&path, csv).unwrap();
    proxy.fault("PutRecords", 1, Fault::PartialPut { every: 3 });

    let ctx = context(Arc::new(CollectingErrorSink::default()));
    ctx.sql(&format!(
        "CREATE STREAM input (sym VARCHAR, v BIGINT) WITH ('connector' = 'file', 'path' = '{}', \
         'batch_size' = '700')",
        path.display()
    ))
    .await
    .unwrap();
    let mut options = ConnectorOptions::new(
        "kinesis",
        [
            ("stream", "out"),
            ("region", "us-east-1"),
            ("endpoint", proxy.endpoint().as_str()),
            ("partition_key_column", "sym"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let summary = run_query_into_kinesis(&ctx, "SELECT sym, v * 2 AS v2 FROM input", &mut options)
        .await
        .unwrap();
    assert_eq!(summary.rows, 1200);
    let _ = std::fs::remove_dir_all(&dir);

    // At most 500 records per call; the first call lost every third record (167), retried
    // right after it.
    let puts = proxy.calls("PutRecords");
    let sizes: Vec<usize> = puts
        .iter()
        .map(|c| c.body["Records"].as_array().unwrap().len())
        .collect();
    assert_eq!(&sizes[..2], &[500, 167], "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 500), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 1200 + 167, "{sizes:?}");

    // Read everything back.
    let mut back: Vec<(String, serde_json::Value)> = Vec::new();
    for s in c.list_shards("out").await.unwrap() {
        let mut it = c
            .get_shard_iterator("out", &s.shard_id, &StartPosition::TrimHorizon)
            .await
            .unwrap();
        loop {
            let out = c.get_records(&it, 10_000).await.unwrap();
            if out.records.is_empty() {
                break;
            }
            for r in out.records {
                back.push((r.partition_key, serde_json::from_slice(&r.data).unwrap()));
            }
            match out.next_iterator {
                Some(n) => it = n,
                None => break,
            }
        }
    }
    assert_eq!(back.len(), 1200);
    let mut vs: Vec<i64> = back
        .iter()
        .map(|(k, v)| {
            assert_eq!(
                v["sym"].as_str().unwrap(),
                k,
                "partition key from column sym"
            );
            let v2 = v["v2"].as_i64().unwrap();
            assert_eq!(k, &format!("s{}", (v2 / 2) % 7));
            v2
        })
        .collect();
    vs.sort();
    assert_eq!(vs, (0..1200).map(|i| i * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_missing_streams_and_unreachable_endpoints_are_named() {
    let server = Kinesalite::start();
    let ctx = context(Arc::new(CollectingErrorSink::default()));
    let e = ctx
        .sql(&ddl("s", "n BIGINT", "nope", &server.endpoint(), ""))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Kinesis stream 'nope' does not exist"), "{e}");
    let e = ctx
        .sql(&ddl(
            "s",
            "n BIGINT",
            "x",
            &server.endpoint(),
            ", 'shard_count' = '2'",
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown option(s) 'shard_count'"), "{e}");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = ctx
        .sql(&ddl(
            "s",
            "n BIGINT",
            "x",
            &format!("http://127.0.0.1:{port}"),
            "",
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot reach the Kinesis endpoint http://127.0.0.1:"),
        "{e}"
    );
    assert!(!e.contains("test"), "no secret in errors: {e}");
}
