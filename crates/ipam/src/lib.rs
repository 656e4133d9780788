//! Address allocators, as Kubernetes and CNI plugins implement them.
//!
//! The module list below is a map of the code. Every allocator is a plain value: no I/O, no
//! clock, and randomness only through a [`rng::NamedRng`] passed in.
//!
//! - [`family`]: [`Family`] (IPv4/IPv6) and address arithmetic shared by the allocators.
//! - [`rng`]: named, seeded RNGs (ChaCha8), so each consumer of randomness has its own stream.
//! - `cidrset`: kube-controller-manager's `CidrSet` — one bitmap of node blocks per cluster CIDR.
//! - `range_allocator`: the node IPAM `RangeAllocator` over one `CidrSet` per cluster CIDR.
//! - `service_ip`: kube-apiserver's Service IP allocators (legacy bitmap and KEP-1880 IPAddress),
//!   with KEP-3070's static and dynamic bands.
//! - `host_local`: the `host-local` CNI IPAM over one node podCIDR.
//! - `calico`: Calico IPAM: pools, blocks, block affinity, borrowing, `strictAffinity`.

pub mod family;
pub mod rng;

pub use family::Family;
pub use rng::NamedRng;
