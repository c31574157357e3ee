//! MQTT: events from the outbox out, commands in, Home Assistant discovery.
//!
//! The door and the attendance log never wait on the broker: the service writes events to the
//! SQLite outbox ([`crate::act::Outbox`]) and this module's threads publish them at QoS 1,
//! removing each only on its PUBACK. See docs/mqtt.md for every topic and payload.

pub mod commands;
pub mod config;

pub use commands::{CommandHandler, CommandRules, Commands, Reply};
pub use config::{MqttConfig, MqttTls};
