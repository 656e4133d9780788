//! Table-driven tests of every component's flag rules. Each row names the behaviour and asserts
//! the exact outcome: the effective values, or the message the component exits with.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::KubeVersion;
use knetsim_model::flags::{Component, ComponentFlags, Flag, FlagValue};
use knetsim_model::scenario::ClusterConfig;
use knetsim_model::source::Span;

use super::*;

/// Flags as `(name, value)` pairs.
type Items = &'static [(&'static str, &'static str)];
/// The expected outcome of a row: a value, or the component's message.
type Want<T> = Result<T, &'static str>;

fn v(minor: u16) -> KubeVersion {
    KubeVersion::new(minor)
}

/// Types a flag the way the model's schema does, so the rows read like a scenario.
fn typed(name: &str, raw: &str) -> FlagValue {
    match name {
        "service-cluster-ip-range" | "cluster-cidr" => FlagValue::Cidrs(if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(',')
                .map(|s| values::parse_cidr_sloppy(s.trim()).expect("test CIDR"))
                .collect()
        }),
        "allocate-node-cidrs" | "masquerade-all" | "iptables-localhost-nodeports" => {
            FlagValue::Bool(raw == "true")
        }
        "node-cidr-mask-size"
        | "node-cidr-mask-size-ipv4"
        | "node-cidr-mask-size-ipv6"
        | "max-pods"
        | "iptables-masquerade-bit" => FlagValue::Int(raw.parse().expect("test int")),
        "feature-gates" => FlagValue::FeatureGates(
            raw.split(',')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, b) = kv.split_once('=').expect("test gate");
                    (k.to_string(), b == "true")
                })
                .collect(),
        ),
        "nodeport-addresses" | "controllers" => {
            FlagValue::StrList(raw.split(',').map(str::to_string).collect())
        }
        _ => FlagValue::Str(raw.to_string()),
    }
}

fn flags(items: &[(&str, &str)]) -> ComponentFlags {
    ComponentFlags {
        flags: items
            .iter()
            .map(|(name, raw)| {
                let flag = Flag {
                    value: typed(name, raw),
                    raw: raw.to_string(),
                    span: Span::default(),
                };
                (name.to_string(), flag)
            })
            .collect(),
        span: None,
    }
}

/// Flags left as free text, as they arrive when the schema does not type them.
fn text_flags(items: &[(&str, &str)]) -> ComponentFlags {
    ComponentFlags {
        flags: items
            .iter()
            .map(|(name, raw)| {
                let flag = Flag {
                    value: FlagValue::Str(raw.to_string()),
                    raw: raw.to_string(),
                    span: Span::default(),
                };
                (name.to_string(), flag)
            })
            .collect(),
        span: None,
    }
}

fn nets(list: &str) -> Vec<IpNet> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn ips(list: &str) -> Vec<IpAddr> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Feature gates

#[test]
fn gate_lifecycle_per_release() {
    // (behaviour, release, --feature-gates, gate, expected effective value or error)
    let table: &[(&str, u16, &str, &str, Want<bool>)] = &[
        (
            "IPv6DualStack is alpha and off in 1.16",
            16,
            "",
            "IPv6DualStack",
            Ok(false),
        ),
        (
            "IPv6DualStack can be turned on in 1.16",
            16,
            "IPv6DualStack=true",
            "IPv6DualStack",
            Ok(true),
        ),
        (
            "IPv6DualStack is beta and on in 1.21",
            21,
            "",
            "IPv6DualStack",
            Ok(true),
        ),
        (
            "IPv6DualStack beta can be turned off",
            22,
            "IPv6DualStack=false",
            "IPv6DualStack",
            Ok(false),
        ),
        (
            "IPv6DualStack is locked on at GA",
            23,
            "IPv6DualStack=false",
            "IPv6DualStack",
            Err("cannot set feature gate IPv6DualStack to false, feature is locked to true"),
        ),
        (
            "IPv6DualStack is gone from 1.25",
            25,
            "IPv6DualStack=true",
            "IPv6DualStack",
            Err("unrecognized feature gate: IPv6DualStack"),
        ),
        (
            "NFTablesProxyMode does not exist before 1.29",
            28,
            "NFTablesProxyMode=true",
            "NFTablesProxyMode",
            Err("unrecognized feature gate: NFTablesProxyMode"),
        ),
        (
            "NFTablesProxyMode is alpha and off in 1.30",
            30,
            "",
            "NFTablesProxyMode",
            Ok(false),
        ),
        (
            "NFTablesProxyMode is beta and on in 1.31",
            31,
            "",
            "NFTablesProxyMode",
            Ok(true),
        ),
        (
            "NFTablesProxyMode is locked at GA",
            33,
            "NFTablesProxyMode=false",
            "NFTablesProxyMode",
            Err("cannot set feature gate NFTablesProxyMode to false, feature is locked to true"),
        ),
        (
            "MultiCIDRServiceAllocator beta is still off in 1.32",
            32,
            "",
            "MultiCIDRServiceAllocator",
            Ok(false),
        ),
        (
            "MultiCIDRServiceAllocator GA is on in 1.33",
            33,
            "",
            "MultiCIDRServiceAllocator",
            Ok(true),
        ),
        (
            "MultiCIDRServiceAllocator GA is not yet locked in 1.33",
            33,
            "MultiCIDRServiceAllocator=false",
            "MultiCIDRServiceAllocator",
            Ok(false),
        ),
        (
            "MultiCIDRServiceAllocator is locked in 1.34",
            34,
            "MultiCIDRServiceAllocator=false",
            "MultiCIDRServiceAllocator",
            Err(
                "cannot set feature gate MultiCIDRServiceAllocator to false, feature is locked to true",
            ),
        ),
        (
            "DisableAllocatorDualWrite beta is off in 1.33",
            33,
            "",
            "DisableAllocatorDualWrite",
            Ok(false),
        ),
        (
            "DisableAllocatorDualWrite GA is on in 1.34",
            34,
            "",
            "DisableAllocatorDualWrite",
            Ok(true),
        ),
        (
            "CloudDualStackNodeIPs beta is on in 1.29",
            29,
            "",
            "CloudDualStackNodeIPs",
            Ok(true),
        ),
        (
            "CloudDualStackNodeIPs is gone from 1.32",
            32,
            "CloudDualStackNodeIPs=true",
            "CloudDualStackNodeIPs",
            Err("unrecognized feature gate: CloudDualStackNodeIPs"),
        ),
        (
            "ServiceIPStaticSubrange beta is on in 1.25",
            25,
            "",
            "ServiceIPStaticSubrange",
            Ok(true),
        ),
        (
            "AllAlpha turns alpha gates on",
            30,
            "AllAlpha=true",
            "NFTablesProxyMode",
            Ok(true),
        ),
        (
            "an explicit value wins over AllAlpha",
            30,
            "AllAlpha=true,NFTablesProxyMode=false",
            "NFTablesProxyMode",
            Ok(false),
        ),
        (
            "AllBeta=false turns beta gates off",
            31,
            "AllBeta=false",
            "NFTablesProxyMode",
            Ok(false),
        ),
        (
            "AllAlpha leaves GA gates alone",
            33,
            "AllAlpha=false",
            "NFTablesProxyMode",
            Ok(true),
        ),
    ];
    for (name, minor, set, gate, want) in table {
        let set = match typed("feature-gates", set) {
            FlagValue::FeatureGates(m) => m,
            _ => unreachable!(),
        };
        let got = gates::resolve(v(*minor), Some(&set)).map(|g| g.enabled(v(*minor), gate));
        assert_eq!(got, want.map_err(str::to_string), "{name}");
    }
}

