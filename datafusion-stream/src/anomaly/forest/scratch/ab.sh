#!/usr/bin/env bash
# Compares scratch binaries on the batch path with interleaved repeated runs (this machine's
# run-to-run spread is about ±15 %, so single runs cannot tell variants apart).
#   ab.sh N BIN [BIN...]   e.g. ab.sh 8 /tmp/b-base /tmp/b-variant
# Each BIN is a copy of $CARGO_TARGET_DIR/release/rcf-core-scratch built from one variant.
# Prints, per binary and dimension, the min and median µs/record over N runs
# (BATCH_ONLY=1 RCF_DIMS=1,4 BIN batch 60000 1024).
set -euo pipefail
n=$1
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq "$n"); do
  for b in "$@"; do
    BATCH_ONLY=1 RCF_DIMS=1,4 "$b" batch 60000 1024 | grep '^| *[0-9]' |
      awk -F'|' '{ printf "%s %s\n", $2 + 0, $4 + 0 }' >>"$out/$(basename "$b")"
  done
done
for b in "$@"; do
  for d in 1 4; do
    awk -v d="$d" '$1 == d { print $2 }' "$out/$(basename "$b")" | sort -n |
      awk -v name="$(basename "$b")" -v d="$d" '{ a[NR] = $1 }
        END { printf "%s d=%s min %.2f median %.2f\n", name, d, a[1], a[int((NR + 1) / 2)] }'
  done
done
