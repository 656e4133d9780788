//! kube-proxy's view of Services and endpoints for one IP family: what its
//! `ServiceChangeTracker` and `EndpointsChangeTracker` hand to `syncProxyRules`.
//!
//! Built once per family for the whole cluster; the per-node parts (which endpoints are local,
//! which node addresses accept NodePorts) are decided later, per node, in [`super::NodeCtx`].
//! Chain names are hashed here, per mode and per chunk of service ports, on first use
//! ([`FamilyModel::ipt_port_hash`], [`FamilyModel::nft_endpoint_base`], …): generating rules
//! for another node costs no hashing, a cluster running one mode never hashes the other
//! mode's names, a trace hashes only the chunks it reads, and the task that renders a run of
//! ports names them just before it writes them.
//!
//! Nothing here is an allocation per endpoint, and few are per service port: the models of
//! both families are built together, a chunk of Services at a time, and a chunk's endpoints
//! and their `ip:port` texts ([`EndpointStore`]) and a chunk of ports' chain names are each
//! kept in one place that the chunk's ports share. Endpoints name their node by number
//! ([`NodeNames`]).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use knetsim_control::state::{ClusterState, EndpointSlice, NamespacedName, Service};
use knetsim_ipam::Family;

use crate::names;

/// A transport protocol kube-proxy programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        [Proto::Tcp, Proto::Udp, Proto::Sctp]
            .into_iter()
            .find(|p| s.eq_ignore_ascii_case(p.as_str()))
    }
    /// Lower case, as iptables and nftables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One endpoint of one service port, as `BaseEndpointInfo` holds it.
#[derive(Clone, Debug)]
pub struct EndpointInfo {
    pub ip: IpAddr,
    pub port: u16,
    /// The node the endpoint is on, as an index into the model's [`NodeNames`] (see
    /// [`FamilyModel::node_name`]).
    pub node: Option<u32>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Where this endpoint's `ip:port` text starts in its [`EndpointStore`]'s texts, its
    /// length, and the length of the address in it (which starts after the `[` of an IPv6
    /// address): rules quote the address alone as often as the whole, and finding it again
    /// each time was a search per rule.
    text: u32,
    text_len: u8,
    ip_len: u8,
}

/// The endpoints of the service ports of one chunk of Services (both families), and their
/// `ip:port` texts (written once: every rule set of every node and mode repeats them). The
/// ports share it, so that a model of 20,000 ports holds a hundred of these rather than
/// two allocations per port to make and to free.
#[derive(Debug, Default)]
pub struct EndpointStore {
    endpoints: Vec<EndpointInfo>,
    texts: String,
}

/// The endpoints of one service port: a range of an [`EndpointStore`], read as a slice.
#[derive(Clone, Debug)]
pub struct Endpoints {
    store: Arc<EndpointStore>,
    first: u32,
    len: u32,
}

impl std::ops::Deref for Endpoints {
    type Target = [EndpointInfo];
    fn deref(&self) -> &[EndpointInfo] {
        &self.store.endpoints[self.first as usize..(self.first + self.len) as usize]
    }
}

impl<'a> IntoIterator for &'a Endpoints {
    type Item = &'a EndpointInfo;
    type IntoIter = std::slice::Iter<'a, EndpointInfo>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Endpoints {
    /// `ip:port` (`[ip]:port` for IPv6) of endpoint `j`.
    fn addr(&self, j: u32) -> &str {
        let e = &self[j as usize];
        let start = e.text as usize;
        &self.store.texts[start..start + usize::from(e.text_len)]
    }
    /// The address of endpoint `j` as text.
    fn ip_text(&self, j: u32) -> &str {
        let e = &self[j as usize];
        let start = e.text as usize + usize::from(e.ip.is_ipv6());
        &self.store.texts[start..start + usize::from(e.ip_len)]
    }
}

impl EndpointInfo {
    /// `ip:port` (`[ip]:port` for IPv6), `BaseEndpointInfo.String()`.
    pub fn addr(&self) -> String {
        join_host_port(self.ip, self.port)
    }
}

/// One service port of one family, as `servicePortInfo` holds it.
#[derive(Clone, Debug)]
pub struct ServicePortInfo {
    /// `ServicePortName.String()`: `ns/name:port`, or `ns/name` when the port is unnamed. The
    /// Service's namespace and name and the port's name are read from it
    /// ([`ServicePortInfo::namespace`], …), not kept apart: a copy of each per port and
    /// family cost more to make and to drop than the rest of the port.
    pub name: Arc<str>,
    /// Where the Service's name starts in `name` (after `ns/`), and where it ends.
    service_at: (u32, u32),
    pub proto: Proto,
    pub cluster_ip: IpAddr,
    /// Where the cluster IP's text is in the [`EndpointStore`]'s texts, and its length: both
    /// modes write it in several rules and elements per port, on every render.
    cluster_ip_at: (u32, u8),
    pub port: u16,
    /// 0 when the port has no NodePort.
    pub node_port: u16,
    pub external_ips: Vec<IpAddr>,
    pub lb_vips: Vec<IpAddr>,
    pub lb_source_ranges: Vec<IpNet>,
    /// ClientIP affinity timeout, when `sessionAffinity: ClientIP`.
    pub affinity_seconds: Option<u32>,
    pub external_policy_local: bool,
    pub internal_policy_local: bool,
    pub health_check_node_port: u16,
    /// All endpoints (any readiness), sorted by `ip:port` text as `endpointsMapFromEndpointInfo`
    /// sorts them.
    pub endpoints: Endpoints,
    /// Where this port's endpoints start in the model-wide numbering of endpoints (which the
    /// per-mode name tables use).
    pub first_endpoint: u32,
}

