//! `[analyze]`: estimated age, gender and expression in `facegate run`. Off by default: these
//! estimates are personal data, and a site turns them on knowingly.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzeConfig {
    /// Load the attribute models and estimate, once per decided face (default false).
    pub enabled: bool,
    /// Add the estimate to `unknown` decision events (`attributes` in the MQTT payload).
    pub unknown_events: bool,
    /// Count faces per camera per local hour by age band, gender and expression, publish the
    /// counts (`camera/<camera>/attributes`) and show them in the web console.
    pub hourly: bool,
    /// Also estimate identified people's faces: their decision events carry attributes and they
    /// are counted. Off: the models never see an identified person's face.
    pub per_person: bool,
    /// Days the hourly counts are kept in the store (1-3650).
    pub keep_days: u32,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        AnalyzeConfig { enabled: false, unknown_events: true, hourly: true, per_person: false, keep_days: 90 }
    }
}

impl AnalyzeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.enabled && !self.unknown_events && !self.hourly {
            bail!(
                "[analyze] enabled = true, but analyze.unknown_events and analyze.hourly are both false, so nothing \
                 would use the estimates: turn one of them on, or set analyze.enabled = false"
            );
        }
        if self.keep_days == 0 || self.keep_days > 3650 {
            bail!("analyze.keep_days must be between 1 and 3650 days (got {})", self.keep_days);
        }
        Ok(())
    }

    /// Whether a decision about someone identified (`identified`) or not gets an estimate.
    pub fn estimates(&self, identified: bool) -> bool {
        self.enabled && (!identified || self.per_person)
    }

    /// Whether the hourly counts are kept and published.
    pub fn counts_hours(&self) -> bool {
        self.enabled && self.hourly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn off_by_default_and_never_for_identified_people_unless_asked() {
        let c = Config::parse("").unwrap().analyze;
        assert_eq!(c, AnalyzeConfig::default());
        assert!(!c.enabled && !c.estimates(false) && !c.estimates(true) && !c.counts_hours());
        let c = Config::parse("[analyze]\nenabled = true\n").unwrap().analyze;
        assert!(c.estimates(false) && !c.estimates(true) && c.counts_hours() && c.unknown_events);
        let c = Config::parse("[analyze]\nenabled = true\nper_person = true\nhourly = false\n").unwrap().analyze;
        assert!(c.estimates(true) && !c.counts_hours());
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = format!("{:#}", Config::parse("[analyze]\nenable = true\n").unwrap_err());
        assert!(err.contains("enable"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("[analyze]\nenabled = true\nunknown_events = false\nhourly = false\n").unwrap_err()
        );
        assert!(err.contains("analyze.unknown_events") && err.contains("analyze.enabled = false"), "{err}");
        // Switched off, the same choice is harmless.
        Config::parse("[analyze]\nunknown_events = false\nhourly = false\n").unwrap();
        let err = format!("{:#}", Config::parse("[analyze]\nkeep_days = 0\n").unwrap_err());
        assert!(err.contains("analyze.keep_days"), "{err}");
        let err = format!("{:#}", Config::parse("[analyze]\nenabled = \"yes\"\n").unwrap_err());
        assert!(err.contains("enabled") || err.contains("bool"), "{err}");
    }
}
