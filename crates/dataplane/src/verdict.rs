//! The fast path of `knetsim trace`: a packet's verdict (delivered, dropped or rejected; the
//! destinations reached; whether the destination sees another source) without the
//! hop-by-hop record, for reachability matrices and other questions asked millions of times.
//!
//! [`Dataplane::compile`] resolves a [`TraceQuery`] once (names, family, port, and where the
//! packet enters the cluster); [`Dataplane::verdict`] then answers it from lookup tables
//! built once per dataplane (`FastIndex`), allocating nothing, and
//! [`Dataplane::verdicts`] answers many in parallel (in input order):
//!
//! - kube-proxy: `(destination, protocol, port)` → the service ports whose cluster IP,
//!   external IP or load-balancer IP it is, in rule order; `(protocol, NodePort)` → service
//!   ports. The rules a node would have are evaluated on the family model directly (the
//!   same categorization of endpoints, the same chain-by-chain semantics as the unit-test
//!   tracers of [`crate::proxy::iptables::trace`] and [`crate::proxy::nftables::trace`]),
//!   so no node's rule set is ever built. What `categorize` decides without the node (the
//!   Cluster-policy list, whether a port has endpoints) is kept per port (`PortStatic`);
//!   only ports that use local endpoints look at the node's endpoints.
//! - routing: a node's table is never built either; its longest-prefix match is answered
//!   from the address of every pod (`/32`, `/128` routes), the podCIDRs or Calico blocks of
//!   all nodes by prefix length, and the underlay, with the kernel's tie-break. Every node
//!   that has no route or address of its own for an endpoint picks the same route to it, so
//!   that route, the node it leads to and what happens there are worked out once per
//!   endpoint (`Ep`): the common walk (leave the ingress node, masquerade or not, delivered
//!   on the endpoint's node) reads only the endpoint's entry and the ingress node's.
//! - egress masquerade: the agent's rules of each family, built once, and evaluated as bit
//!   tests on the source's and the destination's masks (an endpoint's mask is kept).
//! - data layout: endpoints, service ports and ingress nodes sit in flat arrays of small
//!   entries, addresses as integers where they are compared, so that a query touches few
//!   cache lines (the tables of a 5,000-node cluster do not fit in a core's caches).
//!
//! The detailed [`crate::trace::trace`] stays the reference: the tests check that both give
//! the same verdict over tables of queries (both families, both modes, every outcome), and
//! that each shortcut above agrees with what it replaces (`checks`).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use knetsim_control::state::ClusterState;
use knetsim_ipam::Family;

use crate::Dataplane;
use crate::fabric::Cni;
use crate::fasthash::{FastMap, FastSet};
use crate::masq::globally_routable;
use crate::proxy::iptables::IptRule;
use crate::proxy::model::{FamilyModel, ServicePortInfo, categorize};
use crate::proxy::{LocalDetector, NodeCtx, Proto};
use crate::trace::{
    End, Origin, Outcome, Place, Trace, TraceQuery, Walk, parse_proto, resolve,
    resolve_destination, resolve_source, sysctl_forwarding,
};

/// A [`TraceQuery`] resolved against one [`Dataplane`] (use it only with that one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledQuery {
    pub family: Family,
    pub proto: Proto,
    pub port: u16,
    /// The sender's address.
    pub src: IpAddr,
    /// The destination address (a Service's cluster IP for `svc:` destinations).
    pub dst: IpAddr,
    to_service: bool,
    start: Start,
}

/// Destinations resolved once ([`Dataplane::query_grid`]), against which each source is
/// resolved once per family ([`QueryGrid::row`]).
#[derive(Debug)]
pub struct QueryGrid<'a> {
    dp: &'a Dataplane,
    proto: Result<Proto, String>,
    to: Vec<GridDestination>,
}

/// A destination of a [`QueryGrid`] and its port, with where a packet from outside the
/// cluster enters it (worked out on first use).
#[derive(Debug)]
struct GridDestination {
    dest: Result<(Place, u16), String>,
    external: OnceLock<Start>,
}

/// A source of a [`QueryGrid`] row in one family, and where its packet meets netfilter
/// (`None`: outside the cluster, it depends on the destination).
struct GridSource {
    end: End,
    start: Option<Start>,
}

impl QueryGrid<'_> {
    /// The queries from `from` to every destination, in order: what
    /// [`Dataplane::compile`] gives for each (the same errors, in the same order of checks:
    /// protocol, destination, source).
    pub fn row(&self, from: &str) -> Vec<Result<CompiledQuery, String>> {
        let dp = self.dp;
        let proto = match &self.proto {
            Ok(p) => *p,
            Err(e) => return vec![Err(e.clone()); self.to.len()],
        };
        // The source, resolved in each family the first time a destination asks for it.
        let mut src: [Option<Result<GridSource, String>>; 2] = [None, None];
        self.to
            .iter()
            .map(|d| {
                let (to, port) = d.dest.as_ref().map_err(Clone::clone)?;
                let family = Family::of_ip(&to.ip);
                let s = src[fam_index(family)].get_or_insert_with(|| {
                    resolve_source(dp, dp.state(), from, family).map(|end| GridSource {
                        start: dp.source_start(&end),
                        end,
                    })
                });
                let GridSource { end, start } = s.as_ref().map_err(Clone::clone)?;
                let start = start.unwrap_or_else(|| {
                    *d.external
                        .get_or_init(|| dp.external_start(to, family, proto, *port))
                });
                Ok(CompiledQuery {
                    family,
                    proto,
                    port: *port,
                    src: end.place.ip,
                    dst: to.ip,
                    to_service: to.kind == "service",
                    start,
                })
            })
            .collect()
    }
}

/// Where the packet meets netfilter first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// On a node (`None` when the node is unknown: nothing there has rules or routes).
    At(Option<u32>, Origin),
    /// Nowhere: an unscheduled pod, or an external host the router cannot route from.
    Nowhere,
}

/// A trace's conclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Destinations the packet could be sent to after kube-proxy's choice (0 when it was
    /// blocked before that).
    pub paths: u32,
    /// Of those, how many it reached.
    pub delivered: u32,
    /// Whether a destination reached sees a source other than the sender's address.
    pub masqueraded: bool,
}

impl Verdict {
    /// The verdict of a detailed trace.
    pub fn of_trace(t: &Trace) -> Verdict {
        Verdict {
            outcome: t.verdict,
            paths: t.paths.len() as u32,
            delivered: t.endpoints.len() as u32,
            masqueraded: t.masqueraded,
        }
    }

    /// A packet its sender addressed to itself: delivered where it was sent.
    fn to_itself() -> Verdict {
        Verdict {
            outcome: Outcome::Delivered,
            paths: 1,
            delivered: 1,
            masqueraded: false,
        }
    }

    fn blocked(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            paths: 0,
            delivered: 0,
            masqueraded: false,
        }
    }
}

impl Dataplane {
    /// Resolves a query once, for [`Dataplane::verdict`]. The errors are those of
    /// [`crate::trace::trace`].
    pub fn compile(&self, q: &TraceQuery) -> Result<CompiledQuery, String> {
        let r = resolve(self, self.state(), q)?;
        let start = self
            .source_start(&r.from)
            .unwrap_or_else(|| self.external_start(&r.to, r.family, r.proto, r.port));
        Ok(CompiledQuery {
            family: r.family,
            proto: r.proto,
            port: r.port,
            src: r.from.place.ip,
            dst: r.to.ip,
            to_service: r.to.kind == "service",
            start,
        })
    }

    /// Where a pod's or node's packet meets netfilter first (`None` for a host outside the
    /// cluster: that depends on the destination, see [`Dataplane::external_start`]).
    fn source_start(&self, from: &End) -> Option<Start> {
        let ix = self.fast_index();
        let node = |name: &str| ix.node_index.get(name).copied();
        match from.place.kind {
            "pod" if !from.host_network => Some(match &from.place.node {
                Some(n) => Start::At(node(n), Origin::LocalPod),
                None => Start::Nowhere,
            }),
            "pod" | "node" => Some(Start::At(
                node(from.place.node.as_deref().unwrap_or_default()),
                Origin::Host,
            )),
            _ => None,
        }
    }

    /// Where a packet from outside the cluster to `to` enters it (the router's choice, which
    /// depends only on the destination address).
    fn external_start(&self, to: &Place, family: Family, proto: Proto, port: u16) -> Start {
        let w = Walk {
            dp: self,
            state: self.state(),
            family,
            proto,
            port,
        };
        match w.external_ingress(to, &mut Vec::new()) {
            Ok(n) => Start::At(self.fast_index().node_index.get(&n).copied(), Origin::Wire),
            Err(_) => Start::Nowhere,
        }
    }

