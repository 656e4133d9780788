//! Component flags: the schema of each component's command line, and the typed values read
//! from a scenario's `cluster.<component>` map and its `args:` list.
//!
//! Flag names are the real ones, without the leading dashes. The schema also lists real flags
//! knetsim does not model (TLS files, etcd servers, …) so that arguments pasted from a static pod
//! manifest are accepted; they are kept in the effective configuration but have no effect.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::source::Span;

/// The components whose flags a scenario may set, in the order they start in a kubeadm cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    KubeApiserver,
    KubeControllerManager,
    KubeScheduler,
    Kubelet,
    KubeProxy,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::Kubelet,
        Component::KubeProxy,
    ];

    /// The component's binary name, which is also its key under `cluster:`.
    pub fn name(self) -> &'static str {
        match self {
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Kubelet => "kubelet",
            Component::KubeProxy => "kube-proxy",
        }
    }

    pub fn from_name(s: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// How a flag's value is written and parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `true`/`false` (YAML booleans or the strings).
    Bool,
    /// A decimal integer (`int32` flags such as `--node-cidr-mask-size-ipv6`).
    Int,
    /// Free text, kept verbatim.
    Str,
    /// A comma-separated list of CIDRs (`--cluster-cidr`, `--service-cluster-ip-range`).
    /// An empty string is an empty list.
    Cidrs,
    /// `Key=bool,Key2=bool` (`--feature-gates`).
    FeatureGates,
    /// One of a fixed set of words (`--mode`, `--detect-local-mode`).
    Enum(&'static [&'static str]),
    /// `low-high`, `low+size` or a single port (`--service-node-port-range`). An empty value is
    /// read as `PortRange(0, 0)`, the empty range.
    PortRange,
    /// A comma-separated list of words (`--nodeport-addresses`, `--controllers`).
    StrList,
}

/// One flag of one component.
#[derive(Clone, Copy, Debug)]
pub struct FlagDef {
    pub name: &'static str,
    pub kind: FlagKind,
    /// Whether knetsim's simulation reads this flag. Unmodelled flags are accepted and echoed.
    pub modelled: bool,
}

/// A parsed flag value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlagValue {
    Bool(bool),
    Int(i64),
    Str(String),
    /// Parsed the way Kubernetes parses them (`ParseCIDRSloppy`): a CIDR whose address has host
    /// bits set is stored as its network (`10.128.0.1/12` is 10.128.0.0/12), which is what
    /// Kubernetes uses; the reader warned about it, and [`Flag::raw`] keeps the text.
    Cidrs(Vec<IpNet>),
    FeatureGates(BTreeMap<String, bool>),
    Enum(String),
    PortRange(u16, u16),
    StrList(Vec<String>),
}

/// One flag as set in a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    pub value: FlagValue,
    /// The value exactly as written, for the effective-flags echo in the state document.
    pub raw: String,
    /// Where the value was written (the map value, or the `--flag=value` list item).
    pub span: Span,
}

/// The flags set for one component, by name without dashes. Flags not set are absent; their
/// defaults belong to the control plane, which knows them per version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentFlags {
    pub flags: BTreeMap<String, Flag>,
    /// Where the component's map was written (for diagnostics about the component as a whole).
    pub span: Option<Span>,
}

impl ComponentFlags {
    pub fn get(&self, name: &str) -> Option<&Flag> {
        self.flags.get(name)
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)?.value {
            FlagValue::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)?.value {
            FlagValue::Int(i) => Some(i),
            _ => None,
        }
    }
    pub fn cidrs(&self, name: &str) -> Option<&[IpNet]> {
        match &self.get(name)?.value {
            FlagValue::Cidrs(c) => Some(c),
            _ => None,
        }
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        match &self.get(name)?.value {
            FlagValue::Str(s) | FlagValue::Enum(s) => Some(s),
            _ => None,
        }
    }
    pub fn str_list(&self, name: &str) -> Option<&[String]> {
        match &self.get(name)?.value {
            FlagValue::StrList(v) => Some(v),
            _ => None,
        }
    }
    pub fn gates(&self) -> Option<&BTreeMap<String, bool>> {
        match &self.get("feature-gates")?.value {
            FlagValue::FeatureGates(g) => Some(g),
            _ => None,
        }
    }
}

/// The flag schema of a component. The tables live in `read/flags.rs`.
pub fn schema(component: Component) -> &'static [FlagDef] {
    crate::read::flag_schema(component)
}

/// One `component.flag=value` edit from the command line (`knetsim diff --set`), read against
/// the component's flag schema exactly as a scenario's `cluster:` map is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagEdit {
    pub component: Component,
    /// The flag's canonical name, without dashes.
    pub name: String,
    pub flag: Flag,
}

impl FlagEdit {
    /// Sets the flag in `cluster`, replacing what the scenario set (in its map or `args:`).
    pub fn apply(&self, cluster: &mut crate::scenario::ClusterConfig) {
        cluster
            .components
            .entry(self.component)
            .or_default()
            .flags
            .insert(self.name.clone(), self.flag.clone());
    }
}
