//! Bad input never panics and never needs more memory than it should: each case runs the real
//! binary and checks for a clear result or a clear error.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::{assert_no_panic, facegate, fixture, stderr, stdout};
use image::{DynamicImage, ImageFormat, RgbImage};

/// A licence-clean photo with one clear, upright face.
const FACE: &str = "faces/astronaut/01.jpg";

fn face() -> RgbImage {
    facegate::capture::image_file::load_rgb(&fixture(FACE)).expect("face fixture loads")
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Inserts an EXIF APP1 segment carrying only an Orientation tag right after the JPEG SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF header, IFD at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn detect_json(path: &Path) -> (std::process::Output, serde_json::Value) {
    let out = facegate(&["detect", "--json", path.to_str().unwrap()]);
    assert_no_panic(&out);
    let line = stdout(&out);
    let value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", stderr(&out)));
    (out, value)
}

fn error_of(value: &serde_json::Value) -> String {
    value["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn unreadable_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = encode(&DynamicImage::ImageRgb8(face()), ImageFormat::Jpeg);
    let cases = [
        (write(dir.path(), "empty.jpg", b""), "empty"),
        (write(dir.path(), "notes.jpg", b"this is a text file, not a photo\n"), "not an image"),
        (write(dir.path(), "truncated.jpg", &jpeg[..jpeg.len() * 2 / 5]), "corrupt or truncated"),
        (write(dir.path(), "garbage.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage"), "corrupt or truncated"),
        (dir.path().join("missing.jpg"), "cannot read the file"),
    ];
    for (path, expected) in cases {
        let (out, value) = detect_json(&path);
        let error = error_of(&value);
        assert!(error.contains(expected), "{}: expected an error containing {expected:?}, got {value}", path.display());
        assert_eq!(out.status.code(), Some(1), "a failed image makes detect exit 1");
    }
}

#[test]
fn pixel_formats_all_work() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = DynamicImage::ImageRgb8(face());
    let grey = DynamicImage::ImageLuma8(rgb.to_luma8());
    let mut rgba = rgb.to_rgba8();
    for (x, _, p) in rgba.enumerate_pixels_mut() {
        if x < 10 {
            p.0[3] = 0;
        }
    }
    let cases = [
        ("grey.jpg", encode(&grey, ImageFormat::Jpeg)),
        ("rgba.png", encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png)),
        ("rgb16.png", encode(&DynamicImage::ImageRgb16(rgb.to_rgb16()), ImageFormat::Png)),
        ("grey16.png", encode(&DynamicImage::ImageLuma16(rgb.to_luma16()), ImageFormat::Png)),
    ];
    for (name, bytes) in cases {
        let path = write(dir.path(), name, &bytes);
        let (out, value) = detect_json(&path);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(value["faces"].as_array().map(Vec::len), Some(1), "{name}: {value}");
    }
}

#[test]
fn exif_rotation_is_applied_before_detection() {
    let dir = tempfile::tempdir().unwrap();
    let upright = face();
    // Store the pixels turned 90 degrees anticlockwise and say "rotate 90 clockwise to display" (6).
    let stored = image::imageops::rotate270(&upright);
    let jpeg = with_exif_orientation(&encode(&DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg), 6);
    let path = write(dir.path(), "rotated.jpg", &jpeg);
    let (_, value) = detect_json(&path);
    assert_eq!(value["width"].as_u64(), Some(upright.width() as u64), "{value}");
    assert_eq!(value["height"].as_u64(), Some(upright.height() as u64));
    let faces = value["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{value}");
    let marks = faces[0]["landmarks"].as_array().unwrap();
    let y = |i: usize| marks[i][1].as_f64().unwrap();
    let x = |i: usize| marks[i][0].as_f64().unwrap();
    assert!(y(0) < y(3) && y(1) < y(4), "eyes must be above the mouth in the upright image: {marks:?}");
    assert!(x(0) < x(1), "left eye left of right eye: {marks:?}");
}

