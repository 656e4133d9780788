//! Pods wired by the real CNI plugins, where the scenario's CNI is one that exists as a binary
//! here: Debian's containernetworking-plugins ship `ptp` and `host-local`, which kindnet (and
//! knetsim's host-local model) configure as
//! `{"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet":
//! <podCIDR>}], …], "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}`.
//!
//! Each pod is added as a container runtime does (CNI ADD, the network configuration on
//! stdin, `CNI_NETNS` the pod's namespace), run inside the node's namespace so that the host
//! side of the veth lands there. The pod's simulated addresses are asked for through
//! `runtimeConfig.ips`. Afterwards each node's routes are read back from the kernel and
//! compared with `knetsim routes` (with the veth names the plugin chose).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use knetsim_control::state::{ClusterState, NamespacedName};
use knetsim_dataplane::{Cni, Dataplane};
use knetsim_ipam::Family;
use serde::Serialize;

use crate::sys;

/// Where Debian installs the plugins.
pub const CNI_DIR: &str = "/usr/lib/cni";

/// Whether the scenario's pods are wired by real plugins here.
pub fn available(dp: &Dataplane) -> bool {
    matches!(dp.fabric.cni, Cni::HostLocal)
        && Path::new(CNI_DIR).join("ptp").is_file()
        && Path::new(CNI_DIR).join("host-local").is_file()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The network configuration kindnet writes for a node, with the pod's addresses requested.
fn config(dp: &Dataplane, state: &ClusterState, nn: &NamespacedName, data_dir: &Path) -> String {
    let pod = state.pods.get(nn);
    let node = pod
        .and_then(|p| p.spec.node_name.as_ref())
        .and_then(|n| state.nodes.get(n));
    let mut ranges = Vec::new();
    let mut routes = Vec::new();
    let mut ips = Vec::new();
    for family in dp.families() {
        let Some(cidr) = node.and_then(|n| n.pod_cidr(family)) else {
            continue;
        };
        ranges.push(format!("[{{\"subnet\":\"{cidr}\"}}]"));
        routes.push(match family {
            Family::IPv4 => "{\"dst\":\"0.0.0.0/0\"}",
            Family::IPv6 => "{\"dst\":\"::/0\"}",
        });
        if let Some(ip) = pod.and_then(|p| p.ip_of(family)) {
            ips.push(format!("\"{ip}/{}\"", cidr.prefix_len()));
        }
    }
    format!(
        "{{\"cniVersion\":\"1.0.0\",\"name\":\"kindnet\",\"type\":\"ptp\",\"ipMasq\":false,\
         \"ipam\":{{\"type\":\"host-local\",\"dataDir\":{},\"ranges\":[{}],\"routes\":[{}]}},\
         \"runtimeConfig\":{{\"ips\":[{}]}}}}",
        json_str(&data_dir.to_string_lossy()),
        ranges.join(","),
        routes.join(","),
        ips.join(",")
    )
}

/// CNI ADD for one pod; returns the host-side veth the plugin created.
pub fn add(
    dp: &Dataplane,
    state: &ClusterState,
    node_ns: &str,
    pod_ns: &str,
    nn: &NamespacedName,
    data_dir: &Path,
) -> Result<String, String> {
    let netns = format!(
        "CNI_NETNS={}",
        Path::new(sys::NETNS_DIR).join(pod_ns).display()
    );
    let id = format!("CNI_CONTAINERID={pod_ns}");
    let path = format!("CNI_PATH={CNI_DIR}");
    let plugin = format!("{CNI_DIR}/ptp");
    let out = sys::exec_in_output(
        node_ns,
        &[
            "env",
            "CNI_COMMAND=ADD",
            &id,
            &netns,
            "CNI_IFNAME=eth0",
            &path,
            &plugin,
        ],
        &config(dp, state, nn, data_dir),
    )
    .map_err(|e| format!("CNI ADD of pod {nn}: {e}"))?;
    let result: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| format!("CNI ADD of pod {nn}: unreadable result ({e}): {out}"))?;
    result["interfaces"]
        .as_array()
        .and_then(|ifs| {
            ifs.iter()
                .find(|i| i.get("sandbox").is_none())
                .and_then(|i| i["name"].as_str())
        })
        .map(str::to_string)
        .ok_or_else(|| format!("CNI ADD of pod {nn}: no host interface in {out}"))
}

/// One node's routes of one family: the kernel's after the plugins ran against knetsim's.
#[derive(Clone, Debug, Serialize)]
pub struct RouteCheck {
    pub node: String,
    pub family: Family,
    pub agree: bool,
    /// Routes (`ip route show` lines, without those the kernel adds with addresses) only
    /// knetsim has, and only the kernel has.
    pub sim_only: Vec<String>,
    pub kernel_only: Vec<String>,
    pub routes: usize,
}

impl RouteCheck {
    pub fn line(&self) -> String {
        let head = format!(
            "{:<8} routes {} node:{} (ptp + host-local)",
            if self.agree { "agree" } else { "DISAGREE" },
            self.family,
            self.node
        );
        if self.agree {
            format!("{head}  sim and kernel: the same {} routes", self.routes)
        } else {
            format!(
                "{head}  sim only: [{}]  kernel only: [{}]",
                self.sim_only.join("; "),
                self.kernel_only.join("; ")
            )
        }
    }
}

fn normal(line: &str) -> Option<String> {
    let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
    (!l.is_empty() && !l.contains("proto kernel")).then_some(l)
}

/// Compares a node's main table with the kernel's, veth names mapped to the plugin's.
pub fn check_routes(
    dp: &Dataplane,
    node: &str,
    node_ns: &str,
    names: &BTreeMap<String, String>,
) -> Result<Vec<RouteCheck>, String> {
    let mut out = Vec::new();
    for family in dp.families() {
        let Some(table) = dp.node_routes(node, family) else {
            continue;
        };
        let mut sim: Vec<String> = table
            .main
            .iter()
            .filter_map(|r| {
                let mut line = r.render(family);
                if let Some(dev) = &r.dev
                    && let Some(real) = names.get(dev)
                {
                    line = line.replace(&format!("dev {dev}"), &format!("dev {real}"));
                }
                normal(&line)
            })
            .collect();
        let flag = match family {
            Family::IPv4 => "-4",
            Family::IPv6 => "-6",
        };
        let text = sys::ip_output(node_ns, &[flag, "route", "show"])?;
        let mut kernel: Vec<String> = text.lines().filter_map(normal).collect();
        sim.sort();
        kernel.sort();
        let sim_only: Vec<String> = sim
            .iter()
            .filter(|l| !kernel.contains(l))
            .cloned()
            .collect();
        let kernel_only: Vec<String> = kernel
            .iter()
            .filter(|l| !sim.contains(l))
            .cloned()
            .collect();
        out.push(RouteCheck {
            node: node.to_string(),
            family,
            agree: sim_only.is_empty() && kernel_only.is_empty(),
            routes: sim.len(),
            sim_only,
            kernel_only,
        });
    }
    Ok(out)
}

/// host-local's state directory for a run (on the machine's filesystem: the plugin keeps its
/// allocations in files), removed with the run.
pub fn data_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}cni"))
}
