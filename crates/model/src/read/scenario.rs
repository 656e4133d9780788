//! The scenario document: top-level keys, `cluster`, `nodes`, `manifests`, `steps`, `expect`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::cidr::parse_cidr_sloppy;
use crate::diag::Diagnostic;
use crate::flags::{Component, ComponentFlags};
use crate::limits::{MAX_NODES, MAX_OBJECTS};
use crate::objects::{Object, ObjectRef};
use crate::scenario::{
    CalicoConfig, CalicoIpPool, ClusterConfig, CniConfig, Expectation, IpMasqAgentConfig, NodeSpec,
    Scenario, Step,
};
use crate::source::{FileId, Span, Spanned};
use crate::version::KubeVersion;
use crate::yaml::{
    MapReader, Node, NodeKind, Resolved, cidr_error, did_you_mean, expect_map, expect_seq,
    expect_text, host_bits_warning, mismatch,
};

use super::{Ctx, flags::read_component, objects};

/// The top-level keys, in the order the README documents them.
const TOP_LEVEL: &[&str] = &[
    "name",
    "kubernetesVersion",
    "seed",
    "cluster",
    "nodes",
    "manifests",
    "steps",
    "expect",
    "fabric",
    "plan",
    "snapshot",
];

pub(crate) fn read_scenario_docs(
    cx: &mut Ctx<'_>,
    file: FileId,
    docs: &[Node],
) -> Option<Scenario> {
    let had_syntax_error = cx.diags.iter().any(|d| d.is_error());
    let Some(root) = docs.first() else {
        if !had_syntax_error {
            cx.diags.push(
                Diagnostic::error(
                    Span {
                        file,
                        start: 0,
                        end: 0,
                        line: 1,
                        col: 1,
                    },
                    "the scenario file is empty",
                )
                .with_label("expected a map with `name:` and the other scenario keys"),
            );
        }
        return None;
    };
    if let Some(extra) = docs.get(1) {
        cx.diags.push(
            Diagnostic::error(
                extra.span,
                format!("a scenario file holds one YAML document, found {}", docs.len()),
            )
            .with_label("a second document starts here")
            .with_help("put Kubernetes objects under `manifests:`, inline or in a separate file named by `path:`"),
        );
    }
    let Some(mut r) = MapReader::new(root).filter(|_| !root.is_null()) else {
        cx.diags.push(mismatch(
            root,
            "a map of scenario keys (`name`, `cluster`, `nodes`, …)",
            "",
        ));
        return None;
    };
    let name = r.req_text("name", &mut cx.diags);
    let version = read_version(cx, &mut r);
    cx.version = Some(version.unwrap_or_default());
    let seed = r.u64("seed", &mut cx.diags).map_or(0, |s| s.value);
    let cluster = match r.value("cluster") {
        Some(n) => read_cluster(cx, n),
        None => ClusterConfig::default(),
    };
    let nodes = match r.seq("nodes", &mut cx.diags) {
        Some(items) => read_node_entries(cx, items),
        None => Vec::new(),
    };
    let manifests = match r.seq("manifests", &mut cx.diags) {
        Some(items) => read_object_list(cx, items),
        None => Vec::new(),
    };
    let steps = match r.seq("steps", &mut cx.diags) {
        Some(items) => items.iter().filter_map(|i| read_step(cx, i)).collect(),
        None => Vec::new(),
    };
    let expect = match r.seq("expect", &mut cx.diags) {
        Some(items) => items
            .iter()
            .filter_map(|i| read_expectation(cx, i))
            .collect(),
        None => Vec::new(),
    };
    let fabric = r.value("fabric").cloned();
    let plan = r.value("plan").cloned();
    let snapshot = r.value("snapshot").cloned();
    r.allow(TOP_LEVEL);
    r.finish(&mut cx.diags);
    let scenario = Scenario {
        name: name?.value,
        version: version?,
        seed,
        cluster,
        nodes,
        manifests,
        steps,
        expect,
        fabric,
        plan,
        snapshot,
    };
    cx.diags.extend(crate::limits::check(&scenario));
    Some(scenario)
}

/// `kubernetesVersion`: "1.33", "v1.30", "1.30.2"; an unquoted `1.30` keeps its text. Absent
/// means the newest modelled release.
fn read_version(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> Option<KubeVersion> {
    let Some(text) = r.text("kubernetesVersion", &mut cx.diags) else {
        return if r.value("kubernetesVersion").is_some() {
            None
        } else {
            Some(KubeVersion::NEWEST)
        };
    };
    let range = format!(
        "knetsim models Kubernetes {} to {}",
        KubeVersion::OLDEST,
        KubeVersion::NEWEST
    );
    match KubeVersion::parse(&text) {
        None => {
            cx.diags.push(
                Diagnostic::error(
                    text.span,
                    format!("invalid kubernetesVersion `{}`", text.value),
                )
                .with_label("expected a version like \"1.33\", \"v1.33\" or \"1.33.2\"")
                .with_help(range),
            );
            None
        }
        Some(v) if v < KubeVersion::OLDEST || v > KubeVersion::NEWEST => {
            cx.diags.push(
                Diagnostic::error(text.span, format!("Kubernetes {v} is not modelled"))
                    .with_label("outside the modelled releases")
                    .with_help(range),
            );
            None
        }
        Some(v) => Some(v),
    }
}

/// `cluster:` (and a `configure:` step): component flag maps, `cni`, `ip-masq-agent`, `sysctl`.
fn read_cluster(cx: &mut Ctx<'_>, node: &Node) -> ClusterConfig {
    let mut out = ClusterConfig::default();
    let Some(mut r) = expect_map(node, "cluster", &mut cx.diags) else {
        return out;
    };
    for c in Component::ALL {
        if let Some(n) = r.get(component_key(c)) {
            out.components.insert(c, read_component(cx, c, n));
        }
    }
    if let Some(n) = r.value("cni") {
        out.cni = read_cni(cx, n);
    }
    if let Some(n) = r.value("ip-masq-agent") {
        out.ip_masq_agent = read_ip_masq_agent(cx, n);
    } else if let Some(n) = r.get("ip-masq-agent") {
        // `ip-masq-agent:` with no settings: the agent runs with its defaults.
        out.ip_masq_agent = Some(IpMasqAgentConfig {
            span: n.span,
            ..Default::default()
        });
    }
    if let Some(n) = r.value("sysctl") {
        out.sysctl = read_sysctl(cx, n);
    }
    r.finish(&mut cx.diags);
    out
}

/// The `cluster:` key of each component: its binary name, as a `'static` key for the reader.
fn component_key(c: Component) -> &'static str {
    c.name()
}

