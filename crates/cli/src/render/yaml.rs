//! A block-style YAML writer for `Serialize` values, in the layout `kubectl get -o yaml` uses.
//!
//! Why our own: the state document of a limits-scale cluster is tens of megabytes, and it must
//! be written in a fraction of a second; the layout must also stay byte-stable across
//! dependency upgrades, because it is what the snapshots compare. Sequences inside mappings
//! are not indented (Go's yaml.v2 style, what kubectl prints), strings are written plain
//! unless YAML would read them as something else, and then double-quoted.

use std::fmt::{self, Display, Write as _};

use serde::ser::{self, Serialize};

/// Serializes `value` as a YAML document (no leading `---`), ending in a newline.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = String::with_capacity(4096);
    let mut w = Writer { out: &mut out };
    let node = value.serialize(ValueSer)?;
    w.write_root(&node);
    Ok(out)
}

#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// The serialized value, as a small tree. Scalars are pre-rendered so that writing is a
/// single pass of string pushes.
enum Value {
    Null,
    /// Already rendered: plain or quoted as needed.
    Scalar(String),
    Seq(Vec<Value>),
    Map(Vec<(String, Value)>),
}

struct Writer<'a> {
    out: &'a mut String,
}

impl Writer<'_> {
    fn write_root(&mut self, v: &Value) {
        match v {
            Value::Map(m) if !m.is_empty() => self.write_map(m, 0),
            Value::Seq(s) if !s.is_empty() => self.write_seq(s, 0),
            other => {
                self.write_inline(other);
                self.out.push('\n');
            }
        }
    }

    fn indent(&mut self, n: usize) {
        for _ in 0..n {
            self.out.push(' ');
        }
    }

    fn write_inline(&mut self, v: &Value) {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Scalar(s) => self.out.push_str(s),
            Value::Seq(_) => self.out.push_str("[]"),
            Value::Map(_) => self.out.push_str("{}"),
        }
    }

    fn is_block(v: &Value) -> bool {
        matches!(v, Value::Seq(s) if !s.is_empty()) || matches!(v, Value::Map(m) if !m.is_empty())
    }

    /// Writes the entries of a mapping, each line starting at `indent` (the first line's
    /// indentation is assumed to be written already when `first_inline` is set by the caller).
    fn write_map(&mut self, m: &[(String, Value)], indent: usize) {
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 {
                self.indent(indent);
            }
            self.write_entry(k, v, indent);
        }
    }

    fn write_entry(&mut self, k: &str, v: &Value, indent: usize) {
        self.out.push_str(k);
        self.out.push(':');
        match v {
            Value::Map(m) if !m.is_empty() => {
                self.out.push('\n');
                self.indent(indent + 2);
                self.write_map(m, indent + 2);
            }
            Value::Seq(s) if !s.is_empty() => {
                self.out.push('\n');
                self.indent(indent);
                self.write_seq(s, indent);
            }
            other => {
                self.out.push(' ');
                self.write_inline(other);
                self.out.push('\n');
            }
        }
    }

    fn write_seq(&mut self, s: &[Value], indent: usize) {
        for (i, item) in s.iter().enumerate() {
            if i > 0 {
                self.indent(indent);
            }
            self.out.push_str("- ");
            match item {
                Value::Map(m) if !m.is_empty() => self.write_map(m, indent + 2),
                Value::Seq(inner) if !inner.is_empty() => self.write_seq(inner, indent + 2),
                other => {
                    debug_assert!(!Self::is_block(other));
                    self.write_inline(other);
                    self.out.push('\n');
                }
            }
        }
    }
}

/// Renders a string scalar: plain when YAML 1.1 and 1.2 readers would both read it back as
/// the same string, double-quoted otherwise.
fn render_str(s: &str) -> String {
    if needs_quotes(s) {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\r' => q.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(q, "\\x{:02x}", c as u32);
                }
                c => q.push(c),
            }
        }
        q.push('"');
        q
    } else {
        s.to_owned()
    }
}

fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return true };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return true;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // "-" alone or "- x" is a sequence; "-1" is a number; "-foo" is fine but rare: quote
        // them all rather than reason about each.
        return true;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()) {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ".inf" | "-.inf" | ".nan"
    ) {
        return true;
    }
    looks_numeric(s)
}

/// True for anything a YAML reader might take for a number: decimal, octal, hex, floats,
/// exponents, and sexagesimal-looking values ("1:20") that YAML 1.1 readers parse.
fn looks_numeric(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    if t.starts_with("0x") || t.starts_with("0o") || t.starts_with("0b") {
        return true;
    }
    let mut digits = 0;
    for c in t.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' | 'e' | 'E' | '_' | '+' | '-' | ':' => {}
            _ => return false,
        }
    }
    digits > 0
}

/// Serializes into a [`Value`] tree.
struct ValueSer;

macro_rules! scalar_display {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<Value, Error> {
            Ok(Value::Scalar(v.to_string()))
        }
    )*};
}

