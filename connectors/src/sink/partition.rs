//! Hive-style partitioning of a sink's rows: by event-time bucket (`dt=YYYY-MM-DD/hour=HH`) or
//! by column values (`region=eu/kind=a`).
//!
//! ```text
//!  batch ──► key per row ──► groups, in order of first appearance, rows in input order
//!            time bucket:  floor(ts / 1 h | 1 day)       → "dt=2024-05-01/hour=13", bucket end
//!            columns:      display value, Hive-escaped   → "region=eu%2Fwest"
//!            NULL:         "__HIVE_DEFAULT_PARTITION__"
//! ```
//!
//! Partition columns (column partitioning only) are left out of the files by default, as Hive
//! and DataFusion's `COPY ... PARTITIONED BY` do: readers recover them from the path.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use datafusion_stream::scan::is_rowtime;
use datafusion_stream::Millis;

/// Hive's name for the partition of NULL values.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Size of an event-time partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeGranularity {
    /// `dt=YYYY-MM-DD/hour=HH`.
    Hour,
    /// `dt=YYYY-MM-DD`.
    Day,
}

impl TimeGranularity {
    fn millis(self) -> Millis {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

/// How a sink splits its rows into partition directories.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PartitionBy {
    /// One directory: the sink's prefix.
    #[default]
    None,
    /// By the time bucket of a timestamp column (UTC). A partition's open files are closed when
    /// the stream's progress passes the end of its bucket: the event-time watermark, or the
    /// ROWTIME bound when the column is ROWTIME.
    Time {
        /// The timestamp column.
        column: String,
        /// Hour or day.
        granularity: TimeGranularity,
    },
    /// By the values of these columns, in order (`a=1/b=x`).
    Columns(Vec<String>),
}

impl PartitionBy {
    /// Parses `'dt_hour(ts)'`, `'dt(ts)'` or a list of columns `'a, b'` (`''`: none).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(Self::None);
        }
        let call = |name: &str| -> Option<String> {
            let lower = t.to_ascii_lowercase();
            let rest = lower.strip_prefix(name)?.trim_start();
            let inner = rest.strip_prefix('(')?.strip_suffix(')')?.trim();
            // Keep the column's original case.
            let start = t.find('(')? + 1;
            let end = t.rfind(')')?;
            (!inner.is_empty()).then(|| t[start..end].trim().to_string())
        };
        if let Some(c) = call("dt_hour") {
            return Ok(Self::Time {
                column: c,
                granularity: TimeGranularity::Hour,
            });
        }
        if let Some(c) = call("dt") {
            return Ok(Self::Time {
                column: c,
                granularity: TimeGranularity::Day,
            });
        }
        if t.contains('(') || t.contains(')') {
            return plan_err!(
                "option 'partition_by' = '{t}': expected 'dt_hour(column)', 'dt(column)' or a list of columns"
            );
        }
        let columns: Vec<String> = t.split(',').map(|c| c.trim().to_string()).collect();
        if columns.iter().any(|c| c.is_empty()) {
            return plan_err!("option 'partition_by' = '{t}': empty column name");
        }
        Ok(Self::Columns(columns))
    }
}

/// One partition's part of a batch.
#[derive(Debug)]
pub(crate) struct PartitionRows {
    /// Relative directory (`""` when unpartitioned).
    pub path: String,
    /// End of the time bucket (exclusive), for time partitions with a non-NULL time.
    pub bucket_end: Option<Millis>,
    /// The rows, partition columns removed unless kept.
    pub batch: RecordBatch,
}

/// Splits batches by [`PartitionBy`], bound to a schema.
#[derive(Debug)]
pub(crate) struct Partitioner {
    kind: Kind,
    /// Columns written to the files.
    output_columns: Vec<usize>,
    output_schema: SchemaRef,
}

#[derive(Debug)]
enum Kind {
    None,
    Time {
        column: usize,
        granularity: TimeGranularity,
        rowtime: bool,
    },
    Columns(Vec<(usize, String)>),
}

