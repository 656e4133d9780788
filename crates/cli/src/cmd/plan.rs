//! `knetsim plan FILE`: capacity reports.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::cli::PlanOutput;
use crate::{EXIT_INVALID, EXIT_OK};

pub fn plan(
    file: &Path,
    output: PlanOutput,
    opts: knetsim_plan::PlanOptions<'static>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let input = match super::load::load_with(file, err, knetsim_plan::load_input) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    let scenario = &input.scenario;
    // A progress bar for sweeps and growth runs, only where a person is watching: it goes to
    // stderr, and is hidden when stderr is not a terminal (CI logs, pipes, tests).
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} planning {bar:30} {pos}/{len} ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let tick = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let opts = knetsim_plan::PlanOptions {
        progress: bar.is_some().then_some(&tick as &(dyn Fn(u64, u64) + Sync)),
        ..opts
    };
    let report = knetsim_plan::plan(scenario, &opts);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(diags) => {
            super::write_diagnostics(&input.sources, &diags, err);
            return Ok(EXIT_INVALID);
        }
    };
    match output {
        PlanOutput::Table => out.write_all(knetsim_plan::render_table(&report).as_bytes())?,
        PlanOutput::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            out.write_all(b"\n")?;
        }
        PlanOutput::Csv => out.write_all(knetsim_plan::render_csv(&report).as_bytes())?,
        PlanOutput::Svg => out.write_all(knetsim_plan::render_svg(&report).as_bytes())?,
    }
    Ok(EXIT_OK)
}
