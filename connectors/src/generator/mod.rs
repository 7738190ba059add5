//! The demo ticker source (connector `'demo'`): a stock-ticker stream like the demo stream of
//! Kinesis Data Analytics, so a fresh install has something to query.
//!
//! ```text
//!   clock.ticks(period) ──► reading `now` ──► due = ⌊(now - start) · rate / 1 s⌋ rows (global)
//!                                                │  global row k belongs to partition k mod P
//!                                                ▼
//!   per partition:  PRNG(seed, p) ──► row k: ticker (one of the partition's tickers),
//!                                   price random walk (integer cents), change = delta,
//!                                   event_time = t_k - delay,  delay ∈ [0, max_delay)
//!                                   t_k = start + ⌈(k+1) · 1 s / rate⌉  (the clock reading at
//!                                         which row k became due; t_k <= now)
//!                                                │ batches of <= batch_size rows
//!                                                ▼
//!                                   SourceEvent::Data { rowtime: None } ──► scan stamps ROWTIME
//!
//!   state per partition: PRNG, price (cents) per ticker, next row index, start reading
//!   ends (bounded) after global row 'rows' - 1 when 'rows' is set
//! ```
//!
//! Everything is derived from clock readings and the seed, so under a
//! [`ManualClock`](datafusion_stream::ManualClock) the rows are reproducible, and they do not
//! depend on how the clock was advanced: advancing by 1 s once or by 100 ms ten times yields
//! the same rows. Every row's event time lies less than `max_delay` before the time it became
//! due, and rows become due in order, so with `WATERMARK FOR event_time AS event_time -
//! INTERVAL '<max_delay>' SECOND` (see [`demo_ticker_ddl`]) no row is ever late.
//!
//! Columns (fixed; `CREATE STREAM` must declare exactly these, in this order):
//! `ticker_symbol VARCHAR, sector VARCHAR, change DOUBLE, price DOUBLE, event_time TIMESTAMP(3)`.
//!
//! Options: `'rate'` rows per second over all partitions (default 10), `'seed'` (default
//! 42), `'partitions'` (default 1, at most the number of tickers; each ticker lives in one
//! partition), `'max_delay'` (default `'2s'`), `'rows'` (total rows, then the stream ends).

pub mod prng;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, plan_err, DataFusionError, Result};
use datafusion_stream::source::{
    ConnectorOptions, SourceContext, SourceEvent, SourceFactory, StreamSource,
};
use datafusion_stream::{Millis, RowtimeMode};
use futures::stream::BoxStream;
use futures::StreamExt;

use self::prng::SplitMix64;

/// The connector name.
pub const CONNECTOR: &str = "demo";

/// The option names the connector accepts.
pub const OPTIONS: &[&str] = &["rate", "seed", "partitions", "max_delay", "rows"];

/// The demo tickers: symbol, sector, starting price in cents.
pub const TICKERS: &[(&str, &str, i64)] = &[
    ("AAPL", "TECHNOLOGY", 19_000),
    ("AMZN", "TECHNOLOGY", 18_000),
    ("MSFT", "TECHNOLOGY", 41_000),
    ("INTC", "TECHNOLOGY", 3_500),
    ("NFLX", "TECHNOLOGY", 62_000),
    ("CRM", "TECHNOLOGY", 27_000),
    ("WMT", "RETAIL", 6_500),
    ("TGT", "RETAIL", 15_000),
    ("COST", "RETAIL", 72_000),
    ("BAC", "FINANCIAL", 3_800),
    ("WFC", "FINANCIAL", 5_800),
    ("JPM", "FINANCIAL", 19_500),
    ("XOM", "ENERGY", 11_500),
    ("CVX", "ENERGY", 15_500),
    ("PPL", "ENERGY", 3_000),
    ("PFE", "HEALTHCARE", 2_800),
    ("JNJ", "HEALTHCARE", 15_500),
    ("UNH", "HEALTHCARE", 51_000),
    ("F", "AUTOMOBILE", 1_200),
    ("GM", "AUTOMOBILE", 4_500),
];

/// The fixed columns: name, SQL type as shown in messages and DDL.
const COLUMNS: &[(&str, &str)] = &[
    ("ticker_symbol", "VARCHAR"),
    ("sector", "VARCHAR"),
    ("change", "DOUBLE"),
    ("price", "DOUBLE"),
    ("event_time", "TIMESTAMP(3)"),
];

/// The demo stream's schema.
pub fn demo_ticker_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ticker_symbol", DataType::Utf8, true),
        Field::new("sector", DataType::Utf8, true),
        Field::new("change", DataType::Float64, true),
        Field::new("price", DataType::Float64, true),
        Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]))
}

