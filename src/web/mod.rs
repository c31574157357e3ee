//! The local web console served by `facegate run`: live view, people and enrolment,
//! attendance, events and health. Every page needs a logged-in administrator; every change goes
//! through [`console::Console`] (the authorised service API) with that administrator as actor.
//!
//! Layout: `config` (the `[web]` section), `auth` (passwords, sessions, CSRF, rate limits),
//! `live` (the frame feed from the vision stage), `console` (the one place changes happen),
//! `pages` (HTML), `handlers` (HTTP: parse, validate, call, render), `server` (TLS, listener).

pub mod config;

#[cfg(feature = "web")]
pub mod auth;
#[cfg(feature = "web")]
mod bulk;
#[cfg(feature = "web")]
pub mod console;
#[cfg(feature = "web")]
mod events;
#[cfg(feature = "web")]
mod handlers;
#[cfg(feature = "web")]
mod inbox;
pub mod live;
#[cfg(feature = "web")]
mod pages;
#[cfg(feature = "web")]
pub mod server;
#[cfg(feature = "web")]
mod statistics;
#[cfg(feature = "web")]
mod tls;

pub use config::WebConfig;
#[cfg(feature = "web")]
pub use handlers::{WebState, router};
