//! `cargo xtask fuzz-corpus` and `cargo xtask fuzz-smoke`: the fuzz targets' seed corpus and
//! dictionary, generated from the repository's scenarios, and the short run CI does.
//!
//! The corpus is generated at run time into `fuzz/corpus/<target>/` (cargo-fuzz's default
//! corpus directory, ignored by git) so that it never duplicates `scenarios/`: every target
//! starts from the scenario files, in the input format that target reads (see the targets'
//! module docs). The dictionary (`fuzz/corpus/scenario.dict`) holds the keys the scenarios use,
//! every flag name in the model's flag schema, and YAML's punctuation.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every fuzz target, in the order the smoke run runs them.
pub const TARGETS: &[&str] = &["yaml", "scenario", "manifests", "flags", "cidr", "pipeline"];

/// The cargo-fuzz version `.ci/run` installs (and the one these targets were run with).
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Writes the seed corpus of every target and the dictionary; returns the number of seeds.
pub fn corpus() -> Result<usize, String> {
    let files = yaml_files(Path::new("scenarios")).map_err(|e| format!("scenarios/: {e}"))?;
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            // The bad-input corpus holds files that are not UTF-8 on purpose; the targets read
            // text, so such a file seeds them with its replacement-character reading.
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((p, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect::<Result<_, String>>()?;
    let mut seeds: Vec<(&str, String, String)> = Vec::new();
    for (path, text) in &texts {
        let id = path
            .strip_prefix("scenarios")
            .unwrap_or(path)
            .to_string_lossy()
            .replace(['/', '\\'], "_");
        seeds.push(("yaml", id.clone(), text.clone()));
        let is_manifest_file = path.components().any(|c| c.as_os_str() == "manifests");
        if is_manifest_file {
            seeds.push(("manifests", id.clone(), text.clone()));
            continue;
        }
        let bundled = with_included_files(text, &texts);
        seeds.push(("scenario", id.clone(), bundled.clone()));
        seeds.push(("pipeline", id.clone(), bundled));
        let inline = inline_manifests(text);
        if !inline.is_empty() {
            seeds.push(("manifests", id.clone(), inline));
        }
        for (i, block) in flag_blocks(text).into_iter().enumerate() {
            seeds.push(("flags", format!("{id}.{i}"), block));
        }
        let cidrs = cidr_tokens(text);
        if !cidrs.is_empty() {
            seeds.push(("cidr", id.clone(), cidrs));
        }
    }
    let root = Path::new("fuzz/corpus");
    for target in TARGETS {
        std::fs::create_dir_all(root.join(target)).map_err(|e| e.to_string())?;
    }
    for (target, id, text) in &seeds {
        let path = root.join(target).join(format!("seed-{id}"));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let dict = dictionary(&texts)?;
    std::fs::write(root.join("scenario.dict"), dict).map_err(|e| e.to_string())?;
    Ok(seeds.len())
}

/// Builds every target, then runs each for `seconds` on its corpus (and its saved regression
/// inputs); fails on the first target that crashes, times out or runs out of memory.
pub fn smoke(seconds: u64) -> Result<(), String> {
    install_cargo_fuzz()?;
    let n = corpus()?;
    eprintln!("xtask: {n} seed inputs written to fuzz/corpus/");
    crate::run(
        "cargo",
        &["fuzz", "build", "--sanitizer", "none", "--fuzz-dir", "fuzz"],
    )?;
    for target in TARGETS {
        let corpus = format!("fuzz/corpus/{target}");
        let regressions = format!("fuzz/regressions/{target}");
        let time = format!("-max_total_time={seconds}");
        // libFuzzer's own timeout (one input running 60 s) writes the input and exits from a
        // signal handler, which can deadlock in the allocator without a sanitizer's: `timeout`
        // bounds the whole run as well, and kills the process group if it comes to that.
        let wall = (seconds * 3 + 120).to_string();
        let mut args = vec![
            "-k",
            "10",
            &wall,
            "cargo",
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "--fuzz-dir",
            "fuzz",
            target,
            &corpus,
        ];
        if Path::new(&regressions).is_dir() {
            args.push(&regressions);
        }
        args.extend(["--", &time, "-timeout=60", "-rss_limit_mb=2048"]);
        if *target != "cidr" {
            args.push("-dict=fuzz/corpus/scenario.dict");
        }
        crate::run("timeout", &args).map_err(|e| format!("fuzz target {target}: {e}"))?;
    }
    Ok(())
}

/// Installs the pinned cargo-fuzz unless that version is already installed: a fresh machine
/// (CI's) has none, and the stable-toolchain mode (`--sanitizer none`) needs a recent one.
fn install_cargo_fuzz() -> Result<(), String> {
    let installed = std::process::Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if installed.as_deref() == Some(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}")) {
        return Ok(());
    }
    crate::run(
        "cargo",
        &[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ],
    )
}

fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        if e.is_dir() {
            out.extend(yaml_files(&e)?);
        } else if e.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(e);
        }
    }
    Ok(out)
}