/// Settings of a demo ticker stream (the `WITH` options).
#[derive(Debug, Clone, PartialEq)]
pub struct DemoTickerConfig {
    /// Rows per second, over all partitions.
    pub rate: f64,
    /// PRNG seed.
    pub seed: u64,
    /// Number of partitions (tickers are spread over them).
    pub partitions: usize,
    /// Event times lie up to this much before the time a row is produced.
    pub max_delay: Duration,
    /// Total number of rows, after which the stream ends; `None`: unbounded.
    pub rows: Option<u64>,
}

impl Default for DemoTickerConfig {
    fn default() -> Self {
        Self {
            rate: 10.0,
            seed: 42,
            partitions: 1,
            max_delay: Duration::from_secs(2),
            rows: None,
        }
    }
}

impl DemoTickerConfig {
    /// Reads the options (and rejects unknown ones).
    pub fn from_options(options: &mut ConnectorOptions) -> Result<Self> {
        let d = Self::default();
        let rate = options.take_parsed::<f64>("rate")?.unwrap_or(d.rate);
        let seed = options.take_parsed::<u64>("seed")?.unwrap_or(d.seed);
        let partitions = options
            .take_parsed::<usize>("partitions")?
            .unwrap_or(d.partitions);
        let max_delay = options.take_duration("max_delay")?.unwrap_or(d.max_delay);
        let rows = options.take_parsed::<u64>("rows")?;
        options.finish(OPTIONS)?;
        let config = Self {
            rate,
            seed,
            partitions,
            max_delay,
            rows,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the ranges of the settings.
    pub fn validate(&self) -> Result<()> {
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 10_000_000.0) {
            return plan_err!(
                "connector '{CONNECTOR}': option 'rate' = '{}' is invalid: rows per second must be > 0 and at most 10000000",
                self.rate
            );
        }
        if self.partitions == 0 || self.partitions > TICKERS.len() {
            return plan_err!(
                "connector '{CONNECTOR}': option 'partitions' = '{}' is invalid: must be between 1 and {} (the number of tickers)",
                self.partitions,
                TICKERS.len()
            );
        }
        Ok(())
    }

    /// `max_delay` in milliseconds.
    pub fn max_delay_ms(&self) -> Millis {
        self.max_delay.as_millis().min(i64::MAX as u128) as Millis
    }

    /// The `CREATE STREAM` statement for a demo stream named `name` with these settings, with
    /// a watermark that trails the largest event time by `max_delay` (so no row is late).
    pub fn ddl(&self, name: &str) -> String {
        let d = Self::default();
        let mut with = vec![format!("'connector' = '{CONNECTOR}'")];
        if self.rate != d.rate {
            with.push(format!("'rate' = '{}'", self.rate));
        }
        if self.seed != d.seed {
            with.push(format!("'seed' = '{}'", self.seed));
        }
        if self.partitions != d.partitions {
            with.push(format!("'partitions' = '{}'", self.partitions));
        }
        if self.max_delay != d.max_delay {
            with.push(format!("'max_delay' = '{}ms'", self.max_delay_ms()));
        }
        if let Some(rows) = self.rows {
            with.push(format!("'rows' = '{rows}'"));
        }
        let columns = COLUMNS
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "CREATE STREAM {name} ({columns}, WATERMARK FOR event_time AS event_time - INTERVAL '{}' SECOND) WITH ({})",
            seconds_literal(self.max_delay_ms()),
            with.join(", ")
        )
    }
}

/// `1500` → `"1.5"`, `2000` → `"2"`.
fn seconds_literal(ms: Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        s.trim_end_matches('0').to_string()
    }
}

/// The `CREATE STREAM` statement for a demo ticker stream named `name` with default settings
/// (10 rows/s, seed 42, one partition, event times up to 2 s late, watermark 2 s behind).
pub fn demo_ticker_ddl(name: &str) -> String {
    DemoTickerConfig::default().ddl(name)
}

/// The demo ticker source.
#[derive(Debug, Clone)]
pub struct DemoTickerSource {
    schema: SchemaRef,
    config: DemoTickerConfig,
}

impl DemoTickerSource {
    /// A source producing rows in `schema` (which must match [`demo_ticker_schema`] up to
    /// string/timestamp variants, see [`check_schema`]).
    pub fn try_new(stream_name: &str, schema: SchemaRef, config: DemoTickerConfig) -> Result<Self> {
        check_schema(stream_name, &schema)?;
        config.validate()?;
        Ok(Self { schema, config })
    }

