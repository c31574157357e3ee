//! Reading still images from files: any common format, EXIF orientation applied, any pixel
//! format (grey, RGBA, 16-bit) turned into 8-bit RGB, and decoder memory capped so a huge or
//! hostile file gives an error instead of exhausting memory.

use std::io::Read;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// Largest width or height we accept.
pub const MAX_DIMENSION: u32 = 16_384;
/// Most pixels in a photo (50 MP: a 48 MP phone photo passes): checked against the size the file
/// declares before anything is decoded, so a few hundred bytes that claim 16384x16384 cost
/// nothing. The RGB image of the largest photo accepted is 150 MB.
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most pixels in a camera frame (4096x2160): a camera that sends more is misconfigured or hostile.
pub const MAX_FRAME_PIXELS: u64 = 4096 * 2160;
/// Most memory the decoder may allocate for one image.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Why an image file could not be used. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("{path}: cannot read the file ({cause}); check the path and permissions")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}: the file is empty (0 bytes); re-copy or re-export the photo")]
    Empty { path: String },
    #[error("{path}: not an image in a format facegate reads (JPEG, PNG, BMP, GIF, TIFF, WebP)")]
    NotAnImage { path: String },
    #[error("{path}: the image is {width}x{height}, larger than facegate accepts ({max}x{max}); downscale it first")]
    TooLarge { path: String, width: u32, height: u32, max: u32 },
    #[error(
        "{path}: the image declares {width}x{height} ({} megapixels), more than facegate decodes ({} megapixels); \
         downscale it first (a face needs far fewer pixels)",
        *width as u64 * *height as u64 / 1_000_000, MAX_PIXELS / 1_000_000
    )]
    TooManyPixels { path: String, width: u32, height: u32 },
    #[error("{path}: the image is corrupt or truncated ({detail}); re-copy or re-export the photo")]
    Corrupt { path: String, detail: String },
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Reads an image file into upright 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageFileError> {
    let shown = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|cause| ImageFileError::Io { path: shown.clone(), cause })?;
    decode_rgb(&bytes, &shown)
}

/// Decodes image bytes (named `name` in errors) into upright 8-bit RGB.
pub fn decode_rgb(bytes: &[u8], name: &str) -> Result<RgbImage, ImageFileError> {
    if bytes.is_empty() {
        return Err(ImageFileError::Empty { path: name.to_string() });
    }
    let path = || name.to_string();
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageFileError::Corrupt { path: path(), detail: e.to_string() })?;
    match reader.format() {
        None => return Err(ImageFileError::NotAnImage { path: path() }),
        Some(image::ImageFormat::Jpeg) if !jpeg_has_end_marker(bytes) => {
            // The JPEG decoder fills a cut-off file with grey and reports success; a template made
            // from half a face is worse than an error.
            return Err(ImageFileError::Corrupt {
                path: path(),
                detail: "JPEG ends before its end-of-image marker".into(),
            });
        }
        Some(_) => {}
    }
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, name))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ImageFileError::TooLarge { path: path(), width, height, max: MAX_DIMENSION });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageFileError::TooManyPixels { path: path(), width, height });
    }
    decoder.set_limits(limits()).map_err(|e| classify(e, name))?;
    // A missing or unreadable EXIF block is normal (most PNGs); it just means "upright".
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, name))?;
    image.apply_orientation(orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.into_rgb8(),
    })
}

/// Whether a JPEG's last start-of-scan (FF DA) is followed by an end-of-image marker (FF D9).
/// Inside entropy-coded data an FF byte is always followed by 00 or a restart marker, so these
/// two markers only appear as markers; an embedded EXIF thumbnail has its own pair, earlier.
pub(crate) fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == marker);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        (None, _) => true, // no scan at all: let the decoder report what is wrong
        (Some(_), None) => false,
    }
}

fn classify(error: image::ImageError, name: &str) -> ImageFileError {
    use image::ImageError as E;
    use image::error::LimitErrorKind;
    match error {
        E::Unsupported(_) => ImageFileError::NotAnImage { path: name.to_string() },
        E::Limits(ref limit) => match limit.kind() {
            LimitErrorKind::DimensionError => {
                ImageFileError::TooLarge { path: name.to_string(), width: 0, height: 0, max: MAX_DIMENSION }
            }
            _ => ImageFileError::Corrupt { path: name.to_string(), detail: format!("{error}: needs too much memory") },
        },
        other => ImageFileError::Corrupt { path: name.to_string(), detail: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(image: DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn empty_and_text_files_get_distinct_clear_errors() {
        assert!(matches!(decode_rgb(b"", "a.jpg"), Err(ImageFileError::Empty { .. })));
        let err = decode_rgb(b"hello, I am text pretending to be a jpeg", "b.jpg").unwrap_err();
        assert!(matches!(err, ImageFileError::NotAnImage { .. }), "{err}");
    }

    #[test]
    fn grey_rgba_and_16_bit_become_rgb8() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(5, 4, image::Luma([77])));
        let rgb = decode_rgb(&png_bytes(grey), "g.png").unwrap();
        assert_eq!(rgb.dimensions(), (5, 4));
        assert_eq!(rgb.get_pixel(0, 0).0, [77, 77, 77]);
        let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(3, 3, image::Rgb([65535u16, 0, 32896])));
        assert_eq!(decode_rgb(&png_bytes(deep), "d.png").unwrap().get_pixel(1, 1).0, [255, 0, 128]);
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 0])));
        assert_eq!(decode_rgb(&png_bytes(rgba), "a.png").unwrap().get_pixel(0, 0).0, [1, 2, 3]);
    }

    #[test]
    fn truncated_png_is_corrupt_not_a_panic() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 3])));
        let bytes = png_bytes(image);
        let err = decode_rgb(&bytes[..bytes.len() / 2], "t.png").unwrap_err();
        assert!(matches!(err, ImageFileError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn truncated_jpeg_is_corrupt_even_though_the_decoder_would_accept_it() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 3])));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        let bytes = out.into_inner();
        assert!(decode_rgb(&bytes, "whole.jpg").is_ok());
        let err = decode_rgb(&bytes[..bytes.len() * 2 / 3], "cut.jpg").unwrap_err();
        assert!(err.to_string().contains("end-of-image"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_rgb(Path::new("/definitely/not/here.jpg")).unwrap_err().to_string();
        assert!(err.contains("/definitely/not/here.jpg"), "{err}");
    }
}
