//! Camera pixel formats to 8-bit RGB: pure functions that write straight into the frame's
//! buffer. YUV and grey use BT.601 limited range (Y 16..235, chroma 16..240), which is what
//! V4L2 cameras deliver unless they say otherwise.

use anyhow::{Result, bail};
use image::RgbImage;

use super::image_file;

/// Fixed-point BT.601 limited-range YCbCr to RGB (coefficients scaled by 256).
#[inline(always)]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16) + 128;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u8;
    [clamp(c + 409 * e), clamp(c - 100 * d - 208 * e), clamp(c + 516 * d)]
}

/// Checks that `src` holds `rows` rows of `stride` bytes with at least `row_bytes` used each.
fn check(src: &[u8], what: &str, stride: usize, row_bytes: usize, rows: usize) -> Result<()> {
    if stride < row_bytes {
        bail!("{what}: line stride {stride} is shorter than a line ({row_bytes} bytes)");
    }
    let needed = stride * rows.saturating_sub(1) + row_bytes;
    if rows > 0 && src.len() < needed {
        bail!("{what}: buffer holds {} bytes, a full frame needs {needed}; the frame is truncated", src.len());
    }
    Ok(())
}

/// Packed YUYV 4:2:2 (Y0 U Y1 V) to RGB. `stride` is bytes per line (at least `2 * width`).
pub fn yuyv_to_rgb(src: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage> {
    let (w, h) = (width as usize, height as usize);
    if w % 2 != 0 {
        bail!("YUYV: width {w} is odd; YUYV pairs pixels");
    }
    check(src, "YUYV", stride, w * 2, h)?;
    let mut out = vec![0u8; w * h * 3];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let line = &src[row * stride..row * stride + w * 2];
        for (quad, px) in line.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let (y0, u, y1, v) = (quad[0], quad[1], quad[2], quad[3]);
            px[..3].copy_from_slice(&yuv_to_rgb(y0, u, v));
            px[3..].copy_from_slice(&yuv_to_rgb(y1, u, v));
        }
    }
    into_image(width, height, out)
}

/// NV12 (a Y plane, then one plane of interleaved U V at half resolution) to RGB.
/// `stride` is bytes per line of both planes; the UV plane starts right after `height` lines.
pub fn nv12_to_rgb(src: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage> {
    let (w, h) = (width as usize, height as usize);
    if w % 2 != 0 || h % 2 != 0 {
        bail!("NV12: {w}x{h} is odd; NV12 needs even width and height");
    }
    check(src, "NV12", stride, w, h + h / 2)?;
    let (luma, chroma) = src.split_at(stride * h);
    let mut out = vec![0u8; w * h * 3];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let y_line = &luma[row * stride..row * stride + w];
        let uv_line = &chroma[(row / 2) * stride..(row / 2) * stride + w];
        for ((ys, uv), px) in y_line.chunks_exact(2).zip(uv_line.chunks_exact(2)).zip(dst.chunks_exact_mut(6)) {
            px[..3].copy_from_slice(&yuv_to_rgb(ys[0], uv[0], uv[1]));
            px[3..].copy_from_slice(&yuv_to_rgb(ys[1], uv[0], uv[1]));
        }
    }
    into_image(width, height, out)
}