    /// Destinations resolved once, for compiling many sources against all of them
    /// ([`QueryGrid::row`]): a reachability matrix.
    pub fn query_grid(
        &self,
        to: &[String],
        family: Option<Family>,
        proto: &str,
        port: Option<u16>,
    ) -> QueryGrid<'_> {
        let state = self.state();
        QueryGrid {
            dp: self,
            proto: parse_proto(proto),
            to: to
                .iter()
                .map(|t| GridDestination {
                    dest: resolve_destination(self, state, t, family, port),
                    external: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// What [`crate::trace::trace`] concludes for the query, computed from lookup tables
    /// without building the hop-by-hop record (or any node's rules and routes).
    pub fn verdict(&self, q: &CompiledQuery) -> Verdict {
        self.verdict_with(q, |_, _| {})
    }

    /// The verdicts of many queries, evaluated in parallel and returned in the order of
    /// `queries` (so the result is the same whatever the number of threads).
    pub fn verdicts(&self, queries: &[CompiledQuery]) -> Vec<Verdict> {
        use rayon::prelude::*;
        // Build the tables once, before the workers race for them.
        self.fast_index();
        queries.par_iter().map(|q| self.verdict(q)).collect()
    }

    /// [`Dataplane::verdict`], also calling `reached` with each destination the packet
    /// reaches, in the order of the detailed trace's `endpoints`.
    pub fn verdict_with(&self, q: &CompiledQuery, mut reached: impl FnMut(IpAddr, u16)) -> Verdict {
        let ix = self.fast_index();
        Eval {
            r: Router::new(self, ix, q.family),
            q,
        }
        .run(&mut reached)
    }

    /// The lookup tables of the fast path, built on first use.
    pub(crate) fn fast_index(&self) -> &FastIndex {
        self.fast.get_or_init(|| FastIndex::build(self))
    }
}

fn fam_index(f: Family) -> usize {
    match f {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

// ------------------------------------------------------------------------------------------
// The index

/// What a `(destination, protocol, port)` key is to a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Cluster,
    External,
    LoadBalancer,
}

/// One node, as the fast path needs it.
#[derive(Debug)]
struct FastNode {
    /// The primary InternalIP per family (the only one, unless `more_ips`), kept inline so
    /// that route lookups do not chase a pointer.
    ip: [Option<IpAddr>; 2],
    more_ips: [bool; 2],
    /// `net.ipv4.conf.all.forwarding` / `net.ipv6.conf.all.forwarding`.
    forwarding: [bool; 2],
    /// The first podCIDR of each family.
    pod_cidr: [Option<IpNet>; 2],
    /// InternalIPs per family, primary first: read only when `more_ips` (boxed so that the
    /// node stays small).
    ips: Box<[Vec<IpAddr>; 2]>,
}

/// One node in one family, as a packet that meets netfilter there first needs it: each
/// family's nodes in one array ([`FamIndex::ingress`]), of which a packet reads one entry.
#[derive(Debug)]
struct IngressNode {
    /// The primary InternalIP of the family ([`FastNode::ip`]; also kube-proxy's `nodeIP`,
    /// which `NodeCtx::new` takes from the same list).
    ip: Option<IpAddr>,
    more_ips: bool,
    forwarding: bool,
    /// kube-proxy's view of the node, when it programs rules.
    proxy: Option<ProxyNode>,
}

/// The parts of kube-proxy's [`NodeCtx`] of one node and family that its rules' matches
/// depend on.
#[derive(Debug)]
struct ProxyNode {
    detector: Detector,
    masquerade_all: bool,
    /// `NodeCtx::nodeport`'s `match_all`.
    nodeport_match_all: bool,
    localhost_nodeports: bool,
    /// `NodeCtx::nodeport_ips()`.
    nodeport_ips: Vec<IpAddr>,
}

/// [`LocalDetector`], with the CIDR's mask precomputed.
#[derive(Clone, Copy, Debug)]
enum Detector {
    NoOp,
    Cidr(Net),
    Interface,
}

impl ProxyNode {
    fn new(ctx: &NodeCtx) -> ProxyNode {
        ProxyNode {
            detector: match &ctx.local_detector {
                LocalDetector::NoOp => Detector::NoOp,
                LocalDetector::Cidr(c) => Detector::Cidr(Net::new(*c)),
                LocalDetector::Interface(_) => Detector::Interface,
            },
            masquerade_all: ctx.masquerade_all,
            nodeport_match_all: ctx.nodeport.match_all,
            localhost_nodeports: ctx.localhost_nodeports,
            nodeport_ips: ctx.nodeport_ips(),
        }
    }
}

/// A longest-prefix-match table: entries by exact prefix, probed from the longest length.
#[derive(Debug, Default)]
struct Lpm<T> {
    /// Distinct prefix lengths, longest first.
    lens: Vec<u8>,
    map: FastMap<(u8, u128), Vec<T>>,
}

fn masked(ip: IpAddr, len: u8) -> u128 {
    let (v, bits) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let len = u32::from(len);
    if len == 0 {
        0
    } else {
        v & (u128::MAX << (bits - len)) & (u128::MAX >> (128 - bits))
    }
}

impl<T> Lpm<T> {
    fn insert(&mut self, net: IpNet, v: T) {
        let len = net.prefix_len();
        if !self.lens.contains(&len) {
            self.lens.push(len);
            self.lens.sort_by(|a, b| b.cmp(a));
        }
        self.map
            .entry((len, masked(net.network(), len)))
            .or_default()
            .push(v);
    }
    /// The entries of every prefix containing `ip`, longest prefix first.
    fn matches(&self, ip: IpAddr) -> impl Iterator<Item = (u8, &[T])> {
        self.lens.iter().filter_map(move |&len| {
            self.map
                .get(&(len, masked(ip, len)))
                .map(|v| (len, v.as_slice()))
        })
    }
}

/// A route of a node's main table the fast path may pick: where it sends packets, and the
/// kernel's order among routes of equal prefix length (its `ip route` type, then insertion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Local,
    /// A pod's `/32` or `/128` route, or a kubenet bridge: delivered if the pod is here.
    Pod,
    Node(u32),
    Gateway,
    Connected,
    Blackhole,
}

/// Sequence numbers of the main table's routes in the order [`crate::fabric::Fabric::routes`]
/// inserts them: underlay, default, `fe80::/64`, then per-pod routes, then routes to other
/// nodes (or Calico blocks).
const SEQ_UNDERLAY: u64 = 0;
const SEQ_DEFAULT: u64 = 1;
const SEQ_LINK_LOCAL: u64 = 2;
const SEQ_BRIDGE: u64 = 3;
const SEQ_PODS: u64 = 4;
const SEQ_NODES: u64 = 1 << 40;

/// What the routing tables of any node hold about one destination address, looked up once
/// (and, for every endpoint of the family model, once per dataplane): the answer to a
/// node's longest-prefix match needs nothing else unless `complex`.
#[derive(Clone, Copy, Debug, Default)]
struct DstInfo {
    /// The fabric's pod with this address: `Some(node)` (`u32::MAX`: unscheduled or on an
    /// unknown node).
    pod: Option<u32>,
    /// The node with this address.
    node: Option<u32>,
    /// The one pod route to this address: (sequence, node).
    pod_route: Option<(u64, u32)>,
    /// The one route to another node's podCIDR or Calico block containing the address:
    /// (prefix length, sequence, owner).
    node_route: Option<(u8, u64, u32)>,
    /// More than one pod route, or node routes of several prefixes or owners: look them up.
    complex: bool,
}

/// A node number meaning "no node".
const NO_NODE: u32 = u32::MAX;

/// The node number [`Router::route`] takes for a node that is not special for the
/// destination: it has an address of the family, none equal to the destination, and neither
/// the destination's pod route nor the podCIDR or block route containing it is its own. Every
/// such node picks the same route (`generic_routes_hold_for_every_plain_node` checks it), which
/// is therefore computed once per endpoint ([`Ep::next`]).
const GENERIC: u32 = u32::MAX - 1;

/// [`Ep::flags`]: the endpoint is ready.
const EP_READY: u8 = 1;
/// Serving and terminating.
const EP_SERVING_TERMINATING: u8 = 2;
/// In its port's Cluster-policy list (`categorize`'s cluster list, the same on every node).
const EP_IN_CLUSTER: u8 = 4;
/// Its address is a cluster, external or load-balancer IP of some service port (so the
/// filter chains, which look the DNATed address up, may find it).
const EP_SERVICE_ADDR: u8 = 8;
/// Its address is a cluster IP (nftables' `cluster-ips` set).
const EP_CLUSTER_IP: u8 = 16;

/// What happens to a packet for an endpoint once it reaches [`Ep::next`] from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// Delivered, with the source it arrived with.
    Deliver,
    Drop,
    /// Something else: walk on from that node.
    Walk,
}

/// One endpoint of the family model, as the fast path reads it (by model-wide endpoint
/// number): small, so that the endpoints of a port share few cache lines, and holding what
/// its walk from any plain node needs, so that the common walk (to another node, delivered
/// there) reads nothing else.
#[derive(Clone, Copy, Debug)]
struct Ep {
    /// The address, as [`ip_bits`] gives it.
    bits: u128,
    /// Which tests of the egress masquerade rules the address passes
    /// ([`MasqRules::dst_mask`]).
    masq_dst: u64,
    /// The endpoint's node as kube-proxy sees it, `NO_NODE` when it has none or an unknown
    /// one.
    node: u32,
    /// Nodes for which the generic route does not hold: the one with the pod route to the
    /// address, and the owner of the podCIDR or block containing it.
    avoid: [u32; 2],
    /// The node the generic route sends the packet to over the wire (`NO_NODE`: the generic
    /// route does something else, or is not known: walk it).
    next: u32,
    tail: Tail,
    port: u16,
    flags: u8,
}

impl Ep {
    fn ip(&self, family: Family) -> IpAddr {
        knetsim_ipam::family::u128_to_ip(family, self.bits)
    }
}

/// A `(destination, protocol, port)` key's service ports, in rule order (one, nearly always).
#[derive(Debug)]
enum Entries {
    One([(u32, Role); 1]),
    Many(Vec<(u32, Role)>),
}

/// The service ports of one key, with their roles.
type EntryList<'a> = &'a [(u32, Role)];

impl Entries {
    fn as_slice(&self) -> &[(u32, Role)] {
        match self {
            Entries::One(e) => e,
            Entries::Many(v) => v,
        }
    }
}

/// An egress agent's POSTROUTING rules of one family ([`crate::masq::EgressMasq::iptables`]),
/// compiled for [`crate::masq::EgressMasq::walk`]'s walk: chains numbered, CIDRs with their
/// masks, ipsets resolved.
#[derive(Debug, Default)]
struct MasqRules {
    rules: Vec<MasqRule>,
    /// The same rules as bit tests (`None` when they test more than 64 distinct destination
    /// or source address sets): a packet's destination is then summed up by the set of tests
    /// it passes ([`MasqRules::dst_mask`], computed once per endpoint), so that deciding for
    /// one source and many endpoints needs no address comparisons.
    masks: Option<MaskRules>,
}

/// [`MasqRules`] over bit masks: bit `t` of a destination (source) mask says whether the
/// address is in `dst_tests[t]` (`src_tests[t]`).
#[derive(Debug, Default)]
struct MaskRules {
    dst_tests: Vec<Vec<Net>>,
    src_tests: Vec<Vec<Net>>,
    rules: Vec<MaskRule>,
}

/// A rule matches a packet whose masks have every bit of `*_set` and none of `*_clear`.
#[derive(Debug)]
struct MaskRule {
    chain: u16,
    never: bool,
    dst_set: u64,
    dst_clear: u64,
    src_set: u64,
    src_clear: u64,
    target: MasqTarget,
}

impl MaskRules {
    fn compile(rules: &[MasqRule]) -> Option<MaskRules> {
        let mut m = MaskRules::default();
        fn bit(tests: &mut Vec<Vec<Net>>, nets: &[Net]) -> Option<u64> {
            let t = match tests.iter().position(|x| x.as_slice() == nets) {
                Some(t) => t,
                None => {
                    tests.push(nets.to_vec());
                    tests.len() - 1
                }
            };
            (t < 64).then(|| 1u64 << t)
        }
        for r in rules {
            let mut mr = MaskRule {
                chain: r.chain,
                never: false,
                dst_set: 0,
                dst_clear: 0,
                src_set: 0,
                src_clear: 0,
                target: r.target,
            };
            for a in &r.args {
                let (is_src, nets, neg) = match a {
                    MasqArg::Dst(n, neg) => (false, std::slice::from_ref(n), *neg),
                    MasqArg::Src(n, neg) => (true, std::slice::from_ref(n), *neg),
                    MasqArg::Set(nets, is_src, neg) => (*is_src, nets.as_slice(), *neg),
                    MasqArg::DstTypeLocal(neg) => {
                        mr.never |= !*neg;
                        continue;
                    }
                };
                let (tests, set, clear) = if is_src {
                    (&mut m.src_tests, &mut mr.src_set, &mut mr.src_clear)
                } else {
                    (&mut m.dst_tests, &mut mr.dst_set, &mut mr.dst_clear)
                };
                let b = bit(tests, nets)?;
                if neg {
                    *clear |= b;
                } else {
                    *set |= b;
                }
            }
            m.rules.push(mr);
        }
        Some(m)
    }

    fn mask(tests: &[Vec<Net>], ip: IpAddr) -> u64 {
        tests
            .iter()
            .enumerate()
            .filter(|(_, nets)| nets.iter().any(|n| n.contains(ip)))
            .fold(0, |m, (t, _)| m | 1 << t)
    }

    /// [`MasqRules::masquerades`] for a source and a destination given by their masks.
    fn masquerades(&self, src: u64, dst: u64) -> bool {
        let matches = |r: &MaskRule| {
            !r.never
                && dst & r.dst_set == r.dst_set
                && dst & r.dst_clear == 0
                && src & r.src_set == r.src_set
                && src & r.src_clear == 0
        };
        walk_chains(&self.rules, |r| (r.chain, r.target), matches)
    }
}

#[derive(Debug)]
struct MasqRule {
    chain: u16,
    args: Vec<MasqArg>,
    target: MasqTarget,
}

#[derive(Debug)]
enum MasqArg {
    Dst(Net, bool),
    Src(Net, bool),
    /// `! --dst-type LOCAL` matches (the destination of a leaving packet is not local).
    DstTypeLocal(bool),
    /// `-m set --match-set`: the set's CIDRs, whether it tests the source, negated.
    Set(Vec<Net>, bool, bool),
}

/// The walk of an egress agent's POSTROUTING chains (`EgressMasq::walk`): from chain 0, the
/// first matching rule of the current chain decides (a jump continues in its chain), at most
/// eight chains deep. `rule` gives a rule's (chain, target).
fn walk_chains<R>(
    rules: &[R],
    rule: impl Fn(&R) -> (u16, MasqTarget),
    matches: impl Fn(&R) -> bool,
) -> bool {
    let mut chain = 0u16;
    let mut depth = 0;
    'walk: while depth < 8 {
        depth += 1;
        for r in rules.iter().filter(|r| rule(r).0 == chain) {
            if !matches(r) {
                continue;
            }
            match rule(r).1 {
                MasqTarget::Jump(next) => {
                    chain = next;
                    continue 'walk;
                }
                MasqTarget::Return => return false,
                MasqTarget::Masquerade => return true,
                MasqTarget::Other => {}
            }
        }
        break;
    }
    false
}

#[derive(Clone, Copy, Debug)]
enum MasqTarget {
    Jump(u16),
    Return,
    Masquerade,
    Other,
}

impl MasqRules {
    fn compile(masq: &crate::masq::EgressMasq, rules: &[IptRule]) -> MasqRules {
        use crate::proxy::iptables::{Addr, Arg, Target};
        let mut chains: Vec<crate::proxy::iptables::Chain> =
            vec![crate::proxy::iptables::Chain::Fixed("POSTROUTING")];
        let mut id = |c: &crate::proxy::iptables::Chain| -> u16 {
            match chains.iter().position(|x| x == c) {
                Some(i) => i as u16,
                None => {
                    chains.push(c.clone());
                    (chains.len() - 1) as u16
                }
            }
        };
        let net = |a: &Addr| match a {
            Addr::Ip(ip) => Net::new(IpNet::from(*ip)),
            Addr::Net(n) => Net::new(*n),
        };
        let (masq_pools, all_pools) = match masq {
            crate::masq::EgressMasq::Calico {
                masq_pools,
                all_pools,
                ..
            } => (
                masq_pools.iter().copied().map(Net::new).collect(),
                all_pools.iter().copied().map(Net::new).collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let rules = rules
            .iter()
            .map(|r| MasqRule {
                chain: id(&r.chain),
                args: r
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        Arg::Dst(addr, neg) => Some(MasqArg::Dst(net(addr), *neg)),
                        Arg::Src(addr, neg) => Some(MasqArg::Src(net(addr), *neg)),
                        Arg::DstTypeLocal(neg) => Some(MasqArg::DstTypeLocal(*neg)),
                        Arg::MatchSet(name, dir, neg) => {
                            // Only Calico has sets; any other agent's set is empty.
                            let set = match masq {
                                crate::masq::EgressMasq::Calico { .. } if name.contains("masq") => {
                                    masq_pools.clone()
                                }
                                crate::masq::EgressMasq::Calico { .. } => all_pools.clone(),
                                _ => Vec::new(),
                            };
                            Some(MasqArg::Set(set, *dir == "src", *neg))
                        }
                        _ => None,
                    })
                    .collect(),
                target: match &r.target {
                    Target::Jump(c) => MasqTarget::Jump(id(c)),
                    Target::Return => MasqTarget::Return,
                    Target::Masquerade { .. } => MasqTarget::Masquerade,
                    _ => MasqTarget::Other,
                },
            })
            .collect::<Vec<_>>();
        MasqRules {
            masks: MaskRules::compile(&rules),
            rules,
        }
    }

