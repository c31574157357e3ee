//! Face quality from what the pipeline already has: the detector's box, score and five landmarks,
//! and the 112x112 crop the embedder sees. Pure functions, no models.
//!
//! A blurred, tiny, dark or turned-away face gives an embedding that is far from its owner's
//! templates but not reliably far from everybody else's, so such faces are followed but not
//! identified, weigh less when a track's frames are fused, and are refused as enrolment photos.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::mtcnn::Detection;

/// What was measured on one face; `score` sums it up in 0..1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// Face box width in pixels of the frame.
    pub size_px: f32,
    /// Variance of the Laplacian of the crop's centre after contrast normalisation (unit
    /// variance grey), so it measures detail, not brightness: sharp photos give 0.3-0.6, a
    /// blurred or upscaled tiny face under 0.05.
    pub sharpness: f32,
    /// Mean grey level of the face region, 0..255.
    pub brightness: f32,
    /// Standard deviation of the grey level of the face region, 0..255.
    pub contrast: f32,
    /// Head turn from the landmarks: the nose's offset from the eyes' midpoint along the eye line,
    /// in inter-eye distances (0 = frontal, about 0.5 = turned 45 degrees and more).
    pub yaw: f32,
    /// The detector's face probability.
    pub detector: f32,
    /// Product of the per-property ramps in 0..1 (1 = good on every count).
    pub score: f32,
}

/// Where each property starts to count against a face (ramps from `bad` to `good`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityLimits {
    /// Face width in pixels below which a face is too small for an enrolment photo.
    pub enroll_min_px: f32,
    /// Sharpness below which a photo is refused as blurred.
    pub enroll_min_sharpness: f32,
    /// Mean face brightness below which a photo is refused as too dark (0..255).
    pub enroll_min_brightness: f32,
    /// Mean face brightness above which a photo is refused as overexposed (0..255).
    pub enroll_max_brightness: f32,
    /// Largest |yaw| accepted for an enrolment photo.
    pub enroll_max_yaw: f32,
}

impl Default for QualityLimits {
    fn default() -> Self {
        QualityLimits {
            enroll_min_px: 60.0,
            enroll_min_sharpness: 0.06,
            enroll_min_brightness: 45.0,
            enroll_max_brightness: 225.0,
            enroll_max_yaw: 0.45,
        }
    }
}

/// Why a photo is not good enough to enrol, with the fix in the message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    TooSmall,
    Blurred,
    TooDark,
    Overexposed,
    TurnedAway,
}

impl Problem {
    pub fn message(&self, q: &Quality, limits: &QualityLimits) -> String {
        match self {
            Problem::TooSmall => format!(
                "face too small ({:.0} px wide, needs {:.0}): come closer or use a larger photo",
                q.size_px, limits.enroll_min_px
            ),
            Problem::Blurred => format!(
                "face blurred (sharpness {:.3}, needs {:.3}): hold still and focus",
                q.sharpness, limits.enroll_min_sharpness
            ),
            Problem::TooDark => format!(
                "face too dark (brightness {:.0} of 255, needs {:.0}): add light in front of the face",
                q.brightness, limits.enroll_min_brightness
            ),
            Problem::Overexposed => format!(
                "face overexposed (brightness {:.0} of 255, at most {:.0}): avoid direct light or flash",
                q.brightness, limits.enroll_max_brightness
            ),
            Problem::TurnedAway => format!(
                "face turned away (yaw {:.2}, at most {:.2}): look straight at the camera",
                q.yaw, limits.enroll_max_yaw
            ),
        }
    }
}

/// Linear ramp: 0 at or below `bad`, 1 at or above `good`.
fn ramp(x: f32, bad: f32, good: f32) -> f32 {
    if x.is_nan() {
        return 0.0;
    }
    ((x - bad) / (good - bad)).clamp(0.0, 1.0)
}

/// The face region of a 112x112 aligned crop: between the brows and the chin, inside the cheeks
/// (the ArcFace template puts the eyes at y 51 and the mouth at y 92).
const REGION: (u32, u32, u32, u32) = (24, 32, 88, 100);

/// Grey levels (BT.601 luma) of the crop's face region, row-major.
fn grey_region(crop: &RgbImage) -> (Vec<f32>, usize, usize) {
    let (x0, y0, x1, y1) = REGION;
    let (x1, y1) = (x1.min(crop.width()), y1.min(crop.height()));
    let (w, h) = (x1.saturating_sub(x0) as usize, y1.saturating_sub(y0) as usize);
    let mut out = Vec::with_capacity(w * h);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = crop.get_pixel(x, y).0;
            out.push(0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32);
        }
    }
    (out, w, h)
}

