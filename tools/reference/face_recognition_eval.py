#!/usr/bin/env python3
"""face_recognition (dlib: HOG detector, ResNet 128-D embedding) on a faces-dev style folder,
with the protocol `facegate eval` uses, so the two can be compared side by side.

    python3 tools/reference/face_recognition_eval.py --data ../shared/eval/faces-dev [--json]

Setup (a virtualenv, e.g. .cache/fr):
    pip install dlib-bin face_recognition_models "setuptools<81"
    pip install --no-deps face_recognition

Protocol, as in src/cli/eval.rs:
  - pairs: accuracy per top folder at face_recognition's own default (distance <= 0.6), the
    largest face of each image; identity_chips/ images get a 50% black border before detection,
    and a chip with no face found is embedded whole (known_face_locations = the whole chip);
    TAR at FAR 1%.
  - open set: identities sorted, every other one (even positions) enrolled from its first photo
    by path, every other photo a probe; FNIR / FPIR at distance 0.6 (no margin: the library has
    none), and FNIR at FPIR 1%.
Images larger than 1024 px on the long side are downscaled first (as degrade.py assumes).
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
from PIL import Image, ImageOps

import face_recognition

MAX_SIDE = 1024
TOLERANCE = 0.6


def load(path, chip):
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    if max(img.size) > MAX_SIDE:
        s = MAX_SIDE / max(img.size)
        img = img.resize((round(img.width * s), round(img.height * s)), Image.BILINEAR, reducing_gap=3)
    if chip:
        w, h = img.size
        bx, by = int(w * 0.5), int(h * 0.5)
        canvas = Image.new("RGB", (w + 2 * bx, h + 2 * by))
        canvas.paste(img, (bx, by))
        img = canvas
    return np.asarray(img)


def embed(root, rel):
    chip = rel.startswith("identity_chips/")
    try:
        arr = load(os.path.join(root, rel), chip)
    except Exception as e:  # unreadable image: counted as lost
        print(f"{rel}: {e}", file=sys.stderr)
        return None
    boxes = face_recognition.face_locations(arr, number_of_times_to_upsample=1, model="hog")
    if not boxes and chip:
        h, w = arr.shape[:2]
        bx, by = w // 4, h // 4  # the chip itself inside the border
        boxes = [(by, w - bx, h - by, bx)]
    if not boxes:
        return None
    largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
    enc = face_recognition.face_encodings(arr, known_face_locations=[largest])
    return enc[0] if enc else None


def tar_at_far(scores, same, far):
    neg = sorted((s for s, y in zip(scores, same) if not y), reverse=True)
    pos = [s for s, y in zip(scores, same) if y]
    if not neg or not pos:
        return None
    allowed = int(far * len(neg))
    t = neg[min(allowed, len(neg) - 1)]
    return sum(s > t for s in pos) / len(pos)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = args.data
    with open(os.path.join(root, "manifest.csv")) as f:
        manifest = list(csv.DictReader(f))
    with open(os.path.join(root, "pairs.csv")) as f:
        pairs = list(csv.DictReader(f))
    needed = sorted({p["path_a"] for p in pairs} | {p["path_b"] for p in pairs}
                    | {r["path"] for r in manifest if r["kind"] == "identity"})
    t0 = time.time()
    emb = {rel: embed(root, rel) for rel in needed}
    report = {"data": root, "tool": "face_recognition (dlib HOG + ResNet)", "tolerance": TOLERANCE,
              "verification": {}, "seconds": round(time.time() - t0, 1)}
    subsets = {}
    for p in pairs:
        a, b = emb.get(p["path_a"]), emb.get(p["path_b"])
        sim = None if a is None or b is None else -float(np.linalg.norm(a - b))
        subsets.setdefault(p["path_a"].split("/")[0], []).append((sim, p["same"] == "1"))
    for name, rows in sorted(subsets.items()):
        scores = [s if s is not None else -1e9 for s, _ in rows]
        same = [y for _, y in rows]
        acc = sum((s >= -TOLERANCE) == y for s, y in zip(scores, same)) / len(rows)
        report["verification"][name] = {
            "pairs": len(rows), "lost_pairs": sum(s is None for s, _ in rows), "accuracy": acc,
            "tar_at_far_1pct": tar_at_far(scores, same, 0.01),
        }
    # Open set.
    ids = {}
    for r in manifest:
        if r["kind"] == "identity":
            ids.setdefault(r["identity"], []).append(r["path"])
    gallery, probes = [], []
    for i, (name, paths) in enumerate(sorted(ids.items())):
        paths.sort()
        mate = None
        if i % 2 == 0 and emb.get(paths[0]) is not None:
            mate = len(gallery)
            gallery.append(emb[paths[0]])
        probes += [(p, mate) for p in (paths[1:] if i % 2 == 0 else paths)]
    g = np.array(gallery)
    rows = []
    for p, mate in probes:
        e = emb.get(p)
        if e is None or len(g) == 0:
            rows.append((mate, None, -1e9))
            continue
        d = np.linalg.norm(g - e, axis=1)
        rows.append((mate, int(np.argmin(d)), -float(d.min())))

    def rates(t):
        mated = [r for r in rows if r[0] is not None]
        non = [r for r in rows if r[0] is None]
        miss = sum(not (r[2] >= t and r[1] == r[0]) for r in mated)
        fp = sum(r[2] >= t for r in non)
        return miss / max(len(mated), 1), fp / max(len(non), 1)

    fnir, fpir = rates(-TOLERANCE)
    cands = sorted({r[2] + 1e-6 for r in rows if r[0] is None} | {-1e9})
    at1 = next((rates(t)[0] for t in cands if rates(t)[1] <= 0.01), None)
    report["open_set"] = {"gallery_people": len(gallery), "mated_probes": sum(r[0] is not None for r in rows),
                          "non_mated_probes": sum(r[0] is None for r in rows), "fnir": fnir, "fpir": fpir,
                          "fnir_at_fpir_1pct": at1}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, v in report["verification"].items():
            print(f"{name}/: accuracy {v['accuracy']*100:.2f}% ({v['pairs']} pairs, {v['lost_pairs']} lost), "
                  f"TAR@FAR1% {v['tar_at_far_1pct']*100:.2f}%")
        o = report["open_set"]
        print(f"open set: FNIR {o['fnir']*100:.2f}% FPIR {o['fpir']*100:.2f}% at distance {TOLERANCE}; "
              f"FNIR at FPIR 1% {o['fnir_at_fpir_1pct']*100:.2f}%")


if __name__ == "__main__":
    main()
