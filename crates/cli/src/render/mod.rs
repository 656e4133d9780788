//! Renderers: the edge where values become text.
//!
//! - [`yaml`]: the kubectl-style YAML writer (state documents, snapshots).
//! - [`json`]: a pretty JSON writer that writes serde_json's text, faster (`run -o json`).
//! - `par`: rendering a large list in parallel batches and writing it in order, for both.

pub mod json;
mod par;
pub mod yaml;
