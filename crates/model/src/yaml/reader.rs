//! Reading typed values out of a [`Node`] tree, collecting diagnostics.
//!
//! The pattern every section reader follows:
//!
//! ```
//! use knetsim_model::yaml::{MapReader, parse_stream};
//! use knetsim_model::FileId;
//!
//! let (docs, _) = parse_stream(FileId(0), "name: web\nreplicas: 3\nnmae: x\n");
//! let mut diags = Vec::new();
//! let mut m = MapReader::new(&docs[0]).expect("a map");
//! let name = m.str("name", &mut diags);
//! let replicas = m.u64("replicas", &mut diags);
//! m.finish(&mut diags); // reports `nmae` as an unknown key, "did you mean `name`?"
//! assert_eq!(name.map(|n| n.value), Some("web".to_string()));
//! assert_eq!(replicas.map(|r| r.value), Some(3));
//! assert_eq!(diags[0].message, "unknown key `nmae`");
//! ```
//!
//! Every accessor marks its key as known and used. A key that is present with an empty value
//! (`key:` or `key: null`) reads as absent, as in Kubernetes' JSON decoding. Type mismatches are
//! reported at the value ("expected an integer for `replicas`, found a string `abc`") and the
//! accessor returns `None`, so that reading goes on and every problem is reported at once.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Node, NodeKind, Resolved, did_you_mean};
use crate::cidr::{CidrError, ParsedCidr, parse_cidr_sloppy, parse_ip_sloppy};
use crate::diag::Diagnostic;
use crate::source::{Span, Spanned};

/// Where readers collect diagnostics.
pub type Diags = Vec<Diagnostic>;

/// "expected {expected} for `{what}`, found {the node}", at the node.
pub fn mismatch(node: &Node, expected: &str, what: &str) -> Diagnostic {
    let message = if what.is_empty() {
        format!("expected {expected}, found {}", node.describe())
    } else {
        format!(
            "expected {expected} for `{what}`, found {}",
            node.describe()
        )
    };
    Diagnostic::error(node.span, message).with_label(format!("expected {expected}"))
}

/// A string: a quoted scalar, or a plain one that is not a number or boolean.
pub fn expect_str(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<String>> {
    match node.as_str() {
        Some(s) => Some(Spanned::new(s.to_string(), node.span)),
        None => {
            d.push(mismatch(node, "a string", what));
            None
        }
    }
}

/// Any scalar's text, as written: `1.30` is "1.30", `true` is "true". For values that are
/// strings in spirit but that users write unquoted (versions, sysctl values, messages).
pub fn expect_text(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<String>> {
    match node.scalar_text() {
        Some(s) => Some(Spanned::new(s.to_string(), node.span)),
        None => {
            d.push(mismatch(node, "a string", what));
            None
        }
    }
}

/// `true` or `false`, unquoted.
pub fn expect_bool(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<bool>> {
    match node.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Bool(b)) => Some(Spanned::new(b, node.span)),
        _ => {
            d.push(mismatch(node, "a boolean (true or false)", what));
            None
        }
    }
}

/// A non-negative decimal integer that fits in 64 bits.
pub fn expect_u64(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<u64>> {
    match node.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Int(i)) if (0..=i128::from(u64::MAX)).contains(&i) => {
            Some(Spanned::new(i as u64, node.span))
        }
        Some(Resolved::Int(_)) => {
            d.push(
                Diagnostic::error(node.span, format!("`{what}` is out of range"))
                    .with_label("expected an integer from 0 to 18446744073709551615"),
            );
            None
        }
        _ => {
            d.push(mismatch(node, "an integer", what));
            None
        }
    }
}

