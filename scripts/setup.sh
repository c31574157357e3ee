#!/usr/bin/env bash
# Sets up a fresh checkout: installs the Debian packages in scripts/deps.txt (as root or via
# sudo) and fetches the ONNX Runtime library for this machine (see
# fetch-onnxruntime.sh). The Rust crates come from crates.io through cargo; the models are in
# models/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 2
fi
# System packages for the build (bindgen, nasm) and the tests (RTSP server, time zones).
./.ci/install-deps scripts/deps.txt
./scripts/fetch-onnxruntime.sh
