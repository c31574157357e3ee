//! Verification metrics over scored pairs: accuracy at a threshold, the best threshold, TAR at a
//! fixed FAR, and the ROC curve. Pure functions; `facegate eval` feeds them.
//!
//! A pair whose image yielded no face is "lost": it can never be accepted, so it counts as a
//! false reject when the pair is the same person (and a correct reject otherwise).

use serde::Serialize;

/// One pair: its similarity (`None` when a face was not found) and the ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub similarity: Option<f32>,
    pub same: bool,
}

/// TAR measured at a target FAR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TarAtFar {
    pub far_target: f64,
    pub tar: f64,
    /// Similarity a pair must exceed.
    pub threshold: f32,
    /// The false-accept rate actually reached (at most the target).
    pub far: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationReport {
    pub pairs: usize,
    pub same_pairs: usize,
    pub different_pairs: usize,
    pub lost_pairs: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub true_accept_rate: f64,
    pub false_accept_rate: f64,
    /// The threshold with the highest accuracy on these same pairs (optimistic by construction).
    pub best_threshold: f32,
    pub best_accuracy: f64,
    pub tar_at_far: Vec<TarAtFar>,
    /// `(far, tar)` points, threshold descending.
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
}

fn score(p: &ScoredPair) -> f32 {
    p.similarity.unwrap_or(f32::NEG_INFINITY)
}

/// Fraction of pairs decided right when accepting `similarity >= threshold`.
pub fn accuracy_at(pairs: &[ScoredPair], threshold: f32) -> f64 {
    if pairs.is_empty() {
        return f64::NAN;
    }
    let right = pairs.iter().filter(|p| (score(p) >= threshold) == p.same).count();
    right as f64 / pairs.len() as f64
}

/// TAR when the threshold is set so that at most `far_target` of different-person pairs pass.
pub fn tar_at_far(pairs: &[ScoredPair], far_target: f64) -> Option<TarAtFar> {
    let mut negatives: Vec<f32> = pairs.iter().filter(|p| !p.same).map(score).collect();
    let positives: Vec<f32> = pairs.iter().filter(|p| p.same).map(score).collect();
    if negatives.is_empty() || positives.is_empty() {
        return None;
    }
    negatives.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far_target * negatives.len() as f64).floor() as usize;
    // Accept strictly above the (allowed+1)-th highest impostor score.
    let threshold = negatives[allowed.min(negatives.len() - 1)];
    let false_accepts = negatives.iter().filter(|&&s| s > threshold).count();
    let true_accepts = positives.iter().filter(|&&s| s > threshold).count();
    Some(TarAtFar {
        far_target,
        tar: true_accepts as f64 / positives.len() as f64,
        threshold,
        far: false_accepts as f64 / negatives.len() as f64,
    })
}

/// The ROC curve as `(far, tar)` points, from the strictest threshold to the loosest.
pub fn roc_curve(pairs: &[ScoredPair]) -> Vec<(f64, f64)> {
    let positives = pairs.iter().filter(|p| p.same).count().max(1) as f64;
    let negatives = pairs.iter().filter(|p| !p.same).count().max(1) as f64;
    let mut sorted: Vec<&ScoredPair> = pairs.iter().collect();
    sorted.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (i, p) in sorted.iter().enumerate() {
        if p.same {
            tp += 1.0
        } else {
            fp += 1.0
        }
        // Emit a point only between distinct scores so ties move diagonally.
        if i + 1 == sorted.len() || score(sorted[i + 1]) != score(p) {
            points.push((fp / negatives, tp / positives));
        }
    }
    points
}

/// Every figure `facegate eval` reports for one subset of pairs.
pub fn verification_report(pairs: &[ScoredPair], threshold: f32) -> VerificationReport {
    let same = pairs.iter().filter(|p| p.same).count();
    let different = pairs.len() - same;
    let accepted_same = pairs.iter().filter(|p| p.same && score(p) >= threshold).count();
    let accepted_different = pairs.iter().filter(|p| !p.same && score(p) >= threshold).count();
    let mut candidates: Vec<f32> = pairs.iter().filter_map(|p| p.similarity).collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = (threshold, accuracy_at(pairs, threshold));
    for window in candidates.windows(2) {
        let t = (window[0] + window[1]) / 2.0;
        let acc = accuracy_at(pairs, t);
        if acc > best.1 {
            best = (t, acc);
        }
    }
    VerificationReport {
        pairs: pairs.len(),
        same_pairs: same,
        different_pairs: different,
        lost_pairs: pairs.iter().filter(|p| p.similarity.is_none()).count(),
        threshold,
        accuracy: accuracy_at(pairs, threshold),
        true_accept_rate: accepted_same as f64 / same.max(1) as f64,
        false_accept_rate: accepted_different as f64 / different.max(1) as f64,
        best_threshold: best.0,
        best_accuracy: best.1,
        tar_at_far: [0.01, 0.001].iter().filter_map(|&f| tar_at_far(pairs, f)).collect(),
        roc: roc_curve(pairs),
    }
}

