//! The lobby statistics (`[analyze] hourly`) as the console shows them: the hourly counts per
//! camera, read through the API like everything else (scope `manage`, audited: they describe
//! the people who came by).

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::NodeApi;

/// Most hours one request returns (a month of one camera, a week of four).
pub const MAX_HOURS: u32 = 24 * 31;

impl NodeApi {
    pub(super) fn do_attribute_stats(&mut self, camera: Option<&str>, hours: u32) -> Result<Value> {
        if hours == 0 || hours > MAX_HOURS {
            bail!("hours must be between 1 and {MAX_HOURS} (got {hours})");
        }
        let names: Vec<&str> = self.config.cameras.iter().map(|c| c.name.as_str()).collect();
        if let Some(name) = camera
            && !names.contains(&name)
        {
            bail!("no camera named `{name}` on this node (cameras: {})", names.join(", "));
        }
        let since = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(i64::from(hours)))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let rows = self.store.attribute_hours(camera, since, MAX_HOURS as usize * names.len().max(1))?;
        let a = &self.config.analyze;
        Ok(json!({
            "enabled": a.enabled,
            "hourly": a.counts_hours(),
            "counted": if a.per_person { "all" } else { "unknown" },
            "keep_days": a.keep_days,
            "cameras": names,
            "hours": rows,
        }))
    }

    /// The hourly counts of the last `hours` hours, newest first (`camera`: one camera's).
    pub fn attribute_stats(&mut self, actor: &super::Actor, camera: Option<&str>, hours: u32) -> super::ApiResult {
        super::Api::execute(self, actor, super::Request::AttributeStats { camera: camera.map(str::to_string), hours })
    }
}
