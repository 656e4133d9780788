//! Every scenario in `scenarios/`: its state is snapshotted, its expectations pass, and its
//! output is the same on every run and with any number of threads.

use crate::harness::{knetsim, scenario_files, snapshot_settings};

/// Scenarios at Kubernetes' published limits: their full state is tens of megabytes, so the
/// snapshot holds the summary (components, capacity, counts, events).
fn is_large(file: &str) -> bool {
    file.starts_with("scenarios/limits/")
}

fn snapshot_name(file: &str) -> String {
    file.trim_start_matches("scenarios/")
        .trim_end_matches(".yaml")
        .replace('/', "__")
}

#[test]
fn every_scenario_state_is_snapshotted() {
    let files = scenario_files("scenarios");
    assert!(
        files.len() >= 15,
        "expected the bundled scenarios, found {files:?}"
    );
    for file in files {
        let args: Vec<&str> = if is_large(&file) {
            vec!["run", &file, "--summary"]
        } else {
            vec!["run", &file]
        };
        let out = knetsim(&args);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
        snapshot_settings("scenarios").bind(|| {
            insta::assert_snapshot!(snapshot_name(&file), out.stdout);
        });
    }
}

#[test]
fn every_scenario_meets_its_expectations() {
    let out = knetsim(&["test", "scenarios"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let last = out.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn output_is_identical_across_runs_and_thread_counts() {
    for file in [
        "scenarios/kind/dual-stack-defaults.yaml",
        "scenarios/exhaustion/node-cidrs.yaml",
    ] {
        let first = knetsim(&["run", file]).stdout;
        for _ in 0..9 {
            assert_eq!(
                knetsim(&["run", file]).stdout,
                first,
                "{file} changed between runs"
            );
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let out = pool.install(|| knetsim(&["run", file]).stdout);
            assert_eq!(out, first, "{file} differs with {threads} thread(s)");
        }
    }
}

#[test]
fn json_output_is_the_same_document() {
    let out = knetsim(&["run", "scenarios/services/headless.yaml", "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(
        v["services"][0]["metadata"]["name"],
        "headless-with-selector"
    );
}

#[test]
fn unknown_subcommand_and_missing_file_exit_2() {
    assert_eq!(knetsim(&["frobnicate"]).code, 2);
    let out = knetsim(&["run", "scenarios/does-not-exist.yaml"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("does-not-exist.yaml"), "{}", out.stderr);
}

#[test]
fn parallel_state_writer_matches_the_serde_path() {
    for file in scenario_files("scenarios")
        .into_iter()
        .filter(|f| !is_large(f))
    {
        let path = crate::harness::root().join(&file);
        let loaded = knetsim_model::load_scenario(&path, &knetsim_model::source::FsLoader);
        let scenario = loaded.value.expect("scenario loads");
        let state = knetsim_control::simulate(&scenario);
        let mut parallel = Vec::new();
        knetsim::cmd::run::write_state_yaml(&mut parallel, &state).expect("write");
        let sequential = knetsim::render::yaml::to_string(&state).expect("yaml");
        assert_eq!(String::from_utf8(parallel).unwrap(), sequential, "{file}");
    }
}

/// `run -o json` writes its own way (parallel lists, direct writers for pods and
/// EndpointSlices): its text must be serde_json's, byte for byte, on every bundled scenario.
#[test]
fn parallel_json_writer_matches_serde_json() {
    for file in scenario_files("scenarios")
        .into_iter()
        .filter(|f| !is_large(f))
    {
        let path = crate::harness::root().join(&file);
        let loaded = knetsim_model::load_scenario(&path, &knetsim_model::source::FsLoader);
        let scenario = loaded.value.expect("scenario loads");
        let state = knetsim_control::simulate(&scenario);
        let mut ours = Vec::new();
        knetsim::cmd::run::write_state_json(&mut ours, &state).expect("write");
        let mut want = serde_json::to_string_pretty(&state).expect("serde_json");
        want.push('\n');
        assert_eq!(String::from_utf8(ours).unwrap(), want, "{file}");
    }
}

#[test]
fn json_output_is_identical_across_thread_counts() {
    let file = "scenarios/kind/dual-stack-defaults.yaml";
    let first = knetsim(&["run", file, "-o", "json"]).stdout;
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let out = pool.install(|| knetsim(&["run", file, "-o", "json"]).stdout);
        assert_eq!(out, first, "{file} differs with {threads} thread(s)");
    }
}