impl ser::Serializer for ValueSer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = SeqSer;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = MapSer;

    scalar_display!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128
    );

    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        self.serialize_f64(v as f64)
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(Value::Scalar(if v.is_nan() {
            ".nan".into()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf".into() } else { "-.inf".into() }
        } else {
            let s = v.to_string();
            if s.contains(['.', 'e']) { s } else { format!("{s}.0") }
        }))
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::Scalar(render_str(v.encode_utf8(&mut [0; 4]))))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::Scalar(render_str(v)))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::Seq(v.iter().map(|b| Value::Scalar(b.to_string())).collect()))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Value, Error> {
        Ok(Value::Scalar(render_str(variant)))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<Value, Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, Error> {
        Ok(Value::Map(vec![(render_str(variant), v.serialize(ValueSer)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, Error> {
        Ok(SeqSer { items: Vec::with_capacity(len.unwrap_or(0)), variant: None })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqSer, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer, Error> {
        Ok(SeqSer { items: Vec::with_capacity(len), variant: Some(variant) })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer, Error> {
        Ok(MapSer { entries: Vec::with_capacity(len.unwrap_or(0)), key: None, variant: None })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapSer, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapSer, Error> {
        Ok(MapSer { entries: Vec::with_capacity(len), key: None, variant: Some(variant) })
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<Value, Error> {
        Ok(Value::Scalar(render_str(&v.to_string())))
    }
}

struct SeqSer {
    items: Vec<Value>,
    variant: Option<&'static str>,
}

impl SeqSer {
    fn finish(self) -> Value {
        let seq = Value::Seq(self.items);
        match self.variant {
            Some(v) => Value::Map(vec![(render_str(v), seq)]),
            None => seq,
        }
    }
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.items.push(v.serialize(ValueSer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

struct MapSer {
    entries: Vec<(String, Value)>,
    key: Option<String>,
    variant: Option<&'static str>,
}

impl MapSer {
    fn finish(self) -> Value {
        let map = Value::Map(self.entries);
        match self.variant {
            Some(v) => Value::Map(vec![(render_str(v), map)]),
            None => map,
        }
    }
}

/// Map keys must be scalars; they are rendered like string scalars.
fn key_string(v: Value) -> Result<String, Error> {
    match v {
        Value::Scalar(s) => Ok(s),
        Value::Null => Ok("null".into()),
        _ => Err(Error("map keys must be scalars".into())),
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.key = Some(key_string(k.serialize(ValueSer)?)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let k = self.key.take().ok_or_else(|| Error("value without a key".into()))?;
        self.entries.push((k, v.serialize(ValueSer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, k: &'static str, v: &T) -> Result<(), Error> {
        self.entries.push((render_str(k), v.serialize(ValueSer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapSer {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, k: &'static str, v: &T) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, k, v)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        cluster_ips: Vec<String>,
        ip_family_policy: &'static str,
        ports: Vec<BTreeMap<&'static str, u32>>,
        empty: Vec<u8>,
        none: Option<u8>,
        nested: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
    }

    #[test]
    fn kubectl_layout() {
        let spec = Spec {
            cluster_ips: vec!["10.96.0.10".into(), "fd00::a".into(), "::1".into()],
            ip_family_policy: "PreferDualStack",
            ports: vec![BTreeMap::from([("port", 80), ("targetPort", 9376)])],
            empty: vec![],
            none: None,
            nested: BTreeMap::from([("a", BTreeMap::from([("b", "c")]))]),
        };
        let got = to_string(&spec).unwrap();
        assert_eq!(
            got,
            "clusterIps:\n- 10.96.0.10\n- fd00::a\n- \"::1\"\nipFamilyPolicy: PreferDualStack\nports:\n- port: 80\n  targetPort: 9376\nempty: []\nnone: null\nnested:\n  a:\n    b: c\n"
        );
    }

    #[test]
    fn quoting_table() {
        for (s, quoted) in [
            ("plain", false),
            ("10.96.0.0/12", false),
            ("fd00::/108", false),
            ("fd00::", true),
            ("1.33", true),
            ("110", true),
            ("true", true),
            ("No", true),
            ("", true),
            ("a: b", true),
            ("- x", true),
            ("0x4000", true),
            ("IPv6 is not configured on this cluster", false),
            ("line\nbreak", true),
            ("Service \"x\" is invalid", false),
        ] {
            assert_eq!(needs_quotes(s), quoted, "{s:?}");
        }
        assert_eq!(render_str("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn nested_sequences_and_empty_root() {
        assert_eq!(to_string(&vec![vec![1, 2], vec![]]).unwrap(), "- - 1\n  - 2\n- []\n");
        assert_eq!(to_string(&Vec::<u8>::new()).unwrap(), "[]\n");
        assert_eq!(to_string(&BTreeMap::<u8, u8>::new()).unwrap(), "{}\n");
    }
}
