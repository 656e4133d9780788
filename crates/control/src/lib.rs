//! The simulated control plane.
//!
//! The module list below is a map of the code.
//!
//! - [`components`]: each component's flags per release: whether it starts, its config, its exit message.
//! - [`state`]: the state document ([`ClusterState`]) — Kubernetes-shaped objects plus
//!   knetsim's `components`, `network`, `capacity` and `events` sections.

pub mod components;
pub mod state;

pub use state::ClusterState;