fn read_sysctl(cx: &mut Ctx<'_>, node: &Node) -> BTreeMap<String, Spanned<String>> {
    let mut out = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        cx.diags
            .push(mismatch(node, "a map of sysctl names to values", "sysctl"));
        return out;
    };
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            cx.diags.push(mismatch(k, "a sysctl name", "sysctl"));
            continue;
        };
        if let Some(val) = expect_text(v, name, &mut cx.diags) {
            out.insert(name.to_string(), val);
        }
    }
    out
}

/// `cni:` in the plugins' own vocabulary.
fn read_cni(cx: &mut Ctx<'_>, node: &Node) -> CniConfig {
    let Some(mut r) = expect_map(node, "cni", &mut cx.diags) else {
        return CniConfig::default();
    };
    const PLUGINS: &[&str] = &[
        "host-local",
        "bridge",
        "ptp",
        "kindnet",
        "kubenet",
        "calico",
    ];
    let plugin = r.req_str("plugin", &mut cx.diags);
    let calico_node = r.get("calico");
    let out = match plugin.as_ref().map(|p| p.value.as_str()) {
        Some("host-local" | "bridge" | "ptp" | "kindnet") => CniConfig::HostLocal,
        Some("kubenet") => CniConfig::Kubenet,
        Some("calico") => CniConfig::Calico(read_calico(
            cx,
            calico_node.unwrap_or(node),
            calico_node.is_some(),
        )),
        Some(other) => {
            let p = plugin.as_ref().map_or(node.span, |p| p.span);
            let mut d = Diagnostic::error(p, format!("unknown CNI plugin `{other}`"))
                .with_label(format!("expected one of: {}", PLUGINS.join(", ")));
            if let Some(s) = did_you_mean(other, PLUGINS.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            cx.diags.push(d);
            CniConfig::default()
        }
        None => CniConfig::default(),
    };
    if let (Some(n), Some(p)) = (calico_node, plugin.as_ref())
        && p.value != "calico"
    {
        cx.diags.push(
            Diagnostic::error(n.span, "`calico:` settings need `plugin: calico`")
                .with_label(format!("the plugin is `{}`", p.value)),
        );
    }
    r.finish(&mut cx.diags);
    out
}

/// calico-node's environment variables that knetsim reads or that Calico's manifests commonly
/// set (`projectcalico/calico:node/pkg/lifecycle/startup/startup.go`, the calico-node docs).
const CALICO_ENV: &[&str] = &[
    "FELIX_IPV6SUPPORT",
    "IP",
    "IP6",
    "CALICO_IPV4POOL_CIDR",
    "CALICO_IPV6POOL_CIDR",
    "CALICO_IPV4POOL_BLOCK_SIZE",
    "CALICO_IPV6POOL_BLOCK_SIZE",
    "CALICO_IPV4POOL_NAT_OUTGOING",
    "CALICO_IPV6POOL_NAT_OUTGOING",
    "CALICO_IPV4POOL_IPIP",
    "CALICO_IPV4POOL_VXLAN",
    "CALICO_IPV6POOL_VXLAN",
    "CALICO_IPV4POOL_NODE_SELECTOR",
    "CALICO_IPV6POOL_NODE_SELECTOR",
    "CALICO_IPV4POOL_DISABLE_BGP_EXPORT",
    "CALICO_IPV6POOL_DISABLE_BGP_EXPORT",
    "NO_DEFAULT_POOLS",
    "IP_AUTODETECTION_METHOD",
    "IP6_AUTODETECTION_METHOD",
    "CALICO_NETWORKING_BACKEND",
    "CALICO_DISABLE_FILE_LOGGING",
    "CALICO_MANAGE_CNI",
    "CALICO_ROUTER_ID",
    "CLUSTER_TYPE",
    "DATASTORE_TYPE",
    "NODENAME",
    "WAIT_FOR_DATASTORE",
    "FELIX_DEFAULTENDPOINTTOHOSTACTION",
    "FELIX_HEALTHENABLED",
    "FELIX_LOGSEVERITYSCREEN",
    "FELIX_IPTABLESBACKEND",
    "FELIX_IPINIPMTU",
    "FELIX_VXLANMTU",
    "FELIX_WIREGUARDMTU",
    "FELIX_NATOUTGOINGADDRESS",
];

fn read_calico(cx: &mut Ctx<'_>, node: &Node, present: bool) -> CalicoConfig {
    let mut out = CalicoConfig {
        span: node.span,
        ..Default::default()
    };
    if !present {
        return out;
    }
    let Some(mut r) = expect_map(node, "calico", &mut cx.diags) else {
        return out;
    };
    if let Some(mut ipam) = r.map("ipam", &mut cx.diags) {
        if let Some(t) = ipam.str("type", &mut cx.diags)
            && t.value != "calico-ipam"
        {
            cx.diags.push(
                Diagnostic::error(t.span, format!("unsupported IPAM `{}` for Calico", t.value))
                    .with_label("knetsim models Calico with `calico-ipam`")
                    .with_help(
                        "for host-local IPAM over the nodes' podCIDRs, use `plugin: bridge`",
                    ),
            );
        }
        out.assign_ipv4 = calico_flag(cx, &mut ipam, "assign_ipv4");
        out.assign_ipv6 = calico_flag(cx, &mut ipam, "assign_ipv6");
        ipam.allow(&["ipv4_pools", "ipv6_pools", "subnet"]);
        ipam.finish(&mut cx.diags);
    }
    if let Some(env) = r.value("env") {
        match env.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let Some(name) = k.scalar_text() else {
                        cx.diags
                            .push(mismatch(k, "an environment variable name", "env"));
                        continue;
                    };
                    if !CALICO_ENV.contains(&name) {
                        let mut d = Diagnostic::warning(
                            k.span,
                            format!("calico-node environment variable `{name}` is not modelled by knetsim; ignored"),
                        )
                        .with_label("unknown to knetsim");
                        if let Some(s) = did_you_mean(name, CALICO_ENV.iter().copied()) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        cx.diags.push(d);
                    }
                    let value = match &v.kind {
                        NodeKind::Null => Some(Spanned::new(String::new(), v.span)),
                        _ => expect_text(v, name, &mut cx.diags),
                    };
                    if let Some(val) = value {
                        out.env.insert(name.to_string(), val);
                    }
                }
            }
            None => cx
                .diags
                .push(mismatch(env, "a map of environment variables", "env")),
        }
    }
    if let Some(items) = r.seq("ipPools", &mut cx.diags) {
        for item in items {
            if let Some(p) = read_ip_pool(cx, item) {
                out.ip_pools.push(p);
            }
        }
    }
    if let Some(mut ic) = r.map("ipamConfig", &mut cx.diags) {
        out.strict_affinity = ic
            .bool("strictAffinity", &mut cx.diags)
            .is_some_and(|b| b.value);
        if let Some(m) = ic.u64("maxBlocksPerHost", &mut cx.diags) {
            match u32::try_from(m.value) {
                Ok(v) => out.max_blocks_per_host = Some(v),
                Err(_) => cx.diags.push(
                    Diagnostic::error(m.span, "`maxBlocksPerHost` is out of range")
                        .with_label("expected an integer up to 4294967295"),
                ),
            }
        }
        ic.allow(&["autoAllocateBlocks", "kubeVirtVMAddressPersistence"]);
        ic.finish(&mut cx.diags);
    }
    r.finish(&mut cx.diags);
    out
}

