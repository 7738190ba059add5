//! Runs every `.slt` file under `sql-tests/slt/` against a fresh streaming context.
//! `cargo test -p datafusion-stream-sql-tests --test slt [-- FILTER]` runs the files whose path
//! contains FILTER.

use std::path::Path;

use datafusion_stream_sql_tests::{run_slt_dir, StreamDb};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    if !run_slt_dir(&root, "slt", filter.as_deref(), StreamDb::new).await {
        std::process::exit(1);
    }
}
