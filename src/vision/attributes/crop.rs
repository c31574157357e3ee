//! The crops the attribute models see, following the @vladmandic/human library the models come
//! from (`src/face/facemeshutil.ts` `cutAndResize`, `src/face/faceres.ts`, `src/gear/emotion.ts`):
//!
//! 1. The face square: human cuts its BlazeFace box enlarged 1.4x and squared. Relative to the
//!    MTCNN box of the same face that square is `side` times the box width, centred `centre_x`
//!    box widths and `centre_y` box heights from the box centre (measured on faces-dev with
//!    tools/models/attributes_check.py, see models/README.md). It is resampled to
//!    `face_size` x `face_size` (192, the face tensor human hands every face model) with
//!    TensorFlow's `crop_and_resize` (bilinear, corners aligned to the box; outside the frame is
//!    black).
//! 2. Per model: a sub-`region` of that face (human's gear model took rows 0-0.9, columns
//!    0.1-0.9) again with `crop_and_resize`, or the whole face with TensorFlow's legacy
//!    `resize_bilinear` (`alignCorners = false`, no half-pixel centres), as human feeds FaceRes
//!    and the emotion model; then grey
//!    (0.2989 R + 0.5870 G + 0.1140 B), RGB or BGR, and `(v - mean) * scale` on 0..255 values
//!    (one mean, or one per channel for models trained VGG-style).
//!
//! Both resamplings are TensorFlow's exact index arithmetic, so a crop here equals human's crop of
//! the same square up to float rounding.

use image::RgbImage;
use serde::Deserialize;

use crate::vision::bbox::BBox;

/// How an attribute model's face is cut (`attribute_crop` in the model manifest).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeCrop {
    /// Offset of the square's centre from the MTCNN box centre, in box widths.
    pub centre_x: f32,
    /// Offset of the square's centre from the MTCNN box centre, in box heights.
    pub centre_y: f32,
    /// Side of the square in MTCNN box widths (the least variable ratio to human's square).
    pub side: f32,
    /// Side in pixels of the face patch the square is resampled to (human: 192).
    pub face_size: u32,
    /// `[top, left, bottom, right]` of the patch (0-1) the model sees, or the whole patch.
    #[serde(default)]
    pub region: Option<[f32; 4]>,
}

/// The channels of an attribute model's input tensor, in tensor order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One grey channel.
    Gray,
    Rgb,
    /// Red and blue swapped (models trained on OpenCV/Caffe-style images).
    Bgr,
}

impl Channels {
    pub fn count(self) -> usize {
        if self == Channels::Gray { 1 } else { 3 }
    }
}

/// A model's input tensor contract (from the manifest's `input`): NHWC size, channels, and
/// `(v - mean[c]) * scale` on 0..255 values (`mean[c]` in tensor channel order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputContract {
    pub width: usize,
    pub height: usize,
    pub channels: Channels,
    pub mean: [f32; 3],
    pub scale: f32,
}

impl InputContract {
    /// Floats per face: `height * width * channels`.
    pub fn len(&self) -> usize {
        self.width * self.height * self.channels.count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Grey weights of human's `constants.rgb` (MATLAB's rgb2gray).
const GRAY: [f32; 3] = [0.2989, 0.5870, 0.1140];

impl AttributeCrop {
    pub fn validate(&self) -> anyhow::Result<()> {
        let offset_ok = |v: f32| v.is_finite() && v.abs() <= 1.0;
        let region_ok = self
            .region
            .is_none_or(|[t, l, b, r]| [t, l, b, r].iter().all(|v| (0.0..=1.0).contains(v)) && b > t && r > l);
        if !(offset_ok(self.centre_x)
            && offset_ok(self.centre_y)
            && self.side.is_finite()
            && self.side > 0.0
            && self.side <= 10.0
            && (2..=512).contains(&self.face_size)
            && region_ok)
        {
            anyhow::bail!("attribute crop {self:?} is out of range; restore models/manifest.toml from the release");
        }
        Ok(())
    }

