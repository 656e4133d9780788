//! Feature gates: the gates knetsim models, their lifecycle per release, and what setting them
//! does.
//!
//! Every Kubernetes component registers the same gate table (`pkg/features/kube_features.go`),
//! so a gate unknown to one component is unknown to all. A gate's spec changes per release
//! (alpha → beta → GA, locked to its default, then removed); [`spec_at`] answers for one
//! release. Setting follows `component-base/featuregate/feature_gate.go`:
//!
//! - a gate the release does not have (not yet added, or already removed) is
//!   `unrecognized feature gate: X` and the component does not start;
//! - a locked gate set to the opposite of its default is
//!   `cannot set feature gate X to false, feature is locked to true`;
//! - setting a GA gate (to its default) is accepted with the warning
//!   `Setting GA feature gate X=true. It will be removed in a future release.`;
//! - `AllAlpha` / `AllBeta` switch every alpha / beta gate not set explicitly.
//!
//! A gate name knetsim has no spec for is accepted with a warning, because knetsim cannot tell
//! whether the release has it; it has no effect on the simulation.

use std::collections::BTreeMap;

use knetsim_model::KubeVersion;

use super::values::{Flags, aggregate, gates_flag};

/// A gate's maturity, as `featuregate.prerelease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Alpha,
    Beta,
    Ga,
}

/// The spec of a gate from release `since` until the next entry of its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub since: u16,
    pub stage: Stage,
    pub default: bool,
    pub locked: bool,
}

/// One modelled gate.
#[derive(Clone, Copy, Debug)]
pub struct GateDef {
    pub name: &'static str,
    /// Specs in release order; the gate does not exist before the first.
    pub specs: &'static [Spec],
    /// The first release that no longer has the gate.
    pub removed_in: Option<u16>,
}

const fn s(since: u16, stage: Stage, default: bool, locked: bool) -> Spec {
    Spec {
        since,
        stage,
        default,
        locked,
    }
}

use Stage::{Alpha, Beta, Ga};

/// The gates knetsim models. Sources: `pkg/features/kube_features.go` of each release (the
/// unversioned `{Default, PreRelease, LockToDefault}` table up to 1.30, the versioned specs from
/// 1.31), whose `// remove in 1.N` comments give the removal releases.
pub const GATES: &[GateDef] = &[
    // KEP-563. Alpha with the single `spec.ipFamily` in 1.16, beta (on) in 1.21, GA 1.23.
    GateDef {
        name: "IPv6DualStack",
        specs: &[
            s(16, Alpha, false, false),
            s(21, Beta, true, false),
            s(23, Ga, true, true),
        ],
        removed_in: Some(25),
    },
    // KEP-752.
    GateDef {
        name: "EndpointSlice",
        specs: &[
            s(16, Alpha, false, false),
            s(17, Beta, true, false),
            s(21, Ga, true, true),
        ],
        removed_in: Some(25),
    },
    // kube-proxy consuming EndpointSlices.
    GateDef {
        name: "EndpointSliceProxying",
        specs: &[
            s(18, Alpha, false, false),
            s(19, Beta, true, false),
            s(22, Ga, true, true),
        ],
        removed_in: Some(25),
    },
    // KEP-1864 (`allocateLoadBalancerNodePorts`).
    GateDef {
        name: "ServiceLBNodePortControl",
        specs: &[
            s(20, Alpha, false, false),
            s(22, Beta, true, false),
            s(24, Ga, true, true),
        ],
        removed_in: Some(26),
    },
    // KEP-1435.
    GateDef {
        name: "MixedProtocolLBService",
        specs: &[
            s(20, Alpha, false, false),
            s(24, Beta, true, false),
            s(26, Ga, true, true),
        ],
        removed_in: Some(28),
    },
    // KEP-2086 (`internalTrafficPolicy`).
    GateDef {
        name: "ServiceInternalTrafficPolicy",
        specs: &[
            s(21, Alpha, false, false),
            s(22, Beta, true, false),
            s(26, Ga, true, true),
        ],
        removed_in: Some(28),
    },
    // KEP-3070: static band of the Service IP range.
    GateDef {
        name: "ServiceIPStaticSubrange",
        specs: &[
            s(24, Alpha, false, false),
            s(25, Beta, true, false),
            s(26, Ga, true, true),
        ],
        removed_in: Some(28),
    },
    // KEP-3668: static band of the NodePort range.
    GateDef {
        name: "ServiceNodePortStaticSubrange",
        specs: &[
            s(27, Alpha, false, false),
            s(28, Beta, true, false),
            s(29, Ga, true, true),
        ],
        removed_in: Some(31),
    },
    // KEP-3705: dual-stack `--node-ip` with `--cloud-provider=external`.
    GateDef {
        name: "CloudDualStackNodeIPs",
        specs: &[
            s(27, Alpha, false, false),
            s(29, Beta, true, false),
            s(30, Ga, true, true),
        ],
        removed_in: Some(32),
    },
    // KEP-1880: ServiceCIDR and IPAddress objects ("remove in 1.37").
    GateDef {
        name: "MultiCIDRServiceAllocator",
        specs: &[
            s(27, Alpha, false, false),
            s(31, Beta, false, false),
            s(33, Ga, true, false),
            s(34, Ga, true, true),
        ],
        removed_in: Some(37),
    },
    // KEP-1880: stop writing the legacy bitmap alongside the IPAddress objects.
    GateDef {
        name: "DisableAllocatorDualWrite",
        specs: &[
            s(31, Alpha, false, false),
            s(33, Beta, false, false),
            s(34, Ga, true, false),
            s(35, Ga, true, true),
        ],
        removed_in: None,
    },
    // KEP-3866.
    GateDef {
        name: "NFTablesProxyMode",
        specs: &[
            s(29, Alpha, false, false),
            s(31, Beta, true, false),
            s(33, Ga, true, true),
        ],
        removed_in: None,
    },
];

