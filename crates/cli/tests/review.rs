//! `knetsim snapshot` and `knetsim diff`: the bundled scenarios carry knetsim snapshots
//! (`scenarios/**/__knetsim__/*.snap`), checked here through the command itself; the diffs
//! the issue asks for are snapshotted; bad input is located and never overwritten.

use std::path::{Path, PathBuf};

use crate::harness::{knetsim, root, snapshot_settings};

#[test]
fn bundled_scenarios_match_their_knetsim_snapshots() {
    let out = knetsim(&["snapshot", "scenarios"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let last = out.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with(" changed, 0 new, 0 invalid"), "{last}");
    assert!(
        !out.stdout.contains("CHANGED") && !out.stdout.contains("NEW"),
        "{}",
        out.stdout
    );
}

/// A scratch copy of `scenarios/kind` (with its manifests and snapshots).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("knetsim-review-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&root().join("scenarios/kind"), &dir.join("kind"));
        Scratch(dir)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn arg(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

#[test]
fn a_changed_node_mask_fails_and_names_the_podcidrs_that_moved() {
    let s = Scratch::new("mask");
    let file = s.path("kind/dual-stack-defaults.yaml");
    let text = std::fs::read_to_string(&file).expect("scenario");
    let edit = "    allocate-node-cidrs: true\n";
    assert!(text.contains(edit), "{text}");
    std::fs::write(
        &file,
        text.replace(edit, &format!("{edit}    node-cidr-mask-size-ipv4: 25\n")),
    )
    .expect("write");
    let out = knetsim(&["snapshot", &s.arg("kind")]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for moved in [
        "kind-worker",
        "podCIDRs: [10.244.1.0/24, fd00:10:244:1::/64] -> [10.244.0.128/25, fd00:10:244:1::/64]",
    ] {
        assert!(out.stdout.contains(moved), "{moved} not in\n{}", out.stdout);
    }
    assert!(
        out.stdout.contains("CHANGED kind-dual-stack-defaults"),
        "{}",
        out.stdout
    );
    // `--update` accepts the change; then the snapshot matches.
    assert_eq!(knetsim(&["snapshot", &s.arg("kind"), "--update"]).code, 0);
    let again = knetsim(&["snapshot", &s.arg("kind")]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(
        !s.path("kind/__knetsim__/dual-stack-defaults.snap.new")
            .exists()
    );
}

/// The stored snapshot, broken by hand, is a located error and is left as it is.
#[test]
fn an_unreadable_snapshot_is_a_located_error_and_is_kept() {
    let s = Scratch::new("broken");
    let snap = s.path("kind/__knetsim__/dual-stack-defaults.snap");
    let good = std::fs::read_to_string(&snap).expect("snapshot");
    for (broken, at) in [
        (good.replacen("format: 1", "format: 9", 1), ":3:9"),
        (good.replacen("nodes:\n", "nodes:\n  [oops\n", 1), ":"),
    ] {
        std::fs::write(&snap, &broken).expect("write");
        let out = knetsim(&["snapshot", &s.arg("kind")]);
        assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
        let located = format!("{}{at}", snap.display());
        assert!(
            out.stderr.contains(&located),
            "{located} not in\n{}",
            out.stderr
        );
        assert!(out.stdout.contains("INVALID"), "{}", out.stdout);
        assert_eq!(std::fs::read_to_string(&snap).expect("kept"), broken);
    }
}

/// A missing snapshot: pending `.snap.new` and success outside CI; failure and nothing
/// written under `CI` (the binary itself, for its environment).
#[test]
fn a_missing_snapshot_is_pending_outside_ci_and_fails_under_ci() {
    let s = Scratch::new("missing");
    let snap = s.path("kind/__knetsim__/dual-stack-defaults.snap");
    std::fs::remove_file(&snap).expect("remove");
    let run = |ci: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_knetsim"));
        cmd.args(["snapshot", &s.arg("kind")]);
        match ci {
            Some(v) => cmd.env("CI", v),
            None => cmd.env_remove("CI"),
        };
        let out = cmd.output().expect("run knetsim");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = run(Some("true"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("MISSING"), "{stdout}");
    assert!(
        !snap.exists()
            && !s
                .path("kind/__knetsim__/dual-stack-defaults.snap.new")
                .exists()
    );
    let (code, stdout) = run(Some("false"));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("NEW"), "{stdout}");
    assert!(
        s.path("kind/__knetsim__/dual-stack-defaults.snap.new")
            .exists()
    );
    assert!(!snap.exists());
}

fn diff_case(name: &str, args: &[&str], code: i32) -> String {
    let out = knetsim(args);
    assert_eq!(out.code, code, "{}\n{}", out.stdout, out.stderr);
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    snapshot_settings("review").bind(|| insta::assert_snapshot!(name, text));
    text
}

#[test]
fn kubeadm_guide_before_and_after_its_dual_stack_edits() {
    let text = diff_case(
        "diff_kubeadm_guide_dual_stack",
        &[
            "diff",
            "scenarios/kubeadm/guide-before-dual-stack.yaml",
            "scenarios/kubeadm/guide-1.34-accepted.yaml",
        ],
        1,
    );
    for gained in [
        "podCIDRs: [10.128.1.0/24] -> [10.128.1.0/24, fc00::8:10:0/108]",
        "ipFamilies: [IPv4] -> [IPv4, IPv6]",
        "+ default/my-service-ipv6 (new)",
    ] {
        assert!(text.contains(gained), "{gained} not in\n{text}");
    }
}

#[test]
fn an_ipv6_node_mask_that_does_not_fit_stops_kube_controller_manager() {
    let text = diff_case(
        "diff_kubeadm_guide_set_mask_64",
        &[
            "diff",
            "scenarios/kubeadm/guide-1.34-accepted.yaml",
            "--set",
            "kube-controller-manager.node-cidr-mask-size-ipv6=64",
        ],
        1,
    );
    assert!(text.contains("started: true -> false"), "{text}");
    assert!(
        text.contains("+ Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family"),
        "{text}"
    );
}

#[test]
fn the_guide_service_range_fails_on_1_30_and_starts_on_1_35() {
    let text = diff_case(
        "diff_kubeadm_guide_1.30_to_1.35",
        &[
            "diff",
            "scenarios/kubeadm/guide-1.34-accepted.yaml",
            "--version",
            "1.30",
            "--version",
            "1.35",
        ],
        1,
    );
    assert!(text.contains("kubernetesVersion: 1.30 -> 1.35"), "{text}");
    assert!(text.contains("- specified --service-cluster-ip-range[1] is too large; for 128-bit addresses, the mask must be >= 108"), "{text}");
}

/// Markdown: every table row has the header's four cells (pipes in values are escaped).
#[test]
fn markdown_renders_as_tables() {
    let text = diff_case(
        "diff_kubeadm_guide_dual_stack_markdown",
        &[
            "diff",
            "scenarios/kubeadm/guide-before-dual-stack.yaml",
            "scenarios/kubeadm/guide-1.34-accepted.yaml",
            "-o",
            "markdown",
        ],
        1,
    );
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count() - 1;
        assert_eq!(cells, 4, "{line}");
        rows += 1;
    }
    assert!(rows > 20, "{text}");
    assert!(text.contains("| object | fact | before | after |"));
}

#[test]
fn json_holds_the_whole_diff() {
    let out = knetsim(&[
        "diff",
        "scenarios/kubeadm/guide-1.34-accepted.yaml",
        "--set",
        "kube-controller-manager.node-cidr-mask-size-ipv6=64",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["changed"], true);
    assert_eq!(v["areas"][0]["area"], "components");
    assert_eq!(
        v["areas"][0]["objects"][0]["name"],
        "kube-controller-manager"
    );
}

#[test]
fn a_scenario_against_itself_is_the_same() {
    let out = knetsim(&[
        "diff",
        "scenarios/kind/dual-stack-defaults.yaml",
        "scenarios/kind/dual-stack-defaults.yaml",
        "--rules",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.ends_with("\nno changes\n"), "{}", out.stdout);
}

/// A reach matrix given on the command line: the cells whose verdict changes.
#[test]
fn reachability_cells_that_change() {
    diff_case(
        "diff_reach_nftables",
        &[
            "diff",
            "scenarios/dataplane/kind-iptables.yaml",
            "--set",
            "kube-proxy.mode=nftables",
            "--rules",
            "--reach",
            "default/client,external",
            "--to",
            "svc:default/web,svc:default/nothing",
        ],
        1,
    );
}

#[test]
fn bad_input_reports_every_problem() {
    diff_case(
        "diff_two_invalid_scenarios",
        &[
            "diff",
            "scenarios/bad/07-unknown-flag-typo.yaml",
            "scenarios/bad/10-invalid-cidr.yaml",
        ],
        2,
    );
    diff_case(
        "diff_set_typos",
        &[
            "diff",
            "scenarios/kind/dual-stack-defaults.yaml",
            "--set",
            "kube-controller-manger.node-cidr-mask-size-ipv6=64",
            "--set",
            "kube-controller-manager.node-cidr-mask-size-ip6=64",
            "--set",
            "kube-proxy.mode=ipvsx",
        ],
        2,
    );
}

#[test]
fn output_is_identical_across_runs_and_thread_counts() {
    let cases: [&[&str]; 2] = [
        &["snapshot", "scenarios/dataplane", "scenarios/kind"],
        &[
            "diff",
            "scenarios/kubeadm/guide-before-dual-stack.yaml",
            "scenarios/kubeadm/guide-1.34-accepted.yaml",
            "-o",
            "json",
        ],
    ];
    for args in cases {
        let first = knetsim(args).stdout;
        for _ in 0..3 {
            assert_eq!(knetsim(args).stdout, first, "{args:?} changed between runs");
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let out = pool.install(|| knetsim(args).stdout);
            assert_eq!(out, first, "{args:?} differs with {threads} thread(s)");
        }
    }
    // The snapshot files themselves, written with one thread and with two.
    let s = Scratch::new("threads");
    let mut texts = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| knetsim(&["snapshot", &s.arg("kind"), "--update", "--rules"]));
        texts.push(
            std::fs::read_to_string(s.path("kind/__knetsim__/dual-stack-defaults.snap"))
                .expect("written"),
        );
    }
    assert_eq!(texts[0], texts[1]);
}
