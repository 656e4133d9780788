//! The same `cluster:` section on every modelled Kubernetes release (1.16 to 1.37).
//!
//! Rather than restating Kubernetes' version rules, the planner starts the control plane on
//! each release with [`PlanConfig::derive`] — `components::configure`, as `run` does — and
//! groups the releases by what happened: each error or warning a component logs, with the
//! releases on which it is logged, in Kubernetes' own words. The Service IP figures, which
//! depend on the allocator the release uses, are grouped the same way.

use std::collections::BTreeMap;
use std::fmt;

use knetsim_ipam::Family;
use knetsim_ipam::service_ip::{AllocatorKind, calculate_range_offset, service_range_size};
use knetsim_model::KubeVersion;
use knetsim_model::scenario::ClusterConfig;
use serde::{Serialize, Serializer};

use crate::config::{PlanConfig, Severity};

/// Consecutive releases `from ..= to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionRange {
    pub from: KubeVersion,
    pub to: KubeVersion,
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

impl Serialize for VersionRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of releases, as the fewest ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Versions(pub Vec<VersionRange>);

impl Versions {
    fn from_sorted(minors: &[u16]) -> Versions {
        let mut out: Vec<VersionRange> = Vec::new();
        for &m in minors {
            let v = KubeVersion::new(m);
            match out.last_mut() {
                Some(r) if r.to.minor + 1 == m => r.to = v,
                _ => out.push(VersionRange { from: v, to: v }),
            }
        }
        Versions(out)
    }

    pub fn contains(&self, v: KubeVersion) -> bool {
        self.0.iter().any(|r| r.from <= v && v <= r.to)
    }

    /// Whether every modelled release is included.
    pub fn is_all(&self) -> bool {
        self.0.len() == 1
            && self.0[0].from == KubeVersion::OLDEST
            && self.0[0].to == KubeVersion::NEWEST
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(", "))
    }
}

/// An error or warning a component logs at start-up, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionedOutcome {
    pub component: String,
    pub severity: Severity,
    pub message: String,
    pub versions: Versions,
    /// Whether the scenario's own release is among them.
    pub applies: bool,
}

/// Service IP figures of one family under the allocator some releases use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionedServiceIps {
    pub family: Family,
    pub allocator: String,
    pub total: u128,
    pub static_band: u128,
    pub versions: Versions,
}

/// Both groupings, from one start-up per release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrossVersions {
    pub outcomes: Vec<VersionedOutcome>,
    pub service_ips: Vec<VersionedServiceIps>,
}

/// Starts `cluster` on every modelled release.
pub fn across_versions(cluster: &ClusterConfig, seed: u64, own: KubeVersion) -> AcrossVersions {
    // Keyed groups remember the order they were first met in (by release, then start order),
    // which is the order the report lists them in.
    let mut outcome_order: Vec<(String, Severity, String)> = Vec::new();
    let mut outcome_minors: BTreeMap<(String, Severity, String), Vec<u16>> = BTreeMap::new();
    let mut ips_order: Vec<(Family, String, u128, u128)> = Vec::new();
    let mut ips_minors: BTreeMap<(Family, String, u128, u128), Vec<u16>> = BTreeMap::new();
    for minor in KubeVersion::OLDEST.minor..=KubeVersion::NEWEST.minor {
        let cfg = PlanConfig::derive(KubeVersion::new(minor), seed, cluster);
        for o in &cfg.outcomes {
            let key = (o.component.clone(), o.severity, o.message.clone());
            let minors = outcome_minors.entry(key.clone()).or_default();
            if minors.is_empty() {
                outcome_order.push(key);
            }
            // A component may log the same warning twice (once per range); count the release once.
            if minors.last() != Some(&minor) {
                minors.push(minor);
            }
        }
        if let Some(s) = &cfg.services {
            for cidr in &s.cidrs {
                let key = (
                    Family::of_net(cidr),
                    allocator_name(s.allocator).to_string(),
                    service_range_size(cidr, s.allocator),
                    if s.static_subrange {
                        calculate_range_offset(cidr)
                    } else {
                        0
                    },
                );
                let minors = ips_minors.entry(key.clone()).or_default();
                if minors.is_empty() {
                    ips_order.push(key);
                }
                minors.push(minor);
            }
        }
    }
    // Errors before warnings; within each, in the order releases first show them.
    outcome_order.sort_by_key(|(_, severity, _)| *severity);
    let outcomes = outcome_order
        .into_iter()
        .map(|key| {
            let versions = Versions::from_sorted(&outcome_minors[&key]);
            let applies = versions.contains(own);
            let (component, severity, message) = key;
            VersionedOutcome {
                component,
                severity,
                message,
                versions,
                applies,
            }
        })
        .collect();
    let mut service_ips: Vec<VersionedServiceIps> = ips_order
        .into_iter()
        .map(|key| {
            let versions = Versions::from_sorted(&ips_minors[&key]);
            let (family, allocator, total, static_band) = key;
            VersionedServiceIps {
                family,
                allocator,
                total,
                static_band,
                versions,
            }
        })
        .collect();
    service_ips
        .sort_by(|a, b| (a.family, a.versions.0.first()).cmp(&(b.family, b.versions.0.first())));
    AcrossVersions {
        outcomes,
        service_ips,
    }
}

/// The allocator's name as the state document spells it.
pub fn allocator_name(kind: AllocatorKind) -> &'static str {
    match kind {
        AllocatorKind::Bitmap => "bitmap",
        AllocatorKind::IpAddress => "IPAddress",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_group_into_the_fewest_ranges() {
        let cases: &[(&[u16], &str)] = &[
            (&[16, 17, 18, 19], "1.16-1.19"),
            (&[30], "1.30"),
            (&[16, 17, 20, 21, 22, 37], "1.16-1.17, 1.20-1.22, 1.37"),
            (&[], ""),
        ];
        for (minors, want) in cases {
            assert_eq!(Versions::from_sorted(minors).to_string(), *want);
        }
        let all: Vec<u16> = (16..=37).collect();
        assert!(Versions::from_sorted(&all).is_all());
        assert!(Versions::from_sorted(&[20, 21]).contains(KubeVersion::new(21)));
        assert!(!Versions::from_sorted(&[20, 21]).contains(KubeVersion::new(22)));
    }
}
