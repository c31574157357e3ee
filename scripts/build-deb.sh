#!/usr/bin/env bash
# Builds the facegate .deb for this machine or for a cross target, with the ONNX Runtime library
# of that architecture inside (docs/ship.md, "Packaging").
#
#   scripts/build-deb.sh [--target aarch64-unknown-linux-gnu] [--no-build] [-- CARGO_DEB_ARGS...]
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). --no-build packages the binary already in
# target/[<triple>/]release/. Prints the .deb's path on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="${2:?--target needs a Rust target triple}"; shift 2 ;;
    --target=*) target="${1#--target=}"; shift ;;
    --no-build) extra+=(--no-build); shift ;;
    --) shift; extra+=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-deb: cargo-deb is not installed; run: cargo install cargo-deb --locked" >&2
  exit 2
fi

case "${target:-$(uname -m)}" in
  x86_64|x86_64-unknown-linux-gnu) arch=x86_64 ;;
  aarch64|aarch64-unknown-linux-gnu) arch=aarch64 ;;
  *)
    echo "build-deb: no ONNX Runtime wheel exists for ${target:-$(uname -m)} (only x86_64 and aarch64);" >&2
    echo "a .deb for it would lack the library. See docs/ship.md, \"32-bit Raspberry Pi OS\"." >&2
    exit 2 ;;
esac

lib=$(./scripts/fetch-onnxruntime.sh --arch "$arch" | tail -n 1)
out_dir="target/${target:+$target/}release"
mkdir -p "$out_dir"
# cargo-deb takes the library from beside the binary (Cargo.toml, [package.metadata.deb]).
cp "$lib" "$out_dir/"

# Stripped: the line tables make the binary twice as big, which counts on an SD card. With MQTT
# over TLS (the packaged config's default); a --no-build binary must have been built with
# `--features mqtt-tls` too.
args=(--strip --features mqtt-tls)
[ -n "$target" ] && args+=(--target "$target")
cargo deb "${args[@]}" "${extra[@]}" | tail -n 1
