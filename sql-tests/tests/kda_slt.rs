//! Runs every `.slt` file under `sql-tests/kda/` against a fresh KDA application.
//! `cargo test -p datafusion-stream-sql-tests --test kda_slt [-- FILTER]` runs the files whose path
//! contains FILTER.

use std::path::Path;

use datafusion_stream_sql_tests::{kda::KdaDb, run_slt_dir};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kda");
    if !run_slt_dir(&root, "kda", filter.as_deref(), KdaDb::new).await {
        std::process::exit(1);
    }
}