impl ServicePortInfo {
    /// The Service's namespace.
    pub fn namespace(&self) -> &str {
        &self.name[..self.service_at.0 as usize - 1]
    }
    /// The Service's name.
    pub fn service_name(&self) -> &str {
        &self.name[self.service_at.0 as usize..self.service_at.1 as usize]
    }
    /// The port's name ("" when unnamed).
    pub fn port_name(&self) -> &str {
        let end = self.service_at.1 as usize;
        self.name.get(end + 1..).unwrap_or("")
    }
    /// Whether this is a port of Service `nn`.
    pub fn is_of(&self, nn: &NamespacedName) -> bool {
        self.namespace() == nn.namespace && self.service_name() == nn.name
    }
    /// `ip:port` (`[ip]:port` for IPv6) of endpoint `j`.
    pub fn endpoint_addr(&self, j: u32) -> &str {
        self.endpoints.addr(j)
    }
    /// The address of endpoint `j` as text.
    pub fn endpoint_ip_text(&self, j: u32) -> &str {
        self.endpoints.ip_text(j)
    }
    /// The cluster IP as text.
    pub fn cluster_ip_text(&self) -> &str {
        let (start, len) = self.cluster_ip_at;
        &self.endpoints.store.texts[start as usize..start as usize + usize::from(len)]
    }
    /// `ExternallyAccessible`: reachable via NodePort, an external IP or a load-balancer IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.lb_vips.is_empty() || !self.external_ips.is_empty()
    }
    /// `UsesClusterEndpoints`.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }
    /// `UsesLocalEndpoints`.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || (self.external_policy_local && self.externally_accessible())
    }
}

/// Every service port kube-proxy programs for one family, in `ServicePortName` order.
#[derive(Debug)]
pub struct FamilyModel {
    pub family: Family,
    pub ports: Vec<ServicePortInfo>,
    /// Sum of endpoints over all service ports (decides iptables "large cluster mode").
    pub total_endpoints: usize,
    /// The names of the nodes endpoints are on (shared with the other family's model).
    pub nodes: Arc<NodeNames>,
    /// `computeProbability(n)` for `n` from 1 to the largest endpoint count of any port, so
    /// that writing a rule set formats no floating-point numbers.
    probabilities: Vec<Box<str>>,
    /// iptables mode's names, per chunk of [`NAME_CHUNK`] ports, each made on first use.
    ipt: Box<[OnceLock<IptChunk>]>,
    /// nftables mode's names, per chunk of [`NAME_CHUNK`] ports, each made on first use.
    nft: Box<[OnceLock<NftChunk>]>,
}

/// One empty name table per chunk of [`NAME_CHUNK`] ports.
fn name_chunks<T>(ports: usize) -> Box<[OnceLock<T>]> {
    (0..ports.div_ceil(NAME_CHUNK))
        .map(|_| OnceLock::new())
        .collect()
}

impl Clone for FamilyModel {
    fn clone(&self) -> Self {
        FamilyModel {
            family: self.family,
            ports: self.ports.clone(),
            total_endpoints: self.total_endpoints,
            nodes: self.nodes.clone(),
            probabilities: self.probabilities.clone(),
            ipt: name_chunks(self.ports.len()),
            nft: name_chunks(self.ports.len()),
        }
    }
}

/// The length of the base32 hashes iptables chain names carry.
const IPT_HASH_LEN: usize = 16;

/// How many service ports are named at a time. The renderers write runs of as many ports
/// (`RUN` in [`super::iptables`] and [`super::nftables`]), so each run's task makes the
/// names of its own chunk, and uses them while they are in its cache.
pub(crate) const NAME_CHUNK: usize = 256;

/// The names of one chunk of service ports: `portProtoHash` per service port and the
/// `KUBE-SEP-` hash per endpoint, each 16 characters, one after another in one string per
/// kind (so that reading one is slicing, with no check and no pointer to follow).
#[derive(Debug)]
struct IptChunk {
    /// The model-wide number of the chunk's first endpoint.
    first_endpoint: u32,
    ports: String,
    endpoints: String,
}

fn nth_hash(s: &str, k: usize) -> &str {
    &s[k * IPT_HASH_LEN..(k + 1) * IPT_HASH_LEN]
}

fn push_hash(out: &mut String, h: &[u8; IPT_HASH_LEN]) {
    out.push_str(std::str::from_utf8(h).expect("base32 is ASCII"));
}

/// The chain name bases of one chunk of service ports and of their endpoints, all in one
/// string (`(start, end)` byte ranges into `text`).
#[derive(Debug)]
struct NftChunk {
    /// The model-wide number of the chunk's first endpoint.
    first_endpoint: u32,
    text: String,
    ports: Vec<(u32, u32)>,
    endpoints: Vec<(u32, u32)>,
}

impl FamilyModel {
    /// An empty model (no Services).
    pub fn empty(family: Family) -> FamilyModel {
        FamilyModel {
            family,
            ports: Vec::new(),
            total_endpoints: 0,
            nodes: Arc::default(),
            probabilities: Vec::new(),
            ipt: name_chunks(0),
            nft: name_chunks(0),
        }
    }

