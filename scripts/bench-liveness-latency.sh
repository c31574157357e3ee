#!/usr/bin/env bash
# Door latency (capture of the deciding frame -> relay) with liveness on and off, side by side:
# ROUNDS rounds of `facegate run --duration SECONDS --json` on PROFILE, each round one run with
# `[liveness] mode = "passive"` and one with `mode = "off"` (alternating, so machine load hits
# both alike), then the median over rounds of each run's p50 and p95 latency, the pulses, and the
# vision time per frame.
#   scripts/bench-liveness-latency.sh [ROUNDS=5] [SECONDS=60] [PROFILE=board/bench-latency.toml]
# The 'on' runs use `threshold = $LIVENESS_THRESHOLD` (default 0.0): the models score every face
# of every decided track as at a real door, but every face passes, so both modes pulse the door
# for the same walk-ups and the latencies compare like with like (at 0.915 the walk-up clip's
# pasted photos are refused as prints and the 'on' runs would have few pulses to measure).
# LIVENESS_THRESHOLD=manifest keeps the shipped threshold (e.g. with
# board/bench-liveness-latency.toml, where the live walk-up is granted and the tablet refused).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-60}
profile=${3:-board/bench-latency.toml}
threshold=${LIVENESS_THRESHOLD:-0.0}
bin=${FACEGATE_BIN:-target/release/facegate}
[ -x "$bin" ] || cargo build --release --bin facegate
[ -f "$profile" ] || { echo "FAIL: no profile $profile (give a board/*.toml with a door and a looping replay)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The profile twice, with its own [liveness] table replaced, its store moved to $work and paths
# relative to board/ made absolute.
python3 - "$profile" "$work" "$threshold" <<'PY'
import os, re, sys
profile, work, threshold = sys.argv[1], sys.argv[2], sys.argv[3]
board = os.path.dirname(os.path.abspath(profile))
out, table = [], None
for line in open(profile):
    header = re.match(r"^\s*\[\[?([A-Za-z_.]+)\]\]?\s*(#.*)?$", line)
    if header:
        table = header.group(1)
    if table == "liveness":
        continue
    if table == "store" and re.match(r"^\s*path\s*=", line):
        line = f'path = "{work}/bench.db"\n'
    out.append(re.sub(r'"(\.\./[^"]*)"', lambda m: '"%s"' % os.path.normpath(os.path.join(board, m.group(1))), line))
text = "".join(out)
for mode in ("passive", "off"):
    extra = f"\n[liveness]\nmode = \"{mode}\"\n"
    if mode == "passive" and threshold != "manifest":
        extra += f"threshold = {float(threshold)}\n"
    open(f"{work}/{mode}.toml", "w").write(text + extra)
PY
on_threshold=$threshold
[ "$threshold" = manifest ] && on_threshold="the manifest's"
echo "profile $profile, $rounds rounds x ${seconds} s per mode, liveness 'on' = passive at threshold $on_threshold; $(uptime)"
for i in $(seq "$rounds"); do
  for mode in passive off; do
    rm -f "$work"/bench.db*
    RUST_LOG=${RUST_LOG:-info} "$bin" --config "$work/$mode.toml" run --duration "$seconds" --json 2>"$work/$mode.$i.log" | tail -1 >"$work/$mode.$i.json" \
      || { echo "FAIL: facegate run ($mode, round $i) failed:"; tail -5 "$work/$mode.$i.log"; exit 1; }
    if [ "$mode" = passive ] && ! grep -q "liveness: passive check on" "$work/$mode.$i.log"; then
      echo "FAIL: the 'on' run did not start the liveness check:"; grep -i liveness "$work/$mode.$i.log" | head -3; exit 1
    fi
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=d["latency_ms"]; v=d["inference_ms"]; print("round %s %-7s: %d pulses, latency p50 %.1f ms p95 %.1f ms; vision p50 %.1f p95 %.1f ms/frame; granted %d denied %d" % (sys.argv[2], sys.argv[3], l["count"], l["p50"], l["p95"], v["p50"], v["p95"], d["granted"], d["denied"]))' \
      "$work/$mode.$i.json" "$i" "$mode"
  done
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
res = {}
for mode in ("passive", "off"):
    runs = [json.load(open(f"{work}/{mode}.{i}.json")) for i in range(1, rounds + 1)]
    res[mode] = {k: statistics.median(r["latency_ms"][k] for r in runs) for k in ("p50", "p95")}
    res[mode]["vision"] = statistics.median(r["inference_ms"]["p95"] for r in runs)
    res[mode]["pulses"] = [r["latency_ms"]["count"] for r in runs]
for mode, r in res.items():
    print(f"liveness {mode:7s}: median over {rounds} runs: latency p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms; "
          f"pulses per run {r['pulses']} (median {statistics.median(r['pulses']):g}); vision p95 {r['vision']:.1f} ms per frame")
print(f"p95 growth with liveness on: {res['passive']['p95'] - res['off']['p95']:+.1f} ms (target <= 30 ms)")
PY
uptime
