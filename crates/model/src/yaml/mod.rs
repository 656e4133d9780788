//! A YAML tree whose every node knows where it was written, and the readers that turn it into
//! typed values with diagnostics.
//!
//! Built from `saphyr-parser` events ([`parse_stream`]). Scalars are kept as text together with
//! whether they were quoted, and typed only when a reader asks for a type, so that "expected an
//! integer, found a string" can point at the exact value. Typing follows the YAML 1.2 core
//! schema, narrowed to what Kubernetes users write: booleans are `true`/`false` (also `True`,
//! `TRUE`, …), numbers are decimal, and only *plain* (unquoted) scalars are ever anything but
//! strings. `yes`, `on` and `0x10` are strings.
//!
//! The pieces:
//! - `build`: events to [`Node`]s; multi-document streams, anchors and aliases (expanded, with a
//!   size cap against "billion laughs"), merge keys (`<<`), duplicate-key errors.
//! - `reader`: [`MapReader`] hands out the fields of a map as typed values and reports every
//!   key nobody asked for as an unknown key, with a did-you-mean; [`expect_str`] and friends
//!   do the same for single nodes. Other crates read their own sections (`fabric:`, `plan:`,
//!   `trace:`) with these.
//! - `suggest`: edit distance and "did you mean" ([`did_you_mean`]), computed only on error.

mod build;
mod reader;
mod suggest;

pub use build::{MAX_ALIAS_EXPANSION, parse_stream, parse_stream_within};
pub use reader::{
    Diags, MapReader, cidr_error, expect_bool, expect_cidr, expect_i64, expect_ip, expect_map,
    expect_seq, expect_str, expect_text, expect_u64, host_bits_warning, mismatch, string_map,
};
pub use suggest::{did_you_mean, edit_distance};

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

/// What a scalar means under the (narrowed) YAML 1.2 core schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolved<'a> {
    Bool(bool),
    /// A decimal integer. `i128` holds every `u64` and every `i64`.
    Int(i128),
    /// A decimal number with a fraction or exponent (`1.5`, `1e3`).
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    /// Types the scalar. Quoted scalars are always strings.
    pub fn resolve(&self) -> Resolved<'_> {
        if self.quoted {
            return Resolved::Str(&self.text);
        }
        resolve_plain(&self.text)
    }
}

/// True for the plain scalars the core schema reads as null. The tree builder turns these into
/// [`NodeKind::Null`], so readers never see them as scalars.
pub(crate) fn is_plain_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn resolve_plain(s: &str) -> Resolved<'_> {
    match s {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<i128>()
    {
        return Resolved::Int(i);
    }
    if looks_like_float(digits)
        && let Ok(f) = s.parse::<f64>()
    {
        return Resolved::Float(f);
    }
    Resolved::Str(s)
}

/// The core schema's float pattern, `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, minus
/// the sign (already stripped) and minus `.inf`/`.nan`, which nobody writes in a scenario.
fn looks_like_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => all_digits(int) && all_digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exp_ok = match exp {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        }
        None => true,
    };
    // A bare integer is not a float; it was matched before.
    mantissa_ok && exp_ok && (frac.is_some() || exp.is_some())
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of any scalar (string, number or boolean), as written.
    pub fn scalar_text(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    /// The text of a scalar that is a string (quoted, or plain and not a number or boolean).
    pub fn as_str(&self) -> Option<&str> {
        match self.as_scalar()?.resolve() {
            Resolved::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The value under `key` in a map node (by the key's text), without marking anything.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.scalar_text() == Some(key))
            .map(|(_, v)| v)
    }

    /// What the node is, for "expected X, found Y" messages: "a string `abc`", "an integer `3`",
    /// "a boolean `true`", "a number `1.5`", "a list", "a map", "an empty value".
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "an empty value".to_string(),
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a map".to_string(),
            NodeKind::Scalar(s) => {
                let what = match s.resolve() {
                    Resolved::Bool(_) => "a boolean",
                    Resolved::Int(_) => "an integer",
                    Resolved::Float(_) => "a number",
                    Resolved::Str(_) => "a string",
                };
                format!("{what} `{}`", shorten(&s.text))
            }
        }
    }

    /// The node as JSON, the way a YAML-to-JSON conversion (`sigs.k8s.io/yaml`) would give it:
    /// expectation values are compared with the state document as JSON. Keys become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Scalar(s) => match s.resolve() {
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => {
                    if let Ok(v) = i64::try_from(i) {
                        Value::from(v)
                    } else if let Ok(v) = u64::try_from(i) {
                        Value::from(v)
                    } else {
                        Value::String(s.text.clone())
                    }
                }
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(s.text.clone())),
                Resolved::Str(t) => Value::String(t.to_string()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    let key = match &k.kind {
                        NodeKind::Scalar(s) => s.text.clone(),
                        NodeKind::Null => "null".to_string(),
                        _ => k.to_json().to_string(),
                    };
                    m.insert(key, v.to_json());
                }
                Value::Object(m)
            }
        }
    }
}

/// Cuts long values in messages, on a character boundary.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    let first_line = s.lines().next().unwrap_or("");
    if first_line.chars().count() <= MAX && first_line.len() == s.trim_end_matches('\n').len() {
        return first_line.to_string();
    }
    let cut: String = first_line.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        let cases: &[(&str, Resolved)] = &[
            ("true", Resolved::Bool(true)),
            ("False", Resolved::Bool(false)),
            ("yes", Resolved::Str("yes")),
            ("on", Resolved::Str("on")),
            ("42", Resolved::Int(42)),
            ("-7", Resolved::Int(-7)),
            ("+7", Resolved::Int(7)),
            ("18446744073709551615", Resolved::Int(18446744073709551615)),
            ("1.30", Resolved::Float(1.3)),
            ("1e3", Resolved::Float(1000.0)),
            (".5", Resolved::Float(0.5)),
            ("0x10", Resolved::Str("0x10")),
            ("10.0.0.0/8", Resolved::Str("10.0.0.0/8")),
            ("1.2.3", Resolved::Str("1.2.3")),
            ("-", Resolved::Str("-")),
            (".", Resolved::Str(".")),
        ];
        for (text, want) in cases {
            let s = Scalar {
                text: text.to_string(),
                quoted: false,
            };
            assert_eq!(s.resolve(), *want, "{text}");
        }
        let quoted = Scalar {
            text: "true".into(),
            quoted: true,
        };
        assert_eq!(quoted.resolve(), Resolved::Str("true"));
    }
}
