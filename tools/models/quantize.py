#!/usr/bin/env python3
"""Static int8 quantisation (QDQ, per-channel weights, MinMax calibration) of facegate's models.

    python quantize.py MODELS_DIR

Writes <name>.int8.onnx beside each fp32 model. Calibration uses only public-domain photos from
registry packages (tests/fixtures/, made by tools/fixtures/make_fixtures.py, plus extra
scikit-image sample images), never the evaluation set, with random augmentation.

Only convolutions and dense layers are quantised; the element-wise ops around them (MobileFaceNet's
PReLU is decomposed into Relu/Abs/Sub/Mul/Add) stay float. MobileFaceNet also keeps its depthwise
convolutions in float. Measured on faces-dev identity faces (int8 vs fp32 embedding cosine):
quantising every op gave mean 0.84 (min 0.57); convolutions only, uint8 activations: 0.984
(min 0.936) and 1.7x faster than fp32 on x86; int8 activations: 0.992 (min 0.968) but no faster.
Dynamic quantisation is not used at all (GUIDE: cosine 0.6-0.8).
"""
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.version_converter
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
from make_parity import load_reference_detector  # noqa: E402
from pipeline import TEMPLATE, similarity  # noqa: E402

RNG = np.random.default_rng(1234)


def calibration_photos():
    # liveness/ photos came later (issue 10); leaving them out keeps the int8 files as committed.
    files = sorted(f for f in (ROOT / "tests" / "fixtures").rglob("*.jpg") if "liveness" not in f.parts)
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def augment(image):
    h, w = image.shape[:2]
    angle, scale = RNG.uniform(-15, 15), RNG.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += RNG.uniform(-0.05, 0.05, 2) * (w, h)
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out.astype(np.float32) * RNG.uniform(0.7, 1.3) + RNG.uniform(-20, 20), 0, 255).astype(np.uint8)
    return out[:, ::-1].copy() if RNG.random() < 0.5 else out


def normalise(x):
    return ((x.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def aligned_crop(image, landmarks):
    m = similarity(landmarks.astype(np.float64), TEMPLATE.astype(np.float64))
    return cv2.warpAffine(image, m, (112, 112), borderValue=0)


class Reader(CalibrationDataReader):
    def __init__(self, name, batches):
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch}


def quantize(src: Path, dst: Path, input_name: str, batches, exclude=(), op_types=("Conv", "MatMul", "Gemm")):
    pre = dst.with_suffix(".pre.onnx")
    model = onnx.load(src)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        # Per-channel DequantizeLinear (its `axis` attribute) needs opset 13; the MTCNN files are opset 12.
        model = onnx.version_converter.convert_version(model, 13)
    upgraded = dst.with_suffix(".opset.onnx")
    onnx.save(model, upgraded)
    quant_pre_process(str(upgraded), str(pre), skip_symbolic_shape=True)
    upgraded.unlink()
    quantize_static(str(pre), str(dst), Reader(input_name, batches), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(exclude),
                    op_types_to_quantize=list(op_types))
    pre.unlink()
    print("wrote", dst)


def main():
    models = Path(sys.argv[1])
    photos = calibration_photos()
    detector = load_reference_detector(Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp"))
    views = [augment(p) for p in photos for _ in range(12)]

    # Embedder: aligned crops of every face found in the augmented views.
    crops = []
    for view in views:
        boxes, points = detector.detect_faces_raw(view)
        for p in np.asarray(points).T:
            crops.append(aligned_crop(view, np.stack([p[:5], p[5:]], axis=1)))
    print(len(crops), "aligned calibration crops")
    emb_batches = [normalise(np.stack(crops[i:i + 8])).transpose(0, 3, 1, 2).copy() for i in range(0, len(crops), 8)]
    mfn = onnx.load(models / "mobilefacenet.onnx")
    depthwise = [n.name for n in mfn.graph.node if n.op_type == "Conv"
                 and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    print(len(depthwise), "depthwise convolutions kept in float")
    quantize(models / "mobilefacenet.onnx", models / "mobilefacenet.int8.onnx", "input", emb_batches, depthwise)

    # P-Net: pyramid levels of the views, in the swapped [1, W, H, 3] layout.
    pnet_batches = []
    for view in views[::3]:
        h, w = view.shape[:2]
        for scale in (0.6, 0.3, 0.15, 0.08):
            small = cv2.resize(view, (max(12, int(w * scale)), max(12, int(h * scale))), interpolation=cv2.INTER_AREA)
            pnet_batches.append(normalise(small).transpose(1, 0, 2)[None].copy())
    quantize(models / "mtcnn_pnet.onnx", models / "mtcnn_pnet.int8.onnx", "input_1", pnet_batches)

    # R-Net and O-Net: jittered crops around faces and random background patches.
    for side, name, input_name in ((24, "mtcnn_rnet", "input_2"), (48, "mtcnn_onet", "input_3")):
        patches = []
        for view in views:
            h, w = view.shape[:2]
            boxes, _ = detector.detect_faces_raw(view)
            regions = [b[:4] for b in boxes] + [None, None]
            for b in regions:
                if b is None:
                    s = RNG.uniform(20, min(h, w) / 2)
                    x, y = RNG.uniform(0, w - s), RNG.uniform(0, h - s)
                    b = (x, y, x + s, y + s)
                x1, y1, x2, y2 = (int(v + RNG.uniform(-0.1, 0.1) * (b[2] - b[0])) for v in b)
                x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
                if x2 - x1 > 4 and y2 - y1 > 4:
                    patch = cv2.resize(view[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA)
                    patches.append(normalise(patch).transpose(1, 0, 2))
        batches = [np.stack(patches[i:i + 32]) for i in range(0, len(patches), 32)]
        quantize(models / f"{name}.onnx", models / f"{name}.int8.onnx", input_name, batches)


if __name__ == "__main__":
    main()
