//! Address allocators, as Kubernetes and CNI plugins implement them.
//!
//! The module list below is a map of the code. Every allocator is a plain value: no I/O, no
//! clock, and randomness only through a [`rng::NamedRng`] passed in. Error texts are the
//! upstream components' own, word for word; each module names the upstream files it follows.
//!
//! - [`family`]: [`Family`] (IPv4/IPv6) and address arithmetic shared by the allocators.
//! - [`rng`]: named, seeded RNGs (ChaCha8), so each consumer of randomness has its own stream.
//! - `intervals` (private): the set of taken offsets every allocator uses, stored as intervals so
//!   that huge ranges (an IPv4 /8 of /32 node blocks, an IPv6 /64 of Service IPs) stay cheap.
//! - [`cidrset`]: kube-controller-manager's [`CidrSet`] — the node blocks of one cluster CIDR,
//!   handed out round-robin.
//! - [`range_allocator`]: the node IPAM [`RangeAllocator`] over one `CidrSet` per cluster CIDR,
//!   including the Service-range filtering and the partial-failure leak.
//! - [`service_ip`]: kube-apiserver's Service IP allocators (legacy bitmap and KEP-1880
//!   IPAddress), with KEP-3070's static and dynamic bands, and the size/offset helpers the
//!   capacity planner uses without building an allocator.
//! - [`host_local`]: the `host-local` CNI IPAM over one node podCIDR (round-robin from the last
//!   reserved address).
//! - [`calico`]: Calico IPAM: pools, blocks, block affinity, borrowing, `strictAffinity`,
//!   `maxBlocksPerHost`, and the Calico defaults.
//! - `proptests` (tests only): property tests of the interval set and every allocator against
//!   simple reference models (allocation/release round-trips, no overlaps, the same choices).

pub mod calico;
pub mod cidrset;
pub mod family;
pub mod host_local;
mod intervals;
#[cfg(test)]
mod proptests;
pub mod range_allocator;
pub mod rng;
pub mod service_ip;

pub use calico::{CalicoIpam, CalicoUsage, IpPool};
pub use cidrset::{CidrSet, CidrSetError};
pub use family::Family;
pub use host_local::{HostLocal, host_local_capacity};
pub use range_allocator::RangeAllocator;
pub use rng::NamedRng;
pub use service_ip::{
    AllocatorKind, ServiceIpAllocator, ServiceIpError, calculate_range_offset, service_range_size,
};
