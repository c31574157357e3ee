//! Deciding over several frames: track faces, vote on who they are, apply cooldowns, and emit
//! one decision per face with its evidence. Time comes from an injectable [`clock::Clock`].
//!
//! The [`Decider`] is pure state: the service feeds it each frame's face boxes, embeds only the
//! faces it says still need identifying, and feeds the identifications back.

pub mod clock;
pub mod fusion;
pub mod liveness;
pub mod policy;
pub mod tracker;
pub mod voter;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::gallery::matcher::Identification;
use crate::vision::bbox::BBox;
use crate::vision::embed::Embedding;
use fusion::Fusion;
use tracker::{TrackId, Tracker};
use voter::{Decision, VoteConfig, Voter};

/// `[decide]`: how faces are followed and voted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecideConfig {
    /// Frames voted over per face.
    pub window: usize,
    /// Frames that must agree (k of `window`) before a decision.
    pub needed: usize,
    /// Quiet time per person per camera after a decision, in milliseconds.
    pub cooldown_ms: u64,
    /// Box overlap (IoU) that continues a track from one frame to the next.
    pub min_iou: f32,
    /// A track not seen for this long ends, in milliseconds.
    pub track_max_age_ms: u64,
    /// A face out of sight for this long (and for two frames or more) that reappears where its
    /// track was is a new visit: a new track, decided afresh (someone stepping in where a decided
    /// face or a refused photo just was). Shorter gaps are detector flicker and continue the
    /// track. At or above `track_max_age_ms` the track has ended anyway.
    pub new_visit_gap_ms: u64,
    /// Faces narrower than this (pixels) are tracked but not identified yet: a face far from the
    /// door is too small to judge, and an early "unknown" would close its track for good.
    pub min_identify_px: f32,
    /// Faces whose quality score (0..1, `vision::quality`) is below this are tracked but not
    /// identified: a blurred or turned-away frame says little and could close the track early.
    pub min_quality: f32,
    /// A track is identified from the quality-weighted mean of its best this-many frames
    /// (1 = each frame on its own).
    pub fuse_frames: usize,
}

impl Default for DecideConfig {
    fn default() -> Self {
        DecideConfig {
            window: 5,
            needed: 3,
            cooldown_ms: 10_000,
            min_iou: 0.3,
            track_max_age_ms: 1_000,
            new_visit_gap_ms: 500,
            min_identify_px: 60.0,
            min_quality: 0.2,
            fuse_frames: 3,
        }
    }
}

impl DecideConfig {
    pub fn validate(&self) -> Result<()> {
        if self.window == 0 || self.window > 50 {
            bail!("decide.window must be between 1 and 50 frames (got {})", self.window);
        }
        if self.needed == 0 || self.needed > self.window {
            bail!("decide.needed must be between 1 and decide.window = {} (got {})", self.window, self.needed);
        }
        if !(self.min_iou > 0.0 && self.min_iou < 1.0) {
            bail!("decide.min_iou must be between 0 and 1 (got {})", self.min_iou);
        }
        if self.track_max_age_ms == 0 {
            bail!("decide.track_max_age_ms must be positive");
        }
        if self.new_visit_gap_ms == 0 {
            bail!("decide.new_visit_gap_ms must be positive (at least track_max_age_ms turns new visits off)");
        }
        if self.min_identify_px.is_nan() || self.min_identify_px < 0.0 {
            bail!("decide.min_identify_px must be 0 or more pixels (got {})", self.min_identify_px);
        }
        if !(0.0..=1.0).contains(&self.min_quality) {
            bail!("decide.min_quality must be between 0 and 1 (got {})", self.min_quality);
        }
        if self.fuse_frames == 0 || self.fuse_frames > 50 {
            bail!("decide.fuse_frames must be between 1 and 50 (got {})", self.fuse_frames);
        }
        Ok(())
    }

    fn votes(&self) -> VoteConfig {
        VoteConfig { window: self.window, needed: self.needed, cooldown: Duration::from_millis(self.cooldown_ms) }
    }
}

/// A face of the current frame as the decider sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackedFace {
    pub track: TrackId,
    /// Whether this face should be embedded and identified in this frame.
    pub needs_identification: bool,
}

/// Trackers per camera plus one voter: the whole multi-frame decision state.
#[derive(Debug)]
pub struct Decider {
    config: DecideConfig,
    trackers: HashMap<String, Tracker>,
    voter: Voter,
    liveness: liveness::LivenessVotes,
    fusion: Fusion,
    /// Per-camera `min_identify_px` overrides.
    min_identify_px: HashMap<String, f32>,
}

