//! Grabs frames from a V4L2 device through facegate's real V4L2 source (the same code a camera
//! runs in the appliance) in several pixel formats, checks their size and that they hold a
//! picture, and prints `V4L2 OK ...` (exit 0) or `V4L2 FAIL ...` (exit 1). Run inside the
//! vivid VM by tests/vm/run-vivid.sh; also useful on a real board: `v4l2_probe /dev/video0`.

#[cfg(feature = "v4l2")]
fn main() {
    use std::sync::Arc;
    use std::time::Instant;

    use facegate::capture::v4l2::V4l2Source;
    use facegate::capture::{FrameSource, Next, PixelFormat, SourceContext, V4l2Config};
    use facegate::decide::clock::MonotonicClock;

    let device = std::env::args().nth(1).unwrap_or_else(|| "/dev/video0".into());
    let ctx = SourceContext::new(Arc::new(MonotonicClock::default()));
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    for format in [PixelFormat::Yuyv, PixelFormat::Nv12, PixelFormat::Grey, PixelFormat::Mjpeg] {
        let config = V4l2Config { device: device.clone().into(), width: 640, height: 480, fps: 30.0, format };
        let mut source = V4l2Source::new(config);
        if let Err(e) = source.open(&ctx) {
            let message = format!("{e:#}");
            // vivid has no MJPEG; the source must say so and list what it offers.
            if format == PixelFormat::Mjpeg && message.contains("does not offer mjpeg") {
                println!("mjpeg: refused as expected: {message}");
                verified.push("mjpeg-refused".to_string());
            } else {
                failures.push(format!("{format}: open failed: {message}"));
            }
            continue;
        }
        let (mut frames, mut decode, started) = (0u32, std::time::Duration::ZERO, Instant::now());
        let mut last = None;
        while frames < 10 && started.elapsed().as_secs() < 30 {
            let t = Instant::now();
            match source.next_frame(&ctx) {
                Ok(Next::Frame { image, .. }) => {
                    decode += t.elapsed();
                    frames += 1;
                    last = Some(image);
                }
                Ok(Next::Corrupt(why)) => failures.push(format!("{format}: corrupt frame: {why}")),
                Ok(Next::Idle) | Ok(Next::End) => {}
                Err(e) => {
                    failures.push(format!("{format}: read failed: {e:#}"));
                    break;
                }
            }
        }
        let Some(image) = last else {
            failures.push(format!("{format}: no frame within 30 s"));
            continue;
        };
        let n = source.negotiated();
        let first = image.get_pixel(0, 0).0;
        let distinct = image.pixels().filter(|p| p.0 != first).count();
        let mid = image.get_pixel(image.width() / 2, image.height() / 2).0;
        println!(
            "{format}: {frames} frames {}x{} (negotiated {n:?}) in {:.2} s, read+convert {:.1} ms/frame, \
             pixel(0,0)={first:?} centre={mid:?}, {distinct} pixels differ from pixel(0,0)",
            image.width(),
            image.height(),
            started.elapsed().as_secs_f64(),
            decode.as_secs_f64() * 1000.0 / f64::from(frames)
        );
        if image.dimensions() != (640, 480) {
            failures.push(format!("{format}: got {}x{}, expected 640x480", image.width(), image.height()));
        } else if distinct < 1000 {
            failures.push(format!("{format}: the picture is (nearly) one flat value {first:?}"));
        } else {
            verified.push(format!("{format}={frames}x640x480"));
        }
    }
    if failures.is_empty() {
        println!("V4L2 OK {device}: {}", verified.join(" "));
    } else {
        println!("V4L2 FAIL {device}: {}", failures.join("; "));
        std::process::exit(1);
    }
}

#[cfg(not(feature = "v4l2"))]
fn main() {
    eprintln!("this build has no V4L2 support; rebuild with --features v4l2");
    std::process::exit(2);
}
