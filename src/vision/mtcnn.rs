//! MTCNN face detection: image pyramid, P-Net proposals, R-Net refinement, O-Net boxes and five
//! landmarks.
//!
//! The algorithm follows the original MTCNN code (davidsandberg/facenet `detect_face.py`) step
//! for step, because the weights were trained with it: per-scale NMS 0.5, cross-scale NMS 0.7,
//! squared boxes between stages, R-Net NMS 0.7, O-Net NMS 0.7 by the smaller box. The networks
//! take NHWC tensors with width and height swapped (`[N, W, H, 3]`), so element `[n, x, y, c]`
//! is pixel `(x, y)`; their spatial outputs come back in the same order.

use anyhow::{Result, bail};
use image::RgbImage;
use ndarray::{ArrayD, ArrayView4};
use serde::{Deserialize, Serialize};

use super::bbox::{BBox, Overlap, nms};
use super::models::InputSpec;
use super::regions::RoiParams;
use super::resize::{RgbResizer, area_shrink};
use super::runtime::SingleInputModel;

/// Detection settings (the `[detector]` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorParams {
    /// Smallest face side, in pixels of the (possibly downscaled) image, that the pyramid reaches.
    pub min_face: f32,
    /// Ratio between pyramid levels (0 < factor < 1).
    pub factor: f32,
    /// Face-probability thresholds for P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// Images whose longest side exceeds this are downscaled before detection; results are mapped back.
    pub max_side: u32,
    /// Video only (`facegate run`): windows around the last frames' faces instead of whole frames.
    pub roi: RoiParams,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            min_face: 20.0,
            factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
            max_side: 1280,
            roi: RoiParams::default(),
        }
    }
}

impl DetectorParams {
    /// Checks the values a user can get wrong in a config file.
    pub fn validate(&self) -> Result<()> {
        if self.min_face.is_nan() || self.min_face < 12.0 {
            bail!("detector.min_face must be at least 12 pixels (got {})", self.min_face);
        }
        if !(self.factor > 0.1 && self.factor < 0.95) {
            bail!("detector.factor must be between 0.1 and 0.95 (got {}); 0.709 is usual", self.factor);
        }
        if self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            bail!("detector.thresholds must each be between 0 and 1 (got {:?})", self.thresholds);
        }
        if self.max_side < 48 {
            bail!("detector.max_side must be at least 48 pixels (got {})", self.max_side);
        }
        self.roi.validate()
    }
}

/// A detected face: its box, the O-Net score and five landmarks (left eye, right eye, nose,
/// left mouth corner, right mouth corner) in image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub landmarks: [[f32; 2]; 5],
}

/// Time spent in each stage of one detection, in milliseconds, and the work each stage gave
/// ONNX Runtime: model calls and candidates (input rows; for P-Net, pyramid levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    pub pnet_ms: f64,
    pub rnet_ms: f64,
    pub onet_ms: f64,
    pub pnet_calls: u32,
    pub rnet_calls: u32,
    pub rnet_rows: u32,
    pub onet_calls: u32,
    pub onet_rows: u32,
}

impl StageTimes {
    /// Adds another detection's times and counts (several regions of one frame).
    pub fn add(&mut self, other: &StageTimes) {
        self.pnet_ms += other.pnet_ms;
        self.rnet_ms += other.rnet_ms;
        self.onet_ms += other.onet_ms;
        self.pnet_calls += other.pnet_calls;
        self.rnet_calls += other.rnet_calls;
        self.rnet_rows += other.rnet_rows;
        self.onet_calls += other.onet_calls;
        self.onet_rows += other.onet_rows;
    }
}

/// Candidates are run through R-Net and O-Net in batches of at most this many, so a busy frame
/// cannot allocate without bound.
const MAX_BATCH: usize = 128;

/// The three MTCNN networks and their input conventions.
pub struct Mtcnn {
    pnet: SingleInputModel,
    rnet: SingleInputModel,
    onet: SingleInputModel,
    norm: Normalisation,
    resizer: RgbResizer,
    /// Input tensor storage reused by every call (grown to the largest input seen, never shrunk),
    /// so the hot path does not allocate a tensor per pyramid level or batch.
    input: Vec<f32>,
    /// Scratch for one candidate's padded crop.
    crop: Vec<u8>,
}

/// Input normalisation `(v - mean) * scale`.
#[derive(Debug, Clone, Copy)]
pub struct Normalisation {
    pub mean: f32,
    pub scale: f32,
}

