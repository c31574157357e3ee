//! Turns per-frame identifications of a tracked face into one decision: a person is recognised
//! when `needed` of the last `window` frames name them; a face is unknown when `needed` frames
//! name nobody. Each track is decided once; a person recognised again at the same door within the
//! cooldown produces no second decision.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use super::tracker::TrackId;
use crate::gallery::matcher::Identification;
use crate::vision::bbox::BBox;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteConfig {
    /// Frames voted over.
    pub window: usize,
    /// Votes needed for a decision (k of `window`).
    pub needed: usize,
    /// Quiet time per person per door after a decision.
    #[serde(with = "millis")]
    pub cooldown: Duration,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl VoteConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.needed == 0 || self.needed > self.window {
            anyhow::bail!("decide: `needed` must be between 1 and `window` (got {} of {})", self.needed, self.window);
        }
        Ok(())
    }
}

/// What was decided about a face.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Recognised {
        person: String,
        similarity: f32,
        margin: f32,
    },
    Unknown,
    /// The face's liveness vote failed (a print or a screen, most likely): the door stays shut
    /// whoever it resembles. `person` is who it would have been recognised as, if anyone.
    SpoofSuspected {
        person: Option<String>,
        similarity: Option<f32>,
        liveness: f32,
    },
}

/// A decision with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub camera: String,
    pub track: TrackId,
    /// Clock time of the frame that completed the vote.
    #[serde(with = "millis")]
    pub at: Duration,
    pub bbox: BBox,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Votes for the outcome, out of `window` frames seen.
    pub votes: usize,
    pub window: usize,
}

#[derive(Debug, Default)]
struct TrackVotes {
    votes: VecDeque<Option<(String, f32, f32)>>,
    decided: bool,
}

#[derive(Debug)]
pub struct Voter {
    config: VoteConfig,
    tracks: HashMap<(String, TrackId), TrackVotes>,
    last_decision: HashMap<(String, String), Duration>,
    suppressed: u64,
}

impl Voter {
    pub fn new(config: VoteConfig) -> Voter {
        Voter { config, tracks: HashMap::new(), last_decision: HashMap::new(), suppressed: 0 }
    }

    /// Whether a track still needs identifications (decided tracks are not re-embedded).
    pub fn needs_identification(&self, camera: &str, track: TrackId) -> bool {
        !self.tracks.get(&(camera.to_string(), track)).is_some_and(|t| t.decided)
    }

