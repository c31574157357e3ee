#!/usr/bin/env python3
"""Static int8 quantisation (QDQ, per-channel weights, uint8 activations, MinMax) of the liveness
model, to test whether an int8 variant keeps its scores (issue 10: ship one only if it does).

    python quantize_liveness.py models/minifasnet_v2.onnx OUT.onnx BOXES.jsonl

BOXES.jsonl: `facegate liveness --json` over calibration photos (tests/fixtures, never the
evaluation set); each face is cut as the manifest says (2.7x, RetinaFace box mapping, 80x80 BGR)
with random jitter of the box and mirrored copies.
"""
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from liveness_study import MTCNN_TO_RETINA, crop  # noqa: E402
from quantize import Reader, quantize  # noqa: E402

RNG = np.random.default_rng(99)


def main():
    src, dst, boxes = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    crops = []
    for line in open(boxes):
        j = json.loads(line)
        bgr = cv2.imread(j["image"])
        if bgr is None:
            continue
        rgb = bgr[:, :, ::-1]
        for f in j["faces"]:
            b = f["bbox"]
            w, h = b["x2"] - b["x1"], b["y2"] - b["y1"]
            for _ in range(8):
                dx, dy, s = RNG.uniform(-0.1, 0.1) * w, RNG.uniform(-0.1, 0.1) * h, RNG.uniform(0.9, 1.1)
                box = (b["x1"] + dx, b["y1"] + dy, b["x1"] + dx + w * s, b["y1"] + dy + h * s)
                c = crop(rgb, box, 2.7, *MTCNN_TO_RETINA, 80)[:, :, ::-1]
                if RNG.random() < 0.5:
                    c = c[:, ::-1]
                crops.append(c.transpose(2, 0, 1).copy())
    print(len(crops), "calibration crops")
    batches = [np.stack(crops[i : i + 16]).astype(np.float32) for i in range(0, len(crops), 16)]
    quantize(src, dst, "input", batches)


if __name__ == "__main__":
    main()
