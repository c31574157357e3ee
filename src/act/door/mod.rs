//! The door relay and the door contact.
