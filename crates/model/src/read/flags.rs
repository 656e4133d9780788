//! Component flags: the schema of each component, and reading a `cluster.<component>` map.
//!
//! A component's map takes flag names (without dashes) as keys, plus `args:`, a list of
//! `--flag=value` strings pasted from a static pod manifest's `command:`. Both are parsed the
//! way pflag parses a command line (`github.com/spf13/pflag/flag.go`): `--flag=value`,
//! `--flag value` (the next item), `--flag` alone for booleans, `_` normalised to `-`
//! (`cliflag.WordSepNormalizeFunc`, which every Kubernetes component installs). Values are
//! typed by the flag's [`FlagKind`]; bad values get the message the component would exit with.

use std::collections::{BTreeMap, HashMap};

use crate::cidr::parse_cidr_sloppy;
use crate::diag::Diagnostic;
use crate::flags::{Component, ComponentFlags, Flag, FlagDef, FlagKind, FlagValue};
use crate::source::Span;
use crate::yaml::{Node, NodeKind, Resolved, did_you_mean, host_bits_warning};

use super::Ctx;

use FlagKind::{Bool, Cidrs, Enum, FeatureGates, Int, PortRange, Str, StrList};

const fn m(name: &'static str, kind: FlagKind) -> FlagDef {
    FlagDef {
        name,
        kind,
        modelled: true,
    }
}
const fn u(name: &'static str, kind: FlagKind) -> FlagDef {
    FlagDef {
        name,
        kind,
        modelled: false,
    }
}

/// Flags every component takes (klog and version flags, `component-base/logs`).
macro_rules! common_flags {
    () => {
        [
            u("v", Int),
            u("vmodule", Str),
            u("logging-format", Str),
            u("log-flush-frequency", Str),
            u("log-json-info-buffer-size", Str),
            u("log-json-split-stream", Bool),
            u("log-text-info-buffer-size", Str),
            u("log-text-split-stream", Bool),
            u("alsologtostderr", Bool),
            u("logtostderr", Bool),
            u("log-dir", Str),
            u("log-file", Str),
            u("one-output", Bool),
            u("skip-headers", Bool),
            u("stderrthreshold", Str),
        ]
    };
}

// kube-apiserver: cmd/kube-apiserver/app/options/options.go and the option packages it
// embeds (staging/src/k8s.io/apiserver/pkg/server/options, pkg/kubeapiserver/options).
// The unmodelled ones are what kubeadm's static pod manifest
// (cmd/kubeadm/app/phases/controlplane/manifests.go) and common guides pass.
static KUBE_APISERVER: &[FlagDef] = &concat_defs(
    &[
        m("service-cluster-ip-range", Cidrs),
        m("service-node-port-range", PortRange),
        m("feature-gates", FeatureGates),
        m("advertise-address", Str),
        m(
            "endpoint-reconciler-type",
            Enum(&["lease", "none", "master-count"]),
        ),
        m("secure-port", Int),
        u("apiserver-count", Int),
        u("allow-privileged", Bool),
        u("admission-control", Str),
        u("admission-control-config-file", Str),
        u("anonymous-auth", Bool),
        u("api-audiences", Str),
        u("audit-log-format", Str),
        u("audit-log-maxage", Int),
        u("audit-log-maxbackup", Int),
        u("audit-log-maxsize", Int),
        u("audit-log-path", Str),
        u("audit-policy-file", Str),
        u("audit-webhook-config-file", Str),
        u("authentication-config", Str),
        u("authentication-token-webhook-config-file", Str),
        u("authorization-config", Str),
        u("authorization-mode", StrList),
        u("authorization-policy-file", Str),
        u("authorization-webhook-config-file", Str),
        u("bind-address", Str),
        u("cert-dir", Str),
        u("client-ca-file", Str),
        u("cloud-config", Str),
        u("cloud-provider", Str),
        u("cors-allowed-origins", StrList),
        u("default-not-ready-toleration-seconds", Int),
        u("default-unreachable-toleration-seconds", Int),
        u("disable-admission-plugins", StrList),
        u("egress-selector-config-file", Str),
        u("emulated-version", Str),
        u("enable-admission-plugins", StrList),
        u("enable-aggregator-routing", Bool),
        u("enable-bootstrap-token-auth", Bool),
        u("enable-garbage-collector", Bool),
        u("enable-priority-and-fairness", Bool),
        u("encryption-provider-config", Str),
        u("etcd-cafile", Str),
        u("etcd-certfile", Str),
        u("etcd-keyfile", Str),
        u("etcd-prefix", Str),
        u("etcd-servers", StrList),
        u("etcd-servers-overrides", StrList),
        u("event-ttl", Str),
        u("external-hostname", Str),
        u("goaway-chance", Str),
        u("insecure-bind-address", Str),
        u("insecure-port", Int),
        u("kubelet-certificate-authority", Str),
        u("kubelet-client-certificate", Str),
        u("kubelet-client-key", Str),
        u("kubelet-https", Bool),
        u("kubelet-preferred-address-types", StrList),
        u("kubelet-timeout", Str),
        u("livez-grace-period", Str),
        u("max-mutating-requests-inflight", Int),
        u("max-requests-inflight", Int),
        u("min-request-timeout", Int),
        u("oidc-ca-file", Str),
        u("oidc-client-id", Str),
        u("oidc-groups-claim", Str),
        u("oidc-groups-prefix", Str),
        u("oidc-issuer-url", Str),
        u("oidc-username-claim", Str),
        u("oidc-username-prefix", Str),
        u("profiling", Bool),
        u("proxy-client-cert-file", Str),
        u("proxy-client-key-file", Str),
        u("request-timeout", Str),
        u("requestheader-allowed-names", StrList),
        u("requestheader-client-ca-file", Str),
        u("requestheader-extra-headers-prefix", StrList),
        u("requestheader-group-headers", StrList),
        u("requestheader-username-headers", StrList),
        u("runtime-config", Str),
        u("service-account-issuer", Str),
        u("service-account-jwks-uri", Str),
        u("service-account-key-file", Str),
        u("service-account-lookup", Bool),
        u("service-account-max-token-expiration", Str),
        u("service-account-signing-key-file", Str),
        u("shutdown-delay-duration", Str),
        u("tls-cert-file", Str),
    ],
    &[
        u("tls-cipher-suites", StrList),
        u("tls-min-version", Str),
        u("tls-private-key-file", Str),
        u("tls-sni-cert-key", Str),
        u("token-auth-file", Str),
        u("watch-cache", Bool),
        u("watch-cache-sizes", StrList),
    ],
    &common_flags!(),
);

