//! TEMPORARY stand-in for `knetsim_ipam::service_ip`, which is being written on another branch
//! (`h-ipam`). Same names and signatures as that API; to be deleted once it lands.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::family::{ip_to_u128, net_size, nth_addr};
use knetsim_ipam::{Family, NamedRng};
use rand::RngExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocatorKind {
    Bitmap,
    IpAddress,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceIpError {
    Full,
    Allocated,
    NotInRange { ip: IpAddr, range: String },
}

impl fmt::Display for ServiceIpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceIpError::Full => f.write_str("range is full"),
            ServiceIpError::Allocated => f.write_str("provided IP is already allocated"),
            ServiceIpError::NotInRange { ip, range } => write!(
                f,
                "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}"
            ),
        }
    }
}

#[derive(Debug)]
pub struct ServiceIpAllocator {
    cidr: IpNet,
    max: u128,
    offset: u128,
    used: BTreeSet<u128>,
    rng: NamedRng,
}

impl ServiceIpAllocator {
    pub fn new(
        cidr: IpNet,
        _kind: AllocatorKind,
        static_subrange: bool,
        rng: NamedRng,
    ) -> Result<Self, ServiceIpError> {
        let size = net_size(&cidr);
        let max = match Family::of_net(&cidr) {
            Family::IPv4 => size.saturating_sub(2),
            Family::IPv6 => size.min(65536).saturating_sub(1),
        };
        let offset = if static_subrange && size > 16 {
            (size / 16).clamp(16, 256)
        } else {
            0
        };
        Ok(ServiceIpAllocator {
            cidr: cidr.trunc(),
            max,
            offset: offset.min(max),
            used: BTreeSet::new(),
            rng,
        })
    }

    fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        if Family::of_ip(&ip) != self.family() {
            return None;
        }
        let base = ip_to_u128(self.cidr.network());
        let v = ip_to_u128(ip);
        if v <= base {
            return None;
        }
        let off = v - base - 1;
        (off < self.max).then_some(off)
    }

    pub fn allocate(&mut self, ip: IpAddr) -> Result<(), ServiceIpError> {
        let Some(off) = self.offset_of(ip) else {
            return Err(ServiceIpError::NotInRange {
                ip,
                range: self.cidr.to_string(),
            });
        };
        if !self.used.insert(off) {
            return Err(ServiceIpError::Allocated);
        }
        Ok(())
    }

    pub fn allocate_next(&mut self) -> Result<IpAddr, ServiceIpError> {
        if self.used.len() as u128 >= self.max {
            return Err(ServiceIpError::Full);
        }
        let upper = self.max - self.offset;
        let start = self.rng.random_range(0..upper);
        for i in 0..upper {
            let at = self.offset + (start + i) % upper;
            if self.used.insert(at) {
                return Ok(nth_addr(&self.cidr, at + 1));
            }
        }
        for at in 0..self.offset {
            if self.used.insert(at) {
                return Ok(nth_addr(&self.cidr, at + 1));
            }
        }
        Err(ServiceIpError::Full)
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(off) = self.offset_of(ip) {
            self.used.remove(&off);
        }
    }

    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }

    pub fn size(&self) -> u128 {
        self.max
    }

    pub fn used(&self) -> u128 {
        self.used.len() as u128
    }

    pub fn free(&self) -> u128 {
        self.max - self.used()
    }

    pub fn static_band_size(&self) -> u128 {
        self.offset
    }

    pub fn first_usable(&self) -> IpAddr {
        nth_addr(&self.cidr, 1)
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.offset_of(ip)
            .map(|o| self.used.contains(&o))
            .unwrap_or(false)
    }
}
