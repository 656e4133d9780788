//! Probes: the questions (the scenario's `trace:`/`reachability:` expectations and a standard
//! set), the simulator's answers, echo servers in the namespaces, real TCP/UDP clients, and
//! the comparison.
//!
//! An echo server answers every connection or datagram with `LOCAL PEER`: the address and
//! port it was reached at (which endpoint kube-proxy chose) and the source address it saw
//! (masqueraded or not). A client that gets no answer within the timeout saw the packet
//! dropped; a refusal (RST, ICMP port or host unreachable) is a rejection.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use knetsim_control::state::ClusterState;
use knetsim_dataplane::trace::{Outcome, Trace};
use knetsim_dataplane::{Dataplane, TraceQuery};
use knetsim_ipam::Family;
use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::sys;
use crate::topology::Topology;

/// Where a probe came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `trace:` or `reachability:` entry of the scenario.
    Expect,
    /// A cell of the `--reach FROM --to TO` matrix of the command line.
    Matrix,
    /// The standard set.
    Standard,
}

/// One side's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// `delivered`, `rejected`, `dropped` (or `error: …` from the kernel side).
    pub verdict: String,
    /// `ip:port` of every endpoint reached.
    pub endpoints: BTreeSet<String>,
    /// Every source address the endpoints saw.
    pub sources: BTreeSet<IpAddr>,
    /// Tries of a delivered probe that were not answered (each `dropped`, `rejected` or
    /// `error: …`): not compared, shown so that an intermittent failure is seen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_tries: Vec<String>,
}

impl Answer {
    /// The same verdict, endpoints and sources.
    pub fn same(&self, other: &Answer) -> bool {
        self.verdict == other.verdict
            && self.endpoints == other.endpoints
            && self.sources == other.sources
    }

    fn text(&self) -> String {
        if self.verdict != "delivered" {
            return self.verdict.clone();
        }
        let eps: Vec<&str> = self.endpoints.iter().map(String::as_str).collect();
        let srcs: Vec<String> = self.sources.iter().map(IpAddr::to_string).collect();
        let failed = if self.failed_tries.is_empty() {
            String::new()
        } else {
            format!(
                " ({} tries unanswered: {})",
                self.failed_tries.len(),
                self.failed_tries.join(",")
            )
        };
        format!(
            "delivered to {} from {}{failed}",
            eps.join(","),
            srcs.join(",")
        )
    }
}

/// A probe, planned: the query, the simulator's answer, and where the kernel is asked.
#[derive(Clone, Debug)]
pub struct Planned {
    pub origin: Origin,
    pub query: TraceQuery,
    pub family: Family,
    pub proto: &'static str,
    pub sim: Answer,
    pub from_ns: String,
    pub from_ip: IpAddr,
    pub to: SocketAddr,
    /// Tries: more than one when kube-proxy picks among several endpoints at random.
    pub tries: usize,
    /// The Service has ClientIP session affinity: a client keeps the first endpoint it got,
    /// so the kernel must reach exactly one of the simulated endpoints, seen from the source
    /// the simulator gives that endpoint's path.
    pub affinity: bool,
    /// The simulated source each delivered endpoint sees.
    pub sources_by_endpoint: BTreeMap<String, IpAddr>,
}

/// A probe, done.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub origin: Origin,
    pub from: String,
    pub to: String,
    pub family: Family,
    pub proto: &'static str,
    pub port: u16,
    pub sim: Answer,
    pub kernel: Answer,
    /// ClientIP session affinity: the kernel must keep one of the simulated endpoints.
    pub affinity: bool,
    pub agree: bool,
}

impl Probe {
    /// The report's line.
    pub fn line(&self) -> String {
        format!(
            "{:<8} {} {} {} -> {} :{}  sim: {}{}  kernel: {}",
            if self.agree { "agree" } else { "DISAGREE" },
            self.proto,
            self.family,
            self.from,
            self.to,
            self.port,
            self.sim.text(),
            if self.affinity {
                " (ClientIP affinity: one of them, kept)"
            } else {
                ""
            },
            self.kernel.text()
        )
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Delivered => "delivered",
        Outcome::Dropped => "dropped",
        Outcome::Rejected => "rejected",
    }
}

