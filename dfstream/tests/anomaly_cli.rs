//! RANDOM_CUT_FOREST / _WITH_EXPLANATION (SPEC Example I) and HOTSPOTS (Example J) applications
//! run by `dfstream kda` on generated file replays with planted outliers or hotspots, and on
//! the demo ticker. RCF scores are stochastic in KDA; those tests assert the documented
//! properties (seed 0 makes them repeatable here). HOTSPOTS is deterministic; its results are
//! also compared with an independent oracle (`sql-tests/oracle/hotspots.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dfstream-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A small deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() * (hi - lo + 1) as f64) as i64
    }
}

/// `ROWTIME` of record `i`: 20 records per second from 10:00:00.
fn rowtime(i: usize) -> String {
    let ms = i * 50;
    format!(
        "2024-01-01 10:{:02}:{:02}.{:03}",
        ms / 60_000,
        (ms / 1000) % 60,
        ms % 1000
    )
}

/// Splits one CSV line (fields may be quoted, with `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The rows of one output stream as maps column → value. Each stream's CSV header (first field
/// `stream`) comes once, right before its first row; streams may interleave after that.
fn rows_of(out: &str, stream: &str) -> Vec<HashMap<String, String>> {
    let mut pending: Option<Vec<String>> = None;
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in out.lines() {
        let f = csv_fields(line);
        if f.first().map(|s| s.as_str()) == Some("stream") {
            pending = Some(f);
            continue;
        }
        if f.first().map(|s| s.as_str()) == Some(stream) {
            if header.is_none() {
                header = pending.take();
            }
            let h = header.as_ref().expect("a header before the first row");
            rows.push(h.iter().cloned().zip(f).collect());
        }
        pending = None;
    }
    rows
}

fn score(r: &HashMap<String, String>) -> f64 {
    r["ANOMALY_SCORE"].parse().expect("a number")
}

