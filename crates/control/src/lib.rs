//! The simulated control plane.
//!
//! The module list below is a map of the code.
//!
//! - [`state`]: the state document ([`ClusterState`]) — Kubernetes-shaped objects plus
//!   knetsim's `components`, `network`, `capacity` and `events` sections.
//! - [`service`]: kube-apiserver's Service REST logic (dual-stack defaulting, IP/NodePort allocation).

pub mod service;
pub mod state;

pub use state::ClusterState;
