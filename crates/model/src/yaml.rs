//! A YAML tree whose every node knows where it was written.
//!
//! Built from `saphyr-parser` events. Scalars are kept as text together with their style, and
//! typed only when a reader asks for a type, so that "expected an integer, found a string" can
//! point at the exact value.

use crate::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// `~`, `null`, or an empty value.
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in document order. Duplicate keys are rejected while building the tree.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    /// Quoted scalars are always strings; plain ones may be booleans or numbers.
    pub quoted: bool,
}