// kube-controller-manager: cmd/kube-controller-manager/app/options/*.go
// (nodeipamcontroller.go, kubecontrollermanager.go, generic options in
// staging/src/k8s.io/controller-manager/config).
static KUBE_CONTROLLER_MANAGER: &[FlagDef] = &concat_defs(
    &[
        m("allocate-node-cidrs", Bool),
        m("cluster-cidr", Cidrs),
        m("service-cluster-ip-range", Cidrs),
        m("node-cidr-mask-size", Int),
        m("node-cidr-mask-size-ipv4", Int),
        m("node-cidr-mask-size-ipv6", Int),
        m(
            "cidr-allocator-type",
            Enum(&[
                "RangeAllocator",
                "CloudAllocator",
                "IPAMFromCluster",
                "IPAMFromCloud",
            ]),
        ),
        m("controllers", StrList),
        m("cloud-provider", Str),
        m("configure-cloud-routes", Bool),
        m("feature-gates", FeatureGates),
        u("address", Str),
        u("attach-detach-reconcile-sync-period", Str),
        u("authentication-kubeconfig", Str),
        u("authentication-skip-lookup", Bool),
        u("authorization-always-allow-paths", StrList),
        u("authorization-kubeconfig", Str),
        u("bind-address", Str),
        u("cert-dir", Str),
        u("client-ca-file", Str),
        u("cloud-config", Str),
        u("cluster-name", Str),
        u("cluster-signing-cert-file", Str),
        u("cluster-signing-duration", Str),
        u("cluster-signing-key-file", Str),
        u("concurrent-deployment-syncs", Int),
        u("concurrent-endpoint-syncs", Int),
        u("concurrent-replicaset-syncs", Int),
        u("concurrent-service-endpoint-syncs", Int),
        u("concurrent-service-syncs", Int),
        u("controller-start-interval", Str),
        u("disable-attach-detach-reconcile-sync", Bool),
        u("enable-dynamic-provisioning", Bool),
        u("enable-garbage-collector", Bool),
        u("enable-hostpath-provisioner", Bool),
        u("flex-volume-plugin-dir", Str),
        u("horizontal-pod-autoscaler-sync-period", Str),
        u("kube-api-burst", Int),
        u("kube-api-content-type", Str),
        u("kube-api-qps", Str),
        u("kubeconfig", Str),
        u("leader-elect", Bool),
        u("leader-elect-lease-duration", Str),
        u("leader-elect-renew-deadline", Str),
        u("leader-elect-resource-lock", Str),
        u("leader-elect-retry-period", Str),
        u("master", Str),
        u("node-monitor-grace-period", Str),
        u("node-monitor-period", Str),
        u("node-startup-grace-period", Str),
        u("pod-eviction-timeout", Str),
        u("port", Int),
        u("profiling", Bool),
        u("requestheader-allowed-names", StrList),
        u("requestheader-client-ca-file", Str),
        u("requestheader-extra-headers-prefix", StrList),
        u("requestheader-group-headers", StrList),
        u("requestheader-username-headers", StrList),
        u("root-ca-file", Str),
        u("route-reconciliation-period", Str),
        u("secure-port", Int),
        u("service-account-private-key-file", Str),
        u("terminated-pod-gc-threshold", Int),
        u("tls-cert-file", Str),
        u("tls-private-key-file", Str),
    ],
    &[
        u("tls-cipher-suites", StrList),
        u("tls-min-version", Str),
        u("use-service-account-credentials", Bool),
    ],
    &common_flags!(),
);