/// The simulator's answer to a trace.
fn sim_answer(t: &Trace) -> Answer {
    let delivered = t.verdict == Outcome::Delivered;
    Answer {
        verdict: outcome(t.verdict).to_string(),
        endpoints: if delivered {
            t.paths
                .iter()
                .filter(|p| p.outcome == Outcome::Delivered)
                .map(|p| p.destination.clone())
                .collect()
        } else {
            BTreeSet::new()
        },
        sources: if delivered {
            t.paths
                .iter()
                .filter(|p| p.outcome == Outcome::Delivered)
                .map(|p| p.seen_source)
                .collect()
        } else {
            BTreeSet::new()
        },
        failed_tries: Vec::new(),
    }
}

/// The standard set: each pod to each Service port of each family, each node to each Service
/// port, node to NodePort (its own and the others'), external to NodePort and to
/// load-balancer IPs, pod to pod, pod to external. A pod reaching its own Service (hairpin)
/// and Services without endpoints are among the pod-to-Service probes.
pub fn standard(dp: &Dataplane, state: &ClusterState) -> Vec<TraceQuery> {
    let families = dp.families();
    let pods: Vec<_> = state
        .pods
        .iter()
        .filter(|(_, p)| p.spec.node_name.is_some() && !p.status.pod_ips.is_empty())
        .filter(|(_, p)| !p.spec.host_network)
        .collect();
    let q = |from: String, to: String, family: Family, proto: &str, port: Option<u16>| TraceQuery {
        from,
        to,
        family: Some(family),
        proto: proto.to_string(),
        port,
    };
    let mut out = Vec::new();
    for (snn, svc) in &state.services {
        if svc.spec.type_ == "ExternalName" || svc.spec.is_headless() {
            continue;
        }
        for sp in &svc.spec.ports {
            let proto = sp.protocol.to_ascii_lowercase();
            if proto != "tcp" && proto != "udp" {
                continue;
            }
            let port_name = sp.name.clone().unwrap_or_else(|| sp.port.to_string());
            let to = format!("svc:{snn}:{port_name}");
            for &family in &svc.spec.ip_families {
                if svc.spec.cluster_ip_of(family).is_none() || !families.contains(&family) {
                    continue;
                }
                for (pnn, _) in &pods {
                    out.push(q(pnn.to_string(), to.clone(), family, &proto, None));
                }
                for node in state.nodes.keys() {
                    out.push(q(format!("node:{node}"), to.clone(), family, &proto, None));
                }
                if let Some(np) = sp.node_port {
                    for a in state.nodes.keys() {
                        for b in state.nodes.keys() {
                            out.push(q(
                                format!("node:{a}"),
                                format!("node:{b}"),
                                family,
                                &proto,
                                Some(np),
                            ));
                        }
                    }
                    for b in state.nodes.keys() {
                        out.push(q(
                            "external".into(),
                            format!("node:{b}"),
                            family,
                            &proto,
                            Some(np),
                        ));
                    }
                }
                if let Some(ips) = dp.load_balancer_ips().get(snn) {
                    for ip in ips.iter().filter(|ip| Family::of_ip(ip) == family) {
                        out.push(q(
                            "external".into(),
                            ip.to_string(),
                            family,
                            &proto,
                            Some(sp.port),
                        ));
                    }
                }
            }
        }
    }
    for (a, pa) in &pods {
        for (b, pb) in &pods {
            if a == b {
                continue;
            }
            let port = pb
                .spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter())
                .find(|p| p.protocol.eq_ignore_ascii_case("tcp"))
                .map(|p| p.container_port)
                .unwrap_or(8080);
            for &family in &families {
                if pa.ip_of(family).is_some() && pb.ip_of(family).is_some() {
                    out.push(q(a.to_string(), b.to_string(), family, "tcp", Some(port)));
                }
            }
        }
        for &family in &families {
            let has_ext = dp
                .fabric
                .external_hosts
                .iter()
                .any(|ip| Family::of_ip(ip) == family);
            if has_ext && pa.ip_of(family).is_some() {
                out.push(q(
                    a.to_string(),
                    "external".into(),
                    family,
                    "tcp",
                    Some(443),
                ));
            }
        }
    }
    out
}

fn key(q: &TraceQuery) -> String {
    format!(
        "{}|{}|{:?}|{}|{:?}",
        q.from, q.to, q.family, q.proto, q.port
    )
}

