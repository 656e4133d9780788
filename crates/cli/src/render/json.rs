//! A pretty JSON writer for `Serialize` values: byte for byte what
//! `serde_json::to_writer_pretty` writes (two spaces a level, `"key": value`, `,` ending each
//! entry but the last, an empty array or object as `[]` / `{}`, serde_json's string escapes).
//!
//! Why our own: the state document of a limits-scale cluster is 330 MB of JSON, and serde_json
//! wrote it in twice the time the YAML writer takes — one `io::Write` call per token (a fifth
//! of the run in `BufWriter::write_all`, another in `memmove`), on one thread. This writer
//! renders into `String` buffers, renders the large lists in parallel batches
//! ([`super::par`], as the YAML writer does), renders a value many objects share
//! ([`SHARED`]) once per buffer, and writes pods and EndpointSlices — nine tenths of the
//! document — with direct writers ([`items`]). Tests hold its text equal to serde_json's.

use std::fmt::{self, Display, Write as _};

use knetsim_control::state::{PLAIN, SHARED};
use serde::ser::{self, Impossible, Serialize};

mod items;
pub(crate) use items::RootItem;

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

fn io_error(e: std::io::Error) -> Error {
    Error(e.to_string())
}

/// Serializes `value` as pretty JSON, as `serde_json::to_string_pretty` does (no newline at
/// the end).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut ser = Ser::with_capacity(1 << 12);
    value.serialize(&mut ser)?;
    Ok(ser.out)
}

/// The output, the nesting level of what is being written, and the text of the shared values
/// already rendered.
pub(crate) struct Ser {
    out: String,
    /// serde_json's `current_indent`: the level of the entries of the innermost open array or
    /// object (two spaces a level).
    level: usize,
    /// The text of shared values (see [`SHARED`]) already rendered, by address and level.
    shared: knetsim_control::fxhash::FxHashMap<(usize, usize), String>,
    /// The next string is an address (see [`PLAIN`]): it needs no escapes.
    verbatim: bool,
}

impl Ser {
    fn with_capacity(capacity: usize) -> Self {
        Ser {
            out: String::with_capacity(capacity),
            level: 0,
            shared: Default::default(),
            verbatim: false,
        }
    }

    /// Two spaces per level.
    fn pad(&mut self, level: usize) {
        const SPACES: &str = "                                ";
        // A copy of a fixed 32 bytes and a cut rather than a copy of `2 * level`, which the
        // compiler turns into a call to `memset` (see the YAML writer's `pad`).
        let mut n = 2 * level;
        while n > SPACES.len() {
            self.out.push_str(SPACES);
            n -= SPACES.len();
        }
        self.out.push_str(SPACES);
        self.out.truncate(self.out.len() - (SPACES.len() - n));
    }

    /// `s` as a JSON string, quoted and escaped.
    fn string(&mut self, s: &str) {
        self.out.push('"');
        escape_into(&mut self.out, s);
        self.out.push('"');
    }

    /// The start of an entry of the innermost open array or object: `,` after the one before
    /// it, a new line, the indentation.
    fn entry_start(&mut self, first: bool) {
        self.out.push_str(if first { "\n" } else { ",\n" });
        self.pad(self.level);
    }
}

/// What serde_json escapes, by byte: `"`, `\` and the control characters; 0 for the rest.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any byte of `bytes` is one serde_json escapes ([`ESCAPE`]): a control character,
/// `"` or `\`. Words of eight bytes are tested at once (the classic "has a byte less than n"
/// and "has a zero byte" tricks); the tail byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = bytes.chunks_exact(8);
    let mut found = 0;
    for w in &mut words {
        let x = u64::from_ne_bytes(w.try_into().expect("eight bytes"));
        // Bytes below 0x20 (0x20 - 1 borrows only there, for bytes below 0x80), `"`, `\`.
        found |= x.wrapping_sub(ONES * 0x20) & !x & HIGH
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')));
    }
    found != 0
        || words
            .remainder()
            .iter()
            .any(|&b| ESCAPE[usize::from(b)] != 0)
}

