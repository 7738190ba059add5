//! Kinesis benchmarks: (1) record decoding rows/s per core — plain JSON, KDA input schema
//! JSON, plain CSV — through the source's `BatchDecoder`, in GetRecords-sized chunks; (2) end
//! to end rows/s: records written to a local kinesalite, read back through
//! `CREATE STREAM ... ('connector' = 'kinesis')` and a `SELECT` in a `StreamContext`.
//!
//! ```text
//!  decode:     N records (pre-generated) ──10k per chunk──► BatchDecoder::finish ──► rows
//!  end to end: PutRecords (500/call) ──► kinesalite ──► GetRecords ──► source ──► query ──► drained
//! ```
//!
//! ```sh
//! cargo run --release -p datafusion-stream-benches --bin kinesis_bench -- [--records N] [--e2e N] [--shards S]
//! ```
//! The end-to-end part needs node and kinesalite (`DFSTREAM_KINESALITE_DIR`, as scripts/test.sh
//! installs it); it is skipped, saying so, when they are missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion_stream::errors::CollectingErrorSink;
use datafusion_stream::{StreamContext, StreamRuntime};
use datafusion_stream_benches::process_cpu_time;
use datafusion_stream_connectors::kda::InputSchema;
use datafusion_stream_connectors::kinesis::decode::{DecodePlan, PayloadFormat, UserRow};
use datafusion_stream_connectors::kinesis::{ClientConfig, KinesisClient, PutEntry};
use futures::StreamExt;

const TICKERS: [&str; 8] = [
    "AMZN", "AAPL", "MSFT", "GOOG", "NFLX", "TSLA", "META", "NVDA",
];

fn json_record(i: usize) -> String {
    format!(
        r#"{{"ticker":"{}","sector":"TECHNOLOGY","change":{},"price":{}.{:02},"ts":"2024-05-01 12:{:02}:{:02}.{:03}"}}"#,
        TICKERS[i % 8],
        (i % 21) as i64 - 10,
        50 + i % 400,
        i % 100,
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000
    )
}

fn csv_record(i: usize) -> String {
    format!(
        "{},TECHNOLOGY,{},{}.{:02},2024-05-01 12:{:02}:{:02}.{:03}",
        TICKERS[i % 8],
        (i % 21) as i64 - 10,
        50 + i % 400,
        i % 100,
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000
    )
}

fn declared() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("ticker", DataType::Utf8, true),
        Field::new("sector", DataType::Utf8, true),
        Field::new("change", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("shard_id", DataType::Utf8, true),
        Field::new("sequence_number", DataType::Utf8, true),
    ]))
}

const KDA_SCHEMA: &str = r#"{"RecordColumns": [
    {"SqlType": "VARCHAR(4)", "Name": "ticker", "Mapping": "$.ticker"},
    {"SqlType": "VARCHAR(16)", "Name": "sector", "Mapping": "$.sector"},
    {"SqlType": "BIGINT", "Name": "change", "Mapping": "$.change"},
    {"SqlType": "DOUBLE", "Name": "price", "Mapping": "$.price"},
    {"SqlType": "TIMESTAMP", "Name": "ts", "Mapping": "$.ts"}],
  "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}}}"#;

fn decode_bench(name: &str, format: PayloadFormat, records: &[Vec<u8>]) {
    let plan = Arc::new(DecodePlan::try_new("bench", declared(), format).expect("plan"));
    let mut decoder = plan.decoder().expect("decoder");
    let shard: Arc<str> = Arc::from("shardId-000000000000");
    let errors = CollectingErrorSink::default();
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    let mut rows = 0;
    for (c, chunk) in records.chunks(10_000).enumerate() {
        for (i, data) in chunk.iter().enumerate() {
            decoder.push(UserRow {
                shard_id: Arc::clone(&shard),
                sequence_number: Arc::from(format!("{}", c * 10_000 + i).as_str()),
                sub_sequence_number: None,
                partition_key: "k".to_string(),
                arrival: Some(0),
                data: data.clone(),
            });
        }
        rows += decoder
            .finish(0, &errors)
            .expect("decode")
            .map(|b| b.num_rows())
            .unwrap_or(0);
    }
    let wall = t0.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu0)
        .map(|(a, b)| a.saturating_sub(b))
        .unwrap_or(wall);
    assert_eq!(rows, records.len(), "{name}: every record decodes");
    assert!(errors.take().is_empty());
    println!(
        "| {name} | {} | {:.1} | {:.3} | {:.2} M | {:.2} M | {:.0} |",
        records.len(),
        bytes as f64 / records.len() as f64,
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64() / 1e6,
        rows as f64 / cpu.as_secs_f64() / 1e6,
        bytes as f64 / cpu.as_secs_f64() / 1e6
    );
}