impl Decider {
    pub fn new(config: DecideConfig) -> Result<Decider> {
        config.validate()?;
        let voter = Voter::new(config.votes());
        let liveness = liveness::LivenessVotes::new(None, config.window);
        let fusion = Fusion::new(config.fuse_frames);
        Ok(Decider { config, trackers: HashMap::new(), voter, liveness, fusion, min_identify_px: HashMap::new() })
    }

    /// Turns the liveness vote on (`Some(threshold)` on the mean score) or off (`None`).
    pub fn with_liveness(mut self, threshold: Option<f32>) -> Decider {
        self.liveness = liveness::LivenessVotes::new(threshold, self.config.window);
        self
    }

    /// Adds one frame's liveness score of a tracked face (call before [`Decider::vote`] for
    /// the same frame).
    pub fn observe_liveness(&mut self, camera: &str, track: TrackId, score: f32) {
        self.liveness.observe(camera, track, score);
    }

    /// Sets a camera's own `min_identify_px` (a dim back door may need larger faces).
    pub fn set_min_identify_px(&mut self, camera: &str, px: f32) {
        self.min_identify_px.insert(camera.to_string(), px);
    }

    /// Adds one frame's embedding of a track and returns the embedding to identify: the
    /// quality-weighted mean of the track's best `fuse_frames` frames.
    pub fn fuse(&mut self, camera: &str, track: TrackId, embedding: Embedding, quality: f32) -> Embedding {
        self.fusion.add(camera, track, embedding, quality)
    }

    pub fn config(&self) -> &DecideConfig {
        &self.config
    }

    /// Follows one frame's face boxes on `camera`; ends tracks that left the picture.
    pub fn track(&mut self, camera: &str, now: Duration, boxes: &[BBox]) -> Vec<TrackedFace> {
        let (min_iou, max_age, gap) = (
            self.config.min_iou,
            Duration::from_millis(self.config.track_max_age_ms),
            Duration::from_millis(self.config.new_visit_gap_ms),
        );
        let tracker = self.trackers.entry(camera.to_string()).or_insert_with(|| Tracker::new(min_iou, max_age, gap));
        let (ids, expired) = tracker.update(now, boxes);
        for track in expired {
            self.voter.forget(camera, track);
            self.liveness.forget(camera, track);
            self.fusion.forget(camera, track);
        }
        let min_px = self.min_identify_px.get(camera).copied().unwrap_or(self.config.min_identify_px);
        ids.into_iter()
            .zip(boxes)
            .map(|(track, bbox)| TrackedFace {
                track,
                needs_identification: bbox.width() >= min_px && self.voter.needs_identification(camera, track),
            })
            .collect()
    }

    /// Adds one identification of a tracked face; returns a decision when the vote completes.
    pub fn vote(
        &mut self,
        camera: &str,
        now: Duration,
        track: TrackId,
        bbox: BBox,
        identification: &Identification,
    ) -> Option<Decision> {
        let decision = self.liveness.judge(self.voter.observe(now, camera, track, bbox, identification)?);
        if let voter::Outcome::SpoofSuspected { person: Some(person), .. } = &decision.outcome {
            self.voter.release_cooldown(camera, person);
        }
        Some(decision)
    }

    /// Decisions held back by the cooldown so far.
    pub fn suppressed(&self) -> u64 {
        self.voter.suppressed()
    }

    /// Faces being followed right now on one camera.
    pub fn active_tracks_on(&self, camera: &str) -> usize {
        self.trackers.get(camera).map_or(0, Tracker::active)
    }