#[test]
fn gate_errors_collect_from_1_31_and_stop_at_the_first_before() {
    let set: BTreeMap<String, bool> = [
        ("DisableAllocatorDualWrite", false),
        ("NFTablesProxyMode", false),
    ]
    .into_iter()
    .map(|(k, b)| (k.to_string(), b))
    .collect();
    assert_eq!(
        gates::resolve(v(35), Some(&set)),
        Err("[cannot set feature gate DisableAllocatorDualWrite to false, feature is locked to true, cannot set feature gate NFTablesProxyMode to false, feature is locked to true]".to_string())
    );
    // Up to 1.30 the first error (in knetsim's name order) ends the loop.
    let set: BTreeMap<String, bool> = [
        ("CloudDualStackNodeIPs", false),
        ("ServiceNodePortStaticSubrange", false),
    ]
    .into_iter()
    .map(|(k, b)| (k.to_string(), b))
    .collect();
    assert_eq!(
        gates::resolve(v(30), Some(&set)),
        Err(
            "cannot set feature gate CloudDualStackNodeIPs to false, feature is locked to true"
                .to_string()
        )
    );
    // From 1.31 an unknown gate still ends the loop, with the errors collected so far.
    let set: BTreeMap<String, bool> = [
        ("DisableAllocatorDualWrite", false),
        ("IPv6DualStack", true),
        ("NFTablesProxyMode", false),
    ]
    .into_iter()
    .map(|(k, b)| (k.to_string(), b))
    .collect();
    assert_eq!(
        gates::resolve(v(35), Some(&set)),
        Err("[cannot set feature gate DisableAllocatorDualWrite to false, feature is locked to true, unrecognized feature gate: IPv6DualStack]".to_string())
    );
}

