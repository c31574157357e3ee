//! Median time to turn one 640x480 camera frame into RGB, per pixel format:
//! `cargo run --release --example pixfmt_bench`.

use std::time::Instant;

use facegate::capture::pixfmt;

fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let (w, h) = (640u32, 480u32);
    let picture =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(&picture)?;
    let yuyv: Vec<u8> = (0..w * h * 2).map(|i| (i % 251) as u8).collect();
    let nv12: Vec<u8> = (0..w * h * 3 / 2).map(|i| (i % 241) as u8).collect();
    let mjpeg = median_ms(|| drop(pixfmt::mjpeg_to_rgb(&jpeg)));
    let yuyv_ms = median_ms(|| drop(pixfmt::yuyv_to_rgb(&yuyv, w, h, w as usize * 2)));
    let nv12_ms = median_ms(|| drop(pixfmt::nv12_to_rgb(&nv12, w, h, w as usize)));
    let grey_ms = median_ms(|| drop(pixfmt::grey_to_rgb(&nv12, w, h, w as usize)));
    println!(
        "640x480 to RGB, median of 200: mjpeg {mjpeg:.2} ms ({} KB frame), yuyv {yuyv_ms:.2} ms, nv12 {nv12_ms:.2} ms, grey {grey_ms:.2} ms",
        jpeg.len() / 1024
    );
    Ok(())
}