/// A decimal integer that fits in 64 bits, signed.
pub fn expect_i64(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<i64>> {
    match node.as_scalar().map(|s| s.resolve()) {
        Some(Resolved::Int(i)) => match i64::try_from(i) {
            Ok(v) => Some(Spanned::new(v, node.span)),
            Err(_) => {
                d.push(
                    Diagnostic::error(node.span, format!("`{what}` is out of range"))
                        .with_label("expected a 64-bit integer"),
                );
                None
            }
        },
        _ => {
            d.push(mismatch(node, "an integer", what));
            None
        }
    }
}

/// A CIDR, parsed like Kubernetes' `ParseCIDRSloppy`. The value is the masked network; a CIDR
/// with host bits set gets a warning saying which network Kubernetes will use.
pub fn expect_cidr(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<IpNet>> {
    let text = expect_str(node, what, d)?;
    match parse_cidr_sloppy(&text) {
        Ok(p) => {
            if p.host_bits_set() {
                d.push(host_bits_warning(node.span, &text, &p));
            }
            Some(Spanned::new(p.net, node.span))
        }
        Err(e) => {
            d.push(cidr_error(node.span, &text, &e, false));
            None
        }
    }
}

/// An IP address, parsed like Kubernetes' `ParseIPSloppy`.
pub fn expect_ip(node: &Node, what: &str, d: &mut Diags) -> Option<Spanned<IpAddr>> {
    let text = expect_str(node, what, d)?;
    match parse_ip_sloppy(&text) {
        Some(ip) => Some(Spanned::new(ip, node.span)),
        None => {
            d.push(
                Diagnostic::error(node.span, format!("invalid IP address: {}", text.value))
                    .with_label("expected an IPv4 or IPv6 address"),
            );
            None
        }
    }
}

/// The error for a value that is not a CIDR. The message is Go's (`invalid CIDR address: …`,
/// what Kubernetes components print); the label says what exactly is wrong. `in_list` says the
/// text is one entry of a comma-separated list (an empty entry is then a stray comma).
pub fn cidr_error(span: Span, text: &str, e: &CidrError, in_list: bool) -> Diagnostic {
    let message = format!("invalid CIDR address: {text}");
    match e {
        CidrError::Empty if in_list => Diagnostic::error(span, message)
            .with_label("empty entry")
            .with_help("remove the stray comma"),
        CidrError::Ipv4Mapped { ipv4, prefix } => {
            let mut d = Diagnostic::error(
                span,
                format!("`{text}` is an IPv4-mapped IPv6 CIDR"),
            )
            .with_label("IPv4-mapped IPv6 address")
            .with_help(format!(
                "Kubernetes would treat this as an IPv4 range (the address is IPv4 to Go's net.IP.To4) with a {prefix}-bit mask out of 128, and mis-size it"
            ));
            d = match ipv4 {
                Some(v4) => d.with_help(format!(
                    "write the IPv4 CIDR `{v4}`, or a real IPv6 CIDR (such as a ULA, fd00::/48)"
                )),
                None => d.with_help(
                    "write an IPv4 CIDR, or a real IPv6 CIDR (such as a ULA, fd00::/48)",
                ),
            };
            d
        }
        _ => Diagnostic::error(span, message).with_label(e.reason()),
    }
}

/// The warning for a CIDR with host bits set: Kubernetes silently uses the network.
pub fn host_bits_warning(span: Span, text: &str, p: &ParsedCidr) -> Diagnostic {
    Diagnostic::warning(
        span,
        format!(
            "`{text}` has host bits set; Kubernetes will use the network {}",
            p.net
        ),
    )
    .with_label(format!(
        "{} is not the network address of /{}",
        p.addr,
        p.net.prefix_len()
    ))
    .with_help(format!("write `{}` to say what Kubernetes will do", p.net))
}

/// A map node as a [`MapReader`], or a type error.
pub fn expect_map<'a>(node: &'a Node, what: &str, d: &mut Diags) -> Option<MapReader<'a>> {
    let r = MapReader::new(node);
    if r.is_none() {
        d.push(mismatch(node, "a map", what));
    }
    r
}

/// A list node's items, or a type error.
pub fn expect_seq<'a>(node: &'a Node, what: &str, d: &mut Diags) -> Option<&'a [Node]> {
    match node.as_seq() {
        Some(items) => Some(items),
        None => {
            d.push(mismatch(node, "a list", what));
            None
        }
    }
}