// kube-scheduler: cmd/kube-scheduler/app/options/options.go.
static KUBE_SCHEDULER: &[FlagDef] = &concat_defs(
    &[
        m("feature-gates", FeatureGates),
        u("address", Str),
        u("authentication-kubeconfig", Str),
        u("authentication-tolerate-lookup-failure", Bool),
        u("authorization-always-allow-paths", StrList),
        u("authorization-kubeconfig", Str),
        u("bind-address", Str),
        u("client-ca-file", Str),
        u("config", Str),
        u("kube-api-burst", Int),
        u("kube-api-qps", Str),
        u("kubeconfig", Str),
        u("leader-elect", Bool),
        u("leader-elect-lease-duration", Str),
        u("leader-elect-renew-deadline", Str),
        u("leader-elect-resource-lock", Str),
        u("leader-elect-retry-period", Str),
        u("master", Str),
        u("port", Int),
        u("profiling", Bool),
        u("secure-port", Int),
    ],
    &[
        u("tls-cert-file", Str),
        u("tls-private-key-file", Str),
        u("requestheader-client-ca-file", Str),
    ],
    &common_flags!(),
);

// kubelet: cmd/kubelet/app/options/options.go (flags kept on the command line; most
// settings moved to the KubeletConfiguration file, but the flags still parse).
static KUBELET: &[FlagDef] = &concat_defs(
    &[
        m("max-pods", Int),
        m("node-ip", Str),
        m("cloud-provider", Str),
        m("network-plugin", Str),
        m("pod-cidr", Str),
        m("hairpin-mode", Str),
        m("feature-gates", FeatureGates),
        u("address", Str),
        u("allowed-unsafe-sysctls", StrList),
        u("anonymous-auth", Bool),
        u("authentication-token-webhook", Bool),
        u("authorization-mode", Str),
        u("bootstrap-kubeconfig", Str),
        u("cert-dir", Str),
        u("cgroup-driver", Str),
        u("cgroups-per-qos", Bool),
        u("client-ca-file", Str),
        u("cloud-config", Str),
        u("cluster-dns", StrList),
        u("cluster-domain", Str),
        u("cni-bin-dir", Str),
        u("cni-cache-dir", Str),
        u("cni-conf-dir", Str),
        u("config", Str),
        u("config-dir", Str),
        u("container-log-max-files", Int),
        u("container-log-max-size", Str),
        u("container-runtime", Str),
        u("container-runtime-endpoint", Str),
        u("enforce-node-allocatable", StrList),
        u("eviction-hard", Str),
        u("fail-swap-on", Bool),
        u("healthz-bind-address", Str),
        u("healthz-port", Int),
        u("hostname-override", Str),
        u("image-gc-high-threshold", Int),
        u("image-gc-low-threshold", Int),
        u("image-service-endpoint", Str),
        u("kube-reserved", Str),
        u("kubeconfig", Str),
        u("make-iptables-util-chains", Bool),
        u("network-plugin-mtu", Int),
        u("node-labels", Str),
        u("node-status-update-frequency", Str),
        u("non-masquerade-cidr", Str),
        u("pod-infra-container-image", Str),
        u("pod-manifest-path", Str),
        u("pods-per-core", Int),
        u("port", Int),
        u("protect-kernel-defaults", Bool),
        u("provider-id", Str),
        u("read-only-port", Int),
        u("register-node", Bool),
        u("register-with-taints", Str),
        u("resolv-conf", Str),
        u("root-dir", Str),
        u("rotate-certificates", Bool),
        u("runtime-request-timeout", Str),
        u("system-reserved", Str),
    ],
    &[
        u("tls-cert-file", Str),
        u("tls-private-key-file", Str),
        u("volume-plugin-dir", Str),
    ],
    &common_flags!(),
);

// kube-proxy: cmd/kube-proxy/app/options.go. The real flag is `--proxy-mode` (KubeProxyConfiguration
// calls the field `mode`); the scenario contract names it `mode`, so both are accepted.
static KUBE_PROXY: &[FlagDef] = &concat_defs(
    &[
        m(
            "mode",
            Enum(&["iptables", "ipvs", "nftables", "kernelspace", "userspace"]),
        ),
        m(
            "proxy-mode",
            Enum(&["iptables", "ipvs", "nftables", "kernelspace", "userspace"]),
        ),
        m("cluster-cidr", Cidrs),
        m("masquerade-all", Bool),
        m("nodeport-addresses", StrList),
        m(
            "detect-local-mode",
            Enum(&[
                "ClusterCIDR",
                "NodeCIDR",
                "BridgeInterface",
                "InterfaceNamePrefix",
            ]),
        ),
        m("pod-bridge-interface", Str),
        m("pod-interface-name-prefix", Str),
        m("iptables-masquerade-bit", Int),
        m("iptables-localhost-nodeports", Bool),
        m("feature-gates", FeatureGates),
        m("hostname-override", Str),
        u("bind-address", Str),
        u("bind-address-hard-fail", Bool),
        u("cleanup", Bool),
        u("config", Str),
        u("conntrack-max-per-core", Int),
        u("conntrack-min", Int),
        u("conntrack-tcp-be-liberal", Bool),
        u("conntrack-tcp-timeout-close-wait", Str),
        u("conntrack-tcp-timeout-established", Str),
        u("conntrack-udp-timeout", Str),
        u("conntrack-udp-timeout-stream", Str),
        u("healthz-bind-address", Str),
        u("healthz-port", Int),
        u("init-only", Bool),
        u("iptables-min-sync-period", Str),
        u("iptables-sync-period", Str),
        u("ipvs-exclude-cidrs", StrList),
        u("ipvs-min-sync-period", Str),
        u("ipvs-scheduler", Str),
        u("ipvs-strict-arp", Bool),
        u("ipvs-sync-period", Str),
        u("ipvs-tcp-timeout", Str),
        u("ipvs-tcpfin-timeout", Str),
        u("ipvs-udp-timeout", Str),
        u("kube-api-burst", Int),
        u("kube-api-content-type", Str),
        u("kube-api-qps", Str),
        u("kubeconfig", Str),
        u("master", Str),
        u("metrics-bind-address", Str),
        u("metrics-port", Int),
        u("oom-score-adj", Int),
    ],
    &[
        u("profiling", Bool),
        u("proxy-port-range", Str),
        u("udp-timeout", Str),
        u("write-config-to", Str),
    ],
    &common_flags!(),
);