/// `assign_ipv4`/`assign_ipv6`: strings in the CNI config ("true"), booleans also accepted.
fn calico_flag(
    cx: &mut Ctx<'_>,
    r: &mut MapReader<'_>,
    key: &'static str,
) -> Option<Spanned<String>> {
    let n = r.value(key)?;
    match n.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Bool(b)) => Some(Spanned::new(b.to_string(), n.span)),
        Some(Resolved::Str(s)) => Some(Spanned::new(s.to_string(), n.span)),
        _ => {
            cx.diags.push(mismatch(n, "\"true\" or \"false\"", key));
            None
        }
    }
}

fn read_ip_pool(cx: &mut Ctx<'_>, node: &Node) -> Option<CalicoIpPool> {
    let mut r = expect_map(node, "ipPools", &mut cx.diags)?;
    let name = r.req_text("name", &mut cx.diags);
    let cidr = match r.require("cidr", &mut cx.diags) {
        Some(n) => crate::yaml::expect_cidr(n, "cidr", &mut cx.diags),
        None => None,
    };
    let block_size = r
        .u64("blockSize", &mut cx.diags)
        .and_then(|b| match u8::try_from(b.value) {
            Ok(v) if v <= 128 => Some(Spanned::new(v, b.span)),
            _ => {
                cx.diags.push(
                    Diagnostic::error(
                        b.span,
                        format!("blockSize {} is not a prefix length", b.value),
                    )
                    .with_label("expected 20 to 32 for IPv4, 116 to 128 for IPv6"),
                );
                None
            }
        });
    let nat_outgoing = r
        .bool("natOutgoing", &mut cx.diags)
        .is_some_and(|b| b.value);
    let disabled = r.bool("disabled", &mut cx.diags).is_some_and(|b| b.value);
    r.allow(&[
        "ipipMode",
        "vxlanMode",
        "nodeSelector",
        "allowedUses",
        "disableBGPExport",
        "assignmentMode",
    ]);
    r.finish(&mut cx.diags);
    Some(CalicoIpPool {
        name: name?.value,
        cidr: cidr?,
        block_size,
        nat_outgoing,
        disabled,
    })
}