#[test]
fn tiny_and_huge_images_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = write(dir.path(), "tiny.png", &encode(&DynamicImage::ImageRgb8(RgbImage::new(1, 1)), ImageFormat::Png));
    let (out, value) = detect_json(&tiny);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(value["faces"].as_array().map(Vec::len), Some(0));

    // 7000x7000 (49 MP, under the 50 MP cap) grey canvas with the face pasted in at 4x: detection
    // runs on a downscaled copy and the box comes back in original pixels.
    let f = face();
    let big_face = image::imageops::resize(&f, f.width() * 4, f.height() * 4, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(7000, 7000, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut canvas, &big_face, 3000, 2000);
    let huge = write(dir.path(), "huge.jpg", &encode(&DynamicImage::ImageRgb8(canvas), ImageFormat::Jpeg));
    let (out, value) = detect_json(&huge);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let faces = value["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{value}");
    let x1 = faces[0]["bbox"]["x1"].as_f64().unwrap();
    let y1 = faces[0]["bbox"]["y1"].as_f64().unwrap();
    assert!(x1 >= 3000.0 && x1 < 3000.0 + big_face.width() as f64, "box in original pixels: {value}");
    assert!(y1 >= 2000.0 && y1 < 2000.0 + big_face.height() as f64, "box in original pixels: {value}");

    // Dimensions beyond the cap are refused before any pixel is decoded.
    let header_only = {
        let mut png = encode(&DynamicImage::ImageRgb8(RgbImage::new(1, 1)), ImageFormat::Png);
        // IHDR width/height live at bytes 16..24; claim 100000 x 100000.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        png
    };
    let path = write(dir.path(), "enormous.png", &header_only);
    let (_, value) = detect_json(&path);
    assert!(!error_of(&value).is_empty(), "an image claiming 100000x100000 must be refused: {value}");
}

#[test]
fn enroll_refuses_photos_without_exactly_one_face() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = dir.path().join("g.db");
    let blank =
        write(dir.path(), "blank.png", &encode(&DynamicImage::ImageRgb8(RgbImage::new(200, 200)), ImageFormat::Png));
    let f = face();
    let mut two = RgbImage::new(f.width() * 2, f.height());
    image::imageops::replace(&mut two, &f, 0, 0);
    image::imageops::replace(&mut two, &f, f.width() as i64, 0);
    let two = write(dir.path(), "two.jpg", &encode(&DynamicImage::ImageRgb8(two), ImageFormat::Jpeg));
    let good = fixture(FACE);
    for (bad, expected) in [(&blank, "no face found"), (&two, "faces found; an enrolment photo must show only")] {
        let out = facegate(&[
            "--db",
            gallery.to_str().unwrap(),
            "enroll",
            "--name",
            "ann",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert!(!gallery.exists(), "a failed enroll must not store anything");
    }
}

#[test]
fn missing_onnxruntime_and_corrupt_models_are_explained() {
    let out = facegate(&["--onnxruntime", "/nonexistent/libonnxruntime.so", "detect", fixture(FACE).to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fetch-onnxruntime.sh"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let models = common::repo().join("models");
    for entry in std::fs::read_dir(&models).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(dir.path().join("manifest.toml")).unwrap();
    let pnet_file = manifest.lines().find(|l| l.contains("pnet") && l.starts_with("file")).unwrap();
    let pnet_file = pnet_file.split('"').nth(1).unwrap();
    let mut bytes = std::fs::read(dir.path().join(pnet_file)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(dir.path().join(pnet_file), bytes).unwrap();
    let out = facegate(&["--models", dir.path().to_str().unwrap(), "detect", fixture(FACE).to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("corrupted"), "{}", stderr(&out));

    std::fs::remove_file(dir.path().join(pnet_file)).unwrap();
    let out = facegate(&["--models", dir.path().to_str().unwrap(), "detect", fixture(FACE).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "c.toml", b"[detector]\nmin_face = 5\n");
    let out = facegate(&["--config", config.to_str().unwrap(), "detect", fixture(FACE).to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("detector.min_face"), "{}", stderr(&out));
}

/// A threshold below the embedder's floor would open the door for strangers: refused wherever it
/// comes from (config file or --threshold), and the doctor says the node is not ready.
#[test]
fn a_threshold_below_the_model_floor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let face = fixture(FACE);
    for threshold in ["0.0", "-1", "0.2"] {
        let out = facegate(&[&format!("--threshold={threshold}"), "identify", face.to_str().unwrap()]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "--threshold {threshold}: {}", stderr(&out));
        assert!(stderr(&out).contains("below the floor"), "{}", stderr(&out));
    }
    let config = write(dir.path(), "c.toml", b"[matching]\nthreshold = 0.0\n");
    let db = dir.path().join("d.db");
    let out = facegate(&["--config", config.to_str().unwrap(), "--db", db.to_str().unwrap(), "doctor"]);
    assert_no_panic(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text.lines().find(|l| l.contains("matching")).unwrap_or_default();
    assert!(line.starts_with("FAIL") && line.contains("matching.threshold"), "{text}");
    assert!(text.contains("node NOT ready"), "{text}");
    let negative_margin = write(dir.path(), "m.toml", b"[matching]\nmargin = -0.1\n");
    let out = facegate(&["--config", negative_margin.to_str().unwrap(), "detect", face.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("matching.margin"), "{}", stderr(&out));
}
