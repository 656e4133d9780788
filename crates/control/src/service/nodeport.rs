//! kube-apiserver's NodePort allocator over `--service-node-port-range`
//! (`pkg/registry/core/service/portallocator/allocator.go`, `operation.go`) and the Service
//! REST code that hands ports out (`pkg/registry/core/service/storage/alloc.go initNodePorts`,
//! `updateNodePorts`, `allocHealthCheckNodePort`, `updateHealthCheckNodePort`).
//!
//! Dynamic allocation is a random probe followed by a linear scan with wrap-around
//! (`allocator/bitmap.go randomScanStrategy`). With ServiceNodePortStaticSubrange (KEP-3668)
//! the range is split: the first `min(max(16, size/32), 128)` ports are the static band,
//! preferred for user-chosen ports; dynamic allocation scans the upper band first and only
//! falls back to the static band when the upper one is full (`randomScanStrategyWithOffset`).

use std::collections::BTreeSet;
use std::fmt;

use knetsim_ipam::NamedRng;
use rand::RngExt;

/// Errors of the port allocator (`portallocator/allocator.go`), printed as Kubernetes prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortError {
    /// `ErrFull`.
    Full,
    /// `ErrAllocated`.
    Allocated,
    /// `ErrNotInRange`, with the range as `net.PortRange.String()` prints it.
    NotInRange(String),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Full => f.write_str("range is full"),
            PortError::Allocated => f.write_str("provided port is already allocated"),
            PortError::NotInRange(r) => write!(
                f,
                "provided port is not in the valid range. The range of valid ports is {r}"
            ),
        }
    }
}

/// The NodePort allocator: a bitmap over `[base, base+size)`.
#[derive(Debug)]
pub struct NodePortAllocator {
    base: u32,
    size: u32,
    /// Size of the static band at the bottom of the range (0 without KEP-3668).
    offset: u32,
    used: BTreeSet<u32>,
    rng: NamedRng,
}

/// `calculateRangeOffset`: `min(max(16, size/32), 128)`, 0 for ranges of 16 ports or fewer.
pub fn static_band(size: u32) -> u32 {
    if size <= 16 {
        0
    } else {
        (size / 32).clamp(16, 128)
    }
}

impl NodePortAllocator {
    /// An allocator over `first..=last` (`--service-node-port-range`, as `net.ParsePortRange`
    /// reads it: both ends included).
    pub fn new(
        first: u16,
        last: u16,
        static_subrange: bool,
        rng: NamedRng,
    ) -> Result<Self, String> {
        if last < first {
            return Err(format!("invalid port range {first}-{last}"));
        }
        let size = last as u32 - first as u32 + 1;
        Ok(NodePortAllocator {
            base: first as u32,
            size,
            offset: if static_subrange {
                static_band(size)
            } else {
                0
            },
            used: BTreeSet::new(),
            rng,
        })
    }

    /// `net.PortRange.String()`: `base-last`, or just `base` for a one-port range.
    pub fn range_string(&self) -> String {
        let last = self.base + self.size - 1;
        if self.size == 1 {
            self.base.to_string()
        } else {
            format!("{}-{}", self.base, last)
        }
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn used(&self) -> u32 {
        self.used.len() as u32
    }

    pub fn static_band_size(&self) -> u32 {
        self.offset
    }

    pub fn is_allocated(&self, port: i64) -> bool {
        self.offset_of(port)
            .map(|o| self.used.contains(&o))
            .unwrap_or(false)
    }

    fn offset_of(&self, port: i64) -> Option<u32> {
        let base = self.base as i64;
        if port >= base && port < base + self.size as i64 {
            Some((port - base) as u32)
        } else {
            None
        }
    }

    /// `Allocate(port)`: a user-chosen port, from either band.
    pub fn allocate(&mut self, port: i64) -> Result<(), PortError> {
        let Some(off) = self.offset_of(port) else {
            return Err(PortError::NotInRange(self.range_string()));
        };
        if !self.used.insert(off) {
            return Err(PortError::Allocated);
        }
        Ok(())
    }

    /// `AllocateNext()`.
    pub fn allocate_next(&mut self) -> Result<i64, PortError> {
        if self.used.len() as u32 >= self.size {
            return Err(PortError::Full);
        }
        let upper = self.size - self.offset;
        let start = self.rng.random_range(0..upper);
        for i in 0..upper {
            let at = self.offset + (start + i) % upper;
            if self.used.insert(at) {
                return Ok((self.base + at) as i64);
            }
        }
        if self.offset > 0 {
            let start = self.rng.random_range(0..self.offset);
            for i in 0..self.offset {
                let at = (start + i) % self.offset;
                if self.used.insert(at) {
                    return Ok((self.base + at) as i64);
                }
            }
        }
        Err(PortError::Full)
    }

    /// `Release(port)`: releasing a free or out-of-range port is a no-op.
    pub fn release(&mut self, port: i64) {
        if let Some(off) = self.offset_of(port) {
            self.used.remove(&off);
        }
    }
}

/// `portallocator.PortAllocationOperation`: allocations made for one request, undone unless
/// the request commits, and releases deferred until it commits.
#[derive(Debug, Default)]
pub struct PortOp {
    allocated: Vec<i64>,
    release_deferred: Vec<i64>,
}

impl PortOp {
    pub fn allocate(&mut self, pa: &mut NodePortAllocator, port: i64) -> Result<(), PortError> {
        pa.allocate(port)?;
        self.allocated.push(port);
        Ok(())
    }