    /// The settings.
    pub fn config(&self) -> &DemoTickerConfig {
        &self.config
    }
}

/// Checks that the declared columns are the demo stream's columns: same names, in order, with
/// a string type for the symbols, `DOUBLE` for the numbers and a `TIMESTAMP` for event time.
pub fn check_schema(stream_name: &str, schema: &Schema) -> Result<()> {
    let ok = schema.fields().len() == COLUMNS.len()
        && schema
            .fields()
            .iter()
            .zip(COLUMNS)
            .all(|(f, (name, sql_type))| {
                f.name() == name
                    && match *sql_type {
                        "VARCHAR" => matches!(
                            f.data_type(),
                            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                        ),
                        "DOUBLE" => f.data_type() == &DataType::Float64,
                        _ => matches!(f.data_type(), DataType::Timestamp(_, _)),
                    }
            });
    if ok {
        return Ok(());
    }
    let expected = COLUMNS
        .iter()
        .map(|(n, t)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let got = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ");
    plan_err!(
        "CREATE STREAM {stream_name}: connector '{CONNECTOR}' has fixed columns; declare exactly ({expected}); got ({got})"
    )
}

impl StreamSource for DemoTickerSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn partition_count(&self) -> usize {
        self.config.partitions
    }

    fn rowtime_mode(&self) -> RowtimeMode {
        RowtimeMode::Ingest
    }

    fn is_bounded(&self) -> bool {
        self.config.rows.is_some()
    }

    fn open(
        &self,
        partition: usize,
        ctx: &SourceContext,
    ) -> Result<BoxStream<'static, Result<SourceEvent>>> {
        if partition >= self.config.partitions {
            return exec_err!(
                "connector '{CONNECTOR}': partition {partition} does not exist; the stream has {}",
                self.config.partitions
            );
        }
        let generator = PartitionGenerator::new(
            Arc::clone(&self.schema),
            &self.config,
            partition,
            ctx.clock.now(),
            ctx.batch_size.max(1),
        );
        // Pace by the clock: a real clock ticks every `period`, a manual one on each advance.
        let period = Duration::from_secs_f64((1.0 / self.config.rate).clamp(0.01, 0.1));
        let ticks = ctx.clock.ticks(period);
        let clock = Arc::clone(&ctx.clock);
        let state = (generator, ticks, clock);
        Ok(futures::stream::unfold(Some(state), |state| async move {
            let (mut g, mut ticks, clock) = state?;
            loop {
                if let Some(r) = g.next_batch() {
                    return match r {
                        Ok(batch) => Some((
                            Ok(SourceEvent::Data {
                                batch,
                                rowtime: None,
                            }),
                            Some((g, ticks, clock)),
                        )),
                        Err(e) => Some((Err(e), None)),
                    };
                }
                if g.exhausted() {
                    return None;
                }
                // Wait for the clock to move, then take its reading (a manual clock's tick
                // carries the reading; a real clock is read again so no time is lost).
                let tick = ticks.next().await?;
                g.advance_to(tick.max(clock.now()));
            }
        })
        .boxed())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One partition's rows, produced in order as the clock makes them due.
struct PartitionGenerator {
    schema: SchemaRef,
    rng: SplitMix64,
    /// Indexes into [`TICKERS`] of this partition's tickers.
    tickers: Vec<usize>,
    /// Current price in cents, per ticker of this partition.
    prices: Vec<i64>,
    partition: u64,
    partitions: u64,
    rate: f64,
    max_delay_ms: Millis,
    limit: Option<u64>,
    start: Millis,
    /// Local index (row `j` of this partition is global row `partition + j * partitions`).
    next_local: u64,
    /// Local rows due so far.
    due_local: u64,
    batch_size: usize,
}

impl PartitionGenerator {
    fn new(
        schema: SchemaRef,
        config: &DemoTickerConfig,
        partition: usize,
        start: Millis,
        batch_size: usize,
    ) -> Self {
        let p = config.partitions.max(1);
        let tickers: Vec<usize> = (0..TICKERS.len()).filter(|i| i % p == partition).collect();
        let prices = tickers.iter().map(|&i| TICKERS[i].2).collect();
        Self {
            schema,
            rng: SplitMix64::for_stream(config.seed, partition as u64),
            tickers,
            prices,
            partition: partition as u64,
            partitions: p as u64,
            rate: config.rate,
            max_delay_ms: config.max_delay_ms(),
            limit: config.rows,
            start,
            next_local: 0,
            due_local: 0,
            batch_size,
        }
    }

    /// Number of this partition's rows among the first `global` rows.
    fn local_count(&self, global: u64) -> u64 {
        if global > self.partition {
            (global - self.partition - 1) / self.partitions + 1
        } else {
            0
        }
    }

    /// Rows this partition produces in total (`u64::MAX` when unbounded).
    fn local_limit(&self) -> u64 {
        self.limit.map_or(u64::MAX, |l| self.local_count(l))
    }

    /// True when every row the partition will ever produce has been produced.
    fn exhausted(&self) -> bool {
        self.next_local >= self.local_limit()
    }

    /// Takes a clock reading: the rows due by then become available.
    fn advance_to(&mut self, now: Millis) {
        let elapsed = now.saturating_sub(self.start).max(0) as f64;
        let global = (elapsed * self.rate / 1000.0).floor();
        let global = if global >= u64::MAX as f64 {
            u64::MAX
        } else {
            global as u64
        };
        let global = self.limit.map_or(global, |l| global.min(l));
        self.due_local = self.due_local.max(self.local_count(global));
    }

    /// When global row `k` became due (a clock reading).
    fn due_time(&self, k: u64) -> Millis {
        let t = ((k as f64 + 1.0) * 1000.0 / self.rate).ceil();
        self.start.saturating_add(t.min(i64::MAX as f64) as Millis)
    }

    /// The next batch of due rows, if any.
    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        if self.next_local >= self.due_local || self.tickers.is_empty() {
            return None;
        }
        let n = (self.due_local - self.next_local).min(self.batch_size as u64) as usize;
        let mut symbols = Vec::with_capacity(n);
        let mut sectors = Vec::with_capacity(n);
        let mut changes = Vec::with_capacity(n);
        let mut prices = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.partition + self.next_local * self.partitions;
            self.next_local += 1;
            let t = self.rng.below(self.tickers.len() as u64) as usize;
            let (symbol, sector, _) = TICKERS[self.tickers[t]];
            // A step of up to ±1% of the price, in whole cents; the price stays >= 1.00.
            let old = self.prices[t];
            let step = ((self.rng.next_f64() * 2.0 - 1.0) * old as f64 * 0.01).round() as i64;
            let new = (old + step).max(100);
            self.prices[t] = new;
            let delay = self.rng.below(self.max_delay_ms.max(0) as u64) as Millis;
            symbols.push(symbol);
            sectors.push(sector);
            changes.push((new - old) as f64 / 100.0);
            prices.push(new as f64 / 100.0);
            times.push(self.due_time(k).saturating_sub(delay));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(symbols)),
            Arc::new(StringArray::from(sectors)),
            Arc::new(Float64Array::from(changes)),
            Arc::new(Float64Array::from(prices)),
            Arc::new(TimestampMillisecondArray::from(times)),
        ];
        Some(self.to_declared(columns))
    }

    /// Casts the generated columns to the declared types (e.g. `TIMESTAMP(0)`, `Utf8View`).
    fn to_declared(&self, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    cast(&c, f.data_type()).map_err(|e| {
                        DataFusionError::Execution(format!(
                            "connector '{CONNECTOR}': cannot produce column '{}' as {}: {e}",
                            f.name(),
                            f.data_type()
                        ))
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| {
            DataFusionError::Execution(format!(
                "connector '{CONNECTOR}': rows do not match the declared columns: {e}"
            ))
        })
    }
}