    /// kube-proxy's `computeProbability(n)` text: `1/n` with ten decimals.
    pub fn probability(&self, n: usize) -> std::borrow::Cow<'_, str> {
        match self.probabilities.get(n.wrapping_sub(1)) {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(names::probability(n)),
        }
    }

    /// The name of the node an endpoint is on.
    pub fn node_name(&self, e: &EndpointInfo) -> Option<&str> {
        e.node.map(|k| self.nodes.name(k))
    }

    /// The endpoint's node as its index among the cluster's nodes in name order (`None` when
    /// it names no cluster node): the cluster's nodes are numbered first, in that order.
    pub fn cluster_node(&self, e: &EndpointInfo) -> Option<u32> {
        e.node.filter(|&k| (k as usize) < self.nodes.sorted)
    }

    /// The index endpoints on node `name` carry ([`EndpointInfo::node`]): `None` only for a
    /// name that is neither a cluster node nor named by an endpoint.
    pub fn node_id(&self, name: &str) -> Option<u32> {
        self.nodes.id(name)
    }

    /// How many chunks of [`NAME_CHUNK`] ports the model has.
    pub fn chunks(&self) -> usize {
        self.ipt.len()
    }

    /// The indices of the ports of chunk `c` (named together, and rendered together by the
    /// modes' `render_node`).
    pub fn chunk_range(&self, c: usize) -> std::ops::Range<usize> {
        c * NAME_CHUNK..((c + 1) * NAME_CHUNK).min(self.ports.len())
    }

    /// How many endpoints the ports in `range` have.
    pub fn endpoints_in(&self, range: std::ops::Range<usize>) -> usize {
        self.ports[range].iter().map(|p| p.endpoints.len()).sum()
    }

    /// The ports of names chunk `c`.
    fn name_chunk(&self, c: usize) -> &[ServicePortInfo] {
        &self.ports[self.chunk_range(c)]
    }

    /// Makes every chunk's iptables names not made yet, in parallel: for a pass that reads
    /// them all on one thread (rules kept as data, rendered afterwards).
    pub fn name_all_ipt(&self) {
        use rayon::prelude::*;
        (0..self.chunks()).into_par_iter().for_each(|c| {
            self.ipt_chunk(c);
        });
    }

    /// [`FamilyModel::name_all_ipt`] for nftables mode's names.
    pub fn name_all_nft(&self) {
        use rayon::prelude::*;
        (0..self.chunks()).into_par_iter().for_each(|c| {
            self.nft_chunk(c);
        });
    }

    /// iptables mode's names of chunk `c`, computed on first use.
    fn ipt_chunk(&self, c: usize) -> &IptChunk {
        self.ipt[c].get_or_init(|| {
            let chunk = self.name_chunk(c);
            let n_eps = self.endpoints_in(self.chunk_range(c));
            let mut names = IptChunk {
                first_endpoint: chunk[0].first_endpoint,
                ports: String::with_capacity(chunk.len() * IPT_HASH_LEN),
                endpoints: String::with_capacity(n_eps * IPT_HASH_LEN),
            };
            for sp in chunk {
                let proto = sp.proto.as_str();
                for j in 0..sp.endpoints.len() as u32 {
                    let h = names::endpoint_hash(&sp.name, proto, sp.endpoint_addr(j));
                    push_hash(&mut names.endpoints, &h);
                }
                push_hash(&mut names.ports, &names::port_proto_hash16(&sp.name, proto));
            }
            names
        })
    }

    /// nftables mode's names of chunk `c`, computed on first use.
    fn nft_chunk(&self, c: usize) -> &NftChunk {
        self.nft[c].get_or_init(|| {
            let chunk = self.name_chunk(c);
            let n_eps = self.endpoints_in(self.chunk_range(c));
            let mut out = NftChunk {
                first_endpoint: chunk[0].first_endpoint,
                text: String::with_capacity(n_eps * 72 + chunk.len() * 48),
                ports: Vec::with_capacity(chunk.len()),
                endpoints: Vec::with_capacity(n_eps),
            };
            let mut scratch = String::new();
            let put = |text: &mut String, name: &str| {
                let start = text.len() as u32;
                names::push_hash_and_truncate(text, name);
                (start, text.len() as u32)
            };
            for sp in chunk {
                // The port's name (`ns/name/proto/port`) begins each of its endpoints'
                // names: written once, each endpoint's part after it.
                scratch.clear();
                names::push_nft_port_name(
                    &mut scratch,
                    sp.namespace(),
                    sp.service_name(),
                    sp.proto.as_str(),
                    sp.port_name(),
                );
                let port_name_len = scratch.len();
                for e in &sp.endpoints {
                    scratch.truncate(port_name_len);
                    names::push_nft_endpoint_part(&mut scratch, e.ip, e.port);
                    out.endpoints.push(put(&mut out.text, &scratch));
                }
                scratch.truncate(port_name_len);
                out.ports.push(put(&mut out.text, &scratch));
            }
            out
        })
    }

    /// The 16-character `portProtoHash` of service port `i`.
    pub fn ipt_port_hash(&self, i: u32) -> &str {
        let i = i as usize;
        nth_hash(&self.ipt_chunk(i / NAME_CHUNK).ports, i % NAME_CHUNK)
    }

    /// The 16-character hash of endpoint `j` of service port `i` (`KUBE-SEP-<hash>`).
    pub fn ipt_endpoint_hash(&self, i: u32, j: u32) -> &str {
        let c = self.ipt_chunk(i as usize / NAME_CHUNK);
        let k = self.ports[i as usize].first_endpoint - c.first_endpoint + j;
        nth_hash(&c.endpoints, k as usize)
    }

    /// The nftables chain base of service port `i` (`HASH-ns/name/proto/port`).
    pub fn nft_port_base(&self, i: u32) -> &str {
        let i = i as usize;
        let c = self.nft_chunk(i / NAME_CHUNK);
        let (a, b) = c.ports[i % NAME_CHUNK];
        &c.text[a as usize..b as usize]
    }

    /// The nftables chain base of endpoint `j` of service port `i`.
    pub fn nft_endpoint_base(&self, i: u32, j: u32) -> &str {
        let c = self.nft_chunk(i as usize / NAME_CHUNK);
        let k = self.ports[i as usize].first_endpoint - c.first_endpoint + j;
        let (a, b) = c.endpoints[k as usize];
        &c.text[a as usize..b as usize]
    }
}

/// `ip:port` as Go's `net.JoinHostPort` writes it.
pub fn join_host_port(ip: IpAddr, port: u16) -> String {
    let mut s = String::with_capacity(48);
    super::text::push_host_port(&mut s, ip, port);
    s
}

fn is_local_policy(v: &Option<String>) -> bool {
    v.as_deref() == Some("Local")
}

/// `apiservice.ExternalPolicyLocal`: only NodePort and LoadBalancer Services have an external
/// traffic policy.
fn external_policy_local(svc: &Service) -> bool {
    (svc.spec.type_ == "NodePort" || svc.spec.type_ == "LoadBalancer")
        && is_local_policy(&svc.spec.external_traffic_policy)
}

/// The names of the nodes a model's endpoints are on. Endpoints refer to their node by index
/// into this table: building a model then costs one read-only lookup per endpoint (no
/// reference count to touch, whose atomic update would also keep the processor from reading
/// ahead to the next endpoint), and categorizing endpoints compares numbers.
///
/// The cluster's nodes come first, in name order; names of nodes the cluster does not have
/// (which endpoints may still name) follow.
#[derive(Debug, Default)]
pub struct NodeNames {
    /// Every name, one after another.
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
    /// How many names at the start are the cluster's nodes (in name order).
    sorted: usize,
}

