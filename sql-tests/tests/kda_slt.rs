//! Runs every `.slt` file under `sql-tests/kda/` against a fresh KDA application.
//! `cargo test -p datafusion-stream-sql-tests --test kda_slt [-- FILTER]` runs the files whose path
//! contains FILTER.

use std::path::{Path, PathBuf};

use datafusion_stream_sql_tests::kda::KdaDb;

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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kda");
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
        let mut runner = sqllogictest::Runner::new(|| async { Ok(KdaDb::new()) });
        match runner.run_file_async(&f).await {
            Ok(()) => {
                println!("test kda::{name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test kda::{name} ... FAILED\n{e}\n");
                failed += 1;
            }
        }
    }
    println!("\nkda slt: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