/// Appends `s` with serde_json's escapes (`format_escaped_str_contents`).
fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Nearly every string of a state document needs no escape: one pass to know it, eight
    // bytes at a time, then a single copy.
    if !needs_escape(bytes) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        // Escaped bytes are ASCII, so `start..i` and `i + 1..` are on character boundaries.
        out.push_str(&s[start..i]);
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push('\\');
            out.push(char::from(esc));
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Writes the entries of the document's top-level object one by one, so that a caller can
/// render its large lists in parallel ([`Root::seq_par`]) and the rest through serde. The
/// text is what serde_json writes for the whole object.
pub struct Root<'w> {
    w: &'w mut dyn std::io::Write,
    count: usize,
}

impl<'w> Root<'w> {
    pub fn new(w: &'w mut dyn std::io::Write) -> Self {
        Root { w, count: 0 }
    }

    /// `"key": ` after the separator, at level 1.
    fn head(&mut self, ser: &mut Ser, key: &str) {
        if self.count == 0 {
            ser.out.push('{');
        }
        ser.level = 1;
        ser.entry_start(self.count == 0);
        ser.string(key);
        ser.out.push_str(": ");
        self.count += 1;
    }

    /// One entry, its value rendered through serde.
    pub fn entry<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let mut ser = Ser::with_capacity(1 << 12);
        self.head(&mut ser, key);
        value.serialize(&mut ser)?;
        self.w.write_all(ser.out.as_bytes()).map_err(io_error)
    }

    /// One entry whose value is the array of `items`, rendered in parallel batches and
    /// written in order.
    pub(crate) fn seq_par<T: RootItem>(&mut self, key: &str, items: &[&T]) -> Result<(), Error> {
        let mut ser = Ser::with_capacity(64);
        self.head(&mut ser, key);
        if items.is_empty() {
            ser.out.push_str("[]");
            return self.w.write_all(ser.out.as_bytes()).map_err(io_error);
        }
        ser.out.push('[');
        self.w.write_all(ser.out.as_bytes()).map_err(io_error)?;
        super::par::write_batches::<T, Slot>(self.w, items)?;
        self.w.write_all(b"\n  ]").map_err(io_error)
    }

    /// Closes the object.
    pub fn end(self) -> Result<(), Error> {
        let end: &[u8] = if self.count == 0 { b"{}" } else { b"\n}" };
        self.w.write_all(end).map_err(io_error)
    }
}

/// A buffer the items of one chunk of a top-level entry's array are rendered into (items at
/// level 2), with the chunk's cache of shared values; both cleared, not freed, between chunks.
#[derive(Default)]
struct Slot {
    out: String,
    shared: knetsim_control::fxhash::FxHashMap<(usize, usize), String>,
}

impl<T: RootItem> super::par::Chunk<T> for Slot {
    type Error = Error;

    fn render(&mut self, first: usize, items: &[&T], capacity: usize) -> Result<(), Error> {
        self.out.clear();
        self.out.reserve(capacity);
        self.shared.clear();
        let mut ser = Ser {
            out: std::mem::take(&mut self.out),
            level: 2,
            shared: std::mem::take(&mut self.shared),
            verbatim: false,
        };
        let result = items.iter().enumerate().try_for_each(|(i, item)| {
            ser.level = 2;
            ser.entry_start(first + i == 0);
            item.render_item(&mut ser)
        });
        self.out = ser.out;
        self.shared = ser.shared;
        result
    }

    fn text(&self) -> &[u8] {
        self.out.as_bytes()
    }

    fn io(e: std::io::Error) -> Error {
        io_error(e)
    }
}

