//! The unknown-faces inbox: faces of `unknown` decisions, kept (only when `[web] unknown_inbox`
//! is on) so an administrator can label them as a person or dismiss them.
//!
//! These are faces of people who did not consent, so the table is bounded three ways: a row cap
//! (the oldest are dropped, counted in `unknown_dropped`), a retention period (older rows are
//! erased, counted in `unknown_expired`), and `forget`, which erases the faces that match the
//! forgotten person. Faces are grouped when stored, so the same stranger's visits appear
//! together: a new face joins the group whose representative (its oldest remaining face) it is
//! most similar to at or above the matching threshold, else it starts a group of its own
//! (numbered by its own id). The rule only looks at stored rows, so it is deterministic.

use anyhow::{Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::templates::{from_blob, to_blob};
use super::{Store, meta_add, meta_get, write};
use crate::gallery::TemplateModel;
use crate::vision::embed::{Embedding, cosine};

/// Largest thumbnail stored (the schema refuses more); `vision::thumbnail` makes ~5 KB ones.
pub const MAX_THUMBNAIL_BYTES: usize = 64 * 1024;

/// What the decision carried about an unknown face (made by the vision stage).
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvidence {
    /// JPEG of the aligned face (`vision::thumbnail::face_thumbnail`).
    pub thumbnail: Vec<u8>,
    /// The embedding the matcher was given for the deciding frame (fused over the track's best
    /// frames), bound to its model.
    pub embedding: Embedding,
    pub model: TemplateModel,
    /// The matching threshold the face was judged at (also the grouping threshold).
    pub threshold: f32,
    /// The deciding frame's quality score (0..1); labelling prefers the best faces.
    pub quality: f32,
}

/// One stored face, without its pictures and numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownFace {
    pub id: i64,
    pub group: i64,
    pub at: jiff::Timestamp,
    pub camera: String,
    pub quality: f32,
}

/// The faces of one group, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownGroup {
    pub group: i64,
    pub faces: Vec<UnknownFace>,
}

impl UnknownGroup {
    pub fn newest(&self) -> Option<jiff::Timestamp> {
        self.faces.first().map(|f| f.at)
    }
    pub fn oldest(&self) -> Option<jiff::Timestamp> {
        self.faces.last().map(|f| f.at)
    }
    /// The cameras that saw this stranger, in the order first met (newest face first).
    pub fn cameras(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.faces {
            if !out.contains(&f.camera.as_str()) {
                out.push(&f.camera);
            }
        }
        out
    }
}

/// A stored face with what labelling needs.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownSample {
    pub id: i64,
    pub thumbnail: Vec<u8>,
    pub embedding: Embedding,
    pub model_id: String,
    pub quality: f32,
}

/// What [`Store::add_unknown_face`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAdded {
    pub id: i64,
    pub group: i64,
    /// Oldest faces dropped to stay within the cap.
    pub dropped: u64,
}

