//! Renderers: the edge where values become text.

pub mod yaml;