impl NodeNames {
    /// The name of node `k`.
    pub fn name(&self, k: u32) -> &str {
        let k = k as usize;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// The index of node `name`: every cluster node has one; another name has one only if an
    /// endpoint names it.
    pub fn id(&self, name: &str) -> Option<u32> {
        // The cluster's nodes by bisection, then the others one by one.
        let (mut lo, mut hi) = (0, self.sorted);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.name(mid as u32).cmp(name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        (self.sorted..self.ends.len())
            .map(|k| k as u32)
            .find(|&k| self.name(k) == name)
    }

    fn push(&mut self, name: &str) -> u32 {
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        self.ends.len() as u32 - 1
    }
}

/// The cluster's node names, numbered in name order (the first entries of the model's
/// [`NodeNames`]), for the chunks of Services to look endpoints' nodes up in.
type KnownNodes<'a> = crate::fasthash::FastMap<&'a str, u32>;

/// Numbers endpoints' nodes in one chunk of Services: the cluster's nodes by [`KnownNodes`],
/// shared by every chunk; a name that is none of the cluster's nodes gets a number of the
/// chunk's own (after the known ones), renumbered model-wide once the chunks are joined.
struct NodeIds<'k, 'a> {
    known: &'k KnownNodes<'k>,
    other: crate::fasthash::FastMap<&'a str, u32>,
    other_names: Vec<&'a str>,
}

impl<'k, 'a> NodeIds<'k, 'a> {
    fn new(known: &'k KnownNodes<'k>) -> Self {
        NodeIds {
            known,
            other: Default::default(),
            other_names: Vec::new(),
        }
    }

    fn get(&mut self, name: &'a str) -> u32 {
        if let Some(&k) = self.known.get(name) {
            return k;
        }
        let next = (self.known.len() + self.other_names.len()) as u32;
        *self.other.entry(name).or_insert_with(|| {
            self.other_names.push(name);
            next
        })
    }
}

/// Builds the model of one family.
///
/// `lb_ingress` gives the effective `status.loadBalancer.ingress` IPs per Service (the state's,
/// or those the fabric's load-balancer pool assigned).
pub fn build_family(
    state: &ClusterState,
    family: Family,
    lb_ingress: LbIngress<'_>,
) -> FamilyModel {
    let [v4, v6] = build_models(
        state,
        [family == Family::IPv4, family == Family::IPv6],
        lb_ingress,
    );
    match family {
        Family::IPv4 => v4,
        Family::IPv6 => v6,
    }
}

fn fam_index(f: Family) -> usize {
    match f {
        Family::IPv4 => 0,
        Family::IPv6 => 1,
    }
}

/// `status.loadBalancer.ingress` IPs per Service, as [`build_family`] takes them.
pub type LbIngress<'a> = &'a (dyn Fn(&NamespacedName, &Service) -> Vec<IpAddr> + Sync);

/// Builds the models of the families marked in `wanted` (IPv4, IPv6) in one pass over the
/// Services, which is where most of the cost is: the Service-level work (finding a Service's
/// EndpointSlices, reading its spec, naming its ports) is done once for both families. A
/// family not wanted gets an empty model.
///
/// The Services are split into chunks modelled in parallel (reading the cluster state is
/// bound by memory latency, which more cores hide); the chunks are joined in Service order,
/// so the model does not depend on the number of threads.
pub fn build_models(
    state: &ClusterState,
    wanted: [bool; 2],
    lb_ingress: LbIngress<'_>,
) -> [FamilyModel; 2] {
    use rayon::prelude::*;
    // Every slice of a wanted family with the Service that owns it, ordered like the
    // Services, so that each chunk of Services finds its slices by walking alongside them.
    // The owner is a label lookup per slice, done in parallel; the sort is stable, so a
    // Service's slices stay in name order (which decides which duplicate endpoint wins).
    let mut owned: Vec<OwnedSlice<'_>> = state
        .endpoint_slices
        .par_iter()
        .filter_map(|(nn, slice)| {
            let family = fam_index(slice.address_type);
            if !wanted[family] {
                return None;
            }
            Some(OwnedSlice {
                namespace: &nn.namespace,
                service: slice.service_name()?,
                family,
                slice,
            })
        })
        .collect();
    owned.par_sort_by(|a, b| a.owner().cmp(&b.owner()));
    // The keys are copies in one string: a lookup compares the endpoint's node name with a
    // key, and keys scattered over the heap (as the state's are) would each be a cache miss.
    let key_text: String = state.nodes.keys().map(String::as_str).collect();
    let mut at = 0;
    let known: KnownNodes<'_> = state
        .nodes
        .keys()
        .enumerate()
        .map(|(k, n)| {
            let key = &key_text[at..at + n.len()];
            at += n.len();
            (key, k as u32)
        })
        .collect();
    let services: Vec<(&NamespacedName, &Service)> = state.services.iter().collect();
    let chunks: Vec<Chunk> = services
        .par_chunks(256)
        .map(|chunk| model_chunk(chunk, &owned, &known, wanted, lb_ingress))
        .collect();
    let mut nodes = NodeNames {
        ends: key_text_ends(&state.nodes),
        sorted: known.len(),
        text: String::new(),
    };
    drop(known);
    nodes.text = key_text;
    let mut ports: [Vec<ServicePortInfo>; 2] = [Vec::new(), Vec::new()];
    let mut total_endpoints = [0usize; 2];
    for (f, p) in ports.iter_mut().enumerate() {
        p.reserve(chunks.iter().map(|c| c.ports[f].len()).sum());
    }
    for mut c in chunks {
        if !c.other_nodes.is_empty() {
            // Nodes the cluster does not have were numbered per chunk: number them in the
            // model, in the order chunks first named them.
            let base = nodes.sorted as u32;
            let ids: Vec<u32> = c
                .other_nodes
                .iter()
                .map(|n| nodes.id(n).unwrap_or_else(|| nodes.push(n)))
                .collect();
            for e in &mut c.store.endpoints {
                if let Some(k) = e.node.as_mut()
                    && *k >= base
                {
                    *k = ids[(*k - base) as usize];
                }
            }
        }
        let store = Arc::new(c.store);
        for (f, mut p) in c.ports.into_iter().enumerate() {
            for sp in &mut p {
                sp.endpoints.store = store.clone();
            }
            ports[f].extend(p);
            total_endpoints[f] += c.total_endpoints[f];
        }
    }
    let nodes = Arc::new(nodes);
    let [p4, p6] = ports;
    let [t4, t6] = total_endpoints;
    [
        finish_model(Family::IPv4, p4, t4, nodes.clone()),
        finish_model(Family::IPv6, p6, t6, nodes),
    ]
}

/// Where each of the cluster's node names ends in their concatenation.
fn key_text_ends(
    nodes: &std::collections::BTreeMap<String, knetsim_control::state::Node>,
) -> Vec<u32> {
    let mut end = 0u32;
    nodes
        .keys()
        .map(|n| {
            end += n.len() as u32;
            end
        })
        .collect()
}

/// An EndpointSlice with the Service that owns it (its `kubernetes.io/service-name` label).
struct OwnedSlice<'a> {
    namespace: &'a str,
    service: &'a str,
    family: usize,
    slice: &'a EndpointSlice,
}

impl<'a> OwnedSlice<'a> {
    /// The owning Service, ordered as `NamespacedName` orders Services.
    fn owner(&self) -> (&'a str, &'a str) {
        (self.namespace, self.service)
    }
}

/// The service ports of a run of Services, per family.
struct Chunk<'a> {
    ports: [Vec<ServicePortInfo>; 2],
    total_endpoints: [usize; 2],
    /// Names of nodes the cluster does not have, numbered from the number of its nodes on
    /// (see [`NodeIds`]).
    other_nodes: Vec<&'a str>,
    /// The endpoints of `ports`.
    store: EndpointStore,
}

