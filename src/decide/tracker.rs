//! Follows faces from frame to frame by box overlap, so identities can be voted over several
//! frames and a face is decided once, not on every frame.
//!
//! A track carries on across a missed detection or two, so presence does not flicker and a face
//! is not decided twice. A face that reappears where a track was after a real gap (out of sight
//! for `new_visit_gap` and for two frames or more) is a new visit and gets a new track: whoever
//! steps in where a decided face (or a refused tablet) just was is decided afresh, not folded into
//! the old track's decision and votes.

use std::time::Duration;

use crate::vision::bbox::BBox;

/// Identifier of a track, unique for the tracker's lifetime.
pub type TrackId = u64;

#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    bbox: BBox,
    last_seen: Duration,
    /// Frames in a row this track was not detected in.
    missed: u32,
}

/// Frames a track must miss in a row (besides `new_visit_gap`) before a face that reappears on
/// it counts as a new visit: one missed frame is detector flicker at any frame rate.
const NEW_VISIT_MISSED_FRAMES: u32 = 2;

/// Greedy IoU tracker: each detection joins the unclaimed track it overlaps most (above a
/// threshold), or starts a new track; tracks not seen for `max_age` are dropped; a track found
/// again after a gap of `new_visit_gap` (and two missed frames or more) goes on under a new id.
#[derive(Debug)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: TrackId,
    min_iou: f32,
    max_age: Duration,
    new_visit_gap: Duration,
}

impl Tracker {
    pub fn new(min_iou: f32, max_age: Duration, new_visit_gap: Duration) -> Tracker {
        Tracker { tracks: Vec::new(), next_id: 1, min_iou, max_age, new_visit_gap }
    }

    /// Assigns a track to every detection of a frame taken at `now`; returns the track ids in the
    /// order of `detections`, and the ids of tracks that ended (expired, or replaced by a new
    /// visit's id).
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
        let mut expired = Vec::new();
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !taken[t] {
                track.missed = track.missed.saturating_add(1);
            }
        }
        for (d, det) in detections.iter().enumerate() {
            match assigned[d] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    if track.missed >= NEW_VISIT_MISSED_FRAMES
                        && now.saturating_sub(track.last_seen) >= self.new_visit_gap
                    {
                        // Same place, but after a real gap: a new visit. The slot is reused so
                        // presence does not count the face twice.
                        expired.push(track.id);
                        track.id = self.next_id;
                        self.next_id += 1;
                    }
                    track.bbox = *det;
                    track.last_seen = now;
                    track.missed = 0;
                    ids.push(track.id);
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track { id, bbox: *det, last_seen: now, missed: 0 });
                    ids.push(id);
                }
            }
        }
        let max_age = self.max_age;
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
        let mut t = Tracker::new(0.3, 500 * MS, 400 * MS);
        let (first, _) = t.update(Duration::ZERO, &[b(0.0, 0.0)]);
        let (second, _) = t.update(66 * MS, &[b(10.0, 5.0), b(400.0, 0.0)]);
        assert_eq!(second[0], first[0]);
        assert_ne!(second[1], first[0]);
        assert_eq!(t.active(), 2);
    }

    #[test]
    fn two_faces_are_not_swapped_and_lost_tracks_expire() {
        let mut t = Tracker::new(0.3, 200 * MS, 400 * MS);
        let (a, _) = t.update(Duration::ZERO, &[b(0.0, 0.0), b(150.0, 0.0)]);
        // Listed in the other order in the next frame: ids follow the boxes, not the order.
        let (c, _) = t.update(66 * MS, &[b(155.0, 0.0), b(5.0, 0.0)]);
        assert_eq!((c[0], c[1]), (a[1], a[0]));
        let (_, expired) = t.update(400 * MS, &[]);
        assert_eq!(expired.len(), 2);
        assert_eq!(t.active(), 0);
    }

    #[test]
    fn a_face_back_after_a_gap_gets_a_new_id_and_flicker_keeps_the_old_one() {
        let mut t = Tracker::new(0.3, 1_000 * MS, 400 * MS);
        let (first, _) = t.update(Duration::ZERO, &[b(0.0, 0.0)]);
        // Missed in two frames (133 ms): flicker, same track.
        t.update(66 * MS, &[]);
        t.update(133 * MS, &[]);
        let (again, ended) = t.update(200 * MS, &[b(5.0, 0.0)]);
        assert_eq!((again[0], ended.len()), (first[0], 0));
        // Missed in one frame only, but 500 ms apart (a 2 fps camera): still flicker.
        t.update(700 * MS, &[]);
        let (again, ended) = t.update(1_200 * MS, &[b(5.0, 0.0)]);
        assert_eq!((again[0], ended.len()), (first[0], 0));
        // Out of sight for ten frames (667 ms, within max_age): a new visit in the same place.
        for i in 1..=10 {
            t.update((1_200 + 66 * i) * MS, &[]);
        }
        let (visit, ended) = t.update(1_867 * MS, &[b(0.0, 0.0)]);
        assert_ne!(visit[0], first[0]);
        assert_eq!(ended, vec![first[0]], "the old track ends so its votes are dropped");
        assert_eq!(t.active(), 1, "presence counts one face, not two");
    }
}