/// ip-masq-agent's flags (`kubernetes-sigs/ip-masq-agent:cmd/ip-masq-agent/ip-masq-agent.go`,
/// Go's `flag` package) and its config file's keys.
fn read_ip_masq_agent(cx: &mut Ctx<'_>, node: &Node) -> Option<IpMasqAgentConfig> {
    let mut r = expect_map(node, "ip-masq-agent", &mut cx.diags)?;
    let mut out = IpMasqAgentConfig {
        span: node.span,
        ..Default::default()
    };
    let mut first: HashMap<&'static str, Span> = HashMap::new();
    let mut set = |cx: &mut Ctx<'_>,
                   out: &mut IpMasqAgentConfig,
                   name: &'static str,
                   value: &str,
                   span: Span| {
        if let Some(prev) = first.get(name) {
            cx.diags.push(
                Diagnostic::error(span, format!("flag --{name} is set twice"))
                    .with_label("set again here")
                    .with_help(format!("first set at line {}", prev.line)),
            );
            return;
        }
        first.insert(name, span);
        let as_bool = |cx: &mut Ctx<'_>| -> Option<bool> {
            match value {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
                _ => {
                    cx.diags.push(
                        Diagnostic::error(span, format!("expected a boolean (true or false) for --{name}, found `{value}`"))
                            .with_label("expected true or false")
                            .with_help(format!(
                                "ip-masq-agent would exit with: invalid boolean value \"{value}\" for -{name}: parse error"
                            )),
                    );
                    None
                }
            }
        };
        match name {
            "enable-ipv6" => out.enable_ipv6 = as_bool(cx).unwrap_or(false),
            "nomasq-all-reserved-ranges" => {
                out.nomasq_all_reserved_ranges = as_bool(cx).unwrap_or(false)
            }
            "masq-chain" => out.masq_chain = Some(value.to_string()),
            "random-fully" | "logtostderr" | "alsologtostderr" => {
                let _ = as_bool(cx);
            }
            _ => {}
        }
    };
    const AGENT_FLAGS: &[&str] = &[
        "enable-ipv6",
        "nomasq-all-reserved-ranges",
        "masq-chain",
        "random-fully",
        "v",
        "logtostderr",
        "alsologtostderr",
    ];
    for &f in AGENT_FLAGS {
        if let Some(n) = r.value(f) {
            if let Some(t) = n.scalar_text() {
                set(cx, &mut out, f, t, n.span);
            } else {
                cx.diags.push(mismatch(n, "a single value", f));
            }
        }
    }
    if let Some(items) = r.seq("args", &mut cx.diags) {
        for (i, item) in items.iter().enumerate() {
            let Some(text) = item.scalar_text() else {
                cx.diags
                    .push(mismatch(item, "a string like `--flag=value`", "args"));
                continue;
            };
            if i == 0 && (text == "ip-masq-agent" || text.ends_with("/ip-masq-agent")) {
                continue;
            }
            // Go's flag package takes one or two dashes.
            let body = text.strip_prefix("--").or_else(|| text.strip_prefix('-'));
            let Some(body) = body.filter(|b| !b.is_empty()) else {
                cx.diags.push(
                    Diagnostic::error(
                        item.span,
                        format!("ip-masq-agent takes no arguments, found `{text}`"),
                    )
                    .with_label("not a flag"),
                );
                continue;
            };
            let (flag, value) = match body.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (body, None),
            };
            let Some(&name) = AGENT_FLAGS.iter().find(|f| **f == flag) else {
                let mut d =
                    Diagnostic::error(item.span, format!("flag provided but not defined: -{flag}"))
                        .with_label("ip-masq-agent has no such flag");
                if let Some(s) = did_you_mean(flag, AGENT_FLAGS.iter().copied()) {
                    d = d.with_help(format!("did you mean `--{s}`?"));
                }
                cx.diags.push(d);
                continue;
            };
            let is_bool = !matches!(name, "masq-chain" | "v");
            let value = match (value, is_bool) {
                (Some(v), _) => v.to_string(),
                (None, true) => "true".to_string(),
                (None, false) => {
                    cx.diags.push(
                        Diagnostic::error(item.span, format!("flag needs an argument: -{flag}"))
                            .with_label(format!("expected `--{flag}=<value>`")),
                    );
                    continue;
                }
            };
            set(cx, &mut out, name, &value, item.span);
        }
    }
    if let Some(mut cfg) = r.map("config", &mut cx.diags) {
        if let Some(items) = cfg.seq("nonMasqueradeCIDRs", &mut cx.diags) {
            let mut cidrs = Vec::new();
            for item in items {
                if let Some(s) = crate::yaml::expect_str(item, "nonMasqueradeCIDRs", &mut cx.diags)
                {
                    cidrs.push(s);
                }
            }
            out.non_masquerade_cidrs = Some(cidrs);
        }
        out.masq_link_local = cfg
            .bool("masqLinkLocal", &mut cx.diags)
            .is_some_and(|b| b.value);
        out.masq_link_local_ipv6 = cfg
            .bool("masqLinkLocalIPv6", &mut cx.diags)
            .is_some_and(|b| b.value);
        let _ = cfg.text("resyncInterval", &mut cx.diags);
        let _ = cfg.str("snatTarget", &mut cx.diags);
        cfg.finish(&mut cx.diags);
    }
    r.finish(&mut cx.diags);
    Some(out)
}

/// `nodes:` and `addNodes:` entries: named nodes and generators, with duplicate names
/// rejected.
fn read_node_entries(cx: &mut Ctx<'_>, items: &[Node]) -> Vec<NodeSpec> {
    let mut out: Vec<NodeSpec> = Vec::new();
    let mut seen: HashMap<String, Span> = HashMap::new();
    for item in items {
        let Some(mut r) = expect_map(item, "nodes", &mut cx.diags).filter(|_| !item.is_null())
        else {
            if item.is_null() {
                cx.diags.push(mismatch(
                    item,
                    "a node (`name:` …) or a generator (`count:` …)",
                    "nodes",
                ));
            }
            continue;
        };
        let before = out.len();
        if r.has("count") {
            read_generator(cx, &mut r, item, &mut out);
        } else if let Some(n) = read_named_node(cx, &mut r, item) {
            cx.nodes_read += 1;
            if cx.nodes_read == MAX_NODES + 1 {
                cx.diags.push(
                    Diagnostic::error(
                        n.name.span,
                        format!(
                            "the scenario would have more than knetsim's cap of {MAX_NODES} nodes"
                        ),
                    )
                    .with_label("this goes over the cap"),
                );
            }
            out.push(n);
        }
        r.finish(&mut cx.diags);
        for n in &out[before..] {
            if let Some(first) = seen.get(n.name.value.as_str()) {
                cx.diags.push(
                    Diagnostic::error(
                        n.name.span,
                        format!("duplicate node name `{}`", n.name.value),
                    )
                    .with_label("a node with this name already exists")
                    .with_help(format!("first defined at line {}", first.line)),
                );
            } else {
                seen.insert(n.name.value.clone(), n.name.span);
            }
        }
    }
    out
}

