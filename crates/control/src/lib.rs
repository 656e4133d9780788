//! The simulated control plane.
//!
//! The module list below is a map of the code.
//!
//! - [`state`]: the state document ([`ClusterState`]) — Kubernetes-shaped objects plus
//!   knetsim's `components`, `network`, `capacity`, `calico` and `events` sections.
//! - [`components`]: each component's flags, per Kubernetes version: whether it starts, its
//!   effective configuration, and the message it exits with when it does not.
//! - [`service`]: kube-apiserver's Service REST logic: dual-stack defaulting and validation,
//!   ClusterIP and NodePort allocation, kubectl-apply updates.
//! - [`endpointslice`]: the EndpointSlice controller.
//! - [`fxhash`]: the fast hash of the simulation's name indexes.
//! - [`names`]: generated names (`generateName`, `pod-template-hash`).
//! - [`sim`]: the simulation loop: components start, nodes register, node IPAM, workload
//!   controllers, scheduler, kubelet/CNI pod addresses, steps.
//! - [`expect`]: evaluating a scenario's `expect:` entries against the state.
//!
//! Architecture invariant: this crate does no I/O, reads no clock, and draws randomness only
//! from named RNGs seeded by the scenario seed.

pub mod components;
pub mod endpointslice;
pub mod expect;
pub mod fxhash;
pub mod names;
pub mod service;
pub mod sim;
pub mod state;

pub use sim::simulate;
pub use state::ClusterState;
