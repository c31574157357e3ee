//! Boxes, scores and the box arithmetic MTCNN needs (NMS, regression, squaring).
//!
//! Coordinates follow the original MTCNN code (davidsandberg/facenet `detect_face.py`): boxes are
//! inclusive pixel boxes, so a box's width is `x2 - x1 + 1` in NMS and regression. Keeping that
//! convention is what makes our boxes match other implementations of the same weights.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in image pixels with a confidence score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

/// How overlap is measured in [`nms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller box (used after O-Net to drop boxes nested in others).
    Min,
}

impl BBox {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    /// Area with the inclusive-pixel convention of the original MTCNN code.
    fn inclusive_area(&self) -> f32 {
        (self.x2 - self.x1 + 1.0) * (self.y2 - self.y1 + 1.0)
    }

    /// Plain geometric intersection over union (used by parity tests and, later, tracking).
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.width() * self.height() + other.width() * other.height() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// Applies MTCNN box regression offsets `[dx1, dy1, dx2, dy2]`, scaled by the box size.
    /// `inclusive` selects the `+1` width convention (R-Net/O-Net) or the plain one (P-Net).
    pub fn regress(&self, reg: [f32; 4], inclusive: bool) -> BBox {
        let pad = if inclusive { 1.0 } else { 0.0 };
        let w = self.x2 - self.x1 + pad;
        let h = self.y2 - self.y1 + pad;
        BBox {
            x1: self.x1 + reg[0] * w,
            y1: self.y1 + reg[1] * h,
            x2: self.x2 + reg[2] * w,
            y2: self.y2 + reg[3] * h,
            score: self.score,
        }
    }

    /// Grows the shorter side so the box is square around the same centre (MTCNN `rerec`).
    pub fn squared(&self) -> BBox {
        let w = self.width();
        let h = self.height();
        let side = w.max(h);
        let x1 = self.x1 + w * 0.5 - side * 0.5;
        let y1 = self.y1 + h * 0.5 - side * 0.5;
        BBox { x1, y1, x2: x1 + side, y2: y1 + side, score: self.score }
    }

    /// Truncates coordinates toward zero, as numpy's `fix` does before cropping.
    pub fn truncated(&self) -> BBox {
        BBox { x1: self.x1.trunc(), y1: self.y1.trunc(), x2: self.x2.trunc(), y2: self.y2.trunc(), score: self.score }
    }

    /// Maps a box found on a resized image back to the original by a uniform factor.
    pub fn scaled(&self, factor: f32) -> BBox {
        BBox {
            x1: self.x1 * factor,
            y1: self.y1 * factor,
            x2: self.x2 * factor,
            y2: self.y2 * factor,
            score: self.score,
        }
    }
}

/// Greedy non-maximum suppression. Returns the indices of the boxes kept, best score first.
pub fn nms(boxes: &[BBox], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    // Highest score first; ties keep their input order so results are deterministic.
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        let area_a = a.inclusive_area();
        for &j in &order[rank + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &boxes[j];
            let iw = (a.x2.min(b.x2) - a.x1.max(b.x1) + 1.0).max(0.0);
            let ih = (a.y2.min(b.y2) - a.y1.max(b.y1) + 1.0).max(0.0);
            let inter = iw * ih;
            let area_b = b.inclusive_area();
            let ratio = match overlap {
                Overlap::Union => inter / (area_a + area_b - inter),
                Overlap::Min => inter / area_a.min(area_b),
            };
            if ratio > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> BBox {
        BBox { x1, y1, x2, y2, score }
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let boxes = [b(0., 0., 10., 10., 0.8), b(1., 1., 11., 11., 0.9), b(50., 50., 60., 60., 0.7)];
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![1, 2]);
    }

    #[test]
    fn nms_min_suppresses_nested_box_that_union_keeps() {
        let boxes = [b(0., 0., 99., 99., 0.9), b(10., 10., 29., 29., 0.8)];
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![0, 1]);
        assert_eq!(nms(&boxes, 0.7, Overlap::Min), vec![0]);
    }

    #[test]
    fn squared_keeps_centre_and_makes_sides_equal() {
        let s = b(10., 20., 30., 60., 1.).squared();
        assert_eq!(s.width(), s.height());
        assert_eq!(s.width(), 40.);
        assert_eq!((s.x1 + s.x2) / 2., 20.);
        assert_eq!((s.y1 + s.y2) / 2., 40.);
    }

    #[test]
    fn regression_scales_offsets_by_box_size() {
        let r = b(0., 0., 9., 19., 1.).regress([0.1, 0.1, -0.1, 0.0], true);
        assert_eq!((r.x1, r.y1, r.x2, r.y2), (1.0, 2.0, 8.0, 19.0));
        let plain = b(0., 0., 10., 20., 1.).regress([0.1, 0.1, 0.0, 0.0], false);
        assert_eq!((plain.x1, plain.y1), (1.0, 2.0));
    }

    #[test]
    fn iou_of_identical_is_one_and_disjoint_zero() {
        let a = b(0., 0., 10., 10., 1.);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b(20., 20., 30., 30., 1.)), 0.0);
    }
}
