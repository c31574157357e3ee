//! A few hundred bytes that declare a huge image must be refused before any pixel is decoded,
//! wherever images come in: photo files and uploads (`decode_rgb`, used by the CLI, enrollment
//! over MQTT and replays) and MJPEG camera frames. This test runs in its own process so its peak
//! memory is its own: the bomb (16384x16384 in 630 bytes) took 1.16 GB before the cap.

use std::process::Command;

use facegate::capture::image_file::{ImageFileError, decode_rgb};
use facegate::capture::pixfmt::mjpeg_to_rgb;
use image::{DynamicImage, ImageFormat, RgbImage};

/// A small valid JPEG whose frame header (SOF0) is rewritten to claim `width` x `height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 150])))
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Jpeg)
        .unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2)
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// Peak resident memory of this process so far, in MB (VmHWM).
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[test]
fn a_jpeg_declaring_16384_squared_is_refused_without_decoding() {
    let bomb = jpeg_declaring(16_384, 16_384);
    assert!(bomb.len() < 1_000, "the bomb is small: {} bytes", bomb.len());
    for _ in 0..50 {
        match decode_rgb(&bomb, "bomb.jpg") {
            Err(e @ ImageFileError::TooManyPixels { .. }) => {
                let text = e.to_string();
                assert!(text.contains("16384x16384") && text.contains("downscale"), "{text}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let frame = mjpeg_to_rgb(&bomb).expect_err("a camera frame this large is refused");
        assert!(frame.to_string().contains("lower resolution"), "{frame}");
    }
    // 10000x6000 = 60 MP is over the 50 MP photo cap even though each side is under 16384.
    let wide = jpeg_declaring(10_000, 6_000);
    assert!(matches!(decode_rgb(&wide, "wide.jpg"), Err(ImageFileError::TooManyPixels { .. })));
    let peak = peak_rss_mb();
    assert!(peak < 200, "peak RSS {peak} MB: the declared size was not checked before decoding");
}

#[test]
fn the_cli_names_the_fix_for_a_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.jpg");
    std::fs::write(&path, jpeg_declaring(16_384, 16_384)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facegate")).arg("detect").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("megapixels") && stderr.contains("downscale"), "{stderr}");
}
