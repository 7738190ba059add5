//! `CREATE TABLE name [(cols)] WITH ('connector' = 'object_store' | 'filesystem', ...)`: a
//! [`ReferenceTable`] from SQL.
//!
//! ```text
//!  options ─► 'path' (one object) + 'format' + 'header' / 'delimiter' + store options
//!         ─► StoreLocation::resolve (session registry) ─► ReferenceTable::load (GET now: a
//!            missing bucket / object, bad credentials, an unreachable endpoint fail here)
//!         ─► registered as a bounded table: streams join it as a lookup table
//!  'reload_interval' ─► start_reloading(every, context clock) ─► ReloadTask kept by the context
//!                       (stopped when the table is replaced or the context dropped)
//! ```
//!
//! Options: `'path'` (required; `s3://bucket/key.csv`, `file:///abs/file.json`,
//! `memory://name/key.parquet`), `'format'` (`csv`, `json`, `parquet`; default from the
//! path's extension), `'header'` (CSV: first line names the columns, default `true`),
//! `'delimiter'` (CSV, one character, default `,`), `'reload_interval'` (e.g. `'60s'`; none by
//! default), `'batch_size'`, and the store options (`'endpoint'`, `'region'`, `'allow_http'`,
//! `'max_retries'`, `'timeout'`). Without declared columns, CSV and JSON columns are inferred
//! from the object; Parquet uses the file's (declared ones must then match).
//!
//! A stream-to-table join reads the table when its query starts, so a reload is seen by
//! queries started after it (see [`super::reference`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{plan_err, Result};
use datafusion_stream::sink::{ConnectorTable, SinkEnv, TableFactory};
use datafusion_stream::source::ConnectorOptions;

use super::{
    ReferenceFormat, ReferenceTable, ReferenceTableOptions, StoreLocation, StoreOptions,
    STORE_OPTION_NAMES,
};

/// Connector names of reference tables.
pub const CONNECTORS: &[&str] = &["object_store", "filesystem"];

const TABLE_OPTIONS: &[&str] = &[
    "path",
    "format",
    "header",
    "delimiter",
    "reload_interval",
    "batch_size",
];

/// Creates reference tables (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReferenceTableFactory;

fn format_from_path(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next()?.to_ascii_lowercase();
    if name.ends_with(".csv") {
        Some("csv")
    } else if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Some("json")
    } else if name.ends_with(".parquet") {
        Some("parquet")
    } else {
        None
    }
}

#[async_trait]
impl TableFactory for ReferenceTableFactory {
    async fn create(
        &self,
        env: &SinkEnv,
        table_name: &str,
        columns: Option<SchemaRef>,
        options: &mut ConnectorOptions,
    ) -> Result<ConnectorTable> {
        let connector = options.connector().to_string();
        let what = format!("table '{table_name}' (connector '{connector}')");
        let Some(path) = options.take("path") else {
            return plan_err!(
                "{what}: option 'path' is required (the object: s3://bucket/key.csv, file:///abs/file.json, memory://name/key.parquet)"
            );
        };
        let format_name = match options.take("format") {
            Some(f) => f,
            None => match format_from_path(&path) {
                Some(f) => f.to_string(),
                None => {
                    return plan_err!(
                        "{what}: option 'format' is required ('csv', 'json' or 'parquet'): the path '{path}' does not tell"
                    )
                }
            },
        };
        let mut format = ReferenceFormat::from_name(&format_name)
            .map_err(|e| e.context(format!("{what}: option 'format'")))?;
        let header = options.take_parsed::<bool>("header")?;
        let delimiter = options.take("delimiter");
        match &mut format {
            ReferenceFormat::Csv {
                header: h,
                delimiter: d,
            } => {
                if let Some(v) = header {
                    *h = v;
                }
                match delimiter.as_deref() {
                    None => {}
                    Some("\\t") | Some("tab") => *d = b'\t',
                    Some(x) if x.len() == 1 => *d = x.as_bytes()[0],
                    Some(x) => {
                        return plan_err!(
                            "{what}: option 'delimiter' = '{x}' must be one character"
                        )
                    }
                }
            }
            _ => {
                if header.is_some() {
                    return plan_err!("{what}: option 'header' applies to 'format' = 'csv' only");
                }
                if delimiter.is_some() {
                    return plan_err!(
                        "{what}: option 'delimiter' applies to 'format' = 'csv' only"
                    );
                }
            }
        }
        let reload_interval = options.take_duration("reload_interval")?;
        if reload_interval.is_some_and(|d| d.is_zero()) {
            return plan_err!("{what}: option 'reload_interval' must be positive");
        }
        let batch_size = options.take_parsed::<usize>("batch_size")?;
        let store_options = StoreOptions::take_from(options)?;
        let valid: Vec<&str> = TABLE_OPTIONS
            .iter()
            .chain(STORE_OPTION_NAMES)
            .copied()
            .collect();
        options.finish(&valid)?;
        let location = StoreLocation::resolve(&env.runtime_env, &path, &store_options)?;
        let mut table_options = ReferenceTableOptions::new(format);
        if let Some(schema) = columns {
            table_options = table_options.with_schema(schema);
        }
        if let Some(n) = batch_size {
            table_options.batch_size = n;
        }
        let table = ReferenceTable::load(location, table_options).await?;
        let background = reload_interval.map(|every| {
            Box::new(table.start_reloading(every, Arc::clone(&env.clock)))
                as Box<dyn std::any::Any + Send + Sync>
        });
        Ok(ConnectorTable {
            provider: Arc::new(table),
            background,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::format_from_path;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(format_from_path("s3://b/ref/x.CSV"), Some("csv"));
        assert_eq!(format_from_path("file:///a/b.jsonl"), Some("json"));
        assert_eq!(format_from_path("memory://m/t.parquet"), Some("parquet"));
        assert_eq!(format_from_path("s3://b/k"), None);
    }
}
