//! The unknown-faces inbox's requests: label a group as a person (its faces become templates by
//! the shared enrolment rules) or dismiss it. Scope `manage`, audited like every request.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::NodeApi;
use crate::act::store::NewTemplate;
use crate::decide::policy::Role;
use crate::enroll::Mode;

/// Most templates one labelling adds (the group's best-quality faces): a stranger who waited at
/// the door for an hour must not flood the person's templates.
pub const MAX_TEMPLATES_PER_LABEL: usize = 5;

impl NodeApi {
    /// Labels group `group` as `person`: existing when `role` is `None`, else new with `role`.
    pub(super) fn do_label_unknown(&mut self, group: i64, person: &str, role: Option<Role>) -> Result<Value> {
        let mode = if role.is_some() { Mode::New } else { Mode::Append };
        crate::enroll::check_target(&self.store, person, role, mode)?;
        let samples = self.store.unknown_samples(group)?;
        if samples.is_empty() {
            bail!("no unknown-face group #{group} (labelled, dismissed or expired already?): reload the inbox page");
        }
        self.load_engine()?;
        let engine = self.engine.as_ref().context("engine not loaded")?;
        let model = engine.template_model();
        let templates: Vec<NewTemplate> = samples
            .iter()
            .filter(|s| s.model_id == model.id && s.embedding.len() == model.dim)
            .take(MAX_TEMPLATES_PER_LABEL)
            .map(|s| NewTemplate {
                embedding: s.embedding.clone(),
                source_sha256: crate::vision::models::sha256_hex(&s.thumbnail),
                // The inbox face the administrator looked at becomes the template's picture.
                thumbnail: Some(s.thumbnail.clone()),
            })
            .collect();
        if templates.is_empty() {
            bail!(
                "the faces of group #{group} were taken with another recognition model than this node's ({}); \
                 dismiss them and enrol from a photo instead",
                model.id
            );
        }
        let done = crate::enroll::enroll(&mut self.store, engine, person, role, &templates, mode)?;
        let erased = self.store.erase_unknown_group(group)?;
        Ok(json!({
            "group": group, "person": done.name, "id": done.id, "created": done.created,
            "templates_added": done.templates_added, "faces": erased,
        }))
    }

    pub(super) fn do_dismiss_unknown(&mut self, group: i64) -> Result<Value> {
        let erased = self.store.erase_unknown_group(group)?;
        if erased == 0 {
            bail!("no unknown-face group #{group} (labelled, dismissed or expired already?): reload the inbox page");
        }
        Ok(json!({ "group": group, "dismissed": erased }))
    }

    pub fn label_unknown(
        &mut self,
        actor: &super::Actor,
        group: i64,
        person: &str,
        role: Option<Role>,
    ) -> super::ApiResult {
        super::Api::execute(self, actor, super::Request::LabelUnknown { group, person: person.into(), role })
    }

    pub fn dismiss_unknown(&mut self, actor: &super::Actor, group: i64) -> super::ApiResult {
        super::Api::execute(self, actor, super::Request::DismissUnknown { group })
    }
}
