//! The CLI, run in-process over the repository's scenarios.
//!
//! One integration-test binary for the crate (one link step on a slow machine); each area is
//! a module.

mod ci;
mod dataplane;
mod emulate;
mod hardening;
mod harness;
mod readme;
mod review;
mod scenarios;
