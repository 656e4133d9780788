//! The `knetsim` command line: a thin front over the library crates.
//!
//! The module list below is a map of the code.
//!
//! - [`cli`](crate::cli): the argument grammar (clap) — subcommands and their flags.
//! - `cmd`: one module per subcommand (`run`, `check`, `test`, …), each turning arguments
//!   into library calls and library results into text.
//! - [`render`]: text renderers (the kubectl-style YAML writer, JSON, JUnit XML, GitHub
//!   Actions workflow commands).
//!
//! This crate is the only one that touches the filesystem and the terminal. Exit statuses
//! follow the contract: 0 success, 1 an expectation failed, 2 invalid scenario or command line.

pub mod cli;
pub mod cmd;
pub mod render;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: an expectation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit status: the scenario or the command line is invalid.
pub const EXIT_INVALID: i32 = 2;

/// Whether diagnostics and failed expectations are also printed as GitHub Actions workflow
/// commands ([`render::github`]). The binary sets it from `GITHUB_ACTIONS=true`; in-process
/// callers (the tests) leave it off, so what they see does not depend on where they run.
static GITHUB_ACTIONS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns GitHub Actions workflow commands on or off for this process.
pub fn set_github_actions(on: bool) {
    GITHUB_ACTIONS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether GitHub Actions workflow commands are printed (see [`set_github_actions`]).
pub fn github_actions() -> bool {
    GITHUB_ACTIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs the CLI with `args` (including the program name), writing to `out` and `err`, and
/// returns the exit status.
pub fn main_with(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let parsed = match cli::Cli::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    match cmd::dispatch(parsed, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            EXIT_INVALID
        }
    }
}