    /// The destination mask of `ip`, when the rules have masks.
    fn dst_mask(&self, ip: IpAddr) -> u64 {
        self.masks
            .as_ref()
            .map_or(0, |m| MaskRules::mask(&m.dst_tests, ip))
    }

    /// The source mask of `ip`, when the rules have masks.
    fn src_mask(&self, ip: IpAddr) -> u64 {
        self.masks
            .as_ref()
            .map_or(0, |m| MaskRules::mask(&m.src_tests, ip))
    }

    /// Whether the agent masquerades `src` → `dst`: by masks when the rules have them, else
    /// by walking the rules.
    fn masquerades(&self, src: IpAddr, dst: IpAddr) -> bool {
        match &self.masks {
            Some(m) => m.masquerades(self.src_mask(src), self.dst_mask(dst)),
            None => self.masquerades_by_walk(src, dst),
        }
    }

    /// Whether the agent masquerades `src` → `dst` (the walk of `EgressMasq::walk`).
    fn masquerades_by_walk(&self, src: IpAddr, dst: IpAddr) -> bool {
        let matches = |r: &MasqRule| {
            r.args.iter().all(|a| match a {
                MasqArg::Dst(n, neg) => n.contains(dst) != *neg,
                MasqArg::Src(n, neg) => n.contains(src) != *neg,
                MasqArg::DstTypeLocal(neg) => *neg,
                MasqArg::Set(nets, is_src, neg) => {
                    let ip = if *is_src { src } else { dst };
                    nets.iter().any(|n| n.contains(ip)) != *neg
                }
            })
        };
        walk_chains(&self.rules, |r| (r.chain, r.target), matches)
    }
}

/// One family's tables.
#[derive(Debug)]
struct FamIndex {
    family: Family,
    model: Option<Arc<FamilyModel>>,
    services: FastMap<(IpAddr, Proto, u16), Entries>,
    nodeports: FastMap<(Proto, u16), Vec<u32>>,
    health_check_ports: FastSet<u16>,
    cluster_ips: FastSet<IpAddr>,
    masq: MasqRules,
    underlay: Option<Net>,
    /// Pods' routes: the pod's first address of the family → (sequence, node).
    pod_routes: FastMap<IpAddr, Vec<(u64, u32)>>,
    /// Routes to other nodes' podCIDRs (host-local) or Calico blocks: (sequence, owner).
    node_routes: Lpm<(u64, u32)>,
    /// kubenet's cloud routes: podCIDR → the first node (in name order) owning it.
    router_routes: Lpm<u32>,
    programs_pods: bool,
    /// `fe80::/64` for IPv6.
    link_local: Option<Net>,
    /// Every node, by node number, as a packet entering it needs it.
    ingress: Vec<IngressNode>,
    /// `NodeCtx::version` and `NodeCtx::service_cidrs`, the same on every node (kube-proxy
    /// takes them from the cluster).
    version: knetsim_model::KubeVersion,
    service_cidrs: Vec<Net>,
    /// [`PortStatic`] of every service port of the model.
    ports: Vec<PortStatic>,
    /// [`Ep`] of every endpoint of the model, by model-wide endpoint number.
    eps: Vec<Ep>,
    /// [`DstInfo`] of every endpoint of the model, by model-wide endpoint number.
    infos: Vec<DstInfo>,
}

/// The fast path's lookup tables for one dataplane.
#[derive(Debug)]
pub(crate) struct FastIndex {
    nodes: Vec<FastNode>,
    node_index: FastMap<String, u32>,
    families: [FamIndex; 2],
    /// The fabric's pod-by-address table, as the node each pod runs on (`None`: unscheduled
    /// or on an unknown node).
    pod_node_by_ip: FastMap<IpAddr, Option<u32>>,
    node_by_ip: FastMap<IpAddr, u32>,
    cluster_cidrs: Vec<Net>,
    service_cidrs: Vec<Net>,
    /// kube-proxy runs in nftables mode (else iptables, when it runs).
    nftables: bool,
    /// Whether [`GENERIC`] routes are used: not with kubenet, whose node-local bridge route
    /// makes every node with a podCIDR containing the destination special.
    generic_routes: bool,
}

impl FastNode {
    fn has_ip(&self, fi: usize, ip: IpAddr) -> bool {
        if self.more_ips[fi] {
            self.ips[fi].contains(&ip)
        } else {
            self.ip[fi] == Some(ip)
        }
    }
}

/// A CIDR with its mask precomputed, for the containment tests on hot paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    v6: bool,
    base: u128,
    mask: u128,
    len: u8,
}

impl Net {
    fn new(n: IpNet) -> Net {
        let len = n.prefix_len();
        let (v6, bits) = match n {
            IpNet::V4(_) => (false, 32u32),
            IpNet::V6(_) => (true, 128u32),
        };
        let mask = if len == 0 {
            0
        } else {
            (u128::MAX << (bits - u32::from(len))) & (u128::MAX >> (128 - bits))
        };
        Net {
            v6,
            base: ip_bits(n.network()) & mask,
            mask,
            len,
        }
    }
    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.v6 && ip_bits(ip) & self.mask == self.base
    }
}

