//! The crop a presentation-attack model sees: a region `scale` times the face box around its
//! centre, shifted to stay inside the frame, resized (aspect ratio not kept) with bilinear
//! interpolation. This follows MiniFASNet's reference code (`CropImage._get_new_box` and
//! `cv2.resize`), because the weights were trained on exactly those crops.
//!
//! MiniFASNet was trained on RetinaFace boxes; MTCNN's are narrower and taller (median width
//! x0.89, height x1.13 on the same faces), so the box is first mapped to the model's convention
//! (`box_width`, `box_height` factors about the centre) or the context ratio would be wrong.

use image::RgbImage;
use serde::Deserialize;

use crate::vision::bbox::BBox;

/// How a liveness model's input is cut from the frame (`crop` in the model manifest).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropSpec {
    /// Side of the crop region as a multiple of the (mapped) face box.
    pub scale: f32,
    /// Multiplies the MTCNN box width about its centre (box convention of the training detector).
    pub box_width: f32,
    /// Multiplies the MTCNN box height about its centre.
    pub box_height: f32,
    /// Output size in pixels (square).
    pub size: u32,
    /// `true`: channels BGR (OpenCV-trained models); `false`: RGB.
    pub bgr: bool,
    /// `true`: the model also sees the crop mirrored left-right, and the face's score from this
    /// model is the lower of the two (both views must look live). Chosen on spoof-dev: it cut
    /// the attacks MiniFASNetV2 accepted at BPCER <= 5% from 3 to 2 of 46 (models/README.md).
    #[serde(default)]
    pub mirror: bool,
}

impl CropSpec {
    pub fn validate(&self) -> anyhow::Result<()> {
        let ok = |v: f32| v.is_finite() && v > 0.0 && v <= 10.0;
        if !(ok(self.scale) && ok(self.box_width) && ok(self.box_height)) || self.size == 0 || self.size > 512 {
            anyhow::bail!("liveness crop {self:?} is out of range; restore models/manifest.toml from the release");
        }
        Ok(())
    }
}

/// The crop region `[x1, y1, x2, y2]` (inclusive pixels) for a face box, per the reference code.
pub fn region(width: u32, height: u32, bbox: &BBox, spec: &CropSpec) -> Option<[u32; 4]> {
    let (src_w, src_h) = (width as f32, height as f32);
    let (cx, cy) = ((bbox.x1 + bbox.x2) / 2.0, (bbox.y1 + bbox.y2) / 2.0);
    let box_w = bbox.width() * spec.box_width;
    let box_h = bbox.height() * spec.box_height;
    if !(box_w >= 1.0 && box_h >= 1.0 && cx.is_finite() && cy.is_finite()) || width < 2 || height < 2 {
        return None;
    }
    let scale = spec.scale.min((src_h - 1.0) / box_h).min((src_w - 1.0) / box_w);
    let (new_w, new_h) = (box_w * scale, box_h * scale);
    let (mut x1, mut y1) = (cx - new_w / 2.0, cy - new_h / 2.0);
    let (mut x2, mut y2) = (cx + new_w / 2.0, cy + new_h / 2.0);
    if x1 < 0.0 {
        x2 -= x1;
        x1 = 0.0;
    }
    if y1 < 0.0 {
        y2 -= y1;
        y1 = 0.0;
    }
    if x2 > src_w - 1.0 {
        x1 -= x2 - src_w + 1.0;
        x2 = src_w - 1.0;
    }
    if y2 > src_h - 1.0 {
        y1 -= y2 - src_h + 1.0;
        y2 = src_h - 1.0;
    }
    let clamp = |v: f32, max: f32| v.clamp(0.0, max) as u32;
    let r = [clamp(x1, src_w - 1.0), clamp(y1, src_h - 1.0), clamp(x2, src_w - 1.0), clamp(y2, src_h - 1.0)];
    (r[2] > r[0] && r[3] > r[1]).then_some(r)
}

