//! Builds `tests/fixtures/clips/walkup.mjpeg`, the clip the built-in demo (`board/demo.toml`)
//! replays: people walking up to a door camera, their faces growing from far away to close up.
//!
//! Sequence at 15 fps, 640x480: the astronaut (enrolled) walks up, then the cameraman (never
//! enrolled: must come out unknown), then Grace Hopper (enrolled), then the astronaut and Grace
//! Hopper side by side. Empty corridor frames separate the visits so each gets its own track.
//!
//! Run: `cargo run --release --example make_demo_clip [OUT]`. The output is deterministic.

use std::io::Write;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

const W: u32 = 640;
const H: u32 = 480;

/// A fixture photo and the square around its face (centre x, centre y, side), from `facegate detect`.
struct Subject {
    file: &'static str,
    cx: u32,
    cy: u32,
    side: u32,
}

const ASTRONAUT: Subject = Subject { file: "faces/astronaut/01.jpg", cx: 224, cy: 125, side: 220 };
const CAMERAMAN: Subject = Subject { file: "strangers/cameraman.jpg", cx: 232, cy: 160, side: 180 };
const HOPPER: Subject = Subject { file: "faces/hopper/01.jpg", cx: 267, cy: 235, side: 400 };

fn corridor() -> RgbImage {
    RgbImage::from_fn(W, H, |_, y| {
        let v = 70 + (y * 60 / H) as u8;
        Rgb([v, v, v.saturating_add(8)])
    })
}

fn head(photo: &RgbImage, s: &Subject) -> RgbImage {
    let half = s.side / 2;
    let x = s.cx.saturating_sub(half);
    let y = s.cy.saturating_sub(half);
    image::imageops::crop_imm(photo, x, y, s.side.min(photo.width() - x), s.side.min(photo.height() - y)).to_image()
}

/// Pastes `head` scaled to `size` pixels wide, centred at (`cx`, `cy`).
fn paste(frame: &mut RgbImage, head: &RgbImage, size: u32, cx: i64, cy: i64) {
    let scaled = image::imageops::resize(head, size, size * head.height() / head.width(), FilterType::Triangle);
    let x = cx - i64::from(scaled.width() / 2);
    let y = cy - i64::from(scaled.height() / 2);
    image::imageops::overlay(frame, &scaled, x, y);
}

/// One visit: `walk` frames growing from `from` to `to` pixels, then `hold` frames at `to`.
fn visit(heads: &[(&RgbImage, i64)], walk: u32, hold: u32, from: u32, to: u32) -> Vec<RgbImage> {
    (0..walk + hold)
        .map(|i| {
            let t = (i.min(walk) as f32) / walk as f32;
            let size = from as f32 + (to - from) as f32 * t;
            let mut frame = corridor();
            for (head, cx) in heads {
                // Walking towards the camera: the head rises a little as it grows.
                let cy = 300.0 - 80.0 * t;
                paste(&mut frame, head, size as u32, *cx, cy as i64);
            }
            frame
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| root.join("clips/walkup.mjpeg"));
    let load = |s: &Subject| -> anyhow::Result<RgbImage> { Ok(head(&image::open(root.join(s.file))?.to_rgb8(), s)) };
    let (astronaut, cameraman, hopper) = (load(&ASTRONAUT)?, load(&CAMERAMAN)?, load(&HOPPER)?);
    let empty = |n: usize| vec![corridor(); n];
    let mut frames = Vec::new();
    frames.extend(visit(&[(&astronaut, 320)], 30, 15, 70, 260));
    frames.extend(empty(10));
    frames.extend(visit(&[(&cameraman, 320)], 30, 15, 70, 260));
    frames.extend(empty(10));
    frames.extend(visit(&[(&hopper, 320)], 30, 15, 70, 260));
    frames.extend(empty(10));
    frames.extend(visit(&[(&astronaut, 170), (&hopper, 470)], 30, 15, 60, 220));
    frames.extend(empty(10));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    for frame in &frames {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(frame)?;
        file.write_all(&jpeg)?;
    }
    file.flush()?;
    println!("wrote {} frames ({}x{}) to {}", frames.len(), W, H, out.display());
    Ok(())
}
