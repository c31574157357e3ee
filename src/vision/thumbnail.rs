//! Face thumbnails: the small JPEG a person sees for a template or an unknown face in the web
//! console. Made from the aligned 112x112 crop the embedder saw, so the picture shows exactly
//! what was matched, and bounded in size so thousands of them fit in the store.

use anyhow::{Context, Result};
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

/// JPEG quality of a thumbnail: faces stay recognisable for a person at about 3-5 KB each.
const QUALITY: u8 = 80;

/// Longest side of a stored thumbnail; a bigger crop is scaled down first.
pub const MAX_SIDE: u32 = 112;

/// Encodes `crop` (normally the aligned face) as a JPEG of at most `MAX_SIDE` pixels a side.
pub fn face_thumbnail(crop: &RgbImage) -> Result<Vec<u8>> {
    let resized;
    let image = if crop.width() > MAX_SIDE || crop.height() > MAX_SIDE {
        resized = image::imageops::thumbnail(crop, MAX_SIDE, MAX_SIDE);
        &resized
    } else {
        crop
    };
    let mut out = Vec::with_capacity(4096);
    JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(image)
        .context("could not encode the face thumbnail as JPEG")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_is_a_small_jpeg_of_bounded_size() {
        let crop = RgbImage::from_fn(400, 300, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let jpeg = face_thumbnail(&crop).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG magic");
        let back = image::load_from_memory(&jpeg).unwrap();
        assert!(back.width() <= MAX_SIDE && back.height() <= MAX_SIDE, "{}x{}", back.width(), back.height());
        let small = face_thumbnail(&RgbImage::new(112, 112)).unwrap();
        assert_eq!(image::load_from_memory(&small).unwrap().width(), 112);
    }
}
