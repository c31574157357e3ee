//! Getting pixels into facegate. For now: still image files; camera sources come with the
//! appliance.

pub mod image_file;