/// The settings a named node and a generator share.
struct NodeCommon {
    labels: BTreeMap<String, String>,
    kubelet: ComponentFlags,
    sysctl: BTreeMap<String, Spanned<String>>,
}

fn read_node_common(cx: &mut Ctx<'_>, r: &mut MapReader<'_>) -> NodeCommon {
    let labels = r
        .string_map("labels", false, &mut cx.diags)
        .unwrap_or_default();
    let kubelet = match r.get("kubelet") {
        Some(n) => read_component(cx, Component::Kubelet, n),
        None => ComponentFlags::default(),
    };
    let sysctl = match r.value("sysctl") {
        Some(n) => read_sysctl(cx, n),
        None => BTreeMap::new(),
    };
    NodeCommon {
        labels,
        kubelet,
        sysctl,
    }
}

fn read_named_node(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, item: &Node) -> Option<NodeSpec> {
    let name = r.req_text("name", &mut cx.diags);
    let node_ip = r.text("node-ip", &mut cx.diags);
    let mut pod_cidrs = Vec::new();
    if let Some(items) = r.seq("podCIDRs", &mut cx.diags) {
        for c in items {
            let Some(text) = crate::yaml::expect_str(c, "podCIDRs", &mut cx.diags) else {
                continue;
            };
            match parse_cidr_sloppy(&text) {
                Ok(p) => {
                    if p.host_bits_set() {
                        cx.diags.push(host_bits_warning(c.span, &text, &p));
                    }
                    pod_cidrs.push(text);
                }
                Err(e) => cx.diags.push(cidr_error(c.span, &text, &e, false)),
            }
        }
    }
    let common = read_node_common(cx, r);
    Some(NodeSpec {
        name: name?,
        node_ip,
        kubelet: common.kubelet,
        labels: common.labels,
        pod_cidrs,
        sysctl: common.sysctl,
        span: item.span,
    })
}

/// Hosts a pool can give nodes: every address but the network address, and for IPv4 the
/// broadcast address too.
fn pool_hosts(net: &IpNet) -> u128 {
    let bits = net.max_prefix_len() - net.prefix_len();
    let size = 1u128.checked_shl(u32::from(bits)).unwrap_or(u128::MAX);
    match net {
        IpNet::V4(_) => size.saturating_sub(2),
        IpNet::V6(_) => size - 1,
    }
}

fn nth_host(net: &IpNet, k: u128) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let base = u32::from(n.network());
            IpAddr::V4((base.wrapping_add(1).wrapping_add(k as u32)).into())
        }
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            IpAddr::V6(base.wrapping_add(1).wrapping_add(k).into())
        }
    }
}

/// A bound on one generator, far above Kubernetes' tested 5,000 nodes, so that a typo (an
/// extra zero or two) is an error rather than an attempt to allocate billions of nodes.
/// `{count, prefix, start, node-ip-pools, …}`: nodes `<prefix><start+k>`, node k taking host
/// address k+1 of every pool (so each node gets one IP per pool: a dual-stack pair from one
/// IPv4 and one IPv6 pool).
fn read_generator(cx: &mut Ctx<'_>, r: &mut MapReader<'_>, item: &Node, out: &mut Vec<NodeSpec>) {
    let count = r.u64("count", &mut cx.diags);
    let prefix = r.req_text("prefix", &mut cx.diags);
    let start = r.u64("start", &mut cx.diags).map_or(1, |s| s.value);
    let mut pools: Vec<(IpNet, Span)> = Vec::new();
    let mut pools_ok = true;
    if let Some(items) = r.seq("node-ip-pools", &mut cx.diags) {
        for p in items {
            match crate::yaml::expect_cidr(p, "node-ip-pools", &mut cx.diags) {
                Some(net) => pools.push((net.value, net.span)),
                None => pools_ok = false,
            }
        }
    }
    let common = read_node_common(cx, r);
    let (Some(count), Some(prefix)) = (count, prefix) else {
        return;
    };
    if !pools_ok {
        return;
    }
    // Checked before a single node is made: a count of a million would otherwise take
    // gigabytes before anything else could refuse it.
    let total = cx.nodes_read.saturating_add(count.value);
    if total > MAX_NODES {
        cx.diags.push(
            Diagnostic::error(
                count.span,
                format!(
                    "the scenario would have {total} nodes, more than knetsim's cap of {MAX_NODES}"
                ),
            )
            .with_label("this goes over the cap")
            .with_help(crate::limits::CAPS_HELP),
        );
        cx.nodes_read = total;
        return;
    }
    if start.checked_add(count.value).is_none() {
        cx.diags.push(
            Diagnostic::error(count.span, "node numbers would overflow").with_label(format!(
                "`start` {start} plus `count` {} does not fit in 64 bits",
                count.value
            )),
        );
        return;
    }
    for (net, span) in &pools {
        let hosts = pool_hosts(net);
        if u128::from(count.value) > hosts {
            cx.diags.push(
                Diagnostic::error(
                    *span,
                    format!(
                        "node-ip pool {net} has {hosts} host address{} for {} nodes",
                        if hosts == 1 { "" } else { "es" },
                        count.value
                    ),
                )
                .with_label("too small for `count`")
                .with_help(if matches!(net, IpNet::V4(_)) {
                    "an IPv4 pool gives nodes every address but the network and broadcast addresses"
                } else {
                    "an IPv6 pool gives nodes every address but the network address"
                }),
            );
            return;
        }
    }
    cx.nodes_read = total;
    out.reserve(count.value as usize);
    for k in 0..count.value {
        let node_ip = if pools.is_empty() {
            None
        } else {
            let ips: Vec<String> = pools
                .iter()
                .map(|(net, _)| nth_host(net, u128::from(k)).to_string())
                .collect();
            Some(Spanned::new(ips.join(","), item.span))
        };
        out.push(NodeSpec {
            name: Spanned::new(format!("{}{}", prefix.value, start + k), prefix.span),
            node_ip,
            kubelet: common.kubelet.clone(),
            labels: common.labels.clone(),
            pod_cidrs: Vec::new(),
            sysctl: common.sysctl.clone(),
            span: item.span,
        });
    }
}

