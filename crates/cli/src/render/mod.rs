//! Renderers: the edge where values become text.
//!
//! - [`yaml`]: the kubectl-style YAML writer (state documents, snapshots).
//! - [`json`]: a pretty JSON writer that writes serde_json's text, faster (`run -o json`).
//! - [`junit`]: JUnit XML for `knetsim test --junit`.
//! - [`github`]: GitHub Actions workflow commands (annotations) for diagnostics and failures.
//! - `par`: rendering a large list in parallel batches and writing it in order, for both.

pub mod github;
pub mod json;
pub mod junit;
mod par;
pub mod yaml;
