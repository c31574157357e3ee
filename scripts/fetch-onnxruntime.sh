#!/usr/bin/env bash
# Fetches libonnxruntime.so.1.31.1 from the onnxruntime==1.31.1 wheel on PyPI, checks the wheel's
# and the library's SHA-256, and caches the library in .cache/onnxruntime/<arch>/ (git-ignored;
# ORT_CACHE_DIR replaces .cache/onnxruntime, e.g. in the cross/ build images).
# Idempotent: a cached library with the right checksum is kept.
#
#   scripts/fetch-onnxruntime.sh [--arch x86_64|aarch64]
#
# Prints the library's path on the last line.
set -euo pipefail

VERSION=1.31.1
arch=$(uname -m)
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="${2:?--arch needs x86_64 or aarch64}"; shift 2 ;;
    --arch=*) arch="${1#--arch=}"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "fetch-onnxruntime: unknown argument $1" >&2; exit 2 ;;
  esac
done

case "$arch" in
  x86_64|amd64)
    arch=x86_64
    wheel_sha=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
    lib_sha=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3 ;;
  aarch64|arm64)
    arch=aarch64
    wheel_sha=da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3
    lib_sha=8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467 ;;
  *)
    echo "fetch-onnxruntime: no ONNX Runtime $VERSION wheel for '$arch' (x86_64 and aarch64 exist on PyPI)." >&2
    echo "For 32-bit ARM, build ONNX Runtime from source and set ORT_DYLIB_PATH." >&2
    exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
dest="${ORT_CACHE_DIR:-$root/.cache/onnxruntime}/$arch"
lib="$dest/libonnxruntime.so.$VERSION"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$lib" ] && [ "$(sha "$lib")" = "$lib_sha" ]; then
  echo "ONNX Runtime $VERSION ($arch) already present"
  echo "$lib"
  exit 0
fi

python=${PYTHON:-python3}
if ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "fetch-onnxruntime: needs Python 3 with pip to download the wheel from PyPI." >&2
  echo "On Debian/Ubuntu/Raspberry Pi OS: sudo apt-get install python3-pip" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "downloading onnxruntime==$VERSION for $arch from PyPI"
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
  --platform "manylinux_2_28_$arch" --python-version 3.11 --implementation cp --abi cp311 \
  -d "$work" "onnxruntime==$VERSION"
wheel=$(ls "$work"/onnxruntime-"$VERSION"-*.whl)
if [ "$(sha "$wheel")" != "$wheel_sha" ]; then
  echo "fetch-onnxruntime: $(basename "$wheel") has SHA-256 $(sha "$wheel"), expected $wheel_sha." >&2
  echo "The download is corrupt or PyPI serves a different file: refusing to use it." >&2
  exit 1
fi
# A wheel is a zip; Python reads it, so no unzip tool is needed.
"$python" - "$wheel" "$work" <<PY
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("onnxruntime/capi/libonnxruntime.so.$VERSION", sys.argv[2])
PY
if [ "$(sha "$work/onnxruntime/capi/libonnxruntime.so.$VERSION")" != "$lib_sha" ]; then
  echo "fetch-onnxruntime: the library inside the wheel has an unexpected SHA-256; refusing to use it." >&2
  exit 1
fi
mkdir -p "$dest"
mv "$work/onnxruntime/capi/libonnxruntime.so.$VERSION" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "ONNX Runtime $VERSION ($arch) installed"
echo "$lib"
