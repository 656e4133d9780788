//! The manifest reader: `knetsim_model::load_manifests` (what `knetsim check` runs on a file
//! of Kubernetes objects), with the input as the file. Every diagnostic must be located and
//! render.

#![no_main]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loader = common::MemLoader {
        files: BTreeMap::from([("manifests.yaml".to_string(), text)]),
    };
    let loaded = knetsim_model::load_manifests(Path::new("manifests.yaml"), &loader);
    common::check_diagnostics(&loaded.sources, &loaded.diagnostics);
    if let Some(objects) = &loaded.value {
        for o in objects {
            let _ = o.kind();
        }
    }
});