#[test]
fn gate_warnings() {
    let table: &[(&str, u16, &str, &[&str])] = &[
        (
            "setting a GA gate is accepted with a warning",
            23,
            "IPv6DualStack=true",
            &[
                "Setting GA feature gate IPv6DualStack=true. It will be removed in a future release.",
            ],
        ),
        (
            "a gate knetsim has no spec for is accepted with a warning",
            30,
            "InPlacePodVerticalScaling=true",
            &["feature gate InPlacePodVerticalScaling is not modelled by knetsim"],
        ),
        (
            "setting an alpha gate is silent",
            16,
            "IPv6DualStack=true",
            &[],
        ),
    ];
    for (name, minor, set, want) in table {
        let set = match typed("feature-gates", set) {
            FlagValue::FeatureGates(m) => m,
            _ => unreachable!(),
        };
        let got = gates::resolve(v(*minor), Some(&set)).expect(name).warnings;
        assert_eq!(
            got,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn each_component_reports_a_bad_gate_its_own_way() {
    // (behaviour, component, release, expected message)
    let table: &[(&str, Component, u16, &str)] = &[
        (
            "kube-apiserver up to 1.30: pflag wraps the gate error",
            Component::KubeApiserver,
            30,
            "invalid argument \"IPv6DualStack=true\" for \"--feature-gates\" flag: unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kube-apiserver from 1.31: the registry returns it bare",
            Component::KubeApiserver,
            31,
            "unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kube-controller-manager up to 1.31: pflag",
            Component::KubeControllerManager,
            31,
            "invalid argument \"IPv6DualStack=true\" for \"--feature-gates\" flag: unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kube-controller-manager from 1.32: bare",
            Component::KubeControllerManager,
            32,
            "unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kube-scheduler from 1.32: bare",
            Component::KubeScheduler,
            33,
            "unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kubelet up to 1.25: bare",
            Component::Kubelet,
            25,
            "unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kubelet from 1.26: wrapped by its RunE",
            Component::Kubelet,
            26,
            "failed to set feature gates from initial flags-based config: unrecognized feature gate: IPv6DualStack",
        ),
        (
            "kube-proxy: Complete() fails",
            Component::KubeProxy,
            30,
            "failed complete: unrecognized feature gate: IPv6DualStack",
        ),
    ];
    for (name, component, minor, want) in table {
        let mut cluster = ClusterConfig::default();
        cluster.components.insert(
            *component,
            flags(&[("feature-gates", "IPv6DualStack=true")]),
        );
        let cp = configure(v(*minor), &cluster);
        let status = &cp.statuses[component.name()];
        assert!(!status.started, "{name}");
        assert_eq!(status.message.as_deref(), Some(*want), "{name}");
        // The other components are not affected.
        for other in Component::ALL.iter().filter(|c| *c != component) {
            assert!(
                cp.statuses[other.name()].started,
                "{name}: {}",
                other.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kube-apiserver

struct ApiRow {
    name: &'static str,
    minor: u16,
    flags: Items,
    want: Result<(&'static str, ServiceAllocator), &'static str>,
}

#[test]
fn apiserver_service_cluster_ip_range() {
    use ServiceAllocator::{Bitmap, IpAddress};
    let rows = [
        ApiRow {
            name: "the seed guide's ranges are rejected on 1.30 (IPv6 wider than /108)",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94")],
            want: Err(
                "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108",
            ),
        },
        ApiRow {
            name: "still rejected on 1.33: DisableAllocatorDualWrite is off",
            minor: 33,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94")],
            want: Err(
                "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108",
            ),
        },
        ApiRow {
            name: "accepted on 1.34: no bitmap, no size limit",
            minor: 34,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94")],
            want: Ok(("10.96.0.0/12,fc00::4:0:0/94", IpAddress)),
        },
        ApiRow {
            name: "accepted on 1.33 once DisableAllocatorDualWrite is turned on",
            minor: 33,
            flags: &[
                ("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94"),
                ("feature-gates", "DisableAllocatorDualWrite=true"),
            ],
            want: Ok(("10.96.0.0/12,fc00::4:0:0/94", IpAddress)),
        },
        ApiRow {
            name: "the seed guide's /108 fits the bitmap on 1.30",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fc00::0:0:0/108")],
            want: Ok(("10.96.0.0/12,fc00::/108", Bitmap)),
        },
        ApiRow {
            name: "an IPv4 range wider than /12 is rejected",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.0.0.0/8")],
            want: Err(
                "specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12",
            ),
        },
        ApiRow {
            name: "before 1.20 the size message has no detail",
            minor: 19,
            flags: &[("service-cluster-ip-range", "10.0.0.0/8")],
            want: Err("specified --service-cluster-ip-range is too large"),
        },
        ApiRow {
            name: "1.27–1.30 skip the size check with MultiCIDRServiceAllocator alone",
            minor: 30,
            flags: &[
                ("service-cluster-ip-range", "10.0.0.0/8"),
                ("feature-gates", "MultiCIDRServiceAllocator=true"),
            ],
            want: Ok(("10.0.0.0/8", IpAddress)),
        },
        ApiRow {
            name: "a second range before 1.20 needs IPv6DualStack",
            minor: 19,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fd00::/108")],
            want: Err(
                "--secondary-service-cluster-ip-range can only be used if IPv6DualStack feature is enabled",
            ),
        },
        ApiRow {
            name: "with the gate on, 1.19 accepts it",
            minor: 19,
            flags: &[
                ("service-cluster-ip-range", "10.96.0.0/12,fd00::/108"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Ok(("10.96.0.0/12,fd00::/108", Bitmap)),
        },
        ApiRow {
            name: "1.20 names both gates",
            minor: 20,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fd00::/108")],
            want: Err(
                "secondary service cluster-ip range(--service-cluster-ip-range[1]) can only be used if IPv6DualStack and EndpointSlice feature is enabled",
            ),
        },
        ApiRow {
            name: "1.21 is dual-stack by default",
            minor: 21,
            flags: &[("service-cluster-ip-range", "fd00::/108,10.96.0.0/12")],
            want: Ok(("fd00::/108,10.96.0.0/12", Bitmap)),
        },
        ApiRow {
            name: "two ranges of one family",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,10.112.0.0/12")],
            want: Err(
                "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family",
            ),
        },
        ApiRow {
            name: "1.17: every validation error is reported, aggregated",
            minor: 17,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,10.0.0.0/8")],
            want: Err(
                "[--secondary-service-cluster-ip-range can only be used if IPv6DualStack feature is enabled, --service-cluster-ip-range and --secondary-service-cluster-ip-range must be of different IP family, specified --secondary-service-cluster-ip-range is too large]",
            ),
        },
        ApiRow {
            name: "three ranges",
            minor: 30,
            flags: &[(
                "service-cluster-ip-range",
                "10.96.0.0/12,fd00::/108,10.112.0.0/12",
            )],
            want: Err("--service-cluster-ip-range must not contain more than two entries"),
        },
        ApiRow {
            name: "a range with fewer than 8 addresses fails in Complete()",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.0/30")],
            want: Err(
                "error determining service IP ranges for primary service cidr: the service cluster IP range must be at least 8 IP addresses",
            ),
        },
        ApiRow {
            name: "the old capitalised sentence",
            minor: 18,
            flags: &[("service-cluster-ip-range", "10.96.0.0/30")],
            want: Err(
                "error determining service IP ranges for primary service cidr: The service cluster IP range must be at least 8 IP addresses",
            ),
        },
        ApiRow {
            name: "8 addresses are enough",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.0/29")],
            want: Ok(("10.96.0.0/29", Bitmap)),
        },
        ApiRow {
            name: "host bits are masked away",
            minor: 30,
            flags: &[("service-cluster-ip-range", "10.96.0.1/12")],
            want: Ok(("10.96.0.0/12", Bitmap)),
        },
        ApiRow {
            name: "advertise address of the other family (1.30: the bootstrap controller's check)",
            minor: 30,
            flags: &[
                ("service-cluster-ip-range", "10.96.0.0/12,fd00::/108"),
                ("advertise-address", "fd00:1::10"),
            ],
            want: Err(
                "service IP family \"10.96.0.0/12\" must match public address family \"fd00:1::10\"",
            ),
        },
        ApiRow {
            name: "from 1.31 the family check joins the validation aggregate",
            minor: 31,
            flags: &[
                ("service-cluster-ip-range", "10.0.0.0/8"),
                ("advertise-address", "fd00:1::10"),
            ],
            want: Err(
                "[specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12, service IP family \"10.0.0.0/8\" must match public address family \"fd00:1::10\"]",
            ),
        },
        ApiRow {
            name: "advertise address of the primary family",
            minor: 31,
            flags: &[
                ("service-cluster-ip-range", "fd00::/108,10.96.0.0/12"),
                ("advertise-address", "fd00:1::10"),
            ],
            want: Ok(("fd00::/108,10.96.0.0/12", Bitmap)),
        },
        ApiRow {
            name: "1.27–1.29: the IPAddress allocator refuses an IPv6 range shorter than /64 at start-up",
            minor: 28,
            flags: &[
                ("service-cluster-ip-range", "10.96.0.0/12,fd00::/48"),
                ("feature-gates", "MultiCIDRServiceAllocator=true"),
            ],
            want: Err(
                "cannot create cluster secondary IP allocator: shortest allowed prefix length for service CIDR is 64, got 48",
            ),
        },
        ApiRow {
            name: "the same on the primary range",
            minor: 29,
            flags: &[
                ("service-cluster-ip-range", "fd00::/48"),
                ("feature-gates", "MultiCIDRServiceAllocator=true"),
            ],
            want: Err(
                "cannot create cluster IP allocator: shortest allowed prefix length for service CIDR is 64, got 48",
            ),
        },
        ApiRow {
            name: "from 1.30 the server starts and the range gets no allocator (see the warning row)",
            minor: 34,
            flags: &[("service-cluster-ip-range", "10.96.0.0/12,fd00::/48")],
            want: Ok(("10.96.0.0/12,fd00::/48", IpAddress)),
        },
    ];
    for row in rows {
        let f = flags(row.flags);
        let out = apiserver::configure(v(row.minor), Some(&f));
        match row.want {
            Ok((cidrs, kind)) => {
                assert!(out.status.started, "{}: {:?}", row.name, out.status.message);
                let cfg = out.config.expect(row.name);
                assert_eq!(cfg.service_cidrs, nets(cidrs), "{}", row.name);
                assert_eq!(cfg.allocator_kind, kind, "{}", row.name);
            }
            Err(msg) => {
                assert!(!out.status.started, "{}", row.name);
                assert!(out.config.is_none(), "{}", row.name);
                assert_eq!(out.status.message.as_deref(), Some(msg), "{}", row.name);
            }
        }
    }
}

#[test]
fn apiserver_defaults_warnings_and_subranges() {
    // Unset range: the deprecated default and its warning, word for word.
    let out = apiserver::configure(v(30), None);
    let cfg = out.config.expect("starts");
    assert_eq!(cfg.service_cidrs, nets("10.0.0.0/24"));
    assert_eq!(cfg.node_port_range, (30000, 32767));
    assert_eq!(
        out.status.warnings,
        vec!["No CIDR for service cluster IPs specified. Default value which was 10.0.0.0/24 is deprecated and will be removed in future releases. Please specify it using --service-cluster-ip-range on kube-apiserver.".to_string()]
    );
    assert_eq!(out.status.flags["service-cluster-ip-range"], "10.0.0.0/24");
    assert_eq!(out.status.flags["service-node-port-range"], "30000-32767");

    // The IPAddress allocator's /64 floor, logged by the MetaAllocator from 1.30.
    let f = flags(&[("service-cluster-ip-range", "10.96.0.0/12,fd00::/48")]);
    let out = apiserver::configure(v(34), Some(&f));
    assert_eq!(
        out.status.warnings,
        vec!["shortest allowed prefix length for service CIDR is 64, got 48".to_string()]
    );

    // (release, gates, dual_stack, static_subrange, node_port_static_subrange)
    let table: &[(u16, &str, bool, bool, bool)] = &[
        (16, "", false, false, false),
        (16, "IPv6DualStack=true", true, false, false),
        (21, "", true, false, false),
        (24, "", true, false, false),
        (24, "ServiceIPStaticSubrange=true", true, true, false),
        (25, "", true, true, false),
        (27, "", true, true, false),
        (28, "", true, true, true),
        (31, "", true, true, true),
        (37, "", true, true, true),
    ];
    for (minor, gates, dual, static_ip, static_port) in table {
        let f = if gates.is_empty() {
            flags(&[])
        } else {
            flags(&[("feature-gates", gates)])
        };
        let cfg = apiserver::configure(v(*minor), Some(&f))
            .config
            .expect("starts");
        assert_eq!(
            (
                cfg.dual_stack,
                cfg.static_subrange,
                cfg.node_port_static_subrange
            ),
            (*dual, *static_ip, *static_port),
            "1.{minor} {gates}"
        );
    }

    let f = flags(&[("service-node-port-range", "30000-32000")]);
    let out = apiserver::configure(v(30), Some(&f));
    assert_eq!(out.config.expect("starts").node_port_range, (30000, 32000));
}

#[test]
fn apiserver_reads_untyped_flags_with_its_own_parser() {
    let table: &[(&str, Items, Want<&str>)] = &[
        (
            "an unparsable second range",
            &[("service-cluster-ip-range", "10.96.0.0/12,bogus")],
            Err("service-cluster-ip-range[1] is not an ip net"),
        ),
        (
            "an unparsable first range",
            &[("service-cluster-ip-range", "bogus")],
            Err("service-cluster-ip-range[0] is not a valid cidr"),
        ),
        (
            "sloppy IPv4 with leading zeros",
            &[("service-cluster-ip-range", "010.096.0.0/12")],
            Ok("10.96.0.0/12"),
        ),
        (
            "a malformed gate list",
            &[("feature-gates", "IPv6DualStack")],
            Err(
                "invalid argument \"IPv6DualStack\" for \"--feature-gates\" flag: missing bool value for IPv6DualStack",
            ),
        ),
        (
            "an advertise address that is not an address",
            &[("advertise-address", "nope")],
            Err(
                "invalid argument \"nope\" for \"--advertise-address\" flag: failed to parse IP: \"nope\"",
            ),
        ),
    ];
    for (name, items, want) in table {
        let f = text_flags(items);
        let out = apiserver::configure(v(30), Some(&f));
        match want {
            Ok(cidrs) => assert_eq!(out.config.expect(name).service_cidrs, nets(cidrs), "{name}"),
            Err(msg) => assert_eq!(out.status.message.as_deref(), Some(*msg), "{name}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kube-controller-manager

/// The seed guide's error, as KCM logs it when the node mask does not fit the cluster CIDR.
const MASK_MISMATCH: &str = "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family";

/// KCM's message and the controller it names.
type KcmFailure = (&'static str, Option<&'static str>);

struct KcmRow {
    name: &'static str,
    minor: u16,
    flags: Items,
    /// Ok((cluster CIDRs, node masks)) when node IPAM runs; Err((message, controller)).
    want: Result<(&'static str, &'static [u8]), KcmFailure>,
}

#[test]
fn kcm_node_ipam() {
    let rows = [
        KcmRow {
            name: "the seed guide without --node-cidr-mask-size-ipv6: /94 cannot hold /64 blocks",
            minor: 28,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94"),
                ("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94"),
                ("node-cidr-mask-size-ipv4", "24"),
            ],
            want: Err((MASK_MISMATCH, Some("node-ipam-controller"))),
        },
        KcmRow {
            name: "the seed guide's full configuration",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94"),
                ("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94"),
                ("node-cidr-mask-size-ipv4", "24"),
                ("node-cidr-mask-size-ipv6", "108"),
            ],
            want: Ok(("10.128.0.0/12,fc00::8:0:0/94", &[24, 108])),
        },
        KcmRow {
            name: "masks follow the order of the cluster CIDRs",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/48,10.244.0.0/16"),
            ],
            want: Ok(("fd00::/48,10.244.0.0/16", &[64, 24])),
        },
        KcmRow {
            name: "equal masks are allowed (one node)",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.244.0.0/24"),
            ],
            want: Ok(("10.244.0.0/24", &[24])),
        },
        KcmRow {
            name: "host bits of the cluster CIDR are masked",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "192.168.5.219/20"),
            ],
            want: Ok(("192.168.0.0/20", &[24])),
        },
        KcmRow {
            name: "an IPv6 cluster CIDR may hold at most 2^16 node blocks",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/47"),
            ],
            want: Err((
                "New CIDR set failed; the node CIDR size is too big",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "/48 with /64 blocks is the limit",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/48"),
            ],
            want: Ok(("fd00::/48", &[64])),
        },
        KcmRow {
            name: "IPv4 has no such limit",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/8"),
                ("node-cidr-mask-size-ipv4", "30"),
            ],
            want: Ok(("10.0.0.0/8", &[30])),
        },
        KcmRow {
            name: "up to 1.23 the manager wraps what the controller returned",
            minor: 20,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/47"),
            ],
            want: Err((
                "error starting controllers: New CIDR set failed; the node CIDR size is too big",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "--allocate-node-cidrs without --cluster-cidr: the empty value does not parse",
            minor: 30,
            flags: &[("allocate-node-cidrs", "true")],
            want: Err((
                "failed to parse cidr value:\"\" with error:invalid CIDR address: ",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "the same on 1.23",
            minor: 23,
            flags: &[("allocate-node-cidrs", "true")],
            want: Err((
                "error starting controllers: failed to parse cidr value:\"\" with error:invalid CIDR address: ",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "two CIDRs of one family (upstream's unbalanced parenthesis)",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,10.1.0.0/16"),
            ],
            want: Err((
                "len of ClusterCIDRs==2 and they are not configured as dual stack (at least one from each IPFamily",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "three CIDRs, both families",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,fd00::/48,10.1.0.0/16"),
            ],
            want: Err((
                "length of clusterCIDRs is:3 more than max allowed of 2",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "three CIDRs in the old wording",
            minor: 20,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,fd00::/48,10.1.0.0/16"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Err((
                "error starting controllers: len of clusters is:3 > more than max allowed of 2",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "before 1.21 dual-stack cluster CIDRs need the gate",
            minor: 20,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,fd00::/48"),
            ],
            want: Err((
                "error starting controllers: len of ClusterCIDRs==2 and dualstack feature is not enabled",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "1.20 with the gate",
            minor: 20,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,fd00::/48"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Ok(("10.0.0.0/16,fd00::/48", &[24, 64])),
        },
        KcmRow {
            name: "--node-cidr-mask-size with a dual-stack cluster",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16,fd00::/48"),
                ("node-cidr-mask-size", "24"),
            ],
            want: Err((
                "usage of --node-cidr-mask-size is not allowed with dual-stack clusters",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "--node-cidr-mask-size-ipv6 on a single-stack IPv4 cluster",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("node-cidr-mask-size-ipv6", "80"),
            ],
            want: Err((
                "usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "--node-cidr-mask-size-ipv4 on a single-stack IPv6 cluster",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/48"),
                ("node-cidr-mask-size-ipv4", "24"),
            ],
            want: Err((
                "usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "both kinds of mask flag on a single-stack cluster",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("node-cidr-mask-size", "24"),
                ("node-cidr-mask-size-ipv4", "24"),
            ],
            want: Err((
                "usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "single-stack IPv6 with its own flag from 1.21",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/64"),
                ("node-cidr-mask-size-ipv6", "80"),
            ],
            want: Ok(("fd00::/64", &[80])),
        },
        KcmRow {
            name: "1.20 refused the per-family flags on a single-stack cluster (aks-engine#4144)",
            minor: 20,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "ace:cab:deca:1f::/64"),
                ("node-cidr-mask-size-ipv6", "80"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Err((
                "error starting controllers: usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 are not allowed with non dual-stack clusters",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "single-stack --node-cidr-mask-size applies to IPv6 too",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "fd00::/56"),
                ("node-cidr-mask-size", "64"),
            ],
            want: Ok(("fd00::/56", &[64])),
        },
        KcmRow {
            name: "1.16 has no per-family mask flags",
            minor: 16,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("node-cidr-mask-size-ipv4", "24"),
            ],
            want: Err(("unknown flag: --node-cidr-mask-size-ipv4", None)),
        },
        KcmRow {
            name: "1.16 dual-stack: one mask for both families, older wording",
            minor: 16,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.244.0.0/16,fc00::/48"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Err((
                "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than --node-cidr-mask-size",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "service ranges of one family",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("service-cluster-ip-range", "10.96.0.0/12,10.112.0.0/12"),
            ],
            want: Err((
                "serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "1.19 dual service ranges need the gate",
            minor: 19,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("service-cluster-ip-range", "10.96.0.0/12,fd00::/108"),
            ],
            want: Err((
                "error starting controllers: secondary service cidr is provided and IPv6DualStack feature is not enabled",
                Some("nodeipam"),
            )),
        },
        KcmRow {
            name: "three service ranges fail option validation, before any controller",
            minor: 30,
            flags: &[(
                "service-cluster-ip-range",
                "10.96.0.0/12,fd00::/108,10.112.0.0/12",
            )],
            want: Err((
                "--service-cluster-ip-range can not contain more than two entries",
                None,
            )),
        },
        KcmRow {
            name: "CloudAllocator without a cloud provider",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("cidr-allocator-type", "CloudAllocator"),
            ],
            want: Err((
                "--cidr-allocator-type is set to 'CloudAllocator' but cloud provider is not configured",
                Some("node-ipam-controller"),
            )),
        },
        KcmRow {
            name: "an allocator type that does not exist",
            minor: 30,
            flags: &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("cidr-allocator-type", "Magic"),
            ],
            want: Err((
                "invalid CIDR allocator type: Magic",
                Some("node-ipam-controller"),
            )),
        },
    ];
    for row in rows {
        let f = flags(row.flags);
        let out = controller_manager::configure(v(row.minor), Some(&f));
        match row.want {
            Ok((cidrs, masks)) => {
                assert!(out.status.started, "{}: {:?}", row.name, out.status.message);
                let cfg = out.config.expect(row.name);
                assert!(cfg.node_ipam, "{}", row.name);
                assert_eq!(cfg.cluster_cidrs, nets(cidrs), "{}", row.name);
                assert_eq!(cfg.node_mask_sizes, masks, "{}", row.name);
            }
            Err((msg, controller)) => {
                assert!(!out.status.started, "{}", row.name);
                assert_eq!(out.status.message.as_deref(), Some(msg), "{}", row.name);
                assert_eq!(out.status.controller.as_deref(), controller, "{}", row.name);
            }
        }
    }
}

#[test]
fn kcm_without_node_ipam() {
    // (behaviour, flags) — KCM starts, the node IPAM controller does not run.
    let table: &[(&str, Items)] = &[
        (
            "--allocate-node-cidrs defaults to false",
            &[("cluster-cidr", "10.0.0.0/16")],
        ),
        (
            "an invalid --cluster-cidr is not read when not allocating",
            &[("cluster-cidr", "10.0.0.0/16,10.1.0.0/16")],
        ),
        (
            "--controllers can switch the controller off",
            &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("controllers", "*,-nodeipam"),
            ],
        ),
        (
            "a list without * runs only what it names",
            &[
                ("allocate-node-cidrs", "true"),
                ("cluster-cidr", "10.0.0.0/16"),
                ("controllers", "bootstrapsigner"),
            ],
        ),
    ];
    for (name, items) in table {
        let f = flags(items);
        let out = controller_manager::configure(v(30), Some(&f));
        assert!(out.status.started, "{name}");
        let cfg = out.config.expect(name);
        assert!(!cfg.node_ipam, "{name}");
        assert!(cfg.cluster_cidrs.is_empty(), "{name}");
    }

    // The seed guide's service range is KCM's own, kept for filterOutServiceRange.
    let f = flags(&[
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94"),
        ("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94"),
        ("node-cidr-mask-size-ipv6", "108"),
    ]);
    let cfg = controller_manager::configure(v(34), Some(&f))
        .config
        .expect("starts");
    assert_eq!(cfg.service_cidrs, nets("10.96.0.0/12,fc00::4:0:0/94"));
    // The new controller name is an alias too.
    let f = flags(&[
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", "10.0.0.0/16"),
        ("controllers", "*,-node-ipam-controller"),
    ]);
    assert!(
        !controller_manager::configure(v(30), Some(&f))
            .config
            .expect("starts")
            .node_ipam
    );
}

#[test]
fn kcm_effective_flags() {
    let f = flags(&[
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", "10.0.0.0/16"),
    ]);
    let out = controller_manager::configure(v(30), Some(&f));
    let want: BTreeMap<String, String> = [
        ("allocate-node-cidrs", "true"),
        ("cidr-allocator-type", "RangeAllocator"),
        ("cluster-cidr", "10.0.0.0/16"),
        ("node-cidr-mask-size-ipv4", "24"),
        ("node-cidr-mask-size-ipv6", "64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(out.status.flags, want);
    let out = controller_manager::configure(v(16), None);
    assert_eq!(
        out.status
            .flags
            .get("node-cidr-mask-size")
            .map(String::as_str),
        Some("24")
    );
    assert!(!out.status.flags.contains_key("node-cidr-mask-size-ipv4"));
}

// ---------------------------------------------------------------------------------------------
// kubelet

#[test]
fn kubelet_node_ip() {
    // (behaviour, release, cluster kubelet flags, node's --node-ip, expected IPs or message)
    let table: &[(&str, u16, Items, &str, Want<&str>)] = &[
        ("1.19: one address", 19, &[], "10.0.0.1", Ok("10.0.0.1")),
        (
            "1.19: a pair is not an address and is ignored",
            19,
            &[],
            "10.0.0.1,fd00::1",
            Ok(""),
        ),
        (
            "1.20: a pair needs IPv6DualStack",
            20,
            &[],
            "10.0.0.1,fd00::1",
            Err(
                "failed to run Kubelet: dual-stack --node-ip \"10.0.0.1,fd00::1\" not supported in a single-stack cluster",
            ),
        ),
        (
            "1.20 with the gate",
            20,
            &[("feature-gates", "IPv6DualStack=true")],
            "10.0.0.1,fd00::1",
            Ok("10.0.0.1,fd00::1"),
        ),
        (
            "1.21: dual-stack by default, primary first",
            21,
            &[],
            "fd00::1, 10.0.0.1",
            Ok("fd00::1,10.0.0.1"),
        ),
        (
            "1.22: two of one family",
            22,
            &[],
            "10.0.0.1,10.0.0.2",
            Err(
                "failed to run Kubelet: bad --node-ip \"10.0.0.1,10.0.0.2\"; must contain either a single IP or a dual-stack pair of IPs",
            ),
        ),
        (
            "1.22: three addresses",
            22,
            &[],
            "10.0.0.1,fd00::1,10.0.0.2",
            Err(
                "failed to run Kubelet: bad --node-ip \"10.0.0.1,fd00::1,10.0.0.2\"; must contain either a single IP or a dual-stack pair of IPs",
            ),
        ),
        (
            "1.22: no pair with a cloud provider",
            22,
            &[("cloud-provider", "external")],
            "10.0.0.1,fd00::1",
            Err(
                "failed to run Kubelet: dual-stack --node-ip \"10.0.0.1,fd00::1\" not supported when using a cloud provider",
            ),
        ),
        (
            "1.22: no unspecified address in a pair",
            22,
            &[],
            "0.0.0.0,fd00::1",
            Err(
                "failed to run Kubelet: dual-stack --node-ip \"0.0.0.0,fd00::1\" cannot include '0.0.0.0' or '::'",
            ),
        ),
        (
            "1.30: ips.go wording",
            30,
            &[],
            "10.0.0.1,10.0.0.2",
            Err(
                "failed to run Kubelet: bad --node-ip \"10.0.0.1,10.0.0.2\": must contain either a single IP or a dual-stack pair of IPs",
            ),
        ),
        (
            "1.28: external cloud provider needs CloudDualStackNodeIPs (alpha)",
            28,
            &[("cloud-provider", "external")],
            "10.0.0.1,fd00::1",
            Err(
                "failed to run Kubelet: bad --node-ip \"10.0.0.1,fd00::1\": dual-stack not supported in this configuration",
            ),
        ),
        (
            "1.28 with the gate",
            28,
            &[
                ("cloud-provider", "external"),
                ("feature-gates", "CloudDualStackNodeIPs=true"),
            ],
            "10.0.0.1,fd00::1",
            Ok("10.0.0.1,fd00::1"),
        ),
        (
            "1.30: external is enough (GA)",
            30,
            &[("cloud-provider", "external")],
            "10.0.0.1,fd00::1",
            Ok("10.0.0.1,fd00::1"),
        ),
        (
            "1.30: an in-tree cloud provider never allows a pair",
            30,
            &[("cloud-provider", "gce")],
            "10.0.0.1,fd00::1",
            Err(
                "failed to run Kubelet: bad --node-ip \"10.0.0.1,fd00::1\": dual-stack not supported in this configuration",
            ),
        ),
        (
            "1.30: no unspecified address in a pair",
            30,
            &[],
            "::,10.0.0.1",
            Err(
                "failed to run Kubelet: bad --node-ip \"::,10.0.0.1\": dual-stack node IP cannot include '0.0.0.0' or '::'",
            ),
        ),
        (
            "1.30: entries that do not parse are ignored",
            30,
            &[],
            "10.0.0.1, bogus",
            Ok("10.0.0.1"),
        ),
        (
            "1.30: a single unspecified address means 'detect this family'",
            30,
            &[],
            "::",
            Ok("::"),
        ),
    ];
    for (name, minor, cluster_flags, node_ip, want) in table {
        let cf = flags(cluster_flags);
        let cluster = kubelet::configure(v(*minor), Some(&cf)).config.expect(name);
        let got = kubelet_node_ips(
            v(*minor),
            &cluster,
            &ComponentFlags::default(),
            Some(node_ip),
        );
        assert_eq!(got, want.map(ips).map_err(str::to_string), "{name}");
    }
}

#[test]
fn kubelet_node_flags_override_the_cluster() {
    let cluster = kubelet::configure(v(30), Some(&flags(&[("max-pods", "250")])))
        .config
        .expect("starts");
    assert_eq!(cluster.max_pods, 250);
    assert!(cluster.dual_stack_node_ip_allowed);
    let default = kubelet::configure(v(30), None).config.expect("starts");
    assert_eq!(default.max_pods, 110);

    let node = flags(&[("max-pods", "64")]);
    assert_eq!(kubelet_max_pods(&cluster, &node), 64);
    assert_eq!(kubelet_max_pods(&cluster, &ComponentFlags::default()), 250);

    // A node with its own cloud provider loses the dual-stack pair.
    let node = flags(&[("cloud-provider", "aws")]);
    assert_eq!(
        kubelet_node_ips(v(30), &cluster, &node, Some("10.0.0.1,fd00::1")),
        Err("failed to run Kubelet: bad --node-ip \"10.0.0.1,fd00::1\": dual-stack not supported in this configuration".to_string())
    );
    // A node with a bad gate does not start.
    let node = flags(&[("feature-gates", "IPv6DualStack=true")]);
    assert_eq!(
        kubelet_node_ips(v(30), &cluster, &node, None),
        Err("failed to set feature gates from initial flags-based config: unrecognized feature gate: IPv6DualStack".to_string())
    );
    // A negative --max-pods is rejected by the kubelet's configuration validation.
    let node = flags(&[("max-pods", "-1")]);
    assert_eq!(
        kubelet_node(v(30), &cluster, &node, None),
        Err(
            "invalid configuration: maxPods (--max-pods) -1 must not be a negative number"
                .to_string()
        )
    );
    assert_eq!(kubelet_max_pods(&cluster, &node), 250);
    // The ignored entries are reported.
    let n = kubelet_node(
        v(30),
        &cluster,
        &ComponentFlags::default(),
        Some("bogus,10.0.0.1"),
    )
    .expect("starts");
    assert_eq!(n.ignored_node_ips, vec!["bogus".to_string()]);
    assert_eq!(n.node_ips, ips("10.0.0.1"));
}

#[test]
fn kubelet_node_ip_validation_in_node_status() {
    let table: &[(&str, Option<&str>)] = &[
        ("10.0.0.1", None),
        ("fd00::1", None),
        (
            "127.0.0.1",
            Some("failed to validate nodeIP: nodeIP can't be loopback address"),
        ),
        (
            "::1",
            Some("failed to validate nodeIP: nodeIP can't be loopback address"),
        ),
        (
            "224.0.0.1",
            Some("failed to validate nodeIP: nodeIP can't be a multicast address"),
        ),
        (
            "ff02::1",
            Some("failed to validate nodeIP: nodeIP can't be a multicast address"),
        ),
        (
            "169.254.1.1",
            Some("failed to validate nodeIP: nodeIP can't be a link-local unicast address"),
        ),
        (
            "fe80::1",
            Some("failed to validate nodeIP: nodeIP can't be a link-local unicast address"),
        ),
        (
            "0.0.0.0",
            Some("failed to validate nodeIP: nodeIP can't be an all zeros address"),
        ),
        (
            "::",
            Some("failed to validate nodeIP: nodeIP can't be an all zeros address"),
        ),
        (
            "::ffff:127.0.0.1",
            Some("failed to validate nodeIP: nodeIP can't be loopback address"),
        ),
    ];
    for (ip, want) in table {
        assert_eq!(node_ip_status_error(&ips(ip)).as_deref(), *want, "{ip}");
    }
    assert_eq!(node_ip_status_error(&[]), None);
}

#[test]
fn kubelet_dual_stack_node_ip_allowed_per_release() {
    // (release, cluster kubelet flags, allowed)
    let table: &[(u16, Items, bool)] = &[
        (16, &[("feature-gates", "IPv6DualStack=true")], false),
        (19, &[("feature-gates", "IPv6DualStack=true")], false),
        (20, &[], false),
        (20, &[("feature-gates", "IPv6DualStack=true")], true),
        (21, &[], true),
        (26, &[("cloud-provider", "external")], false),
        (27, &[("cloud-provider", "external")], false),
        (29, &[("cloud-provider", "external")], true),
        (30, &[("cloud-provider", "external")], true),
        (34, &[], true),
    ];
    for (minor, items, want) in table {
        let f = flags(items);
        let cfg = kubelet::configure(v(*minor), Some(&f))
            .config
            .expect("starts");
        assert_eq!(cfg.dual_stack_node_ip_allowed, *want, "1.{minor} {items:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// kube-proxy

struct ProxyRow {
    name: &'static str,
    minor: u16,
    flags: Items,
    /// Ok(effective mode) or Err(message).
    want: Result<&'static str, &'static str>,
}

#[test]
fn proxy_validation() {
    let rows = [
        ProxyRow {
            name: "blank mode is iptables",
            minor: 30,
            flags: &[],
            want: Ok("iptables"),
        },
        ProxyRow {
            name: "ipvs",
            minor: 30,
            flags: &[("proxy-mode", "ipvs")],
            want: Ok("ipvs"),
        },
        ProxyRow {
            name: "the scenario's `mode` key",
            minor: 33,
            flags: &[("mode", "nftables")],
            want: Ok("nftables"),
        },
        ProxyRow {
            name: "nftables does not exist in 1.28",
            minor: 28,
            flags: &[("proxy-mode", "nftables")],
            want: Err(
                "failed validate: KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"nftables\": must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])",
            ),
        },
        ProxyRow {
            name: "nftables is gated off in 1.30",
            minor: 30,
            flags: &[("proxy-mode", "nftables")],
            want: Err(
                "failed validate: KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"nftables\": must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])",
            ),
        },
        ProxyRow {
            name: "nftables with the gate in 1.30",
            minor: 30,
            flags: &[
                ("proxy-mode", "nftables"),
                ("feature-gates", "NFTablesProxyMode=true"),
            ],
            want: Ok("nftables"),
        },
        ProxyRow {
            name: "nftables on by default in 1.31",
            minor: 31,
            flags: &[("proxy-mode", "nftables")],
            want: Ok("nftables"),
        },
        ProxyRow {
            name: "userspace in 1.25",
            minor: 25,
            flags: &[("proxy-mode", "userspace")],
            want: Ok("userspace"),
        },
        ProxyRow {
            name: "userspace is gone in 1.26",
            minor: 26,
            flags: &[("proxy-mode", "userspace")],
            want: Err(
                "failed validate: KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"userspace\": must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])",
            ),
        },
        ProxyRow {
            name: "the comma-joined list of the userspace era",
            minor: 20,
            flags: &[("proxy-mode", "ebpf")],
            want: Err(
                "failed validate: KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"ebpf\": must be iptables,ipvs,userspace or blank (blank means the best-available proxy [currently iptables])",
            ),
        },
        ProxyRow {
            name: "the list with nftables",
            minor: 33,
            flags: &[("proxy-mode", "kernelspace")],
            want: Err(
                "failed validate: KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"kernelspace\": must be iptables, ipvs, nftables or blank (blank means the best-available proxy [currently iptables])",
            ),
        },
        ProxyRow {
            name: "1.20: two cluster CIDRs need IPv6DualStack",
            minor: 20,
            flags: &[("cluster-cidr", "10.244.0.0/16,fd00::/48")],
            want: Err(
                "failed validate: KubeProxyConfiguration.ClusterCIDR: Invalid value: \"10.244.0.0/16,fd00::/48\": only one CIDR allowed (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)",
            ),
        },
        ProxyRow {
            name: "1.20 with the gate",
            minor: 20,
            flags: &[
                ("cluster-cidr", "10.244.0.0/16,fd00::/48"),
                ("feature-gates", "IPv6DualStack=true"),
            ],
            want: Ok("iptables"),
        },
        ProxyRow {
            name: "1.26: two CIDRs of one family",
            minor: 26,
            flags: &[("cluster-cidr", "10.244.0.0/16,10.245.0.0/16")],
            want: Err(
                "failed validate: KubeProxyConfiguration.ClusterCIDR: Invalid value: \"10.244.0.0/16,10.245.0.0/16\": must be a valid DualStack CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)",
            ),
        },
        ProxyRow {
            name: "1.26: three CIDRs",
            minor: 26,
            flags: &[("cluster-cidr", "10.244.0.0/16,fd00::/48,10.245.0.0/16")],
            want: Err(
                "failed validate: KubeProxyConfiguration.ClusterCIDR: Invalid value: \"10.244.0.0/16,fd00::/48,10.245.0.0/16\": only one CIDR allowed or a valid DualStack CIDR (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)",
            ),
        },
        ProxyRow {
            name: "1.31: the DetectLocal.ClusterCIDRs wording (upstream typo and bracket kept)",
            minor: 31,
            flags: &[("cluster-cidr", "10.244.0.0/16,10.245.0.0/16")],
            want: Err(
                "failed validate: KubeProxyConfiguration.DetectLocalConfiguration.ClusterCIDRs: Invalid value: []string{\"10.244.0.0/16\", \"10.245.0.0/16\"}: must be a either a single CIDR or dual-stack pair of CIDRs (e.g. [10.100.0.0/16, fde4:8dba:82e1::/48]",
            ),
        },
        ProxyRow {
            name: "1.31: cluster CIDRs are not checked in another detect-local mode",
            minor: 31,
            flags: &[
                ("cluster-cidr", "10.244.0.0/16,10.245.0.0/16"),
                ("detect-local-mode", "NodeCIDR"),
            ],
            want: Ok("iptables"),
        },
        ProxyRow {
            name: "masquerade bit out of range",
            minor: 30,
            flags: &[("iptables-masquerade-bit", "32")],
            want: Err(
                "failed validate: KubeProxyConfiguration.KubeProxyIPTablesConfiguration.MasqueradeBit: Invalid value: 32: must be within the range [0, 31]",
            ),
        },
        ProxyRow {
            name: "masquerade bit 31",
            minor: 30,
            flags: &[("iptables-masquerade-bit", "31")],
            want: Ok("iptables"),
        },
        ProxyRow {
            name: "`primary` is not a CIDR before 1.29",
            minor: 28,
            flags: &[("nodeport-addresses", "primary")],
            want: Err(
                "failed validate: KubeProxyConfiguration.NodePortAddresses: Invalid value: []string{\"primary\"}: must be a valid IP block",
            ),
        },
        ProxyRow {
            name: "`primary` from 1.29",
            minor: 29,
            flags: &[("nodeport-addresses", "primary")],
            want: Ok("iptables"),
        },
        ProxyRow {
            name: "`primary` with CIDRs",
            minor: 30,
            flags: &[("nodeport-addresses", "10.0.0.0/8,primary")],
            want: Err(
                "failed validate: KubeProxyConfiguration.NodePortAddresses[1]: Invalid value: \"primary\": can't use both 'primary' and CIDRs",
            ),
        },
        ProxyRow {
            name: "a bad nodeport address",
            minor: 30,
            flags: &[("nodeport-addresses", "10.0.0.0")],
            want: Err(
                "failed validate: KubeProxyConfiguration.NodePortAddresses[0]: Invalid value: \"10.0.0.0\": must be a valid CIDR",
            ),
        },
        ProxyRow {
            name: "BridgeInterface needs an interface",
            minor: 30,
            flags: &[("detect-local-mode", "BridgeInterface")],
            want: Err(
                "failed validate: KubeProxyConfiguration.DetectLocalConfiguration.InterfaceName: Invalid value: \"\": must not be empty",
            ),
        },
        ProxyRow {
            name: "an unknown detect-local mode",
            minor: 30,
            flags: &[("detect-local-mode", "Magic")],
            want: Err(
                "failed validate: KubeProxyConfiguration.DetectLocalMode: Unsupported value: \"Magic\": supported values: \"ClusterCIDR\", \"NodeCIDR\", \"BridgeInterface\", \"InterfaceNamePrefix\", \"\"",
            ),
        },
        ProxyRow {
            name: "several errors are aggregated",
            minor: 30,
            flags: &[("iptables-masquerade-bit", "40"), ("proxy-mode", "x")],
            want: Err(
                "failed validate: [KubeProxyConfiguration.KubeProxyIPTablesConfiguration.MasqueradeBit: Invalid value: 40: must be within the range [0, 31], KubeProxyConfiguration.Mode.ProxyMode: Invalid value: \"x\": must be iptables, ipvs or blank (blank means the best-available proxy [currently iptables])]",
            ),
        },
    ];
    for row in rows {
        let f = flags(row.flags);
        let out = proxy::configure(v(row.minor), Some(&f), Some(Family::IPv4));
        match row.want {
            Ok(mode) => {
                assert!(out.status.started, "{}: {:?}", row.name, out.status.message);
                assert_eq!(out.config.expect(row.name).mode, mode, "{}", row.name);
            }
            Err(msg) => {
                assert!(!out.status.started, "{}", row.name);
                assert_eq!(out.status.message.as_deref(), Some(msg), "{}", row.name);
            }
        }
    }
}

#[test]
fn proxy_effective_configuration() {
    let out = proxy::configure(v(30), None, Some(Family::IPv4));
    let cfg = out.config.expect("starts");
    assert_eq!(
        (
            cfg.mode.as_str(),
            cfg.detect_local_mode.as_str(),
            cfg.masquerade_bit,
            cfg.localhost_nodeports,
            cfg.masquerade_all
        ),
        ("iptables", "ClusterCIDR", 14, true, false)
    );
    assert!(cfg.nodeport_addresses.is_empty());
    assert_eq!(out.status.flags["proxy-mode"], "iptables");
    assert_eq!(out.status.flags["detect-local-mode"], "ClusterCIDR");

    let f = flags(&[
        ("proxy-mode", "nftables"),
        ("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94"),
        ("masquerade-all", "true"),
        ("iptables-localhost-nodeports", "false"),
    ]);
    let cfg = proxy::configure(v(34), Some(&f), Some(Family::IPv4))
        .config
        .expect("starts");
    assert_eq!(cfg.cluster_cidrs, nets("10.128.0.0/12,fc00::8:0:0/94"));
    assert_eq!(
        cfg.nodeport_addresses,
        vec!["primary".to_string()],
        "nftables defaults to the primary node IPs"
    );
    assert!(cfg.masquerade_all);
    assert!(!cfg.localhost_nodeports);

    let f = flags(&[
        ("detect-local-mode", "InterfaceNamePrefix"),
        ("pod-interface-name-prefix", "veth"),
    ]);
    let cfg = proxy::configure(v(30), Some(&f), Some(Family::IPv4))
        .config
        .expect("starts");
    assert_eq!(cfg.detect_local_mode, "InterfaceNamePrefix");
    assert_eq!(cfg.pod_interface_name_prefix.as_deref(), Some("veth"));
}

#[test]
fn proxy_detect_local_warnings() {
    // (release, --cluster-cidr, primary family, warnings); the proxy starts in every row.
    let table: &[(u16, &str, Family, &[&str])] = &[
        (
            31,
            "fd00::/48",
            Family::IPv4,
            &[
                "Detect-local-mode set to ClusterCIDR, but no cluster CIDR specified for primary IP family",
            ],
        ),
        (
            31,
            "",
            Family::IPv4,
            &[
                "Detect-local-mode set to ClusterCIDR, but no cluster CIDR specified for primary IP family",
            ],
        ),
        (31, "10.244.0.0/16", Family::IPv4, &[]),
        (31, "10.244.0.0/16,fd00::/48", Family::IPv6, &[]),
        (
            28,
            "10.244.0.0/16",
            Family::IPv4,
            &[
                "Detect-local-mode set to ClusterCIDR, but no cluster CIDR for family ipFamily=\"IPv6\"",
            ],
        ),
        (
            27,
            "",
            Family::IPv4,
            &["Detect-local-mode set to ClusterCIDR, but no cluster CIDR defined"],
        ),
        (27, "10.244.0.0/16", Family::IPv4, &[]),
    ];
    for (minor, cidrs, family, want) in table {
        let f = if cidrs.is_empty() {
            flags(&[])
        } else {
            flags(&[("cluster-cidr", cidrs)])
        };
        let out = proxy::configure(v(*minor), Some(&f), Some(*family));
        assert!(out.status.started, "1.{minor} {cidrs}");
        assert_eq!(
            out.status.warnings,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "1.{minor} {cidrs}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The whole control plane

fn seed_cluster(ipv6_node_mask: Option<&'static str>) -> ClusterConfig {
    let mut cluster = ClusterConfig::default();
    cluster.components.insert(
        Component::KubeApiserver,
        flags(&[("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94")]),
    );
    let mut kcm = vec![
        ("allocate-node-cidrs", "true"),
        ("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94"),
        ("service-cluster-ip-range", "10.96.0.0/12,fc00::4:0:0/94"),
        ("node-cidr-mask-size-ipv4", "24"),
    ];
    if let Some(m) = ipv6_node_mask {
        kcm.push(("node-cidr-mask-size-ipv6", m));
    }
    cluster
        .components
        .insert(Component::KubeControllerManager, flags(&kcm));
    cluster.components.insert(
        Component::KubeProxy,
        flags(&[("cluster-cidr", "10.128.0.0/12,fc00::8:0:0/94")]),
    );
    cluster
}

#[test]
fn seed_guide_on_1_30_and_1_34() {
    // 1.30: the API server refuses the /94 service range; everything else starts.
    let cp = configure(v(30), &seed_cluster(Some("108")));
    let api = &cp.statuses["kube-apiserver"];
    assert!(!api.started);
    assert_eq!(
        api.message.as_deref(),
        Some(
            "specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108"
        )
    );
    assert!(cp.apiserver.is_none());
    assert!(cp.network.service_cidrs.is_empty());
    assert!(cp.network.ip_families.is_empty());
    assert!(cp.statuses["kube-controller-manager"].started);
    assert_eq!(
        cp.network.cluster_cidrs,
        nets("10.128.0.0/12,fc00::8:0:0/94")
    );
    assert_eq!(cp.network.node_cidr_mask_sizes, vec![24, 108]);

    // 1.34: accepted, dual-stack, IPAddress allocator.
    let cp = configure(v(34), &seed_cluster(Some("108")));
    for (name, status) in &cp.statuses {
        assert!(status.started, "{name}: {:?}", status.message);
    }
    let api = cp.apiserver.as_ref().expect("starts");
    assert_eq!(api.allocator_kind, ServiceAllocator::IpAddress);
    assert!(api.dual_stack);
    assert_eq!(cp.network.ip_families, vec![Family::IPv4, Family::IPv6]);
    assert_eq!(
        cp.network.service_cidrs,
        nets("10.96.0.0/12,fc00::4:0:0/94")
    );
    assert_eq!(
        cp.network.cluster_cidrs,
        nets("10.128.0.0/12,fc00::8:0:0/94")
    );
    assert_eq!(cp.network.node_cidr_mask_sizes, vec![24, 108]);
    assert_eq!(cp.network.service_node_port_range, (30000, 32767));
    assert_eq!(cp.network.cni, "");
    let proxy = cp.network.kube_proxy.as_ref().expect("kube-proxy runs");
    assert_eq!(proxy.cluster_cidrs, nets("10.128.0.0/12,fc00::8:0:0/94"));
    assert!(cp.scheduler_started);
    assert_eq!(cp.kubelet.max_pods, 110);
    assert_eq!(
        cp.statuses.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-proxy",
            "kube-scheduler",
            "kubelet"
        ]
    );

    // The guide's mask mismatch: KCM stops, with the guide's exact text.
    let cp = configure(v(34), &seed_cluster(None));
    let kcm = &cp.statuses["kube-controller-manager"];
    assert!(!kcm.started);
    assert_eq!(kcm.message.as_deref(), Some(MASK_MISMATCH));
    assert_eq!(kcm.controller.as_deref(), Some("node-ipam-controller"));
    assert!(cp.kcm.is_none());
    assert!(cp.network.cluster_cidrs.is_empty());
}

#[test]
fn the_1_16_page_turns_the_gate_on_everywhere() {
    // Seeds 002/003: IPv6DualStack=true on every component, dual-stack ranges, one node mask
    // for both families (the per-family flags came in 1.17), so the IPv6 CIDR needs a node mask
    // at least as long as its own prefix.
    let gate = ("feature-gates", "IPv6DualStack=true");
    let mut cluster = ClusterConfig::default();
    cluster.components.insert(
        Component::KubeApiserver,
        flags(&[gate, ("service-cluster-ip-range", "10.0.0.0/16,fd00::/108")]),
    );
    cluster.components.insert(
        Component::KubeControllerManager,
        flags(&[
            gate,
            ("allocate-node-cidrs", "true"),
            ("cluster-cidr", "10.244.0.0/16,fc00::/48"),
            ("service-cluster-ip-range", "10.0.0.0/16,fd00::/108"),
        ]),
    );
    cluster
        .components
        .insert(Component::Kubelet, flags(&[gate]));
    cluster.components.insert(
        Component::KubeProxy,
        flags(&[gate, ("cluster-cidr", "10.244.0.0/16,fc00::/48")]),
    );
    let cp = configure(v(16), &cluster);
    assert!(cp.statuses["kube-apiserver"].started);
    assert!(cp.apiserver.as_ref().expect("starts").dual_stack);
    assert!(cp.statuses["kube-proxy"].started);
    assert!(cp.statuses["kubelet"].started);
    assert_eq!(
        cp.statuses["kube-controller-manager"].message.as_deref(),
        Some(
            "Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than --node-cidr-mask-size"
        )
    );
    // Without the gate on the API server, 1.16 refuses the second range.
    cluster.components.insert(
        Component::KubeApiserver,
        flags(&[("service-cluster-ip-range", "10.0.0.0/16,fd00::/108")]),
    );
    assert_eq!(
        configure(v(16), &cluster).statuses["kube-apiserver"]
            .message
            .as_deref(),
        Some(
            "--secondary-service-cluster-ip-range can only be used if IPv6DualStack feature is enabled"
        )
    );
}
