//! The flag parser: a component's `cluster.<component>` map and its pasted `args:` list
//! (`crates/model/src/read/flags.rs`, pflag-style), then the control plane's reading of the
//! flags (`knetsim_control::components::configure`, what `knetsim check` reports).
//!
//! Input, one item a line: first `COMPONENT[@VERSION]` (`kube-proxy@1.33`; anything else picks
//! a component by its first byte); then each line starting with `-` is an `args:` entry and
//! each `name: value` line a map entry. The scenario around them is generated, with every
//! value quoted as a YAML string, so inputs reach the flag parser rather than the YAML reader.

#![no_main]

mod common;

use std::fmt::Write;

use knetsim_model::flags::Component;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let (name, version) = head.split_once('@').unwrap_or((head, "1.33"));
    let component = Component::from_name(name.trim()).unwrap_or_else(|| {
        Component::ALL[usize::from(head.bytes().next().unwrap_or(0)) % Component::ALL.len()]
    });
    let mut args = Vec::new();
    let mut map = Vec::new();
    for line in lines {
        if line.starts_with('-') {
            args.push(line);
        } else if let Some((k, v)) = line.split_once(": ") {
            map.push((k, v));
        }
    }
    let mut doc = String::new();
    let _ = writeln!(doc, "name: flags\nkubernetesVersion: {}", quote(version));
    let _ = writeln!(doc, "cluster:\n  {}:", component.name());
    for (k, v) in &map {
        let _ = writeln!(doc, "    {}: {}", quote(k), value(v));
    }
    if !args.is_empty() {
        let _ = writeln!(doc, "    args:");
        for a in &args {
            let _ = writeln!(doc, "      - {}", quote(a));
        }
    }
    let loader = common::MemLoader {
        files: Default::default(),
    };
    let loaded = knetsim_model::load_scenario_str("flags.yaml", &doc, &loader);
    common::check_diagnostics(&loaded.sources, &loaded.diagnostics);
    if let Some(s) = &loaded.value {
        let cp = knetsim_control::components::configure(s.version, &s.cluster);
        for status in cp.statuses.values() {
            let _ = status.message.as_deref();
        }
    }
});

/// A YAML double-quoted string (JSON's escapes are a subset of YAML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A map value: plain when it is a plain YAML scalar (so booleans and integers keep their
/// YAML type, as a hand-written scenario has them), else quoted.
fn value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".,/_-=".contains(&b))
        && !v.starts_with('-');
    if plain { v.to_string() } else { quote(v) }
}
