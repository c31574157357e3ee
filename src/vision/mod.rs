//! Face vision: pure functions over images and tensors (detection, alignment, embedding) plus
//! the one module that wraps ONNX Runtime. Nothing here reads config, talks to the network or
//! starts threads.

pub mod align;
pub mod attributes;
pub mod bbox;
pub mod embed;
pub mod enhance;
pub mod liveness;
pub mod models;
pub mod mtcnn;
pub mod pipeline;
pub mod quality;
pub mod regions;
pub mod resize;
pub mod runtime;
pub mod thumbnail;
