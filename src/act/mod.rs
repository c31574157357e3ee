//! Acting on decisions: the door relay, the SQLite store (people, templates, attendance and the
//! event outbox) and, on top of the outbox, MQTT.
//!
//! Each part sits behind a small interface so tests swap only the hardware edge (the GPIO pin);
//! the store and the broker are always real.

pub mod door;
pub mod events;
pub mod inbox;
pub mod mqtt;
pub mod store;

use anyhow::Result;

/// An event to deliver over MQTT. It is written to the outbox in the same SQLite transaction as
/// the state it reports, so a crash can never leave one without the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique id (a UUID-like string); a redelivery after a crash carries the same id.
    pub event_id: String,
    /// Topic relative to `<prefix>/<node>/`, e.g. `event/decision` or `person/7/last_seen`.
    pub topic: String,
    /// The JSON payload.
    pub payload: Vec<u8>,
    /// Whether the broker should keep it as the topic's last value.
    pub retain: bool,
}

/// An outbox event with its position in the queue (strictly increasing, so delivery is in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub seq: i64,
    pub event: OutboxEvent,
}

/// The durable queue of events not yet acknowledged by the broker.
pub trait Outbox: Send {
    /// Up to `limit` events with `seq > after`, oldest first.
    fn pending(&mut self, after: i64, limit: usize) -> Result<Vec<PendingEvent>>;
    /// Removes an event once the broker acknowledged it (PUBACK).
    fn ack(&mut self, seq: i64) -> Result<()>;
    /// Removes several acknowledged events; an outbox that can do it in one write overrides this.
    fn ack_all(&mut self, seqs: &[i64]) -> Result<()> {
        seqs.iter().try_for_each(|&seq| self.ack(seq))
    }
    /// Events waiting.
    fn waiting(&mut self) -> Result<u64>;
}
