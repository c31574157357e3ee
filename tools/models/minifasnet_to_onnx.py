#!/usr/bin/env python3
"""Converts the MiniFASNet anti-spoofing checkpoints (minivision-ai/Silent-Face-Anti-Spoofing,
Apache-2.0) to ONNX, and checks the ONNX Runtime output against an independent NumPy forward pass.

    minifasnet_to_onnx.py CHECKPOINT.pth OUT.onnx [IMAGE...]

Why not torch.onnx.export: the PyPI torch wheel for Linux needs multi-GB CUDA wheels just to
import, so this tool reads the legacy (pre-zip) torch checkpoint with a restricted unpickler
(torch_legacy.py: it builds only numpy arrays and an OrderedDict, nothing else) and writes the
graph of src/model_lib/MiniFASNet.py by hand with the `onnx` helpers. The architecture is read
from the checkpoint's tensor names and shapes (keep-channel counts differ per model).

Graph: input `input` [N, 3, 80, 80] BGR raw 0..255 (no normalisation), output `probs` [N, 3]
(softmax; index 1 = real face, 0 and 2 = attack kinds).
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
from torch_legacy import load  # noqa: E402

EPS = 1e-5


class Builder:
    def __init__(self, sd):
        self.sd, self.nodes, self.inits, self.n = sd, [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def node(self, op, inputs, **attrs):
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", **attrs))
        return out

    def bn(self, x, p):
        sd = self.sd
        args = [self.const(f"{p}.{k}", sd[f"{p}.{k}"]) for k in ("weight", "bias", "running_mean", "running_var")]
        return self.node("BatchNormalization", [x] + args, epsilon=EPS)

    def conv(self, x, p, stride=1, prelu=True):
        """Conv_block (conv, BN, PReLU) or Linear_block (no PReLU) under prefix p."""
        w = self.sd[f"{p}.conv.weight"]
        k = w.shape[2]
        groups = w.shape[0] if w.shape[1] == 1 and k > 1 else 1
        pad = 0 if k == 1 or k == 5 else 1
        y = self.node("Conv", [x, self.const(f"{p}.conv.weight", w)], kernel_shape=[k, k], strides=[stride, stride],
                      pads=[pad] * 4, group=groups)
        y = self.bn(y, f"{p}.bn")
        if prelu:
            y = self.node("PRelu", [y, self.const(f"{p}.prelu.weight", self.sd[f"{p}.prelu.weight"].reshape(-1, 1, 1))])
        return y

    def depth_wise(self, x, p, stride, residual):
        y = self.conv(x, f"{p}.conv")
        y = self.conv(y, f"{p}.conv_dw", stride=stride)
        y = self.conv(y, f"{p}.project", prelu=False)
        if f"{p}.se_module.fc1.weight" in self.sd:
            s = self.node("GlobalAveragePool", [y])
            s = self.node("Conv", [s, self.const(f"{p}.se.fc1", self.sd[f"{p}.se_module.fc1.weight"])], kernel_shape=[1, 1])
            s = self.bn(s, f"{p}.se_module.bn1")
            s = self.node("Relu", [s])
            s = self.node("Conv", [s, self.const(f"{p}.se.fc2", self.sd[f"{p}.se_module.fc2.weight"])], kernel_shape=[1, 1])
            s = self.bn(s, f"{p}.se_module.bn2")
            s = self.node("Sigmoid", [s])
            y = self.node("Mul", [y, s])
        return self.node("Add", [x, y]) if residual else y

    def blocks(self, stage):
        n = 0
        while f"{stage}.model.{n}.conv.conv.weight" in self.sd:
            n += 1
        return n


def build(sd, name):
    b = Builder(sd)
    x = b.conv("input", "conv1", stride=2)
    x = b.conv(x, "conv2_dw")
    for down, stage in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        x = b.depth_wise(x, down, stride=2, residual=False)
        for i in range(b.blocks(stage)):
            x = b.depth_wise(x, f"{stage}.model.{i}", stride=1, residual=True)
    x = b.conv(x, "conv_6_sep")
    x = b.conv(x, "conv_6_dw", prelu=False)
    x = b.node("Flatten", [x], axis=1)
    x = b.node("Gemm", [x, b.const("linear.weight", sd["linear.weight"])], transB=1)
    x = b.bn(x, "bn")
    x = b.node("Gemm", [x, b.const("prob.weight", sd["prob.weight"])], transB=1)
    b.nodes.append(helper.make_node("Softmax", [x], ["probs"], axis=1, name="Softmax_out"))
    graph = helper.make_graph(
        b.nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 80, 80])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facegate minifasnet_to_onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---- independent NumPy reference of MiniFASNet.forward (eval mode) ----
def np_conv(x, w, stride, pad, groups):
    n, c, h, wd = x.shape
    o, ci, k, _ = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    og = o // groups
    for g in range(groups):
        xs = x[:, g * ci:(g + 1) * ci]
        for i in range(k):
            for j in range(k):
                patch = xs[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out


def np_bn(x, sd, p):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g, b, m, v = (sd[f"{p}.{k}"].astype(np.float64).reshape(shape) for k in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + EPS) * g + b


def np_block(x, sd, p, stride=1, prelu=True):
    w = sd[f"{p}.conv.weight"].astype(np.float64)
    k = w.shape[2]
    groups = w.shape[0] if w.shape[1] == 1 and k > 1 else 1
    y = np_bn(np_conv(x, w, stride, 0 if k in (1, 5) else 1, groups), sd, f"{p}.bn")
    if prelu:
        a = sd[f"{p}.prelu.weight"].astype(np.float64).reshape(1, -1, 1, 1)
        y = np.where(y > 0, y, a * y)
    return y


def np_forward(sd, x):
    x = np_block(x.astype(np.float64), sd, "conv1", 2)
    x = np_block(x, sd, "conv2_dw")
    for down, stage in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        blocks = [(down, 2, False)]
        i = 0
        while f"{stage}.model.{i}.conv.conv.weight" in sd:
            blocks.append((f"{stage}.model.{i}", 1, True))
            i += 1
        for p, s, res in blocks:
            y = np_block(x, sd, f"{p}.conv")
            y = np_block(y, sd, f"{p}.conv_dw", s)
            y = np_block(y, sd, f"{p}.project", prelu=False)
            if f"{p}.se_module.fc1.weight" in sd:
                z = y.mean(axis=(2, 3), keepdims=True)
                z = np_bn(np_conv(z, sd[f"{p}.se_module.fc1.weight"].astype(np.float64), 1, 0, 1), sd, f"{p}.se_module.bn1")
                z = np.maximum(z, 0)
                z = np_bn(np_conv(z, sd[f"{p}.se_module.fc2.weight"].astype(np.float64), 1, 0, 1), sd, f"{p}.se_module.bn2")
                y = y * (1 / (1 + np.exp(-z)))
            x = x + y if res else y
    x = np_block(x, sd, "conv_6_sep")
    x = np_block(x, sd, "conv_6_dw", prelu=False).reshape(x.shape[0], -1)
    x = np_bn(x @ sd["linear.weight"].T.astype(np.float64), sd, "bn")
    x = x @ sd["prob.weight"].T.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def crops(images):
    """80x80 BGR crops around the image centre (a face-sized box) from real photos, plus noise."""
    import cv2
    out = []
    for path in images:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # BGR, like the reference
        if img is None:
            sys.exit(f"cannot read {path}")
        h, w = img.shape[:2]
        s = min(h, w) // 2
        y0, x0 = (h - s) // 2, (w - s) // 2
        out.append(cv2.resize(img[y0:y0 + s, x0:x0 + s], (80, 80)).transpose(2, 0, 1).astype(np.float32))
    out.append(np.random.default_rng(0).uniform(0, 255, (3, 80, 80)).astype(np.float32))
    return np.stack(out)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ckpt, dst, images = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    sd = load(ckpt)
    model = build(sd, ckpt.stem)
    onnx.save(model, dst)
    import onnxruntime as ort
    x = crops(images)
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(["probs"], {"input": x})[0]
    ref = np_forward(sd, x)
    diff = float(np.abs(got - ref).max())
    print(f"{dst.name}: {len(model.graph.node)} nodes; ONNX vs NumPy reference on {len(x)} crops: max abs diff {diff:.2e}")
    for i, p in enumerate(list(images) + ["noise"]):
        print(f"  {Path(p).name}: real={got[i, 1]:.4f} (reference {ref[i, 1]:.4f})")
    if diff > 1e-4:
        sys.exit("ONNX output differs from the reference: conversion is wrong")


if __name__ == "__main__":
    main()