impl From<&InputSpec> for Normalisation {
    fn from(spec: &InputSpec) -> Self {
        Normalisation { mean: spec.mean, scale: spec.scale }
    }
}

/// The scales of the image pyramid for an image whose shorter side is `min_side`.
pub fn pyramid_scales(min_side: u32, params: &DetectorParams) -> Vec<f32> {
    let m = 12.0 / params.min_face;
    let mut min_l = min_side as f32 * m;
    let mut scales = Vec::new();
    let mut scale = m;
    while min_l >= 12.0 {
        scales.push(scale);
        scale *= params.factor;
        min_l *= params.factor;
    }
    scales
}

impl Mtcnn {
    pub fn new(pnet: SingleInputModel, rnet: SingleInputModel, onet: SingleInputModel, norm: Normalisation) -> Mtcnn {
        Mtcnn { pnet, rnet, onet, norm, resizer: RgbResizer::new(), input: Vec::new(), crop: Vec::new() }
    }

    /// Detects faces in an RGB image, best score first.
    pub fn detect(&mut self, image: &RgbImage, params: &DetectorParams) -> Result<(Vec<Detection>, StageTimes)> {
        params.validate()?;
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok((Vec::new(), StageTimes::default()));
        }
        let longest = w.max(h);
        if longest > params.max_side {
            let ratio = params.max_side as f32 / longest as f32;
            let (sw, sh) = (((w as f32 * ratio).round() as u32).max(1), ((h as f32 * ratio).round() as u32).max(1));
            let pixels = area_shrink(image.as_raw(), w as usize, h as usize, sw as usize, sh as usize)?;
            let Some(small) = RgbImage::from_raw(sw, sh, pixels) else {
                bail!("internal: resized buffer has wrong size")
            };
            let (faces, times) = self.detect_unscaled(&small, params)?;
            let back = longest as f32 / params.max_side as f32;
            let faces = faces
                .into_iter()
                .map(|d| Detection {
                    bbox: BBox { score: d.bbox.score, ..d.bbox.scaled(back) },
                    landmarks: d.landmarks.map(|[x, y]| [x * back, y * back]),
                })
                .collect();
            return Ok((faces, times));
        }
        self.detect_unscaled(image, params)
    }

    fn detect_unscaled(&mut self, image: &RgbImage, params: &DetectorParams) -> Result<(Vec<Detection>, StageTimes)> {
        let mut times = StageTimes::default();
        let t0 = std::time::Instant::now();
        let proposals = self.propose(image, params, &mut times)?;
        times.pnet_ms = t0.elapsed().as_secs_f64() * 1e3;
        log::trace!("P-Net proposed {} boxes", proposals.len());
        if proposals.is_empty() {
            return Ok((Vec::new(), times));
        }
        let t1 = std::time::Instant::now();
        let refined = self.refine(image, &proposals, params.thresholds[1], &mut times)?;
        times.rnet_ms = t1.elapsed().as_secs_f64() * 1e3;
        log::trace!("R-Net kept {} boxes", refined.len());
        if refined.is_empty() {
            return Ok((Vec::new(), times));
        }
        let t2 = std::time::Instant::now();
        let faces = self.output(image, &refined, params.thresholds[2], &mut times)?;
        times.onet_ms = t2.elapsed().as_secs_f64() * 1e3;
        Ok((faces, times))
    }

    /// O-Net alone on a box already known to hold one face (a tight face chip, say): its landmarks
    /// and refined box whatever the face score, so the face can be aligned even where the full
    /// cascade finds nothing (a dark, tilted or half-covered chip). `None` for an empty box.
    pub fn landmarks_in(&mut self, image: &RgbImage, bbox: &BBox) -> Result<Option<Detection>> {
        let square = bbox.squared();
        if !(square.width() >= 1.0 && square.height() >= 1.0) {
            return Ok(None);
        }
        let mut times = StageTimes::default();
        Ok(self.output(image, &[square], f32::NEG_INFINITY, &mut times)?.into_iter().next())
    }

    /// Stage 1: P-Net over every pyramid level; returns squared, truncated candidate boxes.
    fn propose(&mut self, image: &RgbImage, params: &DetectorParams, times: &mut StageTimes) -> Result<Vec<BBox>> {
        let (w, h) = image.dimensions();
        let mut all = Vec::new();
        let mut resize_ms = 0.0;
        for scale in pyramid_scales(w.min(h), params) {
            let sw = (w as f32 * scale).ceil() as u32;
            let sh = (h as f32 * scale).ceil() as u32;
            if sw < 12 || sh < 12 {
                continue;
            }
            let tr = std::time::Instant::now();
            let pixels = area_shrink(image.as_raw(), w as usize, h as usize, sw as usize, sh as usize)?;
            resize_ms += tr.elapsed().as_secs_f64() * 1e3;
            let shape = (1, sw as usize, sh as usize, 3);
            let data = reserve(&mut self.input, shape.1 * shape.2 * 3);
            write_swapped(&pixels, sw as usize, sh as usize, self.norm, data);
            let outputs = self.pnet.run(ArrayView4::from_shape(shape, data)?)?;
            times.pnet_calls += 1;
            let boxes = pnet_boxes(&outputs[0], &outputs[1], scale, params.thresholds[0])?;
            let plain: Vec<BBox> = boxes.iter().map(|(b, _)| *b).collect();
            let keep = nms(&plain, 0.5, Overlap::Union);
            all.extend(keep.into_iter().map(|i| boxes[i]));
        }
        log::trace!("pyramid resizing took {resize_ms:.2} ms");
        let all_boxes: Vec<BBox> = all.iter().map(|(b, _)| *b).collect();
        let keep = nms(&all_boxes, 0.7, Overlap::Union);
        Ok(keep.into_iter().map(|i| all[i].0.regress(all[i].1, false).squared().truncated()).collect())
    }

    /// Stage 2: R-Net scores and regresses each candidate.
    fn refine(
        &mut self,
        image: &RgbImage,
        candidates: &[BBox],
        threshold: f32,
        times: &mut StageTimes,
    ) -> Result<Vec<BBox>> {
        let mut passed = Vec::new();
        for chunk in candidates.chunks(MAX_BATCH) {
            let tc = std::time::Instant::now();
            let tensor = crops(&mut self.resizer, &mut self.crop, &mut self.input, self.norm, image, chunk, 24)?;
            let crop_ms = tc.elapsed().as_secs_f64() * 1e3;
            let outputs = self.rnet.run(tensor)?;
            times.rnet_calls += 1;
            times.rnet_rows += chunk.len() as u32;
            log::trace!(
                "R-Net batch {}: crops {crop_ms:.2} ms, total {:.2} ms",
                chunk.len(),
                tc.elapsed().as_secs_f64() * 1e3
            );
            let (reg, prob) = (rows(&outputs[0], 4)?, rows(&outputs[1], 2)?);
            for (i, candidate) in chunk.iter().enumerate() {
                let score = prob[i * 2 + 1];
                if score > threshold {
                    let r = [reg[i * 4], reg[i * 4 + 1], reg[i * 4 + 2], reg[i * 4 + 3]];
                    passed.push((BBox { score, ..*candidate }, r));
                }
            }
        }
        let boxes: Vec<BBox> = passed.iter().map(|(b, _)| *b).collect();
        let keep = nms(&boxes, 0.7, Overlap::Union);
        Ok(keep.into_iter().map(|i| passed[i].0.regress(passed[i].1, true).squared()).collect())
    }

    /// Stage 3: O-Net gives the final score, box and landmarks.
    fn output(
        &mut self,
        image: &RgbImage,
        candidates: &[BBox],
        threshold: f32,
        times: &mut StageTimes,
    ) -> Result<Vec<Detection>> {
        let candidates: Vec<BBox> = candidates.iter().map(BBox::truncated).collect();
        let mut faces = Vec::new();
        for chunk in candidates.chunks(MAX_BATCH) {
            let tensor = crops(&mut self.resizer, &mut self.crop, &mut self.input, self.norm, image, chunk, 48)?;
            let outputs = self.onet.run(tensor)?;
            times.onet_calls += 1;
            times.onet_rows += chunk.len() as u32;
            let (reg, marks, prob) = (rows(&outputs[0], 4)?, rows(&outputs[1], 10)?, rows(&outputs[2], 2)?);
            for (i, candidate) in chunk.iter().enumerate() {
                let score = prob[i * 2 + 1];
                if score <= threshold {
                    continue;
                }
                let b = BBox { score, ..*candidate };
                let bw = b.x2 - b.x1 + 1.0;
                let bh = b.y2 - b.y1 + 1.0;
                let m = &marks[i * 10..i * 10 + 10];
                let landmarks = std::array::from_fn(|k| [bw * m[k] + b.x1 - 1.0, bh * m[k + 5] + b.y1 - 1.0]);
                let r = [reg[i * 4], reg[i * 4 + 1], reg[i * 4 + 2], reg[i * 4 + 3]];
                faces.push(Detection { bbox: b.regress(r, true), landmarks });
            }
        }
        let boxes: Vec<BBox> = faces.iter().map(|f| f.bbox).collect();
        let keep = nms(&boxes, 0.7, Overlap::Min);
        Ok(keep.into_iter().map(|i| faces[i].clone()).collect())
    }
}

