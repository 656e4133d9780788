//! The scenario's `fabric:` section: the network around the cluster.
//!
//! ```yaml
//! fabric:
//!   underlay:                 # the nodes' subnets; default: derived from the node IPs
//!     - cidr: 192.168.0.0/24
//!       gateway: 192.168.0.1  # default: the first address of the subnet no node uses
//!     - cidr: fd00:192:168::/64
//!   external:
//!     hosts: [203.0.113.10, "2001:db8:ffff::10"]   # "the internet"; these are the defaults
//!   loadBalancers:            # like a MetalLB IPAddressPool; without it LoadBalancer
//!     addresses:              # Services stay pending, as in a cluster without a cloud
//!       - 198.51.100.0/28     # a CIDR ...
//!       - 2001:db8:1b::10-2001:db8:1b::1f   # ... or a first-last range
//! ```
//!
//! Read by matching on [`knetsim_model::yaml::NodeKind`] directly, with a diagnostic at the
//! offending value for every mistake; small on purpose, so that it can move onto the model
//! crate's reader utilities once they exist.

use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_model::Diagnostic;
use knetsim_model::yaml::{Node, NodeKind};

/// One underlay subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnderlaySubnet {
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
}

/// A range of load-balancer addresses (a CIDR is the range of all its addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRange {
    pub first: IpAddr,
    pub last: IpAddr,
}

/// The `fabric:` section, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FabricConfig {
    pub underlay: Vec<UnderlaySubnet>,
    pub external_hosts: Vec<IpAddr>,
    pub lb_addresses: Vec<AddressRange>,
}

impl Default for FabricConfig {
    fn default() -> Self {
        FabricConfig {
            underlay: Vec::new(),
            external_hosts: vec![
                "203.0.113.10".parse().expect("static"),
                "2001:db8:ffff::10".parse().expect("static"),
            ],
            lb_addresses: Vec::new(),
        }
    }
}

pub(crate) fn scalar(n: &Node) -> Option<&str> {
    match &n.kind {
        NodeKind::Scalar(s) => Some(s.text.as_str()),
        _ => None,
    }
}

pub(crate) fn entries<'a>(
    n: &'a Node,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a [(Node, Node)]> {
    match &n.kind {
        NodeKind::Map(m) => Some(m),
        _ => {
            diags.push(
                Diagnostic::error(n.span, format!("{what} must be a map"))
                    .with_label("expected a map"),
            );
            None
        }
    }
}

pub(crate) fn seq<'a>(n: &'a Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<&'a [Node]> {
    match &n.kind {
        NodeKind::Seq(s) => Some(s),
        _ => {
            diags.push(
                Diagnostic::error(n.span, format!("{what} must be a list"))
                    .with_label("expected a list"),
            );
            None
        }
    }
}

fn unknown_key(k: &Node, section: &str, known: &[&str]) -> Diagnostic {
    Diagnostic::error(
        k.span,
        format!("unknown key `{}` in {section}", scalar(k).unwrap_or("?")),
    )
    .with_label("not a known key")
    .with_help(format!("known keys: {}", known.join(", ")))
}