#[inline]
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FastIndex {
    fn build(dp: &Dataplane) -> FastIndex {
        let state: &ClusterState = dp.state();
        let node_index: FastMap<String, u32> = state
            .nodes
            .keys()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let nodes: Vec<FastNode> = state
            .nodes
            .iter()
            .map(|(name, n)| {
                let fams = [Family::IPv4, Family::IPv6];
                let ips: [Vec<IpAddr>; 2] = fams.map(|f| {
                    n.internal_ips()
                        .filter(|ip| Family::of_ip(ip) == f)
                        .collect()
                });
                FastNode {
                    ip: [ips[0].first().copied(), ips[1].first().copied()],
                    more_ips: [ips[0].len() > 1, ips[1].len() > 1],
                    ips: Box::new(ips),
                    forwarding: fams.map(|f| sysctl_forwarding(state, name, f)),
                    pod_cidr: fams.map(|f| n.pod_cidr(f)),
                }
            })
            .collect();
        let node_of = |name: &str| node_index.get(name).copied();
        let pod_node_by_ip = dp
            .fabric
            .pod_by_ip
            .iter()
            .map(|(ip, nn)| {
                let node = state
                    .pods
                    .get(nn)
                    .and_then(|p| p.spec.node_name.as_deref())
                    .and_then(node_of);
                (*ip, node)
            })
            .collect();
        let node_by_ip = dp
            .fabric
            .node_by_ip
            .iter()
            .filter_map(|(ip, n)| Some((*ip, node_of(n)?)))
            .collect();
        let families = [Family::IPv4, Family::IPv6].map(|f| FamIndex::build(dp, f, &node_index));
        let mut ix = FastIndex {
            nodes,
            node_index,
            families,
            pod_node_by_ip,
            node_by_ip,
            cluster_cidrs: state
                .network
                .cluster_cidrs
                .iter()
                .copied()
                .map(Net::new)
                .collect(),
            service_cidrs: state
                .network
                .service_cidrs
                .iter()
                .copied()
                .map(Net::new)
                .collect(),
            nftables: dp.proxy_mode() == Some("nftables"),
            generic_routes: !matches!(dp.fabric.cni, Cni::Kubenet),
        };
        for fi in 0..2 {
            let Some(m) = ix.families[fi].model.clone() else {
                continue;
            };
            let (ports, eps, infos) = ix.endpoint_tables(dp, fi, &m);
            let f = &mut ix.families[fi];
            f.ports = ports;
            f.eps = eps;
            f.infos = infos;
        }
        ix
    }

    /// The per-port and per-endpoint tables of a family model (ports in parallel, joined in
    /// order).
    fn endpoint_tables(
        &self,
        dp: &Dataplane,
        fi: usize,
        m: &FamilyModel,
    ) -> (Vec<PortStatic>, Vec<Ep>, Vec<DstInfo>) {
        use rayon::prelude::*;
        let f = &self.families[fi];
        // Endpoints carry their node's number in the model, which numbers the cluster's
        // nodes first in name order, as `node_index` does.
        debug_assert!(
            self.node_index
                .iter()
                .all(|(name, &i)| m.node_id(name) == Some(i))
        );
        let r = Router::new(dp, self, f.family);
        let service_addrs: FastSet<IpAddr> = f.services.keys().map(|k| k.0).collect();
        let per_port: Vec<(PortStatic, Vec<(Ep, DstInfo)>)> = m
            .ports
            .par_iter()
            .map(|sp| {
                let (ps, in_cluster) = PortStatic::new(sp);
                let eps = sp
                    .endpoints
                    .iter()
                    .zip(in_cluster)
                    .map(|(e, in_cluster)| {
                        let info = self.dst_info(fi, e.ip);
                        let (next, tail) = r.generic_first_hop(e.ip, &info);
                        let flags = [
                            (e.ready, EP_READY),
                            (e.serving && e.terminating, EP_SERVING_TERMINATING),
                            (in_cluster, EP_IN_CLUSTER),
                            (service_addrs.contains(&e.ip), EP_SERVICE_ADDR),
                            (f.cluster_ips.contains(&e.ip), EP_CLUSTER_IP),
                        ]
                        .into_iter()
                        .filter(|(on, _)| *on)
                        .fold(0, |acc, (_, bit)| acc | bit);
                        let ep = Ep {
                            bits: ip_bits(e.ip),
                            masq_dst: f.masq.dst_mask(e.ip),
                            node: m.cluster_node(e).unwrap_or(NO_NODE),
                            avoid: [
                                info.pod_route.map_or(NO_NODE, |(_, n)| n),
                                info.node_route.map_or(NO_NODE, |(_, _, n)| n),
                            ],
                            next,
                            tail,
                            port: e.port,
                            flags,
                        };
                        (ep, info)
                    })
                    .collect();
                (ps, eps)
            })
            .collect();
        let mut ports = Vec::with_capacity(per_port.len());
        let mut eps = Vec::with_capacity(m.total_endpoints);
        let mut infos = Vec::with_capacity(m.total_endpoints);
        for (ps, list) in per_port {
            ports.push(ps);
            for (ep, info) in list {
                eps.push(ep);
                infos.push(info);
            }
        }
        (ports, eps, infos)
    }

    /// Looks up what the routing tables hold about `ip`.
    fn dst_info(&self, fi: usize, ip: IpAddr) -> DstInfo {
        let f = &self.families[fi];
        let mut info = DstInfo {
            pod: self.pod_node_by_ip.get(&ip).map(|n| n.unwrap_or(u32::MAX)),
            node: self.node_by_ip.get(&ip).copied(),
            ..DstInfo::default()
        };
        if f.programs_pods
            && let Some(routes) = f.pod_routes.get(&ip)
        {
            match routes.as_slice() {
                [one] => info.pod_route = Some(*one),
                [] => {}
                _ => info.complex = true,
            }
        }
        let mut lens = f.node_routes.matches(ip);
        if let Some((len, entries)) = lens.next() {
            match entries {
                [(seq, owner)] => info.node_route = Some((len, *seq, *owner)),
                _ => info.complex = true,
            }
            if lens.next().is_some() {
                info.complex = true;
            }
        }
        info
    }
}

impl FamIndex {
    fn build(dp: &Dataplane, family: Family, node_index: &FastMap<String, u32>) -> FamIndex {
        let state = dp.state();
        let node_of = |name: &str| node_index.get(name).copied();
        let model = dp.model(family).cloned();
        let mut services: FastMap<(IpAddr, Proto, u16), Vec<(u32, Role)>> = FastMap::default();
        let mut nodeports: FastMap<(Proto, u16), Vec<u32>> = FastMap::default();
        let mut health_check_ports = FastSet::default();
        let mut cluster_ips = FastSet::default();
        if let Some(m) = &model {
            for (i, sp) in m.ports.iter().enumerate() {
                let i = i as u32;
                // In rule order: the cluster IP, each external IP, each load-balancer IP.
                services
                    .entry((sp.cluster_ip, sp.proto, sp.port))
                    .or_default()
                    .push((i, Role::Cluster));
                for &ip in &sp.external_ips {
                    services
                        .entry((ip, sp.proto, sp.port))
                        .or_default()
                        .push((i, Role::External));
                }
                for &ip in &sp.lb_vips {
                    services
                        .entry((ip, sp.proto, sp.port))
                        .or_default()
                        .push((i, Role::LoadBalancer));
                }
                if sp.node_port != 0 {
                    nodeports
                        .entry((sp.proto, sp.node_port))
                        .or_default()
                        .push(i);
                }
                if sp.health_check_node_port != 0 {
                    health_check_ports.insert(sp.health_check_node_port);
                }
                cluster_ips.insert(sp.cluster_ip);
            }
        }
        let masq = MasqRules::compile(&dp.masq, &dp.masq.iptables(family).1);
        let programs_pods = match &dp.fabric.cni {
            Cni::HostLocal => true,
            Cni::Kubenet => false,
            Cni::Calico(c) => c.programs(family),
        };
        // Pod routes: every pod with a node gets a route to its first address of the family
        // on that node (host-local and Calico).
        let mut pod_routes: FastMap<IpAddr, Vec<(u64, u32)>> = FastMap::default();
        if programs_pods {
            for (k, p) in state.pods.values().enumerate() {
                if p.spec.host_network {
                    continue;
                }
                let (Some(node), Some(ip)) = (
                    p.spec.node_name.as_deref().and_then(node_of),
                    p.ip_of(family),
                ) else {
                    continue;
                };
                pod_routes
                    .entry(ip)
                    .or_default()
                    .push((SEQ_PODS + k as u64, node));
            }
        }
        let mut node_routes = Lpm::default();
        let mut router_routes = Lpm::default();
        match &dp.fabric.cni {
            Cni::HostLocal => {
                for (k, n) in state.nodes.values().enumerate() {
                    if let (Some(cidr), Some(_)) = (n.pod_cidr(family), n.internal_ip(family)) {
                        node_routes.insert(cidr, (SEQ_NODES + k as u64, k as u32));
                    }
                }
            }
            Cni::Kubenet => {
                // The router's cloud routes, found in node order (the first node wins).
                for (k, n) in state.nodes.values().enumerate() {
                    if let Some(cidr) = n.pod_cidr(family) {
                        router_routes.insert(cidr, k as u32);
                    }
                }
            }
            Cni::Calico(c) => {
                if c.programs(family) {
                    for (k, (block, owner)) in c.blocks.iter().enumerate() {
                        if Family::of_net(block) != family {
                            continue;
                        }
                        // An owner that is not a node gets neither a blackhole nor a route.
                        if let Some(o) = node_of(owner) {
                            node_routes.insert(*block, (SEQ_NODES + k as u64, o));
                        }
                    }
                }
            }
        }
        let services = services
            .into_iter()
            .map(|(k, v)| {
                let e = match v.as_slice() {
                    [one] => Entries::One([*one]),
                    _ => Entries::Many(v),
                };
                (k, e)
            })
            .collect();
        let cfg = dp.proxy.as_ref().filter(|_| dp.proxy_mode().is_some());
        let ingress = {
            use rayon::prelude::*;
            let nodes: Vec<(&String, &knetsim_control::state::Node)> = state.nodes.iter().collect();
            nodes
                .par_iter()
                .map(|(name, n)| {
                    let mut ips = n.internal_ips().filter(|ip| Family::of_ip(ip) == family);
                    IngressNode {
                        ip: ips.next(),
                        more_ips: ips.next().is_some(),
                        forwarding: sysctl_forwarding(state, name, family),
                        proxy: cfg
                            .map(|cfg| ProxyNode::new(&NodeCtx::new(state, cfg, name, family))),
                    }
                })
                .collect()
        };
        FamIndex {
            family,
            ingress,
            version: state.kubernetes_version,
            service_cidrs: state
                .network
                .service_cidrs
                .iter()
                .copied()
                .filter(|c| Family::of_net(c) == family)
                .map(Net::new)
                .collect(),
            link_local: (family == Family::IPv6)
                .then(|| Net::new("fe80::/64".parse().expect("static"))),
            ports: Vec::new(),
            eps: Vec::new(),
            infos: Vec::new(),
            model,
            services,
            nodeports,
            health_check_ports,
            cluster_ips,
            masq,
            underlay: dp.fabric.underlay.get(&family).map(|(n, _)| Net::new(*n)),
            pod_routes,
            node_routes,
            router_routes,
            programs_pods,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Evaluation

struct Eval<'a> {
    r: Router<'a>,
    q: &'a CompiledQuery,
}

/// Routing, forwarding and POSTROUTING in one family: what any query's walk needs.
struct Router<'a> {
    dp: &'a Dataplane,
    ix: &'a FastIndex,
    f: &'a FamIndex,
    fi: usize,
    family: Family,
}

/// Which endpoint list of a service port a chain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Cluster,
    Local,
}

/// What kube-proxy's rules did to the packet.
#[derive(Clone, Copy, Debug, Default)]
struct ProxyOut {
    /// The service port and endpoint list the packet was DNATed to (every endpoint of the
    /// list is a possible destination).
    dnat: Option<(u32, List)>,
    /// The first DROP (false) or REJECT (true).
    block: Option<bool>,
    accept: bool,
    /// Marked for masquerade by a service or external chain (every path is masqueraded).
    masq: bool,
    /// Marked by the hairpin rule of an endpoint's chain (`-s <endpoint> -j KUBE-MARK-MASQ`):
    /// only the path back to the sender, which is that endpoint, is masqueraded.
    hairpin: bool,
}

/// A packet at kube-proxy's rules.
struct Pkt<'a> {
    src: IpAddr,
    src_bits: u128,
    dst: IpAddr,
    proto: Proto,
    dport: u16,
    node_ips: &'a [IpAddr],
    src_is_local: bool,
    from_local_pod: bool,
}

impl Pkt<'_> {
    fn is_local_addr(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.node_ips.contains(&ip)
    }
}

/// The per-node facts of one service port (`writeServiceToEndpointRules`' local variables),
/// from the port's [`PortStatic`] and, for ports that use local endpoints, which endpoints
/// are on the node.
#[derive(Clone, Copy)]
struct PortFacts<'a> {
    sp: &'a ServicePortInfo,
    ps: &'a PortStatic,
    eps: &'a [Ep],
    /// The node, and which of its endpoints are local ones (`categorize`'s local list).
    node: u32,
    local: LocalPick,
    has_endpoints: bool,
    has_internal: bool,
    internal: List,
    has_external: bool,
    external: List,
    uses_cluster_chain: bool,
    uses_local_chain: bool,
    uses_ext_chain: bool,
    /// iptables: `KUBE-FW-` exists (needs endpoints); nftables: `firewall-` exists.
    uses_fw_chain_ipt: bool,
    uses_fw_chain_nft: bool,
}

/// Which endpoints on the node `categorize` lists for the Local policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LocalPick {
    None,
    Ready,
    ServingTerminating,
}

/// What `categorize` decides about a service port without knowing the node: computed once
/// per port ([`PortStatic::new`]), so that a packet to a port without local endpoints does
/// not look at the endpoints at all before the chosen ones.
#[derive(Clone, Copy, Debug)]
struct PortStatic {
    first: u32,
    len: u32,
    /// The port's cluster IP, protocol and port (what the internal chain's masquerade rule
    /// matches), copied so that the common packet does not read the port itself.
    cluster_ip: IpAddr,
    proto: Proto,
    port: u16,
    /// `categorize`'s `has_any`: whether any endpoint is usable, on any node.
    has_any: bool,
    /// The Cluster-policy list is not empty.
    cluster_nonempty: bool,
    uses_cluster_endpoints: bool,
    uses_local_endpoints: bool,
    internal_policy_local: bool,
    external_policy_local: bool,
    externally_accessible: bool,
    /// Load-balancer IPs with source ranges.
    fw: bool,
}