/// A map of strings to strings (labels, sysctls). With `strict`, values must be strings (as
/// Kubernetes requires for labels: `version: 1.0` is a number); otherwise any scalar's text is
/// taken. Empty values read as "".
pub fn string_map(
    node: &Node,
    what: &str,
    strict: bool,
    d: &mut Diags,
) -> Option<BTreeMap<String, String>> {
    let entries = match &node.kind {
        NodeKind::Map(e) => e,
        NodeKind::Null => return Some(BTreeMap::new()),
        _ => {
            d.push(mismatch(node, "a map of strings", what));
            return None;
        }
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let Some(key) = k.scalar_text() else {
            d.push(mismatch(k, "a string key", what));
            ok = false;
            continue;
        };
        let value = match &v.kind {
            NodeKind::Null => Some(String::new()),
            _ if strict => v.as_str().map(str::to_string),
            _ => v.scalar_text().map(str::to_string),
        };
        match value {
            Some(val) => {
                out.insert(key.to_string(), val);
            }
            None => {
                d.push(mismatch(v, "a string", &format!("{what}.{key}")));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Reads the fields of one map node, tracking which keys were asked for.
#[derive(Debug)]
pub struct MapReader<'a> {
    node: &'a Node,
    entries: &'a [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'a> MapReader<'a> {
    /// `None` when the node is not a map. An empty value (`key:`) reads as an empty map.
    pub fn new(node: &'a Node) -> Option<Self> {
        let entries: &'a [(Node, Node)] = match &node.kind {
            NodeKind::Map(e) => e,
            NodeKind::Null => &[],
            _ => return None,
        };
        Some(MapReader {
            node,
            entries,
            used: vec![false; entries.len()],
            // Readers ask for a dozen keys or so: one allocation, not a growth per few keys
            // (a limits-scale scenario reads a hundred thousand maps).
            known: Vec::with_capacity(16),
        })
    }

    pub fn node(&self) -> &'a Node {
        self.node
    }

    pub fn span(&self) -> Span {
        self.node.span
    }

    /// The raw entries, in document order.
    pub fn entries(&self) -> &'a [(Node, Node)] {
        self.entries
    }

    fn find(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| k.scalar_text() == Some(key))
    }

    /// True when the key is written (even with an empty value). Does not mark it used.
    pub fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Declares keys that are valid here without reading them (accepted and ignored).
    pub fn allow(&mut self, keys: &[&'static str]) {
        for &k in keys {
            self.known.push(k);
            if let Some(i) = self.find(k) {
                self.used[i] = true;
            }
        }
    }

    /// The value under `key`, including an empty one, marking the key used.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.known.push(key);
        let i = self.find(key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// The value under `key`, unless absent or empty.
    pub fn value(&mut self, key: &'static str) -> Option<&'a Node> {
        self.get(key).filter(|n| !n.is_null())
    }

    /// Where `key` itself is written.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.find(key).map(|i| self.entries[i].0.span)
    }

    /// Where to point at the map as a whole: its first key (underlining a whole map would
    /// underline its first line, value and all), or the map itself when it is empty.
    pub fn head_span(&self) -> Span {
        self.entries.first().map_or(self.node.span, |(k, _)| k.span)
    }

    /// The error for a required key that is missing, at the start of the map.
    pub fn missing(&self, key: &str) -> Diagnostic {
        Diagnostic::error(self.head_span(), format!("missing key `{key}`"))
            .with_label(format!("this map needs `{key}`"))
    }

    /// The value under `key`, or a "missing key" error.
    pub fn require(&mut self, key: &'static str, d: &mut Diags) -> Option<&'a Node> {
        let v = self.value(key);
        if v.is_none() {
            d.push(self.missing(key));
        }
        v
    }

    pub fn str(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<String>> {
        expect_str(self.value(key)?, key, d)
    }
    pub fn text(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<String>> {
        expect_text(self.value(key)?, key, d)
    }
    pub fn bool(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<bool>> {
        expect_bool(self.value(key)?, key, d)
    }
    pub fn u64(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<u64>> {
        expect_u64(self.value(key)?, key, d)
    }
    pub fn i64(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<i64>> {
        expect_i64(self.value(key)?, key, d)
    }
    pub fn cidr(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<IpNet>> {
        expect_cidr(self.value(key)?, key, d)
    }
    pub fn ip(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<IpAddr>> {
        expect_ip(self.value(key)?, key, d)
    }
    pub fn seq(&mut self, key: &'static str, d: &mut Diags) -> Option<&'a [Node]> {
        expect_seq(self.value(key)?, key, d)
    }
    pub fn map(&mut self, key: &'static str, d: &mut Diags) -> Option<MapReader<'a>> {
        expect_map(self.value(key)?, key, d)
    }
    pub fn string_map(
        &mut self,
        key: &'static str,
        strict: bool,
        d: &mut Diags,
    ) -> Option<BTreeMap<String, String>> {
        string_map(self.value(key)?, key, strict, d)
    }

    /// Required variants: a missing key is an error.
    pub fn req_str(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<String>> {
        expect_str(self.require(key, d)?, key, d)
    }
    pub fn req_text(&mut self, key: &'static str, d: &mut Diags) -> Option<Spanned<String>> {
        expect_text(self.require(key, d)?, key, d)
    }

    /// Every entry not yet used, marking them used: for maps whose keys are data (labels,
    /// environment variables) or that a caller dispatches on itself.
    pub fn take_rest(&mut self) -> Vec<(&'a Node, &'a Node)> {
        let mut out = Vec::new();
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if !self.used[i] {
                self.used[i] = true;
                out.push((k, v));
            }
        }
        out
    }

    /// Reports every key nobody asked for as `unknown key `x``, with a did-you-mean and the
    /// list of valid keys.
    pub fn finish(self, d: &mut Diags) {
        self.finish_with(
            d,
            |k| format!("unknown key `{k}`"),
            |k| format!("`{k}`"),
            "unknown key",
        );
    }

    /// Like [`finish`](Self::finish) with the caller's wording: `message` makes the error
    /// message from the unknown key, `show` writes a valid key in help text (so that flags read
    /// `--cluster-cidr`), `label` goes under the key. The list of valid keys is given only
    /// when it is short.
    pub fn finish_with(
        self,
        d: &mut Diags,
        message: impl Fn(&str) -> String,
        show: impl Fn(&str) -> String,
        label: &str,
    ) {
        if self.used.iter().all(|u| *u) {
            return;
        }
        let mut known: Vec<&'static str> = self.known.clone();
        known.sort_unstable();
        known.dedup();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let Some(key) = k.scalar_text() else {
                d.push(mismatch(k, "a string key", ""));
                continue;
            };
            let mut diag = Diagnostic::error(k.span, message(key)).with_label(label);
            if let Some(s) = did_you_mean(key, self.known.iter().copied()) {
                diag = diag.with_help(format!("did you mean {}?", show(s)));
            }
            if !known.is_empty() && known.len() <= 24 {
                let list: Vec<String> = known.iter().map(|k| show(k)).collect();
                diag = diag.with_help(format!("valid keys here: {}", list.join(", ")));
            }
            d.push(diag);
        }
    }
}
