//! Region planning for video: reuse what the last frames found instead of scanning every frame
//! whole. MTCNN's cost is dominated by the pyramid over the whole frame and the R-Net candidates
//! it proposes; a face seen in the last frame is almost surely within a box or so of where it
//! was, and at a size close to what it had, so a small window with a short pyramid finds it again.
//!
//! The planner decides per camera and per frame: scan the whole frame (every `full_every` frames,
//! when the picture changed outside the windows, or when the last frame found nothing and the
//! rescan is due), or scan only windows around the faces of the last frames. It holds no images
//! and does no inference: it is pure bookkeeping over boxes and a tiny grey thumbnail, tested on
//! its own. The caller runs the detector on the plan and reports what it found.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::bbox::BBox;

/// The `[detector.roi]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoiParams {
    /// Reuse the last frames' faces (off: every frame is scanned whole, as in still images).
    pub enabled: bool,
    /// Scan the whole frame every this many frames while the picture changes (someone may have
    /// come in too slowly to count as a scene change).
    pub full_every: u32,
    /// ...and at least every this many frames when nothing changed since the last whole scan: a
    /// still empty corridor needs no whole scan every second, and with eight cameras those
    /// scans are most of the work.
    pub still_full_every: u32,
    /// A window is the face box grown by this many face sides on each side.
    pub grow: f32,
    /// The smallest face looked for in a window, as a fraction of the face's last size (the
    /// configured `min_face` still applies).
    pub shrink: f32,
    /// Change of a cell's mean grey level (0-255) in a 32x24 thumbnail, outside the windows, that
    /// counts as a scene change when two or more cells see it: a whole-frame scan follows.
    /// (A 70 px head walking into a 640x480 frame changes a dozen cells.)
    pub scene_change: f32,
    /// A face not found again in its window for this many frames is no longer looked for there.
    pub keep_frames: u32,
}

impl Default for RoiParams {
    fn default() -> Self {
        RoiParams {
            enabled: true,
            full_every: 10,
            still_full_every: 50,
            grow: 0.75,
            shrink: 0.6,
            scene_change: 12.0,
            keep_frames: 2,
        }
    }
}

impl RoiParams {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.full_every == 0 {
            anyhow::bail!("detector.roi.full_every must be at least 1 (1 scans every frame whole)");
        }
        if self.still_full_every < self.full_every {
            anyhow::bail!(
                "detector.roi.still_full_every ({}) must be at least detector.roi.full_every ({}); set them equal to \
                 rescan still scenes as often as changing ones",
                self.still_full_every,
                self.full_every
            );
        }
        if !(0.1..=4.0).contains(&self.grow) {
            anyhow::bail!("detector.roi.grow must be between 0.1 and 4 face sides (got {})", self.grow);
        }
        if !(0.2..=1.0).contains(&self.shrink) {
            anyhow::bail!("detector.roi.shrink must be between 0.2 and 1 (got {})", self.shrink);
        }
        if !(0.0..=255.0).contains(&self.scene_change) {
            anyhow::bail!("detector.roi.scene_change must be between 0 and 255 (got {})", self.scene_change);
        }
        Ok(())
    }
}

/// A window of the frame to detect in, with the smallest face worth looking for there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub min_face: f32,
}

/// What to detect in for one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The whole frame.
    Full,
    /// Only these windows (none: nothing was there and nothing changed).
    Windows(Vec<Window>),
}

/// Thumbnail size for scene-change detection: coarse enough to ignore sensor noise.
const THUMB_W: usize = 32;
const THUMB_H: usize = 24;

/// Per-camera memory: recent faces, frames since the last whole scan, the last thumbnail.
#[derive(Debug, Clone, Default)]
struct CameraMemory {
    /// Faces found recently and how many frames in a row their window came up empty.
    faces: Vec<(BBox, u32)>,
    since_full: u32,
    thumb: Vec<f32>,
    /// The thumbnail of the last whole scan: what "nothing changed since" is measured against.
    full_thumb: Vec<f32>,
    scanned: bool,
}

/// Plans the detection of each frame from what the previous frames found.
#[derive(Debug, Clone, Default)]
pub struct RegionPlanner {
    params: RoiParams,
    cameras: Vec<CameraMemory>,
}

impl RegionPlanner {
    pub fn new(params: RoiParams) -> RegionPlanner {
        RegionPlanner { params, cameras: Vec::new() }
    }