impl PortStatic {
    /// The port's facts, and which of its endpoints are in its Cluster-policy list.
    ///
    /// `categorize` decides the Cluster list and `has_any` from readiness alone (only the
    /// Local list depends on the node), so asking it about no node gives them; the test
    /// `categorize_is_evaluated_per_node_equal` checks the Local lists against it.
    fn new(sp: &ServicePortInfo) -> (PortStatic, Vec<bool>) {
        let cat = categorize(sp, None);
        let mut in_cluster = vec![false; sp.endpoints.len()];
        for (j, _) in cat.cluster() {
            in_cluster[j as usize] = true;
        }
        (
            PortStatic {
                first: sp.first_endpoint,
                len: sp.endpoints.len() as u32,
                cluster_ip: sp.cluster_ip,
                proto: sp.proto,
                port: sp.port,
                has_any: cat.has_any,
                cluster_nonempty: !cat.cluster_is_empty(),
                uses_cluster_endpoints: sp.uses_cluster_endpoints(),
                uses_local_endpoints: sp.uses_local_endpoints(),
                internal_policy_local: sp.internal_policy_local,
                external_policy_local: sp.external_policy_local,
                externally_accessible: sp.externally_accessible(),
                fw: !sp.lb_vips.is_empty() && !sp.lb_source_ranges.is_empty(),
            },
            in_cluster,
        )
    }
}

impl<'a> PortFacts<'a> {
    fn new(sp: &'a ServicePortInfo, ps: &'a PortStatic, eps: &'a [Ep], node: u32) -> Self {
        // kube-proxy: pkg/proxy/topology.go CategorizeEndpoints (the local part): the ready
        // endpoints on the node, else its serving and terminating ones.
        let local = if ps.uses_local_endpoints {
            let mut pick = LocalPick::None;
            for e in &eps[ps.first as usize..(ps.first + ps.len) as usize] {
                if e.node != node {
                    continue;
                }
                if e.flags & EP_READY != 0 {
                    pick = LocalPick::Ready;
                    break;
                }
                if e.flags & EP_SERVING_TERMINATING != 0 {
                    pick = LocalPick::ServingTerminating;
                }
            }
            pick
        } else {
            LocalPick::None
        };
        let has_endpoints = ps.has_any;
        let local_empty = local == LocalPick::None;
        let uses_cluster_chain = ps.cluster_nonempty && ps.uses_cluster_endpoints;
        let uses_local_chain = !local_empty && ps.uses_local_endpoints;
        let (internal, has_internal) = if ps.internal_policy_local {
            (List::Local, has_endpoints && !local_empty)
        } else {
            (List::Cluster, has_endpoints)
        };
        let (external, has_external) = if ps.external_policy_local {
            (List::Local, has_endpoints && !local_empty)
        } else {
            (List::Cluster, has_endpoints)
        };
        PortFacts {
            sp,
            ps,
            eps,
            node,
            local,
            has_endpoints,
            has_internal,
            internal,
            has_external,
            external,
            uses_cluster_chain,
            uses_local_chain,
            uses_ext_chain: has_endpoints && ps.externally_accessible,
            uses_fw_chain_ipt: has_endpoints && ps.fw,
            uses_fw_chain_nft: ps.fw,
        }
    }
    fn uses(&self, list: List) -> bool {
        match list {
            List::Cluster => self.uses_cluster_chain,
            List::Local => self.uses_local_chain,
        }
    }
    /// The endpoints of a list, by model-wide endpoint number, in the port's order.
    fn endpoints(&self, list: List) -> impl Iterator<Item = u32> + use<'a> {
        let eps = self.eps;
        let (node, local) = (self.node, self.local);
        (self.ps.first..self.ps.first + self.ps.len).filter(move |&k| {
            let e = &eps[k as usize];
            match list {
                List::Cluster => e.flags & EP_IN_CLUSTER != 0,
                List::Local => {
                    e.node == node
                        && match local {
                            LocalPick::None => false,
                            LocalPick::Ready => e.flags & EP_READY != 0,
                            LocalPick::ServingTerminating => e.flags & EP_SERVING_TERMINATING != 0,
                        }
                }
            }
        })
    }
}

/// What the generic walk of a query needs to know about its ingress node, worked out once
/// per query ([`Eval::plain_ingress`]).
struct PlainIngress {
    node: u32,
    /// The node's address of the family (it has one: else it is not plain).
    ip: IpAddr,
    bits: u128,
    /// The node has more than one address of the family: compare with all.
    more_ips: bool,
    /// A packet may leave the node (it was sent by the node, or forwarding is on).
    may_leave: bool,
    /// POSTROUTING keeps the source: the node sent it, or it is one of its addresses.
    keeps_src: bool,
    /// The node's address is not the sender's (so a source rewritten to it is another).
    ip_is_not_src: bool,
    src_mask: u64,
    /// The egress agent's last decision, by destination mask (the source is the query's).
    memo: std::cell::Cell<Option<(u64, bool)>>,
}

impl Eval<'_> {
    fn run(&self, reached: &mut impl FnMut(IpAddr, u16)) -> Verdict {
        let q = self.q;
        let r = &self.r;
        let (ingress, origin) = match q.start {
            // An outside host's packet to its own address is delivered on that host (as the
            // detailed trace says); an unscheduled pod has no address to send from.
            Start::Nowhere if q.dst == q.src => {
                reached(q.dst, q.port);
                return Verdict::to_itself();
            }
            Start::Nowhere => return Verdict::blocked(Outcome::Dropped),
            Start::At(n, o) => (n, o),
        };
        // A pod's packet to its own address stays in the pod (as the detailed trace says).
        if origin == Origin::LocalPod && q.dst == q.src {
            reached(q.dst, q.port);
            return Verdict::to_itself();
        }
        let fi = r.fi;
        let mut single = Some((q.dst, q.port));
        let mut dnat: Option<(u32, List)> = None;
        let mut dnat_facts: Option<PortFacts<'_>> = None;
        let mut kube_masq = false;
        let mut hairpin = false;
        let (mut ingress, mut origin) = (ingress, origin);
        // At most twice: a node's packet to another node's address meets kube-proxy again
        // on that node (as the detailed trace's walk says).
        let mut rounds = 2;
        loop {
            rounds -= 1;
            let proxy = ingress.and_then(|n| {
                let ing = &r.f.ingress[n as usize];
                Some((n, ing, ing.proxy.as_ref()?, r.f.model.as_deref()?))
            });
            if let Some((n, ing, pn, model)) = proxy {
                let node_ips = if ing.more_ips {
                    &r.ix.nodes[n as usize].ips[fi][..]
                } else {
                    ing.ip.as_slice()
                };
                let p = Pkt {
                    src: q.src,
                    src_bits: ip_bits(q.src),
                    dst: q.dst,
                    proto: q.proto,
                    dport: q.port,
                    node_ips,
                    src_is_local: q.src.is_loopback() || node_ips.contains(&q.src),
                    from_local_pod: origin == Origin::LocalPod,
                };
                let proxy = Proxy::new(model, r.f, pn, n, ing.ip, &p);
                let (out, facts) = if r.ix.nftables {
                    proxy.nftables()
                } else {
                    proxy.iptables()
                };
                dnat_facts = facts;
                kube_masq = out.masq;
                hairpin = out.hairpin;
                if let Some(reject) = out.block {
                    return Verdict::blocked(if reject {
                        Outcome::Rejected
                    } else {
                        Outcome::Dropped
                    });
                }
                if out.accept {
                    reached(q.dst, q.port);
                    return Verdict {
                        outcome: Outcome::Delivered,
                        paths: 0,
                        delivered: 1,
                        masqueraded: false,
                    };
                }
                if out.dnat.is_some() {
                    dnat = out.dnat;
                    single = None;
                } else if q.to_service {
                    return Verdict::blocked(Outcome::Dropped);
                }
            } else if q.to_service {
                return Verdict::blocked(Outcome::Dropped);
            }
            if dnat.is_none()
                && rounds > 0
                && origin == Origin::Host
                && let Some(&other) = r.ix.node_by_ip.get(&q.dst)
                && ingress != Some(other)
            {
                ingress = Some(other);
                origin = Origin::Wire;
                kube_masq = false;
                hairpin = false;
                dnat_facts = None;
                continue;
            }
            break;
        }
        let mut v = Verdict {
            outcome: Outcome::Dropped,
            paths: 0,
            delivered: 0,
            masqueraded: false,
        };
        match (single, dnat) {
            (Some((ip, port)), _) => {
                v.paths += 1;
                let info = r.ix.dst_info(fi, ip);
                let seen =
                    ingress.and_then(|n| r.walk(n, origin, q.src, kube_masq, false, 8, ip, &info));
                if let Some(seen) = seen {
                    v.delivered += 1;
                    v.masqueraded |= seen != q.src;
                    reached(ip, port);
                }
            }
            (None, Some((_, list))) => {
                let facts = dnat_facts.expect("a DNAT has its port's facts");
                let plain = ingress.and_then(|n| self.plain_ingress(n, origin));
                let src_bits = ip_bits(q.src);
                for k in facts.endpoints(list) {
                    v.paths += 1;
                    let ep = &r.f.eps[k as usize];
                    // The hairpin mark masquerades the path back to the sender only.
                    let masq = kube_masq || (hairpin && ep.bits == src_bits);
                    let delivered = match &plain {
                        Some(g) if g.is_plain_for(ep, &r.ix.nodes[g.node as usize], fi) => {
                            self.forward_plain(g, k, ep, masq)
                        }
                        _ => ingress.and_then(|n| {
                            r.walk(
                                n,
                                origin,
                                q.src,
                                masq,
                                false,
                                8,
                                ep.ip(r.family),
                                &r.f.infos[k as usize],
                            )
                            .map(|seen| seen != q.src)
                        }),
                    };
                    if let Some(masqueraded) = delivered {
                        v.delivered += 1;
                        v.masqueraded |= masqueraded;
                        reached(ep.ip(r.family), ep.port);
                    }
                }
            }
            (None, None) => {}
        }
        if v.delivered > 0 {
            v.outcome = Outcome::Delivered;
        }
        v
    }

    /// The ingress node's facts for [`Eval::forward_plain`], when it can take generic routes.
    fn plain_ingress(&self, n: u32, origin: Origin) -> Option<PlainIngress> {
        let r = &self.r;
        if !r.ix.generic_routes {
            return None;
        }
        let ing = &r.f.ingress[n as usize];
        let ip = ing.ip?;
        let src = self.q.src;
        let has_src = if ing.more_ips {
            r.ix.nodes[n as usize].has_ip(r.fi, src)
        } else {
            ip == src
        };
        Some(PlainIngress {
            node: n,
            ip,
            bits: ip_bits(ip),
            more_ips: ing.more_ips,
            may_leave: origin == Origin::Host || ing.forwarding,
            keeps_src: origin == Origin::Host || has_src,
            ip_is_not_src: ip != src,
            src_mask: r.f.masq.src_mask(src),
            memo: std::cell::Cell::new(None),
        })
    }

    /// [`Router::walk`] from a plain ingress node, whose route to the endpoint is its
    /// [`Ep::next`] (computed once for every such node): leave (if forwarding allows it),
    /// POSTROUTING, and what happens at the next node ([`Ep::tail`]). `Some` when
    /// delivered, with whether the destination sees a source other than the sender's.
    fn forward_plain(&self, g: &PlainIngress, k: u32, ep: &Ep, kube_masq: bool) -> Option<bool> {
        let r = &self.r;
        let q = self.q;
        if !g.may_leave {
            return None;
        }
        // POSTROUTING on the ingress node (the walk's `postrouting` with nothing SNATed yet):
        // the source becomes the node's address, or stays.
        let snat = kube_masq || (!g.keeps_src && self.agent_masquerades(g, ep));
        match ep.tail {
            Tail::Deliver => Some(snat && g.ip_is_not_src),
            Tail::Drop => None,
            Tail::Walk => r
                .walk(
                    ep.next,
                    Origin::Wire,
                    if snat { g.ip } else { q.src },
                    false,
                    snat,
                    7,
                    ep.ip(r.family),
                    &r.f.infos[k as usize],
                )
                .map(|seen| seen != q.src),
        }
    }

    /// Whether the egress agent masquerades the query's source to endpoint `k`: by masks,
    /// remembering the last decision (the source is the same for every endpoint, and
    /// destinations of one mask get the same decision).
    fn agent_masquerades(&self, g: &PlainIngress, ep: &Ep) -> bool {
        let masq = &self.r.f.masq;
        let Some(m) = &masq.masks else {
            return masq.masquerades_by_walk(self.q.src, ep.ip(self.r.family));
        };
        if let Some((mask, d)) = g.memo.get()
            && mask == ep.masq_dst
        {
            return d;
        }
        let d = m.masquerades(g.src_mask, ep.masq_dst);
        g.memo.set(Some((ep.masq_dst, d)));
        d
    }
}

