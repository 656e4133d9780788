//! Per-node kernel routing tables, per family: the `local` table (the node's own addresses)
//! and the `main` table (connected underlay, pod routes, routes to other nodes' pods,
//! default route), rendered like `ip route show` / `ip -6 route show`, with longest-prefix
//! match lookup.
//!
//! Order of lines: the kernel dumps IPv4 routes in address order (the FIB trie's key order),
//! which knetsim follows, longer prefixes first for equal addresses; IPv6 routes are dumped
//! here in the same order with the default route last, as `ip -6 route` usually shows it.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_control::state::NamespacedName;
use knetsim_ipam::Family;
use knetsim_ipam::family::ip_to_u128;
use serde::Serialize;

/// Where a route sends packets, in the fabric's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum NextHop {
    /// An address of this node: delivered to the host.
    Local,
    /// A pod on this node, through its veth (or through the bridge).
    Pod {
        #[serde(serialize_with = "ser_nn")]
        pod: NamespacedName,
    },
    /// A bridge with pods on it (kubenet `cbr0`): the pod is found by address.
    Bridge,
    /// Another node (its underlay address), directly on the subnet.
    Node { node: String },
    /// The underlay gateway (the router to the external network).
    Gateway,
    /// Some other host on a connected subnet.
    Connected,
    /// Dropped (`blackhole`).
    Blackhole,
}

fn ser_nn<S: serde::Serializer>(nn: &NamespacedName, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(nn)
}

/// One route.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `local`, `blackhole` or empty (unicast), as `ip route` prefixes the line.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub type_: &'static str,
    pub dst: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    pub next_hop: NextHop,
}

impl Route {
    pub fn unicast(dst: IpNet, next_hop: NextHop) -> Route {
        Route {
            type_: "",
            dst,
            via: None,
            dev: None,
            proto: None,
            scope: None,
            src: None,
            metric: None,
            next_hop,
        }
    }
    pub fn via(mut self, ip: IpAddr) -> Self {
        self.via = Some(ip);
        self
    }
    pub fn dev(mut self, dev: impl Into<String>) -> Self {
        self.dev = Some(dev.into());
        self
    }
    pub fn proto(mut self, p: &'static str) -> Self {
        self.proto = Some(p);
        self
    }
    pub fn scope(mut self, s: &'static str) -> Self {
        self.scope = Some(s);
        self
    }
    pub fn src(mut self, ip: IpAddr) -> Self {
        self.src = Some(ip);
        self
    }
    pub fn metric(mut self, m: u32) -> Self {
        self.metric = Some(m);
        self
    }
    pub fn kind(mut self, t: &'static str) -> Self {
        self.type_ = t;
        self
    }

    /// The line `ip route show` prints.
    pub fn render(&self, family: Family) -> String {
        let mut s = String::new();
        if !self.type_.is_empty() {
            s.push_str(self.type_);
            s.push(' ');
        }
        let host_len = family.bits();
        if self.dst.prefix_len() == 0 && self.type_.is_empty() {
            s.push_str("default");
        } else if self.dst.prefix_len() == host_len {
            let _ = write!(s, "{}", self.dst.addr());
        } else {
            let _ = write!(s, "{}", self.dst);
        }
        if let Some(v) = self.via {
            let _ = write!(s, " via {v}");
        }
        if let Some(d) = &self.dev {
            let _ = write!(s, " dev {d}");
        }
        if let Some(p) = self.proto {
            let _ = write!(s, " proto {p}");
        }
        if let Some(sc) = self.scope {
            let _ = write!(s, " scope {sc}");
        }
        if let Some(src) = self.src {
            let _ = write!(s, " src {src}");
        }
        if let Some(m) = self.metric {
            let _ = write!(s, " metric {m}");
        }
        if family == Family::IPv6 {
            s.push_str(" pref medium");
        }
        s
    }
}

/// One node's routes of one family.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTable {
    pub node: String,
    pub family: Family,
    /// `ip route show table local`.
    pub local: Vec<Route>,
    /// `ip route show` (the main table).
    pub main: Vec<Route>,
}

