//! Templates that keep up with a face (`[matching] auto_update`): a capture recognised with a
//! clear lead, of high quality, and different enough from the person's stored templates becomes
//! one more template, up to a cap per person (the store refuses watchlist people).
//!
//! Why the window: below `threshold + min_lead` the capture might be someone else, and a wrong
//! template would let that someone in later; above `max_similarity` it adds nothing new.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoUpdateConfig {
    /// Learnt templates kept per person at most.
    pub max_per_person: usize,
    /// Quality score (0..1) the capture's best frame needs.
    pub min_quality: f32,
    /// Lead over the match threshold the capture's similarity needs.
    pub min_lead: f32,
    /// A capture this similar (or more) to a stored template adds nothing and is not learnt.
    pub max_similarity: f32,
}

impl Default for AutoUpdateConfig {
    fn default() -> Self {
        AutoUpdateConfig { max_per_person: 3, min_quality: 0.7, min_lead: 0.15, max_similarity: 0.85 }
    }
}

impl AutoUpdateConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_per_person == 0 || self.max_per_person > 50 {
            anyhow::bail!("matching.auto_update_rules.max_per_person must be between 1 and 50");
        }
        if !(0.0..=1.0).contains(&self.min_quality) {
            anyhow::bail!("matching.auto_update_rules.min_quality must be between 0 and 1");
        }
        if !(0.05..=1.0).contains(&self.min_lead) {
            anyhow::bail!(
                "matching.auto_update_rules.min_lead must be between 0.05 and 1 (a smaller lead risks learning a stranger)"
            );
        }
        if !(0.0..=1.0).contains(&self.max_similarity) {
            anyhow::bail!("matching.auto_update_rules.max_similarity must be between 0 and 1");
        }
        Ok(())
    }

    /// Whether a recognised capture should become a template. `similarity` is its similarity to
    /// the person's closest stored template, `margin` its lead over the runner-up person.
    pub fn should_learn(&self, threshold: f32, margin_needed: f32, similarity: f32, margin: f32, quality: f32) -> bool {
        similarity >= threshold + self.min_lead
            && similarity < self.max_similarity
            && margin >= margin_needed.max(self.min_lead)
            && quality >= self.min_quality
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_confident_new_high_quality_captures_are_learnt() {
        let c = AutoUpdateConfig::default();
        assert!(c.should_learn(0.5, 0.05, 0.72, 0.4, 0.9));
        assert!(!c.should_learn(0.5, 0.05, 0.6, 0.4, 0.9), "too close to the threshold");
        assert!(!c.should_learn(0.5, 0.05, 0.9, 0.4, 0.9), "nothing new");
        assert!(!c.should_learn(0.5, 0.05, 0.72, 0.1, 0.9), "runner-up too close");
        assert!(!c.should_learn(0.5, 0.05, 0.72, 0.4, 0.5), "poor quality");
        assert!(AutoUpdateConfig { min_lead: 0.0, ..c }.validate().is_err());
        assert!(c.validate().is_ok());
    }
}
