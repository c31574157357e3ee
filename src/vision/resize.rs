//! Bilinear (antialiased, like PIL's BILINEAR) resizing of packed RGB8 buffers.
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
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer.resize(&src, &mut dst, &options).map_err(|e| anyhow!("resize: {e}"))?;
        Ok(dst.into_vec())
    }
}

#[cfg(test)]
mod tests {
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
