//! Change review: what a scenario's cluster looks like, as a reviewer reads it, and what a
//! change to it changes.
//!
//! The module list below is a map of the code.
//!
//! - [`snapshot`]: the [`Snapshot`], a facts document built from a scenario's state and its
//!   dataplane: sections (components, nodes with their routes, kube-proxy's rules per node and
//!   family, egress masquerade, Services, pods, EndpointSlices, capacity, warning events,
//!   reachability matrices and traces), each a sorted map of objects, each a sorted map of
//!   facts. Large clusters get a summary form.
//! - [`queries`]: the matrices and traces a snapshot records: the scenario's `snapshot:`
//!   section and its `expect:` `trace:`/`reachability:` entries.
//! - [`format`]: the snapshot as YAML text made to be read in `git diff` (a format version at
//!   the top, one fact a line) and read back, with located errors.
//! - [`diff`](mod@diff): the semantic difference of two snapshots, by area and object.
//! - [`render`]: a diff as text, JSON or GitHub-flavoured Markdown.
//!
//! Invariants: no I/O (the CLI reads and writes the files); output depends only on the
//! snapshot's content, so it is byte-identical across runs and thread counts (everything
//! written is iterated from `BTreeMap`s or lists in a fixed order).

pub mod diff;
pub mod format;
pub mod queries;
pub mod render;
pub mod snapshot;

pub use diff::{Diff, diff};
pub use format::{FORMAT_VERSION, parse, write};
pub use queries::Query;
pub use snapshot::{Area, Built, Form, Options, Snapshot, Value, build};