/// One open-set (1:N) search: the probe's best and runner-up gallery people with similarities.
/// `mate` is the gallery index of the probe's own identity, `None` for a non-enrolled person.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSetProbe {
    pub mate: Option<usize>,
    /// `(gallery index, similarity)` of the best person; `None` when the probe had no face.
    pub best: Option<(usize, f32)>,
    /// Similarity of the best different person (`None` when the gallery has one person).
    pub second: Option<f32>,
}

impl OpenSetProbe {
    /// Whom the matcher's rule (threshold, then lead over the runner-up) names, if anyone.
    /// Same rule as `gallery::matcher::Matcher::identify`: the margin is measured against 0
    /// when there is no runner-up.
    pub fn identified(&self, threshold: f32, margin: f32) -> Option<usize> {
        let (who, sim) = self.best?;
        let lead = sim - self.second.map_or(0.0, |s| s.max(0.0));
        (sim >= threshold && lead >= margin).then_some(who)
    }
}

/// FNIR reached when the threshold is set so that FPIR stays at or under a target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FnirAtFpir {
    pub fpir_target: f64,
    pub fnir: f64,
    pub threshold: f32,
    pub fpir: f64,
}

/// Open-set identification figures (ISO/IEC 19795-1 terms, rank 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSetReport {
    pub gallery_people: usize,
    pub mated_probes: usize,
    pub non_mated_probes: usize,
    /// Probes without a detectable face (they count as "not identified").
    pub lost_probes: usize,
    pub threshold: f32,
    pub margin: f32,
    /// Mated probes not identified as their own person (unknown or someone else).
    pub fnir: f64,
    /// Non-mated probes identified as anyone.
    pub fpir: f64,
    /// Mated probes identified as someone else (part of `fnir`).
    pub wrong_person: f64,
    /// At the configured margin, the threshold swept.
    pub fnir_at_fpir: Vec<FnirAtFpir>,
}

fn open_set_rates(probes: &[OpenSetProbe], threshold: f32, margin: f32) -> (f64, f64, f64) {
    let (mut mated, mut missed, mut wrong, mut non_mated, mut false_pos) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for p in probes {
        let who = p.identified(threshold, margin);
        match p.mate {
            Some(mate) => {
                mated += 1;
                if who != Some(mate) {
                    missed += 1;
                    if who.is_some() {
                        wrong += 1;
                    }
                }
            }
            None => {
                non_mated += 1;
                if who.is_some() {
                    false_pos += 1;
                }
            }
        }
    }
    let rate = |n: usize, d: usize| if d == 0 { f64::NAN } else { n as f64 / d as f64 };
    (rate(missed, mated), rate(false_pos, non_mated), rate(wrong, mated))
}

/// The lowest threshold (so the lowest FNIR) at which FPIR is at most `fpir_target`.
pub fn fnir_at_fpir(probes: &[OpenSetProbe], margin: f32, fpir_target: f64) -> Option<FnirAtFpir> {
    let non_mated = probes.iter().filter(|p| p.mate.is_none()).count();
    if non_mated == 0 || probes.len() == non_mated {
        return None;
    }
    // Candidate thresholds: just above every non-mated best score ("at or above" then excludes
    // it), plus "accept everything".
    let mut candidates: Vec<f32> =
        probes.iter().filter(|p| p.mate.is_none()).filter_map(|p| p.best.map(|(_, s)| s + 1e-6)).collect();
    candidates.push(-1.0);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    candidates.into_iter().find_map(|t| {
        let (fnir, fpir, _) = open_set_rates(probes, t, margin);
        (fpir <= fpir_target).then_some(FnirAtFpir { fpir_target, fnir, threshold: t, fpir })
    })
}