/// Variance of the 4-neighbour Laplacian of `grey` (w x h) after scaling it to unit variance.
fn laplacian_variance(grey: &[f32], w: usize, h: usize, std: f32) -> f32 {
    if w < 3 || h < 3 || std < 1e-3 {
        return 0.0;
    }
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = grey[y * w + x];
            let l = grey[y * w + x - 1] + grey[y * w + x + 1] + grey[(y - 1) * w + x] + grey[(y + 1) * w + x] - 4.0 * c;
            let l = (l / std) as f64;
            sum += l;
            sum2 += l * l;
            n += 1;
        }
    }
    let mean = sum / n as f64;
    (sum2 / n as f64 - mean * mean) as f32
}

/// Head turn from the landmarks (see [`Quality::yaw`]).
pub fn yaw(landmarks: &[[f32; 2]; 5]) -> f32 {
    let [le, re, nose, _, _] = *landmarks;
    let (ex, ey) = (re[0] - le[0], re[1] - le[1]);
    let d = (ex * ex + ey * ey).sqrt();
    if d < 1e-3 {
        return f32::INFINITY;
    }
    let mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    ((nose[0] - mid[0]) * ex + (nose[1] - mid[1]) * ey) / (d * d)
}

/// Measures one face: `crop` is the 112x112 crop made from `detection` for the embedder.
pub fn assess(detection: &Detection, crop: &RgbImage) -> Quality {
    let (grey, w, h) = grey_region(crop);
    let n = grey.len().max(1) as f32;
    let brightness = grey.iter().sum::<f32>() / n;
    let contrast = (grey.iter().map(|g| (g - brightness).powi(2)).sum::<f32>() / n).sqrt();
    let sharpness = laplacian_variance(&grey, w, h, contrast);
    let size_px = detection.bbox.width();
    let yaw = yaw(&detection.landmarks);
    let detector = detection.bbox.score;
    let score = ramp(size_px, 24.0, 64.0)
        * ramp(sharpness, 0.01, 0.06)
        * ramp(brightness, 15.0, 45.0)
        * ramp(-brightness, -250.0, -225.0)
        * ramp(contrast, 4.0, 16.0)
        * ramp(-yaw.abs(), -0.7, -0.35)
        * ramp(detector, 0.7, 0.95);
    Quality { size_px, sharpness, brightness, contrast, yaw, detector, score }
}

/// What keeps a photo from being a good enrolment photo (empty: fine).
pub fn enrollment_problems(q: &Quality, limits: &QualityLimits) -> Vec<Problem> {
    let mut out = Vec::new();
    if q.size_px.is_nan() || q.size_px < limits.enroll_min_px {
        out.push(Problem::TooSmall);
    }
    if q.sharpness.is_nan() || q.sharpness < limits.enroll_min_sharpness {
        out.push(Problem::Blurred);
    }
    if q.brightness.is_nan() || q.brightness < limits.enroll_min_brightness {
        out.push(Problem::TooDark);
    } else if q.brightness > limits.enroll_max_brightness {
        out.push(Problem::Overexposed);
    }
    if q.yaw.is_nan() || q.yaw.abs() > limits.enroll_max_yaw {
        out.push(Problem::TurnedAway);
    }
    out
}

