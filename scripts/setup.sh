#!/usr/bin/env bash
# Sets up a fresh checkout: fetches the ONNX Runtime library for this machine (see
# fetch-onnxruntime.sh). The Rust crates come from crates.io through cargo; the models are in
# models/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 2
fi
./scripts/fetch-onnxruntime.sh
