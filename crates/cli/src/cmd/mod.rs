//! One module per subcommand.

mod check;
mod dataplane;
mod diff;
mod emulate;
pub mod load;
mod plan;
mod reach;
pub mod run;
mod snapshot;
pub mod test;

use std::io::Write;
use std::path::Path;

use knetsim_model::{Diagnostic, Scenario, diag};

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    load::set_allowed_paths(&cli.allow_path);
    match cli.command {
        Command::Run {
            file,
            output,
            summary,
        } => run::run(&file, output, summary, out, err),
        Command::Check { files } => check::check(&files, out, err),
        Command::Test { paths, junit } => test::test(&paths, junit.as_deref(), out, err),
        Command::Snapshot {
            paths,
            update,
            dir,
            rules,
        } => snapshot::snapshot(&paths, update, dir.as_deref(), rules, out, err),
        Command::Diff {
            before,
            after,
            versions,
            sets,
            output,
            rules,
            matrix,
        } => diff::diff(
            diff::Args {
                before,
                after,
                versions,
                sets,
                rules,
                extra: matrix.query(),
            },
            output,
            out,
            err,
        ),
        Command::Trace {
            file,
            from,
            to,
            family,
            proto,
            port,
            output,
        } => dataplane::trace(&file, from, to, family, proto, port, output, out, err),
        Command::Reach {
            file,
            from,
            to,
            family,
            proto,
            port,
            output,
        } => reach::reach(
            &file,
            knetsim_dataplane::ReachQuery {
                from,
                to,
                family: family.map(crate::cli::FamilyArg::family),
                proto,
                port,
            },
            output,
            out,
            err,
        ),
        Command::Rules {
            file,
            node,
            family,
            format,
            write_dir,
        } => dataplane::rules(&file, node, family, format, write_dir, out, err),
        Command::Routes { file, node, family } => dataplane::routes(&file, node, family, out, err),
        Command::Graph { file } => dataplane::graph(&file, out, err),
        Command::Emulate {
            file,
            keep,
            clean,
            output,
            matrix,
        } => emulate::emulate(
            file.as_deref(),
            keep,
            clean,
            matrix.query(),
            output,
            out,
            err,
        ),
        Command::Plan {
            file,
            output,
            nodes,
            pods_per_node,
            services,
            runs,
            days,
            no_growth,
            no_sweep,
        } => {
            let opts = knetsim_plan::PlanOptions {
                runs,
                days,
                target_nodes: nodes,
                target_pods_per_node: pods_per_node,
                target_services: services,
                skip_growth: no_growth,
                skip_sweep: no_sweep,
                progress: None,
            };
            plan::plan(&file, output, opts, out, err)
        }
    }
}

/// Loads and validates a scenario (see [`load::load_input`]: the one validation every
/// subcommand runs), writing its diagnostics to `err`. `Err(code)` when it has errors.
pub fn load(path: &Path, err: &mut dyn Write) -> Result<Scenario, i32> {
    load::load_input(path, err).map(|i| i.scenario)
}

pub fn write_diagnostics(
    sources: &knetsim_model::SourceMap,
    diags: &[Diagnostic],
    err: &mut dyn Write,
) {
    if !diags.is_empty() {
        let _ = err.write_all(diag::render(sources, diags).as_bytes());
        if crate::github_actions() {
            let _ = err.write_all(crate::render::github::diagnostics(sources, diags).as_bytes());
        }
    }
}
