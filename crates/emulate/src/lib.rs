//! Emulation: the simulated cluster built in Linux network namespaces from the routes and
//! rules knetsim renders, probed with real packets, every verdict compared with the
//! simulator's (`knetsim emulate`).
//!
//! The module list below is a map of the code.
//!
//! - [`sys`]: the only code that touches the kernel: `ip -n NS -batch`, rule loaders under
//!   `ip netns exec`, threads that `setns` into a namespace, sysctls, namespace creation and
//!   removal, the Ctrl-C handler. Refuses any namespace not named with [`sys::PREFIX`].
//! - [`topology`]: the namespaces of a run (underlay/router, external hosts, one per node, one
//!   per pod) and the `ip -batch` text and rule files that wire them.
//! - [`probe`]: the questions (the scenario's `trace:`/`reachability:` entries and a standard
//!   set), the simulator's answers, echo servers, real TCP/UDP clients, the comparison.
//!
//! Safety: nothing is added to the machine's own network namespace. Every namespace a run
//! creates is named `ksim-<pid>-<run>-…`; veth pairs are created with both ends in those
//! namespaces; the namespaces have no link to the machine's, so no probe can leave them. A
//! [`Run`] guard deletes them when dropped (at the end, on an error), a signal handler on
//! Ctrl-C, and [`clean`] removes what a killed run left.

pub mod cni;
pub mod probe;
pub mod sys;
pub mod topology;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use knetsim_control::state::ClusterState;
use knetsim_dataplane::{Dataplane, TraceQuery};
use knetsim_model::Scenario;
use serde::Serialize;

pub use probe::{Answer, Origin, Probe};
pub use topology::Topology;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Leave the namespaces in place afterwards (for debugging).
    pub keep: bool,
    /// How long a probe waits for an answer before calling the packet dropped.
    pub timeout: Duration,
    /// Probe threads.
    pub workers: usize,
    /// Wire pods with the real CNI plugins where the scenario's CNI has one here.
    pub cni_plugins: bool,
    /// More probes, probed before the standard set: the cells of a `--reach` matrix.
    pub extra: Vec<TraceQuery>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep: false,
            timeout: Duration::from_millis(1500),
            workers: 32,
            cni_plugins: true,
            extra: Vec::new(),
        }
    }
}

/// A run's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub probes: Vec<Probe>,
    /// Whether the real CNI plugins wired the pods.
    pub cni_plugins: bool,
    /// With the real plugins: each node's routes, the kernel's against knetsim's.
    pub routes: Vec<cni::RouteCheck>,
    /// Queries the simulator could not trace or the kernel cannot be asked (with why).
    pub skipped: Vec<String>,
    pub agree: usize,
    pub disagree: usize,
    /// Namespaces created.
    pub namespaces: usize,
    /// The prefix of the namespaces (still there with `keep`).
    pub prefix: String,
    pub kept: bool,
    pub build_seconds: f64,
    pub probe_seconds: f64,
    pub teardown_seconds: f64,
}

impl Report {
    /// The text report: one line a probe, the last line `N probes: A agree, D disagree`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in &self.routes {
            s.push_str(&r.line());
            s.push('\n');
        }
        for p in &self.probes {
            s.push_str(&p.line());
            s.push('\n');
        }
        s.push_str(&format!(
            "{} probes: {} agree, {} disagree\n",
            self.probes.len() + self.routes.len(),
            self.agree,
            self.disagree
        ));
        s
    }
}

