//! End to end: the real `dfstream` binary runs a SQL script that reads a Kinesis stream (a
//! real kinesalite), joins 10-minute tumbling windows with a reference table from S3 (a real
//! moto server) and writes Parquet files to S3; the files are read back with the Parquet
//! reader and compared row by row with the result computed here in plain Rust.
//!
//! ```text
//!  test ──PutRecords──► kinesalite "trades" (2 shards) ──► dfstream run script.sql --no-demo
//!  test ──PUT companies.csv──► moto s3://reference ──────────► │ CREATE STREAM / TABLE / SINK
//!                                                              │ INSERT INTO summary SELECT ...
//!  test ◄──LIST + GET Parquet── moto s3://results/summary/dt=…/hour=…/summary-<p>-<seq>.parquet
//!  test ──SIGINT──► dfstream closes its sinks, exits 0
//! ```
//!
//! The stream never ends, so the run ends deterministically: the last record of each shard
//! has an event time a day later, which closes every window and every hourly partition; the
//! test polls S3 until the files hold every expected row, then sends SIGINT. (A long
//! `idle_timeout` keeps a shard that is slow to start from being skipped by the watermark.)

#[path = "../../connectors/tests/kinesis_support/mod.rs"]
mod kinesis_support;
#[path = "../../connectors/tests/objstore_support/mod.rs"]
mod objstore_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, Float64Array, Int64Array, StringArray};
use datafusion::arrow::array::{RecordBatch, TimestampMillisecondArray};
use datafusion_stream_connectors::kinesis::{KinesisClient, PutEntry, PutResult};
use kinesis_support::{client, create_stream, fake_aws_env, Kinesalite};
use object_store::ObjectStore;
use objstore_support::{list_paths, read_parquet, MotoServer, TempDir};

/// 2024-05-01 12:45:00 UTC.
const BASE: i64 = 1_714_567_500_000;
const WINDOW: i64 = 10 * 60_000;
const SYMBOLS: [&str; 6] = ["AAPL", "AMZN", "MSFT", "GOOG", "NVDA", "ZZZZ"];
const COMPANIES: &str =
    "symbol,sector\nAAPL,tech\nAMZN,retail\nMSFT,tech\nGOOG,media\nNVDA,chips\n";

fn sector(symbol: &str) -> Option<&'static str> {
    match symbol {
        "AAPL" | "MSFT" => Some("tech"),
        "AMZN" => Some("retail"),
        "GOOG" => Some("media"),
        "NVDA" => Some("chips"),
        _ => None,
    }
}

struct Trade {
    symbol: &'static str,
    price: f64,
    qty: i64,
    ts: i64,
}

/// Deterministic trades: one every 3 s from 12:45 for 30 minutes, ±2 s of disorder (less
/// than the 5 s watermark delay: no row is late).
fn trades(n: usize) -> Vec<Trade> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..n)
        .map(|i| Trade {
            symbol: SYMBOLS[(next() % 6) as usize],
            price: 100.0 + (next() % 10_000) as f64 / 100.0,
            qty: 1 + (next() % 50) as i64,
            ts: BASE + i as i64 * 3_000 + (next() % 4_000) as i64 - 2_000,
        })
        .collect()
}

/// The shard a symbol goes to (its index's parity), so each symbol's trades stay in order.
fn shard_of(symbol: &str) -> usize {
    SYMBOLS.iter().position(|s| *s == symbol).unwrap_or(0) % 2
}

fn format_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // 2024-05-01 is day 19844 since the epoch; the data stays within two days of it.
    let date = match days {
        19844 => "2024-05-01",
        19845 => "2024-05-02",
        _ => panic!("unexpected day {days}"),
    };
    format!(
        "{date}T{:02}:{:02}:{:02}",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60
    )
}

fn json_record(t: &Trade) -> Vec<u8> {
    let secs = t.ts.div_euclid(1000);
    let ms = t.ts.rem_euclid(1000);
    let text = format_ts(secs * 1000).replace('T', " ");
    format!(
        r#"{{"symbol":"{}","price":{},"qty":{},"ts":"{text}.{ms:03}"}}"#,
        t.symbol, t.price, t.qty
    )
    .into_bytes()
}

