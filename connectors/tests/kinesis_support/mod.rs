//! Test support for the Kinesis tests: a real local Kinesis server (kinesalite, started by
//! node on 127.0.0.1 and stopped on drop) and a loopback fault-injection proxy in front of it.
//!
//! ```text
//!  source / sink ──HTTP──► FaultProxy (127.0.0.1:p) ──fault planned for (action, n-th call)?──┐
//!                             │ no                                                          │ yes
//!                             ▼                                                             ▼
//!                          kinesalite (127.0.0.1:k)                         AWS error JSON (400),
//!                                                                           or a PutRecords with
//!                                                                           some entries failed
//! ```

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use datafusion_stream_connectors::kinesis::{ClientConfig, KinesisClient};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Fake credentials and region for every test (never real ones).
pub fn fake_aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::remove_var("AWS_ENDPOINT_URL_KINESIS");
    });
}

/// The folder holding `node_modules/kinesalite`.
fn kinesalite_dir() -> PathBuf {
    let dir = std::env::var("DFSTREAM_KINESALITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/datafusion-stream/kinesalite")
        });
    if !dir.join("node_modules/kinesalite").is_dir() {
        panic!(
            "the Kinesis tests need kinesalite (a local Kinesis server) in {}: run scripts/test.sh, \
             or `npm install --prefix {} kinesalite@3.3.3` (and node on the PATH)",
            dir.display(),
            dir.display()
        );
    }
    dir
}

/// A kinesalite server on 127.0.0.1, killed on drop.
pub struct Kinesalite {
    child: Child,
    pub port: u16,
}

impl Kinesalite {
    pub fn start() -> Self {
        fake_aws_env();
        let dir = kinesalite_dir();
        let script = "const k = require(process.argv[1]);\n\
             const s = k({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000});\n\
             s.listen(0, '127.0.0.1', e => { if (e) { console.error(e); process.exit(1); } \
             console.log('listening ' + s.address().port); });\n\
             process.stdin.on('end', () => process.exit(0)); process.stdin.resume();\n";
        let mut child = Command::new("node")
            .arg("-e")
            .arg(script)
            .arg(dir.join("node_modules/kinesalite"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (needed for kinesalite): {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("kinesalite output");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("kinesalite did not start: {line:?}"));
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for `endpoint` with the fake credentials.
pub fn client(endpoint: &str) -> KinesisClient {
    fake_aws_env();
    KinesisClient::try_new(&ClientConfig::new("us-east-1").with_endpoint(endpoint)).unwrap()
}

/// Creates a stream and waits until it is active.
pub async fn create_stream(c: &KinesisClient, name: &str, shards: usize) {
    c.create_stream(name, shards).await.unwrap();
    c.wait_active(name, Duration::from_secs(10)).await.unwrap();
}

/// What the proxy does to one call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this AWS error code (HTTP 400) without forwarding.
    Error(&'static str),
    /// Forward a PutRecords without every n-th entry (0, n, 2n, ...) and report those as
    /// failed with ProvisionedThroughputExceededException.
    PartialPut { every: usize },
}

/// One call seen by the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub at: Instant,
    pub body: Value,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Plan {
    faults: HashMap<(String, usize), Fault>,
    counts: HashMap<String, usize>,
    calls: Vec<Call>,
}

/// A loopback HTTP proxy in front of kinesalite that injects faults; stopped on drop.
pub struct FaultProxy {
    pub port: u16,
    plan: Arc<Mutex<Plan>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl FaultProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let p = Arc::clone(&plan);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let p = Arc::clone(&p);
                tokio::spawn(async move {
                    let _ = serve(sock, upstream, p).await;
                });
            }
        });
        Self { port, plan, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Applies `fault` to the `nth` (1-based) call of `action`.
    pub fn fault(&self, action: &str, nth: usize, fault: Fault) {
        self.plan
            .lock()
            .unwrap()
            .faults
            .insert((action.to_string(), nth), fault);
    }

    /// The calls of `action` so far.
    pub fn calls(&self, action: &str) -> Vec<Call> {
        self.plan
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.action == action)
            .cloned()
            .collect()
    }

    /// Number of calls of `action` so far.
    pub fn count(&self, action: &str) -> usize {
        self.plan
            .lock()
            .unwrap()
            .counts
            .get(action)
            .copied()
            .unwrap_or(0)
    }
}

async fn serve(mut sock: TcpStream, upstream: u16, plan: Arc<Mutex<Plan>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let action = header(&head, "x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut p = plan.lock().unwrap();
            let n = {
                let c = p.counts.entry(action.clone()).or_insert(0);
                *c += 1;
                *c
            };
            let fault = p.faults.remove(&(action.clone(), n));
            p.calls.push(Call {
                action: action.clone(),
                at: Instant::now(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                fault: fault.clone(),
            });
            fault
        };
        let (status, out) = match fault {
            Some(Fault::Error(code)) => (
                400,
                json!({"__type": code, "message": "injected by the test proxy"})
                    .to_string()
                    .into_bytes(),
            ),
            Some(Fault::PartialPut { every }) => partial_put(&head, &body, upstream, every).await?,
            None => forward(&head, &body, upstream).await?,
        };
        let reason = if status == 200 { "OK" } else { "Bad Request" };
        let mut resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             Content-Length: {}\r\n\r\n",
            out.len()
        )
        .into_bytes();
        resp.extend_from_slice(&out);
        sock.write_all(&resp).await?;
    }
}

