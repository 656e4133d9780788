//! knetsim's input side: scenario files and Kubernetes manifests, read into a typed model.
//!
//! The module list below is a map of the code.
//!
//! - [`source`]: the files a scenario is made of ([`SourceMap`]) and the [`FileLoader`] trait
//!   through which `path:` references are read; the crate itself never touches the filesystem.
//! - [`diag`]: [`Diagnostic`]s (file, line, column, message, help) and their plain-text rendering.
//! - [`yaml`]: a YAML tree in which every node carries its [`Span`], built on `saphyr-parser`
//!   events (duplicate keys, anchors, merge keys and multi-document streams are handled here),
//!   and the public readers ([`yaml::MapReader`], `expect_*`) that turn nodes into typed values
//!   with diagnostics; other crates read their own sections (`fabric:`, `plan:`) with them.
//! - [`cidr`]: CIDRs and IPs parsed like Kubernetes' `ParseCIDRSloppy`/`ParseIPSloppy`.
//! - [`version`]: [`KubeVersion`], the `kubernetesVersion` key.
//! - [`flags`]: the flag schema of each component (name, type, whether knetsim models it) and
//!   the merge of `key: value` maps with pasted `args:` lists.
//! - [`limits`]: the caps on input (nodes, pods, Services, objects, file size, YAML size and
//!   depth), stated once and enforced while reading.
//! - [`objects`]: the Kubernetes objects knetsim reads (Service, Pod, workloads, Node, Namespace).
//! - [`scenario`]: the scenario document (`name`, `kubernetesVersion`, `seed`, `cluster`, `nodes`,
//!   `manifests`, `steps`, `expect`, `plan`).
//! - `read`: the conversion from the YAML tree into the model, collecting every diagnostic:
//!   `read/flags.rs` (flag schemas, pflag-style parsing), `read/objects.rs` (manifests, strict
//!   like `kubectl apply`), `read/scenario.rs` (the scenario keys), `read/render.rs` (plain-text
//!   rendering with `annotate-snippets`).
//!
//! Errors a user can cause are [`Diagnostic`] values, never panics: [`load_scenario`] returns the
//! model together with all warnings, or all errors at once.

pub mod cidr;
pub mod diag;
pub mod flags;
pub mod limits;
pub mod objects;
mod read;
pub mod scenario;
pub mod source;
pub mod version;
pub mod yaml;

pub use diag::{Diagnostic, Severity};
pub use read::{Loaded, load_manifests, load_scenario, load_scenario_str, read_flag_edits};
pub use scenario::Scenario;
pub use source::{FileId, FileLoader, FsLoader, LoadError, SourceMap, Span, Spanned};
pub use version::KubeVersion;