fn model_chunk<'a>(
    services: &[(&'a NamespacedName, &'a Service)],
    owned: &[OwnedSlice<'a>],
    known: &KnownNodes<'_>,
    wanted: [bool; 2],
    lb_ingress: LbIngress<'_>,
) -> Chunk<'a> {
    let families = [Family::IPv4, Family::IPv6];
    let mut ports: [Vec<ServicePortInfo>; 2] = [Vec::new(), Vec::new()];
    let mut total_endpoints = [0usize; 2];
    let mut nodes = NodeIds::new(known);
    let mut scratch = Vec::new();
    let mut texts = String::new();
    let mut name_scratch = String::new();
    // The chunk's endpoints. The ports hold an empty store until the chunks are joined
    // (when endpoints may still need their nodes renumbered), then this one.
    let mut store = EndpointStore::default();
    let empty = Arc::new(EndpointStore::default());
    // The slices of the Services before this chunk's are skipped; from there the slices and
    // the Services are walked together (both in namespace/name order).
    let mut next = match services.first() {
        Some((nn, _)) => {
            owned.partition_point(|o| o.owner() < (nn.namespace.as_str(), nn.name.as_str()))
        }
        None => 0,
    };
    for &(nn, svc) in services {
        let key = (nn.namespace.as_str(), nn.name.as_str());
        // Slices naming a Service that does not exist belong to no one.
        while next < owned.len() && owned[next].owner() < key {
            next += 1;
        }
        let first = next;
        while next < owned.len() && owned[next].owner() == key {
            next += 1;
        }
        let svc_slices = &owned[first..next];
        // ShouldSkipService: headless and ExternalName Services get no rules.
        if svc.spec.type_ == "ExternalName" || svc.spec.is_headless() {
            continue;
        }
        // serviceToServiceMap: a Service without a cluster IP of a family is not that
        // family's proxier's business (the metaproxier hands it to the other one).
        let mut cluster_ips: [Option<IpAddr>; 2] = [None, None];
        for ip in svc
            .spec
            .cluster_ips
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
        {
            let f = fam_index(Family::of_ip(&ip));
            if cluster_ips[f].is_none() {
                cluster_ips[f] = Some(ip);
            }
        }
        if !(0..2).any(|f| wanted[f] && cluster_ips[f].is_some()) {
            continue;
        }
        let affinity_seconds = if svc.spec.session_affinity.as_deref() == Some("ClientIP") {
            Some(
                svc.spec
                    .session_affinity_config
                    .as_ref()
                    .map(|c| c.client_ip.timeout_seconds)
                    .unwrap_or(10800),
            )
        } else {
            None
        };
        let lb_ingress_ips = lb_ingress(nn, svc);
        let needs_health_check = svc.spec.type_ == "LoadBalancer" && external_policy_local(svc);
        let ext_local = external_policy_local(svc);
        let int_local = is_local_policy(&svc.spec.internal_traffic_policy);
        let health_check_node_port = if needs_health_check {
            svc.spec.health_check_node_port.unwrap_or(0)
        } else {
            0
        };
        for sp in &svc.spec.ports {
            let Some(proto) = Proto::parse(&sp.protocol) else {
                continue;
            };
            let port_name = sp.name.as_deref().unwrap_or("");
            name_scratch.clear();
            name_scratch.push_str(&nn.namespace);
            name_scratch.push('/');
            name_scratch.push_str(&nn.name);
            let service_at = (nn.namespace.len() as u32 + 1, name_scratch.len() as u32);
            if !port_name.is_empty() {
                name_scratch.push(':');
                name_scratch.push_str(port_name);
            }
            let name: Arc<str> = Arc::from(name_scratch.as_str());
            for (f, family) in families.into_iter().enumerate() {
                let Some(cluster_ip) = cluster_ips[f].filter(|_| wanted[f]) else {
                    continue;
                };
                let ip_start = store.texts.len();
                super::text::push_ip(&mut store.texts, cluster_ip);
                let cluster_ip_at = (ip_start as u32, (store.texts.len() - ip_start) as u8);
                let first = store.endpoints.len() as u32;
                collect_endpoints(
                    svc_slices.iter().filter(|o| o.family == f).map(|o| o.slice),
                    port_name,
                    proto,
                    &mut nodes,
                    &mut scratch,
                    &mut texts,
                    &mut store,
                );
                let len = store.endpoints.len() as u32 - first;
                total_endpoints[f] += len as usize;
                ports[f].push(ServicePortInfo {
                    service_at,
                    first_endpoint: 0,
                    name: name.clone(),
                    proto,
                    cluster_ip,
                    cluster_ip_at,
                    port: sp.port,
                    node_port: sp.node_port.unwrap_or(0),
                    external_ips: svc
                        .spec
                        .external_ips
                        .iter()
                        .copied()
                        .filter(|ip| Family::of_ip(ip) == family)
                        .collect(),
                    lb_vips: lb_ingress_ips
                        .iter()
                        .copied()
                        .filter(|ip| Family::of_ip(ip) == family)
                        .collect(),
                    lb_source_ranges: svc
                        .spec
                        .load_balancer_source_ranges
                        .iter()
                        .copied()
                        .filter(|n| Family::of_net(n) == family)
                        .collect(),
                    affinity_seconds,
                    external_policy_local: ext_local,
                    internal_policy_local: int_local,
                    health_check_node_port,
                    endpoints: Endpoints {
                        store: empty.clone(),
                        first,
                        len,
                    },
                });
            }
        }
    }
    Chunk {
        ports,
        total_endpoints,
        other_nodes: nodes.other_names,
        store,
    }
}

