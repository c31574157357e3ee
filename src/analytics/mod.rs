//! Lobby statistics (`[analyze]` in `facegate run`): counts of estimated age band, gender and
//! dominant expression per camera per hour. Pure code: the act stage feeds it the attributes of
//! decided faces, the store keeps the counts, MQTT and the web console read them through the
//! service API. Nothing here takes part in deciding who gets in.
//!
//! Hours are the site's local hours (`service.time_zone`), keyed by the instant they start, so
//! an hour repeated when the clocks go back is two hours, and an hour skipped is none.

pub mod config;

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::vision::attributes::{EMOTIONS, FaceAttributes};

pub use config::AnalyzeConfig;

/// The age bands counted, youngest first: (key, lowest age in years, exclusive upper bound).
/// An estimate of 17.9 years is `under_18`, 18.0 is `18_29`.
pub const AGE_BANDS: [(&str, f32, f32); 5] = [
    ("under_18", f32::NEG_INFINITY, 18.0),
    ("18_29", 18.0, 30.0),
    ("30_44", 30.0, 45.0),
    ("45_64", 45.0, 65.0),
    ("65_plus", 65.0, f32::INFINITY),
];

/// The gender keys counted (DeepFace's `Woman`/`Man`, lower case).
pub const GENDERS: [&str; 2] = ["woman", "man"];

/// The band key of an estimated age; `None` for an estimate that is not a number.
pub fn age_band(age: f32) -> Option<&'static str> {
    AGE_BANDS.iter().find(|(_, low, high)| age >= *low && age < *high).map(|(key, _, _)| *key)
}

/// What one face adds to its hour: one age band, one gender, one expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub age: &'static str,
    pub gender: &'static str,
    pub emotion: &'static str,
}

impl Tally {
    /// The buckets of one face; `None` when the estimate is unusable (an age or a probability
    /// that is not a number), which is then not counted at all rather than counted wrongly.
    pub fn of(a: &FaceAttributes) -> Option<Tally> {
        if !a.woman.is_finite() || a.emotion.iter().any(|p| !p.is_finite()) {
            return None;
        }
        let gender = if a.dominant_gender() == "Woman" { GENDERS[0] } else { GENDERS[1] };
        Some(Tally { age: age_band(a.age)?, gender, emotion: a.dominant_emotion() })
    }

    /// The stored bucket names (`age:18_29`, `gender:woman`, `emotion:happy`).
    pub fn buckets(&self) -> [String; 3] {
        [format!("age:{}", self.age), format!("gender:{}", self.gender), format!("emotion:{}", self.emotion)]
    }
}

/// The local hour `at` falls in, as the instants it starts and ends.
pub fn hour_of(at: Timestamp, tz: &TimeZone) -> (Timestamp, Timestamp) {
    let start = hour_start(at, tz);
    // An hour of real time later is the next local hour's start, except across a half-hour
    // shift of the clocks, where it is in the middle of one: that hour's start ends this one.
    let next = start.checked_add(SignedDuration::from_hours(1)).unwrap_or(Timestamp::MAX);
    let end = Some(hour_start(next, tz)).filter(|end| *end > start).unwrap_or(next);
    (start, end)
}

/// The start of the local hour `at` falls in: `at` less the local minutes and seconds (so an
/// hour repeated when the clocks go back starts twice, once per offset).
fn hour_start(at: Timestamp, tz: &TimeZone) -> Timestamp {
    let z = at.to_zoned(tz.clone());
    let into = SignedDuration::new(i64::from(z.minute()) * 60 + i64::from(z.second()), z.subsec_nanosecond());
    at.checked_sub(into).unwrap_or(at)
}

/// One camera's counts for one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounts {
    pub camera: String,
    /// When the hour starts and ends (UTC instants of the local hour).
    pub start: Timestamp,
    pub end: Timestamp,
    /// The hour is over: these counts are final.
    pub complete: bool,
    /// Faces counted.
    pub faces: u64,
    /// By [`AGE_BANDS`] key, every band present (0 when none).
    pub age: BTreeMap<String, u64>,
    /// By [`GENDERS`] key.
    pub gender: BTreeMap<String, u64>,
    /// By dominant expression, every one of [`EMOTIONS`].
    pub emotion: BTreeMap<String, u64>,
}

impl HourCounts {
    /// An hour with nothing counted yet.
    pub fn empty(camera: &str, start: Timestamp, end: Timestamp) -> HourCounts {
        let zeros = |keys: &[&str]| keys.iter().map(|k| (k.to_string(), 0)).collect();
        let bands: Vec<&str> = AGE_BANDS.iter().map(|b| b.0).collect();
        HourCounts {
            camera: camera.to_string(),
            start,
            end,
            complete: false,
            faces: 0,
            age: zeros(&bands),
            gender: zeros(&GENDERS),
            emotion: zeros(&EMOTIONS),
        }
    }

    /// Adds `n` to a stored bucket (`age:18_29`); an unknown bucket is ignored (a newer build
    /// may count more).
    pub fn add_bucket(&mut self, bucket: &str, n: u64) {
        let Some((dimension, key)) = bucket.split_once(':') else { return };
        let map = match dimension {
            "age" => &mut self.age,
            "gender" => &mut self.gender,
            "emotion" => &mut self.emotion,
            _ => return,
        };
        if let Some(count) = map.get_mut(key) {
            *count += n;
        }
    }

