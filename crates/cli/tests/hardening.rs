//! Bad input, as every subcommand meets it: the malformed-input corpus (`scenarios/bad/`) is
//! refused alike by `check` and by every subcommand that reads a scenario (one validation),
//! every refusal is located, and no input panics.

use crate::harness::{knetsim, root, snapshot_settings};

/// The corpus, relative to the workspace root.
fn corpus() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("scenarios/bad"))
        .expect("bad corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("scenarios/bad/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// Every subcommand that reads one scenario, with the arguments it needs besides the file.
const SUBCOMMANDS: &[&[&str]] = &[
    &["run"],
    &["run", "--summary", "-o", "json"],
    &["test"],
    &["rules"],
    &["rules", "--format", "nft"],
    &["routes"],
    &["graph"],
    &["plan", "--no-growth", "--no-sweep"],
    &["trace", "--from", "external", "--to", "203.0.113.10"],
    &["reach", "--from", "nodes:*", "--to", "nodes:*"],
];

#[test]
fn every_bad_input_is_refused_with_its_place_and_snapshotted() {
    let files = corpus();
    assert!(files.len() >= 70, "the corpus has {} files", files.len());
    for file in files {
        let out = knetsim(&["check", &file]);
        let warning_only = file.contains("-warning");
        assert_eq!(
            out.code,
            if warning_only { 0 } else { 2 },
            "{file}: {}",
            out.stderr
        );
        let first = if warning_only { "warning" } else { "error" };
        assert!(out.stderr.contains(first), "{file}: {}", out.stderr);
        // Every diagnostic names its file, line and column.
        let headers = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error") || l.starts_with("warning"))
            .count();
        let places = out.stderr.lines().filter(|l| l.contains(" --> ")).count();
        assert_eq!(
            headers, places,
            "{file}: a diagnostic has no place:\n{}",
            out.stderr
        );
        let stem = file
            .trim_start_matches("scenarios/bad/")
            .trim_end_matches(".yaml")
            .to_string();
        snapshot_settings("bad").bind(|| insta::assert_snapshot!(stem, out.stderr));
    }
}

#[test]
fn every_subcommand_refuses_what_check_refuses_and_none_panics() {
    for file in corpus() {
        let check = knetsim(&["check", &file]);
        for sub in SUBCOMMANDS {
            let mut args: Vec<&str> = vec![sub[0]];
            args.push(&file);
            args.extend_from_slice(&sub[1..]);
            // A panic here fails the test: main_with runs in this thread.
            let out = knetsim(&args);
            if check.code == 2 {
                assert_eq!(out.code, 2, "{args:?} accepted what check refuses");
                assert!(
                    out.stderr.starts_with(&check.stderr),
                    "{args:?} reports otherwise than check:\n{}\n---\n{}",
                    out.stderr,
                    check.stderr
                );
            } else {
                assert_ne!(out.code, 101, "{args:?}");
            }
        }
    }
}

#[test]
fn a_refused_path_prints_nothing_of_the_file() {
    let out = knetsim(&["check", "scenarios/bad/66-path-outside-the-scenario.yaml"]);
    assert_eq!(out.code, 2);
    assert!(!out.stderr.contains("root:"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("outside the directories").count(),
        2,
        "{}",
        out.stderr
    );
    // Widened on the command line, the file is read (and, not being a manifest, refused for
    // what it holds).
    let out = knetsim(&[
        "check",
        "--allow-path",
        "/etc",
        "scenarios/bad/66-path-outside-the-scenario.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        !out.stderr.contains("outside the directories"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_symbolic_link_out_of_the_scenario_directory_is_refused() {
    let dir = std::env::temp_dir().join(format!("knetsim-symlink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let link = dir.join("app.yaml");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
    let scenario = dir.join("s.yaml");
    std::fs::write(&scenario, "name: s\nmanifests:\n  - path: app.yaml\n").expect("write");
    let out = knetsim(&["check", &scenario.to_string_lossy()]);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("resolves to `/etc/passwd`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("root:"), "{}", out.stderr);
}

#[test]
fn rules_and_routes_without_nodes_say_where() {
    for sub in ["rules", "routes"] {
        let out = knetsim(&[
            sub,
            "scenarios/bad/61-ip-masq-agent-ipv6-without-enable-warning.yaml",
        ]);
        assert_eq!(out.code, 2, "{sub}");
        assert!(
            out.stderr.contains(
                "error: the scenario has no nodes, so no node has routes or rules to show\n --> scenarios/bad/61-ip-masq-agent-ipv6-without-enable-warning.yaml:1:1"
            ),
            "{sub}: {}",
            out.stderr
        );
    }
}