impl Store {
    /// Stores one unknown face seen at `at` on `camera`, groups it, and keeps at most `cap` faces.
    pub fn add_unknown_face(
        &mut self,
        at: jiff::Timestamp,
        camera: &str,
        face: &UnknownEvidence,
        cap: u64,
    ) -> Result<UnknownAdded> {
        if face.thumbnail.is_empty() || face.thumbnail.len() > MAX_THUMBNAIL_BYTES {
            bail!(
                "an unknown face's thumbnail is {} bytes; at most {MAX_THUMBNAIL_BYTES} are kept",
                face.thumbnail.len()
            );
        }
        if face.embedding.len() != face.model.dim || face.embedding.iter().any(|v| !v.is_finite()) {
            bail!("an unknown face's embedding does not fit model {} ({}-D, finite)", face.model.id, face.model.dim);
        }
        let cap = cap.max(1);
        let tx = write(&mut self.conn, &self.path)?;
        let group = best_group(&tx, face)?;
        tx.execute(
            "INSERT INTO unknown_faces (group_id, at_ms, at, camera, thumbnail, embedding, dim, model_id, threshold, quality) \
             VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                at.as_millisecond(),
                format!("{at:.3}"),
                camera,
                face.thumbnail,
                to_blob(&face.embedding),
                face.model.dim as i64,
                face.model.id,
                f64::from(face.threshold),
                f64::from(face.quality),
            ],
        )?;
        let id = tx.last_insert_rowid();
        let group = group.unwrap_or(id);
        tx.execute("UPDATE unknown_faces SET group_id = ?1 WHERE id = ?2", params![group, id])?;
        let over: i64 = tx.query_row("SELECT max(0, count(*) - ?1) FROM unknown_faces", [cap as i64], |r| r.get(0))?;
        if over > 0 {
            tx.execute(
                "DELETE FROM unknown_faces WHERE id IN (SELECT id FROM unknown_faces ORDER BY id LIMIT ?1)",
                [over],
            )?;
            meta_add(&tx, "unknown_dropped", over as u64)?;
        }
        tx.commit()?;
        Ok(UnknownAdded { id, group, dropped: over as u64 })
    }

    /// Every group (newest visit first), each with its faces newest first. Bounded by the cap.
    pub fn unknown_groups(&self) -> Result<Vec<UnknownGroup>> {
        let mut stmt =
            self.conn.prepare("SELECT id, group_id, at_ms, camera, quality FROM unknown_faces ORDER BY id DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })?;
        let mut groups: Vec<UnknownGroup> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for row in rows {
            let (id, group, at_ms, camera, quality) = row?;
            let at = jiff::Timestamp::from_millisecond(at_ms)?;
            let face = UnknownFace { id, group, at, camera, quality: quality as f32 };
            let i = *index.entry(group).or_insert_with(|| {
                groups.push(UnknownGroup { group, faces: Vec::new() });
                groups.len() - 1
            });
            groups[i].faces.push(face);
        }
        Ok(groups)
    }

    /// The thumbnail JPEG of one face.
    pub fn unknown_thumbnail(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self.conn.query_row("SELECT thumbnail FROM unknown_faces WHERE id = ?1", [id], |r| r.get(0)).optional()?)
    }

    /// The faces of one group with their embeddings, best quality first (empty: no such group).
    pub fn unknown_samples(&self, group: i64) -> Result<Vec<UnknownSample>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, thumbnail, embedding, model_id, quality FROM unknown_faces WHERE group_id = ?1 \
             ORDER BY quality DESC, id",
        )?;
        let rows = stmt.query_map([group], |r| {
            Ok(UnknownSample {
                id: r.get(0)?,
                thumbnail: r.get(1)?,
                embedding: from_blob(&r.get::<_, Vec<u8>>(2)?),
                model_id: r.get(3)?,
                quality: r.get::<_, f64>(4)? as f32,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Erases one group (dismissed, or labelled); returns the faces erased.
    pub fn erase_unknown_group(&mut self, group: i64) -> Result<u64> {
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute("DELETE FROM unknown_faces WHERE group_id = ?1", [group])?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Erases the faces seen before `now - days` (the clock is the caller's, so tests inject
    /// it); returns how many, also counted in `unknown_expired`.
    pub fn expire_unknown_faces(&mut self, now: jiff::Timestamp, days: u32) -> Result<u64> {
        let cutoff = now.as_millisecond().saturating_sub(i64::from(days) * 86_400_000);
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute("DELETE FROM unknown_faces WHERE at_ms < ?1", [cutoff])? as u64;
        if n > 0 {
            meta_add(&tx, "unknown_expired", n)?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Faces kept in the inbox now.
    pub fn unknown_count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM unknown_faces", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Faces dropped by the cap, ever.
    pub fn unknown_dropped(&self) -> Result<u64> {
        meta_get(&self.conn, "unknown_dropped")
    }

    /// Faces erased by the retention period, ever.
    pub fn unknown_expired(&self) -> Result<u64> {
        meta_get(&self.conn, "unknown_expired")
    }
}

/// The group a new face joins: the most similar representative at or above its threshold (the
/// lowest group number on a tie), or none.
fn best_group(conn: &Connection, face: &UnknownEvidence) -> Result<Option<i64>> {
    let mut stmt = conn.prepare(
        "SELECT u.group_id, u.embedding FROM unknown_faces u \
         WHERE u.model_id = ?1 AND u.dim = ?2 \
         AND u.id = (SELECT min(v.id) FROM unknown_faces v WHERE v.group_id = u.group_id) ORDER BY u.group_id",
    )?;
    let rows = stmt.query_map(params![face.model.id, face.model.dim as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut best: Option<(i64, f32)> = None;
    for row in rows {
        let (group, blob) = row?;
        let similarity = cosine(&from_blob(&blob), &face.embedding);
        if similarity >= face.threshold && best.is_none_or(|(_, s)| similarity > s) {
            best = Some((group, similarity));
        }
    }
    Ok(best.map(|(g, _)| g))
}

/// Inside `forget`'s transaction: erases the inbox faces that match any template of person `id`
/// (same model, at the threshold each face was judged at); returns how many.
pub(super) fn erase_matching(conn: &Connection, id: i64) -> Result<u64> {
    let mut templates = conn.prepare("SELECT model_id, embedding FROM templates WHERE person_id = ?1")?;
    let templates: Vec<(String, Embedding)> = templates
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?))))?
        .collect::<rusqlite::Result<_>>()?;
    if templates.is_empty() {
        return Ok(0);
    }
    let mut faces = conn.prepare("SELECT id, model_id, embedding, threshold FROM unknown_faces")?;
    let matching: Vec<i64> = faces
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, from_blob(&r.get::<_, Vec<u8>>(2)?), r.get::<_, f64>(3)?))
        })?
        .filter_map(|row| row.ok())
        .filter(|(_, model, embedding, threshold)| {
            templates
                .iter()
                .any(|(m, t)| m == model && t.len() == embedding.len() && cosine(t, embedding) >= *threshold as f32)
        })
        .map(|(id, ..)| id)
        .collect();
    for face in &matching {
        conn.execute("DELETE FROM unknown_faces WHERE id = ?1", [face])?;
    }
    Ok(matching.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::store::NewTemplate;
    use crate::vision::embed::l2_normalised;

    fn model() -> TemplateModel {
        TemplateModel { id: "m".into(), dim: 3 }
    }

    fn face(v: [f32; 3]) -> UnknownEvidence {
        UnknownEvidence {
            thumbnail: vec![0xFF, 0xD8, 1, 2],
            embedding: l2_normalised(&v),
            model: model(),
            threshold: 0.8,
            quality: 0.5,
        }
    }

    fn day(d: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + d * 86_400).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("u.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn the_same_strangers_visits_are_grouped_and_others_are_not() {
        let (_d, mut s) = store();
        let a1 = s.add_unknown_face(day(0), "door", &face([1.0, 0.0, 0.0]), 100).unwrap();
        let b1 = s.add_unknown_face(day(0), "back", &face([0.0, 1.0, 0.0]), 100).unwrap();
        let a2 = s.add_unknown_face(day(1), "back", &face([1.0, 0.1, 0.0]), 100).unwrap();
        let b2 = s.add_unknown_face(day(1), "door", &face([0.1, 1.0, 0.0]), 100).unwrap();
        // Halfway between both: similar to neither at 0.8, so a group of its own.
        let c = s.add_unknown_face(day(2), "door", &face([1.0, 1.0, 0.0]), 100).unwrap();
        assert_eq!((a1.group, b1.group), (a1.id, b1.id), "first faces start their groups");
        assert_eq!(a2.group, a1.group);
        assert_eq!(b2.group, b1.group);
        assert_eq!(c.group, c.id);
        let groups = s.unknown_groups().unwrap();
        let shape: Vec<(i64, Vec<i64>)> =
            groups.iter().map(|g| (g.group, g.faces.iter().map(|f| f.id).collect())).collect();
        assert_eq!(shape, vec![(c.id, vec![c.id]), (b1.id, vec![b2.id, b1.id]), (a1.id, vec![a2.id, a1.id])]);
        assert_eq!(groups[1].cameras(), vec!["door", "back"]);
        // Another model's faces never join this model's groups.
        let mut other = face([1.0, 0.0, 0.0]);
        other.model.id = "n".into();
        let o = s.add_unknown_face(day(2), "door", &other, 100).unwrap();
        assert_eq!(o.group, o.id);
    }

    #[test]
    fn the_cap_drops_the_oldest_and_counts_them() {
        let (_d, mut s) = store();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(s.add_unknown_face(day(i), "door", &face([1.0, i as f32, 0.0]), 3).unwrap());
        }
        assert_eq!(s.unknown_count().unwrap(), 3);
        assert_eq!(s.unknown_dropped().unwrap(), 2);
        assert_eq!(ids[4].dropped, 1);
        assert!(s.unknown_thumbnail(ids[0].id).unwrap().is_none(), "the oldest went first");
        assert!(s.unknown_thumbnail(ids[4].id).unwrap().is_some());
        let big = UnknownEvidence { thumbnail: vec![0; MAX_THUMBNAIL_BYTES + 1], ..face([1.0, 0.0, 0.0]) };
        assert!(s.add_unknown_face(day(6), "door", &big, 3).unwrap_err().to_string().contains("thumbnail"));
        let nan = UnknownEvidence { embedding: vec![f32::NAN, 0.0, 0.0], ..face([1.0, 0.0, 0.0]) };
        assert!(s.add_unknown_face(day(6), "door", &nan, 3).is_err());
        assert_eq!(s.unknown_count().unwrap(), 3, "refused faces stored nothing");
    }

    #[test]
    fn retention_erases_old_faces_by_the_given_clock() {
        let (_d, mut s) = store();
        s.add_unknown_face(day(0), "door", &face([1.0, 0.0, 0.0]), 100).unwrap();
        s.add_unknown_face(day(5), "door", &face([0.0, 1.0, 0.0]), 100).unwrap();
        s.add_unknown_face(day(9), "door", &face([0.0, 0.0, 1.0]), 100).unwrap();
        assert_eq!(s.expire_unknown_faces(day(7), 7).unwrap(), 0, "exactly 7 days old is kept");
        assert_eq!(s.expire_unknown_faces(day(10), 7).unwrap(), 1);
        assert_eq!(s.expire_unknown_faces(day(13), 7).unwrap(), 1);
        assert_eq!(s.unknown_count().unwrap(), 1);
        assert_eq!(s.unknown_expired().unwrap(), 2);
    }

    #[test]
    fn samples_dismissal_and_forget_erase_faces() {
        let (_d, mut s) = store();
        let ann = s.add_unknown_face(day(0), "door", &face([1.0, 0.0, 0.0]), 100).unwrap();
        s.add_unknown_face(day(0), "door", &UnknownEvidence { quality: 0.9, ..face([1.0, 0.05, 0.0]) }, 100).unwrap();
        let bob = s.add_unknown_face(day(0), "door", &face([0.0, 1.0, 0.0]), 100).unwrap();
        let samples = s.unknown_samples(ann.group).unwrap();
        assert_eq!(samples.len(), 2);
        assert!(samples[0].quality > samples[1].quality, "best first");
        assert!(s.unknown_samples(9999).unwrap().is_empty());
        // Ann is enrolled (from elsewhere) and then forgotten: her inbox faces go too.
        let t = NewTemplate { embedding: l2_normalised(&[1.0, 0.02, 0.0]), source_sha256: "a".into(), thumbnail: None };
        s.add_templates("Ann", &model(), &[t]).unwrap();
        let report = s.forget("Ann").unwrap();
        assert_eq!(report.unknown_faces, 2);
        assert!(s.unknown_samples(ann.group).unwrap().is_empty());
        assert_eq!(s.unknown_count().unwrap(), 1, "Bob's face stays");
        assert_eq!(s.erase_unknown_group(bob.group).unwrap(), 1);
        assert_eq!(s.unknown_count().unwrap(), 0);
    }
}