    /// The face square `[x1, y1, x2, y2]` in frame pixels (it may reach past the frame's edges).
    /// `None` for a degenerate box.
    pub fn square(&self, bbox: &BBox) -> Option<[f32; 4]> {
        let (w, h) = (bbox.width(), bbox.height());
        let (cx, cy) = ((bbox.x1 + bbox.x2) / 2.0 + self.centre_x * w, (bbox.y1 + bbox.y2) / 2.0 + self.centre_y * h);
        let half = self.side * w / 2.0;
        (w >= 1.0 && h >= 1.0 && cx.is_finite() && cy.is_finite()).then_some([
            cx - half,
            cy - half,
            cx + half,
            cy + half,
        ])
    }
}

/// TensorFlow `crop_and_resize` (bilinear, extrapolation 0) of one box `[y1, x1, y2, x2]`
/// (normalised, TensorFlow's convention: scaled by `size - 1`) of a `w` x `h` x 3 source read
/// through `pixel`, into `out` (`out_h` x `out_w` x 3, HWC).
fn crop_and_resize(
    pixel: impl Fn(usize, usize) -> [f32; 3],
    (w, h): (usize, usize),
    [y1, x1, y2, x2]: [f32; 4],
    (out_w, out_h): (usize, usize),
    out: &mut [f32],
) {
    let axis = |o: usize, len: usize, lo: f32, hi: f32, n: usize| -> Option<(usize, usize, f32)> {
        let last = (len - 1) as f32;
        let at =
            if n > 1 { lo * last + o as f32 * ((hi - lo) * last / (n - 1) as f32) } else { 0.5 * (lo + hi) * last };
        if !(0.0..=last).contains(&at) {
            return None;
        }
        let (i0, i1) = (at.floor(), at.ceil());
        Some((i0 as usize, i1 as usize, at - i0))
    };
    let xs: Vec<_> = (0..out_w).map(|ox| axis(ox, w, x1, x2, out_w)).collect();
    for oy in 0..out_h {
        let row = &mut out[oy * out_w * 3..(oy + 1) * out_w * 3];
        let Some((ya, yb, fy)) = axis(oy, h, y1, y2, out_h) else {
            row.fill(0.0);
            continue;
        };
        for (ox, x) in xs.iter().enumerate() {
            let px = &mut row[ox * 3..ox * 3 + 3];
            let Some((xa, xb, fx)) = *x else {
                px.fill(0.0);
                continue;
            };
            let (tl, tr, bl, br) = (pixel(xa, ya), pixel(xb, ya), pixel(xa, yb), pixel(xb, yb));
            for c in 0..3 {
                let top = tl[c] + (tr[c] - tl[c]) * fx;
                let bottom = bl[c] + (br[c] - bl[c]) * fx;
                px[c] = top + (bottom - top) * fy;
            }
        }
    }
}

/// TensorFlow's legacy `resize_bilinear` (`align_corners = false`, `half_pixel_centers = false`,
/// the TFJS default) of a `size` x `size` x 3 patch into `out` (HWC).
fn resize_bilinear(patch: &[f32], size: usize, (out_w, out_h): (usize, usize), out: &mut [f32]) {
    let axis = |o: usize, n: usize| {
        let at = o as f32 * (size as f32 / n as f32);
        let i0 = at.floor();
        (i0 as usize, (at.ceil() as usize).min(size - 1), at - i0)
    };
    let px = |x: usize, y: usize| {
        let i = (y * size + x) * 3;
        [patch[i], patch[i + 1], patch[i + 2]]
    };
    for oy in 0..out_h {
        let (ya, yb, fy) = axis(oy, out_h);
        for ox in 0..out_w {
            let (xa, xb, fx) = axis(ox, out_w);
            let (tl, tr, bl, br) = (px(xa, ya), px(xb, ya), px(xa, yb), px(xb, yb));
            for c in 0..3 {
                let top = tl[c] + (tr[c] - tl[c]) * fx;
                let bottom = bl[c] + (br[c] - bl[c]) * fx;
                out[(oy * out_w + ox) * 3 + c] = top + (bottom - top) * fy;
            }
        }
    }
}

/// Step 1: the face square resampled to `face_size` x `face_size` RGB (0..255 floats, HWC), as
/// human's `cutAndResize` (which normalises the square by the frame's width and height).
pub fn face_patch(image: &RgbImage, square: [f32; 4], face_size: u32) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let size = face_size as usize;
    let mut out = vec![0.0; size * size * 3];
    if w == 0 || h == 0 {
        return out;
    }
    let [x1, y1, x2, y2] = square;
    let boxed = [y1 / h as f32, x1 / w as f32, y2 / h as f32, x2 / w as f32];
    let pixel = |x: usize, y: usize| {
        let p = image.get_pixel(x as u32, y as u32).0;
        [p[0] as f32, p[1] as f32, p[2] as f32]
    };
    crop_and_resize(pixel, (w, h), boxed, (size, size), &mut out);
    out
}

