//! Resizing of packed RGB8 buffers the way the original MTCNN code does it (OpenCV's
//! `INTER_AREA`): pixel-area averaging when shrinking, bilinear when enlarging.
//!
//! `fast_image_resize` does this with SIMD; MTCNN resizes the frame once per pyramid level and
//! every candidate crop, so it is on the hot path.

use anyhow::{Result, anyhow};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// A reusable resizer (keeps its scratch buffers between calls).
#[derive(Default)]
pub struct RgbResizer {
    resizer: Resizer,
}

impl RgbResizer {
    pub fn new() -> RgbResizer {
        RgbResizer { resizer: Resizer::new() }
    }

    /// Resizes a packed RGB8 image of `width` x `height` to `out_w` x `out_h`.
    pub fn resize(&mut self, pixels: &[u8], width: u32, height: u32, out_w: u32, out_h: u32) -> Result<Vec<u8>> {
        let src = ImageRef::new(width, height, pixels, PixelType::U8x3).map_err(|e| anyhow!("resize source: {e}"))?;
        let mut dst = Image::new(out_w.max(1), out_h.max(1), PixelType::U8x3);
        let filter = if out_w <= width && out_h <= height { FilterType::Box } else { FilterType::Bilinear };
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        self.resizer.resize(&src, &mut dst, &options).map_err(|e| anyhow!("resize: {e}"))?;
        Ok(dst.into_vec())
    }
}

/// One output index's input taps: `(input index, weight)`.
type Taps = Vec<(usize, f32)>;

/// OpenCV's `INTER_AREA` weights along one axis for shrinking `src` samples to `dst`: each output
/// sample averages the input interval it covers, with fractional weights at the edges.
fn area_taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f1 = d as f64 * scale;
            let f2 = f1 + scale;
            let s2 = (f2.floor() as usize).min(src - 1);
            let s1 = (f1.ceil() as usize).min(s2);
            let cell = scale.min(src as f64 - f1);
            let mut taps = Vec::new();
            if s1 as f64 - f1 > 1e-3 {
                taps.push((s1 - 1, ((s1 as f64 - f1) / cell) as f32));
            }
            for s in s1..s2 {
                taps.push((s, (1.0 / cell) as f32));
            }
            if f2 - s2 as f64 > 1e-3 {
                taps.push((s2, ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
            }
            taps
        })
        .collect()
}

/// Shrinks packed RGB8 exactly as OpenCV's `INTER_AREA` does (separable area averaging). Used for
/// the small MTCNN crops, where the last fraction of a pixel moves O-Net's boxes and landmarks.
pub fn area_shrink(pixels: &[u8], width: usize, height: usize, out_w: usize, out_h: usize) -> Result<Vec<u8>> {
    if pixels.len() < width * height * 3 || out_w == 0 || out_h == 0 || out_w > width || out_h > height {
        anyhow::bail!("area_shrink: bad sizes {width}x{height} -> {out_w}x{out_h}");
    }
    let (xt, yt) = (area_taps(width, out_w), area_taps(height, out_h));
    let mut rows = vec![0.0f32; height * out_w * 3];
    for y in 0..height {
        let src = &pixels[y * width * 3..(y + 1) * width * 3];
        let dst = &mut rows[y * out_w * 3..(y + 1) * out_w * 3];
        for (ox, taps) in xt.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for &(sx, w) in taps {
                for c in 0..3 {
                    acc[c] += src[sx * 3 + c] as f32 * w;
                }
            }
            dst[ox * 3..ox * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = vec![0u8; out_w * out_h * 3];
    for (oy, taps) in yt.iter().enumerate() {
        let dst = &mut out[oy * out_w * 3..(oy + 1) * out_w * 3];
        for (i, v) in dst.iter_mut().enumerate() {
            let acc: f32 = taps.iter().map(|&(sy, w)| rows[sy * out_w * 3 + i] * w).sum();
            *v = acc.round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn area_taps_sum_to_one_and_cover_fractional_edges() {
        for (src, dst) in [(10, 3), (48, 48), (100, 24), (7, 2)] {
            for taps in area_taps(src, dst) {
                let sum: f32 = taps.iter().map(|t| t.1).sum();
                assert!((sum - 1.0).abs() < 1e-4, "{src}->{dst}: {taps:?}");
            }
        }
        // 3 -> 2: output 0 covers input 0 fully and half of input 1.
        let taps = area_taps(3, 2);
        assert_eq!(taps[0].len(), 2);
        assert!((taps[0][0].1 - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn area_shrink_averages_blocks() {
        // 2x2 -> 1x1 averages the four pixels.
        let px = [0, 0, 0, 100, 100, 100, 200, 200, 200, 100, 100, 100];
        assert_eq!(area_shrink(&px, 2, 2, 1, 1).unwrap(), vec![100, 100, 100]);
        assert!(area_shrink(&px, 2, 2, 3, 1).is_err());
    }

    use super::*;

    #[test]
    fn flat_image_stays_flat_and_has_requested_size() {
        let src = vec![100u8; 40 * 30 * 3];
        let out = RgbResizer::new().resize(&src, 40, 30, 13, 7).unwrap();
        assert_eq!(out.len(), 13 * 7 * 3);
        assert!(out.iter().all(|&v| v == 100));
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        assert!(RgbResizer::new().resize(&[0u8; 10], 40, 30, 13, 7).is_err());
    }
}
