//! Follows faces from frame to frame by box overlap, so identities can be voted over several
//! frames and a face is decided once, not on every frame.

use std::time::Duration;

use crate::vision::bbox::BBox;

/// Identifier of a track, unique for the tracker's lifetime.
pub type TrackId = u64;

#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    bbox: BBox,
    last_seen: Duration,
}

/// Greedy IoU tracker: each detection joins the unclaimed track it overlaps most (above a
/// threshold), or starts a new track; tracks not seen for `max_age` are dropped.
#[derive(Debug)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: TrackId,
    min_iou: f32,
    max_age: Duration,
}

impl Tracker {
    pub fn new(min_iou: f32, max_age: Duration) -> Tracker {
        Tracker { tracks: Vec::new(), next_id: 1, min_iou, max_age }
    }

    /// Assigns a track to every detection of a frame taken at `now`; returns the track ids in the
    /// order of `detections`, and the ids of tracks that expired.
    pub fn update(&mut self, now: Duration, detections: &[BBox]) -> (Vec<TrackId>, Vec<TrackId>) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let iou = det.iou(&track.bbox);
                if iou >= self.min_iou {
                    pairs.push((iou, d, t));
                }
            }
        }
        // Best overlaps first, each detection and track used once.
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut assigned: Vec<Option<usize>> = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if assigned[d].is_none() && !taken[t] {
                assigned[d] = Some(t);
                taken[t] = true;
            }
        }
        let mut ids = Vec::with_capacity(detections.len());
        for (d, det) in detections.iter().enumerate() {
            match assigned[d] {
                Some(t) => {
                    self.tracks[t].bbox = *det;
                    self.tracks[t].last_seen = now;
                    ids.push(self.tracks[t].id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track { id, bbox: *det, last_seen: now });
                    ids.push(id);
                }
            }
        }
        let max_age = self.max_age;
        let mut expired = Vec::new();
        self.tracks.retain(|t| {
            let alive = now.saturating_sub(t.last_seen) <= max_age;
            if !alive {
                expired.push(t.id);
            }
            alive
        });
        (ids, expired)
    }

    pub fn active(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32) -> BBox {
        BBox { x1: x, y1: y, x2: x + 100.0, y2: y + 100.0, score: 1.0 }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_moving_face_keeps_its_track_and_a_new_face_gets_a_new_one() {
        let mut t = Tracker::new(0.3, 500 * MS);
        let (first, _) = t.update(Duration::ZERO, &[b(0.0, 0.0)]);
        let (second, _) = t.update(66 * MS, &[b(10.0, 5.0), b(400.0, 0.0)]);
        assert_eq!(second[0], first[0]);
        assert_ne!(second[1], first[0]);
        assert_eq!(t.active(), 2);
    }

    #[test]
    fn two_faces_are_not_swapped_and_lost_tracks_expire() {
        let mut t = Tracker::new(0.3, 200 * MS);
        let (a, _) = t.update(Duration::ZERO, &[b(0.0, 0.0), b(150.0, 0.0)]);
        // Listed in the other order in the next frame: ids follow the boxes, not the order.
        let (c, _) = t.update(66 * MS, &[b(155.0, 0.0), b(5.0, 0.0)]);
        assert_eq!((c[0], c[1]), (a[1], a[0]));
        let (_, expired) = t.update(400 * MS, &[]);
        assert_eq!(expired.len(), 2);
        assert_eq!(t.active(), 0);
    }
}