/// The first `len` elements of a reused buffer, growing it when needed.
fn reserve(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Cuts each (truncated) box out of the image, zero-padding outside it, resizes it to
/// `side` x `side` and packs the batch as `[N, side, side, 3]` with width and height swapped,
/// into the reused `input` buffer.
fn crops<'a>(
    resizer: &mut RgbResizer,
    scratch: &mut Vec<u8>,
    input: &'a mut Vec<f32>,
    norm: Normalisation,
    image: &RgbImage,
    boxes: &[BBox],
    side: usize,
) -> Result<ArrayView4<'a, f32>> {
    let per_crop = side * side * 3;
    let data = reserve(input, boxes.len() * per_crop);
    for (i, b) in boxes.iter().enumerate() {
        let (cw, ch) = padded_crop_into(image, b, scratch);
        let pixels = if cw >= side && ch >= side {
            area_shrink(scratch, cw, ch, side, side)?
        } else {
            resizer.resize(scratch, cw as u32, ch as u32, side as u32, side as u32)?
        };
        write_swapped(&pixels, side, side, norm, &mut data[i * per_crop..(i + 1) * per_crop]);
    }
    Ok(ArrayView4::from_shape((boxes.len(), side, side, 3), &*data)?)
}

/// Copies the box `(x1-1 ..= x2-1, y1-1 ..= y2-1)` (the original code's 1-based crop) out of the
/// image into `crop` (reused between candidates); pixels outside the image are black. Returns
/// the crop's width and height.
fn padded_crop_into(image: &RgbImage, b: &BBox, crop: &mut Vec<u8>) -> (usize, usize) {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (x0, y0) = (b.x1 as i64 - 1, b.y1 as i64 - 1);
    let cw = ((b.x2 - b.x1) as i64 + 1).clamp(1, 8192);
    let ch = ((b.y2 - b.y1) as i64 + 1).clamp(1, 8192);
    crop.clear();
    crop.resize((cw * ch * 3) as usize, 0);
    let (sx0, sx1) = (x0.max(0), (x0 + cw).min(w));
    let (sy0, sy1) = (y0.max(0), (y0 + ch).min(h));
    if sx0 < sx1 && sy0 < sy1 {
        let row_bytes = ((sx1 - sx0) * 3) as usize;
        let src = image.as_raw();
        let dst_stride = (cw * 3) as usize;
        for y in sy0..sy1 {
            let s = ((y * w + sx0) * 3) as usize;
            let d = (y - y0) as usize * dst_stride + ((sx0 - x0) * 3) as usize;
            crop[d..d + row_bytes].copy_from_slice(&src[s..s + row_bytes]);
        }
    }
    (cw as usize, ch as usize)
}

