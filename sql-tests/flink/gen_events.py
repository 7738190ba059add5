#!/usr/bin/env python3
"""Deterministic generator of events.csv for the Flink-vs-datafusion-stream window differential test.

Writes 12,000 rows `ts,k,v` (no header line; Flink's csv format has no header option and would
fail on one) to events.csv next to this script:

  ts  TIMESTAMP(3) text `YYYY-MM-DD HH:MM:SS.mmm`, UTC, min ts = 2024-01-01 00:00:00.000 (first row)
  k   one of k00..k39, never empty
  v   integer-valued DOUBLE written like `17.0`, 0..1000 inclusive (SUMs are exact)

Arrival order is out of order but bounded: for every row, ts > (max ts of all earlier rows) - 4000 ms,
so with `WATERMARK FOR ts AS ts - INTERVAL '5' SECOND` no row is ever late (>= 1 s of slack).
This holds by construction (arrival key = ts + delay with delay in [0, 3999] ms) and is re-checked
at the end.

Per-key activity is bursty (bursts separated by 10.5..38 s of silence for that key), so SESSION
windows with a 10 s gap produce many sessions per key. Special shapes are planted on purpose:
  * single-row bursts (single-row sessions),
  * "bridge" triples A, B, C with B-A < 10 s, C-B < 10 s, C-A > 10 s where B arrives after C,
    so B merges two already-existing session pieces,
  * "exact gap" pairs exactly 10.000 s apart (Flink merges them: windows [ts, ts+gap) that touch
    are merged; see probe/),
  * identical timestamps (same key and across keys),
  * timestamps snapped exactly onto 5 s multiples (tumble/hop window boundaries, e.g. :10.000).

Usage: python3 gen_events.py [--seed N] [--rows N] [--out PATH]   (stdlib only)
"""
import argparse
import datetime
import os
import random

NKEYS = 40
GAP = 10_000          # session gap used by session.sql (ms)
MAX_DELAY = 3_999     # arrival delay bound (ms); rows are never >= 4 s behind the max seen
EPOCH = datetime.datetime(2024, 1, 1)


def key_timeline(rng, kidx, horizon):
    """Events (ts_ms, kidx, tag) of one key up to `horizon`; tag marks planted shapes."""
    out = []
    t = rng.randint(0, 15_000) if kidx else 0  # k00 starts at exactly 0
    while t < horizon:
        r = rng.random()
        if r < 0.12:                       # single-row burst
            out.append((t, kidx, "single"))
            end = t
        elif r < 0.17:                     # bridge triple: A, B, C; B is delayed past C
            j, j2 = rng.randint(0, 500), rng.randint(0, 500)
            a, b, c = t, t + 9_000 + j, t + 12_000 + j2
            out += [(a, kidx, "bridgeA"), (b, kidx, "bridgeB"), (c, kidx, "bridgeC")]
            end = c
        elif r < 0.21:                     # two rows exactly one gap apart
            a, b = t, t + GAP
            out += [(a, kidx, "exactA"), (b, kidx, "exactB")]
            end = b
        else:                              # ordinary burst
            n = 2 + min(int(rng.expovariate(1 / 9)), 40)
            cur = t
            for i in range(n):
                if i:
                    if rng.random() < 0.03:
                        step = 0           # duplicate timestamp within the key
                    else:
                        step = min(int(rng.expovariate(1 / 1_400)) + 1, 9_000)
                    cur += step
                out.append((cur, kidx, "burst"))
            end = cur
        t = end + rng.randint(10_500, 38_000)  # quiet period (> gap: a new session)
    return out


