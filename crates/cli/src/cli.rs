//! The argument grammar.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "knetsim",
    version,
    about = "Simulate Kubernetes IPv4/IPv6 dual-stack cluster networking from scenario files",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and print the resulting cluster state.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Yaml)]
        output: Output,
        /// Print only components, network, capacity, object counts and events (for large
        /// clusters).
        #[arg(long)]
        summary: bool,
    },
    /// Validate scenarios (or manifest files) without running them.
    Check {
        /// Scenario files; a file whose first document has `apiVersion` and `kind` is read as
        /// a Kubernetes manifest instead.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run scenarios' `expect:` blocks: one pass/fail line per scenario, then a total.
    Test {
        /// Scenario files or directories (searched recursively for *.yaml, skipping
        /// directories named `bad` and `manifests`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}
