//! Face templates: embeddings bound to the model that made them, loaded as the matcher's gallery.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use rusqlite::{OptionalExtension, params};

use super::people::{check_name, insert_person};
use super::{Store, meta_add, now_text, write};
use crate::decide::policy::{Role, Schedule};
use crate::gallery::{GalleryStore, Person, TemplateModel};
use crate::vision::embed::Embedding;
use crate::vision::models::sha256_hex;

/// The largest thumbnail stored (the schema refuses bigger ones).
pub const MAX_THUMBNAIL_BYTES: usize = 65_536;

/// A template to store: the embedding and the SHA-256 of the photo it came from (enrolling
/// the same photo twice adds nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    pub embedding: Embedding,
    pub source_sha256: String,
    /// The face as a small JPEG ([`crate::vision::thumbnail`]) for the console; `None` when
    /// there is no picture (learnt or imported templates).
    pub thumbnail: Option<Vec<u8>>,
}

/// A stored template as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub id: i64,
    pub created: String,
    pub source_sha256: String,
    pub has_thumbnail: bool,
}

/// What [`Store::add_learnt_template`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearntTemplate {
    /// Stored; the person now has this many learnt templates.
    Added {
        learnt: usize,
    },
    Capped,
    Watchlist,
    NoSuchPerson,
}