def generate(seed, nrows):
    rng = random.Random(seed)
    horizon = 2_000_000
    ev = []
    for kidx in range(NKEYS):
        ev += key_timeline(rng, kidx, horizon)
    ev.sort(key=lambda e: (e[0], e[1]))
    ev = ev[:nrows]
    assert len(ev) == nrows, "horizon too short"

    # Perturb ordinary rows: identical timestamps across keys, and snapping onto 5 s boundaries.
    rows = []
    prev_ts = None
    for ts, kidx, tag in ev:
        if tag == "burst" and prev_ts is not None:
            if rng.random() < 0.015:
                ts = prev_ts                       # same ts as the previous row (another key)
            else:
                near = round(ts / 5_000) * 5_000
                if abs(ts - near) <= 250 and rng.random() < 0.5:
                    ts = near                      # exactly on a tumble/hop boundary
        rows.append([ts, kidx, tag])
        prev_ts = ts
    base = min(r[0] for r in rows)
    for r in rows:
        r[0] -= base

    # Arrival order: sort by ts + delay (delay in [0, MAX_DELAY]) => bounded disorder.
    keyed = []
    for i, (ts, kidx, tag) in enumerate(rows):
        if tag in ("bridgeA", "bridgeC"):
            d = 0
        elif tag == "bridgeB":
            d = MAX_DELAY                          # arrives after C (C - B <= 3.5 s)
        elif ts == 0:
            d = 0
        elif rng.random() < 0.45:
            d = 0
        else:
            d = rng.randint(1, MAX_DELAY)
        v = rng.randint(0, 1000)
        keyed.append((ts + d, i, ts, kidx, v, tag))
    keyed.sort()
    return [(ts, kidx, v, tag) for _, _, ts, kidx, v, tag in keyed]


def fmt_ts(ms):
    d = EPOCH + datetime.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%d %H:%M:%S") + ".%03d" % (ms % 1000)


def stats(rows):
    """Checks the lateness bound and prints a few statistics about the generated stream."""
    mx = None
    ooo = 0
    prev = None
    for ts, _, _, _ in rows:
        if mx is not None:
            assert ts > mx - 4_000, "row violates the 4 s disorder bound"
        if prev is not None and ts < prev:
            ooo += 1
        prev = ts
        mx = ts if mx is None else max(mx, ts)
    assert rows[0][0] == 0
    n = len(rows)
    span = max(r[0] for r in rows)
    tss = [r[0] for r in rows]
    dup = n - len(set(tss))
    on10 = sum(1 for t in tss if t % 10_000 == 0)
    on5 = sum(1 for t in tss if t % 5_000 == 0)
    # Sessions (Flink semantics: consecutive rows of a key with ts difference <= gap merge),
    # replayed in arrival order to count merges of >= 2 existing pieces by one row.
    per_key = {}
    bridges = 0
    for ts, kidx, _, _ in rows:
        pieces = per_key.setdefault(kidx, [])
        hit = [p for p in pieces if p[0] <= ts + GAP and ts <= p[1] + GAP]
        if len(hit) >= 2:
            bridges += 1
        lo = min([ts] + [p[0] for p in hit])
        hi = max([ts] + [p[1] for p in hit])
        cnt = 1 + sum(p[2] for p in hit)
        per_key[kidx] = [p for p in pieces if p not in hit] + [[lo, hi, cnt]]
    sessions = [p for ps in per_key.values() for p in ps]
    singles = sum(1 for p in sessions if p[2] == 1)
    print(f"rows={n} span_ms={span} mean_step_ms={span / n:.1f} out_of_order={ooo} ({100 * ooo / n:.1f}%)")
    print(f"rows_sharing_a_ts={dup} on_10s_boundary={on10} on_5s_boundary={on5}")
    print(f"sessions={len(sessions)} single_row_sessions={singles} bridging_rows={bridges} "
          f"sessions_per_key~{len(sessions) / NKEYS:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--rows", type=int, default=12_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.csv"))
    a = ap.parse_args()
    rows = generate(a.seed, a.rows)
    with open(a.out, "w", newline="") as f:
        for ts, kidx, v, _ in rows:
            f.write(f"{fmt_ts(ts)},k{kidx:02d},{v}.0\n")
    stats(rows)


if __name__ == "__main__":
    main()