/// Concatenates flag tables at compile time into a fixed-size array padded with nameless
/// entries ([`flag_schema`] cuts them off). A table that outgrows [`TOTAL`] fails the build.
const fn concat_defs<const N: usize>(
    a: &[FlagDef; N],
    b: &[FlagDef],
    c: &[FlagDef],
) -> [FlagDef; TOTAL] {
    let mut out = [u("", Str); TOTAL];
    let mut i = 0;
    while i < N {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[i] = b[j];
        i += 1;
        j += 1;
    }
    let mut k = 0;
    while k < c.len() {
        out[i] = c[k];
        i += 1;
        k += 1;
    }
    out
}

/// Room for the largest table; unused slots have an empty name and are never matched.
const TOTAL: usize = 120;

pub(crate) fn flag_schema(c: Component) -> &'static [FlagDef] {
    let table: &'static [FlagDef] = match c {
        Component::KubeApiserver => KUBE_APISERVER,
        Component::KubeControllerManager => KUBE_CONTROLLER_MANAGER,
        Component::KubeScheduler => KUBE_SCHEDULER,
        Component::Kubelet => KUBELET,
        Component::KubeProxy => KUBE_PROXY,
    };
    let used = table
        .iter()
        .position(|d| d.name.is_empty())
        .unwrap_or(table.len());
    &table[..used]
}

fn lookup(c: Component, name: &str) -> Option<&'static FlagDef> {
    flag_schema(c).iter().find(|d| d.name == name)
}

/// pflag's `WordSepNormalizeFunc`: `cluster_cidr` is `cluster-cidr`.
fn normalize_name(name: &str) -> String {
    name.replace('_', "-")
}

/// The value of one flag, wherever it was written, before typing.
struct RawValue<'a> {
    /// The text pflag would see.
    text: String,
    /// The YAML node of a map value (`None` for `args:` items).
    node: Option<&'a Node>,
    /// The value's node, or the `args:` item, for sub-spans of list entries.
    span_node: &'a Node,
    /// Byte offset of `text` within `span_node`'s text (after `--flag=` in an args item).
    offset: usize,
}

/// Reads one component's map: flag keys and `args:`.
pub(crate) fn read_component(cx: &mut Ctx<'_>, c: Component, node: &Node) -> ComponentFlags {
    let mut out = ComponentFlags {
        flags: BTreeMap::new(),
        span: Some(node.span),
    };
    let entries = match &node.kind {
        NodeKind::Map(e) => e.as_slice(),
        NodeKind::Null => &[],
        _ => {
            cx.diags.push(crate::yaml::mismatch(
                node,
                "a map of flags (names without the leading dashes) and `args:`",
                c.name(),
            ));
            return out;
        }
    };
    // Where each flag was first set, for "set twice" errors.
    let mut first: HashMap<String, Span> = HashMap::new();
    let mut args_node = None;
    for (k, v) in entries {
        let Some(key) = k.scalar_text() else {
            cx.diags
                .push(crate::yaml::mismatch(k, "a flag name", c.name()));
            continue;
        };
        if key == "args" {
            args_node = Some(v);
            continue;
        }
        let name = normalize_name(key.trim_start_matches('-'));
        let Some(def) = lookup(c, &name) else {
            cx.diags.push(unknown_flag(c, key, k.span));
            continue;
        };
        if key.starts_with('-') {
            cx.diags.push(
                Diagnostic::error(k.span, format!("write flag names without dashes: `{name}`"))
                    .with_label("keys under a component are flag names without the leading `--`"),
            );
            continue;
        }
        let raw = match map_value_text(cx, c, def, v) {
            Some(t) => t,
            None => continue,
        };
        set_flag(
            cx,
            c,
            def,
            RawValue {
                text: raw,
                node: Some(v),
                span_node: v,
                offset: 0,
            },
            k.span,
            &mut first,
            &mut out,
        );
    }
    if let Some(args) = args_node {
        read_args(cx, c, args, &mut first, &mut out);
    }
    out
}

