#!/usr/bin/env bash
# The main job: a continuous windowed query over the built-in demo ticker stream (no AWS, no
# configuration). Ctrl-C stops it. Extra arguments go to `dfstream run`, e.g. --duration 30s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/datafusion-stream/target}"
# Build the way scripts/test.sh does (the whole workspace, all targets): Cargo unifies features
# per build, so `cargo run -p dfstream` would compile DataFusion a second time.
cargo build -q --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/dfstream" run examples/ticker_windows.sql "$@"
