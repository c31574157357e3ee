//! Drawing detections onto a copy of the image for `detect --draw`.

use image::{Rgb, RgbImage};

use crate::vision::mtcnn::Detection;

const BOX: Rgb<u8> = Rgb([0, 230, 0]);
const MARK: Rgb<u8> = Rgb([255, 40, 40]);

/// Draws each box (2 px outline) and its five landmarks.
pub fn draw_detections(image: &RgbImage, detections: &[Detection]) -> RgbImage {
    let mut out = image.clone();
    let thickness = ((image.width().max(image.height()) / 400) as i64).max(2);
    for d in detections {
        outline(&mut out, &d.bbox, BOX);
        for [lx, ly] in d.landmarks {
            for dy in -thickness..=thickness {
                for dx in -thickness..=thickness {
                    put(&mut out, lx as i64 + dx, ly as i64 + dy, MARK);
                }
            }
        }
    }
    out
}

/// Draws a box outline (2 px or more on large images), clipped to the image.
pub fn outline(image: &mut RgbImage, bbox: &crate::vision::bbox::BBox, colour: Rgb<u8>) {
    let thickness = ((image.width().max(image.height()) / 400) as i64).max(2);
    let (x1, y1, x2, y2) = (bbox.x1 as i64, bbox.y1 as i64, bbox.x2 as i64, bbox.y2 as i64);
    for t in 0..thickness {
        for x in x1..=x2 {
            put(image, x, y1 + t, colour);
            put(image, x, y2 - t, colour);
        }
        for y in y1..=y2 {
            put(image, x1 + t, y, colour);
            put(image, x2 - t, y, colour);
        }
    }
}

fn put(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < image.width() as u64 && (y as u64) < image.height() as u64 {
        image.put_pixel(x as u32, y as u32, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::bbox::BBox;

    #[test]
    fn draws_inside_and_clips_outside() {
        let image = RgbImage::new(50, 50);
        let d = Detection {
            bbox: BBox { x1: 10.0, y1: 10.0, x2: 60.0, y2: 30.0, score: 1.0 },
            landmarks: [[20.0, 20.0], [-5.0, 0.0], [25.0, 25.0], [20.0, 28.0], [30.0, 28.0]],
        };
        let out = draw_detections(&image, &[d]);
        assert_eq!(*out.get_pixel(10, 15), BOX);
        assert_eq!(*out.get_pixel(20, 20), MARK);
        assert_eq!(*out.get_pixel(40, 40), Rgb([0, 0, 0]));
    }
}
