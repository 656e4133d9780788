//! `knetsim test` as CI runs it: expectations that fail (including those the cluster's state
//! cannot answer) with their located reasons and exit status 1, the JUnit report, and GitHub
//! Actions workflow commands. The scenarios that fail on purpose are in `scenarios/failing/`.

use std::process::Command;

use crate::harness::{knetsim, root, snapshot_settings};

const FAILING: &str = "scenarios/failing/ipv4-cluster-dual-stack-expectations.yaml";
const BAD: &str = "scenarios/bad/07-unknown-flag-typo.yaml";

/// A trace or reachability cell the state cannot answer (a pod with no IPv6 address, a
/// Service with no IPv6 cluster IP) is a failed expectation with the tracer's reason: exit
/// status 1, not an invalid scenario (2).
#[test]
fn expectations_the_state_cannot_answer_fail_with_their_reason() {
    let out = knetsim(&["test", FAILING]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "no diagnostics: the scenario is valid");
    assert!(
        out.stdout
            .contains(":71:7: trace default/client -> 2001:db8:ffff::10 (IPv6): cannot trace: source: pod default/client has no IPv6 address\n"),
        "{}",
        out.stdout
    );
    snapshot_settings("ci").bind(|| insta::assert_snapshot!("test-failing", out.stdout));
    // `knetsim test scenarios` skips `failing/` as it skips `bad/`: that it exits 0 is
    // `every_scenario_meets_its_expectations`.
}

/// A malformed dataplane expectation is still an invalid scenario.
#[test]
fn a_malformed_dataplane_expectation_is_still_invalid() {
    let dir = std::env::temp_dir().join(format!("knetsim-ci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = std::fs::read_to_string(root().join(FAILING)).expect("scenario");
    let file = dir.join("malformed.yaml");
    std::fs::write(
        &file,
        text.replace("to: \"2001:db8:ffff::10\"", "to: \"svc:web\""),
    )
    .unwrap();
    let out = knetsim(&["test", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("cannot trace: destination: \"svc:web\" is not svc:ns/name[:port]"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JUnit report parses back, a suite per scenario and a case per expectation, agreeing
/// with what `knetsim test` printed; it is snapshotted so that its shape is reviewed.
#[test]
fn junit_report_parses_back_and_agrees_with_the_text() {
    let xml_path = std::env::temp_dir().join(format!("knetsim-junit-{}.xml", std::process::id()));
    let xml_arg = xml_path.to_str().expect("utf-8 path");
    let out = knetsim(&[
        "test",
        "scenarios/kubeadm",
        FAILING,
        BAD,
        "--junit",
        xml_arg,
    ]);
    assert_eq!(out.code, 2, "an invalid scenario: {}", out.stdout);
    let xml = std::fs::read_to_string(&xml_path).expect("the report was written");
    let _ = std::fs::remove_file(&xml_path);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    // One suite per line of the text output before the total.
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("  ") && !l.ends_with(" failed"))
        .collect();
    assert_eq!(suites.len(), lines.len(), "{}", out.stdout);
    let count = |n: roxmltree::Node, a: &str| -> usize {
        n.attribute(a).expect(a).parse().expect("a number")
    };
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for (suite, line) in suites.iter().zip(&lines) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        let file = suite.attribute("file").expect("file");
        assert!(line.contains(file), "{line} / {file}");
        let cases: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
        assert_eq!(cases.len(), count(*suite, "tests"));
        let failed = cases
            .iter()
            .filter(|c| {
                c.first_element_child()
                    .is_some_and(|f| f.has_tag_name("failure"))
            })
            .count();
        let errored = cases
            .iter()
            .filter(|c| {
                c.first_element_child()
                    .is_some_and(|f| f.has_tag_name("error"))
            })
            .count();
        assert_eq!(failed, count(*suite, "failures"));
        assert_eq!(errored, count(*suite, "errors"));
        match line.split(' ').next() {
            Some("PASS") => assert_eq!((failed, errored), (0, 0), "{line}"),
            Some("FAIL") => assert!(failed > 0 && errored == 0, "{line}"),
            Some("INVALID") => assert_eq!(errored, 1, "{line}"),
            other => panic!("unexpected line {other:?}"),
        }
        for c in &cases {
            assert_eq!(c.attribute("file"), Some(file));
            if let Some(f) = c
                .first_element_child()
                .filter(|f| f.has_tag_name("failure"))
            {
                // The failure's text is the located line `knetsim test` printed.
                let text = f.text().expect("failure text");
                assert!(out.stdout.contains(&format!("  {text}\n")), "{text}");
                let line_attr = c.attribute("line").expect("line");
                assert!(text.starts_with(&format!("{file}:{line_attr}:")), "{text}");
            }
        }
        tests += cases.len();
        failures += failed;
        errors += errored;
    }
    assert_eq!(count(root, "tests"), tests);
    assert_eq!(count(root, "failures"), failures);
    assert_eq!(count(root, "errors"), errors);
    snapshot_settings("ci").bind(|| insta::assert_snapshot!("test-junit", xml));
}

/// Runs the binary itself (the workflow commands are switched on from the environment, at
/// the edge) from the workspace root.
fn binary(args: &[&str], github: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_knetsim"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("GITHUB_ACTIONS");
    if github {
        cmd.env("GITHUB_ACTIONS", "true");
    }
    let out = cmd.output().expect("knetsim runs");
    (
        out.status.code().expect("an exit status"),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

/// With `GITHUB_ACTIONS=true`, failed expectations (stdout) and diagnostics (stderr, beside
/// the rendered diagnostics) are also workflow commands at their file, line and column;
/// without it, none is printed.
#[test]
fn github_actions_workflow_commands() {
    let (code, stdout, stderr) = binary(&["test", FAILING, BAD], true);
    assert_eq!(code, 2);
    assert!(
        stdout.contains(&format!(
            "::error file={FAILING},line=62,col=7::Service default/web spec.ipFamilies: expected [\"IPv4\",\"IPv6\"], found [\"IPv4\"]\n"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "::error file={BAD},line=6,col=5::unknown flag: --cluster-cdir%0Akube-controller-manager has no such flag%0Ahelp: did you mean `--cluster-cidr`?\n"
        )),
        "{stderr}"
    );
    snapshot_settings("ci").bind(|| {
        insta::assert_snapshot!(
            "test-github-actions",
            format!("--- stdout\n{stdout}--- stderr\n{stderr}")
        )
    });
    let (plain_code, plain_out, plain_err) = binary(&["test", FAILING, BAD], false);
    assert_eq!(plain_code, 2);
    let command = |l: &str| l.starts_with("::");
    assert!(!plain_out.lines().any(command) && !plain_err.lines().any(command));
    // Every line of the plain run is in the annotated one, in order, with the commands added.
    let annotated: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("::")).collect();
    assert_eq!(annotated, plain_out.lines().collect::<Vec<_>>());
}