    /// Faces being followed right now, over all cameras.
    pub fn active_tracks(&self) -> usize {
        self.trackers.values().map(Tracker::active).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::clock::{Clock, SimulatedClock};
    use crate::decide::voter::Outcome;
    use crate::gallery::matcher::UnknownReason;

    const FRAME: Duration = Duration::from_millis(66);

    fn face(x: f32, width: f32) -> BBox {
        BBox { x1: x, y1: 100.0, x2: x + width, y2: 100.0 + width * 1.2, score: 0.99 }
    }

    fn ann() -> Identification {
        Identification::Match { person: "ann".into(), similarity: 0.8, margin: 0.4 }
    }

    fn nobody() -> Identification {
        Identification::Unknown { nearest: None, similarity: 0.1, margin: 0.0, reason: UnknownReason::BelowThreshold }
    }

    /// Runs frames of one camera, identifying every face the decider asks for with `who`.
    fn run(
        d: &mut Decider,
        clock: &SimulatedClock,
        frames: &[Vec<BBox>],
        who: &dyn Fn(usize) -> Identification,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        for boxes in frames {
            clock.advance(FRAME);
            let now = clock.now();
            for (i, tracked) in d.track("door", now, boxes).into_iter().enumerate() {
                if tracked.needs_identification {
                    out.extend(d.vote("door", now, tracked.track, boxes[i], &who(i)));
                }
            }
        }
        out
    }

    #[test]
    fn a_walking_up_face_is_identified_only_once_it_is_large_enough() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig::default()).unwrap();
        // Small and unrecognisable far away (would vote "unknown"), then close and recognised.
        let frames: Vec<Vec<BBox>> = (0..12).map(|i| vec![face(200.0 + i as f32, 30.0 + 6.0 * i as f32)]).collect();
        let decisions = run(&mut d, &clock, &frames, &|_| ann());
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        assert!(matches!(&decisions[0].outcome, Outcome::Recognised { person, .. } if person == "ann"));
        // Faces reach 60 px at frame 6 (30 + 6*5); three votes later the decision comes.
        assert_eq!(decisions[0].at, FRAME * 8);
    }

    #[test]
    fn a_decided_track_is_not_identified_again_and_two_faces_get_two_decisions() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig::default()).unwrap();
        let frames: Vec<Vec<BBox>> = (0..8).map(|i| vec![face(50.0 + i as f32, 100.0), face(400.0, 100.0)]).collect();
        let decisions = run(&mut d, &clock, &frames, &|i| if i == 0 { ann() } else { nobody() });
        assert_eq!(decisions.len(), 2, "{decisions:?}");
        assert!(decisions.iter().any(|d| d.outcome == Outcome::Unknown));
        let tracked = d.track("door", clock.now() + FRAME, &[face(58.0, 100.0)]);
        assert!(!tracked[0].needs_identification, "decided tracks are not re-embedded");
    }

    #[test]
    fn a_face_that_leaves_and_returns_after_the_cooldown_is_decided_again() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig { cooldown_ms: 2_000, ..DecideConfig::default() }).unwrap();
        let visit: Vec<Vec<BBox>> = (0..5).map(|_| vec![face(100.0, 100.0)]).collect();
        assert_eq!(run(&mut d, &clock, &visit, &|_| ann()).len(), 1);
        // Gone long enough for the track to end, but within the cooldown: no second decision.
        clock.advance(Duration::from_millis(1_200));
        assert!(run(&mut d, &clock, &[vec![]], &|_| ann()).is_empty());
        assert_eq!(run(&mut d, &clock, &visit, &|_| ann()).len(), 0);
        assert_eq!(d.suppressed(), 1);
        clock.advance(Duration::from_millis(3_000));
        run(&mut d, &clock, &[vec![]], &|_| ann());
        assert_eq!(run(&mut d, &clock, &visit, &|_| ann()).len(), 1, "after the cooldown");
    }

    #[test]
    fn a_photo_is_denied_as_a_spoof_without_locking_the_real_person_out() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig::default()).unwrap().with_liveness(Some(0.8));
        let visit = |d: &mut Decider, score: f32| {
            let mut out = Vec::new();
            for _ in 0..5 {
                clock.advance(FRAME);
                let now = clock.now();
                for tracked in d.track("door", now, &[face(100.0, 100.0)]) {
                    if tracked.needs_identification {
                        d.observe_liveness("door", tracked.track, score);
                        out.extend(d.vote("door", now, tracked.track, face(100.0, 100.0), &ann()));
                    }
                }
            }
            clock.advance(Duration::from_millis(1_500));
            d.track("door", clock.now(), &[]);
            out
        };
        let photo = visit(&mut d, 0.1);
        assert!(
            matches!(&photo[..], [Decision { outcome: Outcome::SpoofSuspected { liveness, .. }, .. }]
            if (*liveness - 0.1).abs() < 1e-6),
            "{photo:?}"
        );
        // The real ann, well within the 10 s cooldown: decided, not suppressed.
        let live = visit(&mut d, 0.95);
        assert!(matches!(&live[..], [Decision { outcome: Outcome::Recognised { .. }, .. }]), "{live:?}");
    }

    /// The liveness clip's loop (issue 10): a tablet is refused, the corridor is empty for 10
    /// frames (667 ms, less than `track_max_age_ms`), then the live person steps in where the
    /// tablet was (box IoU 0.45). She is a new presentation and must be decided, not folded into
    /// the tablet's decided track (and its liveness scores).
    #[test]
    fn a_face_that_reappears_after_a_gap_is_a_new_visit_and_is_decided() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig::default()).unwrap().with_liveness(Some(0.9));
        let tablet = BBox { x1: 221.0, y1: 123.0, x2: 442.0, y2: 436.0, score: 0.99 };
        let live = BBox { x1: 198.0, y1: 114.0, x2: 365.0, y2: 359.0, score: 0.99 };
        assert!(tablet.iou(&live) > d.config().min_iou, "the two boxes would continue one track");
        let frames = |d: &mut Decider, bbox: Option<BBox>, score: f32, n: usize| {
            let mut out = Vec::new();
            for _ in 0..n {
                clock.advance(FRAME);
                let now = clock.now();
                let boxes: Vec<BBox> = bbox.into_iter().collect();
                for tracked in d.track("door", now, &boxes) {
                    if tracked.needs_identification {
                        d.observe_liveness("door", tracked.track, score);
                        out.extend(d.vote("door", now, tracked.track, boxes[0], &ann()));
                    }
                }
            }
            out
        };
        let refused = frames(&mut d, Some(tablet), 0.0, 40);
        assert!(matches!(&refused[..], [Decision { outcome: Outcome::SpoofSuspected { .. }, .. }]), "{refused:?}");
        assert!(frames(&mut d, None, 0.0, 10).is_empty());
        let granted = frames(&mut d, Some(live), 0.99, 40);
        assert!(matches!(&granted[..], [Decision { outcome: Outcome::Recognised { .. }, .. }]), "{granted:?}");
        assert_ne!(granted[0].track, refused[0].track, "a new visit is a new track");
    }

    /// A missed detection or two (a blink, a turned head) is not a new visit: the decided track
    /// carries on and nobody is decided twice.
    #[test]
    fn a_short_detection_gap_continues_the_decided_track() {
        let clock = SimulatedClock::default();
        let mut d = Decider::new(DecideConfig { cooldown_ms: 0, ..DecideConfig::default() }).unwrap();
        let visit: Vec<Vec<BBox>> = (0..6).map(|_| vec![face(100.0, 100.0)]).collect();
        assert_eq!(run(&mut d, &clock, &visit, &|_| nobody()).len(), 1);
        // Two frames missed (133 ms), then a single frame missed at 3 fps (a 667 ms gap): one track.
        assert!(run(&mut d, &clock, &[vec![], vec![]], &|_| nobody()).is_empty());
        assert!(run(&mut d, &clock, &visit, &|_| nobody()).is_empty(), "no second decision after 2 missed frames");
        clock.advance(Duration::from_millis(267));
        assert!(run(&mut d, &clock, &[vec![]], &|_| nobody()).is_empty());
        clock.advance(Duration::from_millis(267));
        assert!(run(&mut d, &clock, &visit, &|_| nobody()).is_empty(), "one missed frame at any frame rate");
        assert_eq!(d.active_tracks(), 1);
    }

    #[test]
    fn a_camera_override_of_min_identify_px_applies_to_that_camera_only() {
        let mut d = Decider::new(DecideConfig::default()).unwrap();
        d.set_min_identify_px("back", 100.0);
        let now = Duration::from_millis(66);
        assert!(d.track("door", now, &[face(0.0, 80.0)])[0].needs_identification);
        assert!(!d.track("back", now, &[face(0.0, 80.0)])[0].needs_identification);
        assert!(d.track("back", now * 2, &[face(0.0, 120.0)])[0].needs_identification);
    }

    #[test]
    fn fused_tracks_are_forgotten_when_they_end() {
        let mut d = Decider::new(DecideConfig::default()).unwrap();
        let t = d.track("door", Duration::from_millis(66), &[face(0.0, 100.0)])[0].track;
        d.fuse("door", t, vec![1.0, 0.0], 0.9);
        assert_eq!(d.fusion.tracks(), 1);
        d.track("door", Duration::from_secs(5), &[]);
        assert_eq!(d.fusion.tracks(), 0);
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = Decider::new(DecideConfig { needed: 9, ..DecideConfig::default() }).unwrap_err().to_string();
        assert!(err.contains("decide.needed"), "{err}");
        let err = Decider::new(DecideConfig { min_iou: 1.5, ..DecideConfig::default() }).unwrap_err().to_string();
        assert!(err.contains("decide.min_iou"), "{err}");
        let err = Decider::new(DecideConfig { min_quality: 2.0, ..DecideConfig::default() }).unwrap_err().to_string();
        assert!(err.contains("decide.min_quality"), "{err}");
    }
}
