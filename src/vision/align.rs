//! Face alignment: a least-squares similarity transform from the five MTCNN landmarks to the
//! standard 112x112 ArcFace template, and a bilinear warp into that crop.
//!
//! MobileFaceNet was trained on crops made this way; the plain square crop (what the Android app
//! that shipped the model did) is kept for comparison in `facegate eval --crop square`.

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use super::bbox::BBox;

/// Side of the embedder's input crop.
pub const CROP_SIDE: u32 = 112;

/// Landmark positions in a 112x112 crop: left eye, right eye, nose, left and right mouth corner.
pub const TEMPLATE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// How a detected face is cut out for the embedder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CropMethod {
    /// Five-point similarity alignment to the standard template (what the model was trained on).
    #[default]
    Aligned,
    /// The detector's box, squared and resized, without alignment.
    Square,
}

impl std::str::FromStr for CropMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aligned" => Ok(CropMethod::Aligned),
            "square" => Ok(CropMethod::Square),
            other => Err(format!("unknown crop method `{other}`: use `aligned` or `square`")),
        }
    }
}

/// A 2-D similarity transform `p' = [[a, -b], [b, a]] p + t` (rotation, uniform scale, shift).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity mapping `from` onto `to` (Umeyama's method without reflection,
    /// which in 2-D has this closed form). `None` when the source points coincide.
    pub fn estimate(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Similarity> {
        let n = from.len().min(to.len());
        if n < 2 {
            return None;
        }
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
            (sx / n as f64, sy / n as f64)
        };
        let (fx, fy) = mean(from);
        let (tx, ty) = mean(to);
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let (sx, sy) = (from[i][0] as f64 - fx, from[i][1] as f64 - fy);
            let (dx, dy) = (to[i][0] as f64 - tx, to[i][1] as f64 - ty);
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if norm < 1e-9 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: (tx - (a * fx - b * fy)) as f32,
            ty: (ty - (b * fx + a * fy)) as f32,
        })
    }

    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [self.a * p[0] - self.b * p[1] + self.tx, self.b * p[0] + self.a * p[1] + self.ty]
    }

    /// The inverse transform (used to sample the source for each output pixel).
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det < 1e-12 {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }
}

/// Warps `image` so the landmarks land on the template; pixels from outside the image are black.
pub fn align_face(image: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Option<RgbImage> {
    let to_crop = Similarity::estimate(landmarks, &TEMPLATE_112)?;
    let to_image = to_crop.inverse()?;
    let mut out = RgbImage::new(CROP_SIDE, CROP_SIDE);
    for v in 0..CROP_SIDE {
        for u in 0..CROP_SIDE {
            let [x, y] = to_image.apply([u as f32, v as f32]);
            out.put_pixel(u, v, sample_bilinear(image, x, y));
        }
    }
    Some(out)
}

/// The detector's box made square, cut out (black outside the image) and resized to 112x112.
pub fn square_crop(image: &RgbImage, bbox: &BBox) -> RgbImage {
    let sq = bbox.squared();
    let side = sq.width().max(1.0);
    let step = side / CROP_SIDE as f32;
    let mut out = RgbImage::new(CROP_SIDE, CROP_SIDE);
    for v in 0..CROP_SIDE {
        for u in 0..CROP_SIDE {
            let x = sq.x1 + (u as f32 + 0.5) * step - 0.5;
            let y = sq.y1 + (v as f32 + 0.5) * step - 0.5;
            out.put_pixel(u, v, sample_bilinear(image, x, y));
        }
    }
    out
}

/// Bilinear sample at pixel-centre coordinates; samples outside the image count as black.
fn sample_bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = (image.width() as i64, image.height() as i64);
    if !(x > -1.0 && y > -1.0 && x < w as f32 && y < h as f32) {
        return Rgb([0, 0, 0]);
    }
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let raw = image.as_raw();
    let mut acc = [0.0f32; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (px, py) = (x0 + dx, y0 + dy);
            if px < 0 || py < 0 || px >= w || py >= h {
                continue;
            }
            let i = ((py * w + px) * 3) as usize;
            let weight = wx * wy;
            for c in 0..3 {
                acc[c] += raw[i + c] as f32 * weight;
            }
        }
    }
    Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_recovers_a_known_similarity() {
        let truth = Similarity { a: 0.8, b: 0.3, tx: 5.0, ty: -7.0 };
        let from = [[10.0, 10.0], [40.0, 12.0], [25.0, 30.0], [12.0, 45.0], [38.0, 44.0]];
        let to = from.map(|p| truth.apply(p));
        let est = Similarity::estimate(&from, &to).unwrap();
        for (got, want) in [(est.a, truth.a), (est.b, truth.b), (est.tx, truth.tx), (est.ty, truth.ty)] {
            assert!((got - want).abs() < 1e-4, "{est:?} vs {truth:?}");
        }
        let back = est.inverse().unwrap().apply(est.apply([3.0, 4.0]));
        assert!((back[0] - 3.0).abs() < 1e-4 && (back[1] - 4.0).abs() < 1e-4);
    }

    #[test]
    fn coincident_points_give_no_transform() {
        assert!(Similarity::estimate(&[[1.0, 1.0]; 5], &TEMPLATE_112).is_none());
    }

    #[test]
    fn aligning_template_points_is_identity_warp() {
        let mut image = RgbImage::new(112, 112);
        for (x, y, p) in image.enumerate_pixels_mut() {
            *p = Rgb([x as u8, y as u8, 7]);
        }
        let out = align_face(&image, &TEMPLATE_112).unwrap();
        assert_eq!(out.get_pixel(50, 60).0, [50, 60, 7]);
    }

    #[test]
    fn rotated_face_is_brought_upright() {
        // Landmarks of the template rotated by 90 degrees about (56, 56): the warp must undo it,
        // so the sampled pixel for crop (38, 51) is the source pixel where the left eye is.
        let rot = |p: [f32; 2]| [112.0 - p[1], p[0]];
        let marks = TEMPLATE_112.map(rot);
        let est = Similarity::estimate(&marks, &TEMPLATE_112).unwrap();
        let mapped = est.apply(marks[0]);
        assert!((mapped[0] - TEMPLATE_112[0][0]).abs() < 1e-3);
        assert!((est.b.abs() - 1.0).abs() < 1e-4 && est.a.abs() < 1e-4);
    }
}
