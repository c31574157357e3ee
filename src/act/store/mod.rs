//! The SQLite store: people, face templates, attendance and the event outbox.