async fn put_all(c: &KinesisClient, stream: &str, trades: &[Trade]) {
    let shards = c.list_shards(stream).await.unwrap();
    assert_eq!(shards.len(), 2);
    let entries: Vec<PutEntry> = trades
        .iter()
        .map(|t| PutEntry {
            partition_key: t.symbol.to_string(),
            data: json_record(t),
            explicit_hash_key: Some(shards[shard_of(t.symbol)].starting_hash_key.clone()),
        })
        .collect();
    for chunk in entries.chunks(500) {
        for r in c.put_records(stream, chunk).await.unwrap() {
            assert!(matches!(r, PutResult::Ok { .. }), "{r:?}");
        }
    }
}

/// A running `dfstream`, killed on drop; stderr is collected by a thread.
struct Dfstream {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dfstream"));
    cmd.args(args)
        .current_dir(repo_root())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KINESIS")
        .env_remove("AWS_PROFILE");
    cmd
}

impl Dfstream {
    fn start(args: &[&str]) -> Self {
        let mut child = command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dfstream starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGINT (what Ctrl-C sends), then waits for the exit; (success, stdout, stderr).
    fn interrupt(mut self) -> (bool, String, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let exit = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "dfstream did not exit within 60 s of SIGINT; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (exit.success(), stdout, self.stderr())
    }
}

impl Drop for Dfstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_to_end(args: &[&str]) -> Output {
    command(args)
        .stdin(Stdio::null())
        .output()
        .expect("dfstream runs")
}

fn strings(b: &RecordBatch, i: usize) -> &StringArray {
    b.column(i).as_any().downcast_ref::<StringArray>().unwrap()
}

fn ints(b: &RecordBatch, i: usize) -> &Int64Array {
    b.column(i).as_any().downcast_ref::<Int64Array>().unwrap()
}

/// (window_start, window_end, symbol, sector) → (trades, volume, turnover).
type Summary = BTreeMap<(String, String, String, String), (i64, i64, f64)>;

fn expected(trades: &[Trade]) -> Summary {
    let mut out = Summary::new();
    for t in trades {
        let Some(sector) = sector(t.symbol) else {
            continue;
        };
        let start = t.ts.div_euclid(WINDOW) * WINDOW;
        let e = out
            .entry((
                format_ts(start),
                format_ts(start + WINDOW),
                t.symbol.to_string(),
                sector.to_string(),
            ))
            .or_insert((0, 0, 0.0));
        e.0 += 1;
        e.1 += t.qty;
        e.2 += t.price;
    }
    out
}

/// Every row of every Parquet object under `prefix`, with the object's path.
async fn read_summary(store: &Arc<dyn ObjectStore>, prefix: &str) -> (Vec<String>, Summary) {
    let paths = list_paths(store, prefix).await;
    let mut rows = Summary::new();
    for p in &paths {
        for b in read_parquet(store, p).await {
            let schema = b.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(
                names,
                [
                    "window_start",
                    "window_end",
                    "symbol",
                    "sector",
                    "trades",
                    "volume",
                    "turnover"
                ]
            );
            let ts = |i: usize| {
                b.column(i)
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .expect("TIMESTAMP(3) columns")
                    .clone()
            };
            let (ws, we) = (ts(0), ts(1));
            let turnover = b.column(6).as_any().downcast_ref::<Float64Array>().unwrap();
            for r in 0..b.num_rows() {
                let key = (
                    format_ts(ws.value(r)),
                    format_ts(we.value(r)),
                    strings(&b, 2).value(r).to_string(),
                    strings(&b, 3).value(r).to_string(),
                );
                let value = (
                    ints(&b, 4).value(r),
                    ints(&b, 5).value(r),
                    turnover.value(r),
                );
                assert!(
                    rows.insert(key.clone(), value).is_none(),
                    "{key:?} written twice"
                );
            }
        }
    }
    (paths, rows)
}

fn script(kinesis: &str, s3: &str, sink_options: &str) -> String {
    format!(
        "-- Kinesis → 10-minute windows joined with an S3 reference table → Parquet on S3
CREATE STREAM trades (
    symbol VARCHAR, price DOUBLE, qty BIGINT, ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kinesis', 'stream' = 'trades', 'endpoint' = '{kinesis}',
        'region' = 'us-east-1', 'starting_position' = 'TRIM_HORIZON', 'format' = 'json',
        'poll_interval' = '200ms', 'idle_timeout' = '60s');

CREATE TABLE companies (symbol VARCHAR, sector VARCHAR)
WITH ('connector' = 'object_store', 'path' = 's3://reference/companies.csv',
      'endpoint' = '{s3}', 'allow_http' = 'true', 'reload_interval' = '60s');

CREATE SINK summary (
    window_start TIMESTAMP, window_end TIMESTAMP, symbol VARCHAR, sector VARCHAR,
    trades BIGINT, volume BIGINT, turnover DOUBLE
) WITH ('connector' = 'object_store', 'path' = 's3://results/summary/', 'endpoint' = '{s3}',
        'allow_http' = 'true'{sink_options});

INSERT INTO summary
SELECT w.window_start, w.window_end, w.symbol, c.sector, w.trades, w.volume, w.turnover
FROM (SELECT window_start, window_end, symbol, COUNT(*) AS trades, SUM(qty) AS volume,
             SUM(price) AS turnover
      FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '10' MINUTE))
      GROUP BY window_start, window_end, symbol) AS w
JOIN companies AS c ON w.symbol = c.symbol;
"
    )
}

