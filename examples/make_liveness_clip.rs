//! Builds `tests/fixtures/clips/liveness.mjpeg`, the clip the built-in demo (`board/demo.toml`)
//! replays with liveness on: a live woman at the door (`tests/fixtures/liveness/image_T1.jpg`,
//! enrolled as `amy` from the same photo), an empty corridor, then the same woman's face on a
//! tablet held up to the camera (`image_F2.jpg`): the first must be granted, the second denied
//! `spoof_suspected`. Both photos are Apache-2.0 (see tests/fixtures/README.md).
//!
//! Sequence at 15 fps, 640x480: 40 frames of each photo (a 480x480 window of the upright
//! photo at its own scale, grey borders), 80 empty frames after the live visit, 10 at the end. Run:
//! `cargo run --release --example make_liveness_clip [OUT]`. The output is deterministic.

use std::io::Write;

use image::{Rgb, RgbImage};

const W: u32 = 640;
const H: u32 = 480;

fn corridor() -> RgbImage {
    RgbImage::from_pixel(W, H, Rgb([90, 90, 96]))
}

/// A 480-row window of the upright 480x640 photo, from row `top`, centred in the frame. Not
/// rescaled: downscaling smooths away the skin texture the liveness models look at (the live
/// photo scores 0.66 when shrunk to 75%, 0.99 at its own scale).
fn window(photo: &RgbImage, top: u32) -> RgbImage {
    let rows = H.min(photo.height().saturating_sub(top));
    let part = image::imageops::crop_imm(photo, 0, top, photo.width().min(W), rows).to_image();
    let mut frame = corridor();
    image::imageops::overlay(&mut frame, &part, i64::from((W - part.width()) / 2), 0);
    frame
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out =
        std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| root.join("clips/liveness.mjpeg"));
    // facegate's own loader applies the EXIF orientation (the photos are stored rotated).
    let load = |name: &str| facegate::capture::image_file::load_rgb(&root.join("liveness").join(name));
    // Windows that hold each face whole (T1's face is high in the photo, F2's tablet lower).
    let (live, tablet) = (window(&load("image_T1.jpg")?, 0), window(&load("image_F2.jpg")?, 80));
    let mut frames = Vec::new();
    // The gap after the live visit outlasts the demo's 5 s cooldown, or the tablet visit (same
    // person) would be held back by it instead of being decided.
    for (photo, gap) in [(&live, 80), (&tablet, 10)] {
        frames.extend(std::iter::repeat_n(photo.clone(), 40));
        frames.extend(std::iter::repeat_n(corridor(), gap));
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    for frame in &frames {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(frame)?;
        file.write_all(&jpeg)?;
    }
    file.flush()?;
    println!("wrote {} frames ({W}x{H}) to {}", frames.len(), out.display());
    Ok(())
}
