#!/usr/bin/env bash
# Regenerates events.csv and the Flink oracle outputs (*.expected.csv), including the probes.
# Needs python3 and the flink-oracle tool (Apache Flink 2.3 via PyFlink, java 17). ~3-4 min.
set -euo pipefail
cd "$(dirname "$0")"
FLINK_ORACLE=${FLINK_ORACLE:-/work/shared/tools/flink-oracle/run}

python3 gen_events.py

run() {  # run SCRIPT.sql -> SCRIPT.expected.csv (only replaced when Flink succeeds)
  local sql=$1 out=${1%.sql}.expected.csv
  "$FLINK_ORACLE" "$sql" --parallelism 1 > "$out.tmp"
  mv "$out.tmp" "$out"
}
for w in tumble hop session; do run "$w.sql"; done
run probe/session_probe.sql
run probe/late_probe.sql

python3 check_expected.py
