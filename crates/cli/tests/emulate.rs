//! `knetsim emulate` on the real kernel: every probe agrees, the machine's own network
//! namespace is unchanged, and nothing is left behind — after a run, after Ctrl-C, and after
//! runs killed at random points and one `--clean`.
//!
//! These tests need Linux, root and the iptables/nftables/iproute2 tools (`.ci/run` installs
//! them); elsewhere each says why it is skipped and passes.

use std::process::Command;
use std::time::Duration;

use crate::harness::{knetsim, root};

/// Why emulation cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("not Linux".into());
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    for tool in [
        "ip",
        "iptables-restore",
        "ip6tables-restore",
        "nft",
        "iptables-save",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

macro_rules! need_emulation {
    () => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIPPED: knetsim emulate needs Linux, root and the network tools: {why}");
            return;
        }
    };
}

fn stdout_of(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The machine's own namespace as the issue asks it hashed: `ip -j addr` (address lifetimes
/// left out: they count down by themselves), `ip -j route` of both families,
/// `nft list ruleset`, `iptables-save` and `ip6tables-save` (counters and the dated comment
/// left out: traffic and the clock change those).
fn machine_state() -> Vec<(String, String)> {
    let mut addr: serde_json::Value =
        serde_json::from_str(&stdout_of("ip", &["-j", "addr"])).expect("ip -j addr is JSON");
    if let Some(links) = addr.as_array_mut() {
        for link in links {
            if let Some(infos) = link.get_mut("addr_info").and_then(|a| a.as_array_mut()) {
                for info in infos.iter_mut().filter_map(|i| i.as_object_mut()) {
                    info.remove("valid_life_time");
                    info.remove("preferred_life_time");
                }
            }
        }
    }
    let save = |tool: &str| {
        stdout_of(tool, &[])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.find(" [") {
                Some(i) if l.starts_with(':') => l[..i].to_string(),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    vec![
        ("ip -j addr".into(), addr.to_string()),
        ("ip -j route".into(), stdout_of("ip", &["-j", "route"])),
        (
            "ip -6 -j route".into(),
            stdout_of("ip", &["-6", "-j", "route"]),
        ),
        (
            "nft list ruleset".into(),
            stdout_of("nft", &["list", "ruleset"]),
        ),
        ("iptables-save".into(), save("iptables-save")),
        ("ip6tables-save".into(), save("ip6tables-save")),
    ]
}

/// Namespaces of process `pid`'s runs.
fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("ksim-{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// The last line's counts: `N probes: A agree, D disagree`.
fn summary(stdout: &str) -> (usize, usize, usize) {
    let last = stdout.lines().last().unwrap_or_default();
    let nums: Vec<usize> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(
        nums.len() == 3 && last.ends_with(" disagree"),
        "last line {last:?}"
    );
    (nums[0], nums[1], nums[2])
}

#[test]
fn kind_clusters_agree_with_the_kernel_and_leave_the_machine_unchanged() {
    need_emulation!();
    let before = machine_state();
    // kind's defaults in both kube-proxy modes: ClusterIP, NodePort (Cluster and Local),
    // hairpin, a Service without endpoints, pod to pod, egress masquerade, both families.
    for file in [
        "scenarios/dataplane/kind-iptables.yaml",
        "scenarios/dataplane/kind-nftables.yaml",
    ] {
        let out = knetsim(&["emulate", file]);
        let (n, agree, disagree) = summary(&out.stdout);
        assert_eq!(
            (out.code, disagree),
            (0, 0),
            "{file}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(n, agree);
        assert!(n >= 200, "{file}: only {n} probes");
        // Every line is a probe with both sides.
        for line in out.stdout.lines().take(n) {
            assert!(
                line.starts_with("agree ") && line.contains(" kernel: "),
                "{line}"
            );
        }
    }
    let after = machine_state();
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert!(
            b == a,
            "the machine's `{what}` changed:\nbefore:\n{b}\nafter:\n{a}"
        );
    }
    assert_eq!(namespaces_of(std::process::id()), Vec::<String>::new());
}

#[test]
fn a_reach_matrix_on_the_command_line_is_probed_cell_by_cell() {
    need_emulation!();
    let file = "scenarios/dataplane/kind-iptables.yaml";
    let base = summary(&knetsim(&["emulate", file]).stdout).0;
    // README's matrix: 6 sources x 4 destinations, external to itself among them (the kernel
    // delivers it on the host; the simulator said dropped until emulation showed it).
    let out = knetsim(&[
        "emulate",
        file,
        "--reach",
        "pods:default/app=web,default/client,node:kind-worker,external",
        "--to",
        "svc:default/web,svc:default/nothing,default/echo,external",
        "--family",
        "IPv6",
        "--port",
        "8080",
    ]);
    let (n, agree, disagree) = summary(&out.stdout);
    assert_eq!(
        (out.code, disagree),
        (0, 0),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(n, agree);
    // The 24 cells, less those the standard set and the expectations already probe (a probe
    // is sent once however many ask for it).
    assert!(n > base && n <= base + 24, "{base} -> {n}:\n{}", out.stdout);
    assert!(
        out.stdout
            .contains("tcp IPv6 external -> external :8080  sim: delivered"),
        "{}",
        out.stdout
    );
    // A selector that matches nothing is refused with reach's message, before anything is
    // built.
    let out = knetsim(&["emulate", file, "--reach", "pods:nope", "--to", "external"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("namespace \"nope\" not found"),
        "{}",
        out.stderr
    );
}

#[test]
fn keep_leaves_the_namespaces_and_clean_removes_them() {
    need_emulation!();
    let out = knetsim(&[
        "emulate",
        "--keep",
        "scenarios/kind/dual-stack-defaults.yaml",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("ip netns exec ksim-"), "{}", out.stderr);
    let kept = namespaces_of(std::process::id());
    // underlay, external, 3 nodes, the pods.
    assert!(kept.len() > 5, "{kept:?}");
    // A kept node namespace holds what `knetsim routes` printed for it.
    let node0 = kept
        .iter()
        .find(|n| n.ends_with("-n0"))
        .expect("a node namespace");
    let routes = stdout_of("ip", &["-n", node0, "route"]);
    assert!(routes.contains("default via "), "{routes}");
    let out = knetsim(&["emulate", "--clean"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(namespaces_of(std::process::id()), Vec::<String>::new());
}

/// Runs the binary on the kind scenario and stops it after `delay` with `signal`.
fn interrupted_run(delay: Duration, signal: &str) -> u32 {
    let bin = env!("CARGO_BIN_EXE_knetsim");
    let mut child = Command::new(bin)
        .args(["emulate", "scenarios/dataplane/kind-iptables.yaml"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("knetsim runs");
    std::thread::sleep(delay);
    let pid = child.id();
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    let _ = child.wait();
    // An `ip` the run had started finishes its batch on its own.
    std::thread::sleep(Duration::from_millis(300));
    pid
}

#[test]
fn ctrl_c_removes_everything_and_clean_removes_what_killed_runs_left() {
    need_emulation!();
    let before = machine_state();
    // SIGINT: the handler removes the run's namespaces before exiting.
    for ms in [150, 400, 900] {
        let pid = interrupted_run(Duration::from_millis(ms), "-INT");
        assert_eq!(
            namespaces_of(pid),
            Vec::<String>::new(),
            "after SIGINT at {ms} ms"
        );
    }
    // 20 runs killed (SIGKILL) at points spread over loading, the build, the probes and the
    // teardown: leftovers, then one --clean.
    let mut pids = Vec::new();
    for i in 0..20u64 {
        let ms = 10 + i * i * 6 + (i * 37) % 23;
        pids.push(interrupted_run(Duration::from_millis(ms), "-KILL"));
    }
    let out = knetsim(&["emulate", "--clean"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let temp: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    for pid in pids {
        assert_eq!(namespaces_of(pid), Vec::<String>::new());
        // host-local's state directories go too.
        let prefix = format!("ksim-{pid}-");
        assert!(
            !temp.iter().any(|n| n.starts_with(&prefix)),
            "{pid}: {temp:?}"
        );
    }
    let after = machine_state();
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        assert!(b == a, "the machine's `{what}` changed");
    }
}

#[test]
fn without_root_it_says_so_and_exits_2() {
    if cannot_run().is_some() {
        eprintln!("SKIPPED: needs root to drop to another user");
        return;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v setpriv"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: setpriv (util-linux) is not installed");
        return;
    }
    // A copy the unprivileged user can run, wherever the build directory is.
    let bin = std::env::temp_dir().join(format!("knetsim-emulate-test-{}", std::process::id()));
    std::fs::copy(env!("CARGO_BIN_EXE_knetsim"), &bin).expect("copy the binary");
    let scenario = root().join("scenarios/dataplane/kind-iptables.yaml");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("emulate")
        .arg(&scenario)
        .output()
        .expect("setpriv runs");
    let _ = std::fs::remove_file(&bin);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(out.stdout.is_empty());
}
