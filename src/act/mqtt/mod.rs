//! MQTT: events from the outbox out, commands in, Home Assistant discovery.
//!
//! The door and the attendance log never wait on the broker: the service writes events to the
//! SQLite outbox ([`crate::act::Outbox`]) and this module's threads publish them at QoS 1,
//! removing each only on its PUBACK. See docs/mqtt.md for every topic and payload.

pub mod commands;
pub mod config;

pub use commands::{CommandRules, Commands, Reply};
pub use config::{MqttConfig, MqttTls, RemoteOpen};
pub mod discovery;
pub mod service;
mod session_watch;

pub use discovery::{CameraInfo, DiscoveryInfo, DoorInfo, PersonInfo};
pub use service::{MemoryOutbox, MqttService, MqttStats, PeopleSource};

/// Full topic names for one node: `<prefix>/<node>/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub node: String,
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, node: &str) -> Topics {
        Topics { node: node.to_string(), base: format!("{prefix}/{node}") }
    }

    /// `<prefix>/<node>/<relative>`.
    pub fn full(&self, relative: &str) -> String {
        format!("{}/{relative}", self.base)
    }

    /// Retained `online` / `offline` (the Last Will).
    pub fn status(&self) -> String {
        self.full("status")
    }

    pub fn cmd_filter(&self) -> String {
        self.full("cmd/+")
    }

    pub fn reply(&self, request_id: &str) -> String {
        self.full(&format!("reply/{request_id}"))
    }

    /// The command name if `topic` is one of this node's command topics.
    pub fn command_name<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(&self.base)?.strip_prefix("/cmd/").filter(|n| !n.is_empty() && !n.contains('/'))
    }
}
