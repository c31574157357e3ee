//! Photometric clean-up of the 112x112 face crop before embedding. Pure functions.
//!
//! A dim back door or a backlit entrance gives faces whose grey levels sit in a narrow dark band;
//! the embedder was trained on well-exposed faces. Stretching the face region's levels to a
//! standard mean and spread (one gain for all channels, so colours keep their balance) brings such
//! crops back to what the model knows. Greyscale makes colour and IR (night) cameras comparable.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Which clean-ups run on every crop (enrolment and live alike, so templates and probes match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enhance {
    /// Stretch the face region's brightness and contrast to a standard level.
    pub exposure: bool,
    /// Make the crop grey (R = G = B = luma), e.g. for IR night cameras.
    pub greyscale: bool,
}

/// Target mean and standard deviation of the face region's grey levels.
const TARGET_MEAN: f32 = 128.0;
const TARGET_STD: f32 = 52.0;
/// The most a crop is amplified: beyond this, sensor noise is all that grows.
const MAX_GAIN: f32 = 3.0;
/// The face region of the aligned crop (x0, y0, x1, y1), as in `quality`.
const REGION: (u32, u32, u32, u32) = (24, 32, 88, 100);

fn luma(p: [u8; 3]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// Mean and standard deviation of the grey levels in the face region.
fn region_stats(crop: &RgbImage) -> (f32, f32) {
    let (x0, y0, x1, y1) = REGION;
    let (x1, y1) = (x1.min(crop.width()), y1.min(crop.height()));
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            let g = luma(crop.get_pixel(x, y).0) as f64;
            sum += g;
            sum2 += g * g;
            n += 1;
        }
    }
    if n == 0 {
        return (TARGET_MEAN, TARGET_STD);
    }
    let mean = sum / n as f64;
    (mean as f32, ((sum2 / n as f64 - mean * mean).max(0.0)).sqrt() as f32)
}

/// Applies the selected clean-ups in place.
pub fn enhance(crop: &mut RgbImage, what: Enhance) {
    if what.greyscale {
        for p in crop.pixels_mut() {
            let g = luma(p.0).round().clamp(0.0, 255.0) as u8;
            p.0 = [g, g, g];
        }
    }
    if what.exposure {
        let (mean, std) = region_stats(crop);
        // Never flatten a contrasty face (gain >= 1 only when it helps); cap the amplification.
        let gain = (TARGET_STD / std.max(1.0)).clamp(1.0, MAX_GAIN);
        for p in crop.pixels_mut() {
            for c in &mut p.0 {
                *c = ((*c as f32 - mean) * gain + TARGET_MEAN).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// The crop mirrored left to right (for flip-averaged embeddings).
pub fn mirrored(crop: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(crop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripes(level: f32, amp: f32) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, _| {
            let v = (level + if x % 4 < 2 { amp } else { -amp }).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v / 2, v])
        })
    }

    #[test]
    fn a_dark_flat_face_is_brought_to_the_standard_level() {
        let mut crop = stripes(30.0, 10.0);
        enhance(&mut crop, Enhance { exposure: true, greyscale: false });
        let (mean, std) = region_stats(&crop);
        assert!((mean - TARGET_MEAN).abs() < 6.0, "mean {mean}");
        assert!(std > 20.0 && std <= TARGET_STD + 1.0, "gain capped at {MAX_GAIN}: std {std}");
    }

    #[test]
    fn a_well_exposed_face_keeps_its_contrast_and_nothing_runs_when_off() {
        // Grey stripes 68/188: mean 128, spread 60, already above the target spread.
        let original = RgbImage::from_fn(112, 112, |x, _| image::Rgb([if x % 4 < 2 { 188 } else { 68 }; 3]));
        let mut crop = original.clone();
        enhance(&mut crop, Enhance::default());
        assert_eq!(crop, original);
        enhance(&mut crop, Enhance { exposure: true, greyscale: false });
        let ((m0, s0), (m1, s1)) = (region_stats(&original), region_stats(&crop));
        assert!((s0 - s1).abs() < 1.5 && (m1 - TARGET_MEAN).abs() < 1.0, "{m0} {s0} -> {m1} {s1}");
    }

    #[test]
    fn greyscale_makes_channels_equal_and_mirroring_flips() {
        let mut crop = stripes(100.0, 20.0);
        enhance(&mut crop, Enhance { exposure: false, greyscale: true });
        assert!(crop.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
        let m = mirrored(&crop);
        assert_eq!(m.get_pixel(0, 5), crop.get_pixel(111, 5));
    }
}