fn finish_model(
    family: Family,
    mut ports: Vec<ServicePortInfo>,
    total_endpoints: usize,
    nodes: Arc<NodeNames>,
) -> FamilyModel {
    // The real proxier iterates a Go map (random order); knetsim writes service ports in
    // ServicePortName order so that output is stable. Services come in name order already,
    // so this only orders the ports of each Service.
    ports.sort_by(|a, b| {
        (a.namespace(), a.service_name(), a.port_name(), a.proto).cmp(&(
            b.namespace(),
            b.service_name(),
            b.port_name(),
            b.proto,
        ))
    });
    let mut first = 0u32;
    for p in &mut ports {
        p.first_endpoint = first;
        first += p.endpoints.len() as u32;
    }
    let most = ports.iter().map(|p| p.endpoints.len()).max().unwrap_or(0);
    FamilyModel {
        family,
        total_endpoints,
        nodes,
        probabilities: (1..=most).map(|n| names::probability(n).into()).collect(),
        ipt: name_chunks(ports.len()),
        nft: name_chunks(ports.len()),
        ports,
    }
}

/// One endpoint occurrence while collecting: where its `ip:port` text is in the scratch
/// buffer, and where it was seen.
struct Seen<'a> {
    text: (u32, u32),
    ip: IpAddr,
    port: u16,
    ep: &'a knetsim_control::state::Endpoint,
}

/// Appends the endpoints of one service port to `store`: every EndpointSlice of the Service and
/// family, every slice port with the same name and protocol, deduplicated by `ip:port` (a
/// non-terminating endpoint wins over a terminating one), sorted by `ip:port` text.
// kube-proxy: pkg/proxy/endpointslicecache.go addEndpoints, endpointsMapFromEndpointInfo
fn collect_endpoints<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
    port_name: &str,
    proto: Proto,
    nodes: &mut NodeIds<'_, 'a>,
    scratch: &mut Vec<Seen<'a>>,
    texts: &mut String,
    store: &mut EndpointStore,
) {
    scratch.clear();
    texts.clear();
    for slice in slices {
        for p in &slice.ports {
            if p.name.as_deref().unwrap_or("") != port_name
                || Proto::parse(&p.protocol) != Some(proto)
                || p.port == 0
            {
                continue;
            }
            for ep in &slice.endpoints {
                let Some(&ip) = ep.addresses.first() else {
                    continue;
                };
                let start = texts.len() as u32;
                super::text::push_host_port(texts, ip, p.port);
                scratch.push(Seen {
                    text: (start, texts.len() as u32),
                    ip,
                    port: p.port,
                    ep,
                });
            }
        }
    }
    let text = |s: &Seen<'_>| &texts[s.text.0 as usize..s.text.1 as usize];
    // Sorted by "ip:port" text (byEndpoint's order); the sort is stable, so occurrences of
    // one address stay in the order they were seen. Of those, the last non-terminating one
    // wins, else the first (a terminating occurrence never replaces one already seen).
    scratch.sort_by(|a, b| text(a).cmp(text(b)));
    let mut i = 0;
    while i < scratch.len() {
        let mut j = i + 1;
        while j < scratch.len() && text(&scratch[j]) == text(&scratch[i]) {
            j += 1;
        }
        let group = &scratch[i..j];
        let chosen = group
            .iter()
            .rev()
            .find(|s| !s.ep.conditions.terminating)
            .unwrap_or(&group[0]);
        let ep = chosen.ep;
        let start = store.texts.len() as u32;
        let addr = text(chosen);
        store.texts.push_str(addr);
        // `ip:port`, or `[ip]:port` for IPv6 (at most 47 characters).
        let ip_len = addr.rfind(':').expect("ip:port") - if chosen.ip.is_ipv6() { 2 } else { 0 };
        store.endpoints.push(EndpointInfo {
            ip: chosen.ip,
            port: chosen.port,
            node: ep.node_name.as_deref().map(|n| nodes.get(n)),
            ready: ep.conditions.ready,
            serving: ep.conditions.serving,
            terminating: ep.conditions.terminating,
            text: start,
            text_len: addr.len() as u8,
            ip_len: ip_len as u8,
        });
        i = j;
    }
}

/// Which endpoints of a service port one list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    None,
    Ready,
    ServingTerminating,
    LocalReady,
    LocalServingTerminating,
    /// The union of `cluster` (ready) and `local` (serving and terminating), in `ip:port`
    /// order.
    ReadyOrLocalServingTerminating,
}

/// The endpoints a node uses for one service port: `CategorizeEndpoints` without topology
/// hints (knetsim does not model topology-aware routing).
///
/// Each list is a filter over the port's endpoints (which are in `ip:port` order, the order
/// kube-proxy writes them), so categorizing allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Categorized<'a> {
    sp: &'a ServicePortInfo,
    /// The node's index in the model's [`NodeNames`] (none for a name that is neither a
    /// cluster node nor named by an endpoint).
    node: Option<u32>,
    cluster: Pick,
    local: Pick,
    all: Pick,
    pub has_any: bool,
}

impl<'a> Categorized<'a> {
    fn iter(&self, pick: Pick) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + Clone + use<'a> {
        let node = self.node;
        let is_local = move |e: &EndpointInfo| node.is_some() && e.node == node;
        self.sp
            .endpoints
            .iter()
            .enumerate()
            .filter(move |(_, e)| match pick {
                Pick::None => false,
                Pick::Ready => e.ready,
                Pick::ServingTerminating => e.serving && e.terminating,
                Pick::LocalReady => is_local(e) && e.ready,
                Pick::LocalServingTerminating => is_local(e) && e.serving && e.terminating,
                Pick::ReadyOrLocalServingTerminating => {
                    e.ready || (is_local(e) && e.serving && e.terminating)
                }
            })
            .map(|(j, e)| (j as u32, e))
    }
    /// Endpoints for traffic with the Cluster policy, with their index in the port's list.
    pub fn cluster(&self) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + Clone + use<'a> {
        self.iter(self.cluster)
    }
    /// Endpoints on this node, for traffic with the Local policy.
    pub fn local(&self) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + Clone + use<'a> {
        self.iter(self.local)
    }
    /// [`Categorized::local`] when `local`, else [`Categorized::cluster`].
    pub fn list(
        &self,
        local: bool,
    ) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + Clone + use<'a> {
        self.iter(if local { self.local } else { self.cluster })
    }
    /// Every endpoint that gets an endpoint chain on this node.
    pub fn all_reachable(&self) -> impl Iterator<Item = (u32, &'a EndpointInfo)> + Clone + use<'a> {
        self.iter(self.all)
    }
    pub fn cluster_is_empty(&self) -> bool {
        self.cluster().next().is_none()
    }
    pub fn local_is_empty(&self) -> bool {
        self.local().next().is_none()
    }
}

