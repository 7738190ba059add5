//! Runs every `.slt` file under `sql-tests/slt/` against a fresh streaming context.
//! `cargo test -p datafusion-stream-sql-tests --test slt [-- FILTER]` runs the files whose path
//! contains FILTER.

use std::path::{Path, PathBuf};

use datafusion_stream_sql_tests::StreamDb;

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "slt") {
            out.push(p);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for f in files {
        let name = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
        if filter
            .as_ref()
            .is_some_and(|flt| !name.contains(flt.as_str()))
        {
            continue;
        }
        let mut runner = sqllogictest::Runner::new(|| async { Ok(StreamDb::new()) });
        match runner.run_file_async(&f).await {
            Ok(()) => {
                println!("test slt::{name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test slt::{name} ... FAILED\n{e}\n");
                failed += 1;
            }
        }
    }
    println!("\nslt: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