#[cfg(test)]
fn padded_crop(image: &RgbImage, b: &BBox) -> RgbImage {
    let mut buf = Vec::new();
    let (cw, ch) = padded_crop_into(image, b, &mut buf);
    RgbImage::from_raw(cw as u32, ch as u32, buf).unwrap_or_default()
}

/// Writes packed RGB8 (`width` x `height`, row-major) into a `[width, height, 3]` float slice,
/// normalised: element `(x, y, c)` is pixel `(x, y)` channel `c`.
fn write_swapped(pixels: &[u8], width: usize, height: usize, norm: Normalisation, out: &mut [f32]) {
    for y in 0..height {
        let row = &pixels[y * width * 3..(y + 1) * width * 3];
        for x in 0..width {
            let o = (x * height + y) * 3;
            for c in 0..3 {
                out[o + c] = (row[x * 3 + c] as f32 - norm.mean) * norm.scale;
            }
        }
    }
}

/// Turns the P-Net maps of one pyramid level into boxes in original-image pixels, each with its
/// regression offsets (applied after cross-scale NMS).
fn pnet_boxes(reg: &ArrayD<f32>, prob: &ArrayD<f32>, scale: f32, threshold: f32) -> Result<Vec<(BBox, [f32; 4])>> {
    const STRIDE: f32 = 2.0;
    const CELL: f32 = 12.0;
    let (rs, ps) = (reg.shape(), prob.shape());
    if rs.len() != 4 || ps.len() != 4 || rs[3] != 4 || ps[3] != 2 || rs[1] != ps[1] || rs[2] != ps[2] {
        bail!("P-Net returned unexpected shapes {rs:?} and {ps:?}; the model does not match facegate");
    }
    let mut boxes = Vec::new();
    for x in 0..ps[1] {
        for y in 0..ps[2] {
            let score = prob[[0, x, y, 1]];
            if score < threshold {
                continue;
            }
            let (fx, fy) = (x as f32, y as f32);
            let bbox = BBox {
                x1: ((STRIDE * fx + 1.0) / scale).trunc(),
                y1: ((STRIDE * fy + 1.0) / scale).trunc(),
                x2: ((STRIDE * fx + CELL) / scale).trunc(),
                y2: ((STRIDE * fy + CELL) / scale).trunc(),
                score,
            };
            boxes.push((bbox, [reg[[0, x, y, 0]], reg[[0, x, y, 1]], reg[[0, x, y, 2]], reg[[0, x, y, 3]]]));
        }
    }
    Ok(boxes)
}

