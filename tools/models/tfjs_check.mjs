// Runs a TFJS graph model with the original runtime (@tensorflow/tfjs, pure-JS CPU backend) on a
// raw float32 tensor and writes the first output as raw float32: the reference that
// tfjs_to_onnx.py compares the converted ONNX model with. With OUTPUT_NAME (e.g. `gender_output`
// or `Identity`), that output instead of the first.
//   node tfjs_check.mjs MODEL.json INPUT.f32 N,H,W,C OUTPUT.f32 [OUTPUT_NAME]
import { createRequire } from 'module';
import { readFileSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
const require = createRequire(join(process.cwd(), 'noop.js'));
const tf = require('@tensorflow/tfjs');

const [modelPath, inPath, shapeText, outPath, outputName] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(modelPath, 'utf8'));
const dir = dirname(modelPath);
const buffers = spec.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p))));
const weightData = Buffer.concat(buffers);
const weightSpecs = spec.weightsManifest.flatMap((g) => g.weights);
await tf.setBackend('cpu');
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: spec.modelTopology,
  weightSpecs,
  weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
  signature: spec.signature ?? spec.userDefinedMetadata?.signature,
}));
const raw = readFileSync(inPath);
const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), shapeText.split(',').map(Number));
const y = outputName ? model.execute(x, outputName) : model.execute(x);
const out = Array.isArray(y) ? y[0] : y;
writeFileSync(outPath, Buffer.from((await out.data()).buffer));
