#!/usr/bin/env bash
# Runs every test of the workspace: formatting check, unit tests, sqllogictest stories,
# the Flink differential tests, connector and CLI tests. This is the README's test command;
# .ci/run calls it. Servers needed by tests (none yet) are started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/.."
# One target directory outside the clone, so later runs (and CI on this machine) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/datafusion-stream/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fmt --all -- --check
cargo test --workspace --no-fail-fast "$@"