struct Setup {
    kinesis: Kinesalite,
    s3: MotoServer,
    trades: Vec<Trade>,
    dir: TempDir,
}

/// Servers, the Kinesis stream with `n` trades + one closing record per shard (a day later),
/// the reference CSV and the output bucket.
async fn setup(n: usize) -> Setup {
    fake_aws_env();
    let kinesis = Kinesalite::start();
    let s3 = MotoServer::start();
    let c = client(&kinesis.endpoint());
    create_stream(&c, "trades", 2).await;
    let mut all = trades(n);
    let last = all.iter().map(|t| t.ts).max().unwrap_or(BASE);
    for symbol in ["AAPL", "AMZN"] {
        all.push(Trade {
            symbol,
            price: 1.0,
            qty: 1,
            ts: last + 86_400_000,
        });
    }
    assert_ne!(shard_of("AAPL"), shard_of("AMZN"));
    put_all(&c, "trades", &all).await;
    s3.create_bucket("reference");
    s3.create_bucket("results");
    let (status, body) = s3
        .request("PUT", "/reference/companies.csv", COMPANIES)
        .expect("moto answers");
    assert_eq!(status, 200, "{body}");
    Setup {
        kinesis,
        s3,
        trades: all,
        dir: TempDir::new("e2e"),
    }
}