/// Writes a value many objects share (see [`SHARED`]: the labels, containers and owner
/// references of the pods of one template). Its text depends only on the level it is written
/// at, so it is rendered once per buffer and copied.
fn shared<T: Serialize + ?Sized>(s: &mut Ser, v: &T) -> Result<(), Error> {
    let key = (std::ptr::from_ref(v).cast::<()>() as usize, s.level);
    if let Some(text) = s.shared.get(&key) {
        s.out.push_str(text);
        return Ok(());
    }
    let start = s.out.len();
    v.serialize(&mut *s)?;
    let text = s.out[start..].to_owned();
    s.shared.insert(key, text);
    Ok(())
}

/// A float as serde_json writes it (`ryu`, `null` when not finite): rare enough in a state
/// document to go through serde_json itself.
fn float_text<F: Serialize>(v: F) -> Result<String, Error> {
    serde_json::to_string(&v).map_err(|e| Error(e.to_string()))
}

macro_rules! int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            super::yaml::push_int(&mut self.out, v.unsigned_abs() as u128, v < (0 as $t));
            Ok(())
        }
    )*};
}

macro_rules! uint {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            super::yaml::push_int(&mut self.out, v as u128, false);
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Ser {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    int!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128
    );
    uint!(
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128
    );

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        let text = float_text(v)?;
        self.out.push_str(&text);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        let text = float_text(v)?;
        self.out.push_str(&text);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if std::mem::take(&mut self.verbatim) {
            self.out.push('"');
            self.out.push_str(v);
            self.out.push('"');
        } else {
            self.string(v);
        }
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        if name == PLAIN {
            self.verbatim = true;
            return v.serialize(self);
        }
        if name == SHARED {
            return shared(self, v);
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        // `{"variant": value}`, over lines.
        self.out.push('{');
        self.level += 1;
        self.entry_start(true);
        self.string(variant);
        self.out.push_str(": ");
        v.serialize(&mut *self)?;
        self.level -= 1;
        self.out.push('\n');
        self.pad(self.level);
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self, len, b'[', false))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        open_variant(self, variant);
        Ok(Compound::open(self, Some(len), b'[', true))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self, len, b'{', false))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        open_variant(self, variant);
        Ok(Compound::open(self, Some(len), b'{', true))
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        let mut text = String::new();
        let _ = write!(text, "{v}");
        self.string(&text);
        Ok(())
    }
}

/// `{"variant": ` of a tuple or struct variant: a one-entry object around the value.
fn open_variant(s: &mut Ser, variant: &str) {
    s.out.push('{');
    s.level += 1;
    s.entry_start(true);
    s.string(variant);
    s.out.push_str(": ");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Written whole as `[]` or `{}` when opened (serde_json, for a known length of 0).
    Empty,
    First,
    Rest,
}

/// An array or object being written.
pub(crate) struct Compound<'a> {
    s: &'a mut Ser,
    state: State,
    /// `]` or `}`.
    close: u8,
    /// Inside a variant's one-entry object, to be closed too.
    variant: bool,
}

impl<'a> Compound<'a> {
    fn open(s: &'a mut Ser, len: Option<usize>, open: u8, variant: bool) -> Self {
        let close = if open == b'[' { b']' } else { b'}' };
        let state = if len == Some(0) {
            s.out.push(char::from(open));
            s.out.push(char::from(close));
            State::Empty
        } else {
            s.out.push(char::from(open));
            s.level += 1;
            State::First
        };
        Compound {
            s,
            state,
            close,
            variant,
        }
    }

