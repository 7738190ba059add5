#!/usr/bin/env python3
"""Independent oracle for HOTSPOTS_RESULT (datafusion-stream's anomaly/hotspots.rs semantics).

Plain O(n^2) DBSCAN over the last `window` points straight from the definition, with no grid,
no incremental state and no shared code; used to compute the expected rows of
sql-tests/slt/hotspots.slt and sql-tests/kda/hotspots.slt.

  python3 sql-tests/oracle/hotspots.py WINDOW RADIUS MINPTS [ROWS] < points.csv

reads one point per line (comma-separated numbers) and prints each row's JSON; with ROWS (a
comma-separated list of 0-based row numbers) only those rows' JSON, one per line, in order.

Semantics: window = last WINDOW points including the current one; core = >= MINPTS window
points within Euclidean distance <= RADIUS (itself included); clusters are expanded from core
points in arrival order, a border point joins the first cluster that reaches it; density =
n / prod(max - min + RADIUS); hotspots sorted by density descending, ties in cluster order.
Numbers are printed with repr() (shortest round trip, as Rust's {:?} for these values).
"""
import math
import sys


def hotspots(points, radius, minpts):
    n = len(points)
    near = [[j for j in range(n) if math.dist(points[i], points[j]) <= radius] for i in range(n)]
    core = [len(near[i]) >= minpts for i in range(n)]
    label = [None] * n
    clusters = []
    for i in range(n):
        if not core[i] or label[i] is not None:
            continue
        c = len(clusters)
        members = []
        stack = [i]
        label[i] = c
        while stack:
            p = stack.pop()
            members.append(p)
            if not core[p]:
                continue
            for q in near[p]:
                if label[q] is None:
                    label[q] = c
                    stack.append(q)
        clusters.append(members)
    out = []
    for members in clusters:
        d = len(points[0])
        lo = [min(points[m][k] for m in members) for k in range(d)]
        hi = [max(points[m][k] for m in members) for k in range(d)]
        vol = 1.0
        for k in range(d):
            vol *= hi[k] - lo[k] + radius
        out.append((len(members) / vol, lo, hi))
    out.sort(key=lambda h: -h[0])  # stable: ties keep cluster order
    return out


def render(hs):
    arr = lambda v: "[" + ",".join(repr(float(x)) for x in v) + "]"
    body = ",".join(
        '{"density":%s,"minValues":%s,"maxValues":%s}' % (repr(float(d)), arr(lo), arr(hi))
        for d, lo, hi in hs
    )
    return '{"hotspots":[' + body + "]}"


def main():
    window, radius, minpts = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    only = None
    if len(sys.argv) > 4:
        only = {int(r) for r in sys.argv[4].split(",")}
    seen = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        seen.append([float(x) for x in line.split(",")])
        if only is None or len(seen) - 1 in only:
            print(render(hotspots(seen[-window:], radius, minpts)))


if __name__ == "__main__":
    main()