fn parse_ip(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<IpAddr> {
    match scalar(n).and_then(|s| s.trim().parse().ok()) {
        Some(ip) => Some(ip),
        None => {
            diags.push(
                Diagnostic::error(n.span, "invalid IP address")
                    .with_label("expected an IP address"),
            );
            None
        }
    }
}

fn parse_cidr(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<IpNet> {
    match scalar(n).and_then(|s| s.trim().parse::<IpNet>().ok()) {
        Some(c) => Some(c.trunc()),
        None => {
            diags.push(Diagnostic::error(n.span, "invalid CIDR").with_label("expected a CIDR"));
            None
        }
    }
}

fn parse_range(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<AddressRange> {
    let text = scalar(n).unwrap_or("").trim();
    if let Ok(c) = text.parse::<IpNet>() {
        return Some(AddressRange {
            first: c.network(),
            last: c.broadcast(),
        });
    }
    if let Some((a, b)) = text.split_once('-')
        && let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>())
        && a.is_ipv4() == b.is_ipv4()
        && knetsim_ipam::family::ip_to_u128(a) <= knetsim_ipam::family::ip_to_u128(b)
    {
        return Some(AddressRange { first: a, last: b });
    }
    diags.push(
        Diagnostic::error(n.span, format!("invalid address range {text:?}"))
            .with_label("expected a CIDR or `first-last` addresses of one family"),
    );
    None
}

/// Reads the `fabric:` node; `None` gives the defaults.
pub fn read_fabric(node: Option<&Node>) -> Result<FabricConfig, Vec<Diagnostic>> {
    let mut cfg = FabricConfig::default();
    let Some(node) = node else {
        return Ok(cfg);
    };
    let mut diags = Vec::new();
    if matches!(node.kind, NodeKind::Null) {
        return Ok(cfg);
    }
    let Some(map) = entries(node, "`fabric`", &mut diags) else {
        return Err(diags);
    };
    for (k, v) in map {
        match scalar(k) {
            Some("underlay") => {
                let mut list = Vec::new();
                for item in seq(v, "`fabric.underlay`", &mut diags).unwrap_or(&[]) {
                    let Some(m) = entries(item, "an underlay subnet", &mut diags) else {
                        continue;
                    };
                    let mut cidr = None;
                    let mut gateway = None;
                    for (k2, v2) in m {
                        match scalar(k2) {
                            Some("cidr") => cidr = parse_cidr(v2, &mut diags),
                            Some("gateway") => gateway = parse_ip(v2, &mut diags),
                            _ => diags.push(unknown_key(
                                k2,
                                "an underlay subnet",
                                &["cidr", "gateway"],
                            )),
                        }
                    }
                    match cidr {
                        Some(cidr) => {
                            if let Some(gw) = gateway
                                && !cidr.contains(&gw)
                            {
                                diags.push(Diagnostic::error(
                                    item.span,
                                    format!("gateway {gw} is not in underlay subnet {cidr}"),
                                ));
                            }
                            list.push(UnderlaySubnet { cidr, gateway });
                        }
                        None if !m.iter().any(|(k, _)| scalar(k) == Some("cidr")) => {
                            diags.push(
                                Diagnostic::error(item.span, "underlay subnet has no `cidr`")
                                    .with_label("missing `cidr`"),
                            );
                        }
                        None => {}
                    }
                }
                cfg.underlay = list;
            }
            Some("external") => {
                if let Some(m) = entries(v, "`fabric.external`", &mut diags) {
                    for (k2, v2) in m {
                        match scalar(k2) {
                            Some("hosts") => {
                                cfg.external_hosts = seq(v2, "`fabric.external.hosts`", &mut diags)
                                    .unwrap_or(&[])
                                    .iter()
                                    .filter_map(|h| parse_ip(h, &mut diags))
                                    .collect();
                            }
                            _ => diags.push(unknown_key(k2, "`fabric.external`", &["hosts"])),
                        }
                    }
                }
            }
            Some("loadBalancers") => {
                if let Some(m) = entries(v, "`fabric.loadBalancers`", &mut diags) {
                    for (k2, v2) in m {
                        match scalar(k2) {
                            Some("addresses") => {
                                cfg.lb_addresses =
                                    seq(v2, "`fabric.loadBalancers.addresses`", &mut diags)
                                        .unwrap_or(&[])
                                        .iter()
                                        .filter_map(|a| parse_range(a, &mut diags))
                                        .collect();
                            }
                            _ => diags.push(unknown_key(
                                k2,
                                "`fabric.loadBalancers`",
                                &["addresses"],
                            )),
                        }
                    }
                }
            }
            _ => diags.push(unknown_key(
                k,
                "`fabric`",
                &["underlay", "external", "loadBalancers"],
            )),
        }
    }
    if diags.is_empty() {
        Ok(cfg)
    } else {
        Err(diags)
    }
}