    /// Adds one face.
    pub fn add(&mut self, tally: &Tally) {
        self.faces += 1;
        for bucket in tally.buckets() {
            self.add_bucket(&bucket, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(age: f32, woman: f32, dominant: usize) -> FaceAttributes {
        let mut emotion = [0.02; 7];
        emotion[dominant] = 0.88;
        FaceAttributes { age, age_spread: None, woman, emotion }
    }

    #[test]
    fn ages_fall_into_the_stated_bands_at_their_edges() {
        for (age, band) in [
            (0.0, "under_18"),
            (17.99, "under_18"),
            (18.0, "18_29"),
            (29.99, "18_29"),
            (30.0, "30_44"),
            (44.9, "30_44"),
            (45.0, "45_64"),
            (64.99, "45_64"),
            (65.0, "65_plus"),
            (101.0, "65_plus"),
        ] {
            assert_eq!(age_band(age), Some(band), "age {age}");
        }
        assert_eq!(age_band(f32::NAN), None);
    }

    #[test]
    fn a_face_adds_one_to_each_dimension_and_bad_estimates_are_not_counted() {
        let t = Tally::of(&face(31.0, 0.8, 3)).unwrap();
        assert_eq!(t, Tally { age: "30_44", gender: "woman", emotion: "happy" });
        assert_eq!(Tally::of(&face(70.0, 0.2, 6)).unwrap().gender, "man");
        assert_eq!(Tally::of(&face(f32::NAN, 0.8, 3)), None);
        assert_eq!(Tally::of(&face(30.0, f32::NAN, 3)), None);
        let mut broken = face(30.0, 0.5, 3);
        broken.emotion[0] = f32::INFINITY;
        assert_eq!(Tally::of(&broken), None);

        let (start, end) = hour_of("2026-12-02T10:15:00Z".parse().unwrap(), &TimeZone::UTC);
        let mut h = HourCounts::empty("front", start, end);
        h.add(&t);
        h.add(&Tally::of(&face(20.0, 0.1, 3)).unwrap());
        assert_eq!(h.faces, 2);
        assert_eq!((h.age["30_44"], h.age["18_29"], h.age["under_18"]), (1, 1, 0));
        assert_eq!((h.gender["woman"], h.gender["man"]), (1, 1));
        assert_eq!((h.emotion["happy"], h.emotion["sad"]), (2, 0));
        assert_eq!(h.age.len(), 5);
        assert_eq!(h.emotion.len(), 7);
        h.add_bucket("race:any", 1);
        h.add_bucket("age:90_99", 1);
        assert_eq!(h.age.values().sum::<u64>(), 2, "unknown buckets are ignored");
    }

    #[test]
    fn hours_are_local_hours_and_their_edges_belong_to_the_later_hour() {
        let utc = TimeZone::UTC;
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            hour_of(ts("2026-12-02T10:59:59.999Z"), &utc),
            (ts("2026-12-02T10:00:00Z"), ts("2026-12-02T11:00:00Z"))
        );
        assert_eq!(hour_of(ts("2026-12-02T11:00:00Z"), &utc), (ts("2026-12-02T11:00:00Z"), ts("2026-12-02T12:00:00Z")));
        // Kathmandu is UTC+05:45: its hours start at a quarter past the UTC hour.
        let ktm = TimeZone::get("Asia/Kathmandu").unwrap();
        assert_eq!(hour_of(ts("2026-12-02T10:20:00Z"), &ktm), (ts("2026-12-02T10:15:00Z"), ts("2026-12-02T11:15:00Z")));
        assert_eq!(hour_of(ts("2026-12-02T10:14:59Z"), &ktm).0, ts("2026-12-02T09:15:00Z"));
    }

    #[test]
    fn the_hour_repeated_when_clocks_go_back_is_two_hours() {
        // Europe/Berlin leaves summer time on 2026-10-25: 03:00 CEST becomes 02:00 CET, so the
        // local hour 02:00-03:00 happens twice (00:00-01:00 and 01:00-02:00 UTC).
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let first = hour_of(ts("2026-10-25T00:30:00Z"), &berlin);
        let second = hour_of(ts("2026-10-25T01:30:00Z"), &berlin);
        assert_eq!(first, (ts("2026-10-25T00:00:00Z"), ts("2026-10-25T01:00:00Z")));
        assert_eq!(second, (ts("2026-10-25T01:00:00Z"), ts("2026-10-25T02:00:00Z")));
        // Spring forward (2026-03-29, 02:00 CET -> 03:00 CEST): the hour before ends at 03:00
        // local, one real hour later; no hour is lost or doubled.
        let before = hour_of(ts("2026-03-29T00:30:00Z"), &berlin);
        assert_eq!(before, (ts("2026-03-29T00:00:00Z"), ts("2026-03-29T01:00:00Z")));
        assert_eq!(hour_of(ts("2026-03-29T01:00:00Z"), &berlin).0, ts("2026-03-29T01:00:00Z"));
    }
}
