//! The only code that touches the kernel: the real tools run through their text interfaces,
//! threads that enter a network namespace, sysctls, and the removal of what a run created.
//!
//! Safety rule of the whole crate, enforced here: every `ip` command carries `-n NS` with a
//! namespace this run created (or is a `netns add`/`netns del` of one), and every rule loader
//! runs under `ip netns exec NS`. Nothing here can name the machine's own namespace.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

/// Where `ip netns add` mounts the namespaces it names.
pub const NETNS_DIR: &str = "/run/netns";

/// The prefix every namespace of every run starts with (`--clean` looks for it).
pub const PREFIX: &str = "ksim-";

/// Set by the signal handler: no new command starts.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Commands running now (the signal handler waits for them before it removes namespaces, so
/// that an `ip netns add` under way cannot add one after the removal).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

struct InFlight;

impl InFlight {
    fn start() -> Result<InFlight, String> {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        if STOPPING.load(Ordering::SeqCst) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return Err("interrupted".into());
        }
        Ok(InFlight)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `program args…` with `stdin` fed in, and fails with its stderr when it fails.
pub fn run(program: &str, args: &[&str], stdin: &str) -> Result<(), String> {
    let _running = InFlight::start()?;
    run_anyway(program, args, stdin)
}

/// [`run`], returning the command's standard output.
pub fn run_output(program: &str, args: &[&str], stdin: &str) -> Result<String, String> {
    let _running = InFlight::start()?;
    let out = fed(program, args, stdin, Stdio::piped())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// `ip -n NS ARGS…`, returning what it prints.
pub fn ip_output(ns: &str, args: &[&str]) -> Result<String, String> {
    ours(ns)?;
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run_output("ip", &all, "")
}

/// [`exec_in`], returning what the program prints.
pub fn exec_in_output(ns: &str, program: &[&str], text: &str) -> Result<String, String> {
    ours(ns)?;
    let mut args = vec!["netns", "exec", ns];
    args.extend_from_slice(program);
    run_output("ip", &args, text)
}

/// [`run`], even while the signal handler stops the run (for the removal itself).
fn run_anyway(program: &str, args: &[&str], stdin: &str) -> Result<(), String> {
    let out = fed(program, args, stdin, Stdio::null())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `program` with `stdin` written to it, and waits for it (standard error captured).
fn fed(
    program: &str,
    args: &[&str],
    stdin: &str,
    stdout: Stdio,
) -> Result<std::process::Output, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        // A tool that stops reading early reports why on stderr; the write error adds nothing.
        let _ = input.write_all(stdin.as_bytes());
    }
    child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))
}

/// Checks a namespace name is one of a run's (the guard against ever touching another).
fn ours(ns: &str) -> Result<(), String> {
    if ns.starts_with(PREFIX) && !ns.contains('/') && ns.len() > PREFIX.len() {
        Ok(())
    } else {
        Err(format!(
            "refusing to act on namespace {ns:?}: not one of knetsim's"
        ))
    }
}

/// `ip -n NS -batch -`: link, address and route commands inside one namespace.
pub fn ip_batch(ns: &str, batch: &str) -> Result<(), String> {
    ours(ns)?;
    if batch.is_empty() {
        return Ok(());
    }
    run("ip", &["-n", ns, "-batch", "-"], batch)
}

/// Runs a rule loader (`iptables-restore`, `ip6tables-restore`, `nft -f -`, `ipset restore`)
/// inside one namespace with `text` on its standard input.
pub fn exec_in(ns: &str, program: &[&str], text: &str) -> Result<(), String> {
    ours(ns)?;
    let mut args = vec!["netns", "exec", ns];
    args.extend_from_slice(program);
    run("ip", &args, text)
}

/// Creates the named namespaces (one `ip -batch`).
pub fn add_namespaces(names: &[String]) -> Result<(), String> {
    let mut batch = String::new();
    for n in names {
        ours(n)?;
        batch.push_str(&format!("netns add {n}\n"));
    }
    run("ip", &["-batch", "-"], &batch)
}

/// Deletes the named namespaces, carrying on past errors; the veths, bridges, addresses,
/// routes, rules and conntrack entries inside go with them.
pub fn delete_namespaces(names: &[String]) -> Result<(), String> {
    let mut batch = String::new();
    for n in names {
        ours(n)?;
        batch.push_str(&format!("netns del {n}\n"));
    }
    if batch.is_empty() {
        return Ok(());
    }
    // Another `--clean` (or a run's own teardown) may delete some of them meanwhile: what
    // matters is that none is left.
    match run_anyway("ip", &["-force", "-batch", "-"], &batch) {
        Err(_) if names.iter().all(|n| !Path::new(NETNS_DIR).join(n).exists()) => Ok(()),
        r => r,
    }
}

/// The namespaces under [`NETNS_DIR`] whose name starts with `prefix`.
pub fn namespaces_with(prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Moves the calling thread into a namespace of this run. Only ever called on threads
/// spawned for the purpose, which end (or move on to another of the run's namespaces)
/// afterwards: the main thread stays in the machine's namespace.
pub fn enter(ns: &str) -> Result<(), String> {
    ours(ns)?;
    let f = File::open(Path::new(NETNS_DIR).join(ns))
        .map_err(|e| format!("cannot open namespace {ns}: {e}"))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("cannot enter namespace {ns}: {e}"))
}

/// Writes sysctls in a namespace: a thread enters it and writes `/proc/sys/net/…`, which a
/// thread sees for the namespace it is in.
pub fn sysctls(ns: &str, settings: &[(&str, &str)]) -> Result<(), String> {
    let ns = ns.to_string();
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::thread::spawn(move || -> Result<(), String> {
        enter(&ns)?;
        for (k, v) in &settings {
            if !k.starts_with("net/") {
                return Err(format!(
                    "refusing to write sysctl {k}: only net/ ones are per namespace"
                ));
            }
            std::fs::write(Path::new("/proc/sys").join(k), v)
                .map_err(|e| format!("sysctl {k}={v} in {ns}: {e}"))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| "the sysctl thread panicked".to_string())?
}

/// Prefixes of the runs in progress in this process, for the Ctrl-C handler.
static ACTIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Registers a run's prefix and installs (once) the handler that removes every running
/// run's namespaces on SIGINT/SIGTERM/SIGHUP before the process exits with 130.
pub fn register(prefix: &str) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Fails only when another handler is installed; then that one decides.
        let _ = ctrlc::set_handler(|| {
            STOPPING.store(true, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while IN_FLIGHT.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let prefixes = ACTIVE.lock().map(|a| a.clone()).unwrap_or_default();
            for p in prefixes {
                let _ = delete_namespaces(&namespaces_with(&p));
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("{p}cni")));
            }
            eprintln!("knetsim emulate: interrupted; namespaces removed");
            std::process::exit(130);
        });
    });
    if let Ok(mut a) = ACTIVE.lock() {
        a.push(prefix.to_string());
    }
}

/// Forgets a run's prefix (its namespaces are gone, or kept on purpose).
pub fn unregister(prefix: &str) {
    if let Ok(mut a) = ACTIVE.lock() {
        a.retain(|p| p != prefix);
    }
}

/// Whether a namespace belongs to a run in progress in this process.
pub fn is_active(name: &str) -> bool {
    ACTIVE
        .lock()
        .map(|a| a.iter().any(|p| name.starts_with(p.as_str())))
        .unwrap_or(true)
}

/// Whether process `pid` still runs.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Whether the process runs as root (network namespaces need CAP_SYS_ADMIN and
/// CAP_NET_ADMIN; root is the simple, checkable proxy).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
