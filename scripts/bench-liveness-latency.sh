#!/usr/bin/env bash
# Door latency (capture of the deciding frame -> relay) with liveness on and off, side by side:
# ROUNDS rounds of `facegate run --duration SECONDS --json` on board/bench-liveness-latency.toml,
# alternating `[liveness] mode = "passive"` and `"off"` (so machine load hits both alike), then
# the median over rounds of each run's p50 and p95 latency and of the vision time per frame.
#   scripts/bench-liveness-latency.sh [ROUNDS=5] [SECONDS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-30}
bin=${FACEGATE_BIN:-target/release/facegate}
[ -x "$bin" ] || cargo build --release --bin facegate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
on=board/bench-liveness-latency.toml
off=$work/off.toml
# Same profile with liveness off; relative paths must still resolve from board/.
sed -e 's/^mode = "passive"/mode = "off"/' -e "s#\"\\.\\./#\"$PWD/#g" "$on" >"$off"
grep -q '^mode = "off"' "$off" || { echo "FAIL: could not make the liveness-off profile"; exit 1; }
for i in $(seq "$rounds"); do
  for mode in passive off; do
    cfg=$on
    [ "$mode" = off ] && cfg=$off
    rm -f .demo/bench-liveness-latency.db*
    "$bin" --config "$cfg" run --duration "$seconds" --json 2>/dev/null | tail -1 >"$work/$mode.$i.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); l=d["latency_ms"]; print("round %s %-7s: %d pulses, latency p50 %.1f ms p95 %.1f ms; vision %.1f ms/frame; granted %d denied %d" % (sys.argv[2], sys.argv[3], l["count"], l["p50"], l["p95"], d["inference_ms"]["p50"], d["granted"], d["denied"]))' \
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
    res[mode]["vision"] = statistics.median(r["inference_ms"]["p50"] for r in runs)
    res[mode]["pulses"] = sum(r["latency_ms"]["count"] for r in runs)
for mode, r in res.items():
    print(f"liveness {mode:7s}: median over {rounds} runs: latency p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms "
          f"({r['pulses']} pulses); vision {r['vision']:.1f} ms per frame")
print(f"p95 growth with liveness on: {res['passive']['p95'] - res['off']['p95']:+.1f} ms (target <= 30 ms)")
PY