/// The scenario followed by each file a `path:` line names, found by file name among the
/// repository's scenario files, after a `#@file NAME` line (the targets' multi-file format).
fn with_included_files(text: &str, all: &[(PathBuf, String)]) -> String {
    let mut out = text.to_string();
    let mut done = BTreeSet::new();
    for line in text.lines() {
        let Some(value) = line
            .trim_start()
            .trim_start_matches("- ")
            .strip_prefix("path:")
        else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'', '}', ' ']);
        let Some(name) = Path::new(value).file_name() else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some((_, body)) = all.iter().find(|(p, _)| {
            p.file_name().is_some_and(|n| *n == *name)
                && p.components().any(|c| c.as_os_str() == "manifests")
        }) {
            let _ = write!(out, "\n#@file {name}\n{body}");
        }
    }
    out
}

/// The Kubernetes objects written inline in a scenario (`- apiVersion: …` blocks), dedented
/// into one multi-document manifest file.
fn inline_manifests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut docs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let (body_indent, first) = if let Some(rest) = trimmed.strip_prefix("- ") {
            (indent + 2, rest)
        } else {
            (indent, trimmed)
        };
        if !first.starts_with("apiVersion:") {
            i += 1;
            continue;
        }
        let mut doc = vec![first.to_string()];
        i += 1;
        while i < lines.len() {
            let l = lines[i];
            let t = l.trim_start();
            if !t.is_empty() && l.len() - t.len() < body_indent {
                break;
            }
            doc.push(l.get(body_indent..).unwrap_or("").to_string());
            i += 1;
        }
        docs.push(doc.join("\n"));
    }
    docs.join("\n---\n")
}

/// The `flags` target's inputs: for each component section of a scenario (`kube-proxy:` under
/// `cluster:`, a node's `kubelet:`), `COMPONENT@VERSION` and then its `key: value` entries and
/// `args:` items, one a line.
fn flag_blocks(text: &str) -> Vec<String> {
    const COMPONENTS: [&str; 5] = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
    ];
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("kubernetesVersion:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .unwrap_or_else(|| "1.33".to_string());
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let indent = line.len() - line.trim_start().len();
        let Some(name) = t.strip_suffix(':') else {
            continue;
        };
        if !COMPONENTS.contains(&name) {
            continue;
        }
        let mut block = format!("{name}@{version}\n");
        for l in &lines[i + 1..] {
            let lt = l.trim_start();
            if lt.is_empty() || lt.starts_with('#') {
                continue;
            }
            if l.len() - lt.len() <= indent {
                break;
            }
            let item = lt.trim_start_matches("- ").trim();
            if let Some(args) = item
                .strip_prefix("args:")
                .map(str::trim)
                .and_then(|a| a.strip_prefix('['))
            {
                for a in args.trim_end_matches(']').split(',') {
                    let _ = writeln!(block, "{}", a.trim().trim_matches(['"', '\'']));
                }
            } else if item.starts_with("\"-") || item.starts_with('-') || item.starts_with("'-") {
                let _ = writeln!(block, "{}", item.trim_matches(['"', '\'']));
            } else if let Some((k, v)) = item.split_once(": ") {
                let _ = writeln!(block, "{k}: {}", v.trim().trim_matches(['"', '\'']));
            }
        }
        out.push(block);
    }
    out
}

/// Every token of a scenario that looks like an IP or a CIDR, one a line.
fn cidr_tokens(text: &str) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for tok in text.split(|c: char| c.is_whitespace() || "[]{},\"'".contains(c)) {
        let tok = tok.trim_end_matches(':');
        let looks = tok.chars().any(|c| c.is_ascii_digit())
            && (tok.contains('.') || tok.contains("::") || tok.contains('/'))
            && tok
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ".:/".contains(c));
        if looks && seen.insert(tok) {
            let _ = writeln!(out, "{tok}");
        }
    }
    out
}

/// libFuzzer's dictionary: scenario keys, flag names, YAML punctuation, the multi-file marker.
fn dictionary(texts: &[(PathBuf, String)]) -> Result<String, String> {
    let mut words: BTreeSet<String> = BTreeSet::new();
    for (_, text) in texts {
        for line in text.lines() {
            let t = line.trim_start().trim_start_matches("- ");
            if let Some((key, _)) = t.split_once(':') {
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
                if plain {
                    words.insert(format!("{key}:"));
                }
            }
        }
    }
    let flags = std::fs::read_to_string("crates/model/src/read/flags.rs")
        .map_err(|e| format!("crates/model/src/read/flags.rs: {e}"))?;
    for prefix in ["m(\"", "u(\""] {
        for part in flags.split(prefix).skip(1) {
            if let Some((name, _)) = part.split_once('"') {
                words.insert(format!("--{name}="));
                words.insert(format!("{name}:"));
            }
        }
    }
    for p in [
        "---",
        "...",
        "&a ",
        "*a",
        "<<: ",
        "!!str ",
        "!!int ",
        "|\n",
        ">-\n",
        "{}",
        "[]",
        "~",
        "null",
        "true",
        "false",
        "\n#@file ",
        "::ffff:",
        "/64",
        "/16",
    ] {
        words.insert(p.to_string());
    }
    let mut out = String::from("# Generated by `cargo xtask fuzz-corpus`; do not edit.\n");
    for w in words {
        let escaped: String = w
            .chars()
            .map(|c| match c {
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                '\n' => "\\x0A".to_string(),
                c => c.to_string(),
            })
            .collect();
        let _ = writeln!(out, "\"{escaped}\"");
    }
    Ok(out)
}