    fn memory(&mut self, camera: usize) -> &mut CameraMemory {
        if self.cameras.len() <= camera {
            self.cameras.resize_with(camera + 1, CameraMemory::default);
        }
        &mut self.cameras[camera]
    }

    /// The plan for this frame of `camera`. `min_face` is the detector's configured minimum.
    pub fn plan(&mut self, camera: usize, image: &RgbImage, min_face: f32) -> Plan {
        let params = self.params.clone();
        if !params.enabled {
            return Plan::Full;
        }
        let (w, h) = image.dimensions();
        let memory = self.memory(camera);
        let windows = windows_for(&memory.faces, w, h, min_face, &params);
        let thumb = thumbnail(image);
        let changed = memory.thumb.len() != thumb.len()
            || changed_cells_outside(&memory.thumb, &thumb, &windows, w, h, params.scene_change) >= 2;
        let due = memory.since_full + 1;
        let periodic = due >= params.full_every
            && (due >= params.still_full_every
                || memory.full_thumb.len() != thumb.len()
                || changed_cells_outside(&memory.full_thumb, &thumb, &windows, w, h, params.scene_change) >= 2);
        memory.thumb = thumb;
        if !memory.scanned || changed || periodic {
            memory.full_thumb.clone_from(&memory.thumb);
            Plan::Full
        } else {
            Plan::Windows(windows)
        }
    }

    /// Records what the detector found (full-frame coordinates) under `plan`.
    pub fn observe(&mut self, camera: usize, plan: &Plan, found: &[BBox]) {
        let keep_frames = self.params.keep_frames;
        let memory = self.memory(camera);
        let mut faces: Vec<(BBox, u32)> = found.iter().map(|b| (*b, 0)).collect();
        match plan {
            Plan::Full => {
                memory.since_full = 0;
                memory.scanned = true;
            }
            Plan::Windows(_) => {
                memory.since_full += 1;
                // A face its window missed this frame is looked for again, a few frames at most.
                for (old, misses) in &memory.faces {
                    if *misses < keep_frames && !found.iter().any(|f| f.iou(old) > 0.3) {
                        faces.push((*old, misses + 1));
                    }
                }
            }
        }
        memory.faces = faces;
    }
}

/// Windows around each remembered face, overlapping ones merged (a face near another must not
/// be cut in two by a window edge).
fn windows_for(faces: &[(BBox, u32)], w: u32, h: u32, min_face: f32, params: &RoiParams) -> Vec<Window> {
    let mut rects: Vec<(f32, f32, f32, f32, f32)> = faces
        .iter()
        .map(|(b, _)| {
            let side = b.width().max(b.height()).max(1.0);
            let grow = params.grow * side;
            let smallest = (side * params.shrink).max(min_face);
            (b.x1 - grow, b.y1 - grow, b.x2 + grow, b.y2 + grow, smallest)
        })
        .collect();
    // Merge until no two windows overlap.
    let mut merged = true;
    while merged {
        merged = false;
        'outer: for i in 0..rects.len() {
            for j in i + 1..rects.len() {
                let (a, b) = (rects[i], rects[j]);
                if a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3 {
                    rects[i] = (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3), a.4.min(b.4));
                    rects.swap_remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
    }
    rects
        .into_iter()
        .filter_map(|(x1, y1, x2, y2, min_face)| {
            let x1 = x1.clamp(0.0, w as f32) as u32;
            let y1 = y1.clamp(0.0, h as f32) as u32;
            let x2 = x2.clamp(0.0, w as f32).ceil() as u32;
            let y2 = y2.clamp(0.0, h as f32).ceil() as u32;
            // A window smaller than its smallest face cannot hold it.
            let side = x2.saturating_sub(x1).min(y2.saturating_sub(y1)) as f32;
            (side >= min_face.max(12.0)).then_some(Window { x: x1, y: y1, w: x2 - x1, h: y2 - y1, min_face })
        })
        .collect()
}

/// Mean grey level of each cell of a 32x24 grid (every second pixel of every second row).
fn thumbnail(image: &RgbImage) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut sums = vec![0.0f32; THUMB_W * THUMB_H];
    let mut counts = vec![0u32; THUMB_W * THUMB_H];
    if w == 0 || h == 0 {
        return sums;
    }
    let raw = image.as_raw();
    for y in (0..h).step_by(2) {
        let cy = y * THUMB_H / h;
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        for x in (0..w).step_by(2) {
            let cell = cy * THUMB_W + x * THUMB_W / w;
            let p = &row[x * 3..x * 3 + 3];
            sums[cell] += (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0;
            counts[cell] += 1;
        }
    }
    sums.iter().zip(&counts).map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 }).collect()
}

