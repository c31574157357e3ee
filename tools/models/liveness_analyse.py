#!/usr/bin/env python3
"""Figures from the score CSV of liveness_study.py: per candidate score (single models and fixed
fusions), APCER at BPCER <= 5% on full frames, the same per attack kind, and a leave-one-source-out
check (the threshold chosen without a source, then applied to it), so that a choice which only
works on one source shows up. Not used by the product.

    python tools/models/liveness_analyse.py scores.csv [--expr v2 "min:v2,v2f" ...] [--threshold T] [--detail]
"""

import argparse
import csv
import math


def load(path):
    rows = []
    for r in csv.DictReader(open(path)):
        if r["facegate"] == "noface":
            continue
        rows.append(r)
    return rows


def value(r, expr):
    """`name` | `mean:a,b,c` | `min:a,b` | `gmean:a,b` over real scores; `1-x` via `inv.name`."""

    def one(n):
        if n.startswith("inv."):
            return 1.0 - float(r[n[4:]])
        if n.startswith("expo."):  # leaf score -> real-ish: 1 - score clipped to [0, 1]
            return max(0.0, min(1.0, 1.0 - float(r[n[5:]])))
        return float(r[n])

    if ":" not in expr:
        return one(expr)
    op, names = expr.split(":", 1)
    vals = [one(n) for n in names.split(",")]
    if op == "mean":
        return sum(vals) / len(vals)
    if op == "min":
        return min(vals)
    if op == "gmean":
        return math.exp(sum(math.log(max(v, 1e-6)) for v in vals) / len(vals))
    raise SystemExit(f"unknown op {op}")


def rates(pairs, t):
    att = [s for s, a in pairs if a]
    live = [s for s, a in pairs if not a]
    apcer = sum(s >= t for s in att) / max(1, len(att))
    bpcer = sum(s < t for s in live) / max(1, len(live))
    return apcer, bpcer


def thr_at_bpcer(pairs, target):
    live = sorted(s for s, a in pairs if not a)
    k = int(target * len(live) + 1e-9)
    return live[min(k, len(live) - 1)]


def report(rows, expr, fixed=None):
    full = [(value(r, expr), r["label"] == "spoof") for r in rows if r["crop"] == "0"]
    crops = [(value(r, expr), r["label"] == "spoof") for r in rows if r["crop"] == "1"]
    t = thr_at_bpcer(full, 0.05)
    ap, bp = rates(full, t)
    line = f"{expr:45s} full: APCER {ap*100:5.1f}% @BPCER {bp*100:4.1f}% (t={t:.3f})"
    if fixed is not None:
        fa, fb = rates(full, fixed)
        ca, cb = rates(crops, fixed)
        line += f" | at {fixed}: full APCER {fa*100:5.1f}% BPCER {fb*100:4.1f}%, crops APCER {ca*100:5.1f}% BPCER {cb*100:5.1f}%"
    print(line)
    return t


def per_source(rows, expr, t):
    srcs = sorted({r["source"] for r in rows if r["crop"] == "0"})
    for s in srcs:
        sub = [(value(r, expr), r["label"] == "spoof", r["kind"]) for r in rows if r["crop"] == "0" and r["source"] == s]
        att = [x for x in sub if x[1]]
        live = [x for x in sub if not x[1]]
        acc = sum(x[0] >= t for x in att)
        rej = sum(x[0] < t for x in live)
        print(f"    source {s:55s} attacks accepted {acc}/{len(att)}, live rejected {rej}/{len(live)}")
    for k in ("print", "screen", "other", "live"):
        sub = [(value(r, expr), r["label"] == "spoof") for r in rows if r["kind"] == k]
        if not sub:
            continue
        err = sum((s >= t) if a else (s < t) for s, a in sub)
        print(f"    kind {k:7s} (all images) errors {err}/{len(sub)}")
    # leave one source out: threshold at BPCER 5% of the other sources' live full frames
    tot_acc = tot_att = tot_rej = tot_live = 0
    for s in srcs:
        train = [(value(r, expr), r["label"] == "spoof") for r in rows if r["crop"] == "0" and r["source"] != s]
        test = [(value(r, expr), r["label"] == "spoof") for r in rows if r["crop"] == "0" and r["source"] == s]
        tt = thr_at_bpcer(train, 0.05)
        tot_acc += sum(x >= tt for x, a in test if a)
        tot_att += sum(1 for _, a in test if a)
        tot_rej += sum(x < tt for x, a in test if not a)
        tot_live += sum(1 for _, a in test if not a)
    print(
        f"    leave-one-source-out: APCER {tot_acc}/{tot_att} = {tot_acc/max(1,tot_att)*100:.1f}%, "
        f"BPCER {tot_rej}/{tot_live} = {tot_rej/max(1,tot_live)*100:.1f}%"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--expr", nargs="*", default=None)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--detail", action="store_true")
    a = ap.parse_args()
    rows = load(a.csv)
    cols = [c for c in rows[0].keys() if c not in ("path", "label", "kind", "source", "crop")]
    exprs = a.expr or cols
    for e in exprs:
        t = report(rows, e, a.threshold)
        if a.detail:
            per_source(rows, e, a.threshold if a.threshold is not None else t)


if __name__ == "__main__":
    main()