/// The text of a map value as pflag would receive it. Lists are joined with commas (for list
/// flags); a feature-gate map becomes `A=true,B=false`.
fn map_value_text(cx: &mut Ctx<'_>, c: Component, def: &FlagDef, v: &Node) -> Option<String> {
    match &v.kind {
        NodeKind::Null => Some(String::new()),
        NodeKind::Scalar(s) => Some(s.text.clone()),
        NodeKind::Seq(items) if matches!(def.kind, Cidrs | StrList) => {
            let mut parts = Vec::new();
            for item in items {
                match item.scalar_text() {
                    Some(t) => parts.push(t.to_string()),
                    None => {
                        cx.diags.push(crate::yaml::mismatch(
                            item,
                            "a string",
                            &format!("--{}", def.name),
                        ));
                        return None;
                    }
                }
            }
            Some(parts.join(","))
        }
        NodeKind::Map(entries) if def.kind == FeatureGates => {
            let mut parts = Vec::new();
            let mut ok = true;
            for (gk, gv) in entries {
                let Some(gate) = gk.scalar_text() else {
                    cx.diags.push(crate::yaml::mismatch(
                        gk,
                        "a feature gate name",
                        "--feature-gates",
                    ));
                    ok = false;
                    continue;
                };
                match gv.as_scalar().map(|s| (s.resolve(), s.text.as_str())) {
                    Some((Resolved::Bool(b), _)) => parts.push(format!("{gate}={b}")),
                    Some((_, t)) if parse_go_bool(t).is_some() => parts.push(format!("{gate}={t}")),
                    _ => {
                        cx.diags.push(
                            Diagnostic::error(
                                gv.span,
                                format!(
                                    "expected a boolean (true or false) for feature gate {gate}, found {}",
                                    gv.describe()
                                ),
                            )
                            .with_label("expected true or false"),
                        );
                        ok = false;
                    }
                }
            }
            ok.then(|| parts.join(","))
        }
        _ => {
            let expected = match def.kind {
                FeatureGates => "a string `Gate=true,Other=false` or a map of gates to booleans",
                Cidrs => "a comma-separated string of CIDRs (or a list)",
                StrList => "a comma-separated string (or a list)",
                _ => "a single value",
            };
            let _ = c;
            cx.diags.push(crate::yaml::mismatch(
                v,
                expected,
                &format!("--{}", def.name),
            ));
            None
        }
    }
}

fn unknown_flag(c: Component, written: &str, span: Span) -> Diagnostic {
    let name = written.trim_start_matches('-');
    let mut d = Diagnostic::error(span, format!("unknown flag: --{name}"))
        .with_label(format!("{} has no such flag", c.name()));
    let folded = normalize_name(name);
    if let Some(s) = did_you_mean(&folded, flag_schema(c).iter().map(|f| f.name)) {
        d = d.with_help(format!("did you mean `--{s}`?"));
    } else if let Some(other) = Component::ALL
        .into_iter()
        .find(|o| *o != c && lookup(*o, &folded).is_some_and(|f| f.modelled))
    {
        d = d.with_help(format!("--{folded} is a flag of {}", other.name()));
    }
    d
}

#[allow(clippy::too_many_arguments)]
fn set_flag(
    cx: &mut Ctx<'_>,
    c: Component,
    def: &FlagDef,
    raw: RawValue<'_>,
    at: Span,
    first: &mut HashMap<String, Span>,
    out: &mut ComponentFlags,
) {
    if let Some(prev) = first.get(def.name) {
        cx.diags.push(
            Diagnostic::error(at, format!("flag --{} is set twice", def.name))
                .with_label("set again here")
                .with_help(format!("first set at line {}", prev.line)),
        );
        return;
    }
    first.insert(def.name.to_string(), at);
    let value_span = match raw.node {
        Some(n) => n.span,
        None => cx.sub_span(raw.span_node, raw.offset..raw.offset + raw.text.len()),
    };
    if let Some(value) = parse_flag_value(cx, c, def, &raw, value_span) {
        out.flags.insert(
            def.name.to_string(),
            Flag {
                value,
                raw: raw.text,
                span: value_span,
            },
        );
    }
}

/// `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseInt(s, 0, 32)`, as pflag's int32 flags parse: an optional sign, then decimal,
/// `0x` hex, `0o`/leading-`0` octal or `0b` binary.
fn parse_go_int32(s: &str) -> Result<i64, &'static str> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, r)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|ch| ch.is_digit(radix)) {
        return Err("invalid syntax");
    }
    let v = i64::from_str_radix(digits, radix).map_err(|_| "value out of range")?;
    let v = if neg { -v } else { v };
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        return Err("value out of range");
    }
    Ok(v)
}

/// The help line with the component's own exit message for a bad flag value
/// (pflag: `invalid argument %q for %q flag: %v`).
fn exits_with(c: Component, flag: &str, value: &str, err: &str) -> String {
    format!(
        "{} would exit with: invalid argument \"{value}\" for \"--{flag}\" flag: {err}",
        c.name()
    )
}