/// Step 2: one model's input from a face patch, written into `out` (`input.len()` floats, HWC).
pub fn model_input(patch: &[f32], crop: &AttributeCrop, input: &InputContract, out: &mut [f32]) {
    let size = crop.face_size as usize;
    let mut rgb = vec![0.0; input.width * input.height * 3];
    match crop.region {
        Some([top, left, bottom, right]) => {
            let pixel = |x: usize, y: usize| {
                let i = (y * size + x) * 3;
                [patch[i], patch[i + 1], patch[i + 2]]
            };
            crop_and_resize(pixel, (size, size), [top, left, bottom, right], (input.width, input.height), &mut rgb);
        }
        None => resize_bilinear(patch, size, (input.width, input.height), &mut rgb),
    }
    let (mean, scale) = (input.mean, input.scale);
    match input.channels {
        Channels::Gray => {
            for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
                let g = GRAY[0] * p[0] + GRAY[1] * p[1] + GRAY[2] * p[2];
                *o = (g - mean[0]) * scale;
            }
        }
        Channels::Rgb | Channels::Bgr => {
            let swap = input.channels == Channels::Bgr;
            for (o, p) in out.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
                for c in 0..3 {
                    let v = if swap { p[2 - c] } else { p[c] };
                    o[c] = (v - mean[c]) * scale;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: AttributeCrop = AttributeCrop { centre_x: 0.0, centre_y: 0.1, side: 1.5, face_size: 192, region: None };

    fn bbox(x1: f32, y1: f32, w: f32, h: f32) -> BBox {
        BBox { x1, y1, x2: x1 + w, y2: y1 + h, score: 1.0 }
    }

    #[test]
    fn square_follows_the_box_width_and_offsets() {
        // Box 80x100 centred (140, 150): side 1.5 x 80 = 120, centre moved down by 0.1 x 100.
        let s = SPEC.square(&bbox(100.0, 100.0, 80.0, 100.0)).unwrap();
        assert_eq!(s, [80.0, 100.0, 200.0, 220.0]);
        assert!(SPEC.square(&bbox(0.0, 0.0, 0.0, 10.0)).is_none());
        assert!(SPEC.square(&BBox { x1: f32::NAN, ..bbox(0.0, 0.0, 10.0, 10.0) }).is_none());
    }

    #[test]
    fn crop_and_resize_matches_tensorflow_corner_alignment_and_pads_black() {
        // 4x1 ramp 0, 10, 20, 30: the whole width to 7 samples hits every half step.
        let src = [0.0f32, 10.0, 20.0, 30.0];
        let mut out = vec![0.0; 7 * 3];
        crop_and_resize(|x, _| [src[x]; 3], (4, 1), [0.0, 0.0, 1.0, 1.0], (7, 1), &mut out);
        let reds: Vec<f32> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        // A box half outside on the left: samples left of pixel 0 are black.
        crop_and_resize(|x, _| [src[x] + 1.0; 3], (4, 1), [0.0, -1.0, 1.0, 1.0], (7, 1), &mut out);
        let reds: Vec<f32> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(&reds[..3], &[0.0, 0.0, 0.0]);
        assert_eq!(reds[3], 1.0);
    }

    #[test]
    fn resize_bilinear_has_no_half_pixel_shift() {
        // 4x4 patch whose red is the column index: down to 2x2 samples columns 0 and 2.
        let patch: Vec<f32> = (0..16).flat_map(|i| [(i % 4) as f32, 0.0, 0.0]).collect();
        let mut out = vec![0.0; 2 * 2 * 3];
        resize_bilinear(&patch, 4, (2, 2), &mut out);
        assert_eq!((out[0], out[3]), (0.0, 2.0));
    }

    #[test]
    fn model_input_converts_to_grey_and_normalises() {
        let spec = AttributeCrop { face_size: 4, ..SPEC };
        let patch: Vec<f32> = std::iter::repeat_n([255.0, 0.0, 0.0], 16).flatten().collect();
        let gray =
            InputContract { width: 2, height: 2, channels: Channels::Gray, mean: [127.5; 3], scale: 2.0 / 255.0 };
        let mut out = vec![0.0; gray.len()];
        model_input(&patch, &spec, &gray, &mut out);
        assert!((out[0] - ((0.2989 * 255.0 - 127.5) * 2.0 / 255.0)).abs() < 1e-5, "{out:?}");
        let rgb = InputContract { width: 3, height: 3, channels: Channels::Rgb, mean: [0.0; 3], scale: 1.0 / 255.0 };
        let region = AttributeCrop { region: Some([0.0, 0.1, 0.9, 0.9]), ..spec };
        let mut out = vec![0.0; rgb.len()];
        model_input(&patch, &region, &rgb, &mut out);
        assert_eq!(&out[..3], &[1.0, 0.0, 0.0]);
    }

    #[test]
    fn model_input_swaps_to_bgr_and_subtracts_each_channels_mean() {
        let spec = AttributeCrop { face_size: 4, ..SPEC };
        let patch: Vec<f32> = std::iter::repeat_n([200.0, 100.0, 50.0], 16).flatten().collect();
        // HSE FaceRes's contract: BGR minus the ImageNet means (B 103.939, G 116.779, R 123.68).
        let bgr = InputContract {
            width: 2,
            height: 2,
            channels: Channels::Bgr,
            mean: [103.939, 116.779, 123.68],
            scale: 1.0,
        };
        let mut out = vec![0.0; bgr.len()];
        model_input(&patch, &spec, &bgr, &mut out);
        let want = [50.0 - 103.939, 100.0 - 116.779, 200.0 - 123.68];
        for (got, want) in out[..3].iter().zip(want) {
            assert!((got - want).abs() < 1e-4, "{out:?}");
        }
    }

    #[test]
    fn face_patch_is_black_outside_the_frame() {
        let image = RgbImage::from_pixel(50, 50, image::Rgb([200, 100, 50]));
        let patch = face_patch(&image, [-50.0, 0.0, 50.0, 50.0], 8);
        assert_eq!(&patch[..3], &[0.0, 0.0, 0.0]);
        let last = patch.len() - 3;
        assert_eq!(&patch[last..], &[200.0, 100.0, 50.0]);
    }

    #[test]
    fn out_of_range_specs_are_refused() {
        assert!(SPEC.validate().is_ok());
        assert!(AttributeCrop { side: 0.0, ..SPEC }.validate().is_err());
        assert!(AttributeCrop { region: Some([0.5, 0.0, 0.4, 1.0]), ..SPEC }.validate().is_err());
        assert!(AttributeCrop { face_size: 1, ..SPEC }.validate().is_err());
    }
}
