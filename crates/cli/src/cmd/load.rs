//! Loading a scenario: the one validation every subcommand runs before its own work.
//!
//! `check` is exactly as strict as the strictest subcommand because they all come through
//! [`load_input`]: the model's reading (syntax, keys, flags, manifests, caps), then the
//! sections other crates own — `fabric:` (the dataplane's), `plan:` (the planner's) — and the
//! configuration agents would reject at start-up (ip-masq-agent's, a warning: the agent keeps
//! running without rules). Every diagnostic points into the one [`SourceMap`] of the run.
//!
//! Files are read through [`Confined`]: a scenario may name files (`path:`) only under its own
//! directory, after symbolic links are resolved, unless the command line widens that with
//! `--allow-path DIR`. In CI, scenarios come from pull requests and knetsim may run as root;
//! a scenario must not be a way to read, and echo back in a diagnostic, the runner's files.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use knetsim_model::source::{FileLoader, LoadError, read_capped};
use knetsim_model::{Diagnostic, FileId, Loaded, Scenario, SourceMap, Span};

use crate::EXIT_INVALID;

thread_local! {
    /// The `--allow-path` directories of the command being run. `main_with` sets them once
    /// per call (tests run calls on many threads at once, so this is per thread, not global).
    static ALLOWED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// Sets the directories beyond a scenario's own that its `path:` references may name.
pub fn set_allowed_paths(dirs: &[PathBuf]) {
    ALLOWED.with(|a| *a.borrow_mut() = dirs.to_vec());
}

/// A scenario, validated, with the files it was read from.
#[derive(Debug)]
pub struct Input {
    pub scenario: Scenario,
    pub sources: SourceMap,
}

/// Loads and validates a scenario, writing its diagnostics (warnings included) to `err`.
/// `Err(exit status)` when it has errors.
pub fn load_input(path: &Path, err: &mut dyn Write) -> Result<Input, i32> {
    load_with(path, err, |p, l| knetsim_model::load_scenario(p, l))
}

/// [`load_input`] with another reader of the top-level file (`plan` also takes a file
/// holding only a `cluster:` section).
pub fn load_with(
    path: &Path,
    err: &mut dyn Write,
    read: impl FnOnce(&Path, &dyn FileLoader) -> Loaded<Scenario>,
) -> Result<Input, i32> {
    let loader = Confined::for_file(path);
    let mut loaded = read(path, &loader);
    if let Some(scenario) = &loaded.value {
        let more = validate(scenario);
        loaded.diagnostics.extend(more);
        loaded
            .diagnostics
            .sort_by_key(|d| d.span.map(|s| (s.file, s.start, s.end)));
    }
    super::write_diagnostics(&loaded.sources, &loaded.diagnostics, err);
    let failed = loaded.diagnostics.iter().any(Diagnostic::is_error);
    match loaded.value {
        Some(scenario) if !failed => Ok(Input {
            scenario,
            sources: loaded.sources,
        }),
        _ => Err(EXIT_INVALID),
    }
}

/// What the model's reader leaves to the crates that own a section: `fabric:` (the
/// dataplane's), `plan:` (the planner's), `snapshot:` (the review crate's).
fn validate(scenario: &Scenario) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if let Err(d) = knetsim_dataplane::config::read_fabric(scenario.fabric.as_ref()) {
        diags.extend(d);
    }
    if let Err(d) = knetsim_plan::spec::read(scenario.plan.as_ref()) {
        diags.extend(d);
    }
    if let Some(cfg) = &scenario.cluster.ip_masq_agent {
        diags.extend(knetsim_dataplane::masq::masq_agent(cfg).1);
    }
    if let Err(d) = knetsim_review::queries::read(scenario) {
        diags.extend(d);
    }
    node_ips(scenario, &mut diags);
    dataplane_expectations(scenario, &mut diags);
    diags
}

/// `trace:` and `reachability:` expectations, checked for how they are written. The
/// dataplane's checker reports a malformed expectation as an error and one the cluster's state
/// cannot answer (a pod that does not exist, a family it lacks) as a failed expectation; asked
/// against a cluster with nothing in it, it therefore reports exactly the malformed ones,
/// without simulating the scenario.
fn dataplane_expectations(scenario: &Scenario, diags: &mut Vec<Diagnostic>) {
    let entries = scenario.dataplane_expectations();
    if entries.is_empty() {
        return;
    }
    let empty = Scenario {
        name: scenario.name.clone(),
        version: scenario.version,
        seed: scenario.seed,
        cluster: scenario.cluster.clone(),
        nodes: Vec::new(),
        manifests: Vec::new(),
        steps: Vec::new(),
        expect: Vec::new(),
        fabric: scenario.fabric.clone(),
        plan: None,
        snapshot: None,
    };
    let state = knetsim_control::simulate(&empty);
    let Ok(dp) = knetsim_dataplane::build(&state, &empty) else {
        return; // `fabric:` errors are reported by `validate` already.
    };
    for n in entries {
        if let Err(d) = knetsim_dataplane::check_expectation(&dp, &state, n) {
            diags.push(d);
        }
    }
}