struct Server(std::process::Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_kinesalite() -> Option<Server> {
    let dir = std::env::var("DFSTREAM_KINESALITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/datafusion-stream/kinesalite")
        });
    let module = dir.join("node_modules/kinesalite");
    if !module.is_dir() {
        println!(
            "(end to end skipped: no kinesalite in {}; run scripts/test.sh)",
            dir.display()
        );
        return None;
    }
    let script = "const k = require(process.argv[1]);\n\
         const s = k({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000});\n\
         s.listen(0, '127.0.0.1', e => { if (e) { process.exit(1); } console.log('listening ' + s.address().port); });\n\
         process.stdin.on('end', () => process.exit(0)); process.stdin.resume();\n";
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .arg(module)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let port = line.trim().strip_prefix("listening ")?.parse().ok()?;
    Some(Server(child, port))
}

async fn end_to_end(records: usize, shards: usize) {
    let Some(server) = start_kinesalite() else {
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let endpoint = format!("http://127.0.0.1:{}", server.1);
    let client = KinesisClient::try_new(&ClientConfig::new("us-east-1").with_endpoint(&endpoint))
        .expect("client");
    client.create_stream("bench", shards).await.expect("create");
    client
        .wait_active("bench", Duration::from_secs(10))
        .await
        .expect("active");
    let t0 = Instant::now();
    let entries: Vec<PutEntry> = (0..records)
        .map(|i| PutEntry {
            partition_key: format!("k{}", i % 64),
            data: json_record(i).into_bytes(),
            explicit_hash_key: None,
        })
        .collect();
    for chunk in entries.chunks(500) {
        client.put_records("bench", chunk).await.expect("put");
    }
    let put = t0.elapsed();

    let ctx = StreamContext::with_runtime(StreamRuntime::default());
    datafusion_stream_connectors::register_all(&ctx);
    ctx.sql(&format!(
        "CREATE STREAM s (ticker VARCHAR, sector VARCHAR, change BIGINT, price DOUBLE, ts TIMESTAMP) \
         WITH ('connector' = 'kinesis', 'stream' = 'bench', 'region' = 'us-east-1', \
         'endpoint' = '{endpoint}', 'starting_position' = 'TRIM_HORIZON')"
    ))
    .await
    .expect("create stream");
    let cpu0 = process_cpu_time();
    let t1 = Instant::now();
    let mut q = ctx
        .query("SELECT ticker, price, ts FROM s")
        .await
        .expect("query");
    let mut rows = 0;
    while rows < records {
        match tokio::time::timeout(Duration::from_secs(60), q.stream().next()).await {
            Ok(Some(b)) => rows += b.expect("batch").num_rows(),
            _ => panic!("stalled after {rows} rows"),
        }
    }
    let wall = t1.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu0)
        .map(|(a, b)| a.saturating_sub(b))
        .unwrap_or(wall);
    println!(
        "| end to end, {shards} shard(s) | {records} | write {:.2} s ({:.0} rec/s) | read {:.2} s | {:.0} rows/s | our CPU {:.2} s ({:.0} rows/s per core) |",
        put.as_secs_f64(),
        records as f64 / put.as_secs_f64(),
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        rows as f64 / cpu.as_secs_f64()
    );
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--records", 1_000_000);
    let e2e = arg(&args, "--e2e", 50_000);
    let shards = arg(&args, "--shards", 2);
    println!("| decoder | records | bytes/record | wall s | rows/s | rows/s per core (CPU) | MB/s per core |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let json: Vec<Vec<u8>> = (0..n).map(|i| json_record(i).into_bytes()).collect();
    decode_bench("plain JSON (arrow)", PayloadFormat::Json, &json);
    let schema = InputSchema::from_json(KDA_SCHEMA).expect("schema");
    decode_bench(
        "KDA input schema JSON",
        PayloadFormat::Kda(Box::new(schema)),
        &json,
    );
    drop(json);
    let csv: Vec<Vec<u8>> = (0..n).map(|i| csv_record(i).into_bytes()).collect();
    decode_bench(
        "plain CSV (arrow)",
        PayloadFormat::Csv { delimiter: b',' },
        &csv,
    );
    drop(csv);
    if e2e > 0 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(end_to_end(e2e, shards));
    }
}
