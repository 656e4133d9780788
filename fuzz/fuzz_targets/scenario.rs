//! The scenario reader: `knetsim_model::load_scenario_str` with an in-memory loader. The
//! input is a scenario, optionally followed by files its `path:` entries name, each after a
//! `#@file NAME` line (see `common::split_files`). Every diagnostic must be located and render.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (main, files) = common::split_files(text);
    let loader = common::MemLoader { files };
    let loaded = knetsim_model::load_scenario_str("scenario.yaml", main, &loader);
    common::check_diagnostics(&loaded.sources, &loaded.diagnostics);
    assert_eq!(loaded.value.is_some(), !loaded.has_errors());
});