/// Plans the probes: each query traced by the simulator (queries it cannot trace are left
/// out and counted), and placed in the run's namespaces.
pub fn plan(
    dp: &Dataplane,
    state: &ClusterState,
    topo: &Topology,
    queries: Vec<(Origin, TraceQuery)>,
) -> (Vec<Planned>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (origin, q) in queries {
        if !seen.insert(key(&q)) {
            continue;
        }
        let t = match knetsim_dataplane::trace(dp, state, &q) {
            Ok(t) => t,
            Err(e) => {
                skipped.push(format!("{} -> {}: {e}", q.from, q.to));
                continue;
            }
        };
        let proto = match t.proto.as_str() {
            "tcp" => "tcp",
            "udp" => "udp",
            other => {
                skipped.push(format!(
                    "{} -> {}: {other} is not probed (TCP and UDP only)",
                    q.from, q.to
                ));
                continue;
            }
        };
        let from_ns = match t.from.kind {
            "external" => Some(topo.external.clone()),
            "node" => t
                .from
                .node
                .as_ref()
                .and_then(|n| topo.nodes.get(n))
                .cloned(),
            _ => t
                .from
                .name
                .split_once('/')
                .map(|(ns, name)| knetsim_control::state::NamespacedName::new(ns, name))
                .and_then(|nn| topo.pods.get(&nn))
                .cloned(),
        };
        let Some(from_ns) = from_ns else {
            skipped.push(format!(
                "{} -> {}: the source is not emulated",
                q.from, q.to
            ));
            continue;
        };
        let sim = sim_answer(&t);
        let k = sim.endpoints.len();
        let affinity =
            q.to.strip_prefix("svc:")
                .and_then(|rest| {
                    let (ns, name) = rest.split_once('/')?;
                    let name = name.split(':').next()?;
                    state
                        .services
                        .get(&knetsim_control::state::NamespacedName::new(ns, name))
                })
                .is_some_and(|svc| svc.spec.session_affinity.as_deref() == Some("ClientIP"));
        let sources_by_endpoint = t
            .paths
            .iter()
            .filter(|p| p.outcome == Outcome::Delivered)
            .map(|p| (p.destination.clone(), p.seen_source))
            .collect();
        out.push(Planned {
            origin,
            family: t.family,
            proto,
            from_ns,
            from_ip: t.from.ip,
            to: SocketAddr::new(t.to.ip, t.port),
            tries: if k > 1 { 10 * k } else { 1 },
            affinity,
            sources_by_endpoint,
            sim,
            query: q,
        });
    }
    (out, skipped)
}