/// Creates [`DemoTickerSource`]s for `CREATE STREAM ... WITH ('connector' = 'demo', ...)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DemoTickerFactory;

impl SourceFactory for DemoTickerFactory {
    fn create(
        &self,
        stream_name: &str,
        schema: SchemaRef,
        options: &mut ConnectorOptions,
    ) -> Result<Arc<dyn StreamSource>> {
        let config = DemoTickerConfig::from_options(options)?;
        Ok(Arc::new(DemoTickerSource::try_new(
            stream_name,
            schema,
            config,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_literals() {
        assert_eq!(seconds_literal(2000), "2");
        assert_eq!(seconds_literal(1500), "1.5");
        assert_eq!(seconds_literal(250), "0.25");
        assert_eq!(seconds_literal(0), "0");
    }

    #[test]
    fn local_counts_partition_global_rows() {
        let config = DemoTickerConfig {
            partitions: 3,
            ..Default::default()
        };
        let schema = demo_ticker_schema();
        let counts: Vec<u64> = (0..3)
            .map(|p| PartitionGenerator::new(schema.clone(), &config, p, 0, 10).local_count(10))
            .collect();
        // rows 0..10: p0 gets 0,3,6,9; p1 gets 1,4,7; p2 gets 2,5,8
        assert_eq!(counts, vec![4, 3, 3]);
    }
}