/// The quality-weighted mean of unit embeddings, renormalised (`None` when nothing has weight).
pub fn fuse(embeddings: &[(&[f32], f32)]) -> Option<Vec<f32>> {
    let dim = embeddings.first()?.0.len();
    let mut sum = vec![0.0f32; dim];
    for (e, w) in embeddings {
        if e.len() != dim || !w.is_finite() || *w <= 0.0 {
            continue;
        }
        for (s, x) in sum.iter_mut().zip(e.iter()) {
            *s += w * x;
        }
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 1e-6).then(|| sum.iter().map(|x| x / norm).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::align::TEMPLATE_112;
    use crate::vision::bbox::BBox;

    fn detection(width: f32, landmarks: [[f32; 2]; 5], score: f32) -> Detection {
        Detection { bbox: BBox { x1: 0.0, y1: 0.0, x2: width, y2: width * 1.2, score }, landmarks }
    }

    /// A face-like test card: a checkerboard of `cell` px in mid grey +- `amp` around `level`.
    fn card(level: f32, amp: f32, cell: u32) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, y| {
            let on = ((x / cell) + (y / cell)).is_multiple_of(2);
            let v = (level + if on { amp } else { -amp }).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        })
    }

    fn box_blur(image: &RgbImage, radius: i32) -> RgbImage {
        RgbImage::from_fn(image.width(), image.height(), |x, y| {
            let (mut s, mut n) = (0u32, 0u32);
            for dy in -radius..=radius {
                for dx in -radius..=radius {
                    let (xx, yy) = (x as i32 + dx, y as i32 + dy);
                    if xx >= 0 && yy >= 0 && (xx as u32) < image.width() && (yy as u32) < image.height() {
                        s += image.get_pixel(xx as u32, yy as u32).0[0] as u32;
                        n += 1;
                    }
                }
            }
            let v = (s / n) as u8;
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn a_good_frontal_face_passes_and_scores_high() {
        let q = assess(&detection(120.0, TEMPLATE_112, 0.99), &card(128.0, 50.0, 3));
        assert!(enrollment_problems(&q, &QualityLimits::default()).is_empty(), "{q:?}");
        assert!(q.score > 0.9, "{q:?}");
        assert!(q.yaw.abs() < 0.05, "the template is frontal: {q:?}");
    }

    #[test]
    fn blur_lowers_sharpness_but_darkness_alone_does_not() {
        let sharp = assess(&detection(120.0, TEMPLATE_112, 0.99), &card(128.0, 50.0, 3));
        // What a strongly blurred face looks like: only slow changes of brightness left.
        let soft = RgbImage::from_fn(112, 112, |x, y| {
            let v = 128.0 + 40.0 * ((x as f32 / 18.0).sin() + (y as f32 / 23.0).cos()) / 2.0;
            image::Rgb([v as u8; 3])
        });
        let blurred = assess(&detection(120.0, TEMPLATE_112, 0.99), &soft);
        let box_blurred = assess(&detection(120.0, TEMPLATE_112, 0.99), &box_blur(&card(128.0, 50.0, 3), 1));
        assert!(box_blurred.sharpness < sharp.sharpness, "{sharp:?} {box_blurred:?}");
        let dim = assess(&detection(120.0, TEMPLATE_112, 0.99), &card(30.0, 12.0, 3));
        assert!(blurred.sharpness < sharp.sharpness / 4.0, "{sharp:?} {blurred:?}");
        assert!((dim.sharpness - sharp.sharpness).abs() < 0.2 * sharp.sharpness, "contrast-normalised: {dim:?}");
        let limits = QualityLimits::default();
        assert_eq!(enrollment_problems(&blurred, &limits), vec![Problem::Blurred], "{blurred:?}");
        assert_eq!(enrollment_problems(&dim, &limits), vec![Problem::TooDark]);
        assert!(blurred.score < sharp.score && dim.score < sharp.score);
    }

    #[test]
    fn small_and_turned_faces_are_named_in_the_message() {
        let limits = QualityLimits::default();
        let mut turned = TEMPLATE_112;
        turned[2][0] += 0.6 * (TEMPLATE_112[1][0] - TEMPLATE_112[0][0]); // nose far to one side
        let q = assess(&detection(40.0, turned, 0.99), &card(128.0, 50.0, 3));
        let problems = enrollment_problems(&q, &limits);
        assert_eq!(problems, vec![Problem::TooSmall, Problem::TurnedAway], "{q:?}");
        assert!(problems[0].message(&q, &limits).contains("too small"));
        assert!(problems[1].message(&q, &limits).contains("turned away"));
        assert!(q.score < 0.5);
        let bright = assess(&detection(120.0, TEMPLATE_112, 0.99), &card(245.0, 8.0, 3));
        assert!(enrollment_problems(&bright, &limits).contains(&Problem::Overexposed));
    }

    #[test]
    fn fusion_weighs_by_quality_and_skips_weightless_frames() {
        let fused = fuse(&[(&[1.0, 0.0], 3.0), (&[0.0, 1.0], 1.0), (&[0.0, -1.0], 0.0)]).unwrap();
        assert!((fused.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(fused[0] > 0.9 && fused[1] > 0.0 && fused[1] < 0.4, "{fused:?}");
        assert!(fuse(&[(&[1.0, 0.0], 0.0)]).is_none());
        assert!(fuse(&[]).is_none());
    }
}