/// kube-proxy's `CategorizeEndpoints` for one service port on one node. `node` is the node's
/// index in the model's [`NodeNames`] ([`FamilyModel::node_id`]; none for a name that is
/// neither a cluster node nor named by an endpoint).
// kube-proxy: pkg/proxy/topology.go CategorizeEndpoints
pub fn categorize(sp: &ServicePortInfo, node: Option<u32>) -> Categorized<'_> {
    let mut out = Categorized {
        sp,
        node,
        cluster: Pick::None,
        local: Pick::None,
        all: Pick::None,
        has_any: false,
    };
    let is_local = |e: &EndpointInfo| node.is_some() && e.node == node;
    let any_ready = sp.endpoints.iter().any(|e| e.ready);
    let any_serving_terminating = sp.endpoints.iter().any(|e| e.serving && e.terminating);
    let mut use_serving_terminating = false;
    if sp.uses_cluster_endpoints() {
        out.cluster = if any_ready {
            Pick::Ready
        } else if any_serving_terminating {
            Pick::ServingTerminating
        } else {
            Pick::None
        };
        out.has_any = out.cluster != Pick::None;
    }
    if !sp.uses_local_endpoints() {
        out.all = out.cluster;
        return out;
    }
    let mut has_local_ready = false;
    let mut has_local_serving_terminating = false;
    for e in &sp.endpoints {
        if e.ready {
            out.has_any = true;
            has_local_ready |= is_local(e);
        } else if e.serving && e.terminating {
            out.has_any = true;
            has_local_serving_terminating |= is_local(e);
        }
    }
    if has_local_ready {
        out.local = Pick::LocalReady;
    } else if has_local_serving_terminating {
        use_serving_terminating = true;
        out.local = Pick::LocalServingTerminating;
    }
    if !sp.uses_cluster_endpoints() {
        out.all = out.local;
        return out;
    }
    if !use_serving_terminating {
        out.all = out.cluster;
        return out;
    }
    // Union of both lists. Upstream builds it from a map (random order); knetsim writes it in
    // `ip:port` order like the endpoints map itself.
    out.all = match out.cluster {
        Pick::Ready => Pick::ReadyOrLocalServingTerminating,
        // The cluster list holds every serving-terminating endpoint, local ones included.
        _ => out.cluster,
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ClusterBuilder, Ep, Scale, scale};
    use knetsim_control::state::{
        Endpoint, EndpointConditions, EndpointPort, IpList, ObjectMeta, Shared,
    };
    use std::collections::BTreeMap;

    fn no_lb(_: &NamespacedName, _: &Service) -> Vec<IpAddr> {
        Vec::new()
    }

    fn models(state: &ClusterState) -> [FamilyModel; 2] {
        build_models(state, [true, true], &no_lb)
    }

    #[test]
    fn model_names_equal_the_names_functions() {
        // More service ports than one naming chunk holds (the names are kept per chunk), and
        // names long enough for the slow hash path (over 119 bytes) and for nftables'
        // truncation (over 240 characters).
        let mut state = scale(&Scale {
            minor: 33,
            mode: "iptables",
            nodes: 8,
            services: 2 * NAME_CHUNK + 10,
            endpoints: 2,
            namespaces: 3,
        });
        for (name, len) in [("medium", 100), ("long", 250)] {
            let svc = format!("{name}-{}", "n".repeat(len));
            let extra = ClusterBuilder::new(
                33,
                "iptables",
                &["10.96.0.0/12", "fd00:10:96::/108"],
                &["10.128.0.0/9", "fd00:10:244::/48"],
            )
            .service(
                "ns-0",
                &svc,
                "ClusterIP",
                &["10.96.200.1", "fd00:10:96::c801"],
                &[("", 81, 0), ("http", 80, 0)],
                |_, _| {},
            )
            .slice(
                "ns-0",
                &svc,
                Family::IPv4,
                &[("", 81), ("http", 80)],
                &[Ep::anywhere("10.128.0.99")],
            )
            .slice(
                "ns-0",
                &svc,
                Family::IPv6,
                &[("", 81), ("http", 80)],
                &[Ep::anywhere("fd00:10:244::99")],
            )
            .build();
            state.services.extend(extra.services);
            state.endpoint_slices.extend(extra.endpoint_slices);
        }
        let mut endpoints_seen = 0;
        for m in models(&state) {
            assert!(m.ports.len() > 2 * NAME_CHUNK, "{:?}", m.family);
            for (i, sp) in m.ports.iter().enumerate() {
                let i = i as u32;
                let (ns, name) = (sp.namespace(), sp.service_name());
                let proto = sp.proto.as_str();
                assert_eq!(m.ipt_port_hash(i), names::port_proto_hash(&sp.name, proto));
                assert_eq!(
                    m.nft_port_base(i),
                    names::nft_service_base(ns, name, proto, sp.port_name())
                );
                for (j, e) in sp.endpoints.iter().enumerate() {
                    let j = j as u32;
                    // The texts kept for each endpoint and port.
                    assert_eq!(sp.cluster_ip_text(), sp.cluster_ip.to_string());
                    assert_eq!(sp.endpoint_addr(j), e.addr());
                    assert_eq!(sp.endpoint_ip_text(j), e.ip.to_string());
                    let chain = names::endpoint_chain(&sp.name, proto, sp.endpoint_addr(j));
                    assert_eq!(m.ipt_endpoint_hash(i, j), &chain["KUBE-SEP-".len()..]);
                    assert_eq!(
                        m.nft_endpoint_base(i, j),
                        names::nft_endpoint_base(
                            ns,
                            name,
                            proto,
                            sp.port_name(),
                            sp.endpoint_ip_text(j),
                            e.port
                        )
                    );
                    endpoints_seen += 1;
                }
            }
        }
        assert_eq!(endpoints_seen, 2 * (2 * (2 * NAME_CHUNK + 10) + 2 * 2));
    }

    #[test]
    fn service_and_port_names_are_read_from_the_service_port_name() {
        let state = ClusterBuilder::new(
            33,
            "iptables",
            &["10.96.0.0/12", "fd00:10:96::/108"],
            &["10.128.0.0/9", "fd00:10:244::/48"],
        )
        .service(
            "kube-system",
            "dns",
            "ClusterIP",
            &["10.96.0.10"],
            &[("", 53, 0), ("metrics", 9153, 0)],
            |_, _| {},
        )
        .service(
            "a",
            "b-c",
            "ClusterIP",
            &["fd00:10:96::1"],
            &[("x", 1, 0)],
            |_, _| {},
        )
        .build();
        let [v4, v6] = models(&state);
        let got: Vec<(&str, &str, &str, &str)> = v4
            .ports
            .iter()
            .chain(&v6.ports)
            .map(|sp| (&*sp.name, sp.namespace(), sp.service_name(), sp.port_name()))
            .collect();
        assert_eq!(
            got,
            [
                ("kube-system/dns", "kube-system", "dns", ""),
                ("kube-system/dns:metrics", "kube-system", "dns", "metrics"),
                ("a/b-c:x", "a", "b-c", "x"),
            ]
        );
        let nn = |ns: &str, n: &str| NamespacedName::new(ns, n);
        assert!(v4.ports[1].is_of(&nn("kube-system", "dns")));
        assert!(!v4.ports[1].is_of(&nn("kube-system", "dn")));
        assert!(!v6.ports[0].is_of(&nn("a", "b")));
    }

    fn slice(
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        family: Family,
        endpoints: &[(&str, bool, Option<&str>)],
    ) -> (NamespacedName, EndpointSlice) {
        let mut labels = BTreeMap::new();
        if let Some(o) = owner {
            labels.insert("kubernetes.io/service-name".to_string(), o.to_string());
        }
        let s = EndpointSlice {
            api_version: "discovery.k8s.io/v1",
            kind: "EndpointSlice",
            metadata: ObjectMeta {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                labels: Shared::from(labels),
                ..ObjectMeta::default()
            },
            address_type: family,
            endpoints: endpoints
                .iter()
                .map(|&(ip, terminating, node)| Endpoint {
                    addresses: IpList::one(ip.parse().unwrap()),
                    conditions: EndpointConditions {
                        ready: !terminating,
                        serving: true,
                        terminating,
                    },
                    node_name: node.map(str::to_string),
                    target_ref: None,
                })
                .collect(),
            ports: vec![EndpointPort {
                name: Some("http".to_string()),
                port: 80,
                protocol: "TCP".to_string(),
            }],
        };
        (NamespacedName::new(namespace, name), s)
    }

    #[test]
    fn each_service_gets_the_endpoints_of_the_slices_labelled_with_its_name() {
        // Slices are found by their kubernetes.io/service-name label, whatever their names
        // (which here sort in another order than their owners'); of one address in several
        // slices of a Service the last non-terminating one wins, else the first, in slice
        // name order.
        use Family::{IPv4, IPv6};
        let mut b = ClusterBuilder::new(
            33,
            "iptables",
            &["10.96.0.0/12", "fd00:10:96::/108"],
            &["10.128.0.0/9", "fd00:10:244::/48"],
        )
        .node("n1", &["172.16.0.1"], &["10.128.0.0/24"]);
        for (ns, name, ip) in [
            ("a", "x", "10.96.0.1"),
            ("a", "x-y", "10.96.0.2"),
            ("b", "x", "10.96.0.3"),
            ("a", "z", "10.96.0.4"),
        ] {
            b = b.service(ns, name, "ClusterIP", &[ip], &[("http", 80, 0)], |_, _| {});
        }
        let mut state = b.build();
        state.endpoint_slices = [
            // a/x: three slices, one named to sort before every other of the namespace.
            slice("a", "0-first", Some("x"), IPv4, &[("10.0.0.1", true, None)]),
            slice(
                "a",
                "x-1",
                Some("x"),
                IPv4,
                &[("10.0.0.1", false, Some("n1")), ("10.0.0.2", true, None)],
            ),
            slice(
                "a",
                "x-2",
                Some("x"),
                IPv4,
                &[("10.0.0.2", true, Some("n9")), ("10.0.0.3", false, None)],
            ),
            // An IPv6 slice of a/x: not the IPv4 model's.
            slice("a", "x-3", Some("x"), IPv6, &[("fd00::1", false, None)]),
            // a/x-y, whose slice sorts between a/x's.
            slice("a", "x-1a", Some("x-y"), IPv4, &[("10.0.1.1", false, None)]),
            // b/x: same Service name, other namespace.
            slice(
                "b",
                "x-1",
                Some("x"),
                IPv4,
                &[
                    ("10.0.2.1", false, Some("n9")),
                    ("10.0.2.2", false, Some("n1")),
                ],
            ),
            // Owned by no existing Service, or by none at all.
            slice(
                "a",
                "ghost-1",
                Some("ghost"),
                IPv4,
                &[("10.0.3.1", false, None)],
            ),
            slice("a", "y-1", Some("y"), IPv4, &[("10.0.3.2", false, None)]),
            slice("a", "unlabelled", None, IPv4, &[("10.0.3.3", false, None)]),
        ]
        .into_iter()
        .collect();
        let [v4, v6] = models(&state);
        // (ip:port, terminating, node) of each endpoint.
        type EpRow = (String, bool, Option<String>);
        let got: Vec<(String, Vec<EpRow>)> = v4
            .ports
            .iter()
            .map(|sp| {
                let eps = (0..sp.endpoints.len() as u32)
                    .map(|j| {
                        let e = &sp.endpoints[j as usize];
                        (
                            sp.endpoint_addr(j).to_string(),
                            e.terminating,
                            v4.node_name(e).map(str::to_string),
                        )
                    })
                    .collect();
                (sp.name.to_string(), eps)
            })
            .collect();
        let ep = |a: &str, t: bool, n: Option<&str>| (a.to_string(), t, n.map(str::to_string));
        let want = vec![
            (
                "a/x:http".to_string(),
                vec![
                    ep("10.0.0.1:80", false, Some("n1")),
                    ep("10.0.0.2:80", true, None),
                    ep("10.0.0.3:80", false, None),
                ],
            ),
            (
                "a/x-y:http".to_string(),
                vec![ep("10.0.1.1:80", false, None)],
            ),
            ("a/z:http".to_string(), vec![]),
            (
                "b/x:http".to_string(),
                vec![
                    ep("10.0.2.1:80", false, Some("n9")),
                    ep("10.0.2.2:80", false, Some("n1")),
                ],
            ),
        ];
        assert_eq!(got, want);
        // The IPv4-only Services have no IPv6 ports, whatever slices name them.
        assert!(v6.ports.is_empty());
        // Endpoints name their node by number, whether or not the cluster has the node (n9
        // it has not); the numbers are the same in both families' models.
        assert_eq!(v4.node_id("n1"), Some(0));
        assert_eq!(v4.node_id("n9"), Some(1));
        assert_eq!(v6.node_id("n9"), Some(1));
        assert_eq!(v4.node_id("n2"), None);
    }
}