impl Partitioner {
    pub(crate) fn try_new(
        by: &PartitionBy,
        schema: &SchemaRef,
        keep_columns: bool,
    ) -> Result<Self> {
        let find = |name: &str| -> Result<usize> {
            schema
                .index_of(name)
                .or_else(|_| {
                    let matches: Vec<usize> = schema
                        .fields()
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name))
                        .map(|(i, _)| i)
                        .collect();
                    match matches.as_slice() {
                        [i] => Ok(*i),
                        _ => Err(()),
                    }
                })
                .map_err(|_| {
                    exec_datafusion_err!(
                        "sink: partition column '{name}' is not in the query's output ({})",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        };
        let all: Vec<usize> = (0..schema.fields().len()).collect();
        let (kind, output_columns) = match by {
            PartitionBy::None => (Kind::None, all),
            PartitionBy::Time {
                column,
                granularity,
            } => {
                let i = find(column)?;
                let field = schema.field(i);
                if !matches!(
                    field.data_type(),
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
                ) {
                    return plan_err!(
                        "sink: partition column '{column}' must be a TIMESTAMP or DATE, it is {}",
                        field.data_type()
                    );
                }
                (
                    Kind::Time {
                        column: i,
                        granularity: *granularity,
                        rowtime: is_rowtime(field),
                    },
                    all,
                )
            }
            PartitionBy::Columns(names) => {
                let mut cols = Vec::new();
                for n in names {
                    let i = find(n)?;
                    if cols.iter().any(|(j, _)| *j == i) {
                        return plan_err!("sink: partition column '{n}' is listed twice");
                    }
                    cols.push((i, schema.field(i).name().clone()));
                }
                let output = if keep_columns {
                    all
                } else {
                    all.into_iter()
                        .filter(|i| !cols.iter().any(|(j, _)| j == i))
                        .collect()
                };
                if output.is_empty() {
                    return plan_err!("sink: every column is a partition column; nothing would be written in the files");
                }
                (Kind::Columns(cols), output)
            }
        };
        let output_schema = Arc::new(schema.project(&output_columns)?);
        Ok(Self {
            kind,
            output_columns,
            output_schema,
        })
    }

    /// The schema of the files.
    pub(crate) fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// True when partitions close on the ROWTIME bound rather than the event-time watermark.
    pub(crate) fn closes_on_rowtime(&self) -> bool {
        matches!(self.kind, Kind::Time { rowtime: true, .. })
    }

    fn project(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.output_columns.len() == batch.num_columns() {
            return Ok(batch.clone());
        }
        Ok(batch.project(&self.output_columns)?)
    }

    /// Splits `batch` into its partitions (order of first appearance; rows keep their order).
    pub(crate) fn split(&self, batch: &RecordBatch) -> Result<Vec<PartitionRows>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        match &self.kind {
            Kind::None => Ok(vec![PartitionRows {
                path: String::new(),
                bucket_end: None,
                batch: self.project(batch)?,
            }]),
            Kind::Time {
                column,
                granularity,
                ..
            } => {
                let width = granularity.millis();
                let times = cast(
                    batch.column(*column),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )?;
                let times = times.as_primitive::<TimestampMillisecondType>();
                let keys: Vec<Option<Millis>> = (0..times.len())
                    .map(|i| times.is_valid(i).then(|| times.value(i).div_euclid(width)))
                    .collect();
                self.group(batch, &keys, |k| match k {
                    Some(b) => (time_path(*b * width, *granularity), Some((*b + 1) * width)),
                    None => (format!("dt={NULL_PARTITION}"), None),
                })
            }
            Kind::Columns(cols) => {
                let options = FormatOptions::default();
                let formatters = cols
                    .iter()
                    .map(|(i, _)| ArrayFormatter::try_new(batch.column(*i).as_ref(), &options))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let keys: Vec<String> = (0..batch.num_rows())
                    .map(|row| {
                        cols.iter()
                            .zip(&formatters)
                            .map(|((i, name), f)| {
                                let value = if batch.column(*i).is_null(row) {
                                    NULL_PARTITION.to_string()
                                } else {
                                    escape_path_value(&f.value(row).to_string())
                                };
                                format!("{}={value}", escape_path_value(name))
                            })
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .collect();
                self.group(batch, &keys, |k| (k.clone(), None))
            }
        }
    }

    fn group<K: std::hash::Hash + Eq + Clone>(
        &self,
        batch: &RecordBatch,
        keys: &[K],
        describe: impl Fn(&K) -> (String, Option<Millis>),
    ) -> Result<Vec<PartitionRows>> {
        let projected = self.project(batch)?;
        // Fast path: one partition for the whole batch.
        if keys.iter().all(|k| *k == keys[0]) {
            let (path, bucket_end) = describe(&keys[0]);
            return Ok(vec![PartitionRows {
                path,
                bucket_end,
                batch: projected,
            }]);
        }
        let mut order: Vec<K> = Vec::new();
        let mut rows: HashMap<K, Vec<u32>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            rows.entry(k.clone())
                .or_insert_with(|| {
                    order.push(k.clone());
                    Vec::new()
                })
                .push(i as u32);
        }
        order
            .into_iter()
            .map(|k| {
                let indices = UInt32Array::from(rows.remove(&k).unwrap_or_default());
                let (path, bucket_end) = describe(&k);
                Ok(PartitionRows {
                    path,
                    bucket_end,
                    batch: take_record_batch(&projected, &indices)?,
                })
            })
            .collect()
    }
}

fn time_path(start: Millis, granularity: TimeGranularity) -> String {
    let Some(t) = timestamp_ms_to_datetime(start) else {
        return format!("dt={NULL_PARTITION}");
    };
    match granularity {
        TimeGranularity::Hour => t.format("dt=%Y-%m-%d/hour=%H").to_string(),
        TimeGranularity::Day => t.format("dt=%Y-%m-%d").to_string(),
    }
}

/// Escapes a partition value as Hive does: characters that are not safe in a path segment
/// become `%XX` (of their UTF-8 bytes).
pub fn escape_path_value(value: &str) -> String {
    if value.is_empty() {
        return NULL_PARTITION.to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let safe =
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '+' | ',' | '@' | '~');
        if safe {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}