fn assert_same(got: &Summary, want: &Summary) {
    let keys = |s: &Summary| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "the windows written differ");
    for (k, w) in want {
        let g = &got[k];
        assert_eq!((g.0, g.1), (w.0, w.1), "{k:?}: trades, volume");
        assert!(
            (g.2 - w.2).abs() < 1e-6,
            "{k:?}: turnover {} vs {}",
            g.2,
            w.2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_windows_joined_with_s3_reference_data_to_parquet_on_s3() {
    let setup = setup(600).await;
    let want = expected(&setup.trades[..setup.trades.len() - 2]);
    assert_eq!(
        want.len(),
        20,
        "4 windows (12:40 .. 13:10) × 5 symbols with a sector"
    );
    let script_path = setup.dir.0.join("e2e.sql");
    std::fs::write(
        &script_path,
        script(
            &setup.kinesis.endpoint(),
            &setup.s3.endpoint(),
            ", 'partition_by' = 'dt_hour(window_start)'",
        ),
    )
    .unwrap();
    let mut run = Dfstream::start(&["run", script_path.to_str().unwrap(), "--no-demo"]);
    let store = setup.s3.location("s3://results").store().clone();
    // Every hourly partition closes when the watermark passes its end: poll until the
    // objects hold every expected row.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (paths, got) = loop {
        let (paths, got) = read_summary(&store, "summary").await;
        if got.len() >= want.len() {
            break (paths, got);
        }
        assert!(
            !run.exited(),
            "dfstream exited early; stderr:\n{}",
            run.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "only {} of {} rows in S3 after 180 s; stderr:\n{}",
            got.len(),
            want.len(),
            run.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (ok, stdout, stderr) = run.interrupt();
    assert!(ok, "dfstream exits 0 after SIGINT; stderr:\n{stderr}");
    assert_eq!(stdout, "", "a script of sinks prints nothing on stdout");
    assert!(
        stderr.contains("dfstream: interrupted: closing the sinks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dfstream: sink summary: wrote s3://results/summary/dt=2024-05-01/hour=12/summary-0-000000.parquet ("),
        "{stderr}"
    );
    assert!(stderr.contains("rows written"), "status line: {stderr}");
    assert_eq!(
        paths,
        vec![
            "summary/dt=2024-05-01/hour=12/summary-0-000000.parquet",
            "summary/dt=2024-05-01/hour=13/summary-0-000000.parquet",
        ],
        "one object per hour (the window operator has one output partition)"
    );
    assert_same(&got, &want);
    // Nothing more was written after the interrupt, and no upload was left open.
    let (paths_after, got_after) = read_summary(&store, "summary").await;
    assert_eq!(paths_after, paths);
    assert_eq!(got_after.len(), got.len());
    assert_eq!(setup.s3.multipart_uploads("results"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_completes_open_files_and_bad_sinks_name_the_resource() {
    let setup = setup(200).await;
    let (kinesis, s3) = (setup.kinesis.endpoint(), setup.s3.endpoint());
    // Every row of the stream, unpartitioned, no rolling: the objects are open until SIGINT.
    let raw = format!(
        "CREATE STREAM trades (symbol VARCHAR, price DOUBLE, qty BIGINT, ts TIMESTAMP)
         WITH ('connector' = 'kinesis', 'stream' = 'trades', 'endpoint' = '{kinesis}',
               'region' = 'us-east-1', 'starting_position' = 'TRIM_HORIZON',
               'poll_interval' = '200ms');
         CREATE SINK raw WITH ('connector' = 'object_store', 'path' = 's3://results/raw',
               'endpoint' = '{s3}', 'allow_http' = 'true');
         INSERT INTO raw SELECT symbol, qty FROM trades;"
    );
    let total = setup.trades.len();
    let mut run = Dfstream::start(&["run", "-e", &raw, "--no-demo"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let received = format!("rows received {total},");
    while !run.stderr().contains(&received) {
        assert!(!run.exited(), "dfstream exited early:\n{}", run.stderr());
        assert!(
            Instant::now() < deadline,
            "the sink did not receive {total} rows in 120 s:\n{}",
            run.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let store = setup.s3.location("s3://results").store().clone();
    assert!(
        list_paths(&store, "raw").await.is_empty(),
        "nothing complete before SIGINT"
    );
    let (ok, stdout, stderr) = run.interrupt();
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "");
    let paths = list_paths(&store, "raw").await;
    assert_eq!(
        paths,
        vec!["raw/raw-0-000000.parquet", "raw/raw-1-000000.parquet"],
        "one complete object per shard partition: {stderr}"
    );
    let mut got: Vec<(String, i64)> = Vec::new();
    for p in &paths {
        for b in read_parquet(&store, p).await {
            for r in 0..b.num_rows() {
                got.push((strings(&b, 0).value(r).to_string(), ints(&b, 1).value(r)));
            }
        }
    }
    got.sort();
    let mut want: Vec<(String, i64)> = setup
        .trades
        .iter()
        .map(|t| (t.symbol.to_string(), t.qty))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(setup.s3.multipart_uploads("results"), 0);

    // Bad input: each names the option or the resource; dfstream exits 1.
    let fails = |sql: String, needle: &str| {
        let o = run_to_end(&["run", "-e", &sql, "--no-demo", "--quiet"]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{sql} should fail");
        assert!(
            err.contains(needle),
            "{sql}:\n{err}\nshould contain: {needle}"
        );
    };
    fails(
        format!("CREATE SINK s WITH ('connector' = 'object_store', 'path' = 's3://no-such-bucket/x', 'endpoint' = '{s3}', 'allow_http' = 'true')"),
        "bucket 'no-such-bucket' does not exist",
    );
    fails(
        format!("CREATE SINK s WITH ('connector' = 'object_store', 'path' = 's3://results/x', 'endpoint' = '{s3}', 'allow_http' = 'true', 'roll_rowz' = '10')"),
        "unknown option(s) 'roll_rowz'",
    );
    fails(
        format!("CREATE SINK s WITH ('connector' = 'kinesis', 'stream' = 'no-such-stream', 'endpoint' = '{kinesis}', 'region' = 'us-east-1')"),
        "Kinesis stream 'no-such-stream' does not exist",
    );
    fails(
        format!("CREATE TABLE t WITH ('connector' = 'object_store', 'path' = 's3://reference/missing.csv', 'endpoint' = '{s3}', 'allow_http' = 'true')"),
        "s3://reference/missing.csv",
    );
    fails(
        "CREATE SINK s WITH ('connector' = 'object_store', 'path' = 's3://results/x', 'endpoint' = 'http://127.0.0.1:1', 'allow_http' = 'true', 'max_retries' = '0')".to_string(),
        "cannot reach endpoint 'http://127.0.0.1:1'",
    );
}