impl PlainIngress {
    /// Whether the generic route to `ep` holds on this node (see [`GENERIC`]).
    #[inline]
    fn is_plain_for(&self, ep: &Ep, node: &FastNode, fi: usize) -> bool {
        ep.next != NO_NODE
            && ep.next != self.node
            && ep.avoid[0] != self.node
            && ep.avoid[1] != self.node
            && if self.more_ips {
                !node.ips[fi].iter().any(|ip| ip_bits(*ip) == ep.bits)
            } else {
                ep.bits != self.bits
            }
    }
}

impl<'a> Router<'a> {
    fn new(dp: &'a Dataplane, ix: &'a FastIndex, family: Family) -> Self {
        let fi = fam_index(family);
        Router {
            dp,
            ix,
            f: &ix.families[fi],
            fi,
            family,
        }
    }

    /// The walk of one possible destination from `node` (the detailed trace's `forward`,
    /// from its loop's state): the source the destination sees when it is delivered, `None`
    /// when it is not. `hops` bounds the loop.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        node: u32,
        origin: Origin,
        src: IpAddr,
        masq_pending: bool,
        snat: bool,
        hops: usize,
        dst: IpAddr,
        info: &DstInfo,
    ) -> Option<IpAddr> {
        let fi = self.fi;
        let (mut node, mut origin, mut src, mut masq_pending, mut snat) =
            (node, origin, src, masq_pending, snat);
        for _ in 0..hops {
            let hop = self.route(node, dst, info)?;
            let leaves_host = hop != Hop::Local;
            if leaves_host && origin != Origin::Host && !self.ix.nodes[node as usize].forwarding[fi]
            {
                return None;
            }
            match hop {
                Hop::Local => return Some(src),
                Hop::Blackhole => return None,
                Hop::Pod => {
                    if info.pod != Some(node) {
                        return None;
                    }
                    if masq_pending {
                        src = self
                            .dp
                            .fabric
                            .pod_side_masq_source(
                                self.ix.nodes[node as usize].pod_cidr[fi],
                                self.node_ip(node),
                            )
                            .unwrap_or(src);
                    }
                    return Some(src);
                }
                Hop::Node(next) => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    node = next;
                    origin = Origin::Wire;
                }
                Hop::Connected if info.node.is_some() => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    node = info.node.expect("checked");
                    origin = Origin::Wire;
                }
                Hop::Gateway | Hop::Connected => {
                    src = self.postrouting(node, src, dst, &mut masq_pending, &mut snat, origin);
                    // At the router.
                    if let Some(n) = info.node {
                        node = n;
                        origin = Origin::Wire;
                        continue;
                    }
                    if let Some(n) = self.router_route(dst) {
                        node = n;
                        origin = Origin::Wire;
                        continue;
                    }
                    if self.is_cluster_address(dst, info) {
                        return None;
                    }
                    let in_underlay = self.f.underlay.is_some_and(|net| net.contains(src));
                    if !in_underlay {
                        let back = self.router_route(src).is_some();
                        if globally_routable(src).is_err() || !back {
                            return None;
                        }
                    }
                    return Some(src);
                }
            }
        }
        None
    }

    /// The generic route to `dst` (see [`GENERIC`]), when it sends the packet over the wire
    /// to a node: that node, and what happens there to a packet arriving from the wire
    /// (whatever its source: the source matters only if the packet leaves that node again).
    fn generic_first_hop(&self, dst: IpAddr, info: &DstInfo) -> (u32, Tail) {
        if !self.ix.generic_routes || info.complex {
            return (NO_NODE, Tail::Walk);
        }
        let next = match self.route(GENERIC, dst, info) {
            Some(Hop::Node(n)) => n,
            Some(Hop::Connected) => match info.node {
                Some(n) => n,
                None => return (NO_NODE, Tail::Walk),
            },
            _ => return (NO_NODE, Tail::Walk),
        };
        // The walk's first steps at `next` (origin: the wire, nothing pending).
        let tail = match self.route(next, dst, info) {
            None | Some(Hop::Blackhole) => Tail::Drop,
            Some(Hop::Local) => Tail::Deliver,
            Some(_) if !self.ix.nodes[next as usize].forwarding[self.fi] => Tail::Drop,
            Some(Hop::Pod) if info.pod == Some(next) => Tail::Deliver,
            Some(Hop::Pod) => Tail::Drop,
            Some(_) => Tail::Walk,
        };
        (next, tail)
    }

    fn node_ip(&self, node: u32) -> Option<IpAddr> {
        self.ix.nodes[node as usize].ip[self.fi]
    }

    /// nat POSTROUTING on `node` (the detailed trace's `postrouting`).
    fn postrouting(
        &self,
        node: u32,
        src: IpAddr,
        dst: IpAddr,
        masq_pending: &mut bool,
        snat: &mut bool,
        origin: Origin,
    ) -> IpAddr {
        let node_ip = self.node_ip(node).unwrap_or(src);
        if *masq_pending {
            *masq_pending = false;
            *snat = true;
            return node_ip;
        }
        let here = &self.ix.nodes[node as usize];
        if *snat || origin == Origin::Host || here.has_ip(self.fi, src) {
            return src;
        }
        if self.f.masq.masquerades(src, dst) {
            *snat = true;
            node_ip
        } else {
            src
        }
    }

    fn router_route(&self, ip: IpAddr) -> Option<u32> {
        // kubenet's cloud routes are searched in node order, not by prefix length.
        self.f
            .router_routes
            .matches(ip)
            .filter_map(|(_, nodes)| nodes.first().copied())
            .min()
    }

    fn is_cluster_address(&self, ip: IpAddr, info: &DstInfo) -> bool {
        self.ix.cluster_cidrs.iter().any(|c| c.contains(ip))
            || self.ix.service_cidrs.iter().any(|c| c.contains(ip))
            || info.pod.is_some()
    }

    /// The route `node`'s tables pick for `dst` ([`crate::routes::RouteTable::lookup`]):
    /// the local table first, then the longest prefix of the main table, the last of equal
    /// ones in dump order. `node` may be [`GENERIC`].
    fn route(&self, node: u32, dst: IpAddr, info: &DstInfo) -> Option<Hop> {
        let fi = self.fi;
        // `None`: the generic node, with an address of the family, no address or podCIDR of
        // interest, and no route of its own to `dst`.
        let n = self.ix.nodes.get(node as usize);
        let f = self.f;
        let cni = &self.dp.fabric.cni;
        // The local table: loopback, the node's addresses, kubenet's bridge address.
        let loopback = match dst {
            IpAddr::V4(v4) => v4.octets()[0] == 127,
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if loopback
            || n.is_some_and(|n| n.has_ip(fi, dst))
            || (matches!(cni, Cni::Kubenet)
                && n.and_then(|n| n.pod_cidr[fi])
                    .is_some_and(|c| knetsim_ipam::family::nth_addr(&c, 1) == dst))
        {
            return Some(Hop::Local);
        }
        // The main table: (prefix length, type rank, insertion sequence) → the largest wins.
        let mut best: Option<((u8, u8, u64), Hop)> = None;
        let mut offer = |key: (u8, u8, u64), hop: Hop| {
            if best.is_none_or(|(b, _)| key > b) {
                best = Some((key, hop));
            }
        };
        let bits = match self.family {
            Family::IPv4 => 32u8,
            Family::IPv6 => 128u8,
        };
        if let Some(net) = f.underlay
            && n.is_none_or(|n| n.ip[fi].is_some())
        {
            if net.contains(dst) {
                offer((net.len, 0, SEQ_UNDERLAY), Hop::Connected);
            }
            offer((0, 0, SEQ_DEFAULT), Hop::Gateway);
            if let Some(ll) = f.link_local
                && ll.contains(dst)
            {
                offer((64, 0, SEQ_LINK_LOCAL), Hop::Connected);
            }
        }
        if info.complex {
            self.offer_routes_slow(node, dst, bits, &mut offer);
        } else {
            if let Some((seq, on)) = info.pod_route
                && on == node
            {
                offer((bits, 0, seq), Hop::Pod);
            }
            if let Some((len, seq, owner)) = info.node_route {
                match cni {
                    Cni::HostLocal if owner != node => offer((len, 0, seq), Hop::Node(owner)),
                    Cni::Calico(_) if owner == node => offer((len, 1, seq), Hop::Blackhole),
                    Cni::Calico(_) if self.ix.nodes[owner as usize].ip[fi].is_some() => {
                        offer((len, 0, seq), Hop::Node(owner))
                    }
                    _ => {}
                }
            }
        }
        if let Cni::Kubenet = cni
            && let Some(c) = n.and_then(|n| n.pod_cidr[fi])
            && c.contains(&dst)
        {
            offer((c.prefix_len(), 0, SEQ_BRIDGE), Hop::Pod);
        }
        best.map(|(_, h)| h)
    }

    /// The pod and node routes for `dst` when there are several: every pod route on this
    /// node, and the longest prefix of the routes to other nodes (host-local) or of Calico's
    /// blocks.
    fn offer_routes_slow(
        &self,
        node: u32,
        dst: IpAddr,
        bits: u8,
        offer: &mut dyn FnMut((u8, u8, u64), Hop),
    ) {
        let fi = self.fi;
        let f = self.f;
        if f.programs_pods
            && let Some(routes) = f.pod_routes.get(&dst)
        {
            for &(seq, on) in routes {
                if on == node {
                    offer((bits, 0, seq), Hop::Pod);
                }
            }
        }
        let calico = matches!(self.dp.fabric.cni, Cni::Calico(_));
        for (len, entries) in f.node_routes.matches(dst) {
            let mut any = false;
            for &(seq, owner) in entries {
                if calico && owner == node {
                    // This node's blocks are blackholed.
                    offer((len, 1, seq), Hop::Blackhole);
                    any = true;
                } else if owner != node
                    && (!calico || self.ix.nodes[owner as usize].ip[fi].is_some())
                {
                    // Other nodes' podCIDRs, or blocks of nodes with an address of the
                    // family.
                    offer((len, 0, seq), Hop::Node(owner));
                    any = true;
                }
            }
            if any {
                break;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// kube-proxy, evaluated on the family model

struct Proxy<'a, 'p> {
    m: &'a FamilyModel,
    f: &'a FamIndex,
    n: &'a ProxyNode,
    /// The node's number and kube-proxy's `nodeIP`.
    node: u32,
    node_ip: Option<IpAddr>,
    p: &'p Pkt<'p>,
    out: ProxyOut,
    /// An address known not to be any service address (the DNATed endpoint's, when its
    /// [`EP_SERVICE_ADDR`] flag says so), and whether it is a cluster IP.
    plain_dst: Option<(IpAddr, bool)>,
    /// The facts of the service port asked for last (most packets concern one port).
    last: std::cell::Cell<Option<(u32, PortFacts<'a>)>>,
    /// The service entries of the address asked for last (the chains ask about the same
    /// destination several times).
    last_entries: std::cell::Cell<Option<(IpAddr, EntryList<'a>)>>,
}

impl<'a, 'p> Proxy<'a, 'p> {
    fn new(
        m: &'a FamilyModel,
        f: &'a FamIndex,
        n: &'a ProxyNode,
        node: u32,
        node_ip: Option<IpAddr>,
        p: &'p Pkt<'p>,
    ) -> Self {
        Proxy {
            m,
            f,
            n,
            node,
            node_ip,
            p,
            out: ProxyOut::default(),
            plain_dst: None,
            last: std::cell::Cell::new(None),
            last_entries: std::cell::Cell::new(None),
        }
    }

    fn facts(&self, i: u32) -> PortFacts<'a> {
        if let Some((j, pf)) = self.last.get()
            && j == i
        {
            return pf;
        }
        let f: &'a FamIndex = self.f;
        let pf = PortFacts::new(
            &self.m.ports[i as usize],
            &f.ports[i as usize],
            &f.eps,
            self.node,
        );
        self.last.set(Some((i, pf)));
        pf
    }

    fn entries(&self, dst: IpAddr) -> &'a [(u32, Role)] {
        if let Some((ip, e)) = self.last_entries.get()
            && ip == dst
        {
            return e;
        }
        if self.plain_dst.is_some_and(|(ip, _)| ip == dst) {
            return &[];
        }
        let f: &'a FamIndex = self.f;
        let e = f
            .services
            .get(&(dst, self.p.proto, self.p.dport))
            .map_or(&[][..], Entries::as_slice);
        self.last_entries.set(Some((dst, e)));
        e
    }

    /// The local detector's "from a pod" match (`if_local`), or `None` without a detector.
    fn sent_by_pod(&self) -> Option<bool> {
        match self.n.detector {
            Detector::NoOp => None,
            Detector::Cidr(c) => Some(c.contains(self.p.src)),
            Detector::Interface => Some(self.p.from_local_pod),
        }
    }

    /// The masquerade rule of the internal chain (cluster-IP traffic not from a pod, or
    /// all of it with `--masquerade-all`).
    fn internal_masq(&mut self, pf: &PortFacts<'_>, list: List, dst: IpAddr) {
        let ps = pf.ps;
        if pf.internal != list || !pf.has_internal {
            return;
        }
        if dst != ps.cluster_ip || self.p.proto != ps.proto || self.p.dport != ps.port {
            return;
        }
        if self.n.masquerade_all || self.sent_by_pod() == Some(false) {
            self.out.masq = true;
        }
    }

    /// The endpoint part of a service chain: every endpoint is a possible choice, and the
    /// hairpin rule of each marks the packet when it comes from that endpoint.
    fn endpoints(&mut self, i: u32, pf: &PortFacts<'_>, list: List) -> bool {
        if !pf.uses(list) {
            return false;
        }
        let src = self.p.src_bits;
        if pf
            .endpoints(list)
            .any(|k| self.f.eps[k as usize].bits == src)
        {
            self.out.hairpin = true;
        }
        self.out.dnat = Some((i, list));
        true
    }

    /// The address of the first endpoint the packet may be DNATed to (the filter chains see
    /// that one), remembering whether it is a service address or a cluster IP.
    fn first_dnat_ip(&mut self) -> Option<IpAddr> {
        let (i, list) = self.out.dnat?;
        let pf = self.facts(i);
        let k = pf.endpoints(list).next()?;
        let ep = &self.f.eps[k as usize];
        let ip = ep.ip(self.m.family);
        if ep.flags & EP_SERVICE_ADDR == 0 {
            self.plain_dst = Some((ip, ep.flags & EP_CLUSTER_IP != 0));
        }
        Some(ip)
    }

    /// nftables' `cluster-ips` set has `dst`.
    fn is_cluster_ip(&self, dst: IpAddr) -> bool {
        match self.plain_dst {
            Some((ip, cluster_ip)) if ip == dst => cluster_ip,
            _ => self.f.cluster_ips.contains(&dst),
        }
    }

    fn nodeport_rule_matches(&self, dst: IpAddr, nft: bool) -> bool {
        let v6 = Family::of_ip(&dst) == Family::IPv6;
        let ctx = self.n;
        let in_v4_loopback = matches!(dst, IpAddr::V4(v4) if v4.octets()[0] == 127);
        let is_v6_loopback = matches!(dst, IpAddr::V6(v6) if v6.is_loopback());
        if ctx.nodeport_match_all {
            if nft {
                // fib daddr type local (the node's addresses) and not loopback.
                self.p.node_ips.contains(&dst) && !in_v4_loopback && !is_v6_loopback
            } else {
                self.p.is_local_addr(dst)
                    && !(v6 && is_v6_loopback)
                    && !(!v6 && !ctx.localhost_nodeports && in_v4_loopback)
            }
        } else if nft {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !ip.is_loopback() && *ip == dst)
        } else {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !(ip.is_loopback() && (v6 || !ctx.localhost_nodeports)) && *ip == dst)
        }
    }

    // --- iptables -------------------------------------------------------------------------

    /// The facts of the port the packet was DNATed to.
    fn finish(self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let facts = self.out.dnat.map(|(i, _)| self.facts(i));
        (self.out, facts)
    }

    fn iptables(mut self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let dst = self.p.dst;
        // nat PREROUTING → KUBE-SERVICES.
        let mut done = false;
        for &(i, role) in self.entries(dst) {
            let pf = self.facts(i);
            let terminated = match role {
                Role::Cluster => pf.has_internal && self.ipt_svc(i, &pf, pf.internal, dst),
                Role::External => pf.has_endpoints && self.ipt_ext(i, &pf, dst),
                Role::LoadBalancer => {
                    pf.has_endpoints
                        && if pf.uses_fw_chain_ipt {
                            self.ipt_fw(i, &pf, dst)
                        } else {
                            self.ipt_ext(i, &pf, dst)
                        }
                }
            };
            if terminated {
                done = true;
                break;
            }
        }
        if !done && self.nodeport_rule_matches(dst, false) {
            // KUBE-NODEPORTS (nat).
            if let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport)) {
                for &i in ports {
                    let pf = self.facts(i);
                    if pf.has_endpoints && self.ipt_ext(i, &pf, dst) {
                        break;
                    }
                }
            }
        }
        // The filter chains, with the destination rewritten to the first DNAT output.
        let dst = self.first_dnat_ip().unwrap_or(dst);
        let mut blocks: [Option<bool>; 3] = [None; 3];
        // KUBE-SERVICES (filter): cluster IPs whose traffic has nowhere to go.
        for &(i, role) in self.entries(dst) {
            if role != Role::Cluster {
                continue;
            }
            let pf = self.facts(i);
            if !pf.has_internal {
                blocks[0] = Some(!pf.has_endpoints);
                break;
            }
        }
        // KUBE-EXTERNAL-SERVICES: external and load-balancer IPs, NodePorts, in rule order.
        let mut first: Option<((u32, u8), bool)> = None;
        for &(i, role) in self.entries(dst) {
            let rank = match role {
                Role::Cluster => continue,
                Role::External => 0,
                Role::LoadBalancer => 1,
            };
            let pf = self.facts(i);
            if !pf.has_external {
                first = Some(((i, rank), !pf.has_endpoints));
                break;
            }
        }
        if self.p.is_local_addr(dst)
            && let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport))
        {
            for &i in ports {
                let pf = self.facts(i);
                if !pf.has_external {
                    if first.is_none_or(|(k, _)| (i, 2) < k) {
                        first = Some(((i, 2), !pf.has_endpoints));
                    }
                    break;
                }
            }
        }
        blocks[1] = first.map(|(_, reject)| reject);
        // KUBE-NODEPORTS (filter): health check NodePorts are accepted.
        self.out.accept =
            self.p.proto == Proto::Tcp && self.f.health_check_ports.contains(&self.p.dport);
        // KUBE-PROXY-FIREWALL: load-balancer IPs with source ranges.
        for &(i, role) in self.entries(dst) {
            if role == Role::LoadBalancer && self.facts(i).uses_fw_chain_ipt {
                blocks[2] = Some(false);
                break;
            }
        }
        self.out.block = blocks.into_iter().flatten().next();
        self.finish()
    }

    /// `KUBE-SVC-` / `KUBE-SVL-`.
    fn ipt_svc(&mut self, i: u32, pf: &PortFacts<'_>, list: List, dst: IpAddr) -> bool {
        self.internal_masq(pf, list, dst);
        self.endpoints(i, pf, list)
    }

    /// `KUBE-EXT-`.
    fn ipt_ext(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        if !pf.uses_ext_chain {
            return false;
        }
        if !pf.sp.external_policy_local {
            self.out.masq = true;
        } else {
            if self.sent_by_pod() == Some(true) && self.ipt_svc(i, pf, List::Cluster, dst) {
                return true;
            }
            if self.p.src_is_local {
                self.out.masq = true;
                if self.ipt_svc(i, pf, List::Cluster, dst) {
                    return true;
                }
            }
        }
        pf.has_external && self.ipt_svc(i, pf, pf.external, dst)
    }

    /// `KUBE-FW-`.
    fn ipt_fw(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        let src = self.p.src;
        for cidr in &pf.sp.lb_source_ranges {
            if cidr.contains(&src) && self.ipt_ext(i, pf, dst) {
                return true;
            }
        }
        let allow_from_node = self
            .node_ip
            .is_some_and(|ip| pf.sp.lb_source_ranges.iter().any(|c| c.contains(&ip)));
        if allow_from_node {
            for &lb in &pf.sp.lb_vips {
                if lb == src && self.ipt_ext(i, pf, dst) {
                    return true;
                }
            }
        }
        false
    }

    // --- nftables -------------------------------------------------------------------------

    fn nftables(mut self) -> (ProxyOut, Option<PortFacts<'a>>) {
        let dst = self.p.dst;
        // The pre-DNAT filter chain: firewall-check.
        if let Some(&(i, _)) = self
            .entries(dst)
            .iter()
            .find(|&&(i, role)| role == Role::LoadBalancer && self.facts(i).uses_fw_chain_nft)
        {
            let pf = self.facts(i);
            let mut allowed = pf
                .sp
                .lb_source_ranges
                .iter()
                .any(|c| c.contains(&self.p.src));
            let allow_from_node = self
                .node_ip
                .is_some_and(|ip| pf.sp.lb_source_ranges.iter().any(|c| c.contains(&ip)));
            if allow_from_node {
                allowed |= pf.sp.lb_vips.contains(&self.p.src);
            }
            if !allowed {
                self.out.block = Some(false);
                return self.finish();
            }
        }
        // nat-prerouting → services: the service-ips map, else the NodePort map.
        let element = self.entries(dst).iter().find_map(|&(i, role)| {
            let pf = self.facts(i);
            let present = match role {
                Role::Cluster => pf.has_internal,
                Role::External | Role::LoadBalancer => pf.has_endpoints,
            };
            present.then_some((i, role))
        });
        match element {
            Some((i, role)) => {
                let pf = self.facts(i);
                match role {
                    Role::Cluster => {
                        self.nft_svc(i, &pf, pf.internal, dst);
                    }
                    _ => {
                        self.nft_ext(i, &pf, dst);
                    }
                }
            }
            None => {
                if self.nodeport_rule_matches(dst, true)
                    && let Some(&i) = self
                        .f
                        .nodeports
                        .get(&(self.p.proto, self.p.dport))
                        .and_then(|ports| ports.iter().find(|&&i| self.facts(i).has_endpoints))
                {
                    let pf = self.facts(i);
                    self.nft_ext(i, &pf, dst);
                }
            }
        }
        // filter-forward with the destination rewritten to the first DNAT output:
        // service-endpoints-check, then cluster-ips-check.
        let dst = self.first_dnat_ip().unwrap_or(dst);
        if let Some(reject) = self.no_endpoint_service(dst) {
            self.out.block = Some(reject);
            return self.finish();
        }
        let v = self.f.version;
        if v.at_least(30) {
            if self.is_cluster_ip(dst) {
                self.out.block = Some(true);
                return self.finish();
            }
            if v.at_least(33) && self.f.service_cidrs.iter().any(|c| c.contains(dst)) {
                self.out.block = Some(false);
                return self.finish();
            }
        }
        // filter-input: nodeport-endpoints-check.
        let matches = if self.n.nodeport_match_all {
            !matches!(dst, IpAddr::V4(v4) if v4.octets()[0] == 127)
                && !matches!(dst, IpAddr::V6(v6) if v6.is_loopback())
        } else {
            self.n
                .nodeport_ips
                .iter()
                .any(|ip| !ip.is_loopback() && *ip == dst)
        };
        if matches && let Some(ports) = self.f.nodeports.get(&(self.p.proto, self.p.dport)) {
            for &i in ports {
                let pf = self.facts(i);
                if !pf.has_external {
                    self.out.block = Some(!pf.has_endpoints);
                    break;
                }
            }
        }
        self.finish()
    }

    /// The first element of `no-endpoint-services` for `dst`: reject (true) or drop (false).
    fn no_endpoint_service(&self, dst: IpAddr) -> Option<bool> {
        self.entries(dst).iter().find_map(|&(i, role)| {
            let pf = self.facts(i);
            let present = match role {
                Role::Cluster => !pf.has_internal,
                Role::External | Role::LoadBalancer => !pf.has_external,
            };
            present.then_some(!pf.has_endpoints)
        })
    }

    /// `service-` / `local-`.
    fn nft_svc(&mut self, i: u32, pf: &PortFacts<'_>, list: List, dst: IpAddr) -> bool {
        self.internal_masq(pf, list, dst);
        self.endpoints(i, pf, list)
    }

    /// `external-`.
    fn nft_ext(&mut self, i: u32, pf: &PortFacts<'_>, dst: IpAddr) -> bool {
        if !pf.uses_ext_chain {
            return false;
        }
        if !pf.sp.external_policy_local {
            self.out.masq = true;
        } else {
            if self.sent_by_pod() == Some(true) {
                return self.nft_svc(i, pf, List::Cluster, dst);
            }
            // fib saddr type local: the node's own addresses only.
            if self.p.node_ips.contains(&self.p.src) {
                self.out.masq = true;
                return self.nft_svc(i, pf, List::Cluster, dst);
            }
        }
        pf.has_external && self.nft_svc(i, pf, pf.external, dst)
    }
}

