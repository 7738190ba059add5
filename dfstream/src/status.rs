//! The status line on stderr: rows in, rows out, events/s, watermark, late rows, and for
//! queries writing into sinks the rows the sinks received and wrote, and the objects
//! completed. Each object a sink completes is also logged on its own line:
//! `dfstream: sink out: wrote s3://b/out/out-0-000000.parquet (120 rows, 4213 bytes)`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion_stream::time::format_millis;
use datafusion_stream::StreamQuery;

/// Live counters of the running queries, printed once a second.
pub struct Status {
    tty: bool,
    enabled: bool,
    start: Instant,
    last_at: Instant,
    last_in: usize,
    rows_out: u64,
    shown: bool,
}

impl Status {
    /// A status printer; `enabled = false` prints nothing.
    pub fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            tty: std::io::stderr().is_terminal(),
            enabled,
            start: now,
            last_at: now,
            last_in: 0,
            rows_out: 0,
            shown: false,
        }
    }

    /// Counts printed rows.
    pub fn add_output(&mut self, rows: usize) {
        self.rows_out += rows as u64;
    }

    /// Rows printed so far.
    pub fn rows_out(&self) -> u64 {
        self.rows_out
    }

    fn line(&mut self, queries: &[StreamQuery]) -> String {
        // Rows in: what the stream scans of every query have read from their sources.
        let rows_in: usize = queries.iter().map(|q| q.counter("source_rows")).sum();
        let late: usize = queries.iter().map(|q| q.counter("late_rows")).sum();
        // The slowest window operator's watermark.
        let watermark = queries.iter().filter_map(|q| q.watermark()).min();
        let events = rows_in;
        let now = Instant::now();
        let dt = now.duration_since(self.last_at).as_secs_f64();
        let rate = if dt > 0.0 {
            events.saturating_sub(self.last_in) as f64 / dt
        } else {
            0.0
        };
        self.last_at = now;
        self.last_in = events;
        let mut line = format!(
            "[{:>4}s] rows in {} | rows out {} | {rate:.0} events/s | watermark {} | late rows {late}",
            now.duration_since(self.start).as_secs(),
            rows_in,
            self.rows_out,
            watermark.map_or_else(|| "-".to_string(), format_millis),
        );
        let sinks: Vec<_> = queries.iter().filter_map(|q| q.sink_counters()).collect();
        if !sinks.is_empty() {
            let received: u64 = sinks.iter().map(|c| c.rows_in()).sum();
            let written: u64 = sinks.iter().map(|c| c.rows_written()).sum();
            let commits: u64 = sinks.iter().map(|c| c.commits()).sum();
            line.push_str(&format!(
                " | sinks: rows received {received}, rows written {written}, commits {commits}"
            ));
        }
        line
    }

    /// Logs the objects a sink completed (rows of an INSERT's report stream); records
    /// written to a stream (no object URL) are only counted in the status line.
    pub fn sink_reports(&mut self, batch: &RecordBatch) {
        if !self.enabled || batch.num_columns() < 4 {
            return;
        }
        let (Some(sink), Some(location), Some(rows), Some(bytes)) = (
            batch.column(0).as_any().downcast_ref::<StringArray>(),
            batch.column(1).as_any().downcast_ref::<StringArray>(),
            batch.column(2).as_any().downcast_ref::<Int64Array>(),
            batch.column(3).as_any().downcast_ref::<Int64Array>(),
        ) else {
            return;
        };
        for i in 0..batch.num_rows() {
            let location = location.value(i);
            if !location.contains("://") {
                continue;
            }
            self.note(&format!(
                "sink {}: wrote {location} ({} rows, {} bytes)",
                sink.value(i),
                rows.value(i),
                bytes.value(i)
            ));
        }
    }

    /// Prints a message line on stderr (not in place of the status line).
    pub fn note(&mut self, message: &str) {
        if !self.enabled {
            return;
        }
        self.clear();
        let _ = writeln!(std::io::stderr(), "dfstream: {message}");
    }

    /// Prints the status: in place on a terminal, as a new line otherwise.
    pub fn show(&mut self, queries: &[StreamQuery]) {
        if !self.enabled {
            return;
        }
        let line = self.line(queries);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.shown = true;
    }

    /// Erases the in-place status line before results are printed on the same terminal.
    pub fn clear(&mut self) {
        if self.enabled && self.tty && self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }

    /// Prints the final status and ends the line.
    pub fn finish(&mut self, queries: &[StreamQuery]) {
        if !self.enabled {
            return;
        }
        self.show(queries);
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
