//! Enrolment, shared by every interface (CLI, MQTT commands, the web console): photos ->
//! templates -> a person in the store, with the rules that keep enrolment from changing who
//! gets in by accident or on purpose:
//! - a new enrolment never adds photos to an existing person (that needs [`Mode::Append`]), so
//!   a stranger cannot be enrolled under an employee's name;
//! - a role is set only when the person is created (changing it is `set_role`), so an enroll
//!   with no photos of consequence cannot turn a watchlist entry into an employee;
//! - a photo whose face already matches someone else is refused, so enrolling an employee's
//!   photo under a decoy name cannot lock them out through the margin rule.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::act::store::{NewTemplate, Store};
use crate::decide::policy::{Role, Schedule};
use crate::engine::Engine;
use crate::vision::embed::cosine;

/// Whether the person must be new, must exist, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse a name that is already enrolled (remote enrolment's default).
    New,
    /// Add photos to an existing person only.
    Append,
    /// Create or add photos (the CLI's `enroll --name`, run by whoever owns the database).
    NewOrAppend,
}

/// What an enrolment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    pub id: i64,
    pub name: String,
    pub created: bool,
    pub templates_added: usize,
}

/// One template per photo (each must show exactly one face of enrolment quality, unless `force`:
/// see [`crate::engine::check_enrollment_quality`]); all or nothing, with every bad photo named
/// in the error.
pub fn templates_from_photos(
    engine: &mut Engine,
    photos: &[(String, Vec<u8>)],
    force: bool,
) -> Result<Vec<NewTemplate>> {
    let mut templates = Vec::new();
    let mut problems = Vec::new();
    for (label, bytes) in photos {
        match template(engine, label, bytes, force) {
            Ok(t) => templates.push(t),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!("nothing was enrolled:\n  {}", problems.join("\n  "));
    }
    Ok(templates)
}

/// What happened to one photo of an enrolment, for the person who sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoResult {
    pub name: String,
    /// `Ok(())` when it makes a template; else the reason, naming the fix.
    pub outcome: std::result::Result<(), String>,
}

/// Checks each photo alone (the same rule as [`templates_from_photos`]): the templates of the
/// good ones, and one result per photo in order.
pub fn check_photos(
    engine: &mut Engine,
    photos: &[(String, Vec<u8>)],
    force: bool,
) -> (Vec<NewTemplate>, Vec<PhotoResult>) {
    let mut templates = Vec::new();
    let mut results = Vec::new();
    for (label, bytes) in photos {
        let outcome = match template(engine, label, bytes, force) {
            Ok(t) => {
                templates.push(t);
                Ok(())
            }
            Err(e) => Err(format!("{e:#}")),
        };
        results.push(PhotoResult { name: label.clone(), outcome });
    }
    (templates, results)
}

/// The template of one enrolment photo: exactly one face of enrolment quality (unless `force`),
/// with the aligned crop the embedder saw as its thumbnail.
pub fn template(engine: &mut Engine, label: &str, bytes: &[u8], force: bool) -> Result<NewTemplate> {
    let image = crate::capture::image_file::decode_rgb(bytes, label)?;
    let (mut faces, _) = engine.pipeline.analyse(&image)?;
    match faces.len() {
        1 => {}
        0 => bail!(
            "{label}: no face found; use a photo where the face is at least {} px wide, frontal and well lit",
            engine.pipeline.options().detector.min_face
        ),
        n => bail!("{label}: {n} faces found; an enrolment photo must show only the person being enrolled (crop it)"),
    }
    let face = faces.remove(0);
    crate::engine::check_enrollment_quality(&face, label, force)?;
    let crop = engine.pipeline.crop(&image, &face.detection);
    // A picture that cannot be encoded costs the console its thumbnail, not the enrolment.
    let thumbnail =
        crate::vision::thumbnail::face_thumbnail(&crop).map_err(|e| log::warn!("{label}: no thumbnail: {e:#}")).ok();
    Ok(NewTemplate { embedding: face.embedding, source_sha256: crate::vision::models::sha256_hex(bytes), thumbnail })
}

/// Stores `templates` for `name` by the rules above. A new person gets `role` (default
/// employee) before any template, so a crash in between leaves a person who matches nobody.
pub fn enroll(
    store: &mut Store,
    engine: &Engine,
    name: &str,
    role: Option<Role>,
    templates: &[NewTemplate],
    mode: Mode,
) -> Result<Enrolled> {
    if templates.is_empty() {
        bail!("enrolment needs at least one photo");
    }
    let existing = check_target(store, name, role, mode)?;
    let name = name.trim();
    refuse_lookalikes(store, engine, existing.as_ref().map(|p| p.name.as_str()).unwrap_or(name), templates)?;
    let model = engine.template_model();
    let (id, created) = match &existing {
        Some(p) => (p.id, false),
        None => (store.add_person(name, role.unwrap_or(Role::Employee), &Schedule::default())?, true),
    };
    match store.add_templates(&format!("#{id}"), &model, templates) {
        Ok(added) => Ok(Enrolled { id, name: name.to_string(), created, templates_added: added }),
        Err(e) => {
            if created && let Err(undo) = store.remove_person(&format!("#{id}")) {
                log::error!("enrolment of #{id} failed and the empty person could not be removed: {undo:#}");
            }
            Err(e)
        }
    }
}

/// Checks the name, mode and role before any photo is looked at (cheap, and a refusal costs the
/// node nothing); returns the existing person, if any.
pub fn check_target(
    store: &Store,
    name: &str,
    role: Option<Role>,
    mode: Mode,
) -> Result<Option<crate::act::store::PersonRecord>> {
    let name = crate::act::store::check_person_name(name)?;
    let existing = store.find_person(name)?;
    match (&existing, mode) {
        (Some(p), Mode::New) => bail!(
            "`{}` is already enrolled (#{}): to add photos to them say so (append), or choose another name",
            p.name,
            p.id
        ),
        (None, Mode::Append) => bail!("no person `{name}` to add photos to; enroll them first"),
        (Some(p), _) if role.is_some() => {
            bail!("`{}` exists: enrolment does not change a role; use set_role (`facegate people set-role`)", p.name)
        }
        _ => Ok(existing),
    }
}

/// Refuses photos whose face another enrolled person already matches at the threshold.
fn refuse_lookalikes(store: &Store, engine: &Engine, name: &str, templates: &[NewTemplate]) -> Result<()> {
    let threshold = engine.policy.threshold;
    for person in store.gallery(&engine.template_model())? {
        if person.name.eq_ignore_ascii_case(name) {
            continue;
        }
        for (i, t) in templates.iter().enumerate() {
            let best = person.templates.iter().map(|p| cosine(p, &t.embedding)).fold(f32::MIN, f32::max);
            if best >= threshold {
                bail!(
                    "photo {} matches `{}` (similarity {best:.2}, threshold {threshold:.2}): it looks like them, so it \
                     is not enrolled under another name; add it to them instead, or remove them first",
                    i + 1,
                    person.name
                );
            }
        }
    }
    Ok(())
}
