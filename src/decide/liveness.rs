//! The liveness vote: each frame of a track being decided brings a liveness score; when the
//! identity vote completes, the mean score over the same window decides whether the face was
//! live. A failed vote turns any decision into `SpoofSuspected`, so a photo of an employee never
//! opens the door. With liveness on, a decision with no score at all also fails (fail secure).

use std::collections::{HashMap, VecDeque};

use super::tracker::TrackId;
use super::voter::{Decision, Outcome};

#[derive(Debug)]
pub struct LivenessVotes {
    /// `None`: liveness is off and decisions pass through unchanged.
    threshold: Option<f32>,
    window: usize,
    scores: HashMap<(String, TrackId), VecDeque<f32>>,
}

impl LivenessVotes {
    pub fn new(threshold: Option<f32>, window: usize) -> LivenessVotes {
        LivenessVotes { threshold, window: window.max(1), scores: HashMap::new() }
    }

    pub fn observe(&mut self, camera: &str, track: TrackId, score: f32) {
        if self.threshold.is_none() {
            return;
        }
        let scores = self.scores.entry((camera.to_string(), track)).or_default();
        scores.push_back(if score.is_finite() { score } else { 0.0 });
        while scores.len() > self.window {
            scores.pop_front();
        }
    }

    pub fn forget(&mut self, camera: &str, track: TrackId) {
        self.scores.remove(&(camera.to_string(), track));
    }

    /// The mean score of a track's window (0 when it has none).
    pub fn mean(&self, camera: &str, track: TrackId) -> f32 {
        match self.scores.get(&(camera.to_string(), track)) {
            Some(s) if !s.is_empty() => s.iter().sum::<f32>() / s.len() as f32,
            _ => 0.0,
        }
    }

    /// Applies the vote to a decision that just completed.
    pub fn judge(&mut self, mut decision: Decision) -> Decision {
        let Some(threshold) = self.threshold else { return decision };
        let liveness = self.mean(&decision.camera, decision.track);
        self.scores.remove(&(decision.camera.clone(), decision.track));
        if liveness >= threshold {
            return decision;
        }
        let (person, similarity) = match &decision.outcome {
            Outcome::Recognised { person, similarity, .. } => (Some(person.clone()), Some(*similarity)),
            _ => (None, None),
        };
        decision.outcome = Outcome::SpoofSuspected { person, similarity, liveness };
        decision
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vision::bbox::BBox;

    fn recognised() -> Decision {
        Decision {
            camera: "door".into(),
            track: 1,
            at: Duration::ZERO,
            bbox: BBox { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0, score: 1.0 },
            outcome: Outcome::Recognised { person: "amy".into(), similarity: 0.64, margin: 0.3 },
            votes: 3,
            window: 5,
        }
    }

    #[test]
    fn a_low_mean_score_over_the_window_turns_a_match_into_a_spoof() {
        let mut v = LivenessVotes::new(Some(0.5), 3);
        // The first (high) score falls out of the 3-frame window.
        for s in [0.99, 0.2, 0.6, 0.3] {
            v.observe("door", 1, s);
        }
        let d = v.judge(recognised());
        match d.outcome {
            Outcome::SpoofSuspected { person, similarity, liveness } => {
                assert_eq!((person.as_deref(), similarity), (Some("amy"), Some(0.64)));
                assert!((liveness - 1.1 / 3.0).abs() < 1e-6, "{liveness}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_live_face_passes_and_liveness_off_changes_nothing() {
        let mut v = LivenessVotes::new(Some(0.5), 5);
        for s in [0.4, 0.9, 0.8] {
            v.observe("door", 1, s);
        }
        assert_eq!(v.judge(recognised()), recognised());
        let mut off = LivenessVotes::new(None, 5);
        off.observe("door", 1, 0.0);
        assert_eq!(off.judge(recognised()), recognised());
    }

    #[test]
    fn no_score_at_all_fails_secure_and_nan_counts_as_zero() {
        let mut v = LivenessVotes::new(Some(0.5), 5);
        assert!(matches!(v.judge(recognised()).outcome, Outcome::SpoofSuspected { liveness: 0.0, .. }));
        v.observe("door", 1, f32::NAN);
        v.observe("door", 1, 0.99);
        assert!(matches!(v.judge(recognised()).outcome, Outcome::SpoofSuspected { .. }), "mean (0 + 0.99)/2 < 0.5");
    }
}
