//! Project automation: `cargo xtask <task>`.
//!
//! - `test`: the whole test suite — every crate's tests (nextest when installed, else
//!   `cargo test`), doc tests, and the kernel check that loads generated rules into
//!   `iptables-restore --test` / `ip6tables-restore --test` / `nft -c -f` inside a network
//!   namespace of its own.
//! - `ci`: formatting, clippy with warnings denied, then `test` (what `.ci/run` runs).
//! - `bench`: the criterion benchmarks.
//! - `fuzz-corpus`: the fuzz targets' seed corpus and dictionary, generated from `scenarios/`
//!   into `fuzz/corpus/` (module `fuzz`).
//! - `fuzz-smoke [SECONDS]`: builds every fuzz target with `cargo fuzz --sanitizer none` (stable
//!   toolchain) and runs each for SECONDS (default 20) on that corpus; what `.ci/run` runs.
//!
//! xtask has no dependencies on purpose: it only runs commands.

mod fuzz;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(),
        Some("bench") => run("cargo", &["bench", "-p", "knetsim-benches"]),
        Some("fuzz-corpus") => fuzz::corpus().map(|n| eprintln!("xtask: {n} seed inputs")),
        Some("fuzz-smoke") => match args.get(1).map(|s| s.parse::<u64>()) {
            None => fuzz::smoke(20),
            Some(Ok(seconds)) => fuzz::smoke(seconds),
            Some(Err(e)) => Err(format!("fuzz-smoke SECONDS: {e}")),
        },
        _ => {
            eprintln!("usage: cargo xtask <test|ci|bench|fuzz-corpus|fuzz-smoke [SECONDS]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_env(program, args, &[])
}

/// [`run`] with environment variables set for the command.
fn run_env(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed with {status}",
            args.join(" ")
        ))
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    test()
}

/// Where the kernel check's rule files go: `kernel-load` under Cargo's target directory
/// (`CARGO_TARGET_DIR` when set, as Cargo itself reads it). The dataplane's fixture test
/// writes there too, told by `KNETSIM_KERNEL_LOAD_DIR`.
fn kernel_load_dir() -> String {
    let target = std::env::var("CARGO_TARGET_DIR")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "target".to_string());
    // Absolute: tests run in their crate's directory.
    let dir = std::env::current_dir()
        .unwrap_or_default()
        .join(target)
        .join("kernel-load");
    dir.to_string_lossy().into_owned()
}

fn test() -> Result<(), String> {
    let dir = kernel_load_dir();
    let envs = [("KNETSIM_KERNEL_LOAD_DIR", dir.as_str())];
    if have("cargo-nextest") {
        run_env(
            "cargo",
            &[
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ],
            &envs,
        )?;
    } else {
        run_env(
            "cargo",
            &["test", "--workspace", "--locked", "--no-fail-fast"],
            &envs,
        )?;
    }
    run("cargo", &["test", "--workspace", "--locked", "--doc"])?;
    kernel_check()
}

/// Renders a ruleset for a fixture cluster and loads it into the kernel's parsers inside a
/// fresh network namespace. Needs root and the iptables/nftables tools; on a machine without
/// them it says what to install, and fails under CI, where `.ci/run` installs them.
fn kernel_check() -> Result<(), String> {
    let script = "crates/dataplane/tests/kernel-load.sh";
    if !std::path::Path::new(script).exists() {
        return Ok(());
    }
    let tools = [
        "iptables-restore",
        "ip6tables-restore",
        "nft",
        "ipset",
        "unshare",
    ];
    let mut missing: Vec<&str> = tools.into_iter().filter(|p| !have(p)).collect();
    if !missing.is_empty() && is_root() && have("apt-get") {
        // The README promises that this one command sets up what the tests need.
        eprintln!(
            "xtask: installing the kernel check's tools ({})",
            missing.join(", ")
        );
        run("apt-get", &["update", "-qq"])?;
        run(
            "apt-get",
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "iptables",
                "nftables",
                "ipset",
                "util-linux",
            ],
        )?;
        missing = tools.into_iter().filter(|p| !have(p)).collect();
    }
    if !missing.is_empty() {
        let msg = format!(
            "kernel check needs {} (apt-get install -y iptables nftables ipset util-linux)",
            missing.join(", ")
        );
        if std::env::var_os("CI").is_some() {
            return Err(msg);
        }
        eprintln!("xtask: skipping the kernel check: {msg}");
        return Ok(());
    }
    // The dataplane's fixture test (run just before, with the rest of the suite) wrote its
    // rule files to target/kernel-load; add the rules of bundled scenarios as the CLI renders
    // them, then load all of them.
    let dir = kernel_load_dir();
    let dir = dir.as_str();
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for scenario in KERNEL_CHECK_SCENARIOS {
        run(
            "cargo",
            &[
                "run",
                "--quiet",
                "--locked",
                "-p",
                "knetsim",
                "--",
                "rules",
                scenario,
                "--write-dir",
                dir,
            ],
        )?;
    }
    run("bash", &[script, dir])
}

/// Bundled scenarios whose rules the kernel check loads: iptables and nftables mode, kindnet,
/// kubenet and Calico, ip-masq-agent, load balancers with source ranges.
const KERNEL_CHECK_SCENARIOS: &[&str] = &[
    "scenarios/kind/dual-stack-defaults.yaml",
    "scenarios/kubeadm/guide-1.34-accepted.yaml",
    "scenarios/versions/1.17-alpha-ipfamily.yaml",
    "scenarios/dataplane/kind-nftables.yaml",
    "scenarios/dataplane/ip-masq-agent.yaml",
    "scenarios/dataplane/calico-guide.yaml",
    "scenarios/dataplane/loadbalancer-and-forwarding.yaml",
];
