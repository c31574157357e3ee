#!/usr/bin/env python3
"""Python + numpy + onnxruntime reference of facegate's pipeline, for side-by-side figures. A tool,
not a dependency: facegate never runs it in production.

`bench` runs the same four models facegate uses (models/mtcnn_{p,r,o}net.onnx and
models/mobilefacenet.onnx) with the MTCNN algorithm of davidsandberg/facenet `detect_face.py`
(the one facegate follows), written as fast as plain numpy + OpenCV resizing + onnxruntime
allow: every box operation is vectorised, each stage's candidates go through the network in
one batch, the sessions use onnxruntime's defaults (arena and memory pattern on) pinned to
`--threads` threads, and all faces of a frame are embedded in one call. It prints per-stage
medians, the time spent inside onnxruntime, and the model calls and candidates per stage.

    .cache/venv/bin/python tools/reference/pipeline.py bench [--json] [--runs 30] [--min-face 40] IMAGE...
    .cache/venv/bin/python tools/reference/pipeline.py variants DATA_DIR    # int8 vs fp32 embeddings

`facegate bench --reference .cache/venv/bin/python` writes its 640x480 frames to PNG files and runs
`bench --json` on exactly those frames, back to back with its own runs. Images that are not
640x480 are fitted into a black 640x480 frame first. Set up the venv as
tools/reference/make_parity.py says (onnxruntime==1.31.1, opencv-python-headless, numpy).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
MEAN, SCALE = 127.5, 0.0078125


def session(path, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Timed:
    """An onnxruntime session that counts its calls, the rows it was fed and the time inside run()."""

    def __init__(self, path, threads):
        self.sess = session(path, threads)
        self.input = self.sess.get_inputs()[0].name
        self.outputs = [o.name for o in self.sess.get_outputs()]
        self.reset()

    def reset(self):
        self.calls, self.rows, self.ms = 0, 0, 0.0

    def __call__(self, x, outputs):
        t = time.perf_counter()
        out = self.sess.run(outputs, {self.input: x})
        self.ms += (time.perf_counter() - t) * 1e3
        self.calls += 1
        self.rows += x.shape[0]
        return out


def nms(boxes, threshold, method="union"):
    """Greedy NMS over [N, 5] (x1, y1, x2, y2, score), inclusive-pixel areas; indices kept, best first."""
    if boxes.shape[0] == 0:
        return np.empty(0, np.int64)
    x1, y1, x2, y2, s = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "min":
            ratio = inter / np.minimum(area[i], area[rest])
        else:
            ratio = inter / (area[i] + area[rest] - inter)
        order = rest[ratio <= threshold]
    return np.array(keep, np.int64)


def regress(boxes, reg, pad):
    w = boxes[:, 2] - boxes[:, 0] + pad
    h = boxes[:, 3] - boxes[:, 1] + pad
    out = boxes.copy()
    out[:, 0:4] = boxes[:, 0:4] + reg * np.stack([w, h, w, h], axis=1)
    return out


def squared(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crops(image, boxes, side):
    """Boxes (truncated, 1-based inclusive as in detect_face.py) cut out with black padding, resized
    INTER_AREA to side x side, normalised and packed [N, W, H, 3] (the networks' swapped layout)."""
    h, w = image.shape[:2]
    out = np.empty((boxes.shape[0], side, side, 3), np.uint8)
    for n, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        cw, ch = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        x0, y0 = x1 - 1, y1 - 1
        sx0, sx1, sy0, sy1 = max(x0, 0), min(x0 + cw, w), max(y0, 0), min(y0 + ch, h)
        if x0 >= 0 and y0 >= 0 and sx1 == x0 + cw and sy1 == y0 + ch:
            crop = image[y0:y0 + ch, x0:x0 + cw]
        else:
            crop = np.zeros((ch, cw, 3), np.uint8)
            if sx0 < sx1 and sy0 < sy1:
                crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[n] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return ((out.astype(np.float32) - MEAN) * SCALE).transpose(0, 2, 1, 3)


class Reference:
    def __init__(self, threads=1, min_face=40.0, factor=0.709, thresholds=(0.6, 0.7, 0.7), variant=""):
        suffix = ".int8.onnx" if variant == "int8" else ".onnx"
        m = ROOT / "models"
        self.pnet = Timed(m / f"mtcnn_pnet{suffix}", threads)
        self.rnet = Timed(m / f"mtcnn_rnet{suffix}", threads)
        self.onet = Timed(m / f"mtcnn_onet{suffix}", threads)
        self.embedder = Timed(m / f"mobilefacenet{suffix}", threads)
        self.min_face, self.factor, self.thresholds = min_face, factor, thresholds
        self.stage_ms = {}

    def scales(self, min_side):
        m = 12.0 / self.min_face
        min_l, scale, out = min_side * m, m, []
        while min_l >= 12:
            out.append(scale)
            scale *= self.factor
            min_l *= self.factor
        return out

    def detect(self, image):
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        found = []
        for scale in self.scales(min(w, h)):
            sw, sh = int(np.ceil(w * scale)), int(np.ceil(h * scale))
            if sw < 12 or sh < 12:
                continue
            level = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
            x = ((level.astype(np.float32) - MEAN) * SCALE).transpose(1, 0, 2)[None]
            reg, prob = self.pnet(x, ["conv2d_4", "softmax"])
            xs, ys = np.nonzero(prob[0, :, :, 1] >= self.thresholds[0])
            if xs.size == 0:
                continue
            b = np.stack([np.fix((2.0 * xs + 1) / scale), np.fix((2.0 * ys + 1) / scale),
                          np.fix((2.0 * xs + 12) / scale), np.fix((2.0 * ys + 12) / scale),
                          prob[0, xs, ys, 1]], axis=1)
            r = reg[0, xs, ys, :]
            keep = nms(b, 0.5)
            found.append(np.concatenate([b[keep], r[keep]], axis=1))
        t1 = time.perf_counter()
        self.stage_ms["pnet"] = (t1 - t0) * 1e3
        self.stage_ms["rnet"] = self.stage_ms["onet"] = 0.0
        if not found:
            return np.empty((0, 5)), np.empty((0, 10))
        allb = np.concatenate(found)
        keep = nms(allb[:, :5], 0.7)
        boxes = np.fix(squared(regress(allb[keep, :5], allb[keep, 5:9], 0.0)))
        self.stage_ms["pnet"] = (time.perf_counter() - t0) * 1e3

        t1 = time.perf_counter()
        reg, prob = self.rnet(crops(image, boxes, 24), ["dense_2", "softmax_1"])
        ok = prob[:, 1] > self.thresholds[1]
        boxes, reg = boxes[ok], reg[ok]
        boxes[:, 4] = prob[ok, 1]
        keep = nms(boxes, 0.7)
        boxes = squared(regress(boxes[keep], reg[keep], 1.0))
        self.stage_ms["rnet"] = (time.perf_counter() - t1) * 1e3
        if boxes.shape[0] == 0:
            return np.empty((0, 5)), np.empty((0, 10))

        t2 = time.perf_counter()
        boxes = np.fix(boxes)
        reg, marks, prob = self.onet(crops(image, boxes, 48), ["dense_5", "dense_6", "softmax_2"])
        ok = prob[:, 1] > self.thresholds[2]
        boxes, reg, marks = boxes[ok], reg[ok], marks[ok]
        boxes[:, 4] = prob[ok, 1]
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        points = np.concatenate([bw[:, None] * marks[:, :5] + boxes[:, 0:1] - 1,
                                 bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], axis=1)
        boxes = regress(boxes, reg, 1.0)
        keep = nms(boxes, 0.7, "min")
        self.stage_ms["onet"] = (time.perf_counter() - t2) * 1e3
        return boxes[keep], points[keep]

    def embed(self, image, points):
        t = time.perf_counter()
        chips = [align(image, p) for p in points]
        t1 = time.perf_counter()
        self.stage_ms["align"] = (t1 - t) * 1e3
        self.stage_ms["embed"] = 0.0
        if not chips:
            return np.empty((0, 192), np.float32)
        x = ((np.stack(chips).astype(np.float32) - MEAN) * SCALE).transpose(0, 3, 1, 2).copy()
        out = self.embedder(x, None)[0]
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
        self.stage_ms["embed"] = (time.perf_counter() - t1) * 1e3
        return out


def similarity(src, dst):
    """Least-squares similarity (rotation, scale, shift) taking src points to dst (Umeyama, 2-D)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    t = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return np.array([[a, -b, t[0]], [b, a, t[1]]], np.float64)


def align(image, points):
    landmarks = np.stack([points[:5], points[5:]], axis=1).astype(np.float64)
    return cv2.warpAffine(image, similarity(landmarks, TEMPLATE), (112, 112), borderValue=0)


def frame_640x480(path):
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    if (w, h) == (640, 480):
        return image
    r = min(640 / w, 480 / h)
    small = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


STAGES = ["pnet", "rnet", "onet", "align", "embed"]


def bench_one(ref, path, runs):
    frame = frame_640x480(path)
    samples = {k: [] for k in STAGES + ["total", "ort_detect", "ort_embed"]}
    counts = {}
    faces = 0
    models = (ref.pnet, ref.rnet, ref.onet, ref.embedder)
    for i in range(runs + 3):
        for m in models:
            m.reset()
        t0 = time.perf_counter()
        boxes, points = ref.detect(frame)
        ref.embed(frame, points)
        total = (time.perf_counter() - t0) * 1e3
        faces = boxes.shape[0]
        if i >= 3:
            for k in STAGES:
                samples[k].append(ref.stage_ms[k])
            samples["total"].append(total)
            samples["ort_detect"].append(ref.pnet.ms + ref.rnet.ms + ref.onet.ms)
            samples["ort_embed"].append(ref.embedder.ms)
        counts = {name: {"calls": m.calls, "rows": m.rows}
                  for name, m in zip(("pnet", "rnet", "onet", "embed"), models)}
    med = {f"{k}_ms": float(np.median(v)) for k, v in samples.items()}
    return {"image": str(path), "faces": int(faces), "runs": runs, **med, "counts": counts}


def bench(argv):
    p = argparse.ArgumentParser(prog="pipeline.py bench")
    p.add_argument("images", nargs="+")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--min-face", type=float, default=40.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variant", default="fp32", choices=["fp32", "int8"])
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    ref = Reference(threads=a.threads, min_face=a.min_face, variant=a.variant)
    results = [bench_one(ref, path, max(a.runs, 1)) for path in a.images]
    if a.json:
        print(json.dumps({"reference": "tools/reference/pipeline.py (numpy + onnxruntime "
                          f"{ort.__version__})", "threads": a.threads, "min_face": a.min_face,
                          "frames": results}))
        return
    print(f"python reference (numpy {np.__version__}, onnxruntime {ort.__version__}), {a.threads} thread(s), "
          f"min face {a.min_face:g}, medians of {a.runs} runs, ms")
    print(f"{'image':<28} {'faces':>5} | {'pyr+PNet':>8} {'R-Net':>6} {'O-Net':>6} {'align':>6} {'embed':>6} "
          f"| {'total':>6} | {'ort det':>7} {'ort emb':>7} | calls/rows P R O E")
    for r in results:
        c = r["counts"]
        cr = " ".join(f"{c[k]['calls']}/{c[k]['rows']}" for k in ("pnet", "rnet", "onet", "embed"))
        print(f"{Path(r['image']).name[:28]:<28} {r['faces']:>5} | {r['pnet_ms']:>8.2f} {r['rnet_ms']:>6.2f} "
              f"{r['onet_ms']:>6.2f} {r['align_ms']:>6.2f} {r['embed_ms']:>6.2f} | {r['total_ms']:>6.2f} | "
              f"{r['ort_detect_ms']:>7.2f} {r['ort_embed_ms']:>7.2f} | {cr}")


def variants(data_dir):
    """Cosine similarity between fp32 and int8 embeddings of the same aligned faces."""
    from make_parity import load_reference_detector  # noqa: E402
    tmp = Path(tempfile.mkdtemp())
    detector = load_reference_detector(tmp)
    fp32 = session(ROOT / "models" / "mobilefacenet.onnx")
    int8 = session(ROOT / "models" / "mobilefacenet.int8.onnx")

    def embed(sess, chips):
        x = ((np.stack(chips).astype(np.float32) - MEAN) * SCALE).transpose(0, 3, 1, 2).copy()
        out = sess.run(None, {"input": x})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    cosines = []
    for path in sorted(Path(data_dir, "identity").rglob("*.jpg")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if max(image.shape[:2]) > 1280:
            r = 1280 / max(image.shape[:2])
            image = cv2.resize(image, None, fx=r, fy=r, interpolation=cv2.INTER_AREA)
        _, points = detector.detect_faces_raw(image)
        chips = [align(image, p) for p in np.asarray(points).T]
        if chips:
            a, b = embed(fp32, chips), embed(int8, chips)
            cosines.extend((a * b).sum(axis=1).tolist())
    c = np.array(cosines)
    print(f"int8 vs fp32 MobileFaceNet on {len(c)} aligned faces from {data_dir}/identity: "
          f"cosine mean {c.mean():.4f}, min {c.min():.4f}, 5th percentile {np.percentile(c, 5):.4f}")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("bench", "variants"):
        sys.exit(__doc__)
    bench(sys.argv[2:]) if sys.argv[1] == "bench" else variants(sys.argv[2])
