//! The YAML reader: `knetsim_model::yaml::parse_stream` on any UTF-8 text (the CLI refuses
//! other bytes before parsing). Every node is walked as the readers walk it, and every
//! diagnostic must be located inside the text and render.

#![no_main]

mod common;

use knetsim_model::yaml::{Node, NodeKind, parse_stream};
use knetsim_model::{FileId, SourceMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (docs, diags) = parse_stream(FileId(0), text);
    for doc in &docs {
        walk(doc, text.len());
        let _ = doc.to_json();
    }
    let mut sources = SourceMap::new();
    sources.add("fuzz.yaml", "fuzz.yaml", text.to_string());
    common::check_diagnostics(&sources, &diags);
});

/// Visits every node as the readers do (scalars resolved, maps looked up by key) and checks
/// that its span lies inside the text.
fn walk(n: &Node, len: usize) {
    assert!(
        n.span.start <= n.span.end && n.span.end <= len,
        "node span {}..{} outside a {len}-byte text",
        n.span.start,
        n.span.end
    );
    let _ = n.describe();
    match &n.kind {
        NodeKind::Seq(items) => items.iter().for_each(|i| walk(i, len)),
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                walk(k, len);
                walk(v, len);
                if let Some(key) = k.scalar_text() {
                    assert!(n.get(key).is_some(), "key {key:?} not found by get");
                }
            }
        }
        _ => {
            let _ = n.as_scalar().map(|s| s.resolve());
        }
    }
}