    /// Decisions held back by the cooldown so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Adds one frame's identification of a track; returns a decision when the vote completes.
    pub fn observe(
        &mut self,
        now: Duration,
        camera: &str,
        track: TrackId,
        bbox: BBox,
        identification: &Identification,
    ) -> Option<Decision> {
        let config = self.config;
        let state = self.tracks.entry((camera.to_string(), track)).or_default();
        if state.decided {
            return None;
        }
        state.votes.push_back(match identification {
            Identification::Match { person, similarity, margin } => Some((person.clone(), *similarity, *margin)),
            Identification::Unknown { .. } => None,
        });
        while state.votes.len() > config.window {
            state.votes.pop_front();
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (person, _, _) in state.votes.iter().flatten() {
            *counts.entry(person.as_str()).or_default() += 1;
        }
        // The person with the most votes; a shared top count waits (defensive: one vote arrives
        // per frame, so the first to reach `needed` is normally alone).
        let top = counts.values().copied().max().unwrap_or(0);
        let mut leaders = counts.iter().filter(|(_, n)| **n == top);
        let leader = match (leaders.next(), leaders.next()) {
            (Some((p, n)), None) => Some((p.to_string(), *n)),
            _ => None,
        };
        let unknown_votes = state.votes.iter().filter(|v| v.is_none()).count();
        let (outcome, votes) = match leader {
            Some((person, n)) if n >= config.needed => {
                let mine = state.votes.iter().flatten().filter(|(p, _, _)| *p == person);
                let (similarity, margin) =
                    mine.fold((f32::MIN, f32::MAX), |(s, m), (_, sim, mar)| (s.max(*sim), m.min(*mar)));
                (Outcome::Recognised { person, similarity, margin }, n)
            }
            _ if unknown_votes >= config.needed => (Outcome::Unknown, unknown_votes),
            _ => return None,
        };
        state.decided = true;
        if let Outcome::Recognised { person, .. } = &outcome {
            let key = (camera.to_string(), person.clone());
            if let Some(&last) = self.last_decision.get(&key)
                && now.saturating_sub(last) < config.cooldown
            {
                self.suppressed += 1;
                return None;
            }
            self.last_decision.insert(key, now);
        }
        Some(Decision { camera: camera.to_string(), track, at: now, bbox, outcome, votes, window: config.window })
    }

    /// Lifts the cooldown a decision just set for `person` at `camera` (the decision turned out
    /// to be a spoof: a photo of someone must not lock the real person out for the cooldown).
    pub fn release_cooldown(&mut self, camera: &str, person: &str) {
        self.last_decision.remove(&(camera.to_string(), person.to_string()));
    }

    /// Drops the votes of a track that left the picture.
    pub fn forget(&mut self, camera: &str, track: TrackId) {
        self.tracks.remove(&(camera.to_string(), track));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::clock::{Clock, SimulatedClock};
    use crate::gallery::matcher::UnknownReason;

    const BOX: BBox = BBox { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0, score: 1.0 };
    const FRAME: Duration = Duration::from_millis(66);

    fn config() -> VoteConfig {
        VoteConfig { window: 5, needed: 3, cooldown: Duration::from_secs(10) }
    }

    fn seen(person: &str, similarity: f32) -> Identification {
        Identification::Match { person: person.into(), similarity, margin: 0.3 }
    }

    fn nobody() -> Identification {
        Identification::Unknown { nearest: None, similarity: 0.1, margin: 0.0, reason: UnknownReason::BelowThreshold }
    }

    #[test]
    fn three_of_five_frames_recognise_once_with_evidence() {
        let clock = SimulatedClock::default();
        let mut v = Voter::new(config());
        let frames = [seen("ann", 0.7), nobody(), seen("ann", 0.8), seen("ann", 0.75), seen("ann", 0.9)];
        let mut decisions = Vec::new();
        for f in &frames {
            clock.advance(FRAME);
            decisions.extend(v.observe(clock.now(), "door", 1, BOX, f));
        }
        assert_eq!(decisions.len(), 1, "{decisions:?}");
        let d = &decisions[0];
        assert_eq!(d.outcome, Outcome::Recognised { person: "ann".into(), similarity: 0.8, margin: 0.3 });
        assert_eq!((d.votes, d.window), (3, 5));
        assert_eq!(d.at, FRAME * 4, "decided on the fourth frame");
        assert!(!v.needs_identification("door", 1));
    }

    #[test]
    fn a_face_nobody_knows_gives_one_unknown_decision() {
        let clock = SimulatedClock::default();
        let mut v = Voter::new(config());
        let mut decisions = Vec::new();
        for _ in 0..8 {
            clock.advance(FRAME);
            decisions.extend(v.observe(clock.now(), "door", 7, BOX, &nobody()));
        }
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].outcome, Outcome::Unknown);
    }

    #[test]
    fn split_votes_decide_nothing() {
        let mut v = Voter::new(config());
        let mut t = Duration::ZERO;
        for f in [seen("ann", 0.6), seen("bob", 0.6), nobody(), seen("ann", 0.6), seen("bob", 0.6)] {
            t += FRAME;
            assert!(v.observe(t, "door", 1, BOX, &f).is_none());
        }
    }

    #[test]
    fn cooldown_is_per_person_per_door_and_ends() {
        let clock = SimulatedClock::default();
        let mut v = Voter::new(config());
        let mut decide = |track: TrackId, camera: &str| {
            let mut out = None;
            for _ in 0..3 {
                clock.advance(FRAME);
                out = out.or(v.observe(clock.now(), camera, track, BOX, &seen("ann", 0.8)));
            }
            out
        };
        assert!(decide(1, "front").is_some());
        assert!(decide(2, "front").is_none(), "same person, same door, within cooldown");
        assert!(decide(3, "back").is_some(), "another door has its own cooldown");
        clock.advance(Duration::from_secs(11));
        assert!(decide(4, "front").is_some(), "cooldown over");
    }

    #[test]
    fn the_first_person_to_reach_the_needed_votes_is_decided() {
        let mut v = Voter::new(VoteConfig { window: 4, needed: 2, cooldown: Duration::ZERO });
        let mut t = Duration::ZERO;
        let mut out = Vec::new();
        for f in [seen("ann", 0.6), seen("bob", 0.6), seen("ann", 0.6), seen("bob", 0.6)] {
            t += FRAME;
            out.extend(v.observe(t, "door", 1, BOX, &f));
        }
        // ann reaches 2 votes first (frame 3) and is decided; bob's later vote changes nothing.
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0].outcome, Outcome::Recognised { person, .. } if person == "ann"));
        let mut v = Voter::new(VoteConfig { window: 4, needed: 1, cooldown: Duration::ZERO });
        assert!(v.observe(t, "door", 2, BOX, &seen("ann", 0.6)).is_some(), "one vote suffices when needed = 1");
    }

    #[test]
    fn config_validation_names_the_problem() {
        assert!(VoteConfig { window: 3, needed: 4, cooldown: Duration::ZERO }.validate().is_err());
        assert!(config().validate().is_ok());
    }
}