    pub fn allocate_next(&mut self, pa: &mut NodePortAllocator) -> Result<i64, PortError> {
        let port = pa.allocate_next()?;
        self.allocated.push(port);
        Ok(port)
    }

    pub fn release_deferred(&mut self, port: i64) {
        self.release_deferred.push(port);
    }

    /// `Commit()`: perform the deferred releases.
    pub fn commit(self, pa: &mut NodePortAllocator) {
        for p in self.release_deferred {
            pa.release(p);
        }
    }

    /// `Finish()` without a commit: undo this operation's allocations.
    pub fn revert(self, pa: &mut NodePortAllocator) {
        for p in self.allocated {
            pa.release(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(first: u16, last: u16, static_subrange: bool) -> NodePortAllocator {
        NodePortAllocator::new(
            first,
            last,
            static_subrange,
            knetsim_ipam::rng::named(1, "test"),
        )
        .unwrap()
    }

    #[test]
    fn static_band_follows_kep_3668() {
        // (range size, band) — `portallocator/allocator_test.go TestCalculateRangeOffset`.
        for (size, band) in [
            (0, 0),
            (16, 0),
            (17, 16),
            (128, 16),
            (2768, 86),
            (4096, 128),
            (65535, 128),
        ] {
            assert_eq!(static_band(size), band, "size {size}");
        }
    }

    #[test]
    fn errors_read_like_kube_apiserver() {
        let mut a = alloc(30000, 32767, true);
        assert_eq!(a.range_string(), "30000-32767");
        a.allocate(30080).unwrap();
        assert_eq!(
            a.allocate(30080).unwrap_err().to_string(),
            "provided port is already allocated"
        );
        assert_eq!(
            a.allocate(80).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert!(a.is_allocated(30080));
        a.release(30080);
        assert!(!a.is_allocated(30080));
    }

    #[test]
    fn dynamic_allocation_prefers_the_upper_band_then_fills_everything() {
        let mut a = alloc(30000, 30031, true); // 32 ports, band 16
        assert_eq!(a.static_band_size(), 16);
        let mut got = Vec::new();
        for _ in 0..16 {
            got.push(a.allocate_next().unwrap());
        }
        assert!(got.iter().all(|p| *p >= 30016), "upper band first: {got:?}");
        for _ in 0..16 {
            got.push(a.allocate_next().unwrap());
        }
        assert_eq!(a.used(), 32);
        assert_eq!(a.allocate_next().unwrap_err(), PortError::Full);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 32);
    }

    #[test]
    fn operation_reverts_allocations_and_defers_releases() {
        let mut a = alloc(30000, 30100, false);
        a.allocate(30001).unwrap();
        let mut op = PortOp::default();
        op.allocate(&mut a, 30002).unwrap();
        op.release_deferred(30001);
        op.revert(&mut a);
        assert!(a.is_allocated(30001));
        assert!(!a.is_allocated(30002));
        let mut op = PortOp::default();
        op.release_deferred(30001);
        op.commit(&mut a);
        assert!(!a.is_allocated(30001));
    }
}
