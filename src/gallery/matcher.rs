//! In-memory search of enrolled templates: identify (1:N) and verify (1:1).
//!
//! Templates live in one contiguous row-major matrix. A search is one pass of dot products (unit
//! vectors, so dot = cosine) over an int8 copy of the matrix: a 100k gallery of 192-D templates
//! is 77 MB as floats, and reading that much per search is what bounds the speed, so the scan
//! reads the 19 MB int8 copy instead and only the two winning rows are re-scored in float. Int8
//! rounding moves a similarity by a few thousandths at most; only people that close to each
//! other could swap places, and such a near tie is refused as ambiguous by the margin anyway.

use serde::Serialize;

use super::Person;

/// Thresholds that turn similarities into a decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchPolicy {
    /// Minimum cosine similarity for a match.
    pub threshold: f32,
    /// Minimum lead of the best person over the runner-up (a different person).
    pub margin: f32,
}

/// The outcome of an identification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Identification {
    /// The best person clears the threshold and the margin.
    Match { person: String, similarity: f32, margin: f32 },
    /// Nobody clears the threshold and margin; `nearest` says who came closest.
    Unknown { nearest: Option<String>, similarity: f32, margin: f32, reason: UnknownReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    EmptyGallery,
    BelowThreshold,
    /// Two different people are too close to call.
    Ambiguous,
}

/// A search index over every template of every person.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    dim: usize,
    matrix: Vec<f32>,
    codes: Vec<i8>,
    code_scales: Vec<f32>,
    owner: Vec<u32>,
    names: Vec<String>,
}

/// Symmetric int8 quantisation of a vector: `v ≈ code * scale`.
fn quantise(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

/// Integer dot product of two int8 vectors (widened so it vectorises and cannot overflow).
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    acc.iter().sum::<i32>() + ra.iter().zip(rb).map(|(x, y)| *x as i32 * *y as i32).sum::<i32>()
}

/// A person index and a similarity.
pub type Scored = (u32, f32);

/// Dot product with eight independent accumulators so it vectorises without fast-math.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

impl Matcher {
    /// Builds the index; templates whose length is not `dim` are skipped with a warning.
    pub fn new(dim: usize, people: &[Person]) -> Matcher {
        let mut m = Matcher { dim, ..Matcher::default() };
        for person in people {
            m.add(person);
        }
        m
    }

    /// Adds one person's templates.
    pub fn add(&mut self, person: &Person) {
        let index = self.names.len() as u32;
        self.names.push(person.name.clone());
        for template in &person.templates {
            if template.len() != self.dim {
                log::warn!(
                    "skipping a template of {} with {} values (expected {})",
                    person.name,
                    template.len(),
                    self.dim
                );
                continue;
            }
            self.matrix.extend_from_slice(template);
            let scale = quantise(template, &mut self.codes);
            self.code_scales.push(scale);
            self.owner.push(index);
        }
    }

    pub fn templates(&self) -> usize {
        self.owner.len()
    }

    pub fn people(&self) -> usize {
        self.names.len()
    }

    /// Finds the best person and the best different person for a probe, with exact (float)
    /// similarities of their best templates.
    pub fn best_two(&self, probe: &[f32]) -> Option<(Scored, Option<Scored>)> {
        if probe.len() != self.dim || self.owner.is_empty() {
            return None;
        }
        let mut probe_codes = Vec::with_capacity(self.dim);
        let probe_scale = quantise(probe, &mut probe_codes);
        // (row, approximate similarity) of the best row and of the best row of another person.
        let mut best = (usize::MAX, f32::NEG_INFINITY);
        let mut second = (usize::MAX, f32::NEG_INFINITY);
        let rows = self.codes.chunks_exact(self.dim).zip(&self.code_scales).zip(&self.owner);
        for (row, ((codes, &scale), &owner)) in rows.enumerate() {
            let s = dot_i8(codes, &probe_codes) as f32 * scale * probe_scale;
            if s > best.1 {
                if best.0 != usize::MAX && owner != self.owner[best.0] {
                    second = best;
                }
                best = (row, s);
            } else if s > second.1 && owner != self.owner[best.0] {
                second = (row, s);
            }
        }
        let exact = |row: usize| (self.owner[row], dot(&self.matrix[row * self.dim..(row + 1) * self.dim], probe));
        let best = exact(best.0);
        let second = (second.0 != usize::MAX).then(|| exact(second.0));
        Some(match second {
            Some(s) if s.1 > best.1 => (s, Some(best)),
            other => (best, other),
        })
    }