/// What kube-proxy does to a packet, in the terms the walk uses: the first DROP or REJECT,
/// whether something ACCEPTs it, the DNAT destinations in order, and the masquerade mark.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxySummary {
    pub block: Option<&'static str>,
    pub accept: bool,
    pub dnat: Vec<String>,
    pub masq: bool,
}

#[cfg(test)]
impl ProxySummary {
    /// The summary of a rule tracer's result.
    pub(crate) fn of_trace(r: &crate::proxy::iptables::TraceResult) -> ProxySummary {
        ProxySummary {
            block: r.outputs.iter().find_map(|o| match o.as_str() {
                "DROP" => Some("DROP"),
                "REJECT" => Some("REJECT"),
                _ => None,
            }),
            accept: r.outputs.iter().any(|o| o == "ACCEPT"),
            dnat: r
                .outputs
                .iter()
                .filter(|o| crate::proxy::split_host_port(o).is_some())
                .cloned()
                .collect(),
            masq: r.masq,
        }
    }

    /// The fast path's evaluation of the same packet at `node` (`None` when kube-proxy
    /// programs nothing there).
    pub(crate) fn of_fast(
        dp: &Dataplane,
        node: &str,
        p: &crate::proxy::PacketCtx,
    ) -> Option<ProxySummary> {
        let ix = dp.fast_index();
        let family = Family::of_ip(&p.dst);
        let f = &ix.families[fam_index(family)];
        let n = *ix.node_index.get(node)?;
        let ing = &f.ingress[n as usize];
        let pn = ing.proxy.as_ref()?;
        let model = f.model.as_deref()?;
        let pkt = Pkt {
            src: p.src,
            src_bits: ip_bits(p.src),
            dst: p.dst,
            proto: p.proto,
            dport: p.dport,
            node_ips: &p.node_ips,
            src_is_local: p.src_is_local,
            from_local_pod: p.from_local_pod,
        };
        let proxy = Proxy::new(model, f, pn, n, ing.ip, &pkt);
        let (out, _) = if ix.nftables {
            proxy.nftables()
        } else {
            proxy.iptables()
        };
        let dnat = match out.dnat {
            Some((i, list)) => {
                let sp = &model.ports[i as usize];
                PortFacts::new(sp, &f.ports[i as usize], &f.eps, n)
                    .endpoints(list)
                    .map(|k| sp.endpoint_addr(k - sp.first_endpoint).to_string())
                    .collect()
            }
            None => Vec::new(),
        };
        Some(ProxySummary {
            block: out
                .block
                .map(|reject| if reject { "REJECT" } else { "DROP" }),
            accept: out.accept,
            dnat,
            // The tracers keep one flag for every mark.
            masq: out.masq || out.hairpin,
        })
    }
}

