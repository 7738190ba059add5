//! `dfstream kda` and `dfstream check` on the built binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn dfstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfstream"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("dfstream runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn replays_a_documented_example_from_the_shell() {
    // SPEC Example D2 with the description's JSONPath mapping ($.TICKER → TICKER_SYMBOL) and
    // a ROWTIME field per record; the last record cannot be decoded and goes to error_stream.
    let o = dfstream(&[
        "kda",
        "examples/kda/stagger/app.sql",
        "--description",
        "examples/kda/stagger/app.json",
        "--input",
        "examples/kda/stagger/trades.jsonl",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..3],
        &[
            "stream,ROWTIME,TICKER_SYMBOL,EVENT_TIME,TICKER_COUNT",
            "DESTINATION_SQL_STREAM,2018-06-13T11:01:20,AMZN,2018-06-13T11:00:00,3.0",
            "DESTINATION_SQL_STREAM,2018-06-13T11:02:15,AMZN,2018-06-13T11:01:00,1.0",
        ]
    );
    assert_eq!(
        lines[3],
        "stream,ERROR_TIME,ERROR_LEVEL,ERROR_NAME,MESSAGE,DATA_ROWTIME,DATA_ROW,PUMP_NAME"
    );
    assert_eq!(lines.len(), 5, "{out}");
    let err = lines[4];
    assert!(err.starts_with("error_stream,"), "{err}");
    assert!(err.contains(",ERROR,Coercion_Error,"), "{err}");
    assert!(err.contains("line 5: column 'EVENT_TIME'"), "{err}");
    // DATA_ROW is the hex of the raw record; no pump touched it.
    let raw = r#"{"ROWTIME": "2018-06-13 11:01:16", "EVENT_TIME": "not a time", "TICKER": "AMZN"}"#;
    let hex: String = raw.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        err.ends_with(&format!(",2018-06-13T11:01:16,{hex},")),
        "{err}"
    );
}

#[test]
fn runs_sql_with_an_input_schema_as_json_lines() {
    let o = dfstream(&[
        "kda",
        "examples/kda/stagger/app.sql",
        "--input",
        "examples/kda/stagger/trades.jsonl",
        "--input-schema",
        "EVENT_TIME TIMESTAMP, TICKER VARCHAR(4)",
        "--output",
        "DESTINATION_SQL_STREAM",
    ]);
    // The SQL names TICKER_SYMBOL, which this input does not have: a clear error.
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "examples/kda/stagger/app.sql:9:1: statement 2: pump STREAM_PUMP: No field named \"TICKER_SYMBOL\""
        ),
        "{err}"
    );
    assert!(err.contains("TICKER_SYMBOL"), "{err}");
}

#[test]
fn check_accepts_the_example_application() {
    let o = dfstream(&["check", "examples/kda/ticker_app.sql"]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("ok (4 stream(s)"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn check_reports_every_error_with_its_position() {
    let dir = std::env::temp_dir().join(format!("dfstream-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let app = dir.join("bad.sql");
    std::fs::write(
        &app,
        "CREATE STREAM OUT1 (T VARCHAR(4), N BIGINT);\n\
         CREATE PUMP P1 AS INSERT INTO OUT1 SELECT STREAM TICKER_SYMBOL, COUNT(*) FROM SOURCE_SQL_STREAM_001 GROUP BY TICKER_SYMBOL;\n\
         CREATE STREAM error_stream (A INT);\n\
         CREATE PUMP P2 AS INSERT INTO OUT1 SELECT STREAM PRICE FROM SOURCE_SQL_STREAM_001;\n",
    )
    .expect("write app");
    let path = app.display().to_string();
    // Load errors first (reserved name), then planning errors per pump.
    let o = dfstream(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "{path}:3:15: statement 3: the name error_stream is reserved"
        )),
        "{err}"
    );
    std::fs::write(
        &app,
        "CREATE STREAM OUT1 (T VARCHAR(4), N BIGINT);\n\
         CREATE PUMP P1 AS INSERT INTO OUT1 SELECT STREAM TICKER_SYMBOL, COUNT(*) FROM SOURCE_SQL_STREAM_001 GROUP BY TICKER_SYMBOL;\n\
         CREATE PUMP P2 AS INSERT INTO OUT1 SELECT STREAM PRICE FROM SOURCE_SQL_STREAM_001;\n",
    )
    .expect("write app");
    let o = dfstream(&["check", &path]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with(&format!("{path}:2:1: statement 2: pump P1: a streaming GROUP BY needs a monotonic ROWTIME-based grouping expression")), "{err}");
    assert!(lines[1].starts_with(&format!("{path}:3:1: statement 3: pump P2: the query returns 1 column(s) (PRICE) but stream OUT1 has 2")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runs_the_ticker_application_live() {
    // The demo ticker at 50 rows/s for 3 s: the sliding pump emits a row per trade and the
    // 10-second tumbling window may not have closed yet; rows are JSON with the stream name.
    let o = dfstream(&[
        "kda",
        "examples/kda/ticker_app.sql",
        "--rate",
        "50",
        "--output",
        "SLIDING_STREAM",
        "--max-rows",
        "20",
        "--duration",
        "20s",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for l in lines {
        assert!(
            l.starts_with("{\"stream\":\"SLIDING_STREAM\",\"ROWTIME\":"),
            "{l}"
        );
        assert!(l.contains("\"TRADES_30S\":"), "{l}");
    }
}
