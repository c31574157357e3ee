//! Builds a replay clip of the group photo moving, for measuring what region reuse in
//! `facegate run` costs in recall (`facegate bench --roi-clip OUT`): a camera that pans across
//! and zooms into `tests/fixtures/group/01.jpg` (three people), so faces move, grow and shrink,
//! leave at one edge and come back, with empty frames before the group appears and in between.
//!
//! 15 fps, 640x480, 210 frames; MJPEG = concatenated JPEGs (quality 85). Deterministic.
//! Run: `cargo run --release --example make_group_clip [OUT]` (default `.cache/group-moving.mjpeg`;
//! not committed: it is rebuilt from the fixture in seconds).

use std::io::Write;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

const W: u32 = 640;
const H: u32 = 480;

fn empty() -> RgbImage {
    RgbImage::from_pixel(W, H, Rgb([118, 118, 118]))
}

/// The part of the photo a camera centred at (`cx`, `cy`) with a view `vw` pixels wide sees,
/// scaled to 640x480; outside the photo is grey.
fn view(photo: &RgbImage, cx: f32, cy: f32, vw: f32) -> RgbImage {
    let vh = vw * H as f32 / W as f32;
    let scale = W as f32 / vw;
    let mut frame = empty();
    let (x0, y0) = (cx - vw / 2.0, cy - vh / 2.0);
    // Crop the visible part of the photo and paste it where it falls in the frame.
    let sx0 = x0.max(0.0) as u32;
    let sy0 = y0.max(0.0) as u32;
    let sx1 = ((x0 + vw).min(photo.width() as f32)) as u32;
    let sy1 = ((y0 + vh).min(photo.height() as f32)) as u32;
    if sx1 <= sx0 + 2 || sy1 <= sy0 + 2 {
        return frame;
    }
    let part = image::imageops::crop_imm(photo, sx0, sy0, sx1 - sx0, sy1 - sy0).to_image();
    let (pw, ph) = (((sx1 - sx0) as f32 * scale) as u32, ((sy1 - sy0) as f32 * scale) as u32);
    let scaled = image::imageops::resize(&part, pw.max(1), ph.max(1), FilterType::Triangle);
    let dx = ((sx0 as f32 - x0) * scale) as i64;
    let dy = ((sy0 as f32 - y0) * scale) as i64;
    image::imageops::replace(&mut frame, &scaled, dx, dy);
    frame
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out =
        std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| root.join(".cache/group-moving.mjpeg"));
    let photo = image::open(root.join("tests/fixtures/group/01.jpg"))?.to_rgb8();
    let (pw, ph) = (photo.width() as f32, photo.height() as f32);
    let mut frames = vec![empty(); 10];
    // Pan left to right across the whole photo, zoomed out (faces ~40-60 px), 80 frames.
    for i in 0..80 {
        let t = i as f32 / 79.0;
        frames.push(view(&photo, pw * (0.25 + 0.5 * t), ph * 0.5, 800.0));
    }
    frames.extend(vec![empty(); 10]);
    // Zoom in on the middle and out again while drifting (faces grow to ~2x and back), 80 frames.
    for i in 0..80 {
        let t = i as f32 / 79.0;
        let zoom = 1.0 - 0.45 * (std::f32::consts::PI * t).sin();
        frames.push(view(&photo, pw * (0.45 + 0.15 * t), ph * (0.5 - 0.05 * t), 800.0 * zoom));
    }
    frames.extend(vec![empty(); 30]);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    for frame in &frames {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(frame)?;
        file.write_all(&jpeg)?;
    }
    file.flush()?;
    println!("wrote {} frames ({W}x{H}) to {}", frames.len(), out.display());
    Ok(())
}
