//! Who may do what: client keys with scopes, signed commands, and the [`Actor`] a verified
//! command runs as.
//!
//! Every interface (MQTT, the web console, the CLI) turns its caller into an [`Actor`] and hands
//! it to [`crate::api::NodeApi`], which checks the scope a request needs before doing anything:
//! one rule, whatever the interface. Keys live in the store (see `act::store::keys`).

pub mod keyring;
pub mod signing;

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::Serialize;

pub use keyring::{Keyring, new_secret};
pub use signing::{canonical_message, sign_payload};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `open_door`.
    Door,
    /// Who gets in: enroll, remove, rename, set_role, set_schedule, set_doors, forget, list_people.
    Manage,
    /// The node itself: reload_config, snapshot.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Door, Scope::Manage, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Door => "door",
            Scope::Manage => "manage",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Scope {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Scope> {
        match s.trim() {
            "door" => Ok(Scope::Door),
            "manage" => Ok(Scope::Manage),
            "admin" => Ok(Scope::Admin),
            other => bail!("unknown scope `{other}`: use door, manage and/or admin (e.g. --scope door,manage)"),
        }
    }
}

/// A set of scopes, written `door,manage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes::of(&Scope::ALL)
    }

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromStr for Scopes {
    type Err = anyhow::Error;
    /// `door,manage`; at least one scope.
    fn from_str(s: &str) -> Result<Scopes> {
        let scopes = s.split(',').filter(|p| !p.trim().is_empty()).map(str::parse).collect::<Result<Vec<Scope>>>()?;
        if scopes.is_empty() {
            bail!("a key needs at least one scope: door, manage and/or admin (e.g. --scope door)");
        }
        Ok(Scopes::of(&scopes))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The interface a request came through (recorded in the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Mqtt,
    Web,
    Cli,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Mqtt => "mqtt",
            Via::Web => "web",
            Via::Cli => "cli",
        }
    }
}

/// Who asks: a verified key (or, for the CLI, the local user who can write the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The key name (`broker-acl` for an unsigned `open_door` allowed by `mqtt.remote_open`).
    pub name: String,
    pub scopes: Scopes,
    pub via: Via,
}

/// The actor name of an unsigned `open_door` that `mqtt.remote_open = "broker_acl"` lets in.
pub const BROKER_ACL_ACTOR: &str = "broker-acl";

impl Actor {
    pub fn new(name: impl Into<String>, scopes: Scopes, via: Via) -> Actor {
        Actor { name: name.into(), scopes, via }
    }

    /// The local operator of `facegate` commands: whoever can write the database may do anything.
    pub fn cli() -> Actor {
        let user = std::env::var("USER").unwrap_or_else(|_| "local".into());
        Actor::new(format!("cli:{user}"), Scopes::all(), Via::Cli)
    }

    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }
}

/// Escapes what came from outside (names, ids, error texts quoting them) for one log line:
/// control, bidi-override and other non-printing characters become `\u{..}`.
pub fn loggable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_check() {
        let s: Scopes = "door, manage".parse().unwrap();
        assert!(s.contains(Scope::Door) && s.contains(Scope::Manage) && !s.contains(Scope::Admin));
        assert_eq!(s.to_string(), "door,manage");
        assert!("".parse::<Scopes>().is_err());
        assert!("door,root".parse::<Scopes>().unwrap_err().to_string().contains("root"));
        assert_eq!(Scopes::all().to_string(), "door,manage,admin");
    }

    #[test]
    fn log_text_is_escaped() {
        assert_eq!(loggable("Ann\u{202E}nimda\n"), "Ann\\u{202e}nimda\\u{a}");
        assert_eq!(loggable("Zoë"), "Zoë");
    }
}
