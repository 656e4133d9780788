//! The simulated control plane.
//!
//! The module list below is a map of the code.
//!
//! - [`state`]: the state document ([`ClusterState`]) — Kubernetes-shaped objects plus
//!   knetsim's `components`, `network`, `capacity` and `events` sections.

pub mod state;

pub use state::ClusterState;