/// Runs `app` over `records` (JSON lines) with `schema`; CSV output of `output`.
fn run(dir: &Path, app: &str, records: &[String], schema: &str, output: &str) -> String {
    let app_path = dir.join("app.sql");
    std::fs::write(&app_path, app).expect("write app");
    let input = dir.join("input.jsonl");
    std::fs::write(&input, records.join("\n") + "\n").expect("write input");
    let o = dfstream(&[
        "kda",
        &app_path.display().to_string(),
        "--input",
        &input.display().to_string(),
        "--input-schema",
        schema,
        "--output",
        output,
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Within each ROWTIME bucket, rows are sorted by score, descending (Example I's ORDER BY pump).
fn assert_sorted_per_second(rows: &[HashMap<String, String>]) {
    for w in rows.windows(2) {
        if w[0]["ROWTIME"] == w[1]["ROWTIME"] {
            assert!(score(&w[0]) >= score(&w[1]), "{:?} before {:?}", w[0], w[1]);
        } else {
            assert!(w[0]["ROWTIME"] < w[1]["ROWTIME"], "ROWTIME goes back");
        }
    }
}

const I1: &str = r#"
CREATE OR REPLACE STREAM "TEMP_STREAM" (
        "heartRate"        INTEGER,
        "rateType"         varchar(20),
        "ANOMALY_SCORE"    DOUBLE);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        "heartRate"        INTEGER,
        "rateType"         varchar(20),
        "ANOMALY_SCORE"    DOUBLE);
-- Compute an anomaly score for each record in the input stream
-- using Random Cut Forest
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "TEMP_STREAM"
      SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
      FROM TABLE(RANDOM_CUT_FOREST(
              CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001")));
-- Sort records by descending anomaly score, insert into output stream
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM * FROM "TEMP_STREAM"
      ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
"#;

#[test]
fn example_i1_heart_rate() {
    let mut rng = Lcg(42);
    let outliers = [400usize, 650, 900, 1150];
    let n = 1200;
    let records: Vec<String> = (0..n)
        .map(|i| {
            let (hr, kind) = if outliers.contains(&i) {
                (rng.range(150, 200), "HIGH")
            } else {
                (rng.range(60, 100), "NORMAL")
            };
            format!(
                r#"{{"ROWTIME": "{}", "heartRate": {hr}, "rateType": "{kind}"}}"#,
                rowtime(i)
            )
        })
        .collect();
    let dir = temp_dir("rcf-i1");
    let out = run(
        &dir,
        I1,
        &records,
        r#""heartRate" INTEGER, "rateType" VARCHAR(20)"#,
        "DESTINATION_SQL_STREAM",
    );
    let rows = rows_of(&out, "DESTINATION_SQL_STREAM");
    assert_eq!(rows.len(), n, "{out}");
    // The learning phase: exactly subSampleSize (256) rows score 0.
    assert_eq!(rows.iter().filter(|r| score(r) == 0.0).count(), 256);
    assert_sorted_per_second(&rows);
    // The planted outliers have the top scores.
    let mut by_score: Vec<&HashMap<String, String>> = rows.iter().collect();
    by_score.sort_by(|a, b| score(b).total_cmp(&score(a)));
    for r in &by_score[..outliers.len()] {
        assert_eq!(r["rateType"], "HIGH", "{r:?}");
    }
    assert!(score(by_score[outliers.len()]) < score(by_score[outliers.len() - 1]));
}

const I2: &str = r#"
CREATE OR REPLACE STREAM "TEMP_STREAM" (
        "Systolic" INTEGER, "Diastolic" INTEGER, "BloodPressureLevel" varchar(20),
        "ANOMALY_SCORE" DOUBLE, "ANOMALY_EXPLANATION" varchar(512));
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
        "Systolic" INTEGER, "Diastolic" INTEGER, "BloodPressureLevel" varchar(20),
        "ANOMALY_SCORE" DOUBLE, "ANOMALY_EXPLANATION" varchar(512));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "TEMP_STREAM"
      SELECT STREAM "Systolic", "Diastolic", "BloodPressureLevel", ANOMALY_SCORE, ANOMALY_EXPLANATION
      FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
              CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true));
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM * FROM "TEMP_STREAM"
      ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
"#;

/// One column's entry of an explanation: (DIRECTION, STRENGTH, ATTRIBUTION_SCORE).
fn explanation_entry(json: &str, col: &str) -> (String, String, String) {
    let key = format!("\"{col}\":{{\"DIRECTION\":\"");
    let start = json.find(&key).unwrap_or_else(|| panic!("{col} in {json}")) + key.len();
    let rest = &json[start..];
    let dir_end = rest.find('"').expect("direction");
    let direction = rest[..dir_end].to_string();
    let field = |name: &str| {
        let k = format!("\"{name}\":\"");
        let s = rest.find(&k).expect(name) + k.len();
        let e = rest[s..].find('"').expect("end") + s;
        rest[s..e].to_string()
    };
    (direction, field("STRENGTH"), field("ATTRIBUTION_SCORE"))
}

fn four_decimals(s: &str) -> bool {
    let Some((a, b)) = s.split_once('.') else {
        return false;
    };
    !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.len() == 4
}

#[test]
fn example_i2_blood_pressure_with_explanation() {
    let mut rng = Lcg(7);
    let highs = [500usize, 800];
    let lows = [650usize];
    let n = 1000;
    let records: Vec<String> = (0..n)
        .map(|i| {
            let (s, d, level) = if highs.contains(&i) {
                (rng.range(140, 160), rng.range(120, 130), "HIGH")
            } else if lows.contains(&i) {
                (rng.range(60, 70), rng.range(30, 35), "LOW")
            } else {
                (rng.range(100, 115), rng.range(62, 72), "NORMAL")
            };
            format!(
                r#"{{"ROWTIME": "{}", "Systolic": {s}, "Diastolic": {d}, "BloodPressureLevel": "{level}"}}"#,
                rowtime(i)
            )
        })
        .collect();
    let dir = temp_dir("rcf-i2");
    let out = run(
        &dir,
        I2,
        &records,
        r#""Systolic" INTEGER, "Diastolic" INTEGER, "BloodPressureLevel" VARCHAR(20)"#,
        "DESTINATION_SQL_STREAM",
    );
    let rows = rows_of(&out, "DESTINATION_SQL_STREAM");
    assert_eq!(rows.len(), n, "{out}");
    assert_sorted_per_second(&rows);
    for r in &rows {
        let e = &r["ANOMALY_EXPLANATION"];
        // exactly the two numeric columns, in order
        assert!(e.starts_with("{\"Systolic\":{\"DIRECTION\":"), "{e}");
        assert_eq!(e.matches("DIRECTION").count(), 2, "{e}");
        let mut sum = 0.0;
        for col in ["Systolic", "Diastolic"] {
            let (dir, strength, attr) = explanation_entry(e, col);
            assert!(dir == "LOW" || dir == "HIGH", "{e}");
            assert!(four_decimals(&strength) && four_decimals(&attr), "{e}");
            sum += attr.parse::<f64>().expect("number");
            if score(r) == 0.0 {
                assert_eq!((dir.as_str(), strength.as_str()), ("LOW", "0.0000"));
            }
        }
        // the attributions (rounded to 4 decimals) sum to the score
        assert!((sum - score(r)).abs() <= 1.5e-4, "{r:?}");
    }
    assert_eq!(rows.iter().filter(|r| score(r) == 0.0).count(), 256);
    let mut by_score: Vec<&HashMap<String, String>> = rows.iter().collect();
    by_score.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let top: Vec<&str> = by_score[..3]
        .iter()
        .map(|r| r["BloodPressureLevel"].as_str())
        .collect();
    assert!(top.iter().all(|l| *l != "NORMAL"), "{top:?}");
    // directions: the high readings are HIGH in Diastolic, the low one LOW.
    for r in &by_score[..3] {
        let (dir, _, _) = explanation_entry(&r["ANOMALY_EXPLANATION"], "Diastolic");
        let want = if r["BloodPressureLevel"] == "HIGH" {
            "HIGH"
        } else {
            "LOW"
        };
        assert_eq!(dir, want, "{r:?}");
    }
}

#[test]
fn sqlref_ticker_variant_on_the_demo_stream() {
    // The SQLRef example: explanation of every scored trade of the demo ticker. Scores are 0
    // for the first 256 trades, so WHERE ANOMALY_SCORE > 0 starts after them.
    let dir = temp_dir("rcf-ticker");
    let app = dir.join("app.sql");
    std::fs::write(
        &app,
        r#"CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ANOMALY_SCORE DOUBLE, ANOMALY_EXPLANATION VARCHAR(1024));
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
SELECT "ANOMALY_SCORE", "ANOMALY_EXPLANATION" FROM TABLE (RANDOM_CUT_FOREST_WITH_EXPLANATION(CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true)) WHERE ANOMALY_SCORE > 0;
"#,
    )
    .expect("write app");
    let o = dfstream(&[
        "kda",
        &app.display().to_string(),
        "--rate",
        "2000",
        "--output",
        "DESTINATION_SQL_STREAM",
        "--format",
        "csv",
        "--max-rows",
        "30",
        "--duration",
        "60s",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let rows = rows_of(&out, "DESTINATION_SQL_STREAM");
    assert_eq!(rows.len(), 30, "{out}");
    for r in &rows {
        assert!(score(r) > 0.0);
        let e = &r["ANOMALY_EXPLANATION"];
        // the ticker's numeric columns: CHANGE and PRICE
        let (_, _, change) = explanation_entry(e, "CHANGE");
        let (_, _, price) = explanation_entry(e, "PRICE");
        let sum: f64 = change.parse::<f64>().expect("n") + price.parse::<f64>().expect("n");
        assert!((sum - score(r)).abs() <= 1.5e-4, "{r:?}");
    }
}

#[test]
fn scores_join_back_to_the_source_by_rowtime() {
    // A common pattern: the score stream joined back to the source rows within a second.
    let dir = temp_dir("rcf-join");
    let mut rng = Lcg(3);
    let records: Vec<String> = (0..400)
        .map(|i| {
            let v = if i == 350 { 500 } else { rng.range(10, 20) };
            format!(r#"{{"ROWTIME": "{}", "ID": {i}, "V": {v}}}"#, rowtime(i))
        })
        .collect();
    let app = r#"
CREATE OR REPLACE STREAM SCORES (KEY VARCHAR(8), ANOMALY_SCORE DOUBLE);
CREATE OR REPLACE PUMP SCORE_PUMP AS INSERT INTO SCORES
  SELECT STREAM KEY, ANOMALY_SCORE FROM TABLE(RANDOM_CUT_FOREST(
      CURSOR(SELECT STREAM V, CAST(ID AS VARCHAR(8)) AS KEY FROM "SOURCE_SQL_STREAM_001"), 50, 100, 100000, 1));
CREATE OR REPLACE STREAM ALERTS (ID INTEGER, V INTEGER, ANOMALY_SCORE DOUBLE);
CREATE OR REPLACE PUMP ALERT_PUMP AS INSERT INTO ALERTS
  SELECT STREAM s.ID, s.V, a.ANOMALY_SCORE
  FROM "SOURCE_SQL_STREAM_001" OVER (RANGE INTERVAL '1' SECOND PRECEDING) AS s
  JOIN SCORES AS a ON CAST(s.ID AS VARCHAR(8)) = a.KEY
  WHERE a.ANOMALY_SCORE > 2;
"#;
    let out = run(&dir, app, &records, "ID INTEGER, V INTEGER", "ALERTS");
    let rows = rows_of(&out, "ALERTS");
    let ids: Vec<&str> = rows.iter().map(|r| r["ID"].as_str()).collect();
    assert_eq!(ids, vec!["350"], "{out}");
}

/// Expected `HOTSPOTS_RESULT`s of the 0-based `rows` of `points`, from the independent oracle
/// `sql-tests/oracle/hotspots.py` (plain DBSCAN over each window, in Python).
fn hotspots_oracle(
    points: &[Vec<f64>],
    window: usize,
    radius: f64,
    min_points: usize,
    rows: &[usize],
) -> Vec<String> {
    use std::io::Write;
    let input: String = points
        .iter()
        .map(|p| {
            let coords: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
            coords.join(",") + "\n"
        })
        .collect();
    let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let mut child = Command::new("python3")
        .arg(repo_root().join("sql-tests/oracle/hotspots.py"))
        .args([
            window.to_string(),
            format!("{radius:?}"),
            min_points.to_string(),
            rows.join(","),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write points");
    let o = child.wait_with_output().expect("oracle finishes");
    assert!(o.status.success(), "oracle: {}", text(&o.stderr));
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// One hotspot: (density, minValues, maxValues).
type Hotspot = (f64, Vec<f64>, Vec<f64>);

/// The hotspots of one `HOTSPOTS_RESULT`.
fn parse_hotspots(json: &str) -> Vec<Hotspot> {
    let v: serde_json::Value = serde_json::from_str(json).expect("HOTSPOTS_RESULT is JSON");
    let list = v["hotspots"].as_array().expect("a hotspots array");
    let nums = |h: &serde_json::Value, k: &str| -> Vec<f64> {
        h[k].as_array()
            .unwrap_or_else(|| panic!("{k} in {json}"))
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect()
    };
    list.iter()
        .map(|h| {
            (
                h["density"].as_f64().expect("density"),
                nums(h, "minValues"),
                nums(h, "maxValues"),
            )
        })
        .collect()
}

/// SPEC Example J, verbatim (its pump selects without STREAM).
const J: &str = r#"
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
    "x" DOUBLE,
    "y" DOUBLE,
    "is_hot" VARCHAR(4),
    HOTSPOTS_RESULT VARCHAR(10000)
);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT "x", "y", "is_hot", "HOTSPOTS_RESULT"
    FROM TABLE (
        HOTSPOTS(
            CURSOR(SELECT STREAM "x", "y", "is_hot" FROM "SOURCE_SQL_STREAM_001"),
            1000,
            0.2,
            17)
    );
"#;

#[test]
fn example_j_hotspots_on_a_file_replay() {
    // As the Developer Guide's generator: points uniform on [0, 10)², and for a while every
    // 4th point ("is_hot" Y) in the square [4, 4.3) × [6, 6.3).
    let mut rng = Lcg(11);
    let (n, hot_from, hot_to) = (2500usize, 1000usize, 1400usize);
    let mut points = Vec::with_capacity(n);
    let records: Vec<String> = (0..n)
        .map(|i| {
            let hot = (hot_from..hot_to).contains(&i) && i % 4 == 0;
            let (x, y) = if hot {
                (4.0 + rng.next() * 0.3, 6.0 + rng.next() * 0.3)
            } else {
                (rng.next() * 10.0, rng.next() * 10.0)
            };
            points.push(vec![x, y]);
            let flag = if hot { "Y" } else { "N" };
            format!(
                r#"{{"ROWTIME": "{}", "x": {x:?}, "y": {y:?}, "is_hot": "{flag}"}}"#,
                rowtime(i)
            )
        })
        .collect();
    let dir = temp_dir("hotspots-j");
    let out = run(
        &dir,
        J,
        &records,
        r#""x" DOUBLE, "y" DOUBLE, "is_hot" VARCHAR(4)"#,
        "DESTINATION_SQL_STREAM",
    );
    let rows = rows_of(&out, "DESTINATION_SQL_STREAM");
    assert_eq!(rows.len(), n, "{out}");
    // Every row, in input order, with its columns passed through.
    for (r, p) in rows.iter().zip(&points) {
        assert_eq!(r["x"].parse::<f64>().expect("x"), p[0]);
        assert_eq!(r["y"].parse::<f64>().expect("y"), p[1]);
    }
    let results: Vec<Vec<Hotspot>> = rows
        .iter()
        .map(|r| parse_hotspots(&r["HOTSPOTS_RESULT"]))
        .collect();
    // Uniform noise (10 points per unit² in a window of 1000) has no hotspot: not before the
    // hot points arrive, and not once the last of them has left the 1000-row window.
    assert!(results[..hot_from].iter().all(Vec::is_empty));
    assert!(results[hot_to + 1000..].iter().all(Vec::is_empty));
    // While they are in the window, the hot square is a hotspot, dense enough for the Guide's
    // viewer (density >= 40), and it comes first.
    for (i, hs) in results.iter().enumerate().take(2300).skip(1200) {
        let Some((density, lo, hi)) = hs.first() else {
            panic!("row {i}: no hotspot: {}", rows[i]["HOTSPOTS_RESULT"]);
        };
        assert!(*density >= 40.0, "row {i}: {hs:?}");
        assert!(
            lo[0] >= 3.8 && lo[1] >= 5.8 && hi[0] < 4.5 && hi[1] < 6.5,
            "row {i}: {hs:?}"
        );
        assert!(hs[1..].iter().all(|h| h.0 < 40.0), "row {i}: {hs:?}");
    }
    // Exactly the oracle's output at sample rows across the run (the oracle is O(window²)).
    let sample = [999, 1003, 1100, 1399, 1800, 2398, 2399, 2499];
    let want = hotspots_oracle(&points, 1000, 0.2, 17, &sample);
    for (row, want) in sample.iter().zip(&want) {
        assert_eq!(&rows[*row]["HOTSPOTS_RESULT"], want, "row {row}");
    }
}

#[test]
fn hotspots_sqlref_ticker_variant_on_the_demo_stream() {
    // The SQLRef variant on the demo ticker (HOT), and the same cursor with a wider radius
    // (WIDE) that does find hotspots among the trades of one ticker. Every row's result equals
    // the oracle's over the CHANGE and PRICE values the app saw (its output, in order).
    let dir = temp_dir("hotspots-ticker");
    let app = dir.join("app.sql");
    std::fs::write(
        &app,
        r#"CREATE OR REPLACE STREAM "HOT" ("CHANGE" DOUBLE, "PRICE" DOUBLE, HOTSPOTS_RESULT VARCHAR(10000));
CREATE OR REPLACE PUMP "HOT_PUMP" AS INSERT INTO "HOT"
SELECT STREAM "CHANGE", "PRICE", "HOTSPOTS_RESULT" FROM TABLE(HOTSPOTS(CURSOR(SELECT STREAM "CHANGE", "PRICE" FROM "SOURCE_SQL_STREAM_001"), 100, 0.013, 20));
CREATE OR REPLACE STREAM "WIDE" ("CHANGE" DOUBLE, "PRICE" DOUBLE, HOTSPOTS_RESULT VARCHAR(10000));
CREATE OR REPLACE PUMP "WIDE_PUMP" AS INSERT INTO "WIDE"
SELECT STREAM "CHANGE", "PRICE", "HOTSPOTS_RESULT" FROM TABLE(HOTSPOTS(CURSOR(SELECT STREAM "CHANGE", "PRICE" FROM "SOURCE_SQL_STREAM_001"), 100, 0.5, 5));
"#,
    )
    .expect("write app");
    let o = dfstream(&[
        "kda",
        &app.display().to_string(),
        "--rate",
        "2000",
        "--output",
        "HOT",
        "--output",
        "WIDE",
        "--format",
        "csv",
        "--max-rows",
        "800",
        "--duration",
        "60s",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    for (stream, radius, min_points) in [("HOT", 0.013, 20), ("WIDE", 0.5, 5)] {
        let rows = rows_of(&out, stream);
        assert!(rows.len() >= 200, "{stream}: {} rows\n{out}", rows.len());
        let points: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                vec![
                    r["CHANGE"].parse().expect("CHANGE"),
                    r["PRICE"].parse().expect("PRICE"),
                ]
            })
            .collect();
        let all: Vec<usize> = (0..rows.len()).collect();
        let want = hotspots_oracle(&points, 100, radius, min_points, &all);
        assert_eq!(want.len(), rows.len());
        for (i, (r, want)) in rows.iter().zip(&want).enumerate() {
            assert_eq!(&r["HOTSPOTS_RESULT"], want, "{stream} row {i}");
        }
        if stream == "WIDE" {
            let found = rows
                .iter()
                .filter(|r| !parse_hotspots(&r["HOTSPOTS_RESULT"]).is_empty())
                .count();
            assert!(found > 0, "no hotspot in WIDE:\n{out}");
        }
    }
}

#[test]
fn the_anomaly_example_app_runs_on_the_demo_stream() {
    // examples/kda/anomaly_app.sql, as the README runs it.
    let o = dfstream(&[
        "kda",
        "examples/kda/anomaly_app.sql",
        "--rate",
        "2000",
        "--output",
        "ANOMALIES",
        "--output",
        "HOTSPOTS_STREAM",
        "--format",
        "csv",
        "--max-rows",
        "2000",
        "--duration",
        "60s",
    ]);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let scored = rows_of(&out, "ANOMALIES");
    assert!(!scored.is_empty(), "{out}");
    for r in &scored {
        assert!(score(r) > 0.0, "{r:?}");
        let (_, _, change) = explanation_entry(&r["ANOMALY_EXPLANATION"], "CHANGE");
        let (_, _, price) = explanation_entry(&r["ANOMALY_EXPLANATION"], "PRICE");
        let sum: f64 = change.parse::<f64>().expect("n") + price.parse::<f64>().expect("n");
        assert!((sum - score(r)).abs() <= 1.5e-4, "{r:?}");
    }
    let hot = rows_of(&out, "HOTSPOTS_STREAM");
    assert!(hot.len() > 256, "{out}");
    for r in &hot {
        for (_, lo, hi) in parse_hotspots(&r["HOTSPOTS_RESULT"]) {
            assert!(lo.len() == 2 && hi.len() == 2 && lo[0] <= hi[0] && lo[1] <= hi[1]);
        }
    }
}
