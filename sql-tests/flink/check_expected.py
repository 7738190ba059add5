#!/usr/bin/env python3
"""Sanity check of the Flink oracle outputs (stdlib only).

Recomputes TUMBLE(10 s), HOP(slide 5 s, size 15 s) and SESSION(gap 10 s, rows whose ts differ by
<= gap merge) per key from events.csv with plain Python, formats the rows the way flink-oracle
prints them (Python str() of the values, csv module, rows sorted as lists of strings) and compares
them with tumble/hop/session.expected.csv. Also prints the row counts and the sum of cnt per file.
Exit status 1 on any mismatch.

Since no row of events.csv is late, the expected result does not depend on arrival order, which is
what makes this order-free recomputation valid.
"""
import csv
import datetime
import io
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH = datetime.datetime(2024, 1, 1)


def load():
    rows = []
    with open(os.path.join(HERE, "events.csv"), newline="") as f:
        for ts, k, v in csv.reader(f):
            d = datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f")
            ms = (d - EPOCH) // datetime.timedelta(milliseconds=1)
            rows.append((ms, k, float(v)))
    return rows


def ts_str(ms):
    return str(EPOCH + datetime.timedelta(milliseconds=ms))  # same as str() of PyFlink's datetime


def render(groups):
    out = []
    for (start, end, k), vs in groups.items():
        out.append([ts_str(start), ts_str(end), k, str(len(vs)), str(sum(vs)), str(min(vs)),
                    str(max(vs)), str(sum(vs) / len(vs))])
    out.sort()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(out)
    return buf.getvalue()


def tumble(rows, size=10_000):
    g = defaultdict(list)
    for ts, k, v in rows:
        s = ts - ts % size
        g[(s, s + size, k)].append(v)
    return g


def hop(rows, slide=5_000, size=15_000):
    g = defaultdict(list)
    for ts, k, v in rows:
        last = ts - ts % slide
        for s in range(last - size + slide, last + 1, slide):
            g[(s, s + size, k)].append(v)
    return g


def session(rows, gap=10_000):
    per_key = defaultdict(list)
    for ts, k, v in rows:
        per_key[k].append((ts, v))
    g = {}
    for k, evs in per_key.items():
        evs.sort()
        cur = None
        for ts, v in evs:
            if cur is not None and ts - cur[1] <= gap:   # touching windows [ts, ts+gap) merge
                cur[1] = ts
                cur[2].append(v)
            else:
                if cur is not None:
                    g[(cur[0], cur[1] + gap, k)] = cur[2]
                cur = [ts, ts, [v]]
        g[(cur[0], cur[1] + gap, k)] = cur[2]
    return g


def main():
    rows = load()
    ok = True
    for name, fn, mult in (("tumble", tumble, 1), ("hop", hop, 3), ("session", session, 1)):
        path = os.path.join(HERE, f"{name}.expected.csv")
        got = open(path).read()
        want = render(fn(rows))
        nrows = got.count("\n")
        cnt = sum(int(r[3]) for r in csv.reader(io.StringIO(got)))
        same = got == want
        ok &= same and cnt == mult * len(rows)
        print(f"{name}: {nrows} rows, sum(cnt)={cnt} (expect {mult * len(rows)}), "
              f"matches Python recomputation: {same}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
