//! Deciding over several frames: track faces, vote on who they are, apply cooldowns, and emit
//! one decision per face with its evidence. Time comes from an injectable [`clock::Clock`].
//!
//! Building block for the appliance (issue 3); not yet wired to cameras or the door.

pub mod clock;
pub mod policy;
pub mod tracker;
pub mod voter;