/// Sends one request to kinesalite (Connection: close) and returns (status, body).
async fn forward(head: &str, body: &[u8], upstream: u16) -> std::io::Result<(u16, Vec<u8>)> {
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("POST / HTTP/1.1");
    let mut req = format!("{request_line}\r\n");
    for l in lines {
        let name = l
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if l.is_empty() || name == "connection" || name == "content-length" {
            continue;
        }
        req.push_str(l);
        req.push_str("\r\n");
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.write_all(req.as_bytes()).await?;
    up.write_all(body).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    let Some(end) = find(&resp, b"\r\n\r\n") else {
        return Ok((502, b"{}".to_vec()));
    };
    let rhead = String::from_utf8_lossy(&resp[..end]).to_string();
    assert!(
        header(&rhead, "transfer-encoding").is_none(),
        "the test proxy does not decode chunked answers"
    );
    let status = rhead
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    Ok((status, resp[end + 4..].to_vec()))
}

async fn partial_put(
    head: &str,
    body: &[u8],
    upstream: u16,
    every: usize,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut req: Value = serde_json::from_slice(body).unwrap();
    let records = req["Records"].as_array().cloned().unwrap_or_default();
    let failed: Vec<bool> = (0..records.len()).map(|i| i % every == 0).collect();
    let kept: Vec<Value> = records
        .iter()
        .zip(&failed)
        .filter(|(_, f)| !**f)
        .map(|(r, _)| r.clone())
        .collect();
    let mut results = Vec::new();
    if !kept.is_empty() {
        req["Records"] = Value::Array(kept);
        let (status, out) = forward(head, &serde_json::to_vec(&req).unwrap(), upstream).await?;
        if status != 200 {
            return Ok((status, out));
        }
        let v: Value = serde_json::from_slice(&out).unwrap();
        results = v["Records"].as_array().cloned().unwrap_or_default();
    }
    let mut ok = results.into_iter();
    let merged: Vec<Value> = failed
        .iter()
        .map(|f| {
            if *f {
                json!({"ErrorCode": "ProvisionedThroughputExceededException",
                       "ErrorMessage": "injected by the test proxy"})
            } else {
                ok.next().unwrap_or(Value::Null)
            }
        })
        .collect();
    let n_failed = failed.iter().filter(|f| **f).count();
    Ok((
        200,
        json!({"FailedRecordCount": n_failed, "Records": merged})
            .to_string()
            .into_bytes(),
    ))
}