/// `manifests:` and `apply:` items: inline objects, or `{path: file.yaml}`.
fn read_object_list(cx: &mut Ctx<'_>, items: &[Node]) -> Vec<Object> {
    let mut out = Vec::new();
    for item in items {
        let has_key = |key: &str| {
            item.as_map().is_some_and(|e| {
                e.iter().any(|(k, _)| k.scalar_text() == Some(key))
                    && !e.iter().any(|(k, _)| k.scalar_text() == Some("kind"))
            })
        };
        if has_key("generate") {
            read_generated_objects(cx, item, &mut out);
            continue;
        }
        let is_include = has_key("path");
        if !is_include {
            objects::read_document(cx, item, &mut out);
            continue;
        }
        let Some(mut r) = MapReader::new(item) else {
            continue;
        };
        let path = r.req_str("path", &mut cx.diags);
        r.finish(&mut cx.diags);
        let Some(path) = path else {
            continue;
        };
        let resolved = cx.resolve(path.span.file, &path.value);
        let Some(file) = cx.load_file(&resolved, Some(path.span)) else {
            continue;
        };
        let docs = cx.parse(file);
        for doc in &docs {
            objects::read_document(cx, doc, &mut out);
        }
    }
    out
}

/// `{generate: {count, start, object}}`: `count` copies of `object`, the i-th with `{i}` in
/// every string replaced by `start + i`, `{i%N}` by its remainder modulo N and `{i/N}` by its
/// quotient. Clusters at Kubernetes' limits need tens of thousands of near-identical objects;
/// a template keeps such scenarios readable and fast to load. Diagnostics point at the template,
/// and are reported once, for the first copy, rather than `count` times.
fn read_generated_objects(cx: &mut Ctx<'_>, item: &Node, out: &mut Vec<Object>) {
    let Some(mut outer) = MapReader::new(item) else {
        return;
    };
    let Some(gen_node) = outer.require("generate", &mut cx.diags) else {
        outer.finish(&mut cx.diags);
        return;
    };
    outer.finish(&mut cx.diags);
    let Some(mut r) = expect_map(gen_node, "generate", &mut cx.diags) else {
        return;
    };
    let count = r.u64("count", &mut cx.diags);
    let start = r.u64("start", &mut cx.diags).map_or(0, |s| s.value);
    let object = r.require("object", &mut cx.diags);
    if r.has("count") && count.is_none() {
        r.finish(&mut cx.diags);
        return;
    }
    let Some(count) = count.or_else(|| {
        cx.diags.push(r.missing("count"));
        None
    }) else {
        r.finish(&mut cx.diags);
        return;
    };
    r.finish(&mut cx.diags);
    let Some(object) = object else { return };
    // Checked before a single copy is made (see `limits::MAX_OBJECTS`).
    let total = cx.objects_generated.saturating_add(count.value);
    if total > MAX_OBJECTS {
        cx.diags.push(
            Diagnostic::error(
                count.span,
                format!("`generate` would make {total} objects in this scenario, more than knetsim's cap of {MAX_OBJECTS}"),
            )
            .with_label(format!("{} requested", count.value))
            .with_help(crate::limits::CAPS_HELP),
        );
        cx.objects_generated = total;
        return;
    }
    cx.objects_generated = total;
    if let Err(d) = check_placeholders(object) {
        cx.diags.push(d);
        return;
    }
    if count.value == 0 {
        return;
    }
    // The first copy is read with the scenario's context: what it says about the template is
    // reported, and an error stops the expansion.
    let errors_before = cx.diags.iter().filter(|d| d.is_error()).count();
    objects::read_document(cx, &substitute(object, start), out);
    if cx.diags.iter().filter(|d| d.is_error()).count() > errors_before {
        return;
    }
    // The first copy already said everything the template deserves to be told, so the others
    // are read silently, in parallel (reading an object touches nothing but the context's
    // diagnostics), and collected in index order.
    use rayon::prelude::*;
    // Indices past u64::MAX are not made (the first copy took `start`).
    let last = start.saturating_add(count.value - 1);
    if last == start {
        return;
    }
    let version = cx.version;
    // One list per copy (an indexed collect, so the lists land in place): objects are large,
    // and one list gathering a run of copies would move them as it grows.
    let copies: Vec<Vec<Object>> = (start + 1..=last)
        .into_par_iter()
        .map(|i| {
            let mut local = Ctx::new(&NO_FILES);
            local.version = version;
            let mut objs = Vec::with_capacity(1);
            objects::read_document(&mut local, &substitute(object, i), &mut objs);
            objs
        })
        .collect();
    // Room for every copy first: objects are large, and growing the list as it fills would
    // move each of them several times.
    out.reserve(copies.iter().map(Vec::len).sum());
    for c in copies {
        out.extend(c);
    }
}

/// The loader of the contexts that read generated copies: a template cannot include files.
struct NoFiles;

impl crate::source::FileLoader for NoFiles {
    fn load(&self, _: &std::path::Path) -> Result<String, String> {
        Err("a generated object cannot include files".into())
    }
}

static NO_FILES: NoFiles = NoFiles;