/// Why a run could not be made (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannotRun(pub String);

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the machine can emulate: Linux, root, and the tools the scenario's mode needs.
pub fn check_host(dp: Option<&Dataplane>) -> Result<(), CannotRun> {
    if !cfg!(target_os = "linux") {
        return Err(CannotRun(
            "emulation needs Linux network namespaces; this is not Linux".into(),
        ));
    }
    if !sys::is_root() {
        return Err(CannotRun(
            "emulation creates network namespaces and needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run it as root".into(),
        ));
    }
    let mut tools = vec!["ip", "iptables-restore", "ip6tables-restore"];
    if let Some(dp) = dp {
        if dp.proxy_mode() == Some("nftables") {
            tools.push("nft");
        }
        if dp.families().iter().any(|f| !dp.masq.ipsets(*f).is_empty()) {
            tools.push("ipset");
        }
    }
    let missing: Vec<&str> = tools.into_iter().filter(|t| !sys::have(t)).collect();
    if !missing.is_empty() {
        return Err(CannotRun(format!(
            "emulation needs {} (Debian: apt-get install iproute2 iptables nftables ipset)",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The namespaces of one run, deleted when dropped unless kept.
#[derive(Debug)]
pub struct Run {
    pub prefix: String,
    names: Vec<String>,
    keep: bool,
    /// host-local's state directory, when the real plugins ran.
    data_dir: Option<std::path::PathBuf>,
}

impl Run {
    fn new(keep: bool) -> Run {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "{}{}-{}-",
            sys::PREFIX,
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        sys::register(&prefix);
        Run {
            prefix,
            names: Vec::new(),
            keep,
            data_dir: None,
        }
    }

    fn teardown(&mut self) {
        if !self.keep {
            // Also whatever a failed `netns add` batch created part of.
            let mut names = std::mem::take(&mut self.names);
            names.extend(sys::namespaces_with(&self.prefix));
            names.sort();
            names.dedup();
            let _ = sys::delete_namespaces(&names);
            if let Some(d) = self.data_dir.take() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        sys::unregister(&self.prefix);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The queries of the scenario's dataplane expectations, in order.
pub fn expectation_queries(scenario: &Scenario) -> Vec<TraceQuery> {
    scenario
        .dataplane_expectations()
        .into_iter()
        .flat_map(knetsim_dataplane::expect::expectation_queries)
        .collect()
}

/// Builds the cluster, probes it and tears it down.
pub fn emulate(
    dp: &Dataplane,
    state: &ClusterState,
    scenario: &Scenario,
    opts: &Options,
) -> Result<Report, CannotRun> {
    check_host(Some(dp))?;
    let mut run = Run::new(opts.keep);
    let topo = Topology::plan(state, &run.prefix);
    let mut queries: Vec<(Origin, TraceQuery)> = expectation_queries(scenario)
        .into_iter()
        .map(|q| (Origin::Expect, q))
        .collect();
    queries.extend(opts.extra.iter().cloned().map(|q| (Origin::Matrix, q)));
    queries.extend(
        probe::standard(dp, state)
            .into_iter()
            .map(|q| (Origin::Standard, q)),
    );
    let (planned, skipped) = probe::plan(dp, state, &topo, queries);

    let start = Instant::now();
    run.names = topo.all();
    sys::add_namespaces(&run.names).map_err(CannotRun)?;
    let plugins = (opts.cni_plugins && cni::available(dp)).then(|| cni::data_dir(&run.prefix));
    run.data_dir = plugins.clone();
    let routes = topology::build(dp, state, &topo, plugins.as_deref()).map_err(CannotRun)?;
    let listen = probe::listeners(dp, state, &topo, &planned);
    let servers = probe::serve(&listen).map_err(CannotRun)?;
    let build_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let probes = probe::run(&planned, opts.workers, opts.timeout);
    let probe_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    drop(servers);
    let namespaces = run.names.len();
    run.teardown();
    let teardown_seconds = start.elapsed().as_secs_f64();
    let agree =
        probes.iter().filter(|p| p.agree).count() + routes.iter().filter(|r| r.agree).count();
    Ok(Report {
        disagree: probes.len() + routes.len() - agree,
        agree,
        probes,
        routes,
        cni_plugins: plugins.is_some(),
        skipped,
        namespaces,
        prefix: run.prefix.clone(),
        kept: opts.keep,
        build_seconds,
        probe_seconds,
        teardown_seconds,
    })
}

/// Removes the namespaces (and host-local state directories) of runs whose process is gone
/// (killed runs) and this process's kept ones; a run still going is left alone. Returns the
/// names removed.
pub fn clean() -> Result<Vec<String>, CannotRun> {
    check_host(None)?;
    let stale: Vec<String> = sys::namespaces_with(sys::PREFIX)
        .into_iter()
        .filter(|n| dead_or_done(n))
        .collect();
    sys::delete_namespaces(&stale).map_err(CannotRun)?;
    // host-local's state directories of the same runs (files the plugin keeps).
    let mut removed = stale;
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        let mut dirs: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(sys::PREFIX) && n.ends_with("-cni"))
            .filter(|n| dead_or_done(n))
            .collect();
        dirs.sort();
        for d in dirs {
            if std::fs::remove_dir_all(std::env::temp_dir().join(&d)).is_ok() {
                removed.push(std::env::temp_dir().join(d).display().to_string());
            }
        }
    }
    Ok(removed)
}

/// Whether a name of a run's (`ksim-<pid>-<run>-…`) belongs to a process that is gone, or to
/// a finished or kept run of this process.
fn dead_or_done(n: &str) -> bool {
    n[sys::PREFIX.len()..]
        .split('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_none_or(|pid| {
            if pid == std::process::id() {
                !sys::is_active(n)
            } else {
                !sys::alive(pid)
            }
        })
}
