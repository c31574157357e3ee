#!/bin/bash
# Multi-camera throughput, back to back: `facegate run --duration S` once per config given, and
# for each the run summary's stale share (frames a camera delivered that vision never looked at
# because a newer frame replaced them, over all cameras), decisions, peak RSS, and each thread
# group's CPU seconds read from /proc one second before the end (camera = decoding, vision =
# the workers). CPU per frame is what a board with nothing else running would need.
#   tools/bench-cameras.sh [-d SECONDS] CONFIG.toml...     (e.g. board/bench-8cam.toml)
set -euo pipefail
duration=30
if [[ "${1:-}" == "-d" ]]; then duration=$2; shift 2; fi
bin=${FACEGATE:-target/release/facegate}
out=$(mktemp -d)
for config in "$@"; do
  echo "=== $config $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/time -f "peak RSS %M KiB, user %U s, sys %S s" "$bin" --config "$config" run --duration "$duration" \
    > "$out/run.out" 2> "$out/run.err" &
  sleep "$(echo "$duration - 0.5" | bc)"
  pid=$(pgrep -P $! facegate || true)
  if [[ -n "$pid" ]]; then
    for t in /proc/"$pid"/task/*; do
      read -r line < "$t/stat" || continue
      comm=$(cat "$t/comm"); set -- ${line#*) }; echo "$comm $(( ${12} + ${13} ))"
    done | awk -v tck="$(getconf CLK_TCK)" '{g=$1; sub(/-.*/,"",g); cpu[g]+=$2}
      END {for (g in cpu) printf "  cpu_s[%s]=%.2f", g, cpu[g]/tck; print ""}'
  fi
  wait || { echo "  facegate failed:"; tail -n 5 "$out/run.err"; }
  grep -E "frames processed|decisions:" "$out/run.out" | sed 's/^ */  /' || true
  grep -E "frames captured" "$out/run.out" | awk '{c+=$3; s+=$6}
    END {if (c) printf "  captured %d, dropped as stale %d = %.1f%%\n", c, s, 100*s/c}' || true
  grep "peak RSS" "$out/run.err" | sed 's/^/  /' || true
done
rm -rf "$out"
