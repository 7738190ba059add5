#!/usr/bin/env bash
# The main job: a continuous windowed query over the built-in demo ticker stream (no AWS, no
# configuration). Ctrl-C stops it. Extra arguments go to `dfstream run`, e.g. --duration 30s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/datafusion-stream/target}"
exec cargo run -q -p dfstream -- run examples/ticker_windows.sql "$@"