impl RouteTable {
    pub fn new(node: &str, family: Family) -> Self {
        RouteTable {
            node: node.to_string(),
            family,
            local: Vec::new(),
            main: Vec::new(),
        }
    }

    /// Puts both tables in dump order.
    pub fn sort(&mut self) {
        let family = self.family;
        let key = |r: &Route| {
            let default_last = family == Family::IPv6 && r.dst.prefix_len() == 0;
            (
                default_last,
                ip_to_u128(r.dst.network()),
                std::cmp::Reverse(r.dst.prefix_len()),
                r.type_,
            )
        };
        self.local.sort_by_key(key);
        self.main.sort_by_key(key);
    }

    /// The route the kernel picks for `dst`: the local table first (its rule has priority 0),
    /// then the longest matching prefix of the main table.
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        if let Some(r) = self.local.iter().find(|r| r.dst.contains(&dst)) {
            return Some(r);
        }
        self.main
            .iter()
            .filter(|r| r.dst.contains(&dst))
            .max_by_key(|r| r.dst.prefix_len())
    }
}

/// Renders a table like `ip route show` (then the local table, as `ip route show table local`
/// prints it, after a comment line).
pub fn render_routes(t: &RouteTable) -> String {
    let mut out = String::new();
    let cmd = match t.family {
        Family::IPv4 => "ip route",
        Family::IPv6 => "ip -6 route",
    };
    let _ = writeln!(out, "# {cmd} show  (node {})", t.node);
    for r in &t.main {
        out.push_str(&r.render(t.family));
        out.push('\n');
    }
    let _ = writeln!(out, "# {cmd} show table local");
    for r in &t.local {
        out.push_str(&r.render(t.family));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let mut t = RouteTable::new("node-1", Family::IPv4);
        t.main.push(
            Route::unicast("0.0.0.0/0".parse().unwrap(), NextHop::Gateway)
                .via("192.168.0.1".parse().unwrap())
                .dev("eth0"),
        );
        t.main.push(
            Route::unicast(
                "10.244.1.0/24".parse().unwrap(),
                NextHop::Node {
                    node: "node-2".into(),
                },
            )
            .via("192.168.0.12".parse().unwrap())
            .dev("eth0"),
        );
        t.main.push(
            Route::unicast(
                "10.244.0.2/32".parse().unwrap(),
                NextHop::Pod {
                    pod: NamespacedName::new("default", "a"),
                },
            )
            .dev("veth1")
            .scope("host"),
        );
        t.main.push(
            Route::unicast("192.168.0.0/24".parse().unwrap(), NextHop::Connected)
                .dev("eth0")
                .proto("kernel")
                .scope("link")
                .src("192.168.0.11".parse().unwrap()),
        );
        t.local.push(
            Route::unicast("192.168.0.11/32".parse().unwrap(), NextHop::Local)
                .kind("local")
                .dev("eth0")
                .proto("kernel")
                .scope("host")
                .src("192.168.0.11".parse().unwrap()),
        );
        t.sort();
        t
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        let cases = [
            ("10.244.1.7", "10.244.1.0/24"),
            ("10.244.0.2", "10.244.0.2/32"),
            ("10.244.0.3", "0.0.0.0/0"),
            ("192.168.0.12", "192.168.0.0/24"),
            ("192.168.0.11", "192.168.0.11/32"),
            ("8.8.8.8", "0.0.0.0/0"),
        ];
        for (ip, want) in cases {
            let r = t.lookup(ip.parse().unwrap()).unwrap();
            assert_eq!(r.dst.to_string(), want, "{ip}");
        }
    }

    #[test]
    fn renders_like_ip_route_show() {
        let got = render_routes(&table());
        assert_eq!(
            got,
            "# ip route show  (node node-1)\n\
             default via 192.168.0.1 dev eth0\n\
             10.244.0.2 dev veth1 scope host\n\
             10.244.1.0/24 via 192.168.0.12 dev eth0\n\
             192.168.0.0/24 dev eth0 proto kernel scope link src 192.168.0.11\n\
             # ip route show table local\n\
             local 192.168.0.11 dev eth0 proto kernel scope host src 192.168.0.11\n"
        );
    }
}