/// The special gates every release has (`allAlphaGate`, `allBetaGate`).
const ALL_ALPHA: &str = "AllAlpha";
const ALL_BETA: &str = "AllBeta";

pub fn def(name: &str) -> Option<&'static GateDef> {
    GATES.iter().find(|g| g.name == name)
}

/// The gate's spec in `version`, or `None` when the release does not have the gate.
pub fn spec_at(gate: &GateDef, version: KubeVersion) -> Option<Spec> {
    if gate.removed_in.is_some_and(|r| version.minor >= r) {
        return None;
    }
    gate.specs
        .iter()
        .rev()
        .find(|s| s.since <= version.minor)
        .copied()
}

/// Whether `name` is on, given the effective values of the modelled gates of a component
/// ([`Gates::values`]). A gate the release no longer has is on when it graduated (every gate
/// knetsim models graduated before removal); one it does not have yet is off.
pub fn enabled(values: &BTreeMap<String, bool>, version: KubeVersion, name: &str) -> bool {
    if let Some(v) = values.get(name) {
        return *v;
    }
    match def(name) {
        Some(g) => g.removed_in.is_some_and(|r| version.minor >= r),
        None => false,
    }
}

/// The outcome of a component's `--feature-gates`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gates {
    /// Effective value of every modelled gate the release has.
    pub values: BTreeMap<String, bool>,
    /// What the component logs about the gates it was given.
    pub warnings: Vec<String>,
}

impl Gates {
    pub fn enabled(&self, version: KubeVersion, name: &str) -> bool {
        enabled(&self.values, version, name)
    }
}

/// Applies `--feature-gates` (already split into a map) for `version`. `Err` is the error
/// `featureGate.SetFromMap` returns, before the component wraps it.
///
/// Go iterates the map in random order; knetsim iterates by name so that the reported error is
/// stable. Up to 1.30 the first error ends the loop; from 1.31 (versioned gates) locked-gate
/// errors are collected and an unknown gate ends the loop.
pub fn resolve(
    version: KubeVersion,
    set: Option<&BTreeMap<String, bool>>,
) -> Result<Gates, String> {
    let empty = BTreeMap::new();
    let set = set.unwrap_or(&empty);
    let collect_errors = version.at_least(31);

    let mut errs: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    let mut explicit: BTreeMap<&str, bool> = BTreeMap::new();
    let mut all_alpha = None;
    let mut all_beta = None;
    for (name, &value) in set {
        if name == ALL_ALPHA {
            all_alpha = Some(value);
            continue;
        }
        if name == ALL_BETA {
            all_beta = Some(value);
            continue;
        }
        let Some(gate) = def(name) else {
            warnings.push(format!("feature gate {name} is not modelled by knetsim"));
            continue;
        };
        let Some(spec) = spec_at(gate, version) else {
            errs.push(format!("unrecognized feature gate: {name}"));
            break;
        };
        if spec.locked && spec.default != value {
            errs.push(format!(
                "cannot set feature gate {name} to {value}, feature is locked to {}",
                spec.default
            ));
            if collect_errors {
                continue;
            }
            break;
        }
        // The GA warning exists since about 1.20 (klog.Warningf in SetFromMap).
        if spec.stage == Stage::Ga && version.at_least(20) {
            warnings.push(format!(
                "Setting GA feature gate {name}={value}. It will be removed in a future release."
            ));
        }
        explicit.insert(name.as_str(), value);
    }
    if let Some(msg) = aggregate(&errs) {
        return Err(msg);
    }

    let mut values = BTreeMap::new();
    for gate in GATES {
        let Some(spec) = spec_at(gate, version) else {
            continue;
        };
        let value = explicit
            .get(gate.name)
            .copied()
            .unwrap_or(match spec.stage {
                Stage::Alpha => all_alpha.unwrap_or(spec.default),
                Stage::Beta => all_beta.unwrap_or(spec.default),
                Stage::Ga => spec.default,
            });
        values.insert(gate.name.to_string(), value);
    }
    Ok(Gates { values, warnings })
}

/// Reads and applies a component's `--feature-gates`. `parse_error` and `set_error` turn the
/// flag's raw text and the error into the message the component exits with, for text that
/// does not parse and for gates that cannot be set.
pub(crate) fn from_flags(
    version: KubeVersion,
    flags: Flags<'_>,
    parse_error: impl Fn(&str, &str) -> String,
    set_error: impl Fn(&str, &str) -> String,
) -> Result<Gates, String> {
    let raw = super::values::get(flags, "feature-gates").map_or("", |f| f.raw.as_str());
    let flag = gates_flag(flags).map_err(|e| parse_error(raw, &e))?;
    resolve(version, flag.as_ref()).map_err(|e| set_error(raw, &e))
}