/// Cuts and resizes the model input for one face into `out` (CHW, `3 * size * size` floats,
/// raw 0..255 values in the spec's channel order). `None` when the box is degenerate.
pub fn crop_chw(image: &RgbImage, bbox: &BBox, spec: &CropSpec, out: &mut [f32]) -> Option<()> {
    let [x1, y1, x2, y2] = region(image.width(), image.height(), bbox, spec)?;
    let size = spec.size as usize;
    if out.len() != 3 * size * size {
        return None;
    }
    let (rw, rh) = ((x2 - x1 + 1) as f32, (y2 - y1 + 1) as f32);
    let (sx, sy) = (rw / spec.size as f32, rh / spec.size as f32);
    let plane = size * size;
    // OpenCV INTER_LINEAR: half-pixel centres, edge pixels replicated.
    let axis = |o: usize, s: f32, len: u32, base: u32| {
        let f = ((o as f32 + 0.5) * s - 0.5).max(0.0);
        let i0 = (f.floor() as u32).min(len - 1);
        let i1 = (i0 + 1).min(len - 1);
        (base + i0, base + i1, f - i0 as f32)
    };
    let xs: Vec<_> = (0..size).map(|ox| axis(ox, sx, x2 - x1 + 1, x1)).collect();
    for oy in 0..size {
        let (y0, y1b, fy) = axis(oy, sy, y2 - y1 + 1, y1);
        for (ox, &(x0, x1b, fx)) in xs.iter().enumerate() {
            let p = |x, y| image.get_pixel(x, y).0;
            let (a, b, c, d) = (p(x0, y0), p(x1b, y0), p(x0, y1b), p(x1b, y1b));
            for ch in 0..3 {
                let top = a[ch] as f32 * (1.0 - fx) + b[ch] as f32 * fx;
                let bottom = c[ch] as f32 * (1.0 - fx) + d[ch] as f32 * fx;
                let v = top * (1.0 - fy) + bottom * fy;
                let plane_index = if spec.bgr { 2 - ch } else { ch };
                out[plane_index * plane + oy * size + ox] = v;
            }
        }
    }
    Some(())
}

/// Mirrors a CHW crop left-right into `out` (same layout and size).
pub fn mirror_chw(crop: &[f32], size: usize, out: &mut [f32]) {
    for (src, dst) in crop.chunks_exact(size).zip(out.chunks_exact_mut(size)) {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: CropSpec = CropSpec { scale: 2.7, box_width: 1.0, box_height: 1.0, size: 80, bgr: true, mirror: false };

    fn bbox(x1: f32, y1: f32, w: f32, h: f32) -> BBox {
        BBox { x1, y1, x2: x1 + w, y2: y1 + h, score: 1.0 }
    }

    #[test]
    fn region_is_scaled_about_the_centre_and_shifted_inside_the_frame() {
        // Centre (320, 240), box 100x100 -> 270x270 region.
        let r = region(640, 480, &bbox(270.0, 190.0, 100.0, 100.0), &SPEC).unwrap();
        assert_eq!(r, [185, 105, 455, 375]);
        // Near the left edge: shifted right, same size.
        let r = region(640, 480, &bbox(0.0, 190.0, 100.0, 100.0), &SPEC).unwrap();
        assert_eq!((r[0], r[2]), (0, 270));
        // A box too large for 2.7x: scale shrinks to fit the frame's height.
        let r = region(640, 480, &bbox(220.0, 140.0, 200.0, 200.0), &SPEC).unwrap();
        assert_eq!((r[1], r[3]), (0, 479));
    }

    #[test]
    fn box_mapping_widens_and_shortens_the_box() {
        let spec = CropSpec { box_width: 1.2, box_height: 0.8, scale: 1.0, ..SPEC };
        let r = region(640, 480, &bbox(270.0, 190.0, 100.0, 100.0), &spec).unwrap();
        assert_eq!(r, [260, 200, 380, 280]);
    }

    #[test]
    fn crop_swaps_to_bgr_and_degenerate_boxes_give_none() {
        let image = RgbImage::from_pixel(200, 200, image::Rgb([10, 20, 30]));
        let mut out = vec![0.0; 3 * 80 * 80];
        crop_chw(&image, &bbox(50.0, 50.0, 60.0, 60.0), &SPEC, &mut out).unwrap();
        assert_eq!((out[0], out[6400], out[12800]), (30.0, 20.0, 10.0));
        assert!(crop_chw(&image, &bbox(50.0, 50.0, 0.0, 0.0), &SPEC, &mut out).is_none());
        let nan = BBox { x1: f32::NAN, ..bbox(0.0, 0.0, 10.0, 10.0) };
        assert!(crop_chw(&image, &nan, &SPEC, &mut out).is_none());
    }

    #[test]
    fn mirror_reverses_every_row_of_every_plane() {
        // 2 planes of 2x3 (size 3 rows are the chunks): rows reversed, order of rows kept.
        let crop: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut out = vec![0.0; 12];
        mirror_chw(&crop, 3, &mut out);
        assert_eq!(out, [2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0, 11.0, 10.0, 9.0]);
    }
}
