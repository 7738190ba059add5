//! Runs the built `dfstream` binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn dfstream(args: &[&str]) -> Output {
    dfstream_with_stdin(args, None)
}

fn dfstream_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfstream"))
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dfstream starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("write stdin");
        // Dropping the pipe closes it: end of input.
    }
    child.wait_with_output().expect("dfstream runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const FILE_WINDOWS: &str = "\
window_start,window_end,symbol,trades,volume,low,high
2024-01-02 09:30:00.000,2024-01-02 09:30:10.000,AMZN,4,41,180.1,180.8
2024-01-02 09:30:00.000,2024-01-02 09:30:10.000,AAPL,3,28,189.75,190.4
2024-01-02 09:30:00.000,2024-01-02 09:30:10.000,MSFT,2,10,410.2,410.9
2024-01-02 09:30:10.000,2024-01-02 09:30:20.000,AMZN,3,52,181.0,181.9
2024-01-02 09:30:10.000,2024-01-02 09:30:20.000,MSFT,2,11,411.0,411.5
2024-01-02 09:30:10.000,2024-01-02 09:30:20.000,AAPL,3,22,190.1,191.0
2024-01-02 09:30:20.000,2024-01-02 09:30:30.000,MSFT,2,14,412.0,412.3
2024-01-02 09:30:20.000,2024-01-02 09:30:30.000,AAPL,1,5,191.2,191.2
2024-01-02 09:30:20.000,2024-01-02 09:30:30.000,AMZN,2,23,182.1,182.5
";

#[test]
fn file_example_prints_the_expected_windows() {
    let o = dfstream(&[
        "run",
        "examples/file_windows.sql",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), FILE_WINDOWS);
    assert_eq!(stderr(&o), "", "--quiet prints nothing on stderr");
}

#[test]
fn file_example_reports_status_and_other_formats() {
    let o = dfstream(&[
        "run",
        "examples/file_windows.sql",
        "--format",
        "json",
        "--no-demo",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 9, "{out}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.contains("\"symbol\":\"AMZN\"") && l.contains("\"trades\":4")),
        "{out}"
    );
    // Not a terminal: plain status lines; the final one has every row in and out.
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("rows in 22") && last.contains("rows out 9") && last.contains("late rows 0"),
        "{err}"
    );

    let o = dfstream(&["run", "examples/file_windows.sql", "--quiet"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| window_start"), "{out}");
    assert!(
        out.contains("| AAPL   | 3      | 28     | 189.75 | 190.4 |"),
        "{out}"
    );
}

#[test]
fn several_queries_are_labelled() {
    let script = std::fs::read_to_string(repo_root().join("examples/file_windows.sql")).unwrap();
    let script = format!("{script}\nSELECT symbol, qty FROM trades WHERE qty >= 20;");
    let o = dfstream(&[
        "run",
        "--no-demo",
        "--quiet",
        "--format",
        "csv",
        "-e",
        &script,
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let second: Vec<&str> = out.lines().filter(|l| l.starts_with("2,")).collect();
    assert_eq!(second, ["2,AMZN,20", "2,AMZN,30"], "{out}");
    assert!(out.lines().any(|l| l == "query,symbol,qty"), "{out}");
    assert!(
        out.lines()
            .any(|l| l == "query,window_start,window_end,symbol,trades,volume,low,high"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("1,")).count(),
        9,
        "{out}"
    );
}

#[test]
fn bad_sql_exits_1_naming_the_problem() {
    let o = dfstream(&["run", "--quiet", "-e", "SELECT no_such_column FROM ticker"]);
    assert_eq!(o.status.code(), Some(1), "stdout: {}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("no_such_column"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let o = dfstream(&["run", "--quiet", "-e", "SELEC 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SELEC"), "{}", stderr(&o));

    let o = dfstream(&["run", "--quiet", "-e", "SELECT * FROM nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));

    let o = dfstream(&[
        "run",
        "--quiet",
        "-e",
        "CREATE STREAM s (a INT) WITH ('connector' = 'file', 'path' = 'x.csv', 'colour' = 'red')",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'colour'"), "{}", stderr(&o));

    let o = dfstream(&["run", "--quiet", "no/such/script.sql"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no/such/script.sql"), "{}", stderr(&o));

    // Usage errors are clap's (exit 2).
    let o = dfstream(&["run"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn max_rows_stops_the_demo_stream() {
    let start = Instant::now();
    let o = dfstream(&[
        "run",
        "--rate",
        "1000",
        "--max-rows",
        "3",
        "--duration",
        "20s",
        "--format",
        "csv",
        "--quiet",
        "-e",
        "SELECT ticker_symbol, sector, price FROM ticker",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 rows: {out}");
    assert_eq!(lines[0], "ticker_symbol,sector,price");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "stopped by --max-rows, not --duration"
    );
}

#[test]
fn duration_stops_an_endless_query() {
    let start = Instant::now();
    let o = dfstream(&[
        "run",
        "--duration",
        "1s",
        "--quiet",
        "-e",
        "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE ticker, DESCRIPTOR(event_time), INTERVAL '1' HOUR)) GROUP BY window_start, window_end",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn stdin_through_the_file_connector() {
    let sql = "CREATE STREAM s (ts TIMESTAMP(3), k VARCHAR, WATERMARK FOR ts AS ts) \
               WITH ('connector' = 'file', 'path' = '-', 'format' = 'json'); \
               SELECT window_start, k, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k";
    let input = "{\"ts\": \"2024-01-01 00:00:01\", \"k\": \"a\"}\n{\"ts\": \"2024-01-01 00:00:02\", \"k\": \"a\"}\n{\"ts\": \"2024-01-01 00:00:12\", \"k\": \"b\"}\n";
    let o = dfstream_with_stdin(
        &["run", "--quiet", "--no-demo", "--format", "csv", "-e", sql],
        Some(input),
    );
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "window_start,k,n\n2024-01-01 00:00:00.000,a,2\n2024-01-01 00:00:10.000,b,1\n"
    );

    // A bad line on stdin fails with its line number.
    let o = dfstream_with_stdin(
        &["run", "--quiet", "--no-demo", "-e", sql],
        Some("{\"ts\": \"2024-01-01 00:00:01\", \"k\": \"a\"}\n{\"ts\": \"soon\", \"k\": \"a\"}\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stdin line 2"), "{}", stderr(&o));
}
