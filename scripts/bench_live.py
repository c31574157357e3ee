#!/usr/bin/python3
"""Live view cost, side by side in one run (issue 12 target: the live view at >= 5 fps per camera
while the door latency p95 stays within 10 ms of its value with no viewer).

Runs `facegate run` on the demo walk-up clip twice with the same config: once with nobody
watching, once with a viewer reading the MJPEG stream of the camera the whole time. Prints the
frames per second the viewer received and the latency from the deciding frame's capture to the
relay pulse (p50/p95/max, from `facegate run --json`), for both runs.

Usage: scripts/bench_live.py [path/to/facegate] [seconds per run, default 60]
"""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/facegate"))
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
PASSWORD = "bench live password"


def config(work, live_fps):
    fixtures = os.path.join(ROOT, "tests/fixtures")
    path = os.path.join(work, "facegate.toml")
    with open(path, "w") as f:
        f.write(f"""
[service]
enroll_dir = "{fixtures}/faces"
stop_when_cameras_end = false
[store]
path = "{work}/facegate.db"
[detector]
min_face = 40.0
[decide]
window = 5
needed = 3
# Short, so a minute holds enough pulses for a p95.
cooldown_ms = 300
[liveness]
mode = "off"
[[camera]]
name = "entrance"
location = "Main entrance"
door = "front"
source = {{ kind = "replay", path = "{fixtures}/clips/walkup.mjpeg", fps = 15.0, looping = true }}
[[door]]
name = "front"
relay = {{ driver = "dry_run" }}
pulse_ms = 200
[web]
enabled = true
bind = "127.0.0.1:0"
tls = false
live_fps = {live_fps}
""")
    return path


def login(host, port):
    c = http.client.HTTPConnection(host, port, timeout=10)
    body = "name=bench&password=" + PASSWORD.replace(" ", "%20")
    c.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie")
    assert cookie, f"login failed: {r.status}"
    return cookie.split(";")[0]


def watch(host, port, cookie, stop, counts):
    """Reads the MJPEG stream until `stop`, noting the arrival time of each frame."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", "/live/entrance", headers={"Cookie": cookie})
    r = c.getresponse()
    assert r.status == 200, r.status
    buf = b""
    while not stop.is_set():
        try:
            chunk = r.read1(65536)
        except (http.client.HTTPException, OSError):
            break  # the node stopped at the end of the run and closed the stream
        if not chunk:
            break
        buf += chunk
        n = buf.count(b"--frame\r\n")
        if n:
            now = time.monotonic()
            counts.extend([now] * n)
            buf = buf[buf.rfind(b"--frame\r\n") + 9:]
    c.close()


def one_run(viewer, live_fps=10.0):
    work = tempfile.mkdtemp(prefix="facegate-live-")
    cfg = config(work, live_fps)
    subprocess.run([BIN, "--config", cfg, "admin", "add", "bench"], input=PASSWORD + "\n", text=True,
                   check=True, capture_output=True)
    run = subprocess.Popen([BIN, "--config", cfg, "run", "--duration", str(SECONDS), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, RUST_LOG="info"))
    url = {}
    seen = threading.Event()

    def drain():
        for line in run.stderr:
            m = re.search(r"web console: http://([0-9.]+):([0-9]+)", line)
            if m and not seen.is_set():
                url["host"], url["port"] = m.group(1), int(m.group(2))
                seen.set()
        seen.set()

    threading.Thread(target=drain, daemon=True).start()
    frames = []
    stop = threading.Event()
    seen.wait(120)
    assert url, "no console URL printed"
    watcher = None
    if viewer:
        cookie = login(url["host"], url["port"])
        watcher = threading.Thread(target=watch, args=(url["host"], url["port"], cookie, stop, frames), daemon=True)
        watcher.start()
    out, _ = run.communicate(timeout=SECONDS + 120)
    stop.set()
    summary = json.loads(out.strip().splitlines()[-1])
    fps = None
    if len(frames) > 10:
        # Steady state: skip the first 5 s (models loading, first frames).
        start = frames[0] + 5.0
        steady = [t for t in frames if t >= start]
        if len(steady) > 1:
            fps = (len(steady) - 1) / (steady[-1] - steady[0])
    return summary, fps


def main():
    print(f"facegate run on the walk-up clip (15 fps replay, looping), {SECONDS:.0f} s per run")
    rows = []
    for viewer in (False, True):
        summary, fps = one_run(viewer)
        lat = summary["latency_ms"]
        rows.append((viewer, fps, lat))
        print(f"  {'with a viewer' if viewer else 'no viewer':<14} live fps {fps if fps is None else round(fps, 2)!s:>6}  "
              f"latency p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms  max {lat['max']:.1f} ms  ({lat['count']} pulses)")
    (_, _, base), (_, fps, watched) = rows
    delta = watched["p95"] - base["p95"]
    print(f"live view {fps:.2f} fps (target >= 5); door latency p95 {base['p95']:.1f} -> {watched['p95']:.1f} ms "
          f"({delta:+.1f} ms, target within 10 ms)")


if __name__ == "__main__":
    main()