fn parse_flag_value(
    cx: &mut Ctx<'_>,
    c: Component,
    def: &FlagDef,
    raw: &RawValue<'_>,
    span: Span,
) -> Option<FlagValue> {
    let text = raw.text.as_str();
    let name = def.name;
    match def.kind {
        Bool => {
            let parsed = match raw.node.and_then(|n| n.as_scalar()).map(|s| s.resolve()) {
                Some(Resolved::Bool(b)) => Some(b),
                _ => parse_go_bool(text),
            };
            if parsed.is_none() {
                cx.diags.push(
                    Diagnostic::error(
                        span,
                        format!("expected a boolean (true or false) for --{name}, found `{text}`"),
                    )
                    .with_label("expected true or false")
                    .with_help(exits_with(
                        c,
                        name,
                        text,
                        &format!("strconv.ParseBool: parsing \"{text}\": invalid syntax"),
                    )),
                );
            }
            parsed.map(FlagValue::Bool)
        }
        Int => match parse_go_int32(text) {
            Ok(v) => Some(FlagValue::Int(v)),
            Err(why) => {
                let message = if why == "value out of range" {
                    format!("{text} is out of range for --{name} (a 32-bit integer)")
                } else {
                    format!("expected an integer for --{name}, found `{text}`")
                };
                cx.diags.push(
                    Diagnostic::error(span, message)
                        .with_label("expected an integer")
                        .with_help(exits_with(
                            c,
                            name,
                            text,
                            &format!("strconv.ParseInt: parsing \"{text}\": {why}"),
                        )),
                );
                None
            }
        },
        Str => Some(FlagValue::Str(text.to_string())),
        Enum(values) => {
            if text.is_empty() || values.contains(&text) {
                Some(FlagValue::Enum(text.to_string()))
            } else {
                let mut d = Diagnostic::error(span, format!("invalid value `{text}` for --{name}"))
                    .with_label(format!("expected one of: {}", values.join(", ")));
                if let Some(s) = did_you_mean(text, values.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                cx.diags.push(d);
                None
            }
        }
        StrList => Some(FlagValue::StrList(if text.is_empty() {
            Vec::new()
        } else {
            text.split(',').map(str::to_string).collect()
        })),
        Cidrs => parse_cidr_list(cx, raw, span).map(FlagValue::Cidrs),
        FeatureGates => parse_feature_gates(cx, c, raw, span).map(FlagValue::FeatureGates),
        PortRange => match parse_port_range(text) {
            Ok((lo, hi)) => Some(FlagValue::PortRange(lo, hi)),
            Err(why) => {
                cx.diags.push(
                    Diagnostic::error(span, format!("invalid port range `{text}` for --{name}"))
                        .with_label(why.clone())
                        .with_help(
                            "write `low-high` (30000-32767), `low+size` (30000+2768) or one port",
                        )
                        .with_help(exits_with(c, name, text, &why)),
                );
                None
            }
        },
    }
}

/// A comma-separated list of CIDRs. Every entry is checked, so all bad ones are reported;
/// kube-controller-manager trims the whole value, not the entries (`processCIDRs`).
fn parse_cidr_list(cx: &mut Ctx<'_>, raw: &RawValue<'_>, span: Span) -> Option<Vec<ipnet::IpNet>> {
    let text = raw.text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let lead = raw.text.len() - raw.text.trim_start().len();
    let in_list = text.contains(',');
    let mut out = Vec::new();
    let mut ok = true;
    let mut pos = 0;
    for entry in text.split(',') {
        let start = raw.offset + lead + pos;
        pos += entry.len() + 1;
        let entry_span = if raw.node.is_some_and(|n| n.as_seq().is_some()) {
            span
        } else {
            cx.sub_span(raw.span_node, start..start + entry.len())
        };
        match parse_cidr_sloppy(entry) {
            Ok(p) => {
                if p.host_bits_set() {
                    cx.diags.push(host_bits_warning(entry_span, entry, &p));
                }
                out.push(p.net);
            }
            Err(e) => {
                let mut d = crate::yaml::cidr_error(entry_span, entry, &e, in_list);
                if entry != entry.trim() {
                    d = d.with_help("entries are separated by commas only; remove the spaces");
                }
                cx.diags.push(d);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `featuregate.Set`: `A=true,B=false`; empty entries skipped; names and values trimmed.
fn parse_feature_gates(
    cx: &mut Ctx<'_>,
    c: Component,
    raw: &RawValue<'_>,
    span: Span,
) -> Option<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    for part in raw.text.split(',') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => {
                let k = part.trim();
                cx.diags.push(
                    Diagnostic::error(span, format!("missing bool value for {k}"))
                        .with_label("expected Gate=true or Gate=false")
                        .with_help(exits_with(
                            c,
                            "feature-gates",
                            &raw.text,
                            &format!("missing bool value for {k}"),
                        )),
                );
                return None;
            }
        };
        match parse_go_bool(v) {
            Some(b) => {
                out.insert(k.to_string(), b);
            }
            None => {
                let err = format!(
                    "invalid value of {k}={v}, err: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                );
                cx.diags.push(
                    Diagnostic::error(span, err.clone())
                        .with_label("expected Gate=true or Gate=false")
                        .with_help(exits_with(c, "feature-gates", &raw.text, &err)),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// `utilnet.PortRange.Set` (`k8s.io/apimachinery/pkg/util/net/port_range.go`): `low-high`,
/// `low+offset` or a single port; the error texts are that function's. An empty value is the
/// empty range, returned as (0, 0).
pub(crate) fn parse_port_range(value: &str) -> Result<(u16, u16), String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok((0, 0));
    }
    let atoi = |s: &str| -> Result<i64, String> {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("strconv.Atoi: parsing \"{s}\": invalid syntax"));
        }
        s.parse::<i64>()
            .map_err(|_| format!("strconv.Atoi: parsing \"{s}\": value out of range"))
    };
    let hyphen = value.find('-');
    let plus = value.find('+');
    let (low, high) = match (hyphen, plus) {
        (None, None) => {
            let p = atoi(value)?;
            (p, p)
        }
        (Some(h), None) => (atoi(&value[..h])?, atoi(&value[h + 1..])?),
        (None, Some(p)) => {
            let low = atoi(&value[..p])?;
            (low, low + atoi(&value[p + 1..])?)
        }
        (Some(_), Some(_)) => return Err(format!("unable to parse port range: {value}")),
    };
    if low > 65535 || high > 65535 {
        return Err(format!(
            "the port range cannot be greater than 65535: {value}"
        ));
    }
    if high < low {
        return Err(format!("end port cannot be less than start port: {value}"));
    }
    if low < 0 {
        return Err(format!("unable to parse port range: {value}"));
    }
    Ok((low as u16, high as u16))
}

/// Parses `args:` like pflag parses a command line.
fn read_args(
    cx: &mut Ctx<'_>,
    c: Component,
    args: &Node,
    first: &mut HashMap<String, Span>,
    out: &mut ComponentFlags,
) {
    let items = match &args.kind {
        NodeKind::Seq(items) => items.as_slice(),
        NodeKind::Null => return,
        _ => {
            cx.diags.push(crate::yaml::mismatch(
                args,
                "a list of `--flag=value` strings",
                "args",
            ));
            return;
        }
    };
    let mut positional: Vec<&Node> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let item = &items[i];
        i += 1;
        let Some(text) = item.scalar_text() else {
            cx.diags.push(crate::yaml::mismatch(
                item,
                "a string like `--flag=value`",
                "args",
            ));
            continue;
        };
        // A pasted `command:` starts with the binary (`kube-apiserver`, or a full path).
        if i == 1
            && !text.starts_with('-')
            && (text == c.name() || text.ends_with(&format!("/{}", c.name())))
        {
            continue;
        }
        if text == "--" {
            positional.extend(items[i..].iter());
            break;
        }
        let (dashes, body) = if let Some(b) = text.strip_prefix("--") {
            (2, b)
        } else if let Some(b) = text.strip_prefix('-').filter(|b| !b.is_empty()) {
            // Single-dash arguments are shorthands; the only one Kubernetes components have is
            // klog's `-v`.
            if b == "v" || b.starts_with("v=") {
                (1, b)
            } else {
                let ch = b.chars().next().unwrap_or('-');
                cx.diags.push(
                    Diagnostic::error(
                        item.span,
                        format!("unknown shorthand flag: '{ch}' in {text}"),
                    )
                    .with_label("flags take two dashes: `--name=value`"),
                );
                continue;
            }
        } else {
            positional.push(item);
            continue;
        };
        let (written, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let name = normalize_name(written);
        let Some(def) = lookup(c, &name) else {
            cx.diags.push(unknown_flag(c, written, item.span));
            continue;
        };
        let (raw, span_node, offset) = match value {
            Some(v) => (v.to_string(), item, dashes + written.len() + 1),
            None if def.kind == Bool => ("true".to_string(), item, 0),
            None => match items.get(i) {
                // pflag takes the next argument as the value, whatever it looks like.
                Some(next) if next.scalar_text().is_some() => {
                    i += 1;
                    (next.scalar_text().unwrap_or_default().to_string(), next, 0)
                }
                _ => {
                    cx.diags.push(
                        Diagnostic::error(item.span, format!("flag needs an argument: {text}"))
                            .with_label(format!("expected `{text}=<value>`")),
                    );
                    continue;
                }
            },
        };
        let at = item.span;
        set_flag(
            cx,
            c,
            def,
            RawValue {
                text: raw,
                node: None,
                span_node,
                offset,
            },
            at,
            first,
            out,
        );
    }
    let words: Vec<&str> = positional
        .iter()
        .filter_map(|n| n.scalar_text())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(firstpos) = positional
        .iter()
        .find(|n| n.scalar_text().is_some_and(|t| !t.is_empty()))
    {
        // cobra's Args check in each component's command (cmd/<component>/app/server.go).
        let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        cx.diags.push(
            Diagnostic::error(
                firstpos.span,
                format!(
                    "\"{}\" does not take any arguments, got [{}]",
                    c.name(),
                    quoted.join(" ")
                ),
            )
            .with_label("not a flag")
            .with_help("every item of `args:` must be a flag: `--name=value`"),
        );
    }
}

/// Reads `component.flag=value` edits given on the command line (`knetsim diff --set`). Each
/// argument is a source of its own, named `--set`, so that a diagnostic points at the part of
/// it that is wrong; the value is parsed as pflag parses `--flag=value`, with the same
/// messages and "did you mean" as a scenario's `cluster:` map.
pub fn read_flag_edits(args: &[String]) -> super::Loaded<Vec<crate::flags::FlagEdit>> {
    let mut cx = Ctx::new(&NoFiles);
    let mut edits = Vec::new();
    for arg in args {
        let file = cx.sources.add("--set", "--set", arg.clone());
        if let Some(e) = read_flag_edit(&mut cx, file, arg) {
            edits.push(e);
        }
    }
    cx.finish(Some(edits))
}

fn read_flag_edit(
    cx: &mut Ctx<'_>,
    file: crate::source::FileId,
    text: &str,
) -> Option<crate::flags::FlagEdit> {
    let whole = Node {
        kind: NodeKind::Scalar(crate::yaml::Scalar {
            text: text.to_string(),
            quoted: false,
        }),
        span: Span {
            file,
            start: 0,
            end: text.len(),
            line: 1,
            col: 1,
        },
    };
    let components = || {
        Component::ALL
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((path, value)) = text.split_once('=') else {
        cx.diags.push(
            Diagnostic::error(
                whole.span,
                format!("expected `component.flag=value`, found `{text}`"),
            )
            .with_label("no `=value`")
            .with_help("for example `kube-controller-manager.node-cidr-mask-size-ipv6=64`"),
        );
        return None;
    };
    let Some((comp, written)) = path.split_once('.') else {
        cx.diags.push(
            Diagnostic::error(
                cx.sub_span(&whole, 0..path.len()),
                format!("expected `component.flag=value`, found `{text}`"),
            )
            .with_label("no component before the flag name")
            .with_help(format!("components: {}", components())),
        );
        return None;
    };
    let Some(c) = Component::from_name(comp) else {
        let mut d = Diagnostic::error(
            cx.sub_span(&whole, 0..comp.len()),
            format!("unknown component `{comp}`"),
        )
        .with_label("not a component of `cluster:`");
        d = match did_you_mean(comp, Component::ALL.iter().map(|c| c.name())) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("components: {}", components())),
        };
        cx.diags.push(d);
        return None;
    };
    let flag_span = cx.sub_span(&whole, comp.len() + 1..path.len());
    let name = normalize_name(written.trim_start_matches('-'));
    let Some(def) = lookup(c, &name) else {
        cx.diags.push(unknown_flag(c, written, flag_span));
        return None;
    };
    let mut out = ComponentFlags::default();
    set_flag(
        cx,
        c,
        def,
        RawValue {
            text: value.to_string(),
            node: None,
            span_node: &whole,
            offset: path.len() + 1,
        },
        flag_span,
        &mut HashMap::new(),
        &mut out,
    );
    let flag = out.flags.remove(def.name)?;
    Some(crate::flags::FlagEdit {
        component: c,
        name: def.name.to_string(),
        flag,
    })
}

/// Command-line edits name no files.
struct NoFiles;

impl crate::source::FileLoader for NoFiles {
    fn load(&self, _: &std::path::Path) -> Result<String, String> {
        Err("a command-line edit cannot include files".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_like_apimachinery() {
        type Case = (&'static str, Result<(u16, u16), &'static str>);
        let cases: &[Case] = &[
            ("30000-32767", Ok((30000, 32767))),
            ("30000+2767", Ok((30000, 32767))),
            ("8080", Ok((8080, 8080))),
            (" 1-2 ", Ok((1, 2))),
            ("", Ok((0, 0))),
            ("30000-", Err("strconv.Atoi: parsing \"\": invalid syntax")),
            ("1-2+3", Err("unable to parse port range: 1-2+3")),
            ("2-1", Err("end port cannot be less than start port: 2-1")),
            (
                "1-70000",
                Err("the port range cannot be greater than 65535: 1-70000"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_port_range(input),
                want.map_err(str::to_string),
                "{input:?}"
            );
        }
    }

    #[test]
    fn int32_flags_parse_like_strconv() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("24", Ok(24)),
            ("-1", Ok(-1)),
            ("0x10", Ok(16)),
            ("010", Ok(8)),
            ("0", Ok(0)),
            ("abc", Err("invalid syntax")),
            ("", Err("invalid syntax")),
            ("2147483648", Err("value out of range")),
            ("1.5", Err("invalid syntax")),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_int32(input), *want, "{input:?}");
        }
    }

    #[test]
    fn schemas_have_unique_names_and_the_modelled_flags() {
        for c in Component::ALL {
            let schema = flag_schema(c);
            let mut names: Vec<&str> = schema.iter().map(|f| f.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{} has a duplicate flag", c.name());
            assert!(lookup(c, "feature-gates").is_some_and(|f| f.modelled));
        }
        assert_eq!(
            lookup(Component::KubeControllerManager, "cluster-cidr").map(|f| f.kind),
            Some(Cidrs)
        );
        assert_eq!(
            lookup(Component::Kubelet, "max-pods").map(|f| f.kind),
            Some(Int)
        );
    }
}