/// Every `{...}` in the template's strings must be `{i}`, `{i%N}` or `{i/N}` with N > 0.
fn check_placeholders(node: &Node) -> Result<(), Diagnostic> {
    match &node.kind {
        crate::yaml::NodeKind::Scalar(s) => {
            let mut rest = s.text.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                let inner = &rest[open + 1..open + close];
                if placeholder_value(inner, 0).is_none() {
                    return Err(Diagnostic::error(
                        node.span,
                        format!("unknown placeholder `{{{inner}}}` in a `generate` template"),
                    )
                    .with_label("expected `{i}`, `{i%N}` or `{i/N}`"));
                }
                rest = &rest[open + close + 1..];
            }
            Ok(())
        }
        crate::yaml::NodeKind::Seq(items) => items.iter().try_for_each(check_placeholders),
        crate::yaml::NodeKind::Map(entries) => entries
            .iter()
            .try_for_each(|(k, v)| check_placeholders(k).and_then(|()| check_placeholders(v))),
        crate::yaml::NodeKind::Null => Ok(()),
    }
}

fn placeholder_value(inner: &str, i: u64) -> Option<u64> {
    let rest = inner.strip_prefix('i')?;
    if rest.is_empty() {
        return Some(i);
    }
    let (op, n) = rest.split_at(1);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    match op {
        "%" => Some(i % n),
        "/" => Some(i / n),
        _ => None,
    }
}

/// A copy of `node` with the placeholders of every scalar replaced for index `i`. Spans stay
/// those of the template.
fn substitute(node: &Node, i: u64) -> Node {
    use crate::yaml::{NodeKind, Scalar};
    let kind = match &node.kind {
        NodeKind::Scalar(s) if s.text.contains('{') => {
            let mut text = String::with_capacity(s.text.len() + 8);
            let mut rest = s.text.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else {
                    break;
                };
                text.push_str(&rest[..open]);
                match placeholder_value(&rest[open + 1..open + close], i) {
                    Some(v) => text.push_str(&v.to_string()),
                    None => text.push_str(&rest[open..=open + close]),
                }
                rest = &rest[open + close + 1..];
            }
            text.push_str(rest);
            NodeKind::Scalar(Scalar {
                text,
                quoted: s.quoted,
            })
        }
        NodeKind::Seq(items) => NodeKind::Seq(items.iter().map(|n| substitute(n, i)).collect()),
        NodeKind::Map(entries) => NodeKind::Map(
            entries
                .iter()
                .map(|(k, v)| (substitute(k, i), substitute(v, i)))
                .collect(),
        ),
        other => other.clone(),
    };
    Node {
        kind,
        span: node.span,
    }
}

fn read_object_ref(cx: &mut Ctx<'_>, node: &Node, what: &str) -> Option<Spanned<ObjectRef>> {
    let mut r = expect_map(node, what, &mut cx.diags)?;
    let kind = r.req_str("kind", &mut cx.diags);
    let name = r.req_text("name", &mut cx.diags);
    let namespace = r.text("namespace", &mut cx.diags);
    r.finish(&mut cx.diags);
    Some(Spanned::new(
        ObjectRef {
            kind: kind?.value,
            namespace: namespace.map(|n| n.value),
            name: name?.value,
        },
        node.span,
    ))
}

const STEP_KINDS: &[&str] = &[
    "apply",
    "delete",
    "addNodes",
    "removeNodes",
    "scale",
    "configure",
];