    fn next(&mut self) {
        self.s.entry_start(self.state == State::First);
        self.state = State::Rest;
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.next();
        v.serialize(&mut *self.s)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Error> {
        self.next();
        self.s.string(key);
        self.s.out.push_str(": ");
        v.serialize(&mut *self.s)
    }

    fn finish(self) -> Result<(), Error> {
        let s = self.s;
        if self.state != State::Empty {
            s.level -= 1;
            if self.state == State::Rest {
                s.out.push('\n');
                s.pad(s.level);
            }
            s.out.push(char::from(self.close));
        }
        if self.variant {
            s.level -= 1;
            s.out.push('\n');
            s.pad(s.level);
            s.out.push('}');
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.next();
        k.serialize(Key(&mut *self.s))?;
        self.s.out.push_str(": ");
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut *self.s)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.field(k, v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        k: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.field(k, v)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// A map key, as serde_json's `MapKeySerializer` writes it: strings, characters and unit
/// variants as strings; integers, booleans and finite floats as their text in quotes.
struct Key<'a>(&'a mut Ser);

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

macro_rules! key_int {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Error> {
            self.0.out.push('"');
            ser::Serializer::$f(&mut *self.0, v)?;
            self.0.out.push('"');
            Ok(())
        }
    )*};
}

impl ser::Serializer for Key<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    key_int!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_bool: bool
    );

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(Error("float key must be finite".into()));
        }
        self.serialize_str(&float_text(v)?)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(Error("float key must be finite".into()));
        }
        self.serialize_str(&float_text(v)?)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.0.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.0.string(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.0.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        self.serialize_str(&v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    /// Compares with serde_json on `v`.
    fn same<T: Serialize + ?Sized>(v: &T) {
        let want = serde_json::to_string_pretty(v).expect("serde_json");
        assert_eq!(to_string(v).expect("ours"), want);
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        cluster_ips: Vec<String>,
        ports: Vec<BTreeMap<&'static str, u32>>,
        empty: Vec<u8>,
        empty_map: BTreeMap<String, u8>,
        none: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        nested: BTreeMap<&'static str, BTreeMap<&'static str, &'static str>>,
        nested_empty: Vec<Vec<u8>>,
        unit: (),
    }

    #[derive(Serialize)]
    struct AllSkipped {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
    }

    #[derive(Serialize)]
    enum Variants {
        Unit,
        Newtype(Vec<u8>),
        Tuple(u8, String),
        EmptyTuple(),
        Struct { a: u8, b: Vec<String> },
    }

    #[test]
    fn layout_as_serde_json_writes_it() {
        same(&Spec {
            cluster_ips: vec!["10.96.0.10".into(), "fd00::a".into()],
            ports: vec![BTreeMap::from([("port", 80), ("targetPort", 9376)])],
            empty: vec![],
            empty_map: BTreeMap::new(),
            none: None,
            skipped: None,
            nested: BTreeMap::from([("a", BTreeMap::from([("b", "c")])), ("d", BTreeMap::new())]),
            nested_empty: vec![vec![], vec![1, 2], vec![]],
            unit: (),
        });
        same(&AllSkipped { a: None });
        same(&vec![AllSkipped { a: None }, AllSkipped { a: Some(1) }]);
        same(&Vec::<u8>::new());
        same(&BTreeMap::<u8, u8>::new());
        same(&7u8);
        same(&"root string");
        same(&vec![
            Variants::Unit,
            Variants::Newtype(vec![1]),
            Variants::Newtype(vec![]),
            Variants::Tuple(1, "x".into()),
            Variants::EmptyTuple(),
            Variants::Struct {
                a: 1,
                b: vec!["y".into()],
            },
        ]);
        // Collections whose length serde is not told (`collect_seq` of a filter).
        struct Unsized(Vec<u8>);
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|_| true))
            }
        }
        same(&Unsized(vec![]));
        same(&vec![Unsized(vec![1, 2]), Unsized(vec![])]);
        // Twenty levels deep: indentation longer than one copy of the padding.
        let mut deep = serde_json::json!(1);
        for i in 0..20 {
            deep = serde_json::json!({ format!("level-{i}"): [deep, {}] });
        }
        same(&deep);
    }

    #[test]
    fn scalars_and_keys_as_serde_json_writes_them() {
        same(&(
            i8::MIN,
            i64::MIN,
            u64::MAX,
            i128::MIN,
            u128::MAX,
            true,
            false,
            'c',
            '"',
        ));
        same(&vec![
            0.0f64,
            -1.5,
            1e20,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            0.1 + 0.2,
        ]);
        same(&vec![0.1f32, f32::MAX, f32::NEG_INFINITY]);
        same(&BTreeMap::from([(1u16, "a"), (65535, "b")]));
        same(&BTreeMap::from([(-1i64, 1u8)]));
        same(&BTreeMap::from([(true, 1u8), (false, 2)]));
        same(&BTreeMap::from([('k', 1u8)]));
        same(&BTreeMap::from([(knetsim_ipam::Family::IPv6, 1u8)]));
        same(&BTreeMap::from([("key \"quoted\"\n".to_string(), 1u8)]));
        let mut floats = serde_json::Map::new();
        floats.insert("x".into(), serde_json::json!(1.5));
        same(&floats);
        // A float key: serde_json writes it in quotes.
        struct FloatKey;
        impl Serialize for FloatKey {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map([(2.5f64, 1u8), (1e21, 2)])
            }
        }
        same(&FloatKey);
        // Keys serde_json refuses are refused.
        assert!(to_string(&BTreeMap::from([(vec![1u8], 1u8)])).is_err());
        assert!(serde_json::to_string_pretty(&BTreeMap::from([(vec![1u8], 1u8)])).is_err());
    }

    #[test]
    fn strings_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€😀\u{7f}\u{2028}");
        for s in [
            all.as_str(),
            "",
            "plain",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "\u{0}\u{1f}",
            "trailing\n",
            "\"",
        ] {
            same(s);
            same(&BTreeMap::from([(s, s)]));
        }
    }

    /// The word-at-a-time test against the table, for every byte at every place of a word
    /// and of the tail.
    #[test]
    fn escape_check_agrees_with_the_table() {
        for len in [1, 7, 8, 9, 16, 17] {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut buf = vec![b'a'; len];
                    buf[pos] = b;
                    assert_eq!(
                        needs_escape(&buf),
                        ESCAPE[usize::from(b)] != 0,
                        "byte {b:#x} at {pos} of {len}"
                    );
                    // Next to a byte that borrows in the subtraction.
                    buf.fill(0xff);
                    buf[pos] = b;
                    assert_eq!(needs_escape(&buf), ESCAPE[usize::from(b)] != 0);
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn shared_values_render_as_their_value_at_each_level() {
        use knetsim_control::state::Shared;
        let labels: Shared<BTreeMap<String, String>> =
            BTreeMap::from([("app".to_string(), "web".to_string())]).into();
        // The same value at two levels and twice at one: the cache is by address and level.
        let doc = vec![
            serde_json::json!(null),
            serde_json::to_value(BTreeMap::from([("a", &labels)])).unwrap(),
        ];
        let want = serde_json::to_string_pretty(&(&labels, &doc, &labels, [[&labels]])).unwrap();
        let got = to_string(&(&labels, &doc, &labels, [[&labels]])).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn root_entries_and_parallel_lists_make_the_serde_json_document() {
        #[derive(Serialize)]
        struct Doc<'a> {
            name: &'a str,
            empty: Vec<&'a knetsim_control::state::Node>,
            nodes: Vec<&'a knetsim_control::state::Node>,
        }
        let nodes: Vec<knetsim_control::state::Node> = (0..5000)
            .map(|i| knetsim_control::state::Node {
                api_version: "v1",
                kind: "Node",
                metadata: knetsim_control::state::ObjectMeta {
                    name: format!("node-{i}"),
                    ..Default::default()
                },
                spec: Default::default(),
                status: Default::default(),
                sysctl: Default::default(),
            })
            .collect();
        let refs: Vec<&knetsim_control::state::Node> = nodes.iter().collect();
        let doc = Doc {
            name: "x",
            empty: vec![],
            nodes: refs.clone(),
        };
        let mut got = Vec::new();
        let mut root = Root::new(&mut got);
        root.entry("name", "x").unwrap();
        root.seq_par("empty", &Vec::<&knetsim_control::state::Node>::new())
            .unwrap();
        root.seq_par("nodes", &refs).unwrap();
        root.end().unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            serde_json::to_string_pretty(&doc).unwrap()
        );
        let mut empty = Vec::new();
        Root::new(&mut empty).end().unwrap();
        assert_eq!(empty, b"{}");
    }
}
