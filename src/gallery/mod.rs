//! Enrolled people and their face templates, behind a small storage interface.
//!
//! The templates are kept in the SQLite store ([`crate::act::store::Store`]), which implements
//! [`GalleryStore`]; the [`matcher::Matcher`] holds them in memory.

pub mod auto_update;
pub mod matcher;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::vision::embed::Embedding;

/// One enrolled person and the embeddings of their enrolment photos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub templates: Vec<Embedding>,
}

/// Which embedder made the templates: templates from another model are meaningless to this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateModel {
    pub id: String,
    pub dim: usize,
}

/// Where people and templates are kept.
pub trait GalleryStore {
    /// All enrolled people.
    fn people(&self) -> Result<Vec<Person>>;
    /// Adds templates to a person, creating the person if new.
    fn enroll(&mut self, name: &str, templates: Vec<Embedding>) -> Result<()>;
    /// Removes a person; returns whether they existed.
    fn remove(&mut self, name: &str) -> Result<bool>;
}