    /// Identifies a probe embedding under a policy.
    pub fn identify(&self, probe: &[f32], policy: &MatchPolicy) -> Identification {
        let Some(((best, sim), second)) = self.best_two(probe) else {
            return Identification::Unknown {
                nearest: None,
                similarity: 0.0,
                margin: 0.0,
                reason: UnknownReason::EmptyGallery,
            };
        };
        // With one person enrolled the margin is measured against "nobody" (similarity 0).
        let margin = sim - second.map_or(0.0, |(_, s)| s.max(0.0));
        let person = self.names[best as usize].clone();
        if sim < policy.threshold {
            Identification::Unknown {
                nearest: Some(person),
                similarity: sim,
                margin,
                reason: UnknownReason::BelowThreshold,
            }
        } else if margin < policy.margin {
            Identification::Unknown { nearest: Some(person), similarity: sim, margin, reason: UnknownReason::Ambiguous }
        } else {
            Identification::Match { person, similarity: sim, margin }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::l2_normalised;

    fn person(name: &str, templates: &[&[f32]]) -> Person {
        Person { name: name.into(), templates: templates.iter().map(|t| l2_normalised(t)).collect() }
    }

    const POLICY: MatchPolicy = MatchPolicy { threshold: 0.5, margin: 0.05 };

    #[test]
    fn picks_best_person_over_threshold() {
        let m = Matcher::new(3, &[person("ann", &[&[1., 0., 0.]]), person("bob", &[&[0., 1., 0.], &[0., 0., 1.]])]);
        match m.identify(&l2_normalised(&[0.1, 0.2, 1.0]), &POLICY) {
            Identification::Match { person, similarity, .. } => {
                assert_eq!(person, "bob");
                assert!(similarity > 0.9);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn below_threshold_is_unknown_with_nearest() {
        let m = Matcher::new(3, &[person("ann", &[&[1., 0., 0.]])]);
        let got = m.identify(&l2_normalised(&[0.3, 1.0, 0.0]), &POLICY);
        assert!(
            matches!(got, Identification::Unknown { reason: UnknownReason::BelowThreshold, nearest: Some(ref n), .. } if n == "ann")
        );
    }

    #[test]
    fn two_close_people_are_ambiguous_but_same_person_templates_are_not() {
        let m = Matcher::new(2, &[person("ann", &[&[1.0, 0.0]]), person("bob", &[&[1.0, 0.02]])]);
        let got = m.identify(&l2_normalised(&[1.0, 0.01]), &POLICY);
        assert!(matches!(got, Identification::Unknown { reason: UnknownReason::Ambiguous, .. }), "{got:?}");
        let same = Matcher::new(2, &[person("ann", &[&[1.0, 0.0], &[1.0, 0.02]]), person("bob", &[&[0.0, 1.0]])]);
        assert!(matches!(same.identify(&l2_normalised(&[1.0, 0.01]), &POLICY), Identification::Match { .. }));
    }

    #[test]
    fn empty_gallery_and_wrong_dimension_are_unknown() {
        let empty = Matcher::new(3, &[]);
        assert!(matches!(
            empty.identify(&[1., 0., 0.], &POLICY),
            Identification::Unknown { reason: UnknownReason::EmptyGallery, .. }
        ));
        let m = Matcher::new(3, &[person("ann", &[&[1., 0., 0.], &[1., 0.]])]);
        assert_eq!(m.templates(), 1);
        assert!(matches!(m.identify(&[1., 0.], &POLICY), Identification::Unknown { .. }));
    }

    #[test]
    fn int8_scan_finds_the_same_people_as_a_float_scan() {
        // Deterministic pseudo-random gallery of 500 people x 2 templates.
        let mut state = 42u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let people: Vec<Person> = (0..500)
            .map(|i| Person {
                name: format!("p{i}"),
                templates: (0..2).map(|_| l2_normalised(&(0..192).map(|_| next()).collect::<Vec<_>>())).collect(),
            })
            .collect();
        let m = Matcher::new(192, &people);
        for trial in 0..50 {
            // A noisy copy of one template: its owner must come out on top with an exact score.
            let target = &people[trial * 7].templates[trial % 2];
            let probe = l2_normalised(&target.iter().map(|x| x + 0.03 * next()).collect::<Vec<_>>());
            let ((owner, sim), second) = m.best_two(&probe).unwrap();
            assert_eq!(owner as usize, trial * 7);
            assert!((sim - dot(target, &probe)).abs() < 1e-5, "reported similarity is the float one");
            let float_second = people
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != trial * 7)
                .flat_map(|(_, p)| p.templates.iter().map(|t| dot(t, &probe)))
                .fold(f32::NEG_INFINITY, f32::max);
            assert!((second.unwrap().1 - float_second).abs() < 0.01, "runner-up within int8 rounding");
        }
    }

    #[test]
    fn dot_handles_lengths_not_multiple_of_eight() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expected: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expected);
    }
}