pub(super) fn to_blob(embedding: &[f32]) -> Vec<u8> {
    embedding.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(super) fn from_blob(blob: &[u8]) -> Embedding {
    blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

impl Store {
    /// Adds templates to `who`, creating them as an employee (any time) if new. All or nothing.
    /// Refuses templates of another model than the ones already stored. Returns how many were
    /// added (a photo already enrolled for this person and model is skipped).
    pub fn add_templates(&mut self, who: &str, model: &TemplateModel, templates: &[NewTemplate]) -> Result<usize> {
        for t in templates {
            if t.embedding.len() != model.dim {
                bail!("a template has {} values but model {} makes {}-D ones", t.embedding.len(), model.id, model.dim);
            }
            if t.embedding.iter().any(|v| !v.is_finite()) {
                bail!("a template holds NaN or infinite values; the embedder output is broken");
            }
        }
        let path = self.path.clone();
        let tx = write(&mut self.conn, &self.path)?;
        let other: Option<(String, i64)> = tx
            .query_row(
                "SELECT model_id, dim FROM templates WHERE model_id <> ?1 OR dim <> ?2 LIMIT 1",
                params![model.id, model.dim as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, dim)) = other {
            bail!(
                "{} holds templates of model {id} ({dim}-D) but facegate is using {} ({}-D); mixing them would break \
                 matching: re-enroll everyone into a new --db file, or select the model the database was made with",
                path.display(),
                model.id,
                model.dim
            );
        }
        let person = match Store::resolve(&tx, who)? {
            Some(id) => id,
            None => insert_person(&tx, check_name(who)?, Role::Employee, &Schedule::default())?,
        };
        let now = now_text();
        let mut added = 0;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO templates (person_id, embedding, dim, model_id, source_sha256, created, thumbnail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for t in templates {
                // An oversized picture is dropped rather than the template (the schema caps it).
                let thumbnail = t.thumbnail.as_deref().filter(|j| j.len() <= MAX_THUMBNAIL_BYTES);
                added += insert.execute(params![
                    person,
                    to_blob(&t.embedding),
                    model.dim as i64,
                    model.id,
                    t.source_sha256,
                    now,
                    thumbnail
                ])?;
            }
        }
        meta_add(&tx, "changes", 1)?;
        tx.commit()?;
        Ok(added)
    }

    /// A person's templates: (template id, created, photo SHA-256), oldest first.
    pub fn templates_of(&self, who: &str) -> Result<Vec<(i64, String, String)>> {
        let person = Store::require(&self.conn, &self.path, who)?;
        let mut stmt =
            self.conn.prepare("SELECT id, created, source_sha256 FROM templates WHERE person_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([person], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A person's templates with whether each has a thumbnail, oldest first.
    pub fn template_infos(&self, who: &str) -> Result<Vec<TemplateInfo>> {
        let person = Store::require(&self.conn, &self.path, who)?;
        let mut stmt = self.conn.prepare(
            "SELECT id, created, source_sha256, thumbnail IS NOT NULL FROM templates WHERE person_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([person], |r| {
            Ok(TemplateInfo { id: r.get(0)?, created: r.get(1)?, source_sha256: r.get(2)?, has_thumbnail: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The thumbnail JPEG of one template of `who` (`None`: no such template, or no picture).
    pub fn template_thumbnail(&self, who: &str, template: i64) -> Result<Option<Vec<u8>>> {
        let person = Store::require(&self.conn, &self.path, who)?;
        Ok(self
            .conn
            .query_row(
                "SELECT thumbnail FROM templates WHERE id = ?1 AND person_id = ?2",
                params![template, person],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Deletes one template of `who` (a wrong photo); false when that person has no such template.
    pub fn delete_template(&mut self, who: &str, template: i64) -> Result<bool> {
        let tx = write(&mut self.conn, &self.path)?;
        let person = Store::require(&tx, &self.path, who)?;
        let n = tx.execute("DELETE FROM templates WHERE id = ?1 AND person_id = ?2", params![template, person])?;
        if n > 0 {
            meta_add(&tx, "changes", 1)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Everyone with templates, for the [`crate::gallery::matcher::Matcher`]. Refuses the whole
    /// gallery if any template was made by another model (matching would be silently wrong).
    pub fn gallery(&self, model: &TemplateModel) -> Result<Vec<Person>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name, t.model_id, t.dim, t.embedding, t.id FROM templates t JOIN people p ON p.id = t.person_id \
             ORDER BY p.name, t.id",
        )?;
        let mut rows = stmt.query([])?;
        let mut people: BTreeMap<String, Vec<Embedding>> = BTreeMap::new();
        let mut foreign: BTreeMap<String, String> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let (name, model_id, dim): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            if model_id != model.id || dim != model.dim as i64 {
                foreign.insert(name, format!("{model_id} ({dim}-D)"));
                continue;
            }
            let blob: Vec<u8> = row.get(3)?;
            people.entry(name).or_default().push(from_blob(&blob));
        }
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().map(|(n, m)| format!("{n}: {m}")).collect();
            bail!(
                "{} holds templates of another model than the one in use, {} ({}-D): {}; re-enroll these people \
                 (facegate forget/remove, then enroll) or select the model they were enrolled with",
                self.path.display(),
                model.id,
                model.dim,
                list.join(", ")
            );
        }
        Ok(people.into_iter().map(|(name, templates)| Person { name, templates }).collect())
    }

    /// Adds a template learnt from a confident recognition (`[matching] auto_update`), unless the
    /// person is on the watchlist, unknown, or already has `cap` learnt templates. Learnt
    /// templates are marked by a source of `auto:<sha256 of the embedding>`; `remove` and
    /// `forget` delete them with the person.
    pub fn add_learnt_template(
        &mut self,
        who: &str,
        model: &TemplateModel,
        embedding: &[f32],
        cap: usize,
    ) -> Result<LearntTemplate> {
        if embedding.len() != model.dim || embedding.iter().any(|v| !v.is_finite()) {
            bail!("a learnt template must be a finite {}-D vector", model.dim);
        }
        let tx = write(&mut self.conn, &self.path)?;
        let Some(person) = Store::resolve(&tx, who)? else { return Ok(LearntTemplate::NoSuchPerson) };
        let role: String = tx.query_row("SELECT role FROM people WHERE id = ?1", [person], |r| r.get(0))?;
        if role == Role::Watchlist.as_str() {
            return Ok(LearntTemplate::Watchlist);
        }
        let learnt: i64 = tx.query_row(
            "SELECT count(*) FROM templates WHERE person_id = ?1 AND source_sha256 LIKE 'auto:%'",
            [person],
            |r| r.get(0),
        )?;
        if learnt as usize >= cap {
            return Ok(LearntTemplate::Capped);
        }
        let blob = to_blob(embedding);
        let source = format!("auto:{}", sha256_hex(&blob));
        tx.execute(
            "INSERT OR IGNORE INTO templates (person_id, embedding, dim, model_id, source_sha256, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![person, blob, model.dim as i64, model.id, source, now_text()],
        )?;
        meta_add(&tx, "changes", 1)?;
        tx.commit()?;
        Ok(LearntTemplate::Added { learnt: learnt as usize + 1 })
    }

    fn bound_model(&self) -> Result<TemplateModel> {
        self.model.clone().ok_or_else(|| {
            anyhow::anyhow!("internal: Store::bind_model must be called before using it as a GalleryStore")
        })
    }
}

/// The generic gallery view; needs [`Store::bind_model`] first.
impl GalleryStore for Store {
    fn people(&self) -> Result<Vec<Person>> {
        self.gallery(&self.bound_model()?)
    }

    fn enroll(&mut self, name: &str, templates: Vec<Embedding>) -> Result<()> {
        let model = self.bound_model()?;
        // No photo is known here: identify each template by its own bytes.
        let templates: Vec<NewTemplate> = templates
            .into_iter()
            .map(|embedding| NewTemplate {
                source_sha256: sha256_hex(&to_blob(&embedding)),
                embedding,
                thumbnail: None,
            })
            .collect();
        self.add_templates(name, &model, &templates).map(|_| ())
    }

    fn remove(&mut self, name: &str) -> Result<bool> {
        self.remove_person(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> TemplateModel {
        TemplateModel { id: "mfn@abc".into(), dim: 3 }
    }

    fn t(v: [f32; 3], sha: &str) -> NewTemplate {
        NewTemplate { embedding: v.to_vec(), source_sha256: sha.into(), thumbnail: None }
    }

    #[test]
    fn templates_round_trip_and_duplicates_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(s.add_templates("Ann", &model(), &[t([1.0, 0.5, -0.25], "a"), t([0.0, 1.0, 0.0], "b")]).unwrap(), 2);
        assert_eq!(s.add_templates("ann", &model(), &[t([9.0, 9.0, 9.0], "a")]).unwrap(), 0, "same photo again");
        let ann = s.find_person("Ann").unwrap().unwrap();
        assert_eq!((ann.role, ann.templates), (Role::Employee, 2));
        s.add_person("Empty", Role::Employee, &Schedule::default()).unwrap();
        let g = s.gallery(&model()).unwrap();
        assert_eq!(g, vec![Person { name: "Ann".into(), templates: vec![vec![1.0, 0.5, -0.25], vec![0.0, 1.0, 0.0]] }]);
    }

    #[test]
    fn learnt_templates_are_capped_never_for_the_watchlist_and_forgotten_with_the_person() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        s.add_templates("Ann", &model(), &[t([1.0, 0.0, 0.0], "a")]).unwrap();
        assert_eq!(
            s.add_learnt_template("Ann", &model(), &[0.9, 0.1, 0.0], 2).unwrap(),
            LearntTemplate::Added { learnt: 1 }
        );
        assert_eq!(
            s.add_learnt_template("Ann", &model(), &[0.8, 0.2, 0.0], 2).unwrap(),
            LearntTemplate::Added { learnt: 2 }
        );
        assert_eq!(s.add_learnt_template("Ann", &model(), &[0.7, 0.3, 0.0], 2).unwrap(), LearntTemplate::Capped);
        assert_eq!(s.gallery(&model()).unwrap()[0].templates.len(), 3, "enrolled + 2 learnt");
        s.add_person("Mallory", Role::Watchlist, &Schedule::default()).unwrap();
        assert_eq!(s.add_learnt_template("Mallory", &model(), &[0.0, 1.0, 0.0], 2).unwrap(), LearntTemplate::Watchlist);
        assert_eq!(
            s.add_learnt_template("Nobody", &model(), &[0.0, 1.0, 0.0], 2).unwrap(),
            LearntTemplate::NoSuchPerson
        );
        assert!(s.add_learnt_template("Ann", &model(), &[f32::NAN, 0.0, 0.0], 2).is_err());
        let report = s.forget("Ann").unwrap();
        assert_eq!(report.templates, 3);
        assert!(s.gallery(&model()).unwrap().is_empty());
    }

    #[test]
    fn another_model_is_refused_with_re_enroll_advice() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        s.add_templates("Ann", &model(), &[t([1.0, 0.0, 0.0], "a")]).unwrap();
        let other = TemplateModel { id: "mfn@int8".into(), dim: 3 };
        let err = s.add_templates("Bob", &other, &[t([1.0, 0.0, 0.0], "b")]).unwrap_err().to_string();
        assert!(err.contains("re-enroll") && err.contains("mfn@abc"), "{err}");
        assert!(s.find_person("Bob").unwrap().is_none(), "all or nothing: Bob was not created");
        let err = s.gallery(&other).unwrap_err().to_string();
        assert!(err.contains("re-enroll") && err.contains("Ann"), "{err}");
        assert!(
            s.add_templates(
                "Bob",
                &model(),
                &[NewTemplate { embedding: vec![1.0], source_sha256: "x".into(), thumbnail: None }]
            )
            .is_err()
        );
        assert!(s.add_templates("Bob", &model(), &[t([f32::NAN, 0.0, 0.0], "n")]).is_err());
    }

    #[test]
    fn gallery_store_trait_works_on_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        assert!(GalleryStore::people(&s).is_err(), "unbound model is an error, not a panic");
        s.bind_model(model());
        s.enroll("Ann", vec![vec![1.0, 0.0, 0.0]]).unwrap();
        s.enroll("Ann", vec![vec![0.0, 1.0, 0.0]]).unwrap();
        assert_eq!(GalleryStore::people(&s).unwrap()[0].templates.len(), 2);
        assert!(s.remove("ann").unwrap());
        assert!(GalleryStore::people(&s).unwrap().is_empty());
    }
}
