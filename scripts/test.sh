#!/usr/bin/env bash
# Runs every test of the workspace: formatting check, unit tests, sqllogictest stories,
# the Flink differential tests, connector and CLI tests. This is the README's test command;
# .ci/run calls it. The local AWS-compatible server the connector tests need is installed here;
# each test starts and stops its own instance on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# One target directory outside the clone, so later runs (and CI on this machine) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/datafusion-stream/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fmt --all -- --check

# Local AWS-compatible server for the connector tests (Kinesis and S3 on one port): moto, from
# PyPI. Each test starts its own instance on 127.0.0.1 and stops it when done.
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
DFSTREAM_MOTO_SERVER="$(command -v moto_server || true)"
export DFSTREAM_MOTO_SERVER

# Local Kinesis server for the Kinesis connector tests (moto's Kinesis does not close split or
# merged shards): kinesalite, from npm, run by node. Each test starts its own on 127.0.0.1.
DFSTREAM_KINESALITE_DIR="${DFSTREAM_KINESALITE_DIR:-$HOME/.cache/datafusion-stream/kinesalite}"
if [ ! -d "$DFSTREAM_KINESALITE_DIR/node_modules/kinesalite" ]; then
  mkdir -p "$DFSTREAM_KINESALITE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$DFSTREAM_KINESALITE_DIR" kinesalite@3.3.3
fi
export DFSTREAM_KINESALITE_DIR

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

# One closing line for the whole run: the sum over every test binary (and the slt runner).
sum() { grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }'; }
passed=$(grep -oE '(test result: [a-zA-Z]+\. |slt: )[0-9]+ passed' "$log" | sum || true)
failed=$(grep -oE '(; |slt: [0-9]+ passed, )[0-9]+ failed' "$log" | grep -oE '[0-9]+ failed' | sum || true)
echo
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