/// What each node's kubelet would log about its `--node-ip` while it keeps running: entries
/// it cannot parse and ignores, and an address `validateNodeIP` refuses (the Node then has no
/// addresses). A `--node-ip` the kubelet exits on is the simulation's to report (an event).
fn node_ips(scenario: &Scenario, diags: &mut Vec<Diagnostic>) {
    use knetsim_model::scenario::Step;
    let added = scenario.steps.iter().filter_map(|s| match &s.value {
        Step::AddNodes(list) => Some(list.iter()),
        _ => None,
    });
    let specs = scenario.nodes.iter().chain(added.flatten());
    let cp = knetsim_control::components::configure(scenario.version, &scenario.cluster);
    for spec in specs {
        let Some(raw) = &spec.node_ip else { continue };
        let Ok(kubelet) = knetsim_control::components::kubelet_node(
            scenario.version,
            &cp.kubelet,
            &spec.kubelet,
            Some(raw.value.as_str()),
        ) else {
            continue;
        };
        if !kubelet.ignored_node_ips.is_empty() {
            // pkg/kubelet/server.go (RunKubelet), klog's structured form.
            let ips: Vec<String> = kubelet
                .ignored_node_ips
                .iter()
                .map(|ip| format!("{ip:?}"))
                .collect();
            diags.push(
                Diagnostic::warning(
                    raw.span,
                    format!(
                        "kubelet would log: \"Could not parse some node IP(s), ignoring them\" IPs=[{}]",
                        ips.join(",")
                    ),
                )
                .with_label("not an IP address")
                .with_help("the kubelet starts with the addresses it could parse"),
            );
        }
        if let knetsim_control::components::NodeAddresses::Refused(msg) =
            knetsim_control::components::node_addresses(scenario.version, &kubelet.node_ips)
        {
            // pkg/kubelet/kubelet_node_status.go setNodeStatus.
            diags.push(
                Diagnostic::warning(
                    raw.span,
                    format!(
                        "kubelet would log: \"Failed to set some node status fields\" err=\"{msg}\" node=\"{}\"",
                        spec.name.value
                    ),
                )
                .with_label("the kubelet does not publish this address")
                .with_help("the Node registers without addresses; `0.0.0.0` or `::` asks the kubelet to detect one"),
            );
        }
    }
}

/// The first character of the scenario file, for problems of the scenario as a whole.
pub fn file_start() -> Span {
    Span {
        file: FileId(0),
        start: 0,
        end: 0,
        line: 1,
        col: 1,
    }
}

/// Reads files for one scenario: the scenario file itself, and files under its directory or
/// under an `--allow-path` directory, symbolic links resolved.
#[derive(Debug)]
pub struct Confined {
    /// The scenario file, resolved (always readable: the user named it).
    top: PathBuf,
    /// Directories, resolved, under which files may be read.
    roots: Vec<PathBuf>,
}

impl Confined {
    pub fn for_file(path: &Path) -> Self {
        // A scenario file that cannot be resolved (it does not exist) keeps its written path,
        // so that reading it reports the operating system's reason.
        let top = std::fs::canonicalize(path).unwrap_or_else(|_| absolute(path));
        let mut roots: Vec<PathBuf> = top.parent().map(Path::to_path_buf).into_iter().collect();
        ALLOWED.with(|a| {
            roots.extend(
                a.borrow()
                    .iter()
                    .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| absolute(d))),
            )
        });
        Confined { top, roots }
    }

    fn allows(&self, resolved: &Path) -> bool {
        self.top == resolved || self.roots.iter().any(|r| resolved.starts_with(r))
    }

    /// The refusal. The allowed directories are named relative to the current directory
    /// when they are under it, as the user would type them (and as snapshots can hold them).
    fn outside(&self, resolved: PathBuf) -> LoadError {
        let cwd = std::env::current_dir().ok();
        let allowed = self
            .roots
            .iter()
            .map(|r| {
                cwd.as_deref()
                    .and_then(|c| r.strip_prefix(c).ok())
                    .filter(|rel| !rel.as_os_str().is_empty())
                    .map_or_else(|| r.clone(), Path::to_path_buf)
            })
            .collect();
        LoadError::Outside { resolved, allowed }
    }
}

impl FileLoader for Confined {
    fn load(&self, path: &Path) -> Result<String, String> {
        let bytes = self.load_bytes(path).map_err(|e| match e {
            LoadError::Io(r) => r,
            LoadError::Outside { resolved, .. } => {
                format!(
                    "`{}` is outside the scenario's directory",
                    resolved.display()
                )
            }
            LoadError::TooLarge { bytes } => format!("the file has {bytes} bytes"),
        })?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }

    fn load_bytes(&self, path: &Path) -> Result<Vec<u8>, LoadError> {
        // The path as written, folded without touching the filesystem, decides what a refusal
        // names: `../../etc/shadow` is refused as written, whether or not it exists (a path
        // through a symlinked directory that resolves inside is still read).
        let lexical = absolute(path);
        let inside = self.allows(&lexical);
        match std::fs::canonicalize(path) {
            Ok(resolved) if self.allows(&resolved) => read_capped(&resolved),
            Ok(resolved) if inside => Err(self.outside(resolved)),
            Err(e) if inside => Err(LoadError::Io(e.to_string())),
            Ok(_) | Err(_) => Err(self.outside(lexical)),
        }
    }
}

/// `path` made absolute against the current directory, with `.` and `dir/..` folded away
/// (no filesystem access).
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}
