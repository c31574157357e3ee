//! facegate: a face-recognition door and attendance appliance.
//!
//! Data flows one way: `capture -> vision -> decide -> act`. This crate currently holds the
//! capture of still images, the vision core (MTCNN, alignment, MobileFaceNet on ONNX Runtime),
//! the gallery and matching, evaluation metrics and the command line.

pub mod access;
pub mod act;
pub mod analytics;
pub mod api;
pub mod bulk_enroll;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decide;
pub mod engine;
pub mod enroll;
pub mod eval;
pub mod gallery;
pub mod paths;
pub mod service;
pub mod sysinfo;
pub mod vision;
pub mod web;