/// 8-bit grey (limited-range luminance) to RGB.
pub fn grey_to_rgb(src: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage> {
    let (w, h) = (width as usize, height as usize);
    check(src, "GREY", stride, w, h)?;
    let mut out = vec![0u8; w * h * 3];
    for (row, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        for (&y, px) in src[row * stride..row * stride + w].iter().zip(dst.chunks_exact_mut(3)) {
            px.copy_from_slice(&yuv_to_rgb(y, 128, 128));
        }
    }
    into_image(width, height, out)
}

/// One JPEG (an MJPEG frame) to RGB, decoded straight into the frame buffer. A frame cut off
/// before its end marker is an error (the decoder would silently fill it with grey).
pub fn mjpeg_to_rgb(jpeg: &[u8]) -> Result<RgbImage> {
    use image::ImageDecoder;
    use image::codecs::jpeg::JpegDecoder;

    if jpeg.is_empty() {
        bail!("empty MJPEG frame");
    }
    if !image_file::jpeg_has_end_marker(jpeg) {
        bail!("MJPEG frame ends before its end-of-image marker (truncated)");
    }
    let decoder = JpegDecoder::new(std::io::Cursor::new(jpeg))
        .map_err(|e| anyhow::anyhow!("MJPEG frame corrupt or truncated: {e}"))?;
    let (width, height) = decoder.dimensions();
    if width > image_file::MAX_DIMENSION
        || height > image_file::MAX_DIMENSION
        || u64::from(width) * u64::from(height) > image_file::MAX_FRAME_PIXELS
    {
        bail!(
            "MJPEG frame declares {width}x{height}, more than facegate decodes per frame (4096x2160); \
             set the camera to a lower resolution (640x480 is plenty for a door)"
        );
    }
    if decoder.color_type() == image::ColorType::Rgb8 {
        let mut out = vec![0u8; decoder.total_bytes() as usize];
        decoder.read_image(&mut out).map_err(|e| anyhow::anyhow!("MJPEG frame corrupt or truncated: {e}"))?;
        into_image(width, height, out)
    } else {
        let image = image::DynamicImage::from_decoder(decoder)
            .map_err(|e| anyhow::anyhow!("MJPEG frame corrupt or truncated: {e}"))?;
        Ok(image.into_rgb8())
    }
}

fn into_image(width: u32, height: u32, pixels: Vec<u8>) -> Result<RgbImage> {
    match RgbImage::from_raw(width, height, pixels) {
        Some(image) => Ok(image),
        None => bail!("internal error: RGB buffer does not match {width}x{height}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_limited_range_reference_colours() {
        // Reference values of the BT.601 limited-range matrix.
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(yuv_to_rgb(126, 128, 128), [128, 128, 128]);
        assert_eq!(yuv_to_rgb(81, 90, 240), [255, 0, 0]);
        assert_eq!(yuv_to_rgb(145, 54, 34), [0, 255, 1]); // 8-bit reference values round to 1
        assert_eq!(yuv_to_rgb(41, 240, 110), [0, 0, 255]);
        // Out-of-range input clamps instead of wrapping.
        assert_eq!(yuv_to_rgb(0, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(255, 255, 255), [255, 125, 255]);
    }

    #[test]
    fn yuyv_pairs_share_chroma_and_stride_padding_is_skipped() {
        // 2x2 image, stride 6 (2 bytes of padding per line).
        let src = [
            81, 90, 145, 240, 0xAA, 0xAA, // red-ish pair: Y0=81 (red), Y1=145, shared U=90 V=240
            16, 128, 235, 128, 0xAA, 0xAA, // black, white
        ];
        let rgb = yuyv_to_rgb(&src, 2, 2, 6).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 0).0, yuv_to_rgb(145, 90, 240));
        assert_eq!(rgb.get_pixel(0, 1).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255]);
    }

    #[test]
    fn nv12_chroma_is_shared_by_2x2_blocks() {
        // 4x2: Y plane 4x2, then one UV line with two (U, V) pairs.
        let src = [
            81, 81, 41, 41, // row 0
            81, 81, 41, 41, // row 1
            90, 240, 240, 110, // UV: left block red, right block blue
        ];
        let rgb = nv12_to_rgb(&src, 4, 2, 4).unwrap();
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            assert_eq!(rgb.get_pixel(x, y).0, [255, 0, 0], "({x},{y})");
        }
        for (x, y) in [(2, 0), (3, 1)] {
            assert_eq!(rgb.get_pixel(x, y).0, [0, 0, 255], "({x},{y})");
        }
    }

    #[test]
    fn grey_expands_limited_range() {
        let rgb = grey_to_rgb(&[16, 126, 235, 0], 2, 2, 2).unwrap();
        let got: Vec<[u8; 3]> = rgb.pixels().map(|p| p.0).collect();
        assert_eq!(got, [[0, 0, 0], [128, 128, 128], [255, 255, 255], [0, 0, 0]]);
    }

    #[test]
    fn short_buffers_and_odd_sizes_are_errors_not_panics() {
        assert!(yuyv_to_rgb(&[0; 7], 2, 2, 4).unwrap_err().to_string().contains("truncated"));
        assert!(yuyv_to_rgb(&[0; 12], 3, 2, 6).is_err());
        assert!(nv12_to_rgb(&[0; 11], 4, 2, 4).unwrap_err().to_string().contains("truncated"));
        assert!(grey_to_rgb(&[0; 4], 4, 1, 2).unwrap_err().to_string().contains("stride"));
    }

    #[test]
    fn mjpeg_decodes_and_rejects_truncated_frames() {
        let source =
            RgbImage::from_fn(
                32,
                16,
                |x, _| if x < 16 { image::Rgb([250, 10, 10]) } else { image::Rgb([10, 10, 250]) },
            );
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(&source).unwrap();
        let rgb = mjpeg_to_rgb(&jpeg).unwrap();
        assert_eq!(rgb.dimensions(), (32, 16));
        let p = rgb.get_pixel(4, 8).0;
        assert!(p[0] > 200 && p[2] < 60, "{p:?}");
        let err = mjpeg_to_rgb(&jpeg[..jpeg.len() / 2]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert!(mjpeg_to_rgb(b"").is_err());
        assert!(mjpeg_to_rgb(b"\xFF\xD8\xFF\xD9garbage").is_err());
    }
}