/// How many cells no window touches changed by more than `threshold` between two thumbnails.
fn changed_cells_outside(old: &[f32], new: &[f32], windows: &[Window], w: u32, h: u32, threshold: f32) -> usize {
    let (cw, ch) = (w as f32 / THUMB_W as f32, h as f32 / THUMB_H as f32);
    let mut cells = 0;
    for cy in 0..THUMB_H {
        for cx in 0..THUMB_W {
            let (x1, y1) = (cx as f32 * cw, cy as f32 * ch);
            let covered = windows.iter().any(|win| {
                x1 + cw > win.x as f32
                    && x1 < (win.x + win.w) as f32
                    && y1 + ch > win.y as f32
                    && y1 < (win.y + win.h) as f32
            });
            if !covered && (old[cy * THUMB_W + cx] - new[cy * THUMB_W + cx]).abs() > threshold {
                cells += 1;
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, side: f32) -> BBox {
        BBox { x1: x, y1: y, x2: x + side, y2: y + side, score: 0.99 }
    }

    fn frame(level: u8) -> RgbImage {
        RgbImage::from_pixel(640, 480, image::Rgb([level, level, level]))
    }

    #[test]
    fn first_frame_is_scanned_whole_then_windows_follow_the_face() {
        let mut p = RegionPlanner::new(RoiParams::default());
        let img = frame(100);
        assert_eq!(p.plan(0, &img, 40.0), Plan::Full);
        p.observe(0, &Plan::Full, &[face(300.0, 200.0, 80.0)]);
        let plan = p.plan(0, &img, 40.0);
        let Plan::Windows(w) = &plan else { panic!("expected windows, got {plan:?}") };
        assert_eq!(w.len(), 1);
        // The face box grown by 0.75 sides (60 px) each way, and faces down to 0.6 of its size.
        assert_eq!((w[0].x, w[0].y, w[0].w, w[0].h), (240, 140, 200, 200));
        assert!((w[0].min_face - 48.0).abs() < 1e-3);
    }

    #[test]
    fn empty_unchanged_scene_costs_nothing_until_the_periodic_rescan() {
        let params = RoiParams { full_every: 4, still_full_every: 4, ..RoiParams::default() };
        let mut p = RegionPlanner::new(params);
        let img = frame(50);
        let mut plans = Vec::new();
        for _ in 0..8 {
            let plan = p.plan(0, &img, 40.0);
            p.observe(0, &plan, &[]);
            plans.push(plan);
        }
        let full: Vec<bool> = plans.iter().map(|pl| *pl == Plan::Full).collect();
        assert_eq!(full, [true, false, false, false, true, false, false, false]);
        assert!(plans.iter().all(|pl| *pl == Plan::Full || *pl == Plan::Windows(vec![])));
    }

    #[test]
    fn a_still_scene_is_rescanned_less_often_but_a_slow_change_is_not_missed() {
        let params = RoiParams { full_every: 3, still_full_every: 9, ..RoiParams::default() };
        let mut p = RegionPlanner::new(params);
        let run = |p: &mut RegionPlanner, img: &RgbImage| {
            let plan = p.plan(0, img, 40.0);
            p.observe(0, &plan, &[]);
            plan == Plan::Full
        };
        let still = frame(60);
        let full: Vec<bool> = (0..10).map(|_| run(&mut p, &still)).collect();
        assert_eq!(full, [true, false, false, false, false, false, false, false, false, true]);
        // A change too slow for the frame-to-frame check (5 grey levels a frame, threshold 12)
        // adds up against the last whole scan's picture: rescanned at the normal period.
        let full: Vec<bool> = (1..=3).map(|k| run(&mut p, &frame(60 + 5 * k))).collect();
        assert_eq!(full, [false, false, true]);
    }

    #[test]
    fn a_change_outside_the_windows_triggers_a_whole_scan() {
        let mut p = RegionPlanner::new(RoiParams::default());
        assert_eq!(p.plan(0, &frame(50), 40.0), Plan::Full);
        p.observe(0, &Plan::Full, &[face(300.0, 200.0, 80.0)]);
        assert!(matches!(p.plan(0, &frame(50), 40.0), Plan::Windows(_)));
        p.observe(0, &Plan::Windows(vec![]), &[face(302.0, 200.0, 80.0)]);
        // Someone walks in on the left: the whole frame is scanned.
        let mut img = frame(50);
        for y in 100..400 {
            for x in 0..200 {
                img.put_pixel(x, y, image::Rgb([200, 200, 200]));
            }
        }
        assert_eq!(p.plan(0, &img, 40.0), Plan::Full);
        // A change inside the window (the tracked face moving) does not.
        p.observe(0, &Plan::Full, &[face(302.0, 200.0, 80.0)]);
        let mut moved = img.clone();
        for y in 210..270 {
            for x in 310..370 {
                moved.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        assert!(matches!(p.plan(0, &moved, 40.0), Plan::Windows(_)));
    }

    #[test]
    fn a_small_face_walking_into_an_empty_scene_is_scanned_for_at_once() {
        let mut p = RegionPlanner::new(RoiParams::default());
        let img = frame(90);
        assert_eq!(p.plan(0, &img, 40.0), Plan::Full);
        p.observe(0, &Plan::Full, &[]);
        assert_eq!(p.plan(0, &img, 40.0), Plan::Windows(vec![]));
        p.observe(0, &Plan::Windows(vec![]), &[]);
        let mut head = img.clone();
        for y in 300..370 {
            for x in 280..350 {
                head.put_pixel(x, y, image::Rgb([170, 140, 120]));
            }
        }
        assert_eq!(p.plan(0, &head, 40.0), Plan::Full, "a 70 px head must trigger a whole scan");
        // Slight noise everywhere does not.
        p.observe(0, &Plan::Full, &[]);
        let mut noisy = head.clone();
        noisy.pixels_mut().enumerate().for_each(|(i, px)| px.0[0] = px.0[0].saturating_add((i % 5) as u8));
        assert_eq!(p.plan(0, &noisy, 40.0), Plan::Windows(vec![]));
    }

    #[test]
    fn a_face_missed_in_its_window_is_kept_a_few_frames_then_dropped() {
        let params = RoiParams { keep_frames: 2, full_every: 100, ..RoiParams::default() };
        let mut p = RegionPlanner::new(params);
        let img = frame(80);
        p.plan(0, &img, 40.0);
        p.observe(0, &Plan::Full, &[face(100.0, 100.0, 60.0)]);
        let mut windows = Vec::new();
        for _ in 0..4 {
            let plan = p.plan(0, &img, 40.0);
            let Plan::Windows(w) = &plan else { panic!("expected windows") };
            windows.push(w.len());
            p.observe(0, &plan, &[]);
        }
        assert_eq!(windows, [1, 1, 1, 0]);
    }

    #[test]
    fn overlapping_windows_merge_and_cameras_are_independent() {
        let mut p = RegionPlanner::new(RoiParams::default());
        let img = frame(10);
        p.plan(0, &img, 40.0);
        p.plan(1, &img, 40.0);
        p.observe(0, &Plan::Full, &[face(100.0, 100.0, 60.0), face(180.0, 110.0, 60.0)]);
        p.observe(1, &Plan::Full, &[]);
        let Plan::Windows(w) = p.plan(0, &img, 40.0) else { panic!("expected windows") };
        assert_eq!(w.len(), 1, "two neighbours share one window");
        assert_eq!((w[0].x, w[0].x + w[0].w), (55, 285));
        assert_eq!(p.plan(1, &img, 40.0), Plan::Windows(vec![]));
    }

    #[test]
    fn disabled_or_invalid_settings() {
        let mut p = RegionPlanner::new(RoiParams { enabled: false, ..RoiParams::default() });
        let img = frame(10);
        p.plan(0, &img, 40.0);
        p.observe(0, &Plan::Full, &[face(100.0, 100.0, 60.0)]);
        assert_eq!(p.plan(0, &img, 40.0), Plan::Full);
        let bad = RoiParams { full_every: 0, ..RoiParams::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("detector.roi.full_every"));
        let bad = RoiParams { full_every: 10, still_full_every: 5, ..RoiParams::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("detector.roi.still_full_every"));
        assert!(RoiParams::default().validate().is_ok());
    }
}
