#!/usr/bin/env python3
"""Scores every candidate liveness model on a spoof-dev-like folder, to choose models and fusion
by measurement (issue 10). Not used by the product.

Input: the JSON lines of `facegate liveness --json IMAGE...` (facegate's own MTCNN boxes, so the
study sees exactly the faces the product sees), and the folder's manifest.csv. Each image is
judged by its largest face, as `facegate eval --spoof` does. Output: a CSV with one row per
image and one column per model ("real" score, higher = live), then the study figures.

    python tools/models/liveness_study.py --boxes boxes.jsonl --manifest DIR/manifest.csv \
        --models models --out scores.csv
"""

import argparse
import csv
import json
import os
import sys

import cv2
import numpy as np
import onnxruntime as ort


def region(w, h, box, scale, bw, bh, square):
    """The crop region (inclusive pixels), as src/vision/liveness/crop.rs computes it."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    box_w, box_h = (box[2] - box[0]) * bw, (box[3] - box[1]) * bh
    if square:
        box_w = box_h = max(box_w, box_h)
    scale = min(scale, (h - 1) / box_h, (w - 1) / box_w)
    nw, nh = box_w * scale, box_h * scale
    x1, y1, x2, y2 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > w - 1:
        x1 -= x2 - w + 1
        x2 = w - 1
    if y2 > h - 1:
        y1 -= y2 - h + 1
        y2 = h - 1
    c = lambda v, m: int(min(max(v, 0), m))
    return c(x1, w - 1), c(y1, h - 1), c(x2, w - 1), c(y2, h - 1)


def crop(rgb, box, scale, bw, bh, size, square=False):
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = region(w, h, box, scale, bw, bh, square)
    patch = rgb[y1 : y2 + 1, x1 : x2 + 1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)


MTCNN_TO_RETINA = (1.124, 0.885)


class TfliteCandidate:
    """The expo FaceAntiSpoofing model run by TensorFlow's TFLite interpreter (study only)."""

    def __init__(self, name, path, prep, post):
        import tensorflow as tf

        self.name = name
        self.it = tf.lite.Interpreter(model_path=path, num_threads=1)
        self.it.allocate_tensors()
        self.prep, self.post = prep, post

    def score(self, rgb, box):
        x = self.prep(rgb, box)[None].astype(np.float32)
        self.it.set_tensor(self.it.get_input_details()[0]["index"], x)
        self.it.invoke()
        outs = {d["name"]: self.it.get_tensor(d["index"]) for d in self.it.get_output_details()}
        pred = [v for k, v in outs.items() if k.endswith("Identity")][0]
        mask = [v for k, v in outs.items() if k.endswith("Identity_1")][0]
        return float(np.sum(np.abs(pred) * mask))


class Candidate:
    def __init__(self, name, path, prep, post):
        self.name = name
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0].name
        self.prep, self.post = prep, post

    def score(self, rgb, box):
        x = self.prep(rgb, box)[None]
        outs = self.sess.run(None, {self.inp: x})
        return float(self.post(outs))


def minifas(scale, flip=False):
    def prep(rgb, box):
        c = crop(rgb, box, scale, *MTCNN_TO_RETINA, 80)
        if flip:
            c = c[:, ::-1]
        return c[:, :, ::-1].transpose(2, 0, 1).copy()  # BGR, CHW, raw 0..255

    return prep, lambda o: o[0][0][1]


def candidates(models, extra):
    out = [
        Candidate("v2", f"{models}/minifasnet_v2.onnx", *minifas(2.7)),
        Candidate("v2f", f"{models}/minifasnet_v2.onnx", *minifas(2.7, True)),
        Candidate("v2s4", f"{models}/minifasnet_v2.onnx", *minifas(4.0)),
    ]
    # MiniFASNetV1SE is not shipped; pass its ONNX file (tools/models/minifasnet_to_onnx.py) to compare.
    v1se = os.environ.get("V1SE_ONNX")
    if v1se:
        out += [
            Candidate("v1se", v1se, *minifas(4.0)),
            Candidate("v1sef", v1se, *minifas(4.0, True)),
            Candidate("v1ses27", v1se, *minifas(2.7)),
        ]
    for path in extra:
        name = os.path.basename(path).split(".")[0]
        if path.endswith("minifasnet_v2.int8.onnx"):
            out.append(Candidate("v2q", path, *minifas(2.7)))
            out.append(Candidate("v2qf", path, *minifas(2.7, True)))
            continue
        if name.startswith("human_antispoof"):
            s = float(os.environ.get("HUMAN_SCALE", "1.0"))
            prep = lambda rgb, box, s=s: crop(rgb, box, s, 1.0, 1.0, 128, square=True) / 255.0
            out.append(Candidate(name, path, prep, lambda o: o[0][0][0]))
        elif name.startswith("human_liveness"):
            s = float(os.environ.get("HUMAN_SCALE", "1.0"))
            prep = lambda rgb, box, s=s: crop(rgb, box, s, 1.0, 1.0, 32, square=True) / 255.0
            idx = int(os.environ.get("LIVENESS_INDEX", "1"))
            out.append(Candidate(name, path, prep, lambda o, i=idx: o[0][0][i]))
        elif path.endswith(".tflite"):
            s = float(os.environ.get("EXPO_SCALE", "1.0"))
            prep = lambda rgb, box, s=s: crop(rgb, box, s, 1.0, 1.0, 256, square=True) / 255.0
            out.append(TfliteCandidate("expo", path, prep, None))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boxes", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--models", default="models")
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = {}
    with open(a.manifest) as f:
        for r in csv.DictReader(f):
            rows[r["path"]] = r
    root = os.path.dirname(os.path.abspath(a.manifest))
    cands = candidates(a.models, a.extra)
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "kind", "source", "crop", "facegate"] + [c.name for c in cands])
        for line in open(a.boxes):
            j = json.loads(line)
            rel = os.path.relpath(j["image"], root)
            r = rows.get(rel, {"label": "live", "kind": "live", "source_repo": "", "note": ""})
            if not j["faces"]:
                w.writerow([rel, r["label"], r["kind"], r["source_repo"], "", "noface"] + [""] * len(cands))
                continue
            face = max(j["faces"], key=lambda x: (x["bbox"]["x2"] - x["bbox"]["x1"]) * (x["bbox"]["y2"] - x["bbox"]["y1"]))
            b = face["bbox"]
            box = (b["x1"], b["y1"], b["x2"], b["y2"])
            bgr = cv2.imread(j["image"], cv2.IMREAD_COLOR)
            if bgr is None:
                print("unreadable", j["image"], file=sys.stderr)
                continue
            rgb = bgr[:, :, ::-1]
            scores = [c.score(rgb, box) for c in cands]
            tight = "tight_crop" in r.get("note", "")
            w.writerow([rel, r["label"], r["kind"], r["source_repo"], int(tight), face["score"]] + [f"{s:.6f}" for s in scores])


if __name__ == "__main__":
    main()