fn read_step(cx: &mut Ctx<'_>, item: &Node) -> Option<Spanned<Step>> {
    let entries = match &item.kind {
        NodeKind::Map(e) => e,
        _ => {
            cx.diags.push(mismatch(
                item,
                "a step: a map with one of apply, delete, addNodes, removeNodes, scale, configure",
                "steps",
            ));
            return None;
        }
    };
    let mut action: Option<(&str, &Node, Span)> = None;
    let mut ok = true;
    for (k, v) in entries {
        let Some(key) = k.scalar_text() else {
            cx.diags.push(mismatch(k, "a step kind", "steps"));
            ok = false;
            continue;
        };
        if key == "name" {
            if expect_text(v, "name", &mut cx.diags).is_none() {
                ok = false;
            }
            continue;
        }
        if !STEP_KINDS.contains(&key) {
            let mut d = Diagnostic::error(k.span, format!("unknown step `{key}`"))
                .with_label("not a step kind")
                .with_help(format!("a step is one of: {}", STEP_KINDS.join(", ")));
            if let Some(s) = did_you_mean(key, STEP_KINDS.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            cx.diags.push(d);
            ok = false;
            continue;
        }
        if let Some((first, _, _)) = action {
            cx.diags.push(
                Diagnostic::error(
                    k.span,
                    format!("a step does one thing; found `{first}` and `{key}`"),
                )
                .with_label("second action in the same step")
                .with_help("split them into two steps; steps run in order"),
            );
            ok = false;
            continue;
        }
        action = Some((key, v, k.span));
    }
    let Some((kind, v, _)) = action else {
        if ok {
            cx.diags.push(
                Diagnostic::error(item.span, "a step needs an action")
                    .with_label(format!("expected one of: {}", STEP_KINDS.join(", "))),
            );
        }
        return None;
    };
    let step = match kind {
        "apply" => {
            let items = expect_seq(v, "apply", &mut cx.diags)?;
            Step::Apply(read_object_list(cx, items))
        }
        "delete" => {
            let items = expect_seq(v, "delete", &mut cx.diags)?;
            Step::Delete(
                items
                    .iter()
                    .filter_map(|i| read_object_ref(cx, i, "delete"))
                    .collect(),
            )
        }
        "addNodes" => {
            let items = expect_seq(v, "addNodes", &mut cx.diags)?;
            Step::AddNodes(read_node_entries(cx, items))
        }
        "removeNodes" => {
            let items = expect_seq(v, "removeNodes", &mut cx.diags)?;
            Step::RemoveNodes(
                items
                    .iter()
                    .filter_map(|i| expect_text(i, "removeNodes", &mut cx.diags))
                    .collect(),
            )
        }
        "scale" => {
            let mut r = expect_map(v, "scale", &mut cx.diags)?;
            let kind = r.req_str("kind", &mut cx.diags);
            let name = r.req_text("name", &mut cx.diags);
            let namespace = r.text("namespace", &mut cx.diags);
            let replicas = match r.require("replicas", &mut cx.diags) {
                Some(n) => crate::yaml::expect_i64(n, "replicas", &mut cx.diags),
                None => None,
            };
            r.finish(&mut cx.diags);
            Step::Scale {
                target: Spanned::new(
                    ObjectRef {
                        kind: kind?.value,
                        namespace: namespace.map(|n| n.value),
                        name: name?.value,
                    },
                    v.span,
                ),
                replicas: replicas?,
            }
        }
        _ => Step::Configure(read_cluster(cx, v)),
    };
    ok.then(|| Spanned::new(step, item.span))
}

const EXPECT_KINDS: &[&str] = &[
    "component",
    "object",
    "event",
    "count",
    "trace",
    "reachability",
];

fn read_expectation(cx: &mut Ctx<'_>, item: &Node) -> Option<Spanned<Expectation>> {
    let Some(mut r) = expect_map(item, "expect", &mut cx.diags).filter(|_| !item.is_null()) else {
        if item.is_null() {
            cx.diags.push(mismatch(item, "an expectation", "expect"));
        }
        return None;
    };
    let which = EXPECT_KINDS.iter().copied().find(|k| r.has(k));
    let Some(which) = which else {
        let first_key = r
            .entries()
            .iter()
            .filter_map(|(k, _)| k.scalar_text().map(|t| (t, k.span)))
            .find(|(t, _)| *t != "name");
        let mut d = match first_key {
            Some((t, span)) => Diagnostic::error(span, format!("unknown expectation `{t}`"))
                .with_label("not an expectation kind"),
            None => Diagnostic::error(item.span, "an expectation needs a kind")
                .with_label("nothing to check here"),
        };
        d = d.with_help(format!(
            "an expectation starts with one of: {}",
            EXPECT_KINDS.join(", ")
        ));
        if let Some(s) = first_key.and_then(|(t, _)| did_you_mean(t, EXPECT_KINDS.iter().copied()))
        {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        cx.diags.push(d);
        return None;
    };
    let _ = r.text("name", &mut cx.diags);
    let e = match which {
        "component" => {
            let c = r.req_str("component", &mut cx.diags);
            let started = r.bool("started", &mut cx.diags).map(|b| b.value);
            let message = r.text("message", &mut cx.diags).map(|m| m.value);
            r.finish(&mut cx.diags);
            let c = c?;
            let Some(component) = Component::from_name(&c.value) else {
                let mut d = Diagnostic::error(c.span, format!("unknown component `{}`", c.value))
                    .with_label(format!(
                        "expected one of: {}",
                        Component::ALL.map(Component::name).join(", ")
                    ));
                if let Some(s) = did_you_mean(&c.value, Component::ALL.map(Component::name)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                cx.diags.push(d);
                return None;
            };
            Expectation::Component {
                component,
                started,
                message,
            }
        }
        "object" => {
            let target = match r.require("object", &mut cx.diags) {
                Some(n) => read_object_ref(cx, n, "object"),
                None => None,
            };
            let absent = r.bool("absent", &mut cx.diags);
            let mut fields = Vec::new();
            if let Some(f) = r.value("fields") {
                match f.as_map() {
                    Some(entries) => {
                        for (k, v) in entries {
                            match k.scalar_text() {
                                Some(path) => {
                                    fields.push((Spanned::new(path.to_string(), k.span), v.clone()))
                                }
                                None => cx.diags.push(mismatch(k, "a dotted field path", "fields")),
                            }
                        }
                    }
                    None => cx.diags.push(mismatch(
                        f,
                        "a map of dotted field paths to values",
                        "fields",
                    )),
                }
            }
            r.finish(&mut cx.diags);
            if let Some(a) = absent.as_ref().filter(|a| a.value)
                && !fields.is_empty()
            {
                cx.diags.push(
                    Diagnostic::error(a.span, "`absent: true` cannot be combined with `fields:`")
                        .with_label("an absent object has no fields to check"),
                );
                return None;
            }
            Expectation::Object {
                target: target?.value,
                absent: absent.is_some_and(|a| a.value),
                fields,
            }
        }
        "event" => {
            let mut ev = r.map("event", &mut cx.diags)?;
            let reason = ev.req_text("reason", &mut cx.diags);
            let object = ev.text("object", &mut cx.diags).map(|o| o.value);
            let message = ev.text("message", &mut cx.diags).map(|m| m.value);
            ev.finish(&mut cx.diags);
            r.finish(&mut cx.diags);
            Expectation::Event {
                reason: reason?.value,
                object,
                message,
            }
        }
        "count" => {
            let mut c = r.map("count", &mut cx.diags)?;
            let kind = c.req_str("kind", &mut cx.diags);
            let equals = match c.require("equals", &mut cx.diags) {
                Some(n) => crate::yaml::expect_u64(n, "equals", &mut cx.diags),
                None => None,
            };
            c.finish(&mut cx.diags);
            r.finish(&mut cx.diags);
            Expectation::Count {
                kind: kind?.value,
                equals: equals?.value,
            }
        }
        // `trace:` and `reachability:` belong to the dataplane, which reads them itself.
        _ => Expectation::Dataplane(item.clone()),
    };
    Some(Spanned::new(e, item.span))
}