/// Every open-set figure `facegate eval` reports.
pub fn open_set_report(probes: &[OpenSetProbe], gallery_people: usize, threshold: f32, margin: f32) -> OpenSetReport {
    let (fnir, fpir, wrong_person) = open_set_rates(probes, threshold, margin);
    OpenSetReport {
        gallery_people,
        mated_probes: probes.iter().filter(|p| p.mate.is_some()).count(),
        non_mated_probes: probes.iter().filter(|p| p.mate.is_none()).count(),
        lost_probes: probes.iter().filter(|p| p.best.is_none()).count(),
        threshold,
        margin,
        fnir,
        fpir,
        wrong_person,
        fnir_at_fpir: [0.01, 0.001].iter().filter_map(|&f| fnir_at_fpir(probes, margin, f)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(mate: Option<usize>, best: (usize, f32), second: f32) -> OpenSetProbe {
        OpenSetProbe { mate, best: Some(best), second: Some(second) }
    }

    #[test]
    fn open_set_counts_misses_wrong_people_and_false_positives() {
        let probes = [
            probe(Some(0), (0, 0.8), 0.2),                            // identified right
            probe(Some(1), (0, 0.7), 0.3), // identified as someone else: a miss and a wrong person
            probe(Some(2), (2, 0.4), 0.1), // below threshold: a miss
            probe(None, (1, 0.6), 0.1),    // stranger accepted
            probe(None, (1, 0.3), 0.1),    // stranger rejected
            probe(None, (0, 0.62), 0.6),   // stranger, but ambiguous: rejected by the margin
            OpenSetProbe { mate: Some(0), best: None, second: None }, // no face: a miss
        ];
        let r = open_set_report(&probes, 3, 0.5, 0.05);
        assert_eq!((r.mated_probes, r.non_mated_probes, r.lost_probes), (4, 3, 1));
        assert!((r.fnir - 0.75).abs() < 1e-9, "{r:?}");
        assert!((r.wrong_person - 0.25).abs() < 1e-9);
        assert!((r.fpir - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn fnir_at_fpir_picks_the_loosest_threshold_within_the_budget() {
        // 10 strangers with best scores 0.10..0.55; mates at 0.5, 0.6, 0.9.
        let mut probes: Vec<OpenSetProbe> = (0..10).map(|i| probe(None, (0, 0.1 + 0.05 * i as f32), 0.0)).collect();
        probes.extend([probe(Some(0), (0, 0.5), 0.0), probe(Some(0), (0, 0.6), 0.0), probe(Some(0), (0, 0.9), 0.0)]);
        let at = fnir_at_fpir(&probes, 0.0, 0.1).unwrap();
        // One stranger (0.55) may pass: the threshold goes just above 0.50, which loses the 0.5 mate.
        assert!(at.fpir <= 0.1 && at.threshold > 0.5 && at.threshold < 0.51, "{at:?}");
        assert!((at.fnir - 1.0 / 3.0).abs() < 1e-9);
        let strict = fnir_at_fpir(&probes, 0.0, 0.0).unwrap();
        assert_eq!(strict.fpir, 0.0);
        assert!(strict.threshold > 0.55);
    }

    fn p(similarity: f32, same: bool) -> ScoredPair {
        ScoredPair { similarity: Some(similarity), same }
    }

    #[test]
    fn separable_pairs_are_perfect_at_a_threshold_between() {
        let pairs = [p(0.9, true), p(0.8, true), p(0.2, false), p(0.1, false)];
        let r = verification_report(&pairs, 0.5);
        assert_eq!(r.accuracy, 1.0);
        assert!(r.best_threshold > 0.2 && r.best_threshold <= 0.8);
        assert_eq!(r.tar_at_far[0].tar, 1.0);
    }

    #[test]
    fn lost_pairs_reject_and_are_counted() {
        let pairs =
            [ScoredPair { similarity: None, same: true }, ScoredPair { similarity: None, same: false }, p(0.9, true)];
        let r = verification_report(&pairs, 0.5);
        assert_eq!(r.lost_pairs, 2);
        assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn tar_at_far_respects_the_false_accept_budget() {
        // 100 impostors scored 0.00..0.99, genuine pairs at 0.5 and 0.995.
        let mut pairs: Vec<ScoredPair> = (0..100).map(|i| p(i as f32 / 100.0, false)).collect();
        pairs.push(p(0.5, true));
        pairs.push(p(0.995, true));
        let at1 = tar_at_far(&pairs, 0.01).unwrap();
        assert!(at1.far <= 0.01);
        assert_eq!(at1.tar, 0.5);
        let loose = tar_at_far(&pairs, 0.6).unwrap();
        assert_eq!(loose.tar, 1.0);
    }

    #[test]
    fn roc_runs_from_origin_to_one_one() {
        let pairs = [p(0.9, true), p(0.7, false), p(0.6, true), p(0.1, false)];
        let roc = roc_curve(&pairs);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(roc.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
    }
}