/// Checks of the shortcuts the fast path takes, on one dataplane (for the tests): each
/// returns what it compared, by kind, and the differences found.
#[cfg(test)]
pub(crate) mod checks {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use super::*;

    pub(crate) type Tally = BTreeMap<String, usize>;

    /// For every endpoint and every node for which [`PlainIngress::is_plain_for`] holds, the
    /// node's route is the generic one; and each endpoint's next node and tail, by kind.
    pub(crate) fn generic_routes(dp: &Dataplane, tally: &mut Tally) -> Vec<String> {
        let ix = dp.fast_index();
        let mut failures = Vec::new();
        for family in [Family::IPv4, Family::IPv6] {
            let r = Router::new(dp, ix, family);
            for (k, ep) in r.f.eps.iter().enumerate() {
                let info = &r.f.infos[k];
                let ip = ep.ip(family);
                let kind = match (ep.next, ep.tail) {
                    (NO_NODE, _) => "no generic route",
                    (_, Tail::Deliver) => "tail deliver",
                    (_, Tail::Drop) => "tail drop",
                    (_, Tail::Walk) => "tail walk",
                };
                *tally.entry(kind.to_string()).or_default() += 1;
                if ep.next == NO_NODE {
                    continue;
                }
                let generic = r.route(GENERIC, ip, info);
                for n in 0..ix.nodes.len() as u32 {
                    let Some(g) = Eval {
                        r: Router::new(dp, ix, family),
                        q: &CompiledQuery {
                            family,
                            proto: Proto::Tcp,
                            port: 80,
                            src: ip,
                            dst: ip,
                            to_service: false,
                            start: Start::Nowhere,
                        },
                    }
                    .plain_ingress(n, Origin::LocalPod) else {
                        continue;
                    };
                    if !g.is_plain_for(ep, &ix.nodes[n as usize], r.fi) {
                        *tally.entry("special node".to_string()).or_default() += 1;
                        continue;
                    }
                    *tally.entry("plain node".to_string()).or_default() += 1;
                    let here = r.route(n, ip, info);
                    if here != generic {
                        failures.push(format!(
                            "{family} {ip} on node #{n}: route {here:?}, generic {generic:?}"
                        ));
                    }
                }
            }
        }
        failures
    }

    /// Per port and node, the lists [`PortFacts`] iterates and its `has_endpoints` equal
    /// `categorize`'s.
    pub(crate) fn categorization(dp: &Dataplane, tally: &mut Tally) -> Vec<String> {
        let ix = dp.fast_index();
        let mut failures = Vec::new();
        for f in &ix.families {
            let Some(m) = f.model.as_deref() else {
                continue;
            };
            for (i, sp) in m.ports.iter().enumerate() {
                for (name, &n) in &ix.node_index {
                    let want = categorize(sp, m.node_id(name));
                    let got = PortFacts::new(sp, &f.ports[i], &f.eps, n);
                    // `categorize` numbers endpoints within the port, `PortFacts` across the
                    // model.
                    let first = sp.first_endpoint;
                    let pairs: [(&str, Vec<u32>, Vec<u32>); 2] = [
                        (
                            "cluster",
                            want.cluster().map(|(j, _)| j + first).collect(),
                            got.endpoints(List::Cluster).collect(),
                        ),
                        (
                            "local",
                            want.local().map(|(j, _)| j + first).collect(),
                            got.endpoints(List::Local).collect(),
                        ),
                    ];
                    for (list, want_list, got_list) in pairs {
                        let key = format!(
                            "{list} list {}",
                            if want_list.is_empty() {
                                "empty"
                            } else {
                                "not empty"
                            }
                        );
                        *tally.entry(key).or_default() += 1;
                        if want_list != got_list {
                            failures.push(format!(
                                "{} on {name}: {list} list {want_list:?}, fast {got_list:?}",
                                sp.name
                            ));
                        }
                    }
                    if want.has_any != got.has_endpoints {
                        failures.push(format!(
                            "{} on {name}: has_any {}, fast {}",
                            sp.name, want.has_any, got.has_endpoints
                        ));
                    }
                }
            }
        }
        failures
    }

    /// The egress agent's decision by masks equals the walk of its rules, for every pair of
    /// `addrs` of one family.
    pub(crate) fn masquerade_masks(
        dp: &Dataplane,
        addrs: &[IpAddr],
        tally: &mut Tally,
    ) -> Vec<String> {
        let ix = dp.fast_index();
        let mut failures = Vec::new();
        for f in &ix.families {
            let Some(m) = &f.masq.masks else {
                *tally.entry("no masks".to_string()).or_default() += 1;
                continue;
            };
            let fam: Vec<IpAddr> = addrs
                .iter()
                .copied()
                .filter(|ip| Family::of_ip(ip) == f.family)
                .collect();
            for &src in &fam {
                for &dst in &fam {
                    let want = f.masq.masquerades_by_walk(src, dst);
                    let got = m.masquerades(f.masq.src_mask(src), f.masq.dst_mask(dst));
                    *tally.entry(format!("masquerade {want}")).or_default() += 1;
                    if want != got {
                        failures.push(format!("{src} -> {dst}: walk {want}, masks {got}"));
                    }
                }
            }
        }
        failures
    }
}