/// Echo servers, one thread per listening socket, stopped when this is dropped.
pub struct Servers {
    stop: Arc<AtomicBool>,
    listeners: Vec<Socket>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Servers({})", self.threads.len())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Shutting a listening socket down wakes the thread blocked in accept().
        for l in &self.listeners {
            let _ = l.shutdown(std::net::Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn domain(ip: &IpAddr) -> Domain {
    if ip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

/// Which addresses of which namespace listen on which ports: every pod address, every
/// external host and every host-network endpoint, on every port a probe or a simulated
/// endpoint names (so that a packet the kernel delivers where the simulator says it does not
/// is answered, not refused).
pub fn listeners(
    dp: &Dataplane,
    state: &ClusterState,
    topo: &Topology,
    planned: &[Planned],
) -> BTreeMap<String, BTreeSet<(IpAddr, u16)>> {
    let mut ports: BTreeSet<u16> = BTreeSet::new();
    let mut host_eps: BTreeSet<SocketAddr> = BTreeSet::new();
    let node_ips: BTreeMap<IpAddr, &String> = state
        .nodes
        .iter()
        .flat_map(|(name, n)| n.internal_ips().map(move |ip| (ip, name)))
        .collect();
    for p in planned {
        for e in &p.sim.endpoints {
            if let Ok(sa) = e.parse::<SocketAddr>() {
                ports.insert(sa.port());
                if node_ips.contains_key(&sa.ip()) {
                    host_eps.insert(sa);
                }
            }
        }
        if !node_ips.contains_key(&p.to.ip()) && !dp.fabric.node_by_ip.contains_key(&p.to.ip()) {
            ports.insert(p.to.port());
        }
    }
    let mut out: BTreeMap<String, BTreeSet<(IpAddr, u16)>> = BTreeMap::new();
    for (nn, ns) in &topo.pods {
        let Some(pod) = state.pods.get(nn) else {
            continue;
        };
        if pod.spec.host_network {
            continue;
        }
        for ip in &pod.status.pod_ips {
            for port in &ports {
                out.entry(ns.clone()).or_default().insert((*ip, *port));
            }
        }
    }
    for ip in &dp.fabric.external_hosts {
        for port in &ports {
            out.entry(topo.external.clone())
                .or_default()
                .insert((*ip, *port));
        }
    }
    for sa in host_eps {
        if let Some(ns) = node_ips.get(&sa.ip()).and_then(|n| topo.nodes.get(*n)) {
            out.entry(ns.clone())
                .or_default()
                .insert((sa.ip(), sa.port()));
        }
    }
    out
}

/// Starts TCP and UDP echo servers on every listed address and port.
pub fn serve(plan: &BTreeMap<String, BTreeSet<(IpAddr, u16)>>) -> Result<Servers, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut servers = Servers {
        stop: stop.clone(),
        listeners: Vec::new(),
        threads: Vec::new(),
    };
    for (ns, addrs) in plan {
        let ns2 = ns.clone();
        let addrs: Vec<(IpAddr, u16)> = addrs.iter().copied().collect();
        // Sockets belong to the namespace of the thread that creates them.
        let made = std::thread::spawn(move || -> Result<Vec<(Socket, Socket)>, String> {
            sys::enter(&ns2)?;
            let mut v = Vec::new();
            for (ip, port) in addrs {
                let sa = SockAddr::from(SocketAddr::new(ip, port));
                let bind = |ty: Type, proto: Protocol| -> Result<Socket, String> {
                    let s = Socket::new(domain(&ip), ty, Some(proto))
                        .map_err(|e| format!("socket in {ns2}: {e}"))?;
                    let _ = s.set_reuse_address(true);
                    s.bind(&sa)
                        .map_err(|e| format!("bind {ip} port {port} in {ns2}: {e}"))?;
                    Ok(s)
                };
                let tcp = bind(Type::STREAM, Protocol::TCP)?;
                tcp.listen(128)
                    .map_err(|e| format!("listen {ip} port {port} in {ns2}: {e}"))?;
                let udp = bind(Type::DGRAM, Protocol::UDP)?;
                let _ = udp.set_read_timeout(Some(Duration::from_millis(100)));
                v.push((tcp, udp));
            }
            Ok(v)
        })
        .join()
        .map_err(|_| "a server thread panicked".to_string())??;
        for (tcp, udp) in made {
            let handle = tcp
                .try_clone()
                .map_err(|e| format!("cannot clone a listening socket: {e}"))?;
            servers.listeners.push(handle);
            let stop_t = stop.clone();
            servers
                .threads
                .push(std::thread::spawn(move || tcp_echo(tcp, stop_t)));
            let stop_u = stop.clone();
            servers
                .threads
                .push(std::thread::spawn(move || udp_echo(udp, stop_u)));
        }
    }
    Ok(servers)
}

fn local_text(s: &Socket) -> String {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.to_string())
        .unwrap_or_default()
}

fn tcp_echo(listener: Socket, stop: Arc<AtomicBool>) {
    let local = local_text(&listener);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((conn, peer)) => {
                let peer = peer
                    .as_socket()
                    .map(|p| p.ip().to_string())
                    .unwrap_or_default();
                let mut stream: TcpStream = conn.into();
                let _ = stream.write_all(format!("{local} {peer}\n").as_bytes());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn udp_echo(sock: Socket, stop: Arc<AtomicBool>) {
    let local = local_text(&sock);
    let sock: std::net::UdpSocket = sock.into();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        match sock.recv_from(&mut buf) {
            Ok((_, peer)) => {
                let _ = sock.send_to(format!("{local} {}\n", peer.ip()).as_bytes(), peer);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// One try's result.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Try {
    Delivered(String, IpAddr),
    Rejected,
    Dropped,
    Error(String),
}

fn classify(e: &std::io::Error) -> Try {
    match e.raw_os_error() {
        // ECONNREFUSED, EHOSTUNREACH, ENETUNREACH: a RST or an ICMP unreachable came back.
        Some(111 | 113 | 101) => Try::Rejected,
        _ if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Try::Dropped,
        _ => Try::Error(e.to_string()),
    }
}

fn parse_reply(text: &str) -> Try {
    let mut it = text.split_whitespace();
    match (it.next(), it.next().and_then(|s| s.parse::<IpAddr>().ok())) {
        (Some(local), Some(peer)) => Try::Delivered(local.to_string(), peer),
        _ => Try::Error(format!("unexpected reply {text:?}")),
    }
}

fn try_once(p: &Planned, timeout: Duration) -> Try {
    let ty = if p.proto == "udp" {
        Type::DGRAM
    } else {
        Type::STREAM
    };
    let proto = if p.proto == "udp" {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let s = match Socket::new(domain(&p.from_ip), ty, Some(proto)) {
        Ok(s) => s,
        Err(e) => return Try::Error(e.to_string()),
    };
    if let Err(e) = s.bind(&SockAddr::from(SocketAddr::new(p.from_ip, 0))) {
        return Try::Error(format!("bind {}: {e}", p.from_ip));
    }
    let _ = s.set_read_timeout(Some(timeout));
    let to = SockAddr::from(p.to);
    if p.proto == "udp" {
        if let Err(e) = s.connect(&to) {
            return classify(&e);
        }
        // A local rule that refuses the datagram fails the send itself (EPERM), REJECT and
        // DROP alike; REJECT's ICMP error then reaches the socket, so read on.
        if let Err(e) = s.send(b"knetsim\n")
            && e.raw_os_error() != Some(1)
        {
            return classify(&e);
        }
        let u: std::net::UdpSocket = s.into();
        let mut buf = [0u8; 512];
        match u.recv(&mut buf) {
            Ok(n) => parse_reply(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => classify(&e),
        }
    } else {
        if let Err(e) = s.connect_timeout(&to, timeout) {
            return classify(&e);
        }
        let mut stream: TcpStream = s.into();
        let mut text = String::new();
        match stream.read_to_string(&mut text) {
            Ok(_) => parse_reply(&text),
            Err(e) => classify(&e),
        }
    }
}

/// Asks the kernel one probe's question (in the calling thread's namespace, which the caller
/// set): as many tries as planned, stopping early once every simulated endpoint answered.
fn ask(p: &Planned, timeout: Duration) -> Answer {
    let mut tries = Vec::new();
    let mut endpoints = BTreeSet::new();
    let mut limit = p.tries;
    let mut n = 0;
    while n < limit {
        n += 1;
        let t = try_once(p, timeout);
        // Unanswered tries among answered ones: give the missing endpoints another round
        // (once) rather than count them unreachable.
        if n == limit
            && limit == p.tries
            && p.tries > 1
            && !matches!(t, Try::Delivered(..))
            && !p.sim.endpoints.is_subset(&endpoints)
        {
            limit *= 2;
        }
        if let Try::Delivered(e, _) = &t {
            endpoints.insert(e.clone());
        }
        let done = matches!(t, Try::Delivered(..)) && p.sim.endpoints.is_subset(&endpoints);
        tries.push(t);
        if done {
            break;
        }
    }
    let mut a = Answer::default();
    for t in &tries {
        if let Try::Delivered(e, src) = t {
            a.endpoints.insert(e.clone());
            a.sources.insert(*src);
        }
    }
    a.verdict = if !a.endpoints.is_empty() {
        a.failed_tries = tries
            .iter()
            .filter_map(|t| match t {
                Try::Delivered(..) => None,
                Try::Rejected => Some("rejected".to_string()),
                Try::Dropped => Some("dropped".to_string()),
                Try::Error(e) => Some(format!("error: {e}")),
            })
            .collect();
        "delivered".into()
    } else if let Some(Try::Error(e)) = tries.iter().find(|t| matches!(t, Try::Error(_))) {
        format!("error: {e}")
    } else if tries.contains(&Try::Rejected) {
        "rejected".into()
    } else {
        "dropped".into()
    };
    a
}

/// Runs every probe on `workers` threads, each entering the source's namespace for each
/// probe; the results come back in the planned order.
pub fn run(planned: &[Planned], workers: usize, timeout: Duration) -> Vec<Probe> {
    let next = AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Answer>>> =
        std::sync::Mutex::new(vec![None; planned.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, planned.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = planned.get(i) else {
                        return;
                    };
                    let a = match sys::enter(&p.from_ns) {
                        Ok(()) => ask(p, timeout),
                        Err(e) => Answer {
                            verdict: format!("error: {e}"),
                            ..Answer::default()
                        },
                    };
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(a);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    planned
        .iter()
        .zip(results)
        .map(|(p, kernel)| {
            let kernel = kernel.unwrap_or_default();
            let agree = if p.affinity && p.sim.verdict == "delivered" {
                // One endpoint, every time, one the simulator allows, seen from its source.
                kernel.verdict == "delivered"
                    && kernel.endpoints.len() == 1
                    && kernel.endpoints.iter().all(|e| {
                        p.sources_by_endpoint
                            .get(e)
                            .is_some_and(|src| kernel.sources == BTreeSet::from([*src]))
                    })
            } else {
                kernel.same(&p.sim)
            };
            Probe {
                affinity: p.affinity,
                origin: p.origin,
                from: p.query.from.clone(),
                to: p.query.to.clone(),
                family: p.family,
                proto: p.proto,
                port: p.to.port(),
                agree,
                sim: p.sim.clone(),
                kernel,
            }
        })
        .collect()
}