/// Flattens a `[N, k]` output into a contiguous slice, checking the row width.
fn rows(output: &ArrayD<f32>, k: usize) -> Result<&[f32]> {
    let shape = output.shape();
    if shape.len() != 2 || shape[1] != k {
        bail!("network returned shape {shape:?}, expected [N, {k}]; the model does not match facegate");
    }
    output.as_slice().ok_or_else(|| anyhow::anyhow!("network output is not contiguous"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_stops_before_faces_smaller_than_a_cell() {
        let p = DetectorParams { min_face: 40.0, ..DetectorParams::default() };
        let scales = pyramid_scales(480, &p);
        assert!((scales[0] - 0.3).abs() < 1e-6);
        assert!(scales.iter().all(|s| 480.0 * s >= 12.0));
        assert!(480.0 * scales.last().unwrap() * p.factor < 12.0);
        assert!(pyramid_scales(10, &p).is_empty());
    }

    #[test]
    fn swapped_layout_puts_x_before_y() {
        // 2x1 image: pixel (0,0) red, pixel (1,0) green.
        let pixels = [255, 0, 0, 0, 255, 0];
        let mut out = [0.0f32; 6];
        write_swapped(&pixels, 2, 1, Normalisation { mean: 0.0, scale: 1.0 }, &mut out);
        assert_eq!(out, [255.0, 0.0, 0.0, 0.0, 255.0, 0.0]);
        let pixels = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]; // 2x2: (0,0)=1 (1,0)=2 (0,1)=3 (1,1)=4
        let mut out = [0.0f32; 12];
        write_swapped(&pixels, 2, 2, Normalisation { mean: 0.0, scale: 1.0 }, &mut out);
        // Order is x-major: (0,0), (0,1), (1,0), (1,1).
        assert_eq!([out[0], out[3], out[6], out[9]], [1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn padded_crop_fills_outside_with_black() {
        let mut image = RgbImage::new(4, 4);
        image.pixels_mut().for_each(|p| *p = image::Rgb([9, 9, 9]));
        // Box (0,0)-(3,3) in 1-based terms starts one pixel left of and above the image.
        let crop = padded_crop(&image, &BBox { x1: 0.0, y1: 0.0, x2: 3.0, y2: 3.0, score: 1.0 });
        assert_eq!(crop.dimensions(), (4, 4));
        assert_eq!(crop.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(crop.get_pixel(1, 1).0, [9, 9, 9]);
        let outside = padded_crop(&image, &BBox { x1: 50.0, y1: 50.0, x2: 60.0, y2: 60.0, score: 1.0 });
        assert!(outside.pixels().all(|p| p.0 == [0, 0, 0]));
    }

    #[test]
    fn params_validation_names_the_key() {
        let bad = DetectorParams { factor: 1.2, ..DetectorParams::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("detector.factor"));
        assert!(DetectorParams::default().validate().is_ok());
    }
}
